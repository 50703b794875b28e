/*  zmetrics: fixed-bucket histograms and the Prometheus text exposition
    format (version 0.0.4).

    A histogram is an array of counters with bounds fixed at compile time:
    observing is a short scan and two adds, no allocation and no lock.
    zhist_observe is for one thread; zhist_observe_atomic for counters
    that several threads share (relaxed atomics, still no lock).

    The exposition is written into a zmx_t buffer: a family header once
    (zmx_family), then its samples. Label values are escaped here; names
    and label keys are the caller's constants.
*/
#ifndef ZSAGA_ZMETRICS_H
#define ZSAGA_ZMETRICS_H

#include <stddef.h>
#include <stdint.h>

/* Latency bounds in microseconds: 0.5 ms to 60 s. */
#define ZHIST_LATENCY 16
/* Count bounds: 1 to 1024 (batch sizes). */
#define ZHIST_COUNT 11
#define ZHIST_MAX   16

typedef struct {
    const uint64_t *bounds; /* upper bounds, ascending */
    uint32_t nbounds;
    uint64_t bucket[ZHIST_MAX + 1]; /* [nbounds] is +Inf; not cumulative */
    uint64_t count, sum;
} zhist_t;

extern const uint64_t zhist_latency_us[ZHIST_LATENCY];
extern const uint64_t zhist_count_bounds[ZHIST_COUNT];

void zhist_init_latency(zhist_t *h);
void zhist_init_count(zhist_t *h);
void zhist_observe(zhist_t *h, uint64_t v);
void zhist_observe_atomic(zhist_t *h, uint64_t v);
/* The value under which q (0..1) of the observations fall, by linear
   interpolation inside the bucket; 0 with none. From b - a when a is
   given (a window: two snapshots of the same histogram). */
uint64_t zhist_quantile(const zhist_t *b, const zhist_t *a, double q);

typedef struct {
    char *data;
    size_t len, cap;
    int oom; /* an allocation failed: the text is incomplete */
} zmx_t;

void zmx_init(zmx_t *b);
void zmx_free(zmx_t *b);
void zmx_printf(zmx_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s escaped as a label value (backslash, quote, newline). */
void zmx_escape(zmx_t *b, const char *s);
/* # HELP and # TYPE lines. type: counter, gauge or histogram. */
void zmx_family(zmx_t *b, const char *name, const char *type, const char *help);
/* One sample. labels: NULL, or pairs of key and value ending in NULL,
   e.g. (const char *[]){ "system", "core", NULL }. */
void zmx_sample(zmx_t *b, const char *name, const char *const *labels, double value);
/* A histogram's _bucket, _sum and _count samples; scale divides bounds
   and sum (1e6 turns microseconds into seconds, 1 leaves counts). */
void zmx_hist(zmx_t *b, const char *name, const char *const *labels, const zhist_t *h,
              double scale);

#endif
