/*
 * The calibration file (calib.h): plain text, one record per line, fields separated by tabs so
 * a device name may hold spaces:
 *
 *     outboard-calibration  1
 *     backend  KEY  THREADS  READ_GBS
 *     type  QTYPE  DECODE_PASS_US  DECODE_LAYER_US  DECODE_GBS
 *           PREFILL_PASS_US  PREFILL_LAYER_US  PREFILL_GMACS       (one line)
 *     link  KEY  EMULATE_GBPS  EMULATE_LATENCY_US  H2D_GBS  H2D_LATENCY_US  D2H_GBS  D2H_LATENCY_US
 *
 * A `type` line belongs to the `backend` line above it. The file is read as untrusted input: a
 * line that does not parse, a figure that is not a finite number in range, or a first line
 * other than this version's makes the whole file rejected (never half trusted).
 */
#include "model/calib.h"

#include "core/alloc.h"
#include "core/err.h"
#include "gguf/qtype.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CALIB_MAGIC "outboard-calibration"
#define MAX_FIELDS 9
#define FIGURE_MAX 1e12 /* no rate, latency or bandwidth figure reaches this */
#define FIGURE_MIN 1e-12 /* nor, above 0, falls below this */

/* ---- lookups ----------------------------------------------------------------------------- */

/* A figure as the file keeps it: six significant digits (calib_format's %.6g). Parsing and the
 * link key's emulation figures go through this, so two figures the file cannot tell apart are
 * one figure everywhere and what is read formats back to the same text. */
static double as_written(double v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", v);
    return strtod(buf, NULL);
}

const calib_backend *calib_backend_find(const calib *c, const char *key, int n_threads) {
    for (int i = 0; c && i < c->n_backends; i++)
        if (!strcmp(c->backends[i].key, key) && c->backends[i].n_threads == n_threads)
            return &c->backends[i];
    return NULL;
}

calib_backend *calib_backend_add(calib *c, const char *key, int n_threads) {
    calib_backend *b = (calib_backend *)calib_backend_find(c, key, n_threads);
    if (b) return b;
    if (c->n_backends == CALIB_MAX_BACKENDS) return NULL;
    b = &c->backends[c->n_backends++];
    memset(b, 0, sizeof *b);
    snprintf(b->key, sizeof b->key, "%s", key);
    b->n_threads = n_threads;
    return b;
}

const calib_type *calib_type_find(const calib_backend *b, uint32_t qtype) {
    for (int i = 0; b && i < b->n_types; i++)
        if (b->types[i].qtype == qtype) return &b->types[i];
    return NULL;
}

calib_type *calib_type_add(calib_backend *b, uint32_t qtype) {
    calib_type *t = (calib_type *)calib_type_find(b, qtype);
    if (!t && b->n_types < CALIB_MAX_TYPES) t = &b->types[b->n_types++];
    if (t) *t = (calib_type){.qtype = qtype};
    return t;
}

const calib_link *calib_link_find(const calib *c, const char *key, double emulate_gbps,
                                  double emulate_latency_us) {
    emulate_gbps = as_written(emulate_gbps);
    emulate_latency_us = as_written(emulate_latency_us);
    for (int i = 0; c && i < c->n_links; i++) {
        const calib_link *l = &c->links[i];
        if (!strcmp(l->key, key) && l->emulate_gbps == emulate_gbps &&
            l->emulate_latency_us == emulate_latency_us)
            return l;
    }
    return NULL;
}

calib_link *calib_link_add(calib *c, const char *key, double emulate_gbps,
                           double emulate_latency_us) {
    calib_link *l = (calib_link *)calib_link_find(c, key, emulate_gbps, emulate_latency_us);
    if (!l && c->n_links < CALIB_MAX_LINKS) l = &c->links[c->n_links++];
    if (!l) return NULL;
    *l = (calib_link){.emulate_gbps = as_written(emulate_gbps),
                      .emulate_latency_us = as_written(emulate_latency_us)};
    snprintf(l->key, sizeof l->key, "%s", key);
    return l;
}

/* ---- parsing ----------------------------------------------------------------------------- */

/* Splits line (modified in place) at tabs into at most MAX_FIELDS fields; -1 when more. */
static int split(char *line, char **f) {
    int n = 0;
    for (char *p = line;; p++) {
        if (n == MAX_FIELDS) return -1;
        f[n++] = p;
        p = strchr(p, '\t');
        if (!p) return n;
        *p = '\0';
    }
}

static bool figure(const char *s, double *out) {
    if (!*s) return false;
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    /* a figure too small to scale to and from its unit without underflowing is no figure */
    if (*end || errno || !isfinite(v) || v < 0 || v > FIGURE_MAX || (v > 0 && v < FIGURE_MIN))
        return false;
    *out = as_written(v);
    return true;
}

/* A key: printable ASCII, no tab, shorter than CALIB_KEY_SIZE. */
static bool key_ok(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e) return false;
    return n > 0 && n < CALIB_KEY_SIZE;
}

static bool qtype_of(const char *s, uint32_t *out) {
    for (uint32_t t = 0; t < OB_QTYPE_COUNT; t++) {
        const char *name = gguf_qtype_name(t);
        if (name && !strcasecmp(name, s)) {
            *out = t;
            return true;
        }
    }
    return false;
}

static ob_status parse_backend(calib *c, char **f, int n, const char **why) {
    double threads, gbs;
    if (n != 4 || !key_ok(f[1]) || !figure(f[2], &threads) || threads != floor(threads) ||
        threads > 4096 || !figure(f[3], &gbs))
        return *why = "expected: backend KEY THREADS READ_GBS", OB_ERR_FORMAT;
    if (calib_backend_find(c, f[1], (int)threads))
        return *why = "this backend appears twice", OB_ERR_FORMAT;
    calib_backend *b = calib_backend_add(c, f[1], (int)threads);
    if (!b) return *why = "too many backends", OB_ERR_LIMIT;
    b->read_gbs = gbs;
    return OB_OK;
}

static ob_status parse_type(calib *c, char **f, int n, const char **why) {
    double v[6];
    uint32_t qt;
    if (!c->n_backends) return *why = "a type before any backend", OB_ERR_FORMAT;
    bool ok = n == 8 && qtype_of(f[1], &qt);
    for (int i = 0; ok && i < 6; i++) ok = figure(f[2 + i], &v[i]);
    if (!ok || v[2] <= 0 || v[5] <= 0)
        return *why = "expected: type QTYPE six figures, rates above 0", OB_ERR_FORMAT;
    calib_backend *b = &c->backends[c->n_backends - 1];
    if (calib_type_find(b, qt)) return *why = "this type appears twice", OB_ERR_FORMAT;
    calib_type *t = calib_type_add(b, qt);
    if (!t) return *why = "too many types", OB_ERR_LIMIT;
    t->decode = (calib_cost){v[0] * 1e-6, v[1] * 1e-6, v[2] * 1e9};
    t->prefill = (calib_cost){v[3] * 1e-6, v[4] * 1e-6, v[5] * 1e9};
    return OB_OK;
}

static ob_status parse_link(calib *c, char **f, int n, const char **why) {
    double v[6];
    bool ok = n == 8 && key_ok(f[1]);
    for (int i = 0; ok && i < 6; i++) ok = figure(f[2 + i], &v[i]);
    if (!ok || v[2] <= 0 || v[4] <= 0)
        return *why = "expected: link KEY six figures, bandwidths above 0", OB_ERR_FORMAT;
    if (calib_link_find(c, f[1], v[0], v[1])) return *why = "this link appears twice",
                                                      OB_ERR_FORMAT;
    calib_link *l = calib_link_add(c, f[1], v[0], v[1]);
    if (!l) return *why = "too many links", OB_ERR_LIMIT;
    l->h2d_gbs = v[2];
    l->h2d_latency_us = v[3];
    l->d2h_gbs = v[4];
    l->d2h_latency_us = v[5];
    return OB_OK;
}

ob_status calib_parse(const char *text, size_t len, calib *out, ob_err *err) {
    memset(out, 0, sizeof *out);
    if (len > CALIB_FILE_MAX)
        return ob_fail(err, OB_ERR_FORMAT, "%zu bytes, more than a calibration holds", len);
    char *buf = ob_alloc(len + 1, 1);
    if (!buf) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    memcpy(buf, text, len);
    buf[len] = '\0';
    ob_status st = memchr(text, '\0', len) ? OB_ERR_FORMAT : OB_OK;
    const char *why = "a NUL byte";
    int line_no = 1;
    char *line = buf;
    for (; !st && line && *line; line_no++) {
        char *nl = strchr(line, '\n'), *f[MAX_FIELDS];
        if (nl) *nl = '\0';
        const int n = split(line, f);
        if (line_no == 1) {
            char expect[32];
            snprintf(expect, sizeof expect, "%d", CALIB_VERSION);
            if (n != 2 || strcmp(f[0], CALIB_MAGIC) || strcmp(f[1], expect))
                st = OB_ERR_FORMAT, why = "not an outboard calibration of this version";
        } else if (n < 1) {
            st = OB_ERR_FORMAT, why = "too many fields";
        } else if (!strcmp(f[0], "backend")) {
            st = parse_backend(out, f, n, &why);
        } else if (!strcmp(f[0], "type")) {
            st = parse_type(out, f, n, &why);
        } else if (!strcmp(f[0], "link")) {
            st = parse_link(out, f, n, &why);
        } else {
            st = OB_ERR_FORMAT, why = "unknown record";
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!st && line_no == 1) st = OB_ERR_FORMAT, why = "empty", line_no = 2;
    ob_free(buf);
    if (st) {
        memset(out, 0, sizeof *out);
        return ob_fail(err, st, "line %d: %s", line_no - 1, why);
    }
    return OB_OK;
}

/* ---- writing ----------------------------------------------------------------------------- */

char *calib_format(const calib *c) {
    const size_t cap = CALIB_FILE_MAX;
    char *s = ob_alloc(cap, 1);
    if (!s) return NULL;
    size_t n = (size_t)snprintf(s, cap, "%s\t%d\n", CALIB_MAGIC, CALIB_VERSION);
#define PUT(...) (n += n < cap ? (size_t)snprintf(s + n, cap - n, __VA_ARGS__) : 0)
    for (int i = 0; i < c->n_backends; i++) {
        const calib_backend *b = &c->backends[i];
        PUT("backend\t%s\t%d\t%.6g\n", b->key, b->n_threads, b->read_gbs);
        for (int k = 0; k < b->n_types; k++) {
            const calib_type *t = &b->types[k];
            PUT("type\t%s\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\n", gguf_qtype_name(t->qtype),
                t->decode.pass_s * 1e6, t->decode.layer_s * 1e6, t->decode.rate * 1e-9,
                t->prefill.pass_s * 1e6, t->prefill.layer_s * 1e6, t->prefill.rate * 1e-9);
        }
    }
    for (int i = 0; i < c->n_links; i++) {
        const calib_link *l = &c->links[i];
        PUT("link\t%s\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\n", l->key, l->emulate_gbps,
            l->emulate_latency_us, l->h2d_gbs, l->h2d_latency_us, l->d2h_gbs, l->d2h_latency_us);
    }
#undef PUT
    if (n >= cap) { /* cannot happen within the named limits; never write a cut file */
        ob_free(s);
        return NULL;
    }
    return s;
}

ob_status calib_path(char *buf, size_t cap, ob_err *err) {
    const char *over = getenv("OUTBOARD_CALIBRATION"), *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (over && over[0]) n = snprintf(buf, cap, "%s", over);
    else if (xdg && xdg[0] == '/') n = snprintf(buf, cap, "%s/outboard/calibration", xdg);
    else if (home && home[0]) n = snprintf(buf, cap, "%s/.config/outboard/calibration", home);
    else
        return ob_fail(err, OB_ERR_ARG, "no config directory: set XDG_CONFIG_HOME or HOME");
    if (n < 0 || (size_t)n >= cap) return ob_fail(err, OB_ERR_LIMIT, "config path too long");
    return OB_OK;
}

ob_status calib_load(const char *path, calib *out, ob_err *err) {
    char def[4096];
    memset(out, 0, sizeof *out);
    if (!path) {
        ob_status st = calib_path(def, sizeof def, err);
        if (st) return st;
        path = def;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return ob_fail(err, OB_ERR_IO, "%s: %s", path, strerror(errno));
    char *text = ob_alloc(CALIB_FILE_MAX + 1, 1);
    size_t len = text ? fread(text, 1, CALIB_FILE_MAX + 1, f) : 0;
    const bool bad = ferror(f);
    fclose(f);
    ob_status st = !text ? ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", path)
                   : bad ? ob_fail(err, OB_ERR_IO, "%s: read error", path)
                         : calib_parse(text, len, out, err);
    ob_free(text);
    if (st == OB_ERR_FORMAT || st == OB_ERR_LIMIT) {
        ob_err_prefix(err, path);
        st = OB_ERR_FORMAT;
    }
    return st;
}

/* mkdir -p of the directory part of path. */
static ob_status make_parent(const char *path, ob_err *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ob_fail(err, OB_ERR_LIMIT, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST)
            return ob_fail(err, OB_ERR_IO, "%s: %s", buf, strerror(errno));
        *p = '/';
    }
    return OB_OK;
}

ob_status calib_save(const char *path, const calib *c, ob_err *err) {
    char def[4096], tmp[4200];
    if (!path) {
        ob_status st = calib_path(def, sizeof def, err);
        if (st) return st;
        path = def;
    }
    ob_status st = make_parent(path, err);
    if (st) return st;
    char *text = calib_format(c);
    if (!text) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", path);
    /* never write what calib_load would reject: a file is all trusted or not at all */
    calib *check = ob_alloc(1, sizeof *check);
    ob_err why = {{0}};
    st = !check ? ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", path)
         : calib_parse(text, strlen(text), check, &why)
             ? ob_fail(err, OB_ERR_ARG, "%s: not written, the figures are not valid (%s)",
                       path, why.msg)
             : OB_OK;
    ob_free(check);
    if (st) {
        ob_free(text);
        return st;
    }
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd))
        st = ob_fail(err, OB_ERR_IO, "writing %s: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) && !st) st = ob_fail(err, OB_ERR_IO, "%s: %s", tmp, strerror(errno));
    ob_free(text);
    if (!st && rename(tmp, path)) st = ob_fail(err, OB_ERR_IO, "%s: %s", path, strerror(errno));
    if (st) unlink(tmp);
    return st;
}
