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
    uint8_t empty_msg[] = { 0x91, 0x01 };
    CHECK_RC(mg_recon_process(ini, empty_msg, 2, &out, &len, &why), MG_ERR_ARG);
    CHECK_RC(mg_recon_initiate(ini, &out, &len), MG_OK);
    /* An empty set opens with an empty IdList over everything. */
    char hex[256];
    s_hex(out, len, hex);
    CHECK_STR(hex, "9201" "93c0c40090");
    free(out);
    CHECK_RC(mg_recon_initiate(ini, &out, &len), MG_ERR_ARG);
    /* The responder's empty set answers with its own empty IdList. */
    uint8_t first[] = { 0x92, 0x01, 0x93, 0xc0, 0xc4, 0x00, 0x90 };
    CHECK_RC(mg_recon_process(rsp, first, sizeof first, &out, &len, &why), MG_OK);
    s_hex(out, len, hex);
    CHECK_STR(hex, "9201" "93c0c40090");
    CHECK(!mg_recon_done(rsp));
    uint8_t *reply = out;
    CHECK_RC(mg_recon_process(ini, reply, len, &out, &len, &why), MG_OK);
    free(reply);
    CHECK(out == NULL && len == 0);
    CHECK(mg_recon_done(ini));
    size_t n = 1;
    CHECK(mg_recon_have(ini, &n) == NULL && n == 0);
    CHECK_RC(mg_recon_process(ini, empty_msg, 2, &out, &len, &why), MG_ERR_ARG);
    /* A responder answers an empty message with an empty message. */
    CHECK_RC(mg_recon_process(rsp, empty_msg, 2, &out, &len, &why), MG_OK);
    CHECK(len == 2 && memcmp(out, empty_msg, 2) == 0);
    free(out);
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
    CHECK(r.rc == MG_OK && r.done && r.exact);
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
    CHECK(r.rc == MG_OK && r.done && r.exact);
    CHECK(r.rounds <= 6);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);

    /* 100 differences. */
    s_make_pair(10000, 50, 50, &a, &b);
    r = s_sync(a, b, 0);
    printf("10000 + 50 each side: %zu round trips, %llu + %llu bytes\n",
           r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact);
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
    CHECK(r.rc == MG_OK && r.done && r.exact);
    CHECK(r.max_msg <= MG_RECON_FRAME_DEFAULT);
    CHECK(r.received <= 10000 * 34 + 2000);
    r = s_sync(b, a, 0);
    printf("bootstrap 10000 -> empty: %zu round trips, %llu + %llu bytes\n",
           r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.rounds == 1);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);

    /* 100,000 in sync: O(1) bytes each way. */
    s_make_pair(100000, 0, 0, &a, &b);
    r = s_sync(a, b, 0);
    printf("identical 100000: %zu round trip(s), %llu + %llu bytes\n",
           r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact && r.rounds == 1);
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
            /* log16(n) levels of at most 16 fingerprint ranges of about
               25 bytes, then ids of at most 2 leaves of < 16 items of 34
               bytes, per difference: see docs/reconciliation.md §5. */
            size_t levels = 0;
            for (size_t m = n; m >= MG_RECON_SPLIT_MIN; m /= MG_RECON_BRANCH)
                levels++;
            uint64_t bound = 200 + (uint64_t) d * (levels * 16 * 32 + 2 * 16 * 34);
            uint64_t total = r.sent + r.received;
            printf("| %zu | %zu | %zu | %llu | %llu | %llu | %llu |\n", n, d,
                   r.rounds, (unsigned long long) r.sent,
                   (unsigned long long) r.received,
                   (unsigned long long) total, (unsigned long long) bound);
            CHECK(r.rc == MG_OK && r.done && r.exact);
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
    CHECK(r.rc == MG_OK && r.done && r.exact);
    CHECK(r.max_msg <= MG_RECON_FRAME_MIN);
    r = s_sync(a, b, 0);
    printf("10000 + 1000 each side, frames of %d: %zu round trips, %llu + %llu bytes\n",
           MG_RECON_FRAME_DEFAULT, r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact);
    /* Different limits on the two sides. */
    r = s_sync_hook(a, b, MG_RECON_FRAME_MAX, MG_RECON_FRAME_MIN, true, NULL, NULL);
    CHECK(r.rc == MG_OK && r.done && r.exact);
    r = s_sync_hook(a, b, MG_RECON_FRAME_MIN, MG_RECON_FRAME_MAX, true, NULL, NULL);
    CHECK(r.rc == MG_OK && r.done && r.exact);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);

    /* Disjoint sets, cut everywhere. */
    s_make_pair(0, 3000, 3000, &a, &b);
    r = s_sync(a, b, MG_RECON_FRAME_MIN);
    printf("disjoint 3000 / 3000, frames of %d: %zu round trips, %llu + %llu bytes\n",
           MG_RECON_FRAME_MIN, r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact);
    CHECK(r.max_msg <= MG_RECON_FRAME_MIN);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);

    /* Bootstrap of 100,000 ids with default frames. */
    s_make_pair(0, 0, 100000, &a, &b);
    r = s_sync(a, b, 0);
    printf("bootstrap empty <- 100000: %zu round trips, %llu + %llu bytes\n",
           r.rounds, (unsigned long long) r.sent,
           (unsigned long long) r.received);
    CHECK(r.rc == MG_OK && r.done && r.exact);
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
    CHECK(r.rc == MG_OK && r.done && r.exact);
    mg_itemset_destroy(&p.a);
    mg_itemset_destroy(&p.b);
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
        if (r.rc != MG_OK || !r.done || !r.exact) {
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
    /* 1. initiator (20 items): one fingerprint over everything */
    "920193c0c400c410ad6a919c1b7e8fa68c4acd9b4efd6181",
    /* 2. responder (20 items, one different): 16 sub-range fingerprints,
       bounds inside bucket 13 then 75, the last one infinite */
    "dc001101930dc4014ac410de5b72876d24125c0f3863fb1feff05f930dc401bf"
    "c41034fb7931954b22b3aca1da211f6f1ac6930dc401f9c4100be276989a68b5"
    "a14488534138bd2c57934bc40116c410a34b68b52fb8d7ecfe46d4759fada414"
    "934bc4012ec410a8fa96e9b94a93d19b422b71a883b595934bc40135c4107a38"
    "9963ee31de7da4975db35592703c934bc4016bc41098ff18d47c01ee486653ab"
    "e10d482e57934bc40172c4103af62a0007665b3ddf700b2a064c1719934bc401"
    "89c410edc7d9a9a14b5e0bbfc79a8085c6a76f934bc401abc4103a80f8faca6a"
    "3bda4922c2f5e729b571934bc401c3c410ea3ce8eb1e0fda032eb04ca7d2e33c"
    "06934bc401cec410437377721a0963930814f94ba4e2dad1934bc401ecc410cf"
    "08c6d73f817af9ca24add020f8341f934bc401f1c4105ce50a1b1c1b954af4f5"
    "c21753263a90934bc401f8c4102064140fecc7953b7c46d80efd74c51a93c0c4"
    "00c4107f3871ca3747d134bf4a44f70a2dddfa",
    /* 3. initiator: Skip, its ids of the one sub-range where it has an
       extra item, Skip, an empty IdList where it lacks one */
    "9501934bc40135c0934bc4016b92c42035b15e21a7eb503a202f80c7f184ad2a"
    "8c2c4cd7d45bd27cd086ad025a1b4457c4203987662cc6dbe6446e23e9e848d2"
    "dd76a710a363bbbfbbf5023a2ae11da46c4e934bc401abc0934bc401c390",
    /* 4. responder: its own ids for those two sub-ranges */
    "9501934bc40135c0934bc4016b91c42035b15e21a7eb503a202f80c7f184ad2a"
    "8c2c4cd7d45bd27cd086ad025a1b4457934bc401abc0934bc401c391c420ab0c"
    "53bfa8c745e8336e9dcc15b26631431f6fce57caa3a6a876d917cd753bb2",
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
    uint8_t trunc[] = { 0x92, 0x01 };
    CHECK_RC(s_feed(r, trunc, 2, &why), MG_ERR_MALFORMED);

    s_pack_begin(&p); /* not an array */
    msgpack_pack_uint8(&p.pk, 1);
    s_expect_malformed(r, &p, "not an array");

    s_pack_begin(&p); /* empty array */
    msgpack_pack_array(&p.pk, 0);
    s_expect_malformed(r, &p, "empty");

    s_pack_begin(&p); /* version 2 */
    msgpack_pack_array(&p.pk, 1);
    msgpack_pack_uint8(&p.pk, 2);
    s_expect_malformed(r, &p, "version 2");

    s_pack_begin(&p); /* version as a string */
    msgpack_pack_array(&p.pk, 1);
    msgpack_pack_str_with_body(&p.pk, "1", 1);
    s_expect_malformed(r, &p, "version str");

    s_pack_begin(&p); /* a range of 2 elements */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "range arity");

    s_pack_begin(&p); /* negative bucket */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_int8(&p.pk, -1);
    s_bin(&p, id, 0);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "negative bucket");

    s_pack_begin(&p); /* prefix of 33 bytes */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 5);
    uint8_t long_prefix[33] = { 1 };
    s_bin(&p, long_prefix, 33);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "prefix 33");

    s_pack_begin(&p); /* prefix as str */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 5);
    msgpack_pack_str_with_body(&p.pk, "a", 1);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "prefix str");

    s_pack_begin(&p); /* infinite bound with a prefix */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 1);
    s_bin(&p, fp, 16);
    s_expect_malformed(r, &p, "inf with prefix");

    s_pack_begin(&p); /* infinite bound before the end */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 1);
    for (int i = 0; i < 2; i++) {
        msgpack_pack_array(&p.pk, 3);
        msgpack_pack_nil(&p.pk);
        s_bin(&p, id, 0);
        s_bin(&p, fp, 16);
    }
    s_expect_malformed(r, &p, "inf twice");

    s_pack_begin(&p); /* equal bounds */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 1);
    for (int i = 0; i < 2; i++) {
        msgpack_pack_array(&p.pk, 3);
        msgpack_pack_uint8(&p.pk, 7);
        s_bin(&p, "\x80", 1);
        s_bin(&p, fp, 16);
    }
    s_expect_malformed(r, &p, "equal bounds");

    s_pack_begin(&p); /* equal bounds written differently (trailing 0) */
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 1);
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
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint8(&p.pk, 1);
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
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    s_bin(&p, fp, 15);
    s_expect_malformed(r, &p, "fp 15");

    s_pack_begin(&p); /* a mode that is a number */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    msgpack_pack_uint8(&p.pk, 2);
    s_expect_malformed(r, &p, "mode number");

    s_pack_begin(&p); /* an id of 31 bytes */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    msgpack_pack_array(&p.pk, 2);
    s_bin(&p, id, 32);
    s_bin(&p, id, 31);
    s_expect_malformed(r, &p, "id 31");

    s_pack_begin(&p); /* too many ids (still under the size limit) */
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    msgpack_pack_array(&p.pk, MG_RECON_IDS_MAX + 1);
    for (int i = 0; i < MG_RECON_IDS_MAX + 1; i++)
        msgpack_pack_nil(&p.pk);
    s_expect_malformed(r, &p, "too many ids");

    s_pack_begin(&p); /* nesting beyond mg_wire_scan's limit */
    for (int i = 0; i < 40; i++)
        msgpack_pack_array(&p.pk, 1);
    msgpack_pack_nil(&p.pk);
    s_expect_malformed(r, &p, "deep");

    /* A valid message still works after all that: the session is intact. */
    s_pack_begin(&p);
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_nil(&p.pk);
    s_bin(&p, id, 0);
    mg_itemset_fingerprint(b, 0, mg_itemset_size(b), fp);
    s_bin(&p, fp, 16);
    uint8_t *out = NULL;
    size_t out_len = 0;
    CHECK_RC(mg_recon_process(r, (const uint8_t *) p.sb.data, p.sb.size, &out,
                              &out_len, &why), MG_OK);
    CHECK(out_len == 2);
    free(out);
    msgpack_sbuffer_destroy(&p.sb);

    mg_recon_destroy(&r);
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

/* A random message that follows the grammar, with random bounds and
   modes, so the answer logic meets every combination. */
static size_t s_random_valid(uint8_t *buf, size_t cap, const mg_itemset_t *near)
{
    s_pack_t p;
    s_pack_begin(&p);
    size_t nr = s_rand() % 40;
    msgpack_pack_array(&p.pk, 1 + nr);
    msgpack_pack_uint8(&p.pk, 1);
    /* Increasing bounds: taken from items of a set (often exactly at an
       item) or made up. */
    size_t n = mg_itemset_size(near);
    size_t at = 0;
    mg_item_t prev = { 0 };
    for (size_t i = 0; i < nr; i++) {
        msgpack_pack_array(&p.pk, 3);
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
            msgpack_pack_uint64(&p.pk, bound.bucket);
            s_bin(&p, bound.id, plen);
            prev = bound;
        } else {
            msgpack_pack_nil(&p.pk);
            s_bin(&p, "", 0);
        }
        uint8_t fp[16];
        switch (s_rand() % 3) {
        case 0:
            msgpack_pack_nil(&p.pk);
            break;
        case 1:
            s_rand_bytes(fp, 16);
            s_bin(&p, fp, 16);
            break;
        default: {
            size_t k = s_rand() % 20;
            msgpack_pack_array(&p.pk, k);
            for (size_t j = 0; j < k; j++) {
                uint8_t id[32];
                const mg_item_t *it = mg_itemset_item_at(near, s_rand() % (n + 1));
                if (it && s_rand() % 2)
                    memcpy(id, it->id, 32);
                else
                    s_rand_bytes(id, 32);
                s_bin(&p, id, 32);
            }
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
    size_t ok = 0, malformed = 0, other = 0, answers_ok = 0, answers = 0;
    mg_recon_t *rsp = mg_recon_new(b, false, MG_RECON_FRAME_MIN);
    mg_recon_t *ini = NULL;
    for (int it = 0; it < ITER; it++) {
        size_t len;
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
                buf[1] = 0x01;
            }
        } else {
            len = s_random_valid(buf, CAP, s_rand() % 2 ? a : b);
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
        } else {
            other++;
        }
        free(out);
    }
    printf("fuzz: %d messages, %zu accepted, %zu malformed, %zu other; "
           "%zu/%zu answers valid\n", ITER, ok, malformed, other, answers_ok,
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
    test_random_pairs();
    test_golden();
    test_malformed();
    test_fuzz();
    return mg_test_done("test_recon");
}
