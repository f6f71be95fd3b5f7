/*  mg_hours.c - the OSM opening_hours subset the standard's data uses.

    The parser works on one bitmap of minutes per weekday (1440 bits) so
    that the rule semantics are exact and simple: a `;` rule replaces the
    days it names, an additional `,` rule adds to them, `off` clears them.
    The bitmaps are turned into week slots at the end. 7 x 1440 bits is
    1.3 KiB on the stack; a text is parsed in one pass.
*/
#include "mg_hours.h"

#include <stdio.h>
#include <string.h>

#define S_WORDS ((1440 + 63) / 64)

typedef struct {
    uint64_t bits[S_WORDS];
} s_day_t;

typedef struct {
    const char *text; /* the whole input */
    const char *p;    /* cursor */
    s_day_t day[7];   /* minutes open on each day, from rules on that day */
    s_day_t spill[7]; /* spill[d]: minutes of day d+1 opened by a range
                         of day d running past midnight */
    mg_hours_t *out;
    mg_why_t *why;
} s_parser_t;

static const char *const s_day_names[7] = {"Mo", "Tu", "We", "Th",
                                           "Fr", "Sa", "Su"};

static void s_set_range(s_day_t *d, int from, int to)
{
    for (int m = from; m < to; m++)
        d->bits[m / 64] |= (uint64_t) 1 << (m % 64);
}

/* 1-based position of the cursor in characters (UTF-8 aware). */
static int s_pos(const s_parser_t *ps)
{
    int n = 1;
    for (const char *q = ps->text; q < ps->p; q++)
        if (((unsigned char) *q & 0xC0) != 0x80)
            n++;
    return n;
}

static int s_error(s_parser_t *ps, const char *reason)
{
    return mg_why_set(ps->why, MG_ERR_SCHEMA,
                      "horaires illisibles au caractère %d : %s", s_pos(ps),
                      reason);
}

static void s_skip_ws(s_parser_t *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t')
        ps->p++;
}

/* Weekday at p: 0..6, or -1. */
static int s_day_at(const char *p)
{
    for (int i = 0; i < 7; i++)
        if (strncmp(p, s_day_names[i], 2) == 0)
            return i;
    return -1;
}

static int s_peek_day(const s_parser_t *ps)
{
    return s_day_at(ps->p);
}

static bool s_peek_word(const s_parser_t *ps, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(ps->p, w, n) != 0)
        return false;
    char c = ps->p[n];
    /* A keyword must end there: "off" but not "offert". */
    return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

static bool s_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Explains a construct of the full syntax this subset does not read. */
static int s_unsupported(s_parser_t *ps)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May",
                                         "Jun", "Jul", "Aug", "Sep", "Oct",
                                         "Nov", "Dec", NULL};
    for (int i = 0; months[i]; i++)
        if (strncmp(ps->p, months[i], 3) == 0)
            return s_error(ps, "les mois et les dates ne sont pas pris en charge "
                               "(seule une semaine type est analysée)");
    if (s_peek_word(ps, "SH"))
        return s_error(ps, "les vacances scolaires (SH) ne sont pas prises en charge");
    if (s_peek_word(ps, "week"))
        return s_error(ps, "les numéros de semaine ne sont pas pris en charge");
    if (strncmp(ps->p, "sunrise", 7) == 0 || strncmp(ps->p, "sunset", 6) == 0
        || strncmp(ps->p, "dawn", 4) == 0 || strncmp(ps->p, "dusk", 4) == 0)
        return s_error(ps, "les heures solaires (sunrise, sunset…) ne sont pas prises en charge");
    if (s_peek_word(ps, "unknown"))
        return s_error(ps, "« unknown » ne dit pas quand le lieu est ouvert");
    if (strncmp(ps->p, "||", 2) == 0)
        return s_error(ps, "les règles de repli « || » ne sont pas prises en charge");
    if (*ps->p == '[')
        return s_error(ps, "les jours du mois (Mo[1]…) ne sont pas pris en charge");
    if (*ps->p == '+')
        return s_error(ps, "les heures de fin ouvertes (« + ») ne sont pas prises en charge");
    if (s_is_digit(*ps->p))
        return s_error(ps, "heure attendue au format HH:MM (ex. 09:00-12:00)");
    if (*ps->p == '\0')
        return s_error(ps, "texte incomplet");
    char c = *ps->p;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return s_error(ps, "mot inconnu (jours : Mo Tu We Th Fr Sa Su ; "
                           "fermeture : off ; jours fériés : PH)");
    return s_error(ps, "caractère inattendu");
}

/* HH:MM (one-digit hours accepted: "9:00" cannot mean anything else).
   Sets *minutes to 0..1440; 24:00 only as 1440. */
static int s_parse_time(s_parser_t *ps, int *minutes)
{
    const char *q = ps->p;
    if (!s_is_digit(q[0]))
        return s_unsupported(ps);
    int h = q[0] - '0';
    q++;
    if (s_is_digit(*q))
        h = h * 10 + (*q++ - '0');
    if (*q != ':' || !s_is_digit(q[1]) || !s_is_digit(q[2]) || s_is_digit(q[3]))
        return s_error(ps, "heure attendue au format HH:MM (ex. 09:00-12:00)");
    int m = (q[1] - '0') * 10 + (q[2] - '0');
    if (m > 59)
        return s_error(ps, "minutes au-delà de 59");
    if (h > 24 || (h == 24 && m != 0))
        return s_error(ps, "heure au-delà de 24:00 (les plages qui passent "
                           "minuit s'écrivent 22:00-02:00)");
    *minutes = h * 60 + m;
    ps->p = q + 3;
    return MG_OK;
}

/* A rule's selector: weekdays and PH. Sets *days (bit i = weekday i) and
   *ph. Leaves the cursor after it. */
static int s_parse_selector(s_parser_t *ps, unsigned *days, bool *ph)
{
    *days = 0;
    *ph = false;
    for (;;) {
        int d = s_peek_day(ps);
        if (d >= 0) {
            ps->p += 2;
            if (*ps->p == '[')
                return s_unsupported(ps);
            if (*ps->p == '-') {
                ps->p++;
                int e = s_peek_day(ps);
                if (e < 0)
                    return s_error(ps, "jour attendu après « - » (Mo Tu We Th Fr Sa Su)");
                ps->p += 2;
                /* Ranges may wrap over the week's end: Fr-Mo. */
                for (int i = d;; i = (i + 1) % 7) {
                    *days |= 1u << i;
                    if (i == e)
                        break;
                }
            } else {
                *days |= 1u << d;
            }
        } else if (s_peek_word(ps, "PH")) {
            ps->p += 2;
            *ph = true;
        } else {
            return s_unsupported(ps);
        }
        if (*ps->p == ',' && (s_day_at(ps->p + 1) >= 0
                              || strncmp(ps->p + 1, "PH", 2) == 0)) {
            ps->p++;
            continue;
        }
        return MG_OK;
    }
}

/* Applies one rule to the day bitmaps. */
static void s_apply(s_parser_t *ps, unsigned days, bool additional,
                    bool off, const int (*ranges)[2], size_t nranges)
{
    for (int d = 0; d < 7; d++) {
        if (!(days & (1u << d)))
            continue;
        if (!additional || off) {
            memset(&ps->day[d], 0, sizeof ps->day[d]);
            memset(&ps->spill[d], 0, sizeof ps->spill[d]);
        }
        if (off)
            continue;
        for (size_t i = 0; i < nranges; i++) {
            int s = ranges[i][0], e = ranges[i][1];
            if (e > s) {
                s_set_range(&ps->day[d], s, e);
            } else {
                s_set_range(&ps->day[d], s, 1440);
                s_set_range(&ps->spill[d], 0, e);
            }
        }
    }
}

/* Whether two ranges of a day share a minute (e <= s runs to 24:00 and
   past midnight; only the part before midnight is compared). */
static bool s_ranges_meet(int s1, int e1, int s2, int e2)
{
    if (e1 <= s1)
        e1 = 1440;
    if (e2 <= s2)
        e2 = 1440;
    return s1 < e2 && s2 < e1;
}

/* One rule, from the cursor. `additional` for a rule after ", ". */
static int s_parse_rule(s_parser_t *ps, bool additional)
{
    unsigned days = 0x7F;
    bool ph = false, has_selector = false;
    int rc;
    int ranges[64][2];
    size_t nranges = 0;
    bool off = false;

    if (strncmp(ps->p, "24/7", 4) == 0) {
        ps->p += 4;
        ranges[nranges][0] = 0;
        ranges[nranges][1] = 1440;
        nranges++;
        s_skip_ws(ps);
        if (s_peek_word(ps, "off") || s_peek_word(ps, "closed"))
            return s_error(ps, "« 24/7 » suivi de « off » : contradictoire");
    } else {
        if (s_peek_day(ps) >= 0 || s_peek_word(ps, "PH")) {
            rc = s_parse_selector(ps, &days, &ph);
            if (rc != MG_OK)
                return rc;
            has_selector = true;
            s_skip_ws(ps);
        } else if (!s_is_digit(*ps->p) && !s_peek_word(ps, "off")
                   && !s_peek_word(ps, "closed") && !s_peek_word(ps, "open")) {
            return s_unsupported(ps);
        }
        if (s_peek_word(ps, "off") || s_peek_word(ps, "closed")) {
            ps->p += *ps->p == 'o' ? 3 : 6;
            off = true;
        } else if (s_peek_word(ps, "open")) {
            ps->p += 4;
            ranges[0][0] = 0;
            ranges[0][1] = 1440;
            nranges = 1;
        } else if (s_is_digit(*ps->p)) {
            for (;;) {
                int s, e;
                if ((rc = s_parse_time(ps, &s)) != MG_OK)
                    return rc;
                if (s == 1440)
                    return s_error(ps, "une plage ne peut pas commencer à 24:00");
                if (*ps->p != '-')
                    return *ps->p == '+' ? s_unsupported(ps)
                                         : s_error(ps, "« - » attendu entre le début et la fin de la plage");
                ps->p++;
                if ((rc = s_parse_time(ps, &e)) != MG_OK)
                    return rc;
                if (e == s)
                    return s_error(ps, "plage horaire vide (début = fin)");
                if (e == 0)
                    e = 1440; /* 22:00-00:00 ends at midnight */
                if (*ps->p == '+' || *ps->p == '/')
                    return s_unsupported(ps);
                if (nranges == sizeof ranges / sizeof ranges[0])
                    return mg_why_set(ps->why, MG_ERR_TOO_LARGE,
                                      "horaires : trop de plages dans une règle");
                /* Ranges of one rule that overlap ("09:00-12:00,09:00-
                   18:00") are read as their union, which is what the
                   text says, but flagged: it is often a typing slip. */
                for (size_t k = 0; k < nranges; k++)
                    if (s_ranges_meet(ranges[k][0], ranges[k][1], s, e))
                        ps->out->overlapping = true;
                ranges[nranges][0] = s;
                ranges[nranges][1] = e;
                nranges++;
                /* "," then a time: another range of this rule (a weekday
                   after the comma starts an additional rule instead). */
                if (*ps->p == ',') {
                    const char *q = ps->p + 1;
                    while (*q == ' ' || *q == '\t')
                        q++;
                    if (s_is_digit(*q)) {
                        ps->p = q;
                        continue;
                    }
                }
                break;
            }
        } else if (has_selector) {
            /* A selector alone: open all day. */
            ranges[0][0] = 0;
            ranges[0][1] = 1440;
            nranges = 1;
        }
        s_skip_ws(ps);
    }
    /* An optional comment. */
    if (*ps->p == '"') {
        const char *end = strchr(ps->p + 1, '"');
        if (!end)
            return s_error(ps, "commentaire sans guillemet fermant");
        ps->p = end + 1;
        ps->out->comment = true;
        s_skip_ws(ps);
    }
    if (ph) {
        if (off)
            ps->out->ph_off = true;
        else
            ps->out->ph_open = true;
        days &= 0x7F;
        if (!(days)) /* PH alone: the typical week is unchanged */
            return MG_OK;
    }
    s_apply(ps, days, additional, off, (const int (*)[2]) ranges, nranges);
    return MG_OK;
}

/* First minute >= from whose bit is `want` in c (1440 when none). */
static int s_next_bit(const uint64_t *c, int from, bool want)
{
    while (from < 1440) {
        uint64_t w = c[from / 64];
        if (!want)
            w = ~w;
        w &= ~(uint64_t) 0 << (from % 64);
        if (w) {
            int m = (from / 64) * 64 + __builtin_ctzll(w);
            return m < 1440 ? m : 1440;
        }
        from = (from / 64 + 1) * 64;
    }
    return 1440;
}

/* Turns the day bitmaps into week slots, a word at a time. */
static int s_collect(s_parser_t *ps)
{
    mg_hours_t *h = ps->out;
    h->count = 0;
    for (int d = 0; d < 7; d++) {
        uint64_t c[S_WORDS];
        for (int w = 0; w < S_WORDS; w++)
            c[w] = ps->day[d].bits[w] | ps->spill[(d + 6) % 7].bits[w];
        for (int m = s_next_bit(c, 0, true); m < 1440; m = s_next_bit(c, m, true)) {
            int e = s_next_bit(c, m, false);
            uint16_t start = (uint16_t) (d * 1440 + m), end = (uint16_t) (d * 1440 + e);
            if (h->count && h->slots[h->count - 1].end == start) {
                h->slots[h->count - 1].end = end; /* runs on past midnight */
            } else {
                if (h->count == MG_HOURS_MAX_SLOTS)
                    return mg_why_set(ps->why, MG_ERR_TOO_LARGE,
                                      "horaires : plus de %d plages dans la semaine",
                                      MG_HOURS_MAX_SLOTS);
                h->slots[h->count].start = start;
                h->slots[h->count].end = end;
                h->count++;
            }
            m = e;
        }
    }
    return MG_OK;
}

int mg_hours_parse(const char *text, mg_hours_t *out, mg_why_t *why)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return mg_why_set(why, MG_ERR_ARG, "horaires absents");
    if (strlen(text) > MG_HOURS_TEXT_MAX)
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "horaires : texte de plus de %d octets",
                          MG_HOURS_TEXT_MAX);
    s_parser_t ps;
    memset(&ps, 0, sizeof ps);
    ps.text = text;
    ps.p = text;
    ps.out = out;
    ps.why = why;
    s_skip_ws(&ps);
    if (!*ps.p) {
        int rc = s_error(&ps, "texte vide");
        memset(out, 0, sizeof *out);
        return rc;
    }
    bool additional = false;
    int rc = MG_OK;
    for (;;) {
        rc = s_parse_rule(&ps, additional);
        if (rc != MG_OK)
            break;
        s_skip_ws(&ps);
        if (*ps.p == '\0')
            break;
        if (*ps.p == ';') {
            ps.p++;
            s_skip_ws(&ps);
            additional = false;
            if (*ps.p == '\0') /* a trailing ";" ends nothing */
                break;
            continue;
        }
        if (*ps.p == ',') {
            ps.p++;
            s_skip_ws(&ps);
            additional = true;
            continue;
        }
        rc = s_unsupported(&ps);
        break;
    }
    if (rc == MG_OK)
        rc = s_collect(&ps);
    if (rc != MG_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

void mg_hours_intersect(const mg_hours_t *a, const mg_hours_t *b,
                        mg_hours_t *out)
{
    mg_slot_t res[2 * MG_HOURS_MAX_SLOTS];
    size_t n = 0, i = 0, j = 0;
    while (i < a->count && j < b->count) {
        uint16_t s = a->slots[i].start > b->slots[j].start ? a->slots[i].start
                                                           : b->slots[j].start;
        uint16_t e = a->slots[i].end < b->slots[j].end ? a->slots[i].end
                                                       : b->slots[j].end;
        /* Each result slot ends where a slot of a or of b ends, so there
           are at most count(a) + count(b) - 1 of them: the array of
           mg_hours_t holds twice MG_HOURS_MAX_SLOTS for that reason. */
        if (s < e && n < 2 * MG_HOURS_MAX_SLOTS) {
            res[n].start = s;
            res[n].end = e;
            n++;
        }
        if (a->slots[i].end < b->slots[j].end)
            i++;
        else
            j++;
    }
    memset(out, 0, sizeof *out);
    memcpy(out->slots, res, n * sizeof res[0]);
    out->count = n;
}

uint32_t mg_hours_minutes(const mg_hours_t *h)
{
    uint32_t total = 0;
    for (size_t i = 0; i < h->count; i++)
        total += (uint32_t) (h->slots[i].end - h->slots[i].start);
    return total;
}

bool mg_hours_open_at(const mg_hours_t *h, uint32_t minute)
{
    for (size_t i = 0; i < h->count; i++)
        if (minute >= h->slots[i].start && minute < h->slots[i].end)
            return true;
    return false;
}

/* The open ranges of day d, as minutes of that day. */
typedef struct {
    int n;
    int r[2 * MG_HOURS_MAX_SLOTS][2];
} s_dayranges_t;

static void s_day_ranges(const mg_hours_t *h, int d, s_dayranges_t *out)
{
    out->n = 0;
    int lo = d * 1440, hi = lo + 1440;
    for (size_t i = 0; i < h->count; i++) {
        int s = h->slots[i].start, e = h->slots[i].end;
        if (e <= lo || s >= hi)
            continue;
        out->r[out->n][0] = (s < lo ? lo : s) - lo;
        out->r[out->n][1] = (e > hi ? hi : e) - lo;
        out->n++;
    }
}

static bool s_same_ranges(const s_dayranges_t *a, const s_dayranges_t *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (a->r[i][0] != b->r[i][0] || a->r[i][1] != b->r[i][1])
            return false;
    return true;
}

/* Appends with snprintf semantics: `len` counts what the full text needs. */
static void s_put(char *buf, size_t size, size_t *len, const char *text)
{
    size_t n = strlen(text);
    if (*len < size) {
        size_t room = size - *len - 1;
        memcpy(buf + *len, text, n < room ? n : room);
        buf[*len + (n < room ? n : room)] = '\0';
    }
    *len += n;
}

size_t mg_hours_format(const mg_hours_t *h, char *buf, size_t size)
{
    size_t len = 0;
    if (size)
        buf[0] = '\0';
    if (h->count == 0) {
        s_put(buf, size, &len, "off");
        return len;
    }
    if (h->count == 1 && h->slots[0].start == 0
        && h->slots[0].end == MG_WEEK_MINUTES) {
        s_put(buf, size, &len, "24/7");
        return len;
    }
    s_dayranges_t days[7];
    for (int d = 0; d < 7; d++)
        s_day_ranges(h, d, &days[d]);
    bool done[7] = {false};
    bool first_rule = true;
    for (int d = 0; d < 7; d++) {
        if (done[d] || days[d].n == 0)
            continue;
        /* The days sharing day d's hours. */
        bool same[7] = {false};
        for (int e = d; e < 7; e++)
            if (!done[e] && s_same_ranges(&days[d], &days[e])) {
                same[e] = true;
                done[e] = true;
            }
        if (!first_rule)
            s_put(buf, size, &len, "; ");
        first_rule = false;
        /* Runs of three days or more as ranges (Mo-We), others listed. */
        bool first_day = true;
        for (int e = 0; e < 7;) {
            if (!same[e]) {
                e++;
                continue;
            }
            int f = e;
            while (f + 1 < 7 && same[f + 1])
                f++;
            if (!first_day)
                s_put(buf, size, &len, ",");
            first_day = false;
            if (f - e >= 2) {
                s_put(buf, size, &len, s_day_names[e]);
                s_put(buf, size, &len, "-");
                s_put(buf, size, &len, s_day_names[f]);
            } else {
                for (int g = e; g <= f; g++) {
                    if (g > e)
                        s_put(buf, size, &len, ",");
                    s_put(buf, size, &len, s_day_names[g]);
                }
            }
            e = f + 1;
        }
        s_put(buf, size, &len, " ");
        for (int i = 0; i < days[d].n; i++) {
            char t[64];
            snprintf(t, sizeof t, "%s%02d:%02d-%02d:%02d", i ? "," : "",
                     days[d].r[i][0] / 60, days[d].r[i][0] % 60,
                     days[d].r[i][1] / 60, days[d].r[i][1] % 60);
            s_put(buf, size, &len, t);
        }
    }
    return len;
}
