/*
 * One served model: the mapped model, its context with a slot per parallel sequence over one KV
 * pool, the prompt renderer, the scheduler thread that owns the context, and the description
 * the APIs list. The server holds one per loaded model (serve_registry.h).
 */
#ifndef OB_SERVE_ENGINE_H
#define OB_SERVE_ENGINE_H

#include "serve/serve_metrics.h"
#include "serve/serve_model.h"
#include "serve/serve_prompt.h"
#include "serve/serve_embed.h"
#include "serve/serve_sched.h"

#include <jansson.h>
#include <pthread.h>

typedef struct serve_engine_params {
    int64_t ctx;      /* context per request; 0 = the model's, at most 4096 */
    int64_t kv_size;  /* KV pool in tokens; 0 = ctx * parallel */
    int64_t parallel; /* sequences decoded together */
    int64_t threads;  /* 0 = the physical cores */
    int64_t queue;    /* requests that may wait beyond the running ones */
    spec_params spec; /* speculative decoding unless a request says otherwise */
    int64_t reasoning_budget; /* thinking tokens before reasoning is closed; -1 = no limit */
    const char *pooling;      /* embeddings' pooling ("mean", ...), NULL = the file's */
    ob_device device;         /* where the model runs (--device), OB_DEVICE_CPU by default */
    int device_index;         /* -1: the default device of that kind */
    int64_t gpu_layers;       /* --gpu-layers: layers on the device, -1 = all, or
                                 OB_GPU_LAYERS_AUTO */
    uint64_t vram_budget;     /* --vram-budget, 0 = the device's memory */
    double link_gbps, link_latency_us; /* --link-emulate, 0 = none */
    ob_experts experts;       /* --experts: a MoE model's experts on the device or the host */
    int64_t stream_min_tok;   /* --stream-weights (ob_context_params.stream_min_tok) */
    bool gpu_required;        /* --device-policy gpu-required: no GPU, no model */
    bool watch_devices;       /* --watch-devices: back to the device when it is there again */
    const char *model_draft;  /* a draft model's file, or NULL */
    const char *draft_target; /* the file of the model it drafts for (the others have none) */
} serve_engine_params;

typedef struct serve_engine {
    ob_model *model;
    ob_context *ctx;
    serve_prompter prompter;
    serve_sched *sched;
    serve_model_desc desc;
    serve_embedder embedder; /* embeddings, on a context of their own made on first use */
    ob_model *draft_model;   /* owned: --model-draft for this model, or NULL */
    spec_drafter *drafter;   /* owned: its context, a sequence per parallel slot, or NULL */
    spec_mtp *mtp;           /* owned: the model's multi-token-prediction drafter, or NULL */
    int n_threads;     /* as the context started them */
    char placement[192]; /* where its layers run (ob_context_placement); guarded by mu */
    char stream_why[160]; /* the plan's weight streaming (ob_plan.stream_why); guarded by mu */
    int64_t stream_min_tok; /* ob_plan.stream_min_tok, 0 = none; guarded by mu */
    ob_plan_speed predicted; /* the speed ob_plan_predict gives that placement; guarded by mu */
    pthread_mutex_t mu;  /* the engine thread moves the layers while HTTP threads read */
    ob_context_params cp; /* what its context was made with (replan makes a CPU one) */
    ob_context_params asked; /* what the server asked for (--device, --gpu-layers) */
    bool gpu_required;    /* --device-policy gpu-required: never replanned to the CPU */
    int64_t kv_tokens; /* the pool as allocated: whole blocks */
} serve_engine;

/* Loads the model at path and starts its scheduler; name is its name in the APIs (NULL: the
 * file name without .gguf). Errors: the loader's (OB_ERR_IO, OB_ERR_FORMAT naming the file),
 * OB_ERR_ARG when --ctx exceeds the trained context, OB_ERR_NOMEM. */
ob_status serve_engine_open(const serve_engine_params *p, const char *path, const char *name,
                            serve_metrics *metrics, serve_engine **out, ob_err *err);
/* Ends its requests (503 "shutting down"), stops the scheduler, frees everything. NULL is a
 * no-op. */
void serve_engine_close(serve_engine *e);
/* Whether no request is queued or running on it. */
bool serve_engine_idle(serve_engine *e);
/* The plan in force for /health: {"model", "placement", "predicted": {"prefill_tps",
 * "decode_tps", "calibrated", "basis"}, "measured": {"prefill_tps", "decode_tps"}} with the
 * measured figures from the engine's own passes (null before any such pass). New reference,
 * NULL when out of memory. */
json_t *serve_engine_health(serve_engine *e);

#endif
