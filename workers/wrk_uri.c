/*  wrk_uri: database URIs. See wrk_uri.h. */
#include "wrk_uri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uriparser/Uri.h>

/* Copy a range, percent-decoded; -1 if it does not fit. */
static int s_copy(const UriTextRangeA *r, char *dst, size_t cap, bool decode)
{
    size_t n = r->first ? (size_t)(r->afterLast - r->first) : 0;
    if (n >= cap)
        return -1;
    memcpy(dst, r->first ? r->first : "", n);
    dst[n] = 0;
    if (decode)
        uriUnescapeInPlaceExA(dst, URI_FALSE, URI_BR_DONT_TOUCH);
    return 0;
}

int wrk_uri_parse(const char *text, wrk_uri_t *u, char *err, size_t errlen)
{
    UriUriA uri;
    const char *pos = NULL;
    memset(u, 0, sizeof *u);
    if (uriParseSingleUriA(&uri, text, &pos) != URI_SUCCESS) {
        snprintf(err, errlen, "not a URI (error at character %ld)", pos ? (long)(pos - text) : 0L);
        return -1;
    }
    int rc = -1;
    char port[16], userinfo[400];
    if (s_copy(&uri.scheme, u->scheme, sizeof u->scheme, false) ||
        s_copy(&uri.hostText, u->host, sizeof u->host, true) ||
        s_copy(&uri.portText, port, sizeof port, false) ||
        s_copy(&uri.userInfo, userinfo, sizeof userinfo, false)) {
        snprintf(err, errlen, "a part of the URI is too long");
        goto done;
    }
    /* user:password, split before decoding: a ':' in either is %3A. */
    char *colon = strchr(userinfo, ':');
    if (colon) {
        *colon = 0;
        u->has_password = true;
        snprintf(u->password, sizeof u->password, "%s", colon + 1);
        uriUnescapeInPlaceExA(u->password, URI_FALSE, URI_BR_DONT_TOUCH);
    }
    if (strlen(userinfo) >= sizeof u->user) {
        snprintf(err, errlen, "the user name is too long");
        goto done;
    }
    memcpy(u->user, userinfo, strlen(userinfo) + 1);
    uriUnescapeInPlaceExA(u->user, URI_FALSE, URI_BR_DONT_TOUCH);
    if (port[0]) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p <= 0 || p > 65535) {
            snprintf(err, errlen, "port '%s' is not 1-65535", port);
            goto done;
        }
        u->port = (unsigned)p;
    }
    /* The path: one segment at most (a database name or number). */
    if (uri.pathHead) {
        if (uri.pathHead->next &&
            uri.pathHead->next->text.first != uri.pathHead->next->text.afterLast) {
            snprintf(err, errlen, "the path must be a single name");
            goto done;
        }
        if (s_copy(&uri.pathHead->text, u->path, sizeof u->path, true)) {
            snprintf(err, errlen, "the path is too long");
            goto done;
        }
    }
    if (uri.query.first && uri.query.first != uri.query.afterLast) {
        UriQueryListA *list = NULL, *q;
        int count = 0;
        if (uriDissectQueryMallocA(&list, &count, uri.query.first, uri.query.afterLast) !=
            URI_SUCCESS) {
            snprintf(err, errlen, "malformed query");
            goto done;
        }
        for (q = list; q; q = q->next) {
            if (u->nquery == WRK_URI_MAX_QUERY || strlen(q->key) >= sizeof u->query[0].key ||
                (q->value && strlen(q->value) >= sizeof u->query[0].value)) {
                snprintf(err, errlen, "too many or too long query parameters");
                uriFreeQueryListA(list);
                goto done;
            }
            snprintf(u->query[u->nquery].key, sizeof u->query[0].key, "%s", q->key);
            snprintf(u->query[u->nquery].value, sizeof u->query[0].value, "%s",
                     q->value ? q->value : "");
            u->nquery++;
        }
        uriFreeQueryListA(list);
    }
    rc = 0;
done:
    uriFreeUriMembersA(&uri);
    return rc;
}

const char *wrk_uri_query(const wrk_uri_t *u, const char *key)
{
    for (int i = 0; i < u->nquery; i++)
        if (strcmp(u->query[i].key, key) == 0)
            return u->query[i].value;
    return NULL;
}

bool wrk_uri_query_known(const wrk_uri_t *u, const char *const *allowed, char *err, size_t errlen)
{
    for (int i = 0; i < u->nquery; i++) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, u->query[i].key) != 0)
            a++;
        if (!*a) {
            snprintf(err, errlen, "unknown URI parameter '%s'", u->query[i].key);
            return false;
        }
    }
    return true;
}
