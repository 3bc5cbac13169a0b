#version 450
/* Q8_0: blocks of 32 in 34 bytes: f16 d, 32 int8; x = q d. Rows start at even bytes. */
#define OB_DEQ4
#include "wtype.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 32) * 34;
    return float(i8_at(b + 2 + i % 32)) * f16_at(b);
}
vec4 deq4(uint rb, uint i) {
    const uint b = rb + (i / 32) * 34;
    return i8x4(u32_at(b + 2 + i % 32)) * f16_at(b);
}
