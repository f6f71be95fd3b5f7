/*  mg_event.c - event, rsvp and note bodies; the Europe/Paris clock. */
#include "mg_event.h"

#include <ctype.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_offer.h"
#include "mg_text.h"

/* ------------------------------------------------------------------ */
/* Field descriptors                                                    */

/* How one field of these bodies is represented and checked. The item
   checks reuse the offer rules (mg_field_check_item): UTF-8, no empty
   value, MG_STRING_MAX bytes, no '|' in list items, enumerations. */
typedef enum {
    S_STR,      /* one string */
    S_LIST,     /* list of strings */
    S_ENUM,     /* list of labels of the offer field of the same name */
    S_NUM,      /* a number in [min, max] */
    S_INT,      /* an integral number in [min, max] */
    S_TEXT,     /* a string or a list of pieces joined without separator */
} s_kind_t;

typedef struct {
    const char *name;        /* body field name */
    s_kind_t kind;           /* representation */
    bool required;           /* must be present (strict and lenient) */
    size_t max_chars;        /* longest item in characters (0: MG_STRING_MAX bytes) */
    bool (*check)(const char *item); /* extra syntax check per item, or NULL */
    const char *syntax;      /* what `check` wants, for messages */
    double min, max;         /* S_NUM / S_INT bounds */
    size_t max_items;        /* S_LIST / S_ENUM (0: MG_LIST_MAX) */
} s_field_t;

static bool s_all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char) s[i]))
            return false;
    return true;
}

static bool s_check_utc(const char *v)
{
    int64_t ms;
    return mg_time_parse_utc(v, &ms) == 0;
}

static bool s_check_code_postal(const char *v)
{
    return strlen(v) == 5 && s_all_digits(v, 5);
}

/* ^([013-9]\d|2[AB1-9])\d{3}$, the standard's code_insee. */
static bool s_check_code_insee(const char *v)
{
    if (strlen(v) != 5 || !s_all_digits(v + 2, 3))
        return false;
    if (v[0] == '2')
        return v[1] == 'A' || v[1] == 'B' || (v[1] >= '1' && v[1] <= '9');
    return isdigit((unsigned char) v[0]) && isdigit((unsigned char) v[1]);
}

/* An absolute http(s) URL with a host and no spaces or controls. */
static bool s_check_url(const char *v)
{
    size_t skip = strncmp(v, "https://", 8) == 0 ? 8
                  : strncmp(v, "http://", 7) == 0 ? 7 : 0;
    if (skip == 0 || !v[skip] || v[skip] == '/')
        return false;
    for (const char *p = v; *p; p++)
        if ((unsigned char) *p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

static bool s_check_key_hex(const char *v)
{
    if (strlen(v) != 2 * MG_KEY_BYTES)
        return false;
    for (const char *p = v; *p; p++)
        if (!isdigit((unsigned char) *p) && (*p < 'a' || *p > 'f'))
            return false;
    return true;
}

static bool s_check_territory(const char *v)
{
    return mg_territory_code_valid(v, NULL);
}

static bool s_check_rid(const char *v)
{
    return mg_rid_valid(v);
}

/* Tags are single keywords or short phrases: the CLI splits on commas. */
static bool s_check_tag(const char *v)
{
    return strchr(v, ',') == NULL;
}

/* A reply's answer in strict mode is one of the three; a newer version's
   other answers are kept (and not counted) when lenient. */
static bool s_check_answer(const char *v)
{
    return strcmp(v, MG_RSVP_YES) == 0 || strcmp(v, MG_RSVP_NO) == 0
           || strcmp(v, MG_RSVP_MAYBE) == 0;
}

static bool s_check_label(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char) v[i]) && v[i] != '-')
            return false;
    return true;
}

#define REQ true
#define OPT false

static const s_field_t s_event_fields[] = {
    {"titre", S_STR, REQ, MG_TITLE_MAX_CHARS, NULL, NULL, 0, 0, 0},
    {"debut", S_STR, REQ, 0, s_check_utc, "AAAA-MM-JJTHH:MM:SSZ (UTC)", 0, 0, 0},
    {"fin", S_STR, REQ, 0, s_check_utc, "AAAA-MM-JJTHH:MM:SSZ (UTC)", 0, 0, 0},
    {"adresse", S_STR, OPT, 0, NULL, NULL, 0, 0, 0},
    {"commune", S_STR, OPT, 0, NULL, NULL, 0, 0, 0},
    {"code_postal", S_STR, OPT, 0, s_check_code_postal, "5 chiffres", 0, 0, 0},
    {"code_insee", S_STR, OPT, 0, s_check_code_insee, "code INSEE de commune, 5 caractères", 0, 0, 0},
    {"latitude", S_NUM, OPT, 0, NULL, NULL, -90, 90, 0},
    {"longitude", S_NUM, OPT, 0, NULL, NULL, -180, 180, 0},
    {"en_ligne", S_STR, OPT, 0, s_check_url, "adresse web complète, https://...", 0, 0, 0},
    {"services", S_ENUM, OPT, 0, NULL, NULL, 0, 0, 0},
    {"publics_specifiquement_adresses", S_ENUM, OPT, 0, NULL, NULL, 0, 0, 0},
    {"territoire", S_LIST, OPT, 0, s_check_territory,
     "codes INSEE de commune (16015, 2A004) ou de département (16, 2A, 971)", 0, 0, 0},
    {"capacite", S_INT, OPT, 0, NULL, NULL, 1, MG_CAPACITY_MAX, 0},
    {"partenaires", S_LIST, OPT, 0, s_check_key_hex,
     "clés publiques de structures, 64 chiffres hexadécimaux en minuscules", 0, 0, 0},
    {"inscription", S_STR, OPT, 0, NULL, NULL, 0, 0, 0},
    {"description", S_STR, OPT, 0, NULL, NULL, 0, 0, 0},
    {"annule_le", S_STR, OPT, 0, s_check_utc, "AAAA-MM-JJTHH:MM:SSZ (UTC)", 0, 0, 0},
    {"motif_annulation", S_STR, OPT, 500, NULL, NULL, 0, 0, 0},
    {NULL, 0, false, 0, NULL, NULL, 0, 0, 0},
};

static const s_field_t s_rsvp_fields[] = {
    {"evenement_auteur", S_STR, REQ, 0, s_check_key_hex,
     "clé publique de l'organisateur, 64 chiffres hexadécimaux en minuscules", 0, 0, 0},
    {"evenement_id", S_STR, REQ, 0, s_check_rid, "identifiant de fiche", 0, 0, 0},
    {"reponse", S_STR, REQ, 0, s_check_answer, "oui, non ou peut-etre", 0, 0, 0},
    {"places", S_INT, OPT, 0, NULL, NULL, 1, MG_SEATS_MAX, 0},
    {"commentaire", S_STR, OPT, MG_COMMENT_MAX_CHARS, NULL, NULL, 0, 0, 0},
    {NULL, 0, false, 0, NULL, NULL, 0, 0, 0},
};

static const s_field_t s_note_fields[] = {
    {"titre", S_STR, REQ, MG_TITLE_MAX_CHARS, NULL, NULL, 0, 0, 0},
    {"texte", S_TEXT, OPT, 0, NULL, NULL, 0, 0, 0},
    {"tags", S_LIST, OPT, 64, s_check_tag, "mots-clés sans virgule", 0, 0, 32},
    {"services", S_ENUM, OPT, 0, NULL, NULL, 0, 0, 0},
    {"licence", S_STR, OPT, 100, NULL, NULL, 0, 0, 0},
    {NULL, 0, false, 0, NULL, NULL, 0, 0, 0},
};

/* Checks one item with the offer rules, as a field named like ours. */
static int s_check_item(const s_field_t *f, const char *value, bool strict,
                        mg_why_t *why)
{
    if (f->kind == S_ENUM && strict)
        return mg_field_check_item(mg_offer_field(f->name), value, why);
    mg_field_t plain = {.name = f->name,
                        .type = (f->kind == S_LIST || f->kind == S_ENUM)
                                    ? MG_FT_LIST : MG_FT_STRING,
                        .max_chars = f->max_chars};
    int rc = mg_field_check_item(&plain, value, why);
    if (rc != MG_OK)
        return rc;
    if (!f->check)
        return MG_OK;
    /* Received lists keep items this version cannot read (a newer
       version's territory codes, say): the indexes skip them, and the
       record still reaches every node. */
    if (!strict && f->kind == S_LIST)
        return MG_OK;
    /* Lenient answers: any well-formed label of a newer version. */
    if (!strict && f->check == s_check_answer)
        return s_check_label(value)
                   ? MG_OK
                   : mg_why_set(why, MG_ERR_SCHEMA, "%s : « %s » n'est pas une réponse",
                                f->name, value);
    if (!f->check(value))
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "%s : « %s » n'a pas le format attendu (%s)", f->name,
                          value, f->syntax);
    return MG_OK;
}

static int s_check_field(const s_field_t *f, const mg_body_t *body,
                         bool strict, mg_why_t *why)
{
    int at = mg_body_find(body, f->name);
    if (at < 0)
        return f->required ? mg_why_set(why, MG_ERR_SCHEMA,
                                        "champ obligatoire manquant : %s",
                                        f->name)
                           : MG_OK;
    mg_val_type_t t = mg_body_type_at(body, (size_t) at);
    if (f->kind == S_NUM || f->kind == S_INT) {
        double v = 0;
        if (t != MG_VAL_NUM || mg_body_num(body, f->name, &v) != 0)
            return mg_why_set(why, MG_ERR_SCHEMA, "%s : un nombre est attendu",
                              f->name);
        if (!isfinite(v) || v < f->min || v > f->max)
            return mg_why_set(why, MG_ERR_SCHEMA,
                              "%s : %g hors de l'intervalle [%g, %g]", f->name,
                              v, f->min, f->max);
        if (f->kind == S_INT && v != floor(v))
            return mg_why_set(why, MG_ERR_SCHEMA,
                              "%s : un nombre entier est attendu (%g)", f->name,
                              v);
        return MG_OK;
    }
    bool list = f->kind == S_LIST || f->kind == S_ENUM;
    if (list && t != MG_VAL_LIST)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "%s : une liste de textes est attendue", f->name);
    if (f->kind == S_STR && t != MG_VAL_STR)
        return mg_why_set(why, MG_ERR_SCHEMA, "%s : un texte est attendu",
                          f->name);
    if (f->kind == S_TEXT && t != MG_VAL_STR && t != MG_VAL_LIST)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "%s : un texte (ou une liste de morceaux) est attendu",
                          f->name);
    const char *const *items;
    size_t n = mg_body_list(body, f->name, &items);
    if (n == 0)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "%s : liste vide (omettez le champ plutôt)", f->name);
    size_t max_items = f->max_items ? f->max_items : MG_LIST_MAX;
    if (list && n > max_items)
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "%s : trop de valeurs (%zu, maximum %zu)", f->name, n,
                          max_items);
    if (f->kind == S_TEXT) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(items[i]);
            if (!mg_utf8_valid(items[i], len))
                return mg_why_set(why, MG_ERR_UTF8,
                                  "%s : texte qui n'est pas de l'UTF-8 valide",
                                  f->name);
            if (len == 0)
                return mg_why_set(why, MG_ERR_SCHEMA, "%s : morceau vide",
                                  f->name);
            total += len;
        }
        if (total > MG_NOTE_TEXT_MAX)
            return mg_why_set(why, MG_ERR_TOO_LARGE,
                              "%s : texte trop long (%zu octets, maximum %d)",
                              f->name, total, MG_NOTE_TEXT_MAX);
        return MG_OK;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = s_check_item(f, items[i], strict, why);
        if (rc != MG_OK)
            return rc;
        for (size_t k = 0; list && k < i; k++)
            if (strcmp(items[k], items[i]) == 0)
                return mg_why_set(why, MG_ERR_SCHEMA,
                                  "%s : valeur « %s » en double", f->name,
                                  items[i]);
    }
    return MG_OK;
}

static int s_check_fields(const s_field_t *fields, const mg_body_t *body,
                          bool strict, mg_why_t *why)
{
    if (!body)
        return mg_why_set(why, MG_ERR_SCHEMA, "contenu manquant");
    for (const s_field_t *f = fields; f->name; f++) {
        int rc = s_check_field(f, body, strict, why);
        if (rc != MG_OK)
            return rc;
    }
    return MG_OK;
}

/* Longest event: a week-long training is common, a year-long one is a
   programme, not an event (and would crowd every upcoming list). */
#define S_EVENT_SPAN_MAX_MS (366LL * 24 * 3600 * 1000)

int mg_event_validate(const mg_body_t *body, bool strict, mg_why_t *why)
{
    int rc = s_check_fields(s_event_fields, body, strict, why);
    if (rc != MG_OK)
        return rc;
    int64_t start = 0, end = 0;
    mg_time_parse_utc(mg_body_str(body, "debut"), &start);
    mg_time_parse_utc(mg_body_str(body, "fin"), &end);
    if (end <= start)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "fin : l'événement doit finir après son début");
    if (end - start > S_EVENT_SPAN_MAX_MS)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "fin : un événement dure au plus 366 jours");
    if (mg_body_find(body, "motif_annulation") >= 0
        && mg_body_find(body, "annule_le") < 0)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "motif_annulation : seulement pour un événement "
                          "annulé (annule_le)");
    if (!strict)
        return MG_OK;
    /* Where: a place people can go to, a link, or both (hybrid). */
    bool place = mg_body_str(body, "adresse") && mg_body_str(body, "commune")
                 && mg_body_str(body, "code_postal");
    bool partial = mg_body_str(body, "adresse") || mg_body_str(body, "commune")
                   || mg_body_str(body, "code_postal");
    if (partial && !place)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "lieu incomplet : indiquez l'adresse, la commune et "
                          "le code postal");
    if (!place && !mg_body_str(body, "en_ligne"))
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "lieu manquant : indiquez une adresse (adresse, "
                          "commune, code_postal) ou un lien (en_ligne)");
    return MG_OK;
}

int mg_rsvp_validate(const mg_body_t *body, bool strict, mg_why_t *why)
{
    return s_check_fields(s_rsvp_fields, body, strict, why);
}

int mg_note_validate(const mg_body_t *body, bool strict, mg_why_t *why)
{
    return s_check_fields(s_note_fields, body, strict, why);
}

void mg_rsvp_rid(const uint8_t event_author[MG_KEY_BYTES],
                 const char *event_rid, char out[MG_RSVP_RID_LEN + 1])
{
    crypto_generichash_state st;
    uint8_t hash[32];
    crypto_generichash_init(&st, NULL, 0, sizeof hash);
    crypto_generichash_update(&st, event_author, MG_KEY_BYTES);
    crypto_generichash_update(&st, (const uint8_t *) event_rid,
                              strlen(event_rid));
    crypto_generichash_final(&st, hash, sizeof hash);
    memcpy(out, "rsvp-", 5);
    mg_hex_encode(hash, 8, out + 5);
}

bool mg_territory_code_valid(const char *code, bool *is_commune)
{
    if (!code)
        return false;
    size_t n = strlen(code);
    if (is_commune)
        *is_commune = n == 5;
    if (n == 5)
        return s_check_code_insee(code);
    if (n == 2) {
        if (strcmp(code, "2A") == 0 || strcmp(code, "2B") == 0)
            return true;
        if (!s_all_digits(code, 2))
            return false;
        int d = (code[0] - '0') * 10 + (code[1] - '0');
        return d >= 1 && d <= 95 && d != 20;
    }
    /* Overseas: 971 Guadeloupe .. 976 Mayotte, 977/978 Saint-Barthélemy and
       Saint-Martin, 975 Saint-Pierre-et-Miquelon. */
    return n == 3 && code[0] == '9' && code[1] == '7' && code[2] >= '1'
           && code[2] <= '8';
}

/* ------------------------------------------------------------------ */
/* Time                                                                 */

#define S_DAY_MS 86400000LL

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
   days_from_civil: exact for every year, no tables, no libc). */
static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void s_civil_from_days(int64_t z, int *year, int *month, int *day)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int) (doy - (153 * mp + 2) / 5 + 1);
    int m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *year = (int) (y + (m <= 2));
    *month = m;
    *day = d;
}

static int s_days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* Floor division of ms by a day, for times before 1970 too. */
static int64_t s_floor_div(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

void mg_time_utc(int64_t ms, mg_civil_t *out)
{
    int64_t days = s_floor_div(ms, S_DAY_MS);
    int64_t rest = (ms - days * S_DAY_MS) / 1000;
    s_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int) (rest / 3600);
    out->minute = (int) (rest / 60 % 60);
    out->second = (int) (rest % 60);
    /* 1970-01-01 was a Thursday. */
    out->wday = (int) (((days % 7) + 7 + 4) % 7);
    out->offset_s = 0;
}

int64_t mg_time_from_utc(const mg_civil_t *utc)
{
    int64_t days = s_days_from_civil(utc->year, utc->month, utc->day);
    return (days * 86400 + utc->hour * 3600 + utc->minute * 60 + utc->second)
           * 1000;
}

/* The UTC instant (ms) of 01:00 UTC on the last Sunday of `month`. */
static int64_t s_last_sunday_0100(int year, int month)
{
    int last = s_days_in_month(year, month);
    int64_t days = s_days_from_civil(year, month, last);
    int wday = (int) (((days % 7) + 7 + 4) % 7);
    return (days - wday) * S_DAY_MS + 3600 * 1000;
}

int mg_paris_offset(int64_t ms)
{
    mg_civil_t u;
    mg_time_utc(ms, &u);
    if (u.month < 3 || u.month > 10)
        return 3600;
    if (u.month > 3 && u.month < 10)
        return 7200;
    int64_t change = s_last_sunday_0100(u.year, u.month);
    if (u.month == 3)
        return ms >= change ? 7200 : 3600;
    return ms >= change ? 3600 : 7200;
}

void mg_paris_local(int64_t ms, mg_civil_t *out)
{
    int offset = mg_paris_offset(ms);
    mg_time_utc(ms + (int64_t) offset * 1000, out);
    out->offset_s = offset;
}

int mg_paris_to_utc(const mg_civil_t *local, int64_t *ms, mg_why_t *why)
{
    int64_t as_utc = mg_time_from_utc(local);
    /* The earlier instant first: CEST (UTC+2), then CET (UTC+1). */
    int64_t summer = as_utc - 7200 * 1000, winter = as_utc - 3600 * 1000;
    if (mg_paris_offset(summer) == 7200) {
        *ms = summer;
        return MG_OK;
    }
    if (mg_paris_offset(winter) == 3600) {
        *ms = winter;
        return MG_OK;
    }
    return mg_why_set(why, MG_ERR_ARG,
                      "%04d-%02d-%02d %02d:%02d n'existe pas à Paris (passage "
                      "à l'heure d'été, de 2 h à 3 h) : choisissez une autre "
                      "heure",
                      local->year, local->month, local->day, local->hour,
                      local->minute);
}

/* Reads exactly `n` digits at *p into *out and advances. */
static bool s_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char) (*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Reads "YYYY-MM-DD" + 'T' or ' ' + "HH:MM" + optional ":SS". */
static bool s_read_civil(const char **p, mg_civil_t *c)
{
    memset(c, 0, sizeof *c);
    if (!s_digits(p, 4, &c->year) || **p != '-')
        return false;
    (*p)++;
    if (!s_digits(p, 2, &c->month) || **p != '-')
        return false;
    (*p)++;
    if (!s_digits(p, 2, &c->day) || (**p != 'T' && **p != ' '))
        return false;
    (*p)++;
    if (!s_digits(p, 2, &c->hour) || **p != ':')
        return false;
    (*p)++;
    if (!s_digits(p, 2, &c->minute))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!s_digits(p, 2, &c->second))
            return false;
    }
    return c->year >= 1970 && c->month >= 1 && c->month <= 12 && c->day >= 1
           && c->day <= s_days_in_month(c->year, c->month) && c->hour <= 23
           && c->minute <= 59 && c->second <= 59;
}

int mg_time_parse(const char *text, int64_t *ms, mg_why_t *why)
{
    const char *p = text;
    mg_civil_t c;
    if (!text || !s_read_civil(&p, &c))
        return mg_why_set(why, MG_ERR_ARG,
                          "« %s » n'est pas une date et heure valide "
                          "(exemple : 2026-03-12T14:00, heure de Paris)",
                          text ? text : "");
    if (*p == '\0')
        return mg_paris_to_utc(&c, ms, why);
    int64_t base = mg_time_from_utc(&c);
    if (p[0] == 'Z' && p[1] == '\0') {
        *ms = base;
        return MG_OK;
    }
    int oh, om;
    const char *q = p + 1;
    if ((*p == '+' || *p == '-') && s_digits(&q, 2, &oh) && *q == ':'
        && (q++, s_digits(&q, 2, &om)) && *q == '\0' && oh <= 14 && om <= 59) {
        int64_t off = ((int64_t) oh * 3600 + om * 60) * 1000;
        *ms = *p == '+' ? base - off : base + off;
        return MG_OK;
    }
    return mg_why_set(why, MG_ERR_ARG,
                      "« %s » : fuseau illisible après l'heure (Z, +01:00 ou "
                      "rien pour l'heure de Paris)",
                      text);
}

int mg_time_parse_utc(const char *text, int64_t *ms)
{
    if (!text || strlen(text) != 20 || text[10] != 'T' || text[19] != 'Z'
        || text[16] != ':')
        return -1;
    const char *p = text;
    mg_civil_t c;
    if (!s_read_civil(&p, &c) || p != text + 19)
        return -1;
    *ms = mg_time_from_utc(&c);
    return 0;
}

/* Copies `in` into `out` (size bytes), cut to fit. */
static void s_copy_cut(char *out, size_t size, const char *in)
{
    size_t n = strlen(in);
    if (n >= size)
        n = size - 1;
    memcpy(out, in, n);
    out[n] = '\0';
}

void mg_time_format_utc(int64_t ms, char out[21])
{
    mg_civil_t c;
    mg_time_utc(ms, &c);
    /* The fields are in range, so 20 characters; the larger buffer only
       spares the compiler's worst-case reasoning. */
    char buf[64];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ",
             c.year % 10000, c.month, c.day, c.hour, c.minute, c.second);
    s_copy_cut(out, 21, buf);
}

void mg_time_format_paris(int64_t ms, char out[26])
{
    mg_civil_t c;
    mg_paris_local(ms, &c);
    char buf[64];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d+%02d:00",
             c.year % 10000, c.month, c.day, c.hour, c.minute, c.second,
             c.offset_s / 3600);
    s_copy_cut(out, 26, buf);
}
