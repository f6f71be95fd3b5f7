/*  mg_text.h - small text helpers shared by every layer. */
#ifndef MG_TEXT_H
#define MG_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when data[0..len) is well-formed UTF-8 (no overlongs, no
   surrogates, nothing above U+10FFFF) and holds no NUL byte. */
bool mg_utf8_valid(const char *data, size_t len);

/* Number of code points in a valid UTF-8 string. */
size_t mg_utf8_length(const char *data, size_t len);

/* Lower-case hex of `len` bytes into `out`, which must hold 2*len+1. */
void mg_hex_encode(const uint8_t *bytes, size_t len, char *out);

/* Decodes exactly 2*len hex digits (either case); returns 0 or -1. */
int mg_hex_decode(const char *hex, uint8_t *bytes, size_t len);

/* True when `s` is a valid record id: 1..MG_RID_MAX characters from
   [A-Za-z0-9._-], so it is safe in shells, URLs and file names. */
bool mg_rid_valid(const char *s);

#endif
