/*  test_ics.c - the iCalendar export against the rules of RFC 5545, and
    the Europe/Paris clock it writes in.

    The export is checked as a calendar program reads it: physical lines
    end with CRLF and hold at most 75 octets, each one valid UTF-8 on its
    own (no sequence cut in two); continuation lines start with a space;
    unfolded and unescaped, the values give back the titles exactly;
    DTSTART/DTEND carry TZID=Europe/Paris with the local time; the
    VTIMEZONE is there; UIDs are stable; cancelled events say so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mg_event.h"
#include "mg_ics.h"
#include "mg_store.h"
#include "mg_test.h"
#include "mg_text.h"

static char s_root[256];

/* ------------------------------------------------------------------ */
/* Time                                                                 */

static int64_t s_utc(int y, int mo, int d, int h, int mi, int s)
{
    mg_civil_t c = {.year = y, .month = mo, .day = d, .hour = h,
                    .minute = mi, .second = s};
    return mg_time_from_utc(&c);
}

static void test_paris_clock(void)
{
    /* The 2026 changes: Sunday 29 March and Sunday 25 October, 01:00 UTC. */
    CHECK(mg_paris_offset(s_utc(2026, 3, 29, 0, 59, 59)) == 3600);
    CHECK(mg_paris_offset(s_utc(2026, 3, 29, 1, 0, 0)) == 7200);
    CHECK(mg_paris_offset(s_utc(2026, 10, 25, 0, 59, 59)) == 7200);
    CHECK(mg_paris_offset(s_utc(2026, 10, 25, 1, 0, 0)) == 3600);
    /* 2024: 31 March and 27 October. */
    CHECK(mg_paris_offset(s_utc(2024, 3, 31, 0, 30, 0)) == 3600);
    CHECK(mg_paris_offset(s_utc(2024, 3, 31, 1, 30, 0)) == 7200);
    CHECK(mg_paris_offset(s_utc(2024, 10, 27, 0, 30, 0)) == 7200);
    CHECK(mg_paris_offset(s_utc(2024, 10, 27, 1, 30, 0)) == 3600);

    mg_civil_t c;
    mg_paris_local(s_utc(2026, 3, 29, 1, 0, 0), &c);
    CHECK(c.hour == 3 && c.minute == 0 && c.offset_s == 7200 && c.wday == 0);

    /* Local to UTC: the skipped hour does not exist; the repeated hour is
       its first occurrence (summer time), as RFC 5545 says. */
    int64_t ms = 0;
    mg_why_t why;
    mg_civil_t gap = {.year = 2026, .month = 3, .day = 29, .hour = 2,
                      .minute = 30};
    CHECK_RC(mg_paris_to_utc(&gap, &ms, &why), MG_ERR_ARG);
    CHECK(strstr(why.text, "n'existe pas") != NULL);
    mg_civil_t twice = {.year = 2026, .month = 10, .day = 25, .hour = 2,
                        .minute = 30};
    CHECK_RC(mg_paris_to_utc(&twice, &ms, NULL), MG_OK);
    CHECK(ms == s_utc(2026, 10, 25, 0, 30, 0));

    /* What people type. */
    CHECK_RC(mg_time_parse("2026-01-15T14:00", &ms, NULL), MG_OK);
    CHECK(ms == s_utc(2026, 1, 15, 13, 0, 0));
    CHECK_RC(mg_time_parse("2026-07-15 14:00", &ms, NULL), MG_OK);
    CHECK(ms == s_utc(2026, 7, 15, 12, 0, 0));
    CHECK_RC(mg_time_parse("2026-07-15T14:00:30Z", &ms, NULL), MG_OK);
    CHECK(ms == s_utc(2026, 7, 15, 14, 0, 30));
    CHECK_RC(mg_time_parse("2026-07-15T14:00+02:00", &ms, NULL), MG_OK);
    CHECK(ms == s_utc(2026, 7, 15, 12, 0, 0));
    CHECK_RC(mg_time_parse("2026-02-30T14:00", &ms, NULL), MG_ERR_ARG);
    CHECK_RC(mg_time_parse("demain", &ms, NULL), MG_ERR_ARG);
    CHECK_RC(mg_time_parse("2026-07-15T14:00+2", &ms, NULL), MG_ERR_ARG);

    char text[26];
    mg_time_format_utc(s_utc(2026, 7, 15, 12, 0, 0), text);
    CHECK_STR(text, "2026-07-15T12:00:00Z");
    CHECK(mg_time_parse_utc(text, &ms) == 0 && ms == s_utc(2026, 7, 15, 12, 0, 0));
    CHECK(mg_time_parse_utc("2026-07-15T12:00:00", &ms) != 0);
    mg_time_format_paris(s_utc(2026, 1, 15, 13, 0, 0), text);
    CHECK_STR(text, "2026-01-15T14:00:00+01:00");

    /* Against the system's tz database, where installed: every 3 hours
       from 2000 to 2040 and a second either side of every change. */
    if (access("/usr/share/zoneinfo/Europe/Paris", R_OK) == 0) {
        setenv("TZ", "Europe/Paris", 1);
        tzset();
        int mismatches = 0;
        for (int64_t t = s_utc(2000, 1, 1, 0, 0, 0);
             t < s_utc(2040, 1, 1, 0, 0, 0); t += 3 * 3600 * 1000LL) {
            time_t secs = (time_t) (t / 1000);
            struct tm tm;
            localtime_r(&secs, &tm);
            mismatches += tm.tm_gmtoff != mg_paris_offset(t);
        }
        for (int y = 2000; y < 2040; y++)
            for (int m = 3; m <= 10; m += 7)
                for (int d = 25; d <= 31; d++) {
                    int64_t t = s_utc(y, m, d, 1, 0, 0);
                    for (int64_t dt = -1000; dt <= 1000; dt += 2000) {
                        time_t secs = (time_t) ((t + dt) / 1000);
                        struct tm tm;
                        localtime_r(&secs, &tm);
                        mismatches += tm.tm_gmtoff != mg_paris_offset(t + dt);
                    }
                }
        CHECK(mismatches == 0);
        unsetenv("TZ");
        tzset();
    }
}

/* ------------------------------------------------------------------ */
/* Lines                                                                */

static void test_fold_and_escape(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    char line[400];
    memset(line, 'a', 75);
    line[75] = '\0';
    mg_ics_line(f, line); /* exactly 75: not folded */
    memset(line, 'b', 76);
    line[76] = '\0';
    mg_ics_line(f, line); /* 76: 75 + " b" */
    /* A 2-byte character across the 75th octet moves whole. */
    memset(line, 'c', 74);
    strcpy(line + 74, "éz");
    mg_ics_line(f, line);
    fclose(f);
    char expect[1200];
    snprintf(expect, sizeof expect, "%.75s\r\n%.75s\r\n b\r\n%.74s\r\n éz\r\n",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
             "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
    CHECK_STR(buf, expect);
    free(buf);

    char *e = mg_ics_escape("a,b;c\\d\ne\r\nf\rg\x01h\ti");
    CHECK_STR(e, "a\\,b\\;c\\\\d\\ne\\nf\\ng" "h\ti");
    free(e);
}

/* ------------------------------------------------------------------ */
/* The export                                                           */

static mg_identity_t s_id;
static uint64_t s_counter = 0;

static void s_put(mg_store_t *store, const char *rid, const char *title,
                  int64_t start, int64_t end, const char *description,
                  bool cancelled)
{
    mg_body_t *b = mg_body_new();
    char t[21];
    mg_body_set_str(b, "titre", title);
    mg_time_format_utc(start, t);
    mg_body_set_str(b, "debut", t);
    mg_time_format_utc(end, t);
    mg_body_set_str(b, "fin", t);
    mg_body_set_str(b, "adresse", "2, rue de la Paix; bâtiment B");
    mg_body_set_str(b, "commune", "Angoulême");
    mg_body_set_str(b, "code_postal", "16000");
    mg_body_set_str(b, "en_ligne", "https://visio.example.org/salle?a=1,b=2;c");
    if (description)
        mg_body_set_str(b, "description", description);
    const char *services[] = {"Aide aux démarches administratives",
                              "Loisirs et créations numériques"};
    mg_body_set_list(b, "services", services, 2);
    mg_body_set_num(b, "latitude", 45.6484);
    mg_body_set_num(b, "longitude", 0.1562);
    if (cancelled) {
        mg_body_set_str(b, "annule_le", "2026-01-02T10:00:00Z");
        mg_body_set_str(b, "motif_annulation", "Neige, routes fermées");
    }
    mg_record_t *rec = NULL;
    mg_why_t why;
    int rc = mg_record_sign(&s_id, "event", rid, ++s_counter, 1700000000000, false,
                            b, &rec, &why);
    if (rc != MG_OK)
        fprintf(stderr, "sign %s: %s\n", rid, why.text);
    CHECK_RC(rc, MG_OK);
    CHECK_RC(mg_store_apply_record(store, rec, NULL, &why), MG_OK);
    mg_record_destroy(&rec);
    mg_body_destroy(&b);
}

static char *s_export(mg_store_t *store)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    size_t count = 0;
    mg_why_t why;
    CHECK_RC(mg_ics_export(store, NULL, f, &count, &why), MG_OK);
    fclose(f);
    CHECK(count == 5);
    return buf;
}

/* Checks the physical lines; returns the unfolded content lines, one per
   array item (caller frees both). */
static char **s_unfold(const char *ics, size_t *n)
{
    size_t cap = 256;
    char **lines = calloc(cap, sizeof *lines);
    *n = 0;
    const char *p = ics;
    int bad_eol = 0, too_long = 0, bad_utf8 = 0, bad_cont = 0;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) {
            bad_eol++;
            break;
        }
        size_t len = (size_t) (eol - p);
        if (memchr(p, '\n', len) || memchr(p, '\r', len))
            bad_eol++;
        if (len > 75)
            too_long++;
        if (!mg_utf8_valid(p, len))
            bad_utf8++;
        if (*p == ' ' || *p == '\t') {
            /* A continuation: exactly one leading space, and a line
               before it. */
            if (*p != ' ' || *n == 0)
                bad_cont++;
            else {
                size_t old = strlen(lines[*n - 1]);
                lines[*n - 1] = realloc(lines[*n - 1], old + len);
                memcpy(lines[*n - 1] + old, p + 1, len - 1);
                lines[*n - 1][old + len - 1] = '\0';
            }
        } else {
            if (*n == cap)
                lines = realloc(lines, (cap *= 2) * sizeof *lines);
            lines[(*n)++] = strndup(p, len);
        }
        p = eol + 2;
    }
    CHECK(bad_eol == 0);
    CHECK(too_long == 0);
    CHECK(bad_utf8 == 0);
    CHECK(bad_cont == 0);
    return lines;
}

/* The TEXT value after "NAME:" unescaped; NULL when an unescaped ',' or
   ';' or a bad escape shows the value was not escaped right. */
static char *s_unescape(const char *v)
{
    char *out = malloc(strlen(v) + 1), *w = out;
    for (; *v; v++) {
        if (*v == ',' || *v == ';') {
            free(out);
            return NULL;
        }
        if (*v != '\\') {
            *w++ = *v;
            continue;
        }
        v++;
        if (*v == 'n' || *v == 'N')
            *w++ = '\n';
        else if (*v == '\\' || *v == ',' || *v == ';')
            *w++ = *v;
        else {
            free(out);
            return NULL;
        }
    }
    *w = '\0';
    return out;
}

typedef struct {
    char uid[200];
    char summary[2000];
    char description[2000];
    char location[400];
    char dtstart[80];
    char dtend[80];
    char status[40];
    long sequence;
    bool escaped_ok;
} s_vevent_t;

static size_t s_events(char **lines, size_t n, s_vevent_t *ev, size_t max)
{
    size_t k = 0;
    s_vevent_t *cur = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *l = lines[i];
        if (strcmp(l, "BEGIN:VEVENT") == 0 && k < max) {
            cur = &ev[k++];
            memset(cur, 0, sizeof *cur);
            cur->escaped_ok = true;
        } else if (strcmp(l, "END:VEVENT") == 0) {
            cur = NULL;
        } else if (cur) {
            const char *names[] = {"SUMMARY:", "DESCRIPTION:", "LOCATION:"};
            char *slots[] = {cur->summary, cur->description, cur->location};
            size_t sizes[] = {sizeof cur->summary, sizeof cur->description,
                              sizeof cur->location};
            for (int f = 0; f < 3; f++)
                if (strncmp(l, names[f], strlen(names[f])) == 0) {
                    char *u = s_unescape(l + strlen(names[f]));
                    if (!u)
                        cur->escaped_ok = false;
                    else
                        snprintf(slots[f], sizes[f], "%s", u);
                    free(u);
                }
            if (strncmp(l, "UID:", 4) == 0)
                snprintf(cur->uid, sizeof cur->uid, "%s", l + 4);
            if (strncmp(l, "DTSTART", 7) == 0)
                snprintf(cur->dtstart, sizeof cur->dtstart, "%s", l);
            if (strncmp(l, "DTEND", 5) == 0)
                snprintf(cur->dtend, sizeof cur->dtend, "%s", l);
            if (strncmp(l, "STATUS:", 7) == 0)
                snprintf(cur->status, sizeof cur->status, "%s", l + 7);
            if (strncmp(l, "SEQUENCE:", 9) == 0)
                cur->sequence = atol(l + 9);
        }
    }
    return k;
}

static bool s_has_line(char **lines, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(lines[i], want) == 0)
            return true;
    return false;
}

static void s_free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static const s_vevent_t *s_by_uid_suffix(const s_vevent_t *ev, size_t n,
                                         const char *rid)
{
    char suffix[80];
    snprintf(suffix, sizeof suffix, "-%s@maillage", rid);
    for (size_t i = 0; i < n; i++) {
        size_t ul = strlen(ev[i].uid), sl = strlen(suffix);
        if (ul > sl && strcmp(ev[i].uid + ul - sl, suffix) == 0)
            return &ev[i];
    }
    return NULL;
}

static int s_count_event(const mg_record_t *event, const mg_event_row_t *row,
                         void *arg)
{
    (void) event;
    (void) row;
    (*(int *) arg)++;
    return 0;
}

static void test_export(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/ics.db", s_root);
    mg_store_t *store = NULL;
    CHECK_RC(mg_store_open(path, &store, NULL), MG_OK);
    /* Fixed dates, kept indexed whatever day the test runs. */
    CHECK_RC(mg_store_event_set_retention(store, 36500, NULL), MG_OK);
    mg_identity_generate(&s_id);

    const char *tricky = "Atelier « démarches », tarifs; accès \\ réservé";
    /* 200 characters of 1- to 4-byte UTF-8: every fold position lands on
       some sequence. */
    char long_title[1200] = "";
    const char *bits[] = {"é", "a", "€", "📱", "ç", "b"};
    for (int i = 0; i < 200; i++)
        strcat(long_title, bits[i % 6]);
    CHECK(mg_utf8_length(long_title, strlen(long_title)) == 200);

    s_put(store, "hiver", tricky, s_utc(2026, 1, 15, 13, 0, 0),
          s_utc(2026, 1, 15, 16, 0, 0),
          "Ligne 1, avec virgule;\nligne 2 \\ fin", false);
    s_put(store, "ete", long_title, s_utc(2026, 7, 15, 12, 0, 0),
          s_utc(2026, 7, 15, 14, 30, 0), NULL, false);
    /* 02:30 on 25 October 2026 happens twice: first at 00:30 UTC (summer
       time, TZID says it), then at 01:30 UTC (only UTC can say it). */
    s_put(store, "premier", "Première 02:30", s_utc(2026, 10, 25, 0, 30, 0),
          s_utc(2026, 10, 25, 1, 15, 0), NULL, false);
    s_put(store, "second", "Seconde 02:30", s_utc(2026, 10, 25, 1, 30, 0),
          s_utc(2026, 10, 25, 3, 0, 0), NULL, false);
    s_put(store, "annule", "Formation Pix", s_utc(2026, 2, 3, 9, 0, 0),
          s_utc(2026, 2, 3, 11, 0, 0), NULL, true);

    char *ics = s_export(store);
    CHECK(strncmp(ics, "BEGIN:VCALENDAR\r\n", 17) == 0);
    size_t len = strlen(ics);
    CHECK(len > 15 && strcmp(ics + len - 15, "END:VCALENDAR\r\n") == 0);
    size_t n = 0;
    char **lines = s_unfold(ics, &n);
    CHECK(s_has_line(lines, n, "VERSION:2.0"));
    CHECK(s_has_line(lines, n, "BEGIN:VTIMEZONE"));
    CHECK(s_has_line(lines, n, "TZID:Europe/Paris"));
    CHECK(s_has_line(lines, n, "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"));
    CHECK(s_has_line(lines, n, "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"));
    bool prodid = false;
    for (size_t i = 0; i < n; i++)
        prodid |= strncmp(lines[i], "PRODID:", 7) == 0;
    CHECK(prodid);

    s_vevent_t ev[8];
    size_t k = s_events(lines, n, ev, 8);
    CHECK(k == 5);
    for (size_t i = 0; i < k; i++) {
        CHECK(ev[i].escaped_ok);
        CHECK(ev[i].uid[0] != '\0');
    }
    const s_vevent_t *hiver = s_by_uid_suffix(ev, k, "hiver");
    const s_vevent_t *ete = s_by_uid_suffix(ev, k, "ete");
    const s_vevent_t *premier = s_by_uid_suffix(ev, k, "premier");
    const s_vevent_t *second = s_by_uid_suffix(ev, k, "second");
    const s_vevent_t *annule = s_by_uid_suffix(ev, k, "annule");
    CHECK(hiver && ete && premier && second && annule);
    if (hiver && ete && premier && second && annule) {
        CHECK_STR(hiver->summary, tricky);
        CHECK(strstr(hiver->description, "Ligne 1, avec virgule;\nligne 2 \\ fin") != NULL);
        CHECK_STR(hiver->location, "2, rue de la Paix; bâtiment B, 16000 Angoulême");
        CHECK_STR(hiver->dtstart, "DTSTART;TZID=Europe/Paris:20260115T140000");
        CHECK_STR(hiver->dtend, "DTEND;TZID=Europe/Paris:20260115T170000");
        CHECK_STR(ete->summary, long_title);
        CHECK_STR(ete->dtstart, "DTSTART;TZID=Europe/Paris:20260715T140000");
        CHECK_STR(ete->dtend, "DTEND;TZID=Europe/Paris:20260715T163000");
        CHECK_STR(premier->dtstart, "DTSTART;TZID=Europe/Paris:20261025T023000");
        CHECK_STR(second->dtstart, "DTSTART:20261025T013000Z");
        CHECK_STR(second->dtend, "DTEND;TZID=Europe/Paris:20261025T040000");
        CHECK_STR(hiver->status, "CONFIRMED");
        CHECK_STR(annule->status, "CANCELLED");
        CHECK(strncmp(annule->summary, "ANNULÉ : ", strlen("ANNULÉ : ")) == 0);
        CHECK(strstr(annule->description, "Neige, routes fermées") != NULL);
    }
    /* The URL is a URI value: not escaped. */
    CHECK(s_has_line(lines, n, "URL:https://visio.example.org/salle?a=1,b=2;c"));
    CHECK(s_has_line(lines, n, "GEO:45.648400;0.156200"));
    CHECK(s_has_line(lines, n, "CATEGORIES:Aide aux démarches administratives,"
                     "Loisirs et créations numériques"));

    /* Exported again, and after an update: the same UIDs; SEQUENCE grows. */
    char *again = s_export(store);
    CHECK_STR(again, ics);
    free(again);
    long old_seq = hiver ? hiver->sequence : 0;
    char old_uid[200];
    snprintf(old_uid, sizeof old_uid, "%s", hiver ? hiver->uid : "");
    s_put(store, "hiver", "Atelier déplacé", s_utc(2026, 1, 16, 13, 0, 0),
          s_utc(2026, 1, 16, 16, 0, 0), NULL, false);
    char *updated = s_export(store);
    size_t n2 = 0;
    char **lines2 = s_unfold(updated, &n2);
    s_vevent_t ev2[8];
    size_t k2 = s_events(lines2, n2, ev2, 8);
    const s_vevent_t *h2 = s_by_uid_suffix(ev2, k2, "hiver");
    CHECK(k2 == 5 && h2);
    if (h2) {
        CHECK_STR(h2->uid, old_uid);
        CHECK(h2->sequence > old_seq);
        CHECK_STR(h2->summary, "Atelier déplacé");
    }
    s_free_lines(lines2, n2);
    free(updated);
    s_free_lines(lines, n);
    free(ics);

    /* Retention: with 30 days on 1 November 2026, the events of January,
       February and July leave the indexes (with their replies); the
       October ones stay; every record stays. */
    mg_identity_t replier;
    mg_identity_generate(&replier);
    mg_body_t *rb = mg_body_new();
    char hex[65], rrid[MG_RSVP_RID_LEN + 1];
    mg_hex_encode(s_id.pk, 32, hex);
    mg_body_set_str(rb, "evenement_auteur", hex);
    mg_body_set_str(rb, "evenement_id", "ete");
    mg_body_set_str(rb, "reponse", "oui");
    mg_rsvp_rid(s_id.pk, "ete", rrid);
    mg_record_t *reply = NULL;
    CHECK_RC(mg_record_sign(&replier, "rsvp", rrid, 1, 1700000000000, false, rb,
                            &reply, NULL), MG_OK);
    CHECK_RC(mg_store_apply_record(store, reply, NULL, NULL), MG_OK);
    mg_record_destroy(&reply);
    mg_body_destroy(&rb);
    mg_tally_t *t = NULL;
    CHECK_RC(mg_store_event_tally(store, s_id.pk, "ete", &t, NULL), MG_OK);
    CHECK(t && t->count == 1 && t->seats_confirmed == 1);
    mg_tally_destroy(&t);

    CHECK_RC(mg_store_meta_set_int(store, MG_META_EVENT_RETENTION_DAYS, 30, NULL),
             MG_OK);
    int64_t now = s_utc(2026, 11, 1, 0, 0, 0), dropped = 0;
    CHECK_RC(mg_store_events_purge(store, now, &dropped, NULL), MG_OK);
    CHECK(dropped == 3);
    int listed = 0;
    mg_event_query_t q = {.now_ms = now};
    CHECK_RC(mg_store_events(store, &q, s_count_event, &listed, NULL), MG_OK);
    CHECK(listed == 2);
    CHECK_RC(mg_store_event_tally(store, s_id.pk, "ete", &t, NULL), MG_OK);
    CHECK(t && t->count == 0);
    mg_tally_destroy(&t);
    mg_record_t *kept = NULL;
    CHECK_RC(mg_store_get(store, s_id.pk, "ete", &kept, NULL), MG_OK);
    mg_record_destroy(&kept);
    CHECK_RC(mg_store_check(store, NULL), MG_OK);
    mg_store_destroy(&store);
}

int main(void)
{
    snprintf(s_root, sizeof s_root, "/tmp/mg-test-ics-XXXXXX");
    if (!mkdtemp(s_root))
        return 1;
    test_paris_clock();
    test_fold_and_escape();
    test_export();
    int rc = mg_test_done("test_ics");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_root);
    if (rc == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_root);
    return rc;
}
