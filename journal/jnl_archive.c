/*  jnl_archive: archive files. See jnl_archive.h for the layout. */
#define _GNU_SOURCE /* renameat2 */
#include "jnl_archive.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC     "ZSAGAARC"
#define END_MAGIC "ZSAGAEND"
#define VERSION   1
#define HASH_LEN  32
#define TRAILER   (8 + 4 + 8 + 8 + HASH_LEN)

static void s_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void s_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t s_get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

void jnl_archive_init(jnl_archive_t *a)
{
    memset(a, 0, sizeof *a);
    msgpack_sbuffer_init(&a->buf);
}

void jnl_archive_reset(jnl_archive_t *a)
{
    msgpack_sbuffer_clear(&a->buf);
    a->count = 0;
    a->first_seq = a->last_seq = 0;
}

void jnl_archive_destroy(jnl_archive_t *a)
{
    msgpack_sbuffer_destroy(&a->buf);
    memset(a, 0, sizeof *a);
}

int jnl_archive_add(jnl_archive_t *a, uint64_t seq, const void *rec, size_t len)
{
    uint8_t hdr[12];
    if (len > UINT32_MAX)
        return EINVAL;
    if (a->buf.size == 0) {
        memcpy(hdr, MAGIC, 8);
        s_be32(hdr + 8, VERSION);
        if (msgpack_sbuffer_write(&a->buf, (const char *)hdr, 12))
            return ENOMEM;
        a->first_seq = seq;
    }
    s_be32(hdr, (uint32_t)len);
    if (msgpack_sbuffer_write(&a->buf, (const char *)hdr, 4) ||
        msgpack_sbuffer_write(&a->buf, rec, len))
        return ENOMEM;
    a->count++;
    a->last_seq = seq;
    return 0;
}

static int s_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return errno ? errno : EIO;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int jnl_archive_write(jnl_archive_t *a, const char *dir, uint64_t now_ms, char *path,
                      size_t pathlen, char *err, size_t errlen)
{
    uint8_t tr[TRAILER];
    char tmp[4096], name[128];
    int rc = 0;
    if (!a->count) {
        snprintf(err, errlen, "nothing to archive");
        return EINVAL;
    }
    memcpy(tr, END_MAGIC, 8);
    s_be32(tr + 8, a->count);
    s_be64(tr + 12, a->first_seq);
    s_be64(tr + 20, a->last_seq);
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, HASH_LEN);
    crypto_generichash_update(&h, (const uint8_t *)a->buf.data, a->buf.size);
    crypto_generichash_update(&h, tr, 28);
    crypto_generichash_final(&h, tr + 28, HASH_LEN);

    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(name, sizeof name, "zsaga-archive-%s-%012llu", stamp,
             (unsigned long long)a->first_seq);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    if (mkdir(dir, 0700) && errno != EEXIST) {
        rc = errno;
        snprintf(err, errlen, "archive directory %s: %s", dir, strerror(rc));
        return rc;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = errno;
        snprintf(err, errlen, "archive %s: %s", tmp, strerror(rc));
        return rc;
    }
    if ((rc = s_write_all(fd, a->buf.data, a->buf.size)) || (rc = s_write_all(fd, tr, TRAILER)) ||
        (fsync(fd) && (rc = errno))) {
        snprintf(err, errlen, "archive %s: %s", tmp, strerror(rc));
        close(fd);
        unlink(tmp);
        return rc;
    }
    close(fd);
    /* Never over a file already there (a re-archive after a crash keeps
       both; readers take the last record of an id). */
    for (int n = 0; n < 100; n++) {
        if (n)
            snprintf(path, pathlen, "%s/%s.%d.zar", dir, name, n);
        else
            snprintf(path, pathlen, "%s/%s.zar", dir, name);
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
            rc = 0;
            break;
        }
        rc = errno;
        if (rc != EEXIST)
            break;
    }
    if (rc) {
        snprintf(err, errlen, "archive %s: %s", path, strerror(rc));
        unlink(tmp);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd))
            rc = errno;
        close(dfd);
    }
    if (rc)
        snprintf(err, errlen, "archive directory %s: fsync: %s", dir, strerror(rc));
    return rc;
}

int jnl_archive_read(const char *path, jnl_archive_fn *fn, void *arg, uint32_t *count, char *err,
                     size_t errlen)
{
    struct stat st;
    int rc = 0;
    uint8_t *b = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *count = 0;
    if (fd < 0 || fstat(fd, &st)) {
        rc = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(rc));
        goto done;
    }
    size_t n = (size_t)st.st_size;
    if (n < 12 + TRAILER || !(b = malloc(n))) {
        rc = n < 12 + TRAILER ? EINVAL : ENOMEM;
        snprintf(err, errlen, "%s: %s", path,
                 rc == EINVAL ? "too short to be an archive file" : "out of memory");
        goto done;
    }
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, b + got, n - got);
        if (r <= 0) {
            rc = r < 0 ? errno : EIO;
            snprintf(err, errlen, "%s: read: %s", path, strerror(rc));
            goto done;
        }
        got += (size_t)r;
    }
    const uint8_t *tr = b + n - TRAILER;
    if (memcmp(b, MAGIC, 8) || s_get(b + 8, 4) != VERSION) {
        rc = EINVAL;
        snprintf(err, errlen,
                 "%s: not a zsaga archive file (or a version this zsaga does not "
                 "read)",
                 path);
        goto done;
    }
    if (memcmp(tr, END_MAGIC, 8)) {
        rc = EIO;
        snprintf(err, errlen, "%s: no trailer: the file is truncated or damaged", path);
        goto done;
    }
    uint8_t hash[HASH_LEN];
    crypto_generichash(hash, HASH_LEN, b, n - HASH_LEN, NULL, 0);
    if (sodium_memcmp(hash, tr + 28, HASH_LEN)) {
        rc = EIO;
        snprintf(err, errlen, "%s: checksum mismatch: the file was changed or damaged", path);
        goto done;
    }
    uint32_t want = (uint32_t)s_get(tr + 8, 4), seen = 0;
    const uint8_t *p = b + 12, *end = tr;
    while (p < end) {
        if (end - p < 4 || s_get(p, 4) > (uint64_t)(end - p - 4)) {
            rc = EIO;
            snprintf(err, errlen, "%s: record %u overruns the file", path, seen);
            goto done;
        }
        size_t len = (size_t)s_get(p, 4);
        seen++;
        if (fn && fn(arg, p + 4, len))
            break;
        p += 4 + len;
    }
    if (p >= end && seen != want) {
        rc = EIO;
        snprintf(err, errlen, "%s: %u records, the trailer says %u", path, seen, want);
        goto done;
    }
    *count = want;
done:
    if (fd >= 0)
        close(fd);
    free(b);
    return rc;
}
