/*
 * Matrix products and row lookups over a weight in its GGUF block layout. The including
 * shader defines deq(row_byte, i): element i of the row starting at byte row_byte of wq.
 *   mode 0: y (n_tok, y_stride) f32, columns row_lo.. = x (n_tok, n_in) W^T for this piece of
 *           W (n_out rows); one workgroup per (row, tile of TT tokens), each element of the
 *           row dequantized once per tile.
 *   mode 1: y (n_tok, n_in) = rows ids[0..n_tok) of W (the embedding lookup), those of them
 *           in this piece (rows row_lo..row_lo + n_out).
 */
#include "common.glsl"

#define TT 8

layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer WQ { uint wq[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer Ids { int ids[]; };
layout(push_constant) uniform PC {
    uint o_y, o_w, o_x, o_ids, o4, o5;
    uint n_in, n_out, n_tok, row_bytes, mode, row_lo, y_stride;
} pc;

uint byte_at(uint b) { return (wq[b >> 2] >> ((b & 3u) * 8u)) & 0xffu; }
uint u16_at(uint b) { return byte_at(b) | (byte_at(b + 1) << 8); }
uint u32_at(uint b) { return u16_at(b) | (u16_at(b + 2) << 16); }
float f16_at(uint b) { return unpackHalf2x16(u16_at(b)).x; }
int i8_at(uint b) { return int(byte_at(b) << 24) >> 24; }

float deq(uint row_byte, uint i);

void main() {
    const uint tid = gl_LocalInvocationID.x, wbase = pc.o_w * 4u;
    if (pc.mode == 1) {
        const uint r = group_index();
        if (r >= pc.n_tok) return;
        /* a weight split over bindings: each piece writes the rows it holds */
        const int id = ids[pc.o_ids + r] - int(pc.row_lo);
        if (id < 0 || id >= int(pc.n_out)) return;
        const uint rb = wbase + uint(id) * pc.row_bytes;
        for (uint i = tid; i < pc.n_in; i += WG) y[pc.o_y + r * pc.n_in + i] = deq(rb, i);
        return;
    }
    const uint o = group_index();
    if (o >= pc.n_out) return;
    const uint t0 = gl_WorkGroupID.z * TT, nt = min(uint(TT), pc.n_tok - t0);
    const uint rb = wbase + o * pc.row_bytes;
    float acc[TT];
    for (uint t = 0; t < TT; t++) acc[t] = 0.0;
    for (uint i = tid; i < pc.n_in; i += WG) {
        const float w = deq(rb, i);
        for (uint t = 0; t < nt; t++) acc[t] += w * x[pc.o_x + (t0 + t) * pc.n_in + i];
    }
    for (uint t = 0; t < nt; t++) {
        const float s = wg_sum(acc[t]);
        if (tid == 0) y[pc.o_y + (t0 + t) * pc.y_stride + pc.row_lo + o] = s;
    }
}
