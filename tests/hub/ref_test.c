/*
 * src/hub/hub_ref.c: references, tree listings and the choice of file, checked against what
 * llama.cpp's `-hf org/repo:QUANT` picks (common/download.cpp: find_best_model) for the same
 * listings.
 */
#include "hub/hub.h"
#include "test.h"

#include <string.h>

/* A listing of the given paths, in order, each an LFS file of 100 bytes. */
static ob_status tree_of(const char *const *paths, size_t n, hub_tree *t, ob_err *err) {
    char json[8192] = "[";
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(json);
        snprintf(json + l, sizeof json - l,
                 "%s{\"type\":\"file\",\"path\":\"%s\",\"size\":7,\"lfs\":{\"oid\":\"%064d\","
                 "\"size\":100}}",
                 i ? "," : "", paths[i], (int)i);
    }
    strcat(json, "]");
    return hub_tree_parse(json, strlen(json), t, err);
}

/* The chosen paths joined by spaces, or "ERR: message". */
static void choose(const char *const *paths, size_t n, const char *quant, char *out, size_t cap,
                   char *tag) {
    hub_tree t;
    ob_err err = {{0}};
    size_t idx[STORE_MAX_FILES], k = 0;
    out[0] = 0;
    if (tree_of(paths, n, &t, &err) || hub_tree_choose(&t, quant, idx, &k, tag, &err)) {
        snprintf(out, cap, "ERR: %s", err.msg);
    } else {
        for (size_t i = 0; i < k; i++) {
            size_t l = strlen(out);
            snprintf(out + l, cap - l, "%s%s", i ? " " : "", t.v[idx[i]].path);
        }
    }
    hub_tree_free(&t);
}

static const char *const REPO[] = {
    "README.md",
    "mmproj-model-f16.gguf",
    "Model-Q2_K.gguf",
    "Model-Q4_K_M.gguf",
    "Model-Q8_0.gguf",
    "Model-IQ4_XS.gguf",
    "imatrix.gguf",
};

TEST(default_is_q4_k_m_then_q8_0_then_the_first_model) {
    char out[1024], tag[STORE_PART_MAX + 1];
    choose(REPO, 7, "", out, sizeof out, tag);
    CHECK_EQ_STR(out, "Model-Q4_K_M.gguf");
    CHECK_EQ_STR(tag, "Q4_K_M");
    const char *const no_q4[] = {"mmproj-Q4_K_M.gguf", "Model-Q2_K.gguf", "Model-Q8_0.gguf"};
    choose(no_q4, 3, NULL, out, sizeof out, tag);
    CHECK_EQ_STR(out, "Model-Q8_0.gguf");
    const char *const odd[] = {"imatrix.gguf", "weights.gguf", "other-F16.gguf"};
    choose(odd, 3, "", out, sizeof out, tag);
    CHECK_EQ_STR(out, "weights.gguf");
    CHECK_EQ_STR(tag, "default");
}

TEST(quant_matches_without_case_and_needs_a_separator_after) {
    char out[1024], tag[STORE_PART_MAX + 1];
    choose(REPO, 7, "iq4_xs", out, sizeof out, tag);
    CHECK_EQ_STR(out, "Model-IQ4_XS.gguf");
    CHECK_EQ_STR(tag, "IQ4_XS");
    /* "Q4_K" is followed by '_' in Q4_K_M, not '.' or '-': no match (as llama.cpp). */
    choose(REPO, 7, "Q4_K", out, sizeof out, tag);
    CHECK(!strncmp(out, "ERR: ", 5));
    CHECK(strstr(out, "Q2_K, Q4_K_M, Q8_0, IQ4_XS") != NULL);
}

TEST(split_sets_come_whole_in_part_order) {
    const char *const split[] = {
        "Q8_0/M-Q8_0-00003-of-00003.gguf", "Q8_0/M-Q8_0-00001-of-00003.gguf",
        "Q8_0/M-Q8_0-00002-of-00003.gguf", "Q4_K_M/M-Q4_K_M-00002-of-00002.gguf",
        "Q4_K_M/M-Q4_K_M-00001-of-00002.gguf"};
    char out[1024], tag[STORE_PART_MAX + 1];
    choose(split, 5, "Q8_0", out, sizeof out, tag);
    CHECK_EQ_STR(out, "Q8_0/M-Q8_0-00001-of-00003.gguf Q8_0/M-Q8_0-00002-of-00003.gguf "
                      "Q8_0/M-Q8_0-00003-of-00003.gguf");
    CHECK_EQ_STR(tag, "Q8_0");
    choose(split, 5, NULL, out, sizeof out, tag);
    CHECK_EQ_STR(out, "Q4_K_M/M-Q4_K_M-00001-of-00002.gguf Q4_K_M/M-Q4_K_M-00002-of-00002.gguf");
    const char *const missing[] = {"M-Q8_0-00001-of-00003.gguf", "M-Q8_0-00003-of-00003.gguf"};
    choose(missing, 2, "Q8_0", out, sizeof out, tag);
    CHECK(strstr(out, "part 2 of 3 is not in the repository") != NULL);
}

TEST(listings_that_lie_are_refused) {
    hub_tree t;
    ob_err err = {{0}};
    const char *bad_hash = "[{\"type\":\"file\",\"path\":\"a.gguf\",\"size\":1,"
                           "\"lfs\":{\"oid\":\"xyz\",\"size\":1}}]";
    CHECK_STATUS(hub_tree_parse(bad_hash, strlen(bad_hash), &t, &err), OB_ERR_FORMAT, &err,
                 "lfs.oid");
    const char *no_size = "[{\"type\":\"file\",\"path\":\"a.gguf\"}]";
    CHECK_STATUS(hub_tree_parse(no_size, strlen(no_size), &t, &err), OB_ERR_FORMAT, &err,
                 "no size");
    const char *not_array = "{\"error\":\"Repository not found\"}";
    CHECK_STATUS(hub_tree_parse(not_array, strlen(not_array), &t, &err), OB_ERR_FORMAT, &err,
                 "not a JSON array");
    const char *nul_path = "[{\"type\":\"file\",\"path\":\"a\\u0000.gguf\",\"size\":1}]";
    CHECK_STATUS(hub_tree_parse(nul_path, strlen(nul_path), &t, &err), OB_ERR_FORMAT, &err,
                 "tree listing");
    const char *dirs = "[{\"type\":\"directory\",\"path\":\"sub\"},"
                       "{\"type\":\"file\",\"path\":\"x.gguf\",\"size\":5}]";
    CHECK_EQ_INT(hub_tree_parse(dirs, strlen(dirs), &t, &err), OB_OK);
    CHECK_EQ_INT(t.n, 1);
    CHECK_EQ_INT(t.v[0].size, 5);
    CHECK_EQ_STR(t.v[0].sha256, "");
    hub_tree_free(&t);
}

TEST(references) {
    hub_ref r;
    ob_err err = {{0}};
    CHECK_EQ_INT(hub_ref_parse("unsloth/Qwen3-8B-GGUF:Q4_K_M", &r, &err), OB_OK);
    CHECK(!r.is_url);
    CHECK_EQ_STR(r.repo, "unsloth/Qwen3-8B-GGUF");
    CHECK_EQ_STR(r.quant, "Q4_K_M");
    CHECK_EQ_INT(hub_ref_parse("https://example.org/m/x-Q8_0.gguf", &r, &err), OB_OK);
    CHECK(r.is_url);
    CHECK_STATUS(hub_ref_parse("http://x/a b.gguf", &r, &err), OB_ERR_ARG, &err, "space");
    CHECK_STATUS(hub_ref_parse("justaname", &r, &err), OB_ERR_ARG, &err, "org/repo");
    char tag[STORE_PART_MAX + 1];
    CHECK(hub_file_quant("sub/Model.Q5_k_m.gguf", tag));
    CHECK_EQ_STR(tag, "Q5_K_M");
    CHECK(hub_file_quant("M-f16-00001-of-00002.gguf", tag));
    CHECK_EQ_STR(tag, "F16");
    CHECK(!hub_file_quant("model.gguf", tag));
    CHECK(!hub_file_quant("model.bin", tag));
}

int main(void) {
    RUN(default_is_q4_k_m_then_q8_0_then_the_first_model);
    RUN(quant_matches_without_case_and_needs_a_separator_after);
    RUN(split_sets_come_whole_in_part_order);
    RUN(listings_that_lie_are_refused);
    RUN(references);
    return t_summary();
}
