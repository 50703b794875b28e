/*  zcfg: one config file format for every program: INI, read by libinih.
    Every key is one of the program's long options, spelled as on the
    command line without the dashes; a flag takes yes/no:

        [zsagad]
        data = /var/lib/zsaga
        key = /etc/zsaga/zsagad.key_secret
        authorized = /etc/zsaga/authorized

    Keys may stand before any section or under the section named for the
    program. An unknown key or section is an error that names its line, so
    a typo never silently leaves a default in force. The file is read
    before the command line, whose options override it.
*/
#ifndef ZSAGA_ZCFG_H
#define ZSAGA_ZCFG_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

/* Apply one option (its getopt code and value); 0 or -1 with a message
   already printed. */
typedef int (*zcfg_apply_fn)(void *arg, int code, const char *value);

/* Read path, applying each key. Returns 0, or -1 with the reason in err. */
int zcfg_load(const char *path, const char *section, const struct option *opts, zcfg_apply_fn apply,
              void *arg, char *err, size_t errlen);

/* The config file (--config FILE in argv, else default_conf if not NULL
   or empty), then the command line through getopt_long, each option given
   to apply. Returns 0; ZCFG_HELP for --help (the caller prints its usage);
   or -1: err holds the reason, or is empty when a bad option was already
   reported by getopt or apply (print the usage). optind is left at the
   first argument that is not an option. */
#define ZCFG_HELP 1
int zcfg_parse(int argc, char **argv, const char *section, const char *default_conf,
               const struct option *opts, zcfg_apply_fn apply, void *arg, char *err, size_t errlen);

/* A copy of an option's value that lives to the end of the program (a
   config file's values do not outlive its parser). NULL if v is, or if
   memory ran out. */
const char *zcfg_keep(const char *v);

/* A duration: a whole number with a unit, ms, s, m, h or d ("90s", "7d");
   a bare "0" is zero. 0, or -1 (the caller names the option). */
int zcfg_duration(const char *v, uint64_t *ms);

/* Read the first line of a file (a database URI with its password, say),
   without its newline. Refuses a file others may read. 0 or -1. */
int zcfg_read_secret(const char *path, char *out, size_t outlen, char *err, size_t errlen);

#endif
