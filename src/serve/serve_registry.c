/*
 * Models by name, loaded on demand, unloaded when idle or to make room (serve_registry.h).
 *
 * One mutex guards the entries; a condition variable wakes requests waiting for a load or for
 * room. A load runs outside the mutex (it maps gigabytes) with the entry marked loading, so a
 * second request for the same model waits for it instead of loading again, while requests for
 * loaded models go on. Unloading happens under the mutex, only for an entry no request holds
 * and whose scheduler has nothing queued or running.
 */
#include "serve/serve_registry.h"

#include "core/alloc.h"
#include "core/err.h"
#include "serve/serve_model.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_ENTRIES 256
#define NAME_CAP 256
#define PATH_CAP 4096

struct serve_registry_entry {
    char name[NAME_CAP];
    char path[PATH_CAP];
    serve_engine *eng; /* NULL while not loaded */
    bool loading;
    int refs;            /* requests holding it */
    double last_used;    /* monotonic seconds */
    bool keep_set;       /* keep_s came from a request's keep_alive */
    double keep_s;       /* its keep_alive */
    int64_t bytes;       /* the file's size: what it costs the budget */
    uint64_t load_fails; /* bumps when a load fails, so its waiters stop waiting */
    char load_err[300];
};

struct serve_registry {
    serve_registry_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    serve_registry_entry *entries[MAX_ENTRIES];
    size_t n;
    int64_t loads, unloads_idle, unloads_evicted;
    pthread_t reaper;
    bool reaper_started, stopping;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- names ---- */

static void stem_of(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
    snprintf(out, cap, "%.*s", (int)n, base);
}

/* "name:latest" is "name"; any other tag is part of the name. */
static void strip_latest(const char *name, char *out, size_t cap) {
    size_t n = strlen(name);
    if (n > 7 && !strcmp(name + n - 7, ":latest")) n -= 7;
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), name);
}

/* A name that may stand for a file in --models-dir: no path separators, no leading dot, so no
 * name reaches outside the directory. */
static bool dir_name_ok(const char *name) {
    return name[0] && name[0] != '.' && !strchr(name, '/') && !strchr(name, '\\') &&
           strlen(name) < NAME_CAP - 6;
}

static const char *file_name(const serve_registry *r, size_t i, char *buf, size_t cap) {
    if (r->o.n_files == 1 && r->o.alias && r->o.alias[0]) return r->o.alias;
    stem_of(r->o.files[i], buf, cap);
    return buf;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

/* The --models-dir files, sorted by name, as stems; returns how many (at most cap). */
static size_t dir_names(const serve_registry *r, char (*names)[NAME_CAP], size_t cap) {
    if (!r->o.models_dir) return 0;
    DIR *d = opendir(r->o.models_dir);
    if (!d) return 0;
    size_t n = 0;
    for (struct dirent *de; n < cap && (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || strcmp(de->d_name + len - 5, ".gguf") || len - 5 >= NAME_CAP) continue;
        snprintf(names[n], NAME_CAP, "%.*s", (int)(len - 5), de->d_name);
        if (dir_name_ok(names[n])) n++;
    }
    closedir(d);
    qsort(names, n, NAME_CAP, cmp_name);
    return n;
}

/* A model of the local store: by its name, or (want empty) the first one listed. */
static int store_lookup(const serve_registry *r, const char *want, char *path, size_t path_cap,
                        char *canon, size_t canon_cap) {
    if (!r->o.store_root) return -1;
    store_entry e;
    if (want[0]) {
        /* Store names always hold '/'; a name without one is never looked up there. */
        if (!strchr(want, '/') || store_find(r->o.store_root, want, &e, NULL)) return -1;
    } else {
        store_entry *all = NULL;
        size_t n = 0;
        if (store_list(r->o.store_root, &all, &n, NULL) || n == 0) {
            store_list_free(all, n);
            return -1;
        }
        e = all[0];
        memset(&all[0].m, 0, sizeof all[0].m); /* now e's */
        store_list_free(all, n);
    }
    snprintf(path, path_cap, "%s/%s", e.dir, e.m.files[0].name);
    snprintf(canon, canon_cap, "%s", e.m.name);
    store_manifest_clear(&e.m);
    return 0;
}

int serve_registry_resolve(serve_registry *r, const char *name, char *path, size_t path_cap,
                           char *canon, size_t canon_cap) {
    char want[NAME_CAP], buf[NAME_CAP];
    strip_latest(name, want, sizeof want);
    for (size_t i = 0; i < r->o.n_files; i++) {
        const char *n = file_name(r, i, buf, sizeof buf);
        if (!want[0] || !strcmp(want, n)) {
            snprintf(path, path_cap, "%s", r->o.files[i]);
            snprintf(canon, canon_cap, "%s", n);
            return 0;
        }
    }
    if (!r->o.models_dir) return store_lookup(r, want, path, path_cap, canon, canon_cap);
    char dir_want[NAME_CAP];
    snprintf(dir_want, sizeof dir_want, "%s", want);
    if (!dir_want[0]) { /* no -m file: the first model of the directory */
        char(*all)[NAME_CAP] = ob_alloc(MAX_ENTRIES, NAME_CAP);
        size_t n = all ? dir_names(r, all, MAX_ENTRIES) : 0;
        if (n) snprintf(dir_want, sizeof dir_want, "%s", all[0]);
        ob_free(all);
    }
    struct stat st;
    if (dir_want[0] && dir_name_ok(dir_want)) {
        snprintf(path, path_cap, "%s/%s.gguf", r->o.models_dir, dir_want);
        if (!stat(path, &st) && S_ISREG(st.st_mode)) {
            snprintf(canon, canon_cap, "%s", dir_want);
            return 0;
        }
    }
    return store_lookup(r, want, path, path_cap, canon, canon_cap);
}

/* The store's model names after the n names already in names (at most cap in all). */
static size_t store_names(const serve_registry *r, char (*names)[NAME_CAP], size_t n,
                          size_t cap) {
    store_entry *all = NULL;
    size_t k = 0;
    if (!r->o.store_root || store_list(r->o.store_root, &all, &k, NULL)) return n;
    for (size_t i = 0; i < k && n < cap; i++)
        if (snprintf(names[n], NAME_CAP, "%s", all[i].m.name) < NAME_CAP) n++; /* else skipped */
    store_list_free(all, k);
    return n;
}

/* The entry for a resolved name, made on first use. Called with mu held. */
static serve_registry_entry *entry_for(serve_registry *r, const char *canon, const char *path) {
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->entries[i]->name, canon)) return r->entries[i];
    if (r->n == MAX_ENTRIES) return NULL;
    serve_registry_entry *e = ob_calloc(1, sizeof *e);
    if (!e) return NULL;
    snprintf(e->name, sizeof e->name, "%s", canon);
    snprintf(e->path, sizeof e->path, "%s", path);
    struct stat st;
    e->bytes = stat(path, &st) ? 0 : (int64_t)st.st_size;
    r->entries[r->n++] = e;
    return e;
}

/* ---- loading and unloading ---- */

static void unload(serve_registry *r, serve_registry_entry *e) {
    serve_engine_close(e->eng);
    e->eng = NULL;
    e->keep_set = false;
}

static bool evictable(serve_registry_entry *e) {
    return e->eng && !e->loading && e->refs == 0 && serve_engine_idle(e->eng);
}

/* Whether loading e fits beside the models loaded (or loading) now. Called with mu held. */
static bool fits(const serve_registry *r, const serve_registry_entry *e) {
    int64_t count = 0, bytes = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->entries[i]->eng || r->entries[i]->loading) {
            count++;
            bytes += r->entries[i]->bytes;
        }
    return (!r->o.max_models || count + 1 <= r->o.max_models) &&
           (!r->o.max_bytes || bytes + e->bytes <= r->o.max_bytes);
}

/* Unloads the least recently used idle model; false when none is idle. Called with mu held. */
static bool evict_one(serve_registry *r) {
    serve_registry_entry *lru = NULL;
    for (size_t i = 0; i < r->n; i++)
        if (evictable(r->entries[i]) && (!lru || r->entries[i]->last_used < lru->last_used))
            lru = r->entries[i];
    if (!lru) return false;
    unload(r, lru);
    r->unloads_evicted++;
    return true;
}

static void wait_until(serve_registry *r, double deadline) {
    /* Schedulers do not signal when they go idle: look again at least every 50 ms. */
    double t = now_s() + 0.05;
    if (t > deadline) t = deadline;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double wait = t - now_s();
    if (wait < 0) wait = 0;
    ts.tv_sec += (time_t)wait;
    ts.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

static int no_room(serve_registry *r, const serve_registry_entry *e, serve_error *err) {
    int rc = serve_error_set(err, 503, "server_error", "no_room", "model",
                             "model '%s' cannot be loaded now: the models loaded are all busy "
                             "(--max-models %lld, --max-memory %lld bytes); retry shortly",
                             e->name, (long long)r->o.max_models, (long long)r->o.max_bytes);
    err->retry_after = 2;
    return rc;
}

/* Makes e loaded, with mu held on entry and exit. 0, or -1 with err filled. */
static int ensure_loaded(serve_registry *r, serve_registry_entry *e, serve_error *err) {
    double deadline = now_s() + r->o.wait_s;
    for (;;) {
        if (r->stopping)
            return serve_error_set(err, 503, "server_error", "shutting_down", NULL,
                                   "the server is shutting down");
        if (e->eng) return 0;
        if (e->loading) { /* another request loads it: wait for that load */
            uint64_t fails = e->load_fails;
            while (e->loading && !r->stopping)
                pthread_cond_wait(&r->cv, &r->mu);
            if (e->load_fails != fails)
                return serve_error_set(err, 503, "server_error", "load_failed", "model",
                                       "model '%s' failed to load: %s", e->name, e->load_err);
            continue;
        }
        if (r->o.max_bytes && e->bytes > r->o.max_bytes)
            return serve_error_set(err, 503, "server_error", "model_too_large", "model",
                                   "model '%s' needs %lld bytes, more than the whole memory "
                                   "budget (--max-memory %lld)",
                                   e->name, (long long)e->bytes, (long long)r->o.max_bytes);
        if (!fits(r, e)) {
            if (evict_one(r)) continue;
            if (now_s() >= deadline) return no_room(r, e, err);
            wait_until(r, deadline);
            continue;
        }
        e->loading = true;
        pthread_mutex_unlock(&r->mu);
        ob_err oe = {{0}};
        serve_engine *eng = NULL;
        ob_status st = serve_engine_open(&r->o.engine, e->path, e->name, r->o.metrics, &eng, &oe);
        pthread_mutex_lock(&r->mu);
        e->loading = false;
        if (st) {
            snprintf(e->load_err, sizeof e->load_err, "%.299s", oe.msg);
            e->load_fails++;
        } else {
            e->eng = eng;
            e->last_used = now_s();
            r->loads++;
        }
        pthread_cond_broadcast(&r->cv);
        if (st)
            return serve_error_set(err, 503, "server_error", "load_failed", "model",
                                   "model '%s' failed to load: %s", e->name, e->load_err);
    }
}

static int unknown(serve_registry *r, const char *name, serve_error *err) {
    char list[512] = "", buf[NAME_CAP];
    size_t at = 0;
    for (size_t i = 0; i < r->o.n_files && at < sizeof list; i++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s'%s'", i ? ", " : "",
                               file_name(r, i, buf, sizeof buf));
    if (r->o.models_dir && at < sizeof list)
        snprintf(list + at, sizeof list - at, "%sthe models in %s", at ? " and " : "",
                 r->o.models_dir);
    return serve_error_set(err, 404, "invalid_request_error", "model_not_found", "model",
                           "model '%.200s' not found; this server has %s", name, list);
}

serve_registry_entry *serve_registry_acquire(serve_registry *r, const char *name,
                                             serve_error *err) {
    char path[PATH_CAP], canon[NAME_CAP];
    if (serve_registry_resolve(r, name, path, sizeof path, canon, sizeof canon)) {
        unknown(r, name, err);
        return NULL;
    }
    pthread_mutex_lock(&r->mu);
    serve_registry_entry *e = entry_for(r, canon, path);
    if (!e) {
        pthread_mutex_unlock(&r->mu);
        serve_error_set(err, 503, "server_error", "too_many_models", "model",
                        "the server knows %d models, its limit", MAX_ENTRIES);
        return NULL;
    }
    e->refs++; /* held while it loads, so no one evicts it before its request runs */
    if (ensure_loaded(r, e, err)) {
        e->refs--;
        pthread_mutex_unlock(&r->mu);
        return NULL;
    }
    e->last_used = now_s();
    pthread_mutex_unlock(&r->mu);
    return e;
}

serve_engine *serve_registry_engine(serve_registry_entry *h) {
    return h->eng;
}

void serve_registry_release(serve_registry *r, serve_registry_entry *h, bool keep_alive_set,
                            double keep_alive_s) {
    pthread_mutex_lock(&r->mu);
    h->refs--;
    h->last_used = now_s();
    if (keep_alive_set) {
        h->keep_set = true;
        h->keep_s = keep_alive_s;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

ob_status serve_registry_preload(serve_registry *r, const char *name, ob_err *err) {
    serve_error e;
    serve_registry_entry *h = serve_registry_acquire(r, name, &e);
    if (!h) return ob_fail(err, e.status == 404 ? OB_ERR_ARG : OB_ERR_IO, "%s", e.message);
    serve_registry_release(r, h, false, 0);
    return OB_OK;
}

/* ---- unloading idle models ---- */

/* Seconds an idle e stays loaded; negative: for ever. */
static double keep_of(const serve_registry *r, const serve_registry_entry *e) {
    if (e->keep_set) return e->keep_s;
    return r->o.idle_unload_s > 0 ? r->o.idle_unload_s : -1;
}

static void *reaper_main(void *arg) {
    serve_registry *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        double t = now_s();
        for (size_t i = 0; i < r->n; i++) {
            serve_registry_entry *e = r->entries[i];
            if (!e->eng || e->loading) continue;
            if (e->refs || !serve_engine_idle(e->eng)) {
                e->last_used = t; /* busy: its idle time starts when it ends */
                continue;
            }
            double keep = keep_of(r, e);
            if (keep >= 0 && t - e->last_used >= keep) {
                unload(r, e);
                r->unloads_idle++;
                pthread_cond_broadcast(&r->cv);
            }
        }
        wait_until(r, now_s() + 0.05);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

ob_status serve_registry_new(const serve_registry_opts *o, serve_registry **out, ob_err *err) {
    *out = NULL;
    if (!o->n_files && !o->models_dir && !o->store_root)
        return ob_fail(err, OB_ERR_ARG, "-m MODEL.gguf, --models-dir DIR or a model store: "
                                        "required");
    if (o->models_dir) {
        struct stat st;
        if (stat(o->models_dir, &st) || !S_ISDIR(st.st_mode))
            return ob_fail(err, OB_ERR_ARG, "--models-dir %s: not a directory", o->models_dir);
    }
    serve_registry *r = ob_calloc(1, sizeof *r);
    if (!r) return ob_fail(err, OB_ERR_NOMEM, "out of memory for the model registry");
    r->o = *o;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->reaper, NULL, reaper_main, r)) {
        serve_registry_free(r);
        return ob_fail(err, OB_ERR_NOMEM, "cannot start the model unloading thread");
    }
    r->reaper_started = true;
    *out = r;
    return OB_OK;
}

void serve_registry_stop(serve_registry *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->reaper_started) pthread_join(r->reaper, NULL);
    r->reaper_started = false;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++)
        if (r->entries[i]->eng) serve_sched_stop(r->entries[i]->eng->sched);
    pthread_mutex_unlock(&r->mu);
}

void serve_registry_free(serve_registry *r) {
    if (!r) return;
    serve_registry_stop(r);
    for (size_t i = 0; i < r->n; i++) {
        unload(r, r->entries[i]);
        ob_free(r->entries[i]);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    ob_free(r);
}

/* ---- listings ---- */

/* What the listings say of a model not loaded: its name, file size and time. */
static void file_desc(const char *name, const char *path, serve_model_desc *d) {
    memset(d, 0, sizeof *d);
    snprintf(d->id, sizeof d->id, "%s", name);
    snprintf(d->arch, sizeof d->arch, "%s", "");
    struct stat st;
    if (!stat(path, &st)) {
        d->n_bytes = (uint64_t)st.st_size;
        d->modified_at = (int64_t)st.st_mtime;
    }
}

typedef json_t *(*entry_fn)(serve_registry *r, const char *name, const char *path,
                            serve_registry_entry *e);

/* Calls fn for every name the resolver knows, in order (-m files, then the directory), with
 * the entry when there is one; fn returns an element or NULL to skip. mu is held. */
static json_t *each_known(serve_registry *r, entry_fn fn) {
    json_t *arr = json_array();
    char(*names)[NAME_CAP] = ob_alloc(MAX_ENTRIES, NAME_CAP);
    if (!arr || !names) {
        ob_free(names);
        json_decref(arr);
        return NULL;
    }
    size_t n = dir_names(r, names, MAX_ENTRIES);
    n = store_names(r, names, n, MAX_ENTRIES);
    char buf[NAME_CAP], buf2[NAME_CAP], path[PATH_CAP], canon[NAME_CAP];
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->o.n_files + n; i++) {
        const char *name = i < r->o.n_files ? file_name(r, i, buf, sizeof buf)
                                            : names[i - r->o.n_files];
        if (serve_registry_resolve(r, name, path, sizeof path, canon, sizeof canon) ||
            strcmp(canon, name))
            continue;
        bool shadowed = false; /* a directory file named like a -m file: listed once, as that */
        for (size_t k = 0; i >= r->o.n_files && k < r->o.n_files; k++)
            shadowed |= !strcmp(name, file_name(r, k, buf2, sizeof buf2));
        if (shadowed) continue;
        serve_registry_entry *e = NULL;
        for (size_t k = 0; k < r->n; k++)
            if (!strcmp(r->entries[k]->name, name)) e = r->entries[k];
        json_t *v = fn(r, name, path, e);
        if (v) json_array_append_new(arr, v);
    }
    pthread_mutex_unlock(&r->mu);
    ob_free(names);
    return arr;
}

static json_t *first_of(json_t *wrapped, const char *key) {
    json_t *v = json_incref(json_array_get(json_object_get(wrapped, key), 0));
    json_decref(wrapped);
    return v;
}

static json_t *openai_one(serve_registry *r, const char *name, const char *path,
                          serve_registry_entry *e) {
    if (e && e->eng) return serve_models_openai_model(&e->eng->desc);
    serve_model_desc d;
    file_desc(name, path, &d);
    d.n_ctx = r->o.engine.ctx; /* 0 until loaded when the model decides */
    return serve_models_openai_model(&d);
}

static json_t *tags_one(serve_registry *r, const char *name, const char *path,
                        serve_registry_entry *e) {
    if (e && e->eng) return first_of(serve_models_ollama_tags(&e->eng->desc), "models");
    serve_model_desc d;
    file_desc(name, path, &d);
    return first_of(serve_models_ollama_tags(&d), "models");
}

static json_t *ps_one(serve_registry *r, const char *name, const char *path,
                      serve_registry_entry *e) {
    if (!e || !e->eng) return NULL;
    double keep = keep_of(r, e);
    /* Not unloaded by time: a day from now, as the single-model server always said. */
    int64_t left = keep >= 0 ? (int64_t)(keep - (now_s() - e->last_used)) : 86400;
    if (left < 0) left = 0;
    return first_of(serve_models_ollama_ps(&e->eng->desc, (int64_t)time(NULL) + left), "models");
}

json_t *serve_registry_openai_list(serve_registry *r) {
    return json_pack("{s:s, s:o}", "object", "list", "data", each_known(r, openai_one));
}

json_t *serve_registry_ollama_tags(serve_registry *r) {
    return json_pack("{s:o}", "models", each_known(r, tags_one));
}

json_t *serve_registry_ollama_ps(serve_registry *r) {
    return json_pack("{s:o}", "models", each_known(r, ps_one));
}

int serve_registry_describe(serve_registry *r, const char *name, serve_model_desc *out,
                            serve_error *e) {
    serve_registry_entry *h = serve_registry_acquire(r, name, e);
    if (!h) return -1;
    *out = h->eng->desc;
    out->template_src = NULL;
    const char *t = h->eng->desc.template_src;
    int rc = 0;
    if (t && !(out->template_src = ob_strndup(t, strlen(t))))
        rc = serve_error_set(e, 500, "server_error", "out_of_memory", NULL, "out of memory");
    serve_registry_release(r, h, false, 0);
    return rc;
}

json_t *serve_registry_health(serve_registry *r) {
    json_t *arr = json_array();
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; arr && i < r->n; i++)
        if (r->entries[i]->eng) json_array_append_new(arr, serve_engine_health(r->entries[i]->eng));
    pthread_mutex_unlock(&r->mu);
    return arr;
}

void serve_registry_counts(serve_registry *r, int64_t *loaded, int64_t *loads,
                           int64_t *unloads_idle, int64_t *unloads_evicted) {
    pthread_mutex_lock(&r->mu);
    int64_t n = 0;
    for (size_t i = 0; i < r->n; i++) n += r->entries[i]->eng != NULL;
    *loaded = n;
    *loads = r->loads;
    *unloads_idle = r->unloads_idle;
    *unloads_evicted = r->unloads_evicted;
    pthread_mutex_unlock(&r->mu);
}
