/*
 * Metrics (serve_metrics.h). Fixed series plus one table of request counters keyed by route
 * and status. Histograms use fixed buckets chosen for LLM latencies: time to first token from
 * 10 ms to 60 s, inter-token latency from 1 ms to 5 s.
 */
#include "serve/serve_metrics.h"

#include "core/alloc.h"
#include "core/err.h"
#include "serve/serve_buf.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define HIST_MAX_BUCKETS 16

typedef struct histogram {
    const double *bounds; /* upper bounds, ascending; +Inf is implied */
    size_t n_bounds;
    uint64_t counts[HIST_MAX_BUCKETS]; /* per bucket, not cumulative; [n_bounds] = +Inf */
    double sum;
    uint64_t count;
} histogram;

typedef struct series {
    char route[48];
    int status;
    uint64_t count;
} series;

/* Requests sent upstream by the policy (serve_policy.h), keyed by upstream, rule and how the
 * exchange ended. */
typedef struct route_series {
    char upstream[64], rule[64], result[16];
    uint64_t count;
} route_series;

#define ROUTE_MAX_SERIES 64

static const double TTFT_BOUNDS[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const double ITL_BOUNDS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

struct serve_metrics {
    pthread_mutex_t mu;
    series requests[SERVE_METRICS_MAX_SERIES];
    size_t n_requests;
    uint64_t prompt_tokens, generated_tokens, prefix_hits, prefix_tokens, preemptions;
    uint64_t spec_passes, spec_tokens, spec_drafted, spec_accepted;
    int64_t waiting, running, kv_used, kv_total;
    uint64_t xfer_copies, xfer_bytes, xfer_ns, devices_lost;
    uint64_t streamed, streamed_bytes; /* weight streaming: products, their weights' bytes */
    uint64_t streamed_expert_bytes;    /* of streamed_bytes, routed experts' */
    histogram ttft, itl;
    route_series routes[ROUTE_MAX_SERIES];
    size_t n_routes;
    uint64_t policy_refused;
};

ob_status serve_metrics_new(serve_metrics **out, ob_err *err) {
    serve_metrics *m = ob_calloc(1, sizeof *m);
    if (!m) return ob_fail(err, OB_ERR_NOMEM, "out of memory for metrics");
    if (pthread_mutex_init(&m->mu, NULL)) {
        ob_free(m);
        return ob_fail(err, OB_ERR_NOMEM, "metrics: pthread_mutex_init failed");
    }
    m->ttft.bounds = TTFT_BOUNDS;
    m->ttft.n_bounds = sizeof TTFT_BOUNDS / sizeof TTFT_BOUNDS[0];
    m->itl.bounds = ITL_BOUNDS;
    m->itl.n_bounds = sizeof ITL_BOUNDS / sizeof ITL_BOUNDS[0];
    *out = m;
    return OB_OK;
}

void serve_metrics_free(serve_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    ob_free(m);
}

/* The series for (route, status), added when new; the last slot is kept for "other". */
static series *series_get(serve_metrics *m, const char *route, int status) {
    for (size_t i = 0; i < m->n_requests; i++)
        if (m->requests[i].status == status && !strcmp(m->requests[i].route, route))
            return &m->requests[i];
    if (m->n_requests >= SERVE_METRICS_MAX_SERIES - 1 && strcmp(route, "other"))
        return series_get(m, "other", status);
    if (m->n_requests >= SERVE_METRICS_MAX_SERIES) return &m->requests[m->n_requests - 1];
    series *s = &m->requests[m->n_requests++];
    snprintf(s->route, sizeof s->route, "%s", route);
    s->status = status;
    return s;
}

void serve_metrics_request(serve_metrics *m, const char *route, int status) {
    pthread_mutex_lock(&m->mu);
    series_get(m, route, status)->count++;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_tokens(serve_metrics *m, int64_t prompt, int64_t generated) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (uint64_t)(prompt > 0 ? prompt : 0);
    m->generated_tokens += (uint64_t)(generated > 0 ? generated : 0);
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_prefix_hit(serve_metrics *m, int64_t n_tokens) {
    pthread_mutex_lock(&m->mu);
    m->prefix_hits++;
    m->prefix_tokens += (uint64_t)(n_tokens > 0 ? n_tokens : 0);
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_preempt(serve_metrics *m) {
    pthread_mutex_lock(&m->mu);
    m->preemptions++;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_spec(serve_metrics *m, int64_t drafted, int64_t accepted, int64_t produced) {
    pthread_mutex_lock(&m->mu);
    m->spec_passes++;
    m->spec_tokens += (uint64_t)(produced > 0 ? produced : 0);
    m->spec_drafted += (uint64_t)(drafted > 0 ? drafted : 0);
    m->spec_accepted += (uint64_t)(accepted > 0 ? accepted : 0);
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_set_queue(serve_metrics *m, int64_t waiting, int64_t running) {
    pthread_mutex_lock(&m->mu);
    m->waiting = waiting;
    m->running = running;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_set_kv(serve_metrics *m, int64_t blocks_used, int64_t blocks_total) {
    pthread_mutex_lock(&m->mu);
    m->kv_used = blocks_used;
    m->kv_total = blocks_total;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_device_lost(serve_metrics *m) {
    pthread_mutex_lock(&m->mu);
    m->devices_lost++;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_transfer(serve_metrics *m, const ob_transfer_stats *delta) {
    pthread_mutex_lock(&m->mu);
    m->xfer_copies += delta->copies;
    m->xfer_bytes += delta->bytes;
    m->xfer_ns += delta->ns;
    m->streamed += delta->streamed;
    m->streamed_bytes += delta->weight_bytes;
    m->streamed_expert_bytes += delta->expert_weight_bytes;
    pthread_mutex_unlock(&m->mu);
}

static void hist_observe(histogram *h, double v) {
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void serve_metrics_ttft(serve_metrics *m, double seconds) {
    pthread_mutex_lock(&m->mu);
    hist_observe(&m->ttft, seconds);
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_itl(serve_metrics *m, double seconds) {
    pthread_mutex_lock(&m->mu);
    hist_observe(&m->itl, seconds);
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_upstream(serve_metrics *m, const char *upstream, const char *rule,
                            const char *result) {
    pthread_mutex_lock(&m->mu);
    route_series *r = NULL;
    for (size_t i = 0; i < m->n_routes && !r; i++)
        if (!strcmp(m->routes[i].upstream, upstream) && !strcmp(m->routes[i].rule, rule) &&
            !strcmp(m->routes[i].result, result))
            r = &m->routes[i];
    /* The policy bounds upstreams and rules; the last slot absorbs anything beyond. */
    if (!r && m->n_routes < ROUTE_MAX_SERIES) {
        r = &m->routes[m->n_routes++];
        snprintf(r->upstream, sizeof r->upstream, "%s", upstream);
        snprintf(r->rule, sizeof r->rule, "%s", rule);
        snprintf(r->result, sizeof r->result, "%s", result);
    }
    if (!r) r = &m->routes[ROUTE_MAX_SERIES - 1];
    r->count++;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_policy_refused(serve_metrics *m) {
    pthread_mutex_lock(&m->mu);
    m->policy_refused++;
    pthread_mutex_unlock(&m->mu);
}

int64_t serve_metrics_queue_waiting(serve_metrics *m) {
    pthread_mutex_lock(&m->mu);
    int64_t w = m->waiting;
    pthread_mutex_unlock(&m->mu);
    return w;
}

double serve_metrics_decode_tok_s(serve_metrics *m) {
    pthread_mutex_lock(&m->mu);
    double v = m->itl.count && m->itl.sum > 0 ? (double)m->itl.count / m->itl.sum : 0;
    pthread_mutex_unlock(&m->mu);
    return v;
}

/* ---- exposition ---- */

/* A label value with Prometheus's escapes (backslash, double quote, newline). */
static void put_label(serve_buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\')
            serve_buf_puts(b, "\\\\");
        else if (*s == '"')
            serve_buf_puts(b, "\\\"");
        else if (*s == '\n')
            serve_buf_puts(b, "\\n");
        else
            serve_buf_append(b, s, 1);
    }
}

static void put_head(serve_buf *b, const char *name, const char *type, const char *help) {
    serve_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_scalar(serve_buf *b, const char *name, const char *type, const char *help,
                       long long v) {
    put_head(b, name, type, help);
    serve_buf_printf(b, "%s %lld\n", name, v);
}

static void put_hist(serve_buf *b, const char *name, const char *help, const histogram *h) {
    put_head(b, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        serve_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
                         (unsigned long long)cum);
    }
    cum += h->counts[h->n_bounds];
    serve_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                     (unsigned long long)cum, name, h->sum, name, (unsigned long long)h->count);
}

static void put_requests(serve_buf *b, const serve_metrics *m) {
    put_head(b, "outboard_requests_total", "counter", "HTTP requests by route and status.");
    for (size_t i = 0; i < m->n_requests; i++) {
        serve_buf_puts(b, "outboard_requests_total{route=\"");
        put_label(b, m->requests[i].route);
        serve_buf_printf(b, "\",status=\"%d\"} %llu\n", m->requests[i].status,
                         (unsigned long long)m->requests[i].count);
    }
}

static void put_routes(serve_buf *b, const serve_metrics *m) {
    put_head(b, "outboard_upstream_requests_total", "counter",
             "Requests the policy sent upstream, by upstream, rule and result.");
    for (size_t i = 0; i < m->n_routes; i++) {
        serve_buf_puts(b, "outboard_upstream_requests_total{upstream=\"");
        put_label(b, m->routes[i].upstream);
        serve_buf_puts(b, "\",rule=\"");
        put_label(b, m->routes[i].rule);
        serve_buf_puts(b, "\",result=\"");
        put_label(b, m->routes[i].result);
        serve_buf_printf(b, "\"} %llu\n", (unsigned long long)m->routes[i].count);
    }
    put_scalar(b, "outboard_policy_refused_total", "counter",
               "Requests refused because they could not be served here and might not leave.",
               (long long)m->policy_refused);
}

char *serve_metrics_render(serve_metrics *m, size_t *len) {
    serve_buf b = {0};
    pthread_mutex_lock(&m->mu);
    put_requests(&b, m);
    put_scalar(&b, "outboard_prompt_tokens_total", "counter", "Prompt tokens processed.",
               (long long)m->prompt_tokens);
    put_scalar(&b, "outboard_generated_tokens_total", "counter", "Tokens generated.",
               (long long)m->generated_tokens);
    put_scalar(&b, "outboard_prefix_cache_hits_total", "counter",
               "Prompts that reused a cached prefix.", (long long)m->prefix_hits);
    put_scalar(&b, "outboard_prefix_cache_tokens_total", "counter",
               "Prompt tokens taken from the prefix cache.", (long long)m->prefix_tokens);
    put_scalar(&b, "outboard_preemptions_total", "counter",
               "Sequences that gave their KV blocks back when the pool ran out.",
               (long long)m->preemptions);
    put_scalar(&b, "outboard_decode_passes_total", "counter",
               "Decode steps of generating sequences (one forward pass each).",
               (long long)m->spec_passes);
    put_scalar(&b, "outboard_decode_pass_tokens_total", "counter",
               "Tokens those steps produced (over passes: tokens per pass).",
               (long long)m->spec_tokens);
    put_scalar(&b, "outboard_spec_draft_tokens_total", "counter",
               "Draft tokens proposed by speculative decoding.", (long long)m->spec_drafted);
    put_scalar(&b, "outboard_spec_accepted_tokens_total", "counter",
               "Draft tokens the model accepted (over drafted: acceptance rate).",
               (long long)m->spec_accepted);
    put_scalar(&b, "outboard_queue_depth", "gauge", "Requests waiting for a sequence slot.",
               (long long)m->waiting);
    put_scalar(&b, "outboard_sequences_running", "gauge", "Sequences being generated.",
               (long long)m->running);
    put_scalar(&b, "outboard_kv_blocks_used", "gauge", "KV pool blocks in use.",
               (long long)m->kv_used);
    put_scalar(&b, "outboard_kv_blocks_total", "gauge", "KV pool blocks in all.",
               (long long)m->kv_total);
    put_scalar(&b, "outboard_hidden_copies_total", "counter",
               "Copies of activations to the device: the hidden state between the CPU's "
               "and the device's layers, MoE blocks' outputs computed on the host, and "
               "streamed products (their weight and input rows).",
               (long long)m->xfer_copies);
    put_scalar(&b, "outboard_hidden_copy_bytes_total", "counter",
               "Bytes of those copies.", (long long)m->xfer_bytes);
    put_scalar(&b, "outboard_hidden_copy_microseconds_total", "counter",
               "Time in those copies, waiting for the device included.",
               (long long)(m->xfer_ns / 1000));
    put_scalar(&b, "outboard_streamed_products_total", "counter",
               "Matrix products of the CPU's layers run on the device (weight streaming).",
               (long long)m->streamed);
    put_scalar(&b, "outboard_streamed_weight_bytes_total", "counter",
               "Bytes of weights shipped to the device for them.", (long long)m->streamed_bytes);
    put_scalar(&b, "outboard_streamed_expert_weight_bytes_total", "counter",
               "Of those, routed experts' (the experts the routing gave enough rows).",
               (long long)m->streamed_expert_bytes);
    put_scalar(&b, "outboard_devices_lost_total", "counter",
               "Devices lost while serving; their models moved to what remained.",
               (long long)m->devices_lost);
    put_hist(&b, "outboard_time_to_first_token_seconds", "Time from request to first token.",
             &m->ttft);
    put_hist(&b, "outboard_inter_token_latency_seconds", "Time between generated tokens.", &m->itl);
    put_routes(&b, m);
    pthread_mutex_unlock(&m->mu);
    return serve_buf_take(&b, len);
}
