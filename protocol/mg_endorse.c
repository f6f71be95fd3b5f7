/*  mg_endorse.c - endorsement records, see mg_endorse.h. */
#include "mg_endorse.h"

#include <string.h>

#include "mg_text.h"

static bool s_key_hex(const char *s)
{
    if (!s || strlen(s) != 2 * MG_KEY_BYTES)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int mg_endorse_validate(const mg_body_t *body, mg_why_t *why)
{
    if (!s_key_hex(mg_body_str(body, "subject")))
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "endorse : « subject » doit être une clé publique (64 caractères hexadécimaux minuscules)");
    const char *status = mg_body_str(body, "status");
    if (!status || (strcmp(status, "endorsed") != 0 && strcmp(status, "revoked") != 0))
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "endorse : « status » vaut « endorsed » ou « revoked »");
    int at = mg_body_find(body, "note");
    if (at >= 0 && mg_body_type_at(body, (size_t) at) != MG_VAL_STR)
        return mg_why_set(why, MG_ERR_SCHEMA, "endorse : « note » est un texte");
    return MG_OK;
}

void mg_endorse_rid(const uint8_t subject[MG_KEY_BYTES], char *rid_out)
{
    char hex[2 * MG_KEY_BYTES + 1];
    mg_hex_encode(subject, MG_KEY_BYTES, hex);
    /* 8 + 64 characters would pass MG_RID_MAX (64): 56 hex characters
       (224 bits) of the subject are as unique as the key in practice, and
       the body carries the whole key. */
    size_t prefix = strlen(MG_ENDORSE_RID_PREFIX);
    size_t take = MG_RID_MAX - prefix;
    memcpy(rid_out, MG_ENDORSE_RID_PREFIX, prefix);
    memcpy(rid_out + prefix, hex, take);
    rid_out[prefix + take] = '\0';
}

int mg_endorse_read(const mg_record_t *record, uint8_t subject[MG_KEY_BYTES],
                    bool *endorsed)
{
    if (strcmp(mg_record_kind(record), "endorse") != 0)
        return MG_ERR_SCHEMA;
    const char *rid = mg_record_rid(record);
    if (strncmp(rid, MG_ENDORSE_RID_PREFIX, strlen(MG_ENDORSE_RID_PREFIX)) != 0)
        return MG_ERR_SCHEMA;
    if (mg_record_deleted(record)) {
        /* A tombstone withdraws the endorsement; the subject is in the rid
           only as a prefix, so the caller matches it by rid. */
        *endorsed = false;
        return MG_ERR_NOT_FOUND;
    }
    const mg_body_t *body = mg_record_body(record);
    const char *hex = mg_body_str(body, "subject");
    if (mg_endorse_validate(body, NULL) != MG_OK || mg_hex_decode(hex, subject, MG_KEY_BYTES) != 0)
        return MG_ERR_SCHEMA;
    /* The rid must name the same subject, or a coordinator could keep two
       contradictory endorsements of one key alive. */
    char expect[MG_RID_MAX + 1];
    mg_endorse_rid(subject, expect);
    if (strcmp(expect, rid) != 0)
        return MG_ERR_SCHEMA;
    *endorsed = strcmp(mg_body_str(body, "status"), "endorsed") == 0;
    return MG_OK;
}
