/*
 * Tests for src/cli/cli_args.c: every command's option parser. Defaults hold without flags,
 * each flag lands in its field, and each kind of bad argv (unknown option, a flag at the end
 * without its value, a bad number, a missing required argument, conflicting sources) fails
 * with OB_ERR_ARG and a message naming the flag. -h returns at once with help set.
 */
#include "../../src/cli/cli_args.c"
#include "../../src/cli/cli_opts.c"

#include "test.h"

/* argv from a NULL-terminated list; argv[0] is the command. Returns argc. */
#define ARGV(...)                                                                               \
    char *argv_[] = {__VA_ARGS__, NULL};                                                        \
    int argc_ = (int)(sizeof argv_ / sizeof argv_[0]) - 1

TEST(run_defaults_and_flags) {
    cli_run_args o;
    ob_err e = {{0}};
    {
        ARGV("run", "-m", "m.gguf", "-p", "Once");
        CHECK_STATUS(cli_run_args_parse(argc_, argv_, &o, &e), OB_OK, &e, "");
        CHECK(o.n_predict == 128 && !o.ids && !strcmp(o.model, "m.gguf"));
        CHECK(!strcmp(o.prompt, "Once") && o.sp.top_k == 40 && o.cp.n_ctx == 0);
    }
    {
        ARGV("run", "-m", "m", "--tokens", "[1, 2]", "-n", "0", "--ids", "--ignore-eos",
             "--temp", "0", "--top-k", "1", "--ctx", "64", "--threads", "2", "--seed", "7");
        CHECK_STATUS(cli_run_args_parse(argc_, argv_, &o, &e), OB_OK, &e, "");
        CHECK(o.n_predict == 0 && o.ids && o.ignore_eos && o.sp.temp == 0 && o.sp.top_k == 1);
        CHECK(o.cp.n_ctx == 64 && o.cp.n_threads == 2 && o.sp.seed == 7);
    }
    {
        ARGV("run", "--help", "--bogus");
        CHECK_STATUS(cli_run_args_parse(argc_, argv_, &o, &e), OB_OK, &e, "");
        CHECK(o.help);
    }
}

typedef struct bad_case {
    const char *args[12]; /* after the command name, NULL-terminated */
    const char *needle;   /* in the message */
} bad_case;

/* argv = {"cmd", args..., NULL}; returns argc. */
static int build_argv(const char *const *args, char **argv) {
    int argc = 0;
    argv[argc++] = (char *)"cmd";
    for (; args[argc - 1]; argc++) argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    return argc;
}

/* Runs every case against a parser; reports the first that passes or has the wrong words. */
#define CHECK_BAD(parser, type, cases)                                                          \
    do {                                                                                        \
        for (size_t k_ = 0; k_ < sizeof(cases) / sizeof(cases)[0]; k_++) {                      \
            type o_;                                                                            \
            ob_err e_ = {{0}};                                                                  \
            char *argv_k_[16];                                                                  \
            int argc_k_ = build_argv((cases)[k_].args, argv_k_);                                \
            ob_status st_ = parser(argc_k_, argv_k_, &o_, &e_);                                 \
            CHECK_MSG(st_ == OB_ERR_ARG && strstr(e_.msg, (cases)[k_].needle),                  \
                      "case %zu: %s \"%s\" lacks \"%s\"", k_, ob_status_name(st_), e_.msg,     \
                      (cases)[k_].needle);                                                      \
        }                                                                                       \
    } while (0)

TEST(run_refuses_bad_argv) {
    static const bad_case CASES[] = {
        {{"-m", "m", "-p", "x", "-n", "abc"}, "-n: 'abc' is not an integer"},
        {{"-m", "m", "-p", "x", "-n", "1x"}, "-n: '1x' is not an integer"},
        {{"-m", "m", "-p", "x", "-n", "-1"}, "-n: -1 is outside [0, 16777216]"},
        {{"-m", "m", "-p", "x", "-n", ""}, "-n: '' is not an integer"},
        {{"-m", "m", "-p", "x", "-n"}, "-n needs a value"},
        {{"-m", "m", "-p", "x", "--top-p", "1.5"}, "--top-p: 1.5 is outside (0, 1]"},
        {{"-m", "m", "-p", "x", "--temp", "nan"}, "--temp: 'nan' is not a number"},
        {{"-m", "m", "-p", "x", "--ctx", "99999999999999999999"}, "--ctx: 9999"},
        {{"-m", "m", "-p", "x", "--threads"}, "--threads needs a value"},
        {{"-m", "m", "-p", "x", "--seed", "-3"}, "--seed: '-3' is not a non-negative"},
        {{"-m", "m", "-p", "x", "--device", "tpu"}, "--device: 'tpu'"},
        {{"-m", "m", "-p", "x", "--tokens", "1"}, "exactly one of -p PROMPT, -f FILE"},
        {{"-m", "m", "--tokens", "1,x"}, "--tokens: 'x' is not a token id"},
        {{"-m", "m"}, "exactly one of"},
        {{"-p", "x"}, "-m MODEL.gguf is required"},
        {{"-m", "m", "-p", "x", "--frobnicate"}, "unknown option '--frobnicate'"},
        {{"-m", "m", "-p", "x", "stray"}, "unexpected argument 'stray'"},
    };
    CHECK_BAD(cli_run_args_parse, cli_run_args, CASES);
}

TEST(chat_flags_and_errors) {
    cli_chat_args o;
    ob_err e = {{0}};
    ARGV("chat", "--model", "m", "-n", "-1", "--system-file", "s.txt", "-v", "--template", "t");
    CHECK_STATUS(cli_chat_args_parse(argc_, argv_, &o, &e), OB_OK, &e, "");
    CHECK(o.n_predict == -1 && o.verbose && !strcmp(o.system_file, "s.txt"));
    static const bad_case CASES[] = {
        {{"-m", "m", "-n", "-2"}, "-n: -2 is outside [-1, 16777216]"},
        {{"-m", "m", "-n", "ten"}, "-n: 'ten' is not an integer"},
        {{"-m", "m", "--system", "a", "--system-file", "b"}, "--system and --system-file"},
        {{"-m", "m", "--min-p", "2"}, "--min-p: 2 is outside [0, 1]"},
        {{"-m", "m", "--repeat-penalty", "-1"}, "--repeat-penalty: -1 is outside (0, 100]"},
        {{"-m", "m", "--template"}, "--template needs a value"},
        {{"--show-prompt"}, "-m MODEL.gguf is required"},
    };
    CHECK_BAD(cli_chat_args_parse, cli_chat_args, CASES);
}

TEST(bench_and_eval) {
    cli_bench_args b;
    ob_err e = {{0}};
    {
        ARGV("bench", "-m", "m", "-p", "0", "-n", "16", "-r", "1", "-t", "4", "--json");
        CHECK_STATUS(cli_bench_args_parse(argc_, argv_, &b, &e), OB_OK, &e, "");
        CHECK(b.n_prompt == 0 && b.n_gen == 16 && b.reps == 1 && b.threads == 4 && b.json);
        CHECK(b.depth == 0 && !b.no_warmup);
    }
    {
        ARGV("bench", "-m", "m", "-d", "4096", "-p", "48", "--no-warmup");
        CHECK_STATUS(cli_bench_args_parse(argc_, argv_, &b, &e), OB_OK, &e, "");
        CHECK(b.depth == 4096 && b.n_prompt == 48 && b.no_warmup);
    }
    static const bad_case BENCH[] = {
        {{"-m", "m", "-r", "0"}, "-r: 0 is outside [1, 10000]"},
        {{"-m", "m", "-p", "x"}, "-p: 'x' is not an integer"},
        {{"-m", "m", "-t", "-4"}, "-t: -4 is outside [0, 1024]"},
        {{"-m", "m", "-n"}, "-n needs a value"},
        {{"-m", "m", "-d", "-1"}, "-d: -1 is outside [0, "},
        {{"-m", "m", "--ctx", "5"}, "unknown option '--ctx'"},
    };
    CHECK_BAD(cli_bench_args_parse, cli_bench_args, BENCH);
    cli_eval_args v;
    {
        ARGV("eval", "-m", "m", "--tokens", "1,2", "--chunk", "1", "--batch", "8", "--ctx", "32");
        CHECK_STATUS(cli_eval_args_parse(argc_, argv_, &v, &e), OB_OK, &e, "");
        CHECK(v.chunk == 1 && v.cp.n_batch == 8 && v.cp.n_ctx == 32 && !v.logits);
    }
    static const bad_case EVAL[] = {
        {{"-m", "m", "--tokens", "1", "--chunk", "-1"}, "--chunk: -1 is outside"},
        {{"-m", "m", "--tokens", "1", "--threads", "x"}, "--threads: 'x'"},
        {{"-m", "m", "--tokens", "1,,-2"}, "--tokens: id -2 is outside"},
        {{"-m", "m"}, "--tokens IDS is required"},
    };
    CHECK_BAD(cli_eval_args_parse, cli_eval_args, EVAL);
}

TEST(quantize_and_synth) {
    cli_quantize_args q;
    ob_err e = {{0}};
    {
        ARGV("quantize", "-t", "8", "in.gguf", "--pure", "out.gguf", "Q4_K_M");
        CHECK_STATUS(cli_quantize_args_parse(argc_, argv_, &q, &e), OB_OK, &e, "");
        CHECK(q.threads == 8 && q.pure && !strcmp(q.out, "out.gguf") && !strcmp(q.type, "Q4_K_M"));
    }
    static const bad_case QUANT[] = {
        {{"-t", "0", "a", "b", "c"}, "-t: 0 is outside [1, 64]"},
        {{"--threads", "65", "a", "b", "c"}, "--threads: 65 is outside [1, 64]"},
        {{"a", "b", "c", "d"}, "unexpected argument 'd'"},
        {{"a", "b"}, "IN.gguf OUT.gguf TYPE is required"},
        {{"a", "b", "c", "-t"}, "-t needs a value"},
    };
    CHECK_BAD(cli_quantize_args_parse, cli_quantize_args, QUANT);
    cli_synth_args s;
    {
        ARGV("synth", "-o", "x.gguf", "--seed", "18446744073709551615", "--swa", "0");
        CHECK_STATUS(cli_synth_args_parse(argc_, argv_, &s, &e), OB_OK, &e, "");
        CHECK(s.seed == UINT64_MAX && s.swa == 0 && !strcmp(s.arch, "llama"));
    }
    {
        ARGV("synth", "-o", "x.gguf", "--layers", "3", "--embd", "512", "--quiet");
        CHECK_STATUS(cli_synth_args_parse(argc_, argv_, &s, &e), OB_OK, &e, "");
        CHECK(s.layers == 3 && s.embd == 512 && s.quiet);
    }
    static const bad_case SYNTH[] = {
        {{"-o", "x", "--seed", "abc"}, "--seed: 'abc'"},
        {{"-o", "x", "--swa", "-1"}, "--swa: -1 is outside [0, 16777216]"},
        {{"-o", "x", "--swa", "4294967297"}, "--swa: 4294967297 is outside"},
        {{"--arch", "llama"}, "-o FILE.gguf is required"},
        {{"-o", "x", "--layers", "0"}, "--layers: 0 is outside [1, 256]"},
        {{"-o", "x", "--embd", "300"}, "--embd: 300, expected a multiple of 256"},
        {{"-o", "x", "--embd", "128"}, "--embd: 128 is outside [256, 16384]"},
    };
    CHECK_BAD(cli_synth_args_parse, cli_synth_args, SYNTH);
}

TEST(tokenize_template_info) {
    cli_tokenize_args t;
    ob_err e = {{0}};
    {
        ARGV("tokenize", "-m", "m", "--bench", "3", "--", "-not-an-option");
        CHECK_STATUS(cli_tokenize_args_parse(argc_, argv_, &t, &e), OB_OK, &e, "");
        CHECK(t.bench == 3 && !strcmp(t.text, "-not-an-option"));
    }
    {
        ARGV("tokenize", "-m", "m", "-");
        CHECK_STATUS(cli_tokenize_args_parse(argc_, argv_, &t, &e), OB_OK, &e, "");
        CHECK(!strcmp(t.text, "-"));
    }
    static const bad_case TOK[] = {
        {{"-m", "m", "--bench", "abc", "x"}, "--bench: 'abc' is not an integer"},
        {{"-m", "m", "--bench", "-1", "x"}, "--bench: -1 is outside [0, 1000000]"},
        {{"-m", "m", "x", "y"}, "more than one TEXT ('y')"},
        {{"-m", "m", "-f", "a", "x"}, "exactly one of TEXT and --file"},
        {{"-m", "m", "-f"}, "-f needs a value"},
        {{"x"}, "-m MODEL.gguf is required"},
    };
    CHECK_BAD(cli_tokenize_args_parse, cli_tokenize_args, TOK);
    cli_template_args p;
    {
        ARGV("template", "--file", "t.jinja", "-i", "-", "--now", "1741953600");
        CHECK_STATUS(cli_template_args_parse(argc_, argv_, &p, &e), OB_OK, &e, "");
        CHECK(p.now == 1741953600 && !strcmp(p.input, "-"));
    }
    static const bad_case TMPL[] = {
        {{"--file", "t", "--input", "c", "--now", "abc"}, "--now: 'abc' is not an integer"},
        {{"--file", "t", "--input", "c", "--now", "-5"}, "--now: -5 is outside [0, "},
        {{"--file", "t", "--input", "c", "--now", "253402300800"}, "253402300799]"},
        {{"--file", "-", "--input", "-"}, "cannot both be standard input"},
        {{"--file", "t", "-m", "m", "--input", "c"}, "exactly one of -m MODEL.gguf and --file"},
        {{"--file", "t"}, "--input CONV.json is required"},
        {{"--file", "t", "--input", "c", "--now"}, "--now needs a value"},
    };
    CHECK_BAD(cli_template_args_parse, cli_template_args, TMPL);
    cli_info_args i;
    {
        ARGV("info", "--kv", "m.gguf", "--json");
        CHECK_STATUS(cli_info_args_parse(argc_, argv_, &i, &e), OB_OK, &e, "");
        CHECK(i.kv && i.json && !i.tensors && !strcmp(i.path, "m.gguf"));
    }
    static const bad_case INFO[] = {
        {{"a", "b"}, "one model file at a time ('a' and 'b')"},
        {{"--tensor"}, "unknown option '--tensor'"},
        {{"--kv"}, "MODEL.gguf is required"},
    };
    CHECK_BAD(cli_info_args_parse, cli_info_args, INFO);
}

TEST(store_commands) {
    cli_store_args o;
    ob_err e = {{0}};
    {
        ARGV("pull", "--offline", "o/r:Q8_0", "--name", "a/b:c", "--revision", "v1");
        CHECK_STATUS(cli_store_args_parse(argc_, argv_, &o, &e), OB_OK, &e, "");
        CHECK(o.offline && !strcmp(o.ref, "o/r:Q8_0") && !strcmp(o.name, "a/b:c"));
        CHECK_EQ_STR(o.revision, "v1");
    }
    {
        ARGV("list", "--json");
        CHECK_STATUS(cli_store_args_parse(argc_, argv_, &o, &e), OB_OK, &e, "");
        CHECK(o.json && !o.ref);
    }
    {
        ARGV("pull");
        CHECK_STATUS(cli_store_args_parse(argc_, argv_, &o, &e), OB_ERR_ARG, &e, "REF");
    }
    {
        ARGV("list", "o/r");
        CHECK_STATUS(cli_store_args_parse(argc_, argv_, &o, &e), OB_ERR_ARG, &e,
                     "unexpected argument 'o/r'");
    }
    {
        ARGV("rm", "--offline", "o/r");
        CHECK_STATUS(cli_store_args_parse(argc_, argv_, &o, &e), OB_ERR_ARG, &e,
                     "unknown option '--offline'");
    }
    {
        ARGV("show", "a/b", "c/d");
        CHECK_STATUS(cli_store_args_parse(argc_, argv_, &o, &e), OB_ERR_ARG, &e, "'c/d'");
    }
    {
        ARGV("pull", "o/r", "--name");
        CHECK_STATUS(cli_store_args_parse(argc_, argv_, &o, &e), OB_ERR_ARG, &e,
                     "--name needs a value");
    }
}

int main(void) {
    RUN(run_defaults_and_flags);
    RUN(run_refuses_bad_argv);
    RUN(chat_flags_and_errors);
    RUN(bench_and_eval);
    RUN(quantize_and_synth);
    RUN(tokenize_template_info);
    RUN(store_commands);
    return t_summary();
}
