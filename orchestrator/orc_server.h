/*  orc_server: zsagad's event loop. Owns the sockets, the journal and the
    engine; runs batches (read what is waiting, commit once, then send)
    until *stop becomes non-zero, then shuts down cleanly.

    Sockets (all bound by zsagad):
      clients  ROUTER  submit, status, list, cancel, retry, resolve, backup, stats
      workers  ROUTER  ready, heartbeat, result in; execute, compensate, heartbeat out
      events   PUB     one message per transition: [topic "saga.completed"][event]
    Runs on the calling thread, plus one short-lived thread per hot backup.
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
    size_t map_bytes;
    jnl_sync_t sync;
    uint32_t heartbeat_timeout_ms;
    uint32_t reserve_pct;
    uint32_t max_batch;       /* messages read per batch */
    uint64_t crash_in_commit; /* failure tests: see orc_config_t */
} orc_server_config_t;

int orc_server_run(const orc_server_config_t *cfg, volatile sig_atomic_t *stop);

#endif
