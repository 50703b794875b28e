/*  zlog: the one logging front end. Lines go to stderr in one of three
    formats (zlog_set_format):
      text    2026-11-22T14:09:01.123Z zsagad[4242] warn: saga parked saga=s-1 step=debit
      logfmt  ts=2026-11-22T14:09:01.123Z level=warn prog=zsagad pid=4242 msg="saga parked" saga=s-1
      json    {"ts":"...","level":"warn","prog":"zsagad","pid":"4242","msg":"saga
   parked","saga":"s-1"} zlog_kv adds fields (saga, step, system, instance, lease, key, ...) that
   log tools can select on. Values are escaped: a field never breaks a line or forges another.
    Library code logs through this and never calls printf. Thread-safe:
    each line is one write(2). Call zlog_init once, first.
*/
#ifndef ZSAGA_ZLOG_H
#define ZSAGA_ZLOG_H

typedef enum { ZLOG_ERROR = 0, ZLOG_WARN, ZLOG_INFO, ZLOG_DEBUG } zlog_level_t;
typedef enum { ZLOG_TEXT = 0, ZLOG_LOGFMT, ZLOG_JSON } zlog_format_t;

void zlog_init(const char *program, zlog_level_t level);
/* Parse "error", "warn", "info" or "debug"; -1 if none of them. */
int zlog_level_parse(const char *name);
/* "text", "logfmt" or "json"; -1 if none of them. */
int zlog_format_parse(const char *name);
void zlog_set_format(zlog_format_t format);
void zlog(zlog_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* kv: key, value, key, value, ..., NULL (values may not be NULL). */
void zlog_kv(zlog_level_t level, const char *const *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define zlog_error(...) zlog(ZLOG_ERROR, __VA_ARGS__)
#define zlog_warn(...)  zlog(ZLOG_WARN, __VA_ARGS__)
#define zlog_info(...)  zlog(ZLOG_INFO, __VA_ARGS__)
#define zlog_debug(...) zlog(ZLOG_DEBUG, __VA_ARGS__)

#endif
