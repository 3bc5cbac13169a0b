/*
 * outboard: a local LLM inference library. This is its only public header.
 *
 * Conventions (see DESIGN.md and STYLE.md):
 *  - every public name starts with ob_; handles are opaque;
 *  - a function that can fail on its input returns ob_status and, when the caller passes a
 *    non-NULL ob_err, writes one line into it that names what was wrong (file, key, tensor,
 *    byte offset) with the expected and the actual value;
 *  - whoever calls a _new/_open/_load function calls the matching _free/_close; _free(NULL) is
 *    a no-op.
 */
#ifndef OUTBOARD_H
#define OUTBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OB_VERSION_STRING "0.1.0"

/* Result codes. OB_OK is zero so `if (st) return st;` propagates failures. */
typedef enum ob_status {
    OB_OK = 0,
    OB_ERR_IO,          /* a file or socket operation failed */
    OB_ERR_FORMAT,      /* input is malformed (GGUF, JSON, template, HTTP) */
    OB_ERR_NOMEM,       /* an allocation failed */
    OB_ERR_UNSUPPORTED, /* well-formed but not something outboard runs (arch, tensor type) */
    OB_ERR_LIMIT,       /* a named limit was exceeded (context length, request size) */
    OB_ERR_CUDA,        /* the CUDA runtime reported an error */
    OB_ERR_ARG,         /* the caller passed an invalid argument */
    OB_ERR_NUMERIC,     /* the model computed NaN or infinite values (broken weights or
                           metadata): the message names the model and the position */
    OB_ERR_CANCELLED,   /* the caller's abort callback stopped the operation */
    OB_ERR_DEVICE,      /* a GPU API (Vulkan) reported an error: device lost, out of device
                           memory, a failed submit; the message names the call */
} ob_status;

/* Room for one error line. Callers own it, usually on the stack. */
typedef struct ob_err {
    char msg[512];
} ob_err;

/* A short stable name for a status ("OB_ERR_FORMAT"). Never NULL. */
const char *ob_status_name(ob_status status);

/* ==== models ============================================================================ */

/* A loaded model: weights mapped from a GGUF file, hyperparameters, tokenizer. Read-only after
 * loading, so several contexts (and threads) may share one. */
typedef struct ob_model ob_model;

/* An inference session on a model: a KV cache shared by up to n_seq_max sequences (F16, a pool
 * of kv_size positions in blocks), scratch buffers, a thread pool and the logits of the last
 * evaluated batch. One thread at a time per context. */
typedef struct ob_context ob_context;

/* Load progress in [0, 1]. Return false to cancel: ob_model_load then fails with OB_ERR_ARG. */
typedef bool (*ob_progress_fn)(float progress, void *user);

typedef struct ob_model_params {
    ob_progress_fn progress; /* may be NULL */
    void *progress_user;     /* passed to progress, borrowed */
    bool prefault;           /* read every weight page during load (default true), so the first
                                tokens do not pay for page faults and progress is meaningful */
} ob_model_params;

/* Fills p with the defaults. */
void ob_model_params_init(ob_model_params *p);

/* Maps and checks a GGUF model. Errors: OB_ERR_IO (file), OB_ERR_FORMAT (a key or tensor is
 * missing or has the wrong shape or type: the message names it, expected and actual),
 * OB_ERR_UNSUPPORTED (architecture or tensor type outboard does not run, named). params may be
 * NULL for the defaults. *out is owned by the caller: ob_model_free. */
ob_status ob_model_load(const char *path, const ob_model_params *params, ob_model **out,
                        ob_err *err);
void ob_model_free(ob_model *m);

typedef struct ob_model_info {
    const char *arch;      /* "llama"; borrowed from the model */
    const char *name;      /* general.name, or "" */
    const char *type_name; /* the type most weight bytes are in ("Q4_0") */
    int64_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    uint64_t n_params;     /* elements of all tensors */
    uint64_t n_bytes;      /* bytes of all tensors */
    float rope_freq_base;
    int32_t bos_id, eos_id; /* tokenizer.ggml.bos/eos_token_id, -1 when absent */
} ob_model_info;

/* Fills *out; strings live as long as the model. */
void ob_model_get_info(const ob_model *m, ob_model_info *out);

/* What the loader ignored or repaired in the file's metadata (a special token id outside the
 * vocabulary, a token type that means nothing, ...), one line each ending in '\n'; "" when
 * nothing. Programs print it after loading. Lives as long as the model. */
const char *ob_model_warnings(const ob_model *m);

/* ==== text ============================================================================== */

/* text (len bytes of UTF-8) -> token ids with the model's own tokenizer. add_special: BOS/EOS
 * as the vocabulary asks; parse_special: special-token text ("<|im_start|>") becomes that
 * token. *ids is new (ob_tokens_free). OB_ERR_UNSUPPORTED when the model has no usable
 * tokenizer (the message says why). */
ob_status ob_tokenize(const ob_model *m, const char *text, size_t len, bool add_special,
                      bool parse_special, int32_t **ids, size_t *n_ids, ob_err *err);
void ob_tokens_free(int32_t *ids);

/* Fill-in-the-middle tokens for code completion: tokenizer.ggml.fim_*_token_id, else the
 * vocabulary's known texts (<|fim_prefix|>, <fim_prefix>, <PRE>, ...); -1 when absent. A
 * model can fill in the middle when pre, suf and mid are all present. */
typedef struct ob_fim_tokens {
    int32_t pre, suf, mid; /* before the prefix, before the suffix, where the middle goes */
    int32_t pad, rep, sep; /* padding; repository name; file separator (repo-level prompts) */
} ob_fim_tokens;

void ob_model_fim_tokens(const ob_model *m, ob_fim_tokens *out);

/* Whether id ends generation (EOS, EOT and the like). */
bool ob_token_is_eog(const ob_model *m, int32_t id);

/* Streaming detokenizer: push ids, get complete UTF-8 (a character split across tokens is held
 * back until whole). Borrows the model. render_special: write control tokens' text. */
typedef struct ob_detok ob_detok;
ob_status ob_detok_new(const ob_model *m, bool render_special, ob_detok **out, ob_err *err);
/* The stream continues a prompt: keep the leading space of the first token. */
void ob_detok_continue(ob_detok *d);
/* Bytes written to out (at most cap; the rest stays queued for the next call). */
size_t ob_detok_push(ob_detok *d, int32_t id, char *out, size_t cap);
size_t ob_detok_flush(ob_detok *d, char *out, size_t cap);
void ob_detok_free(ob_detok *d);

/* ==== contexts ========================================================================== */

/* Where a context runs its layers. */
typedef enum ob_device {
    OB_DEVICE_CPU = 0, /* the default */
    OB_DEVICE_CUDA,    /* the first CUDA device; ob_context_new fails when there is none */
    OB_DEVICE_AUTO,    /* CUDA when a device is present, else a discrete Vulkan GPU, else the
                          CPU */
    OB_DEVICE_VULKAN,  /* a Vulkan device (device_index; -1 = the first GPU, CPU
                          implementations such as lavapipe only by index) */
} ob_device;

/* Where the routed experts of the mixture-of-experts layers placed on a GPU live. */
typedef enum ob_experts {
    OB_EXPERTS_AUTO = 0, /* on the device when its backend runs MoE blocks and the layers fit
                            the budget with them; else on the host (the default) */
    OB_EXPERTS_DEVICE,   /* on the device; refused where its backend has no MoE kernels for
                            the model (Vulkan runs blocks without a shared expert; CUDA none) */
    OB_EXPERTS_HOST,     /* on the host: the device runs attention, norms and the KV cache,
                            and each layer's MoE block (router, experts, shared expert) runs on
                            the CPU, its normed input rows and its output crossing the link */
} ob_experts;

typedef struct ob_context_params {
    int64_t n_ctx;   /* positions one sequence may use (<= the trained context); 0 = the
                        model's training context, capped at 4096 */
    int64_t n_batch; /* tokens per forward pass; longer inputs are evaluated in pieces (512) */
    int n_threads;   /* 0 = the machine's physical cores */
    ob_device device; /* OB_DEVICE_CPU unless asked */
    int device_index; /* which CUDA or Vulkan device (`outboard devices`); -1 = the default */
    int32_t n_seq_max; /* sequences that may hold cache at once, ids 0..n_seq_max-1 (1); the
                          CUDA device runs 1 for now */
    int64_t kv_size; /* positions in the shared KV pool (0 = n_ctx), rounded up to whole
                        blocks: any one sequence may use up to n_ctx of them while the pool
                        has room */
    int64_t n_gpu_layers; /* with a GPU device: the last this-many layers run on it, the
                             others (and the token embedding) on the CPU, only the hidden
                             state crossing between them; -1 = all of them (the default),
                             0 = none (the CPU alone), OB_GPU_LAYERS_AUTO = as many as
                             vram_budget holds (ob_plan_context) */
    uint64_t vram_budget; /* bytes of device memory the layers placed there may use (weights,
                             KV cache, recurrent state, activations); 0 = the device's memory
                             less a reserve */
    double link_gbps;     /* > 0: emulate a host<->device link of this many GB/s (a Thunderbolt
                             cable is about 3): each copy of a pass takes at least its bytes
                             at that rate plus link_latency_us; 0 = as fast as it goes */
    double link_latency_us;
    ob_experts experts;   /* the MoE blocks of the device's layers (OB_EXPERTS_AUTO) */
    int64_t stream_min_tok; /* weight streaming: with a GPU device, a forward pass of at least
                               this many rows (a prompt chunk) runs the matrix products of the
                               CPU's layers on the device, each product's weight, input rows and
                               output rows crossing the link, the rest of those layers (norms,
                               attention, cache) staying on the CPU; 0 = never,
                               OB_STREAM_AUTO (the default) = from the size where the plan
                               predicts it is faster than the CPU (ob_plan.stream_min_tok) */
    ob_progress_fn progress; /* preparing the weights (repacking, or uploading to a device),
                                per backend from 0 to 1; false cancels; may be NULL */
    void *progress_user;
} ob_context_params;

#define OB_GPU_LAYERS_AUTO (-2)
#define OB_STREAM_AUTO (-1)

void ob_context_params_init(ob_context_params *p);

/* What one backend of a context would hold: its layers [layer_lo, layer_hi) (empty when
 * equal) and the bytes of each kind of memory it allocates for them. */
typedef struct ob_plan_part {
    char device[16];          /* "cpu", "vulkan" or "cuda" */
    int64_t layer_lo, layer_hi;
    uint64_t weights;         /* the weights its layers read (the CPU's repacked copies share
                                 the model's pages; the figure is the tensors' bytes) */
    uint64_t kv;              /* F16 K and V cache of its attention layers */
    uint64_t state;           /* recurrent state of its DeltaNet layers */
    uint64_t activations;     /* one forward pass of n_batch rows */
    uint64_t stream;          /* device only, with weight streaming: the buffer a host weight is
                                 shipped into, one product at a time (the largest of them) */
} ob_plan_part;

typedef struct ob_plan {
    ob_plan_part host, device; /* the device part is empty without a GPU device */
    ob_plan_part experts;     /* with experts_on_host: the host's share of the device's layers,
                                 their MoE blocks (weights: router, experts and shared expert;
                                 activations: the rows crossing and the CPU's expert scratch);
                                 else empty */
    bool experts_on_host;     /* the device's layers run their MoE blocks on the host */
    int64_t n_layer, n_gpu_layers;
    uint64_t budget;          /* device bytes the placement was given, 0 = none */
    uint64_t link_token;      /* bytes crossing host<->device per decoded token */
    uint64_t link_chunk;      /* ... per prompt chunk of n_batch tokens (one logits row),
                                 streamed weights and their rows included when such a chunk
                                 streams */
    int64_t stream_min_tok;   /* passes of at least this many rows stream the host's layers'
                                 products to the device (ob_context_params.stream_min_tok), and
                                 so does each routed expert of the host's that gets this many
                                 rows of a pass; 0 = never (no device, nothing on the host, or
                                 never faster) */
    uint64_t stream_chunk;    /* of link_chunk, the host weights shipped per streamed pass */
    uint64_t link_experts;    /* of link_chunk, the routed experts' streamed products (weights
                                 and rows): expected, since the routing picks which experts get
                                 stream_min_tok rows; exact when every token uses every expert */
    uint64_t stream_experts;  /* of stream_chunk and link_experts, those experts' weights */
    char stream_why[160];     /* one line: why streaming starts at that size, or why never */
    char why[256];            /* one line: why this placement */
    char device_key[160];     /* the device by kind, name and driver ("vulkan llvmpipe (...) |
                                 Mesa 22.3.6"), as a calibration names it; "" without one */
} ob_plan;

/* Predicted speed of a plan on this machine (ob_plan_predict). */
typedef struct ob_plan_speed {
    double prefill_tps;  /* prompt tokens per second, in chunks of n_batch from an empty cache */
    double decode_tps;   /* generated tokens per second of one sequence */
    double decode_s[3];  /* seconds per decoded token: host stage, device stage, link */
    double prefill_s[3]; /* seconds per prompt chunk of n_batch: likewise */
    bool calibrated;     /* every rate was measured here (`outboard plan --calibrate`); false:
                            some are stated defaults */
    char basis[320];     /* one line: where the rates came from (and why a file was ignored) */
} ob_plan_speed;

/* What ob_context_new(m, p) would place where and allocate, computed by the same functions
 * that size the real allocations, without allocating anything or opening a device (the
 * device's memory comes from its properties, or p->vram_budget). With p->n_gpu_layers =
 * OB_GPU_LAYERS_AUTO the most layers whose weights, cache, state and activations fit the
 * budget go to the device. A mixture-of-experts model's device layers keep their MoE blocks
 * on the host as p->experts says (auto: when the device's backend has no MoE kernels, or when
 * not every layer fits with them; then the most layers whose other parts fit go to the
 * device). OB_ERR_UNSUPPORTED for OB_EXPERTS_DEVICE on a backend without MoE kernels;
 * OB_ERR_LIMIT naming the figures when even the CPU alone would not fit the machine's
 * memory. */
ob_status ob_plan_context(const ob_model *m, const ob_context_params *p, ob_plan *out,
                          ob_err *err);

/* The prefill and decode speed of plan (from ob_plan_context(m, p)): per stage, its pass cost
 * (the weight bytes its matrix products read per token over the measured rate for decode, the
 * multiply-adds of a chunk over the measured rate for prefill, plus fixed costs per pass and
 * per layer), plus the bytes crossing the link over its bandwidth and a latency per crossing.
 * Rates come from the calibration file at calib_path (NULL: the user's, `outboard plan
 * --calibrate`); a missing, corrupt or foreign file, or one without this device, thread count
 * or weight type, leaves stated defaults in place (out->calibrated false, out->basis says
 * why). Never fails. */
void ob_plan_predict(const ob_model *m, const ob_context_params *p, const ob_plan *plan,
                     const char *calib_path, ob_plan_speed *out);

/* Allocates the KV cache and buffers and starts the threads. The context borrows the model,
 * which must outlive it. p may be NULL for the defaults. */
ob_status ob_context_new(ob_model *m, const ob_context_params *p, ob_context **out,
                         ob_err *err);
void ob_context_free(ob_context *c);

int64_t ob_context_n_ctx(const ob_context *c);
int64_t ob_context_n_past(const ob_context *c); /* sequence 0's positions in the cache */
int ob_context_n_threads(const ob_context *c);
/* The backend the context runs on: "cpu", "cuda" or "vulkan" (static storage); with layers
 * split between the CPU and a device, the device's. */
const char *ob_context_device(const ob_context *c);

/* Where the layers run, one line: "vulkan: layers 0-17" or "cpu: layers 0-8, vulkan: layers
 * 9-17" (valid for the context's life). */
const char *ob_context_placement(const ob_context *c);

/* What crossed the host<->device link: activations copied to the device (the hidden state
 * from the CPU's layers to the device's, one copy per pass on a split context, and with
 * experts on the host each MoE block's output: how many copies, their bytes, and the time
 * spent in them, waiting for the device included), and activations read back from it (the
 * rows of logits at the end of a pass, and with experts on the host each MoE block's normed
 * input rows); with weight streaming, each streamed product's weight and input rows going
 * over and its output rows coming back. All 0 on the CPU alone. The upload of the device's
 * own layers when the context is made is not counted here. */
typedef struct ob_transfer_stats {
    uint64_t copies, bytes, ns; /* copies to the device */
    uint64_t bytes_back;        /* bytes read back from the device */
    uint64_t weight_bytes;      /* of bytes, host weights shipped for streamed products
                                   (ob_context_params.stream_min_tok) */
    uint64_t streamed;          /* products run on the device that way */
    uint64_t expert_bytes;      /* of bytes and bytes_back, what routed experts' streamed
                                   products sent and read back: which experts stream depends
                                   on the routing (ob_plan.link_experts) */
    uint64_t expert_weight_bytes; /* of weight_bytes, those experts' weights */
} ob_transfer_stats;

void ob_context_transfer_stats(const ob_context *c, ob_transfer_stats *out);

/* The single-sequence calls below (ob_context_truncate, ob_eval, ob_logits) work on sequence
 * 0; the batch calls further down on any. */

/* Forgets sequence 0's cache positions >= n_past (0 clears it), e.g. to reuse a shared prefix.
 * On a model with sliding-window layers the window's ring keeps only the last positions:
 * going back further fails with OB_ERR_LIMIT naming the range allowed. */
ob_status ob_context_truncate(ob_context *c, int64_t n_past, ob_err *err);

/* Evaluates n_tokens tokens at positions n_past.. in one forward pass per n_batch tokens
 * (prefill as matrix-matrix products; one token is decode). Afterwards ob_logits(c, i) holds
 * the logits of token i of this call when all_logits, else only of the last token (i = -1 or
 * n_tokens - 1). Errors: OB_ERR_LIMIT when n_past + n_tokens exceeds n_ctx (the message gives
 * both counts), OB_ERR_ARG for a token id outside the vocabulary (named with its index),
 * OB_ERR_NUMERIC when a kept row of logits holds NaN or an infinity (named with its position).
 * On error the cache is left as it was before the call. */
ob_status ob_eval(ob_context *c, const int32_t *tokens, int64_t n_tokens, bool all_logits,
                  ob_err *err);

/* Logits (n_vocab floats) of token i of the last ob_eval, -1 for the last token; NULL when that
 * token's logits were not kept. Valid until the next ob_eval on this context. */
const float *ob_logits(const ob_context *c, int64_t i);

/* ==== many sequences ==================================================================== */

/* A batch of entries for ob_decode, caller-owned (ob_batch_new / ob_batch_free). Entry i is
 * token[i] at position pos[i] of sequence seq[i]; logits[i] asks for its logits. The arrays
 * have `capacity` entries, the first n in use; fill them with ob_batch_add or directly. */
typedef struct ob_batch {
    int64_t n, capacity;
    int32_t *token; /* (capacity) token ids */
    int64_t *pos;   /* (capacity) position within the sequence */
    int32_t *seq;   /* (capacity) sequence id, 0..n_seq_max-1 */
    bool *logits;   /* (capacity) keep this entry's logits */
} ob_batch;

/* A batch of `capacity` entries (n = 0). *out owned by the caller. OB_ERR_ARG when capacity
 * < 1, OB_ERR_NOMEM. */
ob_status ob_batch_new(int64_t capacity, ob_batch **out, ob_err *err);
void ob_batch_free(ob_batch *b);
void ob_batch_clear(ob_batch *b); /* n = 0 */
/* Appends an entry; OB_ERR_LIMIT when the batch is full (naming its capacity). */
ob_status ob_batch_add(ob_batch *b, int32_t token, int64_t pos, int32_t seq, bool logits,
                       ob_err *err);

/* Evaluates a batch holding any mix of sequences, prefill and decode, in one forward pass per
 * n_batch entries: every matrix product runs once over all rows of the pass, attention per
 * sequence over that sequence's cached positions. A sequence's entries must continue it: the
 * k-th entry of sequence s has pos == ob_seq_n_past(c, s) + k.
 * Errors, each leaving every sequence's cache as it was:
 *   OB_ERR_ARG    a sequence id, token id or position that is wrong (the entry named, with the
 *                 expected value);
 *   OB_ERR_LIMIT  a position at or past n_ctx; or the pool lacks free blocks for the batch
 *                 (the message gives blocks needed and free: a scheduler frees or preempts
 *                 sequences and retries);
 *   OB_ERR_NUMERIC logits asked for hold NaN or an infinity (the position named);
 *   OB_ERR_CANCELLED the abort callback (ob_context_set_abort) returned true.
 * Afterwards ob_batch_logits gives the logits of the entries that asked. */
ob_status ob_decode(ob_context *c, const ob_batch *b, ob_err *err);

/* Logits (n_vocab floats) of entry i of the last ob_decode, NULL when it did not ask for them
 * (or i is out of range). Valid until the next ob_decode or ob_eval on this context. */
const float *ob_batch_logits(const ob_context *c, int64_t i);

/* Called between layers of ob_decode and ob_eval; returning true stops the call with
 * OB_ERR_CANCELLED and its effects rolled back. fn NULL removes it; user is borrowed. */
void ob_context_set_abort(ob_context *c, bool (*fn)(void *user), void *user);

/* Positions in sequence seq's cache (0 for an id out of range). */
int64_t ob_seq_n_past(const ob_context *c, int32_t seq);
/* Drops sequence seq's cache. Its full blocks stay in the pool as a prefix cache until the
 * pool needs them. An id out of range is ignored. */
void ob_seq_free(ob_context *c, int32_t seq);
/* Sequence dst (its cache dropped first) continues from src's cache: they share src's blocks,
 * and a shared block is copied when one of them first writes into it. OB_ERR_ARG for ids out
 * of range or equal. */
ob_status ob_seq_fork(ob_context *c, int32_t src, int32_t dst, ob_err *err);
/* Keeps sequence seq's first n_past positions (OB_ERR_ARG when n_past exceeds its length;
 * OB_ERR_LIMIT beyond what a sliding-window ring keeps, as ob_context_truncate). */
ob_status ob_seq_truncate(ob_context *c, int32_t seq, int64_t n_past, ob_err *err);
/* On an empty sequence: attaches the longest run of cached blocks whose tokens equal the
 * start of tokens (n of them), then as much of a freed sequence's partial last block after
 * them as tokens repeat, so only the rest needs evaluating (the next turn of a conversation
 * repeats the whole previous exchange); *n_attached gets the positions attached (at most
 * n - 1 so the last token is evaluated and has logits; 0 when nothing matched, and always 0
 * on the CUDA device, which keeps no prefix cache for now). On a model with recurrent layers
 * the state is kept at block boundaries, so a multiple of the block size attaches there.
 * On a model with sliding-window layers the window before
 * the attached positions must also be at hand: it is the freed sequence's own, so a prefix
 * attaches when it continues a freed sequence to within n_batch positions of its end (the
 * next turn of a conversation), as long as that sequence's slot was not written since.
 * OB_ERR_ARG when seq is out of range or not empty. */
ob_status ob_seq_attach_prefix(ob_context *c, int32_t seq, const int32_t *tokens, int64_t n,
                               int64_t *n_attached, ob_err *err);

/* Which of sequences [0, n) not in use (used[s] false) a prompt (tokens, n_tokens of them)
 * should take so that what is kept for other prompts survives: on a model with
 * sliding-window layers a freed sequence keeps its window only until it is written again, so
 * this is the sequence whose window the prompt continues, else one keeping none, else the one
 * freed longest ago; on other models the first not in use. -1 when all are in use. */
int32_t ob_seq_pick(ob_context *c, const bool *used, int32_t n, const int32_t *tokens,
                    int64_t n_tokens);

/* The KV pool's state, for monitoring. */
typedef struct ob_kv_stats {
    int64_t block_size;   /* positions per block */
    int64_t blocks_total, blocks_used, blocks_cached, blocks_free;
    int64_t prefix_hit_blocks, prefix_hit_tokens; /* attached by ob_seq_attach_prefix */
} ob_kv_stats;

void ob_kv_stats_get(const ob_context *c, ob_kv_stats *out);

/* ==== embeddings ======================================================================== */

/* How a sequence's per-token hidden states become one vector, as <arch>.pooling_type numbers
 * them in GGUF (llama.cpp's enum). */
typedef enum ob_pooling {
    OB_POOLING_NONE = 0, /* per token: no single vector (ob_embed refuses it) */
    OB_POOLING_MEAN = 1, /* the average over the sequence's tokens */
    OB_POOLING_CLS = 2,  /* the first token's */
    OB_POOLING_LAST = 3, /* the last token's (Qwen3-Embedding and other causal embedders) */
} ob_pooling;

/* The pooling the model's file names (<arch>.pooling_type); OB_POOLING_NONE when the key is
 * absent, as llama.cpp reads it, which is the case for most chat models. */
ob_pooling ob_model_pooling(const ob_model *m);
/* "none", "mean", "cls", "last"; ob_pooling_parse: the reverse, false for any other text. */
const char *ob_pooling_name(ob_pooling p);
bool ob_pooling_parse(const char *name, ob_pooling *out);

/* Embeddings of n_inputs token sequences: each input's final hidden state after the output
 * norm (what the logits are projected from), pooled over its tokens, L2-normalised when
 * normalize; row i of out (n_inputs, n_embd) for input i. Inputs are evaluated together as
 * multi-sequence ob_decode batches (as many per batch as the context has sequences and the KV
 * pool room), on sequences that must be empty (they are emptied again afterwards). The
 * attention is the model's own (causal). Errors: OB_ERR_ARG for pooling none, an empty input
 * or a token id outside the vocabulary (the input named); OB_ERR_LIMIT for an input longer
 * than n_ctx or the KV pool (its length and the limit given); those of ob_decode. out is
 * unspecified on error. */
ob_status ob_embed(ob_context *c, const int32_t *const *tokens, const int64_t *n_tokens,
                   int64_t n_inputs, ob_pooling pooling, bool normalize, float *out,
                   ob_err *err);

/* ==== sampling ========================================================================== */

typedef struct ob_sampler ob_sampler;

typedef struct ob_sampler_params {
    float temp;           /* 0 = greedy (argmax) */
    int32_t top_k;        /* 0 = off */
    float top_p;          /* 1 = off */
    float min_p;          /* 0 = off */
    float repeat_penalty; /* 1 = off; divides positive logits of recent tokens, multiplies
                             negative ones */
    int32_t repeat_last_n; /* how many recent tokens the penalty looks at */
    uint64_t seed;        /* same seed, same logits: same tokens */
} ob_sampler_params;

/* temp 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1.0 over 64, seed 42. */
void ob_sampler_params_init(ob_sampler_params *p);

ob_status ob_sampler_new(const ob_sampler_params *p, int64_t n_vocab, ob_sampler **out,
                         ob_err *err);
void ob_sampler_free(ob_sampler *s);

/* Picks the next token from logits (n_vocab floats, not modified) and records it for the
 * repeat penalty. A NaN logit is never picked (it counts as -inf) and +inf counts as the
 * largest float. Returns -1, recording nothing, when no logit is finite (all NaN or -inf):
 * there is no token to draw, and the caller reports it. */
int32_t ob_sampler_sample(ob_sampler *s, const float *logits);

/* Records a token the sampler did not pick (the prompt) for the repeat penalty. */
void ob_sampler_accept(ob_sampler *s, int32_t token);

/* Constrains the picks to a grammar from now on (ob_matcher below): a token the grammar does
 * not allow is never returned, and the matcher advances on every pick. The sampler first draws
 * from the whole distribution and keeps the draw when the grammar allows it (one token to
 * check, the common case); otherwise it draws again from the distribution restricted to the
 * allowed tokens, checking its best candidates one by one first and masking every disallowed
 * token (-inf) only when none of those is allowed; the pick is the one masking would give.
 * m is borrowed (NULL
 * removes it). ob_sampler_sample returns -1 when the grammar allows no token. */
typedef struct ob_matcher ob_matcher;
void ob_sampler_set_matcher(ob_sampler *s, ob_matcher *m);

/* ==== constrained decoding ============================================================== */

/* A compiled grammar: immutable once made, so threads and sequences may share one. */
typedef struct ob_grammar ob_grammar;

/* Compiles GBNF text (len bytes; the dialect llama.cpp reads: `name ::= alternatives` rules,
 * string literals with escapes, [a-z] / [^"] classes, `.`, groups, * + ? {m} {m,} {m,n},
 * # comments, and token elements <[id]>, <|text|> (the token whose text that is, brackets
 * included) and !<...> (any one token but that one), kept by id or text until a matcher
 * resolves them) with `root` (NULL: "root") as the start rule. Errors: OB_ERR_FORMAT
 * "grammar:LINE:COL: what" (syntax, an undefined rule, left recursion), OB_ERR_LIMIT (size,
 * nesting, repetition counts), OB_ERR_NOMEM. *out: ob_grammar_free. */
ob_status ob_grammar_new(const char *gbnf, size_t len, const char *root, ob_grammar **out,
                         ob_err *err);
/* A grammar for the JSON values a JSON schema (JSON text of len bytes) accepts; schema NULL:
 * any JSON object (OpenAI's json_object mode). Errors: OB_ERR_FORMAT for a schema that is not
 * JSON, OB_ERR_UNSUPPORTED naming a keyword that cannot be enforced and its JSON path
 * ("schema.properties.age: keyword 'multipleOf' is not supported"). */
ob_status ob_grammar_from_json_schema(const char *schema, size_t len, ob_grammar **out,
                                      ob_err *err);
/* The GBNF the call above compiles (*gbnf new, ob_string_free). prefix names the rules
 * (prefix "call" gives call ::= ..., call-1 ::= ...; NULL gives root), so the text can be
 * embedded in a larger grammar. Errors as ob_grammar_from_json_schema. */
ob_status ob_json_schema_to_gbnf(const char *schema, size_t len, const char *prefix,
                                 char **gbnf, size_t *gbnf_len, ob_err *err);
void ob_grammar_free(ob_grammar *g);

/* Every token's text of a model arranged as a byte trie, so a grammar masks a whole vocabulary
 * by walking only the prefixes it allows. Built once per model (a few tens of ms for 262k
 * tokens) and shared read-only; borrows the model. Control tokens are left out of the trie:
 * only a grammar's token element that names one allows it; end-of-generation tokens are
 * allowed where the grammar may end or an element names them. OB_ERR_UNSUPPORTED without a
 * vocabulary, OB_ERR_NOMEM. */
typedef struct ob_vocab_trie ob_vocab_trie;
ob_status ob_vocab_trie_new(const ob_model *m, ob_vocab_trie **out, ob_err *err);
void ob_vocab_trie_free(ob_vocab_trie *t);

/* A grammar's progress through one generated sequence. Borrows g and t (they must outlive it);
 * one thread at a time. OB_ERR_ARG "grammar:LINE:COL: ..." when a token element names a text
 * no single token of t has, or an id outside it. *out: ob_matcher_free. */
ob_status ob_matcher_new(const ob_grammar *g, const ob_vocab_trie *t, ob_matcher **out,
                         ob_err *err);
/* An independent copy at the same point (n > 1 choices fork the prompt's matcher). */
ob_status ob_matcher_clone(const ob_matcher *m, ob_matcher **out, ob_err *err);
void ob_matcher_free(ob_matcher *m);
/* Back to the start of the grammar. */
void ob_matcher_reset(ob_matcher *m);
/* Whether token may come next (an end-of-generation token: whether the grammar may end). */
bool ob_matcher_allows(ob_matcher *m, int32_t token);
/* Sets logits (n_vocab floats) of every token the grammar does not allow next to -inf. */
ob_status ob_matcher_mask(ob_matcher *m, float *logits, ob_err *err);
/* Advances past token. OB_ERR_ARG (nothing changed) when the grammar does not allow it. */
ob_status ob_matcher_accept(ob_matcher *m, int32_t token, ob_err *err);
/* Advances past len bytes of text (a forced prefix); OB_ERR_ARG when they do not fit. */
ob_status ob_matcher_accept_text(ob_matcher *m, const char *text, size_t len, ob_err *err);
/* Whether the grammar may end here / may do nothing but end. */
bool ob_matcher_can_end(const ob_matcher *m);
bool ob_matcher_is_done(const ob_matcher *m);

/* ==== chat ============================================================================== */

/* A model's chat format, for programs that serve conversations: the template that turns
 * messages into the prompt text the model was trained on, how that text becomes tokens, and
 * how the model's answers mark reasoning and tool calls. Borrows the model (which must outlive
 * it); read-only once made, so threads may share one. */
typedef struct ob_chat ob_chat;

/* Where the template came from. Only the first is what the model's maker wrote; the others
 * are guesses a program should tell its user about. */
typedef enum ob_chat_source {
    OB_CHAT_SOURCE_MODEL = 0, /* the GGUF's tokenizer.chat_template */
    OB_CHAT_SOURCE_BUILTIN,   /* none in the file: outboard's template for the architecture
                                 (Gemma 3 files often ship without one) */
    OB_CHAT_SOURCE_GENERIC,   /* neither: a generic ChatML template */
    OB_CHAT_SOURCE_CALLER,    /* the template text the caller gave */
} ob_chat_source;

/* The model's chat format. tmpl: NULL for the model's own template (falling back as
 * ob_chat_source lists), else Jinja source of tmpl_len bytes, named `name` in messages (may be
 * NULL). Errors: OB_ERR_FORMAT for a template that does not parse ("NAME:LINE:COL: what"),
 * OB_ERR_LIMIT for one past the parser's limits, OB_ERR_NOMEM. *out: ob_chat_free. */
ob_status ob_chat_new(const ob_model *m, const char *tmpl, size_t tmpl_len, const char *name,
                      ob_chat **out, ob_err *err);
void ob_chat_free(ob_chat *c);

ob_chat_source ob_chat_get_source(const ob_chat *c);
/* The template's Jinja text (*len bytes, NUL-terminated), borrowed from c. */
const char *ob_chat_template(const ob_chat *c, size_t *len);
/* How answers mark reasoning and tool calls: a stable lower-case name ("hermes", "llama3",
 * "qwen3_coder", "gpt_oss", ...; "plain" when there is no markup). */
const char *ob_chat_format(const ob_chat *c);
/* Whether that markup is written in control tokens (Llama 3's <|python_tag|>, Harmony's
 * <|channel|>): text fed to ob_chat_parser must then come from a detokenizer that renders
 * them (ob_detok_new's render_special), or the parser never sees the markup. */
bool ob_chat_markup_is_special(const ob_chat *c);
/* The markup that ends reasoning in that format ("</think>", "[/THINK]", ...), which a server
 * writes into the answer to close reasoning after a budget of tokens; NULL when the format has
 * no reasoning it could close that way. Static storage. */
const char *ob_chat_reasoning_close(const ob_chat *c);

typedef struct ob_chat_render_params {
    bool add_generation_prompt; /* end with the header of the assistant's turn (true) */
    int64_t now;                /* seconds since the epoch for strftime_now; 0 = the clock */
    double max_seconds;         /* wall-clock budget of one render; 0 = 5 s */
} ob_chat_render_params;

void ob_chat_render_params_init(ob_chat_render_params *p);

/* Renders a conversation given as JSON text (len bytes): {"messages": [...], "tools": [...],
 * ...}, the variables transformers' apply_chat_template passes. Messages are OpenAI-style
 * (content a string or a list of parts, tool_calls, reasoning_content); any other key
 * (enable_thinking, reasoning_effort, ...) reaches the template as a variable; bos_token and
 * eos_token default to the model's. p NULL: the defaults. *text is new (ob_string_free), *len
 * bytes. Errors: OB_ERR_FORMAT for JSON that does not parse (byte offset named) or a template
 * that fails while rendering, OB_ERR_ARG for a conversation of the wrong shape or the
 * template's own raise_exception (its message), OB_ERR_LIMIT for a runaway template (steps,
 * time, memory, depth); template errors name its line and column. */
ob_status ob_chat_render(const ob_chat *c, const char *conversation, size_t len,
                         const ob_chat_render_params *p, char **text, size_t *text_len,
                         ob_err *err);
void ob_string_free(char *s);

/* A prompt as token ids, starting with one BOS when the vocabulary wants one and the text did
 * not produce it (a template that writes {{ bos_token }}). parse_special: special-token text
 * becomes its token, as a rendered prompt needs (the template wrote it); false for raw text
 * from a user, where "<|im_end|>" stays text. *ids: ob_tokens_free. Errors: those of
 * ob_tokenize. */
ob_status ob_chat_tokenize(const ob_chat *c, const char *text, size_t len, bool parse_special,
                           int32_t **ids, size_t *n_ids, ob_err *err);

/* One tool call in an answer. Strings are NUL-terminated; who owns them is said where a call
 * is handed out. */
typedef struct ob_tool_call {
    char *id;        /* the model's own call id, or NULL when it wrote none */
    char *name;      /* the function's name */
    char *arguments; /* a JSON object as compact text, never NULL ("{}" when empty) */
} ob_tool_call;

/* A tool call that could not be read (not strict: it is neither content nor a call). */
typedef struct ob_invalid_call {
    size_t offset; /* byte offset in the answer of the text that did not read as a call */
    char *text;    /* that text */
    char *reason;  /* one line: what was wrong */
} ob_invalid_call;

/* A whole answer taken apart; every pointer is owned (ob_chat_reply_clear). */
typedef struct ob_chat_reply {
    char *content;   /* the visible text, trimmed, never NULL once parsed */
    size_t content_len;
    char *reasoning; /* the reasoning ("thinking") text, trimmed, never NULL once parsed */
    size_t reasoning_len;
    ob_tool_call *calls; /* (n_calls) in the order written */
    size_t n_calls;
    ob_invalid_call *invalid; /* (n_invalid) */
    size_t n_invalid;
    /* A reasoning close tag came without its opening tag and the prompt had not opened one:
     * what came before it became reasoning, after a stream had already shown it as content. */
    bool reasoning_reclassified;
} ob_chat_reply;

/* Frees what the reply owns and zeroes it; NULL is a no-op. */
void ob_chat_reply_clear(ob_chat_reply *r);

/* What one piece of a streamed answer made final; borrowed from the parser until its next
 * call. Tool-call markup is held back until the call is complete, also a tag split across
 * pieces, so it never shows as content. */
typedef struct ob_chat_delta {
    const char *content; /* content_len bytes, not NUL-terminated */
    size_t content_len;
    const char *reasoning;
    size_t reasoning_len;
    const ob_tool_call *calls; /* calls completed by this piece */
    size_t n_calls;
} ob_chat_delta;

typedef struct ob_chat_parse_params {
    const char *prompt;  /* the rendered prompt (prompt_len bytes) the answer follows, or NULL:
                            a prompt ending inside an open reasoning block makes the answer's
                            first bytes reasoning */
    size_t prompt_len;
    const char *tools;   /* the request's OpenAI "tools" array as JSON text, or NULL: bare
                            parameter values take the type their schema declares */
    size_t tools_len;
    bool strict;         /* an unreadable tool call fails with OB_ERR_FORMAT (else it goes to
                            ob_chat_reply.invalid) */
} ob_chat_parse_params;

/* Takes a whole answer apart. p may be NULL. *out is overwritten; the caller owns it.
 * Errors: OB_ERR_FORMAT (strict, an unreadable call: the format and byte offset named; or
 * tools that are not a JSON array), OB_ERR_NOMEM; *out is then empty. */
ob_status ob_chat_parse(const ob_chat *c, const ob_chat_parse_params *p, const char *text,
                        size_t len, ob_chat_reply *out, ob_err *err);

/* The same for an answer that streams: feed pieces as they are generated, then finish. The
 * result equals ob_chat_parse on the whole text. */
typedef struct ob_chat_parser ob_chat_parser;

ob_status ob_chat_parser_new(const ob_chat *c, const ob_chat_parse_params *p,
                             ob_chat_parser **out, ob_err *err);
/* Feeds len bytes; *delta (may be NULL) gets what became final. After an error the parser
 * takes no more. */
ob_status ob_chat_parser_feed(ob_chat_parser *ps, const char *text, size_t len,
                              ob_chat_delta *delta, ob_err *err);
/* Ends the answer: *delta gets what was held back, *out the whole reply (caller-owned). */
ob_status ob_chat_parser_finish(ob_chat_parser *ps, ob_chat_delta *delta, ob_chat_reply *out,
                                ob_err *err);
void ob_chat_parser_free(ob_chat_parser *ps);
/* Whether the answer fed so far is inside reasoning (its thinking has not been closed). */
bool ob_chat_parser_in_reasoning(const ob_chat_parser *ps);

#ifdef __cplusplus
}
#endif
#endif /* OUTBOARD_H */
