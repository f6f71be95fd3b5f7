/*  mg_event.h - field rules for event, rsvp and note bodies, and the
    Europe/Paris clock they are shown in (docs/events.md).

    event   an invitation: titre, debut, fin (UTC, "YYYY-MM-DDTHH:MM:SSZ"),
            a place (adresse, commune, code_postal) and/or en_ligne (URL),
            services and publics_specifiquement_adresses (the national
            standard's labels, as in offers), territoire (INSEE commune or
            département codes; none: open to all), capacite, partenaires
            (authors' public keys, hex), inscription, description, and when
            cancelled annule_le (UTC) with an optional motif_annulation.
    rsvp    a reply: evenement_auteur (hex key), evenement_id (rid),
            reponse ("oui", "non", "peut-etre"), places, commentaire. Its
            record id is mg_rsvp_rid() of the event, so a node's new reply
            is a newer version of the same record and replaces the old one.
    note    a practice-sharing note: titre, texte (a string, or a list of
            pieces joined without separator when longer than one body
            string may be), tags, services, licence.

    Like offers, every body may carry fields this version does not know
    (kept, forwarded, not indexed). The strict rules apply when authoring;
    the lenient ones to records received from peers, so that a newer
    node's labels never make this one drop (and stop forwarding) them.

    Pure code: no I/O, no clock. The time zone rule is the EU one, coded
    here rather than read from the system's tz database, so that every
    node converts identically whatever its installation.
*/
#ifndef MG_EVENT_H
#define MG_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_body.h"
#include "mg_error.h"
#include "mg_record.h"

/* Longest event or note title, in characters: a calendar line, not a
   paragraph. */
#define MG_TITLE_MAX_CHARS 200
/* Longest note text in bytes, all pieces together: leaves room in a
   record (MG_RECORD_MAX) for the title, tags and envelope. */
#define MG_NOTE_TEXT_MAX 60000
/* Seats one reply may ask for, and the largest capacity: a conference
   hall, not a stadium; bounds every sum far below 2^53. */
#define MG_SEATS_MAX 1000
#define MG_CAPACITY_MAX 100000
/* Longest reply comment, in characters. */
#define MG_COMMENT_MAX_CHARS 1000
/* "rsvp-" + 16 hex digits. */
#define MG_RSVP_RID_LEN 21

/* Validates a body of each kind; strict for authoring, lenient for
   received records (see above). Return MG_OK or MG_ERR_SCHEMA (or
   MG_ERR_UTF8 / MG_ERR_TOO_LARGE) with `why` naming the field. */
int mg_event_validate(const mg_body_t *body, bool strict, mg_why_t *why);
int mg_rsvp_validate(const mg_body_t *body, bool strict, mg_why_t *why);
int mg_note_validate(const mg_body_t *body, bool strict, mg_why_t *why);

/* The record id of any node's reply to the event (event_author,
   event_rid): "rsvp-" followed by the first 16 hex digits of
   BLAKE2b-256(event_author || event_rid). Every node derives the same id,
   so one replier has one reply record per event, and the store counts
   only replies whose rid is this one. `out` holds MG_RSVP_RID_LEN + 1
   bytes. */
void mg_rsvp_rid(const uint8_t event_author[MG_KEY_BYTES],
                 const char *event_rid, char out[MG_RSVP_RID_LEN + 1]);

/* The answers a reply may give. */
#define MG_RSVP_YES "oui"
#define MG_RSVP_NO "non"
#define MG_RSVP_MAYBE "peut-etre"

/* Whether a territory code is well formed: an INSEE commune code
   ("16015", "2A004") or a département code ("16", "2A", "971"). Upper
   case only (callers normalise). *is_commune tells which (may be NULL). */
bool mg_territory_code_valid(const char *code, bool *is_commune);

/* ------------------------------------------------------------------ */
/* Time                                                                 */

/* A broken-down time. */
typedef struct {
    int year, month, day;       /* 2026, 1..12, 1..31 */
    int hour, minute, second;   /* 0..23, 0..59, 0..59 */
    int wday;                   /* 0 = Sunday .. 6 = Saturday */
    int offset_s;               /* local offset from UTC (3600 or 7200 for
                                   Paris; 0 for UTC) */
} mg_civil_t;

/* UTC ms since the epoch -> broken-down UTC (offset_s 0). */
void mg_time_utc(int64_t ms, mg_civil_t *out);

/* Broken-down date/time read as UTC -> ms since the epoch. Fields must be
   in range (not normalised). */
int64_t mg_time_from_utc(const mg_civil_t *utc);

/* Europe/Paris offset at UTC instant `ms`: 7200 (CEST) from the last
   Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC,
   3600 (CET) otherwise. The EU rule, applied to every year. */
int mg_paris_offset(int64_t ms);

/* UTC ms -> Europe/Paris local time (offset_s set). */
void mg_paris_local(int64_t ms, mg_civil_t *out);

/* Europe/Paris local time -> UTC ms. A time that occurs twice (the hour
   before the October change) is the first occurrence, as RFC 5545 says;
   a time that does not exist (the hour skipped in March) returns
   MG_ERR_ARG with `why` saying so. */
int mg_paris_to_utc(const mg_civil_t *local, int64_t *ms, mg_why_t *why);

/* Parses a date and time typed by a person: "YYYY-MM-DDTHH:MM[:SS]"
   (a space may replace the T), optionally followed by "Z" or an offset
   "+HH:MM"/"-HH:MM". Without one it is Europe/Paris time. */
int mg_time_parse(const char *text, int64_t *ms, mg_why_t *why);

/* The body form of a time: exactly "YYYY-MM-DDTHH:MM:SSZ", a real date,
   years 1970..9999. Returns 0 and sets *ms, or -1. */
int mg_time_parse_utc(const char *text, int64_t *ms);

/* Formats `ms` in the body form. `out` holds 21 bytes. */
void mg_time_format_utc(int64_t ms, char out[21]);

/* Formats `ms` as Europe/Paris ISO 8601 with its offset,
   "2026-03-12T14:00:00+01:00". `out` holds 26 bytes. */
void mg_time_format_paris(int64_t ms, char out[26]);

#endif
