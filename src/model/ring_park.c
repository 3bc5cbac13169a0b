/*
 * Parked sliding-window rings (ring_park.h). A prefix of k blocks (P = k * KV_BLOCK positions)
 * can continue a freed sequence of len positions whose ring is intact from lo on when P <= len
 * and its window is intact: max(0, P - n_swa) >= lo. Since the ring holds its rows' worth of
 * positions before len, that leaves at most rows / KV_BLOCK + 1 such k per slot, each kept
 * with its hash.
 */
#include "model/ring_park.h"

#include "core/alloc.h"
#include "core/err.h"

typedef struct parked {
    int64_t first_k; /* blocks of the shortest prefix the ring continues; n_k == 0: none */
    int64_t n_k;     /* prefixes of first_k, first_k + 1, ... blocks */
    int64_t lo;      /* lowest position intact in the ring */
    uint64_t stamp;  /* when it was parked: the oldest is the first to give way */
    int64_t full;    /* full blocks of the parked sequence */
    int64_t n_tail;  /* positions after them, whose tokens are tail */
    int32_t tail[KV_BLOCK];
    uint64_t *hash;  /* (max_k) chain hash of each */
} parked;

struct ring_park {
    int32_t n_seq;
    int64_t n_swa, max_k;
    uint64_t clock;  /* parkings so far */
    parked *slots;   /* (n_seq) */
    uint64_t *hashes; /* (n_seq * max_k) storage of every slot's hash */
};

ob_status ring_park_new(int32_t n_seq, int64_t n_swa, int64_t ring_rows, ring_park **out,
                        ob_err *err) {
    *out = NULL;
    ring_park *rp = ob_calloc(1, sizeof *rp);
    if (!rp) return ob_fail(err, OB_ERR_NOMEM, "context: out of memory for ring parking");
    rp->n_seq = n_seq;
    rp->n_swa = n_swa;
    /* The prefixes a ring continues end within its rows: at most one per block of them (a
     * ring may be shorter than the window, when it holds the whole context). */
    rp->max_k = ring_rows / KV_BLOCK + 1;
    rp->slots = ob_calloc((size_t)n_seq, sizeof *rp->slots);
    rp->hashes = ob_calloc((size_t)n_seq, (size_t)rp->max_k * sizeof *rp->hashes);
    if (!rp->slots || !rp->hashes) {
        ring_park_free(rp);
        return ob_fail(err, OB_ERR_NOMEM, "context: out of memory for ring parking");
    }
    for (int32_t s = 0; s < n_seq; s++) rp->slots[s].hash = rp->hashes + (size_t)s * rp->max_k;
    *out = rp;
    return OB_OK;
}

void ring_park_free(ring_park *rp) {
    if (!rp) return;
    ob_free(rp->slots);
    ob_free(rp->hashes);
    ob_free(rp);
}

void ring_park_save(ring_park *rp, const kv_pool *pool, int32_t seq, int64_t len, int64_t lo) {
    parked *p = &rp->slots[seq];
    p->n_k = 0;
    p->lo = lo;
    p->stamp = ++rp->clock;
    p->full = len / KV_BLOCK;
    p->n_tail = len % KV_BLOCK;
    kv_pool_seq_tokens(pool, seq, p->full * KV_BLOCK, p->n_tail, p->tail);
    /* The smallest k whose window is intact: k * KV_BLOCK - n_swa >= lo, or lo == 0. */
    int64_t k = lo == 0 ? 1 : (lo + rp->n_swa + KV_BLOCK - 1) / KV_BLOCK;
    const int64_t last = len / KV_BLOCK;
    if (last - k + 1 > rp->max_k) k = last - rp->max_k + 1; /* keep the longest prefixes */
    p->first_k = k;
    for (; k <= last; k++) {
        const uint64_t h = kv_pool_prefix_hash(pool, seq, k);
        if (!h) { /* a block the pool did not hash: the chain breaks here */
            if (p->n_k == 0) p->first_k = k + 1;
            else break;
            continue;
        }
        p->hash[p->n_k++] = h;
    }
}

void ring_park_drop(ring_park *rp, int32_t seq) { rp->slots[seq].n_k = 0; }

int64_t ring_park_tail(const ring_park *rp, int32_t slot, int64_t k, const int32_t *tokens,
                       int64_t n) {
    const parked *p = &rp->slots[slot];
    if (p->n_k == 0 || p->full != k) return 0;
    int64_t m = 0;
    while (m < p->n_tail && k * KV_BLOCK + m < n - 1 && tokens[k * KV_BLOCK + m] == p->tail[m])
        m++;
    return m;
}

int32_t ring_park_victim(const ring_park *rp, const bool *used, int32_t n) {
    int32_t oldest = -1;
    for (int32_t s = 0; s < n && s < rp->n_seq; s++) {
        if (used[s]) continue;
        if (rp->slots[s].n_k == 0) return s;
        if (oldest < 0 || rp->slots[s].stamp < rp->slots[oldest].stamp) oldest = s;
    }
    return oldest;
}

int64_t ring_park_find(const ring_park *rp, const uint64_t *hashes, int64_t n_match,
                       int32_t *slot, int64_t *lo) {
    int64_t best = 0;
    *slot = -1;
    *lo = 0;
    for (int32_t s = 0; s < rp->n_seq; s++) {
        const parked *p = &rp->slots[s];
        for (int64_t i = p->n_k - 1; i >= 0; i--) {
            const int64_t k = p->first_k + i;
            if (k <= best || k > n_match) continue;
            if (hashes[k - 1] != p->hash[i]) continue;
            best = k;
            *slot = s;
            *lo = p->lo;
            break;
        }
    }
    return best;
}
