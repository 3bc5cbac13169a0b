/*
 * AVX-512 kernel sets for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: the kernels of legacy_x86.h
 * compiled with AVX-512 VNNI, where each int8 block product is one VPDPBUSD on 256-bit
 * registers (AVX-512VL) instead of two multiply-add instructions.
 */
#include "quant/legacy_x86.h"

const quant_impl quant_q4_0_avx512 = {.vec_dot = x86_q4_0_vec_dot,
    .dot_tile = x86_q4_0_dot_tile};
const quant_impl quant_q4_1_avx512 = {.vec_dot = x86_q4_1_vec_dot,
    .dot_tile = x86_q4_1_dot_tile};
const quant_impl quant_q5_0_avx512 = {.vec_dot = x86_q5_0_vec_dot,
    .dot_tile = x86_q5_0_dot_tile};
const quant_impl quant_q5_1_avx512 = {.vec_dot = x86_q5_1_vec_dot,
    .dot_tile = x86_q5_1_dot_tile};
const quant_impl quant_q8_0_avx512 = {.from_f32 = x86_q8_0_from_f32, .vec_dot = x86_q8_0_vec_dot,
    .dot_tile = x86_q8_0_dot_tile};
const quant_impl quant_q8_1_avx512 = {.from_f32 = x86_q8_1_from_f32, .vec_dot = x86_q8_1_vec_dot,
    .dot_tile = x86_q8_1_dot_tile};

void quant_q8_0_act_avx512(const float *src, void *dst, int64_t n) {
    x86_q8_0_act_from_f32(src, dst, n);
}
void quant_q8_1_act_avx512(const float *src, void *dst, int64_t n) {
    x86_q8_1_act_from_f32(src, dst, n);
}
