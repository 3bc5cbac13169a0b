/*
 * A persistent thread pool for the CPU ops. One pool lives per context; its workers stay alive
 * between ops and wait on a generation counter: they spin for a short while (ops follow each
 * other within microseconds during a forward step) and then sleep on a condition variable, so
 * an idle engine costs no CPU. The calling thread takes part as worker 0, so a pool of n
 * threads starts n - 1 pthreads. No OpenMP: the pool is small and its behaviour is visible here.
 */
#ifndef OB_CPU_POOL_H
#define OB_CPU_POOL_H

#include "outboard.h"

#include <stdint.h>

typedef struct cpu_pool cpu_pool;

/* The work of one op: called once per thread with ith in [0, nth). */
typedef void (*cpu_task_fn)(void *arg, int ith, int nth);

/* Starts n_threads - 1 workers (n_threads >= 1). *out is owned by the caller (cpu_pool_free).
 * Fails with OB_ERR_NOMEM or OB_ERR_ARG (n_threads out of range, thread creation failed). */
ob_status cpu_pool_new(int n_threads, cpu_pool **out, ob_err *err);

/* Stops and joins the workers. cpu_pool_free(NULL) is a no-op. */
void cpu_pool_free(cpu_pool *p);

int cpu_pool_n_threads(const cpu_pool *p);

/* Runs fn(arg, ith, nth) on every thread (the caller is ith 0) and returns when all are done.
 * Not reentrant: one caller at a time per pool. */
void cpu_pool_run(cpu_pool *p, cpu_task_fn fn, void *arg);

/* Splits [0, n) into nth near-equal ranges; thread ith gets [*lo, *hi). */
static inline void cpu_split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t per = (n + nth - 1) / nth;
    *lo = per * ith < n ? per * ith : n;
    *hi = *lo + per < n ? *lo + per : n;
}

/* Physical cores of this machine (hyper-threads not counted); at least 1. */
int cpu_physical_cores(void);

#endif
