/*  wrk_tls: a blocking TLS client connection over OpenSSL, for the Redis
    driver (Debian's hiredis 0.14 has no TLS of its own; the driver keeps
    hiredis's command formatter and reply parser and sends through this).

    The server's certificate is always verified: against ca (a PEM file)
    or the system's store, and its name or IP against host. cert and key
    (PEM) give a client certificate when the server asks for one. Reads
    and writes give up after timeout_ms. Errors are text, kept in the
    connection; after one it must be closed. One thread at a time.
*/
#ifndef ZSAGA_WRK_TLS_H
#define ZSAGA_WRK_TLS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct wrk_tls_s wrk_tls_t;

wrk_tls_t *wrk_tls_connect(const char *host, unsigned port, const char *ca, const char *cert,
                           const char *key, int timeout_ms, char *err, size_t errlen);
/* 0, or -1 (see wrk_tls_error). */
int wrk_tls_write(wrk_tls_t *self, const void *buf, size_t len);
/* Bytes read (> 0), or -1 on error or close. */
ssize_t wrk_tls_read(wrk_tls_t *self, void *buf, size_t len);
const char *wrk_tls_error(const wrk_tls_t *self);
void wrk_tls_close(wrk_tls_t **self_p);

#endif
