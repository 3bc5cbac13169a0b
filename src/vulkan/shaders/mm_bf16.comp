#version 450
/* BF16 weights: the top half of an F32. */
#define OB_DEQ4
#include "wtype.glsl"
float deq(uint rb, uint i) { return uintBitsToFloat(u16_at(rb + 2 * i) << 16); }
vec4 deq4(uint rb, uint i) {
    const uint a = (rb + 2 * i) >> 2, w0 = wq[a], w1 = wq[a + 1];
    return uintBitsToFloat(uvec4(w0 << 16, w0 & 0xffff0000u, w1 << 16, w1 & 0xffff0000u));
}
