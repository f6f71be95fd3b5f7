/*  mg_wire.h - msgpack helpers shared inside the project (not a public
    format of their own). */
#ifndef MG_WIRE_H
#define MG_WIRE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_body.h"
#include "mg_error.h"

/* Deepest nesting of arrays/maps accepted in untrusted msgpack. A record
   needs 4 (record, payload, body, list); 16 leaves room for unknown
   fields while keeping recursion and msgpack-c's stack bounded. */
#define MG_WIRE_DEPTH_MAX 16
/* Most fields in one body, and the longest field name in bytes. */
#define MG_BODY_FIELDS_MAX 256
#define MG_FIELD_NAME_MAX 64

/* Walks untrusted bytes before msgpack-c sees them: they must hold exactly
   one complete msgpack value, nested at most MG_WIRE_DEPTH_MAX deep, with
   every declared length and element count within the bytes that remain
   (msgpack-c would otherwise allocate for a declared count of 2^32 items
   before finding the input short), and every str value valid UTF-8
   without NUL (bin values are opaque). Returns MG_OK or MG_ERR_MALFORMED. */
int mg_wire_scan(const uint8_t *data, size_t len, mg_why_t *why);

/* Packs a body as a sorted msgpack map. */
int mg_body_pack(const mg_body_t *self, msgpack_packer *pk);

/* Builds a body from an unpacked msgpack map (checks as mg_body_decode). */
int mg_body_from_object(const msgpack_object *map, mg_body_t **out,
                        mg_why_t *why);

#endif
