/*  mk_corpus.c - writes the seed corpora of the fuzz targets (not a
    fuzzer itself). The seeds are committed; run this again only to
    regenerate them after a format change, from the source root:

        build-fuzz/tests/fuzz/mk_corpus tests/fuzz/corpus

    Seeds come from the golden vectors (tests/golden_*.inc and the link
    message vectors of docs/protocol.md §16), from real data (the 188
    Charente lieux and the standard's example in tests/data, imported,
    signed and exported by the project's own code) and from real
    reconciliation sessions, plus a few hand-written edge cases. Each is
    small: libFuzzer mutates small inputs faster. */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_body.h"
#include "mg_export.h"
#include "mg_import.h"
#include "mg_msg.h"
#include "mg_recon.h"
#include "mg_record.h"
#include "mg_store.h"
#include "mg_text.h"

static const char *s_golden_offer_hex =
#include "golden_offer.inc"
    ;
static const char *s_golden_tombstone_hex =
#include "golden_tombstone.inc"
    ;

static const char *s_root;
static char s_tmp[64];
static int s_written;

static void s_die(const char *what)
{
    fprintf(stderr, "mk_corpus: %s\n", what);
    exit(1);
}

static void s_mkdir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        s_die(path);
}

/* Writes corpus/<target>/<name>. */
static void s_put(const char *target, const char *name, const void *data,
                  size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", s_root, target);
    s_mkdir(path);
    snprintf(path, sizeof path, "%s/%s/%s", s_root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        s_die(path);
    s_written++;
}

static void s_puts(const char *target, const char *name, const char *text)
{
    s_put(target, name, text, strlen(text));
}

static uint8_t *s_unhex(const char *hex, size_t *len)
{
    *len = strlen(hex) / 2;
    uint8_t *b = malloc(*len + 1);
    if (!b || mg_hex_decode(hex, b, *len) != 0)
        s_die("bad hex");
    return b;
}

static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        s_die(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t) n + 1);
    if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n)
        s_die(path);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t) n;
    return buf;
}

static void s_golden_identity(mg_identity_t *id)
{
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t) (i + 1);
    mg_identity_from_seed(id, seed);
}

static void s_put_record(const char *name, const mg_record_t *rec)
{
    size_t len;
    const uint8_t *b = mg_record_bytes(rec, &len);
    s_put("record", name, b, len);
}

/* ------------------------------------------------------------------ */
/* Real lieux: slices of the Charente file, imported by the project.   */

static json_t *s_charente;

static char *s_slice_json(size_t from, size_t count)
{
    json_t *a = json_array();
    for (size_t i = from; i < from + count && i < json_array_size(s_charente); i++)
        json_array_append(a, json_array_get(s_charente, i));
    char *text = json_dumps(a, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(a);
    return text;
}

/* A store holding the lieux [from, from+count) of Charente, imported and
   signed by the golden identity. */
static mg_store_t *s_import_slice(size_t from, size_t count)
{
    static int n;
    char db[128], file[128];
    snprintf(db, sizeof db, "%s/s%d.db", s_tmp, n);
    snprintf(file, sizeof file, "%s/s%d.json", s_tmp, n++);
    char *text = s_slice_json(from, count);
    FILE *f = fopen(file, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        s_die(file);
    free(text);
    mg_store_t *store = NULL;
    mg_why_t why;
    mg_identity_t id;
    s_golden_identity(&id);
    if (mg_store_open(db, &store, &why) != MG_OK
        || mg_import_file(store, &id, file, MG_FORMAT_STANDARD_JSON, NULL, NULL,
                          NULL, &why) != MG_OK)
        s_die(why.text);
    return store;
}

typedef struct {
    int n;
    int max;
} s_dump_t;

static int s_dump_record(const mg_record_t *rec, void *arg)
{
    s_dump_t *d = arg;
    char name[64];
    snprintf(name, sizeof name, "charente-offer-%d", d->n);
    s_put_record(name, rec);
    return ++d->n >= d->max;
}

/* Exports the store in `format` into corpus/<target>/<name>. */
static void s_put_export(mg_store_t *store, mg_format_t format,
                         const char *target, const char *name)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mg_why_t why;
    size_t count = 0;
    if (!f || mg_export(store, format, NULL, f, &count, &why) != MG_OK)
        s_die("export");
    fclose(f);
    s_put(target, name, buf, len);
    free(buf);
}

/* ------------------------------------------------------------------ */

static void s_records(void)
{
    size_t len;
    uint8_t *b = s_unhex(s_golden_offer_hex, &len);
    s_put("record", "golden-offer", b, len);
    /* A truncated copy and one with a flipped signature byte. */
    s_put("record", "golden-offer-truncated", b, len / 2);
    b[len - 1] ^= 1;
    s_put("record", "golden-offer-bad-signature", b, len);
    free(b);
    b = s_unhex(s_golden_tombstone_hex, &len);
    s_put("record", "golden-tombstone", b, len);
    free(b);

    mg_identity_t id;
    s_golden_identity(&id);
    mg_record_t *rec = NULL;
    mg_why_t why;

    mg_body_t *p = mg_body_new();
    mg_body_set_str(p, "nom", "Médiathèque de Ruffec");
    mg_body_set_str(p, "code_postal", "16700");
    const char *eps[2] = {"tcp://192.0.2.1:7470", "tcp://[2001:db8::1]:7470"};
    mg_body_set_list(p, "endpoints", eps, 2);
    if (mg_record_sign(&id, "profile", "profile", 3, 1700000002000LL, false, p,
                       &rec, &why) != MG_OK)
        s_die(why.text);
    s_put_record("profile", rec);
    mg_record_destroy(&rec);
    mg_body_destroy(&p);

    /* A kind this version does not know, with every kind of value: kept
       and forwarded, never indexed. */
    mg_body_t *u = mg_body_new();
    mg_body_set_str(u, "titre", "Café numérique");
    mg_body_set_num(u, "places", 12);
    const char *tags[3] = {"a", "é", "ß"};
    mg_body_set_list(u, "tags", tags, 3);
    /* {"x": [1, -1, nil, true, 1.5, bin "ab", [[[]]]]} */
    static const uint8_t raw[] = {0x81, 0xa1, 'x', 0x97, 0x01, 0xff, 0xc0,
                                  0xc3, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
                                  0xc4, 0x02, 'a', 'b', 0x91, 0x91, 0x90};
    mg_body_set_raw(u, "extra", raw, sizeof raw);
    if (mg_record_sign(&id, "atelier", "cafe-1", 7, -5, false, u, &rec, &why) != MG_OK)
        s_die(why.text);
    s_put_record("unknown-kind", rec);
    mg_record_destroy(&rec);
    /* The highest counter a record may carry (2^63 - 1). */
    if (mg_record_sign(&id, "atelier", "cafe-1", (uint64_t) INT64_MAX, 0, false,
                       u, &rec, &why) != MG_OK)
        s_die(why.text);
    s_put_record("counter-max", rec);
    mg_record_destroy(&rec);
    mg_body_destroy(&u);

    /* Real offers, as the import signs them. */
    mg_store_t *store = s_import_slice(0, 6);
    s_dump_t d = {0, 6};
    mg_store_records(store, "offer", false, s_dump_record, &d, &why);
    mg_store_destroy(&store);

    /* A bare body, deeply nested values (17 levels: one too many). */
    uint8_t deep[40];
    size_t n = 0;
    deep[n++] = 0x81;
    deep[n++] = 0xa1;
    deep[n++] = 'x';
    for (int i = 0; i < 16; i++)
        deep[n++] = 0x91;
    deep[n++] = 0x90;
    s_put("record", "nested-17", deep, n);
}

static void s_msgs(void)
{
    static const char *const golden[][2] = {
        {"golden-hello",
         "950102c4200102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
         "92b47463703a2f2f3139322e302e322e313a37343730b87463703a2f2f5b323030313a6462"
         "383a3a315d3a37343730b74dc3a96469617468c3a871756520646520527566666563"},
        {"golden-recon-q", "9202c40b93020793c0c4009200c400"},
        {"golden-recon-a", "9203c415930207c410673cbd9a83cb676eba3e0bcd63a2b414"},
        {"golden-records",
         "920492c40d66616b652d7265636f72642d31c40d66616b652d7265636f72642d32"},
        {"golden-want",
         "920592c4201111111111111111111111111111111111111111111111111111111111111111"
         "c4202222222222222222222222222222222222222222222222222222222222222222"},
    };
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        size_t len;
        uint8_t *b = s_unhex(golden[i][1], &len);
        s_put("msg", golden[i][0], b, len);
        free(b);
    }
    /* RECORDS holding the two golden records, and a WANT of their vids. */
    size_t lens[2];
    uint8_t *recs[2] = {s_unhex(s_golden_offer_hex, &lens[0]),
                        s_unhex(s_golden_tombstone_hex, &lens[1])};
    uint8_t *out = NULL;
    size_t len = 0;
    mg_msg_list(MG_MSG_RECORDS, (const uint8_t *const *) recs, lens, 2, &out, &len);
    s_put("msg", "records-golden", out, len);
    free(out);
    uint8_t vids[2][32];
    const uint8_t *vp[2] = {vids[0], vids[1]};
    size_t vl[2] = {32, 32};
    for (int i = 0; i < 2; i++)
        crypto_generichash(vids[i], 32, recs[i], lens[i], NULL, 0);
    mg_msg_list(MG_MSG_WANT, vp, vl, 2, &out, &len);
    s_put("msg", "want-golden", out, len);
    free(out);
    free(recs[0]);
    free(recs[1]);
    /* HELLO with the most endpoints and a long name. */
    uint8_t key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t) (i + 1);
    const char *eps[MG_ENDPOINTS_MAX];
    char epbuf[MG_ENDPOINTS_MAX][64];
    for (int i = 0; i < MG_ENDPOINTS_MAX; i++) {
        snprintf(epbuf[i], sizeof epbuf[i], "tcp://192.0.2.%d:7470", i + 1);
        eps[i] = epbuf[i];
    }
    mg_msg_hello(key, eps, MG_ENDPOINTS_MAX, "Espace numérique — Cognac, salle « Lumière »",
                 &out, &len);
    s_put("msg", "hello-8-endpoints", out, len);
    free(out);
    /* A real first reconciliation message over 64 items. */
    mg_itemset_t *set = mg_itemset_new();
    for (uint32_t i = 0; i < 64; i++) {
        mg_item_t it = {.bucket = (i % 4) * 160};
        uint8_t seed[4] = {(uint8_t) i, (uint8_t) (i >> 8), 0x6d, 0x67};
        crypto_generichash(it.id, sizeof it.id, seed, sizeof seed, NULL, 0);
        mg_itemset_add(set, &it);
    }
    mg_recon_t *r = mg_recon_new(set, true, 0);
    mg_recon_set_session(r, 7); /* fuzz_msg.c's initiators use session 7 */
    uint8_t *payload = NULL;
    size_t plen = 0;
    mg_recon_initiate(r, &payload, &plen);
    mg_msg_recon(MG_MSG_RECON_Q, payload, plen, &out, &len);
    s_put("msg", "recon-q-64", out, len);
    free(out);
    /* The responder's answer from an empty set, as a RECON_A. */
    mg_itemset_t *empty = mg_itemset_new();
    mg_recon_t *rsp = mg_recon_new(empty, false, 0);
    uint8_t *ans = NULL;
    size_t alen = 0;
    mg_recon_process(rsp, payload, plen, &ans, &alen, NULL);
    mg_msg_recon(MG_MSG_RECON_A, ans, alen, &out, &len);
    s_put("msg", "recon-a-empty", out, len);
    free(out);
    free(ans);
    free(payload);
    mg_recon_destroy(&r);
    mg_recon_destroy(&rsp);
    mg_itemset_destroy(&set);
    mg_itemset_destroy(&empty);
}

/* The pool and sets of fuzz_recon.c, built the same way. */
#define S_POOL 410
static mg_item_t s_pool[S_POOL];

static mg_itemset_t *s_recon_set(int k)
{
    const size_t from[4] = {0, 0, 0, 10}, count[4] = {0, 40, 400, 400};
    mg_itemset_t *s = mg_itemset_new();
    mg_itemset_add_many(s, s_pool + from[k], count[k]);
    return s;
}

/* Writes a fuzz_recon input: a real session between sets (ini, rsp) with
   frame limits (fi, fr), as relays or as the recorded messages. */
static void s_recon_seed(int ini_k, int rsp_k, int fi, int fr, bool relays,
                         const char *name)
{
    static const size_t frames[4] = {0, MG_RECON_FRAME_MIN, 4096,
                                     MG_RECON_FRAME_MAX};
    uint8_t cfg = (uint8_t) (ini_k | rsp_k << 2 | fi << 4 | fr << 6);
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    buf[n++] = cfg;
    mg_itemset_t *a = s_recon_set(ini_k), *b = s_recon_set(rsp_k);
    mg_recon_t *ini = mg_recon_new(a, true, frames[fi]);
    mg_recon_t *rsp = mg_recon_new(b, false, frames[fr]);
    /* The session id fuzz_recon.c gives its first session. */
    mg_recon_set_session(ini, 0x6d61696c6c616765ULL);
    uint8_t *msg = NULL, *reply = NULL;
    size_t len = 0, rlen = 0;
    mg_recon_initiate(ini, &msg, &len);
    for (int round = 0; msg && round < 100; round++) {
        mg_recon_process(rsp, msg, len, &reply, &rlen, NULL);
        if (relays) {
            buf[n++] = 0x80;
        } else if (len <= 0xffff && n + len + 3 < cap) {
            buf[n++] = 0x00;
            buf[n++] = (uint8_t) len;
            buf[n++] = (uint8_t) (len >> 8);
            memcpy(buf + n, msg, len);
            n += len;
        }
        free(msg);
        msg = NULL;
        mg_recon_process(ini, reply, rlen, &msg, &len, NULL);
        if (relays) {
            buf[n++] = 0x81;
        } else if (rlen <= 0xffff && n + rlen + 3 < cap) {
            buf[n++] = 0x01;
            buf[n++] = (uint8_t) rlen;
            buf[n++] = (uint8_t) (rlen >> 8);
            memcpy(buf + n, reply, rlen);
            n += rlen;
        }
        free(reply);
        reply = NULL;
    }
    free(msg);
    s_put("recon", name, buf, n);
    free(buf);
    mg_recon_destroy(&ini);
    mg_recon_destroy(&rsp);
    mg_itemset_destroy(&a);
    mg_itemset_destroy(&b);
}

static void s_recons(void)
{
    for (uint32_t i = 0; i < S_POOL; i++) {
        uint8_t seed[4] = {(uint8_t) i, (uint8_t) (i >> 8), 'r', 'c'};
        s_pool[i].bucket = (i % 7) * 10;
        crypto_generichash(s_pool[i].id, MG_RECON_ID_BYTES, seed, sizeof seed,
                           NULL, 0);
    }
    s_recon_seed(2, 3, 1, 1, true, "relay-400-shifted-min-frames");
    s_recon_seed(2, 3, 0, 0, true, "relay-400-shifted-default");
    s_recon_seed(2, 0, 2, 1, true, "relay-400-vs-empty-4096");
    s_recon_seed(1, 2, 0, 3, true, "relay-40-vs-400");
    s_recon_seed(3, 3, 0, 0, true, "relay-in-sync");
    s_recon_seed(2, 3, 2, 2, false, "raw-400-shifted-4096");
    s_recon_seed(2, 3, 1, 1, false, "raw-400-shifted-min-frames");
    s_recon_seed(1, 0, 0, 0, false, "raw-40-vs-empty");
    s_recon_seed(0, 1, 0, 0, false, "raw-empty-vs-40");
    /* Relays mixed with set changes. */
    static const uint8_t mixed[] = {0x0b | 0x10, 0x80, 0x40, 7, 0x81, 0x43, 200,
                                    0x80, 0x41, 3, 0x81, 0x80, 0x81, 0x80, 0x81};
    s_put("recon", "relay-with-changes", mixed, sizeof mixed);
}

static void s_imports(void)
{
    size_t len;
    char *ex = s_slurp(MG_TEST_DATA "/exemple-valide.csv", &len);
    s_put("import_csv", "exemple-valide.csv", ex, len);
    free(ex);
    /* Real lieux of several schema generations, as JSON slices. */
    static const size_t slices[][2] = {{0, 3}, {20, 4}, {60, 3}, {120, 4}, {180, 8}};
    for (size_t i = 0; i < sizeof slices / sizeof slices[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "charente-%zu-%zu.json", slices[i][0],
                 slices[i][0] + slices[i][1]);
        char *text = s_slice_json(slices[i][0], slices[i][1]);
        s_puts("import_json", name, text);
        free(text);
    }
    /* The same lieux as exported by maillage (standard CSV and JSON):
       export -> import must lose nothing. */
    mg_store_t *store = s_import_slice(40, 5);
    s_put_export(store, MG_FORMAT_STANDARD_CSV, "import_csv", "export-charente-40-45.csv");
    s_put_export(store, MG_FORMAT_STANDARD_JSON, "import_json", "export-charente-40-45.json");
    mg_store_destroy(&store);
    /* Edge cases. */
    s_puts("import_json", "empty-array.json", "[]");
    s_puts("import_json", "bom-one-lieu.json",
           "\xef\xbb\xbf[{\"id\":\"a\",\"nom\":\"Lieu\",\"pivot\":\"43493312300029\","
           "\"commune\":\"Cognac\",\"code_postal\":\"16100\",\"adresse\":\"1 rue\","
           "\"date_maj\":\"2024-01-31\",\"horaires\":\"Mo-Fr 09:00-12:00\","
           "\"services\":[\"Aide aux démarches administratives\"],"
           "\"latitude\":45.69,\"longitude\":-0.33,\"source\":\"test\"}]");
    s_puts("import_csv", "quoted-newline.csv",
           "id,pivot,nom,commune,code_postal,adresse,date_maj,presentation_detail\r\n"
           "\"q-1\",\"43493312300029\",\"Lieu \"\"guillemets\"\"\",\"Cognac\",\"16100\","
           "\"1 rue\",\"2024-01-31\",\"deux\nlignes\"\r\n");
}

static void s_hours(void)
{
    /* Every distinct horaires of the Charente lieux and the example. */
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(s_charente); i++) {
        const char *h = json_string_value(
            json_object_get(json_array_get(s_charente, i), "horaires"));
        if (!h)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *o = json_string_value(
                json_object_get(json_array_get(s_charente, j), "horaires"));
            seen = o && strcmp(o, h) == 0;
        }
        if (seen)
            continue;
        char name[32];
        snprintf(name, sizeof name, "charente-%02zu", n++);
        s_puts("hours", name, h);
    }
    static const char *const edge[][2] = {
        {"example", "Mo-Fr 09:00-12:00,14:00-18:30; Sa 08:30-12:00"},
        {"always", "24/7"},
        {"off", "Mo-Su off"},
        {"ph", "Mo-Fr 09:00-17:00; PH off"},
        {"ph-open", "Mo-Fr,PH 10:00-12:00"},
        {"comment", "Tu-Th 14:00-17:00 \"sur rendez-vous\""},
        {"midnight", "Fr 22:00-02:00; Su 23:00-01:00"},
        {"wrap-days", "Fr-Mo 10:00-24:00"},
        {"additional", "Mo-Fr 09:00-12:00, Sa 10:00-12:00"},
        {"replace", "Mo-Fr 09:00-18:00; We off"},
        {"unsupported", "Jan-Mar Mo 10:00-12:00 || sunrise-sunset"},
    };
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
        s_puts("hours", edge[i][0], edge[i][1]);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mk_corpus DIR   (e.g. tests/fuzz/corpus)\n");
        return 2;
    }
    s_root = argv[1];
    s_mkdir(s_root);
    if (sodium_init() < 0)
        s_die("sodium_init");
    snprintf(s_tmp, sizeof s_tmp, "/tmp/mg-corpus-XXXXXX");
    if (!mkdtemp(s_tmp))
        s_die("mkdtemp");
    json_error_t err;
    s_charente = json_load_file(MG_TEST_DATA "/charente-2023-07.json", 0, &err);
    if (!json_is_array(s_charente))
        s_die("charente-2023-07.json");
    s_records();
    s_msgs();
    s_recons();
    s_imports();
    s_hours();
    json_decref(s_charente);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "mk_corpus: could not remove %s\n", s_tmp);
    printf("mk_corpus: %d seeds written under %s\n", s_written, s_root);
    return 0;
}
