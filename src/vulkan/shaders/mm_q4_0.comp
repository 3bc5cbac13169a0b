#version 450
/* Q4_0: blocks of 32 in 18 bytes: f16 d, 16 bytes of nibbles (element j low, j + 16 high);
 * x = (q - 8) d. */
#define OB_DEQ4
#include "wtype.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 32) * 18, j = i % 32;
    const uint q = (byte_at(b + 2 + (j % 16)) >> (j < 16 ? 0 : 4)) & 15u;
    return (float(q) - 8.0) * f16_at(b);
}
vec4 deq4(uint rb, uint i) {
    const uint b = rb + (i / 32) * 18, j = i % 32;
    return (nib4(u32_at(b + 2 + j % 16), j < 16 ? 0u : 4u) - 8.0) * f16_at(b);
}
