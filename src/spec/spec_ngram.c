/*
 * Prompt lookup (spec.h): the draft is what followed the longest earlier occurrence of the
 * sequence's most recent tokens. One backward scan over the history per pass: a history of a
 * few thousand tokens costs microseconds, against milliseconds for a forward pass, so no index
 * is kept (an index would have to follow every accepted and rejected token).
 */
#include "spec/spec.h"

int spec_ngram_draft(const int32_t *hist, int64_t n, int max, int32_t *out, int *match_len) {
    if (match_len) *match_len = 0;
    if (n < SPEC_NGRAM_MIN + 1 || max < 1) return 0;
    const int32_t last = hist[n - 1];
    int64_t best_end = -1; /* hist[best_end] matches hist[n - 1] */
    int best_len = 0;
    /* Candidates end at j < n - 1 with a token after them; scanning from the end makes the
     * most recent of equally long matches win. */
    for (int64_t j = n - 2; j >= SPEC_NGRAM_MIN - 1; j--) {
        if (hist[j] != last) continue;
        int len = 1;
        while (len < SPEC_NGRAM_MAX && j - len >= 0 && hist[j - len] == hist[n - 1 - len])
            len++;
        if (len > best_len) {
            best_len = len;
            best_end = j;
            if (len == SPEC_NGRAM_MAX) break;
        }
    }
    if (best_len < SPEC_NGRAM_MIN) return 0;
    int got = 0;
    for (int64_t i = best_end + 1; i < n && got < max; i++)
        out[got++] = hist[i];
    if (match_len) *match_len = best_len;
    return got;
}
