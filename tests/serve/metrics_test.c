/*
 * serve_metrics: counters by route and status, gauges, histograms, and the Prometheus text
 * exposition (format 0.0.4) with escaped labels and a bounded number of series.
 */
#include "serve/serve_metrics.c"

#include "test.h"

#include <pthread.h>

TEST(counters_and_gauges) {
    serve_metrics *m;
    CHECK(serve_metrics_new(&m, NULL) == OB_OK);
    serve_metrics_request(m, "/health", 200);
    serve_metrics_request(m, "/health", 200);
    serve_metrics_request(m, "/v1/chat/completions", 400);
    serve_metrics_tokens(m, 12, 5);
    serve_metrics_prefix_hit(m, 8);
    serve_metrics_set_queue(m, 3, 2);
    serve_metrics_set_kv(m, 10, 64);
    serve_metrics_spec(m, 8, 6, 7); /* a pass with a draft of 8, 6 kept */
    serve_metrics_spec(m, 0, 0, 1); /* a plain pass */
    size_t len;
    char *t = serve_metrics_render(m, &len);
    CHECK(t && strlen(t) == len);
    CHECK(strstr(t, "# TYPE outboard_requests_total counter\n"));
    CHECK(strstr(t, "outboard_requests_total{route=\"/health\",status=\"200\"} 2\n"));
    CHECK(strstr(t, "outboard_requests_total{route=\"/v1/chat/completions\",status=\"400\"} 1\n"));
    CHECK(strstr(t, "outboard_prompt_tokens_total 12\n"));
    CHECK(strstr(t, "outboard_generated_tokens_total 5\n"));
    CHECK(strstr(t, "outboard_prefix_cache_hits_total 1\n"));
    CHECK(strstr(t, "outboard_queue_depth 3\n"));
    CHECK(strstr(t, "outboard_kv_blocks_used 10\n"));
    CHECK(strstr(t, "outboard_kv_blocks_total 64\n"));
    CHECK(strstr(t, "outboard_spec_draft_tokens_total 8\n"));
    CHECK(strstr(t, "outboard_spec_accepted_tokens_total 6\n"));
    CHECK(strstr(t, "outboard_decode_passes_total 2\n"));
    CHECK(strstr(t, "outboard_decode_pass_tokens_total 8\n"));
    ob_free(t);
    serve_metrics_free(m);
}

TEST(histograms_are_cumulative) {
    serve_metrics *m;
    CHECK(serve_metrics_new(&m, NULL) == OB_OK);
    serve_metrics_ttft(m, 0.005); /* first bucket (le 0.01) */
    serve_metrics_ttft(m, 0.01);  /* on the bound: still le 0.01 */
    serve_metrics_ttft(m, 0.3);
    serve_metrics_ttft(m, 100);   /* only +Inf */
    serve_metrics_itl(m, 0.02);
    char *t = serve_metrics_render(m, NULL);
    CHECK(t);
    CHECK(strstr(t, "# TYPE outboard_time_to_first_token_seconds histogram\n"));
    CHECK(strstr(t, "outboard_time_to_first_token_seconds_bucket{le=\"0.01\"} 2\n"));
    CHECK(strstr(t, "outboard_time_to_first_token_seconds_bucket{le=\"0.25\"} 2\n"));
    CHECK(strstr(t, "outboard_time_to_first_token_seconds_bucket{le=\"0.5\"} 3\n"));
    CHECK(strstr(t, "outboard_time_to_first_token_seconds_bucket{le=\"60\"} 3\n"));
    CHECK(strstr(t, "outboard_time_to_first_token_seconds_bucket{le=\"+Inf\"} 4\n"));
    CHECK(strstr(t, "outboard_time_to_first_token_seconds_count 4\n"));
    CHECK(strstr(t, "outboard_time_to_first_token_seconds_sum 100.315000\n"));
    CHECK(strstr(t, "outboard_inter_token_latency_seconds_bucket{le=\"0.025\"} 1\n"));
    ob_free(t);
    serve_metrics_free(m);
}

TEST(labels_are_escaped_and_series_bounded) {
    serve_metrics *m;
    CHECK(serve_metrics_new(&m, NULL) == OB_OK);
    serve_metrics_request(m, "a\"b\\c\nd", 404);
    for (int i = 0; i < 300; i++) {
        char route[32];
        snprintf(route, sizeof route, "/r%d", i);
        serve_metrics_request(m, route, 200);
    }
    char *t = serve_metrics_render(m, NULL);
    CHECK(t);
    CHECK(strstr(t, "route=\"a\\\"b\\\\c\\nd\""));
    CHECK(strstr(t, "route=\"other\",status=\"200\""));
    size_t n_series = 0;
    for (const char *p = t; (p = strstr(p, "outboard_requests_total{")); p++) n_series++;
    CHECK_EQ_INT(n_series, SERVE_METRICS_MAX_SERIES);
    ob_free(t);
    serve_metrics_free(m);
}

static void *hammer(void *arg) {
    for (int i = 0; i < 10000; i++) {
        serve_metrics_request(arg, "/health", 200);
        serve_metrics_itl(arg, 0.001);
    }
    return NULL;
}

TEST(concurrent_updates_add_up) {
    serve_metrics *m;
    CHECK(serve_metrics_new(&m, NULL) == OB_OK);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, hammer, m);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    char *t = serve_metrics_render(m, NULL);
    CHECK(strstr(t, "outboard_requests_total{route=\"/health\",status=\"200\"} 40000\n"));
    CHECK(strstr(t, "outboard_inter_token_latency_seconds_count 40000\n"));
    ob_free(t);
    serve_metrics_free(m);
}

int main(void) {
    RUN(counters_and_gauges);
    RUN(histograms_are_cumulative);
    RUN(labels_are_escaped_and_series_bounded);
    RUN(concurrent_updates_add_up);
    return t_summary();
}
