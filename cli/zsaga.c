/*  zsaga: the command-line client.

    Converts between JSON (what people and scripts write and read) and the
    msgpack protocol (docs/protocol.md). Output is for people by default,
    JSON with --json. Every failure prints a reason on stderr and exits
    non-zero (the table is in s_usage and the README): 1 for a refusal or
    error from zsagad, 2 for bad usage or input, 3 when zsagad does not
    answer; run and wait add 4 (gave up waiting), 5 (compensated), 6
    (parked) and 7 (resolved by hand).
*/
#include "common/zcfg.h"
#include "common/zkeys.h"
#include "journal/jnl.h"
#include "journal/jnl_archive.h"
#include "messages/msg.h"
#include "messages/msg_json.h"
#include "client/zsc.h"

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *endpoint, *events;
    const char *key, *server_key; /* own key pair, zsagad's public key */
    bool insecure;
    const char *role, *systems, *operations, *dir; /* keygen */
    int timeout_ms;
    bool json;
    const char *state, *reason, *saga;
    uint32_t limit;
    bool wait;
    const char *cursor;
    uint64_t since_ms, until_ms;
    bool all, version;
    bool from_set; /* watch --from */
    uint64_t from;
    const char *console; /* login: the console's base URL */
    zsc_t *zc;
} s_opts_t;

/* Exit codes (also in --help and the README). */
enum {
    EXIT_OK = 0,
    EXIT_REFUSED = 1,
    EXIT_USAGE = 2,
    EXIT_NO_ANSWER = 3,
    EXIT_GAVE_UP = 4,
    EXIT_COMPENSATED = 5,
    EXIT_PARKED = 6,
    EXIT_RESOLVED = 7
};

static int s_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int s_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zsaga: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return code;
}

/* ---- request / reply -------------------------------------------------- */

/* A socket of this type connected to ep with the client's keys; NULL
   after saying why. */
static zsock_t *s_connect(const s_opts_t *o, int type, const char *ep)
{
    char err[1024];
    zsock_t *sock = zsc_socket(o->zc, type, ep, err, sizeof err);
    if (!sock)
        s_die(2, "%s", err);
    return sock;
}

/* A request (following not_leader, client/zsc.h) and its reply; NULL
   after saying why. */
static json_t *s_simple(const s_opts_t *o, msg_t *m)
{
    char err[1024];
    json_t *r = zsc_call(o->zc, m, err, sizeof err);
    if (!r)
        s_die(EXIT_NO_ANSWER, "%s", err);
    return r;
}

static const char *s_jstr(json_t *o, const char *key)
{
    return zsc_str(o, key);
}

static long long s_jint(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* Refusals and errors: print, and give the exit code. */
static int s_check(json_t *reply, const s_opts_t *o)
{
    if (!reply)
        return 3;
    if (zsc_refused(reply)) {
        if (o->json)
            puts(json_dumps(reply, JSON_COMPACT) ?: "{}");
        fprintf(stderr, "zsaga: %s (%s): %s\n", s_jstr(reply, "type"), s_jstr(reply, "code"),
                s_jstr(reply, "reason"));
        return 1;
    }
    return 0;
}

static void s_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
}

/* ---- status ----------------------------------------------------------- */

static void s_fmt_dur(char *out, size_t n, long long a, long long b)
{
    if (!a || !b || b < a)
        snprintf(out, n, "-");
    else
        snprintf(out, n, "%lld ms", b - a);
}

static void s_print_output(json_t *out)
{
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach(out, k, v)
    {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        printf("%s%s=%s", first ? "  " : " ", k, s ? s : "?");
        free(s);
        first = false;
    }
}

static void s_print_status(json_t *saga)
{
    json_t *steps = json_object_get(saga, "steps"), *hist = json_object_get(saga, "history");
    long long t0 = s_jint(saga, "created_ms");
    size_t i;
    json_t *st;
    printf("saga %s%s%s%s: %s\n", s_jstr(saga, "id"), *s_jstr(saga, "name") ? " (" : "",
           s_jstr(saga, "name"), *s_jstr(saga, "name") ? ")" : "", s_jstr(saga, "state"));
    if (*s_jstr(saga, "reason"))
        printf("  reason: %s\n", s_jstr(saga, "reason"));
    printf("  %-14s %-34s %-22s %5s %9s %5s %9s\n", "step", "system.action", "state", "tries",
           "took", "undo", "undo took");
    json_array_foreach(steps, i, st)
    {
        char sa[80], d1[32], d2[32];
        snprintf(sa, sizeof sa, "%s.%s", s_jstr(st, "system"), s_jstr(st, "action"));
        s_fmt_dur(d1, sizeof d1, s_jint(st, "started_ms"), s_jint(st, "finished_ms"));
        s_fmt_dur(d2, sizeof d2, s_jint(st, "compensation_started_ms"),
                  s_jint(st, "compensation_finished_ms"));
        printf("  %-14s %-34s %-22s %5lld %9s %5lld %9s", s_jstr(st, "id"), sa, s_jstr(st, "state"),
               s_jint(st, "attempts"), d1, s_jint(st, "compensation_attempts"), d2);
        s_print_output(json_object_get(st, "output"));
        if (*s_jstr(st, "error"))
            printf("  error=%s: %s", s_jstr(st, "code"), s_jstr(st, "error"));
        printf("\n");
    }
    printf("  timeline:\n");
    json_array_foreach(hist, i, st)
    {
        const char *step = s_jstr(st, "step");
        printf("    %+7lld ms  %-28s %-14s", s_jint(st, "ts_ms") - t0, s_jstr(st, "what"),
               *step ? step : "");
        if (s_jint(st, "attempt"))
            printf(" try %lld", s_jint(st, "attempt"));
        if (*s_jstr(st, "reason"))
            printf("  (%s)", s_jstr(st, "reason"));
        printf("\n");
    }
}

static int s_status(const s_opts_t *o, const char *id, bool print)
{
    msg_t m;
    msg_init(&m, MSG_STATUS);
    snprintf(m.id, sizeof m.id, "%s", id);
    json_t *r = s_simple(o, &m);
    int rc = s_check(r, o);
    if (!rc && print) {
        if (o->json)
            s_print_json(json_object_get(r, "saga"));
        else
            s_print_status(json_object_get(r, "saga"));
    }
    json_decref(r);
    return rc;
}

/* The exit code of an ended saga: completed 0, else what became of it. */
static int s_end_code(const char *state)
{
    return strcmp(state, "completed") == 0     ? EXIT_OK
           : strcmp(state, "compensated") == 0 ? EXIT_COMPENSATED
           : strcmp(state, "parked") == 0      ? EXIT_PARKED
                                               : EXIT_RESOLVED;
}

/* Poll until the saga ends; its end code, 1 at once for an unknown id,
   4 when wait_s runs out. */
static int s_wait(const s_opts_t *o, const char *id, int wait_s)
{
    int64_t deadline = zclock_mono() + (int64_t)wait_s * 1000;
    while (zclock_mono() < deadline) {
        msg_t m;
        msg_init(&m, MSG_STATUS);
        snprintf(m.id, sizeof m.id, "%s", id);
        json_t *r = s_simple(o, &m);
        int rc = s_check(r, o); /* not_found (or removed) ends the wait now */
        if (rc) {
            json_decref(r);
            return rc;
        }
        const char *state = s_jstr(json_object_get(r, "saga"), "state");
        int code = zsc_terminal(state) ? s_end_code(state) : -1;
        json_decref(r);
        if (code >= 0)
            return code;
        zclock_sleep(50);
    }
    return s_die(EXIT_GAVE_UP, "saga %s did not end within %d s", id, wait_s);
}

/* ---- commands --------------------------------------------------------- */

static int s_submit(const s_opts_t *o, const char *path, int wait_s)
{
    json_error_t jerr;
    json_t *saga = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr)
                                          : json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!saga)
        return s_die(2, "%s: line %d: %s", path, jerr.line, jerr.text);
    if (!json_is_object(saga)) {
        json_decref(saga);
        return s_die(2, "%s: a saga must be a JSON object", path);
    }
    if (!json_object_get(saga, "id")) {
        zuuid_t *uuid = zuuid_new();
        char id[48];
        snprintf(id, sizeof id, "saga-%s", zuuid_str_canonical(uuid));
        zuuid_destroy(&uuid);
        json_object_set_new(saga, "id", json_string(id));
    }
    char id[MSG_ID_MAX + 1], err[1024];
    snprintf(id, sizeof id, "%s", s_jstr(saga, "id"));
    json_t *r = zsc_submit(o->zc, saga, err, sizeof err);
    json_decref(saga);
    if (!r)
        s_die(EXIT_NO_ANSWER, "%s", err);
    int rc = s_check(r, o);
    if (rc) {
        json_decref(r);
        return rc;
    }
    if (!wait_s) {
        if (o->json)
            s_print_json(r);
        else
            printf("accepted %s (%s)%s\n", s_jstr(r, "id"), s_jstr(r, "state"),
                   json_is_true(json_object_get(r, "duplicate")) ? ", already submitted" : "");
        json_decref(r);
        return 0;
    }
    json_decref(r);
    int end = s_wait(o, id, wait_s);
    if (end != EXIT_OK && end != EXIT_COMPENSATED && end != EXIT_PARKED && end != EXIT_RESOLVED)
        return end;
    rc = s_status(o, id, true);
    return rc ? rc : end;
}

static int s_list(const s_opts_t *o)
{
    char cursor[MSG_ID_MAX + 24] = "";
    int rc = 0;
    if (o->cursor)
        snprintf(cursor, sizeof cursor, "%s", o->cursor);
    if (o->json && o->all)
        printf("[");
    bool first = true;
    do {
        msg_t m;
        msg_init(&m, MSG_LIST);
        if (o->state)
            snprintf(m.state, sizeof m.state, "%s", o->state);
        m.limit = o->limit;
        m.since_ms = o->since_ms;
        m.until_ms = o->until_ms;
        snprintf(m.cursor, sizeof m.cursor, "%s", cursor);
        json_t *r = s_simple(o, &m);
        if ((rc = s_check(r, o))) {
            json_decref(r);
            break;
        }
        json_t *sagas = json_object_get(r, "sagas"), *s;
        size_t i;
        const char *next = s_jstr(r, "next");
        if (o->json && !o->all)
            s_print_json(sagas);
        else
            json_array_foreach(sagas, i, s)
            {
                if (o->json) {
                    char *j = json_dumps(s, JSON_COMPACT);
                    printf("%s%s", first ? "\n" : ",\n", j ? j : "null");
                    free(j);
                    first = false;
                    continue;
                }
                time_t t = (time_t)(s_jint(s, "created_ms") / 1000);
                struct tm tm;
                char at[32];
                gmtime_r(&t, &tm);
                strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
                printf("%-36s %-13s %-20s %-24s %s\n", s_jstr(s, "id"), s_jstr(s, "state"), at,
                       s_jstr(s, "name"), s_jstr(s, "reason"));
            }
        snprintf(cursor, sizeof cursor, "%s", next);
        if (!o->all && *next)
            fprintf(stderr, "more: zsaga list --cursor '%s' (or --all)\n", next);
        json_decref(r);
    } while (o->all && cursor[0]);
    if (o->json && o->all)
        printf("\n]\n");
    return rc;
}

static int s_systems(const s_opts_t *o)
{
    msg_t m;
    msg_init(&m, MSG_SYSTEMS);
    json_t *r = s_simple(o, &m);
    int rc = s_check(r, o);
    if (!rc) {
        json_t *systems = json_object_get(r, "systems"), *sys, *x;
        size_t i, j;
        if (o->json)
            s_print_json(systems);
        else
            json_array_foreach(systems, i, sys)
            {
                json_t *workers = json_object_get(sys, "workers");
                printf("%s: %zu live worker%s\n", s_jstr(sys, "name"), json_array_size(workers),
                       json_array_size(workers) == 1 ? "" : "s");
                json_array_foreach(workers, j, x)
                    printf("  worker %s (key %s) %lld/%lld steps\n", s_jstr(x, "instance"),
                           s_jstr(x, "key"), s_jint(x, "inflight"), s_jint(x, "capacity"));
                json_array_foreach(json_object_get(sys, "operations"), j, x)
                {
                    const char *pa = s_jstr(x, "params"), *ou = s_jstr(x, "outputs");
                    printf("  %-28s params: %s\n  %-28s outputs: %s\n", s_jstr(x, "name"),
                           json_is_string(json_object_get(x, "params")) ? (*pa ? pa : "none")
                                                                        : "(not declared)",
                           "", *ou ? ou : "none");
                }
            }
    }
    json_decref(r);
    return rc;
}

/* ---- archive files ------------------------------------------------------ */

typedef struct {
    const char *id; /* show: the saga wanted; NULL: list every record */
    json_t *found;  /* show: its last record */
    bool json;
    uint32_t n;
} s_arch_t;

static int s_arch_cb(void *arg, const uint8_t *rec, size_t len)
{
    s_arch_t *a = arg;
    mp_reader_t r;
    mp_reader_init(&r, rec, len);
    json_t *j = msg_mp_to_json(&r, 0);
    json_t *saga = json_object_get(j, "saga");
    const char *id = saga ? s_jstr(saga, "id") : s_jstr(j, "id");
    a->n++;
    if (a->id) {
        if (strcmp(id, a->id) == 0) {
            json_decref(a->found);
            a->found = j; /* the last record of an id wins */
            return 0;
        }
    } else if (a->json) {
        char *s = json_dumps(j, JSON_COMPACT);
        puts(s ? s : "{}");
        free(s);
    } else
        printf("%-36s %-13s %-24s seq %lld\n", id, saga ? s_jstr(saga, "state") : "unreadable",
               saga ? s_jstr(saga, "name") : s_jstr(j, "error"), s_jint(j, "seq"));
    json_decref(j);
    return 0;
}

/* zsaga archive list|show|verify FILE... [--saga ID] */
static int s_archive(const s_opts_t *o, int argc, char **argv)
{
    if (argc < 2)
        return s_die(EXIT_USAGE, "archive list|show|verify FILE... (show needs --saga ID)");
    const char *sub = argv[0];
    bool show = strcmp(sub, "show") == 0, verify = strcmp(sub, "verify") == 0;
    if (!show && !verify && strcmp(sub, "list") != 0)
        return s_die(EXIT_USAGE, "archive: unknown subcommand '%s' (list, show or verify)", sub);
    if (show && !o->saga)
        return s_die(EXIT_USAGE, "archive show needs --saga ID");
    s_arch_t a = { show ? o->saga : NULL, NULL, o->json, 0 };
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        char err[512];
        uint32_t count;
        if (jnl_archive_read(argv[i], verify ? NULL : s_arch_cb, &a, &count, err, sizeof err)) {
            fprintf(stderr, "zsaga: %s\n", err);
            bad++;
        } else if (verify)
            printf("%s: %u sagas, checksum good\n", argv[i], count);
    }
    if (show) {
        if (!a.found)
            return s_die(EXIT_REFUSED, "no saga '%s' in %d file%s", o->saga, argc - 1,
                         argc == 2 ? "" : "s");
        if (o->json)
            s_print_json(a.found);
        else
            s_print_status(json_object_get(a.found, "saga"));
        json_decref(a.found);
    }
    return bad ? EXIT_REFUSED : EXIT_OK;
}

static int s_op(const s_opts_t *o, msg_type_t type, const char *arg)
{
    msg_t m;
    msg_init(&m, type);
    if (type == MSG_BACKUP)
        snprintf(m.text, sizeof m.text, "%s", arg);
    else {
        snprintf(m.id, sizeof m.id, "%s", arg);
        if (o->reason)
            snprintf(m.text, sizeof m.text, "%s", o->reason);
    }
    json_t *r = s_simple(o, &m);
    int rc = s_check(r, o);
    if (!rc) {
        if (o->json)
            s_print_json(r);
        else if (type == MSG_BACKUP)
            printf("backup written to %s\n", s_jstr(r, "path"));
        else
            printf("%s %s: ok\n", msg_type_name(type), arg);
    }
    json_decref(r);
    return rc;
}

static int s_stats(const s_opts_t *o)
{
    msg_t m;
    msg_init(&m, MSG_STATS);
    json_t *r = s_simple(o, &m);
    int rc = s_check(r, o);
    if (!rc) {
        json_t *st = json_object_get(r, "stats"), *v;
        const char *k;
        if (o->json)
            s_print_json(st);
        else
            json_object_foreach(st, k, v)
            {
                if (json_is_integer(v)) {
                    printf("%-22s %lld\n", k, (long long)json_integer_value(v));
                    continue;
                }
                if (json_is_string(v)) {
                    printf("%-22s %s\n", k, json_string_value(v));
                    continue;
                }
                /* worker_metrics: a block per worker, its counters on one line. */
                size_t i;
                json_t *w;
                json_array_foreach(v, i, w)
                {
                    printf("worker %s (%s) inflight %lld/%lld, counters %lld ms old\n ",
                           json_string_value(json_object_get(w, "instance")),
                           json_string_value(json_object_get(w, "system")),
                           (long long)json_integer_value(json_object_get(w, "inflight")),
                           (long long)json_integer_value(json_object_get(w, "capacity")),
                           (long long)json_integer_value(json_object_get(w, "metrics_age_ms")));
                    const char *mk;
                    json_t *mv;
                    json_object_foreach(json_object_get(w, "metrics"), mk, mv)
                        printf(" %s=%lld", mk, (long long)json_integer_value(mv));
                    printf("\n");
                }
            }
    }
    json_decref(r);
    return rc;
}

/* One event line (or JSON object); topic NULL: take it from the event. */
static void s_print_event(const s_opts_t *o, json_t *ev, const char *topic, size_t tlen)
{
    if (o->saga && strcmp(s_jstr(ev, "id"), o->saga) != 0)
        return;
    if (o->json) {
        char *s = json_dumps(ev, JSON_COMPACT);
        puts(s ? s : "{}");
        free(s);
    } else {
        char what[64];
        if (!topic) {
            snprintf(what, sizeof what, "%s.%s", *s_jstr(ev, "step") ? "step" : "saga",
                     s_jstr(ev, "state"));
            topic = what;
            tlen = strlen(what);
        }
        time_t t = (time_t)(s_jint(ev, "ts_ms") / 1000);
        struct tm tm;
        char ts[32];
        localtime_r(&t, &tm);
        strftime(ts, sizeof ts, "%H:%M:%S", &tm);
        printf("%8lld %s.%03lld %-30.*s %-30s %-14s", s_jint(ev, "seq"), ts,
               s_jint(ev, "ts_ms") % 1000, (int)tlen, topic, s_jstr(ev, "id"), s_jstr(ev, "step"));
        if (s_jint(ev, "attempt"))
            printf(" try %lld", s_jint(ev, "attempt"));
        if (*s_jstr(ev, "reason"))
            printf("  %s", s_jstr(ev, "reason"));
        printf("\n");
    }
    fflush(stdout);
}

/* Print every event after *last from the journal, page by page, up to
   the newest; *last moves to the last one printed. 0, -1 if zsagad
   refused, 1 if it did not answer (both said). */
static int s_catch_up(const s_opts_t *o, uint64_t *last)
{
    for (;;) {
        msg_t m;
        msg_init(&m, MSG_EVENTS);
        m.seq = *last;
        m.limit = 1000;
        json_t *r = s_simple(o, &m);
        if (!r)
            return 1; /* said; zsagad may be restarting: the caller asks again */
        if (s_check(r, o)) {
            json_decref(r);
            return -1;
        }
        uint64_t first = (uint64_t)s_jint(r, "first"), next = (uint64_t)s_jint(r, "next"),
                 head = (uint64_t)s_jint(r, "head");
        if (first > *last + 1 && !o->json)
            fprintf(stderr,
                    "zsaga: events %llu to %llu are no longer in the journal (their sagas were "
                    "removed by retention)\n",
                    (unsigned long long)(*last + 1), (unsigned long long)(first - 1));
        json_t *evs = json_object_get(r, "events"), *ev;
        size_t i;
        json_array_foreach(evs, i, ev) s_print_event(o, ev, NULL, 0);
        size_t n = json_array_size(evs);
        json_decref(r);
        if (next > *last)
            *last = next;
        if (!n || *last >= head)
            return 0;
    }
}

/* Follow the event stream. With --from SEQ, everything after SEQ is read
   from the journal first, and any gap in the live stream (events dropped
   for a slow reader, or zsagad restarted) is filled the same way: each
   event is printed once, in order. */
static int s_watch(const s_opts_t *o)
{
    zsock_t *sub = s_connect(o, ZMQ_SUB, o->events);
    if (!sub)
        return 2;
    zsock_set_subscribe(sub, "");
    uint64_t last = o->from;
    if (o->from_set) {
        zclock_sleep(200); /* the subscription reaches zsagad before we read */
        /* A refusal ends the watch; no answer (zsagad restarting, its
           request lost with the old process) is asked again once the
           stream goes quiet, as any gap is. */
        if (s_catch_up(o, &last) < 0) {
            zsock_destroy(&sub);
            return EXIT_REFUSED;
        }
    }
    zpoller_t *poller = zpoller_new(sub, NULL);
    while (!zsys_interrupted) {
        if (!zpoller_wait(poller, 1000)) {
            if (zpoller_terminated(poller))
                break;
            /* Quiet: a reader that resumes asks whether it missed anything
               (a zsagad restart drops the subscription's queue). */
            if (o->from_set && s_catch_up(o, &last) != 0)
                zclock_sleep(1000);
            continue;
        }
        zmsg_t *msg = zmsg_recv(sub);
        if (!msg)
            break;
        zframe_t *topic = zmsg_first(msg), *body = zmsg_next(msg);
        if (topic && body) {
            mp_reader_t r;
            mp_reader_init(&r, zframe_data(body), zframe_size(body));
            json_t *ev = msg_mp_to_json(&r, 0);
            uint64_t seq = (uint64_t)s_jint(ev, "seq");
            if (!o->from_set || seq == 0) /* seq 0: an alert, not journaled */
                s_print_event(o, ev, (const char *)zframe_data(topic), zframe_size(topic));
            else if (seq > last) {
                if (seq > last + 1)
                    s_catch_up(o, &last); /* a gap: read it from the journal */
                if (seq > last) {
                    s_print_event(o, ev, (const char *)zframe_data(topic), zframe_size(topic));
                    last = seq;
                }
            }
            json_decref(ev);
        }
        zmsg_destroy(&msg);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&sub);
    return 0;
}

/* A console token for this key, and the URL that signs the browser in. */
static int s_login(const s_opts_t *o)
{
    msg_t m;
    msg_init(&m, MSG_LOGIN);
    json_t *r = s_simple(o, &m);
    if (!r)
        return EXIT_NO_ANSWER;
    int rc = s_check(r, o);
    if (!rc) {
        if (o->json) {
            s_print_json(r);
        } else {
            time_t t = (time_t)(s_jint(r, "expires_ms") / 1000);
            struct tm tm;
            char when[32];
            localtime_r(&t, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
            /* zsagad names its console's address; --console overrides it
               (a proxy in front, a tunnel from elsewhere). */
            const char *url = o->console ? o->console : s_jstr(r, "url");
            size_t n = strlen(url);
            printf("%.*s/#token=%s\n", (int)(n && url[n - 1] == '/' ? n - 1 : n), url,
                   s_jstr(r, "token"));
            fprintf(stderr,
                    "open that URL in a browser on this host (valid until %s; anyone with it "
                    "acts as your key)\n",
                    when);
        }
    }
    json_decref(r);
    return rc;
}

static int s_alerts(const s_opts_t *o)
{
    msg_t m;
    msg_init(&m, MSG_ALERTS);
    json_t *r = s_simple(o, &m);
    if (!r)
        return EXIT_NO_ANSWER;
    int rc = s_check(r, o);
    if (!rc && o->json)
        s_print_json(json_object_get(r, "alerts"));
    else if (!rc) {
        json_t *a;
        size_t i;
        int firing = 0;
        printf("%-22s %-30s %-9s %-9s %10s %10s  %s\n", "RULE", "SUBJECT", "STATE", "LEVEL",
               "WARNING", "CRITICAL", "MESSAGE");
        json_array_foreach(json_object_get(r, "alerts"), i, a)
        {
            const char *st = s_jstr(a, "state");
            firing += strcmp(st, "firing") == 0;
            printf("%-22s %-30s %-9s %-9s %10g %10g  %s\n", s_jstr(a, "rule"),
                   *s_jstr(a, "subject") ? s_jstr(a, "subject") : "-", st, s_jstr(a, "level"),
                   json_number_value(json_object_get(a, "warning")),
                   json_number_value(json_object_get(a, "critical")), s_jstr(a, "message"));
        }
        printf("%d firing\n", firing);
    }
    json_decref(r);
    return rc;
}

/* ---- keys ------------------------------------------------------------- */

static int s_keygen(const s_opts_t *o, const char *name)
{
    static const char *roles[] = { "worker", "submit", "operator", "admin", "server" };
    char err[1024];
    bool known = false;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        known |= o->role && strcmp(o->role, roles[i]) == 0;
    if (!known)
        return s_die(2, "keygen needs --role worker|submit|operator|admin|server");
    if (!msg_id_valid(name, strlen(name)))
        return s_die(2, "a key's name is 1-%d characters of [A-Za-z0-9._:-]", MSG_ID_MAX);
    if (strcmp(o->role, "worker") == 0 && (!o->systems || !*o->systems))
        return s_die(2, "a worker key needs --systems (the systems it may serve)");
    if (strcmp(o->role, "worker") != 0 && (o->systems || o->operations))
        return s_die(2, "--systems and --operations are for worker keys");
    const char *meta[] = { "role", o->role, "systems", o->systems, "operations", o->operations };
    if (zkeys_generate(o->dir ? o->dir : ".", name, meta, 6, err, sizeof err))
        return s_die(1, "keygen: %s", err);
    bool server = strcmp(o->role, "server") == 0;
    printf("%s/%s.key          public: %s\n"
           "%s/%s.key_secret   secret (mode 0600): stays with its holder\n",
           o->dir ? o->dir : ".", name,
           server ? "workers and clients take it as --server-key"
                  : "copy it into zsagad's authorized directory",
           o->dir ? o->dir : ".", name);
    return 0;
}

static void s_usage(FILE *f)
{
    fprintf(
        f, "usage: zsaga [options] COMMAND [ARGS]\n"
           "commands:\n"
           "  submit FILE|-              submit a saga written in JSON (docs/protocol.md)\n"
           "  run FILE|-                 submit, wait for the end, print the status\n"
           "  status ID                  one saga: steps, tries, timings, timeline\n"
           "  wait ID                    wait until the saga ends\n"
           "  list [--state S]           sagas, newest first: by state (running, compensating,\n"
           "                             completed, compensated, parked, resolved), created\n"
           "                             --since/--until (ms since the epoch, or an age like\n"
           "                             90m or 7d), a page of --limit at a time (--cursor\n"
           "                             from the last page, or --all for every page)\n"
           "  systems                    systems, their live workers, each operation's params\n"
           "                             and outputs\n"
           "  archive list|verify FILE...    sagas in archive files, or check their checksums\n"
           "  archive show FILE... --saga ID one archived saga, as status shows it\n"
           "  watch [--saga ID] [--from SEQ]  follow the event stream; with --from, first\n"
           "                             every event after SEQ from the journal, and any\n"
           "                             gap filled from it: each event once, in order\n"
           "  alerts                     the alert rules and what fires now\n"
           "  login [--console URL]      a console token for your key: prints the URL that\n"
           "                             opens the web console (zsagad's own address, or URL)\n"
           "  cancel ID [--reason TEXT]  stop a running saga and undo what it did\n"
           "  retry ID                   give a parked saga's compensations new tries\n"
           "  resolve ID --note TEXT     close a parked saga by hand (the note is required)\n"
           "  backup NAME                hot backup of the running journal into NAME under\n"
           "                             zsagad's backup directory (admin key)\n"
           "  restore BACKUP DATA        put a backup in place (zsagad stopped)\n"
           "  stats                      orchestrator counters\n"
           "  keygen NAME --role ROLE [--systems LIST] [--operations LIST] [--dir DIR]\n"
           "                             write NAME.key and NAME.key_secret; ROLE is worker,\n"
           "                             submit, operator, admin, or server (zsagad's own)\n"
           "options:\n"
           "  --config FILE   read options from FILE first (INI, [client]); also $ZSAGA_CONFIG\n"
           "  --endpoint EP   zsagad client socket (default tcp://127.0.0.1:5570); several,\n"
           "                  comma-separated: an active zsagad and its standbys\n"
           "  --events EP     event stream (default tcp://127.0.0.1:5572)\n"
           "  --key FILE      your key pair (NAME.key_secret); also $ZSAGA_KEY\n"
           "  --server-key F  zsagad's public key (zsagad.key); also $ZSAGA_SERVER_KEY\n"
           "  --insecure      plaintext, no keys: only against a zsagad run --insecure\n"
           "  --timeout MS    wait this long for an answer (default 5000)\n"
           "  --wait-s S      run/wait: give up after S seconds (default 60)\n"
           "  --limit N       list: at most N sagas a page (default 100, at most 10000)\n"
           "  --json          JSON output for scripts\n"
           "  --version       print the version\n"
           "exit status:\n"
           "  0 done (run/wait: the saga completed)   4 run/wait: gave up waiting (--wait-s)\n"
           "  1 zsagad refused or failed the request  5 run/wait: the saga compensated\n"
           "  2 bad usage or input                    6 run/wait: the saga parked\n"
           "  3 zsagad did not answer                 7 run/wait: the saga was resolved by hand\n");
}

typedef struct {
    s_opts_t *o;
    int *wait_s;
} s_parse_t;

static int s_apply(void *arg, int c, const char *v)
{
    s_parse_t *p = arg;
    s_opts_t *o = p->o;
    char *end;
    long n;
    const char *keep = zcfg_keep(v);
    if (v && !keep)
        return -1; /* out of memory */
    switch (c) {
    case 'C': return 0;
    case 'e': o->endpoint = keep; return 0;
    case 'E': o->events = keep; return 0;
    case 'k': o->key = keep; return 0;
    case 'K': o->server_key = keep; return 0;
    case 'X': o->insecure = true; return 0;
    case 'R': o->role = keep; return 0;
    case 'Y': o->systems = keep; return 0;
    case 'O': o->operations = keep; return 0;
    case 'D': o->dir = keep; return 0;
    case 't':
    case 'w':
    case 'l':
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < 1 || n > (c == 'l' ? 10000 : 100000000)) {
            fprintf(stderr, "zsaga: --%s takes a whole number from 1 to %d, not '%s'\n",
                    c == 't'   ? "timeout"
                    : c == 'w' ? "wait-s"
                               : "limit",
                    c == 'l' ? 10000 : 100000000, v);
            return -1;
        }
        if (c == 't')
            o->timeout_ms = (int)n;
        else if (c == 'w')
            *p->wait_s = (int)n;
        else
            o->limit = (uint32_t)n;
        return 0;
    case 'j': o->json = true; return 0;
    case 'A': o->all = true; return 0;
    case 'c': o->cursor = keep; return 0;
    case 'V': o->version = true; return 0;
    case 'F':
    case 'U': {
        /* ms since the epoch, or an age: now minus a duration. */
        uint64_t v64;
        char *e;
        errno = 0;
        unsigned long long abs_ms = strtoull(v, &e, 10);
        if (!errno && e != v && !*e && v[0] != '-')
            v64 = abs_ms;
        else if (zcfg_duration(v, &v64) == 0) {
            uint64_t now = (uint64_t)zclock_time();
            v64 = v64 < now ? now - v64 : 0;
        } else {
            fprintf(stderr, "zsaga: --%s takes ms since the epoch or an age like 90m, not '%s'\n",
                    c == 'F' ? "since" : "until", v);
            return -1;
        }
        *(c == 'F' ? &o->since_ms : &o->until_ms) = v64;
        return 0;
    }
    case 's': o->state = keep; return 0;
    case 'r': o->reason = keep; return 0;
    case 'S': o->saga = keep; return 0;
    case 'f': {
        errno = 0;
        unsigned long long seq = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-') {
            fprintf(stderr, "zsaga: --from takes an event sequence number, not '%s'\n", v);
            return -1;
        }
        o->from = seq;
        o->from_set = true;
        return 0;
    }
    case 'W': o->console = keep; return 0;
    default: return -1;
    }
}

int main(int argc, char **argv)
{
    s_opts_t o = { .endpoint = "tcp://127.0.0.1:5570",
                   .events = "tcp://127.0.0.1:5572",
                   .key = getenv("ZSAGA_KEY"),
                   .server_key = getenv("ZSAGA_SERVER_KEY"),
                   .timeout_ms = 5000,
                   .limit = 100 };
    int wait_s = 60;
    s_parse_t parse = { &o, &wait_s };
    static const struct option opts[] = {
        { "config", required_argument, 0, 'C' },
        { "endpoint", required_argument, 0, 'e' },
        { "events", required_argument, 0, 'E' },
        { "key", required_argument, 0, 'k' },
        { "server-key", required_argument, 0, 'K' },
        { "insecure", no_argument, 0, 'X' },
        { "timeout", required_argument, 0, 't' },
        { "wait-s", required_argument, 0, 'w' },
        { "json", no_argument, 0, 'j' },
        { "state", required_argument, 0, 's' },
        { "limit", required_argument, 0, 'l' },
        { "reason", required_argument, 0, 'r' },
        { "note", required_argument, 0, 'r' },
        { "saga", required_argument, 0, 'S' },
        { "from", required_argument, 0, 'f' },
        { "console", required_argument, 0, 'W' },
        { "role", required_argument, 0, 'R' },
        { "systems", required_argument, 0, 'Y' },
        { "operations", required_argument, 0, 'O' },
        { "dir", required_argument, 0, 'D' },
        { "cursor", required_argument, 0, 'c' },
        { "since", required_argument, 0, 'F' },
        { "until", required_argument, 0, 'U' },
        { "all", no_argument, 0, 'A' },
        { "version", no_argument, 0, 'V' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    char cerr[1024];
    int prc = zcfg_parse(argc, argv, "client", getenv("ZSAGA_CONFIG"), opts, s_apply, &parse, cerr,
                         sizeof cerr);
    if (prc == ZCFG_HELP) {
        s_usage(stdout);
        return 0;
    }
    if (prc) {
        if (cerr[0])
            return s_die(2, "%s", cerr);
        s_usage(stderr);
        return 2;
    }
    if (o.version) {
        printf("zsaga %s (protocol %d)\n", ZSAGA_VERSION, MSG_VERSION);
        return 0;
    }
    if (optind >= argc) {
        s_usage(stderr);
        return 2;
    }
    zsys_set_logstream(NULL);
    const char *cmd = argv[optind], *a1 = optind + 1 < argc ? argv[optind + 1] : NULL,
               *a2 = optind + 2 < argc ? argv[optind + 2] : NULL;
    static const char *known[] = { "submit",  "run",     "status",  "wait",   "list",   "watch",
                                   "cancel",  "retry",   "resolve", "keygen", "backup", "stats",
                                   "restore", "systems", "archive", "login",  "alerts" };
    bool is_known = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        is_known |= strcmp(cmd, known[i]) == 0;
    if (!is_known)
        return s_die(2, "unknown command '%s' (see zsaga --help)", cmd);
    for (const char *ep = o.endpoint; ep; ep = ep == o.endpoint ? o.events : NULL)
        if (!strstr(ep, "://"))
            return s_die(2, "endpoint '%s' needs a transport: tcp://HOST:PORT or ipc://PATH", ep);
    bool need1 = strcmp(cmd, "list") && strcmp(cmd, "watch") && strcmp(cmd, "stats") &&
                 strcmp(cmd, "systems") && strcmp(cmd, "login") && strcmp(cmd, "alerts");
    if (need1 && !a1)
        return s_die(2, "%s needs an argument (see zsaga --help)", cmd);
    if (!(o.zc = zsc_new(o.endpoint, o.key, o.server_key, o.insecure, o.timeout_ms, cerr,
                         sizeof cerr)))
        return s_die(2, "%s", cerr);
    int rc;
    if (strcmp(cmd, "submit") == 0)
        rc = s_submit(&o, a1, 0);
    else if (strcmp(cmd, "run") == 0)
        rc = s_submit(&o, a1, wait_s);
    else if (strcmp(cmd, "status") == 0)
        rc = s_status(&o, a1, true);
    else if (strcmp(cmd, "wait") == 0)
        rc = s_wait(&o, a1, wait_s);
    else if (strcmp(cmd, "list") == 0)
        rc = s_list(&o);
    else if (strcmp(cmd, "watch") == 0)
        rc = s_watch(&o);
    else if (strcmp(cmd, "cancel") == 0)
        rc = s_op(&o, MSG_CANCEL, a1);
    else if (strcmp(cmd, "retry") == 0)
        rc = s_op(&o, MSG_RETRY, a1);
    else if (strcmp(cmd, "resolve") == 0) {
        if (!o.reason || !*o.reason)
            rc = s_die(2, "resolve needs --note TEXT: what was done by hand, for the record");
        else
            rc = s_op(&o, MSG_RESOLVE, a1);
    } else if (strcmp(cmd, "keygen") == 0)
        rc = s_keygen(&o, a1);
    else if (strcmp(cmd, "backup") == 0)
        rc = s_op(&o, MSG_BACKUP, a1);
    else if (strcmp(cmd, "stats") == 0)
        rc = s_stats(&o);
    else if (strcmp(cmd, "systems") == 0)
        rc = s_systems(&o);
    else if (strcmp(cmd, "login") == 0)
        rc = s_login(&o);
    else if (strcmp(cmd, "alerts") == 0)
        rc = s_alerts(&o);
    else if (strcmp(cmd, "archive") == 0)
        rc = s_archive(&o, argc - optind - 1, argv + optind + 1);
    else if (strcmp(cmd, "restore") == 0) {
        char err[1024];
        if (!a2)
            rc = s_die(2, "restore needs BACKUP_DIR and DATA_DIR");
        else if (jnl_restore(a1, a2, err, sizeof err))
            rc = s_die(1, "restore: %s", err);
        else {
            printf("restored %s into %s\n", a1, a2);
            rc = 0;
        }
    } else
        rc = 2; /* not reached: checked above */
    zsc_destroy(&o.zc);
    zsys_shutdown();
    return rc;
}
