/*
 * The server's metrics and their Prometheus text exposition (GET /metrics): requests by route
 * and status, prompt and generated tokens, prefix-cache hits, queue depth, running sequences,
 * KV pool use, and histograms of time to first token and inter-token latency. Every call is
 * thread-safe (one mutex; updates are a few additions).
 */
#ifndef OB_SERVE_METRICS_H
#define OB_SERVE_METRICS_H

#include "outboard.h"

#include <stddef.h>
#include <stdint.h>

typedef struct serve_metrics serve_metrics;

/* Distinct (route, status) pairs kept; later pairs are counted under route "other". */
#define SERVE_METRICS_MAX_SERIES 128

ob_status serve_metrics_new(serve_metrics **out, ob_err *err);
void serve_metrics_free(serve_metrics *m);

/* One finished HTTP request. route is the route's pattern ("/v1/chat/completions"), or
 * "other" for unknown paths, so a client cannot grow the series without bound. */
void serve_metrics_request(serve_metrics *m, const char *route, int status);
void serve_metrics_tokens(serve_metrics *m, int64_t prompt, int64_t generated);
/* A prompt whose first n_tokens came from the prefix cache. */
void serve_metrics_prefix_hit(serve_metrics *m, int64_t n_tokens);
/* A sequence gave its KV blocks back to make room (it is recomputed later). */
void serve_metrics_preempt(serve_metrics *m);
/* One decode step of one generating sequence: drafted draft tokens evaluated with it,
 * accepted of them kept, produced tokens drawn (1 + accepted, fewer when the answer ended). */
void serve_metrics_spec(serve_metrics *m, int64_t drafted, int64_t accepted, int64_t produced);
void serve_metrics_set_queue(serve_metrics *m, int64_t waiting, int64_t running);
void serve_metrics_set_kv(serve_metrics *m, int64_t blocks_used, int64_t blocks_total);
/* Counts a device lost while serving (its model moved to what remained). */
void serve_metrics_device_lost(serve_metrics *m);
/* Adds what crossed between a context's CPU and device since the last call (the difference of
 * two ob_transfer_stats): hidden states, MoE rows and streamed products. */
void serve_metrics_transfer(serve_metrics *m, const ob_transfer_stats *delta);
void serve_metrics_ttft(serve_metrics *m, double seconds);
void serve_metrics_itl(serve_metrics *m, double seconds);

/* A request the routing policy sent upstream; result is "ok", "error" or "cancelled". */
void serve_metrics_upstream(serve_metrics *m, const char *upstream, const char *rule,
                            const char *result);
/* A request refused because it could not be served here and the policy kept it here. */
void serve_metrics_policy_refused(serve_metrics *m);
/* What the policy reads: sequences waiting, and the decode speed of one stream (tok/s, from
 * the mean inter-token latency; 0 before any was measured). */
int64_t serve_metrics_queue_waiting(serve_metrics *m);
double serve_metrics_decode_tok_s(serve_metrics *m);

/* The exposition text: new string (ob_free) of *len bytes, NULL when out of memory. */
char *serve_metrics_render(serve_metrics *m, size_t *len);

#endif
