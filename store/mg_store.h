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
#define MG_STORE_SCHEMA_VERSION 3

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

/* Applies many already verified records in one transaction (BEGIN
   IMMEDIATE ... COMMIT, or a savepoint inside the caller's transaction),
   as mg_store_apply_record would one by one, in order: a record that
   appears twice meets its own first copy. outcomes[i] tells what
   happened to records[i]. All or nothing: on any failure nothing is
   stored and `outcomes` is unspecified. A batch where nothing is newer
   than what is stored takes no write lock. The daemon applies what a
   peer sends this way: one commit per batch instead of one per record. */
int mg_store_apply_batch(mg_store_t *self, mg_record_t *const *records,
                         size_t count, mg_apply_t *outcomes, mg_why_t *why);

/* Whether any of `records` is newer than what is stored (so that
   applying them would write), read without the write lock. */
int mg_store_any_newer(mg_store_t *self, mg_record_t *const *records,
                       size_t count, bool *any, mg_why_t *why);

/* Applies verified records inside the caller's transaction
   (mg_store_begin) with no savepoint of its own: the unit of all or
   nothing is the caller's whole transaction. On any failure that
   transaction is rolled back -- what this and the earlier calls since
   mg_store_begin wrote is gone, the records can be applied again -- and
   the error returned. The fast path of a bulk pull: per-record
   savepoints cost a third of the write. outcomes[i] as in
   mg_store_apply_batch; MG_ERR_ARG when no transaction is open.
   A live offer's search rows (listings, search, analyses: offer_idx and
   offer_term) are not written: the store records, in the same
   transaction, that they are owed, and mg_store_index_pending writes
   them later in (author, rid) order. Records, their fingerprint, the
   change feed and what is served to peers are complete at once. */
int mg_store_apply_bulk(mg_store_t *self, mg_record_t *const *records,
                        size_t count, mg_apply_t *outcomes, mg_why_t *why);

/* Writes up to `max` records' worth of the search rows that
   mg_store_apply_bulk left owed, in one transaction, sorted by (author,
   rid) so that the index pages are written in order rather than at
   random. *left (may be NULL): at most how many records are still to be
   looked at, 0 when the search rows are complete. A failure changes
   nothing and can be retried. */
int mg_store_index_pending(mg_store_t *self, size_t max, int64_t *left,
                           mg_why_t *why);

/* At most how many records may still lack their search rows (0 when
   listings, search and analyses see every offer). */
int mg_store_offers_pending(mg_store_t *self, int64_t *count);

/* Gives back the memory of the page cache: a bulk write (an explicit
   transaction, a large mg_store_apply_batch) raises the cache to hold
   the indexes it touches; the daemon calls this once a bootstrap or a
   large pull is committed, so that an idle node stays small. Only costs
   speed; never fails. */
void mg_store_release_memory(mg_store_t *self);

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

/* Signs the next version of (kind, rid) by `id` (counter: one above the
   highest of all its records here) dated `created_ms`, and applies it, in
   one write transaction, so that two programs writing for one identity
   never reuse a counter. deleted=true writes a tombstone (body ignored).
   The authoring of `maillage`, the dashboard, the daemon's own profile
   and the tests. */
int mg_store_author(mg_store_t *self, const mg_identity_t *id, const char *kind,
                    const char *rid, int64_t created_ms, bool deleted,
                    const mg_body_t *body, mg_why_t *why);

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
/* Removes `key`; MG_OK whether or not it was set. */
int mg_store_meta_del(mg_store_t *self, const char *key, mg_why_t *why);
/* Integers stored as decimal text. get_int: MG_ERR_NOT_FOUND when unset,
   MG_ERR_MALFORMED when the value is not a decimal int64. */
int mg_store_meta_get_int(mg_store_t *self, const char *key, int64_t *out);
int mg_store_meta_set_int(mg_store_t *self, const char *key, int64_t value,
                          mg_why_t *why);

/* Meta keys the running daemon keeps up to date, so that `maillage
   status` in another process can describe it. The daemon sets pid,
   started_ms and endpoints at start, heartbeat_ms every few seconds, and
   deletes pid at a clean stop. A reader considers the node running when
   node.pid is set and node.heartbeat_ms is recent (a crashed daemon
   leaves a stale heartbeat). Times are ms since the Unix epoch. */
#define MG_META_NODE_PID "node.pid"                 /* decimal process id */
#define MG_META_NODE_STARTED_MS "node.started_ms"   /* decimal */
#define MG_META_NODE_HEARTBEAT_MS "node.heartbeat_ms" /* decimal */
#define MG_META_NODE_ENDPOINTS "node.endpoints"     /* bound endpoints,
                                                       space-separated */

/* Runs PRAGMA integrity_check; MG_OK when it answers "ok". */
int mg_store_check(mg_store_t *self, mg_why_t *why);

/* Folds `text` the way the offer index does, so that callers (CLI,
   analysis) compare strings as queries do: Unicode case fold, accents
   stripped, typographic apostrophes/dashes/spaces lumped to ASCII, runs
   of spaces and hyphens collapsed to one space, trimmed ("  Saint-
   Yrieix  " → "saint yrieix"). Caller owns *out (free()). Returns MG_OK,
   MG_ERR_UTF8 (not valid UTF-8), MG_ERR_NOMEM or MG_ERR_ARG. */
int mg_store_fold(const char *text, char **out);

/* ------------------------------------------------------------------ */
/* Replication (mg_store_repl.c)                                        */

/* Version ids. A record version's vid is BLAKE2b-256 (unkeyed) of its
   exact signed bytes: two nodes holding the same version hold the same
   vid, and any different version -- newer, forged, or re-encoded -- has
   another. The store keeps each stored version's vid and reconciliation
   bucket (mg_record_bucket, mg_offer.h) beside its bytes. */
#define MG_VID_BYTES 32

/* The vid of `record` (of its bytes as mg_record_bytes gives them). The
   daemon computes the vids of what it applies with this. */
void mg_store_vid_of(const mg_record_t *record, uint8_t out[MG_VID_BYTES]);

/* Called once per stored version; return non-zero to stop (that value
   is then returned by mg_store_items). `vid` is only valid during the
   call. */
typedef int (mg_item_fn)(uint64_t bucket, const uint8_t vid[MG_VID_BYTES],
                         void *arg);

/* Every stored version, tombstones and unknown kinds included, in
   (bucket, vid) order, read from an index without touching the records'
   bytes: this fills the daemon's reconciliation set at start. The
   callback may read the store but must not write to it. To follow the
   store afterwards, call mg_store_last_seq BEFORE this, then poll
   mg_store_changes_since from that seq: a write that lands in between
   is then seen twice, never missed. */
int mg_store_items(mg_store_t *self, mg_item_fn *fn, void *arg,
                   mg_why_t *why);

/* The bytes of the stored version whose vid is `vid`. Caller owns *raw
   (free()). MG_ERR_NOT_FOUND when no stored record has that vid, e.g.
   it was replaced by a newer version since the caller saw it. */
int mg_store_get_vid(mg_store_t *self, const uint8_t vid[MG_VID_BYTES],
                     uint8_t **raw, size_t *len, mg_why_t *why);

/* The change feed. Each store write of a record version takes the next
   store-wide sequence number `seq` (its row keeps it), whichever process
   wrote it; a replaced version's row takes the new version's seq, so the
   feed shows every (author, rid) once, at its latest version.
   last_seq: the last seq handed out (0 for an empty store). */
int mg_store_last_seq(mg_store_t *self, int64_t *seq);

/* One stored version in the change feed. `author` and `rid` identify the
   record (so the caller can drop the vid it had for that (author, rid):
   the replaced version no longer appears anywhere); `raw`/`len` are its
   exact bytes, `bucket`/`vid` its reconciliation key. Pointers are only
   valid during the call. Return non-zero to stop (that value is then
   returned by mg_store_changes_since). */
typedef int (mg_change_fn)(int64_t seq, const uint8_t author[MG_KEY_BYTES],
                           const char *rid, const uint8_t *raw, size_t len,
                           uint64_t bucket, const uint8_t vid[MG_VID_BYTES],
                           void *arg);

/* Calls `fn` for the stored versions with seq > after_seq, in seq order,
   at most `limit` of them (0: no limit). The caller remembers the last
   seq it was given and asks again from there. Commits are in seq order
   (one writer at a time), so nothing is skipped. The callback may read
   the store but must not write to it. */
int mg_store_changes_since(mg_store_t *self, int64_t after_seq, size_t limit,
                           mg_change_fn *fn, void *arg, mg_why_t *why);

/* Fingerprint of the whole store, as range-based reconciliation
   fingerprints a range: BLAKE2b-128 (unkeyed) of
       sum || count
   where sum is the sum of all stored vids read as little-endian 256-bit
   integers, modulo 2^256 (32 bytes, little-endian), and count the number
   of stored versions (8 bytes, little-endian). Two stores holding the
   same versions have the same fingerprint, whatever the order they
   received them in. *count (may be NULL) gets the number of versions. */
#define MG_FINGERPRINT_BYTES 16
int mg_store_fingerprint(mg_store_t *self, uint8_t out[MG_FINGERPRINT_BYTES],
                         int64_t *count, mg_why_t *why);

/* ------------------------------------------------------------------ */
/* Peers (mg_store_peers.c)                                             */

/* The peers this node knows, one row per (key, endpoint): the CLI adds
   and removes them (`maillage peer add/rm`), the daemon adds the ones it
   discovers and keeps their state up to date. */
#define MG_ENDPOINT_MAX 255 /* bytes in an endpoint, without the NUL */

/* How a peer was learnt: "invite" (an invite code), "profile" (a signed
   profile record's endpoints), "beacon" (LAN discovery), "inbound" (it
   connected to us). */
#define MG_PEER_SOURCE_MAX 15
/* Where the daemon is with a peer: "new" (never tried), "connecting",
   "live", "backoff" (failed, next try at next_try_ms), "dead" (given up). */
#define MG_PEER_STATE_MAX 15

typedef struct {
    uint8_t key[MG_KEY_BYTES];            /* the peer's Ed25519 public key */
    char endpoint[MG_ENDPOINT_MAX + 1];   /* e.g. "tcp://192.0.2.1:7470" */
    char source[MG_PEER_SOURCE_MAX + 1];  /* how it was learnt (above) */
    char state[MG_PEER_STATE_MAX + 1];    /* the daemon's state (above) */
    int64_t added_ms;       /* when it was added (ms since the epoch) */
    int64_t last_seen_ms;   /* last message received from it; 0: never */
    int64_t last_sync_ms;   /* last completed reconciliation; 0: never */
    int64_t records_in;     /* records received from it that were new */
    int64_t records_out;    /* records sent to it */
    int64_t next_try_ms;    /* backoff: do not dial before this */
    int failures;           /* consecutive failed attempts */
} mg_peer_row_t;

/* Adds the peer (key, endpoint) in state "new" with zero counters.
   `source` is one of the sources above. If it is already known, changes
   nothing and sets *added (may be NULL) to false. MG_ERR_ARG for an
   empty or too long endpoint or an unknown source. */
int mg_store_peer_add(mg_store_t *self, const uint8_t key[MG_KEY_BYTES],
                      const char *endpoint, const char *source,
                      int64_t now_ms, bool *added, mg_why_t *why);

/* Writes the mutable columns of the peer (row->key, row->endpoint):
   source, state, last_seen_ms, last_sync_ms, records_in, records_out,
   failures, next_try_ms (added_ms is kept). MG_ERR_NOT_FOUND if the peer
   was removed meanwhile (e.g. by `maillage peer rm` in another process):
   the daemon should then drop it. MG_ERR_ARG for an unknown state or
   source. */
int mg_store_peer_update(mg_store_t *self, const mg_peer_row_t *row,
                         mg_why_t *why);

/* Removes every peer whose endpoint equals `what`, and, when `what` is
   4 to 64 hex digits (either case), every peer whose hex key starts with
   it. *removed (may be NULL) gets the number of rows removed. A key
   prefix matching several different keys removes nothing and returns
   MG_ERR_AMBIGUOUS (why lists them); nothing matching returns
   MG_ERR_NOT_FOUND (MG_ERR_ARG when `what` looked like a key prefix
   shorter than 4 digits). */
int mg_store_peer_rm(mg_store_t *self, const char *what, int *removed,
                     mg_why_t *why);

/* Called once per peer with a copy the callback may keep; return
   non-zero to stop (that value is then returned by mg_store_peers). */
typedef int (mg_peer_fn)(const mg_peer_row_t *row, void *arg);

/* Every peer, ordered by added_ms (then key, endpoint). The rows are
   read before the first call, so the callback may write to the store
   (e.g. mg_store_peer_update). */
int mg_store_peers(mg_store_t *self, mg_peer_fn *fn, void *arg,
                   mg_why_t *why);

/* A counter bumped by every mg_store_peer_add that adds and every
   mg_store_peer_rm that removes, in any process (not by updates): the
   daemon compares it with the value it last saw to notice `maillage peer
   add/rm` with one cheap read, then reloads with mg_store_peers. */
int mg_store_peers_version(mg_store_t *self, int64_t *version);

/* The underlying handle, for tests and later modules of store/. */
struct sqlite3 *mg_store_db(mg_store_t *self);

/* How long a write waits for a lock held by another program before it
   fails with MG_ERR_BUSY: `ms`, or the default (5 s) when `ms` < 0. The
   daemon sets 0 around its bookkeeping writes (heartbeat, peer table),
   which may be skipped, so that another program's long write does not
   hold its event loop. */
void mg_store_set_busy_timeout(mg_store_t *self, int ms);

/* ------------------------------------------------------------------ */
/* Events, replies and notes (mg_store_events.c; docs/events.md)        */

/* How long past events stay in the local indexes (listed by `event list
   --past`, exported, searchable), in days after their end. Older events
   are dropped from the indexes only: their records stay in the store and
   keep replicating until their author deletes them. Unset: the default. */
#define MG_META_EVENT_RETENTION_DAYS "events.retention_days"
#define MG_EVENT_RETENTION_DEFAULT_DAYS 365
/* When the indexes were last purged (ms since the epoch). */
#define MG_META_EVENT_PURGED_MS "events.purged_ms"

/* Filters for mg_store_events; zero members do not filter. */
typedef struct {
    int64_t now_ms;          /* "now" for the time filters; 0: the clock */
    bool upcoming;           /* only events not over yet (fin > now) */
    bool past;               /* only events over (fin <= now), latest first */
    const char *territory;   /* events reaching this commune (INSEE code)
                                or département: aimed at it, at its
                                département / one of its communes, or open
                                to all (no territory) */
    const char *service;     /* one of the event's services (folded) */
    const uint8_t *mine;     /* events this key organises or co-organises */
    const uint8_t *author;   /* only this organiser's events */
    const char *search;      /* words of the title, description or place
                                (full text, accent-insensitive, prefixes) */
    bool near;               /* keep events within within_km of
                                (near_lat, near_lon); events with no known
                                coordinates (online only, unknown postal
                                code) are left out */
    double near_lat, near_lon, within_km;
    const uint8_t *viewer;   /* fill the row's my_* members for this key */
    /* Invitations of `invitee`: upcoming events of other organisers that
       it does not co-organise and has not answered, open to all or
       aimed at invitee_insee or invitee_dep (either may be NULL). */
    const uint8_t *invitee;
    const char *invitee_insee;
    const char *invitee_dep;
} mg_event_query_t;

/* What the indexes know of an event, beside its record. */
typedef struct {
    int64_t start_ms, end_ms;   /* UTC, ms since the epoch */
    bool cancelled;             /* the event carries annule_le */
    int64_t capacity;           /* 0: no limit */
    bool has_coords;            /* lat/lon known: the event's own, or the
                                   mean of the offers of its postal code */
    double lat, lon;
    double distance_km;         /* from the query's point; -1 if not asked */
    char my_answer[16];         /* the viewer's reply, "" when none */
    int64_t my_seats;           /* seats of that reply */
    bool viewer_organiser;      /* the viewer is the author */
    bool viewer_partner;        /* the viewer co-organises it */
    int64_t seats_yes;          /* seats asked by "oui" replies (confirmed
                                   and waiting) */
    int64_t replies_yes, replies_maybe, replies_no;
} mg_event_row_t;

/* Called once per event; return non-zero to stop. Both pointers are only
   valid during the call. */
typedef int (mg_event_fn)(const mg_record_t *event, const mg_event_row_t *row,
                          void *arg);

/* Iterates the indexed live events matching `query` (NULL: all), by
   start then author then rid (latest first with `past`). Events ended
   more than the retention period ago are never listed. Returns MG_OK, a
   callback's non-zero value, or an error (MG_ERR_ARG for a search with
   no word, a malformed territory code). */
int mg_store_events(mg_store_t *self, const mg_event_query_t *query,
                    mg_event_fn *fn, void *arg, mg_why_t *why);

/* The mean coordinates of the offers of a postal code: how `--near CP`
   finds its point. MG_ERR_NOT_FOUND when no offer there has any. */
int mg_store_postal_coords(mg_store_t *self, const char *code_postal,
                           double *lat, double *lon);

/* Where a reply stands in the tally. */
typedef enum {
    MG_REPLY_CONFIRMED = 1,  /* "oui" within the capacity */
    MG_REPLY_WAITING = 2,    /* "oui" beyond it: the waiting list */
    MG_REPLY_MAYBE = 3,      /* "peut-etre" */
    MG_REPLY_NO = 4,         /* "non" */
    MG_REPLY_OTHER = 5,      /* an answer of a newer version: not counted */
} mg_reply_status_t;

typedef struct {
    uint8_t author[MG_KEY_BYTES]; /* the replying node */
    int64_t created;           /* the reply version's signed creation time */
    char answer[16];           /* as signed ("oui", "non", "peut-etre") */
    int64_t seats;             /* seats asked (1 when the reply says none) */
    char *comment;             /* NULL when none; owned by the tally */
    mg_reply_status_t status;
    int64_t position;          /* 1-based place on the waiting list, else 0 */
} mg_reply_t;

typedef struct {
    int64_t capacity;          /* 0: no limit */
    int64_t seats_confirmed;   /* seats of MG_REPLY_CONFIRMED replies */
    int64_t seats_waiting;     /* seats of MG_REPLY_WAITING replies */
    size_t count;              /* replies */
    mg_reply_t *replies;       /* by created, then author key (bytes) */
} mg_tally_t;

/* The replies to the event (author, rid) and who gets a seat: "oui"
   replies take seats in the order above until one does not fit; it and
   every later "oui" wait, in the same order (first come, first served,
   no overtaking). Every node holding the same replies computes the same
   tally. MG_ERR_NOT_FOUND when the store has no such event. Caller owns
   *out (mg_tally_destroy). */
int mg_store_event_tally(mg_store_t *self, const uint8_t author[MG_KEY_BYTES],
                         const char *rid, mg_tally_t **out, mg_why_t *why);
void mg_tally_destroy(mg_tally_t **self_p);

/* Filters for notes; NULL members do not filter. */
typedef struct {
    const char *tag;          /* one of the note's tags (folded) */
    const char *service;      /* one of its services (folded) */
    const uint8_t *author;    /* only this author's notes */
} mg_note_query_t;

/* Iterates live notes matching `query` (NULL: all), newest first. */
int mg_store_notes(mg_store_t *self, const mg_note_query_t *query,
                   mg_record_fn *fn, void *arg, mg_why_t *why);

/* One search hit: the note, a snippet of its best matching column with
   the matched words between `open` and `close`, and its bm25 score
   (lower is better). Pointers are only valid during the call. */
typedef int (mg_note_hit_fn)(const mg_record_t *note, const char *snippet,
                             double score, void *arg);

/* Full-text search of notes (title, text, tags): every word must match,
   as a prefix ("demarch" finds "démarches"), ignoring case and accents;
   ranked by bm25 with the title weighing most. At most `limit` hits (0:
   20). `query` further filters (may be NULL). MG_ERR_ARG when `words`
   holds no word. */
int mg_store_note_search(mg_store_t *self, const char *words,
                         const mg_note_query_t *query, size_t limit,
                         const char *open, const char *close,
                         mg_note_hit_fn *fn, void *arg, mg_why_t *why);

/* The retention period in days (MG_META_EVENT_RETENTION_DAYS or the
   default). */
int mg_store_event_retention(mg_store_t *self, int64_t *days);

/* Sets the retention period (1 to 36500 days) and rebuilds the event,
   reply and note indexes from the records, so that a longer period brings
   back events dropped before. */
int mg_store_event_set_retention(mg_store_t *self, int64_t days,
                                 mg_why_t *why);

/* Drops from the indexes the events ended more than the retention period
   before `now_ms` (0: the clock), their replies, and replies older than
   that to events this store never indexed. *dropped (may be NULL) gets
   the number of events dropped. Records are never touched. */
int mg_store_events_purge(mg_store_t *self, int64_t now_ms, int64_t *dropped,
                          mg_why_t *why);

/* Rebuilds the event, reply and note indexes from the stored records. */
int mg_store_events_reindex(mg_store_t *self, mg_why_t *why);

#endif
