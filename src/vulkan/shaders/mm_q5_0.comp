#version 450
/* Q5_0: blocks of 32 in 22 bytes: f16 d, u32 of fifth bits (bit j for element j), 16 bytes
 * of nibbles; x = (q - 16) d. */
#define OB_DEQ4
#include "wtype.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 32) * 22, j = i % 32;
    const uint lo = (byte_at(b + 6 + (j % 16)) >> (j < 16 ? 0 : 4)) & 15u;
    const uint hi = (u32_at(b + 2) >> j) & 1u;
    return (float(lo | (hi << 4)) - 16.0) * f16_at(b);
}
vec4 deq4(uint rb, uint i) {
    const uint b = rb + (i / 32) * 22, j = i % 32, qh = u32_at(b + 2) >> j;
    const vec4 hi = vec4(uvec4(qh, qh >> 1, qh >> 2, qh >> 3) & 1u);
    return (nib4(u32_at(b + 6 + j % 16), j < 16 ? 0u : 4u) + 16.0 * hi - 16.0) * f16_at(b);
}
