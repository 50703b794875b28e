/*  orc_metrics: zsagad's labelled figures. See orc_metrics.h. */
#include "orc_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS_MAX  4096
#define DEFS_MAX 1024
#define LBL_MAX  64

/* An index by name: open addressing over slot numbers + 1 (0 is empty).
   Twice the table's limit in slots, so a probe ends quickly. */
typedef struct {
    uint32_t *slot;
    uint32_t nslots;
} s_index_t;

struct orc_metrics_s {
    orc_opm_t *ops;
    size_t nops, capops;
    s_index_t ops_ix;
    orc_defm_t *defs;
    size_t ndefs, capdefs;
    s_index_t defs_ix;
    orc_labelled_t refused[LBL_MAX], lost[LBL_MAX];
    size_t nrefused, nlost;
    zhist_t saga_completed, saga_compensated, commit_us, batch;
};

static uint32_t s_hash(const char *a, const char *b)
{
    uint32_t h = 2166136261u;
    for (; *a; a++)
        h = (h ^ (uint8_t)*a) * 16777619u;
    h = (h ^ 0x1f) * 16777619u;
    for (; b && *b; b++)
        h = (h ^ (uint8_t)*b) * 16777619u;
    return h;
}

orc_metrics_t *orc_metrics_new(void)
{
    orc_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->ops_ix.nslots = 2 * OPS_MAX;
    m->defs_ix.nslots = 2 * DEFS_MAX;
    m->ops_ix.slot = calloc(m->ops_ix.nslots, sizeof(uint32_t));
    m->defs_ix.slot = calloc(m->defs_ix.nslots, sizeof(uint32_t));
    if (!m->ops_ix.slot || !m->defs_ix.slot) {
        orc_metrics_destroy(&m);
        return NULL;
    }
    zhist_init_latency(&m->saga_completed);
    zhist_init_latency(&m->saga_compensated);
    zhist_init_latency(&m->commit_us);
    zhist_init_count(&m->batch);
    return m;
}

void orc_metrics_destroy(orc_metrics_t **self_p)
{
    orc_metrics_t *m = *self_p;
    if (!m)
        return;
    free(m->ops);
    free(m->defs);
    free(m->ops_ix.slot);
    free(m->defs_ix.slot);
    free(m);
    *self_p = NULL;
}

static bool s_grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 16;
    void *a = realloc(*arr, c * size);
    if (!a)
        return false;
    *arr = a;
    *cap = c;
    return true;
}

/* The operation's entry; past the limit (or out of memory) the "other"
   entry, NULL only if even that cannot be had. */
static orc_opm_t *s_op(orc_metrics_t *m, const char *system, const char *op)
{
    uint32_t h = s_hash(system, op) & (m->ops_ix.nslots - 1);
    for (;; h = (h + 1) & (m->ops_ix.nslots - 1)) {
        uint32_t s = m->ops_ix.slot[h];
        if (!s)
            break;
        orc_opm_t *o = &m->ops[s - 1];
        if (strcmp(o->system, system) == 0 && strcmp(o->op, op) == 0)
            return o;
    }
    if (m->nops >= OPS_MAX - 1 && strcmp(system, "other") != 0)
        return s_op(m, "other", "other");
    if (!s_grow((void **)&m->ops, &m->capops, m->nops, sizeof *m->ops))
        return NULL;
    orc_opm_t *o = &m->ops[m->nops];
    memset(o, 0, sizeof *o);
    snprintf(o->system, sizeof o->system, "%s", system);
    snprintf(o->op, sizeof o->op, "%s", op);
    zhist_init_latency(&o->action_lat);
    zhist_init_latency(&o->comp_lat);
    m->ops_ix.slot[h] = (uint32_t)++m->nops;
    return o;
}

static orc_defm_t *s_def(orc_metrics_t *m, const char *name)
{
    uint32_t h = s_hash(name, NULL) & (m->defs_ix.nslots - 1);
    for (;; h = (h + 1) & (m->defs_ix.nslots - 1)) {
        uint32_t s = m->defs_ix.slot[h];
        if (!s)
            break;
        if (strcmp(m->defs[s - 1].name, name) == 0)
            return &m->defs[s - 1];
    }
    if (m->ndefs >= DEFS_MAX - 1 && strcmp(name, "other") != 0)
        return s_def(m, "other");
    if (!s_grow((void **)&m->defs, &m->capdefs, m->ndefs, sizeof *m->defs))
        return NULL;
    orc_defm_t *d = &m->defs[m->ndefs];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    m->defs_ix.slot[h] = (uint32_t)++m->ndefs;
    return d;
}

static void s_count(orc_labelled_t *t, size_t *n, const char *label)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(t[i].label, label) == 0) {
            t[i].n++;
            return;
        }
    /* The last slot is "other": once it is taken, every new label counts
       there (before, it counted under whichever label held the slot). */
    if (*n == LBL_MAX) {
        t[LBL_MAX - 1].n++;
        return;
    }
    if (*n == LBL_MAX - 1)
        label = "other";
    snprintf(t[*n].label, sizeof t[*n].label, "%s", label);
    t[(*n)++].n = 1;
}

void orc_metrics_event(orc_metrics_t *m, const orc_event_t *ev)
{
    const orc_saga_t *saga = ev->saga;
    const char *w = ev->what;
    if (!saga)
        return;
    if (ev->step < 0) {
        orc_defm_t *d = s_def(m, saga->def->name);
        int k = strcmp(w, "saga.running") == 0       ? OM_STARTED
                : strcmp(w, "saga.completed") == 0   ? OM_COMPLETED
                : strcmp(w, "saga.compensated") == 0 ? OM_COMPENSATED
                : strcmp(w, "saga.parked") == 0      ? OM_PARKED_SAGA
                : strcmp(w, "saga.resolved") == 0    ? OM_RESOLVED
                                                     : -1;
        if (d && k >= 0)
            d->n[k]++;
        /* A saga can end in the millisecond it began: 0 is a duration. */
        if (k == OM_COMPLETED || k == OM_COMPENSATED)
            zhist_observe(k == OM_COMPLETED ? &m->saga_completed : &m->saga_compensated,
                          ev->took_us);
        return;
    }
    const msg_step_t *def = &saga->def->steps[ev->step];
    /* "step.compensating", "step.compensated", "step.compensation_*" */
    bool comp = strncmp(w, "step.compensat", 14) == 0;
    if (comp && !def->compensation[0])
        return; /* nothing declared, nothing ran */
    int k = strcmp(w, "step.dispatched") == 0 || strcmp(w, "step.compensating") == 0 ? OM_DISPATCHED
            : strcmp(w, "step.succeeded") == 0 || strcmp(w, "step.compensated") == 0 ? OM_SUCCEEDED
            : strcmp(w, "step.failed") == 0                                          ? OM_FAILED
            : strcmp(w, "step.retrying") == 0 || strcmp(w, "step.compensation_retrying") == 0
                ? OM_RETRIED
            : strcmp(w, "step.timed_out") == 0 || strcmp(w, "step.compensation_timed_out") == 0
                ? OM_TIMED_OUT
            : strcmp(w, "step.compensation_parked") == 0 ? OM_PARKED
                                                         : -1;
    if (k < 0)
        return;
    orc_opm_t *o = s_op(m, def->system, comp ? def->compensation : def->action);
    if (!o)
        return;
    (comp ? o->comp : o->action)[k]++;
    if (ev->took_us && k != OM_DISPATCHED && k != OM_TIMED_OUT)
        zhist_observe(comp ? &o->comp_lat : &o->action_lat, ev->took_us);
}

void orc_metrics_commit(orc_metrics_t *m, uint64_t us, uint64_t items)
{
    zhist_observe(&m->commit_us, us);
    zhist_observe(&m->batch, items);
}

void orc_metrics_worker_lost(orc_metrics_t *m, const char *system)
{
    s_count(m->lost, &m->nlost, system);
}

void orc_metrics_refused(orc_metrics_t *m, const char *code)
{
    s_count(m->refused, &m->nrefused, code);
}

size_t orc_metrics_ops(orc_metrics_t *m, orc_opm_t **ops)
{
    *ops = m->ops;
    return m->nops;
}

size_t orc_metrics_defs(orc_metrics_t *m, orc_defm_t **defs)
{
    *defs = m->defs;
    return m->ndefs;
}

const zhist_t *orc_metrics_saga_duration(orc_metrics_t *m, int completed)
{
    return completed ? &m->saga_completed : &m->saga_compensated;
}

const zhist_t *orc_metrics_commit_hist(orc_metrics_t *m, int batch)
{
    return batch ? &m->batch : &m->commit_us;
}

size_t orc_metrics_refusals(orc_metrics_t *m, orc_labelled_t **out)
{
    *out = m->refused;
    return m->nrefused;
}

size_t orc_metrics_lost(orc_metrics_t *m, orc_labelled_t **out)
{
    *out = m->lost;
    return m->nlost;
}
