/*
 * Shared by every shader: the workgroup size, the grid-to-index mapping (grids larger than
 * 65535 groups spread over y), f16 rounding, and a workgroup sum that uses subgroup
 * arithmetic when built with OB_SUBGROUP (the host picks that build where the device has it)
 * and shared memory otherwise.
 */
#extension GL_GOOGLE_include_directive : require
#ifdef OB_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#ifdef OB_WG_SPEC
/* The workgroup size is specialization constant 0, which the host always sets: lavapipe
 * (Mesa 22.3) ignores this default. */
layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;
#else
#define WG 64
layout(local_size_x = WG) in;
#endif

/* The workgroup's index in a 2-D grid of gl_NumWorkGroups.x columns. */
uint group_index() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

/* x rounded to the nearest f16, as the CPU's F16 conversions do. */
float round_f16(float x) { return unpackHalf2x16(packHalf2x16(vec2(x, 0.0))).x; }

shared float red_buf[WG];

/* The sum of v over the workgroup, returned to every invocation. */
float wg_sum(float v) {
#ifdef OB_SUBGROUP
    v = subgroupAdd(v);
    /* a workgroup of one subgroup (uniform, so no invocation waits at a barrier alone) */
    if (gl_NumSubgroups == 1) return v;
    if (gl_SubgroupInvocationID == 0) red_buf[gl_SubgroupID] = v;
    barrier();
    float s = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++) s += red_buf[i];
    barrier();
    return s;
#else
    const uint t = gl_LocalInvocationID.x;
    red_buf[t] = v;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (t < s) red_buf[t] += red_buf[t + s];
        barrier();
    }
    const float r = red_buf[0];
    barrier();
    return r;
#endif
}

/* The largest v over the workgroup. */
float wg_max(float v) {
#ifdef OB_SUBGROUP
    v = subgroupMax(v);
    if (gl_SubgroupInvocationID == 0) red_buf[gl_SubgroupID] = v;
    barrier();
    float s = red_buf[0];
    for (uint i = 1; i < gl_NumSubgroups; i++) s = max(s, red_buf[i]);
    barrier();
    return s;
#else
    const uint t = gl_LocalInvocationID.x;
    red_buf[t] = v;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (t < s) red_buf[t] = max(red_buf[t], red_buf[t + s]);
        barrier();
    }
    const float r = red_buf[0];
    barrier();
    return r;
#endif
}
