#version 450
/* IQ4_XS: super-blocks of 256 in 136 bytes: f16 d, u16 scales_h (2 bits per sub-block), 4
 * bytes scales_l (4 bits per sub-block), 128 bytes of level indices (16 per sub-block of 32);
 * x = d (scale - 32) level[q]. */
#include "wtype.glsl"
#include "iq4.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 256) * 136, e = i % 256, ib = e / 32, j = e % 32;
    const uint lo = (byte_at(b + 4 + ib / 2) >> (4 * (ib % 2))) & 15u;
    const uint hi = (u16_at(b + 2) >> (2 * ib)) & 3u;
    const uint q = (byte_at(b + 8 + 16 * ib + j % 16) >> (j < 16 ? 0 : 4)) & 15u;
    return f16_at(b) * float(int(lo | (hi << 4)) - 32) * IQ4_LEVELS[q];
}
