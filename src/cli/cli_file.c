/*
 * The one reader for files named on the command line: prompts (run -f, tokenize -f), system
 * prompts (chat --system-file), templates (chat --template, template --file) and conversations
 * (template --input, chat /load). Each use names its flag and its size limit, so `-f
 * /dev/zero` fails after reading just past the limit instead of growing until the machine
 * runs out of memory, and the message says which flag, which file and which limit.
 *
 * Pipes and character devices are read like files, as they are useful (`-f /dev/stdin`,
 * `-f <(cmd)`), and the limit bounds them too. Model files never come here: src/gguf/open.c
 * refuses anything but a regular file without blocking.
 */
#include "chat/jinja.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const size_t CLI_MAX_TEMPLATE_FILE = CHAT_JINJA_MAX_SOURCE;

/* The first buffer for a stream of unknown length; it doubles from here up to the limit. */
#define CLI_FILE_FIRST_READ ((size_t)64 << 10)

/* "a directory" and the like, for a file of a kind the reader refuses. */
static const char *kind_name(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a plain file";
}

/* "16 MiB (16777216 bytes)": the limits are whole MiB, and the bytes say it exactly. */
static ob_status over_limit(const cli_file_use *use, const char *name, ob_err *err) {
    if (use->limit % ((size_t)1 << 20))
        return ob_fail(err, OB_ERR_LIMIT, "%s %s: larger than %zu bytes, the limit for %s",
                       use->flag, name, use->limit, use->flag);
    return ob_fail(err, OB_ERR_LIMIT, "%s %s: larger than %zu MiB (%zu bytes), the limit for %s",
                   use->flag, name, use->limit >> 20, use->limit, use->flag);
}

/* Reads fd to its end or to just past limit into a new buffer with room for a NUL. */
static ob_status read_fd(int fd, const cli_file_use *use, const char *name, size_t hint,
                         char **out, size_t *len, ob_err *err) {
    /* One byte past the limit is enough to know the file is over it. */
    size_t most = use->limit + 1, n = 0;
    size_t cap = hint > 0 && hint < most ? hint + 1 : CLI_FILE_FIRST_READ;
    if (cap > most) cap = most;
    char *buf = ob_alloc(cap + 1, 1);
    if (!buf) return ob_fail(err, OB_ERR_NOMEM, "%s %s: out of memory", use->flag, name);
    for (;;) {
        if (n == cap) {
            if (cap == most) break;
            size_t grown_cap = cap > most / 2 ? most : cap * 2;
            char *grown = ob_realloc(buf, grown_cap + 1, 1);
            if (!grown) {
                ob_free(buf);
                return ob_fail(err, OB_ERR_NOMEM, "%s %s: out of memory after %zu bytes",
                               use->flag, name, n);
            }
            buf = grown;
            cap = grown_cap;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            ob_free(buf);
            return ob_fail(err, OB_ERR_IO, "%s %s: read: %s", use->flag, name, strerror(e));
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    if (n > use->limit) {
        ob_free(buf);
        return over_limit(use, name, err);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return OB_OK;
}

ob_status cli_read_file(const char *path, const cli_file_use *use, char **out, size_t *len,
                        ob_err *err) {
    *out = NULL;
    *len = 0;
    bool is_stdin = !strcmp(path, "-");
    if (is_stdin && !use->allow_stdin)
        return ob_fail(err, OB_ERR_ARG, "%s -: standard input is not accepted for %s",
                       use->flag, use->flag);
    const char *name = is_stdin ? "- (standard input)" : path;
    /* A plain blocking open: a directory or device opens without waiting, and a FIFO waiting
     * for its writer is what the user asked for (prompt text from another program). */
    int fd = is_stdin ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ob_fail(err, OB_ERR_IO, "%s %s: %s", use->flag, name, strerror(errno));
    struct stat sb;
    ob_status st = OB_OK;
    if (fstat(fd, &sb) != 0)
        st = ob_fail(err, OB_ERR_IO, "%s %s: stat: %s", use->flag, name, strerror(errno));
    else if (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode) && !S_ISCHR(sb.st_mode))
        st = ob_fail(err, OB_ERR_ARG, "%s %s: not a regular file (%s)", use->flag, name,
                     kind_name(sb.st_mode));
    else if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > use->limit)
        st = over_limit(use, name, err); /* known without reading a byte */
    else
        st = read_fd(fd, use, name, S_ISREG(sb.st_mode) ? (size_t)sb.st_size : 0, out, len, err);
    if (!is_stdin) close(fd);
    return st;
}

ob_status cli_read_json(const char *path, const cli_file_use *use, json_t **out, ob_err *err) {
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    ob_status st = cli_read_file(path, use, &text, &len, err);
    if (st) return st;
    json_error_t je;
    *out = json_loadb(text, len, 0, &je);
    ob_free(text);
    if (!*out)
        return ob_fail(err, OB_ERR_FORMAT, "%s %s:%d:%d: %s", use->flag, path, je.line,
                       je.column, je.text);
    return OB_OK;
}
