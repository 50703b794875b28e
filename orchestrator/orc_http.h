/*  orc_http: zsagad's HTTP face: /metrics for Prometheus, the web console
    (static files compiled in), and /api, which carries the client
    protocol's requests as JSON.

    /api is the clients socket by another road: a request is decoded and
    authorized exactly as if it came over ZeroMQ, answered by the same code
    after the same group commit, and its msgpack reply is sent back as
    JSON. The caller's identity is a console token: `zsaga login` (over
    CURVE, with the person's key) asks zsagad for one, and the token then
    stands for that key, with its role, until it expires or the key is
    removed from the authorized directory. In insecure mode every request
    is the anonymous peer's, as on the sockets.

        GET  /metrics          Prometheus text (no token: figures, no saga data)
        GET  /                 the console; /console.js, /console.css
        POST /api              {"type": "list", ...} with
                               Authorization: Bearer TOKEN
    A request from a page of another origin (Origin header) is refused;
    /api takes only Content-Type application/json, which a cross-site
    form cannot send. Single thread: zsagad's loop.
*/
#ifndef ZSAGA_ORC_HTTP_H
#define ZSAGA_ORC_HTTP_H

#include "common/zhttp.h"
#include "common/zmetrics.h"
#include "messages/msg.h"
#include "orc_auth.h"

typedef struct {
    /* A decoded /api request from who: answer it with orc_http_answer
       (after the batch's commit), req stays deferred until then. */
    void (*request)(void *arg, zhttp_req_t *req, const orc_principal_t *who, msg_t *m);
    /* The whole /metrics text. */
    void (*metrics)(void *arg, zmx_t *out);
    void *arg;
} orc_http_cb_t;

typedef struct orc_http_s orc_http_t;

orc_http_t *orc_http_new(const char *addr, orc_auth_t *auth, const orc_http_cb_t *cb,
                         uint64_t token_ttl_ms, char *err, size_t errlen);
void orc_http_destroy(orc_http_t **self_p);
int orc_http_fd(orc_http_t *self);
unsigned orc_http_port(orc_http_t *self);
void orc_http_run(orc_http_t *self, uint64_t mono_ms);

/* A console token for who (64 hex digits), valid token_ttl_ms. */
int orc_http_login(orc_http_t *self, const orc_principal_t *who, char token[65],
                   uint64_t *expires_ms);
/* Send a protocol reply (msgpack) to an /api request, as JSON. */
void orc_http_answer(zhttp_req_t *req, const void *reply, size_t len);

#endif
