/*  zhttp: libmicrohttpd on the caller's loop. See zhttp.h.

    DESIGN: MHD runs with no thread of its own (external polling through
    its epoll descriptor), so every callback comes from zhttp_run on the
    caller's thread. A deferred request is a suspended MHD connection:
    zhttp_reply stores the response and resumes it, and MHD calls the
    access handler again, which queues what was stored.
*/
#include "zhttp.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BODY_MAX (64 * 1024)

struct zhttp_req_s {
    zhttp_t *srv;
    struct MHD_Connection *conn;
    const char *method, *url;
    char *body;
    size_t len, cap;
    bool too_large, deferred, handled;
    struct MHD_Response *resp;
    unsigned status;
    zhttp_req_t *next; /* on the deferred list */
};

struct zhttp_s {
    struct MHD_Daemon *d;
    zhttp_fn *fn;
    void *arg;
    unsigned port;
    zhttp_req_t *deferred;
};

const char *zhttp_method(const zhttp_req_t *req)
{
    return req->method;
}

const char *zhttp_path(const zhttp_req_t *req)
{
    return req->url;
}

const char *zhttp_arg(const zhttp_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *zhttp_header(const zhttp_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *zhttp_body(const zhttp_req_t *req, size_t *len)
{
    *len = req->len;
    return req->body ? req->body : "";
}

static void s_unlist(zhttp_req_t *req)
{
    for (zhttp_req_t **p = &req->srv->deferred; *p; p = &(*p)->next)
        if (*p == req) {
            *p = req->next;
            break;
        }
}

void zhttp_reply(zhttp_req_t *req, unsigned status, const char *ctype, const char *body, size_t len)
{
    if (req->resp)
        return; /* answered already */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) {
        /* Out of memory: the connection is closed (s_access says no), and
           a deferred one leaves the list so a shutdown never waits on it. */
        if (req->deferred) {
            s_unlist(req);
            req->deferred = false;
            MHD_resume_connection(req->conn);
        }
        return;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    req->resp = r;
    req->status = status;
    if (req->deferred) {
        s_unlist(req);
        req->deferred = false;
        MHD_resume_connection(req->conn);
    }
}

void zhttp_defer(zhttp_req_t *req)
{
    if (req->resp || req->deferred)
        return;
    req->deferred = true;
    req->next = req->srv->deferred;
    req->srv->deferred = req;
}

static enum MHD_Result s_queue(zhttp_req_t *req)
{
    enum MHD_Result rc = MHD_queue_response(req->conn, req->status, req->resp);
    MHD_destroy_response(req->resp);
    req->resp = NULL;
    return rc;
}

/* A browser on a page of another site can make the loopback address its
   own name (DNS rebinding); a Host that is not a loopback name is it.
   Allowed: localhost, [::1] and 127.x.y.z as an address (not a name such
   as 127.attacker.example), each with an optional numeric port. */
static bool s_host_ok(const char *host)
{
    if (!host)
        return false;
    const char *port;
    size_t n;
    if (host[0] == '[') {
        if (strncmp(host, "[::1]", 5) != 0)
            return false;
        port = host + 5;
        n = 0;
    } else {
        n = strcspn(host, ":");
        port = host + n;
    }
    if (*port && (*port != ':' || !port[1] || strspn(port + 1, "0123456789") != strlen(port + 1)))
        return false;
    if (host[0] == '[')
        return true;
    if (n == 9 && strncmp(host, "localhost", 9) == 0)
        return true;
    char addr[16];
    struct in_addr a;
    if (n >= sizeof addr)
        return false;
    memcpy(addr, host, n);
    addr[n] = 0;
    return inet_pton(AF_INET, addr, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_size, void **con_cls)
{
    (void)version;
    zhttp_t *srv = cls;
    zhttp_req_t *req = *con_cls;
    if (!req) {
        if (!(req = calloc(1, sizeof *req)))
            return MHD_NO;
        req->srv = srv;
        req->conn = c;
        req->method = method;
        req->url = url;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (req->too_large || req->len + n > BODY_MAX) {
            req->too_large = true;
            return MHD_YES;
        }
        if (req->len + n + 1 > req->cap) {
            size_t cap = req->cap ? req->cap : 1024;
            while (cap < req->len + n + 1)
                cap *= 2;
            char *b = realloc(req->body, cap);
            if (!b)
                return MHD_NO;
            req->body = b;
            req->cap = cap;
        }
        memcpy(req->body + req->len, upload_data, n);
        req->len += n;
        req->body[req->len] = 0;
        return MHD_YES;
    }
    if (!req->handled) {
        req->handled = true;
        static const char big[] = "request body over 64 KiB\n", host[] = "unknown Host\n";
        if (req->too_large)
            zhttp_reply(req, 413, "text/plain", big, sizeof big - 1);
        else if (!s_host_ok(zhttp_header(req, "Host")))
            zhttp_reply(req, 421, "text/plain", host, sizeof host - 1);
        else
            srv->fn(srv->arg, req);
        if (!req->resp) {
            if (!req->deferred)
                return MHD_NO; /* the handler forgot to answer */
            MHD_suspend_connection(c);
            return MHD_YES;
        }
    }
    if (req->resp)
        return s_queue(req);
    return req->deferred ? MHD_YES : MHD_NO; /* resumed with no answer: close */
}

static void s_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    zhttp_req_t *req = *con_cls;
    if (!req)
        return;
    if (req->deferred)
        s_unlist(req);
    if (req->resp)
        MHD_destroy_response(req->resp);
    free(req->body);
    free(req);
    *con_cls = NULL;
}

zhttp_t *zhttp_new(const char *addr, zhttp_fn *fn, void *arg, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host || !colon[1]) {
        snprintf(err, errlen, "HTTP address '%s' is not HOST:PORT", addr);
        return NULL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
    int grc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (grc) {
        snprintf(err, errlen, "HTTP address '%s': %s", addr, gai_strerror(grc));
        return NULL;
    }
    bool loop = false;
    if (ai->ai_family == AF_INET)
        loop = (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
    else if (ai->ai_family == AF_INET6)
        loop = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
    if (!loop) {
        freeaddrinfo(ai);
        snprintf(err, errlen,
                 "HTTP address '%s' is not loopback: the console and metrics are plaintext; "
                 "serve them elsewhere through a TLS proxy",
                 addr);
        return NULL;
    }
    zhttp_t *self = calloc(1, sizeof *self);
    if (!self) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->fn = fn;
    self->arg = arg;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->d =
        MHD_start_daemon(flags, 0, NULL, NULL, s_access, self, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                         MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 15u,
                         MHD_OPTION_NOTIFY_COMPLETED, s_completed, self, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!self->d) {
        snprintf(err, errlen, "cannot serve HTTP on %s (in use, or not an address here)", addr);
        free(self);
        return NULL;
    }
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(self->d, MHD_DAEMON_INFO_BIND_PORT);
    self->port = pi ? pi->port : 0;
    return self;
}

void zhttp_destroy(zhttp_t **self_p)
{
    zhttp_t *self = *self_p;
    if (!self)
        return;
    /* MHD will not stop with suspended connections: answer them. */
    static const char bye[] = "shutting down\n";
    while (self->deferred)
        zhttp_reply(self->deferred, 503, "text/plain", bye, sizeof bye - 1);
    MHD_run(self->d);
    MHD_stop_daemon(self->d);
    free(self);
    *self_p = NULL;
}

int zhttp_fd(zhttp_t *self)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(self->d, MHD_DAEMON_INFO_EPOLL_FD);
    return i ? i->epoll_fd : -1;
}

unsigned zhttp_port(zhttp_t *self)
{
    return self->port;
}

void zhttp_run(zhttp_t *self)
{
    MHD_run(self->d);
}
