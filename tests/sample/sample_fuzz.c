/*
 * libFuzzer target for the sampler: the input's first bytes are the parameters (temperature,
 * top-k, top-p, min-p, repeat penalty and window, seed: any bit patterns, NaN and infinities
 * included, which ob_sampler_new must refuse or handle) and the rest is the logits as raw
 * floats (NaN, +-inf, denormals, huge values). The sampler must return an id inside the
 * vocabulary or -1 when no logit is finite, and never read or write outside its arrays.
 */
#include "outboard.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct fuzz_params {
    float temp, top_p, min_p, repeat_penalty;
    int32_t top_k, repeat_last_n;
    uint64_t seed;
    uint8_t draws, prompt;
} fuzz_params;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_params fp;
    if (size < sizeof fp + sizeof(float)) return 0;
    memcpy(&fp, data, sizeof fp);
    const size_t n_vocab = (size - sizeof fp) / sizeof(float);
    float *logits = malloc(n_vocab * sizeof *logits);
    if (!logits) return 0;
    memcpy(logits, data + sizeof fp, n_vocab * sizeof *logits);
    ob_sampler_params p = {.temp = fp.temp, .top_k = fp.top_k, .top_p = fp.top_p,
                           .min_p = fp.min_p, .repeat_penalty = fp.repeat_penalty,
                           .repeat_last_n = fp.repeat_last_n % 4096, .seed = fp.seed};
    ob_sampler *s = NULL;
    if (!ob_sampler_new(&p, (int64_t)n_vocab, &s, NULL)) {
        /* a prompt for the penalty window, ids in and out of the vocabulary */
        for (int i = 0; i < fp.prompt % 16; i++) ob_sampler_accept(s, (int32_t)(i * 7) - 3);
        int any_finite = 0;
        for (size_t i = 0; i < n_vocab; i++) any_finite |= isfinite(logits[i]) || logits[i] > 0;
        for (int d = 0; d <= fp.draws % 8; d++) {
            int32_t id = ob_sampler_sample(s, logits);
            if (id < -1 || id >= (int64_t)n_vocab) __builtin_trap();
            if (id == -1 && any_finite && p.repeat_penalty <= 1.0f) __builtin_trap();
            if (id >= 0 && isnan(logits[id])) __builtin_trap(); /* a NaN was drawn */
        }
    }
    ob_sampler_free(s);
    free(logits);
    return 0;
}
