#version 450
/* Q4_1: blocks of 32 in 20 bytes: f16 d, f16 m, 16 bytes of nibbles; x = q d + m. */
#define OB_DEQ4
#include "wtype.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 32) * 20, j = i % 32;
    const uint q = (byte_at(b + 4 + (j % 16)) >> (j < 16 ? 0 : 4)) & 15u;
    return float(q) * f16_at(b) + f16_at(b + 2);
}
vec4 deq4(uint rb, uint i) {
    const uint b = rb + (i / 32) * 20, j = i % 32;
    return nib4(u32_at(b + 4 + j % 16), j < 16 ? 0u : 4u) * f16_at(b) + f16_at(b + 2);
}
