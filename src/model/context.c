/*
 * ob_context: one inference session. Owns the backend (KV cache, thread pool, matmul
 * scratch), the activation buffers of one forward pass and the logits of the last ob_eval.
 * A long input is cut into passes of n_batch tokens; each pass is one forward step over the
 * whole piece (matrix-matrix products), and only the rows whose logits are asked for are
 * projected to the vocabulary.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "cpu/pool.h"
#include "model/model.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#define CTX_DEFAULT_MAX 4096
#define CTX_MAX (1 << 24)

struct ob_context {
    ob_model *model;       /* borrowed */
    model_backend *be;     /* owned: all layers on the CPU */
    model_buffers buf;     /* owned: one forward pass of n_batch tokens */
    int64_t n_ctx, n_batch, n_past;
    int64_t swa_rows;      /* rows of a sliding-window layer's ring cache, 0 = no such layer */
    size_t kv_bytes;       /* K and V cache bytes (model_kv_bytes) */
    float *logits;         /* (logits_cap / n_vocab, n_vocab) f32 */
    size_t logits_cap;     /* floats allocated */
    int64_t n_logits;      /* rows valid from the last ob_eval */
    int64_t logits_first;  /* token index (within that call) of row 0 */
};

void ob_context_params_init(ob_context_params *p) {
    *p = (ob_context_params){.n_ctx = 0, .n_batch = 512, .n_threads = 0};
}

static void buffers_free(model_buffers *b) {
    float **fs[] = {&b->x, &b->xn, &b->q, &b->k, &b->v, &b->attn, &b->proj, &b->gate, &b->up};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
        ob_free_aligned(*fs[i]);
        *fs[i] = NULL;
    }
    ob_free(b->pos);
    b->pos = NULL;
}

static ob_status buffers_new(model_buffers *b, const model_hparams *hp, int64_t n,
                             ob_err *err) {
    const size_t nb = (size_t)n;
    struct {
        float **p;
        int64_t width;
    } plan[] = {
        {&b->x, hp->n_embd},    {&b->xn, hp->n_embd},
        {&b->q, hp->n_head * hp->head_dim},    {&b->k, hp->n_head_kv * hp->head_dim},
        {&b->v, hp->n_head_kv * hp->head_dim}, {&b->attn, hp->n_head * hp->head_dim},
        {&b->proj, hp->n_embd}, {&b->gate, hp->n_ff}, {&b->up, hp->n_ff},
    };
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        size_t bytes;
        if (ob_mul_size(nb * sizeof(float), (size_t)plan[i].width, &bytes) ||
            !(*plan[i].p = ob_alloc_aligned(64, bytes))) {
            buffers_free(b);
            return ob_fail(err, OB_ERR_NOMEM, "context: out of memory for a batch of %lld",
                           (long long)n);
        }
    }
    b->pos = ob_alloc(nb, sizeof(int32_t));
    if (!b->pos) {
        buffers_free(b);
        return ob_fail(err, OB_ERR_NOMEM, "context: out of memory for a batch of %lld",
                       (long long)n);
    }
    return OB_OK;
}

static ob_status check_params(const ob_model *m, ob_context_params *p, ob_err *err) {
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
    if (p->n_batch > p->n_ctx) p->n_batch = p->n_ctx;
    return OB_OK;
}

/* A host cache larger than the machine's memory would be allocated lazily and then fail
 * page by page deep in a forward step; refuse it up front with the figures. */
static ob_status check_host_memory(size_t kv_bytes, int64_t n_ctx, ob_err *err) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return OB_OK; /* unknown: nothing to compare with */
    const double have = (double)pages * (double)page;
    if ((double)kv_bytes <= have) return OB_OK;
    return ob_fail(err, OB_ERR_LIMIT, "context: the KV cache of %lld positions needs %.1f GiB, "
                   "more than the machine's %.1f GiB of memory", (long long)n_ctx,
                   (double)kv_bytes / (1 << 30), have / (1 << 30));
}

ob_status ob_context_new(ob_model *m, const ob_context_params *params, ob_context **out,
                         ob_err *err) {
    *out = NULL;
    ob_context_params p;
    if (params) p = *params;
    else ob_context_params_init(&p);
    ob_status st = check_params(m, &p, err);
    if (st) return st;
    ob_context *c = ob_calloc(1, sizeof *c);
    if (!c) return ob_fail(err, OB_ERR_NOMEM, "context: out of memory");
    c->model = m;
    c->n_ctx = p.n_ctx;
    c->n_batch = p.n_batch;
    const model_hparams *hp = &m->hp;
    model_backend_shape shape = {
        .arch = hp->arch_name, .n_swa = hp->n_swa, .swa = hp->swa,
        .n_layer = hp->n_layer, .n_ctx = p.n_ctx, .n_batch = p.n_batch, .n_head = hp->n_head,
        .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
        .matmul_wsize = model_matmul_wsize(m, p.n_batch),
    };
    c->kv_bytes = model_kv_bytes(&shape, 0);
    c->swa_rows = hp->n_swa > 0 ? model_swa_rows(&shape) : 0;
    if (p.device == OB_DEVICE_CPU && (st = check_host_memory(c->kv_bytes, p.n_ctx, err))) {
        ob_free(c);
        return st;
    }
    st = OB_ERR_UNSUPPORTED;
    if (p.device == OB_DEVICE_CUDA || p.device == OB_DEVICE_AUTO)
        st = model_backend_cuda_new(&shape, 0, 0, &c->be, err);
    if (st && p.device != OB_DEVICE_CUDA) /* auto without a device: the CPU, as its message says */
        st = model_backend_cpu_new(&shape, 0, p.n_threads, &c->be, err);
    if (!st) st = buffers_new(&c->buf, hp, p.n_batch, err);
    if (st) {
        ob_context_free(c);
        return st;
    }
    *out = c;
    return OB_OK;
}

static bool is_cuda(const ob_context *c) { return !strcmp(c->be->ops->name, "cuda"); }

void ob_context_free(ob_context *c) {
    if (!c) return;
    if (c->be) c->be->ops->free(c->be);
    buffers_free(&c->buf);
    ob_free(c->logits);
    ob_free(c);
}

int64_t ob_context_n_ctx(const ob_context *c) { return c->n_ctx; }
int64_t ob_context_n_past(const ob_context *c) { return c->n_past; }
int ob_context_n_threads(const ob_context *c) {
    return is_cuda(c) ? 0 : model_backend_cpu_threads(c->be);
}

size_t model_context_kv_bytes(const ob_context *c) { return c->kv_bytes; }

ob_status ob_context_truncate(ob_context *c, int64_t n_past, ob_err *err) {
    if (n_past < 0 || n_past > c->n_past)
        return ob_fail(err, OB_ERR_ARG, "truncate: n_past %lld, expected 0..%lld",
                       (long long)n_past, (long long)c->n_past);
    /* A sliding-window layer's ring has overwritten the positions older than its last
     * swa_rows; going back more than swa_rows - n_swa would expose overwritten rows. */
    const int64_t back = c->swa_rows - c->model->hp.n_swa;
    if (c->swa_rows && n_past > 0 && c->n_past > c->swa_rows && n_past < c->n_past - back)
        return ob_fail(err, OB_ERR_LIMIT, "truncate: n_past %lld: the sliding-window cache "
                       "keeps the last %lld positions of %lld; expected 0 or %lld..%lld",
                       (long long)n_past, (long long)c->swa_rows, (long long)c->n_past,
                       (long long)(c->n_past - back), (long long)c->n_past);
    c->be->ops->kv_truncate(c->be, n_past);
    c->n_past = n_past;
    c->n_logits = 0;
    return OB_OK;
}

static ob_status check_eval(const ob_context *c, const int32_t *tokens, int64_t n,
                            ob_err *err) {
    if (n <= 0 || !tokens)
        return ob_fail(err, OB_ERR_ARG, "eval: %lld tokens, expected at least 1", (long long)n);
    if (n > c->n_ctx - c->n_past)
        return ob_fail(err, OB_ERR_LIMIT,
                       "%lld tokens do not fit in the context: %lld positions, %lld already "
                       "used (%lld free)", (long long)n, (long long)c->n_ctx,
                       (long long)c->n_past, (long long)(c->n_ctx - c->n_past));
    const int64_t n_vocab = c->model->hp.n_vocab;
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return ob_fail(err, OB_ERR_ARG, "eval: token %lld is id %d, expected 0..%lld",
                           (long long)i, tokens[i], (long long)(n_vocab - 1));
    return OB_OK;
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

ob_status ob_eval(ob_context *c, const int32_t *tokens, int64_t n_tokens, bool all_logits,
                  ob_err *err) {
    ob_status st = check_eval(c, tokens, n_tokens, err);
    if (st) return st;
    const int64_t n_vocab = c->model->hp.n_vocab;
    const int64_t rows = all_logits ? n_tokens : 1;
    size_t need;
    if (ob_mul_size((size_t)rows, (size_t)n_vocab, &need))
        return ob_fail(err, OB_ERR_LIMIT, "eval: logits of %lld tokens overflow", (long long)rows);
    if (need > c->logits_cap) {
        float *grown = ob_realloc(c->logits, need, sizeof(float));
        if (!grown)
            return ob_fail(err, OB_ERR_NOMEM, "eval: out of memory for %lld rows of logits",
                           (long long)rows);
        c->logits = grown;
        c->logits_cap = need;
    }
    model_forward_fn forward = model_forward_of(c->model);
    const int64_t n_past0 = c->n_past;
    for (int64_t i = 0; i < n_tokens; i += c->n_batch) {
        int64_t nb = n_tokens - i < c->n_batch ? n_tokens - i : c->n_batch;
        bool last = i + nb == n_tokens;
        int64_t n_out = all_logits ? nb : (last ? 1 : 0);
        float *dst = all_logits ? c->logits + (size_t)i * (size_t)n_vocab : c->logits;
        forward(c->model, c->be, &c->buf, tokens + i, nb, c->n_past, dst, n_out);
        if (is_cuda(c) && (st = model_backend_cuda_status(c->be, err))) return st;
        int64_t bad = first_non_finite(dst, n_out, n_vocab);
        if (bad >= 0) {
            /* keep the contract: the cache as it was before the call */
            c->be->ops->kv_truncate(c->be, n_past0);
            c->n_past = n_past0;
            c->n_logits = 0;
            const int64_t row = bad / n_vocab, tok = i + nb - n_out + row;
            const float v = dst[bad];
            return ob_fail(err, OB_ERR_NUMERIC,
                           "%s: the logits of position %lld hold %s (token id %lld): the "
                           "model's weights or metadata are broken",
                           gguf_name(c->model->file), (long long)(n_past0 + tok),
                           isnan(v) ? "NaN" : (v > 0 ? "+inf" : "-inf"),
                           (long long)(bad % n_vocab));
        }
        c->n_past += nb;
    }
    c->n_logits = rows;
    c->logits_first = n_tokens - rows;
    return OB_OK;
}

const float *ob_logits(const ob_context *c, int64_t i) {
    if (c->n_logits == 0) return NULL;
    if (i < 0) i = c->logits_first + c->n_logits - 1;
    if (i < c->logits_first || i >= c->logits_first + c->n_logits) return NULL;
    return c->logits + (size_t)(i - c->logits_first) * (size_t)c->model->hp.n_vocab;
}
