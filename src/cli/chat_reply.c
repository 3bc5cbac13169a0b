/*
 * One answer of `outboard chat`: sample a token, evaluate it, turn it into text and pass the
 * text through the output parser of the model's chat format (ob_chat_parser), which separates
 * the visible content from reasoning (<think>...</think> and the like) and tool calls while
 * the answer streams. On a terminal reasoning is dimmed; otherwise it goes to stderr so stdout
 * carries only the reply. The parser's final result is what the conversation keeps.
 *
 * The answer ends at an end-of-generation token (not shown, not evaluated), after n_predict
 * tokens, when the context is full, or when Ctrl-C sets cli_chat_interrupted.
 */
#include "cli/chat.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

#define DIM "\x1b[2m"
#define CYAN "\x1b[36m"
#define RESET "\x1b[0m"

/* What has been shown of the answer so far. */
typedef struct view {
    bool tty;
    bool dimmed;   /* the terminal is in reasoning colours */
    bool reasoned; /* some reasoning was shown */
} view;

static void show_calls(view *v, const ob_tool_call *calls, size_t n) {
    for (size_t i = 0; i < n; i++)
        printf("%s[tool call] %s %s%s\n", v->tty ? CYAN : "", calls[i].name,
               calls[i].arguments, v->tty ? RESET : "");
}

static void show(view *v, const ob_chat_delta *d) {
    if (d->reasoning_len) {
        if (v->tty && !v->dimmed) fputs(DIM, stdout);
        v->dimmed = v->tty;
        v->reasoned = true;
        fwrite(d->reasoning, 1, d->reasoning_len, v->tty ? stdout : stderr);
    }
    if ((d->content_len || d->n_calls) && v->dimmed) {
        fputs(RESET "\n", stdout);
        v->dimmed = false;
    }
    fwrite(d->content, 1, d->content_len, stdout);
    show_calls(v, d->calls, d->n_calls);
    fflush(stdout);
    if (!v->tty) fflush(stderr);
}

/* Feeds text to the parser and shows what became final. */
static ob_status feed(ob_chat_parser *ps, view *v, const char *text, size_t n,
                      ob_err *err) {
    if (!n) return OB_OK;
    ob_chat_delta d;
    ob_status st = ob_chat_parser_feed(ps, text, n, &d, err);
    if (!st) show(v, &d);
    return st;
}

/* Detokenizes id (a negative id drains what is queued) and feeds the text. */
static ob_status put_token(ob_detok *dt, ob_chat_parser *ps, view *v, int32_t id,
                           ob_err *err) {
    char buf[4096];
    size_t n = ob_detok_push(dt, id, buf, sizeof buf);
    ob_status st = feed(ps, v, buf, n, err);
    while (!st && n == sizeof buf) { /* a piece longer than buf: the rest is queued */
        n = ob_detok_push(dt, -1, buf, sizeof buf);
        st = feed(ps, v, buf, n, err);
    }
    return st;
}

static ob_status keep_id(cli_chat_reply *r, size_t *cap, int32_t id, ob_err *err) {
    if (r->n_ids == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        int32_t *grown = ob_realloc(r->ids, c, sizeof *grown);
        if (!grown) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
        r->ids = grown;
        *cap = c;
    }
    r->ids[r->n_ids++] = id;
    return OB_OK;
}

/* Where the answer's tokens go: the reply's ids and the streamed text. */
typedef struct reply_sink {
    const cli_chat_reply_opts *o;
    const ob_model *model;
    ob_detok *dt;
    ob_chat_parser *ps;
    view *v;
    cli_chat_reply *r;
    size_t cap;
    int64_t n_drawn;
    ob_status st;
    ob_err *err;
} reply_sink;

/* Takes one drawn token; false at EOG, n_predict or an error (kept in the sink). */
static bool reply_emit(void *user, int32_t id) {
    reply_sink *k = user;
    k->n_drawn++;
    if (!k->o->ignore_eos && ob_token_is_eog(k->model, id)) return false;
    if ((k->st = keep_id(k->r, &k->cap, id, k->err)) ||
        (k->st = put_token(k->dt, k->ps, k->v, id, k->err)))
        return false;
    return k->n_drawn != k->o->n_predict; /* the last one's logits would not be used */
}

/* The sampling loop: tokens until EOG, n_predict, a full context or Ctrl-C. Each step
 * evaluates the pending token, with a draft when speculation has one. */
static ob_status generate(cli_chat_engine *e, ob_sampler *s, const cli_chat_reply_opts *o,
                          reply_sink *k, ob_err *err) {
    if (o->n_predict == 0) return OB_OK;
    if (cli_chat_interrupted) {
        k->r->interrupted = true;
        return OB_OK;
    }
    int32_t id = ob_sampler_sample(s, ob_logits(e->ctx, -1));
    if (id < 0)
        return ob_fail(err, OB_ERR_FORMAT, "reply token 0: no logit is finite, nothing to "
                       "sample");
    bool stopped = !reply_emit(k, id);
    ob_status st = OB_OK;
    while (!stopped && !st && !k->st) {
        if (cli_chat_interrupted) {
            k->r->interrupted = true;
            break;
        }
        if ((int64_t)e->n_cache >= e->n_ctx) {
            k->r->ctx_full = true;
            break;
        }
        st = cli_chat_engine_spec_step(e, o->spec, s, id, reply_emit, k, &id, &stopped, err);
    }
    return st ? st : k->st;
}

ob_status cli_chat_reply_run(cli_chat_engine *e, ob_sampler *s, const ob_chat *chat,
                             const cli_chat_reply_opts *o, cli_chat_reply *r, ob_err *err) {
    memset(r, 0, sizeof *r);
    ob_detok *dt = NULL;
    ob_status st = ob_detok_new(e->model, ob_chat_markup_is_special(chat), &dt, err);
    if (st) return st;
    ob_chat_parse_params pp = {.prompt = o->prompt, .prompt_len = o->prompt ? strlen(o->prompt) : 0};
    ob_chat_parser *ps = NULL;
    if ((st = ob_chat_parser_new(chat, &pp, &ps, err))) {
        ob_detok_free(dt);
        return st;
    }
    view v = {.tty = o->tty};
    reply_sink k = {.o = o, .model = e->model, .dt = dt, .ps = ps, .v = &v, .r = r, .err = err};
    double t0 = cli_now();
    st = generate(e, s, o, &k, err);
    r->seconds = cli_now() - t0;
    /* Whatever was generated is finished into a result, also after an error or Ctrl-C, so
     * the conversation keeps the partial answer. */
    char buf[4096];
    size_t n;
    ob_err ferr = {{0}};
    ob_status fst = OB_OK;
    while (!fst && (n = ob_detok_flush(dt, buf, sizeof buf)) > 0)
        fst = feed(ps, &v, buf, n, &ferr);
    ob_chat_delta d;
    if (!fst) fst = ob_chat_parser_finish(ps, &d, &r->out, &ferr);
    if (!fst) show(&v, &d);
    if (v.dimmed) fputs(RESET, stdout);
    if (v.reasoned && !v.tty) fputc('\n', stderr); /* the reasoning's own line ends */
    fflush(stdout);
    ob_chat_parser_free(ps);
    ob_detok_free(dt);
    if (!st && fst) {
        st = fst;
        if (err) *err = ferr;
    }
    return st;
}

void cli_chat_reply_clear(cli_chat_reply *r) {
    ob_chat_reply_clear(&r->out);
    ob_free(r->ids);
    memset(r, 0, sizeof *r);
}
