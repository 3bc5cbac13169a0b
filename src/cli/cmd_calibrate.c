/*
 * `outboard plan --calibrate`: measures this machine once for the speed prediction of `outboard
 * plan` and the server, and stores the figures in the user's calibration file (calib.h):
 *
 *   - the host's streaming read bandwidth at the thread count;
 *   - per backend (the CPU at that thread count, and the --device when one is given) and per
 *     weight type, the cost of real forward passes of small synthetic llama models of three
 *     shapes (1 layer 256 wide, 3 layers 256 wide, 1 layer 512 wide), one token at a time
 *     (decode) and as one prompt chunk (prefill), solved into a per-pass cost, a per-layer cost
 *     and a rate (calib_fit): the same kernels, dispatches and synchronisation a real model's
 *     passes go through, so what is measured is what the prediction adds up;
 *   - the host-to-device link, through the context's own counted copy path (with
 *     --link-emulate, the emulated link): hidden-state copies of two sizes give bandwidth and
 *     latency.
 *
 * The figures of other backends, thread counts and types already in the file are kept.
 */
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"
#include "cpu/pool.h"
#include "gguf/qtype.h"
#include "model/calib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CAL_WIDTH_SMALL 256
#define CAL_WIDTH_LARGE 512
#define CAL_LAYERS_FEW 1
#define CAL_LAYERS_MORE 3
#define CAL_DECODE_TOKENS 64 /* single-token passes per timed run */
#define CAL_RUNS 7          /* timed runs per figure at most; the median is kept */
#define CAL_ENOUGH_S 20.0   /* no further runs once the runs so far took this long */
#define CAL_MAX_PP 2048     /* most prompt rows of a calibration pass */
#define CAL_LINK_ROWS 16    /* single-row passes the link's latency is averaged over */
#define CAL_READ_BYTES ((size_t)512 << 20)

/* The three shapes calib_fit separates the costs with (calib.h). */
static const struct {
    int64_t embd, layers;
} SHAPES[3] = {{CAL_WIDTH_SMALL, CAL_LAYERS_FEW},
               {CAL_WIDTH_SMALL, CAL_LAYERS_MORE},
               {CAL_WIDTH_LARGE, CAL_LAYERS_FEW}};

typedef struct cal_run {
    const ob_context_params *cp;
    int64_t n_pp;   /* prompt rows of a prefill pass */
    char dir[256];  /* the synthetic models' folder */
} cal_run;

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Writes the calibration model of shape s and type `type` into run->dir. */
static int synth_model(const cal_run *run, int s, const char *type, char *path, size_t cap) {
    char embd[16], layers[16];
    snprintf(path, cap, "%s/cal-%s-%d.gguf", run->dir, type, s);
    if (access(path, R_OK) == 0) return 0;
    snprintf(embd, sizeof embd, "%lld", (long long)SHAPES[s].embd);
    snprintf(layers, sizeof layers, "%lld", (long long)SHAPES[s].layers);
    char *argv[] = {"synth", "--shape", "tiny", "--type", (char *)type, "--embd", embd,
                    "--layers", layers, "-o", path, "--quiet", NULL};
    return cli_cmd_synth(12, argv);
}

/* One calibration model open on the backend being measured. */
typedef struct cal_model {
    ob_model *m;
    ob_context *c;
    plan_work work; /* its decode bytes and prefill multiply-adds as the prediction counts */
    int64_t n_layer;
    double dec[CAL_RUNS], pre[CAL_RUNS]; /* seconds per token, per prefill pass, each run */
} cal_model;

static void cal_model_close(cal_model *cm) {
    ob_context_free(cm->c);
    ob_model_free(cm->m);
}

/* Loads the model at path onto the backend cp names, its work counted, warmed up (pipelines
 * built, pages touched). */
static ob_status cal_model_open(const cal_run *run, const ob_context_params *cp,
                                const char *path, const int32_t *toks, cal_model *cm,
                                ob_err *err) {
    ob_model_params mp;
    ob_model_params_init(&mp);
    ob_context_params p = *cp;
    p.n_ctx = run->n_pp + CAL_DECODE_TOKENS + 8;
    p.n_batch = run->n_pp;
    p.n_seq_max = 1;
    p.kv_size = 0;
    ob_status st = ob_model_load(path, &mp, &cm->m, err);
    if (!st) st = ob_context_new(cm->m, &p, &cm->c, err);
    if (st) return st;
    ob_model_info in;
    ob_model_get_info(cm->m, &in);
    cm->n_layer = in.n_layer;
    plan_work_of(cm->m, 0, in.n_layer, run->n_pp, MODEL_PART_ALL, &cm->work);
    if (!(st = ob_eval(cm->c, toks, 8, false, err)) && !(st = ob_context_truncate(cm->c, 0, err)))
        st = ob_eval(cm->c, toks, 1, false, err);
    return st;
}

/* Run r of one model: a prefill pass of run->n_pp rows (prefill) or CAL_DECODE_TOKENS
 * single-token passes from an empty cache (decode), as `outboard bench` measures them. */
static ob_status cal_model_time(const cal_run *run, cal_model *cm, const int32_t *toks,
                                bool decode, int r, ob_err *err) {
    ob_status st = ob_context_truncate(cm->c, 0, err);
    const double t0 = cli_now();
    if (!decode) {
        if (!st) st = ob_eval(cm->c, toks, run->n_pp, false, err);
        cm->pre[r] = cli_now() - t0;
        return st;
    }
    for (int i = 0; !st && i < CAL_DECODE_TOKENS; i++)
        st = ob_eval(cm->c, toks + run->n_pp + i, 1, false, err);
    cm->dec[r] = (cli_now() - t0) / CAL_DECODE_TOKENS;
    return st;
}

/* The decode and prefill costs of weight type `type` on the backend cp names: up to CAL_RUNS
 * runs of each model, the median of each into the fit; a slow device (a CPU implementation of
 * Vulkan) gets fewer runs of its long passes. */
static ob_status measure_type(const cal_run *run, const ob_context_params *cp,
                              const char *type, double read_gbs, calib_type *out,
                              ob_err *err) {
    static int32_t toks[CAL_MAX_PP + CAL_DECODE_TOKENS];
    cal_model cm[3];
    memset(cm, 0, sizeof cm);
    ob_status st = OB_OK;
    for (int s = 0; !st && s < 3; s++) {
        char path[512];
        if (synth_model(run, s, type, path, sizeof path))
            st = ob_fail(err, OB_ERR_IO, "could not write a calibration model in %s", run->dir);
        for (int64_t i = 0; i < run->n_pp + CAL_DECODE_TOKENS; i++)
            toks[i] = (int32_t)((i * 7919 + 13) % 256); /* the synthetic vocabulary's bytes */
        if (!st) st = cal_model_open(run, cp, path, toks, &cm[s], err);
    }
    /* all prefill runs, then all decode runs: a decode run right after a long prefill pass
     * measures that pass's aftermath (caches, the pool's threads) as much as itself; and the
     * runs of one model back to back, as a model serves, so its weights are as warm in the
     * caches as they are then (interleaving models would time every run cold) */
    int runs[3] = {CAL_RUNS, CAL_RUNS, CAL_RUNS};
    for (int decode = 0; decode < 2; decode++)
        for (int s = 0; s < 3; s++) {
            /* one untimed run first, as `outboard bench` warms up: the threads of the model
             * timed before still spin a while after their last op (src/cpu/pool.c), and the
             * timed runs then follow each other with no pause. A pause before each run (a
             * sleep) let the CPU idle, and the run after it measured the wake-up more than the
             * work: 74 us per decoded token of the 1-layer model against 17 back to back. */
            if (!st) st = cal_model_time(run, &cm[s], toks, decode, 0, err);
            int r = 0;
            for (double spent = 0; !st && r < runs[s] && spent < CAL_ENOUGH_S / 3; r++) {
                const double t0 = cli_now();
                st = cal_model_time(run, &cm[s], toks, decode, r, err);
                spent += cli_now() - t0;
            }
            runs[s] = r; /* decode runs are as many as prefill runs got */
        }
    double t_dec[3], t_pre[3], w_dec[3], w_pre[3];
    int64_t layers[3];
    for (int s = 0; s < 3; s++) {
        if (!st) {
            t_dec[s] = median(cm[s].dec, runs[s]);
            t_pre[s] = median(cm[s].pre, runs[s]);
            w_dec[s] = cm[s].work.decode_bytes;
            w_pre[s] = cm[s].work.prefill_macs;
            layers[s] = cm[s].n_layer;
            fprintf(stderr, "  %lld layers x %lld wide, median of %d: decode %.1f us/token "
                    "(%.0f bytes), prefill %.1f ms/chunk (%.3g multiply-adds)\n",
                    (long long)SHAPES[s].layers, (long long)SHAPES[s].embd, runs[s],
                    t_dec[s] * 1e6, w_dec[s], t_pre[s] * 1e3, w_pre[s]);
        }
        cal_model_close(&cm[s]);
    }
    if (st) return st;
    st = calib_fit(t_dec, layers, w_dec, read_gbs * 1e9, &out->decode, err);
    if (!st) st = calib_fit(t_pre, layers, w_pre, 0, &out->prefill, err);
    return st;
}

/* The key the plan gives cp's device (a calibration model stands in for any model). */
static ob_status device_key(const ob_context_params *cp, const char *path, char *key,
                            size_t cap, ob_err *err) {
    ob_model_params mp;
    ob_model_params_init(&mp);
    mp.prefault = false;
    ob_model *m = NULL;
    ob_status st = ob_model_load(path, &mp, &m, err);
    ob_plan plan;
    if (!st) st = ob_plan_context(m, cp, &plan, err);
    if (!st && !plan.device_key[0])
        st = ob_fail(err, OB_ERR_ARG, "no such device to calibrate (`outboard devices`)");
    if (!st) snprintf(key, cap, "%s", plan.device_key);
    ob_model_free(m);
    return st;
}

/* The host-to-device link through the context's copy path: every layer but the first on the
 * device, hidden-state copies of one row (decode) and of a prefill chunk, each averaged over
 * the copies of a run; two sizes give bandwidth and latency. */
static ob_status measure_link(const cal_run *run, const ob_context_params *cp, const char *path,
                              calib_link *out, ob_err *err) {
    ob_model_params mp;
    ob_model_params_init(&mp);
    ob_model *m = NULL;
    ob_context *c = NULL;
    ob_context_params p = *cp;
    p.n_gpu_layers = CAL_LAYERS_MORE - 1;
    p.n_ctx = run->n_pp + CAL_DECODE_TOKENS + 8;
    p.n_batch = run->n_pp;
    ob_status st = ob_model_load(path, &mp, &m, err);
    if (!st) st = ob_context_new(m, &p, &c, err);
    int32_t toks[CAL_MAX_PP] = {0};
    double per_copy[2] = {0}, bytes[2] = {0};
    for (int k = 0; !st && k < 2; k++) { /* k 0: single rows, 1: whole chunks */
        ob_transfer_stats a, b;
        st = ob_context_truncate(c, 0, err);
        ob_context_transfer_stats(c, &a);
        const int64_t n = k ? run->n_pp : 1, reps = k ? 2 : CAL_LINK_ROWS;
        for (int64_t i = 0; !st && i < reps; i++) {
            if (k) st = ob_context_truncate(c, 0, err);
            if (!st) st = ob_eval(c, toks, n, false, err);
        }
        ob_context_transfer_stats(c, &b);
        if (!st && b.copies > a.copies) {
            per_copy[k] = (double)(b.ns - a.ns) * 1e-9 / (double)(b.copies - a.copies);
            bytes[k] = (double)(b.bytes - a.bytes) / (double)(b.copies - a.copies);
        }
    }
    ob_context_free(c);
    ob_model_free(m);
    if (st) return st;
    double inv_bw = (per_copy[1] - per_copy[0]) / (bytes[1] - bytes[0]);
    if (!(inv_bw > 0) && cp->link_gbps > 0) /* copies too small to tell: as emulated */
        inv_bw = 1e-9 / cp->link_gbps;
    if (!(inv_bw > 0))
        return ob_fail(err, OB_ERR_ARG, "a %.0f-byte copy took no longer than a "
                       "%.0f-byte one (the machine too busy to measure?)", bytes[1], bytes[0]);
    out->h2d_gbs = 1e-9 / inv_bw;
    out->h2d_latency_us = (per_copy[0] - bytes[0] * inv_bw) * 1e6;
    if (out->h2d_latency_us < 0) out->h2d_latency_us = 0;
    /* logits come back inside the device's own work; only an emulated link adds a wait, of
     * exactly its figures (context_stages.c) */
    out->d2h_gbs = cp->link_gbps > 0 ? cp->link_gbps : out->h2d_gbs;
    out->d2h_latency_us = cp->link_gbps > 0 ? cp->link_latency_us : out->h2d_latency_us;
    return OB_OK;
}

/* Measures every type on one backend (cp: its device, all layers there) into b. */
static ob_status measure_backend(const cal_run *run, const ob_context_params *cp, char **types,
                                 int n_types, calib_backend *b, ob_err *err) {
    for (int i = 0; i < n_types; i++) {
        uint32_t qt = OB_QTYPE_COUNT;
        for (uint32_t t = 0; t < OB_QTYPE_COUNT; t++)
            if (gguf_qtype_name(t) && !strcasecmp(gguf_qtype_name(t), types[i])) qt = t;
        fprintf(stderr, "calibrating %s, %s ...\n", b->key, types[i]);
        calib_type got = {.qtype = qt};
        ob_status st = measure_type(run, cp, types[i], b->read_gbs, &got, err);
        if (st) return st;
        calib_type *ct = calib_type_add(b, qt); /* only figures measured go in */
        if (!ct) return ob_fail(err, OB_ERR_LIMIT, "more than %d types", CALIB_MAX_TYPES);
        *ct = got;
        const double gbs = ct->decode.rate * 1e-9;
        if (b->n_threads == 0 && gbs > b->read_gbs) b->read_gbs = gbs; /* what a device reads */
        fprintf(stderr, "  decode %.3g GB/s + %.0f us/layer + %.0f us/pass; prefill %.3g "
                "GMAC/s + %.0f us/layer + %.0f us/pass\n", gbs, ct->decode.layer_s * 1e6,
                ct->decode.pass_s * 1e6, ct->prefill.rate * 1e-9, ct->prefill.layer_s * 1e6,
                ct->prefill.pass_s * 1e6);
    }
    return OB_OK;
}

/* Splits the comma-separated list into at most cap names (in place); checks each is a type. */
static int type_list(char *list, char **names, int cap, ob_err *err) {
    int n = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        bool known = false;
        for (uint32_t t = 0; t < OB_QTYPE_COUNT && !known; t++)
            known = gguf_qtype_name(t) && !strcasecmp(gguf_qtype_name(t), tok);
        if (!known || n == cap) {
            ob_fail(err, OB_ERR_ARG, "--types: '%s' %s", tok,
                    known ? "is one too many" : "is not a weight type");
            return -1;
        }
        names[n++] = tok;
    }
    return n;
}

/* The host, then the device and its link; *host_done once the host's figures are in c (they
 * are kept when the device fails). */
static ob_status calibrate(const cal_run *run, char **types, int n_types, calib *c,
                           bool *host_done, ob_err *err) {
    ob_context_params host = *run->cp;
    host.device = OB_DEVICE_CPU;
    host.link_gbps = host.link_latency_us = 0;
    char key[CALIB_KEY_SIZE];
    calib_host_key(key, sizeof key);
    calib_backend *hb = calib_backend_add(c, key, host.n_threads);
    if (!hb) return ob_fail(err, OB_ERR_LIMIT, "more than %d backends", CALIB_MAX_BACKENDS);
    hb->read_gbs = calib_host_read_gbs(host.n_threads, CAL_READ_BYTES, 3);
    fprintf(stderr, "%s, %d threads: read %.2f GB/s\n", key, host.n_threads, hb->read_gbs);
    ob_status st = measure_backend(run, &host, types, n_types, hb, err);
    *host_done = st == OB_OK;
    if (st || run->cp->device == OB_DEVICE_CPU) return st;
    char path[512];
    if (synth_model(run, 1, types[0], path, sizeof path))
        return ob_fail(err, OB_ERR_IO, "could not write a calibration model in %s", run->dir);
    ob_context_params dev = *run->cp;
    dev.n_gpu_layers = -1;
    dev.link_gbps = dev.link_latency_us = 0; /* the kernels alone; the link is measured apart */
    if ((st = device_key(&dev, path, key, sizeof key, err))) return st;
    calib_backend *db = calib_backend_add(c, key, 0);
    if (!db) return ob_fail(err, OB_ERR_LIMIT, "more than %d backends", CALIB_MAX_BACKENDS);
    if ((st = measure_backend(run, &dev, types, n_types, db, err))) return st;
    calib_link got;
    if ((st = measure_link(run, run->cp, path, &got, err))) return st;
    calib_link *l = calib_link_add(c, key, run->cp->link_gbps, run->cp->link_latency_us);
    if (!l) return ob_fail(err, OB_ERR_LIMIT, "more than %d links", CALIB_MAX_LINKS);
    got.emulate_gbps = l->emulate_gbps;
    got.emulate_latency_us = l->emulate_latency_us;
    memcpy(got.key, l->key, sizeof got.key);
    *l = got;
    fprintf(stderr, "link to %s: %.3g GB/s + %.1f us to the device, %.3g GB/s + %.1f us back\n",
            key, l->h2d_gbs, l->h2d_latency_us, l->d2h_gbs, l->d2h_latency_us);
    return OB_OK;
}

/* Removes the synthetic models and their folder. */
static void remove_models(const char *dir, char **types, int n_types) {
    for (int i = 0; i < n_types; i++)
        for (int s = 0; s < 3; s++) {
            char path[512];
            snprintf(path, sizeof path, "%s/cal-%s-%d.gguf", dir, types[i], s);
            unlink(path);
        }
    rmdir(dir);
}

int cli_plan_calibrate(const ob_context_params *cp_in, const char *types_arg) {
    ob_err err = {{0}};
    ob_context_params cp = *cp_in;
    char list[256], *types[CALIB_MAX_TYPES];
    snprintf(list, sizeof list, "%s", types_arg ? types_arg : "q4_0,q8_0,q4_K,q6_K");
    const int n_types = type_list(list, types, CALIB_MAX_TYPES, &err);
    if (n_types <= 0) {
        fprintf(stderr, "outboard plan: %s\n", n_types < 0 ? err.msg : "--types: empty");
        return 2;
    }
    if (cp.n_threads <= 0) cp.n_threads = cpu_physical_cores(); /* as a context defaults it */
    calib *c = ob_calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "outboard plan: out of memory\n");
        return 1;
    }
    ob_status st = calib_load(NULL, c, &err);
    if (st == OB_ERR_FORMAT) /* corrupt or foreign: replaced, never merged */
        fprintf(stderr, "outboard plan: warning: calibration %s: starting afresh\n", err.msg);
    if (st) memset(c, 0, sizeof *c);
    /* prefill is measured at the chunk the plans use: kernels tile by rows */
    const int64_t n_batch = cp.n_batch > 0 ? cp.n_batch : 512;
    cal_run run = {.cp = &cp, .n_pp = n_batch < CAL_MAX_PP ? n_batch : CAL_MAX_PP};
    const char *tmp = getenv("TMPDIR");
    snprintf(run.dir, sizeof run.dir, "%s/outboard-calib-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(run.dir)) {
        fprintf(stderr, "outboard plan: cannot make a folder for calibration models in %s\n",
                tmp && tmp[0] ? tmp : "/tmp");
        ob_free(c);
        return 1;
    }
    char path[4096] = "";
    bool host_done = false;
    st = calibrate(&run, types, n_types, c, &host_done, &err);
    remove_models(run.dir, types, n_types);
    if (st) fprintf(stderr, "outboard plan: calibration: %s\n", err.msg);
    ob_status saved = host_done ? calib_path(path, sizeof path, &err) : st;
    if (host_done && !saved) saved = calib_save(path, c, &err);
    ob_free(c);
    if (host_done && saved) fprintf(stderr, "outboard plan: calibration: %s\n", err.msg);
    if (!saved) fprintf(stderr, "calibration written to %s%s\n", path,
                        st ? " (the figures measured before the failure)" : "");
    return st || saved ? 1 : 0;
}
