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

/* The fingerprint function of mg_itemset_fingerprint. */
static void s_fingerprint(const s_u256_t *sum, uint64_t count,
                          uint8_t out[MG_RECON_FP_BYTES])
{
    uint8_t in[40];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            in[8 * i + j] = (uint8_t) (sum->limb[i] >> (8 * j));
    for (int j = 0; j < 8; j++)
        in[32 + j] = (uint8_t) (count >> (8 * j));
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
   (array size and version) is written last, when the count is known. */

typedef struct {
    msgpack_sbuffer body; /* the packed ranges */
    msgpack_packer pk;    /* writes into body */
    size_t ranges;        /* ranges in body */
    bool oom;             /* a write failed */
} s_writer_t;

/* Largest encodings, for the frame arithmetic:
   - a bound: uint64 (9 bytes) + bin8 header (2) + 32 bytes of prefix = 43;
   - a range header: array(3) tag = 1 byte;
   - a Skip range: 1 + 43 + nil (1) = 45;
   - the closing continuation range: 1 + nil (1) + empty bin (2) +
     fingerprint (2 + 16) = 22;
   - the message header: array32 tag and size (5) + version (1) = 6. */
#define S_BOUND_MAX 43
#define S_SKIP_MAX 45
#define S_CONTINUE_MAX 22
#define S_HEADER_MAX 6
/* Room kept free while filling a message: what the sender may still have
   to emit when it decides to stop (a pending Skip, then the continuation
   range), plus the header. 45 + 22 + 6 = 73. */
#define S_RESERVE (S_SKIP_MAX + S_CONTINUE_MAX + S_HEADER_MAX)
/* An id in an IdList: bin8 header (2) + 32. */
#define S_ID_ENC 34
/* An IdList range's fixed part: range tag (1) + bound (43) + array32
   header (5). */
#define S_IDLIST_FIXED (1 + S_BOUND_MAX + 5)

/* Progress: the first answer a sender writes into an empty message must
   always fit, or a session could send nothing but continuations forever.
   The largest unsplittable answers are a split (a Skip, then BRANCH
   fingerprint ranges of 1 + 43 + 18 bytes), a splitter's IdList (a Skip,
   then fewer than SPLIT_MIN ids) and one id of a responder's IdList. */
_Static_assert(S_SKIP_MAX + MG_RECON_BRANCH * (1 + S_BOUND_MAX + 2 + MG_RECON_FP_BYTES)
                   + S_RESERVE <= MG_RECON_FRAME_MIN,
               "MG_RECON_FRAME_MIN too small for a split");
_Static_assert(S_SKIP_MAX + S_IDLIST_FIXED + (MG_RECON_SPLIT_MIN - 1) * S_ID_ENC
                   + S_RESERVE <= MG_RECON_FRAME_MIN,
               "MG_RECON_FRAME_MIN too small for an IdList");
_Static_assert(MG_RECON_IDS_MAX * S_ID_ENC <= MG_RECON_FRAME_MAX,
               "an IdList of MG_RECON_IDS_MAX ids must fit in a message");

static void s_writer_init(s_writer_t *w)
{
    msgpack_sbuffer_init(&w->body);
    msgpack_packer_init(&w->pk, &w->body, msgpack_sbuffer_write);
    w->ranges = 0;
    w->oom = false;
}

static void s_check(s_writer_t *w, int rc)
{
    if (rc != 0)
        w->oom = true;
}

static void s_pack_bound(s_writer_t *w, const s_bound_t *b)
{
    if (b->inf) {
        s_check(w, msgpack_pack_nil(&w->pk));
        s_check(w, msgpack_pack_bin(&w->pk, 0));
        return;
    }
    /* The shortest prefix naming the same point: drop trailing zeros. */
    size_t len = MG_RECON_ID_BYTES;
    while (len > 0 && b->at.id[len - 1] == 0)
        len--;
    s_check(w, msgpack_pack_uint64(&w->pk, b->at.bucket));
    s_check(w, msgpack_pack_bin(&w->pk, len));
    if (len)
        s_check(w, msgpack_pack_bin_body(&w->pk, b->at.id, len));
}

static void s_pack_skip(s_writer_t *w, const s_bound_t *b)
{
    s_check(w, msgpack_pack_array(&w->pk, 3));
    s_pack_bound(w, b);
    s_check(w, msgpack_pack_nil(&w->pk));
    w->ranges++;
}

static void s_pack_fp(s_writer_t *w, const s_bound_t *b,
                      const uint8_t fp[MG_RECON_FP_BYTES])
{
    s_check(w, msgpack_pack_array(&w->pk, 3));
    s_pack_bound(w, b);
    s_check(w, msgpack_pack_bin(&w->pk, MG_RECON_FP_BYTES));
    s_check(w, msgpack_pack_bin_body(&w->pk, fp, MG_RECON_FP_BYTES));
    w->ranges++;
}

/* An IdList of the ids of set items [lo, hi). */
static void s_pack_idlist(s_writer_t *w, const s_bound_t *b,
                          const mg_itemset_t *set, size_t lo, size_t hi)
{
    s_check(w, msgpack_pack_array(&w->pk, 3));
    s_pack_bound(w, b);
    s_check(w, msgpack_pack_array(&w->pk, hi - lo));
    for (size_t i = lo; i < hi; i++) {
        s_check(w, msgpack_pack_bin(&w->pk, MG_RECON_ID_BYTES));
        s_check(w, msgpack_pack_bin_body(&w->pk, set->items[i].id,
                                         MG_RECON_ID_BYTES));
    }
    w->ranges++;
}

/* A range over set items [lo, hi) described by the sender's content: an
   empty IdList when it holds nothing there (the peer then answers with
   its ids at once), otherwise a fingerprint. */
static void s_pack_summary(s_writer_t *w, const s_bound_t *b,
                           const mg_itemset_t *set, size_t lo, size_t hi)
{
    if (lo == hi) {
        s_pack_idlist(w, b, set, lo, hi);
        return;
    }
    uint8_t fp[MG_RECON_FP_BYTES];
    s_range_fp(set, lo, hi, fp);
    s_pack_fp(w, b, fp);
}

/* The answer to a differing range [lo, hi) with upper bound `upper`:
   MG_RECON_BRANCH sub-range fingerprints of nearly equal item counts,
   or the ids when there are fewer than MG_RECON_SPLIT_MIN. */
static void s_pack_split(s_writer_t *w, const s_bound_t *upper,
                         const mg_itemset_t *set, size_t lo, size_t hi)
{
    size_t n = hi - lo;
    if (n < MG_RECON_SPLIT_MIN) {
        s_pack_idlist(w, upper, set, lo, hi);
        return;
    }
    /* Never an empty sub-range: its bound would repeat the previous one
       (only possible if MG_RECON_SPLIT_MIN were below MG_RECON_BRANCH). */
    size_t parts = n < MG_RECON_BRANCH ? n : MG_RECON_BRANCH;
    size_t per = n / parts, extra = n % parts;
    size_t at = lo;
    for (size_t i = 0; i < parts; i++) {
        size_t next = at + per + (i < extra ? 1 : 0);
        uint8_t fp[MG_RECON_FP_BYTES];
        s_range_fp(set, at, next, fp);
        if (next == hi)
            s_pack_fp(w, upper, fp);
        else {
            s_bound_t b = s_bound_between(&set->items[next - 1],
                                          &set->items[next]);
            s_pack_fp(w, &b, fp);
        }
        at = next;
    }
}

/* Assembles header + body into a fresh buffer. */
static int s_writer_finish(s_writer_t *w, uint8_t **out, size_t *out_len)
{
    if (w->oom)
        return MG_ERR_NOMEM;
    msgpack_sbuffer head;
    msgpack_sbuffer_init(&head);
    msgpack_packer hpk;
    msgpack_packer_init(&hpk, &head, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&hpk, 1 + w->ranges);
    rc |= msgpack_pack_uint8(&hpk, MG_RECON_VERSION);
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

typedef enum { S_SKIP, S_FP, S_IDLIST } s_mode_t;

typedef struct {
    s_bound_t upper;               /* the range's upper bound */
    s_mode_t mode;                 /* what the peer says about it */
    const uint8_t *fp;             /* S_FP: 16 bytes, inside the input */
    const msgpack_object *ids;     /* S_IDLIST: bin(32) objects */
    size_t nids;                   /* S_IDLIST: how many */
} s_range_t;

#define S_MALFORMED(why, ...) \
    mg_why_set(why, MG_ERR_MALFORMED, "message de réconciliation mal formé : " __VA_ARGS__)

/* Checks the whole message before anything is acted on, so that a bad
   message has no effect at all. */
static int s_parse(const msgpack_object *msg, s_range_t **ranges_out,
                   size_t *count_out, mg_why_t *why)
{
    if (msg->type != MSGPACK_OBJECT_ARRAY || msg->via.array.size < 1)
        return S_MALFORMED(why, "attendu un tableau [version, plages...]");
    const msgpack_object *v = &msg->via.array.ptr[0];
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return S_MALFORMED(why, "version absente");
    if (v->via.u64 != MG_RECON_VERSION)
        return S_MALFORMED(why, "version %llu non prise en charge (attendu %d)",
                           (unsigned long long) v->via.u64, MG_RECON_VERSION);
    size_t n = msg->via.array.size - 1;
    s_range_t *ranges = NULL;
    if (n > 0) {
        ranges = calloc(n, sizeof *ranges);
        if (!ranges)
            return mg_why_set(why, MG_ERR_NOMEM, "mémoire insuffisante");
    }
    int rc = MG_OK;
    s_bound_t prev = { .inf = false }; /* the least item: all zeros */
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *r = &msg->via.array.ptr[i + 1];
        s_range_t *out = &ranges[i];
        if (r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size != 3) {
            rc = S_MALFORMED(why, "plage %zu : attendu [seau, préfixe, contenu]", i + 1);
            goto fail;
        }
        const msgpack_object *bucket = &r->via.array.ptr[0];
        const msgpack_object *prefix = &r->via.array.ptr[1];
        const msgpack_object *body = &r->via.array.ptr[2];
        if (prefix->type != MSGPACK_OBJECT_BIN
            || prefix->via.bin.size > MG_RECON_ID_BYTES) {
            rc = S_MALFORMED(why, "plage %zu : préfixe d'identifiant invalide", i + 1);
            goto fail;
        }
        memset(&out->upper, 0, sizeof out->upper);
        if (bucket->type == MSGPACK_OBJECT_NIL) {
            if (prefix->via.bin.size != 0 || i + 1 != n) {
                rc = S_MALFORMED(why, "plage %zu : borne infinie ailleurs qu'en fin de message", i + 1);
                goto fail;
            }
            out->upper.inf = true;
        } else if (bucket->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            out->upper.at.bucket = bucket->via.u64;
            if (prefix->via.bin.size)
                memcpy(out->upper.at.id, prefix->via.bin.ptr, prefix->via.bin.size);
        } else {
            rc = S_MALFORMED(why, "plage %zu : seau invalide", i + 1);
            goto fail;
        }
        /* The first bound may equal the least item (an empty range);
           after it bounds strictly increase. */
        if (i > 0 ? s_bound_cmp(&prev, &out->upper) >= 0
                  : s_bound_cmp(&prev, &out->upper) > 0) {
            rc = S_MALFORMED(why, "plage %zu : bornes non strictement croissantes", i + 1);
            goto fail;
        }
        prev = out->upper;
        if (body->type == MSGPACK_OBJECT_NIL) {
            out->mode = S_SKIP;
        } else if (body->type == MSGPACK_OBJECT_BIN
                   && body->via.bin.size == MG_RECON_FP_BYTES) {
            out->mode = S_FP;
            out->fp = (const uint8_t *) body->via.bin.ptr;
        } else if (body->type == MSGPACK_OBJECT_ARRAY) {
            if (body->via.array.size > MG_RECON_IDS_MAX) {
                rc = S_MALFORMED(why, "plage %zu : liste de plus de %d identifiants",
                                 i + 1, MG_RECON_IDS_MAX);
                goto fail;
            }
            for (uint32_t k = 0; k < body->via.array.size; k++) {
                const msgpack_object *id = &body->via.array.ptr[k];
                if (id->type != MSGPACK_OBJECT_BIN
                    || id->via.bin.size != MG_RECON_ID_BYTES) {
                    rc = S_MALFORMED(why, "plage %zu : identifiant %u invalide (attendu bin 32)",
                                     i + 1, (unsigned) k + 1);
                    goto fail;
                }
            }
            out->mode = S_IDLIST;
            out->ids = body->via.array.ptr;
            out->nids = body->via.array.size;
        } else {
            rc = S_MALFORMED(why, "plage %zu : contenu invalide (nil, bin 16 ou liste)", i + 1);
            goto fail;
        }
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
    bool initiated;          /* initiator: first message produced */
    bool done;               /* initiator: nothing more to say */
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
    return self;
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
    s_pack_summary(&w, &inf, set, 0, n);
    int rc = s_writer_finish(&w, out, out_len);
    msgpack_sbuffer_destroy(&w.body);
    if (rc != MG_OK)
        return rc;
    self->initiated = true;
    self->stats.bytes_sent += *out_len;
    self->stats.messages_sent++;
    return MG_OK;
}

/* Initiator: the peer's ids for set items [lo, hi) are known; record the
   differences. Both sides are sorted by id (the set is sorted by bucket
   first), then merged. */
static int s_resolve(mg_recon_t *self, size_t lo, size_t hi,
                     const s_range_t *r)
{
    const mg_itemset_t *set = self->set;
    size_t mine_n = hi - lo, theirs_n = r->nids;
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
    for (size_t i = 0; i < theirs_n; i++)
        memcpy(theirs + i * MG_RECON_ID_BYTES, r->ids[i].via.bin.ptr,
               MG_RECON_ID_BYTES);
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

/* Processes the parsed ranges and writes the reply into w. */
static int s_answer(mg_recon_t *self, const s_range_t *ranges, size_t count,
                    s_writer_t *w)
{
    const mg_itemset_t *set = self->set;
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
        size_t mark = w->body.size, mark_ranges = w->ranges;
        bool wrote = false;

        if (r->mode == S_FP) {
            uint8_t fp[MG_RECON_FP_BYTES];
            s_range_fp(set, lo, hi, fp);
            if (memcmp(fp, r->fp, MG_RECON_FP_BYTES) != 0) {
                if (skip)
                    s_pack_skip(w, &lower);
                s_pack_split(w, &r->upper, set, lo, hi);
                wrote = true;
            }
        } else if (r->mode == S_IDLIST && self->initiator) {
            int rc = s_resolve(self, lo, hi, r);
            if (rc != MG_OK)
                return rc;
        } else if (r->mode == S_IDLIST) {
            /* Responder: our ids for the range, as many as fit. */
            if (skip)
                s_pack_skip(w, &lower);
            size_t used = w->body.size + S_RESERVE + S_IDLIST_FIXED;
            size_t fit = used < limit ? (limit - used) / S_ID_ENC : 0;
            if (hi - lo <= fit) {
                s_pack_idlist(w, &r->upper, set, lo, hi);
            } else if (fit > 0) {
                /* The first `fit` ids, up to a bound just past the last
                   of them; the rest is left to a continuation. */
                size_t cut = lo + fit;
                s_bound_t b = s_bound_between(&set->items[cut - 1],
                                              &set->items[cut]);
                s_pack_idlist(w, &b, set, lo, cut);
                stopped = true;
                cont = b;
                cont_idx = cut;
                skip = false;
            } else {
                w->body.size = mark;
                w->ranges = mark_ranges;
                stopped = true;
                cont = lower;
                cont_idx = lo;
                break;
            }
            wrote = true;
        }
        if (wrote && !stopped) {
            if (w->body.size + S_RESERVE > limit) {
                /* Does not fit: drop it, and everything from `lower` on
                   is left to the continuation. */
                w->body.size = mark;
                w->ranges = mark_ranges;
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
        s_pack_summary(w, &inf, set, cont_idx, n);
    }
    return w->oom ? MG_ERR_NOMEM : MG_OK;
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
    rc = s_parse(&msg.data, &ranges, &count, why);
    if (rc != MG_OK)
        goto done;
    s_merge(s_mut(self->set));
    rc = s_answer(self, ranges, count, &w);
    if (rc != MG_OK) {
        mg_why_set(why, rc, "mémoire insuffisante");
        goto done;
    }
    self->stats.bytes_received += in_len;
    self->stats.messages_received++;
    self->stats.round_trips++;
    if (self->initiator && w.ranges == 0) {
        /* Every range is settled: the session is over. */
        self->done = true;
        goto done;
    }
    rc = s_writer_finish(&w, out, out_len);
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
