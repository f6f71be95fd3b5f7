/*  test_hours.c - the opening-hours parser (store/mg_hours.c): every
    distinct `horaires` text of the real Charente file with its expected
    reading, the semantics of rules, and what is refused. */
#include <stdlib.h>
#include <string.h>

#include "mg_hours.h"
#include "mg_test.h"

/* Every distinct `horaires` of tests/data/charente-2023-07.json, with the
   week it describes in canonical form. Checked by hand against the OSM
   rules: a later `;` rule replaces the days it names, overlapping ranges
   of one rule are their union, `off` closes. */
static const char *const s_charente[][2] = {
    {"Fr 09:00-12:00", "Fr 09:00-12:00"},
    {"Fr 14:00-17:00", "Fr 14:00-17:00"},
    {"Mo 09:00-12:00", "Mo 09:00-12:00"},
    {"Mo 09:00-12:00,14:00-18:00;Tu 09:00-12:00,09:00-18:00;We 09:00-12:00,14:00-18:00;Th 09:00-12:00,14:00-18:00;Fr 09:00-12:00,14:00-18:00",
     "Mo,We-Fr 09:00-12:00,14:00-18:00; Tu 09:00-18:00"},
    {"Mo 09:00-12:30,13:30-17:30; We 13:30-18:00",
     "Mo 09:00-12:30,13:30-17:30; We 13:30-18:00"},
    {"Mo 09:00-12:30,14:00-16:30;Tu 09:00-12:30,14:00-16:30;We 09:00-12:30,14:00-16:30;Th 09:00-12:30,14:00-16:30;Fr 09:00-12:30,14:00-16:00",
     "Mo-Th 09:00-12:30,14:00-16:30; Fr 09:00-12:30,14:00-16:00"},
    {"Mo 09:00-12:30,14:00-17:00;Tu 09:00-12:30,14:00-17:00;We 09:00-12:30,14:00-17:00;Th 09:00-12:30,14:00-17:00;Fr 09:00-12:30,14:00-17:00",
     "Mo-Fr 09:00-12:30,14:00-17:00"},
    {"Mo 09:00-13:00,14:00-17:00;Tu 09:00-13:00,14:00-17:00;We 09:00-13:00,09:00-13:00;Th 09:00-13:00,14:00-17:00;Fr 09:00-13:00,14:00-17:00",
     "Mo,Tu,Th,Fr 09:00-13:00,14:00-17:00; We 09:00-13:00"},
    {"Mo 09:30-12:30", "Mo 09:30-12:30"},
    {"Mo 13:00-17:30; Tu 08:30-12:30; We 08:30-12:30,13:30-17:30; Th 08:30-12:30,14:00-18:30; Fr 10:00-12:30,13:30-17:00",
     "Mo 13:00-17:30; Tu 08:30-12:30; We 08:30-12:30,13:30-17:30; Th 08:30-12:30,14:00-18:30; Fr 10:00-12:30,13:30-17:00"},
    {"Mo 13:30-17:30;Tu 08:30-12:15,13:30-17:30;We 08:30-12:15,13:30-17:30;Th 08:30-12:15,13:30-17:30;Fr 08:30-12:15,13:30-16:15",
     "Mo 13:30-17:30; Tu-Th 08:30-12:15,13:30-17:30; Fr 08:30-12:15,13:30-16:15"},
    {"Mo 14:00-17:00", "Mo 14:00-17:00"},
    {"Mo,Fr 09:00-12:00,14:00-18:00; Tu,Th 14:00-18:00; We 09:00-12:30,14:00-18:00",
     "Mo,Fr 09:00-12:00,14:00-18:00; Tu,Th 14:00-18:00; We 09:00-12:30,14:00-18:00"},
    {"Mo,Fr 09:00-12:00; Tu 13:00-17:00", "Mo,Fr 09:00-12:00; Tu 13:00-17:00"},
    {"Mo,Tu 08:30-12:00,14:00-17:30; We,Th 08:30-12:00,13:30-17:30; Fr 08:30-12:00,14:00-16:30",
     "Mo,Tu 08:30-12:00,14:00-17:30; We,Th 08:30-12:00,13:30-17:30; Fr 08:30-12:00,14:00-16:30"},
    {"Mo,We 09:00-16:30,13:30-16:30; Tu 09:00-16:30,13:30-18:30; Th 09:00-16:30,13:30-17:00; Fr 09:00-16:30",
     "Mo,We,Fr 09:00-16:30; Tu 09:00-18:30; Th 09:00-17:00"},
    {"Mo-Fr 08:30-12:30,13:30-17:30", "Mo-Fr 08:30-12:30,13:30-17:30"},
    {"Mo-Fr 08:30-12:30; We 08:30-12:30,13:30-17:00",
     "Mo,Tu,Th,Fr 08:30-12:30; We 08:30-12:30,13:30-17:00"},
    {"Mo-Fr 08:45-12:00,13:30-16:15; Tu 09:00-16:15,13:30-16:15",
     "Mo,We-Fr 08:45-12:00,13:30-16:15; Tu 09:00-16:15"},
    {"Mo-Fr 08:45-12:30,13:15-17:15", "Mo-Fr 08:45-12:30,13:15-17:15"},
    {"Mo-Fr 09:00-12:00", "Mo-Fr 09:00-12:00"},
    {"Mo-Fr 09:00-12:00,13:00-17:00", "Mo-Fr 09:00-12:00,13:00-17:00"},
    {"Mo-Fr 09:00-12:00,13:30-16:00; Sa 09:00-12:00",
     "Mo-Fr 09:00-12:00,13:30-16:00; Sa 09:00-12:00"},
    {"Mo-Fr 09:00-12:00,13:30-16:00; Tu 09:00-12:00",
     "Mo,We-Fr 09:00-12:00,13:30-16:00; Tu 09:00-12:00"},
    {"Mo-Fr 09:00-12:00,14:00-16:15; Th 09:00-12:00,14:00-18:00",
     "Mo-We,Fr 09:00-12:00,14:00-16:15; Th 09:00-12:00,14:00-18:00"},
    {"Mo-Fr 09:00-12:00,14:00-17:00", "Mo-Fr 09:00-12:00,14:00-17:00"},
    {"Mo-Fr 09:00-12:00,14:00-18:00", "Mo-Fr 09:00-12:00,14:00-18:00"},
    {"Mo-Fr 09:00-12:15,14:00-16:00; Th 09:00-12:00",
     "Mo-We,Fr 09:00-12:15,14:00-16:00; Th 09:00-12:00"},
    {"Mo-Fr 09:00-12:30,13:15-17:00", "Mo-Fr 09:00-12:30,13:15-17:00"},
    {"Mo-Fr 09:00-12:30,13:30-17:00", "Mo-Fr 09:00-12:30,13:30-17:00"},
    {"Mo-Fr 09:00-12:30,13:30-17:00; We 09:00-12:30,13:00-17:00",
     "Mo,Tu,Th,Fr 09:00-12:30,13:30-17:00; We 09:00-12:30,13:00-17:00"},
    {"Mo-Fr 09:00-12:30,14:00-17:00; Tu,Th 09:00-12:30",
     "Mo,We,Fr 09:00-12:30,14:00-17:00; Tu,Th 09:00-12:30"},
    {"Mo-Fr 09:00-12:30,14:00-17:30", "Mo-Fr 09:00-12:30,14:00-17:30"},
    {"Mo-Fr 10:00-12:00,14:00-17:30", "Mo-Fr 10:00-12:00,14:00-17:30"},
    {"Mo-Fr 14:00-19:00", "Mo-Fr 14:00-19:00"},
    {"Mo-Th 08:00-12:00,14:00-17:00; Fr 08:00-12:00,14:00-16:30",
     "Mo-Th 08:00-12:00,14:00-17:00; Fr 08:00-12:00,14:00-16:30"},
    {"Mo-Th 09:00-12:00,13:30-16:00; Fr 09:00-12:00",
     "Mo-Th 09:00-12:00,13:30-16:00; Fr 09:00-12:00"},
    {"Mo-Th 09:00-12:00,14:00-18:00; Fr 09:00-12:00,14:00-17:00",
     "Mo-Th 09:00-12:00,14:00-18:00; Fr 09:00-12:00,14:00-17:00"},
    {"Mo-Th 09:00-12:00,14:00-18:00; Tu 14:00-18:00; Fr 09:00-12:00,14:00-17:30",
     "Mo,We,Th 09:00-12:00,14:00-18:00; Tu 14:00-18:00; Fr 09:00-12:00,14:00-17:30"},
    {"Mo-Th 09:00-12:30,13:30-16:30; Tu 09:00-12:30,13:30-18:30; Fr 09:00-16:30",
     "Mo,We,Th 09:00-12:30,13:30-16:30; Tu 09:00-12:30,13:30-18:30; Fr 09:00-16:30"},
    {"Mo-Th 09:00-12:30,14:00-18:00; Tu,Fr 14:00-18:00",
     "Mo,We,Th 09:00-12:30,14:00-18:00; Tu,Fr 14:00-18:00"},
    {"Mo-Th 09:30-12:30,13:00-17:00; Fr 09:30-12:30,13:30-17:00",
     "Mo-Th 09:30-12:30,13:00-17:00; Fr 09:30-12:30,13:30-17:00"},
    {"Mo-We 09:00-12:00,13:00-17:00; Th,Fr 13:00-17:00",
     "Mo-We 09:00-12:00,13:00-17:00; Th,Fr 13:00-17:00"},
    {"Th 09:00-12:00", "Th 09:00-12:00"},
    {"Tu 09:00-12:00", "Tu 09:00-12:00"},
    {"Tu,Th 09:00-12:30,13:30-17:30", "Tu,Th 09:00-12:30,13:30-17:30"},
    {"Tu-Fr 09:00-12:00,13:30-16:00; We 10:00-12:00,13:30-16:00; Sa 09:00-12:00",
     "Tu,Th,Fr 09:00-12:00,13:30-16:00; We 10:00-12:00,13:30-16:00; Sa 09:00-12:00"},
    {"Tu-Fr 09:00-12:00,13:30-16:30; Sa 09:00-12:00",
     "Tu-Fr 09:00-12:00,13:30-16:30; Sa 09:00-12:00"},
    {"Tu-Fr 09:00-12:00,14:00-17:00; Mo 09:00-12:00,14:00-16:00",
     "Mo 09:00-12:00,14:00-16:00; Tu-Fr 09:00-12:00,14:00-17:00"},
    {"Tu-Fr 10:00-12:30,15:00-18:00; Sa 10:00-12:30; Th off",
     "Tu,We,Fr 10:00-12:30,15:00-18:00; Sa 10:00-12:30"},
    {"We 09:00-12:00", "We 09:00-12:00"},
    {"We 14:00-17:00", "We 14:00-17:00"},
};
#define S_CHARENTE_COUNT (sizeof s_charente / sizeof s_charente[0])

static char *s_format(const mg_hours_t *h)
{
    size_t n = mg_hours_format(h, NULL, 0);
    char *buf = malloc(n + 1);
    mg_hours_format(h, buf, n + 1);
    return buf;
}

/* Parses `text` and checks its canonical form. */
static void s_expect(const char *text, const char *canonical)
{
    mg_hours_t h;
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_hours_parse(text, &h, &why);
    if (rc != MG_OK)
        fprintf(stderr, "parse failed: %s: %s\n", text, why.text);
    CHECK_RC(rc, MG_OK);
    char *got = s_format(&h);
    CHECK_STR(got, canonical);
    /* The canonical form reads back as the same week. */
    mg_hours_t again;
    CHECK_RC(mg_hours_parse(got, &again, NULL), MG_OK);
    CHECK(again.count == h.count
          && memcmp(again.slots, h.slots, h.count * sizeof h.slots[0]) == 0);
    free(got);
}

static void s_expect_error(const char *text, const char *reason_part)
{
    mg_hours_t h;
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_hours_parse(text, &h, &why);
    CHECK(rc != MG_OK);
    CHECK(h.count == 0);
    if (reason_part && !strstr(why.text, reason_part)) {
        fprintf(stderr, "for « %s » expected « %s » in « %s »\n", text,
                reason_part, why.text);
        CHECK(false);
    }
}

static void test_charente_table(void)
{
    for (size_t i = 0; i < S_CHARENTE_COUNT; i++)
        s_expect(s_charente[i][0], s_charente[i][1]);
}

/* Every distinct `horaires` of the real file is in the table above (so
   the table is the file's full variety, not a sample). The file's
   strings hold no escapes, so a plain scan finds them. */
static void test_charente_file_covered(void)
{
    FILE *f = fopen(MG_TEST_DATA "/charente-2023-07.json", "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t) size + 1);
    CHECK(fread(text, 1, (size_t) size, f) == (size_t) size);
    text[size] = '\0';
    fclose(f);
    size_t found = 0, distinct_seen = 0;
    bool seen[S_CHARENTE_COUNT] = {false};
    const char *key = "\"horaires\": \"";
    for (const char *p = strstr(text, key); p; p = strstr(p, key)) {
        p += strlen(key);
        const char *end = strchr(p, '"');
        CHECK(end != NULL);
        if (!end)
            break;
        size_t n = (size_t) (end - p);
        bool known = false;
        for (size_t i = 0; i < S_CHARENTE_COUNT; i++)
            if (strlen(s_charente[i][0]) == n
                && memcmp(s_charente[i][0], p, n) == 0) {
                known = true;
                if (!seen[i])
                    distinct_seen++;
                seen[i] = true;
            }
        if (!known)
            fprintf(stderr, "horaires not in the table: %.*s\n", (int) n, p);
        CHECK(known);
        found++;
        p = end;
    }
    free(text);
    CHECK(found == 72);            /* 72 lieux give horaires */
    CHECK(distinct_seen == 52);    /* 52 distinct texts */
    CHECK(S_CHARENTE_COUNT == 52);
}

static void test_semantics(void)
{
    mg_hours_t h;
    /* Minutes: Monday 09:00 is 540; Tuesday 00:00 is 1440. */
    CHECK_RC(mg_hours_parse("Mo 09:00-12:00", &h, NULL), MG_OK);
    CHECK(h.count == 1 && h.slots[0].start == 540 && h.slots[0].end == 720);
    CHECK(mg_hours_minutes(&h) == 180);
    CHECK(mg_hours_open_at(&h, 540) && !mg_hours_open_at(&h, 720));

    /* 24/7, with or without PH. */
    s_expect("24/7", "24/7");
    CHECK_RC(mg_hours_parse("24/7; PH off", &h, NULL), MG_OK);
    CHECK(h.ph_off && mg_hours_minutes(&h) == MG_WEEK_MINUTES);
    /* Times without days: every day. */
    s_expect("10:00-18:00", "Mo-Su 10:00-18:00");
    /* Days without times: all day. */
    s_expect("Sa,Su", "Sa,Su 00:00-24:00");
    s_expect("Mo-Fr 08:00-18:00; Sa open", "Mo-Fr 08:00-18:00; Sa 00:00-24:00");
    /* A later ";" rule replaces its days, an additional "," rule adds. */
    s_expect("Mo-Fr 09:00-17:00; We 09:00-12:00",
             "Mo,Tu,Th,Fr 09:00-17:00; We 09:00-12:00");
    s_expect("Mo-Fr 09:00-12:00, We 14:00-17:00",
             "Mo,Tu,Th,Fr 09:00-12:00; We 09:00-12:00,14:00-17:00");
    s_expect("Mo-Fr 09:00-17:00, We off", "Mo,Tu,Th,Fr 09:00-17:00");
    s_expect("Mo-Fr 09:00-17:00; We closed", "Mo,Tu,Th,Fr 09:00-17:00");
    /* Spaces after commas between ranges. */
    s_expect("Mo 09:00-12:00, 14:00-17:00", "Mo 09:00-12:00,14:00-17:00");
    /* Wrapping day range, and past midnight. */
    s_expect("Fr-Mo 10:00-11:00", "Mo,Fr-Su 10:00-11:00");
    s_expect("Fr 22:00-02:00", "Fr 22:00-24:00; Sa 00:00-02:00");
    s_expect("Su 23:00-01:00", "Mo 00:00-01:00; Su 23:00-24:00");
    s_expect("Mo 20:00-24:00", "Mo 20:00-24:00");
    s_expect("Mo 20:00-00:00", "Mo 20:00-24:00");
    /* One-digit hours are unambiguous. */
    s_expect("Tu 9:00-12:00", "Tu 09:00-12:00");
    /* PH: flags only. */
    CHECK_RC(mg_hours_parse("Mo-Fr 09:00-12:00; PH off", &h, NULL), MG_OK);
    CHECK(h.ph_off && !h.ph_open && mg_hours_minutes(&h) == 5 * 180);
    CHECK_RC(mg_hours_parse("Mo-Fr,PH 09:00-12:00", &h, NULL), MG_OK);
    CHECK(h.ph_open && mg_hours_minutes(&h) == 5 * 180);
    CHECK_RC(mg_hours_parse("PH 10:00-12:00", &h, NULL), MG_OK);
    CHECK(h.ph_open && h.count == 0);
    /* Comments are kept aside. */
    CHECK_RC(mg_hours_parse("Mo 09:00-12:00 \"sur rendez-vous\"", &h, NULL), MG_OK);
    CHECK(h.comment && h.count == 1);
    /* A trailing ";" and surrounding blanks change nothing. */
    s_expect("  Mo 09:00-12:00 ; ", "Mo 09:00-12:00");
    /* Overlapping ranges: their union, flagged. */
    CHECK_RC(mg_hours_parse("Tu 09:00-12:00,09:00-18:00", &h, NULL), MG_OK);
    CHECK(h.overlapping && h.count == 1);
    CHECK_RC(mg_hours_parse("Tu 09:00-12:00,14:00-18:00", &h, NULL), MG_OK);
    CHECK(!h.overlapping);
    /* Closed all week. */
    s_expect("Mo-Su off", "off");
}

static void test_intersect(void)
{
    mg_hours_t a, b, c;
    char buf[256];
    CHECK_RC(mg_hours_parse("Mo-Fr 09:00-12:00,14:00-17:00", &a, NULL), MG_OK);
    CHECK_RC(mg_hours_parse("Mo 08:00-10:00; We 16:00-19:00", &b, NULL), MG_OK);
    mg_hours_intersect(&a, &b, &c);
    mg_hours_format(&c, buf, sizeof buf);
    CHECK_STR(buf, "Mo 09:00-10:00; We 16:00-17:00");
    CHECK(mg_hours_minutes(&c) == 120);
    /* Disjoint. */
    CHECK_RC(mg_hours_parse("Sa 09:00-12:00", &b, NULL), MG_OK);
    mg_hours_intersect(&a, &b, &c);
    CHECK(c.count == 0 && mg_hours_minutes(&c) == 0);
    mg_hours_format(&c, buf, sizeof buf);
    CHECK_STR(buf, "off");
    /* Touching but not overlapping: 12:00 is closed for a. */
    CHECK_RC(mg_hours_parse("Mo 12:00-14:00", &b, NULL), MG_OK);
    mg_hours_intersect(&a, &b, &c);
    CHECK(c.count == 0);
    /* In place. */
    CHECK_RC(mg_hours_parse("Mo 11:00-15:00", &b, NULL), MG_OK);
    mg_hours_intersect(&a, &b, &a);
    mg_hours_format(&a, buf, sizeof buf);
    CHECK_STR(buf, "Mo 11:00-12:00,14:00-15:00");
    /* Across the week's end. */
    CHECK_RC(mg_hours_parse("Su 22:00-03:00", &a, NULL), MG_OK);
    CHECK_RC(mg_hours_parse("Mo 02:00-04:00", &b, NULL), MG_OK);
    mg_hours_intersect(&a, &b, &c);
    mg_hours_format(&c, buf, sizeof buf);
    CHECK_STR(buf, "Mo 02:00-03:00");
    /* Truncated output still NUL-terminated; length is the full need. */
    CHECK_RC(mg_hours_parse("Mo-Fr 09:00-12:00", &a, NULL), MG_OK);
    char small[6];
    size_t need = mg_hours_format(&a, small, sizeof small);
    CHECK(need == strlen("Mo-Fr 09:00-12:00"));
    CHECK_STR(small, "Mo-Fr");
}

static void test_errors(void)
{
    s_expect_error("", "vide");
    s_expect_error("   ", "vide");
    s_expect_error("Lu-Ve 9h-12h", "mot inconnu");
    s_expect_error("Mo-Fr 9h-12h", "HH:MM");
    s_expect_error("Mo 09:00", "« - »");
    s_expect_error("Mo 09:00-", "incomplet");
    s_expect_error("Mo 09:60-10:00", "59");
    s_expect_error("Mo 09:00-25:00", "24:00");
    s_expect_error("Mo 24:00-02:00", "24:00");
    s_expect_error("Mo 10:00-10:00", "vide");
    s_expect_error("Jan-Mar Mo 09:00-12:00", "mois");
    s_expect_error("Mo 09:00-12:00; Dec 25 off", "mois");
    s_expect_error("SH off", "vacances scolaires");
    s_expect_error("week 1-20 Mo 09:00-12:00", "semaine");
    s_expect_error("Mo sunrise-sunset", "solaires");
    s_expect_error("Mo[1] 09:00-12:00", "jours du mois");
    s_expect_error("Mo 18:00+", "fin ouvertes");
    s_expect_error("Mo 09:00-12:00 || \"sur rendez-vous\"", "repli");
    s_expect_error("unknown", "unknown");
    s_expect_error("mo-fr 09:00-12:00", "mot inconnu");
    s_expect_error("Mo-Xx 09:00-12:00", "jour attendu");
    s_expect_error("Mo 09:00-12:00 \"non fermé", "guillemet");
    s_expect_error("24/7 off", "contradictoire");
    s_expect_error("Mo 09:00-12:00 / Tu", "inattendu");
    /* Positions are in characters, from 1. */
    mg_hours_t h;
    mg_why_t why;
    mg_why_clear(&why);
    CHECK(mg_hours_parse("Mo 09:00-12:00; Jé", &h, &why) != MG_OK);
    CHECK(strstr(why.text, "caractère 17") != NULL);
    /* Too long, too many slots. */
    char *big = malloc(MG_HOURS_TEXT_MAX + 2);
    memset(big, ' ', MG_HOURS_TEXT_MAX + 1);
    big[MG_HOURS_TEXT_MAX + 1] = '\0';
    CHECK_RC(mg_hours_parse(big, &h, NULL), MG_ERR_TOO_LARGE);
    free(big);
    char many[1024] = "Mo-Su ";
    for (int i = 0; i < 12; i++) {
        char r[16];
        snprintf(r, sizeof r, "%s%02d:00-%02d:30", i ? "," : "", i * 2, i * 2);
        strcat(many, r);
    }
    /* 12 ranges x 7 days = 84 slots > MG_HOURS_MAX_SLOTS. */
    CHECK_RC(mg_hours_parse(many, &h, NULL), MG_ERR_TOO_LARGE);
    CHECK_RC(mg_hours_parse(NULL, &h, NULL), MG_ERR_ARG);
}

int main(void)
{
    test_charente_table();
    test_charente_file_covered();
    test_semantics();
    test_intersect();
    test_errors();
    return mg_test_done("test_hours");
}
