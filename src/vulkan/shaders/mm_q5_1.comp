#version 450
/* Q5_1: blocks of 32 in 24 bytes: f16 d, f16 m, u32 of fifth bits, 16 bytes of nibbles;
 * x = q d + m. */
#include "wtype.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 32) * 24, j = i % 32;
    const uint lo = (byte_at(b + 8 + (j % 16)) >> (j < 16 ? 0 : 4)) & 15u;
    const uint hi = (u32_at(b + 4) >> j) & 1u;
    return float(lo | (hi << 4)) * f16_at(b) + f16_at(b + 2);
}
