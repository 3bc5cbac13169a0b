#version 450
/* k, v (n_tok, row) f32 into the F16 caches, token t at cache row rows[t]; one invocation per
 * pair of elements (row is even, so a 32-bit word never spans two cache rows). */
#include "common.glsl"

layout(std430, binding = 0) buffer KC { uint kc[]; };
layout(std430, binding = 1) buffer VC { uint vc[]; };
layout(std430, binding = 2) readonly buffer K { float k[]; };
layout(std430, binding = 3) readonly buffer V { float v[]; };
layout(std430, binding = 4) readonly buffer Rows { int rows[]; };
layout(push_constant) uniform PC {
    uint o_kc, o_vc, o_k, o_v, o_rows, o5;
    uint n_tok, row_words;
} pc;

void main() {
    const uint g = group_index() * WG + gl_LocalInvocationID.x;
    if (g >= pc.n_tok * pc.row_words) return;
    const uint t = g / pc.row_words, w = g % pc.row_words;
    const uint src = t * pc.row_words * 2 + 2 * w;
    const uint dst = uint(rows[pc.o_rows + t]) * pc.row_words + w;
    kc[pc.o_kc + dst] = packHalf2x16(vec2(k[pc.o_k + src], k[pc.o_k + src + 1]));
    vc[pc.o_vc + dst] = packHalf2x16(vec2(v[pc.o_v + src], v[pc.o_v + src + 1]));
}
