#version 450
/* Q4_K: super-blocks of 256 in 144 bytes: f16 d, f16 dmin, 12 bytes of scales and mins, 128
 * bytes of nibbles in chunks of 64 (32 bytes: low nibbles the first 32, high the next). */
#define OB_DEQ4
#include "wtype.glsl"
#include "kscale.glsl"
float deq(uint rb, uint i) {
    const uint b = rb + (i / 256) * 144, e = i % 256, c = e / 64, w = e % 64;
    const uint q = (byte_at(b + 16 + 32 * c + w % 32) >> (w < 32 ? 0 : 4)) & 15u;
    const uvec2 sm = scale_min_k4(b + 4, 2 * c + w / 32);
    return f16_at(b) * float(sm.x) * float(q) - f16_at(b + 2) * float(sm.y);
}
vec4 deq4(uint rb, uint i) {
    const uint b = rb + (i / 256) * 144, e = i % 256, c = e / 64, w = e % 64;
    const vec4 q = nib4(u32_at(b + 16 + 32 * c + w % 32), w < 32 ? 0u : 4u);
    const uvec2 sm = scale_min_k4(b + 4, 2 * c + w / 32);
    const vec2 dm = unpackHalf2x16(u32_at(b));
    return dm.x * float(sm.x) * q - dm.y * float(sm.y);
}
