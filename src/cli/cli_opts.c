/*
 * The engine flags that every command running a model reads the same way (run, chat): the
 * sampling settings (--temp, --top-k, --top-p, --min-p, --repeat-penalty, --seed) and the
 * context settings (--ctx, --threads, --device). One parser keeps their spelling, defaults and
 * checks identical across commands; each command handles its own flags first and passes the
 * rest here.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char CLI_ENGINE_OPTS_HELP[] =
    "  --temp T (0.8; 0 = greedy)  --top-k K (40)  --top-p P (0.95)  --min-p P (0.05)\n"
    "  --repeat-penalty R (1.0)  --seed S  --ctx N  --threads N (physical cores)\n"
    "  --device cpu|cuda|auto (cpu)\n";

/* Parses a whole number in [lo, hi]; prints the flag and value when it is not one. */
static int parse_int(const char *flag, const char *v, long long lo, long long hi,
                     long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "outboard: %s '%s': expected a whole number from %lld to %lld\n", flag,
                v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* Parses a finite non-negative number; prints the flag and value when it is not one. */
static int parse_float(const char *flag, const char *v, float *out) {
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || end == v || *end || !(x >= 0.0f && x < 1e30f)) {
        fprintf(stderr, "outboard: %s '%s': expected a non-negative number\n", flag, v);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_parse_engine_opt(const char *a, const char *v, ob_sampler_params *sp,
                         ob_context_params *cp) {
    long long n = 0;
    if (!strcmp(a, "--temp")) return parse_float(a, v, &sp->temp) ? -1 : 1;
    if (!strcmp(a, "--top-p")) return parse_float(a, v, &sp->top_p) ? -1 : 1;
    if (!strcmp(a, "--min-p")) return parse_float(a, v, &sp->min_p) ? -1 : 1;
    if (!strcmp(a, "--repeat-penalty")) return parse_float(a, v, &sp->repeat_penalty) ? -1 : 1;
    if (!strcmp(a, "--device")) return cli_parse_device(v, &cp->device) ? -1 : 1;
    if (!strcmp(a, "--top-k")) {
        if (parse_int(a, v, 0, INT32_MAX, &n)) return -1;
        sp->top_k = (int32_t)n;
    } else if (!strcmp(a, "--seed")) {
        if (parse_int(a, v, 0, INT64_MAX, &n)) return -1;
        sp->seed = (uint64_t)n;
    } else if (!strcmp(a, "--ctx")) {
        if (parse_int(a, v, 0, (long long)1 << 24, &n)) return -1;
        cp->n_ctx = n;
    } else if (!strcmp(a, "--threads")) {
        if (parse_int(a, v, 0, 1024, &n)) return -1;
        cp->n_threads = (int)n;
    } else {
        return 0;
    }
    return 1;
}
