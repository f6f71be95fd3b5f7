/*  test_protocol.c - records, bodies, offer rules, golden vectors. */
#include <jansson.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "mg_body.h"
#include "mg_offer.h"
#include "mg_record.h"
#include "mg_text.h"
#include "mg_test.h"
#include "mg_wire.h"

/* A fixed identity, so signatures (deterministic in Ed25519) are fixed. */
static void s_golden_identity(mg_identity_t *id)
{
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t) (i + 1);
    mg_identity_from_seed(id, seed);
}

static mg_body_t *s_offer_body(void)
{
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "id", "structure-1");
    mg_body_set_str(b, "pivot", "43493312300029");
    mg_body_set_str(b, "nom", "Anonymal");
    mg_body_set_str(b, "commune", "Reims");
    mg_body_set_str(b, "code_postal", "51100");
    mg_body_set_str(b, "adresse", "12 BIS RUE DE LECLERCQ");
    mg_body_set_str(b, "date_maj", "2024-04-02");
    mg_body_set_num(b, "latitude", 43.52609);
    mg_body_set_num(b, "longitude", 5.41423);
    mg_body_set_list_split(b, "services",
                           "Maîtrise des outils numériques du quotidien|Loisirs et créations numériques",
                           '|');
    return b;
}

static char *s_hex(const uint8_t *b, size_t n)
{
    char *h = malloc(2 * n + 1);
    mg_hex_encode(b, n, h);
    return h;
}

/* Golden vectors: the exact bytes of two records signed by the fixed
   identity. If these change, the wire format changed: every deployed
   node would reject the new bytes or sign differently. */
static const char *s_golden_offer_hex =
#include "golden_offer.inc"
    ;
static const char *s_golden_tombstone_hex =
#include "golden_tombstone.inc"
    ;

static void test_golden(void)
{
    mg_identity_t id;
    s_golden_identity(&id);
    mg_body_t *body = s_offer_body();
    mg_record_t *rec = NULL;
    mg_why_t why;
    CHECK_RC(mg_record_sign(&id, "offer", "golden-1", 1, 1700000000000LL, false,
                            body, &rec, &why), MG_OK);
    size_t len;
    const uint8_t *bytes = mg_record_bytes(rec, &len);
    char *hex = s_hex(bytes, len);
    if (getenv("MG_PRINT_GOLDEN"))
        printf("offer: %s\n", hex);
    CHECK_STR(hex, s_golden_offer_hex);
    free(hex);
    mg_record_destroy(&rec);

    CHECK_RC(mg_record_sign(&id, "offer", "golden-1", 2, 1700000001000LL, true,
                            NULL, &rec, &why), MG_OK);
    bytes = mg_record_bytes(rec, &len);
    hex = s_hex(bytes, len);
    if (getenv("MG_PRINT_GOLDEN"))
        printf("tombstone: %s\n", hex);
    CHECK_STR(hex, s_golden_tombstone_hex);
    free(hex);
    mg_record_destroy(&rec);

    /* Decoding the golden bytes gives back every envelope field. */
    size_t glen = strlen(s_golden_offer_hex) / 2;
    uint8_t *g = malloc(glen);
    CHECK(mg_hex_decode(s_golden_offer_hex, g, glen) == 0);
    CHECK_RC(mg_record_decode(g, glen, &rec, &why), MG_OK);
    if (rec) {
        CHECK_STR(mg_record_kind(rec), "offer");
        CHECK_STR(mg_record_rid(rec), "golden-1");
        CHECK(mg_record_counter(rec) == 1);
        CHECK(mg_record_created(rec) == 1700000000000LL);
        CHECK(!mg_record_deleted(rec));
        CHECK(memcmp(mg_record_author(rec), id.pk, 32) == 0);
        CHECK(mg_body_equal(mg_record_body(rec), body));
        size_t blen;
        const uint8_t *b2 = mg_record_bytes(rec, &blen);
        CHECK(blen == glen && memcmp(b2, g, glen) == 0);
    }
    mg_record_destroy(&rec);
    free(g);
    mg_body_destroy(&body);
}

/* Flipping any single byte of a signed record must make it fail. */
static void test_tamper(void)
{
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_body_t *body = s_offer_body();
    mg_record_t *rec = NULL;
    CHECK_RC(mg_record_sign(&id, "offer", "abc", 3, 1, false, body, &rec, NULL),
             MG_OK);
    size_t len;
    const uint8_t *bytes = mg_record_bytes(rec, &len);
    uint8_t *copy = malloc(len);
    int accepted = 0, sig_rejects = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(copy, bytes, len);
            copy[i] ^= (uint8_t) (1u << bit);
            mg_record_t *r = NULL;
            int rc = mg_record_decode(copy, len, &r, NULL);
            if (rc == MG_OK)
                accepted++;
            if (rc == MG_ERR_SIGNATURE)
                sig_rejects++;
            mg_record_destroy(&r);
        }
    }
    CHECK(accepted == 0);
    CHECK(sig_rejects > 0);
    /* Truncations at every length are rejected too. */
    int trunc_ok = 0;
    for (size_t n = 0; n < len; n++) {
        mg_record_t *r = NULL;
        if (mg_record_decode(bytes, n, &r, NULL) == MG_OK)
            trunc_ok++;
        mg_record_destroy(&r);
    }
    CHECK(trunc_ok == 0);
    free(copy);
    mg_record_destroy(&rec);
    mg_body_destroy(&body);
}

/* A valid signature by another author over the same payload must fail:
   the author field is inside the signed bytes. */
static void test_other_author(void)
{
    mg_identity_t a, b;
    mg_identity_generate(&a);
    mg_identity_generate(&b);
    mg_body_t *body = s_offer_body();
    mg_record_t *rec = NULL;
    CHECK_RC(mg_record_sign(&a, "offer", "x1", 1, 1, false, body, &rec, NULL),
             MG_OK);
    size_t len;
    const uint8_t *bytes = mg_record_bytes(rec, &len);
    /* Re-sign the same payload bytes with b's key, keep a as author. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    CHECK(msgpack_unpack_next(&u, (const char *) bytes, len, NULL)
          == MSGPACK_UNPACK_SUCCESS);
    const msgpack_object_bin *p = &u.data.via.array.ptr[0].via.bin;
    size_t ctx = sizeof MG_RECORD_SIG_CONTEXT;
    uint8_t *msg = malloc(ctx + p->size);
    memcpy(msg, MG_RECORD_SIG_CONTEXT, ctx);
    memcpy(msg + ctx, p->ptr, p->size);
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, msg, ctx + p->size, b.sk);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_bin_with_body(&pk, p->ptr, p->size);
    msgpack_pack_bin_with_body(&pk, sig, 64);
    mg_record_t *r = NULL;
    CHECK_RC(mg_record_decode((uint8_t *) sb.data, sb.size, &r, NULL),
             MG_ERR_SIGNATURE);
    msgpack_sbuffer_destroy(&sb);
    free(msg);
    msgpack_unpacked_destroy(&u);
    mg_record_destroy(&rec);
    mg_body_destroy(&body);
}

static void test_offer_rules(void)
{
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_why_t why;
    mg_body_t *b = s_offer_body();
    CHECK_RC(mg_offer_validate(b, &why), MG_OK);

    /* Enumerated value outside the standard: refused, allowed values listed. */
    mg_body_set_list_split(b, "services", "Cuisine", '|');
    CHECK_RC(mg_offer_validate(b, &why), MG_ERR_SCHEMA);
    CHECK(strstr(why.text, "Aide aux démarches administratives") != NULL);
    mg_body_set_list_split(b, "services", "Aide aux démarches administratives", '|');

    mg_body_set_str(b, "code_postal", "1600");
    CHECK_RC(mg_offer_validate(b, &why), MG_ERR_SCHEMA);
    mg_body_set_str(b, "code_postal", "16000");
    mg_body_set_str(b, "telephone", "0545000000");
    CHECK_RC(mg_offer_validate(b, &why), MG_ERR_SCHEMA);
    mg_body_set_str(b, "telephone", "+33545000000");
    CHECK_RC(mg_offer_validate(b, &why), MG_OK);
    mg_body_set_str(b, "code_insee", "2A004");
    CHECK_RC(mg_offer_validate(b, &why), MG_OK);
    mg_body_set_str(b, "code_insee", "20004");
    CHECK_RC(mg_offer_validate(b, &why), MG_ERR_SCHEMA);
    mg_body_remove(b, "code_insee");
    mg_body_set_str(b, "date_maj", "2023-02-30");
    CHECK_RC(mg_offer_validate(b, &why), MG_ERR_SCHEMA);
    mg_body_set_str(b, "date_maj", "2024-02-29");
    CHECK_RC(mg_offer_validate(b, &why), MG_OK);
    mg_body_set_num(b, "latitude", 91);
    CHECK_RC(mg_offer_validate(b, &why), MG_ERR_SCHEMA);
    mg_body_set_str(b, "latitude", "45.6");
    CHECK_RC(mg_offer_validate(b, &why), MG_ERR_SCHEMA);
    mg_body_set_num(b, "latitude", 45.6);
    /* 280 characters (not bytes) for the summary. */
    char resume[600] = "";
    for (int i = 0; i < 280; i++)
        strcat(resume, "é");
    mg_body_set_str(b, "presentation_resume", resume);
    CHECK_RC(mg_offer_validate(b, &why), MG_OK);
    strcat(resume, "é");
    mg_body_set_str(b, "presentation_resume", resume);
    CHECK_RC(mg_offer_validate(b, &why), MG_ERR_SCHEMA);
    mg_body_remove(b, "presentation_resume");
    /* Missing required field. */
    mg_body_remove(b, "adresse");
    CHECK_RC(mg_offer_validate(b, &why), MG_ERR_SCHEMA);
    CHECK(strstr(why.text, "adresse") != NULL);
    mg_body_set_str(b, "adresse", "1 rue du Port");
    /* Invalid UTF-8 never passes. */
    mg_body_set_str(b, "nom", "Caf\xe9");
    CHECK_RC(mg_offer_validate(b, &why), MG_ERR_UTF8);
    mg_body_set_str(b, "nom", "Café");
    /* Unknown fields are kept and allowed. */
    mg_body_set_str(b, "champ_futur", "valeur");
    CHECK_RC(mg_offer_validate(b, &why), MG_OK);
    mg_record_t *rec = NULL;
    CHECK_RC(mg_record_sign(&id, "offer", "r1", 1, 1, false, b, &rec, &why), MG_OK);
    if (rec)
        CHECK_STR(mg_body_str(mg_record_body(rec), "champ_futur"), "valeur");
    mg_record_destroy(&rec);
    /* An unknown kind is accepted as is (forward compatibility). */
    CHECK_RC(mg_record_sign(&id, "sondage", "r2", 2, 1, false, b, &rec, &why), MG_OK);
    mg_record_destroy(&rec);
    /* Profiles always have the rid "profile". */
    CHECK_RC(mg_record_sign(&id, "profile", "p2", 3, 1, false, b, &rec, &why),
             MG_ERR_MALFORMED);
    /* Counter limits. */
    CHECK_RC(mg_record_sign(&id, "offer", "r3", 0, 1, false, b, &rec, &why),
             MG_ERR_MALFORMED);
    CHECK_RC(mg_record_sign(&id, "offer", "r3", (uint64_t) 1 << 63, 1, false, b,
                            &rec, &why), MG_ERR_MALFORMED);
    CHECK_RC(mg_record_sign(&id, "offer", "bad id", 1, 1, false, b, &rec, &why),
             MG_ERR_MALFORMED);
    mg_body_destroy(&b);
}

static void test_limits(void)
{
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_body_t *b = s_offer_body();
    char *big = malloc(MG_STRING_MAX + 2);
    memset(big, 'a', MG_STRING_MAX + 1);
    big[MG_STRING_MAX + 1] = '\0';
    mg_body_set_str(b, "presentation_detail", big);
    mg_record_t *rec = NULL;
    mg_why_t why;
    CHECK_RC(mg_record_sign(&id, "offer", "r", 1, 1, false, b, &rec, &why),
             MG_ERR_TOO_LARGE);
    big[MG_STRING_MAX] = '\0';
    /* Many maximal fields exceed the record size limit. */
    char key[32];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "extra_%d", i);
        mg_body_set_str(b, key, big);
    }
    CHECK_RC(mg_record_sign(&id, "offer", "r", 1, 1, false, b, &rec, &why),
             MG_ERR_TOO_LARGE);
    free(big);
    mg_body_destroy(&b);

    /* Hostile msgpack: declared lengths near 2^32, deep nesting. */
    const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    CHECK_RC(mg_wire_scan(huge_array, sizeof huge_array, NULL), MG_ERR_MALFORMED);
    const uint8_t huge_str[] = {0xdb, 0xff, 0xff, 0xff, 0xfe, 'a'};
    CHECK_RC(mg_record_decode(huge_str, sizeof huge_str, &rec, NULL), MG_ERR_MALFORMED);
    uint8_t deep[64];
    memset(deep, 0x91, sizeof deep); /* [[[[...]]]] */
    deep[63] = 0xc0;
    CHECK_RC(mg_wire_scan(deep, sizeof deep, NULL), MG_ERR_MALFORMED);
    CHECK_RC(mg_record_decode(deep, sizeof deep, &rec, NULL), MG_ERR_MALFORMED);
    uint8_t shallow[4] = {0x91, 0x91, 0x91, 0xc0};
    CHECK_RC(mg_wire_scan(shallow, sizeof shallow, NULL), MG_OK);
    const uint8_t never_used[] = {0xc1};
    CHECK_RC(mg_wire_scan(never_used, 1, NULL), MG_ERR_MALFORMED);
    CHECK_RC(mg_record_decode(NULL, 0, &rec, NULL), MG_ERR_MALFORMED);
}

static void test_body(void)
{
    mg_body_t *a = mg_body_new(), *b = mg_body_new();
    mg_body_set_str(a, "z", "1");
    mg_body_set_str(a, "a", "2");
    mg_body_set_str(b, "a", "2");
    mg_body_set_str(b, "z", "1");
    CHECK(mg_body_equal(a, b));
    uint8_t *ea, *eb;
    size_t la, lb;
    mg_body_encode(a, &ea, &la);
    mg_body_encode(b, &eb, &lb);
    CHECK(la == lb && memcmp(ea, eb, la) == 0);
    mg_body_t *c = NULL;
    CHECK_RC(mg_body_decode(ea, la, &c, NULL), MG_OK);
    CHECK(c && mg_body_equal(a, c));
    free(ea);
    free(eb);
    mg_body_destroy(&c);
    mg_body_set_list_split(a, "l", " x | y ||z ", '|');
    const char *const *items;
    CHECK(mg_body_list(a, "l", &items) == 3);
    CHECK_STR(items[2], "z");
    mg_body_set_list_split(a, "l", " | ", '|');
    CHECK(mg_body_find(a, "l") < 0);
    /* Unknown value types survive as RAW, exactly. */
    const uint8_t raw[] = {0x82, 0xa1, 'k', 0xc3, 0xa1, 'n', 0xc0};
    mg_body_set_raw(a, "r", raw, sizeof raw);
    mg_body_encode(a, &ea, &la);
    CHECK_RC(mg_body_decode(ea, la, &c, NULL), MG_OK);
    size_t rlen = 0;
    const uint8_t *r = c ? mg_body_raw(c, "r", &rlen) : NULL;
    CHECK(r && rlen == sizeof raw && memcmp(r, raw, rlen) == 0);
    CHECK(c && mg_body_equal(a, c));
    free(ea);
    mg_body_destroy(&c);
    /* Duplicate keys are malformed. */
    const uint8_t dup[] = {0x82, 0xa1, 'k', 0xa1, '1', 0xa1, 'k', 0xa1, '2'};
    CHECK_RC(mg_body_decode(dup, sizeof dup, &c, NULL), MG_ERR_MALFORMED);
    mg_body_t *d = mg_body_dup(a);
    CHECK(d && mg_body_equal(a, d));
    mg_body_destroy(&d);
    mg_body_destroy(&a);
    mg_body_destroy(&b);
}

static void test_text(void)
{
    CHECK(mg_utf8_valid("Angoulême", strlen("Angoulême")));
    CHECK(!mg_utf8_valid("\xc0\xaf", 2));          /* overlong */
    CHECK(!mg_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
    CHECK(!mg_utf8_valid("\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
    CHECK(!mg_utf8_valid("\xe2\x82", 2));          /* truncated */
    CHECK(!mg_utf8_valid("a\0b", 3));
    CHECK(mg_utf8_valid("\xf0\x9f\x98\x80", 4));   /* emoji */
    CHECK(mg_rid_valid("a1B_.-"));
    CHECK(!mg_rid_valid(""));
    CHECK(!mg_rid_valid("a b"));
    CHECK(!mg_rid_valid("é"));
    char dep[4];
    CHECK(mg_departement_of(NULL, "16000", dep) == 0 && strcmp(dep, "16") == 0);
    CHECK(mg_departement_of("2A004", "20000", dep) == 0 && strcmp(dep, "2A") == 0);
    CHECK(mg_departement_of(NULL, "20200", dep) == 0 && strcmp(dep, "2B") == 0);
    CHECK(mg_departement_of("97105", NULL, dep) == 0 && strcmp(dep, "971") == 0);
    CHECK(mg_departement_of(NULL, "abc", dep) == -1);
}

/* The enumerations compiled in must be exactly the labels of the
   patterns in the standard's schema.json. */
static void test_schema_enums(void)
{
    json_error_t err;
    json_t *schema = json_load_file(MG_TEST_DATA "/schema.json", 0, &err);
    CHECK(schema != NULL);
    if (!schema)
        return;
    json_t *fields = json_object_get(schema, "fields");
    size_t i;
    json_t *f;
    size_t std_index = 0;
    json_array_foreach(fields, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        const mg_field_t *mf = mg_offer_field(name);
        CHECK(mf != NULL);
        if (!mf)
            continue;
        /* Same order as the standard. */
        CHECK_STR(mg_offer_fields()[std_index].name, name);
        std_index++;
        json_t *c = json_object_get(f, "constraints");
        CHECK(mf->required == json_is_true(json_object_get(c, "required")));
        const char *pattern = json_string_value(json_object_get(c, "pattern"));
        if (!pattern || mf->type != MG_FT_ENUM) {
            if (pattern)
                CHECK_STR(mf->syntax, pattern);
            continue;
        }
        /* "(?:(?:^|\|)(A|B|C))+$": take the inner alternation and unescape. */
        const char *start = strstr(pattern, "\\|)(");
        CHECK(start != NULL);
        if (!start)
            continue;
        start += 4;
        size_t plen = strlen(start);
        char *alts = strndup(start, plen - 4); /* drop "))+$" */
        size_t n = 0;
        char label[256];
        size_t k = 0;
        for (char *p = alts;; p++) {
            if (*p == '\\' && p[1]) {
                label[k++] = *++p;
                continue;
            }
            if (*p == '|' || *p == '\0') {
                label[k] = '\0';
                CHECK(mf->values[n] != NULL);
                if (mf->values[n])
                    CHECK_STR(mf->values[n], label);
                n++;
                k = 0;
                if (!*p)
                    break;
                continue;
            }
            label[k++] = *p;
        }
        CHECK(mf->values[n] == NULL);
        free(alts);
    }
    CHECK(std_index == mg_offer_standard_count());
    json_decref(schema);
}

/* Signs an arbitrary payload (no validation), as a newer or hostile
   implementation could. Caller frees *out. */
static void s_sign_raw(const mg_identity_t *id, const char *kind,
                       const char *rid, uint64_t counter, const mg_body_t *body,
                       uint8_t **out, size_t *out_len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_sbuffer_write(&sb, MG_RECORD_SIG_CONTEXT, sizeof MG_RECORD_SIG_CONTEXT);
    msgpack_pack_array(&pk, 8);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_str_with_body(&pk, kind, strlen(kind));
    msgpack_pack_bin_with_body(&pk, id->pk, 32);
    msgpack_pack_str_with_body(&pk, rid, strlen(rid));
    msgpack_pack_uint64(&pk, counter);
    msgpack_pack_int64(&pk, 1);
    msgpack_pack_false(&pk);
    mg_body_pack(body, &pk);
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (uint8_t *) sb.data, sb.size, id->sk);
    size_t ctx = sizeof MG_RECORD_SIG_CONTEXT;
    msgpack_sbuffer rb;
    msgpack_sbuffer_init(&rb);
    msgpack_packer rpk;
    msgpack_packer_init(&rpk, &rb, msgpack_sbuffer_write);
    msgpack_pack_array(&rpk, 2);
    msgpack_pack_bin_with_body(&rpk, sb.data + ctx, sb.size - ctx);
    msgpack_pack_bin_with_body(&rpk, sig, 64);
    msgpack_sbuffer_destroy(&sb);
    *out = (uint8_t *) rb.data;
    *out_len = rb.size;
}

/* A newer standard's label: our own authoring refuses it, but a record
   from a peer carrying it is kept (and so forwarded); a wrong type is
   still refused. */
static void test_lenient_received(void)
{
    mg_identity_t id;
    mg_identity_generate(&id);
    mg_body_t *b = s_offer_body();
    mg_body_set_list_split(b, "services", "Intelligence artificielle au quotidien", '|');
    mg_record_t *rec = NULL;
    CHECK_RC(mg_record_sign(&id, "offer", "f1", 1, 1, false, b, &rec, NULL),
             MG_ERR_SCHEMA);
    uint8_t *bytes;
    size_t len;
    s_sign_raw(&id, "offer", "f1", 1, b, &bytes, &len);
    CHECK_RC(mg_record_decode(bytes, len, &rec, NULL), MG_OK);
    mg_record_destroy(&rec);
    free(bytes);
    mg_body_set_str(b, "services", "Aide aux démarches administratives");
    s_sign_raw(&id, "offer", "f1", 1, b, &bytes, &len);
    CHECK_RC(mg_record_decode(bytes, len, &rec, NULL), MG_ERR_SCHEMA);
    free(bytes);
    /* Missing required field: refused from peers too. */
    mg_body_remove(b, "services");
    mg_body_remove(b, "nom");
    s_sign_raw(&id, "offer", "f1", 1, b, &bytes, &len);
    CHECK_RC(mg_record_decode(bytes, len, &rec, NULL), MG_ERR_SCHEMA);
    free(bytes);
    mg_body_destroy(&b);
}

/* A message cut at the buffer's end never ends inside a character. */
static void test_why_utf8(void)
{
    mg_why_t why;
    char long_text[3000] = "";
    for (int i = 0; i < 1000; i++)
        strcat(long_text, "é");
    for (int pad = 0; pad < 4; pad++) {
        mg_why_set(&why, MG_ERR_SCHEMA, "%.*s%s", pad, "xxx", long_text);
        CHECK(mg_utf8_valid(why.text, strlen(why.text)));
        CHECK(strlen(why.text) >= sizeof why.text - 4);
    }
}

int main(void)
{
    test_text();
    test_body();
    test_golden();
    test_tamper();
    test_other_author();
    test_offer_rules();
    test_limits();
    test_schema_enums();
    test_lenient_received();
    test_why_utf8();
    return mg_test_done("test_protocol");
}
