/*
 * The model as the APIs list it (serve_model.h). Ollama's shapes follow its API reference
 * (api/types.go): details {format, family, families, parameter_size, quantization_level},
 * model_info keyed like GGUF metadata ("llama.context_length"), capabilities.
 */
#include "serve/serve_model.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "serve/serve_response.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void serve_model_caps(serve_model_desc *d, const char *t) {
    d->cap_tools = t && (strstr(t, "tools") || strstr(t, "tool_call"));
    d->cap_thinking = t && (strstr(t, "<think>") || strstr(t, "enable_thinking") ||
                            strstr(t, "reasoning_content"));
}

/* FNV-1a over what identifies the file cheaply; hashing gigabytes at start-up to imitate
 * Ollama's sha256 would cost seconds for a field clients only display. */
static void digest_of(const char *path, const struct stat *st, char out[72]) {
    uint64_t h[4] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x100000001b3ull, 0x1ull};
    char key[512];
    int n = snprintf(key, sizeof key, "%s|%lld|%lld", path, (long long)st->st_size,
                     (long long)st->st_mtime);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < n && i < (int)sizeof key; i++) {
            h[k] ^= (unsigned char)key[i] + (unsigned)k;
            h[k] *= 0x100000001b3ull;
        }
    snprintf(out, 72, "%016llx%016llx%016llx%016llx", (unsigned long long)h[0],
             (unsigned long long)h[1], (unsigned long long)h[2], (unsigned long long)h[3]);
}

static void id_from_path(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
    snprintf(out, cap, "%.*s", (int)n, base);
}

ob_status serve_model_desc_init(serve_model_desc *d, const ob_model *m, const char *path,
                                const char *alias, const char *tmpl, int64_t n_ctx,
                                int64_t kv_tokens, ob_err *err) {
    memset(d, 0, sizeof *d);
    struct stat st;
    if (stat(path, &st)) return ob_fail(err, OB_ERR_IO, "%s: cannot stat the model file", path);
    ob_model_info in;
    ob_model_get_info(m, &in);
    if (alias && alias[0])
        snprintf(d->id, sizeof d->id, "%s", alias);
    else
        id_from_path(path, d->id, sizeof d->id);
    snprintf(d->arch, sizeof d->arch, "%s", in.arch ? in.arch : "");
    snprintf(d->quant, sizeof d->quant, "%s", in.type_name ? in.type_name : "");
    digest_of(path, &st, d->digest);
    d->n_ctx_train = in.n_ctx_train;
    d->n_embd = in.n_embd;
    d->n_layer = in.n_layer;
    d->n_head = in.n_head;
    d->n_head_kv = in.n_head_kv;
    d->n_ff = in.n_ff;
    d->n_vocab = in.n_vocab;
    d->n_params = in.n_params;
    d->n_bytes = in.n_bytes;
    d->n_ctx = n_ctx;
    d->kv_tokens = kv_tokens;
    d->modified_at = (int64_t)st.st_mtime;
    if (tmpl && !(d->template_src = ob_strndup(tmpl, strlen(tmpl))))
        return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    serve_model_caps(d, d->template_src);
    return OB_OK;
}

void serve_model_desc_clear(serve_model_desc *d) {
    ob_free(d->template_src);
    memset(d, 0, sizeof *d);
}

bool serve_model_match(const serve_model_desc *d, const char *name) {
    if (!name[0] || !strcmp(name, d->id)) return true;
    size_t n = strlen(name), idn = strlen(d->id);
    /* "id:latest" names the same model; an id that has its own tag must match whole. */
    return n == idn + 7 && !strncmp(name, d->id, idn) && !strcmp(name + idn, ":latest");
}

void serve_model_param_size(uint64_t n, char out[16]) {
    static const struct {
        double div;
        const char *unit;
    } U[] = {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
    for (size_t i = 0; i < sizeof U / sizeof U[0]; i++)
        if ((double)n >= U[i].div) {
            double x = (double)n / U[i].div;
            snprintf(out, 16, x < 10 ? "%.1f%s" : "%.0f%s", x, U[i].unit);
            return;
        }
    snprintf(out, 16, "%llu", (unsigned long long)n);
}

/* OpenAI's four fields, and the context a request may use (the chat page's context bar). */
json_t *serve_models_openai_model(const serve_model_desc *d) {
    return json_pack("{s:s, s:s, s:I, s:s, s:I}", "id", d->id, "object", "model", "created",
                     (json_int_t)d->modified_at, "owned_by", "outboard", "context_length",
                     (json_int_t)d->n_ctx);
}

json_t *serve_models_openai_list(const serve_model_desc *d) {
    return json_pack("{s:s, s:[o]}", "object", "list", "data", serve_models_openai_model(d));
}

static json_t *details(const serve_model_desc *d) {
    char ps[16];
    serve_model_param_size(d->n_params, ps);
    return json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "parent_model", "", "format", "gguf",
                     "family", d->arch, "families", d->arch, "parameter_size", ps,
                     "quantization_level", d->quant);
}

static json_t *tag_entry(const serve_model_desc *d) {
    char at[40], name[300];
    serve_rfc3339(d->modified_at * 1000000000LL, at);
    snprintf(name, sizeof name, "%s%s", d->id, strchr(d->id, ':') ? "" : ":latest");
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "name", name, "model", name, "modified_at",
                     at, "size", (json_int_t)d->n_bytes, "digest", d->digest, "details",
                     details(d));
}

json_t *serve_models_ollama_tags(const serve_model_desc *d) {
    return json_pack("{s:[o]}", "models", tag_entry(d));
}

static json_t *model_info(const serve_model_desc *d) {
    json_t *mi = json_pack("{s:s, s:I}", "general.architecture", d->arch, "general.parameter_count",
                           (json_int_t)d->n_params);
    static const char *const KEYS[] = {
        "context_length",          "embedding_length",    "block_count", "attention.head_count",
        "attention.head_count_kv", "feed_forward_length", "vocab_size"};
    const int64_t vals[] = {d->n_ctx_train, d->n_embd, d->n_layer, d->n_head,
                            d->n_head_kv,   d->n_ff,   d->n_vocab};
    for (size_t i = 0; mi && i < sizeof KEYS / sizeof KEYS[0]; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s.%s", d->arch, KEYS[i]);
        if (json_object_set_new(mi, key, json_integer(vals[i]))) {
            json_decref(mi);
            return NULL;
        }
    }
    return mi;
}

json_t *serve_models_ollama_show(const serve_model_desc *d) {
    char at[40], params[64];
    serve_rfc3339(d->modified_at * 1000000000LL, at);
    snprintf(params, sizeof params, "num_ctx %lld", (long long)d->n_ctx);
    json_t *caps = json_pack("[s]", "completion");
    if (caps && d->cap_tools) json_array_append_new(caps, json_string("tools"));
    if (caps && d->cap_thinking) json_array_append_new(caps, json_string("thinking"));
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "modelfile", "", "parameters", params,
                     "template", d->template_src ? d->template_src : "", "details", details(d),
                     "model_info", model_info(d), "capabilities", caps, "modified_at", at);
}

json_t *serve_models_ollama_ps(const serve_model_desc *d, int64_t expires_unix) {
    json_t *e = tag_entry(d);
    char at[40];
    serve_rfc3339(expires_unix * 1000000000LL, at);
    if (!e || json_object_set_new(e, "expires_at", json_string(at)) ||
        json_object_set_new(e, "size_vram", json_integer(0)) ||
        json_object_set_new(e, "context_length", json_integer(d->n_ctx))) {
        json_decref(e);
        return NULL;
    }
    return json_pack("{s:[o]}", "models", e);
}

json_t *serve_models_ollama_version(void) {
    return json_pack("{s:s}", "version", OB_VERSION_STRING);
}
