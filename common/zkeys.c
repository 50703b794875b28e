/*  zkeys: CURVE certificates. See zkeys.h. */
#include "zkeys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static bool s_has_secret(zcert_t *cert)
{
    const byte *k = zcert_secret_key(cert);
    for (int i = 0; i < 32; i++)
        if (k[i])
            return true;
    return false;
}

zcert_t *zkeys_load_secret(const char *path, char *err, size_t errlen)
{
    char secret[1024];
    struct stat st;
    size_t n = strlen(path);
    /* Accept either name of the pair; the secret file is what we read. */
    if (n > 7 && strcmp(path + n - 7, "_secret") == 0)
        snprintf(secret, sizeof secret, "%s", path);
    else if (snprintf(secret, sizeof secret, "%s_secret", path) >= (int)sizeof secret) {
        snprintf(err, errlen, "key path too long: %s", path);
        return NULL;
    }
    if (stat(secret, &st)) {
        snprintf(err, errlen, "secret key %s: %s", secret, strerror(errno));
        return NULL;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "secret key %s may be read by others (mode %04o): chmod 600 it",
                 secret, (unsigned)(st.st_mode & 07777));
        return NULL;
    }
    zcert_t *cert = zcert_load(secret);
    if (!cert || !s_has_secret(cert)) {
        zcert_destroy(&cert);
        snprintf(err, errlen, "%s is not a CURVE secret key file (make one with zsaga keygen)",
                 secret);
        return NULL;
    }
    return cert;
}

zcert_t *zkeys_load_public(const char *path, char *err, size_t errlen)
{
    /* zcert_load prefers PATH_secret; a public file must be read as such. */
    zconfig_t *root = zconfig_load(path);
    char *pub = root ? zconfig_get(root, "/curve/public-key", NULL) : NULL;
    zcert_t *cert = NULL;
    byte key[32], none[32] = { 0 };
    if (pub && strlen(pub) == 40 && zmq_z85_decode(key, pub))
        cert = zcert_new_from(key, none);
    if (cert) {
        zconfig_t *meta = zconfig_locate(root, "/metadata");
        for (zconfig_t *item = meta ? zconfig_child(meta) : NULL; item; item = zconfig_next(item))
            zcert_set_meta(cert, zconfig_name(item), "%s", zconfig_value(item));
    } else
        snprintf(err, errlen, "%s is not a CURVE public key file (%s)", path,
                 root ? "no curve/public-key" : strerror(errno));
    zconfig_destroy(&root);
    return cert;
}

int zkeys_client(void *sock, const char *key_path, const char *server_path, char *err,
                 size_t errlen)
{
    if (!key_path || !*key_path || !server_path || !*server_path) {
        snprintf(err, errlen,
                 "no key given: --key FILE and --server-key FILE (or --insecure for a "
                 "plaintext test setup)");
        return -1;
    }
    zcert_t *mine = zkeys_load_secret(key_path, err, errlen);
    if (!mine)
        return -1;
    zcert_t *server = zkeys_load_public(server_path, err, errlen);
    if (!server) {
        zcert_destroy(&mine);
        return -1;
    }
    int rc = zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, zcert_public_key(mine), 32) ||
             zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, zcert_secret_key(mine), 32) ||
             zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, zcert_public_key(server), 32);
    if (rc)
        snprintf(err, errlen, "CURVE: %s", zmq_strerror(zmq_errno()));
    zcert_destroy(&mine);
    zcert_destroy(&server);
    return rc ? -1 : 0;
}

int zkeys_client_env(void *sock, const char *key_env, char *err, size_t errlen)
{
    const char *insecure = getenv("ZSAGA_INSECURE");
    if (insecure && *insecure)
        return 0;
    return zkeys_client(sock, getenv(key_env), getenv("ZSAGA_SERVER_KEY"), err, errlen);
}

int zkeys_server(void *sock, zcert_t *cert, const char *domain)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, zcert_secret_key(cert), 32) ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)))
        return -1;
    return 0;
}

int zkeys_generate(const char *dir, const char *name, const char *const *meta, size_t nmeta,
                   char *err, size_t errlen)
{
    char pub[1024], sec[1024];
    snprintf(pub, sizeof pub, "%s/%s.key", dir, name);
    snprintf(sec, sizeof sec, "%s/%s.key_secret", dir, name);
    if (access(pub, F_OK) == 0 || access(sec, F_OK) == 0) {
        snprintf(err, errlen, "%s already exists: not overwriting a key", pub);
        return -1;
    }
    zcert_t *cert = zcert_new();
    if (!cert) {
        snprintf(err, errlen, "cannot make a key pair");
        return -1;
    }
    zcert_set_meta(cert, "name", "%s", name);
    for (size_t i = 0; i + 1 < nmeta; i += 2)
        if (meta[i + 1] && *meta[i + 1])
            zcert_set_meta(cert, meta[i], "%s", meta[i + 1]);
    /* The secret file is born private: no moment where others may read. */
    mode_t old = umask(077);
    int rc = zcert_save_secret(cert, sec);
    umask(old);
    if (rc == 0)
        rc = zcert_save_public(cert, pub);
    if (rc == 0)
        rc = chmod(sec, 0600);
    if (rc) {
        snprintf(err, errlen, "cannot write %s: %s", sec, strerror(errno));
        unlink(sec);
        unlink(pub);
    }
    zcert_destroy(&cert);
    return rc ? -1 : 0;
}

bool zkeys_list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, ",");
        size_t l = len;
        while (l && p[l - 1] == ' ')
            l--;
        if (l == n && strncmp(p, item, n) == 0)
            return true;
        p += len;
    }
    return false;
}
