#version 450
/* F32 weights: 4 bytes an element. */
#include "wtype.glsl"
float deq(uint rb, uint i) { return uintBitsToFloat(wq[(rb >> 2) + i]); }
