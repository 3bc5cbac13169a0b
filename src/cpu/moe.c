/*
 * The mixture-of-experts block on the CPU (see moe.h). The routing arithmetic follows
 * llama.cpp's build_moe_ffn for softmax gating: softmax over all experts, the top n_used
 * probabilities in descending order, optionally divided by their sum (clamped below at the
 * smallest normal F16, 6.1e-5, as llama.cpp clamps it) and scaled; the weighted expert outputs
 * are added in that order. Grouping by expert changes which rows share a matrix product, not
 * any row's arithmetic.
 */
#include "cpu/moe.h"

#include "core/alloc.h"
#include "cpu/ops.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

struct cpu_moe_scratch {
    int64_t n_batch;
    float *logits;   /* (n_batch, n_expert) router logits, then probabilities */
    int32_t *sel;    /* (n_batch, n_used) chosen experts, best first */
    float *w;        /* (n_batch, n_used) their weights */
    int32_t *start;  /* (n_expert + 1) first entry of each expert in `order` */
    int32_t *order;  /* (n_batch * n_used) entries t * n_used + j grouped by expert */
    int32_t *at;     /* (n_batch * n_used) where each entry sits in `order` */
    int32_t *away;   /* (n_expert) 1: this pass's products of that expert ran elsewhere
                        (cpu_moe.offload) */
    float *xg;       /* (n_batch * n_used, n_embd) each entry's input row, in `order` */
    float *g, *u;    /* (n_batch * n_used, max(n_ff, n_ff_sh)) gate and up products */
    float *d;        /* (n_batch * n_used, n_embd) down products */
    float *sh;       /* (n_batch) shared-expert gate logits */
    cpu_matmul_job *jobs; /* (2 * n_expert) products of one pass */
};

static _Atomic uint64_t g_bytes;
static _Atomic uint64_t g_reads[CPU_MOE_MAX_EXPERTS];

void cpu_moe_counts_get(cpu_moe_counts *out) {
    out->bytes = atomic_load_explicit(&g_bytes, memory_order_relaxed);
    for (int i = 0; i < CPU_MOE_MAX_EXPERTS; i++)
        out->reads[i] = atomic_load_explicit(&g_reads[i], memory_order_relaxed);
}

void cpu_moe_counts_reset(void) {
    atomic_store_explicit(&g_bytes, 0, memory_order_relaxed);
    for (int i = 0; i < CPU_MOE_MAX_EXPERTS; i++)
        atomic_store_explicit(&g_reads[i], 0, memory_order_relaxed);
}

void cpu_moe_scratch_free(cpu_moe_scratch *s) {
    if (!s) return;
    float *fs[] = {s->logits, s->w, s->xg, s->g, s->u, s->d, s->sh};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) ob_free_aligned(fs[i]);
    ob_free(s->sel);
    ob_free(s->start);
    ob_free(s->order);
    ob_free(s->at);
    ob_free(s->away);
    ob_free(s->jobs);
    ob_free(s);
}

/* n * m floats, 64-byte aligned; NULL on overflow or failure. */
static float *floats(int64_t n, int64_t m) {
    size_t bytes;
    if (n < 0 || m < 0 || ob_mul_size((size_t)n, (size_t)m, &bytes) ||
        ob_mul_size(bytes, sizeof(float), &bytes))
        return NULL;
    return ob_alloc_aligned(64, bytes ? bytes : 64);
}

cpu_moe_scratch *cpu_moe_scratch_new(int64_t n_batch, int64_t n_embd, int64_t n_expert,
                                     int64_t n_used, int64_t n_ff, int64_t n_ff_sh) {
    if (n_batch < 1 || n_expert < 1 || n_expert > CPU_MOE_MAX_EXPERTS || n_used < 1 ||
        n_used > n_expert)
        return NULL;
    cpu_moe_scratch *s = ob_calloc(1, sizeof *s);
    if (!s) return NULL;
    const int64_t ff = n_ff > n_ff_sh ? n_ff : n_ff_sh, rows = n_batch * n_used;
    s->n_batch = n_batch;
    s->logits = floats(n_batch, n_expert);
    s->w = floats(n_batch, n_used);
    s->xg = floats(rows, n_embd);
    s->g = floats(rows, ff);
    s->u = floats(rows, ff);
    s->d = floats(rows, n_embd);
    s->sh = floats(n_batch, 1);
    s->sel = ob_alloc((size_t)rows, sizeof *s->sel);
    s->order = ob_alloc((size_t)rows, sizeof *s->order);
    s->at = ob_alloc((size_t)rows, sizeof *s->at);
    s->start = ob_alloc((size_t)n_expert + 1, sizeof *s->start);
    s->away = ob_alloc((size_t)n_expert, sizeof *s->away);
    s->jobs = ob_alloc(2 * (size_t)n_expert, sizeof *s->jobs);
    if (!s->logits || !s->w || !s->xg || !s->g || !s->u || !s->d || !s->sh || !s->sel ||
        !s->order || !s->at || !s->start || !s->away || !s->jobs) {
        cpu_moe_scratch_free(s);
        return NULL;
    }
    return s;
}

size_t cpu_moe_scratch_bytes(int64_t n_batch, int64_t n_embd, int64_t n_expert, int64_t n_used,
                             int64_t n_ff, int64_t n_ff_sh) {
    if (n_batch < 1 || n_expert < 1 || n_expert > CPU_MOE_MAX_EXPERTS || n_used < 1 ||
        n_used > n_expert || n_embd < 1 || n_ff < 0 || n_ff_sh < 0)
        return 0;
    /* the buffers of cpu_moe_scratch_new, in its order; the sizes were range-checked at load */
    const uint64_t ff = (uint64_t)(n_ff > n_ff_sh ? n_ff : n_ff_sh);
    const uint64_t rows = (uint64_t)(n_batch * n_used);
    const uint64_t floats = (uint64_t)(n_batch * n_expert) + rows + rows * (uint64_t)n_embd +
                            2 * rows * ff + rows * (uint64_t)n_embd + (uint64_t)n_batch;
    const uint64_t ints = 3 * rows + 2 * (uint64_t)n_expert + 1;
    const uint64_t bytes = floats * sizeof(float) + ints * sizeof(int32_t) +
                           2 * (uint64_t)n_expert * sizeof(cpu_matmul_job);
    return bytes > SIZE_MAX ? 0 : (size_t)bytes;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Scratch of cpu_matmul_many over one kind of matrix (`ws`, one per expert) for n_rows rows
 * spread over at most n_jobs experts: job e takes round64(cpu_matmul_wsize(ws[e], c_e)) <=
 * c_e * cpu_matmul_wsize(ws[e], 1) + 64 bytes (activation rows, or one packed row). */
static size_t many_bound(const cpu_weight *ws, int64_t n_expert, int64_t n_rows,
                         int64_t n_jobs) {
    size_t row = 0;
    for (int64_t e = 0; e < n_expert; e++) row = max_size(row, cpu_matmul_wsize(&ws[e], 1));
    return (size_t)n_rows * row + (size_t)n_jobs * 64;
}

size_t cpu_moe_wsize(const cpu_moe *moe, int64_t n_tok) {
    const int64_t rows = n_tok * moe->n_used;
    const int64_t jobs = rows < moe->n_expert ? rows : moe->n_expert;
    size_t best = cpu_matmul_wsize(&moe->router, n_tok);
    best = max_size(best, many_bound(moe->gate, moe->n_expert, rows, jobs) +
                              many_bound(moe->up, moe->n_expert, rows, jobs));
    best = max_size(best, many_bound(moe->down, moe->n_expert, rows, jobs));
    if (moe->n_ff_sh > 0) {
        best = max_size(best, cpu_matmul_wsize(&moe->sh_gate, n_tok));
        best = max_size(best, cpu_matmul_wsize(&moe->sh_up, n_tok));
        best = max_size(best, cpu_matmul_wsize(&moe->sh_down, n_tok));
        best = max_size(best, cpu_matmul_wsize(&moe->sh_gate_w, n_tok));
    }
    return best;
}

/* ---- routing --------------------------------------------------------------------------- */

/* Token t's experts and weights from its router logits (softmaxed in place). */
static void route_token(const cpu_moe *moe, float *p, int32_t *sel, float *w) {
    cpu_softmax_row(p, moe->n_expert, 1.0f);
    /* top n_used by selection, best first; ties go to the lower id */
    for (int64_t j = 0; j < moe->n_used; j++) {
        int32_t best = -1;
        for (int32_t e = 0; e < (int32_t)moe->n_expert; e++) {
            bool taken = false;
            for (int64_t i = 0; i < j && !taken; i++) taken = sel[i] == e;
            if (!taken && (best < 0 || p[e] > p[best])) best = e;
        }
        sel[j] = best;
        w[j] = p[best];
    }
    if (moe->norm) {
        float sum = 0.0f;
        for (int64_t j = 0; j < moe->n_used; j++) sum += w[j];
        if (sum < 6.103515625e-5f) sum = 6.103515625e-5f;
        for (int64_t j = 0; j < moe->n_used; j++) w[j] /= sum;
    }
    if (moe->scale != 0.0f && moe->scale != 1.0f)
        for (int64_t j = 0; j < moe->n_used; j++) w[j] *= moe->scale;
}

/* Routes every token and groups the (token, slot) entries by expert into s->order, with
 * s->start[e] .. s->start[e + 1] the entries of expert e. */
static void route(const cpu_moe *moe, cpu_moe_scratch *s, int64_t n_tok) {
    const int64_t k = moe->n_used, ne = moe->n_expert;
    for (int64_t t = 0; t < n_tok; t++)
        route_token(moe, s->logits + t * ne, s->sel + t * k, s->w + t * k);
    memset(s->start, 0, (size_t)(ne + 1) * sizeof *s->start);
    for (int64_t i = 0; i < n_tok * k; i++) s->start[s->sel[i] + 1]++;
    for (int64_t e = 0; e < ne; e++) s->start[e + 1] += s->start[e];
    for (int64_t i = 0; i < n_tok * k; i++) {
        /* start[e] advances as entries are placed, then is restored below */
        s->order[s->start[s->sel[i]]++] = (int32_t)i;
    }
    for (int64_t e = ne; e > 0; e--) s->start[e] = s->start[e - 1];
    s->start[0] = 0;
    for (int64_t i = 0; i < n_tok * k; i++) s->at[s->order[i]] = (int32_t)i;
}

/* ---- experts --------------------------------------------------------------------------- */

static void count_read(int64_t e, const cpu_weight *ws[3]) {
    uint64_t bytes = 0;
    for (int i = 0; i < 3; i++) bytes += (uint64_t)ws[i]->row_size * (uint64_t)ws[i]->n_out;
    atomic_fetch_add_explicit(&g_bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_reads[e], 1, memory_order_relaxed);
}

/* d (n, n_embd) = the SwiGLU expert (gate, up, down) of x (n, n_embd). */
static void expert_run(cpu_pool *pool, cpu_moe_scratch *s, const cpu_weight *gate,
                       const cpu_weight *up, const cpu_weight *down, const float *x,
                       int64_t n, void *wsp) {
    cpu_matmul(pool, s->g, gate, x, n, wsp);
    cpu_matmul(pool, s->u, up, x, n, wsp);
    cpu_swiglu(pool, s->g, s->g, s->u, n * gate->n_out);
    cpu_matmul(pool, s->d, down, s->g, n, wsp);
}

/* y = part `part` of expert e applied to x (n rows): offered to moe->offload first. */
static bool offloaded(const cpu_moe *moe, cpu_moe_part part, int64_t e, float *y,
                      const float *x, int64_t n) {
    return moe->offload && moe->offload(moe->offload_user, moe, part, e, y, x, n);
}

static void expert_product(cpu_pool *pool, const cpu_moe *moe, cpu_moe_part part, int64_t e,
                           float *y, const float *x, int64_t n, void *wsp) {
    const cpu_weight *ws[3] = {&moe->gate[e], &moe->up[e], &moe->down[e]};
    if (!offloaded(moe, part, e, y, x, n)) cpu_matmul(pool, y, ws[part], x, n, wsp);
}

/* Every expert some entry chose, once, on the rows routed to it (gathered in `order`, so
 * expert e's rows are start[e]..start[e + 1] of xg, g, u and d): the products moe->offload
 * takes run there, expert by expert; the rest, all gate and up products in one pass of the
 * pool, SwiGLU over every row, all down products in another. */
static void run_experts(cpu_pool *pool, cpu_moe_scratch *s, const float *x, const cpu_moe *moe,
                        int64_t n_tok, void *wsp) {
    const int64_t n_embd = moe->n_embd, ff = moe->n_ff, k = moe->n_used, rows = n_tok * k;
    const size_t row = (size_t)n_embd * sizeof(float);
    /* one token: every entry's row is x itself */
    if (n_tok > 1)
        for (int64_t i = 0; i < rows; i++)
            memcpy(s->xg + (size_t)i * (size_t)n_embd, x + (size_t)(s->order[i] / k) *
                   (size_t)n_embd, row);
    int n = 0;
    for (int64_t e = 0; e < moe->n_expert; e++) {
        const int32_t lo = s->start[e], c = s->start[e + 1] - lo;
        s->away[e] = 0;
        if (c == 0) continue;
        const cpu_weight *ws[3] = {&moe->gate[e], &moe->up[e], &moe->down[e]};
        count_read(e, ws);
        const float *in = n_tok > 1 ? s->xg + (size_t)lo * (size_t)n_embd : x;
        float *g = s->g + (size_t)lo * (size_t)ff, *u = s->u + (size_t)lo * (size_t)ff;
        if (offloaded(moe, CPU_MOE_GATE, e, g, in, c)) {
            expert_product(pool, moe, CPU_MOE_UP, e, u, in, c, wsp);
            s->away[e] = 1;
            continue;
        }
        s->jobs[n++] = (cpu_matmul_job){g, ws[0], in, c};
        s->jobs[n++] = (cpu_matmul_job){u, ws[1], in, c};
    }
    cpu_matmul_many(pool, s->jobs, n, wsp);
    cpu_swiglu(pool, s->g, s->g, s->u, rows * ff);
    for (int64_t e = 0; e < moe->n_expert; e++) {
        const int64_t lo = s->start[e];
        if (s->away[e])
            expert_product(pool, moe, CPU_MOE_DOWN, e, s->d + lo * n_embd, s->g + lo * ff,
                           s->start[e + 1] - lo, wsp);
    }
    for (int i = 0; i < n / 2; i++) {
        const int64_t lo = (s->jobs[2 * i].y - s->g) / ff;
        const int64_t e = s->jobs[2 * i].w - moe->gate;
        s->jobs[i] = (cpu_matmul_job){s->d + lo * n_embd, &moe->down[e], s->g + lo * ff,
                                      s->jobs[2 * i].n_tok};
    }
    cpu_matmul_many(pool, s->jobs, n / 2, wsp);
}

/* out (n_tok, n_embd) += sigmoid(g . x) * shared expert(x). */
static void shared_expert(cpu_pool *pool, cpu_moe_scratch *s, float *out, const float *x,
                          const cpu_moe *moe, int64_t n_tok, void *wsp) {
    const int64_t n_embd = moe->n_embd;
    cpu_matmul(pool, s->sh, &moe->sh_gate_w, x, n_tok, wsp);
    expert_run(pool, s, &moe->sh_gate, &moe->sh_up, &moe->sh_down, x, n_tok, wsp);
    for (int64_t t = 0; t < n_tok; t++) {
        const float gate = 1.0f / (1.0f + expf(-s->sh[t]));
        const float *d = s->d + t * n_embd;
        float *o = out + t * n_embd;
        for (int64_t i = 0; i < n_embd; i++) o[i] += d[i] * gate;
    }
}

void cpu_moe_ffn(cpu_pool *pool, cpu_moe_scratch *s, float *out, const float *x,
                 const cpu_moe *moe, int64_t n_tok, void *wsp) {
    const int64_t n_embd = moe->n_embd, k = moe->n_used;
    cpu_matmul(pool, s->logits, &moe->router, x, n_tok, wsp); /* (n_tok, n_expert) */
    route(moe, s, n_tok);
    run_experts(pool, s, x, moe, n_tok, wsp);
    /* the weighted sum in rank order, as llama.cpp adds its expert views */
    for (int64_t t = 0; t < n_tok; t++) {
        float *o = out + t * n_embd;
        const float *w = s->w + t * k;
        const float *d0 = s->d + (size_t)s->at[t * k] * (size_t)n_embd;
        for (int64_t i = 0; i < n_embd; i++) o[i] = d0[i] * w[0];
        for (int64_t j = 1; j < k; j++) {
            const float *dj = s->d + (size_t)s->at[t * k + j] * (size_t)n_embd;
            for (int64_t i = 0; i < n_embd; i++) o[i] += dj[i] * w[j];
        }
    }
    if (moe->n_ff_sh > 0) shared_expert(pool, s, out, x, moe, n_tok, wsp);
}
