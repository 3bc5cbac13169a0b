/*
 * Mixture-of-experts blocks of a device's layers run on the host CPU. A GPU backend without
 * MoE kernels, or one whose memory holds a model's attention and cache but not its experts,
 * still runs those layers: their attention, norms and KV cache stay on the device, and each
 * layer's MoE block (router, routed experts and shared expert) runs on a CPU backend that
 * binds only the blocks' weights. Per block, the normed input rows cross to the host and the
 * block's output crosses back, each through the context's one counted copy path
 * (model_link_copy), so the link's cost shows in ob_transfer_stats and an emulated link
 * throttles it. The device backend is made from model_moe_host_shapes' device shape, so it
 * neither uploads the blocks' weights nor sizes any expert scratch.
 */
#ifndef OB_MODEL_MOE_HOST_H
#define OB_MODEL_MOE_HOST_H

#include "model/backend.h"
#include "outboard.h"

typedef struct model_moe_host model_moe_host;

/* The two shapes of a device range whose MoE blocks run on the host, from the whole model's
 * shape: *device binds all but the blocks' weights and has no experts to size scratch for;
 * *host binds only the blocks' weights and has no KV cache, window rings or recurrent
 * state (it runs nothing else). */
void model_moe_host_shapes(const model_backend_shape *whole, model_backend_shape *device,
                           model_backend_shape *host);

/* Bytes of host memory a model_moe_host for host shape s allocates besides the weights: the
 * rows crossing each way and the CPU's expert scratch, both for s->n_batch rows. */
uint64_t model_moe_host_bytes(const model_backend_shape *s);

/* The host's part of the device's layers [layer_lo, layer_hi), host the whole model's host
 * shape from model_moe_host_shapes: a CPU backend of n_threads over those layers' MoE blocks'
 * weights, and the rows of a batch. c is borrowed for the helper's life (its link and
 * transfer counts). *out owned by the caller (model_moe_host_free). */
ob_status model_moe_host_new(ob_context *c, const model_backend_shape *host, int64_t layer_lo,
                             int64_t layer_hi, int n_threads, model_moe_host **out,
                             ob_err *err);
void model_moe_host_free(model_moe_host *h);

/* Routed experts with enough rows of a prompt chunk run their products on the stream's device
 * (stream.h; borrowed, NULL: none), their weights shipped over the link like a host layer's. */
struct model_stream;
void model_moe_host_set_stream(model_moe_host *h, struct model_stream *s);

/* out (n_tok, n_embd) = layer il's MoE block of xn (n_tok, n_embd), both activation buffers of
 * the device backend dev (host-addressable, ops.host_buf): waits for dev to have run its ops,
 * copies xn to the host, runs the block on the CPU and copies the result into out. When dev
 * has failed, out is left as it is: dev keeps the failure and the pass's sync reports it. */
void model_moe_host_ffn(model_moe_host *h, model_backend *dev, int64_t il, float *out,
                        const float *xn, int64_t n_tok);

#endif
