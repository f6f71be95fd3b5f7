/*  mg_store_peers.c - the peer table: who this node syncs with.

    Both the CLI (`maillage peer add/rm/list`) and the daemon write it.
    Additions and removals bump store_state.peers_version in the same
    transaction, so the daemon notices another process's changes by
    reading one integer; the daemon's own state updates do not bump it.
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_store_int.h"

/* Peers listed in an ambiguity message (one more is fetched to know
   there are more). */
#define S_AMBIGUOUS_SHOWN 5

/* A key prefix shorter than this matches too many keys by chance to be
   a safe thing to delete by: 4 hex digits are 65,536 values. */
#define S_PREFIX_MIN 4

#define S_PEER_ADD_SQL                                                      \
    "INSERT INTO peer (key, endpoint, source, state, added_ms) "            \
    "VALUES (?1, ?2, ?3, 'new', ?4) ON CONFLICT (key, endpoint) DO NOTHING"
#define S_PEER_UPDATE_SQL                                                   \
    "UPDATE peer SET source = ?3, state = ?4, last_seen_ms = ?5, "          \
    "last_sync_ms = ?6, records_in = ?7, records_out = ?8, failures = ?9, " \
    "next_try_ms = ?10 WHERE key = ?1 AND endpoint = ?2"
#define S_PEERS_VERSION_SQL                                                 \
    "SELECT peers_version FROM store_state WHERE id = 1"
#define S_PEERS_BUMP_SQL                                                    \
    "UPDATE store_state SET peers_version = peers_version + 1 WHERE id = 1"

static const char *const s_sources[] = {"invite", "profile", "beacon",
                                        "inbound", NULL};
static const char *const s_states[] = {"new", "connecting", "live",
                                       "backoff", "dead", NULL};

static bool s_in(const char *value, const char *const *list)
{
    for (size_t i = 0; value && list[i]; i++)
        if (strcmp(value, list[i]) == 0)
            return true;
    return false;
}

static int s_check_source(const char *source, mg_why_t *why)
{
    if (s_in(source, s_sources))
        return MG_OK;
    return mg_why_set(why, MG_ERR_ARG,
                      "origine de pair inconnue « %.32s » (invite, profile, "
                      "beacon ou inbound)", source ? source : "");
}

static int s_check_endpoint(const char *endpoint, mg_why_t *why)
{
    size_t len = endpoint ? strlen(endpoint) : 0;
    if (len == 0)
        return mg_why_set(why, MG_ERR_ARG, "adresse de pair vide");
    if (len > MG_ENDPOINT_MAX)
        return mg_why_set(why, MG_ERR_ARG,
                          "adresse de pair trop longue (%zu octets, %d au "
                          "plus)", len, MG_ENDPOINT_MAX);
    return MG_OK;
}

/* Bumps peers_version; runs inside the caller's unit of work. */
static int s_bump(mg_store_t *self, mg_why_t *why)
{
    sqlite3_stmt *stmt;
    int rc = mg_store_stmt_(self, S_PEERS_BUMP, S_PEERS_BUMP_SQL, &stmt, why);
    if (rc != MG_OK)
        return rc;
    return mg_store_step_done_(self, stmt, why, "mise à jour des pairs");
}

int mg_store_peer_add(mg_store_t *self, const uint8_t key[MG_KEY_BYTES],
                      const char *endpoint, const char *source,
                      int64_t now_ms, bool *added, mg_why_t *why)
{
    mg_why_clear(why);
    if (added)
        *added = false;
    if (!self || !key)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    int rc = s_check_endpoint(endpoint, why);
    if (rc == MG_OK)
        rc = s_check_source(source, why);
    if (rc != MG_OK)
        return rc;

    bool nested = false;
    rc = mg_store_unit_begin_(self, &nested, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_stmt *stmt;
    rc = mg_store_stmt_(self, S_PEER_ADD, S_PEER_ADD_SQL, &stmt, why);
    bool inserted = false;
    if (rc == MG_OK) {
        sqlite3_bind_blob(stmt, 1, key, MG_KEY_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, endpoint, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, source, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 4, now_ms);
        rc = mg_store_step_done_(self, stmt, why, "ajout d'un pair");
        inserted = rc == MG_OK && sqlite3_changes(self->db) > 0;
    }
    if (rc == MG_OK && inserted)
        rc = s_bump(self, why);
    rc = mg_store_unit_end_(self, nested, rc, why);
    if (rc == MG_OK && added)
        *added = inserted;
    return rc;
}

int mg_store_peer_update(mg_store_t *self, const mg_peer_row_t *row,
                         mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !row)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    /* The row's strings are fixed arrays: bound their reading. */
    if (!memchr(row->endpoint, '\0', sizeof row->endpoint)
        || !memchr(row->source, '\0', sizeof row->source)
        || !memchr(row->state, '\0', sizeof row->state))
        return mg_why_set(why, MG_ERR_ARG, "ligne de pair mal terminée");
    int rc = s_check_endpoint(row->endpoint, why);
    if (rc == MG_OK)
        rc = s_check_source(row->source, why);
    if (rc != MG_OK)
        return rc;
    if (!s_in(row->state, s_states))
        return mg_why_set(why, MG_ERR_ARG,
                          "état de pair inconnu « %s » (new, connecting, "
                          "live, backoff ou dead)", row->state);

    /* One statement is its own transaction: no unit needed. */
    sqlite3_stmt *stmt;
    rc = mg_store_stmt_(self, S_PEER_UPDATE, S_PEER_UPDATE_SQL, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, row->key, MG_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, row->endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, row->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, row->state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, row->last_seen_ms);
    sqlite3_bind_int64(stmt, 6, row->last_sync_ms);
    sqlite3_bind_int64(stmt, 7, row->records_in);
    sqlite3_bind_int64(stmt, 8, row->records_out);
    sqlite3_bind_int(stmt, 9, row->failures);
    sqlite3_bind_int64(stmt, 10, row->next_try_ms);
    rc = mg_store_step_done_(self, stmt, why, "mise à jour d'un pair");
    if (rc == MG_OK && sqlite3_changes(self->db) == 0)
        rc = mg_why_set(why, MG_ERR_NOT_FOUND,
                        "le pair %.255s n'est plus dans la liste",
                        row->endpoint);
    return rc;
}

/* Hex of the first `bytes` bytes of `key` into `out` (2 * bytes + 1). */
static void s_hex(const uint8_t *key, size_t bytes, char *out)
{
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", key[i]);
}

/* Whether `what` is made of hex digits only; its length in *len. */
static bool s_is_hex(const char *what, size_t *len)
{
    size_t n = 0;
    for (; what[n]; n++)
        if (!isxdigit((unsigned char) what[n]))
            return false;
    *len = n;
    return n > 0;
}

/* Inside the unit of work of mg_store_peer_rm: fails with
   MG_ERR_AMBIGUOUS when the upper-case hex prefix `upper` matches more
   than one distinct key. */
static int s_check_unambiguous(mg_store_t *self, const char *upper,
                               mg_why_t *why)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db,
                                "SELECT DISTINCT key FROM peer WHERE "
                                "substr(hex(key), 1, length(?1)) = ?1 "
                                "ORDER BY key LIMIT ?2",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return mg_store_fail_(self, rc, why, "recherche d'un pair");
    sqlite3_bind_text(stmt, 1, upper, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, S_AMBIGUOUS_SHOWN + 1);
    char list[S_AMBIGUOUS_SHOWN * 20 + 8] = "";
    size_t used = 0;
    int n = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const uint8_t *key = sqlite3_column_blob(stmt, 0);
        if (!key || sqlite3_column_bytes(stmt, 0) != MG_KEY_BYTES)
            continue;
        if (n < S_AMBIGUOUS_SHOWN) {
            char hex[17];
            s_hex(key, 8, hex);
            used += (size_t) snprintf(list + used, sizeof list - used,
                                      "%s%s…", n ? ", " : "", hex);
        }
        n++;
    }
    int result = MG_OK;
    if (rc != SQLITE_DONE)
        result = mg_store_fail_(self, rc, why, "recherche d'un pair");
    else if (n > 1)
        result = mg_why_set(why, MG_ERR_AMBIGUOUS,
                            "plusieurs pairs ont une clé qui commence par "
                            "« %s » : %s%s ; donnez plus de caractères",
                            upper, list,
                            n > S_AMBIGUOUS_SHOWN ? ", …" : "");
    sqlite3_finalize(stmt);
    return result;
}

int mg_store_peer_rm(mg_store_t *self, const char *what, int *removed,
                     mg_why_t *why)
{
    mg_why_clear(why);
    if (removed)
        *removed = 0;
    if (!self || !what)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    if (!*what)
        return mg_why_set(why, MG_ERR_ARG, "pair à retirer non précisé");

    /* hex() spells keys in upper case. */
    size_t hex_len = 0;
    bool hex = s_is_hex(what, &hex_len) && hex_len <= 2 * MG_KEY_BYTES;
    char upper[2 * MG_KEY_BYTES + 1] = "";
    if (hex) {
        for (size_t i = 0; i < hex_len; i++)
            upper[i] = (char) toupper((unsigned char) what[i]);
        upper[hex_len] = '\0';
    }
    bool prefix = hex && hex_len >= S_PREFIX_MIN;

    bool nested = false;
    int rc = mg_store_unit_begin_(self, &nested, why);
    if (rc != MG_OK)
        return rc;
    if (prefix)
        rc = s_check_unambiguous(self, upper, why);
    int count = 0;
    if (rc == MG_OK) {
        sqlite3_stmt *stmt = NULL;
        int src = sqlite3_prepare_v2(
            self->db,
            "DELETE FROM peer WHERE endpoint = ?1 OR (?2 IS NOT NULL AND "
            "substr(hex(key), 1, length(?2)) = ?2)",
            -1, &stmt, NULL);
        if (src != SQLITE_OK) {
            rc = mg_store_fail_(self, src, why, "retrait d'un pair");
        } else {
            sqlite3_bind_text(stmt, 1, what, -1, SQLITE_STATIC);
            if (prefix)
                sqlite3_bind_text(stmt, 2, upper, -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(stmt, 2);
            src = sqlite3_step(stmt);
            if (src == SQLITE_DONE)
                count = sqlite3_changes(self->db);
            else
                rc = mg_store_fail_(self, src, why, "retrait d'un pair");
            sqlite3_finalize(stmt);
        }
    }
    if (rc == MG_OK && count > 0)
        rc = s_bump(self, why);
    rc = mg_store_unit_end_(self, nested, rc, why);
    if (rc != MG_OK)
        return rc;
    if (count == 0) {
        if (hex && !prefix)
            return mg_why_set(why, MG_ERR_ARG,
                              "« %s » : donnez au moins %d caractères de la "
                              "clé du pair, ou son adresse complète",
                              what, S_PREFIX_MIN);
        return mg_why_set(why, MG_ERR_NOT_FOUND,
                          "aucun pair dont la clé commence par « %.64s » ou "
                          "dont l'adresse est « %.255s »", what, what);
    }
    if (removed)
        *removed = count;
    return MG_OK;
}

/* Copies column `col` (text) into `out`, truncated to `size`. */
static void s_copy_text(sqlite3_stmt *stmt, int col, char *out, size_t size)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);
    snprintf(out, size, "%s", text ? (const char *) text : "");
}

int mg_store_peers(mg_store_t *self, mg_peer_fn *fn, void *arg,
                   mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !fn)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(
        self->db,
        "SELECT key, endpoint, source, state, added_ms, last_seen_ms, "
        "last_sync_ms, records_in, records_out, failures, next_try_ms "
        "FROM peer ORDER BY added_ms, key, endpoint",
        -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return mg_store_fail_(self, rc, why, "lecture des pairs");

    /* All rows first, statement finalized, then the callbacks: a node
       knows hundreds of peers at most, and the callback is then free to
       write (no read statement open on the table it updates). */
    mg_peer_row_t *rows = NULL;
    size_t count = 0, cap = 0;
    int result = MG_OK;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const void *key = sqlite3_column_blob(stmt, 0);
        if (!key || sqlite3_column_bytes(stmt, 0) != MG_KEY_BYTES)
            continue; /* the CHECK constraint makes this impossible */
        if (count == cap) {
            size_t grown = cap ? 2 * cap : 16;
            mg_peer_row_t *more = realloc(rows, grown * sizeof *rows);
            if (!more) {
                result = mg_why_set(why, MG_ERR_NOMEM, "%s",
                                    mg_strerror(MG_ERR_NOMEM));
                break;
            }
            rows = more;
            cap = grown;
        }
        mg_peer_row_t *row = &rows[count++];
        memset(row, 0, sizeof *row);
        memcpy(row->key, key, MG_KEY_BYTES);
        s_copy_text(stmt, 1, row->endpoint, sizeof row->endpoint);
        s_copy_text(stmt, 2, row->source, sizeof row->source);
        s_copy_text(stmt, 3, row->state, sizeof row->state);
        row->added_ms = sqlite3_column_int64(stmt, 4);
        row->last_seen_ms = sqlite3_column_int64(stmt, 5);
        row->last_sync_ms = sqlite3_column_int64(stmt, 6);
        row->records_in = sqlite3_column_int64(stmt, 7);
        row->records_out = sqlite3_column_int64(stmt, 8);
        row->failures = sqlite3_column_int(stmt, 9);
        row->next_try_ms = sqlite3_column_int64(stmt, 10);
    }
    if (result == MG_OK && rc != SQLITE_DONE)
        result = mg_store_fail_(self, rc, why, "lecture des pairs");
    sqlite3_finalize(stmt);
    for (size_t i = 0; result == MG_OK && i < count; i++)
        result = fn(&rows[i], arg);
    free(rows);
    return result;
}

int mg_store_peers_version(mg_store_t *self, int64_t *version)
{
    if (!self || !version)
        return MG_ERR_ARG;
    *version = 0;
    sqlite3_stmt *stmt;
    int rc = mg_store_stmt_(self, S_PEERS_VERSION, S_PEERS_VERSION_SQL, &stmt,
                            NULL);
    if (rc != MG_OK)
        return rc;
    rc = sqlite3_step(stmt);
    int result = MG_OK;
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int64(stmt, 0);
    else if (rc == SQLITE_DONE)
        result = MG_ERR_DB; /* store_state has its one row from migration 1 */
    else
        result = mg_store_fail_(self, rc, NULL, "lecture des pairs");
    mg_store_done_(stmt);
    return result;
}
