/*
 * `outboard plan -m MODEL [--ctx N] [--parallel N] [--kv-size N] [--batch N] [--device D]
 * [--gpu-layers N|auto] [--vram-budget SIZE] [--experts host|device|auto]
 * [--link-emulate GBPS[,US]] [--json]`: where a context's layers (and a mixture-of-experts
 * model's MoE blocks) would run and the memory each device would give them, from
 * ob_plan_context (the functions that size the real allocations), before any weight is read:
 * the file is mapped, its pages are not; and the prefill and decode speed that placement is
 * predicted to reach (ob_plan_predict). --parallel N sizes the KV pool as the server does (N
 * sequences of --ctx each). `outboard plan --calibrate [--device D] [--threads N]
 * [--link-emulate ...] [--types LIST]` measures this machine for the prediction
 * (cmd_calibrate.c).
 */
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"
#include "gguf/qtype.h"
#include "model/calib.h"

#include <stdio.h>
#include <string.h>

static const char USAGE[] =
    "usage: outboard plan -m MODEL.gguf [--ctx N] [--parallel N] [--kv-size N] [--batch N]\n"
    "                     [--device cpu|cuda[:N]|vulkan[:N]|auto] [--gpu-layers N|auto]\n"
    "                     [--vram-budget SIZE] [--experts host|device|auto] [--threads N]\n"
    "                     [--link-emulate GBPS[,US]] [--json]\n"
    "       outboard plan --calibrate [-m MODEL.gguf] [--device D] [--threads N]\n"
    "                     [--batch N] [--link-emulate GBPS[,US]] [--types LIST]\n"
    "  Prints where the layers would run and the memory each device would hold for them\n"
    "  (weights, KV cache, recurrent state, activations; a MoE model's experts kept on the\n"
    "  host for the device's layers in a row of their own), the bytes crossing between the\n"
    "  CPU and the device per decoded token and per prompt chunk, and the predicted prefill\n"
    "  and decode speed. Reads no weights. --calibrate measures this machine (the CPU at the\n"
    "  thread count, the device, the link) for the prediction and stores the figures in\n"
    "  $XDG_CONFIG_HOME/outboard/calibration (~/.config/outboard/calibration), for the weight\n"
    "  types of --types (q4_0,q8_0,q4_K,q6_K; with -m and no --types, the model's), then\n"
    "  prints the plan of -m if one is given.\n";

typedef struct plan_args {
    const char *model;
    const char *types; /* --types: weight types to calibrate, NULL = the default list */
    ob_context_params cp;
    int64_t parallel;
    bool json, help, calibrate;
} plan_args;

static ob_status parse(int argc, char **argv, plan_args *a, ob_err *err) {
    memset(a, 0, sizeof *a);
    ob_context_params_init(&a->cp);
    a->parallel = 1;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            a->help = true;
            return OB_OK;
        }
        if (!strcmp(f, "--json") || !strcmp(f, "--calibrate")) {
            *(f[2] == 'j' ? &a->json : &a->calibrate) = true;
            continue;
        }
        if (i + 1 >= argc) return ob_fail(err, OB_ERR_ARG, "%s: expected a value", f);
        const char *v = argv[++i];
        ob_status st;
        if (!strcmp(f, "-m")) {
            a->model = v;
            st = OB_OK;
        } else if (!strcmp(f, "--parallel")) {
            st = cli_parse_i64(f, v, 1, 4096, &a->parallel, err);
        } else if (!strcmp(f, "--kv-size")) {
            st = cli_parse_i64(f, v, 0, (int64_t)1 << 26, &a->cp.kv_size, err);
        } else if (!strcmp(f, "--types")) {
            a->types = v;
            st = OB_OK;
        } else if (!strcmp(f, "--batch")) {
            st = cli_parse_i64(f, v, 1, 1 << 20, &a->cp.n_batch, err);
        } else if (cli_engine_opt_known(f)) {
            ob_sampler_params sp;
            ob_sampler_params_init(&sp);
            st = cli_engine_opt_set(f, v, &sp, &a->cp, err);
        } else {
            char sh[CLI_SHOWN_SIZE];
            st = ob_fail(err, OB_ERR_ARG, "unknown option '%s'", cli_shown(f, sh));
        }
        if (st) return st;
    }
    if (!a->model && !a->calibrate) return ob_fail(err, OB_ERR_ARG, "-m MODEL.gguf is required");
    a->cp.n_seq_max = (int32_t)a->parallel;
    return OB_OK;
}

static double gib(uint64_t b) { return (double)b / 1073741824.0; }

static uint64_t total(const ob_plan_part *p) {
    return p->weights + p->kv + p->state + p->activations + p->stream;
}

static void print_part(const ob_plan_part *p, const char *what) {
    if (p->layer_hi == p->layer_lo && !p->stream) return;
    printf("  %-8s %-7s %3lld-%-4lld %9.3f %9.3f %9.3f %11.3f %9.3f\n", p->device, what,
           (long long)p->layer_lo, (long long)p->layer_hi - 1, gib(p->weights), gib(p->kv),
           gib(p->state), gib(p->activations), gib(total(p)));
}

static void print_json_part(const char *key, const ob_plan_part *p, bool last) {
    printf("  \"%s\": {\"device\": \"%s\", \"layer_lo\": %lld, \"layer_hi\": %lld, "
           "\"weights\": %llu, \"kv\": %llu, \"state\": %llu, \"activations\": %llu, "
           "\"stream\": %llu, \"total\": %llu}%s\n", key, p->device, (long long)p->layer_lo,
           (long long)p->layer_hi, (unsigned long long)p->weights, (unsigned long long)p->kv,
           (unsigned long long)p->state, (unsigned long long)p->activations,
           (unsigned long long)p->stream, (unsigned long long)total(p), last ? "" : ",");
}

static void print_speed(const plan_args *a, const ob_plan *p, const ob_plan_speed *sp) {
    if (a->json) {
        printf("  \"predicted\": {\"prefill_tps\": %.4g, \"decode_tps\": %.4g, "
               "\"calibrated\": %s,\n    \"decode_s\": {\"host\": %.6g, \"device\": %.6g, "
               "\"link\": %.6g},\n    \"prefill_s\": {\"host\": %.6g, \"device\": %.6g, "
               "\"link\": %.6g},\n    \"basis\": \"", sp->prefill_tps, sp->decode_tps,
               sp->calibrated ? "true" : "false", sp->decode_s[0], sp->decode_s[1],
               sp->decode_s[2], sp->prefill_s[0], sp->prefill_s[1], sp->prefill_s[2]);
        for (const char *c = sp->basis; *c; c++) /* paths and messages: escape for JSON */
            if (*c == '"' || *c == '\\') printf("\\%c", *c);
            else if ((unsigned char)*c < 0x20) printf("\\u%04x", *c);
            else putchar(*c);
        printf("\"},\n");
        return;
    }
    printf("predicted %.1f tok/s prefill (chunks of %lld), %.1f tok/s decode%s\n",
           sp->prefill_tps, (long long)a->cp.n_batch, sp->decode_tps,
           sp->calibrated ? "" : " (uncalibrated)");
    printf("          per token: host %.3f ms, device %.3f ms, link %.3f ms; per chunk: host "
           "%.1f ms, device %.1f ms, link %.2f ms\n", sp->decode_s[0] * 1e3,
           sp->decode_s[1] * 1e3, sp->decode_s[2] * 1e3, sp->prefill_s[0] * 1e3,
           sp->prefill_s[1] * 1e3, sp->prefill_s[2] * 1e3);
    printf("          %s\n", sp->basis);
    (void)p;
}

static void print_plan(const plan_args *a, const ob_model_info *in, const ob_plan *p,
                       const ob_plan_speed *sp) {
    if (a->json) {
        printf("{\n  \"model\": \"%s\", \"arch\": \"%s\", \"n_layer\": %lld, "
               "\"n_gpu_layers\": %lld, \"budget\": %llu,\n", in->name, in->arch,
               (long long)p->n_layer, (long long)p->n_gpu_layers,
               (unsigned long long)p->budget);
        printf("  \"link_token\": %llu, \"link_chunk\": %llu, \"experts_on_host\": %s,\n",
               (unsigned long long)p->link_token, (unsigned long long)p->link_chunk,
               p->experts_on_host ? "true" : "false");
        printf("  \"why\": \"%s\",\n", p->why); /* planner text: no quotes or escapes */
        printf("  \"stream_min_tok\": %lld, \"stream_chunk\": %llu, \"stream_why\": \"%s\",\n",
               (long long)p->stream_min_tok, (unsigned long long)p->stream_chunk,
               p->stream_why);
        printf("  \"link_experts\": %llu, \"stream_experts\": %llu,\n",
               (unsigned long long)p->link_experts, (unsigned long long)p->stream_experts);
        print_speed(a, p, sp);
        print_json_part("host", &p->host, false);
        print_json_part("device", &p->device, false);
        print_json_part("experts", &p->experts, true);
        printf("}\n");
        return;
    }
    printf("model     %s (%s, %s, %lld layers, %.2f GiB of tensors)\n", a->model, in->arch,
           in->type_name, (long long)in->n_layer, gib(in->n_bytes));
    printf("context   %lld positions x %lld sequences, batch %lld\n", (long long)a->cp.n_ctx,
           (long long)a->parallel, (long long)a->cp.n_batch);
    if (p->budget) printf("device    %s, budget %.2f GiB\n", p->device.device, gib(p->budget));
    printf("placement %s\n", p->why);
    printf("  %-8s %-16s %9s %9s %9s %11s %9s  (GiB)\n", "", "", "weights", "KV", "state",
           "activations", "total");
    print_part(&p->host, "layers");
    print_part(&p->device, "layers");
    print_part(&p->experts, "experts");
    if (p->device.stream)
        printf("  (the device's total includes %.3f GiB of streaming buffer)\n",
               gib(p->device.stream));
    if (p->device.device[0])
        printf("streaming %s\n", p->stream_why);
    if (p->n_gpu_layers > 0 || p->stream_chunk)
        printf("link      %llu bytes per decoded token, %llu per prompt chunk of %lld\n",
               (unsigned long long)p->link_token, (unsigned long long)p->link_chunk,
               (long long)a->cp.n_batch);
    if (p->link_experts) /* which experts get the rows is the routing's */
        printf("          of which routed experts' products, expected: %llu (weights %llu)\n",
               (unsigned long long)p->link_experts, (unsigned long long)p->stream_experts);
    print_speed(a, p, sp);
}

int cli_cmd_plan(int argc, char **argv) {
    plan_args a;
    ob_err err = {{0}};
    if (parse(argc, argv, &a, &err)) {
        fprintf(stderr, "outboard plan: %s\n%s", err.msg, USAGE);
        return 2;
    }
    if (a.help) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (a.calibrate && !a.model) return cli_plan_calibrate(&a.cp, a.types);
    char *path = cli_model_path("plan", a.model);
    if (!path) return 1;
    ob_model_params mp;
    ob_model_params_init(&mp);
    mp.prefault = false; /* the plan reads no weights */
    ob_model *m = NULL;
    ob_status st = ob_model_load(path, &mp, &m, &err);
    ob_free(path);
    if (st) {
        fprintf(stderr, "outboard plan: %s\n", err.msg);
        return 1;
    }
    ob_model_info in;
    ob_model_get_info(m, &in);
    if (a.calibrate) { /* without --types: the type holding most of this model's layers */
        plan_work w;
        plan_work_of(m, 0, in.n_layer, 1, MODEL_PART_ALL, &w);
        int rc = cli_plan_calibrate(&a.cp, a.types ? a.types : gguf_qtype_name(w.qtype));
        if (rc) {
            ob_model_free(m);
            return rc;
        }
    }
    if (!a.cp.n_ctx) a.cp.n_ctx = in.n_ctx_train < 4096 ? in.n_ctx_train : 4096;
    if (!a.cp.kv_size) a.cp.kv_size = a.cp.n_ctx * a.parallel;
    if (a.cp.n_batch > a.cp.n_ctx) a.cp.n_batch = a.cp.n_ctx; /* as the context clips it */
    ob_plan plan;
    st = ob_plan_context(m, &a.cp, &plan, &err);
    ob_plan_speed speed;
    if (!st) ob_plan_predict(m, &a.cp, &plan, NULL, &speed);
    if (!st) print_plan(&a, &in, &plan, &speed);
    else fprintf(stderr, "outboard plan: %s\n", err.msg);
    ob_model_free(m);
    return st ? 1 : 0;
}
