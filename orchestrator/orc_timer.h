/*  orc_timer: a binary min-heap of timers for the orchestrator's loop.

    An entry is (due time, pointer, small integer) and a slot: a uint32_t
    the owner keeps, which the heap sets to the entry's position + 1 and
    keeps up to date as entries move, and sets to 0 when the entry leaves.
    So an owner can remove its entry at once (O(log n)) when the timer no
    longer matters: the heap holds exactly the armed timers, never the
    dead ones of finished work. Times are the caller's (zsagad: the
    monotonic clock). Single thread. Push returns -1 only when memory runs
    out.
*/
#ifndef ZSAGA_ORC_TIMER_H
#define ZSAGA_ORC_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t due_ms;
    void *ptr;
    uint32_t arg;
    uint32_t *slot; /* owner's: position + 1 while armed, 0 after */
} orc_timer_entry_t;

typedef struct orc_timer_s orc_timer_t;

orc_timer_t *orc_timer_new(void);
void orc_timer_destroy(orc_timer_t **self_p);
/* Arm: *slot must be 0 (not armed). */
int orc_timer_push(orc_timer_t *self, uint64_t due_ms, void *ptr, uint32_t arg, uint32_t *slot);
/* Disarm the entry *slot names; 1 if it was armed (then out gets it). */
int orc_timer_remove(orc_timer_t *self, uint32_t *slot, orc_timer_entry_t *out);
/* Pop the earliest entry if it is due at now_ms; returns 1 if popped. */
int orc_timer_pop_due(orc_timer_t *self, uint64_t now_ms, orc_timer_entry_t *out);
/* Due time of the earliest entry, or UINT64_MAX when empty. */
uint64_t orc_timer_next(const orc_timer_t *self);
size_t orc_timer_size(const orc_timer_t *self);
/* Pop every entry regardless of time (shutdown); returns 1 if popped. */
int orc_timer_pop_any(orc_timer_t *self, orc_timer_entry_t *out);

#endif
