/*  mg_export.c - writing the store's offers in the national standard.

    Everything is streamed, one offer at a time, straight from the store's
    iteration: exporting the national picture (~20,000 offers) needs the
    memory of one offer. Numbers are printed in the C locale, whatever the
    program's, with the fewest digits that read back to the same double,
    so that export -> import gives the same bodies.
*/
#include "mg_export.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "mg_json.h"
#include "mg_offer.h"

/* Lines end with CRLF, as RFC 4180 says (every CSV reader accepts it, and
   spreadsheets expect it). */
#define S_CSV_EOL "\r\n"

typedef struct {
    mg_format_t format;
    FILE *out;
    size_t count;   /* offers written */
    mg_why_t *why;
} s_export_t;

/* ---------------------------------------------------------------------
   Numbers
   --------------------------------------------------------------------- */

/* Shortest "%g" text that strtod reads back as v (valid JSON for any
   finite v). The caller has switched to the C locale. */
static void s_num_shortest(double v, char out[40])
{
    for (int p = 1; p <= 17; p++) {
        snprintf(out, 40, "%.*g", p, v);
        if (strtod(out, NULL) == v)
            return;
    }
    snprintf(out, 40, "%.17g", v);
}

/* Shortest fixed-point text (no exponent: the standard's CSV readers
   expect "45.681367", not "4.5681367e+01") that reads back as v. */
static void s_num_fixed(double v, char out[40])
{
    for (int p = 0; p <= 20; p++) {
        int n = snprintf(out, 40, "%.*f", p, v);
        if (n > 0 && n < 40 && strtod(out, NULL) == v)
            return;
    }
    s_num_shortest(v, out);
}

/* ---------------------------------------------------------------------
   JSON output with shortest numbers (jansson prints reals with 17
   significant digits: 45.681367 would come out as 45.681367000000002)
   --------------------------------------------------------------------- */

static void s_json_write(FILE *out, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        fputc('{', out);
        const char *key;
        json_t *val;
        bool first = true;
        json_object_foreach((json_t *) v, key, val) {
            if (!first)
                fputc(',', out);
            first = false;
            json_t *k = json_string(key);
            s_json_write(out, k);
            json_decref(k);
            fputc(':', out);
            s_json_write(out, val);
        }
        fputc('}', out);
        break;
    }
    case JSON_ARRAY:
        fputc('[', out);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                fputc(',', out);
            s_json_write(out, json_array_get(v, i));
        }
        fputc(']', out);
        break;
    case JSON_REAL: {
        char num[40];
        s_num_shortest(json_real_value(v), num);
        fputs(num, out);
        break;
    }
    default: {
        /* Strings, integers, true, false, null: jansson's own escaping. */
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (s)
            fputs(s, out);
        else
            fputs("null", out);
        free(s);
        break;
    }
    }
}

/* ---------------------------------------------------------------------
   Offers
   --------------------------------------------------------------------- */

/* The standard's local id of an offer: its own, or else the record id
   (the standard requires one; offers authored in maillage may lack it). */
static const char *s_std_id(const mg_record_t *rec)
{
    const char *id = mg_body_str(mg_record_body(rec), "id");
    return id ? id : mg_record_rid(rec);
}

static void s_csv_cell(FILE *out, const char *s, bool first)
{
    if (!first)
        fputc(',', out);
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void s_csv_header(FILE *out)
{
    const mg_field_t *fields = mg_offer_fields();
    size_t n = mg_offer_standard_count();
    for (size_t i = 0; i < n; i++)
        s_csv_cell(out, fields[i].name, i == 0);
    fputs(S_CSV_EOL, out);
}

static int s_csv_offer(s_export_t *ex, const mg_record_t *rec)
{
    const mg_body_t *body = mg_record_body(rec);
    const mg_field_t *fields = mg_offer_fields();
    size_t n = mg_offer_standard_count();
    for (size_t i = 0; i < n; i++) {
        const char *name = fields[i].name;
        int at = mg_body_find(body, name);
        if (strcmp(name, "id") == 0) {
            s_csv_cell(ex->out, s_std_id(rec), i == 0);
            continue;
        }
        if (at < 0) {
            s_csv_cell(ex->out, "", i == 0);
            continue;
        }
        switch (mg_body_type_at(body, (size_t) at)) {
        case MG_VAL_STR: s_csv_cell(ex->out, mg_body_str(body, name), i == 0); break;
        case MG_VAL_NUM: {
            double v = 0;
            char num[40];
            mg_body_num(body, name, &v);
            s_num_fixed(v, num);
            s_csv_cell(ex->out, num, i == 0);
            break;
        }
        case MG_VAL_LIST: {
            const char *const *items;
            size_t k = mg_body_list(body, name, &items);
            size_t len = 1;
            for (size_t j = 0; j < k; j++)
                len += strlen(items[j]) + 1;
            char *joined = malloc(len);
            if (!joined)
                return MG_ERR_NOMEM;
            joined[0] = '\0';
            for (size_t j = 0; j < k; j++) {
                if (j)
                    strcat(joined, "|");
                strcat(joined, items[j]);
            }
            s_csv_cell(ex->out, joined, i == 0);
            free(joined);
            break;
        }
        case MG_VAL_RAW: s_csv_cell(ex->out, "", i == 0); break;
        }
    }
    fputs(S_CSV_EOL, ex->out);
    return MG_OK;
}

/* A list as the standard writes it: one '|'-joined text. An item holding
   '|' itself (which validation refuses) keeps the array, so nothing is
   ever split differently on the way back in. */
static json_t *s_joined(json_t *array)
{
    size_t len = 1;
    for (size_t i = 0; i < json_array_size(array); i++) {
        const char *s = json_string_value(json_array_get(array, i));
        if (!s || strchr(s, '|'))
            return json_incref(array);
        len += strlen(s) + 1;
    }
    char *joined = malloc(len);
    if (!joined)
        return NULL;
    joined[0] = '\0';
    for (size_t i = 0; i < json_array_size(array); i++) {
        if (i)
            strcat(joined, "|");
        strcat(joined, json_string_value(json_array_get(array, i)));
    }
    json_t *s = json_string(joined);
    free(joined);
    return s;
}

/* The offer as the standard's JSON: its fields in the standard's order,
   lists '|'-joined, then maillage's fields, then everything else the body
   holds (non_mappe, fields of newer versions). */
static json_t *s_json_offer(const mg_record_t *rec, bool standard_only,
                            bool join_lists)
{
    json_t *all = mg_body_to_json(mg_record_body(rec));
    json_t *obj = json_object();
    if (!all || !obj) {
        json_decref(all);
        json_decref(obj);
        return NULL;
    }
    int err = 0;
    if (!json_object_get(all, "id"))
        err |= json_object_set_new(all, "id", json_string(s_std_id(rec)));
    for (const mg_field_t *f = mg_offer_fields(); f->name && !err; f++) {
        if (standard_only && !f->standard)
            break;
        json_t *v = json_object_get(all, f->name);
        if (!v)
            continue;
        if (join_lists && json_is_array(v)
            && (f->type == MG_FT_LIST || f->type == MG_FT_ENUM))
            err |= json_object_set_new(obj, f->name, s_joined(v));
        else
            err |= json_object_set(obj, f->name, v);
        json_object_del(all, f->name);
    }
    if (!standard_only) {
        const char *key;
        json_t *v;
        json_object_foreach(all, key, v)
            err |= json_object_set(obj, key, v);
    }
    json_decref(all);
    if (err) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static int s_geojson_offer(s_export_t *ex, const mg_record_t *rec)
{
    const mg_body_t *body = mg_record_body(rec);
    double lat, lon;
    if (mg_body_num(body, "latitude", &lat) != 0
        || mg_body_num(body, "longitude", &lon) != 0)
        return MG_OK; /* no place on a map */
    json_t *props = s_json_offer(rec, true, false);
    json_t *feature = props
        ? json_pack("{s:s, s:s, s:{s:s, s:[f, f]}, s:o}", "type", "Feature",
                    "id", mg_record_rid(rec), "geometry", "type", "Point",
                    "coordinates", lon, lat, "properties", props)
        : NULL;
    if (!feature)
        return MG_ERR_NOMEM;
    fputs(ex->count ? ",\n" : "\n", ex->out);
    s_json_write(ex->out, feature);
    json_decref(feature);
    ex->count++;
    return MG_OK;
}

static int s_on_offer(const mg_record_t *rec, void *arg)
{
    s_export_t *ex = arg;
    int rc = MG_OK;
    switch (ex->format) {
    case MG_FORMAT_STANDARD_CSV:
        rc = s_csv_offer(ex, rec);
        if (rc == MG_OK)
            ex->count++;
        break;
    case MG_FORMAT_STANDARD_JSON: {
        json_t *obj = s_json_offer(rec, false, true);
        if (!obj)
            return MG_ERR_NOMEM;
        fputs(ex->count ? ",\n" : "\n", ex->out);
        s_json_write(ex->out, obj);
        json_decref(obj);
        ex->count++;
        break;
    }
    case MG_FORMAT_GEOJSON: rc = s_geojson_offer(ex, rec); break;
    case MG_FORMAT_AUTO: rc = MG_ERR_ARG; break;
    }
    if (rc == MG_OK && ferror(ex->out))
        rc = MG_ERR_IO;
    return rc;
}

int mg_export(mg_store_t *store, mg_format_t format,
              const mg_offer_query_t *query, FILE *out, size_t *count,
              mg_why_t *why)
{
    if (count)
        *count = 0;
    if (!store || !out)
        return mg_why_set(why, MG_ERR_ARG, "export : argument manquant");
    if (format != MG_FORMAT_STANDARD_CSV && format != MG_FORMAT_STANDARD_JSON
        && format != MG_FORMAT_GEOJSON)
        return mg_why_set(why, MG_ERR_ARG,
                          "export : choisissez un format (standard-csv, "
                          "standard-json ou geojson)");
    /* Decimal points, never commas, whatever the user's locale. */
    locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t) 0);
    if (!c_locale)
        return mg_why_set(why, MG_ERR_NOMEM, "mémoire insuffisante");
    locale_t old = uselocale(c_locale);

    s_export_t ex = {.format = format, .out = out, .why = why};
    if (format == MG_FORMAT_STANDARD_CSV)
        s_csv_header(out);
    else if (format == MG_FORMAT_STANDARD_JSON)
        fputs("[", out);
    else
        fputs("{\"type\":\"FeatureCollection\",\"features\":[", out);
    mg_why_t w;
    mg_why_clear(&w);
    int rc = mg_store_offers(store, query, s_on_offer, &ex, &w);
    if (rc == MG_OK) {
        if (format == MG_FORMAT_STANDARD_JSON)
            fputs(ex.count ? "\n]\n" : "]\n", out);
        else if (format == MG_FORMAT_GEOJSON)
            fputs(ex.count ? "\n]}\n" : "]}\n", out);
        if (fflush(out) != 0 || ferror(out))
            rc = MG_ERR_IO;
    }
    uselocale(old);
    freelocale(c_locale);
    if (count)
        *count = ex.count;
    if (rc == MG_ERR_IO)
        return mg_why_set(why, rc, "export : erreur d'écriture (disque plein ?)");
    if (rc != MG_OK)
        return mg_why_set(why, rc, "export : %s",
                          w.text[0] ? w.text : mg_strerror(rc));
    return MG_OK;
}
