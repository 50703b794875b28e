/*  orc_auth: who may talk to zsagad, and what each may do.

    Every socket of zsagad is a CURVE server. A peer completes the
    handshake only if its public key is in the authorized directory (czmq
    certificates, see common/zkeys.h) and its role fits the socket:
        workers socket   role "worker"
        clients, events  role "submit", "operator" or "admin"
    This module is zsagad's ZAP handler (ZeroMQ's authentication protocol,
    RFC 27): it owns the inproc ZAP socket, which the loop polls, so keys
    are checked on the loop thread with no lock. ZeroMQ then stamps every
    message of that connection with the key (its "User-Id"), and
    orc_auth_peer turns that back into the principal, with its rights:

        role       submit    submit, status, list, stats, watch, events,
                             alerts, login (a read-only console)
                   operator  also cancel, retry, resolve
                   admin     also backup
                   worker    ready, heartbeat, result, for its systems only
        systems    the systems a worker key may serve
        operations if set, the only operations it may register

    The directory is read again when it changes: a new key is accepted at
    its first handshake; a removed key is refused from then on and its live
    connections are cut off (their messages dropped) within seconds (a
    file edited in place, within 30 s).
    A key that abuses the protocol can be banned until restart.

    Insecure mode (no directory): plaintext, no handshake check, every peer
    is "anonymous" with every right. For tests on one host only; zsagad
    warns when it starts that way.
    Single thread (zsagad's loop).
*/
#ifndef ZSAGA_ORC_AUTH_H
#define ZSAGA_ORC_AUTH_H

#include "messages/msg.h"

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

typedef enum {
    ORC_ROLE_NONE = 0,
    ORC_ROLE_SUBMIT,
    ORC_ROLE_OPERATOR,
    ORC_ROLE_ADMIN,
    ORC_ROLE_WORKER,
} orc_role_t;

typedef struct {
    char key[41];              /* Z85 public key; "" in insecure mode */
    char name[MSG_ID_MAX + 1]; /* the certificate's name: logs, history */
    orc_role_t role;
    char systems[512];     /* comma list; "*" means any (insecure mode) */
    char operations[2048]; /* comma list; "" means any */
} orc_principal_t;

typedef struct {
    uint64_t allowed, denied, banned, revoked;
} orc_auth_stats_t;

typedef struct orc_auth_s orc_auth_t;

/* authorized_dir NULL: insecure mode. Otherwise binds the ZAP handler in
   ctx, which must happen before any CURVE server socket binds. */
orc_auth_t *orc_auth_new(void *ctx, const char *authorized_dir, char *err, size_t errlen);
void orc_auth_destroy(orc_auth_t **self_p);
bool orc_auth_insecure(const orc_auth_t *self);

/* The ZAP socket to poll (NULL in insecure mode), and answering what
   waits on it. */
void *orc_auth_socket(orc_auth_t *self);
void orc_auth_handle(orc_auth_t *self);

/* Who sent this frame: NULL if its key is unknown, revoked or banned. */
const orc_principal_t *orc_auth_peer(orc_auth_t *self, zmq_msg_t *frame);
/* The principal of a key that completed a handshake and is still
   authorized (not removed, not banned); NULL otherwise. The anonymous
   peer in insecure mode. */
const orc_principal_t *orc_auth_key(orc_auth_t *self, const char *key);
/* Refuse this key from now until restart. */
void orc_auth_ban(orc_auth_t *self, const orc_principal_t *p);
/* Notice removed keys; call every second or so. */
void orc_auth_refresh(orc_auth_t *self);

/* May p send a request of this type on the clients socket? */
bool orc_auth_may(const orc_principal_t *p, msg_type_t type);
/* May p serve system, and register op for it? */
bool orc_auth_serves(const orc_principal_t *p, const char *system);
bool orc_auth_op_allowed(const orc_principal_t *p, const char *op);

const char *orc_role_name(orc_role_t role);
/* The role a request type needs at least. */
orc_role_t orc_auth_needed(msg_type_t type);
const orc_auth_stats_t *orc_auth_stats(const orc_auth_t *self);

#endif
