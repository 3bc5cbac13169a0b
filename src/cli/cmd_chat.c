/*
 * `outboard chat -m MODEL.gguf`: an interactive chat in the terminal. Each turn renders the
 * whole conversation with the model's chat template (chat_prompt.c), evaluates only the tokens
 * the KV cache does not already hold (chat_engine.c) and streams the answer with reasoning and
 * tool calls shown apart (chat_reply.c). When the conversation outgrows the context the oldest
 * exchanges go (the system prompt stays), and the chat says so.
 *
 * With stdin not a terminal each line is a user message and stdout carries only the replies
 * (one per message, ending in a newline), so scripts and tests can drive it; notes, reasoning
 * and --show-prompt/--verbose output go to stderr. Lines starting with '/' are commands.
 */
#include "cli/chat.h"
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct chat {
    cli_chat_args o;
    ob_model *model;
    cli_chat_tmpl tmpl;
    cli_chat_engine eng;
    ob_model *draft_model;  /* --model-draft, or NULL */
    spec_drafter *drafter;  /* owned, or NULL */
    spec_mtp *mtp;          /* owned: the model's multi-token-prediction drafter, or NULL */
    json_t *messages;  /* the conversation (owned) */
    bool interactive;  /* stdin is a terminal: prompts */
    bool failed;       /* a turn got no answer (template, tokenizer or engine error): a script
                          feeding stdin sees a non-zero exit status */
    bool color;        /* stdout is a terminal too, and NO_COLOR is unset */
    int turn;
} chat;

static const char HELP[] =
    "  /reset        clear the conversation (the system prompt stays)\n"
    "  /system TEXT  set the system prompt (no TEXT: remove it)\n"
    "  /save FILE    write the conversation as JSON (`outboard template --input` reads it)\n"
    "  /load FILE    continue a saved conversation\n"
    "  /help         this list;  /quit (or Ctrl-D) leaves\n"
    "  A line ending in \\ continues on the next line; Ctrl-C stops an answer, and at an\n"
    "  empty prompt leaves. Start a message with // to send a line beginning with /.\n";

static int usage(FILE *to) {
    fprintf(to,
            "usage: outboard chat -m MODEL.gguf [options]\n"
            "  --system TEXT | --system-file FILE   the system prompt (a file of at most 16 MiB)\n"
            "  --template FILE   a Jinja chat template instead of the model's own\n"
            "  -n N   reply tokens at most (-1: until the model stops or the context is full)\n"
            "%s"
            "  --show-prompt   print each rendered prompt on stderr\n"
            "  --spec auto|off|ngram|draft|mtp   speculative decoding by prompt lookup, a "
            "draft model\n"
            "                  or the model's MTP layers (auto: the draft model if given, else "
            "MTP\n"
            "                  if the model has it, else lookup, where it pays)\n"
            "  --spec-max N    most draft tokens per pass (16)\n"
            "  --model-draft FILE   a smaller model with the same vocabulary that drafts\n"
            "  --verbose       per-turn token counts, speed and speculation on stderr\n"
            "  --ignore-eos    do not stop at end-of-generation tokens\n"
            "commands, typed as a message:\n%s",
            CLI_ENGINE_OPTS_HELP, HELP);
    return to == stdout ? 0 : 2;
}

/* ---- prompts -------------------------------------------------------------------------- */

/* Room kept for the answer when deciding whether old turns must go. */
static int64_t answer_room(const chat *c) {
    int64_t quarter = c->eng.n_ctx / 4;
    return c->o.n_predict >= 0 && c->o.n_predict < quarter ? c->o.n_predict : quarter;
}

/* Renders and tokenizes the conversation, dropping the oldest exchanges while it leaves too
 * little room for an answer. Prints the reason and returns -1 when it cannot be done (a
 * template error, or the last message alone does not fit). */
static int build_prompt(chat *c, char **text, int32_t **ids, size_t *n) {
    size_t dropped = 0;
    ob_err err = {{0}};
    for (;;) {
        size_t len;
        if (cli_chat_tmpl_render(&c->tmpl, c->messages, true, text, &len, &err)) {
            fprintf(stderr, "outboard chat: the template failed: %s\n", err.msg);
            return -1;
        }
        if (ob_chat_tokenize(c->tmpl.chat, *text, len, true, ids, n, &err)) {
            fprintf(stderr, "outboard chat: %s\n", err.msg);
            ob_free(*text);
            return -1;
        }
        if ((int64_t)*n + answer_room(c) <= c->eng.n_ctx) break;
        size_t gone = cli_chat_history_drop_oldest(c->messages);
        if (!gone && (int64_t)*n < c->eng.n_ctx) break; /* fits, with less room to answer */
        if (!gone) {
            fprintf(stderr,
                    "outboard chat: the message does not fit: the prompt would be %zu tokens "
                    "and the context holds %lld (--ctx); not sent\n",
                    *n, (long long)c->eng.n_ctx);
            ob_free(*text);
            ob_tokens_free(*ids);
            return -1;
        }
        dropped += gone;
        ob_free(*text);
        ob_tokens_free(*ids);
    }
    if (dropped)
        fprintf(stderr,
                "outboard chat: the conversation outgrew the context (%lld tokens): dropped the "
                "%zu oldest messages, the prompt is now %zu tokens\n",
                (long long)c->eng.n_ctx, dropped, *n);
    return 0;
}

/* ---- one turn ------------------------------------------------------------------------- */

static void print_stats(const chat *c, size_t n_prompt, size_t n_eval, double t_eval,
                        const cli_chat_reply *r) {
    fprintf(stderr,
            "chat: turn %d: prompt %zu tokens (%zu cached, %zu evaluated, %.1f tok/s), reply "
            "%zu tokens (%.1f tok/s)\n",
            c->turn, n_prompt, n_prompt - n_eval, n_eval, t_eval > 0 ? n_eval / t_eval : 0.0,
            r->n_ids, r->seconds > 0 ? r->n_ids / r->seconds : 0.0);
    fprintf(stderr, "chat: reply ids:");
    for (size_t i = 0; i < r->n_ids; i++) fprintf(stderr, " %d", r->ids[i]);
    fputc('\n', stderr);
}

static void print_spec_stats(const spec_seq *ss) {
    if (!ss->enabled) {
        fprintf(stderr, "chat: speculative: off\n");
        return;
    }
    fprintf(stderr, "chat: speculative: %s, %lld draft tokens, %lld accepted (%.1f%%), %.2f "
            "tokens per pass\n", spec_mode_name(ss->p.mode), (long long)ss->n_drafted,
            (long long)ss->n_accepted,
            ss->n_drafted ? 100.0 * (double)ss->n_accepted / (double)ss->n_drafted : 0.0,
            ss->n_passes ? (double)ss->n_tokens / (double)ss->n_passes : 0.0);
}

/* Prefills the prompt and streams the answer into r. Prints problems; -1 when no answer. */
static int answer(chat *c, const char *text, const int32_t *ids, size_t n, cli_chat_reply *r) {
    ob_err err = {{0}};
    ob_model_info info;
    ob_model_get_info(c->model, &info);
    ob_sampler_params sp = c->o.sp;
    sp.seed += (uint64_t)c->turn; /* not the same random stream every turn */
    ob_sampler *s = NULL;
    size_t n_eval = 0;
    double t0 = cli_now();
    if (ob_sampler_new(&sp, info.n_vocab, &s, &err) ||
        cli_chat_engine_prefill(&c->eng, ids, n, &n_eval, &err)) {
        fprintf(stderr, "outboard chat: %s\n", err.msg);
        ob_sampler_free(s);
        return -1;
    }
    double t_eval = cli_now() - t0;
    for (size_t i = 0; i < n; i++) ob_sampler_accept(s, ids[i]);
    spec_seq ss;
    spec_seq_init(&ss, &c->o.spec, c->eng.ctx);
    spec_seq_set_drafter(&ss, c->drafter, 0);
    if (c->mtp) spec_seq_set_mtp(&ss, c->mtp, 0);
    cli_chat_reply_opts ro = {
        .n_predict = c->o.n_predict,
        .tty = c->color,
        .ignore_eos = c->o.ignore_eos,
        .prompt = text,
        .spec = &ss,
    };
    ob_status st = cli_chat_reply_run(&c->eng, s, c->tmpl.chat, &ro, r, &err);
    ob_sampler_free(s);
    fputc('\n', stdout);
    fflush(stdout);
    if (st) {
        fprintf(stderr, "outboard chat: the answer stopped: %s\n", err.msg);
        c->failed = true;
    }
    if (r->interrupted)
        fprintf(stderr, "outboard chat: interrupted; the partial answer stays in the "
                        "conversation\n");
    if (r->ctx_full)
        fprintf(stderr, "outboard chat: the context is full (%lld tokens): the answer was cut; "
                        "the oldest messages go next turn\n",
                (long long)c->eng.n_ctx);
    if (c->o.verbose) {
        print_stats(c, n, n_eval, t_eval, r);
        print_spec_stats(&ss);
    }
    return 0;
}

static void turn(chat *c, const char *line) {
    ob_err err = {{0}};
    if (cli_chat_history_add(c->messages, "user", line, &err)) {
        fprintf(stderr, "outboard chat: %s\n", err.msg);
        return;
    }
    c->turn++;
    char *text = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    if (build_prompt(c, &text, &ids, &n)) {
        /* Not sent: the message leaves the conversation again. */
        json_array_remove(c->messages, json_array_size(c->messages) - 1);
        c->failed = true;
        return;
    }
    if (c->o.show_prompt)
        fprintf(stderr, "--- prompt (%zu tokens) ---\n%s\n--- end of prompt ---\n", n, text);
    cli_chat_reply r;
    memset(&r, 0, sizeof r);
    if (answer(c, text, ids, n, &r)) { /* no answer: the message is not kept either */
        json_array_remove(c->messages, json_array_size(c->messages) - 1);
        c->failed = true;
    }
    else if (cli_chat_history_add_reply(c->messages, &r.out, &err))
        fprintf(stderr, "outboard chat: %s\n", err.msg);
    cli_chat_reply_clear(&r);
    ob_free(text);
    ob_tokens_free(ids);
}

/* ---- commands ------------------------------------------------------------------------- */

static void cmd_load(chat *c, const char *path) {
    json_t *msgs;
    ob_err err = {{0}};
    if (cli_chat_history_load(path, &msgs, &err)) {
        fprintf(stderr, "outboard chat: %s\n", err.msg);
        return;
    }
    json_decref(c->messages);
    c->messages = msgs;
    fprintf(stderr, "outboard chat: loaded %zu messages from %s\n", json_array_size(msgs), path);
}

/* Runs a /command. Returns 1 when the chat should end. */
static int command(chat *c, const char *line) {
    size_t wlen = strcspn(line, " \t");
    const char *arg = line + wlen + strspn(line + wlen, " \t");
    ob_err err = {{0}};
#define IS(name) (wlen == strlen(name) && !memcmp(line, name, wlen))
    if (IS("/quit") || IS("/exit") || IS("/bye")) return 1;
    if (IS("/help") || IS("/?")) {
        fputs(HELP, stderr);
    } else if (IS("/reset") || IS("/clear")) {
        cli_chat_history_reset(c->messages);
        fprintf(stderr, "outboard chat: conversation cleared%s\n",
                json_array_size(c->messages) ? " (the system prompt stays)" : "");
    } else if (IS("/system")) {
        if (cli_chat_history_set_system(c->messages, arg, &err))
            fprintf(stderr, "outboard chat: %s\n", err.msg);
        else
            fprintf(stderr, "outboard chat: system prompt %s\n", *arg ? "set" : "removed");
    } else if ((IS("/save") || IS("/load")) && !*arg) {
        fprintf(stderr, "outboard chat: %.*s needs a file name\n", (int)wlen, line);
    } else if (IS("/save")) {
        if (cli_chat_history_save(c->messages, arg, &err))
            fprintf(stderr, "outboard chat: %s\n", err.msg);
        else
            fprintf(stderr, "outboard chat: saved %zu messages to %s\n",
                    json_array_size(c->messages), arg);
    } else if (IS("/load")) {
        cmd_load(c, arg);
    } else {
        fprintf(stderr, "outboard chat: unknown command '%.*s' (/help lists them)\n", (int)wlen,
                line);
    }
#undef IS
    return 0;
}

/* ---- the session ---------------------------------------------------------------------- */

/* Loads everything a chat needs; prints what failed. The files named by flags are read
 * first, so a bad --system-file or --template fails before the model loads. */
static int setup(chat *c) {
    ob_err err = {{0}};
    char *sys = NULL;
    size_t len = 0;
    const cli_file_use sys_use = {"--system-file", CLI_MAX_SYSTEM_FILE, false};
    if (c->o.system_file && cli_read_file(c->o.system_file, &sys_use, &sys, &len, &err))
        goto fail;
    while (len && (sys[len - 1] == '\n' || sys[len - 1] == '\r')) sys[--len] = 0;
    if (cli_chat_tmpl_read(c->o.template_file, &c->tmpl, &err)) goto fail;
    if (cli_load_model(c->o.model, &c->model)) {
        ob_free(sys);
        return -1;
    }
    if (cli_chat_tmpl_bind(&c->tmpl, c->model, c->o.model, &err)) goto fail;
    if (c->tmpl.note[0]) fprintf(stderr, "outboard chat: %s\n", c->tmpl.note);
    cli_ctx_warn("chat", c->model, c->o.cp.n_ctx);
    cli_bar bar; /* while the backends prepare the weights */
    ob_context_params cp = c->o.cp;
    cli_bar_for_context(&bar, &cp);
    ob_status est = cli_chat_engine_init(&c->eng, c->model, &cp, &err);
    cli_bar_end(&bar);
    if (est) goto fail;
    cli_device_chosen(stderr, &c->o.cp, c->eng.ctx);
    if (c->o.model_draft) {
        if (cli_load_model(c->o.model_draft, &c->draft_model)) {
            ob_free(sys);
            return -1;
        }
        if (spec_drafter_new(c->model, c->draft_model, 1, c->eng.n_ctx,
                             ob_context_n_threads(c->eng.ctx), &c->drafter, &err))
            goto fail;
    }
    if (spec_mtp_for(&c->o.spec, c->model, c->eng.ctx, c->drafter != NULL, 1, &c->mtp, &err))
        goto fail;
    c->messages = json_array();
    if (!c->messages) {
        ob_fail(&err, OB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (cli_chat_history_set_system(c->messages, sys ? sys : c->o.system, &err)) goto fail;
    ob_free(sys);
    return 0;
fail:
    fprintf(stderr, "outboard chat: %s\n", err.msg);
    ob_free(sys);
    return -1;
}

static void banner(const chat *c) {
    ob_model_info info;
    ob_model_get_info(c->model, &info);
    fprintf(stderr,
            "outboard chat: %s (%s, %s), context %lld tokens, output format %s\n"
            "/help lists the commands; Ctrl-C stops an answer; Ctrl-D or /quit leaves.\n",
            info.name[0] ? info.name : c->o.model, info.arch, info.type_name,
            (long long)c->eng.n_ctx, ob_chat_format(c->tmpl.chat));
}

/* Reads messages until the end of input, /quit or Ctrl-C at an empty prompt. */
static void session(chat *c) {
    cli_chat_input in;
    memset(&in, 0, sizeof in);
    const char *term = getenv("TERM");
    in.edit = c->interactive && isatty(1) && !(term && !strcmp(term, "dumb"));
    for (;;) {
        cli_chat_interrupted = 0;
        char *line = NULL;
        /* Prompts only where the user sees them, not into a file that collects the replies. */
        int got = cli_chat_input_read(&in, c->interactive && isatty(1), &line);
        if (got == CLI_CHAT_EOF || got == CLI_CHAT_INTR) {
            if (c->interactive) fputc('\n', stdout);
            break;
        }
        if (got == CLI_CHAT_CANCEL) {
            fputc('\n', stdout);
            continue;
        }
        if (got == CLI_CHAT_TOOLONG) {
            fprintf(stderr, "outboard chat: the message is over 16 MiB; not sent\n");
            continue;
        }
        int quit = 0;
        if (line[0] == '/' && line[1] != '/') quit = command(c, line);
        else if (line[strspn(line, " \t\r\n")]) turn(c, line + (line[0] == '/'));
        ob_free(line);
        if (quit) break;
    }
    cli_chat_input_clear(&in);
}

int cli_cmd_chat(int argc, char **argv) {
    chat c;
    memset(&c, 0, sizeof c);
    ob_err err = {{0}};
    if (cli_chat_args_parse(argc, argv, &c.o, &err)) {
        fprintf(stderr, "outboard chat: %s\n", err.msg);
        return usage(stderr);
    }
    if (c.o.help) return usage(stdout);
    int rc = 1;
    if (setup(&c) == 0) {
        c.interactive = isatty(0);
        const char *nc = getenv("NO_COLOR");
        c.color = c.interactive && isatty(1) && !(nc && *nc);
        if (c.interactive) banner(&c);
        else if (c.o.verbose)
            fprintf(stderr, "chat: context %lld tokens, output format %s\n",
                    (long long)c.eng.n_ctx, ob_chat_format(c.tmpl.chat));
        cli_chat_signals_install();
        session(&c);
        rc = c.failed && !c.interactive;
    }
    json_decref(c.messages);
    cli_chat_engine_clear(&c.eng);
    spec_drafter_free(c.drafter);
    spec_mtp_free(c.mtp);
    ob_model_free(c.draft_model);
    cli_chat_tmpl_clear(&c.tmpl);
    ob_model_free(c.model);
    return rc;
}
