/*
 * manifest.json: what the store knows about one model. Read back from disk it is untrusted
 * (a person may have edited it), so every field is checked as if it came from the network.
 * Written through a temporary file, fsync and rename, so a crash leaves the old or the new
 * manifest, never half of one.
 */
#include "store/store.h"
#include "core/alloc.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void store_manifest_clear(store_manifest *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_files; i++) {
        ob_free(m->files[i].name);
        ob_free(m->files[i].url);
    }
    ob_free(m->files);
    ob_free(m->source);
    ob_free(m->repo);
    ob_free(m->revision);
    ob_free(m->etag);
    memset(m, 0, sizeof *m);
}

/* ---- reading ----------------------------------------------------------------------------- */

static bool is_sha256(const char *s) {
    if (strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

/* An optional string field: absent or null leaves *out NULL. */
static ob_status opt_str(json_t *o, const char *key, char **out, ob_err *err) {
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return OB_OK;
    if (!json_is_string(v)) return ob_fail(err, OB_ERR_FORMAT, "manifest: '%s' is not a string", key);
    *out = ob_strndup(json_string_value(v), json_string_length(v));
    return *out ? OB_OK : ob_fail(err, OB_ERR_NOMEM, "manifest: out of memory");
}

static ob_status req_int(json_t *o, const char *key, int64_t *out, ob_err *err) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return ob_fail(err, OB_ERR_FORMAT, "manifest: '%s' is not a non-negative integer", key);
    *out = json_integer_value(v);
    return OB_OK;
}

static ob_status parse_file(json_t *f, size_t i, store_file *out, ob_err *err) {
    json_t *name = json_object_get(f, "name"), *sha = json_object_get(f, "sha256");
    if (!json_is_object(f) || !json_is_string(name) ||
        !store_part_ok(json_string_value(name), json_string_length(name)) ||
        json_string_length(name) != strlen(json_string_value(name)))
        return ob_fail(err, OB_ERR_FORMAT, "manifest: files[%zu]: 'name' is not a file name", i);
    if (!json_is_string(sha) || !is_sha256(json_string_value(sha)))
        return ob_fail(err, OB_ERR_FORMAT, "manifest: files[%zu]: 'sha256' is not 64 hex digits", i);
    int64_t size = 0;
    ob_status st = req_int(f, "size", &size, err);
    if (st) return ob_fail(err, st, "manifest: files[%zu]: 'size' is not a byte count", i);
    memcpy(out->sha256, json_string_value(sha), 65);
    out->size = (uint64_t)size;
    out->name = ob_strndup(json_string_value(name), json_string_length(name));
    if (!out->name) return ob_fail(err, OB_ERR_NOMEM, "manifest: out of memory");
    return opt_str(f, "url", &out->url, err);
}

static ob_status parse_fields(json_t *root, store_manifest *out, ob_err *err) {
    json_t *name = json_object_get(root, "name"), *files = json_object_get(root, "files");
    store_name n;
    if (!json_is_string(name) || store_name_parse(json_string_value(name), &n, NULL) ||
        !n.tag[0])
        return ob_fail(err, OB_ERR_FORMAT, "manifest: 'name' is not an org/repo:TAG name");
    snprintf(out->name, sizeof out->name, "%s", json_string_value(name));
    ob_status st = opt_str(root, "source", &out->source, err);
    if (!st) st = opt_str(root, "repo", &out->repo, err);
    if (!st) st = opt_str(root, "revision", &out->revision, err);
    if (!st) st = opt_str(root, "etag", &out->etag, err);
    if (!st) st = req_int(root, "pulled_at", &out->pulled_at, err);
    if (!st) st = req_int(root, "last_used", &out->last_used, err);
    if (st) return st;
    size_t nf = json_array_size(files);
    if (!json_is_array(files) || nf == 0 || nf > STORE_MAX_FILES)
        return ob_fail(err, OB_ERR_FORMAT, "manifest: 'files' is not a list of 1 to %d files",
                       STORE_MAX_FILES);
    out->files = ob_calloc(nf, sizeof *out->files);
    if (!out->files) return ob_fail(err, OB_ERR_NOMEM, "manifest: out of memory");
    for (size_t i = 0; i < nf; i++) {
        out->n_files = i + 1;
        if ((st = parse_file(json_array_get(files, i), i, &out->files[i], err))) return st;
        if (out->files[i].size > UINT64_MAX - out->size)
            return ob_fail(err, OB_ERR_FORMAT, "manifest: the file sizes overflow");
        out->size += out->files[i].size;
    }
    return OB_OK;
}

ob_status store_manifest_parse(const char *text, size_t len, store_manifest *out, ob_err *err) {
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        store_text_scrub(je.text);
        return ob_fail(err, OB_ERR_FORMAT, "manifest:%d:%d: %s", je.line, je.column, je.text);
    }
    ob_status st = json_is_object(root)
                       ? parse_fields(root, out, err)
                       : ob_fail(err, OB_ERR_FORMAT, "manifest: not a JSON object");
    json_decref(root);
    if (st) store_manifest_clear(out);
    if (st && err) store_text_scrub(err->msg);
    return st;
}

ob_status store_manifest_read(const char *dir, store_manifest *out, ob_err *err) {
    memset(out, 0, sizeof *out);
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return ob_fail(err, OB_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = ob_alloc(STORE_MANIFEST_MAX + 1, 1);
    size_t n = buf ? fread(buf, 1, STORE_MANIFEST_MAX + 1, f) : 0;
    fclose(f);
    ob_status st;
    if (!buf) st = ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", path);
    else if (n > STORE_MANIFEST_MAX) st = ob_fail(err, OB_ERR_LIMIT, "%s: over 1 MiB", path);
    else if ((st = store_manifest_parse(buf, n, out, err))) ob_err_prefix(err, path);
    ob_free(buf);
    return st;
}

/* ---- writing ----------------------------------------------------------------------------- */

static int set_str(json_t *o, const char *key, const char *v) {
    return json_object_set_new(o, key, v ? json_string(v) : json_null());
}

json_t *store_manifest_json(const store_manifest *m) {
    json_t *o = json_object(), *files = json_array();
    int bad = !o || !files;
    for (size_t i = 0; !bad && i < m->n_files; i++) {
        const store_file *f = &m->files[i];
        json_t *jf = json_pack("{s:s, s:s, s:I}", "name", f->name, "sha256", f->sha256, "size",
                               (json_int_t)f->size);
        bad |= !jf || set_str(jf, "url", f->url) || json_array_append_new(files, jf);
    }
    if (!bad) {
        bad |= set_str(o, "name", m->name) || set_str(o, "source", m->source) ||
               set_str(o, "repo", m->repo) || set_str(o, "revision", m->revision) ||
               set_str(o, "etag", m->etag) ||
               json_object_set_new(o, "size", json_integer((json_int_t)m->size)) ||
               json_object_set_new(o, "pulled_at", json_integer(m->pulled_at)) ||
               json_object_set_new(o, "last_used", json_integer(m->last_used)) ||
               json_object_set(o, "files", files);
    }
    json_decref(files);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

ob_status store_manifest_write(const char *dir, const store_manifest *m, ob_err *err) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    snprintf(tmp, sizeof tmp, "%s/.manifest.json.%ld", dir, (long)getpid());
    json_t *o = store_manifest_json(m);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (!text) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    ob_status st = OB_OK;
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd))
        st = ob_fail(err, OB_ERR_IO, "writing %s: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) && !st) st = ob_fail(err, OB_ERR_IO, "%s: %s", tmp, strerror(errno));
    free(text); /* jansson's allocation */
    if (!st && rename(tmp, path)) st = ob_fail(err, OB_ERR_IO, "%s: %s", path, strerror(errno));
    if (st) unlink(tmp);
    return st;
}
