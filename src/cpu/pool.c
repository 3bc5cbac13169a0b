/*
 * Thread pool: persistent workers, a generation counter as the start signal and a done counter
 * as the end signal. Both waits spin first (an op is often only tens of microseconds long, and
 * a sleep/wake pair costs more than that) and then block on the pool's condition variable, so
 * a pool whose context is idle uses no CPU. The spin is bounded by a count, not time, and is
 * short because this code often runs on machines with fewer cores than threads asked for.
 */
#include "cpu/pool.h"

#include "core/alloc.h"
#include "core/err.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* Spin iterations before sleeping (each a pause instruction, ~10-100 ns). Every POOL_YIELD
 * of them the thread yields, so that when there are more threads than free cores (a busy
 * machine, or more threads asked for than exist) the one being waited for gets to run. */
#define POOL_SPIN 20000
#define POOL_YIELD 64
#define POOL_MAX_THREADS 512

struct cpu_pool {
    int n_threads;
    pthread_t *threads; /* (n_threads - 1) workers */
    pthread_mutex_t mu;
    pthread_cond_t cv_start; /* workers sleep here waiting for a new generation */
    pthread_cond_t cv_done;  /* the caller sleeps here waiting for the workers */
    _Atomic uint64_t gen;    /* bumped once per cpu_pool_run; 0 before the first */
    _Atomic int n_done;      /* workers finished with the current generation */
    _Atomic int n_sleeping;  /* workers blocked on cv_start (skip the broadcast when 0) */
    _Atomic int caller_sleeping;
    _Atomic int stop;
    cpu_task_fn fn;
    void *arg;
};

typedef struct worker_arg {
    cpu_pool *pool;
    int ith;
} worker_arg;

static void wait_for_generation(cpu_pool *p, uint64_t seen) {
    for (int i = 0; i < POOL_SPIN; i++) {
        if (atomic_load_explicit(&p->gen, memory_order_acquire) != seen) return;
        if (i % POOL_YIELD == POOL_YIELD - 1) sched_yield();
        else CPU_RELAX();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->n_sleeping, 1);
    while (atomic_load(&p->gen) == seen) pthread_cond_wait(&p->cv_start, &p->mu);
    atomic_fetch_sub(&p->n_sleeping, 1);
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *varg) {
    worker_arg *wa = varg;
    cpu_pool *p = wa->pool;
    int ith = wa->ith;
    ob_free(wa);
    uint64_t seen = 0;
    for (;;) {
        wait_for_generation(p, seen);
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (atomic_load(&p->stop)) break;
        p->fn(p->arg, ith, p->n_threads);
        /* The last worker to finish wakes a sleeping caller; the lock orders the wake-up after
         * the caller's check so it cannot be lost. */
        if (atomic_fetch_add(&p->n_done, 1) + 1 == p->n_threads - 1 &&
            atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Bumps the generation under the mutex: a worker about to sleep re-checks gen while holding it,
 * so the wake-up cannot fall between its check and its wait. */
static void signal_generation(cpu_pool *p) {
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->n_sleeping) > 0) pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
}

ob_status cpu_pool_new(int n_threads, cpu_pool **out, ob_err *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > POOL_MAX_THREADS)
        return ob_fail(err, OB_ERR_ARG, "thread pool: %d threads, expected 1..%d", n_threads,
                       POOL_MAX_THREADS);
    cpu_pool *p = ob_calloc(1, sizeof *p);
    if (!p) return ob_fail(err, OB_ERR_NOMEM, "thread pool: out of memory");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (n_threads > 1) {
        p->threads = ob_calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            cpu_pool_free(p);
            return ob_fail(err, OB_ERR_NOMEM, "thread pool: out of memory");
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = ob_alloc(1, sizeof *wa);
        if (wa) *wa = (worker_arg){p, i};
        if (!wa || pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
            ob_free(wa);
            p->n_threads = i; /* join only those started */
            cpu_pool_free(p);
            return ob_fail(err, wa ? OB_ERR_ARG : OB_ERR_NOMEM,
                           "thread pool: could not start thread %d of %d", i, n_threads);
        }
    }
    *out = p;
    return OB_OK;
}

void cpu_pool_free(cpu_pool *p) {
    if (!p) return;
    if (p->threads) {
        atomic_store(&p->stop, 1);
        signal_generation(p);
        for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    ob_free(p->threads);
    ob_free(p);
}

int cpu_pool_n_threads(const cpu_pool *p) { return p->n_threads; }

void cpu_pool_run(cpu_pool *p, cpu_task_fn fn, void *arg) {
    if (p->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->n_done, 0, memory_order_release);
    signal_generation(p);
    fn(arg, 0, p->n_threads);
    int want = p->n_threads - 1;
    for (int i = 0; i < POOL_SPIN; i++) {
        if (atomic_load_explicit(&p->n_done, memory_order_acquire) == want) return;
        if (i % POOL_YIELD == POOL_YIELD - 1) sched_yield();
        else CPU_RELAX();
    }
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->caller_sleeping, 1);
    while (atomic_load(&p->n_done) != want)
        pthread_cond_wait(&p->cv_done, &p->mu);
    atomic_store(&p->caller_sleeping, 0);
    pthread_mutex_unlock(&p->mu);
}

/* Counts distinct (package, core) pairs under /sys; falls back to the online CPU count. */
int cpu_physical_cores(void) {
    enum { MAX_CPUS = 1024 };
    int pairs[MAX_CPUS][2];
    int n_pairs = 0;
    for (int cpu = 0; cpu < MAX_CPUS; cpu++) {
        char path[128];
        int ids[2] = {0, 0};
        const char *names[2] = {"physical_package_id", "core_id"};
        int ok = 1;
        for (int k = 0; k < 2 && ok; k++) {
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu,
                     names[k]);
            FILE *f = fopen(path, "r");
            if (!f || fscanf(f, "%d", &ids[k]) != 1) ok = 0;
            if (f) fclose(f);
        }
        if (!ok) break;
        int seen = 0;
        for (int i = 0; i < n_pairs && !seen; i++)
            seen = pairs[i][0] == ids[0] && pairs[i][1] == ids[1];
        if (!seen) {
            pairs[n_pairs][0] = ids[0];
            pairs[n_pairs][1] = ids[1];
            n_pairs++;
        }
    }
    if (n_pairs > 0) return n_pairs;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
