/*  mg_json.c - record bodies to and from JSON (jansson).

    A body maps onto a flat JSON object: strings, lists of strings and
    numbers are plain JSON; every other value (RAW: fields this version
    does not know, or structured values such as an import's "non_mappe")
    goes through msgpack-c in both directions. Conversions never trust
    their input: RAW bytes are scanned (mg_wire_scan) before msgpack-c
    sees them, and nesting is bounded both ways.
*/
#include "mg_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "mg_offer.h"
#include "mg_text.h"
#include "mg_wire.h"

/* JSON -> RAW: a body field is at depth 3 of a record (record, payload,
   body), so a value may nest MG_WIRE_DEPTH_MAX - 3 more levels before
   peers refuse the record. */
#define S_JSON_DEPTH_MAX (MG_WIRE_DEPTH_MAX - 3)

/* Integers beyond 2^53 are not exact in a double: keep them integral in
   JSON only up to there. */
#define S_EXACT_INT 9007199254740992.0

/* ---------------------------------------------------------------------
   msgpack -> JSON
   --------------------------------------------------------------------- */

static json_t *s_hex_string(const void *data, size_t len)
{
    char *hex = malloc(2 * len + 1);
    if (!hex)
        return NULL;
    mg_hex_encode((const uint8_t *) data, len, hex);
    json_t *s = json_string(hex);
    free(hex);
    return s;
}

static json_t *s_number(double v)
{
    /* JSON has no NaN or infinities. */
    if (!isfinite(v))
        return json_null();
    /* The range test comes first, so that the cast is defined. */
    if (v >= -S_EXACT_INT && v <= S_EXACT_INT && v == (double) (int64_t) v
        && !(v == 0 && signbit(v)))
        return json_integer((json_int_t) v);
    return json_real(v);
}

static json_t *s_from_msgpack(const msgpack_object *o, int depth);

/* A map key as a JSON object key: strings as they are, anything else as
   its compact JSON text. Caller frees. */
static char *s_key_text(const msgpack_object *k, int depth)
{
    if (k->type == MSGPACK_OBJECT_STR
        && mg_utf8_valid(k->via.str.ptr, k->via.str.size)) {
        char *s = malloc(k->via.str.size + 1);
        if (s) {
            memcpy(s, k->via.str.ptr, k->via.str.size);
            s[k->via.str.size] = '\0';
        }
        return s;
    }
    json_t *j = s_from_msgpack(k, depth);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return s;
}

static json_t *s_from_msgpack(const msgpack_object *o, int depth)
{
    if (depth > MG_WIRE_DEPTH_MAX)
        return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t) INT64_MAX)
            return json_real((double) o->via.u64);
        return json_integer((json_int_t) o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t) o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
    case MSGPACK_OBJECT_STR:
        if (mg_utf8_valid(o->via.str.ptr, o->via.str.size))
            return json_stringn(o->via.str.ptr, o->via.str.size);
        return s_hex_string(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return s_hex_string(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return s_hex_string(o->via.ext.ptr, o->via.ext.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *item = s_from_msgpack(&o->via.array.ptr[i], depth + 1);
            if (!item || json_array_append_new(a, item) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            char *key = s_key_text(&o->via.map.ptr[i].key, depth + 1);
            json_t *val = key ? s_from_msgpack(&o->via.map.ptr[i].val, depth + 1)
                              : NULL;
            /* A repeated key keeps its last value, as JSON parsers do. */
            if (!val || json_object_set_new(m, key, val) != 0) {
                free(key);
                json_decref(m);
                return NULL;
            }
            free(key);
        }
        return m;
    }
    }
    return NULL;
}

/* Converts one complete msgpack value (e.g. a RAW field) to JSON, or
   returns NULL when the bytes are not exactly one well-formed value. */
static json_t *s_raw_to_json(const uint8_t *data, size_t len)
{
    if (mg_wire_scan(data, len, NULL) != MG_OK)
        return NULL;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    json_t *j = NULL;
    if (msgpack_unpack_next(&u, (const char *) data, len, &off)
            == MSGPACK_UNPACK_SUCCESS
        && off == len)
        j = s_from_msgpack(&u.data, 0);
    msgpack_unpacked_destroy(&u);
    return j;
}

json_t *mg_body_to_json(const mg_body_t *body)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    for (size_t i = 0; i < mg_body_count(body); i++) {
        const char *key = mg_body_key_at(body, i);
        json_t *val = NULL;
        switch (mg_body_type_at(body, i)) {
        case MG_VAL_STR: val = json_string(mg_body_str(body, key)); break;
        case MG_VAL_LIST: {
            const char *const *items;
            size_t n = mg_body_list(body, key, &items);
            val = json_array();
            for (size_t k = 0; val && k < n; k++)
                if (json_array_append_new(val, json_string(items[k])) != 0) {
                    json_decref(val);
                    val = NULL;
                }
            break;
        }
        case MG_VAL_NUM: {
            double v = 0;
            mg_body_num(body, key, &v);
            val = s_number(v);
            break;
        }
        case MG_VAL_RAW: {
            size_t len = 0;
            const uint8_t *raw = mg_body_raw(body, key, &len);
            val = raw ? s_raw_to_json(raw, len) : NULL;
            /* Bytes that do not decode are shown, not hidden. */
            if (!val && raw)
                val = s_hex_string(raw, len);
            break;
        }
        }
        if (!val || json_object_set_new(obj, key, val) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

/* ---------------------------------------------------------------------
   JSON -> msgpack / body
   --------------------------------------------------------------------- */

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Packs a JSON value. Object keys are packed in bytewise order, so that
   the same JSON always gives the same bytes (bodies compare by bytes).
   Returns MG_OK, MG_ERR_TOO_LARGE (too deep) or MG_ERR_NOMEM. */
static int s_pack_json(msgpack_packer *pk, const json_t *v, int depth)
{
    if (depth > S_JSON_DEPTH_MAX)
        return MG_ERR_TOO_LARGE;
    int err = 0;
    switch (json_typeof(v)) {
    case JSON_NULL: err = msgpack_pack_nil(pk); break;
    case JSON_TRUE: err = msgpack_pack_true(pk); break;
    case JSON_FALSE: err = msgpack_pack_false(pk); break;
    case JSON_INTEGER: err = msgpack_pack_int64(pk, json_integer_value(v)); break;
    case JSON_REAL: err = msgpack_pack_double(pk, json_real_value(v)); break;
    case JSON_STRING:
        err = msgpack_pack_str_with_body(pk, json_string_value(v),
                                         json_string_length(v));
        break;
    case JSON_ARRAY: {
        err = msgpack_pack_array(pk, json_array_size(v));
        for (size_t i = 0; !err && i < json_array_size(v); i++) {
            int rc = s_pack_json(pk, json_array_get(v, i), depth + 1);
            if (rc != MG_OK)
                return rc;
        }
        break;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        const char **keys = calloc(n ? n : 1, sizeof(char *));
        if (!keys)
            return MG_ERR_NOMEM;
        size_t k = 0;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *) v, key, val)
            keys[k++] = key;
        qsort(keys, k, sizeof(char *), s_cmp_str);
        err = msgpack_pack_map(pk, k);
        for (size_t i = 0; !err && i < k; i++) {
            err = msgpack_pack_str_with_body(pk, keys[i], strlen(keys[i]));
            int rc = err ? MG_OK
                         : s_pack_json(pk, json_object_get(v, keys[i]), depth + 1);
            if (rc != MG_OK) {
                free(keys);
                return rc;
            }
        }
        free(keys);
        break;
    }
    }
    return err ? MG_ERR_NOMEM : MG_OK;
}

/* True for a JSON array whose items are all strings (the empty array
   included, as mg_body_decode reads an empty msgpack array). */
static bool s_string_array(const json_t *v)
{
    if (!json_is_array(v))
        return false;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i)))
            return false;
    return true;
}

int mg_json_to_body(const json_t *object, mg_body_t **out, mg_why_t *why)
{
    *out = NULL;
    if (!json_is_object(object))
        return mg_why_set(why, MG_ERR_SCHEMA, "un objet JSON est attendu");
    if (json_object_size(object) > MG_BODY_FIELDS_MAX)
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "trop de champs (%zu, maximum %d)",
                          json_object_size(object), MG_BODY_FIELDS_MAX);
    mg_body_t *body = mg_body_new();
    if (!body)
        return MG_ERR_NOMEM;
    int rc = MG_OK;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *) object, key, v) {
        size_t klen = strlen(key);
        if (klen == 0 || klen > MG_FIELD_NAME_MAX) {
            /* Show the start of the name, cut on a character boundary. */
            size_t cut = klen < 40 ? klen : 40;
            while (cut > 0 && cut < klen && ((unsigned char) key[cut] & 0xC0) == 0x80)
                cut--;
            rc = mg_why_set(why, MG_ERR_SCHEMA,
                            "nom de champ « %.*s%s » : 1 à %d octets attendus",
                            (int) cut, key, cut < klen ? "…" : "",
                            MG_FIELD_NAME_MAX);
            break;
        }
        if (json_is_string(v)) {
            if (json_string_length(v) > MG_STRING_MAX
                || strlen(json_string_value(v)) != json_string_length(v)) {
                rc = mg_why_set(why, MG_ERR_TOO_LARGE,
                                "champ « %s » : texte trop long ou contenant un caractère nul",
                                key);
                break;
            }
            rc = mg_body_set_str(body, key, json_string_value(v));
        } else if (json_is_number(v)) {
            double d = json_number_value(v);
            if (!isfinite(d)) {
                rc = mg_why_set(why, MG_ERR_SCHEMA,
                                "champ « %s » : nombre non fini", key);
                break;
            }
            rc = mg_body_set_num(body, key, d);
        } else if (s_string_array(v)) {
            size_t n = json_array_size(v);
            if (n > MG_LIST_MAX) {
                rc = mg_why_set(why, MG_ERR_TOO_LARGE,
                                "champ « %s » : trop de valeurs (%zu, maximum %d)",
                                key, n, MG_LIST_MAX);
                break;
            }
            const char **items = calloc(n ? n : 1, sizeof(char *));
            if (!items) {
                rc = MG_ERR_NOMEM;
                break;
            }
            for (size_t i = 0; i < n && rc == MG_OK; i++) {
                const json_t *s = json_array_get(v, i);
                items[i] = json_string_value(s);
                if (json_string_length(s) > MG_STRING_MAX
                    || strlen(items[i]) != json_string_length(s))
                    rc = mg_why_set(why, MG_ERR_TOO_LARGE,
                                    "champ « %s » : texte trop long ou contenant un caractère nul",
                                    key);
            }
            if (rc == MG_OK)
                rc = mg_body_set_list(body, key, items, n);
            free(items);
        } else {
            msgpack_sbuffer sbuf;
            msgpack_sbuffer_init(&sbuf);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
            rc = s_pack_json(&pk, v, 0);
            if (rc == MG_ERR_TOO_LARGE)
                mg_why_set(why, rc, "champ « %s » : valeur imbriquée trop profondément (%d niveaux au plus)",
                           key, S_JSON_DEPTH_MAX);
            else if (rc == MG_OK)
                rc = mg_body_set_raw(body, key, (const uint8_t *) sbuf.data,
                                     sbuf.size);
            msgpack_sbuffer_destroy(&sbuf);
        }
        if (rc != MG_OK)
            break;
    }
    if (rc != MG_OK) {
        mg_body_destroy(&body);
        return rc;
    }
    *out = body;
    return MG_OK;
}

/* ---------------------------------------------------------------------
   Records
   --------------------------------------------------------------------- */

void mg_time_iso(int64_t ms, char out[32])
{
    /* Floor division, so that times before 1970 round down too. */
    int64_t secs = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
    time_t t = (time_t) secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)
        || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%lld", (long long) ms);
}

json_t *mg_record_to_json(const mg_record_t *record)
{
    json_t *obj = json_object();
    json_t *body = mg_body_to_json(mg_record_body(record));
    if (!obj || !body) {
        json_decref(obj);
        json_decref(body);
        return NULL;
    }
    char hex[2 * MG_KEY_BYTES + 1];
    mg_hex_encode(mg_record_author(record), MG_KEY_BYTES, hex);
    char when[32];
    mg_time_iso(mg_record_created(record), when);
    int err = json_object_set_new(obj, "id", json_string(mg_record_rid(record)));
    const char *key;
    json_t *val;
    json_object_foreach(body, key, val) {
        if (strcmp(key, "author") == 0 || strcmp(key, "updated") == 0
            || strcmp(key, "id_standard") == 0)
            continue; /* the envelope's own names win (see below) */
        err |= json_object_set(obj, strcmp(key, "id") == 0 ? "id_standard" : key,
                               val);
    }
    err |= json_object_set_new(obj, "author", json_string(hex));
    err |= json_object_set_new(obj, "updated", json_string(when));
    if (mg_record_deleted(record))
        err |= json_object_set_new(obj, "deleted", json_true());
    json_decref(body);
    if (err) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
