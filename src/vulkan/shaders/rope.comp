#version 450
/* In-place RoPE of x (n_tok, n_head, head_dim), one invocation per rotated pair. The angle of
 * pair i at position p is freq_scale * p * theta_scale^i / ff[i], the power built by repeated
 * multiplication as the CPU does. neox pairs (i, i + n_dims/2), else (2i, 2i + 1). */
#include "common.glsl"

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Pos { int pos[]; };
layout(std430, binding = 2) readonly buffer FF { float ff[]; };
layout(push_constant) uniform PC {
    uint o_x, o_pos, o_ff, o3, o4, o5;
    uint n_tok, n_head, head_dim, n_dims;
    float theta_scale, freq_scale;
    uint neox, has_ff;
} pc;

void main() {
    const uint half_ = pc.n_dims / 2;
    const uint g = group_index() * WG + gl_LocalInvocationID.x;
    if (g >= pc.n_tok * pc.n_head * half_) return;
    const uint i = g % half_, h = (g / half_) % pc.n_head, t = g / (half_ * pc.n_head);
    float theta = float(pos[pc.o_pos + t]);
    for (uint k = 0; k < i; k++) theta *= pc.theta_scale;
    const float f = pc.has_ff != 0 ? ff[pc.o_ff + i] : 1.0;
    const float th = pc.freq_scale * (theta / f);
    const float c = cos(th), s = sin(th);
    const uint base = pc.o_x + (t * pc.n_head + h) * pc.head_dim;
    const uint ia = base + (pc.neox != 0 ? i : 2 * i);
    const uint ib = base + (pc.neox != 0 ? i + half_ : 2 * i + 1);
    const float x0 = x[ia], x1 = x[ib];
    x[ia] = x0 * c - x1 * s;
    x[ib] = x0 * s + x1 * c;
}
