/*  zsaga-bench: throughput and latency of zsagad, with workers that do no
    database work. Prints figures; asserts nothing.

        zsaga-bench --clients EP --workers EP --events EP [-n N] [-k K] [-c C] [-w W]
                    [-r RATE] [-t STEP_TIMEOUT_MS] [--warmup N] [--pid PID]
                    [--no-workers | --workers-only]

    Runs W null workers on threads (each answers every step "ok" at once),
    keeps C sagas of K chained steps in flight until N have completed, and
    measures each saga from submit to its saga.completed event. With -r it
    is an open loop instead: RATE submits a second whatever is in flight.
    --warmup runs that many sagas first, uncounted (a fresh journal's first
    pages, the first connections). Every saga must complete: one that
    compensates or parks is counted and makes the exit status 1. The
    process's own CPU per saga is printed (its null workers included
    unless --no-workers). --workers-only runs just the W null workers until
    SIGINT or SIGTERM, as a process of their own (deploy/bench.sh does).
    With --pid it prints, every 5 s, that process's anonymous memory (its
    heap: the journal's map is file-backed and not counted) beside the
    sagas completed, active and kept in the journal.

    --partitions P: P zsagad processes serve the P partitions of one
    journal on PostgreSQL; --clients, --workers and --events then list
    their endpoints, comma-separated, one each in the same order. The
    client learns which serves which partition (a status request each,
    following not_leader), sends each submit straight there, and the null
    workers are spread over them; commits and records are summed.
*/
#include "common/zkeys.h"
#include "journal/jnl.h"
#include "messages/msg.h"

#include <czmq.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* This process's CPU time so far, user and system, in microseconds. */
static int64_t s_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}
static const char *s_worker_ep;
static int s_parts = 1; /* --partitions */

/* Endpoint i of a comma-separated list (the last one past its end). */
static void s_nth(const char *list, int i, char *out, size_t len)
{
    const char *p = list;
    for (; i > 0 && strchr(p, ','); i--)
        p = strchr(p, ',') + 1;
    size_t n = strcspn(p, ",");
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
}

static void s_send(zsock_t *d, const msg_t *m, msgpack_sbuffer *b)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(b);
    msgpack_packer_init(&pk, b, msgpack_sbuffer_write);
    msg_pack(m, &pk);
    zframe_t *f = zframe_new(b->data, b->size);
    zframe_send(&f, d, 0);
}

static void s_send_ready(zsock_t *d, const char *rid, msgpack_sbuffer *b)
{
    msg_t m;
    msg_init(&m, MSG_READY);
    strcpy(m.system, "bench");
    strcpy(m.instance, rid);
    m.capacity = 100000;
    m.nops = 2;
    strcpy(m.ops[0], "work");
    strcpy(m.ops[1], "undo");
    s_send(d, &m, b);
}

static void *s_null_worker(void *arg)
{
    int idx = (int)(intptr_t)arg;
    char rid[32], err[256];
    snprintf(rid, sizeof rid, "null-%d", idx);
    zsock_t *d = zsock_new(ZMQ_DEALER);
    if (zkeys_client_env(zsock_resolve(d), "ZSAGA_WORKER_KEY", err, sizeof err)) {
        fprintf(stderr, "zsaga-bench: %s\n", err);
        exit(2);
    }
    zsock_set_sndhwm(d, 0);
    zsock_set_rcvhwm(d, 0);
    char ep[256];
    s_nth(s_worker_ep, idx % s_parts, ep, sizeof ep);
    zsock_connect(d, "%s", ep);
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    s_send_ready(d, rid, &b);
    zpoller_t *p = zpoller_new(d, NULL);
    int64_t next_hb = zclock_mono() + 1000;
    msg_t m, in;
    while (!s_stop) {
        if (zclock_mono() > next_hb) {
            msg_init(&m, MSG_HEARTBEAT);
            s_send(d, &m, &b);
            next_hb = zclock_mono() + 1000;
        }
        if (!zpoller_wait(p, 100))
            continue;
        zframe_t *f = zframe_recv(d);
        if (!f)
            break;
        if (msg_decode(zframe_data(f), zframe_size(f), &in, err, sizeof err) == NULL) {
            if (in.type == MSG_EXECUTE || in.type == MSG_COMPENSATE) {
                msg_init(&m, MSG_RESULT);
                strcpy(m.id, in.id);
                strcpy(m.step, in.step);
                m.phase = in.type == MSG_EXECUTE ? MSG_PHASE_ACTION : MSG_PHASE_COMPENSATION;
                m.attempt = in.attempt;
                m.lease = in.lease;
                m.status = MSG_STATUS_OK;
                s_send(d, &m, &b);
            } else if (in.type == MSG_HEARTBEAT && in.boot == 0)
                s_send_ready(d, rid, &b); /* zsagad does not know us: register again */
        }
        zframe_destroy(&f);
    }
    zpoller_destroy(&p);
    msgpack_sbuffer_destroy(&b);
    zsock_destroy(&d);
    return NULL;
}

static uint32_t s_step_timeout; /* 0: the protocol's default */

static void s_submit(zsock_t *c, const char *id, int k, msgpack_sbuffer *b)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(b);
    msgpack_packer_init(&pk, b, msgpack_sbuffer_write);
    msg_pack_header(&pk, MSG_SUBMIT, 4);
    mp_pack_kv_uint(&pk, "req", 1);
    mp_pack_cstr(&pk, "saga");
    msgpack_pack_map(&pk, 2);
    mp_pack_kv_str(&pk, "id", id);
    mp_pack_cstr(&pk, "steps");
    msgpack_pack_array(&pk, (size_t)k);
    for (int i = 0; i < k; i++) {
        char sid[16], prev[16];
        snprintf(sid, sizeof sid, "s%d", i);
        snprintf(prev, sizeof prev, "s%d", i - 1);
        msgpack_pack_map(&pk, (i ? 6 : 5) + (s_step_timeout ? 1 : 0));
        if (s_step_timeout)
            mp_pack_kv_uint(&pk, "timeout_ms", s_step_timeout);
        mp_pack_kv_str(&pk, "id", sid);
        mp_pack_kv_str(&pk, "system", "bench");
        mp_pack_kv_str(&pk, "action", "work");
        mp_pack_kv_str(&pk, "compensation", "undo");
        mp_pack_cstr(&pk, "params");
        msgpack_pack_map(&pk, 2);
        mp_pack_kv_int(&pk, "amount", 1000 + i);
        mp_pack_kv_str(&pk, "currency", "USD");
        if (i) {
            mp_pack_cstr(&pk, "deps");
            msgpack_pack_array(&pk, 1);
            mp_pack_cstr(&pk, prev);
        }
    }
    zframe_t *f = zframe_new(b->data, b->size);
    zframe_send(&f, c, 0);
}

static int s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t s_stat1(zsock_t *c, const char *name)
{
    msgpack_sbuffer b;
    msgpack_packer pk;
    msgpack_sbuffer_init(&b);
    msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
    msg_pack_header(&pk, MSG_STATS, 3);
    mp_pack_kv_uint(&pk, "req", 99);
    zframe_t *f = zframe_new(b.data, b.size);
    zframe_send(&f, c, 0);
    msgpack_sbuffer_destroy(&b);
    uint64_t out = 0;
    for (;;) {
        zframe_t *r = zframe_recv(c);
        if (!r)
            return 0;
        msg_t m;
        char err[256];
        if (!msg_decode(zframe_data(r), zframe_size(r), &m, err, sizeof err) &&
            m.type == MSG_STATS_REPLY) {
            mp_reader_t rd;
            uint32_t n;
            mp_reader_init(&rd, m.raw, m.raw_len);
            mp_read_map(&rd, &n);
            for (uint32_t i = 0; i < n; i++) {
                const char *k;
                uint32_t kl;
                uint64_t v = 0;
                mp_read_str(&rd, &k, &kl);
                if (mp_peek(&rd) == MP_INT)
                    mp_read_uint(&rd, &v);
                else
                    mp_skip(&rd, 8); /* a string or the worker list */
                if (mp_str_eq(k, kl, name))
                    out = v;
            }
            zframe_destroy(&r);
            return out;
        }
        zframe_destroy(&r);
    }
}

static zsock_t *s_clients[64];

/* A counter of zsagad's stats, summed over the partitions' processes. */
static uint64_t s_stat(const char *name)
{
    uint64_t sum = 0;
    for (int i = 0; i < s_parts; i++)
        sum += s_stat1(s_clients[i], name);
    return sum;
}

/* Which client socket serves each partition: a status request about an
   id of that partition, sent to the first, answers not_leader naming the
   one that does (or not_found: the first does). */
static int s_route[64];
static int s_learn_routes(const char *cep)
{
    for (int part = 0; part < s_parts; part++) {
        char id[32], ep[256];
        for (int x = 0;; x++) {
            snprintf(id, sizeof id, "probe-%d", x);
            if ((int)jnl_partition_of(id, (uint32_t)s_parts) == part)
                break;
        }
        msg_t m;
        msgpack_sbuffer b;
        msgpack_packer pk;
        msgpack_sbuffer_init(&b);
        msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
        msg_init(&m, MSG_STATUS);
        m.req = 7;
        snprintf(m.id, sizeof m.id, "%s", id);
        msg_pack(&m, &pk);
        zframe_t *f = zframe_new(b.data, b.size);
        zframe_send(&f, s_clients[0], 0);
        msgpack_sbuffer_destroy(&b);
        zframe_t *r = zframe_recv(s_clients[0]);
        char err[256];
        if (!r || msg_decode(zframe_data(r), zframe_size(r), &m, err, sizeof err)) {
            fprintf(stderr, "zsaga-bench: no answer about partition %d\n", part);
            zframe_destroy(&r);
            return -1;
        }
        zframe_destroy(&r);
        s_route[part] = -1;
        if (strcmp(m.code, "not_leader") != 0)
            s_route[part] = 0;
        for (int i = 0; i < s_parts && s_route[part] < 0; i++) {
            s_nth(cep, i, ep, sizeof ep);
            if (strcmp(ep, m.text) == 0)
                s_route[part] = i;
        }
        msg_clear(&m);
        if (s_route[part] < 0) {
            fprintf(stderr, "zsaga-bench: partition %d is served at '%s', not in --clients\n", part,
                    m.text);
            return -1;
        }
    }
    return 0;
}

/* Anonymous resident memory of a process, in KiB (0 if unreadable). */
static long s_anon_kib(int pid)
{
    char path[64], line[256];
    long kib = 0;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    const char *cep = "tcp://127.0.0.1:5570", *eep = "tcp://127.0.0.1:5572";
    int n = 20000, k = 5, c = 200, w = 2, rate = 0, pid = 0, warmup = 0, only = 0;
    s_worker_ep = "tcp://127.0.0.1:5571";
    static const struct option opts[] = {
        { "clients", 1, 0, 'C' },      { "workers", 1, 0, 'W' },    { "events", 1, 0, 'E' },
        { "pid", 1, 0, 'P' },          { "warmup", 1, 0, 'U' },     { "no-workers", 0, 0, 'X' },
        { "workers-only", 0, 0, 'O' }, { "partitions", 1, 0, 'N' }, { 0, 0, 0, 0 }
    };
    int o;
    while ((o = getopt_long(argc, argv, "n:k:c:w:r:t:", opts, NULL)) != -1) {
        switch (o) {
        case 'C': cep = optarg; break;
        case 'W': s_worker_ep = optarg; break;
        case 'E': eep = optarg; break;
        case 'P': pid = atoi(optarg); break;
        case 'U': warmup = atoi(optarg); break;
        case 'X': w = 0; break;
        case 'O': only = 1; break;
        case 'N': s_parts = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 'k': k = atoi(optarg); break;
        case 'c': c = atoi(optarg); break;
        case 'w': w = atoi(optarg); break;
        case 'r': rate = atoi(optarg); break;
        case 't': s_step_timeout = (uint32_t)strtoul(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: zsaga-bench [--clients EP --workers EP --events EP] [-n N] [-k "
                            "K] [-c C] [-w W] [-r RATE] [-t STEP_TIMEOUT_MS] [--warmup N] [--pid "
                            "PID] [--no-workers | --workers-only]\n");
            return 2;
        }
    }
    if (s_parts < 1 || s_parts > 64) {
        fprintf(stderr, "zsaga-bench: --partitions 1-64\n");
        return 2;
    }
    if (n < 1 || k < 1 || k > 64 || c < 1 || w < 0 || (only && w < 1) || rate < 0 || warmup < 0) {
        fprintf(stderr, "zsaga-bench: -n, -k (1-64), -c and -w must be positive\n");
        return 2;
    }
    zsys_set_logstream(NULL);
    zsys_handler_set(NULL);
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    pthread_t *th = calloc((size_t)w + 1, sizeof *th);
    for (int i = 0; i < w; i++)
        pthread_create(&th[i], NULL, s_null_worker, (void *)(intptr_t)i);
    if (only) {
        for (int i = 0; i < w; i++)
            pthread_join(th[i], NULL);
        free(th);
        return 0;
    }
    zsock_t *sub = zsock_new(ZMQ_SUB);
    char kerr[1024];
    if (zkeys_client_env(zsock_resolve(sub), "ZSAGA_KEY", kerr, sizeof kerr)) {
        fprintf(stderr, "zsaga-bench: %s\n", kerr);
        return 2;
    }
    for (int i = 0; i < s_parts; i++) {
        char ep[256];
        s_clients[i] = zsock_new(ZMQ_DEALER);
        if (zkeys_client_env(zsock_resolve(s_clients[i]), "ZSAGA_KEY", kerr, sizeof kerr)) {
            fprintf(stderr, "zsaga-bench: %s\n", kerr);
            return 2;
        }
        s_nth(cep, i, ep, sizeof ep);
        zsock_connect(s_clients[i], "%s", ep);
        zsock_set_sndhwm(s_clients[i], 0);
        zsock_set_rcvtimeo(s_clients[i], 10000);
        s_nth(eep, i, ep, sizeof ep);
        zsock_connect(sub, "%s", ep);
    }
    /* Every end: a saga that compensates or parks is a failed run. */
    zsock_set_subscribe(sub, "saga.completed");
    zsock_set_subscribe(sub, "saga.compensated");
    zsock_set_subscribe(sub, "saga.parked");
    zsock_set_rcvhwm(sub, 0);
    zclock_sleep(500); /* registration and subscription */
    if (s_parts > 1 && s_learn_routes(cep))
        return 1;
    uint64_t commits0 = s_stat("commits"), records0 = s_stat("records_written");
    /* The warm-up sagas come first, under the same ids; nothing about them
       is counted: the clock, the commits and the CPU start when the last
       of them has ended. */
    int total = warmup + n, failed = 0;
    int64_t *t_sub = calloc((size_t)total, sizeof *t_sub), *lat = calloc((size_t)n, sizeof *lat);
    int64_t cpu0 = s_cpu_us();
    char run[16];
    snprintf(run, sizeof run, "%08x", (unsigned)zclock_usecs());
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    int submitted = 0, done = 0, ended = 0;
    int64_t t0 = zclock_usecs(), next_mem = t0;
    zpoller_t *p = zpoller_new(sub, NULL);
    for (int i = 0; i < s_parts; i++)
        zpoller_add(p, s_clients[i]);
    while (done < n) {
        if (warmup && ended == warmup && submitted == warmup) {
            /* Warm-up over: start counting from here. */
            warmup = 0;
            t0 = zclock_usecs();
            cpu0 = s_cpu_us();
            commits0 = s_stat("commits");
            records0 = s_stat("records_written");
        }
        int64_t now = zclock_usecs();
        if (pid && now >= next_mem) {
            printf("%6.0f s  completed %8d  active %6" PRIu64 "  kept %8" PRIu64
                   "  journal %7.1f MiB  heap %7.1f MiB\n",
                   (double)(now - t0) / 1e6, done, s_stat("sagas_active"),
                   s_stat("sagas_ended_kept"), s_stat("journal_used_bytes") / 1048576.0,
                   s_anon_kib(pid) / 1024.0);
            fflush(stdout);
            next_mem = now + 5000000;
        }
        /* Open loop: as many submits as the clock says are due. */
        int limit = warmup ? warmup : total; /* the warm-up ends before counting starts */
        int due = rate ? (int)((now - t0) * rate / 1000000) + 1 + (total - n - warmup) : limit;
        while (submitted < limit && submitted < due && (rate || submitted - ended < c)) {
            char id[48];
            snprintf(id, sizeof id, "b%s-%d", run, submitted);
            t_sub[submitted] = zclock_usecs();
            s_submit(s_clients[s_parts > 1 ? s_route[jnl_partition_of(id, (uint32_t)s_parts)] : 0],
                     id, k, &b);
            submitted++;
        }
        void *which = zpoller_wait(p, rate && submitted < limit ? 1 : 10000);
        if (!which && rate && submitted < limit && zpoller_expired(p))
            continue; /* time for the next submits */
        if (!which) {
            fprintf(stderr, "zsaga-bench: stalled at %d of %d completed\n", done, n);
            s_stop = 1;
            return 1;
        }
        if (which != sub) {
            zframe_t *f = zframe_recv(which);
            zframe_destroy(&f); /* accepted */
            continue;
        }
        zmsg_t *msg = zmsg_recv(sub);
        zframe_t *body = zmsg_last(msg);
        msg_t m;
        char err[256];
        if (body && !msg_decode(zframe_data(body), zframe_size(body), &m, err, sizeof err)) {
            const char *dash = strrchr(m.id, '-');
            if (dash && strncmp(m.id + 1, run, 8) == 0) {
                int idx = atoi(dash + 1);
                if (idx >= 0 && idx < total) {
                    ended++;
                    if (strcmp(m.state, "completed") != 0)
                        failed++;
                    if (idx >= total - n && !warmup)
                        lat[done++] = zclock_usecs() - t_sub[idx];
                }
            }
        }
        zmsg_destroy(&msg);
    }
    int64_t t1 = zclock_usecs(), cpu = s_cpu_us() - cpu0;
    double secs = (double)(t1 - t0) / 1e6;
    uint64_t commits = s_stat("commits") - commits0;
    uint64_t records = s_stat("records_written") - records0;
    qsort(lat, (size_t)n, sizeof *lat, s_cmp);
    if (rate)
        printf("sagas: %d of %d steps, open loop at %d/s offered, %d null workers\n", n, k, rate,
               w);
    else
        printf("sagas: %d of %d steps, %d in flight, %d null workers\n", n, k, c, w);
    printf("elapsed:        %.2f s\n", secs);
    printf("sagas/s:        %.0f\n", n / secs);
    printf("steps/s:        %.0f\n", (double)n * k / secs);
    printf("latency p50:    %.2f ms\n", lat[n / 2] / 1000.0);
    printf("latency p99:    %.2f ms\n", lat[(int)(n * 0.99)] / 1000.0);
    printf("latency p99.9:  %.2f ms\n", lat[(int)(n * 0.999)] / 1000.0);
    printf("commits/s:      %.0f\n", commits / secs);
    printf("records/commit: %.1f\n", commits ? (double)records / commits : 0.0);
    printf("client CPU:     %.1f s, %.1f us a saga%s\n", cpu / 1e6, (double)cpu / n,
           w ? " (null workers on its threads included)" : "");
    if (failed)
        printf("NOT COMPLETED:  %d sagas compensated or parked\n", failed);
    s_stop = 1;
    for (int i = 0; i < w; i++)
        pthread_join(th[i], NULL);
    zpoller_destroy(&p);
    for (int i = 0; i < s_parts; i++)
        zsock_destroy(&s_clients[i]);
    zsock_destroy(&sub);
    msgpack_sbuffer_destroy(&b);
    free(t_sub);
    free(lat);
    free(th);
    return failed ? 1 : 0;
}
