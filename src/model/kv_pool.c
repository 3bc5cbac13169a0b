/*
 * The KV pool's bookkeeping (kv_pool.h): reference counts, per-sequence block tables, a free
 * list, an LRU list of cached blocks and a hash table of full blocks for the prefix cache.
 * Every operation is O(blocks it touches); nothing here reads or writes K or V.
 */
#include "model/kv_pool.h"

#include "core/alloc.h"
#include "core/err.h"

#include <string.h>

#define HASH_SEED 0x9e3779b97f4a7c15ull

#define TAIL_SALT 0x7a11b10c5eed7a11ull

/* HASHED: a full block with its chain hash; LISTED: in the prefix table; TAIL: the partial last
 * block of a freed sequence, listed under its previous block's hash (tail_key) */
enum { BLOCK_HASHED = 1, BLOCK_LISTED = 2, BLOCK_TAIL = 4 };

typedef struct kv_seq {
    int32_t *blocks; /* (max_blocks) block ids in position order */
    int64_t n;       /* positions committed */
    int64_t n_res;   /* positions reserved by the open transaction (== n when none) */
    int32_t cow_old; /* block the open transaction replaced by a copy, or -1 */
} kv_seq;

struct kv_pool {
    int64_t n_blocks, max_blocks;
    int32_t n_seq;
    bool hashing, open;
    int32_t *ref;      /* (n_blocks) tables holding the block */
    uint8_t *state;    /* (n_blocks) BLOCK_* flags */
    uint64_t *hash;    /* (n_blocks) chained hash of a full block (valid when BLOCK_HASHED) */
    uint64_t *prev;    /* (n_blocks) hash of the block before it, HASH_SEED for a first block */
    uint8_t *tail_len; /* (n_blocks) positions a tail holds */
    int32_t *tokens;   /* (n_blocks, KV_BLOCK) the tokens of each position */
    int32_t *free_ids; /* (n_blocks) stack of free blocks; the top is n_free - 1 */
    int64_t n_free;
    int32_t *lru_prev, *lru_next; /* (n_blocks) the cached blocks, head = least recent */
    int32_t lru_head, lru_tail;
    int64_t n_cached;
    int32_t *bucket;   /* (n_bucket) first listed block of each hash bucket, or -1 */
    int32_t *chain;    /* (n_blocks) next listed block in the same bucket, or -1 */
    int64_t n_bucket;  /* a power of two >= n_blocks */
    kv_seq *seqs;      /* (n_seq) */
    kv_copy *copies;   /* (n_seq) copy-on-write copies of the open transaction */
    int64_t n_copies;
    int64_t hit_blocks, hit_tokens;
};

/* ---- creation -------------------------------------------------------------------------- */

void kv_pool_free(kv_pool *p) {
    if (!p) return;
    if (p->seqs)
        for (int32_t s = 0; s < p->n_seq; s++) ob_free(p->seqs[s].blocks);
    void *bufs[] = {p->ref, p->state, p->hash, p->prev, p->tail_len, p->tokens, p->free_ids,
                    p->lru_prev, p->lru_next, p->bucket, p->chain, p->seqs, p->copies};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ob_free(bufs[i]);
    ob_free(p);
}

static bool pool_alloc_arrays(kv_pool *p) {
    const size_t n = (size_t)p->n_blocks;
    p->n_bucket = 1;
    while (p->n_bucket < p->n_blocks) p->n_bucket *= 2;
    p->ref = ob_calloc(n, sizeof *p->ref);
    p->state = ob_calloc(n, sizeof *p->state);
    p->hash = ob_calloc(n, sizeof *p->hash);
    p->prev = ob_calloc(n, sizeof *p->prev);
    p->tail_len = ob_calloc(n, sizeof *p->tail_len);
    p->tokens = ob_calloc(n * KV_BLOCK, sizeof *p->tokens);
    p->free_ids = ob_alloc(n, sizeof *p->free_ids);
    p->lru_prev = ob_alloc(n, sizeof *p->lru_prev);
    p->lru_next = ob_alloc(n, sizeof *p->lru_next);
    p->bucket = ob_alloc((size_t)p->n_bucket, sizeof *p->bucket);
    p->chain = ob_alloc(n, sizeof *p->chain);
    p->seqs = ob_calloc((size_t)p->n_seq, sizeof *p->seqs);
    p->copies = ob_calloc((size_t)p->n_seq, sizeof *p->copies);
    if (!p->ref || !p->state || !p->hash || !p->prev || !p->tail_len || !p->tokens ||
        !p->free_ids ||
        !p->lru_prev || !p->lru_next || !p->bucket || !p->chain || !p->seqs || !p->copies)
        return false;
    for (int32_t s = 0; s < p->n_seq; s++) {
        p->seqs[s].blocks = ob_alloc((size_t)p->max_blocks, sizeof(int32_t));
        if (!p->seqs[s].blocks) return false;
        p->seqs[s].cow_old = -1;
    }
    return true;
}

ob_status kv_pool_new(int64_t n_blocks, int32_t n_seq, int64_t max_blocks, bool hashing,
                      kv_pool **out, ob_err *err) {
    *out = NULL;
    if (n_blocks < 1 || n_blocks > INT32_MAX / KV_BLOCK || n_seq < 1 || max_blocks < 1)
        return ob_fail(err, OB_ERR_ARG, "KV pool: %lld blocks, %d sequences, %lld blocks per "
                       "sequence: expected 1..%d, >= 1, >= 1", (long long)n_blocks, n_seq,
                       (long long)max_blocks, INT32_MAX / KV_BLOCK);
    kv_pool *p = ob_calloc(1, sizeof *p);
    if (!p) return ob_fail(err, OB_ERR_NOMEM, "KV pool: out of memory");
    p->n_blocks = n_blocks;
    p->max_blocks = max_blocks;
    p->n_seq = n_seq;
    p->hashing = hashing;
    if (!pool_alloc_arrays(p)) {
        kv_pool_free(p);
        return ob_fail(err, OB_ERR_NOMEM, "KV pool: out of memory for %lld blocks",
                       (long long)n_blocks);
    }
    /* the stack hands out 0, 1, 2, ... first, so one sequence's blocks are in order */
    for (int64_t i = 0; i < n_blocks; i++) p->free_ids[i] = (int32_t)(n_blocks - 1 - i);
    p->n_free = n_blocks;
    for (int64_t i = 0; i < p->n_bucket; i++) p->bucket[i] = -1;
    p->lru_head = p->lru_tail = -1;
    *out = p;
    return OB_OK;
}

int64_t kv_pool_n_blocks(const kv_pool *p) { return p->n_blocks; }
int64_t kv_pool_seq_len(const kv_pool *p, int32_t seq) { return p->seqs[seq].n; }
const int32_t *kv_pool_seq_table(const kv_pool *p, int32_t seq) { return p->seqs[seq].blocks; }

static int64_t blocks_for(int64_t n) { return (n + KV_BLOCK - 1) / KV_BLOCK; }

/* ---- the hash table and the LRU list --------------------------------------------------- */

static uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t block_hash(uint64_t prev, const int32_t *tokens) {
    uint64_t h = mix64(prev);
    for (int i = 0; i < KV_BLOCK; i++) h = mix64(h ^ (uint32_t)tokens[i]);
    return h;
}

static void table_insert(kv_pool *p, int32_t b) {
    const int64_t i = (int64_t)(p->hash[b] & (uint64_t)(p->n_bucket - 1));
    p->chain[b] = p->bucket[i];
    p->bucket[i] = b;
    p->state[b] |= BLOCK_LISTED;
}

static void table_remove(kv_pool *p, int32_t b) {
    int32_t *link = &p->bucket[p->hash[b] & (uint64_t)(p->n_bucket - 1)];
    while (*link != b) link = &p->chain[*link];
    *link = p->chain[b];
    p->state[b] &= (uint8_t)~BLOCK_LISTED;
}

/* The listed full block with this hash, previous hash and tokens, or -1. */
static int32_t table_find(const kv_pool *p, uint64_t h, uint64_t prev, const int32_t *tokens) {
    for (int32_t b = p->bucket[h & (uint64_t)(p->n_bucket - 1)]; b >= 0; b = p->chain[b])
        if (p->hash[b] == h && p->prev[b] == prev && !(p->state[b] & BLOCK_TAIL) &&
            !memcmp(p->tokens + (size_t)b * KV_BLOCK, tokens, KV_BLOCK * sizeof *tokens))
            return b;
    return -1;
}

/* Tails are listed under a key of the hash before them: a prompt finds them by where it is,
 * then compares tokens for as many as both have. */
static uint64_t tail_key(uint64_t prev) { return mix64(prev ^ TAIL_SALT); }

/* The listed tail after the prefix whose chain hash is prev sharing the most leading tokens
 * with tokens (n of them, n < KV_BLOCK), or -1; *m gets how many. */
static int32_t tail_find(const kv_pool *p, uint64_t prev, const int32_t *tokens, int64_t n,
                         int64_t *m) {
    const uint64_t h = tail_key(prev);
    int32_t best = -1;
    *m = 0;
    for (int32_t b = p->bucket[h & (uint64_t)(p->n_bucket - 1)]; b >= 0; b = p->chain[b]) {
        if (p->hash[b] != h || p->prev[b] != prev || !(p->state[b] & BLOCK_TAIL)) continue;
        const int32_t *t = p->tokens + (size_t)b * KV_BLOCK;
        int64_t k = 0;
        while (k < n && k < p->tail_len[b] && t[k] == tokens[k])
            k++;
        if (k > *m) best = b, *m = k;
    }
    return best;
}

static void lru_unlink(kv_pool *p, int32_t b) {
    if (p->lru_prev[b] >= 0) p->lru_next[p->lru_prev[b]] = p->lru_next[b];
    else p->lru_head = p->lru_next[b];
    if (p->lru_next[b] >= 0) p->lru_prev[p->lru_next[b]] = p->lru_prev[b];
    else p->lru_tail = p->lru_prev[b];
    p->n_cached--;
}

static void lru_push(kv_pool *p, int32_t b) {
    p->lru_prev[b] = p->lru_tail;
    p->lru_next[b] = -1;
    if (p->lru_tail >= 0) p->lru_next[p->lru_tail] = b;
    else p->lru_head = b;
    p->lru_tail = b;
    p->n_cached++;
}

/* A block about to be written no longer matches its hash. */
static void block_unhash(kv_pool *p, int32_t b) {
    if (p->state[b] & BLOCK_LISTED) table_remove(p, b);
    p->state[b] = 0;
}

/* ---- blocks ---------------------------------------------------------------------------- */

/* A block for writing (ref 1): the free list first, then the least recently used cached
 * block. The caller checked that one exists. */
static int32_t block_take(kv_pool *p) {
    int32_t b;
    if (p->n_free > 0) {
        b = p->free_ids[--p->n_free];
    } else {
        b = p->lru_head;
        lru_unlink(p, b);
    }
    block_unhash(p, b);
    p->ref[b] = 1;
    return b;
}

static void block_release(kv_pool *p, int32_t b) {
    if (--p->ref[b] > 0) return;
    if (p->state[b] & BLOCK_LISTED) lru_push(p, b);
    else p->free_ids[p->n_free++] = b;
}

/* Releases the table entries [keep, end) of s, last first: the block of a sequence's first
 * positions then becomes the most recent in the LRU list and is evicted last, as the blocks
 * after it are useless without it. */
static void seq_release_from(kv_pool *p, kv_seq *s, int64_t keep, int64_t end) {
    for (int64_t i = end - 1; i >= keep; i--) block_release(p, s->blocks[i]);
}

/* s is about to be freed: its partial last block, when s alone holds it and every block before
 * it is hashed, is listed as a tail, so the next turn of a conversation (whose prompt repeats
 * the whole previous exchange) takes those positions too and not only the full blocks. */
static void seq_keep_tail(kv_pool *p, const kv_seq *s) {
    const int64_t len = s->n % KV_BLOCK, at = s->n / KV_BLOCK;
    if (!p->hashing || len == 0) return;
    const int32_t b = s->blocks[at], before = at > 0 ? s->blocks[at - 1] : -1;
    if (p->ref[b] != 1 || (p->state[b] & BLOCK_TAIL)) return; /* shared, or already a tail */
    if (before >= 0 && !(p->state[before] & BLOCK_HASHED)) return;
    block_unhash(p, b);
    p->prev[b] = before >= 0 ? p->hash[before] : HASH_SEED;
    p->hash[b] = tail_key(p->prev[b]);
    p->tail_len[b] = (uint8_t)len;
    p->state[b] = BLOCK_TAIL;
    table_insert(p, b);
}

/* ---- transactions ---------------------------------------------------------------------- */

/* Whether writing at position n of s must copy its last block first (it is shared). */
static bool needs_cow(const kv_pool *p, const kv_seq *s) {
    return s->n % KV_BLOCK != 0 && p->ref[s->blocks[s->n / KV_BLOCK]] > 1;
}

ob_status kv_pool_reserve(kv_pool *p, const int64_t *n_new, ob_err *err) {
    if (p->open) return ob_fail(err, OB_ERR_ARG, "KV pool: a batch is already reserved");
    int64_t need = 0;
    for (int32_t i = 0; i < p->n_seq; i++) {
        const kv_seq *s = &p->seqs[i];
        if (n_new[i] <= 0) continue;
        const int64_t end = blocks_for(s->n + n_new[i]);
        if (end > p->max_blocks)
            return ob_fail(err, OB_ERR_ARG, "KV pool: sequence %d needs %lld blocks, at most "
                           "%lld per sequence", i, (long long)end, (long long)p->max_blocks);
        need += end - blocks_for(s->n) + (needs_cow(p, s) ? 1 : 0);
    }
    if (need > p->n_free + p->n_cached)
        return ob_fail(err, OB_ERR_LIMIT, "KV pool: the batch needs %lld blocks of %d "
                       "positions, %lld are free (%lld of them cached prefixes) of %lld",
                       (long long)need, KV_BLOCK, (long long)(p->n_free + p->n_cached),
                       (long long)p->n_cached, (long long)p->n_blocks);
    p->open = true;
    p->n_copies = 0;
    for (int32_t i = 0; i < p->n_seq; i++) {
        kv_seq *s = &p->seqs[i];
        if (n_new[i] <= 0) continue;
        if (needs_cow(p, s)) {
            const int64_t at = s->n / KV_BLOCK;
            const int32_t old = s->blocks[at], b = block_take(p);
            p->copies[p->n_copies++] = (kv_copy){old, b, s->n % KV_BLOCK};
            p->ref[old]--; /* still >= 1: another sequence holds it */
            s->blocks[at] = b;
            s->cow_old = old;
        } else if (s->n % KV_BLOCK != 0) {
            block_unhash(p, s->blocks[s->n / KV_BLOCK]); /* truncated into a full block */
        }
        for (int64_t at = blocks_for(s->n); at < blocks_for(s->n + n_new[i]); at++)
            s->blocks[at] = block_take(p);
        s->n_res = s->n + n_new[i];
    }
    return OB_OK;
}

const kv_copy *kv_pool_copies(const kv_pool *p, int64_t *n) {
    *n = p->open ? p->n_copies : 0;
    return p->copies;
}

/* Hashes the full blocks [from, to) of s and lists the ones the table lacks. */
static void seq_hash_blocks(kv_pool *p, const kv_seq *s, int64_t from, int64_t to) {
    for (int64_t i = from; i < to; i++) {
        const int32_t b = s->blocks[i];
        if (p->state[b] & BLOCK_HASHED) continue;
        const int32_t before = i > 0 ? s->blocks[i - 1] : -1;
        if (before >= 0 && !(p->state[before] & BLOCK_HASHED)) return; /* chain broken */
        const uint64_t prev = before >= 0 ? p->hash[before] : HASH_SEED;
        const int32_t *toks = p->tokens + (size_t)b * KV_BLOCK;
        p->prev[b] = prev;
        p->hash[b] = block_hash(prev, toks);
        p->state[b] = BLOCK_HASHED;
        /* an equal block already listed (the same prompt evaluated twice) stays the one
         * found; this one is hashed only so the chain after it continues */
        if (table_find(p, p->hash[b], prev, toks) < 0) table_insert(p, b);
    }
}

void kv_pool_commit(kv_pool *p, const int32_t *tokens, const int64_t *pos, const int32_t *seq,
                    int64_t n) {
    if (!p->open) return;
    for (int64_t i = 0; i < n; i++) {
        const int32_t b = p->seqs[seq[i]].blocks[pos[i] / KV_BLOCK];
        p->tokens[(size_t)b * KV_BLOCK + (size_t)(pos[i] % KV_BLOCK)] = tokens[i];
    }
    for (int32_t i = 0; i < p->n_seq; i++) {
        kv_seq *s = &p->seqs[i];
        if (s->n_res == s->n) continue;
        const int64_t from = s->n / KV_BLOCK;
        s->n = s->n_res;
        s->cow_old = -1;
        if (p->hashing) seq_hash_blocks(p, s, from, s->n / KV_BLOCK);
    }
    p->open = false;
}

void kv_pool_seq_tokens(const kv_pool *p, int32_t seq, int64_t from, int64_t n, int32_t *out) {
    const kv_seq *s = &p->seqs[seq];
    for (int64_t i = 0; i < n; i++) {
        const int64_t pos = from + i;
        out[i] = p->tokens[(size_t)s->blocks[pos / KV_BLOCK] * KV_BLOCK + (size_t)(pos % KV_BLOCK)];
    }
}

void kv_pool_rollback(kv_pool *p) {
    if (!p->open) return;
    for (int32_t i = 0; i < p->n_seq; i++) {
        kv_seq *s = &p->seqs[i];
        if (s->n_res == s->n) continue;
        seq_release_from(p, s, blocks_for(s->n), blocks_for(s->n_res));
        if (s->cow_old >= 0) {
            const int64_t at = s->n / KV_BLOCK;
            block_release(p, s->blocks[at]);
            s->blocks[at] = s->cow_old;
            p->ref[s->cow_old]++;
            s->cow_old = -1;
        }
        s->n_res = s->n;
    }
    p->open = false;
}

/* ---- sequences ------------------------------------------------------------------------- */

void kv_pool_seq_truncate(kv_pool *p, int32_t seq, int64_t n) {
    kv_seq *s = &p->seqs[seq];
    if (n < 0) n = 0;
    if (n >= s->n) return;
    if (n == 0) seq_keep_tail(p, s);
    seq_release_from(p, s, blocks_for(n), blocks_for(s->n));
    s->n = s->n_res = n;
}

void kv_pool_seq_free(kv_pool *p, int32_t seq) { kv_pool_seq_truncate(p, seq, 0); }

void kv_pool_seq_fork(kv_pool *p, int32_t src, int32_t dst) {
    if (src == dst) return;
    kv_pool_seq_free(p, dst);
    kv_seq *s = &p->seqs[src], *d = &p->seqs[dst];
    const int64_t nb = blocks_for(s->n);
    for (int64_t i = 0; i < nb; i++) {
        d->blocks[i] = s->blocks[i];
        p->ref[s->blocks[i]]++;
    }
    d->n = d->n_res = s->n;
}

/* Blocks of tokens (n of them) that attach would take: the longest run of listed full blocks
 * equal to their first blocks, leaving at least one token. hashes (may be NULL) gets the chain
 * hash of each; blocks (may be NULL) the block ids. */
static int64_t pool_match(const kv_pool *p, const int32_t *tokens, int64_t n, uint64_t *hashes,
                          int32_t *blocks) {
    if (!p->hashing || n < 1) return 0;
    int64_t max = (n - 1) / KV_BLOCK; /* at least one token stays to be evaluated */
    if (max > p->max_blocks) max = p->max_blocks;
    uint64_t prev = HASH_SEED;
    int64_t i = 0;
    for (; i < max; i++) {
        const int32_t *toks = tokens + i * KV_BLOCK;
        const uint64_t h = block_hash(prev, toks);
        const int32_t b = table_find(p, h, prev, toks);
        if (b < 0) break;
        if (hashes) hashes[i] = h;
        if (blocks) blocks[i] = b;
        prev = h;
    }
    return i;
}

int64_t kv_pool_match(const kv_pool *p, const int32_t *tokens, int64_t n, uint64_t *hashes) {
    return pool_match(p, tokens, n, hashes, NULL);
}

static void attach_block(kv_pool *p, int32_t b) {
    if (p->ref[b] == 0) lru_unlink(p, b);
    p->ref[b]++;
}

int64_t kv_pool_seq_attach(kv_pool *p, int32_t seq, const int32_t *tokens, int64_t n,
                           bool tail) {
    kv_seq *s = &p->seqs[seq];
    if (s->n != 0) return 0;
    const int64_t k = pool_match(p, tokens, n, NULL, s->blocks);
    for (int64_t i = 0; i < k; i++) attach_block(p, s->blocks[i]);
    s->n = s->n_res = k * KV_BLOCK;
    p->hit_blocks += k;
    p->hit_tokens += k * KV_BLOCK;
    int64_t avail = n - 1 - k * KV_BLOCK, m = 0;
    if (avail > KV_BLOCK - 1) avail = KV_BLOCK - 1;
    if (tail && p->hashing && k < p->max_blocks && avail > 0) {
        const uint64_t prev = k > 0 ? p->hash[s->blocks[k - 1]] : HASH_SEED;
        const int32_t b = tail_find(p, prev, tokens + k * KV_BLOCK, avail, &m);
        if (b >= 0 && m > 0) {
            /* shared until written: the first write past m copies it if another holds it,
             * or unlists it (kv_pool_reserve) when this sequence alone does */
            s->blocks[k] = b;
            attach_block(p, b);
            s->n = s->n_res = k * KV_BLOCK + m;
            p->hit_tokens += m;
        } else {
            m = 0;
        }
    }
    return k * KV_BLOCK + m;
}

uint64_t kv_pool_prefix_hash(const kv_pool *p, int32_t seq, int64_t k) {
    const kv_seq *s = &p->seqs[seq];
    if (k < 1 || k > s->n / KV_BLOCK) return 0;
    const int32_t b = s->blocks[k - 1];
    return p->state[b] & BLOCK_HASHED ? p->hash[b] : 0;
}

void kv_pool_stats_get(const kv_pool *p, kv_pool_stats *out) {
    *out = (kv_pool_stats){
        .blocks_total = p->n_blocks, .blocks_cached = p->n_cached, .blocks_free = p->n_free,
        .blocks_used = p->n_blocks - p->n_cached - p->n_free, .hit_blocks = p->hit_blocks,
        .hit_tokens = p->hit_tokens,
    };
}
