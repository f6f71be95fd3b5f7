/*  mg_node.c - the node engine: links, gossip rounds, eager push.

    One thread, one zloop. State lives here and only here:
    - links: one per connected peer, outbound (our DEALER to its ROUTER)
      or inbound (a routing id on one of our ROUTERs). Both kinds carry
      the same messages in both directions, so a node that cannot accept
      connections (NAT) still syncs both ways over the links it opens;
    - the reconciliation set: (bucket, vid) of every stored version, kept
      in step with the store through its change feed, which also reveals
      records written by the CLI in another process;
    - a map (author, rid) -> current item, to drop an item from the set
      when a newer version replaces it (s_entries_t: 56 bytes a record).
    A bulk pull (a new node receiving the national picture) is written in
    transactions of up to S_BULK_RECORDS records or S_BULK_MS, rather than
    one per RECORDS batch (s_bulk_*).
*/
#include "mg_node.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_endorse.h"
#include "mg_log.h"
#include "mg_msg.h"
#include "mg_offer.h"
#include "mg_recon.h"
#include "mg_store.h"
#include "mg_text.h"
#include "mg_zap.h"

/* A peer that stays silent this long after we opened a link to it has
   failed: 5 s covers a CURVE handshake over a slow link many times. */
#define S_HELLO_TIMEOUT_MS 5000
/* A live link is pinged after this much silence, and dropped after
   three times as much: rounds visit one random peer per interval, so a
   quiet link is normal; a dead one must not hold a slot for long. */
#define S_PING_AFTER_MS 5000
#define S_DEAD_AFTER_MS 15000
/* A reconciliation that has not finished in this long is abandoned
   (the peer went away mid-session); the next round starts afresh. */
#define S_SESSION_TIMEOUT_MS 10000
/* Backoff of a failing peer: base doubles per failure, capped at 5 min. */
#define S_BACKOFF_BASE_MS 1000
#define S_BACKOFF_MAX_MS (5 * 60 * 1000)
/* Per-link inbound budget: 5,000 messages per second is far above what
   honest gossip needs (a round is a few messages; a bootstrap streams
   ~1,000-record batches) and bounds what one peer can make us do. */
#define S_RATE_MAX 5000
/* After this many malformed messages a link is closed. */
#define S_MALFORMED_MAX 20
/* How long a garbage-sending peer is refused, and how many we remember. */
#define S_BAN_MS (10 * 60 * 1000)
#define S_BANS_MAX 256
/* A reconciliation session may take this many round trips: a bootstrap
   of 100,000 items takes ~57 at the default frame; a responder that keeps
   a session going beyond that is cut off (the next round starts afresh). */
#define S_SESSION_ROUNDS_MAX 1000
/* Vids requested from one peer and not yet received (docs/protocol.md,
   a SHALL of the WANT rules): with two WANTs in flight the writer applied
   four batches and then waited ~80 ms for the next ones to be verified;
   with eight it never waits. Bounds what is queued at the sender (~6 MB). */
#define S_WANT_WINDOW (8 * MG_WANT_MAX)
/* Threads verifying received records (Ed25519 and the record's schema,
   ~140 us a record, as long as the store's write): two, so that on a
   two-core machine verification never waits for the writer's core. */
#define S_VERIFIERS 2
/* A bulk pull commits every S_BULK_RECORDS records, S_BULK_MS, or when
   nothing more is on its way, instead of once per RECORDS batch: each
   commit writes the index pages it dirtied once for many batches. 1 s was
   the fastest of 0.5, 1 and 2 s on a 100,000-record bootstrap (longer
   transactions outgrow the bulk cache and spill), and bounds how long
   the CLI waits for the write lock (its busy timeout is 5 s). A crash
   loses only the open transaction, whose records are pulled again. */
#define S_BULK_RECORDS 20000
#define S_BULK_MS 1000
/* Offers per transaction when writing the search rows a bulk pull left
   owed: ~0.3 s of the event loop. Over 100,000 offers, chunks of 4,096
   took 4.3 s in all, 16,384 took 3.7 s but held the loop 0.6 s each. */
#define S_INDEX_CHUNK 8192
/* Batches of at least this many records open a bulk transaction; eager
   pushes (a few records) are written and relayed at once. */
#define S_BULK_MIN 64
/* Largest reconciliation message (well under MG_MSG_MAX). */
#define S_RECON_FRAME MG_RECON_FRAME_DEFAULT

typedef enum { S_CONNECTING = 1, S_LIVE = 2 } s_link_state_t;

/* Informational logs, silenced by config.quiet (the demo draws its own
   progress line); warnings and errors always go out. */
#define S_INFO(e, fmt, ...)                                                    \
    do {                                                                       \
        if (!(e)->cfg.quiet)                                                   \
            MG_LOG_INFO((e)->name, fmt, ##__VA_ARGS__);                        \
    } while (0)

typedef struct s_engine_t s_engine_t;

typedef struct {
    s_engine_t *engine;       /* owner */
    uint64_t serial;          /* unique per engine, for eager-push exclusion */
    bool outbound;            /* we opened it (DEALER) */
    uint8_t key[MG_KEY_BYTES];/* the peer's identity key */
    bool key_known;           /* inbound: set once its HELLO is verified */
    char endpoint[MG_ENDPOINT_MAX + 1]; /* outbound: where we connected */
    zsock_t *dealer;          /* outbound socket */
    zsock_t *router;          /* inbound: the ROUTER it came in on */
    zframe_t *rid;            /* inbound: its routing id */
    s_link_state_t state;     /* connecting until HELLO is exchanged */
    int64_t opened_ms;        /* when the link was opened */
    int64_t last_rx_ms;       /* last message from the peer */
    int64_t last_ping_ms;     /* last HELLO we sent as a keepalive */
    mg_recon_t *init;         /* the session we initiated, if any */
    int64_t init_started_ms;  /* its start, for the timeout */
    bool recon_recheck;       /* our last session here ended unverified:
                                 the next round reconciles here first */
    mg_recon_t *resp;         /* the session the peer initiated, if any */
    uint8_t *want;            /* vids still to request, 32 bytes each */
    size_t want_len, want_cap;/* in vids */
    size_t want_outstanding;  /* vids requested, not yet received */
    int64_t want_sent_ms;     /* when the last WANT went out */
    int64_t records_in;       /* records received on this link that were new */
    int64_t records_out;      /* records sent on this link */
    int64_t noted_in, noted_out; /* part of those already added to the peer table */
    int malformed;            /* malformed messages received */
    int64_t rate_window_ms;   /* start of the current 1 s rate window */
    int rate_count;           /* messages in that window */
    int64_t last_log_ms;      /* rate-limits warnings about this link */
    char user_id[65];         /* inbound: CURVE key (hex) proven by ZAP */
    bool dead;                /* to be destroyed at the end of the event */
} s_link_t;

/* A peer candidate loaded from the store's peer table. */
typedef struct {
    mg_peer_row_t row;
} s_cand_t;

/* What we hold of one (author, rid): its current reconciliation item,
   under a 16-byte keyed hash of (author, rid) -- 56 bytes a record where
   a hash of "authorhex/rid" strings took about 200. Keyed with a random
   key per engine so that nobody can make two of them collide. */
typedef struct {
    uint8_t key[16];          /* keyed BLAKE2b-128 of author || rid */
    mg_item_t item;           /* current version; bucket and id */
} s_entry_t;

/* Open addressing with linear probing; entries are never removed (a
   record replaced keeps its (author, rid)). An all-zero key marks an
   empty slot: a real key is all zero with probability 2^-128. */
typedef struct {
    s_entry_t *slots;         /* cap slots, cap a power of two */
    size_t cap;               /* 0 before the first insert */
    size_t count;             /* used slots */
    uint8_t hash_key[crypto_generichash_KEYBYTES]; /* random, per engine */
} s_entries_t;

struct s_engine_t {
    mg_node_config_t cfg;
    char name[64];            /* log prefix: short key */
    zsock_t *pipe;
    zloop_t *loop;
    mg_store_t *store;
    zcert_t *cert;            /* our CURVE keypair (from the Ed25519 identity) */
    zsock_t *routers[MG_NODE_LISTEN_MAX];
    size_t router_count;
    char bound[MG_NODE_LISTEN_MAX][MG_ENDPOINT_MAX + 1];
    char advertised[MG_NODE_LISTEN_MAX][MG_ENDPOINT_MAX + 1];
    size_t advertised_count;
    zlistx_t *links;          /* s_link_t*, owned */
    uint64_t next_serial;
    mg_itemset_t *set;        /* reconciliation set */
    s_entries_t entries;      /* (author, rid) -> current item */
    zhashx_t *sources;        /* vid hex -> link serial (uint64 as pointer) */
    int64_t last_seq;         /* change feed position */
    int64_t peers_version;    /* peer table version seen */
    s_cand_t *cands;          /* peer table snapshot */
    size_t cand_count;
    zactor_t *beacon;         /* LAN discovery (zbeacon actor), when enabled */
    char zap_domain[96];      /* our ZAP domain (per-node allow-list) */
    zhashx_t *endorsed;       /* subject key hex -> bitmask of trusted coordinators */
    zhashx_t *refused;        /* vid hex -> 1: records our policy refused (not re-asked) */
    zactor_t *verifiers[S_VERIFIERS]; /* verify received records on other threads */
    size_t verifier_inflight[S_VERIFIERS]; /* batches sent to each, not yet back */
    size_t verify_inflight;   /* sum of those */
    size_t verify_next;       /* the verifier that gets the next batch */
    bool index_owed;          /* offers' search rows may be owed (mg_store_index_pending) */
    bool index_timer;         /* the next catch-up chunk is scheduled */
    int64_t index_started_ms; /* when the current catch-up began, or 0 */
    int64_t index_warned_ms;  /* last warning about a failed catch-up */
    bool bulk;                /* a bulk pull's transaction is open */
    int64_t bulk_started_ms;  /* when it was opened */
    size_t bulk_records;      /* records applied in it */
    uint64_t beats;           /* heartbeats since start (1 a second) */
    uint64_t records_refused; /* statistics: refused by the trust policy */
    int64_t last_refused_log_ms; /* those are logged at most once a second */
    struct {
        zsock_t *router;      /* where the banned connection came in */
        zframe_t *rid;        /* its routing id */
        int64_t until_ms;     /* ban expiry */
    } bans[S_BANS_MAX];       /* inbound connections we ignore */
    size_t ban_count;
    /* pending eager pushes: records to send to every live link but their source */
    uint8_t **push;
    size_t *push_len;
    uint64_t *push_src;
    size_t push_count, push_cap;
    /* statistics */
    uint64_t rounds, bytes_in, bytes_out, records_in, records_out, syncs;
    bool terminated;
};

/* ------------------------------------------------------------------ */

static int64_t s_now(void)
{
    return zclock_time();
}

static void s_key_name(const uint8_t *key, char out[13])
{
    char hex[65];
    mg_hex_encode(key, MG_KEY_BYTES, hex);
    memcpy(out, hex, 12);
    out[12] = '\0';
}

/* The slot of (author, rid): its entry, or the empty slot where it
   goes. The table must have room (cap > count). */
static s_entry_t *s_entries_slot(s_entries_t *t, const uint8_t key[16])
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    size_t mask = t->cap - 1;
    static const uint8_t empty[16];
    for (size_t i = (size_t) h & mask;; i = (i + 1) & mask) {
        s_entry_t *slot = &t->slots[i];
        if (memcmp(slot->key, key, 16) == 0 || memcmp(slot->key, empty, 16) == 0)
            return slot;
    }
}

/* Finds or adds the entry of (author, rid); *added tells which. NULL
   when out of memory. At most 80% full: about 3 probes a lookup. */
static s_entry_t *s_entries_get(s_entries_t *t, const uint8_t *author, const char *rid,
                                bool *added)
{
    if ((t->count + 1) * 5 > t->cap * 4) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        s_entry_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return NULL;
        s_entries_t grown = *t;
        grown.slots = slots;
        grown.cap = cap;
        static const uint8_t empty[16];
        for (size_t i = 0; i < t->cap; i++)
            if (memcmp(t->slots[i].key, empty, 16) != 0)
                *s_entries_slot(&grown, t->slots[i].key) = t->slots[i];
        free(t->slots);
        *t = grown;
    }
    uint8_t key[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, t->hash_key, sizeof t->hash_key, sizeof key);
    crypto_generichash_update(&st, author, MG_KEY_BYTES);
    crypto_generichash_update(&st, (const uint8_t *) rid, strlen(rid));
    crypto_generichash_final(&st, key, sizeof key);
    s_entry_t *slot = s_entries_slot(t, key);
    *added = memcmp(slot->key, key, 16) != 0;
    if (*added) {
        memcpy(slot->key, key, 16);
        t->count++;
    }
    return slot;
}

static void s_link_destroy(s_link_t **self_p)
{
    s_link_t *self = *self_p;
    if (!self)
        return;
    if (self->dealer) {
        zloop_reader_end(self->engine->loop, self->dealer);
        zsock_destroy(&self->dealer);
    }
    zframe_destroy(&self->rid);
    mg_recon_destroy(&self->init);
    mg_recon_destroy(&self->resp);
    free(self->want);
    free(self);
    *self_p = NULL;
}

static void s_link_name(const s_link_t *link, char out[40])
{
    if (link->outbound || link->key_known) {
        char k[13];
        s_key_name(link->key, k);
        snprintf(out, 40, "%s%s", k, link->outbound ? "" : "(entrant)");
    } else {
        snprintf(out, 40, "(entrant, inconnu)");
    }
}

/* Sends one frame on a link. Never blocks: at the high-water mark the
   message is dropped (anti-entropy will carry what it held). */
static int s_send(s_link_t *link, uint8_t *data, size_t len)
{
    s_engine_t *e = link->engine;
    int rc;
    if (link->outbound) {
        zframe_t *f = zframe_new(data, len);
        rc = zframe_send(&f, link->dealer, ZFRAME_DONTWAIT);
        zframe_destroy(&f);
    } else {
        zmsg_t *m = zmsg_new();
        zmsg_append(m, &(zframe_t *) {zframe_dup(link->rid)});
        zmsg_addmem(m, data, len);
        rc = zmsg_send(&m, link->router);
        zmsg_destroy(&m);
    }
    free(data);
    if (rc == 0)
        e->bytes_out += len;
    return rc;
}

static void s_send_hello(s_link_t *link)
{
    s_engine_t *e = link->engine;
    const char *eps[MG_NODE_LISTEN_MAX];
    for (size_t i = 0; i < e->advertised_count; i++)
        eps[i] = e->advertised[i];
    char name[256] = "";
    mg_store_meta_get(e->store, "name", name, sizeof name);
    uint8_t *data;
    size_t len;
    if (mg_msg_hello(e->cfg.identity.pk, eps, e->advertised_count, name, &data,
                     &len) == MG_OK)
        s_send(link, data, len);
    link->last_ping_ms = s_now();
}

/* ------------------------------------------------------------------ */
/* Peer table                                                           */

static void s_peer_note(s_engine_t *e, s_link_t *link, const char *state,
                        bool failed, bool synced)
{
    if (!link->outbound && !link->key_known)
        return;
    /* Inbound links are remembered under the endpoint they advertise; a
       peer that advertises none (behind a NAT) is not written down: we
       could not dial it anyway, and it will dial us again. */
    const char *endpoint = link->endpoint;
    if (!endpoint[0])
        return;
    bool added;
    int64_t now = s_now();
    /* Bookkeeping: when another program holds the write lock, the row is
       written at the next note rather than holding the event loop for the
       busy timeout (the counters below live in memory meanwhile). */
    mg_store_set_busy_timeout(e->store, 0);
    mg_store_peer_add(e->store, link->key, endpoint,
                      link->outbound ? "invite" : "inbound", now, &added, NULL);
    mg_store_set_busy_timeout(e->store, -1);
    for (size_t i = 0; i < e->cand_count; i++) {
        mg_peer_row_t *r = &e->cands[i].row;
        if (memcmp(r->key, link->key, MG_KEY_BYTES) != 0 || strcmp(r->endpoint, endpoint) != 0)
            continue;
        snprintf(r->state, sizeof r->state, "%s", state);
        r->last_seen_ms = link->last_rx_ms;
        /* Counters accumulate over the peer's links, across restarts. */
        r->records_in += link->records_in - link->noted_in;
        r->records_out += link->records_out - link->noted_out;
        link->noted_in = link->records_in;
        link->noted_out = link->records_out;
        if (synced)
            r->last_sync_ms = now;
        if (failed) {
            r->failures++;
            int64_t backoff = S_BACKOFF_BASE_MS;
            for (int k = 1; k < r->failures && backoff < S_BACKOFF_MAX_MS; k++)
                backoff *= 2;
            if (backoff > S_BACKOFF_MAX_MS)
                backoff = S_BACKOFF_MAX_MS;
            /* +-25 % jitter so that peers restarted together spread out */
            backoff = backoff * (75 + (int64_t) randombytes_uniform(51)) / 100;
            r->next_try_ms = now + backoff;
        } else if (strcmp(state, "live") == 0) {
            r->failures = 0;
            r->next_try_ms = 0;
        }
        mg_store_set_busy_timeout(e->store, 0);
        mg_store_peer_update(e->store, r, NULL);
        mg_store_set_busy_timeout(e->store, -1);
        return;
    }
}

static int s_cand_add(const mg_peer_row_t *row, void *arg)
{
    s_engine_t *e = arg;
    s_cand_t *grown = realloc(e->cands, (e->cand_count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    e->cands = grown;
    e->cands[e->cand_count++].row = *row;
    return 0;
}

static void s_load_peers(s_engine_t *e)
{
    free(e->cands);
    e->cands = NULL;
    e->cand_count = 0;
    mg_store_peers(e->store, s_cand_add, e, NULL);
}

/* ------------------------------------------------------------------ */
/* Links                                                               */

static s_link_t *s_link_new(s_engine_t *e, bool outbound)
{
    s_link_t *link = calloc(1, sizeof *link);
    if (!link)
        return NULL;
    link->engine = e;
    link->serial = ++e->next_serial;
    link->outbound = outbound;
    link->state = S_CONNECTING;
    link->opened_ms = link->last_rx_ms = s_now();
    zlistx_add_end(e->links, link);
    return link;
}

static s_link_t *s_link_by_key(s_engine_t *e, const uint8_t *key)
{
    for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links))
        if ((l->outbound || l->key_known) && !l->dead
            && memcmp(l->key, key, MG_KEY_BYTES) == 0)
            return l;
    return NULL;
}

static int s_on_dealer(zloop_t *loop, zsock_t *reader, void *arg);

static void s_open_link(s_engine_t *e, const mg_peer_row_t *row)
{
    uint8_t curve_pk[32];
    if (crypto_sign_ed25519_pk_to_curve25519(curve_pk, row->key) != 0)
        return; /* not a valid Ed25519 point: nobody can hold that key */
    zsock_t *d = zsock_new(ZMQ_DEALER);
    if (!d)
        return;
    zcert_apply(e->cert, d);
    zsock_set_curve_serverkey_bin(d, curve_pk);
    zsock_set_maxmsgsize(d, MG_MSG_MAX);
    zsock_set_sndhwm(d, 1000);
    zsock_set_rcvhwm(d, 1000);
    zsock_set_linger(d, 0);
    zsock_set_sndtimeo(d, 0);
    if (zsock_connect(d, "%s", row->endpoint) != 0) {
        zsock_destroy(&d);
        return;
    }
    s_link_t *link = s_link_new(e, true);
    if (!link) {
        zsock_destroy(&d);
        return;
    }
    link->dealer = d;
    memcpy(link->key, row->key, MG_KEY_BYTES);
    snprintf(link->endpoint, sizeof link->endpoint, "%s", row->endpoint);
    zloop_reader(e->loop, d, s_on_dealer, link);
    char n[40];
    s_link_name(link, n);
    S_INFO(e, "connexion peer=%s endpoint=%s", n, row->endpoint);
    s_send_hello(link);
}

/* Marks a link for destruction; failed links back off in the peer table. */
static void s_close_link(s_link_t *link, bool failed, const char *why)
{
    if (link->dead)
        return;
    char n[40];
    s_link_name(link, n);
    S_INFO(link->engine, "lien fermé peer=%s raison=\"%s\"", n, why);
    s_peer_note(link->engine, link, failed ? "backoff" : "new", failed, false);
    link->dead = true;
}

/* Destroys the links marked dead. zlistx_find moves the list's cursor,
   so iterating and deleting in one pass would revisit (and free twice) a
   link that follows a deleted one: restart from the head after each
   deletion instead -- links are few (at most a few hundred). */
static void s_reap_links(s_engine_t *e)
{
    bool again = true;
    while (again) {
        again = false;
        for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links)) {
            if (!l->dead)
                continue;
            zlistx_delete(e->links, zlistx_find(e->links, l));
            s_link_destroy(&l);
            again = true;
            break;
        }
    }
}

/* Federation: is this key allowed to link with us? */
static bool s_key_allowed(const s_engine_t *e, const uint8_t *key)
{
    if (!e->cfg.allow_count)
        return true;
    for (size_t i = 0; i < e->cfg.allow_count; i++)
        if (memcmp(e->cfg.allow[i], key, MG_KEY_BYTES) == 0)
            return true;
    return false;
}

static bool s_trusted(const s_engine_t *e, const uint8_t *key)
{
    for (size_t i = 0; i < e->cfg.trust_count; i++)
        if (memcmp(e->cfg.trust[i], key, MG_KEY_BYTES) == 0)
            return true;
    return false;
}

/* The trust policy: with trusted coordinators configured, profiles are
   taken from anyone (they carry endpoints, not content), endorsements
   only from the coordinators, everything else only from endorsed authors
   and the coordinators themselves. */
static bool s_accepts(const s_engine_t *e, const mg_record_t *r)
{
    if (!e->cfg.trust_count)
        return true;
    const char *kind = mg_record_kind(r);
    const uint8_t *author = mg_record_author(r);
    if (strcmp(kind, "profile") == 0)
        return true;
    if (s_trusted(e, author))
        return true;
    if (strcmp(kind, "endorse") == 0)
        return false;
    if (memcmp(author, e->cfg.identity.pk, MG_KEY_BYTES) == 0)
        return true;
    char hex[65];
    mg_hex_encode(author, MG_KEY_BYTES, hex);
    return (uintptr_t) zhashx_lookup(e->endorsed, hex) != 0;
}

/* Applies an endorsement record from the store to the endorsed set. */
static void s_note_endorsement(s_engine_t *e, const uint8_t *raw, size_t len)
{
    mg_record_t *r = NULL;
    if (mg_record_decode_trusted(raw, len, &r, NULL) != MG_OK)
        return;
    for (size_t i = 0; i < e->cfg.trust_count; i++) {
        if (memcmp(mg_record_author(r), e->cfg.trust[i], MG_KEY_BYTES) != 0)
            continue;
        uint8_t subject[MG_KEY_BYTES];
        bool endorsed = false;
        if (mg_endorse_read(r, subject, &endorsed) != MG_OK)
            break;
        char hex[65];
        mg_hex_encode(subject, MG_KEY_BYTES, hex);
        uintptr_t mask = (uintptr_t) zhashx_lookup(e->endorsed, hex);
        mask = endorsed ? (mask | (1u << i)) : (mask & ~(1u << i));
        if (mask)
            zhashx_update(e->endorsed, hex, (void *) mask);
        else
            zhashx_delete(e->endorsed, hex);
        /* What was refused may be acceptable now: ask again. */
        zhashx_purge(e->refused);
        break;
    }
    mg_record_destroy(&r);
}

/* A peer that keeps sending garbage: outbound, the link is closed and
   backs off; inbound, its connection is ignored and its key refused by
   ZAP for S_BAN_MS, so it cannot simply reconnect. */
static void s_ban_link(s_link_t *link)
{
    s_engine_t *e = link->engine;
    if (!link->outbound && link->rid) {
        if (e->ban_count < S_BANS_MAX) {
            e->bans[e->ban_count].router = link->router;
            e->bans[e->ban_count].rid = zframe_dup(link->rid);
            e->bans[e->ban_count].until_ms = s_now() + S_BAN_MS;
            e->ban_count++;
        }
        if (link->user_id[0])
            mg_zap_ban(link->user_id, s_now() + S_BAN_MS);
    }
    s_close_link(link, true, "trop de messages mal formés : pair banni 10 min");
}

static bool s_rid_banned(s_engine_t *e, zsock_t *router, zframe_t *rid)
{
    int64_t now = s_now();
    for (size_t i = 0; i < e->ban_count; i++) {
        if (e->bans[i].until_ms <= now) {
            zframe_destroy(&e->bans[i].rid);
            e->bans[i] = e->bans[--e->ban_count];
            i--;
            continue;
        }
        if (e->bans[i].router == router && zframe_eq(e->bans[i].rid, rid))
            return true;
    }
    return false;
}

/* Keeps up to max_links outgoing links: invite peers first. */
static void s_connect_more(s_engine_t *e)
{
    int outbound = 0;
    for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links))
        if (l->outbound && !l->dead)
            outbound++;
    int64_t now = s_now();
    for (int pass = 0; pass < 2 && outbound < e->cfg.max_links; pass++) {
        /* Start at a random candidate so every one gets its turn. */
        size_t start = e->cand_count ? randombytes_uniform((uint32_t) e->cand_count) : 0;
        for (size_t k = 0; k < e->cand_count && outbound < e->cfg.max_links; k++) {
            mg_peer_row_t *r = &e->cands[(start + k) % e->cand_count].row;
            bool invite = strcmp(r->source, "invite") == 0;
            if ((pass == 0) != invite || !r->endpoint[0])
                continue;
            if (memcmp(r->key, e->cfg.identity.pk, MG_KEY_BYTES) == 0
                || r->next_try_ms > now || s_link_by_key(e, r->key)
                || !s_key_allowed(e, r->key))
                continue;
            s_open_link(e, r);
            r->next_try_ms = now + S_HELLO_TIMEOUT_MS; /* not twice in a row */
            outbound++;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Reconciliation set and change feed                                  */

static void s_queue_push(s_engine_t *e, const uint8_t *raw, size_t len,
                         uint64_t source)
{
    if (e->cfg.no_push)
        return;
    if (e->push_count == e->push_cap) {
        size_t cap = e->push_cap ? e->push_cap * 2 : 64;
        uint8_t **p = realloc(e->push, cap * sizeof *p);
        size_t *pl = p ? realloc(e->push_len, cap * sizeof *pl) : NULL;
        uint64_t *ps = pl ? realloc(e->push_src, cap * sizeof *ps) : NULL;
        if (p)
            e->push = p;
        if (pl)
            e->push_len = pl;
        if (!ps)
            return;
        e->push_src = ps;
        e->push_cap = cap;
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return;
    memcpy(copy, raw, len);
    e->push[e->push_count] = copy;
    e->push_len[e->push_count] = len;
    e->push_src[e->push_count] = source;
    e->push_count++;
}

/* Sends the queued records to every live link but the one each came
   from, in RECORDS batches of at most MG_BATCH_BYTES. */
static void s_flush_push(s_engine_t *e)
{
    if (!e->push_count)
        return;
    for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links)) {
        if (l->dead || l->state != S_LIVE)
            continue;
        size_t i = 0;
        while (i < e->push_count) {
            const uint8_t *items[1024];
            size_t lens[1024], n = 0, bytes = 0;
            for (; i < e->push_count && n < 1024; i++) {
                if (e->push_src[i] == l->serial)
                    continue;
                if (n && bytes + e->push_len[i] > MG_BATCH_BYTES)
                    break;
                items[n] = e->push[i];
                lens[n] = e->push_len[i];
                bytes += lens[n++];
            }
            if (!n)
                continue;
            uint8_t *data;
            size_t len;
            if (mg_msg_list(MG_MSG_RECORDS, items, lens, n, &data, &len) == MG_OK
                && s_send(l, data, len) == 0) {
                l->records_out += (int64_t) n;
                e->records_out += n;
            }
        }
    }
    for (size_t i = 0; i < e->push_count; i++)
        free(e->push[i]);
    e->push_count = 0;
}

/* Learns peers from another structure's profile (peer exchange). */
static void s_learn_profile(s_engine_t *e, const uint8_t *raw, size_t len)
{
    mg_record_t *rec = NULL;
    if (mg_record_decode_trusted(raw, len, &rec, NULL) != MG_OK)
        return;
    if (strcmp(mg_record_kind(rec), "profile") == 0 && !mg_record_deleted(rec)
        && memcmp(mg_record_author(rec), e->cfg.identity.pk, MG_KEY_BYTES) != 0) {
        const char *const *eps;
        size_t n = mg_body_list(mg_record_body(rec), "endpoints", &eps);
        for (size_t i = 0; i < n && i < MG_ENDPOINTS_MAX; i++) {
            if (strncmp(eps[i], "tcp://", 6) != 0 || strlen(eps[i]) > MG_ENDPOINT_MAX)
                continue;
            bool added = false;
            mg_store_peer_add(e->store, mg_record_author(rec), eps[i], "profile",
                              s_now(), &added, NULL);
        }
    }
    mg_record_destroy(&rec);
}

typedef struct {
    s_engine_t *e;
    bool initial;   /* loading at start: no push */
    size_t seen;
} s_feed_t;

static int s_on_change(int64_t seq, const uint8_t *author, const char *rid,
                       const uint8_t *raw, size_t len, uint64_t bucket,
                       const uint8_t *vid, void *arg)
{
    s_feed_t *f = arg;
    s_engine_t *e = f->e;
    e->last_seq = seq;
    f->seen++;
    bool added = false;
    s_entry_t *entry = s_entries_get(&e->entries, author, rid, &added);
    if (!entry)
        return -1;
    if (!added)
        mg_itemset_remove(e->set, &entry->item);
    entry->item.bucket = bucket;
    memcpy(entry->item.id, vid, MG_VID_BYTES);
    mg_itemset_add(e->set, &entry->item);
    if (!f->initial) {
        char vhex[65];
        mg_hex_encode(vid, MG_VID_BYTES, vhex);
        uint64_t source = (uint64_t) (uintptr_t) zhashx_lookup(e->sources, vhex);
        zhashx_delete(e->sources, vhex);
        s_queue_push(e, raw, len, source);
    }
    /* Peer exchange: endpoints from profiles, whose rid is always
       "profile" -- no need to decode every offer to find them. */
    if (strcmp(rid, "profile") == 0)
        s_learn_profile(e, raw, len);
    else if (e->cfg.trust_count && strncmp(rid, MG_ENDORSE_RID_PREFIX, strlen(MG_ENDORSE_RID_PREFIX)) == 0)
        s_note_endorsement(e, raw, len);
    return 0;
}

/* Reads the store's change feed from where we left it. Not while a bulk
   transaction is open: the feed would show records that are not
   committed yet (and that a failed commit would take back); its commit
   polls. */
static void s_poll_changes(s_engine_t *e, bool initial)
{
    if (e->bulk)
        return;
    s_feed_t f = {.e = e, .initial = initial};
    do {
        f.seen = 0;
        mg_store_changes_since(e->store, e->last_seq, 2000, s_on_change, &f, NULL);
    } while (f.seen == 2000);
    zhashx_purge(e->sources);
    s_flush_push(e);
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */

/* Sends the records of `vids` (those we still hold) in batches. */
static void s_send_vids(s_link_t *link, const uint8_t *vids, size_t count)
{
    s_engine_t *e = link->engine;
    size_t i = 0;
    while (i < count) {
        uint8_t *raws[1024];
        size_t lens[1024], n = 0, bytes = 0;
        for (; i < count && n < 1024; i++) {
            uint8_t *raw;
            size_t len;
            if (mg_store_get_vid(e->store, vids + 32 * i, &raw, &len, NULL) != MG_OK)
                continue; /* replaced meanwhile: the newer one will follow */
            if (n && bytes + len > MG_BATCH_BYTES) {
                free(raw);
                break; /* i stays: this vid starts the next batch */
            }
            raws[n] = raw;
            lens[n] = len;
            bytes += len;
            n++;
        }
        if (n) {
            uint8_t *data;
            size_t len;
            if (mg_msg_list(MG_MSG_RECORDS, (const uint8_t *const *) raws, lens,
                            n, &data, &len) == MG_OK
                && s_send(link, data, len) == 0) {
                link->records_out += (int64_t) n;
                e->records_out += n;
            }
        }
        for (size_t k = 0; k < n; k++)
            free(raws[k]);
    }
}

static void s_pump_wants(s_link_t *link)
{
    int64_t now = s_now();
    /* A peer that stopped answering our WANTs (records replaced meanwhile,
       or dropped at its high-water mark) does not block us forever. */
    if (link->want_outstanding && now - link->want_sent_ms > S_SESSION_TIMEOUT_MS)
        link->want_outstanding = 0;
    while (link->want_len && link->want_outstanding < S_WANT_WINDOW) {
        size_t n = link->want_len < MG_WANT_MAX ? link->want_len : MG_WANT_MAX;
        const uint8_t *items[MG_WANT_MAX];
        size_t lens[MG_WANT_MAX];
        size_t first = link->want_len - n;
        for (size_t i = 0; i < n; i++) {
            items[i] = link->want + 32 * (first + i);
            lens[i] = 32;
        }
        uint8_t *data;
        size_t len;
        if (mg_msg_list(MG_MSG_WANT, items, lens, n, &data, &len) != MG_OK
            || s_send(link, data, len) != 0)
            break;
        link->want_len = first;
        link->want_outstanding += n;
        link->want_sent_ms = now;
    }
}

static void s_session_done(s_link_t *link)
{
    s_engine_t *e = link->engine;
    size_t nhave = 0, nneed = 0;
    const uint8_t *have = mg_recon_have(link->init, &nhave);
    const uint8_t *need = mg_recon_need(link->init, &nneed);
    char n[40];
    s_link_name(link, n);
    /* The end-of-session check failed (a short hash collided, or a set
       changed during the session): the result is still acted on, and the
       next round reconciles with this peer again, under a new session id
       (docs/reconciliation.md §3.2). */
    link->recon_recheck = !mg_recon_verified(link->init);
    MG_LOG_DEBUG(e->cfg.verbose, e->name,
                 "réconciliation terminée peer=%s à_envoyer=%zu à_recevoir=%zu vérifiée=%s", n,
                 nhave, nneed, link->recon_recheck ? "non" : "oui");
    if (nhave)
        s_send_vids(link, have, nhave);
    /* Do not ask again for what the trust policy refused. */
    uint8_t *wanted = NULL;
    if (nneed && zhashx_size(e->refused)) {
        wanted = malloc(nneed * 32);
        size_t keep = 0;
        for (size_t i = 0; wanted && i < nneed; i++) {
            char vhex[65];
            mg_hex_encode(need + 32 * i, 32, vhex);
            if (!zhashx_lookup(e->refused, vhex))
                memcpy(wanted + 32 * keep++, need + 32 * i, 32);
        }
        if (wanted) {
            need = wanted;
            nneed = keep;
        }
    }
    if (nneed) {
        if (link->want_len + nneed > link->want_cap) {
            size_t cap = link->want_len + nneed;
            uint8_t *grown = realloc(link->want, cap * 32);
            if (grown) {
                link->want = grown;
                link->want_cap = cap;
            }
        }
        size_t room = link->want_cap - link->want_len;
        size_t take = nneed < room ? nneed : room;
        memcpy(link->want + 32 * link->want_len, need, 32 * take);
        link->want_len += take;
        s_pump_wants(link);
    }
    free(wanted);
    mg_recon_destroy(&link->init);
    e->syncs++;
    s_peer_note(e, link, "live", false, true);
}

static void s_start_session(s_link_t *link)
{
    s_engine_t *e = link->engine;
    mg_recon_destroy(&link->init);
    link->init = mg_recon_new(e->set, true, S_RECON_FRAME);
    if (!link->init)
        return;
    uint8_t *payload = NULL, *data = NULL;
    size_t plen = 0, len = 0;
    if (mg_recon_initiate(link->init, &payload, &plen) == MG_OK
        && mg_msg_recon(MG_MSG_RECON_Q, payload, plen, &data, &len) == MG_OK) {
        s_send(link, data, len);
        link->init_started_ms = s_now();
        e->rounds++;
    } else {
        mg_recon_destroy(&link->init);
    }
    free(payload);
}

/* Verification runs on a second thread (the verifier actor) while the
   engine thread writes the previous batch to SQLite: Ed25519 verification
   (~50 us a record) and the store's apply (~60 us) then overlap, and a
   bootstrap uses both cores. The verifier gets a RECORDS frame and the
   link's serial, and answers with the decoded, verified records. */
typedef struct {
    uint64_t serial;          /* link the batch came from */
    size_t total;             /* records in the message */
    size_t bad;               /* records that failed verification */
    mg_why_t why;             /* why the last bad one failed */
    size_t count;             /* verified records */
    mg_record_t *recs[];      /* owned by whoever holds the reply */
} s_verified_t;

static void s_verifier(zsock_t *pipe, void *arg)
{
    (void) arg;
    zsock_signal(pipe, 0);
    while (true) {
        zmsg_t *m = zmsg_recv(pipe);
        if (!m)
            break;
        zframe_t *head = zmsg_pop(m);
        if (!head || zframe_streq(head, "$TERM")) {
            zframe_destroy(&head);
            zmsg_destroy(&m);
            break;
        }
        zframe_t *data = zmsg_pop(m);
        mg_msg_t msg;
        s_verified_t *v = NULL;
        if (data && zframe_size(head) == sizeof(uint64_t)
            && mg_msg_decode(zframe_data(data), zframe_size(data), &msg, NULL) == MG_OK) {
            v = calloc(1, sizeof *v + msg.count * sizeof(mg_record_t *));
            if (v) {
                memcpy(&v->serial, zframe_data(head), sizeof v->serial);
                v->total = msg.count;
                for (size_t i = 0; i < msg.count; i++) {
                    mg_record_t *r = NULL;
                    if (mg_record_decode(msg.items[i], msg.item_lens[i], &r, &v->why) == MG_OK)
                        v->recs[v->count++] = r;
                    else
                        v->bad++;
                }
            }
            mg_msg_clear(&msg);
        }
        zframe_destroy(&head);
        zframe_destroy(&data);
        zmsg_destroy(&m);
        /* The reply carries the pointer; the engine takes ownership. */
        zsock_send(pipe, "p", v);
    }
}

static void s_verified_free(s_verified_t **v_p)
{
    s_verified_t *v = *v_p;
    if (!v)
        return;
    for (size_t i = 0; i < v->count; i++)
        mg_record_destroy(&v->recs[i]);
    free(v);
    *v_p = NULL;
}

static s_link_t *s_link_by_serial(s_engine_t *e, uint64_t serial)
{
    for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links))
        if (l->serial == serial && !l->dead)
            return l;
    return NULL;
}

/* Whether pulled records are still on their way: batches being
   verified, or WANTs not yet answered or not yet sent. */
static bool s_pull_pending(s_engine_t *e)
{
    if (e->verify_inflight)
        return true;
    for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links))
        if (!l->dead && (l->want_outstanding || l->want_len))
            return true;
    return false;
}

static int s_on_index(zloop_t *loop, int timer_id, void *arg);

/* Writes a chunk of the offers' search rows that a bulk pull left owed
   (mg_store_apply_bulk), once no pull is under way, and schedules the
   next chunk right after the loop's other work. The write lock is not
   waited for: a CLI import holding it only delays the catch-up. */
static void s_index_catchup(s_engine_t *e)
{
    if (!e->index_owed || e->index_timer || e->bulk || s_pull_pending(e))
        return;
    int64_t now = s_now(), left = 0;
    mg_why_t why;
    mg_store_set_busy_timeout(e->store, 0);
    int rc = mg_store_index_pending(e->store, S_INDEX_CHUNK, &left, &why);
    mg_store_set_busy_timeout(e->store, -1);
    if (rc != MG_OK) {
        if (rc != MG_ERR_BUSY && now - e->index_warned_ms > 60000) {
            MG_LOG_WARN(e->name, "index des offres à compléter raison=\"%s\" (nouvel essai "
                        "dans un instant)", why.text);
            e->index_warned_ms = now;
        }
        return; /* the next tick tries again */
    }
    if (left > 0) {
        if (!e->index_started_ms) {
            e->index_started_ms = now;
            S_INFO(e, "index des offres en construction fiches=%lld", (long long) left);
        }
        e->index_timer = zloop_timer(e->loop, 1, 1, s_on_index, e) != -1;
        return;
    }
    e->index_owed = false;
    if (e->index_started_ms) {
        S_INFO(e, "index des offres à jour durée_ms=%lld",
               (long long) (s_now() - e->index_started_ms));
        e->index_started_ms = 0;
    }
    mg_store_release_memory(e->store);
}

static int s_on_index(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_engine_t *e = arg;
    e->index_timer = false;
    s_index_catchup(e);
    return 0;
}

/* Opens a bulk pull's transaction. When the write lock is not to be had
   (a CLI import holds it), batches simply commit one by one. */
static void s_bulk_begin(s_engine_t *e)
{
    if (e->bulk || mg_store_begin(e->store, NULL) != MG_OK)
        return;
    e->bulk = true;
    e->bulk_started_ms = s_now();
    e->bulk_records = 0;
}

/* Commits the bulk transaction, then takes the new records into the set
   and relays them. Once the pull is over, gives the page cache back. A
   failed commit loses the transaction's records: they are still missing
   from the set, so the next round asks for them again. */
static void s_bulk_end(s_engine_t *e)
{
    if (!e->bulk)
        return;
    e->bulk = false;
    mg_why_t why;
    if (mg_store_commit(e->store, &why) != MG_OK) {
        mg_store_rollback(e->store);
        MG_LOG_WARN(e->name, "écriture impossible raison=\"%s\" (les fiches reçues seront "
                    "redemandées au prochain tour)", why.text);
    }
    s_poll_changes(e, false);
    e->index_owed = true;
    if (!s_pull_pending(e)) {
        mg_store_release_memory(e->store);
        s_index_catchup(e);
    }
}

/* Ends the bulk transaction when it is large or old enough, or when the
   pull is over. */
static void s_bulk_check(s_engine_t *e)
{
    if (e->bulk
        && (e->bulk_records >= S_BULK_RECORDS || s_now() - e->bulk_started_ms >= S_BULK_MS
            || !s_pull_pending(e)))
        s_bulk_end(e);
}

/* Applies verified records: the trust policy, then one transaction (or
   the bulk transaction, for the batches of a pull);
   remembers where new ones came from so the eager push does not send
   them back. `link` may be NULL (closed meanwhile): the records are
   valid and are kept all the same. */
static void s_apply_verified(s_engine_t *e, s_link_t *link, s_verified_t *v)
{
    mg_record_t **recs = v->recs;
    size_t n = 0;
    mg_apply_t *outcomes = calloc(v->count ? v->count : 1, sizeof *outcomes);
    mg_why_t why = v->why;
    for (size_t i = 0; outcomes && i < v->count; i++) {
        mg_record_t *r = recs[i];
        uint8_t vid[32];
        mg_store_vid_of(r, vid);
        char vhex[65];
        mg_hex_encode(vid, 32, vhex);
        if (!s_accepts(e, r)) {
            /* Not stored, so never relayed; not asked for again until an
               endorsement changes. Bounded: forgotten past 100,000. */
            if (zhashx_size(e->refused) > 100000)
                zhashx_purge(e->refused);
            zhashx_update(e->refused, vhex, (void *) 1);
            e->records_refused++;
            if (s_now() - e->last_refused_log_ms > 1000) {
                char who[13];
                s_key_name(mg_record_author(r), who);
                S_INFO(e, "fiche refusée (auteur non recommandé par un coordinateur de confiance) auteur=%s total=%llu",
                       who, (unsigned long long) e->records_refused);
                e->last_refused_log_ms = s_now();
            }
            mg_record_destroy(&recs[i]);
            continue;
        }
        recs[n++] = r;
        if (link)
            zhashx_update(e->sources, vhex, (void *) (uintptr_t) link->serial);
    }
    v->count = n; /* the rest were destroyed above */
    e->records_in += v->total;
    if (link && link->want_outstanding)
        link->want_outstanding = link->want_outstanding > v->total
                                     ? link->want_outstanding - v->total : 0;
    /* A batch of copies (answers to WANTs that crossed records already
       received) opens no bulk transaction: it would hold the write lock
       for nothing, and other programs wait for it. */
    bool news = true;
    if (n >= S_BULK_MIN && !e->bulk && mg_store_any_newer(e->store, recs, n, &news, NULL) != MG_OK)
        news = true;
    if (n && outcomes) {
        if (n >= S_BULK_MIN && news)
            s_bulk_begin(e);
        /* In the bulk transaction, no savepoint at all: a failure rolls
           the whole transaction back (mg_store_apply_bulk) and its
           records, missing from the set, are asked for again at the next
           round. A savepoint per batch made each statement walk the
           batch's journal (quadratic: 300 records/s); one per record
           still cost a third of the write. */
        int rc = e->bulk ? mg_store_apply_bulk(e->store, recs, n, outcomes, &why)
                         : mg_store_apply_batch(e->store, recs, n, outcomes, &why);
        if (rc != MG_OK) {
            MG_LOG_WARN(e->name, "écriture impossible raison=\"%s\" (nouvel essai au prochain tour)",
                        why.text);
            /* mg_store_apply_bulk rolled the bulk transaction back; a
               batch of its own was rolled back by mg_store_apply_batch. */
            if (e->bulk) {
                e->bulk = false;
                s_poll_changes(e, false);
            }
        } else if (e->bulk) {
            e->bulk_records += n;
        }
        for (size_t i = 0; link && rc == MG_OK && i < n; i++)
            if (outcomes[i] == MG_APPLY_NEW || outcomes[i] == MG_APPLY_REPLACED)
                link->records_in++;
    }
    if (v->bad && link) {
        link->malformed += (int) v->bad;
        int64_t now = s_now();
        if (now - link->last_log_ms > 1000) {
            char nm[40];
            s_link_name(link, nm);
            MG_LOG_WARN(e->name, "fiches refusées peer=%s nombre=%zu raison=\"%s\"", nm,
                        v->bad, v->why.text);
            link->last_log_ms = now;
        }
        if (!link->dead && link->malformed > S_MALFORMED_MAX)
            s_ban_link(link);
    }
    free(outcomes);
    /* Ask for more before committing: the sender reads while we write. */
    if (link && !link->dead)
        s_pump_wants(link);
    s_bulk_check(e);
    s_poll_changes(e, false);
}

/* Hands a RECORDS frame to the verifier (or verifies it here when the
   verifier could not be started). */
static void s_on_records(s_link_t *link, const uint8_t *data, size_t len)
{
    s_engine_t *e = link->engine;
    size_t k = e->verify_next;
    e->verify_next = (k + 1) % S_VERIFIERS;
    if (!e->verifiers[k])
        k = 0;
    if (e->verifiers[k]) {
        zmsg_t *m = zmsg_new();
        zmsg_addmem(m, &link->serial, sizeof link->serial);
        zmsg_addmem(m, data, len);
        if (zmsg_send(&m, e->verifiers[k]) == 0) {
            e->verifier_inflight[k]++;
            e->verify_inflight++;
        }
        zmsg_destroy(&m);
        return;
    }
    mg_msg_t msg;
    if (mg_msg_decode(data, len, &msg, NULL) != MG_OK)
        return;
    s_verified_t *v = calloc(1, sizeof *v + msg.count * sizeof(mg_record_t *));
    if (v) {
        v->serial = link->serial;
        v->total = msg.count;
        for (size_t i = 0; i < msg.count; i++) {
            mg_record_t *r = NULL;
            if (mg_record_decode(msg.items[i], msg.item_lens[i], &r, &v->why) == MG_OK)
                v->recs[v->count++] = r;
            else
                v->bad++;
        }
        s_apply_verified(e, link, v);
        s_verified_free(&v);
    }
    mg_msg_clear(&msg);
}

static int s_on_verifier(zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_engine_t *e = arg;
    void *ptr = NULL;
    if (zsock_recv(reader, "p", &ptr) != 0)
        return 0;
    for (size_t k = 0; k < S_VERIFIERS; k++)
        if (e->verifiers[k] && zactor_sock(e->verifiers[k]) == reader
            && e->verifier_inflight[k]) {
            e->verifier_inflight[k]--;
            e->verify_inflight--;
        }
    s_verified_t *v = ptr;
    if (v) {
        s_apply_verified(e, s_link_by_serial(e, v->serial), v);
        s_verified_free(&v);
    }
    s_reap_links(e);
    return 0;
}

static void s_handle_message(s_link_t *link, const uint8_t *data, size_t len,
                             const char *user_id);

/* Handles one message, then bans a peer whose malformed count (bad
   frames, invalid records, bad reconciliation payloads, messages before
   HELLO) went over the limit. */
static void s_on_message(s_link_t *link, const uint8_t *data, size_t len,
                         const char *user_id)
{
    s_handle_message(link, data, len, user_id);
    if (!link->dead && link->malformed > S_MALFORMED_MAX)
        s_ban_link(link);
}

static void s_handle_message(s_link_t *link, const uint8_t *data, size_t len,
                             const char *user_id)
{
    s_engine_t *e = link->engine;
    int64_t now = s_now();
    e->bytes_in += len;
    if (now - link->rate_window_ms >= 1000) {
        link->rate_window_ms = now;
        link->rate_count = 0;
    }
    if (++link->rate_count > S_RATE_MAX)
        return; /* over budget: dropped, anti-entropy will catch up */
    mg_msg_t msg;
    mg_why_t why;
    mg_why_clear(&why);
    if (mg_msg_decode(data, len, &msg, &why) != MG_OK) {
        link->malformed++;
        if (now - link->last_log_ms > 1000) {
            char n[40];
            s_link_name(link, n);
            MG_LOG_WARN(e->name, "message refusé peer=%s raison=\"%s\" total=%d", n,
                        why.text, link->malformed);
            link->last_log_ms = now;
        }
        return;
    }
    link->last_rx_ms = now;
    MG_LOG_DEBUG(e->cfg.verbose, e->name, "reçu type=%s taille=%zu", mg_msg_name(msg.type), len);
    if (msg.type == MG_MSG_HELLO && msg.version != MG_PROTOCOL_VERSION) {
        /* Another version of the link protocol (docs/protocol.md): its
           reconciliation messages would not parse. Not hostile, so not
           counted as malformed (no ban): said once a minute per link, no
           answer; an outbound link is retried later with backoff. */
        if (now - link->last_log_ms > 60000) {
            char n[40];
            s_link_name(link, n);
            MG_LOG_WARN(e->name, "pair d'une autre version du protocole peer=%s version=%u "
                        "la_nôtre=%d : l'un des deux nœuds doit mettre maillage à jour",
                        n, msg.version, MG_PROTOCOL_VERSION);
            link->last_log_ms = now;
        }
        if (link->outbound)
            s_close_link(link, true, "autre version du protocole");
        mg_msg_clear(&msg);
        return;
    }
    if (msg.type == MG_MSG_HELLO) {
        if (link->outbound) {
            if (memcmp(msg.key, link->key, MG_KEY_BYTES) != 0) {
                s_close_link(link, true, "clé inattendue");
            } else if (link->state != S_LIVE) {
                link->state = S_LIVE;
                char n[40];
                s_link_name(link, n);
                S_INFO(e, "lien actif peer=%s nom=\"%s\"", n, msg.name);
                s_peer_note(e, link, "live", false, false);
            }
        } else {
            /* The key claimed must be the one the CURVE handshake proved
               (ZAP gave us its CURVE form as User-Id). */
            uint8_t curve[32];
            char hex[65] = "";
            if (crypto_sign_ed25519_pk_to_curve25519(curve, msg.key) == 0)
                mg_hex_encode(curve, 32, hex);
            if (!user_id || strcmp(hex, user_id) != 0) {
                link->malformed++;
                MG_LOG_WARN(e->name, "HELLO refusé : la clé annoncée n'est pas celle de la connexion");
            } else if (!s_key_allowed(e, msg.key)) {
                link->malformed++; /* ZAP should have refused it already */
            } else {
                bool first = !link->key_known;
                memcpy(link->key, msg.key, MG_KEY_BYTES);
                /* Remember it under the first endpoint it advertises (none:
                   it dials out only, e.g. behind a NAT). */
                if (msg.endpoint_count)
                    snprintf(link->endpoint, sizeof link->endpoint, "%s", msg.endpoints[0]);
                link->key_known = true;
                link->state = S_LIVE;
                s_send_hello(link); /* answer (also answers keepalives) */
                if (first) {
                    char n[40];
                    s_link_name(link, n);
                    S_INFO(e, "lien entrant actif peer=%s nom=\"%s\"", n, msg.name);
                    for (size_t i = 0; i < msg.endpoint_count; i++) {
                        bool added;
                        mg_store_peer_add(e->store, msg.key, msg.endpoints[i],
                                          "inbound", now, &added, NULL);
                    }
                    s_peer_note(e, link, "live", false, false);
                }
            }
        }
        mg_msg_clear(&msg);
        return;
    }
    if (link->state != S_LIVE) {
        /* Everything else waits for HELLO: a peer that skips it is
           counted as malformed. */
        link->malformed++;
        mg_msg_clear(&msg);
        return;
    }
    switch (msg.type) {
    case MG_MSG_RECON_Q: {
        if (!link->resp)
            link->resp = mg_recon_new(e->set, false, S_RECON_FRAME);
        uint8_t *out = NULL, *data2 = NULL;
        size_t olen = 0, len2 = 0;
        if (link->resp
            && mg_recon_process(link->resp, msg.payload, msg.payload_len, &out, &olen,
                                &why) == MG_OK) {
            if (out && mg_msg_recon(MG_MSG_RECON_A, out, olen, &data2, &len2) == MG_OK)
                s_send(link, data2, len2);
        } else {
            link->malformed++;
            mg_recon_destroy(&link->resp);
        }
        free(out);
        break;
    }
    case MG_MSG_RECON_A: {
        if (!link->init) {
            link->malformed++; /* an answer to no question */
            break;
        }
        uint8_t *out = NULL, *data2 = NULL;
        size_t olen = 0, len2 = 0;
        int prc = mg_recon_process(link->init, msg.payload, msg.payload_len, &out, &olen,
                                   &why);
        /* The timeout is for a silent peer, not a long bootstrap: each
           answer of this session restarts it. */
        if (prc != MG_ERR_STALE)
            link->init_started_ms = s_now();
        if (prc == MG_ERR_STALE) {
            /* A late answer to a session we gave up: not this one's, and
               not the peer's fault. Dropped; the session goes on. */
        } else if (prc != MG_OK) {
            link->malformed++;
            mg_recon_destroy(&link->init);
        } else if (out) {
            mg_recon_stats_t rs;
            mg_recon_stats(link->init, &rs);
            if (rs.round_trips > S_SESSION_ROUNDS_MAX)
                mg_recon_destroy(&link->init); /* endless session: drop it */
            else if (mg_msg_recon(MG_MSG_RECON_Q, out, olen, &data2, &len2) == MG_OK)
                s_send(link, data2, len2);
        } else {
            s_session_done(link);
        }
        free(out);
        break;
    }
    case MG_MSG_RECORDS:
        s_on_records(link, data, len);
        break;
    case MG_MSG_WANT: {
        uint8_t *vids = malloc(msg.count * 32 + 1);
        for (size_t i = 0; vids && i < msg.count; i++)
            memcpy(vids + 32 * i, msg.items[i], 32);
        if (vids)
            s_send_vids(link, vids, msg.count);
        free(vids);
        break;
    }
    default:
        break;
    }
    mg_msg_clear(&msg);
}

/* ------------------------------------------------------------------ */
/* Reactor handlers                                                    */

static int s_on_dealer(zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_link_t *link = arg;
    /* Drain what is there (bounded) so one busy peer cannot starve others. */
    for (int i = 0; i < 64; i++) {
        zframe_t *f = zframe_recv_nowait(reader);
        if (!f)
            break;
        if (!link->dead)
            s_on_message(link, zframe_data(f), zframe_size(f), NULL);
        zframe_destroy(&f);
        while (zsock_rcvmore(reader)) { /* we only use single frames */
            zframe_t *extra = zframe_recv_nowait(reader);
            zframe_destroy(&extra);
            link->malformed++;
        }
    }
    s_reap_links(link->engine);
    return 0;
}

static s_link_t *s_link_by_rid(s_engine_t *e, zsock_t *router, zframe_t *rid)
{
    for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links))
        if (!l->outbound && l->router == router && zframe_eq(l->rid, rid))
            return l;
    return NULL;
}

static int s_on_router(zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_engine_t *e = arg;
    for (int i = 0; i < 64; i++) {
        zmsg_t *m = zmsg_recv_nowait(reader);
        if (!m)
            break;
        zframe_t *rid = zmsg_pop(m);
        zframe_t *data = zmsg_pop(m);
        if (rid && data && zmsg_size(m) == 0 && !s_rid_banned(e, reader, rid)) {
            s_link_t *link = s_link_by_rid(e, reader, rid);
            if (!link && zlistx_size(e->links) < 4 * (size_t) MG_NODE_PEERS_MAX) {
                link = s_link_new(e, false);
                if (link) {
                    link->router = reader;
                    link->rid = zframe_dup(rid);
                }
            }
            if (link && !link->dead) {
                const char *uid = zframe_meta(data, "User-Id");
                if (uid && !link->user_id[0])
                    snprintf(link->user_id, sizeof link->user_id, "%s", uid);
                s_on_message(link, zframe_data(data), zframe_size(data), uid);
            }
        }
        zframe_destroy(&rid);
        zframe_destroy(&data);
        zmsg_destroy(&m);
    }
    s_reap_links(e);
    return 0;
}

static int s_on_round(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_engine_t *e = arg;
    /* A link whose last session ended unverified first; otherwise one
       random live link with no session of ours in progress. */
    for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links)) {
        if (!l->dead && l->state == S_LIVE && !l->init && l->recon_recheck) {
            l->recon_recheck = false;
            s_start_session(l);
            return 0;
        }
    }
    size_t live = 0;
    for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links))
        if (!l->dead && l->state == S_LIVE && !l->init)
            live++;
    if (live) {
        size_t pick = randombytes_uniform((uint32_t) live);
        for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links)) {
            if (l->dead || l->state != S_LIVE || l->init)
                continue;
            if (pick-- == 0) {
                s_start_session(l);
                break;
            }
        }
    }
    return 0;
}

static void s_update_profile(s_engine_t *e);

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_engine_t *e = arg;
    int64_t now = s_now();
    s_bulk_check(e);
    s_poll_changes(e, false);
    s_index_catchup(e);
    int64_t version = 0;
    if (mg_store_peers_version(e->store, &version) == MG_OK && version != e->peers_version) {
        e->peers_version = version;
        s_load_peers(e);
        /* Close links to peers removed with `maillage peer rm`. */
        for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links)) {
            if (!l->outbound)
                continue;
            bool listed = false;
            for (size_t i = 0; i < e->cand_count && !listed; i++)
                listed = memcmp(e->cands[i].row.key, l->key, MG_KEY_BYTES) == 0;
            if (!listed)
                s_close_link(l, false, "pair retiré");
        }
    }
    for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links)) {
        if (l->dead)
            continue;
        if (l->state == S_CONNECTING && now - l->opened_ms > S_HELLO_TIMEOUT_MS) {
            if (l->outbound)
                s_close_link(l, true, "pas de réponse");
            else
                l->dead = true; /* never said HELLO */
        } else if (l->state == S_LIVE && now - l->last_rx_ms > S_DEAD_AFTER_MS) {
            s_close_link(l, l->outbound, "silencieux");
        } else if (l->state == S_LIVE && l->outbound
                   && now - l->last_rx_ms > S_PING_AFTER_MS
                   && now - l->last_ping_ms > S_PING_AFTER_MS) {
            s_send_hello(l);
        }
        if (l->init && now - l->init_started_ms > S_SESSION_TIMEOUT_MS)
            mg_recon_destroy(&l->init);
        if (!l->dead)
            s_pump_wants(l);
    }
    s_reap_links(e);
    s_connect_more(e);
    return 0;
}

static int s_on_heartbeat(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_engine_t *e = arg;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long) s_now());
    /* Skipped while another program holds the write lock: waiting the
       busy timeout here every second would starve the links. */
    mg_store_set_busy_timeout(e->store, 0);
    mg_store_meta_set(e->store, "node.heartbeat_ms", buf, NULL);
    mg_store_set_busy_timeout(e->store, -1);
    /* Past events leave the local indexes after the retention period
       (docs/events.md): checked at start and then every hour. */
    if (++e->beats % 3600 == 0)
        mg_store_events_purge(e->store, 0, NULL, NULL);
    return 0;
}

static int s_on_beacon(zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_engine_t *e = arg;
    char *ip = zstr_recv(reader);
    zframe_t *f = ip ? zframe_recv(reader) : NULL;
    /* "MG1" + key (32) + port (2, big-endian) */
    if (f && zframe_size(f) == 37 && memcmp(zframe_data(f), "MG1", 3) == 0) {
        const uint8_t *d = zframe_data(f);
        if (memcmp(d + 3, e->cfg.identity.pk, 32) != 0) {
            char ep[MG_ENDPOINT_MAX + 1];
            snprintf(ep, sizeof ep, "tcp://%s:%u", ip, (unsigned) (d[35] << 8 | d[36]));
            bool added = false;
            mg_store_peer_add(e->store, d + 3, ep, "beacon", s_now(), &added, NULL);
            if (added)
                S_INFO(e, "pair découvert sur le réseau local endpoint=%s", ep);
        }
    }
    zframe_destroy(&f);
    zstr_free(&ip);
    return 0;
}

static int s_on_pipe(zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_engine_t *e = arg;
    zmsg_t *m = zmsg_recv(reader);
    if (!m)
        return -1;
    char *cmd = zmsg_popstr(m);
    int rc = 0;
    if (!cmd || streq(cmd, "$TERM")) {
        e->terminated = true;
        rc = -1;
    } else if (streq(cmd, "ENDPOINTS")) {
        /* One string: the bound endpoints separated by spaces ("" when the
           node only dials out). Always one frame, so the asker never waits. */
        char eps[MG_NODE_LISTEN_MAX * (MG_ENDPOINT_MAX + 1)] = "";
        for (size_t i = 0; i < e->router_count; i++) {
            strcat(eps, i ? " " : "");
            strcat(eps, e->bound[i]);
        }
        zstr_send(reader, eps);
    } else if (streq(cmd, "STATS")) {
        uint8_t fp[16];
        mg_itemset_fingerprint(e->set, 0, mg_itemset_size(e->set), fp);
        char fphex[33];
        mg_hex_encode(fp, 16, fphex);
        size_t live = 0;
        for (s_link_t *l = zlistx_first(e->links); l; l = zlistx_next(e->links))
            live += !l->dead && l->state == S_LIVE;
        zstr_sendf(reader, "%zu %s %zu %llu %llu %llu %llu %llu %llu %llu",
                   mg_itemset_size(e->set), fphex, live,
                   (unsigned long long) e->rounds, (unsigned long long) e->bytes_out,
                   (unsigned long long) e->bytes_in, (unsigned long long) e->records_in,
                   (unsigned long long) e->records_out, (unsigned long long) e->syncs,
                   (unsigned long long) e->records_refused);
    } else if (streq(cmd, "SYNC")) {
        /* Tests and benchmarks: start a round now. */
        s_on_round(loop, 0, e);
    }
    zstr_free(&cmd);
    zmsg_destroy(&m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */

/* The endpoints to publish: configured ones, else the bound ones that a
   peer can dial (not a wildcard address). */
static void s_compute_advertised(s_engine_t *e)
{
    e->advertised_count = 0;
    if (e->cfg.advertise_count) {
        for (size_t i = 0; i < e->cfg.advertise_count; i++)
            snprintf(e->advertised[e->advertised_count++], MG_ENDPOINT_MAX + 1, "%s",
                     e->cfg.advertise[i]);
        return;
    }
    for (size_t i = 0; i < e->router_count; i++) {
        const char *b = e->bound[i];
        bool wildcard = strstr(b, "://0.0.0.0:") || strstr(b, "://*:") || strstr(b, "://[::]:");
        if (!wildcard) {
            snprintf(e->advertised[e->advertised_count++], MG_ENDPOINT_MAX + 1, "%s", b);
            continue;
        }
        /* Bound on every interface: publish each interface's address
           (a node behind NAT should say --advertise). */
        const char *port = strrchr(b, ':');
        ziflist_t *ifs = ziflist_new();
        for (const char *name = ifs ? ziflist_first(ifs) : NULL;
             name && e->advertised_count < MG_NODE_LISTEN_MAX; name = ziflist_next(ifs))
            snprintf(e->advertised[e->advertised_count++], MG_ENDPOINT_MAX + 1,
                     "tcp://%s%s", ziflist_address(ifs), port ? port : ":7470");
        ziflist_destroy(&ifs);
    }
}

/* Publishes our endpoints in our signed profile when they changed, so
   other nodes learn how to reach us (peer exchange). */
static void s_update_profile(s_engine_t *e)
{
    mg_record_t *cur = NULL;
    mg_body_t *body = NULL;
    if (mg_store_get(e->store, e->cfg.identity.pk, "profile", &cur, NULL) == MG_OK
        && !mg_record_deleted(cur)) {
        body = mg_body_dup(mg_record_body(cur));
    } else {
        char name[256] = "Nœud maillage";
        mg_store_meta_get(e->store, "name", name, sizeof name);
        body = mg_body_new();
        if (body)
            mg_body_set_str(body, "nom", name);
    }
    mg_record_destroy(&cur);
    if (!body)
        return;
    const char *eps[MG_NODE_LISTEN_MAX];
    for (size_t i = 0; i < e->advertised_count; i++)
        eps[i] = e->advertised[i];
    const char *const *old;
    size_t nold = mg_body_list(body, "endpoints", &old);
    bool same = nold == e->advertised_count;
    for (size_t i = 0; same && i < nold; i++)
        same = strcmp(old[i], eps[i]) == 0;
    if (!same) {
        if (e->advertised_count)
            mg_body_set_list(body, "endpoints", eps, e->advertised_count);
        else
            mg_body_remove(body, "endpoints");
        mg_why_t why;
        s_bulk_end(e); /* one transaction at a time */
        if (mg_store_author(e->store, &e->cfg.identity, "profile", "profile", s_now(), false,
                            body, &why) != MG_OK)
            MG_LOG_WARN(e->name, "publication des adresses impossible raison=\"%s\"", why.text);
        /* The transaction raised the page cache for a bulk write. */
        mg_store_release_memory(e->store);
    }
    mg_body_destroy(&body);
}

static void s_engine_destroy(s_engine_t **self_p)
{
    s_engine_t *e = *self_p;
    if (!e)
        return;
    for (size_t k = 0; k < S_VERIFIERS; k++) {
        if (!e->verifiers[k])
            continue;
        /* Take back the batches still being verified (they own records). */
        zsock_set_rcvtimeo(e->verifiers[k], 5000);
        while (e->verifier_inflight[k]) {
            void *ptr = NULL;
            if (zsock_recv(e->verifiers[k], "p", &ptr) != 0)
                break;
            s_verified_t *v = ptr;
            s_verified_free(&v);
            e->verifier_inflight[k]--;
        }
        zactor_destroy(&e->verifiers[k]);
    }
    /* What a bulk pull applied so far is kept, and made searchable: a
       stopped node's listings are complete (bounded: the rest waits for
       the next start, which resumes from the store's mark). */
    if (e->bulk && e->store) {
        e->bulk = false;
        if (mg_store_commit(e->store, NULL) != MG_OK)
            mg_store_rollback(e->store);
    }
    if (e->store && e->index_owed) {
        int64_t left = 1, until = s_now() + 30000;
        while (left > 0 && s_now() < until
               && mg_store_index_pending(e->store, S_INDEX_CHUNK, &left, NULL) == MG_OK)
            ;
    }
    if (e->links) {
        s_link_t *l = zlistx_first(e->links);
        while (l) {
            s_link_t *next = zlistx_next(e->links);
            if (e->store && !l->dead && l->state == S_LIVE)
                s_peer_note(e, l, "new", false, false); /* not "live" once we stop */
            s_link_destroy(&l);
            l = next;
        }
        zlistx_destroy(&e->links);
    }
    if (e->store) {
        mg_store_meta_set(e->store, "node.pid", "", NULL);
        mg_store_meta_set(e->store, "node.heartbeat_ms", "0", NULL);
    }
    for (size_t i = 0; i < e->router_count; i++)
        zsock_destroy(&e->routers[i]);
    zactor_destroy(&e->beacon);
    for (size_t i = 0; i < e->ban_count; i++)
        zframe_destroy(&e->bans[i].rid);
    zloop_destroy(&e->loop);
    zcert_destroy(&e->cert);
    free(e->entries.slots);
    zhashx_destroy(&e->sources);
    zhashx_destroy(&e->endorsed);
    zhashx_destroy(&e->refused);
    if (e->zap_domain[0])
        mg_zap_allow(e->zap_domain, NULL, 0);
    mg_itemset_destroy(&e->set);
    for (size_t i = 0; i < e->push_count; i++)
        free(e->push[i]);
    free(e->push);
    free(e->push_len);
    free(e->push_src);
    free(e->cands);
    mg_store_destroy(&e->store);
    mg_identity_wipe(&e->cfg.identity);
    free(e);
    *self_p = NULL;
    mg_zap_release();
}

/* Builds the engine: store, keys, sockets. NULL on failure (logged). */
static s_engine_t *s_engine_new(const mg_node_config_t *cfg, zsock_t *pipe)
{
    s_engine_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    if (mg_zap_acquire() != 0) {
        free(e);
        return NULL;
    }
    e->cfg = *cfg;
    e->pipe = pipe;
    e->index_owed = true; /* a catch-up a stop or a crash interrupted */
    if (e->cfg.interval_ms <= 0)
        e->cfg.interval_ms = 1000;
    if (e->cfg.max_links <= 0)
        e->cfg.max_links = 8;
    if (e->cfg.beacon_port <= 0)
        e->cfg.beacon_port = 7677;
    s_key_name(cfg->identity.pk, e->name);
    mg_why_t why;
    mg_why_clear(&why);
    if (mg_store_open(cfg->db_path, &e->store, &why) != MG_OK) {
        MG_LOG_ERROR(e->name, "base inutilisable raison=\"%s\"", why.text);
        goto fail;
    }
    /* The pid is the first write: a node that cannot write its base
       (read-only file or disk, full disk) would drop everything it
       receives, so it refuses to start and says why. */
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int) getpid());
    if (mg_store_meta_set(e->store, "node.pid", pid, &why) != MG_OK) {
        MG_LOG_ERROR(e->name, "démarrage impossible : la base ne peut pas être "
                     "modifiée raison=\"%s\"", why.text);
        goto fail;
    }
    uint8_t curve_pk[32], curve_sk[32];
    if (crypto_sign_ed25519_pk_to_curve25519(curve_pk, cfg->identity.pk) != 0
        || crypto_sign_ed25519_sk_to_curve25519(curve_sk, cfg->identity.sk) != 0)
        goto fail;
    e->cert = zcert_new_from(curve_pk, curve_sk);
    sodium_memzero(curve_sk, sizeof curve_sk);
    e->links = zlistx_new();
    randombytes_buf(e->entries.hash_key, sizeof e->entries.hash_key);
    e->sources = zhashx_new();
    e->endorsed = zhashx_new();
    e->refused = zhashx_new();
    e->set = mg_itemset_new();
    e->loop = zloop_new();
    if (!e->cert || !e->links || !e->sources || !e->set || !e->loop
        || !e->endorsed || !e->refused)
        goto fail;
    /* One ZAP domain per node: its allow-list is its own. */
    snprintf(e->zap_domain, sizeof e->zap_domain, "mg-%s-%p", e->name, (void *) e);
    if (cfg->allow_count) {
        char (*curve)[65] = calloc(cfg->allow_count, sizeof *curve);
        size_t n = 0;
        for (size_t i = 0; curve && i < cfg->allow_count; i++) {
            uint8_t c[32];
            if (crypto_sign_ed25519_pk_to_curve25519(c, cfg->allow[i]) == 0)
                mg_hex_encode(c, 32, curve[n++]);
        }
        int zrc = curve ? mg_zap_allow(e->zap_domain, (const char (*)[65]) curve, n) : -1;
        free(curve);
        if (zrc != 0)
            goto fail;
    }
    for (size_t i = 0; i < cfg->listen_count; i++) {
        zsock_t *r = zsock_new(ZMQ_ROUTER);
        if (!r)
            goto fail;
        zcert_apply(e->cert, r);
        zsock_set_curve_server(r, 1);
        zsock_set_zap_domain(r, e->zap_domain);
        /* A connection that does not finish its CURVE handshake in 5 s is
           closed (libzmq's default is 30 s of a held file descriptor). */
        zsock_set_handshake_ivl(r, S_HELLO_TIMEOUT_MS);
        zsock_set_maxmsgsize(r, MG_MSG_MAX);
        zsock_set_sndhwm(r, 1000);
        zsock_set_rcvhwm(r, 1000);
        zsock_set_linger(r, 0);
        if (zsock_bind(r, "%s", cfg->listen[i]) < 0) {
            MG_LOG_ERROR(e->name, "écoute impossible endpoint=%s raison=\"%s\"",
                         cfg->listen[i], zmq_strerror(zmq_errno()));
            zsock_destroy(&r);
            goto fail;
        }
        e->routers[e->router_count] = r;
        char *bound = zsock_last_endpoint(r); /* caller owns the string */
        snprintf(e->bound[e->router_count], MG_ENDPOINT_MAX + 1, "%s", bound ? bound : "");
        zstr_free(&bound);
        e->router_count++;
        zloop_reader(e->loop, r, s_on_router, e);
    }
    s_compute_advertised(e);
    mg_store_events_purge(e->store, 0, NULL, NULL);
    /* Load the set from the store (no eager push for what we had). */
    s_poll_changes(e, true);
    s_update_profile(e);
    s_poll_changes(e, false);
    mg_store_peers_version(e->store, &e->peers_version);
    s_load_peers(e);
    /* A previous run that was killed may have left peers marked live. */
    for (size_t i = 0; i < e->cand_count; i++) {
        mg_peer_row_t *r = &e->cands[i].row;
        if (strcmp(r->state, "live") == 0 || strcmp(r->state, "connecting") == 0) {
            snprintf(r->state, sizeof r->state, "new");
            mg_store_peer_update(e->store, r, NULL);
        }
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%lld", (long long) s_now());
    mg_store_meta_set(e->store, "node.started_ms", buf, NULL);
    mg_store_meta_set(e->store, "node.heartbeat_ms", buf, NULL);
    char eps[MG_NODE_LISTEN_MAX * (MG_ENDPOINT_MAX + 1)] = "";
    for (size_t i = 0; i < e->router_count; i++) {
        strcat(eps, i ? " " : "");
        strcat(eps, e->bound[i]);
    }
    mg_store_meta_set(e->store, "node.endpoints", eps, NULL);
    if (cfg->discover) {
        e->beacon = zactor_new(zbeacon, NULL);
        if (e->beacon) {
            zsock_send(e->beacon, "si", "CONFIGURE", e->cfg.beacon_port);
            char *host = zstr_recv(e->beacon);
            zstr_free(&host);
            uint8_t b[37] = {'M', 'G', '1'};
            memcpy(b + 3, cfg->identity.pk, 32);
            int port = 0;
            if (e->router_count) {
                const char *colon = strrchr(e->bound[0], ':');
                port = colon ? atoi(colon + 1) : 0;
            }
            b[35] = (uint8_t) (port >> 8);
            b[36] = (uint8_t) port;
            if (port)
                zsock_send(e->beacon, "sbi", "PUBLISH", b, sizeof b, 1000);
            zsock_send(e->beacon, "sb", "SUBSCRIBE", "MG1", 3);
            zloop_reader(e->loop, (zsock_t *) e->beacon, s_on_beacon, e);
        }
    }
    for (size_t k = 0; k < S_VERIFIERS; k++) {
        e->verifiers[k] = zactor_new(s_verifier, NULL);
        if (e->verifiers[k])
            zloop_reader(e->loop, zactor_sock(e->verifiers[k]), s_on_verifier, e);
    }
    zloop_reader(e->loop, pipe, s_on_pipe, e);
    zloop_timer(e->loop, (size_t) e->cfg.interval_ms, 0, s_on_round, e);
    int tick = e->cfg.interval_ms < 200 ? e->cfg.interval_ms : 200;
    zloop_timer(e->loop, (size_t) tick, 0, s_on_tick, e);
    zloop_timer(e->loop, 1000, 0, s_on_heartbeat, e);
    /* zloop must not stop on SIGINT by itself: the owner decides. */
    zloop_set_nonstop(e->loop, true);
    s_connect_more(e);
    S_INFO(e, "nœud démarré fiches=%zu écoute=\"%s\" pairs=%zu liste_autorisée=%zu coordinateurs=%zu",
           mg_itemset_size(e->set), eps, e->cand_count, cfg->allow_count, cfg->trust_count);
    return e;
fail:
    s_engine_destroy(&e);
    return NULL;
}

/* Waits for the owner's $TERM, so zactor_destroy never hangs. */
static void s_wait_term(zsock_t *pipe)
{
    char *cmd;
    while ((cmd = zstr_recv(pipe))) {
        bool term = streq(cmd, "$TERM");
        zstr_free(&cmd);
        if (term)
            break;
    }
}

static void s_engine_actor(zsock_t *pipe, void *arg)
{
    s_engine_t *e = s_engine_new(arg, pipe);
    /* zactor_new consumes the first signal and discards its value, so the
       startup status follows as a string. */
    zsock_signal(pipe, 0);
    zstr_send(pipe, e ? "OK" : "FAIL");
    if (!e) {
        s_wait_term(pipe);
        return;
    }
    zloop_start(e->loop);
    if (!e->terminated)
        s_wait_term(pipe);
    S_INFO(e, "nœud arrêté");
    s_engine_destroy(&e);
}

zactor_t *mg_node_new(const mg_node_config_t *config)
{
    mg_node_config_t *copy = malloc(sizeof *copy);
    if (!copy)
        return NULL;
    *copy = *config;
    zactor_t *actor = zactor_new(s_engine_actor, copy);
    char *status = actor ? zstr_recv(actor) : NULL;
    if (actor && (!status || !streq(status, "OK")))
        zactor_destroy(&actor);
    zstr_free(&status);
    mg_identity_wipe(&copy->identity);
    free(copy);
    return actor;
}
