/*  jnl: LMDB journal. See jnl.h for the contract. */
#include "jnl.h"
#include "jnl_pg.h"
#include "common/zlog.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* A batch's writes, recorded on the loop's thread for the committer:
   each op is a header, then the key and the value, padded to 8 bytes. */
enum { OP_PUT = 1, OP_APPEND, OP_DEL, OP_CALL };
typedef struct {
    uint8_t op, db;
    uint32_t klen, vlen;
    jnl_call_fn *fn;
    void *arg;
} s_op_t;

typedef struct {
    uint8_t *data;
    size_t len, cap;
} s_ops_t;

typedef struct s_pipe_s s_pipe_t;

struct jnl_s {
    MDB_env *env;
    MDB_dbi dbi[JNL_NDBS];
    MDB_txn *wtxn; /* open write transaction, or NULL */
    MDB_txn *rtxn; /* reusable read transaction (reset between uses) */
    bool rtxn_live;
    int lock_fd;     /* zsagad.lock, held (flock) while open */
    s_pipe_t *pipe;  /* the committer, once jnl_pipeline started it */
    bool collecting; /* a pipelined batch is being recorded */
    /* PostgreSQL instead of LMDB: the loop's reader connection here, the
       writer in the committer's view (always pipelined). */
    jpg_t *pg;
    jpg_t *pg_writer;      /* until the committer takes it */
    uint32_t part, nparts; /* the partition held, of how many (PostgreSQL) */
    size_t pg_map;         /* the capacity retention and admission count against */
    uint32_t lease_ms;
};

/* The committer thread and what it shares with the loop. The loop owns
   `ops` (the batch being recorded); `fly` belongs to the committer from
   jnl_write_submit until the loop has seen it end (`done`). */
struct s_pipe_s {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, busy, done;
    bool deposed;      /* the lease renewal found another holder */
    bool yield;        /* this member holds more than its share: give this partition up */
    uint32_t renew_ms; /* PostgreSQL: renew the lease this often; 0 never */
    uint32_t nparts;   /* partitions, for the share */
    int rc;
    s_ops_t ops, fly;
    int efd; /* eventfd: the committer's "done" for the loop's poll */
    jnl_t w; /* the committer's view: same environment, its own txn */
};

static void s_pipe_stop(jnl_t *self);

static const char *s_db_names[JNL_NDBS] = { "sagas",   "steps", "index",   "history",
                                            "systems", "meta",  "defs",    "created",
                                            "ended",   "tombs", "tombexp", "evseq" };

const char *jnl_strerror(int rc)
{
    if (rc == JNL_DEPOSED)
        return "another zsagad holds the journal's lease now";
    if (rc == JNL_OUTCOME_UNKNOWN)
        return "the database went away during COMMIT, and whether it committed is unknown";
    return mdb_strerror(rc);
}

static int s_mkdir(const char *dir)
{
    if (mkdir(dir, 0750) == 0 || errno == EEXIST)
        return 0;
    return errno;
}

/* LMDB's meta page, as mdb.c lays it out (64-bit): after the 16-byte page
   header, magic and version (4 + 4), address and map size (8 + 8), two
   48-byte database records (the free DB's first word is the page size),
   then the last page number and the transaction id. */
#define META_MAGIC  0xBEEFC0DEu
#define META_PSIZE  (16 + 24)
#define META_LASTPG (16 + 24 + 96)
#define META_TXNID  (16 + 24 + 96 + 8)

static int s_read_meta(int fd, off_t at, uint32_t *psize, uint64_t *last_pg, uint64_t *txnid)
{
    uint8_t b[META_TXNID + 8];
    uint32_t magic;
    if (pread(fd, b, sizeof b, at) != (ssize_t)sizeof b)
        return -1;
    memcpy(&magic, b + 16, 4);
    memcpy(psize, b + META_PSIZE, 4);
    memcpy(last_pg, b + META_LASTPG, 8);
    memcpy(txnid, b + META_TXNID, 8);
    return magic == META_MAGIC && *psize >= 512 && !(*psize & (*psize - 1)) ? 0 : -1;
}

int jnl_check_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st)) {
        int rc = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(rc));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    uint32_t ps0, ps1;
    uint64_t last0, last1, tx0, tx1;
    int ok0 = s_read_meta(fd, 0, &ps0, &last0, &tx0) == 0;
    int ok1 = ok0 && s_read_meta(fd, (off_t)ps0, &ps1, &last1, &tx1) == 0;
    close(fd);
    if (!ok0) {
        snprintf(err, errlen, "%s is not an LMDB journal (%lld bytes, no valid meta page)", path,
                 (long long)st.st_size);
        return EINVAL;
    }
    /* LMDB trusts the newer meta page; every page up to its last must be
       in the file, or reading it faults (SIGBUS) instead of failing. */
    uint64_t last = ok1 && tx1 > tx0 ? last1 : last0;
    uint64_t need = (last + 1) * ps0;
    if ((uint64_t)st.st_size < need) {
        snprintf(err, errlen,
                 "%s is truncated: %lld bytes, its last page ends at %llu; restore it from a "
                 "backup",
                 path, (long long)st.st_size, (unsigned long long)need);
        return EIO;
    }
    return 0;
}

/* Take the directory's lock file, or say who holds it. The lock is the
   open file's: the kernel drops it when the holder dies, even by SIGKILL. */
static int s_lock(const char *dir, int *fd_out, char *err, size_t errlen)
{
    char path[4096], pid[32] = "";
    snprintf(path, sizeof path, "%s/zsagad.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = errno;
        snprintf(err, errlen, "journal %s: lock file: %s", dir, strerror(rc));
        return rc;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int rc = errno;
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        if (rc == EWOULDBLOCK)
            snprintf(err, errlen,
                     "journal %s is in use by another zsagad (pid %s): one zsagad per journal", dir,
                     pid[0] ? pid : "unknown");
        else
            snprintf(err, errlen, "journal %s: lock: %s", dir, strerror(rc));
        close(fd);
        return rc == EWOULDBLOCK ? EBUSY : rc;
    }
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The lock holds even if the pid could not be written. */
    }
    *fd_out = fd;
    return 0;
}

int jnl_locked_by(const char *dir, char *err, size_t errlen)
{
    int fd = -1;
    struct stat st;
    if (stat(dir, &st))
        return 0; /* no directory, no zsagad */
    int rc = s_lock(dir, &fd, err, errlen);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The journal on PostgreSQL: the writer first (it takes the journal's
   lock and makes the table), then the loop's reader; the committer starts
   at once, as every write goes through it. */
static jnl_t *s_open_pg(jnl_t *self, const char *uri, const jnl_config_t *cfg, char *err,
                        size_t errlen)
{
    int rc;
    char who[160], until[64], me[128];
    self->pg_map = cfg->map_bytes ? cfg->map_bytes : (1ul << 30);
    self->lease_ms = cfg->lease_ms ? cfg->lease_ms : 5000;
    self->nparts = cfg->partitions ? cfg->partitions : 1;
    if (!(self->pg_writer = jpg_open(uri, true, err, errlen)) ||
        jpg_partitions(self->pg_writer, self->nparts, err, errlen)) {
        jnl_destroy(&self);
        return NULL;
    }
    if (cfg->member && *cfg->member) {
        jpg_set_member(self->pg_writer, cfg->member);
    } else {
        char host[64] = "";
        gethostname(host, sizeof host - 1);
        jpg_set_member(self->pg_writer, host);
    }
    if (cfg->holder)
        snprintf(me, sizeof me, "%s", cfg->holder);
    else
        snprintf(me, sizeof me, "pid %ld", (long)getpid());
    /* A standby until a partition's lease is free (the first free one,
       from 0 up): its holder renews it every lease/3; once it lapses (the
       holder died, stopped or was cut off), this zsagad takes it with the
       next epoch. A database that goes away meanwhile (a restart, a
       failover) is waited for too: the standby is needed most when the
       machines around it fail. */
    for (;;) {
        /* With partitions, a member (machine) takes free partitions up to
           its share at once, and past it too when no other live member is
           below its share; else only those free for a whole lease (the
           member below its share did not want them). */
        uint32_t held = 0, share = 1, below, min_free = 0;
        int highest;
        rc = self->nparts > 1
                 ? jpg_share(self->pg_writer, self->nparts, &held, &share, &highest, &below)
                 : 0;
        if (rc == 0 && held >= share && below > 0)
            min_free = self->lease_ms;
        if (rc == 0)
            rc = EAGAIN;
        for (uint32_t p = 0; p < self->nparts && rc == EAGAIN; p++) {
            rc = jpg_lease_take(self->pg_writer, p, me, cfg->clients, self->lease_ms, min_free,
                                p ? NULL : who, sizeof who, p ? NULL : until, sizeof until);
            if (rc == 0)
                self->part = p;
        }
        if (rc != EAGAIN && rc != EIO)
            break;
        if (cfg->stop && *cfg->stop) {
            snprintf(err, errlen, "stopped while standing by for the journal's lease");
            jnl_destroy(&self);
            errno = ECANCELED;
            return NULL;
        }
        if (rc == EIO) {
            snprintf(who, sizeof who, "nobody known (the journal's database is unreachable)");
            snprintf(until, sizeof until, "?");
        } else if (self->nparts > 1) {
            char first[sizeof who];
            snprintf(first, sizeof first, "%s", who);
            snprintf(who, sizeof who, "others (all %u partitions; partition 0 by %.100s)",
                     self->nparts, first);
        }
        if (cfg->wait)
            cfg->wait(cfg->wait_arg, who, until);
        usleep(self->lease_ms / 4 * 1000u);
    }
    if (rc || jpg_use_partition(self->pg_writer, self->part, self->nparts, err, errlen) ||
        !(self->pg = jpg_open(uri, false, err, errlen)) ||
        jpg_use_partition(self->pg, self->part, self->nparts, err, errlen)) {
        if (rc)
            snprintf(err, errlen, "journal (postgresql): cannot take its lease");
        jnl_destroy(&self);
        return NULL;
    }
    if ((rc = jnl_pipeline(self))) {
        snprintf(err, errlen, "journal: committer thread: %s", strerror(rc));
        jnl_destroy(&self);
        return NULL;
    }
    return self;
}

bool jnl_is_postgres(const char *dir)
{
    return jpg_is_uri(dir);
}

jnl_t *jnl_open(const char *dir, const jnl_config_t *cfg, char *err, size_t errlen)
{
    jnl_t *self = calloc(1, sizeof *self);
    int rc;
    unsigned flags = MDB_NOTLS;
    MDB_txn *txn = NULL;
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->lock_fd = -1;
    if (jpg_is_uri(dir))
        return s_open_pg(self, dir, cfg, err, errlen);
    if (cfg->sync == JNL_SYNC_NOMETA)
        flags |= MDB_NOMETASYNC;
    else if (cfg->sync == JNL_SYNC_NONE)
        flags |= MDB_NOSYNC;
    if ((rc = s_mkdir(dir))) {
        snprintf(err, errlen, "journal directory %s: %s", dir, strerror(rc));
        goto fail;
    }
    if ((rc = s_lock(dir, &self->lock_fd, err, errlen)))
        goto fail;
    char data[4096], marker[4096];
    struct stat st;
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    snprintf(marker, sizeof marker, "%s/zsaga.journal", dir);
    bool had = access(marker, F_OK) == 0, exists = stat(data, &st) == 0;
    /* A directory that held a journal must still hold one: an empty or
       missing data.mdb would start as an empty journal and silently forget
       every saga. */
    if (had && (!exists || st.st_size == 0)) {
        snprintf(err, errlen,
                 "journal %s held a journal, but data.mdb is %s: restore it from a backup "
                 "(zsaga restore), or remove %s to start an empty journal on purpose",
                 dir, exists ? "empty" : "missing", marker);
        rc = EIO;
        goto fail;
    }
    /* A damaged file is refused before LMDB maps it: a short one would
       fault (SIGBUS) at the first read of a page past its end. */
    if (exists && st.st_size > 0 && (rc = jnl_check_file(data, err, errlen)))
        goto fail;
    if ((rc = mdb_env_create(&self->env)) ||
        (rc = mdb_env_set_mapsize(self->env, cfg->map_bytes ? cfg->map_bytes : (1ul << 30))) ||
        (rc = mdb_env_set_maxdbs(self->env, JNL_NDBS)) ||
        (rc = mdb_env_open(self->env, dir, flags, 0640))) {
        snprintf(err, errlen, "journal %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(self->env, &dead); /* readers left by a killed process */
    if ((rc = mdb_txn_begin(self->env, NULL, 0, &txn))) {
        snprintf(err, errlen, "journal %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    for (int i = 0; i < JNL_NDBS; i++)
        if ((rc = mdb_dbi_open(txn, s_db_names[i], MDB_CREATE, &self->dbi[i]))) {
            snprintf(err, errlen, "journal %s: database %s: %s", dir, s_db_names[i],
                     mdb_strerror(rc));
            mdb_txn_abort(txn);
            goto fail;
        }
    if ((rc = mdb_txn_commit(txn))) {
        snprintf(err, errlen, "journal %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    if (!had) {
        int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || fsync(fd)) {
            rc = errno;
            snprintf(err, errlen, "journal %s: marker: %s", dir, strerror(rc));
            if (fd >= 0)
                close(fd);
            goto fail;
        }
        close(fd);
    }
    return self;
fail:
    jnl_destroy(&self);
    return NULL;
}

void jnl_destroy(jnl_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jnl_t *self = *self_p;
    s_pipe_stop(self); /* a batch in flight is committed first */
    jpg_close(&self->pg_writer);
    jpg_close(&self->pg);
    if (self->wtxn)
        mdb_txn_abort(self->wtxn);
    if (self->rtxn)
        mdb_txn_abort(self->rtxn);
    if (self->env)
        mdb_env_close(self->env);
    if (self->lock_fd >= 0)
        close(self->lock_fd); /* and with it the lock */
    free(self);
    *self_p = NULL;
}

/* ---- pipelined commits ---------------------------------------------- */

#define OP_ALIGN(n) (((n) + 7) & ~(size_t)7)

/* Record one write of the batch being collected (keys and values are
   copied: the caller's buffers are reused at once). */
static int s_record(jnl_t *self, uint8_t op, jnl_db_t db, const void *key, size_t klen,
                    const void *val, size_t vlen, jnl_call_fn *fn, void *arg)
{
    s_ops_t *o = &self->pipe->ops;
    size_t need = sizeof(s_op_t) + OP_ALIGN(klen) + OP_ALIGN(vlen);
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return EINVAL;
    if (o->len + need > o->cap) {
        size_t cap = o->cap ? o->cap : 1 << 16;
        while (cap < o->len + need)
            cap *= 2;
        uint8_t *d = realloc(o->data, cap);
        if (!d)
            return ENOMEM;
        o->data = d;
        o->cap = cap;
    }
    s_op_t *h = (s_op_t *)(o->data + o->len);
    *h = (s_op_t){ op, (uint8_t)db, (uint32_t)klen, (uint32_t)vlen, fn, arg };
    uint8_t *p = (uint8_t *)(h + 1);
    if (klen)
        memcpy(p, key, klen);
    if (vlen)
        memcpy(p + OP_ALIGN(klen), val, vlen);
    o->len += need;
    return 0;
}

/* The committer's half: one write transaction for the whole batch. */
/* Puts go to PostgreSQL many rows a statement: a run of puts is cut at
   JPG_MANY rows, at any other op, and before a key it already holds
   (one statement may not upsert a row twice). */
static int s_flush_rows(jnl_t *w, jpg_row_t *rows, int *n)
{
    int rc = *n ? jpg_put_many(w->pg, rows, *n) : 0;
    *n = 0;
    return rc;
}

static int s_apply_pg(s_pipe_t *p)
{
    jnl_t *w = &p->w;
    jpg_row_t rows[JPG_MANY];
    int nrows = 0;
    int rc = jpg_begin(w->pg, true);
    for (size_t at = 0; !rc && at < p->fly.len;) {
        const s_op_t *h = (const s_op_t *)(p->fly.data + at);
        const uint8_t *key = (const uint8_t *)(h + 1);
        if (h->op == OP_PUT || h->op == OP_APPEND) {
            for (int i = 0; i < nrows && !rc; i++)
                if (rows[i].db == h->db && rows[i].klen == h->klen &&
                    memcmp(rows[i].k, key, h->klen) == 0)
                    rc = s_flush_rows(w, rows, &nrows);
            if (!rc && nrows == JPG_MANY)
                rc = s_flush_rows(w, rows, &nrows);
            rows[nrows++] = (jpg_row_t){ h->db, key, key + OP_ALIGN(h->klen), h->klen, h->vlen };
            at += sizeof *h + OP_ALIGN(h->klen) + OP_ALIGN(h->vlen);
            continue;
        }
        if ((rc = s_flush_rows(w, rows, &nrows)))
            break;
        switch (h->op) {
        case OP_DEL: rc = jpg_del(w->pg, h->db, key, h->klen); break;
        case OP_CALL: rc = h->fn(w, h->arg); break;
        default: rc = EINVAL;
        }
        at += sizeof *h + OP_ALIGN(h->klen) + OP_ALIGN(h->vlen);
    }
    if (!rc)
        rc = s_flush_rows(w, rows, &nrows);
    if (rc) {
        jpg_rollback(w->pg);
        return rc;
    }
    return jpg_commit(w->pg);
}

static int s_apply(s_pipe_t *p)
{
    jnl_t *w = &p->w;
    if (w->pg)
        return s_apply_pg(p);
    int rc = mdb_txn_begin(w->env, NULL, 0, &w->wtxn);
    for (size_t at = 0; !rc && at < p->fly.len;) {
        const s_op_t *h = (const s_op_t *)(p->fly.data + at);
        uint8_t *key = (uint8_t *)(h + 1);
        MDB_val k = { h->klen, key }, v = { h->vlen, key + OP_ALIGN(h->klen) };
        switch (h->op) {
        case OP_PUT: rc = mdb_put(w->wtxn, w->dbi[h->db], &k, &v, 0); break;
        case OP_APPEND: rc = mdb_put(w->wtxn, w->dbi[h->db], &k, &v, MDB_APPEND); break;
        case OP_DEL:
            rc = mdb_del(w->wtxn, w->dbi[h->db], &k, NULL);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
            break;
        case OP_CALL: rc = h->fn(w, h->arg); break;
        default: rc = EINVAL;
        }
        at += sizeof *h + OP_ALIGN(h->klen) + OP_ALIGN(h->vlen);
    }
    if (w->wtxn) {
        if (rc)
            mdb_txn_abort(w->wtxn);
        else
            rc = mdb_txn_commit(w->wtxn); /* frees the txn even on failure */
        w->wtxn = NULL;
    }
    return rc;
}

static void s_wake_loop(s_pipe_t *p)
{
    uint64_t one = 1;
    if (write(p->efd, &one, sizeof one) < 0) {
        /* The counter cannot overflow here; the loop also polls on a timeout. */
    }
}

static void s_deadline(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *s_committer(void *arg)
{
    s_pipe_t *p = arg;
    struct timespec renew_at;
    s_deadline(&renew_at, p->renew_ms);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* A batch handed over is always committed, even when asked to stop:
           the loop waits for its outcome before it sends anything. Between
           batches the journal's lease is renewed on time (PostgreSQL). */
        bool due = false;
        while (!(p->busy && !p->done) && !p->stop && !due) {
            if (!p->renew_ms)
                pthread_cond_wait(&p->cv, &p->mu);
            else
                due = pthread_cond_timedwait(&p->cv, &p->mu, &renew_at) == ETIMEDOUT;
        }
        if (due && !p->deposed) {
            pthread_mutex_unlock(&p->mu);
            int rc = jpg_lease_renew(p->w.pg);
            /* More than this member's share, another live member below
               it, and this the highest of this member's partitions: give
               it up (the loop stops cleanly), so that member takes it.
               One at a time: the next renewal looks again. */
            uint32_t held, share, below;
            int highest;
            bool yield = rc == 0 && p->nparts > 1 &&
                         jpg_share(p->w.pg, p->nparts, &held, &share, &highest, &below) == 0 &&
                         held > share && below > 0 && highest == jpg_part(p->w.pg);
            pthread_mutex_lock(&p->mu);
            if (yield && !p->yield) {
                zlog_info("journal: this member holds %u partitions, its share is %u: giving "
                          "partition %d up",
                          held, share, jpg_part(p->w.pg));
                p->yield = true;
                s_wake_loop(p);
            }
            s_deadline(&renew_at, p->renew_ms);
            if (rc == JNL_DEPOSED) {
                p->deposed = true;
                s_wake_loop(p);
            }
            continue;
        }
        if (!(p->busy && !p->done))
            break;
        pthread_mutex_unlock(&p->mu);
        int rc = s_apply(p);
        pthread_mutex_lock(&p->mu);
        if (rc == JNL_DEPOSED || rc == JNL_OUTCOME_UNKNOWN)
            p->deposed = true; /* either way nothing more may leave: stop */
        p->rc = rc;
        p->done = true;
        pthread_cond_broadcast(&p->cv);
        s_wake_loop(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int jnl_pipeline(jnl_t *self)
{
    if (self->pipe)
        return 0;
    if (self->wtxn)
        return EINVAL;
    s_pipe_t *p = calloc(1, sizeof *p);
    if (!p)
        return ENOMEM;
    p->w.env = self->env;
    memcpy(p->w.dbi, self->dbi, sizeof p->w.dbi);
    p->w.lock_fd = -1;
    p->w.pg = self->pg_writer;
    self->pg_writer = NULL;
    if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        int rc = errno;
        self->pg_writer = p->w.pg;
        free(p);
        return rc;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* renewals keep time as steps do */
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->renew_ms = p->w.pg && jpg_epoch(p->w.pg) ? self->lease_ms / 3 : 0;
    p->nparts = self->nparts;
    int rc = pthread_create(&p->thread, NULL, s_committer, p);
    if (rc) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        close(p->efd);
        self->pg_writer = p->w.pg;
        free(p);
        return rc;
    }
    self->pipe = p;
    return 0;
}

int jnl_pipe_fd(const jnl_t *self)
{
    return self->pipe ? self->pipe->efd : -1;
}

/* A flag the committer sets (deposed, or yield), read under its lock. */
static bool s_pipe_flag(const jnl_t *self, bool yield)
{
    s_pipe_t *p = self->pipe;
    if (!p)
        return false;
    pthread_mutex_lock(&p->mu);
    bool v = yield ? p->yield : p->deposed;
    pthread_mutex_unlock(&p->mu);
    return v;
}

bool jnl_yield(const jnl_t *self)
{
    return s_pipe_flag(self, true);
}

bool jnl_deposed(const jnl_t *self)
{
    return s_pipe_flag(self, false);
}

uint32_t jnl_partition_of(const char *id, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)id; *c; c++)
        h = (h ^ *c) * 16777619u;
    return n > 1 ? h % n : 0;
}

uint32_t jnl_partition(const jnl_t *self, uint32_t *n)
{
    *n = self->nparts ? self->nparts : 1;
    return self->part;
}

int jnl_leader_of(jnl_t *self, uint32_t part, char *clients, size_t len)
{
    if (!self->pg)
        return ENOENT;
    return jpg_leader_of(self->pg, part, clients, len);
}

uint64_t jnl_epoch(const jnl_t *self)
{
    return self->pipe && self->pipe->w.pg ? jpg_epoch(self->pipe->w.pg) : 0;
}

int jnl_write_submit(jnl_t *self)
{
    s_pipe_t *p = self->pipe;
    if (!p || !self->collecting)
        return EINVAL;
    pthread_mutex_lock(&p->mu);
    if (p->busy) {
        pthread_mutex_unlock(&p->mu);
        return EBUSY; /* jnl_write_wait for the one in flight first */
    }
    s_ops_t t = p->fly;
    p->fly = p->ops;
    p->ops = t;
    p->ops.len = 0;
    p->busy = true;
    p->done = false;
    self->collecting = false;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

bool jnl_write_wait(jnl_t *self, bool block, int *rc)
{
    s_pipe_t *p = self->pipe;
    *rc = 0;
    if (!p)
        return true;
    pthread_mutex_lock(&p->mu);
    while (block && p->busy && !p->done)
        pthread_cond_wait(&p->cv, &p->mu);
    bool ended = !p->busy || p->done;
    if (p->busy && p->done) {
        *rc = p->rc;
        p->busy = p->done = false;
        uint64_t n;
        if (read(p->efd, &n, sizeof n) < 0) {
            /* Already read (EAGAIN): nothing owed. */
        }
    }
    pthread_mutex_unlock(&p->mu);
    return ended;
}

bool jnl_write_busy(const jnl_t *self)
{
    s_pipe_t *p = self->pipe;
    if (!p)
        return false;
    pthread_mutex_lock(&p->mu);
    bool busy = p->busy;
    pthread_mutex_unlock(&p->mu);
    return busy;
}

static void s_pipe_stop(jnl_t *self)
{
    s_pipe_t *p = self->pipe;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    if (p->w.pg && !p->deposed)
        jpg_lease_release(p->w.pg); /* a standby need not wait for it to expire */
    jpg_close(&p->w.pg);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    close(p->efd);
    free(p->ops.data);
    free(p->fly.data);
    free(p);
    self->pipe = NULL;
}

/* ---- writes ----------------------------------------------------------- */

int jnl_write_begin(jnl_t *self)
{
    if (self->wtxn || self->collecting)
        return EINVAL;
    if (self->pipe) {
        self->pipe->ops.len = 0;
        self->collecting = true;
        return 0;
    }
    return mdb_txn_begin(self->env, NULL, 0, &self->wtxn);
}

bool jnl_in_write(const jnl_t *self)
{
    return self->wtxn != NULL || self->collecting;
}

int jnl_put(jnl_t *self, jnl_db_t db, const void *key, size_t klen, const void *val, size_t vlen)
{
    MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
    if (self->collecting)
        return s_record(self, OP_PUT, db, key, klen, val, vlen, NULL, NULL);
    if (self->pg)
        return jpg_in_txn(self->pg) ? jpg_put(self->pg, db, key, klen, val, vlen) : EINVAL;
    if (!self->wtxn)
        return EINVAL;
    return mdb_put(self->wtxn, self->dbi[db], &k, &v, 0);
}

int jnl_append(jnl_t *self, jnl_db_t db, const void *key, size_t klen, const void *val, size_t vlen)
{
    MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
    if (self->collecting)
        return s_record(self, OP_APPEND, db, key, klen, val, vlen, NULL, NULL);
    if (self->pg)
        return jpg_in_txn(self->pg) ? jpg_put(self->pg, db, key, klen, val, vlen) : EINVAL;
    if (!self->wtxn)
        return EINVAL;
    return mdb_put(self->wtxn, self->dbi[db], &k, &v, MDB_APPEND);
}

int jnl_del(jnl_t *self, jnl_db_t db, const void *key, size_t klen)
{
    MDB_val k = { klen, (void *)key };
    if (self->collecting)
        return s_record(self, OP_DEL, db, key, klen, NULL, 0, NULL, NULL);
    if (self->pg)
        return jpg_in_txn(self->pg) ? jpg_del(self->pg, db, key, klen) : EINVAL;
    if (!self->wtxn)
        return EINVAL;
    int rc = mdb_del(self->wtxn, self->dbi[db], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int jnl_write_call(jnl_t *self, jnl_call_fn *fn, void *arg)
{
    if (self->collecting)
        return s_record(self, OP_CALL, 0, NULL, 0, NULL, 0, fn, arg);
    if (!self->wtxn)
        return EINVAL;
    return fn(self, arg);
}

int jnl_write_commit(jnl_t *self)
{
    if (self->collecting) {
        int rc = jnl_write_submit(self);
        if (rc) {
            jnl_write_abort(self);
            return rc;
        }
        jnl_write_wait(self, true, &rc);
        return rc;
    }
    if (!self->wtxn)
        return EINVAL;
    int rc = mdb_txn_commit(self->wtxn); /* frees the txn even on failure */
    self->wtxn = NULL;
    return rc;
}

void jnl_write_abort(jnl_t *self)
{
    if (self->collecting) {
        self->pipe->ops.len = 0;
        self->collecting = false;
    }
    if (self->wtxn)
        mdb_txn_abort(self->wtxn);
    self->wtxn = NULL;
}

int jnl_read_begin(jnl_t *self)
{
    if (self->rtxn_live)
        return 0;
    if (self->pg) {
        /* The committer's view reads inside its own write transaction. */
        if (jpg_in_txn(self->pg))
            return 0;
        int rc = jpg_begin(self->pg, false);
        self->rtxn_live = rc == 0;
        return rc;
    }
    int rc = self->rtxn ? mdb_txn_renew(self->rtxn)
                        : mdb_txn_begin(self->env, NULL, MDB_RDONLY, &self->rtxn);
    if (rc == 0)
        self->rtxn_live = true;
    return rc;
}

void jnl_read_end(jnl_t *self)
{
    /* Reset, not abort: keeps the reader slot, so the next read is cheap.
       A live read transaction would pin old pages and grow the map. */
    if (self->rtxn_live && self->pg)
        jpg_commit(self->pg); /* read only: ends the snapshot */
    else if (self->rtxn_live)
        mdb_txn_reset(self->rtxn);
    self->rtxn_live = false;
}

static MDB_txn *s_txn(jnl_t *self)
{
    return self->wtxn ? self->wtxn : self->rtxn_live ? self->rtxn : NULL;
}

/* Is a transaction open to read in (LMDB: read or write; PostgreSQL:
   either, on this handle's connection)? */
static bool s_reading(jnl_t *self)
{
    return self->pg ? jpg_in_txn(self->pg) : s_txn(self) != NULL;
}

/* The first key past every key with the prefix, or 0 if none is (a
   prefix longer than cap is refused by the callers first). */
static size_t s_successor(const void *prefix, size_t plen, uint8_t *out, size_t cap)
{
    size_t n = plen <= cap ? plen : 0;
    memcpy(out, prefix, n);
    while (n && out[n - 1] == 0xff)
        n--;
    if (n)
        out[n - 1]++;
    return n;
}

int jnl_get(jnl_t *self, jnl_db_t db, const void *key, size_t klen, const void **val, size_t *vlen)
{
    if (self->pg)
        return jpg_get(self->pg, (int)db, key, klen, val, vlen);
    MDB_txn *txn = s_txn(self);
    MDB_val k = { klen, (void *)key }, v;
    if (!txn)
        return EINVAL;
    int rc = mdb_get(txn, self->dbi[db], &k, &v);
    if (rc == 0) {
        *val = v.mv_data;
        *vlen = v.mv_size;
    }
    return rc;
}

int jnl_scan(jnl_t *self, jnl_db_t db, const void *prefix, size_t plen, jnl_scan_fn *fn, void *arg)
{
    if (self->pg) {
        uint8_t past[512];
        if (plen > sizeof past)
            return EINVAL; /* no bound could be given: never scan past it */
        size_t n = plen ? s_successor(prefix, plen, past, sizeof past) : 0;
        return jpg_scan(self->pg, (int)db, plen ? prefix : NULL, plen, true, n ? past : NULL, n,
                        false, fn, arg);
    }
    MDB_txn *txn = s_txn(self);
    MDB_cursor *cur;
    MDB_val k = { plen, (void *)prefix }, v;
    if (!txn)
        return EINVAL;
    int rc = mdb_cursor_open(txn, self->dbi[db], &cur);
    if (rc)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    int out = 0;
    while (rc == 0) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break;
        if ((out = fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size)))
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (out)
        return out;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Is key (k) still under prefix? */
static bool s_has_prefix(const MDB_val *k, const void *prefix, size_t plen)
{
    return !plen || (k->mv_size >= plen && memcmp(k->mv_data, prefix, plen) == 0);
}

/* Position cur on the last key with the prefix: the key just below the
   first key past every key with it. */
static int s_last_with_prefix(MDB_cursor *cur, const void *prefix, size_t plen, MDB_val *k,
                              MDB_val *v)
{
    uint8_t past[512];
    if (!plen || plen > sizeof past)
        return mdb_cursor_get(cur, k, v, MDB_LAST);
    memcpy(past, prefix, plen);
    size_t n = plen;
    while (n && past[n - 1] == 0xff)
        n--;
    if (!n)
        return mdb_cursor_get(cur, k, v, MDB_LAST);
    past[n - 1]++;
    MDB_val p = { n, past };
    int rc = mdb_cursor_get(cur, &p, v, MDB_SET_RANGE);
    if (rc == 0) {
        *k = p;
        return mdb_cursor_get(cur, k, v, MDB_PREV);
    }
    return rc == MDB_NOTFOUND ? mdb_cursor_get(cur, k, v, MDB_LAST) : rc;
}

int jnl_scan_from(jnl_t *self, jnl_db_t db, const void *prefix, size_t plen, const void *from,
                  size_t flen, bool reverse, jnl_scan_fn *fn, void *arg)
{
    MDB_txn *txn = s_txn(self);
    MDB_cursor *cur;
    MDB_val k = { 0, NULL }, v;
    int rc, out = 0;
    if (self->pg) {
        /* Forward: from `from` (exclusive) or the prefix, up to the
           prefix's end; reverse: down from `from` (exclusive) or the
           prefix's end, to the prefix. */
        uint8_t past[512];
        if (plen > sizeof past)
            return EINVAL;
        size_t n = plen ? s_successor(prefix, plen, past, sizeof past) : 0;
        if (!reverse)
            return jpg_scan(self->pg, (int)db,
                            from   ? from
                            : plen ? prefix
                                   : NULL,
                            from ? flen : plen, !from, n ? past : NULL, n, false, fn, arg);
        return jpg_scan(self->pg, (int)db,
                        from ? from
                        : n  ? past
                             : NULL,
                        from ? flen : n, false, plen ? prefix : NULL, plen, true, fn, arg);
    }
    if (!txn)
        return EINVAL;
    if ((rc = mdb_cursor_open(txn, self->dbi[db], &cur)))
        return rc;
    if (from) {
        k = (MDB_val){ flen, (void *)from };
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (!reverse) {
            /* Strictly after from. */
            if (rc == 0 && k.mv_size == flen && memcmp(k.mv_data, from, flen) == 0)
                rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        } else if (rc == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_PREV); /* strictly before from */
        else if (rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    } else if (!reverse) {
        k = (MDB_val){ plen, (void *)prefix };
        rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    } else
        rc = s_last_with_prefix(cur, prefix, plen, &k, &v);
    while (rc == 0 && s_has_prefix(&k, prefix, plen)) {
        if ((out = fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size)))
            break;
        rc = mdb_cursor_get(cur, &k, &v, reverse ? MDB_PREV : MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (out)
        return out;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int jnl_del_prefix(jnl_t *self, jnl_db_t db, const void *prefix, size_t plen, size_t *n)
{
    MDB_cursor *cur;
    MDB_val k = { plen, (void *)prefix }, v;
    *n = 0;
    if (self->pg) {
        uint8_t past[512];
        if (plen > sizeof past)
            return EINVAL;
        size_t m = plen ? s_successor(prefix, plen, past, sizeof past) : 0;
        if (!plen || !jpg_in_txn(self->pg))
            return EINVAL;
        return jpg_del_range(self->pg, (int)db, prefix, plen, m ? past : NULL, m, n);
    }
    if (!self->wtxn || !plen)
        return EINVAL;
    int rc = mdb_cursor_open(self->wtxn, self->dbi[db], &cur);
    if (rc)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && s_has_prefix(&k, prefix, plen)) {
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
        (*n)++;
        /* After a delete LMDB's next is the key that followed. */
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

size_t jnl_count(jnl_t *self, jnl_db_t db)
{
    if (self->pg)
        return jpg_count(self->pg, (int)db);
    MDB_stat st;
    bool own = !s_txn(self);
    if (own && jnl_read_begin(self))
        return 0;
    int rc = mdb_stat(s_txn(self), self->dbi[db], &st);
    if (own)
        jnl_read_end(self);
    return rc ? 0 : st.ms_entries;
}

uint64_t jnl_meta_get(jnl_t *self, const char *name)
{
    const void *v;
    size_t n;
    uint64_t out = 0;
    bool own = !s_reading(self);
    if (own && jnl_read_begin(self))
        return 0;
    if (jnl_get(self, JNL_META, name, strlen(name), &v, &n) == 0 && n == sizeof out)
        memcpy(&out, v, sizeof out);
    if (own)
        jnl_read_end(self);
    return out;
}

int jnl_meta_put(jnl_t *self, const char *name, uint64_t value)
{
    return jnl_put(self, JNL_META, name, strlen(name), &value, sizeof value);
}

void jnl_usage(jnl_t *self, size_t *used, size_t *map_bytes)
{
    if (self->pg) {
        *used = jpg_used(self->pg);
        *map_bytes = self->pg_map;
        return;
    }
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(self->env, &info);
    mdb_env_stat(self->env, &st);
    size_t pages = info.me_last_pgno + 1, free_pages = 0;
    /* LMDB reuses freed pages before it grows the file, so the high-water
       mark alone would call a journal full after removals made room. The
       free list (database 0) holds, per transaction, a count and page
       numbers. */
    MDB_cursor *cur;
    MDB_val k, v;
    bool own = !s_txn(self);
    if ((!own || jnl_read_begin(self) == 0) && mdb_cursor_open(s_txn(self), 0, &cur) == 0) {
        int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (rc == 0) {
            if (v.mv_size >= sizeof(size_t))
                free_pages += *(const size_t *)v.mv_data;
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    }
    if (own)
        jnl_read_end(self);
    *used = (pages - (free_pages < pages ? free_pages : 0)) * (size_t)st.ms_psize;
    *map_bytes = info.me_mapsize;
}

int jnl_backup(jnl_t *self, const char *dir, char *err, size_t errlen)
{
    if (self->pg) {
        snprintf(err, errlen,
                 "the journal is on PostgreSQL: back it up with PostgreSQL's own tools "
                 "(pg_basebackup and WAL archiving, for point-in-time recovery), not zsaga backup");
        return ENOTSUP;
    }
    char path[4096];
    int rc;
    /* A new directory, ours alone (the caller's umask makes it private):
       never a copy into someone else's folder. */
    if (mkdir(dir, 0700)) {
        rc = errno;
        snprintf(err, errlen, "backup directory %s: %s", dir,
                 rc == EEXIST ? "already exists (a backup is never overwritten)" : strerror(rc));
        return rc;
    }
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    /* Compacting copy: a consistent snapshot taken in its own read
       transaction, so the running orchestrator keeps writing meanwhile. */
    if ((rc = mdb_env_copy2(self->env, dir, MDB_CP_COMPACT))) {
        snprintf(err, errlen, "backup to %s: %s (nothing kept)", dir, mdb_strerror(rc));
        /* A torn copy must not pass for a backup. */
        unlink(path);
        rmdir(dir);
        return rc;
    }
    return 0;
}

static int s_copy_file(const char *from, const char *to, char *err, size_t errlen)
{
    int in = open(from, O_RDONLY), out = -1, rc = 0;
    char buf[1 << 16];
    ssize_t n;
    if (in < 0 || (out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0640)) < 0) {
        rc = errno;
        snprintf(err, errlen, "copy %s: %s", in < 0 ? from : to, strerror(rc));
        goto done;
    }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            rc = errno ? errno : EIO;
            break;
        }
    if (n < 0)
        rc = errno;
    if (!rc && fsync(out))
        rc = errno;
    if (rc)
        snprintf(err, errlen, "copy %s to %s: %s", from, to, strerror(rc));
done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

int jnl_restore(const char *backup_dir, const char *data_dir, char *err, size_t errlen)
{
    char from[4096], tmp[4096], to[4096];
    int rc;
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    /* Check the backup is a whole journal before LMDB maps it (a truncated
       file would fault), and before touching the live directory. */
    snprintf(from, sizeof from, "%s/data.mdb", backup_dir);
    if ((rc = jnl_check_file(from, err, errlen)))
        return rc;
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, JNL_NDBS)) ||
        (rc = mdb_env_open(env, backup_dir, MDB_RDONLY, 0640)) ||
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) ||
        (rc = mdb_dbi_open(txn, "sagas", 0, &dbi))) {
        snprintf(err, errlen, "%s is not a readable zsaga journal: %s", backup_dir,
                 mdb_strerror(rc));
        if (txn)
            mdb_txn_abort(txn);
        mdb_env_close(env);
        return rc;
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    /* Never under a running zsagad: it would keep writing to the file we
       replace, and what it wrote after would be lost at its next start. */
    if ((rc = jnl_locked_by(data_dir, err, errlen)))
        return rc;
    if ((rc = s_mkdir(data_dir))) {
        snprintf(err, errlen, "data directory %s: %s", data_dir, strerror(rc));
        return rc;
    }
    snprintf(from, sizeof from, "%s/data.mdb", backup_dir);
    snprintf(tmp, sizeof tmp, "%s/data.mdb.restore", data_dir);
    snprintf(to, sizeof to, "%s/data.mdb", data_dir);
    if ((rc = s_copy_file(from, tmp, err, errlen)))
        return rc;
    /* Temp file, fsync, rename, fsync the directory: the live journal is
       either the old one or the whole new one, never a torn copy. */
    if (rename(tmp, to)) {
        rc = errno;
        snprintf(err, errlen, "rename %s: %s", tmp, strerror(rc));
        return rc;
    }
    snprintf(tmp, sizeof tmp, "%s/lock.mdb", data_dir);
    unlink(tmp);
    int dfd = open(data_dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}
