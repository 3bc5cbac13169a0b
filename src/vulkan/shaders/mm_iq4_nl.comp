#version 450
/* IQ4_NL: blocks of 32 in 18 bytes: f16 d, 16 bytes of level indices (element j low nibble,
 * j + 16 high); x = d level[q]. */
#include "wtype.glsl"
#include "iq4.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 32) * 18, j = i % 32;
    const uint q = (byte_at(b + 2 + j % 16) >> (j < 16 ? 0 : 4)) & 15u;
    return f16_at(b) * IQ4_LEVELS[q];
}
