/*  mg_body.h - a record body: a map from field name to value.

    Keys are kept sorted (bytewise), so a body always encodes to the same
    msgpack bytes whatever order fields were set in: two bodies are equal
    exactly when their encodings are equal. Values are a string, a list of
    strings, a number, or RAW: any other msgpack value, kept as its exact
    bytes so that fields this version does not know survive a round trip
    (forward compatibility).
*/
#ifndef MG_BODY_H
#define MG_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_error.h"

typedef enum {
    MG_VAL_STR = 1,  /* UTF-8 string */
    MG_VAL_LIST = 2, /* list of UTF-8 strings (a multi-valued field) */
    MG_VAL_NUM = 3,  /* number (msgpack float64, or an integer on decode) */
    MG_VAL_RAW = 4,  /* any other msgpack value, as its exact encoded bytes */
} mg_val_type_t;

typedef struct mg_body_t mg_body_t;

/* Creates an empty body. Caller owns return value; NULL if out of memory. */
mg_body_t *mg_body_new(void);

/* Destroys a body and nulls the caller's pointer; safe on NULL. */
void mg_body_destroy(mg_body_t **self_p);

/* Deep copy. Caller owns return value; NULL if out of memory. */
mg_body_t *mg_body_dup(const mg_body_t *self);

/* Setters copy their arguments and replace any previous value of `key`.
   Return MG_OK or MG_ERR_NOMEM. They do not validate: see mg_offer.h. */
int mg_body_set_str(mg_body_t *self, const char *key, const char *value);
int mg_body_set_list(mg_body_t *self, const char *key,
                     const char *const *items, size_t count);
/* Splits `joined` on `sep` (e.g. '|'), trims spaces around each item and
   drops empty items; an empty result removes the field. */
int mg_body_set_list_split(mg_body_t *self, const char *key,
                           const char *joined, char sep);
int mg_body_set_num(mg_body_t *self, const char *key, double value);
int mg_body_set_raw(mg_body_t *self, const char *key,
                    const uint8_t *msgpack, size_t len);

/* Removes `key`; returns MG_OK, or MG_ERR_NOT_FOUND if it was absent. */
int mg_body_remove(mg_body_t *self, const char *key);

/* Number of fields, and positional access in sorted key order. */
size_t mg_body_count(const mg_body_t *self);
const char *mg_body_key_at(const mg_body_t *self, size_t index);
mg_val_type_t mg_body_type_at(const mg_body_t *self, size_t index);

/* Index of `key`, or -1 when absent. */
int mg_body_find(const mg_body_t *self, const char *key);

/* Typed getters. They return NULL / 0 / -1 when the field is absent or
   has another type. Returned pointers belong to the body. */
const char *mg_body_str(const mg_body_t *self, const char *key);
/* Sets *items to the list's strings and returns their count. A string
   field is returned as a one-item list. */
size_t mg_body_list(const mg_body_t *self, const char *key,
                    const char *const **items);
int mg_body_num(const mg_body_t *self, const char *key, double *value);
/* The exact msgpack bytes of a RAW field; NULL if absent or not RAW. */
const uint8_t *mg_body_raw(const mg_body_t *self, const char *key, size_t *len);

/* True when both bodies hold the same fields with the same values. */
bool mg_body_equal(const mg_body_t *a, const mg_body_t *b);

/* Encodes the body as a msgpack map with sorted keys. Caller owns *out
   (free()). Returns MG_OK or MG_ERR_NOMEM. */
int mg_body_encode(const mg_body_t *self, uint8_t **out, size_t *out_len);

/* Decodes a msgpack map. Keys must be strings, unique; strings must be
   valid UTF-8. Arrays whose items are all strings become LIST values;
   other non-string, non-number values become RAW. On failure returns a
   negative code and explains in `why`. Caller owns *out. */
int mg_body_decode(const uint8_t *data, size_t len, mg_body_t **out,
                   mg_why_t *why);

#endif
