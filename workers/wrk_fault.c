/*  wrk_fault: failure injection rules. See wrk_fault.h. */
#include "wrk_fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *s_kinds[WRK_FAULT_NKINDS] = { "fail", "retry", "delay", "crash-before-commit",
                                                 "crash-after-commit" };

int wrk_fault_parse(wrk_fault_t *f, const char *spec, char *err, size_t errlen)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, ";", &save); tok;
         tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(err, errlen, "fault '%s': want kind=op[:arg]", tok);
            return -1;
        }
        *eq = 0;
        int kind = -1;
        for (int k = 0; k < WRK_FAULT_NKINDS; k++)
            if (strcmp(tok, s_kinds[k]) == 0)
                kind = k;
        if (kind < 0) {
            snprintf(err, errlen,
                     "fault kind '%s' unknown (fail, retry, delay, crash-before-commit, "
                     "crash-after-commit)",
                     tok);
            return -1;
        }
        if (f->n == WRK_FAULT_MAX) {
            snprintf(err, errlen, "more than %d fault rules", WRK_FAULT_MAX);
            return -1;
        }
        wrk_fault_rule_t *r = &f->rules[f->n];
        memset(r, 0, sizeof *r);
        r->kind = (wrk_fault_kind_t)kind;
        r->prob = 1.0;
        r->arg = kind == WRK_FAULT_RETRY ? 1 : 0;
        char *colon = strchr(eq + 1, ':');
        if (colon) {
            *colon = 0;
            if (kind == WRK_FAULT_CRASH_BEFORE_COMMIT || kind == WRK_FAULT_CRASH_AFTER_COMMIT)
                r->prob = strtod(colon + 1, NULL);
            else
                r->arg = (uint32_t)strtoul(colon + 1, NULL, 10);
        } else if (kind == WRK_FAULT_DELAY) {
            snprintf(err, errlen, "fault delay=%s needs :MS", eq + 1);
            return -1;
        }
        snprintf(r->op, sizeof r->op, "%s", eq + 1);
        f->n++;
    }
    return 0;
}

const wrk_fault_rule_t *wrk_fault_find(const wrk_fault_t *f, wrk_fault_kind_t kind, const char *op)
{
    for (int i = 0; f && i < f->n; i++)
        if (f->rules[i].kind == kind &&
            (strcmp(f->rules[i].op, "*") == 0 || strcmp(f->rules[i].op, op) == 0))
            return &f->rules[i];
    return NULL;
}

void wrk_fault_crash_point(const wrk_fault_t *f, wrk_fault_kind_t kind, const char *op)
{
    const wrk_fault_rule_t *r = wrk_fault_find(f, kind, op);
    if (r && (r->prob >= 1.0 || (double)random() / RAND_MAX < r->prob)) {
        /* Straight to SIGKILL: no atexit, no flush, no reply. */
        kill(getpid(), SIGKILL);
        pause();
    }
}
