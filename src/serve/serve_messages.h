/*
 * Chat messages of either dialect, checked and rewritten into the one form the chat template
 * reads (serve_messages.c): {"role", "content": string or null, "name", "tool_calls": [{"id",
 * "type": "function", "function": {"name", "arguments": object}}], "tool_call_id",
 * "reasoning_content"}.
 */
#ifndef OB_SERVE_MESSAGES_H
#define OB_SERVE_MESSAGES_H

#include "serve/serve_request.h"

/* body.messages (required, 1..SERVE_MAX_MESSAGES entries) into r->messages. Errors name the
 * path: "messages[2].content: expected a string or an array of content parts, got number". */
int serve_messages_parse(serve_gen_req *r, const json_t *body, serve_error *e);

#endif
