/*  mg_endorse.h - endorsements: a coordinator vouches for structures.

    An `endorse` record is signed by a coordinator key. Its rid is
    "endorse-" followed by the subject's key in hex, so a coordinator's
    newer record about the same subject replaces the older one (that is
    how an endorsement is revoked). Body:

        subject = str   ; the endorsed structure's key, 64 lowercase hex
        status  = str   ; "endorsed" or "revoked"
        note    = str   ; optional, free text

    A node started with --trust-coordinator KEY stores offers, events,
    replies and notes only from authors that a trusted coordinator
    currently endorses (and the coordinators themselves); see
    docs/security.md. */
#ifndef MG_ENDORSE_H
#define MG_ENDORSE_H

#include <stdbool.h>

#include "mg_body.h"
#include "mg_error.h"
#include "mg_record.h"

#define MG_ENDORSE_RID_PREFIX "endorse-"

/* Validates an endorse body. */
int mg_endorse_validate(const mg_body_t *body, mg_why_t *why);

/* The rid of the endorsement of `subject` (rid_out: MG_RID_MAX+1). */
void mg_endorse_rid(const uint8_t subject[MG_KEY_BYTES], char *rid_out);

/* Reads a decoded endorse record: fills the subject key and whether it
   is endorsed (false for "revoked" or a tombstone). Returns MG_OK, or
   MG_ERR_SCHEMA when the record is not a valid endorsement. */
int mg_endorse_read(const mg_record_t *record, uint8_t subject[MG_KEY_BYTES],
                    bool *endorsed);

#endif
