/*  mg_ics.h - events as an RFC 5545 iCalendar file (`maillage export
    --format ics`), for calendar programs (Thunderbird, Outlook, Apple
    Calendar, Google Agenda, GNOME/KDE calendars).

    What the file holds (docs/events.md):
      - CRLF line ends; every content line folded at 75 octets, never
        inside a UTF-8 sequence, continuation lines starting with a space;
      - TEXT values escaped: backslash, semicolon, comma, newline;
      - one VTIMEZONE "Europe/Paris" describing the EU rule the project
        computes with (mg_event.h), and DTSTART/DTEND;TZID=Europe/Paris
        in local time (in UTC for the rare time that occurs twice, the
        hour before the October change, which TZID cannot tell apart);
      - a stable UID per event ("<author hex>-<rid>@maillage"): exporting
        again, after an update or a cancellation, updates the same entry;
        SEQUENCE is the record's version counter, so it only grows;
      - STATUS:CANCELLED (and "ANNULÉ : " before the title, for programs
        that do not show the status) for cancelled events.
*/
#ifndef MG_ICS_H
#define MG_ICS_H

#include <stdio.h>

#include "mg_store.h"

/* Longest content line in octets, CRLF excluded (RFC 5545, 3.1). */
#define MG_ICS_LINE_MAX 75

/* Writes one content line `line` (no line break inside) folded as above,
   followed by CRLF. */
void mg_ics_line(FILE *out, const char *line);

/* The TEXT form of `text` (RFC 5545, 3.3.11): "\" ";" "," escaped with a
   backslash, CRLF / LF / CR written "\n", other control characters
   dropped. Caller frees; NULL when out of memory. */
char *mg_ics_escape(const char *text);

/* Writes a VCALENDAR with the events matching `query` (NULL: every
   indexed event), in the order of mg_store_events. Sets *count (may be
   NULL) to the number of events written. */
int mg_ics_export(mg_store_t *store, const mg_event_query_t *query,
                  FILE *out, size_t *count, mg_why_t *why);

/* The same VCALENDAR with one event only: (author, rid). MG_ERR_NOT_FOUND
   when the indexes no longer hold it. */
int mg_ics_export_one(mg_store_t *store, const uint8_t author[MG_KEY_BYTES],
                      const char *rid, FILE *out, mg_why_t *why);

#endif
