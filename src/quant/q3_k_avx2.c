/*
 * Q3_K x Q8_K dot product, AVX2.
 * The kernel is written once in q3_k_x86.h for 256-bit registers; this file
 * compiles it with its ISA's flags, which pick the function names and the accumulate step.
 */
#include "quant/q3_k_x86.h"
#include "quant/quant_impl.h"

const quant_impl quant_q3_k_avx2 = {NULL, NULL, quant_q3_k_vec_dot_avx2, NULL, 0};
