#version 450
/* BF16 weights: the top half of an F32. */
#include "wtype.glsl"
float deq(uint rb, uint i) { return uintBitsToFloat(u16_at(rb + 2 * i) << 16); }
