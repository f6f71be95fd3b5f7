/*  mg_cmd_events.c - events, invitations, replies (RSVP), practice notes,
    and the iCalendar export (docs/events.md).

    Every command works on the node's store with no daemon running, like
    the rest of the CLI: it signs what this node authors (mg_node_author)
    and reads what the network sent. Times are typed and shown in
    Europe/Paris time and stored in UTC (mg_event.h).
*/
#include "mg_cmd_events.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_capture.h"
#include "mg_cli.h"
#include "mg_fields.h"
#include "mg_event.h"
#include "mg_ics.h"
#include "mg_json.h"
#include "mg_offer.h"
#include "mg_text.h"

#define S_DAY_MS 86400000LL
/* Purge the indexes of expired events at most once a day: a purge takes
   the write lock, which a listing should not do every time. */
#define S_PURGE_EVERY_MS S_DAY_MS
/* `--near` without `--within`: a short drive in a rural département. */
#define S_NEAR_DEFAULT_KM 20.0
/* The licence of a note that does not say: sharing practices means
   letting others reuse them, with credit (docs/events.md). */
#define S_NOTE_LICENCE_DEFAULT "CC BY-SA 4.0"
/* Pieces of a long note text: below the body's string limit
   (MG_STRING_MAX), cut at a line end when there is one. */
#define S_TEXT_PIECE 8000

/* ------------------------------------------------------------------ */
/* Plumbing                                                             */

static bool s_is(const char *arg, const char *a, const char *b)
{
    return strcmp(arg, a) == 0 || (b && strcmp(arg, b) == 0);
}

static void s_print_json(json_t *j)
{
    if (mg_capture_json(j)) /* the HTTP API (mg_capture.h) */
        return;
    /* 10 significant digits: coordinates to the decimetre, distances
       without a binary tail (38.2, not 38.200000000000003). */
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    printf("\n");
}

/* Drops expired events from the indexes, at most once a day; a failure
   (the daemon holding the lock) only delays it: queries never list
   expired events anyway. */
static void s_maybe_purge(mg_store_t *store)
{
    int64_t last = 0, now = mg_now_ms();
    if (mg_store_meta_get_int(store, MG_META_EVENT_PURGED_MS, &last) == MG_OK
        && now - last < S_PURGE_EVERY_MS && now >= last)
        return;
    mg_store_events_purge(store, now, NULL, NULL);
}

static int s_open(mg_node_ctx_t *ctx, const char *dir, const char *what)
{
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_node_open(ctx, dir, &why);
    if (rc != MG_OK) {
        mg_node_close(ctx);
        return mg_cli_fail(what, rc, &why);
    }
    s_maybe_purge(ctx->store);
    return 0;
}

/* "Nom (0123456789ab)" or "structure 0123456789ab" into out. */
static void s_who(mg_store_t *store, const uint8_t *author, char *out,
                  size_t size)
{
    char hex[65];
    mg_hex_encode(author, MG_KEY_BYTES, hex);
    char *name = mg_author_name(store, author);
    if (name)
        snprintf(out, size, "%s (%.12s)", name, hex);
    else
        snprintf(out, size, "structure %.12s", hex);
    free(name);
}

/* Splits `text` on any of `seps`, trimming spaces; empty items dropped.
   Caller frees with s_strv_free. Returns the count, -1 out of memory. */
static long s_split(const char *text, const char *seps, char ***out)
{
    *out = NULL;
    size_t cap = 8, n = 0;
    char **v = malloc(cap * sizeof *v);
    if (!v)
        return -1;
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, seps);
        const char *a = p, *b = p + len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            if (n == cap) {
                char **g = realloc(v, 2 * cap * sizeof *v);
                if (!g)
                    goto nomem;
                v = g;
                cap *= 2;
            }
            v[n] = strndup(a, (size_t) (b - a));
            if (!v[n])
                goto nomem;
            n++;
        }
        p += len;
        if (*p)
            p++;
    }
    *out = v;
    return (long) n;
nomem:
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    return -1;
}

static void s_strv_free(char **v, long n)
{
    for (long i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Sets an enumerated list field (services, publics) from "A|B" or
   "A, B", each item matched to the standard's labels. */
static int s_set_enum(mg_body_t *body, const char *field, const char *value,
                      mg_why_t *why)
{
    const mg_field_t *f = mg_offer_field(field);
    char **items = NULL;
    long n = s_split(value, "|,", &items);
    if (n < 0)
        return MG_ERR_NOMEM;
    if (n == 0) {
        s_strv_free(items, n);
        return mg_why_set(why, MG_ERR_SCHEMA, "%s : aucune valeur", field);
    }
    const char **canon = calloc((size_t) n, sizeof *canon);
    int rc = canon ? MG_OK : MG_ERR_NOMEM;
    for (long i = 0; rc == MG_OK && i < n; i++) {
        canon[i] = mg_enum_canonical(f, items[i]);
        if (!canon[i])
            rc = mg_field_check_item(f, items[i], why);
    }
    if (rc == MG_OK)
        rc = mg_body_set_list(body, field, canon, (size_t) n);
    free(canon);
    s_strv_free(items, n);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Authors                                                              */

typedef struct {
    const char *text;     /* what the person typed */
    char *folded;         /* its fold, for names */
    bool hex;             /* text looks like a key prefix */
    uint8_t found[8][MG_KEY_BYTES];
    char names[8][128];
    int n;                /* matches (capped at 8) */
    int total;
    bool exact;           /* matches are exact name matches */
} s_author_find_t;

static int s_author_each(const mg_record_t *rec, void *arg)
{
    s_author_find_t *f = arg;
    char hex[65];
    mg_hex_encode(mg_record_author(rec), MG_KEY_BYTES, hex);
    const char *nom = mg_body_str(mg_record_body(rec), "nom");
    bool match = false, exact = false;
    if (f->hex && strncmp(hex, f->text, strlen(f->text)) == 0)
        match = exact = true;
    if (!match && nom && f->folded) {
        char *fn = mg_fold(nom);
        if (fn) {
            exact = strcmp(fn, f->folded) == 0;
            match = exact || strstr(fn, f->folded) != NULL;
        }
        free(fn);
    }
    if (!match)
        return 0;
    /* Exact matches win over partial ones. */
    if (exact && !f->exact) {
        f->n = f->total = 0;
        f->exact = true;
    } else if (!exact && f->exact) {
        return 0;
    }
    if (f->n < 8) {
        memcpy(f->found[f->n], mg_record_author(rec), MG_KEY_BYTES);
        snprintf(f->names[f->n], sizeof f->names[f->n], "%s (%.12s)",
                 nom ? nom : "?", hex);
        f->n++;
    }
    f->total++;
    return 0;
}

/* Resolves a structure typed by a person: a public key or its first hex
   digits (4 at least), or its name (case and accents ignored; a unique
   part of it will do). A full key is accepted even when its profile has
   not arrived yet. */
static int s_resolve_author(mg_store_t *store, const char *text,
                            uint8_t key[MG_KEY_BYTES], mg_why_t *why)
{
    size_t len = strlen(text);
    bool hex = len >= 4 && len <= 64;
    for (size_t i = 0; hex && i < len; i++)
        hex = (text[i] >= '0' && text[i] <= '9')
              || (text[i] >= 'a' && text[i] <= 'f');
    if (hex && len == 64)
        return mg_hex_decode(text, key, MG_KEY_BYTES) == 0
                   ? MG_OK
                   : mg_why_set(why, MG_ERR_ARG, "clé invalide : %s", text);
    s_author_find_t f = {.text = text, .hex = hex, .folded = mg_fold(text)};
    int rc = mg_store_records(store, "profile", false, s_author_each, &f, why);
    free(f.folded);
    if (rc != MG_OK)
        return rc;
    if (f.total == 1) {
        memcpy(key, f.found[0], MG_KEY_BYTES);
        return MG_OK;
    }
    if (f.total == 0)
        return mg_why_set(why, MG_ERR_NOT_FOUND,
                          "aucune structure connue ne s'appelle « %s » ni "
                          "n'a une clé qui commence ainsi (voir « maillage "
                          "status »)",
                          text);
    char list[700] = "";
    size_t used = 0;
    for (int i = 0; i < f.n && used < sizeof list; i++)
        used += (size_t) snprintf(list + used, sizeof list - used, "%s%s",
                                  i ? ", " : "", f.names[i]);
    return mg_why_set(why, MG_ERR_AMBIGUOUS,
                      "« %s » désigne plusieurs structures : %s%s ; "
                      "précisez (nom complet ou début de clé)",
                      text, list, f.total > f.n ? ", …" : "");
}

/* ------------------------------------------------------------------ */
/* Time, in French                                                      */

static const char *const s_wdays[] = {"dimanche", "lundi", "mardi",
                                      "mercredi", "jeudi", "vendredi",
                                      "samedi"};
static const char *const s_months[] = {
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet",
    "août", "septembre", "octobre", "novembre", "décembre"};

/* "12/03/2026 14:00", Paris time. */
static void s_fmt_short(int64_t ms, char out[40])
{
    mg_civil_t c;
    mg_paris_local(ms, &c);
    snprintf(out, 40, "%02d/%02d/%04d %02d:%02d", c.day % 100, c.month % 100,
             c.year % 10000, c.hour % 100, c.minute % 100);
}

/* "jeudi 12 mars 2026", Paris time. */
static void s_fmt_day(const mg_civil_t *c, char out[64])
{
    snprintf(out, 64, "%s %d%s %s %d", s_wdays[c->wday % 7], c->day,
             c->day == 1 ? "er" : "", s_months[(c->month - 1) % 12], c->year);
}

/* "jeudi 12 mars 2026, 14:00 → 17:00" or "du ... 14:00 au ... 17:00". */
static void s_fmt_span(int64_t start, int64_t end, char out[200])
{
    mg_civil_t a, b;
    mg_paris_local(start, &a);
    mg_paris_local(end, &b);
    char da[64], db[64];
    s_fmt_day(&a, da);
    s_fmt_day(&b, db);
    if (a.year == b.year && a.month == b.month && a.day == b.day)
        snprintf(out, 200, "%s, %02d:%02d → %02d:%02d", da, a.hour % 100,
                 a.minute % 100, b.hour % 100, b.minute % 100);
    else
        snprintf(out, 200, "du %s %02d:%02d au %s %02d:%02d", da,
                 a.hour % 100, a.minute % 100, db, b.hour % 100,
                 b.minute % 100);
}

/* "HH:MM" -> hour and minute; false when it is not that. */
static bool s_parse_hhmm(const char *s, int *h, int *m)
{
    if (strlen(s) != 5 || s[2] != ':')
        return false;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return false;
    *h = (s[0] - '0') * 10 + (s[1] - '0');
    *m = (s[3] - '0') * 10 + (s[4] - '0');
    return *h <= 23 && *m <= 59;
}

/* ------------------------------------------------------------------ */
/* JSON of events, replies, notes                                       */

static void s_set_str(json_t *o, const char *key, const char *value)
{
    json_object_set_new(o, key, value ? json_string(value) : json_null());
}

static json_t *s_event_json(mg_store_t *store, const mg_record_t *rec,
                            const mg_event_row_t *row)
{
    json_t *o = mg_body_to_json(mg_record_body(rec));
    if (!o)
        return NULL;
    char hex[65], when[32], local[26];
    mg_hex_encode(mg_record_author(rec), MG_KEY_BYTES, hex);
    json_object_set_new(o, "id", json_string(mg_record_rid(rec)));
    json_object_set_new(o, "auteur", json_string(hex));
    char *name = mg_author_name(store, mg_record_author(rec));
    s_set_str(o, "organisateur", name);
    free(name);
    mg_time_iso(mg_record_created(rec), when);
    json_object_set_new(o, "mis_a_jour", json_string(when));
    json_object_set_new(o, "version",
                        json_integer((json_int_t) mg_record_counter(rec)));
    mg_time_format_paris(row->start_ms, local);
    json_object_set_new(o, "debut_local", json_string(local));
    mg_time_format_paris(row->end_ms, local);
    json_object_set_new(o, "fin_local", json_string(local));
    json_object_set_new(o, "annule", json_boolean(row->cancelled));
    json_object_set_new(o, "ouvert_a_tous",
                        json_boolean(!json_object_get(o, "territoire")));
    json_t *pn = json_array();
    const char *const *partners = NULL;
    size_t np = mg_body_list(mg_record_body(rec), "partenaires", &partners);
    for (size_t i = 0; i < np; i++) {
        uint8_t key[MG_KEY_BYTES];
        char *pname = NULL;
        if (mg_hex_decode(partners[i], key, sizeof key) == 0)
            pname = mg_author_name(store, key);
        json_array_append_new(pn, json_pack("{s:s,s:s?}", "cle", partners[i],
                                            "nom", pname));
        free(pname);
    }
    json_object_set_new(o, "partenaires_noms", pn);
    s_set_str(o, "ma_reponse", row->my_answer[0] ? row->my_answer : NULL);
    if (row->my_answer[0])
        json_object_set_new(o, "mes_places", json_integer(row->my_seats));
    json_object_set_new(o, "j_organise", json_boolean(row->viewer_organiser));
    json_object_set_new(o, "je_suis_partenaire",
                        json_boolean(row->viewer_partner));
    json_object_set_new(o, "places_demandees", json_integer(row->seats_yes));
    json_object_set_new(o, "nombre_reponses",
                        json_pack("{s:I,s:I,s:I}", "oui",
                                  (json_int_t) row->replies_yes, "peut_etre",
                                  (json_int_t) row->replies_maybe, "non",
                                  (json_int_t) row->replies_no));
    if (row->distance_km >= 0)
        json_object_set_new(o, "distance_km",
                            json_real(round(row->distance_km * 10) / 10));
    return o;
}

static const char *s_status_name(mg_reply_status_t s)
{
    switch (s) {
    case MG_REPLY_CONFIRMED: return "confirmee";
    case MG_REPLY_WAITING: return "liste_attente";
    case MG_REPLY_MAYBE: return "peut_etre";
    case MG_REPLY_NO: return "non";
    case MG_REPLY_OTHER: break;
    }
    return "autre";
}

static json_t *s_reply_json(mg_store_t *store, const mg_reply_t *r)
{
    char hex[65], when[32];
    mg_hex_encode(r->author, MG_KEY_BYTES, hex);
    mg_time_iso(r->created, when);
    char *name = mg_author_name(store, r->author);
    json_t *o = json_pack("{s:s,s:s?,s:s,s:I,s:s?,s:s,s:s}", "auteur", hex,
                          "structure", name, "reponse", r->answer, "places",
                          (json_int_t) r->seats, "commentaire", r->comment,
                          "date", when, "statut", s_status_name(r->status));
    if (o && r->position)
        json_object_set_new(o, "position", json_integer(r->position));
    free(name);
    return o;
}

static json_t *s_tally_json(mg_store_t *store, const mg_tally_t *t)
{
    json_t *lists[5];
    static const char *const names[5] = {"confirmees", "liste_attente",
                                         "peut_etre", "non", "autres"};
    for (int i = 0; i < 5; i++)
        lists[i] = json_array();
    for (size_t i = 0; i < t->count; i++)
        json_array_append_new(lists[t->replies[i].status - 1],
                              s_reply_json(store, &t->replies[i]));
    json_t *o = json_object();
    json_object_set_new(o, "capacite",
                        t->capacity ? json_integer(t->capacity) : json_null());
    json_object_set_new(o, "places_confirmees",
                        json_integer(t->seats_confirmed));
    json_object_set_new(o, "places_en_attente", json_integer(t->seats_waiting));
    json_object_set_new(o, "places_restantes",
                        t->capacity ? json_integer(t->capacity
                                                   - t->seats_confirmed)
                                    : json_null());
    json_object_set_new(o, "ordre",
                        json_string("date de réponse signée, puis clé de "
                                    "l'auteur"));
    for (int i = 0; i < 5; i++)
        json_object_set_new(o, names[i], lists[i]);
    return o;
}

/* A note's text: its pieces joined. Caller frees. */
static char *s_note_text(const mg_body_t *body)
{
    const char *const *items = NULL;
    size_t n = mg_body_list(body, "texte", &items);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]);
    char *text = malloc(len);
    if (!text)
        return NULL;
    text[0] = '\0';
    for (size_t i = 0; i < n; i++)
        strcat(text, items[i]);
    return text;
}

static json_t *s_note_json(mg_store_t *store, const mg_record_t *rec)
{
    json_t *o = mg_body_to_json(mg_record_body(rec));
    if (!o)
        return NULL;
    char hex[65], when[32];
    mg_hex_encode(mg_record_author(rec), MG_KEY_BYTES, hex);
    mg_time_iso(mg_record_created(rec), when);
    char *text = s_note_text(mg_record_body(rec));
    json_object_set_new(o, "texte", text ? json_string(text) : json_null());
    free(text);
    json_object_set_new(o, "id", json_string(mg_record_rid(rec)));
    json_object_set_new(o, "auteur", json_string(hex));
    char *name = mg_author_name(store, mg_record_author(rec));
    s_set_str(o, "structure", name);
    free(name);
    json_object_set_new(o, "mis_a_jour", json_string(when));
    json_object_set_new(o, "version",
                        json_integer((json_int_t) mg_record_counter(rec)));
    return o;
}

/* ------------------------------------------------------------------ */
/* event add / update                                                   */

static const char *const s_event_usage =
    "Usage :\n"
    "  maillage event add --title T --start DATE --end DATE LIEU [OPTIONS]\n"
    "  maillage event update ID [OPTIONS] [--unset CHAMP]\n"
    "  maillage event cancel ID [--reason TEXTE] [--undo]\n"
    "  maillage event rm ID [--force] [--json]\n"
    "  maillage event list [--upcoming] [--past] [--mine] [--near CP --within KM]\n"
    "                      [--territory CODE] [--service S] [--search MOTS] [--json]\n"
    "  maillage event show ID [--json]\n"
    "  maillage event retention [JOURS] [--json]\n\n"
    "Options d'un événement :\n"
    "  --title T              titre\n"
    "  --start DATE           début, heure de Paris : 2026-03-12T14:00 (ou « 2026-03-12 14:00 »,\n"
    "                         ou avec un fuseau : 2026-03-12T13:00Z, +01:00)\n"
    "  --end DATE|HH:MM       fin ; HH:MM seul = le jour du début\n"
    "  LIEU : --place ADRESSE --commune C --code-postal CP [--code-insee I]\n"
    "         [--latitude LAT --longitude LON], et/ou --online URL (hybride possible)\n"
    "  --services S           services du standard national, séparés par « | » ou « , »\n"
    "  --publics P            publics spécifiquement adressés\n"
    "  --territory CODES      invités : codes INSEE de communes (16015) ou de\n"
    "                         départements (16, 2A, 971), séparés par des virgules ;\n"
    "                         sans territoire, l'événement est ouvert à tout le réseau\n"
    "  --capacity N           nombre de places (au-delà : liste d'attente)\n"
    "  --partners A,B         structures co-organisatrices (nom ou début de clé)\n"
    "  --registration TEXTE   comment s'inscrire\n"
    "  --description TEXTE    présentation\n"
    "  --json                 réponse en JSON\n\n"
    "ID : l'identifiant de l'événement, ou son début s'il est unique.\n"
    "Les heures sont saisies et affichées à l'heure de Paris, enregistrées en UTC.\n";

/* Field names accepted by --unset, and what they unset. */
static const struct {
    const char *option;
    const char *field;
} s_event_unset[] = {
    {"place", "adresse"}, {"adresse", "adresse"}, {"commune", "commune"},
    {"code-postal", "code_postal"}, {"code_postal", "code_postal"},
    {"code-insee", "code_insee"}, {"code_insee", "code_insee"},
    {"latitude", "latitude"}, {"longitude", "longitude"},
    {"online", "en_ligne"}, {"en-ligne", "en_ligne"}, {"en_ligne", "en_ligne"},
    {"services", "services"}, {"publics", "publics_specifiquement_adresses"},
    {"territory", "territoire"}, {"territoire", "territoire"},
    {"capacity", "capacite"}, {"capacite", "capacite"},
    {"partners", "partenaires"}, {"partenaires", "partenaires"},
    {"registration", "inscription"}, {"inscription", "inscription"},
    {"description", "description"}, {NULL, NULL},
};

typedef struct {
    const char *start;   /* --start as typed */
    const char *end;     /* --end as typed */
    bool json;
    int changes;
} s_event_opts_t;

static int s_set_number(mg_body_t *body, const char *field, const char *v,
                        bool integer, mg_why_t *why)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || !end || *end || end == v || !isfinite(d)
        || (integer && d != floor(d)))
        return mg_why_set(why, MG_ERR_SCHEMA, "%s : « %s » n'est pas un %s",
                          field, v, integer ? "nombre entier" : "nombre");
    return mg_body_set_num(body, field, d);
}

/* Parses the event options from argv[first..] into `body`. Returns 0, or
   an exit code after printing why. */
static int s_event_options(const char *cmd, int argc, char **argv, int first,
                           mg_node_ctx_t *ctx, mg_body_t *body,
                           s_event_opts_t *o, bool allow_unset)
{
    mg_why_t why;
    mg_why_clear(&why);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *field = NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (allow_unset && strcmp(a, "--unset") == 0) {
            const char *name = mg_cli_value(argc, argv, &i);
            if (!name)
                return 2;
            const char *f = NULL;
            for (size_t k = 0; s_event_unset[k].option && !f; k++)
                if (strcmp(s_event_unset[k].option, name) == 0)
                    f = s_event_unset[k].field;
            if (!f) {
                mg_errorf("maillage : --unset : champ inconnu ou "
                          "obligatoire : %s\n", name);
                return 2;
            }
            mg_body_remove(body, f);
            o->changes++;
            continue;
        }
        if (s_is(a, "--start", "--debut"))
            field = "debut";
        else if (s_is(a, "--end", "--fin"))
            field = "fin";
        else if (s_is(a, "--title", "--titre"))
            field = "titre";
        else if (s_is(a, "--place", "--adresse"))
            field = "adresse";
        else if (strcmp(a, "--commune") == 0)
            field = "commune";
        else if (strcmp(a, "--code-postal") == 0)
            field = "code_postal";
        else if (strcmp(a, "--code-insee") == 0)
            field = "code_insee";
        else if (strcmp(a, "--latitude") == 0)
            field = "latitude";
        else if (strcmp(a, "--longitude") == 0)
            field = "longitude";
        else if (s_is(a, "--online", "--en-ligne"))
            field = "en_ligne";
        else if (s_is(a, "--services", "--service"))
            field = "services";
        else if (s_is(a, "--publics", "--public"))
            field = "publics_specifiquement_adresses";
        else if (s_is(a, "--territory", "--territoire"))
            field = "territoire";
        else if (s_is(a, "--capacity", "--capacite"))
            field = "capacite";
        else if (s_is(a, "--partners", "--partenaires"))
            field = "partenaires";
        else if (s_is(a, "--registration", "--inscription"))
            field = "inscription";
        else if (strcmp(a, "--description") == 0)
            field = "description";
        else
            return mg_cli_unknown(cmd, a);
        const char *v = mg_cli_value(argc, argv, &i);
        if (!v)
            return 2;
        o->changes++;
        int rc = MG_OK;
        if (strcmp(field, "debut") == 0) {
            o->start = v;
        } else if (strcmp(field, "fin") == 0) {
            o->end = v;
        } else if (strcmp(field, "latitude") == 0
                   || strcmp(field, "longitude") == 0) {
            rc = s_set_number(body, field, v, false, &why);
        } else if (strcmp(field, "capacite") == 0) {
            rc = s_set_number(body, field, v, true, &why);
        } else if (strcmp(field, "services") == 0
                   || strcmp(field, "publics_specifiquement_adresses") == 0) {
            rc = s_set_enum(body, field, v, &why);
        } else if (strcmp(field, "territoire") == 0) {
            char **codes = NULL;
            long n = s_split(v, ", ;|", &codes);
            if (n < 0)
                rc = MG_ERR_NOMEM;
            for (long k = 0; rc == MG_OK && k < n; k++) {
                for (char *p = codes[k]; *p; p++)
                    if (*p >= 'a' && *p <= 'z')
                        *p = (char) (*p - 32);
                if (!mg_territory_code_valid(codes[k], NULL))
                    rc = mg_why_set(&why, MG_ERR_SCHEMA,
                                    "territoire : « %s » n'est ni un code INSEE "
                                    "de commune (16015, 2A004) ni un code de "
                                    "département (16, 2A, 971)",
                                    codes[k]);
            }
            if (rc == MG_OK && n == 0)
                rc = mg_why_set(&why, MG_ERR_SCHEMA,
                                "territoire : aucun code (--unset territory "
                                "pour ouvrir l'événement à tous)");
            if (rc == MG_OK)
                rc = mg_body_set_list(body, field, (const char *const *) codes,
                                      (size_t) n);
            s_strv_free(codes, n);
        } else if (strcmp(field, "partenaires") == 0) {
            char **names = NULL;
            long n = s_split(v, ",|", &names);
            char **hexes = n > 0 ? calloc((size_t) n, sizeof *hexes) : NULL;
            if (n < 0 || (n > 0 && !hexes))
                rc = MG_ERR_NOMEM;
            for (long k = 0; rc == MG_OK && k < n; k++) {
                uint8_t key[MG_KEY_BYTES];
                rc = s_resolve_author(ctx->store, names[k], key, &why);
                if (rc == MG_OK && memcmp(key, ctx->id.pk, MG_KEY_BYTES) == 0)
                    rc = mg_why_set(&why, MG_ERR_ARG,
                                    "partenaires : « %s » est votre propre "
                                    "structure (l'organisatrice)",
                                    names[k]);
                if (rc == MG_OK && !(hexes[k] = malloc(65)))
                    rc = MG_ERR_NOMEM;
                if (rc == MG_OK)
                    mg_hex_encode(key, MG_KEY_BYTES, hexes[k]);
            }
            if (rc == MG_OK && n == 0)
                rc = mg_why_set(&why, MG_ERR_SCHEMA, "partenaires : aucune "
                                "structure (--unset partners pour les retirer)");
            if (rc == MG_OK)
                rc = mg_body_set_list(body, field, (const char *const *) hexes,
                                      (size_t) n);
            s_strv_free(hexes, n > 0 ? n : 0);
            s_strv_free(names, n);
        } else {
            rc = mg_body_set_str(body, field, v);
        }
        if (rc != MG_OK) {
            mg_cli_fail("valeur refusée", rc, &why);
            return 1;
        }
    }
    return 0;
}

/* Prefixes why's text with the option it is about. */
static int s_prefix(mg_why_t *why, int rc, const char *option)
{
    mg_why_t inner = *why;
    return mg_why_set(why, rc, "%s : %s", option, inner.text);
}

/* Applies --start/--end to the body: Paris time unless a zone is given;
   --end HH:MM is on the start's day. Moving the start alone (update)
   keeps the duration. */
static int s_event_times(mg_body_t *body, const s_event_opts_t *o,
                         mg_why_t *why)
{
    int64_t start = 0, end = 0, old_start = 0, old_end = 0;
    char text[21];
    int rc;
    bool had = mg_time_parse_utc(mg_body_str(body, "debut"), &old_start) == 0
               && mg_time_parse_utc(mg_body_str(body, "fin"), &old_end) == 0;
    if (o->start && !o->end && had) {
        if ((rc = mg_time_parse(o->start, &start, why)) != MG_OK)
            return s_prefix(why, rc, "--start");
        end = start + (old_end - old_start);
        mg_time_format_utc(start, text);
        if ((rc = mg_body_set_str(body, "debut", text)) != MG_OK)
            return rc;
        mg_time_format_utc(end, text);
        return mg_body_set_str(body, "fin", text);
    }
    if (o->start) {
        if ((rc = mg_time_parse(o->start, &start, why)) != MG_OK)
            return s_prefix(why, rc, "--start");
        mg_time_format_utc(start, text);
        if ((rc = mg_body_set_str(body, "debut", text)) != MG_OK)
            return rc;
    } else if (mg_time_parse_utc(mg_body_str(body, "debut"), &start) != 0) {
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "indiquez le début : --start 2026-03-12T14:00");
    }
    if (o->end) {
        int h, m;
        if (s_parse_hhmm(o->end, &h, &m)) {
            mg_civil_t c;
            mg_paris_local(start, &c);
            c.hour = h;
            c.minute = m;
            c.second = 0;
            rc = mg_paris_to_utc(&c, &end, why);
        } else {
            rc = mg_time_parse(o->end, &end, why);
        }
        if (rc != MG_OK)
            return s_prefix(why, rc, "--end");
        mg_time_format_utc(end, text);
        if ((rc = mg_body_set_str(body, "fin", text)) != MG_OK)
            return rc;
    } else if (mg_time_parse_utc(mg_body_str(body, "fin"), &end) != 0) {
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "indiquez la fin : --end 2026-03-12T17:00 (ou --end "
                          "17:00 le même jour)");
    }
    if (end <= start)
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "la fin (--end) doit venir après le début (--start)");
    return MG_OK;
}

static void s_territory_summary(const mg_body_t *body, char *out, size_t size)
{
    const char *const *codes = NULL;
    size_t n = mg_body_list(body, "territoire", &codes);
    if (n == 0) {
        snprintf(out, size, "ouvert à tout le réseau");
        return;
    }
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        bool commune = false;
        mg_territory_code_valid(codes[i], &commune);
        used += (size_t) snprintf(out + used, size - used, "%s%s (%s)",
                                  i ? ", " : "", codes[i],
                                  commune ? "commune" : "département");
    }
}

static int s_event_add(int argc, char **argv, const char *dir)
{
    for (int i = 2; i < argc; i++)
        if (mg_cli_is_help(argv[i])) {
            fputs(s_event_usage, stdout);
            return 0;
        }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "event add");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    mg_body_t *body = mg_body_new();
    s_event_opts_t o = {0};
    prc = body ? s_event_options("event add", argc, argv, 2, &ctx, body, &o,
                                 false)
               : 1;
    int rc = MG_OK;
    char rid[17];
    mg_new_rid(rid);
    if (prc == 0 && !mg_body_str(body, "titre")) {
        mg_errorf("maillage : indiquez le titre : --title \"Atelier ...\"\n");
        prc = 2;
    }
    if (prc == 0 && (rc = s_event_times(body, &o, &why)) != MG_OK)
        prc = mg_cli_fail("événement refusé", rc, &why);
    if (prc == 0) {
        rc = mg_node_author(&ctx, "event", rid, false, body, &why);
        if (rc != MG_OK)
            prc = mg_cli_fail("événement refusé", rc, &why);
    }
    if (prc == 0) {
        int64_t end = 0;
        mg_time_parse_utc(mg_body_str(body, "fin"), &end);
        if (end <= mg_now_ms())
            mg_errorf("Attention : cet événement est déjà terminé.\n");
        if (o.json) {
            json_t *j = json_pack("{s:s}", "id", rid);
            s_print_json(j);
            json_decref(j);
        } else {
            char terr[512];
            s_territory_summary(body, terr, sizeof terr);
            printf("Événement ajouté : %s\n  Invités : %s\n", rid, terr);
        }
    }
    mg_body_destroy(&body);
    mg_node_close(&ctx);
    return prc;
}

/* Resolves an event id typed by a person; mine: only this node's (to
   change it), saying so when it belongs to another structure. */
static int s_resolve_event(mg_node_ctx_t *ctx, const char *prefix, bool mine,
                           mg_record_t **out, mg_why_t *why)
{
    uint8_t author[MG_KEY_BYTES];
    char rid[MG_RID_MAX + 1];
    int rc = mg_store_resolve(ctx->store, "event", prefix,
                              mine ? ctx->id.pk : NULL, author, rid, why);
    if (rc == MG_ERR_NOT_FOUND && mine
        && mg_store_resolve(ctx->store, "event", prefix, NULL, author, rid,
                            NULL) == MG_OK)
        return mg_why_set(why, MG_ERR_FORBIDDEN,
                          "l'événement %s est organisé par une autre "
                          "structure : seule elle peut le modifier",
                          rid);
    if (rc != MG_OK)
        return rc;
    return mg_store_get(ctx->store, author, rid, out, why);
}

static int s_event_update(int argc, char **argv, const char *dir)
{
    if (argc < 3 || mg_cli_is_help(argv[2])) {
        fputs(s_event_usage, stdout);
        return argc < 3 ? 2 : 0;
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "event update");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    mg_record_t *rec = NULL;
    int rc = s_resolve_event(&ctx, argv[2], true, &rec, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("event update", rc, &why);
    }
    mg_body_t *body = mg_body_dup(mg_record_body(rec));
    s_event_opts_t o = {0};
    prc = body ? s_event_options("event update", argc, argv, 3, &ctx, body, &o,
                                 true)
               : 1;
    if (prc == 0 && o.changes == 0) {
        mg_errorf("maillage : rien à changer ; voir « maillage event "
                  "--help »\n");
        prc = 2;
    }
    if (prc == 0 && (rc = s_event_times(body, &o, &why)) != MG_OK)
        prc = mg_cli_fail("événement refusé", rc, &why);
    if (prc == 0) {
        rc = mg_node_author(&ctx, "event", mg_record_rid(rec), false, body,
                            &why);
        if (rc != MG_OK)
            prc = mg_cli_fail("événement refusé", rc, &why);
        else if (o.json) {
            json_t *j = json_pack("{s:s}", "id", mg_record_rid(rec));
            s_print_json(j);
            json_decref(j);
        } else {
            printf("Événement mis à jour : %s\n", mg_record_rid(rec));
        }
    }
    mg_body_destroy(&body);
    mg_record_destroy(&rec);
    mg_node_close(&ctx);
    return prc;
}

static int s_event_cancel(int argc, char **argv, const char *dir)
{
    const char *id = NULL, *reason = NULL;
    bool undo = false, json = false;
    for (int i = 2; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage event cancel ID [--reason TEXTE] [--undo] [--json]\n\n"
                   "Annule un de vos événements : une nouvelle version signée, marquée\n"
                   "annulée, qui parvient à chaque invité ; il reste dans leurs listes,\n"
                   "signalé « ANNULÉ », et n'accepte plus de réponses. --undo le rétablit.\n");
            return 0;
        } else if (s_is(argv[i], "--reason", "--motif")) {
            if (!(reason = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(argv[i], "--undo") == 0) {
            undo = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (!id && argv[i][0] != '-') {
            id = argv[i];
        } else {
            return mg_cli_unknown("event cancel", argv[i]);
        }
    }
    if (!id) {
        mg_errorf("maillage : indiquez l'événement : maillage event cancel ID\n");
        return 2;
    }
    if (undo && reason) {
        mg_errorf("maillage : --undo et --reason s'excluent\n");
        return 2;
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "event cancel");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    mg_record_t *rec = NULL;
    int rc = s_resolve_event(&ctx, id, true, &rec, &why);
    mg_body_t *body = rc == MG_OK ? mg_body_dup(mg_record_body(rec)) : NULL;
    if (rc == MG_OK && !body)
        rc = MG_ERR_NOMEM;
    bool cancelled = body && mg_body_find(body, "annule_le") >= 0;
    if (rc == MG_OK && undo && !cancelled)
        rc = mg_why_set(&why, MG_ERR_ARG, "l'événement %s n'est pas annulé",
                        mg_record_rid(rec));
    if (rc == MG_OK && !undo && cancelled && !reason)
        rc = mg_why_set(&why, MG_ERR_EXISTS,
                        "l'événement %s est déjà annulé (--reason pour changer "
                        "le motif, --undo pour le rétablir)",
                        mg_record_rid(rec));
    if (rc == MG_OK) {
        if (undo) {
            mg_body_remove(body, "annule_le");
            mg_body_remove(body, "motif_annulation");
        } else {
            char now[21];
            mg_time_format_utc(mg_now_ms(), now);
            /* A new motive keeps the original cancellation time. */
            if (!cancelled)
                rc = mg_body_set_str(body, "annule_le", now);
            if (rc == MG_OK && reason)
                rc = mg_body_set_str(body, "motif_annulation", reason);
        }
    }
    if (rc == MG_OK)
        rc = mg_node_author(&ctx, "event", mg_record_rid(rec), false, body,
                            &why);
    if (rc == MG_OK) {
        if (json) {
            json_t *j = json_pack("{s:s,s:b}", "id", mg_record_rid(rec),
                                  "annule", !undo);
            s_print_json(j);
            json_decref(j);
        } else {
            printf("%s : %s\n", undo ? "Événement rétabli" : "Événement annulé",
                   mg_record_rid(rec));
        }
    } else {
        prc = mg_cli_fail("event cancel", rc, &why);
    }
    mg_body_destroy(&body);
    mg_record_destroy(&rec);
    mg_node_close(&ctx);
    return prc;
}

static int s_event_rm(int argc, char **argv, const char *dir)
{
    const char *id = NULL;
    bool force = false, json = false;
    for (int i = 2; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage event rm ID [--force] [--json]\n\n"
                   "Supprime un de vos événements du réseau (fiche supprimée signée).\n"
                   "Les invités ne le voient plus : pour les prévenir, annulez-le\n"
                   "plutôt (maillage event cancel). S'il a déjà des réponses, --force\n"
                   "est demandé.\n");
            return 0;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (!id && argv[i][0] != '-') {
            id = argv[i];
        } else {
            return mg_cli_unknown("event rm", argv[i]);
        }
    }
    if (!id) {
        mg_errorf("maillage : indiquez l'événement : maillage event rm ID\n");
        return 2;
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "event rm");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    mg_record_t *rec = NULL;
    mg_tally_t *t = NULL;
    int rc = s_resolve_event(&ctx, id, true, &rec, &why);
    if (rc == MG_OK)
        rc = mg_store_event_tally(ctx.store, mg_record_author(rec),
                                  mg_record_rid(rec), &t, &why);
    if (rc == MG_OK && t->count > 0 && !force
        && mg_body_find(mg_record_body(rec), "annule_le") < 0)
        rc = mg_why_set(&why, MG_ERR_FORBIDDEN,
                        "l'événement %s a %zu réponse%s : annulez-le plutôt "
                        "(maillage event cancel %s) pour que les invités le "
                        "sachent, ou ajoutez --force",
                        mg_record_rid(rec), t->count, t->count > 1 ? "s" : "",
                        mg_record_rid(rec));
    if (rc == MG_OK)
        rc = mg_node_author(&ctx, "event", mg_record_rid(rec), true, NULL,
                            &why);
    if (rc == MG_OK && json) {
        json_t *j = json_pack("{s:s,s:b}", "id", mg_record_rid(rec),
                              "supprime", 1);
        s_print_json(j);
        json_decref(j);
    } else if (rc == MG_OK) {
        printf("Événement supprimé : %s\n", mg_record_rid(rec));
    } else {
        prc = mg_cli_fail("event rm", rc, &why);
    }
    mg_tally_destroy(&t);
    mg_record_destroy(&rec);
    mg_node_close(&ctx);
    return prc;
}

/* ------------------------------------------------------------------ */
/* event list / invitations                                             */

typedef struct {
    mg_node_ctx_t *ctx;
    json_t *array;      /* --json, else NULL */
    size_t count;
} s_list_t;

static void s_list_header(void);

/* The place of an event in a few words: commune, "en ligne", or both. */
static void s_where(const mg_body_t *b, char *out, size_t size)
{
    const char *commune = mg_body_str(b, "commune");
    bool online = mg_body_str(b, "en_ligne") != NULL;
    if (commune && online)
        snprintf(out, size, "%s + en ligne", commune);
    else if (commune)
        snprintf(out, size, "%s", commune);
    else
        snprintf(out, size, "en ligne");
}

static int s_list_event(const mg_record_t *rec, const mg_event_row_t *row,
                        void *arg)
{
    s_list_t *l = arg;
    l->count++;
    if (l->array) {
        json_array_append_new(l->array, s_event_json(l->ctx->store, rec, row));
        return 0;
    }
    if (l->count == 1)
        s_list_header();
    const mg_body_t *b = mg_record_body(rec);
    char id[9], when[40], where[128], status[160] = "";
    snprintf(id, sizeof id, "%s", mg_record_rid(rec));
    s_fmt_short(row->start_ms, when);
    s_where(b, where, sizeof where);
    size_t used = 0;
    if (row->cancelled)
        used += (size_t) snprintf(status, sizeof status, "ANNULÉ");
    else if (row->end_ms <= mg_now_ms())
        used += (size_t) snprintf(status, sizeof status, "terminé, %" PRId64
                                  " oui", row->replies_yes);
    else if (row->capacity)
        /* The list shows what was asked; who is confirmed and who waits
           (first come, first served) is in `event show`. */
        used += (size_t) snprintf(status, sizeof status, "%" PRId64
                                  " places demandées, capacité %" PRId64,
                                  row->seats_yes, row->capacity);
    else
        used += (size_t) snprintf(status, sizeof status, "%" PRId64 " oui",
                                  row->replies_yes);
    if (used < sizeof status) {
        if (row->viewer_organiser)
            snprintf(status + used, sizeof status - used, " · vous organisez");
        else if (row->viewer_partner)
            snprintf(status + used, sizeof status - used, " · partenaire");
        else if (row->my_answer[0])
            snprintf(status + used, sizeof status - used, " · vous : %s",
                     row->my_answer);
    }
    if (row->distance_km >= 0) {
        size_t n = strlen(where);
        snprintf(where + n, sizeof where - n, " (%.0f km)", row->distance_km);
    }
    mg_print_cell(stdout, id, 9);
    mg_print_cell(stdout, when, 17);
    mg_print_cell(stdout, mg_body_str(b, "titre"), 40);
    fputc(' ', stdout);
    mg_print_cell(stdout, where, 24);
    fputc(' ', stdout);
    mg_print_cell(stdout, status, -40);
    fputc('\n', stdout);
    return 0;
}

static void s_list_header(void)
{
    mg_print_cell(stdout, "ID", 9);
    mg_print_cell(stdout, "DÉBUT (PARIS)", 17);
    mg_print_cell(stdout, "TITRE", 41);
    mg_print_cell(stdout, "LIEU", 25);
    printf("ÉTAT\n");
}

/* Parses the event filters shared by list and export. Returns 0 when
   argv[*i] was one (consumed), -1 when it is not a filter, or an exit
   code. */
static int s_event_filter(int argc, char **argv, int *i, mg_event_query_t *q,
                          const char **near, const char **within, bool *mine)
{
    const char *a = argv[*i];
    const char **slot = NULL;
    if (strcmp(a, "--upcoming") == 0 || strcmp(a, "--a-venir") == 0) {
        q->upcoming = true;
        return 0;
    }
    if (strcmp(a, "--past") == 0 || strcmp(a, "--passes") == 0) {
        q->past = true;
        return 0;
    }
    if (strcmp(a, "--mine") == 0) {
        *mine = true;
        return 0;
    }
    if (s_is(a, "--territory", "--territoire"))
        slot = &q->territory;
    else if (s_is(a, "--service", "--services"))
        slot = &q->service;
    else if (s_is(a, "--search", "--cherche"))
        slot = &q->search;
    else if (strcmp(a, "--near") == 0)
        slot = near;
    else if (strcmp(a, "--within") == 0)
        slot = within;
    else
        return -1;
    const char *v = mg_cli_value(argc, argv, i);
    if (!v)
        return 2;
    *slot = v;
    return 0;
}

/* Resolves --near (a postal code, or "LAT,LON") and --within into q. */
static int s_near(mg_store_t *store, const char *near, const char *within,
                  mg_event_query_t *q, mg_why_t *why)
{
    if (!near && !within)
        return MG_OK;
    if (!near)
        return mg_why_set(why, MG_ERR_ARG, "--within va avec --near CP");
    q->near = true;
    q->within_km = S_NEAR_DEFAULT_KM;
    if (within) {
        char *end = NULL;
        q->within_km = strtod(within, &end);
        if (!end || *end || end == within || !(q->within_km > 0)
            || q->within_km > 2000)
            return mg_why_set(why, MG_ERR_ARG,
                              "--within : une distance en km (ex. 25)");
    }
    double lat, lon;
    char comma;
    int used = 0;
    if (sscanf(near, "%lf %c %lf%n", &lat, &comma, &lon, &used) == 3
        && comma == ',' && near[used] == '\0' && fabs(lat) <= 90
        && fabs(lon) <= 180) {
        q->near_lat = lat;
        q->near_lon = lon;
        return MG_OK;
    }
    int rc = mg_store_postal_coords(store, near, &q->near_lat, &q->near_lon);
    if (rc == MG_ERR_NOT_FOUND)
        return mg_why_set(why, rc,
                          "--near %s : aucune offre connue de ce code postal "
                          "n'a de coordonnées ; donnez « LATITUDE,LONGITUDE » "
                          "ou utilisez --territory",
                          near);
    return rc;
}

static int s_event_list(int argc, char **argv, const char *dir)
{
    mg_event_query_t q = {0};
    const char *near = NULL, *within = NULL;
    bool mine = false, json = false;
    for (int i = 2; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage event list [--upcoming] [--past] [--mine]\n"
                   "                            [--near CP|LAT,LON [--within KM]]\n"
                   "                            [--territory CODE] [--service S]\n"
                   "                            [--search MOTS] [--json]\n\n"
                   "Les événements connus du nœud, par date de début (les plus récents\n"
                   "d'abord avec --past seul).\n"
                   "  --upcoming   pas encore terminés      --past   terminés\n"
                   "  --mine       ceux que vous organisez ou co-organisez\n"
                   "  --near       à moins de --within km (%g par défaut) d'un code postal\n"
                   "               (position moyenne de ses offres connues) ou d'un point\n"
                   "  --territory  ceux qui invitent cette commune (INSEE) ou ce département,\n"
                   "               ouverts à tous compris\n"
                   "  --search     mots du titre, de la description ou du lieu (sans accents)\n"
                   "Les événements terminés restent listés pendant la durée de conservation\n"
                   "(maillage event retention).\n",
                   S_NEAR_DEFAULT_KM);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
            continue;
        }
        int rc = s_event_filter(argc, argv, &i, &q, &near, &within, &mine);
        if (rc < 0)
            return mg_cli_unknown("event list", argv[i]);
        if (rc)
            return rc;
    }
    if (q.upcoming && q.past) {
        mg_errorf("maillage : --upcoming et --past s'excluent (sans "
                  "l'un ni l'autre : tous)\n");
        return 2;
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "event list");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    int rc = s_near(ctx.store, near, within, &q, &why);
    if (mine)
        q.mine = ctx.id.pk;
    q.viewer = ctx.id.pk;
    s_list_t l = {.ctx = &ctx, .array = json ? json_array() : NULL};
    if (rc == MG_OK)
        rc = mg_store_events(ctx.store, &q, s_list_event, &l, &why);
    if (rc == MG_OK) {
        if (json)
            s_print_json(l.array);
        else if (l.count == 0)
            printf("Aucun événement.\n");
        else
            printf("%zu événement%s.\n", l.count, l.count > 1 ? "s" : "");
    }
    json_decref(l.array);
    mg_node_close(&ctx);
    return rc == MG_OK ? 0 : mg_cli_fail("event list", rc, &why);
}

int mg_cmd_invitations(int argc, char **argv, const char *dir)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage invitations [--json]\n\n"
                   "Les événements à venir qui invitent votre commune (code INSEE de la\n"
                   "fiche structure) ou votre département, ou tout le réseau, auxquels\n"
                   "vous n'avez pas encore répondu, les plus proches d'abord. Les vôtres\n"
                   "et ceux que vous co-organisez n'y sont pas (maillage event list --mine).\n"
                   "Répondre : maillage rsvp ID --yes|--no|--maybe\n");
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            return mg_cli_unknown("invitations", argv[i]);
        }
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "invitations");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    /* Where this node is: its profile's codes. */
    mg_record_t *profile = NULL;
    char insee[8] = "", dep[4] = "";
    if (mg_store_get(ctx.store, ctx.id.pk, "profile", &profile, NULL) == MG_OK
        && !mg_record_deleted(profile)) {
        const mg_body_t *b = mg_record_body(profile);
        const char *ci = mg_body_str(b, "code_insee");
        if (ci)
            snprintf(insee, sizeof insee, "%s", ci);
        if (mg_departement_of(ci, mg_body_str(b, "code_postal"), dep) != 0)
            dep[0] = '\0';
    }
    mg_record_destroy(&profile);
    if (!dep[0])
        mg_errorf("Attention : votre fiche structure n'a ni code postal ni "
                  "code INSEE ; seules les invitations ouvertes à tous apparaissent "
                  "(maillage profile set --code-postal 16000 --code-insee 16015).\n");
    else if (!insee[0])
        mg_errorf("Remarque : sans code INSEE dans votre fiche structure, "
                  "les invitations adressées à votre seule commune n'apparaissent "
                  "pas (maillage profile set --code-insee ...).\n");
    mg_event_query_t q = {.invitee = ctx.id.pk,
                          .invitee_insee = insee[0] ? insee : NULL,
                          .invitee_dep = dep[0] ? dep : NULL,
                          .viewer = ctx.id.pk,
                          .upcoming = true};
    s_list_t l = {.ctx = &ctx, .array = json ? json_array() : NULL};
    int rc = mg_store_events(ctx.store, &q, s_list_event, &l, &why);
    if (rc == MG_OK) {
        if (json)
            s_print_json(l.array);
        else if (l.count)
            printf("%zu invitation%s. Répondre : maillage rsvp ID --yes|--no|--maybe "
                   "[--seats N] ; détails : maillage event show ID\n",
                   l.count, l.count > 1 ? "s" : "");
        else
            printf("Aucune invitation en attente de réponse.\n");
    }
    json_decref(l.array);
    mg_node_close(&ctx);
    return rc == MG_OK ? 0 : mg_cli_fail("invitations", rc, &why);
}

/* ------------------------------------------------------------------ */
/* event show                                                           */

/* The event's index row (for the same view as the lists), by asking the
   store for this one event. */
typedef struct {
    const char *rid;
    mg_event_row_t row;
    bool found;
} s_find_row_t;

static int s_find_row(const mg_record_t *rec, const mg_event_row_t *row,
                      void *arg)
{
    s_find_row_t *f = arg;
    if (strcmp(mg_record_rid(rec), f->rid) != 0)
        return 0;
    f->row = *row;
    f->found = true;
    return 1;
}

/* Fills `row` for `rec`: from the indexes, or (an event past retention)
   from the record alone. */
static int s_event_row(mg_node_ctx_t *ctx, const mg_record_t *rec,
                       mg_event_row_t *row, bool *indexed, mg_why_t *why)
{
    mg_event_query_t q = {.author = mg_record_author(rec),
                          .viewer = ctx->id.pk};
    s_find_row_t f = {.rid = mg_record_rid(rec)};
    int rc = mg_store_events(ctx->store, &q, s_find_row, &f, why);
    if (rc < 0)
        return rc;
    *indexed = f.found;
    if (f.found) {
        *row = f.row;
        return MG_OK;
    }
    const mg_body_t *b = mg_record_body(rec);
    memset(row, 0, sizeof *row);
    row->distance_km = -1;
    mg_time_parse_utc(mg_body_str(b, "debut"), &row->start_ms);
    mg_time_parse_utc(mg_body_str(b, "fin"), &row->end_ms);
    row->cancelled = mg_body_find(b, "annule_le") >= 0;
    double cap = 0;
    if (mg_body_num(b, "capacite", &cap) == 0)
        row->capacity = (int64_t) cap;
    row->viewer_organiser =
        memcmp(mg_record_author(rec), ctx->id.pk, MG_KEY_BYTES) == 0;
    return MG_OK;
}

/* "  Label          value", continuation lines of the value indented
   under it (labels are padded by display width, not bytes). */
static void s_line(const char *label, const char *value)
{
    if (!value || !*value)
        return;
    fputs("  ", stdout);
    mg_print_cell(stdout, label, 15);
    for (const char *p = value; *p; p++) {
        fputc(*p, stdout);
        if (*p == '\n' && p[1])
            fputs("                 ", stdout);
    }
    fputc('\n', stdout);
}

/* s_line for a list field, items joined with " | ". */
static void s_line_list(const char *label, const mg_body_t *b,
                        const char *field)
{
    if (mg_body_find(b, field) < 0)
        return;
    fputs("  ", stdout);
    mg_print_cell(stdout, label, 15);
    mg_print_value(stdout, b, field, " | ");
    fputc('\n', stdout);
}

static void s_print_replies(mg_store_t *store, const mg_tally_t *t,
                            mg_reply_status_t status, const char *title)
{
    size_t n = 0;
    for (size_t i = 0; i < t->count; i++)
        n += t->replies[i].status == status;
    if (n == 0)
        return;
    printf("  %s :\n", title);
    size_t k = 0;
    for (size_t i = 0; i < t->count; i++) {
        const mg_reply_t *r = &t->replies[i];
        if (r->status != status)
            continue;
        char who[300], when[40];
        s_who(store, r->author, who, sizeof who);
        s_fmt_short(r->created, when);
        printf("    %2zu. %s", ++k, who);
        if (status == MG_REPLY_CONFIRMED || status == MG_REPLY_WAITING
            || status == MG_REPLY_MAYBE)
            printf(", %" PRId64 " place%s", r->seats, r->seats > 1 ? "s" : "");
        printf(" (le %s)\n", when);
        if (r->comment)
            printf("        « %s »\n", r->comment);
    }
}

static void s_show_text(mg_node_ctx_t *ctx, const mg_record_t *rec,
                        const mg_event_row_t *row, bool indexed,
                        const mg_tally_t *t)
{
    const mg_body_t *b = mg_record_body(rec);
    char buf[1024], who[300];
    printf("Événement %s — %s\n", mg_record_rid(rec), mg_body_str(b, "titre"));
    if (row->cancelled) {
        int64_t at = 0;
        char when[40] = "";
        if (mg_time_parse_utc(mg_body_str(b, "annule_le"), &at) == 0)
            s_fmt_short(at, when);
        const char *motif = mg_body_str(b, "motif_annulation");
        snprintf(buf, sizeof buf, "ANNULÉ le %s%s%s", when,
                 motif ? " — " : "", motif ? motif : "");
        s_line("État", buf);
    } else if (row->end_ms <= mg_now_ms()) {
        s_line("État", "terminé");
    }
    s_fmt_span(row->start_ms, row->end_ms, buf);
    size_t n = strlen(buf);
    snprintf(buf + n, sizeof buf - n, " (heure de Paris)");
    s_line("Quand", buf);
    const char *adresse = mg_body_str(b, "adresse");
    if (adresse) {
        snprintf(buf, sizeof buf, "%s, %s %s", adresse,
                 mg_body_str(b, "code_postal"), mg_body_str(b, "commune"));
        s_line("Où", buf);
    }
    s_line("En ligne", mg_body_str(b, "en_ligne"));
    s_who(ctx->store, mg_record_author(rec), who, sizeof who);
    s_line("Organisateur", who);
    const char *const *items = NULL;
    size_t np = mg_body_list(b, "partenaires", &items);
    for (size_t i = 0; i < np; i++) {
        uint8_t key[MG_KEY_BYTES];
        if (mg_hex_decode(items[i], key, sizeof key) != 0)
            continue;
        s_who(ctx->store, key, who, sizeof who);
        s_line(i ? "" : "Partenaires", who);
    }
    s_territory_summary(b, buf, sizeof buf);
    s_line("Invités", buf);
    s_line_list("Services", b, "services");
    s_line_list("Publics", b, "publics_specifiquement_adresses");
    if (row->capacity) {
        snprintf(buf, sizeof buf, "%" PRId64 " places", row->capacity);
        s_line("Capacité", buf);
    }
    s_line("Inscription", mg_body_str(b, "inscription"));
    s_line("Description", mg_body_str(b, "description"));
    char when[32];
    mg_time_iso(mg_record_created(rec), when);
    snprintf(buf, sizeof buf, "version %" PRIu64 " du %s",
             mg_record_counter(rec), when);
    s_line("Fiche", buf);

    printf("\nRéponses");
    if (!indexed) {
        int64_t days = 0;
        mg_store_event_retention(ctx->store, &days);
        printf(" : plus conservées sur ce nœud (événement terminé depuis plus "
               "de %" PRId64 " jours, voir maillage event retention).\n", days);
        return;
    }
    if (!t || t->count == 0) {
        printf(" : aucune pour l'instant.\n");
        return;
    }
    if (t->capacity)
        printf(" : %" PRId64 " place%s confirmée%s sur %" PRId64 " (%" PRId64
               " restante%s)",
               t->seats_confirmed, t->seats_confirmed > 1 ? "s" : "",
               t->seats_confirmed > 1 ? "s" : "", t->capacity,
               t->capacity - t->seats_confirmed,
               t->capacity - t->seats_confirmed > 1 ? "s" : "");
    else
        printf(" : %" PRId64 " place%s confirmée%s (pas de limite)",
               t->seats_confirmed, t->seats_confirmed > 1 ? "s" : "",
               t->seats_confirmed > 1 ? "s" : "");
    if (t->seats_waiting)
        printf(", %" PRId64 " en liste d'attente", t->seats_waiting);
    printf("\n");
    s_print_replies(ctx->store, t, MG_REPLY_CONFIRMED, "Confirmées");
    s_print_replies(ctx->store, t, MG_REPLY_WAITING,
                    "Liste d'attente (dans l'ordre)");
    s_print_replies(ctx->store, t, MG_REPLY_MAYBE, "Peut-être");
    s_print_replies(ctx->store, t, MG_REPLY_NO, "Ne viennent pas");
}

static int s_event_show(int argc, char **argv, const char *dir)
{
    const char *id = NULL;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage event show ID [--json]\n\n"
                   "Un événement et ses réponses : places confirmées au regard de la\n"
                   "capacité, liste d'attente, peut-être, refus, et les commentaires.\n"
                   "Ordre des réponses : date de réponse signée, puis clé de la structure\n"
                   "(le même sur tous les nœuds).\n");
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (!id && argv[i][0] != '-') {
            id = argv[i];
        } else {
            return mg_cli_unknown("event show", argv[i]);
        }
    }
    if (!id) {
        mg_errorf("maillage : indiquez l'événement : maillage event show ID\n");
        return 2;
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "event show");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    mg_record_t *rec = NULL;
    mg_tally_t *t = NULL;
    mg_event_row_t row;
    bool indexed = false;
    int rc = s_resolve_event(&ctx, id, false, &rec, &why);
    if (rc == MG_OK)
        rc = s_event_row(&ctx, rec, &row, &indexed, &why);
    if (rc == MG_OK)
        rc = mg_store_event_tally(ctx.store, mg_record_author(rec),
                                  mg_record_rid(rec), &t, &why);
    if (rc == MG_OK) {
        if (json) {
            json_t *o = s_event_json(ctx.store, rec, &row);
            json_object_set_new(o, "reponses", s_tally_json(ctx.store, t));
            s_print_json(o);
            json_decref(o);
        } else {
            s_show_text(&ctx, rec, &row, indexed, t);
        }
    }
    mg_tally_destroy(&t);
    mg_record_destroy(&rec);
    mg_node_close(&ctx);
    return rc == MG_OK ? 0 : mg_cli_fail("event show", rc, &why);
}

static int s_event_retention(int argc, char **argv, const char *dir)
{
    const char *days_text = NULL;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage event retention [JOURS] [--json]\n\n"
                   "Durée pendant laquelle les événements terminés restent dans les index\n"
                   "locaux (listes, recherche, export) : %d jours par défaut. Au-delà, ils\n"
                   "ne sont plus listés sur ce nœud, mais leurs fiches restent dans la base\n"
                   "et continuent d'être répliquées tant que leur organisateur ne les\n"
                   "supprime pas. Changer la durée reconstruit les index.\n",
                   MG_EVENT_RETENTION_DEFAULT_DAYS);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (!days_text && argv[i][0] != '-') {
            days_text = argv[i];
        } else {
            return mg_cli_unknown("event retention", argv[i]);
        }
    }
    mg_node_ctx_t ctx;
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_node_open(&ctx, dir, &why);
    if (rc == MG_OK && days_text) {
        char *end = NULL;
        long long d = strtoll(days_text, &end, 10);
        if (!end || *end || end == days_text)
            rc = mg_why_set(&why, MG_ERR_ARG, "« %s » n'est pas un nombre de "
                            "jours", days_text);
        else
            rc = mg_store_event_set_retention(ctx.store, d, &why);
    }
    int64_t days = 0;
    if (rc == MG_OK)
        rc = mg_store_event_retention(ctx.store, &days);
    if (rc == MG_OK && days_text)
        rc = mg_store_events_purge(ctx.store, 0, NULL, &why);
    if (rc == MG_OK) {
        if (json) {
            json_t *j = json_pack("{s:I}", "jours", (json_int_t) days);
            s_print_json(j);
            json_decref(j);
        } else {
            printf("Les événements terminés restent listés %" PRId64
                   " jours sur ce nœud.\n", days);
        }
    }
    mg_node_close(&ctx);
    return rc == MG_OK ? 0 : mg_cli_fail("event retention", rc, &why);
}

int mg_cmd_event(int argc, char **argv, const char *dir)
{
    if (argc < 2 || mg_cli_is_help(argv[1])) {
        fputs(s_event_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "add") == 0)
        return s_event_add(argc, argv, dir);
    if (strcmp(sub, "update") == 0)
        return s_event_update(argc, argv, dir);
    if (strcmp(sub, "cancel") == 0 || strcmp(sub, "annuler") == 0)
        return s_event_cancel(argc, argv, dir);
    if (strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0)
        return s_event_rm(argc, argv, dir);
    if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
        return s_event_list(argc, argv, dir);
    if (strcmp(sub, "show") == 0)
        return s_event_show(argc, argv, dir);
    if (strcmp(sub, "retention") == 0)
        return s_event_retention(argc, argv, dir);
    mg_errorf("maillage : sous-commande inconnue : event %s\n%s", sub,
              s_event_usage);
    return 2;
}

/* ------------------------------------------------------------------ */
/* rsvp                                                                 */

/* This node's reply in the tally, or NULL. */
static const mg_reply_t *s_my_reply(const mg_tally_t *t, const uint8_t *me)
{
    for (size_t i = 0; t && i < t->count; i++)
        if (memcmp(t->replies[i].author, me, MG_KEY_BYTES) == 0)
            return &t->replies[i];
    return NULL;
}

int mg_cmd_rsvp(int argc, char **argv, const char *dir)
{
    const char *id = NULL, *answer = NULL, *seats_text = NULL,
               *comment = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (mg_cli_is_help(a)) {
            printf("Usage : maillage rsvp ID --yes|--no|--maybe [--seats N] [--comment TEXTE] [--json]\n\n"
                   "Répond à un événement au nom de votre structure (réponse signée par ce\n"
                   "nœud). Une nouvelle réponse remplace la précédente ; changer de réponse\n"
                   "vous remet en fin de file si l'événement est complet. --seats : nombre\n"
                   "de places (1 par défaut). Impossible pour un événement annulé ou passé.\n");
            return 0;
        } else if (s_is(a, "--yes", "--oui")) {
            answer = answer ? "" : MG_RSVP_YES;
        } else if (s_is(a, "--no", "--non")) {
            answer = answer ? "" : MG_RSVP_NO;
        } else if (s_is(a, "--maybe", "--peut-etre")) {
            answer = answer ? "" : MG_RSVP_MAYBE;
        } else if (s_is(a, "--seats", "--places")) {
            if (!(seats_text = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (s_is(a, "--comment", "--commentaire")) {
            if (!(comment = mg_cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (!id && a[0] != '-') {
            id = a;
        } else {
            return mg_cli_unknown("rsvp", a);
        }
    }
    if (!id || !answer || !*answer) {
        mg_errorf("maillage : %s : maillage rsvp ID --yes|--no|--maybe\n",
                  !id ? "indiquez l'événement" : "choisissez une seule réponse");
        return 2;
    }
    long seats = 1;
    if (seats_text) {
        char *end = NULL;
        seats = strtol(seats_text, &end, 10);
        if (!end || *end || end == seats_text || seats < 1
            || seats > MG_SEATS_MAX) {
            mg_errorf("maillage : --seats : un nombre de places de 1 à %d\n",
                      MG_SEATS_MAX);
            return 2;
        }
        if (strcmp(answer, MG_RSVP_NO) == 0) {
            mg_errorf("maillage : --seats va avec --yes ou --maybe\n");
            return 2;
        }
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "rsvp");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    mg_record_t *event = NULL;
    mg_tally_t *before = NULL, *after = NULL;
    mg_body_t *body = NULL;
    char rid[MG_RSVP_RID_LEN + 1] = "";
    int rc = s_resolve_event(&ctx, id, false, &event, &why);
    const mg_body_t *eb = event ? mg_record_body(event) : NULL;
    const char *title = eb ? mg_body_str(eb, "titre") : NULL;
    int64_t end = 0;
    if (rc == MG_OK) {
        mg_time_parse_utc(mg_body_str(eb, "fin"), &end);
        if (mg_body_find(eb, "annule_le") >= 0) {
            const char *motif = mg_body_str(eb, "motif_annulation");
            rc = mg_why_set(&why, MG_ERR_FORBIDDEN,
                            "l'événement « %s » a été annulé par son "
                            "organisateur%s%s%s : on ne peut plus y répondre",
                            title, motif ? " (" : "", motif ? motif : "",
                            motif ? ")" : "");
        } else if (end <= mg_now_ms()) {
            char when[40];
            s_fmt_short(end, when);
            rc = mg_why_set(&why, MG_ERR_FORBIDDEN,
                            "l'événement « %s » est terminé (le %s) : on ne "
                            "peut plus y répondre",
                            title, when);
        } else if (memcmp(mg_record_author(event), ctx.id.pk, MG_KEY_BYTES)
                   == 0) {
            rc = mg_why_set(&why, MG_ERR_FORBIDDEN,
                            "vous organisez « %s » : les réponses viennent des "
                            "invités (voir maillage event show %s)",
                            title, mg_record_rid(event));
        }
    }
    if (rc == MG_OK)
        rc = mg_store_event_tally(ctx.store, mg_record_author(event),
                                  mg_record_rid(event), &before, &why);
    char author_hex[65];
    if (rc == MG_OK) {
        mg_hex_encode(mg_record_author(event), MG_KEY_BYTES, author_hex);
        mg_rsvp_rid(mg_record_author(event), mg_record_rid(event), rid);
        body = mg_body_new();
        if (!body)
            rc = MG_ERR_NOMEM;
    }
    if (rc == MG_OK) {
        rc = mg_body_set_str(body, "evenement_auteur", author_hex);
        if (rc == MG_OK)
            rc = mg_body_set_str(body, "evenement_id", mg_record_rid(event));
        if (rc == MG_OK)
            rc = mg_body_set_str(body, "reponse", answer);
        if (rc == MG_OK && strcmp(answer, MG_RSVP_NO) != 0)
            rc = mg_body_set_num(body, "places", (double) seats);
        if (rc == MG_OK && comment && *comment)
            rc = mg_body_set_str(body, "commentaire", comment);
    }
    /* The same reply again signs nothing: a new version would only lose
       its place in the queue. */
    const mg_reply_t *mine = rc == MG_OK ? s_my_reply(before, ctx.id.pk) : NULL;
    bool unchanged = false;
    if (mine) {
        mg_record_t *old = NULL;
        if (mg_store_get(ctx.store, ctx.id.pk, rid, &old, NULL) == MG_OK
            && !mg_record_deleted(old))
            unchanged = mg_body_equal(mg_record_body(old), body);
        mg_record_destroy(&old);
    }
    if (rc == MG_OK && !unchanged)
        rc = mg_node_author(&ctx, "rsvp", rid, false, body, &why);
    if (rc == MG_OK)
        rc = mg_store_event_tally(ctx.store, mg_record_author(event),
                                  mg_record_rid(event), &after, &why);
    if (rc == MG_OK) {
        const mg_reply_t *r = s_my_reply(after, ctx.id.pk);
        if (json) {
            json_t *j = json_pack("{s:s,s:s,s:s,s:b}", "id", rid, "evenement",
                                  mg_record_rid(event), "reponse", answer,
                                  "inchangee", unchanged);
            if (r) {
                json_object_set_new(j, "places", json_integer(r->seats));
                json_object_set_new(j, "statut",
                                    json_string(s_status_name(r->status)));
                if (r->position)
                    json_object_set_new(j, "position",
                                        json_integer(r->position));
            }
            s_print_json(j);
            json_decref(j);
        } else {
            printf("%s « %s » : %s", unchanged ? "Réponse inchangée à"
                                               : "Réponse enregistrée à",
                   title, answer);
            if (r && r->status == MG_REPLY_CONFIRMED)
                printf(", %" PRId64 " place%s confirmée%s", r->seats,
                       r->seats > 1 ? "s" : "", r->seats > 1 ? "s" : "");
            else if (r && r->status == MG_REPLY_WAITING)
                printf(", %" PRId64 " place%s : liste d'attente, position %"
                       PRId64, r->seats, r->seats > 1 ? "s" : "", r->position);
            printf(".\n");
            if (!unchanged)
                printf("Elle parviendra à l'organisateur à la prochaine "
                       "synchronisation de votre nœud.\n");
        }
    } else {
        prc = mg_cli_fail("réponse refusée", rc, &why);
    }
    mg_body_destroy(&body);
    mg_tally_destroy(&before);
    mg_tally_destroy(&after);
    mg_record_destroy(&event);
    mg_node_close(&ctx);
    return prc;
}

/* ------------------------------------------------------------------ */
/* notes                                                                */

static const char *const s_note_usage =
    "Usage :\n"
    "  maillage note add --title T [--tags a,b] [--services S] [--licence L]\n"
    "                    [--file FICHIER | --text TEXTE | < entrée standard] [--json]\n"
    "  maillage note update ID [--title T] [--tags a,b] [--services S] [--licence L]\n"
    "                    [--file FICHIER | --text TEXTE | --stdin] [--unset tags|services]\n"
    "  maillage note rm ID [--json]\n"
    "  maillage note list [--tag T] [--author A] [--service S] [--mine] [--json]\n"
    "  maillage note show ID [--json]\n"
    "  maillage note search MOTS... [--limit N] [--tag T] [--author A] [--json]\n\n"
    "Une note partage une pratique qui a marché (« atelier smartphone pour seniors\n"
    "en 5 séances ») avec tout le réseau. La recherche ignore majuscules et accents\n"
    "(« demarches » trouve « démarches »), accepte les débuts de mots, et classe\n"
    "les notes par pertinence (titre d'abord).\n"
    "Licence par défaut : " S_NOTE_LICENCE_DEFAULT ". Texte : %d octets au plus.\n";

static void s_note_help(FILE *out)
{
    fprintf(out, s_note_usage, MG_NOTE_TEXT_MAX);
}

/* Reads a whole file ("-": standard input), at most MG_NOTE_TEXT_MAX
   bytes of UTF-8. Caller frees *out. */
static int s_read_text(const char *path, char **out, mg_why_t *why)
{
    *out = NULL;
    bool std = strcmp(path, "-") == 0;
    FILE *f = std ? stdin : fopen(path, "rb");
    if (!f)
        return mg_why_set(why, MG_ERR_IO, "lecture de %s impossible : %s",
                          path, strerror(errno));
    if (std && isatty(STDIN_FILENO))
        mg_errorf("Tapez le texte de la note, puis Ctrl-D :\n");
    size_t cap = MG_NOTE_TEXT_MAX + 2;
    char *buf = malloc(cap);
    if (!buf) {
        if (!std)
            fclose(f);
        return MG_ERR_NOMEM;
    }
    size_t len = fread(buf, 1, cap - 1, f);
    bool err = ferror(f);
    if (!std)
        fclose(f);
    if (err) {
        free(buf);
        return mg_why_set(why, MG_ERR_IO, "lecture de %s impossible", path);
    }
    if (len > MG_NOTE_TEXT_MAX) {
        free(buf);
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "texte trop long (plus de %d octets) : résumez-le ou "
                          "découpez-le en plusieurs notes",
                          MG_NOTE_TEXT_MAX);
    }
    buf[len] = '\0';
    if (!mg_utf8_valid(buf, len)) {
        free(buf);
        return mg_why_set(why, MG_ERR_UTF8,
                          "%s n'est pas du texte UTF-8 (enregistrez-le en "
                          "UTF-8)",
                          std ? "l'entrée standard" : path);
    }
    *out = buf;
    return MG_OK;
}

/* Sets the body's texte: trailing blank lines trimmed, cut into pieces of
   at most S_TEXT_PIECE bytes (at a line end when possible, never inside
   a UTF-8 sequence) when longer than one body string may be. */
static int s_set_text(mg_body_t *body, char *text, mg_why_t *why)
{
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'
                       || text[len - 1] == ' ' || text[len - 1] == '\t'))
        text[--len] = '\0';
    if (len == 0)
        return mg_why_set(why, MG_ERR_SCHEMA, "le texte de la note est vide");
    if (len <= S_TEXT_PIECE)
        return mg_body_set_str(body, "texte", text);
    size_t cap = len / (S_TEXT_PIECE / 2) + 2, n = 0;
    char **pieces = calloc(cap, sizeof *pieces);
    if (!pieces)
        return MG_ERR_NOMEM;
    int rc = MG_OK;
    for (size_t at = 0; at < len && rc == MG_OK;) {
        size_t cut = len - at <= S_TEXT_PIECE ? len : at + S_TEXT_PIECE;
        if (cut < len) {
            size_t nl = cut;
            while (nl > at + S_TEXT_PIECE / 2 && text[nl - 1] != '\n')
                nl--;
            if (text[nl - 1] == '\n')
                cut = nl;
            while (cut > at && ((unsigned char) text[cut] & 0xC0) == 0x80)
                cut--;
        }
        if (n == cap || !(pieces[n] = strndup(text + at, cut - at)))
            rc = MG_ERR_NOMEM;
        else
            n++;
        at = cut;
    }
    if (rc == MG_OK)
        rc = mg_body_set_list(body, "texte", (const char *const *) pieces, n);
    s_strv_free(pieces, (long) n);
    return rc;
}

typedef struct {
    const char *file;   /* --file, "-" for --stdin */
    const char *text;   /* --text */
    bool json;
    int changes;
} s_note_opts_t;

static int s_note_options(const char *cmd, int argc, char **argv, int first,
                          mg_body_t *body, s_note_opts_t *o, bool update)
{
    mg_why_t why;
    mg_why_clear(&why);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        int rc = MG_OK;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "--stdin") == 0) {
            o->file = "-";
            o->changes++;
            continue;
        }
        if (update && strcmp(a, "--unset") == 0) {
            const char *name = mg_cli_value(argc, argv, &i);
            if (!name)
                return 2;
            if (strcmp(name, "tags") != 0 && strcmp(name, "services") != 0
                && strcmp(name, "licence") != 0) {
                mg_errorf("maillage : --unset : tags, services ou "
                          "licence\n");
                return 2;
            }
            mg_body_remove(body, name);
            o->changes++;
            continue;
        }
        const char *v = NULL;
        if (s_is(a, "--title", "--titre") || s_is(a, "--tags", "--tag")
            || s_is(a, "--services", "--service") || s_is(a, "--licence", "--license")
            || s_is(a, "--file", "--fichier") || s_is(a, "--text", "--texte")) {
            if (!(v = mg_cli_value(argc, argv, &i)))
                return 2;
        } else {
            return mg_cli_unknown(cmd, a);
        }
        o->changes++;
        if (s_is(a, "--title", "--titre")) {
            rc = mg_body_set_str(body, "titre", v);
        } else if (s_is(a, "--tags", "--tag")) {
            char **tags = NULL;
            long n = s_split(v, ",", &tags);
            if (n < 0)
                rc = MG_ERR_NOMEM;
            else if (n == 0)
                rc = mg_why_set(&why, MG_ERR_SCHEMA, "--tags : aucun mot-clé");
            else
                rc = mg_body_set_list(body, "tags", (const char *const *) tags,
                                      (size_t) n);
            s_strv_free(tags, n);
        } else if (s_is(a, "--services", "--service")) {
            rc = s_set_enum(body, "services", v, &why);
        } else if (s_is(a, "--licence", "--license")) {
            rc = mg_body_set_str(body, "licence", v);
        } else if (s_is(a, "--file", "--fichier")) {
            o->file = v;
        } else {
            o->text = v;
        }
        if (rc != MG_OK) {
            mg_cli_fail("valeur refusée", rc, &why);
            return 1;
        }
    }
    if (o->file && o->text) {
        mg_errorf("maillage : --file/--stdin et --text s'excluent\n");
        return 2;
    }
    return 0;
}

/* Reads the text the options point at (or stdin when `stdin_default`)
   into the body. */
static int s_note_text_in(mg_body_t *body, const s_note_opts_t *o,
                          bool stdin_default, mg_why_t *why)
{
    const char *file = o->file ? o->file : (!o->text && stdin_default) ? "-"
                                                                       : NULL;
    if (o->text) {
        char *copy = strdup(o->text);
        if (!copy)
            return MG_ERR_NOMEM;
        int rc = s_set_text(body, copy, why);
        free(copy);
        return rc;
    }
    if (!file)
        return MG_OK;
    char *text = NULL;
    int rc = s_read_text(file, &text, why);
    if (rc == MG_OK)
        rc = s_set_text(body, text, why);
    free(text);
    return rc;
}

static int s_note_add(int argc, char **argv, const char *dir)
{
    for (int i = 2; i < argc; i++)
        if (mg_cli_is_help(argv[i])) {
            s_note_help(stdout);
            return 0;
        }
    mg_body_t *body = mg_body_new();
    s_note_opts_t o = {0};
    int prc = body ? s_note_options("note add", argc, argv, 2, body, &o, false)
                   : 1;
    if (prc == 0 && !mg_body_str(body, "titre")) {
        mg_errorf("maillage : indiquez le titre : --title \"Atelier ...\"\n");
        prc = 2;
    }
    if (prc) {
        mg_body_destroy(&body);
        return prc;
    }
    mg_node_ctx_t ctx;
    prc = s_open(&ctx, dir, "note add");
    if (prc) {
        mg_body_destroy(&body);
        return prc;
    }
    mg_why_t why;
    mg_why_clear(&why);
    int rc = s_note_text_in(body, &o, true, &why);
    if (rc == MG_OK && !mg_body_str(body, "licence"))
        rc = mg_body_set_str(body, "licence", S_NOTE_LICENCE_DEFAULT);
    char rid[17];
    mg_new_rid(rid);
    if (rc == MG_OK)
        rc = mg_node_author(&ctx, "note", rid, false, body, &why);
    if (rc == MG_OK) {
        if (o.json) {
            json_t *j = json_pack("{s:s}", "id", rid);
            s_print_json(j);
            json_decref(j);
        } else {
            printf("Note ajoutée : %s\n", rid);
        }
    } else {
        prc = mg_cli_fail("note refusée", rc, &why);
    }
    mg_body_destroy(&body);
    mg_node_close(&ctx);
    return prc;
}

static int s_resolve_note(mg_node_ctx_t *ctx, const char *prefix, bool mine,
                          mg_record_t **out, mg_why_t *why)
{
    uint8_t author[MG_KEY_BYTES];
    char rid[MG_RID_MAX + 1];
    int rc = mg_store_resolve(ctx->store, "note", prefix,
                              mine ? ctx->id.pk : NULL, author, rid, why);
    if (rc == MG_ERR_NOT_FOUND && mine
        && mg_store_resolve(ctx->store, "note", prefix, NULL, author, rid,
                            NULL) == MG_OK)
        return mg_why_set(why, MG_ERR_FORBIDDEN,
                          "la note %s appartient à une autre structure : "
                          "seule son autrice peut la modifier",
                          rid);
    if (rc != MG_OK)
        return rc;
    return mg_store_get(ctx->store, author, rid, out, why);
}

static int s_note_update(int argc, char **argv, const char *dir, bool remove)
{
    const char *cmd = remove ? "note rm" : "note update";
    if (argc < 3 || mg_cli_is_help(argv[2])) {
        s_note_help(stdout);
        return argc < 3 ? 2 : 0;
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, cmd);
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    mg_record_t *rec = NULL;
    int rc = s_resolve_note(&ctx, argv[2], true, &rec, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail(cmd, rc, &why);
    }
    if (remove) {
        bool json = argc == 4 && strcmp(argv[3], "--json") == 0;
        if (argc > 3 && !json)
            prc = mg_cli_unknown(cmd, argv[3]);
        else if ((rc = mg_node_author(&ctx, "note", mg_record_rid(rec), true,
                                      NULL, &why)) != MG_OK)
            prc = mg_cli_fail(cmd, rc, &why);
        else if (json) {
            json_t *j = json_pack("{s:s,s:b}", "id", mg_record_rid(rec),
                                  "supprime", 1);
            s_print_json(j);
            json_decref(j);
        } else {
            printf("Note supprimée : %s\n", mg_record_rid(rec));
        }
    } else {
        mg_body_t *body = mg_body_dup(mg_record_body(rec));
        s_note_opts_t o = {0};
        prc = body ? s_note_options(cmd, argc, argv, 3, body, &o, true) : 1;
        if (prc == 0 && o.changes == 0) {
            mg_errorf("maillage : rien à changer ; voir « maillage note "
                      "--help »\n");
            prc = 2;
        }
        if (prc == 0) {
            rc = s_note_text_in(body, &o, false, &why);
            if (rc == MG_OK)
                rc = mg_node_author(&ctx, "note", mg_record_rid(rec), false,
                                    body, &why);
            if (rc != MG_OK)
                prc = mg_cli_fail("note refusée", rc, &why);
            else if (o.json) {
                json_t *j = json_pack("{s:s}", "id", mg_record_rid(rec));
                s_print_json(j);
                json_decref(j);
            } else {
                printf("Note mise à jour : %s\n", mg_record_rid(rec));
            }
        }
        mg_body_destroy(&body);
    }
    mg_record_destroy(&rec);
    mg_node_close(&ctx);
    return prc;
}

typedef struct {
    mg_store_t *store;
    json_t *array;
    size_t count;
    bool tty;
} s_notes_t;

static void s_print_tags(const mg_body_t *b)
{
    const char *const *tags = NULL;
    size_t n = mg_body_list(b, "tags", &tags);
    for (size_t i = 0; i < n; i++)
        printf("%s#%s", i ? " " : "", tags[i]);
}

static int s_note_line(const mg_record_t *rec, void *arg)
{
    s_notes_t *l = arg;
    l->count++;
    if (l->array) {
        json_array_append_new(l->array, s_note_json(l->store, rec));
        return 0;
    }
    const mg_body_t *b = mg_record_body(rec);
    char id[9], when[40], who[300];
    snprintf(id, sizeof id, "%s", mg_record_rid(rec));
    s_fmt_short(mg_record_created(rec), when);
    when[10] = '\0';
    char *name = mg_author_name(l->store, mg_record_author(rec));
    snprintf(who, sizeof who, "%s", name ? name : "?");
    free(name);
    mg_print_cell(stdout, id, 9);
    mg_print_cell(stdout, when, 11);
    mg_print_cell(stdout, mg_body_str(b, "titre"), 50);
    fputc(' ', stdout);
    mg_print_cell(stdout, who, 28);
    fputc(' ', stdout);
    s_print_tags(b);
    fputc('\n', stdout);
    return 0;
}

/* Parses the note filters; 0 consumed, -1 not a filter, else exit code. */
static int s_note_filter(int argc, char **argv, int *i, const char **tag,
                         const char **author, const char **service,
                         bool *mine)
{
    const char *a = argv[*i];
    const char **slot = NULL;
    if (strcmp(a, "--mine") == 0) {
        *mine = true;
        return 0;
    }
    if (s_is(a, "--tag", "--tags"))
        slot = tag;
    else if (s_is(a, "--author", "--auteur"))
        slot = author;
    else if (s_is(a, "--service", "--services"))
        slot = service;
    else
        return -1;
    const char *v = mg_cli_value(argc, argv, i);
    if (!v)
        return 2;
    *slot = v;
    return 0;
}

static int s_note_query(mg_node_ctx_t *ctx, const char *tag,
                        const char *author, const char *service, bool mine,
                        mg_note_query_t *q, uint8_t key[MG_KEY_BYTES],
                        mg_why_t *why)
{
    memset(q, 0, sizeof *q);
    q->tag = tag;
    q->service = service;
    if (mine)
        q->author = ctx->id.pk;
    if (author) {
        int rc = s_resolve_author(ctx->store, author, key, why);
        if (rc != MG_OK)
            return rc;
        q->author = key;
    }
    return MG_OK;
}

static int s_note_list(int argc, char **argv, const char *dir)
{
    const char *tag = NULL, *author = NULL, *service = NULL;
    bool mine = false, json = false;
    for (int i = 2; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage note list [--tag T] [--author A] [--service S] [--mine] [--json]\n\n"
                   "Les notes de pratiques connues du nœud, les plus récentes d'abord.\n"
                   "--author : nom de la structure (ou une partie) ou début de sa clé.\n");
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
            continue;
        }
        int rc = s_note_filter(argc, argv, &i, &tag, &author, &service, &mine);
        if (rc < 0)
            return mg_cli_unknown("note list", argv[i]);
        if (rc)
            return rc;
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "note list");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    mg_note_query_t q;
    uint8_t key[MG_KEY_BYTES];
    int rc = s_note_query(&ctx, tag, author, service, mine, &q, key, &why);
    s_notes_t l = {.store = ctx.store, .array = json ? json_array() : NULL};
    if (rc == MG_OK && !json) {
        mg_print_cell(stdout, "ID", 9);
        mg_print_cell(stdout, "DATE", 11);
        mg_print_cell(stdout, "TITRE", 51);
        mg_print_cell(stdout, "STRUCTURE", 29);
        printf("TAGS\n");
    }
    if (rc == MG_OK)
        rc = mg_store_notes(ctx.store, &q, s_note_line, &l, &why);
    if (rc == MG_OK) {
        if (json)
            s_print_json(l.array);
        else
            printf("%zu note%s.\n", l.count, l.count > 1 ? "s" : "");
    }
    json_decref(l.array);
    mg_node_close(&ctx);
    return rc == MG_OK ? 0 : mg_cli_fail("note list", rc, &why);
}

static int s_note_show(int argc, char **argv, const char *dir)
{
    const char *id = NULL;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage note show ID [--json]\n");
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (!id && argv[i][0] != '-') {
            id = argv[i];
        } else {
            return mg_cli_unknown("note show", argv[i]);
        }
    }
    if (!id) {
        mg_errorf("maillage : indiquez la note : maillage note show ID\n");
        return 2;
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "note show");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    mg_record_t *rec = NULL;
    int rc = s_resolve_note(&ctx, id, false, &rec, &why);
    if (rc == MG_OK && json) {
        json_t *j = s_note_json(ctx.store, rec);
        s_print_json(j);
        json_decref(j);
    } else if (rc == MG_OK) {
        const mg_body_t *b = mg_record_body(rec);
        char who[300], when[40];
        s_who(ctx.store, mg_record_author(rec), who, sizeof who);
        s_fmt_short(mg_record_created(rec), when);
        printf("%s\n  par %s, le %s (version %" PRIu64 ")\n",
               mg_body_str(b, "titre"), who, when, mg_record_counter(rec));
        if (mg_body_find(b, "tags") >= 0) {
            printf("  ");
            s_print_tags(b);
            printf("\n");
        }
        if (mg_body_find(b, "services") >= 0) {
            printf("  Services : ");
            mg_print_value(stdout, b, "services", " | ");
            printf("\n");
        }
        const char *licence = mg_body_str(b, "licence");
        if (licence)
            printf("  Licence : %s\n", licence);
        char *text = s_note_text(b);
        if (text && *text)
            printf("\n%s\n", text);
        free(text);
    }
    mg_record_destroy(&rec);
    mg_node_close(&ctx);
    return rc == MG_OK ? 0 : mg_cli_fail("note show", rc, &why);
}

static int s_hit(const mg_record_t *note, const char *snippet, double score,
                 void *arg)
{
    s_notes_t *l = arg;
    l->count++;
    if (l->array) {
        json_t *o = s_note_json(l->store, note);
        json_object_set_new(o, "extrait", json_string(snippet));
        json_object_set_new(o, "score", json_real(score));
        json_array_append_new(l->array, o);
        return 0;
    }
    const mg_body_t *b = mg_record_body(note);
    char *name = mg_author_name(l->store, mg_record_author(note));
    printf("%.8s  %s — %s\n", mg_record_rid(note), mg_body_str(b, "titre"),
           name ? name : "?");
    free(name);
    /* One line: the snippet's line breaks become spaces. */
    printf("          ");
    for (const char *p = snippet; *p; p++)
        fputc(*p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p, stdout);
    printf("\n");
    return 0;
}

static int s_note_search(int argc, char **argv, const char *dir)
{
    const char *tag = NULL, *author = NULL, *service = NULL;
    bool mine = false, json = false;
    long limit = 20;
    char words[2048] = "";
    size_t used = 0;
    for (int i = 2; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage note search MOTS... [--limit N] [--tag T] [--author A]\n"
                   "                                   [--service S] [--mine] [--json]\n\n"
                   "Cherche les notes qui contiennent tous ces mots (titre, texte, tags),\n"
                   "sans tenir compte des majuscules ni des accents, débuts de mots compris\n"
                   "(« smartph » trouve « smartphone »). Les plus pertinentes d'abord (bm25,\n"
                   "le titre compte le plus), avec un extrait où les mots sont [marqués].\n");
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
            continue;
        }
        if (strcmp(argv[i], "--limit") == 0) {
            const char *v = mg_cli_value(argc, argv, &i);
            char *end = NULL;
            if (!v)
                return 2;
            limit = strtol(v, &end, 10);
            if (!end || *end || limit < 1 || limit > 1000) {
                mg_errorf("maillage : --limit : de 1 à 1000\n");
                return 2;
            }
            continue;
        }
        int rc = s_note_filter(argc, argv, &i, &tag, &author, &service, &mine);
        if (rc > 0)
            return rc;
        if (rc == 0)
            continue;
        if (argv[i][0] == '-' && argv[i][1] == '-')
            return mg_cli_unknown("note search", argv[i]);
        used += (size_t) snprintf(words + used, sizeof words - used, "%s%s",
                                  used ? " " : "", argv[i]);
        if (used >= sizeof words) {
            mg_errorf("maillage : recherche trop longue\n");
            return 2;
        }
    }
    if (!words[0]) {
        mg_errorf("maillage : indiquez les mots cherchés : maillage note search demarches\n");
        return 2;
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "note search");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    mg_note_query_t q;
    uint8_t key[MG_KEY_BYTES];
    int rc = s_note_query(&ctx, tag, author, service, mine, &q, key, &why);
    bool tty = !json && isatty(STDOUT_FILENO);
    s_notes_t l = {.store = ctx.store, .array = json ? json_array() : NULL,
                   .tty = tty};
    /* JSON consumers get HTML-style marks, ready for the dashboard. */
    const char *open = json ? "<mark>" : tty ? "\033[1m" : "[";
    const char *close = json ? "</mark>" : tty ? "\033[0m" : "]";
    if (rc == MG_OK)
        rc = mg_store_note_search(ctx.store, words, &q, (size_t) limit, open,
                                  close, s_hit, &l, &why);
    if (rc == MG_OK) {
        if (json)
            s_print_json(l.array);
        else if (l.count == 0)
            printf("Aucune note ne contient « %s ».\n", words);
        else
            printf("%zu note%s.\n", l.count, l.count > 1 ? "s" : "");
    }
    json_decref(l.array);
    mg_node_close(&ctx);
    return rc == MG_OK ? 0 : mg_cli_fail("note search", rc, &why);
}

int mg_cmd_note(int argc, char **argv, const char *dir)
{
    if (argc < 2 || mg_cli_is_help(argv[1])) {
        s_note_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "add") == 0)
        return s_note_add(argc, argv, dir);
    if (strcmp(sub, "update") == 0)
        return s_note_update(argc, argv, dir, false);
    if (strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0)
        return s_note_update(argc, argv, dir, true);
    if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
        return s_note_list(argc, argv, dir);
    if (strcmp(sub, "show") == 0)
        return s_note_show(argc, argv, dir);
    if (strcmp(sub, "search") == 0 || strcmp(sub, "cherche") == 0)
        return s_note_search(argc, argv, dir);
    mg_errorf("maillage : sous-commande inconnue : note %s\n", sub);
    s_note_help(stderr);
    return 2;
}

/* ------------------------------------------------------------------ */
/* export --format ics                                                  */

int mg_cmd_export_ics(int argc, char **argv, const char *dir)
{
    mg_event_query_t q = {0};
    const char *output = NULL, *near = NULL, *within = NULL;
    bool mine = false;
    for (int i = 1; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage export --format ics [-o FICHIER] [--upcoming] [--past]\n"
                   "                        [--mine] [--territory CODE] [--service S]\n"
                   "                        [--near CP --within KM] [--search MOTS]\n\n"
                   "Exporte les événements en iCalendar (RFC 5545) pour un agenda :\n"
                   "heure de Paris (VTIMEZONE Europe/Paris), un identifiant stable par\n"
                   "événement (réimporter met à jour au lieu de dupliquer), les événements\n"
                   "annulés marqués STATUS:CANCELLED. Sans -o : sortie standard.\n");
            return 0;
        }
        if (strcmp(argv[i], "--format") == 0) {
            i++; /* "ics", checked by the caller */
            continue;
        }
        if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (!(output = mg_cli_value(argc, argv, &i)))
                return 2;
            continue;
        }
        int rc = s_event_filter(argc, argv, &i, &q, &near, &within, &mine);
        if (rc < 0)
            return mg_cli_unknown("export", argv[i]);
        if (rc)
            return rc;
    }
    if (q.upcoming && q.past) {
        mg_errorf("maillage : --upcoming et --past s'excluent\n");
        return 2;
    }
    mg_node_ctx_t ctx;
    int prc = s_open(&ctx, dir, "export");
    if (prc)
        return prc;
    mg_why_t why;
    mg_why_clear(&why);
    int rc = s_near(ctx.store, near, within, &q, &why);
    if (mine)
        q.mine = ctx.id.pk;
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("export", rc, &why);
    }
    /* A temporary file renamed at the end: never a half-written file. */
    char tmp[4200] = "";
    FILE *out = stdout;
    if (output) {
        snprintf(tmp, sizeof tmp, "%s.tmp-%ld", output, (long) getpid());
        out = fopen(tmp, "wb");
        if (!out) {
            mg_errorf("maillage : impossible d'écrire %s : %s\n", output,
                      strerror(errno));
            mg_node_close(&ctx);
            return 1;
        }
    }
    size_t count = 0;
    rc = mg_ics_export(ctx.store, &q, out, &count, &why);
    if (output) {
        if (fclose(out) != 0 && rc == MG_OK)
            rc = mg_why_set(&why, MG_ERR_IO, "écriture de %s : %s", output,
                            strerror(errno));
        if (rc == MG_OK && rename(tmp, output) != 0)
            rc = mg_why_set(&why, MG_ERR_IO, "écriture de %s : %s", output,
                            strerror(errno));
        if (rc != MG_OK)
            unlink(tmp);
    }
    mg_node_close(&ctx);
    if (rc != MG_OK)
        return mg_cli_fail("export", rc, &why);
    if (output)
        mg_errorf("%zu événement%s exporté%s dans %s\n", count,
                  count > 1 ? "s" : "", count > 1 ? "s" : "", output);
    return 0;
}
