/*
 * Prefix reuse on models with sliding-window layers. Their K and V live in a ring per sequence
 * slot holding the last positions only, so a prompt that attaches cached blocks at position P
 * also needs the window before P, [P - n_swa, P), in its ring. A freed sequence's ring stays
 * intact until its slot is written again: it is "parked" with the chain hashes of its block
 * prefixes whose window it still holds. A later prompt attaches only as far as some parked
 * ring covers (the same slot, or that ring copied into the new slot), which in practice is the
 * next turn of the same conversation: the whole previous exchange, up to the last full block.
 */
#ifndef OB_MODEL_RING_PARK_H
#define OB_MODEL_RING_PARK_H

#include "model/kv_pool.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ring_park ring_park;

/* Parking for n_seq slots whose rings hold positions [len - ring_rows, len) of a window of
 * n_swa. *out owned by the caller (ring_park_free). OB_ERR_NOMEM. */
ob_status ring_park_new(int32_t n_seq, int64_t n_swa, int64_t ring_rows, ring_park **out,
                        ob_err *err);
void ring_park_free(ring_park *rp);

/* Sequence seq of the pool (len positions, its ring intact from position lo on) is about to
 * be freed: remembers which of its block prefixes the ring can continue. */
void ring_park_save(ring_park *rp, const kv_pool *pool, int32_t seq, int64_t len, int64_t lo);

/* Slot seq is written (a decode, a fork into it, an attach): its parked ring is gone. */
void ring_park_drop(ring_park *rp, int32_t seq);

/* Positions past the k blocks a prompt (tokens, n of them) attaches from slot's parked ring
 * that the ring also holds: the parked sequence's partial last block, as far as the prompt
 * repeats it (leaving its last token unattached); 0 unless the ring ends in block k. */
int64_t ring_park_tail(const ring_park *rp, int32_t slot, int64_t k, const int32_t *tokens,
                       int64_t n);

/* Of slots [0, n) not used (used[s] false), the one whose writing loses least: one with no
 * ring parked, else the one parked longest ago; -1 when all are used. */
int32_t ring_park_victim(const ring_park *rp, const bool *used, int32_t n);

/* The most blocks of a prompt that some parked ring continues: hashes[i] is the chain hash
 * of the prompt's first i + 1 blocks (kv_pool_match), n_match of them. *slot gets the slot
 * whose ring to use and *lo the lowest position intact in it. 0 (and *slot -1) when none. */
int64_t ring_park_find(const ring_park *rp, const uint64_t *hashes, int64_t n_match,
                       int32_t *slot, int64_t *lo);

#endif
