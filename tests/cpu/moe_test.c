/*
 * cpu_moe_ffn against a direct double-precision computation of the block (softmax over the
 * experts, top k best first, renormalised or not, scaled, SwiGLU experts, weighted sum, shared
 * expert times the sigmoid of its gate), on F32 weights with random values: 6 experts, 3 used,
 * with and without a shared expert, one token and a batch. Also: a batch equals each of its
 * tokens alone (grouping by expert changes which rows share a product, not a row's result),
 * in F32 and Q8_0 (views into one buffer of all experts, as the loader makes them); and
 * cpu_matmul_many, which runs the chosen experts' products together, against cpu_matmul; and a
 * block whose offload hook takes some experts' products gives what the CPU alone gives.
 */
#include "core/alloc.h"
#include "cpu/moe.h"
#include "test.h"

#include <math.h>
#include <string.h>

enum { NE = 64, NX = 6, KU = 3, FF = 32, FS = 48, NT = 20 };

static uint64_t rng_state = 7;
static float frand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

/* All weights in F32, the layout of the file's 3-D tensors: expert e's matrix at e * rows. */
static float Wr[NX * NE], Wg[NX * FF * NE], Wu[NX * FF * NE], Wd[NX * NE * FF];
static float Sg[FS * NE], Su[FS * NE], Sd[NE * FS], Sw[NE];

static void fill(void) {
    float *all[] = {Wr, Wg, Wu, Wd, Sg, Su, Sd, Sw};
    size_t n[] = {NX * NE, NX * FF * NE, NX * FF * NE, NX * NE * FF, FS * NE, FS * NE, NE * FS,
                  NE};
    for (size_t i = 0; i < 8; i++)
        for (size_t j = 0; j < n[i]; j++) all[i][j] = frand() * (i == 0 ? 0.5f : 0.25f);
}

static void weight(cpu_weight *w, uint32_t type, const void *data, int64_t n_in,
                   int64_t n_out, size_t row) {
    *w = (cpu_weight){.name = "w", .data = data, .type = type, .n_in = n_in, .n_out = n_out,
                      .row_size = row};
    ob_err err = {{0}};
    if (cpu_weight_init(w, &err)) fprintf(stderr, "%s\n", err.msg);
}

/* A block over the arrays above in `type` (quantized copies owned by *bufs). */
typedef struct block {
    cpu_moe moe;
    cpu_weight views[3 * NX];
    void *bufs[8];
} block;

static const void *as_type(block *b, int i, uint32_t type, const float *src, int64_t rows,
                           int64_t n_in, size_t *row) {
    const quant_traits *qt = quant_traits_ref(type);
    *row = (size_t)(n_in / qt->block_size) * qt->type_size;
    if (type == OB_QTYPE_F32) return src;
    char *q = ob_alloc((size_t)rows, *row);
    for (int64_t r = 0; r < rows; r++) qt->from_f32(src + r * n_in, q + (size_t)r * *row, n_in);
    b->bufs[i] = q;
    return q;
}

static void block_init(block *b, uint32_t type, bool shared, bool norm, float scale) {
    memset(b, 0, sizeof *b);
    size_t rg, ru, rd;
    const char *g = as_type(b, 0, type, Wg, NX * FF, NE, &rg);
    const char *u = as_type(b, 1, type, Wu, NX * FF, NE, &ru);
    const char *d = as_type(b, 2, type, Wd, NX * NE, FF, &rd);
    b->moe = (cpu_moe){.n_expert = NX, .n_used = KU, .n_embd = NE, .n_ff = FF, .norm = norm,
                       .scale = scale, .gate = b->views, .up = b->views + NX,
                       .down = b->views + 2 * NX, .n_ff_sh = shared ? FS : 0};
    weight(&b->moe.router, OB_QTYPE_F32, Wr, NE, NX, NE * sizeof(float));
    for (int e = 0; e < NX; e++) {
        weight(&b->views[e], type, g + (size_t)e * FF * rg, NE, FF, rg);
        weight(&b->views[NX + e], type, u + (size_t)e * FF * ru, NE, FF, ru);
        weight(&b->views[2 * NX + e], type, d + (size_t)e * NE * rd, FF, NE, rd);
    }
    if (!shared) return;
    weight(&b->moe.sh_gate_w, OB_QTYPE_F32, Sw, NE, 1, NE * sizeof(float));
    weight(&b->moe.sh_gate, OB_QTYPE_F32, Sg, NE, FS, NE * sizeof(float));
    weight(&b->moe.sh_up, OB_QTYPE_F32, Su, NE, FS, NE * sizeof(float));
    weight(&b->moe.sh_down, OB_QTYPE_F32, Sd, FS, NE, FS * sizeof(float));
}

static void block_free(block *b) {
    for (int i = 0; i < 3 * NX; i++) cpu_weight_release(b->views[i].data);
    for (int i = 0; i < 8; i++) ob_free(b->bufs[i]);
}

/* y (NE) = SwiGLU FFN (gate g, up u: (ff, NE); down d: (NE, ff)) of x, in double. */
static void ffn_ref(const float *g, const float *u, const float *d, int ff, const float *x,
                    double *y) {
    double h[FS];
    for (int i = 0; i < ff; i++) {
        double a = 0, b = 0;
        for (int j = 0; j < NE; j++) {
            a += (double)g[i * NE + j] * x[j];
            b += (double)u[i * NE + j] * x[j];
        }
        h[i] = a / (1 + exp(-a)) * b;
    }
    for (int o = 0; o < NE; o++) {
        y[o] = 0;
        for (int i = 0; i < ff; i++) y[o] += (double)d[o * ff + i] * h[i];
    }
}

static void moe_ref(const float *x, bool shared, bool norm, float scale, double *out) {
    double p[NX], mx = -1e300, sum = 0;
    for (int e = 0; e < NX; e++) {
        p[e] = 0;
        for (int j = 0; j < NE; j++) p[e] += (double)Wr[e * NE + j] * x[j];
        mx = p[e] > mx ? p[e] : mx;
    }
    for (int e = 0; e < NX; e++) sum += (p[e] = exp(p[e] - mx));
    int sel[KU];
    double w[KU], wsum = 0;
    for (int k = 0; k < KU; k++) {
        int best = -1;
        for (int e = 0; e < NX; e++) {
            bool taken = false;
            for (int i = 0; i < k; i++) taken |= sel[i] == e;
            if (!taken && (best < 0 || p[e] > p[best])) best = e;
        }
        sel[k] = best;
        wsum += (w[k] = p[best] / sum);
    }
    memset(out, 0, NE * sizeof *out);
    for (int k = 0; k < KU; k++) {
        double y[NE];
        const int e = sel[k];
        ffn_ref(Wg + e * FF * NE, Wu + e * FF * NE, Wd + e * NE * FF, FF, x, y);
        const double wk = (norm ? w[k] / wsum : w[k]) * (scale != 0 ? scale : 1);
        for (int o = 0; o < NE; o++) out[o] += wk * y[o];
    }
    if (!shared) return;
    double y[NE], gl = 0;
    ffn_ref(Sg, Su, Sd, FS, x, y);
    for (int j = 0; j < NE; j++) gl += (double)Sw[j] * x[j];
    for (int o = 0; o < NE; o++) out[o] += y[o] / (1 + exp(-gl));
}

static float X[NT * NE];

static void run(const block *b, cpu_pool *pool, float *out, const float *x, int64_t n) {
    cpu_moe_scratch *s = cpu_moe_scratch_new(NT, NE, NX, KU, FF, FS);
    void *wsp = ob_alloc_aligned(64, cpu_moe_wsize(&b->moe, NT) + 64);
    cpu_moe_ffn(pool, s, out, x, &b->moe, n, wsp);
    ob_free_aligned(wsp);
    cpu_moe_scratch_free(s);
}

static void check_against_reference(bool shared, bool norm, float scale) {
    cpu_pool *pool = NULL;
    cpu_pool_new(2, &pool, NULL);
    block b;
    block_init(&b, OB_QTYPE_F32, shared, norm, scale);
    float out[NT * NE];
    run(&b, pool, out, X, NT);
    double worst = 0;
    for (int t = 0; t < NT; t++) {
        double ref[NE];
        moe_ref(X + t * NE, shared, norm, scale, ref);
        for (int o = 0; o < NE; o++) {
            double d = fabs(out[t * NE + o] - ref[o]) / (1 + fabs(ref[o]));
            worst = d > worst ? d : worst;
        }
    }
    CHECK_MSG(worst < 1e-5, "shared %d norm %d scale %g: worst relative error %g", shared, norm,
              scale, worst);
    block_free(&b);
    cpu_pool_free(pool);
}

TEST(block_matches_reference) {
    check_against_reference(false, true, 0.0f);  /* qwen3moe */
    check_against_reference(true, true, 0.0f);   /* qwen35moe, qwen3next */
    check_against_reference(false, false, 2.5f); /* raw softmax weights, scaled */
}

static void check_batch_equals_single(uint32_t type) {
    cpu_pool *pool = NULL;
    cpu_pool_new(2, &pool, NULL);
    block b;
    block_init(&b, type, true, true, 0.0f);
    float batch[NT * NE], one[NE];
    run(&b, pool, batch, X, NT);
    double worst = 0;
    for (int t = 0; t < NT; t++) {
        run(&b, pool, one, X + t * NE, 1);
        for (int o = 0; o < NE; o++) {
            double d = fabs(batch[t * NE + o] - one[o]) / (1 + fabs(one[o]));
            worst = d > worst ? d : worst;
        }
    }
    CHECK_MSG(worst < 1e-5, "%s: batch vs one token at a time: %g", gguf_qtype_name(type),
              worst);
    block_free(&b);
    cpu_pool_free(pool);
}

TEST(batch_equals_one_token_at_a_time) {
    check_batch_equals_single(OB_QTYPE_F32);
    check_batch_equals_single(OB_QTYPE_Q8_0);
}

TEST(counts_each_chosen_expert_once_per_batch) {
    cpu_pool *pool = NULL;
    cpu_pool_new(1, &pool, NULL);
    block b;
    block_init(&b, OB_QTYPE_F32, false, true, 0.0f);
    float out[NT * NE];
    cpu_moe_counts_reset();
    run(&b, pool, out, X, NT);
    cpu_moe_counts c;
    cpu_moe_counts_get(&c);
    uint64_t experts = 0;
    for (int e = 0; e < NX; e++) {
        CHECK(c.reads[e] <= 1);
        experts += c.reads[e];
    }
    CHECK(experts >= KU);
    CHECK_EQ_INT((int64_t)c.bytes, (int64_t)(experts * 3 * FF * NE * sizeof(float)));
    block_free(&b);
    cpu_pool_free(pool);
}

/* The offload hook of the test: takes the products of the even experts, running them as a
 * device would (here with a pool and scratch of its own), and records what it was offered. */
typedef struct offload_log {
    cpu_pool *pool;
    void *wsp;
    int offered[NX][3], taken[NX][3];
    int64_t rows[NX][3];
} offload_log;

static bool take_even(void *user, const cpu_moe *moe, cpu_moe_part part, int64_t e, float *y,
                      const float *x, int64_t n) {
    offload_log *log = user;
    log->offered[e][part]++;
    log->rows[e][part] = n;
    if (e % 2) return false;
    const cpu_weight *ws[3] = {&moe->gate[e], &moe->up[e], &moe->down[e]};
    cpu_matmul(log->pool, y, ws[part], x, n, log->wsp);
    log->taken[e][part]++;
    return true;
}

TEST(offloaded_experts_give_the_cpus_result) {
    cpu_pool *pool = NULL;
    cpu_pool_new(2, &pool, NULL);
    block b;
    block_init(&b, OB_QTYPE_Q8_0, true, true, 0.0f);
    float cpu[NT * NE], off[NT * NE];
    run(&b, pool, cpu, X, NT);
    offload_log log;
    memset(&log, 0, sizeof log);
    cpu_pool_new(1, &log.pool, NULL);
    log.wsp = ob_alloc_aligned(64, cpu_moe_wsize(&b.moe, NT) + 64);
    b.moe.offload = take_even;
    b.moe.offload_user = &log;
    run(&b, pool, off, X, NT);
    double worst = 0;
    for (int i = 0; i < NT * NE; i++) {
        double d = fabs(off[i] - cpu[i]) / (1 + fabs(cpu[i]));
        worst = d > worst ? d : worst;
    }
    CHECK_MSG(worst < 1e-6, "offloaded vs the CPU alone: %g", worst);
    int taken = 0;
    for (int e = 0; e < NX; e++) {
        /* a declined expert is offered its gate only; a taken one all three, same rows */
        const int want[3] = {log.offered[e][0], e % 2 ? 0 : log.offered[e][0],
                             e % 2 ? 0 : log.offered[e][0]};
        CHECK(log.offered[e][0] <= 1);
        for (int p = 0; p < 3; p++) {
            CHECK_EQ_INT(log.offered[e][p], want[p]);
            CHECK_EQ_INT(log.taken[e][p], e % 2 ? 0 : want[p]);
            if (want[p]) CHECK_EQ_INT(log.rows[e][p], log.rows[e][0]);
        }
        taken += log.taken[e][0];
    }
    CHECK(taken > 0);
    ob_free_aligned(log.wsp);
    cpu_pool_free(log.pool);
    block_free(&b);
    cpu_pool_free(pool);
}

/* Rows of job j's weight: with `ragged`, from 8 to 152 in steps of 24, so some are not a
 * multiple of a repacked group and decode's claims over the jobs laid end to end cross job
 * boundaries in the middle of a group's worth of rows; else 48. */
static int64_t job_rows(int j, bool ragged) { return ragged ? 8 + 24 * (j % 7) : 48; }

/* cpu_matmul_many gives each job exactly what cpu_matmul gives it, in types with plain,
 * packed (one token) and repacked kernels, for 40 jobs (more than one pass of the pool):
 * prompts of 1..5 tokens, or (`decode`) one token each over jobs of ragged sizes. */
static void check_many(uint32_t type, bool decode) {
    enum { KI = 256, MO = 152, NJ = 40 };
    const quant_traits *qt = quant_traits_ref(type);
    const size_t row = (size_t)(KI / qt->block_size) * qt->type_size;
    char *wq = ob_alloc(NJ * MO, row);
    float *wf = ob_alloc(KI, sizeof(float)), *x = ob_alloc(NJ * 5 * KI, sizeof(float));
    float *y1 = ob_alloc(NJ * 5 * MO, sizeof(float)), *y2 = ob_alloc(NJ * 5 * MO, sizeof(float));
    cpu_weight *w = ob_alloc(NJ, sizeof *w);
    cpu_matmul_job *jobs = ob_alloc(NJ, sizeof *jobs);
    cpu_pool *pool = NULL;
    cpu_pool_new(2, &pool, NULL);
    for (int r = 0; r < NJ * MO; r++) {
        for (int i = 0; i < KI; i++) wf[i] = frand();
        if (type == OB_QTYPE_F32) memcpy(wq + (size_t)r * row, wf, row);
        else qt->from_f32(wf, wq + (size_t)r * row, KI);
    }
    for (int i = 0; i < NJ * 5 * KI; i++) x[i] = frand();
    size_t ws = 0;
    for (int j = 0; j < NJ; j++) {
        weight(&w[j], type, wq + (size_t)j * MO * row, KI, job_rows(j, decode), row);
        const int64_t n = j % 5 + (j % 3 == 0 ? 0 : 1) - (j % 5 == 4 ? 4 : 0); /* 1..5 */
        jobs[j] = (cpu_matmul_job){y2 + j * 5 * MO, &w[j], x + j * 5 * KI,
                                   decode || n < 1 ? 1 : n};
        ws = cpu_matmul_wsize(&w[j], 5) > ws ? cpu_matmul_wsize(&w[j], 5) : ws;
    }
    void *wsp = ob_alloc_aligned(64, cpu_matmul_many_wsize(jobs, NJ) + ws + 64);
    memset(y1, 0, NJ * 5 * MO * sizeof(float));
    memset(y2, 0, NJ * 5 * MO * sizeof(float));
    for (int j = 0; j < NJ; j++)
        cpu_matmul(pool, y1 + j * 5 * MO, &w[j], jobs[j].x, jobs[j].n_tok, wsp);
    cpu_matmul_many(pool, jobs, NJ, wsp);
    CHECK_MSG(!memcmp(y1, y2, NJ * 5 * MO * sizeof(float)), "%s%s: cpu_matmul_many differs",
              gguf_qtype_name(type), decode ? " (decode)" : "");
    for (int j = 0; j < NJ; j++) cpu_weight_release(w[j].data);
    ob_free_aligned(wsp);
    cpu_pool_free(pool);
    ob_free(wq);
    ob_free(wf);
    ob_free(x);
    ob_free(y1);
    ob_free(y2);
    ob_free(w);
    ob_free(jobs);
}

TEST(matmul_many_equals_one_product_at_a_time) {
    const uint32_t types[] = {OB_QTYPE_F32, OB_QTYPE_F16, OB_QTYPE_Q8_0, OB_QTYPE_Q4_0,
                              OB_QTYPE_Q4_K, OB_QTYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check_many(types[i], false);
        check_many(types[i], true);
    }
}

int main(void) {
    fill();
    for (int i = 0; i < NT * NE; i++) X[i] = frand() * 2;
    RUN(block_matches_reference);
    RUN(batch_equals_one_token_at_a_time);
    RUN(counts_each_chosen_expert_once_per_batch);
    RUN(matmul_many_equals_one_product_at_a_time);
    RUN(offloaded_experts_give_the_cpus_result);
    return t_summary();
}
