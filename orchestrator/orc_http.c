/*  orc_http: metrics, console and the JSON API. See orc_http.h. */
#include "orc_http.h"
#include "common/zlog.h"
#include "messages/msg_json.h"

#include <czmq.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENS_MAX 256

extern const struct orc_console_file {
    const char *path, *ctype;
    const unsigned char *data;
    size_t len;
} orc_console_files[];

/* A token is kept as its hash: a memory dump or a log line never holds
   one that works. */
typedef struct {
    uint8_t hash[32];
    char key[41]; /* the key it stands for */
    uint64_t expires_ms;
} s_token_t;

struct orc_http_s {
    zhttp_t *http;
    orc_auth_t *auth;
    orc_http_cb_t cb;
    uint64_t ttl_ms, now_ms;
    s_token_t tokens[TOKENS_MAX];
};

static void s_text(zhttp_req_t *req, unsigned status, const char *text)
{
    zhttp_reply(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* Errors of /api look like the protocol's own. */
static void s_api_error(zhttp_req_t *req, unsigned status, const char *code, const char *reason)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "reason", reason);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s)
        zhttp_reply(req, status, "application/json", s, strlen(s));
    else
        s_text(req, 500, "out of memory\n");
    free(s);
    json_decref(j);
}

int orc_http_login(orc_http_t *self, const orc_principal_t *who, char token[65],
                   uint64_t *expires_ms)
{
    uint8_t raw[32];
    s_token_t *slot = NULL;
    for (int i = 0; i < TOKENS_MAX; i++) {
        s_token_t *t = &self->tokens[i];
        if (!t->expires_ms || t->expires_ms <= self->now_ms) {
            slot = t;
            break;
        }
        if (!slot || t->expires_ms < slot->expires_ms)
            slot = t; /* all live: the one closest to expiry goes */
    }
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(token, 65, raw, sizeof raw);
    crypto_hash_sha256(slot->hash, (const uint8_t *)token, 64);
    snprintf(slot->key, sizeof slot->key, "%s", who->key);
    slot->expires_ms = self->now_ms + self->ttl_ms;
    *expires_ms = (uint64_t)zclock_time() + self->ttl_ms;
    return 0;
}

/* The principal a request's bearer token stands for, or NULL. */
static const orc_principal_t *s_who(orc_http_t *self, zhttp_req_t *req)
{
    if (orc_auth_insecure(self->auth))
        return orc_auth_key(self->auth, NULL);
    const char *h = zhttp_header(req, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0 || strlen(h + 7) != 64)
        return NULL;
    uint8_t hash[32];
    crypto_hash_sha256(hash, (const uint8_t *)h + 7, 64);
    for (int i = 0; i < TOKENS_MAX; i++) {
        s_token_t *t = &self->tokens[i];
        if (t->expires_ms > self->now_ms && sodium_memcmp(t->hash, hash, 32) == 0)
            return orc_auth_key(self->auth, t->key); /* NULL once the key is removed */
    }
    return NULL;
}

static void s_api(orc_http_t *self, zhttp_req_t *req)
{
    const char *ct = zhttp_header(req, "Content-Type");
    if (strcmp(zhttp_method(req), "POST") != 0) {
        s_api_error(req, 405, "invalid", "POST a JSON protocol request to /api");
        return;
    }
    if (!ct || strncmp(ct, "application/json", 16) != 0) {
        s_api_error(req, 415, "invalid", "Content-Type must be application/json");
        return;
    }
    const orc_principal_t *who = s_who(self, req);
    if (!who) {
        s_api_error(req, 401, "unauthorized",
                    "no valid console token: run `zsaga login` with your key and open the URL "
                    "it prints");
        return;
    }
    size_t len;
    const char *body = zhttp_body(req, &len);
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (!j || !json_is_object(j)) {
        char why[300];
        snprintf(why, sizeof why, "the body is not a JSON object: %s", j ? "" : jerr.text);
        json_decref(j);
        s_api_error(req, 400, "malformed", why);
        return;
    }
    /* Fill in what the protocol needs and a browser would not care to send. */
    if (!json_object_get(j, "v"))
        json_object_set_new(j, "v", json_integer(1));
    if (!json_object_get(j, "req"))
        json_object_set_new(j, "req", json_integer(1));
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char err[MSG_TEXT_MAX + 1];
    msg_t m;
    const char *code = msg_json_to_mp(j, &pk, err, sizeof err)
                           ? "malformed"
                           : msg_decode(sb.data, sb.size, &m, err, sizeof err);
    json_decref(j);
    if (code) {
        msgpack_sbuffer_destroy(&sb);
        s_api_error(req, 400, code, err);
        return;
    }
    switch (m.type) {
    case MSG_STATUS:
    case MSG_LIST:
    case MSG_SYSTEMS:
    case MSG_STATS:
    case MSG_EVENTS:
    case MSG_ALERTS:
    case MSG_CANCEL:
    case MSG_RETRY:
    case MSG_RESOLVE:
        /* The request's slices point into sb: the server copies what it
           keeps before this returns. */
        zhttp_defer(req);
        self->cb.request(self->cb.arg, req, who, &m);
        break;
    default:
        snprintf(err, sizeof err, "'%s' is not served over HTTP", msg_type_name(m.type));
        s_api_error(req, 400, "unexpected", err);
        break;
    }
    msg_clear(&m);
    msgpack_sbuffer_destroy(&sb);
}

void orc_http_answer(zhttp_req_t *req, const void *reply, size_t len)
{
    mp_reader_t r;
    mp_reader_init(&r, reply, len);
    json_t *j = msg_mp_to_json(&r, 0);
    char *s = j && !r.err ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        s_api_error(req, 500, "internal", "reply could not be converted to JSON");
        return;
    }
    /* Failures are still 200: the body says "error" as the protocol does. */
    zhttp_reply(req, 200, "application/json", s, strlen(s));
    free(s);
}

static void s_handle(void *arg, zhttp_req_t *req)
{
    orc_http_t *self = arg;
    const char *path = zhttp_path(req), *origin = zhttp_header(req, "Origin"),
               *host = zhttp_header(req, "Host");
    if (origin && host && (strncmp(origin, "http://", 7) != 0 || strcmp(origin + 7, host) != 0)) {
        s_text(req, 403, "cross-origin requests are refused\n");
        return;
    }
    if (strcmp(path, "/api") == 0) {
        s_api(self, req);
        return;
    }
    if (strcmp(zhttp_method(req), "GET") != 0 && strcmp(zhttp_method(req), "HEAD") != 0) {
        s_text(req, 405, "method not allowed\n");
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        zmx_t b;
        zmx_init(&b);
        self->cb.metrics(self->cb.arg, &b);
        if (b.oom)
            s_text(req, 500, "out of memory\n");
        else
            zhttp_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
        zmx_free(&b);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        s_text(req, 200, "ok\n");
        return;
    }
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (const struct orc_console_file *f = orc_console_files; f->path; f++)
        if (strcmp(f->path, path) == 0) {
            zhttp_reply(req, 200, f->ctype, (const char *)f->data, f->len);
            return;
        }
    s_text(req, 404, "not found\n");
}

orc_http_t *orc_http_new(const char *addr, orc_auth_t *auth, const orc_http_cb_t *cb,
                         uint64_t token_ttl_ms, char *err, size_t errlen)
{
    orc_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->auth = auth;
    self->cb = *cb;
    self->ttl_ms = token_ttl_ms;
    self->now_ms = (uint64_t)zclock_mono();
    if (!(self->http = zhttp_new(addr, s_handle, self, err, errlen))) {
        free(self);
        return NULL;
    }
    return self;
}

void orc_http_destroy(orc_http_t **self_p)
{
    orc_http_t *self = *self_p;
    if (!self)
        return;
    zhttp_destroy(&self->http);
    sodium_memzero(self->tokens, sizeof self->tokens);
    free(self);
    *self_p = NULL;
}

int orc_http_fd(orc_http_t *self)
{
    return zhttp_fd(self->http);
}

unsigned orc_http_port(orc_http_t *self)
{
    return zhttp_port(self->http);
}

void orc_http_run(orc_http_t *self, uint64_t mono_ms)
{
    self->now_ms = mono_ms;
    zhttp_run(self->http);
}
