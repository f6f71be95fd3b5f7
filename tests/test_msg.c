/*  test_msg.c - link messages (protocol/mg_msg.h): golden bytes of one
    message of each type, decode round trips, and hostile input. The hex
    vectors are repeated in docs/protocol.md; a change to either side of
    the codec that moves one byte fails here. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mg_msg.h"
#include "mg_test.h"

/* ------------------------------------------------------------------ */
/* Fixed inputs (docs/protocol.md, "Test vectors")                      */

static uint8_t s_key[MG_KEY_BYTES];          /* 01 02 .. 20 */
static const char *const s_endpoints[2] = {"tcp://192.0.2.1:7470",
                                           "tcp://[2001:db8::1]:7470"};
static const char *const s_name = "Médiathèque de Ruffec";
/* A real reconciliation message (version 2, session 7): the first
   message of an empty set (docs/reconciliation.md §9), and the reply of a
   responder with an empty set to an empty message: its set fingerprint,
   no range. */
static const uint8_t s_recon_q[] = {0x93, 0x02, 0x07, 0x93, 0xc0, 0xc4, 0x00,
                                    0x92, 0x00, 0xc4, 0x00};
static const uint8_t s_recon_a[] = {0x93, 0x02, 0x07, 0xc4, 0x10, 0x67, 0x3c, 0xbd,
                                    0x9a, 0x83, 0xcb, 0x67, 0x6e, 0xba, 0x3e, 0x0b,
                                    0xcd, 0x63, 0xa2, 0xb4, 0x14};
/* The link layer does not look inside records: two fixed fake ones. */
static const char *const s_records[2] = {"fake-record-1", "fake-record-2"};
static uint8_t s_vids[2][MG_VID_BYTES];      /* 11 x32, 22 x32 */

/* ------------------------------------------------------------------ */
/* Golden hex                                                           */

static const char *const s_golden_hello =
    "9501" "02" "c420" "0102030405060708090a0b0c0d0e0f10"
    "1112131415161718191a1b1c1d1e1f20"
    "92" "b4" "7463703a2f2f3139322e302e322e313a37343730"
    "b8" "7463703a2f2f5b323030313a6462383a3a315d3a37343730"
    "b7" "4dc3a96469617468c3a871756520646520527566666563";
static const char *const s_golden_recon_q = "9202" "c40b" "93020793c0c4009200c400";
static const char *const s_golden_recon_a =
    "9203" "c415" "930207c410673cbd9a83cb676eba3e0bcd63a2b414";
static const char *const s_golden_records =
    "9204" "92" "c40d" "66616b652d7265636f72642d31"
    "c40d" "66616b652d7265636f72642d32";
static const char *const s_golden_want =
    "9205" "92" "c420" "1111111111111111111111111111111111111111111111111111111111111111"
    "c420" "2222222222222222222222222222222222222222222222222222222222222222";

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static char *s_hex(const uint8_t *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *out = malloc(2 * n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

/* Decodes `hex` into a fresh buffer; *len gets its size. */
static uint8_t *s_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *out = malloc(n ? n : 1);
    for (size_t i = 0; out && i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t) v;
    }
    *len = n;
    return out;
}

/* CHECKs that `data` is exactly the golden hex. */
static void s_check_golden(const char *what, const uint8_t *data, size_t len,
                           const char *golden)
{
    char *hex = s_hex(data, len);
    if (!hex || strcmp(hex, golden) != 0)
        fprintf(stderr, "%s:\n  got      %s\n  expected %s\n", what,
                hex ? hex : "(null)", golden);
    CHECK_STR(hex, golden);
    free(hex);
}

/* Decodes and returns the code, clearing the message; never crashes. */
static int s_decode_rc(const uint8_t *data, size_t len)
{
    mg_msg_t msg;
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_msg_decode(data, len, &msg, &why);
    if (rc != MG_OK && !why.text[0]) {
        fprintf(stderr, "decode failed (%d) without an explanation\n", rc);
        rc = -999;
    }
    mg_msg_clear(&msg);
    return rc;
}

/* Packs with msgpack-c into a fresh buffer (hostile cases). */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} s_pack_t;

static void s_pack_init(s_pack_t *p)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static int s_pack_rc(s_pack_t *p)
{
    int rc = s_decode_rc((const uint8_t *) p->sb.data, p->sb.size);
    msgpack_sbuffer_destroy(&p->sb);
    return rc;
}

static void s_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* A HELLO with the given parts, for variations. */
static void s_pack_hello(s_pack_t *p, size_t extra, const char *name)
{
    s_pack_init(p);
    msgpack_pack_array(&p->pk, 5 + extra);
    msgpack_pack_uint8(&p->pk, MG_MSG_HELLO);
    msgpack_pack_uint8(&p->pk, 1);
    msgpack_pack_bin_with_body(&p->pk, s_key, sizeof s_key);
    msgpack_pack_array(&p->pk, 1);
    s_pack_str(&p->pk, s_endpoints[0]);
    msgpack_pack_str_with_body(&p->pk, name, strlen(name));
}

/* ------------------------------------------------------------------ */
/* Golden vectors and round trips                                       */

static void s_check_truncations(const char *what, const uint8_t *data, size_t len)
{
    /* Every strict prefix is refused, and so is one byte more. */
    int bad = 0;
    for (size_t k = 0; k < len; k++) {
        uint8_t *copy = malloc(k ? k : 1);  /* exact size: ASan sees overreads */
        memcpy(copy, data, k);
        if (s_decode_rc(copy, k) == MG_OK)
            bad++;
        free(copy);
    }
    if (bad)
        fprintf(stderr, "%s: %d truncations accepted\n", what, bad);
    CHECK(bad == 0);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, data, len);
    longer[len] = 0xc0;
    CHECK_RC(s_decode_rc(longer, len + 1), MG_ERR_MALFORMED);
    free(longer);
}

static void test_golden(void)
{
    uint8_t *data = NULL;
    size_t len = 0;
    mg_msg_t msg;
    mg_why_t why;

    /* HELLO */
    CHECK_RC(mg_msg_hello(s_key, s_endpoints, 2, s_name, &data, &len), MG_OK);
    s_check_golden("HELLO", data, len, s_golden_hello);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.type == MG_MSG_HELLO);
    CHECK(msg.version == MG_PROTOCOL_VERSION);
    CHECK(memcmp(msg.key, s_key, sizeof s_key) == 0);
    CHECK(msg.endpoint_count == 2);
    CHECK_STR(msg.endpoints[0], s_endpoints[0]);
    CHECK_STR(msg.endpoints[1], s_endpoints[1]);
    CHECK_STR(msg.name, s_name);
    mg_msg_clear(&msg);
    s_check_truncations("HELLO", data, len);
    free(data);

    /* RECON_Q and RECON_A */
    CHECK_RC(mg_msg_recon(MG_MSG_RECON_Q, s_recon_q, sizeof s_recon_q, &data, &len), MG_OK);
    s_check_golden("RECON_Q", data, len, s_golden_recon_q);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.type == MG_MSG_RECON_Q);
    CHECK(msg.payload_len == sizeof s_recon_q);
    CHECK(msg.payload && memcmp(msg.payload, s_recon_q, sizeof s_recon_q) == 0);
    /* zero-copy: the payload points into the message bytes */
    CHECK(msg.payload >= data && msg.payload + msg.payload_len <= data + len);
    mg_msg_clear(&msg);
    s_check_truncations("RECON_Q", data, len);
    free(data);

    CHECK_RC(mg_msg_recon(MG_MSG_RECON_A, s_recon_a, sizeof s_recon_a, &data, &len), MG_OK);
    s_check_golden("RECON_A", data, len, s_golden_recon_a);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.type == MG_MSG_RECON_A);
    CHECK(msg.payload_len == sizeof s_recon_a);
    CHECK(msg.payload && memcmp(msg.payload, s_recon_a, sizeof s_recon_a) == 0);
    mg_msg_clear(&msg);
    s_check_truncations("RECON_A", data, len);
    free(data);

    /* RECORDS */
    const uint8_t *items[2] = {(const uint8_t *) s_records[0], (const uint8_t *) s_records[1]};
    size_t lens[2] = {strlen(s_records[0]), strlen(s_records[1])};
    CHECK_RC(mg_msg_list(MG_MSG_RECORDS, items, lens, 2, &data, &len), MG_OK);
    s_check_golden("RECORDS", data, len, s_golden_records);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.type == MG_MSG_RECORDS);
    CHECK(msg.count == 2);
    for (size_t i = 0; i < 2 && msg.count == 2; i++) {
        CHECK(msg.item_lens[i] == lens[i]);
        CHECK(memcmp(msg.items[i], items[i], lens[i]) == 0);
    }
    mg_msg_clear(&msg);
    s_check_truncations("RECORDS", data, len);
    free(data);

    /* WANT */
    const uint8_t *vids[2] = {s_vids[0], s_vids[1]};
    size_t vlens[2] = {MG_VID_BYTES, MG_VID_BYTES};
    CHECK_RC(mg_msg_list(MG_MSG_WANT, vids, vlens, 2, &data, &len), MG_OK);
    s_check_golden("WANT", data, len, s_golden_want);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.type == MG_MSG_WANT);
    CHECK(msg.count == 2);
    for (size_t i = 0; i < 2 && msg.count == 2; i++) {
        CHECK(msg.item_lens[i] == MG_VID_BYTES);
        CHECK(memcmp(msg.items[i], s_vids[i], MG_VID_BYTES) == 0);
    }
    mg_msg_clear(&msg);
    s_check_truncations("WANT", data, len);
    free(data);

    /* The golden hex decodes on its own (what a second implementation
       sends is what it is tested against). */
    const char *goldens[] = {s_golden_hello, s_golden_recon_q, s_golden_recon_a,
                             s_golden_records, s_golden_want};
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
        uint8_t *bytes = s_unhex(goldens[i], &len);
        CHECK_RC(s_decode_rc(bytes, len), MG_OK);
        free(bytes);
    }
}

static void test_round_trips(void)
{
    uint8_t *data = NULL;
    size_t len = 0;
    mg_msg_t msg;
    mg_why_t why;

    /* No endpoints (a node that only dials out), empty name. */
    CHECK_RC(mg_msg_hello(s_key, NULL, 0, "", &data, &len), MG_OK);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.endpoint_count == 0);
    CHECK_STR(msg.name, "");
    mg_msg_clear(&msg);
    free(data);

    /* The encoder keeps at most MG_ENDPOINTS_MAX endpoints. */
    const char *many[MG_ENDPOINTS_MAX + 3];
    for (size_t i = 0; i < MG_ENDPOINTS_MAX + 3; i++)
        many[i] = s_endpoints[i % 2];
    CHECK_RC(mg_msg_hello(s_key, many, MG_ENDPOINTS_MAX + 3, s_name, &data, &len), MG_OK);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.endpoint_count == MG_ENDPOINTS_MAX);
    mg_msg_clear(&msg);
    free(data);

    /* Longest name and endpoint that fit: 255 bytes each. */
    char name255[256], ep255[256];
    memset(name255, 'n', 255);
    name255[255] = '\0';
    memcpy(ep255, "tcp://", 6);
    memset(ep255 + 6, 'h', 249);
    ep255[255] = '\0';
    const char *one[1] = {ep255};
    CHECK_RC(mg_msg_hello(s_key, one, 1, name255, &data, &len), MG_OK);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK_STR(msg.name, name255);
    CHECK_STR(msg.endpoints[0], ep255);
    mg_msg_clear(&msg);
    free(data);

    /* Empty lists and payloads are well-formed. */
    CHECK_RC(mg_msg_list(MG_MSG_RECORDS, NULL, NULL, 0, &data, &len), MG_OK);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.type == MG_MSG_RECORDS && msg.count == 0);
    mg_msg_clear(&msg);
    free(data);
    CHECK_RC(mg_msg_list(MG_MSG_WANT, NULL, NULL, 0, &data, &len), MG_OK);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.type == MG_MSG_WANT && msg.count == 0);
    mg_msg_clear(&msg);
    free(data);
    CHECK_RC(mg_msg_recon(MG_MSG_RECON_A, NULL, 0, &data, &len), MG_OK);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.type == MG_MSG_RECON_A && msg.payload_len == 0);
    mg_msg_clear(&msg);
    free(data);

    /* Limits exactly: MG_WANT_MAX vids, a record of MG_RECORD_MAX bytes. */
    const uint8_t **vids = calloc(MG_WANT_MAX + 1, sizeof *vids);
    size_t *vlens = calloc(MG_WANT_MAX + 1, sizeof *vlens);
    for (size_t i = 0; vids && vlens && i <= MG_WANT_MAX; i++) {
        vids[i] = s_vids[i % 2];
        vlens[i] = MG_VID_BYTES;
    }
    CHECK_RC(mg_msg_list(MG_MSG_WANT, vids, vlens, MG_WANT_MAX, &data, &len), MG_OK);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.count == MG_WANT_MAX);
    mg_msg_clear(&msg);
    free(data);
    /* One more is refused as too large, and explained. */
    CHECK_RC(mg_msg_list(MG_MSG_WANT, vids, vlens, MG_WANT_MAX + 1, &data, &len), MG_OK);
    CHECK_RC(s_decode_rc(data, len), MG_ERR_TOO_LARGE);
    free(data);
    free(vids);
    free(vlens);

    uint8_t *big = calloc(1, MG_RECORD_MAX + 1);
    const uint8_t *bigp[1] = {big};
    size_t biglen[1] = {MG_RECORD_MAX};
    CHECK_RC(mg_msg_list(MG_MSG_RECORDS, bigp, biglen, 1, &data, &len), MG_OK);
    CHECK_RC(mg_msg_decode(data, len, &msg, &why), MG_OK);
    CHECK(msg.count == 1 && msg.item_lens[0] == MG_RECORD_MAX);
    mg_msg_clear(&msg);
    free(data);
    biglen[0] = MG_RECORD_MAX + 1;
    CHECK_RC(mg_msg_list(MG_MSG_RECORDS, bigp, biglen, 1, &data, &len), MG_OK);
    CHECK_RC(s_decode_rc(data, len), MG_ERR_MALFORMED);
    free(data);
    free(big);

    /* Names */
    CHECK_STR(mg_msg_name(MG_MSG_HELLO), "HELLO");
    CHECK_STR(mg_msg_name(MG_MSG_RECON_Q), "RECON_Q");
    CHECK_STR(mg_msg_name(MG_MSG_RECON_A), "RECON_A");
    CHECK_STR(mg_msg_name(MG_MSG_RECORDS), "RECORDS");
    CHECK_STR(mg_msg_name(MG_MSG_WANT), "WANT");
    CHECK_STR(mg_msg_name(0), "?");
    CHECK_STR(mg_msg_name(6), "?");
}

/* ------------------------------------------------------------------ */
/* Hostile input                                                        */

static void test_hostile(void)
{
    s_pack_t p;

    /* Not a message at all. */
    CHECK_RC(s_decode_rc((const uint8_t *) "", 0), MG_ERR_MALFORMED);
    static const uint8_t nil[] = {0xc0}, empty_array[] = {0x90}, map[] = {0x81, 0x01, 0x01},
                         unused[] = {0xc1}, two_values[] = {0x91, 0x01, 0x91, 0x01};
    CHECK_RC(s_decode_rc(nil, sizeof nil), MG_ERR_MALFORMED);
    CHECK_RC(s_decode_rc(empty_array, sizeof empty_array), MG_ERR_MALFORMED);
    CHECK_RC(s_decode_rc(map, sizeof map), MG_ERR_MALFORMED);
    CHECK_RC(s_decode_rc(unused, sizeof unused), MG_ERR_MALFORMED);
    CHECK_RC(s_decode_rc(two_values, sizeof two_values), MG_ERR_MALFORMED);
    /* A declared count far beyond the bytes (array32 of 2^32-1). */
    static const uint8_t huge_count[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x04};
    CHECK_RC(s_decode_rc(huge_count, sizeof huge_count), MG_ERR_MALFORMED);
    /* Nesting deeper than MG_WIRE_DEPTH_MAX inside an otherwise valid
       RECORDS: [4, [[[[...]]]]]. */
    uint8_t deep[64];
    size_t dn = 0;
    deep[dn++] = 0x92;
    deep[dn++] = 0x04;
    for (int i = 0; i < 40; i++)
        deep[dn++] = 0x91;
    deep[dn++] = 0xc0;
    CHECK_RC(s_decode_rc(deep, dn), MG_ERR_MALFORMED);

    /* Over MG_MSG_MAX, whatever the content. */
    uint8_t *huge = calloc(1, MG_MSG_MAX + 1);
    CHECK_RC(s_decode_rc(huge, MG_MSG_MAX + 1), MG_ERR_TOO_LARGE);
    free(huge);

    /* Type: unknown, zero, negative, not an integer. */
    static const uint8_t type0[] = {0x91, 0x00}, type6[] = {0x92, 0x06, 0xc0},
                         type255[] = {0x91, 0xcc, 0xff}, typeneg[] = {0x91, 0xff},
                         typestr[] = {0x91, 0xa1, 0x31}, typebig[] = {0x91, 0xcf, 0xff, 0xff,
                                                                     0xff, 0xff, 0xff, 0xff,
                                                                     0xff, 0xff};
    CHECK_RC(s_decode_rc(type0, sizeof type0), MG_ERR_MALFORMED);
    CHECK_RC(s_decode_rc(type6, sizeof type6), MG_ERR_MALFORMED);
    CHECK_RC(s_decode_rc(type255, sizeof type255), MG_ERR_MALFORMED);
    CHECK_RC(s_decode_rc(typeneg, sizeof typeneg), MG_ERR_MALFORMED);
    CHECK_RC(s_decode_rc(typestr, sizeof typestr), MG_ERR_MALFORMED);
    CHECK_RC(s_decode_rc(typebig, sizeof typebig), MG_ERR_MALFORMED);
    /* A non-shortest encoding of a known type is still that type. */
    static const uint8_t want16[] = {0x92, 0xcd, 0x00, 0x05, 0x90};
    CHECK_RC(s_decode_rc(want16, sizeof want16), MG_OK);

    /* HELLO: extra trailing elements are accepted (a later version may
       add fields); fewer than 5 are not. */
    s_pack_hello(&p, 2, s_name);
    s_pack_str(&p.pk, "a field of version 2");
    msgpack_pack_map(&p.pk, 1);
    s_pack_str(&p.pk, "k");
    msgpack_pack_uint8(&p.pk, 7);
    CHECK_RC(s_pack_rc(&p), MG_OK);
    s_pack_init(&p);
    msgpack_pack_array(&p.pk, 4);
    msgpack_pack_uint8(&p.pk, MG_MSG_HELLO);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_bin_with_body(&p.pk, s_key, sizeof s_key);
    msgpack_pack_array(&p.pk, 0);
    CHECK_RC(s_pack_rc(&p), MG_ERR_MALFORMED);

    /* HELLO: a higher version decodes (the node decides what to do with
       it); a version beyond 32 bits is clamped, not wrapped. */
    mg_msg_t msg;
    mg_why_t why;
    s_pack_init(&p);
    msgpack_pack_array(&p.pk, 5);
    msgpack_pack_uint8(&p.pk, MG_MSG_HELLO);
    msgpack_pack_uint64(&p.pk, UINT64_MAX);
    msgpack_pack_bin_with_body(&p.pk, s_key, sizeof s_key);
    msgpack_pack_array(&p.pk, 0);
    s_pack_str(&p.pk, "x");
    CHECK_RC(mg_msg_decode((const uint8_t *) p.sb.data, p.sb.size, &msg, &why), MG_OK);
    CHECK(msg.version == UINT32_MAX);
    mg_msg_clear(&msg);
    msgpack_sbuffer_destroy(&p.sb);

    /* HELLO: wrong types, one field at a time. */
    uint8_t key33[33] = {0};
    memcpy(key33, s_key, sizeof s_key);
    for (int field = 1; field <= 4; field++) {
        for (int variant = 0; variant < 3; variant++) {
            s_pack_init(&p);
            msgpack_pack_array(&p.pk, 5);
            msgpack_pack_uint8(&p.pk, MG_MSG_HELLO);
            if (field == 1) {
                if (variant == 0) s_pack_str(&p.pk, "1");
                else if (variant == 1) msgpack_pack_int8(&p.pk, -1);
                else msgpack_pack_nil(&p.pk);
            } else {
                msgpack_pack_uint8(&p.pk, 1);
            }
            if (field == 2) {
                if (variant == 0)
                    msgpack_pack_str_with_body(&p.pk, s_key, sizeof s_key);
                else
                    msgpack_pack_bin_with_body(&p.pk, key33, variant == 1 ? 31 : 33);
            } else {
                msgpack_pack_bin_with_body(&p.pk, s_key, sizeof s_key);
            }
            if (field == 3) {
                if (variant == 0) {
                    s_pack_str(&p.pk, s_endpoints[0]);
                } else if (variant == 1) {
                    msgpack_pack_array(&p.pk, 1);
                    msgpack_pack_bin_with_body(&p.pk, s_endpoints[0], strlen(s_endpoints[0]));
                } else {
                    msgpack_pack_array(&p.pk, MG_ENDPOINTS_MAX + 1);
                    for (int i = 0; i <= MG_ENDPOINTS_MAX; i++)
                        s_pack_str(&p.pk, s_endpoints[0]);
                }
            } else {
                msgpack_pack_array(&p.pk, 1);
                s_pack_str(&p.pk, s_endpoints[0]);
            }
            if (field == 4) {
                if (variant == 0) msgpack_pack_bin_with_body(&p.pk, "x", 1);
                else if (variant == 1) msgpack_pack_uint8(&p.pk, 1);
                else msgpack_pack_nil(&p.pk);
            } else {
                s_pack_str(&p.pk, s_name);
            }
            int rc = s_pack_rc(&p);
            if (rc != MG_ERR_MALFORMED)
                fprintf(stderr, "HELLO field %d variant %d: rc %d\n", field, variant, rc);
            CHECK_RC(rc, MG_ERR_MALFORMED);
        }
    }

    /* HELLO: invalid UTF-8 in the name (bad continuation, overlong,
       surrogate, NUL) or in an endpoint; names and endpoints of 256
       bytes. */
    const char *bad_utf8[] = {"caf\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xff"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        s_pack_hello(&p, 0, bad_utf8[i]);
        CHECK_RC(s_pack_rc(&p), MG_ERR_MALFORMED);
    }
    s_pack_init(&p);
    msgpack_pack_array(&p.pk, 5);
    msgpack_pack_uint8(&p.pk, MG_MSG_HELLO);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_bin_with_body(&p.pk, s_key, sizeof s_key);
    msgpack_pack_array(&p.pk, 0);
    msgpack_pack_str_with_body(&p.pk, "a\0b", 3);
    CHECK_RC(s_pack_rc(&p), MG_ERR_MALFORMED);
    s_pack_init(&p);
    msgpack_pack_array(&p.pk, 5);
    msgpack_pack_uint8(&p.pk, MG_MSG_HELLO);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_bin_with_body(&p.pk, s_key, sizeof s_key);
    msgpack_pack_array(&p.pk, 1);
    s_pack_str(&p.pk, "tcp://\xc3\x28:7470");
    s_pack_str(&p.pk, s_name);
    CHECK_RC(s_pack_rc(&p), MG_ERR_MALFORMED);
    char long256[257];
    memset(long256, 'n', 256);
    long256[256] = '\0';
    s_pack_hello(&p, 0, long256);
    CHECK_RC(s_pack_rc(&p), MG_ERR_MALFORMED);
    s_pack_init(&p);
    msgpack_pack_array(&p.pk, 5);
    msgpack_pack_uint8(&p.pk, MG_MSG_HELLO);
    msgpack_pack_uint8(&p.pk, 1);
    msgpack_pack_bin_with_body(&p.pk, s_key, sizeof s_key);
    msgpack_pack_array(&p.pk, 1);
    s_pack_str(&p.pk, long256);
    s_pack_str(&p.pk, s_name);
    CHECK_RC(s_pack_rc(&p), MG_ERR_MALFORMED);

    /* RECON_Q / RECON_A: exactly [type, bin]. */
    for (int type = MG_MSG_RECON_Q; type <= MG_MSG_RECON_A; type++) {
        for (int variant = 0; variant < 4; variant++) {
            s_pack_init(&p);
            msgpack_pack_array(&p.pk, variant == 3 ? 3 : (variant == 2 ? 1 : 2));
            msgpack_pack_uint8(&p.pk, (uint8_t) type);
            if (variant == 0)
                msgpack_pack_str_with_body(&p.pk, s_recon_a, sizeof s_recon_a);
            else if (variant == 1)
                msgpack_pack_array(&p.pk, 0);
            else if (variant == 3) {
                msgpack_pack_bin_with_body(&p.pk, s_recon_a, sizeof s_recon_a);
                msgpack_pack_nil(&p.pk);  /* no extra elements here */
            }
            CHECK_RC(s_pack_rc(&p), MG_ERR_MALFORMED);
        }
    }

    /* RECORDS / WANT: exactly [type, [bin...]] with bins of the right
       size. */
    for (int type = MG_MSG_RECORDS; type <= MG_MSG_WANT; type++) {
        for (int variant = 0; variant < 5; variant++) {
            s_pack_init(&p);
            msgpack_pack_array(&p.pk, variant == 4 ? 3 : 2);
            msgpack_pack_uint8(&p.pk, (uint8_t) type);
            if (variant == 0) {
                msgpack_pack_bin_with_body(&p.pk, s_vids[0], MG_VID_BYTES);
            } else if (variant == 1) {
                msgpack_pack_array(&p.pk, 2);
                msgpack_pack_bin_with_body(&p.pk, s_vids[0], MG_VID_BYTES);
                msgpack_pack_str_with_body(&p.pk, s_vids[1], MG_VID_BYTES);
            } else if (variant == 2) {
                msgpack_pack_array(&p.pk, 1);
                msgpack_pack_nil(&p.pk);
            } else if (variant == 3) {
                msgpack_pack_map(&p.pk, 0);
            } else {
                msgpack_pack_array(&p.pk, 0);
                msgpack_pack_nil(&p.pk);
            }
            CHECK_RC(s_pack_rc(&p), MG_ERR_MALFORMED);
        }
    }
    /* WANT: a vid of 31 or 33 bytes. */
    for (size_t n = 31; n <= 33; n += 2) {
        uint8_t vid[33] = {0};
        s_pack_init(&p);
        msgpack_pack_array(&p.pk, 2);
        msgpack_pack_uint8(&p.pk, MG_MSG_WANT);
        msgpack_pack_array(&p.pk, 1);
        msgpack_pack_bin_with_body(&p.pk, vid, n);
        CHECK_RC(s_pack_rc(&p), MG_ERR_MALFORMED);
    }
    /* RECORDS items of any size up to MG_RECORD_MAX are the link's
       business only as bytes: a 1-byte item decodes (verification of
       the record itself happens later, one by one). */
    s_pack_init(&p);
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_uint8(&p.pk, MG_MSG_RECORDS);
    msgpack_pack_array(&p.pk, 1);
    msgpack_pack_bin_with_body(&p.pk, "x", 1);
    CHECK_RC(s_pack_rc(&p), MG_OK);

    /* Every single-byte change of every golden message either decodes
       or is refused with an explanation: never a crash (ASan run). */
    const char *goldens[] = {s_golden_hello, s_golden_recon_q, s_golden_recon_a,
                             s_golden_records, s_golden_want};
    int crashes = 0;
    for (size_t g = 0; g < sizeof goldens / sizeof goldens[0]; g++) {
        size_t len;
        uint8_t *bytes = s_unhex(goldens[g], &len);
        static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0x90, 0xc0, 0xc1, 0xc4,
                                         0xd9, 0xdc, 0xdd, 0xff};
        for (size_t i = 0; bytes && i < len; i++) {
            uint8_t keep = bytes[i];
            for (size_t v = 0; v < sizeof values; v++) {
                bytes[i] = values[v];
                if (s_decode_rc(bytes, len) == -999)
                    crashes++;
            }
            bytes[i] = keep;
        }
        free(bytes);
    }
    CHECK(crashes == 0);

    /* mg_msg_clear is safe on a zeroed and on a failed message. */
    memset(&msg, 0, sizeof msg);
    mg_msg_clear(&msg);
    CHECK_RC(mg_msg_decode(type6, sizeof type6, &msg, NULL), MG_ERR_MALFORMED);
    mg_msg_clear(&msg);
    CHECK(msg.items == NULL && msg.count == 0);
}

int main(void)
{
    for (int i = 0; i < MG_KEY_BYTES; i++)
        s_key[i] = (uint8_t) (i + 1);
    memset(s_vids[0], 0x11, MG_VID_BYTES);
    memset(s_vids[1], 0x22, MG_VID_BYTES);
    test_golden();
    test_round_trips();
    test_hostile();
    return mg_test_done("test_msg");
}
