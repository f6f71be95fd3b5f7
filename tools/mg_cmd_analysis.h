/*  mg_cmd_analysis.h - the coordinator's commands: overlaps, duplicates,
    gaps, complementarities, diagnostic, check (mg_cmd_analysis.c), over
    the analyses of store/mg_analysis.h. */
#ifndef MG_CMD_ANALYSIS_H
#define MG_CMD_ANALYSIS_H

#include "mg_analysis.h"
#include "mg_error.h"

/* Each command takes argv[0] = its name and the --dir option (NULL when
   not given); returns the process exit status: 0 done, 1 failure (or,
   for check, something missing), 2 usage error. */
int mg_cmd_overlaps(int argc, char **argv, const char *dir);
int mg_cmd_duplicates(int argc, char **argv, const char *dir);
int mg_cmd_gaps(int argc, char **argv, const char *dir);
int mg_cmd_complementarities(int argc, char **argv, const char *dir);
int mg_cmd_diagnostic(int argc, char **argv, const char *dir);
int mg_cmd_check(int argc, char **argv, const char *dir);

/* One offer's entry of `maillage check --json`: its eight questions as
   checked in `chk` (mg_check_offer). rid may be NULL (an offer being
   edited, not stored yet). Caller owns the result. */
#include <jansson.h>
json_t *mg_check_json(const char *rid, const mg_body_t *body, const mg_check_t *chk);

/* Reads a communes table (CSV, libcsv, UTF-8, comma-separated, header
   row) such as tests/data/charente.csv. Columns are found by name:
   INSEE code (insee_com, code_insee, codgeo, insee), name (commune,
   nom_commune, nom, libelle), coordinates (lat/latitude,
   lng/lon/longitude), population (population_2021, or the first column
   whose name starts with "population"); optional: commune_article,
   code_postal, commune_type (COM, COMD, ARM), insee_parente. An empty
   cell is unknown. Numbers are read in the C locale ("45.6", never
   "45,6"). Errors give the line. Caller owns *out. */
int mg_communes_load(const char *path, mg_communes_t **out, mg_why_t *why);

#endif
