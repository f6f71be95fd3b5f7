/*  mg_json.h - record bodies to and from JSON (jansson). */
#ifndef MG_JSON_H
#define MG_JSON_H

#include <jansson.h>

#include "mg_body.h"
#include "mg_record.h"

/* Body -> JSON object: STR -> string, LIST -> array of strings,
   NUM -> real (integer when integral), RAW -> the msgpack value converted
   to JSON (binary as base64-free hex string). Caller owns return value. */
json_t *mg_body_to_json(const mg_body_t *body);

/* JSON object -> body: strings, numbers, arrays of strings map to STR,
   NUM, LIST; any other value (object, bool, mixed array, null) is kept
   as RAW msgpack. Caller owns *out. */
int mg_json_to_body(const json_t *object, mg_body_t **out, mg_why_t *why);

/* The object `--json` prints for an offer or profile record: the body's
   fields under the standard's names, except that "id" is the record id
   (shell-safe, abbreviable) and the standard's own local id, when the
   body has one, is "id_standard"; plus "author" (hex public key) and
   "updated" (the version's signed creation time, ISO 8601 UTC).
   Caller owns return value. */
json_t *mg_record_to_json(const mg_record_t *record);

/* Formats a millisecond Unix time as "YYYY-MM-DDTHH:MM:SSZ" (UTC). */
void mg_time_iso(int64_t ms, char out[32]);

#endif
