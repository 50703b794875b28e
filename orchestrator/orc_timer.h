/*  orc_timer: a binary min-heap of timers for the orchestrator's loop.

    An entry is (due time, pointer, small integer, generation). Entries are
    never removed early: the owner bumps its generation instead, and a
    popped entry whose generation no longer matches is ignored (lazy
    cancellation keeps every operation O(log n) with no back-pointers).
    Single thread. Push returns -1 only when memory runs out.
*/
#ifndef ZSAGA_ORC_TIMER_H
#define ZSAGA_ORC_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t due_ms;
    void *ptr;
    uint32_t arg;
    uint32_t gen;
} orc_timer_entry_t;

typedef struct orc_timer_s orc_timer_t;

orc_timer_t *orc_timer_new(void);
void orc_timer_destroy(orc_timer_t **self_p);
int orc_timer_push(orc_timer_t *self, orc_timer_entry_t entry);
/* Pop the earliest entry if it is due at now_ms; returns 1 if popped. */
int orc_timer_pop_due(orc_timer_t *self, uint64_t now_ms, orc_timer_entry_t *out);
/* Due time of the earliest entry, or UINT64_MAX when empty. */
uint64_t orc_timer_next(const orc_timer_t *self);
size_t orc_timer_size(const orc_timer_t *self);
/* Pop every entry regardless of time (shutdown); returns 1 if popped. */
int orc_timer_pop_any(orc_timer_t *self, orc_timer_entry_t *out);

#endif
