/*  mg_cmd_analysis.c - the coordinator's commands: overlaps, duplicates,
    gaps, complementarities, diagnostic, check.

    Each reads the store once (mg_analysis_load), runs one analysis of
    store/mg_analysis.h, and prints it for a person (French, 80 columns),
    as JSON (--json) for tools, or as GeoJSON (--geojson) for a map.
    Methods and scores: docs/analysis.md.
*/
#include "mg_cmd_analysis.h"

#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "mg_capture.h"
#include "mg_cli.h"
#include "mg_json.h"
#include "mg_offer.h"
#include "mg_text.h"

/* ------------------------------------------------------------------ */
/* Command-line plumbing                                                */

/* A distance in km: a positive decimal number (C locale; "2,5" is
   accepted as a convenience since French users type it). */
static bool s_parse_km(const char *text, double *out)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *p = buf; *p; p++)
        if (*p == ',')
            *p = '.';
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || end == buf || *end || !isfinite(v) || v <= 0 || v > 20000) {
        mg_errorf("maillage : distance invalide : « %s » (en km, ex. 5 ou 2.5)\n", text);
        return false;
    }
    *out = v;
    return true;
}

static bool s_parse_count(const char *text, size_t *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 0 || v > 1000000) {
        mg_errorf("maillage : nombre invalide : « %s »\n", text);
        return false;
    }
    *out = (size_t) v;
    return true;
}

/* The canonical label of an enumeration value typed by a person, or
   NULL after listing the allowed ones. */
static const char *s_enum_value(const char *field_name, const char *value)
{
    const mg_field_t *f = mg_offer_field(field_name);
    char *want = mg_fold(value);
    const char *found = NULL;
    for (size_t i = 0; want && f && f->values[i] && !found; i++) {
        char *have = mg_fold(f->values[i]);
        if (have && strcmp(have, want) == 0)
            found = f->values[i];
        free(have);
    }
    free(want);
    if (!found && f) {
        mg_errorf("maillage : valeur inconnue « %s ». Valeurs possibles :\n", value);
        for (size_t i = 0; f->values[i]; i++)
            mg_errorf("  %s\n", f->values[i]);
    }
    return found;
}

/* qsort, but never called with an empty (possibly NULL) array, which
   the C library does not allow. */
static void s_sort(void *base, size_t n, size_t size,
                   int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

/* ------------------------------------------------------------------ */
/* Formatting                                                           */

/* "353 154" */
static void s_fmt_int(int64_t v, char *out, size_t size)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", (long long) (v < 0 ? -v : v));
    size_t n = strlen(digits), w = 0;
    if (v < 0 && w + 1 < size)
        out[w++] = '-';
    for (size_t i = 0; i < n && w + 2 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[w++] = ' ';
        out[w++] = digits[i];
    }
    out[w] = '\0';
}

/* "3,2" with one decimal and a decimal comma. */
static void s_fmt_dec(double v, char *out, size_t size)
{
    snprintf(out, size, "%.1f", v);
    for (char *p = out; *p; p++)
        if (*p == '.')
            *p = ',';
}

static void s_decimal_comma(char *s)
{
    for (; *s; s++)
        if (*s == '.')
            *s = ',';
}

static void s_fmt_km(double km, char *out, size_t size)
{
    if (km < 0) {
        snprintf(out, size, "distance inconnue");
        return;
    }
    if (km < 1) {
        snprintf(out, size, "%d m", (int) floor(km * 1000 + 0.5));
        return;
    }
    if (km > 1e6)
        km = 1e6;
    if (fabs(km - floor(km + 0.5)) < 0.05)
        snprintf(out, size, "%.0f km", km); /* "10 km", not "10,0 km" */
    else
        snprintf(out, size, "%.1f km", km);
    s_decimal_comma(out);
}

static void s_fmt_pct(int64_t part, int64_t whole, char *out, size_t size)
{
    if (whole <= 0) {
        snprintf(out, size, "—");
        return;
    }
    snprintf(out, size, "%.1f %%", 100.0 * (double) part / (double) whole);
    s_decimal_comma(out);
}

/* Display width of UTF-8 text in terminal columns. */
static int s_width(const char *text, size_t len)
{
    int w = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *) text;
    utf8proc_ssize_t left = (utf8proc_ssize_t) len;
    while (left > 0) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p, left, &cp);
        if (k <= 0)
            break;
        w += utf8proc_charwidth(cp);
        p += k;
        left -= k;
    }
    return w;
}

/* Prints `text` wrapped at 80 columns: `first` before the first line,
   then lines indented by `indent` columns. */
static void s_wrapped_at(FILE *out, const char *first, int indent, const char *text)
{
    fputs(first, out);
    int col = s_width(first, strlen(first));
    const char *p = text;
    bool line_start = true;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t len = sp ? (size_t) (sp - p) : strlen(p);
        int w = s_width(p, len);
        if (!line_start && col + 1 + w > 80) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
            line_start = true;
        }
        if (!line_start) {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, len, out);
        col += w;
        line_start = false;
        p += len;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

/* Same, continuation lines under the text's first column. */
static void s_wrapped(FILE *out, const char *first, const char *text)
{
    s_wrapped_at(out, first, s_width(first, strlen(first)), text);
}

/* The labels of a mask joined with ", " into a new string. */
static char *s_labels(const mg_analysis_t *an, mg_afield_t f, uint64_t mask)
{
    size_t len = 1;
    for (unsigned b = 0; b < 64; b++)
        if ((mask >> b) & 1) {
            const char *l = mg_analysis_label(an, f, b);
            len += (l ? strlen(l) : 1) + 2;
        }
    char *out = malloc(len);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (unsigned b = 0; b < 64; b++)
        if ((mask >> b) & 1) {
            const char *l = mg_analysis_label(an, f, b);
            if (out[0])
                strcat(out, ", ");
            strcat(out, l ? l : "?");
        }
    return out;
}

static json_t *s_labels_json(const mg_analysis_t *an, mg_afield_t f,
                             uint64_t mask)
{
    json_t *a = json_array();
    for (unsigned b = 0; b < 64; b++)
        if ((mask >> b) & 1) {
            const char *l = mg_analysis_label(an, f, b);
            json_array_append_new(a, json_string(l ? l : "?"));
        }
    return a;
}

static void s_dump(json_t *j)
{
    if (mg_capture_json(j)) /* the HTTP API (mg_capture.h) */
        return;
    /* 10 significant digits: 46.09989, not 46.099890000000002. */
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    printf("\n");
}

/* A short form of an offer: "1a2b3c4d" (8 characters of the rid). */
static void s_short_id(const mg_aoffer_t *o, char out[9])
{
    snprintf(out, 9, "%.8s", o->rid);
}

/* JSON of an offer as the analyses show it. */
static json_t *s_offer_json(const mg_aoffer_t *o)
{
    char hex[2 * MG_KEY_BYTES + 1];
    mg_hex_encode(o->author, MG_KEY_BYTES, hex);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", o->rid, "author", hex,
                          "nom", o->nom, "commune", o->commune, "code_postal",
                          o->code_postal);
    if (o->adresse)
        json_object_set_new(j, "adresse", json_string(o->adresse));
    if (o->insee[0])
        json_object_set_new(j, "code_insee", json_string(o->insee));
    if (o->source)
        json_object_set_new(j, "source", json_string(o->source));
    if (o->id_standard)
        json_object_set_new(j, "id_standard", json_string(o->id_standard));
    if (o->pivot)
        json_object_set_new(j, "pivot", json_string(o->pivot));
    if (o->loc != MG_LOC_NONE) {
        json_object_set_new(j, "latitude", json_real(o->lat));
        json_object_set_new(j, "longitude", json_real(o->lng));
    }
    json_object_set_new(j, "localisation",
                        json_string(o->loc == MG_LOC_COORDS   ? "coordonnees"
                                    : o->loc == MG_LOC_CENTRE ? "centre_commune"
                                                              : "inconnue"));
    if (o->horaires)
        json_object_set_new(j, "horaires", json_string(o->horaires));
    return j;
}

/* A distance in km for JSON, to the metre. */
static json_t *s_km_json(double km)
{
    return json_real(floor(km * 1000.0 + 0.5) / 1000.0);
}

static json_t *s_point(double lat, double lng)
{
    return json_pack("{s:s,s:[f,f]}", "type", "Point", "coordinates", lng, lat);
}

/* Offers with horaires no one can read: reported, then ignored. */
static void s_unreadable_text(const mg_analysis_t *an, FILE *out)
{
    size_t n = 0;
    for (size_t i = 0; i < mg_analysis_count(an); i++)
        if (mg_analysis_offer(an, i)->hours_state == MG_HOURS_UNREADABLE)
            n++;
    if (!n)
        return;
    fprintf(out, "\nHoraires illisibles, ignorés (%zu offre%s) :\n", n, n > 1 ? "s" : "");
    for (size_t i = 0; i < mg_analysis_count(an); i++) {
        const mg_aoffer_t *o = mg_analysis_offer(an, i);
        if (o->hours_state != MG_HOURS_UNREADABLE)
            continue;
        char id[9], first[128];
        s_short_id(o, id);
        snprintf(first, sizeof first, "  %s  ", id);
        char line[1536];
        snprintf(line, sizeof line, "%s (%s) : « %s » — %s", o->nom, o->commune,
                 o->horaires, o->hours_why);
        s_wrapped(out, first, line);
    }
}

static json_t *s_unreadable_json(const mg_analysis_t *an)
{
    json_t *a = json_array();
    for (size_t i = 0; i < mg_analysis_count(an); i++) {
        const mg_aoffer_t *o = mg_analysis_offer(an, i);
        if (o->hours_state != MG_HOURS_UNREADABLE)
            continue;
        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s}", "id", o->rid,
                                           "nom", o->nom, "horaires", o->horaires,
                                           "raison", o->hours_why));
    }
    return a;
}

/* ------------------------------------------------------------------ */
/* The communes table                                                   */

#define S_COMMUNES_MAX_BYTES (64u << 20) /* the national table is ~5 MiB */

enum { S_C_INSEE, S_C_NOM, S_C_ARTICLE, S_C_POSTAL, S_C_TYPE, S_C_PARENT,
       S_C_LAT, S_C_LNG, S_C_POP, S_C_COUNT };

typedef struct {
    const char *path;
    mg_communes_t *communes;
    size_t line;          /* line being parsed */
    size_t row;           /* rows seen, header included */
    char **cells;
    size_t ncells, cap;
    int col[S_C_COUNT];   /* column of each field, -1 */
    bool header_done;
    int rc;
    mg_why_t *why;
} s_ccsv_t;

static void s_ccsv_field(void *s, size_t len, void *arg)
{
    s_ccsv_t *c = arg;
    if (c->rc != MG_OK)
        return;
    if (c->ncells == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 32;
        if (cap > 4096) {
            c->rc = mg_why_set(c->why, MG_ERR_TOO_LARGE, "%s, ligne %zu : trop de colonnes",
                               c->path, c->line);
            return;
        }
        char **cells = realloc(c->cells, cap * sizeof *cells);
        if (!cells) {
            c->rc = MG_ERR_NOMEM;
            return;
        }
        c->cells = cells;
        c->cap = cap;
    }
    char *cell = malloc(len + 1);
    if (!cell) {
        c->rc = MG_ERR_NOMEM;
        return;
    }
    memcpy(cell, s ? s : "", len);
    cell[len] = '\0';
    /* Trim blanks. */
    size_t a = 0, b = len;
    while (a < b && (cell[a] == ' ' || cell[a] == '\t' || cell[a] == '\r'))
        a++;
    while (b > a && (cell[b - 1] == ' ' || cell[b - 1] == '\t' || cell[b - 1] == '\r'))
        b--;
    memmove(cell, cell + a, b - a);
    cell[b - a] = '\0';
    c->cells[c->ncells++] = cell;
}

static const char *s_cell(const s_ccsv_t *c, int field)
{
    int col = c->col[field];
    if (col < 0 || (size_t) col >= c->ncells)
        return "";
    return c->cells[col];
}

static bool s_number(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static void s_ccsv_header(s_ccsv_t *c)
{
    static const char *const names[S_C_COUNT][6] = {
        [S_C_INSEE] = {"insee_com", "code_insee", "codgeo", "insee", "com", NULL},
        [S_C_NOM] = {"commune", "nom_commune", "nom", "libelle", "ncc", NULL},
        [S_C_ARTICLE] = {"commune_article", "nom_article", NULL},
        [S_C_POSTAL] = {"code_postal", "cp", "codepostal", NULL},
        [S_C_TYPE] = {"commune_type", "typecom", "type", NULL},
        [S_C_PARENT] = {"insee_parente", "comparent", "parent", NULL},
        [S_C_LAT] = {"lat", "latitude", NULL},
        [S_C_LNG] = {"lng", "lon", "long", "longitude", NULL},
        [S_C_POP] = {"population_2021", "population", "pmun", "ptot", NULL},
    };
    for (int f = 0; f < S_C_COUNT; f++) {
        c->col[f] = -1;
        for (int k = 0; names[f][k] && c->col[f] < 0; k++)
            for (size_t i = 0; i < c->ncells; i++)
                if (strcasecmp(c->cells[i], names[f][k]) == 0) {
                    c->col[f] = (int) i;
                    break;
                }
    }
    /* population_20xx of another year. */
    for (size_t i = 0; c->col[S_C_POP] < 0 && i < c->ncells; i++)
        if (strncasecmp(c->cells[i], "population", 10) == 0)
            c->col[S_C_POP] = (int) i;
    static const char *const required[] = {"code INSEE (insee_com)", "nom (commune)",
                                           NULL, NULL, NULL, NULL,
                                           "latitude (lat)", "longitude (lng)",
                                           "population (population_2021)"};
    for (int f = 0; f < S_C_COUNT; f++)
        if (required[f] && c->col[f] < 0) {
            c->rc = mg_why_set(c->why, MG_ERR_SCHEMA,
                               "%s : colonne %s introuvable dans l'en-tête",
                               c->path, required[f]);
            return;
        }
    c->header_done = true;
}

static void s_ccsv_row(int term, void *arg)
{
    s_ccsv_t *c = arg;
    (void) term;
    c->row++;
    if (c->rc == MG_OK) {
        for (size_t i = 0; i < c->ncells; i++)
            if (!mg_utf8_valid(c->cells[i], strlen(c->cells[i]))) {
                c->rc = mg_why_set(c->why, MG_ERR_UTF8,
                                   "%s, ligne %zu : texte qui n'est pas de l'UTF-8 valide",
                                   c->path, c->line);
                break;
            }
    }
    if (c->rc == MG_OK && !c->header_done) {
        s_ccsv_header(c);
    } else if (c->rc == MG_OK && !(c->ncells == 1 && !c->cells[0][0])) {
        double lat = 0, lng = 0, pop = -1;
        const char *tlat = s_cell(c, S_C_LAT), *tlng = s_cell(c, S_C_LNG);
        const char *tpop = s_cell(c, S_C_POP);
        bool has_pos = *tlat && *tlng;
        if (has_pos && (!s_number(tlat, &lat) || !s_number(tlng, &lng)))
            c->rc = mg_why_set(c->why, MG_ERR_SCHEMA,
                               "%s, ligne %zu : coordonnées illisibles (« %s », « %s ») ; "
                               "le séparateur décimal est le point",
                               c->path, c->line, tlat, tlng);
        else if (*tpop && (!s_number(tpop, &pop) || pop < 0 || pop > 1e9 || floor(pop) != pop))
            c->rc = mg_why_set(c->why, MG_ERR_SCHEMA,
                               "%s, ligne %zu : population illisible (« %s »)",
                               c->path, c->line, tpop);
        if (c->rc == MG_OK) {
            mg_why_t inner;
            mg_why_clear(&inner);
            int rc = mg_communes_add(c->communes, s_cell(c, S_C_INSEE), s_cell(c, S_C_NOM),
                                     s_cell(c, S_C_ARTICLE), s_cell(c, S_C_POSTAL),
                                     s_cell(c, S_C_TYPE), s_cell(c, S_C_PARENT), has_pos,
                                     lat, lng, *tpop ? (int64_t) pop : -1, &inner);
            if (rc != MG_OK)
                c->rc = mg_why_set(c->why, rc, "%s, ligne %zu : %s", c->path, c->line,
                                   inner.text[0] ? inner.text : mg_strerror(rc));
        }
    }
    for (size_t i = 0; i < c->ncells; i++)
        free(c->cells[i]);
    c->ncells = 0;
}

int mg_communes_load(const char *path, mg_communes_t **out, mg_why_t *why)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return mg_why_set(why, MG_ERR_IO, "lecture de %s impossible : %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > (off_t) S_COMMUNES_MAX_BYTES) {
        fclose(f);
        return mg_why_set(why, MG_ERR_TOO_LARGE, "%s : fichier trop gros (%u Mio au plus)",
                          path, S_COMMUNES_MAX_BYTES >> 20);
    }
    size_t len = (size_t) st.st_size;
    char *data = malloc(len ? len : 1);
    if (!data || fread(data, 1, len, f) != len) {
        free(data);
        fclose(f);
        return mg_why_set(why, MG_ERR_IO, "lecture de %s impossible", path);
    }
    fclose(f);
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        free(data);
        return MG_ERR_NOMEM;
    }
    s_ccsv_t c = {.path = path, .line = 1, .rc = MG_OK, .why = why};
    c.communes = mg_communes_new();
    if (!c.communes)
        c.rc = MG_ERR_NOMEM;
    size_t off = len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    while (off < len && c.rc == MG_OK) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t chunk = nl ? (size_t) (nl - (data + off)) + 1 : len - off;
        if (csv_parse(&p, data + off, chunk, s_ccsv_field, s_ccsv_row, &c) != chunk
            && c.rc == MG_OK)
            c.rc = mg_why_set(why, MG_ERR_MALFORMED, "%s, ligne %zu : guillemet mal placé",
                              path, c.line);
        off += chunk;
        if (nl)
            c.line++;
    }
    if (c.rc == MG_OK && csv_fini(&p, s_ccsv_field, s_ccsv_row, &c) != 0 && c.rc == MG_OK)
        c.rc = mg_why_set(why, MG_ERR_MALFORMED,
                          "%s : fin du fichier dans un champ entre guillemets", path);
    if (c.rc == MG_OK && !c.header_done)
        c.rc = mg_why_set(why, MG_ERR_SCHEMA, "%s : fichier vide", path);
    if (c.rc == MG_OK && mg_communes_count(c.communes) == 0)
        c.rc = mg_why_set(why, MG_ERR_SCHEMA, "%s : aucune commune", path);
    for (size_t i = 0; i < c.ncells; i++)
        free(c.cells[i]);
    free(c.cells);
    csv_free(&p);
    free(data);
    if (c.rc != MG_OK) {
        if (c.rc == MG_ERR_NOMEM && why && !why->text[0])
            mg_why_set(why, c.rc, "mémoire insuffisante");
        mg_communes_destroy(&c.communes);
        return c.rc;
    }
    *out = c.communes;
    return MG_OK;
}

/* ------------------------------------------------------------------ */
/* Opening the node and loading the analysis                            */

typedef struct {
    mg_node_ctx_t node;
    bool node_open;
    mg_communes_t *communes;
    mg_analysis_t *an;
} s_session_t;

static void s_session_close(s_session_t *s)
{
    mg_analysis_destroy(&s->an);
    mg_communes_destroy(&s->communes);
    if (s->node_open)
        mg_node_close(&s->node);
    s->node_open = false;
}

/* Opens the node, reads the communes table (communes_path may be NULL)
   and loads the offers matching `query`. */
static int s_session_open(s_session_t *s, const char *dir,
                          const char *communes_path,
                          const mg_offer_query_t *query, mg_why_t *why)
{
    memset(s, 0, sizeof *s);
    int rc = mg_node_open(&s->node, dir, why);
    s->node_open = true;
    if (rc == MG_OK && communes_path)
        rc = mg_communes_load(communes_path, &s->communes, why);
    if (rc == MG_OK) {
        mg_cli_note_pending(s->node.store);
        rc = mg_analysis_load(s->node.store, query, s->communes, s->node.id.pk,
                              &s->an, why);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* overlaps                                                             */

static const char *const s_overlaps_usage =
    "Usage : maillage overlaps [--within KM] [--service S] [--departement D]\n"
    "                          [--communes FICHIER] [--limit N | --all]\n"
    "                          [--pairs N] [--json | --geojson]\n\n"
    "Empilement et juxtaposition : les groupes d'offres de structures\n"
    "différentes qui proposent le même service aux mêmes publics au même\n"
    "endroit, aux mêmes heures. Deux offres se juxtaposent quand :\n"
    "  - elles ont au moins un service en commun (--service S : celui-là) ;\n"
    "  - leurs publics se recoupent (une offre sans public spécifique\n"
    "    s'adresse à tous) ;\n"
    "  - elles sont dans la même commune ou, avec --within KM, à KM km au\n"
    "    plus quand les deux ont des coordonnées (distance à vol d'oiseau) ;\n"
    "  - leurs horaires se recoupent, quand les deux en donnent de lisibles.\n"
    "Les doublons probables (même lieu listé deux fois) sont écartés : voir\n"
    "« maillage duplicates ». Les groupes sont classés du plus sérieux au\n"
    "moins sérieux (score sur 100 : services 35, publics 15, distance 20,\n"
    "horaires 20, modalités d'accompagnement 10).\n\n"
    "  --within KM         distance maximale (défaut : même commune)\n"
    "  --service S         un service du standard (majuscules et accents libres)\n"
    "  --departement D     seulement les offres de ce département (16, 2A, 971)\n"
    "  --communes FICHIER  table des communes (place au centre de leur commune\n"
    "                      les offres sans coordonnées)\n"
    "  --limit N           groupes affichés (20) ; --all : tous\n"
    "  --pairs N           paires détaillées par groupe (5 ; JSON : 50 ; 0 : toutes)\n"
    "  --json              résultat complet pour les outils\n"
    "  --geojson           les offres des groupes, en points pour une carte\n";

typedef struct {
    double within_km;
    const char *service, *departement, *communes, *public_;
    size_t limit;
    size_t pairs;
    bool pairs_set, all, json, geojson;
} s_common_opts_t;

static void s_overlap_pair_text(const mg_analysis_t *an, const mg_overlap_pair_t *p)
{
    const mg_aoffer_t *a = mg_analysis_offer(an, p->a), *b = mg_analysis_offer(an, p->b);
    char ia[9], ib[9], km[32], first[64], line[1024];
    s_short_id(a, ia);
    s_short_id(b, ib);
    s_fmt_km(p->distance_km, km, sizeof km);
    char slots[512] = "horaires inconnus";
    if (p->hours_known) {
        mg_hours_t h;
        mg_overlap_pair_slots(an, p, &h);
        mg_hours_format(&h, slots, sizeof slots);
    }
    snprintf(first, sizeof first, "     %s ↔ %s  %3u  ", ia, ib, p->score);
    snprintf(line, sizeof line, "%s · %s%s", p->distance_km >= 0 ? km : "même commune",
             slots, p->all_publics ? "" : " · publics spécifiques");
    s_wrapped_at(stdout, first, 8, line);
}

static json_t *s_overlap_pair_json(const mg_analysis_t *an, const mg_overlap_pair_t *p)
{
    json_t *j = json_pack("{s:s,s:s,s:i,s:o,s:b,s:b}", "a", mg_analysis_offer(an, p->a)->rid,
                          "b", mg_analysis_offer(an, p->b)->rid, "score", p->score,
                          "services", s_labels_json(an, MG_AF_SERVICES, p->services),
                          "tous_publics", p->all_publics, "meme_commune", p->same_commune);
    json_object_set_new(j, "publics", s_labels_json(an, MG_AF_PUBLICS, p->publics));
    json_object_set_new(j, "distance_km", p->distance_km >= 0 ? s_km_json(p->distance_km) : json_null());
    if (p->hours_known) {
        mg_hours_t h;
        char slots[1024];
        mg_overlap_pair_slots(an, p, &h);
        mg_hours_format(&h, slots, sizeof slots);
        json_object_set_new(j, "creneaux_communs", json_string(slots));
        json_object_set_new(j, "minutes_communes", json_integer(p->common_minutes));
    } else {
        json_object_set_new(j, "creneaux_communs", json_null());
    }
    return j;
}

int mg_cmd_overlaps(int argc, char **argv, const char *dir)
{
    s_common_opts_t o = {.limit = 20, .pairs = 5};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (mg_cli_is_help(a)) {
            fputs(s_overlaps_usage, stdout);
            return 0;
        } else if (strcmp(a, "--within") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !s_parse_km(v, &o.within_km))
                return 2;
        } else if (strcmp(a, "--service") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !(o.service = s_enum_value("services", v)))
                return 2;
        } else if (strcmp(a, "--departement") == 0 || strcmp(a, "--département") == 0) {
            if (!(o.departement = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "--communes") == 0) {
            if (!(o.communes = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "--limit") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !s_parse_count(v, &o.limit))
                return 2;
        } else if (strcmp(a, "--pairs") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !s_parse_count(v, &o.pairs))
                return 2;
            o.pairs_set = true;
        } else if (strcmp(a, "--all") == 0) {
            o.all = true;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--geojson") == 0) {
            o.geojson = true;
        } else {
            return mg_cli_unknown("overlaps", a);
        }
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_offer_query_t q = {.departement = o.departement};
    s_session_t s;
    int rc = s_session_open(&s, dir, o.communes, &q, &why);
    mg_overlaps_t *res = NULL;
    mg_overlap_opts_t opts = {.within_km = o.within_km, .service = o.service,
                              .max_pairs = o.pairs_set ? o.pairs : o.json ? 50 : o.pairs};
    if (rc == MG_OK)
        rc = mg_overlaps_find(s.an, &opts, &res, &why);
    if (rc != MG_OK) {
        s_session_close(&s);
        return mg_cli_fail("overlaps", rc, &why);
    }
    const mg_analysis_t *an = s.an;
    size_t shown = o.all || o.json || o.geojson ? res->group_count
                   : res->group_count < o.limit ? res->group_count : o.limit;
    if (o.geojson) {
        json_t *fc = json_pack("{s:s,s:[]}", "type", "FeatureCollection", "features");
        json_t *features = json_object_get(fc, "features");
        for (size_t g = 0; g < res->group_count; g++) {
            const mg_overlap_group_t *gr = &res->groups[g];
            for (size_t k = 0; k < gr->offer_count; k++) {
                const mg_aoffer_t *of = mg_analysis_offer(an, gr->offers[k]);
                if (of->loc == MG_LOC_NONE)
                    continue;
                json_t *props = s_offer_json(of);
                json_object_del(props, "latitude");
                json_object_del(props, "longitude");
                json_object_set_new(props, "groupe", json_integer((json_int_t) g + 1));
                json_object_set_new(props, "score", json_integer(gr->score));
                json_object_set_new(props, "structures", json_integer((json_int_t) gr->structures));
                json_object_set_new(props, "services_communs",
                                    s_labels_json(an, MG_AF_SERVICES, gr->services));
                json_array_append_new(features,
                                      json_pack("{s:s,s:s,s:o,s:o}", "type", "Feature", "id",
                                                of->rid, "geometry", s_point(of->lat, of->lng),
                                                "properties", props));
            }
        }
        s_dump(fc);
        json_decref(fc);
    } else if (o.json) {
        json_t *j = json_pack("{s:o,s:o,s:o,s:I,s:I,s:[]}", "within_km",
                              o.within_km > 0 ? json_real(o.within_km) : json_null(),
                              "service", o.service ? json_string(o.service) : json_null(),
                              "departement", o.departement ? json_string(o.departement) : json_null(),
                              "offres_examinees", (json_int_t) res->offers_considered,
                              "paires_doublons_ecartees", (json_int_t) res->duplicate_pairs,
                              "groupes");
        json_t *groups = json_object_get(j, "groupes");
        for (size_t g = 0; g < res->group_count; g++) {
            const mg_overlap_group_t *gr = &res->groups[g];
            char slots[2048] = "";
            if (gr->hours_known)
                mg_hours_format(&gr->slots, slots, sizeof slots);
            json_t *jg = json_pack("{s:I,s:i,s:I,s:I,s:o,s:b,s:o,s:o,s:o,s:[],s:I,s:[]}",
                                   "rang", (json_int_t) g + 1, "score", gr->score,
                                   "structures", (json_int_t) gr->structures,
                                   "offres_nombre", (json_int_t) gr->offer_count,
                                   "services_communs", s_labels_json(an, MG_AF_SERVICES, gr->services),
                                   "tous_publics", gr->all_publics,
                                   "publics_communs", s_labels_json(an, MG_AF_PUBLICS, gr->publics),
                                   "distance_max_km",
                                   gr->max_distance_km >= 0 ? s_km_json(gr->max_distance_km) : json_null(),
                                   "creneaux_communs", gr->hours_known ? json_string(slots) : json_null(),
                                   "offres", "paires_total", (json_int_t) gr->pair_total, "paires");
            for (size_t k = 0; k < gr->offer_count; k++)
                json_array_append_new(json_object_get(jg, "offres"),
                                      s_offer_json(mg_analysis_offer(an, gr->offers[k])));
            for (size_t k = 0; k < gr->pair_count; k++)
                json_array_append_new(json_object_get(jg, "paires"),
                                      s_overlap_pair_json(an, &gr->pairs[k]));
            json_array_append_new(groups, jg);
        }
        json_object_set_new(j, "horaires_illisibles", s_unreadable_json(an));
        s_dump(j);
        json_decref(j);
    } else {
        char within[64], km[32];
        if (o.within_km > 0) {
            s_fmt_km(o.within_km, km, sizeof km);
            snprintf(within, sizeof within, "à %s au plus", km);
        } else {
            snprintf(within, sizeof within, "dans la même commune");
        }
        printf("Juxtapositions : offres de structures différentes %s,\n"
               "avec un service%s et des publics en commun, ouvertes aux mêmes heures\n"
               "quand leurs horaires sont connus.\n",
               within, o.service ? " donné" : "");
        if (o.service)
            printf("Service : %s\n", o.service);
        printf("%zu offre%s examinée%s, %zu groupe%s", res->offers_considered,
               res->offers_considered > 1 ? "s" : "", res->offers_considered > 1 ? "s" : "",
               res->group_count, res->group_count > 1 ? "s" : "");
        if (res->duplicate_pairs)
            printf(", %zu paire%s écartée%s (doublons probables)", res->duplicate_pairs,
                   res->duplicate_pairs > 1 ? "s" : "", res->duplicate_pairs > 1 ? "s" : "");
        printf(".\n");
        for (size_t g = 0; g < shown; g++) {
            const mg_overlap_group_t *gr = &res->groups[g];
            const mg_aoffer_t *first = mg_analysis_offer(an, gr->offers[0]);
            char head[512], rank[32];
            size_t hn = (size_t) snprintf(head, sizeof head, "Score %u · %s · %zu offres de "
                                          "%zu structures", gr->score, first->commune,
                                          gr->offer_count, gr->structures);
            if (gr->max_distance_km >= 0 && hn < sizeof head) {
                s_fmt_km(gr->max_distance_km, km, sizeof km);
                snprintf(head + hn, sizeof head - hn, " · jusqu'à %s", km);
            }
            snprintf(rank, sizeof rank, "\n%zu. ", g + 1);
            s_wrapped_at(stdout, rank, 3, head);
            char *services = s_labels(an, MG_AF_SERVICES, gr->services);
            s_wrapped(stdout, "   Services communs : ", services ? services : "");
            free(services);
            char *publics = s_labels(an, MG_AF_PUBLICS, gr->publics);
            char pub[1024];
            snprintf(pub, sizeof pub, "%s%s%s", gr->all_publics ? "tous publics" : "",
                     gr->all_publics && publics && *publics ? ", " : "",
                     publics ? publics : "");
            s_wrapped(stdout, "   Publics communs  : ", pub);
            free(publics);
            char slots[2048] = "inconnus (horaires manquants ou illisibles)";
            if (gr->hours_known)
                mg_hours_format(&gr->slots, slots, sizeof slots);
            s_wrapped(stdout, "   Créneaux communs : ", slots);
            for (size_t k = 0; k < gr->offer_count; k++) {
                const mg_aoffer_t *of = mg_analysis_offer(an, gr->offers[k]);
                char id[9];
                s_short_id(of, id);
                printf("   ");
                mg_print_cell(stdout, id, 10);
                mg_print_cell(stdout, of->nom, 40);
                fputc(' ', stdout);
                mg_print_cell(stdout, of->commune, -25);
                fputc('\n', stdout);
            }
            if (gr->pair_count) {
                if (gr->pair_count < gr->pair_total)
                    printf("   Paires : %zu, dont les %zu plus fortes :\n", gr->pair_total,
                           gr->pair_count);
                else
                    printf("   Paires : %zu\n", gr->pair_total);
                for (size_t k = 0; k < gr->pair_count; k++)
                    s_overlap_pair_text(an, &gr->pairs[k]);
            }
        }
        if (shown < res->group_count)
            printf("\n… et %zu autres groupes (--all pour tous, --json pour le détail).\n",
                   res->group_count - shown);
        s_unreadable_text(an, stdout);
    }
    mg_overlaps_destroy(&res);
    s_session_close(&s);
    return 0;
}

/* ------------------------------------------------------------------ */
/* duplicates                                                           */

static const char *const s_duplicates_usage =
    "Usage : maillage duplicates [--departement D] [--communes FICHIER]\n"
    "                            [--max-m M] [--national] [--limit N | --all] [--json]\n\n"
    "Les fiches qui décrivent le même lieu. Deux offres sont un doublon quand :\n"
    "  - elles ont le même SIRET/RNA (pivot ; 00000000000000 ne compte pas)\n"
    "    au même endroit (adresses semblables dans la même commune, ou\n"
    "    coordonnées à M mètres au plus) ;\n"
    "  - ou le même téléphone ou courriel au même endroit ;\n"
    "  - ou des noms et des adresses semblables (ratio ≥ 80 sur 100) à\n"
    "    M mètres au plus ; quand une coordonnée manque, noms et adresses\n"
    "    doivent être presque identiques (≥ 90) : une coordonnée absente ne\n"
    "    vaut jamais accord.\n"
    "Chaque paire dit ses indices et son score.\n\n"
    "  --max-m M           « même endroit » : M mètres au plus (100)\n"
    "  --departement D     seulement les offres de ce département\n"
    "  --communes FICHIER  table des communes (codes INSEE des offres)\n"
    "  --national          compare avec la règle de la cartographie nationale,\n"
    "                      paire par paire\n"
    "  --limit N           groupes affichés (20) ; --all : tous\n"
    "  --json              résultat complet pour les outils\n";

static const char *s_rule_name(uint8_t rule)
{
    switch (rule) {
    case MG_DUP_RULE_PIVOT: return "siret";
    case MG_DUP_RULE_CONTACT: return "contact";
    case MG_DUP_RULE_PLACE: return "lieu";
    default: return "aucune";
    }
}

/* The evidence of a pair in words. */
static void s_dup_evidence(const mg_analysis_t *an, const mg_dup_pair_t *p,
                           char *out, size_t size)
{
    const mg_aoffer_t *a = mg_analysis_offer(an, p->a), *b = mg_analysis_offer(an, p->b);
    size_t n = 0;
#define S_ADD(...)                                                           \
    do {                                                                     \
        if (n < size)                                                        \
            n += (size_t) snprintf(out + n, size - n, "%s", n ? " ; " : ""); \
        if (n < size)                                                        \
            n += (size_t) snprintf(out + n, size - n, __VA_ARGS__);          \
    } while (0)
    out[0] = '\0';
    if (p->evidence & MG_DUP_PIVOT)
        S_ADD("même SIRET %s", a->pivot);
    if (p->evidence & MG_DUP_PHONE)
        S_ADD("même téléphone");
    if (p->evidence & MG_DUP_EMAIL)
        S_ADD("même courriel");
    S_ADD("noms %u", p->name_ratio);
    S_ADD("adresses %u", p->address_ratio);
    if (p->distance_m >= 0) {
        char km[32];
        s_fmt_km(p->distance_m / 1000.0, km, sizeof km);
        S_ADD("%s", km);
    } else {
        S_ADD("coordonnée manquante");
    }
    if (p->evidence & MG_DUP_FAR)
        S_ADD("coordonnées éloignées : l'une est sans doute fausse");
    if (p->evidence & MG_DUP_SAME_SOURCE)
        S_ADD("même source « %s »", a->source);
    (void) b;
#undef S_ADD
}

/* Why maillage's rule did not keep a pair. */
static void s_dup_refusal(const mg_dup_pair_t *p, double max_m, char *out, size_t size)
{
    if (!(p->evidence & (MG_DUP_NEAR)) && !(p->evidence & MG_DUP_ADDRESS)
        && p->distance_m > (float) max_m && p->name_ratio >= 80 && p->address_ratio >= 80)
        snprintf(out, size, "lieux à %.0f m, adresses de communes différentes", p->distance_m);
    else if (p->evidence & MG_DUP_NO_COORDS)
        snprintf(out, size, "coordonnée manquante : noms %u et adresses %u, il faut 90 "
                 "et 90 (et le même numéro)", p->name_ratio, p->address_ratio);
    else if (p->distance_m > (float) max_m)
        snprintf(out, size, "à %.0f m (plus de %.0f m) : noms %u, adresses %u, il faut 90 "
                 "et 90 (et le même numéro)", p->distance_m, max_m, p->name_ratio,
                 p->address_ratio);
    else
        snprintf(out, size, "noms %u, adresses %u : il faut 80 et 80", p->name_ratio,
                 p->address_ratio);
}

static int s_cmp_key(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *) x, b = *(const uint64_t *) y;
    return a < b ? -1 : a > b;
}

static uint64_t s_key(uint32_t a, uint32_t b)
{
    return a < b ? ((uint64_t) a << 32) | b : ((uint64_t) b << 32) | a;
}

static bool s_has_key(const uint64_t *keys, size_t n, uint64_t k)
{
    return bsearch(&k, keys, n, sizeof k, s_cmp_key) != NULL;
}

static void s_pair_ids(const mg_analysis_t *an, uint32_t a, uint32_t b, char *out,
                       size_t size)
{
    char ia[9], ib[9];
    s_short_id(mg_analysis_offer(an, a), ia);
    s_short_id(mg_analysis_offer(an, b), ib);
    snprintf(out, size, "%s = %s", ia, ib);
}

/* The comparison with the national rule, as text or into `j`. */
static int s_national_compare(const mg_analysis_t *an, const mg_duplicates_t *res,
                              double max_m, json_t *j, mg_why_t *why)
{
    mg_national_pair_t *nat = NULL;
    size_t nn = 0;
    int rc = mg_duplicates_national(an, &nat, &nn, why);
    if (rc != MG_OK)
        return rc;
    uint64_t *ours = malloc((res->pair_count ? res->pair_count : 1) * sizeof *ours);
    uint64_t *theirs = malloc((nn ? nn : 1) * sizeof *theirs);
    if (!ours || !theirs) {
        free(ours);
        free(theirs);
        free(nat);
        return MG_ERR_NOMEM;
    }
    size_t no = 0;
    for (size_t g = 0; g < res->group_count; g++)
        for (size_t k = 0; k < res->groups[g].pair_count; k++)
            ours[no++] = s_key(res->groups[g].pairs[k].a, res->groups[g].pairs[k].b);
    for (size_t k = 0; k < nn; k++)
        theirs[k] = s_key(nat[k].a, nat[k].b);
    s_sort(ours, no, sizeof *ours, s_cmp_key);
    s_sort(theirs, nn, sizeof *theirs, s_cmp_key);
    size_t both = 0;
    for (size_t k = 0; k < nn; k++)
        if (s_has_key(ours, no, theirs[k]))
            both++;
    json_t *jn = j ? json_pack("{s:I,s:I,s:I,s:[],s:[]}", "paires_nationales", (json_int_t) nn,
                               "paires_maillage", (json_int_t) no, "communes", (json_int_t) both,
                               "seulement_nationale", "seulement_maillage")
                   : NULL;
    if (!j) {
        printf("\nComparaison avec la règle de la cartographie nationale\n"
               "(moyenne des ratios nom, adresse et distance au-dessus de 83, même code\n"
               "INSEE, sources différentes, coordonnée manquante comptée distance 0)\n"
               "  Règle nationale : %zu paire%s · maillage : %zu paire%s · en commun : %zu\n",
               nn, nn > 1 ? "s" : "", no, no > 1 ? "s" : "", both);
        printf("\n  Seulement la règle nationale (%zu) :\n", nn - both);
    }
    for (size_t k = 0; k < nn; k++) {
        const mg_national_pair_t *p = &nat[k];
        if (s_has_key(ours, no, s_key(p->a, p->b)))
            continue;
        mg_dup_pair_t mine;
        mg_dup_opts_t dopts = {.max_m = max_m};
        mg_duplicates_judge(an, &dopts, p->a, p->b, &mine);
        char reason[512], ids[32];
        s_dup_refusal(&mine, max_m, reason, sizeof reason);
        s_pair_ids(an, p->a, p->b, ids, sizeof ids);
        if (jn) {
            json_array_append_new(json_object_get(jn, "seulement_nationale"),
                                  json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:s}",
                                            "a", mg_analysis_offer(an, p->a)->rid,
                                            "b", mg_analysis_offer(an, p->b)->rid,
                                            "nom_a", mg_analysis_offer(an, p->a)->nom,
                                            "nom_b", mg_analysis_offer(an, p->b)->nom,
                                            "score_national", p->score, "nom", p->name,
                                            "adresse", p->address, "distance", p->distance,
                                            "raison_maillage", reason));
        } else {
            char first[64], line[2048];
            snprintf(first, sizeof first, "    %s  ", ids);
            snprintf(line, sizeof line,
                     "%s / %s — national %u (nom %u, adresse %u, distance %u) — "
                     "maillage : %s",
                     mg_analysis_offer(an, p->a)->nom, mg_analysis_offer(an, p->b)->nom,
                     p->score, p->name, p->address, p->distance, reason);
            s_wrapped_at(stdout, first, 6, line);
        }
    }
    if (!j)
        printf("\n  Seulement maillage (%zu) :\n", no - both);
    for (size_t g = 0; g < res->group_count; g++)
        for (size_t k = 0; k < res->groups[g].pair_count; k++) {
            const mg_dup_pair_t *p = &res->groups[g].pairs[k];
            if (s_has_key(theirs, nn, s_key(p->a, p->b)))
                continue;
            mg_national_pair_t np;
            const char *why_not = NULL;
            mg_duplicates_national_judge(an, p->a, p->b, &np, &why_not);
            char evidence[1024], ids[32];
            s_dup_evidence(an, p, evidence, sizeof evidence);
            s_pair_ids(an, p->a, p->b, ids, sizeof ids);
            if (jn) {
                json_array_append_new(json_object_get(jn, "seulement_maillage"),
                                      json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:i}",
                                                "a", mg_analysis_offer(an, p->a)->rid,
                                                "b", mg_analysis_offer(an, p->b)->rid,
                                                "nom_a", mg_analysis_offer(an, p->a)->nom,
                                                "nom_b", mg_analysis_offer(an, p->b)->nom,
                                                "score_maillage", p->score,
                                                "indices", evidence,
                                                "raison_nationale", why_not ? why_not : "",
                                                "score_national", np.score));
            } else {
                char first[64], line[2048];
                snprintf(first, sizeof first, "    %s  ", ids);
                snprintf(line, sizeof line,
                         "%s / %s — maillage %u (%s) — national : %s (score %u : nom %u, "
                         "adresse %u, distance %u)",
                         mg_analysis_offer(an, p->a)->nom, mg_analysis_offer(an, p->b)->nom,
                         p->score, evidence, why_not ? why_not : "?", np.score, np.name,
                         np.address, np.distance);
                s_wrapped_at(stdout, first, 6, line);
            }
        }
    if (jn)
        json_object_set_new(j, "comparaison_nationale", jn);
    free(ours);
    free(theirs);
    free(nat);
    return MG_OK;
}

int mg_cmd_duplicates(int argc, char **argv, const char *dir)
{
    s_common_opts_t o = {.limit = 20};
    double max_m = 100;
    bool national = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (mg_cli_is_help(a)) {
            fputs(s_duplicates_usage, stdout);
            return 0;
        } else if (strcmp(a, "--departement") == 0 || strcmp(a, "--département") == 0) {
            if (!(o.departement = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "--communes") == 0) {
            if (!(o.communes = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "--max-m") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)))
                return 2;
            char *end = NULL;
            errno = 0;
            max_m = strtod(v, &end);
            if (errno || end == v || *end || !isfinite(max_m) || max_m < 1 || max_m > 5000) {
                mg_errorf("maillage : distance invalide : « %s » (en mètres, de 1 à "
                                "5000)\n", v);
                return 2;
            }
        } else if (strcmp(a, "--limit") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !s_parse_count(v, &o.limit))
                return 2;
        } else if (strcmp(a, "--all") == 0) {
            o.all = true;
        } else if (strcmp(a, "--national") == 0) {
            national = true;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else {
            return mg_cli_unknown("duplicates", a);
        }
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_offer_query_t q = {.departement = o.departement};
    s_session_t s;
    int rc = s_session_open(&s, dir, o.communes, &q, &why);
    mg_duplicates_t *res = NULL;
    mg_dup_opts_t opts = {.max_m = max_m};
    if (rc == MG_OK)
        rc = mg_duplicates_find(s.an, &opts, &res, &why);
    const mg_analysis_t *an = s.an;
    json_t *j = NULL;
    if (rc == MG_OK && o.json) {
        j = json_pack("{s:f,s:I,s:I,s:I,s:[]}", "max_m", max_m, "offres",
                      (json_int_t) mg_analysis_count(an), "paires_comparees",
                      (json_int_t) res->candidates, "paires_doublons",
                      (json_int_t) res->pair_count, "groupes");
        for (size_t g = 0; g < res->group_count; g++) {
            const mg_dup_group_t *gr = &res->groups[g];
            json_t *jg = json_pack("{s:I,s:i,s:[],s:[]}", "rang", (json_int_t) g + 1,
                                   "score", gr->score, "offres", "paires");
            for (size_t k = 0; k < gr->offer_count; k++)
                json_array_append_new(json_object_get(jg, "offres"),
                                      s_offer_json(mg_analysis_offer(an, gr->offers[k])));
            for (size_t k = 0; k < gr->pair_count; k++) {
                const mg_dup_pair_t *p = &gr->pairs[k];
                char evidence[1024];
                s_dup_evidence(an, p, evidence, sizeof evidence);
                json_t *jp = json_pack(
                    "{s:s,s:s,s:i,s:s,s:i,s:i,s:o,s:b,s:b,s:b,s:b,s:s}",
                    "a", mg_analysis_offer(an, p->a)->rid, "b", mg_analysis_offer(an, p->b)->rid,
                    "score", p->score, "regle", s_rule_name(p->rule), "noms", p->name_ratio,
                    "adresses", p->address_ratio,
                    "distance_m", p->distance_m >= 0 ? json_real(floor(p->distance_m + 0.5)) : json_null(),
                    "meme_siret", (p->evidence & MG_DUP_PIVOT) != 0,
                    "meme_telephone", (p->evidence & MG_DUP_PHONE) != 0,
                    "meme_courriel", (p->evidence & MG_DUP_EMAIL) != 0,
                    "meme_source", (p->evidence & MG_DUP_SAME_SOURCE) != 0,
                    "indices", evidence);
                json_array_append_new(json_object_get(jg, "paires"), jp);
            }
            json_array_append_new(json_object_get(j, "groupes"), jg);
        }
        if (national)
            rc = s_national_compare(an, res, max_m, j, &why);
        if (rc == MG_OK)
            s_dump(j);
        json_decref(j);
    } else if (rc == MG_OK) {
        size_t docs = 0;
        for (size_t g = 0; g < res->group_count; g++)
            docs += res->groups[g].offer_count;
        char text[512];
        snprintf(text, sizeof text, "%zu groupe%s (%zu fiches) parmi %zu offres ; %zu paires "
                 "comparées.", res->group_count, res->group_count > 1 ? "s" : "", docs,
                 mg_analysis_count(an), res->candidates);
        s_wrapped(stdout, "Doublons probables : ", text);
        size_t shown = o.all ? res->group_count
                       : res->group_count < o.limit ? res->group_count : o.limit;
        for (size_t g = 0; g < shown; g++) {
            const mg_dup_group_t *gr = &res->groups[g];
            printf("\n%zu. Score %u · %zu fiches · %s\n", g + 1, gr->score, gr->offer_count,
                   mg_analysis_offer(an, gr->offers[0])->commune);
            for (size_t k = 0; k < gr->offer_count; k++) {
                const mg_aoffer_t *of = mg_analysis_offer(an, gr->offers[k]);
                char id[9], first[32], line[1024];
                s_short_id(of, id);
                snprintf(first, sizeof first, "   %s  ", id);
                snprintf(line, sizeof line, "%s — %s, %s %s%s%s", of->nom,
                         of->adresse ? of->adresse : "(sans adresse)", of->code_postal,
                         of->commune, of->source ? " · " : "", of->source ? of->source : "");
                s_wrapped(stdout, first, line);
            }
            for (size_t k = 0; k < gr->pair_count; k++) {
                const mg_dup_pair_t *p = &gr->pairs[k];
                char ids[32], first[64], evidence[1024];
                s_pair_ids(an, p->a, p->b, ids, sizeof ids);
                snprintf(first, sizeof first, "   %s (%u, règle %s) : ", ids, p->score,
                         s_rule_name(p->rule));
                s_dup_evidence(an, p, evidence, sizeof evidence);
                s_wrapped_at(stdout, first, 6, evidence);
            }
        }
        if (shown < res->group_count)
            printf("\n… et %zu autres groupes (--all pour tous).\n", res->group_count - shown);
        if (national)
            rc = s_national_compare(an, res, max_m, NULL, &why);
    }
    mg_duplicates_destroy(&res);
    s_session_close(&s);
    return rc == MG_OK ? 0 : mg_cli_fail("duplicates", rc, &why);
}

/* ------------------------------------------------------------------ */
/* gaps                                                                 */

static const char *const s_gaps_usage =
    "Usage : maillage gaps --communes FICHIER [--service S] [--public P]\n"
    "                      [--within KM] [--limit N | --all] [--json | --geojson]\n\n"
    "Zones carencées : pour chaque service (et chaque public spécifique),\n"
    "les communes dont le centre est à plus de KM km (10 par défaut) de toute\n"
    "offre, avec leur population, de la plus peuplée à la moins peuplée ; et\n"
    "par service, la part de la population du territoire qui a une offre à\n"
    "portée. FICHIER est une table des communes comme tests/data/charente.csv\n"
    "(code INSEE, nom, code postal, type COM/COMD, lat, lng, population).\n"
    "Les offres sans coordonnées sont placées au centre de leur commune\n"
    "(code INSEE, ou code postal et nom, retrouvés dans la table) ; les\n"
    "communes déléguées (COMD) comptent leur propre population, retirée de\n"
    "celle de leur commune nouvelle : personne n'est compté deux fois.\n\n"
    "  --service S    un seul service\n"
    "  --public P     seulement les offres ouvertes à ce public (qui lui sont\n"
    "                 dédiées ou qui s'adressent à tous) ; et la ligne des\n"
    "                 offres qui lui sont dédiées\n"
    "  --within KM    distance à vol d'oiseau (10)\n"
    "  --limit N      communes listées par service (10) ; --all : toutes\n"
    "  --json         résultat complet pour les outils\n"
    "  --geojson      les communes sans offre, en points pour une carte\n";

static json_t *s_gap_json(const mg_analysis_t *an, const mg_communes_t *cs,
                          const mg_gap_t *g)
{
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:f,s:I,s:I,s:[]}",
                          "type", g->kind == MG_GAP_SERVICE ? "service" : "public",
                          "libelle", g->label, "offres", (json_int_t) g->offers,
                          "population", (json_int_t) g->population,
                          "population_a_portee", (json_int_t) g->covered,
                          "part_a_portee",
                          g->population > 0 ? (double) g->covered / (double) g->population : 0.0,
                          "communes", (json_int_t) g->units,
                          "communes_sans_offre", (json_int_t) g->uncovered_units,
                          "sans_offre");
    (void) an;
    for (size_t r = 0; r < g->row_count; r++) {
        const mg_commune_t *c = mg_communes_at(cs, g->rows[r].commune);
        json_t *row = json_pack("{s:s,s:s,s:s,s:I,s:o}", "code_insee", c->insee, "nom",
                                c->nom, "type", c->type == MG_COMMUNE_COM ? "COM"
                                                : c->type == MG_COMMUNE_COMD ? "COMD"
                                                : "ARM",
                                "population", (json_int_t) g->rows[r].population,
                                "offre_la_plus_proche_km",
                                g->rows[r].nearest_km >= 0 ? s_km_json(g->rows[r].nearest_km)
                                                           : json_null());
        json_array_append_new(json_object_get(j, "sans_offre"), row);
    }
    return j;
}

int mg_cmd_gaps(int argc, char **argv, const char *dir)
{
    s_common_opts_t o = {.limit = 10, .within_km = 10};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (mg_cli_is_help(a)) {
            fputs(s_gaps_usage, stdout);
            return 0;
        } else if (strcmp(a, "--within") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !s_parse_km(v, &o.within_km))
                return 2;
        } else if (strcmp(a, "--service") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !(o.service = s_enum_value("services", v)))
                return 2;
        } else if (strcmp(a, "--public") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i))
                || !(o.public_ = s_enum_value("publics_specifiquement_adresses", v)))
                return 2;
        } else if (strcmp(a, "--communes") == 0) {
            if (!(o.communes = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "--limit") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !s_parse_count(v, &o.limit))
                return 2;
        } else if (strcmp(a, "--all") == 0) {
            o.all = true;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--geojson") == 0) {
            o.geojson = true;
        } else {
            return mg_cli_unknown("gaps", a);
        }
    }
    if (!o.communes) {
        mg_errorf("maillage : indiquez la table des communes du territoire : "
                        "maillage gaps --communes communes.csv\n");
        return 2;
    }
    mg_why_t why;
    mg_why_clear(&why);
    s_session_t s;
    int rc = s_session_open(&s, dir, o.communes, NULL, &why);
    mg_gaps_t *res = NULL;
    mg_gaps_opts_t opts = {.within_km = o.within_km, .service = o.service,
                           .public_ = o.public_};
    if (rc == MG_OK)
        rc = mg_gaps_find(s.an, &opts, &res, &why);
    if (rc != MG_OK) {
        s_session_close(&s);
        return mg_cli_fail("gaps", rc, &why);
    }
    const mg_analysis_t *an = s.an;
    const mg_communes_t *cs = s.communes;
    if (o.geojson) {
        /* One point per place lacking something. */
        json_t *fc = json_pack("{s:s,s:[]}", "type", "FeatureCollection", "features");
        size_t n = mg_communes_count(cs);
        json_t **props = calloc(n ? n : 1, sizeof *props);
        for (size_t k = 0; props && k < res->count; k++) {
            const mg_gap_t *g = &res->items[k];
            for (size_t r = 0; r < g->row_count; r++) {
                uint32_t ci = g->rows[r].commune;
                if (!props[ci]) {
                    const mg_commune_t *c = mg_communes_at(cs, ci);
                    props[ci] = json_pack("{s:s,s:s,s:I,s:[],s:[],s:{}}", "code_insee",
                                          c->insee, "nom", c->nom, "population",
                                          (json_int_t) g->rows[r].population,
                                          "services_manquants", "publics_sans_offre_dediee",
                                          "offre_la_plus_proche_km");
                }
                json_array_append_new(json_object_get(props[ci], g->kind == MG_GAP_SERVICE
                                                                     ? "services_manquants"
                                                                     : "publics_sans_offre_dediee"),
                                      json_string(g->label));
                json_object_set_new(json_object_get(props[ci], "offre_la_plus_proche_km"),
                                    g->label,
                                    g->rows[r].nearest_km >= 0 ? s_km_json(g->rows[r].nearest_km)
                                                               : json_null());
            }
        }
        for (size_t ci = 0; props && ci < n; ci++) {
            if (!props[ci])
                continue;
            const mg_commune_t *c = mg_communes_at(cs, ci);
            json_array_append_new(json_object_get(fc, "features"),
                                  json_pack("{s:s,s:s,s:o,s:o}", "type", "Feature", "id",
                                            c->insee, "geometry", s_point(c->lat, c->lng),
                                            "properties", props[ci]));
        }
        free(props);
        s_dump(fc);
        json_decref(fc);
    } else if (o.json) {
        json_t *j = json_pack("{s:s,s:f,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I},s:[]}",
                              "communes", o.communes, "within_km", res->within_km,
                              "population", (json_int_t) res->population,
                              "lieux_evalues", (json_int_t) res->units,
                              "lieux_sans_coordonnees", (json_int_t) res->units_unplaced,
                              "population_sans_coordonnees", (json_int_t) res->population_unplaced,
                              "offres", "avec_coordonnees", (json_int_t) res->offers_coords,
                              "au_centre_de_leur_commune", (json_int_t) res->offers_centre,
                              "non_localisees", (json_int_t) res->offers_unlocated,
                              "analyses");
        if (o.public_)
            json_object_set_new(j, "public", json_string(o.public_));
        for (size_t k = 0; k < res->count; k++)
            json_array_append_new(json_object_get(j, "analyses"),
                                  s_gap_json(an, cs, &res->items[k]));
        s_dump(j);
        json_decref(j);
    } else {
        char km[32], pop[32];
        s_fmt_km(res->within_km, km, sizeof km);
        s_fmt_int(res->population, pop, sizeof pop);
        char text[4096];
        snprintf(text, sizeof text, "communes dont le centre est à plus de %s de toute offre.",
                 km);
        s_wrapped(stdout, "Zones carencées : ", text);
        snprintf(text, sizeof text, "%zu lieux (communes et communes déléguées), %s habitants "
                 "(%s).", res->units, pop, o.communes);
        s_wrapped(stdout, "Territoire : ", text);
        if (res->units_unplaced)
            printf("  %zu commune%s sans coordonnées, non évaluée%s.\n", res->units_unplaced,
                   res->units_unplaced > 1 ? "s" : "", res->units_unplaced > 1 ? "s" : "");
        snprintf(text, sizeof text, "%zu avec coordonnées, %zu placée%s au centre de leur "
                 "commune, %zu non localisée%s.",
                 res->offers_coords, res->offers_centre, res->offers_centre > 1 ? "s" : "",
                 res->offers_unlocated, res->offers_unlocated > 1 ? "s" : "");
        s_wrapped(stdout, "Offres : ", text);
        if (o.public_)
            printf("Offres ouvertes au public « %s » (dédiées ou tous publics).\n", o.public_);
        printf("\n");
        mg_print_cell(stdout, "Service", 47);
        mg_print_cell(stdout, "Offres", 7);
        printf(" À portée   Sans offre\n");
        bool pub_header = false;
        for (size_t k = 0; k < res->count; k++) {
            const mg_gap_t *g = &res->items[k];
            if (g->kind == MG_GAP_PUBLIC && !pub_header) {
                printf("Public (offres qui lui sont dédiées)\n");
                pub_header = true;
            }
            char pct[32], without[48], cnt[16];
            s_fmt_pct(g->covered, g->population, pct, sizeof pct);
            s_fmt_int(g->population - g->covered, pop, sizeof pop);
            snprintf(without, sizeof without, "%s hab.", pop);
            snprintf(cnt, sizeof cnt, "%6zu", g->offers);
            mg_print_cell(stdout, g->label, 47);
            mg_print_cell(stdout, cnt, 7);
            printf(" %8s   %s\n", pct, without);
        }
        for (size_t k = 0; k < res->count; k++) {
            const mg_gap_t *g = &res->items[k];
            if (!g->row_count)
                continue;
            printf("\n");
            if (g->offers == 0) {
                snprintf(text, sizeof text, "%s%s — aucune offre localisée : tout le "
                         "territoire en est dépourvu.",
                         g->kind == MG_GAP_PUBLIC ? "Public " : "", g->label);
                s_wrapped(stdout, "", text);
                continue;
            }
            s_fmt_int(g->population - g->covered, pop, sizeof pop);
            snprintf(text, sizeof text, "%s%s — %zu commune%s sans offre à moins de %s, %s "
                     "habitants", g->kind == MG_GAP_PUBLIC ? "Public " : "", g->label,
                     g->uncovered_units, g->uncovered_units > 1 ? "s" : "", km, pop);
            s_wrapped(stdout, "", text);
            size_t shown = o.all || g->row_count < o.limit ? g->row_count : o.limit;
            for (size_t r = 0; r < shown; r++) {
                const mg_commune_t *c = mg_communes_at(cs, g->rows[r].commune);
                char name[256], near[96];
                if (c->type == MG_COMMUNE_COM)
                    snprintf(name, sizeof name, "%s", c->nom);
                else
                    snprintf(name, sizeof name, "%s (commune déléguée)", c->nom);
                s_fmt_int(g->rows[r].population, pop, sizeof pop);
                if (g->rows[r].nearest_km >= 0) {
                    char d[32];
                    s_fmt_km(g->rows[r].nearest_km, d, sizeof d);
                    snprintf(near, sizeof near, "la plus proche à %s", d);
                } else {
                    snprintf(near, sizeof near, "aucune à moins de %.0f km", MG_GAPS_SEARCH_KM);
                }
                printf("  ");
                mg_print_cell(stdout, name, 36);
                printf(" %10s hab.  %s\n", pop, near);
            }
            if (shown < g->row_count)
                printf("  … et %zu autres (--all)\n", g->row_count - shown);
        }
    }
    mg_gaps_destroy(&res);
    s_session_close(&s);
    return 0;
}

/* ------------------------------------------------------------------ */
/* complementarities                                                    */

static const char *const s_complements_usage =
    "Usage : maillage complementarities [--structure QUI] [--within KM]\n"
    "                                   [--communes FICHIER] [--limit N | --all]\n"
    "                                   [--json | --geojson]\n\n"
    "Pour une structure (par défaut : ce nœud, ses propres offres), les\n"
    "structures proches :\n"
    "  - qui apportent ce qu'elle n'a pas : services, publics spécifiques,\n"
    "    prises en charge, modalités d'accompagnement (partenaires possibles) ;\n"
    "  - qui proposent les mêmes services (à qui parler pour se coordonner).\n"
    "Distances à vol d'oiseau entre les offres, à KM km au plus (15).\n\n"
    "  --structure QUI     la structure : début de sa clé publique (8 caractères\n"
    "                      hexadécimaux au moins), son SIRET/RNA, ou une partie\n"
    "                      de son nom\n"
    "  --within KM         rayon (15)\n"
    "  --communes FICHIER  table des communes (offres sans coordonnées)\n"
    "  --limit N           structures listées par rubrique (15) ; --all : toutes\n"
    "  --json, --geojson   pour les outils, pour une carte\n";

static bool s_hex_prefix(const char *s)
{
    size_t n = strlen(s);
    if (n < 8 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    return true;
}

/* The offers of the structure `who` names (NULL: this node's own
   offers, those it wrote itself rather than imported). Caller frees
   *ours. *name gets a name to show. */
static int s_resolve_structure(const mg_analysis_t *an, const uint8_t *self,
                               const char *who, uint32_t **ours, size_t *count,
                               const char **name, mg_why_t *why)
{
    size_t n = mg_analysis_count(an), ns = mg_analysis_structure_count(an);
    *ours = malloc((n ? n : 1) * sizeof **ours);
    bool *chosen = calloc(ns ? ns : 1, sizeof *chosen);
    *count = 0;
    *name = NULL;
    if (!*ours || !chosen) {
        free(chosen);
        return MG_ERR_NOMEM;
    }
    int rc = MG_OK;
    if (!who) {
        size_t own = 0;
        for (size_t i = 0; i < n; i++) {
            const mg_aoffer_t *o = mg_analysis_offer(an, i);
            if (memcmp(o->author, self, MG_KEY_BYTES) != 0)
                continue;
            own++;
            if (!o->source)
                chosen[o->structure] = true;
        }
        bool any = false;
        for (size_t s = 0; s < ns; s++)
            any = any || chosen[s];
        if (!any)
            rc = mg_why_set(why, MG_ERR_NOT_FOUND,
                            own ? "ce nœud n'a que des lieux importés : indiquez la "
                                  "structure (--structure NOM, SIRET ou clé)"
                                : "ce nœud n'a pas encore d'offre : publiez-en une "
                                  "(maillage offer add) ou indiquez --structure");
    } else if (s_hex_prefix(who)) {
        /* An author: its own offers (not those it imported) or, when it
           only imported, its only structure. */
        size_t len = strlen(who);
        for (size_t i = 0; i < n; i++) {
            const mg_aoffer_t *o = mg_analysis_offer(an, i);
            char hex[2 * MG_KEY_BYTES + 1];
            mg_hex_encode(o->author, MG_KEY_BYTES, hex);
            if (strncasecmp(hex, who, len) == 0 && !o->source)
                chosen[o->structure] = true;
        }
    }
    if (rc == MG_OK && who) {
        bool any = false;
        for (size_t s = 0; s < ns; s++)
            any = any || chosen[s];
        if (!any) {
            /* A SIRET/RNA. */
            char key[80];
            snprintf(key, sizeof key, "p:%s", who);
            for (char *p = key + 2; *p; p++)
                *p = (char) toupper((unsigned char) *p);
            for (size_t s = 0; s < ns; s++)
                if (strcmp(mg_analysis_structure(an, s)->key, key) == 0)
                    chosen[s] = any = true;
        }
        if (!any) {
            /* A part of a name: one structure, or one named exactly so. */
            char *want = mg_fold(who);
            size_t matches = 0;
            long exact = -1, last = -1;
            for (size_t i = 0; want && i < n; i++) {
                const mg_aoffer_t *o = mg_analysis_offer(an, i);
                char *have = mg_fold(o->nom);
                if (have && strstr(have, want) && !chosen[o->structure]) {
                    chosen[o->structure] = true;
                    matches++;
                    last = (long) o->structure;
                    if (strcmp(have, want) == 0)
                        exact = (long) o->structure;
                }
                free(have);
            }
            if (matches > 1 && exact >= 0) {
                memset(chosen, 0, ns * sizeof *chosen);
                chosen[exact] = true;
            } else if (matches > 1) {
                char list[768] = "";
                size_t shown = 0;
                for (size_t s = 0; s < ns && shown < 8; s++)
                    if (chosen[s]) {
                        size_t used = strlen(list);
                        snprintf(list + used, sizeof list - used, "%s« %s »",
                                 shown ? ", " : "", mg_analysis_structure(an, s)->name);
                        shown++;
                    }
                rc = mg_why_set(why, MG_ERR_AMBIGUOUS,
                                "« %s » désigne %zu structures (%s%s) : précisez le nom, "
                                "ou donnez le SIRET", who, matches, list,
                                matches > shown ? ", …" : "");
            } else if (matches == 0) {
                rc = mg_why_set(why, MG_ERR_NOT_FOUND,
                                "aucune structure ne correspond à « %s » (nom, SIRET ou "
                                "début de clé publique)", who);
            }
            (void) last;
            free(want);
        }
    }
    for (size_t i = 0; rc == MG_OK && i < n; i++)
        if (chosen[mg_analysis_offer(an, i)->structure]) {
            (*ours)[(*count)++] = (uint32_t) i;
            if (!*name)
                *name = mg_analysis_structure(an, mg_analysis_offer(an, i)->structure)->name;
        }
    free(chosen);
    if (rc != MG_OK) {
        free(*ours);
        *ours = NULL;
    }
    return rc;
}

static json_t *s_partner_json(const mg_analysis_t *an, const mg_partner_t *p, bool peer)
{
    const mg_aoffer_t *o = mg_analysis_offer(an, p->offer);
    const mg_astructure_t *st = mg_analysis_structure(an, p->structure);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o}", "structure", st->name, "cle", st->key,
                          "offre", o->rid, "commune", o->commune, "distance_km",
                          s_km_json(p->distance_km));
    if (peer) {
        json_object_set_new(j, "services_communs",
                            s_labels_json(an, MG_AF_SERVICES, p->services_shared));
    } else {
        json_object_set_new(j, "services_en_plus", s_labels_json(an, MG_AF_SERVICES, p->services_new));
        json_object_set_new(j, "publics_en_plus", s_labels_json(an, MG_AF_PUBLICS, p->publics_new));
        json_object_set_new(j, "prise_en_charge_en_plus",
                            s_labels_json(an, MG_AF_PRISE_EN_CHARGE, p->prise_new));
        json_object_set_new(j, "accompagnement_en_plus",
                            s_labels_json(an, MG_AF_ACCOMPAGNEMENT, p->accomp_new));
    }
    return j;
}

static void s_partner_text(const mg_analysis_t *an, size_t rank, const mg_partner_t *p,
                           bool peer)
{
    const mg_aoffer_t *o = mg_analysis_offer(an, p->offer);
    const mg_astructure_t *st = mg_analysis_structure(an, p->structure);
    char km[32], id[9], head[1024];
    s_fmt_km(p->distance_km, km, sizeof km);
    s_short_id(o, id);
    char first[32];
    snprintf(first, sizeof first, "  %2zu. ", rank);
    snprintf(head, sizeof head, "%s — %s, %s (%s)", st->name, o->commune, km, id);
    s_wrapped(stdout, first, head);
    struct {
        const char *title;
        mg_afield_t f;
        uint64_t mask;
    } rows[] = {
        {"Services      : ", MG_AF_SERVICES, peer ? p->services_shared : p->services_new},
        {"Publics       : ", MG_AF_PUBLICS, peer ? 0 : p->publics_new},
        {"Prise en charge : ", MG_AF_PRISE_EN_CHARGE, peer ? 0 : p->prise_new},
        {"Accompagnement : ", MG_AF_ACCOMPAGNEMENT, peer ? 0 : p->accomp_new},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (!rows[r].mask)
            continue;
        char *l = s_labels(an, rows[r].f, rows[r].mask);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "      %s", rows[r].title);
        s_wrapped(stdout, prefix, l ? l : "");
        free(l);
    }
}

int mg_cmd_complementarities(int argc, char **argv, const char *dir)
{
    s_common_opts_t o = {.limit = 15, .within_km = 15};
    const char *who = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (mg_cli_is_help(a)) {
            fputs(s_complements_usage, stdout);
            return 0;
        } else if (strcmp(a, "--structure") == 0) {
            if (!(who = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "--within") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !s_parse_km(v, &o.within_km))
                return 2;
        } else if (strcmp(a, "--communes") == 0) {
            if (!(o.communes = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "--limit") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !s_parse_count(v, &o.limit))
                return 2;
        } else if (strcmp(a, "--all") == 0) {
            o.all = true;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--geojson") == 0) {
            o.geojson = true;
        } else {
            return mg_cli_unknown("complementarities", a);
        }
    }
    mg_why_t why;
    mg_why_clear(&why);
    s_session_t s;
    int rc = s_session_open(&s, dir, o.communes, NULL, &why);
    uint32_t *ours = NULL;
    size_t nours = 0;
    const char *name = NULL;
    mg_complements_t *res = NULL;
    if (rc == MG_OK)
        rc = s_resolve_structure(s.an, s.node.id.pk, who, &ours, &nours, &name, &why);
    if (rc == MG_OK)
        rc = mg_complements_find(s.an, ours, nours, o.within_km, &res, &why);
    if (rc == MG_OK && res->our_offers == 0)
        rc = mg_why_set(&why, MG_ERR_NOT_FOUND,
                        "les offres de « %s » n'ont ni coordonnées ni commune retrouvée : "
                        "ajoutez latitude et longitude, ou donnez --communes", name);
    if (rc != MG_OK) {
        free(ours);
        mg_complements_destroy(&res);
        s_session_close(&s);
        return mg_cli_fail("complementarities", rc, &why);
    }
    const mg_analysis_t *an = s.an;
    size_t lim = o.all || o.json || o.geojson ? SIZE_MAX : o.limit;
    if (o.geojson) {
        json_t *fc = json_pack("{s:s,s:[]}", "type", "FeatureCollection", "features");
        for (int role = 0; role < 3; role++) {
            size_t cnt = role == 0 ? nours : role == 1 ? res->partner_count : res->peer_count;
            for (size_t k = 0; k < cnt; k++) {
                const mg_aoffer_t *of;
                json_t *props;
                if (role == 0) {
                    of = mg_analysis_offer(an, ours[k]);
                    props = s_offer_json(of);
                    json_object_del(props, "latitude");
                    json_object_del(props, "longitude");
                    json_object_set_new(props, "role", json_string("structure"));
                } else {
                    const mg_partner_t *p = role == 1 ? &res->partners[k] : &res->peers[k];
                    of = mg_analysis_offer(an, p->offer);
                    props = s_partner_json(an, p, role == 2);
                    json_object_set_new(props, "role", json_string(role == 1 ? "partenaire"
                                                                             : "a_coordonner"));
                }
                if (of->loc == MG_LOC_NONE) {
                    json_decref(props);
                    continue;
                }
                json_array_append_new(json_object_get(fc, "features"),
                                      json_pack("{s:s,s:o,s:o}", "type", "Feature", "geometry",
                                                s_point(of->lat, of->lng), "properties", props));
            }
        }
        s_dump(fc);
        json_decref(fc);
    } else if (o.json) {
        json_t *j = json_pack("{s:{s:s,s:[]},s:f,s:o,s:o,s:o,s:o,s:[],s:[]}", "structure",
                              "nom", name, "offres", "within_km", o.within_km,
                              "services", s_labels_json(an, MG_AF_SERVICES, res->services),
                              "publics", s_labels_json(an, MG_AF_PUBLICS, res->publics),
                              "prise_en_charge", s_labels_json(an, MG_AF_PRISE_EN_CHARGE, res->prise),
                              "accompagnement", s_labels_json(an, MG_AF_ACCOMPAGNEMENT, res->accomp),
                              "partenaires", "a_coordonner");
        for (size_t k = 0; k < nours; k++)
            json_array_append_new(json_object_get(json_object_get(j, "structure"), "offres"),
                                  json_string(mg_analysis_offer(an, ours[k])->rid));
        for (size_t k = 0; k < res->partner_count; k++)
            json_array_append_new(json_object_get(j, "partenaires"),
                                  s_partner_json(an, &res->partners[k], false));
        for (size_t k = 0; k < res->peer_count; k++)
            json_array_append_new(json_object_get(j, "a_coordonner"),
                                  s_partner_json(an, &res->peers[k], true));
        s_dump(j);
        json_decref(j);
    } else {
        char km[32];
        s_fmt_km(o.within_km, km, sizeof km);
        char head[512];
        snprintf(head, sizeof head, "« %s » : %zu offre%s, structures à %s au plus.", name,
                 nours, nours > 1 ? "s" : "", km);
        s_wrapped(stdout, "Complémentarités de ", head);
        char *l = s_labels(an, MG_AF_SERVICES, res->services);
        s_wrapped(stdout, "Vous proposez : ", l && *l ? l : "(aucun service indiqué)");
        free(l);
        l = s_labels(an, MG_AF_PUBLICS, res->publics);
        s_wrapped(stdout, "Vos publics   : ", l && *l ? l : "tous publics");
        free(l);
        printf("\nPartenaires possibles : ils apportent ce que vous n'avez pas (%zu)\n",
               res->partner_count);
        for (size_t k = 0; k < res->partner_count && k < lim; k++)
            s_partner_text(an, k + 1, &res->partners[k], false);
        if (res->partner_count > lim)
            printf("  … et %zu autres (--all)\n", res->partner_count - lim);
        printf("\nÀ coordonner : ils proposent les mêmes services (%zu)\n", res->peer_count);
        for (size_t k = 0; k < res->peer_count && k < lim; k++)
            s_partner_text(an, k + 1, &res->peers[k], true);
        if (res->peer_count > lim)
            printf("  … et %zu autres (--all)\n", res->peer_count - lim);
    }
    free(ours);
    mg_complements_destroy(&res);
    s_session_close(&s);
    return 0;
}

/* ------------------------------------------------------------------ */
/* diagnostic                                                           */

static const char *const s_diagnostic_usage =
    "Usage : maillage diagnostic [--departement D] [--communes FICHIER]\n"
    "                            [--within KM] [--json | --format texte|markdown|json]\n\n"
    "Le diagnostic de territoire de la feuille de route, en six cases :\n"
    "  Qui       les acteurs : structures par typologie et programme national ;\n"
    "  Quoi      les services proposés (offres, structures) ;\n"
    "  Où        les communes couvertes, lieux fixes ou itinérants ;\n"
    "  Comment   modalités d'accompagnement et d'accès, frais, horaires ;\n"
    "  Pour qui  publics spécifiques et prises en charge ;\n"
    "  Pour quoi les objectifs (déclarés, et ceux que servent les services) ;\n"
    "puis les manques : services absents, publics sans offre dédiée et, avec\n"
    "la table des communes, la part de la population à portée de chaque\n"
    "service (KM km, 10 par défaut) et les communes sans offre.\n\n"
    "  --departement D     le territoire : un département (16, 2A, 971)\n"
    "  --communes FICHIER  le territoire : les communes de la table (et les\n"
    "                      manques par commune)\n"
    "  --format F          texte (défaut, 80 colonnes), markdown (un rapport), json\n"
    "  --json              comme --format json\n";

static const char *s_afield_key(mg_afield_t f)
{
    static const char *const names[MG_AF_COUNT] = {
        "services", "publics_specifiquement_adresses", "prise_en_charge_specifique",
        "modalites_accompagnement", "modalites_acces", "frais_a_charge",
        "dispositif_programmes_nationaux", "typologie", "itinerance"};
    return f < MG_AF_COUNT ? names[f] : "";
}

/* Counts of a label field as [{libelle, offres[, structures]}], in label
   order, labels with no offer left out unless `all`. */
static json_t *s_diag_labels(const mg_analysis_t *an, mg_afield_t f,
                             const size_t *offers, const size_t *structs, bool all)
{
    json_t *a = json_array();
    unsigned n = mg_analysis_label_count(an, f);
    for (unsigned b = 0; b < n; b++) {
        if (!offers[b] && !all)
            continue;
        json_t *row = json_pack("{s:s,s:I}", "libelle", mg_analysis_label(an, f, b),
                                "offres", (json_int_t) offers[b]);
        if (structs)
            json_object_set_new(row, "structures", json_integer((json_int_t) structs[b]));
        json_array_append_new(a, row);
    }
    return a;
}

static int s_cmp_count_desc(const void *x, const void *y)
{
    json_t *a = *(json_t *const *) x, *b = *(json_t *const *) y;
    json_int_t ca = json_integer_value(json_object_get(a, "offres"));
    json_int_t cb = json_integer_value(json_object_get(b, "offres"));
    if (ca != cb)
        return ca > cb ? -1 : 1;
    return strcmp(json_string_value(json_object_get(a, "libelle")),
                  json_string_value(json_object_get(b, "libelle")));
}

/* Sorts an array of {libelle, offres} by decreasing count. */
static void s_sort_rows(json_t *array)
{
    size_t n = json_array_size(array);
    json_t **rows = malloc((n ? n : 1) * sizeof *rows);
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        rows[i] = json_incref(json_array_get(array, i));
    s_sort(rows, n, sizeof *rows, s_cmp_count_desc);
    json_array_clear(array);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(array, rows[i]);
    free(rows);
}

/* In the territory: the département asked for, and the communes of
   the table (found in it, or with one of its postal codes). */
static bool s_in_territory(const mg_aoffer_t *o, const char *dep,
                           const mg_communes_t *communes)
{
    if (dep && strcasecmp(o->departement, dep) != 0)
        return false;
    if (communes && o->commune_index < 0
        && !mg_communes_has_postal(communes, o->code_postal))
        return false;
    return true;
}

/* Builds the diagnostic as JSON: the one model the three formats print. */
static int s_diagnostic_build(const mg_analysis_t *an, const char *dep,
                              const char *communes_path, double within_km,
                              json_t **out, mg_why_t *why)
{
    size_t n = mg_analysis_count(an), ns = mg_analysis_structure_count(an);
    bool with_communes = communes_path != NULL;
    size_t (*lo)[MG_LABELS_MAX] = calloc(MG_AF_COUNT, sizeof *lo);
    size_t (*ls)[MG_LABELS_MAX] = calloc(MG_AF_COUNT, sizeof *ls);
    uint64_t (*smask)[MG_AF_COUNT] = calloc(ns ? ns : 1, sizeof *smask);
    bool *sin = calloc(ns ? ns : 1, sizeof *sin);
    if (!lo || !ls || !smask || !sin) {
        free(lo);
        free(ls);
        free(smask);
        free(sin);
        return MG_ERR_NOMEM;
    }
    size_t offers = 0, structures = 0, none[MG_AF_COUNT] = {0};
    size_t itin[4] = {0}; /* fixe, itinérant, les deux, non précisé */
    size_t loc[3] = {0};  /* coordonnées, centre, inconnue */
    size_t hours[3] = {0}; /* lisibles, illisibles, absents */
    size_t stale = 0, rdv = 0, communes_unknown = 0;
    int fixe = mg_analysis_label_bit(an, MG_AF_ITINERANCE, "Fixe");
    int itinerant = mg_analysis_label_bit(an, MG_AF_ITINERANCE, "Itinérant");
    json_t *per_commune = json_object(), *commune_names = json_object();
    json_t *declared = json_object(), *declared_names = json_object();
    json_t *derived = json_object();
    int64_t now = mg_now_ms();
    for (size_t i = 0; i < n; i++) {
        const mg_aoffer_t *o = mg_analysis_offer(an, i);
        if (!s_in_territory(o, dep, with_communes ? mg_analysis_communes(an) : NULL))
            continue;
        offers++;
        if (!sin[o->structure]) {
            sin[o->structure] = true;
            structures++;
        }
        for (int f = 0; f < MG_AF_COUNT; f++) {
            smask[o->structure][f] |= o->mask[f];
            if (!o->mask[f])
                none[f]++;
            for (unsigned b = 0; b < MG_LABELS_MAX; b++)
                if ((o->mask[f] >> b) & 1)
                    lo[f][b]++;
        }
        uint64_t it = o->mask[MG_AF_ITINERANCE];
        bool fx = fixe >= 0 && ((it >> fixe) & 1), itn = itinerant >= 0 && ((it >> itinerant) & 1);
        itin[fx && itn ? 2 : fx ? 0 : itn ? 1 : 3]++;
        loc[o->loc == MG_LOC_COORDS ? 0 : o->loc == MG_LOC_CENTRE ? 1 : 2]++;
        hours[o->hours_state == MG_HOURS_OK ? 0 : o->hours_state == MG_HOURS_UNREADABLE ? 1 : 2]++;
        int rdv_bit = mg_analysis_label_bit(an, MG_AF_ACCES, "Prendre un RDV en ligne");
        if (rdv_bit >= 0 && ((o->mask[MG_AF_ACCES] >> rdv_bit) & 1))
            rdv++;
        mg_check_t chk;
        mg_body_t *b = mg_body_new();
        if (b && o->date_maj)
            mg_body_set_str(b, "date_maj", o->date_maj);
        if (b) {
            mg_check_offer(b, NULL, o->updated_ms, now, &chk);
            if (chk.stale)
                stale++;
        }
        mg_body_destroy(&b);
        /* Communes: by INSEE code when known, else postal code + name. */
        char key[300];
        if (o->insee[0])
            snprintf(key, sizeof key, "%s", o->insee);
        else
            snprintf(key, sizeof key, "%s %s", o->code_postal, o->commune_fold);
        json_t *c = json_object_get(per_commune, key);
        if (!c && with_communes && o->commune_index < 0)
            communes_unknown++;
        json_object_set_new(per_commune, key, json_integer(c ? json_integer_value(c) + 1 : 1));
        if (!json_object_get(commune_names, key)) {
            const mg_commune_t *mc = mg_communes_at(mg_analysis_communes(an),
                                                    (size_t) o->commune_index);
            json_object_set_new(commune_names, key,
                                json_string(o->commune_index >= 0 && mc ? mc->nom : o->commune));
        }
        /* Objectives: declared (folded to merge spellings), and served. */
        for (size_t k = 0; k < o->objectif_count; k++) {
            char *f = mg_fold(o->objectifs[k]);
            if (!f)
                continue;
            json_t *d = json_object_get(declared, f);
            json_object_set_new(declared, f, json_integer(d ? json_integer_value(d) + 1 : 1));
            if (!json_object_get(declared_names, f))
                json_object_set_new(declared_names, f, json_string(o->objectifs[k]));
            free(f);
        }
        json_t *seen = json_object();
        for (unsigned b2 = 0; b2 < MG_LABELS_MAX; b2++)
            if ((o->mask[MG_AF_SERVICES] >> b2) & 1) {
                const char *obj = mg_service_objective(mg_analysis_label(an, MG_AF_SERVICES, b2));
                if (obj && !json_object_get(seen, obj)) {
                    json_object_set_new(seen, obj, json_true());
                    json_t *d = json_object_get(derived, obj);
                    json_object_set_new(derived, obj, json_integer(d ? json_integer_value(d) + 1 : 1));
                }
            }
        json_decref(seen);
    }
    for (size_t s = 0; s < ns; s++)
        if (sin[s])
            for (int f = 0; f < MG_AF_COUNT; f++)
                for (unsigned b = 0; b < MG_LABELS_MAX; b++)
                    if ((smask[s][f] >> b) & 1)
                        ls[f][b]++;
    size_t struct_no_typo = 0;
    for (size_t s = 0; s < ns; s++)
        if (sin[s] && !smask[s][MG_AF_TYPOLOGIE])
            struct_no_typo++;

    char today[11];
    mg_today(today);
    json_t *j = json_object();
    json_object_set_new(j, "territoire",
                        json_pack("{s:o,s:o,s:I,s:I,s:s}", "departement",
                                  dep ? json_string(dep) : json_null(), "communes_fichier",
                                  communes_path ? json_string(communes_path) : json_null(),
                                  "offres", (json_int_t) offers, "structures",
                                  (json_int_t) structures, "date", today));
    /* Qui */
    json_t *typos = json_array();
    for (unsigned b = 0; b < mg_analysis_label_count(an, MG_AF_TYPOLOGIE); b++) {
        if (!ls[MG_AF_TYPOLOGIE][b])
            continue;
        const char *code = mg_analysis_label(an, MG_AF_TYPOLOGIE, b);
        const char *lib = mg_typologie_name(code);
        json_array_append_new(typos, json_pack("{s:s,s:s,s:I}", "code", code, "libelle",
                                               lib ? lib : code, "offres",
                                               (json_int_t) ls[MG_AF_TYPOLOGIE][b]));
    }
    s_sort_rows(typos);
    /* In the typology rows, "offres" counts structures: rename. */
    for (size_t k = 0; k < json_array_size(typos); k++) {
        json_t *row = json_array_get(typos, k);
        json_object_set(row, "structures", json_object_get(row, "offres"));
        json_object_del(row, "offres");
    }
    json_t *progs = s_diag_labels(an, MG_AF_DISPOSITIFS, lo[MG_AF_DISPOSITIFS],
                                  ls[MG_AF_DISPOSITIFS], false);
    s_sort_rows(progs);
    json_object_set_new(j, "qui", json_pack("{s:o,s:I,s:o,s:I}", "typologies", typos,
                                            "structures_sans_typologie", (json_int_t) struct_no_typo,
                                            "programmes", progs,
                                            "offres_sans_programme",
                                            (json_int_t) none[MG_AF_DISPOSITIFS]));
    /* Quoi */
    json_t *svc = s_diag_labels(an, MG_AF_SERVICES, lo[MG_AF_SERVICES], ls[MG_AF_SERVICES], true);
    s_sort_rows(svc);
    json_object_set_new(j, "quoi", json_pack("{s:o,s:I}", "services", svc,
                                             "offres_sans_service",
                                             (json_int_t) none[MG_AF_SERVICES]));
    /* Où */
    json_t *top = json_array();
    const char *key;
    json_t *val;
    json_object_foreach(per_commune, key, val)
        json_array_append_new(top, json_pack("{s:O,s:O}", "libelle",
                                             json_object_get(commune_names, key), "offres", val));
    s_sort_rows(top);
    size_t ncommunes = json_array_size(top);
    while (json_array_size(top) > 10)
        json_array_remove(top, json_array_size(top) - 1);
    json_t *ou = json_pack("{s:I,s:{s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I},s:o}",
                           "communes_avec_offre", (json_int_t) ncommunes, "itinerance",
                           "fixe", (json_int_t) itin[0], "itinerant", (json_int_t) itin[1],
                           "les_deux", (json_int_t) itin[2], "non_precise", (json_int_t) itin[3],
                           "localisation", "coordonnees", (json_int_t) loc[0],
                           "centre_commune", (json_int_t) loc[1], "inconnue", (json_int_t) loc[2],
                           "communes_les_plus_dotees", top);
    const mg_communes_t *cs = mg_analysis_communes(an);
    if (with_communes && cs) {
        int64_t pop = 0, pop_with = 0;
        size_t com = 0;
        for (size_t c = 0; c < mg_communes_count(cs); c++) {
            const mg_commune_t *mc = mg_communes_at(cs, c);
            if (mc->type != MG_COMMUNE_COM)
                continue;
            com++;
            int64_t p = mc->population > 0 ? mc->population : 0;
            pop += p;
            if (json_object_get(per_commune, mc->insee))
                pop_with += p;
        }
        json_object_set_new(ou, "communes_du_territoire", json_integer((json_int_t) com));
        json_object_set_new(ou, "communes_absentes_de_la_table",
                            json_integer((json_int_t) communes_unknown));
        json_object_set_new(ou, "population", json_integer((json_int_t) pop));
        json_object_set_new(ou, "population_des_communes_avec_offre", json_integer((json_int_t) pop_with));
    }
    json_object_set_new(j, "ou", ou);
    /* Comment */
    json_t *acc = s_diag_labels(an, MG_AF_ACCOMPAGNEMENT, lo[MG_AF_ACCOMPAGNEMENT], NULL, true);
    json_t *acs = s_diag_labels(an, MG_AF_ACCES, lo[MG_AF_ACCES], NULL, true);
    json_t *fr = s_diag_labels(an, MG_AF_FRAIS, lo[MG_AF_FRAIS], NULL, true);
    s_sort_rows(acc);
    s_sort_rows(acs);
    s_sort_rows(fr);
    json_object_set_new(j, "comment",
                        json_pack("{s:o,s:I,s:o,s:I,s:o,s:I,s:{s:I,s:I,s:I},s:I}",
                                  "accompagnement", acc, "sans_accompagnement",
                                  (json_int_t) none[MG_AF_ACCOMPAGNEMENT], "acces", acs,
                                  "sans_acces", (json_int_t) none[MG_AF_ACCES], "frais", fr,
                                  "sans_frais", (json_int_t) none[MG_AF_FRAIS], "horaires",
                                  "lisibles", (json_int_t) hours[0], "illisibles",
                                  (json_int_t) hours[1], "absents", (json_int_t) hours[2],
                                  "rdv_en_ligne", (json_int_t) rdv));
    /* Pour qui */
    json_t *pubs = s_diag_labels(an, MG_AF_PUBLICS, lo[MG_AF_PUBLICS], ls[MG_AF_PUBLICS], true);
    json_t *pec = s_diag_labels(an, MG_AF_PRISE_EN_CHARGE, lo[MG_AF_PRISE_EN_CHARGE],
                                ls[MG_AF_PRISE_EN_CHARGE], true);
    s_sort_rows(pubs);
    s_sort_rows(pec);
    json_object_set_new(j, "pour_qui", json_pack("{s:o,s:I,s:o}", "publics", pubs,
                                                 "tous_publics", (json_int_t) none[MG_AF_PUBLICS],
                                                 "prise_en_charge", pec));
    /* Pour quoi */
    json_t *decl = json_array(), *der = json_array();
    json_object_foreach(declared, key, val)
        json_array_append_new(decl, json_pack("{s:O,s:O}", "libelle",
                                              json_object_get(declared_names, key), "offres", val));
    json_object_foreach(derived, key, val)
        json_array_append_new(der, json_pack("{s:s,s:O}", "libelle", key, "offres", val));
    s_sort_rows(decl);
    s_sort_rows(der);
    json_object_set_new(j, "pour_quoi", json_pack("{s:o,s:o}", "objectifs_declares", decl,
                                                  "objectifs_des_services", der));
    /* Manques */
    json_t *m = json_pack("{s:[],s:[],s:[],s:I,s:I,s:I,s:I}", "services_absents",
                          "publics_sans_offre_dediee", "prises_en_charge_absentes",
                          "a_mettre_a_jour", (json_int_t) stale, "horaires_illisibles",
                          (json_int_t) hours[1], "sans_horaires", (json_int_t) hours[2],
                          "sans_coordonnees", (json_int_t) (loc[1] + loc[2]));
    struct {
        mg_afield_t f;
        const char *key;
    } absent[] = {{MG_AF_SERVICES, "services_absents"},
                  {MG_AF_PUBLICS, "publics_sans_offre_dediee"},
                  {MG_AF_PRISE_EN_CHARGE, "prises_en_charge_absentes"}};
    for (size_t k = 0; k < 3; k++) {
        /* The standard's labels only: a newer label absent is no news. */
        const mg_field_t *fd = mg_offer_field(s_afield_key(absent[k].f));
        for (size_t v = 0; fd && fd->values[v]; v++) {
            int b = mg_analysis_label_bit(an, absent[k].f, fd->values[v]);
            if (b >= 0 && !lo[absent[k].f][b])
                json_array_append_new(json_object_get(m, absent[k].key), json_string(fd->values[v]));
        }
    }
    int rc = MG_OK;
    if (with_communes && cs) {
        mg_gaps_t *gaps = NULL;
        mg_gaps_opts_t gopts = {.within_km = within_km};
        rc = mg_gaps_find(an, &gopts, &gaps, why);
        if (rc == MG_OK) {
            json_t *cov = json_array();
            for (size_t k = 0; k < gaps->count; k++) {
                const mg_gap_t *g = &gaps->items[k];
                json_t *ex = json_array();
                for (size_t r = 0; r < g->row_count && r < 3; r++) {
                    const mg_commune_t *c = mg_communes_at(cs, g->rows[r].commune);
                    json_array_append_new(ex, json_pack("{s:s,s:I}", "nom", c->nom, "population",
                                                        (json_int_t) g->rows[r].population));
                }
                json_array_append_new(
                    cov, json_pack("{s:s,s:s,s:I,s:f,s:I,s:I,s:o}", "type",
                                   g->kind == MG_GAP_SERVICE ? "service" : "public", "libelle",
                                   g->label, "offres", (json_int_t) g->offers, "part_a_portee",
                                   g->population > 0 ? (double) g->covered / (double) g->population
                                                     : 0.0,
                                   "communes_sans_offre", (json_int_t) g->uncovered_units,
                                   "population_sans_offre", (json_int_t) (g->population - g->covered),
                                   "exemples", ex));
            }
            json_object_set_new(m, "couverture", cov);
            json_object_set_new(m, "couverture_km", json_real(gaps->within_km));
        }
        mg_gaps_destroy(&gaps);
    }
    json_object_set_new(j, "manques", m);
    json_decref(per_commune);
    json_decref(commune_names);
    json_decref(declared);
    json_decref(declared_names);
    json_decref(derived);
    free(lo);
    free(ls);
    free(smask);
    free(sin);
    if (rc != MG_OK) {
        json_decref(j);
        return rc;
    }
    *out = j;
    return MG_OK;
}

static json_int_t s_int(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* A table: rows of {label_key, k1[, k2]} under column titles. */
static void s_rows(bool md, json_t *rows, const char *label_key, const char *head,
                   const char *c1, const char *k1, const char *c2, const char *k2)
{
    if (md) {
        printf("| %s | %s |%s%s%s\n", head, c1, c2 ? " " : "", c2 ? c2 : "", c2 ? " |" : "");
        printf("|---|---:|%s\n", c2 ? "---:|" : "");
    } else {
        printf("  ");
        mg_print_cell(stdout, head, 54);
        printf("%12s", c1);
        if (c2)
            printf("%11s", c2);
        printf("\n");
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *label = json_string_value(json_object_get(row, label_key));
        char shown[512];
        const char *code = json_string_value(json_object_get(row, "code"));
        if (code && label && strcmp(code, label) != 0)
            snprintf(shown, sizeof shown, "%s (%s)", label, code);
        else
            snprintf(shown, sizeof shown, "%s", label ? label : "");
        if (md) {
            printf("| %s | %lld |", shown, (long long) s_int(row, k1));
            if (k2)
                printf(" %lld |", (long long) s_int(row, k2));
            printf("\n");
        } else {
            printf("  ");
            mg_print_cell(stdout, shown, 54);
            printf("%12lld", (long long) s_int(row, k1));
            if (k2)
                printf("%11lld", (long long) s_int(row, k2));
            printf("\n");
        }
    }
    if (md || json_array_size(rows) == 0)
        printf("%s", md ? "\n" : "  (aucun)\n");
}

static void s_heading(bool md, const char *title, const char *subtitle)
{
    if (md)
        printf("## %s — %s\n\n", title, subtitle);
    else
        printf("\n%s — %s\n", title, subtitle);
}

/* A line of text: wrapped in the terminal, a paragraph in markdown. */
static void s_line(bool md, const char *text)
{
    if (md)
        printf("%s\n\n", text);
    else
        s_wrapped(stdout, "  ", text);
}

static void s_list_line(bool md, const char *title, json_t *list, const char *none)
{
    char text[4096];
    size_t n = (size_t) snprintf(text, sizeof text, "%s : ", title);
    if (json_array_size(list) == 0)
        snprintf(text + n, sizeof text - n, "%s", none);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (n < sizeof text)
            n += (size_t) snprintf(text + n, sizeof text - n, "%s%s", i ? ", " : "",
                                   json_string_value(v));
    }
    s_line(md, text);
}

static void s_diagnostic_print(json_t *j, bool md)
{
    json_t *t = json_object_get(j, "territoire");
    const char *dep = json_string_value(json_object_get(t, "departement"));
    const char *cf = json_string_value(json_object_get(t, "communes_fichier"));
    char where[1024];
    if (dep && cf)
        snprintf(where, sizeof where, "département %s, communes de %s", dep, cf);
    else if (dep)
        snprintf(where, sizeof where, "département %s", dep);
    else if (cf)
        snprintf(where, sizeof where, "communes de %s", cf);
    else
        snprintf(where, sizeof where, "toutes les offres connues du nœud");
    char text[2048];
    if (md)
        printf("# Diagnostic de territoire — %s\n\n", where);
    else
        s_wrapped(stdout, "DIAGNOSTIC DE TERRITOIRE — ", where);
    snprintf(text, sizeof text, "%lld offres de %lld structures, établi le %s avec maillage.",
             (long long) s_int(t, "offres"), (long long) s_int(t, "structures"),
             json_string_value(json_object_get(t, "date")));
    if (md)
        printf("%s\n\n", text);
    else
        printf("%s\n", text);

    json_t *qui = json_object_get(j, "qui");
    s_heading(md, "QUI", "les acteurs");
    s_rows(md, json_object_get(qui, "typologies"), "libelle", "Typologie", "Structures",
           "structures", NULL, NULL);
    snprintf(text, sizeof text, "Structures sans typologie : %lld.",
             (long long) s_int(qui, "structures_sans_typologie"));
    s_line(md, text);
    s_rows(md, json_object_get(qui, "programmes"), "libelle", "Programme national",
           "Structures", "structures", "Offres", "offres");

    s_heading(md, "QUOI", "les services proposés");
    s_rows(md, json_object_get(json_object_get(j, "quoi"), "services"), "libelle", "Service",
           "Offres", "offres", "Structures", "structures");

    json_t *ou = json_object_get(j, "ou");
    s_heading(md, "OÙ", "les lieux");
    if (json_object_get(ou, "communes_du_territoire")) {
        char pct[32];
        s_fmt_pct(s_int(ou, "population_des_communes_avec_offre"), s_int(ou, "population"),
                  pct, sizeof pct);
        char unknown[256] = "";
        if (s_int(ou, "communes_absentes_de_la_table"))
            snprintf(unknown, sizeof unknown, " (dont %lld nom%s absent%s de la table, souvent "
                     "d'anciennes communes)", (long long) s_int(ou, "communes_absentes_de_la_table"),
                     s_int(ou, "communes_absentes_de_la_table") > 1 ? "s" : "",
                     s_int(ou, "communes_absentes_de_la_table") > 1 ? "s" : "");
        snprintf(text, sizeof text,
                 "Communes avec au moins une offre : %lld%s, sur %lld communes ; celles de la "
                 "table réunissent %s de la population.",
                 (long long) s_int(ou, "communes_avec_offre"), unknown,
                 (long long) s_int(ou, "communes_du_territoire"), pct);
    } else {
        snprintf(text, sizeof text, "Communes avec au moins une offre : %lld.",
                 (long long) s_int(ou, "communes_avec_offre"));
    }
    s_line(md, text);
    json_t *it = json_object_get(ou, "itinerance");
    snprintf(text, sizeof text, "Lieux fixes : %lld · itinérants : %lld · les deux : %lld · "
             "non précisé : %lld.", (long long) s_int(it, "fixe"),
             (long long) s_int(it, "itinerant"), (long long) s_int(it, "les_deux"),
             (long long) s_int(it, "non_precise"));
    s_line(md, text);
    json_t *lc = json_object_get(ou, "localisation");
    snprintf(text, sizeof text, "Localisation : %lld par coordonnées · %lld au centre de leur "
             "commune · %lld inconnue%s.", (long long) s_int(lc, "coordonnees"),
             (long long) s_int(lc, "centre_commune"), (long long) s_int(lc, "inconnue"),
             s_int(lc, "inconnue") > 1 ? "s" : "");
    s_line(md, text);
    s_rows(md, json_object_get(ou, "communes_les_plus_dotees"), "libelle",
           "Communes les plus dotées", "Offres", "offres", NULL, NULL);

    json_t *cm = json_object_get(j, "comment");
    s_heading(md, "COMMENT", "modalités d'accompagnement et d'accès, frais");
    s_rows(md, json_object_get(cm, "accompagnement"), "libelle", "Accompagnement", "Offres",
           "offres", NULL, NULL);
    s_rows(md, json_object_get(cm, "acces"), "libelle", "Accès", "Offres", "offres", NULL, NULL);
    s_rows(md, json_object_get(cm, "frais"), "libelle", "Frais à charge", "Offres", "offres",
           NULL, NULL);
    json_t *h = json_object_get(cm, "horaires");
    snprintf(text, sizeof text, "Horaires : %lld lisibles · %lld illisibles · %lld non "
             "renseignés. Prise de rendez-vous en ligne : %lld offres.",
             (long long) s_int(h, "lisibles"), (long long) s_int(h, "illisibles"),
             (long long) s_int(h, "absents"), (long long) s_int(cm, "rdv_en_ligne"));
    s_line(md, text);

    json_t *pq = json_object_get(j, "pour_qui");
    s_heading(md, "POUR QUI", "les publics");
    s_rows(md, json_object_get(pq, "publics"), "libelle", "Public spécifiquement adressé",
           "Offres", "offres", "Structures", "structures");
    snprintf(text, sizeof text, "Tous publics (aucun public spécifique) : %lld offres.",
             (long long) s_int(pq, "tous_publics"));
    s_line(md, text);
    s_rows(md, json_object_get(pq, "prise_en_charge"), "libelle", "Prise en charge spécifique",
           "Offres", "offres", "Structures", "structures");

    json_t *pw = json_object_get(j, "pour_quoi");
    s_heading(md, "POUR QUOI", "les objectifs");
    if (json_array_size(json_object_get(pw, "objectifs_declares")))
        s_rows(md, json_object_get(pw, "objectifs_declares"), "libelle", "Objectif déclaré",
               "Offres", "offres", NULL, NULL);
    else
        s_line(md, "Aucune offre ne déclare d'objectifs (champ objectifs) : voici ceux que "
                   "servent leurs services.");
    s_rows(md, json_object_get(pw, "objectifs_des_services"), "libelle",
           "Objectif servi par les services", "Offres", "offres", NULL, NULL);

    json_t *m = json_object_get(j, "manques");
    s_heading(md, "MANQUES", "ce qui manque au territoire");
    s_list_line(md, "Services absents", json_object_get(m, "services_absents"), "aucun");
    s_list_line(md, "Publics sans offre dédiée", json_object_get(m, "publics_sans_offre_dediee"),
                "aucun");
    s_list_line(md, "Prises en charge absentes", json_object_get(m, "prises_en_charge_absentes"),
                "aucune");
    json_t *cov = json_object_get(m, "couverture");
    if (cov) {
        char km[32];
        s_fmt_km(json_real_value(json_object_get(m, "couverture_km")), km, sizeof km);
        snprintf(text, sizeof text, "Population à moins de %s d'une offre (centre des communes) :",
                 km);
        s_line(md, text);
        if (md)
            printf("| Service ou public | Offres | À portée | Communes sans offre | "
                   "Habitants sans offre | Plus peuplées sans offre |\n"
                   "|---|---:|---:|---:|---:|---|\n");
        size_t i;
        json_t *row;
        json_array_foreach(cov, i, row) {
            const char *label = json_string_value(json_object_get(row, "libelle"));
            bool pub = strcmp(json_string_value(json_object_get(row, "type")), "public") == 0;
            char shown[512], pct[32], pop[32], ex[1024] = "";
            snprintf(shown, sizeof shown, "%s%s", pub ? "Public : " : "", label);
            double part = json_real_value(json_object_get(row, "part_a_portee"));
            s_fmt_dec(100.0 * part, pct, sizeof pct);
            strcat(pct, " %");
            s_fmt_int(s_int(row, "population_sans_offre"), pop, sizeof pop);
            size_t k;
            json_t *e;
            json_array_foreach(json_object_get(row, "exemples"), k, e) {
                size_t used = strlen(ex);
                snprintf(ex + used, sizeof ex - used, "%s%s", k ? ", " : "",
                         json_string_value(json_object_get(e, "nom")));
            }
            if (md) {
                printf("| %s | %lld | %s | %lld | %s | %s |\n", shown,
                       (long long) s_int(row, "offres"), pct,
                       (long long) s_int(row, "communes_sans_offre"), pop, ex);
            } else {
                printf("  ");
                mg_print_cell(stdout, shown, 40);
                printf(" %8s  %3lld communes, %s hab.\n", pct,
                       (long long) s_int(row, "communes_sans_offre"), pop);
                if (*ex) {
                    char first[64];
                    snprintf(first, sizeof first, "      dont ");
                    s_wrapped(stdout, first, ex);
                }
            }
        }
        if (md)
            printf("\n");
    } else {
        s_line(md, "Pour les communes sans offre et la population à portée, donnez la table "
                   "des communes (--communes FICHIER).");
    }
    snprintf(text, sizeof text,
             "À mettre à jour : %lld offres sans mise à jour depuis plus de 6 mois · %lld aux "
             "horaires illisibles · %lld sans horaires · %lld sans coordonnées.",
             (long long) s_int(m, "a_mettre_a_jour"), (long long) s_int(m, "horaires_illisibles"),
             (long long) s_int(m, "sans_horaires"), (long long) s_int(m, "sans_coordonnees"));
    s_line(md, text);
}

int mg_cmd_diagnostic(int argc, char **argv, const char *dir)
{
    s_common_opts_t o = {.within_km = 10};
    const char *format = "texte";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (mg_cli_is_help(a)) {
            fputs(s_diagnostic_usage, stdout);
            return 0;
        } else if (strcmp(a, "--departement") == 0 || strcmp(a, "--département") == 0) {
            if (!(o.departement = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "--communes") == 0) {
            if (!(o.communes = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "--within") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)) || !s_parse_km(v, &o.within_km))
                return 2;
        } else if (strcmp(a, "--format") == 0) {
            if (!(format = mg_cli_value(argc, argv, &i)))
                return 2;
            if (strcmp(format, "text") == 0)
                format = "texte";
            if (strcmp(format, "texte") != 0 && strcmp(format, "markdown") != 0
                && strcmp(format, "md") != 0 && strcmp(format, "json") != 0) {
                mg_errorf("maillage : format inconnu : %s (texte, markdown, json)\n", format);
                return 2;
            }
        } else if (strcmp(a, "--json") == 0) {
            format = "json";
        } else {
            return mg_cli_unknown("diagnostic", a);
        }
    }
    mg_why_t why;
    mg_why_clear(&why);
    s_session_t s;
    int rc = s_session_open(&s, dir, o.communes, NULL, &why);
    json_t *j = NULL;
    char dep[8] = "";
    if (o.departement) {
        /* "16", " 2a " -> "2A" */
        size_t n = 0;
        for (const char *p = o.departement; *p && n + 1 < sizeof dep; p++)
            if (*p != ' ')
                dep[n++] = (char) toupper((unsigned char) *p);
        dep[n] = '\0';
    }
    if (rc == MG_OK)
        rc = s_diagnostic_build(s.an, o.departement ? dep : NULL, o.communes, o.within_km, &j,
                                &why);
    if (rc == MG_OK) {
        if (strcmp(format, "json") == 0)
            s_dump(j);
        else
            s_diagnostic_print(j, format[0] == 'm');
    }
    json_decref(j);
    s_session_close(&s);
    return rc == MG_OK ? 0 : mg_cli_fail("diagnostic", rc, &why);
}

/* ------------------------------------------------------------------ */
/* check                                                                */

static const char *const s_check_usage =
    "Usage : maillage check [ID] [--json] [--today AAAA-MM-JJ]\n\n"
    "Vérifie les offres de ce nœud (ou l'offre ID) : chacune doit répondre aux\n"
    "huit questions de la feuille de route — Qui êtes-vous ? Que proposez-vous ?\n"
    "Pour qui ? Où ? Quelle durée ? Quelle fréquence ? Quelles modalités ?\n"
    "Quelle démarche ? — et être mise à jour régulièrement : un rappel est\n"
    "donné au-delà de 6 mois sans mise à jour (communiquer régulièrement).\n"
    "Donne un score de complétude (questions répondues sur 8) et, pour chaque\n"
    "manque, l'option de « maillage offer update » qui le comble. Vérifie aussi\n"
    "l'intégrité de la base.\n\n"
    "Code de sortie : 0 si tout est complet et à jour, 1 s'il manque quelque\n"
    "chose (question sans réponse, horaires illisibles, offre à mettre à jour),\n"
    "2 pour une erreur d'utilisation : utilisable dans un script.\n\n"
    "  --json              résultat pour les outils\n"
    "  --today DATE        la date du jour à retenir (scripts, essais)\n";

typedef struct {
    const mg_body_t *profile;
    int64_t now_ms;
    bool json;
    json_t *array;
    size_t offers, complete, incomplete, stale;
    bool problem;
} s_check_t;

json_t *mg_check_json(const char *rid, const mg_body_t *b, const mg_check_t *chk)
{
    int answered = 0;
    json_t *qs = json_array();
    for (int q = 0; q < MG_Q_COUNT; q++) {
        answered += chk->answered[q] ? 1 : 0;
        json_t *jq = json_pack("{s:s,s:b}", "question", mg_question_text(q), "repondue",
                               chk->answered[q]);
        if (chk->missing[q][0])
            json_object_set_new(jq, "manque", json_string(chk->missing[q]));
        if (chk->advice[q][0])
            json_object_set_new(jq, "conseil", json_string(chk->advice[q]));
        json_array_append_new(qs, jq);
    }
    char last[32];
    mg_time_iso(chk->last_update_ms, last);
    last[10] = '\0';
    json_t *jo = json_pack("{s:s?,s:s?,s:s?,s:i,s:i,s:o,s:s,s:i,s:b,s:b}", "id",
                           rid, "nom", mg_body_str(b, "nom"), "commune",
                           mg_body_str(b, "commune"), "score",
                           chk->score, "questions_repondues", answered, "questions", qs,
                           "derniere_mise_a_jour", last, "jours_depuis_mise_a_jour",
                           chk->days_since_update, "a_mettre_a_jour", chk->stale,
                           "horaires_illisibles", chk->hours_unreadable);
    if (jo && chk->hours_unreadable)
        json_object_set_new(jo, "horaires_raison", json_string(chk->hours_why));
    return jo;
}

static int s_check_one(const mg_record_t *rec, void *arg)
{
    s_check_t *c = arg;
    const mg_body_t *b = mg_record_body(rec);
    mg_check_t chk;
    mg_check_offer(b, c->profile, mg_record_created(rec), c->now_ms, &chk);
    c->offers++;
    bool missing = false;
    int answered = 0;
    for (int q = 0; q < MG_Q_COUNT; q++) {
        if (!chk.answered[q])
            missing = true;
        else
            answered++;
    }
    if (missing || chk.hours_unreadable)
        c->incomplete++;
    else
        c->complete++;
    if (chk.stale)
        c->stale++;
    if (missing || chk.hours_unreadable || chk.stale)
        c->problem = true;
    const char *nom = mg_body_str(b, "nom");
    const char *commune = mg_body_str(b, "commune");
    char last[32];
    mg_time_iso(chk.last_update_ms, last);
    last[10] = '\0';
    if (c->json) {
        json_array_append_new(c->array, mg_check_json(mg_record_rid(rec), b, &chk));
        return 0;
    }
    char id[9], head[1024];
    snprintf(id, sizeof id, "%.8s", mg_record_rid(rec));
    snprintf(head, sizeof head, "%s — %s", nom ? nom : "(sans nom)", commune ? commune : "");
    char first[32];
    snprintf(first, sizeof first, "\n%s  ", id);
    s_wrapped(stdout, first, head);
    printf("  Complétude : %d %% (%d question%s sur 8)\n", chk.score, answered,
           answered > 1 ? "s" : "");
    for (int q = 0; q < MG_Q_COUNT; q++) {
        /* "  ✗ Quelle durée ?       manque : ..." with the details wrapped
           under their first column. */
        const char *qt = mg_question_text(q);
        int pad = 21 - s_width(qt, strlen(qt));
        char prefix[128];
        snprintf(prefix, sizeof prefix, "  %s %s%*s", chk.answered[q] ? "✓" : "✗", qt,
                 pad > 0 ? pad : 1, "");
        char line[600] = "";
        if (!chk.answered[q])
            snprintf(line, sizeof line, "manque : %s", chk.missing[q]);
        else if (chk.advice[q][0])
            snprintf(line, sizeof line, "conseil : %s", chk.advice[q]);
        if (line[0]) {
            s_wrapped_at(stdout, prefix, 25, line);
        } else {
            /* No trailing blanks. */
            snprintf(prefix, sizeof prefix, "  %s %s", chk.answered[q] ? "✓" : "✗", qt);
            printf("%s\n", prefix);
        }
    }
    if (chk.hours_unreadable) {
        char line[600];
        snprintf(line, sizeof line, "Horaires illisibles : %s (syntaxe : Mo-Fr 09:00-12:00,"
                 "14:00-17:00 ; Sa 09:00-12:00)", chk.hours_why);
        s_wrapped(stdout, "  ⚠ ", line);
    }
    if (chk.stale) {
        char line[600];
        snprintf(line, sizeof line,
                 "Communiquer régulièrement : pas de mise à jour depuis %d jours (le %s, plus "
                 "de 6 mois). Relisez l'offre et republiez-la (maillage offer update %s "
                 "--date-maj …).",
                 chk.days_since_update, last, id);
        s_wrapped(stdout, "  ⚠ ", line);
    }
    return 0;
}

/* Noon UTC of a YYYY-MM-DD date, in ms; -1 when invalid. */
static int64_t s_date_arg(const char *text)
{
    int y, m, d;
    char extra;
    if (sscanf(text, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || m < 1 || m > 12 || d < 1
        || d > 31 || y < 1970)
        return -1;
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (era * 146097 + doe - 719468) * 86400000 + 12 * 3600000;
}

int mg_cmd_check(int argc, char **argv, const char *dir)
{
    const char *id = NULL;
    bool json = false;
    int64_t now = mg_now_ms();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (mg_cli_is_help(a)) {
            fputs(s_check_usage, stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--today") == 0) {
            if (!(v = mg_cli_value(argc, argv, &i)))
                return 2;
            if ((now = s_date_arg(v)) < 0) {
                mg_errorf("maillage : date invalide : « %s » (AAAA-MM-JJ)\n", v);
                return 2;
            }
        } else if (!id && a[0] != '-') {
            id = a;
        } else {
            return mg_cli_unknown("check", a);
        }
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, dir, &why);
    if (rc == MG_OK && (rc = mg_store_check(ctx.store, &why)) != MG_OK) {
        mg_cli_fail("check : la base est endommagée", rc, &why);
        mg_node_close(&ctx);
        return 1;
    }
    mg_record_t *profile = NULL;
    if (rc == MG_OK && mg_store_get(ctx.store, ctx.id.pk, "profile", &profile, NULL) == MG_OK
        && mg_record_deleted(profile))
        mg_record_destroy(&profile);
    s_check_t c = {.profile = profile ? mg_record_body(profile) : NULL, .now_ms = now,
                   .json = json, .array = json ? json_array() : NULL};
    if (rc == MG_OK && !json) {
        const char *name = c.profile ? mg_body_str(c.profile, "nom") : NULL;
        char text[1024];
        snprintf(text, sizeof text, "%s%s%s : les huit questions, et la fraîcheur.",
                 name ? "« " : "ce nœud", name ? name : "", name ? " »" : "");
        s_wrapped(stdout, "Vérification des offres de ", text);
    }
    if (rc == MG_OK && id) {
        uint8_t author[MG_KEY_BYTES];
        char rid[MG_RID_MAX + 1];
        mg_record_t *rec = NULL;
        rc = mg_store_resolve(ctx.store, "offer", id, ctx.id.pk, author, rid, &why);
        if (rc == MG_ERR_NOT_FOUND)
            rc = mg_why_set(&why, rc, "aucune offre de ce nœud ne commence par « %s » "
                                      "(maillage offer list --mine)", id);
        if (rc == MG_OK)
            rc = mg_store_get(ctx.store, author, rid, &rec, &why);
        if (rc == MG_OK)
            s_check_one(rec, &c);
        mg_record_destroy(&rec);
    } else if (rc == MG_OK) {
        mg_offer_query_t q = {.author = ctx.id.pk};
        rc = mg_store_offers(ctx.store, &q, s_check_one, &c, &why);
    }
    if (rc == MG_OK) {
        if (json) {
            json_t *j = json_pack("{s:o,s:I,s:I,s:I,s:I,s:b}", "offres", c.array,
                                  "nombre", (json_int_t) c.offers, "completes",
                                  (json_int_t) c.complete, "a_completer",
                                  (json_int_t) c.incomplete, "a_mettre_a_jour",
                                  (json_int_t) c.stale, "tout_va_bien",
                                  !c.problem && c.offers > 0);
            c.array = NULL;
            s_dump(j);
            json_decref(j);
        } else if (c.offers == 0) {
            printf("\nCe nœud n'a pas encore d'offre : « maillage offer add --help » pour en "
                   "publier une.\n");
        } else {
            char text[512];
            size_t n = (size_t) snprintf(text, sizeof text, "%zu offre%s complète%s sur %zu",
                                         c.complete, c.complete > 1 ? "s" : "",
                                         c.complete > 1 ? "s" : "", c.offers);
            if (c.incomplete && n < sizeof text)
                n += (size_t) snprintf(text + n, sizeof text - n, ", %zu à compléter",
                                       c.incomplete);
            if (c.stale && n < sizeof text)
                n += (size_t) snprintf(text + n, sizeof text - n, ", %zu à mettre à jour",
                                       c.stale);
            if (n < sizeof text)
                snprintf(text + n, sizeof text - n, ".");
            printf("\n");
            s_wrapped(stdout, "Bilan : ", text);
            if (c.incomplete)
                s_wrapped(stdout, "Pour compléter : ",
                          "maillage offer update ID --duree \"…\" --frequence \"…\" "
                          "(voir maillage offer update --help).");
        }
    }
    json_decref(c.array);
    mg_record_destroy(&profile);
    mg_node_close(&ctx);
    if (rc != MG_OK)
        return mg_cli_fail("check", rc, &why);
    return c.problem || c.offers == 0 ? 1 : 0;
}
