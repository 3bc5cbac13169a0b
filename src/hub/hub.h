/*
 * The model hub client: from a reference (`org/repo:QUANT` on a Hugging Face-style hub, or a
 * plain http(s) URL) to a verified model in the local store (src/store).
 *
 *   hub_ref.c    references and the choice of file(s) from a repository's tree listing (pure,
 *                no I/O: fuzzed by tests/hub/tree_fuzz.c)
 *   hub_http.c   HTTP over libcurl: small GETs, and downloads with Range resume, bounded
 *                redirects, a bearer token and a streaming SHA-256
 *   hub_pull.c   the whole pull: list, choose, download each part, check size and hash,
 *                validate the GGUF, install atomically
 *
 * The hub's base URL comes from OUTBOARD_HUB (default https://huggingface.co), the token from
 * HF_TOKEN; libcurl itself honours http_proxy / https_proxy / no_proxy.
 */
#ifndef OB_HUB_H
#define OB_HUB_H

#include "outboard.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

#define HUB_DEFAULT_BASE "https://huggingface.co"
#define HUB_MAX_REDIRECTS 10
#define HUB_MAX_LISTING ((size_t)16 << 20) /* bytes of a tree listing */
#define HUB_MAX_LISTED 100000              /* entries of a tree listing */
#define HUB_MAX_PAGES 1000                 /* pages of a tree listing */

/* ---- references and file choice (hub_ref.c) ---- */

typedef struct hub_ref {
    bool is_url;
    char repo[2 * STORE_PART_MAX + 2]; /* org/repo (hub form) */
    char quant[STORE_PART_MAX + 1];    /* as typed, "" when none */
    char url[4096];                    /* the URL (URL form) */
} hub_ref;

/* `org/repo[:QUANT]` (each part as store names allow) or an http:// or https:// URL ending in
 * .gguf. OB_ERR_ARG says what is wrong. */
ob_status hub_ref_parse(const char *text, hub_ref *out, ob_err *err);

/* One file of a tree listing. */
typedef struct hub_entry {
    char *path;       /* owned: path in the repository */
    char sha256[65];  /* lfs.oid (hex), "" when the file is not in LFS */
    uint64_t size;    /* lfs.size, else size */
} hub_entry;

typedef struct hub_tree {
    hub_entry *v;
    size_t n;
} hub_tree;

/* Parses a `/api/models/{repo}/tree/{rev}` JSON array (untrusted). Entries that are not files
 * are skipped. OB_ERR_FORMAT naming the entry at fault, OB_ERR_LIMIT past HUB_MAX_LISTED. */
ob_status hub_tree_parse(const char *json, size_t len, hub_tree *out, ob_err *err);
void hub_tree_free(hub_tree *t);
/* Moves src's entries to the end of dst (src is left empty). OB_ERR_LIMIT past
 * HUB_MAX_LISTED in all. */
ob_status hub_tree_append(hub_tree *dst, hub_tree *src, ob_err *err);

/* The files to fetch, as llama.cpp's `-hf org/repo:QUANT` picks them: among the .gguf files
 * that are not projectors, imatrix or draft models, the first whose path matches QUANT
 * followed by '.' or '-' (case-insensitive); without QUANT, Q4_K_M, then Q8_0, then the first
 * model file. A split file (`-00001-of-0000N`) brings all N parts, each of which must be
 * listed. idx[0..*n) are indices into t, part order. *tag is the store tag: QUANT upper-cased,
 * or the quantization read from the chosen file's name ("default" when it has none).
 * OB_ERR_ARG names the quantizations the repository has when none matches. */
ob_status hub_tree_choose(const hub_tree *t, const char *quant, size_t *idx, size_t *n,
                          char tag[STORE_PART_MAX + 1], ob_err *err);

/* The quantization named by a GGUF file name ("model-Q4_K_M.gguf" -> "Q4_K_M"), upper-cased
 * into tag; false when the name has none. */
bool hub_file_quant(const char *path, char tag[STORE_PART_MAX + 1]);

/* ---- HTTP (hub_http.c) ---- */

/* Called as bytes arrive for `file` (its published sha256 in hex, "" when none): done so far
 * (resumed bytes included) of total (0 when unknown). Return false to cancel (the download
 * fails with OB_ERR_CANCELLED). */
typedef bool (*hub_progress_fn)(const char *file, const char *sha256, uint64_t done,
                                uint64_t total, void *user);

typedef struct hub_http {
    const char *token;     /* borrowed: bearer token, NULL for none */
    hub_progress_fn progress;
    void *progress_user;
    long connect_timeout_s; /* 0: libcurl's default */
    long stall_timeout_s;   /* abort a transfer below 1 byte/s for this long; 0: 30 */
} hub_http;

/* GET url into *body (new, NUL-terminated, ob_free), at most `limit` bytes. HTTP errors are
 * OB_ERR_IO with the status explained (401/403: a token, 404: not found). next (HUB_URL_MAX
 * bytes, may be NULL) gets the URL of the response's `Link: <URL>; rel="next"` header, ""
 * when none: the hub pages long listings that way. */
#define HUB_URL_MAX 4096
ob_status hub_http_get(const hub_http *h, const char *url, size_t limit, char **body,
                       size_t *len, char *next, ob_err *err);

/* Downloads url into `partial`, resuming from its current length with a Range request (a
 * server that answers 200 instead of 206 starts the file over), and hashes the whole file as
 * it goes. expected_size (0: unknown) is checked against what the server says and what it
 * sends. On success sha256 holds the file's hash (hex) and etag the server's ETag ("" when
 * none). A failed download keeps the partial file for the next try. */
ob_status hub_http_download(const hub_http *h, const char *url, const char *partial,
                            const char *label, const char *digest, uint64_t expected_size,
                            char sha256[65],
                            char etag[256], ob_err *err);

/* SHA-256 (hex) of a whole file. */
ob_status hub_sha256_file(const char *path, char out[65], ob_err *err);

/* ---- the pull (hub_pull.c) ---- */

typedef struct hub_pull_opts {
    const char *base;     /* hub base URL; NULL: OUTBOARD_HUB or HUB_DEFAULT_BASE */
    const char *revision; /* NULL: "main" */
    const char *name;     /* store name to install as; NULL: from the reference */
    bool offline;         /* never touch the network: succeed only if already installed */
    hub_http http;
    /* Status lines ("pulling manifest", "verifying sha256 digest", ...) as they happen. */
    void (*status)(const char *line, void *user);
    void *status_user;
} hub_pull_opts;

/* Fetches ref into the store at root and installs it; name_out (STORE_NAME_MAX + 1 bytes)
 * gets the store name. Errors name the file and the reason (HTTP status, size, hash, GGUF
 * check, disk); nothing is installed unless every part downloaded, matched and validated. */
ob_status hub_pull(const char *root, const char *ref, const hub_pull_opts *o, char *name_out,
                   ob_err *err);

/* The base URL hub_pull uses when o->base is NULL. */
const char *hub_base(void);

#endif
