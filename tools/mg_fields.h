/*  mg_fields.h - what the command line and the dashboard's API share
    about offers, profiles and status: fields typed by a person, checked
    and written into a body (`maillage offer add --services ...`, `profile
    set`, PUT /api/offers/ID), so that both accept the same values and give
    the same messages; and the JSON of `maillage status --json`. */
#ifndef MG_FIELDS_H
#define MG_FIELDS_H

#include "mg_cli.h"
#include "mg_offer.h"

/* Canonical label of an enumeration value typed by a person: exact, or
   equal once case and accents are folded ("aide aux demarches
   administratives"). NULL when none matches. */
const char *mg_enum_canonical(const mg_field_t *f, const char *value);

/* Sets field `f` of `body` from a value as typed (numbers as text, list
   items joined by "|"), checking it against the standard. MG_OK, or
   MG_ERR_SCHEMA with a French message in `why`; `body` is unchanged on
   failure. */
int mg_field_set_text(mg_body_t *body, const mg_field_t *f, const char *value,
                      mg_why_t *why);

/* This node's profile body (a copy; an empty body when there is none).
   Caller owns *body. */
int mg_profile_load(mg_node_ctx_t *ctx, mg_body_t **body, mg_why_t *why);

/* Profile fields an offer inherits when it does not say otherwise
   (NULL-terminated). */
extern const char *const mg_offer_inherited[];

/* Copies into `body` the inherited profile fields it lacks. */
int mg_offer_inherit(mg_node_ctx_t *ctx, mg_body_t *body, mg_why_t *why);

/* Resolves an offer id (or unique prefix) typed by a person into its
   author and rid. mine: only this node's offers; then an offer of
   another structure is MG_ERR_FORBIDDEN with a message saying so. */
int mg_offer_resolve(mg_node_ctx_t *ctx, const char *prefix, bool mine,
                     uint8_t author[32], char *rid, mg_why_t *why);

/* The structure name of an author (its profile's nom), or NULL. Caller
   frees. */
char *mg_author_name(mg_store_t *store, const uint8_t *author);

/* What `maillage status --json` prints: name, dir, public_key, node
   (running, pid, endpoints), fingerprint, versions, records by kind,
   authors, peers. NULL on failure (why says it). Caller owns it. */
struct json_t;
struct json_t *mg_status_json(mg_node_ctx_t *ctx, mg_why_t *why);

#endif
