/*
 * `outboard info MODEL.gguf`: what a GGUF file holds, without loading the model. The summary
 * names the architecture, size, quantization mix (tensor count and bytes per tensor type),
 * the hyperparameters a user asks about first and the tokenizer; --tensors lists every tensor,
 * --kv every metadata pair. --json prints the same as one JSON object (full array values
 * included under --kv), which the reference tests compare with the gguf Python package.
 *
 * Everything here reads the parsed file through the gguf accessors; nothing is loaded into
 * memory beyond the mapping, so `info` on a 70 GB model is instant.
 */
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/alloc.h"
#include "core/str.h"
#include "gguf/gguf.h"
#include "model/qwen35_mtp.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Per tensor type: how many tensors and bytes (indexed by ob_qtype id). */
typedef struct type_mix {
    int64_t count[OB_QTYPE_COUNT];
    uint64_t bytes[OB_QTYPE_COUNT];
    uint64_t total_bytes;
    int64_t params;
} type_mix;

/* llama.cpp's general.file_type numbering (llama_ftype), as the gguf package names it. */
static const char *file_type_name(uint32_t ft) {
    static const char *const NAMES[] = {
        [0] = "ALL_F32", [1] = "MOSTLY_F16", [2] = "MOSTLY_Q4_0", [3] = "MOSTLY_Q4_1",
        [7] = "MOSTLY_Q8_0", [8] = "MOSTLY_Q5_0", [9] = "MOSTLY_Q5_1", [10] = "MOSTLY_Q2_K",
        [11] = "MOSTLY_Q3_K_S", [12] = "MOSTLY_Q3_K_M", [13] = "MOSTLY_Q3_K_L",
        [14] = "MOSTLY_Q4_K_S", [15] = "MOSTLY_Q4_K_M", [16] = "MOSTLY_Q5_K_S",
        [17] = "MOSTLY_Q5_K_M", [18] = "MOSTLY_Q6_K", [19] = "MOSTLY_IQ2_XXS",
        [20] = "MOSTLY_IQ2_XS", [21] = "MOSTLY_Q2_K_S", [22] = "MOSTLY_IQ3_XS",
        [23] = "MOSTLY_IQ3_XXS", [24] = "MOSTLY_IQ1_S", [25] = "MOSTLY_IQ4_NL",
        [26] = "MOSTLY_IQ3_S", [27] = "MOSTLY_IQ3_M", [28] = "MOSTLY_IQ2_S", [29] = "MOSTLY_IQ2_M",
        [30] = "MOSTLY_IQ4_XS", [31] = "MOSTLY_IQ1_M", [32] = "MOSTLY_BF16", [36] = "MOSTLY_TQ1_0",
        [37] = "MOSTLY_TQ2_0", [38] = "MOSTLY_MXFP4_MOE", [39] = "MOSTLY_NVFP4", [40] = "MOSTLY_Q1_0",
    };
    if (ft == 1024) return "GUESSED";
    if (ft < sizeof NAMES / sizeof NAMES[0] && NAMES[ft]) return NAMES[ft];
    return "unknown";
}

/* ---- reading the facts ----------------------------------------------------------------- */

/* A string key as a view; empty view when absent or not a string. */
static ob_str str_key(const gguf_file *f, const char *key) {
    const gguf_kv *kv = gguf_kv_find(f, key);
    return kv && kv->type == GGUF_VTYPE_STRING ? kv->str : (ob_str){NULL, 0};
}

/* "<arch>.<suffix>" as an integer; -1 when absent or not an integer that fits. */
static int64_t arch_int(const gguf_file *f, ob_str arch, const char *suffix) {
    char key[256];
    snprintf(key, sizeof key, "%.*s.%s", OB_STR_FMT(arch), suffix);
    int64_t v;
    if (!gguf_kv_find(f, key) || gguf_get_i64(f, key, &v, NULL) != OB_OK) return -1;
    return v;
}

static void count_types(const gguf_file *f, type_mix *mix) {
    memset(mix, 0, sizeof *mix);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        mix->count[t->type]++; /* the parser refused ids outside the table */
        mix->bytes[t->type] += t->nbytes;
        mix->total_bytes += t->nbytes;
        mix->params += gguf_tensor_nelements(t);
    }
}

/* Parameters one token uses: all, less the experts a mixture-of-experts layer leaves idle
 * (of each 3-D "*_exps" tensor over expert_count experts, expert_used_count are read). */
static int64_t active_params(const gguf_file *f, ob_str arch, int64_t total) {
    const int64_t n = arch_int(f, arch, "expert_count"), k = arch_int(f, arch, "expert_used_count");
    if (n <= 0 || k <= 0 || k > n) return total;
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->ne[2] == n && memmem(t->name.ptr, t->name.len, "_exps.", 6))
            total -= gguf_tensor_nelements(t) / n * (n - k);
    }
    return total;
}

/* Vocabulary size: <arch>.vocab_size when the file states it, else the token list length. */
static int64_t vocab_size(const gguf_file *f, ob_str arch) {
    int64_t n = arch_int(f, arch, "vocab_size");
    if (n >= 0) return n;
    const gguf_kv *kv = gguf_kv_find(f, "tokenizer.ggml.tokens");
    return kv && kv->type == GGUF_VTYPE_ARRAY ? (int64_t)kv->arr_len : -1;
}

/* Hybrid recurrent models (qwen35, qwen35moe, qwen3next): which layers are DeltaNet and the
 * recurrent state one sequence keeps (conv state and delta-rule state per DeltaNet layer, f32;
 * a context keeps a checkpoint and two snapshots beside it, src/model/rs_park.h). Nothing for
 * other architectures. */
static void print_recurrent(const gguf_file *f, ob_str arch) {
    const int64_t ds = arch_int(f, arch, "ssm.state_size");
    const int64_t nk = arch_int(f, arch, "ssm.group_count");
    const int64_t nv = arch_int(f, arch, "ssm.time_step_rank");
    const int64_t conv = arch_int(f, arch, "ssm.conv_kernel");
    /* block_count counts the multi-token-prediction blocks after the main stack */
    const int64_t nextn = arch_int(f, arch, "nextn_predict_layers");
    const int64_t n_layer = arch_int(f, arch, "block_count") - (nextn > 0 ? nextn : 0);
    if (ds <= 0 || nk <= 0 || nv <= 0 || conv <= 0 || n_layer <= 0) return;
    char key[256];
    snprintf(key, sizeof key, "%.*s.attention.recurrent_layers", OB_STR_FMT(arch));
    const gguf_kv *kv = gguf_kv_find(f, key);
    int64_t every = arch_int(f, arch, "full_attention_interval"), n_rec = 0;
    if (every <= 0) every = 4;
    for (int64_t il = 0; il < n_layer; il++)
        n_rec += kv && kv->type == GGUF_VTYPE_ARRAY && kv->arr_type != GGUF_VTYPE_STRING &&
                         (uint64_t)il < kv->arr_len
                     ? gguf_arr_i64(kv, (uint64_t)il) != 0
                     : !kv && (il + 1) % every != 0;
    printf("%-17s %" PRId64 " deltanet, %" PRId64 " attention\n", "layer kinds", n_rec,
           n_layer - n_rec);
    char name[64];
    snprintf(name, sizeof name, "%.*s", OB_STR_FMT(arch));
    const bool runs = model_mtp_arch_runs(name);
    if (nextn > 0)
        printf("%-17s %" PRId64 " after the main stack (%s)\n", "mtp layers", nextn,
               runs ? "drafts with --spec mtp" : "not run: --spec mtp refuses this architecture");
    const double per_layer = ((double)(conv - 1) * (double)((2 * nk + nv) * ds) +
                              (double)nv * (double)ds * (double)ds) * 4.0;
    /* a context keeps four copies per sequence: live, checkpoint, two prefix-reuse snapshots */
    printf("%-17s %.1f KiB recurrent (%.1f KiB per sequence in a context: live, checkpoint and "
           "2 prefix snapshots)\n", "state per seq", per_layer * (double)n_rec / 1024.0,
           4.0 * per_layer * (double)n_rec / 1024.0);
}

/* ---- text output ------------------------------------------------------------------------ */

/* "-" for an absent string. */
static ob_str dash(ob_str s) { return s.ptr ? s : (ob_str){"-", 1}; }

static void print_int_line(const char *label, int64_t v) {
    if (v >= 0) printf("%-17s %" PRId64 "\n", label, v);
    else printf("%-17s -\n", label);
}

/* Prints a string value for people: quoted, control bytes escaped, clipped at `max`. */
static void print_str(ob_str s, size_t max) {
    putchar('"');
    for (size_t i = 0; i < s.len && i < max; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (s.len > max) printf("... (%zu bytes)", s.len);
}

static void print_summary(const gguf_file *f, const type_mix *mix) {
    ob_str arch = str_key(f, "general.architecture");
    ob_str name = str_key(f, "general.name");
    printf("%-17s %s\n", "file", gguf_name(f));
    printf("%-17s %u\n", "gguf version", gguf_version(f));
    printf("%-17s %zu bytes (%.1f MiB)\n", "size", gguf_file_size(f),
           gguf_file_size(f) / 1048576.0);
    printf("%-17s %.*s\n", "architecture", OB_STR_FMT(dash(arch)));
    printf("%-17s %.*s\n", "name", OB_STR_FMT(dash(name)));
    printf("%-17s %" PRId64 " (%.2f M)\n", "parameters", mix->params, mix->params / 1e6);
    const int64_t n_exp = arch_int(f, arch, "expert_count");
    if (n_exp > 0) {
        const int64_t active = active_params(f, arch, mix->params);
        printf("%-17s %" PRId64 ", %" PRId64 " used per token\n", "experts", n_exp,
               arch_int(f, arch, "expert_used_count"));
        printf("%-17s %" PRId64 " (%.2f M) per token\n", "active params", active, active / 1e6);
    }
    uint32_t ft;
    if (gguf_kv_find(f, "general.file_type") && !gguf_get_u32(f, "general.file_type", &ft, NULL))
        printf("%-17s %s (%u)\n", "file type", file_type_name(ft), ft);
    else printf("%-17s -\n", "file type");
    printf("%-17s %" PRId64 " tensors, %" PRIu64 " bytes\n", "tensors", gguf_tensor_count(f),
           mix->total_bytes);
    for (uint32_t t = 0; t < OB_QTYPE_COUNT; t++)
        if (mix->count[t])
            printf("  %-15s %6" PRId64 " tensors %14" PRIu64 " bytes\n", gguf_qtype_name(t),
                   mix->count[t], mix->bytes[t]);
    print_int_line("context length", arch_int(f, arch, "context_length"));
    print_int_line("embedding size", arch_int(f, arch, "embedding_length"));
    print_int_line("layers", arch_int(f, arch, "block_count"));
    print_int_line("heads", arch_int(f, arch, "attention.head_count"));
    print_int_line("kv heads", arch_int(f, arch, "attention.head_count_kv"));
    print_recurrent(f, arch);
    print_int_line("vocab size", vocab_size(f, arch));
    ob_str model = str_key(f, "tokenizer.ggml.model"), pre = str_key(f, "tokenizer.ggml.pre");
    printf("%-17s %.*s (pre: %.*s)\n", "tokenizer", OB_STR_FMT(dash(model)), OB_STR_FMT(dash(pre)));
    printf("%-17s %s\n", "chat template",
           gguf_kv_find(f, "tokenizer.chat_template") ? "present" : "absent");
    printf("%-17s %zu (data at byte offset %zu)\n", "alignment", gguf_alignment(f),
           gguf_data_offset(f));
}

static void print_tensors(const gguf_file *f) {
    printf("\n%-48s %-8s %-28s %14s\n", "tensor", "type", "shape", "bytes");
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[128];
        size_t n = 0;
        shape[0] = '\0';
        for (uint32_t d = 0; d < t->n_dims && n < sizeof shape; d++)
            n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%" PRId64, d ? ", " : "[",
                                  t->ne[d]);
        if (n < sizeof shape - 1) strcat(shape, "]");
        printf("%-48.*s %-8s %-28s %14zu\n", OB_STR_FMT(t->name), gguf_qtype_name(t->type), shape,
               t->nbytes);
    }
}

/* ---- metadata values -------------------------------------------------------------------- */

/* A scalar pair seen as a one-element array, so one set of element readers serves both. */
static gguf_kv as_array(const gguf_kv *kv) {
    if (kv->type == GGUF_VTYPE_ARRAY) return *kv;
    gguf_kv v = *kv;
    v.arr_type = kv->type;
    v.arr_len = 1;
    return v;
}

/* Element i of a (viewed) array, printed for people. */
static void print_elem(const gguf_kv *a, uint64_t i) {
    switch (a->arr_type) {
    case GGUF_VTYPE_STRING: print_str(gguf_arr_str(a, i), 200); break;
    case GGUF_VTYPE_FLOAT32: case GGUF_VTYPE_FLOAT64: printf("%.9g", gguf_arr_f64(a, i)); break;
    case GGUF_VTYPE_BOOL: fputs(gguf_arr_i64(a, i) ? "true" : "false", stdout); break;
    case GGUF_VTYPE_UINT64: printf("%" PRIu64, (uint64_t)gguf_arr_i64(a, i)); break;
    default: printf("%" PRId64, gguf_arr_i64(a, i)); break;
    }
}

static void print_kvs(const gguf_file *f) {
    printf("\n%-44s %-10s %s\n", "key", "type", "value");
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (kv->type == GGUF_VTYPE_STRING) {
            printf("%-44.*s %-10s ", OB_STR_FMT(kv->key), "str");
            print_str(kv->str, 200);
            putchar('\n');
            continue;
        }
        gguf_kv a = as_array(kv);
        if (kv->type != GGUF_VTYPE_ARRAY) {
            printf("%-44.*s %-10s ", OB_STR_FMT(kv->key), gguf_vtype_name(kv->type));
            print_elem(&a, 0);
            putchar('\n');
            continue;
        }
        char type[24];
        snprintf(type, sizeof type, "arr[%s]", gguf_vtype_name(kv->arr_type));
        printf("%-44.*s %-10s len %" PRIu64 ": [", OB_STR_FMT(kv->key), type, kv->arr_len);
        for (uint64_t j = 0; j < kv->arr_len && j < 8; j++) {
            if (j) fputs(", ", stdout);
            print_elem(&a, j);
        }
        puts(kv->arr_len > 8 ? ", ...]" : "]");
    }
}

/* ---- JSON ------------------------------------------------------------------------------- */

/* A string as JSON: a JSON string when it is valid UTF-8 without NUL bytes, otherwise
 * {"hex": "..."} so no byte is lost or altered. */
static json_t *json_bytes(ob_str s) {
    json_t *j = memchr(s.ptr ? s.ptr : "", 0, s.len) ? NULL : json_stringn(s.ptr ? s.ptr : "", s.len);
    if (j) return j;
    static const char HEX[] = "0123456789abcdef";
    json_t *o = json_object();
    char *hex = malloc(s.len * 2 + 1);
    if (!o || !hex) {
        free(hex);
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; i < s.len; i++) {
        hex[2 * i] = HEX[(unsigned char)s.ptr[i] >> 4];
        hex[2 * i + 1] = HEX[(unsigned char)s.ptr[i] & 15];
    }
    hex[2 * s.len] = '\0';
    json_object_set_new(o, "hex", json_string(hex));
    free(hex);
    return o;
}

/* Element i as JSON. Non-finite floats become "nan"/"inf"/"-inf" (JSON has no such numbers);
 * u64 values above INT64_MAX become decimal strings (jansson integers are signed 64-bit). */
static json_t *json_elem(const gguf_kv *a, uint64_t i) {
    switch (a->arr_type) {
    case GGUF_VTYPE_STRING: return json_bytes(gguf_arr_str(a, i));
    case GGUF_VTYPE_BOOL: return json_boolean(gguf_arr_i64(a, i) != 0);
    case GGUF_VTYPE_FLOAT32: case GGUF_VTYPE_FLOAT64: {
        double v = gguf_arr_f64(a, i);
        if (isnan(v)) return json_string("nan");
        if (isinf(v)) return json_string(v > 0 ? "inf" : "-inf");
        return json_real(v);
    }
    case GGUF_VTYPE_UINT64: {
        uint64_t v = (uint64_t)gguf_arr_i64(a, i);
        if (v <= INT64_MAX) return json_integer((json_int_t)v);
        char buf[24];
        snprintf(buf, sizeof buf, "%" PRIu64, v);
        return json_string(buf);
    }
    default: return json_integer((json_int_t)gguf_arr_i64(a, i));
    }
}

static json_t *json_kvs(const gguf_file *f) {
    json_t *list = json_array();
    for (int64_t i = 0; list && i < gguf_kv_count(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        gguf_kv a = as_array(kv);
        json_t *o = json_object();
        json_object_set_new(o, "key", json_bytes(kv->key));
        json_object_set_new(o, "type", json_string(gguf_vtype_name(kv->type)));
        if (kv->type == GGUF_VTYPE_STRING) {
            json_object_set_new(o, "value", json_bytes(kv->str));
        } else if (kv->type != GGUF_VTYPE_ARRAY) {
            json_object_set_new(o, "value", json_elem(&a, 0));
        } else {
            json_t *vals = json_array();
            for (uint64_t j = 0; j < kv->arr_len; j++) json_array_append_new(vals, json_elem(&a, j));
            json_object_set_new(o, "elem_type", json_string(gguf_vtype_name(kv->arr_type)));
            json_object_set_new(o, "length", json_integer((json_int_t)kv->arr_len));
            json_object_set_new(o, "value", vals);
        }
        json_array_append_new(list, o);
    }
    return list;
}

static json_t *json_tensors(const gguf_file *f) {
    json_t *list = json_array();
    for (int64_t i = 0; list && i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        json_t *shape = json_array();
        for (uint32_t d = 0; d < t->n_dims; d++) json_array_append_new(shape, json_integer(t->ne[d]));
        json_array_append_new(list, json_pack("{s:o, s:s, s:i, s:o, s:I, s:I}", "name",
                                              json_bytes(t->name), "type", gguf_qtype_name(t->type),
                                              "type_id", (int)t->type, "shape", shape, "offset",
                                              (json_int_t)t->offset, "bytes", (json_int_t)t->nbytes));
    }
    return list;
}

/* A string key as JSON, or null. */
static json_t *json_str_key(const gguf_file *f, const char *key) {
    ob_str s = str_key(f, key);
    return s.ptr ? json_bytes(s) : json_null();
}

static json_t *json_int_or_null(int64_t v) { return v >= 0 ? json_integer(v) : json_null(); }

static json_t *json_summary(const gguf_file *f, const type_mix *mix) {
    ob_str arch = str_key(f, "general.architecture");
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(gguf_name(f)));
    json_object_set_new(o, "gguf_version", json_integer(gguf_version(f)));
    json_object_set_new(o, "file_size", json_integer((json_int_t)gguf_file_size(f)));
    json_object_set_new(o, "alignment", json_integer((json_int_t)gguf_alignment(f)));
    json_object_set_new(o, "data_offset", json_integer((json_int_t)gguf_data_offset(f)));
    json_object_set_new(o, "architecture", json_str_key(f, "general.architecture"));
    json_object_set_new(o, "name", json_str_key(f, "general.name"));
    json_object_set_new(o, "parameters", json_integer(mix->params));
    json_object_set_new(o, "parameters_active", json_integer(active_params(f, arch, mix->params)));
    json_object_set_new(o, "expert_count", json_int_or_null(arch_int(f, arch, "expert_count")));
    json_object_set_new(o, "expert_used_count",
                        json_int_or_null(arch_int(f, arch, "expert_used_count")));
    uint32_t ft;
    if (gguf_kv_find(f, "general.file_type") && !gguf_get_u32(f, "general.file_type", &ft, NULL))
        json_object_set_new(o, "file_type", json_pack("{s:i, s:s}", "id", (int)ft, "name",
                                                      file_type_name(ft)));
    else json_object_set_new(o, "file_type", json_null());
    json_object_set_new(o, "context_length", json_int_or_null(arch_int(f, arch, "context_length")));
    json_object_set_new(o, "embedding_length", json_int_or_null(arch_int(f, arch, "embedding_length")));
    json_object_set_new(o, "block_count", json_int_or_null(arch_int(f, arch, "block_count")));
    json_object_set_new(o, "head_count", json_int_or_null(arch_int(f, arch, "attention.head_count")));
    json_object_set_new(o, "head_count_kv",
                        json_int_or_null(arch_int(f, arch, "attention.head_count_kv")));
    json_object_set_new(o, "vocab_size", json_int_or_null(vocab_size(f, arch)));
    json_object_set_new(o, "tokenizer_model", json_str_key(f, "tokenizer.ggml.model"));
    json_object_set_new(o, "tokenizer_pre", json_str_key(f, "tokenizer.ggml.pre"));
    json_object_set_new(o, "chat_template",
                        json_boolean(gguf_kv_find(f, "tokenizer.chat_template") != NULL));
    json_object_set_new(o, "kv_count", json_integer(gguf_kv_count(f)));
    json_object_set_new(o, "tensor_count", json_integer(gguf_tensor_count(f)));
    json_object_set_new(o, "tensor_bytes", json_integer((json_int_t)mix->total_bytes));
    json_t *types = json_object();
    for (uint32_t t = 0; t < OB_QTYPE_COUNT; t++)
        if (mix->count[t])
            json_object_set_new(types, gguf_qtype_name(t),
                                json_pack("{s:I, s:I}", "count", (json_int_t)mix->count[t], "bytes",
                                          (json_int_t)mix->bytes[t]));
    json_object_set_new(o, "tensor_types", types);
    return o;
}

static int print_json(const gguf_file *f, const type_mix *mix, const cli_info_args *o) {
    json_t *root = json_summary(f, mix);
    if (root && o->kv) json_object_set_new(root, "kv", json_kvs(f));
    if (root && o->tensors) json_object_set_new(root, "tensors", json_tensors(f));
    int rc = root && json_dumpf(root, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) == 0;
    json_decref(root);
    if (!rc) {
        fprintf(stderr, "outboard info: %s: could not build the JSON output\n", o->path);
        return 1;
    }
    putchar('\n');
    return 0;
}

/* ---- command --------------------------------------------------------------------------- */

static void usage(FILE *to) {
    fprintf(to, "usage: outboard info [--tensors] [--kv] [--json] MODEL.gguf\n\n"
                "Describes a GGUF model: architecture, size, quantization mix, hyperparameters,\n"
                "tokenizer.\n"
                "  --tensors  list every tensor (name, type, shape, bytes)\n"
                "  --kv       list every metadata key with its type and value\n"
                "  --json     print as one JSON object (with --kv: full array values)\n");
}

int cli_cmd_info(int argc, char **argv) {
    cli_info_args o;
    ob_err err = {{0}};
    if (cli_info_args_parse(argc, argv, &o, &err)) {
        fprintf(stderr, "outboard info: %s\n", err.msg);
        usage(stderr);
        return 2;
    }
    if (o.help) {
        usage(stdout);
        return 0;
    }
    gguf_file *f = NULL;
    char *path = cli_model_path("info", o.path);
    if (!path) return 1;
    ob_status st = gguf_open_set(path, &f, &err); /* a split set: all its tensors */
    ob_free(path);
    if (st != OB_OK) {
        fprintf(stderr, "outboard info: %s\n", err.msg); /* the message names the file */
        return 1;
    }
    type_mix mix;
    count_types(f, &mix);
    int rc = 0;
    if (o.json) {
        rc = print_json(f, &mix, &o);
    } else {
        print_summary(f, &mix);
        if (o.kv) print_kvs(f);
        if (o.tensors) print_tensors(f);
    }
    gguf_close(f);
    return rc;
}
