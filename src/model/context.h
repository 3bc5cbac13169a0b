/*
 * The inside of an ob_context, shared by context.c (creation, sequence operations) and
 * decode.c (ob_decode, ob_eval and their logits).
 */
#ifndef OB_MODEL_CONTEXT_H
#define OB_MODEL_CONTEXT_H

#include "model/kv_pool.h"
#include "model/model.h"
#include "model/ring_park.h"
#include "model/rs_park.h"

/* One backend of a context and the activations of a pass on it. */
typedef struct model_stage {
    model_backend *be;     /* owned: layers [be->layer_lo, be->layer_hi) */
    struct model_moe_host *moe_host; /* owned, or NULL: the host CPU running the MoE blocks of
                              a device's layers (be->moe_host points here) */
    model_buffers buf;     /* owned: one forward pass of n_batch rows, from be->ops->host_buf
                              when it hands memory out */
} model_stage;

#define MODEL_MAX_STAGES 2 /* the host's layers, then the device's */

struct ob_context {
    ob_model *model;       /* borrowed */
    model_stage stage[MODEL_MAX_STAGES]; /* consecutive layer ranges covering the model:
                              stage 0 embeds the tokens, the last one computes the logits */
    int n_stage;
    model_backend_weights weights; /* the model's weights with this context's progress */
    ob_transfer_stats xfer; /* hidden-state copies between stages, streamed products */
    struct model_stream *stream; /* owned, or NULL: the CPU stage's products of prompt chunks
                              run on a device (stream.h) */
    char placement[192];   /* ob_context_placement */
    double link_gbps, link_latency_us; /* an emulated link (ob_context_params), 0 = none */
    kv_pool *pool;         /* owned: which pool rows hold which sequence's positions */
    int64_t n_ctx, n_batch, kv_size;
    int32_t n_seq;         /* n_seq_max */
    int64_t swa_rows;      /* rows of one sequence's sliding-window ring, 0 = no such layer */
    int64_t *swa_lo;       /* (n_seq) lowest position whose ring row is still intact */
    ring_park *park;       /* owned: freed sequences' rings kept for prefix reuse, or NULL
                              (no sliding-window layers, or no prefix cache) */
    uint64_t *match_hash;  /* (blocks of n_ctx) scratch of ob_seq_attach_prefix, or NULL */
    size_t kv_bytes;       /* K and V cache bytes (model_kv_bytes) plus recurrent state
                              (model_rs_bytes) */
    int64_t *rs_ckpt;      /* (n_seq) with recurrent layers: the position of the state in each
                              sequence's checkpoint slot (its length before its last decode),
                              -1 = none; NULL without recurrent layers */
    rs_park *rs_park;      /* owned with recurrent layers: which backend snapshot (sequence
                              number n_seq + i of rs_copy) holds the state after which prefix */
    int64_t *rs_mark;      /* (n_seq) blocks of a sequence's prompt that matched cached blocks
                              beyond the snapshot it started from: its state there is kept when
                              its prefill passes it (a prefix other prompts share), 0 = none */
    int64_t *rs_snap_at;   /* (2 n_seq) decode scratch: entries after which a sequence's state
                              is kept (decode.c), -1 = none */
    int64_t *rs_snap_id;   /* (2 n_seq) decode scratch: the snapshot each went to, -1 = none */
    bool *rs_stepwise;     /* (n_seq) decode scratch: model_kv_batch.stepwise */
    bool replaying;        /* model_decode_replay's pass: every sequence runs stepwise */
    float *logits;         /* (logits_cap / n_vocab, n_vocab) f32: rows of the last decode */
    size_t logits_cap;     /* floats allocated */
    int32_t *entry_row;    /* (entries_cap) logits row of each entry of the last decode, or -1 */
    size_t entries_cap;
    int64_t n_entries;     /* entries of the last successful decode, 0 = no logits */
    bool hidden_rows;      /* the rows of the last decode are hidden states (ob_embed), of
                              n_embd floats, not logits */
    /* scratch of one forward pass, (n_batch) each */
    int32_t *step_pos, *step_seq, *step_slot, *step_out;
    const int32_t **step_blocks;
    int64_t *seq_new;      /* (n_seq) positions a batch adds to each sequence */
    bool (*abort)(void *user); /* ob_context_set_abort, or NULL */
    void *abort_user;
    /* model_context_keep_hidden: every entry's final hidden state after the output norm, the
     * input of a multi-token-prediction drafter (spec_mtp.c) */
    bool keep_hidden;
    float *hidden;         /* (hidden_cap, n_embd) f32: entry i of the last decode in row i */
    int32_t *hidden_seq;   /* (hidden_cap) its sequence */
    int64_t *hidden_pos;   /* (hidden_cap) its position */
    int64_t n_hidden, hidden_cap; /* entries of the last successful decode kept, 0 = none */
};

/* context.c: p checked and its defaults filled in, as ob_context_new does it. */
ob_status model_context_params_check(const ob_model *m, ob_context_params *p, ob_err *err);

/* context.c: bytes of the machine's memory, 0 when the system does not say. */
double model_host_memory(void);

/* context.c: the shape of a context for checked params p over the whole model (weights set). */
void model_context_shape(const ob_model *m, const ob_context_params *p,
                         model_backend_shape *out);

/* context_stages.c: bytes of the activation buffers of a pass of n_batch rows. */
size_t model_buffers_bytes(const model_hparams *hp, int64_t n_batch);

/* plan.c: layers on the device for checked params p other than OB_GPU_LAYERS_AUTO; the
 * placement for any, with shape from model_context_shape. */
int64_t model_plan_gpu_layers(const ob_context_params *p, int64_t n_layer);
ob_status model_plan(const ob_model *m, const ob_context_params *p,
                     const model_backend_shape *shape, ob_plan *out, ob_err *err);

/* plan_stream.c: weight streaming (stream.h) in a plan whose placement, parts and link bytes
 * are set: plan->stream_min_tok (p's, or with OB_STREAM_AUTO the size from which the
 * calibration, or the defaults, say it pays; 0 without a device that streams or host layers),
 * stream_why, device.stream (the buffer), stream_chunk, and link_chunk grown by a streamed
 * chunk's bytes. is_cpu: the device is a CPU implementation, which auto streams to only when
 * it was calibrated. */
void model_plan_stream(const ob_model *m, const ob_context_params *p, bool has_device,
                       bool is_cpu, ob_plan *plan);
/* Whether the backend of device kind `device` ("vulkan", "cuda") streams host weights. */
bool model_plan_streams(const char *device);
/* The largest weight a product of layers [lo, hi) reads: the streaming buffer's size. */
uint64_t model_stream_buffer_bytes(const ob_model *m, int64_t lo, int64_t hi);

/* context_stages.c: the backends of a context for p (the CPU, a device, or the last
 * p->n_gpu_layers layers on the device and the others on the CPU), each with its activation
 * buffers; the shape's weights are set here. */
ob_status model_stages_new(ob_context *c, const ob_context_params *p,
                           const model_backend_shape *shape, ob_err *err);
void model_stages_free(ob_context *c);

/* One forward pass of step s through every stage: embedding on the first, the hidden state
 * copied from each stage to the next (counted in c->xfer), logits on the last, then every
 * stage synchronised. OB_ERR_CANCELLED when s->abort stopped it; a device's failure as it
 * reported it. */
ob_status model_stages_forward(ob_context *c, const model_step *s, ob_err *err);

/* The cache operations of backend.h, on every stage (each holds its layers' part). */
void model_stages_kv_copy(ob_context *c, const kv_copy *copies, int64_t n);
void model_stages_seq_copy(ob_context *c, int32_t src, int32_t dst);
void model_stages_rs_copy(ob_context *c, int32_t src, int src_slot, int32_t dst, int dst_slot);

/* context_stages.c: the monotonic clock in nanoseconds. */
uint64_t model_now_ns(void);

/* context_stages.c: the one path activations take between host and device memory: copies
 * `bytes` from src to dst, then with an emulated link waits until the copy has taken what
 * that link would take, and counts it in c->xfer (to_device: a copy to the device, its time
 * from t0, when the caller began waiting for the source; else bytes read back). */
void model_link_copy(ob_context *c, void *dst, const void *src, size_t bytes, bool to_device,
                     uint64_t t0);

/* context_stages.c: counts a streamed product (stream.h) in c->xfer: `over` bytes to the
 * device (weight_bytes of them its weight) and `back` from it, in an op that began at t0, a
 * routed expert's when `expert`; with an emulated link, first waits what the link would take
 * for each. */
void model_link_shipped(ob_context *c, uint64_t over, uint64_t back, uint64_t weight_bytes,
                        bool expert, uint64_t t0);

/* Whether every stage can do what caps asks for (paged_kv). */
bool model_stages_paged(const ob_context *c);

/* decode.c: evaluates n entries (token, pos, seq, want logits), all borrowed: ob_decode's
 * contract (checks, reservation, passes of n_batch, rollback on any error). hidden: the rows
 * kept are the normed final hidden states (n_embd each, for ob_embed), not logits; entry i's
 * row is c->logits + c->entry_row[i] * n_embd. */
ob_status model_decode_run(ob_context *c, const int32_t *tok, const int64_t *pos,
                           const int32_t *seq, const bool *want, int64_t n, bool hidden,
                           ob_err *err);

/* decode.c: from the next decode on (on = true), every entry's final hidden state after the
 * output norm is kept until the decode after it, for model_context_hidden. */
void model_context_keep_hidden(ob_context *c, bool on);

/* decode.c: the kept hidden state (n_embd floats, valid until the next decode) of sequence
 * seq at position pos in the last successful decode, or NULL when it had no such entry. A
 * truncation leaves it readable. */
const float *model_context_hidden(const ob_context *c, int32_t seq, int64_t pos);

/* decode.c: evaluates tok (n of them, borrowed) at positions from.. of sequence seq, which
 * holds from positions, keeping no rows: the outputs of the last decode (ob_batch_logits)
 * stay as they were, and the abort callback is not asked. For a truncation that must bring a
 * recurrent state forward from a checkpoint. Errors: model_decode_run's (the sequence then
 * holds from positions, as before). */
ob_status model_decode_replay(ob_context *c, int32_t seq, int64_t from, const int32_t *tok,
                              int64_t n, ob_err *err);

#endif
