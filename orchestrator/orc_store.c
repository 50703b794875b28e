/*  orc_store: journal records. See orc_store.h for the formats. */
#include "orc_store.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_VERSION 1

static size_t s_step_key(uint8_t *key, const char *id, uint32_t i)
{
    size_t n = strlen(id);
    memcpy(key, id, n);
    key[n] = 0;
    key[n + 1] = (uint8_t)i;
    return n + 2;
}

static size_t s_index_key(uint8_t *key, uint8_t state, const char *id)
{
    size_t n = strlen(id);
    key[0] = state;
    memcpy(key + 1, id, n);
    return n + 1;
}

static size_t s_history_key(uint8_t *key, const char *id, uint64_t seq)
{
    size_t n = strlen(id);
    memcpy(key, id, n);
    key[n] = 0;
    for (int i = 0; i < 8; i++)
        key[n + 1 + i] = (uint8_t)(seq >> (56 - 8 * i));
    return n + 9;
}

static void s_pack_opt_str(msgpack_packer *pk, const char *s)
{
    if (s)
        mp_pack_cstr(pk, s);
    else
        msgpack_pack_nil(pk);
}

int orc_store_put_saga(jnl_t *jnl, msgpack_sbuffer *buf, orc_saga_t *saga)
{
    msgpack_packer pk;
    char hex[33];
    uint8_t key[MSG_ID_MAX + 2];
    int rc;
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", saga->hash[i]);
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint8(&pk, REC_VERSION);
    msgpack_pack_uint8(&pk, saga->state);
    msgpack_pack_uint64(&pk, saga->created_ms);
    msgpack_pack_uint64(&pk, saga->updated_ms);
    s_pack_opt_str(&pk, saga->reason);
    mp_pack_cstr(&pk, hex);
    msg_saga_pack(saga->def, &pk);
    const char *id = saga->def->id;
    if ((rc = jnl_put(jnl, JNL_SAGAS, id, strlen(id), buf->data, buf->size)))
        return rc;
    if (saga->journaled_state != saga->state) {
        if (saga->journaled_state &&
            (rc = jnl_del(jnl, JNL_INDEX, key, s_index_key(key, saga->journaled_state, id))))
            return rc;
        if ((rc = jnl_put(jnl, JNL_INDEX, key, s_index_key(key, saga->state, id), "", 0)))
            return rc;
    }
    return 0;
}

int orc_store_put_step(jnl_t *jnl, msgpack_sbuffer *buf, const orc_saga_t *saga, uint32_t i)
{
    const orc_step_t *st = &saga->steps[i];
    msgpack_packer pk;
    uint8_t key[MSG_ID_MAX + 2];
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 14);
    msgpack_pack_uint8(&pk, REC_VERSION);
    msgpack_pack_uint8(&pk, st->state);
    msgpack_pack_uint8(&pk, st->maybe_applied ? 1 : 0);
    msgpack_pack_uint32(&pk, st->attempts);
    msgpack_pack_uint32(&pk, st->comp_attempts);
    msgpack_pack_uint64(&pk, st->started_ms);
    msgpack_pack_uint64(&pk, st->finished_ms);
    msgpack_pack_uint64(&pk, st->comp_started_ms);
    msgpack_pack_uint64(&pk, st->comp_finished_ms);
    msgpack_pack_uint64(&pk, st->due_ms);
    mp_pack_cstr(&pk, st->code);
    s_pack_opt_str(&pk, st->error);
    if (st->output_len)
        mp_pack_raw(&pk, st->output, st->output_len);
    else
        msgpack_pack_nil(&pk);
    msgpack_pack_uint64(&pk, st->lease);
    return jnl_put(jnl, JNL_STEPS, key, s_step_key(key, saga->def->id, i), buf->data, buf->size);
}

int orc_store_put_event(jnl_t *jnl, msgpack_sbuffer *buf, const orc_event_t *ev)
{
    msgpack_packer pk;
    uint8_t key[MSG_ID_MAX + 9];
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint8(&pk, REC_VERSION);
    msgpack_pack_uint64(&pk, ev->ts_ms);
    msgpack_pack_int32(&pk, ev->step);
    mp_pack_cstr(&pk, ev->what);
    msgpack_pack_uint32(&pk, ev->attempt);
    s_pack_opt_str(&pk, ev->reason);
    return jnl_put(jnl, JNL_HISTORY, key, s_history_key(key, ev->id, ev->seq), buf->data,
                   buf->size);
}

int orc_store_put_system(jnl_t *jnl, msgpack_sbuffer *buf, const orc_system_t *sys)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, REC_VERSION);
    msgpack_pack_array(&pk, sys->nops);
    for (uint32_t i = 0; i < sys->nops; i++)
        mp_pack_cstr(&pk, sys->ops[i]);
    return jnl_put(jnl, JNL_SYSTEMS, sys->name, strlen(sys->name), buf->data, buf->size);
}

/* Reads an optional string into a fresh heap copy (NULL for nil). */
static int s_read_opt_str(mp_reader_t *r, char **out)
{
    const char *s;
    uint32_t n;
    if (mp_peek(r) == MP_NIL)
        return mp_read_nil(r);
    if (mp_read_str(r, &s, &n))
        return -1;
    *out = strndup(s, n);
    return *out ? 0 : mp_fail(r, "out of memory");
}

static int s_read_u8(mp_reader_t *r, uint8_t *v)
{
    uint64_t u;
    if (mp_read_uint(r, &u) || u > 255)
        return mp_fail(r, "bad byte");
    *v = (uint8_t)u;
    return 0;
}

static int s_read_u32(mp_reader_t *r, uint32_t *v)
{
    uint64_t u;
    if (mp_read_uint(r, &u) || u > UINT32_MAX)
        return mp_fail(r, "bad count");
    *v = (uint32_t)u;
    return 0;
}

static int s_load_step(mp_reader_t *r, orc_step_t *st)
{
    uint32_t n;
    uint8_t ver = 0, flags = 0;
    if (mp_read_array(r, &n) || (n != 13 && n != 14) || s_read_u8(r, &ver) || ver != REC_VERSION)
        return mp_fail(r, "bad step record");
    s_read_u8(r, &st->state);
    s_read_u8(r, &flags);
    st->maybe_applied = flags & 1;
    s_read_u32(r, &st->attempts);
    s_read_u32(r, &st->comp_attempts);
    mp_read_uint(r, &st->started_ms);
    mp_read_uint(r, &st->finished_ms);
    mp_read_uint(r, &st->comp_started_ms);
    mp_read_uint(r, &st->comp_finished_ms);
    mp_read_uint(r, &st->due_ms);
    mp_read_cstr(r, st->code, sizeof st->code);
    s_read_opt_str(r, &st->error);
    if (mp_peek(r) == MP_NIL)
        mp_read_nil(r);
    else {
        const uint8_t *p = r->p;
        if (mp_skip(r, 2) == 0) {
            st->output_len = (uint32_t)(r->p - p);
            if ((st->output = malloc(st->output_len)))
                memcpy(st->output, p, st->output_len);
            else
                mp_fail(r, "out of memory");
        }
    }
    if (n == 14)
        mp_read_uint(r, &st->lease);
    if (!r->err && st->state >= STEP_NSTATES)
        mp_fail(r, "bad step state");
    return r->err ? -1 : 0;
}

orc_saga_t *orc_store_load(jnl_t *jnl, const char *id, int *rc, char *err, size_t errlen)
{
    const void *val;
    size_t len;
    mp_reader_t r;
    uint32_t n;
    uint8_t ver = 0, state = 0;
    uint64_t created = 0, updated = 0;
    char *reason = NULL, hex[33];
    orc_saga_t *saga = NULL;
    msg_saga_t *def;
    err[0] = 0;
    if ((*rc = jnl_get(jnl, JNL_SAGAS, id, strlen(id), &val, &len)))
        return NULL;
    mp_reader_init(&r, val, len);
    if (mp_read_array(&r, &n) || n != 7 || s_read_u8(&r, &ver) || ver != REC_VERSION ||
        s_read_u8(&r, &state) || mp_read_uint(&r, &created) || mp_read_uint(&r, &updated) ||
        s_read_opt_str(&r, &reason) || mp_read_cstr(&r, hex, sizeof hex))
        goto corrupt;
    if (!(def = msg_saga_read(&r, err, errlen)))
        goto corrupt;
    if (!(saga = orc_saga_new(def))) {
        msg_saga_destroy(&def);
        goto corrupt;
    }
    saga->state = saga->journaled_state = state;
    saga->created_ms = created;
    saga->updated_ms = updated;
    saga->reason = reason;
    reason = NULL;
    for (int i = 0; i < 16; i++) {
        unsigned b = 0;
        sscanf(hex + 2 * i, "%2x", &b);
        saga->hash[i] = (uint8_t)b;
    }
    for (uint32_t i = 0; i < def->nsteps; i++) {
        uint8_t key[MSG_ID_MAX + 2];
        /* A step never written is pending: steps are written on change. */
        int grc = jnl_get(jnl, JNL_STEPS, key, s_step_key(key, id, i), &val, &len);
        if (grc == MDB_NOTFOUND)
            continue;
        if (grc) {
            *rc = grc;
            snprintf(err, errlen, "saga %s step %u: %s", id, i, jnl_strerror(grc));
            orc_saga_destroy(&saga);
            return NULL;
        }
        mp_reader_init(&r, val, len);
        if (s_load_step(&r, &saga->steps[i])) {
            snprintf(err, errlen, "saga %s step %u: corrupt record (%s)", id, i, r.err);
            orc_saga_destroy(&saga);
            *rc = MDB_CORRUPTED;
            return NULL;
        }
    }
    return saga;
corrupt:
    free(reason);
    if (!err[0])
        snprintf(err, errlen, "saga %s: corrupt record (%s)", id, r.err ? r.err : "?");
    else {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "saga %s: corrupt definition (%s)", id, err);
        snprintf(err, errlen, "%s", tmp);
    }
    *rc = MDB_CORRUPTED;
    return NULL;
}

static int s_system_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    orc_registry_t *reg = arg;
    mp_reader_t r;
    uint32_t n, nops;
    uint8_t ver = 0;
    char name[MSG_NAME_MAX + 1];
    char ops[MSG_MAX_OPS][MSG_NAME_MAX + 1];
    if (klen == 0 || klen > MSG_NAME_MAX)
        return 0;
    memcpy(name, key, klen);
    name[klen] = 0;
    mp_reader_init(&r, val, vlen);
    if (mp_read_array(&r, &n) || n != 2 || s_read_u8(&r, &ver) || mp_read_array(&r, &nops) ||
        nops > MSG_MAX_OPS)
        return 0;
    for (uint32_t i = 0; i < nops; i++)
        if (mp_read_cstr(&r, ops[i], sizeof ops[i]))
            return 0;
    orc_system_t *sys = orc_registry_define(reg, name, ops, nops);
    if (sys)
        sys->dirty = false; /* it came from the journal */
    return 0;
}

int orc_store_load_systems(jnl_t *jnl, orc_registry_t *reg)
{
    return jnl_scan(jnl, JNL_SYSTEMS, NULL, 0, s_system_cb, reg);
}

typedef struct {
    orc_store_id_fn *fn;
    void *arg;
} s_id_scan_t;

static int s_index_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    s_id_scan_t *scan = arg;
    char id[MSG_ID_MAX + 1];
    if (klen < 2 || klen - 1 > MSG_ID_MAX)
        return 0;
    memcpy(id, (const uint8_t *)key + 1, klen - 1);
    id[klen - 1] = 0;
    return scan->fn(scan->arg, id);
}

int orc_store_each_in_state(jnl_t *jnl, uint8_t state, orc_store_id_fn *fn, void *arg)
{
    s_id_scan_t scan = { fn, arg };
    return jnl_scan(jnl, JNL_INDEX, &state, 1, s_index_cb, &scan);
}

typedef struct {
    const char *id;
    orc_store_event_fn *fn;
    void *arg;
} s_ev_scan_t;

static int s_history_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_ev_scan_t *scan = arg;
    orc_event_t ev = { 0 };
    mp_reader_t r;
    uint32_t n;
    uint8_t ver = 0;
    int64_t step;
    const char *what;
    uint32_t wlen;
    char whatbuf[64];
    const uint8_t *k = key;
    if (klen != strlen(scan->id) + 9)
        return 0;
    for (int i = 0; i < 8; i++)
        ev.seq = (ev.seq << 8) | k[klen - 8 + i];
    strcpy(ev.id, scan->id);
    mp_reader_init(&r, val, vlen);
    if (mp_read_array(&r, &n) || n != 6 || s_read_u8(&r, &ver) || mp_read_uint(&r, &ev.ts_ms) ||
        mp_read_int(&r, &step) || mp_read_str(&r, &what, &wlen) || wlen >= sizeof whatbuf ||
        s_read_u32(&r, &ev.attempt) || s_read_opt_str(&r, &ev.reason))
        return 0;
    memcpy(whatbuf, what, wlen);
    whatbuf[wlen] = 0;
    ev.what = whatbuf;
    ev.step = (int32_t)step;
    int out = scan->fn(scan->arg, &ev);
    free(ev.reason);
    return out;
}

int orc_store_each_event(jnl_t *jnl, const char *id, orc_store_event_fn *fn, void *arg)
{
    uint8_t prefix[MSG_ID_MAX + 1];
    size_t n = strlen(id);
    s_ev_scan_t scan = { id, fn, arg };
    memcpy(prefix, id, n);
    prefix[n] = 0;
    return jnl_scan(jnl, JNL_HISTORY, prefix, n + 1, s_history_cb, &scan);
}
