/*  zkeys: CURVE keys, in czmq's certificate format (zcert), for every
    program that talks to zsagad.

    A key pair is two files: NAME.key (public, with metadata) and
    NAME.key_secret (both keys; mode 0600, refused if others can read it).
    The metadata says who the holder is and what it may do:
        name    = "banking-1"          who, in logs and saga history
        role    = "worker"             worker, submit, operator, admin, server
        systems = "banking"            workers: systems it may serve
        operations = "debit_account,credit_account"   optional narrowing
    `zsaga keygen` writes them.

    Functions return NULL or -1 with a reason in err. Any thread.
*/
#ifndef ZSAGA_ZKEYS_H
#define ZSAGA_ZKEYS_H

#include <czmq.h>
#include <stdbool.h>

/* A key pair from NAME.key_secret (or NAME.key, whose _secret sibling is
   read). Refuses a secret file that group or others may read. */
zcert_t *zkeys_load_secret(const char *path, char *err, size_t errlen);
/* A public certificate (NAME.key). */
zcert_t *zkeys_load_public(const char *path, char *err, size_t errlen);

/* Make sock a CURVE client of the server whose public certificate is in
   server_path, with the key pair in key_path. Before connect. */
int zkeys_client(void *sock, const char *key_path, const char *server_path, char *err,
                 size_t errlen);
/* Test tools: zkeys_client with the key pair named by the environment
   variable key_env and zsagad's public key in ZSAGA_SERVER_KEY; nothing
   when ZSAGA_INSECURE is set (a zsagad run --insecure). */
int zkeys_client_env(void *sock, const char *key_env, char *err, size_t errlen);

/* Make sock a CURVE server with cert's secret key, whose ZAP requests
   name domain. Before bind. */
int zkeys_server(void *sock, zcert_t *cert, const char *domain);

/* Write NAME.key and NAME.key_secret in dir with this metadata (pairs of
   key, value; NULL values skipped). Refuses to overwrite. */
int zkeys_generate(const char *dir, const char *name, const char *const *meta, size_t nmeta,
                   char *err, size_t errlen);

/* Does the comma-separated list hold item? */
bool zkeys_list_has(const char *list, const char *item);

#endif
