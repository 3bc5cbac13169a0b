/*
 * Weight streaming (stream.h).
 */
#include "model/stream.h"

#include "core/alloc.h"
#include "core/err.h"
#include "model/context.h"

struct model_stream {
    ob_context *c;      /* borrowed: the link's emulation and counts */
    model_backend *dev; /* runs the products */
    bool owns_dev;
    int64_t min_tok;
};

ob_status model_stream_new(ob_context *c, model_backend *dev, bool owns_dev, int64_t min_tok,
                           model_stream **out, ob_err *err) {
    *out = NULL;
    if (!dev->ops->matmul_streamed || min_tok < 2) {
        if (owns_dev) dev->ops->free(dev);
        return ob_fail(err, OB_ERR_UNSUPPORTED, "context: the %s backend does not stream "
                       "host weights", dev->ops->name);
    }
    model_stream *s = ob_calloc(1, sizeof *s);
    if (!s) {
        if (owns_dev) dev->ops->free(dev);
        return ob_fail(err, OB_ERR_NOMEM, "context: out of memory");
    }
    *s = (model_stream){.c = c, .dev = dev, .owns_dev = owns_dev, .min_tok = min_tok};
    *out = s;
    return OB_OK;
}

void model_stream_free(model_stream *s) {
    if (!s) return;
    if (s->owns_dev) s->dev->ops->free(s->dev);
    ob_free(s);
}

model_backend *model_stream_device(model_stream *s) { return s->dev; }

model_backend *model_stream_own_device(model_stream *s) {
    return s && s->owns_dev ? s->dev : NULL;
}

void model_stream_product_bytes(const model_weight *w, int64_t n_tok, uint64_t *over,
                                uint64_t *back) {
    *over = (uint64_t)w->n_out * w->row_size + (uint64_t)(n_tok * w->n_in) * sizeof(float);
    *back = (uint64_t)(n_tok * w->n_out) * sizeof(float);
}

bool model_stream_matmul(model_stream *s, float *y, const model_weight *w, const float *x,
                         int64_t n_tok) {
    if (!s || n_tok < s->min_tok) return false;
    const uint64_t t0 = model_now_ns();
    s->dev->ops->matmul_streamed(s->dev, y, w, x, n_tok);
    uint64_t over, back;
    model_stream_product_bytes(w, n_tok, &over, &back);
    model_link_shipped(s->c, over, back, (uint64_t)w->n_out * w->row_size, w->expert, t0);
    return true;
}
