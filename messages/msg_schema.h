/*  msg_schema: what an operation takes and gives, as its worker declares
    it in `ready`, and the check of a step's params against it at submit.

    A schema is a short text, one entry per key, separated by spaces:

        account:str amount:int>0 currency:str note:str?

    key:TYPE, where TYPE is int, str or bool; a trailing ? makes the key
    optional; an int may carry a bound: >0, >=0, or MIN..MAX. The params
    schema lists every key the operation reads; the outputs schema every
    key its output map may hold (no bounds, no ?).

    A step's params are checked against its action's schema and its
    compensation's (both receive the same params): every key must be one
    of theirs, every required key present, every value of the declared
    type and within bounds. A reference "${step.key}" stands for a value
    known only at run time: its type is not checked, but the referenced
    step's action must declare `key` among its outputs when it declares
    outputs at all. Any thread; errors are text.
*/
#ifndef ZSAGA_MSG_SCHEMA_H
#define ZSAGA_MSG_SCHEMA_H

#include "msg_params.h"

#define MSG_SCHEMA_TEXT_MAX 512 /* a schema's text */

typedef enum { MSG_T_INT = 0, MSG_T_STR, MSG_T_BOOL } msg_type_kind_t;

typedef struct {
    char key[MSG_NAME_MAX + 1];
    msg_type_kind_t type;
    bool optional;
    bool has_min, has_max;
    int64_t min, max;
} msg_schema_key_t;

typedef struct {
    bool known; /* false: no schema declared (nothing is checked) */
    uint32_t n;
    msg_schema_key_t keys[MSG_MAX_PARAMS];
} msg_schema_t;

/* Parse text into s (known = true). 0, or -1 with err naming the entry. */
int msg_schema_parse(const char *text, msg_schema_t *s, char *err, size_t errlen);
const msg_schema_key_t *msg_schema_find(const msg_schema_t *s, const char *key);
const char *msg_schema_type_name(msg_type_kind_t t);

/* Check one step's params (parsed by msg_params_parse) against its
   action's and compensation's schemas (comp may be NULL). 0, or -1 with
   err naming the key: "unknown key params.ammount (debit_account takes: ...)". */
int msg_schema_check(const msg_schema_t *act, const char *act_name, const msg_schema_t *comp,
                     const char *comp_name, const msg_kv_t *kv, int n, char *err, size_t errlen);

#endif
