#version 450
/* Q5_K: Q4_K's super-block with fifth bits: f16 d, f16 dmin, 12 scale bytes, 32 bytes qh
 * (bit 2c + (w >= 32) of qh[w % 32] for chunk c), 128 bytes of nibbles; 176 bytes. */
#define OB_DEQ4
#include "wtype.glsl"
#include "kscale.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 256) * 176, e = i % 256, c = e / 64, w = e % 64, sub = 2 * c + w / 32;
    const uint lo = (byte_at(b + 48 + 32 * c + w % 32) >> (w < 32 ? 0 : 4)) & 15u;
    const uint hi = (byte_at(b + 16 + w % 32) >> sub) & 1u;
    const uvec2 sm = scale_min_k4(b + 4, sub);
    return f16_at(b) * float(sm.x) * float(lo | (hi << 4)) - f16_at(b + 2) * float(sm.y);
}
vec4 deq4(uint rb, uint i) {
    const uint b = rb + (i / 256) * 176, e = i % 256, c = e / 64, w = e % 64, sub = 2 * c + w / 32;
    const vec4 lo = nib4(u32_at(b + 48 + 32 * c + w % 32), w < 32 ? 0u : 4u);
    const uint qh = u32_at(b + 16 + w % 32) >> sub;
    const vec4 hi = vec4(uvec4(qh, qh >> 8, qh >> 16, qh >> 24) & 1u);
    const uvec2 sm = scale_min_k4(b + 4, sub);
    const vec2 dm = unpackHalf2x16(u32_at(b));
    return dm.x * float(sm.x) * (lo + 16.0 * hi) - dm.y * float(sm.y);
}
