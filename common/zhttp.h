/*  zhttp: a small HTTP server for metrics and the console, on the
    caller's own loop (libmicrohttpd in external-poll mode, epoll).

    The caller polls zhttp_fd() for input along with its other sockets and
    calls zhttp_run() when it is readable, and at least every 250 ms (for
    connection timeouts). Every request is handled on that thread, so a
    handler may read the caller's state with no lock.

    A handler answers at once (zhttp_reply) or later: it keeps the request
    (zhttp_defer) and answers it with zhttp_reply after, say, the journal
    commit that makes the answer true; zhttp_run then sends it.

    Only loopback addresses are served: what goes over this port (a
    console token, saga data) is plaintext. Put a TLS proxy in front to
    reach it from elsewhere.
    Request bodies over 64 KiB are refused (413); at most 64 connections.
*/
#ifndef ZSAGA_ZHTTP_H
#define ZSAGA_ZHTTP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct zhttp_s zhttp_t;
typedef struct zhttp_req_s zhttp_req_t;

/* Called once per request, with the whole body read. The handler must
   call zhttp_reply or zhttp_defer before it returns. */
typedef void(zhttp_fn)(void *arg, zhttp_req_t *req);

/* addr is "HOST:PORT" with a loopback HOST (127.0.0.1, ::1, localhost);
   port 0 picks a free one (zhttp_port says which). */
zhttp_t *zhttp_new(const char *addr, zhttp_fn *fn, void *arg, char *err, size_t errlen);
void zhttp_destroy(zhttp_t **self_p);
int zhttp_fd(zhttp_t *self);
unsigned zhttp_port(zhttp_t *self);
void zhttp_run(zhttp_t *self);

const char *zhttp_method(const zhttp_req_t *req);
const char *zhttp_path(const zhttp_req_t *req);
/* A query argument, or NULL. */
const char *zhttp_arg(const zhttp_req_t *req, const char *name);
const char *zhttp_header(const zhttp_req_t *req, const char *name);
const char *zhttp_body(const zhttp_req_t *req, size_t *len);

/* Answer: body is copied. Security headers are added to every answer. */
void zhttp_reply(zhttp_req_t *req, unsigned status, const char *ctype, const char *body,
                 size_t len);
/* Answer later: req stays valid until zhttp_reply. */
void zhttp_defer(zhttp_req_t *req);

#endif
