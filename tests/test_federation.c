/*  test_federation.c - allow-lists and the coordinator trust policy, on
    real engines over tcp://127.0.0.1. */
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "mg_endorse.h"
#include "mg_node.h"
#include "mg_store.h"
#include "mg_test.h"
#include "mg_text.h"

static char s_root[256];

typedef struct {
    char name[32];
    char db[320];
    mg_identity_t id;
    mg_store_t *store;
    zactor_t *actor;
    char endpoint[256];
} s_node_t;

static void s_init(s_node_t *n, const char *name)
{
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->db, sizeof n->db, "%s/%s.db", s_root, name);
    mg_identity_generate(&n->id);
    if (mg_store_open(n->db, &n->store, NULL) != MG_OK)
        exit(1);
}

static void s_author(s_node_t *n, const char *kind, const char *rid, mg_body_t *body)
{
    uint64_t counter = 0;
    mg_record_t *rec = NULL;
    mg_apply_t outcome;
    mg_why_t why;
    mg_store_begin(n->store, &why);
    mg_store_max_counter(n->store, n->id.pk, &counter);
    if (mg_record_sign(&n->id, kind, rid, counter + 1, zclock_time(), false, body, &rec, &why)
            == MG_OK
        && mg_store_apply_record(n->store, rec, &outcome, &why) == MG_OK)
        mg_store_commit(n->store, &why);
    else {
        fprintf(stderr, "author %s: %s\n", rid, why.text);
        mg_store_rollback(n->store);
    }
    mg_record_destroy(&rec);
}

static void s_profile(s_node_t *n)
{
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "nom", n->name);
    s_author(n, "profile", "profile", b);
    mg_body_destroy(&b);
}

static void s_note(s_node_t *n, const char *rid)
{
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "titre", rid);
    s_author(n, "note", rid, b);
    mg_body_destroy(&b);
}

static void s_endorse(s_node_t *coord, const s_node_t *subject, bool endorsed)
{
    char hex[65], rid[MG_RID_MAX + 1];
    mg_hex_encode(subject->id.pk, 32, hex);
    mg_endorse_rid(subject->id.pk, rid);
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "subject", hex);
    mg_body_set_str(b, "status", endorsed ? "endorsed" : "revoked");
    s_author(coord, "endorse", rid, b);
    mg_body_destroy(&b);
}

static bool s_start(s_node_t *n, mg_node_config_t *cfg)
{
    cfg->db_path = n->db;
    cfg->identity = n->id;
    cfg->interval_ms = 200;
    cfg->quiet = true;
    cfg->listen[0] = "tcp://127.0.0.1:*";
    cfg->listen_count = 1;
    n->actor = mg_node_new(cfg);
    if (!n->actor)
        return false;
    zsock_set_rcvtimeo(n->actor, 10000);
    zstr_send(n->actor, "ENDPOINTS");
    char *ep = zstr_recv(n->actor);
    snprintf(n->endpoint, sizeof n->endpoint, "%s", ep ? ep : "");
    zstr_free(&ep);
    return true;
}

static void s_link(s_node_t *n, const s_node_t *to)
{
    mg_store_peer_add(n->store, to->id.pk, to->endpoint, "invite", zclock_time(), NULL, NULL);
}

static bool s_has(s_node_t *n, const s_node_t *author, const char *rid)
{
    mg_record_t *r = NULL;
    bool ok = mg_store_get(n->store, author->id.pk, rid, &r, NULL) == MG_OK;
    mg_record_destroy(&r);
    return ok;
}

static bool s_wait_has(s_node_t *n, const s_node_t *author, const char *rid, int ms)
{
    for (int64_t end = zclock_time() + ms; zclock_time() < end; zclock_sleep(20))
        if (s_has(n, author, rid))
            return true;
    return s_has(n, author, rid);
}

static size_t s_live(s_node_t *n)
{
    zstr_send(n->actor, "STATS");
    char *s = zstr_recv(n->actor);
    size_t records = 0, live = 0;
    char fp[40];
    if (s)
        sscanf(s, "%zu %39s %zu", &records, fp, &live);
    zstr_free(&s);
    return live;
}

/* A node with an allow-list links with listed keys only. */
static void test_allow_list(void)
{
    s_node_t a, b, c;
    s_init(&a, "allowA");
    s_init(&b, "allowB");
    s_init(&c, "allowC");
    s_profile(&a);
    s_profile(&b);
    s_profile(&c);
    static mg_node_config_t ca, cb, cc;
    memset(&ca, 0, sizeof ca);
    memset(&cb, 0, sizeof cb);
    memset(&cc, 0, sizeof cc);
    memcpy(ca.allow[0], b.id.pk, 32);
    ca.allow_count = 1;
    CHECK(s_start(&a, &ca));
    s_link(&b, &a);
    s_link(&c, &a);
    CHECK(s_start(&b, &cb));
    CHECK(s_start(&c, &cc));
    s_note(&b, "note-b");
    s_note(&c, "note-c");
    CHECK(s_wait_has(&a, &b, "note-b", 10000));
    /* C's link never comes up: give it the time B needed, several times. */
    CHECK(!s_wait_has(&a, &c, "note-c", 3000));
    CHECK(s_live(&c) == 0);
    zactor_destroy(&a.actor);
    zactor_destroy(&b.actor);
    zactor_destroy(&c.actor);
    mg_store_destroy(&a.store);
    mg_store_destroy(&b.store);
    mg_store_destroy(&c.store);
}

/* A node trusting coordinator K keeps notes only from structures K
   endorses, relays nothing else, and follows revocations. */
static void test_trust(void)
{
    s_node_t k, a, b, c, d;
    s_init(&k, "coord");
    s_init(&a, "trustA");
    s_init(&b, "trustB");
    s_init(&c, "trustC");
    s_init(&d, "trustD");
    s_node_t *all[5] = {&k, &a, &b, &c, &d};
    for (int i = 0; i < 5; i++)
        s_profile(all[i]);
    s_endorse(&k, &b, true);
    static mg_node_config_t cfg[5];
    memset(cfg, 0, sizeof cfg);
    /* A trusts K; D trusts K too and hears only through A. */
    memcpy(cfg[1].trust[0], k.id.pk, 32);
    cfg[1].trust_count = 1;
    memcpy(cfg[4].trust[0], k.id.pk, 32);
    cfg[4].trust_count = 1;
    CHECK(s_start(&a, &cfg[1]));
    s_link(&k, &a);
    s_link(&b, &a);
    s_link(&c, &a);
    s_link(&d, &a);
    CHECK(s_start(&k, &cfg[0]));
    CHECK(s_start(&b, &cfg[2]));
    CHECK(s_start(&c, &cfg[3]));
    CHECK(s_start(&d, &cfg[4]));
    s_note(&b, "note-b1");
    s_note(&c, "note-c1");
    s_note(&k, "note-k1");
    CHECK(s_wait_has(&a, &b, "note-b1", 10000));
    CHECK(s_wait_has(&a, &k, "note-k1", 10000));
    CHECK(s_wait_has(&d, &b, "note-b1", 10000));
    /* C is not endorsed: its note is neither kept at A nor relayed to D,
       while its profile (endpoints) is. */
    CHECK(s_wait_has(&a, &c, "profile", 10000));
    CHECK(!s_wait_has(&a, &c, "note-c1", 2000));
    CHECK(!s_has(&d, &c, "note-c1"));
    /* K endorses C: C's note now reaches A (anti-entropy asks again). */
    s_endorse(&k, &c, true);
    CHECK(s_wait_has(&a, &c, "note-c1", 10000));
    /* K revokes B: B's new notes are refused. */
    s_endorse(&k, &b, false);
    char rid[MG_RID_MAX + 1];
    mg_endorse_rid(b.id.pk, rid);
    mg_record_t *r = NULL;
    bool revoked_seen = false;
    for (int64_t end = zclock_time() + 10000; zclock_time() < end && !revoked_seen; zclock_sleep(20)) {
        if (mg_store_get(a.store, k.id.pk, rid, &r, NULL) == MG_OK)
            revoked_seen = strcmp(mg_body_str(mg_record_body(r), "status"), "revoked") == 0;
        mg_record_destroy(&r);
    }
    CHECK(revoked_seen);
    s_note(&b, "note-b2");
    CHECK(!s_wait_has(&a, &b, "note-b2", 2000));
    for (int i = 0; i < 5; i++) {
        zactor_destroy(&all[i]->actor);
        mg_store_destroy(&all[i]->store);
    }
}

int main(void)
{
    zsys_init();
    snprintf(s_root, sizeof s_root, "/tmp/mg-test-fed-XXXXXX");
    if (!mkdtemp(s_root))
        return 1;
    test_allow_list();
    test_trust();
    int rc = mg_test_done("test_federation");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_root);
    if (rc == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_root);
    return rc;
}
