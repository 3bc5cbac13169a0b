/*
 * Matrix products of quantized weights by F32 activations: y = x W^T, the op that holds nearly
 * all of a transformer's arithmetic and memory traffic. The activations are converted once to
 * the weight type's vec_dot_type (Q8_0 for Q4_0/Q8_0, F16 for F16, ...), exactly as llama.cpp's
 * CPU backend does, and the rows of W are dealt to the threads in chunks.
 *
 * Decode (one token) streams every weight row once. Prefill (many tokens) walks W in chunks of
 * rows and, inside a chunk, the tokens in tiles, so a weight row is read from memory once and
 * then reused from cache across a tile of tokens; where the quant module offers a kernel that
 * takes several rows and tokens per call, register tiling comes from it. Where the kernel
 * variant has its own activation layout (quant_traits.act_pack), decode uses it.
 */
#ifndef OB_CPU_MATMUL_H
#define OB_CPU_MATMUL_H

#include "cpu/pool.h"
#include "quant/quant.h"

#include <stddef.h>
#include <stdint.h>

/* A weight matrix as the model binds it from the file (borrowed from the mapping). */
typedef struct cpu_weight {
    const char *name;         /* tensor name, for messages */
    const void *data;         /* (n_out rows, row_size bytes) of `type` */
    uint32_t type;            /* ob_qtype */
    int64_t n_in, n_out;      /* ne[0] (row length), ne[1] (rows) */
    size_t row_size;          /* bytes per row */
    const quant_traits *qt;   /* kernels for this CPU */
    const quant_traits *act;  /* traits of qt->vec_dot_type (converts activations) */
    size_t act_row_size;      /* bytes of one activation row in vec_dot_type */
    size_t pack_row_size;     /* bytes of one packed activation row (qt->act_pack), 0 if none */
    const void *rp;           /* (n_out / qt->rp_rows groups of rp_group bytes) the rows
                                 repacked for qt->rp_dot (repack.c, shared), or NULL */
    size_t rp_group;          /* bytes of one repacked group */
    size_t rp_act_row_size;   /* bytes of one activation row from qt->rp_act */
} cpu_weight;

/* Fills w's kernel fields from its type (and repacks it, see cpu_weight_repack: the data's
 * owner must call cpu_weight_release(w->data) before freeing it). OB_ERR_UNSUPPORTED naming
 * the tensor when the quant module has no kernels for the type; OB_ERR_FORMAT when n_in does
 * not fit its blocks. */
ob_status cpu_weight_init(cpu_weight *w, ob_err *err);

/* Gives w a repacked copy of its rows when its kernels have a repacked layout and n_out
 * fits it (repack.c); copies are shared by weights bound to the same data. Leaves w->rp NULL
 * (the file's layout is then used) when the layout does not apply, memory is short, or the
 * environment sets OB_REPACK=0. Called by cpu_weight_init. */
void cpu_weight_repack(cpu_weight *w);

/* Frees the repacked copy made from `data`, if any: the owner of the weight data calls it for
 * each tensor before the data goes away; every cpu_weight bound to it is then invalid. */
void cpu_weight_release(const void *data);

/* Bytes of scratch cpu_matmul needs for n_tok activation rows. */
size_t cpu_matmul_wsize(const cpu_weight *w, int64_t n_tok);

/* y (n_tok, n_out) f32 = x (n_tok, n_in) f32 times W^T. wsp: cpu_matmul_wsize bytes, aligned
 * to 64 (holds x converted to vec_dot_type). */
void cpu_matmul(cpu_pool *pool, float *y, const cpu_weight *w, const float *x, int64_t n_tok,
                void *wsp);

/* One product of cpu_matmul_many: y (n_tok, w->n_out) = x (n_tok, w->n_in) W^T. */
typedef struct cpu_matmul_job {
    float *y;
    const cpu_weight *w;
    const float *x;
    int64_t n_tok;
} cpu_matmul_job;

/* Bytes of scratch cpu_matmul_many needs for these jobs. */
size_t cpu_matmul_many_wsize(const cpu_matmul_job *jobs, int n);

/* n independent products, each exactly as cpu_matmul computes it, in a few passes of the pool
 * instead of one or two per product: the threads take chunks of the first job's rows, then of
 * the next, and so on, so many small products (a mixture of experts' chosen experts) pay for
 * one wake-up and one barrier together. wsp: cpu_matmul_many_wsize bytes, aligned to 64. */
void cpu_matmul_many(cpu_pool *pool, const cpu_matmul_job *jobs, int n, void *wsp);

/* out (n, n_in) f32 = rows ids[0..n) of W, dequantized (the token embedding lookup). The
 * caller has checked 0 <= ids[i] < n_out. */
void cpu_get_rows(const cpu_weight *w, const int32_t *ids, int64_t n, float *out);

#endif
