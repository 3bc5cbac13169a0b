/*
 * The ids of long raw fragments, remembered (frag_cache.h). A fragment's ids depend only on its
 * bytes and whether a SentencePiece dummy prefix goes before it, so a stored result is the
 * result. Entries are found by a hash and confirmed by comparing the bytes; the least recently
 * used go first once the stored bytes (text and ids) pass the budget. One mutex: lookups and
 * stores are short next to the tokenizing they save, and the encoding itself runs unlocked.
 */
#include "tokenizer/frag_cache.h"

#include "core/alloc.h"

#include <pthread.h>
#include <string.h>

#define FRAG_SLOTS 64 /* entries at most: a conversation has few fragments this long */

typedef struct frag_entry {
    uint64_t hash;
    char *text; /* NULL: empty slot */
    size_t len;
    bool prefix;
    int32_t *ids;
    size_t n_ids;
    uint64_t used; /* clock of the last hit or store */
} frag_entry;

struct tok_frag_cache {
    pthread_mutex_t mu;
    frag_entry slot[FRAG_SLOTS];
    size_t bytes, max_bytes;
    uint64_t clock, hits, misses;
};

static uint64_t hash_bytes(const char *s, size_t n, bool prefix) {
    uint64_t h = 0xcbf29ce484222325ull ^ (prefix ? 0x9e3779b97f4a7c15ull : 0);
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ n;
}

static size_t entry_bytes(const frag_entry *e) { return e->len + e->n_ids * sizeof *e->ids; }

static void entry_drop(tok_frag_cache *c, frag_entry *e) {
    if (!e->text) return;
    c->bytes -= entry_bytes(e);
    ob_free(e->text);
    ob_free(e->ids);
    *e = (frag_entry){0};
}

tok_frag_cache *tok_frag_cache_new(size_t max_bytes) {
    tok_frag_cache *c = ob_calloc(1, sizeof *c);
    if (!c) return NULL;
    if (pthread_mutex_init(&c->mu, NULL)) {
        ob_free(c);
        return NULL;
    }
    c->max_bytes = max_bytes;
    return c;
}

void tok_frag_cache_free(tok_frag_cache *c) {
    if (!c) return;
    for (int i = 0; i < FRAG_SLOTS; i++) entry_drop(c, &c->slot[i]);
    pthread_mutex_destroy(&c->mu);
    ob_free(c);
}

static frag_entry *find(tok_frag_cache *c, uint64_t h, const char *text, size_t len,
                        bool prefix) {
    for (int i = 0; i < FRAG_SLOTS; i++) {
        frag_entry *e = &c->slot[i];
        if (e->text && e->hash == h && e->len == len && e->prefix == prefix &&
            !memcmp(e->text, text, len))
            return e;
    }
    return NULL;
}

bool tok_frag_cache_get(tok_frag_cache *c, const char *text, size_t len, bool prefix,
                        tok_ids *out) {
    if (!c) return false;
    const uint64_t h = hash_bytes(text, len, prefix);
    pthread_mutex_lock(&c->mu);
    frag_entry *e = find(c, h, text, len, prefix);
    if (e) {
        e->used = ++c->clock;
        for (size_t i = 0; i < e->n_ids; i++) tok_ids_push(out, e->ids[i]);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return e != NULL;
}

void tok_frag_cache_put(tok_frag_cache *c, const char *text, size_t len, bool prefix,
                        const int32_t *ids, size_t n_ids) {
    if (!c || len + n_ids * sizeof *ids > c->max_bytes / 2) return; /* would crowd out the rest */
    char *t = ob_alloc(len ? len : 1, 1);
    int32_t *v = ob_alloc(n_ids ? n_ids : 1, sizeof *v);
    if (!t || !v) {
        ob_free(t);
        ob_free(v);
        return;
    }
    memcpy(t, text, len);
    memcpy(v, ids, n_ids * sizeof *v);
    const uint64_t h = hash_bytes(text, len, prefix);
    pthread_mutex_lock(&c->mu);
    if (find(c, h, text, len, prefix)) { /* stored meanwhile by another thread */
        pthread_mutex_unlock(&c->mu);
        ob_free(t);
        ob_free(v);
        return;
    }
    frag_entry e = {h, t, len, prefix, v, n_ids, ++c->clock};
    /* room: an empty slot, else the least recently used, until the budget holds */
    for (;;) {
        frag_entry *victim = NULL, *empty = NULL;
        for (int i = 0; i < FRAG_SLOTS; i++) {
            frag_entry *s = &c->slot[i];
            if (!s->text) empty = empty ? empty : s;
            else if (!victim || s->used < victim->used) victim = s;
        }
        if (empty && c->bytes + entry_bytes(&e) <= c->max_bytes) {
            *empty = e;
            c->bytes += entry_bytes(&e);
            break;
        }
        entry_drop(c, victim); /* the budget is twice this entry: a victim exists */
    }
    pthread_mutex_unlock(&c->mu);
}

void tok_frag_cache_stats(tok_frag_cache *c, uint64_t *hits, uint64_t *misses) {
    pthread_mutex_lock(&c->mu);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->mu);
}
