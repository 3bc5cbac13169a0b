#version 450
/* Q6_K: super-blocks of 256 in 210 bytes: 128 bytes low nibbles (ql), 64 bytes high bit pairs
 * (qh), 16 int8 scales, f16 d. Element h*128 + 32k + l: nibble of ql[64h + l (+32 for odd k)]
 * (high for k >= 2), bits 2k of qh[32h + l]; x = d sc[8h + l/16 + 2k] (q - 32). */
#define OB_DEQ4
#include "wtype.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 256) * 210, e = i % 256, h = e / 128, k = (e % 128) / 32, l = e % 32;
    const uint ql = byte_at(b + 64 * h + l + ((k & 1u) != 0 ? 32 : 0));
    const uint lo = (ql >> ((k & 2u) != 0 ? 4 : 0)) & 15u;
    const uint hi = (byte_at(b + 128 + 32 * h + l) >> (2 * k)) & 3u;
    const int sc = i8_at(b + 192 + 8 * h + l / 16 + 2 * k);
    return f16_at(b + 208) * float(sc) * float(int(lo | (hi << 4)) - 32);
}
vec4 deq4(uint rb, uint i) {
    const uint b = rb + (i / 256) * 210, e = i % 256, h = e / 128, k = (e % 128) / 32, l = e % 32;
    const vec4 lo = nib4(u32_at(b + 64 * h + l + ((k & 1u) != 0 ? 32 : 0)), (k & 2u) != 0 ? 4u : 0u);
    const uint qh = u32_at(b + 128 + 32 * h + l) >> (2 * k);
    const vec4 hi = vec4(uvec4(qh, qh >> 8, qh >> 16, qh >> 24) & 3u);
    const int sc = i8_at(b + 192 + 8 * h + l / 16 + 2 * k);
    return f16_at(b + 208) * float(sc) * (lo + 16.0 * hi - 32.0);
}
