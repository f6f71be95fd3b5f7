/*  mg_ics.c - events as an RFC 5545 iCalendar file. */
#include "mg_ics.h"

#include <inttypes.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mg_event.h"
#include "mg_text.h"

#define S_PRODID "-//maillage//maillage 0.1.0//FR"

void mg_ics_line(FILE *out, const char *line)
{
    size_t len = strlen(line), at = 0;
    /* The first line holds 75 octets; each continuation line a space and
       74 more. A cut never falls on a UTF-8 continuation byte
       (10xxxxxx): the sequence moves whole to the next line. */
    size_t room = MG_ICS_LINE_MAX;
    while (len - at > room) {
        size_t cut = at + room;
        while (cut > at && ((unsigned char) line[cut] & 0xC0) == 0x80)
            cut--;
        if (cut == at) /* cannot happen with valid UTF-8 (4-byte max) */
            cut = at + room;
        fwrite(line + at, 1, cut - at, out);
        fputs("\r\n ", out);
        at = cut;
        room = MG_ICS_LINE_MAX - 1;
    }
    fwrite(line + at, 1, len - at, out);
    fputs("\r\n", out);
}

char *mg_ics_escape(const char *text)
{
    if (!text)
        text = "";
    size_t len = strlen(text);
    char *out = malloc(2 * len + 1);
    if (!out)
        return NULL;
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text[i];
        if (c == '\\' || c == ';' || c == ',') {
            out[w++] = '\\';
            out[w++] = (char) c;
        } else if (c == '\r' || c == '\n') {
            out[w++] = '\\';
            out[w++] = 'n';
            if (c == '\r' && text[i + 1] == '\n')
                i++;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            /* TEXT allows no other control character. */
        } else {
            out[w++] = (char) c;
        }
    }
    out[w] = '\0';
    return out;
}

/* The Europe/Paris rule of mg_paris_offset, as calendars read it: CEST
   from the last Sunday of March 02:00 local (01:00 UTC) to the last
   Sunday of October 03:00 local (01:00 UTC). DTSTART 1970 makes the
   rule hold for every date the project accepts. */
static const char *const s_vtimezone[] = {
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Paris",
    "X-LIC-LOCATION:Europe/Paris",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
    NULL,
};

/* "NAME;TZID=Europe/Paris:20260312T140000", or "NAME:20261025T013000Z"
   when the local time occurs twice and TZID would mean the other one. */
static void s_date_line(FILE *out, const char *name, int64_t ms)
{
    mg_civil_t local;
    mg_paris_local(ms, &local);
    int64_t back = 0;
    char line[96];
    if (mg_paris_to_utc(&local, &back, NULL) == MG_OK && back == ms) {
        snprintf(line, sizeof line,
                 "%s;TZID=Europe/Paris:%04d%02d%02dT%02d%02d%02d", name,
                 local.year % 10000, local.month % 100, local.day % 100,
                 local.hour % 100, local.minute % 100, local.second % 100);
    } else {
        mg_civil_t u;
        mg_time_utc(ms, &u);
        snprintf(line, sizeof line, "%s:%04d%02d%02dT%02d%02d%02dZ", name,
                 u.year % 10000, u.month % 100, u.day % 100, u.hour % 100,
                 u.minute % 100, u.second % 100);
    }
    mg_ics_line(out, line);
}

static void s_utc_line(FILE *out, const char *name, int64_t ms)
{
    mg_civil_t u;
    mg_time_utc(ms, &u);
    char line[64];
    snprintf(line, sizeof line, "%s:%04d%02d%02dT%02d%02d%02dZ", name,
             u.year % 10000, u.month % 100, u.day % 100, u.hour % 100,
             u.minute % 100, u.second % 100);
    mg_ics_line(out, line);
}

/* "NAME:" + escaped text; nothing when text is NULL or empty. */
static int s_text_line(FILE *out, const char *name, const char *text)
{
    if (!text || !*text)
        return MG_OK;
    char *esc = mg_ics_escape(text);
    char *line = esc ? malloc(strlen(name) + strlen(esc) + 2) : NULL;
    if (!line) {
        free(esc);
        return MG_ERR_NOMEM;
    }
    sprintf(line, "%s:%s", name, esc);
    mg_ics_line(out, line);
    free(line);
    free(esc);
    return MG_OK;
}

/* A growing text buffer. */
typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} s_buf_t;

static void s_add(s_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
}

typedef struct {
    mg_store_t *store;
    FILE *out;
    size_t count;
    const char *rid;   /* only this event (mg_ics_export_one), or NULL */
} s_ics_t;

/* The structure name and first e-mail of an author, from its profile. */
static void s_author_info(mg_store_t *store, const uint8_t *key, char *name,
                          size_t name_size, char *mail, size_t mail_size)
{
    name[0] = mail[0] = '\0';
    mg_record_t *p = NULL;
    if (mg_store_get(store, key, "profile", &p, NULL) == MG_OK
        && !mg_record_deleted(p)) {
        const mg_body_t *b = mg_record_body(p);
        const char *nom = mg_body_str(b, "nom");
        const char *const *mails = NULL;
        if (nom)
            snprintf(name, name_size, "%s", nom);
        if (mg_body_list(b, "courriels", &mails) > 0)
            snprintf(mail, mail_size, "%s", mails[0]);
    }
    mg_record_destroy(&p);
    if (!name[0]) {
        char hex[65];
        mg_hex_encode(key, MG_KEY_BYTES, hex);
        snprintf(name, name_size, "structure %.12s", hex);
    }
}

/* A quoted parameter value (RFC 5545, 3.2): no DQUOTE, no control. */
static void s_param_value(const char *in, char *out, size_t size)
{
    size_t w = 0;
    for (; *in && w + 1 < size; in++)
        if (*in != '"' && (unsigned char) *in >= 0x20 && *in != 0x7f)
            out[w++] = *in;
    out[w] = '\0';
}

static int s_event(const mg_record_t *event, const mg_event_row_t *row,
                   void *arg)
{
    s_ics_t *ics = arg;
    if (ics->rid && strcmp(mg_record_rid(event), ics->rid) != 0)
        return 0;
    FILE *out = ics->out;
    const mg_body_t *body = mg_record_body(event);
    char hex[65];
    mg_hex_encode(mg_record_author(event), MG_KEY_BYTES, hex);
    char name[256], mail[256];
    s_author_info(ics->store, mg_record_author(event), name, sizeof name,
                  mail, sizeof mail);

    mg_ics_line(out, "BEGIN:VEVENT");
    char line[512];
    snprintf(line, sizeof line, "UID:%s-%s@maillage", hex,
             mg_record_rid(event));
    mg_ics_line(out, line);
    s_utc_line(out, "DTSTAMP", mg_record_created(event));
    s_utc_line(out, "LAST-MODIFIED", mg_record_created(event));
    /* SEQUENCE is a 32-bit integer in RFC 5545; counters only grow. */
    uint64_t seq = mg_record_counter(event);
    snprintf(line, sizeof line, "SEQUENCE:%" PRIu64,
             seq > INT32_MAX ? (uint64_t) INT32_MAX : seq);
    mg_ics_line(out, line);
    s_date_line(out, "DTSTART", row->start_ms);
    s_date_line(out, "DTEND", row->end_ms);

    int rc = MG_OK;
    const char *title = mg_body_str(body, "titre");
    s_buf_t summary = {0};
    if (row->cancelled)
        s_add(&summary, "ANNULÉ : ");
    s_add(&summary, title ? title : "");
    if (summary.failed)
        return MG_ERR_NOMEM;
    rc = s_text_line(out, "SUMMARY", summary.data);
    free(summary.data);

    /* LOCATION: the street address, else the link. */
    const char *adresse = mg_body_str(body, "adresse");
    const char *commune = mg_body_str(body, "commune");
    const char *cp = mg_body_str(body, "code_postal");
    const char *online = mg_body_str(body, "en_ligne");
    s_buf_t where = {0};
    if (adresse && commune && cp) {
        s_add(&where, adresse);
        s_add(&where, ", ");
        s_add(&where, cp);
        s_add(&where, " ");
        s_add(&where, commune);
    } else if (online) {
        s_add(&where, online);
    }
    if (rc == MG_OK && where.data)
        rc = where.failed ? MG_ERR_NOMEM
                          : s_text_line(out, "LOCATION", where.data);
    free(where.data);

    /* DESCRIPTION: what a person needs to decide and register. */
    s_buf_t d = {0};
    const char *desc = mg_body_str(body, "description");
    if (row->cancelled) {
        s_add(&d, "Événement annulé");
        const char *why_text = mg_body_str(body, "motif_annulation");
        if (why_text) {
            s_add(&d, " : ");
            s_add(&d, why_text);
        }
        s_add(&d, ".\n\n");
    }
    if (desc) {
        s_add(&d, desc);
        s_add(&d, "\n\n");
    }
    s_add(&d, "Organisé par : ");
    s_add(&d, name);
    const char *const *partners = NULL;
    size_t np = mg_body_list(body, "partenaires", &partners);
    for (size_t i = 0; i < np; i++) {
        uint8_t key[MG_KEY_BYTES];
        if (mg_hex_decode(partners[i], key, sizeof key) != 0)
            continue;
        char pname[256], pmail[256];
        s_author_info(ics->store, key, pname, sizeof pname, pmail,
                      sizeof pmail);
        s_add(&d, i ? ", " : " avec ");
        s_add(&d, pname);
    }
    const char *reg = mg_body_str(body, "inscription");
    if (reg) {
        s_add(&d, "\nInscription : ");
        s_add(&d, reg);
    }
    if (online) {
        s_add(&d, "\nEn ligne : ");
        s_add(&d, online);
    }
    if (row->capacity > 0) {
        char cap[64];
        snprintf(cap, sizeof cap, "\nPlaces : %" PRId64, row->capacity);
        s_add(&d, cap);
    }
    if (rc == MG_OK)
        rc = d.failed ? MG_ERR_NOMEM : s_text_line(out, "DESCRIPTION", d.data);
    free(d.data);

    /* URL is a URI value, not TEXT: written as is (validated: an http(s)
       URL with no space or control character). */
    if (rc == MG_OK && online) {
        char *url = malloc(strlen(online) + 5);
        if (!url)
            return MG_ERR_NOMEM;
        sprintf(url, "URL:%s", online);
        mg_ics_line(out, url);
        free(url);
    }
    double lat, lon;
    if (mg_body_num(body, "latitude", &lat) == 0
        && mg_body_num(body, "longitude", &lon) == 0) {
        snprintf(line, sizeof line, "GEO:%.6f;%.6f", lat, lon);
        mg_ics_line(out, line);
    }
    /* CATEGORIES: the services, each escaped, comma-separated. */
    const char *const *services = NULL;
    size_t ns = mg_body_list(body, "services", &services);
    if (rc == MG_OK && ns > 0) {
        s_buf_t c = {0};
        s_add(&c, "CATEGORIES:");
        for (size_t i = 0; i < ns; i++) {
            char *esc = mg_ics_escape(services[i]);
            if (!esc) {
                c.failed = true;
                break;
            }
            if (i)
                s_add(&c, ",");
            s_add(&c, esc);
            free(esc);
        }
        if (c.failed)
            rc = MG_ERR_NOMEM;
        else
            mg_ics_line(out, c.data);
        free(c.data);
    }
    if (rc == MG_OK && mail[0] && !strpbrk(mail, " \t\r\n\"")) {
        char cn[256];
        s_param_value(name, cn, sizeof cn);
        char *org = malloc(strlen(cn) + strlen(mail) + 32);
        if (!org)
            return MG_ERR_NOMEM;
        sprintf(org, "ORGANIZER;CN=\"%s\":mailto:%s", cn, mail);
        mg_ics_line(out, org);
        free(org);
    }
    mg_ics_line(out, row->cancelled ? "STATUS:CANCELLED" : "STATUS:CONFIRMED");
    mg_ics_line(out, "END:VEVENT");
    ics->count++;
    if (rc == MG_OK && ferror(out))
        rc = MG_ERR_IO;
    return rc;
}

static int s_export(mg_store_t *store, const mg_event_query_t *query,
                    const char *rid, FILE *out, size_t *count, mg_why_t *why)
{
    if (count)
        *count = 0;
    if (!store || !out)
        return mg_why_set(why, MG_ERR_ARG, "export : argument manquant");
    /* GEO's decimal point, whatever the user's locale. */
    locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t) 0);
    if (!c_locale)
        return mg_why_set(why, MG_ERR_NOMEM, "mémoire insuffisante");
    locale_t old = uselocale(c_locale);

    mg_ics_line(out, "BEGIN:VCALENDAR");
    mg_ics_line(out, "VERSION:2.0");
    mg_ics_line(out, "PRODID:" S_PRODID);
    mg_ics_line(out, "CALSCALE:GREGORIAN");
    mg_ics_line(out, "X-WR-CALNAME:maillage");
    mg_ics_line(out, "X-WR-TIMEZONE:Europe/Paris");
    for (size_t i = 0; s_vtimezone[i]; i++)
        mg_ics_line(out, s_vtimezone[i]);
    s_ics_t ics = {.store = store, .out = out, .rid = rid};
    mg_why_t w;
    mg_why_clear(&w);
    int rc = mg_store_events(store, query, s_event, &ics, &w);
    if (rc == MG_OK) {
        mg_ics_line(out, "END:VCALENDAR");
        if (fflush(out) != 0 || ferror(out))
            rc = MG_ERR_IO;
    }
    uselocale(old);
    freelocale(c_locale);
    if (count)
        *count = ics.count;
    if (rc == MG_ERR_IO)
        return mg_why_set(why, rc, "export : erreur d'écriture (disque plein ?)");
    if (rc != MG_OK)
        return mg_why_set(why, rc, "export : %s",
                          w.text[0] ? w.text : mg_strerror(rc));
    return MG_OK;
}

int mg_ics_export(mg_store_t *store, const mg_event_query_t *query,
                  FILE *out, size_t *count, mg_why_t *why)
{
    return s_export(store, query, NULL, out, count, why);
}

int mg_ics_export_one(mg_store_t *store, const uint8_t author[MG_KEY_BYTES],
                      const char *rid, FILE *out, mg_why_t *why)
{
    mg_event_query_t q = {.author = author};
    size_t count = 0;
    int rc = s_export(store, &q, rid, out, &count, why);
    if (rc == MG_OK && count == 0)
        return mg_why_set(why, MG_ERR_NOT_FOUND,
                          "cet événement n'est plus dans les index (terminé depuis "
                          "plus longtemps que la durée de conservation)");
    return rc;
}
