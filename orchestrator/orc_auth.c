/*  orc_auth: ZAP handler, principals and rights. See orc_auth.h. */
#include "orc_auth.h"
#include "common/zkeys.h"
#include "common/zlog.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct orc_auth_s {
    zcertstore_t *store; /* NULL: insecure */
    char *dir;
    struct timespec dir_mtime; /* when the directory last changed, as seen */
    int64_t next_full_ms;      /* and when to look at every file anyway */
    void *zap;
    zhashx_t *peers;  /* Z85 key -> orc_principal_t, keys seen at a handshake */
    zhashx_t *banned; /* Z85 key -> non-NULL */
    orc_principal_t anonymous;
    orc_auth_stats_t stats;
};

static const char *s_roles[] = { "none", "submit", "operator", "admin", "worker" };

const char *orc_role_name(orc_role_t role)
{
    return role <= ORC_ROLE_WORKER ? s_roles[role] : "none";
}

static orc_role_t s_role_parse(const char *s)
{
    for (int r = ORC_ROLE_SUBMIT; r <= ORC_ROLE_WORKER; r++)
        if (s && strcmp(s, s_roles[r]) == 0)
            return (orc_role_t)r;
    return ORC_ROLE_NONE;
}

static void s_principal_free(void **item)
{
    free(*item);
    *item = NULL;
}

orc_auth_t *orc_auth_new(void *ctx, const char *authorized_dir, char *err, size_t errlen)
{
    orc_auth_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(self->anonymous.name, sizeof self->anonymous.name, "anonymous");
    self->anonymous.role = ORC_ROLE_ADMIN;
    snprintf(self->anonymous.systems, sizeof self->anonymous.systems, "*");
    if (!authorized_dir)
        return self;
    struct stat st;
    if (stat(authorized_dir, &st) || !S_ISDIR(st.st_mode)) {
        /* zcertstore would take a missing directory as "nobody": say so. */
        snprintf(err, errlen, "authorized keys directory %s does not exist", authorized_dir);
        free(self);
        return NULL;
    }
    self->store = zcertstore_new(authorized_dir);
    self->dir = strdup(authorized_dir);
    self->peers = zhashx_new();
    self->banned = zhashx_new();
    self->zap = zmq_socket(ctx, ZMQ_REP);
    int linger = 0;
    if (!self->store || !self->peers || !self->banned || !self->zap ||
        zmq_setsockopt(self->zap, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_bind(self->zap, "inproc://zeromq.zap.01")) {
        snprintf(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
        orc_auth_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->peers, s_principal_free);
    return self;
}

void orc_auth_destroy(orc_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orc_auth_t *self = *self_p;
    if (self->zap)
        zmq_close(self->zap);
    zcertstore_destroy(&self->store);
    free(self->dir);
    zhashx_destroy(&self->peers);
    zhashx_destroy(&self->banned);
    free(self);
    *self_p = NULL;
}

bool orc_auth_insecure(const orc_auth_t *self)
{
    return self->store == NULL;
}

void *orc_auth_socket(orc_auth_t *self)
{
    return self->zap;
}

/* The principal a certificate describes; NULL if it names no valid role. */
static orc_principal_t *s_principal(zcert_t *cert, const char *key)
{
    orc_role_t role = s_role_parse(zcert_meta(cert, "role"));
    if (role == ORC_ROLE_NONE)
        return NULL;
    orc_principal_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->key, sizeof p->key, "%s", key);
    const char *name = zcert_meta(cert, "name");
    snprintf(p->name, sizeof p->name, "%s", name && *name ? name : key);
    p->role = role;
    const char *v = zcert_meta(cert, "systems");
    snprintf(p->systems, sizeof p->systems, "%s", v ? v : "");
    v = zcert_meta(cert, "operations");
    snprintf(p->operations, sizeof p->operations, "%s", v ? v : "");
    return p;
}

static bool s_role_fits(orc_role_t role, const char *domain)
{
    if (strcmp(domain, "workers") == 0)
        return role == ORC_ROLE_WORKER;
    if (strcmp(domain, "clients") == 0 || strcmp(domain, "events") == 0)
        return role >= ORC_ROLE_SUBMIT && role <= ORC_ROLE_ADMIN;
    return false;
}

void orc_auth_handle(orc_auth_t *self)
{
    /* RFC 27: version, request id, domain, address, identity, mechanism,
       credentials. Anything else is answered 500 (the handshake fails). */
    for (;;) {
        zmq_msg_t f[8];
        int n = 0, more = 1;
        size_t sz = sizeof more;
        zmq_msg_init(&f[0]);
        if (zmq_msg_recv(&f[0], self->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f[0]);
            return;
        }
        n = 1;
        zmq_getsockopt(self->zap, ZMQ_RCVMORE, &more, &sz);
        while (more) {
            zmq_msg_t extra;
            zmq_msg_t *dst = n < 8 ? &f[n] : &extra;
            zmq_msg_init(dst);
            zmq_msg_recv(dst, self->zap, 0);
            zmq_getsockopt(self->zap, ZMQ_RCVMORE, &more, &sz);
            if (n < 8)
                n++;
            else
                zmq_msg_close(dst);
        }
        const char *status = "400", *text = "key not authorized";
        char key[41] = "", domain[32] = "", mech[16] = "";
        if (n >= 7 && zmq_msg_size(&f[2]) < sizeof domain && zmq_msg_size(&f[5]) < sizeof mech) {
            memcpy(domain, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]));
            memcpy(mech, zmq_msg_data(&f[5]), zmq_msg_size(&f[5]));
        }
        if (strcmp(mech, "CURVE") != 0 || zmq_msg_size(&f[6]) != 32) {
            text = "CURVE only";
        } else {
            zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
            zcert_t *cert = zcertstore_lookup(self->store, key);
            orc_principal_t *p = cert ? s_principal(cert, key) : NULL;
            if (zhashx_lookup(self->banned, key))
                text = "key banned";
            else if (!cert)
                text = "key not authorized";
            else if (!p)
                text = "certificate names no valid role";
            else if (!s_role_fits(p->role, domain))
                text = "role not allowed on this socket";
            else {
                status = "200";
                text = "OK";
                zhashx_update(self->peers, key, p); /* replaces (and frees) a stale copy */
                p = NULL;
            }
            free(p);
        }
        if (status[0] == '2')
            self->stats.allowed++;
        else {
            self->stats.denied++;
            if (self->stats.denied % 100 == 1)
                zlog_warn("refused a %s connection (%s): %s", domain[0] ? domain : "?",
                          key[0] ? key : "no key", text);
        }
        /* Reply: version, request id, status, text, user id, metadata. */
        zmq_send(self->zap, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(self->zap, n > 1 ? zmq_msg_data(&f[1]) : "", n > 1 ? zmq_msg_size(&f[1]) : 0,
                 ZMQ_SNDMORE);
        zmq_send(self->zap, status, 3, ZMQ_SNDMORE);
        zmq_send(self->zap, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(self->zap, key, status[0] == '2' ? 40 : 0, ZMQ_SNDMORE);
        zmq_send(self->zap, "", 0, 0);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
}

const orc_principal_t *orc_auth_peer(orc_auth_t *self, zmq_msg_t *frame)
{
    if (!self->store)
        return &self->anonymous;
    const char *key = zmq_msg_gets(frame, "User-Id");
    if (!key || strlen(key) != 40)
        return NULL;
    return zhashx_lookup(self->peers, key);
}

const orc_principal_t *orc_auth_key(orc_auth_t *self, const char *key)
{
    if (!self->store)
        return &self->anonymous;
    return key && strlen(key) == 40 ? zhashx_lookup(self->peers, key) : NULL;
}

void orc_auth_ban(orc_auth_t *self, const orc_principal_t *p)
{
    if (!self->store || !p->key[0])
        return;
    zlog_warn("key %s (%s) banned until restart", p->name, p->key);
    zhashx_update(self->banned, p->key, (void *)1);
    self->stats.banned++;
    zhashx_delete(self->peers, p->key); /* p is gone now */
}

void orc_auth_refresh(orc_auth_t *self)
{
    if (!self->store)
        return;
    /* Each lookup walks the directory (zcertstore's loader): do it only
       when a file was added or removed (the directory's mtime), and every
       30 s for a file edited in place. */
    struct stat st;
    int64_t now = zclock_mono();
    if (stat(self->dir, &st) == 0 && st.st_mtim.tv_sec == self->dir_mtime.tv_sec &&
        st.st_mtim.tv_nsec == self->dir_mtime.tv_nsec && now < self->next_full_ms)
        return;
    self->dir_mtime = st.st_mtim;
    self->next_full_ms = now + 30000;
    zlist_t *gone = zlist_new();
    for (orc_principal_t *p = zhashx_first(self->peers); p; p = zhashx_next(self->peers)) {
        zcert_t *cert = zcertstore_lookup(self->store, p->key);
        orc_principal_t *cur = cert ? s_principal(cert, p->key) : NULL;
        /* Removed, or its rights changed: the next handshake decides. */
        if (!cur || cur->role != p->role || strcmp(cur->systems, p->systems) ||
            strcmp(cur->operations, p->operations))
            zlist_append(gone, (void *)zhashx_cursor(self->peers));
        free(cur);
    }
    for (const char *k = zlist_first(gone); k; k = zlist_next(gone)) {
        orc_principal_t *p = zhashx_lookup(self->peers, k);
        zlog_warn("key %s (%s) is no longer authorized as it was: its connections are cut off",
                  p->name, p->key);
        self->stats.revoked++;
        zhashx_delete(self->peers, k);
    }
    zlist_destroy(&gone);
}

orc_role_t orc_auth_needed(msg_type_t type)
{
    switch (type) {
    case MSG_SUBMIT:
    case MSG_STATUS:
    case MSG_LIST:
    case MSG_STATS:
    case MSG_SYSTEMS:
    case MSG_EVENTS:
    case MSG_ALERTS:
    case MSG_LOGIN: return ORC_ROLE_SUBMIT;
    case MSG_CANCEL:
    case MSG_RETRY:
    case MSG_RESOLVE: return ORC_ROLE_OPERATOR;
    case MSG_BACKUP: return ORC_ROLE_ADMIN;
    default: return ORC_ROLE_NONE;
    }
}

bool orc_auth_may(const orc_principal_t *p, msg_type_t type)
{
    orc_role_t need = orc_auth_needed(type);
    return need != ORC_ROLE_NONE && p->role != ORC_ROLE_WORKER && p->role >= need;
}

bool orc_auth_serves(const orc_principal_t *p, const char *system)
{
    if (p->role == ORC_ROLE_WORKER)
        return zkeys_list_has(p->systems, system);
    return strcmp(p->systems, "*") == 0; /* insecure mode's anonymous peer */
}

bool orc_auth_op_allowed(const orc_principal_t *p, const char *op)
{
    return !p->operations[0] || zkeys_list_has(p->operations, op);
}

const orc_auth_stats_t *orc_auth_stats(const orc_auth_t *self)
{
    return &self->stats;
}
