/*  fuzz_import_csv.c - libFuzzer target: `maillage import` of a CSV file
    in the national standard (tools/mg_import.h), any schema generation.
    The harness is fuzz_import.inc. */
#define S_FORMAT MG_FORMAT_STANDARD_CSV
#define S_NAME "fuzz_import_csv"
#define S_FILE "input.csv"
#include "fuzz_import.inc"
