/*
 * libFuzzer target for loading a model as a whole: the input is a GGUF file (seeds: the tiny
 * models of make_load_seeds.py, one per architecture), which goes through ob_model_load
 * (metadata into hyperparameters, tensors bound and repacked, the vocabulary), and, when it
 * loads, through a context of a few positions, an evaluation of two tokens, the NaN check of
 * the logits and the sampler, plus a round of the tokenizer. Any status is fine; a crash, a hang,
 * a leak or a sanitizer report is a bug.
 *
 * The loader takes a path, so the input is written to an in-memory file (memfd) and opened
 * through /proc/self/fd, the way a real file is.
 */
#include "outboard.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void exercise(ob_model *m) {
    ob_model_info info;
    ob_model_get_info(m, &info);
    (void)ob_model_warnings(m);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (!ob_tokenize(m, "abc x\n", 6, true, true, &ids, &n_ids, NULL)) ob_tokens_free(ids);
    ob_context_params cp;
    ob_context_params_init(&cp);
    cp.n_ctx = info.n_ctx_train < 8 ? info.n_ctx_train : 8;
    /* two tokens are evaluated: activations for more rows would only let mutated sizes ask
     * for gigabytes of scratch, which the fuzzer reports as running out of memory */
    cp.n_batch = 2;
    cp.n_threads = 1;
    ob_context *c = NULL;
    if (ob_context_new(m, &cp, &c, NULL)) return;
    int32_t toks[2] = {0, (int32_t)(info.n_vocab > 1 ? 1 : 0)};
    ob_sampler_params sp;
    ob_sampler_params_init(&sp);
    ob_sampler *s = NULL;
    if (!ob_eval(c, toks, 2, false, NULL) && !ob_sampler_new(&sp, info.n_vocab, &s, NULL)) {
        int32_t id = ob_sampler_sample(s, ob_logits(c, -1));
        if (id >= info.n_vocab) __builtin_trap(); /* the sampler left the vocabulary */
        ob_detok *d = NULL;
        if (id >= 0 && !ob_detok_new(m, true, &d, NULL)) {
            char out[64];
            ob_detok_push(d, id, out, sizeof out);
            ob_detok_flush(d, out, sizeof out);
            ob_detok_free(d);
        }
    }
    ob_sampler_free(s);
    ob_context_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("model_load_fuzz", 0);
    if (fd < 0) return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ob_model_params mp;
    ob_model_params_init(&mp);
    mp.prefault = false;
    ob_model *m = NULL;
    if (done == size && !ob_model_load(path, &mp, &m, NULL)) exercise(m);
    ob_model_free(m);
    close(fd);
    return 0;
}
