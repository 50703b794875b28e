/*  mp: strict, allocation-free msgpack reader, and packing helpers.

    Contract
    - The reader walks a caller-owned buffer in place. It never allocates,
      never asserts on input, and never reads past the end it was given.
    - Every read returns 0 on success or -1 on failure. The first failure is
      kept in r->err (static text) and is sticky: later reads fail too, so a
      decoder may check once at the end, as with an LMDB transaction.
    - Counts are checked against the bytes left (each element takes at least
      one byte), so a tiny message cannot claim a huge array. This is why the
      reader exists: msgpack-c's unpacker allocates from declared counts
      before checking the input holds them.
    - Packing uses msgpack-c's packer; the helpers only save typing.
    Any thread; no globals.
*/
#ifndef ZSAGA_MP_H
#define ZSAGA_MP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MP_INVALID = 0,
    MP_NIL,
    MP_BOOL,
    MP_INT, /* any integer; mp_read_int/uint check its range */
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
    MP_EXT
} mp_type_t;

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    const char *err; /* NULL while good */
} mp_reader_t;

void mp_reader_init(mp_reader_t *r, const void *buf, size_t len);
/* Fail with a reason (keeps the first one). Always returns -1. */
int mp_fail(mp_reader_t *r, const char *why);
mp_type_t mp_peek(const mp_reader_t *r);
bool mp_at_end(const mp_reader_t *r);

int mp_read_nil(mp_reader_t *r);
int mp_read_bool(mp_reader_t *r, bool *v);
int mp_read_int(mp_reader_t *r, int64_t *v);
int mp_read_uint(mp_reader_t *r, uint64_t *v);
/* A float32 or float64 (never an integer: the protocol's money is not). */
int mp_read_double(mp_reader_t *r, double *v);
/* The string is not NUL-terminated; it points into the buffer. */
int mp_read_str(mp_reader_t *r, const char **s, uint32_t *len);
/* Binary bytes, pointing into the buffer. */
int mp_read_bin(mp_reader_t *r, const uint8_t **p, uint32_t *len);
int mp_read_array(mp_reader_t *r, uint32_t *n);
int mp_read_map(mp_reader_t *r, uint32_t *n);
/* Skip one whole value, nesting at most max_depth levels. */
int mp_skip(mp_reader_t *r, int max_depth);
/* Copy a string into dst (size dst_size, NUL-terminated); fails if longer
   than dst_size - 1 or if it holds a NUL byte. */
int mp_read_cstr(mp_reader_t *r, char *dst, size_t dst_size);

/* Compare a (len-delimited) string to a C string. */
bool mp_str_eq(const char *s, uint32_t len, const char *cstr);

/* Packing helpers. */
void mp_pack_cstr(msgpack_packer *pk, const char *s);
void mp_pack_strn(msgpack_packer *pk, const char *s, size_t len);
void mp_pack_kv_str(msgpack_packer *pk, const char *key, const char *val);
void mp_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t val);
void mp_pack_kv_int(msgpack_packer *pk, const char *key, int64_t val);
void mp_pack_kv_bool(msgpack_packer *pk, const char *key, bool val);
/* key, then val, or nil when val is NULL or empty. */
void mp_pack_kv_opt(msgpack_packer *pk, const char *key, const char *val);
/* A bin value. */
void mp_pack_raw_bin(msgpack_packer *pk, const void *bytes, size_t len);
/* Append already-encoded msgpack bytes as one value. */
void mp_pack_raw(msgpack_packer *pk, const void *bytes, size_t len);

#endif
