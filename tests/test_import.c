/*  test_import.c - importing and exporting the national standard, on real
    files: the Charente lieux (mixed schema generations), the standard's own
    example, and the standard's schema.json, whose every pattern the CSV
    export is checked against here, independently of protocol/mg_offer.c. */
#include <csv.h>
#include <jansson.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_export.h"
#include "mg_import.h"
#include "mg_json.h"
#include "mg_offer.h"
#include "mg_store.h"
#include "mg_test.h"
#include "mg_text.h"

#define CHARENTE MG_TEST_DATA "/charente-2023-07.json"
#define EXEMPLE MG_TEST_DATA "/exemple-valide.csv"
#define SCHEMA MG_TEST_DATA "/schema.json"

static char s_dir[64];

static const char *s_path(const char *name)
{
    static char buf[8][256];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 256, "%s/%s", s_dir, name);
    return p;
}

static mg_store_t *s_open(const char *name)
{
    mg_store_t *store = NULL;
    mg_why_t why;
    int rc = mg_store_open(s_path(name), &store, &why);
    if (rc != MG_OK)
        fprintf(stderr, "mg_store_open: %s\n", why.text);
    CHECK_RC(rc, MG_OK);
    return store;
}

static void s_identity(mg_identity_t *id, uint8_t n)
{
    uint8_t seed[32];
    memset(seed, n, sizeof seed);
    mg_identity_from_seed(id, seed);
}

static void s_write(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(data, 1, len, f) == len);
        fclose(f);
    }
}

static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t) n + 1);
    if (buf && fread(buf, 1, (size_t) n, f) != (size_t) n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = (size_t) n;
    fclose(f);
    return buf;
}

/* What must not change when an import is refused. */
typedef struct {
    int64_t records;
    uint64_t max_counter;
} s_snap_t;

static int s_count_cb(const mg_count_t *c, void *arg)
{
    *(int64_t *) arg += c->live + c->tombstones;
    return 0;
}

static s_snap_t s_snapshot(mg_store_t *store, const mg_identity_t *id)
{
    s_snap_t s = {0, 0};
    CHECK_RC(mg_store_counts(store, false, s_count_cb, &s.records, NULL), MG_OK);
    CHECK_RC(mg_store_max_counter(store, id->pk, &s.max_counter), MG_OK);
    return s;
}

/* Every live offer of a store: rid and body. */
typedef struct {
    char rid[MG_RID_MAX + 1];
    mg_body_t *body;
} s_offer_t;

typedef struct {
    s_offer_t *items;
    size_t count;
} s_offers_t;

static int s_collect_cb(const mg_record_t *rec, void *arg)
{
    s_offers_t *o = arg;
    o->items = realloc(o->items, (o->count + 1) * sizeof *o->items);
    snprintf(o->items[o->count].rid, sizeof o->items[0].rid, "%s",
             mg_record_rid(rec));
    o->items[o->count].body = mg_body_dup(mg_record_body(rec));
    o->count++;
    return 0;
}

static s_offers_t s_offers(mg_store_t *store)
{
    s_offers_t o = {NULL, 0};
    CHECK_RC(mg_store_offers(store, NULL, s_collect_cb, &o, NULL), MG_OK);
    return o;
}

static void s_offers_free(s_offers_t *o)
{
    for (size_t i = 0; i < o->count; i++)
        mg_body_destroy(&o->items[i].body);
    free(o->items);
    o->items = NULL;
    o->count = 0;
}

static int s_import(mg_store_t *store, const mg_identity_t *id,
                    const char *path, mg_format_t format,
                    mg_import_report_t **report, mg_why_t *why)
{
    mg_why_t local;
    if (!why)
        why = &local;
    int rc = mg_import_file(store, id, path, format, NULL, NULL, report, why);
    if (rc != MG_OK)
        printf("  (import refusé comme attendu ?) %s\n", why->text);
    return rc;
}

static int s_export(mg_store_t *store, mg_format_t format, const char *path,
                    size_t *count)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return MG_ERR_IO;
    mg_why_t why;
    int rc = mg_export(store, format, NULL, f, count, &why);
    if (rc != MG_OK)
        fprintf(stderr, "mg_export: %s\n", why.text);
    fclose(f);
    return rc;
}

/* Does the body's list `field` hold `item`? */
static bool s_has(const mg_body_t *body, const char *field, const char *item)
{
    const char *const *items;
    size_t n = mg_body_list(body, field, &items);
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i], item) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------ */

static void s_progress(size_t done, size_t total, void *arg)
{
    size_t *last = arg;
    CHECK(done <= total);
    *last = done;
}

static void test_formats(void)
{
    mg_format_t f;
    CHECK_RC(mg_format_parse("standard-csv", &f), MG_OK);
    CHECK(f == MG_FORMAT_STANDARD_CSV);
    CHECK_RC(mg_format_parse("json", &f), MG_OK);
    CHECK(f == MG_FORMAT_STANDARD_JSON);
    CHECK_RC(mg_format_parse("geojson", &f), MG_OK);
    CHECK(f == MG_FORMAT_GEOJSON);
    CHECK_RC(mg_format_parse("xlsx", &f), MG_ERR_ARG);

    char *a = mg_import_rid("dora", "x-1");
    char *b = mg_import_rid("dora", "x-1");
    char *c = mg_import_rid("dor", "ax-1");
    CHECK(a && b && c);
    if (a && b && c) {
        CHECK_STR(a, b);
        CHECK(strcmp(a, c) != 0); /* the NUL separates source from id */
        CHECK(strlen(a) == 16);
        CHECK(strspn(a, "0123456789abcdef") == 16);
    }
    free(a);
    free(b);
    free(c);
}

static void test_json(void)
{
    char when[32];
    mg_time_iso(0, when);
    CHECK_STR(when, "1970-01-01T00:00:00Z");
    mg_time_iso(1700000000123, when);
    CHECK_STR(when, "2023-11-14T22:13:20Z");

    json_error_t err;
    json_t *in = json_loads(
        "{\"nom\":\"Médiathèque\",\"services\":[\"a\",\"b\"],\"latitude\":45.5,"
        "\"n\":3,\"extra\":{\"z\":[1,true,null],\"a\":\"x\"},\"mixed\":[1,\"a\"]}",
        0, &err);
    CHECK(in != NULL);
    mg_body_t *body = NULL;
    CHECK_RC(mg_json_to_body(in, &body, NULL), MG_OK);
    if (body) {
        CHECK_STR(mg_body_str(body, "nom"), "Médiathèque");
        CHECK(mg_body_type_at(body, (size_t) mg_body_find(body, "services")) == MG_VAL_LIST);
        CHECK(mg_body_type_at(body, (size_t) mg_body_find(body, "extra")) == MG_VAL_RAW);
        CHECK(mg_body_type_at(body, (size_t) mg_body_find(body, "mixed")) == MG_VAL_RAW);
        /* Through msgpack bytes and back: nothing changes. */
        uint8_t *bytes = NULL;
        size_t len = 0;
        CHECK_RC(mg_body_encode(body, &bytes, &len), MG_OK);
        mg_body_t *back = NULL;
        CHECK_RC(mg_body_decode(bytes, len, &back, NULL), MG_OK);
        CHECK(back && mg_body_equal(body, back));
        free(bytes);
        json_t *out = back ? mg_body_to_json(back) : NULL;
        CHECK(out && json_equal(in, out));
        json_decref(out);
        mg_body_destroy(&back);
    }
    /* Too deep to be accepted by peers: refused here already. */
    json_t *deep = json_loads("{\"d\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}", 0, &err);
    mg_body_t *b2 = NULL;
    CHECK(mg_json_to_body(deep, &b2, NULL) == MG_ERR_TOO_LARGE);
    json_decref(deep);

    /* mg_record_to_json: the record id as "id", the standard's as id_standard. */
    mg_identity_t id;
    s_identity(&id, 9);
    mg_body_t *ob = mg_body_new();
    mg_body_set_str(ob, "id", "std-1");
    mg_body_set_str(ob, "pivot", "12345678900012");
    mg_body_set_str(ob, "nom", "Lieu");
    mg_body_set_str(ob, "commune", "Cognac");
    mg_body_set_str(ob, "code_postal", "16100");
    mg_body_set_str(ob, "adresse", "1 rue A");
    mg_body_set_str(ob, "date_maj", "2024-01-01");
    mg_body_set_num(ob, "latitude", 45.681367);
    mg_record_t *rec = NULL;
    mg_why_t why;
    CHECK_RC(mg_record_sign(&id, "offer", "abc123", 1, 1700000000000, false, ob,
                            &rec, &why), MG_OK);
    json_t *rj = rec ? mg_record_to_json(rec) : NULL;
    CHECK(rj != NULL);
    if (rj) {
        CHECK_STR(json_string_value(json_object_get(rj, "id")), "abc123");
        CHECK_STR(json_string_value(json_object_get(rj, "id_standard")), "std-1");
        CHECK_STR(json_string_value(json_object_get(rj, "updated")), "2023-11-14T22:13:20Z");
        CHECK(json_string_length(json_object_get(rj, "author")) == 64);
        CHECK(json_real_value(json_object_get(rj, "latitude")) == 45.681367);
    }
    json_decref(rj);
    mg_record_destroy(&rec);
    mg_body_destroy(&ob);
    mg_body_destroy(&body);
    json_decref(in);
}

/* The Charente file: 188 real lieux, old and new schema mixed. */
static void test_charente(mg_store_t *store, const mg_identity_t *id)
{
    mg_import_report_t *r = NULL;
    mg_why_t why;
    size_t last = 0;
    int rc = mg_import_file(store, id, CHARENTE, MG_FORMAT_AUTO, s_progress,
                            &last, &r, &why);
    if (rc != MG_OK)
        fprintf(stderr, "import: %s\n", why.text);
    CHECK_RC(rc, MG_OK);
    CHECK(r != NULL);
    if (!r)
        return;
    printf("---- résumé de l'import de la Charente ----\n");
    mg_import_report_print(r, stdout);
    printf("-------------------------------------------\n");
    CHECK(last == 188);
    CHECK(mg_import_report_read(r) == 188);
    CHECK(mg_import_report_new(r) == 188);
    CHECK(mg_import_report_updated(r) == 0);
    CHECK(mg_import_report_unchanged(r) == 0);
    /* "Adultes" (22 lieux) and "Adhésion" (1) have no v1 equivalent. */
    CHECK(mg_import_report_unmapped(r) == 23);
    CHECK(mg_import_report_count(r, "publics_accueillis", "Adultes", NULL, NULL) == 22);
    CHECK(mg_import_report_count(r, "conditions_acces",
                                 "Adhésion : L'accès au lieu et/ou à ses services nécessite d'y adhérer",
                                 NULL, NULL) == 1);
    CHECK(mg_import_report_count(r, "services", "Utiliser le numérique au quotidien",
                                 "services", "Maîtrise des outils numériques du quotidien") == 111);
    CHECK(mg_import_report_count(r, "services", "Approfondir ma culture numérique",
                                 "services", "Compréhension du monde numérique") == 110);
    CHECK(mg_import_report_count(r, "services", "Accompagner les démarches de santé",
                                 "services", "Aide aux démarches administratives") == 62);
    CHECK(mg_import_report_count(r, "labels_nationaux", "CNFS",
                                 "dispositif_programmes_nationaux", "Conseillers numériques") == 109);
    CHECK(mg_import_report_count(r, "labels_nationaux", "France Services",
                                 "dispositif_programmes_nationaux", "France Services") == 83);
    CHECK(mg_import_report_count(r, "publics_accueillis", "Jeunes (16-26 ans)",
                                 "publics_specifiquement_adresses", "Jeunes") == 21);
    CHECK(mg_import_report_count(r, "conditions_acces",
                                 "Gratuit : Je peux accéder gratuitement au lieu et à ses services",
                                 "frais_a_charge", "Gratuit") == 126);
    CHECK(mg_import_report_count(r, "modalites_accompagnement",
                                 "Avec de l'aide : je suis accompagné seul dans l'usage du numérique",
                                 "modalites_accompagnement", "Accompagnement individuel") == 188);
    CHECK(mg_import_report_count(r, "courriel", NULL, "courriels", NULL) == 53);
    CHECK(mg_import_report_count(r, "accessibilite", NULL, "fiche_acces_libre", NULL) == 46);
    json_t *rj = mg_import_report_json(r);
    CHECK(rj && json_integer_value(json_object_get(rj, "new")) == 188);
    json_decref(rj);
    mg_import_report_destroy(&r);
    mg_import_report_destroy(&r); /* safe twice */

    s_offers_t o = s_offers(store);
    CHECK(o.count == 188);
    s_offers_free(&o);
    s_snap_t s = s_snapshot(store, id);
    CHECK(s.records == 188);
    CHECK(s.max_counter == 188);

    /* One lieu, field by field. */
    char *rid = mg_import_rid("conseiller-numerique",
                              "mediation-numerique-conseiller-numerique-63d29db4e6d6a806f256459a-mediation-numerique");
    mg_record_t *rec = NULL;
    CHECK_RC(mg_store_get(store, id->pk, rid, &rec, NULL), MG_OK);
    free(rid);
    if (rec) {
        const mg_body_t *b = mg_record_body(rec);
        CHECK_STR(mg_record_kind(rec), "offer");
        CHECK_STR(mg_body_str(b, "nom"), "Médiathèque chateaubernard");
        CHECK_STR(mg_body_str(b, "source"), "conseiller-numerique");
        CHECK(s_has(b, "services", "Maîtrise des outils numériques du quotidien"));
        CHECK(s_has(b, "services", "Compréhension du monde numérique"));
        const char *const *items;
        CHECK(mg_body_list(b, "services", &items) == 2); /* 4 old -> 2 new */
        CHECK(s_has(b, "dispositif_programmes_nationaux", "Conseillers numériques"));
        CHECK(s_has(b, "dispositif_programmes_nationaux", "France Services"));
        CHECK(s_has(b, "frais_a_charge", "Gratuit"));
        CHECK(s_has(b, "modalites_accompagnement", "Accompagnement individuel"));
        CHECK(s_has(b, "typologie", "RFS"));
        CHECK_STR(mg_body_str(b, "fiche_acces_libre"),
                  "https://acceslibre.beta.gouv.fr/app/16-chateaubernard/a/mairie/erp/mairie-chateaubernard/");
        double lat = 0;
        CHECK(mg_body_num(b, "latitude", &lat) == 0 && lat == 45.681367);
        CHECK(mg_body_find(b, "non_mappe") < 0);
        CHECK(mg_body_find(b, "labels_nationaux") < 0);
    }
    mg_record_destroy(&rec);

    /* A lieu with "Adultes": kept under non_mappe. */
    json_error_t jerr;
    json_t *all = json_load_file(CHARENTE, 0, &jerr);
    size_t i;
    json_t *lieu;
    bool seen = false;
    json_array_foreach(all, i, lieu) {
        const char *pa = json_string_value(json_object_get(lieu, "publics_accueillis"));
        if (!pa || !strstr(pa, "Adultes") || !strstr(pa, "Seniors"))
            continue;
        rid = mg_import_rid(json_string_value(json_object_get(lieu, "source")),
                            json_string_value(json_object_get(lieu, "id")));
        CHECK_RC(mg_store_get(store, id->pk, rid, &rec, NULL), MG_OK);
        free(rid);
        if (rec) {
            const mg_body_t *b = mg_record_body(rec);
            CHECK(s_has(b, "publics_specifiquement_adresses", "Seniors"));
            json_t *bj = mg_body_to_json(b);
            json_t *nm = json_object_get(bj, "non_mappe");
            CHECK(json_is_object(nm));
            CHECK_STR(json_string_value(json_object_get(nm, "publics_accueillis")), "Adultes");
            json_decref(bj);
        }
        mg_record_destroy(&rec);
        seen = true;
        break;
    }
    CHECK(seen);
    json_decref(all);
}

static void test_reimport(mg_store_t *store, const mg_identity_t *id)
{
    s_snap_t before = s_snapshot(store, id);
    mg_import_report_t *r = NULL;
    CHECK_RC(s_import(store, id, CHARENTE, MG_FORMAT_STANDARD_JSON, &r, NULL), MG_OK);
    if (r) {
        CHECK(mg_import_report_new(r) == 0);
        CHECK(mg_import_report_updated(r) == 0);
        CHECK(mg_import_report_unchanged(r) == 188);
    }
    mg_import_report_destroy(&r);
    s_snap_t after = s_snapshot(store, id);
    CHECK(after.records == before.records);
    CHECK(after.max_counter == before.max_counter);
}

/* ---- validating the CSV export against schema.json, independently ---- */

typedef struct {
    char *name;
    bool required;
    long max_length;
    bool has_re;
    regex_t re;
    const char *type;
} s_col_t;

/* Frictionless patterns (XSD/JS-like) -> POSIX ERE. */
static char *s_ere(const char *pattern)
{
    size_t n = strlen(pattern);
    char *out = malloc(8 * n + 16);
    char *o = out;
    o += sprintf(o, "^(");
    for (const char *p = pattern; *p;) {
        if (strncmp(p, "(?:", 3) == 0) {
            *o++ = '(';
            p += 3;
        } else if (strncmp(p, "\\d", 2) == 0) {
            o += sprintf(o, "[0-9]");
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    o += sprintf(o, ")$");
    *o = '\0';
    return out;
}

typedef struct {
    char **cells;
    size_t n;
    char ***rows;
    size_t *widths;
    size_t nrows;
} s_table_t;

static void s_tab_field(void *s, size_t len, void *arg)
{
    s_table_t *t = arg;
    t->cells = realloc(t->cells, (t->n + 1) * sizeof(char *));
    t->cells[t->n] = strndup(s ? s : "", len);
    t->n++;
}

static void s_tab_row(int c, void *arg)
{
    (void) c;
    s_table_t *t = arg;
    t->rows = realloc(t->rows, (t->nrows + 1) * sizeof(char **));
    t->widths = realloc(t->widths, (t->nrows + 1) * sizeof(size_t));
    t->rows[t->nrows] = t->cells;
    t->widths[t->nrows] = t->n;
    t->nrows++;
    t->cells = NULL;
    t->n = 0;
}

static bool s_parse_csv(const char *data, size_t len, s_table_t *t)
{
    struct csv_parser p;
    csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL);
    memset(t, 0, sizeof *t);
    bool ok = csv_parse(&p, data, len, s_tab_field, s_tab_row, t) == len
              && csv_fini(&p, s_tab_field, s_tab_row, t) == 0;
    csv_free(&p);
    return ok;
}

static void s_table_free(s_table_t *t)
{
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->widths[r]; c++)
            free(t->rows[r][c]);
        free(t->rows[r]);
    }
    free(t->rows);
    free(t->widths);
}

static size_t s_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char) *s & 0xC0) != 0x80)
            n++;
    return n;
}

static void s_validate_csv(const char *path, size_t expected_rows)
{
    json_error_t err;
    json_t *schema = json_load_file(SCHEMA, 0, &err);
    CHECK(schema != NULL);
    json_t *fields = json_object_get(schema, "fields");
    size_t nf = json_array_size(fields);
    CHECK(nf == mg_offer_standard_count());
    s_col_t *cols = calloc(nf, sizeof *cols);
    size_t patterns = 0;
    for (size_t i = 0; i < nf; i++) {
        json_t *f = json_array_get(fields, i);
        json_t *cons = json_object_get(f, "constraints");
        cols[i].name = strdup(json_string_value(json_object_get(f, "name")));
        cols[i].type = json_string_value(json_object_get(f, "type"));
        cols[i].required = json_is_true(json_object_get(cons, "required"));
        json_t *ml = json_object_get(cons, "maxLength");
        cols[i].max_length = ml ? (long) json_integer_value(ml) : -1;
        const char *pat = json_string_value(json_object_get(cons, "pattern"));
        if (pat) {
            char *ere = s_ere(pat);
            int rc = regcomp(&cols[i].re, ere, REG_EXTENDED | REG_NOSUB);
            if (rc != 0)
                fprintf(stderr, "regcomp failed for %s: %s\n", cols[i].name, ere);
            CHECK(rc == 0);
            cols[i].has_re = rc == 0;
            patterns += rc == 0;
            free(ere);
        }
    }
    CHECK(patterns == 13); /* every pattern of schema.json v1.0.2 */

    /* The header: exactly the example file's columns, in its order. */
    size_t elen = 0, len = 0;
    char *example = s_slurp(EXEMPLE, &elen);
    s_table_t ex;
    CHECK(example && s_parse_csv(example, elen, &ex));
    char *data = s_slurp(path, &len);
    s_table_t t;
    CHECK(data && s_parse_csv(data, len, &t));
    CHECK(t.nrows == expected_rows + 1);
    CHECK(len >= 2 && memcmp(data + len - 2, "\r\n", 2) == 0);
    CHECK(ex.nrows >= 1 && t.nrows >= 1 && ex.widths[0] == t.widths[0]);
    CHECK(t.widths[0] == nf);
    for (size_t c = 0; c < nf && c < t.widths[0] && c < ex.widths[0]; c++) {
        CHECK_STR(t.rows[0][c], ex.rows[0][c]);
        CHECK_STR(t.rows[0][c], cols[c].name);
    }
    size_t failures = 0, checked = 0;
    for (size_t r = 1; r < t.nrows; r++) {
        CHECK(t.widths[r] == nf);
        for (size_t c = 0; c < nf && c < t.widths[r]; c++) {
            const char *v = t.rows[r][c];
            bool ok = true;
            if (!*v) {
                ok = !cols[c].required;
            } else {
                checked++;
                if (cols[c].has_re && regexec(&cols[c].re, v, 0, NULL, 0) != 0)
                    ok = false;
                if (cols[c].max_length >= 0
                    && (long) s_utf8_chars(v) > cols[c].max_length)
                    ok = false;
                if (strcmp(cols[c].type, "number") == 0) {
                    char *end;
                    strtod(v, &end);
                    ok = ok && *end == '\0' && !strpbrk(v, "eE");
                }
                if (strcmp(cols[c].type, "date") == 0) {
                    regex_t d;
                    regcomp(&d, "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", REG_EXTENDED | REG_NOSUB);
                    ok = ok && regexec(&d, v, 0, NULL, 0) == 0;
                    regfree(&d);
                }
            }
            if (!ok && failures++ < 10)
                fprintf(stderr, "row %zu, %s: invalid value \"%s\"\n", r,
                        cols[c].name, v);
        }
    }
    CHECK(failures == 0);
    CHECK(checked >= expected_rows * 7); /* the required fields at least */
    s_table_free(&t);
    s_table_free(&ex);
    free(data);
    free(example);
    for (size_t i = 0; i < nf; i++) {
        free(cols[i].name);
        if (cols[i].has_re)
            regfree(&cols[i].re);
    }
    free(cols);
    json_decref(schema);
}

static void test_export_csv(mg_store_t *store)
{
    size_t count = 0;
    CHECK_RC(s_export(store, MG_FORMAT_STANDARD_CSV, s_path("a.csv"), &count), MG_OK);
    CHECK(count == 188);
    s_validate_csv(s_path("a.csv"), 188);
}

static void test_exemple(void)
{
    mg_store_t *store = s_open("exemple.db");
    mg_identity_t id;
    s_identity(&id, 2);
    mg_import_report_t *r = NULL;
    CHECK_RC(s_import(store, &id, EXEMPLE, MG_FORMAT_AUTO, &r, NULL), MG_OK);
    if (r) {
        CHECK(mg_import_report_new(r) == 1);
        CHECK(mg_import_report_unmapped(r) == 0);
    }
    mg_import_report_destroy(&r);
    char *rid = mg_import_rid("Hubik", "structure-1");
    mg_record_t *rec = NULL;
    CHECK_RC(mg_store_get(store, id.pk, rid, &rec, NULL), MG_OK);
    free(rid);
    if (rec) {
        const mg_body_t *b = mg_record_body(rec);
        CHECK(s_has(b, "typologie", "TIERS_LIEUX"));
        CHECK(s_has(b, "typologie", "ASSO"));
        CHECK(s_has(b, "site_web", "https://m.facebook.com/laquincaillerienumerique/"));
        CHECK(s_has(b, "formations_labels", "Formé à « Mon Espace Santé »"));
        CHECK(s_has(b, "modalites_accompagnement", "À distance"));
        CHECK_STR(mg_body_str(b, "horaires"), "Mo-Fr 09:00-12:00,14:00-18:30; Sa 08:30-12:00");
        double lon = 0;
        CHECK(mg_body_num(b, "longitude", &lon) == 0 && lon == 5.41423);
    }
    mg_record_destroy(&rec);
    /* And back out: still valid against the schema. */
    size_t count = 0;
    CHECK_RC(s_export(store, MG_FORMAT_STANDARD_CSV, s_path("exemple-out.csv"), &count), MG_OK);
    CHECK(count == 1);
    s_validate_csv(s_path("exemple-out.csv"), 1);
    mg_store_destroy(&store);
}

/* Export from `a`, import into a fresh store, compare. */
static void test_roundtrip_json(mg_store_t *a)
{
    size_t count = 0;
    CHECK_RC(s_export(a, MG_FORMAT_STANDARD_JSON, s_path("a.json"), &count), MG_OK);
    CHECK(count == 188);
    json_error_t err;
    json_t *j = json_load_file(s_path("a.json"), 0, &err);
    CHECK(json_is_array(j) && json_array_size(j) == 188);
    /* Lists are '|'-joined as in the standard, numbers are short. */
    CHECK(json_is_string(json_object_get(json_array_get(j, 0), "services")));
    json_decref(j);
    char *text = s_slurp(s_path("a.json"), NULL);
    CHECK(text && strstr(text, "45.681367,") && !strstr(text, "45.681367000"));
    free(text);

    mg_store_t *c = s_open("c.db");
    mg_identity_t idc;
    s_identity(&idc, 3);
    mg_import_report_t *r = NULL;
    CHECK_RC(s_import(c, &idc, s_path("a.json"), MG_FORMAT_AUTO, &r, NULL), MG_OK);
    if (r) {
        CHECK(mg_import_report_new(r) == 188);
        CHECK(mg_import_report_unmapped(r) == 23); /* still reported */
    }
    mg_import_report_destroy(&r);
    s_offers_t o = s_offers(a);
    size_t same = 0;
    for (size_t i = 0; i < o.count; i++) {
        mg_record_t *rec = NULL;
        if (mg_store_get(c, idc.pk, o.items[i].rid, &rec, NULL) == MG_OK
            && mg_body_equal(mg_record_body(rec), o.items[i].body))
            same++;
        mg_record_destroy(&rec);
    }
    CHECK(same == 188);
    s_offers_free(&o);
    /* And the export of the copy is byte for byte the same. */
    CHECK_RC(s_export(c, MG_FORMAT_STANDARD_JSON, s_path("c.json"), &count), MG_OK);
    size_t la = 0, lc = 0;
    char *ta = s_slurp(s_path("a.json"), &la), *tc = s_slurp(s_path("c.json"), &lc);
    CHECK(ta && tc && la == lc && memcmp(ta, tc, la) == 0);
    free(ta);
    free(tc);
    mg_store_destroy(&c);
}

static void test_roundtrip_csv(mg_store_t *a)
{
    mg_store_t *d = s_open("d.db");
    mg_identity_t idd;
    s_identity(&idd, 4);
    mg_import_report_t *r = NULL;
    CHECK_RC(s_import(d, &idd, s_path("a.csv"), MG_FORMAT_AUTO, &r, NULL), MG_OK);
    if (r)
        CHECK(mg_import_report_new(r) == 188);
    mg_import_report_destroy(&r);
    s_offers_t o = s_offers(a);
    size_t same = 0;
    size_t nstd = mg_offer_standard_count();
    const mg_field_t *fields = mg_offer_fields();
    for (size_t i = 0; i < o.count; i++) {
        mg_record_t *rec = NULL;
        if (mg_store_get(d, idd.pk, o.items[i].rid, &rec, NULL) != MG_OK)
            continue;
        /* Same standard fields: copy them out of both and compare. */
        mg_body_t *x = mg_body_new(), *y = mg_body_new();
        const mg_body_t *src[2] = {o.items[i].body, mg_record_body(rec)};
        mg_body_t *dst[2] = {x, y};
        for (int s = 0; s < 2; s++)
            for (size_t f = 0; f < nstd; f++) {
                const char *name = fields[f].name;
                int at = mg_body_find(src[s], name);
                if (at < 0)
                    continue;
                const char *const *items;
                double v;
                switch (mg_body_type_at(src[s], (size_t) at)) {
                case MG_VAL_STR: mg_body_set_str(dst[s], name, mg_body_str(src[s], name)); break;
                case MG_VAL_NUM: mg_body_num(src[s], name, &v); mg_body_set_num(dst[s], name, v); break;
                case MG_VAL_LIST: {
                    size_t n = mg_body_list(src[s], name, &items);
                    mg_body_set_list(dst[s], name, items, n);
                    break;
                }
                case MG_VAL_RAW: break;
                }
            }
        if (mg_body_equal(x, y))
            same++;
        mg_body_destroy(&x);
        mg_body_destroy(&y);
        mg_record_destroy(&rec);
    }
    CHECK(same == 188);
    s_offers_free(&o);
    size_t count = 0;
    CHECK_RC(s_export(d, MG_FORMAT_STANDARD_CSV, s_path("d.csv"), &count), MG_OK);
    size_t la = 0, ld = 0;
    char *ta = s_slurp(s_path("a.csv"), &la), *td = s_slurp(s_path("d.csv"), &ld);
    CHECK(ta && td && la == ld && memcmp(ta, td, la) == 0);
    free(ta);
    free(td);
    mg_store_destroy(&d);
}

static void test_geojson(mg_store_t *a)
{
    size_t count = 0;
    CHECK_RC(s_export(a, MG_FORMAT_GEOJSON, s_path("a.geojson"), &count), MG_OK);
    CHECK(count == 188);
    json_error_t err;
    json_t *g = json_load_file(s_path("a.geojson"), 0, &err);
    CHECK(g != NULL);
    CHECK_STR(json_string_value(json_object_get(g, "type")), "FeatureCollection");
    json_t *features = json_object_get(g, "features");
    CHECK(json_array_size(features) == 188);
    size_t i, good = 0;
    json_t *f;
    json_array_foreach(features, i, f) {
        json_t *geom = json_object_get(f, "geometry");
        json_t *coords = json_object_get(geom, "coordinates");
        json_t *props = json_object_get(f, "properties");
        double lon = json_number_value(json_array_get(coords, 0));
        double lat = json_number_value(json_array_get(coords, 1));
        if (strcmp(json_string_value(json_object_get(f, "type")), "Feature") == 0
            && strcmp(json_string_value(json_object_get(geom, "type")), "Point") == 0
            && json_array_size(coords) == 2
            && json_number_value(json_object_get(props, "latitude")) == lat
            && json_number_value(json_object_get(props, "longitude")) == lon
            && lat > 45 && lat < 46.2 && lon > -0.5 && lon < 0.95 /* Charente */
            && json_is_array(json_object_get(props, "services"))
            && !json_object_get(props, "non_mappe"))
            good++;
    }
    CHECK(good == 188);
    json_decref(g);
}

/* ---- refusals: each leaves the store exactly as it was ---- */

static const char *const s_valid_lieu =
    "{\"id\":\"t-%d\",\"pivot\":\"12345678900012\",\"nom\":\"Lieu %d\","
    "\"commune\":\"Angoulême\",\"code_postal\":\"16000\",\"adresse\":\"1 rue X\","
    "\"date_maj\":\"2024-01-02\",\"source\":\"test\",\"latitude\":45.65,"
    "\"services\":\"Aide aux démarches administratives\"%s}";

static void s_refused(mg_store_t *store, const mg_identity_t *id,
                      const char *name, const char *content, size_t len,
                      int expected_rc, const char *position)
{
    s_snap_t before = s_snapshot(store, id);
    s_write(s_path(name), content, len);
    mg_import_report_t *r = NULL;
    mg_why_t why;
    int rc = s_import(store, id, s_path(name), MG_FORMAT_AUTO, &r, &why);
    CHECK(rc != MG_OK);
    if (expected_rc)
        CHECK_RC(rc, expected_rc);
    CHECK(r == NULL);
    if (!strstr(why.text, position))
        fprintf(stderr, "%s: \"%s\" not in \"%s\"\n", name, position, why.text);
    CHECK(strstr(why.text, position) != NULL);
    CHECK(strstr(why.text, name) != NULL); /* the file is named */
    CHECK(mg_utf8_valid(why.text, strlen(why.text)));
    s_snap_t after = s_snapshot(store, id);
    CHECK(after.records == before.records);
    CHECK(after.max_counter == before.max_counter);
}

static void test_refusals(mg_store_t *store, const mg_identity_t *id)
{
    char buf[4096];
    /* A truncated file. */
    size_t len = 0;
    char *charente = s_slurp(CHARENTE, &len);
    CHECK(charente != NULL);
    if (charente)
        s_refused(store, id, "tronque.json", charente, len / 2,
                  MG_ERR_MALFORMED, "ligne ");
    free(charente);

    /* Wrong types. */
    int n = snprintf(buf, sizeof buf, "[");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 1, 1, "");
    n += snprintf(buf + n, sizeof buf - n, ",");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 2, 2, ",\"longitude\":\"abc\"");
    n += snprintf(buf + n, sizeof buf - n, "]");
    s_refused(store, id, "type-latitude.json", buf, (size_t) n, MG_ERR_SCHEMA,
              "lieu n° 2 du tableau (id « t-2 »)");
    CHECK(strstr(buf, "abc") != NULL);

    n = snprintf(buf, sizeof buf, "[");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 3, 3, ",\"modalites_acces\":42");
    n += snprintf(buf + n, sizeof buf - n, "]");
    s_refused(store, id, "type-nombre.json", buf, (size_t) n, MG_ERR_SCHEMA,
              "modalites_acces : un texte");

    n = snprintf(buf, sizeof buf, "[");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 4, 4, ",\"code_postal\":16000");
    n += snprintf(buf + n, sizeof buf - n, "]");
    /* A duplicate key: jansson refuses it with its position. */
    s_refused(store, id, "cle-double.json", buf, (size_t) n, MG_ERR_MALFORMED,
              "ligne 1, colonne");

    /* An invalid value of a v1 enumeration. */
    n = snprintf(buf, sizeof buf, "[");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 5, 5,
                  ",\"frais_a_charge\":\"Gratuit|Prix libre\"");
    n += snprintf(buf + n, sizeof buf - n, "]");
    s_refused(store, id, "enum.json", buf, (size_t) n, MG_ERR_SCHEMA,
              "lieu n° 1 du tableau (id « t-5 ») : frais_a_charge : « Prix libre »");

    /* Invalid UTF-8 in a JSON string. */
    n = snprintf(buf, sizeof buf, "[");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 6, 6,
                  ",\n\"horaires\":\"Lu \xff\xfe\"");
    n += snprintf(buf + n, sizeof buf - n, "]");
    s_refused(store, id, "utf8.json", buf, (size_t) n, MG_ERR_MALFORMED,
              "ligne 2, colonne");

    /* Not an array of lieux. */
    n = snprintf(buf, sizeof buf, "{\"lieux\":[]}");
    s_refused(store, id, "objet.json", buf, (size_t) n, MG_ERR_SCHEMA,
              "tableau JSON");

    /* Missing required field. */
    n = snprintf(buf, sizeof buf, "[{\"id\":\"y\",\"nom\":\"Sans adresse\"}]");
    s_refused(store, id, "requis.json", buf, (size_t) n, MG_ERR_SCHEMA,
              "lieu n° 1 du tableau (id « y »)");

    /* A valid lieu, then an invalid one: nothing written at all. */
    n = snprintf(buf, sizeof buf, "[");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 7, 7, "");
    n += snprintf(buf + n, sizeof buf - n, ",");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 8, 8,
                  ",\"modalites_acces\":\"Venir|Téléphoner\"");
    n += snprintf(buf + n, sizeof buf - n, "]");
    s_refused(store, id, "mixte.json", buf, (size_t) n, MG_ERR_SCHEMA,
              "lieu n° 2 du tableau (id « t-8 ») : modalites_acces : « Venir »");
    char *rid = mg_import_rid("test", "t-7");
    mg_record_t *rec = NULL;
    CHECK_RC(mg_store_get(store, id->pk, rid, &rec, NULL), MG_ERR_NOT_FOUND);
    free(rid);

    /* Two different lieux under the same (source, id). */
    n = snprintf(buf, sizeof buf, "[");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 9, 9, "");
    n += snprintf(buf + n, sizeof buf - n, ",");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 9, 10, "");
    n += snprintf(buf + n, sizeof buf - n, "]");
    s_refused(store, id, "doublon.json", buf, (size_t) n, MG_ERR_SCHEMA,
              "lieu n° 1 du tableau (id « t-9 ») et lieu n° 2");

    /* CSV. */
    static const char header[] =
        "id,pivot,nom,commune,code_postal,adresse,date_maj,services,latitude\n";
    n = snprintf(buf, sizeof buf, "%s%s", header,
                 "c-1,12345678900012,Lieu \xc3\x28,Cognac,16100,1 rue A,2024-01-01,,45.6\n");
    s_refused(store, id, "utf8.csv", buf, (size_t) n, MG_ERR_UTF8,
              "ligne 2, colonne 3 (« nom »)");

    n = snprintf(buf, sizeof buf, "%s%s%s", header,
                 "c-1,12345678900012,Lieu,Cognac,16100,1 rue A,2024-01-01,,45.6\n",
                 "c-2,12345678900012,Lieu \"B\",Cognac,16100,1 rue A,2024-01-01,,45.6\n");
    s_refused(store, id, "guillemets.csv", buf, (size_t) n, MG_ERR_MALFORMED,
              "ligne 3");

    n = snprintf(buf, sizeof buf, "%s%s", header,
                 "c-1,12345678900012,\"Lieu,Cognac,16100,1 rue A,2024-01-01,,45.6\n");
    s_refused(store, id, "ouvert.csv", buf, (size_t) n, MG_ERR_MALFORMED,
              "ligne 2");

    n = snprintf(buf, sizeof buf, "%s%s%s", header,
                 "c-1,12345678900012,Lieu,Cognac,16100,1 rue A,2024-01-01,,45.6\n",
                 "c-3,12345678900012,Lieu,Cognac,16100,1 rue A,2024-01-01,Cuisine moléculaire,45.6\n");
    s_refused(store, id, "enum.csv", buf, (size_t) n, MG_ERR_SCHEMA,
              "ligne 3 (id « c-3 ») : services : « Cuisine moléculaire »");

    n = snprintf(buf, sizeof buf, "%s%s", header,
                 "c-4,12345678900012,Lieu,Cognac,16100,1 rue A,2024-01-01,,nan\n");
    s_refused(store, id, "nombre.csv", buf, (size_t) n, MG_ERR_SCHEMA,
              "ligne 2 (id « c-4 ») : latitude");

    n = snprintf(buf, sizeof buf, "%s%s", header,
                 "c-5,12345678900012,Lieu,Cognac,16100,1 rue A,2024-01-01,,95.5\n");
    s_refused(store, id, "hors.csv", buf, (size_t) n, MG_ERR_SCHEMA,
              "ligne 2 (id « c-5 ») : latitude");

    n = snprintf(buf, sizeof buf, "%s%s", header,
                 "c-6,12345678900012,Lieu,Cognac,16100\n");
    s_refused(store, id, "colonnes.csv", buf, (size_t) n, MG_ERR_SCHEMA,
              "ligne 2 : 5 colonnes");

    /* A multi-line cell: the position is still the row's first line. */
    n = snprintf(buf, sizeof buf, "%s%s%s", header,
                 "c-7,12345678900012,\"Lieu\nsur deux lignes\",Cognac,16100,1 rue A,2024-01-01,,45.6\n",
                 "c-8,123,Lieu,Cognac,16100,1 rue A,2024-01-01,,45.6\n");
    s_refused(store, id, "pivot.csv", buf, (size_t) n, MG_ERR_SCHEMA,
              "ligne 4 (id « c-8 ») : pivot");

    /* Limits: a text over MG_STRING_MAX, a lieu over MG_RECORD_MAX once
       encoded, a file over 256 MiB (sparse: nothing is really written). */
    char *big = malloc(80000);
    char *fill = malloc(MG_STRING_MAX + 2);
    memset(fill, 'a', MG_STRING_MAX + 1);
    fill[MG_STRING_MAX + 1] = '\0';
    n = snprintf(big, 80000, "[");
    char extra[MG_STRING_MAX + 64];
    snprintf(extra, sizeof extra, ",\"presentation_detail\":\"%s\"", fill);
    n += snprintf(big + n, 80000 - n, s_valid_lieu, 11, 11, extra);
    n += snprintf(big + n, 80000 - n, "]");
    s_refused(store, id, "long.json", big, (size_t) n, MG_ERR_TOO_LARGE,
              "lieu n° 1 du tableau (id « t-11 ») : presentation_detail : texte trop long");
    fill[8000] = '\0';
    n = snprintf(big, 80000, "[");
    n += snprintf(big + n, 80000 - n, s_valid_lieu, 12, 12, "");
    n--; /* reopen the object */
    for (int k = 0; k < 9; k++)
        n += snprintf(big + n, 80000 - n, ",\"champ_%d\":\"%s\"", k, fill);
    n += snprintf(big + n, 80000 - n, "}]");
    s_refused(store, id, "gros.json", big, (size_t) n, MG_ERR_TOO_LARGE,
              "lieu n° 1 du tableau (id « t-12 ») : fiche trop grosse");
    free(fill);
    free(big);
    FILE *huge = fopen(s_path("enorme.csv"), "wb");
    CHECK(huge && ftruncate(fileno(huge), (off_t) 256 * 1024 * 1024 + 1) == 0);
    if (huge)
        fclose(huge);
    s_snap_t before = s_snapshot(store, id);
    mg_why_t why;
    CHECK_RC(mg_import_file(store, id, s_path("enorme.csv"), MG_FORMAT_AUTO,
                            NULL, NULL, NULL, &why), MG_ERR_TOO_LARGE);
    CHECK(strstr(why.text, "trop gros") != NULL);
    unlink(s_path("enorme.csv"));
    s_snap_t after = s_snapshot(store, id);
    CHECK(after.records == before.records && after.max_counter == before.max_counter);

    /* An empty array is a valid, empty import. */
    s_write(s_path("vide.json"), "[]", 2);
    mg_import_report_t *r = NULL;
    CHECK_RC(s_import(store, id, s_path("vide.json"), MG_FORMAT_AUTO, &r, NULL), MG_OK);
    CHECK(r && mg_import_report_read(r) == 0);
    mg_import_report_destroy(&r);

    s_refused(store, id, "absent.json", "", 0, 0, "absent.json");
    unlink(s_path("absent.json"));
    CHECK_RC(mg_import_file(store, id, s_path("absent.json"), MG_FORMAT_AUTO,
                            NULL, NULL, NULL, &why), MG_ERR_NOT_FOUND);
}

/* Older and unknown fields, separators, a BOM and CRLF, an update. */
static void test_mapping(void)
{
    mg_store_t *store = s_open("mapping.db");
    mg_identity_t id;
    s_identity(&id, 5);
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "[");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 1, 1,
                  ",\"publics_accueillis\":\"Adultes;Seniors (+ 65 ans);Surdité\","
                  "\"labels_nationaux\":\"APTIC;Fabriques de Territoire\","
                  "\"cle_ban\":\"16015_1234\",\"capacite\":12,"
                  "\"courriel\":\"a@b.fr;c@d.fr\",\"courriels\":\"a@b.fr\","
                  "\"accessibilite\":\"https://acceslibre/1\","
                  "\"fiche_acces_libre\":\"https://acceslibre/2\","
                  "\"modalites_accompagnement\":[\"À distance\",\"Seul : j’ai accès à du matériel et une connexion\"],"
                  "\"horaires\":null,\"site_web\":\"\"");
    n += snprintf(buf + n, sizeof buf - n, "]");
    s_write(s_path("mapping.json"), buf, (size_t) n);
    mg_import_report_t *r = NULL;
    CHECK_RC(s_import(store, &id, s_path("mapping.json"), MG_FORMAT_AUTO, &r, NULL), MG_OK);
    if (r) {
        mg_import_report_print(r, stdout);
        CHECK(mg_import_report_count(r, "cle_ban", NULL, NULL, NULL) == 1);
        CHECK(mg_import_report_count(r, "capacite", NULL, NULL, NULL) == 1);
        CHECK(mg_import_report_count(r, "labels_nationaux", "APTIC", NULL, NULL) == 1);
        CHECK(mg_import_report_count(r, "modalites_accompagnement",
                                     "Seul : j'ai accès à du matériel et une connexion",
                                     "modalites_accompagnement", "En autonomie") == 1);
        /* Adultes, APTIC, cle_ban, capacite, the second fiche_acces_libre. */
        CHECK(mg_import_report_unmapped(r) == 5);
    }
    mg_import_report_destroy(&r);
    char *rid = mg_import_rid("test", "t-1");
    mg_record_t *rec = NULL;
    CHECK_RC(mg_store_get(store, id.pk, rid, &rec, NULL), MG_OK);
    if (rec) {
        const mg_body_t *b = mg_record_body(rec);
        CHECK(s_has(b, "publics_specifiquement_adresses", "Seniors"));
        CHECK(s_has(b, "prise_en_charge_specifique", "Surdité"));
        CHECK(s_has(b, "formations_labels", "Fabriques de Territoire"));
        const char *const *items;
        CHECK(mg_body_list(b, "courriels", &items) == 2);
        CHECK(s_has(b, "courriels", "c@d.fr"));
        CHECK_STR(mg_body_str(b, "fiche_acces_libre"), "https://acceslibre/2");
        CHECK(s_has(b, "modalites_accompagnement", "En autonomie"));
        CHECK(mg_body_find(b, "horaires") < 0);
        CHECK(mg_body_find(b, "site_web") < 0);
        json_t *j = mg_body_to_json(b);
        json_t *nm = json_object_get(j, "non_mappe");
        CHECK_STR(json_string_value(json_object_get(nm, "publics_accueillis")), "Adultes");
        CHECK_STR(json_string_value(json_object_get(nm, "labels_nationaux")), "APTIC");
        CHECK_STR(json_string_value(json_object_get(nm, "cle_ban")), "16015_1234");
        CHECK_STR(json_string_value(json_object_get(nm, "capacite")), "12");
        CHECK_STR(json_string_value(json_object_get(nm, "accessibilite")), "https://acceslibre/1");
        json_decref(j);
    }
    mg_record_destroy(&rec);

    /* An update: one new version, counter + 1. */
    n = snprintf(buf, sizeof buf, "[");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 1, 1, "");
    n += snprintf(buf + n, sizeof buf - n, ",");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 2, 2, "");
    n += snprintf(buf + n, sizeof buf - n, ",");
    n += snprintf(buf + n, sizeof buf - n, s_valid_lieu, 2, 2, ""); /* identical twice */
    n += snprintf(buf + n, sizeof buf - n, "]");
    s_write(s_path("update.json"), buf, (size_t) n);
    uint64_t before = 0, after = 0;
    mg_store_max_counter(store, id.pk, &before);
    CHECK_RC(s_import(store, &id, s_path("update.json"), MG_FORMAT_STANDARD_JSON, &r, NULL), MG_OK);
    if (r) {
        CHECK(mg_import_report_read(r) == 3);
        CHECK(mg_import_report_updated(r) == 1);
        CHECK(mg_import_report_new(r) == 1);
        CHECK(mg_import_report_unchanged(r) == 0);
    }
    mg_import_report_destroy(&r);
    mg_store_max_counter(store, id.pk, &after);
    CHECK(after == before + 2);
    CHECK_RC(mg_store_get(store, id.pk, rid, &rec, NULL), MG_OK);
    CHECK(rec && mg_record_counter(rec) == before + 1);
    CHECK(rec && mg_body_find(mg_record_body(rec), "non_mappe") < 0);
    mg_record_destroy(&rec);
    free(rid);

    /* CSV with a BOM, CRLF, quoted cells, old labels separated by ';'. */
    static const char csv[] =
        "\xef\xbb\xbf\"id\",\"pivot\",\"nom\",\"commune\",\"code_postal\",\"adresse\","
        "\"date_maj\",\"services\",\"latitude\",\"longitude\",\"conditions_acces\"\r\n"
        "\"v-1\",\"12345678900012\",\"Le \"\"Lieu\"\", ici\",\"Ruffec\",\"16700\","
        "\"2 place\r\nde la Mairie\",\"2023-05-06\","
        "\"Prendre en main un ordinateur;Accéder à du matériel\",\"46.0299\",\"0.1986\","
        "\"Payant : L'accès au lieu et/ou à ses services est payant\"\r\n";
    s_write(s_path("bom.csv"), csv, sizeof csv - 1);
    CHECK_RC(s_import(store, &id, s_path("bom.csv"), MG_FORMAT_AUTO, &r, NULL), MG_OK);
    if (r) {
        CHECK(mg_import_report_new(r) == 1);
        CHECK(mg_import_report_count(r, "services", ";", NULL, NULL) == 1);
    }
    mg_import_report_destroy(&r);
    rid = mg_import_rid(NULL, "v-1");
    CHECK_RC(mg_store_get(store, id.pk, rid, &rec, NULL), MG_OK);
    free(rid);
    if (rec) {
        const mg_body_t *b = mg_record_body(rec);
        CHECK_STR(mg_body_str(b, "nom"), "Le \"Lieu\", ici");
        CHECK_STR(mg_body_str(b, "adresse"), "2 place\r\nde la Mairie");
        CHECK(s_has(b, "services", "Maîtrise des outils numériques du quotidien"));
        CHECK(s_has(b, "services", "Accès internet et matériel informatique"));
        CHECK(s_has(b, "frais_a_charge", "Payant"));
        double lat = 0;
        CHECK(mg_body_num(b, "latitude", &lat) == 0 && lat == 46.0299);
    }
    mg_record_destroy(&rec);
    mg_store_destroy(&store);
}

int main(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/mg_test_import_XXXXXX");
    if (!mkdtemp(s_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_formats();
    test_json();

    mg_store_t *a = s_open("a.db");
    mg_identity_t ida;
    s_identity(&ida, 1);
    if (a) {
        test_charente(a, &ida);
        test_reimport(a, &ida);
        test_export_csv(a);
        test_roundtrip_json(a);
        test_roundtrip_csv(a);
        test_geojson(a);
        test_refusals(a, &ida);
    }
    mg_store_destroy(&a);
    test_exemple();
    test_mapping();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_dir);
    return mg_test_done("test_import");
}
