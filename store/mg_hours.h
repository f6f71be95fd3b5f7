/*  mg_hours.h - opening hours in the OpenStreetMap `opening_hours`
    syntax, as the national standard's `horaires` field uses it.

    What is understood (docs/analysis.md, section "Horaires"):
      - `24/7`;
      - rules separated by `;` (a later rule replaces the days it names)
        or by `, ` before a weekday (an additional rule: it adds);
      - weekday selectors: `Mo`..`Su`, ranges (`Mo-Fr`, wrapping `Fr-Mo`)
        and lists (`Mo,We,Fr`, `Mo-We,Fr`);
      - one or more time ranges `09:00-12:00,14:00-18:00` (an end before
        the start runs past midnight into the next day; `24:00` ends a
        day); a rule without times is open all day;
      - `off` / `closed` (the named days are closed);
      - public holidays: `PH off` and `PH 10:00-12:00` are recorded as
        flags (a typical week has no public holiday), `Mo-Fr,PH ...`
        applies the times to Mo-Fr;
      - comments in double quotes, kept aside.
    Everything else (months, dates, week numbers, `SH`, `sunrise`, `+`,
    `||` fallbacks, `Mo[1]`, `unknown`) is refused with the position and
    the reason: an analysis ignores what it cannot read, it never guesses.

    The result is the set of open minutes of a typical week, so that two
    offers' hours can be intersected exactly.
*/
#ifndef MG_HOURS_H
#define MG_HOURS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_error.h"

/* Minutes in a week: Monday 00:00 is 0, Sunday 24:00 is 10080. */
#define MG_WEEK_MINUTES (7 * 1440)
/* Most separate open slots in a week (e.g. 7 days x 4 ranges = 28).
   Real schedules have at most two or three ranges a day; a text that
   needs more is refused rather than truncated. */
#define MG_HOURS_MAX_SLOTS 64
/* Longest text accepted (the standard sets no limit; real ones are
   under 200 characters). */
#define MG_HOURS_TEXT_MAX 1024

/* One open slot: [start, end) in minutes of the week. */
typedef struct {
    uint16_t start; /* first open minute, 0..10079 */
    uint16_t end;   /* first closed minute after it, start < end <= 10080 */
} mg_slot_t;

/* A typical week of opening hours. */
typedef struct {
    /* Sorted, disjoint, never touching. Parsing yields at most
       MG_HOURS_MAX_SLOTS; an intersection of two such weeks can need up
       to twice as many. */
    mg_slot_t slots[2 * MG_HOURS_MAX_SLOTS];
    size_t count;          /* number of slots; 0: closed all week */
    bool ph_off;           /* `PH off`: closed on public holidays */
    bool ph_open;          /* a rule gives hours for public holidays */
    bool comment;          /* the text had a "quoted comment" */
    bool overlapping;      /* two time ranges of one rule overlap
                              (09:00-12:00,09:00-18:00): read as their
                              union, worth a look by the author */
} mg_hours_t;

/* Parses `text`. On success fills `out` and returns MG_OK. Otherwise
   returns MG_ERR_SCHEMA (MG_ERR_TOO_LARGE for a text over
   MG_HOURS_TEXT_MAX bytes or needing more than MG_HOURS_MAX_SLOTS slots)
   with `why` (may be NULL) giving the 1-based character position and
   the reason in French; `out` is then cleared. */
int mg_hours_parse(const char *text, mg_hours_t *out, mg_why_t *why);

/* The minutes open in both `a` and `b`, into `out` (may alias a or b).
   Flags of `out` are cleared. */
void mg_hours_intersect(const mg_hours_t *a, const mg_hours_t *b,
                        mg_hours_t *out);

/* Open minutes in the week. */
uint32_t mg_hours_minutes(const mg_hours_t *h);

/* True when `minute` (0..10079) is open. */
bool mg_hours_open_at(const mg_hours_t *h, uint32_t minute);

/* Writes the canonical form: days with the same hours grouped, in week
   order ("Mo-Fr 09:00-12:00,14:00-17:00; Sa 09:00-12:00"), "24/7" for
   always open, "off" for never open. A slot running past midnight is
   shown on both days ("Fr 22:00-24:00; Sa 00:00-02:00"). Flags are not
   written. Always NUL-terminates when size > 0; returns the length the
   full text needs (like snprintf). */
size_t mg_hours_format(const mg_hours_t *h, char *buf, size_t size);

#endif
