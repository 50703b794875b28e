/*  orc_store: journal records. See orc_store.h for the formats. */
#include "orc_store.h"

#include <errno.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_VERSION 1 /* step, history and system records; v1 saga records */
#define REC_SAGA_V2 2 /* split saga: definition once, a small state record */
#define LAYOUT      3 /* meta "layout": 2 keys of index, created and ended; 3 evseq */

static void s_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t s_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* A time (or sequence) and an id: created, ended and tombexp keys. */
static size_t s_time_key(uint8_t *key, uint64_t t, const char *id)
{
    size_t n = strlen(id);
    s_put_be64(key, t);
    memcpy(key + 8, id, n);
    return n + 8;
}

bool orc_store_ended(uint8_t state)
{
    return state == SAGA_COMPLETED || state == SAGA_COMPENSATED || state == SAGA_RESOLVED;
}

static size_t s_step_key(uint8_t *key, const char *id, uint32_t i)
{
    size_t n = strlen(id);
    memcpy(key, id, n);
    key[n] = 0;
    key[n + 1] = (uint8_t)i;
    return n + 2;
}

/* index: state, created ms, id: by state, newest last. */
static size_t s_index_key(uint8_t *key, uint8_t state, uint64_t created, const char *id)
{
    key[0] = state;
    return 1 + s_time_key(key + 1, created, id);
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

/* The definition record's head; the definition follows it. */
static void s_pack_def_head(msgpack_packer *pk, uint64_t created_ms, const uint8_t hash[16])
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, REC_SAGA_V2);
    msgpack_pack_uint64(pk, created_ms);
    mp_pack_raw_bin(pk, hash, 16);
}

static void s_pack_state(msgpack_packer *pk, uint8_t state, uint64_t updated_ms, const char *reason)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, REC_SAGA_V2);
    msgpack_pack_uint8(pk, state);
    msgpack_pack_uint64(pk, updated_ms);
    s_pack_opt_str(pk, reason);
}

int orc_store_put_saga(jnl_t *jnl, msgpack_sbuffer *buf, orc_saga_t *saga, uint64_t *ended_seq)
{
    msgpack_packer pk;
    uint8_t key[MSG_ID_MAX + 9];
    const char *id = saga->def->id;
    size_t idlen = strlen(id);
    int rc;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    if (!saga->def_journaled) {
        /* The definition never changes: written once, not per transition. */
        msgpack_sbuffer_clear(buf);
        s_pack_def_head(&pk, saga->created_ms, saga->hash);
        msg_saga_pack(saga->def, &pk);
        if ((rc = jnl_put(jnl, JNL_DEFS, id, idlen, buf->data, buf->size)))
            return rc;
    }
    if (!saga->journaled_state &&
        (rc = jnl_put(jnl, JNL_CREATED, key, s_time_key(key, saga->created_ms, id), "", 0)))
        return rc;
    msgpack_sbuffer_clear(buf);
    s_pack_state(&pk, saga->state, saga->updated_ms, saga->reason);
    if ((rc = jnl_put(jnl, JNL_SAGAS, id, idlen, buf->data, buf->size)))
        return rc;
    if (saga->journaled_state != saga->state) {
        if (saga->journaled_state &&
            (rc = jnl_del(jnl, JNL_INDEX, key,
                          s_index_key(key, saga->journaled_state, saga->created_ms, id))))
            return rc;
        if ((rc = jnl_put(jnl, JNL_INDEX, key, s_index_key(key, saga->state, saga->created_ms, id),
                          "", 0)))
            return rc;
        if (orc_store_ended(saga->state) && !orc_store_ended(saga->journaled_state)) {
            uint8_t ms[8];
            s_put_be64(ms, saga->updated_ms);
            if ((rc = jnl_put(jnl, JNL_ENDED, key, s_time_key(key, ++*ended_seq, id), ms, 8)))
                return rc;
        }
    }
    return 0;
}

int orc_store_put_step(jnl_t *jnl, msgpack_sbuffer *buf, const orc_saga_t *saga, uint32_t i,
                       int64_t wall_minus_mono)
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
    /* In memory a due time is on the monotonic clock, which restarts with
       the machine: the journal keeps the wall-clock time it stands for. */
    int64_t due = st->due_ms ? (int64_t)st->due_ms + wall_minus_mono : 0;
    msgpack_pack_uint64(&pk, !st->due_ms ? 0 : due > 0 ? (uint64_t)due : 1);
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
    uint8_t seq[8];
    s_put_be64(seq, ev->seq);
    int rc =
        jnl_put(jnl, JNL_HISTORY, key, s_history_key(key, ev->id, ev->seq), buf->data, buf->size);
    /* Sequence numbers only grow: an append, not a search. */
    return rc ? rc : jnl_append(jnl, JNL_EVSEQ, seq, 8, ev->id, strlen(ev->id));
}

int orc_store_put_system(jnl_t *jnl, msgpack_sbuffer *buf, const orc_system_t *sys)
{
    msgpack_packer pk;
    uint32_t nschemas = 0;
    for (uint32_t i = 0; i < sys->nops; i++)
        nschemas += sys->schema[i] != NULL;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, REC_VERSION);
    msgpack_pack_array(&pk, sys->nops);
    for (uint32_t i = 0; i < sys->nops; i++)
        mp_pack_cstr(&pk, sys->ops[i]);
    /* The schemas too: a restarted zsagad checks params before its
       workers are back. */
    msgpack_pack_map(&pk, nschemas);
    for (uint32_t i = 0; i < sys->nops; i++)
        if (sys->schema[i]) {
            mp_pack_cstr(&pk, sys->ops[i]);
            msgpack_pack_array(&pk, 2);
            mp_pack_cstr(&pk, sys->schema[i]->params_text);
            mp_pack_cstr(&pk, sys->schema[i]->outputs_text);
        }
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

/* The saga record's fields; v1 records hold the definition too. */
typedef struct {
    uint8_t ver, state;
    uint64_t created, updated;
    char *reason; /* owned */
    uint8_t hash[16];
    mp_reader_t def; /* at the definition */
} s_head_t;

static int s_read_hash_hex(mp_reader_t *r, uint8_t hash[16])
{
    char hex[33];
    if (mp_read_cstr(r, hex, sizeof hex) || strlen(hex) != 32)
        return mp_fail(r, "bad hash");
    for (int i = 0; i < 16; i++) {
        unsigned b = 0;
        sscanf(hex + 2 * i, "%2x", &b);
        hash[i] = (uint8_t)b;
    }
    return 0;
}

static int s_read_hash_bin(mp_reader_t *r, uint8_t hash[16])
{
    const uint8_t *p;
    uint32_t n;
    if (mp_read_bin(r, &p, &n) || n != 16)
        return mp_fail(r, "bad hash");
    memcpy(hash, p, 16);
    return 0;
}

/* Read a saga's head, and position h->def at its definition.
   MDB_NOTFOUND, MDB_CORRUPTED (err says why) or a journal error. */
static int s_read_head(jnl_t *jnl, const char *id, s_head_t *h, char *err, size_t errlen)
{
    const void *val;
    size_t len;
    mp_reader_t r;
    uint32_t n;
    int rc;
    memset(h, 0, sizeof *h);
    if ((rc = jnl_get(jnl, JNL_SAGAS, id, strlen(id), &val, &len)))
        return rc;
    mp_reader_init(&r, val, len);
    if (mp_read_array(&r, &n) || s_read_u8(&r, &h->ver))
        goto corrupt;
    if (h->ver == REC_VERSION && n == 7) {
        /* Before the split: [1, state, created, updated, reason, hash-hex, definition] */
        if (s_read_u8(&r, &h->state) || mp_read_uint(&r, &h->created) ||
            mp_read_uint(&r, &h->updated) || s_read_opt_str(&r, &h->reason) ||
            s_read_hash_hex(&r, h->hash))
            goto corrupt;
        h->def = r;
        return 0;
    }
    if (h->ver != REC_SAGA_V2 || n != 4 || s_read_u8(&r, &h->state) ||
        mp_read_uint(&r, &h->updated) || s_read_opt_str(&r, &h->reason))
        goto corrupt;
    if ((rc = jnl_get(jnl, JNL_DEFS, id, strlen(id), &val, &len))) {
        snprintf(err, errlen, "saga %s: its definition is missing (%s)", id, jnl_strerror(rc));
        free(h->reason);
        h->reason = NULL;
        return MDB_CORRUPTED;
    }
    mp_reader_init(&r, val, len);
    uint8_t ver = 0;
    if (mp_read_array(&r, &n) || n != 4 || s_read_u8(&r, &ver) || ver != REC_SAGA_V2 ||
        mp_read_uint(&r, &h->created) || s_read_hash_bin(&r, h->hash))
        goto corrupt;
    h->def = r;
    return 0;
corrupt:
    snprintf(err, errlen, "saga %s: corrupt record (%s)", id, r.err ? r.err : "?");
    free(h->reason);
    h->reason = NULL;
    return MDB_CORRUPTED;
}

int orc_store_peek(jnl_t *jnl, const char *id, uint8_t *state, uint8_t hash[16],
                   uint64_t *created_ms)
{
    s_head_t h;
    char err[256];
    int rc = s_read_head(jnl, id, &h, err, sizeof err);
    if (rc)
        return rc;
    *state = h.state;
    memcpy(hash, h.hash, 16);
    if (created_ms)
        *created_ms = h.created;
    free(h.reason);
    return 0;
}

orc_saga_t *orc_store_load(jnl_t *jnl, const char *id, int *rc, char *err, size_t errlen)
{
    const void *val;
    size_t len;
    mp_reader_t r;
    s_head_t h;
    orc_saga_t *saga = NULL;
    msg_saga_t *def;
    err[0] = 0;
    if ((*rc = s_read_head(jnl, id, &h, err, errlen)))
        return NULL;
    if (!(def = msg_saga_read(&h.def, err, errlen))) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "saga %s: corrupt definition (%s)", id, err);
        snprintf(err, errlen, "%s", tmp);
        free(h.reason);
        *rc = MDB_CORRUPTED;
        return NULL;
    }
    if (!(saga = orc_saga_new(def))) {
        msg_saga_destroy(&def);
        free(h.reason);
        snprintf(err, errlen, "out of memory");
        *rc = ENOMEM;
        return NULL;
    }
    saga->state = saga->journaled_state = h.state;
    saga->def_journaled = h.ver == REC_SAGA_V2;
    saga->created_ms = h.created;
    saga->updated_ms = h.updated;
    saga->reason = h.reason;
    memcpy(saga->hash, h.hash, 16);
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
    if (mp_read_array(&r, &n) || (n != 2 && n != 3) || s_read_u8(&r, &ver) ||
        mp_read_array(&r, &nops) || nops > MSG_MAX_OPS)
        return 0;
    for (uint32_t i = 0; i < nops; i++)
        if (mp_read_cstr(&r, ops[i], sizeof ops[i]))
            return 0;
    orc_system_t *sys = orc_registry_define(reg, name, ops, nops);
    uint32_t ns = 0;
    if (sys && n == 3 && mp_read_map(&r, &ns) == 0)
        for (uint32_t i = 0; i < ns; i++) {
            char op[MSG_NAME_MAX + 1], p[MSG_SCHEMA_TEXT_MAX + 1], o[MSG_SCHEMA_TEXT_MAX + 1];
            char err[256];
            uint32_t two;
            if (mp_read_cstr(&r, op, sizeof op) || mp_read_array(&r, &two) || two != 2 ||
                mp_read_cstr(&r, p, sizeof p) || mp_read_cstr(&r, o, sizeof o))
                break;
            orc_system_set_schema(sys, op, p, o, err, sizeof err);
        }
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
    if (klen < 10 || klen - 9 > MSG_ID_MAX)
        return 0;
    memcpy(id, (const uint8_t *)key + 9, klen - 9);
    id[klen - 9] = 0;
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

typedef struct {
    jnl_t *jnl;
    orc_store_event_fn *fn;
    void *arg;
    uint64_t first;
} s_seq_scan_t;

static int s_evseq_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_seq_scan_t *q = arg;
    uint8_t hkey[MSG_ID_MAX + 9];
    char id[MSG_ID_MAX + 1];
    const void *h;
    size_t hlen;
    if (klen != 8 || vlen == 0 || vlen > MSG_ID_MAX)
        return 0;
    memcpy(id, val, vlen);
    id[vlen] = 0;
    memcpy(hkey, id, vlen);
    hkey[vlen] = 0;
    memcpy(hkey + vlen + 1, key, 8);
    if (jnl_get(q->jnl, JNL_HISTORY, hkey, vlen + 9, &h, &hlen))
        return 0; /* removed in the same transaction: never here */
    s_ev_scan_t scan = { id, q->fn, q->arg };
    return s_history_cb(&scan, hkey, vlen + 9, h, hlen);
}

int orc_store_events_after(jnl_t *jnl, uint64_t after, orc_store_event_fn *fn, void *arg)
{
    uint8_t from[8];
    s_put_be64(from, after);
    s_seq_scan_t q = { jnl, fn, arg, 0 };
    int rc = jnl_scan_from(jnl, JNL_EVSEQ, NULL, 0, from, 8, false, s_evseq_cb, &q);
    return rc == MDB_NOTFOUND || rc == 1 ? 0 : rc; /* 1: fn had enough */
}

static int s_first_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val, (void)vlen;
    const uint8_t *k = key;
    uint64_t *seq = arg;
    if (klen == 8)
        for (int i = 0; i < 8; i++)
            *seq = (*seq << 8) | k[i];
    return 1;
}

uint64_t orc_store_first_seq(jnl_t *jnl)
{
    uint64_t seq = 0;
    jnl_scan_from(jnl, JNL_EVSEQ, NULL, 0, NULL, 0, false, s_first_cb, &seq);
    return seq;
}

/* ---- lifecycle: removal, tombstones, layout upgrade ----------------------- */

/* A history key ends in its sequence number: drop that from evseq. */
static int s_unseq_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val, (void)vlen;
    return klen > 8 ? jnl_del(arg, JNL_EVSEQ, (const uint8_t *)key + klen - 8, 8) : 0;
}

/* Layout 3: every history row gets its evseq entry. */
static int s_seq_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val, (void)vlen;
    size_t idlen = strnlen(key, klen);
    return klen == idlen + 9
               ? jnl_put(arg, JNL_EVSEQ, (const uint8_t *)key + idlen + 1, 8, key, idlen)
               : 0;
}

int orc_store_remove(jnl_t *jnl, msgpack_sbuffer *buf, const char *id, uint64_t now_ms,
                     bool tombstone, size_t *records)
{
    uint8_t key[MSG_ID_MAX + 9], hash[16];
    uint8_t state;
    uint64_t created;
    size_t idlen = strlen(id), n = 0, m;
    int rc = orc_store_peek(jnl, id, &state, hash, &created);
    if (rc)
        return rc;
    if (!orc_store_ended(state))
        return EINVAL; /* running, compensating and parked sagas stay */
    if ((rc = jnl_del(jnl, JNL_SAGAS, id, idlen)) || (rc = jnl_del(jnl, JNL_DEFS, id, idlen)) ||
        (rc = jnl_del(jnl, JNL_INDEX, key, s_index_key(key, state, created, id))) ||
        (rc = jnl_del(jnl, JNL_CREATED, key, s_time_key(key, created, id))))
        return rc;
    n += 4;
    memcpy(key, id, idlen);
    key[idlen] = 0;
    if ((rc = jnl_del_prefix(jnl, JNL_STEPS, key, idlen + 1, &m)))
        return rc;
    n += m;
    if ((rc = jnl_scan(jnl, JNL_HISTORY, key, idlen + 1, s_unseq_cb, jnl)) ||
        (rc = jnl_del_prefix(jnl, JNL_HISTORY, key, idlen + 1, &m)))
        return rc;
    n += 2 * m;
    if (tombstone) {
        msgpack_packer pk;
        msgpack_sbuffer_clear(buf);
        msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 5);
        msgpack_pack_uint8(&pk, REC_VERSION);
        msgpack_pack_uint64(&pk, now_ms);
        msgpack_pack_uint8(&pk, state);
        msgpack_pack_uint64(&pk, created);
        mp_pack_raw_bin(&pk, hash, 16);
        if ((rc = jnl_put(jnl, JNL_TOMBS, id, idlen, buf->data, buf->size)) ||
            (rc = jnl_put(jnl, JNL_TOMBEXP, key, s_time_key(key, now_ms, id), "", 0)))
            return rc;
        n += 2;
    }
    if (records)
        *records = n;
    return 0;
}

int orc_store_tomb(jnl_t *jnl, const char *id, orc_tomb_t *t)
{
    const void *val;
    size_t len;
    mp_reader_t r;
    uint32_t n;
    uint8_t ver = 0;
    int rc = jnl_get(jnl, JNL_TOMBS, id, strlen(id), &val, &len);
    if (rc)
        return rc;
    mp_reader_init(&r, val, len);
    if (mp_read_array(&r, &n) || n != 5 || s_read_u8(&r, &ver) ||
        mp_read_uint(&r, &t->removed_ms) || s_read_u8(&r, &t->state) ||
        mp_read_uint(&r, &t->created_ms) || s_read_hash_bin(&r, t->hash))
        return MDB_CORRUPTED;
    return 0;
}

typedef struct {
    uint64_t before_ms;
    size_t n, max;
    uint8_t (*keys)[MSG_ID_MAX + 9];
    size_t *lens;
} s_expire_t;

static int s_expire_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    s_expire_t *x = arg;
    if (x->n >= x->max || klen <= 8 || klen > sizeof x->keys[0] || s_get_be64(key) >= x->before_ms)
        return 1; /* in time order: the rest are younger */
    memcpy(x->keys[x->n], key, klen);
    x->lens[x->n++] = klen;
    return 0;
}

int orc_store_expire_tombs(jnl_t *jnl, uint64_t before_ms, size_t max, size_t *n)
{
    /* Collect the oldest first, then delete: never under a live cursor. */
    uint8_t keys[32][MSG_ID_MAX + 9];
    size_t lens[32];
    s_expire_t x = { before_ms, 0, max < 32 ? max : 32, keys, lens };
    int rc = jnl_scan(jnl, JNL_TOMBEXP, NULL, 0, s_expire_cb, &x);
    *n = 0;
    if (rc && rc != 1)
        return rc;
    for (size_t i = 0; i < x.n; i++) {
        if ((rc = jnl_del(jnl, JNL_TOMBS, keys[i] + 8, lens[i] - 8)) ||
            (rc = jnl_del(jnl, JNL_TOMBEXP, keys[i], lens[i])))
            return rc;
        (*n)++;
    }
    return 0;
}

typedef struct {
    jnl_t *jnl;
    char (*ids)[MSG_ID_MAX + 1];
    size_t n, cap;
} s_ids_t;

static int s_all_ids_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    s_ids_t *l = arg;
    if (klen == 0 || klen > MSG_ID_MAX)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        void *p = realloc(l->ids, cap * sizeof *l->ids);
        if (!p)
            return ENOMEM;
        l->ids = p;
        l->cap = cap;
    }
    memcpy(l->ids[l->n], key, klen);
    l->ids[l->n++][klen] = 0;
    return 0;
}

/* A v1 record held the definition as submitted and a hash of it with its
   params in the client's key order. Write it as layout 2 does, with the
   hash of the canonical definition, so a client that retries its submit
   across the upgrade gets "duplicate", not "conflict". */
static int s_upgrade_v1(jnl_t *jnl, const char *id, s_head_t *h, char *err, size_t errlen)
{
    msg_saga_t *def = msg_saga_read(&h->def, err, errlen);
    if (!def) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "saga %s: corrupt definition (%s)", id, err);
        snprintf(err, errlen, "%s", tmp);
        return MDB_CORRUPTED;
    }
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msg_saga_pack(def, &pk);
    msg_saga_destroy(&def);
    crypto_generichash(h->hash, sizeof h->hash, (const uint8_t *)buf.data, buf.size, NULL, 0);
    msgpack_sbuffer tmp;
    msgpack_sbuffer_init(&tmp);
    msgpack_packer_init(&pk, &tmp, msgpack_sbuffer_write);
    s_pack_def_head(&pk, h->created, h->hash);
    msgpack_sbuffer_write(&tmp, buf.data, buf.size);
    int rc = jnl_put(jnl, JNL_DEFS, id, strlen(id), tmp.data, tmp.size);
    msgpack_sbuffer_clear(&tmp);
    s_pack_state(&pk, h->state, h->updated, h->reason);
    if (!rc)
        rc = jnl_put(jnl, JNL_SAGAS, id, strlen(id), tmp.data, tmp.size);
    msgpack_sbuffer_destroy(&tmp);
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

int orc_store_upgrade(jnl_t *jnl, uint64_t *ended_seq, char *err, size_t errlen)
{
    /* Journals written before layout 2 keyed the index by state and id
       alone, had no created or ended index, and kept the definition in
       every saga record: rebuild the indexes and rewrite those records
       once, in one transaction. */
    s_ids_t l = { jnl, NULL, 0, 0 };
    int rc = jnl_write_begin(jnl);
    uint64_t layout = rc ? 0 : jnl_meta_get(jnl, "layout");
    if (!rc && layout >= LAYOUT) {
        jnl_write_abort(jnl);
        *ended_seq = jnl_meta_get(jnl, "ended_seq");
        return 0;
    }
    /* Layout 2 to 3: the event stream's order, from the history. */
    if (!rc && layout == 2) {
        *ended_seq = jnl_meta_get(jnl, "ended_seq");
        rc = jnl_scan(jnl, JNL_HISTORY, NULL, 0, s_seq_cb, jnl);
        goto done;
    }
    if (!rc)
        rc = jnl_scan(jnl, JNL_SAGAS, NULL, 0, s_all_ids_cb, &l);
    for (size_t i = 0; i < l.n && !rc; i++) {
        s_head_t h;
        uint8_t key[MSG_ID_MAX + 10];
        const char *id = l.ids[i];
        if ((rc = s_read_head(jnl, id, &h, err, errlen)))
            break;
        if (h.ver == REC_VERSION)
            rc = s_upgrade_v1(jnl, id, &h, err, errlen);
        free(h.reason);
        if (rc)
            break;
        key[0] = h.state;
        size_t n = strlen(id);
        memcpy(key + 1, id, n);
        if ((rc = jnl_del(jnl, JNL_INDEX, key, n + 1)) ||
            (rc = jnl_put(jnl, JNL_INDEX, key, s_index_key(key, h.state, h.created, id), "", 0)) ||
            (rc = jnl_put(jnl, JNL_CREATED, key, s_time_key(key, h.created, id), "", 0)))
            break;
        if (orc_store_ended(h.state)) {
            uint8_t ms[8];
            s_put_be64(ms, h.updated);
            if ((rc = jnl_put(jnl, JNL_ENDED, key, s_time_key(key, ++*ended_seq, id), ms, 8)))
                break;
        }
    }
    free(l.ids);
    if (!rc)
        rc = jnl_scan(jnl, JNL_HISTORY, NULL, 0, s_seq_cb, jnl);
done:
    if (!rc)
        rc = jnl_meta_put(jnl, "layout", LAYOUT);
    if (!rc)
        rc = jnl_meta_put(jnl, "ended_seq", *ended_seq);
    if (!rc)
        rc = jnl_write_commit(jnl);
    else
        jnl_write_abort(jnl);
    if (rc && !err[0])
        snprintf(err, errlen, "journal layout upgrade: %s%s", jnl_strerror(rc),
                 rc == MDB_MAP_FULL ? " (raise --map-size once for the upgrade)" : "");
    return rc;
}

/* ---- walking by end and by creation ---------------------------------------- */

typedef struct {
    orc_store_ended_fn *fn;
    void *arg;
} s_ended_scan_t;

static int s_ended_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_ended_scan_t *x = arg;
    char id[MSG_ID_MAX + 1];
    if (klen <= 8 || klen - 8 > MSG_ID_MAX || vlen != 8)
        return 0;
    memcpy(id, (const uint8_t *)key + 8, klen - 8);
    id[klen - 8] = 0;
    return x->fn(x->arg, s_get_be64(key), id, s_get_be64(val));
}

int orc_store_each_ended(jnl_t *jnl, uint64_t after_seq, orc_store_ended_fn *fn, void *arg)
{
    s_ended_scan_t x = { fn, arg };
    uint8_t from[8];
    /* Keys are seq + id, so the bare 8 bytes of after_seq + 1 sort before
       every key of that seq and after every key of after_seq. */
    s_put_be64(from, after_seq + 1);
    return jnl_scan_from(jnl, JNL_ENDED, NULL, 0, after_seq ? from : NULL, 8, false, s_ended_cb,
                         &x);
}

int orc_store_unend(jnl_t *jnl, uint64_t seq, const char *id)
{
    uint8_t key[MSG_ID_MAX + 9];
    return jnl_del(jnl, JNL_ENDED, key, s_time_key(key, seq, id));
}

typedef struct {
    orc_store_list_fn *fn;
    void *arg;
    size_t skip; /* bytes before the created time: 1 under a state */
    uint64_t since;
} s_list_scan_t;

static int s_list_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    s_list_scan_t *x = arg;
    const uint8_t *k = key;
    char id[MSG_ID_MAX + 1];
    if (klen <= x->skip + 8 || klen - x->skip - 8 > MSG_ID_MAX)
        return 0;
    uint64_t created = s_get_be64(k + x->skip);
    if (created < x->since)
        return 1; /* newest first: everything after is older still */
    memcpy(id, k + x->skip + 8, klen - x->skip - 8);
    id[klen - x->skip - 8] = 0;
    return x->fn(x->arg, created, id);
}

int orc_store_list(jnl_t *jnl, int state, const orc_store_cursor_t *from, uint64_t since_ms,
                   uint64_t until_ms, orc_store_list_fn *fn, void *arg)
{
    uint8_t key[MSG_ID_MAX + 10], prefix[1] = { (uint8_t)state };
    size_t skip = state ? 1 : 0, flen = 0;
    s_list_scan_t x = { fn, arg, skip, since_ms };
    if (from) {
        key[0] = (uint8_t)state;
        flen = skip + s_time_key(key + skip, from->created_ms, from->id);
    } else if (until_ms && until_ms < UINT64_MAX) {
        /* Strictly before (until + 1, ""): everything created up to until. */
        key[0] = (uint8_t)state;
        s_put_be64(key + skip, until_ms + 1);
        flen = skip + 8;
    }
    int rc = jnl_scan_from(jnl, state ? JNL_INDEX : JNL_CREATED, state ? prefix : NULL, skip,
                           flen ? key : NULL, flen, true, s_list_cb, &x);
    return rc == 1 ? 0 : rc;
}

/* ---- the status view -------------------------------------------------------- */

typedef struct {
    msgpack_packer *pk;
    const orc_saga_t *saga;
    uint32_t n;
    bool count_only;
} s_hist_t;

static int s_hist_cb(void *arg, const orc_event_t *ev)
{
    s_hist_t *h = arg;
    h->n++;
    if (h->count_only)
        return 0;
    msgpack_packer *pk = h->pk;
    msgpack_pack_map(pk, 6);
    mp_pack_kv_uint(pk, "seq", ev->seq);
    mp_pack_kv_uint(pk, "ts_ms", ev->ts_ms);
    const char *step = ev->step >= 0 && (uint32_t)ev->step < h->saga->def->nsteps
                           ? h->saga->def->steps[ev->step].id
                           : NULL;
    mp_pack_kv_opt(pk, "step", step);
    mp_pack_kv_str(pk, "what", ev->what);
    mp_pack_kv_uint(pk, "attempt", ev->attempt);
    mp_pack_kv_opt(pk, "reason", ev->reason);
    return 0;
}

void orc_store_pack_status(jnl_t *jnl, msgpack_packer *pk, const orc_saga_t *saga)
{
    const msg_saga_t *def = saga->def;
    msgpack_pack_map(pk, 8);
    mp_pack_kv_str(pk, "id", def->id);
    mp_pack_kv_str(pk, "name", def->name);
    mp_pack_kv_str(pk, "state", orc_saga_state_name(saga->state));
    mp_pack_kv_opt(pk, "reason", saga->reason);
    mp_pack_kv_uint(pk, "created_ms", saga->created_ms);
    mp_pack_kv_uint(pk, "updated_ms", saga->updated_ms);
    mp_pack_cstr(pk, "steps");
    msgpack_pack_array(pk, def->nsteps);
    for (uint32_t i = 0; i < def->nsteps; i++) {
        const msg_step_t *d = &def->steps[i];
        const orc_step_t *st = &saga->steps[i];
        msgpack_pack_map(pk, 15);
        mp_pack_kv_str(pk, "id", d->id);
        mp_pack_kv_str(pk, "system", d->system);
        mp_pack_kv_str(pk, "action", d->action);
        mp_pack_kv_opt(pk, "compensation", d->compensation);
        mp_pack_cstr(pk, "deps");
        msgpack_pack_array(pk, (size_t)__builtin_popcountll(d->deps));
        for (uint32_t j = 0; j < def->nsteps; j++)
            if (d->deps & (1ull << j))
                mp_pack_cstr(pk, def->steps[j].id);
        mp_pack_kv_str(pk, "state", orc_step_state_name(st->state));
        mp_pack_kv_uint(pk, "attempts", st->attempts);
        mp_pack_kv_uint(pk, "compensation_attempts", st->comp_attempts);
        mp_pack_kv_uint(pk, "started_ms", st->started_ms);
        mp_pack_kv_uint(pk, "finished_ms", st->finished_ms);
        mp_pack_kv_uint(pk, "compensation_started_ms", st->comp_started_ms);
        mp_pack_kv_uint(pk, "compensation_finished_ms", st->comp_finished_ms);
        mp_pack_kv_opt(pk, "code", st->code);
        mp_pack_kv_opt(pk, "error", st->error);
        mp_pack_cstr(pk, "output");
        if (st->output_len)
            mp_pack_raw(pk, st->output, st->output_len);
        else
            msgpack_pack_map(pk, 0);
    }
    /* Count first: msgpack needs the array length up front. */
    s_hist_t h = { pk, saga, 0, true };
    orc_store_each_event(jnl, def->id, s_hist_cb, &h);
    mp_pack_cstr(pk, "history");
    msgpack_pack_array(pk, h.n);
    h.count_only = false;
    h.n = 0;
    orc_store_each_event(jnl, def->id, s_hist_cb, &h);
}
