/*
 * The matcher's lazy DFA: stack sets interned to ids and (set, code point) transitions
 * memoised. A token-mask walk visits each viable prefix of the vocabulary once per step; with
 * the memo, the step for a prefix already seen in any earlier walk of this sequence is one
 * table lookup instead of a closure over the grammar. Sets are named by hash-consed node ids,
 * so equal sets intern to the same id for the life of the matcher.
 */
#include "grammar/grammar.h"

#include "core/alloc.h"

#include <string.h>

static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint64_t set_hash(const uint32_t *set, uint32_t n) {
    uint64_t h = n;
    for (uint32_t i = 0; i < n; i++) h = mix(h ^ (set[i] + 0x9E3779B97F4A7C15ull));
    return h;
}

void gram_dfa_free(gram_dfa *d) {
    ob_free(d->arena);
    ob_free(d->set_off);
    ob_free(d->set_n);
    ob_free(d->set_slots);
    ob_free(d->tr_key);
    ob_free(d->tr_val);
    memset(d, 0, sizeof *d);
}

static bool grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *g = ob_realloc(*p, c, size);
    if (!g) return false;
    *p = g;
    *cap = c;
    return true;
}

static bool set_rehash(gram_dfa *d, size_t n_slots) {
    uint32_t *s = ob_calloc(n_slots, sizeof *s);
    if (!s) return false;
    for (size_t id = 0; id < d->n_sets; id++) {
        size_t k = set_hash(d->arena + d->set_off[id], d->set_n[id]) & (n_slots - 1);
        while (s[k]) k = (k + 1) & (n_slots - 1);
        s[k] = (uint32_t)id + 1;
    }
    ob_free(d->set_slots);
    d->set_slots = s;
    d->n_set_slots = n_slots;
    return true;
}

uint32_t gram_dfa_intern(gram_match *m, const uint32_t *set, uint32_t n) {
    gram_dfa *d = &m->dfa;
    if (!d->n_set_slots && !set_rehash(d, 256)) goto oom;
    size_t k = set_hash(set, n) & (d->n_set_slots - 1);
    for (uint32_t v; (v = d->set_slots[k]); k = (k + 1) & (d->n_set_slots - 1)) {
        uint32_t id = v - 1;
        if (d->set_n[id] == n && !memcmp(d->arena + d->set_off[id], set, n * sizeof *set))
            return id;
    }
    size_t cap_sets = d->cap_sets;
    if (d->n_sets >= GRAM_MAX_DFA || d->n_arena + n > 4u * GRAM_MAX_DFA ||
        !grow((void **)&d->arena, &d->cap_arena, d->n_arena + n, sizeof *d->arena) ||
        !grow((void **)&d->set_off, &cap_sets, d->n_sets + 1, sizeof *d->set_off) ||
        !grow((void **)&d->set_n, &d->cap_sets, d->n_sets + 1, sizeof *d->set_n))
        goto oom;
    uint32_t id = (uint32_t)d->n_sets++;
    memcpy(d->arena + d->n_arena, set, n * sizeof *set);
    d->set_off[id] = (uint32_t)d->n_arena;
    d->set_n[id] = n;
    d->n_arena += n;
    d->set_slots[k] = id + 1;
    if (d->n_sets * 2 > d->n_set_slots && !set_rehash(d, d->n_set_slots * 2)) goto oom;
    return id;
oom:
    m->oom = true;
    return GRAM_DEAD;
}

static bool tr_rehash(gram_dfa *d, size_t n_slots) {
    uint64_t *key = ob_alloc(n_slots, sizeof *key);
    uint32_t *val = ob_alloc(n_slots, sizeof *val);
    if (!key || !val) {
        ob_free(key);
        ob_free(val);
        return false;
    }
    memset(key, 0xFF, n_slots * sizeof *key);
    for (size_t i = 0; i < d->n_tr_slots; i++) {
        if (d->tr_key[i] == UINT64_MAX) continue;
        size_t k = mix(d->tr_key[i]) & (n_slots - 1);
        while (key[k] != UINT64_MAX) k = (k + 1) & (n_slots - 1);
        key[k] = d->tr_key[i];
        val[k] = d->tr_val[i];
    }
    ob_free(d->tr_key);
    ob_free(d->tr_val);
    d->tr_key = key;
    d->tr_val = val;
    d->n_tr_slots = n_slots;
    return true;
}

/* The set after code point cp from set `id`, computed once. */
static uint32_t transition(gram_match *m, uint32_t id, uint32_t cp) {
    gram_dfa *d = &m->dfa;
    if (!d->n_tr_slots && !tr_rehash(d, 1024)) {
        m->oom = true;
        return GRAM_DEAD;
    }
    uint64_t key = (uint64_t)id << 32 | cp;
    size_t k = mix(key) & (d->n_tr_slots - 1);
    for (; d->tr_key[k] != UINT64_MAX; k = (k + 1) & (d->n_tr_slots - 1))
        if (d->tr_key[k] == key) return d->tr_val[k];
    gram_state from = {d->arena + d->set_off[id], d->set_n[id], 0, 0, 0};
    gram_match_advance(m, &from, cp); /* reads the arena before intern may move it */
    uint32_t next = m->oom || m->n_tmp == 0 ? GRAM_DEAD : gram_dfa_intern(m, m->tmp, (uint32_t)m->n_tmp);
    if (m->oom || d->n_tr >= GRAM_MAX_DFA) {
        m->oom = true;
        return GRAM_DEAD;
    }
    /* the slot found above is still free: advance and intern touch only the set tables */
    d->tr_key[k] = key;
    d->tr_val[k] = next;
    if (++d->n_tr * 2 > d->n_tr_slots && !tr_rehash(d, d->n_tr_slots * 2)) m->oom = true;
    return next;
}

bool gram_dfa_step(gram_match *m, const gram_dstate *from, uint8_t b, gram_dstate *to) {
    if (m->oom) return false;
    *to = *from;
    if (from->rem == 0) {
        if (b < 0x80) {
            uint32_t next = transition(m, from->set, b);
            *to = (gram_dstate){next, 0, 0, 0};
            return next != GRAM_DEAD;
        }
        if (b >= 0xC2 && b <= 0xDF) *to = (gram_dstate){from->set, b & 0x1Fu, 0x80, 1};
        else if ((b & 0xF0) == 0xE0) *to = (gram_dstate){from->set, b & 0x0Fu, 0x800, 2};
        else if (b >= 0xF0 && b <= 0xF4) *to = (gram_dstate){from->set, b & 0x07u, 0x10000, 3};
        else return false;
    } else {
        if ((b & 0xC0) != 0x80) return false;
        to->cp = (from->cp << 6) | (b & 0x3Fu);
        to->rem--;
    }
    const gram_dfa *d = &m->dfa;
    if (to->rem) {
        uint32_t shift = 6u * to->rem;
        uint32_t lo = to->cp << shift, hi = lo | ((1u << shift) - 1);
        if (lo < to->min) lo = to->min;
        gram_state st = {d->arena + d->set_off[to->set], d->set_n[to->set], 0, 0, 0};
        return lo <= hi && gram_match_may_match(m, &st, lo, hi > 0x10FFFF ? 0x10FFFF : hi);
    }
    uint32_t cp = to->cp;
    if (cp < to->min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    uint32_t next = transition(m, from->set, cp);
    *to = (gram_dstate){next, 0, 0, 0};
    return next != GRAM_DEAD;
}
