/*
 * Q4_0, Q5_0, Q8_0 and IQ4_NL weights repacked 8 rows at a time, NEON with SDOT: the matmul
 * kernels for decode (one activation row, streaming the group) and prefill (up to 4 activation
 * rows share each unpacked weight register) on Arm CPUs without I8MM. Layout, activation rows
 * and the kernel itself: repack_neon.h.
 */
#include "quant/repack_neon.h"

#define RN_DEFINE_DOT(NAME, KIND) REPACK_DEFINE_DOT(NAME, rn_sdot_group, KIND, RN_ROWS)

RN_DEFINE_DOT(rn_dot_q4_0, RN_Q4_0)
RN_DEFINE_DOT(rn_dot_q5_0, RN_Q5_0)
RN_DEFINE_DOT(rn_dot_q8_0, RN_Q8_0)
RN_DEFINE_DOT(rn_dot_iq4_nl, RN_IQ4_NL)

const quant_repack_impl quant_q4_0_repack_neon = {RN_ROWS, rn_pack_q4_0, rn_act_size,
                                                 rn_act_q4_0, rn_dot_q4_0};
const quant_repack_impl quant_q5_0_repack_neon = {RN_ROWS, rn_pack_q5_0, rn_act_size,
                                                 rn_act_q5_0, rn_dot_q5_0};
const quant_repack_impl quant_q8_0_repack_neon = {RN_ROWS, rn_pack_q8_0, rn_act_size,
                                                 rn_act_signed, rn_dot_q8_0};
const quant_repack_impl quant_iq4_nl_repack_neon = {RN_ROWS, rn_pack_q4_0, rn_act_size,
                                                   rn_act_signed, rn_dot_iq4_nl};
