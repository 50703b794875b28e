/*  zlog: stderr logging. See zlog.h. */
#include "zlog.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static char s_program[32] = "zsaga";
static zlog_level_t s_level = ZLOG_INFO;
static zlog_format_t s_format = ZLOG_TEXT;
static const char *s_names[] = { "error", "warn", "info", "debug" };
static const char *s_formats[] = { "text", "logfmt", "json" };

void zlog_init(const char *program, zlog_level_t level)
{
    snprintf(s_program, sizeof s_program, "%s", program);
    s_level = level;
}

void zlog_set_format(zlog_format_t format)
{
    s_format = format;
}

int zlog_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, s_names[i]) == 0)
            return i;
    return -1;
}

int zlog_format_parse(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, s_formats[i]) == 0)
            return i;
    return -1;
}

typedef struct {
    char b[LINE_MAX_BYTES];
    size_t n;
} s_line_t;

static void s_put(s_line_t *l, const char *s, size_t len)
{
    /* Cut, keeping room for the newline. */
    size_t room = l->n < sizeof l->b - 2 ? sizeof l->b - 2 - l->n : 0;
    if (len > room)
        len = room;
    memcpy(l->b + l->n, s, len);
    l->n += len;
}

static void s_puts(s_line_t *l, const char *s)
{
    s_put(l, s, strlen(s));
}

/* A value as the format wants it: JSON string escapes, or logfmt quoting
   when it holds a space, quote, = or control character. Control
   characters never reach the log raw (a forged line break is a forged
   log line). */
static void s_value(s_line_t *l, const char *v)
{
    bool quote = s_format == ZLOG_JSON || !*v;
    for (const char *p = v; *p && !quote; p++)
        quote = *p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20;
    if (s_format == ZLOG_TEXT && !quote) {
        s_puts(l, v);
        return;
    }
    if (quote)
        s_puts(l, "\"");
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            s_put(l, esc, 2);
        } else if (c == '\n')
            s_puts(l, "\\n");
        else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            s_puts(l, esc);
        } else
            s_put(l, p, 1);
    }
    if (quote)
        s_puts(l, "\"");
}

static void s_field(s_line_t *l, const char *k, const char *v, bool first)
{
    if (s_format == ZLOG_JSON) {
        s_puts(l, first ? "\"" : ",\"");
        s_puts(l, k);
        s_puts(l, "\":");
    } else {
        if (!first)
            s_puts(l, " ");
        s_puts(l, k);
        s_puts(l, "=");
    }
    s_value(l, v);
}

static void s_emit(zlog_level_t level, const char *const *kv, const char *fmt, va_list ap)
{
    s_line_t l = { .n = 0 };
    char ts[96], msg[2048], pid[16];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    vsnprintf(msg, sizeof msg, fmt, ap);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    if (s_format == ZLOG_TEXT) {
        char head[192];
        snprintf(head, sizeof head, "%s %s[%s] %s: ", ts, s_program, pid, s_names[level]);
        s_puts(&l, head);
        for (const char *p = msg; *p; p++) /* no raw line breaks */
            s_put(&l, (unsigned char)*p < 0x20 ? " " : p, 1);
        for (int i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
            s_puts(&l, " ");
            s_field(&l, kv[i], kv[i + 1], true);
        }
    } else {
        if (s_format == ZLOG_JSON)
            s_puts(&l, "{");
        s_field(&l, "ts", ts, true);
        s_field(&l, "level", s_names[level], false);
        s_field(&l, "prog", s_program, false);
        s_field(&l, "pid", pid, false);
        s_field(&l, "msg", msg, false);
        for (int i = 0; kv && kv[i] && kv[i + 1]; i += 2)
            s_field(&l, kv[i], kv[i + 1], false);
        if (s_format == ZLOG_JSON)
            s_puts(&l, "}");
    }
    l.b[l.n++] = '\n';
    ssize_t w = write(2, l.b, l.n);
    (void)w;
}

void zlog(zlog_level_t level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    s_emit(level, NULL, fmt, ap);
    va_end(ap);
}

void zlog_kv(zlog_level_t level, const char *const *kv, const char *fmt, ...)
{
    if (level > s_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    s_emit(level, kv, fmt, ap);
    va_end(ap);
}
