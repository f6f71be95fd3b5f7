/*  mg_recon.c - range-based set reconciliation: item sets with prefix
    sums, and the session that speaks the message format of
    docs/reconciliation.md. */
#include "mg_recon.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "mg_wire.h"

/* ------------------------------------------------------------------ */
/* Items */

int mg_item_cmp(const mg_item_t *a, const mg_item_t *b)
{
    if (a->bucket != b->bucket)
        return a->bucket < b->bucket ? -1 : 1;
    return memcmp(a->id, b->id, MG_RECON_ID_BYTES);
}

static int s_item_qcmp(const void *a, const void *b)
{
    return mg_item_cmp(a, b);
}

static int s_id_qcmp(const void *a, const void *b)
{
    return memcmp(a, b, MG_RECON_ID_BYTES);
}

/* A 256-bit integer as four little-endian 64-bit limbs. */
typedef struct {
    uint64_t limb[4];
} s_u256_t;

static void s_u256_add_id(s_u256_t *acc, const uint8_t id[MG_RECON_ID_BYTES])
{
    uint64_t carry = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (int j = 7; j >= 0; j--)
            v = v << 8 | id[8 * i + j];
        uint64_t s = acc->limb[i] + v;
        uint64_t c1 = s < v;
        uint64_t s2 = s + carry;
        uint64_t c2 = s2 < carry;
        acc->limb[i] = s2;
        carry = c1 | c2;
    }
}

/* r = a - b mod 2^256 */
static void s_u256_sub(const s_u256_t *a, const s_u256_t *b, s_u256_t *r)
{
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t d = a->limb[i] - b->limb[i];
        uint64_t b1 = a->limb[i] < b->limb[i];
        uint64_t d2 = d - borrow;
        uint64_t b2 = d < borrow;
        r->limb[i] = d2;
        borrow = b1 | b2;
    }
}

/* What fingerprints hash: the sum as 32 little-endian bytes, then the
   count as 8. */
static void s_fp_input(const s_u256_t *sum, uint64_t count, uint8_t in[40])
{
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            in[8 * i + j] = (uint8_t) (sum->limb[i] >> (8 * j));
    for (int j = 0; j < 8; j++)
        in[32 + j] = (uint8_t) (count >> (8 * j));
}

/* The fingerprint function of mg_itemset_fingerprint. */
static void s_fingerprint(const s_u256_t *sum, uint64_t count,
                          uint8_t out[MG_RECON_FP_BYTES])
{
    uint8_t in[40];
    s_fp_input(sum, count, in);
    crypto_generichash(out, MG_RECON_FP_BYTES, in, sizeof in, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* mg_itemset_t */

struct mg_itemset_t {
    mg_item_t *items;   /* [0, sorted) in order, then `pending` unsorted */
    size_t sorted;      /* items in order, without duplicates */
    size_t pending;     /* items added since the last merge */
    size_t cap;         /* capacity of items */
    mg_item_t *scratch; /* room for `pending` items, used by the merge, so
                           that reads (which merge) never allocate */
    size_t scratch_cap; /* capacity of scratch */
    s_u256_t *sums;     /* sums[i] = sum of the ids of items[0, i) */
    size_t sums_cap;    /* capacity of sums: always >= sorted + pending + 1 */
    size_t sums_valid;  /* sums[0, sums_valid) are up to date (>= 1) */
};

/* Reads merge pending items and extend the sums cache: the set is
   logically unchanged, and every set is allocated by mg_itemset_new (never
   defined const), so writing through the cast is defined behaviour. */
static mg_itemset_t *s_mut(const mg_itemset_t *self)
{
    return (mg_itemset_t *) self;
}

mg_itemset_t *mg_itemset_new(void)
{
    if (sodium_init() < 0)
        return NULL;
    mg_itemset_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->sums = calloc(1, sizeof *self->sums);
    if (!self->sums) {
        free(self);
        return NULL;
    }
    self->sums_cap = 1;
    self->sums_valid = 1;
    return self;
}

void mg_itemset_destroy(mg_itemset_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_itemset_t *self = *self_p;
    free(self->items);
    free(self->scratch);
    free(self->sums);
    free(self);
    *self_p = NULL;
}

/* Grows an array to hold at least `need` elements of `size` bytes. */
static int s_reserve(void **array, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return MG_OK;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size)
            return MG_ERR_NOMEM;
        n *= 2;
    }
    void *p = realloc(*array, n * size);
    if (!p)
        return MG_ERR_NOMEM;
    *array = p;
    *cap = n;
    return MG_OK;
}

int mg_itemset_add_many(mg_itemset_t *self, const mg_item_t *items,
                        size_t count)
{
    if (!self || (!items && count))
        return MG_ERR_ARG;
    if (count == 0)
        return MG_OK;
    size_t total = self->sorted + self->pending;
    if (count > SIZE_MAX / 2 - total)
        return MG_ERR_NOMEM;
    /* Everything a later read needs is reserved here, where failure can
       be reported. */
    if (s_reserve((void **) &self->items, &self->cap, total + count,
                  sizeof *self->items) != MG_OK
        || s_reserve((void **) &self->sums, &self->sums_cap, total + count + 1,
                     sizeof *self->sums) != MG_OK)
        return MG_ERR_NOMEM;
    /* Appending in order to a set with nothing pending keeps it sorted
       (the common case of a store listing its items in key order): count
       that leading run first, then reserve scratch for the rest, so that
       a failure leaves the set unchanged. */
    size_t run = 0;
    if (self->pending == 0) {
        const mg_item_t *last = self->sorted ? &self->items[self->sorted - 1] : NULL;
        while (run < count && (!last || mg_item_cmp(&items[run], last) >= 0)) {
            last = &items[run];
            run++;
        }
    }
    size_t rest = count - run;
    if (rest && s_reserve((void **) &self->scratch, &self->scratch_cap,
                          self->pending + rest, sizeof *self->scratch) != MG_OK)
        return MG_ERR_NOMEM;
    for (size_t i = 0; i < run; i++) {
        if (self->sorted > 0
            && mg_item_cmp(&items[i], &self->items[self->sorted - 1]) == 0)
            continue;
        self->items[self->sorted++] = items[i];
    }
    if (rest) {
        memcpy(self->items + self->sorted + self->pending, items + run,
               rest * sizeof *items);
        self->pending += rest;
    }
    return MG_OK;
}

int mg_itemset_add(mg_itemset_t *self, const mg_item_t *item)
{
    return mg_itemset_add_many(self, item, 1);
}

/* Sorts the pending tail and merges it into the sorted part, dropping
   duplicates. Never allocates (scratch was reserved by add). */
static void s_merge(mg_itemset_t *self)
{
    if (self->pending == 0)
        return;
    size_t head = self->sorted;
    size_t k = self->pending;
    mg_item_t *tail = self->scratch;
    memcpy(tail, self->items + head, k * sizeof *tail);
    qsort(tail, k, sizeof *tail, s_item_qcmp);
    /* First index whose item changes: sums before it stay valid. */
    size_t lo = 0, hi = head;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mg_item_cmp(&self->items[mid], &tail[0]) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t first = lo;
    /* Merge from the back into items[0, head + k). */
    size_t i = head, j = k, w = head + k;
    while (j > 0) {
        if (i > 0 && mg_item_cmp(&self->items[i - 1], &tail[j - 1]) > 0)
            self->items[--w] = self->items[--i];
        else
            self->items[--w] = tail[--j];
    }
    /* Drop duplicates from `first` on (the part before it is unchanged). */
    size_t n = head + k;
    size_t out = first;
    for (size_t r = first; r < n; r++) {
        if (out > 0 && mg_item_cmp(&self->items[out - 1], &self->items[r]) == 0)
            continue;
        self->items[out++] = self->items[r];
    }
    self->sorted = out;
    self->pending = 0;
    if (self->sums_valid > first + 1)
        self->sums_valid = first + 1;
}

/* Makes sums[0, end] valid. */
static void s_sums_upto(mg_itemset_t *self, size_t end)
{
    while (self->sums_valid <= end) {
        size_t i = self->sums_valid;
        self->sums[i] = self->sums[i - 1];
        s_u256_add_id(&self->sums[i], self->items[i - 1].id);
        self->sums_valid++;
    }
}

size_t mg_itemset_size(const mg_itemset_t *self)
{
    if (!self)
        return 0;
    s_merge(s_mut(self));
    return self->sorted;
}

const mg_item_t *mg_itemset_item_at(const mg_itemset_t *self, size_t index)
{
    if (!self)
        return NULL;
    s_merge(s_mut(self));
    return index < self->sorted ? &self->items[index] : NULL;
}

/* First index in [from, sorted) whose item is >= bound (after a merge). */
static size_t s_lower_bound_from(const mg_itemset_t *self, size_t from,
                                 const mg_item_t *bound)
{
    size_t lo = from, hi = self->sorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mg_item_cmp(&self->items[mid], bound) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t mg_itemset_lower_bound(const mg_itemset_t *self,
                              const mg_item_t *bound)
{
    if (!self || !bound)
        return 0;
    s_merge(s_mut(self));
    return s_lower_bound_from(self, 0, bound);
}

int mg_itemset_remove(mg_itemset_t *self, const mg_item_t *item)
{
    if (!self || !item)
        return MG_ERR_ARG;
    s_merge(self);
    size_t i = s_lower_bound_from(self, 0, item);
    if (i == self->sorted || mg_item_cmp(&self->items[i], item) != 0)
        return MG_ERR_NOT_FOUND;
    memmove(self->items + i, self->items + i + 1,
            (self->sorted - i - 1) * sizeof *self->items);
    self->sorted--;
    if (self->sums_valid > i + 1)
        self->sums_valid = i + 1;
    return MG_OK;
}

/* Fingerprint of [begin, end) after a merge; indexes already checked. */
static void s_range_fp(const mg_itemset_t *self, size_t begin, size_t end,
                       uint8_t out[MG_RECON_FP_BYTES])
{
    s_sums_upto(s_mut(self), end);
    s_u256_t sum;
    s_u256_sub(&self->sums[end], &self->sums[begin], &sum);
    s_fingerprint(&sum, end - begin, out);
}

int mg_itemset_fingerprint(const mg_itemset_t *self, size_t begin,
                           size_t end, uint8_t out[MG_RECON_FP_BYTES])
{
    if (!self || !out)
        return MG_ERR_ARG;
    s_merge(s_mut(self));
    if (begin > end || end > self->sorted)
        return MG_ERR_ARG;
    s_range_fp(self, begin, end, out);
    return MG_OK;
}

int mg_itemset_prepare(mg_itemset_t *self)
{
    if (!self)
        return MG_ERR_ARG;
    s_merge(self);
    s_sums_upto(self, self->sorted);
    return MG_OK;
}

/* ------------------------------------------------------------------ */
/* Short salted hashes (version 2). Sub-range fingerprints and the ids of
   an initiator's list are 32-bit SipHash-2-4 values (libsodium
   crypto_shorthash) keyed by the session id, so that a collision in one
   session says nothing about the next one, and nobody can grind records
   whose short values collide in advance (docs/reconciliation.md §3.2). */

typedef struct {
    uint8_t k[crypto_shorthash_KEYBYTES]; /* LE64(session) || "mg-recon" */
} s_key_t;

static void s_key_of(uint64_t session, s_key_t *key)
{
    for (int j = 0; j < 8; j++)
        key->k[j] = (uint8_t) (session >> (8 * j));
    memcpy(key->k + 8, "mg-recon", 8);
}

static uint32_t s_short(const s_key_t *key, const uint8_t *in, size_t len)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, in, len, key->k);
    return (uint32_t) h[0] | (uint32_t) h[1] << 8 | (uint32_t) h[2] << 16
           | (uint32_t) h[3] << 24;
}

/* The short fingerprint of set items [begin, end): SipHash of the same 40
   bytes as the full fingerprint, low 32 bits. */
static uint32_t s_range_fp_short(const mg_itemset_t *self, const s_key_t *key,
                                 size_t begin, size_t end)
{
    uint8_t in[40];
    s_sums_upto(s_mut(self), end);
    s_u256_t sum;
    s_u256_sub(&self->sums[end], &self->sums[begin], &sum);
    s_fp_input(&sum, end - begin, in);
    return s_short(key, in, sizeof in);
}

static uint32_t s_id_short(const s_key_t *key, const uint8_t id[MG_RECON_ID_BYTES])
{
    return s_short(key, id, MG_RECON_ID_BYTES);
}

/* ------------------------------------------------------------------ */
/* Bounds: an item-shaped point of the order, or +infinity. A range of a
   message holds the items >= the previous range's bound (the first range
   starts at the least item) and < its own bound. */

typedef struct {
    mg_item_t at;   /* the point: bucket, id = prefix padded with zeros */
    bool inf;       /* past every item */
} s_bound_t;

static int s_bound_cmp(const s_bound_t *a, const s_bound_t *b)
{
    if (a->inf || b->inf)
        return (int) a->inf - (int) b->inf;
    return mg_item_cmp(&a->at, &b->at);
}

/* The shortest bound b with prev < b <= curr (prev < curr). Between two
   buckets that is the bucket alone; inside one bucket, the id bytes up to
   and including the first that differs. */
static s_bound_t s_bound_between(const mg_item_t *prev, const mg_item_t *curr)
{
    s_bound_t b = { .inf = false };
    b.at.bucket = curr->bucket;
    if (prev->bucket == curr->bucket) {
        size_t k = 0;
        while (k < MG_RECON_ID_BYTES && prev->id[k] == curr->id[k])
            k++;
        /* k < 32 since prev != curr. */
        memcpy(b.at.id, curr->id, k + 1);
    }
    return b;
}

/* ------------------------------------------------------------------ */
/* Message writer. Ranges are packed into `body`; the message header
   (array size, version, session) is written last, when the count is
   known. */

typedef struct {
    msgpack_sbuffer body; /* the packed ranges */
    msgpack_packer pk;    /* writes into body */
    size_t ranges;        /* ranges in body */
    uint64_t bucket;      /* bucket of the last upper bound written (0 before
                             the first: the least item's) */
    bool oom;             /* a write failed */
} s_writer_t;

/* A point to roll a writer back to. */
typedef struct {
    size_t size, ranges;
    uint64_t bucket;
} s_mark_t;

/* Largest encodings, for the frame arithmetic:
   - a bound: uint64 (9 bytes) + bin8 header (2) + 32 bytes of prefix = 43;
   - a range header: array(3) tag = 1 byte;
   - a Skip range: 1 + 43 + nil (1) = 45;
   - the closing continuation range: 1 + nil (1) + empty bin (2) +
     fingerprint (2 + 16) = 22;
   - the message header: array32 tag and size (5) + version (1) + session
     (uint64: 9) + the responder's set fingerprint (bin 16: 18) = 33. */
#define S_BOUND_MAX 43
#define S_SKIP_MAX 45
#define S_CONTINUE_MAX 22
#define S_HEADER_MAX 33
/* Room kept free while filling a message: what the sender may still have
   to emit when it decides to stop (a pending Skip, then the continuation
   range), plus the header. 45 + 22 + 33 = 100. */
#define S_RESERVE (S_SKIP_MAX + S_CONTINUE_MAX + S_HEADER_MAX)
/* A full id in an id blob. */
#define S_ID_ENC MG_RECON_ID_BYTES
/* A full-id list range's fixed part: range tag (1) + bound (43) + array(2)
   (1) + tag (1) + bin32 header (5). */
#define S_IDLIST_FIXED (1 + S_BOUND_MAX + 1 + 1 + 5)
/* A short fingerprint: uint32 (5 bytes at most). */
#define S_FP_SHORT_MAX 5

/* Progress: the first answer a sender writes into an empty message must
   always fit, or a session could send nothing but continuations forever.
   The largest unsplittable answers are a split (a Skip, then BRANCH short
   fingerprint ranges), an initiator's short-id list (a Skip, then fewer
   than MG_RECON_INIT_SPLIT_MIN ids), a responder's full-id list (fewer
   than MG_RECON_SPLIT_MIN ids) and one id of a cut full-id list. */
_Static_assert(S_SKIP_MAX + MG_RECON_BRANCH * (1 + S_BOUND_MAX + S_FP_SHORT_MAX)
                   + S_RESERVE <= MG_RECON_FRAME_MIN,
               "MG_RECON_FRAME_MIN too small for a split");
_Static_assert(S_SKIP_MAX + 1 + S_BOUND_MAX + 1 + 1 + 3
                   + (MG_RECON_INIT_SPLIT_MIN - 1) * MG_RECON_SHORT_BYTES
                   + S_RESERVE <= MG_RECON_FRAME_MIN,
               "MG_RECON_FRAME_MIN too small for a short-id list");
_Static_assert(S_SKIP_MAX + S_IDLIST_FIXED + (MG_RECON_SPLIT_MIN - 1) * S_ID_ENC
                   + S_RESERVE <= MG_RECON_FRAME_MIN,
               "MG_RECON_FRAME_MIN too small for a full-id list");
_Static_assert(MG_RECON_BRANCH <= MG_RECON_SPLIT_MIN
                   && MG_RECON_BRANCH <= MG_RECON_INIT_SPLIT_MIN,
               "a split must never make an empty sub-range");

static void s_writer_init(s_writer_t *w)
{
    msgpack_sbuffer_init(&w->body);
    msgpack_packer_init(&w->pk, &w->body, msgpack_sbuffer_write);
    w->ranges = 0;
    w->bucket = 0;
    w->oom = false;
}

static s_mark_t s_mark(const s_writer_t *w)
{
    s_mark_t m = { w->body.size, w->ranges, w->bucket };
    return m;
}

static void s_rollback(s_writer_t *w, const s_mark_t *m)
{
    w->body.size = m->size;
    w->ranges = m->ranges;
    w->bucket = m->bucket;
}

static void s_check(s_writer_t *w, int rc)
{
    if (rc != 0)
        w->oom = true;
}

/* A range's header and bound: array(2) [prefix, ...] when the bound stays
   in the bucket of the previous one, else array(3) [bucket, prefix, ...]
   (bucket nil and an empty prefix for +infinity). */
static void s_pack_head(s_writer_t *w, const s_bound_t *b)
{
    if (b->inf) {
        s_check(w, msgpack_pack_array(&w->pk, 3));
        s_check(w, msgpack_pack_nil(&w->pk));
        s_check(w, msgpack_pack_bin(&w->pk, 0));
        w->ranges++;
        return;
    }
    /* The shortest prefix naming the same point: drop trailing zeros. */
    size_t len = MG_RECON_ID_BYTES;
    while (len > 0 && b->at.id[len - 1] == 0)
        len--;
    if (b->at.bucket == w->bucket) {
        s_check(w, msgpack_pack_array(&w->pk, 2));
    } else {
        s_check(w, msgpack_pack_array(&w->pk, 3));
        s_check(w, msgpack_pack_uint64(&w->pk, b->at.bucket));
    }
    s_check(w, msgpack_pack_bin(&w->pk, len));
    if (len)
        s_check(w, msgpack_pack_bin_body(&w->pk, b->at.id, len));
    w->bucket = b->at.bucket;
    w->ranges++;
}

static void s_pack_skip(s_writer_t *w, const s_bound_t *b)
{
    s_pack_head(w, b);
    s_check(w, msgpack_pack_nil(&w->pk));
}

static void s_pack_fp(s_writer_t *w, const s_bound_t *b,
                      const uint8_t fp[MG_RECON_FP_BYTES])
{
    s_pack_head(w, b);
    s_check(w, msgpack_pack_bin(&w->pk, MG_RECON_FP_BYTES));
    s_check(w, msgpack_pack_bin_body(&w->pk, fp, MG_RECON_FP_BYTES));
}

static void s_pack_fp_short(s_writer_t *w, const s_bound_t *b, uint32_t fp)
{
    s_pack_head(w, b);
    s_check(w, msgpack_pack_uint32(&w->pk, fp));
}

/* The initiator's list of set items [lo, hi): [0, bin(4k)], the short
   ids in set order. */
static void s_pack_short_ids(s_writer_t *w, const s_bound_t *b,
                             const mg_itemset_t *set, const s_key_t *key,
                             size_t lo, size_t hi)
{
    s_pack_head(w, b);
    s_check(w, msgpack_pack_array(&w->pk, 2));
    s_check(w, msgpack_pack_uint8(&w->pk, 0));
    s_check(w, msgpack_pack_bin(&w->pk, (hi - lo) * MG_RECON_SHORT_BYTES));
    for (size_t i = lo; i < hi; i++) {
        uint32_t v = s_id_short(key, set->items[i].id);
        uint8_t le[4] = { (uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16),
                          (uint8_t) (v >> 24) };
        s_check(w, msgpack_pack_bin_body(&w->pk, le, sizeof le));
    }
}

/* The responder's full ids of set items [lo, hi): [1, bin(32k)]. */
static void s_pack_full_ids(s_writer_t *w, const s_bound_t *b,
                            const mg_itemset_t *set, size_t lo, size_t hi)
{
    s_pack_head(w, b);
    s_check(w, msgpack_pack_array(&w->pk, 2));
    s_check(w, msgpack_pack_uint8(&w->pk, 1));
    s_check(w, msgpack_pack_bin(&w->pk, (hi - lo) * MG_RECON_ID_BYTES));
    for (size_t i = lo; i < hi; i++)
        s_check(w, msgpack_pack_bin_body(&w->pk, set->items[i].id,
                                         MG_RECON_ID_BYTES));
}

/* A range over set items [lo, hi) described by the sender's content: an
   empty list when it holds nothing there (the peer then answers with its
   ids at once), otherwise the full 16-byte fingerprint. */
static void s_pack_summary(s_writer_t *w, bool initiator, const s_bound_t *b,
                           const mg_itemset_t *set, const s_key_t *key,
                           size_t lo, size_t hi)
{
    if (lo == hi) {
        if (initiator)
            s_pack_short_ids(w, b, set, key, lo, hi);
        else
            s_pack_full_ids(w, b, set, lo, hi);
        return;
    }
    uint8_t fp[MG_RECON_FP_BYTES];
    s_range_fp(set, lo, hi, fp);
    s_pack_fp(w, b, fp);
}

/* The answer to a differing range [lo, hi) with upper bound `upper`:
   MG_RECON_BRANCH sub-ranges with short fingerprints, of nearly equal
   item counts; or, below the side's split minimum, the side's list (short
   ids from the initiator, full ids from the responder). */
static void s_pack_split(s_writer_t *w, bool initiator, const s_bound_t *upper,
                         const mg_itemset_t *set, const s_key_t *key,
                         size_t lo, size_t hi)
{
    size_t n = hi - lo;
    if (initiator && n < MG_RECON_INIT_SPLIT_MIN) {
        s_pack_short_ids(w, upper, set, key, lo, hi);
        return;
    }
    if (!initiator && n < MG_RECON_SPLIT_MIN) {
        s_pack_full_ids(w, upper, set, lo, hi);
        return;
    }
    size_t parts = MG_RECON_BRANCH;
    size_t per = n / parts, extra = n % parts;
    size_t at = lo;
    for (size_t i = 0; i < parts; i++) {
        size_t next = at + per + (i < extra ? 1 : 0);
        uint32_t fp = s_range_fp_short(set, key, at, next);
        if (next == hi) {
            s_pack_fp_short(w, upper, fp);
        } else {
            s_bound_t b = s_bound_between(&set->items[next - 1], &set->items[next]);
            s_pack_fp_short(w, &b, fp);
        }
        at = next;
    }
}

/* Assembles header + body into a fresh buffer. A responder's header also
   carries the full fingerprint of its whole set (`setfp`, else NULL). */
static int s_writer_finish(s_writer_t *w, uint64_t session, const uint8_t *setfp,
                           uint8_t **out, size_t *out_len)
{
    if (w->oom)
        return MG_ERR_NOMEM;
    msgpack_sbuffer head;
    msgpack_sbuffer_init(&head);
    msgpack_packer hpk;
    msgpack_packer_init(&hpk, &head, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&hpk, (setfp ? 3 : 2) + w->ranges);
    rc |= msgpack_pack_uint8(&hpk, MG_RECON_VERSION);
    rc |= msgpack_pack_uint64(&hpk, session);
    if (setfp)
        rc |= msgpack_pack_bin_with_body(&hpk, setfp, MG_RECON_FP_BYTES);
    uint8_t *buf = NULL;
    if (rc == 0)
        buf = malloc(head.size + w->body.size);
    if (!buf) {
        msgpack_sbuffer_destroy(&head);
        return MG_ERR_NOMEM;
    }
    memcpy(buf, head.data, head.size);
    if (w->body.size)
        memcpy(buf + head.size, w->body.data, w->body.size);
    *out = buf;
    *out_len = head.size + w->body.size;
    msgpack_sbuffer_destroy(&head);
    return MG_OK;
}

/* ------------------------------------------------------------------ */
/* Parsed input */

typedef enum {
    S_SKIP,      /* nil */
    S_FP,        /* bin(16): full fingerprint */
    S_FP_SHORT,  /* uint <= 2^32 - 1: short fingerprint */
    S_SHORT_IDS, /* [0, bin(4k)]: initiator's short ids */
    S_FULL_IDS,  /* [1, bin(32k)]: responder's full ids */
    S_ANSWER,    /* [2, k, bitmap, bin(32m)]: responder's answer to a list */
} s_mode_t;

typedef struct {
    s_bound_t upper;               /* the range's upper bound */
    s_mode_t mode;                 /* what the peer says about it */
    const uint8_t *fp;             /* S_FP: 16 bytes, inside the input */
    uint32_t fp_short;             /* S_FP_SHORT */
    const uint8_t *ids;            /* S_SHORT_IDS: 4 bytes each; S_FULL_IDS,
                                      S_ANSWER: 32 bytes each */
    size_t nids;                   /* how many */
    uint64_t k;                    /* S_ANSWER: ids of the list answered */
    const uint8_t *bitmap;         /* S_ANSWER: bit i (LSB first) set when
                                      the peer lacks our i-th listed item */
    size_t bitmap_len;             /* 0 (no bit set) or ceil(k / 8) */
} s_range_t;

#define S_MALFORMED(why, ...) \
    mg_why_set(why, MG_ERR_MALFORMED, "message de réconciliation mal formé : " __VA_ARGS__)

/* Checks one range's payload; `from_initiator` tells which payloads the
   sender may use. */
static int s_parse_payload(const msgpack_object *body, bool from_initiator,
                           size_t i, s_range_t *out, mg_why_t *why)
{
    if (body->type == MSGPACK_OBJECT_NIL) {
        out->mode = S_SKIP;
        return MG_OK;
    }
    if (body->type == MSGPACK_OBJECT_BIN && body->via.bin.size == MG_RECON_FP_BYTES) {
        out->mode = S_FP;
        out->fp = (const uint8_t *) body->via.bin.ptr;
        return MG_OK;
    }
    if (body->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (body->via.u64 > UINT32_MAX)
            return S_MALFORMED(why, "plage %zu : empreinte courte de plus de 32 bits", i);
        out->mode = S_FP_SHORT;
        out->fp_short = (uint32_t) body->via.u64;
        return MG_OK;
    }
    if (body->type != MSGPACK_OBJECT_ARRAY || body->via.array.size < 2
        || body->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return S_MALFORMED(why, "plage %zu : contenu invalide (nil, entier, bin 16 ou liste)", i);
    const msgpack_object *f = body->via.array.ptr;
    uint32_t n = body->via.array.size;
    uint64_t tag = f[0].via.u64;
    if (tag == 0) {
        if (!from_initiator)
            return S_MALFORMED(why, "plage %zu : liste courte venant du répondant", i);
        if (n != 2 || f[1].type != MSGPACK_OBJECT_BIN
            || f[1].via.bin.size % MG_RECON_SHORT_BYTES != 0)
            return S_MALFORMED(why, "plage %zu : liste d'identifiants courts invalide", i);
        out->mode = S_SHORT_IDS;
        out->ids = (const uint8_t *) f[1].via.bin.ptr;
        out->nids = f[1].via.bin.size / MG_RECON_SHORT_BYTES;
        return MG_OK;
    }
    if (from_initiator)
        return S_MALFORMED(why, "plage %zu : liste ou réponse venant de l'initiateur", i);
    if (tag == 1) {
        if (n != 2 || f[1].type != MSGPACK_OBJECT_BIN
            || f[1].via.bin.size % MG_RECON_ID_BYTES != 0)
            return S_MALFORMED(why, "plage %zu : liste d'identifiants invalide", i);
        out->mode = S_FULL_IDS;
        out->ids = (const uint8_t *) f[1].via.bin.ptr;
        out->nids = f[1].via.bin.size / MG_RECON_ID_BYTES;
        return MG_OK;
    }
    if (tag == 2) {
        if (n != 4 || f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
            || f[1].via.u64 > MG_RECON_SHORT_IDS_MAX || f[2].type != MSGPACK_OBJECT_BIN
            || f[3].type != MSGPACK_OBJECT_BIN
            || f[3].via.bin.size % MG_RECON_ID_BYTES != 0)
            return S_MALFORMED(why, "plage %zu : réponse à une liste invalide", i);
        uint64_t k = f[1].via.u64;
        size_t blen = f[2].via.bin.size;
        const uint8_t *bm = (const uint8_t *) f[2].via.bin.ptr;
        if (blen != 0 && blen != (k + 7) / 8)
            return S_MALFORMED(why, "plage %zu : table de bits de %zu octets pour %llu identifiants",
                               i, blen, (unsigned long long) k);
        /* Bits past the k-th are zero. */
        if (blen && (k % 8) && (bm[blen - 1] >> (k % 8)) != 0)
            return S_MALFORMED(why, "plage %zu : bits au-delà de la liste", i);
        out->mode = S_ANSWER;
        out->k = k;
        out->bitmap = bm;
        out->bitmap_len = blen;
        out->ids = (const uint8_t *) f[3].via.bin.ptr;
        out->nids = f[3].via.bin.size / MG_RECON_ID_BYTES;
        return MG_OK;
    }
    return S_MALFORMED(why, "plage %zu : type de contenu %llu inconnu", i,
                       (unsigned long long) tag);
}

/* Checks the whole message before anything is acted on, so that a bad
   message has no effect at all. */
static int s_parse(const msgpack_object *msg, bool from_initiator,
                   uint64_t *session, const uint8_t **setfp,
                   s_range_t **ranges_out, size_t *count_out, mg_why_t *why)
{
    size_t head = from_initiator ? 2 : 3;
    if (msg->type != MSGPACK_OBJECT_ARRAY || msg->via.array.size < head)
        return S_MALFORMED(why, "attendu un tableau [version, session, %splages...]",
                           from_initiator ? "" : "empreinte de l'ensemble, ");
    const msgpack_object *v = &msg->via.array.ptr[0];
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return S_MALFORMED(why, "version absente");
    if (v->via.u64 != MG_RECON_VERSION)
        return S_MALFORMED(why, "version %llu non prise en charge (attendu %d)",
                           (unsigned long long) v->via.u64, MG_RECON_VERSION);
    const msgpack_object *s = &msg->via.array.ptr[1];
    if (s->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return S_MALFORMED(why, "numéro de session absent");
    *session = s->via.u64;
    *setfp = NULL;
    if (!from_initiator) {
        const msgpack_object *f = &msg->via.array.ptr[2];
        if (f->type != MSGPACK_OBJECT_BIN || f->via.bin.size != MG_RECON_FP_BYTES)
            return S_MALFORMED(why, "empreinte de l'ensemble du répondant absente");
        *setfp = (const uint8_t *) f->via.bin.ptr;
    }
    size_t n = msg->via.array.size - head;
    s_range_t *ranges = NULL;
    if (n > 0) {
        ranges = calloc(n, sizeof *ranges);
        if (!ranges)
            return mg_why_set(why, MG_ERR_NOMEM, "mémoire insuffisante");
    }
    int rc = MG_OK;
    s_bound_t prev = { .inf = false }; /* the least item: all zeros */
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *r = &msg->via.array.ptr[i + head];
        s_range_t *out = &ranges[i];
        if (r->type != MSGPACK_OBJECT_ARRAY
            || (r->via.array.size != 2 && r->via.array.size != 3)) {
            rc = S_MALFORMED(why, "plage %zu : attendu [seau, préfixe, contenu] ou [préfixe, contenu]", i + 1);
            goto fail;
        }
        bool same = r->via.array.size == 2;
        const msgpack_object *bucket = same ? NULL : &r->via.array.ptr[0];
        const msgpack_object *prefix = &r->via.array.ptr[same ? 0 : 1];
        const msgpack_object *body = &r->via.array.ptr[same ? 1 : 2];
        if (prefix->type != MSGPACK_OBJECT_BIN
            || prefix->via.bin.size > MG_RECON_ID_BYTES) {
            rc = S_MALFORMED(why, "plage %zu : préfixe d'identifiant invalide", i + 1);
            goto fail;
        }
        memset(&out->upper, 0, sizeof out->upper);
        if (same) {
            out->upper.at.bucket = prev.at.bucket;
        } else if (bucket->type == MSGPACK_OBJECT_NIL) {
            if (prefix->via.bin.size != 0 || i + 1 != n) {
                rc = S_MALFORMED(why, "plage %zu : borne infinie ailleurs qu'en fin de message", i + 1);
                goto fail;
            }
            out->upper.inf = true;
        } else if (bucket->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            out->upper.at.bucket = bucket->via.u64;
        } else {
            rc = S_MALFORMED(why, "plage %zu : seau invalide", i + 1);
            goto fail;
        }
        if (!out->upper.inf && prefix->via.bin.size)
            memcpy(out->upper.at.id, prefix->via.bin.ptr, prefix->via.bin.size);
        /* The first bound may equal the least item (an empty range);
           after it bounds strictly increase. */
        if (i > 0 ? s_bound_cmp(&prev, &out->upper) >= 0
                  : s_bound_cmp(&prev, &out->upper) > 0) {
            rc = S_MALFORMED(why, "plage %zu : bornes non strictement croissantes", i + 1);
            goto fail;
        }
        prev = out->upper;
        rc = s_parse_payload(body, from_initiator, i + 1, out, why);
        if (rc != MG_OK)
            goto fail;
    }
    *ranges_out = ranges;
    *count_out = n;
    return MG_OK;
fail:
    free(ranges);
    return rc;
}

/* ------------------------------------------------------------------ */
/* mg_recon_t */

/* A growable array of 32-byte ids. */
typedef struct {
    uint8_t *data;  /* len ids */
    size_t len;     /* ids held */
    size_t cap;     /* ids of capacity */
    bool dirty;     /* appended to since the last sort */
} s_ids_t;

struct mg_recon_t {
    const mg_itemset_t *set; /* the local set; not owned */
    bool initiator;          /* this side opened the session */
    size_t frame_limit;      /* largest message this side produces */
    uint64_t session;        /* initiator: chosen at random; responder: the
                                one of the last message answered */
    s_key_t key;             /* SipHash key derived from `session` */
    bool initiated;          /* initiator: first message produced */
    bool done;               /* initiator: nothing more to say */
    bool verified;           /* initiator, once done: the final check held */
    uint8_t peer_fp[MG_RECON_FP_BYTES]; /* initiator: the responder's set
                                           fingerprint, from its last answer */
    s_ids_t have;            /* initiator: ids we hold, the peer lacks */
    s_ids_t need;            /* initiator: ids the peer holds, we lack */
    mg_recon_stats_t stats;  /* counters */
};

mg_recon_t *mg_recon_new(const mg_itemset_t *set, bool initiator,
                         size_t frame_limit)
{
    if (!set)
        return NULL;
    if (frame_limit == 0)
        frame_limit = MG_RECON_FRAME_DEFAULT;
    if (frame_limit < MG_RECON_FRAME_MIN || frame_limit > MG_RECON_FRAME_MAX)
        return NULL;
    mg_recon_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->set = set;
    self->initiator = initiator;
    self->frame_limit = frame_limit;
    /* The set's constructor initialised libsodium. */
    randombytes_buf(&self->session, sizeof self->session);
    s_key_of(self->session, &self->key);
    return self;
}

int mg_recon_set_session(mg_recon_t *self, uint64_t session)
{
    if (!self || !self->initiator || self->initiated)
        return MG_ERR_ARG;
    self->session = session;
    s_key_of(session, &self->key);
    return MG_OK;
}

uint64_t mg_recon_session(const mg_recon_t *self)
{
    return self ? self->session : 0;
}

void mg_recon_destroy(mg_recon_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_recon_t *self = *self_p;
    free(self->have.data);
    free(self->need.data);
    free(self);
    *self_p = NULL;
}

static int s_ids_push(s_ids_t *v, const uint8_t *id)
{
    if (s_reserve((void **) &v->data, &v->cap, v->len + 1,
                  MG_RECON_ID_BYTES) != MG_OK)
        return MG_ERR_NOMEM;
    memcpy(v->data + v->len * MG_RECON_ID_BYTES, id, MG_RECON_ID_BYTES);
    v->len++;
    v->dirty = true;
    return MG_OK;
}

/* Sorts and drops duplicates (a region can be examined twice when a
   message was cut by the frame limit and the set changed, or when a
   continuation range covers it again). */
static const uint8_t *s_ids_result(s_ids_t *v, size_t *count)
{
    if (v->dirty && v->len > 1) {
        qsort(v->data, v->len, MG_RECON_ID_BYTES, s_id_qcmp);
        size_t out = 1;
        for (size_t i = 1; i < v->len; i++) {
            uint8_t *cur = v->data + i * MG_RECON_ID_BYTES;
            if (memcmp(v->data + (out - 1) * MG_RECON_ID_BYTES, cur,
                       MG_RECON_ID_BYTES) == 0)
                continue;
            memmove(v->data + out * MG_RECON_ID_BYTES, cur, MG_RECON_ID_BYTES);
            out++;
        }
        v->len = out;
    }
    v->dirty = false;
    if (count)
        *count = v->len;
    return v->len ? v->data : NULL;
}

const uint8_t *mg_recon_have(mg_recon_t *self, size_t *count)
{
    if (!self) {
        if (count)
            *count = 0;
        return NULL;
    }
    return s_ids_result(&self->have, count);
}

const uint8_t *mg_recon_need(mg_recon_t *self, size_t *count)
{
    if (!self) {
        if (count)
            *count = 0;
        return NULL;
    }
    return s_ids_result(&self->need, count);
}

bool mg_recon_done(const mg_recon_t *self)
{
    return self && self->initiator && self->done;
}

void mg_recon_stats(const mg_recon_t *self, mg_recon_stats_t *stats)
{
    if (!stats)
        return;
    if (!self)
        memset(stats, 0, sizeof *stats);
    else
        *stats = self->stats;
}

int mg_recon_initiate(mg_recon_t *self, uint8_t **out, size_t *out_len)
{
    if (!self || !out || !out_len || !self->initiator || self->initiated)
        return MG_ERR_ARG;
    *out = NULL;
    *out_len = 0;
    const mg_itemset_t *set = self->set;
    size_t n = mg_itemset_size(set);
    s_writer_t w;
    s_writer_init(&w);
    /* One range over everything: peers in sync stop after one exchange. */
    s_bound_t inf = { .inf = true };
    s_pack_summary(&w, true, &inf, set, &self->key, 0, n);
    int rc = s_writer_finish(&w, self->session, NULL, out, out_len);
    msgpack_sbuffer_destroy(&w.body);
    if (rc != MG_OK)
        return rc;
    self->initiated = true;
    self->stats.bytes_sent += *out_len;
    self->stats.messages_sent++;
    return MG_OK;
}

/* Initiator: the peer's full ids `theirs` (nids, 32 bytes each) against
   set items [lo, hi). Records our items the peer lacks in `have` (when
   `with_have`) and the peer's ids we lack in `need`. Both sides are
   sorted by id (the set is sorted by bucket first), then merged. */
static int s_resolve(mg_recon_t *self, size_t lo, size_t hi,
                     const uint8_t *ids, size_t nids, bool with_have)
{
    const mg_itemset_t *set = self->set;
    size_t mine_n = hi - lo, theirs_n = nids;
    uint8_t *mine = mine_n ? malloc(mine_n * MG_RECON_ID_BYTES) : NULL;
    uint8_t *theirs = theirs_n ? malloc(theirs_n * MG_RECON_ID_BYTES) : NULL;
    int rc = MG_OK;
    if ((mine_n && !mine) || (theirs_n && !theirs)) {
        rc = MG_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < mine_n; i++)
        memcpy(mine + i * MG_RECON_ID_BYTES, set->items[lo + i].id,
               MG_RECON_ID_BYTES);
    if (theirs_n)
        memcpy(theirs, ids, theirs_n * MG_RECON_ID_BYTES);
    if (mine_n > 1)
        qsort(mine, mine_n, MG_RECON_ID_BYTES, s_id_qcmp);
    if (theirs_n > 1)
        qsort(theirs, theirs_n, MG_RECON_ID_BYTES, s_id_qcmp);
    size_t i = 0, j = 0;
    while (rc == MG_OK && (i < mine_n || j < theirs_n)) {
        const uint8_t *a = i < mine_n ? mine + i * MG_RECON_ID_BYTES : NULL;
        const uint8_t *b = j < theirs_n ? theirs + j * MG_RECON_ID_BYTES : NULL;
        int c = !a ? 1 : !b ? -1 : memcmp(a, b, MG_RECON_ID_BYTES);
        if (c < 0) {
            if (with_have)
                rc = s_ids_push(&self->have, a);
            i++;
        } else if (c > 0) {
            /* A peer may repeat an id: count it once. */
            if (j == 0 || memcmp(b - MG_RECON_ID_BYTES, b, MG_RECON_ID_BYTES) != 0)
                rc = s_ids_push(&self->need, b);
            j++;
        } else {
            i++;
            j++;
            while (j < theirs_n
                   && memcmp(theirs + j * MG_RECON_ID_BYTES, a, MG_RECON_ID_BYTES) == 0)
                j++;
        }
    }
done:
    free(mine);
    free(theirs);
    return rc;
}

/* A short id and the index of the item it belongs to. */
typedef struct {
    uint32_t h;
    size_t idx;
} s_short_t;

static int s_short_qcmp(const void *a, const void *b)
{
    uint32_t x = ((const s_short_t *) a)->h, y = ((const s_short_t *) b)->h;
    return x < y ? -1 : x > y;
}

/* Responder: the answer to the initiator's short-id list `r` over set
   items [lo, hi), written as [2, k, bitmap, ids we hold that it lacks]
   into w. Returns MG_OK, or MG_ERR_NOMEM. */
static int s_pack_answer(mg_recon_t *self, s_writer_t *w, const s_range_t *r,
                         size_t lo, size_t hi)
{
    const mg_itemset_t *set = self->set;
    size_t c = hi - lo, k = r->nids;
    s_short_t *mine = c ? malloc(c * sizeof *mine) : NULL;
    bool *matched = c ? calloc(c, sizeof *matched) : NULL;
    size_t blen = (k + 7) / 8;
    uint8_t *bitmap = blen ? calloc(blen, 1) : NULL;
    int rc = MG_OK;
    if ((c && (!mine || !matched)) || (blen && !bitmap)) {
        rc = MG_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < c; i++) {
        mine[i].h = s_id_short(&self->key, set->items[lo + i].id);
        mine[i].idx = i;
    }
    if (c > 1)
        qsort(mine, c, sizeof *mine, s_short_qcmp);
    bool any_bit = false;
    for (size_t j = 0; j < k; j++) {
        const uint8_t *p = r->ids + MG_RECON_SHORT_BYTES * j;
        uint32_t h = (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
                     | (uint32_t) p[3] << 24;
        size_t a = 0, b = c;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (mine[mid].h < h)
                a = mid + 1;
            else
                b = mid;
        }
        if (a < c && mine[a].h == h) {
            for (; a < c && mine[a].h == h; a++)
                matched[mine[a].idx] = true;
        } else {
            bitmap[j / 8] |= (uint8_t) (1u << (j % 8));
            any_bit = true;
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < c; i++)
        m += !matched[i];
    s_pack_head(w, &r->upper);
    s_check(w, msgpack_pack_array(&w->pk, 4));
    s_check(w, msgpack_pack_uint8(&w->pk, 2));
    s_check(w, msgpack_pack_uint64(&w->pk, k));
    s_check(w, msgpack_pack_bin(&w->pk, any_bit ? blen : 0));
    if (any_bit)
        s_check(w, msgpack_pack_bin_body(&w->pk, bitmap, blen));
    s_check(w, msgpack_pack_bin(&w->pk, m * MG_RECON_ID_BYTES));
    for (size_t i = 0; i < c; i++)
        if (!matched[i])
            s_check(w, msgpack_pack_bin_body(&w->pk, set->items[lo + i].id,
                                             MG_RECON_ID_BYTES));
done:
    free(mine);
    free(matched);
    free(bitmap);
    return rc;
}

/* Initiator: the responder's answer to our list of set items [lo, hi).
   Returns MG_OK with *relist set when the list it answers is no longer
   ours (our items there changed since): the range is then listed again. */
static int s_take_answer(mg_recon_t *self, const s_range_t *r, size_t lo,
                         size_t hi, bool *relist)
{
    *relist = false;
    int rc = s_resolve(self, lo, hi, r->ids, r->nids, false);
    if (rc != MG_OK)
        return rc;
    if (r->k != hi - lo) {
        *relist = true;
        return MG_OK;
    }
    for (size_t i = 0; i < r->bitmap_len * 8 && i < r->k && rc == MG_OK; i++)
        if (r->bitmap[i / 8] >> (i % 8) & 1)
            rc = s_ids_push(&self->have, self->set->items[lo + i].id);
    return rc;
}

/* Processes the parsed ranges and writes the reply into w. */
static int s_answer(mg_recon_t *self, const s_range_t *ranges, size_t count,
                    s_writer_t *w)
{
    const mg_itemset_t *set = self->set;
    const s_key_t *key = &self->key;
    const bool ini = self->initiator;
    size_t n = set->sorted;
    const size_t limit = self->frame_limit;
    s_bound_t lower = { .inf = false }; /* lower bound of the current range */
    size_t idx = 0;             /* index of the first item >= lower */
    bool skip = false;          /* a Skip from the last bound written to
                                   `lower` is still to be written */
    bool stopped = false;       /* the reply is full: continue from `lower` */
    s_bound_t cont = lower;     /* where the continuation starts */
    size_t cont_idx = 0;        /* its first item */

    for (size_t i = 0; i < count && !stopped; i++) {
        const s_range_t *r = &ranges[i];
        size_t hi = r->upper.inf ? n : s_lower_bound_from(set, idx, &r->upper.at);
        size_t lo = idx;
        /* Where to roll back to if this range's answer does not fit. */
        s_mark_t mark = s_mark(w);
        bool wrote = false;
        bool differs = false;

        if (r->mode == S_FP) {
            uint8_t fp[MG_RECON_FP_BYTES];
            s_range_fp(set, lo, hi, fp);
            differs = memcmp(fp, r->fp, MG_RECON_FP_BYTES) != 0;
        } else if (r->mode == S_FP_SHORT) {
            differs = s_range_fp_short(set, key, lo, hi) != r->fp_short;
        } else if (r->mode == S_FULL_IDS) {
            int rc = s_resolve(self, lo, hi, r->ids, r->nids, true);
            if (rc != MG_OK)
                return rc;
        } else if (r->mode == S_ANSWER) {
            int rc = s_take_answer(self, r, lo, hi, &differs);
            if (rc != MG_OK)
                return rc;
        } else if (r->mode == S_SHORT_IDS) {
            /* Responder: the ids the initiator lacks and a bitmap of those
               we lack, when they fit; else our full ids, cut to fit. */
            if (skip)
                s_pack_skip(w, &lower);
            s_mark_t after_skip = s_mark(w);
            size_t used = w->body.size + S_RESERVE + S_IDLIST_FIXED;
            size_t fit = used < limit ? (limit - used) / S_ID_ENC : 0;
            size_t c = hi - lo;
            bool answered = false;
            /* It lacks at least c - k of ours: no answer fits past that. */
            if (!(c > r->nids && c - r->nids > fit)) {
                int rc = s_pack_answer(self, w, r, lo, hi);
                if (rc != MG_OK)
                    return rc;
                answered = w->body.size + S_RESERVE <= limit;
                if (!answered)
                    s_rollback(w, &after_skip);
            }
            if (answered) {
                /* written */
            } else if (c <= fit) {
                s_pack_full_ids(w, &r->upper, set, lo, hi);
            } else if (fit > 0) {
                /* The first `fit` ids, up to a bound just past the last
                   of them; the initiator settles that part itself, the
                   rest is left to a continuation. */
                size_t cut = lo + fit;
                s_bound_t b = s_bound_between(&set->items[cut - 1],
                                              &set->items[cut]);
                s_pack_full_ids(w, &b, set, lo, cut);
                stopped = true;
                cont = b;
                cont_idx = cut;
                skip = false;
            } else {
                s_rollback(w, &mark);
                stopped = true;
                cont = lower;
                cont_idx = lo;
                break;
            }
            wrote = true;
        }
        if (differs) {
            if (skip)
                s_pack_skip(w, &lower);
            s_pack_split(w, ini, &r->upper, set, key, lo, hi);
            wrote = true;
        }
        if (wrote && !stopped) {
            if (w->body.size + S_RESERVE > limit) {
                /* Does not fit: drop it, and everything from `lower` on
                   is left to the continuation. */
                s_rollback(w, &mark);
                stopped = true;
                cont = lower;
                cont_idx = lo;
                break;
            }
            skip = false;
        } else if (!wrote) {
            skip = true;
        }
        lower = r->upper;
        idx = hi;
    }
    if (stopped) {
        /* The pending Skip, then one range from `cont` to the end that
           summarises the rest of our set: the peer compares it and the
           session goes on with whatever still differs. */
        if (skip)
            s_pack_skip(w, &cont);
        s_bound_t inf = { .inf = true };
        s_pack_summary(w, ini, &inf, set, key, cont_idx, n);
    }
    return w->oom ? MG_ERR_NOMEM : MG_OK;
}

/* Initiator, once done: our set with `have` taken out and `need` put in
   is what the responder holds, if the session found every difference
   and neither set changed; compare its full fingerprint with the one the
   responder sent in its last answer. */
static int s_verify(mg_recon_t *self)
{
    size_t nh = 0, nn = 0;
    const uint8_t *have = s_ids_result(&self->have, &nh);
    const uint8_t *need = s_ids_result(&self->need, &nn);
    const mg_itemset_t *set = self->set;
    s_sums_upto(s_mut(set), set->sorted);
    s_u256_t sum = set->sums[set->sorted], take = { { 0 } }, put = { { 0 } };
    for (size_t i = 0; i < nh; i++)
        s_u256_add_id(&take, have + i * MG_RECON_ID_BYTES);
    for (size_t i = 0; i < nn; i++)
        s_u256_add_id(&put, need + i * MG_RECON_ID_BYTES);
    s_u256_t t;
    s_u256_sub(&sum, &take, &t);
    s_u256_t zero = { { 0 } }, neg;
    s_u256_sub(&zero, &put, &neg);  /* -put */
    s_u256_sub(&t, &neg, &sum);     /* t + put */
    uint8_t fp[MG_RECON_FP_BYTES];
    s_fingerprint(&sum, (uint64_t) (set->sorted - nh + nn), fp);
    self->verified = memcmp(fp, self->peer_fp, MG_RECON_FP_BYTES) == 0;
    return MG_OK;
}

bool mg_recon_verified(const mg_recon_t *self)
{
    return self && self->initiator && self->done && self->verified;
}

int mg_recon_process(mg_recon_t *self, const uint8_t *in, size_t in_len,
                     uint8_t **out, size_t *out_len, mg_why_t *why)
{
    mg_why_clear(why);
    if (!self || !out || !out_len || (!in && in_len))
        return mg_why_set(why, MG_ERR_ARG, "argument invalide");
    *out = NULL;
    *out_len = 0;
    if (self->initiator && (!self->initiated || self->done))
        return mg_why_set(why, MG_ERR_ARG, "session de réconciliation %s",
                          self->done ? "déjà terminée" : "pas encore ouverte");
    if (in_len > MG_RECON_FRAME_MAX)
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "message de réconciliation trop volumineux (%zu octets, maximum %d)",
                          in_len, MG_RECON_FRAME_MAX);
    int rc = mg_wire_scan(in, in_len, why);
    if (rc != MG_OK)
        return rc;

    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    s_range_t *ranges = NULL;
    size_t count = 0;
    uint64_t session = 0;
    s_writer_t w;
    s_writer_init(&w);
    size_t off = 0;
    msgpack_unpack_return ur =
        msgpack_unpack_next(&msg, (const char *) in, in_len, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != in_len) {
        rc = ur == MSGPACK_UNPACK_NOMEM_ERROR
                 ? mg_why_set(why, MG_ERR_NOMEM, "mémoire insuffisante")
                 : S_MALFORMED(why, "msgpack illisible");
        goto done;
    }
    const uint8_t *setfp = NULL;
    rc = s_parse(&msg.data, !self->initiator, &session, &setfp, &ranges, &count, why);
    if (rc != MG_OK)
        goto done;
    if (self->initiator && session != self->session) {
        /* A late answer to a session given up: not this session's. */
        rc = mg_why_set(why, MG_ERR_STALE,
                        "réponse d'une autre session de réconciliation (périmée)");
        goto done;
    }
    if (!self->initiator && session != self->session) {
        self->session = session;
        s_key_of(session, &self->key);
    }
    s_merge(s_mut(self->set));
    rc = s_answer(self, ranges, count, &w);
    if (rc != MG_OK) {
        mg_why_set(why, rc, "mémoire insuffisante");
        goto done;
    }
    self->stats.bytes_received += in_len;
    self->stats.messages_received++;
    self->stats.round_trips++;
    if (self->initiator)
        memcpy(self->peer_fp, setfp, MG_RECON_FP_BYTES);
    if (self->initiator && w.ranges == 0) {
        /* Every range is settled: the session is over. */
        self->done = true;
        rc = s_verify(self);
        goto done;
    }
    uint8_t myfp[MG_RECON_FP_BYTES];
    if (!self->initiator)
        s_range_fp(self->set, 0, self->set->sorted, myfp);
    rc = s_writer_finish(&w, self->session, self->initiator ? NULL : myfp, out, out_len);
    if (rc != MG_OK) {
        mg_why_set(why, rc, "mémoire insuffisante");
        goto done;
    }
    self->stats.bytes_sent += *out_len;
    self->stats.messages_sent++;
done:
    msgpack_sbuffer_destroy(&w.body);
    msgpack_unpacked_destroy(&msg);
    free(ranges);
    return rc;
}
