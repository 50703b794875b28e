/*  orc_server: zsagad's loop. See orc_server.h.

    DESIGN: one thread applies batches; a committer thread makes them
    durable, one batch behind (pipelined group commit).
      1. poll the client and worker sockets (and the backup pipe, and the
         committer's "done") until something arrives or a timer is due;
      2. read up to max_batch waiting messages and hand each to the engine;
         answers are only noted, never sent yet;
      3. let the engine fire timers and give ready steps to workers;
      4. if the batch in flight has ended, it lands, and this batch is
         handed to the committer at once (one LMDB transaction: group
         commit); if not, this loop goes on collecting into this batch
         (until max_batch messages, then it waits);
      5. only once a batch has landed is what follows from it sent:
         dispatches to workers, events, client replies; this happens
         while the next batch commits.
    A failed commit fails the batch collected meanwhile too: both are
    refused and reloaded (orc_engine.h). Status and list are answered
    after their batch lands, from a read transaction, so a client never
    sees state that is not durable. With --sync none there is no committer
    thread: each batch commits in the loop, between steps 3 and 5.
*/
#include "orc_server.h"
#include "common/zkeys.h"
#include "common/zlog.h"
#include "orc_alerts.h"
#include "orc_archiver.h"
#include "orc_auth.h"
#include "orc_engine.h"
#include "orc_http.h"
#include "orc_metrics.h"
#include "orc_store.h"

#include <czmq.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <sodium.h>
#include <systemd/sd-daemon.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define RID_MAX 256
/* Routing ids zsagad keeps for workers, in hex. ZeroMQ assigns 5 bytes. */
#define WORKER_RID_MAX (MSG_ID_MAX / 2)

/* A client's return address: routing id, and whether it used a REQ
   socket (which puts an empty delimiter frame before the body). */
typedef struct {
    uint8_t rid[RID_MAX];
    size_t rid_len;
    bool delim;
    int frames;        /* after the routing id; a request has one (two with REQ's delimiter) */
    zhttp_req_t *http; /* a request that came over HTTP (/api) instead */
} s_envelope_t;

/* One answer owed to a client, sent after the batch commits. */
typedef struct {
    s_envelope_t env;
    msg_type_t req_type;
    uint64_t req;
    char id[MSG_ID_MAX + 1];
    const char *code; /* NULL: success */
    char err[MSG_TEXT_MAX + 1];
    uint8_t state;
    bool duplicate;
    int filter; /* list: state to list, 0 for all */
    uint32_t limit;
    uint64_t since_ms, until_ms;
    bool has_cursor;
    orc_store_cursor_t cursor;
    uint64_t after; /* events: sequence number to read after */
    const orc_principal_t *who;
} s_pending_t;

typedef struct {
    pthread_t thread;
    bool running;
    jnl_t *jnl;
    char path[MSG_TEXT_MAX + 1];
    int rc;
    char err[512];
    void *pipe; /* thread's end of the PAIR */
    s_envelope_t env;
    uint64_t req;
} s_backup_t;

typedef struct {
    const orc_server_config_t *cfg;
    void *ctx, *clients, *workers, *events, *pipe;
    jnl_t *jnl;
    orc_engine_t *engine;
    msgpack_sbuffer out;
    s_pending_t *pend; /* requests of the batch being collected */
    size_t npend, cappend;
    s_pending_t *fpend; /* of the batch in flight */
    size_t nfpend, capfpend;
    s_pending_t *lpend; /* of the batch that landed: answered now */
    size_t nlpend, caplpend;
    char (*hb)[MSG_ID_MAX + 1]; /* workers owed a heartbeat reply */
    bool *hb_known;
    size_t nhb, caphb;
    s_backup_t backup;
    uint64_t started_ms;
    uint64_t bad_worker_msgs;
    orc_auth_t *auth;
    zcert_t *cert;
    uint64_t forbidden, multipart, next_refresh_ms;
    orc_archiver_t *archiver;
    orc_metrics_t *metrics; /* NULL with --metrics off */
    orc_http_t *http;
    uint64_t subscribers, events_sent;
    orc_alerts_t *alerts;
    uint64_t next_alert_ms;
    bool http_answered;    /* an /api answer is waiting in MHD to be sent */
    uint64_t next_http_ms; /* MHD's connection timeouts want a run now and then */
    /* Partitions: the one served, of how many; where the others are
       served, as last read from their leases (a second at most). */
    uint32_t part, nparts;
    struct {
        char clients[256];
        uint64_t read_ms;
    } * leaders;
} s_server_t;

static uint64_t s_now(void)
{
    return (uint64_t)zclock_time();
}

/* Intervals (timers, heartbeats, refresh periods): never the wall clock,
   which an operator or NTP may step either way. */
static uint64_t s_mono(void)
{
    return (uint64_t)zclock_mono();
}

/* ---- sending ---------------------------------------------------------- */

static void s_send_envelope(void *sock, const uint8_t *rid, size_t rid_len, bool delim,
                            const msgpack_sbuffer *body)
{
    /* DONTWAIT: a slow or gone peer must never stall the loop. What is
       dropped is recovered by timeouts and retries, never lost. */
    if (zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    if (delim)
        zmq_send(sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(sock, body->data, body->size, ZMQ_DONTWAIT);
}

static void s_pack_msg(s_server_t *s, const msg_t *m)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&s->out);
    msgpack_packer_init(&pk, &s->out, msgpack_sbuffer_write);
    msg_pack(m, &pk);
}

static s_pending_t *s_pend(s_server_t *s, const s_envelope_t *env, const msg_t *m)
{
    if (s->npend == s->cappend) {
        size_t cap = s->cappend ? s->cappend * 2 : 64;
        s_pending_t *p = realloc(s->pend, cap * sizeof *p);
        if (!p)
            return NULL;
        s->pend = p;
        s->cappend = cap;
    }
    s_pending_t *p = &s->pend[s->npend++];
    memset(p, 0, sizeof *p);
    p->env = *env;
    p->req_type = m->type;
    p->req = m->req;
    snprintf(p->id, sizeof p->id, "%s", m->id);
    return p;
}

/* Workers are known by the hex of the routing id ZeroMQ gave their
   connection; these convert both ways. */
/* By table, not printf/scanf: these run for every worker message and
   every dispatch. */
static bool s_rid_hex(const s_envelope_t *env, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    if (env->rid_len == 0 || env->rid_len > WORKER_RID_MAX)
        return false;
    for (size_t i = 0; i < env->rid_len; i++) {
        hex[2 * i] = digits[env->rid[i] >> 4];
        hex[2 * i + 1] = digits[env->rid[i] & 15];
    }
    hex[2 * env->rid_len] = 0;
    return true;
}

static size_t s_rid_bytes(const char *hex, uint8_t *out)
{
    size_t n = 0;
    /* Only our own s_rid_hex output comes here: lower-case pairs. */
    for (; hex[2 * n] && hex[2 * n + 1] && n < WORKER_RID_MAX; n++) {
        unsigned hi = (unsigned)hex[2 * n], lo = (unsigned)hex[2 * n + 1];
        hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
        lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
        out[n] = (uint8_t)(hi << 4 | lo);
    }
    return n;
}

/* An answer to a client, over whichever road its request came. */
static void s_send_client(s_server_t *s, const s_envelope_t *env, const msgpack_sbuffer *body)
{
    if (env->http) {
        orc_http_answer(env->http, body->data, body->size);
        s->http_answered = true;
    } else
        s_send_envelope(s->clients, env->rid, env->rid_len, env->delim, body);
}

static void s_send_worker(s_server_t *s, const char *rid, const msgpack_sbuffer *body)
{
    uint8_t raw[WORKER_RID_MAX];
    size_t n = s_rid_bytes(rid, raw);
    s_send_envelope(s->workers, raw, n, false, body);
}

/* ---- status, list and stats replies (after commit) ---------------------- */

static void s_pack_summary(msgpack_packer *pk, const orc_saga_t *saga)
{
    msgpack_pack_map(pk, 7);
    mp_pack_kv_str(pk, "id", saga->def->id);
    mp_pack_kv_str(pk, "name", saga->def->name);
    mp_pack_kv_str(pk, "state", orc_saga_state_name(saga->state));
    mp_pack_kv_opt(pk, "reason", saga->reason);
    mp_pack_kv_uint(pk, "steps", saga->def->nsteps);
    mp_pack_kv_uint(pk, "created_ms", saga->created_ms);
    mp_pack_kv_uint(pk, "updated_ms", saga->updated_ms);
}

typedef struct {
    orc_store_cursor_t *at;
    uint32_t n, max;
} s_list_t;

static int s_list_cb(void *arg, uint64_t created_ms, const char *id)
{
    s_list_t *l = arg;
    if (l->n >= l->max)
        return 1;
    l->at[l->n].created_ms = created_ms;
    snprintf(l->at[l->n].id, sizeof l->at[l->n].id, "%s", id);
    l->n++;
    return 0;
}

/* A list page: up to limit summaries, newest first, and the cursor of the
   next page (nil at the end). One more than the page is looked up to know
   whether there is a next one. */
static void s_pack_list(s_server_t *s, msgpack_packer *pk, const s_pending_t *p)
{
    uint32_t limit = p->limit ? p->limit : 100;
    s_list_t l = { calloc(limit + 1, sizeof *l.at), 0, limit + 1 };
    int rc = l.at ? jnl_read_begin(s->jnl) : ENOMEM;
    if (!rc)
        rc = orc_store_list(s->jnl, p->filter, p->has_cursor ? &p->cursor : NULL, p->since_ms,
                            p->until_ms ? p->until_ms : UINT64_MAX, s_list_cb, &l);
    if (rc)
        l.n = 0; /* a read error: an empty list, never a short one */
    bool more = l.n > limit;
    uint32_t n = more ? limit : l.n;
    msgpack_sbuffer_clear(&s->out);
    msg_pack_header(pk, MSG_SAGAS, 5);
    mp_pack_kv_uint(pk, "req", p->req);
    mp_pack_cstr(pk, "sagas");
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        char err[256];
        orc_saga_t *saga = orc_store_load(s->jnl, l.at[i].id, &rc, err, sizeof err);
        if (!saga) {
            msgpack_pack_nil(pk); /* keeps the count the header promised */
            continue;
        }
        s_pack_summary(pk, saga);
        orc_saga_destroy(&saga);
    }
    mp_pack_cstr(pk, "next");
    if (more) {
        char cur[MSG_ID_MAX + 24];
        snprintf(cur, sizeof cur, "%llu:%s", (unsigned long long)l.at[n - 1].created_ms,
                 l.at[n - 1].id);
        mp_pack_cstr(pk, cur);
    } else
        msgpack_pack_nil(pk);
    jnl_read_end(s->jnl);
    free(l.at);
}

static void s_pack_stats(s_server_t *s, msgpack_packer *pk)
{
    const orc_stats_t *st = orc_engine_stats(s->engine);
    size_t used, map;
    jnl_usage(s->jnl, &used, &map);
    const orc_auth_stats_t *as = orc_auth_stats(s->auth);
    const orc_archiver_stats_t *ar = s->archiver ? orc_archiver_stats(s->archiver) : NULL;
    msgpack_pack_map(pk, 39);
    mp_pack_kv_uint(pk, "boot", orc_engine_boot(s->engine));
    mp_pack_kv_str(pk, "security", orc_auth_insecure(s->auth) ? "insecure" : "curve");
    mp_pack_kv_uint(pk, "uptime_ms", s_mono() - s->started_ms);
    mp_pack_kv_uint(pk, "commits", st->commits);
    mp_pack_kv_uint(pk, "commit_failures", st->commit_failures);
    mp_pack_kv_uint(pk, "records_written", st->batch_items);
    mp_pack_kv_uint(pk, "dispatched", st->dispatched);
    mp_pack_kv_uint(pk, "results", st->results);
    mp_pack_kv_uint(pk, "stale_results", st->stale_results);
    mp_pack_kv_uint(pk, "fenced_results", st->fenced_results);
    mp_pack_kv_uint(pk, "forged_results", st->forged_results);
    mp_pack_kv_uint(pk, "ready_refused", st->ready_refused);
    mp_pack_kv_uint(pk, "forbidden_requests", s->forbidden);
    mp_pack_kv_uint(pk, "multipart_refused", s->multipart);
    mp_pack_kv_uint(pk, "handshakes_allowed", as->allowed);
    mp_pack_kv_uint(pk, "handshakes_denied", as->denied);
    mp_pack_kv_uint(pk, "keys_banned", as->banned);
    mp_pack_kv_uint(pk, "keys_revoked", as->revoked);
    mp_pack_kv_uint(pk, "timeouts", st->timeouts);
    mp_pack_kv_uint(pk, "workers_lost", st->workers_lost);
    mp_pack_kv_uint(pk, "sagas_started", st->sagas_started);
    mp_pack_kv_uint(pk, "sagas_completed", st->sagas_completed);
    mp_pack_kv_uint(pk, "sagas_compensated", st->sagas_compensated);
    mp_pack_kv_uint(pk, "sagas_parked", st->sagas_parked);
    mp_pack_kv_uint(pk, "sagas_active", orc_engine_active(s->engine));
    mp_pack_kv_uint(pk, "workers", orc_registry_worker_count(orc_engine_registry(s->engine)));
    mp_pack_kv_uint(pk, "journal_used_bytes", used);
    mp_pack_kv_uint(pk, "journal_map_bytes", map);
    mp_pack_kv_uint(pk, "sagas_ended_kept", jnl_count(s->jnl, JNL_ENDED));
    mp_pack_kv_uint(pk, "sagas_removed", st->sagas_removed);
    mp_pack_kv_uint(pk, "records_removed", st->records_removed);
    mp_pack_kv_uint(pk, "tombstones", jnl_count(s->jnl, JNL_TOMBS));
    mp_pack_kv_uint(pk, "tombstones_expired", st->tombs_expired);
    mp_pack_kv_uint(pk, "pressure_sweeps", st->pressure_sweeps);
    mp_pack_kv_uint(pk, "archive_files", ar ? ar->files : 0);
    mp_pack_kv_uint(pk, "sagas_archived", ar ? ar->sagas : 0);
    mp_pack_kv_uint(pk, "archive_failures", ar ? ar->failures : 0);
    mp_pack_kv_uint(pk, "bad_worker_messages", s->bad_worker_msgs);
    /* Each worker's own counters (pool, steps), from its last heartbeat. */
    orc_registry_t *reg = orc_engine_registry(s->engine);
    mp_pack_cstr(pk, "worker_metrics");
    msgpack_pack_array(pk, orc_registry_worker_count(reg));
    for (orc_system_t *sys = orc_registry_systems(reg); sys; sys = sys->next)
        for (orc_worker_t *w = sys->workers; w; w = w->next) {
            msgpack_pack_map(pk, 7);
            mp_pack_kv_str(pk, "instance", w->instance);
            mp_pack_kv_str(pk, "key", w->key_name);
            mp_pack_kv_str(pk, "system", w->system);
            mp_pack_kv_uint(pk, "capacity", w->capacity);
            mp_pack_kv_uint(pk, "inflight", w->inflight);
            mp_pack_kv_uint(pk, "metrics_age_ms", w->metrics_len ? s_mono() - w->metrics_ms : 0);
            mp_pack_cstr(pk, "metrics");
            if (w->metrics_len)
                mp_pack_raw(pk, w->metrics, w->metrics_len);
            else
                msgpack_pack_map(pk, 0);
        }
}

/* ---- /metrics ------------------------------------------------------------ */

/* A figure from a worker's last heartbeat (its metrics map), or -1. */
static int64_t s_worker_figure(const orc_worker_t *w, const char *key)
{
    mp_reader_t r;
    uint32_t n;
    char k[64];
    mp_reader_init(&r, w->metrics, w->metrics_len);
    if (!w->metrics_len || mp_read_map(&r, &n))
        return -1;
    for (uint32_t i = 0; i < n && !r.err; i++) {
        uint64_t v;
        if (mp_read_cstr(&r, k, sizeof k))
            return -1;
        if (strcmp(k, key) == 0)
            return mp_read_uint(&r, &v) ? -1 : (int64_t)v;
        mp_skip(&r, 1);
    }
    return -1;
}

/* Each worker's pool and step figures, as its heartbeat last told them. */
static const char *const s_worker_figures[][3] = {
    { "pool_total", "pool_open", "connections open" },
    { "pool_max", "pool_max", "connections allowed at most" },
    { "pool_active", "pool_active", "connections in use" },
    { "pool_idle", "pool_idle", "connections idle" },
    { "pool_waiting", "pool_waiting", "executors waiting for a connection" },
    { "acquire_timeouts", "acquire_timeouts", "connection acquisitions that timed out" },
    { "slow_queries", "slow_queries", "queries over the slow-query threshold" },
    { "db_errors", "db_errors", "database errors" },
    { "connects", "connects", "connections opened" },
    { "connect_failures", "connect_failures", "connections that failed to open" },
    { "dropped", "dropped", "connections closed as broken" },
    { "steps_ok", "steps_ok", "steps that succeeded" },
    { "steps_failed", "steps_failed", "steps that failed for good" },
    { "steps_retry", "steps_retry", "steps answered retry-later" },
    { "duplicates", "duplicates", "steps already applied (answered from the ledger)" },
    { "db_replays", "db_replays", "transactions replayed after a serialization failure" },
};

static int s_count_cb(void *arg, const char *id)
{
    (void)id;
    return ++*(size_t *)arg >= 1000000; /* a bound on the scan, far past any alert */
}

/* Sagas in a state, from the journal's index (parked ones are not in memory). */
static size_t s_count_state(s_server_t *s, uint8_t state)
{
    size_t n = 0;
    if (jnl_read_begin(s->jnl) == 0) {
        orc_store_each_in_state(s->jnl, state, s_count_cb, &n);
        jnl_read_end(s->jnl);
    }
    return n;
}

static void s_metrics(void *arg, zmx_t *b)
{
    s_server_t *s = arg;
    const orc_stats_t *st = orc_engine_stats(s->engine);
    const orc_auth_stats_t *as = orc_auth_stats(s->auth);
    orc_registry_t *reg = orc_engine_registry(s->engine);
    size_t used, map;
    jnl_usage(s->jnl, &used, &map);
    char num[32];

    zmx_family(b, "zsaga_up", "gauge", "1 while zsagad runs; boot is its boot number");
    snprintf(num, sizeof num, "%llu", (unsigned long long)orc_engine_boot(s->engine));
    zmx_sample(b, "zsaga_up", (const char *[]){ "boot", num, "version", ZSAGA_VERSION, NULL }, 1);
    zmx_family(b, "zsaga_uptime_seconds", "gauge", "seconds since zsagad started");
    zmx_sample(b, "zsaga_uptime_seconds", NULL, (double)(s_mono() - s->started_ms) / 1000);
    zmx_family(b, "zsaga_sagas_active", "gauge", "sagas running or compensating");
    zmx_sample(b, "zsaga_sagas_active", NULL, (double)orc_engine_active(s->engine));
    zmx_family(b, "zsaga_sagas_parked", "gauge", "sagas parked, waiting for an operator");
    zmx_sample(b, "zsaga_sagas_parked", NULL, (double)s_count_state(s, SAGA_PARKED));

    if (s->metrics) {
        orc_defm_t *d;
        size_t nd = orc_metrics_defs(s->metrics, &d);
        static const char *const states[OM_NSAGA] = { "started", "completed", "compensated",
                                                      "parked", "resolved" };
        zmx_family(b, "zsaga_sagas_total", "counter",
                   "sagas by definition name and what happened to them");
        for (size_t i = 0; i < nd; i++)
            for (int k = 0; k < OM_NSAGA; k++)
                zmx_sample(b, "zsaga_sagas_total",
                           (const char *[]){ "name", d[i].name, "state", states[k], NULL },
                           (double)d[i].n[k]);
        zmx_family(b, "zsaga_saga_duration_seconds", "histogram",
                   "submit to end, by how the saga ended");
        zmx_hist(b, "zsaga_saga_duration_seconds", (const char *[]){ "state", "completed", NULL },
                 orc_metrics_saga_duration(s->metrics, 1), 1e6);
        zmx_hist(b, "zsaga_saga_duration_seconds", (const char *[]){ "state", "compensated", NULL },
                 orc_metrics_saga_duration(s->metrics, 0), 1e6);

        orc_opm_t *o;
        size_t no = orc_metrics_ops(s->metrics, &o);
        static const char *const outcomes[OM_NOUTCOMES] = { "dispatched", "succeeded", "failed",
                                                            "retried",    "timed_out", "parked" };
        zmx_family(b, "zsaga_steps_total", "counter",
                   "step dispatches and outcomes by system, operation and phase");
        for (size_t i = 0; i < no; i++)
            for (int k = 0; k < OM_NOUTCOMES; k++) {
                if (k != OM_PARKED)
                    zmx_sample(b, "zsaga_steps_total",
                               (const char *[]){ "system", o[i].system, "operation", o[i].op,
                                                 "phase", "action", "outcome", outcomes[k], NULL },
                               (double)o[i].action[k]);
                zmx_sample(b, "zsaga_steps_total",
                           (const char *[]){ "system", o[i].system, "operation", o[i].op, "phase",
                                             "compensation", "outcome", outcomes[k], NULL },
                           (double)o[i].comp[k]);
            }
        zmx_family(b, "zsaga_step_latency_seconds", "histogram",
                   "dispatch to result, by system, operation and phase");
        for (size_t i = 0; i < no; i++) {
            zmx_hist(b, "zsaga_step_latency_seconds",
                     (const char *[]){ "system", o[i].system, "operation", o[i].op, "phase",
                                       "action", NULL },
                     &o[i].action_lat, 1e6);
            zmx_hist(b, "zsaga_step_latency_seconds",
                     (const char *[]){ "system", o[i].system, "operation", o[i].op, "phase",
                                       "compensation", NULL },
                     &o[i].comp_lat, 1e6);
        }
        zmx_family(b, "zsaga_commit_duration_seconds", "histogram",
                   "one group commit: the journal writes and the fsync");
        zmx_hist(b, "zsaga_commit_duration_seconds", NULL, orc_metrics_commit_hist(s->metrics, 0),
                 1e6);
        zmx_family(b, "zsaga_commit_batch_records", "histogram", "records one group commit wrote");
        zmx_hist(b, "zsaga_commit_batch_records", NULL, orc_metrics_commit_hist(s->metrics, 1), 1);
        orc_labelled_t *l;
        size_t nl = orc_metrics_refusals(s->metrics, &l);
        zmx_family(b, "zsaga_submits_refused_total", "counter", "submits refused, by code");
        for (size_t i = 0; i < nl; i++)
            zmx_sample(b, "zsaga_submits_refused_total",
                       (const char *[]){ "code", l[i].label, NULL }, (double)l[i].n);
        nl = orc_metrics_lost(s->metrics, &l);
        zmx_family(b, "zsaga_workers_lost_total", "counter",
                   "workers declared dead (silent past the heartbeat timeout), by system");
        for (size_t i = 0; i < nl; i++)
            zmx_sample(b, "zsaga_workers_lost_total",
                       (const char *[]){ "system", l[i].label, NULL }, (double)l[i].n);
    }

    zmx_family(b, "zsaga_commits_total", "counter", "group commits");
    zmx_sample(b, "zsaga_commits_total", NULL, (double)st->commits);
    zmx_family(b, "zsaga_commit_failures_total", "counter", "group commits rolled back");
    zmx_sample(b, "zsaga_commit_failures_total", NULL, (double)st->commit_failures);
    zmx_family(b, "zsaga_results_dropped_total", "counter",
               "worker results not counted: stale (late), fenced (an older lease), forged (the "
               "latest lease from another worker)");
    zmx_sample(b, "zsaga_results_dropped_total", (const char *[]){ "reason", "stale", NULL },
               (double)st->stale_results);
    zmx_sample(b, "zsaga_results_dropped_total", (const char *[]){ "reason", "fenced", NULL },
               (double)st->fenced_results);
    zmx_sample(b, "zsaga_results_dropped_total", (const char *[]){ "reason", "forged", NULL },
               (double)st->forged_results);
    zmx_family(b, "zsaga_requests_refused_total", "counter",
               "requests refused before they reached the engine, by reason");
    zmx_sample(b, "zsaga_requests_refused_total", (const char *[]){ "reason", "forbidden", NULL },
               (double)s->forbidden);
    zmx_sample(b, "zsaga_requests_refused_total", (const char *[]){ "reason", "multipart", NULL },
               (double)s->multipart);
    zmx_sample(b, "zsaga_requests_refused_total",
               (const char *[]){ "reason", "bad_worker_message", NULL },
               (double)s->bad_worker_msgs);
    zmx_sample(b, "zsaga_requests_refused_total",
               (const char *[]){ "reason", "worker_ready", NULL }, (double)st->ready_refused);
    zmx_family(b, "zsaga_handshakes_total", "counter", "CURVE handshakes, by outcome");
    zmx_sample(b, "zsaga_handshakes_total", (const char *[]){ "outcome", "allowed", NULL },
               (double)as->allowed);
    zmx_sample(b, "zsaga_handshakes_total", (const char *[]){ "outcome", "denied", NULL },
               (double)as->denied);
    zmx_family(b, "zsaga_keys_cut_off_total", "counter", "keys banned or revoked while connected");
    zmx_sample(b, "zsaga_keys_cut_off_total", (const char *[]){ "why", "banned", NULL },
               (double)as->banned);
    zmx_sample(b, "zsaga_keys_cut_off_total", (const char *[]){ "why", "revoked", NULL },
               (double)as->revoked);
    zmx_family(b, "zsaga_journal_used_bytes", "gauge", "journal bytes in use");
    zmx_sample(b, "zsaga_journal_used_bytes", NULL, (double)used);
    zmx_family(b, "zsaga_journal_map_bytes", "gauge", "journal map size (its limit)");
    zmx_sample(b, "zsaga_journal_map_bytes", NULL, (double)map);
    zmx_family(b, "zsaga_journal_records", "gauge", "records in the journal, by kind");
    static const struct {
        const char *name;
        jnl_db_t db;
    } dbs[] = { { "sagas", JNL_SAGAS },
                { "steps", JNL_STEPS },
                { "history", JNL_HISTORY },
                { "ended", JNL_ENDED },
                { "tombstones", JNL_TOMBS } };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++)
        zmx_sample(b, "zsaga_journal_records", (const char *[]){ "kind", dbs[i].name, NULL },
                   (double)jnl_count(s->jnl, dbs[i].db));
    zmx_family(b, "zsaga_retention_removed_total", "counter",
               "ended sagas removed by retention; pressure: sweeps when nearly full");
    zmx_sample(b, "zsaga_retention_removed_total", (const char *[]){ "what", "sagas", NULL },
               (double)st->sagas_removed);
    zmx_sample(b, "zsaga_retention_removed_total", (const char *[]){ "what", "pressure", NULL },
               (double)st->pressure_sweeps);
    zmx_family(b, "zsaga_event_subscribers", "gauge", "subscriptions on the event socket");
    zmx_sample(b, "zsaga_event_subscribers", NULL, (double)s->subscribers);
    zmx_family(b, "zsaga_events_published_total", "counter",
               "events published on the event socket (a subscriber that falls 100,000 behind "
               "loses some; it sees the gap in seq and reads them with the events request)");
    zmx_sample(b, "zsaga_events_published_total", NULL, (double)s->events_sent);

    orc_alerts_metrics(s->alerts, b);
    zmx_family(b, "zsaga_workers", "gauge", "registered workers by system");
    for (orc_system_t *sys = orc_registry_systems(reg); sys; sys = sys->next) {
        uint32_t n = 0;
        for (orc_worker_t *w = sys->workers; w; w = w->next)
            n++;
        zmx_sample(b, "zsaga_workers", (const char *[]){ "system", sys->name, NULL }, n);
    }
    /* Per worker, labelled worker= (not instance=, Prometheus's own label
       for the scraped target), and named zsaga_hb_ apart from the
       worker's own endpoint's zsaga_worker_ figures. */
    zmx_family(b, "zsaga_hb_inflight", "gauge", "steps zsagad has given a worker, unanswered");
    for (orc_system_t *sys = orc_registry_systems(reg); sys; sys = sys->next)
        for (orc_worker_t *w = sys->workers; w; w = w->next)
            zmx_sample(b, "zsaga_hb_inflight",
                       (const char *[]){ "system", w->system, "worker", w->instance, NULL },
                       w->inflight);
    for (size_t k = 0; k < sizeof s_worker_figures / sizeof s_worker_figures[0]; k++) {
        char name[64], help[160];
        snprintf(name, sizeof name, "zsaga_hb_%s", s_worker_figures[k][1]);
        snprintf(help, sizeof help, "%s (from the worker's last heartbeat)",
                 s_worker_figures[k][2]);
        zmx_family(b, name, "gauge", help);
        for (orc_system_t *sys = orc_registry_systems(reg); sys; sys = sys->next)
            for (orc_worker_t *w = sys->workers; w; w = w->next) {
                int64_t v = s_worker_figure(w, s_worker_figures[k][0]);
                if (v >= 0)
                    zmx_sample(b, name,
                               (const char *[]){ "system", w->system, "worker", w->instance, NULL },
                               (double)v);
            }
    }
}

/* The catalogue: each system, its live workers, each operation's schema. */
static void s_pack_systems(s_server_t *s, msgpack_packer *pk)
{
    orc_registry_t *reg = orc_engine_registry(s->engine);
    msgpack_pack_array(pk, orc_registry_system_count(reg));
    for (orc_system_t *sys = orc_registry_systems(reg); sys; sys = sys->next) {
        uint32_t nw = 0;
        for (orc_worker_t *w = sys->workers; w; w = w->next)
            nw++;
        msgpack_pack_map(pk, 3);
        mp_pack_kv_str(pk, "name", sys->name);
        mp_pack_cstr(pk, "workers");
        msgpack_pack_array(pk, nw);
        for (orc_worker_t *w = sys->workers; w; w = w->next) {
            msgpack_pack_map(pk, 4);
            mp_pack_kv_str(pk, "instance", w->instance);
            mp_pack_kv_str(pk, "key", w->key_name);
            mp_pack_kv_uint(pk, "capacity", w->capacity);
            mp_pack_kv_uint(pk, "inflight", w->inflight);
        }
        mp_pack_cstr(pk, "operations");
        msgpack_pack_array(pk, sys->nops);
        for (uint32_t i = 0; i < sys->nops; i++) {
            const orc_opschema_t *sc = sys->schema[i];
            msgpack_pack_map(pk, 3);
            mp_pack_kv_str(pk, "name", sys->ops[i]);
            mp_pack_cstr(pk, "params");
            if (sc)
                mp_pack_cstr(pk, sc->params_text);
            else
                msgpack_pack_nil(pk);
            mp_pack_cstr(pk, "outputs");
            if (sc)
                mp_pack_cstr(pk, sc->outputs_text);
            else
                msgpack_pack_nil(pk);
        }
    }
}

static void s_reply_error(s_server_t *s, const s_pending_t *p, msg_type_t type, const char *code,
                          const char *text);

/* An event as subscribers get it, live or from the journal. */
static void s_event_msg(const orc_event_t *ev, msg_t *m)
{
    const char *dot = strchr(ev->what, '.');
    msg_init(m, MSG_EVENT);
    m->seq = ev->seq;
    m->ts_ms = ev->ts_ms;
    strcpy(m->id, ev->id);
    strcpy(m->step, ev->step_id);
    msg_copy(m->state, sizeof m->state, dot ? dot + 1 : ev->what);
    m->attempt = ev->attempt;
    msg_copy(m->text, sizeof m->text, ev->reason ? ev->reason : "");
}

typedef struct {
    msgpack_packer pk;
    msgpack_sbuffer buf;
    uint32_t n, max;
    uint64_t last;
    jnl_t *jnl;
    orc_saga_t *saga; /* the last saga looked up: its events run together */
} s_evpage_t;

static int s_evpage_cb(void *arg, const orc_event_t *ev)
{
    s_evpage_t *pg = arg;
    msg_t m;
    if (pg->n >= pg->max)
        return 1;
    s_event_msg(ev, &m);
    /* The history keeps a step's index; subscribers know it by its id. */
    if (ev->step >= 0) {
        if (!pg->saga || strcmp(pg->saga->def->id, ev->id) != 0) {
            int rc;
            char err[256];
            orc_saga_destroy(&pg->saga);
            pg->saga = orc_store_load(pg->jnl, ev->id, &rc, err, sizeof err);
        }
        if (pg->saga && (uint32_t)ev->step < pg->saga->def->nsteps)
            snprintf(m.step, sizeof m.step, "%s", pg->saga->def->steps[ev->step].id);
    }
    msg_pack(&m, &pg->pk);
    pg->n++;
    pg->last = ev->seq;
    return 0;
}

/* A page of the event stream from the journal: events after p->after,
   "next" to ask after next time, the oldest kept ("first") and the
   newest given ("head"). */
static void s_pack_events(s_server_t *s, msgpack_packer *pk, const s_pending_t *p)
{
    s_evpage_t pg = { .max = p->limit ? p->limit : 1000, .last = p->after, .jnl = s->jnl };
    msgpack_sbuffer_init(&pg.buf);
    msgpack_packer_init(&pg.pk, &pg.buf, msgpack_sbuffer_write);
    uint64_t first = 0;
    int rc = jnl_read_begin(s->jnl);
    if (!rc) {
        rc = orc_store_events_after(s->jnl, p->after, s_evpage_cb, &pg);
        first = orc_store_first_seq(s->jnl);
        orc_saga_destroy(&pg.saga);
        jnl_read_end(s->jnl);
    }
    msgpack_sbuffer_clear(&s->out);
    if (rc) {
        s_reply_error(s, p, MSG_ERROR, "internal", jnl_strerror(rc));
        msgpack_sbuffer_destroy(&pg.buf);
        return;
    }
    msg_pack_header(pk, MSG_EVENTS_REPLY, 7);
    mp_pack_kv_uint(pk, "req", p->req);
    mp_pack_cstr(pk, "events");
    msgpack_pack_array(pk, pg.n);
    if (pg.buf.size)
        mp_pack_raw(pk, pg.buf.data, pg.buf.size);
    mp_pack_kv_uint(pk, "next", pg.last);
    mp_pack_kv_uint(pk, "first", first);
    mp_pack_kv_uint(pk, "head", orc_engine_history_seq(s->engine));
    msgpack_sbuffer_destroy(&pg.buf);
}

static void s_reply_error(s_server_t *s, const s_pending_t *p, msg_type_t type, const char *code,
                          const char *text)
{
    msg_t m;
    msg_init(&m, type);
    m.req = p->req;
    snprintf(m.id, sizeof m.id, "%s", p->id);
    snprintf(m.code, sizeof m.code, "%s", code);
    snprintf(m.text, sizeof m.text, "%s", text);
    s_pack_msg(s, &m);
    s_send_client(s, &p->env, &s->out);
}

static void s_answer(s_server_t *s, s_pending_t *p, int commit_rc)
{
    msg_t m;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &s->out, msgpack_sbuffer_write);
    msg_type_t fail = p->req_type == MSG_SUBMIT ? MSG_REJECTED : MSG_ERROR;
    if (p->req_type == MSG_SUBMIT && s->metrics && (p->code || commit_rc))
        orc_metrics_refused(s->metrics, p->code                     ? p->code
                                        : commit_rc == MDB_MAP_FULL ? "journal_full"
                                                                    : "internal");
    if (p->code) {
        s_reply_error(s, p, fail, p->code, p->err);
        return;
    }
    switch (p->req_type) {
    case MSG_SUBMIT:
    case MSG_CANCEL:
    case MSG_RETRY:
    case MSG_RESOLVE:
        if (commit_rc) {
            char text[256];
            snprintf(text, sizeof text, "not recorded: journal commit failed (%s)",
                     jnl_strerror(commit_rc));
            s_reply_error(s, p, fail, commit_rc == MDB_MAP_FULL ? "journal_full" : "internal",
                          text);
            return;
        }
        msg_init(&m, p->req_type == MSG_SUBMIT ? MSG_ACCEPTED : MSG_OK);
        m.req = p->req;
        strcpy(m.id, p->id);
        if (p->req_type == MSG_SUBMIT) {
            snprintf(m.state, sizeof m.state, "%s", orc_saga_state_name(p->state));
            m.duplicate = p->duplicate;
        }
        s_pack_msg(s, &m);
        break;
    case MSG_STATUS: {
        int rc = jnl_read_begin(s->jnl);
        char err[512];
        orc_saga_t *saga = rc ? NULL : orc_store_load(s->jnl, p->id, &rc, err, sizeof err);
        if (!saga) {
            orc_tomb_t t;
            const char *code = rc == MDB_NOTFOUND ? "not_found" : "internal";
            if (rc == MDB_NOTFOUND && orc_store_tomb(s->jnl, p->id, &t) == 0) {
                /* Ended and removed by retention: say so, not "never heard of it". */
                time_t when = (time_t)(t.removed_ms / 1000);
                struct tm tm;
                char at[32];
                gmtime_r(&when, &tm);
                strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
                code = "removed";
                snprintf(err, sizeof err,
                         "saga '%s' %s and was removed from the journal by retention at %s%s",
                         p->id, orc_saga_state_name(t.state), at,
                         s->cfg->archive_dir ? "; its record is in the archive" : "");
            } else if (rc == MDB_NOTFOUND)
                snprintf(err, sizeof err, "no saga with id '%s'", p->id);
            jnl_read_end(s->jnl);
            s_reply_error(s, p, MSG_ERROR, code, err);
            return;
        }
        msgpack_sbuffer_clear(&s->out);
        msg_pack_header(&pk, MSG_SAGA, 4);
        mp_pack_kv_uint(&pk, "req", p->req);
        mp_pack_cstr(&pk, "saga");
        orc_store_pack_status(s->jnl, &pk, saga);
        jnl_read_end(s->jnl);
        orc_saga_destroy(&saga);
        break;
    }
    case MSG_LIST: s_pack_list(s, &pk, p); break;
    case MSG_ALERTS:
        msgpack_sbuffer_clear(&s->out);
        msg_pack_header(&pk, MSG_ALERTS_REPLY, 4);
        mp_pack_kv_uint(&pk, "req", p->req);
        mp_pack_cstr(&pk, "alerts");
        orc_alerts_pack(s->alerts, &pk);
        break;
    case MSG_EVENTS:
        s_pack_events(s, &pk, p);
        if (!s->out.size)
            return; /* an error went out */
        break;
    case MSG_LOGIN: {
        char token[65];
        uint64_t expires;
        if (!s->http) {
            s_reply_error(s, p, MSG_ERROR, "unavailable",
                          "the console is off: zsagad serves it with --http ADDRESS");
            return;
        }
        orc_http_login(s->http, p->who, token, &expires);
        /* The console's own address: the operator need not know it. */
        const char *colon = strrchr(s->cfg->http_addr, ':');
        char url[320];
        snprintf(url, sizeof url, "http://%.*s:%u/", (int)(colon - s->cfg->http_addr),
                 s->cfg->http_addr, orc_http_port(s->http));
        msgpack_sbuffer_clear(&s->out);
        msg_pack_header(&pk, MSG_TOKEN, 6);
        mp_pack_kv_uint(&pk, "req", p->req);
        mp_pack_kv_str(&pk, "token", token);
        mp_pack_kv_uint(&pk, "expires_ms", expires);
        mp_pack_kv_str(&pk, "url", url);
        sodium_memzero(token, sizeof token);
        zlog_info("console token given to key %s (role %s)", p->who->name,
                  orc_role_name(p->who->role));
        break;
    }
    case MSG_SYSTEMS:
        msgpack_sbuffer_clear(&s->out);
        msg_pack_header(&pk, MSG_SYSTEMS_REPLY, 4);
        mp_pack_kv_uint(&pk, "req", p->req);
        mp_pack_cstr(&pk, "systems");
        s_pack_systems(s, &pk);
        break;
    case MSG_STATS:
        msgpack_sbuffer_clear(&s->out);
        msg_pack_header(&pk, MSG_STATS_REPLY, 4);
        mp_pack_kv_uint(&pk, "req", p->req);
        mp_pack_cstr(&pk, "stats");
        s_pack_stats(s, &pk);
        break;
    default: return;
    }
    s_send_client(s, &p->env, &s->out);
}

/* ---- hot backup ------------------------------------------------------- */

static void *s_backup_thread(void *arg)
{
    s_backup_t *b = arg;
    b->rc = jnl_backup(b->jnl, b->path, b->err, sizeof b->err);
    zmq_send(b->pipe, "", 0, 0);
    return NULL;
}

static void s_backup_start(s_server_t *s, const s_envelope_t *env, const msg_t *m)
{
    s_backup_t *b = &s->backup;
    if (b->running) {
        s_pending_t *p = s_pend(s, env, m);
        if (p) {
            p->code = "busy";
            snprintf(p->err, sizeof p->err, "a backup is already running");
        }
        return;
    }
    /* Backups go only under the configured directory, by a plain name:
       a client never picks a path on zsagad's host. */
    const char *name = m->text, *why = NULL;
    if (!s->cfg->backup_dir)
        why = "backups are off: zsagad has no backup directory (--backup-dir)";
    else if (!name[0] || name[0] == '.' || strchr(name, '/') ||
             strlen(name) + strlen(s->cfg->backup_dir) + 2 > sizeof b->path)
        why = "a backup is named by a plain name (no '/', not starting with '.'), written under "
              "zsagad's backup directory";
    if (why) {
        s_pending_t *p = s_pend(s, env, m);
        if (p) {
            p->code = "invalid";
            snprintf(p->err, sizeof p->err, "%s", why);
        }
        return;
    }
    b->env = *env;
    b->req = m->req;
    b->jnl = s->jnl;
    /* Lengths checked above: the path fits. */
    int n = snprintf(b->path, sizeof b->path, "%s/", s->cfg->backup_dir);
    memcpy(b->path + n, name, strlen(name) + 1);
    b->err[0] = 0;
    if (pthread_create(&b->thread, NULL, s_backup_thread, b) == 0)
        b->running = true;
    else {
        s_pending_t *p = s_pend(s, env, m);
        if (p) {
            p->code = "internal";
            snprintf(p->err, sizeof p->err, "cannot start the backup thread");
        }
    }
}

static void s_backup_done(s_server_t *s)
{
    s_backup_t *b = &s->backup;
    char c;
    zmq_recv(s->pipe, &c, 1, 0);
    pthread_join(b->thread, NULL);
    b->running = false;
    msg_t m;
    msg_init(&m, b->rc ? MSG_ERROR : MSG_OK);
    m.req = b->req;
    if (b->rc) {
        snprintf(m.code, sizeof m.code, "backup_failed");
        snprintf(m.text, sizeof m.text, "%s", b->err);
    } else
        snprintf(m.text, sizeof m.text, "%s", b->path);
    zlog_info("backup to %s: %s", b->path, b->rc ? b->err : "done");
    s_pack_msg(s, &m);
    s_send_envelope(s->clients, b->env.rid, b->env.rid_len, b->env.delim, &s->out);
}

/* ---- receiving -------------------------------------------------------- */

/* Read one routed message: [rid][optional empty][body]. Returns 1 if one
   was read, 0 if none was waiting. Extra frames are discarded. */
static int s_recv(void *sock, s_envelope_t *env, zmq_msg_t *body)
{
    zmq_msg_t f;
    int more, n = 0;
    size_t sz = sizeof more;
    zmq_msg_init(&f);
    if (zmq_msg_recv(&f, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&f);
        return 0;
    }
    env->rid_len = zmq_msg_size(&f) < RID_MAX ? zmq_msg_size(&f) : RID_MAX;
    memcpy(env->rid, zmq_msg_data(&f), env->rid_len);
    env->delim = false;
    env->frames = 0;
    env->http = NULL;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
    zmq_msg_close(&f);
    while (more) {
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, sock, 0) < 0) {
            zmq_msg_close(&f);
            break;
        }
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
        env->frames++;
        if (n == 0 && zmq_msg_size(&f) == 0 && more) {
            env->delim = true; /* REQ-style envelope */
            zmq_msg_close(&f);
            continue;
        }
        if (n++ == 0)
            zmq_msg_move(body, &f);
        zmq_msg_close(&f);
    }
    return 1;
}

/* A message of more frames than the protocol has: ZeroMQ buffered it
   whole before we could see it, so the sender is abusing its key. */
static bool s_multipart(s_server_t *s, const s_envelope_t *env, const orc_principal_t *who)
{
    if (env->frames <= (env->delim ? 2 : 1))
        return false;
    s->multipart++;
    zlog_warn("refused a message of %d frames from %s", env->frames, who ? who->name : "?");
    if (who)
        orc_auth_ban(s->auth, who);
    return true;
}

/* Every operator action is logged when it is taken (its record in the
   saga's history follows with the batch's commit). */
static void s_operator_action(const s_pending_t *p, const orc_principal_t *who, const msg_t *m)
{
    if (!p)
        return;
    zlog_kv(p->code ? ZLOG_WARN : ZLOG_INFO,
            (const char *[]){ "saga", m->id, "key", who->name, "role", orc_role_name(who->role),
                              "via", p->env.http ? "http" : "zmq", "note", m->text, "result",
                              p->code ? p->code : "ok", "why", p->code ? p->err : "", NULL },
            "operator %s", msg_type_name(m->type));
}

/* Does a request about saga id belong to another partition? Then it is
   answered not_leader, its text the client endpoints of the zsagad that
   serves that partition (empty while nobody does: the client waits and
   asks again), and true is returned. */
static bool s_elsewhere(s_server_t *s, const s_envelope_t *env, const msg_t *m, const char *id)
{
    if (s->nparts <= 1 || !id || !*id)
        return false;
    uint32_t part = jnl_partition_of(id, s->nparts);
    if (part == s->part)
        return false;
    uint64_t now = s_mono();
    if (!s->leaders[part].read_ms || now - s->leaders[part].read_ms > 1000) {
        if (jnl_leader_of(s->jnl, part, s->leaders[part].clients, sizeof s->leaders[part].clients))
            s->leaders[part].clients[0] = 0;
        s->leaders[part].read_ms = now;
    }
    s_pending_t *p = s_pend(s, env, m);
    if (p) {
        p->code = "not_leader";
        snprintf(p->err, sizeof p->err, "%s", s->leaders[part].clients);
    }
    return true;
}

/* A decoded request from who (NULL: a key no longer authorized), over
   the clients socket or HTTP. */
static void s_client_request(s_server_t *s, const s_envelope_t *env, const orc_principal_t *who,
                             msg_t *m)
{
    s_pending_t *p;
    if ((!who || !orc_auth_may(who, m->type))) {
        s->forbidden++;
        if ((p = s_pend(s, env, m))) {
            p->code = "forbidden";
            if (!who)
                snprintf(p->err, sizeof p->err, "this key is no longer authorized");
            else
                snprintf(p->err, sizeof p->err, "key %s has role %s; '%s' needs %s", who->name,
                         orc_role_name(who->role), msg_type_name(m->type),
                         orc_auth_needed(m->type) ? orc_role_name(orc_auth_needed(m->type))
                                                  : "a worker's socket");
        }
        if (who && orc_auth_needed(m->type) >= ORC_ROLE_OPERATOR)
            zlog_warn("refused %s of saga %s from key %s (role %s)", msg_type_name(m->type), m->id,
                      who->name, orc_role_name(who->role));
        return;
    }
    if (s_elsewhere(s, env, m, m->type == MSG_SUBMIT ? m->saga->id : m->id))
        return;
    switch (m->type) {
    case MSG_SUBMIT:
        if ((p = s_pend(s, env, m))) {
            snprintf(p->id, sizeof p->id, "%s", m->saga->id);
            p->code = orc_engine_submit(s->engine, &m->saga, &p->state, &p->duplicate, p->err,
                                        sizeof p->err);
        }
        break;
    case MSG_STATUS:
    case MSG_STATS:
    case MSG_SYSTEMS:
    case MSG_ALERTS: s_pend(s, env, m); break;
    case MSG_LOGIN:
        if ((p = s_pend(s, env, m)))
            p->who = who;
        break;
    case MSG_EVENTS:
        if ((p = s_pend(s, env, m))) {
            p->after = m->seq;
            p->limit = m->limit;
            if (m->limit > 10000) {
                p->code = "invalid";
                snprintf(p->err, sizeof p->err, "limit %u is over 10000", m->limit);
            }
        }
        break;
    case MSG_LIST:
        if ((p = s_pend(s, env, m))) {
            p->limit = m->limit;
            if (m->limit > 10000) {
                p->code = "invalid";
                snprintf(p->err, sizeof p->err, "limit %u is over 10000", m->limit);
            }
            if (m->state[0] && (p->filter = orc_saga_state_parse(m->state)) < 0) {
                p->code = "invalid";
                snprintf(p->err, sizeof p->err,
                         "unknown state '%s' (running, compensating, completed, compensated, "
                         "parked, resolved)",
                         m->state);
            }
            if (p->filter < 0)
                p->filter = 0;
            p->since_ms = m->since_ms;
            p->until_ms = m->until_ms;
            if (m->cursor[0]) {
                char *end;
                errno = 0;
                unsigned long long c = strtoull(m->cursor, &end, 10);
                if (errno || end == m->cursor || *end != ':' ||
                    !msg_id_valid(end + 1, strlen(end + 1))) {
                    p->code = "invalid";
                    snprintf(p->err, sizeof p->err,
                             "cursor '%s' is not one a list reply gave (its \"next\")", m->cursor);
                } else {
                    p->has_cursor = true;
                    p->cursor.created_ms = c;
                    snprintf(p->cursor.id, sizeof p->cursor.id, "%s", end + 1);
                }
            }
        }
        break;
    case MSG_CANCEL:
        if ((p = s_pend(s, env, m)))
            p->code =
                orc_engine_cancel(s->engine, m->id, who->name, m->text, p->err, sizeof p->err);
        s_operator_action(p, who, m);
        break;
    case MSG_RETRY:
        if ((p = s_pend(s, env, m)))
            p->code = orc_engine_retry(s->engine, m->id, who->name, p->err, sizeof p->err);
        s_operator_action(p, who, m);
        break;
    case MSG_RESOLVE:
        if ((p = s_pend(s, env, m)))
            p->code =
                orc_engine_resolve(s->engine, m->id, who->name, m->text, p->err, sizeof p->err);
        s_operator_action(p, who, m);
        break;
    case MSG_BACKUP: s_backup_start(s, env, m); break;
    default:
        if ((p = s_pend(s, env, m))) {
            p->code = "unexpected";
            snprintf(p->err, sizeof p->err, "'%s' is not a client request", msg_type_name(m->type));
        }
        break;
    }
}

static void s_client_message(s_server_t *s, const s_envelope_t *env, zmq_msg_t *body)
{
    msg_t m;
    char err[MSG_TEXT_MAX + 1];
    const orc_principal_t *who = orc_auth_peer(s->auth, body);
    if (s_multipart(s, env, who))
        return;
    const char *code = msg_decode(zmq_msg_data(body), zmq_msg_size(body), &m, err, sizeof err);
    s_pending_t *p;
    if (code) {
        /* msg_decode keeps the type and req it got to, for the reply. */
        if ((p = s_pend(s, env, &m))) {
            p->code = code;
            snprintf(p->err, sizeof p->err, "%s", err);
        }
        return;
    }
    s_client_request(s, env, who, &m);
    msg_clear(&m);
}

/* An /api request: the same path, answered over HTTP after the commit. */
static void s_http_request(void *arg, zhttp_req_t *req, const orc_principal_t *who, msg_t *m)
{
    s_envelope_t env = { .http = req };
    s_client_request(arg, &env, who, m);
}

static void s_owe_heartbeat(s_server_t *s, const char *rid, bool known)
{
    if (s->nhb == s->caphb) {
        size_t cap = s->caphb ? s->caphb * 2 : 16;
        void *a = realloc(s->hb, cap * sizeof *s->hb), *b;
        if (!a)
            return;
        s->hb = a;
        if (!(b = realloc(s->hb_known, cap * sizeof *s->hb_known)))
            return;
        s->hb_known = b;
        s->caphb = cap;
    }
    strcpy(s->hb[s->nhb], rid);
    s->hb_known[s->nhb++] = known;
}

/* Tell a worker why it was refused (no journal change: sent at once). */
static void s_refuse_worker(s_server_t *s, const char *rid, const char *code, const char *why)
{
    msg_t m;
    msg_init(&m, MSG_ERROR);
    snprintf(m.code, sizeof m.code, "%s", code);
    snprintf(m.text, sizeof m.text, "%s", why);
    s_pack_msg(s, &m);
    s_send_worker(s, rid, &s->out);
}

static void s_worker_message(s_server_t *s, const s_envelope_t *env, zmq_msg_t *body)
{
    msg_t m;
    char err[MSG_TEXT_MAX + 1], rid[MSG_ID_MAX + 1];
    const orc_principal_t *who = orc_auth_peer(s->auth, body);
    if (s_multipart(s, env, who))
        return;
    if (!who || !s_rid_hex(env, rid)) {
        s->bad_worker_msgs++; /* a revoked key, or a routing id ZeroMQ never gave */
        return;
    }
    const char *code = msg_decode(zmq_msg_data(body), zmq_msg_size(body), &m, err, sizeof err);
    if (code) {
        if (s->bad_worker_msgs++ % 1000 == 0)
            zlog_warn("worker %s sent a bad message (%s): %s", who->name, code, err);
        return;
    }
    switch (m.type) {
    case MSG_READY: {
        const char *why = NULL;
        char reason[MSG_TEXT_MAX + 1];
        if (!orc_auth_serves(who, m.system)) {
            snprintf(reason, sizeof reason, "key %s may not serve system %s (it may serve: %s)",
                     who->name, m.system, who->systems[0] ? who->systems : "none");
            why = "forbidden";
        }
        for (uint32_t i = 0; !why && i < m.nops; i++)
            if (!orc_auth_op_allowed(who, m.ops[i])) {
                snprintf(reason, sizeof reason, "key %s may not register operation %s", who->name,
                         m.ops[i]);
                why = "forbidden";
            }
        if (!why)
            why = orc_engine_ready(s->engine, rid, who->key, who->name, &m, reason, sizeof reason);
        if (why) {
            if (strcmp(why, "forbidden") == 0)
                s->forbidden++;
            if (s->bad_worker_msgs++ % 100 == 0)
                zlog_warn("refused worker %s (key %s): %s: %s", m.instance, who->name, why, reason);
            s_refuse_worker(s, rid, why, reason);
            break;
        }
        zlog_info("worker %s registered for system %s (key %s, capacity %u, %u operations)",
                  m.instance, m.system, who->name, m.capacity, m.nops);
        s_owe_heartbeat(s, rid, true);
        break;
    }
    case MSG_HEARTBEAT: {
        bool known = orc_engine_heartbeat(s->engine, rid);
        orc_worker_t *w = orc_registry_worker(orc_engine_registry(s->engine), rid);
        if (w && m.raw_len <= sizeof w->metrics && m.raw_len &&
            (m.raw[0] >> 4 == 0x8 || m.raw[0] == 0xde || m.raw[0] == 0xdf)) {
            memcpy(w->metrics, m.raw, m.raw_len);
            w->metrics_len = (uint32_t)m.raw_len;
            w->metrics_ms = s_mono();
        }
        s_owe_heartbeat(s, rid, known);
        break;
    }
    case MSG_RESULT: orc_engine_result(s->engine, rid, &m); break;
    default:
        if (s->bad_worker_msgs++ % 1000 == 0)
            zlog_warn("worker %s sent '%s', which workers do not send", who->name,
                      msg_type_name(m.type));
        break;
    }
    msg_clear(&m);
}

/* ---- after the commit ------------------------------------------------- */

/* Requests move with their batch: collected, in flight, landed. */
static void s_pend_move(s_pending_t **to, size_t *nto, size_t *capto, s_pending_t **from,
                        size_t *nfrom, size_t *capfrom)
{
    s_pending_t *p = *to;
    size_t cap = *capto;
    *to = *from;
    *nto = *nfrom;
    *capto = *capfrom;
    *from = p;
    *nfrom = 0;
    *capfrom = cap;
}

static void s_pend_fly(s_server_t *s)
{
    s_pend_move(&s->fpend, &s->nfpend, &s->capfpend, &s->pend, &s->npend, &s->cappend);
}

static void s_pend_land(s_server_t *s)
{
    s_pend_move(&s->lpend, &s->nlpend, &s->caplpend, &s->fpend, &s->nfpend, &s->capfpend);
}

/* The landed flight: send what follows from it (nothing but refusals if
   it failed). */
static void s_send_outbox(s_server_t *s, int commit_rc)
{
    size_t n;
    msg_t m;
    orc_dispatch_t *d = orc_engine_dispatches(s->engine, &n);
    for (size_t i = 0; i < n; i++) {
        const msg_step_t *def = &d[i].saga->def->steps[d[i].step];
        msg_init(&m, d[i].phase == MSG_PHASE_ACTION ? MSG_EXECUTE : MSG_COMPENSATE);
        strcpy(m.id, d[i].saga->def->id);
        strcpy(m.step, def->id);
        strcpy(m.op, d[i].phase == MSG_PHASE_ACTION ? def->action : def->compensation);
        m.attempt = d[i].attempt;
        m.lease = d[i].lease;
        m.timeout_ms = def->timeout_ms;
        m.params = d[i].params;
        m.params_len = d[i].params_len;
        s_pack_msg(s, &m);
        s_send_worker(s, d[i].rid, &s->out);
    }
    orc_event_t *ev = orc_engine_events(s->engine, &n);
    for (size_t i = 0; i < n; i++) {
        s_event_msg(&ev[i], &m);
        s_pack_msg(s, &m);
        /* ZeroMQ drops for a subscriber at its high-water mark, that
           subscriber only: one slow reader never holds the others back.
           It sees the jump in seq and reads what it missed from the
           journal (the events request). */
        zmq_send(s->events, ev[i].what, strlen(ev[i].what), ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(s->events, s->out.data, s->out.size, ZMQ_DONTWAIT);
        s->events_sent++;
    }
    for (size_t i = 0; i < s->nlpend; i++)
        s_answer(s, &s->lpend[i], commit_rc);
    s->nlpend = 0;
    for (size_t i = 0; i < s->nhb; i++) {
        msg_init(&m, MSG_HEARTBEAT);
        /* boot 0 tells an unknown worker to send ready again. */
        m.boot = s->hb_known[i] ? orc_engine_boot(s->engine) : 0;
        s_pack_msg(s, &m);
        s_send_worker(s, s->hb[i], &s->out);
    }
    s->nhb = 0;
    orc_engine_outbox_clear(s->engine);
}

/* The journal for a log line: a PostgreSQL URI without its password. */
static void s_journal_name(const char *journal, char *out, size_t cap)
{
    const char *scheme = strstr(journal, "://"), *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon)
        snprintf(out, cap, "%.*s:***%s", (int)(colon - journal), journal, at);
    else
        snprintf(out, cap, "%s", journal);
}

/* The flight has ended (orc_engine_commit_end said so): its requests
   land. A failed flight failed the batch collected since as well (the
   engine reloaded both): that batch's requests are refused with it. */
static void s_land(s_server_t *s, int crc, const char *err, uint64_t *last_fail_log)
{
    s_pend_land(s);
    if (crc) {
        if (s_mono() - *last_fail_log > 5000) {
            *last_fail_log = s_mono();
            zlog_error("%s; the batch was rolled back and will be redone", err);
        }
        s_send_outbox(s, crc);
        s_pend_move(&s->lpend, &s->nlpend, &s->caplpend, &s->pend, &s->npend, &s->cappend);
    }
}

/* Commit what was collected and wait for it (start and shutdown). */
static void s_commit_now(s_server_t *s)
{
    char err[512];
    uint64_t never = 0;
    s_pend_fly(s);
    int crc = orc_engine_commit(s->engine, err, sizeof err);
    s_land(s, crc, err, &never);
    s_send_outbox(s, crc);
}

/* Once a second: the alert rules; each change goes out on the event
   stream (live only: an alert is not a saga's history; `zsaga alerts`
   and /metrics give the current state after a restart of the reader). */
static void s_alerts(s_server_t *s)
{
    orc_alerts_input_t in = { s->engine, s->metrics, 0, 0, s_count_state(s, SAGA_PARKED) };
    jnl_usage(s->jnl, &in.journal_used, &in.journal_map);
    const orc_alert_change_t *c;
    size_t n = orc_alerts_eval(s->alerts, &in, s_now(), s_mono(), &c);
    for (size_t i = 0; i < n; i++) {
        msg_t m;
        const char *topic = c[i].firing ? "alert.firing" : "alert.resolved";
        msg_init(&m, MSG_EVENT);
        m.ts_ms = c[i].at_ms;
        snprintf(m.id, sizeof m.id, "%s", c[i].rule);
        snprintf(m.state, sizeof m.state, "%s", c[i].firing ? c[i].level : "resolved");
        snprintf(m.text, sizeof m.text, "%s%s%s", c[i].subject, c[i].subject[0] ? ": " : "",
                 c[i].message);
        s_pack_msg(s, &m);
        if (zmq_send(s->events, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
            zmq_send(s->events, s->out.data, s->out.size, ZMQ_DONTWAIT);
    }
}

/* Subscriptions come and go on the XPUB socket as one-frame messages:
   1 then the topic to subscribe, 0 to unsubscribe (a subscriber that
   disconnects sends its unsubscriptions too). */
static void s_subscriptions(s_server_t *s)
{
    uint8_t buf[256];
    int n;
    while ((n = zmq_recv(s->events, buf, sizeof buf, ZMQ_DONTWAIT)) > 0) {
        if (buf[0] == 1)
            s->subscribers++;
        else if (buf[0] == 0 && s->subscribers)
            s->subscribers--;
    }
}

/* ---- setup and loop --------------------------------------------------- */

/* A socket bound to every endpoint of ep (comma-separated: local workers
   over ipc and remote ones over tcp, say). domain names the socket to the
   ZAP handler; with a domain and a key the socket is a CURVE server. */
static void *s_socket(s_server_t *s, int type, const char *ep, const char *domain)
{
    void *sock = zmq_socket(s->ctx, type);
    int linger = 0, hwm = 100000, zero = 0;
    if (!sock)
        return NULL;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (type == ZMQ_XPUB) {
        int one = 1;
        /* Every subscribe and unsubscribe reaches us: the subscriber count. */
        zmq_setsockopt(sock, ZMQ_XPUB_VERBOSER, &one, sizeof one);
    }
    if (type == ZMQ_ROUTER) {
        /* A frame larger than this cuts the peer off inside ZeroMQ, before
           it is buffered; anything up to it gets a readable "too_large"
           from the decoder. */
        int64_t max = 2 * MSG_MAX_BYTES;
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max);
        /* No handover: a routing id is never taken from a live peer. */
        zmq_setsockopt(sock, ZMQ_ROUTER_HANDOVER, &zero, sizeof zero);
    }
    if (domain && s->cert && zkeys_server(sock, s->cert, domain)) {
        zlog_error("cannot make the %s socket a CURVE server: %s", domain,
                   zmq_strerror(zmq_errno()));
        zmq_close(sock);
        return NULL;
    }
    char eps[1024];
    if (snprintf(eps, sizeof eps, "%s", ep ? ep : "") >= (int)sizeof eps) {
        /* Cut short, the last endpoint could be another valid address. */
        zlog_error("endpoint list too long (%zu bytes, at most %zu)", strlen(ep), sizeof eps - 1);
        zmq_close(sock);
        return NULL;
    }
    for (char *save = NULL, *one_ep = strtok_r(eps, ",", &save); one_ep;
         one_ep = strtok_r(NULL, ",", &save)) {
        if (zmq_bind(sock, one_ep)) {
            zlog_error("cannot bind %s: %s", one_ep, zmq_strerror(zmq_errno()));
            zmq_close(sock);
            return NULL;
        }
        /* The socket file is born 0600 (umask 077); widen it only as far
           as configured, for workers of the same group. */
        if (strncmp(one_ep, "ipc://", 6) == 0 && one_ep[6] != '@' &&
            chmod(one_ep + 6, s->cfg->ipc_mode ? s->cfg->ipc_mode : 0600)) {
            zlog_error("cannot set the mode of %s: %s", one_ep + 6, strerror(errno));
            zmq_close(sock);
            return NULL;
        }
    }
    return sock;
}

/* Load zsagad's key and start the ZAP handler, or refuse to start. */
static int s_security(s_server_t *s)
{
    const orc_server_config_t *cfg = s->cfg;
    char err[1024];
    if (cfg->insecure) {
        zlog_warn("INSECURE: plaintext sockets and no authentication; anyone who reaches a "
                  "socket can move money. For tests on one host only.");
        s->auth = orc_auth_new(s->ctx, NULL, err, sizeof err);
        return s->auth ? 0 : -1;
    }
    if (!cfg->key_file || !cfg->authorized) {
        zlog_error("zsagad needs --key (its key pair) and --authorized (the directory of the "
                   "public keys allowed in); make them with `zsaga keygen`. --insecure runs "
                   "without, for a plaintext test setup");
        return -1;
    }
    if (!(s->cert = zkeys_load_secret(cfg->key_file, err, sizeof err))) {
        zlog_error("%s", err);
        return -1;
    }
    /* The ZAP handler first: a CURVE server with none would admit any key. */
    if (!(s->auth = orc_auth_new(s->ctx, cfg->authorized, err, sizeof err))) {
        zlog_error("%s", err);
        return -1;
    }
    return 0;
}

/* A standby, waiting for the journal's lease: said once per holder, and
   the systemd watchdog kept fed meanwhile. */
static void s_standby(void *arg, const char *holder, const char *until)
{
    static char said[160];
    (void)arg;
    if (strcmp(said, holder) != 0) {
        snprintf(said, sizeof said, "%s", holder);
        zlog_info("standby: the journal's lease is held by %s (until %s); taking over when it "
                  "lapses",
                  holder, until);
        sd_notifyf(0, "STATUS=standby, the journal's lease held by %s", holder);
    }
    sd_notify(0, "WATCHDOG=1");
}

int orc_server_run(const orc_server_config_t *cfg, volatile sig_atomic_t *stop)
{
    s_server_t s = { .cfg = cfg };
    char err[1024];
    int rc = 1;
    char holder[256], host[128] = "";
    gethostname(host, sizeof host - 1);
    snprintf(holder, sizeof holder, "zsagad on %s, pid %ld, clients %s", host, (long)getpid(),
             cfg->client_ep);
    jnl_config_t jc = { .map_bytes = cfg->map_bytes,
                        .sync = cfg->sync,
                        .lease_ms = cfg->lease_ms,
                        .partitions = cfg->partitions,
                        .clients = cfg->advertise ? cfg->advertise : cfg->client_ep,
                        .member = cfg->member,
                        .holder = holder,
                        .stop = stop,
                        .wait = s_standby };
    orc_config_t oc = { .heartbeat_timeout_ms = cfg->heartbeat_timeout_ms,
                        .reserve_pct = cfg->reserve_pct,
                        .crash_in_commit = cfg->crash_in_commit,
                        .crash_after_commit = cfg->crash_after_commit,
                        .max_systems = cfg->max_systems,
                        .retain_ms = cfg->retain_ms,
                        .retain_count = cfg->retain_count,
                        .tomb_ms = cfg->tomb_ms,
                        .archive = cfg->archive_dir != NULL };
    umask(077);
    if (cfg->metrics && !(oc.metrics = s.metrics = orc_metrics_new())) {
        zlog_error("out of memory");
        return 1;
    }
    msgpack_sbuffer_init(&s.out);
    s.started_ms = s_mono();
    if (cfg->backup_dir && mkdir(cfg->backup_dir, 0700) && errno != EEXIST) {
        zlog_error("backup directory %s: %s", cfg->backup_dir, strerror(errno));
        goto done;
    }
    if (cfg->archive_dir && !(s.archiver = orc_archiver_new(cfg->archive_dir, cfg->retain_ms))) {
        zlog_error("out of memory");
        goto done;
    }
    if (!(s.jnl = jnl_open(cfg->data_dir, &jc, err, sizeof err))) {
        if (*stop) { /* asked to stop while a standby: nothing wrong */
            zlog_info("%s", err);
            rc = 0;
        } else
            zlog_error("%s", err);
        goto done;
    }
    s.part = jnl_partition(s.jnl, &s.nparts);
    if (!(s.leaders = calloc(s.nparts, sizeof *s.leaders))) {
        zlog_error("out of memory");
        goto done;
    }
    if (jnl_epoch(s.jnl) && s.nparts > 1)
        zlog_info("took the lease of the journal's partition %u of %u (epoch %llu): this zsagad "
                  "serves the sagas of that partition",
                  s.part, s.nparts, (unsigned long long)jnl_epoch(s.jnl));
    else if (jnl_epoch(s.jnl))
        zlog_info("took the journal's lease (epoch %llu): this zsagad is the active one",
                  (unsigned long long)jnl_epoch(s.jnl));
    if (!(s.engine = orc_engine_new(s.jnl, &oc, s_now(), s_mono(), err, sizeof err))) {
        zlog_error("cannot start: %s", err);
        goto done;
    }
    s.ctx = zmq_ctx_new();
    if (s_security(&s) || !(s.clients = s_socket(&s, ZMQ_ROUTER, cfg->client_ep, "clients")) ||
        !(s.workers = s_socket(&s, ZMQ_ROUTER, cfg->worker_ep, "workers")) ||
        !(s.events = s_socket(&s, ZMQ_XPUB, cfg->event_ep, "events")) ||
        !(s.pipe = s_socket(&s, ZMQ_PAIR, "inproc://backup", NULL)) ||
        !(s.backup.pipe = s_socket(&s, ZMQ_PAIR, NULL, NULL)) ||
        zmq_connect(s.backup.pipe, "inproc://backup"))
        goto done;
    int mandatory = 1;
    zmq_setsockopt(s.workers, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    orc_alerts_config_t ac = { cfg->alert_window_ms, cfg->alert_command, cfg->alert_webhook };
    if (!(s.alerts = orc_alerts_new(&ac, err, sizeof err))) {
        zlog_error("%s", err);
        goto done;
    }
    for (size_t i = 0; i < cfg->nalert_specs; i++)
        if (orc_alerts_set(s.alerts, cfg->alert_specs[i], err, sizeof err)) {
            zlog_error("%s", err);
            goto done;
        }
    if (cfg->http_addr) {
        orc_http_cb_t hcb = { s_http_request, s_metrics, &s };
        if (!(s.http =
                  orc_http_new(cfg->http_addr, s.auth, &hcb, cfg->token_ttl_ms, err, sizeof err))) {
            zlog_error("%s", err);
            goto done;
        }
        /* The port bound, which port 0 left to the kernel. */
        const char *colon = strrchr(cfg->http_addr, ':');
        zlog_info("console and metrics on http://%.*s:%u/ (metrics at /metrics)",
                  (int)(colon - cfg->http_addr), cfg->http_addr, orc_http_port(s.http));
    }
    char jname[512];
    bool pg = strncmp(cfg->data_dir, "postgres", 8) == 0;
    s_journal_name(cfg->data_dir, jname, sizeof jname);
    zlog_info("zsagad %s up (boot %llu, %s): clients %s, workers %s, events %s, journal %s (%s "
              "sync), %zu sagas resumed",
              ZSAGA_VERSION, (unsigned long long)orc_engine_boot(s.engine),
              cfg->insecure ? "INSECURE" : "CURVE", cfg->client_ep, cfg->worker_ep, cfg->event_ep,
              jname,
              pg                             ? "PostgreSQL's"
              : cfg->sync == JNL_SYNC_FULL   ? "full"
              : cfg->sync == JNL_SYNC_NOMETA ? "nometa"
                                             : "no",
              orc_engine_active(s.engine));
    /* Commit once at start: it records the boot number, and the first
       batch dispatches what recovery queued. */
    orc_engine_pump(s.engine);
    s_commit_now(&s);
    /* From here a committer thread commits each batch while the loop
       applies the next (orc_engine_commit_start): the loop no longer
       waits on the disk. Not with --sync none, where a commit costs less
       than handing it to another thread (measured: docs/benchmarks.md);
       without the thread every commit is made in the loop, as before. */
    if (cfg->sync != JNL_SYNC_NONE && (rc = jnl_pipeline(s.jnl)))
        zlog_warn("journal: no committer thread (%s): commits run on the loop", strerror(rc));
    rc = 1;
    /* Under systemd (Type=notify): ready once the sockets are bound and
       the journal recovered; a watchdog ping from the loop itself, so a
       loop that hangs is restarted. No-ops without NOTIFY_SOCKET. */
    uint64_t watchdog_us = 0, next_ping_ms = 0;
    if (sd_watchdog_enabled(0, &watchdog_us) <= 0)
        watchdog_us = 0;
    sd_notifyf(0, "READY=1\nSTATUS=%zu sagas resumed, serving", orc_engine_active(s.engine));

    /* The ZAP socket last: in insecure mode there is none to poll. */
    zmq_pollitem_t items[7] = { { s.clients, 0, ZMQ_POLLIN, 0 },
                                { s.workers, 0, ZMQ_POLLIN, 0 },
                                { s.pipe, 0, ZMQ_POLLIN, 0 },
                                { s.events, 0, ZMQ_POLLIN, 0 } };
    int nitems = 4, zap = -1;
    if (orc_auth_socket(s.auth)) {
        zap = nitems;
        items[nitems++] = (zmq_pollitem_t){ orc_auth_socket(s.auth), 0, ZMQ_POLLIN, 0 };
    }
    int http_item = -1;
    if (s.http) {
        http_item = nitems;
        items[nitems++] = (zmq_pollitem_t){ NULL, orc_http_fd(s.http), ZMQ_POLLIN, 0 };
    }
    if (jnl_pipe_fd(s.jnl) >= 0) /* the committer's "done" */
        items[nitems++] = (zmq_pollitem_t){ NULL, jnl_pipe_fd(s.jnl), ZMQ_POLLIN, 0 };
    zmq_msg_t body;
    s_envelope_t env;
    uint64_t last_fail_log = 0, last_pressure_log = 0, pressure_seen = 0;
    uint32_t collected = 0; /* messages applied since the last flight started */
    bool unknown = false;   /* a commit's outcome could not be learned: stop, saying nothing */
    while (!*stop) {
        uint64_t now = s_mono(), due = orc_engine_next_due(s.engine);
        long timeout = due <= now ? 0 : due - now > 250 ? 250 : (long)(due - now);
        if (zmq_poll(items, nitems, timeout) < 0 && zmq_errno() != EINTR)
            break;
        if (zap >= 0 && (items[zap].revents & ZMQ_POLLIN))
            orc_auth_handle(s.auth);
        if (items[3].revents & ZMQ_POLLIN)
            s_subscriptions(&s);
        if (s_mono() >= s.next_refresh_ms) {
            orc_auth_refresh(s.auth);
            s.next_refresh_ms = s_mono() + 2000;
        }
        orc_engine_now(s.engine, s_now(), s_mono());
        /* HTTP requests join this batch: /api answers go out after its
           commit. MHD runs only when its socket has something, or to time
           connections out: not on every batch. */
        if (s.http && ((items[http_item].revents & ZMQ_POLLIN) || s_mono() >= s.next_http_ms)) {
            orc_http_run(s.http, s_mono());
            s.next_http_ms = s_mono() + 250;
        }
        uint32_t n = 0;
        while (n < cfg->max_batch) {
            int got = 0;
            zmq_msg_init(&body);
            if (s_recv(s.clients, &env, &body)) {
                s_client_message(&s, &env, &body);
                got++;
            }
            zmq_msg_close(&body);
            zmq_msg_init(&body);
            if (s_recv(s.workers, &env, &body)) {
                s_worker_message(&s, &env, &body);
                got++;
            }
            zmq_msg_close(&body);
            if (!got)
                break;
            n += (uint32_t)got;
        }
        collected += n;
        if (items[2].revents & ZMQ_POLLIN)
            s_backup_done(&s);
        orc_engine_tick(s.engine);
        orc_engine_pump(s.engine);
        /* Pipelined group commit. While batch N is being written and
           synced by the committer, this loop has read and applied batch
           N+1 in memory; what follows from N leaves only now that N has
           ended, and N+1 is handed over only then. A batch grown to
           max_batch messages waits for the flight instead of growing. */
        int crc = 0;
        bool failed = false;
        if (jnl_deposed(s.jnl) || jnl_yield(s.jnl))
            break;
        for (int round = 0; round < 2; round++) {
            /* The flight lands; the next one (what this loop collected
               meanwhile) starts at once, and what landed is sent while it
               commits. The second round lands a flight that ended at once
               (nothing to write, or it could not start). */
            bool landed = orc_engine_commit_busy(s.engine) &&
                          orc_engine_commit_end(s.engine, round == 0 && collected >= cfg->max_batch,
                                                &crc, err, sizeof err);
            if (crc == JNL_DEPOSED || crc == JNL_OUTCOME_UNKNOWN) {
                unknown |= crc == JNL_OUTCOME_UNKNOWN;
                break; /* nothing of it may leave: stop below */
            }
            if (landed)
                s_land(&s, crc, err, &last_fail_log);
            if (round == 0 && !orc_engine_commit_busy(s.engine)) {
                s_pend_fly(&s);
                orc_engine_commit_start(s.engine, err, sizeof err);
                collected = 0;
            }
            if (landed) {
                s_send_outbox(&s, crc);
                failed |= crc != 0;
            }
        }
        if (orc_engine_stats(s.engine)->pressure_sweeps != pressure_seen &&
            s_mono() - last_pressure_log > 10000) {
            pressure_seen = orc_engine_stats(s.engine)->pressure_sweeps;
            last_pressure_log = s_mono();
            zlog_warn("journal nearly full: retention is removing ended sagas whatever their age "
                      "(%llu removed so far); raise --map-size or shorten --retain",
                      (unsigned long long)orc_engine_stats(s.engine)->sagas_removed);
        }
        if (s.archiver)
            orc_archiver_step(s.archiver, s.engine, s.jnl, s_now(), s_mono(), false);
        if (s.http && s.http_answered) {
            orc_http_run(s.http, s_mono()); /* send the answers just given */
            s.http_answered = false;
        }
        if (watchdog_us && s_mono() >= next_ping_ms) {
            sd_notify(0, "WATCHDOG=1");
            next_ping_ms = s_mono() + watchdog_us / 2000;
        }
        if (s_mono() >= s.next_alert_ms) {
            s_alerts(&s);
            s.next_alert_ms = s_mono() + 1000;
        }
        if (failed)
            zclock_sleep(100); /* do not spin on a full map */
    }
    if (unknown) {
        /* A batch may or may not be in the journal: no reply about it can
           be true, so none is sent. Clients ask again (submit is
           idempotent) and the next zsagad to serve reads what the journal
           holds. */
        zlog_error("stopping without sending anything more: %s", jnl_strerror(JNL_OUTCOME_UNKNOWN));
        rc = 1;
        goto done;
    } else if (jnl_deposed(s.jnl)) {
        /* Another zsagad holds the journal now and has recovered every
           saga from it: this one sends nothing more (its last batch was
           refused by the journal) and stops. Its clients and workers
           reconnect to the new one. */
        zlog_error("deposed: another zsagad took the journal's lease (this one held epoch %llu); "
                   "stopping without sending anything more",
                   (unsigned long long)jnl_epoch(s.jnl));
        rc = 1;
        goto done;
    }
    /* The flight, and what was collected since, are committed and
       answered before zsagad goes. */
    if (orc_engine_commit_busy(s.engine)) {
        int crc;
        orc_engine_commit_end(s.engine, true, &crc, err, sizeof err);
        s_land(&s, crc, err, &last_fail_log);
        s_send_outbox(&s, crc);
    }
    s_commit_now(&s);
    if (s.archiver) {
        /* Write what is collected and record it, so the next start does
           not archive it again. */
        orc_archiver_step(s.archiver, s.engine, s.jnl, s_now(), s_mono(), true);
        if (orc_engine_commit(s.engine, err, sizeof err))
            zlog_error("%s", err);
        orc_engine_outbox_clear(s.engine);
    }
    sd_notify(0, "STOPPING=1");
    if (jnl_yield(s.jnl)) {
        zlog_info("gave partition %u up to a member below its share: %zu sagas still active "
                  "resume there",
                  s.part, orc_engine_active(s.engine));
        rc = ORC_SERVER_YIELDED;
        goto done;
    }
    zlog_info("shutting down: %zu sagas still active will resume at next start",
              orc_engine_active(s.engine));
    rc = 0;
done:
    if (s.backup.running) {
        pthread_join(s.backup.thread, NULL);
        s.backup.running = false;
    }
    orc_http_destroy(&s.http);
    if (s.clients)
        zmq_close(s.clients);
    if (s.workers)
        zmq_close(s.workers);
    if (s.events)
        zmq_close(s.events);
    if (s.pipe)
        zmq_close(s.pipe);
    if (s.backup.pipe)
        zmq_close(s.backup.pipe);
    orc_auth_destroy(&s.auth);
    zcert_destroy(&s.cert);
    if (s.ctx)
        zmq_ctx_term(s.ctx);
    orc_archiver_destroy(&s.archiver);
    orc_engine_destroy(&s.engine);
    orc_metrics_destroy(&s.metrics);
    orc_alerts_destroy(&s.alerts);
    jnl_destroy(&s.jnl);
    msgpack_sbuffer_destroy(&s.out);
    free(s.pend);
    free(s.leaders);
    free(s.fpend);
    free(s.lpend);
    free(s.hb);
    free(s.hb_known);
    return rc;
}
