/*  mg_msg.h - the messages nodes exchange over a link (docs/protocol.md).

    Every message is one ZeroMQ frame holding one msgpack array whose
    first element is the message type:

        HELLO    = [1, version, key: bin 32, endpoints: [str], name: str]
        RECON_Q  = [2, payload: bin]        ; initiator -> responder
        RECON_A  = [3, payload: bin]        ; responder -> initiator
                   (payload: a reconciliation message, mg_recon.h; it
                   carries its own version and session id)
        RECORDS  = [4, [record: bin]]       ; signed records, as received
        WANT     = [5, [vid: bin 32]]       ; please send these versions

    Decoding never asserts on input: any violation is MG_ERR_MALFORMED
    with an explanation, and the caller drops the message.
*/
#ifndef MG_MSG_H
#define MG_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_error.h"
#include "mg_record.h"

/* The link protocol version a HELLO announces. 2: reconciliation
   messages of version 2 (session ids, short salted hashes, bitmaps). */
#define MG_PROTOCOL_VERSION 2

/* Largest message a node sends or accepts (set as ZMQ_MAXMSGSIZE). A
   RECORDS batch is cut at MG_BATCH_BYTES, so 16 maximal records (64 KiB)
   or ~1,000 typical offers (~500 B) fit with room for framing. */
#define MG_MSG_MAX (1024 * 1024 + 4096)
#define MG_BATCH_BYTES (1024 * 1024)
/* Most vids in one WANT: 32 KiB of ids, answered by about one batch. */
#define MG_WANT_MAX 1024
/* Most endpoints in a HELLO or a profile, and longest endpoint. */
#define MG_ENDPOINTS_MAX 8
#define MG_ENDPOINT_MAX 255
#define MG_VID_BYTES 32

typedef enum {
    MG_MSG_HELLO = 1,
    MG_MSG_RECON_Q = 2,
    MG_MSG_RECON_A = 3,
    MG_MSG_RECORDS = 4,
    MG_MSG_WANT = 5,
} mg_msg_type_t;

/* A decoded message. Pointers point into the decoded buffer: the message
   is valid as long as the bytes given to mg_msg_decode are. */
typedef struct {
    mg_msg_type_t type;
    /* HELLO */
    uint32_t version;
    uint8_t key[MG_KEY_BYTES];
    size_t endpoint_count;
    char endpoints[MG_ENDPOINTS_MAX][MG_ENDPOINT_MAX + 1];
    char name[256];
    /* RECON_Q / RECON_A */
    const uint8_t *payload;
    size_t payload_len;
    /* RECORDS: count records, each a (pointer, length) into the buffer */
    size_t count;
    const uint8_t **items;   /* RECORDS: record bytes; WANT: vids */
    size_t *item_lens;
} mg_msg_t;

/* Decodes one message. *out must be released with mg_msg_clear. */
int mg_msg_decode(const uint8_t *data, size_t len, mg_msg_t *out,
                  mg_why_t *why);

/* Releases what mg_msg_decode allocated (safe on a zeroed message). */
void mg_msg_clear(mg_msg_t *msg);

/* Encoders. Caller owns *out (free()). */
int mg_msg_hello(const uint8_t key[MG_KEY_BYTES], const char *const *endpoints,
                 size_t endpoint_count, const char *name, uint8_t **out,
                 size_t *out_len);
int mg_msg_recon(mg_msg_type_t type, const uint8_t *payload, size_t len,
                 uint8_t **out, size_t *out_len);
/* items[i] of lens[i] bytes: records (RECORDS) or 32-byte vids (WANT). */
int mg_msg_list(mg_msg_type_t type, const uint8_t *const *items,
                const size_t *lens, size_t count, uint8_t **out,
                size_t *out_len);

/* A short name of a message type for logs ("HELLO", ...). */
const char *mg_msg_name(int type);

#endif
