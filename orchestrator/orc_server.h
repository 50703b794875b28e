/*  orc_server: zsagad's event loop. Owns the sockets, the journal and the
    engine; runs batches (read what is waiting, commit once, then send)
    until *stop becomes non-zero, then shuts down cleanly.

    Sockets (all bound by zsagad, all CURVE servers; see orc_auth.h for
    who may connect to each and send what):
      clients  ROUTER  submit, status, list, cancel, retry, resolve, backup, stats
      workers  ROUTER  ready, heartbeat, result in; execute, compensate, heartbeat out
      events   XPUB    one message per transition: [topic "saga.completed"][event]
    and, with http_addr, an HTTP server for /metrics and the console
    (orc_http.h), polled on the same loop.
    Runs on the calling thread, plus one short-lived thread per hot backup.
    Sets the process umask to 077: the journal, backups and ipc sockets are
    its owner's alone (ipc sockets get ipc_mode after bind).
    Returns 0 on clean shutdown, non-zero (with a logged reason) if it
    could not start.
*/
#ifndef ZSAGA_ORC_SERVER_H
#define ZSAGA_ORC_SERVER_H

#include "journal/jnl.h"

#include <signal.h>
#include <stdint.h>

typedef struct {
    const char *data_dir;
    const char *client_ep, *worker_ep, *event_ep;
    const char *advertise; /* partitions: where clients reach client_ep (NULL: client_ep) */
    size_t map_bytes;
    jnl_sync_t sync;
    uint32_t heartbeat_timeout_ms;
    uint32_t reserve_pct;
    uint32_t max_batch;          /* messages read per batch */
    uint32_t lease_ms;           /* journal on PostgreSQL: the lease's time (0: 5000) */
    uint32_t partitions;         /* journal on PostgreSQL: how many (0: 1; docs/design.md) */
    const char *member;          /* partitions: the machine it counts as (NULL: host name) */
    uint64_t crash_in_commit;    /* failure tests: see orc_config_t */
    uint64_t crash_after_commit; /* failure tests: see orc_config_t */
    const char *key_file;        /* zsagad's key pair (NAME.key_secret) */
    const char *authorized;      /* directory of the public keys allowed in */
    bool insecure;               /* plaintext, no authentication (tests only) */
    const char *backup_dir;      /* backups go only here; NULL: no backups */
    unsigned ipc_mode;           /* mode of ipc socket files (default 0600) */
    uint32_t max_systems;        /* systems the catalog may hold */
    uint64_t retain_ms;          /* retention of ended sagas: see orc_config_t */
    uint64_t retain_count;
    uint64_t tomb_ms;
    const char *archive_dir;  /* archive ended sagas here before removal; NULL: none */
    const char *http_addr;    /* metrics and console (loopback HOST:PORT); NULL: none */
    bool metrics;             /* labelled counters and histograms (orc_metrics) */
    uint64_t token_ttl_ms;    /* console tokens last this long */
    uint64_t alert_window_ms; /* alert rules' window (orc_alerts.h) */
    const char *alert_command, *alert_webhook;
    const char *alert_specs[32]; /* "RULE=WARN,CRIT" or "RULE=off" */
    size_t nalert_specs;
} orc_server_config_t;

int orc_server_run(const orc_server_config_t *cfg, volatile sig_atomic_t *stop);
/* orc_server_run's status when this zsagad gave its partition up (its
   member held more than its share): it stopped cleanly and should stand
   by again after a while (zsagad exits with it). */
#define ORC_SERVER_YIELDED 3

#endif
