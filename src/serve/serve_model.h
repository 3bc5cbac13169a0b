/*
 * What the server says about its model: the description behind GET /v1/models, /api/tags,
 * /api/show and /api/ps, and the name matching that decides a 404. Built once at start-up from
 * ob_model_get_info and the GGUF's metadata; the JSON builders take only this struct, so tests
 * need no model file.
 */
#ifndef OB_SERVE_MODEL_H
#define OB_SERVE_MODEL_H

#include "outboard.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct serve_model_desc {
    char id[256];    /* the name clients use: --alias, else the file name without .gguf */
    char arch[64];   /* "llama" */
    char quant[32];  /* "Q4_K_M"-like type name of most weight bytes */
    char digest[72]; /* "sha256:"-free hex id of the file (size, mtime, path), 64 chars */
    int64_t n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    uint64_t n_params, n_bytes;
    int64_t n_ctx;       /* the server's context per request */
    int64_t kv_tokens;   /* KV pool size in tokens */
    int64_t modified_at; /* file mtime, Unix seconds */
    bool cap_tools;      /* the chat template renders tools */
    bool cap_thinking;   /* the chat template has a reasoning section */
    char *template_src;  /* owned or NULL: the chat template in use (ob_chat_template) */
} serve_model_desc;

/* Fills d from a loaded model, its file's mtime and the chat template in use (tmpl, copied;
 * may be NULL). Errors: OB_ERR_IO naming the path, OB_ERR_NOMEM. On failure the caller
 * clears d. */
ob_status serve_model_desc_init(serve_model_desc *d, const ob_model *m, const char *path,
                                const char *alias, const char *tmpl, int64_t n_ctx,
                                int64_t kv_tokens, ob_err *err);
void serve_model_desc_clear(serve_model_desc *d);
/* Capabilities read from a chat template's source ("tools", "thinking"). */
void serve_model_caps(serve_model_desc *d, const char *tmpl);

/* Whether a requested name means this model: the id itself, "id:latest", or an Ollama-style
 * name whose tag is "latest". An empty name means the default model (OpenAI only). */
bool serve_model_match(const serve_model_desc *d, const char *name);

/* "7.2B", "135M", "260K": the parameter count as Ollama prints it. */
void serve_model_param_size(uint64_t n, char out[16]);

json_t *serve_models_openai_list(const serve_model_desc *d);  /* GET /v1/models */
json_t *serve_models_openai_model(const serve_model_desc *d); /* one entry of it */
json_t *serve_models_ollama_tags(const serve_model_desc *d);  /* GET /api/tags */
json_t *serve_models_ollama_show(const serve_model_desc *d);  /* POST /api/show */
json_t *serve_models_ollama_ps(const serve_model_desc *d, int64_t expires_unix); /* /api/ps */
json_t *serve_models_ollama_version(void); /* GET /api/version */

#endif
