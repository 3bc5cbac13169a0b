#version 450
/* Q5_1: blocks of 32 in 24 bytes: f16 d, f16 m, u32 of fifth bits, 16 bytes of nibbles;
 * x = q d + m. */
#define OB_DEQ4
#include "wtype.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 32) * 24, j = i % 32;
    const uint lo = (byte_at(b + 8 + (j % 16)) >> (j < 16 ? 0 : 4)) & 15u;
    const uint hi = (u32_at(b + 4) >> j) & 1u;
    return float(lo | (hi << 4)) * f16_at(b) + f16_at(b + 2);
}
vec4 deq4(uint rb, uint i) {
    const uint b = rb + (i / 32) * 24, j = i % 32, qh = u32_at(b + 4) >> j;
    const vec4 hi = vec4(uvec4(qh, qh >> 1, qh >> 2, qh >> 3) & 1u);
    return (nib4(u32_at(b + 8 + j % 16), j < 16 ? 0u : 4u) + 16.0 * hi) * f16_at(b) +
           f16_at(b + 2);
}
