/*  wrk_tls: TLS client connections. See wrk_tls.h. */
#include "wrk_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct wrk_tls_s {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char err[256];
};

static void s_ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[200] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "TLS %s: %s", what, e ? buf : strerror(errno ? errno : EPROTO));
    ERR_clear_error();
}

static int s_tcp(const char *host, unsigned port, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo hints = { 0 }, *res = NULL;
    char service[8];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%u", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        /* On Linux the send timeout bounds connect too. */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        snprintf(err, errlen, "%s:%u: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

wrk_tls_t *wrk_tls_connect(const char *host, unsigned port, const char *ca, const char *cert,
                           const char *key, int timeout_ms, char *err, size_t errlen)
{
    wrk_tls_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->fd = -1;
    if (!(self->ctx = SSL_CTX_new(TLS_client_method()))) {
        s_ssl_err(err, errlen, "context");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(self->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(self->ctx, SSL_VERIFY_PEER, NULL);
    if (ca && *ca ? SSL_CTX_load_verify_locations(self->ctx, ca, NULL) != 1
                  : SSL_CTX_set_default_verify_paths(self->ctx) != 1) {
        s_ssl_err(err, errlen, ca && *ca ? ca : "system certificates");
        goto fail;
    }
    if (cert && *cert &&
        (SSL_CTX_use_certificate_chain_file(self->ctx, cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(self->ctx, key && *key ? key : cert, SSL_FILETYPE_PEM) != 1)) {
        s_ssl_err(err, errlen, "client certificate");
        goto fail;
    }
    if ((self->fd = s_tcp(host, port, timeout_ms, err, errlen)) < 0)
        goto fail;
    if (!(self->ssl = SSL_new(self->ctx)) || SSL_set_fd(self->ssl, self->fd) != 1) {
        s_ssl_err(err, errlen, "session");
        goto fail;
    }
    /* The name the certificate must carry: an IP address or a host name. */
    unsigned char addr[16];
    X509_VERIFY_PARAM *vp = SSL_get0_param(self->ssl);
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        X509_VERIFY_PARAM_set1_ip_asc(vp, host);
    else {
        SSL_set_tlsext_host_name(self->ssl, host);
        X509_VERIFY_PARAM_set1_host(vp, host, 0);
    }
    if (SSL_connect(self->ssl) != 1) {
        long v = SSL_get_verify_result(self->ssl);
        if (v != X509_V_OK)
            snprintf(err, errlen, "TLS %s:%u: certificate not trusted: %s", host, port,
                     X509_verify_cert_error_string(v));
        else
            s_ssl_err(err, errlen, "handshake");
        goto fail;
    }
    return self;
fail:
    wrk_tls_close(&self);
    return NULL;
}

int wrk_tls_write(wrk_tls_t *self, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        int n = SSL_write(self->ssl, p, len > 1 << 30 ? 1 << 30 : (int)len);
        if (n <= 0) {
            s_ssl_err(self->err, sizeof self->err, "write");
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t wrk_tls_read(wrk_tls_t *self, void *buf, size_t len)
{
    int n = SSL_read(self->ssl, buf, len > 1 << 30 ? 1 << 30 : (int)len);
    if (n <= 0) {
        if (SSL_get_error(self->ssl, n) == SSL_ERROR_ZERO_RETURN)
            snprintf(self->err, sizeof self->err, "connection closed by the server");
        else
            s_ssl_err(self->err, sizeof self->err, "read");
        return -1;
    }
    return n;
}

const char *wrk_tls_error(const wrk_tls_t *self)
{
    return self->err;
}

void wrk_tls_close(wrk_tls_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wrk_tls_t *self = *self_p;
    if (self->ssl) {
        SSL_shutdown(self->ssl);
        SSL_free(self->ssl);
    }
    if (self->fd >= 0)
        close(self->fd);
    SSL_CTX_free(self->ctx);
    free(self);
    *self_p = NULL;
}
