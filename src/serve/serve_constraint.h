/*
 * Grammar-constrained output of a request (serve_constraint.c): the `grammar` field, the
 * response format (OpenAI response_format, Ollama format) and a required tool choice.
 */
#ifndef OB_SERVE_CONSTRAINT_H
#define OB_SERVE_CONSTRAINT_H

#include "outboard.h"
#include "serve/serve_request.h"

/* "grammar": GBNF text (a string) kept in r->grammar; compiled by serve_constraint_build. */
int serve_req_parse_grammar(serve_gen_req *r, const json_t *body, serve_error *e);

/* Whether anything constrains r's output (then a vocabulary trie is needed). */
bool serve_constraint_wanted(const serve_gen_req *r);

/* The grammar r's output must follow in *out (new, ob_grammar_free), or NULL when nothing
 * constrains it. chat gives the model's tool-call format, trie (borrowed; may be NULL) which
 * of its markers are control tokens. A grammar that does not compile or a
 * schema keyword that cannot be enforced is a 400 naming the field and the keyword; a required
 * tool_choice on a model whose tool-call format is not supported is a 400 saying so. */
int serve_constraint_build(const serve_gen_req *r, const ob_chat *chat,
                           const ob_vocab_trie *trie, ob_grammar **out, serve_error *e);

#endif
