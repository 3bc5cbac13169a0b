/*
 * The CPU backend's recurrent state (backend_cpu_rs.c): for every Gated DeltaNet layer of its
 * range and every sequence, two slots (0 live, 1 checkpoint) of f32 conv state and delta-rule
 * state, and the deltanet op that reads and updates them. Used by backend_cpu.c only.
 */
#ifndef OB_MODEL_BACKEND_CPU_RS_H
#define OB_MODEL_BACKEND_CPU_RS_H

#include "cpu/pool.h"
#include "model/backend.h"

typedef struct model_cpu_rs model_cpu_rs;

/* State for the recurrent layers of [layer_lo, layer_lo + shape->n_layer) with nth threads;
 * *out stays NULL when the range has none. *out owned by the caller (model_cpu_rs_free). */
ob_status model_cpu_rs_new(const model_backend_shape *shape, int64_t layer_lo, int nth,
                           model_cpu_rs **out, ob_err *err);
void model_cpu_rs_free(model_cpu_rs *rs);

/* model_backend_ops.deltanet and .rs_copy on this state. */
void model_cpu_rs_deltanet(model_cpu_rs *rs, cpu_pool *pool, int64_t il, float *out,
                           float *qkv, const float *z, float *alpha, float *beta,
                           const model_kv_batch *kv, const model_dnet_weights *w);
void model_cpu_rs_copy(model_cpu_rs *rs, int32_t src, int src_slot, int32_t dst, int dst_slot);

#endif
