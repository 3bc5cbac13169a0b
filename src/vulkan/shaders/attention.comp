#version 450
/* Causal attention over the F16 KV cache, one workgroup per (token, head). Token t at
 * position p sees positions first..p (first = p - n_swa + 1 on a sliding-window layer, else
 * 0); position j lives at cache row seq * ring_rows + j % ring_rows on a ring, else at
 * table[j / block] * block + j % block of its sequence's block table. Positions go by in
 * chunks of WG: each invocation scores one position of the chunk, then the online softmax
 * (running max m and sum l) folds the chunk into each invocation's share of the head's output
 * dimensions. q is rounded to F16 first, as on the CPU.
 * meta (int): per token, meta_stride ints: position, sequence, then its block table. */
#include "common.glsl"

#define MAX_HD 1024
#define PER_T (MAX_HD / WG)

layout(std430, binding = 0) buffer Out { float out_[]; };
layout(std430, binding = 1) readonly buffer Q { float q[]; };
layout(std430, binding = 2) readonly buffer KC { uint kc[]; };
layout(std430, binding = 3) readonly buffer VC { uint vc[]; };
layout(std430, binding = 4) readonly buffer Meta { int meta[]; };
layout(push_constant) uniform PC {
    uint o_out, o_q, o_kc, o_vc, o_meta, o5;
    uint n_tok, n_head, n_head_kv, head_dim, kv_stride;
    float scale;
    uint n_swa, ring_rows, block, meta_stride;
} pc;

shared float qs[MAX_HD];
shared float prob[WG];
shared uint rowsh[WG];

uint cache_row(uint t, uint j) {
    const uint mb = pc.o_meta + t * pc.meta_stride;
    if (pc.ring_rows != 0) return uint(meta[mb + 1]) * pc.ring_rows + j % pc.ring_rows;
    return uint(meta[mb + 2 + j / pc.block]) * pc.block + j % pc.block;
}

void main() {
    const uint g = group_index();
    if (g >= pc.n_tok * pc.n_head) return;
    const uint t = g / pc.n_head, h = g % pc.n_head, tid = gl_LocalInvocationID.x;
    const uint hd = pc.head_dim, kvh = h / (pc.n_head / pc.n_head_kv);
    const uint p = uint(meta[pc.o_meta + t * pc.meta_stride]);
    const uint first = pc.n_swa > 0 && p + 1 > pc.n_swa ? p + 1 - pc.n_swa : 0;
    for (uint d = tid; d < hd; d += WG) qs[d] = round_f16(q[pc.o_q + (t * pc.n_head + h) * hd + d]);
    barrier();
    float acc[PER_T];
    for (uint k = 0; k < PER_T; k++) acc[k] = 0.0;
    float m = -1e30, l = 0.0;
    const uint head_w = kvh * hd / 2; /* word offset of the head in a cache row */
    for (uint j0 = first; j0 <= p; j0 += WG) {
        const uint j = j0 + tid;
        float s = -1e30;
        if (j <= p) {
            const uint row = cache_row(t, j);
            rowsh[tid] = row;
            const uint kb = pc.o_kc + row * (pc.kv_stride / 2) + head_w;
            float dot = 0.0;
            for (uint d = 0; d < hd; d += 2) {
                const vec2 kk = unpackHalf2x16(kc[kb + d / 2]);
                dot += qs[d] * kk.x + qs[d + 1] * kk.y;
            }
            s = dot * pc.scale;
        }
        const float m_new = max(m, wg_max(s));
        const float pr = j <= p ? exp(s - m_new) : 0.0;
        prob[tid] = pr;
        const float corr = exp(m - m_new);
        l = l * corr + wg_sum(pr); /* wg_sum's barriers also publish prob and rowsh */
        const uint n_in = min(uint(WG), p + 1 - j0);
        for (uint k = 0; k < PER_T; k++) {
            const uint d = tid + k * WG;
            if (d >= hd) break;
            float a = acc[k] * corr;
            for (uint i = 0; i < n_in; i++) {
                const uint w = pc.o_vc + rowsh[i] * (pc.kv_stride / 2) + head_w + d / 2;
                const vec2 vv = unpackHalf2x16(vc[w]);
                a += prob[i] * ((d & 1u) != 0 ? vv.y : vv.x);
            }
            acc[k] = a;
        }
        m = m_new;
        barrier(); /* prob and rowsh are rewritten by the next chunk */
    }
    for (uint k = 0; k < PER_T; k++) {
        const uint d = tid + k * WG;
        if (d < hd) out_[pc.o_out + (t * pc.n_head + h) * hd + d] = acc[k] / l;
    }
}
