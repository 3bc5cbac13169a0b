#version 450
/* Q2_K: super-blocks of 256 in 84 bytes: 16 scale bytes (low nibble scale, high min), 64
 * bytes of 2-bit quants, f16 d, f16 dmin. Sub-block s = i / 16 takes byte
 * 32 (s / 8) + 16 (s % 2) + i % 16 at shift 2 ((s % 8) / 2); x = d sc q - dmin m. */
#include "wtype.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 256) * 84, e = i % 256, s = e / 16, l = e % 16;
    const uint q = (byte_at(b + 16 + 32 * (s / 8) + 16 * (s % 2) + l) >> (2 * ((s % 8) / 2))) & 3u;
    const uint sc = byte_at(b + s);
    return f16_at(b + 80) * float(sc & 15u) * float(q) - f16_at(b + 82) * float(sc >> 4);
}
