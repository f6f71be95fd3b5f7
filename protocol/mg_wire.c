/*  mg_wire.c - bounds pre-check of untrusted msgpack. */
#include "mg_wire.h"

#include "mg_text.h"

/* Reads a big-endian unsigned integer of n bytes at p. */
static uint64_t s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Scans one value at data[*pos..len); advances *pos past it. */
static int s_scan(const uint8_t *data, size_t len, size_t *pos, int depth)
{
    if (depth > MG_WIRE_DEPTH_MAX || *pos >= len)
        return -1;
    uint8_t t = data[(*pos)++];
    size_t rest = len - *pos;
    uint64_t skip = 0;     /* payload bytes to skip */
    uint64_t items = 0;    /* nested values to scan */
    size_t hdr = 0;        /* length-field bytes following the tag */
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return 0;
    if (t >= 0x80 && t <= 0x8f)
        items = (uint64_t) (t & 0x0f) * 2;
    else if (t >= 0x90 && t <= 0x9f)
        items = t & 0x0f;
    else if (t >= 0xa0 && t <= 0xbf)
        skip = t & 0x1f;
    else {
        switch (t) {
        case 0xc4: case 0xd9: hdr = 1; break;      /* bin8, str8 */
        case 0xc5: case 0xda: hdr = 2; break;      /* bin16, str16 */
        case 0xc6: case 0xdb: hdr = 4; break;      /* bin32, str32 */
        case 0xc7: hdr = 1; skip = 1; break;       /* ext8: len, type */
        case 0xc8: hdr = 2; skip = 1; break;
        case 0xc9: hdr = 4; skip = 1; break;
        case 0xca: skip = 4; break;
        case 0xcb: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: skip = 4; break;
        case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break;                /* fixext: type + data */
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: case 0xdd: case 0xde: case 0xdf: {
            size_t n = (t == 0xdc || t == 0xde) ? 2 : 4;
            if (rest < n)
                return -1;
            items = s_be(data + *pos, n);
            if (t >= 0xde)
                items *= 2;
            *pos += n;
            break;
        }
        default: return -1; /* 0xc1 is never used */
        }
        if (hdr) {
            if (rest < hdr)
                return -1;
            skip += s_be(data + *pos, hdr);
            *pos += hdr;
        }
    }
    if (skip) {
        if (skip > len - *pos)
            return -1;
        /* Every string, wherever it is (opaque values included), must be
           valid UTF-8: nothing we keep and forward can carry bad text. */
        bool is_str = (t >= 0xa0 && t <= 0xbf) || t == 0xd9 || t == 0xda || t == 0xdb;
        if (is_str && !mg_utf8_valid((const char *) data + *pos, (size_t) skip))
            return -1;
        *pos += (size_t) skip;
    }
    /* Every nested value takes at least one byte. */
    if (items > len - *pos)
        return -1;
    for (uint64_t i = 0; i < items; i++)
        if (s_scan(data, len, pos, depth + 1) != 0)
            return -1;
    return 0;
}

int mg_wire_scan(const uint8_t *data, size_t len, mg_why_t *why)
{
    size_t pos = 0;
    if (s_scan(data, len, &pos, 1) != 0 || pos != len)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "données msgpack mal formées, tronquées ou trop imbriquées");
    return MG_OK;
}
