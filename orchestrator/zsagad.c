/*  zsagad: the saga orchestrator daemon. Parses options and runs the loop
    (orc_server.c) until SIGINT or SIGTERM. */
#include "common/zlog.h"
#include "orc_server.h"

#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: zsagad [options]\n"
               "  --data DIR               journal directory (default ./zsaga-data)\n"
               "  --clients ENDPOINT       client socket (default tcp://127.0.0.1:5570)\n"
               "  --workers ENDPOINT       worker socket (default tcp://127.0.0.1:5571)\n"
               "  --events ENDPOINT        event stream (default tcp://127.0.0.1:5572)\n"
               "  --map-size MIB           journal map size (default 1024)\n"
               "  --sync full|nometa|none  journal durability (default full)\n"
               "  --heartbeat-timeout MS   a silent worker is dead after this (default 3000)\n"
               "  --reserve PCT            journal share kept for running sagas (default 10)\n"
               "  --batch N                messages per group commit at most (default 512)\n"
               "  --log-level LEVEL        error, warn, info or debug (default info)\n"
               "  --crash-in-commit N      failure tests only: SIGKILL itself in the middle\n"
               "                           of group commit N (records written, not committed)\n");
}

int main(int argc, char **argv)
{
    orc_server_config_t cfg = {
        .data_dir = "zsaga-data",
        .client_ep = "tcp://127.0.0.1:5570",
        .worker_ep = "tcp://127.0.0.1:5571",
        .event_ep = "tcp://127.0.0.1:5572",
        .map_bytes = 1024ul << 20,
        .sync = JNL_SYNC_FULL,
        .heartbeat_timeout_ms = 3000,
        .reserve_pct = 10,
        .max_batch = 512,
    };
    int level = ZLOG_INFO;
    static const struct option opts[] = {
        { "data", required_argument, 0, 'd' },
        { "clients", required_argument, 0, 'c' },
        { "workers", required_argument, 0, 'w' },
        { "events", required_argument, 0, 'e' },
        { "map-size", required_argument, 0, 'm' },
        { "sync", required_argument, 0, 's' },
        { "heartbeat-timeout", required_argument, 0, 't' },
        { "reserve", required_argument, 0, 'r' },
        { "batch", required_argument, 0, 'b' },
        { "log-level", required_argument, 0, 'l' },
        { "crash-in-commit", required_argument, 0, 'K' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': cfg.data_dir = optarg; break;
        case 'c': cfg.client_ep = optarg; break;
        case 'w': cfg.worker_ep = optarg; break;
        case 'e': cfg.event_ep = optarg; break;
        case 'm': cfg.map_bytes = strtoul(optarg, NULL, 10) << 20; break;
        case 's':
            if (strcmp(optarg, "full") == 0)
                cfg.sync = JNL_SYNC_FULL;
            else if (strcmp(optarg, "nometa") == 0)
                cfg.sync = JNL_SYNC_NOMETA;
            else if (strcmp(optarg, "none") == 0)
                cfg.sync = JNL_SYNC_NONE;
            else {
                fprintf(stderr, "zsagad: --sync must be full, nometa or none\n");
                return 2;
            }
            break;
        case 't': cfg.heartbeat_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'r': cfg.reserve_pct = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'b': cfg.max_batch = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'K': cfg.crash_in_commit = strtoull(optarg, NULL, 10); break;
        case 'l':
            if ((level = zlog_level_parse(optarg)) < 0) {
                fprintf(stderr, "zsagad: unknown log level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (optind < argc || cfg.map_bytes == 0 || cfg.max_batch == 0 || cfg.reserve_pct >= 100) {
        s_usage(stderr);
        return 2;
    }
    zlog_init("zsagad", (zlog_level_t)level);
    /* czmq would install its own SIGINT handler; ours only sets a flag the
       loop checks after every poll. */
    zsys_handler_set(NULL);
    struct sigaction sa = { 0 };
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return orc_server_run(&cfg, &s_stop);
}
