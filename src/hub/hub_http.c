/*
 * HTTP for the hub over libcurl (the platform's TLS, proxies and redirects), and SHA-256 from
 * OpenSSL's libcrypto.
 *
 * A download appends to a partial file: when one is there from an earlier try, the request
 * asks for the rest (Range: bytes=N-) and the hash is first fed with the bytes already on
 * disk, so the file is read once in all. A server that ignores the range (200) has the file
 * started over. Every way a transfer can end badly becomes one line naming the URL or file:
 * the HTTP status with what it means, a redirect loop, a stall, a short or long body, a full
 * disk.
 */
#include "hub/hub.h"
#include "core/alloc.h"
#include "core/err.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- SHA-256 ----------------------------------------------------------------------------- */

static void hex_digest(EVP_MD_CTX *md, char out[65]) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md, d, &n);
    for (unsigned int i = 0; i < n && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
    out[64] = 0;
}

/* Feeds fd's bytes from its start into md. */
static ob_status hash_fd(int fd, EVP_MD_CTX *md, const char *path, ob_err *err) {
    static const size_t CHUNK = (size_t)1 << 20;
    unsigned char *buf = ob_alloc(CHUNK, 1);
    if (!buf) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", path);
    ob_status st = OB_OK;
    for (off_t off = 0;;) {
        ssize_t r = pread(fd, buf, CHUNK, off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = ob_fail(err, OB_ERR_IO, "reading %s: %s", path, strerror(errno));
            break;
        }
        if (r == 0) break;
        EVP_DigestUpdate(md, buf, (size_t)r);
        off += r;
    }
    ob_free(buf);
    return st;
}

ob_status hub_sha256_file(const char *path, char out[65], ob_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ob_fail(err, OB_ERR_IO, "%s: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ob_status st = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL)
                       ? hash_fd(fd, md, path, err)
                       : ob_fail(err, OB_ERR_NOMEM, "%s: SHA-256: out of memory", path);
    if (!st) hex_digest(md, out);
    EVP_MD_CTX_free(md);
    close(fd);
    return st;
}

/* ---- one transfer ------------------------------------------------------------------------ */

typedef struct transfer {
    const hub_http *h;
    const char *label, *digest;
    /* a GET into memory */
    char *body;
    size_t len, cap, limit;
    /* a download into a file */
    int fd;
    const char *path;
    EVP_MD_CTX *md;
    uint64_t have; /* bytes already in the file before this request */
    uint64_t written;
    int write_errno; /* set when writing the file failed (ENOSPC, EFBIG) */
    bool over_limit, restart, cancelled;
    long status;     /* of the final response, read in the header callback */
    char etag[256];
    char next[HUB_URL_MAX]; /* Link: <...>; rel="next" */
    int64_t range_start;    /* Content-Range: bytes START-..., -1 when none */
    bool wrong_range;       /* a 206 that does not start where the partial file ends */
} transfer;

/* The URL of the rel="next" link in a Link header's value (RFC 8288), into next. */
static void link_next(const char *v, size_t len, char next[HUB_URL_MAX]) {
    char buf[2 * HUB_URL_MAX];
    if (len >= sizeof buf) return;
    memcpy(buf, v, len);
    buf[len] = 0;
    for (char *lt = strchr(buf, '<'); lt; lt = strchr(lt + 1, '<')) {
        char *gt = strchr(lt, '>');
        if (!gt) return;
        char *params = gt + 1, *comma = strchr(params, ',');
        if (comma) *comma = 0;
        bool is_next = strstr(params, "rel=\"next\"") || strstr(params, "rel=next");
        if (is_next && (size_t)(gt - lt - 1) < HUB_URL_MAX) {
            memcpy(next, lt + 1, (size_t)(gt - lt - 1));
            next[gt - lt - 1] = 0;
            return;
        }
        if (!comma) return;
        lt = comma;
    }
}

/* The header callback sees every response of a redirect chain; only the final status counts,
 * and each new status line resets what the previous response said. */
static size_t on_header(char *data, size_t size, size_t n, void *user) {
    transfer *t = user;
    size_t len = size * n;
    if (len > 5 && !strncasecmp(data, "HTTP/", 5)) {
        const char *sp = memchr(data, ' ', len);
        t->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        t->etag[0] = 0;
        t->next[0] = 0;
        t->range_start = -1;
    } else if (len > 20 && !strncasecmp(data, "content-range:", 14)) {
        const char *b = data + 14;
        while (b < data + len && (*b == ' ' || *b == '\t')) b++;
        if ((size_t)(data + len - b) > 6 && !strncasecmp(b, "bytes ", 6))
            t->range_start = strtoll(b + 6, NULL, 10);
    } else if (len > 5 && !strncasecmp(data, "link:", 5)) {
        link_next(data + 5, len - 5, t->next);
    } else if (len > 5 && !strncasecmp(data, "etag:", 5)) {
        size_t s = 5, e = len;
        while (s < e && (data[s] == ' ' || data[s] == '\t')) s++;
        while (e > s && (data[e - 1] == '\r' || data[e - 1] == '\n' || data[e - 1] == ' ')) e--;
        if (e - s < sizeof t->etag) {
            memcpy(t->etag, data + s, e - s);
            t->etag[e - s] = 0;
        }
    }
    return len;
}

static size_t on_body_mem(char *data, size_t size, size_t n, void *user) {
    transfer *t = user;
    size_t len = size * n;
    if (t->len + len > t->limit) {
        t->over_limit = true;
        return 0;
    }
    if (t->len + len + 1 > t->cap) {
        size_t cap = (t->len + len + 1) * 2;
        char *b = ob_realloc(t->body, cap, 1);
        if (!b) return 0;
        t->body = b;
        t->cap = cap;
    }
    memcpy(t->body + t->len, data, len);
    t->len += len;
    t->body[t->len] = 0;
    return len;
}

/* Writes the body to the file, but only once the final response is known to be the file (206
 * for a resumed request, 200 otherwise): an error page is never written into a model. */
static size_t on_body_file(char *data, size_t size, size_t n, void *user) {
    transfer *t = user;
    size_t len = size * n;
    if (t->status != 200 && t->status != 206) return len; /* read, then reported by status */
    if (t->status == 206 && t->written == 0 && t->range_start != (int64_t)t->have) {
        t->wrong_range = true; /* these bytes belong elsewhere in the file */
        return 0;
    }
    if (t->have > 0 && t->status == 200 && !t->restart) {
        /* The server ignored the range: start the file and the hash over. */
        t->restart = true;
        if (ftruncate(t->fd, 0)) {
            t->write_errno = errno;
            return 0;
        }
        EVP_DigestInit_ex(t->md, EVP_sha256(), NULL);
        t->have = 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = pwrite(t->fd, data + off, len - off, (off_t)(t->have + t->written + off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            t->write_errno = w < 0 ? errno : ENOSPC;
            return 0;
        }
        off += (size_t)w;
    }
    EVP_DigestUpdate(t->md, data, len);
    t->written += len;
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ul,
                       curl_off_t ulnow) {
    (void)ul;
    (void)ulnow;
    transfer *t = user;
    if (!t->h->progress || (t->status != 200 && t->status != 206)) return 0;
    uint64_t total = dltotal > 0 ? t->have + (uint64_t)dltotal : 0;
    if (!t->h->progress(t->label, t->digest, t->have + (uint64_t)dlnow, total,
                        t->h->progress_user)) {
        t->cancelled = true;
        return 1;
    }
    return 0;
}

static CURL *easy_new(const hub_http *h, const char *url, transfer *t, struct curl_slist **hdrs) {
    pthread_once(&curl_once, curl_init_once);
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)HUB_MAX_REDIRECTS);
    /* http(s) only, also after a redirect: no file://, no other scheme by surprise. */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "outboard/" OB_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->stall_timeout_s > 0 ? h->stall_timeout_s : 30L);
    if (h->connect_timeout_s > 0) curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->connect_timeout_s);
    *hdrs = NULL;
    if (h->token && h->token[0]) {
        /* libcurl drops a custom Authorization header when a redirect leaves the host, so the
         * token goes only to the hub, not to the storage server it redirects to. */
        char auth[4200];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", h->token);
        *hdrs = curl_slist_append(NULL, auth);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
    }
    return c;
}

/* What an HTTP error status means to the person pulling. */
static const char *status_meaning(long s, bool token) {
    if (s == 401 || s == 403)
        return token ? "the token in HF_TOKEN is not allowed to read this"
                     : "the repository needs a token: set HF_TOKEN";
    if (s == 404) return "not found: check the repository, revision and file names";
    if (s == 416) return "the server refused the byte range";
    if (s == 429) return "too many requests: try again later";
    if (s >= 500) return "the server failed";
    return "unexpected response";
}

/* One line for a failed transfer; rc is curl's result. */
static ob_status transfer_error(const transfer *t, CURLcode rc, const char *url, ob_err *err) {
    if (t->write_errno)
        return ob_fail(err, OB_ERR_IO, "writing %s: %s", t->path, strerror(t->write_errno));
    if (t->cancelled) return ob_fail(err, OB_ERR_CANCELLED, "%s: cancelled", url);
    if (t->wrong_range)
        return ob_fail(err, OB_ERR_IO, "%s: asked for the bytes from %llu, the server sent "
                       "them from %lld", url, (unsigned long long)t->have,
                       (long long)t->range_start);
    if (t->over_limit) return ob_fail(err, OB_ERR_LIMIT, "%s: response over %zu bytes", url, t->limit);
    if (rc == CURLE_TOO_MANY_REDIRECTS)
        return ob_fail(err, OB_ERR_IO, "%s: more than %d redirects (a redirect loop?)", url,
                       HUB_MAX_REDIRECTS);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return ob_fail(err, OB_ERR_IO, "%s: the server stopped sending (stalled); run the same "
                       "command again to resume", url);
    if (rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING)
        return ob_fail(err, OB_ERR_IO, "%s: the connection closed before the end (%s); run the "
                       "same command again to resume", url, curl_easy_strerror(rc));
    if (rc != CURLE_OK) return ob_fail(err, OB_ERR_IO, "%s: %s", url, curl_easy_strerror(rc));
    return ob_fail(err, OB_ERR_IO, "%s: HTTP %ld: %s", url, t->status,
                   status_meaning(t->status, t->h->token && t->h->token[0]));
}

ob_status hub_http_get(const hub_http *h, const char *url, size_t limit, char **body,
                       size_t *len, char *next, ob_err *err) {
    transfer t = {.h = h, .limit = limit, .fd = -1};
    struct curl_slist *hdrs = NULL;
    *body = NULL;
    CURL *c = easy_new(h, url, &t, &hdrs);
    if (!c) return ob_fail(err, OB_ERR_NOMEM, "%s: libcurl: out of memory", url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_mem);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    CURLcode rc = curl_easy_perform(c);
    ob_status st = OB_OK;
    if (rc != CURLE_OK || t.status != 200) st = transfer_error(&t, rc, url, err);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    if (st) {
        ob_free(t.body);
        return st;
    }
    if (!t.body && !(t.body = ob_calloc(1, 1))) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    *body = t.body;
    *len = t.len;
    if (next) memcpy(next, t.next, sizeof t.next);
    return OB_OK;
}

/* Refuses early when the disk cannot hold what is left to fetch. */
static ob_status check_space(const char *path, uint64_t need, ob_err *err) {
    struct statvfs vfs;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool known = fd >= 0 && !fstatvfs(fd, &vfs);
    if (fd >= 0) close(fd);
    if (!known) return OB_OK;
    uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    if (need > avail)
        return ob_fail(err, OB_ERR_IO, "%s: %llu more bytes are needed, the disk has %llu free",
                       path, (unsigned long long)need, (unsigned long long)avail);
    return OB_OK;
}

/* Sets up the file, hash and range of a download; the partial's bytes are hashed first. */
static ob_status download_begin(transfer *t, uint64_t expected, ob_err *err) {
    t->fd = open(t->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (t->fd < 0) return ob_fail(err, OB_ERR_IO, "%s: %s", t->path, strerror(errno));
    /* One writer per partial file: a second pull of the same file (another process, or the
     * server and the CLI) would interleave its bytes with ours. The lock goes with the fd. */
    if (flock(t->fd, LOCK_EX | LOCK_NB))
        return ob_fail(err, OB_ERR_IO, "%s: another pull is downloading this file now (%s)",
                       t->label, errno == EWOULDBLOCK ? "locked" : strerror(errno));
    struct stat sb;
    if (fstat(t->fd, &sb)) return ob_fail(err, OB_ERR_IO, "%s: %s", t->path, strerror(errno));
    t->have = (uint64_t)sb.st_size;
    if (expected && t->have > expected) { /* not a prefix of this file: start over */
        if (ftruncate(t->fd, 0)) return ob_fail(err, OB_ERR_IO, "%s: %s", t->path, strerror(errno));
        t->have = 0;
    }
    t->md = EVP_MD_CTX_new();
    if (!t->md || !EVP_DigestInit_ex(t->md, EVP_sha256(), NULL))
        return ob_fail(err, OB_ERR_NOMEM, "SHA-256: out of memory");
    if (expected) {
        ob_status st = check_space(t->path, expected - t->have, err);
        if (st) return st;
    }
    return t->have ? hash_fd(t->fd, t->md, t->path, err) : OB_OK;
}

/* PARTIAL.etag: the ETag of the response a partial file came from, so that resuming it asks
 * for the rest only of that same version (If-Range); a server whose file has changed then
 * sends the whole new one. */
static void etag_path(const char *partial, char *buf, size_t cap) {
    snprintf(buf, cap, "%s.etag", partial);
}

static void etag_load(const char *partial, char out[256]) {
    char path[4400];
    etag_path(partial, path, sizeof path);
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(out, 256, f)) out[0] = 0;
    fclose(f);
    out[strcspn(out, "\r\n")] = 0;
}

static void etag_save(const char *partial, const char *etag) {
    char path[4400];
    etag_path(partial, path, sizeof path);
    FILE *f = etag[0] ? fopen(path, "w") : NULL;
    if (f) {
        fprintf(f, "%s\n", etag);
        fclose(f);
    } else {
        unlink(path);
    }
}

ob_status hub_http_download(const hub_http *h, const char *url, const char *partial,
                            const char *label, const char *digest, uint64_t expected_size,
                            char sha256[65], char etag[256], ob_err *err) {
    transfer t = {.h = h, .label = label, .digest = digest ? digest : "", .fd = -1,
                  .path = partial};
    ob_status st = download_begin(&t, expected_size, err);
    bool complete = !st && expected_size && t.have == expected_size;
    CURL *c = NULL;
    struct curl_slist *hdrs = NULL;
    if (!st && !complete) {
        c = easy_new(h, url, &t, &hdrs);
        if (!c) st = ob_fail(err, OB_ERR_NOMEM, "%s: libcurl: out of memory", url);
    }
    if (!st && !complete) {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_file);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
        /* CURLOPT_RANGE rather than RESUME_FROM: libcurl then leaves a 200 (a server without
         * ranges) to on_body_file, which starts over instead of failing. */
        char range[32];
        snprintf(range, sizeof range, "%llu-", (unsigned long long)t.have);
        char if_range[300], saved[256];
        etag_load(partial, saved);
        if (t.have) curl_easy_setopt(c, CURLOPT_RANGE, range);
        if (t.have && saved[0]) {
            snprintf(if_range, sizeof if_range, "If-Range: %s", saved);
            struct curl_slist *more = curl_slist_append(hdrs, if_range);
            if (more) {
                hdrs = more;
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
            }
        }
        CURLcode rc = curl_easy_perform(c);
        bool ok_status = t.status == 200 || (t.status == 206 && t.have > 0);
        /* Without a listed size, 416 to "the rest from byte N" means the partial file already
         * holds all N bytes; the GGUF check after the download judges it. */
        if (rc == CURLE_OK && t.status == 416 && t.have > 0 && !expected_size) ok_status = true;
        if (rc != CURLE_OK || !ok_status) st = transfer_error(&t, rc, url, err);
        /* What is in the file now came from this response's version of it. */
        if (ok_status && t.have + t.written > 0) etag_save(partial, t.etag);
    }
    uint64_t got = t.have + t.written;
    if (!st && expected_size && got != expected_size)
        st = ob_fail(err, OB_ERR_IO, "%s: received %llu bytes, the hub lists %llu", url,
                     (unsigned long long)got, (unsigned long long)expected_size);
    if (!st && fsync(t.fd)) st = ob_fail(err, OB_ERR_IO, "fsync %s: %s", partial, strerror(errno));
    if (!st) {
        hex_digest(t.md, sha256);
        if (t.etag[0]) snprintf(etag, 256, "%s", t.etag);
        else etag_load(partial, etag); /* a partial that was already whole */
        etag_save(partial, ""); /* the partial is done with */
    }
    if (c) curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    EVP_MD_CTX_free(t.md);
    if (t.fd >= 0) close(t.fd);
    return st;
}
