/*  mg_text.c - UTF-8 validation, hex, record id syntax. */
#include "mg_text.h"

#include "mg_record.h"

bool mg_utf8_valid(const char *data, size_t len)
{
    const unsigned char *s = (const unsigned char *) data;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false; /* continuation byte, 0xC0/0xC1 overlong, or > 0xF4 */
        }
        if (len - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* Reject overlong forms, surrogates and code points past U+10FFFF. */
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000)
            || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        i += need + 1;
    }
    return true;
}

size_t mg_utf8_length(const char *data, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char) data[i] & 0xC0) != 0x80)
            n++;
    return n;
}

void mg_hex_encode(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0x0F];
    }
    out[2 * len] = '\0';
}

static int s_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mg_hex_decode(const char *hex, uint8_t *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int hi = s_hex_value(hex[2 * i]);
        if (hi < 0)
            return -1;
        int lo = s_hex_value(hex[2 * i + 1]);
        if (lo < 0)
            return -1;
        bytes[i] = (uint8_t) (hi << 4 | lo);
    }
    return hex[2 * len] == '\0' ? 0 : -1;
}

bool mg_rid_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok || n >= MG_RID_MAX)
            return false;
    }
    return n > 0;
}
