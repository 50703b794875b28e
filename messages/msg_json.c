/*  msg_json: JSON <-> msgpack. See msg_json.h. */
#include "msg_json.h"

int msg_json_to_mp(json_t *j, msgpack_packer *pk, char *err, size_t errlen)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        msgpack_pack_map(pk, json_object_size(j));
        json_object_foreach(j, k, v)
        {
            mp_pack_cstr(pk, k);
            if (msg_json_to_mp(v, pk, err, errlen))
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        msgpack_pack_array(pk, json_array_size(j));
        json_array_foreach(j, i, v) if (msg_json_to_mp(v, pk, err, errlen)) return -1;
        return 0;
    }
    case JSON_STRING: mp_pack_strn(pk, json_string_value(j), json_string_length(j)); return 0;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(j)); return 0;
    case JSON_REAL:
        /* Passed on as a float so that zsagad gives its own clear refusal. */
        msgpack_pack_double(pk, json_real_value(j));
        return 0;
    case JSON_TRUE: msgpack_pack_true(pk); return 0;
    case JSON_FALSE: msgpack_pack_false(pk); return 0;
    default: msgpack_pack_nil(pk); return 0;
    }
}

json_t *msg_mp_to_json(mp_reader_t *r, int depth)
{
    uint32_t n;
    const char *s;
    int64_t i;
    uint64_t u;
    bool b;
    if (depth > 16) {
        mp_fail(r, "nested too deeply");
        return NULL;
    }
    switch (mp_peek(r)) {
    case MP_NIL: mp_read_nil(r); return json_null();
    case MP_BOOL: mp_read_bool(r, &b); return json_boolean(b);
    case MP_INT: {
        mp_reader_t save = *r;
        if (mp_read_int(r, &i) == 0)
            return json_integer(i);
        *r = save;
        mp_read_uint(r, &u);
        return json_integer((json_int_t)u);
    }
    case MP_FLOAT: {
        double d = 0;
        mp_read_double(r, &d);
        return json_real(d);
    }
    case MP_STR: mp_read_str(r, &s, &n); return json_stringn(s, n);
    case MP_ARRAY: {
        json_t *a = json_array();
        mp_read_array(r, &n);
        for (uint32_t k = 0; k < n && !r->err; k++)
            json_array_append_new(a, msg_mp_to_json(r, depth + 1));
        return a;
    }
    case MP_MAP: {
        json_t *o = json_object();
        mp_read_map(r, &n);
        for (uint32_t k = 0; k < n && !r->err; k++) {
            char key[256];
            if (mp_read_cstr(r, key, sizeof key))
                break;
            json_object_set_new(o, key, msg_mp_to_json(r, depth + 1));
        }
        return o;
    }
    default: mp_skip(r, 4); return json_null();
    }
}
