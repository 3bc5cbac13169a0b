/*
 * Mixture-of-experts blocks on the Vulkan device (the op moe_ffn), as cpu_moe_ffn computes
 * them: the router's product, the routing (moe.comp op 0), every (token, chosen expert)
 * entry's gate and up products, SwiGLU, the down products (wtype.glsl mode 2, which reads an
 * entry's expert from the ids the routing wrote) and the weighted sum (moe.comp op 1). The
 * routing stays on the device, so a block neither waits for the host nor sends anything over
 * the link. Each entry multiplies its own row, so a prompt reads an expert's rows once per
 * entry rather than once per pass: simple, and right for decode, where each token has its
 * own experts anyway.
 *
 * A layer's experts of one matrix are uploaded into pieces of whole experts, each piece one
 * binding; an entry whose expert is in another piece is that piece's dispatch's.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "vulkan/vulkan_backend.h"
#include "vulkan/vulkan_be.h"

#include <string.h>

bool vulkan_moe_supported(int64_t n_expert, int64_t n_used, int64_t n_ff_shexp) {
    return n_ff_shexp == 0 && n_used >= 1 && n_used <= VULKAN_MOE_MAX_USED && n_expert >= 1 &&
           n_expert <= VULKAN_MOE_MAX_EXPERTS;
}

/* Uploads the n experts of one matrix (views ws[0..n), consecutive views of one tensor) into
 * pieces of whole experts. */
static ob_status experts_upload(vulkan_backend *b, const model_weight *ws, int64_t n,
                                vb_experts *out, ob_err *err) {
    const model_weight *w0 = &ws[0];
    *out = (vb_experts){.type = w0->type, .n_in = w0->n_in, .n_out = w0->n_out,
                        .row_bytes = w0->row_size, .e_bytes = (size_t)w0->n_out * w0->row_size};
    if (!vulkan_be_type_shader(w0->type))
        return ob_fail(err, OB_ERR_UNSUPPORTED, "vulkan backend: tensor '%s': type %u has no "
                       "Vulkan kernel", w0->name, w0->type);
    if (out->e_bytes % 4 || out->e_bytes > b->c->max_range)
        return ob_fail(err, OB_ERR_LIMIT, "vulkan backend: tensor '%s': an expert's %zu bytes "
                       "are not whole words within one binding (%llu bytes)", w0->name,
                       out->e_bytes, (unsigned long long)b->c->max_range);
    out->per_piece = (int64_t)(b->c->max_range / out->e_bytes);
    if (out->per_piece > n) out->per_piece = n;
    out->n_pieces = (int)((n + out->per_piece - 1) / out->per_piece);
    out->pieces = ob_calloc((size_t)out->n_pieces, sizeof *out->pieces);
    if (!out->pieces) return ob_fail(err, OB_ERR_NOMEM, "vulkan backend: out of memory");
    for (int p = 0; p < out->n_pieces; p++) {
        const int64_t lo = p * out->per_piece;
        const int64_t count = n - lo < out->per_piece ? n - lo : out->per_piece;
        if (vulkan_buf_new(b->c, (size_t)count * out->e_bytes, false, w0->name, &out->pieces[p]))
            break;
        /* the piece's experts share submissions (one each would be thousands for a large
         * model); the flush below runs what the arena still holds */
        for (int64_t e = 0; e < count; e++)
            if (vulkan_buf_upload_queued(b->c, &out->pieces[p], (VkDeviceSize)e * out->e_bytes,
                                         ws[lo + e].data, out->e_bytes))
                break;
    }
    vulkan_flush(b->c);
    if (b->c->st && err) *err = b->c->err;
    return b->c->st;
}

ob_status vulkan_moe_new(vulkan_backend *b, ob_err *err) {
    const model_backend_shape *s = &b->shape;
    const model_backend_weights *ws = s->weights;
    if (s->n_expert <= 0 || s->part == MODEL_PART_NO_MOE || !ws || !ws->moe) return OB_OK;
    if (!vulkan_moe_supported(s->n_expert, s->n_expert_used, s->n_ff_shexp))
        return ob_fail(err, OB_ERR_UNSUPPORTED, "vulkan backend: mixture-of-experts blocks of "
                       "%lld experts, %lld per token%s: the kernels take at most %d experts, "
                       "%d per token, and no shared expert (use --experts host)",
                       (long long)s->n_expert, (long long)s->n_expert_used,
                       s->n_ff_shexp ? ", with a shared expert" : "", VULKAN_MOE_MAX_EXPERTS,
                       VULKAN_MOE_MAX_USED);
    b->experts = ob_calloc(3 * (size_t)s->n_layer, sizeof *b->experts);
    if (!b->experts) return ob_fail(err, OB_ERR_NOMEM, "vulkan backend: out of memory");
    for (int64_t l = 0; l < s->n_layer; l++) {
        const model_moe_block *mb = ws->moe[b->base.layer_lo + l];
        if (!mb) continue;
        const model_weight *parts[3] = {mb->gate, mb->up, mb->down};
        for (int i = 0; i < 3; i++) {
            ob_status st = experts_upload(b, parts[i], mb->n_expert, &b->experts[3 * l + i], err);
            if (st) return st;
        }
    }
    const size_t bytes = (size_t)model_moe_device_bytes(s);
    if (!(b->moe_rows = b->base.ops->host_buf(&b->base, bytes))) {
        if (b->c->st && err) *err = b->c->err;
        return b->c->st ? b->c->st
                        : ob_fail(err, OB_ERR_NOMEM, "vulkan backend: no room for the expert "
                                  "rows of a batch of %lld", (long long)s->n_batch);
    }
    return OB_OK;
}

void vulkan_moe_free(vulkan_backend *b) {
    for (int64_t i = 0; b->experts && i < 3 * b->shape.n_layer; i++) {
        for (int p = 0; p < b->experts[i].n_pieces; p++)
            vulkan_buf_free(b->c, &b->experts[i].pieces[p]);
        ob_free(b->experts[i].pieces);
    }
    ob_free(b->experts);
    b->experts = NULL;
}

/* y (rows, n_out) = for each entry r, row r / x_div of x times expert ids[r]'s matrix; rows
 * at most the grid's z (65,535 at least). */
static void expert_run(vulkan_backend *b, const vb_experts *ex, float *y, const float *x,
                       int64_t x_rows, const int32_t *ids, int64_t rows, uint32_t x_div) {
    vulkan_ref r[4];
    /* the model's rows are in the backend's region; others (a caller's own) are staged */
    if (vulkan_op_begin(b->c, (size_t)(rows * (ex->n_out + 1) + x_rows * ex->n_in) * 4) ||
        !vulkan_be_ref_out(b, y, (size_t)(rows * ex->n_out) * 4, false, &r[0]) ||
        !vulkan_be_ref_in(b, x, (size_t)(x_rows * ex->n_in) * 4, &r[2]) ||
        !vulkan_be_ref_in(b, ids, (size_t)rows * 4, &r[3]))
        return;
    for (int p = 0; p < ex->n_pieces; p++) {
        const int64_t lo = p * ex->per_piece;
        r[1] = (vulkan_ref){ex->pieces[p].buf, 0, ex->pieces[p].size};
        const uint32_t pc[] = {(uint32_t)ex->n_in,
                               (uint32_t)ex->n_out,
                               (uint32_t)rows,
                               (uint32_t)ex->row_bytes,
                               2,
                               0,
                               0,
                               (uint32_t)lo,
                               (uint32_t)(ex->pieces[p].size / ex->e_bytes),
                               (uint32_t)ex->e_bytes,
                               x_div};
        vulkan_be_dispatch(b, vulkan_be_type_shader(ex->type), r, 4, pc, 11,
                           (uint64_t)ex->n_out, (uint32_t)rows);
    }
    vulkan_be_op_done(b);
}

/* expert_run over any number of entries: in runs that fit the grid's z, each a whole number
 * of x's rows. */
static void expert_products(vulkan_backend *b, const vb_experts *ex, float *y, const float *x,
                            int64_t x_rows, const int32_t *ids, int64_t rows, uint32_t x_div) {
    const int64_t lim = b->c->max_groups < 65535 ? b->c->max_groups : 65535;
    const int64_t run = lim / x_div * x_div;
    for (int64_t r0 = 0; r0 < rows; r0 += run) {
        const int64_t n = rows - r0 < run ? rows - r0 : run;
        expert_run(b, ex, y + r0 * ex->n_out, x + r0 / x_div * ex->n_in,
                   (n + x_div - 1) / x_div, ids + r0, n, x_div);
    }
}

/* moe.comp op `op` over n_tok tokens of width n with k entries each. */
static void moe_op(vulkan_backend *b, uint32_t op, float *out, size_t out_bytes, const float *a,
                   size_t a_bytes, int32_t *ids, float *w, int64_t n_tok, int64_t n, int64_t k,
                   const model_moe_block *mb) {
    vulkan_ref r[4];
    if (vulkan_op_begin(b->c, out_bytes + a_bytes + (size_t)(n_tok * k) * 8) ||
        !vulkan_be_ref_out(b, out, out_bytes, false, &r[0]) ||
        !vulkan_be_ref_in(b, a, a_bytes, &r[1]) ||
        !vulkan_be_ref_out(b, ids, (size_t)(n_tok * k) * 4, false, &r[2]) ||
        !vulkan_be_ref_out(b, w, (size_t)(n_tok * k) * 4, true, &r[3]))
        return;
    const uint32_t pc[] = {op, (uint32_t)n_tok, (uint32_t)n, (uint32_t)k, mb->norm ? 1u : 0u,
                           vulkan_be_fbits(mb->scale)};
    const uint64_t groups = op == 0 ? (uint64_t)n_tok : ((uint64_t)(n_tok * n) + 63) / 64;
    vulkan_be_dispatch(b, "moe", r, 4, pc, 6, groups, 1);
    vulkan_be_op_done(b);
}

void vulkan_moe_ffn(model_backend *be, int64_t il, float *out, const float *x, int64_t n_tok) {
    vulkan_backend *b = as_vb(be);
    const model_moe_block *mb = b->shape.weights->moe[il];
    const vb_experts *ex = &b->experts[3 * (il - be->layer_lo)];
    const int64_t ne = mb->n_expert, k = mb->n_used, ff = mb->n_ff, embd = mb->n_embd;
    const int64_t batch = b->shape.n_batch, rows = n_tok * k;
    /* the region, laid out as model_moe_device_bytes counts it */
    float *logits = b->moe_rows, *w = logits + batch * ne;
    int32_t *ids = (int32_t *)(w + batch * k);
    float *g = (float *)(ids + batch * k), *u = g + batch * k * ff, *d = u + batch * k * ff;
    be->ops->matmul(be, logits, &mb->router, x, n_tok);
    /* out is only bound for the op's sake: route writes ids and w */
    moe_op(b, 0, w, (size_t)rows * 4, logits, (size_t)(n_tok * ne) * 4, ids, w, n_tok, ne, k, mb);
    expert_products(b, &ex[0], g, x, n_tok, ids, rows, (uint32_t)k);
    expert_products(b, &ex[1], u, x, n_tok, ids, rows, (uint32_t)k);
    be->ops->swiglu(be, g, g, u, rows * ff);
    expert_products(b, &ex[2], d, g, rows, ids, rows, 1);
    moe_op(b, 1, out, (size_t)(n_tok * embd) * 4, d, (size_t)(rows * embd) * 4, ids, w, n_tok,
           embd, k, mb);
}
