/*
 * Weight streaming: the matrix products of the host's layers run on the device for passes of
 * many rows (a prompt chunk). A device behind a slow cable cannot hold every layer, and the
 * host's CPU is slow at a prompt's products, which grow with the rows while the weight does
 * not: past some chunk size, shipping a product's weight over the link and running it on the
 * device beats the CPU. The plan (plan_stream.c) says from which size; the CPU backend asks
 * model_stream_matmul for each product, which sends those of enough rows to the device
 * (ops.matmul_streamed) and counts what crossed through the context's transfer counts, an
 * emulated link adding its time. Everything else of those layers (norms, RoPE, attention, the
 * KV cache) stays on the CPU, so only products cross: a weight and its input rows over, its
 * output rows back.
 */
#ifndef OB_MODEL_STREAM_H
#define OB_MODEL_STREAM_H

#include "model/backend.h"
#include "outboard.h"

typedef struct model_stream model_stream;

/* Streaming for context c through device backend dev (owned when owns_dev: a device holding
 * none of the layers) for products of at least min_tok rows (>= 2). *out owned by the caller
 * (model_stream_free). */
ob_status model_stream_new(ob_context *c, model_backend *dev, bool owns_dev, int64_t min_tok,
                           model_stream **out, ob_err *err);
void model_stream_free(model_stream *s);

/* The device it streams to. */
model_backend *model_stream_device(model_stream *s);

/* That device when the stream owns it, which the pass then synchronises itself (NULL: none,
 * or the device is a stage of the context). */
model_backend *model_stream_own_device(model_stream *s);

/* y = x W^T on the device when n_tok reaches the stream's size, counting the weight and x
 * going over and y coming back (false: the caller runs it). */
bool model_stream_matmul(model_stream *s, float *y, const model_weight *w, const float *x,
                         int64_t n_tok);

/* Bytes a streamed product of n_tok rows sends to the device (its weight and input rows) and
 * reads back (its output rows), as model_stream_matmul counts them. */
void model_stream_product_bytes(const model_weight *w, int64_t n_tok, uint64_t *over,
                                uint64_t *back);

#endif
