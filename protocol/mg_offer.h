/*  mg_offer.h - the national data standard for lieux de médiation
    numérique (v1.0.2, ../shared/data/standard-mediation-num/schema.json),
    as field rules for offer and profile bodies.

    Field names are the standard's. Multi-valued fields are lists in a
    body and `|`-joined in CSV. Enumerated fields accept exactly the
    standard's values (the schema's patterns are alternations of fixed
    labels, so checking each item against the label list is the same
    test as the pattern's full match). Beyond the standard, offers carry
    what the national guidance asks every offer to say: duree, frequence,
    demarche, objectifs.
*/
#ifndef MG_OFFER_H
#define MG_OFFER_H

#include <stdbool.h>
#include <stddef.h>

#include "mg_body.h"
#include "mg_error.h"

typedef enum {
    MG_FT_STRING,   /* free text */
    MG_FT_LIST,     /* multi-valued free text ('|' in CSV) */
    MG_FT_ENUM,     /* multi-valued, each item from `values` */
    MG_FT_NUMBER,   /* latitude / longitude */
    MG_FT_DATE,     /* YYYY-MM-DD, a real calendar date */
    MG_FT_PATTERN,  /* a single string matching a fixed syntax (`check`) */
} mg_field_type_t;

typedef struct {
    const char *name;        /* the standard's field name */
    mg_field_type_t type;    /* how values are represented and checked */
    bool required;           /* required by the standard in an offer */
    bool standard;           /* false for maillage's additions */
    size_t max_chars;        /* longest value in characters (0: default) */
    const char *const *values; /* MG_FT_ENUM: allowed labels, NULL-ended */
    bool (*check)(const char *value); /* MG_FT_PATTERN: syntax check */
    const char *syntax;      /* MG_FT_PATTERN: the schema's regex, for messages */
    const char *title;       /* short French description for --help */
} mg_field_t;

/* The fields in the order of the standard's CSV header, followed by
   maillage's additions. Ends with an entry whose name is NULL. */
const mg_field_t *mg_offer_fields(void);

/* The field named `name`, or NULL. */
const mg_field_t *mg_offer_field(const char *name);

/* Number of standard fields (the CSV header length). */
size_t mg_offer_standard_count(void);

/* Longest string value accepted in any body field, in bytes. */
#define MG_STRING_MAX 8192
/* Most items in a multi-valued field. */
#define MG_LIST_MAX 64

/* Validates an offer body: required fields present, every known field of
   the right type and value, limits respected. Unknown fields are allowed
   (kept, not indexed). Returns MG_OK or MG_ERR_SCHEMA with `why` naming
   the field and, for enumerations, listing the allowed values. */
int mg_offer_validate(const mg_body_t *body, mg_why_t *why);

/* Like mg_offer_validate, but an enumerated field may hold labels this
   version does not know (a newer standard's), as long as each is a
   well-formed item. Used on records received from other nodes, so a node
   never drops -- and so never stops forwarding -- a newer node's offer;
   authoring and import stay strict. */
int mg_offer_validate_lenient(const mg_body_t *body, mg_why_t *why);

/* Validates a profile body: `nom` required; the fields it shares with the
   standard (pivot, code_postal, code_insee, telephone, ...) follow the
   same rules; `endpoints` is a list. */
int mg_profile_validate(const mg_body_t *body, mg_why_t *why);
int mg_profile_validate_lenient(const mg_body_t *body, mg_why_t *why);

/* Validates one value of one field (a single item for list fields). */
int mg_field_check_item(const mg_field_t *field, const char *value,
                        mg_why_t *why);

/* Département code of a place: from the INSEE code when given (2A/2B,
   97x), else from the postal code. Writes up to 3 chars + NUL into out;
   returns 0, or -1 when neither code is usable. */
int mg_departement_of(const char *code_insee, const char *code_postal,
                      char out[4]);

/* The reconciliation bucket of a record: a territory number, so that one
   département's records form one contiguous range of the reconciliation
   keys (a node replicating some territories only can skip the others).
   Offers and profiles: the département of code_insee / code_postal as
   10 x its number ("16" -> 160, "2A" -> 201, "2B" -> 202, "971" -> 971);
   everything else, tombstones included: 0. */
struct mg_record_t;
uint64_t mg_record_bucket(const struct mg_record_t *record);

#endif
