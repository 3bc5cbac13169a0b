/*
 * A helper the fill-in-the-middle tests drive: `fim_tool MODEL.gguf N_CTX DIALECT < BODY`
 * parses BODY as a request of DIALECT ("infill": POST /infill; "completions": POST
 * /v1/completions; "generate": POST /api/generate) and prints the prompt's token ids the
 * server would evaluate, space-separated on one line, or "error STATUS: message".
 */
#include "serve/serve_prompt.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: fim_tool MODEL.gguf N_CTX infill|completions|generate < BODY\n");
        return 2;
    }
    static char body[1 << 20];
    size_t len = fread(body, 1, sizeof body - 1, stdin);
    body[len] = '\0';
    ob_err err = {{0}};
    ob_model *m = NULL;
    if (ob_model_load(argv[1], NULL, &m, &err)) {
        fprintf(stderr, "fim_tool: %s\n", err.msg);
        return 1;
    }
    serve_prompter p;
    if (serve_prompter_init(&p, m, atoll(argv[2]), &err)) {
        fprintf(stderr, "fim_tool: %s\n", err.msg);
        ob_model_free(m);
        return 1;
    }
    int (*parse)(const char *, size_t, const serve_limits *, serve_gen_req **, serve_error *) =
        !strcmp(argv[3], "infill")        ? serve_infill_parse
        : !strcmp(argv[3], "completions") ? serve_openai_completion_parse
                                          : serve_ollama_generate_parse;
    ob_model_info info;
    ob_model_get_info(m, &info);
    serve_limits lim = {info.n_vocab};
    serve_gen_req *r = NULL;
    serve_error e;
    int32_t *ids = NULL;
    size_t n = 0;
    if (parse(body, len, &lim, &r, &e) || serve_prompt_tokens(&p, r, 0, &ids, &n, NULL, &e)) {
        printf("error %d: %s\n", e.status, e.message);
    } else {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    ob_free(ids);
    serve_gen_req_free(r);
    serve_prompter_clear(&p);
    ob_model_free(m);
    return 0;
}
