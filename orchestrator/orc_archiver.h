/*  orc_archiver: copies ended sagas into archive files (jnl_archive.h)
    before retention removes them from the journal.

    Each call to orc_archiver_step, on zsagad's loop after a commit, reads
    a few more ended sagas (in the order they ended) from the journal and
    packs their full record: the status view (steps, outputs, errors,
    history) and the definition. A file is written, on a thread of its own
    so that the loop never waits for its fsync, when it holds 10,000 sagas
    or 16 MiB, when its first saga has waited a minute (or the retention
    period, if shorter), when the journal is
    nearly full, or at shutdown. Only when the file is durable does the
    engine learn (orc_engine_archived) that those sagas may be removed.

    A failed write (disk full, say) is logged, its sagas stay in the
    journal, and the archiver tries again from the same point later.
    Single thread (zsagad's loop), plus the writer thread it owns.
*/
#ifndef ZSAGA_ORC_ARCHIVER_H
#define ZSAGA_ORC_ARCHIVER_H

#include "journal/jnl.h"
#include "orc_engine.h"

typedef struct orc_archiver_s orc_archiver_t;

typedef struct {
    uint64_t files, sagas, bytes, failures;
} orc_archiver_stats_t;

orc_archiver_t *orc_archiver_new(const char *dir, uint64_t retain_ms);
/* Joins a running write. What was collected and not written is dropped:
   it is archived again from the journal at the next start. */
void orc_archiver_destroy(orc_archiver_t **self_p);
/* Collect, start a write when one is due, and report a finished one to
   the engine. With final, write whatever is collected and wait for it. */
void orc_archiver_step(orc_archiver_t *self, orc_engine_t *e, jnl_t *jnl, uint64_t wall_ms,
                       uint64_t mono_ms, bool final);
const orc_archiver_stats_t *orc_archiver_stats(const orc_archiver_t *self);

#endif
