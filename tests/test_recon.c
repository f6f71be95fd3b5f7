/*  test_recon.c - range-based set reconciliation: item sets, sessions
    between two sets in one process, costs, golden vectors, hostile input. */
#include <msgpack.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_recon.h"
#include "mg_test.h"

/* ------------------------------------------------------------------ */
/* Helpers */

/* splitmix64: a deterministic PRNG, so every run tests the same sets. */
static uint64_t s_rng_state = 0x6d61696c6c616765ULL; /* "maillage" */

static uint64_t s_rand(void)
{
    uint64_t z = (s_rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void s_rand_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t) s_rand();
}

/* A random item: one of 101 territories (0 = none, 1..100 like the
   départements), a random id (ids are hashes). */
static mg_item_t s_rand_item(void)
{
    mg_item_t it;
    it.bucket = s_rand() % 101;
    s_rand_bytes(it.id, sizeof it.id);
    return it;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void s_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Two sets with `common` shared items, plus only_a items in a alone and
   only_b in b alone. */
static void s_make_pair(size_t common, size_t only_a, size_t only_b,
                        mg_itemset_t **a, mg_itemset_t **b)
{
    *a = mg_itemset_new();
    *b = mg_itemset_new();
    mg_item_t *items = malloc((common + 1) * sizeof *items);
    for (size_t i = 0; i < common; i++)
        items[i] = s_rand_item();
    mg_itemset_add_many(*a, items, common);
    mg_itemset_add_many(*b, items, common);
    free(items);
    for (size_t i = 0; i < only_a; i++) {
        mg_item_t it = s_rand_item();
        mg_itemset_add(*a, &it);
    }
    for (size_t i = 0; i < only_b; i++) {
        mg_item_t it = s_rand_item();
        mg_itemset_add(*b, &it);
    }
}

static int s_idcmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* The ids of `self` minus the ids of `other`, sorted (brute force). */
static uint8_t *s_minus(const mg_itemset_t *self, const mg_itemset_t *other,
                        size_t *count)
{
    size_t n = mg_itemset_size(self);
    uint8_t *out = malloc(n * 32 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const mg_item_t *it = mg_itemset_item_at(self, i);
        size_t j = mg_itemset_lower_bound(other, it);
        const mg_item_t *o = mg_itemset_item_at(other, j);
        if (o && mg_item_cmp(o, it) == 0)
            continue;
        memcpy(out + 32 * k++, it->id, 32);
    }
    qsort(out, k, 32, s_idcmp);
    *count = k;
    return out;
}

/* The outcome of one session. */
typedef struct {
    int rc;                  /* first error, or MG_OK */
    size_t rounds;           /* round trips */
    uint64_t sent;           /* bytes initiator -> responder */
    uint64_t received;       /* bytes responder -> initiator */
    size_t first_len;        /* bytes of the first message */
    size_t max_msg;          /* longest message either way */
    bool exact;              /* have/need equal the brute-force difference */
    bool done;               /* the initiator finished */
    bool verified;           /* its end-of-session check held */
} s_result_t;

/* Optional hook run before every responder turn (to change sets). */
typedef void (*s_hook_fn)(size_t round, void *arg);

/* Runs a whole session: a initiates, b responds. */
static s_result_t s_sync_hook(const mg_itemset_t *a, const mg_itemset_t *b,
                              size_t frame_a, size_t frame_b, bool check,
                              s_hook_fn hook, void *hook_arg)
{
    s_result_t res = { .rc = MG_OK };
    mg_recon_t *ini = mg_recon_new(a, true, frame_a);
    mg_recon_t *rsp = mg_recon_new(b, false, frame_b);
    uint8_t *msg = NULL, *reply = NULL;
    size_t msg_len = 0, reply_len = 0;
    mg_why_t why;
    res.rc = mg_recon_initiate(ini, &msg, &msg_len);
    res.first_len = msg_len;
    while (res.rc == MG_OK && msg && res.rounds < 100000) {
        if (msg_len > res.max_msg)
            res.max_msg = msg_len;
        if (hook)
            hook(res.rounds, hook_arg);
        res.rc = mg_recon_process(rsp, msg, msg_len, &reply, &reply_len, &why);
        free(msg);
        msg = NULL;
        if (res.rc != MG_OK) {
            fprintf(stderr, "responder: %s\n", why.text);
            break;
        }
        if (reply_len > res.max_msg)
            res.max_msg = reply_len;
        res.rc = mg_recon_process(ini, reply, reply_len, &msg, &msg_len, &why);
        free(reply);
        reply = NULL;
        if (res.rc != MG_OK)
            fprintf(stderr, "initiator: %s\n", why.text);
    }
    free(msg);
    res.done = mg_recon_done(ini);
    res.verified = mg_recon_verified(ini);
    mg_recon_stats_t st;
    mg_recon_stats(ini, &st);
    res.rounds = (size_t) st.round_trips;
    res.sent = st.bytes_sent;
    res.received = st.bytes_received;
    if (check) {
        size_t nh, nn, eh, en;
        const uint8_t *have = mg_recon_have(ini, &nh);
        const uint8_t *need = mg_recon_need(ini, &nn);
        uint8_t *want_have = s_minus(a, b, &eh);
        uint8_t *want_need = s_minus(b, a, &en);
        qsort(want_have, eh, 32, s_idcmp);
        qsort(want_need, en, 32, s_idcmp);
        res.exact = nh == eh && nn == en
                    && (nh == 0 || memcmp(have, want_have, 32 * nh) == 0)
                    && (nn == 0 || memcmp(need, want_need, 32 * nn) == 0);
        free(want_have);
        free(want_need);
    }
    mg_recon_destroy(&ini);
    mg_recon_destroy(&rsp);
    return res;
}

static s_result_t s_sync(const mg_itemset_t *a, const mg_itemset_t *b,
                         size_t frame)
{
    return s_sync_hook(a, b, frame, frame, true, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* mg_itemset_t */

/* The fingerprint as docs/reconciliation.md specifies it, computed the
   slow way (byte-wise addition), to check the prefix sums. */
static void s_reference_fp(const mg_item_t *items, size_t n, uint8_t out[16])
{
    uint8_t sum[32] = { 0 };
    for (size_t i = 0; i < n; i++) {
        unsigned carry = 0;
        for (int k = 0; k < 32; k++) {
            unsigned v = sum[k] + items[i].id[k] + carry;
            sum[k] = (uint8_t) v;
            carry = v >> 8;
        }
    }
    uint8_t in[40];
    memcpy(in, sum, 32);
    uint64_t c = n;
    for (int k = 0; k < 8; k++)
        in[32 + k] = (uint8_t) (c >> (8 * k));
    crypto_generichash(out, 16, in, 40, NULL, 0);
}

static void test_itemset(void)
{
    mg_itemset_t *s = mg_itemset_new();
    CHECK(s != NULL);
    CHECK(mg_itemset_size(s) == 0);
    CHECK(mg_itemset_item_at(s, 0) == NULL);

    /* Fingerprint of the empty range: BLAKE2b-128 of 40 zero bytes. */
    uint8_t fp[16], want[16], zeros[40] = { 0 };
    crypto_generichash(want, 16, zeros, 40, NULL, 0);
    CHECK_RC(mg_itemset_fingerprint(s, 0, 0, fp), MG_OK);
    CHECK(memcmp(fp, want, 16) == 0);
    CHECK_RC(mg_itemset_fingerprint(s, 0, 1, fp), MG_ERR_ARG);
    char fph[33];
    s_hex(fp, 16, fph);
    CHECK_STR(fph, "673cbd9a83cb676eba3e0bcd63a2b414");
    /* The vectors of docs/reconciliation.md §3 (computed independently):
       ff..ff + 01 00..00 wraps to 0 modulo 2^256; 00 01 02 .. 1f alone. */
    mg_itemset_t *v = mg_itemset_new();
    mg_item_t w1 = { .bucket = 0 }, w2 = { .bucket = 9 };
    memset(w1.id, 0xff, 32);
    w2.id[0] = 1;
    mg_itemset_add(v, &w1);
    mg_itemset_add(v, &w2);
    mg_itemset_fingerprint(v, 0, 2, fp);
    s_hex(fp, 16, fph);
    CHECK_STR(fph, "a135d7c185e1b3ffdbb07449ec946412");
    mg_itemset_destroy(&v);
    v = mg_itemset_new();
    for (int k = 0; k < 32; k++)
        w1.id[k] = (uint8_t) k;
    mg_itemset_add(v, &w1);
    mg_itemset_fingerprint(v, 0, 1, fp);
    s_hex(fp, 16, fph);
    CHECK_STR(fph, "812aca87498b38dd5fc4a7a690263d98");
    mg_itemset_destroy(&v);

    /* Order: bucket first, then id bytewise; duplicates ignored. */
    mg_item_t a = { .bucket = 2 }, b = { .bucket = 1 }, c = { .bucket = 2 };
    a.id[0] = 0x10;
    b.id[0] = 0xff;
    c.id[0] = 0x10;
    c.id[31] = 1;
    CHECK_RC(mg_itemset_add(s, &a), MG_OK);
    CHECK_RC(mg_itemset_add(s, &b), MG_OK);
    CHECK_RC(mg_itemset_add(s, &c), MG_OK);
    CHECK_RC(mg_itemset_add(s, &a), MG_OK);
    CHECK(mg_itemset_size(s) == 3);
    CHECK(mg_item_cmp(mg_itemset_item_at(s, 0), &b) == 0);
    CHECK(mg_item_cmp(mg_itemset_item_at(s, 1), &a) == 0);
    CHECK(mg_item_cmp(mg_itemset_item_at(s, 2), &c) == 0);
    mg_item_t t2 = { .bucket = 2 }, t3 = { .bucket = 3 };
    CHECK(mg_itemset_lower_bound(s, &t2) == 1);
    CHECK(mg_itemset_lower_bound(s, &t3) == 3);
    CHECK(mg_itemset_lower_bound(s, &c) == 2);
    CHECK_RC(mg_itemset_remove(s, &a), MG_OK);
    CHECK_RC(mg_itemset_remove(s, &a), MG_ERR_NOT_FOUND);
    CHECK(mg_itemset_size(s) == 2);
    CHECK(mg_item_cmp(mg_itemset_item_at(s, 1), &c) == 0);
    mg_itemset_destroy(&s);
    CHECK(s == NULL);
    mg_itemset_destroy(&s);

    /* Fingerprints from prefix sums equal the slow definition, for ranges
       of a set changed in every way the cache must follow. */
    enum { N = 3000 };
    mg_item_t *items = malloc(N * sizeof *items);
    for (size_t i = 0; i < N; i++) {
        items[i] = s_rand_item();
        if (i % 7 == 0)
            memset(items[i].id, 0xff, 24); /* force carries */
    }
    s = mg_itemset_new();
    mg_itemset_add_many(s, items, N / 2);
    CHECK_RC(mg_itemset_fingerprint(s, 0, N / 2, fp), MG_OK);
    mg_itemset_add_many(s, items + N / 2, N - N / 2);
    mg_itemset_add_many(s, items, 100); /* duplicates */
    mg_itemset_remove(s, &items[17]);
    mg_itemset_add(s, &items[17]);
    CHECK(mg_itemset_size(s) == N);
    int bad = 0;
    for (int k = 0; k < 200; k++) {
        size_t lo = s_rand() % (N + 1), hi = s_rand() % (N + 1);
        if (lo > hi) {
            size_t x = lo;
            lo = hi;
            hi = x;
        }
        mg_item_t *copy = malloc((hi - lo + 1) * sizeof *copy);
        for (size_t i = lo; i < hi; i++)
            copy[i - lo] = *mg_itemset_item_at(s, i);
        s_reference_fp(copy, hi - lo, want);
        mg_itemset_fingerprint(s, lo, hi, fp);
        bad += memcmp(fp, want, 16) != 0;
        free(copy);
    }
    CHECK(bad == 0);
    /* A set is the same whatever the order it was built in. */
    mg_itemset_t *r = mg_itemset_new();
    for (size_t i = N; i-- > 0;)
        mg_itemset_add(r, &items[i]);
    CHECK(mg_itemset_size(r) == N);
    uint8_t fr[16];
    mg_itemset_fingerprint(s, 0, N, fp);
    mg_itemset_fingerprint(r, 0, N, fr);
    CHECK(memcmp(fp, fr, 16) == 0);
    CHECK_RC(mg_itemset_prepare(r), MG_OK);
    mg_itemset_destroy(&r);
    mg_itemset_destroy(&s);
    free(items);

    /* 100,000 unsorted items: one sort, not 100,000 insertions. */
    enum { BIG = 100000 };
    items = malloc(BIG * sizeof *items);
    for (size_t i = 0; i < BIG; i++)
        items[i] = s_rand_item();
    double t0 = s_now();
    s = mg_itemset_new();
    for (size_t i = 0; i < BIG; i++)
        mg_itemset_add(s, &items[i]);
    CHECK(mg_itemset_size(s) == BIG);
    mg_itemset_fingerprint(s, 0, BIG, fp);
    double t1 = s_now();
    printf("itemset: 100000 random adds + sort + sums in %.3f s\n", t1 - t0);
    CHECK(t1 - t0 < 5.0);
    for (size_t i = 1; i < BIG; i++)
        if (mg_item_cmp(mg_itemset_item_at(s, i - 1), mg_itemset_item_at(s, i)) >= 0)
            bad++;
    CHECK(bad == 0);
    mg_itemset_destroy(&s);
    free(items);
}

/* ------------------------------------------------------------------ */
/* Sessions */

static void test_api(void)
{
    mg_itemset_t *s = mg_itemset_new();
    CHECK(mg_recon_new(NULL, true, 0) == NULL);
    CHECK(mg_recon_new(s, true, MG_RECON_FRAME_MIN - 1) == NULL);
    CHECK(mg_recon_new(s, true, MG_RECON_FRAME_MAX + 1) == NULL);
    mg_recon_t *rsp = mg_recon_new(s, false, 0);
    mg_recon_t *ini = mg_recon_new(s, true, 0);
    uint8_t *out = NULL;
    size_t len = 0;
    mg_why_t why;
    CHECK_RC(mg_recon_initiate(rsp, &out, &len), MG_ERR_ARG);
    CHECK_RC(mg_recon_set_session(rsp, 7), MG_ERR_ARG);
    /* Session 7: [2, 7] is an empty message of that session. */
    CHECK_RC(mg_recon_set_session(ini, 7), MG_OK);
    CHECK(mg_recon_session(ini) == 7);
    uint8_t empty_msg[] = { 0x92, 0x02, 0x07 };
    /* The full fingerprint of the empty set (docs/reconciliation.md §3),
       which a responder holding nothing puts in every answer. */
    const char *fp_empty = "c410" "673cbd9a83cb676eba3e0bcd63a2b414";
    CHECK_RC(mg_recon_process(ini, empty_msg, 3, &out, &len, &why), MG_ERR_ARG);
    CHECK_RC(mg_recon_initiate(ini, &out, &len), MG_OK);
    CHECK_RC(mg_recon_set_session(ini, 8), MG_ERR_ARG);
    /* An empty set opens with an empty short-id list over everything:
       [2, 7, [nil, bin(0), [0, bin(0)]]]. */
    char hex[256];
    s_hex(out, len, hex);
    CHECK_STR(hex, "930207" "93c0c400" "9200c400");
    free(out);
    CHECK_RC(mg_recon_initiate(ini, &out, &len), MG_ERR_ARG);
    /* The responder's empty set answers with an answer: no bit, no id. */
    uint8_t first[] = { 0x93, 0x02, 0x07, 0x93, 0xc0, 0xc4, 0x00, 0x92, 0x00, 0xc4, 0x00 };
    CHECK_RC(mg_recon_process(rsp, first, sizeof first, &out, &len, &why), MG_OK);
    s_hex(out, len, hex);
    char expect[256];
    snprintf(expect, sizeof expect, "940207%s93c0c400940200c400c400", fp_empty);
    CHECK_STR(hex, expect);
    CHECK(!mg_recon_done(rsp));
    CHECK(mg_recon_session(rsp) == 7);
    uint8_t *reply = out;
    /* The same answer under another session id is refused as stale, and
       leaves the session as it was. */
    uint8_t stale[64];
    memcpy(stale, reply, len);
    stale[2] = 0x08;
    uint8_t *o2 = NULL;
    size_t l2 = 0;
    CHECK_RC(mg_recon_process(ini, stale, len, &o2, &l2, &why), MG_ERR_STALE);
    CHECK(o2 == NULL && !mg_recon_done(ini));
    CHECK_RC(mg_recon_process(ini, reply, len, &out, &len, &why), MG_OK);
    free(reply);
    CHECK(out == NULL && len == 0);
    CHECK(mg_recon_done(ini));
    CHECK(mg_recon_verified(ini));
    size_t n = 1;
    CHECK(mg_recon_have(ini, &n) == NULL && n == 0);
    CHECK_RC(mg_recon_process(ini, empty_msg, 3, &out, &len, &why), MG_ERR_ARG);
    /* A responder answers an empty message with an empty message of the
       same session, with its set's fingerprint. */
    CHECK_RC(mg_recon_process(rsp, empty_msg, 3, &out, &len, &why), MG_OK);
    s_hex(out, len, hex);
    snprintf(expect, sizeof expect, "930207%s", fp_empty);
    CHECK_STR(hex, expect);
    free(out);
    /* A responder refuses what only a responder may send, an initiator
       what only an initiator may send. */
    uint8_t answer_to_rsp[] = { 0x93, 0x02, 0x07, 0x93, 0xc0, 0xc4, 0x00,
                                0x94, 0x02, 0x00, 0xc4, 0x00, 0xc4, 0x00 };
    /* (An answer without the responder's set fingerprint is refused by
       an initiator too.) */
    CHECK_RC(mg_recon_process(rsp, answer_to_rsp, sizeof answer_to_rsp, &out, &len, &why),
             MG_ERR_MALFORMED);
    mg_recon_t *ini2 = mg_recon_new(s, true, 0);
    mg_recon_set_session(ini2, 7);
    CHECK_RC(mg_recon_initiate(ini2, &out, &len), MG_OK);
    free(out);
    CHECK_RC(mg_recon_process(ini2, first, sizeof first, &out, &len, &why), MG_ERR_MALFORMED);
    CHECK(!mg_recon_done(ini2));
    mg_recon_destroy(&ini2);
    mg_recon_destroy(&ini);
    mg_recon_destroy(&rsp);
    CHECK(ini == NULL);
    mg_recon_destroy(&ini);
    mg_itemset_destroy(&s);
}

static void test_sessions(void)
{
    mg_itemset_t *a, *b;
    s_result_t r;

    /* In sync: one fingerprint, one empty reply. */
    s_make_pair(10000, 0, 0, &a, &b);
    r = s_sync(a, b, 0);
    printf("identical 10000: %zu round trip(s), first message %zu bytes, "
           "%llu + %llu bytes\n", r.rounds, r.first_len,
           (unsigned long long) r.sent, (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    CHECK(r.rounds == 1);
    CHECK(r.first_len < 100);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);

    /* One difference on each side. */
    s_make_pair(10000, 1, 1, &a, &b);
    r = s_sync(a, b, 0);
    printf("10000 + 1 each side: %zu round trips, %llu + %llu bytes\n",
           r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    CHECK(r.rounds <= 6);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);

    /* 100 differences. */
    s_make_pair(10000, 50, 50, &a, &b);
    r = s_sync(a, b, 0);
    printf("10000 + 50 each side: %zu round trips, %llu + %llu bytes\n",
           r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    CHECK(r.rounds <= 6);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);

    /* Bootstrap, both ways: an empty node learns 10,000 ids (O(n) bytes,
       as it must), and a full node learns the peer has nothing. */
    s_make_pair(0, 0, 10000, &a, &b);
    r = s_sync(a, b, 0);
    printf("bootstrap empty <- 10000: %zu round trips, %llu + %llu bytes\n",
           r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    CHECK(r.max_msg <= MG_RECON_FRAME_DEFAULT);
    CHECK(r.received <= 10000 * MG_RECON_ID_BYTES + 2000);
    r = s_sync(b, a, 0);
    printf("bootstrap 10000 -> empty: %zu round trips, %llu + %llu bytes\n",
           r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified && r.rounds == 1);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);

    /* 100,000 in sync: O(1) bytes each way. */
    s_make_pair(100000, 0, 0, &a, &b);
    r = s_sync(a, b, 0);
    printf("identical 100000: %zu round trip(s), %llu + %llu bytes\n",
           r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified && r.rounds == 1);
    CHECK(r.sent <= 100 && r.received <= 100);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);
}

/* Costs for d differences among n items, split at random between the two
   sides. Prints the table of docs/reconciliation.md §8. */
static void test_costs(void)
{
    static const size_t ns[] = { 1000, 10000, 100000 };
    static const size_t ds[] = { 1, 10, 100 };
    printf("\n| n | d | round trips | bytes i->r | bytes r->i | total | bound |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t ni = 0; ni < 3; ni++) {
        for (size_t di = 0; di < 3; di++) {
            size_t n = ns[ni], d = ds[di];
            size_t only_a = 0;
            for (size_t k = 0; k < d; k++)
                only_a += s_rand() & 1;
            mg_itemset_t *a, *b;
            s_make_pair(n - d, only_a, d - only_a, &a, &b);
            s_result_t r = s_sync(a, b, 0);
            /* Per difference: log16(n) levels of at most 16 short
               fingerprint ranges of at most 12 bytes, one initiator's
               list of at most 63 short ids of 4 bytes, and the id itself
               (32 bytes) once in an answer or a list, both ways at worst:
               see docs/reconciliation.md §5. */
            size_t levels = 0;
            for (size_t m = n; m >= MG_RECON_SPLIT_MIN; m /= MG_RECON_BRANCH)
                levels++;
            uint64_t bound = 200 + (uint64_t) d * (levels * 16 * 12 + 64 * 4 + 2 * 34);
            uint64_t total = r.sent + r.received;
            printf("| %zu | %zu | %zu | %llu | %llu | %llu | %llu |\n", n, d,
                   r.rounds, (unsigned long long) r.sent,
                   (unsigned long long) r.received,
                   (unsigned long long) total, (unsigned long long) bound);
            CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
            CHECK(total <= bound);
            /* And the flat bound of the brief: 64 ranges of 40 bytes. */
            CHECK(total <= 200 + (uint64_t) d * 64 * 40);
            CHECK(r.rounds <= levels + 2);
            mg_itemset_destroy(&a);
            mg_itemset_destroy(&b);
        }
    }
    printf("\n");
}

/* Messages cut by the frame limit: many differences and bootstraps with
   the smallest frames still give the exact result, and no message is
   longer than its sender's limit. */
static void test_frames(void)
{
    mg_itemset_t *a, *b;
    s_result_t r;
    s_make_pair(10000, 1000, 1000, &a, &b);
    r = s_sync(a, b, MG_RECON_FRAME_MIN);
    printf("10000 + 1000 each side, frames of %d: %zu round trips, %llu + %llu bytes\n",
           MG_RECON_FRAME_MIN, r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    CHECK(r.max_msg <= MG_RECON_FRAME_MIN);
    r = s_sync(a, b, 0);
    printf("10000 + 1000 each side, frames of %d: %zu round trips, %llu + %llu bytes\n",
           MG_RECON_FRAME_DEFAULT, r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    /* Different limits on the two sides. */
    r = s_sync_hook(a, b, MG_RECON_FRAME_MAX, MG_RECON_FRAME_MIN, true, NULL, NULL);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    r = s_sync_hook(a, b, MG_RECON_FRAME_MIN, MG_RECON_FRAME_MAX, true, NULL, NULL);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);

    /* Disjoint sets, cut everywhere. */
    s_make_pair(0, 3000, 3000, &a, &b);
    r = s_sync(a, b, MG_RECON_FRAME_MIN);
    printf("disjoint 3000 / 3000, frames of %d: %zu round trips, %llu + %llu bytes\n",
           MG_RECON_FRAME_MIN, r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    CHECK(r.max_msg <= MG_RECON_FRAME_MIN);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);

    /* Bootstrap of 100,000 ids with default frames. */
    s_make_pair(0, 0, 100000, &a, &b);
    r = s_sync(a, b, 0);
    printf("bootstrap empty <- 100000: %zu round trips, %llu + %llu bytes\n",
           r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    CHECK(r.max_msg <= MG_RECON_FRAME_DEFAULT);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);
}

/* The sets change while a session runs (new records arrive): the session
   still ends, and what it reports is true of the sets it saw. */
typedef struct {
    mg_itemset_t *a, *b;
} s_pair_t;

static void s_grow(size_t round, void *arg)
{
    s_pair_t *p = arg;
    if (round >= 3)
        return;
    for (int i = 0; i < 20; i++) {
        mg_item_t it = s_rand_item();
        mg_itemset_add(p->b, &it);
        it = s_rand_item();
        mg_itemset_add(p->a, &it);
    }
    /* And a few removals on the responder. */
    const mg_item_t *x = mg_itemset_item_at(p->b, s_rand() % mg_itemset_size(p->b));
    mg_item_t copy = *x;
    mg_itemset_remove(p->b, &copy);
}

static void test_changing_sets(void)
{
    s_pair_t p;
    s_make_pair(20000, 30, 30, &p.a, &p.b);
    s_result_t r = s_sync_hook(p.a, p.b, MG_RECON_FRAME_MIN, MG_RECON_FRAME_MIN,
                               false, s_grow, &p);
    CHECK(r.rc == MG_OK && r.done);
    /* Then a fresh session is exact. */
    r = s_sync(p.a, p.b, 0);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    mg_itemset_destroy(&p.a);
    mg_itemset_destroy(&p.b);
}

/* The end-of-session check: a difference the session did not see (here
   an item added to the initiator's set after its opening fingerprint was
   sent) leaves the session done but not verified, so the caller knows to
   start another one; that one finds it and verifies. */
static void test_verify(void)
{
    mg_itemset_t *a, *b;
    s_make_pair(100, 0, 0, &a, &b);
    mg_recon_t *ini = mg_recon_new(a, true, 0);
    mg_recon_t *rsp = mg_recon_new(b, false, 0);
    uint8_t *q = NULL, *ans = NULL, *next = NULL;
    size_t ql = 0, al = 0, nl = 0;
    mg_why_t why;
    CHECK_RC(mg_recon_initiate(ini, &q, &ql), MG_OK);
    mg_item_t extra = s_rand_item();
    CHECK_RC(mg_itemset_add(a, &extra), MG_OK);
    CHECK_RC(mg_recon_process(rsp, q, ql, &ans, &al, &why), MG_OK);
    CHECK(!mg_recon_verified(ini));
    CHECK_RC(mg_recon_process(ini, ans, al, &next, &nl, &why), MG_OK);
    CHECK(next == NULL && mg_recon_done(ini));
    CHECK(!mg_recon_verified(ini));
    CHECK(!mg_recon_verified(rsp));
    free(q);
    free(ans);
    mg_recon_destroy(&ini);
    mg_recon_destroy(&rsp);
    s_result_t r = s_sync(a, b, 0);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.verified);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);
}

/* Many small random cases: sizes from 0, few buckets, ids sharing long
   prefixes (so bounds need long prefixes), random frame limits on each
   side, sets overlapping from not at all to entirely. */
static mg_item_t s_odd_item(void)
{
    mg_item_t it;
    s_rand_bytes(it.id, 32);
    size_t shared = s_rand() % 4 == 0 ? s_rand() % 32 : 0;
    memset(it.id, 0xa5, shared);
    if (s_rand() % 8 == 0)
        memset(it.id + 24, 0, 8); /* ids ending in zeros */
    /* As in maillage, the bucket is a function of the id (of the record
       it hashes): 0, 1, 2, UINT64_MAX - 1 or UINT64_MAX. */
    uint8_t h = 0;
    for (int k = 0; k < 32; k++)
        h = (uint8_t) (h * 31 + it.id[k]);
    it.bucket = h % 5 < 3 ? h % 5 : UINT64_MAX - (h % 5 - 3);
    return it;
}

static void test_random_pairs(void)
{
    int failures = 0, oversize = 0;
    for (int round = 0; round < 300; round++) {
        mg_itemset_t *a = mg_itemset_new(), *b = mg_itemset_new();
        size_t common = s_rand() % 400, only_a = s_rand() % 60, only_b = s_rand() % 60;
        if (round % 10 == 0)
            common = 0;
        for (size_t i = 0; i < common; i++) {
            mg_item_t it = s_odd_item();
            mg_itemset_add(a, &it);
            mg_itemset_add(b, &it);
        }
        for (size_t i = 0; i < only_a; i++) {
            mg_item_t it = s_odd_item();
            mg_itemset_add(a, &it);
        }
        for (size_t i = 0; i < only_b; i++) {
            mg_item_t it = s_odd_item();
            mg_itemset_add(b, &it);
        }
        size_t fa = MG_RECON_FRAME_MIN + s_rand() % 6000;
        size_t fb = MG_RECON_FRAME_MIN + s_rand() % 6000;
        s_result_t r = s_sync_hook(a, b, fa, fb, true, NULL, NULL);
        if (r.rc != MG_OK || !r.done || !r.exact || !r.verified) {
            failures++;
            fprintf(stderr, "random pair %d: common %zu, %zu/%zu, frames %zu/%zu: "
                    "rc %d done %d exact %d\n", round, common, only_a, only_b,
                    fa, fb, r.rc, r.done, r.exact);
        }
        if (r.max_msg > (fa > fb ? fa : fb))
            oversize++;
        mg_itemset_destroy(&a);
        mg_itemset_destroy(&b);
    }
    CHECK(failures == 0);
    CHECK(oversize == 0);
}

/* ------------------------------------------------------------------ */
/* Golden vectors: the exact bytes of a small session. If these change,
   the wire format changed (docs/reconciliation.md §4 and §9). */

static void s_golden_item(uint32_t i, mg_item_t *it)
{
    uint8_t in[24] = "maillage-recon-golden";
    in[21] = (uint8_t) i;
    crypto_generichash(it->id, 32, in, 22, NULL, 0);
    it->bucket = i % 3 == 0 ? 13 : 75;
}

static const char *s_golden[] = {
    /* 1. initiator (20 items), session 6d61696c6c616765: one full
       fingerprint over everything */
    "9302cf6d61696c6c61676593c0c400c410ad6a919c1b7e8fa68c4acd9b4efd61"
    "81",
    /* 2. responder (20 items, one different): its set fingerprint, then
       16 sub-ranges with short fingerprints (uint32), bounds inside
       bucket 13 then 75 (array(2) ranges keep the previous bucket), the
       last one infinite */
    "dc001302cf6d61696c6c616765c41066d951bfd0b80659fdcdc06155d57a0c93"
    "0dc4014ace8e628ab692c401bfced8f0533992c401f9ce5cb0f072934bc40116"
    "cea79516a892c4012ece539ac11c92c40135ce274b26b092c4016bce16164dc2"
    "92c40172ce7c95cf5392c40189ce3325cd8392c401abced8a79f7f92c401c3ce"
    "b1c3a27992c401cece6a391c2592c401ecce29926f4b92c401f1ce76c97cc292"
    "c401f8ce729e3f0393c0c400cefd1e8f7d",
    /* 3. initiator: Skip, the short ids of the one sub-range where it has
       an extra item, Skip, an empty list where it lacks one */
    "9602cf6d61696c6c616765934bc40135c092c4016b9200c40868de45d6375d09"
    "1c92c401abc092c401c39200c400",
    /* 4. responder: its set fingerprint; answers: bit 1 (the listed item
       it lacks) and no id; no bit and the id the initiator lacks */
    "9702cf6d61696c6c616765c41066d951bfd0b80659fdcdc06155d57a0c934bc4"
    "0135c092c4016b940202c40102c40092c401abc092c401c3940200c400c420ab"
    "0c53bfa8c745e8336e9dcc15b26631431f6fce57caa3a6a876d917cd753bb2",
};

static void test_golden(void)
{
    mg_itemset_t *a = mg_itemset_new(), *b = mg_itemset_new();
    for (uint32_t i = 0; i < 21; i++) {
        mg_item_t it;
        s_golden_item(i, &it);
        if (i != 20)
            mg_itemset_add(a, &it);
        if (i != 7)
            mg_itemset_add(b, &it);
    }
    mg_recon_t *ini = mg_recon_new(a, true, 0);
    mg_recon_t *rsp = mg_recon_new(b, false, 0);
    /* Session id: "maillage" read as a big-endian 64-bit number. */
    CHECK_RC(mg_recon_set_session(ini, 0x6d61696c6c616765ULL), MG_OK);
    uint8_t *msg = NULL;
    size_t len = 0;
    mg_why_t why;
    CHECK_RC(mg_recon_initiate(ini, &msg, &len), MG_OK);
    for (int step = 0; step < 4 && msg; step++) {
        char *hex = malloc(2 * len + 1);
        s_hex(msg, len, hex);
        if (strcmp(hex, s_golden[step]) != 0) {
            CHECK(!"golden vector");
            fprintf(stderr, "golden message %d is now:\n\"%s\"\n", step + 1, hex);
        }
        free(hex);
        uint8_t *next = NULL;
        size_t next_len = 0;
        CHECK_RC(mg_recon_process(step % 2 == 0 ? rsp : ini, msg, len, &next,
                                  &next_len, &why), MG_OK);
        free(msg);
        msg = next;
        len = next_len;
    }
    CHECK(msg == NULL);
    CHECK(mg_recon_done(ini));
    size_t nh, nn;
    const uint8_t *have = mg_recon_have(ini, &nh);
    const uint8_t *need = mg_recon_need(ini, &nn);
    mg_item_t i7, i20;
    s_golden_item(7, &i7);
    s_golden_item(20, &i20);
    CHECK(nh == 1 && memcmp(have, i7.id, 32) == 0);
    CHECK(nn == 1 && memcmp(need, i20.id, 32) == 0);
    CHECK(mg_recon_verified(ini));
    free(msg);
    mg_recon_destroy(&ini);
    mg_recon_destroy(&rsp);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);
}

/* ------------------------------------------------------------------ */
/* Hostile input */

static int s_feed(mg_recon_t *r, const uint8_t *msg, size_t len, mg_why_t *why)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = mg_recon_process(r, msg, len, &out, &out_len, why);
    free(out);
    return rc;
}

/* Packs a message from a printf-like list of msgpack calls. */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} s_pack_t;

static void s_pack_begin(s_pack_t *p)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static void s_bin(s_pack_t *p, const void *data, size_t n)
{
    msgpack_pack_bin(&p->pk, n);
    msgpack_pack_bin_body(&p->pk, data, n);
}

static void s_expect_malformed(mg_recon_t *r, s_pack_t *p, const char *what)
{
    mg_why_t why;
    int rc = s_feed(r, (const uint8_t *) p->sb.data, p->sb.size, &why);
    if (rc != MG_ERR_MALFORMED)
        fprintf(stderr, "%s: rc %d\n", what, rc);
    CHECK(rc == MG_ERR_MALFORMED);
    CHECK(why.text[0] != '\0');
    msgpack_sbuffer_destroy(&p->sb);
}

static void test_malformed(void)
{
    mg_itemset_t *a, *b;
    s_make_pair(1000, 0, 0, &a, &b);
    mg_recon_t *r = mg_recon_new(b, false, 0);
    uint8_t fp[16] = { 0 }, id[32] = { 0 };
    s_pack_t p;
    mg_why_t why;

    CHECK_RC(s_feed(r, NULL, 0, &why), MG_ERR_MALFORMED);
    uint8_t *huge = calloc(1, MG_RECON_FRAME_MAX + 1);
    CHECK_RC(s_feed(r, huge, MG_RECON_FRAME_MAX + 1, &why), MG_ERR_TOO_LARGE);
    free(huge);
    uint8_t trunc[] = { 0x93, 0x02, 0x00 };
    CHECK_RC(s_feed(r, trunc, 3, &why), MG_ERR_MALFORMED);

    s_pack_begin(&p); /* not an array */
    msgpack_pack_uint8(&p.pk, 1);
    s_expect_malformed(r, &p, "not an array");

    s_pack_begin(&p); /* empty array */
    msgpack_pack_array(&p.pk, 0);
    s_expect_malformed(r, &p, "empty");

    s_pack_begin(&p); /* version 1 */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_uint8(&p.pk, 0);
    s_expect_malformed(r, &p, "version 1");

    s_pack_begin(&p); /* no session */
    msgpack_pack_array(&p.pk, 1);
    msgpack_pack_uint8(&p.pk, 2);
    s_expect_malformed(r, &p, "no session");

    s_pack_begin(&p); /* session as a string */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_str_with_body(&p.pk, "7", 1);
    s_expect_malformed(r, &p, "session str");

    s_pack_begin(&p); /* version as a string */
    msgpack_pack_array(&p.pk, 1);
    msgpack_pack_str_with_body(&p.pk, "1", 1);
    s_expect_malformed(r, &p, "version str");

    s_pack_begin(&p); /* a range of 2 elements */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "range arity");

    s_pack_begin(&p); /* negative bucket */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_int8(&p.pk, -1);
    s_bin(&p, id, 0);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "negative bucket");

    s_pack_begin(&p); /* prefix of 33 bytes */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 5);
    uint8_t long_prefix[33] = { 1 };
    s_bin(&p, long_prefix, 33);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "prefix 33");

    s_pack_begin(&p); /* prefix as str */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 5);
    msgpack_pack_str_with_body(&p.pk, "a", 1);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "prefix str");

    s_pack_begin(&p); /* infinite bound with a prefix */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 1);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "inf with prefix");

    s_pack_begin(&p); /* infinite bound before the end */
    msgpack_pack_array(&p.pk, 4);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    for (int i = 0; i < 2; i++) {
        msgpack_pack_array(&p.pk, 3);
        msgpack_pack_nil(&p.pk);
        s_bin(&p, id, 0);
        s_bin(&p, fp, 16);
    }
    s_expect_malformed(r, &p, "inf twice");

    s_pack_begin(&p); /* equal bounds */
    msgpack_pack_array(&p.pk, 4);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    for (int i = 0; i < 2; i++) {
        msgpack_pack_array(&p.pk, 3);
        msgpack_pack_uint8(&p.pk, 7);
        s_bin(&p, "\x80", 1);
        s_bin(&p, fp, 16);
    }
    s_expect_malformed(r, &p, "equal bounds");

    s_pack_begin(&p); /* equal bounds written differently (trailing 0) */
    msgpack_pack_array(&p.pk, 4);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 7);
    s_bin(&p, "\x80", 1);
    s_bin(&p, fp, 16);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 7);
    s_bin(&p, "\x80\x00", 2);
    msgpack_pack_nil(&p.pk);
    s_expect_malformed(r, &p, "equal bounds, padded");

    s_pack_begin(&p); /* decreasing buckets */
    msgpack_pack_array(&p.pk, 4);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 8);
    s_bin(&p, id, 0);
    s_bin(&p, fp, 16);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 7);
    s_bin(&p, "\xff", 1);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "decreasing");

    s_pack_begin(&p); /* fingerprint of 15 bytes */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    s_bin(&p, fp, 15);
    s_expect_malformed(r, &p, "fp 15");

    s_pack_begin(&p); /* a payload that is a negative number */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    msgpack_pack_int8(&p.pk, -2);
    s_expect_malformed(r, &p, "payload negative");

    s_pack_begin(&p); /* a short fingerprint of 33 bits */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    msgpack_pack_uint64(&p.pk, 1ULL << 32);
    s_expect_malformed(r, &p, "short fp 33 bits");

    s_pack_begin(&p); /* a range of 4 elements */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 4);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    msgpack_pack_nil(&p.pk);
    msgpack_pack_nil(&p.pk);
    s_expect_malformed(r, &p, "range arity 4");

    /* Lists: short ids of 5 bytes; an unknown tag; a responder's full
       list or answer sent to a responder. */
    static const struct {
        const char *what;
        int tag;
        size_t blob;
    } lists[] = { {"short 5", 0, 5}, {"tag 3", 3, 0}, {"full to responder", 1, 32},
                  {"tag as str", -1, 4} };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        s_pack_begin(&p);
        msgpack_pack_array(&p.pk, 3);
        msgpack_pack_uint8(&p.pk, 2);
        msgpack_pack_uint8(&p.pk, 0);
        msgpack_pack_array(&p.pk, 3);
        msgpack_pack_nil(&p.pk);
        s_bin(&p, id, 0);
        msgpack_pack_array(&p.pk, 2);
        if (lists[i].tag < 0)
            msgpack_pack_str_with_body(&p.pk, "0", 1);
        else
            msgpack_pack_uint8(&p.pk, (uint8_t) lists[i].tag);
        s_bin(&p, id, lists[i].blob);
        s_expect_malformed(r, &p, lists[i].what);
    }


    s_pack_begin(&p); /* nesting beyond mg_wire_scan's limit */
    for (int i = 0; i < 40; i++)
        msgpack_pack_array(&p.pk, 1);
    msgpack_pack_nil(&p.pk);
    s_expect_malformed(r, &p, "deep");

    /* A valid message still works after all that: the session is intact. */
    s_pack_begin(&p);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0); /* session */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    mg_itemset_fingerprint(b, 0, mg_itemset_size(b), fp);
    s_bin(&p, fp, 16);
    uint8_t *out = NULL;
    size_t out_len = 0;
    CHECK_RC(mg_recon_process(r, (const uint8_t *) p.sb.data, p.sb.size, &out,
                              &out_len, &why), MG_OK);
    CHECK(out_len == 21); /* [2, 0, set fingerprint]: in sync */
    free(out);
    msgpack_sbuffer_destroy(&p.sb);

    mg_recon_destroy(&r);

    /* What an initiator refuses in an answer: a full id of 31 bytes, a
       bitmap of the wrong length, bits past the list, a list longer than
       any message can carry, a short list (an initiator's payload). */
    mg_recon_t *ini = mg_recon_new(a, true, 0);
    mg_recon_set_session(ini, 9);
    uint8_t *first = NULL;
    size_t first_len = 0;
    CHECK_RC(mg_recon_initiate(ini, &first, &first_len), MG_OK);
    free(first);
    static const struct {
        const char *what;
        uint64_t k;
        size_t blen;
        uint8_t last;
        size_t ids;
        bool answer;
    } bad[] = {
        {"full id 31", 0, 0, 0, 31, false},
        {"bitmap length", 9, 1, 1, 0, true},
        {"bits past the list", 3, 1, 0x08, 0, true},
        {"k too large", MG_RECON_SHORT_IDS_MAX + 1, 0, 0, 0, true},
        {"answer id 33", 1, 0, 0, 33, true},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_pack_begin(&p);
        msgpack_pack_array(&p.pk, 4);
        msgpack_pack_uint8(&p.pk, 2);
        msgpack_pack_uint8(&p.pk, 9);
        s_bin(&p, fp, 16);
        msgpack_pack_array(&p.pk, 3);
        msgpack_pack_nil(&p.pk);
        s_bin(&p, id, 0);
        uint8_t bits[2] = { 0, bad[i].last };
        if (bad[i].answer) {
            msgpack_pack_array(&p.pk, 4);
            msgpack_pack_uint8(&p.pk, 2);
            msgpack_pack_uint64(&p.pk, bad[i].k);
            s_bin(&p, bits + 2 - bad[i].blen, bad[i].blen);
        } else {
            msgpack_pack_array(&p.pk, 2);
            msgpack_pack_uint8(&p.pk, 1);
        }
        uint8_t ids[40] = { 0 };
        s_bin(&p, ids, bad[i].ids);
        s_expect_malformed(ini, &p, bad[i].what);
    }
    s_pack_begin(&p); /* an initiator's short list sent to an initiator */
    msgpack_pack_array(&p.pk, 4);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 9);
    s_bin(&p, fp, 16);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 0);
    s_bin(&p, id, 4);
    s_expect_malformed(ini, &p, "short list to initiator");
    s_pack_begin(&p); /* an answer without the set fingerprint */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 9);
    s_expect_malformed(ini, &p, "no set fingerprint");
    s_pack_begin(&p); /* a set fingerprint of 15 bytes */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 9);
    s_bin(&p, fp, 15);
    s_expect_malformed(ini, &p, "set fingerprint 15");
    CHECK(!mg_recon_done(ini));
    mg_recon_destroy(&ini);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);
}

/* Records every message of a session, to mutate them. */
typedef struct {
    uint8_t *data[4096];
    size_t len[4096];
    size_t count;
} s_corpus_t;

static void s_collect(const mg_itemset_t *a, const mg_itemset_t *b,
                      size_t frame, s_corpus_t *c)
{
    mg_recon_t *ini = mg_recon_new(a, true, frame);
    mg_recon_t *rsp = mg_recon_new(b, false, frame);
    uint8_t *msg = NULL;
    size_t len = 0;
    mg_why_t why;
    mg_recon_initiate(ini, &msg, &len);
    while (msg && c->count + 2 < 4096) {
        uint8_t *reply = NULL;
        size_t reply_len = 0;
        if (mg_recon_process(rsp, msg, len, &reply, &reply_len, &why) != MG_OK)
            break;
        c->data[c->count] = msg;
        c->len[c->count++] = len;
        msg = NULL;
        if (mg_recon_process(ini, reply, reply_len, &msg, &len, &why) != MG_OK)
            break;
        c->data[c->count] = reply;
        c->len[c->count++] = reply_len;
    }
    free(msg);
    mg_recon_destroy(&ini);
    mg_recon_destroy(&rsp);
}

/* A random message that follows the grammar of either role, with random
   bounds and payloads, so the answer logic meets every combination. */
static size_t s_random_valid(uint8_t *buf, size_t cap, const mg_itemset_t *near,
                             uint64_t session)
{
    s_pack_t p;
    s_pack_begin(&p);
    size_t nr = s_rand() % 40;
    bool setfp = s_rand() % 2; /* as a responder writes */
    msgpack_pack_array(&p.pk, (setfp ? 3 : 2) + nr);
    msgpack_pack_uint8(&p.pk, MG_RECON_VERSION);
    msgpack_pack_uint64(&p.pk, session);
    if (setfp) {
        uint8_t f[16];
        s_rand_bytes(f, 16);
        s_bin(&p, f, 16);
    }
    /* Increasing bounds: taken from items of a set (often exactly at an
       item) or made up. */
    size_t n = mg_itemset_size(near);
    size_t at = 0;
    mg_item_t prev = { 0 };
    for (size_t i = 0; i < nr; i++) {
        mg_item_t bound = prev;
        bool inf = i + 1 == nr && s_rand() % 2;
        if (!inf) {
            at += 1 + s_rand() % (n / (nr + 1) + 1);
            const mg_item_t *it = mg_itemset_item_at(near, at < n ? at : n - 1);
            if (it && mg_item_cmp(it, &prev) > 0)
                bound = *it;
            else {
                bound.bucket = prev.bucket + 1 + s_rand() % 3;
                memset(bound.id, 0, 32);
            }
            size_t plen = s_rand() % 33;
            memset(bound.id + plen, 0, 32 - plen);
            if (mg_item_cmp(&bound, &prev) <= 0) {
                bound.bucket = prev.bucket + 1;
                memset(bound.id, 0, 32);
                plen = 0;
            }
            if (bound.bucket == prev.bucket && s_rand() % 2) {
                msgpack_pack_array(&p.pk, 2);
            } else {
                msgpack_pack_array(&p.pk, 3);
                msgpack_pack_uint64(&p.pk, bound.bucket);
            }
            s_bin(&p, bound.id, plen);
            prev = bound;
        } else {
            msgpack_pack_array(&p.pk, 3);
            msgpack_pack_nil(&p.pk);
            s_bin(&p, "", 0);
        }
        uint8_t fp[16], blob[32 * 20];
        size_t k = s_rand() % 20;
        switch (s_rand() % 6) {
        case 0:
            msgpack_pack_nil(&p.pk);
            break;
        case 1:
            s_rand_bytes(fp, 16);
            s_bin(&p, fp, 16);
            break;
        case 2:
            msgpack_pack_uint32(&p.pk, (uint32_t) s_rand());
            break;
        case 3: /* short ids (an initiator's list) */
            s_rand_bytes(blob, 4 * k);
            msgpack_pack_array(&p.pk, 2);
            msgpack_pack_uint8(&p.pk, 0);
            s_bin(&p, blob, 4 * k);
            break;
        default: { /* full ids, or an answer (a responder's) */
            for (size_t j = 0; j < k; j++) {
                const mg_item_t *it = mg_itemset_item_at(near, s_rand() % (n + 1));
                if (it && s_rand() % 2)
                    memcpy(blob + 32 * j, it->id, 32);
                else
                    s_rand_bytes(blob + 32 * j, 32);
            }
            if (s_rand() % 2) {
                msgpack_pack_array(&p.pk, 2);
                msgpack_pack_uint8(&p.pk, 1);
            } else {
                size_t listed = s_rand() % 70;
                uint8_t bits[9] = { 0 };
                size_t blen = s_rand() % 2 ? (listed + 7) / 8 : 0;
                s_rand_bytes(bits, blen);
                if (blen && listed % 8)
                    bits[blen - 1] &= (uint8_t) ((1u << (listed % 8)) - 1);
                msgpack_pack_array(&p.pk, 4);
                msgpack_pack_uint8(&p.pk, 2);
                msgpack_pack_uint64(&p.pk, listed);
                s_bin(&p, bits, blen);
            }
            s_bin(&p, blob, 32 * k);
        }
        }
    }
    size_t len = p.sb.size < cap ? p.sb.size : 0;
    if (len)
        memcpy(buf, p.sb.data, len);
    msgpack_sbuffer_destroy(&p.sb);
    return len;
}

static void test_fuzz(void)
{
    mg_itemset_t *a, *b;
    s_make_pair(3000, 40, 40, &a, &b);
    s_corpus_t *corpus = calloc(1, sizeof *corpus);
    s_collect(a, b, MG_RECON_FRAME_MIN, corpus);
    s_collect(b, a, 0, corpus);
    mg_itemset_t *e = mg_itemset_new();
    s_collect(e, b, MG_RECON_FRAME_MIN, corpus);
    CHECK(corpus->count > 4);

    enum { ITER = 10000, CAP = 8192 };
    uint8_t *buf = malloc(CAP);
    mg_why_t why;
    size_t ok = 0, malformed = 0, stale = 0, other = 0, answers_ok = 0, answers = 0;
    mg_recon_t *rsp = mg_recon_new(b, false, MG_RECON_FRAME_MIN);
    mg_recon_t *ini = NULL;
    for (int it = 0; it < ITER; it++) {
        size_t len = 0;
        int kind = it % 4;
        if (kind == 0 || kind == 1) {
            /* A real message with bytes flipped, cut or extended. */
            size_t k = s_rand() % corpus->count;
            len = corpus->len[k] < CAP ? corpus->len[k] : CAP;
            memcpy(buf, corpus->data[k], len);
            size_t flips = 1 + s_rand() % 4;
            for (size_t f = 0; f < flips; f++)
                buf[s_rand() % len] ^= (uint8_t) (1u << (s_rand() % 8));
            if (s_rand() % 8 == 0)
                len = s_rand() % (len + 1);
        } else if (kind == 2) {
            /* Random bytes, often starting like a message. */
            len = s_rand() % 200;
            s_rand_bytes(buf, len);
            if (len > 2 && s_rand() % 2) {
                buf[0] = (uint8_t) (0x90 | (s_rand() % 16));
                buf[1] = MG_RECON_VERSION;
            }
        }
        /* Alternately to the responder and to an initiator in session. */
        mg_recon_t *target = rsp;
        if (it % 2) {
            if (!ini || mg_recon_done(ini)) {
                mg_recon_destroy(&ini);
                ini = mg_recon_new(a, true, MG_RECON_FRAME_MIN);
                uint8_t *first = NULL;
                size_t first_len;
                mg_recon_initiate(ini, &first, &first_len);
                free(first);
            }
            target = ini;
        }
        if (kind == 3) /* mostly of the target's session */
            len = s_random_valid(buf, CAP, s_rand() % 2 ? a : b,
                                 s_rand() % 8 ? mg_recon_session(ini) : s_rand());
        uint8_t *out = NULL;
        size_t out_len = 0;
        int rc = mg_recon_process(target, buf, len, &out, &out_len, &why);
        if (rc == MG_OK) {
            ok++;
            /* Whatever it answers is itself a valid message within the
               limit: the peer of the other role accepts it. */
            if (out) {
                answers++;
                mg_recon_t *peer;
                if (target == ini) {
                    peer = mg_recon_new(b, false, 0);
                } else {
                    /* An answer to an initiator: feed it to one. */
                    peer = mg_recon_new(a, true, 0);
                    mg_recon_set_session(peer, mg_recon_session(rsp));
                    uint8_t *f = NULL;
                    size_t fl;
                    mg_recon_initiate(peer, &f, &fl);
                    free(f);
                }
                answers_ok += out_len <= MG_RECON_FRAME_MIN
                              && s_feed(peer, out, out_len, &why) == MG_OK;
                mg_recon_destroy(&peer);
            }
        } else if (rc == MG_ERR_MALFORMED) {
            malformed++;
        } else if (rc == MG_ERR_STALE && target == ini) {
            stale++;
        } else {
            other++;
        }
        free(out);
    }
    printf("fuzz: %d messages, %zu accepted, %zu malformed, %zu stale, %zu other; "
           "%zu/%zu answers valid\n", ITER, ok, malformed, stale, other, answers_ok,
           answers);
    CHECK(other == 0);
    CHECK(ok > 0 && malformed > 0);
    CHECK(answers_ok == answers);
    mg_recon_destroy(&ini);
    mg_recon_destroy(&rsp);
    free(buf);
    for (size_t i = 0; i < corpus->count; i++)
        free(corpus->data[i]);
    free(corpus);
    mg_itemset_destroy(&e);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    test_itemset();
    test_api();
    test_sessions();
    test_costs();
    test_frames();
    test_changing_sets();
    test_verify();
    test_random_pairs();
    test_golden();
    test_malformed();
    test_fuzz();
    return mg_test_done("test_recon");
}
