/*
 * The part of backend creation every backend shares: which of the model's weights its layer
 * range reads, their bytes, and a walk over them with progress (backend.h).
 */
#include "model/backend.h"

#include "core/err.h"

uint64_t model_backend_weight_bytes(const model_backend_shape *s, int64_t layer_lo) {
    const model_backend_weights *w = s->weights;
    uint64_t bytes = 0;
    for (int64_t i = 0; w && i < w->n; i++)
        if (model_weight_wanted(w->table[i], layer_lo, layer_lo + s->n_layer, s->n_layer_model,
                                s->part))
            bytes += (uint64_t)w->table[i]->n_out * w->table[i]->row_size;
    return bytes;
}

uint64_t model_moe_device_bytes(const model_backend_shape *s) {
    if (s->n_expert <= 0 || s->part == MODEL_PART_NO_MOE) return 0;
    const uint64_t k = (uint64_t)s->n_expert_used;
    return 4 * (uint64_t)s->n_batch *
           ((uint64_t)s->n_expert + 2 * k + k * (2 * (uint64_t)s->n_ff_exp + (uint64_t)s->n_embd));
}

ob_status model_backend_bind_each(const model_backend_shape *s, int64_t layer_lo,
                                  const char *who, model_bind_one_fn bind, void *user,
                                  ob_err *err) {
    const model_backend_weights *w = s->weights;
    if (!w) return OB_OK;
    const uint64_t total = model_backend_weight_bytes(s, layer_lo);
    uint64_t done = 0;
    for (int64_t i = 0; i < w->n; i++) {
        const model_weight *mw = w->table[i];
        if (!model_weight_wanted(mw, layer_lo, layer_lo + s->n_layer, s->n_layer_model, s->part))
            continue;
        ob_status st = bind(user, mw, err);
        if (st) return st;
        done += (uint64_t)mw->n_out * mw->row_size;
        if (w->progress && !w->progress(done, total, w->progress_user))
            return ob_fail(err, OB_ERR_CANCELLED, "%s: preparing the weights was cancelled",
                           who);
    }
    return OB_OK;
}
