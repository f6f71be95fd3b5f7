/*  mg_store.h - the node's SQLite store: the single source of truth.

    One database file per node, in WAL mode with a busy timeout, so the
    CLI and the node daemon can use it at the same time. Records are kept
    as their exact signed bytes; indexes are derived from them and can be
    rebuilt. Applying a record is idempotent and never lets an older or
    forged version win. See docs/architecture.md.
*/
#ifndef MG_STORE_H
#define MG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_error.h"
#include "mg_record.h"

typedef struct mg_store_t mg_store_t;

/* Current schema version; mg_store_open migrates older files up to it. */
#define MG_STORE_SCHEMA_VERSION 1

/* Opens (creating if needed) the database at `path`, enables WAL and a
   busy timeout, and runs pending migrations. A file written by a newer
   schema version is refused. Caller owns *out. */
int mg_store_open(const char *path, mg_store_t **out, mg_why_t *why);

/* Closes and nulls the caller's pointer; safe on NULL. */
void mg_store_destroy(mg_store_t **self_p);

/* Explicit transactions, for all-or-nothing imports. begin takes the
   write lock at once (BEGIN IMMEDIATE). Nested calls are not supported. */
int mg_store_begin(mg_store_t *self, mg_why_t *why);
int mg_store_commit(mg_store_t *self, mg_why_t *why);
int mg_store_rollback(mg_store_t *self);

/* What applying a record did. */
typedef enum {
    MG_APPLY_NEW = 1,       /* first version of (author, rid) stored */
    MG_APPLY_REPLACED = 2,  /* a newer version replaced the stored one */
    MG_APPLY_KEPT = 3,      /* the stored version is as new or newer: nothing changed */
} mg_apply_t;

/* Decodes and verifies `data` (mg_record_decode) and applies it. A record
   that fails verification changes nothing and returns its error. */
int mg_store_apply(mg_store_t *self, const uint8_t *data, size_t len,
                   mg_apply_t *outcome, mg_why_t *why);

/* Applies an already verified record: stores it iff its counter is
   greater than the stored version's for (author, rid), replacing it and
   its index entries (a tombstone removes the index entries). Atomic. */
int mg_store_apply_record(mg_store_t *self, const mg_record_t *record,
                          mg_apply_t *outcome, mg_why_t *why);

/* The stored version of (author, rid), tombstones included. Caller owns
   *out. MG_ERR_NOT_FOUND when absent. */
int mg_store_get(mg_store_t *self, const uint8_t author[MG_KEY_BYTES],
                 const char *rid, mg_record_t **out, mg_why_t *why);

/* Finds the one live (non-deleted) record of `kind` whose rid starts
   with `prefix`, like git's abbreviated ids. `author` restricts the search
   when not NULL. Fills author_out and rid_out (MG_RID_MAX+1 bytes).
   MG_ERR_NOT_FOUND or MG_ERR_AMBIGUOUS (why lists a few candidates). */
int mg_store_resolve(mg_store_t *self, const char *kind, const char *prefix,
                     const uint8_t *author, uint8_t author_out[MG_KEY_BYTES],
                     char *rid_out, mg_why_t *why);

/* Highest counter among `author`'s stored records (0 if none): the next
   record this author signs uses this + 1. */
int mg_store_max_counter(mg_store_t *self, const uint8_t author[MG_KEY_BYTES],
                         uint64_t *out);

/* Called once per record; return non-zero to stop the iteration (that
   value is then returned by the iterating function). The record is only
   valid during the call. */
typedef int (mg_record_fn)(const mg_record_t *record, void *arg);

/* Filters for offer queries; NULL members do not filter. Text filters
   compare case- and accent-insensitively (utf8proc case fold + strip). */
typedef struct {
    const char *service;        /* one of the offer's services */
    const char *public_;        /* one of publics_specifiquement_adresses;
                                   offers with no specific public match too */
    const char *commune;        /* commune name */
    const char *code_postal;
    const char *departement;    /* "16", "2A", "971" */
    const uint8_t *author;      /* only this author's offers */
} mg_offer_query_t;

/* Iterates live offers matching `query` (NULL: all), ordered by commune
   then nom then rid. Returns MG_OK, a callback's non-zero value, or an
   error. */
int mg_store_offers(mg_store_t *self, const mg_offer_query_t *query,
                    mg_record_fn *fn, void *arg, mg_why_t *why);

/* Iterates stored records of `kind` (NULL: every kind), live only unless
   `with_tombstones`, ordered by author then rid. */
int mg_store_records(mg_store_t *self, const char *kind, bool with_tombstones,
                     mg_record_fn *fn, void *arg, mg_why_t *why);

/* Counts for `maillage status`. */
typedef struct {
    const uint8_t *author;  /* NULL for the by-kind totals */
    const char *kind;
    int64_t live;           /* records that are not tombstones */
    int64_t tombstones;
} mg_count_t;
typedef int (mg_count_fn)(const mg_count_t *count, void *arg);
/* by_author=false: one row per kind; true: one row per (author, kind).
   Ordered by kind, or by author then kind. */
int mg_store_counts(mg_store_t *self, bool by_author, mg_count_fn *fn,
                    void *arg, mg_why_t *why);

/* A small key/value table for node settings (e.g. "name"). get copies
   into `out` (NUL-terminated, truncated to `size`); MG_ERR_NOT_FOUND when
   unset. */
int mg_store_meta_get(mg_store_t *self, const char *key, char *out,
                      size_t size);
int mg_store_meta_set(mg_store_t *self, const char *key, const char *value,
                      mg_why_t *why);

/* Runs PRAGMA integrity_check; MG_OK when it answers "ok". */
int mg_store_check(mg_store_t *self, mg_why_t *why);

/* Folds `text` the way the offer index does, so that callers (CLI,
   analysis) compare strings as queries do: Unicode case fold, accents
   stripped, typographic apostrophes/dashes/spaces lumped to ASCII, runs
   of spaces and hyphens collapsed to one space, trimmed ("  Saint-
   Yrieix  " → "saint yrieix"). Caller owns *out (free()). Returns MG_OK,
   MG_ERR_UTF8 (not valid UTF-8), MG_ERR_NOMEM or MG_ERR_ARG. */
int mg_store_fold(const char *text, char **out);

/* The underlying handle, for tests and later modules of store/. */
struct sqlite3 *mg_store_db(mg_store_t *self);

#endif
