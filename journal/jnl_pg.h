/*  jnl_pg: the journal's PostgreSQL backend, used by jnl.c behind the
    same interface as LMDB (jnl.h). Not for other callers.

    One table holds every named database of a partition of the journal:
        zsaga_journal (db smallint, k bytea, v bytea, PRIMARY KEY (db, k))
    (zsaga_journal_pN for partition N when there are several), and its row
    of zsaga_lease says which zsagad may write it (holder, epoch, expiry,
    that zsagad's client endpoints). A connection is either the journal's writer (the
    committer's: it holds the lease, checks it first in each transaction,
    and writes each batch in one transaction, its statements sent in one
    pipeline) or a reader (the loop's: reads inside REPEATABLE READ READ
    ONLY transactions, or one statement at a time outside one). A dropped
    connection is made again before the next transaction.

    Errors are errno values (EIO for a database error) or JNL_DEPOSED (the
    lease is another's), and the database's message is logged. Values
    returned by get and scan stay valid until jpg_release (the end of the
    read or write transaction).
*/
#ifndef ZSAGA_JNL_PG_H
#define ZSAGA_JNL_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jpg_s jpg_t;

/* Is uri a PostgreSQL one (postgresql:// or postgres://)? */
bool jpg_is_uri(const char *uri);
/* Connect; the writer takes the journal's lock and creates the table. */
jpg_t *jpg_open(const char *uri, bool writer, char *err, size_t errlen);
void jpg_close(jpg_t **self_p);

/* Partitions (docs/design.md): the journal's count, fixed when it is made
   (EINVAL, err set, when n differs); the partition this connection works
   on (its own table: zsaga_journal with one partition, zsaga_journal_pN
   with several; the writer makes it); and the client endpoints of the
   zsagad holding a partition's lease (ENOENT when nobody holds it). */
int jpg_partitions(jpg_t *self, uint32_t n, char *err, size_t errlen);
int jpg_use_partition(jpg_t *self, uint32_t part, uint32_t n, char *err, size_t errlen);
int jpg_leader_of(jpg_t *self, uint32_t part, char *clients, size_t len);

/* A partition's lease (writer): take it (0), or EAGAIN with who holds it
   and until when; renew it (JNL_DEPOSED once another took it); give it up
   at a clean stop so a standby need not wait for it to expire. A write
   transaction checks it first (JNL_DEPOSED). clients: this zsagad's
   client endpoints, for redirections. */
int jpg_lease_take(jpg_t *self, uint32_t part, const char *holder, const char *clients,
                   uint32_t lease_ms, uint32_t min_free_ms, char *who, size_t wholen, char *until,
                   size_t untillen);
/* Shares (docs/design.md, "Scale-out"): the member (machine) this
   connection's zsagad counts as; say it is alive, and read how many
   partitions its member holds, its fair share (the partitions over the
   live members, rounded up), the highest partition it holds (-1: none)
   and how many other live members hold less than the share. A lease is
   taken with min_free_ms > 0 only once it has been free that long: a
   member at its share leaves free partitions to the others first. */
void jpg_set_member(jpg_t *self, const char *member);
int jpg_share(jpg_t *self, uint32_t nparts, uint32_t *held, uint32_t *share, int *highest,
              uint32_t *below);
int jpg_part(const jpg_t *self);
int jpg_lease_renew(jpg_t *self);
void jpg_lease_release(jpg_t *self);
uint64_t jpg_epoch(const jpg_t *self);

/* Transactions: a write one (the writer), a read one (a reader). A
   COMMIT whose answer is lost with the connection is not taken for a
   failure: once the database is back, txid_status says whether it
   committed (0) or not (EIO); JNL_OUTCOME_UNKNOWN if that cannot be
   learned in JNL_OUTCOME_WAIT_MS. */
int jpg_begin(jpg_t *self, bool write);
int jpg_commit(jpg_t *self);
/* Tests: cut the connection at the next commit, before COMMIT is sent
   (before = true) or after its answer came (as if it had been lost). */
void jpg_test_cut_commit(jpg_t *self, bool before);
void jpg_rollback(jpg_t *self);
bool jpg_in_txn(const jpg_t *self);
void jpg_release(jpg_t *self);

/* Writes, inside a write transaction: queued in a pipeline, their errors
   reported by the next read, jpg_flush or jpg_commit. */
int jpg_put(jpg_t *self, int db, const void *k, size_t klen, const void *v, size_t vlen);
/* Up to JPG_MANY puts in one statement; no key twice. */
#define JPG_MANY 128
typedef struct {
    int db;
    const void *k, *v;
    size_t klen, vlen;
} jpg_row_t;
int jpg_put_many(jpg_t *self, const jpg_row_t *rows, int n);
int jpg_del(jpg_t *self, int db, const void *k, size_t klen);
int jpg_flush(jpg_t *self);
/* Delete keys in [lo, hi) (hi NULL: no upper bound); *n how many. */
int jpg_del_range(jpg_t *self, int db, const void *lo, size_t lolen, const void *hi, size_t hilen,
                  size_t *n);

int jpg_get(jpg_t *self, int db, const void *k, size_t klen, const void **v, size_t *vlen);
/* Keys from `from` (strictly after it unless incl) up to hi (exclusive;
   NULL: none), in order, or down from `from` (strictly before it) to lo
   when reverse; fn returns non-zero to stop (returned). */
typedef int(jpg_scan_fn)(void *arg, const void *k, size_t klen, const void *v, size_t vlen);
int jpg_scan(jpg_t *self, int db, const void *from, size_t flen, bool incl, const void *bound,
             size_t blen, bool reverse, jpg_scan_fn *fn, void *arg);
size_t jpg_count(jpg_t *self, int db);
/* Bytes the table and its index take. */
size_t jpg_used(jpg_t *self);

#endif
