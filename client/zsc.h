/*  zsc: the C client API. One request to zsagad and its reply, over a
    DEALER that is a CURVE client of zsagad (or plaintext for a zsagad run
    --insecure), following `not_leader` to the zsagad that serves a saga's
    partition (docs/protocol.md). The command-line client is built on it.

        char err[256];
        zsc_t *c = zsc_new("tcp://127.0.0.1:5570", "alice.key_secret", "zsagad.key",
                           false, 5000, err, sizeof err);
        json_t *r = zsc_submit(c, saga, err, sizeof err);   // the `accepted` reply
        int end = zsc_wait(c, "saga-1", 60000, &state, err, sizeof err);

    Replies come back as JSON objects (jansson), the caller's to decref:
    a `rejected` or `error` reply is a reply like any other (zsc_refused
    tells them apart). NULL means no reply at all, with err saying why.
    A client is used by one thread at a time.
*/
#ifndef ZSAGA_ZSC_H
#define ZSAGA_ZSC_H

#include "messages/msg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct zsc_s zsc_t;

/* endpoints: zsagad's clients socket, or several comma-separated (an
   active zsagad and its standbys). key: this client's key pair
   (NAME.key_secret) and server_key zsagad's public key, both required
   unless insecure (plaintext, for a zsagad run --insecure). timeout_ms
   bounds each request. */
zsc_t *zsc_new(const char *endpoints, const char *key, const char *server_key, bool insecure,
               int timeout_ms, char *err, size_t errlen);
void zsc_destroy(zsc_t **c_p);

/* A socket of this type (ZMQ_DEALER, ZMQ_SUB) connected to ep with the
   client's keys (a czmq zsock_t *, the caller's to destroy); NULL with
   err. */
void *zsc_socket(const zsc_t *c, int type, const char *ep, char *err, size_t errlen);

/* Send a packed request body; follows not_leader (eight hops at most). */
json_t *zsc_request(zsc_t *c, const void *body, size_t len, char *err, size_t errlen);
/* A request from a message (its req is set here). */
json_t *zsc_call(zsc_t *c, msg_t *m, char *err, size_t errlen);
/* Submit a saga definition (a JSON object, as docs/protocol.md). */
json_t *zsc_submit(zsc_t *c, json_t *saga, char *err, size_t errlen);
/* status, cancel, retry, resolve of one saga (reason: cancel's or
   resolve's note, or NULL). */
json_t *zsc_status(zsc_t *c, const char *id, char *err, size_t errlen);
json_t *zsc_command(zsc_t *c, msg_type_t type, const char *id, const char *reason, char *err,
                    size_t errlen);

/* Poll the saga until it ends or timeout_ms passes: 0 once ended (its
   state copied to state), 1 for a refusal (err holds code: reason), 3
   for no answer, 4 when it did not end in time. */
int zsc_wait(zsc_t *c, const char *id, int timeout_ms, char state[24], char *err, size_t errlen);

/* Is this reply a refusal (`rejected` or `error`)? */
bool zsc_refused(const json_t *reply);
/* A string member of a reply, "" when absent. */
const char *zsc_str(const json_t *o, const char *key);
/* Is a saga in this state ended? */
bool zsc_terminal(const char *state);

#endif
