/*  fuzz_recon.c - libFuzzer target: the reconciliation state machine
    (protocol/mg_recon.h) fed an arbitrary sequence of messages.

    One initiator and one responder, each over its own item set, receive a
    sequence of steps split from the input; a step either delivers bytes
    of the input to one side, relays the other side's last message (so
    honest exchanges and hostile ones mix), or changes one side's set
    between messages (sessions must cope: mg_recon.h). The two sides react
    the way the node does (docs/protocol.md §9.4): a responder that cannot
    process a message drops its session and starts afresh; an initiator
    whose session fails or finishes starts a new one.

    Input layout:
        byte 0    config: bits 0-1 initiator's set, 2-3 responder's set
                  (0: empty, 1: 40 items, 2: 400 items, 3: the same
                  400 shifted by 10, so 10 differences each way), bits
                  4-5 and 6-7 the initiator's and responder's frame limit
                  (default 60,000, 2,048, 4,096, 262,144 bytes)
        steps     tag byte t; side = t & 1 (0 responder, 1 initiator)
          t & 0x80  relay: the other side's last message goes to `side`
          t & 0x40  change `side`'s set: one more byte k; t & 2 removes
                    the item at k/256 of the set, else adds the item at
                    k/256 of the other side's set
          otherwise a message: 2 bytes of length (little-endian), then
                    that many bytes (fewer if the input ends) to `side`
    At most 64 steps are taken (a session between the 400-item sets
    takes about ten).

    Invariants checked: results are one of the documented codes; a
    failed call produces nothing; whatever one side produced, the other
    accepts (an initiator refuses as stale, and only as stale, an answer
    carrying another session id: the node drops it and goes on); a reply fits the sender's frame limit; a responder always
    replies; have/need are sorted and duplicate-free; have is a subset of
    the initiator's set when the sets did not change; and a session made
    only of honest relays over unchanged sets finds exactly the
    difference of the two sets.

    Built as a fuzzer by tests/fuzz/CMakeLists.txt; tests/test_hostile.c
    replays the committed corpus through it. */
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_recon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_CHECK(cond)                                                      \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,     \
                    __LINE__, #cond);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

#define S_STEPS_MAX 64
/* 410 distinct items: the shifted set needs 10 beyond the 400. 400 items
   make two levels of splits (400 / 16 = 25 >= MG_RECON_SPLIT_MIN) while
   keeping a run under a millisecond or so. */
#define S_POOL 410

static const size_t s_frames[4] = {0, MG_RECON_FRAME_MIN, 4096,
                                   MG_RECON_FRAME_MAX};
/* Set k holds the pool items [s_from[k], s_from[k] + s_count[k]). */
static const size_t s_from[4] = {0, 0, 0, 10};
static const size_t s_count[4] = {0, 40, 400, 400};
static mg_item_t s_pool[S_POOL];
static mg_itemset_t *s_sets[4]; /* built once, never changed */

static int s_id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, MG_RECON_ID_BYTES);
}

/* Sorted ids of `count` items. Caller frees. */
static uint8_t *s_sorted_ids(const mg_item_t *items, size_t count)
{
    uint8_t *ids = malloc(count * MG_RECON_ID_BYTES + 1);
    if (!ids)
        abort();
    for (size_t i = 0; i < count; i++)
        memcpy(ids + i * MG_RECON_ID_BYTES, items[i].id, MG_RECON_ID_BYTES);
    qsort(ids, count, MG_RECON_ID_BYTES, s_id_cmp);
    return ids;
}

/* The ids of set a missing from set b, sorted: what an honest session
   between them must find (a's `have` when a initiates). Computed once
   per pair, as the checks run millions of times. */
typedef struct {
    uint8_t *ids;
    size_t n;
    bool ready;
} s_diff_t;
static s_diff_t s_diff[4][4];

static const s_diff_t *s_expected(int a, int b)
{
    s_diff_t *d = &s_diff[a][b];
    if (d->ready)
        return d;
    uint8_t *mine = s_sorted_ids(s_pool + s_from[a], s_count[a]);
    uint8_t *theirs = s_sorted_ids(s_pool + s_from[b], s_count[b]);
    d->ids = malloc(s_count[a] * MG_RECON_ID_BYTES + 1);
    if (!d->ids)
        abort();
    for (size_t i = 0; i < s_count[a]; i++) {
        const uint8_t *id = mine + i * MG_RECON_ID_BYTES;
        if (!s_count[b] || !bsearch(id, theirs, s_count[b], MG_RECON_ID_BYTES, s_id_cmp))
            memcpy(d->ids + d->n++ * MG_RECON_ID_BYTES, id, MG_RECON_ID_BYTES);
    }
    free(mine);
    free(theirs);
    d->ready = true;
    return d;
}

/* Item i of the pool: seven buckets (0 = non-territorial), hashed ids. */
static void s_init(void)
{
    if (s_sets[0])
        return;
    if (sodium_init() < 0)
        abort();
    for (uint32_t i = 0; i < S_POOL; i++) {
        uint8_t seed[4] = {(uint8_t) i, (uint8_t) (i >> 8), 'r', 'c'};
        s_pool[i].bucket = (i % 7) * 10;
        crypto_generichash(s_pool[i].id, MG_RECON_ID_BYTES, seed, sizeof seed,
                           NULL, 0);
    }
    for (int k = 0; k < 4; k++) {
        s_sets[k] = mg_itemset_new();
        if (!s_sets[k]
            || mg_itemset_add_many(s_sets[k], s_pool + s_from[k], s_count[k]) != MG_OK)
            abort();
        mg_itemset_prepare(s_sets[k]);
    }
}

/* A copy of set k that change steps may modify. */
static mg_itemset_t *s_clone(int k)
{
    mg_itemset_t *s = mg_itemset_new();
    if (!s || mg_itemset_add_many(s, s_pool + s_from[k], s_count[k]) != MG_OK)
        abort();
    return s;
}

static void s_check_sorted(const uint8_t *ids, size_t n)
{
    for (size_t i = 1; i < n; i++)
        S_CHECK(memcmp(ids + (i - 1) * MG_RECON_ID_BYTES,
                       ids + i * MG_RECON_ID_BYTES, MG_RECON_ID_BYTES) < 0);
}

/* One side: its set, its session, its last message. */
typedef struct {
    mg_itemset_t *set;   /* the set the session reads */
    int k;               /* which of the four sets it started as */
    bool initiator;      /* which role */
    size_t frame;        /* frame limit given to mg_recon_new (0: default) */
    mg_recon_t *session; /* the current session */
    uint8_t *out;        /* its last message, for relays */
    size_t out_len;
    bool out_fresh;      /* an honest message not yet relayed */
    bool honest;         /* initiator: only honest relays so far */
    uint64_t starts;     /* sessions started: the initiator's n-th session
                            has id S_SESSION0 + n, so that recorded
                            answers of the first one (the seeds of
                            mk_corpus.c) reach a live session */
} s_side_t;

/* "maillage" as a big-endian 64-bit number, as in mk_corpus.c. */
#define S_SESSION0 0x6d61696c6c616765ULL

static size_t s_limit(const s_side_t *s)
{
    return s->frame ? s->frame : MG_RECON_FRAME_DEFAULT;
}

static void s_side_start(s_side_t *s)
{
    mg_recon_destroy(&s->session);
    s->session = mg_recon_new(s->set, s->initiator, s->frame);
    S_CHECK(s->session != NULL);
    free(s->out);
    s->out = NULL;
    s->out_len = 0;
    s->out_fresh = false;
    s->honest = true;
    if (s->initiator) {
        S_CHECK(mg_recon_set_session(s->session, S_SESSION0 + s->starts++) == MG_OK);
        S_CHECK(mg_recon_initiate(s->session, &s->out, &s->out_len) == MG_OK);
        S_CHECK(s->out && s->out_len <= s_limit(s));
        s->out_fresh = true;
        /* Initiating twice is a programming error, refused. */
        uint8_t *again = NULL;
        size_t again_len = 0;
        S_CHECK(mg_recon_initiate(s->session, &again, &again_len) == MG_ERR_ARG);
    }
}

/* True when the sorted ids `sub` (n) are all among the sorted `of` (m). */
static bool s_subset(const uint8_t *sub, size_t n, const uint8_t *of, size_t m)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *id = sub + i * MG_RECON_ID_BYTES;
        while (j < m && memcmp(of + j * MG_RECON_ID_BYTES, id, MG_RECON_ID_BYTES) < 0)
            j++;
        if (j == m || memcmp(of + j * MG_RECON_ID_BYTES, id, MG_RECON_ID_BYTES) != 0)
            return false;
    }
    return true;
}

/* The initiator's session ended: check its result. */
static void s_check_result(s_side_t *ini, const s_side_t *rsp, bool changed)
{
    size_t nh = 0, nn = 0;
    const uint8_t *have = mg_recon_have(ini->session, &nh);
    s_check_sorted(have, nh);
    const uint8_t *need = mg_recon_need(ini->session, &nn);
    s_check_sorted(need, nn);
    S_CHECK((have == NULL) == (nh == 0) && (need == NULL) == (nn == 0));
    if (changed)
        return;
    /* What we hold and the peer lacks, among what we hold. */
    const s_diff_t *mine = s_expected(ini->k, 0); /* set k minus nothing */
    S_CHECK(s_subset(have, nh, mine->ids, mine->n));
    if (ini->honest && mg_recon_done(ini->session)) {
        const s_diff_t *h = s_expected(ini->k, rsp->k);
        const s_diff_t *n = s_expected(rsp->k, ini->k);
        S_CHECK(nh == h->n && (nh == 0 || memcmp(have, h->ids, nh * MG_RECON_ID_BYTES) == 0));
        S_CHECK(nn == n->n && (nn == 0 || memcmp(need, n->ids, nn * MG_RECON_ID_BYTES) == 0));
    }
}

/* Delivers one message to side `to`; `from` is the other side. */
static void s_deliver(s_side_t *to, s_side_t *from, const uint8_t *msg,
                      size_t len, bool relay, bool changed)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    mg_why_t why;
    /* An honest step: the other side's latest message, delivered once. */
    bool honest_input = relay && from->out_fresh;
    if (to->initiator && !honest_input)
        to->honest = false;
    int rc = mg_recon_process(to->session, msg, len, &out, &out_len, &why);
    if (relay)
        from->out_fresh = false;
    S_CHECK(rc == MG_OK || rc == MG_ERR_MALFORMED || rc == MG_ERR_TOO_LARGE
            || (rc == MG_ERR_STALE && to->initiator));
    /* Whatever one side produced, the other accepts, whatever the sets;
       an initiator refuses an answer of another session as stale, never
       the answer to its own latest message. */
    if (relay)
        S_CHECK(rc == MG_OK || (rc == MG_ERR_STALE && !honest_input));
    if (rc == MG_ERR_STALE) {
        /* Dropped by the node; the session goes on unchanged. */
        S_CHECK(out == NULL && out_len == 0 && why.text[0]);
        S_CHECK(!mg_recon_done(to->session));
        return;
    }
    if (rc != MG_OK) {
        S_CHECK(out == NULL && out_len == 0 && why.text[0]);
        if (rc == MG_ERR_TOO_LARGE)
            S_CHECK(len > MG_RECON_FRAME_MAX);
        /* The node drops the session; the next one starts afresh. */
        if (to->initiator) {
            s_check_result(to, from, changed);
            from->out_fresh = false; /* it answered the old session */
        }
        s_side_start(to);
        return;
    }
    S_CHECK(out_len <= s_limit(to));
    if (!to->initiator) {
        S_CHECK(out != NULL && out_len > 0);
        S_CHECK(!mg_recon_done(to->session));
        free(to->out);
        to->out = out;
        to->out_len = out_len;
        /* An answer to the initiator's latest message, while that
           session is honest, keeps the exchange honest when relayed. */
        to->out_fresh = honest_input && from->honest;
        return;
    }
    if (!out) {
        S_CHECK(out_len == 0 && mg_recon_done(to->session));
        s_check_result(to, from, changed);
        /* Done: further replies are refused as out of order. */
        uint8_t *late = NULL;
        size_t late_len = 0;
        S_CHECK(mg_recon_process(to->session, msg, len, &late, &late_len,
                                 NULL) == MG_ERR_ARG && late == NULL);
        from->out_fresh = false;
        s_side_start(to);
        return;
    }
    S_CHECK(!mg_recon_done(to->session));
    free(to->out);
    to->out = out;
    to->out_len = out_len;
    to->out_fresh = true;
}

/* A change step: removes or adds one item on `to`'s set. */
static void s_change(s_side_t *to, const s_side_t *from, uint8_t t, uint8_t k)
{
    if (t & 2) {
        size_t n = mg_itemset_size(to->set);
        if (!n)
            return;
        mg_item_t it = *mg_itemset_item_at(to->set, k * n / 256);
        S_CHECK(mg_itemset_remove(to->set, &it) == MG_OK);
        S_CHECK(mg_itemset_remove(to->set, &it) == MG_ERR_NOT_FOUND);
        S_CHECK(mg_itemset_size(to->set) == n - 1);
    } else {
        size_t n = mg_itemset_size(from->set);
        mg_item_t it = n ? *mg_itemset_item_at(from->set, k * n / 256) : s_pool[k];
        size_t before = mg_itemset_size(to->set);
        S_CHECK(mg_itemset_add(to->set, &it) == MG_OK);
        size_t after = mg_itemset_size(to->set);
        S_CHECK(after == before || after == before + 1);
    }
}

/* One step of the input (see the layout at the top). */
typedef struct {
    uint8_t tag;
    const uint8_t *msg; /* message steps: the bytes, in the input */
    size_t len;
    uint8_t k;          /* change steps: the position byte */
} s_step_t;

/* Reads the step at *pos; false at the end of the input. */
static bool s_next(const uint8_t *data, size_t size, size_t *pos, s_step_t *st)
{
    if (*pos >= size)
        return false;
    st->tag = data[(*pos)++];
    if (st->tag & 0x80)
        return true;
    if (st->tag & 0x40) {
        if (*pos >= size)
            return false;
        st->k = data[(*pos)++];
        return true;
    }
    if (size - *pos < 2)
        return false;
    st->len = (size_t) data[*pos] | (size_t) data[*pos + 1] << 8;
    *pos += 2;
    if (st->len > size - *pos)
        st->len = size - *pos;
    st->msg = data + *pos;
    *pos += st->len;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    s_init();
    uint8_t cfg = data[0];
    /* Change steps need sets of their own. */
    bool own_sets = false;
    s_step_t st;
    size_t pos = 1;
    for (int i = 0; i < S_STEPS_MAX && !own_sets && s_next(data, size, &pos, &st); i++)
        own_sets = (st.tag & 0xc0) == 0x40;
    s_side_t ini = {.initiator = true, .k = cfg & 3, .frame = s_frames[(cfg >> 4) & 3]};
    s_side_t rsp = {.initiator = false, .k = (cfg >> 2) & 3, .frame = s_frames[(cfg >> 6) & 3]};
    ini.set = own_sets ? s_clone(ini.k) : s_sets[ini.k];
    rsp.set = own_sets ? s_clone(rsp.k) : s_sets[rsp.k];
    s_side_start(&ini);
    s_side_start(&rsp);
    bool changed = false;
    pos = 1;
    for (int i = 0; i < S_STEPS_MAX && s_next(data, size, &pos, &st); i++) {
        s_side_t *to = (st.tag & 1) ? &ini : &rsp;
        s_side_t *from = (st.tag & 1) ? &rsp : &ini;
        if (st.tag & 0x80) {
            if (!from->out)
                continue;
            /* Relay a copy: delivering may replace from->out. */
            size_t len = from->out_len;
            uint8_t *copy = malloc(len ? len : 1);
            if (!copy)
                abort();
            memcpy(copy, from->out, len);
            s_deliver(to, from, copy, len, true, changed);
            free(copy);
        } else if (st.tag & 0x40) {
            changed = true;
            s_change(to, from, st.tag, st.k);
        } else {
            /* An exact-size copy: ASan sees any read past the message. */
            uint8_t *msg = malloc(st.len ? st.len : 1);
            if (!msg)
                abort();
            memcpy(msg, st.msg, st.len);
            s_deliver(to, from, msg, st.len, false, changed);
            free(msg);
        }
    }
    /* Fingerprints of any valid range are defined, others refused. */
    uint8_t fp[MG_RECON_FP_BYTES];
    size_t n = mg_itemset_size(ini.set);
    S_CHECK(mg_itemset_fingerprint(ini.set, 0, n, fp) == MG_OK);
    S_CHECK(mg_itemset_fingerprint(ini.set, n, n, fp) == MG_OK);
    S_CHECK(mg_itemset_fingerprint(ini.set, 1, 0, fp) == MG_ERR_ARG);
    S_CHECK(mg_itemset_fingerprint(ini.set, 0, n + 1, fp) == MG_ERR_ARG);
    mg_recon_destroy(&ini.session);
    mg_recon_destroy(&rsp.session);
    free(ini.out);
    free(rsp.out);
    if (own_sets) {
        mg_itemset_destroy(&ini.set);
        mg_itemset_destroy(&rsp.set);
    }
    return 0;
}
