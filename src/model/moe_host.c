/*
 * Mixture-of-experts blocks of a device's layers on the host CPU (moe_host.h).
 */
#include "model/moe_host.h"

#include "core/alloc.h"
#include "core/err.h"
#include "cpu/moe.h"
#include "model/context.h"

#include <string.h>

struct model_moe_host {
    ob_context *c;      /* borrowed: the link's emulation and counts */
    model_backend *cpu; /* owned: binds the MoE blocks of the device's layers only */
    int64_t n_embd;
    float *xn, *out;    /* (n_batch, n_embd) f32 each: a block's input rows and its output on
                           the host */
};

void model_moe_host_shapes(const model_backend_shape *whole, model_backend_shape *device,
                           model_backend_shape *host) {
    *device = *whole;
    device->part = MODEL_PART_NO_MOE;
    device->n_expert = device->n_expert_used = device->n_ff_exp = device->n_ff_shexp = 0;
    *host = *whole;
    host->part = MODEL_PART_MOE;
    host->n_kv_rows = 0;
    host->n_swa = 0;
    host->swa = NULL;
    host->recurrent = NULL;
    host->n_rs_snap = 0;
}

uint64_t model_moe_host_bytes(const model_backend_shape *s) {
    return 2 * (uint64_t)s->n_batch * (uint64_t)s->n_embd * sizeof(float) +
           cpu_moe_scratch_bytes(s->n_batch, s->n_embd, s->n_expert, s->n_expert_used,
                                 s->n_ff_exp, s->n_ff_shexp);
}

void model_moe_host_free(model_moe_host *h) {
    if (!h) return;
    if (h->cpu) h->cpu->ops->free(h->cpu);
    ob_free_aligned(h->xn);
    ob_free_aligned(h->out);
    ob_free(h);
}

ob_status model_moe_host_new(ob_context *c, const model_backend_shape *host, int64_t layer_lo,
                             int64_t layer_hi, int n_threads, model_moe_host **out,
                             ob_err *err) {
    *out = NULL;
    model_moe_host *h = ob_calloc(1, sizeof *h);
    if (!h) return ob_fail(err, OB_ERR_NOMEM, "context: out of memory for the host's experts");
    h->c = c;
    h->n_embd = host->n_embd;
    size_t bytes;
    if (ob_mul_size((size_t)host->n_batch * sizeof(float), (size_t)host->n_embd, &bytes) ||
        !(h->xn = ob_alloc_aligned(64, bytes)) || !(h->out = ob_alloc_aligned(64, bytes))) {
        model_moe_host_free(h);
        return ob_fail(err, OB_ERR_NOMEM, "context: out of memory for the host's expert rows "
                       "(a batch of %lld)", (long long)host->n_batch);
    }
    model_backend_shape range = *host;
    range.n_layer = layer_hi - layer_lo;
    ob_status st = model_backend_cpu_new(&range, layer_lo, n_threads, &h->cpu, err);
    if (st) {
        model_moe_host_free(h);
        return st;
    }
    *out = h;
    return OB_OK;
}

void model_moe_host_set_stream(model_moe_host *h, struct model_stream *s) { h->cpu->stream = s; }

void model_moe_host_ffn(model_moe_host *h, model_backend *dev, int64_t il, float *out,
                        const float *xn, int64_t n_tok) {
    const size_t bytes = (size_t)(n_tok * h->n_embd) * sizeof(float);
    const uint64_t t0 = model_now_ns();
    /* a device records its ops: xn holds the rows once it has run them */
    if (dev->ops->sync && dev->ops->sync(dev, NULL)) return;
    model_link_copy(h->c, h->xn, xn, bytes, false, t0);
    h->cpu->ops->moe_ffn(h->cpu, il, h->out, h->xn, n_tok);
    model_link_copy(h->c, out, h->out, bytes, true, model_now_ns());
}
