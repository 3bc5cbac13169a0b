/*
 * Quantization presets (src/quant/mix.c): the per-tensor choices llama.cpp's quantizer makes
 * for a dense 16-layer model, worked out by hand from its documented rules, plus the row-size
 * fallbacks, tied embeddings and grouped-query attention. test_kquant_ref.py also compares the
 * whole type layout of a quantized file with llama.cpp's for every preset.
 */
#include "quant/mix.h"
#include "quant/quant.h"
#include "test.h"

static const int64_t SQ[2] = {256, 256};

static uint32_t type_of(const char *preset, const char *name, int64_t layer) {
    return quant_mix_tensor_type(quant_preset_find(preset), name, layer, 16, SQ, 2);
}

TEST(presets_are_found_by_name) {
    CHECK(quant_preset_count() >= 13);
    CHECK(quant_preset_find("q4_k_m") == quant_preset_find("Q4_K_M"));
    CHECK_EQ_INT(quant_preset_find("Q4_K_M")->file_type, 15);
    CHECK_EQ_INT(quant_preset_find("Q4_K_M")->base_type, OB_QTYPE_Q4_K);
    CHECK_EQ_INT(quant_preset_find("IQ4_XS")->file_type, 30);
    CHECK(quant_preset_find("Q7_K") == NULL && quant_preset_find(NULL) == NULL);
    for (size_t i = 0; i < quant_preset_count(); i++)
        CHECK(quant_traits_ref(quant_preset_at(i)->base_type) != NULL);
}

TEST(q4_k_m_layout) {
    CHECK_EQ_INT(type_of("Q4_K_M", "output.weight", -1), OB_QTYPE_Q6_K);
    CHECK_EQ_INT(type_of("Q4_K_M", "token_embd.weight", -1), OB_QTYPE_Q4_K);
    CHECK_EQ_INT(type_of("Q4_K_M", "blk.5.attn_q.weight", -1), OB_QTYPE_Q4_K);
    /* use_more_bits over 16 layers: 0, 1 (first eighth), 4, 7, 10, 13 (every third), 14, 15 */
    static const int more[16] = {1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1};
    char name[64];
    for (int l = 0; l < 16; l++) {
        uint32_t want = more[l] ? OB_QTYPE_Q6_K : OB_QTYPE_Q4_K;
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        CHECK_EQ_INT(type_of("Q4_K_M", name, -1), want);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        CHECK_EQ_INT(type_of("Q4_K_M", name, l), want);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        CHECK_EQ_INT(type_of("Q4_K_M", name, l), OB_QTYPE_Q4_K);
    }
}

TEST(other_presets) {
    CHECK_EQ_INT(type_of("Q2_K", "blk.3.attn_v.weight", 3), OB_QTYPE_Q3_K);
    CHECK_EQ_INT(type_of("Q2_K", "blk.3.ffn_down.weight", 3), OB_QTYPE_Q3_K);
    CHECK_EQ_INT(type_of("Q2_K", "blk.3.attn_output.weight", 3), OB_QTYPE_Q3_K);
    CHECK_EQ_INT(type_of("Q2_K", "blk.3.ffn_gate.weight", 3), OB_QTYPE_Q2_K);
    CHECK_EQ_INT(type_of("Q3_K_M", "blk.1.attn_v.weight", 1), OB_QTYPE_Q5_K);
    CHECK_EQ_INT(type_of("Q3_K_M", "blk.2.attn_v.weight", 2), OB_QTYPE_Q4_K);
    CHECK_EQ_INT(type_of("Q3_K_M", "blk.0.ffn_down.weight", 0), OB_QTYPE_Q5_K);
    CHECK_EQ_INT(type_of("Q3_K_M", "blk.9.ffn_down.weight", 9), OB_QTYPE_Q4_K);
    CHECK_EQ_INT(type_of("Q3_K_L", "blk.9.attn_output.weight", 9), OB_QTYPE_Q5_K);
    CHECK_EQ_INT(type_of("Q3_K_S", "blk.9.attn_v.weight", 9), OB_QTYPE_Q3_K);
    CHECK_EQ_INT(type_of("Q4_K_S", "blk.3.attn_v.weight", 3), OB_QTYPE_Q5_K);
    CHECK_EQ_INT(type_of("Q4_K_S", "blk.4.attn_v.weight", 4), OB_QTYPE_Q4_K);
    CHECK_EQ_INT(type_of("Q4_K_S", "blk.1.ffn_down.weight", 1), OB_QTYPE_Q5_K);
    CHECK_EQ_INT(type_of("Q4_K_S", "blk.2.ffn_down.weight", 2), OB_QTYPE_Q4_K);
    CHECK_EQ_INT(type_of("Q5_K_M", "blk.15.ffn_down.weight", 15), OB_QTYPE_Q6_K);
    CHECK_EQ_INT(type_of("Q6_K", "blk.15.ffn_down.weight", 15), OB_QTYPE_Q6_K);
    CHECK_EQ_INT(type_of("Q8_0", "output.weight", -1), OB_QTYPE_Q8_0);
    CHECK_EQ_INT(type_of("Q4_0", "output.weight", -1), OB_QTYPE_Q6_K);
    CHECK_EQ_INT(type_of("IQ4_XS", "blk.1.ffn_down.weight", 1), OB_QTYPE_Q5_K);
    CHECK_EQ_INT(type_of("IQ4_NL", "blk.2.ffn_down.weight", 2), OB_QTYPE_IQ4_NL);
}

TEST(unquantized_tensors_keep_their_type) {
    const int64_t ne1[1] = {256};
    const quant_preset *p = quant_preset_find("Q4_K_M");
    CHECK_EQ_INT(quant_mix_tensor_type(p, "blk.0.attn_norm.weight", 0, 16, ne1, 1), OB_QTYPE_F32);
    CHECK_EQ_INT(quant_mix_tensor_type(p, "blk.0.ffn_gate_inp.weight", 0, 16, SQ, 2), OB_QTYPE_F32);
    CHECK_EQ_INT(quant_mix_tensor_type(p, "blk.0.attn_q.bias", 0, 16, SQ, 2), OB_QTYPE_F32);
    CHECK(!quant_mix_quantizable("output_norm.weight", 2));
    CHECK(quant_mix_quantizable("blk.0.ffn_up.weight", 2));
}

TEST(rows_that_do_not_fit_fall_back) {
    const quant_preset *p = quant_preset_find("Q4_K_M");
    const int64_t r96[2] = {96, 256}, r100[2] = {100, 256};
    CHECK_EQ_INT(quant_mix_tensor_type(p, "blk.0.attn_q.weight", 0, 16, r96, 2), OB_QTYPE_Q5_0);
    CHECK_EQ_INT(quant_mix_tensor_type(p, "blk.0.attn_v.weight", 0, 16, r96, 2), OB_QTYPE_Q8_0);
    CHECK_EQ_INT(quant_mix_tensor_type(p, "output.weight", -1, 16, r96, 2), OB_QTYPE_Q8_0);
    CHECK_EQ_INT(quant_mix_tensor_type(p, "blk.0.attn_q.weight", 0, 16, r100, 2), OB_QTYPE_F16);
    CHECK_EQ_INT(quant_mix_fit_row(OB_QTYPE_Q3_K, 96), OB_QTYPE_Q4_0);
    CHECK_EQ_INT(quant_mix_fit_row(OB_QTYPE_IQ4_XS, 96), OB_QTYPE_IQ4_NL);
    CHECK_EQ_INT(quant_mix_fit_row(OB_QTYPE_Q5_K, 96), OB_QTYPE_Q5_1);
    CHECK_EQ_INT(quant_mix_fit_row(OB_QTYPE_Q8_0, 100), OB_QTYPE_F16);
}

TEST(model_facts) {
    const quant_preset *p = quant_preset_find("Q2_K");
    quant_mix_model m = {.n_layer = 16, .n_gqa = 4, .n_expert = 0, .tied_embeddings = true};
    CHECK_EQ_INT(quant_mix_tensor_type_ex(p, &m, "blk.0.attn_v.weight", -1, SQ, 2, OB_QTYPE_F16),
                 OB_QTYPE_Q4_K);
    CHECK_EQ_INT(quant_mix_tensor_type_ex(p, &m, "token_embd.weight", -1, SQ, 2, OB_QTYPE_F16),
                 OB_QTYPE_Q6_K);
    CHECK_EQ_INT(quant_mix_tensor_type_ex(p, &m, "blk.0.attn_norm.weight", -1, SQ, 1, OB_QTYPE_F16),
                 OB_QTYPE_F16);
    CHECK_EQ_INT(quant_mix_tensor_type_ex(quant_preset_find("IQ4_NL"), &m, "blk.9.attn_v.weight",
                                          -1, SQ, 2, OB_QTYPE_F32),
                 OB_QTYPE_Q5_K);
    m.n_expert = 8;
    CHECK_EQ_INT(quant_mix_tensor_type_ex(p, &m, "blk.0.attn_k.weight", -1, SQ, 2, OB_QTYPE_F32),
                 OB_QTYPE_Q8_0);
    CHECK_EQ_INT(quant_mix_tensor_type_ex(quant_preset_find("F16"), &m, "blk.0.attn_k.weight", -1,
                                          SQ, 2, OB_QTYPE_F32),
                 OB_QTYPE_F16);
}

int main(void) {
    RUN(presets_are_found_by_name);
    RUN(q4_k_m_layout);
    RUN(other_presets);
    RUN(unquantized_tensors_keep_their_type);
    RUN(rows_that_do_not_fit_fall_back);
    RUN(model_facts);
    return t_summary();
}
