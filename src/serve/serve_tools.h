/*
 * Request fields about tools and structured output (serve_tools.c); the parsers of both
 * dialects call these after serve_req_parse_tools.
 */
#ifndef OB_SERVE_TOOLS_H
#define OB_SERVE_TOOLS_H

#include "serve/serve_request.h"

/* "tool_choice": "none" | "auto" | "required" | {"type": "function", "function": {"name"}};
 * a named function must be one of tools[]. */
int serve_req_parse_tool_choice(serve_gen_req *r, const json_t *body, serve_error *e);
/* OpenAI "response_format": {"type": "text" | "json_object" | "json_schema", ...}. */
int serve_req_parse_response_format(serve_gen_req *r, const json_t *body, serve_error *e);
/* Ollama "format": "json" or a JSON schema object. */
int serve_req_parse_ollama_format(serve_gen_req *r, const json_t *body, serve_error *e);

#endif
