/*  wrk_pool: connection pool. See wrk_pool.h. */
#include "wrk_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wrk_pool_s {
    wrk_pool_config_t cfg;
    char *uri;
    const wrk_driver_t *drv;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wrk_conn_t **idle;
    uint32_t nidle, total, opening, waiting;
    uint64_t next_connect_ms; /* backoff after a failed connect */
    uint32_t backoff_ms;
    char last_err[512];
    wrk_pool_stats_t st;
    zhist_t acquire_hist, db_hist; /* read by the main thread: atomic adds */
};

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Open one connection without holding the lock. Called with mu held;
   returns with mu held. */
static wrk_conn_t *s_open(wrk_pool_t *p, char *err, size_t errlen)
{
    p->opening++;
    pthread_mutex_unlock(&p->mu);
    char e[512];
    wrk_conn_t *c = p->drv->connect(p->uri, e, sizeof e);
    pthread_mutex_lock(&p->mu);
    p->opening--;
    if (!c) {
        p->st.connect_failures++;
        p->backoff_ms = p->backoff_ms ? (p->backoff_ms * 2 > 5000 ? 5000 : p->backoff_ms * 2) : 100;
        p->next_connect_ms = s_now_ms() + p->backoff_ms;
        snprintf(p->last_err, sizeof p->last_err, "%s", e);
        snprintf(err, errlen, "database unavailable: %s", e);
        pthread_cond_broadcast(&p->cv);
        return NULL;
    }
    p->backoff_ms = 0;
    p->next_connect_ms = 0;
    c->slow_ms = p->cfg.slow_query_ms;
    p->total++;
    p->st.connects++;
    return c;
}

wrk_pool_t *wrk_pool_new(const wrk_pool_config_t *cfg, char *err, size_t errlen)
{
    const wrk_driver_t *drv = wrk_db_driver(cfg->uri, err, errlen);
    if (!drv)
        return NULL;
    wrk_pool_t *p = calloc(1, sizeof *p);
    if (!p || !(p->uri = strdup(cfg->uri))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    if (!p->cfg.max)
        p->cfg.max = 8;
    zhist_init_latency(&p->acquire_hist);
    zhist_init_latency(&p->db_hist);
    if (p->cfg.min > p->cfg.max)
        p->cfg.min = p->cfg.max;
    if (!p->cfg.acquire_timeout_ms)
        p->cfg.acquire_timeout_ms = 5000;
    p->drv = drv;
    p->idle = calloc(p->cfg.max, sizeof *p->idle);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_mutex_lock(&p->mu);
    for (uint32_t i = 0; i < p->cfg.min; i++) {
        wrk_conn_t *c = s_open(p, err, errlen);
        if (!c)
            break; /* the database may come up later; acquire retries */
        p->idle[p->nidle++] = c;
    }
    pthread_mutex_unlock(&p->mu);
    return p;
}

void wrk_pool_destroy(wrk_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wrk_pool_t *p = *self_p;
    for (uint32_t i = 0; i < p->nidle; i++)
        wrk_db_close(&p->idle[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->idle);
    free(p->uri);
    free(p);
    *self_p = NULL;
}

wrk_conn_t *wrk_pool_acquire(wrk_pool_t *p, char *err, size_t errlen)
{
    uint64_t t0 = s_now_ms(), deadline = t0 + p->cfg.acquire_timeout_ms;
    wrk_conn_t *c = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->nidle) {
            c = p->idle[--p->nidle];
            break;
        }
        uint64_t now = s_now_ms();
        if (p->total + p->opening < p->cfg.max && now >= p->next_connect_ms) {
            if ((c = s_open(p, err, errlen)))
                break;
            if (now >= deadline)
                break;
            continue;
        }
        if (now >= deadline) {
            p->st.acquire_timeouts++;
            if (p->total + p->opening < p->cfg.max && p->last_err[0])
                snprintf(err, errlen, "database unavailable: %s", p->last_err);
            else
                snprintf(err, errlen,
                         "connection pool exhausted: no connection within %u ms (%u of %u in use)",
                         p->cfg.acquire_timeout_ms, p->total, p->cfg.max);
            break;
        }
        /* Wait for a release, or for the connect backoff to pass. */
        uint64_t until = deadline;
        if (p->total + p->opening < p->cfg.max && p->next_connect_ms > now &&
            p->next_connect_ms < until)
            until = p->next_connect_ms;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t wait_ms = until > now ? until - now : 1;
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        p->waiting++;
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        p->waiting--;
    }
    if (c) {
        p->st.acquisitions++;
        p->st.acquire_us += (s_now_ms() - t0) * 1000;
        zhist_observe_atomic(&p->acquire_hist, (s_now_ms() - t0) * 1000);
    }
    pthread_mutex_unlock(&p->mu);
    return c;
}

void wrk_pool_release(wrk_pool_t *p, wrk_conn_t **conn_p, bool broken)
{
    wrk_conn_t *c = *conn_p;
    *conn_p = NULL;
    if (!c)
        return;
    pthread_mutex_lock(&p->mu);
    p->st.queries += c->queries;
    p->st.query_us += c->query_ns / 1000;
    if (c->queries)
        zhist_observe_atomic(&p->db_hist, c->query_ns / 1000);
    p->st.slow_queries += c->slow_queries;
    p->st.errors += c->errors;
    p->st.trips += c->trips;
    c->queries = c->query_ns = c->slow_queries = c->errors = c->trips = 0;
    if (broken) {
        p->total--;
        p->st.dropped++;
        pthread_mutex_unlock(&p->mu);
        wrk_db_close(&c);
        pthread_mutex_lock(&p->mu);
    } else {
        c->idle_since_ms = s_now_ms();
        p->idle[p->nidle++] = c;
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

const zhist_t *wrk_pool_acquire_hist(wrk_pool_t *p)
{
    return &p->acquire_hist;
}

const zhist_t *wrk_pool_db_hist(wrk_pool_t *p)
{
    return &p->db_hist;
}

void wrk_pool_stats(wrk_pool_t *p, wrk_pool_stats_t *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    out->total = p->total;
    out->idle = p->nidle;
    out->active = p->total - p->nidle;
    out->waiting = p->waiting;
    out->max = p->cfg.max;
    pthread_mutex_unlock(&p->mu);
}

void wrk_pool_maintain(wrk_pool_t *p)
{
    char err[512];
    uint64_t now = s_now_ms();
    pthread_mutex_lock(&p->mu);
    /* Ping connections idle for more than 10 s, one at a time. */
    for (uint32_t i = 0; i < p->nidle; i++) {
        /* A connection released during this loop is newer than now: the
           sum, not a difference, keeps that from wrapping around. */
        if (p->idle[i]->idle_since_ms + 10000 > now)
            continue;
        wrk_conn_t *c = p->idle[i];
        p->idle[i] = p->idle[--p->nidle];
        i--;
        pthread_mutex_unlock(&p->mu);
        bool ok = p->drv->ping(c) == DB_OK;
        wrk_pool_release(p, &c, !ok);
        pthread_mutex_lock(&p->mu);
        if (!ok)
            break;
    }
    while (p->total + p->opening < p->cfg.min && s_now_ms() >= p->next_connect_ms) {
        wrk_conn_t *c = s_open(p, err, sizeof err);
        if (!c)
            break;
        c->idle_since_ms = s_now_ms();
        p->idle[p->nidle++] = c;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

const wrk_driver_t *wrk_pool_driver(wrk_pool_t *p)
{
    return p->drv;
}
