/*
 * One served model (serve_engine.h): load, context, prompt renderer, scheduler.
 */
#include "serve/serve_engine.h"

#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

#define SERVE_WATCH_S 1.0 /* --watch-devices: seconds of idleness between looks */

/* The placement of e's context and its predicted speed (under e->mu: HTTP threads read them). */
static void plan_note(serve_engine *e) {
    ob_plan plan;
    ob_plan_speed sp;
    memset(&sp, 0, sizeof sp);
    memset(&plan, 0, sizeof plan);
    if (!ob_plan_context(e->model, &e->cp, &plan, NULL))
        ob_plan_predict(e->model, &e->cp, &plan, NULL, &sp);
    pthread_mutex_lock(&e->mu);
    snprintf(e->placement, sizeof e->placement, "%s", ob_context_placement(e->ctx));
    snprintf(e->stream_why, sizeof e->stream_why, "%s", plan.stream_why);
    e->stream_min_tok = plan.stream_min_tok;
    e->predicted = sp;
    pthread_mutex_unlock(&e->mu);
}

/* serve_sched_opts.replan: the device is lost; the model's layers move to the CPU. */
static ob_status replan_to_cpu(void *user, ob_context **out, ob_err *err) {
    serve_engine *e = user;
    if (e->cp.device == OB_DEVICE_CPU)
        return ob_fail(err, OB_ERR_DEVICE, "the model already runs on the CPU");
    if (e->gpu_required)
        return ob_fail(err, OB_ERR_DEVICE, "--device-policy gpu-required keeps it off the CPU");
    ob_context_params cp = e->cp;
    cp.device = OB_DEVICE_CPU;
    ob_status st = ob_context_new(e->model, &cp, out, err);
    if (st) return st;
    ob_context_free(e->ctx); /* the engine thread, the one user of it, asked */
    e->ctx = *out;
    spec_mtp_attach(e->mtp, e->ctx);
    e->cp = cp;
    plan_note(e);
    return OB_OK;
}

/* serve_sched_opts.replug (--watch-devices): a model left on the CPU moves to the device the
 * server asked for once the planner finds it there (listed, with room for some layers). */
static ob_status replan_to_device(void *user, ob_context **out, ob_err *err) {
    serve_engine *e = user;
    if (strcmp(ob_context_device(e->ctx), "cpu"))
        return ob_fail(err, OB_ERR_ARG, "already on a device");
    ob_plan plan;
    ob_status st = ob_plan_context(e->model, &e->asked, &plan, err);
    if (st) return st;
    if (plan.n_gpu_layers == 0) return ob_fail(err, OB_ERR_DEVICE, "no device to move to");
    if ((st = ob_context_new(e->model, &e->asked, out, err))) return st;
    if (!strcmp(ob_context_device(*out), "cpu")) { /* auto found none after all */
        ob_context_free(*out);
        return ob_fail(err, OB_ERR_DEVICE, "no device to move to");
    }
    ob_context_free(e->ctx); /* the engine thread, the one user of it, asked */
    e->ctx = *out;
    e->cp = e->asked;
    plan_note(e);
    fprintf(stderr, "outboard serve: %s: the device is there: its layers move (%s)\n",
            e->desc.id, e->placement);
    return OB_OK;
}

static ob_status start_sched(const serve_engine_params *p, const char *path, serve_engine *e,
                             int64_t ctx, int64_t kv, serve_metrics *metrics, ob_err *err) {
    ob_context_params cp;
    ob_context_params_init(&cp);
    cp.n_ctx = ctx;
    cp.n_threads = (int)p->threads;
    cp.n_seq_max = (int32_t)p->parallel;
    cp.kv_size = kv;
    cp.device = p->device;
    cp.device_index = p->device_index;
    cp.n_gpu_layers = p->gpu_layers;
    cp.vram_budget = p->vram_budget;
    cp.link_gbps = p->link_gbps;
    cp.link_latency_us = p->link_latency_us;
    cp.experts = p->experts;
    cp.stream_min_tok = p->stream_min_tok;
    ob_status st = ob_context_new(e->model, &cp, &e->ctx, err);
    e->cp = e->asked = cp;
    if (st && p->watch_devices && !p->gpu_required && cp.device != OB_DEVICE_CPU) {
        /* the card may be plugged in later: serve on the CPU meanwhile, and the watch moves
         * the layers when the planner finds the device */
        fprintf(stderr, "outboard serve: %s: %s; serving on the CPU until the device is there "
                        "(--watch-devices)\n", e->desc.id, err->msg);
        e->cp.device = OB_DEVICE_CPU;
        st = ob_context_new(e->model, &e->cp, &e->ctx, err);
    }
    if (st) return st;
    e->gpu_required = p->gpu_required;
    plan_note(e);
    if (p->gpu_required && !strcmp(ob_context_device(e->ctx), "cpu"))
        return ob_fail(err, OB_ERR_UNSUPPORTED, "--device-policy gpu-required: no GPU took the "
                       "model (%s)", e->placement);
    /* Read before the engine thread owns the context. */
    ob_kv_stats ks;
    ob_kv_stats_get(e->ctx, &ks);
    e->kv_tokens = ks.blocks_total * ks.block_size;
    e->n_threads = ob_context_n_threads(e->ctx);
    if (p->model_draft && p->draft_target && !strcmp(p->draft_target, path)) {
        ob_model_params mp;
        ob_model_params_init(&mp);
        if ((st = ob_model_load(p->model_draft, &mp, &e->draft_model, err)) ||
            (st = spec_drafter_new(e->model, e->draft_model, (int32_t)p->parallel, ctx,
                                   e->n_threads, &e->drafter, err))) {
            ob_err_prefix(err, "--model-draft");
            return st;
        }
    }
    /* made whenever the model has the block: a request may ask for it whatever --spec says */
    spec_params sp = p->spec;
    if (sp.mode != SPEC_MODE_MTP) sp.mode = SPEC_MODE_AUTO;
    if ((st = spec_mtp_for(&sp, e->model, e->ctx, false, (int32_t)p->parallel, &e->mtp, err)))
        return st;
    serve_sched_opts so = {.model = e->model, .ctx = e->ctx, .prompter = &e->prompter,
                           .metrics = metrics, .model_id = e->desc.id,
                           .n_parallel = (int)p->parallel, .max_queue = p->queue,
                           .n_batch = 512, .spec = p->spec,
                           .reasoning_budget = p->reasoning_budget, .drafter = e->drafter,
                           .mtp = e->mtp,
                           .replan = replan_to_cpu, .replan_user = e};
    if (p->watch_devices && cp.device != OB_DEVICE_CPU && cp.n_gpu_layers != 0) {
        so.replug = replan_to_device;
        so.watch_s = SERVE_WATCH_S;
    }
    return serve_sched_start(&so, &e->sched, err);
}

ob_status serve_engine_open(const serve_engine_params *p, const char *path, const char *name,
                            serve_metrics *metrics, serve_engine **out, ob_err *err) {
    *out = NULL;
    serve_engine *e = ob_calloc(1, sizeof *e);
    if (!e) return ob_fail(err, OB_ERR_NOMEM, "out of memory for the model %s", path);
    pthread_mutex_init(&e->mu, NULL);
    ob_model_params mp;
    ob_model_params_init(&mp);
    ob_status st = ob_model_load(path, &mp, &e->model, err);
    if (st) {
        pthread_mutex_destroy(&e->mu);
        ob_free(e);
        return st;
    }
    ob_model_info in;
    ob_model_get_info(e->model, &in);
    int64_t ctx = p->ctx ? p->ctx : in.n_ctx_train < 4096 ? in.n_ctx_train : 4096;
    int64_t kv = p->kv_size ? p->kv_size : ctx * p->parallel;
    if (kv < ctx) kv = ctx; /* one request may always use the whole context */
    if (ctx > in.n_ctx_train)
        st = ob_fail(err, OB_ERR_ARG, "--ctx %lld: %s was trained for %lld positions",
                     (long long)ctx, path, (long long)in.n_ctx_train);
    if (!st) st = serve_prompter_init(&e->prompter, e->model, ctx, err);
    if (!st)
        st = serve_model_desc_init(&e->desc, e->model, path, name,
                                   ob_chat_template(e->prompter.chat, NULL), ctx, kv, err);
    if (!st) st = start_sched(p, path, e, ctx, kv, metrics, err);
    if (!st) {
        ob_pooling pooling = ob_model_pooling(e->model);
        if (p->pooling) ob_pooling_parse(p->pooling, &pooling);
        serve_embedder_init(&e->embedder, e->model, ctx, (int)p->threads, (int)pooling);
    }
    if (st) {
        serve_engine_close(e);
        return st;
    }
    *out = e;
    return OB_OK;
}

void serve_engine_close(serve_engine *e) {
    if (!e) return;
    serve_sched_stop(e->sched);
    serve_sched_free(e->sched);
    spec_drafter_free(e->drafter); /* after the engine thread that drafted with it */
    spec_mtp_free(e->mtp);
    ob_model_free(e->draft_model);
    serve_prompter_clear(&e->prompter);
    serve_embedder_clear(&e->embedder);
    ob_context_free(e->ctx);
    serve_model_desc_clear(&e->desc);
    ob_model_free(e->model);
    pthread_mutex_destroy(&e->mu);
    ob_free(e);
}

bool serve_engine_idle(serve_engine *e) {
    return serve_sched_idle(e->sched);
}

/* tokens / seconds, or JSON null before anything was measured. */
static json_t *rate_or_null(double tokens, double secs) {
    return secs > 0 ? json_real(tokens / secs) : json_null();
}

json_t *serve_engine_health(serve_engine *e) {
    serve_sched_speed m;
    serve_sched_speed_get(e->sched, &m);
    pthread_mutex_lock(&e->mu);
    const ob_plan_speed p = e->predicted;
    json_t *placement = json_string(e->placement);
    json_t *stream_why = json_string(e->stream_why);
    const int64_t stream_min = e->stream_min_tok;
    pthread_mutex_unlock(&e->mu);
    return json_pack("{s:s, s:o, s:{s:o, s:o}, s:{s:f, s:f, s:b, s:s}, s:{s:o, s:o}}", "model",
                     e->desc.id, "placement", placement ? placement : json_null(), "streaming",
                     "min_tokens", stream_min > 0 ? json_integer(stream_min) : json_null(),
                     "why", stream_why ? stream_why : json_null(), "predicted",
                     "prefill_tps", p.prefill_tps, "decode_tps", p.decode_tps, "calibrated",
                     p.calibrated, "basis", p.basis, "measured", "prefill_tps",
                     rate_or_null((double)m.prefill_tokens, m.prefill_s), "decode_tps",
                     rate_or_null((double)m.decode_passes, m.decode_s));
}
