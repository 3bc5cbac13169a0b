#version 450
/* The routing and the weighted sum of a mixture-of-experts block (vulkan_moe.c), as the CPU's
 * cpu_moe_ffn does them:
 *   op 0  route: one workgroup per token t: softmax of its n router logits (a, n_tok x n),
 *         the k largest probabilities best first (ties to the lower expert), divided by their
 *         sum when norm (clamped below at 6.1e-5), times scale unless it is 0 or 1: the
 *         experts into ids[t * k + j], their weights into w[t * k + j]
 *   op 1  combine: out (n_tok, n) = sum over j in order of w[t * k + j] * a[(t * k + j) * n + i]
 *         (a: each entry's expert output), one invocation per element */
#include "common.glsl"

#define MAX_PER 16 /* experts per invocation: n <= WG * MAX_PER (1,024) */

layout(std430, binding = 0) buffer Out { float out_[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) buffer Ids { int ids[]; };
layout(std430, binding = 3) buffer W { float w[]; };
layout(push_constant) uniform PC {
    uint o_out, o_a, o_ids, o_w, o4, o5;
    uint op, n_tok, n, k, norm;
    float scale;
} pc;

void route(uint t) {
    const uint tid = gl_LocalInvocationID.x;
    float p[MAX_PER];
    float m = -1.0 / 0.0;
    for (uint q = 0; q < MAX_PER; q++) {
        const uint e = tid + q * WG;
        p[q] = e < pc.n ? a[pc.o_a + t * pc.n + e] : -1.0 / 0.0;
        m = max(m, p[q]);
    }
    m = wg_max(m);
    float sum = 0.0;
    for (uint q = 0; q < MAX_PER; q++) {
        p[q] = tid + q * WG < pc.n ? exp(p[q] - m) : -1.0;
        sum += max(p[q], 0.0);
    }
    const float inv = 1.0 / wg_sum(sum);
    for (uint q = 0; q < MAX_PER; q++) p[q] = p[q] >= 0.0 ? p[q] * inv : -1.0;
    /* the k best in turn: the largest probability, then the lowest expert holding it */
    float total = 0.0;
    for (uint j = 0; j < pc.k; j++) {
        float best = -1.0;
        for (uint q = 0; q < MAX_PER; q++) best = max(best, p[q]);
        best = wg_max(best);
        float mine = float(pc.n);
        for (uint q = 0; q < MAX_PER; q++)
            if (p[q] == best) mine = min(mine, float(tid + q * WG));
        const uint e = uint(-wg_max(-mine));
        if (e % WG == tid) p[e / WG] = -1.0; /* taken */
        total += best;
        if (tid == 0) {
            ids[pc.o_ids + t * pc.k + j] = int(e);
            w[pc.o_w + t * pc.k + j] = best;
        }
    }
    if (tid != 0) return;
    const float div = pc.norm != 0u ? max(total, 6.103515625e-5) : 1.0;
    const float sc = pc.scale != 0.0 && pc.scale != 1.0 ? pc.scale : 1.0;
    for (uint j = 0; j < pc.k; j++) {
        float v = w[pc.o_w + t * pc.k + j];
        if (pc.norm != 0u) v /= div;
        w[pc.o_w + t * pc.k + j] = v * sc;
    }
}

void main() {
    if (pc.op == 0) {
        const uint t = group_index();
        if (t < pc.n_tok) route(t);
        return;
    }
    const uint i = group_index() * WG + gl_LocalInvocationID.x;
    if (i >= pc.n_tok * pc.n) return;
    const uint t = i / pc.n, c = i % pc.n;
    float o = 0.0;
    for (uint j = 0; j < pc.k; j++) {
        const float d = a[pc.o_a + (t * pc.k + j) * pc.n + c] * w[pc.o_w + t * pc.k + j];
        o = j == 0 ? d : o + d;
    }
    out_[pc.o_out + i] = o;
}
