/*  zsaga-probe: a test tool that speaks the protocol by hand.

    zsaga-probe worker ENDPOINT CMD...
        Binds ENDPOINT as an orchestrator would, waits for one worker to
        register, then runs each CMD and prints each result as a line:
            PHASE STATUS CODE [output JSON]
        CMD is  execute:SAGA:STEP:OP:ATTEMPT:PARAMS_JSON
           or   compensate:SAGA:STEP:OP:ATTEMPT:PARAMS_JSON
           or   twice:...  the same message sent twice at once, both results printed
    zsaga-probe raw ENDPOINT TEXT
        Sends TEXT as one raw frame to a zsagad client socket and prints the
        reply as JSON (for malformed-input tests).
*/
#include "common/zkeys.h"
#include "messages/msg.h"

#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_json_pack(json_t *j, msgpack_packer *pk)
{
    const char *k;
    json_t *v;
    msgpack_pack_map(pk, json_object_size(j));
    json_object_foreach(j, k, v)
    {
        mp_pack_cstr(pk, k);
        if (json_is_integer(v))
            msgpack_pack_int64(pk, json_integer_value(v));
        else if (json_is_string(v))
            mp_pack_cstr(pk, json_string_value(v));
        else if (json_is_boolean(v))
            json_is_true(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        else
            msgpack_pack_nil(pk);
    }
}

static void s_print_result(const msg_t *m)
{
    printf("%s %s %s", msg_phase_name(m->phase), msg_status_name(m->status),
           m->code[0] ? m->code : "-");
    msg_kv_t kv[MSG_MAX_PARAMS];
    char err[256];
    int n = msg_params_parse(m->output, m->output_len, kv, err, sizeof err);
    for (int i = 0; i < n; i++) {
        if (kv[i].type == MP_STR)
            printf(" %s=\"%.*s\"", kv[i].key, (int)kv[i].slen, kv[i].s);
        else if (kv[i].type == MP_INT)
            printf(" %s=%lld", kv[i].key, (long long)kv[i].i);
    }
    printf("\n");
    fflush(stdout);
}

static int s_recv_result(zsock_t *router, msg_t *m)
{
    char err[512];
    zpoller_t *p = zpoller_new(router, NULL);
    for (;;) {
        if (!zpoller_wait(p, 15000)) {
            zpoller_destroy(&p);
            fprintf(stderr, "probe: no result within 15 s\n");
            return -1;
        }
        zmsg_t *msg = zmsg_recv(router);
        zframe_t *rid = zmsg_pop(msg), *body = zmsg_pop(msg);
        int ok = body && !msg_decode(zframe_data(body), zframe_size(body), m, err, sizeof err);
        if (ok && m->type == MSG_HEARTBEAT) {
            /* Answer so the worker stays registered. */
            zsock_send(router, "fb", rid, "\x82\xa1v\x01\xa4type\xa9heartbeat", (size_t)19);
            ok = 0;
        }
        zframe_destroy(&rid);
        if (ok && m->type == MSG_RESULT) {
            /* Keep the body alive for the borrowed output slice. */
            static zframe_t *keep;
            zframe_destroy(&keep);
            keep = body;
            zmsg_destroy(&msg);
            zpoller_destroy(&p);
            return 0;
        }
        zframe_destroy(&body);
        zmsg_destroy(&msg);
    }
}

static int s_worker(const char *ep, int argc, char **argv)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    char err[512];
    zframe_t *rid = NULL;
    /* As an orchestrator: a CURVE server with the key pair in
       ZSAGA_PROBE_KEY (zsagad's to pass, another to play a fake one). */
    const char *key = getenv("ZSAGA_PROBE_KEY");
    if (key && *key) {
        zcert_t *cert = zkeys_load_secret(key, err, sizeof err);
        if (!cert || zkeys_server(zsock_resolve(router), cert, "workers")) {
            fprintf(stderr, "probe: %s\n", cert ? "cannot set CURVE" : err);
            return 2;
        }
        zcert_destroy(&cert);
    }
    if (zsock_bind(router, "%s", ep) < 0) {
        fprintf(stderr, "probe: cannot bind %s\n", ep);
        return 2;
    }
    zpoller_t *p = zpoller_new(router, NULL);
    while (!rid) {
        if (!zpoller_wait(p, 15000)) {
            fprintf(stderr, "probe: no worker registered within 15 s\n");
            return 2;
        }
        zmsg_t *msg = zmsg_recv(router);
        zframe_t *f = zmsg_first(msg), *body = zmsg_next(msg);
        msg_t m;
        if (body && !msg_decode(zframe_data(body), zframe_size(body), &m, err, sizeof err) &&
            m.type == MSG_READY)
            rid = zframe_dup(f);
        zmsg_destroy(&msg);
    }
    zpoller_destroy(&p);
    for (int i = 0; i < argc; i++) {
        char *spec = strdup(argv[i]), *save = NULL;
        char *kind = strtok_r(spec, ":", &save), *saga = strtok_r(NULL, ":", &save),
             *step = strtok_r(NULL, ":", &save), *op = strtok_r(NULL, ":", &save),
             *att = strtok_r(NULL, ":", &save), *js = save;
        int copies = 1;
        if (kind && strcmp(kind, "twice") == 0) {
            copies = 2;
            kind = saga;
            saga = step;
            step = op;
            op = att;
            att = strtok_r(NULL, ":", &save);
            js = save;
        }
        if (!kind || !saga || !step || !op || !att || !js) {
            fprintf(stderr, "probe: bad command '%s'\n", argv[i]);
            return 2;
        }
        json_error_t jerr;
        json_t *params = json_loads(js, 0, &jerr);
        if (!params) {
            fprintf(stderr, "probe: params: %s\n", jerr.text);
            return 2;
        }
        msgpack_sbuffer pb, body;
        msgpack_packer pk;
        msgpack_sbuffer_init(&pb);
        msgpack_packer_init(&pk, &pb, msgpack_sbuffer_write);
        s_json_pack(params, &pk);
        json_decref(params);
        msg_t m;
        msg_init(&m, strcmp(kind, "compensate") == 0 ? MSG_COMPENSATE : MSG_EXECUTE);
        snprintf(m.id, sizeof m.id, "%s", saga);
        snprintf(m.step, sizeof m.step, "%s", step);
        snprintf(m.op, sizeof m.op, "%s", op);
        m.attempt = (uint32_t)atoi(att);
        m.params = (uint8_t *)pb.data;
        m.params_len = pb.size;
        msgpack_sbuffer_init(&body);
        msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
        msg_pack(&m, &pk);
        for (int c = 0; c < copies; c++) {
            zframe_t *to = zframe_dup(rid), *b = zframe_new(body.data, body.size);
            zframe_send(&to, router, ZFRAME_MORE);
            zframe_send(&b, router, 0);
        }
        for (int c = 0; c < copies; c++) {
            msg_t r;
            if (s_recv_result(router, &r))
                return 3;
            s_print_result(&r);
        }
        msgpack_sbuffer_destroy(&pb);
        msgpack_sbuffer_destroy(&body);
        free(spec);
    }
    zframe_destroy(&rid);
    zsock_destroy(&router);
    return 0;
}

static int s_raw(const char *ep, const char *text)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    char kerr[1024];
    if (zkeys_client_env(zsock_resolve(d), "ZSAGA_KEY", kerr, sizeof kerr) ||
        zsock_connect(d, "%s", ep)) {
        fprintf(stderr, "probe: %s\n", kerr);
        return 2;
    }
    zframe_t *f = zframe_new(text, strlen(text));
    zframe_send(&f, d, 0);
    zpoller_t *p = zpoller_new(d, NULL);
    if (!zpoller_wait(p, 5000)) {
        fprintf(stderr, "probe: no reply\n");
        return 3;
    }
    zframe_t *r = zframe_recv(d);
    msg_t m;
    char err[512];
    if (msg_decode(zframe_data(r), zframe_size(r), &m, err, sizeof err)) {
        fprintf(stderr, "probe: undecodable reply: %s\n", err);
        return 3;
    }
    printf("%s %s %s\n", msg_type_name(m.type), m.code, m.text);
    zframe_destroy(&r);
    zpoller_destroy(&p);
    zsock_destroy(&d);
    return 0;
}

int main(int argc, char **argv)
{
    zsys_set_logstream(NULL);
    int rc = 2;
    if (argc >= 3 && strcmp(argv[1], "worker") == 0)
        rc = s_worker(argv[2], argc - 3, argv + 3);
    else if (argc == 4 && strcmp(argv[1], "raw") == 0)
        rc = s_raw(argv[2], argv[3]);
    else
        fprintf(stderr, "usage: zsaga-probe worker ENDPOINT CMD... | raw ENDPOINT TEXT\n");
    zsys_shutdown();
    return rc;
}
