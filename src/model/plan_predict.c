/*
 * Predicted prefill and decode speed of a placement (ob_plan_predict): each stage of the plan
 * costs pass_s + n_layers * layer_s + work / rate (calib.h) under the rates measured for its
 * backend and weight type, and each crossing of the link costs its bytes over the link's
 * bandwidth plus its latency. The layer ranges and link bytes are the plan's own fields; the
 * work is counted over the same weight table, with the same predicate, that the backends bind
 * their weights from (model_weight_wanted), so the prediction and the real pass cannot drift
 * apart in what they count.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "cpu/pool.h"
#include "gguf/qtype.h"
#include "model/calib.h"
#include "model/context.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Stated defaults where nothing was measured: a laptop-class CPU (about 20 GB/s of read
 * bandwidth, 100 G multiply-adds/s), a mid-range GPU behind a PCIe slot. */
static const calib_cost HOST_DECODE = {50e-6, 20e-6, 20e9};
static const calib_cost HOST_PREFILL = {50e-6, 20e-6, 100e9};
static const calib_cost DEVICE_DECODE = {100e-6, 50e-6, 300e9};
static const calib_cost DEVICE_PREFILL = {100e-6, 50e-6, 10e12};
#define LINK_DEFAULT_GBS 25.0
#define LINK_DEFAULT_LATENCY_US 10.0

double calib_cost_eval(const calib_cost *c, int64_t n_layers, double work) {
    return c->pass_s + (double)n_layers * c->layer_s + (c->rate > 0 ? work / c->rate : 0);
}

ob_status calib_fit(const double t[3], const int64_t n_layers[3], const double work[3],
                    double fallback_rate, calib_cost *out, ob_err *err) {
    /* t0 = P + L0*O + w0/R, t1 = P + L1*O + w1/R, t2 = P + L0*O + w2/R (L2 == L0) */
    if (n_layers[2] != n_layers[0] || n_layers[1] <= n_layers[0] || !(work[2] > work[0]))
        return ob_fail(err, OB_ERR_ARG, "the three passes do not separate the "
                       "per-pass, per-layer and per-work costs");
    double inv_rate = (t[2] - t[0]) / (work[2] - work[0]);
    bool per_layer = true;
    if (!(inv_rate > 0) || !isfinite(inv_rate)) {
        /* the wider layer cost no more: the rate the caller knows, else the one the extra
         * layers give with no cost per layer besides their work */
        per_layer = fallback_rate <= 0;
        inv_rate = per_layer ? (t[1] - t[0]) / (work[1] - work[0]) : 1.0 / fallback_rate;
        per_layer = !per_layer;
    }
    if (!(inv_rate > 0) || !isfinite(inv_rate))
        return ob_fail(err, OB_ERR_ARG, "%.3g more work took %.3g s, not more time (the "
                       "machine too busy to measure?)", work[2] - work[0], t[2] - t[0]);
    double layer = per_layer ? ((t[1] - t[0]) - (work[1] - work[0]) * inv_rate) /
                                   (double)(n_layers[1] - n_layers[0])
                             : 0;
    if (layer < 0) layer = 0;
    double pass = t[0] - (double)n_layers[0] * layer - work[0] * inv_rate;
    if (pass < 0) pass = 0;
    *out = (calib_cost){pass, layer, 1.0 / inv_rate};
    return OB_OK;
}

/* ---- the work of a stage ----------------------------------------------------------------- */

/* The share of a weight a token reads: n_used / n_expert for one of a mixture-of-experts
 * block's routed experts (decode reads only the chosen ones, and each token of a prompt runs
 * n_used of them), 1 for every other weight, the router and the shared expert included. */
static double token_share(const model_backend_weights *ws, const model_weight *w) {
    if (!w->expert || w->layer < 0 || !ws->moe || !ws->moe[w->layer]) return 1.0;
    const model_moe_block *b = ws->moe[w->layer];
    return (double)b->n_used / (double)b->n_expert;
}

void plan_work_of(const ob_model *m, int64_t lo, int64_t hi, int64_t n_tok,
                  model_weight_part part, plan_work *out) {
    const model_backend_weights *ws = &m->w.for_backends;
    const int64_t n_layer = m->hp.n_layer;
    double macs = 0, head_macs = 0, by_type[OB_QTYPE_COUNT] = {0};
    memset(out, 0, sizeof *out);
    if (hi <= lo) return;
    for (int64_t i = 0; i < ws->n; i++) {
        const model_weight *w = ws->table[i];
        /* the embedding is looked up row by row: no matrix product reads it */
        if (!model_weight_wanted(w, lo, hi, n_layer, part) || (w->embed && !w->head))
            continue;
        const double share = token_share(ws, w);
        const double bytes = share * (double)w->n_out * (double)w->row_size;
        out->decode_bytes += bytes;
        if (model_weight_streamable(w, lo, hi) && w->expert) { /* only its routed rows */
            out->expert_products++;
            out->expert_weight_bytes += (double)w->n_out * (double)w->row_size;
            out->expert_in += (double)w->n_in;
            out->expert_out += (double)w->n_out;
            out->expert_macs += (double)w->n_out * (double)w->n_in;
            out->expert_share = share;
        } else if (model_weight_streamable(w, lo, hi)) { /* every row of a pass */
            out->stream_products++;
            out->stream_weight_bytes += bytes;
            out->stream_in += (double)w->n_in;
            out->stream_out += (double)w->n_out;
            out->stream_macs += (double)w->n_out * (double)w->n_in;
        }
        if (w->head) head_macs += (double)w->n_out * (double)w->n_in;
        else macs += share * (double)w->n_out * (double)w->n_in;
        if (w->layer >= 0 && w->type < OB_QTYPE_COUNT) by_type[w->type] += bytes;
    }
    /* causal attention of a chunk from an empty cache: row t scores and sums t + 1 positions */
    const double n = (double)n_tok, width = (double)(m->hp.n_head * m->hp.head_dim);
    double attn = 0;
    for (int64_t il = lo; il < hi && part != MODEL_PART_MOE; il++)
        if (!(m->hp.recurrent && m->hp.recurrent[il])) attn += n * (n + 1) / 2 * width * 2;
    /* the output projection runs only on the rows that want logits: one per prompt chunk */
    out->prefill_macs = macs * n + head_macs + attn;
    for (uint32_t t = 0; t < OB_QTYPE_COUNT; t++)
        if (by_type[t] > by_type[out->qtype]) out->qtype = t;
}

/* ---- the prediction ---------------------------------------------------------------------- */

/* The rates of a stage of weight type qtype on backend b: measured for that type, else
 * another type's measured on the same backend (closer than a default: the fixed costs are the
 * backend's, and the rates of quantized types differ by less than machines do), else the
 * stated defaults; false unless measured for that type. */
static bool stage_rates(const calib_backend *b, uint32_t qtype, bool device,
                        const calib_cost **dec, const calib_cost **pre) {
    const calib_type *t = calib_type_find(b, qtype);
    const calib_type *near = t ? t : b && b->n_types ? &b->types[0] : NULL;
    *dec = near ? &near->decode : device ? &DEVICE_DECODE : &HOST_DECODE;
    *pre = near ? &near->prefill : device ? &DEVICE_PREFILL : &HOST_PREFILL;
    return t != NULL;
}

/* What one stage, running `part` of its layers, costs per decoded token and per chunk; false
 * when a default stood in. */
static bool stage_cost(const ob_model *m, const ob_plan_part *part, model_weight_part what,
                       bool device, const calib_backend *b, int64_t n_batch, double *decode_s,
                       double *prefill_s) {
    *decode_s = *prefill_s = 0;
    const int64_t n_layers = part->layer_hi - part->layer_lo;
    if (n_layers <= 0) return true;
    plan_work w;
    plan_work_of(m, part->layer_lo, part->layer_hi, n_batch, what, &w);
    const calib_cost *dec, *pre;
    const bool ok = stage_rates(b, w.qtype, device, &dec, &pre);
    *decode_s = calib_cost_eval(dec, n_layers, w.decode_bytes);
    *prefill_s = calib_cost_eval(pre, n_layers, w.prefill_macs);
    return ok;
}

static double link_s(double bytes, double gbs, double latency_us) {
    return bytes > 0 ? bytes / (gbs * 1e9) + latency_us * 1e-6 : 0;
}

/* The link to plan's device: measured, else the emulated one's own figures, else the
 * defaults; *why says which when not measured (NULL when it was). */
static void link_of(const calib *c, const ob_context_params *p, const ob_plan *plan,
                    calib_link *out, const char **why) {
    const calib_link *l = calib_link_find(c, plan->device_key, p->link_gbps, p->link_latency_us);
    *why = NULL;
    if (l) {
        *out = *l;
    } else if (p->link_gbps > 0) { /* the emulated link takes exactly this long */
        *out = (calib_link){.h2d_gbs = p->link_gbps, .h2d_latency_us = p->link_latency_us,
                            .d2h_gbs = p->link_gbps, .d2h_latency_us = p->link_latency_us};
        *why = "link: as emulated, not measured";
    } else {
        *out = (calib_link){.h2d_gbs = LINK_DEFAULT_GBS, .h2d_latency_us = LINK_DEFAULT_LATENCY_US,
                            .d2h_gbs = LINK_DEFAULT_GBS, .d2h_latency_us = LINK_DEFAULT_LATENCY_US};
        *why = "link: not calibrated, defaults";
    }
}

static const calib_backend *host_rates(const calib *c, const ob_context_params *p) {
    char host_key[CALIB_KEY_SIZE];
    calib_host_key(host_key, sizeof host_key);
    return calib_backend_find(c, host_key, p->n_threads > 0 ? p->n_threads
                                                             : cpu_physical_cores());
}

void plan_routed_rows(int64_t n, double p, int64_t min_rows, double *q, double *r) {
    *q = *r = 0;
    if (min_rows < 0) min_rows = 0;
    if (n < min_rows || !(p > 0)) return;
    if (p >= 1) { /* every row goes to every expert */
        *q = 1;
        *r = (double)n;
        return;
    }
    /* the binomial's terms from min_rows up, in logarithms: (1 - p)^n alone underflows for
     * the chunk sizes and shares of real models */
    const double lp = log(p), lq = log1p(-p), ln = lgamma((double)n + 1);
    for (int64_t i = min_rows; i <= n; i++) {
        const double t = exp(ln - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) +
                             (double)i * lp + (double)(n - i) * lq);
        *q += t;
        *r += t * (double)i;
    }
}

void plan_stream_cost_of(const ob_model *m, const ob_context_params *p, const ob_plan *plan,
                         const calib *c, int64_t n_tok, int64_t expert_min,
                         plan_stream_cost *out) {
    memset(out, 0, sizeof *out);
    const int64_t n_layers = plan->host.layer_hi - plan->host.layer_lo;
    const int64_t n_moe = plan->experts.layer_hi - plan->experts.layer_lo;
    if (n_layers <= 0 && n_moe <= 0) return;
    plan_work w, we; /* the host's layers; the device layers' MoE blocks on the host */
    plan_work_of(m, plan->host.layer_lo, plan->host.layer_hi, n_tok, MODEL_PART_ALL, &w);
    plan_work_of(m, plan->experts.layer_lo, plan->experts.layer_hi, n_tok, MODEL_PART_MOE, &we);
    const calib_cost *hdec, *hpre, *ddec, *dpre;
    const uint32_t qtype = n_layers > 0 ? w.qtype : we.qtype;
    bool ok = stage_rates(host_rates(c, p), qtype, false, &hdec, &hpre);
    ok &= stage_rates(calib_backend_find(c, plan->device_key, 0), qtype, true, &ddec, &dpre);
    calib_link l;
    const char *why;
    link_of(c, p, plan, &l, &why);
    const double n = (double)n_tok;
    /* each routed expert's share of the streamed work: all of it when costing a threshold */
    const double share = w.expert_products ? w.expert_share : we.expert_share;
    double q = 1, r = n;
    if (expert_min > 0) plan_routed_rows(n_tok, share, expert_min, &q, &r);
    const double e_weight = w.expert_weight_bytes + we.expert_weight_bytes;
    const double e_in = w.expert_in + we.expert_in, e_out = w.expert_out + we.expert_out;
    const double streamed = w.stream_macs * n + (w.expert_macs + we.expert_macs) * r;
    const double products = (double)w.stream_products +
                            q * (double)(w.expert_products + we.expert_products);
    out->cpu_s = calib_cost_eval(hpre, n_layers, w.prefill_macs) +
                 (n_moe > 0 ? calib_cost_eval(hpre, n_moe, we.prefill_macs) : 0);
    out->moved_s = hpre->rate > 0 ? streamed / hpre->rate : 0;
    out->rest_s = out->cpu_s - out->moved_s;
    /* the device runs the products as it would run them in its own layers: their work, and
     * its fixed cost per layer (its dispatches; each product's wait for the link is the
     * link's latency below) */
    out->device_s = (double)(n_layers + n_moe) * dpre->layer_s +
                    (dpre->rate > 0 ? streamed / dpre->rate : 0);
    out->expert_weight = q * e_weight;
    out->expert_over = out->expert_weight + r * 4 * e_in;
    out->expert_back = r * 4 * e_out;
    out->weight_bytes = w.stream_weight_bytes;
    out->over_bytes = w.stream_weight_bytes + n * 4 * w.stream_in;
    out->back_bytes = n * 4 * w.stream_out;
    out->link_s = (out->over_bytes + out->expert_over) / (l.h2d_gbs * 1e9) +
                  (out->back_bytes + out->expert_back) / (l.d2h_gbs * 1e9) +
                  products * (l.h2d_latency_us + l.d2h_latency_us) * 1e-6;
    out->calibrated = ok && !why;
}

static void add_basis(ob_plan_speed *out, const char *what) {
    const size_t n = strlen(out->basis);
    snprintf(out->basis + n, sizeof out->basis - n, "%s%s", n ? "; " : "", what);
}

void plan_predict(const ob_model *m, const ob_context_params *p, const ob_plan *plan,
                  const calib *c, ob_plan_speed *out) {
    memset(out, 0, sizeof *out);
    const int64_t n_batch = p->n_batch > 0 ? p->n_batch : 512;
    const calib_backend *hb = host_rates(c, p);
    const calib_backend *db = plan->n_gpu_layers > 0
                                  ? calib_backend_find(c, plan->device_key, 0) : NULL;
    bool ok = stage_cost(m, &plan->host, MODEL_PART_ALL, false, hb, n_batch, &out->decode_s[0],
                         &out->prefill_s[0]);
    if (plan->experts_on_host) { /* the device's layers' MoE blocks run on the host's cores */
        double dec, pre;
        ok &= stage_cost(m, &plan->experts, MODEL_PART_MOE, false, hb, n_batch, &dec, &pre);
        out->decode_s[0] += dec;
        out->prefill_s[0] += pre;
    }
    if (!ok) add_basis(out, hb ? "host: this weight type not calibrated, another's rates"
                               : "host: not calibrated at this thread count, defaults");
    if (!stage_cost(m, &plan->device, plan->experts_on_host ? MODEL_PART_NO_MOE : MODEL_PART_ALL,
                    true, db, n_batch, &out->decode_s[1], &out->prefill_s[1])) {
        ok = false;
        add_basis(out, db ? "device: this weight type not calibrated, another's rates"
                          : "device: not calibrated, defaults");
    }
    /* with streaming, the host's layers' products and its routed experts' with enough rows
     * run on the device, over the link */
    const bool streams = plan->stream_min_tok > 0 && n_batch >= plan->stream_min_tok;
    calib_link l;
    if (plan->n_gpu_layers > 0 || streams) {
        const char *why;
        link_of(c, p, plan, &l, &why);
        if (why) ok = false, add_basis(out, why);
    }
    plan_stream_cost sc;
    memset(&sc, 0, sizeof sc);
    if (streams) {
        plan_stream_cost_of(m, p, plan, c, n_batch, plan->stream_min_tok, &sc);
        if (!sc.calibrated && ok) ok = false, add_basis(out, "streaming: defaults");
        out->prefill_s[0] = sc.rest_s;
        out->prefill_s[1] += sc.device_s;
        out->prefill_s[2] += sc.link_s;
    }
    if (plan->n_gpu_layers > 0) {
        /* the plan's link bytes: one logits row back, the rest hidden states going over,
         * less the streamed products' bytes (costed above) */
        const double back = (double)m->hp.n_vocab * 4;
        const double over_tok = (double)plan->link_token - back;
        const double over_chunk = (double)plan->link_chunk - back - sc.over_bytes -
                                  sc.back_bytes - sc.expert_over - sc.expert_back;
        out->decode_s[2] = link_s(over_tok, l.h2d_gbs, l.h2d_latency_us) +
                           link_s(back, l.d2h_gbs, l.d2h_latency_us);
        out->prefill_s[2] += link_s(over_chunk, l.h2d_gbs, l.h2d_latency_us) +
                             link_s(back, l.d2h_gbs, l.d2h_latency_us);
    }
    const double dec = out->decode_s[0] + out->decode_s[1] + out->decode_s[2];
    const double pre = out->prefill_s[0] + out->prefill_s[1] + out->prefill_s[2];
    out->decode_tps = dec > 0 ? 1.0 / dec : 0;
    out->prefill_tps = pre > 0 ? (double)n_batch / pre : 0;
    out->calibrated = ok;
    if (ok) add_basis(out, "calibrated");
}

void ob_plan_predict(const ob_model *m, const ob_context_params *params, const ob_plan *plan,
                     const char *calib_path, ob_plan_speed *out) {
    ob_context_params p;
    if (params) p = *params;
    else ob_context_params_init(&p);
    ob_err err = {{0}};
    model_context_params_check(m, &p, NULL); /* defaults filled as the context fills them */
    calib *c = ob_alloc(1, sizeof *c);
    ob_status st = c ? calib_load(calib_path, c, &err) : OB_ERR_NOMEM;
    plan_predict(m, &p, plan, st ? NULL : c, out);
    char why[sizeof out->basis];
    if (st == OB_ERR_FORMAT) /* say why the measured figures were not used */
        snprintf(why, sizeof why, "calibration ignored (%.200s)", err.msg);
    else if (st == OB_ERR_IO)
        snprintf(why, sizeof why, "no calibration (`outboard plan --calibrate`)");
    if (st == OB_ERR_FORMAT || st == OB_ERR_IO) { /* that first, then the rest */
        const size_t n = strlen(why);
        snprintf(why + n, sizeof why - n, "; %.*s", (int)(sizeof why - n - 3), out->basis);
        memcpy(out->basis, why, sizeof why);
    }
    ob_free(c);
}
