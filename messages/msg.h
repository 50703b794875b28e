/*  msg: the zsaga wire protocol (version MSG_VERSION). docs/protocol.md is
    its description for people; this is its description for the compiler.

    Every message body is one msgpack map with "v" (the version) and "type".
    msg_decode is strict: it refuses unknown types, unknown fields, fields a
    type does not allow, missing required fields, wrong types and oversized
    values, and says why in err. It never asserts on input.

    A decoded msg_t borrows params, output and raw slices from the buffer it
    was decoded from; the buffer must outlive it. It owns `saga` (submit
    only): msg_clear frees it. Any thread.
*/
#ifndef ZSAGA_MSG_H
#define ZSAGA_MSG_H

#include "mp.h"
#include "msg_limits.h"
#include "msg_params.h"
#include "msg_saga.h"

typedef enum {
    MSG_NONE = 0,
    /* client -> orchestrator */
    MSG_SUBMIT,
    MSG_STATUS,
    MSG_LIST,
    MSG_CANCEL,
    MSG_RETRY,
    MSG_RESOLVE,
    MSG_BACKUP,
    MSG_STATS,
    MSG_SYSTEMS,
    MSG_EVENTS, /* the event stream from the journal, after a sequence number */
    MSG_ALERTS, /* the alert rules and their states */
    MSG_LOGIN,  /* a console token for the caller's key */
    /* orchestrator -> client */
    MSG_ACCEPTED,
    MSG_REJECTED,
    MSG_OK,
    MSG_ERROR,
    MSG_SAGA,          /* status reply: "saga" holds the saga's state */
    MSG_SAGAS,         /* list reply: "sagas" holds an array of summaries */
    MSG_STATS_REPLY,   /* stats reply: "stats" holds a map of counters */
    MSG_SYSTEMS_REPLY, /* systems reply: "systems" holds the catalogue */
    MSG_EVENTS_REPLY,  /* events reply: "events", "next", "first", "head" */
    MSG_ALERTS_REPLY,  /* alerts reply: "alerts" holds the rules */
    MSG_TOKEN,         /* login reply: "token", "expires_ms" */
    /* worker <-> orchestrator */
    MSG_READY,
    MSG_HEARTBEAT,
    MSG_EXECUTE,
    MSG_COMPENSATE,
    MSG_RESULT,
    /* orchestrator -> event subscribers */
    MSG_EVENT,
    MSG_NTYPES
} msg_type_t;

typedef enum { MSG_PHASE_ACTION = 0, MSG_PHASE_COMPENSATION } msg_phase_t;
typedef enum { MSG_STATUS_OK = 0, MSG_STATUS_FAILED, MSG_STATUS_RETRY } msg_status_t;

typedef struct {
    msg_type_t type;
    uint64_t req;                /* client's request number, echoed in the reply */
    uint64_t boot;               /* orchestrator boot number (heartbeat) */
    uint64_t seq;                /* event sequence number */
    uint64_t ts_ms;              /* event time, ms since the epoch */
    uint64_t lease;              /* dispatch lease: execute/compensate, echoed in result */
    uint64_t since_ms, until_ms; /* list: created between, inclusive */
    uint32_t attempt, capacity, timeout_ms, limit, inflight;
    bool duplicate;
    msg_phase_t phase;
    msg_status_t status;
    char id[MSG_ID_MAX + 1];   /* saga id */
    char step[MSG_ID_MAX + 1]; /* step id */
    char instance[MSG_ID_MAX + 1];
    char system[MSG_NAME_MAX + 1];
    char op[MSG_NAME_MAX + 1];
    char state[MSG_NAME_MAX + 1];
    char code[MSG_CODE_MAX + 1];
    char version[MSG_NAME_MAX + 1];
    char cursor[MSG_ID_MAX + 24]; /* list: where the previous page ended */
    uint32_t nops;
    const uint8_t *params, *output, *raw; /* borrowed slices (raw: saga, sagas,
                                             stats, metrics or schemas) */
    size_t params_len, output_len, raw_len;
    msg_saga_t *saga; /* submit: decoded definition, owned */
    /* Last, and not cleared by msg_init past their first byte: they are
       read only up to their terminator (text) or nops (ops), and clearing
       3 KB for every message was 2 % of zsagad's work. */
    char text[MSG_TEXT_MAX + 1]; /* "reason", "message" or "path" */
    char ops[MSG_MAX_OPS][MSG_NAME_MAX + 1];
} msg_t;

/* Copy the C string src into dst of cap bytes, cut to fit and always
   terminated: snprintf(dst, cap, "%s", src) without the format parser,
   for the fields copied on every message. */
void msg_copy(char *dst, size_t cap, const char *src);

/* Zero m and set its type. */
void msg_init(msg_t *m, msg_type_t type);
/* Release what m owns (the saga); m may be decoded into again. */
void msg_clear(msg_t *m);
/* Decode one body. Returns NULL on success, else a short error code
   ("too_large", "malformed", "unsupported_version", "unknown_type",
   "invalid_saga") with the reason in err. m is cleared on failure. */
const char *msg_decode(const void *buf, size_t len, msg_t *m, char *err, size_t errlen);
/* Encode m. For MSG_SAGA, MSG_SAGAS and MSG_STATS_REPLY the orchestrator
   writes the body itself after msg_pack_header. */
void msg_pack(const msg_t *m, msgpack_packer *pk);
/* Write "v" and "type" as the first two of nfields map entries. */
void msg_pack_header(msgpack_packer *pk, msg_type_t type, uint32_t nfields);

const char *msg_type_name(msg_type_t type);
const char *msg_phase_name(msg_phase_t phase);
const char *msg_status_name(msg_status_t status);

#endif
