/*  mg_offer.c - the national standard's fields and their rules. */
#include "mg_offer.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_record.h"
#include "mg_text.h"

/* Enumerations: the labels of each pattern in schema.json v1.0.2, in the
   schema's order. tests/test_protocol.c checks them against the file. */
static const char *const s_itinerance[] = {"Itinérant", "Fixe", NULL};
static const char *const s_services[] = {
    "Aide aux démarches administratives",
    "Maîtrise des outils numériques du quotidien",
    "Insertion professionnelle via le numérique",
    "Utilisation sécurisée du numérique",
    "Parentalité et éducation avec le numérique",
    "Loisirs et créations numériques",
    "Compréhension du monde numérique",
    "Accès internet et matériel informatique",
    "Acquisition de matériel informatique à prix solidaire",
    NULL};
static const char *const s_publics[] = {
    "Jeunes", "Étudiants", "Familles et/ou enfants", "Seniors", "Femmes", NULL};
static const char *const s_prise_en_charge[] = {
    "Surdité", "Handicaps moteurs", "Handicaps mentaux", "Illettrisme",
    "Langues étrangères (anglais)", "Langues étrangères (autres)",
    "Déficience visuelle", NULL};
static const char *const s_frais[] = {
    "Gratuit", "Gratuit sous condition", "Payant", NULL};
static const char *const s_dispositifs[] = {
    "Aidants Connect", "Bibliothèques numérique de référence",
    "Certification PIX", "Conseillers numériques", "Emmaüs Connect",
    "France Services", "Grande école du numérique", "La Croix Rouge",
    "Point d'accès numérique CAF", "Promeneurs du net",
    "Relais numérique (Emmaüs Connect)", NULL};
static const char *const s_formations[] = {
    "Formé à « Mon Espace Santé »",
    "Formé à « DUPLEX » (illettrisme)",
    "Arnia/MedNum BFC (Bourgogne-Franche-Comté)",
    "Collectif ressources et acteurs réemploi (Normandie)",
    "Étapes numériques(La Poste)",
    "Fabriques de Territoire",
    "Les Éclaireurs du numérique (Drôme)",
    "Mes Papiers (Métropole de Lyon)",
    "ORDI 3.0",
    "SUD LABS (PACA)",
    NULL};
static const char *const s_modalites_acces[] = {
    "Se présenter", "Téléphoner", "Contacter par mail",
    "Prendre un RDV en ligne", "Ce lieu n'accueille pas de public",
    "Envoyer un mail avec une fiche de prescription", NULL};
static const char *const s_modalites_accompagnement[] = {
    "En autonomie", "Accompagnement individuel", "Dans un atelier collectif",
    "À distance", NULL};

static bool s_all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char) s[i]))
            return false;
    return true;
}

/* ^[a-zA-Z0-9]{9,14}$ */
static bool s_check_pivot(const char *v)
{
    size_t n = strlen(v);
    if (n < 9 || n > 14)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char) v[i]))
            return false;
    return true;
}

/* ^\d{5}$ */
static bool s_check_code_postal(const char *v)
{
    return strlen(v) == 5 && s_all_digits(v, 5);
}

/* ^([013-9]\d|2[AB1-9])\d{3}$ */
static bool s_check_code_insee(const char *v)
{
    if (strlen(v) != 5 || !s_all_digits(v + 2, 3))
        return false;
    if (v[0] == '2')
        return v[1] == 'A' || v[1] == 'B' || (v[1] >= '1' && v[1] <= '9');
    return isdigit((unsigned char) v[0]) && isdigit((unsigned char) v[1]);
}

/* ^(\+33|\+590|\+594|\+262|\+596|\+269|\+687|\+689|\+508|\+681)(\d){6,9}$ */
static bool s_check_telephone(const char *v)
{
    static const char *const prefixes[] = {
        "+33", "+590", "+594", "+262", "+596", "+269", "+687", "+689",
        "+508", "+681", NULL};
    size_t n = strlen(v);
    for (size_t i = 0; prefixes[i]; i++) {
        size_t p = strlen(prefixes[i]);
        if (n > p && strncmp(v, prefixes[i], p) == 0) {
            size_t d = n - p;
            if (d >= 6 && d <= 9 && s_all_digits(v + p, d))
                return true;
        }
    }
    return false;
}

#define STD true
#define EXTRA false
#define REQ true
#define OPT false

static const mg_field_t s_fields[] = {
    {"id", MG_FT_STRING, REQ, STD, 0, NULL, NULL, NULL, "Identifiant unique local du lieu"},
    {"pivot", MG_FT_PATTERN, REQ, STD, 0, NULL, s_check_pivot, "^[a-zA-Z0-9]{9,14}$", "SIRET, RNA ou RIDET (9 à 14 lettres ou chiffres)"},
    {"nom", MG_FT_STRING, REQ, STD, 0, NULL, NULL, NULL, "Nom du lieu"},
    {"commune", MG_FT_STRING, REQ, STD, 0, NULL, NULL, NULL, "Commune"},
    {"code_postal", MG_FT_PATTERN, REQ, STD, 0, NULL, s_check_code_postal, "^\\d{5}$", "Code postal (5 chiffres)"},
    {"code_insee", MG_FT_PATTERN, OPT, STD, 0, NULL, s_check_code_insee, "^([013-9]\\d|2[AB1-9])\\d{3}$", "Code INSEE de la commune"},
    {"adresse", MG_FT_STRING, REQ, STD, 0, NULL, NULL, NULL, "Adresse (voie)"},
    {"complement_adresse", MG_FT_STRING, OPT, STD, 0, NULL, NULL, NULL, "Complément d'adresse"},
    {"latitude", MG_FT_NUMBER, OPT, STD, 0, NULL, NULL, NULL, "Latitude (WGS84, degrés décimaux)"},
    {"longitude", MG_FT_NUMBER, OPT, STD, 0, NULL, NULL, NULL, "Longitude (WGS84, degrés décimaux)"},
    {"typologie", MG_FT_LIST, OPT, STD, 0, NULL, NULL, NULL, "Typologie de la structure (ex. ASSO, MUNI, TIERS_LIEUX)"},
    {"telephone", MG_FT_PATTERN, OPT, STD, 0, NULL, s_check_telephone, "^(\\+33|\\+590|\\+594|\\+262|\\+596|\\+269|\\+687|\\+689|\\+508|\\+681)(\\d){6,9}$", "Téléphone au format international (+33...)"},
    {"courriels", MG_FT_LIST, OPT, STD, 0, NULL, NULL, NULL, "Adresses électroniques"},
    {"site_web", MG_FT_LIST, OPT, STD, 0, NULL, NULL, NULL, "Sites web"},
    {"horaires", MG_FT_STRING, OPT, STD, 0, NULL, NULL, NULL, "Horaires d'ouverture (syntaxe OSM opening_hours)"},
    {"presentation_resume", MG_FT_STRING, OPT, STD, 280, NULL, NULL, NULL, "Résumé de la présentation (280 caractères au plus)"},
    {"presentation_detail", MG_FT_STRING, OPT, STD, 0, NULL, NULL, NULL, "Présentation détaillée"},
    {"source", MG_FT_STRING, OPT, STD, 0, NULL, NULL, NULL, "Source de la donnée"},
    {"itinerance", MG_FT_ENUM, OPT, STD, 0, s_itinerance, NULL, NULL, "Itinérance"},
    {"structure_parente", MG_FT_STRING, OPT, STD, 0, NULL, NULL, NULL, "Structure parente"},
    {"date_maj", MG_FT_DATE, REQ, STD, 0, NULL, NULL, NULL, "Date de mise à jour (AAAA-MM-JJ)"},
    {"services", MG_FT_ENUM, OPT, STD, 0, s_services, NULL, NULL, "Services proposés"},
    {"publics_specifiquement_adresses", MG_FT_ENUM, OPT, STD, 0, s_publics, NULL, NULL, "Publics spécifiquement adressés"},
    {"prise_en_charge_specifique", MG_FT_ENUM, OPT, STD, 0, s_prise_en_charge, NULL, NULL, "Prise en charge spécifique"},
    {"frais_a_charge", MG_FT_ENUM, OPT, STD, 0, s_frais, NULL, NULL, "Frais à charge"},
    {"dispositif_programmes_nationaux", MG_FT_ENUM, OPT, STD, 0, s_dispositifs, NULL, NULL, "Dispositifs et programmes nationaux"},
    {"formations_labels", MG_FT_ENUM, OPT, STD, 0, s_formations, NULL, NULL, "Formations et labels"},
    {"autres_formations_labels", MG_FT_LIST, OPT, STD, 0, NULL, NULL, NULL, "Autres formations et labels"},
    {"modalites_acces", MG_FT_ENUM, OPT, STD, 0, s_modalites_acces, NULL, NULL, "Modalités d'accès"},
    {"modalites_accompagnement", MG_FT_ENUM, OPT, STD, 0, s_modalites_accompagnement, NULL, NULL, "Modalités d'accompagnement"},
    {"fiche_acces_libre", MG_FT_STRING, OPT, STD, 0, NULL, NULL, NULL, "Fiche Accès libre (URL)"},
    {"prise_rdv", MG_FT_STRING, OPT, STD, 0, NULL, NULL, NULL, "Prise de rendez-vous (URL)"},
    /* What the national guidance asks every offer to say, beyond the standard. */
    {"duree", MG_FT_STRING, OPT, EXTRA, 0, NULL, NULL, NULL, "Durée (ex. « parcours de 5 séances de 2 h »)"},
    {"frequence", MG_FT_STRING, OPT, EXTRA, 0, NULL, NULL, NULL, "Fréquence (ex. « chaque mardi »)"},
    {"demarche", MG_FT_STRING, OPT, EXTRA, 0, NULL, NULL, NULL, "Démarche pour s'inscrire"},
    {"objectifs", MG_FT_LIST, OPT, EXTRA, 0, NULL, NULL, NULL, "Objectifs"},
    {NULL, 0, false, false, 0, NULL, NULL, NULL, NULL},
};

const mg_field_t *mg_offer_fields(void)
{
    return s_fields;
}

const mg_field_t *mg_offer_field(const char *name)
{
    for (const mg_field_t *f = s_fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

size_t mg_offer_standard_count(void)
{
    size_t n = 0;
    for (const mg_field_t *f = s_fields; f->name; f++)
        if (f->standard)
            n++;
    return n;
}

/* A real calendar date written YYYY-MM-DD. */
static bool s_check_date(const char *v)
{
    if (strlen(v) != 10 || v[4] != '-' || v[7] != '-' || !s_all_digits(v, 4)
        || !s_all_digits(v + 5, 2) || !s_all_digits(v + 8, 2))
        return false;
    int y = (v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0');
    int m = (v[5] - '0') * 10 + (v[6] - '0');
    int d = (v[8] - '0') * 10 + (v[9] - '0');
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || m < 1 || m > 12 || d < 1)
        return false;
    int max = days[m - 1];
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        max = 29;
    return d <= max;
}

/* Appends the allowed labels of an enumeration to `why`. */
static int s_enum_error(const mg_field_t *field, const char *value,
                        mg_why_t *why)
{
    if (!why)
        return MG_ERR_SCHEMA;
    int n = snprintf(why->text, sizeof why->text,
                     "%s : valeur « %s » non autorisée. Valeurs possibles : ",
                     field->name, value);
    for (size_t i = 0; field->values[i] && n > 0 && (size_t) n < sizeof why->text; i++)
        n += snprintf(why->text + n, sizeof why->text - (size_t) n, "%s%s",
                      i ? " | " : "", field->values[i]);
    return MG_ERR_SCHEMA;
}

static int s_check_item(const mg_field_t *field, const char *value,
                        bool strict, mg_why_t *why)
{
    size_t len = strlen(value);
    if (!mg_utf8_valid(value, len))
        return mg_why_set(why, MG_ERR_UTF8,
                          "%s : texte qui n'est pas de l'UTF-8 valide",
                          field->name);
    if (len == 0)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "%s : valeur vide (omettez le champ plutôt)",
                          field->name);
    if (len > MG_STRING_MAX)
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "%s : texte trop long (%zu octets, maximum %d)",
                          field->name, len, MG_STRING_MAX);
    if (field->max_chars && mg_utf8_length(value, len) > field->max_chars)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "%s : %zu caractères, %zu au plus", field->name,
                          mg_utf8_length(value, len), field->max_chars);
    switch (field->type) {
    case MG_FT_ENUM:
        if (!strict)
            return strchr(value, '|')
                       ? mg_why_set(why, MG_ERR_SCHEMA,
                                    "%s : une valeur ne peut pas contenir « | »",
                                    field->name)
                       : MG_OK;
        for (size_t i = 0; field->values[i]; i++)
            if (strcmp(value, field->values[i]) == 0)
                return MG_OK;
        return s_enum_error(field, value, why);
    case MG_FT_LIST:
        if (strchr(value, '|'))
            return mg_why_set(why, MG_ERR_SCHEMA,
                              "%s : une valeur ne peut pas contenir « | » (séparateur de liste)",
                              field->name);
        return MG_OK;
    case MG_FT_PATTERN:
        if (!field->check(value))
            return mg_why_set(why, MG_ERR_SCHEMA,
                              "%s : « %s » n'a pas le format attendu (%s) ; %s",
                              field->name, value, field->syntax, field->title);
        return MG_OK;
    case MG_FT_DATE:
        if (!s_check_date(value))
            return mg_why_set(why, MG_ERR_SCHEMA,
                              "%s : « %s » n'est pas une date AAAA-MM-JJ valide",
                              field->name, value);
        return MG_OK;
    case MG_FT_NUMBER:
    case MG_FT_STRING:
        return MG_OK;
    }
    return MG_OK;
}

int mg_field_check_item(const mg_field_t *field, const char *value,
                        mg_why_t *why)
{
    return s_check_item(field, value, true, why);
}

static int s_check_field(const mg_field_t *field, const mg_body_t *body,
                         bool strict, mg_why_t *why)
{
    int at = mg_body_find(body, field->name);
    if (at < 0)
        return MG_OK;
    mg_val_type_t t = mg_body_type_at(body, (size_t) at);
    if (field->type == MG_FT_NUMBER) {
        double v;
        if (t != MG_VAL_NUM || mg_body_num(body, field->name, &v) != 0)
            return mg_why_set(why, MG_ERR_SCHEMA, "%s : un nombre est attendu",
                              field->name);
        double limit = strcmp(field->name, "latitude") == 0 ? 90.0 : 180.0;
        if (!isfinite(v) || v < -limit || v > limit)
            return mg_why_set(why, MG_ERR_SCHEMA,
                              "%s : %g hors de l'intervalle [-%g, %g]",
                              field->name, v, limit, limit);
        return MG_OK;
    }
    bool is_list = field->type == MG_FT_LIST || field->type == MG_FT_ENUM;
    if (is_list && t != MG_VAL_LIST)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "%s : une liste de textes est attendue", field->name);
    if (!is_list && t != MG_VAL_STR)
        return mg_why_set(why, MG_ERR_SCHEMA, "%s : un texte est attendu",
                          field->name);
    const char *const *items;
    size_t n = mg_body_list(body, field->name, &items);
    if (is_list && n == 0)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "%s : liste vide (omettez le champ plutôt)",
                          field->name);
    if (n > MG_LIST_MAX)
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "%s : trop de valeurs (%zu, maximum %d)", field->name,
                          n, MG_LIST_MAX);
    for (size_t i = 0; i < n; i++) {
        int rc = s_check_item(field, items[i], strict, why);
        if (rc != MG_OK)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp(items[k], items[i]) == 0)
                return mg_why_set(why, MG_ERR_SCHEMA,
                                  "%s : valeur « %s » en double", field->name,
                                  items[i]);
    }
    return MG_OK;
}

static int s_offer_validate(const mg_body_t *body, bool strict, mg_why_t *why)
{
    for (const mg_field_t *f = s_fields; f->name; f++) {
        if (f->required && mg_body_find(body, f->name) < 0)
            return mg_why_set(why, MG_ERR_SCHEMA,
                              "champ obligatoire manquant : %s (%s)", f->name,
                              f->title);
        int rc = s_check_field(f, body, strict, why);
        if (rc != MG_OK)
            return rc;
    }
    return MG_OK;
}

int mg_offer_validate(const mg_body_t *body, mg_why_t *why)
{
    return s_offer_validate(body, true, why);
}

int mg_offer_validate_lenient(const mg_body_t *body, mg_why_t *why)
{
    return s_offer_validate(body, false, why);
}

static int s_profile_validate(const mg_body_t *body, bool strict,
                              mg_why_t *why)
{
    if (!mg_body_str(body, "nom"))
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "champ obligatoire manquant : nom (nom de la structure)");
    for (const mg_field_t *f = s_fields; f->name; f++) {
        int rc = s_check_field(f, body, strict, why);
        if (rc != MG_OK)
            return rc;
    }
    int at = mg_body_find(body, "endpoints");
    if (at >= 0 && mg_body_type_at(body, (size_t) at) != MG_VAL_LIST)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "endpoints : une liste d'adresses est attendue");
    return MG_OK;
}

int mg_profile_validate(const mg_body_t *body, mg_why_t *why)
{
    return s_profile_validate(body, true, why);
}

int mg_profile_validate_lenient(const mg_body_t *body, mg_why_t *why)
{
    return s_profile_validate(body, false, why);
}

int mg_departement_of(const char *code_insee, const char *code_postal,
                      char out[4])
{
    if (code_insee && s_check_code_insee(code_insee)) {
        size_t n = (code_insee[0] == '9' && code_insee[1] == '7') ? 3 : 2;
        memcpy(out, code_insee, n);
        out[n] = '\0';
        return 0;
    }
    if (code_postal && s_check_code_postal(code_postal)) {
        if (code_postal[0] == '9' && code_postal[1] == '7') {
            memcpy(out, code_postal, 3);
            out[3] = '\0';
        } else if (code_postal[0] == '2' && code_postal[1] == '0') {
            /* Corsica: 200xx and 201xx are Corse-du-Sud, the rest Haute-Corse. */
            strcpy(out, code_postal[2] <= '1' ? "2A" : "2B");
        } else {
            memcpy(out, code_postal, 2);
            out[2] = '\0';
        }
        return 0;
    }
    return -1;
}

uint64_t mg_record_bucket(const mg_record_t *record)
{
    const char *kind = mg_record_kind(record);
    if (mg_record_deleted(record)
        || (strcmp(kind, "offer") != 0 && strcmp(kind, "profile") != 0))
        return 0;
    const mg_body_t *body = mg_record_body(record);
    char dep[4];
    if (mg_departement_of(mg_body_str(body, "code_insee"),
                          mg_body_str(body, "code_postal"), dep) != 0)
        return 0;
    if (dep[0] == '2' && (dep[1] == 'A' || dep[1] == 'B'))
        return dep[1] == 'A' ? 201 : 202;
    if (strlen(dep) == 3)
        return (uint64_t) strtoul(dep, NULL, 10);
    return (uint64_t) strtoul(dep, NULL, 10) * 10;
}
