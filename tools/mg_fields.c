/*  mg_fields.c - fields typed by a person, and status (mg_fields.h). */
#include "mg_fields.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mg_text.h"

const char *mg_enum_canonical(const mg_field_t *f, const char *value)
{
    for (size_t i = 0; f->values[i]; i++)
        if (strcmp(f->values[i], value) == 0)
            return f->values[i];
    char *fv = mg_fold(value);
    const char *found = NULL;
    for (size_t i = 0; fv && f->values[i] && !found; i++) {
        char *fl = mg_fold(f->values[i]);
        if (fl && strcmp(fl, fv) == 0)
            found = f->values[i];
        free(fl);
    }
    free(fv);
    return found;
}

int mg_field_set_text(mg_body_t *body, const mg_field_t *f, const char *value,
                       mg_why_t *why)
{
    if (f->type == MG_FT_NUMBER) {
        char *end = NULL;
        errno = 0;
        double v = strtod(value, &end);
        if (errno || !end || *end || end == value)
            return mg_why_set(why, MG_ERR_SCHEMA,
                              "%s : « %s » n'est pas un nombre (exemple : 45.6484)",
                              f->name, value);
        return mg_body_set_num(body, f->name, v);
    }
    if (f->type == MG_FT_LIST || f->type == MG_FT_ENUM) {
        mg_body_t *tmp = mg_body_new();
        if (!tmp)
            return MG_ERR_NOMEM;
        int rc = mg_body_set_list_split(tmp, f->name, value, '|');
        const char *const *items;
        size_t n = mg_body_list(tmp, f->name, &items);
        const char **canon = calloc(n ? n : 1, sizeof(char *));
        for (size_t i = 0; rc == MG_OK && canon && i < n; i++) {
            canon[i] = items[i];
            if (f->type == MG_FT_ENUM) {
                const char *c = mg_enum_canonical(f, items[i]);
                if (c)
                    canon[i] = c;
            }
            rc = mg_field_check_item(f, canon[i], why);
        }
        if (rc == MG_OK && n == 0)
            rc = mg_why_set(why, MG_ERR_SCHEMA,
                            "%s : aucune valeur (utilisez --unset %s pour retirer le champ)",
                            f->name, f->name);
        if (rc == MG_OK)
            rc = canon ? mg_body_set_list(body, f->name, canon, n) : MG_ERR_NOMEM;
        free(canon);
        mg_body_destroy(&tmp);
        return rc;
    }
    int rc = mg_field_check_item(f, value, why);
    if (rc != MG_OK)
        return rc;
    return mg_body_set_str(body, f->name, value);
}

int mg_profile_load(mg_node_ctx_t *ctx, mg_body_t **body, mg_why_t *why)
{
    mg_record_t *rec = NULL;
    int rc = mg_store_get(ctx->store, ctx->id.pk, "profile", &rec, why);
    if (rc == MG_OK && !mg_record_deleted(rec))
        *body = mg_body_dup(mg_record_body(rec));
    else
        *body = mg_body_new();
    mg_record_destroy(&rec);
    return *body ? MG_OK : MG_ERR_NOMEM;
}


const char *const mg_offer_inherited[] = {
    "nom", "pivot", "adresse", "complement_adresse", "commune", "code_postal",
    "code_insee", "latitude", "longitude", "typologie", "telephone",
    "courriels", "site_web", NULL};

int mg_offer_inherit(mg_node_ctx_t *ctx, mg_body_t *body, mg_why_t *why)
{
    mg_body_t *profile = NULL;
    int rc = mg_profile_load(ctx, &profile, why);
    for (size_t i = 0; rc == MG_OK && mg_offer_inherited[i]; i++) {
        const char *k = mg_offer_inherited[i];
        if (mg_body_find(body, k) >= 0)
            continue;
        double num;
        const char *const *items;
        int at = mg_body_find(profile, k);
        if (at < 0)
            continue;
        if (mg_body_num(profile, k, &num) == 0)
            rc = mg_body_set_num(body, k, num);
        else if (mg_body_type_at(profile, (size_t) at) == MG_VAL_LIST) {
            size_t n = mg_body_list(profile, k, &items);
            rc = mg_body_set_list(body, k, items, n);
        } else if (mg_body_str(profile, k))
            rc = mg_body_set_str(body, k, mg_body_str(profile, k));
    }
    mg_body_destroy(&profile);
    return rc;
}

int mg_offer_resolve(mg_node_ctx_t *ctx, const char *prefix, bool mine,
                           uint8_t author[32], char *rid, mg_why_t *why)
{
    int rc = mg_store_resolve(ctx->store, "offer", prefix,
                              mine ? ctx->id.pk : NULL, author, rid, why);
    if (rc == MG_ERR_NOT_FOUND && mine) {
        /* Say why when the offer exists but belongs to someone else. */
        uint8_t other[32];
        char orid[MG_RID_MAX + 1];
        if (mg_store_resolve(ctx->store, "offer", prefix, NULL, other, orid,
                             NULL) == MG_OK)
            return mg_why_set(why, MG_ERR_FORBIDDEN,
                              "l'offre %s appartient à une autre structure : seule son autrice peut la modifier",
                              orid);
    }
    return rc;
}

char *mg_author_name(mg_store_t *store, const uint8_t *author)
{
    mg_record_t *p = NULL;
    char *name = NULL;
    if (mg_store_get(store, author, "profile", &p, NULL) == MG_OK
        && !mg_record_deleted(p)) {
        const char *n = mg_body_str(mg_record_body(p), "nom");
        if (n)
            name = strdup(n);
    }
    mg_record_destroy(&p);
    return name;
}

/* `maillage status --json`: the counts by kind and by author. */
typedef struct {
    mg_node_ctx_t *ctx;
    json_t *json;
} s_status_t;

static int s_status_kind(const mg_count_t *c, void *arg)
{
    s_status_t *st = arg;
    json_object_set_new(json_object_get(st->json, "records"), c->kind,
                        json_pack("{s:I,s:I}", "live", (json_int_t) c->live,
                                  "deleted", (json_int_t) c->tombstones));
    return 0;
}

static int s_status_author(const mg_count_t *c, void *arg)
{
    s_status_t *st = arg;
    char hex[65];
    mg_hex_encode(c->author, 32, hex);
    json_t *authors = json_object_get(st->json, "authors");
    json_t *a = json_object_get(authors, hex);
    if (!a) {
        char *name = mg_author_name(st->ctx->store, c->author);
        a = json_pack("{s:s?,s:b,s:{}}", "name", name, "self",
                      memcmp(c->author, st->ctx->id.pk, 32) == 0, "records");
        json_object_set_new(authors, hex, a);
        free(name);
    }
    json_object_set_new(json_object_get(a, "records"), c->kind, json_integer(c->live));
    return 0;
}

json_t *mg_status_json(mg_node_ctx_t *ctx, mg_why_t *why)
{
    char name[512] = "";
    mg_store_meta_get(ctx->store, "name", name, sizeof name);
    char *pname = mg_author_name(ctx->store, ctx->id.pk);
    char hex[65];
    mg_hex_encode(ctx->id.pk, 32, hex);
    long pid = 0;
    bool running = mg_node_running(ctx->store, &pid, NULL);
    char eps[1024] = "";
    mg_store_meta_get(ctx->store, "node.endpoints", eps, sizeof eps);
    uint8_t fp[MG_FINGERPRINT_BYTES];
    char fphex[2 * MG_FINGERPRINT_BYTES + 1] = "";
    int64_t versions = 0;
    if (mg_store_fingerprint(ctx->store, fp, &versions, NULL) == MG_OK)
        mg_hex_encode(fp, sizeof fp, fphex);
    s_status_t st = {.ctx = ctx};
    st.json = json_pack("{s:s,s:s,s:s,s:{},s:{},s:{s:b,s:I,s:s},s:s,s:I}", "name",
                        pname ? pname : name, "dir", ctx->paths.dir, "public_key", hex,
                        "records", "authors", "node", "running", running, "pid",
                        (json_int_t) (running ? pid : 0), "endpoints", eps,
                        "fingerprint", fphex, "versions", (json_int_t) versions);
    free(pname);
    if (!st.json)
        return NULL;
    json_t *peers = mg_peers_json(ctx->store);
    json_object_set_new(st.json, "peers", peers ? peers : json_array());
    int64_t owed = 0;
    mg_store_offers_pending(ctx->store, &owed);
    json_object_set_new(st.json, "offers_pending", json_integer((json_int_t) owed));
    int rc = mg_store_counts(ctx->store, false, s_status_kind, &st, why);
    if (rc == MG_OK)
        rc = mg_store_counts(ctx->store, true, s_status_author, &st, why);
    if (rc != MG_OK) {
        json_decref(st.json);
        return NULL;
    }
    return st.json;
}
