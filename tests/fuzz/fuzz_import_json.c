/*  fuzz_import_json.c - libFuzzer target: `maillage import` of a JSON
    file (an array of lieux) in the national standard (tools/mg_import.h),
    any schema generation. The harness is fuzz_import.inc. */
#define S_FORMAT MG_FORMAT_STANDARD_JSON
#define S_NAME "fuzz_import_json"
#define S_FILE "input.json"
#include "fuzz_import.inc"
