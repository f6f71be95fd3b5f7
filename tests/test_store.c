/*  test_store.c - the SQLite store, on real files in a temporary dir.

    Each test opens its own database file; records are built and signed
    with the protocol module exactly as the CLI and peers do.
*/
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_body.h"
#include "mg_record.h"
#include "mg_store.h"
#include "mg_test.h"

#define SERVICE_DEMARCHES "Aide aux démarches administratives"
#define SERVICE_OUTILS "Maîtrise des outils numériques du quotidien"
#define SERVICE_LOISIRS "Loisirs et créations numériques"

/* A fixed creation time: the store never looks at it for ordering. */
#define CREATED_MS 1712044800000LL

static char s_dir[64];

static void s_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", s_dir, name);
}

static void s_remove_dir(void)
{
    DIR *d = opendir(s_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", s_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(s_dir);
}

/* Opens (creating) `name` in the temp dir; aborts the test run on failure
   since nothing else can work without it. */
static mg_store_t *s_open(const char *name)
{
    char path[256];
    s_path(path, sizeof path, name);
    mg_store_t *store = NULL;
    mg_why_t why;
    int rc = mg_store_open(path, &store, &why);
    if (rc != MG_OK) {
        fprintf(stderr, "mg_store_open(%s): %d %s\n", path, rc, why.text);
        exit(1);
    }
    return store;
}

/* One integer from a SQL query on the store's connection. */
static int64_t s_sql_int(mg_store_t *store, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    int64_t value = -1;
    if (sqlite3_prepare_v2(mg_store_db(store), sql, -1, &stmt, NULL)
            == SQLITE_OK
        && sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

typedef struct {
    const char *id;
    const char *nom;
    const char *commune;
    const char *code_postal;
    const char *code_insee;         /* NULL: absent */
    const char *services;           /* '|'-joined */
    const char *publics;            /* '|'-joined, NULL: none */
} offer_t;

static mg_body_t *s_offer_body(const offer_t *o)
{
    mg_body_t *body = mg_body_new();
    mg_body_set_str(body, "id", o->id);
    mg_body_set_str(body, "pivot", "43493312300029");
    mg_body_set_str(body, "nom", o->nom);
    mg_body_set_str(body, "commune", o->commune);
    mg_body_set_str(body, "code_postal", o->code_postal);
    if (o->code_insee)
        mg_body_set_str(body, "code_insee", o->code_insee);
    mg_body_set_str(body, "adresse", "1 place de la Mairie");
    mg_body_set_str(body, "date_maj", "2024-04-02");
    mg_body_set_list_split(body, "services", o->services, '|');
    if (o->publics)
        mg_body_set_list_split(body, "publics_specifiquement_adresses",
                               o->publics, '|');
    mg_body_set_num(body, "latitude", 45.65);
    mg_body_set_num(body, "longitude", 0.16);
    return body;
}

/* Signs a record; aborts on failure (the inputs are the test's own). */
static mg_record_t *s_sign(const mg_identity_t *id, const char *kind,
                           const char *rid, uint64_t counter, bool deleted,
                           const mg_body_t *body)
{
    mg_record_t *record = NULL;
    mg_why_t why;
    int rc = mg_record_sign(id, kind, rid, counter, CREATED_MS, deleted, body,
                            &record, &why);
    if (rc != MG_OK) {
        fprintf(stderr, "mg_record_sign(%s %s #%llu): %d %s\n", kind, rid,
                (unsigned long long) counter, rc, why.text);
        exit(1);
    }
    return record;
}

static mg_record_t *s_sign_offer(const mg_identity_t *id, const char *rid,
                                 uint64_t counter, const offer_t *o)
{
    mg_body_t *body = s_offer_body(o);
    mg_record_t *record = s_sign(id, "offer", rid, counter, false, body);
    mg_body_destroy(&body);
    return record;
}

static mg_record_t *s_sign_note(const mg_identity_t *id, const char *rid,
                                uint64_t counter, const char *title)
{
    mg_body_t *body = mg_body_new();
    mg_body_set_str(body, "titre", title);
    mg_record_t *record = s_sign(id, "note", rid, counter, false, body);
    mg_body_destroy(&body);
    return record;
}

/* Applies a record and returns the outcome, or 0 on error. */
static int s_apply(mg_store_t *store, const mg_record_t *record)
{
    mg_apply_t outcome = 0;
    mg_why_t why;
    int rc = mg_store_apply_record(store, record, &outcome, &why);
    if (rc != MG_OK) {
        fprintf(stderr, "apply: %d %s\n", rc, why.text);
        return 0;
    }
    return (int) outcome;
}

/* True when the stored version of the record's (author, rid) has exactly
   the bytes of `expected`. */
static bool s_stored_is(mg_store_t *store, const mg_record_t *expected)
{
    mg_record_t *got = NULL;
    mg_why_t why;
    if (mg_store_get(store, mg_record_author(expected),
                     mg_record_rid(expected), &got, &why) != MG_OK)
        return false;
    size_t a_len, b_len;
    const uint8_t *a = mg_record_bytes(got, &a_len);
    const uint8_t *b = mg_record_bytes(expected, &b_len);
    bool same = a_len == b_len && memcmp(a, b, a_len) == 0;
    mg_record_destroy(&got);
    return same;
}

/* Collects the rids an iteration visits, comma-separated. */
typedef struct {
    char rids[512];
    int count;
    int stop_after; /* > 0: return 42 after that many records */
} collect_t;

static int s_collect(const mg_record_t *record, void *arg)
{
    collect_t *c = arg;
    size_t used = strlen(c->rids);
    snprintf(c->rids + used, sizeof c->rids - used, "%s%s",
             c->count ? "," : "", mg_record_rid(record));
    c->count++;
    return c->stop_after > 0 && c->count >= c->stop_after ? 42 : 0;
}

/* The rids of the offers matching `query`, comma-separated, in order. */
static const char *s_offers(mg_store_t *store, const mg_offer_query_t *query)
{
    static collect_t c;
    memset(&c, 0, sizeof c);
    mg_why_t why;
    int rc = mg_store_offers(store, query, s_collect, &c, &why);
    if (rc != MG_OK) {
        fprintf(stderr, "mg_store_offers: %d %s\n", rc, why.text);
        return "(error)";
    }
    return c.rids;
}

static const char *s_records(mg_store_t *store, const char *kind,
                             bool with_tombstones)
{
    static collect_t c;
    memset(&c, 0, sizeof c);
    mg_why_t why;
    if (mg_store_records(store, kind, with_tombstones, s_collect, &c, &why)
        != MG_OK)
        return "(error)";
    return c.rids;
}

/* Counts rendered as "kind:live/tombstones" items, for easy comparison. */
typedef struct {
    char text[512];
    const uint8_t *only_author; /* by-author rows: keep this author's */
} counts_t;

static int s_count_cb(const mg_count_t *count, void *arg)
{
    counts_t *c = arg;
    if (c->only_author
        && (!count->author
            || memcmp(count->author, c->only_author, MG_KEY_BYTES) != 0))
        return 0;
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof c->text - used, "%s%s:%lld/%lld",
             used ? " " : "", count->kind, (long long) count->live,
             (long long) count->tombstones);
    return 0;
}

static const char *s_counts(mg_store_t *store, const uint8_t *author)
{
    static counts_t c;
    memset(&c, 0, sizeof c);
    c.only_author = author;
    mg_why_t why;
    if (mg_store_counts(store, author != NULL, s_count_cb, &c, &why) != MG_OK)
        return "(error)";
    return c.text;
}

/* ------------------------------------------------------------------ */

static const offer_t s_o1 = {"o1", "Alpha", "Angoulême", "16000", NULL,
                             SERVICE_DEMARCHES, "Seniors"};

static void test_open_migrate_reopen(void)
{
    mg_store_t *store = s_open("open.db");
    CHECK(s_sql_int(store, "PRAGMA user_version") == MG_STORE_SCHEMA_VERSION);
    CHECK(s_sql_int(store, "PRAGMA foreign_keys") == 1);
    sqlite3_stmt *stmt = NULL;
    sqlite3_prepare_v2(mg_store_db(store), "PRAGMA journal_mode", -1, &stmt,
                       NULL);
    CHECK(sqlite3_step(stmt) == SQLITE_ROW);
    CHECK_STR((const char *) sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);

    mg_why_t why;
    char value[16];
    CHECK_RC(mg_store_meta_get(store, "name", value, sizeof value),
             MG_ERR_NOT_FOUND);
    CHECK_RC(mg_store_meta_set(store, "name", "Médiathèque de Cognac", &why),
             MG_OK);
    CHECK_RC(mg_store_meta_set(store, "name", "Centre social", &why), MG_OK);
    CHECK_RC(mg_store_check(store, &why), MG_OK);

    mg_identity_t id;
    mg_identity_generate(&id);
    uint64_t max = 99;
    CHECK_RC(mg_store_max_counter(store, id.pk, &max), MG_OK);
    CHECK(max == 0);
    mg_record_t *r = s_sign_offer(&id, "o1", 7, &s_o1);
    CHECK(s_apply(store, r) == MG_APPLY_NEW);
    mg_store_destroy(&store);
    CHECK(store == NULL);
    mg_store_destroy(&store); /* safe twice */

    /* Reopening finds everything and migrates nothing. */
    store = s_open("open.db");
    CHECK(s_sql_int(store, "PRAGMA user_version") == MG_STORE_SCHEMA_VERSION);
    CHECK_RC(mg_store_meta_get(store, "name", value, sizeof value), MG_OK);
    CHECK_STR(value, "Centre social");
    char tiny[4];
    CHECK_RC(mg_store_meta_get(store, "name", tiny, sizeof tiny), MG_OK);
    CHECK_STR(tiny, "Cen");
    CHECK(s_stored_is(store, r));
    CHECK_RC(mg_store_max_counter(store, id.pk, &max), MG_OK);
    CHECK(max == 7);
    CHECK_STR(s_offers(store, NULL), "o1");
    mg_record_destroy(&r);
    mg_store_destroy(&store);

    /* Not a path that can be created. */
    CHECK_RC(mg_store_open("/nonexistent-dir/x.db", &store, &why), MG_ERR_DB);
    CHECK(store == NULL);
    CHECK(strstr(why.text, "/nonexistent-dir/x.db") != NULL);
}

/* A file written by schema version 1 (the first release) is migrated on
   open: the counting index of migration 2 appears, offer_term takes the
   shape of migration 3 (search key, field codes, offer_idx.publics), the
   records stay, and the counts and searches agree. */
static void test_migrate_from_1(void)
{
    mg_store_t *store = s_open("v1.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_record_t *r = s_sign_offer(&id, "o1", 3, &s_o1);
    CHECK(s_apply(store, r) == MG_APPLY_NEW);
    offer_t o2 = s_o1;
    o2.id = "o2";
    o2.publics = NULL; /* names no public: serves everyone */
    mg_record_t *r2 = s_sign_offer(&id, "o2", 4, &o2);
    CHECK(s_apply(store, r2) == MG_APPLY_NEW);
    /* Back to what version 1 wrote: undo migrations 3 and 2. */
    CHECK(sqlite3_exec(mg_store_db(store),
                       "CREATE TABLE offer_term_v1 ("
                       "    author BLOB NOT NULL, rid TEXT NOT NULL,"
                       "    field TEXT NOT NULL, value_fold TEXT NOT NULL,"
                       "    PRIMARY KEY (author, rid, field, value_fold),"
                       "    FOREIGN KEY (author, rid) REFERENCES offer_idx (author, rid)"
                       ") WITHOUT ROWID;"
                       "INSERT INTO offer_term_v1 SELECT author, rid, CASE field "
                       "    WHEN 1 THEN 'services' "
                       "    ELSE 'publics_specifiquement_adresses' END, value_fold "
                       "    FROM offer_term;"
                       "DROP TABLE offer_term;"
                       "ALTER TABLE offer_term_v1 RENAME TO offer_term;"
                       "CREATE INDEX offer_term_value ON offer_term (field, value_fold);"
                       "ALTER TABLE offer_idx DROP COLUMN publics;"
                       "DROP INDEX record_kind_author_deleted; "
                       "PRAGMA user_version = 1",
                       NULL, NULL, NULL) == SQLITE_OK);
    mg_store_destroy(&store);
    store = s_open("v1.db");
    CHECK(s_sql_int(store, "PRAGMA user_version") == MG_STORE_SCHEMA_VERSION);
    CHECK(s_sql_int(store, "SELECT count(*) FROM sqlite_schema WHERE "
                           "name = 'record_kind_author_deleted'") == 1);
    CHECK(s_stored_is(store, r));
    CHECK(s_stored_is(store, r2));
    CHECK_STR(s_counts(store, NULL), "offer:2/0");
    /* Migration 3: one service each, one public for o1. */
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_term WHERE field = 1") == 2);
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_term WHERE field = 2") == 1);
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_idx WHERE publics = 1") == 1);
    mg_offer_query_t q = {.service = SERVICE_DEMARCHES};
    CHECK_STR(s_offers(store, &q), "o1,o2");
    q = (mg_offer_query_t){.public_ = "seniors"};
    CHECK_STR(s_offers(store, &q), "o1,o2");
    q = (mg_offer_query_t){.public_ = "Jeunes"};
    CHECK_STR(s_offers(store, &q), "o2");
    /* A replaced offer's terms leave with it, found from its old body. */
    offer_t o1b = s_o1;
    o1b.publics = "Jeunes";
    mg_record_t *r1b = s_sign_offer(&id, "o1", 5, &o1b);
    CHECK(s_apply(store, r1b) == MG_APPLY_REPLACED);
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_term WHERE field = 2 "
                           "AND value_fold = 'seniors'") == 0);
    q = (mg_offer_query_t){.public_ = "Jeunes"};
    CHECK_STR(s_offers(store, &q), "o1,o2");
    mg_record_destroy(&r1b);
    mg_record_destroy(&r2);
    /* The counts are read from the index, not from the records. */
    sqlite3_stmt *stmt = NULL;
    CHECK(sqlite3_prepare_v2(mg_store_db(store),
                             "EXPLAIN QUERY PLAN SELECT kind, "
                             "sum(deleted = 0) FROM record GROUP BY kind",
                             -1, &stmt, NULL) == SQLITE_OK);
    bool covering = false;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *d = (const char *) sqlite3_column_text(stmt, 3);
        covering |= d && strstr(d, "COVERING INDEX record_kind_author_deleted");
    }
    sqlite3_finalize(stmt);
    CHECK(covering);
    mg_record_destroy(&r);
    mg_store_destroy(&store);
}

static void test_refuse_foreign_files(void)
{
    mg_why_t why;
    char path[256];
    mg_store_t *store = s_open("newer.db");
    char sql[64], expected[32];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", MG_STORE_SCHEMA_VERSION + 1);
    snprintf(expected, sizeof expected, "schéma %d", MG_STORE_SCHEMA_VERSION + 1);
    CHECK(sqlite3_exec(mg_store_db(store), sql, NULL, NULL, NULL) == SQLITE_OK);
    mg_store_destroy(&store);
    s_path(path, sizeof path, "newer.db");
    CHECK_RC(mg_store_open(path, &store, &why), MG_ERR_DB);
    CHECK(store == NULL);
    CHECK(strstr(why.text, "plus récente") != NULL);
    CHECK(strstr(why.text, expected) != NULL);

    /* Another application's database is not migrated into ours. */
    sqlite3 *db = NULL;
    s_path(path, sizeof path, "other.db");
    sqlite3_open(path, &db);
    CHECK(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL)
          == SQLITE_OK);
    sqlite3_close(db);
    CHECK_RC(mg_store_open(path, &store, &why), MG_ERR_DB);
    CHECK(strstr(why.text, "maillage") != NULL);

    /* Not a database at all. */
    s_path(path, sizeof path, "garbage.db");
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 4096; i++)
        fputc('x', f);
    fclose(f);
    CHECK_RC(mg_store_open(path, &store, &why), MG_ERR_DB);
    CHECK(strstr(why.text, "garbage.db") != NULL);
    CHECK(store == NULL);
}

static void test_apply_versions(void)
{
    mg_store_t *store = s_open("apply.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    offer_t o = s_o1;
    mg_record_t *v1 = s_sign_offer(&id, "o1", 1, &o);
    o.nom = "Alpha (nouveau nom)";
    mg_record_t *v2 = s_sign_offer(&id, "o1", 2, &o);
    o.nom = "Alpha v3";
    mg_record_t *v3 = s_sign_offer(&id, "o1", 3, &o);

    CHECK(s_apply(store, v1) == MG_APPLY_NEW);
    CHECK(s_stored_is(store, v1));
    int64_t seq1 = s_sql_int(store, "SELECT seq FROM record");

    /* Idempotent: the same bytes again change nothing, not even seq. */
    CHECK(s_apply(store, v1) == MG_APPLY_KEPT);
    size_t len;
    const uint8_t *bytes = mg_record_bytes(v1, &len);
    mg_apply_t outcome = 0;
    mg_why_t why;
    CHECK_RC(mg_store_apply(store, bytes, len, &outcome, &why), MG_OK);
    CHECK(outcome == MG_APPLY_KEPT);
    CHECK(s_sql_int(store, "SELECT seq FROM record") == seq1);

    /* Newer replaces, with a new seq; the index follows. */
    bytes = mg_record_bytes(v2, &len);
    CHECK_RC(mg_store_apply(store, bytes, len, &outcome, &why), MG_OK);
    CHECK(outcome == MG_APPLY_REPLACED);
    CHECK(s_stored_is(store, v2));
    CHECK(s_sql_int(store, "SELECT seq FROM record") > seq1);
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_idx WHERE "
                           "nom = 'Alpha (nouveau nom)'") == 1);
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_idx") == 1);
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_term") == 2);

    /* Older never wins. */
    CHECK(s_apply(store, v1) == MG_APPLY_KEPT);
    CHECK(s_stored_is(store, v2));

    /* Skipping a version is fine: counters are ordered, not contiguous. */
    CHECK(s_apply(store, v3) == MG_APPLY_REPLACED);
    CHECK(s_stored_is(store, v3));
    uint64_t max = 0;
    CHECK_RC(mg_store_max_counter(store, id.pk, &max), MG_OK);
    CHECK(max == 3);
    CHECK_STR(s_counts(store, NULL), "offer:1/0");
    mg_store_destroy(&store);

    /* The other arrival order ends in the same state. */
    store = s_open("apply2.db");
    CHECK(s_apply(store, v2) == MG_APPLY_NEW);
    CHECK(s_apply(store, v1) == MG_APPLY_KEPT);
    CHECK(s_stored_is(store, v2));
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_idx WHERE "
                           "nom = 'Alpha (nouveau nom)'") == 1);

    /* get: a decoded record with the same fields; absent is NOT_FOUND. */
    mg_record_t *got = NULL;
    CHECK_RC(mg_store_get(store, id.pk, "o1", &got, &why), MG_OK);
    CHECK(got && mg_record_counter(got) == 2);
    CHECK_STR(got ? mg_body_str(mg_record_body(got), "nom") : NULL,
              "Alpha (nouveau nom)");
    mg_record_destroy(&got);
    CHECK_RC(mg_store_get(store, id.pk, "o2", &got, &why), MG_ERR_NOT_FOUND);
    CHECK(got == NULL);
    CHECK(why.text[0] != '\0');

    mg_record_destroy(&v1);
    mg_record_destroy(&v2);
    mg_record_destroy(&v3);
    mg_store_destroy(&store);
}

/* One author, two different versions with the same counter (a key
   restored onto an empty store): every node must keep the same one,
   whatever the arrival order, or they would never converge. */
static void test_equal_counter_tie(void)
{
    mg_identity_t id;
    mg_identity_generate(&id);
    offer_t o = s_o1;
    mg_record_t *a = s_sign_offer(&id, "t1", 5, &o);
    o.nom = "Autre version";
    mg_record_t *b = s_sign_offer(&id, "t1", 5, &o);
    size_t la, lb;
    const uint8_t *ba = mg_record_bytes(a, &la);
    const uint8_t *bb = mg_record_bytes(b, &lb);
    int c = memcmp(ba, bb, la < lb ? la : lb);
    const mg_record_t *winner = (c > 0 || (c == 0 && la > lb)) ? a : b;
    mg_store_t *s1 = s_open("tie1.db");
    mg_store_t *s2 = s_open("tie2.db");
    s_apply(s1, a);
    s_apply(s1, b);
    s_apply(s2, b);
    s_apply(s2, a);
    CHECK(s_stored_is(s1, winner));
    CHECK(s_stored_is(s2, winner));
    mg_store_destroy(&s1);
    mg_store_destroy(&s2);
    mg_record_destroy(&a);
    mg_record_destroy(&b);
}

static void test_tombstone_and_kinds(void)
{
    mg_store_t *store = s_open("tomb.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    offer_t o2 = s_o1;
    o2.id = "o2";
    o2.nom = "Beta";
    mg_record_t *live = s_sign_offer(&id, "o1", 1, &s_o1);
    mg_record_t *other = s_sign_offer(&id, "o2", 2, &o2);
    mg_record_t *tomb = s_sign(&id, "offer", "o1", 3, true, NULL);
    mg_record_t *stale_tomb = s_sign(&id, "offer", "o2", 1, true, NULL);

    CHECK(s_apply(store, live) == MG_APPLY_NEW);
    CHECK(s_apply(store, other) == MG_APPLY_NEW);
    CHECK_STR(s_offers(store, NULL), "o1,o2");
    CHECK(s_apply(store, tomb) == MG_APPLY_REPLACED);
    CHECK_STR(s_offers(store, NULL), "o2");
    mg_offer_query_t q = {.service = SERVICE_DEMARCHES};
    CHECK_STR(s_offers(store, &q), "o2");
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_idx") == 1);
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_term WHERE rid = 'o1'")
          == 0);

    /* The row stays, holding the tombstone's bytes. */
    CHECK(s_stored_is(store, tomb));
    CHECK(s_sql_int(store, "SELECT deleted FROM record WHERE rid = 'o1'")
          == 1);
    mg_record_t *got = NULL;
    mg_why_t why;
    CHECK_RC(mg_store_get(store, id.pk, "o1", &got, &why), MG_OK);
    CHECK(got && mg_record_deleted(got));
    mg_record_destroy(&got);
    CHECK_STR(s_records(store, "offer", false), "o2");
    CHECK_STR(s_records(store, "offer", true), "o1,o2");
    CHECK_STR(s_counts(store, NULL), "offer:1/1");

    /* The live version does not come back, and an older tombstone does
       not delete a newer live record. */
    CHECK(s_apply(store, live) == MG_APPLY_KEPT);
    CHECK(s_apply(store, stale_tomb) == MG_APPLY_KEPT);
    CHECK_STR(s_offers(store, NULL), "o2");

    /* A newer version of another kind replaces the offer outright. */
    mg_record_t *note = s_sign_note(&id, "o2", 4, "Atelier smartphone");
    CHECK(s_apply(store, note) == MG_APPLY_REPLACED);
    CHECK_STR(s_offers(store, NULL), "");
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_idx") == 0);
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_term") == 0);
    CHECK_STR(s_counts(store, NULL), "note:1/0 offer:0/1");

    /* Unknown kinds are kept (forward compatibility), not indexed. */
    mg_body_t *body = mg_body_new();
    mg_body_set_str(body, "commune", "Angoulême");
    mg_body_set_str(body, "futur", "champ inconnu");
    mg_record_t *unknown = s_sign(&id, "sondage", "s1", 5, false, body);
    mg_body_destroy(&body);
    CHECK(s_apply(store, unknown) == MG_APPLY_NEW);
    CHECK(s_stored_is(store, unknown));
    CHECK_STR(s_counts(store, NULL), "note:1/0 offer:0/1 sondage:1/0");
    CHECK_STR(s_records(store, NULL, true), "o1,o2,s1");
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_idx") == 0);

    /* The callback's non-zero value stops the iteration and comes back. */
    static collect_t c;
    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    CHECK_RC(mg_store_records(store, NULL, true, s_collect, &c, &why), 42);
    CHECK(c.count == 1);
    CHECK_RC(mg_store_check(store, &why), MG_OK);

    mg_record_destroy(&live);
    mg_record_destroy(&other);
    mg_record_destroy(&tomb);
    mg_record_destroy(&stale_tomb);
    mg_record_destroy(&note);
    mg_record_destroy(&unknown);
    mg_store_destroy(&store);
}

/* Where `needle` first occurs in the record's bytes, or -1. */
static long s_find(const uint8_t *hay, size_t len, const void *needle,
                   size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return (long) i;
    return -1;
}

/* Applies a copy of `record`'s bytes with one byte flipped at `at`,
   expecting a refusal that leaves the store exactly as it was. */
static void s_check_forged(mg_store_t *store, const mg_record_t *record,
                           long at, const mg_record_t *stored,
                           const char *counts_before)
{
    size_t len;
    const uint8_t *bytes = mg_record_bytes(record, &len);
    CHECK(at >= 0 && (size_t) at < len);
    if (at < 0 || (size_t) at >= len)
        return;
    uint8_t *copy = malloc(len);
    memcpy(copy, bytes, len);
    copy[at] ^= 0x01;
    mg_apply_t outcome = 0;
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_store_apply(store, copy, len, &outcome, &why);
    CHECK(rc != MG_OK);
    CHECK(outcome == 0);
    CHECK(why.text[0] != '\0');
    CHECK(s_stored_is(store, stored));
    CHECK_STR(s_counts(store, NULL), counts_before);
    free(copy);
}

static void test_forged(void)
{
    mg_store_t *store = s_open("forged.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_record_t *v1 = s_sign_offer(&id, "o1", 1, &s_o1);
    offer_t o = s_o1;
    o.nom = "Nom usurpé";
    mg_record_t *v2 = s_sign_offer(&id, "o1", 2, &o);
    CHECK(s_apply(store, v1) == MG_APPLY_NEW);
    int64_t seq = s_sql_int(store, "SELECT last_seq FROM store_state");
    const char *counts = "offer:1/0";
    CHECK_STR(s_counts(store, NULL), counts);

    /* A newer version with one flipped byte must not replace v1: in the
       body, in the signature, in the author key. */
    size_t len;
    const uint8_t *bytes = mg_record_bytes(v2, &len);
    s_check_forged(store, v2, s_find(bytes, len, "usurp", 5), v1, counts);
    s_check_forged(store, v2, (long) len - 1, v1, counts);
    s_check_forged(store, v2, s_find(bytes, len, id.pk, MG_KEY_BYTES) + 5, v1,
                   counts);
    /* And the counter itself (a fixint right after the rid "o1"). */
    s_check_forged(store, v2, s_find(bytes, len, "o1", 2) + 2, v1, counts);
    CHECK(s_sql_int(store, "SELECT last_seq FROM store_state") == seq);

    /* Truncated and empty input. */
    mg_apply_t outcome = 0;
    mg_why_t why;
    CHECK(mg_store_apply(store, bytes, len / 2, &outcome, &why) != MG_OK);
    CHECK(mg_store_apply(store, bytes, 0, &outcome, &why) != MG_OK);
    CHECK(outcome == 0);
    CHECK(s_stored_is(store, v1));

    /* The genuine v2 still applies. */
    CHECK(s_apply(store, v2) == MG_APPLY_REPLACED);
    CHECK(s_stored_is(store, v2));

    mg_record_destroy(&v1);
    mg_record_destroy(&v2);
    mg_store_destroy(&store);
}

static void test_resolve(void)
{
    mg_store_t *store = s_open("resolve.db");
    mg_identity_t a, b;
    mg_identity_generate(&a);
    mg_identity_generate(&b);
    static const char *const rids[] = {"ab1", "ab12", "ab34", "a_b1",
                                       "aXb2", "zz9"};
    uint64_t counter = 1;
    for (size_t i = 0; i < sizeof rids / sizeof rids[0]; i++) {
        offer_t o = s_o1;
        o.id = rids[i];
        mg_record_t *r = s_sign_offer(&a, rids[i], counter++, &o);
        CHECK(s_apply(store, r) == MG_APPLY_NEW);
        mg_record_destroy(&r);
    }
    mg_record_t *note = s_sign_note(&a, "zz1", counter++, "Note");
    mg_record_t *gone = s_sign(&a, "offer", "zz8", counter++, true, NULL);
    mg_record_t *same_a = s_sign_note(&a, "same", counter++, "A");
    mg_record_t *same_b = s_sign_note(&b, "same", 1, "B");
    CHECK(s_apply(store, note) == MG_APPLY_NEW);
    CHECK(s_apply(store, gone) == MG_APPLY_NEW);
    CHECK(s_apply(store, same_a) == MG_APPLY_NEW);
    CHECK(s_apply(store, same_b) == MG_APPLY_NEW);

    uint8_t author[MG_KEY_BYTES];
    char rid[MG_RID_MAX + 1];
    mg_why_t why;
    /* Unique prefix. */
    CHECK_RC(mg_store_resolve(store, "offer", "ab3", NULL, author, rid, &why),
             MG_OK);
    CHECK_STR(rid, "ab34");
    CHECK(memcmp(author, a.pk, MG_KEY_BYTES) == 0);
    /* An exact id wins over the longer ids it prefixes. */
    CHECK_RC(mg_store_resolve(store, "offer", "ab1", NULL, author, rid, &why),
             MG_OK);
    CHECK_STR(rid, "ab1");
    /* Ambiguous: the message lists the candidates. */
    CHECK_RC(mg_store_resolve(store, "offer", "ab", NULL, author, rid, &why),
             MG_ERR_AMBIGUOUS);
    CHECK(strstr(why.text, "« ab »") != NULL);
    CHECK(strstr(why.text, "ab12") != NULL);
    CHECK(strstr(why.text, "ab34") != NULL);
    CHECK(strstr(why.text, "donnez plus de caractères") != NULL);
    /* Not found, with the kind filter and tombstones respected. */
    CHECK_RC(mg_store_resolve(store, "offer", "q", NULL, author, rid, &why),
             MG_ERR_NOT_FOUND);
    CHECK(strstr(why.text, "« q »") != NULL);
    CHECK_RC(mg_store_resolve(store, "offer", "zz", NULL, author, rid, &why),
             MG_OK);
    CHECK_STR(rid, "zz9"); /* not the note zz1, not the deleted zz8 */
    CHECK_RC(mg_store_resolve(store, "note", "zz", NULL, author, rid, &why),
             MG_OK);
    CHECK_STR(rid, "zz1");
    CHECK_RC(mg_store_resolve(store, NULL, "zz", NULL, author, rid, &why),
             MG_ERR_AMBIGUOUS);
    CHECK_RC(mg_store_resolve(store, "offer", "zz8", NULL, author, rid, &why),
             MG_ERR_NOT_FOUND);
    /* Wildcards are literal: "a_" is not "a" + any character, "%" is
       not "anything". */
    CHECK_RC(mg_store_resolve(store, "offer", "a_", NULL, author, rid, &why),
             MG_OK);
    CHECK_STR(rid, "a_b1");
    CHECK_RC(mg_store_resolve(store, "offer", "%", NULL, author, rid, &why),
             MG_ERR_NOT_FOUND);
    CHECK_RC(mg_store_resolve(store, "offer", "a%", NULL, author, rid, &why),
             MG_ERR_NOT_FOUND);
    CHECK_RC(mg_store_resolve(store, "offer", "", NULL, author, rid, &why),
             MG_ERR_ARG);
    /* The same rid from two authors: only the author can decide. */
    CHECK_RC(mg_store_resolve(store, "note", "same", NULL, author, rid, &why),
             MG_ERR_AMBIGUOUS);
    CHECK(strstr(why.text, "auteur") != NULL);
    CHECK_RC(mg_store_resolve(store, "note", "sa", b.pk, author, rid, &why),
             MG_OK);
    CHECK_STR(rid, "same");
    CHECK(memcmp(author, b.pk, MG_KEY_BYTES) == 0);
    CHECK_RC(mg_store_resolve(store, "offer", "ab3", b.pk, author, rid, &why),
             MG_ERR_NOT_FOUND);

    /* More candidates than shown: the list ends with an ellipsis. */
    for (int i = 0; i < 7; i++) {
        char r[16];
        snprintf(r, sizeof r, "many%d", i);
        mg_record_t *n = s_sign_note(&b, r, (uint64_t) (10 + i), "n");
        CHECK(s_apply(store, n) == MG_APPLY_NEW);
        mg_record_destroy(&n);
    }
    CHECK_RC(mg_store_resolve(store, "note", "many", NULL, author, rid, &why),
             MG_ERR_AMBIGUOUS);
    CHECK(strstr(why.text, "many4") != NULL);
    CHECK(strstr(why.text, "many5") == NULL);
    CHECK(strstr(why.text, "…") != NULL);

    mg_record_destroy(&note);
    mg_record_destroy(&gone);
    mg_record_destroy(&same_a);
    mg_record_destroy(&same_b);
    mg_store_destroy(&store);
}

static void test_offer_queries(void)
{
    mg_store_t *store = s_open("offers.db");
    mg_identity_t a, b;
    mg_identity_generate(&a);
    mg_identity_generate(&b);
    static const offer_t offers[] = {
        {"o1", "Alpha", "Angoulême", "16000", NULL, SERVICE_DEMARCHES,
         "Seniors"},
        {"o2", "Zeta", "ANGOULÊME", "16000", "16015", SERVICE_OUTILS, NULL},
        {"o3", "Gamma", "Cognac", "16100", NULL,
         SERVICE_DEMARCHES "|" SERVICE_OUTILS, "Jeunes|Étudiants"},
        {"o4", "Delta", "Ajaccio", "20000", "2A004", SERVICE_LOISIRS,
         "Femmes"},
        {"o5", "Epsilon", "Saint-Yrieix-sur-Charente", "16710", NULL,
         SERVICE_DEMARCHES, NULL},
        {"o0", "beta", "angoulême", "16000", NULL, SERVICE_LOISIRS, NULL},
    };
    for (size_t i = 0; i < sizeof offers / sizeof offers[0]; i++) {
        /* o0 is another author's, to test the author filter. */
        const mg_identity_t *id = i == 5 ? &b : &a;
        mg_record_t *r = s_sign_offer(id, offers[i].id, i + 1, &offers[i]);
        CHECK(s_apply(store, r) == MG_APPLY_NEW);
        mg_record_destroy(&r);
    }
    /* A note is not an offer, whatever its fields. */
    mg_record_t *note = s_sign_note(&a, "n1", 20, "Angoulême");
    CHECK(s_apply(store, note) == MG_APPLY_NEW);
    mg_record_destroy(&note);

    /* All: by commune (folded), then nom (folded), then rid. */
    CHECK_STR(s_offers(store, NULL), "o4,o1,o0,o2,o3,o5");
    mg_offer_query_t q = {0};
    CHECK_STR(s_offers(store, &q), "o4,o1,o0,o2,o3,o5");

    q = (mg_offer_query_t){.service = SERVICE_DEMARCHES};
    CHECK_STR(s_offers(store, &q), "o1,o3,o5");
    q = (mg_offer_query_t){.service = "  aide aux DEMARCHES administratives"};
    CHECK_STR(s_offers(store, &q), "o1,o3,o5");
    q = (mg_offer_query_t){.service = "Aide"};
    CHECK_STR(s_offers(store, &q), "");

    /* A public matches the offers for it and those for everyone. */
    q = (mg_offer_query_t){.public_ = "Seniors"};
    CHECK_STR(s_offers(store, &q), "o1,o0,o2,o5");
    q = (mg_offer_query_t){.public_ = "étudiants"};
    CHECK_STR(s_offers(store, &q), "o0,o2,o3,o5");

    q = (mg_offer_query_t){.commune = "angouleme"};
    CHECK_STR(s_offers(store, &q), "o1,o0,o2");
    q = (mg_offer_query_t){.commune = "ANGOULÊME"};
    CHECK_STR(s_offers(store, &q), "o1,o0,o2");
    q = (mg_offer_query_t){.commune = " saint yrieix sur charente "};
    CHECK_STR(s_offers(store, &q), "o5");
    q = (mg_offer_query_t){.commune = "Angoul"};
    CHECK_STR(s_offers(store, &q), "");

    q = (mg_offer_query_t){.code_postal = "16000"};
    CHECK_STR(s_offers(store, &q), "o1,o0,o2");
    q = (mg_offer_query_t){.departement = "16"};
    CHECK_STR(s_offers(store, &q), "o1,o0,o2,o3,o5");
    q = (mg_offer_query_t){.departement = "2a"};
    CHECK_STR(s_offers(store, &q), "o4");
    q = (mg_offer_query_t){.departement = "2B"};
    CHECK_STR(s_offers(store, &q), "");

    q = (mg_offer_query_t){.author = b.pk};
    CHECK_STR(s_offers(store, &q), "o0");
    q = (mg_offer_query_t){.service = SERVICE_DEMARCHES, .public_ = "Jeunes",
                           .departement = "16"};
    CHECK_STR(s_offers(store, &q), "o3,o5");
    q = (mg_offer_query_t){.service = SERVICE_LOISIRS, .commune = "Angoulême",
                           .code_postal = "16000", .author = b.pk};
    CHECK_STR(s_offers(store, &q), "o0");

    /* Index columns derived from the body. */
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_idx WHERE rid = 'o4' "
                           "AND departement = '2A' AND code_insee = '2A004' "
                           "AND latitude > 45 AND longitude > 0") == 1);

    /* Bad text in a filter is refused, not silently unmatched. */
    mg_why_t why;
    static collect_t c;
    q = (mg_offer_query_t){.commune = "\xff\xfe"};
    CHECK_RC(mg_store_offers(store, &q, s_collect, &c, &why), MG_ERR_UTF8);
    CHECK(strstr(why.text, "commune") != NULL);

    /* Folding on its own. */
    char *f = NULL;
    CHECK_RC(mg_store_fold("  L’Isle-d’Espagnac  ", &f), MG_OK);
    CHECK_STR(f, "l'isle d'espagnac");
    free(f);
    CHECK_RC(mg_store_fold("ÉTUDIANTS", &f), MG_OK);
    CHECK_STR(f, "etudiants");
    free(f);
    CHECK_RC(mg_store_fold("\xc3", &f), MG_ERR_UTF8);
    CHECK(f == NULL);

    CHECK_STR(s_counts(store, NULL), "note:1/0 offer:6/0");
    CHECK_STR(s_counts(store, a.pk), "note:1/0 offer:5/0");
    CHECK_STR(s_counts(store, b.pk), "offer:1/0");
    mg_store_destroy(&store);
}

static void test_atomic_apply(void)
{
    mg_store_t *store = s_open("atomic.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_record_t *r1 = s_sign_offer(&id, "o1", 1, &s_o1);
    offer_t o = s_o1;
    o.id = "o2";
    mg_record_t *r2 = s_sign_offer(&id, "o2", 2, &o);
    mg_record_t *n3 = s_sign_note(&id, "n3", 3, "note");

    /* Make the last step of indexing fail: the record row written just
       before must be undone too. */
    CHECK(sqlite3_exec(mg_store_db(store),
                       "CREATE TEMP TRIGGER boom BEFORE INSERT ON offer_term "
                       "BEGIN SELECT RAISE(ABORT, 'panne simulée'); END",
                       NULL, NULL, NULL) == SQLITE_OK);
    mg_apply_t outcome = 0;
    mg_why_t why;
    CHECK_RC(mg_store_apply_record(store, r1, &outcome, &why), MG_ERR_DB);
    CHECK(outcome == 0);
    CHECK(strstr(why.text, "panne simulée") != NULL);
    CHECK(s_sql_int(store, "SELECT count(*) FROM record") == 0);
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_idx") == 0);
    CHECK(s_sql_int(store, "SELECT last_seq FROM store_state") == 0);
    CHECK(sqlite3_get_autocommit(mg_store_db(store)));

    /* Inside an import's transaction: the failed apply is undone alone. */
    CHECK_RC(mg_store_begin(store, &why), MG_OK);
    CHECK_RC(mg_store_begin(store, &why), MG_ERR_ARG); /* no nesting */
    CHECK(s_apply(store, n3) == MG_APPLY_NEW);
    CHECK_RC(mg_store_apply_record(store, r2, &outcome, &why), MG_ERR_DB);
    CHECK(!sqlite3_get_autocommit(mg_store_db(store)));
    CHECK_RC(mg_store_commit(store, &why), MG_OK);
    CHECK_STR(s_records(store, NULL, true), "n3");
    CHECK_RC(mg_store_check(store, &why), MG_OK);

    CHECK(sqlite3_exec(mg_store_db(store), "DROP TRIGGER boom", NULL, NULL,
                       NULL) == SQLITE_OK);
    CHECK(s_apply(store, r1) == MG_APPLY_NEW);

    /* An explicit rollback undoes every apply since begin. */
    CHECK_RC(mg_store_begin(store, &why), MG_OK);
    CHECK(s_apply(store, r2) == MG_APPLY_NEW);
    CHECK_STR(s_offers(store, NULL), "o1,o2");
    CHECK_RC(mg_store_rollback(store), MG_OK);
    CHECK_STR(s_offers(store, NULL), "o1");
    CHECK_RC(mg_store_rollback(store), MG_OK); /* nothing open: harmless */
    CHECK_RC(mg_store_commit(store, &why), MG_ERR_ARG);
    CHECK_STR(s_records(store, NULL, true), "n3,o1");

    mg_record_destroy(&r1);
    mg_record_destroy(&r2);
    mg_record_destroy(&n3);
    mg_store_destroy(&store);
}

static void test_two_connections(void)
{
    mg_store_t *writer = s_open("shared.db");
    mg_store_t *reader = s_open("shared.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_record_t *r1 = s_sign_offer(&id, "o1", 1, &s_o1);
    offer_t o = s_o1;
    o.id = "o2";
    mg_record_t *r2 = s_sign_offer(&id, "o2", 2, &o);
    mg_record_t *r3 = s_sign_note(&id, "n3", 3, "note");

    /* A commit by one connection is seen by the other. */
    CHECK(s_apply(writer, r1) == MG_APPLY_NEW);
    CHECK(s_stored_is(reader, r1));
    CHECK_STR(s_offers(reader, NULL), "o1");
    /* And the other way round: both may write, one at a time. */
    CHECK(s_apply(reader, r3) == MG_APPLY_NEW);
    CHECK(s_stored_is(writer, r3));

    /* While the writer holds a write transaction, the reader reads the
       last committed state without waiting (WAL). */
    mg_why_t why;
    CHECK_RC(mg_store_begin(writer, &why), MG_OK);
    CHECK(s_apply(writer, r2) == MG_APPLY_NEW);
    CHECK_STR(s_offers(writer, NULL), "o1,o2");
    CHECK_STR(s_offers(reader, NULL), "o1");
    CHECK_STR(s_counts(reader, NULL), "note:1/0 offer:1/0");
    mg_record_t *got = NULL;
    CHECK_RC(mg_store_get(reader, id.pk, "o2", &got, &why), MG_ERR_NOT_FOUND);
    uint8_t author[MG_KEY_BYTES];
    char rid[MG_RID_MAX + 1];
    CHECK_RC(mg_store_resolve(reader, "offer", "o", NULL, author, rid, &why),
             MG_OK);
    CHECK_STR(rid, "o1");

    /* A second writer waits for the lock, then gives up with BUSY (a
       short timeout keeps the test fast). */
    sqlite3_busy_timeout(mg_store_db(reader), 50);
    CHECK_RC(mg_store_meta_set(reader, "name", "x", &why), MG_ERR_BUSY);
    CHECK(why.text[0] != '\0');
    mg_apply_t outcome = 0;
    CHECK_RC(mg_store_apply_record(reader, r2, &outcome, &why), MG_ERR_BUSY);
    CHECK(outcome == 0);
    CHECK_RC(mg_store_begin(reader, &why), MG_ERR_BUSY);
    CHECK(sqlite3_get_autocommit(mg_store_db(reader)));
    /* A duplicate needs no lock at all. */
    CHECK_RC(mg_store_apply_record(reader, r1, &outcome, &why), MG_OK);
    CHECK(outcome == MG_APPLY_KEPT);

    CHECK_RC(mg_store_commit(writer, &why), MG_OK);
    CHECK_STR(s_offers(reader, NULL), "o1,o2");
    CHECK(s_apply(reader, r2) == MG_APPLY_KEPT);
    CHECK_RC(mg_store_meta_set(reader, "name", "x", &why), MG_OK);
    char value[8];
    CHECK_RC(mg_store_meta_get(writer, "name", value, sizeof value), MG_OK);
    CHECK_STR(value, "x");

    mg_record_destroy(&r1);
    mg_record_destroy(&r2);
    mg_record_destroy(&r3);
    mg_store_destroy(&reader);
    mg_store_destroy(&writer);
}

int main(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/mg_test_store.XXXXXX");
    if (!mkdtemp(s_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_open_migrate_reopen();
    test_migrate_from_1();
    test_refuse_foreign_files();
    test_apply_versions();
    test_equal_counter_tie();
    test_tombstone_and_kinds();
    test_forged();
    test_resolve();
    test_offer_queries();
    test_atomic_apply();
    test_two_connections();
    s_remove_dir();
    return mg_test_done("test_store");
}
