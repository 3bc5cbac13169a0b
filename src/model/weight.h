/*
 * Weights as the model describes them to backends. The model binds each matrix by name as a
 * view of the mapped file and numbers it in its weight table; it never holds a device's form
 * of a weight. Each backend, when it is created, makes its own form of the weights its layers
 * use (the CPU: kernels and a repacked copy; a GPU: a copy in device memory) and finds it again
 * by that number when an op names the weight.
 */
#ifndef OB_MODEL_WEIGHT_H
#define OB_MODEL_WEIGHT_H

#include "outboard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct model_weight {
    const char *name;   /* tensor name, for messages */
    const void *data;   /* (n_out rows, row_size bytes) of `type`, borrowed from the mapping */
    uint32_t type;      /* ob_qtype */
    int64_t n_in, n_out; /* ne[0] (row length), ne[1] (rows) */
    size_t row_size;    /* bytes per row */
    int32_t id;         /* its index in the weight table (model_backend_weights.table) */
    int32_t layer;      /* the model layer that reads it; -1 for the token embedding and the
                           output projection */
    bool embed, head;   /* read by the embedding lookup / by the output projection (both for
                           a tied embedding) */
    bool moe;           /* read by its layer's mixture-of-experts block (router, routed
                           experts, shared expert), which may run on another backend */
    bool expert;        /* one routed expert's gate, up or down matrix: a pass multiplies
                           only the rows routed to that expert by it, maybe none */
} model_weight;

/* Which of its layers' weights a backend binds: all of them, or, when a device's layers run
 * their MoE blocks on the host, all but those blocks' (the device) and only those (the host's
 * CPU backend for them). */
typedef enum model_weight_part {
    MODEL_PART_ALL = 0,
    MODEL_PART_NO_MOE,
    MODEL_PART_MOE,
} model_weight_part;

/* One mixture-of-experts feed-forward block: router softmax, top-k, the chosen experts'
 * SwiGLU, their weighted sum, plus the gated shared expert when there is one (cpu/moe.h
 * defines the arithmetic). */
typedef struct model_moe_block {
    int64_t n_expert, n_used; /* experts, and experts per token */
    int64_t n_embd, n_ff;     /* model width; each expert's hidden width */
    bool norm;                /* renormalise the chosen weights to sum 1 */
    float scale;              /* multiplies the chosen weights (1 or 0 = none) */
    model_weight router;      /* [n_embd -> n_expert] */
    /* (n_expert) each, views of the experts' 3-D tensors; the ids of one array are
     * consecutive, so a backend keeps each array as one run of its own weights */
    const model_weight *gate, *up, *down;
    int64_t n_ff_sh;          /* shared expert width, 0 = none */
    model_weight sh_gate, sh_up, sh_down, sh_gate_w;
} model_moe_block;

/* Called with the bytes of weights bound so far and in all; false cancels the creation. */
typedef bool (*model_bind_progress_fn)(uint64_t done, uint64_t total, void *user);

/* What a backend binds when it is created: every weight of the model, by id, of which it
 * takes those its layer range reads (model_weight_wanted). All borrowed for the backend's
 * life. */
typedef struct model_backend_weights {
    const model_weight *const *table; /* (n) table[i]->id == i */
    int64_t n;
    const model_moe_block *const *moe; /* (n_layer of the model) a layer's MoE block or NULL;
                                          NULL for a dense model */
    model_bind_progress_fn progress;   /* may be NULL */
    void *progress_user;
} model_backend_weights;

/* Whether a backend running `part` of layers [lo, hi) of a model of n_layer layers reads w:
 * its layer is in the range (and w is in the part), or it is the embedding and the range
 * starts the model, or the output projection and the range ends it (not for the MoE part). */
static inline bool model_weight_wanted(const model_weight *w, int64_t lo, int64_t hi,
                                       int64_t n_layer, model_weight_part part) {
    if (part == MODEL_PART_MOE && !w->moe) return false;
    if (part == MODEL_PART_NO_MOE && w->moe) return false;
    if (w->layer >= 0) return w->layer >= lo && w->layer < hi;
    return (w->embed && lo == 0) || (w->head && hi == n_layer);
}

/* Whether w is a matrix product of layers [lo, hi) that weight streaming may run on a device
 * (model/stream.h): a layer's own matrix, which the CPU backend's matmul runs, or a routed
 * expert's, which its MoE op offers to the stream with the rows routed to it (cpu/moe.h); not
 * the embedding or the head, and not a MoE block's router or shared expert (a few rows'
 * worth of work, run inside the MoE op). */
static inline bool model_weight_streamable(const model_weight *w, int64_t lo, int64_t hi) {
    return w->layer >= lo && w->layer < hi && (!w->moe || w->expert);
}

#endif
