/*
 * Prefix reuse on models with recurrent layers (Gated DeltaNet). Cached KV blocks are of use
 * to such a model only together with the recurrent state at the end of the last one: the state
 * summarises every position before it and cannot be rebuilt from the blocks. So the context
 * keeps a few snapshots of sequences' states taken at block boundaries, each keyed by the chain
 * hash of the blocks before it (kv_pool_prefix_hash). A prompt then attaches cached blocks only
 * as far as some snapshot reaches, and starts from a copy of that snapshot.
 *
 * A decode takes, for each sequence it extends, a snapshot at the last block boundary the batch
 * crosses (the pass is cut there when the boundary falls inside a sequence's run of rows), so
 * a prompt's snapshot sits at its last full block and a conversation's next turn finds one
 * within a block of where the previous turn ended. Snapshots are replaced least recently used
 * first. The states themselves live in the backend (model_backend_shape.n_rs_snap); this is
 * only their bookkeeping: which snapshot holds which prefix.
 */
#ifndef OB_MODEL_RS_PARK_H
#define OB_MODEL_RS_PARK_H

#include "outboard.h"

#include <stdint.h>

typedef struct rs_park rs_park;

/* Bookkeeping for n_snap snapshots. *out owned by the caller (rs_park_free). OB_ERR_NOMEM. */
ob_status rs_park_new(int64_t n_snap, rs_park **out, ob_err *err);
void rs_park_free(rs_park *rp);

/* A snapshot to write now (an unusable one, else the least recently used; never one taken
 * and not yet committed or dropped), or -1 when all are taken: it is unusable until
 * rs_park_commit names its prefix or rs_park_drop gives it up. */
int64_t rs_park_take(rs_park *rp);

/* Snapshot i holds the state after the first k blocks, whose chain hash is `hash` (0: the
 * blocks are not hashed, the snapshot stays unusable). */
void rs_park_commit(rs_park *rp, int64_t i, int64_t k, uint64_t hash);

/* Snapshot i was not written after all (the decode failed). */
void rs_park_drop(rs_park *rp, int64_t i);

/* The most blocks of a prompt that a snapshot continues: hashes[j] is the chain hash of the
 * prompt's first j + 1 blocks (kv_pool_match), n_match of them. *snap gets the snapshot
 * (marked as just used). 0 (and *snap -1) when none. */
int64_t rs_park_find(rs_park *rp, const uint64_t *hashes, int64_t n_match, int64_t *snap);

/* The snapshot holding the state after exactly k blocks whose chain hash is `hash` (marked
 * as just used), or -1. */
int64_t rs_park_lookup(rs_park *rp, int64_t k, uint64_t hash);

#endif
