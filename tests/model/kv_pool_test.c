/*
 * The KV pool's bookkeeping without a model: blocks handed out in order, reservations that fail
 * for lack of blocks change nothing, rollback restores every table, fork shares blocks and the
 * first write into a shared block asks for a copy, truncation releases blocks, freed full
 * blocks stay as a prefix cache that an identical prompt attaches (tokens compared, not only
 * hashes), and allocation evicts the least recently released cached block.
 */
#include "model/kv_pool.c"

#include "test.h"

#define NSEQ 4

/* Appends n tokens (toks[0..n)) to sequence seq in one transaction. */
static ob_status put(kv_pool *p, int32_t seq, const int32_t *toks, int64_t n, ob_err *err) {
    int64_t n_new[NSEQ] = {0};
    n_new[seq] = n;
    ob_status st = kv_pool_reserve(p, n_new, err);
    if (st) return st;
    int64_t pos[512];
    int32_t sq[512];
    for (int64_t i = 0; i < n; i++) {
        pos[i] = kv_pool_seq_len(p, seq) + i;
        sq[i] = seq;
    }
    kv_pool_commit(p, toks, pos, sq, n);
    return OB_OK;
}

static void fill(int32_t *toks, int64_t n, int32_t base) {
    for (int64_t i = 0; i < n; i++) toks[i] = base + (int32_t)i;
}

static kv_pool *pool_of(int64_t n_blocks, bool hashing) {
    kv_pool *p = NULL;
    ob_err err = {{0}};
    if (kv_pool_new(n_blocks, NSEQ, 8, hashing, &p, &err)) return NULL;
    return p;
}

TEST(blocks_come_in_order) {
    kv_pool *p = pool_of(8, true);
    CHECK(p);
    int32_t toks[100];
    fill(toks, 100, 1);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, toks, 70, &err), OB_OK, &err, "");
    CHECK_EQ_INT(kv_pool_seq_len(p, 0), 70);
    const int32_t *t = kv_pool_seq_table(p, 0);
    CHECK(t[0] == 0 && t[1] == 1 && t[2] == 2);
    kv_pool_stats s;
    kv_pool_stats_get(p, &s);
    CHECK_EQ_INT(s.blocks_used, 3);
    CHECK_EQ_INT(s.blocks_free, 5);
    kv_pool_free(p);
}

TEST(exhaustion_changes_nothing) {
    kv_pool *p = pool_of(4, true);
    CHECK(p);
    int32_t toks[200];
    fill(toks, 200, 1);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, toks, 60, &err), OB_OK, &err, "");
    kv_pool_stats before, after;
    kv_pool_stats_get(p, &before);
    int64_t n_new[NSEQ] = {10, 100, 0, 0}; /* 1 more block for seq 0, 4 for seq 1: 5 > 2 */
    CHECK_STATUS(kv_pool_reserve(p, n_new, &err), OB_ERR_LIMIT, &err, "needs 5 blocks");
    CHECK(strstr(err.msg, "2 are free") != NULL);
    kv_pool_stats_get(p, &after);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
    CHECK_EQ_INT(kv_pool_seq_len(p, 0), 60);
    CHECK_EQ_INT(kv_pool_seq_len(p, 1), 0);
    /* the pool still works: what fits fits */
    CHECK_STATUS(put(p, 1, toks, 64, &err), OB_OK, &err, "");
    kv_pool_free(p);
}

TEST(rollback_restores_every_sequence) {
    kv_pool *p = pool_of(16, true);
    CHECK(p);
    int32_t toks[100];
    fill(toks, 100, 1);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, toks, 40, &err), OB_OK, &err, "");
    kv_pool_seq_fork(p, 0, 1);
    kv_pool_stats before, after;
    kv_pool_stats_get(p, &before);
    int32_t t0[8], t1[8];
    memcpy(t0, kv_pool_seq_table(p, 0), sizeof t0);
    memcpy(t1, kv_pool_seq_table(p, 1), sizeof t1);
    int64_t n_new[NSEQ] = {50, 3, 33, 0};
    CHECK_STATUS(kv_pool_reserve(p, n_new, &err), OB_OK, &err, "");
    int64_t n_copies;
    kv_pool_copies(p, &n_copies);
    /* both write into the shared block 1: the first gets a copy, the second then holds the
     * original alone and writes it in place */
    CHECK_EQ_INT(n_copies, 1);
    kv_pool_rollback(p);
    kv_pool_stats_get(p, &after);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
    CHECK(memcmp(t0, kv_pool_seq_table(p, 0), 2 * sizeof(int32_t)) == 0);
    CHECK(memcmp(t1, kv_pool_seq_table(p, 1), 2 * sizeof(int32_t)) == 0);
    CHECK_EQ_INT(kv_pool_seq_len(p, 2), 0);
    CHECK_EQ_INT(p->ref[t0[1]], 2);
    kv_pool_free(p);
}

TEST(fork_shares_and_copies_on_write) {
    kv_pool *p = pool_of(16, true);
    CHECK(p);
    int32_t toks[100];
    fill(toks, 100, 1);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, toks, 40, &err), OB_OK, &err, "");
    kv_pool_seq_fork(p, 0, 1);
    CHECK_EQ_INT(kv_pool_seq_len(p, 1), 40);
    kv_pool_stats s;
    kv_pool_stats_get(p, &s);
    CHECK_EQ_INT(s.blocks_used, 2); /* shared, not copied */
    int64_t n_new[NSEQ] = {0, 1, 0, 0};
    CHECK_STATUS(kv_pool_reserve(p, n_new, &err), OB_OK, &err, "");
    int64_t n_copies;
    const kv_copy *cp = kv_pool_copies(p, &n_copies);
    CHECK_EQ_INT(n_copies, 1);
    CHECK_EQ_INT(cp[0].src, 1);
    CHECK_EQ_INT(cp[0].n_rows, 8);
    const int32_t dst = cp[0].dst;
    int64_t pos = 40;
    int32_t seq = 1, tok = 7;
    kv_pool_commit(p, &tok, &pos, &seq, 1);
    CHECK_EQ_INT(kv_pool_seq_table(p, 1)[1], dst);
    CHECK_EQ_INT(kv_pool_seq_table(p, 1)[0], kv_pool_seq_table(p, 0)[0]);
    CHECK_EQ_INT(kv_pool_seq_table(p, 0)[1], 1);
    CHECK_EQ_INT(p->ref[0], 2);
    CHECK_EQ_INT(p->ref[1], 1);
    /* the owner writes into its own block without a copy now */
    int64_t n_new0[NSEQ] = {1, 0, 0, 0};
    CHECK_STATUS(kv_pool_reserve(p, n_new0, &err), OB_OK, &err, "");
    kv_pool_copies(p, &n_copies);
    CHECK_EQ_INT(n_copies, 0);
    kv_pool_rollback(p);
    kv_pool_seq_free(p, 0);
    kv_pool_seq_free(p, 1);
    kv_pool_stats_get(p, &s);
    CHECK_EQ_INT(s.blocks_used, 0);
    CHECK_EQ_INT(s.blocks_cached, 3); /* the one full block and each sequence's tail */
    kv_pool_free(p);
}

TEST(truncate_releases_blocks) {
    kv_pool *p = pool_of(16, true);
    CHECK(p);
    int32_t toks[100];
    fill(toks, 100, 1);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, toks, 100, &err), OB_OK, &err, "");
    kv_pool_seq_truncate(p, 0, 33);
    CHECK_EQ_INT(kv_pool_seq_len(p, 0), 33);
    kv_pool_stats s;
    kv_pool_stats_get(p, &s);
    CHECK_EQ_INT(s.blocks_used, 2);
    CHECK_EQ_INT(s.blocks_cached, 1); /* block 2 was full: kept for a later prompt */
    CHECK_EQ_INT(s.blocks_free, 13);
    kv_pool_free(p);
}

TEST(prefix_attach_matches_whole_blocks) {
    kv_pool *p = pool_of(16, true);
    CHECK(p);
    int32_t toks[100];
    fill(toks, 100, 1);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, toks, 100, &err), OB_OK, &err, "");
    kv_pool_seq_free(p, 0);
    CHECK_EQ_INT(kv_pool_seq_attach(p, 1, toks, 100, false), 96);
    CHECK_EQ_INT(kv_pool_seq_len(p, 1), 96);
    CHECK_EQ_INT(kv_pool_seq_attach(p, 2, toks, 96, false), 64); /* one token must stay */
    CHECK_EQ_INT(kv_pool_seq_attach(p, 3, toks, 1, false), 0);
    kv_pool_seq_free(p, 2);
    toks[40] = 999; /* differs in block 1 */
    CHECK_EQ_INT(kv_pool_seq_attach(p, 2, toks, 100, false), 32);
    kv_pool_stats s;
    kv_pool_stats_get(p, &s);
    CHECK_EQ_INT(s.hit_blocks, 3 + 2 + 1);
    CHECK_EQ_INT(s.hit_tokens, 6 * KV_BLOCK);
    CHECK_EQ_INT(p->ref[0], 2);
    kv_pool_free(p);
}

TEST(prefix_attach_compares_tokens_not_only_hashes) {
    kv_pool *p = pool_of(16, true);
    CHECK(p);
    int32_t toks[64];
    fill(toks, 64, 1);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, toks, 64, &err), OB_OK, &err, "");
    kv_pool_seq_free(p, 0);
    p->tokens[5] = 12345; /* as if another prompt had the same hash: its tokens differ */
    CHECK_EQ_INT(kv_pool_seq_attach(p, 1, toks, 64, false), 0);
    kv_pool_free(p);
}

/* A freed sequence's partial last block (a tail) is attached after the full blocks before it,
 * for as many tokens as the prompt repeats, leaving the prompt's last token; shared until
 * written, then copied (another holds it) or unlisted (this sequence alone does). */
TEST(prefix_attach_takes_a_freed_tail) {
    kv_pool *p = pool_of(16, true);
    CHECK(p);
    int32_t toks[110];
    fill(toks, 110, 1);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, toks, 100, &err), OB_OK, &err, "");
    kv_pool_seq_free(p, 0);
    kv_pool_stats s;
    kv_pool_stats_get(p, &s);
    CHECK_EQ_INT(s.blocks_cached, 4); /* three full blocks and the tail of 4 positions */
    CHECK_EQ_INT(kv_pool_seq_attach(p, 1, toks, 110, false), 96); /* without: blocks only */
    kv_pool_seq_free(p, 1);
    CHECK_EQ_INT(kv_pool_seq_attach(p, 1, toks, 110, true), 100);
    CHECK_EQ_INT(kv_pool_seq_attach(p, 2, toks, 110, true), 100); /* shared */
    CHECK_EQ_INT(kv_pool_seq_attach(p, 3, toks, 99, true), 98);   /* one token must stay */
    CHECK(kv_pool_seq_table(p, 1)[3] == kv_pool_seq_table(p, 2)[3]);
    /* seq 1 writes position 100: the tail is shared, so it gets a copy of its 4 rows */
    int64_t n_new[NSEQ] = {0, 1, 0, 0};
    CHECK_STATUS(kv_pool_reserve(p, n_new, &err), OB_OK, &err, "");
    int64_t n_copies = 0;
    const kv_copy *cp = kv_pool_copies(p, &n_copies);
    CHECK_EQ_INT(n_copies, 1);
    CHECK(cp[0].src == kv_pool_seq_table(p, 2)[3] && cp[0].n_rows == 100 % KV_BLOCK);
    int64_t pos = 100;
    int32_t sq = 1;
    kv_pool_commit(p, &toks[100], &pos, &sq, 1);
    kv_pool_seq_free(p, 3);
    kv_pool_seq_free(p, 2);
    /* a prompt parting from the tail after 2 of its tokens takes those 2 */
    int32_t other[110];
    memcpy(other, toks, sizeof other);
    other[98] = 9999;
    CHECK_EQ_INT(kv_pool_seq_attach(p, 2, other, 110, true), 98);
    /* after other full blocks, the tail is not found */
    other[3] = 9999;
    kv_pool_seq_free(p, 2);
    CHECK_EQ_INT(kv_pool_seq_attach(p, 2, other, 110, true), 0);
    /* a sequence alone with the tail writes into it: unlisted, nothing copied */
    CHECK_EQ_INT(kv_pool_seq_attach(p, 3, toks, 110, true), 100);
    n_new[1] = 0, n_new[3] = 1;
    CHECK_STATUS(kv_pool_reserve(p, n_new, &err), OB_OK, &err, "");
    kv_pool_copies(p, &n_copies);
    CHECK_EQ_INT(n_copies, 0);
    pos = 100, sq = 3;
    kv_pool_commit(p, &other[100], &pos, &sq, 1);
    CHECK_EQ_INT(kv_pool_seq_attach(p, 0, toks, 110, true), 96);
    kv_pool_free(p);
}

/* A tail is a cached block like the others: the least recently released goes first. */
TEST(tails_are_evicted_like_cached_blocks) {
    kv_pool *p = pool_of(3, true);
    CHECK(p);
    int32_t a[40], b[64];
    fill(a, 40, 1);
    fill(b, 64, 1000);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, a, 40, &err), OB_OK, &err, "");
    kv_pool_seq_free(p, 0); /* a's full block and tail of 8 cached */
    /* released last first, the tail is the least recent: b takes the free block, then it */
    CHECK_STATUS(put(p, 1, b, 64, &err), OB_OK, &err, "");
    CHECK_EQ_INT(kv_pool_seq_attach(p, 0, a, 40, true), 32);
    kv_pool_free(p);
}

TEST(hashing_off_caches_nothing) {
    kv_pool *p = pool_of(8, false);
    CHECK(p);
    int32_t toks[64];
    fill(toks, 64, 1);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, toks, 64, &err), OB_OK, &err, "");
    kv_pool_seq_free(p, 0);
    kv_pool_stats s;
    kv_pool_stats_get(p, &s);
    CHECK_EQ_INT(s.blocks_cached, 0);
    CHECK_EQ_INT(kv_pool_seq_attach(p, 1, toks, 64, false), 0);
    /* and a single sequence gets blocks 0, 1, ... again */
    CHECK_STATUS(put(p, 0, toks, 64, &err), OB_OK, &err, "");
    CHECK(kv_pool_seq_table(p, 0)[0] == 0 && kv_pool_seq_table(p, 0)[1] == 1);
    kv_pool_free(p);
}

TEST(writing_into_a_cached_full_block_unlists_it) {
    kv_pool *p = pool_of(16, true);
    CHECK(p);
    int32_t toks[64];
    fill(toks, 64, 1);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, toks, 64, &err), OB_OK, &err, "");
    kv_pool_seq_truncate(p, 0, 40);
    int32_t other = 77;
    CHECK_STATUS(put(p, 0, &other, 1, &err), OB_OK, &err, ""); /* position 40 of block 1 */
    kv_pool_seq_free(p, 0);
    CHECK_EQ_INT(kv_pool_seq_attach(p, 1, toks, 64, false), 32); /* block 1 no longer matches */
    kv_pool_free(p);
}

TEST(allocation_evicts_least_recently_used_cached_block) {
    kv_pool *p = pool_of(4, true);
    CHECK(p);
    int32_t a[64], b[64];
    fill(a, 64, 1);
    fill(b, 64, 1000);
    ob_err err = {{0}};
    CHECK_STATUS(put(p, 0, a, 64, &err), OB_OK, &err, "");
    kv_pool_seq_free(p, 0); /* a's blocks cached: block 1 least recent, block 0 after it */
    CHECK_STATUS(put(p, 1, b, 64, &err), OB_OK, &err, "");
    kv_pool_seq_free(p, 1);
    kv_pool_stats s;
    kv_pool_stats_get(p, &s);
    CHECK_EQ_INT(s.blocks_cached, 4);
    CHECK_EQ_INT(s.blocks_free, 0);
    int32_t c[32];
    fill(c, 32, 5000);
    CHECK_STATUS(put(p, 2, c, 32, &err), OB_OK, &err, ""); /* evicts a's second block */
    CHECK_EQ_INT(kv_pool_seq_table(p, 2)[0], 1);
    CHECK_EQ_INT(kv_pool_seq_attach(p, 0, a, 64, false), 32);
    CHECK_EQ_INT(kv_pool_seq_attach(p, 1, b, 65, false), 64); /* b's blocks both still cached */
    kv_pool_free(p);
}

TEST(bad_sizes_are_refused) {
    kv_pool *p = NULL;
    ob_err err = {{0}};
    CHECK_STATUS(kv_pool_new(0, 1, 1, true, &p, &err), OB_ERR_ARG, &err, "0 blocks");
    CHECK(p == NULL);
    kv_pool *q = pool_of(2, true);
    int64_t n_new[NSEQ] = {9 * KV_BLOCK, 0, 0, 0}; /* more than 8 blocks per sequence */
    CHECK_STATUS(kv_pool_reserve(q, n_new, &err), OB_ERR_ARG, &err, "at most 8");
    kv_pool_free(q);
}

int main(void) {
    RUN(blocks_come_in_order);
    RUN(exhaustion_changes_nothing);
    RUN(rollback_restores_every_sequence);
    RUN(fork_shares_and_copies_on_write);
    RUN(truncate_releases_blocks);
    RUN(prefix_attach_matches_whole_blocks);
    RUN(prefix_attach_compares_tokens_not_only_hashes);
    RUN(prefix_attach_takes_a_freed_tail);
    RUN(tails_are_evicted_like_cached_blocks);
    RUN(hashing_off_caches_nothing);
    RUN(writing_into_a_cached_full_block_unlists_it);
    RUN(allocation_evicts_least_recently_used_cached_block);
    RUN(bad_sizes_are_refused);
    return t_summary();
}
