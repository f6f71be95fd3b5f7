/*  mg_store_int.h - what the files of store/ share and nobody else sees.

    mg_store.c owns the connection, the schema and record application;
    mg_store_repl.c the replication reads (version ids, change feed,
    fingerprint); mg_store_peers.c the peer table. They share the handle,
    the statement cache and the error and transaction helpers below.
    Not installed, not included outside store/.
*/
#ifndef MG_STORE_INT_H
#define MG_STORE_INT_H

#include <sqlite3.h>
#include <stdbool.h>

#include "mg_store.h"

/* Statements prepared once per connection and reused, one slot each.
   Only statements that never call back into user code are cached: an
   iteration's callback may call the store again, and re-entering a
   cached statement would reset it under the caller's feet. */
typedef enum {
    /* mg_store.c */
    S_GET_COUNTER,
    S_NEXT_SEQ,
    S_UPSERT_RECORD,
    S_DELETE_TERMS,
    S_DELETE_OFFER,
    S_INSERT_OFFER,
    S_INSERT_TERM,
    S_GET_RAW,
    S_MAX_COUNTER,
    S_META_GET,
    S_META_SET,
    S_META_DEL,
    /* mg_store_repl.c */
    S_GET_BY_VID,
    S_LAST_SEQ,
    /* mg_store_peers.c */
    S_PEER_ADD,
    S_PEER_UPDATE,
    S_PEERS_VERSION,
    S_PEERS_BUMP,
    /* mg_store_events.c */
    S_EV_FIND_ROWS,
    S_EV_DEL_FTS,
    S_EV_DEL_TERRITORY,
    S_EV_DEL_TERM,
    S_EV_DEL_PARTNER,
    S_EV_DEL_EVENT,
    S_EV_DEL_RSVP,
    S_EV_DEL_NOTE_FTS,
    S_EV_DEL_NOTE_TERM,
    S_EV_DEL_NOTE,
    S_EV_INS_EVENT,
    S_EV_INS_TERRITORY,
    S_EV_INS_TERM,
    S_EV_INS_PARTNER,
    S_EV_INS_FTS,
    S_EV_INS_RSVP,
    S_EV_INS_NOTE,
    S_EV_INS_NOTE_TERM,
    S_EV_INS_NOTE_FTS,
    S_STMT_COUNT
} s_stmt_id_t;

/* Folded forms of the items of offers' multi-valued fields (services,
   publics): labels of the national standard's enumerations, a few dozen
   distinct strings met again in every offer. Folding each item of each
   offer (utf8proc_map and a malloc, ~10 per offer) was a tenth of the
   offer's indexing in the bootstrap profile (docs/benchmarks.md); a
   direct-mapped cache folds each label once. 64 slots hold both
   enumerations (about 40 labels) with few collisions; strings longer
   than MG_STORE_FOLD_TEXT_MAX are folded every time (slot 0 keeps the
   last one only so that the caller need not free it). */
#define MG_STORE_FOLDS 64
#define MG_STORE_FOLD_TEXT_MAX 160

typedef struct {
    char *text;                           /* the label as written, or NULL */
    char *folded;                         /* mg_store_fold(text) */
} mg_store_fold_t;

struct mg_store_t {
    sqlite3 *db;                          /* the connection; one per store */
    sqlite3_stmt *stmts[S_STMT_COUNT];    /* cached, prepared on first use */
    mg_store_fold_t folds[MG_STORE_FOLDS];/* label folds, see above */
    bool bulk_cache;                      /* page cache raised for bulk writes */
    bool defer_offers;                    /* in mg_store_apply_bulk: offers' search
                                             rows are left to mg_store_index_pending */
    int64_t deferred_from;                /* seq of the first offer so left, or 0 */
    /* mg_store_index_pending's plan: the owed offers' (rowid, seq) in
       (author, rid) order, worked through chunk by chunk. */
    struct mg_store_plan_t *plan;
    size_t plan_len, plan_next;
    int64_t plan_last_seq;                /* highest seq the plan covers */
};

/* Turns a SQLite failure `rc` into MG_ERR_BUSY or MG_ERR_DB with SQLite's
   message and `what` (French, "lecture d'une fiche"). Call it before
   anything else touches the connection. Returns the code. */
int mg_store_fail_(mg_store_t *self, int rc, mg_why_t *why,
                   const char *what);

/* The cached statement `id` (prepared from `sql` on first use), reset and
   ready to bind. Give it back with mg_store_done_. */
int mg_store_stmt_(mg_store_t *self, s_stmt_id_t id, const char *sql,
                   sqlite3_stmt **out, mg_why_t *why);

/* Resets a cached statement and clears its bindings, releasing its read
   lock. */
void mg_store_done_(sqlite3_stmt *stmt);

/* Steps a cached statement once (a write, or a RETURNING row that is not
   needed), then mg_store_done_. */
int mg_store_step_done_(mg_store_t *self, sqlite3_stmt *stmt, mg_why_t *why,
                        const char *what);

/* One unit of work: its own BEGIN IMMEDIATE transaction, or a savepoint
   when the caller already holds one (mg_store_begin). unit_end keeps the
   work when rc is MG_OK, else undoes it without overwriting `why`, and
   returns the final code. */
int mg_store_unit_begin_(mg_store_t *self, bool *nested, mg_why_t *why);
int mg_store_unit_end_(mg_store_t *self, bool nested, int rc, mg_why_t *why);

/* mg_store_events.c: the index rows of events, replies and notes, kept
   by the record apply path inside its unit of work. index_ writes the
   rows of a live record of kind event, rsvp or note (other kinds: no-op);
   unindex_ removes whatever rows (author, rid) has in those tables,
   whatever its previous kind was. */
int mg_store_events_index_(mg_store_t *self, const mg_record_t *record,
                           mg_why_t *why);
int mg_store_events_unindex_(mg_store_t *self, const uint8_t *author,
                             const char *rid, mg_why_t *why);

#endif
