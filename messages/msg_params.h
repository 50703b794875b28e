/*  msg_params: flat parameter and output maps, and references between steps.

    A params (or output) map is a msgpack map of at most MSG_MAX_PARAMS
    entries. Keys are names ([a-z0-9_], at most MSG_NAME_MAX bytes). Values
    are nil, booleans, integers or strings of at most MSG_VALUE_MAX bytes.
    Floating point is refused: money is integer minor units.

    A string value of the exact form "${step.key}" is a reference to the
    output `key` of step `step`; the orchestrator replaces it with that value
    before it dispatches the step.

    The maps stay in their msgpack bytes; parsing into msg_kv_t borrows
    strings from the buffer, so the buffer must outlive the kv array.
    Errors are written as text into err (always NUL-terminated). Any thread.
*/
#ifndef ZSAGA_MSG_PARAMS_H
#define ZSAGA_MSG_PARAMS_H

#include "mp.h"
#include "msg_limits.h"

typedef struct {
    char key[MSG_NAME_MAX + 1];
    mp_type_t type; /* MP_NIL, MP_BOOL, MP_INT or MP_STR */
    bool b;
    int64_t i;
    const char *s; /* not NUL-terminated */
    uint32_t slen;
} msg_kv_t;

/* Is this a valid name (system, operation, key): [a-z0-9_], 1..max bytes? */
bool msg_name_valid(const char *s, size_t len, size_t max);
/* Is this a valid id (saga, step, instance): [A-Za-z0-9._:-], 1..MSG_ID_MAX? */
bool msg_id_valid(const char *s, size_t len);

/* Read one flat map at r; on success start and len delimit its bytes.
   `what` names the field in error messages. Returns 0 or -1 (err set). */
int msg_params_read(mp_reader_t *r, const char *what, const uint8_t **start, size_t *len, char *err,
                    size_t errlen);
/* Parse validated map bytes into kv (max MSG_MAX_PARAMS). Returns count or -1. */
int msg_params_parse(const uint8_t *buf, size_t len, msg_kv_t *kv, char *err, size_t errlen);
const msg_kv_t *msg_kv_find(const msg_kv_t *kv, int n, const char *key);

/* If s is a reference "${step.key}", fill step and key and return true. */
bool msg_ref_parse(const char *s, uint32_t len, char step[MSG_ID_MAX + 1],
                   char key[MSG_NAME_MAX + 1]);

/* Write a validated map in its one canonical form: keys sorted (bytewise),
   every integer in its shortest encoding. Two encodings of the same map,
   in any key order, give the same bytes: the definition hash that decides
   "duplicate or conflict" depends on nothing else. 0 or -1 (err set). */
int msg_params_canon(const uint8_t *buf, size_t len, msgpack_packer *pk, char *err, size_t errlen);

/* Lookup callback for resolution: give the output map bytes of `step`, or
   return -1 if that step has no output. */
typedef int(msg_output_fn)(void *arg, const char *step, const uint8_t **out, size_t *out_len);

/* Write params to pk with every reference replaced by the value it names.
   Returns 0, or -1 with err set if an output or key is missing. */
int msg_params_resolve(const uint8_t *buf, size_t len, msg_output_fn *lookup, void *arg,
                       msgpack_packer *pk, char *err, size_t errlen);

#endif
