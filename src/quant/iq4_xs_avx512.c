/*
 * IQ4_XS x Q8_K and IQ4_NL x Q8_0 dot products, AVX-512 (VL + VNNI: dpwssd fuses multiply and
 * accumulate). The kernel is written once in iq4_xs_x86.h for 256-bit registers; this file compiles
 * it with its ISA's flags, which pick the function names and the accumulate step.
 */
#include "quant/iq4_xs_x86.h"
#include "quant/quant_impl.h"

const quant_impl quant_iq4_xs_avx512 = {NULL, NULL, quant_iq4_xs_vec_dot_avx512, NULL, 0};
const quant_impl quant_iq4_nl_avx512 = {NULL, NULL, quant_iq4_nl_vec_dot_avx512, NULL, 0};
