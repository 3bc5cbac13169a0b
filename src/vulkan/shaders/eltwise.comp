#version 450
/* Element-wise ops, one invocation per element (of n, or n_rows * n for a bias):
 *   op 0  x += y            op 1  x *= s
 *   op 2  out = silu(a) * b op 3  out = gelu_tanh(a) * b (GeGLU, the CPU's F16 rounding)
 *   op 4  x[r * n + i] += y[i] for every row r (bias) */
#include "common.glsl"

layout(std430, binding = 0) buffer Out { float out_[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(push_constant) uniform PC {
    uint o_out, o_a, o_b, o3, o4, o5;
    uint op, n_total, n;
    float s;
} pc;

float gelu_f16(float g) {
    if (g <= -10.0) return 0.0;
    if (g >= 10.0) return g;
    const float x = round_f16(g);
    return round_f16(0.5 * x * (1.0 + tanh(0.79788456080286535588 * x * (1.0 + 0.044715 * x * x))));
}

void main() {
    const uint i = group_index() * WG + gl_LocalInvocationID.x;
    if (i >= pc.n_total) return;
    if (pc.op == 0) out_[pc.o_out + i] += a[pc.o_a + i];
    else if (pc.op == 1) out_[pc.o_out + i] *= pc.s;
    else if (pc.op == 2) {
        const float g = a[pc.o_a + i];
        out_[pc.o_out + i] = g / (1.0 + exp(-g)) * b[pc.o_b + i];
    } else if (pc.op == 3) out_[pc.o_out + i] = gelu_f16(a[pc.o_a + i]) * b[pc.o_b + i];
    else out_[pc.o_out + i] += a[pc.o_a + i % pc.n];
}
