/*  wrk_uri: database URIs, parsed by liburiparser (RFC 3986): percent-
    decoding of user, password, path and query, IPv6 hosts in brackets.

        mysql://USER[:PASS]@HOST[:PORT]/DB[?ssl-mode=...&ssl-ca=...]
        redis[s]://[[USER]:PASS@]HOST[:PORT][/DB][?cacert=...]

    PostgreSQL URIs go to libpq whole: it parses its own, sslmode and all.
    Returns 0, or -1 with the reason in err (which never repeats the
    password). Any thread.
*/
#ifndef ZSAGA_WRK_URI_H
#define ZSAGA_WRK_URI_H

#include <stdbool.h>
#include <stddef.h>

#define WRK_URI_MAX_QUERY 16

typedef struct {
    char scheme[16];
    char user[128], password[256];
    bool has_password;
    char host[256]; /* an IPv6 address without its brackets */
    unsigned port;  /* 0: absent */
    char path[256]; /* without the leading '/', decoded */
    int nquery;
    struct {
        char key[64], value[512];
    } query[WRK_URI_MAX_QUERY];
} wrk_uri_t;

int wrk_uri_parse(const char *text, wrk_uri_t *out, char *err, size_t errlen);
/* A query parameter's value, or NULL. */
const char *wrk_uri_query(const wrk_uri_t *u, const char *key);
/* Is every query key in the NULL-terminated list allowed? Names the first
   that is not. */
bool wrk_uri_query_known(const wrk_uri_t *u, const char *const *allowed, char *err, size_t errlen);

#endif
