/*
 * ob_context: one inference session over up to n_seq_max sequences. Owns the backend (KV
 * cache, thread pool, matmul scratch), the KV pool's bookkeeping, the activation buffers of
 * one forward pass and the logits of the last decode (decode.c). This file creates it and
 * runs the sequence operations (free, fork, truncate, prefix attach).
 */
#include "core/alloc.h"
#include "core/err.h"
#include "cpu/pool.h"
#include "model/context.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CTX_DEFAULT_MAX 4096
#define CTX_MAX (1 << 24)

#define CTX_MAX_SEQ 4096    /* sequences per context */
#define CTX_MAX_KV (1 << 26) /* positions in the KV pool */

void ob_context_params_init(ob_context_params *p) {
    *p = (ob_context_params){.n_ctx = 0, .n_batch = 512, .n_threads = 0, .n_seq_max = 1,
                             .kv_size = 0, .device_index = -1, .n_gpu_layers = -1,
                             .stream_min_tok = OB_STREAM_AUTO};
}

ob_status model_context_params_check(const ob_model *m, ob_context_params *p, ob_err *err) {
    if (p->n_ctx == 0)
        p->n_ctx = m->hp.n_ctx_train < CTX_DEFAULT_MAX ? m->hp.n_ctx_train : CTX_DEFAULT_MAX;
    if (p->n_batch == 0) p->n_batch = 512;
    if (p->n_threads == 0) p->n_threads = cpu_physical_cores();
    if (p->n_ctx < 1 || p->n_ctx > CTX_MAX)
        return ob_fail(err, OB_ERR_ARG, "context: n_ctx %lld, expected 1..%d",
                       (long long)p->n_ctx, CTX_MAX);
    /* Positions past the trained context give garbage (RoPE angles the model never saw), and
     * a typo such as --ctx 10000000 would otherwise size a cache of gigabytes. */
    if (p->n_ctx > m->hp.n_ctx_train)
        return ob_fail(err, OB_ERR_LIMIT, "context: n_ctx %lld exceeds the %lld positions %s "
                       "was trained for", (long long)p->n_ctx, (long long)m->hp.n_ctx_train,
                       gguf_name(m->file));
    if (p->n_batch < 1 || p->n_threads < 1)
        return ob_fail(err, OB_ERR_ARG, "context: n_batch %lld, n_threads %d, expected >= 1",
                       (long long)p->n_batch, p->n_threads);
    if (p->stream_min_tok != OB_STREAM_AUTO && (p->stream_min_tok < 0 || p->stream_min_tok == 1))
        return ob_fail(err, OB_ERR_ARG, "context: stream_min_tok %lld, expected 0 (never), "
                       "OB_STREAM_AUTO or at least 2 rows", (long long)p->stream_min_tok);
    if (p->n_gpu_layers < OB_GPU_LAYERS_AUTO)
        return ob_fail(err, OB_ERR_ARG, "context: n_gpu_layers %lld, expected -1 (all), "
                       "OB_GPU_LAYERS_AUTO or a count", (long long)p->n_gpu_layers);
    if (!(p->link_gbps >= 0 && p->link_gbps <= 1e4) ||
        !(p->link_latency_us >= 0 && p->link_latency_us <= 1e7))
        return ob_fail(err, OB_ERR_ARG, "context: link emulation %g GB/s, %g us: expected "
                       "0..10000 GB/s and 0..10000000 us", p->link_gbps, p->link_latency_us);
    if (p->experts != OB_EXPERTS_AUTO && p->experts != OB_EXPERTS_DEVICE &&
        p->experts != OB_EXPERTS_HOST)
        return ob_fail(err, OB_ERR_ARG, "context: experts %d, expected OB_EXPERTS_AUTO, "
                       "_DEVICE or _HOST", (int)p->experts);
    if (p->n_batch > p->n_ctx) p->n_batch = p->n_ctx;
    if (p->n_seq_max == 0) p->n_seq_max = 1;
    if (p->kv_size == 0) p->kv_size = p->n_ctx;
    if (p->n_seq_max < 1 || p->n_seq_max > CTX_MAX_SEQ || p->kv_size < 1 ||
        p->kv_size > CTX_MAX_KV)
        return ob_fail(err, OB_ERR_ARG, "context: n_seq_max %d, kv_size %lld, expected 1..%d "
                       "and 1..%d", p->n_seq_max, (long long)p->kv_size, CTX_MAX_SEQ,
                       CTX_MAX_KV);
    return OB_OK;
}

/* A host cache larger than the machine's memory would be allocated lazily and then fail
 * page by page deep in a forward step; refuse it up front with the figures. */
double model_host_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0;
}

static ob_status check_host_memory(size_t kv_bytes, int64_t kv_size, ob_err *err) {
    const double have = model_host_memory();
    if (have == 0 || (double)kv_bytes <= have) return OB_OK; /* unknown: nothing to compare */
    return ob_fail(err, OB_ERR_LIMIT, "context: the KV cache of %lld positions needs %.1f GiB, "
                   "more than the machine's %.1f GiB of memory", (long long)kv_size,
                   (double)kv_bytes / (1 << 30), have / (1 << 30));
}

/* The per-context arrays beside the backend: activations, step scratch, the pool. */
static ob_status context_arrays_new(ob_context *c, const model_backend_shape *shape,
                                    ob_err *err) {
    ob_status st;
    const size_t nb = (size_t)c->n_batch;
    c->step_pos = ob_alloc(nb, sizeof(int32_t));
    c->step_seq = ob_alloc(nb, sizeof(int32_t));
    c->step_slot = ob_alloc(nb, sizeof(int32_t));
    c->step_out = ob_alloc(nb, sizeof(int32_t));
    c->step_blocks = ob_alloc(nb, sizeof *c->step_blocks);
    c->seq_new = ob_calloc((size_t)c->n_seq, sizeof *c->seq_new);
    c->swa_lo = ob_calloc((size_t)c->n_seq, sizeof *c->swa_lo);
    const bool recurrent = c->model->hp.recurrent != NULL;
    if (recurrent) {
        c->rs_ckpt = ob_alloc((size_t)c->n_seq, sizeof *c->rs_ckpt);
        c->rs_mark = ob_calloc((size_t)c->n_seq, sizeof *c->rs_mark);
        c->rs_snap_at = ob_alloc(2 * (size_t)c->n_seq, sizeof *c->rs_snap_at);
        c->rs_snap_id = ob_alloc(2 * (size_t)c->n_seq, sizeof *c->rs_snap_id);
        c->rs_stepwise = ob_calloc((size_t)c->n_seq, sizeof *c->rs_stepwise);
        for (int32_t s = 0; c->rs_ckpt && s < c->n_seq; s++) c->rs_ckpt[s] = -1;
    }
    if (!c->step_pos || !c->step_seq || !c->step_slot || !c->step_out || !c->step_blocks ||
        !c->seq_new || !c->swa_lo ||
        (recurrent && (!c->rs_ckpt || !c->rs_mark || !c->rs_snap_at || !c->rs_snap_id ||
                       !c->rs_stepwise)))
        return ob_fail(err, OB_ERR_NOMEM, "context: out of memory for %d sequences", c->n_seq);
    /* Prefix caching needs copy-on-write and arbitrary block tables, which a backend without
     * paged_kv lacks. Sliding-window layers share no blocks: a prefix continues a parked ring.
     * Cached KV blocks are of use to a model with recurrent layers only up to a snapshot of
     * the state (rs_park.h). */
    const bool hashing = model_stages_paged(c);
    const int64_t max_blocks = (c->n_ctx + KV_BLOCK - 1) / KV_BLOCK;
    if (hashing && (c->swa_rows || recurrent)) {
        c->match_hash = ob_alloc((size_t)max_blocks, sizeof *c->match_hash);
        if (!c->match_hash) return ob_fail(err, OB_ERR_NOMEM, "context: out of memory");
    }
    if (hashing && c->swa_rows &&
        (st = ring_park_new(c->n_seq, c->model->hp.n_swa, c->swa_rows, &c->park, err)))
        return st;
    if (hashing && recurrent && (st = rs_park_new(shape->n_rs_snap, &c->rs_park, err)))
        return st;
    return kv_pool_new(shape->n_kv_rows / KV_BLOCK, c->n_seq, max_blocks, hashing, &c->pool,
                       err);
}

void model_context_shape(const ob_model *m, const ob_context_params *p,
                         model_backend_shape *out) {
    const model_hparams *hp = &m->hp;
    *out = (model_backend_shape){
        .arch = hp->arch_name, .n_swa = hp->n_swa, .swa = hp->swa, .n_layer = hp->n_layer,
        .n_layer_model = hp->n_layer, .weights = &m->w.for_backends,
        .n_ctx = p->n_ctx, .n_kv_rows = (p->kv_size + KV_BLOCK - 1) / KV_BLOCK * KV_BLOCK,
        .n_seq = p->n_seq_max, .n_batch = p->n_batch, .n_head = hp->n_head,
        .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
        .recurrent = hp->recurrent, .ssm_conv = hp->ssm_conv, .ssm_d_state = hp->ssm_d_state,
        .ssm_n_k_head = hp->ssm_n_k_head, .ssm_n_v_head = hp->ssm_n_v_head,
        /* two snapshots per sequence: its latest block boundary and where its prompt left a
         * cached one (rs_park.h) */
        .n_rs_snap = hp->recurrent ? 2 * (int64_t)p->n_seq_max : 0,
    };
    model_moe_shape(m, out);
}

ob_status ob_context_new(ob_model *m, const ob_context_params *params, ob_context **out,
                         ob_err *err) {
    *out = NULL;
    ob_context_params p;
    if (params) p = *params;
    else ob_context_params_init(&p);
    ob_status st = model_context_params_check(m, &p, err);
    if (st) return st;
    ob_context *c = ob_calloc(1, sizeof *c);
    if (!c) return ob_fail(err, OB_ERR_NOMEM, "context: out of memory");
    c->model = m;
    c->n_ctx = p.n_ctx;
    c->n_batch = p.n_batch;
    c->n_seq = p.n_seq_max;
    c->kv_size = p.kv_size;
    const model_hparams *hp = &m->hp;
    model_backend_shape shape;
    model_context_shape(m, &p, &shape);
    c->kv_bytes = model_kv_bytes(&shape, 0) + model_rs_bytes(&shape, 0);
    c->swa_rows = hp->n_swa > 0 ? model_swa_rows(&shape) : 0;
    if (p.device == OB_DEVICE_CPU && (st = check_host_memory(c->kv_bytes, p.kv_size, err))) {
        ob_free(c);
        return st;
    }
    st = model_stages_new(c, &p, &shape, err);
    if (!st && c->n_seq > 1 && !model_stages_paged(c))
        st = ob_fail(err, OB_ERR_UNSUPPORTED, "context: %d sequences: the %s backend runs one "
                     "sequence per context (n_seq_max 1)", c->n_seq,
                     c->stage[c->n_stage - 1].be->ops->name);
    if (!st) st = context_arrays_new(c, &shape, err);
    if (st) {
        ob_context_free(c);
        return st;
    }
    *out = c;
    return OB_OK;
}

void ob_context_free(ob_context *c) {
    if (!c) return;
    model_stages_free(c);
    kv_pool_free(c->pool);
    ring_park_free(c->park);
    rs_park_free(c->rs_park);
    void *bufs[] = {c->logits,   c->entry_row, c->step_pos, c->step_seq,   c->step_slot,
                    c->step_out, (void *)c->step_blocks, c->seq_new, c->swa_lo, c->match_hash,
                    c->rs_ckpt,  c->rs_mark,  c->rs_snap_at, c->rs_snap_id, c->rs_stepwise, c->hidden,
                    c->hidden_seq, c->hidden_pos};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ob_free(bufs[i]);
    ob_free(c);
}

int64_t ob_context_n_ctx(const ob_context *c) { return c->n_ctx; }
int64_t ob_context_n_past(const ob_context *c) { return kv_pool_seq_len(c->pool, 0); }
int ob_context_n_threads(const ob_context *c) {
    int n = 0;
    for (int i = 0; i < c->n_stage; i++)
        if (c->stage[i].be->caps.n_threads > n) n = c->stage[i].be->caps.n_threads;
    return n;
}

const char *ob_context_device(const ob_context *c) {
    return c->stage[c->n_stage - 1].be->ops->name;
}

const char *ob_context_placement(const ob_context *c) { return c->placement; }

void ob_context_transfer_stats(const ob_context *c, ob_transfer_stats *out) { *out = c->xfer; }

size_t model_context_kv_bytes(const ob_context *c) { return c->kv_bytes; }

ob_status ob_context_truncate(ob_context *c, int64_t n_past, ob_err *err) {
    return ob_seq_truncate(c, 0, n_past, err);
}

/* ---- sequences ------------------------------------------------------------------------- */

static ob_status check_seq(const ob_context *c, const char *what, int32_t seq, ob_err *err) {
    if (seq >= 0 && seq < c->n_seq) return OB_OK;
    return ob_fail(err, OB_ERR_ARG, "%s: sequence %d, expected 0..%d", what, seq, c->n_seq - 1);
}

int64_t ob_seq_n_past(const ob_context *c, int32_t seq) {
    return seq >= 0 && seq < c->n_seq ? kv_pool_seq_len(c->pool, seq) : 0;
}

void ob_seq_free(ob_context *c, int32_t seq) {
    if (seq < 0 || seq >= c->n_seq) return;
    const int64_t len = kv_pool_seq_len(c->pool, seq);
    if (c->park && len > 0) ring_park_save(c->park, c->pool, seq, len, c->swa_lo[seq]);
    kv_pool_seq_free(c->pool, seq);
    c->swa_lo[seq] = 0;
    if (c->rs_ckpt) { /* its next decode starts at position 0: zero state */
        c->rs_ckpt[seq] = -1;
        c->rs_mark[seq] = 0;
    }
}

ob_status ob_seq_fork(ob_context *c, int32_t src, int32_t dst, ob_err *err) {
    ob_status st = check_seq(c, "fork", src, err);
    if (!st) st = check_seq(c, "fork", dst, err);
    if (st) return st;
    if (src == dst)
        return ob_fail(err, OB_ERR_ARG, "fork: source and destination are both sequence %d", src);
    kv_pool_seq_fork(c->pool, src, dst);
    if (c->park) ring_park_drop(c->park, dst);
    if (c->swa_rows) model_stages_seq_copy(c, src, dst); /* the rings are per sequence */
    c->swa_lo[dst] = c->swa_lo[src];
    if (c->rs_ckpt) { /* the recurrent state is per sequence too; dst has no checkpoint yet */
        model_stages_rs_copy(c, src, 0, dst, 0);
        c->rs_ckpt[dst] = -1;
    }
    return OB_OK;
}

/* The snapshot of sequence seq's state after its first n positions, or -1 (none kept, or n
 * not a block boundary). */
static int64_t snapshot_of(ob_context *c, int32_t seq, int64_t n) {
    if (!c->rs_park || n % KV_BLOCK) return -1;
    const int64_t k = n / KV_BLOCK;
    return rs_park_lookup(c->rs_park, k, kv_pool_prefix_hash(c->pool, seq, k));
}

/* Between the checkpoint and the end: the state goes back to the checkpoint and the kept
 * positions after it are evaluated again (their tokens are in the pool), which brings it to
 * exactly n_past. This is how a rejected speculative draft is dropped: the checkpoint is the
 * state before the verification pass, and the replay covers the pending token and the
 * accepted part of the draft. Their cache rows are written again with the same values. */
static ob_status replay_state(ob_context *c, int32_t seq, int64_t n_past, ob_err *err) {
    const int64_t from = c->rs_ckpt[seq], n = n_past - from;
    int32_t *tok = ob_alloc((size_t)n, sizeof *tok);
    if (!tok)
        return ob_fail(err, OB_ERR_NOMEM, "truncate: out of memory for %lld tokens",
                       (long long)n);
    kv_pool_seq_tokens(c->pool, seq, from, n, tok);
    model_stages_rs_copy(c, seq, 1, seq, 0);
    kv_pool_seq_truncate(c->pool, seq, from);
    ob_status st = model_decode_replay(c, seq, from, tok, n, err);
    ob_free(tok);
    if (st) { /* the sequence is whole at its checkpoint: say so rather than keep it wrong */
        char what[256];
        snprintf(what, sizeof what, "truncate: sequence %d to %lld: evaluating positions "
                 "%lld..%lld again failed, it now holds %lld positions", seq,
                 (long long)n_past, (long long)from, (long long)(n_past - 1), (long long)from);
        ob_err_prefix(err, what);
    }
    return st;
}

/* A recurrent state summarises every position, so it can go back only to where a copy of it
 * was kept: position 0 (the next decode starts from a zero state), the sequence's checkpoint
 * (its length before its last decode), a block boundary of it whose state a snapshot holds
 * (rs_park.h), or a position after the checkpoint by evaluating again from there
 * (replay_state). Anything else is refused, never kept wrong. */
static ob_status truncate_state(ob_context *c, int32_t seq, int64_t n_past, int64_t len,
                                ob_err *err) {
    if (!c->rs_ckpt || n_past == len || n_past == 0) return OB_OK;
    if (n_past == c->rs_ckpt[seq]) {
        model_stages_rs_copy(c, seq, 1, seq, 0);
        return OB_OK;
    }
    const int64_t snap = snapshot_of(c, seq, n_past);
    if (snap >= 0) {
        model_stages_rs_copy(c, c->n_seq + (int32_t)snap, 0, seq, 0);
        if (c->rs_ckpt[seq] > n_past) c->rs_ckpt[seq] = -1; /* past the new end */
        return OB_OK;
    }
    if (c->rs_ckpt[seq] >= 0 && n_past > c->rs_ckpt[seq]) return replay_state(c, seq, n_past, err);
    char ck[64] = "", kept[160] = "";
    if (c->rs_ckpt[seq] >= 0)
        snprintf(ck, sizeof ck, " or %lld (its last checkpoint)", (long long)c->rs_ckpt[seq]);
    size_t used = 0;
    for (int64_t p = KV_BLOCK; p < len && used + 24 < sizeof kept; p += KV_BLOCK)
        if (snapshot_of(c, seq, p) >= 0)
            used += (size_t)snprintf(kept + used, sizeof kept - used, "%s%lld",
                                     used ? ", " : ", or a block boundary whose state was kept: ",
                                     (long long)p);
    return ob_fail(err, OB_ERR_UNSUPPORTED, "truncate: sequence %d of %lld positions to %lld: "
                   "%s has recurrent layers, whose state can return only to 0%s%s", seq,
                   (long long)len, (long long)n_past, c->model->hp.arch_name, ck, kept);
}

ob_status ob_seq_truncate(ob_context *c, int32_t seq, int64_t n_past, ob_err *err) {
    ob_status st = check_seq(c, "truncate", seq, err);
    if (st) return st;
    const int64_t len = kv_pool_seq_len(c->pool, seq);
    if (n_past < 0 || n_past > len)
        return ob_fail(err, OB_ERR_ARG, "truncate: n_past %lld, expected 0..%lld",
                       (long long)n_past, (long long)len);
    /* A sliding-window ring has overwritten the rows of positions below swa_lo; a query at
     * n_past would see from n_past - n_swa + 1, so going back below swa_lo + n_swa would
     * expose overwritten rows. */
    const int64_t lo = c->swa_lo[seq] + c->model->hp.n_swa;
    if (c->swa_rows && n_past > 0 && c->swa_lo[seq] > 0 && n_past < lo)
        return ob_fail(err, OB_ERR_LIMIT, "truncate: n_past %lld: the sliding-window cache "
                       "keeps the last %lld positions of %lld; expected 0 or %lld..%lld",
                       (long long)n_past, (long long)c->swa_rows, (long long)len,
                       (long long)lo, (long long)len);
    if ((st = truncate_state(c, seq, n_past, len, err))) return st;
    kv_pool_seq_truncate(c->pool, seq, n_past);
    if (n_past == 0) c->swa_lo[seq] = 0;
    if (seq == 0) c->n_entries = 0; /* as before: ob_logits forgets the last ob_eval */
    return OB_OK;
}

/* On a model with sliding-window layers: the cached blocks go only as far as a parked ring
 * holds the window before them, and that ring becomes seq's. */
static ob_status attach_with_ring(ob_context *c, int32_t seq, const int32_t *tokens, int64_t n,
                                  int64_t *n_attached) {
    const int64_t matched = kv_pool_match(c->pool, tokens, n, c->match_hash);
    int32_t from = -1;
    int64_t lo = 0;
    const int64_t k = ring_park_find(c->park, c->match_hash, matched, &from, &lo);
    /* the ring holds the parked sequence's positions past its full blocks too: as many of
     * them as the prompt repeats may come from its tail block */
    const int64_t m = k > 0 ? ring_park_tail(c->park, from, k, tokens, n) : 0;
    ring_park_drop(c->park, seq); /* written from now on, whichever ring it gets */
    if (k == 0) return OB_OK;
    *n_attached = kv_pool_seq_attach(c->pool, seq, tokens, k * KV_BLOCK + m + 1, m > 0);
    if (from != seq) model_stages_seq_copy(c, from, seq);
    c->swa_lo[seq] = lo;
    return OB_OK;
}

/* On a model with recurrent layers: the cached blocks go only as far as a snapshot holds the
 * state after them, and a copy of that snapshot becomes seq's state. Without a prefix cache
 * (rs_park NULL) nothing is attached. */
static ob_status attach_with_state(ob_context *c, int32_t seq, const int32_t *tokens,
                                   int64_t n, int64_t *n_attached) {
    if (!c->rs_park) return OB_OK;
    const int64_t matched = kv_pool_match(c->pool, tokens, n, c->match_hash);
    int64_t snap;
    const int64_t k = rs_park_find(c->rs_park, c->match_hash, matched, &snap);
    /* where this prompt parts from a cached one is likely a prefix others share too (a
     * system prompt): keep the state there when the prefill gets to it */
    c->rs_mark[seq] = matched > k ? matched : 0;
    if (k == 0) return OB_OK;
    /* a recurrent state is kept at block boundaries only: no tail */
    *n_attached = kv_pool_seq_attach(c->pool, seq, tokens, k * KV_BLOCK + 1, false);
    model_stages_rs_copy(c, c->n_seq + (int32_t)snap, 0, seq, 0);
    c->rs_ckpt[seq] = -1;
    return OB_OK;
}

int32_t ob_seq_pick(ob_context *c, const bool *used, int32_t n, const int32_t *tokens,
                    int64_t n_tokens) {
    if (n > c->n_seq) n = c->n_seq;
    if (!c->park) { /* nothing parked per sequence: any free one keeps all there is */
        for (int32_t s = 0; s < n; s++)
            if (!used[s]) return s;
        return -1;
    }
    if (n_tokens > c->n_ctx) n_tokens = c->n_ctx;
    int32_t from = -1;
    int64_t lo = 0;
    const int64_t matched = tokens && n_tokens > 0
                                ? kv_pool_match(c->pool, tokens, n_tokens, c->match_hash)
                                : 0;
    if (ring_park_find(c->park, c->match_hash, matched, &from, &lo) > 0 && from < n &&
        !used[from])
        return from;
    return ring_park_victim(c->park, used, n);
}

ob_status ob_seq_attach_prefix(ob_context *c, int32_t seq, const int32_t *tokens, int64_t n,
                               int64_t *n_attached, ob_err *err) {
    *n_attached = 0;
    ob_status st = check_seq(c, "attach prefix", seq, err);
    if (st) return st;
    if (kv_pool_seq_len(c->pool, seq) != 0)
        return ob_fail(err, OB_ERR_ARG, "attach prefix: sequence %d holds %lld positions, "
                       "expected an empty sequence", seq,
                       (long long)kv_pool_seq_len(c->pool, seq));
    if (n < 0 || (n > 0 && !tokens))
        return ob_fail(err, OB_ERR_ARG, "attach prefix: %lld tokens", (long long)n);
    if (n > c->n_ctx) n = c->n_ctx;
    if (c->park) return attach_with_ring(c, seq, tokens, n, n_attached);
    if (c->rs_ckpt) return attach_with_state(c, seq, tokens, n, n_attached);
    *n_attached = kv_pool_seq_attach(c->pool, seq, tokens, n, true);
    return OB_OK;
}

void ob_kv_stats_get(const ob_context *c, ob_kv_stats *out) {
    kv_pool_stats ps;
    kv_pool_stats_get(c->pool, &ps);
    *out = (ob_kv_stats){
        .block_size = KV_BLOCK, .blocks_total = ps.blocks_total, .blocks_used = ps.blocks_used,
        .blocks_cached = ps.blocks_cached, .blocks_free = ps.blocks_free,
        .prefix_hit_blocks = ps.hit_blocks, .prefix_hit_tokens = ps.hit_tokens,
    };
}

void ob_context_set_abort(ob_context *c, bool (*fn)(void *user), void *user) {
    c->abort = fn;
    c->abort_user = user;
}
