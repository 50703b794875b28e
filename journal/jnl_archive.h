/*  jnl_archive: archive files of ended sagas, for the years the journal
    does not keep them.

    A file is written whole and never changed: the records go to a temp
    file in the archive directory, which is fsync'd and renamed to its
    final name (never over an existing file), and the directory is fsync'd.
    A crash leaves either no file or the whole file; a stray .tmp file is
    a write that did not finish, and is ignored.

    Layout (integers big endian):
        "ZSAGAARC" u32 version (1)
        records: u32 length, then one msgpack value (the orchestrator's
                 record of one saga; this module does not look inside)
        trailer: "ZSAGAEND" u32 count, u64 first seq, u64 last seq,
                 32-byte BLAKE2b of every byte before the trailer's hash
    A reader checks the trailer and the hash before it trusts any record.
    Names: zsaga-archive-YYYYMMDDTHHMMSSZ-<first seq>.zar (UTC, the time of
    the write), so a directory listing is in time order.

    The same saga may be in two files if zsagad died between writing a
    file and recording that it had (it archives again from the last
    recorded point): readers take the last record of an id.
    Any thread; a writer is used by one thread at a time.
*/
#ifndef ZSAGA_JNL_ARCHIVE_H
#define ZSAGA_JNL_ARCHIVE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    msgpack_sbuffer buf; /* header and records so far */
    uint32_t count;
    uint64_t first_seq, last_seq;
} jnl_archive_t;

void jnl_archive_init(jnl_archive_t *a);
void jnl_archive_reset(jnl_archive_t *a);
void jnl_archive_destroy(jnl_archive_t *a);
/* Append one record (msgpack bytes) for the saga of ended sequence seq. */
int jnl_archive_add(jnl_archive_t *a, uint64_t seq, const void *rec, size_t len);
/* Write the file into dir (see above); path gets its name. 0 or errno. */
int jnl_archive_write(jnl_archive_t *a, const char *dir, uint64_t now_ms, char *path,
                      size_t pathlen, char *err, size_t errlen);

/* Read and check a whole file. On success fn gets each record in order
   (non-zero stops); returns 0, or an errno code with err saying what is
   wrong (not an archive, truncated, checksum mismatch). */
typedef int(jnl_archive_fn)(void *arg, const uint8_t *rec, size_t len);
int jnl_archive_read(const char *path, jnl_archive_fn *fn, void *arg, uint32_t *count, char *err,
                     size_t errlen);

#endif
