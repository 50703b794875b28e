/* orc_metrics and zmetrics: label bounds, histogram buckets and quantiles,
   and the exposition text. */
#include "orchestrator/orc_metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static uint64_t s_find(orc_labelled_t *l, size_t n, const char *label)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].label, label) == 0)
            return l[i].n;
    return UINT64_MAX;
}

/* Past 63 labels, new ones count under "other", and the first 63 keep
   their own counts. */
static void test_labels_bounded(void **state)
{
    (void)state;
    orc_metrics_t *m = orc_metrics_new();
    assert_non_null(m);
    char name[32];
    for (int i = 0; i < 70; i++) {
        snprintf(name, sizeof name, "sys%d", i);
        orc_metrics_worker_lost(m, name);
        orc_metrics_worker_lost(m, name);
    }
    orc_metrics_worker_lost(m, "sys0");
    orc_labelled_t *l;
    size_t n = orc_metrics_lost(m, &l);
    assert_int_equal(n, 64);
    assert_int_equal(s_find(l, n, "sys0"), 3);
    assert_int_equal(s_find(l, n, "sys62"), 2);
    assert_int_equal(s_find(l, n, "sys63"), UINT64_MAX);
    assert_int_equal(s_find(l, n, "other"), 14); /* sys63..sys69, twice each */
    orc_metrics_destroy(&m);
    assert_null(m);
}

static void test_histogram(void **state)
{
    (void)state;
    zhist_t h, before;
    zhist_init_latency(&h);
    for (int i = 0; i < 90; i++)
        zhist_observe(&h, 800); /* 0.5-1 ms bucket */
    before = h;
    for (int i = 0; i < 10; i++)
        zhist_observe(&h, 3000000); /* 2.5-5 s */
    assert_int_equal(h.count, 100);
    assert_int_equal(h.bucket[1], 90);
    assert_int_equal(h.bucket[12], 10);
    uint64_t p50 = zhist_quantile(&h, NULL, 0.5), p99 = zhist_quantile(&h, NULL, 0.99);
    assert_true(p50 > 500 && p50 <= 1000);
    assert_true(p99 > 2500000 && p99 <= 5000000);
    /* A window: only what came after `before`. */
    assert_true(zhist_quantile(&h, &before, 0.5) > 2500000);
    zhist_t empty;
    zhist_init_latency(&empty);
    assert_int_equal(zhist_quantile(&empty, NULL, 0.95), 0);
    /* Past the last bound: "more than 60 s" is all we know. */
    zhist_observe(&empty, 120000000);
    assert_int_equal(zhist_quantile(&empty, NULL, 0.5), 60000000);
}

static void test_exposition(void **state)
{
    (void)state;
    zmx_t b;
    zmx_init(&b);
    zhist_t h;
    zhist_init_count(&h);
    zhist_observe(&h, 3);
    zhist_observe(&h, 3000);
    zmx_family(&b, "x_total", "counter", "help");
    zmx_sample(&b, "x_total", (const char *[]){ "name", "a \"q\"\\\nb", NULL }, 7);
    zmx_hist(&b, "y", (const char *[]){ "k", "v", NULL }, &h, 1);
    assert_false(b.oom);
    assert_non_null(strstr(b.data, "# TYPE x_total counter\n"));
    /* Label values escaped: quote, backslash, newline. */
    assert_non_null(strstr(b.data, "x_total{name=\"a \\\"q\\\"\\\\\\nb\"} 7\n"));
    assert_non_null(strstr(b.data, "y_bucket{k=\"v\",le=\"2\"} 0\n"));
    assert_non_null(strstr(b.data, "y_bucket{k=\"v\",le=\"4\"} 1\n"));
    assert_non_null(strstr(b.data, "y_bucket{k=\"v\",le=\"1024\"} 1\n"));
    assert_non_null(strstr(b.data, "y_bucket{k=\"v\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(b.data, "y_sum{k=\"v\"} 3003\n"));
    assert_non_null(strstr(b.data, "y_count{k=\"v\"} 2\n"));
    zmx_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_bounded),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_exposition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
