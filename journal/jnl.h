/*  jnl: the orchestrator's journal, a thin layer over LMDB, or over a
    PostgreSQL database when jnl_open is given a postgresql:// URI instead
    of a directory (jnl_pg.h: one table, a lease for active and standby
    zsagads; the calls and their meaning are the same, but for hot backup,
    restore and the file checks, which are LMDB's).

    Owns one LMDB environment in a directory, with named databases:
      sagas    saga id -> saga record (definition, state, reason)
      steps    saga id, 0, step index -> step record (state, attempts,
               times, due time of its timer, last error, output)
      index    state byte, saga id -> "" (list by state; recovery scan)
      history  saga id, 0, sequence (8 bytes, big endian) -> transition
      systems  system name -> operations its workers registered
      meta     small named counters (boot, history sequence, layout)
      defs     saga id -> definition, written once at submit
      created  created ms (8 bytes, big endian), saga id -> "" (list by time)
      ended    ended ms (8 bytes, big endian), saga id -> "" (retention order)
      tombs    saga id -> tombstone of a removed saga (state, hash)
      tombexp  removed ms (8 bytes, big endian), saga id -> "" (tombstone expiry)
      evseq    history sequence (8 bytes, big endian) -> saga id (the event
               stream in order, for subscribers that resume)
    The orchestrator owns the record formats; the journal stores bytes.

    Group commit: the caller opens one write transaction per batch
    (jnl_write_begin), puts everything the batch changed, and commits once.
    Nothing that follows from the batch may be sent before the commit
    returns 0.

    Pipelined commit (jnl_pipeline): a committer thread then owns every
    write transaction. Between jnl_write_begin and jnl_write_submit the
    puts, appends, deletes and calls are only recorded (copied); submit
    hands the batch over and returns at once, and the committer applies
    it in one transaction and commits with the configured sync while the
    caller records the next batch. jnl_write_wait tells when it ended and
    how; its fd (jnl_pipe_fd) becomes readable then. One batch is in
    flight at a time, and the caller sends nothing that follows from a
    batch before jnl_write_wait reports it committed. Reads on the
    caller's thread go through jnl_read_begin and see the last commit,
    never a batch still recorded or in flight.

    Errors are LMDB codes (0 is success); jnl_strerror gives text.
    MDB_MAP_FULL from a put or commit means the map is full: the transaction
    is aborted and the journal is unchanged.

    Threads: one thread (the orchestrator's loop) calls everything except
    jnl_backup, which may run on another thread at the same time (it uses
    its own read transaction); once pipelined, the committer thread also
    runs the calls recorded by jnl_write_call. Never use a journal after
    fork().
*/
#ifndef ZSAGA_JNL_H
#define ZSAGA_JNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jnl_s jnl_t;

typedef enum {
    JNL_SAGAS = 0,
    JNL_STEPS,
    JNL_INDEX,
    JNL_HISTORY,
    JNL_SYSTEMS,
    JNL_META,
    JNL_DEFS,
    JNL_CREATED,
    JNL_ENDED,
    JNL_TOMBS,
    JNL_TOMBEXP,
    JNL_EVSEQ,
    JNL_NDBS
} jnl_db_t;

typedef enum {
    JNL_SYNC_FULL = 0, /* fsync data and meta page at every commit */
    JNL_SYNC_NOMETA,   /* skip the meta page fsync: the last commit may be lost on power loss */
    JNL_SYNC_NONE      /* no fsync: a crash of the OS may lose recent commits */
} jnl_sync_t;

typedef struct {
    size_t map_bytes; /* 0: default 1 GiB */
    jnl_sync_t sync;
    /* PostgreSQL only: the journal's lease (docs/design.md). Open waits,
       as a standby, until it can take the lease (calling wait(arg) about
       every lease_ms / 4, and giving up with ECANCELED once *stop is set);
       the committer renews it every lease_ms / 3, and checks it inside
       every batch's transaction: a zsagad whose lease another took fails
       that commit with JNL_DEPOSED, and jnl_deposed says so. */
    uint32_t lease_ms;  /* 0: 5000 */
    const char *holder; /* this zsagad's name in the lease row */
    /* Partitions: sagas are spread over this many (0: 1) by a hash of
       their id (jnl_partition_of), fixed when the journal is made; each
       has a lease and a table of its own, and this zsagad stands by for
       the first whose lease it can take and serves that one alone. clients:
       its client endpoints, given to clients sent to another partition. */
    uint32_t partitions;
    const char *clients;
    /* The member (machine) this zsagad counts as for fair shares (NULL:
       the host name): a member holding more partitions than the
       partitions over the live members, rounded up, gives its highest up
       (jnl_yield); a standby takes free partitions up to its member's
       share at once, others only once free for a lease. */
    const char *member;
    const volatile int *stop;
    void (*wait)(void *arg, const char *holder, const char *until);
    void *wait_arg;
} jnl_config_t;

/* A commit refused because another zsagad holds the journal's lease. */
#define JNL_DEPOSED (-30600)
/* PostgreSQL: the connection was lost while COMMIT ran, and whether it
   committed could not be learned once the database was back in reach
   (JNL_OUTCOME_WAIT_MS): nothing of the batch may be said to anyone. */
#define JNL_OUTCOME_UNKNOWN (-30601)
#define JNL_OUTCOME_WAIT_MS 30000

/* Does dir name a journal on PostgreSQL (postgresql:// or postgres://)? */
bool jnl_is_postgres(const char *dir);
jnl_t *jnl_open(const char *dir, const jnl_config_t *cfg, char *err, size_t errlen);
void jnl_destroy(jnl_t **self_p);
const char *jnl_strerror(int rc);

int jnl_write_begin(jnl_t *self);
int jnl_put(jnl_t *self, jnl_db_t db, const void *key, size_t klen, const void *val, size_t vlen);
/* A key greater than every key in db (LMDB goes straight to the last
   page); MDB_KEYEXIST if it is not. */
int jnl_append(jnl_t *self, jnl_db_t db, const void *key, size_t klen, const void *val,
               size_t vlen);
/* Delete a key; a missing key is not an error. */
int jnl_del(jnl_t *self, jnl_db_t db, const void *key, size_t klen);
/* Run fn(w, arg) inside the batch's write transaction, in order with
   its other writes: at once without a pipeline, on the committer thread
   with one (w is then the committer's view of the journal: read and
   write through it only). A non-zero return fails the batch. */
typedef int(jnl_call_fn)(jnl_t *w, void *arg);
int jnl_write_call(jnl_t *self, jnl_call_fn *fn, void *arg);
/* Commit, and wait for it (pipelined too: submit, then wait). EBUSY if a
   pipelined batch is still in flight. */
int jnl_write_commit(jnl_t *self);
void jnl_write_abort(jnl_t *self);
bool jnl_in_write(const jnl_t *self);

/* Start the committer thread (no write transaction may be open). */
int jnl_pipeline(jnl_t *self);
/* Hand the recorded batch to the committer; EBUSY if one is in flight. */
int jnl_write_submit(jnl_t *self);
/* Has the batch in flight ended? true with its result in *rc (0:
   committed and synced), or with *rc 0 when none was in flight; false
   while it runs (block waits instead). */
bool jnl_write_wait(jnl_t *self, bool block, int *rc);
bool jnl_write_busy(const jnl_t *self);
/* Readable when a batch in flight has ended; -1 without a pipeline. */
int jnl_pipe_fd(const jnl_t *self);
/* Has another zsagad taken the journal's lease (PostgreSQL)? Once true,
   nothing this zsagad commits counts: it must stop. The epoch it held. */
bool jnl_deposed(const jnl_t *self);
/* Should this zsagad give its partition up (its member holds more than
   its share)? Then it stops cleanly, which releases the lease. */
bool jnl_yield(const jnl_t *self);
uint64_t jnl_epoch(const jnl_t *self);
/* The partition of a saga id among n (FNV-1a, 32 bits, of its bytes,
   modulo n); the partition this journal serves, and of how many (0 of 1
   on LMDB); the client endpoints of the zsagad serving partition part
   (ENOENT: nobody holds it now). */
uint32_t jnl_partition_of(const char *id, uint32_t n);
uint32_t jnl_partition(const jnl_t *self, uint32_t *n);
int jnl_leader_of(jnl_t *self, uint32_t part, char *clients, size_t len);

/* Reads use the open write transaction if there is one, else a read
   transaction opened by jnl_read_begin (ended by jnl_read_end). Values
   stay valid until that transaction ends. MDB_NOTFOUND if absent. */
int jnl_read_begin(jnl_t *self);
void jnl_read_end(jnl_t *self);
int jnl_get(jnl_t *self, jnl_db_t db, const void *key, size_t klen, const void **val, size_t *vlen);

/* Call fn for every key starting with prefix, in key order, until fn
   returns non-zero (which jnl_scan then returns). */
typedef int(jnl_scan_fn)(void *arg, const void *key, size_t klen, const void *val, size_t vlen);
int jnl_scan(jnl_t *self, jnl_db_t db, const void *prefix, size_t plen, jnl_scan_fn *fn, void *arg);
/* Same, from a position: keys after `from` (before it when reverse), or
   from the first (last) key with the prefix when from is NULL. Reverse
   walks down. from need not exist. */
int jnl_scan_from(jnl_t *self, jnl_db_t db, const void *prefix, size_t plen, const void *from,
                  size_t flen, bool reverse, jnl_scan_fn *fn, void *arg);
/* Delete every key starting with prefix (plen > 0); *n gets how many. */
int jnl_del_prefix(jnl_t *self, jnl_db_t db, const void *prefix, size_t plen, size_t *n);
/* Number of keys in db. */
size_t jnl_count(jnl_t *self, jnl_db_t db);

/* Counters in the meta database (0 if never set). */
uint64_t jnl_meta_get(jnl_t *self, const char *name);
int jnl_meta_put(jnl_t *self, const char *name, uint64_t value);

/* Bytes of the map in use and the map size. Pages freed by removals and
   reusable by later writes do not count as used. */
void jnl_usage(jnl_t *self, size_t *used, size_t *map_bytes);

/* Open refuses a journal another process holds (zsagad.lock, flock: the
   error names its pid), and a directory that held a journal (its
   zsaga.journal marker) whose data.mdb is now missing or empty.
   0 if no zsagad holds dir's journal; EBUSY (err names the pid) if one does. */
int jnl_locked_by(const char *dir, char *err, size_t errlen);

/* Is path (a data.mdb) a whole LMDB file: a valid meta page and every
   page it names present? 0, or an errno code with the reason in err. */
int jnl_check_file(const char *path, char *err, size_t errlen);

/* Hot backup: a compacted, consistent copy of the running journal into
   dir, which it creates (mode 0700 under zsagad's umask; an existing dir
   is refused). A failed copy removes what it wrote. */
int jnl_backup(jnl_t *self, const char *dir, char *err, size_t errlen);
/* Offline restore: check that backup_dir holds a whole, readable journal
   (jnl_check_file: a truncated one is refused, never mapped), then
   put a copy in data_dir (created if missing; any journal there is
   replaced, atomically). Refused (EBUSY) while a zsagad holds data_dir. */
int jnl_restore(const char *backup_dir, const char *data_dir, char *err, size_t errlen);

#endif
