/*
 * `outboard serve`: the HTTP server. Parses its flags strictly (serve_args_parse, no I/O),
 * starts listening at once so /health answers "loading" while the first model maps, loads it,
 * prints one start-up line, and runs until SIGINT or SIGTERM, then stops the HTTP server
 * (open streams are cancelled and connection threads joined) before freeing the models. Other
 * models (more -m files, --models-dir) load when a request names them (serve_registry.h).
 */
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"
#include "serve/serve_app.h"
#include "serve/serve_http.h"
#include "serve/serve_json.h"
#include "serve/serve_metrics.h"
#include "serve/serve_policy.h"
#include "serve/serve_registry.h"
#include "serve/serve_upstream.h"
#include "store/store.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODEL_FILES 64

typedef struct serve_args {
    const char *files[MAX_MODEL_FILES]; /* -m, repeatable; borrowed from argv */
    size_t n_files;
    const char *models_dir, *host, *api_key, *alias; /* borrowed from argv */
    int64_t max_models;  /* loaded at once, 0 = no limit */
    int64_t max_memory;  /* model file bytes loaded at once, 0 = no limit */
    int64_t idle_unload; /* seconds an idle model stays loaded, 0 = for ever */
    int64_t load_wait;   /* seconds a request waits for room to load its model, 10 */
    int64_t port;                               /* 8080 */
    int64_t parallel;                           /* sequences decoded together, 4 */
    int64_t ctx;      /* context per request; 0 = the model's, at most 4096 */
    int64_t kv_size;  /* KV pool in tokens; 0 = ctx * parallel */
    int64_t threads;  /* 0 = the physical cores */
    int64_t queue;    /* requests waiting beyond the running ones before 503, 64 */
    int64_t max_body; /* request body limit in bytes, 8 MiB */
    int64_t timeout;  /* seconds a connection may stay silent mid-request, 30 */
    const char *policy;       /* --policy FILE, or NULL */
    const char *pooling;      /* --pooling, NULL = each model file's */
    int64_t spec_max;         /* --spec-max: most draft tokens per pass, 16 */
    spec_mode spec;           /* --spec: auto */
    const char *model_draft;  /* --model-draft FILE: drafts for the first -m model, or NULL */
    int64_t reasoning_budget; /* thinking tokens before the server closes reasoning; -1 none */
    ob_device device;         /* --device, cpu */
    int device_index;         /* --device kind:N, -1 without N */
    int64_t gpu_layers;       /* --gpu-layers, -1 = all */
    uint64_t vram_budget;     /* --vram-budget, 0 = the device's memory */
    double link_gbps, link_latency_us; /* --link-emulate */
    ob_experts experts;       /* --experts, auto */
    int64_t stream_min_tok;   /* --stream-weights, auto */
    bool gpu_required;        /* --device-policy gpu-required */
    bool watch_devices;       /* --watch-devices */
    bool help;
} serve_args;

static const char USAGE[] =
    "usage: outboard serve [-m MODEL.gguf ...] [--models-dir DIR] [options]\n"
    "  Serves the -m files, DIR's models and the local store's models (outboard pull), each\n"
    "  by its name; with neither -m nor --models-dir, the store's first model is the default.\n"
    "  -m FILE           a model to serve; repeatable (the first is loaded at start and is the\n"
    "                    default; the others load when a request names them)\n"
    "  --models-dir DIR  also serve DIR's *.gguf files, by file name, loaded on demand\n"
    "  --max-models N    models loaded at once; the least recently used idle one makes room\n"
    "  --max-memory SIZE model file bytes loaded at once (K/M/G), the same way\n"
    "  --idle-unload S   unload a model idle for S seconds (Ollama keep_alive overrides)\n"
    "  --load-wait S     how long a request waits for room for its model before 503 (10)\n"
    "  --host ADDR       address to listen on (127.0.0.1; 0.0.0.0 opens it to the network)\n"
    "  --port N          TCP port (8080)\n"
    "  --parallel N      sequences decoded together (4)\n"
    "  --ctx N           context per request in tokens (the model's, at most 4096)\n"
    "  --kv-size N       KV pool in tokens shared by all requests (ctx * parallel)\n"
    "  --threads N       compute threads (physical cores)\n"
    "  --device D        cpu|cuda[:N]|vulkan[:N]|auto (cpu; `outboard devices` lists them)\n"
    "  --gpu-layers N|auto  with a GPU device, its share: the last N layers (all); auto:\n"
    "                    as many as --vram-budget SIZE (the device's memory) holds\n"
    "  --link-emulate GBPS[,LATENCY_US]  CPU<->device copies as slow as that link\n"
    "  --experts host|device|auto  where a MoE model's device layers run their experts (auto:\n"
    "                    on the host when the device has no MoE kernels or they do not fit)\n"
    "  --stream-weights auto|off|N  prompt chunks of N+ tokens run the CPU's layers' products\n"
    "                    on the device, shipping their weights (auto: where the plan says\n"
    "                    that is faster than the CPU)\n"
    "  --device-policy any|gpu-required  gpu-required: a model no GPU takes is not served\n"
    "  --watch-devices   a model left on the CPU (its device lost or not yet there, or auto\n"
    "                    found none) moves to the device when it is there, at the next idle\n"
    "                    moment\n"
    "  --queue N         requests that may wait for a slot before 503 (64)\n"
    "  --max-body BYTES  largest request body, K/M suffixes allowed (8M)\n"
    "  --timeout S       seconds a half-sent request may stall (30)\n"
    "  --api-key KEY     require 'Authorization: Bearer KEY' or 'x-api-key: KEY' (not /health)\n"
    "  --alias NAME      a single model's name in the APIs (the file name without .gguf)\n"
    "  --policy FILE     which requests may go to an upstream server (JSON; see README);\n"
    "                    without one, nothing leaves this machine\n"
    "  --spec MODE       speculative decoding: auto (the draft model if given, else the\n"
    "                    model's MTP layers if it has them, else prompt lookup, where it\n"
    "                    pays), off, ngram, draft, mtp; a request's \"speculative\" field\n"
    "                    overrides it\n"
    "  --model-draft FILE  a small model with the same vocabulary drafting for the first -m\n"
    "  --spec-max N      most draft tokens per pass (16)\n"
    "  --pooling P       embeddings: none, mean, cls or last (the model file's pooling_type)\n"
    "  --reasoning-budget N  close a thinking model's reasoning after N tokens (-1: no limit)\n"
    "  A -m may also name a model in the local store (outboard pull).\n";

/* A whole number in [lo, hi] (cli_parse_i64), or for a size a number with a K/M/G suffix
 * (x1024). */
static ob_status parse_num(const char *flag, const char *v, int64_t lo, int64_t hi, bool sized,
                           int64_t *out, ob_err *err) {
    size_t n = strlen(v);
    int shift = 0;
    if (sized && n > 1) {
        char u = v[n - 1];
        shift = u == 'K' || u == 'k'   ? 10
                : u == 'M' || u == 'm' ? 20
                : u == 'G' || u == 'g' ? 30
                                       : 0;
    }
    if (!shift) return cli_parse_i64(flag, v, lo, hi, out, err);
    char digits[32], shown[CLI_SHOWN_SIZE];
    int64_t x;
    if (n - 1 >= sizeof digits ||
        (memcpy(digits, v, n - 1), digits[n - 1] = '\0',
         cli_parse_i64(flag, digits, 0, hi >> shift, &x, NULL)) ||
        (x << shift) < lo)
        return ob_fail(err, OB_ERR_ARG, "%s: '%s' is not a size in [%lld, %lld] (K/M/G allowed)",
                       flag, cli_shown(v, shown), (long long)lo, (long long)hi);
    *out = x << shift;
    return OB_OK;
}

static ob_status parse_flag(serve_args *a, const char *f, const char *v, ob_err *err) {
    static const struct {
        const char *flag;
        size_t off;
        int64_t lo, hi;
        bool sized;
    } NUMS[] = {
        {"--port", offsetof(serve_args, port), 0, 65535, false},
        {"--parallel", offsetof(serve_args, parallel), 1, 256, false},
        {"--ctx", offsetof(serve_args, ctx), 0, 1 << 24, false},
        {"--kv-size", offsetof(serve_args, kv_size), 0, (int64_t)1 << 28, false},
        {"--threads", offsetof(serve_args, threads), 0, 1024, false},
        {"--queue", offsetof(serve_args, queue), 0, 1 << 20, false},
        {"--max-body", offsetof(serve_args, max_body), 1024, (int64_t)1 << 30, true},
        {"--timeout", offsetof(serve_args, timeout), 1, 86400, false},
        {"--max-models", offsetof(serve_args, max_models), 1, 1024, false},
        {"--max-memory", offsetof(serve_args, max_memory), 1 << 20, (int64_t)1 << 50, true},
        {"--idle-unload", offsetof(serve_args, idle_unload), 1, 1 << 30, false},
        {"--load-wait", offsetof(serve_args, load_wait), 0, 3600, false},
        {"--spec-max", offsetof(serve_args, spec_max), 1, SPEC_MAX_DRAFT, false},
        {"--reasoning-budget", offsetof(serve_args, reasoning_budget), -1, INT32_MAX, false},
    };
    for (size_t i = 0; i < sizeof NUMS / sizeof NUMS[0]; i++)
        if (!strcmp(f, NUMS[i].flag))
            return parse_num(f, v, NUMS[i].lo, NUMS[i].hi, NUMS[i].sized,
                             (int64_t *)((char *)a + NUMS[i].off), err);
    if (!strcmp(f, "-m") || !strcmp(f, "--model")) {
        if (a->n_files == MAX_MODEL_FILES)
            return ob_fail(err, OB_ERR_ARG, "-m: at most %d files", MAX_MODEL_FILES);
        a->files[a->n_files++] = v;
    } else if (!strcmp(f, "--models-dir"))
        a->models_dir = v;
    else if (!strcmp(f, "--host"))
        a->host = v;
    else if (!strcmp(f, "--api-key"))
        a->api_key = v;
    else if (!strcmp(f, "--alias"))
        a->alias = v;
    else if (!strcmp(f, "--policy"))
        a->policy = v;
    else if (!strcmp(f, "--device"))
        return cli_parse_device(f, v, &a->device, &a->device_index, err);
    else if (!strcmp(f, "--gpu-layers"))
        return cli_parse_gpu_layers(f, v, &a->gpu_layers, err);
    else if (!strcmp(f, "--vram-budget"))
        return cli_parse_size(f, v, 1 << 20, (uint64_t)1 << 50, &a->vram_budget, err);
    else if (!strcmp(f, "--link-emulate"))
        return cli_parse_link(f, v, &a->link_gbps, &a->link_latency_us, err);
    else if (!strcmp(f, "--experts"))
        return cli_parse_experts(f, v, &a->experts, err);
    else if (!strcmp(f, "--stream-weights"))
        return cli_parse_stream(f, v, &a->stream_min_tok, err);
    else if (!strcmp(f, "--device-policy")) {
        char shown[CLI_SHOWN_SIZE];
        if (strcmp(v, "any") && strcmp(v, "gpu-required"))
            return ob_fail(err, OB_ERR_ARG, "--device-policy: '%s', expected any or gpu-required",
                           cli_shown(v, shown));
        a->gpu_required = !strcmp(v, "gpu-required");
    }
    else if (!strcmp(f, "--spec")) {
        ob_status st = spec_mode_parse(v, &a->spec, err);
        if (st) ob_err_prefix(err, f);
        return st;
    } else if (!strcmp(f, "--model-draft")) {
        a->model_draft = v;
    } else if (!strcmp(f, "--pooling")) {
        ob_pooling p;
        char shown[CLI_SHOWN_SIZE];
        if (!ob_pooling_parse(v, &p))
            return ob_fail(err, OB_ERR_ARG, "--pooling: '%s', expected none, mean, cls or last",
                           cli_shown(v, shown));
        a->pooling = v;
    } else {
        char shown[CLI_SHOWN_SIZE];
        return ob_fail(err, OB_ERR_ARG, "unknown option '%s'", cli_shown(f, shown));
    }
    if (!v[0]) return ob_fail(err, OB_ERR_ARG, "%s: expected a value, got an empty string", f);
    return OB_OK;
}

/* Fills a from argv (argv[0] = "serve"). Prints nothing; OB_ERR_ARG names the bad flag. */
static ob_status serve_args_parse(int argc, char **argv, serve_args *a, ob_err *err) {
    memset(a, 0, sizeof *a);
    a->host = "127.0.0.1";
    a->port = 8080;
    a->parallel = 4;
    a->queue = 64;
    a->max_body = 8 << 20;
    a->timeout = 30;
    a->load_wait = 10;
    spec_params sp;
    spec_params_init(&sp);
    a->spec = sp.mode;
    a->spec_max = sp.max_draft;
    a->reasoning_budget = -1;
    a->device_index = -1;
    a->gpu_layers = -1;
    a->stream_min_tok = OB_STREAM_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            a->help = true;
            return OB_OK;
        }
        if (!strcmp(f, "--watch-devices")) {
            a->watch_devices = true;
            continue;
        }
        char shown[CLI_SHOWN_SIZE];
        if (f[0] != '-')
            return ob_fail(err, OB_ERR_ARG, "unexpected argument '%s'", cli_shown(f, shown));
        if (i + 1 >= argc) return ob_fail(err, OB_ERR_ARG, "%s: expected a value", f);
        ob_status st = parse_flag(a, f, argv[++i], err);
        if (st) return st;
    }
    if (a->alias && a->n_files != 1)
        return ob_fail(err, OB_ERR_ARG, "--alias names a single -m model; got %zu", a->n_files);
    if (a->model_draft && a->n_files == 0)
        return ob_fail(err, OB_ERR_ARG, "--model-draft drafts for the first -m model; no -m given");
    if (a->gpu_required && a->device == OB_DEVICE_CPU)
        return ob_fail(err, OB_ERR_ARG, "--device-policy gpu-required needs --device auto, cuda "
                       "or vulkan");
    if (a->watch_devices && a->device == OB_DEVICE_CPU)
        return ob_fail(err, OB_ERR_ARG, "--watch-devices needs --device auto, cuda or vulkan");
    if (a->spec == SPEC_MODE_DRAFT && !a->model_draft)
        return ob_fail(err, OB_ERR_ARG, "--spec draft needs a draft model: --model-draft FILE");
    return OB_OK;
}

/* Blocks SIGINT and SIGTERM in this thread and every thread started after, so that only
 * sigwait in main receives them. */
static void block_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

typedef struct server {
    serve_metrics *metrics;
    serve_app app;
    serve_http *http;
    serve_registry *registry;
    serve_policy *policy;
    char *paths[MAX_MODEL_FILES]; /* owned: the GGUFs -m names (files, or store names resolved) */
    char *draft_path;             /* owned: --model-draft resolved, or NULL */
    char store_root[4096];
} server;

/* The start-up line: where it listens and what it serves. */
static void print_start(const serve_args *a, server *s) {
    bool v6 = strchr(a->host, ':') != NULL; /* an IPv6 address goes in brackets in a URL */
    printf("outboard serve: http://%s%s%s:%d", v6 ? "[" : "", a->host, v6 ? "]" : "",
           serve_http_port(s->http));
    serve_error e;
    serve_registry_entry *h = a->n_files ? serve_registry_acquire(s->registry, "", &e) : NULL;
    if (h) {
        const serve_engine *eng = serve_registry_engine(h);
        printf("  model %s (%s)  context %lld  KV pool %lld tokens  parallel %lld  threads %d",
               eng->desc.id, a->files[0], (long long)eng->desc.n_ctx, (long long)eng->kv_tokens,
               (long long)a->parallel, eng->n_threads);
        if (a->device != OB_DEVICE_CPU) printf("  %s", eng->placement);
        printf("  predicted %.1f tok/s prefill, %.1f tok/s decode%s", eng->predicted.prefill_tps,
               eng->predicted.decode_tps, eng->predicted.calibrated ? "" : " (uncalibrated)");
        serve_registry_release(s->registry, h, false, 0);
    }
    if (a->n_files > 1) printf("  +%zu more on demand", a->n_files - 1);
    if (a->models_dir) printf("  models dir %s", a->models_dir);
    if (s->app.cfg.store_root) printf("  store %s", s->app.cfg.store_root);
    printf("\n");
    fflush(stdout);
}

static int serve_start(const serve_args *a, server *s) {
    ob_err err = {{0}};
    serve_json_alloc_init();
    serve_app_config cfg = {.max_body = (size_t)a->max_body, .api_key = a->api_key};
    for (size_t i = 0; i < a->n_files; i++)
        if (!(s->paths[i] = cli_model_path("serve", a->files[i]))) return 1;
    if (a->model_draft && !(s->draft_path = cli_model_path("serve", a->model_draft))) return 1;
    /* A model served by its store name is called that in the APIs unless --alias says. */
    const char *alias = a->alias;
    if (!alias && a->n_files == 1 && strcmp(s->paths[0], a->files[0])) alias = a->files[0];
    /* The store behind /api/pull and /api/delete (which refuses the default model's file);
     * without one those routes answer 503. */
    if (!store_root(s->store_root, sizeof s->store_root, NULL)) cfg.store_root = s->store_root;
    cfg.model_path = a->n_files ? s->paths[0] : NULL;
    if (a->policy) {
        serve_error pe;
        if (serve_policy_load(a->policy, &s->policy, &pe)) {
            fprintf(stderr, "outboard: --policy %s\n", pe.message);
            return 2;
        }
        serve_upstream_global_init();
        cfg.policy = s->policy;
    }
    if (serve_metrics_new(&s->metrics, &err)) goto fail;
    cfg.metrics = s->metrics;
    serve_registry_opts ro = {
        .files = (const char *const *)s->paths,
        .n_files = a->n_files,
        .alias = alias,
        .models_dir = a->models_dir,
        .store_root = cfg.store_root,
        .max_models = a->max_models,
        .max_bytes = a->max_memory,
        .idle_unload_s = (double)a->idle_unload,
        .wait_s = (double)a->load_wait,
        .engine = {.ctx = a->ctx, .kv_size = a->kv_size, .parallel = a->parallel,
                   .threads = a->threads, .queue = a->queue,
                   .spec = {a->spec, (int)a->spec_max},
                   .reasoning_budget = a->reasoning_budget, .pooling = a->pooling,
                   .device = a->device, .device_index = a->device_index,
                   .gpu_layers = a->gpu_layers, .vram_budget = a->vram_budget,
                   .link_gbps = a->link_gbps, .link_latency_us = a->link_latency_us,
                   .experts = a->experts, .stream_min_tok = a->stream_min_tok,
                   .gpu_required = a->gpu_required,
                   .watch_devices = a->watch_devices, .model_draft = s->draft_path,
                   .draft_target = a->n_files ? s->paths[0] : NULL},
        .metrics = s->metrics,
    };
    if (serve_registry_new(&ro, &s->registry, &err)) goto fail;
    char path[4096], canon[256];
    if (!a->n_files && !a->models_dir &&
        serve_registry_resolve(s->registry, "", path, sizeof path, canon, sizeof canon)) {
        fprintf(stderr, "outboard serve: no -m, no --models-dir, and no model in the store at %s "
                        "(`outboard pull NAME` fetches one)\n",
                cfg.store_root ? cfg.store_root : "(none: no home folder)");
        return 2;
    }
    cfg.registry = s->registry;
    serve_app_init(&s->app, &cfg);
    serve_http_opts ho = {
        a->host,          (int)a->port, (size_t)a->max_body, (unsigned)a->timeout, 1024, 0,
        serve_app_handle, &s->app};
    if (serve_http_start(&ho, &s->http, &err)) goto fail;
    /* The first -m model is loaded before the server says it is ready. */
    if (a->n_files && serve_registry_preload(s->registry, "", &err)) goto fail;
    serve_app_set_ready(&s->app, true);
    print_start(a, s);
    if (s->policy) {
        printf("outboard serve: policy %s: %zu upstreams, %zu rules\n", a->policy,
               serve_policy_n_upstreams(s->policy), serve_policy_n_rules(s->policy));
        fflush(stdout);
    }
    return 0;
fail:
    fprintf(stderr, "outboard: %s\n", err.msg);
    return 1;
}

int cli_cmd_serve(int argc, char **argv) {
    serve_args a;
    ob_err err = {{0}};
    if (serve_args_parse(argc, argv, &a, &err)) {
        fprintf(stderr, "outboard serve: %s\n\n%s", err.msg, USAGE);
        return 2;
    }
    if (a.help) {
        fputs(USAGE, stdout);
        return 0;
    }
    sigset_t set;
    block_signals(&set);
    /* A file size limit (RLIMIT_FSIZE) must fail a /api/pull write with EFBIG, not kill us. */
    signal(SIGXFSZ, SIG_IGN);
    server s;
    memset(&s, 0, sizeof s);
    int rc = serve_start(&a, &s);
    if (rc == 0) {
        int sig = 0;
        while (sigwait(&set, &sig) != 0)
            continue;
        fprintf(stderr, "outboard serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    /* The schedulers first: they end every request (waiting HTTP threads get their answer),
     * then the transport joins its connection threads, then the engines' memory goes. */
    serve_registry_stop(s.registry);
    serve_upstream_stop_all();
    serve_http_stop(s.http);
    serve_upstream_wait_idle(); /* relays still ending write to the metrics */
    serve_registry_free(s.registry);
    serve_metrics_free(s.metrics);
    serve_policy_free(s.policy);
    for (size_t i = 0; i < MAX_MODEL_FILES; i++) ob_free(s.paths[i]);
    ob_free(s.draft_path);
    return rc;
}
