#version 450
/* Q3_K: super-blocks of 256 in 110 bytes: 32 bytes of high bits (hmask), 64 bytes of low
 * 2-bit quants, 12 bytes of 16 packed 6-bit scales, f16 d. x = d (sc - 32) q with q the low
 * bits minus 4 where the high bit is clear. */
#include "wtype.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 256) * 110, e = i % 256;
    const uint half_ = e / 128, r = e % 128, pair = r / 32, l = r % 32;
    const int lo = int((byte_at(b + 32 + 32 * half_ + l) >> (2 * pair)) & 3u);
    const int q = lo - (((byte_at(b + e % 32) >> (e / 32)) & 1u) != 0 ? 0 : 4);
    const uint s = e / 16;
    const uint low4 = s < 8 ? byte_at(b + 96 + s) & 15u : byte_at(b + 96 + s - 8) >> 4;
    const uint hi2 = (byte_at(b + 104 + s % 4) >> (2 * (s / 4))) & 3u;
    return f16_at(b + 108) * float(int(low4 | (hi2 << 4)) - 32) * float(q);
}
