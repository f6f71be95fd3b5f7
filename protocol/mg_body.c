/*  mg_body.c - record bodies: sorted field maps, msgpack codec. */
#include "mg_body.h"

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "mg_offer.h"
#include "mg_record.h"
#include "mg_text.h"
#include "mg_wire.h"

typedef struct {
    char *key;            /* field name, NUL-terminated UTF-8 */
    mg_val_type_t type;   /* which member of the union is set */
    union {
        char *str;                                   /* MG_VAL_STR */
        struct { char **items; size_t count; } list; /* MG_VAL_LIST */
        double num;                                  /* MG_VAL_NUM */
        struct { uint8_t *bytes; size_t len; } raw;  /* MG_VAL_RAW */
    } u;
} s_field_t;

struct mg_body_t {
    s_field_t *fields; /* sorted by key (strcmp, i.e. bytewise) */
    size_t count;      /* fields in use */
    size_t cap;        /* fields allocated */
};

mg_body_t *mg_body_new(void)
{
    return calloc(1, sizeof(mg_body_t));
}

static void s_field_clear(s_field_t *f)
{
    switch (f->type) {
    case MG_VAL_STR: free(f->u.str); break;
    case MG_VAL_LIST:
        for (size_t i = 0; i < f->u.list.count; i++)
            free(f->u.list.items[i]);
        free(f->u.list.items);
        break;
    case MG_VAL_RAW: free(f->u.raw.bytes); break;
    case MG_VAL_NUM: break;
    }
    memset(&f->u, 0, sizeof f->u);
}

void mg_body_destroy(mg_body_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_body_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        s_field_clear(&self->fields[i]);
        free(self->fields[i].key);
    }
    free(self->fields);
    free(self);
    *self_p = NULL;
}

/* Binary search: index of key, or -(insertion point) - 1. */
static long s_search(const mg_body_t *self, const char *key)
{
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(self->fields[mid].key, key);
        if (c == 0)
            return (long) mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long) lo - 1;
}

/* Returns the slot for key, created empty (type 0) when new; NULL on OOM. */
static s_field_t *s_slot(mg_body_t *self, const char *key)
{
    long at = s_search(self, key);
    if (at >= 0) {
        s_field_clear(&self->fields[at]);
        return &self->fields[at];
    }
    size_t pos = (size_t) (-at - 1);
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        s_field_t *grown = realloc(self->fields, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->fields = grown;
        self->cap = cap;
    }
    char *k = strdup(key);
    if (!k)
        return NULL;
    memmove(&self->fields[pos + 1], &self->fields[pos],
            (self->count - pos) * sizeof(s_field_t));
    self->count++;
    memset(&self->fields[pos], 0, sizeof(s_field_t));
    self->fields[pos].key = k;
    return &self->fields[pos];
}

/* Removes the slot at index (used to undo a half-made slot). */
static void s_remove_at(mg_body_t *self, size_t at)
{
    s_field_clear(&self->fields[at]);
    free(self->fields[at].key);
    memmove(&self->fields[at], &self->fields[at + 1],
            (self->count - at - 1) * sizeof(s_field_t));
    self->count--;
}

int mg_body_set_str(mg_body_t *self, const char *key, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return MG_ERR_NOMEM;
    s_field_t *f = s_slot(self, key);
    if (!f) {
        free(copy);
        return MG_ERR_NOMEM;
    }
    f->type = MG_VAL_STR;
    f->u.str = copy;
    return MG_OK;
}

int mg_body_set_list(mg_body_t *self, const char *key,
                     const char *const *items, size_t count)
{
    char **copy = calloc(count ? count : 1, sizeof(char *));
    if (!copy)
        return MG_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        copy[i] = strdup(items[i]);
        if (!copy[i]) {
            while (i--)
                free(copy[i]);
            free(copy);
            return MG_ERR_NOMEM;
        }
    }
    s_field_t *f = s_slot(self, key);
    if (!f) {
        for (size_t i = 0; i < count; i++)
            free(copy[i]);
        free(copy);
        return MG_ERR_NOMEM;
    }
    f->type = MG_VAL_LIST;
    f->u.list.items = copy;
    f->u.list.count = count;
    return MG_OK;
}

int mg_body_set_list_split(mg_body_t *self, const char *key,
                           const char *joined, char sep)
{
    size_t cap = 1;
    for (const char *p = joined; *p; p++)
        if (*p == sep)
            cap++;
    char *buf = strdup(joined);
    const char **items = calloc(cap, sizeof(char *));
    if (!buf || !items) {
        free(buf);
        free(items);
        return MG_ERR_NOMEM;
    }
    size_t n = 0;
    char *start = buf;
    for (;;) {
        char *end = strchr(start, sep);
        if (end)
            *end = '\0';
        /* Trim ASCII spaces around the item. */
        while (*start == ' ' || *start == '\t')
            start++;
        size_t len = strlen(start);
        while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
            start[--len] = '\0';
        if (len)
            items[n++] = start;
        if (!end)
            break;
        start = end + 1;
    }
    int rc;
    if (n == 0) {
        mg_body_remove(self, key);
        rc = MG_OK;
    } else {
        rc = mg_body_set_list(self, key, items, n);
    }
    free(items);
    free(buf);
    return rc;
}

int mg_body_set_num(mg_body_t *self, const char *key, double value)
{
    s_field_t *f = s_slot(self, key);
    if (!f)
        return MG_ERR_NOMEM;
    f->type = MG_VAL_NUM;
    f->u.num = value;
    return MG_OK;
}

int mg_body_set_raw(mg_body_t *self, const char *key, const uint8_t *msgpack,
                    size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return MG_ERR_NOMEM;
    memcpy(copy, msgpack, len);
    s_field_t *f = s_slot(self, key);
    if (!f) {
        free(copy);
        return MG_ERR_NOMEM;
    }
    f->type = MG_VAL_RAW;
    f->u.raw.bytes = copy;
    f->u.raw.len = len;
    return MG_OK;
}

int mg_body_remove(mg_body_t *self, const char *key)
{
    long at = s_search(self, key);
    if (at < 0)
        return MG_ERR_NOT_FOUND;
    s_remove_at(self, (size_t) at);
    return MG_OK;
}

size_t mg_body_count(const mg_body_t *self)
{
    return self->count;
}

const char *mg_body_key_at(const mg_body_t *self, size_t index)
{
    return index < self->count ? self->fields[index].key : NULL;
}

mg_val_type_t mg_body_type_at(const mg_body_t *self, size_t index)
{
    return index < self->count ? self->fields[index].type : 0;
}

int mg_body_find(const mg_body_t *self, const char *key)
{
    long at = s_search(self, key);
    return at >= 0 ? (int) at : -1;
}

static const s_field_t *s_get(const mg_body_t *self, const char *key,
                              mg_val_type_t type)
{
    long at = s_search(self, key);
    if (at < 0 || self->fields[at].type != type)
        return NULL;
    return &self->fields[at];
}

const char *mg_body_str(const mg_body_t *self, const char *key)
{
    const s_field_t *f = s_get(self, key, MG_VAL_STR);
    return f ? f->u.str : NULL;
}

size_t mg_body_list(const mg_body_t *self, const char *key,
                    const char *const **items)
{
    long at = s_search(self, key);
    if (at < 0) {
        *items = NULL;
        return 0;
    }
    const s_field_t *f = &self->fields[at];
    if (f->type == MG_VAL_LIST) {
        *items = (const char *const *) f->u.list.items;
        return f->u.list.count;
    }
    if (f->type == MG_VAL_STR) {
        *items = (const char *const *) &f->u.str;
        return 1;
    }
    *items = NULL;
    return 0;
}

int mg_body_num(const mg_body_t *self, const char *key, double *value)
{
    const s_field_t *f = s_get(self, key, MG_VAL_NUM);
    if (!f)
        return -1;
    *value = f->u.num;
    return 0;
}

const uint8_t *mg_body_raw(const mg_body_t *self, const char *key, size_t *len)
{
    const s_field_t *f = s_get(self, key, MG_VAL_RAW);
    if (!f)
        return NULL;
    *len = f->u.raw.len;
    return f->u.raw.bytes;
}

static bool s_field_equal(const s_field_t *a, const s_field_t *b)
{
    if (strcmp(a->key, b->key) != 0 || a->type != b->type)
        return false;
    switch (a->type) {
    case MG_VAL_STR: return strcmp(a->u.str, b->u.str) == 0;
    case MG_VAL_NUM: return a->u.num == b->u.num;
    case MG_VAL_RAW:
        return a->u.raw.len == b->u.raw.len
               && memcmp(a->u.raw.bytes, b->u.raw.bytes, a->u.raw.len) == 0;
    case MG_VAL_LIST:
        if (a->u.list.count != b->u.list.count)
            return false;
        for (size_t i = 0; i < a->u.list.count; i++)
            if (strcmp(a->u.list.items[i], b->u.list.items[i]) != 0)
                return false;
        return true;
    }
    return false;
}

bool mg_body_equal(const mg_body_t *a, const mg_body_t *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (!s_field_equal(&a->fields[i], &b->fields[i]))
            return false;
    return true;
}

mg_body_t *mg_body_dup(const mg_body_t *self)
{
    mg_body_t *copy = mg_body_new();
    if (!copy)
        return NULL;
    for (size_t i = 0; i < self->count; i++) {
        const s_field_t *f = &self->fields[i];
        int rc = MG_OK;
        switch (f->type) {
        case MG_VAL_STR: rc = mg_body_set_str(copy, f->key, f->u.str); break;
        case MG_VAL_NUM: rc = mg_body_set_num(copy, f->key, f->u.num); break;
        case MG_VAL_RAW:
            rc = mg_body_set_raw(copy, f->key, f->u.raw.bytes, f->u.raw.len);
            break;
        case MG_VAL_LIST:
            rc = mg_body_set_list(copy, f->key,
                                  (const char *const *) f->u.list.items,
                                  f->u.list.count);
            break;
        }
        if (rc != MG_OK) {
            mg_body_destroy(&copy);
            return NULL;
        }
    }
    return copy;
}

int mg_body_pack(const mg_body_t *self, msgpack_packer *pk)
{
    int err = msgpack_pack_map(pk, self->count);
    for (size_t i = 0; i < self->count && !err; i++) {
        const s_field_t *f = &self->fields[i];
        size_t klen = strlen(f->key);
        err |= msgpack_pack_str_with_body(pk, f->key, klen);
        switch (f->type) {
        case MG_VAL_STR:
            err |= msgpack_pack_str_with_body(pk, f->u.str, strlen(f->u.str));
            break;
        case MG_VAL_NUM: err |= msgpack_pack_double(pk, f->u.num); break;
        case MG_VAL_LIST:
            err |= msgpack_pack_array(pk, f->u.list.count);
            for (size_t k = 0; k < f->u.list.count; k++)
                err |= msgpack_pack_str_with_body(pk, f->u.list.items[k],
                                                  strlen(f->u.list.items[k]));
            break;
        case MG_VAL_RAW:
            /* The bytes are one complete msgpack value: append as is. */
            err |= pk->callback(pk->data, (const char *) f->u.raw.bytes,
                                f->u.raw.len);
            break;
        }
    }
    return err ? MG_ERR_NOMEM : MG_OK;
}

int mg_body_encode(const mg_body_t *self, uint8_t **out, size_t *out_len)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    int rc = mg_body_pack(self, &pk);
    if (rc != MG_OK) {
        msgpack_sbuffer_destroy(&sbuf);
        return rc;
    }
    *out = (uint8_t *) sbuf.data;
    *out_len = sbuf.size;
    if (!*out) { /* an empty sbuffer has no data pointer */
        *out = malloc(1);
        if (!*out)
            return MG_ERR_NOMEM;
    }
    return MG_OK;
}

/* Checks a msgpack string object and returns its length, or -1. */
static int s_check_str(const msgpack_object *o, const char *what,
                       const char *key, mg_why_t *why)
{
    if (o->via.str.size > MG_STRING_MAX)
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "%s « %s » : texte trop long (%u octets, maximum %d)",
                          what, key, o->via.str.size, MG_STRING_MAX);
    if (!mg_utf8_valid(o->via.str.ptr, o->via.str.size))
        return mg_why_set(why, MG_ERR_UTF8,
                          "%s « %s » : texte qui n'est pas de l'UTF-8 valide",
                          what, key);
    return MG_OK;
}

static char *s_strndup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

int mg_body_from_object(const msgpack_object *map, mg_body_t **out,
                        mg_why_t *why)
{
    *out = NULL;
    if (map->type != MSGPACK_OBJECT_MAP)
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "le contenu de la fiche n'est pas un dictionnaire");
    if (map->via.map.size > MG_BODY_FIELDS_MAX)
        return mg_why_set(why, MG_ERR_TOO_LARGE,
                          "trop de champs (%u, maximum %d)", map->via.map.size,
                          MG_BODY_FIELDS_MAX);
    mg_body_t *body = mg_body_new();
    if (!body)
        return MG_ERR_NOMEM;
    int rc = MG_OK;
    for (uint32_t i = 0; i < map->via.map.size && rc == MG_OK; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        const msgpack_object *v = &map->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0
            || k->via.str.size > MG_FIELD_NAME_MAX) {
            rc = mg_why_set(why, MG_ERR_MALFORMED,
                            "nom de champ invalide (doit être un texte de 1 à %d octets)",
                            MG_FIELD_NAME_MAX);
            break;
        }
        if (!mg_utf8_valid(k->via.str.ptr, k->via.str.size)) {
            rc = mg_why_set(why, MG_ERR_UTF8,
                            "nom de champ qui n'est pas de l'UTF-8 valide");
            break;
        }
        char *key = s_strndup(k->via.str.ptr, k->via.str.size);
        if (!key) {
            rc = MG_ERR_NOMEM;
            break;
        }
        if (mg_body_find(body, key) >= 0) {
            rc = mg_why_set(why, MG_ERR_MALFORMED, "champ « %s » en double",
                            key);
            free(key);
            break;
        }
        bool all_str = v->type == MSGPACK_OBJECT_ARRAY;
        for (uint32_t j = 0; all_str && j < v->via.array.size; j++)
            all_str = v->via.array.ptr[j].type == MSGPACK_OBJECT_STR;
        if (v->type == MSGPACK_OBJECT_STR) {
            rc = s_check_str(v, "champ", key, why);
            char *s = rc == MG_OK ? s_strndup(v->via.str.ptr, v->via.str.size)
                                  : NULL;
            if (rc == MG_OK && !s)
                rc = MG_ERR_NOMEM;
            if (rc == MG_OK)
                rc = mg_body_set_str(body, key, s);
            free(s);
        } else if (all_str) {
            if (v->via.array.size > MG_LIST_MAX) {
                rc = mg_why_set(why, MG_ERR_TOO_LARGE,
                                "champ « %s » : trop de valeurs (%u, maximum %d)",
                                key, v->via.array.size, MG_LIST_MAX);
            }
            uint32_t n = v->via.array.size;
            char **items = rc == MG_OK ? calloc(n ? n : 1, sizeof(char *)) : NULL;
            if (rc == MG_OK && !items)
                rc = MG_ERR_NOMEM;
            for (uint32_t j = 0; j < n && rc == MG_OK; j++) {
                rc = s_check_str(&v->via.array.ptr[j], "champ", key, why);
                if (rc == MG_OK) {
                    items[j] = s_strndup(v->via.array.ptr[j].via.str.ptr,
                                         v->via.array.ptr[j].via.str.size);
                    if (!items[j])
                        rc = MG_ERR_NOMEM;
                }
            }
            if (rc == MG_OK)
                rc = mg_body_set_list(body, key, (const char *const *) items, n);
            for (uint32_t j = 0; items && j < n; j++)
                free(items[j]);
            free(items);
        } else if (v->type == MSGPACK_OBJECT_FLOAT64
                   || v->type == MSGPACK_OBJECT_FLOAT32) {
            if (!isfinite(v->via.f64))
                rc = mg_why_set(why, MG_ERR_SCHEMA,
                                "champ « %s » : nombre non fini", key);
            else
                rc = mg_body_set_num(body, key, v->via.f64);
        } else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                   && v->via.u64 <= (1ULL << 53)) {
            rc = mg_body_set_num(body, key, (double) v->via.u64);
        } else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
                   && v->via.i64 >= -(1LL << 53)) {
            rc = mg_body_set_num(body, key, (double) v->via.i64);
        } else {
            /* Anything else is kept as its (re-packed) msgpack bytes. */
            msgpack_sbuffer sbuf;
            msgpack_sbuffer_init(&sbuf);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
            if (msgpack_pack_object(&pk, *v) != 0)
                rc = MG_ERR_NOMEM;
            else
                rc = mg_body_set_raw(body, key, (const uint8_t *) sbuf.data,
                                     sbuf.size);
            msgpack_sbuffer_destroy(&sbuf);
        }
        free(key);
    }
    if (rc != MG_OK) {
        mg_body_destroy(&body);
        return rc;
    }
    *out = body;
    return MG_OK;
}

int mg_body_decode(const uint8_t *data, size_t len, mg_body_t **out,
                   mg_why_t *why)
{
    *out = NULL;
    int rc = mg_wire_scan(data, len, why);
    if (rc != MG_OK)
        return rc;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *) data, len, &off)
            != MSGPACK_UNPACK_SUCCESS
        || off != len) {
        msgpack_unpacked_destroy(&u);
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "contenu msgpack mal formé");
    }
    rc = mg_body_from_object(&u.data, out, why);
    msgpack_unpacked_destroy(&u);
    return rc;
}
