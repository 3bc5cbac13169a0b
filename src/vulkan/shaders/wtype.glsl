/*
 * Matrix products and row lookups over a weight in its GGUF block layout. The including
 * shader defines deq(row_byte, i): element i of the row starting at byte row_byte of wq; and,
 * where it defines OB_DEQ4 first, deq4(row_byte, i): elements i..i+3 (i a multiple of 4) from
 * as few loads as the layout allows. Without it deq4 is four deq.
 *   mode 0: y (n_tok, y_stride) f32, columns row_lo.. = x (n_tok, n_in) W^T for this piece of
 *           W (n_out rows); one workgroup per (row, tile of TT tokens), each element of the
 *           row dequantized once per tile. Where n_in and x's offset are multiples of 4, each
 *           invocation takes 4 elements a step (deq4, x as vec4): a CPU implementation (Mesa's
 *           lavapipe) pays for every buffer load one invocation at a time, and a GPU issues
 *           fewer, wider loads.
 *   mode 1: y (n_tok, n_in) = rows ids[0..n_tok) of W (the embedding lookup), those of them
 *           in this piece (rows row_lo..row_lo + n_out).
 *   mode 2: the products of a mixture-of-experts block's routed experts: entry r < n_tok of y
 *           (n_tok, n_out) = row r / x_div of x (n_in wide) times expert ids[r]'s W^T (n_out
 *           rows), for the entries whose expert this piece holds (experts e_lo..e_lo + e_n,
 *           e_bytes apart). One workgroup per (row, entry), the entry in z.
 */
#ifdef OB_SUBGROUP
#define OB_WG_SPEC /* the host makes the workgroup one subgroup (vulkan_pipeline.c) */
#endif
#include "common.glsl"

#define TT 8

layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer WQ { uint wq[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer X4 { vec4 x4[]; }; /* the same, 4 floats a load */
layout(std430, binding = 3) readonly buffer Ids { int ids[]; };
layout(push_constant) uniform PC {
    uint o_y, o_w, o_x, o_ids, o4, o5;
    uint n_in, n_out, n_tok, row_bytes, mode, row_lo, y_stride;
    uint e_lo, e_n, e_bytes, x_div; /* mode 2 */
} pc;

uint byte_at(uint b) { return (wq[b >> 2] >> ((b & 3u) * 8u)) & 0xffu; }
/* Two bytes from byte b on: one load at an even offset (every block's f16 fields). */
uint u16_at(uint b) {
    return (b & 1u) == 0u ? (wq[b >> 2] >> ((b & 2u) * 8u)) & 0xffffu
                          : byte_at(b) | (byte_at(b + 1) << 8);
}
/* The four bytes from byte b on: one load, or two across a word boundary (never a word past
 * byte b + 3, so never past the buffer). */
uint u32_at(uint b) {
    const uint s = (b & 3u) * 8u, lo = wq[b >> 2];
    return s == 0u ? lo : (lo >> s) | (wq[(b >> 2) + 1u] << (32u - s));
}
float f16_at(uint b) { return unpackHalf2x16(u16_at(b)).x; }
int i8_at(uint b) { return int(byte_at(b) << 24) >> 24; }
/* The bytes of w as 4 signed values, and its 4 nibbles from bit `shift` of each byte. */
vec4 i8x4(uint w) { return vec4(ivec4(w << 24, w << 16, w << 8, w) >> 24); }
vec4 nib4(uint w, uint shift) { return vec4((uvec4(w, w >> 8, w >> 16, w >> 24) >> shift) & 15u); }

float deq(uint row_byte, uint i);
#ifdef OB_DEQ4
vec4 deq4(uint row_byte, uint i);
#else
vec4 deq4(uint rb, uint i) { return vec4(deq(rb, i), deq(rb, i + 1), deq(rb, i + 2), deq(rb, i + 3)); }
#endif

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
    if (pc.mode == 2) { /* every test below is uniform over the workgroup */
        const uint o = group_index(), r = gl_WorkGroupID.z;
        if (o >= pc.n_out || r >= pc.n_tok) return;
        const int e = ids[pc.o_ids + r] - int(pc.e_lo);
        if (e < 0 || e >= int(pc.e_n)) return;
        const uint rb = wbase + uint(e) * pc.e_bytes + o * pc.row_bytes;
        const uint xo = pc.o_x + (r / pc.x_div) * pc.n_in;
        float acc = 0.0;
        if (((pc.n_in | xo) & 3u) == 0u) {
            for (uint i = 4u * tid; i < pc.n_in; i += 4u * WG) acc += dot(deq4(rb, i), x4[(xo + i) >> 2]);
        } else {
            for (uint i = tid; i < pc.n_in; i += WG) acc += deq(rb, i) * x[xo + i];
        }
        const float s = wg_sum(acc);
        if (tid == 0) y[pc.o_y + r * pc.n_out + o] = s;
        return;
    }
    const uint o = group_index();
    if (o >= pc.n_out) return;
    const uint t0 = gl_WorkGroupID.z * TT, nt = min(uint(TT), pc.n_tok - t0);
    const uint rb = wbase + o * pc.row_bytes;
    float acc[TT];
    for (uint t = 0; t < TT; t++) acc[t] = 0.0;
    if (((pc.n_in | pc.o_x) & 3u) == 0u) {
        for (uint i = 4u * tid; i < pc.n_in; i += 4u * WG) {
            const vec4 w = deq4(rb, i);
            for (uint t = 0; t < nt; t++) acc[t] += dot(w, x4[(pc.o_x + (t0 + t) * pc.n_in + i) >> 2]);
        }
    } else {
        for (uint i = tid; i < pc.n_in; i += WG) {
            const float w = deq(rb, i);
            for (uint t = 0; t < nt; t++) acc[t] += w * x[pc.o_x + (t0 + t) * pc.n_in + i];
        }
    }
    for (uint t = 0; t < nt; t++) {
        const float s = wg_sum(acc[t]);
        if (tid == 0) y[pc.o_y + (t0 + t) * pc.y_stride + pc.row_lo + o] = s;
    }
}
