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
#include "mg_text.h"

static char s_root[256];

typedef struct {
    char name[32];
    char db[320];
    mg_identity_t id;
    mg_store_t *store;   /* the test's own connection, like a CLI process */
    zactor_t *actor;
    char endpoint[256];  /* bound endpoint, "" when not listening */
} s_node_t;

static void s_node_init(s_node_t *n, const char *name)
{
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->db, sizeof n->db, "%s/%s.db", s_root, name);
    mg_identity_generate(&n->id);
    if (mg_store_open(n->db, &n->store, NULL) != MG_OK) {
        fprintf(stderr, "cannot open %s\n", n->db);
        exit(1);
    }
    mg_store_meta_set(n->store, "name", name, NULL);
}

/* Signs and applies a record authored by node n (as `maillage` does). */
static void s_author(s_node_t *n, const char *kind, const char *rid, bool deleted,
                     const mg_body_t *body)
{
    mg_why_t why;
    uint64_t counter = 0;
    mg_record_t *rec = NULL;
    mg_apply_t outcome;
    mg_store_begin(n->store, &why);
    mg_store_max_counter(n->store, n->id.pk, &counter);
    int rc = mg_record_sign(&n->id, kind, rid, counter + 1, zclock_time(), deleted,
                            body, &rec, &why);
    if (rc == MG_OK)
        rc = mg_store_apply_record(n->store, rec, &outcome, &why);
    if (rc == MG_OK)
        mg_store_commit(n->store, &why);
    else {
        mg_store_rollback(n->store);
        fprintf(stderr, "author %s: %s\n", rid, why.text);
    }
    mg_record_destroy(&rec);
}

static mg_body_t *s_offer_body(const char *nom, const char *cp)
{
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "id", nom);
    mg_body_set_str(b, "pivot", "21160291600019");
    mg_body_set_str(b, "nom", nom);
    mg_body_set_str(b, "commune", "Angoulême");
    mg_body_set_str(b, "code_postal", cp);
    mg_body_set_str(b, "adresse", "1 place de l'Hôtel de Ville");
    mg_body_set_str(b, "date_maj", "2026-11-28");
    mg_body_set_list_split(b, "services", "Aide aux démarches administratives", '|');
    return b;
}

static void s_offer(s_node_t *n, const char *rid, const char *nom)
{
    mg_body_t *b = s_offer_body(nom, "16000");
    s_author(n, "offer", rid, false, b);
    mg_body_destroy(&b);
}

static void s_profile(s_node_t *n)
{
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "nom", n->name);
    s_author(n, "profile", "profile", false, b);
    mg_body_destroy(&b);
}

static bool s_node_start(s_node_t *n, bool listen, int interval_ms, bool no_push)
{
    mg_node_config_t cfg = {0};
    cfg.db_path = n->db;
    cfg.identity = n->id;
    cfg.interval_ms = interval_ms;
    cfg.no_push = no_push;
    cfg.quiet = true;
    if (listen) {
        cfg.listen[0] = "tcp://127.0.0.1:*";
        cfg.listen_count = 1;
    }
    n->actor = mg_node_new(&cfg);
    if (!n->actor)
        return false;
    /* A test must fail, not hang, if an engine stops answering. */
    zsock_set_rcvtimeo(n->actor, 10000);
    zstr_send(n->actor, "ENDPOINTS");
    char *ep = zstr_recv(n->actor);
    snprintf(n->endpoint, sizeof n->endpoint, "%s", ep ? ep : "");
    zstr_free(&ep);
    return true;
}

static void s_node_stop(s_node_t *n)
{
    zactor_destroy(&n->actor);
}

static void s_node_destroy(s_node_t *n)
{
    s_node_stop(n);
    mg_store_destroy(&n->store);
}

/* n will dial `to` (as after `maillage peer add` with to's invite). */
static void s_link(s_node_t *n, const s_node_t *to)
{
    mg_store_peer_add(n->store, to->id.pk, to->endpoint, "invite", zclock_time(), NULL, NULL);
}

typedef struct {
    size_t records;
    char fp[33];
    size_t live;
    unsigned long long rounds, bytes_out, bytes_in, records_in, records_out, syncs;
} s_stats_t;

static bool s_stats(s_node_t *n, s_stats_t *st)
{
    zstr_send(n->actor, "STATS");
    char *s = zstr_recv(n->actor);
    bool ok = s && sscanf(s, "%zu %32s %zu %llu %llu %llu %llu %llu %llu", &st->records, st->fp,
                          &st->live, &st->rounds, &st->bytes_out, &st->bytes_in,
                          &st->records_in, &st->records_out, &st->syncs) == 9;
    zstr_free(&s);
    return ok;
}

/* Polls `cond` every 20 ms until it holds or `timeout_ms` passes. */
typedef bool (s_cond_fn)(void *arg);
static bool s_wait(s_cond_fn *cond, void *arg, int timeout_ms)
{
    int64_t deadline = zclock_time() + timeout_ms;
    while (zclock_time() < deadline) {
        if (cond(arg))
            return true;
        zclock_sleep(20);
    }
    return cond(arg);
}

/* Does node n hold (author, rid) at exactly this state? */
typedef struct {
    s_node_t *n;
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
    s_node_t *nodes;
    size_t count;
    size_t expect; /* expected records per node, 0: any */
} s_same_t;

static bool s_same(void *arg)
{
    s_same_t *s = arg;
    s_stats_t first, st;
    if (!s_stats(&s->nodes[0], &first))
        return false;
    if (s->expect && first.records != s->expect)
        return false;
    for (size_t i = 1; i < s->count; i++) {
        if (!s_stats(&s->nodes[i], &st) || st.records != first.records
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
    s_node_t n[3];
    s_node_init(&n[0], "A");
    s_node_init(&n[1], "B");
    s_node_init(&n[2], "C");
    for (int i = 0; i < 3; i++)
        s_profile(&n[i]);
    CHECK(s_node_start(&n[1], true, 200, false));
    s_link(&n[0], &n[1]);
    s_link(&n[2], &n[1]);
    CHECK(s_node_start(&n[0], false, 200, false));
    CHECK(s_node_start(&n[2], false, 200, false));

    /* An offer added at A reaches C; its update and deletion too. */
    s_offer(&n[0], "atelier-1", "Atelier smartphone");
    s_has_t h = {&n[2], n[0].id.pk, "atelier-1", "Atelier smartphone", false};
    CHECK(s_wait(s_has, &h, 30000));
    s_offer(&n[0], "atelier-1", "Atelier smartphone seniors");
    h.nom = "Atelier smartphone seniors";
    CHECK(s_wait(s_has, &h, 30000));
    s_author(&n[0], "offer", "atelier-1", true, NULL);
    h.deleted = true;
    CHECK(s_wait(s_has, &h, 30000));

    /* C (outbound only) sends too: its offer reaches A. */
    s_offer(&n[2], "permanence-c", "Permanence de C");
    s_has_t hc = {&n[0], n[2].id.pk, "permanence-c", "Permanence de C", false};
    CHECK(s_wait(s_has, &hc, 30000));

    /* C stopped; A adds 100 offers and deletes 10; C restarted catches up. */
    s_node_stop(&n[2]);
    char rid[32], nom[64];
    for (int i = 0; i < 100; i++) {
        snprintf(rid, sizeof rid, "lot-%03d", i);
        snprintf(nom, sizeof nom, "Offre %d", i);
        s_offer(&n[0], rid, nom);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(rid, sizeof rid, "lot-%03d", i * 7);
        s_author(&n[0], "offer", rid, true, NULL);
    }
    CHECK(s_node_start(&n[2], false, 200, false));
    s_same_t same = {n, 3, 3 + 1 + 1 + 100}; /* profiles, atelier tombstone, permanence, lot */
    CHECK(s_wait(s_same, &same, 60000));
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
        s_node_destroy(&n[i]);
}

/* 10,000 identical records and one difference: the reconciliation costs
   a few hundred bytes, not a list of 10,000 ids (320 KB). */
static void test_reconcile_bytes(void)
{
    s_node_t a, b;
    s_node_init(&a, "R1");
    s_node_init(&b, "R2");
    mg_identity_t x;
    mg_identity_generate(&x);
    enum { N = 10000, BATCH = 1000 };
    mg_record_t **recs = calloc(BATCH, sizeof *recs);
    mg_apply_t *out = calloc(BATCH, sizeof *out);
    mg_body_t *body = s_offer_body("Lieu", "16000");
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
    s_profile(&a);
    s_profile(&b);
    /* Rounds only when asked (SYNC), no eager push. */
    CHECK(s_node_start(&a, true, 3600000, true));
    s_link(&b, &a);
    CHECK(s_node_start(&b, false, 3600000, true));
    /* First sync: the two profiles cross. */
    s_stats_t st;
    bool linked = false;
    for (int64_t end = zclock_time() + 10000; zclock_time() < end && !linked; zclock_sleep(20))
        linked = s_stats(&b, &st) && st.live == 1;
    CHECK(linked);
    s_same_t same = {&a, 2, N + 2};
    s_node_t pair[2] = {a, b};
    same.nodes = pair;
    zstr_send(b.actor, "SYNC");
    CHECK(s_wait(s_same, &same, 60000));

    /* In sync: one round costs a fingerprint each way. */
    s_stats_t b0, b1;
    s_stats(&b, &b0);
    zstr_send(b.actor, "SYNC");
    for (int64_t end = zclock_time() + 5000; zclock_time() < end; zclock_sleep(20))
        if (s_stats(&b, &b1) && b1.syncs > b0.syncs)
            break;
    CHECK(b1.syncs == b0.syncs + 1);
    unsigned long long insync = (b1.bytes_out - b0.bytes_out) + (b1.bytes_in - b0.bytes_in);
    printf("in-sync round, 10,000 records: %llu bytes (both ways)\n", insync);
    CHECK(insync <= 200);

    /* One difference. */
    s_offer(&a, "difference", "La différence");
    same.expect = N + 3;
    s_stats(&b, &b0);
    /* Let A's engine see the new record before B asks. */
    s_stats_t as;
    for (int64_t end = zclock_time() + 5000; zclock_time() < end; zclock_sleep(20))
        if (s_stats(&a, &as) && as.records == N + 3)
            break;
    zstr_send(b.actor, "SYNC");
    CHECK(s_wait(s_same, &same, 10000));
    s_stats(&b, &b1);
    unsigned long long diff = (b1.bytes_out - b0.bytes_out) + (b1.bytes_in - b0.bytes_in);
    printf("one difference among 10,000 records: %llu bytes (both ways, record included)\n", diff);
    CHECK(diff > 0 && diff <= 4000);
    s_node_destroy(&a);
    s_node_destroy(&b);
}

/* 20 nodes, each dialling two others at random (and its successor, so
   the graph is connected); records published at 5 of them reach all. */
static void test_twenty(void)
{
    enum { N = 20 };
    s_node_t *n = calloc(N, sizeof *n);
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "n%02d", i);
        s_node_init(&n[i], name);
        s_profile(&n[i]);
        CHECK(s_node_start(&n[i], true, 200, false));
    }
    for (int i = 0; i < N; i++) {
        s_link(&n[i], &n[(i + 1) % N]);
        s_link(&n[i], &n[randombytes_uniform(N)]);
    }
    for (int k = 0; k < 5; k++) {
        char rid[16];
        snprintf(rid, sizeof rid, "pub-%d", k);
        s_offer(&n[k * 4], rid, rid);
    }
    s_same_t same = {n, N, N + 5};
    CHECK(s_wait(s_same, &same, 90000));
    for (int i = 0; i < N; i++)
        s_node_destroy(&n[i]);
    free(n);
}

/* A client without CURVE, and one sending random bytes, get nothing;
   the node keeps serving its peers meanwhile. */
static void test_hostile_clients(void)
{
    s_node_t a, b;
    s_node_init(&a, "H1");
    s_node_init(&b, "H2");
    s_profile(&a);
    s_profile(&b);
    CHECK(s_node_start(&a, true, 200, false));
    s_link(&b, &a);
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
    s_offer(&a, "apres-attaque", "Toujours là");
    s_has_t h = {&b, a.id.pk, "apres-attaque", "Toujours là", false};
    CHECK(s_wait(s_has, &h, 30000));
    zsock_destroy(&plain);
    s_node_destroy(&a);
    s_node_destroy(&b);
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
    s_node_t n[4];
    const char *names[4] = {"PA", "PB", "PC", "PD"};
    for (int i = 0; i < 4; i++) {
        s_node_init(&n[i], names[i]);
        s_profile(&n[i]);
    }
    for (int i = 0; i < 3; i++)
        CHECK(s_node_start(&n[i], true, 200, false));
    s_link(&n[0], &n[1]);
    s_link(&n[2], &n[1]);
    s_link(&n[3], &n[1]);
    CHECK(s_node_start(&n[3], true, 200, false));
    s_same_t same = {n, 4, 4};
    CHECK(s_wait(s_same, &same, 45000));
    bool linked = false;
    s_stats_t st;
    for (int64_t end = zclock_time() + 15000; zclock_time() < end && !linked; zclock_sleep(20))
        linked = s_stats(&n[3], &st) && st.live >= 3;
    CHECK(linked);
    /* Its peer table names A and C, learnt from their profiles (or from
       their HELLO when they dialled D first, having learnt D's profile). */
    s_learnt_t learnt = {n[0].id.pk, n[2].id.pk, false, false};
    mg_store_peers(n[3].store, s_count_learnt, &learnt, NULL);
    CHECK(learnt.seen_a && learnt.seen_c);
    for (int i = 0; i < 4; i++)
        s_node_destroy(&n[i]);
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
