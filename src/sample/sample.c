/*
 * Token sampling: logits -> next token id. The chain, in llama.cpp's default order:
 * repeat penalty over the last repeat_last_n tokens, top-k, top-p, min-p, temperature, then a
 * draw from the remaining distribution with the sampler's own seeded generator (xoshiro256**,
 * so the same seed and logits give the same tokens on every platform). Temperature 0 is greedy
 * (argmax, lowest id on ties) and skips the rest. Under a grammar (ob_sampler_set_matcher) a
 * pick the grammar does not allow is replaced by the chain's pick from the masked logits,
 * found by checking the best candidates one by one when they settle it (choose_allowed).
 *
 * Logits come from model files strangers wrote, so they may hold NaN or infinities: a NaN is
 * never drawn (it counts as -inf), +inf counts as the largest float, and when no candidate is
 * finite the sampler says so (-1) instead of inventing a token. Every comparison below then
 * works on a total order, which the selection and sort rely on to stay inside the array.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "outboard.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The penalty window's limit: its ring is allocated up front. */
#define SAMPLE_MAX_REPEAT_LAST_N (1 << 20)

/* Candidates a draw the grammar refused checks one by one, best first, before masking the
 * whole vocabulary (choose_allowed). Covers greedy and the default top_k of 40 with room for
 * refused ones; a check costs microseconds, a mask of a 262k vocabulary a millisecond or more. */
#define SAMPLE_GRAMMAR_TRIES 64

typedef struct cand {
    int32_t id;
    float logit;
} cand;

struct ob_sampler {
    ob_sampler_params p;
    int64_t n_vocab;
    cand *cands;       /* (n_vocab) working set */
    double *probs;     /* (n_vocab) */
    int32_t *history;  /* (repeat_last_n) ring of recent tokens */
    uint8_t *seen;     /* (n_vocab) zero between calls: marks tokens already penalised */
    int64_t n_hist, hist_pos;
    uint64_t rng[4];
    ob_matcher *matcher; /* borrowed or NULL: the grammar the picks must follow */
    float *masked;       /* (n_vocab) or NULL until first needed: logits with the mask */
};

void ob_sampler_params_init(ob_sampler_params *p) {
    *p = (ob_sampler_params){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                             .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 42};
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t *s) {
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1p-53; }

ob_status ob_sampler_new(const ob_sampler_params *p, int64_t n_vocab, ob_sampler **out,
                         ob_err *err) {
    *out = NULL;
    /* Written as !(x in range) so a NaN parameter fails too. */
    if (n_vocab < 1 || n_vocab > INT32_MAX || !(p->temp >= 0 && p->temp <= FLT_MAX) ||
        p->top_k < 0 || p->repeat_last_n > SAMPLE_MAX_REPEAT_LAST_N ||
        !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repeat_penalty > 0 && p->repeat_penalty <= FLT_MAX) || p->repeat_last_n < 0)
        return ob_fail(err, OB_ERR_ARG,
                       "sampler: temp %g, top_k %d, top_p %g, min_p %g, repeat_penalty %g, "
                       "repeat_last_n %d: expected finite temp >= 0, top_k >= 0, "
                       "0 < top_p <= 1, 0 <= min_p <= 1, finite repeat_penalty > 0, "
                       "0 <= repeat_last_n <= %d", p->temp, p->top_k, p->top_p, p->min_p,
                       p->repeat_penalty, p->repeat_last_n, SAMPLE_MAX_REPEAT_LAST_N);
    ob_sampler *s = ob_calloc(1, sizeof *s);
    if (!s) return ob_fail(err, OB_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->cands = ob_alloc((size_t)n_vocab, sizeof *s->cands);
    s->probs = ob_alloc((size_t)n_vocab, sizeof *s->probs);
    s->history = ob_alloc((size_t)p->repeat_last_n + 1, sizeof *s->history);
    s->seen = ob_calloc((size_t)n_vocab, 1);
    if (!s->cands || !s->probs || !s->history || !s->seen) {
        ob_sampler_free(s);
        return ob_fail(err, OB_ERR_NOMEM, "sampler: out of memory for %lld tokens",
                       (long long)n_vocab);
    }
    uint64_t seed = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&seed);
    *out = s;
    return OB_OK;
}

void ob_sampler_free(ob_sampler *s) {
    if (!s) return;
    ob_free(s->cands);
    ob_free(s->probs);
    ob_free(s->history);
    ob_free(s->seen);
    ob_free(s->masked);
    ob_free(s);
}

void ob_sampler_accept(ob_sampler *s, int32_t token) {
    if (s->p.repeat_last_n == 0) return;
    s->history[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->n_hist < s->p.repeat_last_n) s->n_hist++;
}

/* Descending by logit, ascending id on ties (a total order, so qsort is deterministic). */
static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Moves the k best candidates to the front, sorted (quickselect, then sort the k). */
static void keep_top_k(cand *c, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        cand pivot = c[(lo + hi) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (cand_cmp(&c[i], &pivot) < 0) i++;
            while (cand_cmp(&c[j], &pivot) > 0) j--;
            if (i <= j) {
                cand t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
    qsort(c, (size_t)k, sizeof *c, cand_cmp);
}

/* NaN -> -inf (never drawn), +inf -> FLT_MAX (so differences of logits stay numbers). */
static float sane_logit(float x) {
    if (isnan(x)) return -INFINITY;
    return x > FLT_MAX ? FLT_MAX : x;
}

static void apply_penalty(ob_sampler *s) {
    if (s->p.repeat_penalty == 1.0f) return;
    /* Each distinct recent token is penalised once, however often it occurred (marked in
     * `seen`, so a long window costs its length, not its square). */
    for (int64_t i = 0; i < s->n_hist; i++) {
        int32_t id = s->history[i];
        if (id < 0 || id >= s->n_vocab || s->seen[id]) continue;
        s->seen[id] = 1;
        float *l = &s->cands[id].logit;
        *l = sane_logit(*l > 0 ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty);
    }
    for (int64_t i = 0; i < s->n_hist; i++) {
        int32_t id = s->history[i];
        if (id >= 0 && id < s->n_vocab) s->seen[id] = 0;
    }
}

/* probs[0..n) = softmax(cands[0..n).logit / temp); cands sorted, so [0] is the max. */
static void softmax_cands(ob_sampler *s, int64_t n, float temp) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        /* in double: the difference of two finite floats can overflow a float */
        s->probs[i] = exp(((double)s->cands[i].logit - (double)s->cands[0].logit) / temp);
        sum += s->probs[i];
    }
    for (int64_t i = 0; i < n; i++) s->probs[i] /= sum;
}

void ob_sampler_set_matcher(ob_sampler *s, ob_matcher *m) { s->matcher = m; }

static int32_t draw(ob_sampler *s, int64_t n);

/* cands = the logits made sane, in id order, with the repeat penalty applied. */
static void fill_cands(ob_sampler *s, const float *logits) {
    /* Locals: without strict aliasing a store through cands could change s's fields, so they
     * would be reloaded at every token of the vocabulary. */
    cand *c = s->cands;
    const int64_t nv = s->n_vocab;
    for (int64_t i = 0; i < nv; i++) c[i] = (cand){(int32_t)i, sane_logit(logits[i])};
    apply_penalty(s);
}

/* The chain's choice from logits, recording nothing; -1 when no logit is finite. */
static int32_t choose(ob_sampler *s, const float *logits) {
    const int64_t nv = s->n_vocab;
    fill_cands(s, logits);
    if (s->p.temp <= 0.0f) {
        int64_t best = 0;
        for (int64_t i = 1; i < nv; i++)
            if (s->cands[i].logit > s->cands[best].logit) best = i;
        if (s->cands[best].logit == -INFINITY) return -1;
        return (int32_t)best;
    }
    int64_t n = nv;
    if (s->p.top_k > 0 && s->p.top_k < nv) n = s->p.top_k;
    keep_top_k(s->cands, nv, n);
    /* -inf candidates have probability 0: drop them so the draw's fallback (the last one kept)
     * can never land on one. */
    while (n > 0 && s->cands[n - 1].logit == -INFINITY) n--;
    return draw(s, n);
}

/* The chain after top-k: top-p, min-p and temperature over cands[0..n) (sorted, finite), then
 * the draw. -1 when n is 0. */
static int32_t draw(ob_sampler *s, int64_t n) {
    if (n == 0) return -1;
    if (s->p.top_p < 1.0f) { /* smallest prefix whose probability reaches top_p */
        softmax_cands(s, n, 1.0f);
        double cum = 0;
        for (int64_t i = 0; i < n; i++) {
            cum += s->probs[i];
            if (cum >= s->p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (s->p.min_p > 0.0f) { /* keep p >= min_p * p_max, i.e. logit >= max + log(min_p) */
        const float floor = s->cands[0].logit + logf(s->p.min_p);
        int64_t keep = 1;
        while (keep < n && s->cands[keep].logit >= floor) keep++;
        n = keep;
    }
    softmax_cands(s, n, s->p.temp);
    double u = rng_uniform(s->rng), cum = 0;
    for (int64_t i = 0; i < n; i++) {
        cum += s->probs[i];
        if (u < cum) return s->cands[i].id;
    }
    return s->cands[n - 1].id;
}

/* Restores the heap order of h[0..n) (the worst candidate at the root) below position i. */
static void sift_down(cand *h, int64_t n, int64_t i) {
    for (;;) {
        int64_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cand_cmp(&h[l], &h[w]) > 0) w = l;
        if (r < n && cand_cmp(&h[r], &h[w]) > 0) w = r;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* The k best of s->cands, sorted, into best[0..k): one pass that compares most candidates
 * with the worst of the k kept so far only (a heap), cheaper than a quickselect that moves
 * the whole array. 0 < k <= n_vocab. */
static void best_k(const ob_sampler *s, cand *best, int64_t k) {
    if (k <= 0) return;
    for (int64_t i = 0; i < k; i++) {
        best[i] = s->cands[i];
        for (int64_t j = i; j > 0 && cand_cmp(&best[j], &best[(j - 1) / 2]) > 0; j = (j - 1) / 2) {
            cand t = best[j];
            best[j] = best[(j - 1) / 2];
            best[(j - 1) / 2] = t;
        }
    }
    const cand *c = s->cands;
    const int64_t nv = s->n_vocab;
    float floor = best[0].logit; /* the worst kept: anything below it is out at one compare */
    for (int64_t i = k; i < nv; i++) {
        if (c[i].logit < floor || cand_cmp(&c[i], &best[0]) >= 0) continue;
        best[0] = c[i];
        sift_down(best, k, 0);
        floor = best[0].logit;
    }
    qsort(best, (size_t)k, sizeof *best, cand_cmp);
}

/* The chain's choice over the masked logits, found from the best candidates alone when it
 * can be: after top-k, the chain sees only the top_k best allowed tokens (greedy: the best
 * one), so when they lie among the SAMPLE_GRAMMAR_TRIES best candidates, checking those one
 * token at a time (a few microseconds each) picks what masking the whole vocabulary (a
 * memory pass over every token, or a trie walk for a state not seen before) would pick, with
 * the same draw from the generator. Needs s->cands to hold every candidate with its
 * penalised logit, as fill_cands and choose leave it (overwritten here). Returns the pick, -1
 * when no allowed token has a finite logit, -2 when the best candidates do not settle it
 * (top-k off or wider than the tries, or fewer allowed among them than top-k needs). */
static int32_t choose_allowed(ob_sampler *s) {
    const int64_t nv = s->n_vocab;
    const int64_t need = s->p.temp <= 0.0f ? 1 : s->p.top_k;
    const int64_t tries = nv < SAMPLE_GRAMMAR_TRIES ? nv : SAMPLE_GRAMMAR_TRIES;
    if (need <= 0 || need > tries) return -2;
    cand best[SAMPLE_GRAMMAR_TRIES];
    best_k(s, best, tries);
    int64_t n = 0, i = 0;
    /* Past the first -inf every candidate is -inf: the allowed finite ones are all found. */
    for (; i < tries && n < need && best[i].logit != -INFINITY; i++)
        if (ob_matcher_allows(s->matcher, best[i].id)) s->cands[n++] = best[i];
    bool settled = n == need || i == nv || (i < tries && best[i].logit == -INFINITY);
    if (!settled) return -2;
    if (s->p.temp <= 0.0f) return n ? s->cands[0].id : -1;
    return draw(s, n);
}

int32_t ob_sampler_sample(ob_sampler *s, const float *logits) {
    int32_t id;
    /* Under a grammar: the unconstrained choice stands when the grammar allows it (a check of
     * one token's bytes); otherwise the choice is made again among the allowed tokens, from the
     * best candidates when they settle it, else with every disallowed token masked. Drawing
     * first and falling back to the masked distribution picks each allowed token with its
     * probability renormalised over the allowed ones, as masking first would. Greedy goes
     * straight to the best candidates: the first of them is the argmax, so the pass that finds
     * them replaces the argmax's pass. */
    if (s->matcher && s->p.temp <= 0.0f) {
        fill_cands(s, logits);
        id = choose_allowed(s);
    } else {
        id = choose(s, logits);
        if (id >= 0 && s->matcher && !ob_matcher_allows(s->matcher, id)) id = choose_allowed(s);
    }
    if (id == -2) {
        if (!s->masked) s->masked = ob_alloc((size_t)s->n_vocab, sizeof *s->masked);
        if (!s->masked) return -1;
        memcpy(s->masked, logits, (size_t)s->n_vocab * sizeof *logits);
        if (ob_matcher_mask(s->matcher, s->masked, NULL)) return -1;
        id = choose(s, s->masked);
    }
    if (id < 0 || (s->matcher && ob_matcher_accept(s->matcher, id, NULL))) return -1;
    ob_sampler_accept(s, id);
    return id;
}
