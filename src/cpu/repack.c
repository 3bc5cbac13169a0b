/*
 * Repacked weight copies (quant_traits.rp_*): made once when a weight is bound and shared by
 * every cpu_weight bound to the same data (tied embeddings and output), kept in a process-wide
 * list keyed by the source address and freed when the model releases its tensors
 * (cpu_weight_release). Repacking is an optimisation: when memory is short, or OB_REPACK=0 is
 * set, the weight simply keeps the file's layout.
 */
#include "cpu/matmul.h"

#include "core/alloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Copies smaller than a huge page are carved from shared slabs of huge pages: a mixture of
 * experts has hundreds of ~1 MB expert matrices per layer, and on small pages each copy cost
 * decode a TLB miss every 4 KB of its stream. A slab is freed with its last copy. */
#define SLAB_BYTES ((size_t)32 << 20)
#define SLAB_MAX_COPY ((size_t)2 << 20)

typedef struct repack_slab {
    struct repack_slab *next;
    char *base;       /* (SLAB_BYTES) owned, from ob_alloc_streamed */
    size_t used;      /* bytes handed out, from base */
    int64_t live;     /* copies in it not yet released */
} repack_slab;

typedef struct repack_entry {
    struct repack_entry *next;
    const void *src;  /* the file's weight data (borrowed) */
    uint32_t type;
    void *copy;       /* (n_out / rp_rows groups) repacked, 64-byte aligned: owned, or in slab */
    repack_slab *slab; /* where copy lives, or NULL when the entry owns it */
} repack_entry;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static repack_entry *g_list;
static repack_slab *g_slabs; /* the newest first; only the newest takes new copies */

/* size bytes for a copy: from the newest slab when small (*slab set), else its own
 * allocation (*slab NULL). NULL when memory is short. Called under g_mu. */
static void *copy_alloc(size_t size, repack_slab **slab) {
    *slab = NULL;
    if (size >= SLAB_MAX_COPY) return ob_alloc_streamed(size);
    size = (size + 63) & ~(size_t)63;
    repack_slab *s = g_slabs;
    if (!s || SLAB_BYTES - s->used < size) {
        s = ob_calloc(1, sizeof *s);
        if (!s || !(s->base = ob_alloc_streamed(SLAB_BYTES))) {
            ob_free(s);
            return ob_alloc_aligned(64, size);
        }
        s->next = g_slabs;
        g_slabs = s;
    }
    void *p = s->base + s->used;
    s->used += size;
    s->live++;
    *slab = s;
    return p;
}

/* Frees a copy from copy_alloc (its slab with its last copy). Called under g_mu. */
static void copy_free(void *copy, repack_slab *slab) {
    if (!slab) {
        ob_free_aligned(copy);
        return;
    }
    if (--slab->live > 0) return;
    for (repack_slab **p = &g_slabs; *p; p = &(*p)->next) {
        if (*p != slab) continue;
        *p = slab->next;
        break;
    }
    ob_free_aligned(slab->base);
    ob_free(slab);
}

static int repack_enabled(void) {
    const char *e = getenv("OB_REPACK");
    return !e || strcmp(e, "0") != 0;
}

typedef struct repack_job {
    const cpu_weight *w;
    char *copy;
    int64_t g_lo, g_hi; /* groups of rp_rows rows this job packs */
} repack_job;

static void repack_groups(const repack_job *j) {
    const quant_traits *qt = j->w->qt;
    const size_t group = (size_t)qt->rp_rows * j->w->row_size;
    for (int64_t g = j->g_lo; g < j->g_hi; g++)
        qt->rp_pack((const char *)j->w->data + (size_t)g * group, j->w->row_size,
                    j->copy + g * group, j->w->n_in);
}

static void *repack_thread(void *arg) {
    repack_groups(arg);
    return NULL;
}

/* Large weights are packed by several threads (an 8B model's 4 GB took 11 s on one core, half
 * of it the kernel zeroing the new pages, which the touching thread pays for). */
#define REPACK_MAX_THREADS 16
#define REPACK_BYTES_PER_THREAD (8u << 20)

/* Builds the copy: n_out / rows groups of rows * row_size bytes (*slab: copy_alloc's). NULL
 * on allocation failure. */
static void *repack_build(const cpu_weight *w, repack_slab **slab) {
    const quant_traits *qt = w->qt;
    const int64_t groups = w->n_out / qt->rp_rows;
    const size_t group = (size_t)qt->rp_rows * w->row_size;
    char *copy = copy_alloc((size_t)groups * group, slab);
    if (!copy) return NULL;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t n = (int64_t)((size_t)groups * group / REPACK_BYTES_PER_THREAD);
    if (n > cpus) n = cpus;
    if (n > REPACK_MAX_THREADS) n = REPACK_MAX_THREADS;
    if (n > groups) n = groups;
    if (n < 1) n = 1;
    repack_job jobs[REPACK_MAX_THREADS];
    pthread_t threads[REPACK_MAX_THREADS];
    bool started[REPACK_MAX_THREADS] = {false};
    for (int64_t i = 0; i < n; i++) {
        jobs[i] = (repack_job){w, copy, groups * i / n, groups * (i + 1) / n};
        /* Job 0 runs here; a thread that cannot start leaves its job to this one too. */
        if (i > 0) started[i] = pthread_create(&threads[i], NULL, repack_thread, &jobs[i]) == 0;
    }
    repack_groups(&jobs[0]);
    for (int64_t i = 1; i < n; i++) {
        if (started[i]) pthread_join(threads[i], NULL);
        else repack_groups(&jobs[i]);
    }
    return copy;
}

void cpu_weight_repack(cpu_weight *w) {
    w->rp = NULL;
    if (!w->qt->rp_rows || w->n_out % w->qt->rp_rows || !repack_enabled()) return;
    pthread_mutex_lock(&g_mu);
    repack_entry *e = g_list;
    while (e && !(e->src == w->data && e->type == w->type)) e = e->next;
    if (!e) {
        e = ob_calloc(1, sizeof *e);
        repack_slab *slab = NULL;
        void *copy = e ? repack_build(w, &slab) : NULL;
        if (copy) {
            *e = (repack_entry){g_list, w->data, w->type, copy, slab};
            g_list = e;
        } else {
            ob_free(e);
            e = NULL;
        }
    }
    pthread_mutex_unlock(&g_mu);
    if (!e) return;
    w->rp = e->copy;
    w->rp_group = (size_t)w->qt->rp_rows * w->row_size;
    w->rp_act_row_size = w->qt->rp_act_size(w->n_in);
}

void cpu_weight_release(const void *data) {
    pthread_mutex_lock(&g_mu);
    for (repack_entry **p = &g_list; *p;) {
        repack_entry *e = *p;
        if (e->src == data) {
            *p = e->next;
            copy_free(e->copy, e->slab);
            ob_free(e);
        } else {
            p = &e->next;
        }
    }
    pthread_mutex_unlock(&g_mu);
}
