/*  mg_store_repl.c - what replication reads from the store: version ids,
    the change feed, and the store's fingerprint.

    Each record row carries `vid` (BLAKE2b-256 of its bytes) and `bucket`,
    written by mg_store.c with the row; the index record_bucket_vid holds
    both, so the scans here (the daemon's start, fingerprints) read a
    small index instead of every record's bytes.
*/
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "mg_store_int.h"

#define S_GET_BY_VID_SQL "SELECT raw FROM record WHERE vid = ?1"
#define S_LAST_SEQ_SQL "SELECT last_seq FROM store_state WHERE id = 1"

void mg_store_vid_of(const mg_record_t *record, uint8_t out[MG_VID_BYTES])
{
    size_t len = 0;
    const uint8_t *raw = mg_record_bytes(record, &len);
    crypto_generichash(out, MG_VID_BYTES, raw, len, NULL, 0);
}

int mg_store_items(mg_store_t *self, mg_item_fn *fn, void *arg,
                   mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !fn)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    /* Not cached: the callback may use the store. */
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db,
                                "SELECT bucket, vid FROM record "
                                "ORDER BY bucket, vid",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return mg_store_fail_(self, rc, why, "lecture des versions");
    int result = MG_OK;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const void *vid = sqlite3_column_blob(stmt, 1);
        if (!vid || sqlite3_column_bytes(stmt, 1) != MG_VID_BYTES) {
            result = mg_why_set(why, MG_ERR_DB,
                                "identifiant de version invalide dans la "
                                "base : elle est endommagée (lancez "
                                "« maillage check »)");
            break;
        }
        result = fn((uint64_t) sqlite3_column_int64(stmt, 0), vid, arg);
        if (result != 0)
            break;
    }
    if (result == MG_OK && rc != SQLITE_DONE)
        result = mg_store_fail_(self, rc, why, "lecture des versions");
    sqlite3_finalize(stmt);
    return result;
}

int mg_store_get_vid(mg_store_t *self, const uint8_t vid[MG_VID_BYTES],
                     uint8_t **raw, size_t *len, mg_why_t *why)
{
    mg_why_clear(why);
    if (raw)
        *raw = NULL;
    if (len)
        *len = 0;
    if (!self || !vid || !raw || !len)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    sqlite3_stmt *stmt;
    int rc = mg_store_stmt_(self, S_GET_BY_VID, S_GET_BY_VID_SQL, &stmt, why);
    if (rc != MG_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, vid, MG_VID_BYTES, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const void *bytes = sqlite3_column_blob(stmt, 0);
        int n = sqlite3_column_bytes(stmt, 0);
        if (!bytes || n <= 0) {
            rc = mg_why_set(why, MG_ERR_DB, "fiche stockée vide : la base "
                            "est endommagée (lancez « maillage check »)");
        } else if (!(*raw = malloc((size_t) n))) {
            rc = mg_why_set(why, MG_ERR_NOMEM, "%s",
                            mg_strerror(MG_ERR_NOMEM));
        } else {
            memcpy(*raw, bytes, (size_t) n);
            *len = (size_t) n;
            rc = MG_OK;
        }
    } else if (rc == SQLITE_DONE) {
        rc = mg_why_set(why, MG_ERR_NOT_FOUND,
                        "aucune version stockée n'a cet identifiant");
    } else {
        rc = mg_store_fail_(self, rc, why, "lecture d'une version");
    }
    mg_store_done_(stmt);
    return rc;
}

int mg_store_last_seq(mg_store_t *self, int64_t *seq)
{
    if (!self || !seq)
        return MG_ERR_ARG;
    *seq = 0;
    sqlite3_stmt *stmt;
    int rc = mg_store_stmt_(self, S_LAST_SEQ, S_LAST_SEQ_SQL, &stmt, NULL);
    if (rc != MG_OK)
        return rc;
    rc = sqlite3_step(stmt);
    int result = MG_OK;
    if (rc == SQLITE_ROW)
        *seq = sqlite3_column_int64(stmt, 0);
    else if (rc == SQLITE_DONE)
        result = MG_ERR_DB; /* store_state has its one row from migration 1 */
    else
        result = mg_store_fail_(self, rc, NULL, "lecture du numéro de "
                                "changement");
    mg_store_done_(stmt);
    return result;
}

int mg_store_changes_since(mg_store_t *self, int64_t after_seq, size_t limit,
                           mg_change_fn *fn, void *arg, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !fn)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    /* Not cached: the callback may use the store. The unique index on
       seq gives the order and the start without a sort. */
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db,
                                "SELECT seq, author, rid, raw, bucket, vid "
                                "FROM record WHERE seq > ?1 ORDER BY seq "
                                "LIMIT ?2",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return mg_store_fail_(self, rc, why, "lecture des changements");
    sqlite3_bind_int64(stmt, 1, after_seq);
    /* A negative LIMIT is no limit in SQLite. */
    sqlite3_bind_int64(stmt, 2, limit == 0 || limit > (size_t) INT64_MAX
                                    ? -1
                                    : (int64_t) limit);
    int result = MG_OK;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const void *author = sqlite3_column_blob(stmt, 1);
        const unsigned char *rid = sqlite3_column_text(stmt, 2);
        const void *raw = sqlite3_column_blob(stmt, 3);
        int raw_len = sqlite3_column_bytes(stmt, 3);
        const void *vid = sqlite3_column_blob(stmt, 5);
        if (!author || sqlite3_column_bytes(stmt, 1) != MG_KEY_BYTES || !rid
            || !raw || raw_len <= 0 || !vid
            || sqlite3_column_bytes(stmt, 5) != MG_VID_BYTES) {
            result = mg_why_set(why, MG_ERR_DB,
                                "fiche stockée incomplète (changement "
                                "%lld) : la base est endommagée (lancez "
                                "« maillage check »)",
                                (long long) sqlite3_column_int64(stmt, 0));
            break;
        }
        result = fn(sqlite3_column_int64(stmt, 0), author,
                    (const char *) rid, raw, (size_t) raw_len,
                    (uint64_t) sqlite3_column_int64(stmt, 4), vid, arg);
        if (result != 0)
            break;
    }
    if (result == MG_OK && rc != SQLITE_DONE)
        result = mg_store_fail_(self, rc, why, "lecture des changements");
    sqlite3_finalize(stmt);
    return result;
}

/* sum += vid, both little-endian 256-bit integers, modulo 2^256. */
static void s_sum_add(uint64_t sum[4], const uint8_t vid[MG_VID_BYTES])
{
    uint64_t carry = 0;
    for (int limb = 0; limb < 4; limb++) {
        uint64_t v = 0;
        for (int b = 7; b >= 0; b--)
            v = (v << 8) | vid[limb * 8 + b];
        uint64_t s = sum[limb] + v;
        uint64_t c1 = s < v;
        uint64_t t = s + carry;
        uint64_t c2 = t < s;
        sum[limb] = t;
        carry = c1 | c2;
    }
}

int mg_store_fingerprint(mg_store_t *self, uint8_t out[MG_FINGERPRINT_BYTES],
                         int64_t *count, mg_why_t *why)
{
    mg_why_clear(why);
    if (count)
        *count = 0;
    if (!self || !out)
        return mg_why_set(why, MG_ERR_ARG, "argument manquant");
    /* One statement: one snapshot, so the sum and the count agree. The
       unique index on vid covers it. */
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db, "SELECT vid FROM record", -1,
                                &stmt, NULL);
    if (rc != SQLITE_OK)
        return mg_store_fail_(self, rc, why, "empreinte de la base");
    uint64_t sum[4] = {0, 0, 0, 0};
    uint64_t n = 0;
    int result = MG_OK;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const uint8_t *vid = sqlite3_column_blob(stmt, 0);
        if (!vid || sqlite3_column_bytes(stmt, 0) != MG_VID_BYTES) {
            result = mg_why_set(why, MG_ERR_DB,
                                "identifiant de version invalide dans la "
                                "base : elle est endommagée (lancez "
                                "« maillage check »)");
            break;
        }
        s_sum_add(sum, vid);
        n++;
    }
    if (result == MG_OK && rc != SQLITE_DONE)
        result = mg_store_fail_(self, rc, why, "empreinte de la base");
    sqlite3_finalize(stmt);
    if (result != MG_OK)
        return result;

    uint8_t input[MG_VID_BYTES + 8];
    for (int limb = 0; limb < 4; limb++)
        for (int b = 0; b < 8; b++)
            input[limb * 8 + b] = (uint8_t) (sum[limb] >> (8 * b));
    for (int b = 0; b < 8; b++)
        input[MG_VID_BYTES + b] = (uint8_t) (n >> (8 * b));
    crypto_generichash(out, MG_FINGERPRINT_BYTES, input, sizeof input, NULL,
                       0);
    if (count)
        *count = (int64_t) n;
    return MG_OK;
}
