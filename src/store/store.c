/*
 * The store on disk: where it is, what it holds, and the two changes made to it (install and
 * remove), each a rename so a reader sees a whole model or none. Also the resolver that turns
 * any command's -m argument into a GGUF path, so every command takes store names the same way.
 */
#include "store/store.h"
#include "core/alloc.h"
#include "core/err.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

ob_status store_root(char *buf, size_t cap, ob_err *err) {
    const char *over = getenv("OUTBOARD_MODELS"), *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    int n;
    if (over && over[0]) n = snprintf(buf, cap, "%s", over);
#ifdef __APPLE__
    else if (home && home[0])
        n = snprintf(buf, cap, "%s/Library/Application Support/outboard/models", home);
#else
    else if (xdg && xdg[0] == '/') n = snprintf(buf, cap, "%s/outboard/models", xdg);
    else if (home && home[0]) n = snprintf(buf, cap, "%s/.local/share/outboard/models", home);
#endif
    else
        return ob_fail(err, OB_ERR_ARG,
                       "no model store: set OUTBOARD_MODELS (or HOME) to say where models live");
    (void)xdg;
    if (n < 0 || (size_t)n >= cap - 512) /* room for ORG/REPO/TAG/FILE below it */
        return ob_fail(err, OB_ERR_LIMIT, "model store path is too long");
    return OB_OK;
}

/* mkdir -p of path, parents included. */
static ob_status make_dirs(const char *path, ob_err *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ob_fail(err, OB_ERR_LIMIT, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST)
                return ob_fail(err, OB_ERR_IO, "creating %s: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return OB_OK;
}

/* Folders in ROOT/.tmp named KIND-PID-... (staging, moved aside) whose process is gone are
 * what a killed pull or rm left behind. Partial downloads stay: the next pull resumes them. */
static void sweep_tmp(const char *tmp) {
    static const char *const KINDS[] = {"stage-", "removed-", "replaced-"};
    DIR *d = opendir(tmp);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
            size_t kl = strlen(KINDS[k]);
            if (strncmp(e->d_name, KINDS[k], kl)) continue;
            char *end = NULL;
            long pid = strtol(e->d_name + kl, &end, 10);
            if (pid <= 0 || *end != '-' || pid == (long)getpid()) break;
            if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) break; /* alive, or not ours to ask */
            char path[4600];
            snprintf(path, sizeof path, "%s/%s", tmp, e->d_name);
            store_rmtree(path, NULL);
            break;
        }
    }
    closedir(d);
}

ob_status store_prepare(const char *root, ob_err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.tmp", root);
    ob_status st = make_dirs(tmp, err);
    if (!st) sweep_tmp(tmp);
    return st;
}

ob_status store_model_dir(const char *root, const store_name *n, char *buf, size_t cap,
                          ob_err *err) {
    int len = snprintf(buf, cap, "%s/%s/%s/%s", root, n->org, n->repo, n->tag);
    if (len < 0 || (size_t)len >= cap) return ob_fail(err, OB_ERR_LIMIT, "model path too long");
    return OB_OK;
}

ob_status store_fsync_path(const char *path, ob_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd)) {
        ob_status st = ob_fail(err, OB_ERR_IO, "fsync %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return st;
    }
    close(fd);
    return OB_OK;
}

ob_status store_rmtree(const char *path, ob_err *err) {
    struct stat sb;
    if (lstat(path, &sb)) return errno == ENOENT ? OB_OK : ob_fail(err, OB_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return ob_fail(err, OB_ERR_IO, "%s: %s", path, strerror(errno));
        struct dirent *e;
        ob_status st = OB_OK;
        while (!st && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[4200];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            st = store_rmtree(sub, err);
        }
        closedir(d);
        if (st) return st;
        if (rmdir(path)) return ob_fail(err, OB_ERR_IO, "removing %s: %s", path, strerror(errno));
    } else if (unlink(path)) {
        return ob_fail(err, OB_ERR_IO, "removing %s: %s", path, strerror(errno));
    }
    return OB_OK;
}

/* ---- reading the store ------------------------------------------------------------------- */

/* A model folder counts when its manifest reads and every file is there at its size. */
static bool load_entry(const char *dir, const store_name *n, store_entry *e) {
    memset(e, 0, sizeof *e);
    if (snprintf(e->dir, sizeof e->dir, "%s", dir) >= (int)sizeof e->dir) return false;
    if (store_manifest_read(dir, &e->m, NULL)) return false;
    char want[STORE_NAME_MAX + 1];
    store_name_format(n, want);
    bool ok = !strcmp(want, e->m.name);
    for (size_t i = 0; ok && i < e->m.n_files; i++) {
        char path[4400];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, e->m.files[i].name);
        ok = !stat(path, &sb) && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == e->m.files[i].size;
    }
    if (!ok) store_manifest_clear(&e->m);
    return ok;
}

typedef struct entry_list {
    store_entry *v;
    size_t n, cap;
} entry_list;

static ob_status list_push(entry_list *l, ob_err *err) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        store_entry *v = ob_realloc(l->v, cap, sizeof *v);
        if (!v) return ob_fail(err, OB_ERR_NOMEM, "listing the store: out of memory");
        l->v = v;
        l->cap = cap;
    }
    return OB_OK;
}

/* Names of the subfolders of dir that are valid name parts (others are not the store's). */
static void scan_level(const char *root, store_name *n, int depth, entry_list *l, ob_status *st,
                       ob_err *err) {
    char dir[4200];
    if (depth == 0) snprintf(dir, sizeof dir, "%s", root);
    else if (depth == 1) snprintf(dir, sizeof dir, "%s/%s", root, n->org);
    else snprintf(dir, sizeof dir, "%s/%s/%s", root, n->org, n->repo);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while (!*st && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (!store_part_ok(e->d_name, len)) continue; /* ".", "..", ".tmp", strays */
        char *part = depth == 0 ? n->org : depth == 1 ? n->repo : n->tag;
        memcpy(part, e->d_name, len + 1);
        if (depth < 2) {
            scan_level(root, n, depth + 1, l, st, err);
            continue;
        }
        char mdir[4400];
        if (snprintf(mdir, sizeof mdir, "%s/%s", dir, e->d_name) >= (int)sizeof mdir) continue;
        if ((*st = list_push(l, err))) break;
        if (load_entry(mdir, n, &l->v[l->n])) l->n++;
    }
    closedir(d);
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const store_entry *)a)->m.name, ((const store_entry *)b)->m.name);
}

ob_status store_list(const char *root, store_entry **out, size_t *n, ob_err *err) {
    entry_list l = {0};
    store_name name;
    memset(&name, 0, sizeof name);
    ob_status st = OB_OK;
    scan_level(root, &name, 0, &l, &st, err);
    if (st) {
        store_list_free(l.v, l.n);
        return st;
    }
    if (l.n) qsort(l.v, l.n, sizeof *l.v, by_name);
    *out = l.v;
    *n = l.n;
    return OB_OK;
}

void store_list_free(store_entry *e, size_t n) {
    for (size_t i = 0; i < n; i++) store_manifest_clear(&e[i].m);
    ob_free(e);
}

/* The tags of org/repo that are installed; picks the only one, or names them all. */
static ob_status find_untagged(const char *root, store_name *n, const char *name, ob_err *err) {
    store_entry *all = NULL;
    size_t count = 0, found = 0;
    ob_status st = store_list(root, &all, &count, err);
    if (st) return st;
    char prefix[STORE_NAME_MAX + 2], tags[256] = "";
    int plen = snprintf(prefix, sizeof prefix, "%s/%s:", n->org, n->repo);
    for (size_t i = 0; i < count; i++) {
        if (strncmp(all[i].m.name, prefix, (size_t)plen)) continue;
        if (!found++) snprintf(n->tag, sizeof n->tag, "%s", all[i].m.name + plen);
        size_t tl = strlen(tags);
        snprintf(tags + tl, sizeof tags - tl, "%s%s", tl ? ", " : "", all[i].m.name + plen);
    }
    store_list_free(all, count);
    if (found == 0) return ob_fail(err, OB_ERR_ARG, "%s: not in the store at %s", name, root);
    if (found > 1)
        return ob_fail(err, OB_ERR_ARG, "%s: several in the store (%s): add :TAG to choose",
                       name, tags);
    return OB_OK;
}

ob_status store_find(const char *root, const char *name, store_entry *out, ob_err *err) {
    store_name n;
    ob_status st = store_name_parse(name, &n, err);
    if (!st && !n.tag[0]) st = find_untagged(root, &n, name, err);
    if (st) return st;
    char dir[4200];
    if ((st = store_model_dir(root, &n, dir, sizeof dir, err))) return st;
    if (load_entry(dir, &n, out)) return OB_OK;
    /* Pulls store the quantization upper-cased (as hub file names spell it): `:q4_k_m`. */
    for (char *c = n.tag; *c; c++) *c = (char)toupper((unsigned char)*c);
    if (!store_model_dir(root, &n, dir, sizeof dir, NULL) && load_entry(dir, &n, out))
        return OB_OK;
    return ob_fail(err, OB_ERR_ARG, "%s: not in the store at %s", name, root);
}

ob_status store_resolve_model(const char *arg, char **path, ob_err *err) {
    struct stat sb;
    *path = NULL;
    if (!stat(arg, &sb) || strchr(arg, '/') == NULL || arg[0] == '/' || arg[0] == '.' ||
        strstr(arg, ".gguf")) {
        /* A file (or what can only be meant as one): the loader reports it if it is missing. */
        *path = ob_strndup(arg, strlen(arg));
        return *path ? OB_OK : ob_fail(err, OB_ERR_NOMEM, "out of memory");
    }
    char root[4096];
    store_entry e;
    ob_status st = store_root(root, sizeof root, err);
    if (!st) st = store_find(root, arg, &e, err);
    if (st && err) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        if (strstr(why, "not in the store"))
            ob_fail(err, st, "%.200s: no such file, and no model of that name in the store at "
                    "%.200s (`outboard pull NAME` fetches one)", arg, root);
        else
            ob_fail(err, st, "%.200s: no such file; as a model name: %.280s", arg, why);
    }
    if (st) return st;
    char full[4400];
    snprintf(full, sizeof full, "%s/%s", e.dir, e.m.files[0].name);
    *path = ob_strndup(full, strlen(full));
    /* last_used is a convenience for `list`: a read-only store still loads. */
    e.m.last_used = (int64_t)time(NULL);
    store_manifest_write(e.dir, &e.m, NULL);
    store_manifest_clear(&e.m);
    return *path ? OB_OK : ob_fail(err, OB_ERR_NOMEM, "out of memory");
}

/* ---- changing the store ------------------------------------------------------------------ */

/* A fresh name in ROOT/.tmp for a folder moved aside. */
static void aside_path(const char *root, const char *what, char *buf, size_t cap) {
    static unsigned counter;
    snprintf(buf, cap, "%s/.tmp/%s-%ld-%ld-%u", root, what, (long)getpid(), (long)time(NULL),
             __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
}

/* rmdir of ROOT/ORG/REPO and ROOT/ORG when empty (failure means not empty: fine). */
static void prune_parents(const char *root, const store_name *n) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s/%s", root, n->org, n->repo);
    if (!rmdir(dir)) {
        snprintf(dir, sizeof dir, "%s/%s", root, n->org);
        rmdir(dir);
    }
}

ob_status store_remove(const char *root, const char *name, ob_err *err) {
    store_entry e;
    ob_status st = store_find(root, name, &e, err);
    if (st) return st;
    store_name n;
    store_name_parse(e.m.name, &n, NULL);
    store_manifest_clear(&e.m);
    char aside[4200];
    if ((st = store_prepare(root, err))) return st;
    aside_path(root, "removed", aside, sizeof aside);
    if (rename(e.dir, aside)) return ob_fail(err, OB_ERR_IO, "removing %s: %s", e.dir, strerror(errno));
    prune_parents(root, &n);
    return store_rmtree(aside, err);
}

ob_status store_install(const char *root, const char *staged, const store_name *n, ob_err *err) {
    char dir[4200], parent[4200], aside[4200];
    ob_status st = store_model_dir(root, n, dir, sizeof dir, err);
    if (st) return st;
    snprintf(parent, sizeof parent, "%s/%s/%s", root, n->org, n->repo);
    if ((st = make_dirs(parent, err))) return st;
    /* A model of this name already there is moved aside first: rename(2) replaces only an
     * empty folder. Between the two renames the name is briefly absent, never half there. */
    aside_path(root, "replaced", aside, sizeof aside);
    bool had_old = !rename(dir, aside);
    if (rename(staged, dir)) {
        st = ob_fail(err, OB_ERR_IO, "installing %s: %s", dir, strerror(errno));
        if (had_old) rename(aside, dir);
        return st;
    }
    if ((st = store_fsync_path(parent, err))) return st;
    return had_old ? store_rmtree(aside, err) : OB_OK;
}
