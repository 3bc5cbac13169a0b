/*
 * The KV pool's bookkeeping (kv_pool.c): which block of positions belongs to which sequence.
 * It stores no K or V itself; the backend keeps one row of storage per pool position and reads
 * a sequence's rows through that sequence's block table. Pure data structure, no model needed.
 *
 * A block holds KV_BLOCK consecutive positions of one sequence. A block is
 *   used    (ref > 0): in one or more sequences' tables (more than one after a fork or a
 *           prefix attach; such a block is never written: a sequence about to write into a
 *           shared block gets a copy first, copy-on-write);
 *   cached  (ref == 0, listed in the prefix table): a full block of a finished sequence, kept
 *           for a later prompt with the same prefix, in least-recently-released order, or
 *           its partial last block (a tail: the end of a conversation's last turn, which the
 *           next turn's prompt repeats);
 *   free    (ref == 0, not listed).
 * Allocation takes the free list first, then evicts the least recently used cached block.
 *
 * Full blocks carry a chained hash, H(hash of the block before, the block's tokens), so equal
 * hashes mean equal prefixes; a match is confirmed by comparing the tokens and the previous
 * block's hash before it is used.
 *
 * A batch is a transaction: kv_pool_reserve takes every block the batch needs (or fails,
 * changing nothing), the backend performs kv_pool_copies' copy-on-write copies and writes the
 * rows, then kv_pool_commit makes the positions part of the sequences, or kv_pool_rollback
 * returns the sequences to where they were.
 */
#ifndef OB_MODEL_KV_POOL_H
#define OB_MODEL_KV_POOL_H

#include "outboard.h"

#include <stdbool.h>
#include <stdint.h>

/* Positions per block. 32: a decode step's attention walks a sequence's blocks in runs of
 * physically adjacent blocks, so the block size barely matters for speed; it sets the prefix
 * cache's granularity (a shared system prompt is reused to within 31 tokens) and the waste per
 * sequence (at most 31 positions of the last block), and keeps block tables short (a 128k
 * context is 4096 entries). 16 would halve both wastes but double the table and hash work; 64
 * would lose up to 63 tokens of every shared prefix. */
#define KV_BLOCK 32

typedef struct kv_pool kv_pool;

/* One copy-on-write copy the backend performs before the batch runs: rows [0, n_rows) of block
 * src into block dst, on every layer. */
typedef struct kv_copy {
    int32_t src, dst;
    int64_t n_rows;
} kv_copy;

/* A pool of n_blocks blocks for n_seq sequences of at most max_blocks blocks each. hashing:
 * keep full blocks for the prefix cache (off: freed blocks go straight to the free list, and a
 * single sequence's blocks are then always 0, 1, 2, ... in order). *out owned by the caller
 * (kv_pool_free). OB_ERR_ARG for non-positive sizes, OB_ERR_NOMEM. */
ob_status kv_pool_new(int64_t n_blocks, int32_t n_seq, int64_t max_blocks, bool hashing,
                      kv_pool **out, ob_err *err);
void kv_pool_free(kv_pool *p);

int64_t kv_pool_n_blocks(const kv_pool *p);
/* Positions committed to sequence seq. */
int64_t kv_pool_seq_len(const kv_pool *p, int32_t seq);
/* Sequence seq's block table (block ids in position order; reserved blocks included), borrowed
 * until the next call that changes the pool. */
const int32_t *kv_pool_seq_table(const kv_pool *p, int32_t seq);

/* Reserves room for n_new[s] more positions of each sequence s (n_new has n_seq entries, 0 for
 * sequences the batch does not touch): copy-on-write replacements for shared last blocks and
 * new blocks at the ends of the tables. OB_ERR_LIMIT, changing nothing, when the pool lacks
 * blocks (the message gives blocks needed, free and cached); OB_ERR_ARG when a transaction is
 * already open or a sequence would exceed max_blocks. */
ob_status kv_pool_reserve(kv_pool *p, const int64_t *n_new, ob_err *err);
/* The copies the open reservation asks for (*n of them), borrowed until commit/rollback. */
const kv_copy *kv_pool_copies(const kv_pool *p, int64_t *n);
/* Makes the reserved positions part of their sequences. tokens/pos/seq (n entries) name every
 * position the batch wrote, so full blocks can be hashed for the prefix cache. */
void kv_pool_commit(kv_pool *p, const int32_t *tokens, const int64_t *pos, const int32_t *seq,
                    int64_t n);
/* The tokens committed at positions [from, from + n) of seq (within its length) into out. */
void kv_pool_seq_tokens(const kv_pool *p, int32_t seq, int64_t from, int64_t n, int32_t *out);
/* Returns every sequence to its state before kv_pool_reserve. */
void kv_pool_rollback(kv_pool *p);

/* Releases all of seq's blocks (full hashed ones stay cached). */
void kv_pool_seq_free(kv_pool *p, int32_t seq);
/* Keeps seq's first n positions (n <= its length). */
void kv_pool_seq_truncate(kv_pool *p, int32_t seq, int64_t n);
/* dst (first freed) shares all of src's blocks; the next write into a shared block copies it. */
void kv_pool_seq_fork(kv_pool *p, int32_t src, int32_t dst);
/* On an empty sequence: attaches the longest run of cached full blocks equal to the first
 * blocks of tokens (n of them), leaving at least one token unattached; with tail, then the
 * listed tail (a freed sequence's partial last block, after the same blocks) sharing the most
 * tokens with what follows, for those tokens. Returns positions attached (0 when nothing
 * matched or hashing is off). */
int64_t kv_pool_seq_attach(kv_pool *p, int32_t seq, const int32_t *tokens, int64_t n,
                           bool tail);
/* The blocks kv_pool_seq_attach would attach for tokens (n of them), changing nothing;
 * hashes (may be NULL, room for (n - 1) / KV_BLOCK) gets the chain hash of each, i.e. of the
 * prefix of tokens up to and including that block. 0 when hashing is off. */
int64_t kv_pool_match(const kv_pool *p, const int32_t *tokens, int64_t n, uint64_t *hashes);
/* The chain hash of sequence seq's first k blocks (those of its positions below k *
 * KV_BLOCK), as kv_pool_match gives it for the same tokens; 0 when they are not all full
 * and hashed. */
uint64_t kv_pool_prefix_hash(const kv_pool *p, int32_t seq, int64_t k);

typedef struct kv_pool_stats {
    int64_t blocks_total, blocks_used, blocks_cached, blocks_free;
    int64_t hit_blocks, hit_tokens; /* attached by kv_pool_seq_attach since creation */
} kv_pool_stats;

void kv_pool_stats_get(const kv_pool *p, kv_pool_stats *out);

#endif
