/*  mg_store.c - the node's SQLite store.

    Layout (schema version 3, see s_migrations):
      record      every record's exact signed bytes, keyed by (author, rid),
                  with the envelope fields copied out for queries and a
                  store-wide change number `seq`;
      offer_idx   one row per live offer: the fields we filter and sort on,
                  with folded (case- and accent-insensitive) keys;
      offer_term  one row per folded item of an offer's multi-valued fields
                  (services, publics_specifiquement_adresses), keyed for
                  the search: (field code, value_fold, author, rid);
      event_idx, event_territory, event_term, event_partner, event_fts,
      rsvp_idx, note_idx, note_term, note_fts
                  the indexes of events, replies and notes
                  (mg_store_events.c);
      meta        node settings and the running node's status (mg_store.h);
      store_state the last `seq` handed out and the peer list's version;
      peer        the peers this node knows (mg_store_peers.c).

    Every record row also carries its version id `vid` (BLAKE2b-256 of its
    raw bytes) and reconciliation `bucket` (mg_record_bucket), written with
    the row, for the replication reads of mg_store_repl.c.

    The index tables are derived data: they are rewritten from the record's
    body each time a record is stored, inside the same transaction.

    Concurrency: the CLI and the daemon open the same file. WAL lets
    readers work while one writer holds the lock; every write transaction
    starts with BEGIN IMMEDIATE so that it waits (busy timeout) for the
    lock up front instead of failing half-way when a read lock cannot be
    upgraded (SQLITE_BUSY_SNAPSHOT is not retried by the busy handler).
*/
#include "mg_store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

#include "mg_offer.h"
#include "mg_store_int.h"

/* How long a connection waits for another one's write lock. Writers hold
   it for one import or one gossip batch; 5 s covers a large batch on a
   slow SD card while still giving a person a prompt answer. */
#define S_BUSY_TIMEOUT_MS 5000

/* SQLite's page cache, in KiB: a ceiling, allocated only as pages are
   read. Reads (listings, serving a peer's WANTs, the daemon's start, which
   scans every record once) gain little from a large cache: the OS keeps
   the file's pages anyway, and a scan of 100,000 records through a 32 MiB
   cache left the daemon holding 32 MiB it never read again. Bulk writes
   (a new node receiving the national picture, 100,000 records, or an
   import) touch the random-keyed indexes (vid, (author, rid)) all over:
   with a 2 MiB cache every batch re-read the same index pages, and
   100,000 offers applied at 6,000/s; 32 MiB holds the indexes of that many
   records, and 64 MiB also the dirty pages of a bulk pull's 1 s
   transactions without spilling them to the WAL before the commit (10%
   faster than 32 MiB; 128 MiB no faster). So a connection starts small, grows for bulk writes (an
   explicit transaction, a batch of S_BULK_MIN records or more) and
   shrinks again with mg_store_release_memory. */
#define S_CACHE_KIB 4096
#define S_CACHE_BULK_KIB 65536
#define S_BULK_MIN 64
/* The meta key that marks offers whose search rows are owed (the seq of
   the first one), set by mg_store_apply_bulk, cleared by
   mg_store_index_pending. */
#define S_PENDING_KEY "offers_pending_seq"

/* "MGLG": marks the file as a maillage store, so that opening some other
   SQLite database by mistake is refused instead of migrated. */
#define S_APPLICATION_ID 0x4D474C47

/* Candidates listed in an ambiguity message: enough to pick from, short
   enough for one line. One more row is fetched to know there are more. */
#define S_AMBIGUOUS_SHOWN 5

/* The multi-valued offer fields that get one offer_term row per item,
   and their codes in offer_term.field (schema 3). */
#define S_FIELD_SERVICES "services"
#define S_FIELD_PUBLICS "publics_specifiquement_adresses"
#define S_TERM_SERVICES 1
#define S_TERM_PUBLICS 2
#define S_STR_(x) #x
#define S_STR(x) S_STR_(x)

/* Migration i takes a file from user_version i to i + 1. Append only:
   a released migration is never edited, a later one fixes it. */
static const char *const s_migrations[] = {
    /* 1: everything. */
    "CREATE TABLE meta ("
    "    key   TEXT PRIMARY KEY NOT NULL,"
    "    value TEXT NOT NULL"
    ") WITHOUT ROWID;"
    /* last_seq: a counter of its own rather than MAX(seq) + 1, so it
       stays monotonic even if a later version purges old tombstones.
       peers_version counts additions and removals of peers, so that the
       daemon notices `maillage peer add/rm` with one cheap read. */
    "CREATE TABLE store_state ("
    "    id            INTEGER PRIMARY KEY CHECK (id = 1),"
    "    last_seq      INTEGER NOT NULL,"
    "    peers_version INTEGER NOT NULL"
    ");"
    "INSERT INTO store_state (id, last_seq, peers_version) VALUES (1, 0, 0);"
    "CREATE TABLE record ("
    "    author  BLOB NOT NULL CHECK (length(author) = 32),"
    "    rid     TEXT NOT NULL,"
    "    kind    TEXT NOT NULL,"
    "    counter INTEGER NOT NULL CHECK (counter >= 0),"
    "    created INTEGER NOT NULL,"
    "    deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),"
    "    raw     BLOB NOT NULL,"
    "    seq     INTEGER NOT NULL,"
    "    vid     BLOB NOT NULL CHECK (length(vid) = 32),"
    "    bucket  INTEGER NOT NULL CHECK (bucket >= 0),"
    "    PRIMARY KEY (author, rid)"
    ");"
    "CREATE UNIQUE INDEX record_seq ON record (seq);"
    /* vid: serving a peer's request by version id. (bucket, vid) is the
       reconciliation key order, and covers the scans of mg_store_items
       and mg_store_fingerprint without reading the records' bytes. */
    "CREATE UNIQUE INDEX record_vid ON record (vid);"
    "CREATE INDEX record_bucket_vid ON record (bucket, vid);"
    "CREATE INDEX record_author_counter ON record (author, counter);"
    /* (kind, rid) rather than (kind): also serves prefix resolution. */
    "CREATE INDEX record_kind_rid ON record (kind, rid);"
    "CREATE TABLE offer_idx ("
    "    author       BLOB NOT NULL,"
    "    rid          TEXT NOT NULL,"
    "    nom          TEXT,"
    "    nom_fold     TEXT,"
    "    commune      TEXT,"
    "    commune_fold TEXT,"
    "    code_postal  TEXT,"
    "    code_insee   TEXT,"
    "    departement  TEXT,"
    "    latitude     REAL,"
    "    longitude    REAL,"
    "    PRIMARY KEY (author, rid),"
    "    FOREIGN KEY (author, rid) REFERENCES record (author, rid)"
    ");"
    /* The whole ORDER BY of mg_store_offers, so listings need no sort. */
    "CREATE INDEX offer_idx_commune ON offer_idx (commune_fold, nom_fold, rid,"
    "    author);"
    "CREATE INDEX offer_idx_code_postal ON offer_idx (code_postal);"
    "CREATE INDEX offer_idx_departement ON offer_idx (departement, commune_fold);"
    "CREATE TABLE offer_term ("
    "    author     BLOB NOT NULL,"
    "    rid        TEXT NOT NULL,"
    "    field      TEXT NOT NULL,"
    "    value_fold TEXT NOT NULL,"
    "    PRIMARY KEY (author, rid, field, value_fold),"
    "    FOREIGN KEY (author, rid) REFERENCES offer_idx (author, rid)"
    ") WITHOUT ROWID;"
    "CREATE INDEX offer_term_value ON offer_term (field, value_fold);"
    /* Sources and states are checked in C (mg_store_peers.c), not by
       CHECK constraints, so that a later version can add one without
       rebuilding the table. */
    "CREATE TABLE peer ("
    "    key          BLOB NOT NULL CHECK (length(key) = 32),"
    "    endpoint     TEXT NOT NULL,"
    "    source       TEXT NOT NULL,"
    "    state        TEXT NOT NULL,"
    "    added_ms     INTEGER NOT NULL,"
    "    last_seen_ms INTEGER NOT NULL DEFAULT 0,"
    "    last_sync_ms INTEGER NOT NULL DEFAULT 0,"
    "    records_in   INTEGER NOT NULL DEFAULT 0,"
    "    records_out  INTEGER NOT NULL DEFAULT 0,"
    "    failures     INTEGER NOT NULL DEFAULT 0,"
    "    next_try_ms  INTEGER NOT NULL DEFAULT 0,"
    "    PRIMARY KEY (key, endpoint)"
    ") WITHOUT ROWID;"
    "CREATE INDEX peer_endpoint ON peer (endpoint);"
    /* Events, replies and notes (mg_store_events.c, docs/events.md).
       event_idx and note_idx are rowid tables: their rowid is the row of
       the full-text tables, which keep their own copy of the text (the
       snippets need it; a contentless table cannot give them). */
    "CREATE TABLE event_idx ("
    "    author      BLOB NOT NULL,"
    "    rid         TEXT NOT NULL,"
    "    start_ms    INTEGER NOT NULL,"
    "    end_ms      INTEGER NOT NULL,"
    "    cancelled   INTEGER NOT NULL,"
    "    capacity    INTEGER,"
    "    code_postal TEXT,"
    "    latitude    REAL,"
    "    longitude   REAL,"
    "    open        INTEGER NOT NULL,"
    "    UNIQUE (author, rid),"
    "    FOREIGN KEY (author, rid) REFERENCES record (author, rid)"
    ");"
    "CREATE INDEX event_idx_start ON event_idx (start_ms);"
    "CREATE INDEX event_idx_end ON event_idx (end_ms);"
    /* One row per territory code; dep is the code's département, so a
       département query finds the events aimed at its communes too. */
    "CREATE TABLE event_territory ("
    "    author BLOB NOT NULL,"
    "    rid    TEXT NOT NULL,"
    "    code   TEXT NOT NULL,"
    "    dep    TEXT NOT NULL,"
    "    PRIMARY KEY (author, rid, code),"
    "    FOREIGN KEY (author, rid) REFERENCES event_idx (author, rid)"
    ") WITHOUT ROWID;"
    "CREATE INDEX event_territory_code ON event_territory (code);"
    "CREATE INDEX event_territory_dep ON event_territory (dep);"
    "CREATE TABLE event_term ("
    "    author     BLOB NOT NULL,"
    "    rid        TEXT NOT NULL,"
    "    field      TEXT NOT NULL,"
    "    value_fold TEXT NOT NULL,"
    "    PRIMARY KEY (author, rid, field, value_fold),"
    "    FOREIGN KEY (author, rid) REFERENCES event_idx (author, rid)"
    ") WITHOUT ROWID;"
    "CREATE INDEX event_term_value ON event_term (field, value_fold);"
    "CREATE TABLE event_partner ("
    "    author  BLOB NOT NULL,"
    "    rid     TEXT NOT NULL,"
    "    partner BLOB NOT NULL,"
    "    PRIMARY KEY (author, rid, partner),"
    "    FOREIGN KEY (author, rid) REFERENCES event_idx (author, rid)"
    ") WITHOUT ROWID;"
    "CREATE INDEX event_partner_key ON event_partner (partner);"
    "CREATE VIRTUAL TABLE event_fts USING fts5(titre, description, lieu,"
    "    tokenize = 'unicode61 remove_diacritics 2');"
    /* A reply is counted only under the rid derived from its event
       (mg_rsvp_rid), so one node has one row per event. */
    "CREATE TABLE rsvp_idx ("
    "    author       BLOB NOT NULL,"
    "    rid          TEXT NOT NULL,"
    "    event_author BLOB NOT NULL,"
    "    event_rid    TEXT NOT NULL,"
    "    answer       TEXT NOT NULL,"
    "    seats        INTEGER NOT NULL,"
    "    created      INTEGER NOT NULL,"
    "    PRIMARY KEY (author, rid),"
    "    FOREIGN KEY (author, rid) REFERENCES record (author, rid)"
    ") WITHOUT ROWID;"
    /* The tally's order: (created, author) within one event. */
    "CREATE INDEX rsvp_idx_event ON rsvp_idx (event_author, event_rid,"
    "    created, author);"
    "CREATE TABLE note_idx ("
    "    author  BLOB NOT NULL,"
    "    rid     TEXT NOT NULL,"
    "    created INTEGER NOT NULL,"
    "    UNIQUE (author, rid),"
    "    FOREIGN KEY (author, rid) REFERENCES record (author, rid)"
    ");"
    "CREATE INDEX note_idx_created ON note_idx (created);"
    "CREATE TABLE note_term ("
    "    author     BLOB NOT NULL,"
    "    rid        TEXT NOT NULL,"
    "    field      TEXT NOT NULL,"
    "    value_fold TEXT NOT NULL,"
    "    PRIMARY KEY (author, rid, field, value_fold),"
    "    FOREIGN KEY (author, rid) REFERENCES note_idx (author, rid)"
    ") WITHOUT ROWID;"
    "CREATE INDEX note_term_value ON note_term (field, value_fold);"
    "CREATE VIRTUAL TABLE note_fts USING fts5(titre, texte, tags,"
    "    tokenize = 'unicode61 remove_diacritics 2');",
    /* 2: counting the records by kind and author (status, the daemon's
       heartbeat, the dashboard) read every row's bytes: 0.7 to 2 s at
       100,000 records, 4 s during a sync. A covering index makes it a
       scan of small keys. */
    "CREATE INDEX record_kind_author_deleted ON record (kind, author, deleted);",
    /* 3: a new node receiving 100,000 offers spent a third of each
       offer's indexing in offer_term: every service and public was a row
       in a table keyed (author, rid, field, value_fold), its own index
       (field, value_fold) and a foreign-key lookup, 480 bytes an offer
       spread over two B-trees larger than the page cache. Now one B-tree
       keyed for the search, (field, value_fold, author, rid), with the
       field as a small code (S_TERM_*); the rows of a replaced offer are
       found from its stored body, and "names no specific public" is a
       column of offer_idx. Terms are derived data, written by this file
       in the record's transaction: no foreign key. */
    "CREATE TABLE offer_term_v3 ("
    "    field      INTEGER NOT NULL,"
    "    value_fold TEXT NOT NULL,"
    "    author     BLOB NOT NULL,"
    "    rid        TEXT NOT NULL,"
    "    PRIMARY KEY (field, value_fold, author, rid)"
    ") WITHOUT ROWID;"
    "INSERT INTO offer_term_v3 (field, value_fold, author, rid)"
    "    SELECT CASE field WHEN 'services' THEN 1 ELSE 2 END, value_fold,"
    "           author, rid FROM offer_term"
    "    WHERE field IN ('services', 'publics_specifiquement_adresses');"
    "ALTER TABLE offer_idx ADD COLUMN publics INTEGER NOT NULL DEFAULT 0;"
    "UPDATE offer_idx SET publics = 1 WHERE EXISTS (SELECT 1 FROM offer_term t"
    "    WHERE t.author = offer_idx.author AND t.rid = offer_idx.rid"
    "    AND t.field = 'publics_specifiquement_adresses');"
    "DROP TABLE offer_term;"
    "ALTER TABLE offer_term_v3 RENAME TO offer_term;",
};
#define S_MIGRATION_COUNT (sizeof s_migrations / sizeof s_migrations[0])

_Static_assert(S_MIGRATION_COUNT == MG_STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* The SQL of mg_store.c's cached statements (mg_store_int.h). */
static const char *const s_stmt_sql[S_STMT_COUNT] = {
    [S_GET_COUNTER] =
        "SELECT counter, raw FROM record WHERE author = ?1 AND rid = ?2",
    [S_NEXT_SEQ] =
        "UPDATE store_state SET last_seq = last_seq + 1 WHERE id = 1 "
        "RETURNING last_seq",
    [S_UPSERT_RECORD] =
        "INSERT INTO record (author, rid, kind, counter, created, deleted, "
        "raw, seq, vid, bucket) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
        "ON CONFLICT (author, rid) DO UPDATE SET kind = excluded.kind, "
        "counter = excluded.counter, created = excluded.created, "
        "deleted = excluded.deleted, raw = excluded.raw, seq = excluded.seq, "
        "vid = excluded.vid, bucket = excluded.bucket",
    [S_DELETE_TERMS] =
        "DELETE FROM offer_term WHERE field = ?1 AND value_fold = ?2 "
        "AND author = ?3 AND rid = ?4",
    [S_DELETE_OFFER] =
        "DELETE FROM offer_idx WHERE author = ?1 AND rid = ?2",
    [S_INSERT_OFFER] =
        "INSERT INTO offer_idx (author, rid, nom, nom_fold, commune, "
        "commune_fold, code_postal, code_insee, departement, latitude, "
        "longitude, publics) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [S_INSERT_TERM] =
        "INSERT OR IGNORE INTO offer_term (field, value_fold, author, rid) "
        "VALUES (?1, ?2, ?3, ?4)",
    [S_GET_RAW] =
        "SELECT raw FROM record WHERE author = ?1 AND rid = ?2",
    [S_MAX_COUNTER] =
        "SELECT MAX(counter) FROM record WHERE author = ?1",
    [S_META_GET] =
        "SELECT value FROM meta WHERE key = ?1",
    [S_META_SET] =
        "INSERT INTO meta (key, value) VALUES (?1, ?2) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [S_META_DEL] =
        "DELETE FROM meta WHERE key = ?1",
};

/* ------------------------------------------------------------------ */
/* Errors                                                               */

/* When a write fails because something is read-only, which one: the
   database file, its -wal or -shm companion (SQLite creates them with the
   database's mode, so a base once made read-only leaves read-only ones
   behind), or the folder (where SQLite must create them). Writes the
   advice into out, or "" when every one of them is writable (a disk
   mounted read-only, say). */
static void s_readonly_culprit(const char *db_path, char *out, size_t size)
{
    out[0] = '\0';
    if (!db_path || !*db_path)
        return;
    char path[4200];
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(path, sizeof path, "%s%s", db_path, suffixes[i]);
        if (faccessat(AT_FDCWD, path, F_OK, AT_EACCESS) != 0)
            continue; /* -wal and -shm may not exist: nothing to fix */
        if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) != 0) {
            snprintf(out, size,
                     " ; le fichier « %.4000s » est en lecture seule : "
                     "rendez-le modifiable (chmod u+w « %.4000s* ») ou "
                     "lancez maillage sous l'utilisateur à qui il appartient",
                     path, db_path);
            return;
        }
    }
    snprintf(path, sizeof path, "%s", db_path);
    char *slash = strrchr(path, '/');
    if (slash == path)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(path, sizeof path, ".");
    if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) != 0) {
        snprintf(out, size,
                 " ; le dossier « %.4000s » est en lecture seule (la base "
                 "a besoin d'y créer ses fichiers -wal et -shm) : rendez-le "
                 "modifiable (chmod u+w)", path);
        return;
    }
    snprintf(out, size, " ; le disque est peut-être monté en lecture seule");
}

/* Turns a SQLite failure into a message a person can act on: which file,
   what happened in plain French (SQLite's own English text follows in
   parentheses for whoever reports the problem), and what to do.
   MG_ERR_BUSY for a lock held by another program, MG_ERR_IO for the disk
   (full, I/O error), MG_ERR_DB otherwise. Must run before anything else
   touches the connection, since a later call (e.g. the rollback) replaces
   sqlite3_errmsg. */
static int s_db_fail(mg_store_t *self, int rc, mg_why_t *why,
                     const char *what)
{
    int primary = rc & 0xff;
    const char *msg = self && self->db ? sqlite3_errmsg(self->db)
                                       : sqlite3_errstr(rc);
    const char *file = self && self->db
                           ? sqlite3_db_filename(self->db, "main")
                           : NULL;
    const char *shown = file && *file ? file : "(base en mémoire)";
    switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return mg_why_set(why, MG_ERR_BUSY,
                          "base de données occupée par un autre programme "
                          "(%s) depuis plus de %d s : %s ; réessayez dans "
                          "un instant",
                          what, S_BUSY_TIMEOUT_MS / 1000, msg);
    case SQLITE_FULL:
        return mg_why_set(why, MG_ERR_IO,
                          "disque plein : plus de place pour écrire dans la "
                          "base « %s » (%s ; %s). Libérez de l'espace disque "
                          "puis recommencez : l'opération en cours n'a pas "
                          "été enregistrée, la base est intacte",
                          shown, what, msg);
    case SQLITE_IOERR:
        return mg_why_set(why, MG_ERR_IO,
                          "erreur du disque (entrée-sortie) sur la base "
                          "« %s » (%s ; %s, code %d). L'opération en cours "
                          "n'a pas été enregistrée ; si l'erreur revient, "
                          "vérifiez le disque (dmesg, smartctl)",
                          shown, what, msg, rc);
    case SQLITE_READONLY: {
        char culprit[9000];
        s_readonly_culprit(file, culprit, sizeof culprit);
        return mg_why_set(why, MG_ERR_DB,
                          "base en lecture seule : impossible d'écrire dans "
                          "« %s » (%s ; %s)%s",
                          shown, what, msg, culprit);
    }
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return mg_why_set(why, MG_ERR_DB,
                          "la base « %s » est abîmée ou n'est pas une base "
                          "maillage (%s ; %s) : restaurez une sauvegarde, ou "
                          "créez une base neuve (maillage init) que vos pairs "
                          "rempliront",
                          shown, what, msg);
    default:
        return mg_why_set(why, MG_ERR_DB,
                          "erreur de la base de données (%s) : %s", what, msg);
    }
}

/* ------------------------------------------------------------------ */
/* Statements                                                           */

int mg_store_stmt_(mg_store_t *self, s_stmt_id_t id, const char *sql,
                   sqlite3_stmt **out, mg_why_t *why)
{
    *out = NULL;
    if (!self->stmts[id]) {
        int rc = sqlite3_prepare_v3(self->db, sql, -1,
                                    SQLITE_PREPARE_PERSISTENT,
                                    &self->stmts[id], NULL);
        if (rc != SQLITE_OK)
            return s_db_fail(self, rc, why, "préparation d'une requête");
    }
    *out = self->stmts[id];
    return MG_OK;
}

/* The cached statement `id` of this file, reset and ready to bind. */
static int s_stmt(mg_store_t *self, s_stmt_id_t id, sqlite3_stmt **out,
                  mg_why_t *why)
{
    return mg_store_stmt_(self, id, s_stmt_sql[id], out, why);
}

/* Releases a cached statement's read lock and bindings after use. */
static void s_stmt_done(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

/* Runs fixed SQL with no parameters (DDL, transaction control). */
static int s_exec(mg_store_t *self, const char *sql, mg_why_t *why,
                  const char *what)
{
    int rc = sqlite3_exec(self->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return s_db_fail(self, rc, why, what);
    return MG_OK;
}

/* Runs a statement to completion, expecting no row. */
static int s_step_done(mg_store_t *self, sqlite3_stmt *stmt, mg_why_t *why,
                       const char *what)
{
    int rc = sqlite3_step(stmt);
    int result = MG_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        result = s_db_fail(self, rc, why, what);
    s_stmt_done(stmt);
    return result;
}

int mg_store_fail_(mg_store_t *self, int rc, mg_why_t *why,
                   const char *what)
{
    return s_db_fail(self, rc, why, what);
}

void mg_store_done_(sqlite3_stmt *stmt)
{
    s_stmt_done(stmt);
}

int mg_store_step_done_(mg_store_t *self, sqlite3_stmt *stmt, mg_why_t *why,
                        const char *what)
{
    return s_step_done(self, stmt, why, what);
}

/* Reads a one-integer PRAGMA (user_version, application_id). */
static int s_pragma_int(mg_store_t *self, const char *sql, int64_t *out,
                        mg_why_t *why)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return s_db_fail(self, rc, why, "lecture de l'en-tête");
    rc = sqlite3_step(stmt);
    int result = MG_OK;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(stmt, 0);
    else
        result = s_db_fail(self, rc, why, "lecture de l'en-tête");
    sqlite3_finalize(stmt);
    return result;
}

/* ------------------------------------------------------------------ */
/* Folding                                                              */

int mg_store_fold(const char *text, char **out)
{
    *out = NULL;
    if (!text)
        return MG_ERR_ARG;
    /* LUMP maps typographic apostrophes, dashes and spaces to their ASCII
       forms, so "L’Isle" and "L'Isle" fold alike. (DECOMPOSE and COMPOSE
       cannot be combined: utf8proc rejects that as invalid options.) */
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map(
        (const utf8proc_uint8_t *) text, 0, &mapped,
        UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE
            | UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK | UTF8PROC_LUMP);
    if (n < 0) {
        free(mapped);
        return n == UTF8PROC_ERROR_NOMEM ? MG_ERR_NOMEM : MG_ERR_UTF8;
    }
    /* Runs of spaces and hyphens become one space, none at the ends:
       people type "saint yrieix" for "Saint-Yrieix" and paste stray
       spaces from spreadsheets. */
    char *s = (char *) mapped;
    size_t w = 0;
    bool gap = false;
    for (size_t r = 0; s[r]; r++) {
        char c = s[r];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
            || c == '\f' || c == '-') {
            gap = w > 0;
            continue;
        }
        if (gap) {
            s[w++] = ' ';
            gap = false;
        }
        s[w++] = c;
    }
    s[w] = '\0';
    *out = s;
    return MG_OK;
}

/* The folded form of an enumeration label, from the connection's cache
   (mg_store_int.h) or folded and remembered. *out belongs to the cache:
   valid until the next call. Same results as mg_store_fold. */
static int s_fold_label(mg_store_t *self, const char *text, const char **out)
{
    *out = NULL;
    size_t len = strlen(text);
    if (len > MG_STORE_FOLD_TEXT_MAX) {
        /* Not a label: fold it into the one slot kept for long text. */
        mg_store_fold_t *slot = &self->folds[0];
        char *folded = NULL;
        int rc = mg_store_fold(text, &folded);
        if (rc != MG_OK)
            return rc;
        free(slot->text);
        free(slot->folded);
        slot->text = NULL;
        slot->folded = folded;
        *out = folded;
        return MG_OK;
    }
    /* FNV-1a: short strings, no adversary gains anything from collisions
       but a fold. Slot 0 is left to long text. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t) text[i]) * 16777619u;
    mg_store_fold_t *slot = &self->folds[1 + h % (MG_STORE_FOLDS - 1)];
    if (slot->text && strcmp(slot->text, text) == 0) {
        *out = slot->folded;
        return MG_OK;
    }
    char *folded = NULL;
    int rc = mg_store_fold(text, &folded);
    if (rc != MG_OK)
        return rc;
    char *copy = malloc(len + 1);
    if (!copy) {
        free(folded);
        return MG_ERR_NOMEM;
    }
    memcpy(copy, text, len + 1);
    free(slot->text);
    free(slot->folded);
    slot->text = copy;
    slot->folded = folded;
    *out = folded;
    return MG_OK;
}

/* Folds a user's query value, explaining a failure. */
static int s_fold_query(const char *what, const char *text, char **out,
                        mg_why_t *why)
{
    int rc = mg_store_fold(text, out);
    if (rc == MG_ERR_UTF8)
        return mg_why_set(why, rc, "le filtre %s n'est pas du texte UTF-8 "
                          "valide", what);
    if (rc != MG_OK)
        return mg_why_set(why, rc, "%s", mg_strerror(rc));
    return MG_OK;
}

/* ------------------------------------------------------------------ */
/* Open, migrate, close                                                 */

/* Brings the schema up to MG_STORE_SCHEMA_VERSION, or refuses a file this
   version cannot read. Runs under BEGIN IMMEDIATE so that two programs
   opening a new file at once migrate it exactly once. */
static int s_migrate(mg_store_t *self, const char *path, mg_why_t *why)
{
    int64_t version = 0, app_id = 0;
    int rc = s_pragma_int(self, "PRAGMA user_version", &version, why);
    if (rc != MG_OK)
        return rc;
    /* Already current: no need for the write lock (a read-only CLI
       command must not wait for the daemon). */
    if (version == MG_STORE_SCHEMA_VERSION)
        return MG_OK;

    rc = s_exec(self, "BEGIN IMMEDIATE", why, "migration du schéma");
    if (rc != MG_OK)
        return rc;
    if ((rc = s_pragma_int(self, "PRAGMA user_version", &version, why))
            != MG_OK
        || (rc = s_pragma_int(self, "PRAGMA application_id", &app_id, why))
               != MG_OK)
        goto rollback;

    if (version > MG_STORE_SCHEMA_VERSION) {
        rc = mg_why_set(why, MG_ERR_DB,
                        "la base « %s » a été écrite par une version plus "
                        "récente de maillage (schéma %" PRId64 ", cette "
                        "version connaît le schéma %d au plus) : mettez "
                        "maillage à jour",
                        path, version, MG_STORE_SCHEMA_VERSION);
        goto rollback;
    }
    if (app_id != 0 && app_id != S_APPLICATION_ID) {
        rc = mg_why_set(why, MG_ERR_DB,
                        "« %s » est une base SQLite d'une autre application, "
                        "pas une base maillage", path);
        goto rollback;
    }
    if (version == 0) {
        /* A fresh file has no tables; anything else is someone else's. */
        int64_t tables = 0;
        rc = s_pragma_int(self, "SELECT count(*) FROM sqlite_schema", &tables,
                          why);
        if (rc != MG_OK)
            goto rollback;
        if (tables > 0) {
            rc = mg_why_set(why, MG_ERR_DB,
                            "« %s » contient déjà des tables qui ne sont pas "
                            "celles de maillage : choisissez un autre fichier",
                            path);
            goto rollback;
        }
    }

    for (int64_t v = version; v < MG_STORE_SCHEMA_VERSION; v++) {
        rc = s_exec(self, s_migrations[v], why, "migration du schéma");
        if (rc != MG_OK)
            goto rollback;
    }
    /* PRAGMAs take no parameters; both values are our own integers. */
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d; "
             "PRAGMA application_id = %d",
             MG_STORE_SCHEMA_VERSION, S_APPLICATION_ID);
    rc = s_exec(self, sql, why, "migration du schéma");
    if (rc != MG_OK)
        goto rollback;
    return s_exec(self, "COMMIT", why, "migration du schéma");

rollback:
    sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int mg_store_open(const char *path, mg_store_t **out, mg_why_t *why)
{
    mg_why_clear(why);
    if (!out)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    *out = NULL;
    if (!path || !*path)
        return mg_why_set(why, MG_ERR_ARG, "chemin de la base manquant");

    /* Version ids are BLAKE2b (libsodium); init is idempotent and lets
       libsodium pick its fastest implementation. */
    if (sodium_init() < 0)
        return mg_why_set(why, MG_ERR_IO, "libsodium ne s'initialise pas");
    mg_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return mg_why_set(why, MG_ERR_NOMEM, "%s",
                          mg_strerror(MG_ERR_NOMEM));
    int rc = sqlite3_open_v2(path, &self->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                 | SQLITE_OPEN_EXRESCODE,
                             NULL);
    if (rc != SQLITE_OK) {
        rc = mg_why_set(why, rc == SQLITE_NOMEM ? MG_ERR_NOMEM : MG_ERR_DB,
                        "impossible d'ouvrir la base « %s » : %s", path,
                        self->db ? sqlite3_errmsg(self->db)
                                 : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(self->db, S_BUSY_TIMEOUT_MS);

    /* The first statement reads the header: a file that is not a
       database fails here, so name the file in the message. */
    char mode[16] = "";
    sqlite3_stmt *stmt = NULL;
    rc = sqlite3_prepare_v2(self->db, "PRAGMA journal_mode = WAL", -1, &stmt,
                            NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const unsigned char *m = sqlite3_column_text(stmt, 0);
        snprintf(mode, sizeof mode, "%s", m ? (const char *) m : "");
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
        char what[600];
        snprintf(what, sizeof what, "ouverture de « %.500s »", path);
        rc = s_db_fail(self, rc, why, what);
        sqlite3_finalize(stmt);
        goto fail;
    }
    sqlite3_finalize(stmt);
    /* An in-memory database (tests) reports "memory"; a file that cannot
       do WAL (some network file systems) would silently lose the
       concurrent reader guarantee, so refuse it. */
    if (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0) {
        rc = mg_why_set(why, MG_ERR_DB,
                        "la base « %s » ne peut pas passer en mode WAL "
                        "(mode « %s ») : placez-la sur un disque local",
                        path, mode);
        goto fail;
    }
    /* NORMAL is durable across application crashes in WAL mode and only
       risks the last transactions on power loss, which gossip refills.
       secure_delete is off (Debian builds SQLite with it on): every
       record here is public and signed, so zeroing freed space protects
       nothing, and it made a bulk write 30% slower.
       temp_store in memory keeps each apply's savepoint journal off disk:
       inside an import's transaction it was written to a temp file page
       by page, which made a 20,000-record import 3x slower.
       The cache: S_CACHE_KIB above. Checkpointing every 8,000 pages
       (32 MiB of WAL) rather than SQLite's 1,000 writes an index page
       once for several batches of a bulk write; journal_size_limit gives
       the WAL's disk space back after a burst. */
    char pragmas[300];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = OFF; "
             "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -%d; "
             "PRAGMA wal_autocheckpoint = 8000; "
             "PRAGMA journal_size_limit = 67108864",
             S_CACHE_KIB);
    rc = s_exec(self, pragmas, why, "réglage de la connexion");
    if (rc != MG_OK)
        goto fail;
    rc = s_migrate(self, path, why);
    if (rc != MG_OK)
        goto fail;
    *out = self;
    return MG_OK;

fail:
    mg_store_destroy(&self);
    return rc;
}

void mg_store_destroy(mg_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_store_t *self = *self_p;
    free(self->plan);
    for (int i = 0; i < S_STMT_COUNT; i++)
        sqlite3_finalize(self->stmts[i]);
    for (int i = 0; i < MG_STORE_FOLDS; i++) {
        free(self->folds[i].text);
        free(self->folds[i].folded);
    }
    /* Every other statement is finalized where it is prepared, so close
       succeeds; close_v2 would hide a leak by deferring it. */
    if (self->db && sqlite3_close(self->db) != SQLITE_OK)
        sqlite3_close_v2(self->db);
    free(self);
    *self_p = NULL;
}

struct sqlite3 *mg_store_db(mg_store_t *self)
{
    return self ? self->db : NULL;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */

/* Raises the page cache for a bulk write (S_CACHE_BULK_KIB). A failure only
   costs speed, so it is not reported. */
static void s_bulk_cache(mg_store_t *self)
{
    if (self->bulk_cache)
        return;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d", S_CACHE_BULK_KIB);
    if (sqlite3_exec(self->db, sql, NULL, NULL, NULL) == SQLITE_OK)
        self->bulk_cache = true;
}

void mg_store_release_memory(mg_store_t *self)
{
    if (!self || !self->db)
        return;
    if (self->bulk_cache) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d", S_CACHE_KIB);
        if (sqlite3_exec(self->db, sql, NULL, NULL, NULL) == SQLITE_OK)
            self->bulk_cache = false;
    }
    sqlite3_db_release_memory(self->db);
}

int mg_store_begin(mg_store_t *self, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    if (!sqlite3_get_autocommit(self->db))
        return mg_why_set(why, MG_ERR_ARG,
                          "une transaction est déjà ouverte");
    s_bulk_cache(self);
    return s_exec(self, "BEGIN IMMEDIATE", why, "début de transaction");
}

int mg_store_commit(mg_store_t *self, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    if (sqlite3_get_autocommit(self->db))
        return mg_why_set(why, MG_ERR_ARG, "aucune transaction ouverte");
    return s_exec(self, "COMMIT", why, "validation de la transaction");
}

int mg_store_rollback(mg_store_t *self)
{
    if (!self)
        return MG_ERR_ARG;
    /* Nothing to undo (or SQLite already rolled back after an error). */
    if (sqlite3_get_autocommit(self->db))
        return MG_OK;
    return sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK
               ? MG_OK
               : MG_ERR_DB;
}

/* Opens the unit of work of one apply: its own IMMEDIATE transaction, or
   a savepoint inside the caller's transaction, so that an import can
   wrap many applies and still have each one all-or-nothing. */
static int s_unit_begin(mg_store_t *self, bool *nested, mg_why_t *why)
{
    *nested = !sqlite3_get_autocommit(self->db);
    return s_exec(self, *nested ? "SAVEPOINT mg_apply" : "BEGIN IMMEDIATE",
                  why, "début de transaction");
}

/* Ends the unit of work: keeps it when rc is MG_OK, else undoes it. */
static int s_unit_end(mg_store_t *self, bool nested, int rc, mg_why_t *why)
{
    if (rc == MG_OK) {
        rc = s_exec(self, nested ? "RELEASE mg_apply" : "COMMIT", why,
                    "validation de la transaction");
        if (rc == MG_OK)
            return MG_OK;
    }
    /* Either an earlier step failed or COMMIT/RELEASE did; the why of
       that failure is already set, the cleanup must not overwrite it. */
    if (nested) {
        sqlite3_exec(self->db, "ROLLBACK TO mg_apply; RELEASE mg_apply",
                     NULL, NULL, NULL);
    } else if (!sqlite3_get_autocommit(self->db)) {
        sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

int mg_store_unit_begin_(mg_store_t *self, bool *nested, mg_why_t *why)
{
    return s_unit_begin(self, nested, why);
}

int mg_store_unit_end_(mg_store_t *self, bool nested, int rc, mg_why_t *why)
{
    return s_unit_end(self, nested, rc, why);
}

/* ------------------------------------------------------------------ */
/* Apply                                                                */

/* Whether `record` should replace the stored version of its (author,
   rid): absent, or a strictly greater counter, or -- when one author signed
   two different versions with the same counter (e.g. a key restored onto
   an empty store) -- the greater bytes, so every node picks the same one. */
static int s_record_wins(mg_store_t *self, const mg_record_t *record,
                         bool *found, bool *wins, mg_why_t *why)
{
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_GET_COUNTER, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, mg_record_author(record), MG_KEY_BYTES,
                      SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, mg_record_rid(record), -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    int result = MG_OK;
    *found = false;
    *wins = true;
    if (rc == SQLITE_ROW) {
        *found = true;
        uint64_t stored = (uint64_t) sqlite3_column_int64(stmt, 0);
        uint64_t counter = mg_record_counter(record);
        if (stored != counter) {
            *wins = counter > stored;
        } else {
            size_t len;
            const uint8_t *raw = mg_record_bytes(record, &len);
            const uint8_t *old = sqlite3_column_blob(stmt, 1);
            size_t old_len = (size_t) sqlite3_column_bytes(stmt, 1);
            int c = memcmp(raw, old, len < old_len ? len : old_len);
            *wins = c > 0 || (c == 0 && len > old_len);
        }
    } else if (rc != SQLITE_DONE) {
        result = s_db_fail(self, rc, why, "lecture d'une fiche");
    }
    s_stmt_done(stmt);
    return result;
}

/* Calls `fn` with the code and folded form of each distinct non-empty
   item of the offer fields that get offer_term rows. Stops at the first
   non-MG_OK result and returns it. */
typedef int (s_term_fn)(mg_store_t *self, int code, const char *folded,
                        const uint8_t *author, const char *rid,
                        mg_why_t *why);

static int s_each_term(mg_store_t *self, const mg_body_t *body,
                       const uint8_t *author, const char *rid, s_term_fn *fn,
                       size_t *publics, mg_why_t *why)
{
    static const struct {
        const char *field;
        int code;
    } fields[] = {{S_FIELD_SERVICES, S_TERM_SERVICES},
                  {S_FIELD_PUBLICS, S_TERM_PUBLICS}};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        const char *const *items = NULL;
        size_t count = mg_body_list(body, fields[f].field, &items);
        for (size_t i = 0; i < count; i++) {
            const char *folded = NULL;
            int rc = s_fold_label(self, items[i], &folded);
            if (rc == MG_ERR_NOMEM)
                return mg_why_set(why, rc, "%s", mg_strerror(rc));
            /* Stored strings were checked as UTF-8 on decode; one that
               still does not fold is simply not searchable. */
            if (rc != MG_OK || !*folded)
                continue;
            if (publics && fields[f].code == S_TERM_PUBLICS)
                (*publics)++;
            rc = fn(self, fields[f].code, folded, author, rid, why);
            if (rc != MG_OK)
                return rc;
        }
    }
    return MG_OK;
}

/* Runs cached statement `id` on one offer_term key. The folded text
   belongs to the fold cache, valid until the next fold, after this. */
static int s_term_step(mg_store_t *self, s_stmt_id_t id, int code,
                       const char *folded, const uint8_t *author,
                       const char *rid, mg_why_t *why)
{
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, id, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_int(stmt, 1, code);
    sqlite3_bind_text(stmt, 2, folded, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 3, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, rid, -1, SQLITE_STATIC);
    return s_step_done(self, stmt, why, "mise à jour de l'index");
}

static int s_term_insert(mg_store_t *self, int code, const char *folded,
                         const uint8_t *author, const char *rid,
                         mg_why_t *why)
{
    return s_term_step(self, S_INSERT_TERM, code, folded, author, rid, why);
}

static int s_term_delete(mg_store_t *self, int code, const char *folded,
                         const uint8_t *author, const char *rid,
                         mg_why_t *why)
{
    return s_term_step(self, S_DELETE_TERMS, code, folded, author, rid, why);
}

/* Removes the offer_term rows of the stored version of (author, rid).
   offer_term is keyed for the search, not by (author, rid): the rows are
   found from the stored body, folded as when they were written. A body
   that no longer decodes (a damaged file) falls back to a scan. */
static int s_terms_remove(mg_store_t *self, const uint8_t *author,
                          const char *rid, mg_why_t *why)
{
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_GET_RAW, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    mg_record_t *old = NULL;
    bool decoded = false;
    if (rc == SQLITE_ROW) {
        const void *raw = sqlite3_column_blob(stmt, 0);
        int len = sqlite3_column_bytes(stmt, 0);
        decoded = raw && len > 0
                  && mg_record_decode_trusted(raw, (size_t) len, &old, NULL)
                         == MG_OK;
        rc = MG_OK;
    } else if (rc == SQLITE_DONE) {
        s_stmt_done(stmt);
        return MG_OK; /* nothing stored: no rows */
    } else {
        rc = s_db_fail(self, rc, why, "lecture d'une fiche");
    }
    s_stmt_done(stmt);
    if (rc != MG_OK)
        return rc;
    if (!decoded) {
        sqlite3_stmt *scan = NULL;
        int src = sqlite3_prepare_v2(self->db,
                                     "DELETE FROM offer_term WHERE "
                                     "author = ?1 AND rid = ?2",
                                     -1, &scan, NULL);
        if (src != SQLITE_OK)
            return s_db_fail(self, src, why, "mise à jour de l'index");
        sqlite3_bind_blob(scan, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(scan, 2, rid, -1, SQLITE_STATIC);
        src = sqlite3_step(scan);
        rc = src == SQLITE_DONE
                 ? MG_OK
                 : s_db_fail(self, src, why, "mise à jour de l'index");
        sqlite3_finalize(scan);
        return rc;
    }
    if (strcmp(mg_record_kind(old), "offer") == 0 && !mg_record_deleted(old)
        && mg_record_body(old))
        rc = s_each_term(self, mg_record_body(old), author, rid,
                         s_term_delete, NULL, why);
    mg_record_destroy(&old);
    return rc;
}

/* Removes the index rows of the stored version of (author, rid). Runs
   before the record row is replaced: the terms are found from it. */
static int s_index_remove(mg_store_t *self, const uint8_t *author,
                          const char *rid, mg_why_t *why)
{
    int rc = s_terms_remove(self, author, rid, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_stmt *stmt;
    rc = s_stmt(self, S_DELETE_OFFER, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    return s_step_done(self, stmt, why, "mise à jour de l'index");
}

/* Binds a body string (NULL when absent) and, when fold_col > 0, its
   folded form. Returns MG_OK or MG_ERR_NOMEM. */
static int s_bind_str(sqlite3_stmt *stmt, int col, int fold_col,
                      const char *value)
{
    if (!value) {
        sqlite3_bind_null(stmt, col);
        if (fold_col > 0)
            sqlite3_bind_null(stmt, fold_col);
        return MG_OK;
    }
    sqlite3_bind_text(stmt, col, value, -1, SQLITE_STATIC);
    if (fold_col > 0) {
        char *folded = NULL;
        int rc = mg_store_fold(value, &folded);
        if (rc == MG_ERR_NOMEM)
            return rc;
        /* Stored strings were checked as UTF-8 on decode; if one still
           does not fold it is simply not searchable. */
        if (rc != MG_OK)
            sqlite3_bind_null(stmt, fold_col);
        else
            sqlite3_bind_text(stmt, fold_col, folded, -1, free);
    }
    return MG_OK;
}

/* Writes the index rows of a live offer. */
static int s_index_offer(mg_store_t *self, const mg_record_t *record,
                         mg_why_t *why)
{
    const uint8_t *author = mg_record_author(record);
    const char *rid = mg_record_rid(record);
    const mg_body_t *body = mg_record_body(record);
    if (!body)
        return MG_OK;

    /* The terms first (nothing references them): the offer row records
       whether any public was named. */
    size_t publics = 0;
    int rc = s_each_term(self, body, author, rid, s_term_insert, &publics,
                         why);
    if (rc != MG_OK)
        return rc;
    sqlite3_stmt *stmt;
    rc = s_stmt(self, S_INSERT_OFFER, &stmt, why);
    if (rc != MG_OK)
        return rc;
    const char *code_insee = mg_body_str(body, "code_insee");
    const char *code_postal = mg_body_str(body, "code_postal");
    char dep[4];
    bool has_dep = mg_departement_of(code_insee, code_postal, dep) == 0;
    double lat = 0, lon = 0;

    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    if ((rc = s_bind_str(stmt, 3, 4, mg_body_str(body, "nom"))) != MG_OK
        || (rc = s_bind_str(stmt, 5, 6, mg_body_str(body, "commune")))
               != MG_OK) {
        s_stmt_done(stmt);
        return mg_why_set(why, rc, "%s", mg_strerror(rc));
    }
    s_bind_str(stmt, 7, 0, code_postal);
    s_bind_str(stmt, 8, 0, code_insee);
    if (has_dep)
        sqlite3_bind_text(stmt, 9, dep, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(stmt, 9);
    if (mg_body_num(body, "latitude", &lat) == 0)
        sqlite3_bind_double(stmt, 10, lat);
    else
        sqlite3_bind_null(stmt, 10);
    if (mg_body_num(body, "longitude", &lon) == 0)
        sqlite3_bind_double(stmt, 11, lon);
    else
        sqlite3_bind_null(stmt, 11);
    sqlite3_bind_int(stmt, 12, publics > 0);
    return s_step_done(self, stmt, why, "mise à jour de l'index");
}

/* Stores `record` as the version of its (author, rid), with a new seq,
   and rewrites its index rows. Runs inside the caller's unit of work. */
static int s_store_record(mg_store_t *self, const mg_record_t *record,
                          bool found, mg_why_t *why)
{
    const uint8_t *author = mg_record_author(record);
    const char *rid = mg_record_rid(record);
    size_t raw_len = 0;
    const uint8_t *raw = mg_record_bytes(record, &raw_len);

    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_NEXT_SEQ, &stmt, why);
    if (rc != MG_OK)
        return rc;
    int64_t seq = 0;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        seq = sqlite3_column_int64(stmt, 0);
        rc = s_step_done(self, stmt, why, "numérotation des changements");
    } else if (rc == SQLITE_DONE) {
        rc = mg_why_set(why, MG_ERR_DB, "la table store_state est vide : la "
                        "base est endommagée (lancez « maillage check »)");
        s_stmt_done(stmt);
    } else {
        rc = s_db_fail(self, rc, why, "numérotation des changements");
        s_stmt_done(stmt);
    }
    if (rc != MG_OK)
        return rc;

    /* The previous version may have been another kind or live: its index
       rows go in every case, before its row is replaced (its body tells
       its offer terms), and only a live offer gets new ones. A first
       version has none. */
    if (found) {
        rc = s_index_remove(self, author, rid, why);
        if (rc == MG_OK)
            rc = mg_store_events_unindex_(self, author, rid, why);
        if (rc != MG_OK)
            return rc;
    }

    rc = s_stmt(self, S_UPSERT_RECORD, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, mg_record_kind(record), -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, (int64_t) mg_record_counter(record));
    sqlite3_bind_int64(stmt, 5, mg_record_created(record));
    sqlite3_bind_int(stmt, 6, mg_record_deleted(record) ? 1 : 0);
    sqlite3_bind_blob(stmt, 7, raw, (int) raw_len, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 8, seq);
    uint8_t vid[MG_VID_BYTES];
    mg_store_vid_of(record, vid);
    sqlite3_bind_blob(stmt, 9, vid, MG_VID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 10, (int64_t) mg_record_bucket(record));
    rc = s_step_done(self, stmt, why, "enregistrement d'une fiche");
    if (rc != MG_OK)
        return rc;

    if (mg_record_deleted(record))
        return rc;
    if (strcmp(mg_record_kind(record), "offer") == 0 && self->defer_offers) {
        if (!self->deferred_from)
            self->deferred_from = seq;
    } else if (strcmp(mg_record_kind(record), "offer") == 0)
        rc = s_index_offer(self, record, why);
    else
        rc = mg_store_events_index_(self, record, why);
    return rc;
}

/* Refuses a record the store cannot keep. mg_record_decode and
   mg_record_sign never produce one: this guards against callers'
   mistakes. */
static int s_check_record(const mg_record_t *record, mg_why_t *why)
{
    if (!record)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    size_t raw_len = 0;
    const uint8_t *raw = mg_record_bytes(record, &raw_len);
    uint64_t counter = mg_record_counter(record);
    if (!mg_record_author(record) || !mg_record_rid(record)
        || !mg_record_kind(record) || !raw || raw_len == 0
        || raw_len > MG_RECORD_MAX)
        return mg_why_set(why, MG_ERR_ARG, "fiche incomplète");
    /* SQLite integers are signed 64-bit; a larger counter would compare
       as negative and lose against every older version. */
    if (counter > (uint64_t) INT64_MAX)
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "compteur de version trop grand (%" PRIu64 ")",
                          counter);
    return MG_OK;
}

int mg_store_apply_record(mg_store_t *self, const mg_record_t *record,
                          mg_apply_t *outcome, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    int rc = s_check_record(record, why);
    if (rc != MG_OK)
        return rc;

    /* Versions only grow, so "the stored one wins" read without the write
       lock stays true: duplicates from gossip are answered without
       queueing behind another writer. Inside the caller's transaction
       (an import, the daemon's bulk pull) the lock is already held and
       the read below is the only one needed. */
    bool found = false, wins = false;
    if (sqlite3_get_autocommit(self->db)) {
        rc = s_record_wins(self, record, &found, &wins, why);
        if (rc != MG_OK)
            return rc;
        if (!wins) {
            if (outcome)
                *outcome = MG_APPLY_KEPT;
            return MG_OK;
        }
    }

    bool nested = false;
    rc = s_unit_begin(self, &nested, why);
    if (rc != MG_OK)
        return rc;
    /* Read again under the lock: another writer may have stored a newer
       version since. */
    rc = s_record_wins(self, record, &found, &wins, why);
    mg_apply_t result = MG_APPLY_KEPT;
    if (rc == MG_OK && wins) {
        rc = s_store_record(self, record, found, why);
        result = found ? MG_APPLY_REPLACED : MG_APPLY_NEW;
    }
    rc = s_unit_end(self, nested, rc, why);
    if (rc == MG_OK && outcome)
        *outcome = result;
    return rc;
}

/* Refuses a batch holding a record the store cannot keep, naming it. */
static int s_check_batch(mg_record_t *const *records, size_t count,
                         mg_why_t *why)
{
    for (size_t i = 0; i < count; i++) {
        mg_why_t inner;
        int rc = s_check_record(records[i], &inner);
        if (rc != MG_OK)
            return mg_why_set(why, rc, "fiche %zu du lot : %s", i + 1,
                              inner.text);
    }
    return MG_OK;
}

/* Applies each record of a batch in turn inside the unit of work the
   caller opened (read again under the lock: a record that appears twice
   meets its own earlier copy). Stops at the first failure. */
static int s_apply_each(mg_store_t *self, mg_record_t *const *records,
                        size_t count, mg_apply_t *outcomes, mg_why_t *why)
{
    int rc = MG_OK;
    for (size_t i = 0; i < count && rc == MG_OK; i++) {
        bool found = false, wins = false;
        rc = s_record_wins(self, records[i], &found, &wins, why);
        if (rc != MG_OK)
            break;
        outcomes[i] = MG_APPLY_KEPT;
        if (wins) {
            rc = s_store_record(self, records[i], found, why);
            outcomes[i] = found ? MG_APPLY_REPLACED : MG_APPLY_NEW;
        }
    }
    return rc;
}

/* Whether any record of a checked batch is newer than what is stored. */
static int s_any_wins(mg_store_t *self, mg_record_t *const *records,
                      size_t count, bool *any, mg_why_t *why)
{
    *any = false;
    for (size_t i = 0; i < count && !*any; i++) {
        bool found = false;
        int rc = s_record_wins(self, records[i], &found, any, why);
        if (rc != MG_OK)
            return rc;
    }
    return MG_OK;
}

int mg_store_any_newer(mg_store_t *self, mg_record_t *const *records,
                       size_t count, bool *any, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !any || (count > 0 && !records))
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    int rc = s_check_batch(records, count, why);
    return rc == MG_OK ? s_any_wins(self, records, count, any, why) : rc;
}

int mg_store_apply_batch(mg_store_t *self, mg_record_t *const *records,
                         size_t count, mg_apply_t *outcomes, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || (count > 0 && (!records || !outcomes)))
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    int rc = s_check_batch(records, count, why);
    if (rc != MG_OK)
        return rc;

    /* As in mg_store_apply_record: a batch of duplicates (the same push
       forwarded by several neighbours) is answered without the write
       lock. The answer only holds for a batch where nothing wins. */
    bool any_wins = false;
    rc = s_any_wins(self, records, count, &any_wins, why);
    if (rc != MG_OK)
        return rc;
    if (!any_wins) {
        for (size_t i = 0; i < count; i++)
            outcomes[i] = MG_APPLY_KEPT;
        return MG_OK;
    }

    if (count >= S_BULK_MIN)
        s_bulk_cache(self);
    bool nested = false;
    rc = s_unit_begin(self, &nested, why);
    if (rc != MG_OK)
        return rc;
    rc = s_apply_each(self, records, count, outcomes, why);
    return s_unit_end(self, nested, rc, why);
}

int mg_store_apply_bulk(mg_store_t *self, mg_record_t *const *records,
                        size_t count, mg_apply_t *outcomes, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || (count > 0 && (!records || !outcomes)))
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    if (sqlite3_get_autocommit(self->db))
        return mg_why_set(why, MG_ERR_ARG, "aucune transaction ouverte");
    int rc = s_check_batch(records, count, why);
    if (rc != MG_OK)
        return rc;
    /* No savepoint: a statement that fails is undone by SQLite, but the
       earlier statements of its record are not, so the whole
       transaction goes. A live offer's search rows (offer_idx,
       offer_term) are not written here (a replaced version's rows are
       removed here): S_PENDING_KEY records from which seq on they are
       owed, in this same transaction. */
    self->defer_offers = true;
    self->deferred_from = 0;
    rc = s_apply_each(self, records, count, outcomes, why);
    self->defer_offers = false;
    if (rc == MG_OK && self->deferred_from) {
        /* An older mark stays: it is lower (seqs only grow). */
        sqlite3_stmt *stmt = NULL;
        int src = sqlite3_prepare_v2(self->db,
                                     "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                                     "ON CONFLICT (key) DO NOTHING",
                                     -1, &stmt, NULL);
        if (src == SQLITE_OK) {
            char text[32];
            snprintf(text, sizeof text, "%" PRId64, self->deferred_from);
            sqlite3_bind_text(stmt, 1, S_PENDING_KEY, -1, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 2, text, -1, SQLITE_TRANSIENT);
            src = sqlite3_step(stmt);
        }
        if (src != SQLITE_DONE)
            rc = s_db_fail(self, src, why, "mise à jour de l'index");
        sqlite3_finalize(stmt);
    }
    if (rc != MG_OK && !sqlite3_get_autocommit(self->db))
        sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int s_decode_stored(const void *raw, int len, mg_record_t **out,
                           mg_why_t *why);

/* One owed offer of the plan, and while the plan is built its key. */
struct mg_store_plan_t {
    int64_t rowid, seq;
};

typedef struct {
    struct mg_store_plan_t at;
    uint8_t author[MG_KEY_BYTES];
    char *rid;
} s_plan_key_t;

static int s_plan_cmp(const void *a, const void *b)
{
    const s_plan_key_t *x = a, *y = b;
    int c = memcmp(x->author, y->author, MG_KEY_BYTES);
    return c ? c : strcmp(x->rid, y->rid);
}

/* Writes the search rows of a live offer whose rows may be missing (left
   by mg_store_apply_bulk) or present (applied one by one since): no
   offer_idx row means no offer_term rows either, as both are written
   together. */
static int s_reindex_offer(mg_store_t *self, const mg_record_t *record,
                           mg_why_t *why)
{
    const uint8_t *author = mg_record_author(record);
    const char *rid = mg_record_rid(record);
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_DELETE_OFFER, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    rc = s_step_done(self, stmt, why, "mise à jour de l'index");
    if (rc == MG_OK && sqlite3_changes(self->db) > 0 && mg_record_body(record))
        rc = s_each_term(self, mg_record_body(record), author, rid,
                         s_term_delete, NULL, why);
    if (rc == MG_OK)
        rc = s_index_offer(self, record, why);
    return rc;
}

/* The first seq whose offer may lack its search rows, or 0 when none. */
static int s_pending_from(mg_store_t *self, int64_t *from)
{
    *from = 0;
    int rc = mg_store_meta_get_int(self, S_PENDING_KEY, from);
    if (rc == MG_ERR_NOT_FOUND) {
        *from = 0;
        return MG_OK;
    }
    /* A mark that does not parse (edited by hand): everything again. */
    if (rc == MG_ERR_MALFORMED || (rc == MG_OK && *from < 1)) {
        *from = 1;
        return MG_OK;
    }
    return rc;
}

/* Records at or after seq `from`: the work left, counted on the seq
   index alone (so replies and notes in that range count too). */
static int s_count_from(mg_store_t *self, int64_t from, int64_t *count)
{
    *count = 0;
    if (!from)
        return MG_OK;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db,
                                "SELECT COUNT(*) FROM record WHERE seq >= ?1",
                                -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(stmt, 1, from);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
            *count = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? MG_OK : MG_ERR_DB;
}

int mg_store_offers_pending(mg_store_t *self, int64_t *count)
{
    if (!self || !count)
        return MG_ERR_ARG;
    *count = 0;
    int64_t from = 0;
    int rc = s_pending_from(self, &from);
    if (rc == MG_OK)
        rc = s_count_from(self, from, count);
    return rc;
}

/* Forgets the catch-up's plan (the next call builds one afresh). */
static void s_plan_drop(mg_store_t *self)
{
    free(self->plan);
    self->plan = NULL;
    self->plan_len = self->plan_next = 0;
}

/* Lists the live offers at or after seq `from` (a read in seq order,
   which is the table's own order) and sorts them by (author, rid): the
   catch-up then writes offer_idx, its key and offer_term at the end of
   each B-tree rather than at random pages (100,000 offers: 4.3 s in
   chunks of 4,096, against 6.3 s in seq order). */
static int s_plan_build(mg_store_t *self, int64_t from, mg_why_t *why)
{
    s_plan_drop(self);
    self->plan_last_seq = from - 1;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db,
                                "SELECT rowid, seq, author, rid, kind, deleted "
                                "FROM record WHERE seq >= ?1 ORDER BY seq",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return s_db_fail(self, rc, why, "lecture des fiches à indexer");
    sqlite3_bind_int64(stmt, 1, from);
    s_plan_key_t *keys = NULL;
    size_t n = 0, cap = 0;
    int result = MG_OK;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        self->plan_last_seq = sqlite3_column_int64(stmt, 1);
        const char *kind = (const char *) sqlite3_column_text(stmt, 4);
        const void *author = sqlite3_column_blob(stmt, 2);
        const char *rid = (const char *) sqlite3_column_text(stmt, 3);
        if (!kind || strcmp(kind, "offer") != 0 || sqlite3_column_int(stmt, 5)
            || !author || sqlite3_column_bytes(stmt, 2) != MG_KEY_BYTES || !rid)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            s_plan_key_t *grown = realloc(keys, ncap * sizeof *keys);
            if (!grown) {
                result = MG_ERR_NOMEM;
                break;
            }
            keys = grown;
            cap = ncap;
        }
        keys[n].at.rowid = sqlite3_column_int64(stmt, 0);
        keys[n].at.seq = self->plan_last_seq;
        memcpy(keys[n].author, author, MG_KEY_BYTES);
        keys[n].rid = strdup(rid);
        if (!keys[n].rid) {
            result = MG_ERR_NOMEM;
            break;
        }
        n++;
    }
    if (result == MG_OK && rc != SQLITE_DONE)
        result = s_db_fail(self, rc, why, "lecture des fiches à indexer");
    else if (result != MG_OK)
        mg_why_set(why, result, "%s", mg_strerror(result));
    sqlite3_finalize(stmt);
    if (result == MG_OK && n) {
        qsort(keys, n, sizeof *keys, s_plan_cmp);
        self->plan = malloc(n * sizeof *self->plan);
        if (!self->plan)
            result = mg_why_set(why, MG_ERR_NOMEM, "%s", mg_strerror(MG_ERR_NOMEM));
        for (size_t i = 0; self->plan && i < n; i++)
            self->plan[i] = keys[i].at;
        if (self->plan)
            self->plan_len = n;
    }
    for (size_t i = 0; i < n; i++)
        free(keys[i].rid);
    free(keys);
    return result;
}

int mg_store_index_pending(mg_store_t *self, size_t max, int64_t *left,
                           mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || max == 0)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    if (left)
        *left = 0;
    int64_t from = 0;
    int rc = s_pending_from(self, &from);
    if (rc != MG_OK)
        return mg_why_set(why, rc, "lecture de l'index en attente : %s",
                          mg_strerror(rc));
    if (!from) {
        s_plan_drop(self);
        return MG_OK;
    }
    s_bulk_cache(self);
    bool nested = false;
    rc = s_unit_begin(self, &nested, why);
    if (rc != MG_OK)
        return rc;
    /* Read again under the lock: another connection may have done it.
       A plan stays valid while the mark has not moved: offers owed
       since have greater seqs and wait for the next plan; an offer
       replaced since is skipped (its row's seq changed), its newer
       version being indexed or owed with that seq. */
    rc = s_pending_from(self, &from);
    if (rc != MG_OK)
        rc = mg_why_set(why, rc, "%s", mg_strerror(rc));
    else if (!from)
        s_plan_drop(self);
    else if (self->plan_next >= self->plan_len)
        rc = s_plan_build(self, from, why);
    sqlite3_stmt *stmt = NULL;
    if (rc == MG_OK && from && self->plan_next < self->plan_len) {
        int src = sqlite3_prepare_v2(self->db,
                                     "SELECT seq, raw FROM record WHERE rowid = ?1",
                                     -1, &stmt, NULL);
        if (src != SQLITE_OK)
            rc = s_db_fail(self, src, why, "lecture des fiches à indexer");
    }
    size_t end = self->plan_next + max < self->plan_len ? self->plan_next + max
                                                          : self->plan_len;
    for (size_t i = self->plan_next; rc == MG_OK && stmt && i < end; i++) {
        sqlite3_bind_int64(stmt, 1, self->plan[i].rowid);
        int src = sqlite3_step(stmt);
        if (src == SQLITE_ROW && sqlite3_column_int64(stmt, 0) == self->plan[i].seq) {
            mg_record_t *rec = NULL;
            rc = s_decode_stored(sqlite3_column_blob(stmt, 1),
                                 sqlite3_column_bytes(stmt, 1), &rec, why);
            if (rc == MG_OK)
                rc = s_reindex_offer(self, rec, why);
            mg_record_destroy(&rec);
        } else if (src != SQLITE_ROW && src != SQLITE_DONE) {
            rc = s_db_fail(self, src, why, "lecture des fiches à indexer");
        }
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    /* The plan done, everything up to its last seq is indexed. */
    bool owed = from != 0;
    if (rc == MG_OK && owed && end >= self->plan_len) {
        int64_t last = 0;
        rc = mg_store_last_seq(self, &last);
        if (rc != MG_OK) {
            rc = mg_why_set(why, rc, "%s", mg_strerror(rc));
        } else if (last <= self->plan_last_seq) {
            rc = mg_store_meta_del(self, S_PENDING_KEY, why);
            owed = false;
        } else {
            rc = mg_store_meta_set_int(self, S_PENDING_KEY, self->plan_last_seq + 1, why);
        }
    }
    rc = s_unit_end(self, nested, rc, why);
    if (rc != MG_OK) {
        /* Undone: the next call starts a new plan from the mark. */
        s_plan_drop(self);
        return rc;
    }
    self->plan_next = end;
    if (left && owed) {
        int64_t beyond = 0;
        s_count_from(self, self->plan_last_seq + 1, &beyond);
        *left = (int64_t) (self->plan_len - self->plan_next) + beyond;
        if (*left == 0)
            *left = 1; /* the mark is still set: one more call clears it */
    }
    return MG_OK;
}

int mg_store_apply(mg_store_t *self, const uint8_t *data, size_t len,
                   mg_apply_t *outcome, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !data)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    mg_record_t *record = NULL;
    int rc = mg_record_decode(data, len, &record, why);
    if (rc != MG_OK)
        return rc;
    rc = mg_store_apply_record(self, record, outcome, why);
    mg_record_destroy(&record);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Reads                                                                */

/* Decodes a stored record's bytes. They were verified when stored, so a
   failure means the file was damaged or edited behind our back. */
static int s_decode_stored(const void *raw, int len, mg_record_t **out,
                           mg_why_t *why)
{
    *out = NULL;
    if (!raw || len <= 0)
        return mg_why_set(why, MG_ERR_DB, "fiche stockée vide : la base est "
                          "endommagée (lancez « maillage check »)");
    mg_why_t inner;
    mg_why_clear(&inner);
    int rc = mg_record_decode_trusted(raw, (size_t) len, out, &inner);
    if (rc != MG_OK)
        return mg_why_set(why, rc, "fiche stockée illisible (%s) : la base "
                          "est endommagée (lancez « maillage check »)",
                          inner.text);
    return MG_OK;
}

int mg_store_get(mg_store_t *self, const uint8_t author[MG_KEY_BYTES],
                 const char *rid, mg_record_t **out, mg_why_t *why)
{
    mg_why_clear(why);
    if (out)
        *out = NULL;
    if (!self || !author || !rid || !out)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_GET_RAW, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        rc = s_decode_stored(sqlite3_column_blob(stmt, 0),
                             sqlite3_column_bytes(stmt, 0), out, why);
    } else if (rc == SQLITE_DONE) {
        rc = mg_why_set(why, MG_ERR_NOT_FOUND,
                        "aucune fiche « %.64s » de cet auteur", rid);
    } else {
        rc = s_db_fail(self, rc, why, "lecture d'une fiche");
    }
    s_stmt_done(stmt);
    return rc;
}

int mg_store_max_counter(mg_store_t *self, const uint8_t author[MG_KEY_BYTES],
                         uint64_t *out)
{
    if (!self || !author || !out)
        return MG_ERR_ARG;
    *out = 0;
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_MAX_COUNTER, &stmt, NULL);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    int result = MG_OK;
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(stmt, 0) != SQLITE_NULL)
            *out = (uint64_t) sqlite3_column_int64(stmt, 0);
    } else {
        result = s_db_fail(self, rc, NULL, "lecture du compteur");
    }
    s_stmt_done(stmt);
    return result;
}

int mg_store_author(mg_store_t *self, const mg_identity_t *id, const char *kind,
                    const char *rid, int64_t created_ms, bool deleted,
                    const mg_body_t *body, mg_why_t *why)
{
    if (!self || !id)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    int rc = mg_store_begin(self, why);
    if (rc != MG_OK)
        return rc;
    uint64_t counter = 0;
    mg_record_t *rec = NULL;
    mg_apply_t outcome;
    rc = mg_store_max_counter(self, id->pk, &counter);
    if (rc != MG_OK)
        mg_why_set(why, rc, "%s", mg_strerror(rc));
    if (rc == MG_OK)
        rc = mg_record_sign(id, kind, rid, counter + 1, created_ms, deleted,
                            deleted ? NULL : body, &rec, why);
    if (rc == MG_OK)
        rc = mg_store_apply_record(self, rec, &outcome, why);
    mg_record_destroy(&rec);
    if (rc == MG_OK)
        rc = mg_store_commit(self, why);
    if (rc != MG_OK)
        mg_store_rollback(self);
    return rc;
}

/* Next byte string after every string that starts with `prefix`: the
   prefix with its last byte below 0xFF incremented and the rest cut.
   Returns its length, or 0 when there is none (all 0xFF). */
static size_t s_prefix_end(const char *prefix, size_t len, char *end)
{
    memcpy(end, prefix, len);
    while (len > 0) {
        unsigned char last = (unsigned char) end[len - 1];
        if (last < 0xFF) {
            end[len - 1] = (char) (last + 1);
            return len;
        }
        len--;
    }
    return 0;
}

int mg_store_resolve(mg_store_t *self, const char *kind, const char *prefix,
                     const uint8_t *author, uint8_t author_out[MG_KEY_BYTES],
                     char *rid_out, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !prefix || !author_out || !rid_out)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    size_t len = strlen(prefix);
    if (len == 0)
        return mg_why_set(why, MG_ERR_ARG, "identifiant de fiche vide");
    if (len > MG_RID_MAX)
        return mg_why_set(why, MG_ERR_NOT_FOUND,
                          "« %.64s… » est plus long qu'un identifiant de "
                          "fiche (%d caractères au plus)", prefix,
                          MG_RID_MAX);

    /* A byte range on rid instead of LIKE: the prefix is taken literally
       ('%' and '_' are plain characters) and the (kind, rid) index is
       used for both bounds. */
    char end[MG_RID_MAX];
    size_t end_len = s_prefix_end(prefix, len, end);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT author, rid FROM record WHERE deleted = 0 "
             "AND rid >= ?1%s%s%s ORDER BY rid, author LIMIT %d",
             end_len ? " AND rid < ?2" : "", kind ? " AND kind = ?3" : "",
             author ? " AND author = ?4" : "", S_AMBIGUOUS_SHOWN + 1);
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return s_db_fail(self, rc, why, "recherche d'une fiche");
    sqlite3_bind_text(stmt, 1, prefix, (int) len, SQLITE_STATIC);
    if (end_len)
        sqlite3_bind_text(stmt, 2, end, (int) end_len, SQLITE_STATIC);
    if (kind)
        sqlite3_bind_text(stmt, 3, kind, -1, SQLITE_STATIC);
    if (author)
        sqlite3_bind_blob(stmt, 4, author, MG_KEY_BYTES, SQLITE_STATIC);

    /* Rows come in rid order, so exact matches (the smallest string with
       this prefix) come first. */
    char rids[S_AMBIGUOUS_SHOWN + 1][MG_RID_MAX + 1];
    uint8_t authors[S_AMBIGUOUS_SHOWN + 1][MG_KEY_BYTES];
    int n = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const void *a = sqlite3_column_blob(stmt, 0);
        const unsigned char *r = sqlite3_column_text(stmt, 1);
        if (!a || sqlite3_column_bytes(stmt, 0) != MG_KEY_BYTES || !r)
            continue;
        memcpy(authors[n], a, MG_KEY_BYTES);
        snprintf(rids[n], sizeof rids[n], "%s", (const char *) r);
        n++;
    }
    if (rc != SQLITE_DONE) {
        rc = s_db_fail(self, rc, why, "recherche d'une fiche");
        sqlite3_finalize(stmt);
        return rc;
    }
    sqlite3_finalize(stmt);

    int exact = 0;
    while (exact < n && strcmp(rids[exact], prefix) == 0)
        exact++;
    int pick = -1;
    if (exact == 1 || (exact == 0 && n == 1))
        pick = 0;
    if (pick >= 0) {
        memcpy(author_out, authors[pick], MG_KEY_BYTES);
        memcpy(rid_out, rids[pick], strlen(rids[pick]) + 1);
        return MG_OK;
    }
    if (n == 0)
        return mg_why_set(why, MG_ERR_NOT_FOUND,
                          "aucune fiche%s%s%s dont l'identifiant commence "
                          "par « %s »",
                          kind ? " « " : "", kind ? kind : "",
                          kind ? " »" : "", prefix);

    /* Several authors used the same rid: the rid alone cannot choose. */
    char list[400] = "";
    size_t used = 0;
    if (exact > 1) {
        for (int i = 0; i < exact && i < S_AMBIGUOUS_SHOWN; i++) {
            char hex[17];
            for (int b = 0; b < 8; b++)
                snprintf(hex + 2 * b, 3, "%02x", authors[i][b]);
            used += (size_t) snprintf(list + used, sizeof list - used, "%s%s",
                                      i ? ", " : "", hex);
        }
        return mg_why_set(why, MG_ERR_AMBIGUOUS,
                          "plusieurs auteurs ont une fiche « %s » "
                          "(auteurs %s%s) ; précisez l'auteur",
                          prefix, list, n > S_AMBIGUOUS_SHOWN ? ", …" : "");
    }
    for (int i = 0; i < n && i < S_AMBIGUOUS_SHOWN; i++)
        used += (size_t) snprintf(list + used, sizeof list - used, "%s%s",
                                  i ? ", " : "", rids[i]);
    return mg_why_set(why, MG_ERR_AMBIGUOUS,
                      "plusieurs fiches commencent par « %s » : %s%s ; "
                      "donnez plus de caractères",
                      prefix, list, n > S_AMBIGUOUS_SHOWN ? ", …" : "");
}

/* Steps `stmt`, whose first column is a record's raw bytes, calling `fn`
   on each decoded record. Finalizes `stmt`. */
static int s_iterate(mg_store_t *self, sqlite3_stmt *stmt, mg_record_fn *fn,
                     void *arg, mg_why_t *why)
{
    int rc, result = MG_OK;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        mg_record_t *record = NULL;
        result = s_decode_stored(sqlite3_column_blob(stmt, 0),
                                 sqlite3_column_bytes(stmt, 0), &record, why);
        if (result != MG_OK)
            break;
        result = fn(record, arg);
        mg_record_destroy(&record);
        if (result != 0)
            break;
    }
    if (result == MG_OK && rc != SQLITE_DONE)
        result = s_db_fail(self, rc, why, "lecture des fiches");
    sqlite3_finalize(stmt);
    return result;
}

int mg_store_records(mg_store_t *self, const char *kind, bool with_tombstones,
                     mg_record_fn *fn, void *arg, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !fn)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT raw FROM record WHERE 1%s%s "
             "ORDER BY author, rid",
             kind ? " AND kind = ?1" : "",
             with_tombstones ? "" : " AND deleted = 0");
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return s_db_fail(self, rc, why, "lecture des fiches");
    if (kind)
        sqlite3_bind_text(stmt, 1, kind, -1, SQLITE_STATIC);
    return s_iterate(self, stmt, fn, arg, why);
}

/* Trims spaces around a code and upper-cases it ("2a " → "2A"), into
   `out`. Codes are short ASCII: anything longer cannot match. */
static void s_normalize_code(const char *in, char *out, size_t size)
{
    while (*in == ' ' || *in == '\t')
        in++;
    size_t n = 0;
    for (; in[n] && n + 1 < size; n++)
        out[n] = (char) toupper((unsigned char) in[n]);
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = '\0';
}

int mg_store_offers(mg_store_t *self, const mg_offer_query_t *query,
                    mg_record_fn *fn, void *arg, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !fn)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    static const mg_offer_query_t all = {0};
    if (!query)
        query = &all;

    char *service = NULL, *public_ = NULL, *commune = NULL;
    char code_postal[16] = "", departement[16] = "";
    int rc = MG_OK;
    if (query->service
        && (rc = s_fold_query("service", query->service, &service, why))
               != MG_OK)
        goto done;
    if (query->public_
        && (rc = s_fold_query("public", query->public_, &public_, why))
               != MG_OK)
        goto done;
    if (query->commune
        && (rc = s_fold_query("commune", query->commune, &commune, why))
               != MG_OK)
        goto done;
    if (query->code_postal)
        s_normalize_code(query->code_postal, code_postal, sizeof code_postal);
    if (query->departement)
        s_normalize_code(query->departement, departement, sizeof departement);

    /* Only fixed fragments go into the text; every value is bound. */
    char sql[1024];
    snprintf(
        sql, sizeof sql,
        "SELECT r.raw FROM offer_idx o JOIN record r "
        "ON r.author = o.author AND r.rid = o.rid WHERE r.deleted = 0%s%s%s%s%s%s "
        "ORDER BY o.commune_fold, o.nom_fold, o.rid, o.author",
        service ? " AND EXISTS (SELECT 1 FROM offer_term t WHERE "
                  "t.field = " S_STR(S_TERM_SERVICES) " AND t.value_fold = ?1 "
                  "AND t.author = o.author AND t.rid = o.rid)"
                : "",
        /* An offer that names no specific public serves everyone. */
        public_ ? " AND (o.publics = 0 OR EXISTS (SELECT 1 FROM offer_term t "
                  "WHERE t.field = " S_STR(S_TERM_PUBLICS) " AND "
                  "t.value_fold = ?2 AND t.author = o.author AND "
                  "t.rid = o.rid))"
                : "",
        commune ? " AND o.commune_fold = ?3" : "",
        query->code_postal ? " AND o.code_postal = ?4" : "",
        query->departement ? " AND o.departement = ?5" : "",
        query->author ? " AND o.author = ?6" : "");
    sqlite3_stmt *stmt = NULL;
    int src = sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL);
    if (src != SQLITE_OK) {
        rc = s_db_fail(self, src, why, "recherche d'offres");
        goto done;
    }
    if (service)
        sqlite3_bind_text(stmt, 1, service, -1, SQLITE_STATIC);
    if (public_)
        sqlite3_bind_text(stmt, 2, public_, -1, SQLITE_STATIC);
    if (commune)
        sqlite3_bind_text(stmt, 3, commune, -1, SQLITE_STATIC);
    if (query->code_postal)
        sqlite3_bind_text(stmt, 4, code_postal, -1, SQLITE_STATIC);
    if (query->departement)
        sqlite3_bind_text(stmt, 5, departement, -1, SQLITE_STATIC);
    if (query->author)
        sqlite3_bind_blob(stmt, 6, query->author, MG_KEY_BYTES,
                          SQLITE_STATIC);
    rc = s_iterate(self, stmt, fn, arg, why);

done:
    free(service);
    free(public_);
    free(commune);
    return rc;
}

int mg_store_counts(mg_store_t *self, bool by_author, mg_count_fn *fn,
                    void *arg, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !fn)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    const char *sql =
        by_author
            ? "SELECT author, kind, sum(deleted = 0), sum(deleted <> 0) "
              "FROM record GROUP BY author, kind ORDER BY author, kind"
            : "SELECT NULL, kind, sum(deleted = 0), sum(deleted <> 0) "
              "FROM record GROUP BY kind ORDER BY kind";
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return s_db_fail(self, rc, why, "comptage des fiches");
    int result = MG_OK;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        /* Copies, so the row stays valid whatever fn does to the
           connection. */
        uint8_t author[MG_KEY_BYTES];
        char kind[MG_KIND_MAX + 1];
        const void *a = sqlite3_column_blob(stmt, 0);
        const unsigned char *k = sqlite3_column_text(stmt, 1);
        mg_count_t count = {0};
        if (by_author && a && sqlite3_column_bytes(stmt, 0) == MG_KEY_BYTES) {
            memcpy(author, a, MG_KEY_BYTES);
            count.author = author;
        }
        snprintf(kind, sizeof kind, "%s", k ? (const char *) k : "");
        count.kind = kind;
        count.live = sqlite3_column_int64(stmt, 2);
        count.tombstones = sqlite3_column_int64(stmt, 3);
        result = fn(&count, arg);
        if (result != 0)
            break;
    }
    if (result == MG_OK && rc != SQLITE_DONE)
        result = s_db_fail(self, rc, why, "comptage des fiches");
    sqlite3_finalize(stmt);
    return result;
}

/* ------------------------------------------------------------------ */
/* Meta, check                                                          */

int mg_store_meta_get(mg_store_t *self, const char *key, char *out,
                      size_t size)
{
    if (!self || !key || !out || size == 0)
        return MG_ERR_ARG;
    out[0] = '\0';
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_META_GET, &stmt, NULL);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    int result = MG_OK;
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(stmt, 0);
        snprintf(out, size, "%s", v ? (const char *) v : "");
    } else if (rc == SQLITE_DONE) {
        result = MG_ERR_NOT_FOUND;
    } else {
        result = s_db_fail(self, rc, NULL, "lecture d'un réglage");
    }
    s_stmt_done(stmt);
    return result;
}

int mg_store_meta_set(mg_store_t *self, const char *key, const char *value,
                      mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !key || !value)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_META_SET, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC);
    return s_step_done(self, stmt, why, "enregistrement d'un réglage");
}

void mg_store_set_busy_timeout(mg_store_t *self, int ms)
{
    if (self && self->db)
        sqlite3_busy_timeout(self->db, ms < 0 ? S_BUSY_TIMEOUT_MS : ms);
}

int mg_store_meta_del(mg_store_t *self, const char *key, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !key)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_META_DEL, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    return s_step_done(self, stmt, why, "effacement d'un réglage");
}

int mg_store_meta_get_int(mg_store_t *self, const char *key, int64_t *out)
{
    if (!out)
        return MG_ERR_ARG;
    *out = 0;
    /* INT64_MIN has 20 characters; anything longer is not ours. */
    char text[32];
    int rc = mg_store_meta_get(self, key, text, sizeof text);
    if (rc != MG_OK)
        return rc;
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE)
        return MG_ERR_MALFORMED;
    *out = (int64_t) value;
    return MG_OK;
}

int mg_store_meta_set_int(mg_store_t *self, const char *key, int64_t value,
                          mg_why_t *why)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, value);
    return mg_store_meta_set(self, key, text, why);
}

int mg_store_check(mg_store_t *self, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    /* integrity_check does not look at foreign keys: an index row whose
       record vanished would go unnoticed without the second pragma. */
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db, "PRAGMA integrity_check", -1, &stmt,
                                NULL);
    if (rc != SQLITE_OK)
        return s_db_fail(self, rc, why, "vérification de la base");
    int result = MG_OK;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const unsigned char *answer = sqlite3_column_text(stmt, 0);
        if (!answer || strcmp((const char *) answer, "ok") != 0)
            result = mg_why_set(why, MG_ERR_DB,
                                "la base est endommagée : %s",
                                answer ? (const char *) answer : "?");
    } else {
        result = s_db_fail(self, rc, why, "vérification de la base");
    }
    sqlite3_finalize(stmt);
    if (result != MG_OK)
        return result;

    rc = sqlite3_prepare_v2(self->db, "PRAGMA foreign_key_check", -1, &stmt,
                            NULL);
    if (rc != SQLITE_OK)
        return s_db_fail(self, rc, why, "vérification de la base");
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const unsigned char *table = sqlite3_column_text(stmt, 0);
        result = mg_why_set(why, MG_ERR_DB,
                            "index incohérent : la table %s a des lignes "
                            "sans fiche",
                            table ? (const char *) table : "?");
    } else if (rc != SQLITE_DONE) {
        result = s_db_fail(self, rc, why, "vérification de la base");
    }
    sqlite3_finalize(stmt);
    return result;
}
