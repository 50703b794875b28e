/*  msg_saga: decode, validate and encode saga definitions. See msg_saga.h. */
#include "msg_saga.h"
#include "msg_params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Dependency names as read, before they are resolved to indices. */
typedef struct {
    const char *name[MSG_MAX_STEPS];
    uint32_t len[MSG_MAX_STEPS];
    uint32_t n;
} s_deps_t;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        mp_fail(r, "invalid saga");                                                                \
        return -1;                                                                                 \
    } while (0)

static int s_read_u32(mp_reader_t *r, const char *where, const char *field, uint32_t min,
                      uint32_t max, uint32_t *out, char *err, size_t errlen)
{
    uint64_t v;
    if (mp_read_uint(r, &v))
        FAIL("%s: %s must be an unsigned integer", where, field);
    if (v < min || v > max)
        FAIL("%s: %s must be between %u and %u", where, field, min, max);
    *out = (uint32_t)v;
    return 0;
}

static int s_read_retry(mp_reader_t *r, const char *where, const char *field, msg_retry_t *p,
                        char *err, size_t errlen)
{
    uint32_t n;
    char w[160];
    snprintf(w, sizeof w, "%s: %s", where, field);
    if (mp_read_map(r, &n))
        FAIL("%s must be a map", w);
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (mp_read_str(r, &k, &kl))
            FAIL("%s: keys must be strings", w);
        if (mp_str_eq(k, kl, "attempts")) {
            if (s_read_u32(r, w, "attempts", 1, MSG_MAX_ATTEMPTS, &p->attempts, err, errlen))
                return -1;
        } else if (mp_str_eq(k, kl, "backoff_ms")) {
            if (s_read_u32(r, w, "backoff_ms", 0, MSG_MAX_TIMEOUT_MS, &p->backoff_ms, err, errlen))
                return -1;
        } else if (mp_str_eq(k, kl, "backoff_max_ms")) {
            if (s_read_u32(r, w, "backoff_max_ms", 0, MSG_MAX_TIMEOUT_MS, &p->backoff_max_ms, err,
                           errlen))
                return -1;
        } else
            FAIL("%s: unknown field '%.*s'", w, (int)(kl > 40 ? 40 : kl), k);
    }
    if (p->backoff_max_ms < p->backoff_ms)
        p->backoff_max_ms = p->backoff_ms;
    return 0;
}

static int s_read_name(mp_reader_t *r, const char *where, const char *field, char *dst, char *err,
                       size_t errlen)
{
    const char *s;
    uint32_t n;
    if (mp_read_str(r, &s, &n))
        FAIL("%s: %s must be a string", where, field);
    if (!msg_name_valid(s, n, MSG_NAME_MAX))
        FAIL("%s: %s must be 1-%d characters of [a-z0-9_]", where, field, MSG_NAME_MAX);
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

/* "steps[IDX]", or "steps[IDX] 'ID'", then suffix: how errors name a
   step. Built by hand: it is built for every step of every saga and used
   only when one is refused (snprintf here was 3 % of zsagad's work). */
static void s_where(char *buf, size_t cap, uint32_t idx, const char *id, const char *suffix)
{
    char num[12];
    int nd = 0;
    size_t at = 0;
    do
        num[nd++] = (char)('0' + idx % 10);
    while ((idx /= 10));
#define PUT(s, l)                                                                                  \
    do {                                                                                           \
        size_t l_ = (l);                                                                           \
        if (at + l_ >= cap)                                                                        \
            l_ = cap - 1 - at;                                                                     \
        memcpy(buf + at, (s), l_);                                                                 \
        at += l_;                                                                                  \
    } while (0)
    PUT("steps[", 6);
    while (nd) {
        char c = num[--nd];
        PUT(&c, 1);
    }
    PUT("]", 1);
    if (id) {
        PUT(" '", 2);
        PUT(id, strlen(id));
        PUT("'", 1);
    }
    if (suffix)
        PUT(suffix, strlen(suffix));
#undef PUT
    buf[at] = 0;
}

static int s_read_step(mp_reader_t *r, msg_saga_t *saga, uint32_t idx, s_deps_t *deps,
                       const uint8_t **pstart, size_t *plen, char *err, size_t errlen)
{
    msg_step_t *st = &saga->steps[idx];
    char where[96];
    uint32_t n;
    s_where(where, sizeof where, idx, NULL, NULL);
    st->timeout_ms = MSG_DEFAULT_TIMEOUT_MS;
    st->retry =
        (msg_retry_t){ MSG_DEFAULT_ATTEMPTS, MSG_DEFAULT_BACKOFF_MS, MSG_DEFAULT_BACKOFF_MAX_MS };
    st->comp_retry = (msg_retry_t){ MSG_DEFAULT_COMP_ATTEMPTS, MSG_DEFAULT_BACKOFF_MS,
                                    MSG_DEFAULT_COMP_BACKOFF_MAX };
    *pstart = NULL;
    *plen = 0;
    if (mp_read_map(r, &n))
        FAIL("%s must be a map", where);
    bool have_system = false, have_action = false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (mp_read_str(r, &k, &kl))
            FAIL("%s: keys must be strings", where);
        if (mp_str_eq(k, kl, "id")) {
            const char *s;
            uint32_t sl;
            if (mp_read_str(r, &s, &sl) || !msg_id_valid(s, sl))
                FAIL("%s: id must be 1-%d characters of [A-Za-z0-9._:-]", where, MSG_ID_MAX);
            memcpy(st->id, s, sl);
            st->id[sl] = 0;
            s_where(where, sizeof where, idx, st->id, NULL);
        } else if (mp_str_eq(k, kl, "system")) {
            if (s_read_name(r, where, "system", st->system, err, errlen))
                return -1;
            have_system = true;
        } else if (mp_str_eq(k, kl, "action")) {
            if (s_read_name(r, where, "action", st->action, err, errlen))
                return -1;
            have_action = true;
        } else if (mp_str_eq(k, kl, "compensation")) {
            if (mp_peek(r) == MP_NIL)
                mp_read_nil(r);
            else if (s_read_name(r, where, "compensation", st->compensation, err, errlen))
                return -1;
        } else if (mp_str_eq(k, kl, "deps")) {
            uint32_t dn;
            if (mp_read_array(r, &dn))
                FAIL("%s: deps must be an array of step ids", where);
            if (dn > MSG_MAX_STEPS)
                FAIL("%s: more than %d deps", where, MSG_MAX_STEPS);
            deps->n = dn;
            for (uint32_t d = 0; d < dn; d++)
                if (mp_read_str(r, &deps->name[d], &deps->len[d]) ||
                    !msg_id_valid(deps->name[d], deps->len[d]))
                    FAIL("%s: deps[%u] must be a step id", where, d);
        } else if (mp_str_eq(k, kl, "params")) {
            char what[128];
            s_where(what, sizeof what, idx, st->id[0] ? st->id : NULL, ": params");
            if (msg_params_read(r, what, pstart, plen, err, errlen))
                return -1;
        } else if (mp_str_eq(k, kl, "timeout_ms")) {
            if (s_read_u32(r, where, "timeout_ms", 1, MSG_MAX_TIMEOUT_MS, &st->timeout_ms, err,
                           errlen))
                return -1;
        } else if (mp_str_eq(k, kl, "retry")) {
            if (s_read_retry(r, where, "retry", &st->retry, err, errlen))
                return -1;
        } else if (mp_str_eq(k, kl, "compensation_retry")) {
            if (s_read_retry(r, where, "compensation_retry", &st->comp_retry, err, errlen))
                return -1;
        } else
            FAIL("%s: unknown field '%.*s'", where, (int)(kl > 40 ? 40 : kl), k);
    }
    if (!st->id[0])
        FAIL("%s: id is required", where);
    if (!have_system)
        FAIL("%s: system is required", where);
    if (!have_action)
        FAIL("%s: action is required", where);
    return 0;
}

/* Resolve names to bits, then refuse cycles with Kahn's algorithm. */
static int s_check_graph(mp_reader_t *r, msg_saga_t *saga, s_deps_t *deps, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < saga->nsteps; i++)
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(saga->steps[i].id, saga->steps[j].id) == 0)
                FAIL("duplicate step id '%s'", saga->steps[i].id);
    for (uint32_t i = 0; i < saga->nsteps; i++) {
        msg_step_t *st = &saga->steps[i];
        for (uint32_t d = 0; d < deps[i].n; d++) {
            int j = -1;
            for (uint32_t k = 0; k < saga->nsteps; k++)
                if (mp_str_eq(deps[i].name[d], deps[i].len[d], saga->steps[k].id))
                    j = (int)k;
            int nl = (int)(deps[i].len[d] > 64 ? 64 : deps[i].len[d]);
            if (j < 0)
                FAIL("step '%s' depends on unknown step '%.*s'", st->id, nl, deps[i].name[d]);
            if ((uint32_t)j == i)
                FAIL("step '%s' depends on itself", st->id);
            if (st->deps & (1ull << j))
                FAIL("step '%s' lists dependency '%.*s' twice", st->id, nl, deps[i].name[d]);
            st->deps |= 1ull << j;
        }
    }
    uint64_t done = 0;
    uint64_t all = saga->nsteps == 64 ? ~0ull : (1ull << saga->nsteps) - 1;
    for (bool moved = true; moved && done != all;) {
        moved = false;
        for (uint32_t i = 0; i < saga->nsteps; i++)
            if (!(done & (1ull << i)) && (saga->steps[i].deps & ~done) == 0) {
                done |= 1ull << i;
                moved = true;
            }
    }
    if (done != all) {
        /* A step left over is in a cycle or downstream of one; name one
           whose unfinished dependency also remains. */
        for (uint32_t i = 0; i < saga->nsteps; i++)
            if (!(done & (1ull << i)))
                FAIL("dependency cycle through step '%s'", saga->steps[i].id);
    }
    return 0;
}

static uint64_t s_ancestors(const msg_saga_t *saga, uint32_t i)
{
    uint64_t anc = saga->steps[i].deps, prev = 0;
    while (anc != prev) {
        prev = anc;
        for (uint32_t j = 0; j < saga->nsteps; j++)
            if (anc & (1ull << j))
                anc |= saga->steps[j].deps;
    }
    return anc;
}

static int s_check_refs(mp_reader_t *r, msg_saga_t *saga, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < saga->nsteps; i++) {
        size_t len;
        const uint8_t *p = msg_saga_step_params(saga, i, &len);
        msg_kv_t kv[MSG_MAX_PARAMS];
        int n = msg_params_parse(p, len, kv, err, errlen);
        if (n < 0)
            return mp_fail(r, "bad params");
        uint64_t anc = s_ancestors(saga, i);
        for (int k = 0; k < n; k++) {
            char step[MSG_ID_MAX + 1], key[MSG_NAME_MAX + 1];
            if (kv[k].type != MP_STR || !msg_ref_parse(kv[k].s, kv[k].slen, step, key))
                continue;
            int j = msg_saga_find(saga, step);
            if (j < 0 || !(anc & (1ull << j)))
                FAIL("step '%s': params.%s refers to '%s', which is not a step it depends on",
                     saga->steps[i].id, kv[k].key, step);
        }
    }
    return 0;
}

msg_saga_t *msg_saga_read(mp_reader_t *r, char *err, size_t errlen)
{
    uint32_t n;
    err[0] = 0;
    msg_saga_t *saga = calloc(1, sizeof *saga);
    s_deps_t *deps = NULL; /* one per step, once the count is known */
    const uint8_t *pstart[MSG_MAX_STEPS];
    size_t plen[MSG_MAX_STEPS];
    bool have_steps = false;
    if (!saga) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (mp_read_map(r, &n)) {
        snprintf(err, errlen, "saga must be a map");
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (mp_read_str(r, &k, &kl)) {
            snprintf(err, errlen, "saga: keys must be strings");
            goto fail;
        }
        if (mp_str_eq(k, kl, "id")) {
            const char *s;
            uint32_t sl;
            if (mp_read_str(r, &s, &sl) || !msg_id_valid(s, sl)) {
                snprintf(err, errlen, "saga id must be 1-%d characters of [A-Za-z0-9._:-]",
                         MSG_ID_MAX);
                goto fail;
            }
            memcpy(saga->id, s, sl);
            saga->id[sl] = 0;
        } else if (mp_str_eq(k, kl, "name")) {
            if (mp_read_cstr(r, saga->name, sizeof saga->name)) {
                snprintf(err, errlen, "saga name must be a string of at most %d bytes",
                         MSG_SAGA_NAME_MAX);
                goto fail;
            }
        } else if (mp_str_eq(k, kl, "steps")) {
            uint32_t ns;
            if (mp_read_array(r, &ns)) {
                snprintf(err, errlen, "saga steps must be an array");
                goto fail;
            }
            if (ns == 0 || ns > MSG_MAX_STEPS) {
                snprintf(err, errlen, "a saga has 1 to %d steps, not %u", MSG_MAX_STEPS, ns);
                goto fail;
            }
            if (have_steps) {
                snprintf(err, errlen, "saga: steps given twice");
                goto fail;
            }
            have_steps = true;
            saga->nsteps = ns;
            /* Zeroed for the steps there are, not for the most there could
               be: 64 of these is 49 KB to clear for every saga decoded. */
            saga->steps = calloc(ns, sizeof *saga->steps);
            deps = calloc(ns, sizeof *deps);
            if (!saga->steps || !deps) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            for (uint32_t s = 0; s < ns; s++)
                if (s_read_step(r, saga, s, &deps[s], &pstart[s], &plen[s], err, errlen))
                    goto fail;
        } else {
            snprintf(err, errlen, "saga: unknown field '%.*s'", (int)(kl > 40 ? 40 : kl), k);
            goto fail;
        }
    }
    if (r->err) {
        if (!err[0])
            snprintf(err, errlen, "saga: %s", r->err);
        goto fail;
    }
    if (!saga->id[0]) {
        snprintf(err, errlen, "saga id is required");
        goto fail;
    }
    if (!have_steps) {
        snprintf(err, errlen, "saga steps are required");
        goto fail;
    }
    /* Copy the params maps out of the message (the saga outlives it), in
       canonical form: key order and integer encodings never make the same
       saga look like another. */
    msgpack_sbuffer canon;
    msgpack_packer cpk;
    msgpack_sbuffer_init(&canon);
    msgpack_packer_init(&cpk, &canon, msgpack_sbuffer_write);
    for (uint32_t s = 0; s < saga->nsteps; s++) {
        size_t before = canon.size;
        saga->steps[s].params_off = (uint32_t)before;
        if (plen[s] && msg_params_canon(pstart[s], plen[s], &cpk, err, errlen)) {
            msgpack_sbuffer_destroy(&canon);
            goto fail;
        }
        saga->steps[s].params_len = (uint32_t)(canon.size - before);
    }
    saga->params_len = canon.size;
    saga->params = (uint8_t *)msgpack_sbuffer_release(&canon);
    msgpack_sbuffer_destroy(&canon);
    if (!saga->params && !(saga->params = malloc(1))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (s_check_graph(r, saga, deps, err, errlen) || s_check_refs(r, saga, err, errlen))
        goto fail;
    free(deps);
    return saga;
fail:
    if (!err[0])
        snprintf(err, errlen, "saga: %s", r->err ? r->err : "invalid");
    mp_fail(r, "invalid saga");
    free(deps);
    msg_saga_destroy(&saga);
    return NULL;
}

msg_saga_t *msg_saga_decode(const void *buf, size_t len, char *err, size_t errlen)
{
    mp_reader_t r;
    mp_reader_init(&r, buf, len);
    msg_saga_t *saga = msg_saga_read(&r, err, errlen);
    if (saga && !mp_at_end(&r)) {
        snprintf(err, errlen, "trailing bytes after saga");
        msg_saga_destroy(&saga);
    }
    return saga;
}

void msg_saga_destroy(msg_saga_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->steps);
    free((*self_p)->params);
    free(*self_p);
    *self_p = NULL;
}

static bool s_retry_eq(const msg_retry_t *a, uint32_t attempts, uint32_t max_ms)
{
    return a->attempts == attempts && a->backoff_ms == MSG_DEFAULT_BACKOFF_MS &&
           a->backoff_max_ms == max_ms;
}

static void s_pack_retry(msgpack_packer *pk, const char *key, const msg_retry_t *p)
{
    mp_pack_cstr(pk, key);
    msgpack_pack_map(pk, 3);
    mp_pack_kv_uint(pk, "attempts", p->attempts);
    mp_pack_kv_uint(pk, "backoff_ms", p->backoff_ms);
    mp_pack_kv_uint(pk, "backoff_max_ms", p->backoff_max_ms);
}

/* The canonical form leaves out every field that holds its default (no
   name, no compensation, no deps, empty params, the default timeout and
   retry policies): decoding puts them back, the same definition always
   packs to the same bytes whether the client spelled a default out or
   not, and the journal keeps a third of the bytes a full form took. */
void msg_saga_pack(const msg_saga_t *self, msgpack_packer *pk)
{
    msgpack_pack_map(pk, self->name[0] ? 3 : 2);
    mp_pack_kv_str(pk, "id", self->id);
    if (self->name[0])
        mp_pack_kv_str(pk, "name", self->name);
    mp_pack_cstr(pk, "steps");
    msgpack_pack_array(pk, self->nsteps);
    for (uint32_t i = 0; i < self->nsteps; i++) {
        const msg_step_t *st = &self->steps[i];
        const uint8_t *params = self->params + st->params_off;
        bool comp = st->compensation[0], deps = st->deps != 0,
             has_params = st->params_len > 1 || (st->params_len == 1 && params[0] != 0x80),
             timeout = st->timeout_ms != MSG_DEFAULT_TIMEOUT_MS,
             retry = !s_retry_eq(&st->retry, MSG_DEFAULT_ATTEMPTS, MSG_DEFAULT_BACKOFF_MAX_MS),
             comp_retry = !s_retry_eq(&st->comp_retry, MSG_DEFAULT_COMP_ATTEMPTS,
                                      MSG_DEFAULT_COMP_BACKOFF_MAX);
        msgpack_pack_map(pk, 3u + comp + deps + has_params + timeout + retry + comp_retry);
        mp_pack_kv_str(pk, "id", st->id);
        mp_pack_kv_str(pk, "system", st->system);
        mp_pack_kv_str(pk, "action", st->action);
        if (comp)
            mp_pack_kv_str(pk, "compensation", st->compensation);
        if (deps) {
            mp_pack_cstr(pk, "deps");
            msgpack_pack_array(pk, (size_t)__builtin_popcountll(st->deps));
            for (uint32_t j = 0; j < self->nsteps; j++)
                if (st->deps & (1ull << j))
                    mp_pack_cstr(pk, self->steps[j].id);
        }
        if (has_params) {
            mp_pack_cstr(pk, "params");
            mp_pack_raw(pk, params, st->params_len);
        }
        if (timeout)
            mp_pack_kv_uint(pk, "timeout_ms", st->timeout_ms);
        if (retry)
            s_pack_retry(pk, "retry", &st->retry);
        if (comp_retry)
            s_pack_retry(pk, "compensation_retry", &st->comp_retry);
    }
}

const uint8_t *msg_saga_step_params(const msg_saga_t *self, uint32_t i, size_t *len)
{
    *len = self->steps[i].params_len;
    return self->params + self->steps[i].params_off;
}

int msg_saga_find(const msg_saga_t *self, const char *step_id)
{
    for (uint32_t i = 0; i < self->nsteps; i++)
        if (strcmp(self->steps[i].id, step_id) == 0)
            return (int)i;
    return -1;
}

uint64_t msg_saga_dependents(const msg_saga_t *self, uint32_t i)
{
    uint64_t out = 0;
    for (uint32_t j = 0; j < self->nsteps; j++)
        if (self->steps[j].deps & (1ull << i))
            out |= 1ull << j;
    return out;
}

void msg_saga_order(const msg_saga_t *self, uint32_t *order)
{
    uint64_t done = 0;
    uint32_t n = 0;
    while (n < self->nsteps)
        for (uint32_t i = 0; i < self->nsteps; i++)
            if (!(done & (1ull << i)) && (self->steps[i].deps & ~done) == 0) {
                done |= 1ull << i;
                order[n++] = i;
            }
}

uint32_t msg_retry_delay(const msg_retry_t *policy, uint32_t attempt)
{
    uint64_t d = policy->backoff_ms;
    for (uint32_t a = 2; a < attempt && d < policy->backoff_max_ms; a++)
        d *= 2;
    return (uint32_t)(d > policy->backoff_max_ms ? policy->backoff_max_ms : d);
}
