/*  orc_registry: systems, workers and ready queues. See orc_registry.h. */
#include "orc_registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct orc_registry_s {
    orc_system_t *systems;
    uint32_t next_serial;
};

orc_registry_t *orc_registry_new(void)
{
    return calloc(1, sizeof(orc_registry_t));
}

void orc_registry_destroy(orc_registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orc_system_t *sys = (*self_p)->systems;
    while (sys) {
        orc_system_t *next = sys->next;
        orc_qitem_t it;
        while (orc_queue_pop(sys, &it))
            orc_saga_unref(it.saga);
        while (sys->workers) {
            orc_worker_t *w = sys->workers;
            sys->workers = w->next;
            free(w);
        }
        free(sys->q);
        for (uint32_t i = 0; i < MSG_MAX_OPS; i++)
            if (sys->schema[i]) {
                free(sys->schema[i]->params_text);
                free(sys->schema[i]->outputs_text);
                free(sys->schema[i]);
            }
        free(sys);
        sys = next;
    }
    free(*self_p);
    *self_p = NULL;
}

orc_system_t *orc_registry_system(orc_registry_t *self, const char *name)
{
    for (orc_system_t *s = self->systems; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

orc_system_t *orc_registry_systems(orc_registry_t *self)
{
    return self->systems;
}

bool orc_system_has_op(const orc_system_t *sys, const char *op)
{
    for (uint32_t i = 0; i < sys->nops; i++)
        if (strcmp(sys->ops[i], op) == 0)
            return true;
    return false;
}

static int s_op_index(const orc_system_t *sys, const char *op)
{
    for (uint32_t i = 0; i < sys->nops; i++)
        if (strcmp(sys->ops[i], op) == 0)
            return (int)i;
    return -1;
}

const orc_opschema_t *orc_system_schema(const orc_system_t *sys, const char *op)
{
    int i = s_op_index(sys, op);
    return i < 0 ? NULL : sys->schema[i];
}

int orc_system_set_schema(orc_system_t *sys, const char *op, const char *params,
                          const char *outputs, char *err, size_t errlen)
{
    int i = s_op_index(sys, op);
    orc_opschema_t *old = i < 0 ? NULL : sys->schema[i], *n;
    if (i < 0) {
        snprintf(err, errlen, "schema for '%s', which is not one of the operations", op);
        return -1;
    }
    if (old && strcmp(old->params_text, params) == 0 && strcmp(old->outputs_text, outputs) == 0)
        return 0;
    if (!(n = calloc(1, sizeof *n)))
        return -1;
    if (msg_schema_parse(params, &n->params, err, errlen) ||
        msg_schema_parse(outputs, &n->outputs, err, errlen) || !(n->params_text = strdup(params)) ||
        !(n->outputs_text = strdup(outputs))) {
        free(n->params_text);
        free(n);
        return -1;
    }
    if (old) {
        free(old->params_text);
        free(old->outputs_text);
        free(old);
    }
    sys->schema[i] = n;
    sys->dirty = true;
    return 1;
}

orc_system_t *orc_registry_define(orc_registry_t *self, const char *name,
                                  char (*ops)[MSG_NAME_MAX + 1], uint32_t nops)
{
    orc_system_t *sys = orc_registry_system(self, name);
    if (!sys) {
        if (!(sys = calloc(1, sizeof *sys)))
            return NULL;
        strcpy(sys->name, name);
        sys->next = self->systems;
        self->systems = sys;
        sys->dirty = true;
    }
    for (uint32_t i = 0; i < nops; i++)
        if (!orc_system_has_op(sys, ops[i]) && sys->nops < MSG_MAX_OPS) {
            strcpy(sys->ops[sys->nops++], ops[i]);
            sys->dirty = true;
        }
    return sys;
}

orc_worker_t *orc_registry_worker(orc_registry_t *self, const char *rid)
{
    for (orc_system_t *s = self->systems; s; s = s->next)
        for (orc_worker_t *w = s->workers; w; w = w->next)
            if (strcmp(w->rid, rid) == 0)
                return w;
    return NULL;
}

orc_worker_t *orc_registry_instance(orc_registry_t *self, const char *instance)
{
    for (orc_system_t *s = self->systems; s; s = s->next)
        for (orc_worker_t *w = s->workers; w; w = w->next)
            if (strcmp(w->instance, instance) == 0)
                return w;
    return NULL;
}

uint32_t orc_registry_system_count(orc_registry_t *self)
{
    uint32_t n = 0;
    for (orc_system_t *s = self->systems; s; s = s->next)
        n++;
    return n;
}

orc_worker_t *orc_registry_ready(orc_registry_t *self, const char *rid, const char *instance,
                                 orc_system_t *sys, uint32_t capacity, uint64_t now_ms)
{
    orc_worker_t *w = orc_registry_worker(self, rid);
    if (w && (strcmp(w->system, sys->name) != 0 || strcmp(w->instance, instance) != 0)) {
        /* Same connection, another system or instance: the old
           registration is void (the engine has moved its steps). */
        orc_registry_remove(self, w);
        w = NULL;
    }
    if (!w) {
        if (!(w = calloc(1, sizeof *w)))
            return NULL;
        w->serial = ++self->next_serial;
        strcpy(w->rid, rid);
        strcpy(w->instance, instance);
        strcpy(w->system, sys->name);
        w->next = sys->workers;
        sys->workers = w;
    }
    w->capacity = capacity ? capacity : 1;
    w->last_seen_ms = now_ms;
    return w;
}

orc_worker_t *orc_registry_pick(orc_system_t *sys)
{
    orc_worker_t *best = NULL;
    for (orc_worker_t *w = sys->workers; w; w = w->next)
        if (w->inflight < w->capacity &&
            (!best || w->capacity - w->inflight > best->capacity - best->inflight))
            best = w;
    return best;
}

void orc_registry_remove(orc_registry_t *self, orc_worker_t *w)
{
    orc_system_t *sys = orc_registry_system(self, w->system);
    for (orc_worker_t **p = sys ? &sys->workers : NULL; p && *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    free(w);
}

orc_worker_t *orc_registry_expired(orc_registry_t *self, uint64_t now_ms, uint32_t timeout_ms)
{
    for (orc_system_t *s = self->systems; s; s = s->next)
        for (orc_worker_t *w = s->workers; w; w = w->next)
            if (w->last_seen_ms + timeout_ms < now_ms)
                return w;
    return NULL;
}

uint32_t orc_registry_worker_count(orc_registry_t *self)
{
    uint32_t n = 0;
    for (orc_system_t *s = self->systems; s; s = s->next)
        for (orc_worker_t *w = s->workers; w; w = w->next)
            n++;
    return n;
}

static int s_grow(orc_system_t *sys)
{
    size_t cap = sys->qcap ? sys->qcap * 2 : 64;
    orc_qitem_t *q = malloc(cap * sizeof *q);
    if (!q)
        return -1;
    for (size_t i = 0; i < sys->qlen; i++)
        q[i] = sys->q[(sys->qhead + i) % sys->qcap];
    free(sys->q);
    sys->q = q;
    sys->qcap = cap;
    sys->qhead = 0;
    return 0;
}

int orc_queue_push(orc_system_t *sys, orc_saga_t *saga, uint32_t step)
{
    if (sys->qlen == sys->qcap && s_grow(sys))
        return -1;
    sys->q[(sys->qhead + sys->qlen++) % sys->qcap] = (orc_qitem_t){ saga, step };
    saga->refs++;
    return 0;
}

int orc_queue_pop(orc_system_t *sys, orc_qitem_t *out)
{
    if (!sys->qlen)
        return 0;
    *out = sys->q[sys->qhead];
    sys->qhead = (sys->qhead + 1) % sys->qcap;
    sys->qlen--;
    return 1;
}

int orc_queue_unpop(orc_system_t *sys, orc_qitem_t item)
{
    if (sys->qlen == sys->qcap && s_grow(sys))
        return -1;
    sys->qhead = (sys->qhead + sys->qcap - 1) % sys->qcap;
    sys->q[sys->qhead] = item;
    sys->qlen++;
    return 1;
}
