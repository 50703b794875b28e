/*  mp: strict msgpack reader. See mp.h for the contract. */
#include "mp.h"

#include <string.h>

void mp_reader_init(mp_reader_t *r, const void *buf, size_t len)
{
    r->p = (const uint8_t *)buf;
    r->end = r->p + len;
    r->err = NULL;
}

int mp_fail(mp_reader_t *r, const char *why)
{
    if (!r->err)
        r->err = why;
    r->p = r->end; /* nothing more will read */
    return -1;
}

bool mp_at_end(const mp_reader_t *r)
{
    return r->p >= r->end;
}

static size_t s_left(const mp_reader_t *r)
{
    return (size_t)(r->end - r->p);
}

static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

mp_type_t mp_peek(const mp_reader_t *r)
{
    if (r->err || r->p >= r->end)
        return MP_INVALID;
    uint8_t b = *r->p;
    if (b <= 0x7f || b >= 0xe0)
        return MP_INT;
    if ((b & 0xf0) == 0x80)
        return MP_MAP;
    if ((b & 0xf0) == 0x90)
        return MP_ARRAY;
    if ((b & 0xe0) == 0xa0)
        return MP_STR;
    switch (b) {
    case 0xc0: return MP_NIL;
    case 0xc2:
    case 0xc3: return MP_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6: return MP_BIN;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: return MP_EXT;
    case 0xca:
    case 0xcb: return MP_FLOAT;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: return MP_INT;
    case 0xd9:
    case 0xda:
    case 0xdb: return MP_STR;
    case 0xdc:
    case 0xdd: return MP_ARRAY;
    case 0xde:
    case 0xdf: return MP_MAP;
    default: return MP_INVALID; /* 0xc1 is never used */
    }
}

/* Take n bytes after the type byte; returns a pointer to them or NULL. */
static const uint8_t *s_take(mp_reader_t *r, size_t n)
{
    if (r->err)
        return NULL;
    if (s_left(r) < n) {
        mp_fail(r, "truncated message");
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}

int mp_read_nil(mp_reader_t *r)
{
    if (mp_peek(r) != MP_NIL)
        return mp_fail(r, "expected nil");
    r->p++;
    return 0;
}

int mp_read_bool(mp_reader_t *r, bool *v)
{
    if (mp_peek(r) != MP_BOOL)
        return mp_fail(r, "expected boolean");
    *v = *r->p++ == 0xc3;
    return 0;
}

/* Reads any integer as a sign and 64-bit magnitude. */
static int s_read_integer(mp_reader_t *r, bool *neg, uint64_t *mag)
{
    if (mp_peek(r) != MP_INT)
        return mp_fail(r, "expected integer");
    uint8_t b = *r->p++;
    const uint8_t *q;
    *neg = false;
    if (b <= 0x7f) {
        *mag = b;
        return 0;
    }
    if (b >= 0xe0) {
        *neg = true;
        *mag = (uint64_t)(-(int64_t)(int8_t)b);
        return 0;
    }
    int n = 1 << ((b - 0xcc) & 3);
    if (!(q = s_take(r, (size_t)n)))
        return -1;
    uint64_t u = s_be(q, n);
    if (b <= 0xcf) {
        *mag = u;
        return 0;
    }
    int64_t s;
    switch (n) {
    case 1: s = (int8_t)u; break;
    case 2: s = (int16_t)u; break;
    case 4: s = (int32_t)u; break;
    default: s = (int64_t)u; break;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return 0;
}

int mp_read_int(mp_reader_t *r, int64_t *v)
{
    bool neg;
    uint64_t mag;
    if (s_read_integer(r, &neg, &mag))
        return -1;
    if (!neg && mag > (uint64_t)INT64_MAX)
        return mp_fail(r, "integer out of range");
    if (neg && mag > (uint64_t)INT64_MAX + 1)
        return mp_fail(r, "integer out of range");
    *v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

int mp_read_uint(mp_reader_t *r, uint64_t *v)
{
    bool neg;
    uint64_t mag;
    if (s_read_integer(r, &neg, &mag))
        return -1;
    if (neg && mag)
        return mp_fail(r, "expected unsigned integer");
    *v = mag;
    return 0;
}

int mp_read_double(mp_reader_t *r, double *v)
{
    if (mp_peek(r) != MP_FLOAT)
        return mp_fail(r, "expected float");
    uint8_t b = *r->p++;
    const uint8_t *q = s_take(r, b == 0xca ? 4 : 8);
    if (!q)
        return -1;
    if (b == 0xca) {
        uint32_t u = (uint32_t)s_be(q, 4);
        float f;
        memcpy(&f, &u, 4);
        *v = f;
    } else {
        uint64_t u = s_be(q, 8);
        memcpy(v, &u, 8);
    }
    return 0;
}

int mp_read_str(mp_reader_t *r, const char **s, uint32_t *len)
{
    if (mp_peek(r) != MP_STR)
        return mp_fail(r, "expected string");
    uint8_t b = *r->p++;
    uint64_t n;
    if ((b & 0xe0) == 0xa0)
        n = b & 0x1f;
    else {
        int w = b == 0xd9 ? 1 : b == 0xda ? 2 : 4;
        const uint8_t *q = s_take(r, (size_t)w);
        if (!q)
            return -1;
        n = s_be(q, w);
    }
    const uint8_t *q = s_take(r, (size_t)n);
    if (!q)
        return -1;
    *s = (const char *)q;
    *len = (uint32_t)n;
    return 0;
}

int mp_read_cstr(mp_reader_t *r, char *dst, size_t dst_size)
{
    const char *s;
    uint32_t n;
    if (mp_read_str(r, &s, &n))
        return -1;
    if ((size_t)n >= dst_size)
        return mp_fail(r, "string too long");
    if (memchr(s, 0, n))
        return mp_fail(r, "string holds a NUL byte");
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

int mp_read_bin(mp_reader_t *r, const uint8_t **p, uint32_t *len)
{
    if (mp_peek(r) != MP_BIN)
        return mp_fail(r, "expected bin");
    uint8_t t = *r->p++;
    int w = t == 0xc4 ? 1 : t == 0xc5 ? 2 : 4;
    const uint8_t *q = s_take(r, (size_t)w);
    if (!q)
        return -1;
    uint64_t n = s_be(q, w);
    if (!(q = s_take(r, (size_t)n)))
        return -1;
    *p = q;
    *len = (uint32_t)n;
    return 0;
}

static int s_read_count(mp_reader_t *r, mp_type_t want, uint32_t *n)
{
    if (mp_peek(r) != want)
        return mp_fail(r, want == MP_MAP ? "expected map" : "expected array");
    uint8_t b = *r->p++;
    uint64_t c;
    if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90)
        c = b & 0x0f;
    else {
        int w = (b == 0xdc || b == 0xde) ? 2 : 4;
        const uint8_t *q = s_take(r, (size_t)w);
        if (!q)
            return -1;
        c = s_be(q, w);
    }
    /* Every element takes at least one byte: refuse counts the input
       cannot hold before anyone sizes anything by them. */
    uint64_t need = want == MP_MAP ? c * 2 : c;
    if (need > s_left(r))
        return mp_fail(r, "count larger than message");
    *n = (uint32_t)c;
    return 0;
}

int mp_read_array(mp_reader_t *r, uint32_t *n)
{
    return s_read_count(r, MP_ARRAY, n);
}

int mp_read_map(mp_reader_t *r, uint32_t *n)
{
    return s_read_count(r, MP_MAP, n);
}

int mp_skip(mp_reader_t *r, int max_depth)
{
    uint32_t n;
    const char *s;
    bool b;
    uint64_t u;
    switch (mp_peek(r)) {
    case MP_NIL: return mp_read_nil(r);
    case MP_BOOL: return mp_read_bool(r, &b);
    case MP_INT: {
        bool neg;
        return s_read_integer(r, &neg, &u);
    }
    case MP_STR: return mp_read_str(r, &s, &n);
    case MP_FLOAT: {
        uint8_t t = *r->p++;
        return s_take(r, t == 0xca ? 4 : 8) ? 0 : -1;
    }
    case MP_BIN: {
        uint8_t t = *r->p++;
        int w = t == 0xc4 ? 1 : t == 0xc5 ? 2 : 4;
        const uint8_t *q = s_take(r, (size_t)w);
        return q && s_take(r, (size_t)s_be(q, w)) ? 0 : -1;
    }
    case MP_EXT: {
        uint8_t t = *r->p++;
        static const uint8_t fixlen[] = { 1, 2, 4, 8, 16 };
        if (t >= 0xd4 && t <= 0xd8)
            return s_take(r, 1u + fixlen[t - 0xd4]) ? 0 : -1;
        int w = t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4;
        const uint8_t *q = s_take(r, (size_t)w);
        return q && s_take(r, 1 + (size_t)s_be(q, w)) ? 0 : -1;
    }
    case MP_ARRAY:
    case MP_MAP: {
        bool map = mp_peek(r) == MP_MAP;
        if (max_depth <= 0)
            return mp_fail(r, "nested too deeply");
        if (s_read_count(r, map ? MP_MAP : MP_ARRAY, &n))
            return -1;
        uint64_t items = map ? (uint64_t)n * 2 : n;
        for (uint64_t i = 0; i < items; i++)
            if (mp_skip(r, max_depth - 1))
                return -1;
        return 0;
    }
    default: return mp_fail(r, r->p >= r->end ? "truncated message" : "invalid msgpack byte");
    }
}

bool mp_str_eq(const char *s, uint32_t len, const char *cstr)
{
    /* No strlen: the decoder asks this of every field name for every key,
       and most differ at the first byte. */
    for (uint32_t i = 0; i < len; i++)
        if (cstr[i] != s[i] || !cstr[i])
            return false;
    return cstr[len] == 0;
}

void mp_pack_strn(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

void mp_pack_cstr(msgpack_packer *pk, const char *s)
{
    mp_pack_strn(pk, s, strlen(s));
}

void mp_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
    mp_pack_cstr(pk, key);
    mp_pack_cstr(pk, val);
}

void mp_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t val)
{
    mp_pack_cstr(pk, key);
    msgpack_pack_uint64(pk, val);
}

void mp_pack_kv_int(msgpack_packer *pk, const char *key, int64_t val)
{
    mp_pack_cstr(pk, key);
    msgpack_pack_int64(pk, val);
}

void mp_pack_kv_bool(msgpack_packer *pk, const char *key, bool val)
{
    mp_pack_cstr(pk, key);
    if (val)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void mp_pack_raw(msgpack_packer *pk, const void *bytes, size_t len)
{
    /* msgpack_pack_* write through the packer's callback; raw bytes go the
       same way so the buffer stays one coherent stream. */
    pk->callback(pk->data, (const char *)bytes, len);
}

void mp_pack_raw_bin(msgpack_packer *pk, const void *bytes, size_t len)
{
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, bytes, len);
}

void mp_pack_kv_opt(msgpack_packer *pk, const char *key, const char *val)
{
    mp_pack_cstr(pk, key);
    if (val && val[0])
        mp_pack_cstr(pk, val);
    else
        msgpack_pack_nil(pk);
}
