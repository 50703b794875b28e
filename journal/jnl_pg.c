/*  jnl_pg: the journal on PostgreSQL. See jnl_pg.h. */
#include "jnl_pg.h"
#include "common/zlog.h"
#include "jnl.h"

#include <errno.h>
#include <libpq-fe.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define PAGE_ROWS 256

struct jpg_s {
    PGconn *pg;
    char table[32]; /* the partition's table: zsaga_journal, or zsaga_journal_pN */
    int part;       /* the partition this connection reads or writes */
    bool ready;     /* the partition is chosen: its table exists, writes are prepared */
    char holder[128];
    char member[64]; /* the machine (or name) this zsagad counts as, for shares */
    uint64_t epoch;  /* of the lease held; 0: none (a reader) */
    char xid[24];    /* the write transaction's id (txid_current), "" when unknown */
    int test_cut;    /* jpg_test_cut_commit: 1 before COMMIT, 2 after its answer */
    uint32_t lease_ms;
    uint32_t idle_set; /* the idle-transaction limit this session has (0: none yet) */
    bool writer, in_txn, piping;
    bool prepared[JPG_MANY + 1]; /* jputN: N rows in one upsert */
    int queued;                  /* statements sent in the pipeline, results not read */
    unsigned failed_tries;       /* to connect again, since the connection was lost */
    int64_t said_ms;             /* when that was last logged (monotonic) */
    PGresult **held;             /* results whose values callers may still hold */
    size_t nheld, capheld;
};

bool jpg_is_uri(const char *uri)
{
    return strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0;
}

/* Log the database's complaint (once per error) and say EIO. */
static int s_fail(jpg_t *self, const char *what, const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg || !*msg)
        msg = PQerrorMessage(self->pg);
    char line[512];
    snprintf(line, sizeof line, "%s", msg);
    line[strcspn(line, "\n")] = 0;
    zlog_error("journal (postgresql): %s: %s", what, line);
    return EIO;
}

static int s_exec(jpg_t *self, const char *sql)
{
    PGresult *res = PQexec(self->pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : s_fail(self, sql, res);
    PQclear(res);
    return rc;
}

/* What a session needs, at open and after a reconnect: quiet notices;
   for the writer, the shared tables at open, and once its partition is
   chosen (jpg_use_partition) the idle-transaction limit and its prepared
   writes. 0, or EIO with err set. */
static int s_setup(jpg_t *self, bool create, char *err, size_t errlen)
{
    PGresult *res;
    char sql[192];
    memset(self->prepared, 0, sizeof self->prepared);
    if (s_exec(self, "SET client_min_messages = warning"))
        goto fail;
    if (!self->writer)
        return 0;
    /* Several zsagads starting at once would race in CREATE TABLE IF NOT
       EXISTS (a duplicate key in pg_type): one at a time, under a lock
       held to the end of the transaction. */
    if (create &&
        (s_exec(self, "BEGIN") || s_exec(self, "SELECT pg_advisory_xact_lock(7316001)") ||
         s_exec(self, "CREATE TABLE IF NOT EXISTS zsaga_lease (part int PRIMARY KEY, "
                      "holder text NOT NULL, epoch bigint NOT NULL, "
                      "expires_at timestamptz NOT NULL, clients text NOT NULL DEFAULT '', "
                      "member text NOT NULL DEFAULT '')") ||
         s_exec(self, "CREATE TABLE IF NOT EXISTS zsaga_members (member text PRIMARY "
                      "KEY, seen timestamptz NOT NULL)") ||
         s_exec(self, "CREATE TABLE IF NOT EXISTS zsaga_partitions (one bool PRIMARY KEY "
                      "DEFAULT true CHECK (one), n int NOT NULL CHECK (n > 0))") ||
         s_exec(self, "COMMIT"))) {
        s_exec(self, "ROLLBACK");
        goto fail;
    }
    if (!self->ready)
        return 0;
    if (self->lease_ms) {
        snprintf(sql, sizeof sql, "SET idle_in_transaction_session_timeout = %u", self->lease_ms);
        if (s_exec(self, sql))
            goto fail;
        self->idle_set = self->lease_ms;
    }
    snprintf(sql, sizeof sql,
             "INSERT INTO %s (db, k, v) VALUES ($1, $2, $3) "
             "ON CONFLICT (db, k) DO UPDATE SET v = EXCLUDED.v",
             self->table);
    res = PQprepare(self->pg, "jput", sql, 0, NULL);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE db = $1 AND k = $2", self->table);
    res = PQprepare(self->pg, "jdel", sql, 0, NULL);
    ok = ok && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (ok)
        return 0;
fail:
    snprintf(err, errlen, "journal (postgresql): %s", PQerrorMessage(self->pg));
    err[strcspn(err, "\n")] = 0;
    return EIO;
}

static PGresult *s_query(jpg_t *self, const char *sql, int n, const char *const *vals,
                         const int *lens, const int *fmts, int *rc);

int jpg_partitions(jpg_t *self, uint32_t n, char *err, size_t errlen)
{
    char ns[16];
    snprintf(ns, sizeof ns, "%u", n);
    const char *vals[1] = { ns };
    PGresult *res = PQexecParams(self->pg,
                                 "INSERT INTO zsaga_partitions (n) VALUES ($1::int) "
                                 "ON CONFLICT (one) DO NOTHING",
                                 1, NULL, vals, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    res = PQexec(self->pg, "SELECT n FROM zsaga_partitions");
    if (!ok || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        snprintf(err, errlen, "journal (postgresql): partitions: %s", PQerrorMessage(self->pg));
        err[strcspn(err, "\n")] = 0;
        PQclear(res);
        return EIO;
    }
    uint32_t has = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (has != n) {
        /* Saga ids are hashed over the count the journal was made with:
           another count would look for sagas in the wrong tables. */
        snprintf(err, errlen,
                 "the journal was made with %u partition%s; --partitions says %u (it cannot "
                 "change on a journal that holds sagas)",
                 has, has == 1 ? "" : "s", n);
        return EINVAL;
    }
    return 0;
}

int jpg_use_partition(jpg_t *self, uint32_t part, uint32_t n, char *err, size_t errlen)
{
    self->part = (int)part;
    if (n <= 1)
        snprintf(self->table, sizeof self->table, "zsaga_journal");
    else
        snprintf(self->table, sizeof self->table, "zsaga_journal_p%u", part);
    if (self->writer) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "CREATE TABLE IF NOT EXISTS %s (db smallint NOT NULL, k bytea NOT NULL, "
                 "v bytea NOT NULL, PRIMARY KEY (db, k))",
                 self->table);
        if (s_exec(self, sql)) {
            snprintf(err, errlen, "journal (postgresql): cannot make %s", self->table);
            return EIO;
        }
    }
    self->ready = true;
    return s_setup(self, false, err, errlen);
}

int jpg_leader_of(jpg_t *self, uint32_t part, char *clients, size_t len)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%u", part);
    const char *vals[1] = { ps };
    int lens[1] = { 0 }, fmts[1] = { 0 }, rc;
    PGresult *res = s_query(self,
                            "SELECT clients FROM zsaga_lease WHERE part = $1::int AND "
                            "expires_at > now()",
                            1, vals, lens, fmts, &rc);
    if (!res)
        return rc;
    rc = PQntuples(res) == 1 ? 0 : ENOENT;
    if (!rc)
        snprintf(clients, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

jpg_t *jpg_open(const char *uri, bool writer, char *err, size_t errlen)
{
    jpg_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->writer = writer;
    snprintf(self->table, sizeof self->table, "zsaga_journal");
    self->pg = PQconnectdb(uri);
    if (!self->pg || PQstatus(self->pg) != CONNECTION_OK) {
        snprintf(err, errlen, "journal (postgresql): %s",
                 self->pg ? PQerrorMessage(self->pg) : "out of memory");
        err[strcspn(err, "\n")] = 0;
        jpg_close(&self);
        return NULL;
    }
    if (s_setup(self, true, err, errlen)) {
        jpg_close(&self);
        return NULL;
    }
    return self;
}

/* Can the session take a statement: connected and out of pipeline mode? */
static bool s_usable(const jpg_t *self)
{
    return PQstatus(self->pg) == CONNECTION_OK && PQpipelineStatus(self->pg) == PQ_PIPELINE_OFF;
}

/* A connection the server dropped (a restart, a failover with a
   multi-host URI, a network cut) is made again before the next
   transaction; what was in flight on it failed, and the journal's caller
   redoes it. The lease is checked again by that transaction. */
static int s_ensure(jpg_t *self)
{
    char err[512];
    /* Between transactions a sound session is idle; one that is not (a
       pipeline the server cut short) is made again. */
    if (s_usable(self) && PQtransactionStatus(self->pg) == PQTRANS_IDLE)
        return 0;
    self->in_txn = self->piping = false;
    self->queued = 0;
    self->idle_set = 0; /* a new session has none */
    PQreset(self->pg);
    /* Said at the first failed try of an outage, then every 10 s: the
       loop tries at every tick. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    bool say = !self->failed_tries || now - self->said_ms >= 10000;
    if (PQstatus(self->pg) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(self->pg));
        msg[strcspn(msg, "\n")] = 0;
        if (say) {
            zlog_warn("journal (postgresql): connection lost, not back yet (%u tries): %s",
                      self->failed_tries + 1, msg);
            self->said_ms = now;
        }
        self->failed_tries++;
        return EIO;
    }
    if (s_setup(self, false, err, sizeof err)) {
        if (say) {
            zlog_warn("%s", err);
            self->said_ms = now;
        }
        self->failed_tries++;
        return EIO;
    }
    zlog_info("journal (postgresql): connection made again");
    self->failed_tries = 0;
    return 0;
}

void jpg_release(jpg_t *self)
{
    for (size_t i = 0; i < self->nheld; i++)
        PQclear(self->held[i]);
    self->nheld = 0;
}

void jpg_close(jpg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jpg_t *self = *self_p;
    jpg_release(self);
    free(self->held);
    if (self->pg)
        PQfinish(self->pg);
    free(self);
    *self_p = NULL;
}

static int s_hold(jpg_t *self, PGresult *res)
{
    if (self->nheld == self->capheld) {
        size_t cap = self->capheld ? self->capheld * 2 : 16;
        PGresult **h = realloc(self->held, cap * sizeof *h);
        if (!h) {
            PQclear(res);
            return ENOMEM;
        }
        self->held = h;
        self->capheld = cap;
    }
    self->held[self->nheld++] = res;
    return 0;
}

/* Read the results of what the pipeline sent, up to its sync: the first
   error is the answer. Every statement's results are read, those after
   an error too (PGRES_PIPELINE_ABORTED), or libpq stays in pipeline mode
   and refuses everything after. A pipeline that cannot be closed (the
   server ended the session: a FATAL, a kill, the idle-transaction limit)
   leaves the connection to be made again by s_ensure. Leaves pipeline
   mode. */
static int s_drain(jpg_t *self)
{
    int rc = 0;
    if (!self->piping)
        return 0;
    if (PQpipelineSync(self->pg) != 1)
        rc = s_fail(self, "pipeline", NULL);
    for (int q = 0; q < self->queued && PQstatus(self->pg) == CONNECTION_OK; q++) {
        PGresult *res = PQgetResult(self->pg);
        if (!res) {
            if (!rc)
                rc = s_fail(self, "pipeline", NULL);
            break;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_ABORTED) {
            if (!rc)
                rc = EIO;
        } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !rc) {
            rc = s_fail(self, "write", res);
        }
        PQclear(res);
        while ((res = PQgetResult(self->pg)))
            PQclear(res);
    }
    for (PGresult *res; PQstatus(self->pg) == CONNECTION_OK && (res = PQgetResult(self->pg));) {
        bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        PQclear(res);
        if (sync)
            break;
    }
    if (PQexitPipelineMode(self->pg) != 1 && !rc)
        rc = s_fail(self, "pipeline", NULL);
    self->piping = false;
    self->queued = 0;
    return rc;
}

int jpg_flush(jpg_t *self)
{
    return s_drain(self);
}

/* ---- the lease ------------------------------------------------------- */

int jpg_lease_take(jpg_t *self, uint32_t part, const char *holder, const char *clients,
                   uint32_t lease_ms, uint32_t min_free_ms, char *who, size_t wholen, char *until,
                   size_t untillen)
{
    char ms[16], ps[16], fs[16];
    if (s_ensure(self))
        return EIO; /* a standby waits for the database too */
    snprintf(self->holder, sizeof self->holder, "%s", holder);
    self->lease_ms = lease_ms;
    snprintf(ms, sizeof ms, "%u", lease_ms);
    /* A paused holder's open transaction must not hold the lease row's
       lock (and so the takeover) for ever: PostgreSQL ends such a session
       after the lease's time, and with it the transaction. */
    if (self->idle_set != lease_ms) { /* once a session: a standby tries every poll */
        char set[96];
        snprintf(set, sizeof set, "SET idle_in_transaction_session_timeout = %u", lease_ms);
        if (s_exec(self, set))
            return EIO;
        self->idle_set = lease_ms;
    }
    snprintf(ps, sizeof ps, "%u", part);
    snprintf(fs, sizeof fs, "%u", min_free_ms);
    const char *vals[6] = { holder, ms, ps, clients ? clients : "", self->member, fs };
    PGresult *res =
        PQexecParams(self->pg,
                     "INSERT INTO zsaga_lease (part, holder, epoch, expires_at, clients, member) "
                     "VALUES ($3::int, $1, 1, now() + $2::int * interval '1 millisecond', $4, $5) "
                     "ON CONFLICT (part) DO UPDATE SET holder = EXCLUDED.holder, "
                     "epoch = zsaga_lease.epoch + 1, expires_at = EXCLUDED.expires_at, "
                     "clients = EXCLUDED.clients, member = EXCLUDED.member "
                     "WHERE zsaga_lease.expires_at < now() - $6::int * interval '1 millisecond' "
                     "RETURNING epoch::text",
                     6, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int rc = s_fail(self, "lease", res);
        PQclear(res);
        return rc;
    }
    if (PQntuples(res) == 1) {
        self->epoch = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        self->part = (int)part;
        PQclear(res);
        return 0;
    }
    PQclear(res);
    if (!who)
        return EAGAIN;
    res = PQexecParams(self->pg,
                       "SELECT holder, to_char(expires_at AT TIME ZONE 'UTC', "
                       "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM zsaga_lease WHERE part = $1::int",
                       1, NULL, vals + 2, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        snprintf(who, wholen, "%s", PQgetvalue(res, 0, 0));
        snprintf(until, untillen, "%s", PQgetvalue(res, 0, 1));
    } else {
        snprintf(who, wholen, "?");
        snprintf(until, untillen, "?");
    }
    PQclear(res);
    return EAGAIN;
}

uint64_t jpg_epoch(const jpg_t *self)
{
    return self->epoch;
}

/* Is the lease row still ours? In a transaction: FOR SHARE, so a
   takeover waits for this transaction to end. */
static int s_fence(jpg_t *self, bool renew)
{
    char ep[24], ms[16], ps[16];
    snprintf(ep, sizeof ep, "%llu", (unsigned long long)self->epoch);
    snprintf(ms, sizeof ms, "%u", self->lease_ms);
    snprintf(ps, sizeof ps, "%d", self->part);
    const char *vals[4] = { self->holder, ep, ps, ms };
    PGresult *res = PQexecParams(
        self->pg,
        renew ? "UPDATE zsaga_lease SET expires_at = now() + $4::int * interval '1 millisecond' "
                "WHERE part = $3::int AND holder = $1 AND epoch = $2::bigint RETURNING 1"
              /* The transaction's id too: should the connection be lost
                 while COMMIT runs, txid_status says afterwards whether it
                 committed. */
              : "SELECT txid_current() FROM zsaga_lease WHERE part = $3::int AND holder = $1 AND "
                "epoch = $2::bigint FOR SHARE",
        renew ? 4 : 3, NULL, vals, NULL, NULL, 0);
    int rc = PQresultStatus(res) != PGRES_TUPLES_OK ? s_fail(self, "lease", res)
             : PQntuples(res) == 1                  ? 0
                                                    : JNL_DEPOSED;
    if (rc == 0 && !renew)
        snprintf(self->xid, sizeof self->xid, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (rc == JNL_DEPOSED)
        zlog_error("journal (postgresql): the lease (epoch %llu) was taken by another zsagad",
                   (unsigned long long)self->epoch);
    return rc;
}

void jpg_set_member(jpg_t *self, const char *member)
{
    snprintf(self->member, sizeof self->member, "%s", member);
}

int jpg_share(jpg_t *self, uint32_t nparts, uint32_t *held, uint32_t *share, int *highest,
              uint32_t *below)
{
    char ms[16], ns[16];
    snprintf(ms, sizeof ms, "%u", self->lease_ms ? self->lease_ms : 5000);
    snprintf(ns, sizeof ns, "%u", nparts);
    const char *vals[3] = { self->member, ms, ns };
    if (s_ensure(self))
        return EIO;
    /* This member is alive; the live ones are those seen within a lease
       (each refreshes at least every lease/3 while it has a zsagad
       running). The data-modifying CTE is not seen by the rest of the
       statement: this member is counted apart. */
    PGresult *res = PQexecParams(
        self->pg,
        "WITH me AS (INSERT INTO zsaga_members (member, seen) VALUES ($1, now()) "
        "ON CONFLICT (member) DO UPDATE SET seen = now() RETURNING member), "
        "live AS (SELECT member FROM zsaga_members WHERE member <> $1 AND "
        "seen > now() - $2::int * interval '1 millisecond'), "
        "share AS (SELECT ceil($3::numeric / ((SELECT count(*) FROM live) + 1))::int AS s) "
        "SELECT (SELECT count(*) FROM zsaga_lease WHERE member = $1 AND expires_at > now()), "
        "(SELECT s FROM share), "
        "coalesce((SELECT max(part) FROM zsaga_lease WHERE member = $1 AND "
        "expires_at > now()), -1), "
        "(SELECT count(*) FROM live WHERE (SELECT count(*) FROM zsaga_lease l WHERE "
        "l.member = live.member AND l.expires_at > now()) < (SELECT s FROM share)), "
        "(SELECT count(*) FROM me)",
        3, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        int rc = s_fail(self, "members", res);
        PQclear(res);
        return rc;
    }
    *held = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    *share = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    *highest = atoi(PQgetvalue(res, 0, 2));
    *below = (uint32_t)strtoul(PQgetvalue(res, 0, 3), NULL, 10);
    PQclear(res);
    return 0;
}

int jpg_part(const jpg_t *self)
{
    return self->part;
}

int jpg_lease_renew(jpg_t *self)
{
    if (!self->epoch)
        return 0;
    return s_ensure(self) ? EIO : s_fence(self, true);
}

void jpg_lease_release(jpg_t *self)
{
    if (!self->epoch || self->in_txn)
        return;
    char ep[24], ps[16];
    snprintf(ep, sizeof ep, "%llu", (unsigned long long)self->epoch);
    snprintf(ps, sizeof ps, "%d", self->part);
    const char *vals[3] = { self->holder, ep, ps };
    PGresult *res = PQexecParams(self->pg,
                                 "UPDATE zsaga_lease SET expires_at = now() WHERE part = $3::int "
                                 "AND holder = $1 AND epoch = $2::bigint",
                                 3, NULL, vals, NULL, NULL, 0);
    PQclear(res);
    self->epoch = 0;
}

int jpg_begin(jpg_t *self, bool write)
{
    if (self->in_txn)
        return EINVAL;
    self->xid[0] = 0;
    if (s_ensure(self))
        return EIO;
    int rc = s_exec(self, write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (rc == 0)
        self->in_txn = true;
    /* Fenced: every write transaction first makes sure the lease is still
       this zsagad's, and holds it until COMMIT. */
    if (rc == 0 && write && self->epoch && (rc = s_fence(self, false))) {
        s_exec(self, "ROLLBACK");
        self->in_txn = false;
    }
    return rc;
}

bool jpg_in_txn(const jpg_t *self)
{
    return self->in_txn;
}

/* Did COMMIT fail without the server's verdict: the connection lost (no
   SQLSTATE, class 08) or the server shutting down (57P)? Then it may have
   committed: WAL flushed, the answer lost on the way. A verdict with any
   other SQLSTATE (a serialization failure, say) is a rollback. */
static bool s_commit_unanswered(const jpg_t *self, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return PQstatus(self->pg) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
           strncmp(state, "57P", 3) == 0;
}

/* Learn whether the transaction committed, from a new session, once the
   database (or the standby promoted in its place) is back: 0 committed,
   EIO rolled back, JNL_OUTCOME_UNKNOWN when it cannot be learned within
   JNL_OUTCOME_WAIT_MS. Telling clients "not recorded" for a batch that
   did commit would break the protocol's promise; they get the truth, or
   nothing. */
static int s_commit_outcome(jpg_t *self)
{
    if (!self->xid[0]) {
        zlog_error("journal (postgresql): COMMIT went unanswered and this transaction's id is "
                   "unknown: its outcome cannot be learned");
        return JNL_OUTCOME_UNKNOWN;
    }
    zlog_warn("journal (postgresql): COMMIT of transaction %s went unanswered: asking the "
              "database whether it committed",
              self->xid);
    for (int waited = 0; waited < JNL_OUTCOME_WAIT_MS; waited += 250) {
        if (s_ensure(self) == 0) {
            const char *vals[1] = { self->xid };
            PGresult *res = PQexecParams(self->pg, "SELECT txid_status($1::bigint)", 1, NULL, vals,
                                         NULL, NULL, 0);
            const char *st = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                                     !PQgetisnull(res, 0, 0)
                                 ? PQgetvalue(res, 0, 0)
                                 : "";
            int rc = strcmp(st, "committed") == 0 ? 0 : strcmp(st, "aborted") == 0 ? EIO : -1;
            PQclear(res);
            if (rc >= 0) {
                zlog_warn("journal (postgresql): transaction %s %s", self->xid,
                          rc ? "was rolled back" : "committed; its answer was lost on the way");
                return rc;
            }
        }
        struct timespec ts = { 0, 250 * 1000000L };
        nanosleep(&ts, NULL);
    }
    zlog_error("journal (postgresql): whether transaction %s committed could not be learned in "
               "%d s",
               self->xid, JNL_OUTCOME_WAIT_MS / 1000);
    return JNL_OUTCOME_UNKNOWN;
}

int jpg_commit(jpg_t *self)
{
    int rc = s_drain(self);
    if (!self->in_txn)
        return rc ? rc : EINVAL;
    self->in_txn = false;
    if (rc) {
        if (s_usable(self))
            s_exec(self, "ROLLBACK"); /* else the session is made again, which ends it */
        jpg_release(self);
        return rc;
    }
    if (self->test_cut == 1)
        shutdown(PQsocket(self->pg), SHUT_RDWR);
    PGresult *res = PQexec(self->pg, "COMMIT");
    rc = PQresultStatus(res) != PGRES_COMMAND_OK   ? s_fail(self, "commit", res)
         : strcmp(PQcmdStatus(res), "COMMIT") != 0 ? EIO /* rolled back */
                                                   : 0;
    if (self->test_cut == 2 && rc == 0) {
        shutdown(PQsocket(self->pg), SHUT_RDWR);
        PQclear(res);
        res = PQexec(self->pg, "SELECT 1"); /* finds the connection gone, as COMMIT would */
        rc = EIO;
    }
    self->test_cut = 0;
    if (rc == EIO && s_commit_unanswered(self, res))
        rc = s_commit_outcome(self);
    PQclear(res);
    jpg_release(self);
    return rc;
}

void jpg_test_cut_commit(jpg_t *self, bool before)
{
    self->test_cut = before ? 1 : 2;
}

void jpg_rollback(jpg_t *self)
{
    s_drain(self);
    if (self->in_txn && s_usable(self))
        s_exec(self, "ROLLBACK");
    self->in_txn = false;
    jpg_release(self);
}

/* Send a prepared write in the pipeline (entered on first use). */
static int s_send(jpg_t *self, const char *name, int db, const void *k, size_t klen, const void *v,
                  size_t vlen, int n)
{
    char dbs[8];
    snprintf(dbs, sizeof dbs, "%d", db);
    const char *vals[3] = { dbs, k, v };
    int lens[3] = { 0, (int)klen, (int)vlen }, fmts[3] = { 0, 1, 1 };
    if (!self->in_txn)
        return EINVAL;
    if (!self->piping) {
        if (PQenterPipelineMode(self->pg) != 1)
            return s_fail(self, "pipeline", NULL);
        self->piping = true;
    }
    if (PQsendQueryPrepared(self->pg, name, n, vals, lens, fmts, 0) != 1)
        return s_fail(self, name, NULL);
    self->queued++;
    return 0;
}

int jpg_put(jpg_t *self, int db, const void *k, size_t klen, const void *v, size_t vlen)
{
    return s_send(self, "jput", db, k, klen, v ? v : "", vlen, 3);
}

/* The upsert of n rows, prepared once per n (outside the pipeline). */
static int s_prepare_many(jpg_t *self, int n, char *name, size_t cap)
{
    snprintf(name, cap, "jput%d", n);
    if (self->prepared[n])
        return 0;
    size_t len = 160 + (size_t)n * 24;
    char *sql = malloc(len);
    if (!sql)
        return ENOMEM;
    size_t o = (size_t)snprintf(sql, len, "INSERT INTO %s (db, k, v) VALUES ", self->table);
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(sql + o, len - o, "%s($%d, $%d, $%d)", i ? ", " : "", 3 * i + 1,
                              3 * i + 2, 3 * i + 3);
    snprintf(sql + o, len - o, " ON CONFLICT (db, k) DO UPDATE SET v = EXCLUDED.v");
    int rc = s_drain(self); /* PQprepare waits: not inside a pipeline */
    if (!rc) {
        PGresult *res = PQprepare(self->pg, name, sql, 0, NULL);
        rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : s_fail(self, "prepare", res);
        PQclear(res);
    }
    free(sql);
    if (!rc)
        self->prepared[n] = true;
    return rc;
}

int jpg_put_many(jpg_t *self, const jpg_row_t *rows, int n)
{
    char name[16], dbs[JPG_MANY][8];
    const char *vals[3 * JPG_MANY];
    int lens[3 * JPG_MANY], fmts[3 * JPG_MANY], rc;
    if (n < 1 || n > JPG_MANY || !self->in_txn)
        return EINVAL;
    if (n == 1)
        return jpg_put(self, rows[0].db, rows[0].k, rows[0].klen, rows[0].v, rows[0].vlen);
    if ((rc = s_prepare_many(self, n, name, sizeof name)))
        return rc;
    for (int i = 0; i < n; i++) {
        snprintf(dbs[i], sizeof dbs[i], "%d", rows[i].db);
        vals[3 * i] = dbs[i];
        vals[3 * i + 1] = rows[i].k;
        vals[3 * i + 2] = rows[i].v ? rows[i].v : "";
        lens[3 * i] = 0;
        lens[3 * i + 1] = (int)rows[i].klen;
        lens[3 * i + 2] = (int)rows[i].vlen;
        fmts[3 * i] = 0;
        fmts[3 * i + 1] = fmts[3 * i + 2] = 1;
    }
    if (!self->piping) {
        if (PQenterPipelineMode(self->pg) != 1)
            return s_fail(self, "pipeline", NULL);
        self->piping = true;
    }
    if (PQsendQueryPrepared(self->pg, name, 3 * n, vals, lens, fmts, 0) != 1)
        return s_fail(self, name, NULL);
    self->queued++;
    return 0;
}

int jpg_del(jpg_t *self, int db, const void *k, size_t klen)
{
    return s_send(self, "jdel", db, k, klen, NULL, 0, 2);
}

/* A read: what is queued goes first, so a read sees the writes before it. */
static PGresult *s_query(jpg_t *self, const char *sql, int n, const char *const *vals,
                         const int *lens, const int *fmts, int *rc)
{
    if ((*rc = s_drain(self)))
        return NULL;
    if (!self->in_txn && (*rc = s_ensure(self)))
        return NULL;
    PGresult *res = PQexecParams(self->pg, sql, n, NULL, vals, lens, fmts, 1);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        *rc = s_fail(self, "read", res);
        PQclear(res);
        return NULL;
    }
    /* Outside a transaction each read is its own: drop what earlier ones
       left once there are many, callers have long copied them. */
    if (!self->in_txn && self->nheld > 1024)
        jpg_release(self);
    return res;
}

int jpg_get(jpg_t *self, int db, const void *k, size_t klen, const void **v, size_t *vlen)
{
    char dbs[8];
    snprintf(dbs, sizeof dbs, "%d", db);
    const char *vals[2] = { dbs, k };
    int lens[2] = { 0, (int)klen }, fmts[2] = { 0, 1 }, rc;
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT v FROM %s WHERE db = $1 AND k = $2", self->table);
    PGresult *res = s_query(self, sql, 2, vals, lens, fmts, &rc);
    if (!res)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return MDB_NOTFOUND; /* the journal's "absent", as LMDB says it */
    }
    *v = PQgetvalue(res, 0, 0);
    *vlen = (size_t)PQgetlength(res, 0, 0);
    return s_hold(self, res);
}

int jpg_scan(jpg_t *self, int db, const void *from, size_t flen, bool incl, const void *bound,
             size_t blen, bool reverse, jpg_scan_fn *fn, void *arg)
{
    char sql[256], dbs[8];
    uint8_t last[4096];
    size_t lastlen = 0;
    bool have_from = from != NULL;
    if (from && flen > sizeof last)
        return EINVAL;
    if (from) {
        memcpy(last, from, flen);
        lastlen = flen;
    }
    snprintf(dbs, sizeof dbs, "%d", db);
    for (;;) {
        const char *vals[3] = { dbs, NULL, NULL };
        int lens[3] = { 0, 0, 0 }, fmts[3] = { 0, 1, 1 }, n = 1, rc;
        size_t o =
            (size_t)snprintf(sql, sizeof sql, "SELECT k, v FROM %s WHERE db = $1", self->table);
        if (have_from) {
            vals[n] = (const char *)last;
            lens[n++] = (int)lastlen;
            o += (size_t)snprintf(sql + o, sizeof sql - o, " AND k %s $2",
                                  reverse ? (incl ? "<=" : "<") : (incl ? ">=" : ">"));
        }
        if (bound) {
            vals[n] = bound;
            lens[n] = (int)blen;
            n++;
            o +=
                (size_t)snprintf(sql + o, sizeof sql - o, " AND k %s $%d", reverse ? ">=" : "<", n);
        }
        snprintf(sql + o, sizeof sql - o, " ORDER BY k%s LIMIT %d", reverse ? " DESC" : "",
                 PAGE_ROWS);
        PGresult *res = s_query(self, sql, n, vals, lens, fmts, &rc);
        if (!res)
            return rc;
        int rows = PQntuples(res);
        if ((rc = s_hold(self, res)))
            return rc;
        for (int r = 0; r < rows; r++) {
            int out = fn(arg, PQgetvalue(res, r, 0), (size_t)PQgetlength(res, r, 0),
                         PQgetvalue(res, r, 1), (size_t)PQgetlength(res, r, 1));
            if (out)
                return out;
        }
        if (rows < PAGE_ROWS)
            return 0;
        lastlen = (size_t)PQgetlength(res, rows - 1, 0);
        if (lastlen > sizeof last)
            return EINVAL;
        memcpy(last, PQgetvalue(res, rows - 1, 0), lastlen);
        have_from = true;
        incl = false;
    }
}

int jpg_del_range(jpg_t *self, int db, const void *lo, size_t lolen, const void *hi, size_t hilen,
                  size_t *n)
{
    char dbs[8];
    snprintf(dbs, sizeof dbs, "%d", db);
    const char *vals[3] = { dbs, lo, hi };
    int lens[3] = { 0, (int)lolen, (int)hilen }, fmts[3] = { 0, 1, 1 }, rc;
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE db = $1 AND k >= $2%s", self->table,
             hi ? " AND k < $3" : "");
    PGresult *res = s_query(self, sql, hi ? 3 : 2, vals, lens, fmts, &rc);
    if (!res)
        return rc;
    const char *t = PQcmdTuples(res);
    *n = t && *t ? (size_t)strtoull(t, NULL, 10) : 0;
    PQclear(res);
    return 0;
}

/* One number from a query of one row, one column cast to text (0 on
   error: it is logged). */
static size_t s_number(jpg_t *self, const char *sql, const char *param)
{
    int lens[1] = { 0 }, fmts[1] = { 0 }, rc;
    PGresult *res = s_query(self, sql, param ? 1 : 0, &param, lens, fmts, &rc);
    if (!res)
        return 0;
    size_t n = PQntuples(res) == 1 ? (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return n;
}

size_t jpg_count(jpg_t *self, int db)
{
    char dbs[8];
    snprintf(dbs, sizeof dbs, "%d", db);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*)::text FROM %s WHERE db = $1", self->table);
    return s_number(self, sql, dbs);
}

size_t jpg_used(jpg_t *self)
{
    return s_number(self, "SELECT pg_total_relation_size($1)::text", self->table);
}
