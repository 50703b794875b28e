/*  zlog: the one logging front end. Lines go to stderr as
        2026-11-22T14:09:01.123Z zsagad[4242] info: text
    Library code logs through this and never calls printf. Thread-safe:
    each line is one write(2). Call zlog_init once, first.
*/
#ifndef ZSAGA_ZLOG_H
#define ZSAGA_ZLOG_H

typedef enum { ZLOG_ERROR = 0, ZLOG_WARN, ZLOG_INFO, ZLOG_DEBUG } zlog_level_t;

void zlog_init(const char *program, zlog_level_t level);
/* Parse "error", "warn", "info" or "debug"; -1 if none of them. */
int zlog_level_parse(const char *name);
void zlog(zlog_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define zlog_error(...) zlog(ZLOG_ERROR, __VA_ARGS__)
#define zlog_warn(...)  zlog(ZLOG_WARN, __VA_ARGS__)
#define zlog_info(...)  zlog(ZLOG_INFO, __VA_ARGS__)
#define zlog_debug(...) zlog(ZLOG_DEBUG, __VA_ARGS__)

#endif
