/*  mg_import.h - importing offers in the national standard (CSV or JSON,
    any schema generation) into the store, as records authored and signed
    by this node. All or nothing: one transaction. */
#ifndef MG_IMPORT_H
#define MG_IMPORT_H

#include <stdio.h>
#include <jansson.h>

#include "mg_record.h"
#include "mg_store.h"

typedef enum {
    MG_FORMAT_AUTO = 0,       /* guess from the file's first bytes */
    MG_FORMAT_STANDARD_CSV,   /* the standard's CSV, '|'-joined lists */
    MG_FORMAT_STANDARD_JSON,  /* a JSON array of lieu objects */
    MG_FORMAT_GEOJSON,        /* a FeatureCollection (export only) */
} mg_format_t;

/* Parses "standard-csv", "standard-json", "geojson" (also "csv",
   "json"). Returns MG_OK or MG_ERR_ARG. */
int mg_format_parse(const char *name, mg_format_t *out);

/* What an import did, for the end-of-import summary. */
typedef struct mg_import_report_t mg_import_report_t;

/* Called now and then during a long import: `done` of `total` lieux. */
typedef void (mg_progress_fn)(size_t done, size_t total, void *arg);

/* Imports `path` into `store` as offers signed by `id`. Every lieu is
   mapped onto the standard v1 (docs/import-mapping.md), validated, and
   signed; then all are applied in one transaction. A lieu whose body is
   unchanged creates no new version. On any error nothing is written and
   `why` gives the file position (line, or record index) and the reason.
   Caller owns *report (may be NULL if not wanted). */
int mg_import_file(mg_store_t *store, const mg_identity_t *id,
                   const char *path, mg_format_t format,
                   mg_progress_fn *progress, void *progress_arg,
                   mg_import_report_t **report, mg_why_t *why);

/* Prints the summary in plain French: counts (read, new, updated,
   unchanged), each mapping applied with its count, and every value that
   could not be mapped (kept in the record under "non_mappe"). */
void mg_import_report_print(const mg_import_report_t *report, FILE *out);

/* The same summary as JSON. Caller owns return value. */
json_t *mg_import_report_json(const mg_import_report_t *report);

void mg_import_report_destroy(mg_import_report_t **self_p);

/* Counts in a report, for tests and callers. */
size_t mg_import_report_read(const mg_import_report_t *report);
size_t mg_import_report_new(const mg_import_report_t *report);
size_t mg_import_report_updated(const mg_import_report_t *report);
size_t mg_import_report_unchanged(const mg_import_report_t *report);
size_t mg_import_report_unmapped(const mg_import_report_t *report);

/* How many times one line of the summary applied: a renamed field
   (field, NULL, to_field, NULL), a mapped value (field, value, to_field,
   to), a value kept in "non_mappe" (field, value, NULL, NULL), an unknown
   field (field, NULL, NULL, NULL). 0 when it never applied. */
size_t mg_import_report_count(const mg_import_report_t *report,
                              const char *field, const char *value,
                              const char *to_field, const char *to);

/* The record id an import gives the lieu (source, id): the first 16 hex
   digits of BLAKE2b-256("maillage-import\0" source "\0" id), so that
   importing the same lieu again finds the same record. `source` may be
   NULL (no source). Caller owns return value (free()); NULL if out of
   memory. */
char *mg_import_rid(const char *source, const char *id);

#endif
