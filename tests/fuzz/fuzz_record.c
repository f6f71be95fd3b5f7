/*  fuzz_record.c - libFuzzer target: one signed record, as it arrives from
    a peer or a file.

    Input: the bytes of one record (docs/protocol.md §2). They go through
    everything a node does with such bytes:
      - mg_record_decode (size, structure, UTF-8, signature, body rules),
        and the same bytes as if read back from the store
        (mg_record_decode_trusted, which skips only the signature, so that
        mutated payloads reach the body rules a signature would stop);
      - on a decoded record: the accessors, the body rules again, the
        reconciliation bucket, the body re-encoded and decoded back;
      - the store: apply inside a transaction that is then rolled back,
        read back by (author, rid), so every run starts from the same
        empty in-memory store;
      - the input read as a bare body (mg_body_decode) and as any msgpack
        value (mg_wire_scan).
    A broken invariant aborts with its line: libFuzzer reports a crash.

    Built as a fuzzer by tests/fuzz/CMakeLists.txt; tests/test_hostile.c
    compiles this same file with LLVMFuzzerTestOneInput renamed and replays
    the committed corpus through it in every ordinary ctest run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_body.h"
#include "mg_offer.h"
#include "mg_record.h"
#include "mg_store.h"
#include "mg_text.h"
#include "mg_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_CHECK(cond)                                                      \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,     \
                    __LINE__, #cond);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* One store for the whole run: opening one runs the migrations (about a
   millisecond), applying and rolling back costs tens of microseconds. */
static mg_store_t *s_store;

static mg_store_t *s_store_get(void)
{
    if (!s_store) {
        mg_why_t why;
        if (mg_store_open(":memory:", &s_store, &why) != MG_OK) {
            fprintf(stderr, "fuzz_record: store: %s\n", why.text);
            abort();
        }
    }
    return s_store;
}

/* The body survives an encode/decode round trip unchanged, and its
   encoding is canonical (encoding the decoded copy gives the same bytes). */
static void s_check_body_roundtrip(const mg_body_t *body)
{
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    if (mg_body_encode(body, &enc, &enc_len) != MG_OK)
        return; /* out of memory only */
    mg_body_t *back = NULL;
    mg_why_t why;
    S_CHECK(mg_body_decode(enc, enc_len, &back, &why) == MG_OK);
    S_CHECK(mg_body_equal(body, back));
    uint8_t *enc2 = NULL;
    size_t enc2_len = 0;
    if (mg_body_encode(back, &enc2, &enc2_len) == MG_OK) {
        S_CHECK(enc2_len == enc_len && memcmp(enc, enc2, enc_len) == 0);
        free(enc2);
    }
    /* Every field reads back through the typed getters. */
    for (size_t i = 0; i < mg_body_count(body); i++) {
        const char *key = mg_body_key_at(body, i);
        S_CHECK(key && mg_body_find(body, key) == (int) i);
        switch (mg_body_type_at(body, i)) {
        case MG_VAL_STR:
            S_CHECK(mg_body_str(body, key) != NULL);
            break;
        case MG_VAL_LIST: {
            const char *const *items = NULL;
            size_t n = mg_body_list(body, key, &items);
            for (size_t k = 0; k < n; k++)
                S_CHECK(items[k] && mg_utf8_valid(items[k], strlen(items[k])));
            break;
        }
        case MG_VAL_NUM: {
            double v;
            S_CHECK(mg_body_num(body, key, &v) == 0);
            break;
        }
        case MG_VAL_RAW: {
            size_t len = 0;
            const uint8_t *raw = mg_body_raw(body, key, &len);
            S_CHECK(raw && mg_wire_scan(raw, len, NULL) == MG_OK);
            break;
        }
        default:
            S_CHECK(!"unknown value type");
        }
    }
    mg_body_destroy(&back);
    free(enc);
}

/* What must hold of any record that decoded, verified or not. */
static void s_check_record(const mg_record_t *rec, const uint8_t *data,
                           size_t size)
{
    size_t len = 0;
    const uint8_t *bytes = mg_record_bytes(rec, &len);
    /* Kept exactly as received: a node forwards these bytes. */
    S_CHECK(len == size && memcmp(bytes, data, size) == 0);
    S_CHECK(mg_record_version(rec) == MG_RECORD_VERSION);
    const char *kind = mg_record_kind(rec);
    S_CHECK(kind && kind[0] && strlen(kind) <= MG_KIND_MAX);
    S_CHECK(mg_rid_valid(mg_record_rid(rec)));
    S_CHECK(mg_record_counter(rec) >= 1
            && mg_record_counter(rec) <= (uint64_t) INT64_MAX);
    const mg_body_t *body = mg_record_body(rec);
    S_CHECK(body != NULL);
    mg_why_t why;
    if (mg_record_deleted(rec)) {
        S_CHECK(mg_body_count(body) == 0);
        S_CHECK(mg_record_bucket(rec) == 0);
    } else {
        /* Decoding applied the lenient rules; they hold again. */
        S_CHECK(mg_record_validate_body(kind, body, false, &why) == MG_OK);
        (void) mg_record_validate_body(kind, body, true, &why);
        (void) mg_record_bucket(rec);
    }
    s_check_body_roundtrip(body);
}

/* Applies the record inside a transaction, reads it back, rolls back. */
static void s_check_store(const mg_record_t *rec, bool verified,
                          const uint8_t *data, size_t size)
{
    mg_store_t *store = s_store_get();
    mg_why_t why;
    if (mg_store_begin(store, &why) != MG_OK)
        abort();
    mg_apply_t outcome = 0;
    int rc = verified ? mg_store_apply(store, data, size, &outcome, &why)
                      : mg_store_apply_record(store, rec, &outcome, &why);
    /* The store is empty at every run: the first version is always new. */
    S_CHECK(rc == MG_OK && outcome == MG_APPLY_NEW);
    mg_record_t *back = NULL;
    S_CHECK(mg_store_get(store, mg_record_author(rec), mg_record_rid(rec),
                         &back, &why) == MG_OK);
    size_t len = 0;
    const uint8_t *bytes = mg_record_bytes(back, &len);
    S_CHECK(len == size && memcmp(bytes, data, size) == 0);
    mg_record_destroy(&back);
    /* Applying the same bytes again changes nothing. */
    S_CHECK(mg_store_apply_record(store, rec, &outcome, &why) == MG_OK
            && outcome == MG_APPLY_KEPT);
    S_CHECK(mg_store_rollback(store) == MG_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_why_t why;
    mg_record_t *rec = NULL, *trusted = NULL;
    int rc = mg_record_decode(data, size, &rec, &why);
    int rc_trusted = mg_record_decode_trusted(data, size, &trusted, &why);
    S_CHECK((rc == MG_OK) == (rec != NULL));
    S_CHECK((rc_trusted == MG_OK) == (trusted != NULL));
    /* The signature is the only check the trusted path skips. */
    if (rc == MG_OK)
        S_CHECK(rc_trusted == MG_OK);
    if (rc_trusted == MG_OK && rc != MG_OK)
        S_CHECK(rc == MG_ERR_SIGNATURE);
    if (rc != MG_OK)
        S_CHECK(rc < 0 && why.text[0] != '\0');
    if (trusted) {
        s_check_record(trusted, data, size);
        s_check_store(trusted, rec != NULL, data, size);
    }
    if (rec) {
        s_check_record(rec, data, size);
        S_CHECK(memcmp(mg_record_author(rec), mg_record_author(trusted),
                       MG_KEY_BYTES) == 0);
        S_CHECK(mg_record_counter(rec) == mg_record_counter(trusted));
        S_CHECK(mg_body_equal(mg_record_body(rec), mg_record_body(trusted)));
    }
    mg_record_destroy(&rec);
    mg_record_destroy(&trusted);

    /* The same bytes as a bare body, and as any msgpack value. */
    mg_body_t *body = NULL;
    if (mg_body_decode(data, size, &body, &why) == MG_OK) {
        S_CHECK(mg_wire_scan(data, size, NULL) == MG_OK);
        s_check_body_roundtrip(body);
        (void) mg_offer_validate(body, &why);
        (void) mg_profile_validate_lenient(body, &why);
    }
    mg_body_destroy(&body);
    (void) mg_wire_scan(data, size, NULL);
    return 0;
}
