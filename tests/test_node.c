/*  test_node.c - real nodes on tcp://127.0.0.1: replication end to end.

    Each node is a real engine (mg_node_new) with its own SQLite file,
    bound on 127.0.0.1 with a port chosen by the system and read back.
    The test writes records through its own connection to a node's store,
    as the CLI does in another process; the engine notices them through
    the change feed. Every wait is a condition polled until a deadline. */
#include <arpa/inet.h>
#include <czmq.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mg_node.h"
#include "mg_offer.h"
#include "mg_store.h"
#include "mg_test.h"
#include "mg_testlib.h"
#include "mg_text.h"

static char s_root[256];

static bool s_node_start(mg_test_node_t *n, bool listen, int interval_ms, bool no_push)
{
    mg_node_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return false;
    cfg->interval_ms = interval_ms;
    cfg->no_push = no_push;
    cfg->quiet = true;
    bool ok = mg_test_node_start(n, listen, cfg, 10000);
    free(cfg);
    return ok;
}

/* Does node n hold (author, rid) at exactly this state? */
typedef struct {
    mg_test_node_t *n;
    const uint8_t *author;
    const char *rid;
    const char *nom;    /* expected nom, or NULL */
    bool deleted;       /* expected a tombstone */
} s_has_t;

static bool s_has(void *arg)
{
    s_has_t *h = arg;
    mg_record_t *r = NULL;
    bool ok = false;
    if (mg_store_get(h->n->store, h->author, h->rid, &r, NULL) == MG_OK) {
        if (h->deleted)
            ok = mg_record_deleted(r);
        else
            ok = !mg_record_deleted(r)
                 && (!h->nom || strcmp(mg_body_str(mg_record_body(r), "nom"), h->nom) == 0);
    }
    mg_record_destroy(&r);
    return ok;
}

/* Do all nodes hold the same set (same count and fingerprint)? */
typedef struct {
    mg_test_node_t *nodes;
    size_t count;
    size_t expect; /* expected records per node, 0: any */
} s_same_t;

static bool s_same(void *arg)
{
    s_same_t *s = arg;
    mg_test_stats_t first, st;
    if (!mg_test_stats(&s->nodes[0], &first))
        return false;
    if (s->expect && first.records != s->expect)
        return false;
    for (size_t i = 1; i < s->count; i++) {
        if (!mg_test_stats(&s->nodes[i], &st) || st.records != first.records
            || strcmp(st.fp, first.fp) != 0)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */

/* A - B - C: A and C do not listen (as behind a NAT): they each dial B
   and everything between them flows through B. */
static void test_line_and_restart(void)
{
    mg_test_node_t n[3];
    mg_test_node_init(&n[0], s_root, "A");
    mg_test_node_init(&n[1], s_root, "B");
    mg_test_node_init(&n[2], s_root, "C");
    for (int i = 0; i < 3; i++)
        mg_test_profile(&n[i]);
    CHECK(s_node_start(&n[1], true, 200, false));
    mg_test_link(&n[0], &n[1]);
    mg_test_link(&n[2], &n[1]);
    CHECK(s_node_start(&n[0], false, 200, false));
    CHECK(s_node_start(&n[2], false, 200, false));

    /* An offer added at A reaches C; its update and deletion too. */
    mg_test_offer(&n[0], "atelier-1", "Atelier smartphone");
    s_has_t h = {&n[2], n[0].id.pk, "atelier-1", "Atelier smartphone", false};
    CHECK(mg_test_wait(s_has, &h, 30000));
    mg_test_offer(&n[0], "atelier-1", "Atelier smartphone seniors");
    h.nom = "Atelier smartphone seniors";
    CHECK(mg_test_wait(s_has, &h, 30000));
    mg_test_author(&n[0], "offer", "atelier-1", true, NULL);
    h.deleted = true;
    CHECK(mg_test_wait(s_has, &h, 30000));

    /* C (outbound only) sends too: its offer reaches A. */
    mg_test_offer(&n[2], "permanence-c", "Permanence de C");
    s_has_t hc = {&n[0], n[2].id.pk, "permanence-c", "Permanence de C", false};
    CHECK(mg_test_wait(s_has, &hc, 30000));

    /* C stopped; A adds 100 offers and deletes 10; C restarted catches up. */
    mg_test_node_stop(&n[2]);
    char rid[32], nom[64];
    for (int i = 0; i < 100; i++) {
        snprintf(rid, sizeof rid, "lot-%03d", i);
        snprintf(nom, sizeof nom, "Offre %d", i);
        mg_test_offer(&n[0], rid, nom);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(rid, sizeof rid, "lot-%03d", i * 7);
        mg_test_author(&n[0], "offer", rid, true, NULL);
    }
    CHECK(s_node_start(&n[2], false, 200, false));
    s_same_t same = {n, 3, 3 + 1 + 1 + 100}; /* profiles, atelier tombstone, permanence, lot */
    CHECK(mg_test_wait(s_same, &same, 60000));
    int64_t live_c = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(rid, sizeof rid, "lot-%03d", i);
        s_has_t hl = {&n[2], n[0].id.pk, rid, NULL, i % 7 == 0 && i / 7 < 10};
        if (s_has(&hl))
            live_c++;
    }
    CHECK(live_c == 100);
    uint8_t fa[16], fc[16];
    int64_t ca = 0, cc = 0;
    mg_store_fingerprint(n[0].store, fa, &ca, NULL);
    mg_store_fingerprint(n[2].store, fc, &cc, NULL);
    CHECK(ca == cc && memcmp(fa, fc, 16) == 0);
    for (int i = 0; i < 3; i++)
        mg_test_node_destroy(&n[i]);
}

/* 10,000 identical records and one difference: the reconciliation costs
   a few hundred bytes, not a list of 10,000 ids (320 KB). */
static void test_reconcile_bytes(void)
{
    mg_test_node_t a, b;
    mg_test_node_init(&a, s_root, "R1");
    mg_test_node_init(&b, s_root, "R2");
    mg_identity_t x;
    mg_identity_generate(&x);
    enum { N = 10000, BATCH = 1000 };
    mg_record_t **recs = calloc(BATCH, sizeof *recs);
    mg_apply_t *out = calloc(BATCH, sizeof *out);
    mg_body_t *body = mg_test_offer_body("Lieu", "Lieu", "16000");
    char rid[32];
    for (int base = 0; base < N; base += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            snprintf(rid, sizeof rid, "r%05d", base + i);
            mg_body_set_str(body, "id", rid);
            mg_record_sign(&x, "offer", rid, (uint64_t) (base + i + 1), 1, false, body,
                           &recs[i], NULL);
        }
        CHECK_RC(mg_store_apply_batch(a.store, recs, BATCH, out, NULL), MG_OK);
        CHECK_RC(mg_store_apply_batch(b.store, recs, BATCH, out, NULL), MG_OK);
        for (int i = 0; i < BATCH; i++)
            mg_record_destroy(&recs[i]);
    }
    mg_body_destroy(&body);
    free(recs);
    free(out);
    mg_test_profile(&a);
    mg_test_profile(&b);
    /* Rounds only when asked (SYNC), no eager push. */
    CHECK(s_node_start(&a, true, 3600000, true));
    mg_test_link(&b, &a);
    CHECK(s_node_start(&b, false, 3600000, true));
    /* First sync: the two profiles cross. */
    mg_test_stats_t st;
    bool linked = false;
    for (int64_t end = zclock_time() + 10000; zclock_time() < end && !linked; zclock_sleep(20))
        linked = mg_test_stats(&b, &st) && st.live == 1;
    CHECK(linked);
    s_same_t same = {&a, 2, N + 2};
    mg_test_node_t pair[2] = {a, b};
    same.nodes = pair;
    zstr_send(b.actor, "SYNC");
    CHECK(mg_test_wait(s_same, &same, 60000));

    /* In sync: one round costs a fingerprint each way. */
    mg_test_stats_t b0, b1;
    mg_test_stats(&b, &b0);
    zstr_send(b.actor, "SYNC");
    for (int64_t end = zclock_time() + 5000; zclock_time() < end; zclock_sleep(20))
        if (mg_test_stats(&b, &b1) && b1.syncs > b0.syncs)
            break;
    CHECK(b1.syncs == b0.syncs + 1);
    unsigned long long insync = (b1.bytes_out - b0.bytes_out) + (b1.bytes_in - b0.bytes_in);
    printf("in-sync round, 10,000 records: %llu bytes (both ways)\n", insync);
    CHECK(insync <= 200);

    /* One difference. */
    mg_test_offer(&a, "difference", "La différence");
    same.expect = N + 3;
    mg_test_stats(&b, &b0);
    /* Let A's engine see the new record before B asks. */
    mg_test_stats_t as;
    for (int64_t end = zclock_time() + 5000; zclock_time() < end; zclock_sleep(20))
        if (mg_test_stats(&a, &as) && as.records == N + 3)
            break;
    zstr_send(b.actor, "SYNC");
    CHECK(mg_test_wait(s_same, &same, 10000));
    mg_test_stats(&b, &b1);
    unsigned long long diff = (b1.bytes_out - b0.bytes_out) + (b1.bytes_in - b0.bytes_in);
    printf("one difference among 10,000 records: %llu bytes (both ways, record included)\n", diff);
    CHECK(diff > 0 && diff <= 4000);
    mg_test_node_destroy(&a);
    mg_test_node_destroy(&b);
}

/* 20 nodes, each dialling two others at random (and its successor, so
   the graph is connected); records published at 5 of them reach all. */
static void test_twenty(void)
{
    enum { N = 20 };
    mg_test_node_t *n = calloc(N, sizeof *n);
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "n%02d", i);
        mg_test_node_init(&n[i], s_root, name);
        mg_test_profile(&n[i]);
        CHECK(s_node_start(&n[i], true, 200, false));
    }
    for (int i = 0; i < N; i++) {
        mg_test_link(&n[i], &n[(i + 1) % N]);
        mg_test_link(&n[i], &n[randombytes_uniform(N)]);
    }
    for (int k = 0; k < 5; k++) {
        char rid[16];
        snprintf(rid, sizeof rid, "pub-%d", k);
        mg_test_offer(&n[k * 4], rid, rid);
    }
    s_same_t same = {n, N, N + 5};
    CHECK(mg_test_wait(s_same, &same, 90000));
    for (int i = 0; i < N; i++)
        mg_test_node_destroy(&n[i]);
    free(n);
}

/* A client without CURVE, and one sending random bytes, get nothing;
   the node keeps serving its peers meanwhile. */
static void test_hostile_clients(void)
{
    mg_test_node_t a, b;
    mg_test_node_init(&a, s_root, "H1");
    mg_test_node_init(&b, s_root, "H2");
    mg_test_profile(&a);
    mg_test_profile(&b);
    CHECK(s_node_start(&a, true, 200, false));
    mg_test_link(&b, &a);
    CHECK(s_node_start(&b, false, 200, false));

    /* Plain ZeroMQ DEALER, no CURVE. */
    zsock_t *plain = zsock_new_dealer(a.endpoint);
    CHECK(plain != NULL);
    zstr_send(plain, "bonjour");
    zpoller_t *poller = zpoller_new(plain, NULL);
    CHECK(zpoller_wait(poller, 1000) == NULL);
    zpoller_destroy(&poller);

    /* Raw TCP with random bytes: at most the 64-byte ZMTP greeting comes
       back, never data, and the connection is closed. */
    int port = atoi(strrchr(a.endpoint, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    uint8_t junk[4096];
    randombytes_buf(junk, sizeof junk);
    CHECK(write(fd, junk, sizeof junk) > 0);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t got = 0;
    uint8_t buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        got += (size_t) r;
    close(fd);
    CHECK(got <= 64);

    /* Meanwhile the real peer is served. */
    mg_test_offer(&a, "apres-attaque", "Toujours là");
    s_has_t h = {&b, a.id.pk, "apres-attaque", "Toujours là", false};
    CHECK(mg_test_wait(s_has, &h, 30000));
    zsock_destroy(&plain);
    mg_test_node_destroy(&a);
    mg_test_node_destroy(&b);
}

typedef struct {
    const uint8_t *a, *c; /* the keys D was never told about */
    bool seen_a, seen_c;  /* a row for them, not from an invite */
} s_learnt_t;

static int s_count_learnt(const mg_peer_row_t *row, void *arg)
{
    s_learnt_t *l = arg;
    if (strcmp(row->source, "invite") != 0 && row->endpoint[0]) {
        l->seen_a |= memcmp(row->key, l->a, 32) == 0;
        l->seen_c |= memcmp(row->key, l->c, 32) == 0;
    }
    return 0;
}

/* Peer exchange: D knows only B, and comes to hold links to A and C,
   learnt from their signed profiles. */
static void test_peer_exchange(void)
{
    mg_test_node_t n[4];
    const char *names[4] = {"PA", "PB", "PC", "PD"};
    for (int i = 0; i < 4; i++) {
        mg_test_node_init(&n[i], s_root, names[i]);
        mg_test_profile(&n[i]);
    }
    for (int i = 0; i < 3; i++)
        CHECK(s_node_start(&n[i], true, 200, false));
    mg_test_link(&n[0], &n[1]);
    mg_test_link(&n[2], &n[1]);
    mg_test_link(&n[3], &n[1]);
    CHECK(s_node_start(&n[3], true, 200, false));
    s_same_t same = {n, 4, 4};
    CHECK(mg_test_wait(s_same, &same, 45000));
    bool linked = false;
    mg_test_stats_t st;
    for (int64_t end = zclock_time() + 15000; zclock_time() < end && !linked; zclock_sleep(20))
        linked = mg_test_stats(&n[3], &st) && st.live >= 3;
    CHECK(linked);
    /* Its peer table names A and C, learnt from their profiles (or from
       their HELLO when they dialled D first, having learnt D's profile). */
    s_learnt_t learnt = {n[0].id.pk, n[2].id.pk, false, false};
    mg_store_peers(n[3].store, s_count_learnt, &learnt, NULL);
    CHECK(learnt.seen_a && learnt.seen_c);
    for (int i = 0; i < 4; i++)
        mg_test_node_destroy(&n[i]);
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(stderr);
    snprintf(s_root, sizeof s_root, "/tmp/mg-test-node-XXXXXX");
    if (!mkdtemp(s_root))
        return 1;
    test_line_and_restart();
    test_reconcile_bytes();
    test_hostile_clients();
    test_peer_exchange();
    test_twenty();
    int rc = mg_test_done("test_node");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_root);
    if (rc == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_root);
    return rc;
}
