/*
 * `outboard policy check FILE [SAMPLES.json]`: validates a routing policy (serve --policy) and,
 * given sample requests, prints where each would go, with the same decision function the
 * server uses. Nothing is sent anywhere.
 *
 * SAMPLES.json is an array of objects describing requests:
 *   {"name": "...", "model": "big", "local": false, "api_key": "...",
 *    "route": "local|upstream|auto", "headers": ["X-Private"], "body": "request text",
 *    "queue": 12, "prompt_tokens": 9000, "context": 4096, "tok_s": 3.5}
 * Missing fields mean: the model is served here, no key, no headers, an empty body, nothing
 * waiting, a prompt that fits, speed not measured.
 */
#include "cli/cli.h"
#include "serve/serve_json.h"
#include "serve/serve_policy.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char USAGE[] =
    "usage: outboard policy check POLICY.json [SAMPLES.json]\n"
    "  Validates a routing policy for `outboard serve --policy`: prints its upstreams and rules\n"
    "  in the order they are tried, or the first error with the field's path. With SAMPLES.json\n"
    "  (an array of sample requests; see the README), prints where each would go and why.\n";

static void print_rule(const serve_policy *p, const serve_policy_rule *r) {
    const serve_policy_upstream *u = serve_policy_upstream_at(p, r->upstream);
    printf("  rule %-16s -> %s", r->name, u->name);
    if (r->n_models) {
        printf("  models");
        for (size_t i = 0; i < r->n_models; i++) printf("%s%s", i ? "," : " ", r->models[i]);
    }
    if (r->n_api_keys) printf("  %zu api key%s", r->n_api_keys, r->n_api_keys > 1 ? "s" : "");
    if (r->requested) printf("  when asked (X-Outboard-Route: upstream)");
    if (r->has_when) {
        printf("  when");
        if (r->when_model_missing) printf(" model_missing");
        if (r->when_prompt_over_context) printf(" prompt_over_context");
        if (r->when_queue_over >= 0) printf(" queue_over=%lld", (long long)r->when_queue_over);
        if (r->when_speed_below > 0) printf(" speed_below=%g", r->when_speed_below);
    }
    printf("\n");
}

static void print_policy(const serve_policy *p) {
    for (size_t i = 0; i < serve_policy_n_upstreams(p); i++) {
        const serve_policy_upstream *u = serve_policy_upstream_at(p, i);
        printf("  upstream %-12s %s (%s)%s%s\n", u->name, u->base_url,
               u->dialect == SERVE_UPSTREAM_ANTHROPIC ? "anthropic" : "openai",
               u->api_key_env ? "  key from $" : "", u->api_key_env ? u->api_key_env : "");
    }
    for (size_t i = 0; i < serve_policy_n_rules(p); i++)
        print_rule(p, serve_policy_rule_at(p, i));
    if (!serve_policy_n_rules(p)) printf("  no rules: every request is served locally\n");
}

/* One sample: facts from its fields, the decision printed. Returns -1 for a malformed one. */
static int check_sample(const serve_policy *p, const json_t *s, size_t i) {
    char path[SERVE_PATH_MAX];
    serve_path_index(path, sizeof path, "samples", i);
    serve_error e;
    serve_route_facts f = {.model = "", .model_local = true, .prompt_tokens = -1,
                           .local_ctx = 4096};
    const char *name = NULL, *route = NULL;
    json_t *headers = NULL;
    double tok_s = 0;
    if (!json_is_object(s)) {
        serve_json_type_error(&e, path, "an object", s);
        fprintf(stderr, "outboard policy: %s\n", e.message);
        return -1;
    }
    if (serve_json_get_string(s, path, "name", 256, &name, NULL, &e) < 0 ||
        serve_json_get_string(s, path, "model", 256, &f.model, NULL, &e) < 0 ||
        serve_json_get_bool(s, path, "local", &f.model_local, &e) < 0 ||
        serve_json_get_string(s, path, "api_key", 4096, &f.api_key, NULL, &e) < 0 ||
        serve_json_get_string(s, path, "route", 32, &route, NULL, &e) < 0 ||
        serve_json_get_array(s, path, "headers", &headers, &e) < 0 ||
        serve_json_get_string(s, path, "body", 1u << 24, &f.body, &f.body_len, &e) < 0 ||
        serve_json_get_int(s, path, "queue", 0, INT32_MAX, &f.queue_waiting, &e) < 0 ||
        serve_json_get_int(s, path, "prompt_tokens", 0, INT32_MAX, &f.prompt_tokens, &e) < 0 ||
        serve_json_get_int(s, path, "context", 1, INT32_MAX, &f.local_ctx, &e) < 0 ||
        serve_json_get_number(s, path, "tok_s", 0, 1e9, &tok_s, &e) < 0) {
        fprintf(stderr, "outboard policy: %s\n", e.message);
        return -1;
    }
    f.local_tok_s = tok_s;
    if (serve_route_pref_parse(route, &f.pref)) {
        fprintf(stderr, "outboard policy: %s.route: expected local, upstream or auto\n", path);
        return -1;
    }
    size_t hi;
    json_t *h;
    json_array_foreach(headers, hi, h) {
        for (size_t k = 0; k < serve_policy_n_private_headers(p); k++)
            if (json_is_string(h) &&
                !strcasecmp(json_string_value(h), serve_policy_private_header(p, k)))
                f.marked_header = true;
    }
    serve_route_decision d;
    serve_policy_decide(p, &f, &d);
    const char *where = d.action == SERVE_ROUTE_TO_UPSTREAM ? "upstream"
                        : d.action == SERVE_ROUTE_REFUSE    ? "refused (503)"
                                                            : "local";
    if (name) printf("%-20s %-14s %s\n", name, where, d.why);
    else printf("samples[%zu]%*s %-14s %s\n", i, i < 10 ? 9 : 8, "", where, d.why);
    return 0;
}

int cli_cmd_policy(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (argc < 3 || argc > 4 || strcmp(argv[1], "check")) {
        fprintf(stderr, "%s", USAGE);
        return 2;
    }
    serve_policy *p = NULL;
    serve_error e;
    if (serve_policy_load(argv[2], &p, &e)) {
        fprintf(stderr, "outboard policy: %s\n", e.message);
        return 1;
    }
    printf("%s: valid\n", argv[2]);
    print_policy(p);
    int rc = 0;
    if (argc == 4) {
        json_error_t je;
        json_t *samples = json_load_file(argv[3], 0, &je);
        if (!json_is_array(samples)) {
            fprintf(stderr, "outboard policy: %s: %s\n", argv[3],
                    samples ? "expected an array of sample requests" : je.text);
            rc = 1;
        } else {
            printf("\n");
            for (size_t i = 0; i < json_array_size(samples) && !rc; i++)
                if (check_sample(p, json_array_get(samples, i), i)) rc = 1;
        }
        json_decref(samples);
    }
    serve_policy_free(p);
    return rc;
}
