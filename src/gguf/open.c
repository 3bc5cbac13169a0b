/*
 * Maps a GGUF file read-only and hands the bytes to gguf_parse. The mapping lives as long as
 * the gguf_file, so tensor data and strings are views into the page cache: loading a model
 * costs no copy, and the OS pages weights in as they are first touched.
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

ob_status gguf_open(const char *path, gguf_file **out, ob_err *err) {
    if (!out) return ob_fail(err, OB_ERR_ARG, "gguf_open: out is NULL");
    *out = NULL;
    if (!path) return ob_fail(err, OB_ERR_ARG, "gguf_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ob_fail(err, OB_ERR_IO, "%s: open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return ob_fail(err, OB_ERR_IO, "%s: stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return ob_fail(err, OB_ERR_IO, "%s: not a regular file", path);
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
