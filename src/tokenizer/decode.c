/*
 * Streaming detokenizer. Tokens do not end on character boundaries (byte-fallback and
 * byte-level tokens carry pieces of a UTF-8 sequence), so the decoder holds the tail of an
 * incomplete character until the token that completes it arrives; bytes that can never form a
 * character are written as U+FFFD, so what comes out is always valid UTF-8. Output that does
 * not fit the caller's buffer is queued, never dropped.
 *
 * SentencePiece vocabularies with a dummy prefix put a space before the first word; the decoder
 * drops it from the first text it produces (as the reference's detokenizer does) unless told
 * the stream continues earlier text.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "tokenizer/tok_impl.h"

#include <string.h>

struct tok_decoder {
    const tok_vocab *v;
    bool render_special;
    bool strip_leading; /* drop one leading space from the first non-empty text */
    unsigned char pend[4]; /* bytes of an unfinished character */
    size_t npend;
    char *q; /* (qcap) complete output waiting for room: q[qoff, qn) */
    size_t qn, qoff, qcap;
    bool oom;
};

tok_decoder *tok_decoder_new(const tok_vocab *v, bool render_special) {
    if (!v) return NULL;
    tok_decoder *d = ob_calloc(1, sizeof *d);
    if (!d) return NULL;
    d->v = v;
    d->render_special = render_special;
    d->strip_leading = v->add_space_prefix;
    return d;
}

void tok_decoder_keep_leading_space(tok_decoder *d) {
    if (d) d->strip_leading = false;
}

void tok_decoder_free(tok_decoder *d) {
    if (!d) return;
    ob_free(d->q);
    ob_free(d);
}

static void q_put(tok_decoder *d, const void *p, size_t n) {
    if (d->oom || n == 0) return;
    if (d->qoff > 0) { /* move the undelivered rest to the front */
        memmove(d->q, d->q + d->qoff, d->qn - d->qoff);
        d->qn -= d->qoff;
        d->qoff = 0;
    }
    if (d->qn + n > d->qcap) {
        size_t cap = (d->qn + n) * 2 + 64;
        char *nq = ob_realloc(d->q, cap, 1);
        if (!nq) {
            d->oom = true; /* text is lost, the stream keeps going */
            return;
        }
        d->q = nq;
        d->qcap = cap;
    }
    memcpy(d->q + d->qn, p, n);
    d->qn += n;
}

/* Length of the UTF-8 character starting with lead byte c (0 = not a lead byte), and whether
 * c2 may follow it (the ranges that rule out overlong forms, surrogates and > U+10FFFF). */
static size_t lead_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
}

static bool second_ok(unsigned char c, unsigned char c2) {
    if (c == 0xE0) return c2 >= 0xA0 && c2 <= 0xBF;
    if (c == 0xED) return c2 >= 0x80 && c2 <= 0x9F;
    if (c == 0xF0) return c2 >= 0x90 && c2 <= 0xBF;
    if (c == 0xF4) return c2 >= 0x80 && c2 <= 0x8F;
    return (c2 & 0xC0) == 0x80;
}

/* Feeds one byte through the character assembler. */
static void feed(tok_decoder *d, unsigned char b) {
    if (d->npend > 0) {
        size_t need = lead_len(d->pend[0]);
        bool ok = d->npend == 1 ? second_ok(d->pend[0], b) : (b & 0xC0) == 0x80;
        if (ok) {
            d->pend[d->npend++] = b;
            if (d->npend == need) {
                q_put(d, d->pend, need);
                d->npend = 0;
            }
            return;
        }
        q_put(d, "\xEF\xBF\xBD", 3); /* the unfinished character can never complete */
        d->npend = 0;
    }
    size_t need = lead_len(b);
    if (need == 1) q_put(d, &b, 1);
    else if (need == 0) q_put(d, "\xEF\xBF\xBD", 3);
    else d->pend[d->npend++] = b;
}

static size_t drain(tok_decoder *d, char *out, size_t cap) {
    size_t n = d->qn - d->qoff;
    if (n > cap) n = cap;
    if (n && out) memcpy(out, d->q + d->qoff, n);
    d->qoff += n;
    return n;
}

size_t tok_decoder_push(tok_decoder *d, int32_t id, char *out, size_t cap) {
    if (!d) return 0;
    ob_str s = tok_token_text(d->v, id, d->render_special);
    size_t i = 0;
    if (s.len > 0 && d->strip_leading) {
        if (s.ptr[0] == ' ') i = 1;
        d->strip_leading = false;
    }
    for (; i < s.len; i++) feed(d, (unsigned char)s.ptr[i]);
    return drain(d, out, cap);
}

size_t tok_decoder_flush(tok_decoder *d, char *out, size_t cap) {
    if (!d) return 0;
    if (d->npend) {
        q_put(d, "\xEF\xBF\xBD", 3);
        d->npend = 0;
    }
    return drain(d, out, cap);
}

ob_status tok_decode_all(const tok_vocab *v, const int32_t *ids, size_t n, bool render_special,
                         char **text, size_t *len, ob_err *err) {
    if (!v || !text || !len || (!ids && n))
        return ob_fail(err, OB_ERR_ARG, "tok_decode_all: NULL argument");
    *text = NULL;
    *len = 0;
    tok_decoder *d = tok_decoder_new(v, render_special);
    if (!d) return ob_fail(err, OB_ERR_NOMEM, "detokenize: no memory");
    for (size_t i = 0; i < n; i++) tok_decoder_push(d, ids[i], NULL, 0);
    tok_decoder_flush(d, NULL, 0);
    size_t m = d->qn - d->qoff;
    char *s = d->oom ? NULL : ob_alloc(m + 1, 1);
    if (!s) {
        tok_decoder_free(d);
        return ob_fail(err, OB_ERR_NOMEM, "detokenize: no memory for %zu ids", n);
    }
    drain(d, s, m);
    s[m] = 0;
    tok_decoder_free(d);
    *text = s;
    *len = m;
    return OB_OK;
}
