/*
 * References and the choice of files from a tree listing. Pure functions over untrusted text
 * (the listing comes from the network): no I/O, fuzzed by tests/hub/tree_fuzz.c.
 *
 * The choice follows llama.cpp's `-hf org/repo:QUANT` (common/download.cpp, find_best_model):
 * the quantization must appear in the path followed by '.' or '-', matched without regard to
 * case, only model files count, and only a split set's first part is a candidate.
 */
#include "hub/hub.h"
#include "core/alloc.h"
#include "core/err.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

ob_status hub_ref_parse(const char *text, hub_ref *out, ob_err *err) {
    memset(out, 0, sizeof *out);
    size_t len = strnlen(text, sizeof out->url);
    if (!strncmp(text, "http://", 7) || !strncmp(text, "https://", 8)) {
        if (len >= sizeof out->url) return ob_fail(err, OB_ERR_ARG, "URL longer than 4095 bytes");
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)text[i] <= 0x20 || text[i] == 0x7f)
                return ob_fail(err, OB_ERR_ARG, "URL: byte %zu is a space or control character", i);
        out->is_url = true;
        memcpy(out->url, text, len + 1);
        return OB_OK;
    }
    store_name n;
    ob_status st = store_name_parse(text, &n, err);
    if (st) return st;
    snprintf(out->repo, sizeof out->repo, "%s/%s", n.org, n.repo);
    memcpy(out->quant, n.tag, sizeof out->quant);
    return OB_OK;
}

/* ---- the listing ------------------------------------------------------------------------- */

void hub_tree_free(hub_tree *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) ob_free(t->v[i].path);
    ob_free(t->v);
    t->v = NULL;
    t->n = 0;
}

ob_status hub_tree_append(hub_tree *dst, hub_tree *src, ob_err *err) {
    if (src->n == 0) return OB_OK;
    if (dst->n + src->n > HUB_MAX_LISTED)
        return ob_fail(err, OB_ERR_LIMIT, "tree listing: more than %d entries", HUB_MAX_LISTED);
    hub_entry *v = ob_realloc(dst->v, dst->n + src->n, sizeof *v);
    if (!v) return ob_fail(err, OB_ERR_NOMEM, "tree listing: out of memory");
    memcpy(v + dst->n, src->v, src->n * sizeof *v);
    dst->v = v;
    dst->n += src->n;
    ob_free(src->v);
    src->v = NULL;
    src->n = 0;
    return OB_OK;
}

static bool hex64(const char *s) {
    if (strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i])) return false;
    return true;
}

static ob_status parse_entry(json_t *e, size_t i, hub_entry *out, bool *keep, ob_err *err) {
    json_t *type = json_object_get(e, "type"), *path = json_object_get(e, "path");
    json_t *size = json_object_get(e, "size"), *lfs = json_object_get(e, "lfs");
    *keep = false;
    if (!json_is_object(e) || !json_is_string(path))
        return ob_fail(err, OB_ERR_FORMAT, "tree listing: entry %zu has no 'path'", i);
    if (!json_is_string(type) || strcmp(json_string_value(type), "file")) return OB_OK;
    if (json_string_length(path) != strlen(json_string_value(path)) ||
        json_string_length(path) == 0 || json_string_length(path) > 1024)
        return ob_fail(err, OB_ERR_FORMAT, "tree listing: entry %zu: bad path", i);
    if (json_is_object(lfs)) {
        json_t *oid = json_object_get(lfs, "oid"), *lsize = json_object_get(lfs, "size");
        if (!json_is_string(oid) || !hex64(json_string_value(oid)))
            return ob_fail(err, OB_ERR_FORMAT,
                           "tree listing: '%s': lfs.oid is not a SHA-256 in hex",
                           json_string_value(path));
        for (int k = 0; k < 64; k++) out->sha256[k] = (char)tolower(json_string_value(oid)[k]);
        out->sha256[64] = 0;
        if (json_is_integer(lsize)) size = lsize;
    }
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return ob_fail(err, OB_ERR_FORMAT, "tree listing: '%s': no size",
                       json_string_value(path));
    out->size = (uint64_t)json_integer_value(size);
    out->path = ob_strndup(json_string_value(path), json_string_length(path));
    if (!out->path) return ob_fail(err, OB_ERR_NOMEM, "tree listing: out of memory");
    *keep = true;
    return OB_OK;
}

ob_status hub_tree_parse(const char *json, size_t len, hub_tree *out, ob_err *err) {
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) {
        store_text_scrub(je.text);
        return ob_fail(err, OB_ERR_FORMAT, "tree listing:%d:%d: %s", je.line, je.column, je.text);
    }
    ob_status st = OB_OK;
    size_t n = json_array_size(root);
    if (!json_is_array(root)) st = ob_fail(err, OB_ERR_FORMAT, "tree listing: not a JSON array");
    else if (n > HUB_MAX_LISTED)
        st = ob_fail(err, OB_ERR_LIMIT, "tree listing: %zu entries, more than %d", n, HUB_MAX_LISTED);
    else if (n && !(out->v = ob_calloc(n, sizeof *out->v)))
        st = ob_fail(err, OB_ERR_NOMEM, "tree listing: out of memory");
    for (size_t i = 0; !st && i < n; i++) {
        bool keep = false;
        st = parse_entry(json_array_get(root, i), i, &out->v[out->n], &keep, err);
        if (keep) out->n++;
    }
    json_decref(root);
    if (st) hub_tree_free(out);
    if (st && err) store_text_scrub(err->msg); /* paths quoted from the listing */
    return st;
}

/* ---- the choice -------------------------------------------------------------------------- */

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static bool is_model_file(const char *path) {
    const char *b = base_name(path);
    return ends_with(path, ".gguf") && !strstr(b, "mmproj") && !strstr(b, "imatrix") &&
           !strstr(b, "mtp-") && !strstr(b, "eagle3-") && !strstr(b, "dflash-") &&
           !strstr(b, "dspark-");
}

/* "-IIIII-of-NNNNN.gguf" at the end of path: *index and *count; false when not split. The
 * stem (path without that suffix) is path[0..*stem_len). */
static bool split_info(const char *path, int *index, int *count, size_t *stem_len) {
    size_t len = strlen(path);
    static const char SUFFIX[] = "-00000-of-00000.gguf";
    size_t sl = sizeof SUFFIX - 1;
    if (len < sl + 1) return false;
    const char *s = path + len - sl;
    int a = 0, b = 0;
    for (int i = 0; i < 20; i++) {
        char want = SUFFIX[i], c = s[i];
        if (want == '0') {
            if (!isdigit((unsigned char)c)) return false;
            if (i < 6) a = a * 10 + (c - '0');
            else b = b * 10 + (c - '0');
        } else if (tolower((unsigned char)c) != want) {
            return false;
        }
    }
    if (a < 1 || b < 1 || a > b) return false;
    *index = a;
    *count = b;
    *stem_len = len - sl;
    return true;
}

/* Case-insensitive search for quant followed by '.' or '-' in path. */
static bool matches_quant(const char *path, const char *quant) {
    size_t q = strlen(quant);
    for (const char *p = path; *p; p++) {
        if (strncasecmp(p, quant, q)) continue;
        if (p[q] == '.' || p[q] == '-') return true;
    }
    return false;
}

bool hub_file_quant(const char *path, char tag[STORE_PART_MAX + 1]) {
    char stem[1100];
    int idx, cnt;
    size_t len;
    if (split_info(path, &idx, &cnt, &len)) {
    } else if (ends_with(path, ".gguf")) {
        len = strlen(path) - 5;
    } else {
        return false;
    }
    if (len >= sizeof stem) return false;
    memcpy(stem, path, len);
    stem[len] = 0;
    /* llama.cpp's tag: the run of [A-Za-z0-9_] after the last '.' or '-' of the stem. */
    size_t start = len;
    while (start > 0 && (isalnum((unsigned char)stem[start - 1]) || stem[start - 1] == '_')) start--;
    if (start == 0 || start == len || (stem[start - 1] != '-' && stem[start - 1] != '.') ||
        len - start > STORE_PART_MAX)
        return false;
    for (size_t i = start; i <= len; i++) tag[i - start] = (char)toupper((unsigned char)stem[i]);
    return true;
}

static bool first_part_or_single(const char *path) {
    int idx, cnt;
    size_t sl;
    return !split_info(path, &idx, &cnt, &sl) || idx == 1;
}

/* The first model file matching quant (NULL quant: any); SIZE_MAX when none. */
static size_t find_model(const hub_tree *t, const char *quant) {
    for (size_t i = 0; i < t->n; i++)
        if (is_model_file(t->v[i].path) && first_part_or_single(t->v[i].path) &&
            (!quant || matches_quant(t->v[i].path, quant)))
            return i;
    return SIZE_MAX;
}

/* Fills idx with every part of the split set whose first part is t->v[first]. */
static ob_status expand_split(const hub_tree *t, size_t first, size_t *idx, size_t *n, ob_err *err) {
    int index, count;
    size_t stem;
    const char *p = t->v[first].path;
    *n = 0;
    if (!split_info(p, &index, &count, &stem)) {
        idx[(*n)++] = first;
        return OB_OK;
    }
    if (count > STORE_MAX_FILES)
        return ob_fail(err, OB_ERR_LIMIT, "%s: %d parts, more than %d", p, count, STORE_MAX_FILES);
    for (int part = 1; part <= count; part++) {
        size_t found = SIZE_MAX;
        for (size_t i = 0; i < t->n && found == SIZE_MAX; i++) {
            int pi, pc;
            size_t ps;
            if (split_info(t->v[i].path, &pi, &pc, &ps) && pi == part && pc == count &&
                ps == stem && !strncmp(t->v[i].path, p, stem))
                found = i;
        }
        if (found == SIZE_MAX)
            return ob_fail(err, OB_ERR_FORMAT, "%.*s: part %d of %d is not in the repository",
                           (int)stem, p, part, count);
        idx[(*n)++] = found;
    }
    return OB_OK;
}

/* "Q4_K_M, Q8_0" of the model files listed, for the message when nothing matches. */
static void list_quants(const hub_tree *t, char *buf, size_t cap) {
    buf[0] = 0;
    for (size_t i = 0; i < t->n; i++) {
        char q[STORE_PART_MAX + 1];
        if (!is_model_file(t->v[i].path) || !first_part_or_single(t->v[i].path) ||
            !hub_file_quant(t->v[i].path, q))
            continue;
        size_t l = strlen(buf);
        if (l + strlen(q) + 8 >= cap) break;
        snprintf(buf + l, cap - l, "%s%s", l ? ", " : "", q);
    }
}

ob_status hub_tree_choose(const hub_tree *t, const char *quant, size_t *idx, size_t *n,
                          char tag[STORE_PART_MAX + 1], ob_err *err) {
    size_t pick = SIZE_MAX;
    *n = 0;
    if (quant && quant[0]) {
        pick = find_model(t, quant);
    } else {
        pick = find_model(t, "Q4_K_M");
        if (pick == SIZE_MAX) pick = find_model(t, "Q8_0");
        if (pick == SIZE_MAX) pick = find_model(t, NULL);
    }
    if (pick == SIZE_MAX) {
        char have[300];
        list_quants(t, have, sizeof have);
        if (quant && quant[0])
            return ob_fail(err, OB_ERR_ARG, "no GGUF file for quantization %s (the repository "
                           "has: %s)", quant, have[0] ? have : "no GGUF model files");
        return ob_fail(err, OB_ERR_ARG, "the repository has no GGUF model files");
    }
    ob_status st = expand_split(t, pick, idx, n, err);
    if (st) {
        if (err) store_text_scrub(err->msg);
        return st;
    }
    if (quant && quant[0]) {
        size_t i = 0;
        for (; quant[i] && i < STORE_PART_MAX; i++) tag[i] = (char)toupper((unsigned char)quant[i]);
        tag[i] = 0;
    } else if (!hub_file_quant(t->v[pick].path, tag)) {
        snprintf(tag, STORE_PART_MAX + 1, "default");
    }
    return OB_OK;
}
