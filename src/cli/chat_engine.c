/*
 * The chat's context and a record of what its KV cache holds, so a turn costs only its new
 * tokens. Each turn renders the whole conversation again (templates may change earlier text,
 * e.g. drop old reasoning), tokenizes it, and compares it with the cached ids: the longest
 * common prefix stays, the cache forgets everything after it (ob_context_truncate), and only
 * the rest is evaluated. A reply's own tokens are in the cache too, so the next turn usually
 * starts evaluating at the end of the previous answer.
 */
#include "cli/chat.h"
#include "core/alloc.h"
#include "core/err.h"

#include <string.h>

ob_status cli_chat_engine_init(cli_chat_engine *e, ob_model *m, const ob_context_params *cp,
                               ob_err *err) {
    memset(e, 0, sizeof *e);
    e->model = m;
    ob_status st = ob_context_new(m, cp, &e->ctx, err);
    if (st) return st;
    e->n_ctx = ob_context_n_ctx(e->ctx);
    e->cap = 256;
    e->cache = ob_alloc(e->cap, sizeof *e->cache);
    if (!e->cache) {
        cli_chat_engine_clear(e);
        return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    }
    return OB_OK;
}

void cli_chat_engine_clear(cli_chat_engine *e) {
    ob_context_free(e->ctx);
    ob_free(e->cache);
    memset(e, 0, sizeof *e);
}

/* Makes room for `need` cached ids. */
static ob_status reserve(cli_chat_engine *e, size_t need, ob_err *err) {
    if (need <= e->cap) return OB_OK;
    size_t cap = e->cap;
    while (cap < need) cap *= 2;
    int32_t *grown = ob_realloc(e->cache, cap, sizeof *grown);
    if (!grown) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    e->cache = grown;
    e->cap = cap;
    return OB_OK;
}

ob_status cli_chat_engine_prefill(cli_chat_engine *e, const int32_t *ids, size_t n,
                                  size_t *n_evaluated, ob_err *err) {
    *n_evaluated = 0;
    if (n == 0) return ob_fail(err, OB_ERR_ARG, "the prompt is empty");
    size_t keep = 0;
    while (keep < e->n_cache && keep < n && e->cache[keep] == ids[keep]) keep++;
    /* The logits of the prompt's last token are needed to sample, and the context keeps only
     * the last evaluated batch's: evaluate at least that one token again. */
    if (keep == n) keep = n - 1;
    ob_status st = reserve(e, n, err);
    if (!st) st = ob_context_truncate(e->ctx, (int64_t)keep, err);
    if (st) return st;
    e->n_cache = keep;
    st = ob_eval(e->ctx, ids + keep, (int64_t)(n - keep), false, err);
    if (st) return st; /* the cache is as before the call: the common prefix */
    memcpy(e->cache + keep, ids + keep, (n - keep) * sizeof *ids);
    e->n_cache = n;
    *n_evaluated = n - keep;
    return OB_OK;
}

ob_status cli_chat_engine_push(cli_chat_engine *e, int32_t id, ob_err *err) {
    if ((int64_t)e->n_cache >= e->n_ctx)
        return ob_fail(err, OB_ERR_LIMIT, "the context is full (%lld tokens)",
                       (long long)e->n_ctx);
    ob_status st = reserve(e, e->n_cache + 1, err);
    if (!st) st = ob_eval(e->ctx, &id, 1, false, err);
    if (st) return st;
    e->cache[e->n_cache++] = id;
    return OB_OK;
}

ob_status cli_chat_engine_spec_step(cli_chat_engine *e, spec_seq *ss, ob_sampler *s,
                                    int32_t id, spec_emit_fn emit, void *user, int32_t *next,
                                    bool *stopped, ob_err *err) {
    *stopped = false;
    /* The cache doubles as the history prompt lookup searches: the pending token goes after
     * it, the step appends what it draws, and the context then holds all but the last. */
    ob_status st = reserve(e, e->n_cache + SPEC_MAX_DRAFT + 2, err);
    if (st) return st;
    e->cache[e->n_cache] = id;
    int64_t n = (int64_t)e->n_cache + 1;
    st = spec_step(e->ctx, 0, ss, s, e->cache, &n, emit, user, stopped, err);
    e->n_cache = (size_t)ob_context_n_past(e->ctx);
    *next = e->cache[n - 1];
    return st;
}
