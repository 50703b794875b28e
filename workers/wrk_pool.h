/*  wrk_pool: a worker's own pool of database connections.

    Holds between min and max connections to one URI. wrk_pool_acquire
    hands out an idle connection, opens a new one if below max, or waits
    (up to the acquire timeout) for one to come back; on timeout it returns
    NULL and says why, so the step is answered "retry later" rather than
    lost. A connection released as broken is closed; new connections after
    a failed connect wait a growing backoff (100 ms doubling to 5 s), so a
    database that is down is not hammered. wrk_pool_maintain (called from
    the worker's main loop) pings idle connections and tops up to min.

    Thread-safe: every executor thread calls acquire/release.
*/
#ifndef ZSAGA_WRK_POOL_H
#define ZSAGA_WRK_POOL_H

#include "common/zmetrics.h"
#include "wrk_db.h"

typedef struct {
    const char *uri;
    uint32_t min, max;
    uint32_t acquire_timeout_ms;
    uint32_t slow_query_ms;
} wrk_pool_config_t;

typedef struct {
    uint32_t total, active, idle, waiting, max;
    uint64_t acquisitions, acquire_timeouts, acquire_us;
    uint64_t queries, query_us, slow_queries, errors, trips;
    uint64_t connects, connect_failures, dropped;
} wrk_pool_stats_t;

typedef struct wrk_pool_s wrk_pool_t;

/* Opens min connections; fails only if the URI is unusable. */
wrk_pool_t *wrk_pool_new(const wrk_pool_config_t *cfg, char *err, size_t errlen);
void wrk_pool_destroy(wrk_pool_t **self_p);
wrk_conn_t *wrk_pool_acquire(wrk_pool_t *self, char *err, size_t errlen);
/* Give a connection back; broken ones are closed and replaced later. */
void wrk_pool_release(wrk_pool_t *self, wrk_conn_t **conn_p, bool broken);
void wrk_pool_stats(wrk_pool_t *self, wrk_pool_stats_t *out);
/* Histograms (microseconds) of the wait for a connection and of the
   database time of each transaction a connection ran before release. */
const zhist_t *wrk_pool_acquire_hist(wrk_pool_t *self);
const zhist_t *wrk_pool_db_hist(wrk_pool_t *self);
/* Health check of idle connections, and top-up to min. */
void wrk_pool_maintain(wrk_pool_t *self);
const wrk_driver_t *wrk_pool_driver(wrk_pool_t *self);

#endif
