/*  msg_schema: operation schemas. See msg_schema.h. */
#include "msg_schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_types[] = { "int", "str", "bool" };

const char *msg_schema_type_name(msg_type_kind_t t)
{
    return t <= MSG_T_BOOL ? s_types[t] : "?";
}

static int s_int(const char *p, const char **end, int64_t *v)
{
    char *e;
    errno = 0;
    long long n = strtoll(p, &e, 10);
    if (errno || e == p)
        return -1;
    *v = n;
    *end = e;
    return 0;
}

/* One entry: key:type[bound][?] */
static int s_entry(const char *tok, msg_schema_key_t *k, char *err, size_t errlen)
{
    const char *colon = strchr(tok, ':');
    memset(k, 0, sizeof *k);
    if (!colon || !msg_name_valid(tok, (size_t)(colon - tok), MSG_NAME_MAX)) {
        snprintf(err, errlen, "schema entry '%s': want key:type", tok);
        return -1;
    }
    memcpy(k->key, tok, (size_t)(colon - tok));
    const char *t = colon + 1;
    int type = -1;
    for (int i = 0; i < 3; i++)
        if (strncmp(t, s_types[i], strlen(s_types[i])) == 0)
            type = i;
    if (type < 0) {
        snprintf(err, errlen, "schema entry '%s': type must be int, str or bool", tok);
        return -1;
    }
    k->type = (msg_type_kind_t)type;
    const char *p = t + strlen(s_types[type]);
    if (k->type == MSG_T_INT && *p && *p != '?') {
        const char *e;
        if (p[0] == '>' && p[1] == '=') {
            k->has_min = s_int(p + 2, &e, &k->min) == 0;
        } else if (p[0] == '>') {
            k->has_min = s_int(p + 1, &e, &k->min) == 0;
            k->min += 1;
        } else if (s_int(p, &e, &k->min) == 0 && e[0] == '.' && e[1] == '.') {
            k->has_min = true;
            k->has_max = s_int(e + 2, &e, &k->max) == 0;
            if (!k->has_max)
                k->has_min = false;
        } else
            e = p;
        if (!k->has_min) {
            snprintf(err, errlen, "schema entry '%s': bound must be >N, >=N or MIN..MAX", tok);
            return -1;
        }
        p = e;
    }
    if (*p == '?') {
        k->optional = true;
        p++;
    }
    if (*p) {
        snprintf(err, errlen, "schema entry '%s': unexpected '%s'", tok, p);
        return -1;
    }
    return 0;
}

int msg_schema_parse(const char *text, msg_schema_t *s, char *err, size_t errlen)
{
    char buf[MSG_SCHEMA_TEXT_MAX + 1], *save = NULL;
    memset(s, 0, sizeof *s);
    if (strlen(text) > MSG_SCHEMA_TEXT_MAX) {
        snprintf(err, errlen, "schema longer than %d bytes", MSG_SCHEMA_TEXT_MAX);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", text);
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (s->n == MSG_MAX_PARAMS) {
            snprintf(err, errlen, "schema with more than %d keys", MSG_MAX_PARAMS);
            return -1;
        }
        if (s_entry(tok, &s->keys[s->n], err, errlen))
            return -1;
        if (msg_schema_find(s, s->keys[s->n].key)) {
            snprintf(err, errlen, "schema names '%s' twice", s->keys[s->n].key);
            return -1;
        }
        s->n++;
    }
    s->known = true;
    return 0;
}

const msg_schema_key_t *msg_schema_find(const msg_schema_t *s, const char *key)
{
    for (uint32_t i = 0; s && i < s->n; i++)
        if (strcmp(s->keys[i].key, key) == 0)
            return &s->keys[i];
    return NULL;
}

/* "account, amount, currency, note?" for messages. */
static void s_list_keys(const msg_schema_t *s, char *out, size_t n)
{
    out[0] = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%s%s", i ? ", " : "", s->keys[i].key,
                 s->keys[i].optional ? "?" : "");
    }
    if (!s->n)
        snprintf(out, n, "nothing");
}

static int s_value(const msg_schema_key_t *k, const msg_kv_t *kv, char *err, size_t errlen)
{
    char step[MSG_ID_MAX + 1], key[MSG_NAME_MAX + 1];
    if (kv->type == MP_STR && msg_ref_parse(kv->s, kv->slen, step, key))
        return 0; /* known only at run time */
    msg_type_kind_t got = kv->type == MP_INT    ? MSG_T_INT
                          : kv->type == MP_STR  ? MSG_T_STR
                          : kv->type == MP_BOOL ? MSG_T_BOOL
                                                : (msg_type_kind_t)-1;
    if (kv->type == MP_NIL && k->optional)
        return 0;
    if ((int)got != (int)k->type) {
        snprintf(err, errlen, "params.%s must be %s, not %s", k->key, msg_schema_type_name(k->type),
                 kv->type == MP_NIL ? "nil" : msg_schema_type_name(got));
        return -1;
    }
    if (got == MSG_T_INT && ((k->has_min && kv->i < k->min) || (k->has_max && kv->i > k->max))) {
        if (k->has_max)
            snprintf(err, errlen, "params.%s is %lld: it must be from %lld to %lld", k->key,
                     (long long)kv->i, (long long)k->min, (long long)k->max);
        else
            snprintf(err, errlen, "params.%s is %lld: it must be at least %lld", k->key,
                     (long long)kv->i, (long long)k->min);
        return -1;
    }
    return 0;
}

int msg_schema_check(const msg_schema_t *act, const char *act_name, const msg_schema_t *comp,
                     const char *comp_name, const msg_kv_t *kv, int n, char *err, size_t errlen)
{
    if (comp && !comp->known)
        comp = NULL;
    if (!act->known)
        return 0; /* nothing declared: the worker checks at run time */
    for (int i = 0; i < n; i++) {
        const msg_schema_key_t *a = msg_schema_find(act, kv[i].key);
        const msg_schema_key_t *c = comp ? msg_schema_find(comp, kv[i].key) : NULL;
        if (!a && !c) {
            char keys[1024];
            s_list_keys(act, keys, sizeof keys);
            snprintf(err, errlen, "unknown key params.%s (%s takes: %s%s%s)", kv[i].key, act_name,
                     keys, comp ? "; and its compensation " : "", comp ? comp_name : "");
            return -1;
        }
        if ((a && s_value(a, &kv[i], err, errlen)) || (c && s_value(c, &kv[i], err, errlen)))
            return -1;
    }
    const msg_schema_t *both[2] = { act, comp };
    const char *names[2] = { act_name, comp_name };
    for (int s = 0; s < 2; s++)
        for (uint32_t j = 0; both[s] && j < both[s]->n; j++)
            if (!both[s]->keys[j].optional && !msg_kv_find(kv, n, both[s]->keys[j].key)) {
                snprintf(err, errlen, "missing params.%s (%s %s needs it)", both[s]->keys[j].key,
                         s ? "its compensation" : "operation", names[s]);
                return -1;
            }
    return 0;
}
