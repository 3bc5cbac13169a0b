/*
 * Maps a GGUF file read-only and hands the bytes to gguf_parse. The mapping lives as long as
 * the gguf_file, so tensor data and strings are views into the page cache: loading a model
 * costs no copy, and the OS pages weights in as they are first touched. Only a regular file
 * is mapped: a named pipe, directory or device is refused by name, without blocking.
 */
#include "gguf/gguf_impl.h"

#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void gguf_unmap(void *map, size_t size) { munmap(map, size); }

/* What a path that is not a regular file is, for the message. */
static const char *file_kind(mode_t mode) {
    if (S_ISFIFO(mode)) return "a named pipe";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a plain file";
}

ob_status gguf_open(const char *path, gguf_file **out, ob_err *err) {
    if (!out) return ob_fail(err, OB_ERR_ARG, "gguf_open: out is NULL");
    *out = NULL;
    if (!path) return ob_fail(err, OB_ERR_ARG, "gguf_open: path is NULL");
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever, before
     * fstat could say it is not a model file (a device may block on open as well). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return ob_fail(err, OB_ERR_IO, "%s: open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return ob_fail(err, OB_ERR_IO, "%s: stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return ob_fail(err, OB_ERR_IO, "%s: not a regular file (%s)", path,
                       file_kind(sb.st_mode));
    }
    /* A regular file: back to blocking mode, which is what reads of it mean anyway. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return ob_fail(err, OB_ERR_IO, "%s: fcntl: %s", path, strerror(e));
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return ob_fail(err, OB_ERR_LIMIT, "%s: %lld bytes do not fit in the address space", path,
                       (long long)sb.st_size);
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    /* mmap refuses a zero-length mapping; an empty file goes to the parser as an empty buffer
     * so the message is the usual "truncated" one. */
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ob_fail(err, OB_ERR_IO, "%s: mmap of %zu bytes: %s", path, size, strerror(e));
        }
    }
    close(fd); /* the mapping keeps the file open */
    gguf_file *f = NULL;
    ob_status st = gguf_parse(map, size, path, &f, err);
    if (st) {
        if (map) munmap(map, size);
        return st;
    }
    f->map = map;
    f->map_size = size;
    *out = f;
    return OB_OK;
}
