/*
 * The models one server serves, by name. Names come from one resolver
 * (serve_registry_resolve): the files given with -m (repeatable; --alias names a single one) and
 * the GGUF files in --models-dir. A model is loaded when a request first names it: however many
 * requests race for an unloaded model, one loads it and the others wait for that load. Loading
 * makes room first: with --max-models N or a memory budget (--max-memory, counted as the model
 * files' sizes) the least recently used idle model is unloaded; when every loaded model is busy
 * the request waits up to a limit, then gets 503 with Retry-After; a model larger than the whole
 * budget gets 503 at once. An idle model is unloaded after --idle-unload seconds, or after the
 * Ollama keep_alive of its last request (0: at once, negative: never).
 */
#ifndef OB_SERVE_REGISTRY_H
#define OB_SERVE_REGISTRY_H

#include "serve/serve_engine.h"
#include "serve/serve_error.h"

#include <jansson.h>

typedef struct serve_registry_opts {
    const char *const *files; /* -m paths, borrowed */
    size_t n_files;
    const char *alias;      /* the name of files[0] when it is the only one; borrowed, or NULL */
    const char *models_dir; /* borrowed, or NULL */
    const char *store_root; /* the local model store (store.h), borrowed, or NULL: its models
                               are served by their names (org/repo:TAG) */
    int64_t max_models;     /* loaded at once; 0 = no limit */
    int64_t max_bytes;      /* model file bytes loaded at once; 0 = no limit */
    double idle_unload_s;   /* unload a model idle this long; 0 = keep it */
    double wait_s;          /* how long a request waits for room before 503 */
    serve_engine_params engine;
    serve_metrics *metrics; /* borrowed; shared by every engine */
} serve_registry_opts;

typedef struct serve_registry serve_registry;
typedef struct serve_registry_entry serve_registry_entry; /* one model known by name */

/* Starts the registry and its unloading thread; nothing is loaded yet. Errors: OB_ERR_NOMEM,
 * OB_ERR_ARG (no -m file and no --models-dir, or --models-dir not a readable directory). */
ob_status serve_registry_new(const serve_registry_opts *o, serve_registry **out, ob_err *err);
/* Ends every request of every model (503 "shutting down") and refuses new ones; the models
 * stay in memory, so HTTP threads still running may finish their calls. */
void serve_registry_stop(serve_registry *r);
/* Stops (if not yet), unloads every model and frees the registry. NULL is a no-op. */
void serve_registry_free(serve_registry *r);

/* The one resolver of names: "NAME" or "NAME:latest" to the model file's path and the name it
 * is served as. "" is the default model (the first -m file, else the first name listed).
 * Returns 0, or -1 when no file has that name. */
int serve_registry_resolve(serve_registry *r, const char *name, char *path, size_t path_cap,
                           char *canon, size_t canon_cap);

/* The loaded engine for name, loading it (and unloading others to make room) when it is not;
 * held until serve_registry_release. NULL with e filled: 404 naming the models served, 503
 * when it cannot fit or loading failed (the loader's message). */
serve_registry_entry *serve_registry_acquire(serve_registry *r, const char *name,
                                             serve_error *e);
serve_engine *serve_registry_engine(serve_registry_entry *h);
/* Ends a hold. keep_alive_set: the request's Ollama keep_alive in seconds decides when the
 * model is unloaded once idle (0 at once, negative never), instead of --idle-unload. */
void serve_registry_release(serve_registry *r, serve_registry_entry *h, bool keep_alive_set,
                            double keep_alive_s);

/* Loads name now and keeps it as if a request had just used it (the server's start-up model). */
ob_status serve_registry_preload(serve_registry *r, const char *name, ob_err *err);

/* The listings: every model the resolver knows (/v1/models, /api/tags: loaded ones with their
 * full description, others with what the file says without loading), and the loaded ones with
 * when they will be unloaded (/api/ps). */
json_t *serve_registry_openai_list(serve_registry *r);
json_t *serve_registry_ollama_tags(serve_registry *r);
json_t *serve_registry_ollama_ps(serve_registry *r);
/* The description of a loaded model for /api/show and /v1/models/{id}: a copy the caller
 * clears (serve_model_desc_clear), or -1 with e filled as acquire does. Loads the model. */
int serve_registry_describe(serve_registry *r, const char *name, serve_model_desc *out,
                            serve_error *e);

/* The loaded models' plans in force with predicted and measured speed (serve_engine_health),
 * for /health: a new array, NULL when out of memory. Loads nothing. */
json_t *serve_registry_health(serve_registry *r);

/* Counters for /metrics: models loaded now, loads, unloads when idle, unloads to make room. */
void serve_registry_counts(serve_registry *r, int64_t *loaded, int64_t *loads,
                           int64_t *unloads_idle, int64_t *unloads_evicted);

#endif
