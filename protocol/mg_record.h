/*  mg_record.h - signed records: the unit of everything a node shares.

    Wire form (see docs/protocol.md):

        record  = [payload: bin, signature: bin 64]          ; msgpack array
        payload = [version, kind, author, rid, counter,       ; msgpack array
                   created, deleted, body]

    The signature is Ed25519 (libsodium, detached) by `author` over the
    bytes "maillage-record-v1\0" || payload. A node keeps and forwards
    the record's bytes exactly as received; it never re-encodes a record
    it did not author.
*/
#ifndef MG_RECORD_H
#define MG_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_body.h"
#include "mg_error.h"

#define MG_RECORD_VERSION 1
#define MG_KEY_BYTES 32   /* Ed25519 public key */
#define MG_SECRET_BYTES 64 /* libsodium's Ed25519 secret key (seed || pk) */
#define MG_SIG_BYTES 64
#define MG_KIND_MAX 16    /* bytes in a kind name, [a-z] */
#define MG_RID_MAX 64     /* characters in a record id */
/* A whole encoded record. 64 KiB holds the longest real offer (a few KiB)
   many times over, while bounding what one peer can make us allocate. */
#define MG_RECORD_MAX 65536

/* Domain separation: a signature over a record can never be replayed as
   a signature over another kind of message this project signs. */
#define MG_RECORD_SIG_CONTEXT "maillage-record-v1"

/* The node's identity: its Ed25519 key pair. */
typedef struct {
    uint8_t pk[MG_KEY_BYTES];
    uint8_t sk[MG_SECRET_BYTES];
} mg_identity_t;

/* Fills `id` with a fresh random key pair. Returns MG_OK. */
int mg_identity_generate(mg_identity_t *id);

/* Derives the key pair from a 32-byte seed (deterministic). */
int mg_identity_from_seed(mg_identity_t *id, const uint8_t seed[32]);

/* Wipes secret material. */
void mg_identity_wipe(mg_identity_t *id);

typedef struct mg_record_t mg_record_t;

/* Builds and signs a record authored by `id`. `body` may be NULL (empty
   map); for a tombstone pass deleted=true and an empty or NULL body.
   Validates the envelope and, for known kinds, the body. Caller owns
   *out. Returns MG_OK or a negative code with `why` filled. */
int mg_record_sign(const mg_identity_t *id, const char *kind,
                   const char *rid, uint64_t counter, int64_t created_ms,
                   bool deleted, const mg_body_t *body, mg_record_t **out,
                   mg_why_t *why);

/* Decodes untrusted bytes: checks size limits, structure, UTF-8, the
   signature, and (for known kinds) the body. Never asserts on input.
   Caller owns *out. Returns MG_OK or a negative code with `why` filled. */
int mg_record_decode(const uint8_t *data, size_t len, mg_record_t **out,
                     mg_why_t *why);

/* Decodes bytes this node verified when it stored them (read back from
   its own store): the same checks as mg_record_decode except the
   signature, which is the costly part (~50 us). Never use it on bytes
   from the network or a file. */
int mg_record_decode_trusted(const uint8_t *data, size_t len,
                             mg_record_t **out, mg_why_t *why);

/* Destroys a record and nulls the caller's pointer; safe on NULL. */
void mg_record_destroy(mg_record_t **self_p);

/* Accessors. Pointers belong to the record. */
const uint8_t *mg_record_bytes(const mg_record_t *self, size_t *len);
uint32_t mg_record_version(const mg_record_t *self);
const char *mg_record_kind(const mg_record_t *self);
const uint8_t *mg_record_author(const mg_record_t *self);
const char *mg_record_rid(const mg_record_t *self);
uint64_t mg_record_counter(const mg_record_t *self);
int64_t mg_record_created(const mg_record_t *self);
bool mg_record_deleted(const mg_record_t *self);
const mg_body_t *mg_record_body(const mg_record_t *self);

/* True for the kinds this version understands and validates. Other kinds
   are kept and forwarded but not indexed. */
bool mg_kind_known(const char *kind);

/* Validates a body for a kind: offer and profile field rules (mg_offer.h);
   event, rsvp and note field rules (mg_event.h); unknown kinds accept
   any body. Tombstones are not validated. strict=false accepts
   enumeration labels this version does not know (records from peers). */
int mg_record_validate_body(const char *kind, const mg_body_t *body,
                            bool strict, mg_why_t *why);

#endif
