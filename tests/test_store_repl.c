/*  test_store_repl.c - what the node daemon reads from and writes to the
    store: version ids, the change feed, fingerprints, batches, peers and
    the node status keys. Real files in a temporary dir, records signed as
    the CLI and peers sign them.

    MG_STORE_BENCH=N (e.g. 100000) makes test_bulk apply N offers of
    about 500 bytes in batches of 1,000 and print the rate; by default it
    applies 3,000, which checks the same things quickly. Nothing here
    asserts on time.
*/
#include <dirent.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mg_body.h"
#include "mg_offer.h"
#include "mg_recon.h"
#include "mg_record.h"
#include "mg_store.h"
#include "mg_test.h"

#define SERVICE_DEMARCHES "Aide aux démarches administratives"
#define CREATED_MS 1712044800000LL
#define BATCH 1000

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

/* An offer body in `code_postal` (and `code_insee` when not NULL);
   `padding` > 0 adds a presentation of that many bytes. */
static mg_body_t *s_offer_body(const char *id, const char *nom,
                               const char *code_postal,
                               const char *code_insee, size_t padding)
{
    mg_body_t *body = mg_body_new();
    mg_body_set_str(body, "id", id);
    mg_body_set_str(body, "pivot", "43493312300029");
    mg_body_set_str(body, "nom", nom);
    mg_body_set_str(body, "commune", "Angoulême");
    mg_body_set_str(body, "code_postal", code_postal);
    if (code_insee)
        mg_body_set_str(body, "code_insee", code_insee);
    mg_body_set_str(body, "adresse", "1 place de la Mairie");
    mg_body_set_str(body, "date_maj", "2024-04-02");
    mg_body_set_list_split(body, "services", SERVICE_DEMARCHES, '|');
    mg_body_set_list_split(body, "publics_specifiquement_adresses",
                           "Seniors", '|');
    mg_body_set_num(body, "latitude", 45.65);
    mg_body_set_num(body, "longitude", 0.16);
    if (padding > 0) {
        char text[1024];
        static const char words[] = "Atelier d'initiation au numérique, "
                                    "sur rendez-vous ou en accès libre. ";
        size_t n = 0;
        while (n + 1 < sizeof text && n < padding) {
            text[n] = words[n % (sizeof words - 1)];
            n++;
        }
        /* Never cut a multi-byte character in two. */
        while (n > 0 && ((unsigned char) text[n - 1] & 0xC0) == 0x80)
            n--;
        if (n > 0 && ((unsigned char) text[n - 1] & 0xC0) == 0xC0)
            n--;
        text[n] = '\0';
        mg_body_set_str(body, "presentation_detail", text);
    }
    return body;
}

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

static mg_record_t *s_offer(const mg_identity_t *id, const char *rid,
                            uint64_t counter, const char *nom,
                            const char *code_postal, const char *code_insee)
{
    mg_body_t *body = s_offer_body(rid, nom, code_postal, code_insee, 0);
    mg_record_t *record = s_sign(id, "offer", rid, counter, false, body);
    mg_body_destroy(&body);
    return record;
}

static mg_record_t *s_note(const mg_identity_t *id, const char *rid,
                           uint64_t counter, const char *title)
{
    mg_body_t *body = mg_body_new();
    mg_body_set_str(body, "titre", title);
    mg_record_t *record = s_sign(id, "note", rid, counter, false, body);
    mg_body_destroy(&body);
    return record;
}

static mg_record_t *s_tombstone(const mg_identity_t *id, const char *kind,
                                const char *rid, uint64_t counter)
{
    return s_sign(id, kind, rid, counter, true, NULL);
}

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

/* The vid as the brief defines it, computed here independently. */
static void s_blake(const mg_record_t *record, uint8_t out[32])
{
    size_t len = 0;
    const uint8_t *raw = mg_record_bytes(record, &len);
    crypto_generichash(out, 32, raw, len, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Items                                                                */

#define ITEMS_MAX 16

typedef struct {
    uint64_t buckets[ITEMS_MAX];
    uint8_t vids[ITEMS_MAX][32];
    int count;
    int stop_after; /* > 0: return 7 after that many */
} items_t;

static int s_item_cb(uint64_t bucket, const uint8_t vid[32], void *arg)
{
    items_t *items = arg;
    if (items->count < ITEMS_MAX) {
        items->buckets[items->count] = bucket;
        memcpy(items->vids[items->count], vid, 32);
    }
    items->count++;
    return items->stop_after > 0 && items->count >= items->stop_after ? 7 : 0;
}

/* Index of (bucket, vid) among the items, or -1. */
static int s_item_find(const items_t *items, uint64_t bucket,
                       const uint8_t vid[32])
{
    for (int i = 0; i < items->count && i < ITEMS_MAX; i++)
        if (items->buckets[i] == bucket && memcmp(items->vids[i], vid, 32) == 0)
            return i;
    return -1;
}

static void s_items(mg_store_t *store, items_t *items)
{
    memset(items, 0, sizeof *items);
    mg_why_t why;
    CHECK_RC(mg_store_items(store, s_item_cb, items, &why), MG_OK);
}

/* Whether the store's items are exactly these records' (bucket, vid). */
static bool s_items_are(mg_store_t *store, mg_record_t *const *records,
                        int count)
{
    items_t items;
    s_items(store, &items);
    if (items.count != count)
        return false;
    for (int i = 0; i < count; i++) {
        uint8_t vid[32];
        s_blake(records[i], vid);
        if (s_item_find(&items, mg_record_bucket(records[i]), vid) < 0)
            return false;
    }
    return true;
}

static void test_vid_and_bucket(void)
{
    mg_store_t *store = s_open("vid.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_record_t *o16 = s_offer(&id, "o16", 1, "Alpha", "16000", "16015");
    mg_record_t *o2a = s_offer(&id, "o2a", 2, "Beta", "20000", "2A004");
    mg_record_t *o971 = s_offer(&id, "o971", 3, "Gamma", "97110", "97101");
    mg_record_t *note = s_note(&id, "n1", 4, "Retour d'expérience");
    mg_record_t *dead = s_tombstone(&id, "offer", "gone", 5);
    mg_record_t *all[] = {o16, o2a, o971, note, dead};
    const int64_t buckets[] = {160, 201, 971, 0, 0};

    for (int i = 0; i < 5; i++) {
        CHECK(s_apply(store, all[i]) == MG_APPLY_NEW);
        uint8_t expected[32], vid[32];
        s_blake(all[i], expected);
        mg_store_vid_of(all[i], vid);
        CHECK(memcmp(vid, expected, 32) == 0);
        CHECK((int64_t) mg_record_bucket(all[i]) == buckets[i]);

        /* The columns hold what the brief says. */
        sqlite3_stmt *stmt = NULL;
        sqlite3_prepare_v2(mg_store_db(store),
                           "SELECT vid, bucket FROM record WHERE rid = ?1",
                           -1, &stmt, NULL);
        sqlite3_bind_text(stmt, 1, mg_record_rid(all[i]), -1, SQLITE_STATIC);
        CHECK(sqlite3_step(stmt) == SQLITE_ROW);
        CHECK(sqlite3_column_bytes(stmt, 0) == 32);
        CHECK(memcmp(sqlite3_column_blob(stmt, 0), expected, 32) == 0);
        CHECK(sqlite3_column_int64(stmt, 1) == buckets[i]);
        sqlite3_finalize(stmt);
    }

    /* vid is unique; the item scan reads an index, not the records. */
    CHECK(s_sql_int(store, "SELECT \"unique\" FROM pragma_index_list('record')"
                           " WHERE name = 'record_vid'") == 1);
    sqlite3_stmt *stmt = NULL;
    sqlite3_prepare_v2(mg_store_db(store),
                       "EXPLAIN QUERY PLAN SELECT bucket, vid FROM record "
                       "ORDER BY bucket, vid",
                       -1, &stmt, NULL);
    bool covering = false;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *detail = (const char *) sqlite3_column_text(stmt, 3);
        if (detail && strstr(detail, "COVERING INDEX record_bucket_vid"))
            covering = true;
        if (detail && strstr(detail, "TEMP B-TREE"))
            covering = false;
    }
    sqlite3_finalize(stmt);
    CHECK(covering);
    CHECK_RC(mg_store_check(store, NULL), MG_OK);

    for (int i = 0; i < 5; i++)
        mg_record_destroy(&all[i]);
    mg_store_destroy(&store);
}

static void test_items(void)
{
    mg_store_t *store = s_open("items.db");
    mg_identity_t a, b;
    mg_identity_generate(&a);
    mg_identity_generate(&b);

    items_t items;
    s_items(store, &items);
    CHECK(items.count == 0);

    mg_record_t *o1 = s_offer(&a, "o1", 1, "Alpha", "16000", NULL);
    mg_record_t *o1b = s_offer(&a, "o1", 2, "Alpha bis", "86000", NULL);
    mg_record_t *o2 = s_offer(&b, "o2", 1, "Beta", "20200", "2B033");
    mg_record_t *n1 = s_note(&b, "n1", 2, "Note");
    mg_record_t *n1_dead = s_tombstone(&b, "note", "n1", 3);
    mg_record_t *other = s_sign(&a, "zzkind", "z1", 3, false, NULL);
    CHECK(s_apply(store, o1) == MG_APPLY_NEW);
    CHECK(s_apply(store, o2) == MG_APPLY_NEW);
    CHECK(s_apply(store, n1) == MG_APPLY_NEW);
    CHECK(s_apply(store, other) == MG_APPLY_NEW);
    mg_record_t *before[] = {o1, o2, n1, other};
    CHECK(s_items_are(store, before, 4));

    /* A replacement and a tombstone: their new versions replace the old
       ones in the set; the tombstone is an item like any other. */
    CHECK(s_apply(store, o1b) == MG_APPLY_REPLACED);
    CHECK(s_apply(store, n1_dead) == MG_APPLY_REPLACED);
    mg_record_t *after[] = {o1b, o2, n1_dead, other};
    CHECK(s_items_are(store, after, 4));

    /* In (bucket, vid) order: the reconciliation key order. */
    s_items(store, &items);
    for (int i = 1; i < items.count; i++)
        CHECK(items.buckets[i - 1] < items.buckets[i]
              || (items.buckets[i - 1] == items.buckets[i]
                  && memcmp(items.vids[i - 1], items.vids[i], 32) < 0));
    CHECK(items.buckets[0] == 0 && items.buckets[3] == 860);

    /* A callback's non-zero value stops the scan and is returned. */
    memset(&items, 0, sizeof items);
    items.stop_after = 2;
    CHECK_RC(mg_store_items(store, s_item_cb, &items, NULL), 7);
    CHECK(items.count == 2);
    CHECK_RC(mg_store_items(store, NULL, NULL, NULL), MG_ERR_ARG);

    mg_record_destroy(&o1);
    mg_record_destroy(&o1b);
    mg_record_destroy(&o2);
    mg_record_destroy(&n1);
    mg_record_destroy(&n1_dead);
    mg_record_destroy(&other);
    mg_store_destroy(&store);
}

/* Whether get_vid returns exactly the bytes of `record`. */
static bool s_get_vid_is(mg_store_t *store, const mg_record_t *record)
{
    uint8_t vid[32];
    mg_store_vid_of(record, vid);
    uint8_t *raw = NULL;
    size_t len = 0;
    mg_why_t why;
    if (mg_store_get_vid(store, vid, &raw, &len, &why) != MG_OK)
        return false;
    size_t want_len;
    const uint8_t *want = mg_record_bytes(record, &want_len);
    bool same = len == want_len && memcmp(raw, want, len) == 0;
    free(raw);
    return same;
}

static void test_get_vid(void)
{
    mg_store_t *store = s_open("getvid.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_record_t *v1 = s_offer(&id, "o1", 1, "Alpha", "16000", NULL);
    mg_record_t *v2 = s_offer(&id, "o1", 2, "Alpha bis", "16000", NULL);
    mg_record_t *dead = s_tombstone(&id, "offer", "o1", 3);
    mg_record_t *other = s_note(&id, "n1", 4, "Note");

    CHECK(s_apply(store, v1) == MG_APPLY_NEW);
    CHECK(s_apply(store, other) == MG_APPLY_NEW);
    CHECK(s_get_vid_is(store, v1));
    CHECK(s_get_vid_is(store, other));

    /* Replaced: the old vid is gone, the new one is served. */
    CHECK(s_apply(store, v2) == MG_APPLY_REPLACED);
    CHECK(s_get_vid_is(store, v2));
    uint8_t vid[32];
    mg_store_vid_of(v1, vid);
    uint8_t *raw = (uint8_t *) "x";
    size_t len = 99;
    mg_why_t why;
    CHECK_RC(mg_store_get_vid(store, vid, &raw, &len, &why),
             MG_ERR_NOT_FOUND);
    CHECK(raw == NULL && len == 0);
    CHECK(why.text[0] != '\0');

    /* A tombstone is a version like any other. */
    CHECK(s_apply(store, dead) == MG_APPLY_REPLACED);
    CHECK(s_get_vid_is(store, dead));
    CHECK(!s_get_vid_is(store, v2));

    memset(vid, 0xEE, sizeof vid);
    CHECK_RC(mg_store_get_vid(store, vid, &raw, &len, &why),
             MG_ERR_NOT_FOUND);
    CHECK_RC(mg_store_get_vid(store, NULL, &raw, &len, &why), MG_ERR_ARG);

    mg_record_destroy(&v1);
    mg_record_destroy(&v2);
    mg_record_destroy(&dead);
    mg_record_destroy(&other);
    mg_store_destroy(&store);
}

/* ------------------------------------------------------------------ */
/* Change feed                                                          */

typedef struct {
    int64_t seqs[16];
    char rids[16][MG_RID_MAX + 1];
    int count;
    int64_t last;
    bool consistent;     /* every row's raw, bucket, vid, author agree */
    int stop_after;      /* > 0: return 5 after that many */
} changes_t;

static int s_change_cb(int64_t seq, const uint8_t author[32], const char *rid,
                       const uint8_t *raw, size_t len, uint64_t bucket,
                       const uint8_t vid[32], void *arg)
{
    changes_t *c = arg;
    /* The bytes decode to the record the other arguments describe. */
    mg_record_t *record = NULL;
    if (mg_record_decode(raw, len, &record, NULL) != MG_OK) {
        c->consistent = false;
    } else {
        uint8_t want[32];
        mg_store_vid_of(record, want);
        if (memcmp(want, vid, 32) != 0 || mg_record_bucket(record) != bucket
            || memcmp(mg_record_author(record), author, 32) != 0
            || strcmp(mg_record_rid(record), rid) != 0)
            c->consistent = false;
        mg_record_destroy(&record);
    }
    if (c->count > 0 && seq <= c->last)
        c->consistent = false;
    if (c->count < 16) {
        c->seqs[c->count] = seq;
        snprintf(c->rids[c->count], sizeof c->rids[c->count], "%s", rid);
    }
    c->count++;
    c->last = seq;
    return c->stop_after > 0 && c->count >= c->stop_after ? 5 : 0;
}

/* The rids of the changes after `after` (at most `limit`), as "a,b,c". */
static const char *s_changes(mg_store_t *store, int64_t after, size_t limit,
                             changes_t *c)
{
    static char text[256];
    memset(c, 0, sizeof *c);
    c->consistent = true;
    mg_why_t why;
    int rc = mg_store_changes_since(store, after, limit, s_change_cb, c, &why);
    if (rc != MG_OK) {
        fprintf(stderr, "changes_since: %d %s\n", rc, why.text);
        return "(error)";
    }
    text[0] = '\0';
    for (int i = 0; i < c->count && i < 16; i++) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof text - used, "%s%s", i ? "," : "",
                 c->rids[i]);
    }
    return text;
}

static void test_changes(void)
{
    mg_store_t *store = s_open("changes.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    int64_t seq = -1;
    CHECK_RC(mg_store_last_seq(store, &seq), MG_OK);
    CHECK(seq == 0);
    changes_t c;
    CHECK_STR(s_changes(store, 0, 0, &c), "");

    mg_record_t *a = s_offer(&id, "a", 1, "A", "16000", NULL);
    mg_record_t *b = s_note(&id, "b", 2, "B");
    mg_record_t *cc = s_offer(&id, "c", 3, "C", "17000", NULL);
    mg_record_t *a2 = s_offer(&id, "a", 4, "A bis", "16000", NULL);
    mg_record_t *b_dead = s_tombstone(&id, "note", "b", 5);
    CHECK(s_apply(store, a) == MG_APPLY_NEW);
    CHECK(s_apply(store, b) == MG_APPLY_NEW);
    CHECK(s_apply(store, cc) == MG_APPLY_NEW);
    CHECK_RC(mg_store_last_seq(store, &seq), MG_OK);
    CHECK(seq == 3);

    CHECK_STR(s_changes(store, 0, 0, &c), "a,b,c");
    CHECK(c.consistent);
    CHECK(c.seqs[0] == 1 && c.seqs[2] == 3);
    CHECK_STR(s_changes(store, 0, 2, &c), "a,b");
    CHECK_STR(s_changes(store, c.last, 2, &c), "c");
    CHECK_STR(s_changes(store, 3, 10, &c), "");
    CHECK_STR(s_changes(store, -5, 1, &c), "a");

    /* A duplicate takes no seq; a new version moves its record to the end
       of the feed under a new seq, and the old seq is gone. */
    CHECK(s_apply(store, a) == MG_APPLY_KEPT);
    CHECK_RC(mg_store_last_seq(store, &seq), MG_OK);
    CHECK(seq == 3);
    CHECK(s_apply(store, a2) == MG_APPLY_REPLACED);
    CHECK(s_apply(store, b_dead) == MG_APPLY_REPLACED);
    CHECK_STR(s_changes(store, 0, 0, &c), "c,a,b");
    CHECK(c.consistent);
    CHECK(c.seqs[0] == 3 && c.seqs[1] == 4 && c.seqs[2] == 5);
    CHECK_STR(s_changes(store, 3, 0, &c), "a,b");

    /* A callback's non-zero value stops the feed and is returned. */
    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    CHECK_RC(mg_store_changes_since(store, 0, 0, s_change_cb, &c, NULL), 5);
    CHECK(c.count == 1);
    CHECK_RC(mg_store_changes_since(store, 0, 0, NULL, NULL, NULL),
             MG_ERR_ARG);

    mg_record_destroy(&a);
    mg_record_destroy(&b);
    mg_record_destroy(&cc);
    mg_record_destroy(&a2);
    mg_record_destroy(&b_dead);
    mg_store_destroy(&store);
}

/* The daemon's loop against a CLI writing in another connection: it
   loads the set (last_seq first, then items), then polls the feed. */
static void test_changes_other_connection(void)
{
    mg_store_t *daemon = s_open("feed.db");
    mg_store_t *cli = s_open("feed.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_record_t *o1 = s_offer(&id, "o1", 1, "Un", "16000", NULL);
    mg_record_t *o2 = s_offer(&id, "o2", 2, "Deux", "16000", NULL);
    mg_record_t *o1b = s_offer(&id, "o1", 3, "Un bis", "16000", NULL);
    mg_record_t *o3 = s_offer(&id, "o3", 4, "Trois", "16000", NULL);

    CHECK(s_apply(cli, o1) == MG_APPLY_NEW);
    int64_t mark = -1;
    CHECK_RC(mg_store_last_seq(daemon, &mark), MG_OK);
    CHECK(mark == 1);
    /* A write between last_seq and items is in both: seen twice, not
       missed. */
    CHECK(s_apply(cli, o2) == MG_APPLY_NEW);
    mg_record_t *loaded[] = {o1, o2};
    CHECK(s_items_are(daemon, loaded, 2));
    changes_t c;
    CHECK_STR(s_changes(daemon, mark, 100, &c), "o2");
    mark = c.last;

    /* The CLI edits one offer and adds another, in one transaction. */
    mg_why_t why;
    CHECK_RC(mg_store_begin(cli, &why), MG_OK);
    CHECK(s_apply(cli, o1b) == MG_APPLY_REPLACED);
    CHECK(s_apply(cli, o3) == MG_APPLY_NEW);
    /* Not committed: the daemon sees nothing yet (WAL snapshot). */
    CHECK_STR(s_changes(daemon, mark, 100, &c), "");
    CHECK_RC(mg_store_commit(cli, &why), MG_OK);
    CHECK_STR(s_changes(daemon, mark, 100, &c), "o1,o3");
    CHECK(c.consistent);
    int64_t last = -1;
    CHECK_RC(mg_store_last_seq(daemon, &last), MG_OK);
    CHECK(last == c.last);

    /* What the daemon applies, the CLI's store sees too. */
    uint8_t fa[16], fb[16];
    CHECK_RC(mg_store_fingerprint(daemon, fa, NULL, &why), MG_OK);
    CHECK_RC(mg_store_fingerprint(cli, fb, NULL, &why), MG_OK);
    CHECK(memcmp(fa, fb, 16) == 0);

    mg_record_destroy(&o1);
    mg_record_destroy(&o2);
    mg_record_destroy(&o1b);
    mg_record_destroy(&o3);
    mg_store_destroy(&cli);
    mg_store_destroy(&daemon);
}

/* ------------------------------------------------------------------ */
/* Fingerprint                                                          */

/* The brief's fingerprint, computed here byte by byte. */
static void s_expected_fp(mg_record_t *const *records, int count,
                          uint8_t out[16])
{
    uint8_t input[40] = {0};
    for (int i = 0; i < count; i++) {
        uint8_t vid[32];
        s_blake(records[i], vid);
        unsigned carry = 0;
        for (int b = 0; b < 32; b++) {
            unsigned s = input[b] + vid[b] + carry;
            input[b] = (uint8_t) s;
            carry = s >> 8;
        }
    }
    for (int b = 0; b < 8; b++)
        input[32 + b] = (uint8_t) ((uint64_t) count >> (8 * b));
    crypto_generichash(out, 16, input, sizeof input, NULL, 0);
}

/* Loads the store's items into a reconciliation set, as the daemon does
   at start. */
static int s_itemset_add(uint64_t bucket, const uint8_t vid[32], void *arg)
{
    mg_item_t item = {.bucket = bucket};
    memcpy(item.id, vid, 32);
    return mg_itemset_add(arg, &item);
}

/* Whether the store's fingerprint is the reconciliation module's
   fingerprint of the same set taken whole. */
static bool s_same_as_recon(mg_store_t *store)
{
    mg_itemset_t *set = mg_itemset_new();
    uint8_t a[16], b[16];
    int64_t count = 0;
    bool same = set && mg_store_items(store, s_itemset_add, set, NULL) == MG_OK
                && mg_store_fingerprint(store, a, &count, NULL) == MG_OK
                && (int64_t) mg_itemset_size(set) == count
                && mg_itemset_fingerprint(set, 0, mg_itemset_size(set), b)
                       == MG_OK
                && memcmp(a, b, 16) == 0;
    mg_itemset_destroy(&set);
    return same;
}

static void test_fingerprint(void)
{
    mg_store_t *s1 = s_open("fp1.db");
    mg_store_t *s2 = s_open("fp2.db");
    mg_store_t *s3 = s_open("fp3.db");
    mg_identity_t a, b;
    mg_identity_generate(&a);
    mg_identity_generate(&b);
    mg_why_t why;

    uint8_t f1[16], f2[16], f3[16], want[16];
    int64_t count = -1;
    CHECK_RC(mg_store_fingerprint(s1, f1, &count, &why), MG_OK);
    CHECK(count == 0);
    s_expected_fp(NULL, 0, want);
    CHECK(memcmp(f1, want, 16) == 0);

    mg_record_t *o1 = s_offer(&a, "o1", 1, "Alpha", "16000", NULL);
    mg_record_t *o1b = s_offer(&a, "o1", 2, "Alpha bis", "16000", NULL);
    mg_record_t *o2 = s_offer(&b, "o2", 1, "Beta", "20000", "2A004");
    mg_record_t *n1 = s_note(&b, "n1", 2, "Note");
    mg_record_t *n1_dead = s_tombstone(&b, "note", "n1", 3);
    mg_record_t *o3 = s_offer(&a, "o3", 3, "Gamma", "86000", NULL);
    mg_record_t *o3_other = s_offer(&a, "o3", 3, "Gamma'", "86000", NULL);

    /* Store 1 sees every version, in one order... */
    mg_record_t *order1[] = {o1, o2, n1, o1b, o3, n1_dead};
    for (int i = 0; i < 6; i++)
        CHECK(s_apply(s1, order1[i]) != 0);
    /* ...store 2 another order, some versions never. */
    mg_record_t *order2[] = {o3, n1_dead, o1b, n1, o2, o1};
    for (int i = 0; i < 6; i++)
        CHECK(s_apply(s2, order2[i]) != 0);
    /* Store 3 differs in one record: another version of o3 with the
       same counter (whichever bytes win, they are not o3's). */
    mg_record_t *order3[] = {o1b, o2, n1_dead, o3_other};
    for (int i = 0; i < 4; i++)
        CHECK(s_apply(s3, order3[i]) != 0);

    int64_t c1 = 0, c2 = 0, c3 = 0;
    CHECK_RC(mg_store_fingerprint(s1, f1, &c1, &why), MG_OK);
    CHECK_RC(mg_store_fingerprint(s2, f2, &c2, &why), MG_OK);
    CHECK_RC(mg_store_fingerprint(s3, f3, &c3, NULL), MG_OK);
    CHECK(c1 == 4 && c2 == 4 && c3 == 4);
    CHECK(memcmp(f1, f2, 16) == 0);
    mg_record_t *current[] = {o1b, o2, n1_dead, o3};
    s_expected_fp(current, 4, want);
    CHECK(memcmp(f1, want, 16) == 0);
    CHECK(s_same_as_recon(s1));
    CHECK(s_same_as_recon(s3));
    bool o3_won = s_apply(s3, o3) == MG_APPLY_REPLACED;
    if (!o3_won) {
        /* o3_other has the greater bytes: store 3 differs for good. */
        CHECK_RC(mg_store_fingerprint(s3, f3, &c3, NULL), MG_OK);
        CHECK(memcmp(f1, f3, 16) != 0);
        /* And stores 1 and 2 converge on it as well. */
        CHECK(s_apply(s1, o3_other) == MG_APPLY_REPLACED);
        CHECK(s_apply(s2, o3_other) == MG_APPLY_REPLACED);
        CHECK_RC(mg_store_fingerprint(s1, f1, NULL, NULL), MG_OK);
        CHECK_RC(mg_store_fingerprint(s2, f2, NULL, NULL), MG_OK);
    } else {
        CHECK(memcmp(f1, f3, 16) != 0); /* measured before o3 won */
        CHECK_RC(mg_store_fingerprint(s3, f3, NULL, NULL), MG_OK);
    }
    CHECK(memcmp(f1, f2, 16) == 0 && memcmp(f1, f3, 16) == 0);

    /* A missing record changes it too. */
    mg_record_t *extra = s_note(&a, "n9", 9, "Encore");
    CHECK(s_apply(s3, extra) == MG_APPLY_NEW);
    CHECK_RC(mg_store_fingerprint(s3, f3, &c3, NULL), MG_OK);
    CHECK(c3 == 5 && memcmp(f1, f3, 16) != 0);

    CHECK_RC(mg_store_fingerprint(s1, NULL, NULL, &why), MG_ERR_ARG);

    mg_record_destroy(&o1);
    mg_record_destroy(&o1b);
    mg_record_destroy(&o2);
    mg_record_destroy(&n1);
    mg_record_destroy(&n1_dead);
    mg_record_destroy(&o3);
    mg_record_destroy(&o3_other);
    mg_record_destroy(&extra);
    mg_store_destroy(&s1);
    mg_store_destroy(&s2);
    mg_store_destroy(&s3);
}

/* Sums of vids wrap modulo 2^256: vids of all 0xFF bytes (-1) twice
   give -2, checked through the SQL column so the carry chain is used. */
static void test_fingerprint_carry(void)
{
    mg_store_t *store = s_open("carry.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_record_t *r1 = s_note(&id, "n1", 1, "Un");
    mg_record_t *r2 = s_note(&id, "n2", 2, "Deux");
    CHECK(s_apply(store, r1) == MG_APPLY_NEW);
    CHECK(s_apply(store, r2) == MG_APPLY_NEW);
    /* Forge the vids (the store trusts its own columns): all ones, the
       largest 256-bit integer, and 1 (little-endian). */
    char sql[300], ones[65], one[65];
    memset(ones, 'f', 64);
    ones[64] = '\0';
    memset(one, '0', 64);
    one[1] = '1';
    one[64] = '\0';
    snprintf(sql, sizeof sql,
             "UPDATE record SET vid = x'%s' WHERE rid = 'n1';"
             "UPDATE record SET vid = x'%s' WHERE rid = 'n2'",
             ones, one);
    CHECK(sqlite3_exec(mg_store_db(store), sql, NULL, NULL, NULL)
          == SQLITE_OK);
    /* -1 + 1 = 0 modulo 2^256. */
    uint8_t input[40] = {0}, want[16], got[16];
    input[32] = 2;
    crypto_generichash(want, 16, input, sizeof input, NULL, 0);
    int64_t count = 0;
    CHECK_RC(mg_store_fingerprint(store, got, &count, NULL), MG_OK);
    CHECK(count == 2);
    CHECK(memcmp(got, want, 16) == 0);
    CHECK(s_same_as_recon(store));
    mg_record_destroy(&r1);
    mg_record_destroy(&r2);
    mg_store_destroy(&store);
}

/* ------------------------------------------------------------------ */
/* Batches                                                              */

static const char *s_offer_rids(mg_store_t *store)
{
    static char text[256];
    text[0] = '\0';
    sqlite3_stmt *stmt = NULL;
    sqlite3_prepare_v2(mg_store_db(store),
                       "SELECT rid FROM offer_idx ORDER BY rid", -1, &stmt,
                       NULL);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof text - used, "%s%s", used ? "," : "",
                 (const char *) sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return text;
}

/* The records of the batch tests: two versions of "a", "b", a note "c",
   "d", a's tombstone, and "boom", which a temporary trigger refuses. */
typedef struct {
    mg_identity_t id;
    mg_record_t *a1, *a2, *b1, *c1, *d1, *a_dead, *boom;
} s_batch_recs_t;

static void s_batch_recs(s_batch_recs_t *r)
{
    mg_identity_generate(&r->id);
    r->a1 = s_offer(&r->id, "a", 1, "A", "16000", NULL);
    r->a2 = s_offer(&r->id, "a", 2, "A bis", "16000", NULL);
    r->b1 = s_offer(&r->id, "b", 3, "B", "16000", NULL);
    r->c1 = s_note(&r->id, "c", 4, "C");
    r->d1 = s_offer(&r->id, "d", 5, "D", "16000", NULL);
    r->a_dead = s_tombstone(&r->id, "offer", "a", 6);
    r->boom = s_offer(&r->id, "boom", 7, "Boom", "16000", NULL);
}

static void s_batch_recs_free(s_batch_recs_t *r)
{
    mg_record_t **all[] = {&r->a1, &r->a2, &r->b1, &r->c1, &r->d1, &r->a_dead, &r->boom};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        mg_record_destroy(all[i]);
}

static void test_apply_batch(void)
{
    mg_store_t *store = s_open("batch.db");
    s_batch_recs_t r;
    s_batch_recs(&r);
    mg_why_t why;

    CHECK(s_apply(store, r.a1) == MG_APPLY_NEW);

    /* Empty batch: nothing to do. */
    CHECK_RC(mg_store_apply_batch(store, NULL, 0, NULL, &why), MG_OK);

    /* New, replaced, kept, and a record twice in the same batch. */
    mg_record_t *batch1[] = {r.b1, r.a2, r.a1, r.c1, r.b1};
    mg_apply_t out[8] = {0};
    CHECK_RC(mg_store_apply_batch(store, batch1, 5, out, &why), MG_OK);
    CHECK(out[0] == MG_APPLY_NEW);
    CHECK(out[1] == MG_APPLY_REPLACED);
    CHECK(out[2] == MG_APPLY_KEPT);
    CHECK(out[3] == MG_APPLY_NEW);
    CHECK(out[4] == MG_APPLY_KEPT);
    CHECK_STR(s_offer_rids(store), "a,b");
    int64_t seq = 0;
    CHECK_RC(mg_store_last_seq(store, &seq), MG_OK);
    CHECK(seq == 4); /* a1, then b1, a2, c1 */
    mg_record_t *now[] = {r.a2, r.b1, r.c1};
    CHECK(s_items_are(store, now, 3));

    /* A failure half-way undoes the whole batch: records, index rows,
       seq and vids. A temporary trigger makes the last record fail. */
    uint8_t fp_before[16], fp_after[16];
    CHECK_RC(mg_store_fingerprint(store, fp_before, NULL, &why), MG_OK);
    CHECK(sqlite3_exec(mg_store_db(store),
                       "CREATE TEMP TRIGGER boom BEFORE INSERT ON main.record "
                       "WHEN NEW.rid = 'boom' "
                       "BEGIN SELECT RAISE(ABORT, 'boom refused'); END",
                       NULL, NULL, NULL)
          == SQLITE_OK);
    mg_record_t *batch2[] = {r.d1, r.a_dead, r.boom};
    memset(out, 0, sizeof out);
    CHECK_RC(mg_store_apply_batch(store, batch2, 3, out, &why), MG_ERR_DB);
    CHECK(strstr(why.text, "boom refused") != NULL);
    CHECK(sqlite3_get_autocommit(mg_store_db(store)));
    CHECK_STR(s_offer_rids(store), "a,b");
    CHECK_RC(mg_store_last_seq(store, &seq), MG_OK);
    CHECK(seq == 4);
    CHECK_RC(mg_store_fingerprint(store, fp_after, NULL, &why), MG_OK);
    CHECK(memcmp(fp_before, fp_after, 16) == 0);
    CHECK(s_items_are(store, now, 3));

    /* Inside the caller's transaction the batch is a savepoint: its
       failure undoes the batch only. */
    CHECK_RC(mg_store_begin(store, &why), MG_OK);
    mg_record_t *only_d[] = {r.d1};
    CHECK_RC(mg_store_apply_batch(store, only_d, 1, out, &why), MG_OK);
    CHECK(out[0] == MG_APPLY_NEW);
    CHECK_RC(mg_store_apply_batch(store, batch2, 3, out, &why), MG_ERR_DB);
    CHECK(!sqlite3_get_autocommit(mg_store_db(store)));
    CHECK_RC(mg_store_commit(store, &why), MG_OK);
    CHECK_STR(s_offer_rids(store), "a,b,d");

    CHECK(sqlite3_exec(mg_store_db(store), "DROP TRIGGER boom", NULL, NULL,
                       NULL)
          == SQLITE_OK);
    CHECK_RC(mg_store_apply_batch(store, batch2, 3, out, &why), MG_OK);
    CHECK(out[0] == MG_APPLY_KEPT);
    CHECK(out[1] == MG_APPLY_REPLACED);
    CHECK(out[2] == MG_APPLY_NEW);
    CHECK_STR(s_offer_rids(store), "b,boom,d");
    CHECK_RC(mg_store_check(store, &why), MG_OK);

    /* A batch of duplicates needs no write lock: it is answered while
       another connection holds it. A batch with news waits, then gives
       up with BUSY and stores nothing. */
    mg_store_t *other = s_open("batch.db");
    sqlite3_busy_timeout(mg_store_db(store), 50);
    CHECK_RC(mg_store_begin(other, &why), MG_OK);
    mg_record_t *dups[] = {r.b1, r.d1, r.c1};
    memset(out, 0, sizeof out);
    CHECK_RC(mg_store_apply_batch(store, dups, 3, out, &why), MG_OK);
    CHECK(out[0] == MG_APPLY_KEPT && out[1] == MG_APPLY_KEPT
          && out[2] == MG_APPLY_KEPT);
    mg_record_t *e1 = s_note(&r.id, "e", 8, "E");
    mg_record_t *news[] = {r.b1, e1};
    CHECK_RC(mg_store_apply_batch(store, news, 2, out, &why), MG_ERR_BUSY);
    CHECK_RC(mg_store_rollback(other), MG_OK);
    CHECK_RC(mg_store_apply_batch(store, news, 2, out, &why), MG_OK);
    CHECK(out[0] == MG_APPLY_KEPT && out[1] == MG_APPLY_NEW);

    /* Bad arguments are refused before anything is written. */
    mg_record_t *holes[] = {r.a1, NULL};
    CHECK_RC(mg_store_apply_batch(store, holes, 2, out, &why), MG_ERR_ARG);
    CHECK(strstr(why.text, "2") != NULL);
    CHECK_RC(mg_store_apply_batch(store, news, 2, NULL, &why), MG_ERR_ARG);

    mg_record_destroy(&e1);
    s_batch_recs_free(&r);
    mg_store_destroy(&other);
    mg_store_destroy(&store);
}

static int s_catch_up(mg_store_t *store, size_t max);

/* mg_store_apply_bulk: the same outcomes as a batch, no savepoint, and a
   failure takes the caller's whole transaction with it. (Its offers'
   search rows are owed: test_index_pending.) */
static void test_apply_bulk(void)
{
    mg_store_t *store = s_open("bulk-apply.db");
    s_batch_recs_t r;
    s_batch_recs(&r);
    mg_why_t why;
    mg_apply_t out[8] = {0};

    /* Only inside a transaction. */
    mg_record_t *one[] = {r.a1};
    CHECK_RC(mg_store_apply_bulk(store, one, 1, out, &why), MG_ERR_ARG);
    CHECK(strstr(why.text, "transaction") != NULL);
    CHECK(s_apply(store, r.a1) == MG_APPLY_NEW);

    /* New, replaced, kept, twice in one call, over two calls. */
    CHECK_RC(mg_store_begin(store, &why), MG_OK);
    mg_record_t *part1[] = {r.b1, r.a2, r.a1};
    CHECK_RC(mg_store_apply_bulk(store, part1, 3, out, &why), MG_OK);
    CHECK(out[0] == MG_APPLY_NEW && out[1] == MG_APPLY_REPLACED && out[2] == MG_APPLY_KEPT);
    mg_record_t *part2[] = {r.c1, r.b1};
    CHECK_RC(mg_store_apply_bulk(store, part2, 2, out, &why), MG_OK);
    CHECK(out[0] == MG_APPLY_NEW && out[1] == MG_APPLY_KEPT);
    CHECK_RC(mg_store_commit(store, &why), MG_OK);
    CHECK_STR(s_offer_rids(store), "");
    s_catch_up(store, 100);
    CHECK_STR(s_offer_rids(store), "a,b");
    mg_record_t *now[] = {r.a2, r.b1, r.c1};
    CHECK(s_items_are(store, now, 3));
    CHECK_RC(mg_store_check(store, &why), MG_OK);

    /* A failure in the second call undoes the first one too: the whole
       transaction is rolled back and the store is as before it. */
    uint8_t fp_before[16], fp_after[16];
    int64_t seq_before = 0, seq_after = 0;
    CHECK_RC(mg_store_fingerprint(store, fp_before, NULL, &why), MG_OK);
    CHECK_RC(mg_store_last_seq(store, &seq_before), MG_OK);
    CHECK(sqlite3_exec(mg_store_db(store),
                       "CREATE TEMP TRIGGER boom BEFORE INSERT ON main.record "
                       "WHEN NEW.rid = 'boom' "
                       "BEGIN SELECT RAISE(ABORT, 'boom refused'); END",
                       NULL, NULL, NULL)
          == SQLITE_OK);
    CHECK_RC(mg_store_begin(store, &why), MG_OK);
    mg_record_t *only_d[] = {r.d1};
    CHECK_RC(mg_store_apply_bulk(store, only_d, 1, out, &why), MG_OK);
    mg_record_t *bad[] = {r.boom};
    CHECK_RC(mg_store_apply_bulk(store, bad, 1, out, &why), MG_ERR_DB);
    CHECK(strstr(why.text, "boom refused") != NULL);
    CHECK(sqlite3_get_autocommit(mg_store_db(store)));
    CHECK_RC(mg_store_commit(store, &why), MG_ERR_ARG);
    CHECK_STR(s_offer_rids(store), "a,b");
    CHECK_RC(mg_store_fingerprint(store, fp_after, NULL, &why), MG_OK);
    CHECK(memcmp(fp_before, fp_after, 16) == 0);
    CHECK_RC(mg_store_last_seq(store, &seq_after), MG_OK);
    CHECK(seq_after == seq_before);
    CHECK(s_items_are(store, now, 3));
    CHECK_RC(mg_store_check(store, &why), MG_OK);

    /* Once the cause is gone the same records go in. */
    CHECK(sqlite3_exec(mg_store_db(store), "DROP TRIGGER boom", NULL, NULL, NULL)
          == SQLITE_OK);
    CHECK_RC(mg_store_begin(store, &why), MG_OK);
    mg_record_t *again[] = {r.d1, r.boom};
    CHECK_RC(mg_store_apply_bulk(store, again, 2, out, &why), MG_OK);
    CHECK(out[0] == MG_APPLY_NEW && out[1] == MG_APPLY_NEW);
    CHECK_RC(mg_store_commit(store, &why), MG_OK);
    s_catch_up(store, 100);
    CHECK_STR(s_offer_rids(store), "a,b,boom,d");

    /* Bad arguments are refused before anything is written. */
    CHECK_RC(mg_store_begin(store, &why), MG_OK);
    mg_record_t *holes[] = {r.a1, NULL};
    CHECK_RC(mg_store_apply_bulk(store, holes, 2, out, &why), MG_ERR_ARG);
    CHECK(!sqlite3_get_autocommit(mg_store_db(store)));
    CHECK_RC(mg_store_rollback(store), MG_OK);

    s_batch_recs_free(&r);
    mg_store_destroy(&store);
}

/* Offers of `store` offering `service` (counted by mg_store_offers). */
static int s_count_one(const mg_record_t *record, void *arg)
{
    (void) record;
    (*(int *) arg)++;
    return 0;
}

static int s_with_service(mg_store_t *store, const char *service)
{
    mg_offer_query_t q = {.service = service};
    int n = 0;
    CHECK_RC(mg_store_offers(store, &q, s_count_one, &n, NULL), MG_OK);
    return n;
}

static int64_t s_term_rows(mg_store_t *store)
{
    sqlite3_stmt *stmt = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(mg_store_db(store), "SELECT COUNT(*) FROM offer_term", -1, &stmt,
                           NULL)
            == SQLITE_OK
        && sqlite3_step(stmt) == SQLITE_ROW)
        n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
}

/* Works through what mg_store_apply_bulk left owed, `max` at a time. */
static int s_catch_up(mg_store_t *store, size_t max)
{
    int calls = 0;
    int64_t left = 1;
    mg_why_t why;
    while (left > 0 && calls < 100) {
        CHECK_RC(mg_store_index_pending(store, max, &left, &why), MG_OK);
        calls++;
    }
    CHECK(left == 0);
    return calls;
}

/* A bulk pull stores the records at once and owes their offers' search
   rows; mg_store_index_pending writes them, sorted, across calls,
   connections and restarts. */
static void test_index_pending(void)
{
    mg_store_t *store = s_open("pending.db");
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_why_t why;
    mg_apply_t out[8];
    static const char loisirs[] = "Loisirs et créations numériques";
    mg_record_t *o1 = s_offer(&id, "o1", 1, "Un", "16000", NULL);
    mg_body_t *b = s_offer_body("o1", "Un bis", "16000", NULL, 0);
    mg_body_set_list_split(b, "services", loisirs, '|');
    mg_record_t *o1b = s_sign(&id, "offer", "o1", 2, false, b);
    mg_body_destroy(&b);
    mg_record_t *o2 = s_offer(&id, "o2", 3, "Deux", "16000", NULL);
    mg_record_t *o3 = s_offer(&id, "o3", 4, "Trois", "16000", NULL);
    mg_record_t *o3b = s_offer(&id, "o3", 5, "Trois bis", "16000", NULL);
    mg_record_t *o4 = s_offer(&id, "o4", 6, "Quatre", "16000", NULL);
    mg_record_t *n1 = s_note(&id, "n1", 7, "Note");
    mg_record_t *gone = s_offer(&id, "o5", 8, "Cinq", "16000", NULL);
    mg_record_t *gone_dead = s_tombstone(&id, "offer", "o5", 9);

    int64_t owed = -1;
    CHECK_RC(mg_store_offers_pending(store, &owed), MG_OK);
    CHECK(owed == 0);
    CHECK_RC(mg_store_index_pending(store, 4, &owed, &why), MG_OK); /* nothing owed */
    CHECK(owed == 0);
    CHECK(s_apply(store, o1) == MG_APPLY_NEW);
    CHECK(s_with_service(store, SERVICE_DEMARCHES) == 1);

    /* The pull: records at once, search rows owed. o1's old rows go at
       once (it was replaced), its new ones are owed. */
    CHECK_RC(mg_store_begin(store, &why), MG_OK);
    mg_record_t *pull[] = {o2, o3, n1, o1b, o4, gone, gone_dead};
    CHECK_RC(mg_store_apply_bulk(store, pull, 7, out, &why), MG_OK);
    CHECK_RC(mg_store_commit(store, &why), MG_OK);
    CHECK_RC(mg_store_offers_pending(store, &owed), MG_OK);
    CHECK(owed >= 4);
    CHECK_STR(s_offer_rids(store), "");
    CHECK(s_with_service(store, SERVICE_DEMARCHES) == 0);
    CHECK(s_term_rows(store) == 0);
    mg_record_t *held[] = {o1b, o2, o3, o4, n1, gone_dead};
    CHECK(s_items_are(store, held, 6));
    CHECK_RC(mg_store_check(store, &why), MG_OK);

    /* A newer version applied one by one meanwhile is indexed at once;
       the catch-up does not index it twice. */
    CHECK(s_apply(store, o3b) == MG_APPLY_REPLACED);
    CHECK_STR(s_offer_rids(store), "o3");
    CHECK(s_term_rows(store) == 2);

    /* Two at a time: several calls, then everything is searchable. */
    CHECK(s_catch_up(store, 2) >= 2);
    CHECK_STR(s_offer_rids(store), "o1,o2,o3,o4");
    CHECK(s_term_rows(store) == 8); /* one service and one public each */
    CHECK(s_with_service(store, SERVICE_DEMARCHES) == 3);
    CHECK(s_with_service(store, loisirs) == 1);
    CHECK_RC(mg_store_offers_pending(store, &owed), MG_OK);
    CHECK(owed == 0);
    CHECK_RC(mg_store_check(store, &why), MG_OK);

    /* Interrupted half-way (the daemon stopped): another connection
       takes over from the mark the first one left. */
    mg_record_t *more[3];
    for (int i = 0; i < 3; i++) {
        char rid[8];
        snprintf(rid, sizeof rid, "m%d", i);
        more[i] = s_offer(&id, rid, (uint64_t) (10 + i), "Plus", "16000", NULL);
    }
    CHECK_RC(mg_store_begin(store, &why), MG_OK);
    CHECK_RC(mg_store_apply_bulk(store, more, 3, out, &why), MG_OK);
    CHECK_RC(mg_store_commit(store, &why), MG_OK);
    CHECK_RC(mg_store_index_pending(store, 1, &owed, &why), MG_OK);
    CHECK(owed > 0);
    mg_store_destroy(&store);
    store = s_open("pending.db");
    CHECK_RC(mg_store_offers_pending(store, &owed), MG_OK);
    CHECK(owed > 0);
    s_catch_up(store, 100);
    CHECK_STR(s_offer_rids(store), "m0,m1,m2,o1,o2,o3,o4");
    CHECK(s_term_rows(store) == 14);

    /* A mark edited by hand: everything is looked at again, nothing is
       written twice. */
    CHECK_RC(mg_store_meta_set(store, "offers_pending_seq", "n'importe quoi", &why), MG_OK);
    CHECK_RC(mg_store_offers_pending(store, &owed), MG_OK);
    CHECK(owed > 0);
    s_catch_up(store, 3);
    CHECK_STR(s_offer_rids(store), "m0,m1,m2,o1,o2,o3,o4");
    CHECK(s_term_rows(store) == 14);
    CHECK_RC(mg_store_check(store, &why), MG_OK);

    mg_record_t *all[] = {o1, o1b, o2, o3, o3b, o4, n1, gone, gone_dead,
                          more[0], more[1], more[2]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        mg_record_destroy(&all[i]);
    mg_store_destroy(&store);
}

/* ------------------------------------------------------------------ */
/* Peers                                                                */

typedef struct {
    mg_peer_row_t rows[8];
    int count;
    mg_store_t *store;  /* when set, each row is updated from the callback */
} peers_t;

static int s_peer_cb(const mg_peer_row_t *row, void *arg)
{
    peers_t *p = arg;
    if (p->count < 8)
        p->rows[p->count] = *row;
    p->count++;
    if (p->store) {
        mg_peer_row_t copy = *row;
        copy.failures++;
        if (mg_store_peer_update(p->store, &copy, NULL) != MG_OK)
            return -100;
    }
    return 0;
}

static void s_peers(mg_store_t *store, peers_t *p)
{
    memset(p, 0, sizeof *p);
    mg_why_t why;
    CHECK_RC(mg_store_peers(store, s_peer_cb, p, &why), MG_OK);
}

static int64_t s_peers_version(mg_store_t *store)
{
    int64_t v = -1;
    CHECK_RC(mg_store_peers_version(store, &v), MG_OK);
    return v;
}

static void test_peers(void)
{
    mg_store_t *store = s_open("peers.db");
    mg_store_t *cli = s_open("peers.db");
    mg_why_t why;
    /* Two keys sharing their first two bytes ("abcd..."), one other. */
    uint8_t k1[32], k2[32], k3[32];
    memset(k1, 0x11, sizeof k1);
    memset(k2, 0x22, sizeof k2);
    memset(k3, 0x33, sizeof k3);
    k1[0] = k2[0] = 0xAB;
    k1[1] = k2[1] = 0xCD;
    k2[2] = 0x99;

    CHECK(s_peers_version(store) == 0);
    peers_t p;
    s_peers(store, &p);
    CHECK(p.count == 0);

    bool added = false;
    CHECK_RC(mg_store_peer_add(store, k1, "tcp://192.0.2.1:7470", "invite",
                               1000, &added, &why), MG_OK);
    CHECK(added);
    CHECK_RC(mg_store_peer_add(store, k3, "tcp://192.0.2.3:7470", "beacon",
                               900, &added, &why), MG_OK);
    CHECK(added);
    CHECK_RC(mg_store_peer_add(store, k2, "tcp://192.0.2.2:7470", "profile",
                               2000, &added, &why), MG_OK);
    /* Same key, another endpoint: another row. */
    CHECK_RC(mg_store_peer_add(store, k1, "tcp://[2001:db8::1]:7470",
                               "inbound", 3000, &added, &why), MG_OK);
    CHECK(added);
    CHECK(s_peers_version(store) == 4);
    /* Already known: nothing changes, not even the source or time. */
    CHECK_RC(mg_store_peer_add(cli, k1, "tcp://192.0.2.1:7470", "beacon",
                               5000, &added, &why), MG_OK);
    CHECK(!added);
    CHECK(s_peers_version(store) == 4);

    s_peers(store, &p);
    CHECK(p.count == 4);
    CHECK(memcmp(p.rows[0].key, k3, 32) == 0);   /* added_ms 900 */
    CHECK_STR(p.rows[1].endpoint, "tcp://192.0.2.1:7470");
    CHECK_STR(p.rows[1].source, "invite");
    CHECK_STR(p.rows[1].state, "new");
    CHECK(p.rows[1].added_ms == 1000);
    CHECK(p.rows[1].last_seen_ms == 0 && p.rows[1].failures == 0
          && p.rows[1].records_in == 0 && p.rows[1].next_try_ms == 0);
    CHECK_STR(p.rows[2].source, "profile");
    CHECK_STR(p.rows[3].endpoint, "tcp://[2001:db8::1]:7470");

    /* Updates write the mutable columns, keep added_ms, and do not bump
       the version. */
    mg_peer_row_t row = p.rows[1];
    snprintf(row.state, sizeof row.state, "live");
    snprintf(row.source, sizeof row.source, "profile");
    row.added_ms = 424242;
    row.last_seen_ms = 7000;
    row.last_sync_ms = 6500;
    row.records_in = 120;
    row.records_out = 30;
    row.failures = 2;
    row.next_try_ms = 9000;
    CHECK_RC(mg_store_peer_update(store, &row, &why), MG_OK);
    CHECK(s_peers_version(store) == 4);
    s_peers(cli, &p);
    CHECK_STR(p.rows[1].state, "live");
    CHECK_STR(p.rows[1].source, "profile");
    CHECK(p.rows[1].added_ms == 1000);
    CHECK(p.rows[1].last_seen_ms == 7000 && p.rows[1].last_sync_ms == 6500);
    CHECK(p.rows[1].records_in == 120 && p.rows[1].records_out == 30);
    CHECK(p.rows[1].failures == 2 && p.rows[1].next_try_ms == 9000);
    snprintf(row.state, sizeof row.state, "sleeping");
    CHECK_RC(mg_store_peer_update(store, &row, &why), MG_ERR_ARG);
    snprintf(row.state, sizeof row.state, "live");
    snprintf(row.source, sizeof row.source, "rumour");
    CHECK_RC(mg_store_peer_update(store, &row, &why), MG_ERR_ARG);
    CHECK_RC(mg_store_peer_add(store, k1, "tcp://x:1", "rumour", 1, &added,
                               &why), MG_ERR_ARG);
    CHECK_RC(mg_store_peer_add(store, k1, "", "invite", 1, &added, &why),
             MG_ERR_ARG);
    char long_endpoint[300];
    memset(long_endpoint, 'x', sizeof long_endpoint - 1);
    long_endpoint[sizeof long_endpoint - 1] = '\0';
    CHECK_RC(mg_store_peer_add(store, k1, long_endpoint, "invite", 1, &added,
                               &why), MG_ERR_ARG);

    /* The callback may write: every row gets one more failure. */
    memset(&p, 0, sizeof p);
    p.store = store;
    CHECK_RC(mg_store_peers(store, s_peer_cb, &p, &why), MG_OK);
    CHECK(p.count == 4);
    s_peers(store, &p);
    CHECK(p.rows[1].failures == 3 && p.rows[0].failures == 1);

    /* Removal: a key prefix shared by two keys is ambiguous and removes
       nothing; a prefix too short is refused; unknown is NOT_FOUND. */
    int removed = -1;
    CHECK_RC(mg_store_peer_rm(cli, "abcd", &removed, &why), MG_ERR_AMBIGUOUS);
    CHECK(removed == 0);
    CHECK(strstr(why.text, "abcd1111") != NULL);
    CHECK(strstr(why.text, "abcd9922") != NULL);
    CHECK_RC(mg_store_peer_rm(cli, "abc", &removed, &why), MG_ERR_ARG);
    CHECK_RC(mg_store_peer_rm(cli, "ffff", &removed, &why), MG_ERR_NOT_FOUND);
    CHECK_RC(mg_store_peer_rm(cli, "tcp://nowhere:1", &removed, &why),
             MG_ERR_NOT_FOUND);
    CHECK_RC(mg_store_peer_rm(cli, "", &removed, &why), MG_ERR_ARG);
    CHECK(s_peers_version(store) == 4);
    s_peers(store, &p);
    CHECK(p.count == 4);

    /* A longer prefix, in upper case, picks k1: both its endpoints go. */
    CHECK_RC(mg_store_peer_rm(cli, "ABCD11", &removed, &why), MG_OK);
    CHECK(removed == 2);
    CHECK(s_peers_version(store) == 5);
    /* The daemon's update of a removed peer says so. */
    row = p.rows[1];
    CHECK_RC(mg_store_peer_update(store, &row, &why), MG_ERR_NOT_FOUND);
    CHECK(strstr(why.text, "192.0.2.1") != NULL);

    /* By endpoint. */
    CHECK_RC(mg_store_peer_rm(cli, "tcp://192.0.2.3:7470", &removed, &why),
             MG_OK);
    CHECK(removed == 1);
    CHECK(s_peers_version(store) == 6);
    /* Now "abcd" names one key only. */
    CHECK_RC(mg_store_peer_rm(cli, "abcd", NULL, &why), MG_OK);
    CHECK(s_peers_version(store) == 7);
    s_peers(store, &p);
    CHECK(p.count == 0);

    /* The full key works as a prefix too. */
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", k3[i]);
    CHECK_RC(mg_store_peer_add(store, k3, "tcp://192.0.2.3:7470", "beacon",
                               900, NULL, &why), MG_OK);
    CHECK_RC(mg_store_peer_rm(store, hex, &removed, &why), MG_OK);
    CHECK(removed == 1);
    CHECK(s_peers_version(cli) == 9);

    mg_store_destroy(&cli);
    mg_store_destroy(&store);
}

/* ------------------------------------------------------------------ */
/* Node status                                                          */

static void test_node_status(void)
{
    mg_store_t *daemon = s_open("status.db");
    mg_store_t *cli = s_open("status.db");
    mg_why_t why;
    int64_t value = -1;
    CHECK_RC(mg_store_meta_get_int(cli, MG_META_NODE_PID, &value),
             MG_ERR_NOT_FOUND);
    CHECK_RC(mg_store_meta_set_int(daemon, MG_META_NODE_PID, 4242, &why),
             MG_OK);
    CHECK_RC(mg_store_meta_set_int(daemon, MG_META_NODE_STARTED_MS,
                                   1712044800123LL, &why), MG_OK);
    CHECK_RC(mg_store_meta_set_int(daemon, MG_META_NODE_HEARTBEAT_MS,
                                   -5, &why), MG_OK);
    CHECK_RC(mg_store_meta_set(daemon, MG_META_NODE_ENDPOINTS,
                               "tcp://0.0.0.0:7470 tcp://[::]:7470", &why),
             MG_OK);
    CHECK_RC(mg_store_meta_get_int(cli, MG_META_NODE_PID, &value), MG_OK);
    CHECK(value == 4242);
    CHECK_RC(mg_store_meta_get_int(cli, MG_META_NODE_STARTED_MS, &value),
             MG_OK);
    CHECK(value == 1712044800123LL);
    CHECK_RC(mg_store_meta_get_int(cli, MG_META_NODE_HEARTBEAT_MS, &value),
             MG_OK);
    CHECK(value == -5);
    char text[128];
    CHECK_RC(mg_store_meta_get(cli, MG_META_NODE_ENDPOINTS, text,
                               sizeof text), MG_OK);
    CHECK_STR(text, "tcp://0.0.0.0:7470 tcp://[::]:7470");
    CHECK_RC(mg_store_meta_get_int(cli, MG_META_NODE_ENDPOINTS, &value),
             MG_ERR_MALFORMED);
    CHECK_RC(mg_store_meta_set_int(daemon, "x", INT64_MIN, &why), MG_OK);
    CHECK_RC(mg_store_meta_get_int(cli, "x", &value), MG_OK);
    CHECK(value == INT64_MIN);
    CHECK_RC(mg_store_meta_set(daemon, "x", "99999999999999999999", &why),
             MG_OK);
    CHECK_RC(mg_store_meta_get_int(cli, "x", &value), MG_ERR_MALFORMED);

    /* A clean stop forgets the pid. */
    CHECK_RC(mg_store_meta_del(daemon, MG_META_NODE_PID, &why), MG_OK);
    CHECK_RC(mg_store_meta_del(daemon, MG_META_NODE_PID, &why), MG_OK);
    CHECK_RC(mg_store_meta_get_int(cli, MG_META_NODE_PID, &value),
             MG_ERR_NOT_FOUND);
    mg_store_destroy(&cli);
    mg_store_destroy(&daemon);
}

/* ------------------------------------------------------------------ */
/* Bulk                                                                 */

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int s_count_item(uint64_t bucket, const uint8_t vid[32], void *arg)
{
    (void) bucket;
    (void) vid;
    (*(int64_t *) arg)++;
    return 0;
}

static int s_count_change(int64_t seq, const uint8_t author[32],
                          const char *rid, const uint8_t *raw, size_t len,
                          uint64_t bucket, const uint8_t vid[32], void *arg)
{
    (void) seq, (void) author, (void) rid, (void) raw, (void) len;
    (void) bucket, (void) vid;
    (*(int64_t *) arg)++;
    return 0;
}

static void test_bulk(void)
{
    int n = 3000;
    const char *env = getenv("MG_STORE_BENCH");
    if (env && atoi(env) > 0)
        n = atoi(env);
    mg_identity_t authors[10];
    for (int i = 0; i < 10; i++)
        mg_identity_generate(&authors[i]);

    /* Sign first (not timed): offers spread over 10 authors and 95
       départements, about 500 bytes each. */
    mg_record_t **records = calloc((size_t) n, sizeof *records);
    size_t bytes = 0;
    uint8_t input[40] = {0};
    for (int i = 0; i < n; i++) {
        char rid[32], nom[48], cp[8];
        snprintf(rid, sizeof rid, "lieu-%07d", i);
        snprintf(nom, sizeof nom, "Espace numérique n°%d", i);
        snprintf(cp, sizeof cp, "%02d%03d", 1 + i % 95 == 20 ? 21 : 1 + i % 95,
                 i % 1000);
        mg_body_t *body = s_offer_body(rid, nom, cp, NULL, 64);
        records[i] = s_sign(&authors[i % 10], "offer", rid,
                            (uint64_t) (i / 10 + 1), false, body);
        mg_body_destroy(&body);
        size_t len;
        mg_record_bytes(records[i], &len);
        bytes += len;
        uint8_t vid[32];
        s_blake(records[i], vid);
        unsigned carry = 0;
        for (int b = 0; b < 32; b++) {
            unsigned s = input[b] + vid[b] + carry;
            input[b] = (uint8_t) s;
            carry = s >> 8;
        }
    }
    for (int b = 0; b < 8; b++)
        input[32 + b] = (uint8_t) ((uint64_t) n >> (8 * b));
    uint8_t want[16];
    crypto_generichash(want, 16, input, sizeof input, NULL, 0);

    mg_store_t *store = s_open("bulk.db");
    const char *pragma = getenv("MG_STORE_BENCH_SQL");
    if (pragma)
        sqlite3_exec(mg_store_db(store), pragma, NULL, NULL, NULL);
    mg_apply_t *out = calloc(BATCH, sizeof *out);
    mg_why_t why;
    int news = 0;
    double t0 = s_now();
    for (int i = 0; i < n; i += BATCH) {
        size_t count = (size_t) (n - i < BATCH ? n - i : BATCH);
        int rc = mg_store_apply_batch(store, records + i, count, out, &why);
        CHECK_RC(rc, MG_OK);
        if (rc != MG_OK) {
            fprintf(stderr, "batch %d: %s\n", i / BATCH, why.text);
            break;
        }
        for (size_t j = 0; j < count; j++)
            news += out[j] == MG_APPLY_NEW;
    }
    double t_apply = s_now() - t0;
    CHECK(news == n);

    /* Again: all duplicates, answered without the write lock. */
    t0 = s_now();
    for (int i = 0; i < n; i += BATCH) {
        size_t count = (size_t) (n - i < BATCH ? n - i : BATCH);
        CHECK_RC(mg_store_apply_batch(store, records + i, count, out, &why),
                 MG_OK);
        CHECK(out[0] == MG_APPLY_KEPT && out[count - 1] == MG_APPLY_KEPT);
    }
    double t_dup = s_now() - t0;

    int64_t items = 0, changes = 0, count = 0;
    t0 = s_now();
    CHECK_RC(mg_store_items(store, s_count_item, &items, &why), MG_OK);
    double t_items = s_now() - t0;
    CHECK(items == n);
    t0 = s_now();
    uint8_t fp[16];
    CHECK_RC(mg_store_fingerprint(store, fp, &count, &why), MG_OK);
    double t_fp = s_now() - t0;
    CHECK(count == n);
    CHECK(memcmp(fp, want, 16) == 0);
    /* The daemon's start: the whole store into a reconciliation set. */
    t0 = s_now();
    mg_itemset_t *set = mg_itemset_new();
    CHECK_RC(mg_store_items(store, s_itemset_add, set, &why), MG_OK);
    uint8_t recon_fp[16];
    CHECK_RC(mg_itemset_fingerprint(set, 0, mg_itemset_size(set), recon_fp),
             MG_OK);
    double t_set = s_now() - t0;
    CHECK(memcmp(fp, recon_fp, 16) == 0);
    mg_itemset_destroy(&set);
    CHECK_RC(mg_store_changes_since(store, 0, 0, s_count_change, &changes,
                                    &why), MG_OK);
    CHECK(changes == n);
    CHECK(s_sql_int(store, "SELECT count(*) FROM offer_idx") == n);

    printf("test_bulk: %d offers (%.0f bytes on average) in batches of %d: "
           "%.2f s, %.0f records/s; duplicates %.0f records/s; items %.1f ms; "
           "fingerprint %.1f ms; items into a reconciliation set %.1f ms\n",
           n, (double) bytes / n, BATCH, t_apply, n / t_apply, n / t_dup,
           t_items * 1e3, t_fp * 1e3, t_set * 1e3);

    for (int i = 0; i < n; i++)
        mg_record_destroy(&records[i]);
    free(records);
    free(out);
    mg_store_destroy(&store);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    snprintf(s_dir, sizeof s_dir, "/tmp/mg_test_store_repl.XXXXXX");
    if (!mkdtemp(s_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_vid_and_bucket();
    test_items();
    test_get_vid();
    test_changes();
    test_changes_other_connection();
    test_fingerprint();
    test_fingerprint_carry();
    test_apply_batch();
    test_apply_bulk();
    test_index_pending();
    test_peers();
    test_node_status();
    test_bulk();
    s_remove_dir();
    return mg_test_done("test_store_repl");
}
