/*
 * One pull, from a reference to an installed model:
 *
 *   list     GET {base}/api/models/{repo}/tree/{rev}?recursive=true (files, sizes, LFS sha256)
 *   choose   hub_tree_choose: the quantization asked for, a split set whole
 *   fetch    each part to ROOT/.tmp/{sha256}.partial (resumed on the next try), checked against
 *            the listed size and sha256; a wrong hash deletes the partial file
 *   validate each part parsed by our GGUF reader
 *   install  the parts and manifest.json in a staging folder, renamed into place
 *
 * A plain URL skips the listing: its one file has no published hash, so the manifest records
 * the hash of what arrived, and the GGUF check is what stands between a bad file and the store.
 */
#include "hub/hub.h"
#include "core/alloc.h"
#include "core/err.h"
#include "gguf/gguf.h"

#include <openssl/evp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *hub_base(void) {
    const char *b = getenv("OUTBOARD_HUB");
    return b && b[0] ? b : HUB_DEFAULT_BASE;
}

static void say(const hub_pull_opts *o, const char *fmt, ...) OB_PRINTF(2, 3);
static void say(const hub_pull_opts *o, const char *fmt, ...) {
    if (!o->status) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->status(line, o->status_user);
}

/* What the pull will fetch: the files with where they come from and what they must be. */
typedef struct plan {
    store_name name;
    char repo[2 * STORE_PART_MAX + 2];
    const char *revision;
    size_t n;
    struct {
        char url[8192];
        char file[STORE_PART_MAX + 1]; /* name in the store */
        char sha256[65];               /* "" when not published */
        uint64_t size;                 /* 0 when not published */
    } part[STORE_MAX_FILES];
} plan;

/* s with each byte outside RFC 3986's unreserved set (and '/', kept as the separator when
 * keep_slash) percent-encoded, appended to buf. */
static void append_escaped(char *buf, size_t cap, const char *s, bool keep_slash) {
    size_t l = strlen(buf);
    for (; *s && l + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/'))
            buf[l++] = (char)c;
        else
            l += (size_t)snprintf(buf + l, cap - l, "%%%02X", c);
    }
    buf[l] = 0;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The whole tree listing: page after page while the hub links a next one. */
static ob_status list_pages(const hub_pull_opts *o, const char *base, const char *first,
                            hub_tree *t, ob_err *err) {
    char url[HUB_URL_MAX], next[HUB_URL_MAX];
    size_t first_len = strlen(first);
    if (first_len >= sizeof url)
        return ob_fail(err, OB_ERR_LIMIT, "tree listing: a URL of %zu bytes, the limit is %d",
                       first_len, HUB_URL_MAX - 1);
    memcpy(url, first, first_len + 1);
    ob_status st = OB_OK;
    for (int page = 0; !st && url[0]; page++) {
        if (page == HUB_MAX_PAGES)
            return ob_fail(err, OB_ERR_LIMIT, "tree listing: more than %d pages", HUB_MAX_PAGES);
        char *body = NULL;
        size_t len = 0;
        hub_tree part = {0};
        next[0] = 0;
        st = hub_http_get(&o->http, url, HUB_MAX_LISTING, &body, &len, next, err);
        if (!st) st = hub_tree_parse(body, len, &part, err);
        if (!st) st = hub_tree_append(t, &part, err);
        hub_tree_free(&part);
        ob_free(body);
        /* An absolute link, or a path on the hub. */
        if (next[0] == '/') snprintf(url, sizeof url, "%s%s", base, next);
        else if (!strncmp(next, "http://", 7) || !strncmp(next, "https://", 8))
            snprintf(url, sizeof url, "%s", next);
        else url[0] = 0;
    }
    return st;
}

/* The listing, the choice, and each part's URL. */
static ob_status plan_hub(const hub_ref *r, const hub_pull_opts *o, plan *p, ob_err *err) {
    const char *base = o->base ? o->base : hub_base();
    char url[8192];
    snprintf(url, sizeof url, "%s/api/models/%s/tree/", base, r->repo);
    append_escaped(url, sizeof url, p->revision, false);
    snprintf(url + strlen(url), sizeof url - strlen(url), "?recursive=true");
    say(o, "pulling manifest");
    hub_tree t = {0};
    ob_status st = list_pages(o, base, url, &t, err);
    size_t idx[STORE_MAX_FILES];
    char tag[STORE_PART_MAX + 1];
    if (!st) st = hub_tree_choose(&t, r->quant, idx, &p->n, tag, err);
    if (st) {
        ob_err_prefix(err, r->repo);
        hub_tree_free(&t);
        return st;
    }
    snprintf(p->repo, sizeof p->repo, "%s", r->repo);
    store_name_parse(r->repo, &p->name, NULL);
    memcpy(p->name.tag, tag, sizeof p->name.tag);
    for (size_t i = 0; !st && i < p->n; i++) {
        const hub_entry *e = &t.v[idx[i]];
        const char *b = base_name(e->path);
        if (!store_part_ok(b, strlen(b))) {
            st = ob_fail(err, OB_ERR_FORMAT, "%s: file name '%s' is not one the store can hold",
                         r->repo, b);
            if (err) store_text_scrub(err->msg);
            break;
        }
        snprintf(p->part[i].file, sizeof p->part[i].file, "%s", b);
        snprintf(p->part[i].sha256, sizeof p->part[i].sha256, "%s", e->sha256);
        p->part[i].size = e->size;
        snprintf(p->part[i].url, sizeof p->part[i].url, "%s/%s/resolve/", base, r->repo);
        append_escaped(p->part[i].url, sizeof p->part[i].url, p->revision, false);
        append_escaped(p->part[i].url, sizeof p->part[i].url, "/", true);
        append_escaped(p->part[i].url, sizeof p->part[i].url, e->path, true);
    }
    hub_tree_free(&t);
    return st;
}

/* A plain URL: one file named by the URL's last path segment. */
static ob_status plan_url(const hub_ref *r, plan *p, ob_err *err) {
    char file[1024];
    const char *b = base_name(r->url);
    size_t len = strcspn(b, "?#");
    if (len == 0 || len >= sizeof file)
        return ob_fail(err, OB_ERR_ARG, "%s: the URL does not end in a file name", r->url);
    memcpy(file, b, len);
    file[len] = 0;
    if (!store_part_ok(file, len) || len > STORE_PART_MAX || strlen(file) < 6 ||
        strcmp(file + len - 5, ".gguf"))
        return ob_fail(err, OB_ERR_ARG, "%s: expected a URL ending in a .gguf file name of "
                       "letters, digits, '.', '_' and '-'", r->url);
    p->n = 1;
    snprintf(p->part[0].url, sizeof p->part[0].url, "%s", r->url);
    memcpy(p->part[0].file, file, len + 1);
    /* The default name: url/STEM:QUANT, from the file's own name. */
    snprintf(p->name.org, sizeof p->name.org, "url");
    snprintf(p->name.repo, sizeof p->name.repo, "%.*s", (int)(len - 5), file);
    if (!hub_file_quant(file, p->name.tag)) snprintf(p->name.tag, sizeof p->name.tag, "default");
    return OB_OK;
}

static void sha256_text(const char *s, char out[65]) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), d, &n, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Downloads part i into staged/FILE, verified. The partial file is named by the published
 * hash (or the URL's hash) so a later pull of the same bytes resumes it. */
static ob_status fetch_part(const char *root, const char *staged, const plan *p, size_t i,
                            const hub_pull_opts *o, char *etag, store_file *rec, ob_err *err) {
    char key[65], partial[4300], dest[4400], got[65];
    if (p->part[i].sha256[0]) memcpy(key, p->part[i].sha256, 65);
    else sha256_text(p->part[i].url, key);
    snprintf(partial, sizeof partial, "%s/.tmp/%s.partial", root, key);
    snprintf(dest, sizeof dest, "%s/%s", staged, p->part[i].file);
    say(o, "pulling %s", p->part[i].file);
    ob_status st = hub_http_download(&o->http, p->part[i].url, partial, p->part[i].file,
                                     p->part[i].sha256, p->part[i].size, got, etag, err);
    if (st) return st;
    if (p->part[i].sha256[0]) {
        say(o, "verifying sha256 digest");
        if (strcmp(got, p->part[i].sha256)) {
            unlink(partial);
            return ob_fail(err, OB_ERR_FORMAT, "%s: sha256 %s does not match the hub's %s; the "
                           "downloaded file was deleted", p->part[i].file, got, p->part[i].sha256);
        }
    }
    if (rename(partial, dest))
        return ob_fail(err, OB_ERR_IO, "%s -> %s: %s", partial, dest, strerror(errno));
    struct stat sb;
    if (stat(dest, &sb)) return ob_fail(err, OB_ERR_IO, "%s: %s", dest, strerror(errno));
    memcpy(rec->sha256, got, 65);
    rec->size = (uint64_t)sb.st_size;
    rec->name = ob_strndup(p->part[i].file, strlen(p->part[i].file));
    rec->url = ob_strndup(p->part[i].url, strlen(p->part[i].url));
    return rec->name && rec->url ? OB_OK : ob_fail(err, OB_ERR_NOMEM, "out of memory");
}

/* Every part must parse as GGUF before the model is installed. */
static ob_status validate(const char *staged, const store_manifest *m, ob_err *err) {
    for (size_t i = 0; i < m->n_files; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", staged, m->files[i].name);
        gguf_file *g = NULL;
        ob_status st = gguf_open(path, &g, err);
        gguf_close(g);
        if (st) {
            ob_err e2;
            snprintf(e2.msg, sizeof e2.msg, "%s", err ? err->msg : "");
            return ob_fail(err, st, "%s is not a usable GGUF file, so it was not installed (%s)",
                           m->files[i].name, e2.msg);
        }
    }
    return OB_OK;
}

/* True when the store already holds exactly what the plan would fetch. */
static bool up_to_date(const char *root, const plan *p) {
    char name[STORE_NAME_MAX + 1];
    store_name_format(&p->name, name);
    store_entry e;
    if (store_find(root, name, &e, NULL)) return false;
    bool same = e.m.n_files == p->n;
    for (size_t i = 0; same && i < p->n; i++)
        same = p->part[i].sha256[0] && !strcmp(e.m.files[i].sha256, p->part[i].sha256) &&
               !strcmp(e.m.files[i].name, p->part[i].file);
    store_manifest_clear(&e.m);
    return same;
}

/* After a failure: parts that arrived whole and matched their published hash go back to
 * ROOT/.tmp as finished partial files, so the next pull of the set does not fetch them again. */
static void keep_verified(const char *root, const char *staged, const plan *p,
                          const store_manifest *m) {
    for (size_t i = 0; i < m->n_files && i < p->n; i++) {
        if (!p->part[i].sha256[0] || !m->files[i].name ||
            strcmp(m->files[i].sha256, p->part[i].sha256))
            continue;
        char from[4400], to[4300];
        snprintf(from, sizeof from, "%s/%s", staged, m->files[i].name);
        snprintf(to, sizeof to, "%s/.tmp/%s.partial", root, p->part[i].sha256);
        rename(from, to);
    }
}

/* Fetches, validates and installs the plan through a staging folder. */
static ob_status run_plan(const char *root, const hub_ref *r, const plan *p,
                          const hub_pull_opts *o, ob_err *err) {
    char staged[4200];
    static unsigned counter;
    snprintf(staged, sizeof staged, "%s/.tmp/stage-%ld-%ld-%u", root, (long)getpid(),
             (long)time(NULL), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    if (mkdir(staged, 0755)) return ob_fail(err, OB_ERR_IO, "%s: %s", staged, strerror(errno));
    store_manifest m = {0};
    char etag[256] = "";
    ob_status st = OB_OK;
    store_name_format(&p->name, m.name);
    if (!(m.files = ob_calloc(p->n, sizeof *m.files))) st = ob_fail(err, OB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < p->n; i++) {
        char this_etag[256] = "";
        st = fetch_part(root, staged, p, i, o, this_etag, &m.files[i], err);
        m.n_files = i + 1;
        if (!st) m.size += m.files[i].size;
        if (i == 0) memcpy(etag, this_etag, sizeof etag);
    }
    if (!st) st = validate(staged, &m, err);
    else keep_verified(root, staged, p, &m);
    if (!st) {
        m.source = ob_strndup(r->is_url ? "url" : "hub", r->is_url ? 3 : 3);
        m.repo = r->is_url ? NULL : ob_strndup(p->repo, strlen(p->repo));
        m.revision = r->is_url ? NULL : ob_strndup(p->revision, strlen(p->revision));
        m.etag = etag[0] ? ob_strndup(etag, strlen(etag)) : NULL;
        m.pulled_at = (int64_t)time(NULL);
        say(o, "writing manifest");
        st = store_manifest_write(staged, &m, err);
    }
    if (!st) st = store_fsync_path(staged, err);
    if (!st) st = store_install(root, staged, &p->name, err);
    if (st) store_rmtree(staged, NULL);
    store_manifest_clear(&m);
    return st;
}

/* --offline: the model must already be there; nothing is fetched. */
static ob_status pull_offline(const char *root, const hub_ref *r, const hub_pull_opts *o,
                              char *name_out, ob_err *err) {
    char name[STORE_NAME_MAX + 1];
    if (o->name) snprintf(name, sizeof name, "%s", o->name);
    else if (r->is_url)
        return ob_fail(err, OB_ERR_ARG, "--offline: a URL can only be fetched from the network");
    else snprintf(name, sizeof name, "%s%s%s", r->repo, r->quant[0] ? ":" : "", r->quant);
    store_entry e;
    if (store_find(root, name, &e, err)) {
        ob_err_prefix(err, "--offline: nothing is fetched");
        return OB_ERR_ARG;
    }
    snprintf(name_out, STORE_NAME_MAX + 1, "%s", e.m.name);
    store_manifest_clear(&e.m);
    return OB_OK;
}

ob_status hub_pull(const char *root, const char *ref, const hub_pull_opts *o, char *name_out,
                   ob_err *err) {
    hub_ref r;
    ob_status st = hub_ref_parse(ref, &r, err);
    if (st) return st;
    store_name forced;
    if (o->name && (st = store_name_parse(o->name, &forced, err))) return st;
    if (o->name && !forced.tag[0])
        return ob_fail(err, OB_ERR_ARG, "--name %s: needs a :TAG (org/repo:TAG)", o->name);
    if (o->offline) return pull_offline(root, &r, o, name_out, err);
    plan *p = ob_calloc(1, sizeof *p);
    if (!p) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    p->revision = o->revision ? o->revision : "main";
    if ((st = store_prepare(root, err))) goto done;
    st = r.is_url ? plan_url(&r, p, err) : plan_hub(&r, o, p, err);
    if (st) goto done;
    if (o->name) p->name = forced;
    store_name_format(&p->name, name_out);
    if (up_to_date(root, p)) {
        say(o, "%s is up to date", name_out);
        say(o, "success");
        goto done;
    }
    st = run_plan(root, &r, p, o, err);
    if (!st) say(o, "success");
done:
    ob_free(p);
    return st;
}
