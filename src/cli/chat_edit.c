/*
 * Line editing for `outboard chat` on a terminal: the cursor keys, Home/End, Backspace/Delete,
 * Ctrl-A/E/B/F/U/K/W/L, and Up/Down through the lines entered before. The terminal is put in
 * raw mode only while a line is read, so Ctrl-C during an answer still raises SIGINT; at the
 * prompt Ctrl-C arrives as a byte: it clears a line being typed, and on an empty line it is
 * reported as an interrupt (the chat then ends), as is Ctrl-D on an empty line as the end.
 *
 * The line may wrap over several terminal rows. Every change redraws it whole: go up to the
 * prompt's row, clear to the end of the screen, write prompt and text, then put the cursor
 * where its display width (utf8proc's character widths, so CJK and emoji count two) says.
 */
#include "cli/chat.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <utf8proc.h>

#define MAX_LINE ((size_t)1 << 20) /* bytes in one edited line */
#define MAX_HISTORY 1000           /* lines remembered for Up/Down */

typedef struct edit_state {
    char *buf;               /* (cap) the line as UTF-8, NUL-terminated, owned */
    size_t len, cap;
    size_t pos;              /* cursor: a byte offset on a character boundary */
    const char *prompt;      /* may hold colour codes */
    size_t prompt_w;         /* its visible width */
    size_t row;              /* the cursor's row below the prompt's, after the last redraw */
    size_t hist_at;          /* the history entry shown; n_hist = the line being typed */
    char *typed;             /* the line being typed while browsing history (owned) */
} edit_state;

/* Display columns of s[0..n): a character's width per utf8proc, invalid bytes one each. */
static size_t width_of(const char *s, size_t n) {
    size_t w = 0, i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) {
            w++;
            i++;
            continue;
        }
        int cw = utf8proc_charwidth(cp);
        w += cw > 0 ? (size_t)cw : 0;
        i += (size_t)k;
    }
    return w;
}

static size_t prev_char(const edit_state *e, size_t pos) {
    while (pos > 0 && ((unsigned char)e->buf[--pos] & 0xC0) == 0x80) {}
    return pos;
}

static size_t next_char(const edit_state *e, size_t pos) {
    while (pos < e->len && ((unsigned char)e->buf[++pos] & 0xC0) == 0x80) {}
    return pos;
}

static size_t term_cols(void) {
    struct winsize ws;
    return ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
}

/* Redraws prompt and line and places the cursor (see the file comment). */
static void refresh(edit_state *e) {
    size_t cols = term_cols();
    size_t total = e->prompt_w + width_of(e->buf, e->len);
    size_t at = e->prompt_w + width_of(e->buf, e->pos);
    if (e->row) printf("\x1b[%zuA", e->row);
    printf("\r\x1b[0J%s", e->prompt);
    fwrite(e->buf, 1, e->len, stdout);
    /* After exactly filling a row the terminal waits to wrap; a newline makes it definite. */
    if (total && total % cols == 0) fputs("\n", stdout);
    size_t end_row = total / cols, cur_row = at / cols;
    if (end_row > cur_row) printf("\x1b[%zuA", end_row - cur_row);
    printf("\r");
    if (at % cols) printf("\x1b[%zuC", at % cols);
    e->row = cur_row;
    fflush(stdout);
}

/* Replaces bytes [a, b) with s[0..n); the cursor goes after the new text. */
static int splice(edit_state *e, size_t a, size_t b, const char *s, size_t n) {
    size_t len = e->len - (b - a) + n;
    if (len > MAX_LINE) return -1;
    if (len + 1 > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        while (cap < len + 1) cap *= 2;
        char *grown = ob_realloc(e->buf, cap, 1);
        if (!grown) return -1;
        e->buf = grown;
        e->cap = cap;
    }
    memmove(e->buf + a + n, e->buf + b, e->len - b);
    memcpy(e->buf + a, s, n);
    e->len = len;
    e->buf[len] = 0;
    e->pos = a + n;
    return 0;
}

static void set_text(edit_state *e, const char *s) {
    if (splice(e, 0, e->len, s, strlen(s)) == 0) refresh(e);
}

/* Up (dir -1) or Down (+1) through the history. */
static void browse(edit_state *e, cli_chat_input *in, int dir) {
    if ((dir < 0 && e->hist_at == 0) || (dir > 0 && e->hist_at >= in->n_hist)) return;
    if (e->hist_at == in->n_hist) {
        ob_free(e->typed);
        e->typed = ob_strndup(e->buf, e->len);
    }
    e->hist_at += (size_t)(ptrdiff_t)dir;
    set_text(e, e->hist_at < in->n_hist ? in->hist[e->hist_at] : e->typed ? e->typed : "");
}

/* Reads one byte; -1 at the end of input or on an error. */
static int read_byte(void) {
    unsigned char c;
    for (;;) {
        ssize_t n = read(0, &c, 1);
        if (n == 1) return c;
        if (n == 0 || errno != EINTR || cli_chat_interrupted) return -1;
    }
}

/* An escape sequence (ESC already read) as a control key: 'A'..'D' arrows, 'H' Home, 'F' End,
 * 'X' Delete, 0 for anything else. */
static int escape_key(void) {
    int a = read_byte();
    if (a != '[' && a != 'O') return 0;
    int b = read_byte();
    if (b >= '0' && b <= '9') {
        int c = read_byte();
        if (c != '~') return 0;
        return b == '1' || b == '7' ? 'H' : b == '4' || b == '8' ? 'F' : b == '3' ? 'X' : 0;
    }
    return strchr("ABCDHF", b) && b > 0 ? b : 0;
}

/* Deletes the word before the cursor (and the spaces after it). */
static void kill_word(edit_state *e) {
    size_t a = e->pos;
    while (a > 0 && e->buf[a - 1] == ' ') a--;
    while (a > 0 && e->buf[a - 1] != ' ') a--;
    splice(e, a, e->pos, "", 0);
}

/* Handles one key. Returns 1 when the line is done, CLI_CHAT_* codes <= 0 to stop, 2 to go on. */
static int key(edit_state *e, cli_chat_input *in, int c) {
    switch (c) {
    case '\r': case '\n': return 1;
    case 3: /* Ctrl-C */
        if (!e->len) return CLI_CHAT_INTR;
        e->pos = e->len;
        refresh(e);
        fputs("^C\n", stdout);
        e->row = 0;
        splice(e, 0, e->len, "", 0);
        break;
    case 4: /* Ctrl-D: the end on an empty line, else Delete */
        if (!e->len) return CLI_CHAT_EOF;
        if (e->pos < e->len) splice(e, e->pos, next_char(e, e->pos), "", 0);
        break;
    case 127: case 8: if (e->pos) splice(e, prev_char(e, e->pos), e->pos, "", 0); break;
    case 1: e->pos = 0; break;
    case 5: e->pos = e->len; break;
    case 2: e->pos = prev_char(e, e->pos); break;
    case 6: e->pos = next_char(e, e->pos); break;
    case 21: splice(e, 0, e->pos, "", 0); break;
    case 11: e->len = e->pos, e->buf[e->len] = 0; break;
    case 23: kill_word(e); break;
    case 12: fputs("\x1b[H\x1b[2J", stdout), e->row = 0; break;
    case 16: browse(e, in, -1); return 2;
    case 14: browse(e, in, 1); return 2;
    case 27: {
        int k = escape_key();
        if (k == 'A' || k == 'B') return browse(e, in, k == 'A' ? -1 : 1), 2;
        if (k == 'C') e->pos = next_char(e, e->pos);
        if (k == 'D') e->pos = prev_char(e, e->pos);
        if (k == 'H') e->pos = 0;
        if (k == 'F') e->pos = e->len;
        if (k == 'X' && e->pos < e->len) splice(e, e->pos, next_char(e, e->pos), "", 0);
        break;
    }
    default:
        if (c < 32) return 2; /* other control keys do nothing */
        {
            /* A whole UTF-8 character at once, so no redraw shows half of one. */
            char ch[4] = {(char)c};
            int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0, n = 1;
            for (; n <= more; n++) {
                int b = read_byte();
                if (b < 0) break;
                ch[n] = (char)b;
            }
            splice(e, e->pos, e->pos, ch, (size_t)n);
        }
    }
    refresh(e);
    return 2;
}

/* Remembers a non-empty line for Up/Down (not twice in a row); the oldest go past the limit. */
static void remember(cli_chat_input *in, const char *line) {
    if (!*line || (in->n_hist && !strcmp(in->hist[in->n_hist - 1], line))) return;
    if (in->n_hist == MAX_HISTORY) {
        ob_free(in->hist[0]);
        memmove(in->hist, in->hist + 1, --in->n_hist * sizeof *in->hist);
    }
    if (in->n_hist == in->cap_hist) {
        size_t cap = in->cap_hist ? in->cap_hist * 2 : 16;
        char **grown = ob_realloc(in->hist, cap, sizeof *grown);
        if (!grown) return;
        in->hist = grown;
        in->cap_hist = cap;
    }
    char *copy = ob_strndup(line, strlen(line));
    if (copy) in->hist[in->n_hist++] = copy;
}

int cli_chat_edit_line(cli_chat_input *in, const char *prompt, size_t prompt_w, char **line) {
    *line = NULL;
    struct termios saved, raw;
    if (tcgetattr(0, &saved)) return CLI_CHAT_EOF;
    raw = saved;
    /* Keys arrive one by one and unechoed, Ctrl-C/Ctrl-Z/Ctrl-S as bytes; output processing
     * stays on, so '\n' still starts a new row. */
    raw.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
    raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(0, TCSADRAIN, &raw)) return CLI_CHAT_EOF;
    edit_state e = {.prompt = prompt, .prompt_w = prompt_w, .hist_at = in->n_hist};
    int rc = splice(&e, 0, 0, "", 0) ? CLI_CHAT_TOOLONG : 2;
    if (rc == 2) refresh(&e);
    while (rc == 2) {
        int c = read_byte();
        rc = c < 0 ? (cli_chat_interrupted ? CLI_CHAT_INTR : CLI_CHAT_EOF) : key(&e, in, c);
    }
    if (rc == 1) { /* the cursor to the end, then a new row for what follows */
        e.pos = e.len;
        refresh(&e);
    }
    fputs("\n", stdout);
    fflush(stdout);
    tcsetattr(0, TCSADRAIN, &saved);
    ob_free(e.typed);
    if (rc != 1) {
        ob_free(e.buf);
        return rc;
    }
    remember(in, e.buf);
    *line = e.buf;
    return CLI_CHAT_LINE;
}

void cli_chat_edit_clear(cli_chat_input *in) {
    for (size_t i = 0; i < in->n_hist; i++) ob_free(in->hist[i]);
    ob_free(in->hist);
    in->hist = NULL;
    in->n_hist = in->cap_hist = 0;
}
