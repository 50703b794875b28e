/*  zsaga-bench-db: one worker and its database, against the database alone.
    Prints figures; asserts nothing.

        zsaga-bench-db raw    --db URI [-c C] [-n N] [--accounts K]
        zsaga-bench-db worker --db URI --workers EP [-c C] [-n N] [--accounts K]

    raw: C threads, a connection each, run N single-row transactions in all
    through the workers' own driver: BEGIN; UPDATE accounts SET balance =
    balance + 1 WHERE number = ?; COMMIT, on K accounts picked at random
    (on Redis: one script doing HINCRBY on one of K hashes). This is the
    server's raw transaction rate at that concurrency.

    worker: stands in for zsagad on EP, waits for one worker to register,
    and keeps C steps in flight until N have answered: credit_account of
    one cent on a random account for a banking worker, fraud_check of a
    random customer for a fraud worker, send of a message to a random
    customer for a notify worker (deploy/examples/notify, in any
    language; with --names the K customers BC00000001.. need no accounts
    table: deploy/bench-langs.sh gives them their quota). Each step is a new saga, so each
    runs the whole barrier. Latency is from send to result.
*/
#include "messages/msg.h"
#include "workers/wrk_db.h"

#include <czmq.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct {
    char number[32], currency[4];
} s_account_t;

static const char *s_uri;
static int s_conns = 8, s_accounts_max = 10000;
static bool s_names; /* K made-up names, no accounts table (--names) */
static long s_total = 20000;
static s_account_t *s_accounts;
static int s_naccounts;
static volatile long s_next; /* raw: transactions handed out */
static int64_t *s_lat_us;    /* one per transaction or step */

static const char s_lua_raw[] = "return redis.call('HINCRBY', 'bench:acct:' .. ARGV[1], 'n', 1)";

static uint64_t s_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The whole machine's CPU time, busy and in all, in clock ticks: on two
   shared cores the benchmark, the worker and the server all count. */
static uint64_t s_cpu_busy0, s_cpu_all0;
static int64_t s_self_us0; /* this process's own CPU */

static int64_t s_self_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}
static void s_cpu(uint64_t *busy, uint64_t *all)
{
    unsigned long long v[8] = { 0 };
    FILE *f = fopen("/proc/stat", "r");
    *busy = *all = 0;
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *all += v[i];
        *busy = *all - v[3] - v[4]; /* less idle and iowait */
    }
    fclose(f);
}

static void s_cpu_start(void)
{
    s_cpu(&s_cpu_busy0, &s_cpu_all0);
    s_self_us0 = s_self_us();
}

static void s_report(const char *what, long n, int64_t elapsed_us, long failed)
{
    uint64_t busy, all;
    s_cpu(&busy, &all);
    qsort(s_lat_us, (size_t)n, sizeof *s_lat_us, s_cmp);
    printf("%s: %ld in %.2f s = %.0f/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms, "
           "%ld not ok\n",
           what, n, (double)elapsed_us / 1e6, (double)n * 1e6 / (double)elapsed_us,
           (double)s_lat_us[n / 2] / 1000, (double)s_lat_us[n * 99 / 100] / 1000,
           (double)s_lat_us[n * 999 / 1000] / 1000, (double)s_lat_us[n - 1] / 1000, failed);
    if (all > s_cpu_all0 && n)
        printf("  machine CPU: %.0f us each (all processes; this benchmark's own %.0f us), the "
               "cores %.0f%% busy\n",
               (double)(busy - s_cpu_busy0) * 1e6 / (double)sysconf(_SC_CLK_TCK) / (double)n,
               (double)(s_self_us() - s_self_us0) / (double)n,
               100.0 * (double)(busy - s_cpu_busy0) / (double)(all - s_cpu_all0));
}

/* The accounts to work on: K active non-loan accounts (Redis: K names). */
static int s_load_accounts(void)
{
    char err[512];
    s_accounts = calloc((size_t)s_accounts_max, sizeof *s_accounts);
    wrk_conn_t *c = wrk_db_connect(s_uri, err, sizeof err);
    if (!c || !s_accounts) {
        fprintf(stderr, "zsaga-bench-db: %s\n", c ? "out of memory" : err);
        wrk_db_close(&c);
        return -1;
    }
    if (s_names || wrk_db_dialect(c) == DB_DIALECT_REDIS) {
        for (int i = 0; i < s_accounts_max; i++)
            snprintf(s_accounts[i].number, sizeof s_accounts[i].number, "BC%08d", i + 1);
        s_naccounts = s_accounts_max;
    } else {
        db_rc_t rc = wrk_db_exec(c,
                                 "SELECT number, currency FROM accounts WHERE type <> 'loan' AND "
                                 "status = 'active' ORDER BY number LIMIT ?",
                                 DB_I(s_accounts_max));
        if (rc) {
            fprintf(stderr, "zsaga-bench-db: %s (seed the database first)\n", wrk_db_error(c));
            wrk_db_close(&c);
            return -1;
        }
        s_naccounts = wrk_db_nrows(c);
        for (int i = 0; i < s_naccounts; i++) {
            snprintf(s_accounts[i].number, sizeof s_accounts[i].number, "%s", wrk_db_text(c, i, 0));
            snprintf(s_accounts[i].currency, sizeof s_accounts[i].currency, "%s",
                     wrk_db_text(c, i, 1));
        }
    }
    wrk_db_close(&c);
    if (s_naccounts == 0) {
        fprintf(stderr, "zsaga-bench-db: no accounts (seed the database first)\n");
        return -1;
    }
    return 0;
}

/* ---- raw ---------------------------------------------------------------- */

static volatile long s_raw_failed;
static uint64_t s_raw_trips; /* round trips, summed over the connections */

static void *s_raw_thread(void *arg)
{
    char err[512];
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)((intptr_t)arg + 1);
    wrk_conn_t *c = wrk_db_connect(s_uri, err, sizeof err);
    if (!c) {
        fprintf(stderr, "zsaga-bench-db: %s\n", err);
        __atomic_add_fetch(&s_raw_failed, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    bool redis = wrk_db_dialect(c) == DB_DIALECT_REDIS;
    long i;
    while ((i = __atomic_fetch_add(&s_next, 1, __ATOMIC_RELAXED)) < s_total) {
        const s_account_t *a = &s_accounts[s_rand(&x) % (uint64_t)s_naccounts];
        int64_t t0 = zclock_usecs();
        db_rc_t rc;
        if (redis)
            rc = wrk_db_exec(c, s_lua_raw, DB_S(a->number));
        else if (!(rc = wrk_db_begin(c, DB_ISO_DEFAULT, 30000)) &&
                 !(rc = wrk_db_exec(c, "UPDATE accounts SET balance = balance + 1 WHERE number = ?",
                                    DB_S(a->number))))
            rc = wrk_db_commit(c);
        if (rc) {
            wrk_db_rollback(c);
            if (__atomic_add_fetch(&s_raw_failed, 1, __ATOMIC_RELAXED) == 1)
                fprintf(stderr, "zsaga-bench-db: %s\n", wrk_db_error(c));
        }
        s_lat_us[i] = zclock_usecs() - t0;
    }
    __atomic_add_fetch(&s_raw_trips, c->trips, __ATOMIC_RELAXED);
    wrk_db_close(&c);
    return NULL;
}

static int s_raw(void)
{
    pthread_t th[256];
    s_cpu_start();
    int64_t t0 = zclock_usecs();
    for (int i = 0; i < s_conns; i++)
        pthread_create(&th[i], NULL, s_raw_thread, (void *)(intptr_t)i);
    for (int i = 0; i < s_conns; i++)
        pthread_join(th[i], NULL);
    char what[96];
    snprintf(what, sizeof what, "raw single-row transactions, %d connections", s_conns);
    s_report(what, s_total, zclock_usecs() - t0, s_raw_failed);
    printf("raw round trips a transaction: %.2f\n", (double)s_raw_trips / (double)s_total);
    return 0;
}

/* ---- worker --------------------------------------------------------------- */

static void s_send(zsock_t *r, zframe_t *rid, const msg_t *m, msgpack_sbuffer *b)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(b);
    msgpack_packer_init(&pk, b, msgpack_sbuffer_write);
    msg_pack(m, &pk);
    zsock_send(r, "fb", rid, b->data, b->size);
}

static int s_worker(const char *ep)
{
    char err[256], system[MSG_NAME_MAX + 1] = "", prefix[32];
    zframe_t *rid = NULL; /* the worker's connection, as zsagad would see it */
    zsock_t *r = zsock_new(ZMQ_ROUTER);
    zsock_set_sndhwm(r, 0);
    zsock_set_rcvhwm(r, 0);
    if (zsock_bind(r, "%s", ep) < 0) {
        fprintf(stderr, "zsaga-bench-db: cannot bind %s\n", ep);
        zsock_destroy(&r);
        return 1;
    }
    msgpack_sbuffer b, pb;
    msgpack_sbuffer_init(&b);
    msgpack_sbuffer_init(&pb);
    int64_t *sent = calloc((size_t)s_total, sizeof *sent);
    snprintf(prefix, sizeof prefix, "b%lld-", (long long)zclock_time());
    uint64_t x = (uint64_t)zclock_usecs() | 1;
    long next = 0, done = 0, failed = 0;
    int64_t t0 = 0, deadline = zclock_mono() + 30000;
    zpoller_t *p = zpoller_new(r, NULL);
    while (done < s_total) {
        /* Top up the steps in flight. */
        while (rid && next < s_total && next - done < s_conns) {
            const s_account_t *a = &s_accounts[s_rand(&x) % (uint64_t)s_naccounts];
            msgpack_packer pk;
            msgpack_sbuffer_clear(&pb);
            msgpack_packer_init(&pk, &pb, msgpack_sbuffer_write);
            msg_t m;
            msg_init(&m, MSG_EXECUTE);
            snprintf(m.id, sizeof m.id, "%s%ld", prefix, next);
            strcpy(m.step, "s");
            m.attempt = 1;
            m.timeout_ms = 30000;
            if (strncmp(system, "notify", 6) == 0) {
                strcpy(m.op, "send");
                msgpack_pack_map(&pk, 3);
                mp_pack_kv_str(&pk, "customer", a->number);
                mp_pack_kv_str(&pk, "channel", "sms");
                mp_pack_kv_str(&pk, "text", "your payment was received");
            } else if (strcmp(system, "fraud") == 0) {
                strcpy(m.op, "fraud_check");
                msgpack_pack_map(&pk, 3);
                mp_pack_kv_str(&pk, "customer", a->number);
                mp_pack_kv_int(&pk, "amount", 100);
                mp_pack_kv_str(&pk, "currency", "USD");
            } else {
                strcpy(m.op, "credit_account");
                msgpack_pack_map(&pk, 3);
                mp_pack_kv_str(&pk, "account", a->number);
                mp_pack_kv_int(&pk, "amount", 1);
                mp_pack_kv_str(&pk, "currency", a->currency);
            }
            m.params = (const uint8_t *)pb.data;
            m.params_len = pb.size;
            sent[next++] = zclock_usecs();
            s_send(r, rid, &m, &b);
        }
        if (!zpoller_wait(p, 1000)) {
            if (zpoller_terminated(p) || zclock_mono() > deadline) {
                fprintf(stderr, "zsaga-bench-db: %s\n",
                        rid ? "no answer for 30 s" : "no worker registered in 30 s");
                break;
            }
            continue;
        }
        zframe_t *from = NULL;
        zframe_t *body = NULL;
        if (zsock_recv(r, "ff", &from, &body) < 0)
            break;
        msg_t in;
        if (body && !msg_decode(zframe_data(body), zframe_size(body), &in, err, sizeof err)) {
            if (in.type == MSG_READY && !rid &&
                (strcmp(in.system, "banking") == 0 || strcmp(in.system, "fraud") == 0 ||
                 strncmp(in.system, "notify", 6) == 0)) {
                rid = zframe_dup(from);
                snprintf(system, sizeof system, "%s", in.system);
                printf("worker %s (system %s, capacity %u) registered\n", in.instance, system,
                       in.capacity);
                fflush(stdout); /* a caller waits for this line to start its clock */
                s_cpu_start();
                t0 = zclock_usecs();
            } else if (in.type == MSG_HEARTBEAT) {
                msg_t hb;
                msg_init(&hb, MSG_HEARTBEAT);
                hb.boot = 1;
                s_send(r, from, &hb, &b);
            } else if (in.type == MSG_RESULT && strncmp(in.id, prefix, strlen(prefix)) == 0) {
                long i = strtol(in.id + strlen(prefix), NULL, 10);
                if (i >= 0 && i < next) {
                    s_lat_us[done++] = zclock_usecs() - sent[i];
                    if (in.status != MSG_STATUS_OK && failed++ == 0)
                        fprintf(stderr, "zsaga-bench-db: step %s: %s %s\n", in.id, in.code,
                                in.text);
                }
            }
            deadline = zclock_mono() + 30000;
            msg_clear(&in);
        }
        zframe_destroy(&from);
        zframe_destroy(&body);
    }
    if (done) {
        char what[96];
        snprintf(what, sizeof what, "steps through the %s worker, %d in flight", system, s_conns);
        s_report(what, done, zclock_usecs() - t0, failed);
    }
    zpoller_destroy(&p);
    zframe_destroy(&rid);
    free(sent);
    msgpack_sbuffer_destroy(&b);
    msgpack_sbuffer_destroy(&pb);
    zsock_destroy(&r);
    return done == s_total ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *workers = NULL;
    static const struct option opts[] = {
        { "db", required_argument, 0, 'd' },
        { "workers", required_argument, 0, 'w' },
        { "accounts", required_argument, 0, 'k' },
        { "names", no_argument, 0, 'N' },
        { 0, 0, 0, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:n:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': s_uri = optarg; break;
        case 'w': workers = optarg; break;
        case 'k': s_accounts_max = atoi(optarg); break;
        case 'N': s_names = true; break;
        case 'c': s_conns = atoi(optarg); break;
        case 'n': s_total = atol(optarg); break;
        default: return 2;
        }
    }
    const char *mode = optind < argc ? argv[optind] : "";
    bool raw = strcmp(mode, "raw") == 0;
    if ((!raw && strcmp(mode, "worker")) || !s_uri || (!raw && !workers) || s_conns < 1 ||
        s_conns > 256 || s_total < 1 || s_accounts_max < 1) {
        fprintf(stderr, "usage: zsaga-bench-db raw --db URI [-c C] [-n N] [--accounts K]\n"
                        "       zsaga-bench-db worker --db URI --workers EP [-c C] [-n N] "
                        "[--accounts K] [--names]\n");
        return 2;
    }
    zsys_init();
    zsys_set_sndhwm(0);
    if (s_load_accounts() || !(s_lat_us = calloc((size_t)s_total, sizeof *s_lat_us)))
        return 1;
    int rc = raw ? s_raw() : s_worker(workers);
    free(s_lat_us);
    free(s_accounts);
    return rc;
}
