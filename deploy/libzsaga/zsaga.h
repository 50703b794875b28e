/*  zsaga.h: everything libzsaga offers, for programs built outside the
    zsaga tree (pkg-config --cflags --libs zsaga).

    - A worker for a system: fill a wrk_system_t (its operations, each a
      handler run inside the barrier's transaction, and its migrations)
      and call wrk_main (workers/wrk_runtime.h). docs/write-a-worker.md.
    - A client in a service: zsc_new, zsc_submit, zsc_wait
      (client/zsc.h). docs/submit-from-your-service.md.
*/
#ifndef ZSAGA_H
#define ZSAGA_H

#include "client/zsc.h"
#include "workers/wrk_runtime.h"

#endif
