#version 450
/* F16 weights: 2 bytes an element. */
#include "wtype.glsl"
float deq(uint rb, uint i) { return f16_at(rb + 2 * i); }
