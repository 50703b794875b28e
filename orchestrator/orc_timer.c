/*  orc_timer: binary min-heap with owner slots. See orc_timer.h. */
#include "orc_timer.h"

#include <stdlib.h>

struct orc_timer_s {
    orc_timer_entry_t *heap;
    size_t n, cap;
};

orc_timer_t *orc_timer_new(void)
{
    return calloc(1, sizeof(orc_timer_t));
}

void orc_timer_destroy(orc_timer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->heap);
    free(*self_p);
    *self_p = NULL;
}

static void s_place(orc_timer_t *self, size_t i, orc_timer_entry_t e)
{
    self->heap[i] = e;
    *e.slot = (uint32_t)(i + 1);
}

static void s_up(orc_timer_t *self, size_t i, orc_timer_entry_t e)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->heap[parent].due_ms <= e.due_ms)
            break;
        s_place(self, i, self->heap[parent]);
        i = parent;
    }
    s_place(self, i, e);
}

static void s_down(orc_timer_t *self, size_t i, orc_timer_entry_t e)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= self->n)
            break;
        if (c + 1 < self->n && self->heap[c + 1].due_ms < self->heap[c].due_ms)
            c++;
        if (e.due_ms <= self->heap[c].due_ms)
            break;
        s_place(self, i, self->heap[c]);
        i = c;
    }
    s_place(self, i, e);
}

int orc_timer_push(orc_timer_t *self, uint64_t due_ms, void *ptr, uint32_t arg, uint32_t *slot)
{
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 256;
        orc_timer_entry_t *h = realloc(self->heap, cap * sizeof *h);
        if (!h)
            return -1;
        self->heap = h;
        self->cap = cap;
    }
    s_up(self, self->n++, (orc_timer_entry_t){ due_ms, ptr, arg, slot });
    return 0;
}

/* Take out the entry at i: the last entry fills the hole and moves up or
   down to where it belongs. */
static void s_take(orc_timer_t *self, size_t i, orc_timer_entry_t *out)
{
    *out = self->heap[i];
    *out->slot = 0;
    orc_timer_entry_t last = self->heap[--self->n];
    if (i == self->n)
        return;
    if (i > 0 && last.due_ms < self->heap[(i - 1) / 2].due_ms)
        s_up(self, i, last);
    else
        s_down(self, i, last);
    /* Shrink a heap that a burst left mostly empty. */
    if (self->cap > 1024 && self->n < self->cap / 4) {
        orc_timer_entry_t *h = realloc(self->heap, self->cap / 2 * sizeof *h);
        if (h) {
            self->heap = h;
            self->cap /= 2;
        }
    }
}

int orc_timer_remove(orc_timer_t *self, uint32_t *slot, orc_timer_entry_t *out)
{
    if (!*slot || *slot > self->n || self->heap[*slot - 1].slot != slot)
        return 0;
    s_take(self, *slot - 1, out);
    return 1;
}

int orc_timer_pop_due(orc_timer_t *self, uint64_t now_ms, orc_timer_entry_t *out)
{
    if (!self->n || self->heap[0].due_ms > now_ms)
        return 0;
    s_take(self, 0, out);
    return 1;
}

int orc_timer_pop_any(orc_timer_t *self, orc_timer_entry_t *out)
{
    if (!self->n)
        return 0;
    s_take(self, 0, out);
    return 1;
}

uint64_t orc_timer_next(const orc_timer_t *self)
{
    return self->n ? self->heap[0].due_ms : UINT64_MAX;
}

size_t orc_timer_size(const orc_timer_t *self)
{
    return self->n;
}
