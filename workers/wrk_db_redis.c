/*  wrk_db_redis: the Redis driver, over hiredis.

    URI: redis://[:PASS@]HOST[:PORT][/DB]. Redis runs no SQL: here a
    "statement" is a Lua script, run atomically by the server with EVALSHA
    (SCRIPT LOAD once per connection, cached by the address of the script
    text; loaded again if the server forgot it, after a restart). The
    parameters are the script's ARGV; the script builds its keys from
    them, which a single Redis allows (a cluster would want them in KEYS).
    The script's reply is one row: an array gives one column per element
    (integers as integers, strings as text, nil as NULL), anything else a
    single column.

    A script is the unit of atomicity, so begin, commit and rollback do
    nothing: whatever must be atomic, the barrier and the effect, is one
    script (see wrk_step.c). Error replies: BUSY, LOADING, OOM, READONLY,
    TRYAGAIN and MASTERDOWN are transient; other script errors fail for
    good; a lost connection is broken.
*/
#include "wrk_db.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CACHE_SIZE 32
#define MAX_ARGS   64

typedef struct {
    wrk_conn_t base;
    redisContext *r;
    struct {
        const char *script;
        char sha[41];
    } cache[CACHE_SIZE];
} r_conn_t;

static db_rc_t r_lost(r_conn_t *c)
{
    return wrk_db_fail(&c->base, DB_BROKEN, "redis: %s", c->r->errstr[0] ? c->r->errstr : "lost");
}

static db_rc_t r_error(r_conn_t *c, const redisReply *rep)
{
    static const char *transient[] = { "BUSY",     "LOADING",  "OOM",
                                       "READONLY", "TRYAGAIN", "MASTERDOWN" };
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++) {
        size_t n = strlen(transient[i]);
        if (strncmp(rep->str, transient[i], n) == 0 && (rep->str[n] == ' ' || !rep->str[n]))
            return wrk_db_fail(&c->base, DB_RETRY, "redis: %s", rep->str);
    }
    return wrk_db_fail(&c->base, DB_FAILED, "redis: %.400s", rep->str);
}

static void r_push(r_conn_t *c, const redisReply *e)
{
    switch (e->type) {
    case REDIS_REPLY_INTEGER: db_rows_push(&c->base.rows, DB_INT, e->integer, NULL, 0); break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: db_rows_push(&c->base.rows, DB_TEXT, 0, e->str, (size_t)e->len); break;
    default: db_rows_push(&c->base.rows, DB_NULL, 0, NULL, 0);
    }
}

static db_rc_t r_load(r_conn_t *c, const char *script, char sha[41])
{
    redisReply *rep = redisCommand(c->r, "SCRIPT LOAD %s", script);
    if (!rep)
        return r_lost(c);
    db_rc_t rc = DB_OK;
    if (rep->type == REDIS_REPLY_ERROR)
        rc = r_error(c, rep);
    else if (rep->type != REDIS_REPLY_STRING || rep->len != 40)
        rc = wrk_db_fail(&c->base, DB_FAILED, "redis: SCRIPT LOAD gave no digest");
    else
        memcpy(sha, rep->str, 41);
    freeReplyObject(rep);
    return rc;
}

static db_rc_t r_exec(wrk_conn_t *base, const char *script, const db_val_t *p, int n)
{
    r_conn_t *c = (r_conn_t *)base;
    if (n > MAX_ARGS)
        return wrk_db_fail(base, DB_FAILED, "redis: more than %d arguments", MAX_ARGS);
    size_t h = ((uintptr_t)script >> 3) % CACHE_SIZE;
    db_rc_t rc;
    if (c->cache[h].script != script) {
        if ((rc = r_load(c, script, c->cache[h].sha)))
            return rc;
        c->cache[h].script = script;
    }
    const char *argv[MAX_ARGS + 3];
    size_t lens[MAX_ARGS + 3];
    char ints[MAX_ARGS][24];
    argv[0] = "EVALSHA";
    argv[1] = c->cache[h].sha;
    argv[2] = "0";
    for (int i = 0; i < n; i++) {
        const char *s = "";
        size_t len = 0;
        switch (p[i].type) {
        case DB_INT:
            len = (size_t)snprintf(ints[i], sizeof ints[i], "%lld", (long long)p[i].i);
            s = ints[i];
            break;
        case DB_TEXT:
        case DB_BLOB:
            s = p[i].s;
            len = p[i].len == (size_t)-1 ? strlen(s) : p[i].len;
            break;
        default: break;
        }
        argv[i + 3] = s;
        lens[i + 3] = len;
    }
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    for (int tries = 0;; tries++) {
        redisReply *rep = redisCommandArgv(c->r, n + 3, argv, lens);
        if (!rep)
            return r_lost(c);
        if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0 && !tries) {
            /* The server restarted and forgot the script: load it again. */
            freeReplyObject(rep);
            if ((rc = r_load(c, script, c->cache[h].sha)))
                return rc;
            continue;
        }
        if (rep->type == REDIS_REPLY_ERROR) {
            rc = r_error(c, rep);
        } else if (rep->type == REDIS_REPLY_ARRAY) {
            base->rows.ncols = (int)rep->elements;
            for (size_t i = 0; i < rep->elements; i++)
                r_push(c, rep->element[i]);
            rc = DB_OK;
        } else {
            base->rows.ncols = 1;
            r_push(c, rep);
            rc = DB_OK;
        }
        freeReplyObject(rep);
        return rc;
    }
}

/* Each script is its own transaction. */
static db_rc_t r_begin(wrk_conn_t *base, db_iso_t iso, uint32_t timeout_ms)
{
    (void)base, (void)iso, (void)timeout_ms;
    return DB_OK;
}

static db_rc_t r_commit(wrk_conn_t *base)
{
    (void)base;
    return DB_OK;
}

static void r_rollback(wrk_conn_t *base)
{
    (void)base;
}

static db_rc_t r_ping(wrk_conn_t *base)
{
    r_conn_t *c = (r_conn_t *)base;
    redisReply *rep = redisCommand(c->r, "PING");
    if (!rep)
        return r_lost(c);
    db_rc_t rc = rep->type == REDIS_REPLY_ERROR ? r_error(c, rep) : DB_OK;
    freeReplyObject(rep);
    return rc;
}

static wrk_conn_t *r_connect(const char *uri, char *err, size_t errlen);
static void r_close(wrk_conn_t *base);

const wrk_driver_t wrk_driver_redis = {
    "redis", DB_DIALECT_REDIS, r_connect, r_close, r_begin, r_commit, r_rollback, r_exec, r_ping,
};

static bool r_command_ok(r_conn_t *c, char *err, size_t errlen, const char *fmt, const char *arg)
{
    redisReply *rep = redisCommand(c->r, fmt, arg);
    bool ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(err, errlen, "redis: %s", rep ? rep->str : c->r->errstr);
    freeReplyObject(rep);
    return ok;
}

static wrk_conn_t *r_connect(const char *uri, char *err, size_t errlen)
{
    char buf[512], *pass = NULL, *host, *dbs = NULL;
    snprintf(buf, sizeof buf, "%s", uri);
    if (strncmp(buf, "redis://", 8) != 0) {
        snprintf(err, errlen, "redis URI: want redis://[:PASS@]HOST[:PORT][/DB]");
        return NULL;
    }
    host = buf + 8;
    char *at = strrchr(host, '@');
    if (at) {
        *at = 0;
        pass = strchr(host, ':') ? strchr(host, ':') + 1 : host;
        host = at + 1;
    }
    char *slash = strchr(host, '/');
    if (slash) {
        *slash = 0;
        dbs = slash + 1;
    }
    int port = 6379;
    char *colon = strrchr(host, ':');
    if (colon) {
        *colon = 0;
        port = atoi(colon + 1);
    }
    if (!*host || port <= 0 || port > 65535 ||
        (dbs && *dbs && strspn(dbs, "0123456789") != strlen(dbs))) {
        snprintf(err, errlen, "redis URI: want redis://[:PASS@]HOST[:PORT][/DB]");
        return NULL;
    }
    r_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base.drv = &wrk_driver_redis;
    struct timeval tv = { 5, 0 };
    c->r = redisConnectWithTimeout(host, port, tv);
    if (!c->r || c->r->err) {
        snprintf(err, errlen, "redis %s:%d: %s", host, port, c->r ? c->r->errstr : "out of memory");
        r_close(&c->base);
        return NULL;
    }
    /* A reply slower than this means the server is gone or stuck. */
    tv.tv_sec = 30;
    redisSetTimeout(c->r, tv);
    if ((pass && !r_command_ok(c, err, errlen, "AUTH %s", pass)) ||
        (dbs && *dbs && !r_command_ok(c, err, errlen, "SELECT %s", dbs))) {
        r_close(&c->base);
        return NULL;
    }
    return &c->base;
}

static void r_close(wrk_conn_t *base)
{
    r_conn_t *c = (r_conn_t *)base;
    if (c->r)
        redisFree(c->r);
    free(c);
}
