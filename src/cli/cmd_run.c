/*
 * `outboard run -m MODEL.gguf -p "Once upon a time" -n 128`: prefill the prompt in one pass,
 * then sample and decode one token at a time, streaming text as it is produced; the last line
 * (stderr) gives prompt tokens, prompt tok/s, generated tokens and generation tok/s.
 * `--tokens 1,2,3` gives the prompt as token ids and `--ids` prints ids instead of text.
 * `--grammar FILE` (GBNF) or `--json-schema FILE` constrains the output (cmd_run_grammar).
 *
 * Also the helpers other engine commands share: the clock and model loading with a progress
 * bar that appears only when loading takes more than a moment.
 */
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/alloc.h"
#include "core/err.h"
#include "outboard.h"
#include "spec/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_bar_start(cli_bar *b, const char *label) {
    *b = (cli_bar){.label = label, .start = cli_now(), .drawn = -1};
}

/* Draws the bar once the work has taken half a second, and only on a terminal. */
bool cli_bar_progress(float p, void *user) {
    cli_bar *b = user;
    if (cli_now() - b->start < 0.5 || !isatty(2)) return true;
    int pct = (int)(p * 100.0f);
    if (pct == b->drawn) return true;
    b->drawn = pct;
    char bar[41];
    for (int i = 0; i < 40; i++) bar[i] = i < pct * 40 / 100 ? '#' : ' ';
    bar[40] = 0;
    fprintf(stderr, "\r%-9s [%s] %3d%%%s", b->label, bar, pct, pct >= 100 ? "\n" : "");
    return true;
}

void cli_bar_end(cli_bar *b) {
    if (b->drawn >= 0 && b->drawn < 100) fputc('\n', stderr);
    b->drawn = 100;
}

int cli_load_model(const char *arg, ob_model **out) {
    char *path = cli_model_path(NULL, arg);
    if (!path) return -1;
    cli_bar bar;
    cli_bar_start(&bar, "loading");
    ob_model_params mp;
    ob_model_params_init(&mp);
    mp.progress = cli_bar_progress;
    mp.progress_user = &bar;
    ob_err err = {{0}};
    ob_status st = ob_model_load(path, &mp, out, &err);
    ob_free(path);
    if (st) {
        cli_bar_end(&bar);
        fprintf(stderr, "outboard: %s\n", err.msg);
        return -1;
    }
    for (const char *w = ob_model_warnings(*out); *w;) { /* lines ending in '\n' */
        const char *eol = strchr(w, '\n');
        int len = eol ? (int)(eol - w) : (int)strlen(w);
        fprintf(stderr, "outboard: warning: %.*s\n", len, w);
        w += len + (eol != NULL);
    }
    return 0;
}

static int usage(FILE *to) {
    fprintf(to,
            "usage: outboard run -m MODEL.gguf (-p PROMPT | -f FILE | --tokens 1,2,3) [-n N]\n"
            "  -f FILE: the prompt's text ('-' = standard input), at most 64 MiB\n"
            "  --grammar FILE (GBNF) | --json-schema FILE: constrain the output\n"
            "  --spec auto|off|ngram|draft|mtp: speculative decoding by prompt lookup, a draft\n"
            "    model or the model's MTP layers (auto: the draft model if given, else MTP if\n"
            "    the model has it, else lookup, where it pays)\n"
            "  --spec-max N: most draft tokens per pass (16)  --model-draft FILE: a smaller\n"
            "    model with the same vocabulary that drafts\n"
            "%s  --ids (print token ids)  --ignore-eos  --verbose (speculation figures)\n",
            CLI_ENGINE_OPTS_HELP);
    return to == stdout ? 0 : 2;
}

/* Where generated tokens go: text (or ids) on stdout until end of generation or n_predict. */
typedef struct run_out {
    cli_text *tx;
    const cli_run_args *o;
    int32_t eos;
    int64_t n_gen;
} run_out;

static bool run_emit(void *user, int32_t id) {
    run_out *r = user;
    r->n_gen++;
    if (!r->o->ignore_eos && cli_text_is_eog(r->tx, id, r->eos)) return false;
    if (r->o->ids) printf("%s%d", r->n_gen > 1 ? " " : "", id);
    else cli_text_put(r->tx, id);
    fflush(stdout);
    return r->n_gen < r->o->n_predict;
}

/* Generates up to n_predict tokens after the prompt (hist, n_hist tokens, with room for
 * n_predict + SPEC_MAX_DRAFT + 1 more); prints them as they come. Each step evaluates the
 * last token with a draft when speculation has one (spec_step), else alone. */
static ob_status generate(ob_context *c, ob_sampler *s, spec_seq *ss, run_out *r,
                          int32_t *hist, int64_t n_hist, ob_err *err) {
    ob_status st = OB_OK;
    if (r->o->n_predict > 0) {
        int32_t id = ob_sampler_sample(s, ob_logits(c, -1));
        if (id < 0)
            return ob_fail(err, OB_ERR_NUMERIC, "token 0: no logit is finite, nothing to "
                           "sample");
        hist[n_hist++] = id;
        bool stopped = !run_emit(r, id);
        while (!stopped && !st)
            st = spec_step(c, 0, ss, s, hist, &n_hist, run_emit, r, &stopped, err);
    }
    if (!r->o->ids) cli_text_flush(r->tx);
    /* The text's last line ends, and reaches the terminal or pipe, before anything goes to
     * stderr: with both on one pipe (2>&1) a buffered stdout used to put its newline after the
     * speed line. */
    printf("\n");
    fflush(stdout);
    return st;
}

/* --verbose: what speculation did. */
static void print_spec(const spec_seq *ss) {
    if (ss->p.mode == SPEC_MODE_OFF) {
        fprintf(stderr, "speculative: off\n");
    } else {
        fprintf(stderr, "speculative: %s, %lld draft tokens, %lld accepted (%.1f%%), "
                "%.2f tokens per pass over %lld passes\n", spec_mode_name(ss->p.mode),
                (long long)ss->n_drafted, (long long)ss->n_accepted,
                ss->n_drafted ? 100.0 * (double)ss->n_accepted / (double)ss->n_drafted : 0.0,
                ss->n_passes ? (double)ss->n_tokens / (double)ss->n_passes : 0.0,
                (long long)ss->n_passes);
    }
}

int cli_cmd_run(int argc, char **argv) {
    cli_run_args o;
    ob_err err = {{0}};
    if (cli_run_args_parse(argc, argv, &o, &err)) {
        fprintf(stderr, "outboard run: %s\n", err.msg);
        return usage(stderr);
    }
    if (o.help) return usage(stdout);
    ob_model *m = NULL, *dm = NULL;
    spec_drafter *drafter = NULL;
    spec_mtp *mtp = NULL;
    ob_context *c = NULL;
    ob_sampler *s = NULL;
    cli_grammar gr = {0};
    cli_text *tx = NULL;
    int32_t *prompt = NULL, *hist = NULL;
    size_t n_prompt = 0;
    int rc = 1;
    /* The prompt file before the model: a bad -f fails at once, not after a long load. */
    char *file_text = NULL;
    size_t len = o.prompt ? strlen(o.prompt) : 0;
    const cli_file_use use = {"-f", CLI_MAX_PROMPT_FILE, true};
    if (o.file && cli_read_file(o.file, &use, &file_text, &len, &err)) {
        fprintf(stderr, "outboard run: %s\n", err.msg);
        return 1;
    }
    if (cli_load_model(o.model, &m)) {
        ob_free(file_text);
        return 1;
    }
    ob_model_info info;
    ob_model_get_info(m, &info);
    if (cli_text_new(m, &tx, &err) ||
        cli_prompt_tokens(m, o.file ? file_text : o.prompt, len, o.tokens, &prompt, &n_prompt,
                          &err))
        goto done;
    cli_ctx_warn("run", m, o.cp.n_ctx);
    if (cli_context_new(m, &o.cp, &c, &err) || ob_sampler_new(&o.sp, info.n_vocab, &s, &err))
        goto done;
    for (size_t i = 0; i < n_prompt; i++) ob_sampler_accept(s, prompt[i]);
    if (cli_grammar_open(&gr, m, o.grammar_file, o.schema_file, &err)) goto done;
    ob_sampler_set_matcher(s, gr.matcher);
    if (!o.ids && o.prompt) fputs(o.prompt, stdout); /* the generated text continues it */
    /* The history prompt lookup searches: the prompt, then every generated token. */
    hist = ob_alloc(n_prompt + (size_t)o.n_predict + SPEC_MAX_DRAFT + 2, sizeof *hist);
    if (!hist) {
        ob_fail(&err, OB_ERR_NOMEM, "out of memory for %lld tokens", (long long)o.n_predict);
        goto done;
    }
    memcpy(hist, prompt, n_prompt * sizeof *hist);
    spec_seq ss;
    spec_seq_init(&ss, &o.spec, c);
    if (o.model_draft) {
        if (cli_load_model(o.model_draft, &dm)) {
            snprintf(err.msg, sizeof err.msg, "draft model %s did not load", o.model_draft);
            goto done;
        }
        if (spec_drafter_new(m, dm, 1, ob_context_n_ctx(c), ob_context_n_threads(c), &drafter,
                             &err))
            goto done;
        spec_seq_set_drafter(&ss, drafter, 0);
    }
    if (spec_mtp_for(&o.spec, m, c, drafter != NULL, 1, &mtp, &err)) goto done;
    if (mtp) spec_seq_set_mtp(&ss, mtp, 0);
    run_out out = {tx, &o, info.eos_id, 0};
    double t0 = cli_now();
    if (ob_eval(c, prompt, (int64_t)n_prompt, false, &err)) goto done;
    double t1 = cli_now();
    if (generate(c, s, &ss, &out, hist, (int64_t)n_prompt, &err)) goto done;
    double t2 = cli_now();
    const int64_t n_gen = out.n_gen;
    /* The first sampled token came from the prompt pass, so n_gen - 1 decode passes ran. */
    fprintf(stderr, "prompt: %zu tokens, %.2f tok/s | generated: %lld tokens, %.2f tok/s\n",
            n_prompt, (double)n_prompt / (t1 - t0), (long long)n_gen,
            n_gen > 1 ? (double)(n_gen - 1) / (t2 - t1) : 0.0);
    if (o.verbose) {
        print_spec(&ss);
        cli_device_report(stderr, c);
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "outboard run: %s\n", err.msg);
    cli_text_free(tx);
    ob_free(file_text);
    ob_free(prompt);
    ob_free(hist);
    ob_sampler_free(s);
    cli_grammar_close(&gr);
    spec_mtp_free(mtp);
    ob_context_free(c);
    spec_drafter_free(drafter);
    ob_model_free(dm);
    ob_model_free(m);
    return rc;
}
