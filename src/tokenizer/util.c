/*
 * Small building blocks of the tokenizer: the string hash map (token text -> id, merge -> rank),
 * the bigram priority queue both merge algorithms run on, the growable id list, and UTF-8 and
 * GPT-2 byte-alphabet helpers. Kept together because each is a few dozen lines.
 */
#include "core/alloc.h"
#include "tokenizer/tok_impl.h"

#include <string.h>

/* ---- hash map ------------------------------------------------------------------------------ */

/* FNV-1a, fed in pieces so a pair "a b" hashes without being built. */
#define FNV_INIT 2166136261u
static uint32_t fnv(uint32_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* FNV's low bits cluster on similar keys (merges differ in a byte or two); mixing them before
 * masking keeps linear probing short. */
static uint32_t mix(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

ob_status tok_map_init(tok_map *m, size_t expected, const char *base) {
    size_t cap = 16;
    while (cap < expected * 2 + 1) cap <<= 1; /* load factor <= 0.5 keeps probes short */
    m->slots = ob_alloc(cap, sizeof *m->slots);
    m->cap = m->slots ? cap : 0;
    m->n = 0;
    m->base = base;
    for (size_t i = 0; i < m->cap; i++) m->slots[i].val = TOK_MAP_EMPTY;
    return m->slots ? OB_OK : OB_ERR_NOMEM;
}

void tok_map_free(tok_map *m) {
    ob_free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

bool tok_map_put(tok_map *m, const char *key, size_t len, int32_t val) {
    uint32_t h = mix(fnv(FNV_INIT, key, len));
    size_t i = h & (m->cap - 1);
    while (m->slots[i].val != TOK_MAP_EMPTY) {
        tok_map_slot *s = &m->slots[i];
        if (s->hash == h && s->len == len && memcmp(m->base + s->off, key, len) == 0) return false;
        i = (i + 1) & (m->cap - 1);
    }
    m->slots[i] = (tok_map_slot){h, (uint32_t)len, (uint32_t)(key - m->base), val};
    m->n++;
    return true;
}

int32_t tok_map_get(const tok_map *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    uint32_t h = mix(fnv(FNV_INIT, key, len));
    for (size_t i = h & (m->cap - 1); m->slots[i].val != TOK_MAP_EMPTY; i = (i + 1) & (m->cap - 1)) {
        const tok_map_slot *s = &m->slots[i];
        if (s->hash == h && s->len == len && memcmp(m->base + s->off, key, len) == 0) return s->val;
    }
    return -1;
}

int32_t tok_map_get_pair(const tok_map *m, const char *a, size_t alen, char sep, const char *b,
                         size_t blen) {
    if (!m->cap) return -1;
    size_t slen = sep ? 1 : 0, len = alen + slen + blen;
    uint32_t h = mix(fnv(fnv(fnv(FNV_INIT, a, alen), &sep, slen), b, blen));
    for (size_t i = h & (m->cap - 1); m->slots[i].val != TOK_MAP_EMPTY; i = (i + 1) & (m->cap - 1)) {
        const tok_map_slot *s = &m->slots[i];
        if (s->hash != h || s->len != len) continue;
        const char *k = m->base + s->off;
        if (memcmp(k, a, alen) == 0 && (!sep || k[alen] == sep) &&
            memcmp(k + alen + slen, b, blen) == 0)
            return s->val;
    }
    return -1;
}

/* ---- bigram heap ------------------------------------------------------------------------- */

static bool before(const tok_bigram *a, const tok_bigram *b) {
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

bool tok_heap_push(tok_heap *h, tok_bigram b) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        tok_bigram *nv = ob_realloc(h->v, cap, sizeof *nv);
        if (!nv) return false;
        h->v = nv;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&b, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return true;
}

tok_bigram tok_heap_pop(tok_heap *h) {
    tok_bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&h->v[c + 1], &h->v[c])) c++;
        if (!before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n) h->v[i] = last;
    return top;
}

void tok_heap_free(tok_heap *h) {
    ob_free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

/* ---- id list ----------------------------------------------------------------------------- */

void tok_ids_push(tok_ids *ids, int32_t id) {
    if (ids->oom) return;
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *nv = ob_realloc(ids->v, cap, sizeof *nv);
        if (!nv) {
            ids->oom = true;
            return;
        }
        ids->v = nv;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

size_t tok_utf8_len(unsigned char c) {
    static const unsigned char lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

uint32_t tok_utf8_next(const char *s, size_t len, size_t *i) {
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = len - *i;
    size_t n = (p[0] & 0x80) == 0 ? 1 : (p[0] & 0x40) == 0 ? 0 : (p[0] & 0x20) == 0 ? 2
             : (p[0] & 0x10) == 0 ? 3 : (p[0] & 0x08) == 0 ? 4 : 0;
    if (n == 0 || n > left) goto bad;
    for (size_t k = 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80) goto bad;
    *i += n;
    switch (n) {
    case 1: return p[0];
    case 2: return ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
    case 3: return ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
    default:
        return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
               ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
    }
bad:
    *i += 1;
    return 0xFFFD;
}

size_t tok_utf8_put(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp > 0x10FFFF) cp = 0xFFFD;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* GPT-2's byte alphabet: printable Latin-1 bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
 * themselves; the other 68 bytes are given U+0100, U+0101, ... in byte order. */
static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    /* the 68 others, in order: 0x00-0x20 (33), 0x7F-0xA0 (34), 0xAD (1) */
    if (b <= 0x20) return 0x100u + b;
    if (b <= 0xA0) return 0x100u + 33 + (b - 0x7Fu);
    return 0x100u + 67; /* 0xAD */
}

int tok_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return byte_is_printable(cp) ? (int)cp : -1;
    uint32_t k = cp - 0x100;
    if (k < 33) return (int)k;
    if (k < 67) return (int)(0x7F + k - 33);
    return k == 67 ? 0xAD : -1;
}
