/*
 * Values on the command line, read strictly and in one place: every numeric flag of every
 * command goes through cli_parse_i64 / cli_parse_u64 / cli_parse_f64, so "abc", "1x", "",
 * " 5", an overflowing number or one out of range is refused with the flag named, instead of
 * strtol's silent 0 or prefix. Also the engine flags that run and chat read the same way (the
 * sampling settings --temp, --top-k, --top-p, --min-p, --repeat-penalty, --seed and the
 * context settings --ctx, --threads, --device), token id lists, and the warning for a context
 * longer than the model was trained on.
 *
 * Nothing here opens a file or exits: the option fuzzer (tests/cli/opts_fuzz.c) calls it all.
 */
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char CLI_ENGINE_OPTS_HELP[] =
    "  --temp T (0.8; 0 = greedy)  --top-k K (40)  --top-p P (0.95)  --min-p P (0.05)\n"
    "  --repeat-penalty R (1.0)  --seed S  --ctx N  --threads N (physical cores)\n"
    "  --device cpu|cuda[:N]|vulkan[:N]|auto (cpu; `outboard devices` lists them)\n"
    "  --gpu-layers N|auto (all): with a GPU device, the last N layers run on it, the rest on\n"
    "    the CPU; auto: as many as --vram-budget SIZE (the device's memory) holds\n"
    "  --link-emulate GBPS[,LATENCY_US]: copies between the CPU and the device as slow as that\n"
    "  --experts host|device|auto (auto): where a mixture-of-experts model's device layers run\n"
    "    their MoE blocks; host keeps the experts in host memory, computed by the CPU\n"
    "  --stream-weights auto|off|N (auto): prompt chunks of N+ tokens run the CPU's layers'\n"
    "    matrix products on the device, their weights shipped over the link; auto: from the\n"
    "    chunk size where the plan (`outboard plan`) says that is faster\n";

/* ---- values -------------------------------------------------------------------------------- */

/* cli_shown of s[0..len), which need not end in a NUL. */
static const char *shown_n(const char *s, size_t len, char *buf) {
    size_t n = len < CLI_SHOWN_MAX ? len : CLI_SHOWN_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    memcpy(buf + n, len > CLI_SHOWN_MAX ? "..." : "", len > CLI_SHOWN_MAX ? 4 : 1);
    return buf;
}

/* strnlen: a huge argument is not measured in full. */
const char *cli_shown(const char *s, char *buf) {
    return shown_n(s, strnlen(s, CLI_SHOWN_MAX + 1), buf);
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* The text starts a number the way a person writes one: an optional sign, then a digit (or a
 * point for floats). strtoll/strtod alone would skip blanks and take "nan" or "inf". */
static bool starts_number(const char *s, bool sign_ok, bool point_ok) {
    if (sign_ok && (*s == '-' || *s == '+')) s++;
    else if (*s == '+') s++;
    return is_digit(*s) || (point_ok && *s == '.' && is_digit(s[1]));
}

static ob_status missing(const char *flag, ob_err *err) {
    return ob_fail(err, OB_ERR_ARG, "%s needs a value", flag);
}

ob_status cli_parse_i64(const char *flag, const char *text, int64_t min, int64_t max,
                        int64_t *out, ob_err *err) {
    if (!text) return missing(flag, err);
    char sh[CLI_SHOWN_SIZE], *end = NULL;
    errno = 0;
    long long v = starts_number(text, true, false) ? strtoll(text, &end, 10) : 0;
    if (!end || *end)
        return ob_fail(err, OB_ERR_ARG, "%s: '%s' is not an integer", flag, cli_shown(text, sh));
    if (errno == ERANGE || v < min || v > max)
        return ob_fail(err, OB_ERR_ARG, "%s: %s is outside [%lld, %lld]", flag,
                       cli_shown(text, sh), (long long)min, (long long)max);
    *out = v;
    return OB_OK;
}

ob_status cli_parse_u64(const char *flag, const char *text, uint64_t max, uint64_t *out,
                        ob_err *err) {
    if (!text) return missing(flag, err);
    char sh[CLI_SHOWN_SIZE], *end = NULL;
    errno = 0;
    /* No sign: strtoull reads "-1" as 2^64 - 1. */
    unsigned long long v = starts_number(text, false, false) ? strtoull(text, &end, 10) : 0;
    if (!end || *end)
        return ob_fail(err, OB_ERR_ARG, "%s: '%s' is not a non-negative integer", flag,
                       cli_shown(text, sh));
    if (errno == ERANGE || v > max)
        return ob_fail(err, OB_ERR_ARG, "%s: %s is outside [0, %llu]", flag, cli_shown(text, sh),
                       (unsigned long long)max);
    *out = v;
    return OB_OK;
}

ob_status cli_parse_f64(const char *flag, const char *text, double min, double max,
                        bool min_open, double *out, ob_err *err) {
    if (!text) return missing(flag, err);
    char sh[CLI_SHOWN_SIZE], *end = NULL;
    errno = 0;
    double v = starts_number(text, true, true) ? strtod(text, &end) : 0.0;
    if (!end || *end)
        return ob_fail(err, OB_ERR_ARG, "%s: '%s' is not a number", flag, cli_shown(text, sh));
    /* ERANGE covers overflow to infinity and underflow below the smallest double. */
    if (errno == ERANGE || !isfinite(v) || v < min || (min_open && v == min) || v > max)
        return ob_fail(err, OB_ERR_ARG, "%s: %s is outside %c%g, %g]", flag, cli_shown(text, sh),
                       min_open ? '(' : '[', min, max);
    *out = v;
    return OB_OK;
}

ob_status cli_parse_f32(const char *flag, const char *text, double min, double max,
                        bool min_open, float *out, ob_err *err) {
    double v;
    ob_status st = cli_parse_f64(flag, text, min, max, min_open, &v, err);
    if (!st) *out = (float)v;
    return st;
}

ob_status cli_parse_device(const char *flag, const char *text, ob_device *out, int *index,
                           ob_err *err) {
    if (!text) return missing(flag, err);
    char sh[CLI_SHOWN_SIZE];
    const char *colon = strchr(text, ':');
    const size_t kind = colon ? (size_t)(colon - text) : strlen(text);
    *index = -1;
    if (kind == 3 && !strncmp(text, "cpu", 3) && !colon) *out = OB_DEVICE_CPU;
    else if (kind == 4 && !strncmp(text, "cuda", 4)) *out = OB_DEVICE_CUDA;
    else if (kind == 6 && !strncmp(text, "vulkan", 6)) *out = OB_DEVICE_VULKAN;
    else if (kind == 4 && !strncmp(text, "auto", 4) && !colon) *out = OB_DEVICE_AUTO;
    else
        return ob_fail(err, OB_ERR_ARG, "%s: '%s': expected cpu, cuda[:N], vulkan[:N] or auto",
                       flag, cli_shown(text, sh));
    if (colon) {
        int64_t n;
        ob_status st = cli_parse_i64(flag, colon + 1, 0, 63, &n, err);
        if (st) return st;
        *index = (int)n;
    }
    return OB_OK;
}

/* ---- token id lists ---------------------------------------------------------------------- */

static bool is_id_sep(char c) {
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '[' || c == ']';
}

/* One id of `len` characters at s: digits only, at most max_id. Overflow saturates so it is
 * reported as out of range rather than wrapping into a valid id. */
static ob_status parse_one_id(const char *flag, const char *s, size_t len, int64_t max_id,
                              int32_t *out, ob_err *err) {
    char sh[CLI_SHOWN_SIZE];
    size_t start = s[0] == '-' || s[0] == '+';
    bool digits = start < len;
    uint64_t v = 0;
    for (size_t i = start; i < len && digits; i++) {
        digits = is_digit(s[i]);
        v = v > UINT64_MAX / 16 ? UINT64_MAX / 16 : v * 10 + (uint64_t)(s[i] - '0');
    }
    if (!digits)
        return ob_fail(err, OB_ERR_ARG, "%s: '%s' is not a token id", flag,
                       shown_n(s, len, sh));
    if (s[0] == '-' && v > 0) v = UINT64_MAX / 16; /* -0 is 0; any other negative is out */
    if (v > (uint64_t)max_id)
        return ob_fail(err, OB_ERR_ARG, "%s: id %s is outside [0, %lld]", flag,
                       shown_n(s, len, sh), (long long)max_id);
    *out = (int32_t)v;
    return OB_OK;
}

ob_status cli_parse_ids(const char *flag, const char *text, int64_t max_id, int32_t **ids,
                        size_t *n, ob_err *err) {
    *ids = NULL;
    *n = 0;
    if (!text) return missing(flag, err);
    if (max_id > INT32_MAX) max_id = INT32_MAX;
    if (max_id < 0) return ob_fail(err, OB_ERR_ARG, "%s: the vocabulary is empty", flag);
    /* Every id takes at least one character and a separator, which bounds the array. */
    size_t cap = strlen(text) / 2 + 1, len = 0;
    int32_t *out = ob_alloc(cap, sizeof *out);
    if (!out) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", flag);
    for (const char *p = text; *p;) {
        if (is_id_sep(*p)) {
            p++;
            continue;
        }
        size_t l = 0;
        while (p[l] && !is_id_sep(p[l])) l++;
        ob_status st = parse_one_id(flag, p, l, max_id, &out[len], err);
        if (st) {
            ob_free(out);
            return st;
        }
        len++;
        p += l;
    }
    if (len == 0) {
        ob_free(out);
        char sh[CLI_SHOWN_SIZE];
        return ob_fail(err, OB_ERR_ARG, "%s: no token ids in '%s'", flag, cli_shown(text, sh));
    }
    *ids = out;
    *n = len;
    return OB_OK;
}

ob_status cli_parse_size(const char *flag, const char *text, uint64_t lo, uint64_t hi,
                         uint64_t *out, ob_err *err) {
    char *end = NULL;
    const double v = strtod(text, &end);
    double mul = 1;
    if (end && end != text) {
        switch (*end) {
        case 'K': case 'k': mul = 1024.0; end++; break;
        case 'M': case 'm': mul = 1048576.0; end++; break;
        case 'G': case 'g': mul = 1073741824.0; end++; break;
        case 'T': case 't': mul = 1099511627776.0; end++; break;
        default: break;
        }
        if (mul > 1 && (!strcmp(end, "iB") || !strcmp(end, "B"))) end += strlen(end);
    }
    const double bytes = v * mul;
    char sh[CLI_SHOWN_SIZE];
    if (!end || end == text || *end || !(bytes >= (double)lo && bytes <= (double)hi))
        return ob_fail(err, OB_ERR_ARG, "%s: '%s' is not a size from %llu to %llu bytes "
                       "(K, M, G, T allowed)", flag, cli_shown(text, sh),
                       (unsigned long long)lo, (unsigned long long)hi);
    *out = (uint64_t)bytes;
    return OB_OK;
}

ob_status cli_parse_gpu_layers(const char *flag, const char *text, int64_t *out, ob_err *err) {
    if (!strcmp(text, "auto")) {
        *out = OB_GPU_LAYERS_AUTO;
        return OB_OK;
    }
    ob_status st = cli_parse_i64(flag, text, 0, CLI_MAX_CTX, out, err);
    if (st) ob_err_prefix(err, "expected a layer count or auto");
    return st;
}

ob_status cli_parse_experts(const char *flag, const char *text, ob_experts *out, ob_err *err) {
    static const char *const NAMES[] = {"auto", "device", "host"}; /* ob_experts order */
    for (int i = 0; i < 3; i++) {
        if (!strcmp(text, NAMES[i])) {
            *out = (ob_experts)i;
            return OB_OK;
        }
    }
    char sh[CLI_SHOWN_SIZE];
    return ob_fail(err, OB_ERR_ARG, "%s: '%s', expected host, device or auto", flag,
                   cli_shown(text, sh));
}

ob_status cli_parse_stream(const char *flag, const char *text, int64_t *out, ob_err *err) {
    if (!strcmp(text, "auto")) {
        *out = OB_STREAM_AUTO;
        return OB_OK;
    }
    if (!strcmp(text, "off")) {
        *out = 0;
        return OB_OK;
    }
    ob_status st = cli_parse_i64(flag, text, 2, INT32_MAX, out, NULL);
    if (!st) return OB_OK;
    char sh[CLI_SHOWN_SIZE];
    return ob_fail(err, OB_ERR_ARG, "%s: '%s', expected auto, off or a row count of at least 2",
                   flag, cli_shown(text, sh));
}

ob_status cli_parse_link(const char *flag, const char *text, double *gbps, double *latency_us,
                         ob_err *err) {
    char rate[64];
    const char *comma = strchr(text, ',');
    const size_t n = comma ? (size_t)(comma - text) : strlen(text);
    char sh[CLI_SHOWN_SIZE];
    if (n >= sizeof rate)
        return ob_fail(err, OB_ERR_ARG, "%s: '%s', expected GBPS[,LATENCY_US]", flag,
                       cli_shown(text, sh));
    memcpy(rate, text, n);
    rate[n] = '\0';
    *latency_us = 0;
    ob_status st = cli_parse_f64(flag, rate, 0, 1e4, true, gbps, err);
    if (!st && comma) st = cli_parse_f64(flag, comma + 1, 0, 1e7, false, latency_us, err);
    return st;
}

/* ---- engine flags ------------------------------------------------------------------------ */

static const char *const ENGINE_FLAGS[] = {"--temp",           "--top-k", "--top-p",
                                           "--min-p",          "--seed",  "--ctx",
                                           "--repeat-penalty", "--threads", "--device",
                                           "--gpu-layers", "--vram-budget", "--link-emulate",
                                           "--experts", "--stream-weights"};

bool cli_engine_opt_known(const char *flag) {
    for (size_t i = 0; i < sizeof ENGINE_FLAGS / sizeof ENGINE_FLAGS[0]; i++)
        if (!strcmp(flag, ENGINE_FLAGS[i])) return true;
    return false;
}

ob_status cli_engine_opt_set(const char *flag, const char *text, ob_sampler_params *sp,
                             ob_context_params *cp, ob_err *err) {
    int64_t n = 0;
    ob_status st = OB_OK;
    /* The ranges are the sampler's own (src/sample: top_p in (0, 1], a positive penalty), so a
     * bad value fails here, before the model loads. */
    if (!strcmp(flag, "--temp"))
        return cli_parse_f32(flag, text, 0, CLI_MAX_TEMP, false, &sp->temp, err);
    if (!strcmp(flag, "--top-p")) return cli_parse_f32(flag, text, 0, 1, true, &sp->top_p, err);
    if (!strcmp(flag, "--min-p")) return cli_parse_f32(flag, text, 0, 1, false, &sp->min_p, err);
    if (!strcmp(flag, "--repeat-penalty"))
        return cli_parse_f32(flag, text, 0, CLI_MAX_REPEAT_PENALTY, true, &sp->repeat_penalty,
                             err);
    if (!strcmp(flag, "--seed")) return cli_parse_u64(flag, text, UINT64_MAX, &sp->seed, err);
    if (!strcmp(flag, "--device"))
        return cli_parse_device(flag, text, &cp->device, &cp->device_index, err);
    if (!strcmp(flag, "--top-k")) {
        if (!(st = cli_parse_i64(flag, text, 0, INT32_MAX, &n, err))) sp->top_k = (int32_t)n;
    } else if (!strcmp(flag, "--ctx")) { /* 0: the model's own (capped) */
        st = cli_parse_i64(flag, text, 0, CLI_MAX_CTX, &cp->n_ctx, err);
    } else if (!strcmp(flag, "--gpu-layers")) {
        st = cli_parse_gpu_layers(flag, text, &cp->n_gpu_layers, err);
    } else if (!strcmp(flag, "--vram-budget")) {
        st = cli_parse_size(flag, text, 1 << 20, (uint64_t)1 << 50, &cp->vram_budget, err);
    } else if (!strcmp(flag, "--link-emulate")) {
        st = cli_parse_link(flag, text, &cp->link_gbps, &cp->link_latency_us, err);
    } else if (!strcmp(flag, "--experts")) {
        st = cli_parse_experts(flag, text, &cp->experts, err);
    } else if (!strcmp(flag, "--stream-weights")) {
        st = cli_parse_stream(flag, text, &cp->stream_min_tok, err);
    } else if (!strcmp(flag, "--threads")) { /* 0: the physical cores */
        if (!(st = cli_parse_i64(flag, text, 0, CLI_MAX_THREADS, &n, err))) cp->n_threads = (int)n;
    } else {
        char sh[CLI_SHOWN_SIZE];
        st = ob_fail(err, OB_ERR_ARG, "unknown option '%s'", cli_shown(flag, sh));
    }
    return st;
}

void cli_ctx_warn(const char *cmd, const ob_model *m, int64_t n_ctx) {
    ob_model_info info;
    ob_model_get_info(m, &info);
    if (info.n_ctx_train <= 0 || n_ctx <= info.n_ctx_train) return;
    /* K and V, F16, every layer: an upper bound (sliding-window layers keep less). */
    double kv = 2.0 * 2.0 * (double)info.n_layer * (double)info.n_head_kv *
                (double)info.head_dim * (double)n_ctx;
    fprintf(stderr,
            "outboard %s: warning: --ctx %lld is above the %lld tokens the model was trained "
            "on (%s.context_length); its KV cache would take up to %.1f MiB\n",
            cmd, (long long)n_ctx, (long long)info.n_ctx_train, info.arch, kv / 1048576.0);
}
