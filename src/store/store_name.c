/*
 * Store names (`org/repo:TAG`): the one check that keeps every name inside the store. A part
 * is made only of characters that mean nothing to a file system, and never starts with '.',
 * so ".", "..", hidden files, separators, absolute paths and control bytes cannot appear.
 */
#include "store/store.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

static bool part_char_ok(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

bool store_part_ok(const char *s, size_t len) {
    if (len == 0 || len > STORE_PART_MAX || s[0] == '.') return false;
    for (size_t i = 0; i < len; i++)
        if (!part_char_ok(s[i])) return false;
    return true;
}

/* Copies part `what` of a name, or says what is wrong with it. */
static ob_status take_part(const char *what, const char *s, size_t len, char *out,
                           const char *name, ob_err *err) {
    if (len == 0) return ob_fail(err, OB_ERR_ARG, "model name '%s': the %s is empty", name, what);
    if (len > STORE_PART_MAX)
        return ob_fail(err, OB_ERR_ARG, "model name: the %s is longer than %d bytes", what,
                       STORE_PART_MAX);
    if (!store_part_ok(s, len)) {
        char shown[STORE_PART_MAX + 1]; /* control bytes as '?': the message stays one line */
        for (size_t i = 0; i < len; i++)
            shown[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        shown[len] = 0;
        return ob_fail(err, OB_ERR_ARG,
                       "model name '%s': the %s '%s' may hold only letters, digits, '.', '_' "
                       "and '-', and may not start with '.'",
                       name, what, shown);
    }
    memcpy(out, s, len);
    out[len] = 0;
    return OB_OK;
}

ob_status store_name_parse(const char *text, store_name *out, ob_err *err) {
    memset(out, 0, sizeof *out);
    size_t len = strnlen(text, STORE_NAME_MAX + 1);
    if (len > STORE_NAME_MAX)
        return ob_fail(err, OB_ERR_ARG, "model name: longer than %d bytes", STORE_NAME_MAX);
    /* The name as messages show it: control bytes would break the one-line message. */
    char shown[STORE_NAME_MAX + 1];
    for (size_t i = 0; i <= len; i++)
        shown[i] = i < len && ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) ? '?' : text[i];
    const char *slash = memchr(text, '/', len);
    if (!slash)
        return ob_fail(err, OB_ERR_ARG, "model name '%s': expected org/repo or org/repo:TAG",
                       shown);
    const char *colon = memchr(slash, ':', len - (size_t)(slash - text));
    const char *end = text + len;
    const char *repo_end = colon ? colon : end;
    ob_status st = take_part("organisation", text, (size_t)(slash - text), out->org, shown, err);
    if (!st)
        st = take_part("repository", slash + 1, (size_t)(repo_end - slash - 1), out->repo, shown,
                       err);
    if (!st && colon) st = take_part("tag", colon + 1, (size_t)(end - colon - 1), out->tag, shown, err);
    return st;
}

void store_text_scrub(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

void store_name_format(const store_name *n, char *buf) {
    snprintf(buf, STORE_NAME_MAX + 1, "%s/%s%s%s", n->org, n->repo, n->tag[0] ? ":" : "",
             n->tag);
}
