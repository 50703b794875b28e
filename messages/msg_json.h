/*  msg_json: the protocol's msgpack as JSON and back, for people and
    browsers (the CLI's arguments and output, the console's HTTP API).

    JSON numbers become msgpack integers (a float is passed on as one, so
    the decoder refuses it with its own clear error); msgpack maps and
    arrays become objects and arrays, at most 16 deep. Any thread.
*/
#ifndef ZSAGA_MSG_JSON_H
#define ZSAGA_MSG_JSON_H

#include "mp.h"

#include <jansson.h>

int msg_json_to_mp(json_t *j, msgpack_packer *pk, char *err, size_t errlen);
/* NULL (with r's error set) on malformed input or nesting past 16. */
json_t *msg_mp_to_json(mp_reader_t *r, int depth);

#endif
