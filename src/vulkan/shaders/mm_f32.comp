#version 450
/* F32 weights: 4 bytes an element. */
#define OB_DEQ4
#include "wtype.glsl"
float deq(uint rb, uint i) { return uintBitsToFloat(wq[(rb >> 2) + i]); }
vec4 deq4(uint rb, uint i) {
    const uint a = (rb >> 2) + i;
    return uintBitsToFloat(uvec4(wq[a], wq[a + 1], wq[a + 2], wq[a + 3]));
}
