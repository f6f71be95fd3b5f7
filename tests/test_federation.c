/*  test_federation.c - allow-lists and the coordinator trust policy, on
    real engines over tcp://127.0.0.1. */
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "mg_endorse.h"
#include "mg_node.h"
#include "mg_store.h"
#include "mg_test.h"
#include "mg_testlib.h"
#include "mg_text.h"

static char s_root[256];

static void s_note(mg_test_node_t *n, const char *rid)
{
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "titre", rid);
    mg_test_author(n, "note", rid, false, b);
    mg_body_destroy(&b);
}

static void s_endorse(mg_test_node_t *coord, const mg_test_node_t *subject, bool endorsed)
{
    char hex[65], rid[MG_RID_MAX + 1];
    mg_hex_encode(subject->id.pk, 32, hex);
    mg_endorse_rid(subject->id.pk, rid);
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "subject", hex);
    mg_body_set_str(b, "status", endorsed ? "endorsed" : "revoked");
    mg_test_author(coord, "endorse", rid, false, b);
    mg_body_destroy(&b);
}

static bool s_start(mg_test_node_t *n, mg_node_config_t *cfg)
{
    cfg->interval_ms = 200;
    cfg->quiet = true;
    return mg_test_node_start(n, true, cfg, 10000);
}

static bool s_has(mg_test_node_t *n, const mg_test_node_t *author, const char *rid)
{
    mg_record_t *r = NULL;
    bool ok = mg_store_get(n->store, author->id.pk, rid, &r, NULL) == MG_OK;
    mg_record_destroy(&r);
    return ok;
}

static bool s_wait_has(mg_test_node_t *n, const mg_test_node_t *author, const char *rid, int ms)
{
    for (int64_t end = zclock_time() + ms; zclock_time() < end; zclock_sleep(20))
        if (s_has(n, author, rid))
            return true;
    return s_has(n, author, rid);
}

static size_t s_live(mg_test_node_t *n)
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
    mg_test_node_t a, b, c;
    mg_test_node_init(&a, s_root, "allowA");
    mg_test_node_init(&b, s_root, "allowB");
    mg_test_node_init(&c, s_root, "allowC");
    mg_test_profile(&a);
    mg_test_profile(&b);
    mg_test_profile(&c);
    static mg_node_config_t ca, cb, cc;
    memset(&ca, 0, sizeof ca);
    memset(&cb, 0, sizeof cb);
    memset(&cc, 0, sizeof cc);
    memcpy(ca.allow[0], b.id.pk, 32);
    ca.allow_count = 1;
    CHECK(s_start(&a, &ca));
    mg_test_link(&b, &a);
    mg_test_link(&c, &a);
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
    mg_test_node_t k, a, b, c, d;
    mg_test_node_init(&k, s_root, "coord");
    mg_test_node_init(&a, s_root, "trustA");
    mg_test_node_init(&b, s_root, "trustB");
    mg_test_node_init(&c, s_root, "trustC");
    mg_test_node_init(&d, s_root, "trustD");
    mg_test_node_t *all[5] = {&k, &a, &b, &c, &d};
    for (int i = 0; i < 5; i++)
        mg_test_profile(all[i]);
    s_endorse(&k, &b, true);
    static mg_node_config_t cfg[5];
    memset(cfg, 0, sizeof cfg);
    /* A trusts K; D trusts K too and hears only through A. */
    memcpy(cfg[1].trust[0], k.id.pk, 32);
    cfg[1].trust_count = 1;
    memcpy(cfg[4].trust[0], k.id.pk, 32);
    cfg[4].trust_count = 1;
    CHECK(s_start(&a, &cfg[1]));
    mg_test_link(&k, &a);
    mg_test_link(&b, &a);
    mg_test_link(&c, &a);
    mg_test_link(&d, &a);
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
