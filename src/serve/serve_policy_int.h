/*
 * The policy's representation, shared by its reader (serve_policy.c) and its decision
 * (serve_policy_decide.c).
 */
#ifndef OB_SERVE_POLICY_INT_H
#define OB_SERVE_POLICY_INT_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include "serve/serve_policy.h"

#include <pcre2.h>

struct serve_policy {
    serve_policy_upstream *ups;
    size_t n_ups;
    serve_policy_rule *rules;
    size_t n_rules;
    char **local_keys; /* local_only_keys */
    size_t n_local_keys;
    char **private_headers; /* never_leave.headers */
    size_t n_private_headers;
    pcre2_code **patterns; /* never_leave.patterns, compiled */
    size_t n_patterns;
};

#endif
