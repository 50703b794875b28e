/*  wrk_runtime: connect, register, heartbeat, dispatch. See wrk_runtime.h.

    DESIGN
    The main thread polls the DEALER socket to zsagad and one PAIR socket
    per executor. An execute or compensate message goes to an idle
    executor, or waits in a local FIFO if all are busy (zsagad sends at
    most `capacity`, but after its restart it may briefly send more). An
    executor's result goes straight back out. Heartbeats go out every
    second with in-flight count and pool metrics; a heartbeat reply with
    boot 0 means zsagad does not know us (it restarted, or declared us
    dead), so we register again. On SIGTERM we stop taking work, let the
    executors finish what they hold, send their results, and exit.
*/
#include "wrk_runtime.h"
#include "common/zcfg.h"
#include "common/zkeys.h"
#include "common/zhttp.h"
#include "common/zlog.h"
#include "common/zmetrics.h"
#include "wrk_pool.h"

#include <czmq.h>
#include <getopt.h>
#include <pthread.h>
#include <systemd/sd-daemon.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_EXECUTORS 256
#define MAX_BACKLOG   10000

typedef struct {
    const char *orchestrator, *db_uri;
    const char *key, *server_key; /* own key pair; zsagad's public key */
    bool insecure;
    char db_secret[2048]; /* a URI read from --db-file */
    char instance[MSG_ID_MAX + 1];
    uint32_t capacity, heartbeat_ms, statement_timeout_ms;
    wrk_pool_config_t pool;
    wrk_fault_t faults;
    db_iso_t isolation;
    bool migrate;
    const char *http; /* metrics address; NULL: none */
} s_config_t;

typedef struct {
    const wrk_system_t *sys;
    const s_config_t *cfg;
    wrk_pool_t *pool;
    void *ctx;
    int index;
    pthread_t thread;
    void *main_end, *thread_end;
    bool busy;
    int from; /* the orchestrator socket its step came from: the result goes back there */
} s_exec_t;

/* A step waiting for an executor, and where it came from. */
typedef struct {
    zmq_msg_t msg;
    int from;
} s_job_t;

/* One socket per orchestrator endpoint: with partitions several zsagad
   processes are active at once, and each result must go back to the one
   that dispatched it (one DEALER over several would deal results among
   them). */
typedef struct {
    void *sock;
    char ep[512];
    int64_t last_reply;
} s_orch_t;

typedef struct {
    uint64_t ok, failed, retry, duplicates, replays;
} s_counts_t;

/* Per operation and phase: outcomes and latency (receipt to result),
   counted by the executor threads with atomic adds and read by the main
   thread for /metrics. Index: operation * 2 + phase. */
typedef struct {
    uint64_t ok, failed, retry;
    zhist_t lat;
} s_opstat_t;

static s_opstat_t *s_opstats;

static volatile sig_atomic_t s_stop, s_dump;
static pthread_mutex_t s_counts_mu = PTHREAD_MUTEX_INITIALIZER;
static s_counts_t s_counts;

static void s_on_signal(int sig)
{
    if (sig == SIGUSR1)
        s_dump = 1;
    else
        s_stop = 1;
}

int64_t wrk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const wrk_op_t *s_find_op(const wrk_system_t *sys, const char *name)
{
    for (int i = 0; i < sys->nops; i++)
        if (strcmp(sys->ops[i].name, name) == 0)
            return &sys->ops[i];
    return NULL;
}

/* ---- executors -------------------------------------------------------- */

static void s_result(msgpack_sbuffer *out, const msg_t *req, wrk_status_t st, const wrk_ctx_t *c)
{
    msg_t m;
    msgpack_packer pk;
    msg_init(&m, MSG_RESULT);
    strcpy(m.id, req->id);
    strcpy(m.step, req->step);
    m.phase = req->type == MSG_COMPENSATE ? MSG_PHASE_COMPENSATION : MSG_PHASE_ACTION;
    m.attempt = req->attempt;
    m.lease = req->lease; /* the orchestrator counts only its latest lease */
    m.status = st == WRK_OK       ? MSG_STATUS_OK
               : st == WRK_FAILED ? MSG_STATUS_FAILED
                                  : MSG_STATUS_RETRY;
    if (c) {
        snprintf(m.code, sizeof m.code, "%s", c->code);
        snprintf(m.text, sizeof m.text, "%s", c->message);
        if (st == WRK_OK) {
            m.output = (const uint8_t *)c->result.data;
            m.output_len = c->result.size;
        }
    }
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msg_pack(&m, &pk);
}

static void s_run_job(s_exec_t *x, const void *body, size_t len, msgpack_sbuffer *out, wrk_ctx_t *c)
{
    msg_t m;
    char err[MSG_TEXT_MAX + 1];
    wrk_status_t st;
    if (msg_decode(body, len, &m, err, sizeof err) ||
        (m.type != MSG_EXECUTE && m.type != MSG_COMPENSATE)) {
        zlog_warn("dropped a bad job: %s", err);
        msgpack_sbuffer_clear(out);
        return;
    }
    const wrk_op_t *op = s_find_op(x->sys, m.op);
    int64_t t0 = zclock_usecs();
    c->nparams = 0;
    c->replays = 0; /* counted below even when the step never ran */
    if (!op) {
        wrk_fail(c, "unknown_operation", "system %s has no operation %s", x->sys->name, m.op);
        st = WRK_FAILED;
    } else if ((c->nparams = msg_params_parse(m.params, m.params_len, c->params, err, sizeof err)) <
               0) {
        c->nparams = 0;
        wrk_fail(c, "bad_params", "%s", err);
        st = WRK_FAILED;
    } else if (!(c->db = wrk_pool_acquire(x->pool, err, sizeof err))) {
        st = wrk_retry_later(c, "%s", err);
    } else {
        c->saga = m.id;
        c->step = m.step;
        c->op = m.op;
        c->phase = m.type == MSG_COMPENSATE ? MSG_PHASE_COMPENSATION : MSG_PHASE_ACTION;
        c->attempt = m.attempt;
        c->now_ms = wrk_now_ms();
        c->statement_timeout_ms = x->cfg->statement_timeout_ms;
        c->iso = x->cfg->isolation;
        st = wrk_step_run(c, op, &x->cfg->faults);
        wrk_pool_release(x->pool, &c->db, c->broken);
    }
    if (op && s_opstats) {
        s_opstat_t *os = &s_opstats[(op - x->sys->ops) * 2 + (m.type == MSG_COMPENSATE)];
        __atomic_fetch_add(st == WRK_OK       ? &os->ok
                           : st == WRK_FAILED ? &os->failed
                                              : &os->retry,
                           1, __ATOMIC_RELAXED);
        zhist_observe_atomic(&os->lat, (uint64_t)(zclock_usecs() - t0));
    }
    pthread_mutex_lock(&s_counts_mu);
    if (st == WRK_OK)
        s_counts.ok++;
    else if (st == WRK_FAILED)
        s_counts.failed++;
    else
        s_counts.retry++;
    if (c->duplicate)
        s_counts.duplicates++;
    s_counts.replays += c->replays;
    pthread_mutex_unlock(&s_counts_mu);
    if (st == WRK_OK)
        zlog_debug("%s %s/%s %s try %u: ok", m.type == MSG_COMPENSATE ? "compensate" : "execute",
                   m.id, m.step, m.op, m.attempt);
    else {
        /* A step that did not succeed is worth a line a log tool can
           select on (failures at info, retries at debug). */
        char attempt[16], lease[24];
        snprintf(attempt, sizeof attempt, "%u", m.attempt);
        snprintf(lease, sizeof lease, "%llu", (unsigned long long)m.lease);
        zlog_kv(st == WRK_FAILED ? ZLOG_INFO : ZLOG_DEBUG,
                (const char *[]){ "saga", m.id, "step", m.step, "system", x->sys->name, "operation",
                                  m.op, "instance", x->cfg->instance, "attempt", attempt, "lease",
                                  lease, "code", c->code, "reason", c->message, NULL },
                "%s %s", m.type == MSG_COMPENSATE ? "compensation" : "step",
                st == WRK_FAILED ? "failed" : "answered retry later");
    }
    s_result(out, &m, st, c);
    msg_clear(&m);
}

static void *s_executor(void *arg)
{
    s_exec_t *x = arg;
    msgpack_sbuffer out;
    wrk_ctx_t *c = malloc(sizeof *c);
    msgpack_sbuffer_init(&out);
    if (!c)
        return NULL;
    wrk_ctx_init(c);
    c->system = x->sys;
    for (;;) {
        zmq_msg_t job;
        zmq_msg_init(&job);
        if (zmq_msg_recv(&job, x->thread_end, 0) < 0) {
            zmq_msg_close(&job);
            break;
        }
        if (zmq_msg_size(&job) == 0) { /* empty message: stop */
            zmq_msg_close(&job);
            break;
        }
        s_run_job(x, zmq_msg_data(&job), zmq_msg_size(&job), &out, c);
        zmq_msg_close(&job);
        /* An empty reply still frees the executor for the next job. */
        zmq_send(x->thread_end, out.data ? out.data : "", out.size, 0);
    }
    wrk_ctx_release(c);
    free(c);
    msgpack_sbuffer_destroy(&out);
    return NULL;
}

/* ---- main thread ------------------------------------------------------ */

static void s_send_ready(void *dealer, const wrk_system_t *sys, const s_config_t *cfg,
                         msgpack_sbuffer *out)
{
    msg_t m;
    msgpack_packer pk;
    msg_init(&m, MSG_READY);
    snprintf(m.system, sizeof m.system, "%s", sys->name);
    snprintf(m.instance, sizeof m.instance, "%s", cfg->instance);
    snprintf(m.version, sizeof m.version, "v%s", ZSAGA_VERSION);
    for (char *p = m.version; *p; p++)
        if (*p == '.')
            *p = '_';
    m.capacity = cfg->capacity;
    for (int i = 0; i < sys->nops && i < MSG_MAX_OPS; i++)
        snprintf(m.ops[m.nops++], sizeof m.ops[0], "%s", sys->ops[i].name);
    /* Each operation's schema, so zsagad checks params at submit. */
    msgpack_sbuffer schemas;
    msgpack_sbuffer_init(&schemas);
    msgpack_packer_init(&pk, &schemas, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, m.nops);
    for (uint32_t i = 0; i < m.nops; i++) {
        mp_pack_cstr(&pk, sys->ops[i].name);
        msgpack_pack_map(&pk, 2);
        mp_pack_kv_str(&pk, "params", sys->ops[i].params ? sys->ops[i].params : "");
        mp_pack_kv_str(&pk, "outputs", sys->ops[i].outputs ? sys->ops[i].outputs : "");
    }
    m.raw = (const uint8_t *)schemas.data;
    m.raw_len = schemas.size;
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msg_pack(&m, &pk);
    msgpack_sbuffer_destroy(&schemas);
    zmq_send(dealer, out->data, out->size, ZMQ_DONTWAIT);
}

static void s_pack_metrics(msgpack_packer *pk, wrk_pool_t *pool)
{
    wrk_pool_stats_t ps;
    s_counts_t c;
    wrk_pool_stats(pool, &ps);
    pthread_mutex_lock(&s_counts_mu);
    c = s_counts;
    pthread_mutex_unlock(&s_counts_mu);
    msgpack_pack_map(pk, 20);
    mp_pack_kv_uint(pk, "pool_total", ps.total);
    mp_pack_kv_uint(pk, "pool_max", ps.max);
    mp_pack_kv_uint(pk, "pool_active", ps.active);
    mp_pack_kv_uint(pk, "pool_idle", ps.idle);
    mp_pack_kv_uint(pk, "pool_waiting", ps.waiting);
    mp_pack_kv_uint(pk, "acquisitions", ps.acquisitions);
    mp_pack_kv_uint(pk, "acquire_timeouts", ps.acquire_timeouts);
    mp_pack_kv_uint(pk, "acquire_us", ps.acquire_us);
    mp_pack_kv_uint(pk, "queries", ps.queries);
    mp_pack_kv_uint(pk, "query_us", ps.query_us);
    mp_pack_kv_uint(pk, "slow_queries", ps.slow_queries);
    mp_pack_kv_uint(pk, "db_errors", ps.errors);
    mp_pack_kv_uint(pk, "connects", ps.connects);
    mp_pack_kv_uint(pk, "connect_failures", ps.connect_failures);
    mp_pack_kv_uint(pk, "dropped", ps.dropped);
    mp_pack_kv_uint(pk, "steps_ok", c.ok);
    mp_pack_kv_uint(pk, "steps_failed", c.failed);
    mp_pack_kv_uint(pk, "steps_retry", c.retry);
    mp_pack_kv_uint(pk, "duplicates", c.duplicates);
    mp_pack_kv_uint(pk, "db_replays", c.replays);
}

/* One heartbeat, packed once, to every orchestrator. */
static void s_send_heartbeat(const s_orch_t *orch, int norch, wrk_pool_t *pool, uint32_t inflight,
                             msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msg_pack_header(&pk, MSG_HEARTBEAT, 4);
    mp_pack_kv_uint(&pk, "inflight", inflight);
    mp_pack_cstr(&pk, "metrics");
    s_pack_metrics(&pk, pool);
    for (int k = 0; k < norch; k++)
        zmq_send(orch[k].sock, out->data, out->size, ZMQ_DONTWAIT);
}

static void s_log_metrics(wrk_pool_t *pool)
{
    wrk_pool_stats_t ps;
    wrk_pool_stats(pool, &ps);
    pthread_mutex_lock(&s_counts_mu);
    s_counts_t c = s_counts;
    pthread_mutex_unlock(&s_counts_mu);
    zlog_info(
        "pool total=%u active=%u idle=%u waiting=%u acquisitions=%llu timeouts=%llu "
        "mean_acquire_us=%llu queries=%llu round_trips=%llu mean_query_us=%llu slow=%llu "
        "errors=%llu connects=%llu connect_failures=%llu dropped=%llu; steps ok=%llu failed=%llu "
        "retry=%llu duplicates=%llu db_replays=%llu",
        ps.total, ps.active, ps.idle, ps.waiting, (unsigned long long)ps.acquisitions,
        (unsigned long long)ps.acquire_timeouts,
        (unsigned long long)(ps.acquisitions ? ps.acquire_us / ps.acquisitions : 0),
        (unsigned long long)ps.queries, (unsigned long long)ps.trips,
        (unsigned long long)(ps.queries ? ps.query_us / ps.queries : 0),
        (unsigned long long)ps.slow_queries, (unsigned long long)ps.errors,
        (unsigned long long)ps.connects, (unsigned long long)ps.connect_failures,
        (unsigned long long)ps.dropped, (unsigned long long)c.ok, (unsigned long long)c.failed,
        (unsigned long long)c.retry, (unsigned long long)c.duplicates,
        (unsigned long long)c.replays);
}

/* ---- /metrics ------------------------------------------------------------ */

typedef struct {
    const wrk_system_t *sys;
    const s_config_t *cfg;
    wrk_pool_t *pool;
    uint32_t inflight;
} s_http_ctx_t;

static void s_http(void *arg, zhttp_req_t *req)
{
    s_http_ctx_t *h = arg;
    const char *path = zhttp_path(req);
    if (strcmp(path, "/healthz") == 0) {
        zhttp_reply(req, 200, "text/plain", "ok\n", 3);
        return;
    }
    if (strcmp(path, "/metrics") != 0 || strcmp(zhttp_method(req), "GET") != 0) {
        zhttp_reply(req, 404, "text/plain", "not found\n", 10);
        return;
    }
    wrk_pool_stats_t ps;
    s_counts_t c;
    wrk_pool_stats(h->pool, &ps);
    pthread_mutex_lock(&s_counts_mu);
    c = s_counts;
    pthread_mutex_unlock(&s_counts_mu);
    zmx_t b;
    zmx_init(&b);
    zmx_family(&b, "zsaga_worker_up", "gauge", "1 while the worker runs");
    zmx_sample(&b, "zsaga_worker_up",
               (const char *[]){ "system", h->sys->name, "instance", h->cfg->instance, "version",
                                 ZSAGA_VERSION, NULL },
               1);
    zmx_family(&b, "zsaga_worker_inflight", "gauge", "steps held now (running or queued)");
    zmx_sample(&b, "zsaga_worker_inflight", NULL, h->inflight);
    zmx_family(&b, "zsaga_worker_capacity", "gauge", "steps run at once at most");
    zmx_sample(&b, "zsaga_worker_capacity", NULL, h->cfg->capacity);
    zmx_family(&b, "zsaga_worker_pool_connections", "gauge", "database connections by state");
    zmx_sample(&b, "zsaga_worker_pool_connections", (const char *[]){ "state", "active", NULL },
               ps.active);
    zmx_sample(&b, "zsaga_worker_pool_connections", (const char *[]){ "state", "idle", NULL },
               ps.idle);
    zmx_sample(&b, "zsaga_worker_pool_connections", (const char *[]){ "state", "total", NULL },
               ps.total);
    zmx_family(&b, "zsaga_worker_pool_max", "gauge", "connections allowed at most");
    zmx_sample(&b, "zsaga_worker_pool_max", NULL, ps.max);
    zmx_family(&b, "zsaga_worker_pool_waiting", "gauge", "executors waiting for a connection");
    zmx_sample(&b, "zsaga_worker_pool_waiting", NULL, ps.waiting);
    static const char *const names[][2] = {
        { "zsaga_worker_pool_acquisitions_total", "connections handed out" },
        { "zsaga_worker_pool_acquire_timeouts_total", "waits for a connection that timed out" },
        { "zsaga_worker_db_queries_total", "database statements run" },
        { "zsaga_worker_db_round_trips_total", "round trips to the database server" },
        { "zsaga_worker_db_slow_queries_total", "statements over the slow-query threshold" },
        { "zsaga_worker_db_errors_total", "database errors" },
        { "zsaga_worker_pool_connects_total", "connections opened" },
        { "zsaga_worker_pool_connect_failures_total", "connections that failed to open" },
        { "zsaga_worker_pool_dropped_total", "connections closed as broken" },
        { "zsaga_worker_duplicates_total", "steps already applied, answered from the ledger" },
        { "zsaga_worker_db_replays_total", "transactions replayed after a serialization failure" },
    };
    const uint64_t vals[] = {
        ps.acquisitions, ps.acquire_timeouts, ps.queries, ps.trips,     ps.slow_queries, ps.errors,
        ps.connects,     ps.connect_failures, ps.dropped, c.duplicates, c.replays
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        zmx_family(&b, names[i][0], "counter", names[i][1]);
        zmx_sample(&b, names[i][0], NULL, (double)vals[i]);
    }
    zmx_family(&b, "zsaga_worker_pool_acquire_seconds", "histogram",
               "wait for a database connection");
    zmx_hist(&b, "zsaga_worker_pool_acquire_seconds", NULL, wrk_pool_acquire_hist(h->pool), 1e6);
    zmx_family(&b, "zsaga_worker_db_transaction_seconds", "histogram",
               "database time of one step's transaction");
    zmx_hist(&b, "zsaga_worker_db_transaction_seconds", NULL, wrk_pool_db_hist(h->pool), 1e6);
    static const char *const phases[2] = { "action", "compensation" };
    zmx_family(&b, "zsaga_worker_steps_total", "counter", "steps by operation, phase and outcome");
    for (int i = 0; i < h->sys->nops; i++)
        for (int ph = 0; ph < 2; ph++) {
            s_opstat_t *os = &s_opstats[i * 2 + ph];
            const char *op = h->sys->ops[i].name;
            uint64_t v[3] = { __atomic_load_n(&os->ok, __ATOMIC_RELAXED),
                              __atomic_load_n(&os->failed, __ATOMIC_RELAXED),
                              __atomic_load_n(&os->retry, __ATOMIC_RELAXED) };
            static const char *const outs[3] = { "ok", "failed", "retry" };
            for (int k = 0; k < 3; k++)
                zmx_sample(&b, "zsaga_worker_steps_total",
                           (const char *[]){ "operation", op, "phase", phases[ph], "outcome",
                                             outs[k], NULL },
                           (double)v[k]);
        }
    zmx_family(&b, "zsaga_worker_step_seconds", "histogram",
               "receipt to result of a step, by operation and phase");
    for (int i = 0; i < h->sys->nops; i++)
        for (int ph = 0; ph < 2; ph++)
            zmx_hist(
                &b, "zsaga_worker_step_seconds",
                (const char *[]){ "operation", h->sys->ops[i].name, "phase", phases[ph], NULL },
                &s_opstats[i * 2 + ph].lat, 1e6);
    if (b.oom)
        zhttp_reply(req, 500, "text/plain", "out of memory\n", 14);
    else
        zhttp_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    zmx_free(&b);
}

static int s_run(const wrk_system_t *sys, s_config_t *cfg)
{
    char err[1024];
    int rc = 1;
    wrk_pool_t *pool = NULL;
    void *ctx = NULL;
    s_orch_t *orch = NULL;
    int norch = 0;
    s_exec_t *ex = NULL;
    zlist_t *backlog = zlist_new();
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    uint32_t nex = cfg->capacity, started = 0;
    int refused = 0;

    zhttp_t *http = NULL;
    s_http_ctx_t hctx = { sys, cfg, NULL, 0 };
    if (!cfg->pool.max)
        cfg->pool.max = cfg->capacity;
    if (!(s_opstats = calloc((size_t)sys->nops * 2 + 1, sizeof *s_opstats))) {
        zlog_error("out of memory");
        goto done;
    }
    for (int i = 0; i < sys->nops * 2; i++)
        zhist_init_latency(&s_opstats[i].lat);
    if (!(pool = wrk_pool_new(&cfg->pool, err, sizeof err))) {
        zlog_error("%s", err);
        goto done;
    }
    if (cfg->migrate) {
        wrk_conn_t *db = wrk_pool_acquire(pool, err, sizeof err);
        if (!db ||
            wrk_migrate_up(db, sys->migrations, sys->nmigrations, -1, NULL, err, sizeof err)) {
            zlog_error("schema: %s", err);
            wrk_pool_release(pool, &db, true);
            goto done;
        }
        wrk_pool_release(pool, &db, false);
    }
    ctx = zmq_ctx_new();
    size_t cap = 1;
    for (const char *c = cfg->orchestrator; *c; c++)
        cap += *c == ',';
    if (!(orch = calloc(cap, sizeof *orch))) {
        zlog_error("out of memory");
        goto done;
    }
    for (const char *e = cfg->orchestrator; *e;) {
        size_t n = strcspn(e, ",");
        if (n >= sizeof orch->ep) {
            zlog_error("endpoint too long in --orchestrator");
            goto done;
        }
        if (n) {
            memcpy(orch[norch].ep, e, n);
            orch[norch].ep[n] = 0;
            orch[norch].last_reply = wrk_now_ms();
            norch++;
        }
        e += n + (e[n] == ',');
    }
    if (!norch) {
        zlog_error("--orchestrator names no endpoint");
        goto done;
    }
    int linger = 2000, hwm = 100000, ivl = 100, ivl_max = 1000;
    if (cfg->insecure)
        zlog_warn("INSECURE: plaintext connection to zsagad, which is not authenticated");
    for (int k = 0; k < norch; k++) {
        void *dealer = orch[k].sock = zmq_socket(ctx, ZMQ_DEALER);
        /* No routing id of our own: zsagad's ZeroMQ gives each connection
           one, so no peer can take another's. We name ourselves in ready.
           With zsagad's public key, a process that is not zsagad cannot
           complete the handshake, so it can never send us a step. */
        if (!cfg->insecure && zkeys_client(dealer, cfg->key, cfg->server_key, err, sizeof err)) {
            zlog_error("%s", err);
            goto done;
        }
        zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
        zmq_setsockopt(dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
        if (norch > 1) {
            /* Several orchestrators, some standing by (not bound): send
               only on a connection that is up, never into a queue for one
               that is not there. */
            int on = 1;
            zmq_setsockopt(dealer, ZMQ_IMMEDIATE, &on, sizeof on);
        }
        if (zmq_connect(dealer, orch[k].ep)) {
            zlog_error("cannot connect to %s: %s", orch[k].ep, zmq_strerror(zmq_errno()));
            goto done;
        }
    }
    ex = calloc(nex, sizeof *ex);
    if (!ex || !backlog)
        goto done;
    for (uint32_t i = 0; i < nex; i++) {
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://exec-%u", i);
        ex[i] = (s_exec_t){
            sys,   cfg, pool, ctx, (int)i, 0, zmq_socket(ctx, ZMQ_PAIR), zmq_socket(ctx, ZMQ_PAIR),
            false, 0
        };
        zmq_setsockopt(ex[i].main_end, ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_bind(ex[i].main_end, ep) || zmq_connect(ex[i].thread_end, ep) ||
            pthread_create(&ex[i].thread, NULL, s_executor, &ex[i]))
            goto done;
        started++;
    }
    char shown[512];
    zlog_info("worker %s (system %s) up: orchestrator %s, database %s, capacity %u, pool %u-%u",
              cfg->instance, sys->name, cfg->orchestrator,
              wrk_db_redact(cfg->db_uri, shown, sizeof shown), cfg->capacity, cfg->pool.min,
              cfg->pool.max);
    for (int k = 0; k < norch; k++)
        s_send_ready(orch[k].sock, sys, cfg, &out);

    hctx.pool = pool;
    if (cfg->http) {
        if (!(http = zhttp_new(cfg->http, s_http, &hctx, err, sizeof err))) {
            zlog_error("%s", err);
            goto done;
        }
        const char *colon = strrchr(cfg->http, ':');
        zlog_info("metrics on http://%.*s:%u/metrics", (int)(colon - cfg->http), cfg->http,
                  zhttp_port(http));
    }
    /* Poll items: the orchestrators' sockets, then the executors, then
       HTTP. */
    zmq_pollitem_t *items = calloc(nex + (size_t)norch + 1, sizeof *items);
    if (!items)
        goto done;
    for (int k = 0; k < norch; k++)
        items[k] = (zmq_pollitem_t){ orch[k].sock, 0, ZMQ_POLLIN, 0 };
    zmq_pollitem_t *exitems = items + norch;
    for (uint32_t i = 0; i < nex; i++)
        exitems[i] = (zmq_pollitem_t){ ex[i].main_end, 0, ZMQ_POLLIN, 0 };
    int nitems = (int)nex + norch;
    if (http)
        items[nitems++] = (zmq_pollitem_t){ NULL, zhttp_fd(http), ZMQ_POLLIN, 0 };
    uint32_t busy = 0;
    int64_t next_hb = 0, stop_at = 0;
    /* systemd (Type=notify): ready once connected and executing; the
       watchdog is pinged with each heartbeat. No-ops elsewhere. */
    uint64_t watchdog_us = 0;
    if (sd_watchdog_enabled(0, &watchdog_us) <= 0)
        watchdog_us = 0;
    sd_notifyf(0, "READY=1\nSTATUS=serving %s as %s", sys->name, cfg->instance);
    for (;;) {
        int64_t now = wrk_now_ms();
        if (s_stop && !stop_at) {
            stop_at = now + 10000;
            zlog_info("stopping: finishing %u steps in hand", busy);
        }
        if (stop_at && (busy == 0 || now > stop_at))
            break;
        if (s_dump) {
            s_dump = 0;
            s_log_metrics(pool);
        }
        if (now >= next_hb) {
            if (watchdog_us)
                sd_notify(0, "WATCHDOG=1");
            s_send_heartbeat(orch, norch, pool, busy + (uint32_t)zlist_size(backlog), &out);
            for (int k = 0; k < norch; k++) {
                if (now - orch[k].last_reply > 3 * (int64_t)cfg->heartbeat_ms) {
                    /* This zsagad has been silent: it may be new, or it may
                       have stopped while another took over its journal and
                       its endpoint. Connect afresh (to whoever listens
                       there now) and introduce us again. */
                    zmq_disconnect(orch[k].sock, orch[k].ep);
                    zmq_connect(orch[k].sock, orch[k].ep);
                    s_send_ready(orch[k].sock, sys, cfg, &out);
                    orch[k].last_reply = now;
                }
            }
            wrk_pool_maintain(pool);
            next_hb = now + cfg->heartbeat_ms;
        }
        long timeout = (long)(next_hb - now);
        if (http && timeout > 250)
            timeout = 250; /* MHD's connection timeouts */
        if (zmq_poll(items, nitems, timeout < 0 ? 0 : timeout) < 0)
            continue; /* EINTR: a signal; the top of the loop looks at it */
        if (http) {
            hctx.inflight = busy + (uint32_t)zlist_size(backlog);
            zhttp_run(http);
        }
        for (uint32_t i = 0; i < nex; i++) {
            if (!(exitems[i].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t res;
            zmq_msg_init(&res);
            if (zmq_msg_recv(&res, ex[i].main_end, 0) >= 0 && zmq_msg_size(&res) > 0)
                zmq_msg_send(&res, orch[ex[i].from].sock, ZMQ_DONTWAIT);
            zmq_msg_close(&res);
            ex[i].busy = false;
            busy--;
            s_job_t *next = zlist_pop(backlog);
            if (next) {
                zmq_msg_send(&next->msg, ex[i].main_end, 0);
                zmq_msg_close(&next->msg);
                ex[i].from = next->from;
                free(next);
                ex[i].busy = true;
                busy++;
            }
        }
        for (int k = 0; k < norch; k++) {
            void *dealer = orch[k].sock;
            while (!stop_at && (items[k].revents & ZMQ_POLLIN)) {
                s_job_t *job = malloc(sizeof *job);
                if (!job)
                    break;
                zmq_msg_t *body = &job->msg;
                job->from = k;
                zmq_msg_init(body);
                if (zmq_msg_recv(body, dealer, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(body);
                    free(job);
                    break;
                }
                orch[k].last_reply = wrk_now_ms();
                msg_t m;
                const char *code =
                    msg_decode(zmq_msg_data(body), zmq_msg_size(body), &m, err, sizeof err);
                if (code) {
                    zlog_warn("bad message from zsagad (%s): %s", code, err);
                } else if (m.type == MSG_HEARTBEAT) {
                    if (m.boot == 0)
                        s_send_ready(dealer, sys, cfg, &out);
                } else if (m.type == MSG_ERROR) {
                    /* zsagad refused our ready. A key without the grant, or an
                       instance id another key holds, is a configuration error:
                       stop loudly. A full journal passes: we ask again. */
                    zlog_error("zsagad refused this worker: %s: %s", m.code, m.text);
                    if (strcmp(m.code, "journal_full") != 0) {
                        refused = 1;
                        s_stop = 1;
                    }
                } else if (m.type == MSG_EXECUTE || m.type == MSG_COMPENSATE) {
                    uint32_t i = 0;
                    while (i < nex && ex[i].busy)
                        i++;
                    if (i < nex) {
                        zmq_msg_send(body, ex[i].main_end, 0);
                        ex[i].from = k;
                        ex[i].busy = true;
                        busy++;
                    } else if (zlist_size(backlog) < MAX_BACKLOG) {
                        zlist_append(backlog, job);
                        job = NULL; /* the backlog owns it now */
                        body = NULL;
                    } else {
                        /* Too much work queued: say so rather than hold it. */
                        wrk_ctx_t *c = calloc(1, sizeof *c);
                        if (c) {
                            wrk_ctx_init(c);
                            wrk_retry_later(c, "worker %s overloaded", cfg->instance);
                            s_result(&out, &m, WRK_RETRY, c);
                            zmq_send(dealer, out.data, out.size, ZMQ_DONTWAIT);
                            wrk_ctx_release(c);
                            free(c);
                        }
                    }
                } else
                    zlog_warn("unexpected '%s' from zsagad", msg_type_name(m.type));
                msg_clear(&m);
                if (job) {
                    zmq_msg_close(body);
                    free(job);
                }
            }
        }
    }
    free(items);
    rc = refused;
    zlog_info("stopped");
done:
    for (uint32_t i = 0; i < started; i++)
        zmq_send(ex[i].main_end, "", 0, 0);
    for (uint32_t i = 0; i < started; i++)
        pthread_join(ex[i].thread, NULL);
    for (uint32_t i = 0; ex && i < nex; i++) {
        if (ex[i].main_end)
            zmq_close(ex[i].main_end);
        if (ex[i].thread_end)
            zmq_close(ex[i].thread_end);
    }
    free(ex);
    if (backlog) {
        s_job_t *j;
        while ((j = zlist_pop(backlog))) {
            zmq_msg_close(&j->msg);
            free(j);
        }
        zlist_destroy(&backlog);
    }
    for (int k = 0; orch && k < norch; k++)
        if (orch[k].sock)
            zmq_close(orch[k].sock);
    free(orch);
    if (ctx)
        zmq_ctx_term(ctx);
    zhttp_destroy(&http);
    if (pool)
        s_log_metrics(pool);
    wrk_pool_destroy(&pool);
    free(s_opstats);
    s_opstats = NULL;
    msgpack_sbuffer_destroy(&out);
    return rc;
}

/* ---- command line ----------------------------------------------------- */

static void s_usage(const wrk_system_t *sys, FILE *f)
{
    fprintf(
        f,
        "usage: zsaga-worker-%s [run] [options]\n"
        "       zsaga-worker-%s migrate status|up [VERSION] --db URI\n"
        "       zsaga-worker-%s migrate down VERSION --force --db URI   (drops data: stop\n"
        "                           every worker of this system first)\n"
        "       zsaga-worker-%s catalogue   (its operations, as docs/operations-catalogue.md)\n"
        "       zsaga-worker-%s --version\n"
        "%s"
        "options:\n"
        "  --config FILE            read options from FILE first (INI, keys are these\n"
        "                           options' names; see deploy/config/worker.conf)\n"
        "  --db URI                 database (default sqlite:%s.db); see docs/operations.md\n"
        "                           for TLS. A password here shows in ps: use --db-file\n"
        "  --db-file FILE           read the database URI from FILE (mode 0600)\n"
        "  --orchestrator ENDPOINT  zsagad's worker socket (default tcp://127.0.0.1:5571);\n"
        "                           several, comma-separated: an active zsagad and its\n"
        "                           standbys\n"
        "  --key FILE               this worker's key pair (NAME.key_secret, mode 0600)\n"
        "  --server-key FILE        zsagad's public key (zsagad.key): only it may send steps\n"
        "  --insecure               plaintext, zsagad not authenticated: tests only\n"
        "  --instance ID            this worker's id (default %s-HOST-PID)\n"
        "  --capacity N             steps run at once (default 8)\n"
        "  --pool-min N --pool-max N   connections kept and allowed (default 1 and capacity)\n"
        "  --acquire-timeout MS     wait for a free connection (default 5000)\n"
        "  --statement-timeout MS   longest a step's transaction may run (default 30000)\n"
        "  --isolation LEVEL        read-committed (default), repeatable-read or serializable;\n"
        "                           an operation that needs a stronger level keeps it\n"
        "  --slow-query MS          count statements slower than this (default 200)\n"
        "  --heartbeat MS           heartbeat interval (default 1000)\n"
        "  --fault SPEC             inject failures (see docs/operations.md); also ZSAGA_FAULTS\n"
        "  --no-migrate             do not apply pending migrations at start\n"
        "  --log-level LEVEL        error, warn, info or debug\n"
        "  --log-format FORMAT      text, logfmt or json (default text)\n"
        "  --http HOST:PORT         serve Prometheus metrics at /metrics on this loopback\n"
        "                           address (default: none)\n"
        "  --force                  migrate down: really drop what it drops\n"
        "Send SIGUSR1 to print pool metrics.\n"
        "exit status: 0 done (or a clean shutdown), 1 failed (or refused by zsagad), 2 usage\n",
        sys->name, sys->name, sys->name, sys->name, sys->name,
        sys->commands_help ? sys->commands_help : "", sys->name, sys->name);
}

typedef struct {
    s_config_t *cfg;
    const char *prog;
    int level, format;
    bool force, version;
} s_parse_t;

/* The catalogue: what docs/operations-catalogue.md says of this system,
   printed from the same table the worker registers, so the two cannot
   drift (a test compares them). */
static void s_catalogue(const wrk_system_t *sys, FILE *f)
{
    fprintf(f, "## %s\n\n", sys->name);
    fprintf(f, "| operation | params | outputs | rule | fails with |\n|---|---|---|---|---|\n");
    for (int i = 0; i < sys->nops; i++) {
        const wrk_op_t *op = &sys->ops[i];
        fprintf(f, "| `%s` | %s%s%s | %s%s%s | %s | %s |\n", op->name,
                op->params && op->params[0] ? "`" : "",
                op->params && op->params[0] ? op->params : "none",
                op->params && op->params[0] ? "`" : "", op->outputs && op->outputs[0] ? "`" : "",
                op->outputs && op->outputs[0] ? op->outputs : "none",
                op->outputs && op->outputs[0] ? "`" : "", op->rule ? op->rule : "",
                op->errors && op->errors[0] ? op->errors : "-");
    }
    fprintf(f, "\n");
}

static int s_uint(const char *prog, const char *opt, const char *v, uint32_t min, uint32_t max,
                  uint32_t *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (end == v || *end || v[0] == '-' || n < min || n > max) {
        fprintf(stderr, "%s: --%s must be a whole number from %u to %u, not '%s'\n", prog, opt, min,
                max, v);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

static int s_apply(void *arg, int c, const char *v)
{
    s_parse_t *p = arg;
    s_config_t *cfg = p->cfg;
    const char *prog = p->prog;
    char err[512];
    switch (c) {
    case 'C': return 0;
    case 'd': return (cfg->db_uri = zcfg_keep(v)) ? 0 : -1;
    case 'D':
        if (zcfg_read_secret(v, cfg->db_secret, sizeof cfg->db_secret, err, sizeof err)) {
            fprintf(stderr, "%s: --db-file: %s\n", prog, err);
            return -1;
        }
        cfg->db_uri = cfg->db_secret;
        return 0;
    case 'o': return (cfg->orchestrator = zcfg_keep(v)) ? 0 : -1;
    case 'k': return (cfg->key = zcfg_keep(v)) ? 0 : -1;
    case 'K': return (cfg->server_key = zcfg_keep(v)) ? 0 : -1;
    case 'X': cfg->insecure = true; return 0;
    case 'i':
        if (!msg_id_valid(v, strlen(v))) {
            fprintf(stderr, "%s: --instance must be 1-%d characters of [A-Za-z0-9._:-]\n", prog,
                    MSG_ID_MAX);
            return -1;
        }
        snprintf(cfg->instance, sizeof cfg->instance, "%s", v);
        return 0;
    case 'c': return s_uint(prog, "capacity", v, 1, MAX_EXECUTORS, &cfg->capacity);
    case 'n': return s_uint(prog, "pool-min", v, 0, 1024, &cfg->pool.min);
    case 'x': return s_uint(prog, "pool-max", v, 1, 1024, &cfg->pool.max);
    case 'a': return s_uint(prog, "acquire-timeout", v, 1, 3600000, &cfg->pool.acquire_timeout_ms);
    case 's': return s_uint(prog, "statement-timeout", v, 1, 3600000, &cfg->statement_timeout_ms);
    case 'q': return s_uint(prog, "slow-query", v, 1, 3600000, &cfg->pool.slow_query_ms);
    case 'b': return s_uint(prog, "heartbeat", v, 10, 600000, &cfg->heartbeat_ms);
    case 'f':
        if (wrk_fault_parse(&cfg->faults, v, err, sizeof err)) {
            fprintf(stderr, "%s: --fault: %s\n", prog, err);
            return -1;
        }
        return 0;
    case 'I': {
        int iso = wrk_db_iso_parse(v);
        if (iso < 0) {
            fprintf(stderr,
                    "%s: --isolation must be read-committed, repeatable-read or serializable\n",
                    prog);
            return -1;
        }
        cfg->isolation = (db_iso_t)iso;
        return 0;
    }
    case 'M': cfg->migrate = false; return 0;
    case 'F': p->force = true; return 0;
    case 'V': p->version = true; return 0;
    case 'h' + 256: return (cfg->http = zcfg_keep(v)) ? 0 : -1;
    case 'L':
        if ((p->format = zlog_format_parse(v)) < 0) {
            fprintf(stderr, "%s: --log-format must be text, logfmt or json\n", prog);
            return -1;
        }
        return 0;
    case 'l':
        if ((p->level = zlog_level_parse(v)) < 0) {
            fprintf(stderr, "%s: unknown log level '%s'\n", prog, v);
            return -1;
        }
        return 0;
    default: return -1;
    }
}

int wrk_main(const wrk_system_t *sys, int argc, char **argv)
{
    static char default_db[256];
    char prog[64], err[512];
    static s_config_t cfg = {
        .orchestrator = "tcp://127.0.0.1:5571",
        .capacity = 8,
        .heartbeat_ms = 1000,
        .statement_timeout_ms = 30000,
        .pool = { .min = 1, .acquire_timeout_ms = 5000, .slow_query_ms = 200 },
        .migrate = true
    };
    snprintf(default_db, sizeof default_db, "sqlite:%s.db", sys->name);
    cfg.db_uri = default_db;
    snprintf(prog, sizeof prog, "worker-%s", sys->name);
    s_parse_t parse = { &cfg, prog, ZLOG_INFO, false, false };
    const char *env = getenv("ZSAGA_FAULTS");
    if (env && *env && wrk_fault_parse(&cfg.faults, env, err, sizeof err)) {
        fprintf(stderr, "%s: ZSAGA_FAULTS: %s\n", prog, err);
        return 2;
    }
    static const struct option opts[] = {
        { "config", required_argument, 0, 'C' },
        { "db", required_argument, 0, 'd' },
        { "db-file", required_argument, 0, 'D' },
        { "orchestrator", required_argument, 0, 'o' },
        { "key", required_argument, 0, 'k' },
        { "server-key", required_argument, 0, 'K' },
        { "insecure", no_argument, 0, 'X' },
        { "instance", required_argument, 0, 'i' },
        { "capacity", required_argument, 0, 'c' },
        { "pool-min", required_argument, 0, 'n' },
        { "pool-max", required_argument, 0, 'x' },
        { "acquire-timeout", required_argument, 0, 'a' },
        { "statement-timeout", required_argument, 0, 's' },
        { "slow-query", required_argument, 0, 'q' },
        { "isolation", required_argument, 0, 'I' },
        { "heartbeat", required_argument, 0, 'b' },
        { "fault", required_argument, 0, 'f' },
        { "no-migrate", no_argument, 0, 'M' },
        { "force", no_argument, 0, 'F' },
        { "version", no_argument, 0, 'V' },
        { "log-level", required_argument, 0, 'l' },
        { "log-format", required_argument, 0, 'L' },
        { "http", required_argument, 0, 'h' + 256 },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    int prc = zcfg_parse(argc, argv, "worker", NULL, opts, s_apply, &parse, err, sizeof err);
    if (prc == ZCFG_HELP) {
        s_usage(sys, stdout);
        return 0;
    }
    if (prc) {
        if (err[0])
            fprintf(stderr, "%s: %s\n", prog, err);
        else
            s_usage(sys, stderr);
        return 2;
    }
    int level = parse.level;
    zlog_init(prog, (zlog_level_t)level);
    zlog_set_format((zlog_format_t)parse.format);
    if (!cfg.instance[0]) {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        for (char *p = host; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", *p))
                *p = '-';
        snprintf(cfg.instance, sizeof cfg.instance, "%s-%.40s-%d", sys->name, host, (int)getpid());
    }
    cfg.pool.uri = cfg.db_uri;
    const char *cmd = optind < argc ? argv[optind] : "run";
    if (parse.version) {
        printf("zsaga-worker-%s %s\n", sys->name, ZSAGA_VERSION);
        return 0;
    }
    if (strcmp(cmd, "catalogue") == 0) {
        s_catalogue(sys, stdout);
        return 0;
    }
    bool migrate = strcmp(cmd, "migrate") == 0;
    const char *sub = migrate && optind + 1 < argc ? argv[optind + 1] : "status";
    if (migrate && strcmp(sub, "up") != 0 && strncmp(cfg.db_uri, "sqlite:", 7) == 0) {
        /* Status and down look at a database; they never create one. */
        char path[1024];
        snprintf(path, sizeof path, "%s", cfg.db_uri + 7);
        path[strcspn(path, "?")] = 0;
        if (access(path, F_OK) != 0) {
            fprintf(stderr,
                    "%s: no database at %s: nothing is migrated there (migrate up "
                    "creates it)\n",
                    prog, path);
            return 1;
        }
    }
    if (migrate && strcmp(sub, "down") == 0 && !parse.force) {
        int target = optind + 2 < argc ? atoi(argv[optind + 2]) : -1;
        fprintf(stderr,
                "%s: migrate down%s%s drops what these migrations made, and the data in "
                "it:\n",
                prog, target >= 0 ? " to " : "", target >= 0 ? argv[optind + 2] : "");
        for (int i = sys->nmigrations - 1; i >= 0; i--)
            if (sys->migrations[i].version > target)
                fprintf(stderr, "  %3d  %s\n", sys->migrations[i].version, sys->migrations[i].name);
        fprintf(stderr,
                "Workers of %s running on this database would fail every step, and sagas "
                "in flight could not compensate. Stop them all, take a backup, then run it "
                "again with --force.\n",
                sys->name);
        return 2;
    }
    if (strcmp(cmd, "run") == 0) {
        struct sigaction sa = { 0 };
        sa.sa_handler = s_on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGUSR1, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        srandom((unsigned)getpid() ^ (unsigned)wrk_now_ms());
        return s_run(sys, &cfg);
    }
    wrk_conn_t *db = wrk_db_connect(cfg.db_uri, err, sizeof err);
    if (!db) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }
    int rc;
    if (migrate) {
        int target = optind + 2 < argc ? atoi(argv[optind + 2]) : -1;
        if (strcmp(sub, "status") == 0)
            rc = wrk_migrate_status(db, sys->migrations, sys->nmigrations, stdout, err, sizeof err);
        else if (strcmp(sub, "up") == 0)
            rc = wrk_migrate_up(db, sys->migrations, sys->nmigrations, target, stdout, err,
                                sizeof err);
        else if (strcmp(sub, "down") == 0) {
            if (optind + 2 >= argc) {
                fprintf(stderr, "%s: migrate down needs a VERSION to go down to\n", prog);
                wrk_db_close(&db);
                return 2;
            }
            rc = wrk_migrate_down(db, sys->migrations, sys->nmigrations, target, stdout, err,
                                  sizeof err);
        } else {
            fprintf(stderr, "%s: migrate status|up|down [VERSION]\n", prog);
            wrk_db_close(&db);
            return 2;
        }
        if (rc)
            fprintf(stderr, "%s: %s\n", prog, err);
        rc = rc ? 1 : 0;
    } else if (strcmp(cmd, "seed-demo") == 0 && sys->seed_demo) {
        db_rc_t drc = DB_OK;
        rc = wrk_migrate_up(db, sys->migrations, sys->nmigrations, -1, NULL, err, sizeof err);
        if (!rc && !(drc = wrk_db_begin(db, DB_ISO_DEFAULT, 0)) && !(drc = sys->seed_demo(db)))
            drc = wrk_db_commit(db);
        if (drc) {
            snprintf(err, sizeof err, "%s", wrk_db_error(db));
            wrk_db_rollback(db);
        }
        if (rc || drc)
            fprintf(stderr, "%s: seed-demo: %s\n", prog, err);
        else
            printf("%s: demo data seeded\n", sys->name);
        rc = rc || drc ? 1 : 0;
    } else if (!sys->command ||
               (rc = sys->command(db, cmd, argc - optind - 1, argv + optind + 1)) < 0) {
        fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
        s_usage(sys, stderr);
        rc = 2;
    }
    wrk_db_close(&db);
    return rc;
}
