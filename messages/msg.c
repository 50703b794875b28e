/*  msg: table-driven codec for every protocol message. See msg.h. */
#include "msg.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

enum {
    F_V,
    F_TYPE,
    F_REQ,
    F_ID,
    F_SAGA,
    F_SAGAS,
    F_STEP,
    F_SYSTEM,
    F_INSTANCE,
    F_OP,
    F_STATE,
    F_CODE,
    F_REASON,
    F_MESSAGE,
    F_PATH,
    F_ATTEMPT,
    F_CAPACITY,
    F_TIMEOUT,
    F_LIMIT,
    F_INFLIGHT,
    F_BOOT,
    F_SEQ,
    F_TS,
    F_PHASE,
    F_STATUS,
    F_PARAMS,
    F_OUTPUT,
    F_OPERATIONS,
    F_VERSION,
    F_DUPLICATE,
    F_METRICS,
    F_STATS,
    F_LEASE,
    F_CURSOR,
    F_SINCE,
    F_UNTIL,
    F_SCHEMAS,
    F_SYSTEMS,
    F_EVENTS,
    F_NEXT,
    F_FIRST,
    F_HEAD,
    F_ALERTS,
    F_TOKEN,
    F_EXPIRES,
    F_URL,
    F_COUNT
};

#define B(f) (1ull << (f))

typedef enum { K_UINT, K_STR, K_ID, K_NAME, K_TEXT, K_FLAT, K_RAW, K_OPS, K_BOOL, K_ENUM } s_kind_t;

typedef struct {
    const char *name;
    s_kind_t kind;
} s_field_t;

static const s_field_t s_fields[F_COUNT] = {
    [F_V] = { "v", K_UINT },
    [F_TYPE] = { "type", K_ENUM },
    [F_REQ] = { "req", K_UINT },
    [F_ID] = { "id", K_ID },
    [F_SAGA] = { "saga", K_RAW },
    [F_SAGAS] = { "sagas", K_RAW },
    [F_STEP] = { "step", K_ID },
    [F_SYSTEM] = { "system", K_NAME },
    [F_INSTANCE] = { "instance", K_ID },
    [F_OP] = { "op", K_NAME },
    [F_STATE] = { "state", K_NAME },
    [F_CODE] = { "code", K_STR },
    [F_REASON] = { "reason", K_TEXT },
    [F_MESSAGE] = { "message", K_TEXT },
    [F_PATH] = { "path", K_TEXT },
    [F_ATTEMPT] = { "attempt", K_UINT },
    [F_CAPACITY] = { "capacity", K_UINT },
    [F_TIMEOUT] = { "timeout_ms", K_UINT },
    [F_LIMIT] = { "limit", K_UINT },
    [F_INFLIGHT] = { "inflight", K_UINT },
    [F_BOOT] = { "boot", K_UINT },
    [F_SEQ] = { "seq", K_UINT },
    [F_TS] = { "ts_ms", K_UINT },
    [F_PHASE] = { "phase", K_ENUM },
    [F_STATUS] = { "status", K_ENUM },
    [F_PARAMS] = { "params", K_FLAT },
    [F_OUTPUT] = { "output", K_FLAT },
    [F_OPERATIONS] = { "operations", K_OPS },
    [F_VERSION] = { "version", K_NAME },
    [F_DUPLICATE] = { "duplicate", K_BOOL },
    [F_METRICS] = { "metrics", K_RAW },
    [F_STATS] = { "stats", K_RAW },
    [F_LEASE] = { "lease", K_UINT },
    [F_CURSOR] = { "cursor", K_STR },
    [F_SINCE] = { "since_ms", K_UINT },
    [F_UNTIL] = { "until_ms", K_UINT },
    [F_SCHEMAS] = { "schemas", K_RAW },
    [F_SYSTEMS] = { "systems", K_RAW },
    [F_EVENTS] = { "events", K_RAW },
    [F_NEXT] = { "next", K_RAW },
    [F_FIRST] = { "first", K_RAW },
    [F_HEAD] = { "head", K_RAW },
    [F_ALERTS] = { "alerts", K_RAW },
    [F_TOKEN] = { "token", K_RAW },
    [F_EXPIRES] = { "expires_ms", K_RAW },
    [F_URL] = { "url", K_RAW },
};

typedef struct {
    const char *name;
    uint64_t required, optional;
} s_type_t;

#define HDR (B(F_V) | B(F_TYPE))
static const s_type_t s_types[MSG_NTYPES] = {
    [MSG_SUBMIT] = { "submit", HDR | B(F_REQ) | B(F_SAGA), 0 },
    [MSG_STATUS] = { "status", HDR | B(F_REQ) | B(F_ID), 0 },
    [MSG_LIST] = { "list", HDR | B(F_REQ),
                   B(F_STATE) | B(F_LIMIT) | B(F_CURSOR) | B(F_SINCE) | B(F_UNTIL) },
    [MSG_CANCEL] = { "cancel", HDR | B(F_REQ) | B(F_ID), B(F_REASON) },
    [MSG_RETRY] = { "retry", HDR | B(F_REQ) | B(F_ID), 0 },
    [MSG_RESOLVE] = { "resolve", HDR | B(F_REQ) | B(F_ID), B(F_REASON) },
    [MSG_BACKUP] = { "backup", HDR | B(F_REQ) | B(F_PATH), 0 },
    [MSG_STATS] = { "stats", HDR | B(F_REQ), 0 },
    [MSG_SYSTEMS] = { "systems", HDR | B(F_REQ), 0 },
    [MSG_EVENTS] = { "events", HDR | B(F_REQ) | B(F_SEQ), B(F_LIMIT) },
    [MSG_ALERTS] = { "alerts", HDR | B(F_REQ), 0 },
    [MSG_LOGIN] = { "login", HDR | B(F_REQ), 0 },
    [MSG_ACCEPTED] = { "accepted", HDR | B(F_REQ) | B(F_ID) | B(F_STATE) | B(F_DUPLICATE), 0 },
    [MSG_REJECTED] = { "rejected", HDR | B(F_REQ) | B(F_CODE) | B(F_REASON), B(F_ID) },
    [MSG_OK] = { "ok", HDR | B(F_REQ), B(F_ID) | B(F_STATE) | B(F_PATH) },
    [MSG_ERROR] = { "error", HDR | B(F_REQ) | B(F_CODE) | B(F_REASON), B(F_ID) },
    [MSG_SAGA] = { "saga", HDR | B(F_REQ) | B(F_SAGA), 0 },
    [MSG_SAGAS] = { "sagas", HDR | B(F_REQ) | B(F_SAGAS), 0 },
    [MSG_STATS_REPLY] = { "stats_reply", HDR | B(F_REQ) | B(F_STATS), 0 },
    [MSG_SYSTEMS_REPLY] = { "systems_reply", HDR | B(F_REQ) | B(F_SYSTEMS), 0 },
    [MSG_EVENTS_REPLY] = { "events_reply",
                           HDR | B(F_REQ) | B(F_EVENTS) | B(F_NEXT) | B(F_FIRST) | B(F_HEAD), 0 },
    [MSG_ALERTS_REPLY] = { "alerts_reply", HDR | B(F_REQ) | B(F_ALERTS), 0 },
    [MSG_TOKEN] = { "token", HDR | B(F_REQ) | B(F_TOKEN) | B(F_EXPIRES) | B(F_URL), 0 },
    [MSG_READY] = { "ready", HDR | B(F_SYSTEM) | B(F_INSTANCE) | B(F_CAPACITY) | B(F_OPERATIONS),
                    B(F_VERSION) | B(F_SCHEMAS) },
    [MSG_HEARTBEAT] = { "heartbeat", HDR, B(F_INFLIGHT) | B(F_BOOT) | B(F_METRICS) },
    [MSG_EXECUTE] = { "execute", HDR | B(F_ID) | B(F_STEP) | B(F_OP) | B(F_ATTEMPT) | B(F_PARAMS),
                      B(F_TIMEOUT) | B(F_LEASE) },
    [MSG_COMPENSATE] = { "compensate",
                         HDR | B(F_ID) | B(F_STEP) | B(F_OP) | B(F_ATTEMPT) | B(F_PARAMS),
                         B(F_TIMEOUT) | B(F_LEASE) },
    [MSG_RESULT] = { "result", HDR | B(F_ID) | B(F_STEP) | B(F_PHASE) | B(F_ATTEMPT) | B(F_STATUS),
                     B(F_CODE) | B(F_MESSAGE) | B(F_OUTPUT) | B(F_LEASE) },
    [MSG_EVENT] = { "event", HDR | B(F_SEQ) | B(F_TS) | B(F_ID) | B(F_STATE),
                    B(F_STEP) | B(F_ATTEMPT) | B(F_REASON) | B(F_SYSTEM) | B(F_OP) },
};

static const char *s_phases[] = { "action", "compensation" };
static const char *s_statuses[] = { "ok", "failed", "retry" };

const char *msg_type_name(msg_type_t type)
{
    return type > MSG_NONE && type < MSG_NTYPES ? s_types[type].name : "none";
}

const char *msg_phase_name(msg_phase_t phase)
{
    return s_phases[phase == MSG_PHASE_COMPENSATION];
}

const char *msg_status_name(msg_status_t status)
{
    return status <= MSG_STATUS_RETRY ? s_statuses[status] : "?";
}

void msg_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

void msg_init(msg_t *m, msg_type_t type)
{
    memset(m, 0, offsetof(msg_t, text));
    m->text[0] = 0;
    m->type = type;
}

void msg_clear(msg_t *m)
{
    msg_saga_destroy(&m->saga);
}

static int s_field_index(const char *k, uint32_t kl)
{
    for (int f = 0; f < F_COUNT; f++)
        if (mp_str_eq(k, kl, s_fields[f].name))
            return f;
    return -1;
}

static char *s_text_slot(msg_t *m, int f, size_t *size)
{
    switch (f) {
    case F_ID: *size = sizeof m->id; return m->id;
    case F_STEP: *size = sizeof m->step; return m->step;
    case F_INSTANCE: *size = sizeof m->instance; return m->instance;
    case F_SYSTEM: *size = sizeof m->system; return m->system;
    case F_OP: *size = sizeof m->op; return m->op;
    case F_STATE: *size = sizeof m->state; return m->state;
    case F_CODE: *size = sizeof m->code; return m->code;
    case F_VERSION: *size = sizeof m->version; return m->version;
    case F_CURSOR: *size = sizeof m->cursor; return m->cursor;
    default: *size = sizeof m->text; return m->text;
    }
}

static uint64_t *s_u64_slot(msg_t *m, int f)
{
    switch (f) {
    case F_REQ: return &m->req;
    case F_BOOT: return &m->boot;
    case F_SEQ: return &m->seq;
    case F_TS: return &m->ts_ms;
    case F_LEASE: return &m->lease;
    case F_SINCE: return &m->since_ms;
    case F_UNTIL: return &m->until_ms;
    default: return NULL;
    }
}

static uint32_t *s_u32_slot(msg_t *m, int f)
{
    switch (f) {
    case F_ATTEMPT: return &m->attempt;
    case F_CAPACITY: return &m->capacity;
    case F_TIMEOUT: return &m->timeout_ms;
    case F_LIMIT: return &m->limit;
    case F_INFLIGHT: return &m->inflight;
    default: return NULL;
    }
}

static int s_enum(const char *s, uint32_t n, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (names[i] && mp_str_eq(s, n, names[i]))
            return i;
    return -1;
}

#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

/* Read the value of field f into m. Returns 0 or -1 with err set. */
static int s_read_field(mp_reader_t *r, msg_t *m, int f, char *err, size_t errlen)
{
    const char *fname = s_fields[f].name;
    const char *s;
    uint32_t n;
    uint64_t u;
    switch (s_fields[f].kind) {
    case K_UINT:
        if (mp_read_uint(r, &u))
            BAD("field '%s' must be an unsigned integer", fname);
        if (s_u64_slot(m, f))
            *s_u64_slot(m, f) = u;
        else if (f == F_V) {
            if (u != MSG_VERSION)
                BAD("unsupported protocol version %llu (this peer speaks %d)",
                    (unsigned long long)u, MSG_VERSION);
        } else {
            if (u > UINT32_MAX)
                BAD("field '%s' is out of range", fname);
            *s_u32_slot(m, f) = (uint32_t)u;
        }
        return 0;
    case K_STR:
    case K_ID:
    case K_NAME:
    case K_TEXT: {
        size_t size;
        char *dst = s_text_slot(m, f, &size);
        if (mp_read_str(r, &s, &n))
            BAD("field '%s' must be a string", fname);
        if (n >= size)
            BAD("field '%s' is longer than %zu bytes", fname, size - 1);
        if (s_fields[f].kind == K_ID && !msg_id_valid(s, n))
            BAD("field '%s' must be 1-%d characters of [A-Za-z0-9._:-]", fname, MSG_ID_MAX);
        if (s_fields[f].kind == K_NAME && !msg_name_valid(s, n, MSG_NAME_MAX))
            BAD("field '%s' must be 1-%d characters of [a-z0-9_]", fname, MSG_NAME_MAX);
        if (memchr(s, 0, n))
            BAD("field '%s' holds a NUL byte", fname);
        memcpy(dst, s, n);
        dst[n] = 0;
        return 0;
    }
    case K_BOOL:
        if (mp_read_bool(r, &m->duplicate))
            BAD("field '%s' must be a boolean", fname);
        return 0;
    case K_FLAT: {
        const uint8_t *p;
        size_t len;
        if (msg_params_read(r, fname, &p, &len, err, errlen))
            return -1;
        if (f == F_PARAMS)
            m->params = p, m->params_len = len;
        else
            m->output = p, m->output_len = len;
        return 0;
    }
    case K_RAW: {
        const uint8_t *p = r->p;
        if (mp_skip(r, 8))
            BAD("field '%s': %s", fname, r->err);
        m->raw = p;
        m->raw_len = (size_t)(r->p - p);
        return 0;
    }
    case K_OPS: {
        uint32_t count;
        if (mp_read_array(r, &count))
            BAD("field 'operations' must be an array of names");
        if (count > MSG_MAX_OPS)
            BAD("more than %d operations", MSG_MAX_OPS);
        for (uint32_t i = 0; i < count; i++) {
            if (mp_read_str(r, &s, &n) || !msg_name_valid(s, n, MSG_NAME_MAX))
                BAD("operations[%u] must be 1-%d characters of [a-z0-9_]", i, MSG_NAME_MAX);
            memcpy(m->ops[m->nops], s, n);
            m->ops[m->nops++][n] = 0;
        }
        return 0;
    }
    case K_ENUM:
        if (mp_read_str(r, &s, &n))
            BAD("field '%s' must be a string", fname);
        if (f == F_TYPE) {
            int t = -1;
            for (int i = 1; i < MSG_NTYPES; i++)
                if (mp_str_eq(s, n, s_types[i].name))
                    t = i;
            if (t < 0)
                BAD("unknown message type '%.*s'", (int)(n > 32 ? 32 : n), s);
            m->type = (msg_type_t)t;
        } else if (f == F_PHASE) {
            int p = s_enum(s, n, s_phases, 2);
            if (p < 0)
                BAD("phase must be \"action\" or \"compensation\"");
            m->phase = (msg_phase_t)p;
        } else {
            int p = s_enum(s, n, s_statuses, 3);
            if (p < 0)
                BAD("status must be \"ok\", \"failed\" or \"retry\"");
            m->status = (msg_status_t)p;
        }
        return 0;
    }
    return -1;
}

/* A refused message's reply still carries its req, wherever "req" stood
   in the map and whatever else was wrong: a client matches replies on it.
   Best effort: stops at the first thing it cannot read. */
static void s_find_req(const void *buf, size_t len, msg_t *m)
{
    mp_reader_t r;
    uint32_t n;
    mp_reader_init(&r, buf, len);
    if (mp_read_map(&r, &n))
        return;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (mp_read_str(&r, &k, &kl))
            return;
        if (mp_str_eq(k, kl, "req") && mp_peek(&r) == MP_INT) {
            uint64_t v;
            if (mp_read_uint(&r, &v) == 0)
                m->req = v;
            return;
        }
        if (mp_skip(&r, 8))
            return;
    }
}

const char *msg_decode(const void *buf, size_t len, msg_t *m, char *err, size_t errlen)
{
    mp_reader_t r;
    uint32_t n;
    uint64_t seen = 0;
    const char *code = "malformed";
    msg_init(m, MSG_NONE);
    err[0] = 0;
    if (len > MSG_MAX_BYTES) {
        snprintf(err, errlen, "message of %zu bytes exceeds the limit of %d", len, MSG_MAX_BYTES);
        return "too_large";
    }
    mp_reader_init(&r, buf, len);
    if (mp_read_map(&r, &n)) {
        snprintf(err, errlen, "message must be a msgpack map (%s)", r.err);
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (mp_read_str(&r, &k, &kl)) {
            snprintf(err, errlen, "message keys must be strings");
            goto fail;
        }
        int f = s_field_index(k, kl);
        if (f < 0) {
            snprintf(err, errlen, "unknown field '%.*s'", (int)(kl > 32 ? 32 : kl), k);
            goto fail;
        }
        if (seen & B(f)) {
            snprintf(err, errlen, "field '%s' given twice", s_fields[f].name);
            goto fail;
        }
        seen |= B(f);
        if (s_read_field(&r, m, f, err, errlen)) {
            if (f == F_V)
                code = "unsupported_version";
            else if (f == F_TYPE && r.err == NULL)
                code = "unknown_type";
            goto fail;
        }
    }
    if (!mp_at_end(&r)) {
        snprintf(err, errlen, "trailing bytes after the message");
        goto fail;
    }
    if (!(seen & B(F_V))) {
        snprintf(err, errlen, "missing field 'v' (protocol version)");
        goto fail;
    }
    if (!(seen & B(F_TYPE))) {
        snprintf(err, errlen, "missing field 'type'");
        goto fail;
    }
    const s_type_t *t = &s_types[m->type];
    for (int f = 0; f < F_COUNT; f++) {
        if ((t->required & B(f)) && !(seen & B(f))) {
            snprintf(err, errlen, "%s: missing field '%s'", t->name, s_fields[f].name);
            goto fail;
        }
        if ((seen & B(f)) && !((t->required | t->optional) & B(f))) {
            snprintf(err, errlen, "%s: field '%s' is not allowed", t->name, s_fields[f].name);
            goto fail;
        }
    }
    if (m->type == MSG_SUBMIT) {
        m->saga = msg_saga_decode(m->raw, m->raw_len, err, errlen);
        if (!m->saga) {
            code = "invalid_saga";
            goto fail;
        }
    }
    return NULL;
fail:
    if (!err[0])
        snprintf(err, errlen, "%s", r.err ? r.err : "malformed message");
    msg_clear(m);
    s_find_req(buf, len, m);
    return code;
}

void msg_pack_header(msgpack_packer *pk, msg_type_t type, uint32_t nfields)
{
    msgpack_pack_map(pk, nfields);
    mp_pack_kv_uint(pk, "v", MSG_VERSION);
    mp_pack_kv_str(pk, "type", s_types[type].name);
}

/* Does m carry a value for optional field f? */
static bool s_has(const msg_t *m, int f)
{
    size_t size;
    switch (s_fields[f].kind) {
    case K_UINT:
        return s_u64_slot((msg_t *)m, f) ? *s_u64_slot((msg_t *)m, f) != 0
                                         : *s_u32_slot((msg_t *)m, f) != 0;
    case K_STR:
    case K_ID:
    case K_NAME:
    case K_TEXT: return s_text_slot((msg_t *)m, f, &size)[0] != 0;
    case K_BOOL: return m->duplicate;
    case K_FLAT: return f == F_PARAMS ? m->params_len > 0 : m->output_len > 0;
    case K_RAW: return m->raw_len > 0;
    case K_OPS: return m->nops > 0;
    default: return true;
    }
}

void msg_pack(const msg_t *m, msgpack_packer *pk)
{
    const s_type_t *t = &s_types[m->type];
    uint64_t out = t->required;
    for (int f = 0; f < F_COUNT; f++)
        if ((t->optional & B(f)) && s_has(m, f))
            out |= B(f);
    msg_pack_header(pk, m->type, (uint32_t)__builtin_popcountll(out));
    for (int f = F_TYPE + 1; f < F_COUNT; f++) {
        if (!(out & B(f)))
            continue;
        size_t size;
        mp_pack_cstr(pk, s_fields[f].name);
        switch (s_fields[f].kind) {
        case K_UINT:
            msgpack_pack_uint64(pk, s_u64_slot((msg_t *)m, f) ? *s_u64_slot((msg_t *)m, f)
                                                              : *s_u32_slot((msg_t *)m, f));
            break;
        case K_STR:
        case K_ID:
        case K_NAME:
        case K_TEXT: mp_pack_cstr(pk, s_text_slot((msg_t *)m, f, &size)); break;
        case K_BOOL:
            if (m->duplicate)
                msgpack_pack_true(pk);
            else
                msgpack_pack_false(pk);
            break;
        case K_FLAT: {
            const uint8_t *p = f == F_PARAMS ? m->params : m->output;
            size_t len = f == F_PARAMS ? m->params_len : m->output_len;
            if (len)
                mp_pack_raw(pk, p, len);
            else
                msgpack_pack_map(pk, 0);
            break;
        }
        case K_RAW:
            if (f == F_SAGA && m->type == MSG_SUBMIT && m->saga)
                msg_saga_pack(m->saga, pk);
            else if (m->raw_len)
                mp_pack_raw(pk, m->raw, m->raw_len);
            else
                msgpack_pack_nil(pk);
            break;
        case K_OPS:
            msgpack_pack_array(pk, m->nops);
            for (uint32_t i = 0; i < m->nops; i++)
                mp_pack_cstr(pk, m->ops[i]);
            break;
        case K_ENUM:
            mp_pack_cstr(pk, f == F_PHASE ? msg_phase_name(m->phase) : msg_status_name(m->status));
            break;
        }
    }
}
