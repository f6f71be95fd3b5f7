/*  mg_record.c - signed records: encode, sign, decode, verify. */
#include "mg_record.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "mg_endorse.h"
#include "mg_event.h"
#include "mg_offer.h"
#include "mg_text.h"
#include "mg_wire.h"

struct mg_record_t {
    uint8_t *bytes;              /* the exact signed bytes, as received */
    size_t len;                  /* length of bytes */
    uint32_t version;            /* format version (MG_RECORD_VERSION) */
    char kind[MG_KIND_MAX + 1];  /* record kind, [a-z]+ */
    uint8_t author[MG_KEY_BYTES];/* Ed25519 public key of the author */
    char rid[MG_RID_MAX + 1];    /* record id, unique per author */
    uint64_t counter;            /* per-author version counter, >= 1 */
    int64_t created;             /* signed creation time, ms since epoch */
    bool deleted;                /* true for a tombstone */
    mg_body_t *body;             /* decoded body (empty for tombstones) */
};

static const char *const s_known_kinds[] = {
    "profile", "offer", "event", "rsvp", "note", "endorse", NULL
};

bool mg_kind_known(const char *kind)
{
    for (size_t i = 0; s_known_kinds[i]; i++)
        if (strcmp(kind, s_known_kinds[i]) == 0)
            return true;
    return false;
}

static int s_sodium_ready(void)
{
    /* sodium_init is idempotent and thread-safe; it fails only when the
       system has no usable random source. */
    return sodium_init() < 0 ? MG_ERR_IO : MG_OK;
}

int mg_identity_generate(mg_identity_t *id)
{
    if (s_sodium_ready() != MG_OK)
        return MG_ERR_IO;
    crypto_sign_keypair(id->pk, id->sk);
    return MG_OK;
}

int mg_identity_from_seed(mg_identity_t *id, const uint8_t seed[32])
{
    if (s_sodium_ready() != MG_OK)
        return MG_ERR_IO;
    crypto_sign_seed_keypair(id->pk, id->sk, seed);
    return MG_OK;
}

void mg_identity_wipe(mg_identity_t *id)
{
    sodium_memzero(id, sizeof *id);
}

static bool s_kind_valid(const char *kind, size_t len)
{
    if (len == 0 || len > MG_KIND_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (kind[i] < 'a' || kind[i] > 'z')
            return false;
    return true;
}

int mg_record_validate_body(const char *kind, const mg_body_t *body,
                            bool strict, mg_why_t *why)
{
    if (strcmp(kind, "offer") == 0)
        return strict ? mg_offer_validate(body, why)
                      : mg_offer_validate_lenient(body, why);
    if (strcmp(kind, "profile") == 0)
        return strict ? mg_profile_validate(body, why)
                      : mg_profile_validate_lenient(body, why);
    if (strcmp(kind, "endorse") == 0)
        return mg_endorse_validate(body, why);
    if (strcmp(kind, "event") == 0)
        return mg_event_validate(body, strict, why);
    if (strcmp(kind, "rsvp") == 0)
        return mg_rsvp_validate(body, strict, why);
    if (strcmp(kind, "note") == 0)
        return mg_note_validate(body, strict, why);
    return MG_OK;
}

/* Checks the envelope rules shared by signing and decoding. */
static int s_check_envelope(const char *kind, const char *rid,
                            uint64_t counter, bool deleted,
                            const mg_body_t *body, bool strict, mg_why_t *why)
{
    if (!s_kind_valid(kind, strlen(kind)))
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "type de fiche invalide (lettres minuscules, %d au plus)",
                          MG_KIND_MAX);
    if (!mg_rid_valid(rid))
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "identifiant de fiche invalide (1 à %d caractères parmi A-Z a-z 0-9 . _ -)",
                          MG_RID_MAX);
    if (counter == 0 || counter > (uint64_t) INT64_MAX)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "compteur de version hors limites (1 à 2^63-1)");
    if (strcmp(kind, "profile") == 0 && strcmp(rid, "profile") != 0)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "une fiche structure a toujours l'identifiant « profile »");
    if (deleted) {
        if (body && mg_body_count(body) != 0)
            return mg_why_set(why, MG_ERR_MALFORMED,
                              "une fiche supprimée n'a pas de contenu");
        return MG_OK;
    }
    return mg_record_validate_body(kind, body, strict, why);
}

int mg_record_sign(const mg_identity_t *id, const char *kind,
                   const char *rid, uint64_t counter, int64_t created_ms,
                   bool deleted, const mg_body_t *body, mg_record_t **out,
                   mg_why_t *why)
{
    *out = NULL;
    mg_body_t *empty = NULL;
    if (!body) {
        empty = mg_body_new();
        if (!empty)
            return MG_ERR_NOMEM;
        body = empty;
    }
    int rc = s_check_envelope(kind, rid, counter, deleted, body, true, why);
    if (rc != MG_OK) {
        mg_body_destroy(&empty);
        return rc;
    }
    /* The signed payload, prefixed by the signature context. */
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    int err = msgpack_sbuffer_write(&sbuf, MG_RECORD_SIG_CONTEXT,
                                    sizeof MG_RECORD_SIG_CONTEXT);
    err |= msgpack_pack_array(&pk, 8);
    err |= msgpack_pack_uint32(&pk, MG_RECORD_VERSION);
    err |= msgpack_pack_str_with_body(&pk, kind, strlen(kind));
    err |= msgpack_pack_bin_with_body(&pk, id->pk, MG_KEY_BYTES);
    err |= msgpack_pack_str_with_body(&pk, rid, strlen(rid));
    err |= msgpack_pack_uint64(&pk, counter);
    err |= msgpack_pack_int64(&pk, created_ms);
    err |= deleted ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    if (!err)
        err = mg_body_pack(body, &pk) != MG_OK;
    mg_body_destroy(&empty);
    if (err) {
        msgpack_sbuffer_destroy(&sbuf);
        return MG_ERR_NOMEM;
    }
    uint8_t sig[MG_SIG_BYTES];
    crypto_sign_detached(sig, NULL, (const uint8_t *) sbuf.data, sbuf.size,
                         id->sk);
    const char *payload = sbuf.data + sizeof MG_RECORD_SIG_CONTEXT;
    size_t payload_len = sbuf.size - sizeof MG_RECORD_SIG_CONTEXT;

    msgpack_sbuffer rbuf;
    msgpack_sbuffer_init(&rbuf);
    msgpack_packer rpk;
    msgpack_packer_init(&rpk, &rbuf, msgpack_sbuffer_write);
    err = msgpack_pack_array(&rpk, 2);
    err |= msgpack_pack_bin_with_body(&rpk, payload, payload_len);
    err |= msgpack_pack_bin_with_body(&rpk, sig, MG_SIG_BYTES);
    msgpack_sbuffer_destroy(&sbuf);
    if (err) {
        msgpack_sbuffer_destroy(&rbuf);
        return MG_ERR_NOMEM;
    }
    if (rbuf.size > MG_RECORD_MAX) {
        size_t size = rbuf.size;
        msgpack_sbuffer_destroy(&rbuf);
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "fiche trop volumineuse (%zu octets, maximum %d)",
                          size, MG_RECORD_MAX);
    }
    /* Decoding what we just signed checks it exactly as a peer will. */
    rc = mg_record_decode_trusted((const uint8_t *) rbuf.data, rbuf.size, out,
                                  why);
    msgpack_sbuffer_destroy(&rbuf);
    return rc;
}

static bool s_str_copy(const msgpack_object *o, char *out, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
        return false;
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    return strlen(out) == o->via.str.size; /* no embedded NUL */
}

/* Parses the payload array into `rec` (all but bytes and body). */
static int s_parse_payload(const msgpack_object *p, mg_record_t *rec,
                           const msgpack_object **body, mg_why_t *why)
{
    if (p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size < 1)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "en-tête de fiche mal formé");
    const msgpack_object *f = p->via.array.ptr;
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return mg_why_set(why, MG_ERR_MALFORMED, "version de format absente");
    if (f[0].via.u64 != MG_RECORD_VERSION)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "version de format %llu non prise en charge (attendu %d)",
                          (unsigned long long) f[0].via.u64, MG_RECORD_VERSION);
    if (p->via.array.size != 8)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "en-tête de fiche : 8 éléments attendus, %u reçus",
                          p->via.array.size);
    rec->version = (uint32_t) f[0].via.u64;
    if (!s_str_copy(&f[1], rec->kind, sizeof rec->kind)
        || !s_kind_valid(rec->kind, strlen(rec->kind)))
        return mg_why_set(why, MG_ERR_MALFORMED, "type de fiche invalide");
    if (f[2].type != MSGPACK_OBJECT_BIN || f[2].via.bin.size != MG_KEY_BYTES)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "clé d'auteur invalide (32 octets attendus)");
    memcpy(rec->author, f[2].via.bin.ptr, MG_KEY_BYTES);
    if (!s_str_copy(&f[3], rec->rid, sizeof rec->rid) || !mg_rid_valid(rec->rid))
        return mg_why_set(why, MG_ERR_MALFORMED, "identifiant de fiche invalide");
    if (f[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return mg_why_set(why, MG_ERR_MALFORMED, "compteur de version invalide");
    rec->counter = f[4].via.u64;
    if (f[5].type == MSGPACK_OBJECT_POSITIVE_INTEGER && f[5].via.u64 <= INT64_MAX)
        rec->created = (int64_t) f[5].via.u64;
    else if (f[5].type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        rec->created = f[5].via.i64;
    else
        return mg_why_set(why, MG_ERR_MALFORMED, "date de création invalide");
    if (f[6].type != MSGPACK_OBJECT_BOOLEAN)
        return mg_why_set(why, MG_ERR_MALFORMED, "indicateur de suppression invalide");
    rec->deleted = f[6].via.boolean;
    *body = &f[7];
    return MG_OK;
}

static int s_decode(const uint8_t *data, size_t len, bool verify,
                    mg_record_t **out, mg_why_t *why)
{
    *out = NULL;
    if (len > MG_RECORD_MAX)
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "fiche trop volumineuse (%zu octets, maximum %d)", len,
                          MG_RECORD_MAX);
    int rc = mg_wire_scan(data, len, why);
    if (rc != MG_OK)
        return rc;
    if (s_sodium_ready() != MG_OK)
        return MG_ERR_IO;

    msgpack_unpacked outer;
    msgpack_unpacked_init(&outer);
    msgpack_unpacked inner;
    msgpack_unpacked_init(&inner);
    uint8_t *signed_buf = NULL;
    mg_record_t *rec = calloc(1, sizeof *rec);
    if (!rec) {
        rc = MG_ERR_NOMEM;
        goto done;
    }
    size_t off = 0;
    if (msgpack_unpack_next(&outer, (const char *) data, len, &off)
            != MSGPACK_UNPACK_SUCCESS
        || off != len) {
        rc = mg_why_set(why, MG_ERR_MALFORMED, "fiche mal formée");
        goto done;
    }
    const msgpack_object *o = &outer.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2
        || o->via.array.ptr[0].type != MSGPACK_OBJECT_BIN
        || o->via.array.ptr[1].type != MSGPACK_OBJECT_BIN
        || o->via.array.ptr[1].via.bin.size != MG_SIG_BYTES) {
        rc = mg_why_set(why, MG_ERR_MALFORMED,
                        "fiche mal formée (attendu : [contenu, signature])");
        goto done;
    }
    const uint8_t *payload = (const uint8_t *) o->via.array.ptr[0].via.bin.ptr;
    size_t payload_len = o->via.array.ptr[0].via.bin.size;
    const uint8_t *sig = (const uint8_t *) o->via.array.ptr[1].via.bin.ptr;
    rc = mg_wire_scan(payload, payload_len, why);
    if (rc != MG_OK)
        goto done;
    off = 0;
    if (msgpack_unpack_next(&inner, (const char *) payload, payload_len, &off)
            != MSGPACK_UNPACK_SUCCESS
        || off != payload_len) {
        rc = mg_why_set(why, MG_ERR_MALFORMED, "contenu de fiche mal formé");
        goto done;
    }
    const msgpack_object *body_obj = NULL;
    rc = s_parse_payload(&inner.data, rec, &body_obj, why);
    if (rc != MG_OK)
        goto done;

    /* Signature over context || payload, by the claimed author. */
    if (verify) {
        size_t ctx = sizeof MG_RECORD_SIG_CONTEXT;
        signed_buf = malloc(ctx + payload_len);
        if (!signed_buf) {
            rc = MG_ERR_NOMEM;
            goto done;
        }
        memcpy(signed_buf, MG_RECORD_SIG_CONTEXT, ctx);
        memcpy(signed_buf + ctx, payload, payload_len);
        if (crypto_sign_verify_detached(sig, signed_buf, ctx + payload_len,
                                        rec->author) != 0) {
            rc = mg_why_set(why, MG_ERR_SIGNATURE,
                            "signature invalide : la fiche a été modifiée ou n'a pas été signée par son auteur");
            goto done;
        }
    }
    rc = mg_body_from_object(body_obj, &rec->body, why);
    if (rc != MG_OK)
        goto done;
    rc = s_check_envelope(rec->kind, rec->rid, rec->counter, rec->deleted,
                          rec->body, false, why);
    if (rc != MG_OK)
        goto done;
    rec->bytes = malloc(len);
    if (!rec->bytes) {
        rc = MG_ERR_NOMEM;
        goto done;
    }
    memcpy(rec->bytes, data, len);
    rec->len = len;
done:
    free(signed_buf);
    msgpack_unpacked_destroy(&inner);
    msgpack_unpacked_destroy(&outer);
    if (rc != MG_OK)
        mg_record_destroy(&rec);
    *out = rec;
    return rc;
}

int mg_record_decode(const uint8_t *data, size_t len, mg_record_t **out,
                     mg_why_t *why)
{
    return s_decode(data, len, true, out, why);
}

int mg_record_decode_trusted(const uint8_t *data, size_t len,
                             mg_record_t **out, mg_why_t *why)
{
    return s_decode(data, len, false, out, why);
}

void mg_record_destroy(mg_record_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_record_t *self = *self_p;
    mg_body_destroy(&self->body);
    free(self->bytes);
    free(self);
    *self_p = NULL;
}

const uint8_t *mg_record_bytes(const mg_record_t *self, size_t *len)
{
    *len = self->len;
    return self->bytes;
}

uint32_t mg_record_version(const mg_record_t *self) { return self->version; }
const char *mg_record_kind(const mg_record_t *self) { return self->kind; }
const uint8_t *mg_record_author(const mg_record_t *self) { return self->author; }
const char *mg_record_rid(const mg_record_t *self) { return self->rid; }
uint64_t mg_record_counter(const mg_record_t *self) { return self->counter; }
int64_t mg_record_created(const mg_record_t *self) { return self->created; }
bool mg_record_deleted(const mg_record_t *self) { return self->deleted; }
const mg_body_t *mg_record_body(const mg_record_t *self) { return self->body; }
