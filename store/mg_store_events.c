/*  mg_store_events.c - the indexes of events, replies and notes, and the
    queries that read them: event lists and invitations, the reply tally,
    note listing and full-text search, retention of past events.

    The index rows are derived from the records, like the offer indexes
    of mg_store.c: the apply path calls mg_store_events_unindex_ when a
    version is replaced (or deleted) and mg_store_events_index_ for the
    new live version, inside the same unit of work, so a node that
    receives an update or a tombstone by replication updates its indexes
    exactly as the author's node did.

    Full text: two FTS5 tables (unicode61 with remove_diacritics 2, so
    "demarches" finds "Démarches") that keep their own copy of the
    indexed text: snippets need it, and a contentless table could neither
    give them nor delete a row without the old text (contentless_delete
    needs SQLite 3.43; Debian 12 has 3.40).
*/
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "mg_event.h"
#include "mg_offer.h"
#include "mg_store_int.h"
#include "mg_text.h"

#define S_DAY_MS 86400000LL
/* Retention bounds: at least a day (a node must be able to show what
   ended this morning), at most a century (no overflow in ms). */
#define S_RETENTION_MIN 1
#define S_RETENTION_MAX 36500
/* Default number of search hits. */
#define S_SEARCH_LIMIT 20
/* Tokens around the match in a snippet: about a line of text. */
#define S_SNIPPET_TOKENS 16

/* The SQL of this file's cached statements (mg_store_int.h). */
static const char *const s_sql[S_STMT_COUNT] = {
    [S_EV_FIND_ROWS] =
        "SELECT (SELECT rowid FROM event_idx WHERE author = ?1 AND rid = ?2),"
        " (SELECT 1 FROM rsvp_idx WHERE author = ?1 AND rid = ?2),"
        " (SELECT rowid FROM note_idx WHERE author = ?1 AND rid = ?2)",
    [S_EV_DEL_FTS] = "DELETE FROM event_fts WHERE rowid = ?1",
    [S_EV_DEL_TERRITORY] =
        "DELETE FROM event_territory WHERE author = ?1 AND rid = ?2",
    [S_EV_DEL_TERM] = "DELETE FROM event_term WHERE author = ?1 AND rid = ?2",
    [S_EV_DEL_PARTNER] =
        "DELETE FROM event_partner WHERE author = ?1 AND rid = ?2",
    [S_EV_DEL_EVENT] = "DELETE FROM event_idx WHERE author = ?1 AND rid = ?2",
    [S_EV_DEL_RSVP] = "DELETE FROM rsvp_idx WHERE author = ?1 AND rid = ?2",
    [S_EV_DEL_NOTE_FTS] = "DELETE FROM note_fts WHERE rowid = ?1",
    [S_EV_DEL_NOTE_TERM] =
        "DELETE FROM note_term WHERE author = ?1 AND rid = ?2",
    [S_EV_DEL_NOTE] = "DELETE FROM note_idx WHERE author = ?1 AND rid = ?2",
    [S_EV_INS_EVENT] =
        "INSERT INTO event_idx (author, rid, start_ms, end_ms, cancelled, "
        "capacity, code_postal, latitude, longitude, open) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_EV_INS_TERRITORY] =
        "INSERT OR IGNORE INTO event_territory (author, rid, code, dep) "
        "VALUES (?1, ?2, ?3, ?4)",
    [S_EV_INS_TERM] =
        "INSERT OR IGNORE INTO event_term (author, rid, field, value_fold) "
        "VALUES (?1, ?2, ?3, ?4)",
    [S_EV_INS_PARTNER] =
        "INSERT OR IGNORE INTO event_partner (author, rid, partner) "
        "VALUES (?1, ?2, ?3)",
    [S_EV_INS_FTS] =
        "INSERT INTO event_fts (rowid, titre, description, lieu) "
        "VALUES (?1, ?2, ?3, ?4)",
    [S_EV_INS_RSVP] =
        "INSERT INTO rsvp_idx (author, rid, event_author, event_rid, answer, "
        "seats, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_EV_INS_NOTE] =
        "INSERT INTO note_idx (author, rid, created) VALUES (?1, ?2, ?3)",
    [S_EV_INS_NOTE_TERM] =
        "INSERT OR IGNORE INTO note_term (author, rid, field, value_fold) "
        "VALUES (?1, ?2, ?3, ?4)",
    [S_EV_INS_NOTE_FTS] =
        "INSERT INTO note_fts (rowid, titre, texte, tags) "
        "VALUES (?1, ?2, ?3, ?4)",
};

static int s_stmt(mg_store_t *self, s_stmt_id_t id, sqlite3_stmt **out,
                  mg_why_t *why)
{
    return mg_store_stmt_(self, id, s_sql[id], out, why);
}

static int64_t s_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs cached statement `id` bound to (author, rid). */
static int s_exec_ar(mg_store_t *self, s_stmt_id_t id, const uint8_t *author,
                     const char *rid, mg_why_t *why)
{
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, id, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    return mg_store_step_done_(self, stmt, why, "mise à jour de l'index");
}

/* Runs cached statement `id` bound to one rowid. */
static int s_exec_rowid(mg_store_t *self, s_stmt_id_t id, int64_t rowid,
                        mg_why_t *why)
{
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, id, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, rowid);
    return mg_store_step_done_(self, stmt, why, "mise à jour de l'index");
}

/* ------------------------------------------------------------------ */
/* Retention                                                            */

int mg_store_event_retention(mg_store_t *self, int64_t *days)
{
    if (!self || !days)
        return MG_ERR_ARG;
    *days = MG_EVENT_RETENTION_DEFAULT_DAYS;
    int64_t v = 0;
    int rc = mg_store_meta_get_int(self, MG_META_EVENT_RETENTION_DAYS, &v);
    /* An unreadable setting (edited by hand) falls back to the default
       rather than dropping every past event. */
    if (rc == MG_OK && v >= S_RETENTION_MIN && v <= S_RETENTION_MAX)
        *days = v;
    return rc == MG_OK || rc == MG_ERR_NOT_FOUND || rc == MG_ERR_MALFORMED
               ? MG_OK
               : rc;
}

/* Events that ended before this are not indexed. */
static int s_cutoff(mg_store_t *self, int64_t now_ms, int64_t *cutoff)
{
    int64_t days = MG_EVENT_RETENTION_DEFAULT_DAYS;
    int rc = mg_store_event_retention(self, &days);
    *cutoff = now_ms - days * S_DAY_MS;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Index maintenance                                                    */

/* Adds one folded term row per distinct item of `field`, with cached
   statement `id` ((author, rid, field, value_fold)). */
static int s_index_terms(mg_store_t *self, s_stmt_id_t id,
                         const uint8_t *author, const char *rid,
                         const mg_body_t *body, const char *field,
                         mg_why_t *why)
{
    const char *const *items = NULL;
    size_t count = mg_body_list(body, field, &items);
    for (size_t i = 0; i < count; i++) {
        char *folded = NULL;
        int rc = mg_store_fold(items[i], &folded);
        if (rc == MG_ERR_NOMEM)
            return mg_why_set(why, rc, "%s", mg_strerror(rc));
        if (rc != MG_OK || !*folded) {
            free(folded);
            continue;
        }
        sqlite3_stmt *stmt;
        rc = s_stmt(self, id, &stmt, why);
        if (rc != MG_OK) {
            free(folded);
            return rc;
        }
        sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, field, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, folded, -1, free);
        rc = mg_store_step_done_(self, stmt, why, "mise à jour de l'index");
        if (rc != MG_OK)
            return rc;
    }
    return MG_OK;
}

/* Joins the items of a body field with `sep`. Caller frees; NULL when
   out of memory. An absent field gives "". */
static char *s_join(const mg_body_t *body, const char *field, const char *sep)
{
    const char *const *items = NULL;
    size_t n = mg_body_list(body, field, &items);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + strlen(sep);
    char *out = malloc(len);
    if (!out)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t s = i ? strlen(sep) : 0, k = strlen(items[i]);
        memcpy(out + used, sep, s);
        memcpy(out + used + s, items[i], k);
        used += s + k;
    }
    out[used] = '\0';
    return out;
}

static int s_nomem(mg_why_t *why)
{
    return mg_why_set(why, MG_ERR_NOMEM, "%s", mg_strerror(MG_ERR_NOMEM));
}

static int s_index_event(mg_store_t *self, const mg_record_t *record,
                         mg_why_t *why)
{
    const uint8_t *author = mg_record_author(record);
    const char *rid = mg_record_rid(record);
    const mg_body_t *body = mg_record_body(record);
    int64_t start = 0, end = 0, cutoff = 0;
    /* Received bodies passed the lenient rules, which include these. */
    if (mg_time_parse_utc(mg_body_str(body, "debut"), &start) != 0
        || mg_time_parse_utc(mg_body_str(body, "fin"), &end) != 0)
        return MG_OK;
    int rc = s_cutoff(self, s_clock_ms(), &cutoff);
    if (rc != MG_OK)
        return mg_why_set(why, rc, "lecture de la durée de conservation");
    if (end < cutoff)
        return MG_OK; /* past the retention period: kept, not indexed */

    sqlite3_stmt *stmt;
    rc = s_stmt(self, S_EV_INS_EVENT, &stmt, why);
    if (rc != MG_OK)
        return rc;
    const char *const *codes = NULL;
    size_t ncodes = mg_body_list(body, "territoire", &codes);
    double cap = 0, lat = 0, lon = 0;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, start);
    sqlite3_bind_int64(stmt, 4, end);
    sqlite3_bind_int(stmt, 5, mg_body_find(body, "annule_le") >= 0);
    if (mg_body_num(body, "capacite", &cap) == 0 && cap >= 1
        && cap <= MG_CAPACITY_MAX)
        sqlite3_bind_int64(stmt, 6, (int64_t) cap);
    else
        sqlite3_bind_null(stmt, 6);
    const char *cp = mg_body_str(body, "code_postal");
    if (cp)
        sqlite3_bind_text(stmt, 7, cp, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 7);
    /* Both coordinates or none: half a point is no place. */
    if (mg_body_num(body, "latitude", &lat) == 0
        && mg_body_num(body, "longitude", &lon) == 0) {
        sqlite3_bind_double(stmt, 8, lat);
        sqlite3_bind_double(stmt, 9, lon);
    } else {
        sqlite3_bind_null(stmt, 8);
        sqlite3_bind_null(stmt, 9);
    }
    sqlite3_bind_int(stmt, 10, ncodes == 0);
    rc = mg_store_step_done_(self, stmt, why, "mise à jour de l'index");
    if (rc != MG_OK)
        return rc;
    int64_t rowid = sqlite3_last_insert_rowid(mg_store_db(self));

    for (size_t i = 0; i < ncodes; i++) {
        bool commune = false;
        if (!mg_territory_code_valid(codes[i], &commune))
            continue; /* a newer version's code: not indexed */
        char dep[4];
        if (commune) {
            if (mg_departement_of(codes[i], NULL, dep) != 0)
                continue;
        } else {
            snprintf(dep, sizeof dep, "%s", codes[i]);
        }
        rc = s_stmt(self, S_EV_INS_TERRITORY, &stmt, why);
        if (rc != MG_OK)
            return rc;
        sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, codes[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, dep, -1, SQLITE_TRANSIENT);
        rc = mg_store_step_done_(self, stmt, why, "mise à jour de l'index");
        if (rc != MG_OK)
            return rc;
    }
    if ((rc = s_index_terms(self, S_EV_INS_TERM, author, rid, body,
                            "services", why)) != MG_OK
        || (rc = s_index_terms(self, S_EV_INS_TERM, author, rid, body,
                               "publics_specifiquement_adresses", why))
               != MG_OK)
        return rc;

    const char *const *partners = NULL;
    size_t npartners = mg_body_list(body, "partenaires", &partners);
    for (size_t i = 0; i < npartners; i++) {
        uint8_t key[MG_KEY_BYTES];
        if (strlen(partners[i]) != 2 * MG_KEY_BYTES
            || mg_hex_decode(partners[i], key, sizeof key) != 0)
            continue;
        rc = s_stmt(self, S_EV_INS_PARTNER, &stmt, why);
        if (rc != MG_OK)
            return rc;
        sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
        sqlite3_bind_blob(stmt, 3, key, MG_KEY_BYTES, SQLITE_TRANSIENT);
        rc = mg_store_step_done_(self, stmt, why, "mise à jour de l'index");
        if (rc != MG_OK)
            return rc;
    }

    /* The place as one text: street, postal code, commune. */
    const char *parts[3] = {mg_body_str(body, "adresse"), cp,
                            mg_body_str(body, "commune")};
    size_t len = 1;
    for (int i = 0; i < 3; i++)
        len += parts[i] ? strlen(parts[i]) + 1 : 0;
    char *place = malloc(len);
    if (!place)
        return s_nomem(why);
    place[0] = '\0';
    for (int i = 0; i < 3; i++)
        if (parts[i]) {
            if (place[0])
                strcat(place, " ");
            strcat(place, parts[i]);
        }
    rc = s_stmt(self, S_EV_INS_FTS, &stmt, why);
    if (rc != MG_OK) {
        free(place);
        return rc;
    }
    const char *desc = mg_body_str(body, "description");
    sqlite3_bind_int64(stmt, 1, rowid);
    sqlite3_bind_text(stmt, 2, mg_body_str(body, "titre"), -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, desc ? desc : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, place, -1, free);
    return mg_store_step_done_(self, stmt, why, "mise à jour de l'index");
}

static int s_index_rsvp(mg_store_t *self, const mg_record_t *record,
                        mg_why_t *why)
{
    const uint8_t *author = mg_record_author(record);
    const char *rid = mg_record_rid(record);
    const mg_body_t *body = mg_record_body(record);
    const char *ea = mg_body_str(body, "evenement_auteur");
    const char *er = mg_body_str(body, "evenement_id");
    const char *answer = mg_body_str(body, "reponse");
    uint8_t event_author[MG_KEY_BYTES];
    if (!ea || !er || !answer || strlen(ea) != 2 * MG_KEY_BYTES
        || mg_hex_decode(ea, event_author, sizeof event_author) != 0
        || strlen(answer) >= sizeof ((mg_reply_t *) 0)->answer)
        return MG_OK;
    /* Only the reply under the derived id counts: a node that signed
       replies under other ids would otherwise count several times. */
    char expected[MG_RSVP_RID_LEN + 1];
    mg_rsvp_rid(event_author, er, expected);
    if (strcmp(rid, expected) != 0)
        return MG_OK;
    double seats = 1;
    if (mg_body_num(body, "places", &seats) != 0 || seats < 1
        || seats > MG_SEATS_MAX)
        seats = 1;
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_EV_INS_RSVP, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 3, event_author, MG_KEY_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, er, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, answer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, (int64_t) seats);
    sqlite3_bind_int64(stmt, 7, mg_record_created(record));
    return mg_store_step_done_(self, stmt, why, "mise à jour de l'index");
}

static int s_index_note(mg_store_t *self, const mg_record_t *record,
                        mg_why_t *why)
{
    const uint8_t *author = mg_record_author(record);
    const char *rid = mg_record_rid(record);
    const mg_body_t *body = mg_record_body(record);
    const char *title = mg_body_str(body, "titre");
    if (!title)
        return MG_OK;
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_EV_INS_NOTE, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, mg_record_created(record));
    rc = mg_store_step_done_(self, stmt, why, "mise à jour de l'index");
    if (rc != MG_OK)
        return rc;
    int64_t rowid = sqlite3_last_insert_rowid(mg_store_db(self));
    if ((rc = s_index_terms(self, S_EV_INS_NOTE_TERM, author, rid, body,
                            "tags", why)) != MG_OK
        || (rc = s_index_terms(self, S_EV_INS_NOTE_TERM, author, rid, body,
                               "services", why)) != MG_OK)
        return rc;
    /* The text's pieces were cut anywhere: they join with nothing. */
    char *text = s_join(body, "texte", "");
    char *tags = s_join(body, "tags", ", ");
    if (!text || !tags) {
        free(text);
        free(tags);
        return s_nomem(why);
    }
    rc = s_stmt(self, S_EV_INS_NOTE_FTS, &stmt, why);
    if (rc != MG_OK) {
        free(text);
        free(tags);
        return rc;
    }
    sqlite3_bind_int64(stmt, 1, rowid);
    sqlite3_bind_text(stmt, 2, title, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, text, -1, free);
    sqlite3_bind_text(stmt, 4, tags, -1, free);
    return mg_store_step_done_(self, stmt, why, "mise à jour de l'index");
}

int mg_store_events_index_(mg_store_t *self, const mg_record_t *record,
                           mg_why_t *why)
{
    if (mg_record_deleted(record))
        return MG_OK;
    const char *kind = mg_record_kind(record);
    if (strcmp(kind, "event") == 0)
        return s_index_event(self, record, why);
    if (strcmp(kind, "rsvp") == 0)
        return s_index_rsvp(self, record, why);
    if (strcmp(kind, "note") == 0)
        return s_index_note(self, record, why);
    return MG_OK;
}

int mg_store_events_unindex_(mg_store_t *self, const uint8_t *author,
                             const char *rid, mg_why_t *why)
{
    /* One lookup first: most replaced records are offers and profiles,
       which have none of these rows. */
    sqlite3_stmt *stmt;
    int rc = s_stmt(self, S_EV_FIND_ROWS, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        rc = mg_store_fail_(self, rc, why, "mise à jour de l'index");
        mg_store_done_(stmt);
        return rc;
    }
    bool event = sqlite3_column_type(stmt, 0) != SQLITE_NULL;
    bool rsvp = sqlite3_column_type(stmt, 1) != SQLITE_NULL;
    bool note = sqlite3_column_type(stmt, 2) != SQLITE_NULL;
    int64_t event_row = sqlite3_column_int64(stmt, 0);
    int64_t note_row = sqlite3_column_int64(stmt, 2);
    mg_store_done_(stmt);

    rc = MG_OK;
    if (event) {
        static const s_stmt_id_t ids[] = {S_EV_DEL_TERRITORY, S_EV_DEL_TERM,
                                          S_EV_DEL_PARTNER, S_EV_DEL_EVENT};
        rc = s_exec_rowid(self, S_EV_DEL_FTS, event_row, why);
        for (size_t i = 0; rc == MG_OK && i < sizeof ids / sizeof ids[0]; i++)
            rc = s_exec_ar(self, ids[i], author, rid, why);
    }
    if (rc == MG_OK && rsvp)
        rc = s_exec_ar(self, S_EV_DEL_RSVP, author, rid, why);
    if (rc == MG_OK && note) {
        rc = s_exec_rowid(self, S_EV_DEL_NOTE_FTS, note_row, why);
        if (rc == MG_OK)
            rc = s_exec_ar(self, S_EV_DEL_NOTE_TERM, author, rid, why);
        if (rc == MG_OK)
            rc = s_exec_ar(self, S_EV_DEL_NOTE, author, rid, why);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Full-text queries                                                    */

/* Whether a code point belongs to a word, as unicode61 sees it: letters,
   marks and numbers; everything else separates words. */
static bool s_word_char(utf8proc_int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return true;
    default:
        return false;
    }
}

/* Turns what a person typed into an FTS5 query: each word becomes a
   quoted prefix term ("demarch"*), one-character words an exact term
   (elided "l'", "5"), all of them required. Quoting makes every word a
   literal: FTS5 operators and syntax typed by the user have no effect
   (no syntax error can come back). Caller frees *out. MG_ERR_ARG when
   there is no word at all. */
static int s_fts_query(const char *text, char **out, mg_why_t *why)
{
    *out = NULL;
    if (!text)
        return mg_why_set(why, MG_ERR_ARG, "recherche vide");
    size_t len = strlen(text);
    if (!mg_utf8_valid(text, len))
        return mg_why_set(why, MG_ERR_UTF8,
                          "la recherche n'est pas du texte UTF-8 valide");
    /* Worst case: every byte a one-byte word: `"x" ` = 4 bytes each. */
    char *q = malloc(4 * len + 8);
    if (!q)
        return s_nomem(why);
    size_t w = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *) text;
    utf8proc_ssize_t i = 0, n = (utf8proc_ssize_t) len;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, n - i, &cp);
        if (k <= 0)
            break;
        if (!s_word_char(cp)) {
            i += k;
            continue;
        }
        utf8proc_ssize_t start = i;
        size_t chars = 0;
        while (i < n && (k = utf8proc_iterate(p + i, n - i, &cp)) > 0
               && s_word_char(cp)) {
            i += k;
            chars++;
        }
        if (w)
            q[w++] = ' ';
        q[w++] = '"';
        memcpy(q + w, text + start, (size_t) (i - start));
        w += (size_t) (i - start);
        q[w++] = '"';
        if (chars > 1)
            q[w++] = '*';
    }
    q[w] = '\0';
    if (w == 0) {
        free(q);
        return mg_why_set(why, MG_ERR_ARG,
                          "la recherche « %.200s » ne contient aucun mot",
                          text);
    }
    *out = q;
    return MG_OK;
}

/* ------------------------------------------------------------------ */
/* Events                                                               */

/* Great-circle distance in km (haversine, mean Earth radius): metres of
   error at the scale of a département, plenty for "within 20 km". */
static double s_distance_km(double lat1, double lon1, double lat2,
                            double lon2)
{
    const double r = 6371.0088, rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2)
               + cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2)
                     * sin(dlon / 2);
    return 2 * r * atan2(sqrt(a), sqrt(1 - a));
}

/* Upper-cases and trims a territory code typed by a person ("2a " ->
   "2A") into out (8 bytes). */
static void s_norm_code(const char *in, char out[8])
{
    while (*in == ' ')
        in++;
    size_t n = 0;
    for (; in[n] && n < 7; n++)
        out[n] = (in[n] >= 'a' && in[n] <= 'z') ? (char) (in[n] - 32) : in[n];
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

int mg_store_postal_coords(mg_store_t *self, const char *code_postal,
                           double *lat, double *lon)
{
    if (!self || !code_postal || !lat || !lon)
        return MG_ERR_ARG;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(
        mg_store_db(self),
        "SELECT avg(latitude), avg(longitude), count(*) FROM offer_idx "
        "WHERE code_postal = ?1 AND latitude IS NOT NULL "
        "AND longitude IS NOT NULL",
        -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return mg_store_fail_(self, rc, NULL, "coordonnées d'un code postal");
    sqlite3_bind_text(stmt, 1, code_postal, -1, SQLITE_STATIC);
    int result = MG_ERR_NOT_FOUND;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_int64(stmt, 2) > 0) {
        *lat = sqlite3_column_double(stmt, 0);
        *lon = sqlite3_column_double(stmt, 1);
        result = MG_OK;
    } else if (rc != SQLITE_ROW) {
        result = mg_store_fail_(self, rc, NULL, "coordonnées d'un code postal");
    }
    sqlite3_finalize(stmt);
    return result;
}

/* The columns every event query returns, in this order (see s_row). */
#define S_EVENT_COLUMNS                                                     \
    "SELECT r.raw, e.start_ms, e.end_ms, e.cancelled, e.capacity, "         \
    "COALESCE(e.latitude, (SELECT avg(o.latitude) FROM offer_idx o "        \
    "  WHERE o.code_postal = e.code_postal AND o.latitude IS NOT NULL "     \
    "  AND o.longitude IS NOT NULL)), "                                     \
    "COALESCE(e.longitude, (SELECT avg(o.longitude) FROM offer_idx o "      \
    "  WHERE o.code_postal = e.code_postal AND o.latitude IS NOT NULL "     \
    "  AND o.longitude IS NOT NULL)), "                                     \
    "(SELECT v.answer FROM rsvp_idx v WHERE v.event_author = e.author "     \
    "  AND v.event_rid = e.rid AND v.author = ?9), "                        \
    "(SELECT v.seats FROM rsvp_idx v WHERE v.event_author = e.author "      \
    "  AND v.event_rid = e.rid AND v.author = ?9), "                        \
    "EXISTS (SELECT 1 FROM event_partner p WHERE p.author = e.author "      \
    "  AND p.rid = e.rid AND p.partner = ?9), "                             \
    "(SELECT total(v.seats) FROM rsvp_idx v WHERE v.event_author = "        \
    "  e.author AND v.event_rid = e.rid AND v.answer = 'oui'), "            \
    "(SELECT count(*) FROM rsvp_idx v WHERE v.event_author = e.author "     \
    "  AND v.event_rid = e.rid AND v.answer = 'oui'), "                     \
    "(SELECT count(*) FROM rsvp_idx v WHERE v.event_author = e.author "     \
    "  AND v.event_rid = e.rid AND v.answer = 'peut-etre'), "               \
    "(SELECT count(*) FROM rsvp_idx v WHERE v.event_author = e.author "     \
    "  AND v.event_rid = e.rid AND v.answer = 'non'), "                     \
    "e.author "                                                             \
    "FROM event_idx e JOIN record r ON r.author = e.author "                \
    "AND r.rid = e.rid WHERE r.deleted = 0 AND e.end_ms >= ?1"

static void s_row(sqlite3_stmt *stmt, const uint8_t *viewer,
                  mg_event_row_t *row)
{
    memset(row, 0, sizeof *row);
    row->start_ms = sqlite3_column_int64(stmt, 1);
    row->end_ms = sqlite3_column_int64(stmt, 2);
    row->cancelled = sqlite3_column_int(stmt, 3) != 0;
    row->capacity = sqlite3_column_int64(stmt, 4);
    row->has_coords = sqlite3_column_type(stmt, 5) != SQLITE_NULL
                      && sqlite3_column_type(stmt, 6) != SQLITE_NULL;
    row->lat = sqlite3_column_double(stmt, 5);
    row->lon = sqlite3_column_double(stmt, 6);
    row->distance_km = -1;
    const unsigned char *answer = sqlite3_column_text(stmt, 7);
    snprintf(row->my_answer, sizeof row->my_answer, "%s",
             answer ? (const char *) answer : "");
    row->my_seats = sqlite3_column_int64(stmt, 8);
    row->viewer_partner = sqlite3_column_int(stmt, 9) != 0;
    row->seats_yes = (int64_t) sqlite3_column_double(stmt, 10);
    row->replies_yes = sqlite3_column_int64(stmt, 11);
    row->replies_maybe = sqlite3_column_int64(stmt, 12);
    row->replies_no = sqlite3_column_int64(stmt, 13);
    const void *author = sqlite3_column_blob(stmt, 14);
    row->viewer_organiser = viewer && author
                            && sqlite3_column_bytes(stmt, 14) == MG_KEY_BYTES
                            && memcmp(author, viewer, MG_KEY_BYTES) == 0;
}

int mg_store_events(mg_store_t *self, const mg_event_query_t *query,
                    mg_event_fn *fn, void *arg, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !fn)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    static const mg_event_query_t all = {0};
    const mg_event_query_t *q = query ? query : &all;
    int64_t now = q->now_ms ? q->now_ms : s_clock_ms();
    int64_t cutoff = 0;
    int rc = s_cutoff(self, now, &cutoff);
    if (rc != MG_OK)
        return mg_why_set(why, rc, "lecture de la durée de conservation");

    char tcode[8] = "", tdep[8] = "";
    bool tcommune = false;
    if (q->territory) {
        s_norm_code(q->territory, tcode);
        if (!mg_territory_code_valid(tcode, &tcommune))
            return mg_why_set(why, MG_ERR_ARG,
                              "territoire « %s » : code INSEE de commune "
                              "(16015, 2A004) ou de département (16, 2A, "
                              "971) attendu",
                              q->territory);
        if (tcommune)
            mg_departement_of(tcode, NULL, tdep);
        else
            snprintf(tdep, sizeof tdep, "%s", tcode);
    }
    char *service = NULL, *search = NULL;
    if (q->service && (rc = mg_store_fold(q->service, &service)) != MG_OK)
        return mg_why_set(why, rc, "le filtre service n'est pas du texte "
                          "valide");
    if (q->search && (rc = s_fts_query(q->search, &search, why)) != MG_OK) {
        free(service);
        return rc;
    }

    char sql[4096];
    snprintf(
        sql, sizeof sql, "%s%s%s%s%s%s%s%s%s ORDER BY e.start_ms%s, e.author, e.rid",
        S_EVENT_COLUMNS,
        q->upcoming ? " AND e.end_ms > ?2" : "",
        q->past ? " AND e.end_ms <= ?2" : "",
        !q->territory ? ""
        : tcommune
            ? " AND (e.open = 1 OR EXISTS (SELECT 1 FROM event_territory t "
              "WHERE t.author = e.author AND t.rid = e.rid "
              "AND (t.code = ?3 OR t.code = ?4)))"
            : " AND (e.open = 1 OR EXISTS (SELECT 1 FROM event_territory t "
              "WHERE t.author = e.author AND t.rid = e.rid AND t.dep = ?4))",
        service ? " AND EXISTS (SELECT 1 FROM event_term m WHERE "
                  "m.author = e.author AND m.rid = e.rid AND "
                  "m.field = 'services' AND m.value_fold = ?5)"
                : "",
        q->mine ? " AND (e.author = ?6 OR EXISTS (SELECT 1 FROM "
                  "event_partner p WHERE p.author = e.author AND "
                  "p.rid = e.rid AND p.partner = ?6))"
                : "",
        q->author ? " AND e.author = ?7" : "",
        search ? " AND e.rowid IN (SELECT rowid FROM event_fts WHERE "
                 "event_fts MATCH ?8)"
               : "",
        q->invitee
            ? " AND e.author <> ?10 AND e.end_ms > ?2"
              " AND NOT EXISTS (SELECT 1 FROM event_partner p WHERE "
              "p.author = e.author AND p.rid = e.rid AND p.partner = ?10)"
              " AND NOT EXISTS (SELECT 1 FROM rsvp_idx v WHERE "
              "v.event_author = e.author AND v.event_rid = e.rid AND "
              "v.author = ?10)"
              " AND (e.open = 1 OR EXISTS (SELECT 1 FROM event_territory t "
              "WHERE t.author = e.author AND t.rid = e.rid "
              "AND (t.code = ?11 OR t.code = ?12)))"
            : "",
        q->past && !q->upcoming ? " DESC" : "");
    sqlite3_stmt *stmt = NULL;
    int src = sqlite3_prepare_v2(mg_store_db(self), sql, -1, &stmt, NULL);
    if (src != SQLITE_OK) {
        rc = mg_store_fail_(self, src, why, "recherche d'événements");
        goto done;
    }
    sqlite3_bind_int64(stmt, 1, cutoff);
    sqlite3_bind_int64(stmt, 2, now);
    if (q->territory) {
        sqlite3_bind_text(stmt, 3, tcode, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, tdep, -1, SQLITE_STATIC);
    }
    if (service)
        sqlite3_bind_text(stmt, 5, service, -1, SQLITE_STATIC);
    if (q->mine)
        sqlite3_bind_blob(stmt, 6, q->mine, MG_KEY_BYTES, SQLITE_STATIC);
    if (q->author)
        sqlite3_bind_blob(stmt, 7, q->author, MG_KEY_BYTES, SQLITE_STATIC);
    if (search)
        sqlite3_bind_text(stmt, 8, search, -1, SQLITE_STATIC);
    if (q->viewer)
        sqlite3_bind_blob(stmt, 9, q->viewer, MG_KEY_BYTES, SQLITE_STATIC);
    if (q->invitee) {
        sqlite3_bind_blob(stmt, 10, q->invitee, MG_KEY_BYTES, SQLITE_STATIC);
        char insee[8] = "", dep[8] = "";
        if (q->invitee_insee)
            s_norm_code(q->invitee_insee, insee);
        if (q->invitee_dep)
            s_norm_code(q->invitee_dep, dep);
        if (insee[0])
            sqlite3_bind_text(stmt, 11, insee, -1, SQLITE_TRANSIENT);
        if (dep[0])
            sqlite3_bind_text(stmt, 12, dep, -1, SQLITE_TRANSIENT);
    }

    int step;
    rc = MG_OK;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        mg_event_row_t row;
        s_row(stmt, q->viewer, &row);
        if (q->near) {
            if (!row.has_coords)
                continue;
            row.distance_km = s_distance_km(q->near_lat, q->near_lon, row.lat,
                                            row.lon);
            if (row.distance_km > q->within_km)
                continue;
        }
        mg_record_t *record = NULL;
        mg_why_t inner;
        rc = mg_record_decode_trusted(sqlite3_column_blob(stmt, 0),
                                      (size_t) sqlite3_column_bytes(stmt, 0),
                                      &record, &inner);
        if (rc != MG_OK) {
            rc = mg_why_set(why, rc, "fiche stockée illisible (%s) : la base "
                            "est endommagée (lancez « maillage check »)",
                            inner.text);
            break;
        }
        rc = fn(record, &row, arg);
        mg_record_destroy(&record);
        if (rc != 0)
            break;
    }
    if (rc == MG_OK && step != SQLITE_DONE)
        rc = mg_store_fail_(self, step, why, "recherche d'événements");
    sqlite3_finalize(stmt);
done:
    free(service);
    free(search);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Tally                                                                */

void mg_tally_destroy(mg_tally_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_tally_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free(self->replies[i].comment);
    free(self->replies);
    free(self);
    *self_p = NULL;
}

int mg_store_event_tally(mg_store_t *self, const uint8_t author[MG_KEY_BYTES],
                         const char *rid, mg_tally_t **out, mg_why_t *why)
{
    mg_why_clear(why);
    if (out)
        *out = NULL;
    if (!self || !author || !rid || !out)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    mg_record_t *event = NULL;
    int rc = mg_store_get(self, author, rid, &event, why);
    if (rc != MG_OK)
        return rc;
    if (mg_record_deleted(event) || strcmp(mg_record_kind(event), "event") != 0) {
        mg_record_destroy(&event);
        return mg_why_set(why, MG_ERR_NOT_FOUND, "aucun événement « %s »",
                          rid);
    }
    mg_tally_t *t = calloc(1, sizeof *t);
    if (!t) {
        mg_record_destroy(&event);
        return s_nomem(why);
    }
    double cap = 0;
    if (mg_body_num(mg_record_body(event), "capacite", &cap) == 0 && cap >= 1
        && cap <= MG_CAPACITY_MAX)
        t->capacity = (int64_t) cap;
    mg_record_destroy(&event);

    sqlite3_stmt *stmt = NULL;
    int src = sqlite3_prepare_v2(
        mg_store_db(self),
        "SELECT r.raw, v.author, v.created, v.answer, v.seats FROM rsvp_idx v "
        "JOIN record r ON r.author = v.author AND r.rid = v.rid "
        "WHERE v.event_author = ?1 AND v.event_rid = ?2 AND r.deleted = 0 "
        "ORDER BY v.created, v.author",
        -1, &stmt, NULL);
    if (src != SQLITE_OK) {
        mg_tally_destroy(&t);
        return mg_store_fail_(self, src, why, "décompte des réponses");
    }
    sqlite3_bind_blob(stmt, 1, author, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rid, -1, SQLITE_STATIC);
    size_t cap_replies = 0;
    bool full = false;     /* a "oui" did not fit: every later one waits */
    int64_t position = 0;  /* on the waiting list */
    int step;
    rc = MG_OK;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (t->count == cap_replies) {
            size_t n = cap_replies ? 2 * cap_replies : 16;
            mg_reply_t *grown = realloc(t->replies, n * sizeof *grown);
            if (!grown) {
                rc = s_nomem(why);
                break;
            }
            t->replies = grown;
            cap_replies = n;
        }
        mg_reply_t *r = &t->replies[t->count];
        memset(r, 0, sizeof *r);
        const void *a = sqlite3_column_blob(stmt, 1);
        if (!a || sqlite3_column_bytes(stmt, 1) != MG_KEY_BYTES)
            continue;
        memcpy(r->author, a, MG_KEY_BYTES);
        r->created = sqlite3_column_int64(stmt, 2);
        const unsigned char *answer = sqlite3_column_text(stmt, 3);
        snprintf(r->answer, sizeof r->answer, "%s",
                 answer ? (const char *) answer : "");
        r->seats = sqlite3_column_int64(stmt, 4);
        mg_record_t *reply = NULL;
        if (mg_record_decode_trusted(sqlite3_column_blob(stmt, 0),
                                     (size_t) sqlite3_column_bytes(stmt, 0),
                                     &reply, NULL) == MG_OK) {
            const char *c = mg_body_str(mg_record_body(reply), "commentaire");
            if (c && !(r->comment = strdup(c))) {
                mg_record_destroy(&reply);
                rc = s_nomem(why);
                break;
            }
        }
        mg_record_destroy(&reply);
        t->count++;
        if (strcmp(r->answer, MG_RSVP_YES) == 0) {
            if (!full && (t->capacity == 0
                          || t->seats_confirmed + r->seats <= t->capacity)) {
                r->status = MG_REPLY_CONFIRMED;
                t->seats_confirmed += r->seats;
            } else {
                full = true;
                r->status = MG_REPLY_WAITING;
                r->position = ++position;
                t->seats_waiting += r->seats;
            }
        } else if (strcmp(r->answer, MG_RSVP_MAYBE) == 0) {
            r->status = MG_REPLY_MAYBE;
        } else if (strcmp(r->answer, MG_RSVP_NO) == 0) {
            r->status = MG_REPLY_NO;
        } else {
            r->status = MG_REPLY_OTHER;
        }
    }
    if (rc == MG_OK && step != SQLITE_DONE)
        rc = mg_store_fail_(self, step, why, "décompte des réponses");
    sqlite3_finalize(stmt);
    if (rc != MG_OK) {
        mg_tally_destroy(&t);
        return rc;
    }
    *out = t;
    return MG_OK;
}

/* ------------------------------------------------------------------ */
/* Notes                                                                */

/* Folds the note filters into *tag and *service (caller frees). */
static int s_note_filters(const mg_note_query_t *q, char **tag,
                          char **service, mg_why_t *why)
{
    *tag = *service = NULL;
    int rc = MG_OK;
    if (q && q->tag && (rc = mg_store_fold(q->tag, tag)) != MG_OK)
        return mg_why_set(why, rc, "le filtre tag n'est pas du texte valide");
    if (q && q->service && (rc = mg_store_fold(q->service, service)) != MG_OK) {
        free(*tag);
        *tag = NULL;
        return mg_why_set(why, rc, "le filtre service n'est pas du texte "
                          "valide");
    }
    return MG_OK;
}

#define S_NOTE_FILTERS(tag, service, author)                               \
    tag ? " AND EXISTS (SELECT 1 FROM note_term m WHERE m.author = "       \
          "n.author AND m.rid = n.rid AND m.field = 'tags' AND "           \
          "m.value_fold = ?1)"                                             \
        : "",                                                              \
    service ? " AND EXISTS (SELECT 1 FROM note_term m WHERE m.author = "   \
              "n.author AND m.rid = n.rid AND m.field = 'services' AND "   \
              "m.value_fold = ?2)"                                         \
            : "",                                                          \
    author ? " AND n.author = ?3" : ""

static void s_bind_note_filters(sqlite3_stmt *stmt, const char *tag,
                                const char *service, const uint8_t *author)
{
    if (tag)
        sqlite3_bind_text(stmt, 1, tag, -1, SQLITE_STATIC);
    if (service)
        sqlite3_bind_text(stmt, 2, service, -1, SQLITE_STATIC);
    if (author)
        sqlite3_bind_blob(stmt, 3, author, MG_KEY_BYTES, SQLITE_STATIC);
}

int mg_store_notes(mg_store_t *self, const mg_note_query_t *query,
                   mg_record_fn *fn, void *arg, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !fn)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    char *tag = NULL, *service = NULL;
    int rc = s_note_filters(query, &tag, &service, why);
    if (rc != MG_OK)
        return rc;
    const uint8_t *author = query ? query->author : NULL;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT r.raw FROM note_idx n JOIN record r ON r.author = "
             "n.author AND r.rid = n.rid WHERE r.deleted = 0%s%s%s "
             "ORDER BY n.created DESC, n.author, n.rid",
             S_NOTE_FILTERS(tag, service, author));
    sqlite3_stmt *stmt = NULL;
    int src = sqlite3_prepare_v2(mg_store_db(self), sql, -1, &stmt, NULL);
    if (src != SQLITE_OK) {
        rc = mg_store_fail_(self, src, why, "liste des notes");
        goto done;
    }
    s_bind_note_filters(stmt, tag, service, author);
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        mg_record_t *record = NULL;
        rc = mg_record_decode_trusted(sqlite3_column_blob(stmt, 0),
                                      (size_t) sqlite3_column_bytes(stmt, 0),
                                      &record, why);
        if (rc != MG_OK)
            break;
        rc = fn(record, arg);
        mg_record_destroy(&record);
        if (rc != 0)
            break;
    }
    if (rc == MG_OK && step != SQLITE_DONE)
        rc = mg_store_fail_(self, step, why, "liste des notes");
    sqlite3_finalize(stmt);
done:
    free(tag);
    free(service);
    return rc;
}

int mg_store_note_search(mg_store_t *self, const char *words,
                         const mg_note_query_t *query, size_t limit,
                         const char *open, const char *close,
                         mg_note_hit_fn *fn, void *arg, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !fn)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    char *match = NULL, *tag = NULL, *service = NULL;
    int rc = s_fts_query(words, &match, why);
    if (rc != MG_OK)
        return rc;
    rc = s_note_filters(query, &tag, &service, why);
    if (rc != MG_OK) {
        free(match);
        return rc;
    }
    const uint8_t *author = query ? query->author : NULL;
    /* bm25 weights: a word of the title says more about the note than
       the same word deep in its text; tags sit in between. */
    char sql[1536];
    snprintf(sql, sizeof sql,
             "SELECT r.raw, snippet(note_fts, -1, ?5, ?6, '…', %d), "
             "bm25(note_fts, 10.0, 1.0, 5.0) AS score "
             "FROM note_fts JOIN note_idx n ON n.rowid = note_fts.rowid "
             "JOIN record r ON r.author = n.author AND r.rid = n.rid "
             "WHERE note_fts MATCH ?4 AND r.deleted = 0%s%s%s "
             "ORDER BY score, n.created DESC, n.author, n.rid LIMIT ?7",
             S_SNIPPET_TOKENS, S_NOTE_FILTERS(tag, service, author));
    sqlite3_stmt *stmt = NULL;
    int src = sqlite3_prepare_v2(mg_store_db(self), sql, -1, &stmt, NULL);
    if (src != SQLITE_OK) {
        rc = mg_store_fail_(self, src, why, "recherche dans les notes");
        goto done;
    }
    s_bind_note_filters(stmt, tag, service, author);
    sqlite3_bind_text(stmt, 4, match, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, open ? open : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, close ? close : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 7, limit ? (int64_t) limit : S_SEARCH_LIMIT);
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        mg_record_t *record = NULL;
        rc = mg_record_decode_trusted(sqlite3_column_blob(stmt, 0),
                                      (size_t) sqlite3_column_bytes(stmt, 0),
                                      &record, why);
        if (rc != MG_OK)
            break;
        const unsigned char *snip = sqlite3_column_text(stmt, 1);
        rc = fn(record, snip ? (const char *) snip : "",
                sqlite3_column_double(stmt, 2), arg);
        mg_record_destroy(&record);
        if (rc != 0)
            break;
    }
    if (rc == MG_OK && step != SQLITE_DONE)
        rc = mg_store_fail_(self, step, why, "recherche dans les notes");
    sqlite3_finalize(stmt);
done:
    free(match);
    free(tag);
    free(service);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Purge and rebuild                                                    */

static int s_exec_sql(mg_store_t *self, const char *sql, int64_t p1,
                      int64_t *changes, mg_why_t *why)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(mg_store_db(self), sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return mg_store_fail_(self, rc, why, "purge des index");
    if (sqlite3_bind_parameter_count(stmt) >= 1)
        sqlite3_bind_int64(stmt, 1, p1);
    rc = sqlite3_step(stmt);
    int result = MG_OK;
    if (rc != SQLITE_DONE)
        result = mg_store_fail_(self, rc, why, "purge des index");
    else if (changes)
        *changes = sqlite3_changes64(mg_store_db(self));
    sqlite3_finalize(stmt);
    return result;
}

int mg_store_events_purge(mg_store_t *self, int64_t now_ms, int64_t *dropped,
                          mg_why_t *why)
{
    mg_why_clear(why);
    if (dropped)
        *dropped = 0;
    if (!self)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    int64_t now = now_ms ? now_ms : s_clock_ms(), cutoff = 0;
    int rc = s_cutoff(self, now, &cutoff);
    if (rc != MG_OK)
        return mg_why_set(why, rc, "lecture de la durée de conservation");
    /* Children before the events they reference (foreign keys). */
    static const char *const steps[] = {
        "DELETE FROM rsvp_idx WHERE EXISTS (SELECT 1 FROM event_idx e WHERE "
        "e.author = rsvp_idx.event_author AND e.rid = rsvp_idx.event_rid "
        "AND e.end_ms < ?1)",
        /* Replies older than the period to events this store never
           indexed (never received, or received already expired). */
        "DELETE FROM rsvp_idx WHERE created < ?1 AND NOT EXISTS (SELECT 1 "
        "FROM event_idx e WHERE e.author = rsvp_idx.event_author AND "
        "e.rid = rsvp_idx.event_rid)",
        "DELETE FROM event_fts WHERE rowid IN (SELECT rowid FROM event_idx "
        "WHERE end_ms < ?1)",
        "DELETE FROM event_territory WHERE (author, rid) IN (SELECT author, "
        "rid FROM event_idx WHERE end_ms < ?1)",
        "DELETE FROM event_term WHERE (author, rid) IN (SELECT author, rid "
        "FROM event_idx WHERE end_ms < ?1)",
        "DELETE FROM event_partner WHERE (author, rid) IN (SELECT author, rid "
        "FROM event_idx WHERE end_ms < ?1)",
        "DELETE FROM event_idx WHERE end_ms < ?1",
    };
    bool nested = false;
    rc = mg_store_unit_begin_(self, &nested, why);
    if (rc != MG_OK)
        return rc;
    int64_t changes = 0;
    size_t n = sizeof steps / sizeof steps[0];
    for (size_t i = 0; rc == MG_OK && i < n; i++)
        rc = s_exec_sql(self, steps[i], cutoff, i == n - 1 ? &changes : NULL,
                        why);
    if (rc == MG_OK)
        rc = mg_store_meta_set_int(self, MG_META_EVENT_PURGED_MS, now, why);
    rc = mg_store_unit_end_(self, nested, rc, why);
    if (rc == MG_OK && dropped)
        *dropped = changes;
    return rc;
}

/* Empties the tables and indexes every live event, reply and note again;
   inside the caller's unit of work. */
static int s_reindex(mg_store_t *self, mg_why_t *why)
{
    static const char *const clear[] = {
        "DELETE FROM event_fts",  "DELETE FROM event_territory",
        "DELETE FROM event_term", "DELETE FROM event_partner",
        "DELETE FROM event_idx",  "DELETE FROM rsvp_idx",
        "DELETE FROM note_fts",   "DELETE FROM note_term",
        "DELETE FROM note_idx",
    };
    int rc = MG_OK;
    for (size_t i = 0; rc == MG_OK && i < sizeof clear / sizeof clear[0]; i++)
        rc = s_exec_sql(self, clear[i], 0, NULL, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_stmt *stmt = NULL;
    int src = sqlite3_prepare_v2(
        mg_store_db(self),
        "SELECT raw FROM record WHERE deleted = 0 AND kind IN "
        "('event', 'rsvp', 'note') ORDER BY author, rid",
        -1, &stmt, NULL);
    if (src != SQLITE_OK)
        return mg_store_fail_(self, src, why, "reconstruction des index");
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        mg_record_t *record = NULL;
        rc = mg_record_decode_trusted(sqlite3_column_blob(stmt, 0),
                                      (size_t) sqlite3_column_bytes(stmt, 0),
                                      &record, why);
        if (rc == MG_OK)
            rc = mg_store_events_index_(self, record, why);
        mg_record_destroy(&record);
        if (rc != MG_OK)
            break;
    }
    if (rc == MG_OK && step != SQLITE_DONE)
        rc = mg_store_fail_(self, step, why, "reconstruction des index");
    sqlite3_finalize(stmt);
    return rc;
}

int mg_store_events_reindex(mg_store_t *self, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    bool nested = false;
    int rc = mg_store_unit_begin_(self, &nested, why);
    if (rc != MG_OK)
        return rc;
    rc = s_reindex(self, why);
    return mg_store_unit_end_(self, nested, rc, why);
}

int mg_store_event_set_retention(mg_store_t *self, int64_t days,
                                 mg_why_t *why)
{
    mg_why_clear(why);
    if (!self)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    if (days < S_RETENTION_MIN || days > S_RETENTION_MAX)
        return mg_why_set(why, MG_ERR_ARG,
                          "durée de conservation : de %d à %d jours",
                          S_RETENTION_MIN, S_RETENTION_MAX);
    bool nested = false;
    int rc = mg_store_unit_begin_(self, &nested, why);
    if (rc != MG_OK)
        return rc;
    rc = mg_store_meta_set_int(self, MG_META_EVENT_RETENTION_DAYS, days, why);
    if (rc == MG_OK)
        rc = s_reindex(self, why);
    return mg_store_unit_end_(self, nested, rc, why);
}
