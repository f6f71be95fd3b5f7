/*  fuzz_msg.c - libFuzzer target: one link message (one ZeroMQ frame), as
    a peer can send it.

    Input: the frame's bytes (docs/protocol.md §9). mg_msg_decode must
    refuse them with an explanation or decode them; a decoded message is
    then handled the way the node's engine handles it:
      - HELLO: fields within their limits, valid UTF-8;
      - RECON_Q: the payload answered by a responder session over a small
        fixed set; RECON_A: processed by an initiator session that has
        sent its first message;
      - RECORDS: every item verified as a record (mg_record_decode) and
        its version id computed;
      - WANT: 32-byte vids, at most MG_WANT_MAX.
    Every decoded message is also encoded again with the encoders of
    mg_msg.h and decoded back to the same fields (pointers into the input
    must be exact: the buffer libFuzzer passes has no slack, so ASan sees
    any read past it).

    Built as a fuzzer by tests/fuzz/CMakeLists.txt; tests/test_hostile.c
    replays the committed corpus through it. */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_msg.h"
#include "mg_recon.h"
#include "mg_record.h"
#include "mg_store.h"
#include "mg_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_CHECK(cond)                                                      \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,     \
                    __LINE__, #cond);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* The set the reconciliation payloads are answered from: 64 items over
   a few buckets, so that fingerprints, splits and id lists all occur. */
static mg_itemset_t *s_set;

static const mg_itemset_t *s_set_get(void)
{
    if (!s_set) {
        s_set = mg_itemset_new();
        if (!s_set)
            abort();
        for (uint32_t i = 0; i < 64; i++) {
            mg_item_t it = {.bucket = (i % 4) * 160};
            uint8_t seed[4] = {(uint8_t) i, (uint8_t) (i >> 8), 0x6d, 0x67};
            crypto_generichash(it.id, sizeof it.id, seed, sizeof seed, NULL, 0);
            if (mg_itemset_add(s_set, &it) != MG_OK)
                abort();
        }
        mg_itemset_prepare(s_set);
    }
    return s_set;
}

/* A pointer decoded from the message lies inside the message. */
static bool s_inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
    return p >= data && n <= size && (size_t) (p - data) <= size - n;
}

/* The reply a session produces respects the sender's frame limit. */
static void s_recon(const uint8_t *payload, size_t len, bool initiator)
{
    const mg_itemset_t *set = s_set_get();
    mg_recon_t *r = mg_recon_new(set, initiator, 0);
    if (!r)
        abort();
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (initiator) {
        /* Session 7, that of the golden RECON_A: answers of another
           session are refused as stale. */
        S_CHECK(mg_recon_set_session(r, 7) == MG_OK);
        S_CHECK(mg_recon_initiate(r, &out, &out_len) == MG_OK);
        free(out);
        out = NULL;
    }
    mg_why_t why;
    int rc = mg_recon_process(r, payload, len, &out, &out_len, &why);
    S_CHECK(rc == MG_OK || rc == MG_ERR_MALFORMED || rc == MG_ERR_TOO_LARGE
            || (rc == MG_ERR_STALE && initiator));
    if (rc == MG_OK) {
        S_CHECK(out_len <= MG_RECON_FRAME_DEFAULT);
        /* A responder always answers, if only with an empty message. */
        if (!initiator)
            S_CHECK(out != NULL && out_len > 0);
        else
            S_CHECK(out != NULL || mg_recon_done(r));
    } else {
        S_CHECK(out == NULL && why.text[0]);
    }
    free(out);
    mg_recon_destroy(&r);
}

/* Encodes the decoded message again and checks the copy decodes to the
   same fields. */
static void s_reencode(const mg_msg_t *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = MG_OK;
    switch (m->type) {
    case MG_MSG_HELLO: {
        const char *eps[MG_ENDPOINTS_MAX];
        for (size_t i = 0; i < m->endpoint_count; i++)
            eps[i] = m->endpoints[i];
        rc = mg_msg_hello(m->key, eps, m->endpoint_count, m->name, &buf, &len);
        break;
    }
    case MG_MSG_RECON_Q:
    case MG_MSG_RECON_A:
        rc = mg_msg_recon(m->type, m->payload, m->payload_len, &buf, &len);
        break;
    case MG_MSG_RECORDS:
    case MG_MSG_WANT:
        rc = mg_msg_list(m->type, m->items, m->item_lens, m->count, &buf, &len);
        break;
    default:
        S_CHECK(!"decoded an unknown type");
    }
    if (rc != MG_OK)
        return; /* out of memory only */
    mg_msg_t b;
    mg_why_t why;
    S_CHECK(mg_msg_decode(buf, len, &b, &why) == MG_OK);
    S_CHECK(b.type == m->type);
    switch (m->type) {
    case MG_MSG_HELLO:
        S_CHECK(b.version == MG_PROTOCOL_VERSION);
        S_CHECK(memcmp(b.key, m->key, MG_KEY_BYTES) == 0);
        S_CHECK(b.endpoint_count == m->endpoint_count);
        for (size_t i = 0; i < b.endpoint_count; i++)
            S_CHECK(strcmp(b.endpoints[i], m->endpoints[i]) == 0);
        S_CHECK(strcmp(b.name, m->name) == 0);
        break;
    case MG_MSG_RECON_Q:
    case MG_MSG_RECON_A:
        S_CHECK(b.payload_len == m->payload_len
                && (m->payload_len == 0
                    || memcmp(b.payload, m->payload, m->payload_len) == 0));
        break;
    default:
        S_CHECK(b.count == m->count);
        for (size_t i = 0; i < b.count; i++)
            S_CHECK(b.item_lens[i] == m->item_lens[i]
                    && (m->item_lens[i] == 0
                        || memcmp(b.items[i], m->items[i], m->item_lens[i]) == 0));
        break;
    }
    mg_msg_clear(&b);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_msg_t m;
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_msg_decode(data, size, &m, &why);
    if (rc != MG_OK) {
        /* Refused with a reason, and nothing left allocated. */
        S_CHECK(rc == MG_ERR_MALFORMED || rc == MG_ERR_TOO_LARGE);
        S_CHECK(why.text[0] != '\0');
        S_CHECK(m.items == NULL && m.item_lens == NULL && m.count == 0);
        mg_msg_clear(&m);
        return 0;
    }
    S_CHECK(m.type >= MG_MSG_HELLO && m.type <= MG_MSG_WANT);
    S_CHECK(strcmp(mg_msg_name((int) m.type), "?") != 0);
    switch (m.type) {
    case MG_MSG_HELLO:
        S_CHECK(m.endpoint_count <= MG_ENDPOINTS_MAX);
        for (size_t i = 0; i < m.endpoint_count; i++) {
            size_t n = strlen(m.endpoints[i]);
            S_CHECK(n <= MG_ENDPOINT_MAX && mg_utf8_valid(m.endpoints[i], n));
        }
        S_CHECK(strlen(m.name) < sizeof m.name
                && mg_utf8_valid(m.name, strlen(m.name)));
        break;
    case MG_MSG_RECON_Q:
    case MG_MSG_RECON_A:
        S_CHECK(s_inside(m.payload, m.payload_len, data, size));
        s_recon(m.payload, m.payload_len, m.type == MG_MSG_RECON_A);
        break;
    case MG_MSG_RECORDS:
        for (size_t i = 0; i < m.count; i++) {
            S_CHECK(s_inside(m.items[i], m.item_lens[i], data, size));
            S_CHECK(m.item_lens[i] <= MG_RECORD_MAX);
            mg_record_t *rec = NULL;
            if (mg_record_decode(m.items[i], m.item_lens[i], &rec, &why) == MG_OK) {
                uint8_t vid[MG_VID_BYTES];
                mg_store_vid_of(rec, vid);
            }
            mg_record_destroy(&rec);
        }
        break;
    case MG_MSG_WANT:
        S_CHECK(m.count <= MG_WANT_MAX);
        for (size_t i = 0; i < m.count; i++)
            S_CHECK(m.item_lens[i] == MG_VID_BYTES
                    && s_inside(m.items[i], MG_VID_BYTES, data, size));
        break;
    }
    s_reencode(&m);
    mg_msg_clear(&m);
    return 0;
}
