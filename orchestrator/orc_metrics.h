/*  orc_metrics: zsagad's figures by label, for the Prometheus endpoint
    and the alert rules.

    The engine feeds it every event of a batch once that batch is
    committed (orc_metrics_event), so nothing a rolled-back batch did is
    counted; the server feeds it what only it sees (refusals, lost
    workers). Labels come from client and worker input, so their number is
    bounded: past 1,024 definition names or 4,096 system/operation pairs,
    new ones are counted under "other" (a client cannot blow up the
    scrape or zsagad's memory by inventing names).

    Everything here costs a hash lookup and a few adds per event: no
    allocation after a label's first use, no lock. Single thread.
*/
#ifndef ZSAGA_ORC_METRICS_H
#define ZSAGA_ORC_METRICS_H

#include "common/zmetrics.h"
#include "orc_saga.h"

enum { OM_DISPATCHED, OM_SUCCEEDED, OM_FAILED, OM_RETRIED, OM_TIMED_OUT, OM_PARKED, OM_NOUTCOMES };
enum { OM_STARTED, OM_COMPLETED, OM_COMPENSATED, OM_PARKED_SAGA, OM_RESOLVED, OM_NSAGA };

typedef struct {
    char system[MSG_NAME_MAX + 1], op[MSG_NAME_MAX + 1];
    uint64_t action[OM_NOUTCOMES], comp[OM_NOUTCOMES];
    zhist_t action_lat, comp_lat; /* dispatch to result, microseconds */
} orc_opm_t;

typedef struct {
    char name[MSG_SAGA_NAME_MAX + 1];
    uint64_t n[OM_NSAGA];
} orc_defm_t;

typedef struct orc_metrics_s orc_metrics_t;

orc_metrics_t *orc_metrics_new(void);
void orc_metrics_destroy(orc_metrics_t **self_p);

/* One committed event; ev->saga is valid during the call. */
void orc_metrics_event(orc_metrics_t *self, const orc_event_t *ev);
/* One group commit: how long it took, how many records it wrote. */
void orc_metrics_commit(orc_metrics_t *self, uint64_t us, uint64_t items);
void orc_metrics_worker_lost(orc_metrics_t *self, const char *system);
void orc_metrics_refused(orc_metrics_t *self, const char *code);

/* Read access for the exposition and the alert rules. */
size_t orc_metrics_ops(orc_metrics_t *self, orc_opm_t **ops);
size_t orc_metrics_defs(orc_metrics_t *self, orc_defm_t **defs);
const zhist_t *orc_metrics_saga_duration(orc_metrics_t *self, int completed);
const zhist_t *orc_metrics_commit_hist(orc_metrics_t *self, int batch);
/* Labelled counters: refusals by code, lost workers by system. */
typedef struct {
    char label[MSG_NAME_MAX + 1];
    uint64_t n;
} orc_labelled_t;
size_t orc_metrics_refusals(orc_metrics_t *self, orc_labelled_t **out);
size_t orc_metrics_lost(orc_metrics_t *self, orc_labelled_t **out);

#endif
