/*  wrk_fault: failure injection for tests and the demo.

    A rule is KIND=OP[:ARG], from --fault or the ZSAGA_FAULTS environment
    variable (rules separated by ';'). OP is an operation name or '*'.
      fail=OP                  answer "failed" without running it
      retry=OP[:N]             answer "retry later" to its first N tries (default 1)
      delay=OP:MS              sleep MS before running it
      crash-before-commit=OP[:P]  SIGKILL this worker just before the local
                               commit, with probability P (default 1)
      crash-after-commit=OP[:P]   SIGKILL it after the commit, before the reply
    A crash after commit cannot repeat on redelivery: the barrier answers
    the resend without committing again. Rules are parsed once at start
    and only read afterwards, so any thread may check them.
*/
#ifndef ZSAGA_WRK_FAULT_H
#define ZSAGA_WRK_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    WRK_FAULT_FAIL = 0,
    WRK_FAULT_RETRY,
    WRK_FAULT_DELAY,
    WRK_FAULT_CRASH_BEFORE_COMMIT,
    WRK_FAULT_CRASH_AFTER_COMMIT,
    WRK_FAULT_NKINDS
} wrk_fault_kind_t;

#define WRK_FAULT_MAX 32

typedef struct {
    wrk_fault_kind_t kind;
    char op[33];
    double prob;  /* crash rules */
    uint32_t arg; /* retry count, delay ms */
} wrk_fault_rule_t;

typedef struct {
    wrk_fault_rule_t rules[WRK_FAULT_MAX];
    int n;
} wrk_fault_t;

/* Add rules from a spec ("kind=op[:arg];..."). Returns 0 or -1 with err. */
int wrk_fault_parse(wrk_fault_t *f, const char *spec, char *err, size_t errlen);
/* The rule of this kind for op, or NULL. */
const wrk_fault_rule_t *wrk_fault_find(const wrk_fault_t *f, wrk_fault_kind_t kind, const char *op);
/* Crash now (SIGKILL) if a crash rule of this kind for op fires. */
void wrk_fault_crash_point(const wrk_fault_t *f, wrk_fault_kind_t kind, const char *op);

#endif
