/*  mg_export.h - writing the store's offers in the national standard. */
#ifndef MG_EXPORT_H
#define MG_EXPORT_H

#include <stdio.h>

#include "mg_import.h"
#include "mg_store.h"

/* Writes the live offers matching `query` (NULL: all) to `out`:
   - MG_FORMAT_STANDARD_CSV: exactly the standard's columns, in the order
     of its example file, '|'-joined lists, every value valid against
     schema.json;
   - MG_FORMAT_STANDARD_JSON: an array of objects with the standard's
     fields plus maillage's (duree, frequence, demarche, objectifs) and
     anything kept from imports, so export -> import loses nothing;
   - MG_FORMAT_GEOJSON: a FeatureCollection of the offers that have
     coordinates, properties = the standard fields.
   Sets *count to the number of offers written. */
int mg_export(mg_store_t *store, mg_format_t format,
              const mg_offer_query_t *query, FILE *out, size_t *count,
              mg_why_t *why);

#endif
