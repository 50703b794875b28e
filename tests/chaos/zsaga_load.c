/*  zsaga-load: the chaos harness's client. Submits a steady, seeded mix of
    banking sagas to zsagad and writes what it was told, so the checker
    can hold zsagad to it.

        zsaga-load --endpoint EP[,EP...] --seed N --rate R --seconds S
                   --accounts A --customers C --log FILE [--prefix P]

    With several endpoints (partitions: several zsagads serving at once)
    it sends to any that is up and follows not_leader to the one serving
    the saga's partition, as zsaga does; an answer that does not come
    sends the next try to any again (the partition may have moved).

    The mix (shares of R):
      40% transfer   banking transfer -> fraud risk -> compliance confirmation;
                     one in eight asks for more than any account holds
      20% payment    debit -> risk -> payment out -> fee -> confirmation;
                     one in ten pays a sanctioned beneficiary (fails at step 3)
      15% loan       the loan-processing saga of deploy/examples
      15% fail-at    the payment saga with a step that fails for good
                     inserted at position 2, 3 or 4: the steps before it
                     are compensated in reverse order
      10% cancel     the payment saga, cancelled 0-40 ms after it is accepted

    A submit that gets no answer within 2 s (zsagad killed, restarting) is
    sent again under the same id, as any client of an idempotent API does,
    until it is answered. The log has one line per fact:
        accepted ID KIND      zsagad said accepted (new or duplicate)
        rejected ID CODE      zsagad refused it (journal full, ...)
        cancel ID ok|CODE     the answer to a cancel
    and the last line is a summary. Everything it does follows from the seed
    except the timing of answers. Retry policies are generous (60 tries
    for actions, 1,000 (the most allowed) for compensations, capped at 2 s) so that outages
    of a few seconds end in outcomes, not in parked sagas.
*/
#include "common/zkeys.h"
#include "messages/mp.h"
#include "messages/msg.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char id[MSG_ID_MAX + 1];
    char kind;
    uint8_t *body;
    size_t len;
    int64_t sent_ms;
    uint64_t req;      /* a reply that cannot name the saga names the request */
    bool cancel;       /* send a cancel once accepted */
    int64_t cancel_ms; /* that long after */
    int via;           /* the route it goes by (0: any zsagad) */
} s_pending_t;

/* A cancel to send at due, by route via. */
typedef struct {
    int64_t due;
    int via;
} s_cancel_t;

/* Routes: 0 is every --endpoint (any zsagad that is up); the others are
   the endpoints not_leader replies named, a socket each. */
#define MAX_ROUTES 32
static struct {
    char ep[MSG_TEXT_MAX + 1];
    zsock_t *sock;
} s_routes[MAX_ROUTES];
static int s_nroutes;

static zsock_t *s_dealer(const char *eps)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    char kerr[1024];
    if (!sock || zkeys_client_env(zsock_resolve(sock), "ZSAGA_KEY", kerr, sizeof kerr)) {
        fprintf(stderr, "zsaga-load: %s\n", sock ? kerr : "no socket");
        zsock_destroy(&sock);
        return NULL;
    }
    zsock_set_linger(sock, 0);
    if (strchr(eps, ','))
        zsock_set_immediate(sock, 1); /* only to those that are up */
    if (zsock_attach(sock, eps, false)) {
        fprintf(stderr, "zsaga-load: cannot connect to %s\n", eps);
        zsock_destroy(&sock);
    }
    return sock;
}

/* The route to eps (made on first use; 0 when there is no room or it
   cannot connect). */
static int s_route(const char *eps, zpoller_t *poller)
{
    for (int i = 1; i < s_nroutes; i++)
        if (!strcmp(s_routes[i].ep, eps))
            return i;
    if (s_nroutes == MAX_ROUTES)
        return 0;
    zsock_t *sock = s_dealer(eps);
    if (!sock)
        return 0;
    snprintf(s_routes[s_nroutes].ep, sizeof s_routes[s_nroutes].ep, "%s", eps);
    s_routes[s_nroutes].sock = sock;
    zpoller_add(poller, sock);
    return s_nroutes++;
}

static uint64_t s_x;
static uint64_t s_rand(void)
{
    s_x ^= s_x << 13; /* xorshift64: the same seed, the same run */
    s_x ^= s_x >> 7;
    s_x ^= s_x << 17;
    return s_x;
}
static uint64_t s_below(uint64_t n)
{
    return s_rand() % n;
}

static void s_retry(msgpack_packer *pk, const char *key, uint32_t attempts)
{
    mp_pack_cstr(pk, key);
    msgpack_pack_map(pk, 3);
    mp_pack_kv_uint(pk, "attempts", attempts);
    mp_pack_kv_uint(pk, "backoff_ms", 100);
    mp_pack_kv_uint(pk, "backoff_max_ms", 2000);
}

/* A step map's fixed part: 8 keys; the caller packs "params" last. */
static void s_step(msgpack_packer *pk, const char *id, const char *system, const char *action,
                   const char *comp, const char *dep)
{
    msgpack_pack_map(pk, 9);
    mp_pack_kv_str(pk, "id", id);
    mp_pack_kv_str(pk, "system", system);
    mp_pack_kv_str(pk, "action", action);
    mp_pack_kv_str(pk, "compensation", comp);
    mp_pack_cstr(pk, "deps");
    msgpack_pack_array(pk, dep ? 1 : 0);
    if (dep)
        mp_pack_cstr(pk, dep);
    mp_pack_kv_uint(pk, "timeout_ms", 10000);
    s_retry(pk, "retry", 60);
    s_retry(pk, "compensation_retry", 1000);
    mp_pack_cstr(pk, "params");
}

static void s_account(char out[32], uint32_t accounts)
{
    snprintf(out, 32, "AC%010" PRIu64, 1 + s_below(accounts));
}

/* transfer: move -> risk -> confirm */
static void s_transfer(msgpack_packer *pk, const char *id, uint32_t accounts, uint32_t customers)
{
    char from[32], to[32], cust[32];
    s_account(from, accounts);
    do
        s_account(to, accounts);
    while (strcmp(from, to) == 0);
    snprintf(cust, sizeof cust, "CU%08" PRIu64, 1 + s_below(customers));
    int64_t amount = s_below(8) == 0 ? 5000000000ll : (int64_t)(100 + s_below(500000));
    msgpack_pack_array(pk, 3);
    s_step(pk, "move", "banking", "transfer", "reverse_transfer", NULL);
    msgpack_pack_map(pk, 4);
    mp_pack_kv_str(pk, "from_account", from);
    mp_pack_kv_str(pk, "to_account", to);
    mp_pack_kv_int(pk, "amount", amount);
    mp_pack_kv_str(pk, "currency", "USD");
    s_step(pk, "risk", "fraud", "risk_assessment", "clear_risk_flag", "move");
    msgpack_pack_map(pk, 4);
    mp_pack_kv_str(pk, "customer", cust);
    mp_pack_kv_str(pk, "account", from);
    mp_pack_kv_int(pk, "amount", amount);
    mp_pack_kv_str(pk, "currency", "USD");
    s_step(pk, "confirm", "compliance", "send_confirmation", "send_cancellation", "risk");
    msgpack_pack_map(pk, 3);
    mp_pack_kv_str(pk, "recipient", cust);
    mp_pack_kv_str(pk, "reference", id);
    mp_pack_kv_int(pk, "amount", amount);
}

/* payment: debit -> risk -> pay -> fee -> confirm, with an optional step
   that fails for good ("boom") inserted before step fail_at (2-4). */
static void s_payment(msgpack_packer *pk, const char *id, uint32_t accounts, uint32_t customers,
                      int fail_at)
{
    char from[32], cust[32], ben[32];
    s_account(from, accounts);
    snprintf(cust, sizeof cust, "CU%08" PRIu64, 1 + s_below(customers));
    if (!fail_at && s_below(10) == 0)
        snprintf(ben, sizeof ben, "BEN-SANCTIONED");
    else
        snprintf(ben, sizeof ben, "BEN-%05" PRIu64, s_below(100000));
    int64_t amount = (int64_t)(100 + s_below(200000));
    const char *names[] = { "debit", "risk", "pay", "fee", "confirm" };
    const char *prev = NULL;
    msgpack_pack_array(pk, fail_at ? 6 : 5);
    for (int k = 0; k < 5; k++) {
        if (fail_at && k + 1 == fail_at) {
            /* An account that does not exist: failed for good, no effect. */
            s_step(pk, "boom", "banking", "debit_account", "credit_account", prev);
            msgpack_pack_map(pk, 3);
            mp_pack_kv_str(pk, "account", "NO-SUCH-ACCOUNT");
            mp_pack_kv_int(pk, "amount", amount);
            mp_pack_kv_str(pk, "currency", "USD");
            prev = "boom";
        }
        switch (k) {
        case 0:
            s_step(pk, names[k], "banking", "debit_account", "credit_account", prev);
            msgpack_pack_map(pk, 3);
            mp_pack_kv_str(pk, "account", from);
            mp_pack_kv_int(pk, "amount", amount);
            mp_pack_kv_str(pk, "currency", "USD");
            break;
        case 1:
            s_step(pk, names[k], "fraud", "risk_assessment", "clear_risk_flag", prev);
            msgpack_pack_map(pk, 4);
            mp_pack_kv_str(pk, "customer", cust);
            mp_pack_kv_str(pk, "account", from);
            mp_pack_kv_int(pk, "amount", amount);
            mp_pack_kv_str(pk, "currency", "USD");
            break;
        case 2:
            s_step(pk, names[k], "payments", "process_payment", "reverse_payment", prev);
            msgpack_pack_map(pk, 5);
            mp_pack_kv_str(pk, "from_account", from);
            mp_pack_kv_str(pk, "beneficiary", ben);
            mp_pack_kv_int(pk, "amount", amount);
            mp_pack_kv_str(pk, "currency", "USD");
            mp_pack_kv_str(pk, "reference", id);
            break;
        case 3:
            s_step(pk, names[k], "banking", "deduct_fee", "refund_fee", prev);
            msgpack_pack_map(pk, 4);
            mp_pack_kv_str(pk, "account", from);
            mp_pack_kv_int(pk, "amount", 250);
            mp_pack_kv_str(pk, "currency", "USD");
            mp_pack_kv_bool(pk, "waivable", true);
            break;
        default:
            s_step(pk, names[k], "compliance", "send_confirmation", "send_cancellation", prev);
            msgpack_pack_map(pk, 3);
            mp_pack_kv_str(pk, "recipient", cust);
            mp_pack_kv_str(pk, "reference", id);
            mp_pack_kv_int(pk, "amount", amount);
        }
        prev = names[k];
    }
}

/* loan: create -> schedule -> fraud check -> compliance report -> activate */
static void s_loan(msgpack_packer *pk, uint32_t customers)
{
    char cust[32];
    snprintf(cust, sizeof cust, "CU%08" PRIu64, 1 + s_below(customers));
    int64_t principal = (int64_t)(100000 + s_below(5000000));
    int64_t rate = (int64_t)(300 + s_below(700)), term = (int64_t)(12 * (1 + s_below(10)));
    msgpack_pack_array(pk, 5);
    s_step(pk, "create_loan", "banking", "create_loan_account", "delete_loan_account", NULL);
    msgpack_pack_map(pk, 5);
    mp_pack_kv_str(pk, "customer", cust);
    mp_pack_kv_int(pk, "principal", principal);
    mp_pack_kv_str(pk, "currency", "USD");
    mp_pack_kv_int(pk, "rate_bp", rate);
    mp_pack_kv_int(pk, "term_months", term);
    s_step(pk, "schedule", "payments", "setup_payment_schedule", "cancel_payment_schedule",
           "create_loan");
    msgpack_pack_map(pk, 5);
    mp_pack_kv_str(pk, "loan_account", "${create_loan.loan_account}");
    mp_pack_kv_int(pk, "principal", principal);
    mp_pack_kv_str(pk, "currency", "USD");
    mp_pack_kv_int(pk, "rate_bp", rate);
    mp_pack_kv_int(pk, "term_months", term);
    s_step(pk, "fraud_check", "fraud", "fraud_check", "clear_fraud_check", "schedule");
    msgpack_pack_map(pk, 3);
    mp_pack_kv_str(pk, "customer", cust);
    mp_pack_kv_int(pk, "amount", principal);
    mp_pack_kv_str(pk, "currency", "USD");
    s_step(pk, "compliance_report", "compliance", "generate_compliance_report",
           "archive_compliance_report", "fraud_check");
    msgpack_pack_map(pk, 3);
    mp_pack_kv_str(pk, "customer", cust);
    mp_pack_kv_str(pk, "subject", "${create_loan.loan_account}");
    mp_pack_kv_int(pk, "amount", principal);
    s_step(pk, "activate", "banking", "activate_loan", "deactivate_loan", "compliance_report");
    msgpack_pack_map(pk, 1);
    mp_pack_kv_str(pk, "loan_account", "${create_loan.loan_account}");
}

static s_pending_t *s_make(const char *prefix, uint64_t n, uint32_t accounts, uint32_t customers)
{
    s_pending_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    uint64_t r = s_below(100);
    p->kind = r < 40 ? 't' : r < 60 ? 'p' : r < 75 ? 'l' : r < 90 ? 'f' : 'c';
    snprintf(p->id, sizeof p->id, "%s%c%06" PRIu64, prefix, p->kind, n);
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msg_pack_header(&pk, MSG_SUBMIT, 4);
    mp_pack_kv_uint(&pk, "req", n);
    p->req = n;
    mp_pack_cstr(&pk, "saga");
    msgpack_pack_map(&pk, 3);
    mp_pack_kv_str(&pk, "id", p->id);
    mp_pack_kv_str(&pk, "name",
                   p->kind == 't'   ? "transfer"
                   : p->kind == 'l' ? "loan processing"
                   : p->kind == 'f' ? "payment failing at a chosen step"
                                    : "payment");
    mp_pack_cstr(&pk, "steps");
    switch (p->kind) {
    case 't': s_transfer(&pk, p->id, accounts, customers); break;
    case 'l': s_loan(&pk, customers); break;
    case 'f': s_payment(&pk, p->id, accounts, customers, 2 + (int)s_below(3)); break;
    default: s_payment(&pk, p->id, accounts, customers, 0);
    }
    p->cancel = p->kind == 'c';
    p->cancel_ms = p->cancel ? (int64_t)s_below(41) : 0;
    p->body = (uint8_t *)buf.data; /* ownership moves to p */
    p->len = buf.size;
    return p;
}

static void s_send(zsock_t *sock, const void *data, size_t len)
{
    zframe_t *f = zframe_new(data, len);
    zframe_send(&f, sock, ZFRAME_DONTWAIT);
    zframe_destroy(&f); /* still ours when the send failed (no zsagad up): resent later */
}

static void s_cancel(zsock_t *sock, const char *id, uint64_t req)
{
    msg_t m;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msg_init(&m, MSG_CANCEL);
    m.req = req;
    snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.text, sizeof m.text, "cancelled by the load");
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msg_pack(&m, &pk);
    s_send(sock, buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
}

static void s_free(void **item)
{
    s_pending_t *p = *item;
    free(p->body);
    free(p);
    *item = NULL;
}

static void s_free_due(void **item)
{
    free(*item);
    *item = NULL;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *logpath = NULL, *prefix = "L";
    uint64_t seed = 1;
    double rate = 20, seconds = 60;
    uint32_t accounts = 2000, customers = 500;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--endpoint"))
            endpoint = v;
        else if (!strcmp(k, "--log"))
            logpath = v;
        else if (!strcmp(k, "--prefix"))
            prefix = v;
        else if (!strcmp(k, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--rate"))
            rate = atof(v);
        else if (!strcmp(k, "--seconds"))
            seconds = atof(v);
        else if (!strcmp(k, "--accounts"))
            accounts = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(k, "--customers"))
            customers = (uint32_t)strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "zsaga-load: unknown option %s\n", k);
            return 2;
        }
    }
    if (!endpoint || !logpath || rate <= 0 || seconds <= 0 || !accounts || !customers) {
        fprintf(stderr, "usage: zsaga-load --endpoint EP --log FILE [--seed N] [--rate R] "
                        "[--seconds S] [--accounts A] [--customers C] [--prefix P]\n");
        return 2;
    }
    FILE *log = fopen(logpath, "a");
    if (!log) {
        perror(logpath);
        return 1;
    }
    setvbuf(log, NULL, _IOLBF, 0);
    s_x = seed ? seed * 0x9E3779B97F4A7C15ull : 1;
    zsys_init();
    zsys_set_sndhwm(100000);
    zsys_set_rcvhwm(100000);
    zsock_t *sock = s_dealer(endpoint);
    if (!sock)
        return 1;
    s_routes[0].sock = sock;
    s_nroutes = 1;
    zhashx_t *pending = zhashx_new(); /* id -> s_pending_t, not yet answered */
    zhashx_set_destructor(pending, s_free);
    zhashx_t *cancels = zhashx_new(); /* id -> s_cancel_t, accepted and to cancel */
    zhashx_set_destructor(cancels, s_free_due);
    zpoller_t *poller = zpoller_new(sock, NULL);
    int64_t t0 = zclock_mono(), interval_us = (int64_t)(1e6 / rate);
    uint64_t total = (uint64_t)(rate * seconds), made = 0, accepted = 0, rejected = 0, resent = 0,
             cancelled = 0, cancel_refused = 0;
    int64_t drain_until = 0;
    uint64_t req = 1000000000;
    while (!zsys_interrupted) {
        int64_t now = zclock_mono();
        /* New sagas at the steady rate: the n-th is due at t0 + n/rate. */
        while (made < total && (now - t0) * 1000 >= (int64_t)made * interval_us) {
            s_pending_t *p = s_make(prefix, ++made, accounts, customers);
            if (!p)
                break;
            p->sent_ms = now;
            s_send(sock, p->body, p->len);
            zhashx_insert(pending, p->id, p);
        }
        /* Unanswered submits go again, same id, to any zsagad (the one
           routed to may be gone); those sent on by not_leader go now. */
        for (s_pending_t *p = zhashx_first(pending); p; p = zhashx_next(pending))
            if (now - p->sent_ms > 2000 || p->sent_ms == 0) {
                if (p->sent_ms) {
                    p->via = 0;
                    resent++;
                }
                p->sent_ms = now;
                s_send(s_routes[p->via].sock, p->body, p->len);
            }
        for (s_cancel_t *c = zhashx_first(cancels); c; c = zhashx_next(cancels))
            if (now >= c->due) {
                s_cancel(s_routes[c->via].sock, zhashx_cursor(cancels), ++req);
                c->due = now + 2000; /* again if unanswered, to any */
                c->via = 0;
            }
        if (made == total && zhashx_size(pending) == 0 && zhashx_size(cancels) == 0)
            break;
        if (made == total && !drain_until)
            drain_until = now + 300000;
        if (drain_until && now > drain_until) {
            fprintf(stderr, "zsaga-load: %zu submits never answered\n", zhashx_size(pending));
            break;
        }
        zsock_t *from = zpoller_wait(poller, 5);
        if (!from)
            continue;
        zframe_t *f = zframe_recv(from);
        if (!f)
            continue;
        msg_t m;
        char err[256];
        if (!msg_decode(zframe_data(f), zframe_size(f), &m, err, sizeof err)) {
            s_pending_t *p = zhashx_lookup(pending, m.id);
            if (!p && !m.id[0] && m.type == MSG_REJECTED)
                for (p = zhashx_first(pending); p && p->req != m.req; p = zhashx_next(pending))
                    ;
            if (p)
                snprintf(m.id, sizeof m.id, "%s", p->id);
            s_cancel_t *c = zhashx_lookup(cancels, m.id);
            if (!strcmp(m.code, "not_leader") && (p || c)) {
                /* Another zsagad serves it: there at once, or (nobody
                   serves it yet) to any again in a moment. */
                int via = m.text[0] ? s_route(m.text, poller) : 0;
                if (p && m.type == MSG_REJECTED) {
                    p->via = via;
                    p->sent_ms = via ? 0 : zclock_mono() - 1750;
                } else if (c) {
                    c->via = via;
                    c->due = zclock_mono() + (via ? 0 : 250);
                }
            } else if (m.type == MSG_ACCEPTED && p) {
                fprintf(log, "accepted %s %c\n", p->id, p->kind);
                accepted++;
                if (p->cancel) {
                    s_cancel_t *cn = malloc(sizeof *cn);
                    if (cn) {
                        cn->due = zclock_mono() + p->cancel_ms;
                        cn->via = p->via; /* the zsagad that accepted it */
                        zhashx_insert(cancels, p->id, cn);
                    }
                }
                zhashx_delete(pending, m.id);
            } else if (m.type == MSG_REJECTED && p) {
                fprintf(log, "rejected %s %s %s\n", p->id, m.code, m.text);
                rejected++;
                zhashx_delete(pending, m.id);
            } else if ((m.type == MSG_OK || m.type == MSG_ERROR) && c) {
                fprintf(log, "cancel %s %s\n", m.id, m.type == MSG_OK ? "ok" : m.code);
                if (m.type == MSG_OK)
                    cancelled++;
                else
                    cancel_refused++;
                zhashx_delete(cancels, m.id);
            } else if ((m.type == MSG_ERROR || m.type == MSG_REJECTED) &&
                       strcmp(m.code, "not_leader") != 0) /* a late copy's: answered since */
                fprintf(stderr, "zsaga-load: %s %s: %s\n", msg_type_name(m.type), m.code, m.text);
            msg_clear(&m);
        } else
            fprintf(stderr, "zsaga-load: a reply that does not decode: %s\n", err);
        zframe_destroy(&f);
    }
    printf("load: seed %" PRIu64 ", %" PRIu64 " sagas submitted, %" PRIu64 " accepted, %" PRIu64
           " rejected, %zu unanswered, %" PRIu64 " resends, cancels %" PRIu64 " taken %" PRIu64
           " too late, %.1f s\n",
           seed, made, accepted, rejected, zhashx_size(pending), resent, cancelled, cancel_refused,
           (double)(zclock_mono() - t0) / 1000.0);
    fprintf(log,
            "summary submitted=%" PRIu64 " accepted=%" PRIu64 " rejected=%" PRIu64
            " unanswered=%zu\n",
            made, accepted, rejected, zhashx_size(pending));
    int rc = zhashx_size(pending) ? 1 : 0;
    zpoller_destroy(&poller);
    zhashx_destroy(&pending);
    zhashx_destroy(&cancels);
    for (int i = 0; i < s_nroutes; i++)
        zsock_destroy(&s_routes[i].sock);
    fclose(log);
    return rc;
}
