/*
 * Tools and structured output in requests: tools[] (OpenAI function tools; Ollama uses the
 * same shape), tool_choice, and the response format (OpenAI response_format, Ollama format),
 * normalised to {"type": "json_object"} or {"type": "json_schema", "schema": {...}}.
 */
#include "serve/serve_request.h"

#include "core/alloc.h"
#include "serve/serve_json.h"
#include "serve/serve_tools.h"

#include <string.h>

/* OpenAI's rule for function names, with '.' as Ollama's tools use it. */
static bool tool_name_ok(const char *s, size_t n) {
    if (n == 0 || n > SERVE_MAX_TOOL_NAME) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) return false;
    }
    return true;
}

static int tool_parse(const json_t *tools, size_t i, serve_error *e) {
    char p[SERVE_PATH_MAX], fp[SERVE_PATH_MAX];
    serve_path_index(p, sizeof p, "tools", i);
    json_t *t = json_array_get(tools, i);
    if (!json_is_object(t)) return serve_json_type_error(e, p, "an object", t);
    const char *type = "function", *name = NULL, *desc;
    size_t n = 0;
    if (serve_json_get_string(t, p, "type", SERVE_MAX_NAME, &type, NULL, e) < 0) return -1;
    serve_path_key(fp, sizeof fp, p, "type");
    if (strcmp(type, "function"))
        return serve_error_bad(e, "invalid_value", fp, "%s: expected \"function\", got \"%s\"", fp,
                               type);
    json_t *fn = NULL, *params;
    if (serve_json_get_object(t, p, "function", &fn, e) < 0) return -1;
    serve_path_key(fp, sizeof fp, p, "function");
    if (!fn) return serve_error_bad(e, "missing_field", fp, "%s: required, got nothing", fp);
    if (serve_json_get_string(fn, fp, "name", SERVE_MAX_TOOL_NAME * 4, &name, &n, e) < 0) return -1;
    char np[SERVE_PATH_MAX];
    serve_path_key(np, sizeof np, fp, "name");
    if (!name) return serve_error_bad(e, "missing_field", np, "%s: required, got nothing", np);
    if (!tool_name_ok(name, n))
        return serve_error_bad(e, "invalid_value", np,
                               "%s: expected 1 to %d of A-Z a-z 0-9 _ - ., got \"%s\"", np,
                               SERVE_MAX_TOOL_NAME, name);
    for (size_t j = 0; j < i; j++) {
        const char *other = json_string_value(
            json_object_get(json_object_get(json_array_get(tools, j), "function"), "name"));
        if (other && !strcmp(other, name))
            return serve_error_bad(e, "invalid_value", np, "%s: \"%s\" is also tools[%zu]'s name",
                                   np, name, j);
    }
    bool strict;
    if (serve_json_get_string(fn, fp, "description", SERVE_MAX_TEXT, &desc, NULL, e) < 0 ||
        serve_json_get_object(fn, fp, "parameters", &params, e) < 0 ||
        serve_json_get_bool(fn, fp, "strict", &strict, e) < 0)
        return -1;
    return 0;
}

int serve_req_add_function_tool(serve_gen_req *r, const char *name, const char *desc,
                                json_t *params, serve_error *e) {
    json_t *fn = json_pack("{s:s, s:o}", "name", name, "parameters",
                           params ? json_incref(params) : json_object());
    if (fn && desc) json_object_set_new(fn, "description", json_string(desc));
    json_t *tool = fn ? json_pack("{s:s, s:o}", "type", "function", "function", fn) : NULL;
    if (!r->tools && !(r->tools = json_array())) {
        json_decref(tool);
        return serve_req_nomem(e, "the tools");
    }
    return !tool || json_array_append_new(r->tools, tool) ? serve_req_nomem(e, "the tools") : 0;
}

int serve_req_parse_tools(serve_gen_req *r, const json_t *body, serve_error *e) {
    json_t *tools = NULL;
    int got = serve_json_get_array(body, "", "tools", &tools, e);
    if (got <= 0) return got;
    if (json_array_size(tools) > SERVE_MAX_TOOLS)
        return serve_error_bad(e, "limit_exceeded", "tools", "tools: %zu tools, the limit is %d",
                               json_array_size(tools), SERVE_MAX_TOOLS);
    for (size_t i = 0; i < json_array_size(tools); i++)
        if (tool_parse(tools, i, e)) return -1;
    if (json_array_size(tools) > 0) r->tools = json_incref(tools);
    return 0;
}

static bool has_tool(const serve_gen_req *r, const char *name) {
    for (size_t i = 0; r->tools && i < json_array_size(r->tools); i++) {
        json_t *fn = json_object_get(json_array_get(r->tools, i), "function");
        const char *n = json_string_value(json_object_get(fn, "name"));
        if (n && !strcmp(n, name)) return true;
    }
    return false;
}

static int tool_choice_object(serve_gen_req *r, const json_t *v, serve_error *e) {
    const char *type = NULL, *name = NULL;
    size_t n = 0;
    json_t *fn = NULL;
    if (serve_json_get_string(v, "tool_choice", "type", SERVE_MAX_NAME, &type, NULL, e) < 0 ||
        serve_json_get_object(v, "tool_choice", "function", &fn, e) < 0)
        return -1;
    if (!type || strcmp(type, "function"))
        return serve_error_bad(e, "invalid_value", "tool_choice.type",
                               "tool_choice.type: expected \"function\", got %s%s%s",
                               type ? "\"" : "", type ? type : "nothing", type ? "\"" : "");
    if (fn &&
        serve_json_get_string(fn, "tool_choice.function", "name", SERVE_MAX_NAME, &name, &n, e) < 0)
        return -1;
    if (!name)
        return serve_error_bad(e, "missing_field", "tool_choice.function.name",
                               "tool_choice.function.name: required, got nothing");
    if (!has_tool(r, name))
        return serve_error_bad(e, "invalid_value", "tool_choice.function.name",
                               "tool_choice.function.name: \"%s\" is not one of tools[]", name);
    r->tool_choice = SERVE_TOOL_CHOICE_FUNCTION;
    return serve_req_strdup(&r->tool_choice_name, name, n, e);
}

int serve_req_parse_tool_choice(serve_gen_req *r, const json_t *body, serve_error *e) {
    json_t *v = json_object_get(body, "tool_choice");
    if (!v || json_is_null(v)) return 0;
    if (json_is_object(v)) return tool_choice_object(r, v, e);
    if (!json_is_string(v))
        return serve_json_type_error(e, "tool_choice",
                                     "\"none\", \"auto\", \"required\" or an object", v);
    const char *s = json_string_value(v);
    if (!strcmp(s, "auto"))
        r->tool_choice = SERVE_TOOL_CHOICE_AUTO;
    else if (!strcmp(s, "none"))
        r->tool_choice = SERVE_TOOL_CHOICE_NONE;
    else if (!strcmp(s, "required"))
        r->tool_choice = SERVE_TOOL_CHOICE_REQUIRED;
    else
        return serve_error_bad(e, "invalid_value", "tool_choice",
                               "tool_choice: expected \"none\", \"auto\" or \"required\", got "
                               "\"%.64s\"",
                               s);
    if (r->tool_choice == SERVE_TOOL_CHOICE_REQUIRED && !r->tools)
        return serve_error_bad(e, "invalid_value", "tool_choice",
                               "tool_choice: \"required\" needs tools, got none");
    return 0;
}

static int format_set(serve_gen_req *r, const char *type, json_t *schema, serve_error *e) {
    json_t *f = json_pack("{s:s}", "type", type);
    if (!f || (schema && json_object_set(f, "schema", schema))) {
        json_decref(f);
        return serve_req_nomem(e, "the response format");
    }
    json_decref(r->response_format);
    r->response_format = f;
    return 0;
}

int serve_req_parse_response_format(serve_gen_req *r, const json_t *body, serve_error *e) {
    json_t *rf = NULL, *js = NULL, *schema = NULL;
    const char *type = NULL, *name = NULL;
    int got = serve_json_get_object(body, "", "response_format", &rf, e);
    if (got <= 0) return got;
    if (serve_json_get_string(rf, "response_format", "type", SERVE_MAX_NAME, &type, NULL, e) < 0)
        return -1;
    if (!type)
        return serve_error_bad(e, "missing_field", "response_format.type",
                               "response_format.type: required, got nothing");
    if (!strcmp(type, "text")) return 0;
    if (!strcmp(type, "json_object")) return format_set(r, "json_object", NULL, e);
    if (strcmp(type, "json_schema"))
        return serve_error_bad(e, "invalid_value", "response_format.type",
                               "response_format.type: expected \"text\", \"json_object\" or "
                               "\"json_schema\", got \"%.64s\"",
                               type);
    if (serve_json_get_object(rf, "response_format", "json_schema", &js, e) < 0) return -1;
    if (!js)
        return serve_error_bad(e, "missing_field", "response_format.json_schema",
                               "response_format.json_schema: required for type json_schema");
    if (serve_json_get_string(js, "response_format.json_schema", "name", SERVE_MAX_NAME, &name,
                              NULL, e) < 0 ||
        serve_json_get_object(js, "response_format.json_schema", "schema", &schema, e) < 0)
        return -1;
    return format_set(r, schema ? "json_schema" : "json_object", schema, e);
}

int serve_req_parse_ollama_format(serve_gen_req *r, const json_t *body, serve_error *e) {
    json_t *v = json_object_get(body, "format");
    if (!v || json_is_null(v)) return 0;
    if (json_is_object(v)) return format_set(r, "json_schema", v, e);
    if (!json_is_string(v))
        return serve_json_type_error(e, "format", "\"json\" or a JSON schema object", v);
    const char *s = json_string_value(v);
    if (!s[0]) return 0;
    if (!strcmp(s, "json")) return format_set(r, "json_object", NULL, e);
    return serve_error_bad(e, "invalid_value", "format",
                           "format: expected \"json\" or a JSON schema object, got \"%.64s\"", s);
}
