/*
 * The speed prediction (src/model/plan_predict.c) against a hand calculation: a tiny
 * synthetic llama in Q8_0 (outboard synth: 2 layers, 256 wide, 4 heads of 64, 2 KV heads, a
 * feed-forward of 768, the built-in 259-token vocabulary, an untied output), split one layer
 * on the host and one on a device, under a calibration whose figures are chosen by hand. The
 * bytes and multiply-adds below are worked out from the shapes, not taken from the code:
 *
 *   Q8_0 rows: 256 inputs = 8 blocks of 34 bytes = 272 bytes; 768 inputs = 816 bytes.
 *   one layer: q 256x272 + k 128x272 + v 128x272 + o 256x272 + gate 768x272 + up 768x272
 *              + down 256x816 = 835,584 bytes; 786,432 multiply-adds per row
 *   the head:  259 rows x 272 = 70,448 bytes; 66,304 multiply-adds per row, in a prompt
 *              chunk only for its last row (the only one whose logits a prompt wants)
 *   the token embedding is looked up, not multiplied: no bytes, no multiply-adds
 *   attention of a 64-row chunk from an empty cache: 64*65/2 positions x 256 wide x 2 =
 *              1,064,960 multiply-adds per layer
 *   the link: one hidden row 256 x 4 = 1,024 bytes over, one logits row 259 x 4 = 1,036 back
 *
 * Also: the fit solves the three costs back from passes made with them, and a corrupt
 * calibration file leaves the prediction on its defaults, saying so.
 */
#include "model/calib.h"
#include "model/context.h"
#include "model/model.h"
#include "vulkan/vulkan_backend.h"

#include "core/alloc.h"
#include "gguf/qtype.h"

#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[256];

static ob_model *g_model;

/* `outboard synth --shape tiny --type q8_0 ARGS` into the test's folder as NAME, loaded
 * (the caller frees it); NULL on failure. */
static ob_model *synth(const char *name, const char *args) {
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ob_predict_test_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    const char *build = getenv("OB_BUILD");
    char path[512], cmd[1200];
    snprintf(path, sizeof path, "%s/%s.gguf", tmp_dir, name);
    snprintf(cmd, sizeof cmd, "%s/outboard synth --shape tiny --type q8_0 %s -o %s "
             ">/dev/null 2>&1", build ? build : "build", args, path);
    ob_model *m = NULL;
    if (system(cmd) != 0 || ob_model_load(path, NULL, &m, NULL)) return NULL;
    return m;
}

static ob_model *load_tiny(void) {
    if (!g_model) g_model = synth("tiny-q8_0", "");
    return g_model;
}

/* Host 4 threads, a batch of n_batch, streaming as `stream` says; a plan of n_layer layers,
 * n_gpu of them on a device whose calibration is "test device". */
static void plan_init(ob_context_params *p, int64_t n_batch, int64_t stream, ob_plan *plan,
                      int64_t n_layer, int64_t n_gpu) {
    ob_context_params_init(p);
    p->n_threads = 4;
    p->n_batch = n_batch;
    p->stream_min_tok = stream;
    memset(plan, 0, sizeof *plan);
    plan->n_layer = n_layer;
    plan->n_gpu_layers = n_gpu;
    snprintf(plan->device_key, sizeof plan->device_key, "test device");
}

static bool close_to(double got, double want) { return fabs(got - want) <= 1e-9 * fabs(want); }

#define LAYER_BYTES 835584.0
#define HEAD_BYTES 70448.0
#define LAYER_MACS 786432.0
#define HEAD_MACS 66304.0
#define ATTN_MACS_64 1064960.0

TEST(work_by_hand) {
    ob_model *m = load_tiny();
    CHECK(m != NULL);
    plan_work w;
    plan_work_of(m, 0, 1, 64, MODEL_PART_ALL, &w); /* the host's half: the embedding and layer 0 */
    CHECK_MSG(w.decode_bytes == LAYER_BYTES, "%.0f", w.decode_bytes);
    CHECK_MSG(w.prefill_macs == LAYER_MACS * 64 + ATTN_MACS_64, "%.0f", w.prefill_macs);
    CHECK(w.qtype == OB_QTYPE_Q8_0);
    plan_work_of(m, 1, 2, 64, MODEL_PART_ALL, &w); /* the device's half: layer 1 and the head */
    CHECK_MSG(w.decode_bytes == LAYER_BYTES + HEAD_BYTES, "%.0f", w.decode_bytes);
    /* the head multiplies only the chunk's last row, the one whose logits a prompt wants */
    CHECK_MSG(w.prefill_macs == LAYER_MACS * 64 + HEAD_MACS + ATTN_MACS_64, "%.0f",
              w.prefill_macs);
    plan_work_of(m, 1, 1, 64, MODEL_PART_ALL, &w); /* no layers, no work */
    CHECK(w.decode_bytes == 0 && w.prefill_macs == 0);
}

/* A mixture-of-experts model reads n_used of n_expert experts per token: a tiny synthetic
 * qwen3moe in Q8_0 (2 layers, 256 wide, 4 heads of 128, 2 KV heads, 8 experts of 512 of
 * which 2 run per token, an F32 router), one layer by hand:
 *   q 512x272 + k 256x272 + v 256x272 + o 256x(512 inputs: 544) = 417,792 bytes;
 *   router 8 rows x 256 x 4 = 8,192 bytes; experts gate, up 8 x 512 x 272 and down
 *   8 x 256 x 544, 1,114,112 bytes each, a quarter of which a token reads: 835,584;
 *   multiply-adds per token 131,072 + 65,536 + 65,536 + 131,072 + 2,048 + 2 x 3 x 131,072;
 *   attention of a 64-row chunk: 64*65/2 positions x 512 wide x 2 = 2,129,920. */
TEST(moe_work_counts_the_chosen_experts) {
    ob_model *m = synth("moe-q8_0", "--arch qwen3moe");
    CHECK(m != NULL);
    if (!m) return;
    const double bytes = 417792.0 + 8192.0 + 835584.0;
    const double macs = 131072.0 + 65536 + 65536 + 131072 + 2048 + 2 * 3 * 131072;
    plan_work w;
    plan_work_of(m, 0, 1, 64, MODEL_PART_ALL, &w);
    CHECK_MSG(w.decode_bytes == bytes, "%.0f", w.decode_bytes);
    CHECK_MSG(w.prefill_macs == macs * 64 + 2129920.0, "%.0f", w.prefill_macs);
    ob_model_free(m);
}

/* Host 4 threads; device "test device"; link emulated at 3 GB/s. */
static void hand_calib(calib *c) {
    memset(c, 0, sizeof *c);
    char key[CALIB_KEY_SIZE];
    calib_host_key(key, sizeof key);
    calib_type *t = calib_type_add(calib_backend_add(c, key, 4), OB_QTYPE_Q8_0);
    t->decode = (calib_cost){1e-4, 2e-4, 1e9};
    t->prefill = (calib_cost){1e-3, 2e-3, 1e10};
    t = calib_type_add(calib_backend_add(c, "test device", 0), OB_QTYPE_Q8_0);
    t->decode = (calib_cost){5e-4, 1e-3, 1e10};
    t->prefill = (calib_cost){3e-3, 4e-3, 1e11};
    calib_link *l = calib_link_add(c, "test device", 3, 0);
    l->h2d_gbs = 2;
    l->h2d_latency_us = 10;
    l->d2h_gbs = 1;
    l->d2h_latency_us = 20;
}

TEST(split_prediction_by_hand) {
    ob_model *m = load_tiny();
    CHECK(m != NULL);
    calib c;
    hand_calib(&c);
    ob_context_params p;
    ob_plan plan;
    plan_init(&p, 64, OB_STREAM_AUTO, &plan, 2, 1);
    p.link_gbps = 3;
    plan.host = (ob_plan_part){.device = "cpu", .layer_lo = 0, .layer_hi = 1};
    plan.device = (ob_plan_part){.device = "vulkan", .layer_lo = 1, .layer_hi = 2};
    plan.link_token = 1024 + 1036;
    plan.link_chunk = 64 * 1024 + 1036;
    ob_plan_speed s;
    plan_predict(m, &p, &plan, &c, &s);
    CHECK_MSG(s.calibrated, "%s", s.basis);
    /* decode: pass + layers * per-layer + bytes / rate, per stage */
    const double host_dec = 1e-4 + 2e-4 + LAYER_BYTES / 1e9;
    const double dev_dec = 5e-4 + 1e-3 + (LAYER_BYTES + HEAD_BYTES) / 1e10;
    const double link_dec = 1024 / 2e9 + 10e-6 + 1036 / 1e9 + 20e-6;
    CHECK_MSG(close_to(s.decode_s[0], host_dec), "%.9g vs %.9g", s.decode_s[0], host_dec);
    CHECK_MSG(close_to(s.decode_s[1], dev_dec), "%.9g vs %.9g", s.decode_s[1], dev_dec);
    CHECK_MSG(close_to(s.decode_s[2], link_dec), "%.9g vs %.9g", s.decode_s[2], link_dec);
    CHECK(close_to(s.decode_tps, 1 / (host_dec + dev_dec + link_dec)));
    /* prefill of a 64-row chunk: multiply-adds / rate */
    const double host_pre = 1e-3 + 2e-3 + (LAYER_MACS * 64 + ATTN_MACS_64) / 1e10;
    const double dev_pre = 3e-3 + 4e-3 + (LAYER_MACS * 64 + HEAD_MACS + ATTN_MACS_64) / 1e11;
    const double link_pre = 65536 / 2e9 + 10e-6 + 1036 / 1e9 + 20e-6;
    CHECK(close_to(s.prefill_s[0], host_pre));
    CHECK(close_to(s.prefill_s[1], dev_pre));
    CHECK(close_to(s.prefill_s[2], link_pre));
    CHECK(close_to(s.prefill_tps, 64 / (host_pre + dev_pre + link_pre)));
}

/* Weight streaming of the host's layer 0 to the device under hand_calib. Layer 0's seven
 * products: 835,584 bytes of weights; inputs per row 6 x 256 + 768 = 2,304 floats, outputs
 * 256 + 128 + 128 + 256 + 768 + 768 + 256 = 2,560; 786,432 multiply-adds per row. A pass of
 * n rows (attention A(n) = n(n+1)/2 x 256 x 2 stays on the CPU either way):
 *   CPU alone: 1e-3 + 2e-3 + (786,432 n + A(n)) / 1e10
 *   streamed:  1e-3 + 2e-3 + A(n) / 1e10                       the CPU's rest
 *              + 4e-3 + 786,432 n / 1e11                       the device: its cost per layer
 *              + (835,584 + 4n x 2,304) / 2e9 + 4n x 2,560 / 1e9 + 7 x (10 + 20) us
 * Their difference, 0.004627792 - 5.593088e-5 n s, turns negative from n = 83 (82.7), so a
 * chunk of 512 streams from 83 rows and a chunk of 64 never. The buffer is the largest of
 * the seven weights, gate, up and down alike: 768 x 272 = 256 x 816 = 208,896 bytes. */
TEST(streaming_threshold_by_hand) {
    if (!vulkan_type_supported(OB_QTYPE_Q8_0)) SKIP("built without Vulkan: nothing streams");
    ob_model *m = load_tiny();
    CHECK(m != NULL);
    calib c;
    hand_calib(&c);
    char path[400];
    snprintf(path, sizeof path, "%s/calibration-stream", tmp_dir);
    CHECK(calib_save(path, &c, NULL) == OB_OK);
    setenv("OUTBOARD_CALIBRATION", path, 1);
    ob_context_params p;
    ob_plan plan;
    plan_init(&p, 512, OB_STREAM_AUTO, &plan, 2, 1);
    p.link_gbps = 3;
    plan.host = (ob_plan_part){.device = "cpu", .layer_lo = 0, .layer_hi = 1};
    plan.device = (ob_plan_part){.device = "vulkan", .layer_lo = 1, .layer_hi = 2};
    const uint64_t hidden_512 = 512 * 1024 + 1036;
    plan.link_chunk = hidden_512;
    model_plan_stream(m, &p, true, false, &plan);
    CHECK_MSG(plan.stream_min_tok == 83, "%lld: %s", (long long)plan.stream_min_tok,
              plan.stream_why);
    CHECK_EQ_INT(plan.device.stream, 208896);
    CHECK_EQ_INT(plan.stream_chunk, (uint64_t)LAYER_BYTES);
    CHECK_EQ_INT(plan.link_chunk, hidden_512 + (uint64_t)LAYER_BYTES + 512 * 4 * (2304 + 2560));
    /* the prediction of that chunk: the CPU keeps the rest, the device and link take the
     * products on top of the device's own layer and the hidden state */
    ob_plan_speed s;
    plan_predict(m, &p, &plan, &c, &s);
    CHECK_MSG(s.calibrated, "%s", s.basis);
    const double attn = 512.0 * 513 / 2 * 256 * 2;
    const double rest = 1e-3 + 2e-3 + attn / 1e10;
    const double dev = 3e-3 + 4e-3 + (LAYER_MACS * 512 + HEAD_MACS + attn) / 1e11 + 4e-3 +
                       LAYER_MACS * 512 / 1e11;
    const double link = 512 * 1024 / 2e9 + 10e-6 + 1036 / 1e9 + 20e-6 +
                        (LAYER_BYTES + 2048.0 * 2304) / 2e9 + 2048.0 * 2560 / 1e9 + 7 * 30e-6;
    CHECK_MSG(close_to(s.prefill_s[0], rest), "%.9g vs %.9g", s.prefill_s[0], rest);
    CHECK_MSG(close_to(s.prefill_s[1], dev), "%.9g vs %.9g", s.prefill_s[1], dev);
    CHECK_MSG(close_to(s.prefill_s[2], link), "%.9g vs %.9g", s.prefill_s[2], link);
    /* chunks of 64 never pay: nothing streams, nothing is added */
    plan.link_chunk = 64 * 1024 + 1036;
    p.n_batch = 64;
    model_plan_stream(m, &p, true, false, &plan);
    CHECK(plan.stream_min_tok == 0 && plan.stream_chunk == 0 && plan.device.stream == 0);
    CHECK_EQ_INT(plan.link_chunk, 64 * 1024 + 1036);
    CHECK_MSG(strstr(plan.stream_why, "never: the CPU is faster even at 64 rows"), "%s",
              plan.stream_why);
    /* a CPU implementation as the device: only with its own calibration */
    p.n_batch = 512;
    snprintf(plan.device_key, sizeof plan.device_key, "another device");
    model_plan_stream(m, &p, true, true, &plan);
    CHECK(plan.stream_min_tok == 0 && strstr(plan.stream_why, "CPU implementation"));
    /* asked for: that size, whatever the costs, on either GPU backend */
    p.stream_min_tok = 16;
    model_plan_stream(m, &p, true, true, &plan);
    CHECK_EQ_INT(plan.stream_min_tok, 16);
    snprintf(plan.device.device, sizeof plan.device.device, "cuda");
    model_plan_stream(m, &p, true, false, &plan);
    CHECK(plan.stream_min_tok == 16 && strstr(plan.stream_why, "as asked"));
    /* no host layers: nothing to stream */
    plan.host.layer_hi = 0;
    model_plan_stream(m, &p, true, false, &plan);
    CHECK(plan.stream_min_tok == 0 && strstr(plan.stream_why, "every layer"));
    unsetenv("OUTBOARD_CALIBRATION");
    unlink(path);
}

TEST(routed_rows_by_hand) {
    double q, r;
    /* Binomial(4, 1/2): 1, 4, 6, 4, 1 sixteenths for 0..4 rows */
    plan_routed_rows(4, 0.5, 2, &q, &r);
    CHECK_MSG(close_to(q, 11.0 / 16) && close_to(r, 28.0 / 16), "%.12g %.12g", q, r);
    plan_routed_rows(4, 0.5, 5, &q, &r);
    CHECK(q == 0 && r == 0);
    plan_routed_rows(10, 0.3, 0, &q, &r); /* from 0: every term, the mean */
    CHECK_MSG(close_to(q, 1) && close_to(r, 3), "%.12g %.12g", q, r);
    plan_routed_rows(8, 1.0, 4, &q, &r); /* every row to every expert */
    CHECK(q == 1 && r == 8);
    plan_routed_rows(3, 1.0, 4, &q, &r);
    CHECK(q == 0 && r == 0);
    /* a chunk of 8192 over 8 of 128 experts: (1 - p)^n alone would underflow */
    plan_routed_rows(8192, 8.0 / 128, 0, &q, &r);
    CHECK_MSG(fabs(q - 1) < 1e-9 && fabs(r - 512) < 1e-6, "%.12g %.12g", q, r);
}

/* A tiny qwen3moe (2 layers, 8 experts of 512 over a width of 256, Q8_0) with every layer on
 * the device and its experts on the host, streaming experts of 16+ rows of a 64-row chunk.
 * Each expert matrix is 139,264 bytes (gate and up: 512 rows of 256 = 272 bytes; down: 256
 * rows of 512 = 544 bytes); a row sends an expert 256 + 256 + 512 floats and reads back
 * 512 + 512 + 256. */
TEST(moe_streaming_by_hand) {
    const char *used[2] = {"--arch qwen3moe --experts-used 8", "--arch qwen3moe"};
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "moe-stream-%d", k);
        ob_model *m = synth(name, used[k]);
        CHECK(m != NULL);
        if (!m) return;
        ob_context_params p;
        ob_plan plan;
        plan_init(&p, 64, 16, &plan, 2, 2);
        plan.experts_on_host = true;
        plan.device = (ob_plan_part){.device = "vulkan", .layer_lo = 0, .layer_hi = 2};
        plan.experts = (ob_plan_part){.device = "cpu", .layer_lo = 0, .layer_hi = 2};
        plan.link_chunk = 1000;
        model_plan_stream(m, &p, true, false, &plan);
        CHECK_MSG(plan.stream_min_tok == 16, "%s", plan.stream_why);
        CHECK_EQ_INT(plan.device.stream, 139264);
        /* each of the 16 experts: its chance of 16+ rows, and its rows counted then; with
         * one expert of eight per token, Binomial(64, 1/4) summed term by term */
        double q = 1, r = 64;
        if (k == 1) {
            double term = pow(0.75, 64); /* 0 rows */
            q = r = 0;
            for (int i = 0; i <= 64; i++) {
                if (i >= 16) q += term, r += term * i;
                term *= (64.0 - i) / (i + 1) * (0.25 / 0.75);
            }
        }
        const double weights = 16 * 3 * 139264.0;
        CHECK_EQ_INT(plan.stream_experts, llround(q * weights));
        CHECK_EQ_INT(plan.link_experts, llround(q * weights + r * 4 * 2304 * 16));
        CHECK_EQ_INT(plan.stream_chunk, plan.stream_experts);
        CHECK_EQ_INT(plan.link_chunk, 1000 + plan.link_experts);
        if (k == 0) {
            CHECK_EQ_INT(plan.link_experts, 6684672 + 64 * 4 * 2304 * 16);
            /* decode: the host's cores read the MoE blocks (every expert, and the F32
             * router of 8 rows of 1,024 bytes) at the host's rates, not the device's */
            calib c;
            hand_calib(&c);
            ob_plan_speed sp;
            plan_predict(m, &p, &plan, &c, &sp);
            const double host = 1e-4 + 2 * 2e-4 + 2 * (8 * 3 * 139264.0 + 8192) / 1e9;
            CHECK_MSG(close_to(sp.decode_s[0], host), "%.9g vs %.9g", sp.decode_s[0], host);
        }
        ob_model_free(m);
    }
}

TEST(host_alone_and_missing_figures) {
    ob_model *m = load_tiny();
    CHECK(m != NULL);
    calib c;
    hand_calib(&c);
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_threads = 4;
    p.n_batch = 64;
    ob_plan plan;
    ob_err err = {{0}};
    CHECK_MSG(ob_plan_context(m, &p, &plan, &err) == OB_OK, "%s", err.msg);
    ob_plan_speed s;
    plan_predict(m, &p, &plan, &c, &s);
    CHECK(s.calibrated && s.decode_s[1] == 0 && s.decode_s[2] == 0);
    const double host_dec = 1e-4 + 2 * 2e-4 + (2 * LAYER_BYTES + HEAD_BYTES) / 1e9;
    CHECK_MSG(close_to(s.decode_s[0], host_dec), "%.9g vs %.9g", s.decode_s[0], host_dec);
    /* another thread count was not measured: defaults, and the basis says so */
    p.n_threads = 3;
    plan_predict(m, &p, &plan, &c, &s);
    CHECK(!s.calibrated && strstr(s.basis, "thread count") && s.decode_tps > 0);
    /* the model's type not measured on the host: another type's costs stand in */
    c.backends[0].types[0].qtype = OB_QTYPE_Q4_0;
    p.n_threads = 4;
    plan_predict(m, &p, &plan, &c, &s);
    CHECK(!s.calibrated && strstr(s.basis, "another's rates"));
    CHECK_MSG(close_to(s.decode_s[0], host_dec), "%.9g vs %.9g", s.decode_s[0], host_dec);
    /* no calibration at all */
    plan_predict(m, &p, &plan, NULL, &s);
    CHECK(!s.calibrated && s.decode_tps > 0 && s.prefill_tps > 0);
}

TEST(corrupt_file_ignored) {
    ob_model *m = load_tiny();
    CHECK(m != NULL);
    char path[400];
    snprintf(path, sizeof path, "%s/calibration", tmp_dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("outboard-calibration\t1\nbackend\tcpu X\t4\t9\ntype\tq8_0\t1\t1\t1\n", f);
    fclose(f);
    ob_context_params p;
    ob_context_params_init(&p);
    ob_plan plan;
    CHECK(ob_plan_context(m, &p, &plan, NULL) == OB_OK);
    ob_plan_speed s;
    ob_plan_predict(m, &p, &plan, path, &s);
    CHECK_MSG(!s.calibrated && strstr(s.basis, "ignored") && strstr(s.basis, "line 3"), "%s",
              s.basis);
    CHECK(s.decode_tps > 0);
    unlink(path);
    ob_plan_predict(m, &p, &plan, path, &s); /* absent */
    CHECK(!s.calibrated && strstr(s.basis, "no calibration"));
}

TEST(fit_recovers_costs) {
    const calib_cost truth = {3e-4, 7e-5, 2.5e10};
    const int64_t layers[3] = {1, 3, 1};
    const double work[3] = {4e6, 1.2e7, 1.6e7};
    double t[3];
    for (int i = 0; i < 3; i++) t[i] = calib_cost_eval(&truth, layers[i], work[i]);
    calib_cost got;
    CHECK(calib_fit(t, layers, work, 0, &got, NULL) == OB_OK);
    CHECK(close_to(got.pass_s, truth.pass_s) && close_to(got.layer_s, truth.layer_s) &&
          fabs(got.rate - truth.rate) < 1e-6 * truth.rate);
    /* a wider layer that took no more time: the fallback rate, else the extra layers' */
    double flat[3] = {t[0], t[1], t[0]};
    CHECK(calib_fit(flat, layers, work, 1e10, &got, NULL) == OB_OK && got.rate == 1e10);
    CHECK(calib_fit(flat, layers, work, 0, &got, NULL) == OB_OK && got.layer_s == 0);
    CHECK(close_to(got.rate, (work[1] - work[0]) / (t[1] - t[0])));
    /* nothing took more time: a clear error */
    double none[3] = {t[0], t[0], t[0]};
    CHECK(calib_fit(none, layers, work, 0, &got, NULL) == OB_ERR_ARG);
    const int64_t same[3] = {1, 1, 1};
    CHECK(calib_fit(t, same, work, 0, &got, NULL) == OB_ERR_ARG);
}

int main(void) {
    RUN(work_by_hand);
    RUN(split_prediction_by_hand);
    RUN(moe_work_counts_the_chosen_experts);
    RUN(streaming_threshold_by_hand);
    RUN(routed_rows_by_hand);
    RUN(moe_streaming_by_hand);
    RUN(host_alone_and_missing_figures);
    RUN(corrupt_file_ignored);
    RUN(fit_recovers_costs);
    ob_model_free(g_model);
    int rc = t_summary();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (tmp_dir[0] && system(cmd)) rc = rc ? rc : 1;
    return rc;
}
