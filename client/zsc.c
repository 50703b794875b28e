/*  zsc: the C client API. See zsc.h. */
#include "zsc.h"

#include "common/zkeys.h"
#include "messages/msg_json.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOPS 8

struct zsc_s {
    char *endpoints, *key, *server_key;
    bool insecure;
    int timeout_ms;
};

static char *s_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

zsc_t *zsc_new(const char *endpoints, const char *key, const char *server_key, bool insecure,
               int timeout_ms, char *err, size_t errlen)
{
    if (!endpoints || !*endpoints) {
        snprintf(err, errlen, "no endpoint given");
        return NULL;
    }
    zsc_t *c = calloc(1, sizeof *c);
    if (!c || !(c->endpoints = strdup(endpoints)) || (key && !(c->key = s_dup(key))) ||
        (server_key && !(c->server_key = s_dup(server_key)))) {
        zsc_destroy(&c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->insecure = insecure;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    return c;
}

void zsc_destroy(zsc_t **c_p)
{
    zsc_t *c = *c_p;
    if (!c)
        return;
    free(c->endpoints);
    free(c->key);
    free(c->server_key);
    free(c);
    *c_p = NULL;
}

void *zsc_socket(const zsc_t *c, int type, const char *ep, char *err, size_t errlen)
{
    zsock_t *sock = zsock_new(type);
    if (!sock) {
        snprintf(err, errlen, "cannot make a socket");
        return NULL;
    }
    zsock_set_linger(sock, 0);
    /* A DEALER with no peer blocks a send: while a refused handshake (a
       CURVE client at a plaintext zsagad, an unknown key) has torn its
       connection down, a send would wait for ever without this. */
    zsock_set_sndtimeo(sock, c->timeout_ms);
    if (!c->insecure && zkeys_client(zsock_resolve(sock), c->key, c->server_key, err, errlen)) {
        zsock_destroy(&sock);
        return NULL;
    }
    /* Several endpoints (an active zsagad and its standbys): only
       connections that are up take a request. */
    if (strchr(ep, ','))
        zsock_set_immediate(sock, 1);
    if (zsock_attach(sock, ep, false)) {
        snprintf(err, errlen, "cannot connect to %s", ep);
        zsock_destroy(&sock);
    }
    return sock;
}

/* One request to the zsagad processes at ep, and its reply. */
static json_t *s_request_at(zsc_t *c, const char *ep, const void *body, size_t len, char *err,
                            size_t errlen)
{
    zsock_t *sock = zsc_socket(c, ZMQ_DEALER, ep, err, errlen);
    json_t *reply = NULL;
    if (!sock)
        return NULL;
    zframe_t *f = zframe_new(body, len);
    bool sent = zframe_send(&f, sock, 0) == 0;
    zframe_destroy(&f); /* left to us when the send timed out */
    zpoller_t *p = zpoller_new(sock, NULL);
    if (sent && zpoller_wait(p, c->timeout_ms)) {
        zframe_t *in = zframe_recv(sock);
        if (in) {
            mp_reader_t r;
            mp_reader_init(&r, zframe_data(in), zframe_size(in));
            reply = msg_mp_to_json(&r, 0);
            zframe_destroy(&in);
        }
        if (!reply)
            snprintf(err, errlen, "zsagad at %s sent a reply that is not a msgpack map", ep);
    } else
        snprintf(err, errlen,
                 "no answer from zsagad at %s within %d ms: is zsagad running there (its "
                 "--clients endpoint)?%s",
                 ep, c->timeout_ms,
                 !c->insecure ? " A key zsagad does not know, or the wrong --server-key, is also "
                                "refused at the handshake without a word"
                              : "");
    zpoller_destroy(&p);
    zsock_destroy(&sock);
    return reply;
}

/* With partitions, a zsagad that does not serve the saga's partition
   names the endpoints of the one that does (or none, while a standby
   takes it over: ask again shortly). */
json_t *zsc_request(zsc_t *c, const void *body, size_t len, char *err, size_t errlen)
{
    char ep[512];
    snprintf(ep, sizeof ep, "%s", c->endpoints);
    json_t *reply = NULL;
    for (int hop = 0; hop < MAX_HOPS; hop++) {
        json_decref(reply);
        if (!(reply = s_request_at(c, ep, body, len, err, errlen)))
            return NULL;
        if (strcmp(zsc_str(reply, "code"), "not_leader") != 0)
            return reply;
        const char *to = zsc_str(reply, "reason");
        if (*to && strlen(to) < sizeof ep) {
            snprintf(ep, sizeof ep, "%s", to);
        } else {
            snprintf(ep, sizeof ep, "%s", c->endpoints);
            zclock_sleep(250 << (hop < 3 ? hop : 3));
        }
    }
    return reply; /* still not_leader: a refusal like any other */
}

json_t *zsc_call(zsc_t *c, msg_t *m, char *err, size_t errlen)
{
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    m->req = (uint64_t)zclock_usecs();
    msg_pack(m, &pk);
    json_t *r = zsc_request(c, buf.data, buf.size, err, errlen);
    msgpack_sbuffer_destroy(&buf);
    return r;
}

json_t *zsc_submit(zsc_t *c, json_t *saga, char *err, size_t errlen)
{
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msg_pack_header(&pk, MSG_SUBMIT, 4);
    mp_pack_kv_uint(&pk, "req", (uint64_t)zclock_usecs());
    mp_pack_cstr(&pk, "saga");
    /* What JSON cannot say in msgpack (a float) is packed as it is and
       refused by zsagad with a reason naming the field. */
    char jerr[256];
    msg_json_to_mp(saga, &pk, jerr, sizeof jerr);
    json_t *r = zsc_request(c, buf.data, buf.size, err, errlen);
    msgpack_sbuffer_destroy(&buf);
    return r;
}

json_t *zsc_status(zsc_t *c, const char *id, char *err, size_t errlen)
{
    return zsc_command(c, MSG_STATUS, id, NULL, err, errlen);
}

json_t *zsc_command(zsc_t *c, msg_type_t type, const char *id, const char *reason, char *err,
                    size_t errlen)
{
    msg_t m;
    msg_init(&m, type);
    snprintf(m.id, sizeof m.id, "%s", id);
    if (reason)
        snprintf(m.text, sizeof m.text, "%s", reason);
    return zsc_call(c, &m, err, errlen);
}

int zsc_wait(zsc_t *c, const char *id, int timeout_ms, char state[24], char *err, size_t errlen)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        json_t *r = zsc_status(c, id, err, errlen);
        if (!r)
            return 3;
        if (zsc_refused(r)) { /* not_found (or removed) ends the wait now */
            snprintf(err, errlen, "%s: %s", zsc_str(r, "code"), zsc_str(r, "reason"));
            json_decref(r);
            return 1;
        }
        const char *s = zsc_str(json_object_get(r, "saga"), "state");
        bool ended = zsc_terminal(s);
        snprintf(state, 24, "%s", s);
        json_decref(r);
        if (ended)
            return 0;
        zclock_sleep(50);
    }
    snprintf(err, errlen, "saga %s did not end within %d ms", id, timeout_ms);
    return 4;
}

bool zsc_refused(const json_t *reply)
{
    const char *type = zsc_str(reply, "type");
    return strcmp(type, "rejected") == 0 || strcmp(type, "error") == 0;
}

const char *zsc_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

bool zsc_terminal(const char *state)
{
    return strcmp(state, "completed") == 0 || strcmp(state, "compensated") == 0 ||
           strcmp(state, "parked") == 0 || strcmp(state, "resolved") == 0;
}
