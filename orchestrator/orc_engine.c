/*  orc_engine: the saga state machine. See orc_engine.h for the batch API.

    DESIGN
    ======

    Saga states

        submit --> RUNNING --(every step SUCCEEDED)--> COMPLETED
                      |
                      | a step fails for good, runs out of tries or of
                      | time, or the client cancels
                      v
                 COMPENSATING --(every step that may have acted is
                      |          COMPENSATED)--> COMPENSATED
                      |
                      | a compensation fails for good or runs out of tries
                      v
                   PARKED --(operator retry)--> COMPENSATING
                      |
                      +----(operator resolve)--> RESOLVED

    Step states (action half)

        PENDING -> READY -> RUNNING -> SUCCEEDED
                     ^        |  \
                     |        |   +-> FAILED        (worker said failed: its
                     |        v                      barrier row records it,
                  WAITING <---+ retry later,         so no try can act later)
                              timeout (both maybe_applied)

    Step states (compensation half), entered when the saga compensates

        SUCCEEDED, RUNNING, or READY/WAITING with maybe_applied
            -> COMP_PENDING -> COMP_READY -> COMP_RUNNING -> COMPENSATED
                                   ^              |
                                   +- COMP_WAITING <+ retry later, timeout
                                                  +-> COMP_PARKED (failed, or
                                                      out of tries)
        PENDING, or READY/WAITING never sent -> SKIPPED

    Invariants
    1. Nothing leaves ahead of the journal: every change of a batch is
       written in one transaction, and nothing that follows from it (reply,
       dispatch, event) leaves before that transaction commits. Commits
       are pipelined (orc_engine_commit_start/_end): while batch N is
       written and synced by the journal's committer thread, the loop
       applies batch N+1 in memory, so memory runs at most one batch
       ahead of the journal, and N+1's outbox waits for N+1's own commit.
       Batch N+1 is handed over only after N has landed, so the journal
       applies batches in order, one transaction each. A failed commit
       fails the batch collected meanwhile too (it was built on the failed
       one's memory): both outboxes are dropped and every saga either
       touched is reloaded from the journal. Retention chooses what to
       remove from the last commit and removes it inside the next.
    2. A step whose outcome is unknown (a timeout, a lost worker, a crash
       of zsagad while it ran, a "retry" answer) is treated as maybe
       applied until a later try settles it: it is compensated if the
       saga compensates. Workers' barriers make that safe.
    3. A step is compensated only after every step that depends on it and
       may have acted is compensated (reverse dependency order).
       Independent compensations run in parallel.
    4. A step the worker reported "failed" is not compensated: the worker
       rolled its effect back and recorded the failure in its barrier.
    5. Dispatch repeats: after a restart or a lost worker the same try is
       sent again (resend, no new attempt); the worker's barrier returns
       the stored outcome if the first one committed.
    6. Every dispatch carries a new lease (per step, journaled before the
       dispatch leaves); only a result under the step's latest lease
       counts, so a zombie worker's late answer cannot move a saga.

    Transitions and who makes them
        PENDING -> READY                  s_start_ready
        READY -> RUNNING                  orc_engine_pump
        RUNNING -> SUCCEEDED/FAILED       s_action_result
        RUNNING -> WAITING                s_action_result (retry), s_timer (deadline)
        WAITING -> READY                  s_timer
        * -> COMP_PENDING / SKIPPED       s_abort
        COMP_PENDING -> COMP_READY        s_comp_progress
        COMP_READY -> COMP_RUNNING        orc_engine_pump
        COMP_RUNNING -> COMPENSATED, COMP_WAITING, COMP_PARKED
                                          s_comp_result, s_timer
        saga state changes                s_saga_set (from the above)
*/
#define _GNU_SOURCE /* memmem */
#include "orc_engine.h"
#include "common/zlog.h"
#include "orc_metrics.h"
#include "orc_store.h"
#include "orc_timer.h"

#include <czmq.h>
#include <lmdb.h>
#include <signal.h>
#include <unistd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An outbox: what follows from one batch. */
typedef struct {
    orc_dispatch_t *out;
    size_t nout, capout;
    orc_event_t *ev;
    size_t nev, capev;
} s_box_t;

/* Hand `from`'s outbox on to `to` (which is empty); `from` keeps to's
   empty arrays, so neither allocation is lost. */
static void s_box_pass(s_box_t *to, s_box_t *from)
{
    s_box_t empty = *to;
    *to = *from;
    *from = empty;
    from->nout = from->nev = 0;
}

struct orc_engine_s {
    jnl_t *jnl;
    orc_config_t cfg;
    zhashx_t *table; /* saga id -> orc_saga_t, sagas not yet ended */
    orc_registry_t *reg;
    orc_timer_t *timers;
    orc_saga_t *dirty;
    uint64_t now_ms;  /* wall clock: timestamps, retention ages */
    uint64_t mono_ms; /* monotonic clock: timers, heartbeats, backoff */
    uint64_t ended_seq, archived_seq;
    bool archived_dirty;
    size_t used_bytes, map_bytes; /* journal use as of the last refresh */
    /* This commit's retention work, counted in stats once it commits. */
    /* The batch in flight (pipelined commit, orc_engine_commit_start):
       its sagas (fly_next, a reference each), its outbox, and what its
       commit accounts for once it has ended. */
    bool flying, fly_done, fly_archived, fly_empty;
    int fly_rc;
    orc_saga_t *fly;
    s_box_t fbox;
    /* The outbox of the flight that landed last, until the caller has sent
       it (orc_engine_outbox_clear): it goes out while the next flight is
       being committed. */
    s_box_t lbox;
    size_t fly_items;
    uint64_t fly_t0, fly_ended;
    struct s_sweep_s *fly_sweep;
    /* Sagas a failed commit dropped from memory whose reload failed too
       (the journal's database unreachable): loaded again at each tick
       until it works, so none is left behind until a restart. */
    char **reload;
    size_t nreload, capreload;
    uint64_t usage_ms, sweep_ms;
    uint64_t hist_seq;
    uint64_t boot;
    uint64_t rng;
    msgpack_sbuffer buf;
    s_box_t box;           /* the batch being collected: dispatches and events */
    uint64_t active_steps; /* steps of the sagas in the table */
    orc_stats_t stats;
};

#define BIT(i) (1ull << (i))

static void s_comp_progress(orc_engine_t *e, orc_saga_t *saga);
static void s_sweep_end(orc_engine_t *e, struct s_sweep_s *x, bool committed);
static void s_drop_events(orc_event_t *ev, size_t *n);
static void s_reload_pending(orc_engine_t *e);
static void s_start_ready(orc_engine_t *e, orc_saga_t *saga);

/* ---- small helpers ---------------------------------------------------- */

static uint64_t s_rand(orc_engine_t *e)
{
    /* xorshift64*: jitter only needs to be cheap and spread out. */
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return e->rng * 2685821657736338717ull;
}

static uint64_t s_backoff(orc_engine_t *e, const msg_retry_t *policy, uint32_t next_attempt)
{
    /* Equal jitter: half the delay for sure, half at random, so many
       sagas failing together do not retry together. */
    uint64_t d = msg_retry_delay(policy, next_attempt);
    return d / 2 + (d ? s_rand(e) % (d / 2 + 1) : 0);
}

static void s_list(orc_engine_t *e, orc_saga_t *saga)
{
    if (!saga->listed) {
        saga->listed = true;
        saga->refs++;
        saga->dirty_next = e->dirty;
        e->dirty = saga;
    }
}

static void s_event(orc_engine_t *e, orc_saga_t *saga, int32_t step, const char *what,
                    uint32_t attempt, const char *reason)
{
    if (e->box.nev == e->box.capev) {
        size_t cap = e->box.capev ? e->box.capev * 2 : 256;
        orc_event_t *ev = realloc(e->box.ev, cap * sizeof *ev);
        if (!ev)
            return; /* the transition still happens; only its record is lost */
        e->box.ev = ev;
        e->box.capev = cap;
    }
    orc_event_t *ev = &e->box.ev[e->box.nev++];
    ev->seq = ++e->hist_seq;
    ev->ts_ms = e->now_ms;
    strcpy(ev->id, saga->def->id);
    ev->step = step;
    strcpy(ev->step_id, step >= 0 ? saga->def->steps[step].id : "");
    ev->what = what;
    ev->attempt = attempt;
    ev->reason = reason ? strdup(reason) : NULL;
    ev->saga = saga;
    ev->took_us = 0;
    if (e->cfg.metrics) {
        if (step >= 0 && saga->steps[step].sent_us)
            ev->took_us = (uint64_t)zclock_usecs() - saga->steps[step].sent_us;
        else if (step < 0 && orc_saga_terminal(saga->state) && e->now_ms >= saga->created_ms)
            ev->took_us = (e->now_ms - saga->created_ms) * 1000;
    }
    s_list(e, saga);
}

static void s_step_set(orc_engine_t *e, orc_saga_t *saga, uint32_t i, uint8_t state)
{
    saga->steps[i].state = state;
    saga->dirty_steps |= BIT(i);
    saga->updated_ms = e->now_ms;
    s_list(e, saga);
}

static void s_saga_set(orc_engine_t *e, orc_saga_t *saga, uint8_t state, const char *reason)
{
    static const char *names[SAGA_NSTATES] = {
        [SAGA_RUNNING] = "saga.running",     [SAGA_COMPENSATING] = "saga.compensating",
        [SAGA_COMPLETED] = "saga.completed", [SAGA_COMPENSATED] = "saga.compensated",
        [SAGA_PARKED] = "saga.parked",       [SAGA_RESOLVED] = "saga.resolved",
    };
    saga->state = state;
    saga->updated_ms = e->now_ms;
    saga->dirty = true;
    if (reason)
        orc_set_text(&saga->reason, reason);
    if (state == SAGA_COMPLETED)
        e->stats.sagas_completed++;
    else if (state == SAGA_COMPENSATED)
        e->stats.sagas_compensated++;
    else if (state == SAGA_PARKED)
        e->stats.sagas_parked++;
    s_event(e, saga, -1, names[state], 0, reason);
}

static void s_disarm(orc_engine_t *e, orc_saga_t *saga, uint32_t i)
{
    orc_timer_entry_t t;
    saga->steps[i].due_ms = 0;
    /* The entry leaves the heap now: a finished step's timer must not keep
       its saga in memory until the deadline would have passed. */
    if (orc_timer_remove(e->timers, &saga->steps[i].timer_slot, &t))
        orc_saga_unref(saga);
}

static void s_arm(orc_engine_t *e, orc_saga_t *saga, uint32_t i, uint64_t due_ms)
{
    orc_step_t *st = &saga->steps[i];
    s_disarm(e, saga, i);
    st->due_ms = due_ms;
    if (orc_timer_push(e->timers, due_ms, saga, i, &st->timer_slot) == 0)
        saga->refs++;
}

static orc_system_t *s_system(orc_engine_t *e, const char *name)
{
    orc_system_t *sys = orc_registry_system(e->reg, name);
    return sys ? sys : orc_registry_define(e->reg, name, NULL, 0);
}

static void s_enqueue(orc_engine_t *e, orc_saga_t *saga, uint32_t i)
{
    orc_step_t *st = &saga->steps[i];
    if (st->queued)
        return;
    orc_system_t *sys = s_system(e, saga->def->steps[i].system);
    if (sys && orc_queue_push(sys, saga, i) == 0)
        st->queued = true;
}

static orc_worker_t *s_worker_by_serial(orc_engine_t *e, uint32_t serial)
{
    if (!serial)
        return NULL;
    for (orc_system_t *s = orc_registry_systems(e->reg); s; s = s->next)
        for (orc_worker_t *w = s->workers; w; w = w->next)
            if (w->serial == serial)
                return w;
    return NULL;
}

/* The worker holding this phase of the step is done with it. */
static void s_release(orc_engine_t *e, orc_step_t *st, msg_phase_t phase)
{
    uint32_t *slot = phase == MSG_PHASE_ACTION ? &st->act_worker : &st->comp_worker;
    orc_worker_t *w = s_worker_by_serial(e, *slot);
    if (w && w->inflight)
        w->inflight--;
    *slot = 0;
}

static void s_set_error(orc_step_t *st, const char *code, const char *text)
{
    snprintf(st->code, sizeof st->code, "%s", code ? code : "");
    orc_set_text(&st->error, text && text[0] ? text : NULL);
}

/* ---- the action half -------------------------------------------------- */

static void s_check_complete(orc_engine_t *e, orc_saga_t *saga)
{
    for (uint32_t i = 0; i < saga->def->nsteps; i++)
        if (saga->steps[i].state != STEP_SUCCEEDED)
            return;
    s_saga_set(e, saga, SAGA_COMPLETED, NULL);
}

static void s_start_ready(orc_engine_t *e, orc_saga_t *saga)
{
    uint64_t done = 0;
    for (uint32_t i = 0; i < saga->def->nsteps; i++)
        if (saga->steps[i].state == STEP_SUCCEEDED)
            done |= BIT(i);
    for (uint32_t i = 0; i < saga->def->nsteps; i++) {
        orc_step_t *st = &saga->steps[i];
        if (st->state == STEP_PENDING && (saga->def->steps[i].deps & ~done) == 0) {
            s_step_set(e, saga, i, STEP_READY);
            s_enqueue(e, saga, i);
        }
    }
}

/* Stop the saga and start undoing it (invariants 2-4). */
static void s_abort(orc_engine_t *e, orc_saga_t *saga, const char *reason)
{
    if (saga->state != SAGA_RUNNING)
        return;
    for (uint32_t i = 0; i < saga->def->nsteps; i++) {
        orc_step_t *st = &saga->steps[i];
        uint8_t next = st->state;
        switch (st->state) {
        case STEP_PENDING: next = STEP_SKIPPED; break;
        case STEP_READY:
        case STEP_WAITING:
            next = st->maybe_applied || st->resend ? STEP_COMP_PENDING : STEP_SKIPPED;
            break;
        case STEP_RUNNING:
        case STEP_SUCCEEDED: next = STEP_COMP_PENDING; break;
        default: break;
        }
        if (next != st->state) {
            if (st->state == STEP_RUNNING || st->state == STEP_WAITING)
                s_disarm(e, saga, i);
            st->resend = false;
            s_step_set(e, saga, i, next);
            if (next == STEP_SKIPPED)
                s_event(e, saga, (int32_t)i, "step.skipped", 0, NULL);
        }
    }
    s_saga_set(e, saga, SAGA_COMPENSATING, reason);
    s_comp_progress(e, saga);
}

/* The step failed for good; undo it too if some try may have acted. */
static void s_fail_step(orc_engine_t *e, orc_saga_t *saga, uint32_t i, const char *code,
                        const char *text)
{
    orc_step_t *st = &saga->steps[i];
    char reason[MSG_TEXT_MAX + 128];
    s_disarm(e, saga, i);
    s_set_error(st, code, text);
    st->finished_ms = e->now_ms;
    s_step_set(e, saga, i, st->maybe_applied ? STEP_COMP_PENDING : STEP_FAILED);
    s_event(e, saga, (int32_t)i, "step.failed", st->attempts, text);
    snprintf(reason, sizeof reason, "step '%s' failed: %s%s%s", saga->def->steps[i].id,
             code && code[0] ? code : "", code && code[0] && text && text[0] ? ": " : "",
             text ? text : "");
    s_abort(e, saga, reason);
}

static void s_action_result(orc_engine_t *e, orc_saga_t *saga, uint32_t i, const msg_t *m)
{
    orc_step_t *st = &saga->steps[i];
    const msg_step_t *def = &saga->def->steps[i];
    bool live = st->state == STEP_RUNNING || st->state == STEP_WAITING || st->state == STEP_READY;
    if (m->status == MSG_STATUS_OK && live) {
        s_disarm(e, saga, i);
        free(st->output);
        st->output = NULL;
        st->output_len = 0;
        if (m->output_len && (st->output = malloc(m->output_len))) {
            memcpy(st->output, m->output, m->output_len);
            st->output_len = (uint32_t)m->output_len;
        }
        st->finished_ms = e->now_ms;
        st->resend = false;
        s_set_error(st, NULL, NULL);
        s_step_set(e, saga, i, STEP_SUCCEEDED);
        s_event(e, saga, (int32_t)i, "step.succeeded", m->attempt, NULL);
        if (saga->state == SAGA_RUNNING) {
            s_start_ready(e, saga);
            s_check_complete(e, saga);
        }
    } else if (m->status == MSG_STATUS_FAILED && live) {
        /* The barrier recorded the failure: no try of it can act now. */
        st->maybe_applied = false;
        s_fail_step(e, saga, i, m->code[0] ? m->code : "failed", m->text);
    } else if (m->status == MSG_STATUS_FAILED && st->state == STEP_COMP_PENDING) {
        /* It was in flight when the saga stopped; now we know it did not act. */
        s_set_error(st, m->code, m->text);
        s_step_set(e, saga, i, STEP_FAILED);
        s_event(e, saga, (int32_t)i, "step.failed", m->attempt, m->text);
        s_comp_progress(e, saga);
    } else if (m->status == MSG_STATUS_RETRY && st->state == STEP_RUNNING &&
               m->attempt == st->attempts) {
        s_set_error(st, m->code[0] ? m->code : "retry", m->text);
        /* "Retry" does not prove the try did not act: a worker whose
           database dropped the connection during COMMIT (or a Redis
           killed between running a script and replying) cannot know
           whether it committed. Unknown is maybe applied (invariant 2):
           should the saga stop while the step waits for its next try (a
           cancel), or the tries run out, the step is compensated, and a
           compensation of a try that did not act is a no-op by its
           barrier. A later try's answer settles it ("failed" says no try
           acted; "ok" that one did). */
        st->maybe_applied = true;
        if (st->attempts >= def->retry.attempts) {
            s_fail_step(e, saga, i, "retries_exhausted", m->text);
            return;
        }
        s_step_set(e, saga, i, STEP_WAITING);
        s_arm(e, saga, i, e->mono_ms + s_backoff(e, &def->retry, st->attempts + 1));
        s_event(e, saga, (int32_t)i, "step.retrying", st->attempts, m->text);
    } else
        e->stats.stale_results++;
}

/* ---- the compensation half -------------------------------------------- */

static bool s_comp_open(uint8_t state)
{
    return state == STEP_COMP_PENDING || state == STEP_COMP_READY || state == STEP_COMP_RUNNING ||
           state == STEP_COMP_WAITING || state == STEP_COMP_PARKED;
}

static void s_comp_progress(orc_engine_t *e, orc_saga_t *saga)
{
    if (saga->state != SAGA_COMPENSATING)
        return;
    for (bool moved = true; moved;) {
        moved = false;
        for (uint32_t i = 0; i < saga->def->nsteps; i++) {
            if (saga->steps[i].state != STEP_COMP_PENDING)
                continue;
            uint64_t deps = msg_saga_dependents(saga->def, i);
            bool blocked = false;
            for (uint32_t j = 0; j < saga->def->nsteps && !blocked; j++)
                blocked = (deps & BIT(j)) && s_comp_open(saga->steps[j].state);
            if (blocked)
                continue;
            if (!saga->def->steps[i].compensation[0]) {
                /* Nothing to undo: the step declared no compensation. */
                saga->steps[i].comp_finished_ms = e->now_ms;
                s_step_set(e, saga, i, STEP_COMPENSATED);
                s_event(e, saga, (int32_t)i, "step.compensated", 0, "no compensation declared");
                moved = true;
            } else {
                s_step_set(e, saga, i, STEP_COMP_READY);
                s_enqueue(e, saga, i);
            }
        }
    }
    const char *parked = NULL;
    for (uint32_t i = 0; i < saga->def->nsteps; i++) {
        uint8_t s = saga->steps[i].state;
        if (s == STEP_COMP_READY || s == STEP_COMP_RUNNING || s == STEP_COMP_WAITING)
            return; /* still at work */
        if (s == STEP_COMP_PARKED && !parked)
            parked = saga->def->steps[i].id;
    }
    if (parked) {
        char reason[MSG_TEXT_MAX + 128];
        const orc_step_t *st = &saga->steps[msg_saga_find(saga->def, parked)];
        snprintf(reason, sizeof reason, "compensation of step '%s' needs an operator: %s%s%s",
                 parked, st->code, st->error ? ": " : "", st->error ? st->error : "");
        s_saga_set(e, saga, SAGA_PARKED, reason);
    } else
        s_saga_set(e, saga, SAGA_COMPENSATED, NULL);
}

static void s_comp_park(orc_engine_t *e, orc_saga_t *saga, uint32_t i, const char *code,
                        const char *text)
{
    s_disarm(e, saga, i);
    s_set_error(&saga->steps[i], code, text);
    s_step_set(e, saga, i, STEP_COMP_PARKED);
    s_event(e, saga, (int32_t)i, "step.compensation_parked", saga->steps[i].comp_attempts, text);
    s_comp_progress(e, saga);
}

static void s_comp_result(orc_engine_t *e, orc_saga_t *saga, uint32_t i, const msg_t *m)
{
    orc_step_t *st = &saga->steps[i];
    const msg_step_t *def = &saga->def->steps[i];
    bool live = st->state == STEP_COMP_RUNNING || st->state == STEP_COMP_WAITING ||
                st->state == STEP_COMP_READY;
    if (m->status == MSG_STATUS_OK && live) {
        s_disarm(e, saga, i);
        st->comp_finished_ms = e->now_ms;
        st->resend = false;
        s_step_set(e, saga, i, STEP_COMPENSATED);
        s_event(e, saga, (int32_t)i, "step.compensated", m->attempt, NULL);
        s_comp_progress(e, saga);
    } else if (m->status == MSG_STATUS_FAILED && st->state == STEP_COMP_RUNNING) {
        s_comp_park(e, saga, i, m->code[0] ? m->code : "failed", m->text);
    } else if (m->status == MSG_STATUS_RETRY && st->state == STEP_COMP_RUNNING &&
               m->attempt == st->comp_attempts) {
        if (st->comp_attempts >= def->comp_retry.attempts) {
            s_comp_park(e, saga, i, "retries_exhausted", m->text);
            return;
        }
        s_set_error(st, m->code[0] ? m->code : "retry", m->text);
        s_step_set(e, saga, i, STEP_COMP_WAITING);
        s_arm(e, saga, i, e->mono_ms + s_backoff(e, &def->comp_retry, st->comp_attempts + 1));
        s_event(e, saga, (int32_t)i, "step.compensation_retrying", st->comp_attempts, m->text);
    } else
        e->stats.stale_results++;
}

/* ---- timers and workers ----------------------------------------------- */

static void s_timer(orc_engine_t *e, orc_saga_t *saga, uint32_t i)
{
    orc_step_t *st = &saga->steps[i];
    const msg_step_t *def = &saga->def->steps[i];
    st->due_ms = 0;
    switch (st->state) {
    case STEP_RUNNING:
        /* No answer in time: the outcome is unknown (invariant 2). */
        e->stats.timeouts++;
        st->maybe_applied = true;
        s_release(e, st, MSG_PHASE_ACTION);
        s_event(e, saga, (int32_t)i, "step.timed_out", st->attempts, NULL);
        if (st->attempts >= def->retry.attempts) {
            char text[96];
            snprintf(text, sizeof text, "no result after %u attempts", st->attempts);
            s_fail_step(e, saga, i, "timeout", text);
            return;
        }
        s_set_error(st, "timeout", "no result before the deadline");
        s_step_set(e, saga, i, STEP_WAITING);
        s_arm(e, saga, i, e->mono_ms + s_backoff(e, &def->retry, st->attempts + 1));
        break;
    case STEP_WAITING:
        s_step_set(e, saga, i, STEP_READY);
        s_enqueue(e, saga, i);
        break;
    case STEP_COMP_RUNNING:
        e->stats.timeouts++;
        s_release(e, st, MSG_PHASE_COMPENSATION);
        s_event(e, saga, (int32_t)i, "step.compensation_timed_out", st->comp_attempts, NULL);
        if (st->comp_attempts >= def->comp_retry.attempts) {
            s_comp_park(e, saga, i, "timeout", "compensation: no result after its last attempt");
            return;
        }
        s_set_error(st, "timeout", "compensation: no result before the deadline");
        s_step_set(e, saga, i, STEP_COMP_WAITING);
        s_arm(e, saga, i, e->mono_ms + s_backoff(e, &def->comp_retry, st->comp_attempts + 1));
        break;
    case STEP_COMP_WAITING:
        s_step_set(e, saga, i, STEP_COMP_READY);
        s_enqueue(e, saga, i);
        break;
    default: break;
    }
}

/* One line for a result that does not count (the first of every 100:
   a forger must not flood the log). */
static void s_log_dropped(const orc_saga_t *saga, const msg_t *m, const orc_worker_t *w,
                          const char *what)
{
    char lease[24];
    snprintf(lease, sizeof lease, "%llu", (unsigned long long)m->lease);
    zlog_kv(ZLOG_WARN,
            (const char *[]){ "saga", saga->def->id, "step", m->step, "lease", lease, "instance",
                              w ? w->instance : "(unregistered)", "key", w ? w->key_name : "-",
                              NULL },
            "%s", what);
}

/* A committed event worth a line: a saga parked, a step failed or timed
   out, a compensation parked, a step moved off a lost worker. Nothing
   for steps that succeed. */
static void s_log_event(const orc_event_t *ev)
{
    const orc_saga_t *saga = ev->saga;
    const char *w = ev->what;
    bool parked = strcmp(w, "saga.parked") == 0 || strcmp(w, "step.compensation_parked") == 0;
    if (!parked && strcmp(w, "step.failed") && strcmp(w, "step.timed_out") &&
        strcmp(w, "step.compensation_timed_out") && strcmp(w, "step.reassigned"))
        return;
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%u", ev->attempt);
    const msg_step_t *d = ev->step >= 0 ? &saga->def->steps[ev->step] : NULL;
    zlog_kv(parked ? ZLOG_WARN : ZLOG_INFO,
            (const char *[]){ "saga", ev->id, "name", saga->def->name, "step", d ? d->id : "-",
                              "system", d ? d->system : "-", "attempt", attempt, "reason",
                              ev->reason ? ev->reason : "", NULL },
            "%s", w);
}

/* A worker stopped answering: its steps go back to the queue, to be sent
   again (same attempt) to another instance or to it when it returns. */
static void s_worker_lost(orc_engine_t *e, orc_worker_t *w)
{
    char held[16];
    snprintf(held, sizeof held, "%u", w->inflight);
    zlog_kv(ZLOG_WARN,
            (const char *[]){ "system", w->system, "instance", w->instance, "key", w->key_name,
                              "inflight", held, NULL },
            "worker lost: silent past the heartbeat timeout; its steps go to another instance");
    e->stats.workers_lost++;
    if (e->cfg.metrics)
        orc_metrics_worker_lost(e->cfg.metrics, w->system);
    for (orc_saga_t *saga = zhashx_first(e->table); saga; saga = zhashx_next(e->table))
        for (uint32_t i = 0; i < saga->def->nsteps; i++) {
            orc_step_t *st = &saga->steps[i];
            if (st->act_worker == w->serial) {
                st->act_worker = 0;
                if (st->state == STEP_RUNNING) {
                    s_disarm(e, saga, i);
                    st->resend = true;
                    s_step_set(e, saga, i, STEP_READY);
                    s_enqueue(e, saga, i);
                    s_event(e, saga, (int32_t)i, "step.reassigned", st->attempts, w->instance);
                }
            }
            if (st->comp_worker == w->serial) {
                st->comp_worker = 0;
                if (st->state == STEP_COMP_RUNNING) {
                    s_disarm(e, saga, i);
                    st->resend = true;
                    s_step_set(e, saga, i, STEP_COMP_READY);
                    s_enqueue(e, saga, i);
                    s_event(e, saga, (int32_t)i, "step.reassigned", st->comp_attempts, w->instance);
                }
            }
        }
    orc_registry_remove(e->reg, w);
}

/* ---- loading and resuming --------------------------------------------- */

/* Re-arm a saga loaded from the journal: steps that were sent are sent
   again (invariant 5), waiting steps get their timers back. */
static void s_resume(orc_engine_t *e, orc_saga_t *saga)
{
    for (uint32_t i = 0; i < saga->def->nsteps; i++) {
        orc_step_t *st = &saga->steps[i];
        st->queued = false;
        st->act_worker = st->comp_worker = 0;
        switch (st->state) {
        case STEP_RUNNING:
            st->state = STEP_READY;
            st->resend = true;
            /* fall through */
        case STEP_READY: s_enqueue(e, saga, i); break;
        case STEP_COMP_RUNNING:
            st->state = STEP_COMP_READY;
            st->resend = true;
            /* fall through */
        case STEP_COMP_READY: s_enqueue(e, saga, i); break;
        case STEP_WAITING:
        case STEP_COMP_WAITING: {
            /* The journal holds a wall-clock time: re-base it on the
               monotonic clock, and bound it by the step's own backoff, so
               a clock stepped while zsagad was down neither fires every
               backoff at once nor freezes one for hours. */
            const msg_retry_t *p = st->state == STEP_WAITING ? &saga->def->steps[i].retry
                                                             : &saga->def->steps[i].comp_retry;
            uint64_t left = st->due_ms > e->now_ms ? st->due_ms - e->now_ms : 0;
            if (left > p->backoff_max_ms)
                left = p->backoff_max_ms;
            st->due_ms = 0;
            s_arm(e, saga, i, e->mono_ms + left);
            break;
        }
        default: break;
        }
    }
    if (saga->state == SAGA_RUNNING) {
        s_start_ready(e, saga);
        s_check_complete(e, saga);
    } else if (saga->state == SAGA_COMPENSATING)
        s_comp_progress(e, saga);
}

static void s_table_remove(orc_engine_t *e, orc_saga_t *saga)
{
    if (!saga->in_table)
        return;
    for (uint32_t i = 0; i < saga->def->nsteps; i++)
        s_disarm(e, saga, i);
    zhashx_delete(e->table, saga->def->id);
    saga->in_table = false;
    e->active_steps -= saga->def->nsteps;
    saga->refs++; /* so that unref below frees it if nothing else holds it */
    orc_saga_unref(saga);
}

static int s_table_insert(orc_engine_t *e, orc_saga_t *saga)
{
    if (zhashx_insert(e->table, saga->def->id, saga))
        return -1;
    saga->in_table = true;
    e->active_steps += saga->def->nsteps;
    return 0;
}

static int s_load_one(orc_engine_t *e, const char *id, char *err, size_t errlen)
{
    int rc;
    orc_saga_t *saga = orc_store_load(e->jnl, id, &rc, err, errlen);
    if (!saga)
        return rc;
    if (s_table_insert(e, saga)) {
        orc_saga_destroy(&saga);
        return ENOMEM;
    }
    s_resume(e, saga);
    return 0;
}

typedef struct {
    orc_engine_t *e;
    char **ids;
    size_t n, cap;
} s_idlist_t;

static int s_collect(void *arg, const char *id)
{
    s_idlist_t *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **ids = realloc(l->ids, cap * sizeof *ids);
        if (!ids)
            return ENOMEM;
        l->ids = ids;
        l->cap = cap;
    }
    return (l->ids[l->n++] = strdup(id)) ? 0 : ENOMEM;
}

/* Recovery: every saga still running or compensating comes back. */
static int s_recover(orc_engine_t *e, char *err, size_t errlen)
{
    s_idlist_t l = { e, NULL, 0, 0 };
    int rc = jnl_read_begin(e->jnl);
    if (!rc)
        rc = orc_store_load_systems(e->jnl, e->reg);
    if (!rc)
        rc = orc_store_each_in_state(e->jnl, SAGA_RUNNING, s_collect, &l);
    if (!rc)
        rc = orc_store_each_in_state(e->jnl, SAGA_COMPENSATING, s_collect, &l);
    for (size_t i = 0; i < l.n && !rc; i++)
        if ((rc = s_load_one(e, l.ids[i], err, errlen)) == MDB_CORRUPTED) {
            /* One bad record must not keep every other saga from ending;
               it is reported, and left in the journal for inspection. */
            fprintf(stderr, "zsagad: recovery: %s\n", err);
            rc = 0;
        }
    jnl_read_end(e->jnl);
    for (size_t i = 0; i < l.n; i++)
        free(l.ids[i]);
    free(l.ids);
    if (rc && !err[0])
        snprintf(err, errlen, "recovery: %s", jnl_strerror(rc));
    return rc;
}

/* ---- public API ------------------------------------------------------- */

orc_engine_t *orc_engine_new(jnl_t *jnl, const orc_config_t *cfg, uint64_t now_ms, uint64_t mono_ms,
                             char *err, size_t errlen)
{
    orc_engine_t *e = calloc(1, sizeof *e);
    err[0] = 0;
    if (!e || sodium_init() < 0) {
        snprintf(err, errlen, "out of memory");
        free(e);
        return NULL;
    }
    e->jnl = jnl;
    e->cfg = *cfg;
    if (!e->cfg.heartbeat_timeout_ms)
        e->cfg.heartbeat_timeout_ms = 3000;
    if (!e->cfg.reserve_pct)
        e->cfg.reserve_pct = 10;
    e->rng = cfg->seed ? cfg->seed : now_ms | 1;
    e->now_ms = now_ms;
    e->mono_ms = mono_ms;
    e->table = zhashx_new();
    e->reg = orc_registry_new();
    e->timers = orc_timer_new();
    msgpack_sbuffer_init(&e->buf);
    if (!e->table || !e->reg || !e->timers) {
        snprintf(err, errlen, "out of memory");
        orc_engine_destroy(&e);
        return NULL;
    }
    e->hist_seq = jnl_meta_get(jnl, "history_seq");
    e->boot = jnl_meta_get(jnl, "boot") + 1;
    e->archived_seq = jnl_meta_get(jnl, "archived_seq");
    if (orc_store_upgrade(jnl, &e->ended_seq, err, errlen) || s_recover(e, err, errlen)) {
        orc_engine_destroy(&e);
        return NULL;
    }
    e->fly_ended = e->ended_seq;
    return e;
}

void orc_engine_destroy(orc_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orc_engine_t *e = *self_p;
    int rc;
    if (e->flying && !e->fly_done)
        jnl_write_wait(e->jnl, true, &rc); /* the committer may still use fly_sweep */
    if (e->fly_sweep)
        s_sweep_end(e, e->fly_sweep, false);
    while (e->fly) {
        orc_saga_t *s = e->fly;
        e->fly = s->fly_next;
        s->in_fly = false;
        orc_saga_unref(s);
    }
    orc_engine_outbox_clear(e);
    s_drop_events(e->box.ev, &e->box.nev);
    s_drop_events(e->fbox.ev, &e->fbox.nev);
    for (size_t i = 0; i < e->box.nout; i++) {
        free(e->box.out[i].params);
        orc_saga_unref(e->box.out[i].saga);
    }
    for (size_t i = 0; i < e->fbox.nout; i++) {
        free(e->fbox.out[i].params);
        orc_saga_unref(e->fbox.out[i].saga);
    }
    /* Drop every queue and timer reference, then the table itself. */
    orc_timer_entry_t t;
    while (e->timers && orc_timer_pop_any(e->timers, &t))
        orc_saga_unref(t.ptr);
    orc_registry_destroy(&e->reg);
    while (e->dirty) {
        orc_saga_t *s = e->dirty;
        e->dirty = s->dirty_next;
        s->listed = false;
        orc_saga_unref(s);
    }
    if (e->table) {
        for (orc_saga_t *s = zhashx_first(e->table); s; s = zhashx_next(e->table)) {
            s->in_table = false;
            s->refs = 0;
            orc_saga_destroy(&s);
        }
        zhashx_destroy(&e->table);
    }
    orc_timer_destroy(&e->timers);
    msgpack_sbuffer_destroy(&e->buf);
    free(e->box.out);
    free(e->box.ev);
    free(e->fbox.out);
    free(e->fbox.ev);
    free(e->lbox.out);
    free(e->lbox.ev);
    for (size_t i = 0; i < e->nreload; i++)
        free(e->reload[i]);
    free(e->reload);
    free(e);
    *self_p = NULL;
}

void orc_engine_now(orc_engine_t *self, uint64_t wall_ms, uint64_t mono_ms)
{
    /* The wall clock may step either way (it only stamps records); timers
       run on the monotonic one, which never goes back. */
    self->now_ms = wall_ms;
    if (mono_ms > self->mono_ms)
        self->mono_ms = mono_ms;
}

/* Room a running step may still need: its action and compensation
   records and their history, with copy-on-write pages to spare. */
#define STEP_RESERVE_BYTES 4096

/* Journal use, refreshed at most every 20 ms: reading LMDB's free list
   on every submit would cost more than the submit. */
static size_t s_used(orc_engine_t *e, size_t *map)
{
    if (!e->usage_ms || e->mono_ms >= e->usage_ms + 20) {
        jnl_usage(e->jnl, &e->used_bytes, &e->map_bytes);
        e->usage_ms = e->mono_ms ? e->mono_ms : 1;
    }
    *map = e->map_bytes;
    return e->used_bytes;
}

bool orc_engine_journal_full(orc_engine_t *self)
{
    size_t map;
    size_t used = s_used(self, &map);
    size_t reserve = map / 100 * self->cfg.reserve_pct;
    size_t owed = (size_t)self->active_steps * STEP_RESERVE_BYTES;
    return used + (owed > reserve ? owed : reserve) > map;
}

/* Nearly full: retention removes ended sagas whatever their age, so that
   a journal of ended sagas never refuses a new one. */
static bool s_pressure(orc_engine_t *e)
{
    size_t map;
    size_t used = s_used(e, &map);
    size_t reserve = map / 100 * e->cfg.reserve_pct;
    size_t owed = (size_t)e->active_steps * STEP_RESERVE_BYTES;
    size_t room = map - (owed > reserve ? owed : reserve);
    return used > room / 100 * 85;
}

/* Read the state and hash of a saga from the journal, or from the
   tombstone retention left of it (*removed). */
static int s_peek(orc_engine_t *e, const char *id, uint8_t *state, uint8_t hash[16], bool *removed)
{
    int rc;
    orc_tomb_t t;
    *removed = false;
    if ((rc = jnl_read_begin(e->jnl)))
        return rc;
    rc = orc_store_peek(e->jnl, id, state, hash, NULL);
    if (rc == MDB_NOTFOUND && (rc = orc_store_tomb(e->jnl, id, &t)) == 0) {
        *state = t.state;
        memcpy(hash, t.hash, 16);
        *removed = true;
    }
    jnl_read_end(e->jnl);
    return rc;
}

/* Params against the schemas the workers declared: a misspelled, missing
   or mistyped key is refused now, with the step and key named, not at run
   time after earlier steps have moved money. */
static int s_check_params(orc_engine_t *e, const msg_saga_t *def, char *err, size_t errlen)
{
    char why[MSG_TEXT_MAX];
    for (uint32_t i = 0; i < def->nsteps; i++) {
        const msg_step_t *st = &def->steps[i];
        orc_system_t *sys = orc_registry_system(e->reg, st->system);
        const orc_opschema_t *a = orc_system_schema(sys, st->action);
        const orc_opschema_t *c =
            st->compensation[0] ? orc_system_schema(sys, st->compensation) : NULL;
        size_t len;
        const uint8_t *p = msg_saga_step_params(def, i, &len);
        msg_kv_t kv[MSG_MAX_PARAMS];
        int n = msg_params_parse(p, len, kv, why, sizeof why); /* valid: decoded at submit */
        if (a && msg_schema_check(&a->params, st->action, c ? &c->params : NULL, st->compensation,
                                  kv, n, why, sizeof why)) {
            snprintf(err, errlen, "step '%s': %s", st->id, why);
            return -1;
        }
        /* A reference must name an output its step's action declares. */
        for (int k = 0; k < n; k++) {
            char rs[MSG_ID_MAX + 1], rk[MSG_NAME_MAX + 1];
            if (kv[k].type != MP_STR || !msg_ref_parse(kv[k].s, kv[k].slen, rs, rk))
                continue;
            int j = msg_saga_find(def, rs);
            const msg_step_t *ref = j >= 0 ? &def->steps[j] : NULL;
            const orc_opschema_t *ra =
                ref ? orc_system_schema(orc_registry_system(e->reg, ref->system), ref->action)
                    : NULL;
            if (ra && !msg_schema_find(&ra->outputs, rk)) {
                snprintf(err, errlen,
                         "step '%s': params.%s refers to output '%s' of step '%s', but %s gives "
                         "%s%s",
                         st->id, kv[k].key, rk, rs, ref->action,
                         ra->outputs_text[0] ? "only: " : "no outputs",
                         ra->outputs_text[0] ? ra->outputs_text : "");
                return -1;
            }
        }
    }
    return 0;
}

const char *orc_engine_submit(orc_engine_t *self, msg_saga_t **def_p, uint8_t *state,
                              bool *duplicate, char *err, size_t errlen)
{
    msg_saga_t *def = *def_p;
    msgpack_packer pk;
    uint8_t hash[16], old_hash[16];
    *duplicate = false;
    for (uint32_t i = 0; i < def->nsteps; i++) {
        const msg_step_t *st = &def->steps[i];
        orc_system_t *sys = orc_registry_system(self->reg, st->system);
        if (!sys || !sys->nops) {
            snprintf(err, errlen, "step '%s': unknown system '%s' (no worker has registered it)",
                     st->id, st->system);
            return "unknown_system";
        }
        const char *bad = !orc_system_has_op(sys, st->action) ? st->action
                          : st->compensation[0] && !orc_system_has_op(sys, st->compensation)
                              ? st->compensation
                              : NULL;
        if (bad) {
            snprintf(err, errlen, "step '%s': system '%s' has no operation '%s'", st->id,
                     st->system, bad);
            return "unknown_operation";
        }
    }
    if (s_check_params(self, def, err, errlen))
        return "invalid_params";
    msgpack_sbuffer_clear(&self->buf);
    msgpack_packer_init(&pk, &self->buf, msgpack_sbuffer_write);
    msg_saga_pack(def, &pk);
    crypto_generichash(hash, sizeof hash, (const uint8_t *)self->buf.data, self->buf.size, NULL, 0);
    /* Idempotent submit: the same id and definition is the same saga. */
    orc_saga_t *old = zhashx_lookup(self->table, def->id);
    bool removed = false;
    int rc = old ? 0 : s_peek(self, def->id, state, old_hash, &removed);
    if (old) {
        *state = old->state;
        memcpy(old_hash, old->hash, 16);
    }
    if (old || rc == 0) {
        if (memcmp(hash, old_hash, 16) != 0) {
            snprintf(err, errlen, "saga id '%s' is already used by a different definition%s",
                     def->id, removed ? " (that saga has ended and left the journal)" : "");
            return "conflict";
        }
        *duplicate = true;
        msg_saga_destroy(def_p);
        return NULL;
    }
    if (rc != MDB_NOTFOUND) {
        snprintf(err, errlen, "journal: %s", jnl_strerror(rc));
        return "internal";
    }
    if (orc_engine_journal_full(self)) {
        size_t map, used = s_used(self, &map);
        snprintf(err, errlen,
                 "journal is full (%zu of %zu KiB used, the rest is kept so that the %zu running "
                 "sagas can end): raise --map-size and restart zsagad",
                 used >> 10, map >> 10, orc_engine_active(self));
        return "journal_full";
    }
    orc_saga_t *saga = orc_saga_new(def);
    if (!saga || s_table_insert(self, saga)) {
        if (saga) {
            saga->def = NULL;
            free(saga->steps);
            free(saga);
        }
        snprintf(err, errlen, "out of memory");
        return "internal";
    }
    *def_p = NULL;
    memcpy(saga->hash, hash, 16);
    saga->created_ms = self->now_ms;
    self->stats.sagas_started++;
    s_saga_set(self, saga, SAGA_RUNNING, NULL);
    s_start_ready(self, saga);
    *state = saga->state;
    return NULL;
}

/* Find a saga in memory, or bring it back from the journal if it exists. */
static orc_saga_t *s_find(orc_engine_t *e, const char *id, const char **code, char *err,
                          size_t errlen)
{
    orc_saga_t *saga = zhashx_lookup(e->table, id);
    int rc;
    if (saga)
        return saga;
    if ((rc = jnl_read_begin(e->jnl)) == 0) {
        saga = orc_store_load(e->jnl, id, &rc, err, errlen);
        jnl_read_end(e->jnl);
    }
    if (!saga) {
        *code = rc == MDB_NOTFOUND ? "not_found" : "internal";
        if (rc == MDB_NOTFOUND)
            snprintf(err, errlen, "no saga with id '%s'", id);
    }
    return saga;
}

static const char *s_bad_state(orc_saga_t *saga, bool loaded, const char *want, char *err,
                               size_t errlen)
{
    snprintf(err, errlen, "saga '%s' is %s; this needs it %s", saga->def->id,
             orc_saga_state_name(saga->state), want);
    if (loaded)
        orc_saga_destroy(&saga);
    return "bad_state";
}

const char *orc_engine_cancel(orc_engine_t *self, const char *id, const char *who,
                              const char *reason, char *err, size_t errlen)
{
    const char *code = NULL;
    orc_saga_t *saga = s_find(self, id, &code, err, errlen);
    char text[MSG_TEXT_MAX + MSG_ID_MAX + 32];
    if (!saga)
        return code;
    if (!saga->in_table)
        return s_bad_state(saga, true, "running", err, errlen);
    if (saga->state == SAGA_COMPENSATING)
        return NULL; /* already undoing: cancel is idempotent */
    if (saga->state != SAGA_RUNNING)
        return s_bad_state(saga, false, "running", err, errlen);
    snprintf(text, sizeof text, "cancelled by %s%s%s", who, reason && reason[0] ? ": " : "",
             reason ? reason : "");
    s_abort(self, saga, text);
    return NULL;
}

const char *orc_engine_retry(orc_engine_t *self, const char *id, const char *who, char *err,
                             size_t errlen)
{
    const char *code = NULL;
    orc_saga_t *saga = s_find(self, id, &code, err, errlen);
    char text[MSG_ID_MAX + 32];
    if (!saga)
        return code;
    if (saga->state != SAGA_PARKED)
        return s_bad_state(saga, !saga->in_table, "parked", err, errlen);
    if (!saga->in_table && s_table_insert(self, saga)) {
        orc_saga_destroy(&saga);
        snprintf(err, errlen, "out of memory");
        return "internal";
    }
    for (uint32_t i = 0; i < saga->def->nsteps; i++)
        if (saga->steps[i].state == STEP_COMP_PARKED) {
            saga->steps[i].comp_attempts = 0;
            s_step_set(self, saga, i, STEP_COMP_READY);
            s_enqueue(self, saga, i);
        }
    snprintf(text, sizeof text, "operator retry by %s", who);
    s_saga_set(self, saga, SAGA_COMPENSATING, text);
    s_comp_progress(self, saga);
    return NULL;
}

const char *orc_engine_resolve(orc_engine_t *self, const char *id, const char *who,
                               const char *note, char *err, size_t errlen)
{
    const char *code = NULL;
    if (!note || !note[0]) {
        /* A saga closed by hand must say why, for whoever reads it later. */
        snprintf(err, errlen, "resolve needs a note saying what was done by hand");
        return "invalid";
    }
    orc_saga_t *saga = s_find(self, id, &code, err, errlen);
    char text[MSG_TEXT_MAX + MSG_ID_MAX + 32];
    if (!saga)
        return code;
    if (saga->state != SAGA_PARKED)
        return s_bad_state(saga, !saga->in_table, "parked", err, errlen);
    if (!saga->in_table && s_table_insert(self, saga)) {
        orc_saga_destroy(&saga);
        snprintf(err, errlen, "out of memory");
        return "internal";
    }
    snprintf(text, sizeof text, "resolved by %s: %s", who, note);
    s_saga_set(self, saga, SAGA_RESOLVED, text);
    return NULL;
}

const char *orc_engine_ready(orc_engine_t *self, const char *rid, const char *key,
                             const char *key_name, const msg_t *m, char *err, size_t errlen)
{
    /* The operations' schemas, checked whole before anything changes. */
    static struct {
        char op[MSG_NAME_MAX + 1];
        char params[MSG_SCHEMA_TEXT_MAX + 1], outputs[MSG_SCHEMA_TEXT_MAX + 1];
    } schemas[MSG_MAX_OPS];
    uint32_t nschemas = 0;
    if (m->raw_len) {
        mp_reader_t r;
        uint32_t n;
        msg_schema_t check;
        mp_reader_init(&r, m->raw, m->raw_len);
        if (mp_read_map(&r, &n) || n > MSG_MAX_OPS) {
            snprintf(err, errlen, "schemas: a map of operation to {params, outputs}");
            return "invalid_schema";
        }
        for (uint32_t k = 0; k < n; k++) {
            uint32_t f;
            char field[16];
            if (mp_read_cstr(&r, schemas[k].op, sizeof schemas[k].op) || mp_read_map(&r, &f)) {
                snprintf(err, errlen, "schemas: a map of operation to {params, outputs}");
                return "invalid_schema";
            }
            schemas[k].params[0] = schemas[k].outputs[0] = 0;
            for (uint32_t g = 0; g < f; g++) {
                char *dst = NULL;
                if (!mp_read_cstr(&r, field, sizeof field))
                    dst = !strcmp(field, "params")    ? schemas[k].params
                          : !strcmp(field, "outputs") ? schemas[k].outputs
                                                      : NULL;
                if (!dst || mp_read_cstr(&r, dst, MSG_SCHEMA_TEXT_MAX + 1)) {
                    snprintf(err, errlen, "schemas.%s: want params and outputs, as text",
                             schemas[k].op);
                    return "invalid_schema";
                }
            }
            bool listed = false;
            for (uint32_t o = 0; o < m->nops; o++)
                listed |= strcmp(m->ops[o], schemas[k].op) == 0;
            char why[256];
            if (!listed || msg_schema_parse(schemas[k].params, &check, why, sizeof why) ||
                msg_schema_parse(schemas[k].outputs, &check, why, sizeof why)) {
                snprintf(err, errlen, "schemas.%s: %s", schemas[k].op,
                         listed ? why : "not one of the operations it registers");
                return "invalid_schema";
            }
            nschemas++;
        }
    }
    orc_registry_t *reg = self->reg;
    orc_worker_t *same = orc_registry_worker(reg, rid);
    orc_worker_t *inst = orc_registry_instance(reg, m->instance);
    if (inst && inst != same && strcmp(inst->key, key) != 0) {
        /* Another key holds this instance: never let it take the steps. */
        self->stats.ready_refused++;
        snprintf(err, errlen, "instance '%s' is registered under another key", m->instance);
        return "instance_taken";
    }
    /* Catalog admission: a new system, or new operations of a known one,
       are journaled forever, so they pass the same reserve check as a
       submit and stay within the limits. */
    orc_system_t *sys = orc_registry_system(reg, m->system);
    uint32_t fresh = 0;
    for (uint32_t i = 0; i < m->nops; i++)
        if (!sys || !orc_system_has_op(sys, m->ops[i]))
            fresh++;
    uint32_t max_systems = self->cfg.max_systems ? self->cfg.max_systems : 64;
    if (!sys && orc_registry_system_count(reg) >= max_systems) {
        self->stats.ready_refused++;
        snprintf(err, errlen, "zsagad already knows %u systems, its limit", max_systems);
        return "limit";
    }
    if (fresh && (sys ? sys->nops : 0) + fresh > MSG_MAX_OPS) {
        self->stats.ready_refused++;
        snprintf(err, errlen, "system %s would have more than %d operations", m->system,
                 MSG_MAX_OPS);
        return "limit";
    }
    if ((fresh || !sys) && orc_engine_journal_full(self)) {
        self->stats.ready_refused++;
        snprintf(err, errlen, "journal full: new system or operations not recorded");
        return "journal_full";
    }
    if (same && (strcmp(same->instance, m->instance) || strcmp(same->system, m->system)))
        s_worker_lost(self, same); /* this connection was another worker */
    if (inst && inst != same)
        s_worker_lost(self, inst); /* a restart: its old connection is dead */
    if (!(sys = orc_registry_define(reg, m->system, (char(*)[MSG_NAME_MAX + 1]) m->ops, m->nops))) {
        snprintf(err, errlen, "out of memory");
        return "internal";
    }
    for (uint32_t i = 0; i < nschemas; i++)
        orc_system_set_schema(sys, schemas[i].op, schemas[i].params, schemas[i].outputs, err,
                              errlen); /* checked above */
    err[0] = 0;
    orc_worker_t *w = orc_registry_ready(reg, rid, m->instance, sys, m->capacity, self->mono_ms);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return "internal";
    }
    snprintf(w->key, sizeof w->key, "%s", key);
    snprintf(w->key_name, sizeof w->key_name, "%s", key_name);
    return NULL;
}

bool orc_engine_heartbeat(orc_engine_t *self, const char *rid)
{
    orc_worker_t *w = orc_registry_worker(self->reg, rid);
    if (w)
        w->last_seen_ms = self->mono_ms;
    return w != NULL;
}

void orc_engine_result(orc_engine_t *self, const char *rid, const msg_t *m)
{
    self->stats.results++;
    orc_worker_t *w = orc_registry_worker(self->reg, rid);
    if (w)
        w->last_seen_ms = self->mono_ms;
    orc_saga_t *saga = zhashx_lookup(self->table, m->id);
    int i = saga ? msg_saga_find(saga->def, m->step) : -1;
    if (i < 0) {
        self->stats.stale_results++; /* an ended saga, or not ours */
        return;
    }
    orc_step_t *st = &saga->steps[i];
    /* The answer frees the capacity its dispatch took, even when it is
       fenced below: a step cancelled while its action ran has its
       compensation sent under a newer lease, and the action's answer
       still ends a dispatch its worker counted. */
    bool act = m->phase == MSG_PHASE_ACTION;
    if (w && (act ? st->act_worker : st->comp_worker) == w->serial &&
        (act ? st->act_lease : st->comp_lease) == m->lease)
        s_release(self, st, m->phase);
    if (m->lease != st->lease) {
        /* A zombie's answer: a worker declared lost (paused, cut off) or a
           dispatch from before a restart, whose step has been sent again
           since. The new holder's barrier answers for the step; this one
           is dropped whatever it says. */
        if (self->stats.fenced_results++ % 100 == 0)
            s_log_dropped(saga, m, w, "fenced result dropped: an older lease (a zombie's answer)");
        return;
    }
    if (!w || w->serial != st->lease_worker) {
        if (!s_worker_by_serial(self, st->lease_worker)) {
            /* The lease went to a worker since lost: a zombie again. */
            if (self->stats.fenced_results++ % 100 == 0)
                s_log_dropped(saga, m, w, "fenced result dropped: its lease's worker was lost");
            return;
        }
        /* The latest lease, from someone it was not given to: a guess or
           a replay. Never applied. */
        if (self->stats.forged_results++ % 100 == 0)
            s_log_dropped(saga, m, w,
                          "forged result dropped: the latest lease, from a worker it was not "
                          "given to");
        return;
    }
    if (m->phase == MSG_PHASE_ACTION)
        s_action_result(self, saga, (uint32_t)i, m);
    else
        s_comp_result(self, saga, (uint32_t)i, m);
}

void orc_engine_tick(orc_engine_t *self)
{
    orc_timer_entry_t t;
    orc_worker_t *w;
    if (self->nreload)
        s_reload_pending(self);
    while (orc_timer_pop_due(self->timers, self->mono_ms, &t)) {
        orc_saga_t *saga = t.ptr;
        if (saga->in_table)
            s_timer(self, saga, t.arg);
        orc_saga_unref(saga);
    }
    while ((w = orc_registry_expired(self->reg, self->mono_ms, self->cfg.heartbeat_timeout_ms)))
        s_worker_lost(self, w);
}

/* Resolve "${step.key}" params against the saga's outputs. */
static int s_output_of(void *arg, const char *step, const uint8_t **out, size_t *len)
{
    orc_saga_t *saga = arg;
    int i = msg_saga_find(saga->def, step);
    if (i < 0 || !saga->steps[i].output_len)
        return -1;
    *out = saga->steps[i].output;
    *len = saga->steps[i].output_len;
    return 0;
}

static orc_dispatch_t *s_out_push(orc_engine_t *e)
{
    if (e->box.nout == e->box.capout) {
        size_t cap = e->box.capout ? e->box.capout * 2 : 256;
        orc_dispatch_t *o = realloc(e->box.out, cap * sizeof *o);
        if (!o)
            return NULL;
        e->box.out = o;
        e->box.capout = cap;
    }
    return &e->box.out[e->box.nout++];
}

/* Give one queued step to worker w. A step whose params refer to an
   output that is missing fails for good instead. */
static void s_dispatch(orc_engine_t *e, orc_saga_t *saga, uint32_t i, orc_worker_t *w)
{
    orc_step_t *st = &saga->steps[i];
    const msg_step_t *def = &saga->def->steps[i];
    bool comp = st->state == STEP_COMP_READY;
    char err[MSG_TEXT_MAX];
    size_t plen;
    const uint8_t *params = msg_saga_step_params(saga->def, i, &plen);
    msgpack_packer pk;
    msgpack_sbuffer_clear(&e->buf);
    msgpack_packer_init(&pk, &e->buf, msgpack_sbuffer_write);
    /* Most steps refer to no output: their params go out as they came.
       Keys are plain names, so "${" can only start a reference string (a
       false hit merely takes the slow path). */
    if (!plen)
        msgpack_pack_map(&pk, 0); /* the canonical form leaves empty params out */
    else if (!memmem(params, plen, "${", 2))
        msgpack_sbuffer_write(&e->buf, (const char *)params, plen);
    else if (msg_params_resolve(params, plen, s_output_of, saga, &pk, err, sizeof err)) {
        if (comp)
            s_comp_park(e, saga, i, "bad_params", err);
        else
            s_fail_step(e, saga, i, "bad_params", err);
        return;
    }
    orc_dispatch_t *o = s_out_push(e);
    uint8_t *copy = malloc(e->buf.size);
    if (!o || !copy) {
        if (o)
            e->box.nout--;
        free(copy);
        s_enqueue(e, saga, i); /* try again next batch */
        return;
    }
    memcpy(copy, e->buf.data, e->buf.size);
    uint32_t *attempts = comp ? &st->comp_attempts : &st->attempts;
    if (!st->resend || *attempts == 0)
        (*attempts)++;
    st->resend = false;
    if (comp) {
        if (!st->comp_started_ms)
            st->comp_started_ms = e->now_ms;
        st->comp_worker = w->serial;
    } else {
        if (!st->started_ms)
            st->started_ms = e->now_ms;
        st->act_worker = w->serial;
    }
    /* A new lease for every dispatch, resends included: from now on only
       this dispatch's result counts (orc_engine_result). It is written with
       the step in this batch, before the dispatch leaves, so a restarted
       zsagad never hands out the same number twice. */
    st->lease++;
    st->lease_worker = w->serial;
    if (comp)
        st->comp_lease = st->lease;
    else
        st->act_lease = st->lease;
    w->inflight++;
    if (e->cfg.metrics)
        st->sent_us = (uint64_t)zclock_usecs();
    s_step_set(e, saga, i, comp ? STEP_COMP_RUNNING : STEP_RUNNING);
    s_arm(e, saga, i, e->mono_ms + def->timeout_ms);
    s_event(e, saga, (int32_t)i, comp ? "step.compensating" : "step.dispatched", *attempts,
            w->instance);
    *o = (orc_dispatch_t){ saga,      i,          comp ? MSG_PHASE_COMPENSATION : MSG_PHASE_ACTION,
                           *attempts, st->lease,  "",
                           copy,      e->buf.size };
    strcpy(o->rid, w->rid);
    saga->refs++;
    e->stats.dispatched++;
}

void orc_engine_pump(orc_engine_t *self)
{
    for (orc_system_t *sys = orc_registry_systems(self->reg); sys; sys = sys->next) {
        orc_qitem_t it;
        while (sys->qlen) {
            orc_worker_t *w = orc_registry_pick(sys);
            if (!w)
                break;
            orc_queue_pop(sys, &it);
            orc_saga_t *saga = it.saga;
            orc_step_t *st = &saga->steps[it.step];
            bool valid = saga->in_table && st->queued &&
                         (st->state == STEP_READY || st->state == STEP_COMP_READY);
            if (valid) {
                st->queued = false;
                s_dispatch(self, saga, it.step, w);
            }
            orc_saga_unref(saga);
        }
    }
}

/* ---- retention ---------------------------------------------------------- */

#define SWEEP_BATCH       16  /* sagas removed per commit at most, normally */
#define SWEEP_BATCH_BURST 128 /* when the journal is nearly full */
#define SWEEP_IDLE_MS     250 /* look again this long after finding nothing */

/* Retention work of one commit: chosen on the loop's thread from the
   last commit (s_sweep_pick), carried out inside the batch's write
   transaction (s_sweep_apply: on the committer thread when pipelined),
   counted once the batch has committed (s_sweep_end). */
typedef struct s_sweep_s {
    orc_engine_t *e;     /* s_sweep_pick only: the committer never touches it */
    size_t n, max, over; /* over: how many exceed retain_count */
    bool pressure;
    uint64_t now_ms, tomb_ms, tomb_before;
    bool expire;
    msgpack_sbuffer buf; /* the committer's own: tombstone records */
    /* Results, read by the loop once the commit has ended. */
    size_t removed, records, expired;
    struct {
        uint64_t seq;
        char id[MSG_ID_MAX + 1];
    } take[SWEEP_BATCH_BURST];
} s_sweep_t;

static int s_sweep_cb(void *arg, uint64_t seq, const char *id, uint64_t ended_ms)
{
    s_sweep_t *x = arg;
    orc_engine_t *e = x->e;
    if (x->n >= x->max)
        return 1;
    if (e->cfg.archive && seq > e->archived_seq)
        return 1; /* not in a durable archive file yet */
    bool old = e->cfg.retain_ms && ended_ms + e->cfg.retain_ms <= e->now_ms;
    if (!old && x->n >= x->over && !x->pressure)
        return 1; /* in end order: the rest are younger */
    /* A saga back in memory (an operator looking at it) is left alone
       this round. */
    if (zhashx_lookup(e->table, id))
        return 0;
    x->take[x->n].seq = seq;
    snprintf(x->take[x->n].id, sizeof x->take[x->n].id, "%s", id);
    x->n++;
    return 0;
}

bool orc_engine_sweep_due(orc_engine_t *self)
{
    return (self->cfg.retain_ms || self->cfg.retain_count || s_pressure(self)) &&
           self->mono_ms >= self->sweep_ms;
}

/* Choose a few ended sagas past retention (oldest first), from what the
   journal holds as of the last commit: a saga that ended in a batch not
   yet committed is not in its ended index yet, and waits for the next. */
static s_sweep_t *s_sweep_pick(orc_engine_t *e)
{
    bool pressure = s_pressure(e);
    if (!(e->cfg.retain_ms || e->cfg.retain_count || pressure) || e->mono_ms < e->sweep_ms)
        return NULL;
    s_sweep_t *x = calloc(1, sizeof *x);
    if (!x)
        return NULL; /* retention waits; nothing is lost */
    x->e = e;
    x->pressure = pressure;
    x->max = pressure ? SWEEP_BATCH_BURST : SWEEP_BATCH;
    x->now_ms = e->now_ms;
    x->tomb_ms = e->cfg.tomb_ms;
    msgpack_sbuffer_init(&x->buf);
    if (jnl_read_begin(e->jnl) == 0) {
        /* Counted only when a count limit needs it: on PostgreSQL a count
           reads every row. */
        size_t ended = e->cfg.retain_count ? jnl_count(e->jnl, JNL_ENDED) : 0;
        x->over =
            e->cfg.retain_count && ended > e->cfg.retain_count ? ended - e->cfg.retain_count : 0;
        if (orc_store_each_ended(e->jnl, 0, s_sweep_cb, x) > 1)
            x->n = 0; /* a read error: nothing this round */
        jnl_read_end(e->jnl);
    }
    /* Tombstones go after their window, or first under pressure once no
       ended saga is left to remove. */
    x->tomb_before = e->cfg.tomb_ms && e->now_ms > e->cfg.tomb_ms ? e->now_ms - e->cfg.tomb_ms : 0;
    if (pressure && x->n == 0)
        x->tomb_before = UINT64_MAX;
    x->expire = x->tomb_before || !e->cfg.tomb_ms;
    if (!e->cfg.tomb_ms)
        x->tomb_before = UINT64_MAX;
    x->e = NULL;
    return x;
}

/* Inside the batch's write transaction: remove the chosen sagas and
   expire old tombstones. It reads and writes only through w and x. */
static int s_sweep_apply(jnl_t *w, void *arg)
{
    s_sweep_t *x = arg;
    int rc = 0;
    for (size_t i = 0; i < x->n && !rc; i++) {
        size_t recs = 0;
        rc = orc_store_remove(w, &x->buf, x->take[i].id, x->now_ms, x->tomb_ms > 0, &recs);
        if (rc == MDB_NOTFOUND || rc == EINVAL)
            rc = 0; /* gone already, or not ended after all: drop the entry */
        if (!rc)
            rc = orc_store_unend(w, x->take[i].seq, x->take[i].id);
        if (!rc) {
            x->removed++;
            x->records += recs;
        }
    }
    if (!rc && x->expire)
        rc = orc_store_expire_tombs(w, x->tomb_before, SWEEP_BATCH, &x->expired);
    return rc;
}

/* After the batch ended: count what was removed, and say when to look
   again (at once when a round was full). */
static void s_sweep_end(orc_engine_t *e, s_sweep_t *x, bool committed)
{
    if (committed) {
        e->stats.sagas_removed += x->removed;
        e->stats.records_removed += x->records;
        e->stats.tombs_expired += x->expired;
        if (x->pressure && x->n)
            e->stats.pressure_sweeps++;
    }
    e->sweep_ms =
        x->n == x->max || x->expired == SWEEP_BATCH ? e->mono_ms : e->mono_ms + SWEEP_IDLE_MS;
    msgpack_sbuffer_destroy(&x->buf);
    free(x);
}

void orc_engine_archived(orc_engine_t *self, uint64_t seq)
{
    if (seq > self->archived_seq) {
        self->archived_seq = seq;
        self->archived_dirty = true;
        self->sweep_ms = 0;
    }
}

uint64_t orc_engine_archived_seq(orc_engine_t *self)
{
    return self->archived_seq;
}

bool orc_engine_pressure(orc_engine_t *self)
{
    return s_pressure(self);
}

static void s_evict_or_keep(orc_engine_t *e, orc_saga_t *saga)
{
    if (orc_saga_terminal(saga->state))
        s_table_remove(e, saga);
}

static int s_crash_cb(jnl_t *w, void *arg)
{
    (void)w;
    (void)arg;
    kill(getpid(), SIGKILL); /* the harness's "killed mid group commit" */
    pause();
    return EINTR;
}

static int s_fail_cb(jnl_t *w, void *arg)
{
    (void)w;
    (void)arg;
    return EIO; /* the tests' failed commit */
}

/* Dispatches that will not be sent: their workers get the capacity back
   (the steps are reloaded and queued again). */
static void s_drop_dispatches(orc_engine_t *e, orc_dispatch_t *out, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        orc_worker_t *w = orc_registry_worker(e->reg, out[i].rid);
        if (w && w->inflight)
            w->inflight--;
        free(out[i].params);
        orc_saga_unref(out[i].saga);
    }
    *n = 0;
}

static void s_drop_events(orc_event_t *ev, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(ev[i].reason);
    *n = 0;
}

/* After a failed commit: each saga it touched comes back as the journal
   has it (a saga that was new is gone). */
/* Load a saga back as the journal has it: 0 (or MDB_NOTFOUND: it was
   new, and is gone), or the error. */
static int s_reload_id(orc_engine_t *e, const char *id)
{
    char lerr[256];
    int rc = jnl_read_begin(e->jnl);
    if (rc == 0) {
        rc = s_load_one(e, id, lerr, sizeof lerr);
        jnl_read_end(e->jnl);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void s_reload(orc_engine_t *e, orc_saga_t *s)
{
    if (!s->in_table)
        return; /* ended and evicted, or already reloaded */
    char id[MSG_ID_MAX + 1];
    strcpy(id, s->def->id);
    s_table_remove(e, s);
    if (s_reload_id(e, id) == 0)
        return;
    if (e->nreload == e->capreload) {
        size_t cap = e->capreload ? e->capreload * 2 : 16;
        char **r = realloc(e->reload, cap * sizeof *r);
        if (!r) {
            zlog_error("saga %s: not reloaded after a failed commit (out of memory); it resumes "
                       "at the next start",
                       id);
            return;
        }
        e->reload = r;
        e->capreload = cap;
    }
    if ((e->reload[e->nreload] = strdup(id)))
        e->nreload++;
}

/* The sagas whose reload failed: try again (each tick). */
static void s_reload_pending(orc_engine_t *e)
{
    size_t kept = 0;
    for (size_t i = 0; i < e->nreload; i++) {
        if (s_reload_id(e, e->reload[i]) == 0)
            free(e->reload[i]);
        else
            e->reload[kept++] = e->reload[i];
    }
    if (e->nreload && !kept)
        zlog_info("reloaded every saga a failed commit had dropped");
    e->nreload = kept;
}

static void s_fail_flight(orc_engine_t *e)
{
    e->stats.commit_failures++;
    /* The batch being collected was built on the failed one's memory: it
       fails with it. Nothing of either has left. */
    s_drop_dispatches(e, e->fbox.out, &e->fbox.nout);
    s_drop_events(e->fbox.ev, &e->fbox.nev);
    s_drop_dispatches(e, e->box.out, &e->box.nout);
    s_drop_events(e->box.ev, &e->box.nev);
    for (orc_system_t *s = orc_registry_systems(e->reg); s; s = s->next)
        s->dirty = true; /* written again with the next batch */
    if (e->fly_archived)
        e->archived_dirty = true;
    while (e->fly) {
        orc_saga_t *s = e->fly;
        e->fly = s->fly_next;
        s->in_fly = false;
        s->fly_next = NULL;
        s_reload(e, s);
        orc_saga_unref(s);
    }
    while (e->dirty) {
        orc_saga_t *s = e->dirty;
        e->dirty = s->dirty_next;
        s->listed = false;
        s->dirty_next = NULL;
        s->dirty = false;
        s->dirty_steps = 0;
        s_reload(e, s);
        orc_saga_unref(s);
    }
}

/* The flight committed: account for it, then let its sagas go. */
static void s_land_flight(orc_engine_t *e)
{
    e->stats.commits++;
    e->stats.batch_items += e->fly_items;
    if (e->cfg.metrics) {
        orc_metrics_commit(e->cfg.metrics, (uint64_t)zclock_usecs() - e->fly_t0, e->fly_items);
        for (size_t i = 0; i < e->fbox.nev; i++)
            orc_metrics_event(e->cfg.metrics, &e->fbox.ev[i]);
    }
    for (size_t i = 0; i < e->fbox.nev; i++) {
        if (e->fbox.ev[i].saga)
            s_log_event(&e->fbox.ev[i]);
        e->fbox.ev[i].saga = NULL; /* the flight's references go now */
    }
    while (e->fly) {
        orc_saga_t *s = e->fly;
        e->fly = s->fly_next;
        s->in_fly = false;
        s->fly_next = NULL;
        /* Ended sagas leave memory once their end is durable; one written
           again in the batch being collected stays on its list till then. */
        if (s->in_table && !s->listed)
            s_evict_or_keep(e, s);
        orc_saga_unref(s);
    }
}

bool orc_engine_commit_busy(orc_engine_t *self)
{
    return self->flying;
}

int orc_engine_commit_start(orc_engine_t *self, char *err, size_t errlen)
{
    int rc = 0;
    size_t items = 0;
    err[0] = 0;
    if (self->flying) {
        snprintf(err, errlen, "journal commit: the previous batch is still in flight");
        return EBUSY;
    }
    self->flying = true;
    self->fly_rc = 0;
    self->fly_done = true; /* until something is handed to the journal */
    self->fly_items = 0;
    self->fly_archived = false;
    /* The outbox moves to the flight: the next batch collects its own. */
    s_box_pass(&self->fbox, &self->box);

    bool sys_dirty = false;
    for (orc_system_t *s = orc_registry_systems(self->reg); s; s = s->next)
        sys_dirty |= s->dirty;
    s_sweep_t *sweep = s_sweep_pick(self);
    if (!self->dirty && !self->fbox.nev && !sweep && !self->archived_dirty && !sys_dirty) {
        self->fly_empty = true; /* nothing to write: the flight has ended already */
        return 0;
    }
    self->fly_empty = false;

    int64_t off = (int64_t)self->now_ms - (int64_t)self->mono_ms;
    self->fly_t0 = self->cfg.metrics ? (uint64_t)zclock_usecs() : 0;
    rc = jnl_write_begin(self->jnl);
    /* Pack every dirty saga and move it to the flight's list: the next
       batch writes only what changes after this. */
    while (self->dirty && !rc) {
        orc_saga_t *s = self->dirty;
        if (s->dirty && !(rc = orc_store_put_saga(self->jnl, &self->buf, s, &self->ended_seq))) {
            items++;
            s->journaled_state = s->state;
            s->def_journaled = true;
        }
        for (uint32_t i = 0; i < s->def->nsteps && !rc; i++)
            if (s->dirty_steps & BIT(i) &&
                !(rc = orc_store_put_step(self->jnl, &self->buf, s, i, off)))
                items++;
        if (rc)
            break;
        self->dirty = s->dirty_next;
        s->listed = false;
        s->dirty = false;
        s->dirty_steps = 0;
        s->dirty_next = NULL;
        /* The dirty list's reference becomes the flight's (the previous
           flight has landed, so no saga is on its list now). */
        s->in_fly = true;
        s->fly_next = self->fly;
        self->fly = s;
    }
    for (size_t i = 0; i < self->fbox.nev && !rc; i++)
        rc = orc_store_put_event(self->jnl, &self->buf, &self->fbox.ev[i]);
    for (orc_system_t *s = orc_registry_systems(self->reg); s && !rc; s = s->next)
        if (s->dirty) {
            rc = orc_store_put_system(self->jnl, &self->buf, s);
            s->dirty = false;
        }
    if (!rc && sweep) {
        rc = jnl_write_call(self->jnl, s_sweep_apply, sweep);
        self->fly_sweep = sweep;
        sweep = NULL;
    }
    if (!rc && self->ended_seq != self->fly_ended)
        rc = jnl_meta_put(self->jnl, "ended_seq", self->ended_seq);
    if (!rc && self->archived_dirty) {
        rc = jnl_meta_put(self->jnl, "archived_seq", self->archived_seq);
        self->archived_dirty = false;
        self->fly_archived = true;
    }
    if (!rc)
        rc = jnl_meta_put(self->jnl, "history_seq", self->hist_seq);
    if (!rc && self->stats.commits == 0)
        rc = jnl_meta_put(self->jnl, "boot", self->boot);
    if (!rc && self->cfg.crash_in_commit && self->stats.commits + 1 == self->cfg.crash_in_commit)
        rc = jnl_write_call(self->jnl, s_crash_cb, NULL);
    if (!rc && self->cfg.fail_in_commit &&
        self->stats.commits + self->stats.commit_failures + 1 == self->cfg.fail_in_commit)
        rc = jnl_write_call(self->jnl, s_fail_cb, NULL);
    self->fly_items = items;
    self->fly_ended = self->ended_seq;
    if (!rc) {
        self->fly_done = false;
        rc =
            jnl_pipe_fd(self->jnl) >= 0 ? jnl_write_submit(self->jnl) : jnl_write_commit(self->jnl);
        if (rc == 0 && jnl_pipe_fd(self->jnl) < 0)
            self->fly_done = true; /* committed already */
        else if (rc)
            self->fly_done = true;
    } else
        jnl_write_abort(self->jnl);
    if (sweep)
        s_sweep_end(self, sweep, false);
    self->fly_rc = rc;
    if (rc)
        snprintf(err, errlen, "journal commit failed: %s", jnl_strerror(rc));
    return rc;
}

bool orc_engine_commit_end(orc_engine_t *self, bool wait, int *rc, char *err, size_t errlen)
{
    *rc = 0;
    err[0] = 0;
    if (!self->flying)
        return true;
    if (!self->fly_done) {
        if (!jnl_write_wait(self->jnl, wait, &self->fly_rc))
            return false;
        self->fly_done = true;
    }
    self->flying = false;
    *rc = self->fly_rc;
    if (*rc == 0 && !self->fly_empty && self->cfg.crash_after_commit &&
        self->stats.commits + 1 == self->cfg.crash_after_commit) {
        kill(getpid(), SIGKILL); /* the harness's "durable, nothing sent yet" */
        pause();
    }
    if (self->fly_sweep) {
        s_sweep_end(self, self->fly_sweep, *rc == 0);
        self->fly_sweep = NULL;
    }
    if (*rc == 0) {
        if (!self->fly_empty)
            s_land_flight(self);
        /* The flight's outbox is now the landed one (the caller has sent
           and cleared the previous). */
        if (self->lbox.nout || self->lbox.nev)
            orc_engine_outbox_clear(self);
        s_box_pass(&self->lbox, &self->fbox);
    } else {
        snprintf(err, errlen, "journal commit failed: %s", jnl_strerror(*rc));
        s_fail_flight(self);
    }
    return true;
}

int orc_engine_commit(orc_engine_t *self, char *err, size_t errlen)
{
    int rc;
    if (self->flying)
        orc_engine_commit_end(self, true, &rc, err, errlen); /* its outbox is the caller's */
    orc_engine_commit_start(self, err, errlen);
    orc_engine_commit_end(self, true, &rc, err, errlen);
    return rc;
}

orc_dispatch_t *orc_engine_dispatches(orc_engine_t *self, size_t *n)
{
    *n = self->lbox.nout;
    return self->lbox.out;
}

orc_event_t *orc_engine_events(orc_engine_t *self, size_t *n)
{
    *n = self->lbox.nev;
    return self->lbox.ev;
}

void orc_engine_outbox_clear(orc_engine_t *self)
{
    for (size_t i = 0; i < self->lbox.nout; i++) {
        orc_dispatch_t *o = &self->lbox.out[i];
        free(o->params);
        orc_saga_unref(o->saga);
    }
    self->lbox.nout = 0;
    s_drop_events(self->lbox.ev, &self->lbox.nev);
}

uint64_t orc_engine_next_due(orc_engine_t *self)
{
    return orc_timer_next(self->timers);
}

jnl_t *orc_engine_journal(orc_engine_t *self)
{
    return self->jnl;
}

orc_registry_t *orc_engine_registry(orc_engine_t *self)
{
    return self->reg;
}

const orc_stats_t *orc_engine_stats(orc_engine_t *self)
{
    return &self->stats;
}

size_t orc_engine_active(orc_engine_t *self)
{
    return zhashx_size(self->table);
}

uint64_t orc_engine_history_seq(orc_engine_t *self)
{
    return self->hist_seq;
}

uint64_t orc_engine_boot(orc_engine_t *self)
{
    return self->boot;
}
