/*
 * The CPU backend's recurrent state and its deltanet op (backend_cpu_rs.h). Layout: per
 * recurrent layer, one block of model_dnet_slot_floats per (sequence, slot), then one per
 * snapshot; a block holds the conv state (conv - 1, conv_dim) first, then the delta-rule state
 * (n_v_head, d_state, d_state).
 *
 * A batch's rows are grouped by sequence (a sequence's rows are in position order), then the op
 * runs in four parallel phases: the convolution split by channels, the per-row norms and gates,
 * the delta rule split by (sequence, value head), and the gated RMSNorm split by rows.
 */
#include "model/backend_cpu_rs.h"

#include "core/alloc.h"
#include "core/err.h"
#include "cpu/deltanet.h"
#include "cpu/ops.h"

#include <math.h>
#include <string.h>

#define RS_MAX_CONV 16 /* kernel taps cpu_dnet_conv keeps on its stack */

struct model_cpu_rs {
    model_backend_shape shape;
    int64_t layer_lo;
    int64_t *layer_idx;  /* (n_layer) index among the range's recurrent layers, or -1 */
    int64_t n_recurrent;
    size_t slot;         /* floats per slot */
    size_t per_layer;    /* slots per layer: 2 n_seq + n_rs_snap */
    float *state;        /* (n_recurrent, per_layer, slot) */
    float *scratch;      /* (nth, cpu_dnet_scratch_floats) */
    size_t scratch_per;
    int nth;
    int32_t *rows;       /* (n_batch) batch rows grouped by sequence */
    int64_t *seq_off;    /* (n_seq + 1) each sequence's range in rows */
};

/* seq >= n_seq: snapshot seq - n_seq (slot 0). */
static float *slot_ptr(model_cpu_rs *rs, int64_t il, int32_t seq, int slot) {
    const int64_t l = rs->layer_idx[il - rs->layer_lo], n_seq = rs->shape.n_seq;
    const size_t i = seq < n_seq ? (size_t)seq * 2 + (size_t)slot
                                 : (size_t)(2 * n_seq) + (size_t)(seq - n_seq);
    return rs->state + ((size_t)l * rs->per_layer + i) * rs->slot;
}

size_t model_rs_bytes(const model_backend_shape *s, int64_t layer_lo) {
    int64_t n = 0;
    for (int64_t l = 0; l < s->n_layer; l++) n += model_layer_is_recurrent(s, layer_lo + l);
    size_t bytes = 0, per;
    if (n == 0 || s->n_rs_snap < 0 ||
        ob_mul_size((size_t)model_dnet_slot_floats(s), sizeof(float), &per) ||
        ob_mul_size(per, (size_t)(2 * s->n_seq + s->n_rs_snap), &per) ||
        ob_mul_size(per, (size_t)n, &bytes))
        return 0;
    return bytes;
}

void model_cpu_rs_free(model_cpu_rs *rs) {
    if (!rs) return;
    ob_free(rs->layer_idx);
    ob_free_aligned(rs->state);
    ob_free_aligned(rs->scratch);
    ob_free(rs->rows);
    ob_free(rs->seq_off);
    ob_free(rs);
}

ob_status model_cpu_rs_new(const model_backend_shape *shape, int64_t layer_lo, int nth,
                           model_cpu_rs **out, ob_err *err) {
    *out = NULL;
    const size_t bytes = model_rs_bytes(shape, layer_lo);
    if (bytes == 0) return OB_OK;
    if (shape->ssm_conv < 1 || shape->ssm_conv > RS_MAX_CONV)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "recurrent state: conv kernel %lld, expected "
                       "1..%d", (long long)shape->ssm_conv, RS_MAX_CONV);
    model_cpu_rs *rs = ob_calloc(1, sizeof *rs);
    if (!rs) return ob_fail(err, OB_ERR_NOMEM, "recurrent state: out of memory");
    rs->shape = *shape;
    rs->layer_lo = layer_lo;
    rs->nth = nth;
    rs->slot = (size_t)model_dnet_slot_floats(shape);
    rs->per_layer = (size_t)(2 * shape->n_seq + shape->n_rs_snap);
    rs->scratch_per = cpu_dnet_scratch_floats(shape->ssm_d_state, shape->ssm_d_state);
    rs->layer_idx = ob_alloc((size_t)shape->n_layer, sizeof *rs->layer_idx);
    rs->state = ob_alloc_aligned(64, bytes);
    rs->scratch = ob_alloc_aligned(64, rs->scratch_per * (size_t)nth * sizeof(float));
    rs->rows = ob_alloc((size_t)shape->n_batch, sizeof *rs->rows);
    rs->seq_off = ob_alloc((size_t)shape->n_seq + 1, sizeof *rs->seq_off);
    if (!rs->layer_idx || !rs->state || !rs->scratch || !rs->rows || !rs->seq_off) {
        model_cpu_rs_free(rs);
        return ob_fail(err, OB_ERR_NOMEM, "recurrent state: out of memory for %lld sequences "
                       "(%.1f MiB)", (long long)shape->n_seq, (double)bytes / 1048576.0);
    }
    for (int64_t l = 0; l < shape->n_layer; l++)
        rs->layer_idx[l] = model_layer_is_recurrent(shape, layer_lo + l) ? rs->n_recurrent++ : -1;
    memset(rs->state, 0, bytes);
    *out = rs;
    return OB_OK;
}

void model_cpu_rs_copy(model_cpu_rs *rs, int32_t src, int src_slot, int32_t dst, int dst_slot) {
    if (!rs || (src == dst && src_slot == dst_slot)) return;
    for (int64_t il = rs->layer_lo; il < rs->layer_lo + rs->shape.n_layer; il++) {
        if (rs->layer_idx[il - rs->layer_lo] < 0) continue;
        memcpy(slot_ptr(rs, il, dst, dst_slot), slot_ptr(rs, il, src, src_slot),
               rs->slot * sizeof(float));
    }
}

/* ---- the op ---------------------------------------------------------------------------- */

typedef struct dnet_task {
    model_cpu_rs *rs;
    int64_t il, n_tok;
    float *out, *qkv, *alpha, *beta;
    const float *z;
    const model_kv_batch *kv;
    const model_dnet_weights *w;
} dnet_task;

/* Groups the batch rows by sequence into rs->rows / rs->seq_off (counting sort, stable). */
static void group_rows(model_cpu_rs *rs, const model_kv_batch *kv) {
    const int64_t n_seq = rs->shape.n_seq;
    memset(rs->seq_off, 0, (size_t)(n_seq + 1) * sizeof *rs->seq_off);
    for (int64_t t = 0; t < kv->n_tok; t++) rs->seq_off[kv->seq[t] + 1]++;
    for (int64_t s = 0; s < n_seq; s++) rs->seq_off[s + 1] += rs->seq_off[s];
    for (int64_t t = 0; t < kv->n_tok; t++) rs->rows[rs->seq_off[kv->seq[t]]++] = (int32_t)t;
    for (int64_t s = n_seq; s > 0; s--) rs->seq_off[s] = rs->seq_off[s - 1];
    rs->seq_off[0] = 0;
}

static void conv_task(void *arg, int ith, int nth) {
    dnet_task *a = arg;
    model_cpu_rs *rs = a->rs;
    const int64_t n_ch = model_dnet_conv_dim(&rs->shape), K = rs->shape.ssm_conv;
    int64_t c0, c1;
    cpu_split(n_ch, ith, nth, &c0, &c1);
    for (int32_t s = 0; s < rs->shape.n_seq; s++) {
        const int64_t lo = rs->seq_off[s], n = rs->seq_off[s + 1] - lo;
        if (n == 0) continue;
        float *st = slot_ptr(rs, a->il, s, 0);
        if (a->kv->pos[rs->rows[lo]] == 0) /* a new sequence: no inputs before it */
            for (int64_t j = 0; j < K - 1; j++) memset(st + j * n_ch + c0, 0, (size_t)(c1 - c0) * 4);
        cpu_dnet_conv(a->qkv, n_ch, rs->rows + lo, n, a->w->conv, K, st, n_ch, c0, c1);
    }
}

static void norm_task(void *arg, int ith, int nth) {
    dnet_task *a = arg;
    const model_backend_shape *sh = &a->rs->shape;
    const int64_t ds = sh->ssm_d_state, nk = sh->ssm_n_k_head, nv = sh->ssm_n_v_head;
    const int64_t n_ch = model_dnet_conv_dim(sh);
    const float qscale = 1.0f / sqrtf((float)ds);
    int64_t t0, t1;
    cpu_split(a->n_tok, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        float *row = a->qkv + t * n_ch;
        for (int64_t h = 0; h < 2 * nk; h++) cpu_l2norm(row + h * ds, ds, a->w->eps);
        for (int64_t i = 0; i < nk * ds; i++) row[i] *= qscale;
        for (int64_t h = 0; h < nv; h++) {
            float *al = a->alpha + t * nv + h, *be = a->beta + t * nv + h;
            *al = a->w->a[h] * cpu_softplus(*al + a->w->dt_bias[h]);
            *be = 1.0f / (1.0f + expf(-*be));
        }
    }
}

static void delta_task(void *arg, int ith, int nth) {
    dnet_task *a = arg;
    model_cpu_rs *rs = a->rs;
    const model_backend_shape *sh = &rs->shape;
    const int64_t ds = sh->ssm_d_state, nk = sh->ssm_n_k_head, nv = sh->ssm_n_v_head;
    const int64_t n_ch = model_dnet_conv_dim(sh), conv_floats = (sh->ssm_conv - 1) * n_ch;
    int64_t j0, j1;
    cpu_split(sh->n_seq * nv, ith, nth, &j0, &j1);
    for (int64_t job = j0; job < j1; job++) {
        const int32_t s = (int32_t)(job / nv);
        const int64_t h = job % nv, lo = rs->seq_off[s], n = rs->seq_off[s + 1] - lo;
        if (n == 0) continue;
        float *state = slot_ptr(rs, a->il, s, 0) + conv_floats + h * ds * ds;
        if (a->kv->pos[rs->rows[lo]] == 0) memset(state, 0, (size_t)(ds * ds) * sizeof(float));
        /* the converter's order: the value heads of a key head are adjacent (qwen3next) or
         * tile the key heads (qwen35) */
        const int64_t kh = a->w->grouped_heads ? h / (nv / nk) : h % nk;
        cpu_dnet_head hd = {
            .n = n, .rows = rs->rows + lo, .dk = ds, .dv = ds,
            .q = a->qkv + kh * ds, .k = a->qkv + (nk + kh) * ds, .qk_stride = n_ch,
            .v = a->qkv + (2 * nk + h) * ds, .v_stride = n_ch,
            .g = a->alpha + h, .beta = a->beta + h, .gb_stride = nv,
            .out = a->out + h * ds, .out_stride = nv * ds, .state = state,
        };
        /* token by token for one row and where the batch asks for it (a speculative
         * verification and its replay: plain decoding's state exactly), else in chunks */
        if (n == 1 || (a->kv->stepwise && a->kv->stepwise[s])) cpu_dnet_step(&hd);
        else cpu_dnet_chunked(&hd, rs->scratch + (size_t)ith * rs->scratch_per);
    }
}

static void gate_task(void *arg, int ith, int nth) {
    dnet_task *a = arg;
    const model_backend_shape *sh = &a->rs->shape;
    const int64_t ds = sh->ssm_d_state, nv = sh->ssm_n_v_head;
    int64_t r0, r1;
    cpu_split(a->n_tok * nv, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        float *o = a->out + r * ds;
        const float *z = a->z + r * ds;
        cpu_rmsnorm_row(o, o, a->w->norm, ds, a->w->eps);
        for (int64_t j = 0; j < ds; j++) o[j] *= z[j] / (1.0f + expf(-z[j]));
    }
}

void model_cpu_rs_deltanet(model_cpu_rs *rs, cpu_pool *pool, int64_t il, float *out,
                           float *qkv, const float *z, float *alpha, float *beta,
                           const model_kv_batch *kv, const model_dnet_weights *w) {
    dnet_task a = {.rs = rs, .il = il, .n_tok = kv->n_tok, .out = out, .qkv = qkv, .z = z,
                   .alpha = alpha, .beta = beta, .kv = kv, .w = w};
    group_rows(rs, kv);
    cpu_pool_run(pool, conv_task, &a);
    cpu_pool_run(pool, norm_task, &a);
    cpu_pool_run(pool, delta_task, &a);
    cpu_pool_run(pool, gate_task, &a);
}
