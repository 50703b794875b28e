/*  wrk_db_redis: the Redis driver, over hiredis.

    URI: redis://[[USER]:PASS@]HOST[:PORT][/DB], or rediss:// for TLS
    with ?cacert=FILE (the CA that signed the server's certificate; the
    system's store without it) and optionally &cert=FILE&key=FILE. A
    USER authenticates as that ACL user (AUTH USER PASS). TLS goes through
    wrk_tls.c, with hiredis's formatter and reply parser: Debian's hiredis
    has no TLS of its own. Redis runs no SQL: here a
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
#include "wrk_tls.h"
#include "wrk_uri.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CACHE_SIZE 32
#define MAX_ARGS   64

typedef struct {
    wrk_conn_t base;
    redisContext *r;     /* plaintext */
    wrk_tls_t *tls;      /* or TLS, with: */
    redisReader *reader; /* its replies' parser */
    char errstr[256];
    struct {
        const char *script;
        char sha[41];
    } cache[CACHE_SIZE];
} r_conn_t;

static db_rc_t r_lost(r_conn_t *c)
{
    return wrk_db_fail(&c->base, DB_BROKEN, "redis: %s", c->errstr[0] ? c->errstr : "lost");
}

/* One command, one reply (NULL when the connection failed: errstr says
   why, and the connection is broken). */
static redisReply *r_command(r_conn_t *c, int argc, const char **argv, const size_t *lens)
{
    c->base.trips++;
    if (!c->tls) {
        redisReply *rep = redisCommandArgv(c->r, argc, argv, lens);
        if (!rep)
            snprintf(c->errstr, sizeof c->errstr, "%s", c->r->errstr[0] ? c->r->errstr : "lost");
        return rep;
    }
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) {
        snprintf(c->errstr, sizeof c->errstr, "out of memory");
        return NULL;
    }
    int rc = wrk_tls_write(c->tls, cmd, (size_t)len);
    redisFreeCommand(cmd);
    void *reply = NULL;
    while (rc == 0) {
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            snprintf(c->errstr, sizeof c->errstr, "protocol error: %s", c->reader->errstr);
            return NULL;
        }
        if (reply)
            return reply;
        char buf[16384];
        ssize_t n = wrk_tls_read(c->tls, buf, sizeof buf);
        if (n < 0)
            break;
        redisReaderFeed(c->reader, buf, (size_t)n);
    }
    snprintf(c->errstr, sizeof c->errstr, "%s", wrk_tls_error(c->tls));
    return NULL;
}

static redisReply *r_command3(r_conn_t *c, const char *a, const char *b, const char *d)
{
    const char *argv[3] = { a, b, d };
    size_t lens[3] = { strlen(a), b ? strlen(b) : 0, d ? strlen(d) : 0 };
    return r_command(c, d ? 3 : b ? 2 : 1, argv, lens);
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
    redisReply *rep = r_command3(c, "SCRIPT", "LOAD", script);
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
        redisReply *rep = r_command(c, n + 3, argv, lens);
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
    redisReply *rep = r_command3(c, "PING", NULL, NULL);
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

static bool r_command_ok(r_conn_t *c, char *err, size_t errlen, const char *a, const char *b,
                         const char *d)
{
    redisReply *rep = r_command3(c, a, b, d);
    bool ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(err, errlen, "redis %s: %s", a, rep ? rep->str : c->errstr);
    freeReplyObject(rep);
    return ok;
}

static wrk_conn_t *r_connect(const char *uri, char *err, size_t errlen)
{
    static const char *const known[] = { "cacert", "cert", "key", NULL };
    wrk_uri_t u;
    char uerr[200] = "";
    if (wrk_uri_parse(uri, &u, uerr, sizeof uerr) ||
        (strcmp(u.scheme, "redis") != 0 && strcmp(u.scheme, "rediss") != 0) || !u.host[0] ||
        strspn(u.path, "0123456789") != strlen(u.path) ||
        !wrk_uri_query_known(&u, known, uerr, sizeof uerr)) {
        snprintf(err, errlen, "redis URI: want redis[s]://[[USER]:PASS@]HOST[:PORT][/DB]%s%s",
                 uerr[0] ? ": " : "", uerr);
        return NULL;
    }
    bool tls = strcmp(u.scheme, "rediss") == 0;
    if (!tls && u.nquery) {
        snprintf(err, errlen, "redis URI: cacert, cert and key are for rediss:// (TLS)");
        return NULL;
    }
    unsigned port = u.port ? u.port : 6379;
    r_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base.drv = &wrk_driver_redis;
    struct timeval tv = { 5, 0 };
    if (tls) {
        /* 30 s: a reply slower than this means the server is gone or stuck. */
        if (!(c->tls = wrk_tls_connect(u.host, port, wrk_uri_query(&u, "cacert"),
                                       wrk_uri_query(&u, "cert"), wrk_uri_query(&u, "key"), 30000,
                                       err, errlen)) ||
            !(c->reader = redisReaderCreate())) {
            r_close(&c->base);
            return NULL;
        }
    } else {
        c->r = redisConnectWithTimeout(u.host, (int)port, tv);
        if (!c->r || c->r->err) {
            snprintf(err, errlen, "redis %s:%u: %s", u.host, port,
                     c->r ? c->r->errstr : "out of memory");
            r_close(&c->base);
            return NULL;
        }
        tv.tv_sec = 30;
        redisSetTimeout(c->r, tv);
    }
    if ((u.has_password && !(u.user[0] ? r_command_ok(c, err, errlen, "AUTH", u.user, u.password)
                                       : r_command_ok(c, err, errlen, "AUTH", u.password, NULL))) ||
        (u.path[0] && !r_command_ok(c, err, errlen, "SELECT", u.path, NULL))) {
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
    wrk_tls_close(&c->tls);
    if (c->reader)
        redisReaderFree(c->reader);
    free(c);
}
