/*  msg_params: flat maps and step references. See msg_params.h. */
#include "msg_params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool msg_name_valid(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

bool msg_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > MSG_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

bool msg_ref_parse(const char *s, uint32_t len, char step[MSG_ID_MAX + 1],
                   char key[MSG_NAME_MAX + 1])
{
    if (len < 6 || memcmp(s, "${", 2) != 0 || s[len - 1] != '}')
        return false;
    const char *body = s + 2;
    uint32_t blen = len - 3;
    /* The key follows the last dot: step ids may contain dots, keys may not. */
    const char *dot = NULL;
    for (uint32_t i = 0; i < blen; i++)
        if (body[i] == '.')
            dot = body + i;
    if (!dot)
        return false;
    size_t slen = (size_t)(dot - body), klen = blen - slen - 1;
    if (!msg_id_valid(body, slen) || !msg_name_valid(dot + 1, klen, MSG_NAME_MAX))
        return false;
    memcpy(step, body, slen);
    step[slen] = 0;
    memcpy(key, dot + 1, klen);
    key[klen] = 0;
    return true;
}

/* Reads one entry; kv may be NULL when only validating. */
static int s_read_entry(mp_reader_t *r, const char *what, msg_kv_t *kv, char *err, size_t errlen)
{
    const char *k;
    uint32_t klen;
    if (mp_read_str(r, &k, &klen)) {
        snprintf(err, errlen, "%s: keys must be strings", what);
        return -1;
    }
    if (!msg_name_valid(k, klen, MSG_NAME_MAX)) {
        snprintf(err, errlen, "%s: key '%.*s' must be 1-%d characters of [a-z0-9_]", what,
                 (int)(klen > 40 ? 40 : klen), k, MSG_NAME_MAX);
        return -1;
    }
    msg_kv_t tmp;
    if (!kv)
        kv = &tmp;
    memcpy(kv->key, k, klen);
    kv->key[klen] = 0;
    kv->type = mp_peek(r);
    switch (kv->type) {
    case MP_NIL: return mp_read_nil(r);
    case MP_BOOL: return mp_read_bool(r, &kv->b);
    case MP_INT:
        if (mp_read_int(r, &kv->i)) {
            snprintf(err, errlen, "%s.%s: integer out of range for int64", what, kv->key);
            return -1;
        }
        return 0;
    case MP_STR:
        if (mp_read_str(r, &kv->s, &kv->slen))
            break;
        if (kv->slen > MSG_VALUE_MAX) {
            snprintf(err, errlen, "%s.%s: string longer than %d bytes", what, kv->key,
                     MSG_VALUE_MAX);
            return -1;
        }
        /* A NUL would be journaled whole and applied cut short by a
           worker's C string: the two would disagree on what was asked. */
        if (memchr(kv->s, 0, kv->slen)) {
            snprintf(err, errlen, "%s.%s: string holds a NUL byte", what, kv->key);
            return -1;
        }
        if (kv->slen >= 2 && memcmp(kv->s, "${", 2) == 0) {
            char st[MSG_ID_MAX + 1], ky[MSG_NAME_MAX + 1];
            if (!msg_ref_parse(kv->s, kv->slen, st, ky)) {
                snprintf(err, errlen, "%s.%s: malformed reference (want \"${step.key}\")", what,
                         kv->key);
                return -1;
            }
        }
        return 0;
    case MP_FLOAT:
        snprintf(err, errlen, "%s.%s: floating point is not allowed (use integer minor units)",
                 what, kv->key);
        return -1;
    default:
        snprintf(err, errlen, "%s.%s: value must be nil, boolean, integer or string", what,
                 kv->key);
        return -1;
    }
    snprintf(err, errlen, "%s.%s: %s", what, kv->key, r->err ? r->err : "bad value");
    return -1;
}

int msg_params_read(mp_reader_t *r, const char *what, const uint8_t **start, size_t *len, char *err,
                    size_t errlen)
{
    const uint8_t *s = r->p;
    uint32_t n;
    err[0] = 0;
    if (mp_read_map(r, &n)) {
        snprintf(err, errlen, "%s: expected a map", what);
        return -1;
    }
    if (n > MSG_MAX_PARAMS) {
        snprintf(err, errlen, "%s: more than %d entries", what, MSG_MAX_PARAMS);
        return -1;
    }
    char seen[MSG_MAX_PARAMS][MSG_NAME_MAX + 1];
    for (uint32_t i = 0; i < n; i++) {
        msg_kv_t kv;
        if (s_read_entry(r, what, &kv, err, errlen)) {
            if (!*err)
                snprintf(err, errlen, "%s: %s", what, r->err ? r->err : "bad entry");
            mp_fail(r, "bad map");
            return -1;
        }
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(seen[j], kv.key) == 0) {
                snprintf(err, errlen, "%s: duplicate key '%s'", what, kv.key);
                mp_fail(r, "duplicate key");
                return -1;
            }
        strcpy(seen[i], kv.key);
    }
    *start = s;
    *len = (size_t)(r->p - s);
    return 0;
}

int msg_params_parse(const uint8_t *buf, size_t len, msg_kv_t *kv, char *err, size_t errlen)
{
    mp_reader_t r;
    uint32_t n;
    err[0] = 0;
    if (len == 0)
        return 0;
    mp_reader_init(&r, buf, len);
    if (mp_read_map(&r, &n) || n > MSG_MAX_PARAMS) {
        snprintf(err, errlen, "params: expected a map of at most %d entries", MSG_MAX_PARAMS);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++)
        if (s_read_entry(&r, "params", &kv[i], err, errlen))
            return -1;
    return (int)n;
}

const msg_kv_t *msg_kv_find(const msg_kv_t *kv, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return &kv[i];
    return NULL;
}

static void s_pack_kv(msgpack_packer *pk, const msg_kv_t *kv)
{
    switch (kv->type) {
    case MP_BOOL:
        if (kv->b)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case MP_INT: msgpack_pack_int64(pk, kv->i); break;
    case MP_STR: mp_pack_strn(pk, kv->s, kv->slen); break;
    default: msgpack_pack_nil(pk); break;
    }
}

static int s_kv_cmp(const void *a, const void *b)
{
    return strcmp(((const msg_kv_t *)a)->key, ((const msg_kv_t *)b)->key);
}

int msg_params_canon(const uint8_t *buf, size_t len, msgpack_packer *pk, char *err, size_t errlen)
{
    msg_kv_t kv[MSG_MAX_PARAMS];
    int n = msg_params_parse(buf, len, kv, err, errlen);
    if (n < 0)
        return -1;
    qsort(kv, (size_t)n, sizeof kv[0], s_kv_cmp);
    msgpack_pack_map(pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        mp_pack_cstr(pk, kv[i].key);
        s_pack_kv(pk, &kv[i]);
    }
    return 0;
}

int msg_params_resolve(const uint8_t *buf, size_t len, msg_output_fn *lookup, void *arg,
                       msgpack_packer *pk, char *err, size_t errlen)
{
    msg_kv_t kv[MSG_MAX_PARAMS];
    int n = msg_params_parse(buf, len, kv, err, errlen);
    if (n < 0)
        return -1;
    msgpack_pack_map(pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        char step[MSG_ID_MAX + 1], key[MSG_NAME_MAX + 1];
        mp_pack_cstr(pk, kv[i].key);
        if (kv[i].type != MP_STR || !msg_ref_parse(kv[i].s, kv[i].slen, step, key)) {
            s_pack_kv(pk, &kv[i]);
            continue;
        }
        const uint8_t *out;
        size_t out_len;
        msg_kv_t okv[MSG_MAX_PARAMS];
        int on;
        if (lookup(arg, step, &out, &out_len) ||
            (on = msg_params_parse(out, out_len, okv, err, errlen)) < 0) {
            snprintf(err, errlen, "params.%s: step '%s' has no output", kv[i].key, step);
            return -1;
        }
        const msg_kv_t *v = msg_kv_find(okv, on, key);
        if (!v) {
            snprintf(err, errlen, "params.%s: step '%s' output has no key '%s'", kv[i].key, step,
                     key);
            return -1;
        }
        s_pack_kv(pk, v);
    }
    return 0;
}
