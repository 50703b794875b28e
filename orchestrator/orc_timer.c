/*  orc_timer: binary min-heap. See orc_timer.h. */
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

int orc_timer_push(orc_timer_t *self, orc_timer_entry_t e)
{
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 256;
        orc_timer_entry_t *h = realloc(self->heap, cap * sizeof *h);
        if (!h)
            return -1;
        self->heap = h;
        self->cap = cap;
    }
    size_t i = self->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->heap[parent].due_ms <= e.due_ms)
            break;
        self->heap[i] = self->heap[parent];
        i = parent;
    }
    self->heap[i] = e;
    return 0;
}

static void s_pop_root(orc_timer_t *self, orc_timer_entry_t *out)
{
    *out = self->heap[0];
    orc_timer_entry_t last = self->heap[--self->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= self->n)
            break;
        if (c + 1 < self->n && self->heap[c + 1].due_ms < self->heap[c].due_ms)
            c++;
        if (last.due_ms <= self->heap[c].due_ms)
            break;
        self->heap[i] = self->heap[c];
        i = c;
    }
    if (self->n)
        self->heap[i] = last;
}

int orc_timer_pop_due(orc_timer_t *self, uint64_t now_ms, orc_timer_entry_t *out)
{
    if (!self->n || self->heap[0].due_ms > now_ms)
        return 0;
    s_pop_root(self, out);
    return 1;
}

int orc_timer_pop_any(orc_timer_t *self, orc_timer_entry_t *out)
{
    if (!self->n)
        return 0;
    s_pop_root(self, out);
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
