/*
 * The scheduler's side of the plan in force: the speed its own passes measure (for /health,
 * beside the plan's prediction), and with --watch-devices the move of a model left on the CPU
 * back to its device at an idle moment. Both run on the engine thread; the counters are read
 * from HTTP threads under s->mu.
 */
#include "serve/serve_sched_int.h"

#include <errno.h>
#include <time.h>

/* Whether every row of the batch is a prompt row (1), every sequence decodes one token (2),
 * or neither (0): the kinds the speed counters keep apart. */
int sched_batch_kind(const serve_sched *s, int64_t n_drafts) {
    const ob_batch *b = s->batch;
    bool prefill = true, decode = n_drafts == 0;
    for (int64_t i = 0; i < b->n; i++) {
        prefill &= s->entry[i]->phase == SERVE_SEQ_PREFILL;
        decode &= s->entry[i]->phase == SERVE_SEQ_DECODE;
    }
    return prefill ? 1 : decode ? 2 : 0;
}

void sched_speed_add(serve_sched *s, int kind, int64_t n, int64_t t0) {
    const double secs = (double)(serve_now_ns() - t0) / 1e9;
    pthread_mutex_lock(&s->mu);
    if (kind == 1) s->speed.prefill_tokens += n, s->speed.prefill_s += secs;
    if (kind == 2) s->speed.decode_passes++, s->speed.decode_s += secs;
    pthread_mutex_unlock(&s->mu);
}

void serve_sched_speed_get(serve_sched *s, serve_sched_speed *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->speed;
    pthread_mutex_unlock(&s->mu);
}

/* Waits (s->mu held) for work; with a replug callback, at most watch_s. True when that time
 * passed with nothing to do: an idle moment to look for the device. */
bool sched_idle_wait(serve_sched *s) {
    if (!s->o.replug) {
        pthread_cond_wait(&s->cv, &s->mu);
        return false;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* the condition variable's clock */
    const double w = s->o.watch_s > 0 ? s->o.watch_s : 1.0;
    until.tv_sec += (time_t)w;
    until.tv_nsec += (long)((w - (double)(time_t)w) * 1e9);
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    const int rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
    return rc == ETIMEDOUT && s->n_waiting == 0 && s->n_running == 0 &&
           !atomic_load(&s->stopping);
}

/* An idle moment with --watch-devices: the model moves to its device if it is there. */
void sched_replug(serve_sched *s) {
    ob_context *fresh = NULL;
    ob_err err;
    if (s->o.replug(s->o.replan_user, &fresh, &err)) return;
    s->o.ctx = fresh;
    s->xfer_seen = (ob_transfer_stats){0};
    pthread_mutex_lock(&s->mu); /* the new placement's speed from now on */
    s->speed = (serve_sched_speed){0};
    pthread_mutex_unlock(&s->mu);
}

