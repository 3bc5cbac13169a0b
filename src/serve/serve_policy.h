/*
 * The routing policy of `outboard serve --policy FILE`: which requests may leave the machine
 * for a bigger engine (an upstream: another OpenAI- or Anthropic-compatible server), and
 * which never may. Deny by default: without a policy, or when no rule allows it, every
 * request is served locally.
 *
 * The file is one JSON object:
 *
 *     {
 *       "upstreams": {
 *         "team": {"base_url": "http://10.0.0.5:8080", "dialect": "openai",
 *                  "api_key_env": "TEAM_KEY", "models": {"big": "qwen3-235b"},
 *                  "connect_timeout_s": 5, "timeout_s": 600}
 *       },
 *       "local_only_keys": ["sk-private-laptop"],
 *       "never_leave": {"headers": ["X-Private"], "patterns": ["BEGIN [A-Z ]*PRIVATE KEY"]},
 *       "rules": [
 *         {"name": "big-model", "upstream": "team", "models": ["big"]},
 *         {"name": "overflow", "upstream": "team", "when": {"queue_over": 8}},
 *         {"name": "asked", "upstream": "team", "requested": true}
 *       ]
 *     }
 *
 * Rules are tried in order; the first whose filters all match the request, and whose `when`
 * conditions (any one of them) hold, sends it to its upstream. Filters: `models` (names; a
 * trailing '*' matches a prefix), `api_keys` (the key the client presented), `requested`
 * (only when the client sent `X-Outboard-Route: upstream`). Conditions: `model_missing` (the
 * model is not served here), `prompt_over_context` (the prompt does not fit the local
 * context), `queue_over` (more sequences waiting than this), `speed_below` (the local
 * server's measured decode speed, tok/s, is under this floor). A rule without `when` applies
 * whenever its filters match.
 *
 * Whatever the rules say, a request stays local when the client sent
 * `X-Outboard-Route: local`, presented a key in `local_only_keys`, sent one of the
 * `never_leave` headers, or its body matches one of the `never_leave` patterns (PCRE2). When
 * such a request cannot be served locally either, the client gets a 503 that says why.
 */
#ifndef OB_SERVE_POLICY_H
#define OB_SERVE_POLICY_H

#include "outboard.h"
#include "serve/serve_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Named limits on a policy file. */
#define SERVE_POLICY_MAX_UPSTREAMS 64
#define SERVE_POLICY_MAX_RULES     256
#define SERVE_POLICY_MAX_LIST      256 /* entries of one list (models, keys, patterns, ...) */
#define SERVE_POLICY_MAX_STRING    4096

typedef enum serve_upstream_dialect {
    SERVE_UPSTREAM_OPENAI = 0, /* POST {base_url}/v1/chat/completions, /v1/completions */
    SERVE_UPSTREAM_ANTHROPIC,  /* POST {base_url}/v1/messages */
} serve_upstream_dialect;

typedef struct serve_policy_upstream {
    char *name;
    char *base_url; /* http:// or https://, without a trailing '/' */
    serve_upstream_dialect dialect;
    char *api_key_env; /* NULL: no key sent */
    char **map_from, **map_to; /* model names as clients send them -> the upstream's names */
    size_t n_map;
    double connect_timeout_s; /* 10 */
    double timeout_s;         /* the whole exchange, 600 */
} serve_policy_upstream;

typedef struct serve_policy_rule {
    char *name;
    size_t upstream; /* index into the policy's upstreams */
    char **models;   /* NULL = any model */
    size_t n_models;
    char **api_keys; /* NULL = any key (or none) */
    size_t n_api_keys;
    bool requested; /* only with X-Outboard-Route: upstream */
    bool has_when;  /* some condition below is set */
    bool when_model_missing, when_prompt_over_context;
    int64_t when_queue_over;  /* -1 = not set */
    double when_speed_below;  /* 0 = not set */
} serve_policy_rule;

typedef struct serve_policy serve_policy;

/* Parses a policy from JSON text. Every error names the field's path ("rules[2].upstream:
 * no upstream named \"tema\""); on failure *out is untouched and e is a 400-style error
 * (its message is what `outboard policy check` prints). */
int serve_policy_parse(const char *text, size_t len, serve_policy **out, serve_error *e);
/* Reads and parses a file; the message names the file. */
int serve_policy_load(const char *path, serve_policy **out, serve_error *e);
void serve_policy_free(serve_policy *p);

size_t serve_policy_n_upstreams(const serve_policy *p);
const serve_policy_upstream *serve_policy_upstream_at(const serve_policy *p, size_t i);
size_t serve_policy_n_rules(const serve_policy *p);
const serve_policy_rule *serve_policy_rule_at(const serve_policy *p, size_t i);
/* Whether any rule needs the prompt's token count (prompt_over_context): counting means
 * rendering and tokenizing, so it is done only then. */
bool serve_policy_needs_prompt_tokens(const serve_policy *p);
/* The upstream's name for a model (its `models` map), or `model` itself. */
const char *serve_policy_map_model(const serve_policy_upstream *u, const char *model);

/* X-Outboard-Route. */
typedef enum serve_route_pref {
    SERVE_ROUTE_AUTO = 0, /* absent or "auto": the rules decide */
    SERVE_ROUTE_LOCAL,    /* never leaves */
    SERVE_ROUTE_UPSTREAM, /* asks for an upstream; a rule must still allow it */
} serve_route_pref;

/* Parses the header's value (case-insensitive); -1 for anything else. */
int serve_route_pref_parse(const char *v, serve_route_pref *out);

/* What is known about a request when it is routed. */
typedef struct serve_route_facts {
    const char *model;     /* as the client named it; "" = the default */
    bool model_local;      /* this server has the model */
    const char *api_key;   /* the key the client presented, or NULL */
    serve_route_pref pref; /* X-Outboard-Route */
    bool marked_header;    /* a never_leave header was present */
    const char *body;      /* the request body, for the never_leave patterns */
    size_t body_len;
    int64_t queue_waiting;  /* sequences waiting for a slot */
    int64_t prompt_tokens;  /* -1 = not counted */
    int64_t local_ctx;      /* the local context per request */
    double local_tok_s;     /* measured local decode speed; 0 = not measured yet */
} serve_route_facts;

typedef enum serve_route_action {
    SERVE_ROUTE_TO_LOCAL = 0,
    SERVE_ROUTE_TO_UPSTREAM,
    SERVE_ROUTE_REFUSE, /* 503: cannot be served here and may not leave */
} serve_route_action;

typedef struct serve_route_decision {
    serve_route_action action;
    const serve_policy_rule *rule;         /* TO_UPSTREAM: the rule that allowed it */
    const serve_policy_upstream *upstream; /* TO_UPSTREAM */
    char why[256]; /* one line: which rule, or why it stayed local or was refused */
} serve_route_decision;

/* Whether the request carries marked content (a never_leave pattern matches its body, or
 * f->marked_header). */
bool serve_policy_marked(const serve_policy *p, const serve_route_facts *f);
/* Whether key is one of the local-only keys. */
bool serve_policy_key_local_only(const serve_policy *p, const char *key);
/* Whether the policy names key (a local-only key or a rule's key): the server accepts those
 * besides its --api-key. */
bool serve_policy_knows_key(const serve_policy *p, const char *key);
/* The never_leave headers, so the server can check which were sent. */
size_t serve_policy_n_private_headers(const serve_policy *p);
const char *serve_policy_private_header(const serve_policy *p, size_t i);

/* Decides where a request goes. p may be NULL (no policy: always local). */
void serve_policy_decide(const serve_policy *p, const serve_route_facts *f,
                         serve_route_decision *d);

#endif
