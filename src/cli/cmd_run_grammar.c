/*
 * `outboard run --grammar FILE` / `--json-schema FILE`: the file is compiled before generation
 * starts, so a grammar error is reported (with the file's name and line:column) before any
 * token is drawn; the sampler then follows it (ob_sampler_set_matcher).
 */
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>

#define CLI_MAX_GRAMMAR_FILE (4u << 20)

ob_status cli_grammar_open(cli_grammar *g, const ob_model *m, const char *gbnf_file,
                           const char *schema_file, ob_err *err) {
    const char *path = gbnf_file ? gbnf_file : schema_file;
    if (!path) return OB_OK;
    const cli_file_use use = {gbnf_file ? "--grammar" : "--json-schema", CLI_MAX_GRAMMAR_FILE,
                              true};
    char *text = NULL;
    size_t len = 0;
    ob_status st = cli_read_file(path, &use, &text, &len, err);
    if (st) return st;
    st = gbnf_file ? ob_grammar_new(text, len, NULL, &g->grammar, err)
                   : ob_grammar_from_json_schema(text, len, &g->grammar, err);
    ob_free(text);
    if (st) {
        char prefix[300];
        snprintf(prefix, sizeof prefix, "%s %.256s: ", use.flag, path);
        ob_err_prefix(err, prefix);
        return st;
    }
    if ((st = ob_vocab_trie_new(m, &g->trie, err)) ||
        (st = ob_matcher_new(g->grammar, g->trie, &g->matcher, err)))
        return st;
    return OB_OK;
}

void cli_grammar_close(cli_grammar *g) {
    ob_matcher_free(g->matcher);
    ob_vocab_trie_free(g->trie);
    ob_grammar_free(g->grammar);
    *g = (cli_grammar){0};
}
