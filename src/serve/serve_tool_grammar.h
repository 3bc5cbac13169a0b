/*
 * The grammar of a forced tool call (tool_choice "required" or a named function) in the
 * model's own tool-call format, so that what the model writes is a call the output parser
 * reads back to a declared tool with arguments that match the tool's parameter schema.
 */
#ifndef OB_SERVE_TOOL_GRAMMAR_H
#define OB_SERVE_TOOL_GRAMMAR_H

#include "serve/serve_request.h"

/* Most calls one answer holds when the request allows parallel calls: enough for the
 * several-at-once answers agents ask for, and a bound on a small model that would otherwise
 * start call after call until it runs out of tokens. */
#define SERVE_TOOL_MAX_CALLS 4

/* GBNF (new, ob_free) whose root is one call, or 1..SERVE_TOOL_MAX_CALLS calls when
 * r->parallel_tool_calls, of the tools r allows (all of r->tools, or the one named by
 * tool_choice), written as `format` (ob_chat_format) writes them: "hermes" (<tool_call> JSON),
 * "llama3" (a bare JSON object; one call), "qwen3-coder" (<function=...><parameter=...> XML,
 * Qwen3-Coder and Qwen3.5), "mistral", "granite", "command-r7b", "deepseek-r1",
 * "deepseek-v3.1", "gpt-oss" (one call), "gemma4" (<|tool_call>call:f{...}<tool_call|>, the
 * arguments in Gemma 4's literals). Each marker that is a control token of trie's
 * vocabulary (borrowed; may be NULL) is written as that token (<[id]>), any other as text.
 * NULL with e set: a 400 for another format or for a schema keyword that cannot be enforced
 * (named). */
char *serve_tool_grammar(const serve_gen_req *r, const char *format, const ob_vocab_trie *trie,
                         serve_error *e);

#endif
