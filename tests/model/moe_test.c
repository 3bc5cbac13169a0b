/*
 * Expert routing on a constructed qwen3moe model where the chosen experts are known: one
 * layer, n_embd 32, 8 experts of which 2 run, attention weights zero (so a token's hidden state
 * is its embedding, a one-hot row), and a router that gives token t experts t and (t + 3) % 8
 * with clear margins. Checks
 *   - the logits against a direct computation of the block (softmax over the experts, top 2,
 *     weights renormalised to sum 1, SwiGLU experts, weighted sum), in F32;
 *   - decode reads exactly the chosen experts' bytes (cpu_moe_counts), nothing of the others;
 *   - a prefill batch reads each chosen expert once, however many of its tokens chose it;
 *   - hostile metadata and tensors are refused with errors naming the key or tensor.
 */
#include "cpu/moe.h"
#include "gguf/gguf.h"
#include "outboard.h"

#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { E = 32, NV = 8, NX = 8, K = 2, FF = 16 };

static char path[256];

/* What a hostile variant changes. */
typedef struct variant {
    int64_t used;        /* expert_used_count */
    int64_t down_ne1;    /* ffn_down_exps ne[1] (E when sane) */
    bool no_up;          /* leave ffn_up_exps out */
} variant;

static float G[NX][FF][E], U[NX][FF][E], D[NX][E][FF], R[NX][E], O[NV][E];

static float rnd(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1 << 24) - 0.5f;
}

static void fill_weights(void) {
    uint32_t s = 12345;
    for (int e = 0; e < NX; e++)
        for (int i = 0; i < FF; i++)
            for (int j = 0; j < E; j++) {
                G[e][i][j] = rnd(&s);
                U[e][i][j] = rnd(&s);
                D[e][j][i] = rnd(&s);
            }
    for (int v = 0; v < NV; v++)
        for (int j = 0; j < E; j++) O[v][j] = rnd(&s);
    /* token t (its one-hot dimension t) scores expert t highest, then (t + 3) % 8 */
    memset(R, 0, sizeof R);
    for (int t = 0; t < NV; t++) {
        R[t][t] = 0.8f;
        R[(t + 3) % NX][t] = 0.5f;
    }
}

static void u32(gguf_writer *w, const char *key, uint32_t v) {
    char k[96];
    snprintf(k, sizeof k, "qwen3moe.%s", key);
    gguf_writer_set_u32(w, k, v);
}

static void tensor(gguf_writer *w, const char *name, uint32_t n_dims, int64_t a, int64_t b,
                   int64_t c, const float *data) {
    const int64_t ne[3] = {a, b, c};
    ob_err err = {{0}};
    if (gguf_writer_add_tensor(w, name, OB_QTYPE_F32, n_dims, ne, data,
                               (size_t)(a * b * c) * sizeof(float), &err))
        fprintf(stderr, "add %s: %s\n", name, err.msg);
}

/* Writes the model (or a hostile variant) to `path`. */
static void write_model(const variant *v) {
    static float ones[E], zeros[E * E], embd[NV][E];
    for (int i = 0; i < E; i++) ones[i] = 1.0f;
    memset(embd, 0, sizeof embd);
    for (int t = 0; t < NV; t++) embd[t][t] = 1.0f;
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "qwen3moe");
    u32(w, "context_length", 64);
    u32(w, "embedding_length", E);
    u32(w, "block_count", 1);
    u32(w, "feed_forward_length", 64);
    u32(w, "attention.head_count", 1);
    u32(w, "attention.head_count_kv", 1);
    u32(w, "expert_count", NX);
    u32(w, "expert_used_count", (uint32_t)v->used);
    u32(w, "expert_feed_forward_length", FF);
    gguf_writer_set_f32(w, "qwen3moe.attention.layer_norm_rms_epsilon", 1e-6f);
    tensor(w, "token_embd.weight", 2, E, NV, 1, &embd[0][0]);
    tensor(w, "output_norm.weight", 1, E, 1, 1, ones);
    tensor(w, "output.weight", 2, E, NV, 1, &O[0][0]);
    tensor(w, "blk.0.attn_norm.weight", 1, E, 1, 1, ones);
    const char *attn[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
    char name[64];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "blk.0.%s.weight", attn[i]);
        tensor(w, name, 2, E, E, 1, zeros);
    }
    tensor(w, "blk.0.attn_q_norm.weight", 1, E, 1, 1, ones);
    tensor(w, "blk.0.attn_k_norm.weight", 1, E, 1, 1, ones);
    tensor(w, "blk.0.ffn_norm.weight", 1, E, 1, 1, ones);
    tensor(w, "blk.0.ffn_gate_inp.weight", 2, E, NX, 1, &R[0][0]);
    tensor(w, "blk.0.ffn_gate_exps.weight", 3, E, FF, NX, &G[0][0][0]);
    if (!v->no_up) tensor(w, "blk.0.ffn_up_exps.weight", 3, E, FF, NX, &U[0][0][0]);
    tensor(w, "blk.0.ffn_down_exps.weight", 3, FF, v->down_ne1, NX * E / v->down_ne1,
           &D[0][0][0]);
    ob_err err = {{0}};
    if (gguf_writer_write(w, path, &err)) fprintf(stderr, "write: %s\n", err.msg);
    gguf_writer_free(w);
}

static const variant SANE = {.used = K, .down_ne1 = E};

/* The logits of token t at position 0, computed directly. */
static void reference(int t, float *logits) {
    const double s = 1.0 / sqrt(1.0 / E + 1e-6); /* rmsnorm of a one-hot row */
    double p[NX], max = -1e30, sum = 0.0;
    for (int e = 0; e < NX; e++) p[e] = R[e][t] * s;
    for (int e = 0; e < NX; e++) max = p[e] > max ? p[e] : max;
    for (int e = 0; e < NX; e++) sum += (p[e] = exp(p[e] - max));
    const int sel[K] = {t, (t + 3) % NX};
    const double wsum = p[sel[0]] / sum + p[sel[1]] / sum;
    double x[E] = {0};
    x[t] = 1.0;
    for (int j = 0; j < K; j++) {
        const int e = sel[j];
        const double w = p[e] / sum / wsum;
        double h[FF];
        for (int i = 0; i < FF; i++) {
            const double g = G[e][i][t] * s, u = U[e][i][t] * s;
            h[i] = g / (1.0 + exp(-g)) * u;
        }
        for (int o = 0; o < E; o++) {
            double d = 0.0;
            for (int i = 0; i < FF; i++) d += D[e][o][i] * h[i];
            x[o] += w * d;
        }
    }
    double ms = 0.0;
    for (int o = 0; o < E; o++) ms += x[o] * x[o];
    const double norm = 1.0 / sqrt(ms / E + 1e-6);
    for (int v = 0; v < NV; v++) {
        double l = 0.0;
        for (int o = 0; o < E; o++) l += O[v][o] * x[o] * norm;
        logits[v] = (float)l;
    }
}

static ob_context *context(ob_model *m) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = 64;
    p.n_threads = 2;
    ob_context *c = NULL;
    ob_err err = {{0}};
    if (ob_context_new(m, &p, &c, &err)) fprintf(stderr, "context: %s\n", err.msg);
    return c;
}

/* Bytes of one expert's three matrices (F32). */
static const uint64_t EXPERT_BYTES = 3 * FF * E * sizeof(float);

TEST(decode_reads_only_the_chosen_experts) {
    write_model(&SANE);
    ob_model *m = NULL;
    ob_err err = {{0}};
    CHECK_STATUS(ob_model_load(path, NULL, &m, &err), OB_OK, &err, "");
    if (!m) return;
    for (int t = 0; t < NV; t++) {
        ob_context *c = context(m);
        CHECK(c != NULL);
        if (!c) break;
        cpu_moe_counts_reset();
        const int32_t tok = t;
        CHECK_STATUS(ob_eval(c, &tok, 1, false, &err), OB_OK, &err, "");
        cpu_moe_counts n;
        cpu_moe_counts_get(&n);
        for (int e = 0; e < NX; e++)
            CHECK_MSG(n.reads[e] == (uint64_t)(e == t || e == (t + 3) % NX),
                      "token %d: expert %d read %llu times", t, e,
                      (unsigned long long)n.reads[e]);
        CHECK_EQ_INT((int64_t)n.bytes, (int64_t)(K * EXPERT_BYTES));
        float ref[NV];
        reference(t, ref);
        const float *got = ob_logits(c, -1);
        for (int v = 0; got && v < NV; v++)
            CHECK_MSG(fabsf(got[v] - ref[v]) <= 1e-4f * (1.0f + fabsf(ref[v])),
                      "token %d logit %d: %g, expected %g", t, v, got[v], ref[v]);
        ob_context_free(c);
    }
    ob_model_free(m);
}

TEST(prefill_reads_each_chosen_expert_once) {
    write_model(&SANE);
    ob_model *m = NULL;
    ob_err err = {{0}};
    CHECK_STATUS(ob_model_load(path, NULL, &m, &err), OB_OK, &err, "");
    ob_context *c = m ? context(m) : NULL;
    if (!c) {
        ob_model_free(m);
        return;
    }
    /* experts {0,3} {1,4} {2,5} {3,6} {0,3}: 3 chosen by three tokens, 7 by none */
    const int32_t toks[5] = {0, 1, 2, 3, 0};
    cpu_moe_counts_reset();
    CHECK_STATUS(ob_eval(c, toks, 5, true, &err), OB_OK, &err, "");
    cpu_moe_counts n;
    cpu_moe_counts_get(&n);
    for (int e = 0; e < NX; e++) CHECK_EQ_INT((int64_t)n.reads[e], e == 7 ? 0 : 1);
    CHECK_EQ_INT((int64_t)n.bytes, (int64_t)(7 * EXPERT_BYTES));
    ob_context_free(c);
    ob_model_free(m);
}

static void expect_refused(const variant *v, const char *needle) {
    write_model(v);
    ob_model *m = NULL;
    ob_err err = {{0}};
    CHECK_STATUS(ob_model_load(path, NULL, &m, &err), OB_ERR_FORMAT, &err, needle);
    ob_model_free(m);
}

TEST(hostile_expert_metadata_and_tensors_are_refused) {
    expect_refused(&(variant){.used = 9, .down_ne1 = E}, "expert_used_count 9");
    expect_refused(&(variant){.used = 0, .down_ne1 = E}, "expected 1 <= expert_used_count");
    expect_refused(&(variant){.used = K, .down_ne1 = E / 2},
                   "tensor 'blk.0.ffn_down_exps.weight': shape [16, 16, 16, 1], expected [16, "
                   "32, 8]");
    expect_refused(&(variant){.used = K, .down_ne1 = E, .no_up = true},
                   "tensor 'blk.0.ffn_up_exps.weight' not found");
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/ob_moe_test_%d.gguf", (int)getpid());
    fill_weights();
    RUN(decode_reads_only_the_chosen_experts);
    RUN(prefill_reads_each_chosen_expert_once);
    RUN(hostile_expert_metadata_and_tensors_are_refused);
    unlink(path);
    return t_summary();
}
