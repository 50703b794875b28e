/*  Tests of journal/: puts in one transaction, reads, prefix scans,
    counters, a full map that leaves the journal unchanged, hot backup and
    restore. */
#include "journal/jnl.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_dir[256];

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/zsaga-jnl-XXXXXX");
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int s_count(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    (*(int *)arg)++;
    return 0;
}

static void test_put_get_scan(void **state)
{
    (void)state;
    char err[256], path[300];
    snprintf(path, sizeof path, "%s/j", s_dir);
    jnl_config_t cfg = { 0, JNL_SYNC_FULL };
    jnl_t *j = jnl_open(path, &cfg, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "a1", 2, "one", 3), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "a2", 2, "two", 3), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "b1", 2, "three", 5), 0);
    assert_int_equal(jnl_meta_put(j, "boot", 7), 0);
    assert_int_equal(jnl_write_commit(j), 0);
    /* An aborted transaction leaves nothing. */
    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "c1", 2, "gone", 4), 0);
    jnl_write_abort(j);

    const void *v;
    size_t n;
    assert_int_equal(jnl_read_begin(j), 0);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "a2", 2, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "two", 3);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "c1", 2, &v, &n), MDB_NOTFOUND);
    int count = 0;
    assert_int_equal(jnl_scan(j, JNL_SAGAS, "a", 1, s_count, &count), 0);
    assert_int_equal(count, 2);
    count = 0;
    assert_int_equal(jnl_scan(j, JNL_SAGAS, NULL, 0, s_count, &count), 0);
    assert_int_equal(count, 3);
    jnl_read_end(j);
    assert_int_equal(jnl_meta_get(j, "boot"), 7);
    assert_int_equal(jnl_meta_get(j, "never"), 0);
    /* Deleting a missing key is not an error. */
    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_del(j, JNL_SAGAS, "zz", 2), 0);
    assert_int_equal(jnl_del(j, JNL_SAGAS, "a1", 2), 0);
    assert_int_equal(jnl_write_commit(j), 0);
    jnl_destroy(&j);
    assert_null(j);

    /* Reopen: what committed is there. */
    j = jnl_open(path, &cfg, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(jnl_read_begin(j), 0);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "a1", 2, &v, &n), MDB_NOTFOUND);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "b1", 2, &v, &n), 0);
    jnl_read_end(j);
    jnl_destroy(&j);
}

static void test_map_full_leaves_journal_intact(void **state)
{
    (void)state;
    char err[256], path[300];
    snprintf(path, sizeof path, "%s/small", s_dir);
    jnl_config_t cfg = { 256 * 1024, JNL_SYNC_NONE };
    jnl_t *j = jnl_open(path, &cfg, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "keep", 4, "safe", 4), 0);
    assert_int_equal(jnl_write_commit(j), 0);
    char val[4000];
    memset(val, 'x', sizeof val);
    int rc = 0;
    assert_int_equal(jnl_write_begin(j), 0);
    for (int i = 0; i < 1000 && !rc; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%05d", i);
        rc = jnl_put(j, JNL_HISTORY, key, strlen(key), val, sizeof val);
    }
    assert_int_equal(rc, MDB_MAP_FULL);
    jnl_write_abort(j);
    size_t used, map;
    jnl_usage(j, &used, &map);
    assert_int_equal(map, 256 * 1024);
    const void *v;
    size_t n;
    assert_int_equal(jnl_read_begin(j), 0);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "keep", 4, &v, &n), 0);
    assert_memory_equal(v, "safe", 4);
    assert_int_equal(jnl_get(j, JNL_HISTORY, "k00000", 6, &v, &n), MDB_NOTFOUND);
    jnl_read_end(j);
    jnl_destroy(&j);
}

/* Runs on the committer: sees the batch's earlier writes, not the later. */
static int s_seen_in_txn(jnl_t *w, void *arg)
{
    const void *v;
    size_t n;
    int *seen = arg;
    seen[0] = jnl_get(w, JNL_SAGAS, "b", 1, &v, &n) == 0;
    seen[1] = jnl_get(w, JNL_SAGAS, "c", 1, &v, &n) == 0;
    seen[2] = jnl_get(w, JNL_SAGAS, "a", 1, &v, &n) == MDB_NOTFOUND;
    return 0;
}

static int s_refuse(jnl_t *w, void *arg)
{
    (void)w;
    (void)arg;
    return EIO;
}

/* Pipelined commits: writes are recorded, applied in order in one
   transaction on the committer, invisible to reads until committed; a
   batch that fails (a call refusing, a full map) leaves nothing behind;
   a batch is always committed before the journal closes. */
static void test_pipelined_batches(void **state)
{
    (void)state;
    char err[256], path[300];
    snprintf(path, sizeof path, "%s/pipe", s_dir);
    jnl_config_t cfg = { 256 * 1024, JNL_SYNC_FULL };
    jnl_t *j = jnl_open(path, &cfg, err, sizeof err);
    const void *v;
    size_t n;
    int rc, seen[3] = { 0 };
    assert_non_null(j);
    assert_int_equal(jnl_pipe_fd(j), -1);
    assert_int_equal(jnl_pipeline(j), 0);
    assert_true(jnl_pipe_fd(j) >= 0);
    assert_int_equal(jnl_write_submit(j), EINVAL); /* nothing recorded */

    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "a", 1, "1", 1), 0);
    assert_int_equal(jnl_append(j, JNL_EVSEQ, "\0\0\0\0\0\0\0\1", 8, "a", 1), 0);
    /* Recorded only: a read sees the last commit. */
    assert_int_equal(jnl_read_begin(j), 0);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "a", 1, &v, &n), MDB_NOTFOUND);
    jnl_read_end(j);
    assert_int_equal(jnl_write_submit(j), 0);
    assert_true(jnl_write_busy(j));
    assert_true(jnl_write_wait(j, true, &rc));
    assert_int_equal(rc, 0);
    assert_false(jnl_write_busy(j));
    assert_int_equal(jnl_read_begin(j), 0);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "a", 1, &v, &n), 0);
    assert_memory_equal(v, "1", 1);
    jnl_read_end(j);

    /* In order inside one transaction: a call sees what came before it. */
    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_del(j, JNL_SAGAS, "a", 1), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "b", 1, "2", 1), 0);
    assert_int_equal(jnl_write_call(j, s_seen_in_txn, seen), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "c", 1, "3", 1), 0);
    assert_int_equal(jnl_write_submit(j), 0);
    /* One in flight at a time; the next is recorded meanwhile. */
    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "d", 1, "4", 1), 0);
    assert_int_equal(jnl_write_submit(j), EBUSY);
    assert_true(jnl_write_wait(j, true, &rc));
    assert_int_equal(rc, 0);
    assert_true(seen[0] && !seen[1] && seen[2]);
    assert_int_equal(jnl_write_submit(j), 0);
    assert_true(jnl_write_wait(j, true, &rc));
    assert_int_equal(rc, 0);

    /* A refusing call fails the whole batch: nothing of it is written. */
    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "e", 1, "5", 1), 0);
    assert_int_equal(jnl_write_call(j, s_refuse, NULL), 0);
    assert_int_equal(jnl_write_commit(j), EIO);
    /* So does a full map. */
    char val[4000];
    memset(val, 'x', sizeof val);
    assert_int_equal(jnl_write_begin(j), 0);
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%05d", i);
        assert_int_equal(jnl_put(j, JNL_HISTORY, key, strlen(key), val, sizeof val), 0);
    }
    assert_int_equal(jnl_write_commit(j), MDB_MAP_FULL);
    assert_int_equal(jnl_read_begin(j), 0);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "e", 1, &v, &n), MDB_NOTFOUND);
    assert_int_equal(jnl_get(j, JNL_HISTORY, "k00000", 6, &v, &n), MDB_NOTFOUND);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "d", 1, &v, &n), 0);
    jnl_read_end(j);

    /* A batch handed over is committed before the journal closes. */
    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "f", 1, "6", 1), 0);
    assert_int_equal(jnl_write_submit(j), 0);
    jnl_destroy(&j);
    assert_non_null(j = jnl_open(path, &cfg, err, sizeof err));
    assert_int_equal(jnl_read_begin(j), 0);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "f", 1, &v, &n), 0);
    jnl_read_end(j);
    jnl_destroy(&j);
}

static void test_backup_and_restore(void **state)
{
    (void)state;
    char err[256], live[300], bk[300], restored[300];
    snprintf(live, sizeof live, "%s/live", s_dir);
    snprintf(bk, sizeof bk, "%s/bk", s_dir);
    snprintf(restored, sizeof restored, "%s/restored", s_dir);
    jnl_config_t cfg = { 0, JNL_SYNC_FULL };
    jnl_t *j = jnl_open(live, &cfg, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "s", 1, "before", 6), 0);
    assert_int_equal(jnl_write_commit(j), 0);
    assert_int_equal(jnl_backup(j, bk, err, sizeof err), 0);
    /* A second backup into the same place is refused. */
    assert_int_not_equal(jnl_backup(j, bk, err, sizeof err), 0);
    assert_non_null(strstr(err, "already exists"));
    /* Changes after the backup are not in it. */
    assert_int_equal(jnl_write_begin(j), 0);
    assert_int_equal(jnl_put(j, JNL_SAGAS, "s", 1, "after", 5), 0);
    assert_int_equal(jnl_write_commit(j), 0);
    jnl_destroy(&j);
    assert_int_equal(jnl_restore(bk, restored, err, sizeof err), 0);
    j = jnl_open(restored, &cfg, err, sizeof err);
    assert_non_null(j);
    const void *v;
    size_t n;
    assert_int_equal(jnl_read_begin(j), 0);
    assert_int_equal(jnl_get(j, JNL_SAGAS, "s", 1, &v, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(v, "before", 6);
    jnl_read_end(j);
    jnl_destroy(&j);
    /* Restoring something that is not a journal is refused. */
    assert_int_not_equal(jnl_restore(s_dir, restored, err, sizeof err), 0);
    assert_non_null(strstr(err, "data.mdb"));
}

/* A journal cut short (a full disk, a bad copy) is refused with a reason,
   by restore and by open, before LMDB maps it: never SIGBUS. */
static void test_truncated_journal_refused(void **state)
{
    (void)state;
    char err[512], live[300], bk[300], path[400], out[300];
    snprintf(live, sizeof live, "%s/tlive", s_dir);
    snprintf(bk, sizeof bk, "%s/tbk", s_dir);
    snprintf(out, sizeof out, "%s/tout", s_dir);
    jnl_config_t cfg = { 0, JNL_SYNC_FULL };
    jnl_t *j = jnl_open(live, &cfg, err, sizeof err);
    assert_non_null(j);
    char big[2000];
    memset(big, 'x', sizeof big);
    assert_int_equal(jnl_write_begin(j), 0);
    for (int i = 0; i < 200; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%05d", i);
        assert_int_equal(jnl_put(j, JNL_SAGAS, k, strlen(k), big, sizeof big), 0);
    }
    assert_int_equal(jnl_write_commit(j), 0);
    assert_int_equal(jnl_backup(j, bk, err, sizeof err), 0);
    jnl_destroy(&j);
    snprintf(path, sizeof path, "%s/data.mdb", bk);
    assert_int_equal(jnl_check_file(path, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    assert_int_equal(jnl_check_file(path, err, sizeof err), EIO);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(jnl_restore(bk, out, err, sizeof err), EIO);
    assert_non_null(strstr(err, "truncated"));
    /* The live journal cut short is refused at open. */
    snprintf(path, sizeof path, "%s/data.mdb", live);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    assert_null(jnl_open(live, &cfg, err, sizeof err));
    assert_non_null(strstr(err, "truncated"));
    /* Garbage is not a journal either. */
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(jnl_check_file(path, err, sizeof err), EINVAL);
}

/* One zsagad per journal: a second open is refused and names the holder;
   restore refuses a live target; a directory that held a journal never
   starts empty by accident. */
static void test_one_owner_and_no_silent_empty(void **state)
{
    (void)state;
    char err[512], dir[300], bk[300], path[400];
    snprintf(dir, sizeof dir, "%s/owned", s_dir);
    snprintf(bk, sizeof bk, "%s/owned-bk", s_dir);
    jnl_config_t cfg = { 0, JNL_SYNC_FULL };
    jnl_t *j = jnl_open(dir, &cfg, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(jnl_backup(j, bk, err, sizeof err), 0);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    assert_null(jnl_open(dir, &cfg, err, sizeof err));
    assert_non_null(strstr(err, "in use by another zsagad"));
    assert_non_null(strstr(err, pid));
    assert_int_equal(jnl_restore(bk, dir, err, sizeof err), EBUSY);
    assert_non_null(strstr(err, pid));
    jnl_destroy(&j);
    /* Closed: the lock is gone, restore may proceed. */
    assert_int_equal(jnl_locked_by(dir, err, sizeof err), 0);
    assert_int_equal(jnl_restore(bk, dir, err, sizeof err), 0);
    /* data.mdb emptied (a bad copy, a full disk): refused with the remedy. */
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    assert_int_equal(truncate(path, 0), 0);
    assert_null(jnl_open(dir, &cfg, err, sizeof err));
    assert_non_null(strstr(err, "restore it from a backup"));
    unlink(path);
    assert_null(jnl_open(dir, &cfg, err, sizeof err));
    assert_non_null(strstr(err, "missing"));
    /* Starting empty on purpose: remove the marker. */
    snprintf(path, sizeof path, "%s/zsaga.journal", dir);
    assert_int_equal(unlink(path), 0);
    assert_non_null(j = jnl_open(dir, &cfg, err, sizeof err));
    jnl_destroy(&j);
}

/* Saga ids to partitions: FNV-1a (32 bits) of the id's bytes, modulo the
   count, as docs/protocol.md tells clients in any language; spread evenly. */
static void test_partition_of(void **state)
{
    (void)state;
    assert_int_equal(jnl_partition_of("a", 1), 0);
    assert_int_equal(jnl_partition_of("a", 1000), 0xe40c292cu % 1000);
    assert_int_equal(jnl_partition_of("", 7), 2166136261u % 7);
    assert_int_equal(jnl_partition_of("foobar", 1u << 31), 0xbf9cf968u % (1u << 31));
    int count[3] = { 0 };
    for (int i = 0; i < 3000; i++) {
        char id[32];
        snprintf(id, sizeof id, "saga-%d", i);
        count[jnl_partition_of(id, 3)]++;
    }
    for (int p = 0; p < 3; p++)
        assert_in_range(count[p], 900, 1100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_scan),
        cmocka_unit_test(test_map_full_leaves_journal_intact),
        cmocka_unit_test(test_pipelined_batches),
        cmocka_unit_test(test_backup_and_restore),
        cmocka_unit_test(test_truncated_journal_refused),
        cmocka_unit_test(test_one_owner_and_no_silent_empty),
        cmocka_unit_test(test_partition_of),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
