/*
 * Fill-in-the-middle: the code around an editor's cursor as a prompt for a code model, and
 * POST /infill, the request editors' completion plugins (llama.vim, llama.vscode) send.
 *
 * The prompt is laid out as llama.cpp's server lays out /infill (the repo-level pattern of
 * Qwen2.5-Coder, arXiv 2409.12186), with the same token budgets, so a model answers here as it
 * answers there:
 *
 *   [FIM_REP]myproject\n  [FIM_SEP]file\n chunk ...  [FIM_SEP]filename\n     extra context
 *   [BOS] [FIM_PRE] prefix prompt [FIM_SUF] suffix [FIM_MID]
 *
 * Without FIM_REP the repository line is left out; without FIM_SEP each chunk is preceded by
 * "\n\n--- snippet ---\n\n" and no file line ends the extra. Budgets for a batch of B = 2048:
 * the last 3B/4 tokens of the prefix, the first B/4 - 2 - |prompt| of the suffix, and the last
 * n_ctx - B + 2 tokens of the extra context. Text is tokenized without special tokens, except
 * the prompt.
 */
#include "serve/serve_prompt.h"

#include "core/alloc.h"
#include "serve/serve_json.h"

#include <string.h>

#define FIM_BATCH 2048

/* A growable id list. */
typedef struct ids {
    int32_t *v;
    size_t n, cap;
    bool failed;
} ids;

static void push(ids *l, const int32_t *src, size_t n) {
    if (l->failed || !n) return;
    if (l->n + n > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < l->n + n) cap *= 2;
        int32_t *grown = ob_realloc(l->v, cap, sizeof *grown);
        if (!grown) {
            l->failed = true;
            return;
        }
        l->v = grown;
        l->cap = cap;
    }
    memcpy(l->v + l->n, src, n * sizeof *src);
    l->n += n;
}

static void push1(ids *l, int32_t id) { push(l, &id, 1); }

/* text tokenized with no BOS/EOS; special-token text parsed only when asked. */
static void push_text(ids *l, const ob_model *m, const char *text, size_t len, bool special) {
    int32_t *t = NULL;
    size_t n = 0;
    if (ob_tokenize(m, text, len, false, special, &t, &n, NULL)) {
        l->failed = true;
        return;
    }
    push(l, t, n);
    ob_tokens_free(t);
}

/* The extra context: repository line, each chunk under its file name, the current file. */
static void extra_tokens(ids *l, const ob_model *m, const ob_fim_tokens *f, const json_t *extra) {
    if (f->rep >= 0) {
        push1(l, f->rep);
        push_text(l, m, "myproject\n", 10, false);
    }
    size_t i;
    json_t *chunk;
    json_array_foreach(extra, i, chunk) {
        const char *text = json_string_value(json_object_get(chunk, "text"));
        const char *file = json_string_value(json_object_get(chunk, "filename"));
        if (f->sep >= 0) {
            push1(l, f->sep);
            size_t fl = strlen(file ? file : "tmp");
            char *line = ob_alloc(fl + 2, 1);
            if (!line) {
                l->failed = true;
                return;
            }
            memcpy(line, file ? file : "tmp", fl);
            line[fl] = '\n';
            push_text(l, m, line, fl + 1, false);
            ob_free(line);
        } else {
            static const char SNIPPET[] = "\n\n--- snippet ---\n\n";
            push_text(l, m, SNIPPET, sizeof SNIPPET - 1, false);
        }
        if (text) push_text(l, m, text, strlen(text), false);
    }
    if (f->sep >= 0) {
        push1(l, f->sep);
        push_text(l, m, "filename\n", 9, false);
    }
}

int serve_fim_tokens(const serve_prompter *p, const serve_gen_req *r, size_t i, int32_t **out,
                     size_t *n_out, serve_error *e) {
    const ob_model *m = p->model;
    ob_fim_tokens f;
    ob_model_fim_tokens(m, &f);
    if (f.pre < 0 || f.suf < 0 || f.mid < 0)
        return serve_error_bad(e, "unsupported_value", "suffix", "suffix: this model has no "
                               "fill-in-the-middle tokens (prefix %d, suffix %d, middle %d in "
                               "its vocabulary); it cannot complete between a prefix and a "
                               "suffix", f.pre, f.suf, f.mid);
    ids prefix = {0}, suffix = {0}, prompt = {0}, extra = {0}, all = {0};
    const serve_prompt *pr = i < r->n_prompts ? &r->prompts[i] : NULL;
    if (pr && pr->tokens) push(&prefix, pr->tokens, pr->n_tokens);
    else if (pr) push_text(&prefix, m, pr->text, pr->text_len, false);
    if (r->suffix) push_text(&suffix, m, r->suffix, strlen(r->suffix), false);
    if (r->fim_prompt) push_text(&prompt, m, r->fim_prompt, strlen(r->fim_prompt), true);
    extra_tokens(&extra, m, &f, r->fim_extra);

    const size_t take_pre = prefix.n < 3 * (FIM_BATCH / 4) ? prefix.n : 3 * (FIM_BATCH / 4);
    const int64_t room_suf = FIM_BATCH / 4 - (2 + (int64_t)prompt.n);
    const size_t take_suf = room_suf <= 0 ? 0 : suffix.n < (size_t)room_suf ? suffix.n
                                                                            : (size_t)room_suf;
    /* llama.cpp's server, with its default n_predict of -1: n_ctx - batch + 2 */
    const int64_t room_extra = p->n_ctx - FIM_BATCH + 2;
    const size_t take_extra = room_extra <= 0 ? 0 : extra.n < (size_t)room_extra
                                                        ? extra.n : (size_t)room_extra;
    ob_model_info info;
    ob_model_get_info(m, &info);
    int32_t *bos = NULL;
    size_t n_bos = 0;
    bool add_bos = false; /* the vocabulary starts a text with BOS */
    if (!ob_tokenize(m, "", 0, true, false, &bos, &n_bos, NULL))
        add_bos = n_bos > 0 && info.bos_id >= 0 && bos[0] == info.bos_id;
    push(&all, extra.v + extra.n - take_extra, take_extra);
    if (add_bos) push(&all, bos, 1);
    ob_tokens_free(bos);
    push1(&all, f.pre);
    push(&all, prefix.v + prefix.n - take_pre, take_pre);
    push(&all, prompt.v, prompt.n);
    push1(&all, f.suf);
    push(&all, suffix.v, take_suf);
    push1(&all, f.mid);
    bool failed = prefix.failed || suffix.failed || prompt.failed || extra.failed || all.failed;
    ob_free(prefix.v);
    ob_free(suffix.v);
    ob_free(prompt.v);
    ob_free(extra.v);
    if (failed) {
        ob_free(all.v);
        return serve_req_nomem(e, "the fill-in-the-middle prompt");
    }
    *out = all.v;
    *n_out = all.n;
    return 0;
}

/* ---- POST /infill ---------------------------------------------------------------------- */

static int extra_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    json_t *extra = NULL;
    if (serve_json_get_array(b, "", "input_extra", &extra, e) < 0) return -1;
    if (!extra) return 0;
    if (json_array_size(extra) > SERVE_MAX_MESSAGES)
        return serve_error_bad(e, "limit_exceeded", "input_extra", "input_extra: %zu chunks, "
                               "the limit is %d", json_array_size(extra), SERVE_MAX_MESSAGES);
    size_t i;
    json_t *c;
    json_array_foreach(extra, i, c) {
        char p[SERVE_PATH_MAX];
        const char *text = NULL, *file = NULL;
        serve_path_index(p, sizeof p, "input_extra", i);
        if (!json_is_object(c)) return serve_json_type_error(e, p, "a {filename, text} object", c);
        if (serve_json_get_string(c, p, "text", SERVE_MAX_TEXT, &text, NULL, e) < 0 ||
            serve_json_get_string(c, p, "filename", SERVE_MAX_TEXT, &file, NULL, e) < 0)
            return -1;
        if (!text) {
            char tp[SERVE_PATH_MAX];
            serve_path_key(tp, sizeof tp, p, "text");
            return serve_error_bad(e, "missing_field", tp, "%s: required, got nothing", tp);
        }
    }
    r->fim_extra = json_incref(extra);
    return 0;
}

static int infill_fill(serve_gen_req *r, const json_t *b, const serve_limits *lim,
                       serve_error *e) {
    const char *prefix = NULL, *suffix = NULL, *prompt = NULL;
    size_t pl = 0, sl = 0, ql = 0;
    int64_t k;
    double x;
    int got;
    serve_sampling *s = &r->sampling; /* llama.cpp's server's defaults */
    s->temperature = 0.8f;
    s->top_k = 40;
    s->top_p = 0.95f;
    s->min_p = 0.05f;
    if (serve_req_parse_model(r, b, false, e) ||
        serve_json_get_string(b, "", "input_prefix", SERVE_MAX_TEXT, &prefix, &pl, e) < 0 ||
        serve_json_get_string(b, "", "input_suffix", SERVE_MAX_TEXT, &suffix, &sl, e) < 0 ||
        serve_json_get_string(b, "", "prompt", SERVE_MAX_TEXT, &prompt, &ql, e) < 0 ||
        extra_parse(r, b, e) || serve_json_get_bool(b, "", "stream", &r->stream, e) < 0 ||
        serve_req_parse_stop(r, json_object_get(b, "stop"), "stop", e))
        return -1;
    if (!prefix || !suffix) {
        const char *f = !prefix ? "input_prefix" : "input_suffix";
        return serve_error_bad(e, "missing_field", f, "%s: required, got nothing", f);
    }
    r->fim = true;
    r->prompts = ob_calloc(1, sizeof *r->prompts);
    if (!r->prompts) return serve_req_nomem(e, "the prompt");
    r->n_prompts = 1;
    r->prompts[0].text_len = pl;
    if (serve_req_strdup(&r->prompts[0].text, prefix, pl, e) ||
        serve_req_strdup(&r->suffix, suffix, sl, e) ||
        (ql && serve_req_strdup(&r->fim_prompt, prompt, ql, e)))
        return -1;
    if ((got = serve_json_get_int(b, "", "n_predict", -1, INT32_MAX, &k, e)) < 0) return -1;
    if (got && k > 0) r->max_tokens = k;
    if ((got = serve_json_get_number(b, "", "temperature", 0, 100, &x, e)) < 0) return -1;
    if (got) s->temperature = (float)x;
    if ((got = serve_json_get_int(b, "", "top_k", 0, INT32_MAX, &k, e)) < 0) return -1;
    if (got) s->top_k = (int32_t)k;
    if ((got = serve_json_get_number(b, "", "top_p", 0, 1, &x, e)) < 0) return -1;
    if (got) s->top_p = (float)x;
    if ((got = serve_json_get_number(b, "", "min_p", 0, 1, &x, e)) < 0) return -1;
    if (got) s->min_p = (float)x;
    if ((got = serve_json_get_int(b, "", "seed", INT64_MIN, INT64_MAX, &k, e)) < 0) return -1;
    if (got && k >= 0) {
        s->has_seed = true;
        s->seed = (uint64_t)k;
    }
    (void)lim;
    return 0;
}

int serve_infill_parse(const char *body, size_t len, const serve_limits *lim, serve_gen_req **out,
                       serve_error *e) {
    return serve_req_parse_body(SERVE_DIALECT_LLAMACPP, SERVE_KIND_COMPLETION, body, len,
                                infill_fill, lim, out, e);
}
