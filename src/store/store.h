/*
 * The local model store: models pulled by name live here, one folder per model with its GGUF
 * file(s) and a manifest (what was fetched from where, its sha256 and size, when it was pulled
 * and last used).
 *
 *   ROOT/                      $OUTBOARD_MODELS, else $XDG_DATA_HOME/outboard/models, else
 *                              ~/.local/share/outboard/models (~/Library/Application
 *                              Support/outboard/models on macOS)
 *   ROOT/ORG/REPO/TAG/         one model: manifest.json and its .gguf file(s)
 *   ROOT/.tmp/                 downloads in progress (*.partial) and models being installed
 *
 * A model becomes visible only by renaming its finished folder (files fsynced, manifest
 * written) into place, so a listing never shows a half-written or failed download: a folder
 * without a readable manifest whose files are all present is not a model.
 *
 * Names are `org/repo:TAG` (TAG: the quantization, e.g. Q4_K_M). Each part is checked
 * (store_name_parse) so that no name reaches outside ROOT: only letters, digits, '.', '_' and
 * '-', no part starting with '.', so "..", absolute paths, extra separators and control
 * characters are all refused.
 */
#ifndef OB_STORE_H
#define OB_STORE_H

#include "outboard.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_PART_MAX 96   /* bytes in org, repo or tag */
#define STORE_NAME_MAX 300  /* org/repo:tag with room to spare */
#define STORE_MAX_FILES 256 /* parts of one split model */
#define STORE_MANIFEST_MAX ((size_t)1 << 20)

/* A parsed store name. tag is "" when the name had none (store_resolve then picks). */
typedef struct store_name {
    char org[STORE_PART_MAX + 1], repo[STORE_PART_MAX + 1], tag[STORE_PART_MAX + 1];
} store_name;

/* Parses `org/repo` or `org/repo:TAG`. OB_ERR_ARG naming the part at fault and why. */
ob_status store_name_parse(const char *text, store_name *out, ob_err *err);
/* One part of a name (or a file name kept in the store): 1..STORE_PART_MAX bytes of
 * [A-Za-z0-9._-], not starting with '.'. */
bool store_part_ok(const char *s, size_t len);
/* Control bytes in s as '?', so a message quoting untrusted text (jansson's "near '...'")
 * stays one line. */
void store_text_scrub(char *s);
/* "org/repo:tag" into buf (STORE_NAME_MAX + 1 bytes). */
void store_name_format(const store_name *n, char *buf);

/* One file of a model as the manifest records it. */
typedef struct store_file {
    char *name;   /* owned: the file name in the model's folder (checked by store_part_ok) */
    char *url;    /* owned: where it came from */
    char sha256[65];
    uint64_t size;
} store_file;

/* A model's manifest (manifest.json). Strings are owned; free with store_manifest_clear. */
typedef struct store_manifest {
    char name[STORE_NAME_MAX + 1];
    char *source;   /* "hub" or "url" */
    char *repo;     /* org/repo on the hub, NULL for a URL */
    char *revision; /* the hub revision (main), NULL for a URL */
    char *etag;     /* the first file's ETag as the server sent it, NULL when none */
    store_file *files; /* n_files; files[0] is the one loaded (a split set's first part) */
    size_t n_files;
    uint64_t size;       /* bytes, all files */
    int64_t pulled_at;   /* Unix seconds */
    int64_t last_used;   /* Unix seconds, 0 = never */
} store_manifest;

void store_manifest_clear(store_manifest *m);
/* Parses manifest JSON text (untrusted: every field checked; file names by store_part_ok,
 * hashes as 64 hex digits, at most STORE_MAX_FILES files). OB_ERR_FORMAT naming the field. */
ob_status store_manifest_parse(const char *text, size_t len, store_manifest *out, ob_err *err);
/* The manifest as a JSON object (new reference); NULL when out of memory. */
json_t *store_manifest_json(const store_manifest *m);
/* Writes m to DIR/manifest.json through a temporary file, fsync and rename. */
ob_status store_manifest_write(const char *dir, const store_manifest *m, ob_err *err);
/* Reads DIR/manifest.json. OB_ERR_IO when absent or unreadable, else as store_manifest_parse. */
ob_status store_manifest_read(const char *dir, store_manifest *out, ob_err *err);

/* ---- the store on disk (store.c) ---- */

/* The store's folder from the environment as described above, into buf (cap bytes).
 * OB_ERR_ARG when no variable gives a home, OB_ERR_LIMIT when the path is too long. */
ob_status store_root(char *buf, size_t cap, ob_err *err);
/* Creates ROOT and ROOT/.tmp when missing (mode 0755), and deletes what a killed pull or rm
 * left in ROOT/.tmp (staging folders of processes that no longer run). */
ob_status store_prepare(const char *root, ob_err *err);
/* ROOT/ORG/REPO/TAG into buf (cap bytes). */
ob_status store_model_dir(const char *root, const store_name *n, char *buf, size_t cap,
                          ob_err *err);

/* One listed model. */
typedef struct store_entry {
    char dir[4096];
    store_manifest m;
} store_entry;

/* Every installed model (manifest readable, every file present with its recorded size),
 * sorted by name. *out is new (store_list_free). A missing ROOT is an empty store. */
ob_status store_list(const char *root, store_entry **out, size_t *n, ob_err *err);
void store_list_free(store_entry *e, size_t n);

/* Finds the installed model a name means; a name without a tag means the only tag of that
 * org/repo. OB_ERR_ARG ("not in the store", or naming the tags to choose among). */
ob_status store_find(const char *root, const char *name, store_entry *out, ob_err *err);

/* A -m argument to a GGUF path: an existing file is taken as it is; otherwise a store name
 * (the first file of its set) from the store at $OUTBOARD_MODELS & co, whose last_used is
 * then updated. *path is new (ob_free). OB_ERR_ARG saying neither exists. */
ob_status store_resolve_model(const char *arg, char **path, ob_err *err);

/* Removes an installed model (its folder, moved aside first so a reader never sees half a
 * model) and the org/repo folders it leaves empty. */
ob_status store_remove(const char *root, const char *name, ob_err *err);

/* Installs the finished folder `staged` (in ROOT/.tmp, holding the files and manifest.json)
 * as model n, replacing any model of that name. */
ob_status store_install(const char *root, const char *staged, const store_name *n, ob_err *err);

/* Deletes a folder tree (files and folders only, never following links). */
ob_status store_rmtree(const char *path, ob_err *err);
/* fsync of a file or folder by path. */
ob_status store_fsync_path(const char *path, ob_err *err);

#endif
