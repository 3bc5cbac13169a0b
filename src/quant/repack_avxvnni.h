/*
 * What the repacked AVX-VNNI kernels (repack_*_avxvnni.c) share. They read the AVX2 kernels'
 * repacked layout and activation rows (repack_avx2.h and friends; quant.c keeps the AVX2 sets'
 * rp_pack and rp_act and takes only rp_dot from here), and replace each int8 multiply-add chain
 * VPMADDUBSW + int16 adds + VPMADDWD with VPDPBUSD, which adds the four u8 x s8 products of
 * each int32 lane straight into an int32 accumulator: no int16 stage to keep below saturation,
 * no VPMADDWD against ones.
 *
 * Every file is compiled twice (Makefile): with -mavxvnni, giving the VEX encoding that CPUs
 * with AVX-VNNI and no AVX-512 run (Alder Lake and later client cores, Zen 5 desktop parts);
 * and, with OB_VNNI_EVEX defined, with -mavx512vnni -mavx512vl, giving the EVEX encoding of the
 * same 256-bit instruction, which computes the same thing. That twin is what CPUs with
 * AVX512-VNNI run under OB_ISA=avxvnni, so the one source is tested where the VEX form cannot
 * execute; VN_SYM gives the twin's symbols their own names.
 */
#ifndef OB_QUANT_REPACK_AVXVNNI_H
#define OB_QUANT_REPACK_AVXVNNI_H

#include "quant/repack_avx2.h"

#if defined(OB_VNNI_EVEX)
#if !defined(__AVX512VNNI__) || !defined(__AVX512VL__)
#error "OB_VNNI_EVEX needs -mavx512vnni -mavx512vl"
#endif
#define VN_SYM(name) name##_evex
/* acc + the four u8 (u) x s8 (s) products of each int32 lane; VPDPWSSD: int16 pairs */
#define vn_dpbusd(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#define vn_dpwssd(acc, a, b) _mm256_dpwssd_epi32(acc, a, b)
#else
#if !defined(__AVXVNNI__)
#error "the AVX-VNNI kernels need -mavxvnni"
#endif
#define VN_SYM(name) name
#define vn_dpbusd(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#define vn_dpwssd(acc, a, b) _mm256_dpwssd_avx_epi32(acc, a, b)
#endif

#endif
