/* Scale and min j (0..7) of a Q4_K / Q5_K super-block from its 12 packed bytes at b. */
uvec2 scale_min_k4(uint b, uint j) {
    if (j < 4) return uvec2(byte_at(b + j) & 63u, byte_at(b + j + 4) & 63u);
    return uvec2((byte_at(b + j + 4) & 15u) | ((byte_at(b + j - 4) >> 6) << 4),
                 (byte_at(b + j + 4) >> 4) | ((byte_at(b + j) >> 6) << 4));
}
