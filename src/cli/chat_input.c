/*
 * The chat's input: user messages read from stdin with read(2) rather than stdio, so that a
 * Ctrl-C arriving while the chat waits for a line interrupts the wait (the SIGINT handler is
 * installed without SA_RESTART) and the chat can tell "Ctrl-C at the prompt" from a line. A
 * line ending in a backslash continues on the next one; a message may not exceed 16 MiB.
 */
#include "cli/chat.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_MESSAGE ((size_t)16 << 20) /* bytes in one user message */

volatile sig_atomic_t cli_chat_interrupted = 0;

static void on_sigint(int sig) {
    (void)sig;
    cli_chat_interrupted = 1;
}

void cli_chat_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: read() returns EINTR */
    sigaction(SIGINT, &sa, NULL);
}

/* Reads more of stdin into in->buf. 1: got bytes, 0: end of input, -1: interrupted,
 * -2: no memory or over the limit. */
static int fill(cli_chat_input *in) {
    if (in->len == in->cap) {
        if (in->cap >= MAX_MESSAGE + 4096) return -2;
        size_t cap = in->cap ? in->cap * 2 : 4096;
        char *grown = ob_realloc(in->buf, cap, 1);
        if (!grown) return -2;
        in->buf = grown;
        in->cap = cap;
    }
    for (;;) {
        ssize_t n = read(0, in->buf + in->len, in->cap - in->len);
        if (n > 0) {
            in->len += (size_t)n;
            return 1;
        }
        if (n == 0) return 0;
        if (errno == EINTR && cli_chat_interrupted) return -1;
        if (errno != EINTR) return 0;
    }
}

/* Takes one physical line (without its newline, or the unterminated rest at the end of input)
 * from in->buf into *piece (borrowed until the next call on in); 1, 0, -1 or -2 as fill. */
static int next_line(cli_chat_input *in, size_t *consumed, const char **piece, size_t *n) {
    size_t scanned = 0;
    while (in->skip) {
        char *nl = in->len ? memchr(in->buf, '\n', in->len) : NULL;
        if (nl) {
            in->len -= (size_t)(nl + 1 - in->buf);
            memmove(in->buf, nl + 1, in->len);
            in->skip = false;
            break;
        }
        in->len = 0;
        int got = in->eof ? 0 : fill(in);
        if (got == 0) {
            in->eof = true;
            in->skip = false;
        }
        if (got < 0) return got;
    }
    for (;;) {
        char *nl = in->len > scanned ? memchr(in->buf + scanned, '\n', in->len - scanned) : NULL;
        if (nl) {
            *piece = in->buf;
            *n = (size_t)(nl - in->buf);
            *consumed = *n + 1;
            return 1;
        }
        scanned = in->len;
        if (in->eof) {
            if (!in->len) return 0;
            *piece = in->buf;
            *n = *consumed = in->len;
            return 1;
        }
        int got = fill(in);
        if (got == 0) in->eof = true;
        if (got == -2) {
            /* Too long: forget it and skip the rest of that line when it comes. */
            in->len = 0;
            in->skip = true;
        }
        if (got < 0) return got;
    }
}

/* Appends len bytes to a growing message. */
static int append(char **msg, size_t *mlen, const char *s, size_t len) {
    if (*mlen + len + 2 > MAX_MESSAGE) return -2;
    char *grown = ob_realloc(*msg, *mlen + len + 2, 1);
    if (!grown) return -2;
    memcpy(grown + *mlen, s, len);
    *mlen += len;
    grown[*mlen] = 0;
    *msg = grown;
    return 0;
}

/* One physical line: from the line editor, or from stdin (with a plain prompt on a terminal).
 * p, n: the line, valid until the next call; *edited: to free (editor) or NULL; *consumed: bytes
 * to drop from in->buf. Returns 1, 0 (end), -1 (Ctrl-C) or -2 (too long) as next_line. */
static int physical_line(cli_chat_input *in, bool tty, bool first, const char **p, size_t *n,
                         char **edited, size_t *consumed) {
    *edited = NULL;
    *consumed = 0;
    if (!in->edit) {
        if (tty) {
            fputs(first ? "\x1b[1m> \x1b[0m" : "\x1b[1m. \x1b[0m", stdout);
            fflush(stdout);
        }
        return next_line(in, consumed, p, n);
    }
    int got = cli_chat_edit_line(in, first ? "\x1b[1m> \x1b[0m" : "\x1b[1m. \x1b[0m", 2, edited);
    if (got != CLI_CHAT_LINE) return got == CLI_CHAT_INTR ? -1 : got == CLI_CHAT_EOF ? 0 : -2;
    *p = *edited;
    *n = strlen(*edited);
    return 1;
}

int cli_chat_input_read(cli_chat_input *in, bool tty, char **line) {
    char *msg = NULL;
    size_t mlen = 0;
    *line = NULL;
    for (bool first = true;; first = false) {
        const char *p;
        char *edited;
        size_t n, consumed;
        int got = physical_line(in, tty, first, &p, &n, &edited, &consumed);
        if (got <= 0) {
            /* Ctrl-D after a continuation line still sends what was typed. */
            if (got == 0 && msg) break;
            int rc = got == 0 ? CLI_CHAT_EOF : got == -1 ? CLI_CHAT_INTR : CLI_CHAT_TOOLONG;
            if (rc == CLI_CHAT_INTR && msg) rc = CLI_CHAT_CANCEL;
            ob_free(msg);
            return rc;
        }
        bool more = n > 0 && p[n - 1] == '\\';
        size_t keep = n - more;
        if (keep && p[keep - 1] == '\r') keep--; /* a CRLF file */
        int bad = append(&msg, &mlen, p, keep);
        if (!bad && more) bad = append(&msg, &mlen, "\n", 1);
        ob_free(edited);
        if (consumed) { /* in->buf may be NULL when the editor read the line */
            memmove(in->buf, in->buf + consumed, in->len - consumed);
            in->len -= consumed;
        }
        if (bad) {
            ob_free(msg);
            return CLI_CHAT_TOOLONG;
        }
        if (!more || in->eof) break;
    }
    *line = msg ? msg : ob_strndup("", 0);
    return *line ? CLI_CHAT_LINE : CLI_CHAT_TOOLONG;
}

void cli_chat_input_clear(cli_chat_input *in) {
    cli_chat_edit_clear(in);
    ob_free(in->buf);
    memset(in, 0, sizeof *in);
}
