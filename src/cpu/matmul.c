/*
 * Quantized matmul: activation conversion, then weight rows dealt to threads in chunks that a
 * shared counter hands out (threads on a busy machine run at different speeds, so a static
 * split would leave the fast ones idle). See matmul.h for the tiling.
 */
#include "cpu/matmul.h"

#include "core/err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* Weight rows are handed out in shrinking chunks (guided scheduling): each claim takes
 * 1/(MM_GUIDE * n_threads) of the rows still left, rounded down to a multiple of MM_ROW_STEP
 * (every rp_rows divides it) and at least MM_MIN_ROWS. The first chunks are long, which matters
 * for decode: each is one sequential run through memory, and with short ones (16 rows, 18 KB of
 * Q4_K) the two threads' interleaved jumps kept the hardware prefetchers from ramping up (tg 33
 * t/s against 43-52 t/s with 64 rows or more, 1B Q4_K_M, 2 threads). The last ones are short,
 * so the thread that finishes first waits for at most a short chunk at the end of each product
 * instead of up to an eighth of it. */
#define MM_GUIDE 2
#define MM_MIN_ROWS 32
#define MM_ROW_STEP 16
#define MM_TOKENS 32 /* tokens per tile: a weight row is reused from L1 across this many */

ob_status cpu_weight_init(cpu_weight *w, ob_err *err) {
    w->qt = quant_traits_get(w->type);
    if (!w->qt || !w->qt->vec_dot)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "tensor '%s': type id %u has no CPU kernels",
                       w->name, (unsigned)w->type);
    w->act = quant_traits_get(w->qt->vec_dot_type);
    if (!w->act || !w->act->act_from_f32)
        return ob_fail(err, OB_ERR_UNSUPPORTED,
                       "tensor '%s': activation type id %u has no quantizer", w->name,
                       (unsigned)w->qt->vec_dot_type);
    if (w->n_in % w->qt->block_size || w->n_in % w->act->block_size)
        return ob_fail(err, OB_ERR_FORMAT,
                       "tensor '%s': row length %lld is not a multiple of the %s block (%lld)",
                       w->name, (long long)w->n_in, w->qt->name, (long long)w->qt->block_size);
    w->act_row_size = (size_t)(w->n_in / w->act->block_size) * w->act->type_size;
    w->pack_row_size = w->qt->dot_packed ? w->qt->act_pack_size(w->n_in) : 0;
    cpu_weight_repack(w);
    return OB_OK;
}

static int act_is_f32(const cpu_weight *w) { return w->qt->vec_dot_type == OB_QTYPE_F32; }

/* Whether this product runs on packed activations: single-token products (decode), where
 * the packed kernels are fastest. */
static int use_packed(const cpu_weight *w, int64_t n_tok) {
    return n_tok == 1 && w->pack_row_size > 0;
}

size_t cpu_matmul_wsize(const cpu_weight *w, int64_t n_tok) {
    if (act_is_f32(w)) return 0;
    if (w->rp) return (size_t)n_tok * w->rp_act_row_size;
    size_t plain = (size_t)n_tok * w->act_row_size;
    return plain > w->pack_row_size ? plain : w->pack_row_size;
}

typedef struct mm_task {
    float *y;
    const cpu_weight *w;
    const float *x;   /* (n_tok, n_in) f32 */
    const char *xq;   /* (n_tok, act_row_size) vec_dot_type, or (1, pack_row_size) packed */
    int64_t n_tok;
    int packed;       /* use_packed() */
    quant_from_f32_fn conv; /* f32 row -> xq row */
    size_t xq_row;    /* bytes per xq row */
    _Atomic int64_t next; /* first row not yet handed out */
    int64_t div;       /* a claim takes the rows left / div (MM_GUIDE * threads) */
} mm_task;

static void convert_run(void *arg, int ith, int nth) {
    mm_task *t = arg;
    int64_t lo, hi;
    cpu_split(t->n_tok, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++)
        t->conv(t->x + r * t->w->n_in, (void *)(t->xq + r * t->xq_row), t->w->n_in);
}

/* Rows [r_lo, r_hi) of W against every token, a tile of MM_TOKENS tokens at a time: the
 * chunk's weight rows stay in cache across the tiles, and quant_dot_tile shares loads between
 * rows and tokens inside a tile (register tiling). */
static void mm_rows(const mm_task *t, int64_t r_lo, int64_t r_hi) {
    const cpu_weight *w = t->w;
    const char *wrows = (const char *)w->data + (size_t)r_lo * w->row_size;
    if (w->rp) {
        const char *rows = (const char *)w->rp + (size_t)(r_lo / w->qt->rp_rows) * w->rp_group;
        for (int64_t t0 = 0; t0 < t->n_tok; t0 += MM_TOKENS) {
            int64_t nt = t->n_tok - t0 < MM_TOKENS ? t->n_tok - t0 : MM_TOKENS;
            w->qt->rp_dot(w->n_in, r_hi - r_lo, nt, &t->y[t0 * w->n_out + r_lo],
                          (size_t)w->n_out, rows, w->rp_group,
                          t->xq + (size_t)t0 * w->rp_act_row_size, w->rp_act_row_size);
        }
        return;
    }
    if (t->packed) {
        w->qt->dot_packed(w->n_in, r_hi - r_lo, 1, &t->y[r_lo], (size_t)w->n_out, wrows,
                          w->row_size, t->xq, w->pack_row_size);
        return;
    }
    for (int64_t t0 = 0; t0 < t->n_tok; t0 += MM_TOKENS) {
        int64_t nt = t->n_tok - t0 < MM_TOKENS ? t->n_tok - t0 : MM_TOKENS;
        quant_dot_tile(w->qt, w->n_in, r_hi - r_lo, nt, &t->y[t0 * w->n_out + r_lo],
                       (size_t)w->n_out, wrows, w->row_size,
                       t->xq + (size_t)t0 * w->act_row_size, w->act_row_size);
    }
}

/* One chunk. Decode streams it in one pass; prefill walks it MM_ROW_STEP rows at a time (or
 * the repacked kernel's rp_prefill_rows) so that those rows stay in L1/L2 while every token
 * tile passes over them (a whole chunk of an 8B model's FFN would not fit). */
static void mm_chunk(const mm_task *t, int64_t r_lo, int64_t r_hi) {
    if (t->n_tok == 1) {
        mm_rows(t, r_lo, r_hi);
        return;
    }
    const int64_t step =
        t->w->rp && t->w->qt->rp_prefill_rows ? t->w->qt->rp_prefill_rows : MM_ROW_STEP;
    for (int64_t r = r_lo; r < r_hi; r += step)
        mm_rows(t, r, r + step < r_hi ? r + step : r_hi);
}

/* Claims the next guided chunk of rows [0, total) from *next, [*lo, *hi); false when none
 * are left. */
static bool guided_claim(_Atomic int64_t *next, int64_t total, int64_t div, int64_t *lo,
                         int64_t *hi) {
    int64_t r = atomic_load_explicit(next, memory_order_relaxed);
    for (;;) {
        if (r >= total) return false;
        int64_t n = (total - r) / div;
        n -= n % MM_ROW_STEP;
        if (n < MM_MIN_ROWS) n = MM_MIN_ROWS;
        if (n > total - r) n = total - r;
        if (atomic_compare_exchange_weak_explicit(next, &r, r + n, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *lo = r;
            *hi = r + n;
            return true;
        }
    }
}

/* Claims the next chunk of t's rows, [*lo, *hi); false when none are left. */
static bool mm_claim(mm_task *t, int64_t *lo, int64_t *hi) {
    return guided_claim(&t->next, t->w->n_out, t->div, lo, hi);
}

static void mm_run(void *arg, int ith, int nth) {
    mm_task *t = arg;
    (void)ith;
    (void)nth;
    int64_t lo, hi;
    while (mm_claim(t, &lo, &hi)) mm_chunk(t, lo, hi);
}

void cpu_matmul(cpu_pool *pool, float *y, const cpu_weight *w, const float *x, int64_t n_tok,
                void *wsp) {
    mm_task t = {.y = y, .w = w, .x = x, .xq = act_is_f32(w) ? (const char *)x : wsp,
                 .n_tok = n_tok, .packed = !w->rp && use_packed(w, n_tok),
                 .conv = w->act->act_from_f32, .xq_row = w->act_row_size};
    if (w->rp) {
        t.conv = w->qt->rp_act;
        t.xq_row = w->rp_act_row_size;
    }
    atomic_init(&t.next, 0);
    t.div = (int64_t)cpu_pool_n_threads(pool) * MM_GUIDE;
    if (t.packed) {
        w->qt->act_pack(x, wsp, w->n_in);
    } else if (!act_is_f32(w)) {
        if (n_tok == 1) convert_run(&t, 0, 1);
        else cpu_pool_run(pool, convert_run, &t);
    }
    cpu_pool_run(pool, mm_run, &t);
}

/* ---- several products in one pass ------------------------------------------------------ */

/* Jobs per pass of the pool (their tasks live on the caller's stack). */
#define MANY_GROUP 32

/* The mm_task of job j, its activations converted into xq. */
static void many_task(mm_task *t, const cpu_matmul_job *j, char *xq) {
    const cpu_weight *w = j->w;
    *t = (mm_task){.y = j->y, .w = w, .x = j->x, .xq = act_is_f32(w) ? (const char *)j->x : xq,
                   .n_tok = j->n_tok, .packed = !w->rp && use_packed(w, j->n_tok),
                   .conv = w->act->act_from_f32, .xq_row = w->act_row_size};
    if (w->rp) {
        t->conv = w->qt->rp_act;
        t->xq_row = w->rp_act_row_size;
    }
    atomic_init(&t->next, 0);
}

typedef struct many_run {
    mm_task *tasks;
    int n;
    /* decode groups: the jobs' rows laid end to end, job i's from start[i] (padded to
     * MM_ROW_STEP), claimed from one counter */
    int64_t start[MANY_GROUP + 1];
    _Atomic int64_t next;
    int64_t div;
} many_run;

/* Activations of every job, the jobs' tokens dealt to the threads. */
static void many_convert(void *arg, int ith, int nth) {
    const many_run *m = arg;
    for (int i = 0; i < m->n; i++) {
        mm_task *t = &m->tasks[i];
        if (act_is_f32(t->w) || t->packed) continue;
        int64_t lo, hi;
        cpu_split(t->n_tok, ith, nth, &lo, &hi);
        for (int64_t r = lo; r < hi; r++)
            t->conv(t->x + r * t->w->n_in, (void *)(t->xq + r * t->xq_row), t->w->n_in);
    }
}

/* Every thread walks the jobs in order, taking chunks of each until none is left. */
static void many_mm(void *arg, int ith, int nth) {
    const many_run *m = arg;
    for (int i = 0; i < m->n; i++) mm_run(&m->tasks[i], ith, nth);
}

/* Decode: the threads claim guided chunks of the jobs' rows laid end to end, so a claim early
 * in the pass spans whole experts. Each thread then streams long runs of weights instead of
 * the two taking turns through every job in short pieces. */
static void many_flat(void *arg, int ith, int nth) {
    many_run *m = arg;
    (void)ith;
    (void)nth;
    int64_t r, end;
    while (guided_claim(&m->next, m->start[m->n], m->div, &r, &end)) {
        int j = 0;
        while (m->start[j + 1] <= r) j++;
        for (int64_t lo = r; lo < end; j++) {
            const int64_t hi = end < m->start[j + 1] ? end : m->start[j + 1];
            /* job j's rows [a, b): the padding past its n_out is nobody's */
            const int64_t n_out = m->tasks[j].w->n_out, a = lo - m->start[j];
            const int64_t b = hi - m->start[j] < n_out ? hi - m->start[j] : n_out;
            if (a < b) mm_chunk(&m->tasks[j], a, b);
            lo = hi;
        }
    }
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t cpu_matmul_many_wsize(const cpu_matmul_job *jobs, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += round64(cpu_matmul_wsize(jobs[i].w, jobs[i].n_tok));
    return total;
}

/* Jobs [0, n) with n <= MANY_GROUP: their conversions in one pass, their products in one. */
static void many_group(cpu_pool *pool, const cpu_matmul_job *jobs, int n, char *xq) {
    mm_task tasks[MANY_GROUP];
    bool convert = false, one_row = true;
    const int64_t div = (int64_t)cpu_pool_n_threads(pool) * MM_GUIDE;
    for (int i = 0; i < n; i++) {
        many_task(&tasks[i], &jobs[i], xq);
        tasks[i].div = div;
        xq += round64(cpu_matmul_wsize(jobs[i].w, jobs[i].n_tok));
        if (tasks[i].packed)
            jobs[i].w->qt->act_pack(jobs[i].x, (void *)tasks[i].xq, jobs[i].w->n_in);
        else convert |= !act_is_f32(jobs[i].w);
        one_row &= jobs[i].n_tok <= 1;
    }
    many_run m = {.tasks = tasks, .n = n, .div = div};
    if (convert && one_row) many_convert(&m, 0, 1);
    else if (convert) cpu_pool_run(pool, many_convert, &m);
    if (!one_row) {
        cpu_pool_run(pool, many_mm, &m);
        return;
    }
    m.start[0] = 0;
    for (int i = 0; i < n; i++) {
        const int64_t rows = jobs[i].n_tok == 1 ? jobs[i].w->n_out : 0;
        m.start[i + 1] = m.start[i] + (rows + MM_ROW_STEP - 1) / MM_ROW_STEP * MM_ROW_STEP;
    }
    atomic_init(&m.next, 0);
    cpu_pool_run(pool, many_flat, &m);
}

void cpu_matmul_many(cpu_pool *pool, const cpu_matmul_job *jobs, int n, void *wsp) {
    char *xq = wsp;
    for (int i = 0; i < n; i += MANY_GROUP) {
        const int g = n - i < MANY_GROUP ? n - i : MANY_GROUP;
        many_group(pool, jobs + i, g, xq);
        xq += cpu_matmul_many_wsize(jobs + i, g);
    }
}

void cpu_get_rows(const cpu_weight *w, const int32_t *ids, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i++)
        w->qt->to_f32((const char *)w->data + (size_t)ids[i] * w->row_size, out + i * w->n_in,
                      w->n_in);
}
