/*  zsagad: the saga orchestrator daemon. Reads its config file and
    options, then runs the loop (orc_server.c) until SIGINT or SIGTERM. */
#include "common/zcfg.h"
#include "common/zlog.h"
#include "orc_server.h"

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: zsagad [options]\n"
               "  --config FILE            read options from FILE first (INI, keys are these\n"
               "                           options' names; see deploy/config/zsagad.conf)\n"
               "  --data DIR               journal directory (default ./zsaga-data)\n"
               "  --journal URI            lmdb:DIR (the same as --data DIR), or\n"
               "                           postgresql://USER:PASS@HOST:PORT/DB: the journal in\n"
               "                           a PostgreSQL database (docs/operations.md)\n"
               "  --lease MS               journal on PostgreSQL: the active zsagad's lease;\n"
               "                           a standby takes over once it lapses (default 5000)\n"
               "  --partitions N           journal on PostgreSQL: sagas spread over N partitions\n"
               "                           by a hash of their id, each served by one zsagad\n"
               "                           (default 1; fixed when the journal is made)\n"
               "  --serve K                with partitions: run K zsagad processes, each on\n"
               "                           the ports of --clients, --workers, --events and\n"
               "                           --http plus 10 x its slot (0..K-1; an ipc path\n"
               "                           plus .SLOT), each serving a partition or standing\n"
               "                           by (default 1)\n"
               "  --member NAME            with partitions: the machine these count as when\n"
               "                           partitions are shared out (default: host name)\n"
               "  --advertise ENDPOINTS    with partitions: the client endpoints other zsagads\n"
               "                           send clients to (default --clients; set it when\n"
               "                           --clients binds a wildcard such as tcp://*:5570)\n"
               "  --clients ENDPOINT       client socket (default tcp://127.0.0.1:5570)\n"
               "  --workers ENDPOINT       worker socket (default tcp://127.0.0.1:5571)\n"
               "  --events ENDPOINT        event stream (default tcp://127.0.0.1:5572)\n"
               "  --key FILE               zsagad's key pair (NAME.key_secret, mode 0600)\n"
               "  --authorized DIR         public keys of the workers and clients allowed in\n"
               "  --insecure               plaintext, no authentication: tests on one host only\n"
               "  --backup-dir DIR         where `zsaga backup NAME` writes (default: no backups)\n"
               "  --ipc-mode MODE          mode of ipc socket files (default 0600; 0660 lets the\n"
               "                           group connect)\n"
               "  --max-systems N          systems workers may define (default 64)\n"
               "  --retain DURATION        keep ended sagas this long, then remove them\n"
               "                           (default 7d; 0: age alone removes none; units\n"
               "                           ms, s, m, h, d). Parked sagas are never removed\n"
               "  --retain-count N         keep at most the N newest ended sagas (default 0:\n"
               "                           no count limit)\n"
               "  --tombstones DURATION    a removed saga's id (and definition hash) is still\n"
               "                           recognised this long: a resubmit is a duplicate\n"
               "                           (default 30d; 0: none kept)\n"
               "  --archive DIR            write ended sagas to archive files in DIR before\n"
               "                           they are removed (read them with `zsaga archive`)\n"
               "  --http HOST:PORT|off     metrics (/metrics) and the web console, on a loopback\n"
               "                           address (default 127.0.0.1:5573)\n"
               "  --metrics on|off         labelled counters and latency histograms (default on)\n"
               "  --token-ttl DURATION     console tokens from `zsaga login` last this long\n"
               "                           (default 12h)\n"
               "  --alert RULE=WARN,CRIT   alert levels of a rule, or RULE=off (repeatable; rules\n"
               "                           and defaults: docs/operations.md, \"Alerts\")\n"
               "  --alert-window DURATION  rates and percentiles over this (default 60s)\n"
               "  --alert-command CMD      run CMD (through /bin/sh) at each alert change, with\n"
               "                           ZSAGA_ALERT_RULE, _SUBJECT, _STATE, _LEVEL, _VALUE\n"
               "                           and _MESSAGE in its environment\n"
               "  --alert-webhook URL      POST each alert change to URL as JSON\n"
               "  --map-size MIB           journal map size (default 1024)\n"
               "  --sync full|nometa|none  journal durability (default full)\n"
               "  --heartbeat-timeout MS   a silent worker is dead after this (default 3000)\n"
               "  --reserve PCT            journal share kept for running sagas (default 10)\n"
               "  --batch N                messages per group commit at most (default 512)\n"
               "  --log-level LEVEL        error, warn, info or debug (default info)\n"
               "  --log-format FORMAT      text, logfmt or json (default text)\n"
               "  --crash-in-commit N      failure tests only: SIGKILL itself in the middle\n"
               "                           of group commit N (records written, not committed)\n"
               "  --crash-after-commit N   failure tests only: SIGKILL itself once group\n"
               "                           commit N is durable, before anything that follows\n"
               "                           from it is sent\n"
               "  --version                print the version and exit\n"
               "exit status: 0 after a clean shutdown, 1 if it could not start, 2 for a\n"
               "usage error\n");
}

typedef struct {
    orc_server_config_t cfg;
    int level, format;
    bool version;
    int serve; /* --serve K */
} s_opts_t;

/* A whole number in [min, max]; anything else is an error that names it. */
static int s_num(const char *opt, const char *v, int base, unsigned long long min,
                 unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, base);
    if (errno || end == v || *end || v[0] == '-' || n < min || n > max) {
        fprintf(stderr, "zsagad: --%s must be a whole number from %llu to %llu, not '%s'\n", opt,
                min, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

static int s_apply(void *arg, int c, const char *v)
{
    s_opts_t *o = arg;
    orc_server_config_t *cfg = &o->cfg;
    unsigned long long n;
    switch (c) {
    case 'C': return 0; /* --config: read before the others */
    case 'd': return (cfg->data_dir = zcfg_keep(v)) ? 0 : -1;
    case 'g':
        if (strncmp(v, "lmdb:", 5) == 0)
            v += 5;
        else if (!jnl_is_postgres(v)) {
            fprintf(stderr, "zsagad: --journal takes lmdb:DIR or postgresql://..., not '%s'\n", v);
            return -1;
        }
        return (cfg->data_dir = zcfg_keep(v)) ? 0 : -1;
    case 'c': return (cfg->client_ep = zcfg_keep(v)) ? 0 : -1;
    case 'D': return (cfg->advertise = zcfg_keep(v)) ? 0 : -1;
    case 'G': return (cfg->member = zcfg_keep(v)) ? 0 : -1;
    case 'F':
        if (s_num("serve", v, 10, 1, 64, &n))
            return -1;
        o->serve = (int)n;
        return 0;
    case 'w': return (cfg->worker_ep = zcfg_keep(v)) ? 0 : -1;
    case 'e': return (cfg->event_ep = zcfg_keep(v)) ? 0 : -1;
    case 'k': return (cfg->key_file = zcfg_keep(v)) ? 0 : -1;
    case 'a': return (cfg->authorized = zcfg_keep(v)) ? 0 : -1;
    case 'B': return (cfg->backup_dir = zcfg_keep(v)) ? 0 : -1;
    case 'A': return (cfg->archive_dir = zcfg_keep(v)) ? 0 : -1;
    case 'R':
    case 'T': {
        uint64_t ms;
        if (zcfg_duration(v, &ms)) {
            fprintf(stderr, "zsagad: --%s must be a duration such as 90s, 12h or 7d, not '%s'\n",
                    c == 'R' ? "retain" : "tombstones", v);
            return -1;
        }
        *(c == 'R' ? &cfg->retain_ms : &cfg->tomb_ms) = ms;
        return 0;
    }
    case 'N':
        if (s_num("retain-count", v, 10, 0, UINT64_MAX, &n))
            return -1;
        cfg->retain_count = n;
        return 0;
    case 'I': cfg->insecure = true; return 0;
    case 'X':
        if (cfg->nalert_specs == sizeof cfg->alert_specs / sizeof cfg->alert_specs[0]) {
            fprintf(stderr, "zsagad: --alert given too many times\n");
            return -1;
        }
        return (cfg->alert_specs[cfg->nalert_specs++] = zcfg_keep(v)) ? 0 : -1;
    case 'Y': return (cfg->alert_command = zcfg_keep(v)) ? 0 : -1;
    case 'Z': return (cfg->alert_webhook = zcfg_keep(v)) ? 0 : -1;
    case 'U': {
        uint64_t ms;
        if (zcfg_duration(v, &ms) || ms < 1000 || ms > 120000) {
            fprintf(stderr, "zsagad: --alert-window must be a duration from 1s to 2m, not '%s'\n",
                    v);
            return -1;
        }
        cfg->alert_window_ms = ms;
        return 0;
    }
    case 'H': cfg->http_addr = strcmp(v, "off") == 0 ? NULL : zcfg_keep(v); return 0;
    case 'M':
        if (strcmp(v, "on") && strcmp(v, "off")) {
            fprintf(stderr, "zsagad: --metrics must be on or off\n");
            return -1;
        }
        cfg->metrics = strcmp(v, "on") == 0;
        return 0;
    case 'L':
        if ((o->format = zlog_format_parse(v)) < 0) {
            fprintf(stderr, "zsagad: --log-format must be text, logfmt or json\n");
            return -1;
        }
        return 0;
    case 'W': {
        uint64_t ms;
        if (zcfg_duration(v, &ms) || ms < 60000) {
            fprintf(stderr,
                    "zsagad: --token-ttl must be a duration of a minute or more, not '%s'\n", v);
            return -1;
        }
        cfg->token_ttl_ms = ms;
        return 0;
    }
    case 'V': o->version = true; return 0;
    case 'p':
        if (s_num("ipc-mode", v, 8, 0, 0770, &n))
            return -1;
        cfg->ipc_mode = (unsigned)n;
        return 0;
    case 'S':
        if (s_num("max-systems", v, 10, 1, 4096, &n))
            return -1;
        cfg->max_systems = (uint32_t)n;
        return 0;
    case 'm':
        if (s_num("map-size", v, 10, 1, 1ull << 24, &n))
            return -1;
        cfg->map_bytes = (size_t)n << 20;
        return 0;
    case 's':
        if (strcmp(v, "full") == 0)
            cfg->sync = JNL_SYNC_FULL;
        else if (strcmp(v, "nometa") == 0)
            cfg->sync = JNL_SYNC_NOMETA;
        else if (strcmp(v, "none") == 0)
            cfg->sync = JNL_SYNC_NONE;
        else {
            fprintf(stderr, "zsagad: --sync must be full, nometa or none\n");
            return -1;
        }
        return 0;
    case 'P':
        if (s_num("partitions", v, 10, 1, 1024, &n))
            return -1;
        cfg->partitions = (uint32_t)n;
        return 0;
    case 'q':
        if (s_num("lease", v, 10, 300, 600000, &n))
            return -1;
        cfg->lease_ms = (uint32_t)n;
        return 0;
    case 't':
        if (s_num("heartbeat-timeout", v, 10, 100, 3600000, &n))
            return -1;
        cfg->heartbeat_timeout_ms = (uint32_t)n;
        return 0;
    case 'r':
        if (s_num("reserve", v, 10, 0, 99, &n))
            return -1;
        cfg->reserve_pct = (uint32_t)n;
        return 0;
    case 'b':
        if (s_num("batch", v, 10, 1, 1000000, &n))
            return -1;
        cfg->max_batch = (uint32_t)n;
        return 0;
    case 'K':
        if (s_num("crash-in-commit", v, 10, 0, UINT64_MAX, &n))
            return -1;
        cfg->crash_in_commit = n;
        return 0;
    case 'J':
        if (s_num("crash-after-commit", v, 10, 0, UINT64_MAX, &n))
            return -1;
        cfg->crash_after_commit = n;
        return 0;
    case 'l':
        if ((o->level = zlog_level_parse(v)) < 0) {
            fprintf(stderr, "zsagad: unknown log level '%s'\n", v);
            return -1;
        }
        return 0;
    default: return -1;
    }
}

/* Endpoint list `list` for slot i: each tcp port (not 0 or a wildcard)
   plus 10 i (the default ports are 5570-5573: one apart would collide),
   each ipc path plus ".i"; slot 0 keeps them as they are. */
#define SLOT_STRIDE 10
static int s_slot_eps(const char *list, int i, char *out, size_t len)
{
    size_t o = 0;
    out[0] = 0;
    for (const char *e = list; *e;) {
        size_t n = strcspn(e, ",");
        char one[512];
        if (n >= sizeof one)
            return -1;
        memcpy(one, e, n);
        one[n] = 0;
        const char *colon = strrchr(one, ':');
        int w;
        if (i && strncmp(one, "ipc://", 6) == 0)
            w = snprintf(out + o, len - o, "%s%s.%d", o ? "," : "", one, i);
        else if (i && colon && atoi(colon + 1) > 0)
            w = snprintf(out + o, len - o, "%s%.*s:%d", o ? "," : "", (int)(colon - one), one,
                         atoi(colon + 1) + SLOT_STRIDE * i);
        else
            w = snprintf(out + o, len - o, "%s%s", o ? "," : "", one);
        if (w < 0 || (size_t)w >= len - o)
            return -1;
        o += (size_t)w;
        e += n + (e[n] == ',');
    }
    return 0;
}

/* --serve K: K zsagad processes of one machine (one member), each a
   slot on endpoints of its own, serving a partition or standing by, and
   started again when one ends: at once after a crash or when deposed,
   after two leases when it gave its partition up (so that a member below
   its share takes it first). SIGTERM or SIGINT stops them all. One
   process a partition: a crash in one partition's engine leaves the
   others running, and each keeps the single-journal invariants. */
static int s_serve(const orc_server_config_t *base, int k)
{
    enum { EPLEN = 1024 };
    static char eps[64][4][EPLEN];
    pid_t pid[64] = { 0 };
    int64_t due[64] = { 0 };
    uint32_t lease = base->lease_ms ? base->lease_ms : 5000;
    orc_server_config_t cfg[64];
    for (int i = 0; i < k; i++) {
        cfg[i] = *base;
        if (s_slot_eps(base->client_ep, i, eps[i][0], EPLEN) ||
            s_slot_eps(base->worker_ep, i, eps[i][1], EPLEN) ||
            s_slot_eps(base->event_ep, i, eps[i][2], EPLEN) ||
            (base->advertise && s_slot_eps(base->advertise, i, eps[i][3], EPLEN))) {
            zlog_error("endpoint lists too long for --serve");
            return 2;
        }
        cfg[i].client_ep = eps[i][0];
        cfg[i].worker_ep = eps[i][1];
        cfg[i].event_ep = eps[i][2];
        cfg[i].advertise = base->advertise ? eps[i][3] : NULL;
        if (base->http_addr) {
            static char http[64][128];
            const char *colon = strrchr(base->http_addr, ':');
            int port = colon ? atoi(colon + 1) : 0;
            if (colon && port > 0)
                snprintf(http[i], sizeof http[i], "%.*s:%d", (int)(colon - base->http_addr),
                         base->http_addr, port + SLOT_STRIDE * i);
            else
                snprintf(http[i], sizeof http[i], "%s", base->http_addr);
            cfg[i].http_addr = http[i];
        }
        if (base->archive_dir) {
            /* Archive file names are unique within one writer only. */
            static char adir[64][512];
            snprintf(adir[i], sizeof adir[i], "%s/slot-%d", base->archive_dir, i);
            mkdir(base->archive_dir, 0700);
            cfg[i].archive_dir = adir[i];
        }
    }
    zlog_info("serving with %d zsagad processes (slots 0-%d)", k, k - 1);
    int rc = 0;
    bool told = false;
    uint64_t watchdog_us = 0;
    if (sd_watchdog_enabled(0, &watchdog_us) <= 0)
        watchdog_us = 0;
    while (!s_stop) {
        int64_t now = zclock_mono();
        for (int i = 0; i < k && !s_stop; i++) {
            if (pid[i] || now < due[i])
                continue;
            pid_t parent = getpid(), p = fork();
            if (p == 0) {
                /* A slot does not outlive its supervisor: a new one would
                   find its ports taken. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                    _exit(0);
                unsetenv("NOTIFY_SOCKET"); /* the supervisor speaks to systemd */
                _exit(orc_server_run(&cfg[i], &s_stop));
            }
            if (p < 0) {
                zlog_error("fork: %s", strerror(errno));
                due[i] = now + 1000;
            } else
                pid[i] = p;
        }
        if (!told) {
            /* systemd (Type=notify): the slots are up, serving or standing
               by; they tell nothing themselves. */
            sd_notifyf(0, "READY=1\nSTATUS=%d slots", k);
            told = true;
        }
        if (watchdog_us)
            sd_notify(0, "WATCHDOG=1"); /* the supervisor lives; it restarts the slots */
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p <= 0) {
            zclock_sleep(100);
            continue;
        }
        for (int i = 0; i < k; i++) {
            if (pid[i] != p)
                continue;
            pid[i] = 0;
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (code == 2) { /* a configuration error: it would fail again */
                zlog_error("slot %d stopped on a configuration error; stopping", i);
                s_stop = 1;
                rc = 2;
            }
            due[i] = now + (code == ORC_SERVER_YIELDED ? 2 * (int64_t)lease : 500);
            zlog_info("slot %d (pid %ld) ended (status %d); it starts again in %lld ms", i, (long)p,
                      code, (long long)(due[i] - now));
        }
    }
    sd_notify(0, "STOPPING=1");
    for (int i = 0; i < k; i++)
        if (pid[i])
            kill(pid[i], SIGTERM);
    for (int i = 0; i < k; i++)
        if (pid[i])
            waitpid(pid[i], NULL, 0);
    return rc;
}

int main(int argc, char **argv)
{
    s_opts_t o = { .cfg = {
                       .data_dir = "zsaga-data",
                       .client_ep = "tcp://127.0.0.1:5570",
                       .worker_ep = "tcp://127.0.0.1:5571",
                       .event_ep = "tcp://127.0.0.1:5572",
                       .map_bytes = 1024ul << 20,
                       .sync = JNL_SYNC_FULL,
                       .heartbeat_timeout_ms = 3000,
                       .reserve_pct = 10,
                       .max_batch = 512,
                       .ipc_mode = 0600,
                       .retain_ms = 7ull * 86400000,
                       .tomb_ms = 30ull * 86400000,
                       .http_addr = "127.0.0.1:5573",
                       .metrics = true,
                       .token_ttl_ms = 12ull * 3600000,
                   },
                   .level = ZLOG_INFO };
    static const struct option opts[] = {
        { "config", required_argument, 0, 'C' },
        { "data", required_argument, 0, 'd' },
        { "journal", required_argument, 0, 'g' },
        { "clients", required_argument, 0, 'c' },
        { "workers", required_argument, 0, 'w' },
        { "events", required_argument, 0, 'e' },
        { "key", required_argument, 0, 'k' },
        { "authorized", required_argument, 0, 'a' },
        { "insecure", no_argument, 0, 'I' },
        { "backup-dir", required_argument, 0, 'B' },
        { "ipc-mode", required_argument, 0, 'p' },
        { "max-systems", required_argument, 0, 'S' },
        { "map-size", required_argument, 0, 'm' },
        { "sync", required_argument, 0, 's' },
        { "heartbeat-timeout", required_argument, 0, 't' },
        { "lease", required_argument, 0, 'q' },
        { "partitions", required_argument, 0, 'P' },
        { "advertise", required_argument, 0, 'D' },
        { "member", required_argument, 0, 'G' },
        { "serve", required_argument, 0, 'F' },
        { "reserve", required_argument, 0, 'r' },
        { "batch", required_argument, 0, 'b' },
        { "log-level", required_argument, 0, 'l' },
        { "crash-in-commit", required_argument, 0, 'K' },
        { "crash-after-commit", required_argument, 0, 'J' },
        { "retain", required_argument, 0, 'R' },
        { "retain-count", required_argument, 0, 'N' },
        { "tombstones", required_argument, 0, 'T' },
        { "archive", required_argument, 0, 'A' },
        { "http", required_argument, 0, 'H' },
        { "alert", required_argument, 0, 'X' },
        { "alert-command", required_argument, 0, 'Y' },
        { "alert-webhook", required_argument, 0, 'Z' },
        { "alert-window", required_argument, 0, 'U' },
        { "metrics", required_argument, 0, 'M' },
        { "token-ttl", required_argument, 0, 'W' },
        { "log-format", required_argument, 0, 'L' },
        { "version", no_argument, 0, 'V' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    char err[1024];
    int prc = zcfg_parse(argc, argv, "zsagad", NULL, opts, s_apply, &o, err, sizeof err);
    if (prc == ZCFG_HELP) {
        s_usage(stdout);
        return 0;
    }
    if (prc) {
        if (err[0])
            fprintf(stderr, "zsagad: %s\n", err);
        else
            s_usage(stderr);
        return 2;
    }
    if (o.version) {
        printf("zsagad %s\n", ZSAGA_VERSION);
        return 0;
    }
    if (optind < argc) {
        fprintf(stderr, "zsagad: unexpected argument '%s'\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    if (o.serve > 1 && o.cfg.partitions < 2) {
        fprintf(stderr, "zsagad: --serve needs --partitions: without partitions one zsagad "
                        "serves and the others stand by\n");
        return 2;
    }
    if (o.cfg.partitions > 1 && !jnl_is_postgres(o.cfg.data_dir)) {
        fprintf(stderr, "zsagad: --partitions needs the journal on PostgreSQL (--journal "
                        "postgresql://...): on LMDB one zsagad holds the whole journal\n");
        return 2;
    }
    const char *adv = o.cfg.advertise ? o.cfg.advertise : o.cfg.client_ep;
    if (o.cfg.partitions > 1 && (strchr(adv, '*') || strstr(adv, "//0.0.0.0:"))) {
        /* not_leader sends clients to these endpoints: a wildcard is no
           address to connect to. */
        fprintf(stderr,
                "zsagad: with --partitions, clients are sent to '%s', which is no "
                "address to connect to: give --advertise tcp://HOST:PORT\n",
                adv);
        return 2;
    }
    zlog_init("zsagad", (zlog_level_t)o.level);
    zlog_set_format((zlog_format_t)o.format);
    /* czmq would install its own SIGINT handler; ours only sets a flag the
       loop checks after every poll. */
    zsys_handler_set(NULL);
    struct sigaction sa = { 0 };
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (o.serve > 1)
        return s_serve(&o.cfg, o.serve);
    int rc = orc_server_run(&o.cfg, &s_stop);
    return rc == ORC_SERVER_YIELDED ? rc : rc ? 1 : 0;
}
