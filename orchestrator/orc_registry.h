/*  orc_registry: systems, their operations, their worker instances, and
    the queue of steps waiting for a worker of each system.

    The catalog (system -> operations) is what submits are checked against;
    the engine persists it so that a restarted orchestrator still knows
    every system before its workers come back. A worker instance is known by
    its connection's routing id, which ZeroMQ assigns (a peer cannot choose
    another's), and carries the instance id and the key it registered with. Queue entries hold a
   saga reference (refs) and are checked when popped, so stale entries cost nothing. Single thread.
*/
#ifndef ZSAGA_ORC_REGISTRY_H
#define ZSAGA_ORC_REGISTRY_H

#include "messages/msg_schema.h"
#include "orc_saga.h"

typedef struct orc_worker_s {
    uint32_t serial;               /* never reused; steps remember it */
    char rid[MSG_ID_MAX + 1];      /* its connection (hex of ZeroMQ's routing id) */
    char instance[MSG_ID_MAX + 1]; /* the id it gave in ready */
    char key[41];                  /* the CURVE key it registered with */
    char key_name[MSG_ID_MAX + 1]; /* that key's certificate name */
    char system[MSG_NAME_MAX + 1];
    uint32_t capacity, inflight;
    uint64_t last_seen_ms;
    /* The counters of its last heartbeat (a msgpack map, kept as sent),
       for the stats reply; larger maps are not kept. */
    uint8_t metrics[1024];
    uint32_t metrics_len;
    uint64_t metrics_ms; /* when they came */
    struct orc_worker_s *next;
} orc_worker_t;

typedef struct {
    orc_saga_t *saga;
    uint32_t step;
} orc_qitem_t;

/* What an operation's workers declared it takes and gives. */
typedef struct {
    char *params_text, *outputs_text; /* as declared (owned) */
    msg_schema_t params, outputs;
} orc_opschema_t;

typedef struct orc_system_s {
    char name[MSG_NAME_MAX + 1];
    uint32_t nops;
    char ops[MSG_MAX_OPS][MSG_NAME_MAX + 1];
    orc_opschema_t *schema[MSG_MAX_OPS]; /* by ops index; NULL: none declared */
    bool dirty;                          /* catalog entry changed: persist it */
    orc_worker_t *workers;
    orc_qitem_t *q;
    size_t qhead, qlen, qcap;
    struct orc_system_s *next;
} orc_system_t;

typedef struct orc_registry_s orc_registry_t;

orc_registry_t *orc_registry_new(void);
void orc_registry_destroy(orc_registry_t **self_p);

orc_system_t *orc_registry_system(orc_registry_t *self, const char *name);
/* Define or update a system's operations (union with what is known). */
orc_system_t *orc_registry_define(orc_registry_t *self, const char *name,
                                  char (*ops)[MSG_NAME_MAX + 1], uint32_t nops);
bool orc_system_has_op(const orc_system_t *sys, const char *op);
/* Set an operation's schema (the latest worker's word wins). 0; 1 if it
   changed (the system is then dirty); -1 with err if the text is bad. */
int orc_system_set_schema(orc_system_t *sys, const char *op, const char *params,
                          const char *outputs, char *err, size_t errlen);
/* The schema of op, or NULL if none was declared. */
const orc_opschema_t *orc_system_schema(const orc_system_t *sys, const char *op);
orc_system_t *orc_registry_systems(orc_registry_t *self); /* list head */

/* Register (or refresh) a worker instance. NULL when out of memory. */
orc_worker_t *orc_registry_ready(orc_registry_t *self, const char *rid, const char *instance,
                                 orc_system_t *sys, uint32_t capacity, uint64_t now_ms);
orc_worker_t *orc_registry_worker(orc_registry_t *self, const char *rid);
orc_worker_t *orc_registry_instance(orc_registry_t *self, const char *instance);
uint32_t orc_registry_system_count(orc_registry_t *self);
/* The live worker with the most free capacity, or NULL. */
orc_worker_t *orc_registry_pick(orc_system_t *sys);
/* Remove a worker; the caller has already moved its steps. */
void orc_registry_remove(orc_registry_t *self, orc_worker_t *w);
/* First worker whose last sign of life is older than now - timeout. */
orc_worker_t *orc_registry_expired(orc_registry_t *self, uint64_t now_ms, uint32_t timeout_ms);
uint32_t orc_registry_worker_count(orc_registry_t *self);

int orc_queue_push(orc_system_t *sys, orc_saga_t *saga, uint32_t step);
int orc_queue_pop(orc_system_t *sys, orc_qitem_t *out);
/* Put an item back at the front (no worker was free after all). */
int orc_queue_unpop(orc_system_t *sys, orc_qitem_t item);

#endif
