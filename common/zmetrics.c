/*  zmetrics: histograms and Prometheus text. See zmetrics.h. */
#include "zmetrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint64_t zhist_latency_us[ZHIST_LATENCY] = { 500,     1000,     2500,     5000,
                                                   10000,   25000,    50000,    100000,
                                                   250000,  500000,   1000000,  2500000,
                                                   5000000, 10000000, 30000000, 60000000 };
const uint64_t zhist_count_bounds[ZHIST_COUNT] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 };

void zhist_init_latency(zhist_t *h)
{
    memset(h, 0, sizeof *h);
    h->bounds = zhist_latency_us;
    h->nbounds = ZHIST_LATENCY;
}

void zhist_init_count(zhist_t *h)
{
    memset(h, 0, sizeof *h);
    h->bounds = zhist_count_bounds;
    h->nbounds = ZHIST_COUNT;
}

static uint32_t s_bucket(const zhist_t *h, uint64_t v)
{
    uint32_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    return i;
}

void zhist_observe(zhist_t *h, uint64_t v)
{
    h->bucket[s_bucket(h, v)]++;
    h->count++;
    h->sum += v;
}

void zhist_observe_atomic(zhist_t *h, uint64_t v)
{
    __atomic_fetch_add(&h->bucket[s_bucket(h, v)], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->sum, v, __ATOMIC_RELAXED);
    /* count last: a reader that sees it sees the bucket too (near enough
       for a scrape; the exposition takes count as the +Inf bucket). */
    __atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
}

uint64_t zhist_quantile(const zhist_t *b, const zhist_t *a, double q)
{
    uint64_t n[ZHIST_MAX + 1], total = 0;
    for (uint32_t i = 0; i <= b->nbounds; i++) {
        uint64_t x = __atomic_load_n(&b->bucket[i], __ATOMIC_RELAXED);
        uint64_t y = a ? a->bucket[i] : 0;
        n[i] = x >= y ? x - y : 0;
        total += n[i];
    }
    if (!total)
        return 0;
    double rank = q * (double)total, seen = 0;
    for (uint32_t i = 0; i <= b->nbounds; i++) {
        if (n[i] && seen + (double)n[i] >= rank) {
            uint64_t lo = i ? b->bounds[i - 1] : 0;
            if (i == b->nbounds)
                return lo; /* past the last bound: all we know is "more than" */
            double hi = (double)b->bounds[i];
            return (uint64_t)((double)lo + (hi - (double)lo) * ((rank - seen) / (double)n[i]));
        }
        seen += (double)n[i];
    }
    return b->bounds[b->nbounds - 1];
}

/* ---- exposition text --------------------------------------------------- */

void zmx_init(zmx_t *b)
{
    memset(b, 0, sizeof *b);
}

void zmx_free(zmx_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int s_room(zmx_t *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

void zmx_printf(zmx_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || s_room(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void zmx_escape(zmx_t *b, const char *s)
{
    if (s_room(b, 2 * strlen(s)))
        return;
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            b->data[b->len++] = '\\';
            b->data[b->len++] = *s;
        } else if (*s == '\n') {
            b->data[b->len++] = '\\';
            b->data[b->len++] = 'n';
        } else
            b->data[b->len++] = *s;
    }
    b->data[b->len] = 0;
}

void zmx_family(zmx_t *b, const char *name, const char *type, const char *help)
{
    zmx_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* {k="v",...,extra} or nothing. */
static void s_labels(zmx_t *b, const char *const *labels, const char *extra_k, const char *extra_v)
{
    bool any = (labels && labels[0]) || extra_k;
    if (!any)
        return;
    zmx_printf(b, "{");
    int n = 0;
    for (int i = 0; labels && labels[i] && labels[i + 1]; i += 2, n++) {
        zmx_printf(b, "%s%s=\"", n ? "," : "", labels[i]);
        zmx_escape(b, labels[i + 1]);
        zmx_printf(b, "\"");
    }
    if (extra_k)
        zmx_printf(b, "%s%s=\"%s\"", n ? "," : "", extra_k, extra_v);
    zmx_printf(b, "}");
}

static void s_value(zmx_t *b, double v)
{
    /* Whole numbers as integers: counters read exactly up to 2^53. */
    if (v == (double)(int64_t)v && v < 9e15 && v > -9e15)
        zmx_printf(b, " %lld\n", (long long)v);
    else
        zmx_printf(b, " %.9g\n", v);
}

void zmx_sample(zmx_t *b, const char *name, const char *const *labels, double value)
{
    zmx_printf(b, "%s", name);
    s_labels(b, labels, NULL, NULL);
    s_value(b, value);
}

void zmx_hist(zmx_t *b, const char *name, const char *const *labels, const zhist_t *h, double scale)
{
    uint64_t cum = 0, count = __atomic_load_n(&h->count, __ATOMIC_RELAXED);
    char le[32];
    for (uint32_t i = 0; i < h->nbounds; i++) {
        cum += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
        if (cum > count)
            cum = count; /* a concurrent observe: keep the buckets monotone */
        snprintf(le, sizeof le, "%.9g", (double)h->bounds[i] / scale);
        zmx_printf(b, "%s_bucket", name);
        s_labels(b, labels, "le", le);
        s_value(b, (double)cum);
    }
    zmx_printf(b, "%s_bucket", name);
    s_labels(b, labels, "le", "+Inf");
    s_value(b, (double)count);
    zmx_printf(b, "%s_sum", name);
    s_labels(b, labels, NULL, NULL);
    s_value(b, (double)__atomic_load_n(&h->sum, __ATOMIC_RELAXED) / scale);
    zmx_printf(b, "%s_count", name);
    s_labels(b, labels, NULL, NULL);
    s_value(b, (double)count);
}
