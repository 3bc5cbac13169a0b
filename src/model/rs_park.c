/*
 * The snapshot bookkeeping of rs_park.h: a small table searched linearly (a context has a
 * handful of snapshots), with a use counter for least-recently-used replacement.
 */
#include "model/rs_park.h"

#include "core/alloc.h"
#include "core/err.h"

#include <stdbool.h>

typedef struct rs_snap {
    uint64_t hash;  /* chain hash of the blocks before the snapshot, 0 = unusable */
    int64_t k;      /* blocks before it */
    uint64_t used;  /* rp->clock when last taken or found */
    bool pending;   /* taken, not yet committed or dropped: not to be taken again */
} rs_snap;

struct rs_park {
    rs_snap *snap;
    int64_t n;
    uint64_t clock;
};

ob_status rs_park_new(int64_t n_snap, rs_park **out, ob_err *err) {
    *out = NULL;
    rs_park *rp = ob_calloc(1, sizeof *rp);
    if (rp) rp->snap = ob_calloc((size_t)(n_snap > 0 ? n_snap : 1), sizeof *rp->snap);
    if (!rp || !rp->snap) {
        rs_park_free(rp);
        return ob_fail(err, OB_ERR_NOMEM, "recurrent-state snapshots: out of memory");
    }
    rp->n = n_snap;
    *out = rp;
    return OB_OK;
}

void rs_park_free(rs_park *rp) {
    if (!rp) return;
    ob_free(rp->snap);
    ob_free(rp);
}

int64_t rs_park_take(rs_park *rp) {
    int64_t best = -1;
    for (int64_t i = 0; i < rp->n; i++) {
        if (rp->snap[i].pending) continue;
        if (rp->snap[i].hash == 0) { /* an unusable one costs nothing to replace */
            best = i;
            break;
        }
        if (best < 0 || rp->snap[i].used < rp->snap[best].used) best = i;
    }
    if (best >= 0) rp->snap[best] = (rs_snap){.used = ++rp->clock, .pending = true};
    return best;
}

void rs_park_commit(rs_park *rp, int64_t i, int64_t k, uint64_t hash) {
    /* an older snapshot of the same prefix is now a duplicate: free it for the next take */
    for (int64_t j = 0; hash && j < rp->n; j++)
        if (j != i && rp->snap[j].hash == hash && rp->snap[j].k == k) rp->snap[j].hash = 0;
    rp->snap[i].hash = hash;
    rp->snap[i].k = k;
    rp->snap[i].pending = false;
}

void rs_park_drop(rs_park *rp, int64_t i) {
    rp->snap[i].hash = 0;
    rp->snap[i].pending = false;
}

int64_t rs_park_find(rs_park *rp, const uint64_t *hashes, int64_t n_match, int64_t *snap) {
    int64_t best_k = 0;
    *snap = -1;
    for (int64_t i = 0; i < rp->n; i++) {
        const rs_snap *s = &rp->snap[i];
        if (s->hash && s->k > best_k && s->k <= n_match && hashes[s->k - 1] == s->hash) {
            best_k = s->k;
            *snap = i;
        }
    }
    if (*snap >= 0) rp->snap[*snap].used = ++rp->clock;
    return best_k;
}

int64_t rs_park_lookup(rs_park *rp, int64_t k, uint64_t hash) {
    for (int64_t i = 0; hash && i < rp->n; i++)
        if (rp->snap[i].hash == hash && rp->snap[i].k == k) {
            rp->snap[i].used = ++rp->clock;
            return i;
        }
    return -1;
}
