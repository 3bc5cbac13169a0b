/*
 * Template dicts: insertion-ordered entries (keys[], vals[]) plus, once a dict passes
 * INDEX_MIN entries, an open-addressing hash index over them, so `d[k]`, `k in d`, `d.update`
 * and `ns.x = ...` take constant time on average. Templates build dicts in loops
 * (`{% set _ = d.update({k: v}) %}` for every item), and a linear scan per insert made that
 * quadratic: 40,000 inserts took 6 s.
 *
 * Keys hash the way Python's do for the values that compare equal: 1, 1.0 and True hash alike,
 * a tuple by its items. Lists, dicts and namespaces hash by type only, so a key that is later
 * mutated in place (Python refuses such keys) is still found; many of them make the index
 * degrade to the old scan, never to a wrong answer.
 */
#include "chat/value.h"

#include <string.h>

#define INDEX_MIN  8 /* below this many entries a scan is as fast as hashing */
#define HASH_DEPTH 4 /* a tuple key hashes its items this far down; deeper items hash alike */

static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* A hash that agrees with chat_val_eq: equal values hash equal. */
static uint64_t hash_val(chat_val v, int depth) {
    switch ((chat_vtype)v.type) {
    case CHAT_BOOL: return mix((uint64_t)v.u.b);
    case CHAT_INT: return mix((uint64_t)v.u.i);
    case CHAT_FLOAT: {
        double f = v.u.f;
        /* An integral float equals the int of the same value, so it hashes as that int. */
        if (f >= -0x1p63 && f < 0x1p63 && f == (double)(int64_t)f) return mix((uint64_t)(int64_t)f);
        uint64_t bits;
        memcpy(&bits, &f, sizeof bits);
        return mix(bits ^ 0x9e3779b97f4a7c15ULL);
    }
    case CHAT_STR: {
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
        for (size_t i = 0; i < v.u.s.n; i++)
            h = (h ^ (unsigned char)v.u.s.p[i]) * 0x100000001b3ULL;
        return mix(h);
    }
    case CHAT_LIST: {
        if (!(v.flags & CHAT_F_TUPLE) || depth >= HASH_DEPTH) return 0x4c495354; /* "LIST" */
        uint64_t h = mix(v.u.l->n + 0x7475706cULL);
        for (size_t i = 0; i < v.u.l->n; i++)
            h = mix(h ^ hash_val(v.u.l->items[i], depth + 1));
        return h;
    }
    case CHAT_FUNC: return mix((uint64_t)(uintptr_t)v.u.fn);
    case CHAT_LOOP: return mix((uint64_t)(uintptr_t)v.u.loop);
    case CHAT_UNDEF:
    case CHAT_NONE:
    case CHAT_DICT: break;
    }
    return 0x1000 + v.type;
}

/* Puts entry i into the index (which has a free slot: it is at most half full). */
static void index_put(chat_dict *d, size_t i) {
    size_t mask = d->index_cap - 1;
    for (size_t s = hash_val(d->keys[i], 0) & mask;; s = (s + 1) & mask)
        if (!d->index[s]) {
            d->index[s] = (uint32_t)(i + 1);
            return;
        }
}

/* Rebuilds the index at `cap` slots (new storage when it grows); -1 on allocation failure. */
static int index_build(chat_arena *a, chat_dict *d, size_t cap) {
    if (cap != d->index_cap || !d->index) {
        if (cap > SIZE_MAX / sizeof(uint32_t) || d->n >= UINT32_MAX) return -1;
        uint32_t *idx = chat_arena_alloc(a, cap * sizeof(uint32_t));
        if (!idx) return -1;
        d->index = idx;
        d->index_cap = cap;
    }
    memset(d->index, 0, d->index_cap * sizeof(uint32_t));
    for (size_t i = 0; i < d->n; i++)
        index_put(d, i);
    return 0;
}

/* The entry number of key, or -1. */
static int64_t find_entry(const chat_dict *d, chat_val key) {
    if (!d->index) {
        for (size_t i = 0; i < d->n; i++)
            if (chat_val_eq(d->keys[i], key) == 1) return (int64_t)i;
        return -1;
    }
    size_t mask = d->index_cap - 1;
    for (size_t s = hash_val(key, 0) & mask;; s = (s + 1) & mask) {
        uint32_t e = d->index[s];
        if (!e) return -1;
        if (chat_val_eq(d->keys[e - 1], key) == 1) return (int64_t)e - 1;
    }
}

chat_val *chat_dict_find(const chat_dict *d, chat_val key) {
    int64_t i = find_entry(d, key);
    return i < 0 ? NULL : &d->vals[i];
}

chat_val *chat_dict_find_cstr(const chat_dict *d, const char *key) {
    return chat_dict_find(d, chat_val_str_view(key, strlen(key)));
}

/* Grows an arena array of chat_val from cap to ncap entries, copying n. */
static chat_val *grow(chat_arena *a, const chat_val *old, size_t n, size_t ncap) {
    if (ncap > SIZE_MAX / sizeof(chat_val)) return NULL;
    chat_val *p = chat_arena_alloc(a, ncap * sizeof(chat_val));
    if (p && n) memcpy(p, old, n * sizeof(chat_val));
    return p;
}

int chat_dict_set(chat_arena *a, chat_dict *d, chat_val key, chat_val v) {
    chat_val *slot = chat_dict_find(d, key);
    if (slot) {
        *slot = v;
        return 0;
    }
    if (d->n == d->cap) {
        size_t ncap = d->cap * 2 + 4;
        chat_val *k = grow(a, d->keys, d->n, ncap), *vv = k ? grow(a, d->vals, d->n, ncap) : NULL;
        if (!vv) return -1;
        d->keys = k;
        d->vals = vv;
        d->cap = ncap;
    }
    /* The index stays at most half full, so probes stay short. */
    size_t want = d->index_cap ? d->index_cap : 16;
    while (want < 2 * (d->n + 1))
        want *= 2;
    if ((d->index || d->n + 1 >= INDEX_MIN) && want != d->index_cap) {
        if (index_build(a, d, want)) return -1;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = v;
    d->n++;
    if (d->index) index_put(d, d->n - 1);
    return 0;
}

int chat_dict_set_cstr(chat_arena *a, chat_dict *d, const char *key, chat_val v) {
    chat_val k = chat_val_cstr(a, key);
    if (chat_val_failed(k)) return -1;
    return chat_dict_set(a, d, k, v);
}

int chat_dict_del(chat_dict *d, chat_val key) {
    int64_t i = find_entry(d, key);
    if (i < 0) return 0;
    size_t rest = d->n - (size_t)i - 1;
    memmove(&d->keys[i], &d->keys[i + 1], rest * sizeof(chat_val));
    memmove(&d->vals[i], &d->vals[i + 1], rest * sizeof(chat_val));
    d->n--;
    /* Entry numbers after i moved down by one: renumber in place (the same O(n) as the move). */
    if (d->index) index_build(NULL, d, d->index_cap);
    return 1;
}

void chat_dict_clear(chat_dict *d) {
    d->n = 0;
    if (d->index) memset(d->index, 0, d->index_cap * sizeof(uint32_t));
}
