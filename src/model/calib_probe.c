/*
 * The host's share of a calibration that needs no model: the CPU's name (the key its figures
 * are stored under) and its streaming read bandwidth, the ceiling of decode, which reads every
 * weight once per token. The bandwidth is measured as bench/bw_bench.c does: T threads each sum
 * their own slice of a buffer far larger than the caches, allocated as the weights are held.
 */
#include "core/alloc.h"
#include "model/calib.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void calib_host_key(char *buf, size_t cap) {
    char name[CALIB_KEY_SIZE - 8] = "CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !colon) continue;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n\t")] = 0;
        snprintf(name, sizeof name, "%s", colon);
        break;
    }
    if (f) fclose(f);
    snprintf(buf, cap, "cpu %s", name);
}

typedef struct read_slice {
    const uint64_t *p; /* (n) words of this thread's part */
    size_t n;
    uint64_t sum;      /* kept so the reads cannot be optimised away */
} read_slice;

static volatile uint64_t g_sink;

/* Eight independent sums, so the loop is bound by loads rather than by one add chain. */
static void *read_one(void *arg) {
    read_slice *s = arg;
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 8 <= s->n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += s->p[i + k];
    s->sum = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double calib_host_read_gbs(int n_threads, size_t bytes, int passes) {
    if (n_threads < 1 || n_threads > 256 || passes < 1) return 0;
    const size_t words = bytes / 8;
    uint64_t *buf = ob_alloc_streamed(words * 8);
    read_slice *sl = ob_calloc((size_t)n_threads, sizeof *sl);
    pthread_t *tid = ob_calloc((size_t)n_threads, sizeof *tid);
    double best = 0;
    if (buf && sl && tid) {
        for (size_t i = 0; i < words; i++) buf[i] = i * 0x9e3779b97f4a7c15ull; /* every page */
        const size_t per = words / (size_t)n_threads / 8 * 8;
        for (int r = 0; r < passes; r++) {
            const double t0 = now_s();
            int started = 0;
            for (int t = 0; t < n_threads; t++) {
                sl[t] = (read_slice){buf + (size_t)t * per, per, 0};
                if (pthread_create(&tid[t], NULL, read_one, &sl[t])) break;
                started++;
            }
            for (int t = 0; t < started; t++) {
                pthread_join(tid[t], NULL);
                g_sink += sl[t].sum;
            }
            const double gbs = (double)per * 8 * started / (now_s() - t0) * 1e-9;
            if (started == n_threads && gbs > best) best = gbs;
        }
    }
    ob_free_aligned(buf);
    ob_free(sl);
    ob_free(tid);
    return best;
}
