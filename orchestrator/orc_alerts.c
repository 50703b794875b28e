/*  orc_alerts: threshold rules, states and notifications. See orc_alerts.h.

    DESIGN: every evaluation takes a snapshot of the cumulative counters
    (per system: step outcomes and the latency histogram; sagas ended well
    and badly; workers lost; compensation retries) into a ring. A
    windowed value is the newest snapshot minus the oldest one inside the
    window, so nothing is kept per event and a rate costs a subtraction.
*/
#include "orc_alerts.h"
#include "common/zlog.h"
#include "orc_registry.h"

#include <curl/curl.h>
#include <jansson.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SUBJECTS_MAX 512
#define SNAPS        128 /* ring of snapshots: a window of up to ~2 minutes at 1 s */
#define MIN_OUTCOMES 20  /* a rate needs this many outcomes in the window */
#define CHILDREN_MAX 8
#define QUEUE_MAX    256

enum {
    R_STEP_LATENCY,
    R_POOL_USAGE,
    R_STEP_FAILURE,
    R_SAGA_FAILURE,
    R_JOURNAL,
    R_MEMORY,
    R_PARKED,
    R_LOST,
    R_COMP_RETRIES,
    R_N
};

typedef struct {
    const char *name, *unit, *what;
    double warn, crit;
    bool off;
} s_rule_t;

static const s_rule_t s_defaults[R_N] = {
    { "step_latency", "ms", "p95 step latency", 500, 2000, false },
    { "pool_usage", "%", "connection pool in use", 80, 95, false },
    { "step_failure_rate", "%", "steps failed", 1, 5, false },
    { "saga_failure_rate", "%", "sagas compensated or parked", 1, 5, false },
    { "journal_usage", "%", "journal in use", 85, 95, false },
    { "memory", "%", "resident memory of the limit", 80, 90, false },
    { "parked_sagas", "", "sagas parked", 1, 10, false },
    { "workers_lost", "", "workers lost", 1, 3, false },
    { "compensation_retries", "", "compensation retries and timeouts", 1, 10, false },
};

typedef struct {
    int rule;
    char subject[104];
    int level; /* 0 ok, 1 warning, 2 critical */
    double value;
    uint64_t since_ms, changes;
    char message[256];
    bool seen; /* evaluated this round */
} s_state_t;

typedef struct {
    char system[MSG_NAME_MAX + 1];
    uint64_t ok, failed;
    zhist_t lat;
} s_sys_t;

typedef struct {
    uint64_t mono_ms;
    s_sys_t *sys;
    size_t nsys;
    uint64_t sagas_ok, sagas_bad, lost, comp_retries;
} s_snap_t;

typedef struct {
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *queue[QUEUE_MAX];
    size_t head, len;
    bool stop;
    char url[1024];
    uint64_t sent, failed, dropped; /* under mu */
} s_hook_t;

struct orc_alerts_s {
    orc_alerts_config_t cfg;
    s_rule_t rules[R_N];
    s_state_t st[SUBJECTS_MAX];
    size_t nst;
    s_snap_t ring[SNAPS];
    size_t ring_head, ring_len;
    orc_alert_change_t *changes;
    size_t nchanges, capchanges;
    pid_t children[CHILDREN_MAX];
    uint64_t commands_run, commands_failed, commands_dropped;
    s_hook_t hook;
};

/* ---- the webhook thread --------------------------------------------------- */

static size_t s_discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p, (void)arg;
    return size * n;
}

static void s_reap(orc_alerts_t *a);

static void *s_hook_thread(void *arg)
{
    s_hook_t *h = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->len && !h->stop)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->stop)
            break; /* what is still queued is not worth holding a shutdown for */
        char *body = h->queue[h->head];
        h->head = (h->head + 1) % QUEUE_MAX;
        h->len--;
        pthread_mutex_unlock(&h->mu);
        CURLcode rc = CURLE_FAILED_INIT;
        long status = 0;
        if (c) {
            curl_easy_setopt(c, CURLOPT_URL, h->url);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_discard);
            curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
            rc = curl_easy_perform(c);
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        }
        bool ok = rc == CURLE_OK && status >= 200 && status < 300;
        if (!ok)
            zlog_warn("alert webhook %s: %s", h->url,
                      rc != CURLE_OK ? curl_easy_strerror(rc) : "answered a non-2xx status");
        free(body);
        pthread_mutex_lock(&h->mu);
        if (ok)
            h->sent++;
        else
            h->failed++;
    }
    pthread_mutex_unlock(&h->mu);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return NULL;
}

static void s_hook_post(s_hook_t *h, char *body)
{
    pthread_mutex_lock(&h->mu);
    if (h->len == QUEUE_MAX) {
        h->dropped++;
        free(body);
    } else {
        h->queue[(h->head + h->len++) % QUEUE_MAX] = body;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
}

/* ---- setup ------------------------------------------------------------------ */

orc_alerts_t *orc_alerts_new(const orc_alerts_config_t *cfg, char *err, size_t errlen)
{
    orc_alerts_t *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    if (!a->cfg.window_ms)
        a->cfg.window_ms = 60000;
    memcpy(a->rules, s_defaults, sizeof s_defaults);
    pthread_mutex_init(&a->hook.mu, NULL);
    pthread_cond_init(&a->hook.cv, NULL);
    if (cfg->webhook) {
        if (strncmp(cfg->webhook, "http://", 7) && strncmp(cfg->webhook, "https://", 8)) {
            snprintf(err, errlen, "alert webhook '%s' is not an http:// or https:// URL",
                     cfg->webhook);
            orc_alerts_destroy(&a);
            return NULL;
        }
        snprintf(a->hook.url, sizeof a->hook.url, "%s", cfg->webhook);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (pthread_create(&a->hook.thread, NULL, s_hook_thread, &a->hook)) {
            snprintf(err, errlen, "cannot start the webhook thread");
            orc_alerts_destroy(&a);
            return NULL;
        }
        a->hook.running = true;
    }
    return a;
}

void orc_alerts_destroy(orc_alerts_t **self_p)
{
    orc_alerts_t *a = *self_p;
    if (!a)
        return;
    if (a->hook.running) {
        /* The post in flight ends within its 5 s timeout; what is still
           queued is dropped and said so: a receiver that is down must not
           hold a shutdown (a queue of 256 at 5 s each would be 21 min). */
        pthread_mutex_lock(&a->hook.mu);
        a->hook.stop = true;
        pthread_cond_signal(&a->hook.cv);
        pthread_mutex_unlock(&a->hook.mu);
        pthread_join(a->hook.thread, NULL);
        curl_global_cleanup();
        if (a->hook.len)
            zlog_warn("%zu alert notifications not sent to the webhook: shutting down",
                      a->hook.len);
    }
    for (size_t i = 0; i < a->hook.len; i++)
        free(a->hook.queue[(a->hook.head + i) % QUEUE_MAX]);
    /* Commands still running are left to finish on their own (init reaps
       them): a command that hangs must not hang zsagad's shutdown. */
    s_reap(a);
    for (size_t i = 0; i < SNAPS; i++)
        free(a->ring[i].sys);
    pthread_mutex_destroy(&a->hook.mu);
    pthread_cond_destroy(&a->hook.cv);
    free(a->changes);
    free(a);
    *self_p = NULL;
}

int orc_alerts_set(orc_alerts_t *a, const char *spec, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    int r = -1;
    for (int i = 0; eq && i < R_N; i++)
        if (strlen(a->rules[i].name) == (size_t)(eq - spec) &&
            strncmp(a->rules[i].name, spec, (size_t)(eq - spec)) == 0)
            r = i;
    if (r < 0) {
        snprintf(err, errlen,
                 "alert '%s' is not RULE=WARN,CRIT or RULE=off with RULE one of step_latency, "
                 "pool_usage, step_failure_rate, saga_failure_rate, journal_usage, memory, "
                 "parked_sagas, workers_lost, compensation_retries",
                 spec);
        return -1;
    }
    if (strcmp(eq + 1, "off") == 0) {
        a->rules[r].off = true;
        return 0;
    }
    char *end;
    errno = 0;
    double w = strtod(eq + 1, &end), c;
    if (errno || *end != ',' || w < 0 || (c = strtod(end + 1, &end), errno || *end) || c < w) {
        snprintf(err, errlen, "alert '%s': levels are WARN,CRIT, numbers with WARN <= CRIT", spec);
        return -1;
    }
    a->rules[r].warn = w;
    a->rules[r].crit = c;
    a->rules[r].off = false;
    return 0;
}

/* ---- evaluation ------------------------------------------------------------- */

/* zsagad's resident bytes, and the memory it may use: its cgroup's
   limit, or the machine's. -1 if unknown. */
static double s_memory_pct_of(double *resident_out, double *limit_out)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long size, resident, limit = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2)
        return -1;
    if ((f = fopen("/sys/fs/cgroup/memory.max", "r"))) {
        if (fscanf(f, "%llu", &limit) != 1)
            limit = 0; /* "max": no limit of its own */
        fclose(f);
    }
    if (!limit && (f = fopen("/proc/meminfo", "r"))) {
        unsigned long long kb;
        if (fscanf(f, "MemTotal: %llu kB", &kb) == 1)
            limit = kb * 1024;
        fclose(f);
    }
    *resident_out = (double)(resident * (unsigned long long)page);
    *limit_out = (double)limit;
    return limit ? 100.0 * *resident_out / (double)limit : -1;
}

static double s_memory_pct(void)
{
    double r, l;
    return s_memory_pct_of(&r, &l);
}

static s_state_t *s_state(orc_alerts_t *a, int rule, const char *subject)
{
    for (size_t i = 0; i < a->nst; i++)
        if (a->st[i].rule == rule && strcmp(a->st[i].subject, subject) == 0)
            return &a->st[i];
    if (a->nst == SUBJECTS_MAX)
        return NULL;
    s_state_t *s = &a->st[a->nst++];
    memset(s, 0, sizeof *s);
    s->rule = rule;
    snprintf(s->subject, sizeof s->subject, "%s", subject);
    return s;
}

static const char *s_level_name(int level)
{
    return level == 2 ? "critical" : level == 1 ? "warning" : "ok";
}

static void s_env(char *buf, size_t n, const char *k, const char *v)
{
    snprintf(buf, n, "%s=%s", k, v);
}

static void s_notify(orc_alerts_t *a, const orc_alert_change_t *c)
{
    const s_rule_t *r = NULL;
    for (int i = 0; i < R_N; i++)
        if (strcmp(a->rules[i].name, c->rule) == 0)
            r = &a->rules[i];
    const char *kv[] = { "alert", c->rule, "subject", c->subject, "severity", c->level, NULL };
    zlog_kv(c->firing ? (strcmp(c->level, "critical") == 0 ? ZLOG_ERROR : ZLOG_WARN) : ZLOG_INFO,
            kv, "alert %s: %s", c->firing ? "firing" : "resolved", c->message);
    if (a->cfg.webhook) {
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:I}", "rule", c->rule, "subject",
                      c->subject, "state", c->firing ? "firing" : "resolved", "level", c->level,
                      "message", c->message, "value", c->value, "warning", r ? r->warn : 0.0,
                      "critical", r ? r->crit : 0.0, "at_ms", (json_int_t)c->at_ms);
        char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (body)
            s_hook_post(&a->hook, body);
    }
    if (a->cfg.command) {
        int slot = -1;
        for (int i = 0; i < CHILDREN_MAX && slot < 0; i++)
            if (a->children[i] <= 0)
                slot = i;
        if (slot < 0) {
            a->commands_dropped++;
            return;
        }
        char e[6][320], value[32];
        snprintf(value, sizeof value, "%g", c->value);
        s_env(e[0], sizeof e[0], "ZSAGA_ALERT_RULE", c->rule);
        s_env(e[1], sizeof e[1], "ZSAGA_ALERT_SUBJECT", c->subject);
        s_env(e[2], sizeof e[2], "ZSAGA_ALERT_STATE", c->firing ? "firing" : "resolved");
        s_env(e[3], sizeof e[3], "ZSAGA_ALERT_LEVEL", c->level);
        s_env(e[4], sizeof e[4], "ZSAGA_ALERT_VALUE", value);
        s_env(e[5], sizeof e[5], "ZSAGA_ALERT_MESSAGE", c->message);
        /* The command's environment is zsagad's plus these six. */
        size_t n = 0;
        while (environ[n])
            n++;
        char **envp = calloc(n + 7, sizeof *envp);
        if (!envp)
            return;
        memcpy(envp, environ, n * sizeof *envp);
        for (int i = 0; i < 6; i++)
            envp[n + (size_t)i] = e[i];
        char *argv[] = { "/bin/sh", "-c", (char *)a->cfg.command, NULL };
        pid_t pid;
        if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, envp) == 0) {
            a->children[slot] = pid;
            a->commands_run++;
        } else
            a->commands_failed++;
        free(envp);
    }
}

static void s_reap(orc_alerts_t *a)
{
    for (int i = 0; i < CHILDREN_MAX; i++) {
        int status;
        if (a->children[i] > 0 && waitpid(a->children[i], &status, WNOHANG) == a->children[i]) {
            if (!WIFEXITED(status) || WEXITSTATUS(status))
                a->commands_failed++;
            a->children[i] = 0;
        }
    }
}

static void s_judge(orc_alerts_t *a, int rule, const char *subject, double value, uint64_t wall_ms,
                    const char *fmt_detail)
{
    const s_rule_t *r = &a->rules[rule];
    s_state_t *s = s_state(a, rule, subject);
    if (!s)
        return;
    s->seen = true;
    s->value = value;
    int level = r->off ? 0 : value >= r->crit ? 2 : value >= r->warn ? 1 : 0;
    if (level == s->level)
        return;
    bool firing = level > 0;
    if (value < 0) /* the subject went away: see the end of orc_alerts_eval */
        snprintf(s->message, sizeof s->message, "%s%s%s: no longer measured (%s)", r->what,
                 subject[0] ? " on " : "", subject, fmt_detail);
    else
        snprintf(s->message, sizeof s->message, "%s%s%s %.4g%s (warning %.4g, critical %.4g)%s%s",
                 r->what, subject[0] ? " on " : "", subject, value, r->unit, r->warn, r->crit,
                 fmt_detail ? "; " : "", fmt_detail ? fmt_detail : "");
    if (!s->level || !firing)
        s->since_ms = wall_ms;
    s->level = level;
    s->changes++;
    if (a->nchanges == a->capchanges) {
        size_t cap = a->capchanges ? 2 * a->capchanges : 16;
        orc_alert_change_t *c = realloc(a->changes, cap * sizeof *c);
        if (!c)
            return;
        a->changes = c;
        a->capchanges = cap;
    }
    orc_alert_change_t *c = &a->changes[a->nchanges++];
    memset(c, 0, sizeof *c);
    snprintf(c->rule, sizeof c->rule, "%s", r->name);
    snprintf(c->subject, sizeof c->subject, "%s", subject);
    snprintf(c->level, sizeof c->level, "%s", firing ? s_level_name(level) : "ok");
    snprintf(c->message, sizeof c->message, "%s", s->message);
    c->firing = firing;
    c->value = value;
    c->at_ms = wall_ms;
    s_notify(a, c);
}

/* Cumulative figures now, by system. */
static void s_snapshot(const orc_alerts_input_t *in, s_snap_t *sn)
{
    free(sn->sys);
    memset(sn, 0, sizeof *sn);
    const orc_stats_t *st = orc_engine_stats(in->engine);
    sn->sagas_ok = st->sagas_completed;
    sn->sagas_bad = st->sagas_compensated + st->sagas_parked;
    sn->lost = st->workers_lost;
    if (!in->metrics)
        return;
    orc_opm_t *o;
    size_t no = orc_metrics_ops(in->metrics, &o);
    if (!no || !(sn->sys = calloc(no, sizeof *sn->sys)))
        return;
    for (size_t i = 0; i < no; i++) {
        sn->comp_retries += o[i].comp[OM_RETRIED] + o[i].comp[OM_TIMED_OUT];
        s_sys_t *y = NULL;
        for (size_t k = 0; k < sn->nsys && !y; k++)
            if (strcmp(sn->sys[k].system, o[i].system) == 0)
                y = &sn->sys[k];
        if (!y) {
            y = &sn->sys[sn->nsys++];
            snprintf(y->system, sizeof y->system, "%s", o[i].system);
            zhist_init_latency(&y->lat);
        }
        y->ok += o[i].action[OM_SUCCEEDED];
        y->failed += o[i].action[OM_FAILED];
        for (uint32_t b = 0; b <= o[i].action_lat.nbounds; b++)
            y->lat.bucket[b] += o[i].action_lat.bucket[b];
        y->lat.count += o[i].action_lat.count;
    }
}

static const s_sys_t *s_find_sys(const s_snap_t *sn, const char *system)
{
    for (size_t k = 0; k < sn->nsys; k++)
        if (strcmp(sn->sys[k].system, system) == 0)
            return &sn->sys[k];
    return NULL;
}

size_t orc_alerts_eval(orc_alerts_t *a, const orc_alerts_input_t *in, uint64_t wall_ms,
                       uint64_t mono_ms, const orc_alert_change_t **changes)
{
    a->nchanges = 0;
    s_reap(a);
    /* The ring: the newest at ring_head - 1. */
    s_snap_t *now = &a->ring[a->ring_head];
    s_snapshot(in, now);
    now->mono_ms = mono_ms;
    a->ring_head = (a->ring_head + 1) % SNAPS;
    if (a->ring_len < SNAPS)
        a->ring_len++;
    /* The oldest snapshot still inside the window. */
    const s_snap_t *old = now;
    for (size_t i = 1; i < a->ring_len; i++) {
        const s_snap_t *s = &a->ring[(a->ring_head + SNAPS - 1 - i) % SNAPS];
        if (mono_ms - s->mono_ms > a->cfg.window_ms)
            break;
        old = s;
    }
    for (size_t i = 0; i < a->nst; i++)
        a->st[i].seen = false;

    char detail[128];
    for (size_t k = 0; k < now->nsys; k++) {
        const s_sys_t *y = &now->sys[k], *x = s_find_sys(old, y->system);
        uint64_t ok = y->ok - (x ? x->ok : 0), bad = y->failed - (x ? x->failed : 0);
        if (ok + bad >= MIN_OUTCOMES) {
            snprintf(detail, sizeof detail, "%llu of %llu steps in the window",
                     (unsigned long long)bad, (unsigned long long)(ok + bad));
            s_judge(a, R_STEP_FAILURE, y->system, 100.0 * (double)bad / (double)(ok + bad), wall_ms,
                    detail);
        }
        uint64_t p95 = zhist_quantile(&y->lat, x ? &x->lat : NULL, 0.95);
        if (y->lat.count - (x ? x->lat.count : 0) > 0)
            s_judge(a, R_STEP_LATENCY, y->system, (double)p95 / 1000, wall_ms, NULL);
    }
    uint64_t sok = now->sagas_ok - old->sagas_ok, sbad = now->sagas_bad - old->sagas_bad;
    if (sok + sbad >= MIN_OUTCOMES) {
        snprintf(detail, sizeof detail, "%llu of %llu sagas in the window",
                 (unsigned long long)sbad, (unsigned long long)(sok + sbad));
        s_judge(a, R_SAGA_FAILURE, "", 100.0 * (double)sbad / (double)(sok + sbad), wall_ms,
                detail);
    }
    s_judge(a, R_LOST, "", (double)(now->lost - old->lost), wall_ms, NULL);
    s_judge(a, R_COMP_RETRIES, "", (double)(now->comp_retries - old->comp_retries), wall_ms, NULL);
    if (in->journal_map)
        s_judge(a, R_JOURNAL, "", 100.0 * (double)in->journal_used / (double)in->journal_map,
                wall_ms, NULL);
    double mem = s_memory_pct();
    if (mem >= 0)
        s_judge(a, R_MEMORY, "", mem, wall_ms, NULL);
    s_judge(a, R_PARKED, "", (double)in->parked, wall_ms, NULL);

    /* Pools: each worker's heartbeat figures. */
    orc_registry_t *reg = orc_engine_registry(in->engine);
    for (orc_system_t *sys = orc_registry_systems(reg); sys; sys = sys->next)
        for (orc_worker_t *w = sys->workers; w; w = w->next) {
            mp_reader_t r;
            uint32_t n;
            char key[32], subject[104];
            uint64_t v, active = 0, max = 0;
            mp_reader_init(&r, w->metrics, w->metrics_len);
            if (!w->metrics_len || mp_read_map(&r, &n))
                continue;
            for (uint32_t i = 0; i < n && !r.err; i++) {
                if (mp_read_cstr(&r, key, sizeof key))
                    break;
                if (strcmp(key, "pool_active") == 0 && !mp_read_uint(&r, &v))
                    active = v;
                else if (strcmp(key, "pool_max") == 0 && !mp_read_uint(&r, &v))
                    max = v;
                else
                    mp_skip(&r, 1);
            }
            if (!max)
                continue;
            snprintf(subject, sizeof subject, "%s/%s", w->system, w->instance);
            snprintf(detail, sizeof detail, "%llu of %llu connections", (unsigned long long)active,
                     (unsigned long long)max);
            s_judge(a, R_POOL_USAGE, subject, 100.0 * (double)active / (double)max, wall_ms,
                    detail);
        }
    /* A subject that went away (a worker gone, a system idle for a whole
       window) resolves: nothing is left to alert on. */
    for (size_t i = 0; i < a->nst; i++)
        if (!a->st[i].seen && a->st[i].level) {
            double v = a->st[i].value;
            s_state_t *s = &a->st[i];
            char subject[104];
            snprintf(subject, sizeof subject, "%s", s->subject);
            s_judge(a, s->rule, subject, -1, wall_ms,
                    "too few outcomes in the window, or its worker is gone");
            s->value = v;
        }
    *changes = a->changes;
    return a->nchanges;
}

void orc_alerts_pack(orc_alerts_t *a, msgpack_packer *pk)
{
    /* Every rule once (its worst subject), and each subject that fired. */
    size_t n = R_N;
    for (size_t i = 0; i < a->nst; i++)
        if (a->st[i].changes)
            n++;
    msgpack_pack_array(pk, n);
    for (int r = 0; r < R_N; r++) {
        const s_rule_t *rule = &a->rules[r];
        msgpack_pack_map(pk, 9);
        mp_pack_kv_str(pk, "rule", rule->name);
        mp_pack_kv_str(pk, "subject", "");
        mp_pack_kv_str(pk, "state", rule->off ? "off" : "rule");
        mp_pack_kv_str(pk, "level", "");
        mp_pack_cstr(pk, "value");
        msgpack_pack_double(pk, 0);
        mp_pack_cstr(pk, "warning");
        msgpack_pack_double(pk, rule->warn);
        mp_pack_cstr(pk, "critical");
        msgpack_pack_double(pk, rule->crit);
        mp_pack_kv_uint(pk, "since_ms", 0);
        mp_pack_kv_str(pk, "message", rule->what);
    }
    for (size_t i = 0; i < a->nst; i++) {
        const s_state_t *s = &a->st[i];
        if (!s->changes)
            continue;
        const s_rule_t *rule = &a->rules[s->rule];
        msgpack_pack_map(pk, 9);
        mp_pack_kv_str(pk, "rule", rule->name);
        mp_pack_kv_str(pk, "subject", s->subject);
        mp_pack_kv_str(pk, "state", s->level ? "firing" : "resolved");
        mp_pack_kv_str(pk, "level", s->level ? s_level_name(s->level) : "");
        mp_pack_cstr(pk, "value");
        msgpack_pack_double(pk, s->value);
        mp_pack_cstr(pk, "warning");
        msgpack_pack_double(pk, rule->warn);
        mp_pack_cstr(pk, "critical");
        msgpack_pack_double(pk, rule->crit);
        mp_pack_kv_uint(pk, "since_ms", s->since_ms);
        mp_pack_kv_str(pk, "message", s->message);
    }
}

void orc_alerts_metrics(orc_alerts_t *a, zmx_t *b)
{
    double resident = 0, limit = 0;
    if (s_memory_pct_of(&resident, &limit) >= 0) {
        zmx_family(b, "zsaga_process_resident_bytes", "gauge", "zsagad's resident memory");
        zmx_sample(b, "zsaga_process_resident_bytes", NULL, resident);
        zmx_family(b, "zsaga_process_memory_limit_bytes", "gauge",
                   "the memory zsagad may use (its cgroup's limit, or the machine's)");
        zmx_sample(b, "zsaga_process_memory_limit_bytes", NULL, limit);
    }
    zmx_family(b, "zsaga_alerts_firing", "gauge",
               "1 for each alert firing, by rule, subject and level");
    for (size_t i = 0; i < a->nst; i++)
        if (a->st[i].level)
            zmx_sample(b, "zsaga_alerts_firing",
                       (const char *[]){ "rule", a->rules[a->st[i].rule].name, "subject",
                                         a->st[i].subject, "level", s_level_name(a->st[i].level),
                                         NULL },
                       1);
    pthread_mutex_lock(&a->hook.mu);
    uint64_t sent = a->hook.sent, failed = a->hook.failed, dropped = a->hook.dropped;
    pthread_mutex_unlock(&a->hook.mu);
    zmx_family(b, "zsaga_alert_notifications_total", "counter",
               "alert notifications by channel and outcome");
    zmx_sample(b, "zsaga_alert_notifications_total",
               (const char *[]){ "channel", "webhook", "outcome", "sent", NULL }, (double)sent);
    zmx_sample(b, "zsaga_alert_notifications_total",
               (const char *[]){ "channel", "webhook", "outcome", "failed", NULL }, (double)failed);
    zmx_sample(b, "zsaga_alert_notifications_total",
               (const char *[]){ "channel", "webhook", "outcome", "dropped", NULL },
               (double)dropped);
    zmx_sample(b, "zsaga_alert_notifications_total",
               (const char *[]){ "channel", "command", "outcome", "run", NULL },
               (double)a->commands_run);
    zmx_sample(b, "zsaga_alert_notifications_total",
               (const char *[]){ "channel", "command", "outcome", "failed", NULL },
               (double)a->commands_failed);
    zmx_sample(b, "zsaga_alert_notifications_total",
               (const char *[]){ "channel", "command", "outcome", "dropped", NULL },
               (double)a->commands_dropped);
}
