/*  mg_invite.c - invite lines: "maillage:KEYHEX@ENDPOINT[,ENDPOINT...]".

    Shell-safe: only [A-Za-z0-9:/@.,%_-] appear; characters a shell would
    expand or split ([ ] for IPv6, *, spaces) are percent-encoded. */
#include <stdio.h>
#include <string.h>

#include "mg_msg.h"
#include "mg_node.h"
#include "mg_text.h"

#define S_PREFIX "maillage:"

static bool s_safe(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || strchr(":/@.-_", c) != NULL;
}

int mg_invite_format(const uint8_t key[MG_KEY_BYTES],
                     const char *const *endpoints, size_t count, char *out,
                     size_t size)
{
    char hex[2 * MG_KEY_BYTES + 1];
    mg_hex_encode(key, MG_KEY_BYTES, hex);
    size_t n = (size_t) snprintf(out, size, "%s%s@", S_PREFIX, hex);
    for (size_t i = 0; i < count && n < size; i++) {
        if (i)
            out[n++] = ',';
        for (const char *p = endpoints[i]; *p && n + 4 < size; p++) {
            if (s_safe(*p))
                out[n++] = *p;
            else
                n += (size_t) snprintf(out + n, size - n, "%%%02X", (unsigned char) *p);
        }
    }
    if (n >= size)
        return MG_ERR_ARG;
    out[n] = '\0';
    return MG_OK;
}

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int mg_invite_parse(const char *invite, uint8_t key[MG_KEY_BYTES],
                    char endpoints[][256], int max, mg_why_t *why)
{
    /* Tolerate surrounding spaces and quotes from a copy-paste. */
    while (*invite == ' ' || *invite == '"' || *invite == '\'')
        invite++;
    if (strncmp(invite, S_PREFIX, strlen(S_PREFIX)) != 0)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "invitation invalide : elle doit commencer par « maillage: » "
                          "(demandez la ligne donnée par « maillage invite »)");
    const char *p = invite + strlen(S_PREFIX);
    char hex[2 * MG_KEY_BYTES + 1];
    if (strlen(p) < 2 * MG_KEY_BYTES + 2 || p[2 * MG_KEY_BYTES] != '@')
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "invitation invalide : clé publique absente ou tronquée");
    memcpy(hex, p, 2 * MG_KEY_BYTES);
    hex[2 * MG_KEY_BYTES] = '\0';
    if (mg_hex_decode(hex, key, MG_KEY_BYTES) != 0)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "invitation invalide : clé publique illisible");
    p += 2 * MG_KEY_BYTES + 1;
    int count = 0;
    while (*p && *p != ' ' && *p != '"' && *p != '\'' && *p != '\n') {
        if (count >= max)
            return mg_why_set(why, MG_ERR_TOO_LARGE,
                              "invitation : trop d'adresses (%d au plus)", max);
        size_t n = 0;
        while (*p && *p != ',' && *p != ' ' && *p != '"' && *p != '\'' && *p != '\n') {
            char c = *p++;
            if (c == '%') {
                int hi = s_hexval(p[0]), lo = hi >= 0 ? s_hexval(p[1]) : -1;
                if (lo < 0)
                    return mg_why_set(why, MG_ERR_MALFORMED,
                                      "invitation invalide : %% mal encodé");
                c = (char) (hi << 4 | lo);
                p += 2;
            }
            if (n >= MG_ENDPOINT_MAX)
                return mg_why_set(why, MG_ERR_TOO_LARGE,
                                  "invitation : adresse trop longue");
            endpoints[count][n++] = c;
        }
        endpoints[count][n] = '\0';
        if (strncmp(endpoints[count], "tcp://", 6) != 0 || n <= 6)
            return mg_why_set(why, MG_ERR_MALFORMED,
                              "invitation : adresse « %s » invalide (attendu tcp://hôte:port)",
                              endpoints[count]);
        count++;
        if (*p == ',')
            p++;
    }
    if (count == 0)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "invitation invalide : aucune adresse après la clé");
    return count;
}
