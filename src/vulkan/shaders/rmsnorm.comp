#version 450
/* out (n_rows, n) = x * w / sqrt(mean(x^2) + eps), one workgroup per row; out may alias x
 * (each element is read before it is written, by the same invocation). */
#include "common.glsl"

layout(std430, binding = 0) buffer Out { float out_[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer W { float w[]; };
layout(push_constant) uniform PC {
    uint o_out, o_x, o_w, o3, o4, o5;
    uint n_rows, n;
    float eps;
} pc;

void main() {
    const uint row = group_index();
    if (row >= pc.n_rows) return;
    const uint xb = pc.o_x + row * pc.n, ob = pc.o_out + row * pc.n;
    float s = 0.0;
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += WG) s += x[xb + i] * x[xb + i];
    s = wg_sum(s);
    const float scale = 1.0 / sqrt(s / float(pc.n) + pc.eps);
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += WG)
        out_[ob + i] = (x[xb + i] * scale) * w[pc.o_w + i];
}
