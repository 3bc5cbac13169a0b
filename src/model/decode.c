/*
 * Evaluation: ob_decode runs a batch of (token, position, sequence, wants logits) entries of
 * any mix of sequences; ob_eval is the single-sequence form over sequence 0. Both go through
 * model_decode_run, which
 *   1. checks every entry (sequence id, token id, position continuing its sequence, room in
 *      n_ctx) before touching anything;
 *   2. reserves every KV block the batch needs in the pool (OB_ERR_LIMIT, nothing changed,
 *      when the pool is short) and has the backend make the copy-on-write copies;
 *   3. runs one forward pass per n_batch entries: each matrix product over all rows of the
 *      pass, attention per row over its own sequence's positions (on a model with recurrent
 *      layers a pass may end early, at a block boundary whose state is kept: rs_park.h);
 *   4. commits the positions to their sequences, or, on NaN logits, cancellation or a device
 *      error, rolls the reservation back so every sequence is as it was.
 * Only the rows whose logits are asked for are projected to the vocabulary.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "model/context.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- batches --------------------------------------------------------------------------- */

void ob_batch_free(ob_batch *b) {
    if (!b) return;
    ob_free(b->token);
    ob_free(b->pos);
    ob_free(b->seq);
    ob_free(b->logits);
    ob_free(b);
}

ob_status ob_batch_new(int64_t capacity, ob_batch **out, ob_err *err) {
    *out = NULL;
    if (capacity < 1 || capacity > INT32_MAX)
        return ob_fail(err, OB_ERR_ARG, "batch: capacity %lld, expected 1..%d",
                       (long long)capacity, INT32_MAX);
    ob_batch *b = ob_calloc(1, sizeof *b);
    const size_t n = (size_t)capacity;
    if (b) {
        b->capacity = capacity;
        b->token = ob_alloc(n, sizeof *b->token);
        b->pos = ob_alloc(n, sizeof *b->pos);
        b->seq = ob_alloc(n, sizeof *b->seq);
        b->logits = ob_alloc(n, sizeof *b->logits);
    }
    if (!b || !b->token || !b->pos || !b->seq || !b->logits) {
        ob_batch_free(b);
        return ob_fail(err, OB_ERR_NOMEM, "batch: out of memory for %lld entries",
                       (long long)capacity);
    }
    *out = b;
    return OB_OK;
}

void ob_batch_clear(ob_batch *b) { b->n = 0; }

ob_status ob_batch_add(ob_batch *b, int32_t token, int64_t pos, int32_t seq, bool logits,
                       ob_err *err) {
    if (b->n >= b->capacity)
        return ob_fail(err, OB_ERR_LIMIT, "batch: full at its capacity of %lld entries",
                       (long long)b->capacity);
    b->token[b->n] = token;
    b->pos[b->n] = pos;
    b->seq[b->n] = seq;
    b->logits[b->n] = logits;
    b->n++;
    return OB_OK;
}

/* ---- checks ---------------------------------------------------------------------------- */

/* Checks every entry and counts the positions each sequence gains into c->seq_new. */
static ob_status check_entries(ob_context *c, const int32_t *tok, const int64_t *pos,
                               const int32_t *seq, int64_t n, ob_err *err) {
    const int64_t n_vocab = c->model->hp.n_vocab;
    memset(c->seq_new, 0, (size_t)c->n_seq * sizeof *c->seq_new);
    for (int64_t i = 0; i < n; i++) {
        const int32_t s = seq[i];
        if (s < 0 || s >= c->n_seq)
            return ob_fail(err, OB_ERR_ARG, "decode: entry %lld: sequence %d, expected 0..%d",
                           (long long)i, s, c->n_seq - 1);
        if (tok[i] < 0 || tok[i] >= n_vocab)
            return ob_fail(err, OB_ERR_ARG, "decode: entry %lld: token id %d, expected 0..%lld",
                           (long long)i, tok[i], (long long)(n_vocab - 1));
        const int64_t len = kv_pool_seq_len(c->pool, s), expect = len + c->seq_new[s];
        if (pos[i] != expect)
            return ob_fail(err, OB_ERR_ARG, "decode: entry %lld: sequence %d at position %lld, "
                           "expected %lld (the sequence holds %lld positions)", (long long)i, s,
                           (long long)pos[i], (long long)expect, (long long)len);
        if (pos[i] >= c->n_ctx)
            return ob_fail(err, OB_ERR_LIMIT, "decode: entry %lld: position %lld of sequence "
                           "%d does not fit in the context of %lld positions", (long long)i,
                           (long long)pos[i], s, (long long)c->n_ctx);
        c->seq_new[s]++;
    }
    return OB_OK;
}

/* Room for rows of `width` floats (logits, or hidden states) and n entries' row numbers. */
static ob_status grow_outputs(ob_context *c, int64_t n, int64_t rows, int64_t width,
                              ob_err *err) {
    size_t need;
    if (ob_mul_size((size_t)rows, (size_t)width, &need))
        return ob_fail(err, OB_ERR_LIMIT, "decode: logits of %lld entries overflow",
                       (long long)rows);
    if (need > c->logits_cap) {
        float *grown = ob_realloc(c->logits, need, sizeof(float));
        if (!grown)
            return ob_fail(err, OB_ERR_NOMEM, "decode: out of memory for %lld rows of logits",
                           (long long)rows);
        c->logits = grown;
        c->logits_cap = need;
    }
    if ((size_t)n > c->entries_cap) {
        int32_t *grown = ob_realloc(c->entry_row, (size_t)n, sizeof(int32_t));
        if (!grown)
            return ob_fail(err, OB_ERR_NOMEM, "decode: out of memory for %lld entries",
                           (long long)n);
        c->entry_row = grown;
        c->entries_cap = (size_t)n;
    }
    return OB_OK;
}

/* Room for every entry's hidden state when they are kept (model_context_keep_hidden). */
static ob_status grow_hidden(ob_context *c, int64_t n, ob_err *err) {
    c->n_hidden = 0;
    if (!c->keep_hidden || n <= c->hidden_cap) return OB_OK;
    float *h = ob_realloc(c->hidden, (size_t)n * (size_t)c->model->hp.n_embd, sizeof(float));
    if (h) c->hidden = h;
    int32_t *sq = h ? ob_realloc(c->hidden_seq, (size_t)n, sizeof *sq) : NULL;
    if (sq) c->hidden_seq = sq;
    int64_t *ps = sq ? ob_realloc(c->hidden_pos, (size_t)n, sizeof *ps) : NULL;
    if (!ps)
        return ob_fail(err, OB_ERR_NOMEM, "decode: out of memory for the hidden states of %lld "
                       "entries", (long long)n);
    c->hidden_pos = ps;
    c->hidden_cap = n;
    return OB_OK;
}

void model_context_keep_hidden(ob_context *c, bool on) {
    if (c->keep_hidden == on) return; /* a second drafter on the same context */
    c->keep_hidden = on;
    c->n_hidden = 0;
}

const float *model_context_hidden(const ob_context *c, int32_t seq, int64_t pos) {
    for (int64_t i = 0; i < c->n_hidden; i++)
        if (c->hidden_seq[i] == seq && c->hidden_pos[i] == pos)
            return c->hidden + (size_t)i * (size_t)c->model->hp.n_embd;
    return NULL;
}

/* The first non-finite value among rows (n_rows, n_vocab), or -1. A model file with broken
 * weights or metadata (NaN in a tensor, a negative norm epsilon) shows it here first; the
 * scan costs one read of the logits, nothing beside a forward step. */
static int64_t first_non_finite(const float *rows, int64_t n_rows, int64_t n_vocab) {
    const size_t n = (size_t)n_rows * (size_t)n_vocab;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(rows[i])) return (int64_t)i;
    return -1;
}

/* ---- passes ---------------------------------------------------------------------------- */

/* Where entries [i0, i0 + nb) go in the cache and which of them want logits (rows of c->logits
 * from *row on); fills c's step scratch. */
static void pass_plan(ob_context *c, const int32_t *tok, const int64_t *pos, const int32_t *seq,
                      const bool *want, int64_t i0, int64_t nb, int64_t row, bool hidden,
                      model_step *s) {
    *s = (model_step){.tokens = tok + i0, .out_rows = c->step_out, .abort = c->abort,
                      .abort_user = c->abort_user, .hidden = hidden};
    s->kv = (model_kv_batch){.n_tok = nb, .pos = c->step_pos, .seq = c->step_seq,
                             .slot = c->step_slot, .blocks = c->step_blocks,
                             .stepwise = c->rs_stepwise};
    for (int64_t t = 0; t < nb; t++) {
        const int64_t p = pos[i0 + t];
        const int32_t *table = kv_pool_seq_table(c->pool, seq[i0 + t]);
        c->step_pos[t] = (int32_t)p;
        c->step_seq[t] = seq[i0 + t];
        c->step_blocks[t] = table;
        c->step_slot[t] = table[p / KV_BLOCK] * KV_BLOCK + (int32_t)(p % KV_BLOCK);
        if (p + 1 > s->kv.n_kv) s->kv.n_kv = p + 1;
        c->entry_row[i0 + t] = -1;
        if (want[i0 + t]) {
            c->entry_row[i0 + t] = (int32_t)(row + s->n_out);
            c->step_out[s->n_out++] = (int32_t)t;
        }
    }
    const int64_t width = hidden ? c->model->hp.n_embd : c->model->hp.n_vocab;
    s->logits = c->logits + (size_t)row * (size_t)width;
    if (c->keep_hidden && !hidden)
        s->hidden_all = c->hidden + (size_t)i0 * (size_t)c->model->hp.n_embd;
}

/* One forward pass over entries [i0, i0 + nb); *row advances past its rows of logits. */
static ob_status pass_run(ob_context *c, const int32_t *tok, const int64_t *pos,
                          const int32_t *seq, const bool *want, int64_t i0, int64_t nb,
                          bool hidden, int64_t *row, ob_err *err) {
    model_step s;
    pass_plan(c, tok, pos, seq, want, i0, nb, *row, hidden, &s);
    ob_status st = model_stages_forward(c, &s, err);
    if (st && st != OB_ERR_CANCELLED) return st;
    if (st)
        return ob_fail(err, OB_ERR_CANCELLED, "decode: cancelled by the abort callback "
                       "(entries %lld..%lld of the batch)", (long long)i0,
                       (long long)(i0 + nb - 1));
    const int64_t width = hidden ? c->model->hp.n_embd : c->model->hp.n_vocab;
    const int64_t bad = first_non_finite(s.logits, s.n_out, width);
    if (bad >= 0) {
        const int64_t e = i0 + s.out_rows[bad / width];
        const float v = s.logits[bad];
        char which[48] = "";
        if (seq[e] != 0) snprintf(which, sizeof which, " of sequence %d", seq[e]);
        return ob_fail(err, OB_ERR_NUMERIC,
                       "%s: the %s of position %lld%s hold %s (%s %lld): the model's "
                       "weights or metadata are broken", gguf_name(c->model->file),
                       hidden ? "hidden state" : "logits", (long long)pos[e], which,
                       isnan(v) ? "NaN" : (v > 0 ? "+inf" : "-inf"),
                       hidden ? "element" : "token id", (long long)(bad % width));
    }
    *row += s.n_out;
    return OB_OK;
}

/* The rows of positions below this are overwritten in a sequence's sliding-window ring once
 * it has written up to position end - 1. */
static void note_ring_writes(ob_context *c) {
    if (!c->swa_rows) return;
    for (int32_t s = 0; s < c->n_seq; s++) {
        const int64_t lo = kv_pool_seq_len(c->pool, s) + c->seq_new[s] - c->swa_rows;
        if (c->seq_new[s] > 0 && lo > c->swa_lo[s]) c->swa_lo[s] = lo;
        if (c->seq_new[s] > 0 && c->park) ring_park_drop(c->park, s); /* no longer parked */
    }
}

/* ---- recurrent-state snapshots (rs_park.h) -------------------------------------------- */

/* Which sequences run their recurrences token by token (model_kv_batch.stepwise): those whose
 * every entry wants logits (a speculative verification: a prompt wants only its last), and
 * every one in a replay. A prompt's rows go in chunks, the same wherever it is cut, so a prompt
 * that reuses a cached state gets what a cold run gets. */
static void plan_stepwise(ob_context *c, const int32_t *seq, const bool *want, int64_t n) {
    for (int32_t q = 0; q < c->n_seq; q++) c->rs_stepwise[q] = true;
    for (int64_t i = 0; !c->replaying && i < n; i++)
        if (!want[i]) c->rs_stepwise[seq[i]] = false;
}

/* Up to two snapshot points per sequence the batch extends, entries after which its state is
 * kept: c->rs_snap_at[2 q] at the last block boundary the batch crosses, c->rs_snap_at[2 q + 1]
 * at the boundary c->rs_mark[q] asks for (where a cached prefix of its prompt ended). */
static void plan_snapshots(ob_context *c, const int64_t *pos, const int32_t *seq, int64_t n) {
    for (int64_t j = 0; j < 2 * (int64_t)c->n_seq; j++) c->rs_snap_at[j] = c->rs_snap_id[j] = -1;
    if (!c->rs_park) return;
    for (int64_t i = 0; i < n; i++) {
        if ((pos[i] + 1) % KV_BLOCK) continue;
        const int32_t q = seq[i];
        c->rs_snap_at[2 * q] = i; /* the last one wins */
        if ((pos[i] + 1) / KV_BLOCK == c->rs_mark[q]) c->rs_snap_at[2 * q + 1] = i;
    }
    for (int32_t q = 0; q < c->n_seq; q++) /* one copy when both points are the same entry */
        if (c->rs_snap_at[2 * q + 1] == c->rs_snap_at[2 * q]) c->rs_snap_at[2 * q + 1] = -1;
}

/* The end of the pass that starts at entry i0 (at most n_batch entries): cut right after a
 * snapshot point when a later entry of its sequence would follow it in the same pass (the
 * state after the pass would then be a later one). */
static int64_t pass_end(const ob_context *c, const int32_t *seq, int64_t i0, int64_t n) {
    int64_t end = n - i0 < c->n_batch ? n : i0 + c->n_batch;
    if (!c->rs_park) return end;
    for (int64_t j = 0; j < 2 * (int64_t)c->n_seq; j++) {
        const int64_t at = c->rs_snap_at[j];
        if (at < i0 || at >= end - 1) continue;
        for (int64_t t = at + 1; t < end; t++)
            if (seq[t] == seq[at]) {
                end = at + 1;
                break;
            }
    }
    return end;
}

/* After the pass over [i0, end): copies the state of each sequence whose snapshot point it
 * ran into a snapshot (named once the positions are committed). */
static void take_snapshots(ob_context *c, const int32_t *seq, int64_t i0, int64_t end) {
    for (int64_t j = 0; c->rs_park && j < 2 * (int64_t)c->n_seq; j++) {
        const int64_t at = c->rs_snap_at[j];
        if (at < i0 || at >= end) continue;
        /* at most 2 n_seq are taken at once, as many as there are: never -1 in practice */
        if ((c->rs_snap_id[j] = rs_park_take(c->rs_park)) < 0) continue;
        model_stages_rs_copy(c, seq[at], 0, c->n_seq + (int32_t)c->rs_snap_id[j], 0);
    }
}

/* Names the snapshots of a committed batch by their prefix's chain hash, or, when the batch
 * failed, gives them up. */
static void finish_snapshots(ob_context *c, const int64_t *pos, const int32_t *seq,
                             bool committed) {
    for (int64_t j = 0; c->rs_park && j < 2 * (int64_t)c->n_seq; j++) {
        const int64_t id = c->rs_snap_id[j], at = c->rs_snap_at[j];
        if (id < 0) continue;
        const int64_t k = (pos[at] + 1) / KV_BLOCK;
        if (!committed) {
            rs_park_drop(c->rs_park, id);
            continue;
        }
        rs_park_commit(c->rs_park, id, k, kv_pool_prefix_hash(c->pool, seq[at], k));
        if (k == c->rs_mark[seq[at]]) c->rs_mark[seq[at]] = 0;
    }
}

ob_status model_decode_run(ob_context *c, const int32_t *tok, const int64_t *pos,
                           const int32_t *seq, const bool *want, int64_t n, bool hidden,
                           ob_err *err) {
    if (n < 1 || !tok || !pos || !seq || !want)
        return ob_fail(err, OB_ERR_ARG, "decode: %lld entries, expected at least 1",
                       (long long)n);
    ob_status st = check_entries(c, tok, pos, seq, n, err);
    int64_t rows = 0;
    for (int64_t i = 0; i < n; i++) rows += want[i];
    if (!st)
        st = grow_outputs(c, n, rows, hidden ? c->model->hp.n_embd : c->model->hp.n_vocab, err);
    if (!st && !hidden) st = grow_hidden(c, n, err);
    if (!st) st = kv_pool_reserve(c->pool, c->seq_new, err);
    if (st) return st;
    c->n_entries = 0;
    c->n_hidden = 0;
    /* the recurrent state of every sequence the batch touches is kept in its checkpoint slot,
     * to restore on failure (and for a truncation back to this length) */
    for (int32_t q = 0; c->rs_ckpt && q < c->n_seq; q++) {
        if (c->seq_new[q] == 0) continue;
        model_stages_rs_copy(c, q, 0, q, 1);
        c->rs_ckpt[q] = kv_pool_seq_len(c->pool, q);
    }
    int64_t n_copies;
    const kv_copy *copies = kv_pool_copies(c->pool, &n_copies);
    if (n_copies) model_stages_kv_copy(c, copies, n_copies);
    int64_t row = 0;
    if (c->rs_ckpt) {
        plan_snapshots(c, pos, seq, n);
        plan_stepwise(c, seq, want, n);
    }
    for (int64_t i0 = 0, end; i0 < n && !st; i0 = end) {
        end = pass_end(c, seq, i0, n);
        st = pass_run(c, tok, pos, seq, want, i0, end - i0, hidden, &row,
                      err);
        if (!st) take_snapshots(c, seq, i0, end);
    }
    /* The rings were written either way (a ring has no blocks to give back). */
    note_ring_writes(c);
    if (st) {
        kv_pool_rollback(c->pool); /* every sequence as it was before the call */
        for (int32_t q = 0; c->rs_ckpt && q < c->n_seq; q++)
            if (c->seq_new[q]) model_stages_rs_copy(c, q, 1, q, 0);
        finish_snapshots(c, pos, seq, false);
        return st;
    }
    kv_pool_commit(c->pool, tok, pos, seq, n);
    finish_snapshots(c, pos, seq, true);
    if (c->keep_hidden && !hidden) {
        for (int64_t i = 0; i < n; i++) {
            c->hidden_seq[i] = seq[i];
            c->hidden_pos[i] = pos[i];
        }
        c->n_hidden = n;
    }
    c->n_entries = n;
    c->hidden_rows = hidden;
    return OB_OK;
}

ob_status model_decode_replay(ob_context *c, int32_t seq, int64_t from, const int32_t *tok,
                              int64_t n, ob_err *err) {
    const size_t count = (size_t)n;
    int64_t *pos = ob_alloc(count, sizeof *pos);
    int32_t *sq = ob_alloc(count, sizeof *sq);
    bool *want = ob_calloc(count, sizeof *want); /* no rows: the last decode's stay */
    ob_status st;
    if (!pos || !sq || !want) {
        st = ob_fail(err, OB_ERR_NOMEM, "replay: out of memory for %lld positions",
                     (long long)n);
    } else {
        for (int64_t i = 0; i < n; i++) {
            pos[i] = from + i;
            sq[i] = seq;
        }
        /* The rows of the last decode are read after a truncation (a server reads every
         * sequence's rows, then drops each one's rejected draft): this pass gets row numbers
         * of its own, and no abort, since a truncation is all or nothing. */
        int32_t *rows = c->entry_row;
        const size_t rows_cap = c->entries_cap;
        const int64_t n_entries = c->n_entries;
        const bool hidden = c->hidden_rows;
        bool (*abort)(void *) = c->abort;
        const bool keep_hidden = c->keep_hidden;
        const int64_t n_hidden = c->n_hidden;
        c->entry_row = NULL;
        c->entries_cap = 0;
        c->abort = NULL;
        c->keep_hidden = false; /* the hidden states of the last decode stay too */
        c->replaying = true;
        st = model_decode_run(c, tok, pos, sq, want, n, false, err);
        c->replaying = false;
        c->keep_hidden = keep_hidden;
        c->n_hidden = n_hidden;
        ob_free(c->entry_row);
        c->entry_row = rows;
        c->entries_cap = rows_cap;
        c->n_entries = n_entries;
        c->hidden_rows = hidden;
        c->abort = abort;
    }
    ob_free(pos);
    ob_free(sq);
    ob_free(want);
    return st;
}

ob_status ob_decode(ob_context *c, const ob_batch *b, ob_err *err) {
    if (!b) return ob_fail(err, OB_ERR_ARG, "decode: no batch");
    return model_decode_run(c, b->token, b->pos, b->seq, b->logits, b->n, false, err);
}

const float *ob_batch_logits(const ob_context *c, int64_t i) {
    if (c->hidden_rows || i < 0 || i >= c->n_entries || c->entry_row[i] < 0) return NULL;
    return c->logits + (size_t)c->entry_row[i] * (size_t)c->model->hp.n_vocab;
}

/* ---- one sequence ---------------------------------------------------------------------- */

static ob_status check_eval(const ob_context *c, const int32_t *tokens, int64_t n,
                            ob_err *err) {
    const int64_t n_past = kv_pool_seq_len(c->pool, 0);
    if (n <= 0 || !tokens)
        return ob_fail(err, OB_ERR_ARG, "eval: %lld tokens, expected at least 1", (long long)n);
    if (n > c->n_ctx - n_past)
        return ob_fail(err, OB_ERR_LIMIT,
                       "%lld tokens do not fit in the context: %lld positions, %lld already "
                       "used (%lld free)", (long long)n, (long long)c->n_ctx,
                       (long long)n_past, (long long)(c->n_ctx - n_past));
    const int64_t n_vocab = c->model->hp.n_vocab;
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return ob_fail(err, OB_ERR_ARG, "eval: token %lld is id %d, expected 0..%lld",
                           (long long)i, tokens[i], (long long)(n_vocab - 1));
    return OB_OK;
}

ob_status ob_eval(ob_context *c, const int32_t *tokens, int64_t n_tokens, bool all_logits,
                  ob_err *err) {
    ob_status st = check_eval(c, tokens, n_tokens, err);
    if (st) return st;
    const size_t n = (size_t)n_tokens;
    int64_t *pos = ob_alloc(n, sizeof *pos);
    int32_t *seq = ob_calloc(n, sizeof *seq); /* all sequence 0 */
    bool *want = ob_alloc(n, sizeof *want);
    if (!pos || !seq || !want) {
        st = ob_fail(err, OB_ERR_NOMEM, "eval: out of memory for %lld tokens",
                     (long long)n_tokens);
    } else {
        const int64_t n_past = kv_pool_seq_len(c->pool, 0);
        for (int64_t i = 0; i < n_tokens; i++) {
            pos[i] = n_past + i;
            want[i] = all_logits || i == n_tokens - 1;
        }
        st = model_decode_run(c, tokens, pos, seq, want, n_tokens, false, err);
    }
    ob_free(pos);
    ob_free(seq);
    ob_free(want);
    return st;
}

const float *ob_logits(const ob_context *c, int64_t i) {
    if (c->n_entries == 0) return NULL;
    return ob_batch_logits(c, i < 0 ? c->n_entries - 1 : i);
}
