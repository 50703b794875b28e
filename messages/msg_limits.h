/*  msg_limits: the protocol's version and every size limit, in one place.
    docs/protocol.md repeats these; change both together. */
#ifndef ZSAGA_MSG_LIMITS_H
#define ZSAGA_MSG_LIMITS_H

#define MSG_VERSION        1
#define MSG_MAX_BYTES      (256 * 1024) /* one message body */
#define MSG_ID_MAX         64           /* saga, step and instance ids */
#define MSG_NAME_MAX       32           /* systems, operations, param keys */
#define MSG_SAGA_NAME_MAX  128          /* free-text saga name */
#define MSG_TEXT_MAX       1024         /* reasons, messages, notes, paths */
#define MSG_CODE_MAX       32           /* machine-readable error codes */
#define MSG_MAX_STEPS      64           /* steps per saga */
#define MSG_MAX_PARAMS     32           /* entries in a params/output map */
#define MSG_VALUE_MAX      1024         /* one string value */
#define MSG_MAX_OPS        64           /* operations a worker registers */
#define MSG_MAX_TIMEOUT_MS (24u * 3600u * 1000u)
#define MSG_MAX_ATTEMPTS   1000

#endif
