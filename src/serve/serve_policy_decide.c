/*
 * Where a request goes (serve_policy.h). The order of the checks is the policy's promise:
 * what must stay local is settled before any rule is read, so no rule, however broad, can
 * send marked content, a local-only key's request or a request the client pinned locally.
 */
#include "serve/serve_policy_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

size_t serve_policy_n_upstreams(const serve_policy *p) {
    return p ? p->n_ups : 0;
}
const serve_policy_upstream *serve_policy_upstream_at(const serve_policy *p, size_t i) {
    return p && i < p->n_ups ? &p->ups[i] : NULL;
}
size_t serve_policy_n_rules(const serve_policy *p) {
    return p ? p->n_rules : 0;
}
const serve_policy_rule *serve_policy_rule_at(const serve_policy *p, size_t i) {
    return p && i < p->n_rules ? &p->rules[i] : NULL;
}
size_t serve_policy_n_private_headers(const serve_policy *p) {
    return p ? p->n_private_headers : 0;
}
const char *serve_policy_private_header(const serve_policy *p, size_t i) {
    return p && i < p->n_private_headers ? p->private_headers[i] : NULL;
}

bool serve_policy_needs_prompt_tokens(const serve_policy *p) {
    for (size_t i = 0; p && i < p->n_rules; i++)
        if (p->rules[i].when_prompt_over_context) return true;
    return false;
}

const char *serve_policy_map_model(const serve_policy_upstream *u, const char *model) {
    for (size_t i = 0; i < u->n_map; i++)
        if (!strcmp(u->map_from[i], model)) return u->map_to[i];
    return model;
}

int serve_route_pref_parse(const char *v, serve_route_pref *out) {
    if (!v || !strcasecmp(v, "auto")) *out = SERVE_ROUTE_AUTO;
    else if (!strcasecmp(v, "local")) *out = SERVE_ROUTE_LOCAL;
    else if (!strcasecmp(v, "upstream")) *out = SERVE_ROUTE_UPSTREAM;
    else return -1;
    return 0;
}

bool serve_policy_key_local_only(const serve_policy *p, const char *key) {
    for (size_t i = 0; p && key && i < p->n_local_keys; i++)
        if (!strcmp(p->local_keys[i], key)) return true;
    return false;
}

bool serve_policy_marked(const serve_policy *p, const serve_route_facts *f) {
    if (f->marked_header) return true;
    if (!p || !p->n_patterns || !f->body) return false;
    bool hit = false;
    for (size_t i = 0; i < p->n_patterns && !hit; i++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->patterns[i], NULL);
        /* Out of memory counts as a match: when in doubt, nothing leaves. */
        if (!md) return true;
        int rc = pcre2_match(p->patterns[i], (PCRE2_SPTR)f->body, f->body_len, 0,
                             0, md, NULL);
        /* A body that is not valid UTF-8, or a match that hit a resource limit: marked too. */
        hit = rc != PCRE2_ERROR_NOMATCH;
        pcre2_match_data_free(md);
    }
    return hit;
}

/* A model filter entry: exact, or a prefix when it ends in '*'. */
static bool name_matches(const char *pat, const char *name) {
    size_t n = strlen(pat);
    if (n && pat[n - 1] == '*') return !strncmp(pat, name, n - 1);
    return !strcmp(pat, name);
}

static bool filters_match(const serve_policy_rule *r, const serve_route_facts *f) {
    if (r->requested && f->pref != SERVE_ROUTE_UPSTREAM) return false;
    if (r->models) {
        bool any = false;
        for (size_t i = 0; i < r->n_models && !any; i++)
            any = name_matches(r->models[i], f->model ? f->model : "");
        if (!any) return false;
    }
    if (r->api_keys) {
        bool any = false;
        for (size_t i = 0; f->api_key && i < r->n_api_keys && !any; i++)
            any = !strcmp(r->api_keys[i], f->api_key);
        if (!any) return false;
    }
    return true;
}

/* The first condition of r that holds, described; NULL when none does. */
static const char *condition_holds(const serve_policy_rule *r, const serve_route_facts *f,
                                   char *buf, size_t cap) {
    if (!r->has_when) return "always";
    if (r->when_model_missing && !f->model_local) {
        snprintf(buf, cap, "model \"%.64s\" is not served here", f->model ? f->model : "");
        return buf;
    }
    if (r->when_prompt_over_context && f->prompt_tokens >= 0 && f->prompt_tokens >= f->local_ctx) {
        snprintf(buf, cap, "the prompt's %lld tokens do not fit the local context of %lld",
                 (long long)f->prompt_tokens, (long long)f->local_ctx);
        return buf;
    }
    if (r->when_queue_over >= 0 && f->queue_waiting > r->when_queue_over) {
        snprintf(buf, cap, "%lld sequences waiting, over %lld", (long long)f->queue_waiting,
                 (long long)r->when_queue_over);
        return buf;
    }
    if (r->when_speed_below > 0 && f->local_tok_s > 0 && f->local_tok_s < r->when_speed_below) {
        snprintf(buf, cap, "local decode at %.1f tok/s, under %.1f", f->local_tok_s,
                 r->when_speed_below);
        return buf;
    }
    return NULL;
}

/* Why the local side cannot serve the request, or NULL when it can. */
static const char *local_blocker(const serve_route_facts *f, char *buf, size_t cap) {
    if (!f->model_local) {
        snprintf(buf, cap, "model \"%.64s\" is not served here", f->model ? f->model : "");
        return buf;
    }
    if (f->prompt_tokens >= 0 && f->prompt_tokens >= f->local_ctx) {
        snprintf(buf, cap, "the prompt's %lld tokens do not fit the local context of %lld",
                 (long long)f->prompt_tokens, (long long)f->local_ctx);
        return buf;
    }
    return NULL;
}

static void stay_local(const serve_route_facts *f, const char *pinned, serve_route_decision *d) {
    char buf[160];
    const char *blocked = local_blocker(f, buf, sizeof buf);
    if (blocked) {
        d->action = SERVE_ROUTE_REFUSE;
        snprintf(d->why, sizeof d->why, "%s, and %s", blocked, pinned);
    } else {
        snprintf(d->why, sizeof d->why, "local: %s", pinned);
    }
}

void serve_policy_decide(const serve_policy *p, const serve_route_facts *f,
                         serve_route_decision *d) {
    memset(d, 0, sizeof *d);
    d->action = SERVE_ROUTE_TO_LOCAL;
    if (!p) {
        snprintf(d->why, sizeof d->why, "local: no policy");
        return;
    }
    const serve_policy_rule *rule = NULL;
    char cond[160];
    const char *why = NULL;
    for (size_t i = 0; i < p->n_rules && !rule; i++) {
        if (!filters_match(&p->rules[i], f)) continue;
        if ((why = condition_holds(&p->rules[i], f, cond, sizeof cond))) rule = &p->rules[i];
    }
    if (!rule) {
        snprintf(d->why, sizeof d->why, "local: no rule sends it upstream");
        return;
    }
    /* A rule would send it: the pins that keep it here come first. */
    if (f->pref == SERVE_ROUTE_LOCAL)
        return stay_local(f, "the client asked for local (X-Outboard-Route)", d);
    if (serve_policy_key_local_only(p, f->api_key))
        return stay_local(f, "its API key is local-only", d);
    if (serve_policy_marked(p, f))
        return stay_local(f, "it carries content marked never to leave", d);
    d->action = SERVE_ROUTE_TO_UPSTREAM;
    d->rule = rule;
    d->upstream = &p->ups[rule->upstream];
    snprintf(d->why, sizeof d->why, "upstream %.64s by rule %.64s (%.100s)", d->upstream->name,
             rule->name, why);
}

/* Equal in time independent of where the strings differ. */
static bool key_same(const char *a, const char *b) {
    size_t al = strlen(a), bl = strlen(b);
    unsigned char diff = al != bl;
    for (size_t i = 0; i < bl; i++) diff |= (unsigned char)(b[i] ^ (i < al ? a[i] : 0));
    return diff == 0;
}

bool serve_policy_knows_key(const serve_policy *p, const char *key) {
    bool known = false;
    for (size_t i = 0; p && key && i < p->n_local_keys; i++) known |= key_same(key, p->local_keys[i]);
    for (size_t r = 0; p && key && r < p->n_rules; r++)
        for (size_t i = 0; i < p->rules[r].n_api_keys; i++)
            known |= key_same(key, p->rules[r].api_keys[i]);
    return known;
}
