/*  zcfg: config files. See zcfg.h. */
#include "zcfg.h"

#include <ctype.h>

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct {
    const char *section;
    const struct option *opts;
    zcfg_apply_fn apply;
    void *arg;
    char *err;
    size_t errlen;
    int failed;
} s_state_t;

static int s_truth(const char *v)
{
    if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "on"))
        return 1;
    if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "off"))
        return 0;
    return -1;
}

/* libinih reports the line of the first handler that returns 0; the
   message is finished with it in zcfg_load. */
static int s_handler(void *user, const char *section, const char *name, const char *value)
{
    s_state_t *s = user;
    if (s->failed)
        return 0;
    if (*section && strcmp(section, s->section) != 0) {
        snprintf(s->err, s->errlen, "section [%s] is not for %s (use [%s])", section, s->section,
                 s->section);
        s->failed = 1;
        return 0;
    }
    if (!name) /* a section header alone */
        return 1;
    const struct option *o = s->opts;
    while (o->name && strcmp(o->name, name) != 0)
        o++;
    if (!o->name || strcmp(name, "config") == 0 || strcmp(name, "help") == 0) {
        snprintf(s->err, s->errlen, "unknown setting '%s'", name);
        s->failed = 1;
        return 0;
    }
    if (o->has_arg == no_argument) {
        int t = s_truth(value);
        if (t < 0) {
            snprintf(s->err, s->errlen, "%s takes yes or no, not '%s'", name, value);
            s->failed = 1;
            return 0;
        }
        if (!t)
            return 1;
        value = NULL;
    }
    if (s->apply(s->arg, o->val, value)) {
        snprintf(s->err, s->errlen, "bad value for %s", name);
        s->failed = 1;
        return 0;
    }
    return 1;
}

int zcfg_load(const char *path, const char *section, const struct option *opts, zcfg_apply_fn apply,
              void *arg, char *err, size_t errlen)
{
    s_state_t s = { section, opts, apply, arg, err, errlen, 0 };
    int rc = ini_parse(path, s_handler, &s);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : ENOENT));
        return -1;
    }
    if (s.failed) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, errlen, "%s: line %d: %s", path, rc, tmp);
        return -1;
    }
    if (rc > 0) {
        snprintf(err, errlen, "%s: line %d: not a 'key = value' line", path, rc);
        return -1;
    }
    return 0;
}

static const char *s_find(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

int zcfg_parse(int argc, char **argv, const char *section, const char *default_conf,
               const struct option *opts, zcfg_apply_fn apply, void *arg, char *err, size_t errlen)
{
    const char *conf = s_find(argc, argv);
    err[0] = 0;
    if (!conf)
        conf = default_conf;
    if (conf && *conf && zcfg_load(conf, section, opts, apply, arg, err, errlen))
        return -1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return ZCFG_HELP;
        if (c == '?' || apply(arg, c, optarg))
            return -1;
    }
    return 0;
}

int zcfg_read_secret(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    struct stat st;
    FILE *f = fopen(path, "r");
    if (!f || fstat(fileno(f), &st)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "%s holds a secret and may be read by others (mode %04o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        fclose(f);
        return -1;
    }
    if (!fgets(out, (int)outlen, f)) {
        snprintf(err, errlen, "%s is empty", path);
        fclose(f);
        return -1;
    }
    fclose(f);
    size_t n = strcspn(out, "\r\n");
    if (out[n] == 0 && n == outlen - 1) {
        snprintf(err, errlen, "%s: first line longer than %zu bytes", path, outlen - 1);
        return -1;
    }
    out[n] = 0;
    return 0;
}

const char *zcfg_keep(const char *v)
{
    /* Kept in a static list so they stay reachable (no leak reports). */
    static char **kept;
    static size_t n, cap;
    if (!v)
        return NULL;
    if (n == cap) {
        char **k = realloc(kept, (cap ? cap * 2 : 32) * sizeof *k);
        if (!k)
            return NULL;
        kept = k;
        cap = cap ? cap * 2 : 32;
    }
    return kept[n++] = strdup(v);
}

int zcfg_duration(const char *v, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
    char *end;
    if (!v || !isdigit((unsigned char)v[0]))
        return -1;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno)
        return -1;
    if (!*end && n == 0) {
        *ms = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0) {
            if (n > UINT64_MAX / units[i].ms)
                return -1;
            *ms = n * units[i].ms;
            return 0;
        }
    return -1;
}
