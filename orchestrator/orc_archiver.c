/*  orc_archiver: ended sagas into archive files. See orc_archiver.h. */
#include "orc_archiver.h"
#include "common/zlog.h"
#include "journal/jnl_archive.h"
#include "orc_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_SAGAS   10000
#define FILE_BYTES   (16u << 20)
#define FILE_WAIT_MS 60000
#define STEP_SAGAS   256  /* read per loop turn at most: the loop stays short */
#define RETRY_MS     5000 /* after a failed write */

struct orc_archiver_s {
    char *dir;
    jnl_archive_t cur, out; /* collecting; being written */
    uint64_t next_seq;      /* last ended seq collected */
    uint64_t cur_since_ms;  /* mono time the first saga of cur was collected */
    uint64_t retry_ms;
    uint64_t wait_ms; /* longest a collected saga waits for its file */
    bool started;
    pthread_t thread;
    bool running; /* a writer thread to join */
    bool writing; /* a write started whose result is not yet reported */
    atomic_bool done;
    int rc;
    uint64_t now_ms;
    char path[4096], err[512];
    msgpack_sbuffer rec;
    orc_archiver_stats_t stats;
};

orc_archiver_t *orc_archiver_new(const char *dir, uint64_t retain_ms)
{
    orc_archiver_t *self = calloc(1, sizeof *self);
    if (!self || !(self->dir = strdup(dir))) {
        free(self);
        return NULL;
    }
    /* A saga is not removed before it is archived: with a short retention
       files are written sooner, so removal keeps pace. */
    self->wait_ms = retain_ms && retain_ms < FILE_WAIT_MS ? retain_ms : FILE_WAIT_MS;
    jnl_archive_init(&self->cur);
    jnl_archive_init(&self->out);
    msgpack_sbuffer_init(&self->rec);
    return self;
}

static void s_join(orc_archiver_t *self)
{
    if (self->running) {
        pthread_join(self->thread, NULL);
        self->running = false;
    }
}

void orc_archiver_destroy(orc_archiver_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orc_archiver_t *self = *self_p;
    s_join(self);
    jnl_archive_destroy(&self->cur);
    jnl_archive_destroy(&self->out);
    msgpack_sbuffer_destroy(&self->rec);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

static void *s_writer(void *arg)
{
    orc_archiver_t *self = arg;
    self->rc = jnl_archive_write(&self->out, self->dir, self->now_ms, self->path, sizeof self->path,
                                 self->err, sizeof self->err);
    atomic_store(&self->done, true);
    return NULL;
}

typedef struct {
    orc_archiver_t *a;
    jnl_t *jnl;
    uint64_t mono_ms;
    int n;
    int failed; /* a read that failed (the journal unreachable): collect again later */
    char failed_id[MSG_ID_MAX + 1], err[512];
} s_collect_t;

static int s_collect_cb(void *arg, uint64_t seq, const char *id, uint64_t ended_ms)
{
    (void)ended_ms;
    s_collect_t *c = arg;
    orc_archiver_t *a = c->a;
    if (c->n >= STEP_SAGAS || a->cur.count >= FILE_SAGAS || a->cur.buf.size >= FILE_BYTES)
        return 1;
    int rc;
    char err[512];
    msgpack_packer pk;
    msgpack_sbuffer_clear(&a->rec);
    msgpack_packer_init(&pk, &a->rec, msgpack_sbuffer_write);
    orc_saga_t *saga = orc_store_load(c->jnl, id, &rc, err, sizeof err);
    if (!saga && (rc == EIO || rc == ENOMEM || rc == JNL_DEPOSED)) {
        /* The journal could not be read just now (its database is away):
           neither this saga nor any after it is collected, so none is
           recorded as archived without its record; collected again after
           a pause. */
        c->failed = rc;
        snprintf(c->failed_id, sizeof c->failed_id, "%s", id);
        snprintf(c->err, sizeof c->err, "%s", err[0] ? err : jnl_strerror(rc));
        return 1;
    }
    msgpack_pack_map(&pk, 3);
    mp_pack_kv_uint(&pk, "seq", seq);
    if (saga) {
        mp_pack_cstr(&pk, "saga");
        orc_store_pack_status(c->jnl, &pk, saga);
        mp_pack_cstr(&pk, "definition");
        msg_saga_pack(saga->def, &pk);
        orc_saga_destroy(&saga);
    } else {
        /* Its records are damaged or gone (not a failed read): still
           recorded, so the archive says what became of it. */
        mp_pack_kv_str(&pk, "id", id);
        mp_pack_kv_str(&pk, "error", err[0] ? err : jnl_strerror(rc));
    }
    if (jnl_archive_add(&a->cur, seq, a->rec.data, a->rec.size))
        return 1;
    if (a->cur.count == 1)
        a->cur_since_ms = c->mono_ms;
    a->next_seq = seq;
    c->n++;
    return 0;
}

/* Report a finished write (waiting for it with wait). */
static void s_reap(orc_archiver_t *self, orc_engine_t *e, uint64_t mono_ms, bool wait)
{
    if (!self->writing || (!wait && !atomic_load(&self->done)))
        return;
    s_join(self);
    self->writing = false;
    if (self->rc == 0) {
        self->stats.files++;
        self->stats.sagas += self->out.count;
        self->stats.bytes += self->out.buf.size;
        orc_engine_archived(e, self->out.last_seq);
        zlog_info("archived %u ended sagas (seq %llu-%llu) to %s", self->out.count,
                  (unsigned long long)self->out.first_seq, (unsigned long long)self->out.last_seq,
                  self->path);
    } else {
        /* Nothing was archived: collect again from the last point that
           was, after a pause. */
        self->stats.failures++;
        zlog_error("%s; the sagas stay in the journal, retrying in %d s", self->err,
                   RETRY_MS / 1000);
        self->retry_ms = mono_ms + RETRY_MS;
        self->next_seq = orc_engine_archived_seq(e);
        jnl_archive_reset(&self->cur);
    }
    jnl_archive_reset(&self->out);
}

void orc_archiver_step(orc_archiver_t *self, orc_engine_t *e, jnl_t *jnl, uint64_t wall_ms,
                       uint64_t mono_ms, bool final)
{
    if (!self->started) {
        self->next_seq = orc_engine_archived_seq(e);
        self->started = true;
    }
    s_reap(self, e, mono_ms, final);
    if (mono_ms < self->retry_ms && !final)
        return;
    s_collect_t c = { self, jnl, mono_ms, 0, 0, "", "" };
    if (jnl_read_begin(jnl) == 0) {
        do {
            c.n = 0;
            orc_store_each_ended(jnl, self->next_seq, s_collect_cb, &c);
        } while (final && c.n == STEP_SAGAS && !c.failed);
        jnl_read_end(jnl);
    }
    if (c.failed) {
        zlog_warn("archive: cannot read saga %s now (%s); it and those after it stay in the "
                  "journal, collected again in %d s",
                  c.failed_id, c.err, RETRY_MS / 1000);
        self->retry_ms = mono_ms + RETRY_MS;
    }
    bool due = self->cur.count &&
               (final || self->cur.count >= FILE_SAGAS || self->cur.buf.size >= FILE_BYTES ||
                mono_ms >= self->cur_since_ms + self->wait_ms || orc_engine_pressure(e));
    if (!due || self->writing)
        return;
    /* Swap: the loop goes on collecting while the thread writes. */
    jnl_archive_t t = self->out;
    self->out = self->cur;
    self->cur = t;
    self->now_ms = wall_ms;
    self->writing = true;
    atomic_store(&self->done, false);
    self->running = pthread_create(&self->thread, NULL, s_writer, self) == 0;
    if (!self->running)
        s_writer(self); /* no thread to be had: write here */
    if (final)
        s_reap(self, e, mono_ms, true);
}

const orc_archiver_stats_t *orc_archiver_stats(const orc_archiver_t *self)
{
    return &self->stats;
}
