/*
 * Helper for tests/chat/test_output_templates.py: parses one model output read from stdin and
 * prints the result as JSON, so the Python test can compare it with what jinja2 rendered from
 * the real chat templates.
 *
 *   output_tool FAMILY [--stream] [--strict] [--prompt FILE] [--tools FILE] < generated.txt
 *
 * --stream feeds the text one byte at a time; --prompt computes the flags from the rendered
 * prompt (chat_output_prompt_flags); --tools passes the request's tools array. Prints
 *   {"content": .., "reasoning": .., "tool_calls": [{"id", "name", "arguments"}], "invalid": n}
 * and exits 0, or prints the error to stderr and exits 1 (2 on bad usage).
 */
#include "chat/output.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    *len = n;
    return buf;
}

static ob_status parse_stream(chat_family fam, unsigned flags, const char *text, size_t len,
                              const char *tools, size_t tlen, chat_output *out, ob_err *err) {
    chat_output_stream *s = chat_output_stream_new(fam, flags);
    if (!s) return OB_ERR_NOMEM;
    ob_status st = chat_output_stream_set_tools(s, tools, tlen, err);
    for (size_t i = 0; i < len && !st; i++) st = chat_output_stream_feed(s, text + i, 1, NULL, err);
    if (!st) st = chat_output_stream_finish(s, NULL, out, err);
    chat_output_stream_free(s);
    return st;
}

static void print_result(const chat_output *o) {
    json_t *root = json_object(), *calls = json_array();
    json_object_set_new(root, "content", json_stringn(o->content, o->content_len));
    json_object_set_new(root, "reasoning", json_stringn(o->reasoning, o->reasoning_len));
    for (size_t i = 0; i < o->n_calls; i++) {
        json_error_t je;
        json_t *c = json_object();
        json_object_set_new(c, "id", o->calls[i].id ? json_string(o->calls[i].id) : json_null());
        json_object_set_new(c, "name", json_string(o->calls[i].name));
        json_object_set_new(c, "arguments", json_loads(o->calls[i].arguments, 0, &je));
        json_array_append_new(calls, c);
    }
    json_object_set_new(root, "tool_calls", calls);
    json_object_set_new(root, "invalid", json_integer((json_int_t)o->n_invalid));
    char *txt = json_dumps(root, JSON_COMPACT);
    printf("%s\n", txt ? txt : "null");
    free(txt);
    json_decref(root);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: output_tool FAMILY [--stream] [--strict] [--prompt FILE]\n");
        return 2;
    }
    ob_err err = {{0}};
    chat_family fam;
    if (chat_family_from_name(argv[1], &fam, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    unsigned flags = 0;
    int stream = 0;
    char *tools = NULL;
    size_t tlen = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--stream")) {
            stream = 1;
        } else if (!strcmp(argv[i], "--strict")) {
            flags |= CHAT_OUTPUT_STRICT;
        } else if (!strcmp(argv[i], "--tools") && i + 1 < argc) {
            FILE *f = fopen(argv[++i], "rb");
            tools = f ? slurp(f, &tlen) : NULL;
            if (f) fclose(f);
            if (!tools) {
                fprintf(stderr, "%s: cannot read\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) {
            FILE *f = fopen(argv[++i], "rb");
            size_t n = 0;
            char *p = f ? slurp(f, &n) : NULL;
            if (f) fclose(f);
            if (!p) {
                fprintf(stderr, "%s: cannot read\n", argv[i]);
                return 2;
            }
            flags |= chat_output_prompt_flags(fam, p, n);
            free(p);
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    size_t len = 0;
    char *text = slurp(stdin, &len);
    chat_output out;
    ob_status st = stream ? parse_stream(fam, flags, text ? text : "", len, tools, tlen, &out, &err)
                          : chat_output_parse_tools(fam, text ? text : "", len, flags, tools, tlen,
                                                    &out, &err);
    free(text);
    free(tools);
    if (st) {
        fprintf(stderr, "%s: %s\n", ob_status_name(st), err.msg);
        return 1;
    }
    print_result(&out);
    chat_output_clear(&out);
    return 0;
}
