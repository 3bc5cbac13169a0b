/*
 * The public text API over the model's tokenizer (src/tokenizer/): text -> ids, streaming
 * ids -> UTF-8, and the special-token queries a generation loop needs. The vocabulary is
 * loaded with the model; a model whose vocabulary cannot be loaded still evaluates token ids,
 * and these functions then report why there is no tokenizer.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <string.h>

struct ob_detok {
    tok_decoder *dec;
};

void model_vocab_load(ob_model *m) {
    ob_err err = {{0}};
    tok_vocab *v = NULL;
    if (tok_vocab_load(m->file, &v, &err)) {
        m->vocab_err = err;
        return;
    }
    /* prompts of one model repeat their long parts (a system prompt, earlier turns): 32 MiB
     * holds a few 100,000-token conversations */
    tok_vocab_cache_fragments(v, (size_t)32 << 20);
    m->vocab = v;
}

void model_vocab_free(ob_model *m) { tok_vocab_free(m->vocab); }

static ob_status no_vocab(const ob_model *m, ob_err *err) {
    return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: no tokenizer: %s", gguf_name(m->file),
                   m->vocab_err.msg);
}

ob_status ob_tokenize(const ob_model *m, const char *text, size_t len, bool add_special,
                      bool parse_special, int32_t **ids, size_t *n_ids, ob_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!m->vocab) return no_vocab(m, err);
    return tok_encode(m->vocab, text, len, add_special, parse_special, ids, n_ids, err);
}

void ob_tokens_free(int32_t *ids) { ob_free(ids); }

void ob_model_fim_tokens(const ob_model *m, ob_fim_tokens *out) {
    int32_t ids[6] = {-1, -1, -1, -1, -1, -1};
    if (m->vocab) tok_fim_ids(m->vocab, ids);
    *out = (ob_fim_tokens){ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]};
}

bool ob_token_is_eog(const ob_model *m, int32_t id) {
    return m->vocab ? tok_is_eog(m->vocab, id) : id == m->eos_id;
}

ob_status ob_detok_new(const ob_model *m, bool render_special, ob_detok **out, ob_err *err) {
    *out = NULL;
    if (!m->vocab) return no_vocab(m, err);
    ob_detok *d = ob_calloc(1, sizeof *d);
    if (d) d->dec = tok_decoder_new(m->vocab, render_special);
    if (!d || !d->dec) {
        ob_free(d);
        return ob_fail(err, OB_ERR_NOMEM, "detokenizer: out of memory");
    }
    *out = d;
    return OB_OK;
}

void ob_detok_continue(ob_detok *d) { tok_decoder_keep_leading_space(d->dec); }

size_t ob_detok_push(ob_detok *d, int32_t id, char *out, size_t cap) {
    return tok_decoder_push(d->dec, id, out, cap);
}

size_t ob_detok_flush(ob_detok *d, char *out, size_t cap) {
    return tok_decoder_flush(d->dec, out, cap);
}

void ob_detok_free(ob_detok *d) {
    if (!d) return;
    tok_decoder_free(d->dec);
    ob_free(d);
}
