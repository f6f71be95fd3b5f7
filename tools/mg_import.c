/*  mg_import.c - importing lieux in the national standard (CSV or JSON,
    any schema generation) as offers signed by this node.

    Three steps, so that a bad file never leaves half an import behind:
    1. read: the whole file is parsed (jansson, or libcsv in strict mode)
       into one JSON object per lieu, each with its position in the file;
    2. map: every lieu is mapped onto the standard v1.0.2 (the tables below,
       documented in docs/import-mapping.md) and validated; the first
       error stops everything, with the lieu's position and the reason;
    3. apply: in one transaction, each lieu is signed with the next counter
       and applied, unless the stored version already has the same body.
*/
#include "mg_import.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <csv.h>
#include <msgpack.h>
#include <sodium.h>

#include "mg_offer.h"
#include "mg_text.h"

/* Largest file accepted: 256 MiB holds ~20x the whole national picture
   (~20,000 lieux of a few KiB each), while bounding what a stray file
   can make us allocate (jansson needs a few times the file's size). */
#define S_FILE_MAX (256u * 1024 * 1024)

/* Room left in a record for its envelope around the body: array headers,
   version, kind, author key (32), rid (<= 64), counter, time, flag, and
   the signature (64): 256 bytes is comfortably more than that. */
#define S_ENVELOPE_MAX 256

/* Most distinct lines of each kind kept for the summary; beyond that the
   summary says how many more there were. */
#define S_TALLY_MAX 1000

/* How a record id is derived from a lieu's (source, id). */
#define S_RID_CONTEXT "maillage-import"
#define S_RID_CHARS 16

/* ---------------------------------------------------------------------
   Formats
   --------------------------------------------------------------------- */

int mg_format_parse(const char *name, mg_format_t *out)
{
    static const struct {
        const char *name;
        mg_format_t format;
    } names[] = {
        {"standard-csv", MG_FORMAT_STANDARD_CSV},
        {"csv", MG_FORMAT_STANDARD_CSV},
        {"standard-json", MG_FORMAT_STANDARD_JSON},
        {"json", MG_FORMAT_STANDARD_JSON},
        {"geojson", MG_FORMAT_GEOJSON},
        {"auto", MG_FORMAT_AUTO},
    };
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].format;
            return MG_OK;
        }
    return MG_ERR_ARG;
}

static const char *s_format_name(mg_format_t f)
{
    switch (f) {
    case MG_FORMAT_STANDARD_CSV: return "CSV du standard";
    case MG_FORMAT_STANDARD_JSON: return "JSON du standard";
    case MG_FORMAT_GEOJSON: return "GeoJSON";
    case MG_FORMAT_AUTO: break;
    }
    return "automatique";
}

/* ---------------------------------------------------------------------
   The mapping tables (docs/import-mapping.md explains every line)
   --------------------------------------------------------------------- */

/* One label of an older vocabulary and its v1 equivalent. */
typedef struct {
    const char *from;     /* label as written by older files */
    const char *to_field; /* v1 field it belongs to; NULL: no v1 equivalent,
                             the label is kept under "non_mappe" */
    const char *to;       /* v1 label */
} s_label_t;

/* Services: the pre-v1 labels (standard 0.x, cartographie nationale until
   2023). Same table as the cartography's own data.inclusion importer
   (THEMATIQUES_TO_SERVICES in anct-cartographie-nationale). */
static const s_label_t s_services_old[] = {
    {"Devenir autonome dans les démarches administratives", "services", "Aide aux démarches administratives"},
    {"Réaliser des démarches administratives avec un accompagnement", "services", "Aide aux démarches administratives"},
    {"Accompagner les démarches de santé", "services", "Aide aux démarches administratives"},
    {"Prendre en main un smartphone ou une tablette", "services", "Maîtrise des outils numériques du quotidien"},
    {"Prendre en main un ordinateur", "services", "Maîtrise des outils numériques du quotidien"},
    {"Utiliser le numérique au quotidien", "services", "Maîtrise des outils numériques du quotidien"},
    {"Approfondir ma culture numérique", "services", "Compréhension du monde numérique"},
    {"Promouvoir la citoyenneté numérique", "services", "Compréhension du monde numérique"},
    {"Favoriser mon insertion professionnelle", "services", "Insertion professionnelle via le numérique"},
    {"Créer et développer mon entreprise", "services", "Insertion professionnelle via le numérique"},
    {"Accéder à une connexion internet", "services", "Accès internet et matériel informatique"},
    {"Accéder à du matériel", "services", "Accès internet et matériel informatique"},
    {"S'équiper en matériel informatique", "services", "Acquisition de matériel informatique à prix solidaire"},
    {"Créer avec le numérique", "services", "Loisirs et créations numériques"},
    {"Soutenir la parentalité et l'éducation avec le numérique", "services", "Parentalité et éducation avec le numérique"},
    {NULL, NULL, NULL},
};

static const s_label_t s_modalites_old[] = {
    {"Seul : j'ai accès à du matériel et une connexion", "modalites_accompagnement", "En autonomie"},
    {"Avec de l'aide : je suis accompagné seul dans l'usage du numérique", "modalites_accompagnement", "Accompagnement individuel"},
    {"Dans un atelier : j'apprends collectivement à utiliser le numérique", "modalites_accompagnement", "Dans un atelier collectif"},
    {"A ma place : une personne habilitée fait les démarches à ma place", "modalites_accompagnement", "Accompagnement individuel"},
    {"À ma place : une personne habilitée fait les démarches à ma place", "modalites_accompagnement", "Accompagnement individuel"},
    /* An intermediate generation (2023) spelled v1's labels out. */
    {"À distance (par téléphone ou en visioconférence)", "modalites_accompagnement", "À distance"},
    {"Dans un atelier collectif (j'apprends collectivement à utiliser le numérique)", "modalites_accompagnement", "Dans un atelier collectif"},
    {NULL, NULL, NULL},
};

static const s_label_t s_frais_old[] = {
    {"Gratuit : Je peux accéder gratuitement au lieu et à ses services", "frais_a_charge", "Gratuit"},
    {"Gratuit sous condition : La gratuité est conditionnée à des critères (situation familiale, convention avec un organisme social...)", "frais_a_charge", "Gratuit sous condition"},
    {"Gratuit sous condition : La gratuité est conditionnée à des critères (situation familiale, convention avec un organisme social…)", "frais_a_charge", "Gratuit sous condition"},
    {"Payant : L'accès au lieu et/ou à ses services est payant", "frais_a_charge", "Payant"},
    {"Accepte le Pass numérique : Il est possible d'utiliser un Pass numérique pour accéder au lieu", "frais_a_charge", "Gratuit sous condition"},
    /* The cartography's importers disagree (Payant for data.inclusion,
       "Gratuit sous condition" in v1's own description): not guessed. */
    {"Adhésion : L'accès au lieu et/ou à ses services nécessite d'y adhérer", NULL, NULL},
    {"Adhésion", NULL, NULL},
    {NULL, NULL, NULL},
};

static const s_label_t s_labels_old[] = {
    {"CNFS", "dispositif_programmes_nationaux", "Conseillers numériques"},
    {"Conseiller numérique", "dispositif_programmes_nationaux", "Conseillers numériques"},
    {"Grandes écoles du numérique", "dispositif_programmes_nationaux", "Grande école du numérique"},
    {"Point numérique CAF", "dispositif_programmes_nationaux", "Point d'accès numérique CAF"},
    {"Point relais CAF", "dispositif_programmes_nationaux", "Point d'accès numérique CAF"},
    {"Fabriques de Territoire", "formations_labels", "Fabriques de Territoire"},
    {"APTIC", NULL, NULL},
    {"Relais pôle emploi", NULL, NULL},
    {"French Tech", NULL, NULL},
    {"Campus connecté", NULL, NULL},
    {NULL, NULL, NULL},
};

static const s_label_t s_publics_old[] = {
    {"Jeunes (16-26 ans)", "publics_specifiquement_adresses", "Jeunes"},
    {"Familles/enfants", "publics_specifiquement_adresses", "Familles et/ou enfants"},
    {"Seniors (+ 65 ans)", "publics_specifiquement_adresses", "Seniors"},
    {"Uniquement femmes", "publics_specifiquement_adresses", "Femmes"},
    {"Déficience visuelle", "prise_en_charge_specifique", "Déficience visuelle"},
    {"Surdité", "prise_en_charge_specifique", "Surdité"},
    {"Handicaps mentaux : déficiences limitant les activités d'une personne", "prise_en_charge_specifique", "Handicaps mentaux"},
    {"Personnes en situation d'illettrisme", "prise_en_charge_specifique", "Illettrisme"},
    {"Public langues étrangères", "prise_en_charge_specifique", "Langues étrangères (autres)"},
    /* v1 lists the publics a place specifically addresses; "everyone
       adult" is the absence of such a list, not a value of it. */
    {"Adultes", NULL, NULL},
    {"Handicaps psychiques : troubles psychiatriques donnant lieu à des atteintes comportementales", NULL, NULL},
    {NULL, NULL, NULL},
};

/* How a field found in a file is read. */
typedef struct {
    const char *name;           /* field name in the file */
    bool legacy;                /* not a v1 field */
    const char *rename;         /* legacy field whose values go unchanged
                                   to this v1 field */
    const s_label_t *labels;    /* older vocabulary of the field's values */
    const char *targets[3];     /* legacy enumeration: v1 fields whose own
                                   labels are taken as they are */
} s_source_t;

static const s_source_t s_sources[] = {
    {"services", false, NULL, s_services_old, {NULL}},
    {"modalites_accompagnement", false, NULL, s_modalites_old, {NULL}},
    {"frais_a_charge", false, NULL, s_frais_old, {NULL}},
    {"dispositif_programmes_nationaux", false, NULL, s_labels_old, {NULL}},
    {"publics_specifiquement_adresses", false, NULL, s_publics_old, {NULL}},
    {"prise_en_charge_specifique", false, NULL, s_publics_old, {NULL}},
    {"conditions_acces", true, NULL, s_frais_old, {"frais_a_charge", NULL}},
    {"labels_nationaux", true, NULL, s_labels_old,
     {"dispositif_programmes_nationaux", "formations_labels", NULL}},
    {"publics_accueillis", true, NULL, s_publics_old,
     {"publics_specifiquement_adresses", "prise_en_charge_specifique", NULL}},
    {"courriel", true, "courriels", NULL, {NULL}},
    {"accessibilite", true, "fiche_acces_libre", NULL, {NULL}},
    {"labels_autres", true, "autres_formations_labels", NULL, {NULL}},
    {NULL, false, NULL, NULL, {NULL}},
};

static const s_source_t *s_source(const char *name)
{
    for (const s_source_t *s = s_sources; s->name; s++)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

/* Compares labels the way people type them: the typographic apostrophe
   (U+2019) and the ASCII one are the same character. */
static bool s_label_eq(const char *a, const char *b)
{
    static const char apos[] = "\xe2\x80\x99";
    for (;;) {
        bool qa = *a == '\'', qb = *b == '\'';
        if (!qa && strncmp(a, apos, 3) == 0) {
            qa = true;
            a += 2;
        }
        if (!qb && strncmp(b, apos, 3) == 0) {
            qb = true;
            b += 2;
        }
        if (qa || qb) {
            if (!(qa && qb))
                return false;
        } else if (*a != *b) {
            return false;
        }
        if (!*a)
            return true;
        a++;
        b++;
    }
}

/* The canonical v1 label of `field` equal to `item`, or NULL. */
static const char *s_v1_label(const mg_field_t *field, const char *item)
{
    for (size_t i = 0; field->values && field->values[i]; i++)
        if (s_label_eq(item, field->values[i]))
            return field->values[i];
    return NULL;
}

static const s_label_t *s_old_label(const s_label_t *table, const char *item)
{
    for (size_t i = 0; table && table[i].from; i++)
        if (s_label_eq(item, table[i].from))
            return &table[i];
    return NULL;
}

/* ---------------------------------------------------------------------
   The report
   --------------------------------------------------------------------- */

typedef enum {
    S_T_RENAME,   /* legacy field renamed: field -> to_field */
    S_T_LABEL,    /* value mapped: field value -> to_field to */
    S_T_SEP,      /* ';' read as the list separator in field (value ";") */
    S_T_UNMAPPED, /* value kept in non_mappe: field value */
    S_T_UNKNOWN,  /* unknown field kept in non_mappe: field */
    S_T_DUP,      /* a lieu repeated identically in the file: field = id */
} s_tally_kind_t;

typedef struct {
    s_tally_kind_t kind;
    char *field;    /* field in the file */
    char *value;    /* value in the file (LABEL, UNMAPPED) */
    char *to_field; /* RENAME, LABEL */
    char *to;       /* LABEL */
    size_t count;   /* lieux (or values) concerned */
} s_tally_t;

struct mg_import_report_t {
    char *path;            /* the imported file, as given */
    mg_format_t format;    /* the format actually read */
    size_t read;           /* lieux read */
    size_t new_;           /* offers created */
    size_t updated;        /* offers given a new version */
    size_t unchanged;      /* offers whose stored body was already the same */
    size_t duplicates;     /* lieux repeated identically in the file */
    size_t unmapped;       /* values kept under "non_mappe" */
    s_tally_t *tallies;    /* in order of first appearance */
    size_t ntallies;
    size_t cap;
    size_t dropped[6];     /* distinct lines beyond S_TALLY_MAX, per kind */
};

static bool s_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static char *s_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int s_tally(mg_import_report_t *r, s_tally_kind_t kind,
                   const char *field, const char *value, const char *to_field,
                   const char *to)
{
    size_t same_kind = 0;
    for (size_t i = 0; i < r->ntallies; i++) {
        s_tally_t *t = &r->tallies[i];
        if (t->kind != kind)
            continue;
        same_kind++;
        if (s_same(t->field, field) && s_same(t->value, value)
            && s_same(t->to_field, to_field) && s_same(t->to, to)) {
            t->count++;
            return MG_OK;
        }
    }
    if (same_kind >= S_TALLY_MAX) {
        r->dropped[kind]++;
        return MG_OK;
    }
    if (r->ntallies == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 32;
        s_tally_t *t = realloc(r->tallies, cap * sizeof *t);
        if (!t)
            return MG_ERR_NOMEM;
        r->tallies = t;
        r->cap = cap;
    }
    s_tally_t *t = &r->tallies[r->ntallies];
    *t = (s_tally_t){kind, s_dup(field), s_dup(value), s_dup(to_field),
                     s_dup(to), 1};
    if ((field && !t->field) || (value && !t->value)
        || (to_field && !t->to_field) || (to && !t->to)) {
        free(t->field);
        free(t->value);
        free(t->to_field);
        free(t->to);
        return MG_ERR_NOMEM;
    }
    r->ntallies++;
    return MG_OK;
}

void mg_import_report_destroy(mg_import_report_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_import_report_t *r = *self_p;
    for (size_t i = 0; i < r->ntallies; i++) {
        free(r->tallies[i].field);
        free(r->tallies[i].value);
        free(r->tallies[i].to_field);
        free(r->tallies[i].to);
    }
    free(r->tallies);
    free(r->path);
    free(r);
    *self_p = NULL;
}

size_t mg_import_report_read(const mg_import_report_t *r) { return r->read; }
size_t mg_import_report_new(const mg_import_report_t *r) { return r->new_; }
size_t mg_import_report_updated(const mg_import_report_t *r) { return r->updated; }
size_t mg_import_report_unchanged(const mg_import_report_t *r) { return r->unchanged; }
size_t mg_import_report_unmapped(const mg_import_report_t *r) { return r->unmapped; }

size_t mg_import_report_count(const mg_import_report_t *r, const char *field,
                              const char *value, const char *to_field,
                              const char *to)
{
    size_t n = 0;
    for (size_t i = 0; i < r->ntallies; i++) {
        const s_tally_t *t = &r->tallies[i];
        if (s_same(t->field, field) && s_same(t->value, value)
            && s_same(t->to_field, to_field) && s_same(t->to, to))
            n += t->count;
    }
    return n;
}

/* "1 lieu", "2 lieux". */
static const char *s_lieux(size_t n)
{
    return n > 1 ? "lieux" : "lieu";
}

void mg_import_report_print(const mg_import_report_t *r, FILE *out)
{
    fprintf(out, "Import de « %s » (%s) : %zu %s %s.\n", r->path,
            s_format_name(r->format), r->read, s_lieux(r->read),
            r->read > 1 ? "lus" : "lu");
    fprintf(out, "  %zu %s, %zu %s à jour, %zu %s.\n", r->new_,
            r->new_ > 1 ? "nouvelles offres" : "nouvelle offre", r->updated,
            r->updated > 1 ? "offres mises" : "offre mise", r->unchanged,
            r->unchanged > 1 ? "offres inchangées" : "offre inchangée");
    if (r->duplicates)
        fprintf(out, "  %zu %s en double dans le fichier, à l'identique : "
                     "importé%s une seule fois.\n",
                r->duplicates, s_lieux(r->duplicates),
                r->duplicates > 1 ? "s" : "");

    static const struct {
        s_tally_kind_t kind;
        const char *title;
    } sections[] = {
        {S_T_RENAME, "Champs de l'ancien schéma renommés"},
        {S_T_LABEL, "Valeurs de l'ancien schéma remplacées par celles du standard v1"},
        {S_T_SEP, "Listes séparées par « ; » (ancien schéma) lues comme des listes « | »"},
        {S_T_UNMAPPED, "Valeurs sans équivalent dans le standard v1, conservées telles quelles dans le champ « non_mappe »"},
        {S_T_UNKNOWN, "Champs inconnus du standard, conservés tels quels dans le champ « non_mappe »"},
        {S_T_DUP, "Lieux en double dans le fichier (identifiant)"},
    };
    /* Lines grouped by field (in order of first appearance), most
       frequent first. */
    size_t *order = malloc((r->ntallies ? r->ntallies : 1) * sizeof *order);
    size_t *rank = malloc((r->ntallies ? r->ntallies : 1) * sizeof *rank);
    if (!order || !rank) {
        free(order);
        free(rank);
        return;
    }
    for (size_t i = 0; i < r->ntallies; i++) {
        order[i] = i;
        rank[i] = i;
        for (size_t k = 0; k < i; k++)
            if (strcmp(r->tallies[k].field, r->tallies[i].field) == 0) {
                rank[i] = rank[k];
                break;
            }
    }
    /* Insertion sort: a summary has tens of lines. */
    for (size_t i = 1; i < r->ntallies; i++) {
        size_t x = order[i], k = i;
        while (k > 0) {
            size_t y = order[k - 1];
            bool after = rank[y] > rank[x]
                         || (rank[y] == rank[x]
                             && r->tallies[y].count < r->tallies[x].count);
            if (!after)
                break;
            order[k] = y;
            k--;
        }
        order[k] = x;
    }
    for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
        bool any = false;
        for (size_t o = 0; o < r->ntallies; o++) {
            const s_tally_t *t = &r->tallies[order[o]];
            if (t->kind != sections[s].kind)
                continue;
            if (!any)
                fprintf(out, "\n%s :\n", sections[s].title);
            any = true;
            switch (t->kind) {
            case S_T_RENAME:
                fprintf(out, "  %s → %s : %zu %s\n", t->field, t->to_field,
                        t->count, s_lieux(t->count));
                break;
            case S_T_LABEL:
                if (strcmp(t->field, t->to_field) == 0)
                    fprintf(out, "  %s : « %s » → « %s » : %zu %s\n", t->field,
                            t->value, t->to, t->count, s_lieux(t->count));
                else
                    fprintf(out, "  %s « %s » → %s « %s » : %zu %s\n",
                            t->field, t->value, t->to_field, t->to, t->count,
                            s_lieux(t->count));
                break;
            case S_T_SEP:
            case S_T_UNKNOWN:
                fprintf(out, "  %s : %zu %s\n", t->field, t->count,
                        s_lieux(t->count));
                break;
            case S_T_UNMAPPED:
                fprintf(out, "  %s : « %s » : %zu %s\n", t->field, t->value,
                        t->count, s_lieux(t->count));
                break;
            case S_T_DUP:
                fprintf(out, "  %s : %zu fois de plus\n", t->field, t->count);
                break;
            }
        }
        if (r->dropped[sections[s].kind])
            fprintf(out, "  … et %zu autres\n", r->dropped[sections[s].kind]);
    }
    free(order);
    free(rank);
    if (r->unmapped)
        fprintf(out, "\n%zu %s conservée%s dans « non_mappe » : rien n'est perdu, "
                     "mais ces informations ne sont pas cherchables tant que le "
                     "standard ne les prévoit pas.\n",
                r->unmapped, r->unmapped > 1 ? "valeurs" : "valeur",
                r->unmapped > 1 ? "s" : "");
    else
        fprintf(out, "\nToutes les valeurs ont trouvé leur place dans le standard v1.\n");
}

json_t *mg_import_report_json(const mg_import_report_t *r)
{
    static const char *const kinds[] = {"renamed_fields", "mapped_values",
                                        "semicolon_lists", "unmapped_values",
                                        "unknown_fields", "duplicates"};
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "file",
                          r->path, "format",
                          r->format == MG_FORMAT_STANDARD_CSV ? "standard-csv"
                                                              : "standard-json",
                          "read", (json_int_t) r->read, "new",
                          (json_int_t) r->new_, "updated",
                          (json_int_t) r->updated, "unchanged",
                          (json_int_t) r->unchanged, "duplicates",
                          (json_int_t) r->duplicates, "unmapped",
                          (json_int_t) r->unmapped);
    if (!j)
        return NULL;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        json_t *a = json_array();
        if (!a || json_object_set_new(j, kinds[k], a) != 0) {
            json_decref(j);
            return NULL;
        }
        for (size_t i = 0; i < r->ntallies; i++) {
            const s_tally_t *t = &r->tallies[i];
            if ((size_t) t->kind != k)
                continue;
            json_t *e = json_pack("{s:s, s:I}", "field", t->field, "count",
                                  (json_int_t) t->count);
            if (e && t->value)
                json_object_set_new(e, "value", json_string(t->value));
            if (e && t->to_field)
                json_object_set_new(e, "to_field", json_string(t->to_field));
            if (e && t->to)
                json_object_set_new(e, "to", json_string(t->to));
            if (!e || json_array_append_new(a, e) != 0) {
                json_decref(j);
                return NULL;
            }
        }
    }
    return j;
}

/* ---------------------------------------------------------------------
   Reading the file
   --------------------------------------------------------------------- */

/* One lieu as read, then as mapped. */
typedef struct {
    size_t index;     /* 1-based rank in the file */
    size_t line;      /* CSV: the row's first line; 0 for JSON */
    json_t *obj;      /* the lieu's fields as read (strings for CSV) */
    mg_body_t *body;  /* the mapped body */
    char rid[S_RID_CHARS + 1];
} s_lieu_t;

typedef struct {
    const char *path;
    mg_format_t format;
    s_lieu_t *lieux;
    size_t count;
    size_t cap;
    mg_import_report_t *report;
} s_import_t;

static int s_add_lieu(s_import_t *im, json_t *obj, size_t line)
{
    if (im->count == im->cap) {
        size_t cap = im->cap ? 2 * im->cap : 256;
        s_lieu_t *l = realloc(im->lieux, cap * sizeof *l);
        if (!l) {
            json_decref(obj);
            return MG_ERR_NOMEM;
        }
        im->lieux = l;
        im->cap = cap;
    }
    im->lieux[im->count] = (s_lieu_t){im->count + 1, line, obj, NULL, ""};
    im->count++;
    return MG_OK;
}

/* Copies at most `max` bytes of `s` for a message, never cutting a UTF-8
   sequence in two, and marks a cut with "…". */
static const char *s_clip(const char *s, size_t max, char *buf, size_t size)
{
    size_t n = strlen(s);
    if (n <= max || size < 8) {
        snprintf(buf, size, "%s", n <= max ? s : "…");
        return buf;
    }
    if (max > size - 4)
        max = size - 4;
    while (max > 0 && ((unsigned char) s[max] & 0xC0) == 0x80)
        max--; /* back to the start of a character */
    memcpy(buf, s, max);
    memcpy(buf + max, "…", 4); /* 3 bytes and the NUL */
    return buf;
}

/* A message cut by the size of mg_why_t may end inside a character:
   drop the incomplete one, so that what we print is valid UTF-8. */
static void s_utf8_tail(char *text)
{
    size_t n = strlen(text), i = n;
    while (i > 0 && ((unsigned char) text[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0 || !((unsigned char) text[i - 1] & 0x80))
        return; /* ASCII last, or nothing but continuation bytes */
    unsigned char lead = (unsigned char) text[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (n - (i - 1) < need)
        text[i - 1] = '\0';
}

/* Where a lieu is, for messages: "ligne 12" or "lieu n° 3". */
static void s_where(const s_import_t *im, const s_lieu_t *l, char *out,
                    size_t size)
{
    int n = l->line ? snprintf(out, size, "ligne %zu", l->line)
                    : snprintf(out, size, "lieu n° %zu du tableau", l->index);
    const json_t *id = json_object_get(l->obj, "id");
    char clip[72];
    if (n > 0 && (size_t) n < size && json_is_string(id))
        snprintf(out + n, size - (size_t) n, " (id « %s »)",
                 s_clip(json_string_value(id), 60, clip, sizeof clip));
    (void) im;
}

static int s_read_file(const char *path, char **data, size_t *len,
                       mg_why_t *why)
{
    *data = NULL;
    *len = 0;
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return mg_why_set(why, errno == ENOENT ? MG_ERR_NOT_FOUND : MG_ERR_IO,
                          "%s : impossible d'ouvrir le fichier (%s)", path,
                          strerror(errno));
    struct stat st;
    if (!is_stdin && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)
        && (uintmax_t) st.st_size > S_FILE_MAX) {
        fclose(f);
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "%s : fichier trop gros (%jd octets, maximum %u Mio) ; "
                          "découpez-le en plusieurs fichiers",
                          path, (intmax_t) st.st_size, S_FILE_MAX >> 20);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? MG_OK : MG_ERR_NOMEM;
    while (rc == MG_OK) {
        if (n == cap) {
            if (cap > S_FILE_MAX) {
                rc = mg_why_set(why, MG_ERR_TOO_LARGE,
                                "%s : fichier trop gros (maximum %u Mio) ; "
                                "découpez-le en plusieurs fichiers",
                                path, S_FILE_MAX >> 20);
                break;
            }
            char *b = realloc(buf, cap * 2);
            if (!b) {
                rc = MG_ERR_NOMEM;
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = mg_why_set(why, MG_ERR_IO, "%s : erreur de lecture (%s)",
                                path, strerror(errno));
            break;
        }
    }
    if (!is_stdin)
        fclose(f);
    if (rc == MG_OK && n > S_FILE_MAX)
        rc = mg_why_set(why, MG_ERR_TOO_LARGE,
                        "%s : fichier trop gros (maximum %u Mio)", path,
                        S_FILE_MAX >> 20);
    if (rc != MG_OK) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return MG_OK;
}

static size_t s_skip_bom(const char *data, size_t len)
{
    return len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

static mg_format_t s_guess(const char *data, size_t len)
{
    for (size_t i = s_skip_bom(data, len); i < len; i++) {
        char c = data[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        return c == '[' || c == '{' ? MG_FORMAT_STANDARD_JSON
                                    : MG_FORMAT_STANDARD_CSV;
    }
    return MG_FORMAT_STANDARD_CSV;
}

static const char *s_json_reason(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_out_of_memory: return "mémoire insuffisante";
    case json_error_stack_overflow: return "imbrication trop profonde";
    case json_error_invalid_utf8: return "octets qui ne sont pas de l'UTF-8 valide";
    case json_error_premature_end_of_input: return "fin de fichier prématurée (fichier tronqué ?)";
    case json_error_end_of_input_expected: return "contenu en trop après la fin du tableau";
    case json_error_invalid_syntax: return "syntaxe JSON invalide";
    case json_error_null_character: return "caractère nul (\\u0000) interdit";
    case json_error_duplicate_key: return "clé en double dans un objet";
    case json_error_numeric_overflow: return "nombre trop grand";
    default: return "JSON invalide";
    }
}

static int s_read_json(s_import_t *im, const char *data, size_t len,
                       mg_why_t *why)
{
    size_t bom = s_skip_bom(data, len);
    json_error_t err;
    json_t *root = json_loadb(data + bom, len - bom, JSON_REJECT_DUPLICATES,
                              &err);
    if (!root)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "%s, ligne %d, colonne %d : %s (%s)", im->path,
                          err.line, err.column, s_json_reason(&err), err.text);
    if (!json_is_array(root)) {
        bool object = json_is_object(root);
        json_decref(root);
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "%s : un tableau JSON de lieux est attendu "
                          "([ {…}, {…} ]), pas %s",
                          im->path, object ? "un objet" : "une valeur isolée");
    }
    int rc = MG_OK;
    for (size_t i = 0; i < json_array_size(root) && rc == MG_OK; i++) {
        json_t *o = json_array_get(root, i);
        if (!json_is_object(o)) {
            rc = mg_why_set(why, MG_ERR_SCHEMA,
                            "%s, lieu n° %zu du tableau : un objet {…} est attendu",
                            im->path, i + 1);
            break;
        }
        rc = s_add_lieu(im, json_incref(o), 0);
    }
    json_decref(root);
    return rc;
}

/* libcsv callbacks' state. */
typedef struct {
    s_import_t *im;
    size_t line;          /* line being fed to the parser */
    size_t row_newlines;  /* newlines inside the current row's fields */
    size_t last_row_end;  /* line where the previous row ended */
    char **cells;         /* current row */
    size_t *cell_lens;
    size_t ncells;
    size_t cap;
    char **header;        /* column names, once read */
    size_t ncols;
    int rc;               /* first error, reported after the chunk */
    mg_why_t *why;
} s_csv_t;

static void s_csv_clear_row(s_csv_t *c)
{
    for (size_t i = 0; i < c->ncells; i++)
        free(c->cells[i]);
    c->ncells = 0;
    c->row_newlines = 0;
}

static void s_csv_field(void *s, size_t len, void *arg)
{
    s_csv_t *c = arg;
    if (c->rc != MG_OK)
        return;
    const char *p = s ? s : "";
    for (size_t i = 0; i < len; i++)
        if (p[i] == '\n')
            c->row_newlines++;
    if (c->ncells == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        char **cells = realloc(c->cells, cap * sizeof *cells);
        size_t *lens = cells ? realloc(c->cell_lens, cap * sizeof *lens) : NULL;
        if (cells)
            c->cells = cells;
        if (!cells || !lens) {
            c->rc = MG_ERR_NOMEM;
            return;
        }
        c->cell_lens = lens;
        c->cap = cap;
    }
    char *cell = malloc(len + 1);
    if (!cell) {
        c->rc = MG_ERR_NOMEM;
        return;
    }
    memcpy(cell, p, len);
    cell[len] = '\0';
    c->cell_lens[c->ncells] = len;
    c->cells[c->ncells++] = cell;
}

/* Trims ASCII blanks in place; returns the new start. */
static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'
                 || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static void s_csv_row(int term, void *arg)
{
    s_csv_t *c = arg;
    (void) term;
    if (c->rc != MG_OK)
        return;
    size_t first = c->line - c->row_newlines;
    c->last_row_end = c->line;
    for (size_t i = 0; i < c->ncells; i++)
        if (!mg_utf8_valid(c->cells[i], c->cell_lens[i])) {
            c->rc = mg_why_set(c->why, MG_ERR_UTF8,
                               "%s, ligne %zu, colonne %zu%s%s%s : octets qui ne "
                               "sont pas de l'UTF-8 valide (ou caractère nul) ; "
                               "réenregistrez le fichier en UTF-8",
                               c->im->path, first, i + 1,
                               c->header && i < c->ncols ? " (« " : "",
                               c->header && i < c->ncols ? c->header[i] : "",
                               c->header && i < c->ncols ? " »)" : "");
            s_csv_clear_row(c);
            return;
        }
    if (!c->header) {
        c->header = calloc(c->ncells ? c->ncells : 1, sizeof(char *));
        if (!c->header) {
            c->rc = MG_ERR_NOMEM;
            return;
        }
        c->ncols = c->ncells;
        for (size_t i = 0; i < c->ncells; i++) {
            char *name = s_trim(c->cells[i]);
            c->header[i] = strdup(name);
            if (!c->header[i]) {
                c->rc = MG_ERR_NOMEM;
                break;
            }
            if (!*name) {
                c->rc = mg_why_set(c->why, MG_ERR_SCHEMA,
                                   "%s, ligne %zu : la colonne %zu de l'en-tête n'a pas de nom",
                                   c->im->path, first, i + 1);
                break;
            }
            for (size_t k = 0; k < i; k++)
                if (strcmp(c->header[k], name) == 0) {
                    c->rc = mg_why_set(c->why, MG_ERR_SCHEMA,
                                       "%s, ligne %zu : la colonne « %s » apparaît deux fois dans l'en-tête",
                                       c->im->path, first, name);
                    break;
                }
            if (c->rc != MG_OK)
                break;
        }
        s_csv_clear_row(c);
        return;
    }
    if (c->ncells != c->ncols) {
        c->rc = mg_why_set(c->why, MG_ERR_SCHEMA,
                           "%s, ligne %zu : %zu colonnes au lieu des %zu de l'en-tête",
                           c->im->path, first, c->ncells, c->ncols);
        s_csv_clear_row(c);
        return;
    }
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < c->ncells; i++) {
        /* An empty cell is an absent field. */
        if (c->cell_lens[i] == 0)
            continue;
        json_t *v = json_stringn(c->cells[i], c->cell_lens[i]);
        if (!v || json_object_set_new(obj, c->header[i], v) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    if (!obj)
        c->rc = MG_ERR_NOMEM;
    else
        c->rc = s_add_lieu(c->im, obj, first);
    s_csv_clear_row(c);
}

static int s_read_csv(s_import_t *im, const char *data, size_t len,
                      mg_why_t *why)
{
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        return MG_ERR_NOMEM;
    s_csv_t c = {.im = im, .line = 1, .rc = MG_OK, .why = why};
    size_t off = s_skip_bom(data, len);
    /* Fed one line at a time, so that an error is known by its line. */
    while (off < len && c.rc == MG_OK) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t chunk = nl ? (size_t) (nl - (data + off)) + 1 : len - off;
        size_t done = csv_parse(&p, data + off, chunk, s_csv_field, s_csv_row, &c);
        if (done != chunk && c.rc == MG_OK) {
            c.rc = csv_error(&p) == CSV_EPARSE
                       ? mg_why_set(why, MG_ERR_MALFORMED,
                                    "%s, ligne %zu, colonne %zu (octet) : guillemet mal placé ; "
                                    "un champ qui contient des guillemets doit être entouré "
                                    "de guillemets, et ses guillemets intérieurs doublés (\"\")",
                                    im->path, c.line, done + 1)
                       : MG_ERR_NOMEM;
        }
        off += chunk;
        if (nl)
            c.line++;
    }
    if (c.rc == MG_OK) {
        /* The last line, if it lacks its newline, is still on c.line. */
        if (len > 0 && data[len - 1] == '\n')
            c.line--;
        if (csv_fini(&p, s_csv_field, s_csv_row, &c) != 0 && c.rc == MG_OK)
            c.rc = mg_why_set(why, MG_ERR_MALFORMED,
                              "%s, ligne %zu : fin du fichier dans un champ entre "
                              "guillemets ouvert à partir de la ligne %zu "
                              "(guillemet fermant manquant, ou fichier tronqué)",
                              im->path, c.line, c.last_row_end + 1);
    }
    if (c.rc == MG_OK && !c.header)
        c.rc = mg_why_set(why, MG_ERR_SCHEMA,
                          "%s : fichier vide (l'en-tête du standard est attendu)",
                          im->path);
    s_csv_clear_row(&c);
    free(c.cells);
    free(c.cell_lens);
    for (size_t i = 0; c.header && i < c.ncols; i++)
        free(c.header[i]);
    free(c.header);
    csv_free(&p);
    return c.rc;
}

/* ---------------------------------------------------------------------
   Mapping one lieu
   --------------------------------------------------------------------- */

/* The lists being built for one lieu, per v1 field. */
typedef struct {
    const char *field;
    const char *items[MG_LIST_MAX];
    size_t count;
} s_list_t;

typedef struct {
    s_import_t *im;
    s_lieu_t *lieu;
    mg_body_t *body;
    s_list_t lists[32];       /* one per multi-valued v1 field in use */
    size_t nlists;
    json_t *non_mappe;        /* original field -> original text */
    json_t *keep;             /* owns texts the lists point into */
    mg_why_t *why;
} s_map_t;

static int s_fail(s_map_t *m, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets `why` to "<file>, <where> : <reason>". */
static int s_fail(s_map_t *m, int rc, const char *fmt, ...)
{
    if (!m->why)
        return rc;
    char where[160];
    s_where(m->im, m->lieu, where, sizeof where);
    int n = snprintf(m->why->text, sizeof m->why->text, "%s, %s : ",
                     m->im->path, where);
    if (n > 0 && (size_t) n < sizeof m->why->text) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->why->text + n, sizeof m->why->text - (size_t) n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static s_list_t *s_list(s_map_t *m, const char *field)
{
    for (size_t i = 0; i < m->nlists; i++)
        if (strcmp(m->lists[i].field, field) == 0)
            return &m->lists[i];
    if (m->nlists == sizeof m->lists / sizeof m->lists[0])
        return NULL;
    s_list_t *l = &m->lists[m->nlists++];
    l->field = field;
    l->count = 0;
    return l;
}

/* Adds an item to a v1 list, once. `item` must outlive the mapping. */
static int s_list_add(s_map_t *m, const char *field, const char *item)
{
    s_list_t *l = s_list(m, field);
    if (!l)
        return MG_ERR_NOMEM;
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i], item) == 0)
            return MG_OK;
    if (l->count == MG_LIST_MAX)
        return s_fail(m, MG_ERR_TOO_LARGE, "%s : trop de valeurs (maximum %d)",
                      field, MG_LIST_MAX);
    l->items[l->count++] = item;
    return MG_OK;
}

/* Keeps a copy of `s` for as long as the mapping runs. */
static const char *s_keep(s_map_t *m, const char *s)
{
    json_t *j = json_string(s);
    if (!j || json_array_append_new(m->keep, j) != 0)
        return NULL;
    return json_string_value(j);
}

/* Records a value that has no place in v1. For multi-valued fields the
   unmapped items accumulate, '|'-joined. */
static int s_unmapped(s_map_t *m, const char *field, const char *text,
                      s_tally_kind_t kind)
{
    json_t *prev = json_object_get(m->non_mappe, field);
    json_t *v;
    if (json_is_string(prev)) {
        v = json_sprintf("%s|%s", json_string_value(prev), text);
    } else {
        v = json_string(text);
    }
    if (!v || json_object_set_new(m->non_mappe, field, v) != 0)
        return MG_ERR_NOMEM;
    m->im->report->unmapped++;
    return s_tally(m->im->report, kind, field,
                   kind == S_T_UNMAPPED ? text : NULL, NULL, NULL);
}

/* The text of any JSON value, for non_mappe: strings as they are, other
   values as compact JSON. Caller frees. */
static char *s_text(const json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static const char *s_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "un objet";
    case JSON_ARRAY: return "un tableau";
    case JSON_STRING: return "un texte";
    case JSON_INTEGER:
    case JSON_REAL: return "un nombre";
    case JSON_TRUE:
    case JSON_FALSE: return "un booléen";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* Splits a list value into trimmed, non-empty items, kept in m->keep.
   Enumerations split on both '|' and ';' (no label holds either); free
   text lists on '|', or on ';' when the text has no '|' (older files).
   Sets *count and *semi (';' served as separator). Returns MG_OK or an
   error with why set (when m->why is not NULL). */
static int s_split(s_map_t *m, const char *field, const json_t *v,
                   bool is_enum, const char **items, size_t max,
                   size_t *count, bool *semi)
{
    *semi = false;
    *count = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            const json_t *s = json_array_get(v, i);
            if (!json_is_string(s))
                return s_fail(m, MG_ERR_SCHEMA,
                              "%s : le tableau contient %s ; seuls des textes sont admis",
                              field, s_type_name(s));
            char *copy = strdup(json_string_value(s));
            if (!copy)
                return MG_ERR_NOMEM;
            const char *t = s_trim(copy);
            const char *kept = *t ? s_keep(m, t) : NULL;
            bool empty = !*t;
            free(copy);
            if (empty)
                continue;
            if (!kept)
                return MG_ERR_NOMEM;
            if (*count == max)
                return s_fail(m, MG_ERR_TOO_LARGE,
                              "%s : trop de valeurs (maximum %zu)", field, max);
            items[(*count)++] = kept;
        }
        return MG_OK;
    }
    const char *text = json_string_value(v);
    const char *seps = is_enum ? "|;" : (strchr(text, '|') ? "|" : ";");
    char *copy = strdup(text);
    if (!copy)
        return MG_ERR_NOMEM;
    int rc = MG_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, seps, &save); tok && rc == MG_OK;
         tok = strtok_r(NULL, seps, &save)) {
        const char *t = s_trim(tok);
        if (!*t)
            continue;
        if (*count == max)
            rc = s_fail(m, MG_ERR_TOO_LARGE, "%s : trop de valeurs (maximum %zu)",
                        field, max);
        else if (!(items[(*count)++] = s_keep(m, t)))
            rc = MG_ERR_NOMEM;
    }
    free(copy);
    if (rc == MG_OK && *count > 1 && strchr(text, ';')
        && (!strchr(text, '|') || is_enum))
        *semi = true;
    return rc;
}

/* Parses a coordinate: a JSON number, or a text that is entirely a
   decimal number (CSV cells; strtod in the C locale, whatever the
   program's locale). */
static int s_number(s_map_t *m, const mg_field_t *f, const json_t *v,
                    double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s);
        bool ok = n > 0 && n < 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = strchr("0123456789+-.eE", s[i]) != NULL;
        char *end = NULL;
        if (ok) {
            static locale_t c_locale;
            if (!c_locale)
                c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
            locale_t old = c_locale ? uselocale(c_locale) : (locale_t) 0;
            errno = 0;
            *out = strtod(s, &end);
            if (old)
                uselocale(old);
            ok = end == s + n && errno != ERANGE;
        }
        char clip[48];
        if (!ok)
            return s_fail(m, MG_ERR_SCHEMA,
                          "%s : « %s » n'est pas un nombre (ex. 45.6484)",
                          f->name, s_clip(s, 40, clip, sizeof clip));
    } else {
        return s_fail(m, MG_ERR_SCHEMA, "%s : un nombre est attendu, pas %s",
                      f->name, s_type_name(v));
    }
    double limit = strcmp(f->name, "latitude") == 0 ? 90.0 : 180.0;
    if (!isfinite(*out) || *out < -limit || *out > limit)
        return s_fail(m, MG_ERR_SCHEMA, "%s : %g hors de l'intervalle [-%g, %g]",
                      f->name, *out, limit, limit);
    return MG_OK;
}

/* The error for a value of a v1 enumeration that no table knows. */
static int s_bad_label(s_map_t *m, const mg_field_t *f, const char *item)
{
    char allowed[400];
    size_t n = 0;
    allowed[0] = '\0';
    for (size_t i = 0; f->values[i] && n < sizeof allowed; i++)
        n += (size_t) snprintf(allowed + n, sizeof allowed - n, "%s%s",
                               i ? " | " : "", f->values[i]);
    char clip[88];
    return s_fail(m, MG_ERR_SCHEMA,
                  "%s : « %s » n'est ni une valeur du standard v1 ni une "
                  "ancienne valeur connue ; valeurs admises : %s",
                  f->name, s_clip(item, 80, clip, sizeof clip), allowed);
}

/* A v1 field: its value must be of the right type; enumerations accept
   v1 labels and the older labels of the tables, nothing else. */
static int s_map_v1(s_map_t *m, const mg_field_t *f, const json_t *v)
{
    if (f->type == MG_FT_NUMBER) {
        double d = 0;
        int rc = s_number(m, f, v, &d);
        return rc == MG_OK ? mg_body_set_num(m->body, f->name, d) : rc;
    }
    if (f->type == MG_FT_LIST || f->type == MG_FT_ENUM) {
        if (!json_is_string(v) && !json_is_array(v))
            return s_fail(m, MG_ERR_SCHEMA,
                          "%s : un texte (valeurs séparées par « | ») ou un "
                          "tableau de textes est attendu, pas %s",
                          f->name, s_type_name(v));
        const char *items[MG_LIST_MAX * 2];
        bool semi;
        size_t n;
        int rc = s_split(m, f->name, v, f->type == MG_FT_ENUM, items,
                         sizeof items / sizeof items[0], &n, &semi);
        if (rc != MG_OK)
            return rc;
        if (semi && (rc = s_tally(m->im->report, S_T_SEP, f->name, ";", NULL,
                                  NULL)) != MG_OK)
            return rc;
        const s_source_t *src = s_source(f->name);
        for (size_t i = 0; i < n; i++) {
            if (f->type == MG_FT_LIST) {
                rc = s_list_add(m, f->name, items[i]);
            } else if (s_v1_label(f, items[i])) {
                const char *label = s_v1_label(f, items[i]);
                rc = strcmp(label, items[i]) == 0
                         ? MG_OK
                         : s_tally(m->im->report, S_T_LABEL, f->name, items[i],
                                   f->name, label);
                if (rc == MG_OK)
                    rc = s_list_add(m, f->name, label);
            } else {
                const s_label_t *old = src ? s_old_label(src->labels, items[i])
                                           : NULL;
                if (!old)
                    return s_bad_label(m, f, items[i]);
                if (old->to_field) {
                    rc = s_tally(m->im->report, S_T_LABEL, f->name, old->from,
                                 old->to_field, old->to);
                    if (rc == MG_OK)
                        rc = s_list_add(m, old->to_field, old->to);
                } else {
                    rc = s_unmapped(m, f->name, items[i], S_T_UNMAPPED);
                }
            }
            if (rc != MG_OK)
                return rc;
        }
        return MG_OK;
    }
    /* Single strings. */
    if (!json_is_string(v))
        return s_fail(m, MG_ERR_SCHEMA, "%s : un texte est attendu, pas %s",
                      f->name, s_type_name(v));
    char *copy = strdup(json_string_value(v));
    if (!copy)
        return MG_ERR_NOMEM;
    const char *t = s_trim(copy);
    int rc = MG_OK;
    if (strlen(t) > MG_STRING_MAX)
        rc = s_fail(m, MG_ERR_TOO_LARGE,
                    "%s : texte trop long (%zu octets, maximum %d)", f->name,
                    strlen(t), MG_STRING_MAX);
    else if (*t)
        rc = mg_body_set_str(m->body, f->name, t);
    free(copy);
    return rc;
}

/* A field of an older schema: mapped where possible, else kept. Never an
   error: such a field is information, not a claim about v1. */
static int s_map_legacy(s_map_t *m, const s_source_t *src, const json_t *v)
{
    if (src->rename) {
        const mg_field_t *to = mg_offer_field(src->rename);
        int rc = s_tally(m->im->report, S_T_RENAME, src->name, NULL, to->name,
                         NULL);
        if (rc != MG_OK)
            return rc;
        if (to->type == MG_FT_LIST && (json_is_string(v) || json_is_array(v))) {
            const char *items[MG_LIST_MAX];
            bool semi;
            size_t n;
            mg_why_t quiet;
            mg_why_t *why = m->why;
            m->why = &quiet;
            rc = s_split(m, src->name, v, false, items, MG_LIST_MAX, &n, &semi);
            m->why = why;
            if (rc == MG_ERR_NOMEM)
                return rc;
            for (size_t i = 0; rc == MG_OK && i < n; i++) {
                mg_why_t w;
                if (mg_field_check_item(to, items[i], &w) == MG_OK
                    && s_list_add(m, to->name, items[i]) == MG_OK)
                    continue;
                rc = s_unmapped(m, src->name, items[i], S_T_UNMAPPED);
                if (rc != MG_OK)
                    return rc;
            }
            if (rc == MG_OK)
                return MG_OK;
            /* Not a list of texts: kept whole below. */
        } else if (json_is_string(v)) {
            char *copy = strdup(json_string_value(v));
            if (!copy)
                return MG_ERR_NOMEM;
            const char *t = s_trim(copy);
            const char *have = mg_body_str(m->body, to->name);
            mg_why_t w;
            if (!*t || (have && strcmp(have, t) == 0)) {
                rc = MG_OK;
            } else if (!have && mg_field_check_item(to, t, &w) == MG_OK) {
                rc = mg_body_set_str(m->body, to->name, t);
            } else {
                rc = s_unmapped(m, src->name, t, S_T_UNMAPPED);
            }
            free(copy);
            return rc;
        }
        char *text = s_text(v);
        rc = text ? s_unmapped(m, src->name, text, S_T_UNMAPPED) : MG_ERR_NOMEM;
        free(text);
        return rc;
    }
    /* A legacy enumeration. */
    if (!json_is_string(v) && !json_is_array(v)) {
        char *text = s_text(v);
        int rc = text ? s_unmapped(m, src->name, text, S_T_UNMAPPED)
                      : MG_ERR_NOMEM;
        free(text);
        return rc;
    }
    const char *items[MG_LIST_MAX * 2];
    bool semi;
    size_t n;
    mg_why_t quiet;
    mg_why_t *why = m->why;
    m->why = &quiet;
    int rc0 = s_split(m, src->name, v, true, items,
                      sizeof items / sizeof items[0], &n, &semi);
    m->why = why;
    if (rc0 == MG_ERR_NOMEM)
        return rc0;
    if (rc0 != MG_OK) {
        char *text = s_text(v);
        int rc = text ? s_unmapped(m, src->name, text, S_T_UNMAPPED)
                      : MG_ERR_NOMEM;
        free(text);
        return rc;
    }
    if (semi) {
        int rc = s_tally(m->im->report, S_T_SEP, src->name, ";", NULL, NULL);
        if (rc != MG_OK)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const s_label_t *old = s_old_label(src->labels, items[i]);
        const char *to_field = old ? old->to_field : NULL;
        const char *to = old ? old->to : NULL;
        for (size_t k = 0; !old && src->targets[k]; k++) {
            const char *label = s_v1_label(mg_offer_field(src->targets[k]),
                                           items[i]);
            if (label) {
                to_field = src->targets[k];
                to = label;
                break;
            }
        }
        int rc;
        if (to_field) {
            rc = s_tally(m->im->report, S_T_LABEL, src->name,
                         old ? old->from : to, to_field, to);
            if (rc == MG_OK)
                rc = s_list_add(m, to_field, to);
        } else {
            rc = s_unmapped(m, src->name, items[i], S_T_UNMAPPED);
        }
        if (rc != MG_OK)
            return rc;
    }
    return MG_OK;
}

/* "non_mappe" read back from one of our own exports: its entries are
   kept as they are (not re-mapped: they were not mappable then), and
   reported again, since they are still not in v1. */
static int s_map_non_mappe(s_map_t *m, const json_t *v)
{
    if (!json_is_object(v)) {
        char *text = s_text(v);
        int rc = text ? s_unmapped(m, "non_mappe", text, S_T_UNKNOWN)
                      : MG_ERR_NOMEM;
        free(text);
        return rc;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *) v, key, val) {
        char *text = s_text(val);
        int rc = text ? s_unmapped(m, key, text, S_T_UNMAPPED) : MG_ERR_NOMEM;
        free(text);
        if (rc != MG_OK)
            return rc;
    }
    return MG_OK;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Packs non_mappe as a msgpack map of strings with keys in bytewise order,
   the form mg_body_decode gives back byte for byte. */
static int s_set_non_mappe(s_map_t *m)
{
    size_t n = json_object_size(m->non_mappe);
    if (n == 0)
        return MG_OK;
    const char **keys = calloc(n, sizeof(char *));
    if (!keys)
        return MG_ERR_NOMEM;
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(m->non_mappe, key, val)
        keys[k++] = key;
    qsort(keys, k, sizeof(char *), s_cmp_str);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    int err = msgpack_pack_map(&pk, k);
    for (size_t i = 0; i < k && !err; i++) {
        const json_t *s = json_object_get(m->non_mappe, keys[i]);
        err |= msgpack_pack_str_with_body(&pk, keys[i], strlen(keys[i]));
        err |= msgpack_pack_str_with_body(&pk, json_string_value(s),
                                          json_string_length(s));
    }
    int rc = err ? MG_ERR_NOMEM
                 : mg_body_set_raw(m->body, "non_mappe",
                                   (const uint8_t *) sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
    free(keys);
    return rc;
}

static void s_rid(const char *source, const char *id, char out[S_RID_CHARS + 1])
{
    uint8_t hash[crypto_generichash_BYTES];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof hash);
    crypto_generichash_update(&st, (const uint8_t *) S_RID_CONTEXT,
                              sizeof S_RID_CONTEXT); /* with its NUL */
    crypto_generichash_update(&st, (const uint8_t *) source, strlen(source) + 1);
    crypto_generichash_update(&st, (const uint8_t *) id, strlen(id));
    crypto_generichash_final(&st, hash, sizeof hash);
    char hex[2 * sizeof hash + 1];
    mg_hex_encode(hash, sizeof hash, hex);
    memcpy(out, hex, S_RID_CHARS);
    out[S_RID_CHARS] = '\0';
}

char *mg_import_rid(const char *source, const char *id)
{
    char *rid = malloc(S_RID_CHARS + 1);
    if (rid) {
        if (sodium_init() < 0) {
            free(rid);
            return NULL;
        }
        s_rid(source ? source : "", id, rid);
    }
    return rid;
}

static int s_map_lieu(s_import_t *im, s_lieu_t *lieu, mg_why_t *why)
{
    s_map_t m = {.im = im, .lieu = lieu, .why = why};
    m.body = mg_body_new();
    m.non_mappe = json_object();
    m.keep = json_array();
    int rc = m.body && m.non_mappe && m.keep ? MG_OK : MG_ERR_NOMEM;
    const char *key;
    json_t *v;
    /* Pass 1: v1 fields, so that they win over their legacy names. */
    json_object_foreach(lieu->obj, key, v) {
        if (rc != MG_OK)
            break;
        if (json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
            continue;
        const mg_field_t *f = mg_offer_field(key);
        if (f)
            rc = s_map_v1(&m, f, v);
        else if (strcmp(key, "non_mappe") == 0)
            rc = s_map_non_mappe(&m, v);
    }
    /* Pass 2: older fields, then fields nobody knows. */
    json_object_foreach(lieu->obj, key, v) {
        if (rc != MG_OK)
            break;
        if (json_is_null(v) || (json_is_string(v) && !*json_string_value(v))
            || mg_offer_field(key) || strcmp(key, "non_mappe") == 0)
            continue;
        const s_source_t *src = s_source(key);
        if (src) {
            rc = s_map_legacy(&m, src, v);
        } else {
            char *text = s_text(v);
            rc = text ? s_unmapped(&m, key, text, S_T_UNKNOWN) : MG_ERR_NOMEM;
            free(text);
        }
    }
    for (size_t i = 0; i < m.nlists && rc == MG_OK; i++)
        if (m.lists[i].count)
            rc = mg_body_set_list(m.body, m.lists[i].field, m.lists[i].items,
                                  m.lists[i].count);
    if (rc == MG_OK)
        rc = s_set_non_mappe(&m);
    if (rc == MG_OK) {
        mg_why_t w;
        rc = mg_offer_validate(m.body, &w);
        if (rc != MG_OK)
            s_fail(&m, rc, "%s", w.text);
    }
    if (rc == MG_OK) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        rc = mg_body_encode(m.body, &bytes, &len);
        free(bytes);
        if (rc == MG_OK && len > MG_RECORD_MAX - S_ENVELOPE_MAX)
            rc = s_fail(&m, MG_ERR_TOO_LARGE,
                        "fiche trop grosse une fois encodée (%zu octets, "
                        "maximum %d)", len, MG_RECORD_MAX - S_ENVELOPE_MAX);
    }
    if (rc == MG_OK) {
        const char *source = mg_body_str(m.body, "source");
        s_rid(source ? source : "", mg_body_str(m.body, "id"), lieu->rid);
        lieu->body = m.body;
        m.body = NULL;
    } else if (rc == MG_ERR_NOMEM) {
        mg_why_set(why, rc, "mémoire insuffisante");
    }
    mg_body_destroy(&m.body);
    json_decref(m.non_mappe);
    json_decref(m.keep);
    return rc;
}

/* ---------------------------------------------------------------------
   The import
   --------------------------------------------------------------------- */

static int s_cmp_rid(const void *a, const void *b)
{
    const s_lieu_t *const *x = a, *const *y = b;
    int c = strcmp((*x)->rid, (*y)->rid);
    if (c == 0)
        c = (*x)->index < (*y)->index ? -1 : (*x)->index > (*y)->index;
    return c;
}

/* Two lieux with the same (source, id) are one record: identical copies
   are imported once; different ones are refused (which one is right?).
   Marks the later copies by clearing their body. */
static int s_dedup(s_import_t *im, mg_why_t *why)
{
    if (im->count < 2)
        return MG_OK;
    s_lieu_t **order = malloc(im->count * sizeof *order);
    if (!order)
        return MG_ERR_NOMEM;
    for (size_t i = 0; i < im->count; i++)
        order[i] = &im->lieux[i];
    qsort(order, im->count, sizeof *order, s_cmp_rid);
    int rc = MG_OK;
    for (size_t i = 1; i < im->count && rc == MG_OK; i++) {
        s_lieu_t *a = order[i - 1], *b = order[i];
        if (strcmp(a->rid, b->rid) != 0)
            continue;
        /* a may itself be a later copy already cleared: find the kept one. */
        size_t k = i - 1;
        while (!order[k]->body)
            k--;
        a = order[k];
        if (!mg_body_equal(a->body, b->body)) {
            char wa[160], wb[160];
            s_where(im, a, wa, sizeof wa);
            s_where(im, b, wb, sizeof wb);
            rc = mg_why_set(why, MG_ERR_SCHEMA,
                            "%s : %s et %s ont la même source et le même id "
                            "mais des contenus différents ; gardez-en un seul",
                            im->path, wa, wb);
            break;
        }
        mg_body_destroy(&b->body);
        im->report->duplicates++;
        const char *id = json_string_value(json_object_get(b->obj, "id"));
        rc = s_tally(im->report, S_T_DUP, id ? id : "?", NULL, "(doublon)", NULL);
    }
    free(order);
    return rc;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Signs and applies every lieu, inside the caller's transaction. */
static int s_apply(s_import_t *im, mg_store_t *store, const mg_identity_t *id,
                   mg_progress_fn *progress, void *progress_arg, mg_why_t *why)
{
    uint64_t counter = 0;
    int rc = mg_store_max_counter(store, id->pk, &counter);
    if (rc != MG_OK)
        return mg_why_set(why, rc, "lecture du compteur : %s", mg_strerror(rc));
    int64_t now = s_now_ms();
    size_t step = im->count / 100 + 1;
    if (im->count == 0)
        progress = NULL; /* nothing to show */
    if (progress)
        progress(0, im->count, progress_arg);
    for (size_t i = 0; i < im->count && rc == MG_OK; i++) {
        s_lieu_t *l = &im->lieux[i];
        if (progress && i && i % step == 0)
            progress(i, im->count, progress_arg);
        if (!l->body)
            continue; /* an identical duplicate */
        mg_record_t *old = NULL;
        mg_why_t w;
        rc = mg_store_get(store, id->pk, l->rid, &old, &w);
        if (rc == MG_OK && !mg_record_deleted(old)
            && strcmp(mg_record_kind(old), "offer") == 0
            && mg_body_equal(mg_record_body(old), l->body)) {
            im->report->unchanged++;
            mg_record_destroy(&old);
            continue;
        }
        mg_record_destroy(&old);
        if (rc != MG_OK && rc != MG_ERR_NOT_FOUND) {
            char where[160];
            s_where(im, l, where, sizeof where);
            return mg_why_set(why, rc, "%s, %s : %s", im->path, where, w.text);
        }
        mg_record_t *rec = NULL;
        rc = mg_record_sign(id, "offer", l->rid, ++counter, now, false,
                            l->body, &rec, &w);
        mg_apply_t outcome = 0;
        if (rc == MG_OK)
            rc = mg_store_apply_record(store, rec, &outcome, &w);
        mg_record_destroy(&rec);
        if (rc != MG_OK) {
            char where[160];
            s_where(im, l, where, sizeof where);
            return mg_why_set(why, rc, "%s, %s : %s", im->path, where, w.text);
        }
        if (outcome == MG_APPLY_NEW)
            im->report->new_++;
        else if (outcome == MG_APPLY_REPLACED)
            im->report->updated++;
        else
            return mg_why_set(why, MG_ERR_STALE,
                              "%s : la base contient une version plus récente "
                              "(compteur) que celle qui vient d'être signée",
                              l->rid);
    }
    if (rc == MG_OK && progress)
        progress(im->count, im->count, progress_arg);
    return rc;
}

int mg_import_file(mg_store_t *store, const mg_identity_t *id,
                   const char *path, mg_format_t format,
                   mg_progress_fn *progress, void *progress_arg,
                   mg_import_report_t **report, mg_why_t *why)
{
    if (report)
        *report = NULL;
    mg_why_clear(why);
    if (!store || !id || !path)
        return mg_why_set(why, MG_ERR_ARG, "import : argument manquant");
    if (format == MG_FORMAT_GEOJSON)
        return mg_why_set(why, MG_ERR_ARG,
                          "le format geojson sert à l'export ; importez du "
                          "standard-csv ou du standard-json");
    if (sodium_init() < 0)
        return mg_why_set(why, MG_ERR_IO, "libsodium n'a pas pu s'initialiser");
    char *data = NULL;
    size_t len = 0;
    int rc = s_read_file(path, &data, &len, why);
    if (rc != MG_OK)
        return rc;
    s_import_t im = {.path = path};
    im.report = calloc(1, sizeof *im.report);
    if (!im.report || !(im.report->path = strdup(path))) {
        free(data);
        mg_import_report_destroy(&im.report);
        return MG_ERR_NOMEM;
    }
    im.format = format == MG_FORMAT_AUTO ? s_guess(data, len) : format;
    im.report->format = im.format;
    rc = im.format == MG_FORMAT_STANDARD_JSON ? s_read_json(&im, data, len, why)
                                              : s_read_csv(&im, data, len, why);
    free(data);
    im.report->read = im.count;
    for (size_t i = 0; i < im.count && rc == MG_OK; i++)
        rc = s_map_lieu(&im, &im.lieux[i], why);
    if (rc == MG_OK)
        rc = s_dedup(&im, why);
    if (rc == MG_OK) {
        rc = mg_store_begin(store, why);
        if (rc == MG_OK) {
            rc = s_apply(&im, store, id, progress, progress_arg, why);
            if (rc == MG_OK)
                rc = mg_store_commit(store, why);
            if (rc != MG_OK)
                mg_store_rollback(store);
        }
    }
    if (rc == MG_ERR_NOMEM && why && !why->text[0])
        mg_why_set(why, rc, "mémoire insuffisante");
    if (rc != MG_OK && why)
        s_utf8_tail(why->text);
    for (size_t i = 0; i < im.count; i++) {
        json_decref(im.lieux[i].obj);
        mg_body_destroy(&im.lieux[i].body);
    }
    free(im.lieux);
    if (rc == MG_OK && report)
        *report = im.report;
    else
        mg_import_report_destroy(&im.report);
    return rc;
}
