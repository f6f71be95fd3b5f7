/*  mg_recon.h - range-based set reconciliation (Meyer 2022), the
    anti-entropy step of replication.

    Two nodes each hold a set of items. Each item names one version of a
    record: `id` is BLAKE2b-256 of the record's exact bytes and `bucket`
    a territory number (0 for non-territorial records), so that one
    territory is one contiguous range of the order (bucket, id bytewise).

    One node, the initiator, opens a session and sends a fingerprint of
    its whole set; the responder answers each range it is sent: the same
    fingerprint means "in sync" (nothing more to say about that range), a
    different one makes the receiver split its own range into 16 sub-range
    fingerprints (short, salted by the session), or, when it holds few
    items there, list them: the initiator as 4-byte salted short ids, which
    the responder answers with the full ids the initiator lacks and a
    bitmap of the listed ones it lacks itself; the responder as full ids.
    Every answer also carries the responder's full-set fingerprint, so
    that the initiator checks its result at the end (mg_recon_verified).
    Peers in sync exchange one fingerprint (33 bytes, then a 29-byte
    reply); d differences among n items cost O(d log n) bytes and
    O(log n) round trips. At the end the initiator knows the ids it has
    that the peer lacks ("have": it pushes those records) and the ids the
    peer has that it lacks ("need": it pulls those). See docs/reconciliation.md for the
    algorithm, the exact message grammar and the measured costs.

    Sessions keep no index across messages, only what the peer sends
    (bounds) and the session id: the set may change between messages; the
    session then reconciles whatever the set holds when each message is
    processed.

    protocol/ is pure code: messages are byte buffers, the node moves them.
*/
#ifndef MG_RECON_H
#define MG_RECON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_error.h"

/* The version carried first in every message (2: session ids, short
   salted fingerprints and ids, answers with bitmaps). */
#define MG_RECON_VERSION 2
/* Bytes of an item id (BLAKE2b-256 of a record version). */
#define MG_RECON_ID_BYTES 32
/* Bytes of a full range fingerprint (BLAKE2b-128, see
   mg_itemset_fingerprint): the opening range and continuation ranges. */
#define MG_RECON_FP_BYTES 16
/* Bytes of a short fingerprint (sub-ranges of a split) and of a short id
   (an initiator's list): SipHash-2-4 keyed by the session, low 32 bits.
   docs/reconciliation.md §3.2 gives the collision argument. */
#define MG_RECON_SHORT_BYTES 4
/* A range whose fingerprints differ is split into this many sub-ranges of
   (nearly) equal item counts. docs/reconciliation.md §5 gives the cost
   model behind 16 and behind MG_RECON_SPLIT_MIN. */
#define MG_RECON_BRANCH 16
/* A differing range holding at least this many of the responder's items
   is split by the responder; below it the responder sends its full ids. */
#define MG_RECON_SPLIT_MIN 16
/* The same for the initiator, whose list costs 4 bytes an item instead of
   32: it lists up to 63 items (at most 252 bytes, less than a split). */
#define MG_RECON_INIT_SPLIT_MIN 64
/* Bounds on the size of one message. A sender never exceeds its own
   frame limit; every receiver accepts up to MG_RECON_FRAME_MAX. The
   minimum leaves room for the largest unsplittable chunk a sender may
   have to emit (a skip plus 16 sub-ranges: 45 + 16 * 49 = 829 bytes)
   plus the closing continuation range and header (100 bytes); the
   maximum bounds what one message can make msgpack-c allocate (about 24
   bytes per msgpack value, so at most 6 MiB transiently). */
#define MG_RECON_FRAME_MIN 2048
#define MG_RECON_FRAME_DEFAULT 60000
#define MG_RECON_FRAME_MAX 262144
/* Most short ids a list may hold, and so most bits of an answer's bitmap:
   as many 4-byte ids as fit in the largest message. */
#define MG_RECON_SHORT_IDS_MAX (MG_RECON_FRAME_MAX / MG_RECON_SHORT_BYTES)

/* One element of a reconciled set. Ordered by bucket, then id bytewise. */
typedef struct {
    uint64_t bucket;                /* territory number, 0 if none */
    uint8_t id[MG_RECON_ID_BYTES];  /* BLAKE2b-256 of the record bytes */
} mg_item_t;

/* Compares two items in set order: negative, 0 or positive. */
int mg_item_cmp(const mg_item_t *a, const mg_item_t *b);

/* ------------------------------------------------------------------ */
/* mg_itemset_t: a sorted, duplicate-free vector of items with prefix
   sums of the ids, so that the fingerprint of any index range costs O(1)
   once the sums are built (O(n), rebuilt lazily from the first changed
   index after a change).

   Adding is O(1) amortised: new items go to an unsorted tail that the
   next read sorts (O(k log k)) and merges (O(n)) in one pass, so adding
   100,000 items in any order and then reading is one sort, not 100,000
   insertions. Reading functions take a const set but may do that
   pending merge and extend the sums cache: a set is not safe to read
   from two threads at once unless mg_itemset_prepare was called after
   the last change. */
typedef struct mg_itemset_t mg_itemset_t;

/* Creates an empty set. Caller owns the result (mg_itemset_destroy).
   Returns NULL when memory or libsodium initialisation fails. */
mg_itemset_t *mg_itemset_new(void);

/* Destroys a set and nulls the caller's pointer; safe on NULL and twice.
   Sessions reading the set must be destroyed first. */
void mg_itemset_destroy(mg_itemset_t **self_p);

/* Adds one item; an item already present is ignored (not an error).
   Invalidates pointers returned by mg_itemset_item_at. Returns MG_OK or
   MG_ERR_NOMEM (the set is then unchanged). */
int mg_itemset_add(mg_itemset_t *self, const mg_item_t *item);

/* Adds `count` items in any order (duplicates ignored), as one batch.
   `items` must not point into the set itself. Returns MG_OK, MG_ERR_ARG
   (NULL items with count > 0) or MG_ERR_NOMEM (the set is then
   unchanged). */
int mg_itemset_add_many(mg_itemset_t *self, const mg_item_t *items,
                        size_t count);

/* Removes an item in O(n). Returns MG_OK, or MG_ERR_NOT_FOUND when the set
   does not hold it. Invalidates pointers from mg_itemset_item_at. */
int mg_itemset_remove(mg_itemset_t *self, const mg_item_t *item);

/* Number of distinct items. */
size_t mg_itemset_size(const mg_itemset_t *self);

/* The item at `index` in set order, or NULL when index >= size. The
   pointer belongs to the set and is valid until the next change. */
const mg_item_t *mg_itemset_item_at(const mg_itemset_t *self, size_t index);

/* Index of the first item not less than `bound` (size when there is
   none), in O(log n). A territory [b1, b2) is the index range from the
   lower bound of {b1, zero id} to that of {b2, zero id}. */
size_t mg_itemset_lower_bound(const mg_itemset_t *self,
                              const mg_item_t *bound);

/* Fingerprint of the items at indexes [begin, end): with S the sum of
   their ids read as little-endian 256-bit integers, modulo 2^256, and N
   = end - begin, out = BLAKE2b-128(S as 32 little-endian bytes || N as
   8 little-endian bytes) (libsodium crypto_generichash, no key). The
   empty range has a fingerprint too. O(1) once the sums are built.
   Returns MG_OK, or MG_ERR_ARG when begin > end or end > size. */
int mg_itemset_fingerprint(const mg_itemset_t *self, size_t begin,
                           size_t end, uint8_t out[MG_RECON_FP_BYTES]);

/* Finishes any pending merge and builds the whole sums cache, so that
   reads no longer write to the set (see the thread note above). Returns
   MG_OK. */
int mg_itemset_prepare(mg_itemset_t *self);

/* ------------------------------------------------------------------ */
/* mg_recon_t: one reconciliation session with one peer, on one side.

   Initiator:  mg_recon_initiate -> send; then for every reply:
               mg_recon_process -> send *out, until *out is NULL (done).
   Responder:  for every message: mg_recon_process -> send *out (a
               responder always replies, if only with an empty message).

   A session needs no other state than the set: it can be dropped at any
   time (the next session starts over). Callers SHOULD also bound the
   number of round trips of one session (a hostile responder can keep a
   session going by always answering with new differences): a bootstrap
   of n items with frame limit F takes about 32 * n / F round trips, a
   session between nodes nearly in sync about log16(n) + 2. */
typedef struct mg_recon_t mg_recon_t;

/* Counters of one session, for tests, logs and benchmarks. */
typedef struct {
    uint64_t bytes_sent;        /* total bytes of messages produced */
    uint64_t bytes_received;    /* total bytes of messages processed */
    uint64_t messages_sent;     /* messages produced */
    uint64_t messages_received; /* messages processed successfully */
    uint64_t round_trips;       /* initiator: replies processed;
                                   responder: messages answered */
} mg_recon_stats_t;

/* Creates a session over `set`, which must outlive the session and may
   change between messages. `frame_limit` is the largest message this
   side will produce, in bytes: 0 for MG_RECON_FRAME_DEFAULT, otherwise
   within [MG_RECON_FRAME_MIN, MG_RECON_FRAME_MAX]. An initiator draws a
   random 64-bit session id (libsodium randombytes), which every message
   carries: it keys the short hashes and lets the initiator refuse a late
   answer to an abandoned session. A responder takes the session id of
   each message it answers. Caller owns the result. Returns NULL on a bad
   argument or when memory fails. */
mg_recon_t *mg_recon_new(const mg_itemset_t *set, bool initiator,
                         size_t frame_limit);

/* Initiator, before mg_recon_initiate: replaces the random session id
   (for test vectors). Returns MG_OK or MG_ERR_ARG. */
int mg_recon_set_session(mg_recon_t *self, uint64_t session);

/* The session id: the initiator's own, or the last one a responder
   answered (0 for NULL). */
uint64_t mg_recon_session(const mg_recon_t *self);

/* Destroys a session and nulls the caller's pointer; safe on NULL. */
void mg_recon_destroy(mg_recon_t **self_p);

/* Initiator only, once: produces the first message into *out (malloc'd,
   caller frees with free()) and its length into *out_len. Returns MG_OK,
   MG_ERR_ARG (a responder, or called twice) or MG_ERR_NOMEM. */
int mg_recon_initiate(mg_recon_t *self, uint8_t **out, size_t *out_len);

/* Consumes one message from the peer (untrusted bytes) and produces the
   reply into *out (malloc'd, caller frees with free()) / *out_len. For
   the initiator, *out = NULL and *out_len = 0 mean the session is done:
   mg_recon_have and mg_recon_need then hold the complete result.
   Never asserts on the input: returns MG_OK, MG_ERR_TOO_LARGE (more than
   MG_RECON_FRAME_MAX bytes), MG_ERR_MALFORMED (not a well-formed
   message of a supported version, or a payload the sender's role may
   not use), MG_ERR_STALE (initiator: a well-formed answer carrying
   another session id, e.g. a late answer to a session given up), all
   with `why` filled (it may be NULL) and the session unchanged, so the
   caller can drop the message or the session; MG_ERR_ARG (wrong call order, e.g. an initiator that has
   not initiated or is done) or MG_ERR_NOMEM (the session is then
   unusable). The work is O(in_len * log n + n log n) at most; a
   responder stops reading once its reply is full. */
int mg_recon_process(mg_recon_t *self, const uint8_t *in, size_t in_len,
                     uint8_t **out, size_t *out_len, mg_why_t *why);

/* True once an initiator's session is done. Always false for a
   responder, which cannot know whether the initiator will write again. */
bool mg_recon_done(const mg_recon_t *self);

/* Initiator, once done: true when the end-of-session check held, i.e.
   the initiator's set with `have` removed and `need` added has the full
   fingerprint the responder sent for its whole set in its last answer.
   False means the session missed a difference (a short hash collided,
   docs/reconciliation.md §3.2) or a set changed during the session: the
   caller SHOULD start another session (new session id, new short
   hashes). False for a responder or a session not done. */
bool mg_recon_verified(const mg_recon_t *self);

/* Initiator: the ids found so far that this side holds and the peer
   lacks (have) and that the peer holds and this side lacks (need), as
   *count consecutive 32-byte ids, sorted bytewise, without duplicates.
   Complete once mg_recon_done. The buffer belongs to the session and is
   valid until the next mg_recon_process or mg_recon_destroy. Returns NULL
   with *count = 0 when empty. A
   responder learns nothing and always gets an empty result. */
const uint8_t *mg_recon_have(mg_recon_t *self, size_t *count);
const uint8_t *mg_recon_need(mg_recon_t *self, size_t *count);

/* Copies the session's counters into *stats. */
void mg_recon_stats(const mg_recon_t *self, mg_recon_stats_t *stats);

#endif
