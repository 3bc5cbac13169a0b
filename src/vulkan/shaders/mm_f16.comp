#version 450
/* F16 weights: 2 bytes an element. */
#define OB_DEQ4
#include "wtype.glsl"
float deq(uint rb, uint i) { return f16_at(rb + 2 * i); }
/* rb + 2i is a multiple of 4 (i is, and rows of a multiple of 4 elements start at one) */
vec4 deq4(uint rb, uint i) {
    const uint a = (rb + 2 * i) >> 2;
    return vec4(unpackHalf2x16(wq[a]), unpackHalf2x16(wq[a + 1]));
}
