/*
 * `outboard quantize [options] IN.gguf OUT.gguf TYPE`: converts a model (F32 / F16 / BF16
 * weights) to a quantization preset such as Q4_K_M (src/quant/mix.h picks each tensor's type),
 * copying every metadata pair and setting general.file_type. TYPE F32 / F16 / BF16 converts the
 * other way (a quantized model is dequantized).
 *
 * Memory stays bounded whatever the model size: the input is mapped, tensors are converted a
 * chunk of rows at a time (each worker thread takes a share of the chunk) and the results go to
 * an unlinked scratch file; the GGUF writer then reads them back through a mapping of that file
 * while it writes OUT, so no tensor is ever held whole in anonymous memory.
 */
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/alloc.h"
#include "core/err.h"
#include "gguf/gguf.h"
#include "quant/mix.h"
#include "quant/quant.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define QZ_CHUNK_FLOATS ((int64_t)1 << 22) /* source elements per worker per chunk (16 MiB f32) */
#define QZ_NO_OFFSET    UINT64_MAX

/* One tensor of the output: where its bytes come from. */
typedef struct qz_plan {
    const gguf_tensor *src;
    uint32_t type;    /* output type */
    size_t nbytes;    /* output bytes */
    uint64_t tmp_off; /* offset of the converted bytes in the scratch file, or QZ_NO_OFFSET when
                         the input bytes are copied unchanged */
} qz_plan;

/* One worker's share of a chunk: rows [0, rows) of src converted into dst. */
typedef struct qz_job {
    const quant_traits *from, *to;
    const uint8_t *src; /* (rows, src_row bytes) */
    size_t src_row;
    uint8_t *dst; /* (rows, dst_row bytes) */
    size_t dst_row;
    int64_t ne0, rows;
    float *scratch; /* (ne0) f32 */
} qz_job;

static void usage(FILE *to) {
    fprintf(to, "usage: outboard quantize [options] IN.gguf OUT.gguf TYPE\n\n"
                "  TYPE is a preset:");
    for (size_t i = 0; i < quant_preset_count(); i++)
        fprintf(to, " %s", quant_preset_at(i)->name);
    fprintf(to, "\n\n"
                "  -t, --threads N       worker threads (default 2)\n"
                "      --pure            every weight gets TYPE's base type (no per-tensor rules)\n"
                "      --allow-requantize  convert already-quantized tensors to another type\n"
                "  -q, --quiet           no per-tensor progress lines\n");
}

/* ---- per-tensor type choice ---------------------------------------------------------------- */

/* Model facts the presets use, read from "<arch>.*" keys; absent or odd-typed keys (per-layer
 * head counts, for instance) leave the defaults. */
static quant_mix_model model_facts(const gguf_file *f) {
    quant_mix_model m = {.n_layer = 1, .n_gqa = 1, .n_expert = 0, .tied_embeddings = false};
    ob_str arch;
    char key[256];
    uint32_t v, heads = 0, kv_heads = 0;
    m.tied_embeddings = gguf_tensor_find(f, "output.weight") == NULL;
    if (gguf_get_str(f, "general.architecture", &arch, NULL) != OB_OK || arch.len > 128) return m;
    snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
    if (gguf_get_u32(f, key, &v, NULL) == OB_OK) m.n_layer = v;
    snprintf(key, sizeof key, "%.*s.attention.head_count", (int)arch.len, arch.ptr);
    if (gguf_get_u32(f, key, &v, NULL) == OB_OK) heads = v;
    snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)arch.len, arch.ptr);
    if (gguf_get_u32(f, key, &v, NULL) == OB_OK) kv_heads = v;
    if (heads && kv_heads && heads % kv_heads == 0) m.n_gqa = heads / kv_heads;
    snprintf(key, sizeof key, "%.*s.expert_count", (int)arch.len, arch.ptr);
    if (gguf_get_u32(f, key, &v, NULL) == OB_OK) m.n_expert = v;
    return m;
}

static bool is_float_type(uint32_t t) {
    return t == OB_QTYPE_F32 || t == OB_QTYPE_F16 || t == OB_QTYPE_BF16;
}

/* Decides one tensor's output type; fails when it would need a conversion outboard cannot do
 * or that was not allowed. */
static ob_status plan_tensor(const gguf_tensor *t, const quant_preset *p, const quant_mix_model *m,
                             const cli_quantize_args *a, qz_plan *out, ob_err *err) {
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
    uint32_t type;
    if (a->pure)
        type = quant_mix_quantizable(name, t->n_dims) ? quant_mix_fit_row(p->base_type, t->ne[0])
                                                      : t->type;
    else
        type = quant_mix_tensor_type_ex(p, m, name, -1, t->ne, t->n_dims, t->type);
    out->src = t;
    out->type = type;
    out->tmp_off = QZ_NO_OFFSET;
    out->nbytes = t->nbytes;
    if (type == t->type || t->ne[0] == 0) {
        out->type = t->type;
        return OB_OK;
    }
    const quant_traits *from = quant_traits_ref(t->type), *to = quant_traits_ref(type);
    if (!from || !to || (!to->from_f32 && type != OB_QTYPE_F32))
        return ob_fail(err, OB_ERR_UNSUPPORTED, "tensor '%s': cannot convert %s to %s", name,
                       gguf_qtype_name(t->type), gguf_qtype_name(type));
    if (!is_float_type(t->type) && !is_float_type(type) && !a->allow_requant)
        return ob_fail(err, OB_ERR_ARG,
                       "tensor '%s' is already %s: converting it to %s loses accuracy twice "
                       "(pass --allow-requantize to do it anyway)",
                       name, gguf_qtype_name(t->type), gguf_qtype_name(type));
    return gguf_qtype_row_size(type, t->ne[0], &out->nbytes, err) == OB_OK &&
                   ob_mul_size(out->nbytes, (size_t)(gguf_tensor_nelements(t) / t->ne[0]),
                               &out->nbytes) == 0
               ? OB_OK
               : ob_fail(err, OB_ERR_LIMIT, "tensor '%s': output size overflows", name);
}

/* ---- conversion ---------------------------------------------------------------------------- */

static void *convert_rows(void *arg) {
    qz_job *j = arg;
    for (int64_t r = 0; r < j->rows; r++) {
        const uint8_t *s = j->src + (size_t)r * j->src_row;
        uint8_t *d = j->dst + (size_t)r * j->dst_row;
        const float *f = (const float *)s;
        if (j->from->type != OB_QTYPE_F32) {
            j->from->to_f32(s, j->scratch, j->ne0);
            f = j->scratch;
        }
        if (j->to->type == OB_QTYPE_F32)
            memcpy(d, f, (size_t)j->ne0 * sizeof(float));
        else
            j->to->from_f32(f, d, j->ne0);
    }
    return NULL;
}

/* Writes all of buf at offset off of fd. */
static ob_status pwrite_all(int fd, const uint8_t *buf, size_t n, uint64_t off, ob_err *err) {
    while (n > 0) {
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return ob_fail(err, OB_ERR_IO, "scratch file: write: %s", strerror(errno));
        buf += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return OB_OK;
}

/* Scratch buffers shared by every tensor's conversion, sized for the widest row seen. */
typedef struct qz_work {
    int threads;
    uint8_t *out; /* (threads * chunk rows, dst_row) converted bytes of one chunk */
    size_t out_cap;
    float *scratch;      /* (threads, ne0) f32 rows */
    int64_t scratch_cap; /* floats per thread */
} qz_work;

static ob_status work_reserve(qz_work *w, size_t out_bytes, int64_t ne0, ob_err *err) {
    if (out_bytes > w->out_cap) {
        ob_free(w->out);
        w->out = ob_alloc(out_bytes, 1);
        w->out_cap = w->out ? out_bytes : 0;
    }
    if (ne0 > w->scratch_cap) {
        ob_free(w->scratch);
        w->scratch = ob_alloc((size_t)ne0 * (size_t)w->threads, sizeof(float));
        w->scratch_cap = w->scratch ? ne0 : 0;
    }
    if (!w->out || !w->scratch)
        return ob_fail(err, OB_ERR_NOMEM, "quantize: cannot allocate %zu bytes of buffers",
                       out_bytes);
    return OB_OK;
}

/* Converts one tensor into the scratch file at plan->tmp_off, a chunk of rows at a time. */
static ob_status convert_tensor(const qz_plan *plan, qz_work *w, int fd, ob_err *err) {
    const gguf_tensor *t = plan->src;
    const int64_t ne0 = t->ne[0], nrows = gguf_tensor_nelements(t) / ne0;
    const quant_traits *from = quant_traits_ref(t->type), *to = quant_traits_ref(plan->type);
    const size_t src_row = t->nbytes / (size_t)nrows, dst_row = plan->nbytes / (size_t)nrows;
    int64_t per = QZ_CHUNK_FLOATS / ne0 > 0 ? QZ_CHUNK_FLOATS / ne0 : 1;
    const int64_t chunk = per * w->threads;
    ob_status st = work_reserve(w, (size_t)(chunk < nrows ? chunk : nrows) * dst_row, ne0, err);
    if (st) return st;
    pthread_t tid[CLI_MAX_QUANT_THREADS];
    qz_job jobs[CLI_MAX_QUANT_THREADS];
    for (int64_t r0 = 0; r0 < nrows; r0 += chunk) {
        const int64_t rows = nrows - r0 < chunk ? nrows - r0 : chunk;
        const int64_t share = (rows + w->threads - 1) / w->threads;
        int started = 0;
        for (int k = 0; k < w->threads; k++) {
            const int64_t a = k * share, b = a + share < rows ? a + share : rows;
            jobs[k] = (qz_job){from,
                               to,
                               (const uint8_t *)t->data + (size_t)(r0 + a) * src_row,
                               src_row,
                               w->out + (size_t)a * dst_row,
                               dst_row,
                               ne0,
                               b > a ? b - a : 0,
                               w->scratch + (size_t)k * (size_t)ne0};
        }
        /* Workers 1.. run on their own threads; worker 0 on this one. */
        for (int k = 1; k < w->threads; k++, started++)
            if (jobs[k].rows && pthread_create(&tid[k], NULL, convert_rows, &jobs[k]) != 0) {
                convert_rows(&jobs[k]); /* no thread to spare: do it here */
                jobs[k].rows = 0;
            }
        convert_rows(&jobs[0]);
        for (int k = 1; k <= started; k++)
            if (jobs[k].rows) pthread_join(tid[k], NULL);
        st = pwrite_all(fd, w->out, (size_t)rows * dst_row, plan->tmp_off + (uint64_t)r0 * dst_row,
                        err);
        if (st) return st;
    }
    return OB_OK;
}

/* ---- the command ----------------------------------------------------------------------------- */

typedef struct qz_state {
    cli_quantize_args args;
    const quant_preset *preset;
    gguf_file *in;
    qz_plan *plans; /* (n_tensors) */
    int64_t n_tensors;
    int fd; /* scratch file (unlinked), -1 when none */
    uint64_t tmp_size;
    void *map; /* (tmp_size) mapping of the scratch file, or NULL */
    gguf_writer *w;
} qz_state;

static double mib(uint64_t bytes) {
    return (double)bytes / (1024.0 * 1024.0);
}

/* Plans every tensor and lays the converted ones out in the scratch file. */
static ob_status plan_all(qz_state *s, ob_err *err) {
    const quant_mix_model m = model_facts(s->in);
    s->n_tensors = gguf_tensor_count(s->in);
    s->plans = ob_calloc((size_t)(s->n_tensors ? s->n_tensors : 1), sizeof(qz_plan));
    if (!s->plans) return ob_fail(err, OB_ERR_NOMEM, "quantize: cannot allocate the tensor plan");
    for (int64_t i = 0; i < s->n_tensors; i++) {
        qz_plan *p = &s->plans[i];
        ob_status st = plan_tensor(gguf_tensor_at(s->in, i), s->preset, &m, &s->args, p, err);
        if (st) return st;
        if (p->type != p->src->type) {
            p->tmp_off = s->tmp_size;
            s->tmp_size += (p->nbytes + 63) & ~(uint64_t)63; /* keep mapped tensors aligned */
        }
    }
    return OB_OK;
}

static ob_status open_scratch(qz_state *s, ob_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s.tmp-XXXXXX", s->args.out);
    s->fd = mkstemp(path);
    if (s->fd < 0) return ob_fail(err, OB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    unlink(path); /* the file lives only as long as the descriptor */
    return OB_OK;
}

static void print_progress(const qz_state *s, int64_t i) {
    const qz_plan *p = &s->plans[i];
    const gguf_tensor *t = p->src;
    fprintf(stderr, "[%4lld/%4lld] %-40.*s %-6s -> %-6s [%6lld x %6lld] %8.2f MiB -> %8.2f MiB\n",
            (long long)i + 1, (long long)s->n_tensors, (int)t->name.len, t->name.ptr,
            gguf_qtype_name(t->type), gguf_qtype_name(p->type), (long long)t->ne[0],
            (long long)(t->n_dims > 1 ? gguf_tensor_nelements(t) / (t->ne[0] ? t->ne[0] : 1) : 1),
            mib(t->nbytes), mib(p->nbytes));
}

static ob_status convert_all(qz_state *s, ob_err *err) {
    qz_work w = {.threads = s->args.threads};
    ob_status st = OB_OK;
    for (int64_t i = 0; i < s->n_tensors && !st; i++) {
        if (!s->args.quiet) print_progress(s, i);
        if (s->plans[i].tmp_off != QZ_NO_OFFSET) st = convert_tensor(&s->plans[i], &w, s->fd, err);
    }
    ob_free(w.out);
    ob_free(w.scratch);
    if (st || s->tmp_size == 0) return st;
    s->map = mmap(NULL, (size_t)s->tmp_size, PROT_READ, MAP_SHARED, s->fd, 0);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        return ob_fail(err, OB_ERR_IO, "scratch file: mmap %llu bytes: %s",
                       (unsigned long long)s->tmp_size, strerror(errno));
    }
    return OB_OK;
}

/* Metadata (all pairs, general.file_type set to the preset's) and the tensors, into s->w. */
static ob_status build_output(qz_state *s, ob_err *err) {
    s->w = gguf_writer_new();
    if (!s->w) return ob_fail(err, OB_ERR_NOMEM, "quantize: cannot allocate the GGUF writer");
    ob_status st = OB_OK;
    for (int64_t i = 0; i < gguf_kv_count(s->in) && !st; i++)
        st = gguf_writer_copy_kv(s->w, gguf_kv_at(s->in, i));
    if (!st) st = gguf_writer_set_u32(s->w, "general.file_type", s->preset->file_type);
    if (!st) st = gguf_writer_set_u32(s->w, "general.quantization_version", 2);
    if (st) return ob_fail(err, st, "%s: copying metadata failed", s->args.out);
    for (int64_t i = 0; i < s->n_tensors; i++) {
        const qz_plan *p = &s->plans[i];
        char name[512];
        snprintf(name, sizeof name, "%.*s", (int)p->src->name.len, p->src->name.ptr);
        const void *data =
            p->tmp_off == QZ_NO_OFFSET ? p->src->data : (const uint8_t *)s->map + p->tmp_off;
        st = gguf_writer_add_tensor(s->w, name, p->type, p->src->n_dims, p->src->ne, data,
                                    p->nbytes, err);
        if (st) return st;
    }
    return OB_OK;
}

static ob_status run(qz_state *s, ob_err *err) {
    ob_status st = gguf_open(s->args.in, &s->in, err);
    if (!st) st = plan_all(s, err);
    if (!st) st = open_scratch(s, err);
    if (!st) st = convert_all(s, err);
    if (!st) st = build_output(s, err);
    if (!st) st = gguf_writer_write(s->w, s->args.out, err);
    return st;
}

static void state_free(qz_state *s) {
    gguf_writer_free(s->w);
    if (s->map) munmap(s->map, (size_t)s->tmp_size);
    if (s->fd >= 0) close(s->fd);
    ob_free(s->plans);
    gguf_close(s->in);
}

int cli_cmd_quantize(int argc, char **argv) {
    qz_state s = {.fd = -1};
    ob_err err = {0};
    if (cli_quantize_args_parse(argc, argv, &s.args, &err)) {
        fprintf(stderr, "outboard quantize: %s\n", err.msg);
        usage(stderr);
        return 2;
    }
    if (s.args.help) {
        usage(stdout);
        return 0;
    }
    s.preset = quant_preset_find(s.args.type);
    if (!s.preset) {
        fprintf(stderr, "outboard quantize: unknown type '%s'\n", s.args.type);
        return usage(stderr), 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ob_status st = run(&s, &err);
    if (st) {
        fprintf(stderr, "outboard quantize: %s\n", err.msg);
        if (s.w) unlink(s.args.out); /* a half-written file is worse than none */
    } else {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        uint64_t in_bytes = 0, out_bytes = 0;
        for (int64_t i = 0; i < s.n_tensors; i++) {
            in_bytes += s.plans[i].src->nbytes;
            out_bytes += s.plans[i].nbytes;
        }
        fprintf(stderr,
                "outboard quantize: %s -> %s (%s): tensors %.2f MiB -> %.2f MiB in %.1f s\n",
                s.args.in, s.args.out, s.preset->name, mib(in_bytes), mib(out_bytes),
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    }
    state_free(&s);
    return st ? 1 : 0;
}
