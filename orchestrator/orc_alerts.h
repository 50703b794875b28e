/*  orc_alerts: the built-in alert rules, with warning and critical
    levels (the defaults are the operations seeds' thresholds).

      step_latency        p95 of step latency by system over the window, ms   500 / 2000
      pool_usage          a worker's connections in use / its pool max, %      80 / 95
      step_failure_rate   steps failed / steps ended by system, window, %       1 / 5
      saga_failure_rate   sagas compensated or parked / ended, window, %        1 / 5
      journal_usage       journal bytes used / map size, %                     85 / 95
      memory              zsagad's resident memory / the memory it may use, %  80 / 90
      parked_sagas        sagas parked, waiting for an operator                 1 / 10
      workers_lost        workers declared dead over the window                 1 / 3
      compensation_retries compensation retries and timeouts over the window     1 / 10

    Rates need at least 20 outcomes in the window, so one early failure
    does not page anyone. An alert fires when its value reaches the
    warning level, moves to critical and back as the value does, and
    resolves when the value falls under the warning level. Each change is
    logged, published on the event stream (topic "alert.firing" or
    "alert.resolved"), counted in /metrics, and handed to the configured
    command (environment ZSAGA_ALERT_*) and webhook (POST of a JSON
    object), neither of which can stall the loop: the command runs as a
    child reaped later, the webhook on a thread of its own with a bounded
    queue (a full queue drops and counts).
    Single thread (zsagad's loop) but for that webhook thread.
*/
#ifndef ZSAGA_ORC_ALERTS_H
#define ZSAGA_ORC_ALERTS_H

#include "common/zmetrics.h"
#include "orc_engine.h"
#include "orc_metrics.h"

#include <msgpack.h>

typedef struct orc_alerts_s orc_alerts_t;

typedef struct {
    uint64_t window_ms;  /* rates and percentiles over this (default 60 s) */
    const char *command; /* run through /bin/sh at each change; NULL: none */
    const char *webhook; /* POST JSON here at each change; NULL: none */
} orc_alerts_config_t;

/* What the rules read, gathered by the server each evaluation. */
typedef struct {
    orc_engine_t *engine;
    orc_metrics_t *metrics; /* NULL: the rules that need it stay quiet */
    size_t journal_used, journal_map;
    size_t parked;
} orc_alerts_input_t;

/* A change of state, for the caller to publish on the event stream. */
typedef struct {
    char rule[32], subject[104], level[16], message[256];
    bool firing;
    double value;
    uint64_t at_ms;
} orc_alert_change_t;

orc_alerts_t *orc_alerts_new(const orc_alerts_config_t *cfg, char *err, size_t errlen);
void orc_alerts_destroy(orc_alerts_t **self_p);
/* "RULE=WARN,CRIT" or "RULE=off": set a rule's levels. */
int orc_alerts_set(orc_alerts_t *self, const char *spec, char *err, size_t errlen);
/* Evaluate every rule (call about once a second); returns the changes
   since the last call in *changes (valid until the next call). */
size_t orc_alerts_eval(orc_alerts_t *self, const orc_alerts_input_t *in, uint64_t wall_ms,
                       uint64_t mono_ms, const orc_alert_change_t **changes);
/* The rules and every subject's state, as the alerts reply's array. */
void orc_alerts_pack(orc_alerts_t *self, msgpack_packer *pk);
/* zsaga_alerts_firing and the notification counters. */
void orc_alerts_metrics(orc_alerts_t *self, zmx_t *b);

#endif
