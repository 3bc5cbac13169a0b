/*
 * Tests for src/cli/cli_opts.c: the strict value parsers behind every numeric flag. Whole
 * numbers and floats in range are read; an empty value, leading blanks, trailing junk, a
 * missing value, overflow, NaN/infinity and values out of range are refused with the flag and
 * the value named. Token id lists accept the spellings tokenize prints and name a bad id as
 * written. The engine flags (--temp ... --device) keep their ranges.
 */
#include "../../src/cli/cli_opts.c"

#include "test.h"

#include <float.h>

/* Parses text as an i64 in [min, max]; returns the status and leaves the message in err. */
static ob_status i64(const char *text, int64_t min, int64_t max, int64_t *out, ob_err *err) {
    memset(err, 0, sizeof *err);
    return cli_parse_i64("-n", text, min, max, out, err);
}

TEST(i64_accepts_whole_numbers_in_range) {
    ob_err e;
    int64_t v = 0;
    CHECK_STATUS(i64("42", 0, 100, &v, &e), OB_OK, &e, "");
    CHECK_EQ_INT(v, 42);
    CHECK_STATUS(i64("+7", 0, 100, &v, &e), OB_OK, &e, "");
    CHECK_EQ_INT(v, 7);
    CHECK_STATUS(i64("-1", -1, 100, &v, &e), OB_OK, &e, "");
    CHECK_EQ_INT(v, -1);
    CHECK_STATUS(i64("9223372036854775807", 0, INT64_MAX, &v, &e), OB_OK, &e, "");
    CHECK_EQ_INT(v, INT64_MAX);
    CHECK_STATUS(i64("-9223372036854775808", INT64_MIN, 0, &v, &e), OB_OK, &e, "");
    CHECK(v == INT64_MIN);
    CHECK_STATUS(i64("0100", 0, 1000, &v, &e), OB_OK, &e, ""); /* decimal, not octal */
    CHECK_EQ_INT(v, 100);
}

TEST(i64_refuses_what_is_not_an_integer) {
    static const char *const BAD[] = {"abc", "1x", "", " 5", "5 ", "1.5", "0x10", "-", "+",
                                      "--1", "1e3", "\t3", "nan", "½"};
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        ob_err e;
        int64_t v = 12345;
        CHECK_MSG(i64(BAD[i], INT64_MIN, INT64_MAX, &v, &e) == OB_ERR_ARG, "'%s'", BAD[i]);
        CHECK_MSG(strstr(e.msg, "is not an integer") && !strncmp(e.msg, "-n: '", 5),
                  "'%s': %s", BAD[i], e.msg);
        CHECK_EQ_INT(v, 12345); /* untouched on failure */
    }
    ob_err e;
    int64_t v;
    CHECK_STATUS(i64("abc", 0, 9, &v, &e), OB_ERR_ARG, &e, "-n: 'abc' is not an integer");
}

TEST(i64_refuses_overflow_and_range_naming_both) {
    ob_err e;
    int64_t v = 3;
    CHECK_STATUS(i64("9223372036854775808", INT64_MIN, INT64_MAX, &v, &e), OB_ERR_ARG, &e,
                 "-n: 9223372036854775808 is outside [-9223372036854775808, "
                 "9223372036854775807]");
    CHECK_STATUS(i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v, &e), OB_ERR_ARG, &e,
                 "is outside");
    CHECK_STATUS(i64("99999999999999999999999", 0, 10, &v, &e), OB_ERR_ARG, &e,
                 "is outside [0, 10]");
    CHECK_STATUS(i64("-1", 0, 10, &v, &e), OB_ERR_ARG, &e, "-n: -1 is outside [0, 10]");
    CHECK_STATUS(i64("11", 0, 10, &v, &e), OB_ERR_ARG, &e, "-n: 11 is outside [0, 10]");
    CHECK_EQ_INT(v, 3);
}

TEST(missing_value_names_the_flag) {
    ob_err e = {{0}};
    int64_t i;
    uint64_t u;
    double d;
    ob_device dev;
    int idx;
    CHECK_STATUS(cli_parse_i64("-n", NULL, 0, 1, &i, &e), OB_ERR_ARG, &e, "-n needs a value");
    CHECK_STATUS(cli_parse_u64("--seed", NULL, 1, &u, &e), OB_ERR_ARG, &e, "--seed needs");
    CHECK_STATUS(cli_parse_f64("--temp", NULL, 0, 1, false, &d, &e), OB_ERR_ARG, &e,
                 "--temp needs a value");
    CHECK_STATUS(cli_parse_device("--device", NULL, &dev, &idx, &e), OB_ERR_ARG, &e, "needs a value");
}

TEST(long_values_are_shortened_in_the_message) {
    char big[400];
    memset(big, '7', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ob_err e = {{0}};
    int64_t v;
    CHECK_STATUS(cli_parse_i64("-n", big, 0, 10, &v, &e), OB_ERR_ARG, &e,
                 "... is outside [0, 10]");
    big[300] = 'x';
    CHECK_STATUS(cli_parse_i64("-n", big, 0, 10, &v, &e), OB_ERR_ARG, &e,
                 "...' is not an integer");
}

TEST(control_bytes_do_not_break_the_line) {
    ob_err e = {{0}};
    int64_t v;
    CHECK_STATUS(cli_parse_i64("-n", "1\n2\x1b[0m\x7f", 0, 10, &v, &e), OB_ERR_ARG, &e,
                 "-n: '1?2?[0m?' is not an integer");
    char sh[CLI_SHOWN_SIZE];
    CHECK_EQ_STR(cli_shown("", sh), "");
    CHECK_EQ_STR(cli_shown("caf\xc3\xa9", sh), "caf\xc3\xa9"); /* UTF-8 passes through */
}

TEST(u64_takes_the_full_range_and_no_sign) {
    ob_err e = {{0}};
    uint64_t v = 0;
    CHECK_STATUS(cli_parse_u64("--seed", "18446744073709551615", UINT64_MAX, &v, &e), OB_OK, &e,
                 "");
    CHECK(v == UINT64_MAX);
    CHECK_STATUS(cli_parse_u64("--seed", "18446744073709551616", UINT64_MAX, &v, &e),
                 OB_ERR_ARG, &e,
                 "--seed: 18446744073709551616 is outside [0, 18446744073709551615]");
    /* strtoull alone reads "-1" as 2^64 - 1 */
    CHECK_STATUS(cli_parse_u64("--seed", "-1", UINT64_MAX, &v, &e), OB_ERR_ARG, &e,
                 "--seed: '-1' is not a non-negative integer");
    CHECK_STATUS(cli_parse_u64("--seed", "", UINT64_MAX, &v, &e), OB_ERR_ARG, &e, "''");
    CHECK_STATUS(cli_parse_u64("--seed", "12z", UINT64_MAX, &v, &e), OB_ERR_ARG, &e, "'12z'");
    CHECK_STATUS(cli_parse_u64("--seed", "+5", UINT64_MAX, &v, &e), OB_OK, &e, "");
    CHECK(v == 5);
}

TEST(f64_reads_finite_numbers_in_range) {
    ob_err e = {{0}};
    double v = 0;
    CHECK_STATUS(cli_parse_f64("--temp", "0.7", 0, 100, false, &v, &e), OB_OK, &e, "");
    CHECK(v == 0.7);
    CHECK_STATUS(cli_parse_f64("--temp", ".5", 0, 100, false, &v, &e), OB_OK, &e, "");
    CHECK(v == 0.5);
    CHECK_STATUS(cli_parse_f64("--temp", "1e1", 0, 100, false, &v, &e), OB_OK, &e, "");
    CHECK(v == 10);
    CHECK_STATUS(cli_parse_f64("--temp", "0x1p3", 0, 100, false, &v, &e), OB_OK, &e, "");
    CHECK(v == 8);
    CHECK_STATUS(cli_parse_f64("--temp", "0", 0, 100, false, &v, &e), OB_OK, &e, "");
    CHECK_STATUS(cli_parse_f64("--top-p", "1", 0, 1, true, &v, &e), OB_OK, &e, "");
    CHECK(v == 1);
}

TEST(f64_refuses_nan_inf_junk_and_range) {
    static const char *const NOT_NUMBERS[] = {"nan",  "NaN", "inf", "-inf", "+infinity", "",
                                              " 1",   "1 ", "1,5", "abc",  "1e",        ".",
                                              "-nan", "0.5x"};
    for (size_t i = 0; i < sizeof NOT_NUMBERS / sizeof NOT_NUMBERS[0]; i++) {
        ob_err e = {{0}};
        double v = 3;
        CHECK_MSG(cli_parse_f64("--temp", NOT_NUMBERS[i], -1e9, 1e9, false, &v, &e) ==
                      OB_ERR_ARG,
                  "'%s'", NOT_NUMBERS[i]);
        CHECK_MSG(strstr(e.msg, "--temp: '") && strstr(e.msg, "' is not a number"), "%s", e.msg);
        CHECK(v == 3);
    }
    ob_err e = {{0}};
    double v;
    CHECK_STATUS(cli_parse_f64("--top-p", "1.5", 0, 1, false, &v, &e), OB_ERR_ARG, &e,
                 "--top-p: 1.5 is outside [0, 1]");
    CHECK_STATUS(cli_parse_f64("--top-p", "0", 0, 1, true, &v, &e), OB_ERR_ARG, &e,
                 "--top-p: 0 is outside (0, 1]");
    CHECK_STATUS(cli_parse_f64("--temp", "-0.1", 0, 1, false, &v, &e), OB_ERR_ARG, &e,
                 "is outside [0, 1]");
    CHECK_STATUS(cli_parse_f64("--temp", "1e999", 0, 1e9, false, &v, &e), OB_ERR_ARG, &e,
                 "--temp: 1e999 is outside");
    CHECK_STATUS(cli_parse_f64("--temp", "1e-999", 0, 1e9, false, &v, &e), OB_ERR_ARG, &e,
                 "is outside");
}

TEST(f32_stores_a_float) {
    ob_err e = {{0}};
    float v = 0;
    CHECK_STATUS(cli_parse_f32("--min-p", "0.25", 0, 1, false, &v, &e), OB_OK, &e, "");
    CHECK(v == 0.25f);
    CHECK_STATUS(cli_parse_f32("--min-p", "2", 0, 1, false, &v, &e), OB_ERR_ARG, &e, "[0, 1]");
    CHECK(v == 0.25f);
}

TEST(device_names) {
    ob_err e = {{0}};
    ob_device d = OB_DEVICE_CPU;
    int idx = 7;
    CHECK_STATUS(cli_parse_device("--device", "cuda", &d, &idx, &e), OB_OK, &e, "");
    CHECK(d == OB_DEVICE_CUDA && idx == -1);
    CHECK_STATUS(cli_parse_device("--device", "auto", &d, &idx, &e), OB_OK, &e, "");
    CHECK(d == OB_DEVICE_AUTO);
    CHECK_STATUS(cli_parse_device("--device", "vulkan:2", &d, &idx, &e), OB_OK, &e, "");
    CHECK(d == OB_DEVICE_VULKAN && idx == 2);
    CHECK_STATUS(cli_parse_device("--device", "vulkan", &d, &idx, &e), OB_OK, &e, "");
    CHECK(d == OB_DEVICE_VULKAN && idx == -1);
    CHECK_STATUS(cli_parse_device("--device", "cuda:1", &d, &idx, &e), OB_OK, &e, "");
    CHECK(d == OB_DEVICE_CUDA && idx == 1);
    CHECK_STATUS(cli_parse_device("--device", "vulkan:x", &d, &idx, &e), OB_ERR_ARG, &e, "");
    CHECK_STATUS(cli_parse_device("--device", "cpu:0", &d, &idx, &e), OB_ERR_ARG, &e, "");
    CHECK_STATUS(cli_parse_device("--device", "gpu", &d, &idx, &e), OB_ERR_ARG, &e,
                 "--device: 'gpu': expected cpu, cuda[:N], vulkan[:N] or auto");
}

/* Sizes, layer counts and link figures: accepted forms and clear refusals. */
TEST(sizes_layers_and_links) {
    ob_err e = {{0}};
    uint64_t b = 0;
    CHECK_STATUS(cli_parse_size("--vram-budget", "8G", 1, 1ull << 50, &b, &e), OB_OK, &e, "");
    CHECK(b == 8ull << 30);
    CHECK_STATUS(cli_parse_size("--vram-budget", "7.5GiB", 1, 1ull << 50, &b, &e), OB_OK, &e, "");
    CHECK(b == 15ull << 29);
    CHECK_STATUS(cli_parse_size("--vram-budget", "512M", 1, 1ull << 50, &b, &e), OB_OK, &e, "");
    CHECK(b == 512ull << 20);
    CHECK_STATUS(cli_parse_size("--vram-budget", "4096", 1, 1ull << 50, &b, &e), OB_OK, &e, "");
    CHECK(b == 4096);
    const char *bad[] = {"", "G", "8X", "8GB2", "-1G", "nan", "1e30"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_STATUS(cli_parse_size("--vram-budget", bad[i], 1, 1ull << 50, &b, &e), OB_ERR_ARG,
                     &e, "--vram-budget");
    int64_t g = 0;
    CHECK_STATUS(cli_parse_gpu_layers("--gpu-layers", "auto", &g, &e), OB_OK, &e, "");
    CHECK(g == OB_GPU_LAYERS_AUTO);
    CHECK_STATUS(cli_parse_gpu_layers("--gpu-layers", "12", &g, &e), OB_OK, &e, "");
    CHECK(g == 12);
    CHECK_STATUS(cli_parse_gpu_layers("--gpu-layers", "-1", &g, &e), OB_ERR_ARG, &e,
                 "--gpu-layers");
    CHECK_STATUS(cli_parse_gpu_layers("--gpu-layers", "all", &g, &e), OB_ERR_ARG, &e, "auto");
    double gbps = 0, lat = 0;
    CHECK_STATUS(cli_parse_link("--link-emulate", "3", &gbps, &lat, &e), OB_OK, &e, "");
    CHECK(gbps == 3 && lat == 0);
    CHECK_STATUS(cli_parse_link("--link-emulate", "2.5,40", &gbps, &lat, &e), OB_OK, &e, "");
    CHECK(gbps == 2.5 && lat == 40);
    CHECK_STATUS(cli_parse_link("--link-emulate", "0", &gbps, &lat, &e), OB_ERR_ARG, &e,
                 "--link-emulate");
    CHECK_STATUS(cli_parse_link("--link-emulate", "3,-1", &gbps, &lat, &e), OB_ERR_ARG, &e,
                 "--link-emulate");
    CHECK_STATUS(cli_parse_link("--link-emulate", "3,", &gbps, &lat, &e), OB_ERR_ARG, &e,
                 "--link-emulate");
    ob_experts x = OB_EXPERTS_AUTO;
    CHECK_STATUS(cli_parse_experts("--experts", "host", &x, &e), OB_OK, &e, "");
    CHECK(x == OB_EXPERTS_HOST);
    CHECK_STATUS(cli_parse_experts("--experts", "device", &x, &e), OB_OK, &e, "");
    CHECK(x == OB_EXPERTS_DEVICE);
    CHECK_STATUS(cli_parse_experts("--experts", "auto", &x, &e), OB_OK, &e, "");
    CHECK(x == OB_EXPERTS_AUTO);
    const char *bad_experts[] = {"", "cpu", "Host", "host ", "1"};
    for (size_t i = 0; i < sizeof bad_experts / sizeof bad_experts[0]; i++)
        CHECK_STATUS(cli_parse_experts("--experts", bad_experts[i], &x, &e), OB_ERR_ARG, &e,
                     "expected host, device or auto");
}

/* Parses an id list and checks it against want[0..n). */
static bool ids_are(const char *text, int64_t max_id, const int32_t *want, size_t n) {
    int32_t *ids = NULL;
    size_t got = 0;
    ob_err e = {{0}};
    if (cli_parse_ids("--tokens", text, max_id, &ids, &got, &e)) return false;
    bool same = got == n && !memcmp(ids, want, n * sizeof *want);
    ob_free(ids);
    return same;
}

TEST(id_lists_in_every_spelling) {
    static const int32_t ONE_TWO_THREE[] = {1, 2, 3};
    CHECK(ids_are("1,2,3", 10, ONE_TWO_THREE, 3));
    CHECK(ids_are("1 2 3", 10, ONE_TWO_THREE, 3));
    CHECK(ids_are("[1, 2, 3]", 10, ONE_TWO_THREE, 3));
    CHECK(ids_are(" 1,\n2\t3, ", 10, ONE_TWO_THREE, 3));
    static const int32_t BIG[] = {2147483647, 0};
    CHECK(ids_are("2147483647,0", INT64_MAX, BIG, 2));
}

TEST(id_lists_name_the_bad_id) {
    static const struct {
        const char *text, *needle;
    } CASES[] = {
        {"1,2,x", "--tokens: 'x' is not a token id"},
        {"1,-5", "--tokens: id -5 is outside [0, 511]"},
        {"9223372036854775808", "--tokens: id 9223372036854775808 is outside [0, 511]"},
        {"99999999999999999999999999999", "id 99999999999999999999999999999 is outside"},
        {"512", "--tokens: id 512 is outside [0, 511]"},
        {"1.5", "'1.5' is not a token id"},
        {"", "--tokens: no token ids in ''"},
        {"[ , ]", "no token ids"},
        {"3-4", "'3-4' is not a token id"},
        {"-", "'-' is not a token id"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        int32_t *ids = (int32_t *)1;
        size_t n = 7;
        ob_err e = {{0}};
        CHECK_MSG(cli_parse_ids("--tokens", CASES[i].text, 511, &ids, &n, &e) == OB_ERR_ARG,
                  "'%s'", CASES[i].text);
        CHECK_MSG(strstr(e.msg, CASES[i].needle), "'%s': %s", CASES[i].text, e.msg);
        CHECK(ids == NULL && n == 0);
    }
}

TEST(id_list_alloc_failure) {
    int32_t *ids = NULL;
    size_t n = 0;
    ob_err e = {{0}};
    ob_alloc_fail_after(0);
    ob_status st = cli_parse_ids("--tokens", "1,2", 10, &ids, &n, &e);
    ob_alloc_fail_after(-1);
    CHECK_STATUS(st, OB_ERR_NOMEM, &e, "--tokens: out of memory");
    CHECK(ids == NULL);
}

TEST(engine_flags_and_their_ranges) {
    ob_sampler_params sp;
    ob_context_params cp;
    ob_sampler_params_init(&sp);
    ob_context_params_init(&cp);
    ob_err e = {{0}};
    CHECK(cli_engine_opt_known("--top-k") && cli_engine_opt_known("--device"));
    CHECK(!cli_engine_opt_known("-n") && !cli_engine_opt_known("--temperature"));
    CHECK_STATUS(cli_engine_opt_set("--temp", "0", &sp, &cp, &e), OB_OK, &e, "");
    CHECK(sp.temp == 0);
    CHECK_STATUS(cli_engine_opt_set("--top-k", "5", &sp, &cp, &e), OB_OK, &e, "");
    CHECK(sp.top_k == 5);
    CHECK_STATUS(cli_engine_opt_set("--seed", "18446744073709551615", &sp, &cp, &e), OB_OK,
                 &e, "");
    CHECK(sp.seed == UINT64_MAX);
    CHECK_STATUS(cli_engine_opt_set("--ctx", "16777216", &sp, &cp, &e), OB_OK, &e, "");
    CHECK(cp.n_ctx == CLI_MAX_CTX);
    CHECK_STATUS(cli_engine_opt_set("--threads", "3", &sp, &cp, &e), OB_OK, &e, "");
    CHECK(cp.n_threads == 3);
    CHECK_STATUS(cli_engine_opt_set("--device", "auto", &sp, &cp, &e), OB_OK, &e, "");
    CHECK(cp.device == OB_DEVICE_AUTO);
    CHECK_STATUS(cli_engine_opt_set("--top-p", "1.5", &sp, &cp, &e), OB_ERR_ARG, &e,
                 "--top-p: 1.5 is outside (0, 1]");
    CHECK_STATUS(cli_engine_opt_set("--top-p", "0", &sp, &cp, &e), OB_ERR_ARG, &e, "(0, 1]");
    CHECK_STATUS(cli_engine_opt_set("--min-p", "-0.5", &sp, &cp, &e), OB_ERR_ARG, &e, "[0, 1]");
    CHECK_STATUS(cli_engine_opt_set("--repeat-penalty", "0", &sp, &cp, &e), OB_ERR_ARG, &e,
                 "--repeat-penalty: 0 is outside (0, 100]");
    CHECK_STATUS(cli_engine_opt_set("--temp", "inf", &sp, &cp, &e), OB_ERR_ARG, &e,
                 "--temp: 'inf' is not a number");
    CHECK_STATUS(cli_engine_opt_set("--top-k", "-1", &sp, &cp, &e), OB_ERR_ARG, &e,
                 "--top-k: -1 is outside [0, 2147483647]");
    CHECK_STATUS(cli_engine_opt_set("--ctx", "16777217", &sp, &cp, &e), OB_ERR_ARG, &e,
                 "--ctx: 16777217 is outside [0, 16777216]");
    CHECK_STATUS(cli_engine_opt_set("--threads", "1x", &sp, &cp, &e), OB_ERR_ARG, &e,
                 "--threads: '1x' is not an integer");
    CHECK_STATUS(cli_engine_opt_set("--bogus", "1", &sp, &cp, &e), OB_ERR_ARG, &e,
                 "unknown option '--bogus'");
    /* the failures left every field as the last success set it */
    CHECK(sp.top_k == 5 && cp.n_ctx == CLI_MAX_CTX && cp.n_threads == 3);
}

int main(void) {
    RUN(i64_accepts_whole_numbers_in_range);
    RUN(i64_refuses_what_is_not_an_integer);
    RUN(i64_refuses_overflow_and_range_naming_both);
    RUN(missing_value_names_the_flag);
    RUN(long_values_are_shortened_in_the_message);
    RUN(control_bytes_do_not_break_the_line);
    RUN(u64_takes_the_full_range_and_no_sign);
    RUN(f64_reads_finite_numbers_in_range);
    RUN(f64_refuses_nan_inf_junk_and_range);
    RUN(f32_stores_a_float);
    RUN(device_names);
    RUN(id_lists_in_every_spelling);
    RUN(id_lists_name_the_bad_id);
    RUN(id_list_alloc_failure);
    RUN(engine_flags_and_their_ranges);
    RUN(sizes_layers_and_links);
    return t_summary();
}
