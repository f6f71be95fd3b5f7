/*  mg_api.c - the dashboard's JSON API (docs/api.md).

    Two ways to answer, both sharing the command line's code:
      - offers and the profile: the fields of a JSON body go through
        mg_field_set_text (tools/mg_fields.c), the function `maillage
        offer add --CHAMP VALEUR` uses, then mg_node_author signs them;
      - events, replies, notes and the analyses: the API runs the very
        command function of the CLI (mg_cmd_event, mg_cmd_rsvp,
        mg_cmd_overlaps, ...) with an argv built from whitelisted
        parameters and takes its --json result and its error message
        through a thread-local capture (tools/mg_capture.h).
    Each request opens the node (identity + its own SQLite connection) and
    closes it before answering.
*/
#include "mg_api.h"

#include <csv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

#include "mg_capture.h"
#include "mg_cli.h"
#include "mg_cmd_analysis.h"
#include "mg_cmd_events.h"
#include "mg_fields.h"
#include "mg_ics.h"
#include "mg_json.h"
#include "mg_node.h"
#include "mg_offer.h"
#include "mg_text.h"

/* Most options an argv built for a command holds (each with its value). */
#define S_ARGV_MAX 64
/* Offers per page of GET /api/offers: default and most. */
#define S_PAGE_DEFAULT 100
#define S_PAGE_MAX 1000

/* ------------------------------------------------------------------ */
/* Replies                                                              */

static void s_json_reply(mg_api_rep_t *rep, int status, json_t *j)
{
    rep->status = status;
    rep->type = "application/json";
    rep->body = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) : NULL;
    rep->len = rep->body ? strlen(rep->body) : 0;
    json_decref(j);
    if (!rep->body) {
        rep->status = 500;
        rep->body = strdup("{\"error\": \"mémoire insuffisante\"}");
        rep->len = rep->body ? strlen(rep->body) : 0;
    }
}

void mg_api_error(mg_api_rep_t *rep, int status, const char *message)
{
    free(rep->body);
    memset(rep, 0, sizeof *rep);
    s_json_reply(rep, status, json_pack("{s:s}", "error", message ? message : "erreur"));
}

/* The HTTP status of a failure code. */
static int s_status_of(int rc)
{
    switch (rc) {
    case MG_ERR_NOT_FOUND: return 404;
    case MG_ERR_FORBIDDEN:
    case MG_ERR_PERM: return 403;
    case MG_ERR_EXISTS: return 409;
    case MG_ERR_NOMEM:
    case MG_ERR_DB:
    case MG_ERR_IO:
    case MG_ERR_BUSY: return 500;
    default: return 400;
    }
}

static void s_fail(mg_api_rep_t *rep, int rc, const mg_why_t *why, const char *prefix)
{
    char msg[1200];
    const char *text = why && why->text[0] ? why->text : mg_strerror(rc);
    if (prefix)
        snprintf(msg, sizeof msg, "%s : %s", prefix, text);
    else
        snprintf(msg, sizeof msg, "%s", text);
    mg_api_error(rep, s_status_of(rc), msg);
}

static void s_method_not_allowed(mg_api_rep_t *rep, const char *allow)
{
    mg_api_error(rep, 405, "méthode non permise pour cette adresse");
    rep->allow = allow;
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static const char *s_arg(const mg_api_req_t *req, const char *name)
{
    const char *v = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

static bool s_flag(const mg_api_req_t *req, const char *name)
{
    const char *v = s_arg(req, name);
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "oui") == 0);
}

/* The request body as a JSON object; NULL after setting a 400. An empty
   body is an empty object. */
static json_t *s_body(const mg_api_req_t *req, mg_api_rep_t *rep)
{
    if (req->body_len == 0)
        return json_object();
    json_error_t err;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        char msg[400];
        snprintf(msg, sizeof msg, "JSON invalide (ligne %d, colonne %d) : %s", err.line,
                 err.column, err.text);
        mg_api_error(rep, 400, msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        mg_api_error(rep, 400, "le corps de la requête doit être un objet JSON { … }");
        return NULL;
    }
    return j;
}

static bool s_open(mg_api_t *api, mg_node_ctx_t *ctx, mg_api_rep_t *rep)
{
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_node_open(ctx, api->dir, &why);
    if (rc != MG_OK) {
        mg_node_close(ctx);
        s_fail(rep, rc, &why, NULL);
        return false;
    }
    return true;
}

/* The start of a handler that writes: the request's JSON body when
   `with_body` (else *jb stays NULL), then the node opened. False, with
   the answer given, when either fails. */
static bool s_begin(mg_api_t *api, const mg_api_req_t *req, mg_api_rep_t *rep,
                    bool with_body, json_t **jb, mg_node_ctx_t *ctx)
{
    *jb = NULL;
    if (with_body && !(*jb = s_body(req, rep)))
        return false;
    if (!s_open(api, ctx, rep)) {
        json_decref(*jb);
        *jb = NULL;
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Running a command of the CLI                                         */

typedef struct {
    const char *v[S_ARGV_MAX + 1];
    int n;
    bool overflow;
} s_argv_t;

static void s_push(s_argv_t *a, const char *s)
{
    if (a->n < S_ARGV_MAX)
        a->v[a->n++] = s;
    else
        a->overflow = true;
    a->v[a->n] = NULL;
}

/* Pushes "--option VALUE" when the query has `param`. */
static void s_push_arg(s_argv_t *a, const mg_api_req_t *req, const char *param,
                       const char *option)
{
    const char *v = s_arg(req, param);
    if (v) {
        s_push(a, option);
        s_push(a, v);
    }
}

typedef int (s_cmd_fn)(int argc, char **argv, const char *dir);

/* Runs `cmd` with `a` (argv[0] is the command's name); on success returns
   true with its --json result in *out (may be NULL when it printed none);
   on failure sets the error reply and returns false. */
static bool s_run(mg_api_t *api, s_cmd_fn *cmd, s_argv_t *a, json_t **out, mg_api_rep_t *rep)
{
    *out = NULL;
    if (a->overflow) {
        mg_api_error(rep, 400, "trop de paramètres");
        return false;
    }
    mg_capture_t cap;
    mg_capture_begin(&cap);
    int status = cmd(a->n, (char **) a->v, api->dir);
    mg_capture_end(&cap);
    if (status == 0 || (status == 1 && cap.json && !cap.rc)) {
        /* `check` exits 1 when something is missing: a result, not a failure. */
        *out = cap.json;
        cap.json = NULL;
        return true;
    }
    int code = cap.rc ? s_status_of(cap.rc) : 400;
    mg_api_error(rep, code, cap.error[0] ? cap.error : "requête refusée");
    mg_capture_clear(&cap);
    return false;
}

/* Runs `cmd` and replies with its JSON, wrapped as {key: result} when key
   is not NULL. */
static void s_run_reply(mg_api_t *api, s_cmd_fn *cmd, s_argv_t *a, const char *key,
                        int status, mg_api_rep_t *rep)
{
    json_t *j = NULL;
    if (!s_run(api, cmd, a, &j, rep))
        return;
    if (!j)
        j = key ? json_array() : json_object();
    if (key)
        j = json_pack("{s:o}", key, j);
    s_json_reply(rep, status, j);
}

/* A JSON value given for a CLI option, as text: strings as they are,
   numbers in full, lists of strings joined by `sep`. NULL (with a 400)
   for anything else. Caller frees. */
static char *s_text_of(const char *key, json_t *v, char sep, mg_api_rep_t *rep)
{
    char buf[64];
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long) json_integer_value(v));
        return strdup(buf);
    }
    if (json_is_real(v)) {
        snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        return strdup(buf);
    }
    if (json_is_array(v)) {
        size_t len = 1;
        json_t *item;
        size_t i;
        json_array_foreach(v, i, item) {
            if (!json_is_string(item))
                goto bad;
            len += strlen(json_string_value(item)) + 1;
        }
        char *s = malloc(len);
        if (!s)
            return NULL;
        s[0] = '\0';
        char *p = s;
        json_array_foreach(v, i, item) {
            if (i)
                *p++ = sep;
            size_t n = strlen(json_string_value(item));
            memcpy(p, json_string_value(item), n);
            p += n;
            *p = '\0';
        }
        return s;
    }
bad:;
    char msg[300];
    snprintf(msg, sizeof msg,
             "%s : type de valeur incorrect (texte, nombre ou liste de textes attendus)", key);
    mg_api_error(rep, 400, msg);
    return NULL;
}

/* Strings an argv points to, freed together. */
typedef struct {
    char *s[S_ARGV_MAX];
    int n;
} s_pool_t;

static const char *s_keep(s_pool_t *p, char *s)
{
    if (s && p->n < S_ARGV_MAX)
        p->s[p->n++] = s;
    else
        free(s), s = NULL;
    return s;
}

static void s_pool_free(s_pool_t *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->s[i]);
    p->n = 0;
}

/* Maps the keys of a JSON body onto CLI options: map[i][0] is the JSON
   key, map[i][1] the option. Unknown keys are refused (400), so no
   option outside the list (such as --file) can ever be reached. */
static bool s_push_body(s_argv_t *a, s_pool_t *pool, json_t *body,
                        const char *const (*map)[2], char sep, mg_api_rep_t *rep)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        const char *option = NULL;
        for (size_t i = 0; map[i][0]; i++)
            if (strcmp(map[i][0], key) == 0)
                option = map[i][1];
        if (!option) {
            char msg[300];
            snprintf(msg, sizeof msg, "champ inconnu : %s", key);
            mg_api_error(rep, 400, msg);
            return false;
        }
        if (json_is_null(v))
            continue;
        /* Options without a value (--undo) take a boolean, and only they:
           a value-less "--title" would swallow the next option. */
        bool flag = strcmp(option, "--undo") == 0;
        if (flag != json_is_boolean(v)) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s : type de valeur incorrect (%s attendu)", key,
                     flag ? "true ou false" : "texte, nombre ou liste de textes");
            mg_api_error(rep, 400, msg);
            return false;
        }
        if (flag) {
            if (json_is_true(v))
                s_push(a, option);
            continue;
        }
        const char *text = s_keep(pool, s_text_of(key, v, sep, rep));
        if (!text)
            return false;
        s_push(a, option);
        s_push(a, text);
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Offers and the profile                                               */

static json_t *s_offer_json(mg_node_ctx_t *ctx, const mg_record_t *rec)
{
    char hex[65], when[32];
    mg_hex_encode(mg_record_author(rec), 32, hex);
    mg_time_iso(mg_record_created(rec), when);
    char *name = mg_author_name(ctx->store, mg_record_author(rec));
    json_t *fields = mg_body_to_json(mg_record_body(rec));
    json_t *o = json_pack("{s:s,s:s,s:s?,s:b,s:s,s:I,s:o}", "id", mg_record_rid(rec),
                          "author", hex, "author_name", name, "mine",
                          memcmp(mg_record_author(rec), ctx->id.pk, 32) == 0, "updated",
                          when, "version", (json_int_t) mg_record_counter(rec), "fields",
                          fields ? fields : json_object());
    free(name);
    return o;
}

/* Applies {"fields": {...}} to `body` with the CLI's checks. Returns
   false with the reply set. */
static bool s_apply_fields(json_t *req_body, mg_body_t *body, bool profile,
                           mg_api_rep_t *rep)
{
    json_t *fields = json_object_get(req_body, "fields");
    if (!json_is_object(fields)) {
        mg_api_error(rep, 400, "indiquez les champs : {\"fields\": {\"nom\": \"…\", …}}");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(req_body, key, v) {
        if (strcmp(key, "fields") != 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "champ inconnu : %s", key);
            mg_api_error(rep, 400, msg);
            return false;
        }
    }
    json_object_foreach(fields, key, v) {
        const mg_field_t *f = mg_offer_field(key);
        if (!f) {
            char msg[300];
            snprintf(msg, sizeof msg, "champ inconnu : %s", key);
            mg_api_error(rep, 400, msg);
            return false;
        }
        if (profile && strcmp(key, "id") == 0) {
            mg_api_error(rep, 400, "champ inconnu : id");
            return false;
        }
        if (json_is_null(v)) {
            mg_body_remove(body, key);
            continue;
        }
        char *text = s_text_of(key, v, '|', rep);
        if (!text)
            return false;
        mg_why_t why;
        mg_why_clear(&why);
        int rc = mg_field_set_text(body, f, text, &why);
        free(text);
        if (rc != MG_OK) {
            s_fail(rep, rc, &why, "valeur refusée");
            return false;
        }
    }
    return true;
}

/* Replies with the stored record (author, rid) as an offer object. */
static void s_reply_record(mg_node_ctx_t *ctx, const uint8_t *author, const char *rid,
                           int status, mg_api_rep_t *rep)
{
    mg_why_t why;
    mg_why_clear(&why);
    mg_record_t *rec = NULL;
    int rc = mg_store_get(ctx->store, author, rid, &rec, &why);
    if (rc == MG_OK && mg_record_deleted(rec)) {
        mg_record_destroy(&rec);
        rc = mg_why_set(&why, MG_ERR_NOT_FOUND, "cette fiche a été supprimée");
    }
    if (rc != MG_OK) {
        s_fail(rep, rc, &why, NULL);
        return;
    }
    s_json_reply(rep, status, s_offer_json(ctx, rec));
    mg_record_destroy(&rec);
}

static void s_profile(mg_api_t *api, const mg_api_req_t *req, mg_api_rep_t *rep)
{
    bool put = strcmp(req->method, "PUT") == 0;
    if (!put && strcmp(req->method, "GET") != 0)
        return s_method_not_allowed(rep, "GET, PUT");
    json_t *jb;
    mg_node_ctx_t ctx;
    if (!s_begin(api, req, rep, put, &jb, &ctx))
        return;
    if (put) {
        /* As `maillage profile set`. */
        mg_why_t why;
        mg_why_clear(&why);
        mg_body_t *body = NULL;
        int rc = mg_profile_load(&ctx, &body, &why);
        if (rc != MG_OK)
            s_fail(rep, rc, &why, NULL);
        else if (s_apply_fields(jb, body, true, rep)) {
            rc = mg_node_author(&ctx, "profile", "profile", false, body, &why);
            if (rc == MG_OK && mg_body_str(body, "nom"))
                rc = mg_store_meta_set(ctx.store, "name", mg_body_str(body, "nom"), &why);
            if (rc == MG_OK)
                s_reply_record(&ctx, ctx.id.pk, "profile", 200, rep);
            else
                s_fail(rep, rc, &why, "profile set");
        }
        mg_body_destroy(&body);
    } else {
        s_reply_record(&ctx, ctx.id.pk, "profile", 200, rep);
    }
    json_decref(jb);
    mg_node_close(&ctx);
}

typedef struct {
    mg_node_ctx_t *ctx;
    json_t *array;
    const char *modalite;    /* folded, or NULL */
    char **words;            /* folded words of q, NULL-terminated, or NULL */
    size_t total, offset, limit;
} s_offers_t;

static bool s_list_has_folded(const mg_body_t *b, const char *key, const char *folded)
{
    const char *const *items = NULL;
    size_t n = mg_body_list(b, key, &items);
    for (size_t i = 0; i < n; i++) {
        char *f = mg_fold(items[i]);
        bool eq = f && strcmp(f, folded) == 0;
        free(f);
        if (eq)
            return true;
    }
    return false;
}

static bool s_matches_words(const mg_body_t *b, char **words)
{
    static const char *const keys[] = {"nom", "commune", "presentation_resume",
                                       "presentation_detail", "adresse", NULL};
    size_t len = 1;
    for (size_t i = 0; keys[i]; i++)
        len += (mg_body_str(b, keys[i]) ? strlen(mg_body_str(b, keys[i])) : 0) + 1;
    char *all = malloc(len);
    if (!all)
        return false;
    all[0] = '\0';
    for (size_t i = 0; keys[i]; i++)
        if (mg_body_str(b, keys[i])) {
            strcat(all, mg_body_str(b, keys[i]));
            strcat(all, " ");
        }
    char *folded = mg_fold(all);
    free(all);
    bool ok = folded != NULL;
    for (size_t i = 0; ok && words[i]; i++)
        ok = strstr(folded, words[i]) != NULL;
    free(folded);
    return ok;
}

static int s_offer_each(const mg_record_t *rec, void *arg)
{
    s_offers_t *l = arg;
    const mg_body_t *b = mg_record_body(rec);
    if (l->modalite && !s_list_has_folded(b, "modalites_accompagnement", l->modalite))
        return 0;
    if (l->words && !s_matches_words(b, l->words))
        return 0;
    if (l->total >= l->offset && l->total < l->offset + l->limit)
        json_array_append_new(l->array, s_offer_json(l->ctx, rec));
    l->total++;
    return 0;
}

static bool s_parse_size(const char *text, size_t max, size_t *out)
{
    if (!text)
        return true;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (!end || *end || end == text || v < 0 || (unsigned long long) v > max)
        return false;
    *out = (size_t) v;
    return true;
}

static void s_offers_list(mg_api_t *api, const mg_api_req_t *req, mg_api_rep_t *rep)
{
    s_offers_t l = {.limit = S_PAGE_DEFAULT};
    if (!s_parse_size(s_arg(req, "limit"), S_PAGE_MAX, &l.limit)
        || !s_parse_size(s_arg(req, "offset"), (size_t) 1 << 40, &l.offset)) {
        mg_api_error(rep, 400, "limit : un nombre de 0 à 1000 ; offset : un nombre positif");
        return;
    }
    mg_offer_query_t q = {0};
    q.service = s_arg(req, "service");
    q.public_ = s_arg(req, "public");
    q.commune = s_arg(req, "commune");
    q.code_postal = s_arg(req, "code_postal");
    q.departement = s_arg(req, "departement");
    mg_node_ctx_t ctx;
    if (!s_open(api, &ctx, rep))
        return;
    if (s_flag(req, "mine"))
        q.author = ctx.id.pk;
    l.ctx = &ctx;
    l.array = json_array();
    char *modalite = s_arg(req, "modalite") ? mg_fold(s_arg(req, "modalite")) : NULL;
    l.modalite = modalite;
    char *qtext = s_arg(req, "q") ? mg_fold(s_arg(req, "q")) : NULL;
    char *words[65] = {0};
    if (qtext) {
        size_t n = 0;
        for (char *save = NULL, *w = strtok_r(qtext, " \t\r\n", &save); w && n < 64;
             w = strtok_r(NULL, " \t\r\n", &save))
            words[n++] = w;
        if (n)
            l.words = words;
    }
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_store_offers(ctx.store, &q, s_offer_each, &l, &why);
    if (rc == MG_OK)
        s_json_reply(rep, 200, json_pack("{s:I,s:I,s:I,s:o}", "total", (json_int_t) l.total,
                                         "offset", (json_int_t) l.offset, "limit",
                                         (json_int_t) l.limit, "offers", l.array));
    else {
        json_decref(l.array);
        s_fail(rep, rc, &why, NULL);
    }
    free(modalite);
    free(qtext);
    mg_node_close(&ctx);
}

/* Completes an offer's fields as `maillage offer add` does before it
   signs: the fields inherited from the profile, the standard's id (`rid`
   when none was given), today's date_maj. */
static int s_offer_draft(mg_node_ctx_t *ctx, mg_body_t *body, const char *rid, mg_why_t *why)
{
    char today[11];
    mg_today(today);
    int rc = mg_offer_inherit(ctx, body, why);
    if (rc == MG_OK && mg_body_find(body, "id") < 0)
        rc = mg_body_set_str(body, "id", rid);
    if (rc == MG_OK)
        rc = mg_body_set_str(body, "date_maj", today);
    return rc;
}

static void s_offer_create(mg_api_t *api, const mg_api_req_t *req, mg_api_rep_t *rep)
{
    json_t *jb;
    mg_node_ctx_t ctx;
    if (!s_begin(api, req, rep, true, &jb, &ctx))
        return;
    /* As `maillage offer add`. */
    mg_why_t why;
    mg_why_clear(&why);
    mg_body_t *body = mg_body_new();
    char rid[17];
    mg_new_rid(rid);
    if (!body)
        mg_api_error(rep, 500, "mémoire insuffisante");
    else if (s_apply_fields(jb, body, false, rep)) {
        int rc = s_offer_draft(&ctx, body, rid, &why);
        if (rc == MG_OK)
            rc = mg_node_author(&ctx, "offer", rid, false, body, &why);
        if (rc == MG_OK)
            s_reply_record(&ctx, ctx.id.pk, rid, 201, rep);
        else
            s_fail(rep, rc, &why, "offre refusée");
    }
    mg_body_destroy(&body);
    json_decref(jb);
    mg_node_close(&ctx);
}

static void s_offer_one(mg_api_t *api, const mg_api_req_t *req, const char *id,
                        mg_api_rep_t *rep)
{
    bool get = strcmp(req->method, "GET") == 0, put = strcmp(req->method, "PUT") == 0,
         del = strcmp(req->method, "DELETE") == 0;
    if (!get && !put && !del)
        return s_method_not_allowed(rep, "GET, PUT, DELETE");
    json_t *jb;
    mg_node_ctx_t ctx;
    if (!s_begin(api, req, rep, put, &jb, &ctx))
        return;
    mg_why_t why;
    mg_why_clear(&why);
    uint8_t author[32];
    char rid[MG_RID_MAX + 1];
    int rc = mg_offer_resolve(&ctx, id, !get, author, rid, &why);
    mg_record_t *rec = NULL;
    if (rc == MG_OK)
        rc = mg_store_get(ctx.store, author, rid, &rec, &why);
    if (rc != MG_OK) {
        s_fail(rep, rc, &why, NULL);
    } else if (get) {
        s_json_reply(rep, 200, s_offer_json(&ctx, rec));
    } else if (del) {
        /* As `maillage offer rm`. */
        rc = mg_node_author(&ctx, "offer", rid, true, NULL, &why);
        if (rc == MG_OK)
            s_json_reply(rep, 200, json_pack("{s:s,s:b}", "id", rid, "deleted", 1));
        else
            s_fail(rep, rc, &why, "offer rm");
    } else {
        /* As `maillage offer update`. */
        mg_body_t *body = mg_body_dup(mg_record_body(rec));
        char today[11];
        mg_today(today);
        if (!body)
            mg_api_error(rep, 500, "mémoire insuffisante");
        else if (s_apply_fields(jb, body, false, rep)) {
            rc = mg_body_set_str(body, "date_maj", today);
            if (rc == MG_OK)
                rc = mg_node_author(&ctx, "offer", rid, false, body, &why);
            if (rc == MG_OK)
                s_reply_record(&ctx, ctx.id.pk, rid, 200, rep);
            else
                s_fail(rep, rc, &why, "offre refusée");
        }
        mg_body_destroy(&body);
    }
    mg_record_destroy(&rec);
    json_decref(jb);
    mg_node_close(&ctx);
}

static int s_profile_each(const mg_record_t *rec, void *arg)
{
    s_offers_t *l = arg;
    if (strcmp(mg_record_rid(rec), "profile") == 0)
        json_array_append_new(l->array, s_offer_json(l->ctx, rec));
    return 0;
}

static void s_profiles(mg_api_t *api, mg_api_rep_t *rep)
{
    mg_node_ctx_t ctx;
    if (!s_open(api, &ctx, rep))
        return;
    s_offers_t l = {.ctx = &ctx, .array = json_array()};
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_store_records(ctx.store, "profile", false, s_profile_each, &l, &why);
    if (rc == MG_OK)
        s_json_reply(rep, 200, json_pack("{s:o}", "profiles", l.array));
    else {
        json_decref(l.array);
        s_fail(rep, rc, &why, NULL);
    }
    mg_node_close(&ctx);
}

/* POST /api/check: the eight questions for an offer being edited. */
static void s_check(mg_api_t *api, const mg_api_req_t *req, mg_api_rep_t *rep)
{
    json_t *jb;
    mg_node_ctx_t ctx;
    if (!s_begin(api, req, rep, true, &jb, &ctx))
        return;
    mg_why_t why;
    mg_why_clear(&why);
    mg_body_t *body = mg_body_new(), *profile = NULL;
    if (body && s_apply_fields(jb, body, false, rep)) {
        /* What `maillage offer add` would sign. */
        int rc = s_offer_draft(&ctx, body, "0000000000000000", &why);
        if (rc == MG_OK)
            rc = mg_profile_load(&ctx, &profile, &why);
        if (rc == MG_OK) {
            int64_t now = mg_now_ms();
            mg_check_t chk;
            mg_check_offer(body, profile, now, now, &chk);
            json_t *j = mg_check_json(NULL, body, &chk);
            mg_why_t verr;
            mg_why_clear(&verr);
            /* Whether `maillage offer add` would accept it as it is. */
            int vrc = mg_offer_validate(body, &verr);
            json_object_set_new(j, "valid", json_boolean(vrc == MG_OK));
            json_object_set_new(j, "error", vrc == MG_OK ? json_null()
                                                         : json_string(verr.text));
            s_json_reply(rep, 200, j);
        } else {
            s_fail(rep, rc, &why, NULL);
        }
    } else if (!body) {
        mg_api_error(rep, 500, "mémoire insuffisante");
    }
    mg_body_destroy(&profile);
    mg_body_destroy(&body);
    json_decref(jb);
    mg_node_close(&ctx);
}

/* ------------------------------------------------------------------ */
/* Status, standard, changes, peers, invite, communes                   */

static void s_status(mg_api_t *api, mg_api_rep_t *rep)
{
    mg_node_ctx_t ctx;
    if (!s_open(api, &ctx, rep))
        return;
    mg_why_t why;
    mg_why_clear(&why);
    /* `maillage status --json`, plus the change counter and the server. */
    json_t *j = mg_status_json(&ctx, &why);
    int64_t seq = 0;
    mg_store_last_seq(ctx.store, &seq);
    if (j) {
        json_object_set_new(j, "last_seq", json_integer(seq));
        json_object_set_new(j, "http", json_pack("{s:s,s:b,s:I}", "url", api->url,
                                                 "token_required", api->token_required,
                                                 "communes",
                                                 (json_int_t) (api->communes
                                                                   ? mg_communes_count(api->communes)
                                                                   : 0)));
        s_json_reply(rep, 200, j);
    } else {
        s_fail(rep, MG_ERR_DB, &why, "status");
    }
    mg_node_close(&ctx);
}

static const char *s_type_name(mg_field_type_t t)
{
    switch (t) {
    case MG_FT_STRING: return "string";
    case MG_FT_LIST: return "list";
    case MG_FT_ENUM: return "enum";
    case MG_FT_NUMBER: return "number";
    case MG_FT_DATE: return "date";
    case MG_FT_PATTERN: return "pattern";
    }
    return "string";
}

static void s_standard(mg_api_rep_t *rep)
{
    json_t *fields = json_array();
    for (const mg_field_t *f = mg_offer_fields(); f->name; f++) {
        json_t *values = json_null();
        if (f->values) {
            values = json_array();
            for (size_t i = 0; f->values[i]; i++)
                json_array_append_new(values, json_string(f->values[i]));
        }
        json_array_append_new(
            fields, json_pack("{s:s,s:s,s:b,s:b,s:s?,s:o,s:s?,s:I}", "name", f->name, "type",
                              s_type_name(f->type), "required", f->required, "standard",
                              f->standard, "label", f->title, "values", values, "syntax",
                              f->syntax, "max_chars",
                              (json_int_t) (f->max_chars ? f->max_chars : MG_STRING_MAX)));
    }
    json_t *questions = json_array();
    for (int q = 0; q < MG_Q_COUNT; q++)
        json_array_append_new(questions, json_string(mg_question_text(q)));
    json_t *inherited = json_array();
    for (size_t i = 0; mg_offer_inherited[i]; i++)
        json_array_append_new(inherited, json_string(mg_offer_inherited[i]));
    s_json_reply(rep, 200, json_pack("{s:o,s:o,s:o}", "fields", fields, "questions",
                                     questions, "inherited", inherited));
}

static void s_changes(mg_api_t *api, mg_api_rep_t *rep)
{
    mg_node_ctx_t ctx;
    if (!s_open(api, &ctx, rep))
        return;
    int64_t seq = 0;
    if (mg_store_last_seq(ctx.store, &seq) == MG_OK)
        s_json_reply(rep, 200, json_pack("{s:I}", "last_seq", (json_int_t) seq));
    else
        mg_api_error(rep, 500, "lecture de la base impossible");
    mg_node_close(&ctx);
}

static void s_peers(mg_api_t *api, const mg_api_req_t *req, const char *key,
                    mg_api_rep_t *rep)
{
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0,
         del = strcmp(req->method, "DELETE") == 0;
    if (key ? !del : !(get || post))
        return s_method_not_allowed(rep, key ? "DELETE" : "GET, POST");
    json_t *jb = NULL;
    if (post && !(jb = s_body(req, rep)))
        return;
    const char *invite = jb ? json_string_value(json_object_get(jb, "invite")) : NULL;
    if (post && (!invite || json_object_size(jb) != 1)) {
        json_decref(jb);
        mg_api_error(rep, 400, "indiquez l'invitation : {\"invite\": \"maillage:…\"}");
        return;
    }
    mg_node_ctx_t ctx;
    if (!s_open(api, &ctx, rep)) {
        json_decref(jb);
        return;
    }
    mg_why_t why;
    mg_why_clear(&why);
    int rc = MG_OK;
    if (post) {
        /* As `maillage peer add`. */
        rc = mg_peer_add_invite(ctx.store, ctx.id.pk, invite, true, &why);
    } else if (del) {
        /* As `maillage peer rm`. */
        int removed = 0;
        rc = mg_store_peer_rm(ctx.store, key, &removed, &why);
        if (rc == MG_OK && removed == 0)
            rc = mg_why_set(&why, MG_ERR_NOT_FOUND,
                            "aucun pair ne correspond à « %s » (voir maillage peer list)", key);
    }
    if (rc == MG_OK) {
        json_t *peers = mg_peers_json(ctx.store);
        s_json_reply(rep, post ? 201 : 200,
                     json_pack("{s:o}", "peers", peers ? peers : json_array()));
    } else {
        s_fail(rep, rc, &why, post ? "peer add" : del ? "peer rm" : NULL);
    }
    json_decref(jb);
    mg_node_close(&ctx);
}

static void s_invite(mg_api_t *api, mg_api_rep_t *rep)
{
    mg_node_ctx_t ctx;
    if (!s_open(api, &ctx, rep))
        return;
    /* The endpoints the engine published in the profile, as `maillage
       node` prints them. */
    mg_record_t *profile = NULL;
    const char *const *eps = NULL;
    size_t n = 0;
    if (mg_store_get(ctx.store, ctx.id.pk, "profile", &profile, NULL) == MG_OK)
        n = mg_body_list(mg_record_body(profile), "endpoints", &eps);
    char line[2048];
    if (n && mg_invite_format(ctx.id.pk, eps, n, line, sizeof line) == MG_OK)
        s_json_reply(rep, 200, json_pack("{s:s}", "invite", line));
    else
        mg_api_error(rep, 409,
                     "ce nœud n'écoute sur aucune adresse : pas d'invitation à donner "
                     "(il se connecte seulement à ses pairs)");
    mg_record_destroy(&profile);
    mg_node_close(&ctx);
}

static json_t *s_num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static void s_communes(mg_api_t *api, mg_api_rep_t *rep)
{
    json_t *list = json_array();
    size_t n = api->communes ? mg_communes_count(api->communes) : 0;
    for (size_t i = 0; i < n; i++) {
        const mg_commune_t *c = mg_communes_at(api->communes, i);
        json_t *o = json_pack("{s:s,s:s?,s:s,s:o,s:o,s:o}", "insee", c->insee, "name", c->nom,
                              "postal", c->postal, "lat",
                              c->has_pos ? s_num_or_null(c->lat) : json_null(), "lng",
                              c->has_pos ? s_num_or_null(c->lng) : json_null(), "population",
                              c->population >= 0 ? json_integer(c->population) : json_null());
        json_array_append_new(list, o);
    }
    s_json_reply(rep, 200, json_pack("{s:o}", "communes", list));
}

/* ------------------------------------------------------------------ */
/* Events, replies, notes: the CLI's commands                           */

static const char *const s_event_map[][2] = {
    {"title", "--title"},           {"start", "--start"},
    {"end", "--end"},               {"place", "--place"},
    {"commune", "--commune"},       {"code_postal", "--code-postal"},
    {"code_insee", "--code-insee"}, {"latitude", "--latitude"},
    {"longitude", "--longitude"},   {"online", "--online"},
    {"services", "--services"},     {"publics", "--publics"},
    {"territory", "--territory"},   {"capacity", "--capacity"},
    {"partners", "--partners"},     {"registration", "--registration"},
    {"description", "--description"}, {NULL, NULL}};

static const char *const s_cancel_map[][2] = {
    {"reason", "--reason"}, {"undo", "--undo"}, {NULL, NULL}};

static const char *const s_note_map[][2] = {
    {"title", "--title"}, {"text", "--text"}, {"tags", "--tags"},
    {"services", "--services"}, {"licence", "--licence"}, {NULL, NULL}};

/* GET /api/events/ID as the reply. */
static void s_event_show(mg_api_t *api, const char *id, int status, mg_api_rep_t *rep)
{
    s_argv_t a = {0};
    s_push(&a, "event");
    s_push(&a, "show");
    s_push(&a, id);
    s_push(&a, "--json");
    s_run_reply(api, mg_cmd_event, &a, NULL, status, rep);
}

/* The id a command returned as {"id": ...}. */
static bool s_id_of(json_t *j, char *out, size_t size)
{
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!id)
        return false;
    snprintf(out, size, "%s", id);
    return true;
}

static void s_events(mg_api_t *api, const mg_api_req_t *req, const char *rest,
                     mg_api_rep_t *rep)
{
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0,
         put = strcmp(req->method, "PUT") == 0;
    s_argv_t a = {0};
    s_pool_t pool = {0};
    json_t *jb = NULL, *res = NULL;
    char id[128] = "", action[32] = "";
    if (rest) {
        const char *slash = strchr(rest, '/');
        size_t n = slash ? (size_t) (slash - rest) : strlen(rest);
        if (n == 0 || n >= sizeof id || (slash && strlen(slash + 1) >= sizeof action)) {
            mg_api_error(rep, 404, "adresse inconnue");
            return;
        }
        memcpy(id, rest, n);
        id[n] = '\0';
        if (slash)
            snprintf(action, sizeof action, "%s", slash + 1);
    }
    if (!rest) {
        if (get) {
            const char *scope = s_arg(req, "scope");
            if (!scope || strcmp(scope, "invitations") == 0) {
                s_push(&a, "invitations");
            } else if (strcmp(scope, "mine") == 0 || strcmp(scope, "all") == 0) {
                s_push(&a, "event");
                s_push(&a, "list");
                if (strcmp(scope, "mine") == 0)
                    s_push(&a, "--mine");
                if (s_flag(req, "upcoming"))
                    s_push(&a, "--upcoming");
                if (s_flag(req, "past"))
                    s_push(&a, "--past");
                s_push_arg(&a, req, "service", "--service");
                s_push_arg(&a, req, "search", "--search");
                s_push_arg(&a, req, "territory", "--territory");
            } else {
                mg_api_error(rep, 400, "scope : invitations, mine ou all");
                return;
            }
            s_push(&a, "--json");
            s_run_reply(api, strcmp(a.v[0], "invitations") == 0 ? mg_cmd_invitations
                                                                  : mg_cmd_event,
                        &a, "events", 200, rep);
            return;
        }
        if (!post)
            return s_method_not_allowed(rep, "GET, POST");
        if (!(jb = s_body(req, rep)))
            return;
        s_push(&a, "event");
        s_push(&a, "add");
        if (s_push_body(&a, &pool, jb, s_event_map, ',', rep)) {
            s_push(&a, "--json");
            char rid[64];
            if (s_run(api, mg_cmd_event, &a, &res, rep)) {
                if (s_id_of(res, rid, sizeof rid))
                    s_event_show(api, rid, 201, rep);
                else
                    mg_api_error(rep, 500, "événement enregistré sans identifiant");
            }
        }
    } else if (!action[0]) {
        if (get)
            s_event_show(api, id, 200, rep);
        else if (put) {
            if (!(jb = s_body(req, rep)))
                return;
            s_push(&a, "event");
            s_push(&a, "update");
            s_push(&a, id);
            json_t *unset = json_object_get(jb, "unset");
            bool ok = true;
            if (unset) {
                size_t i;
                json_t *f;
                ok = json_is_array(unset);
                json_array_foreach(unset, i, f) {
                    if (!json_is_string(f)) {
                        ok = false;
                        break;
                    }
                    s_push(&a, "--unset");
                    s_push(&a, json_string_value(f));
                }
                if (!ok)
                    mg_api_error(rep, 400, "unset : une liste de noms de champs");
                json_incref(unset);
                json_object_del(jb, "unset");
            }
            if (ok && s_push_body(&a, &pool, jb, s_event_map, ',', rep)) {
                s_push(&a, "--json");
                if (s_run(api, mg_cmd_event, &a, &res, rep))
                    s_event_show(api, id, 200, rep);
            }
            json_decref(unset);
        } else
            s_method_not_allowed(rep, "GET, PUT");
    } else if (strcmp(action, "cancel") == 0 || strcmp(action, "rsvp") == 0) {
        if (!post) {
            s_method_not_allowed(rep, "POST");
            return;
        }
        if (!(jb = s_body(req, rep)))
            return;
        bool ok = true;
        if (action[0] == 'c') {
            s_push(&a, "event");
            s_push(&a, "cancel");
            s_push(&a, id);
            ok = s_push_body(&a, &pool, jb, s_cancel_map, ',', rep);
        } else {
            s_push(&a, "rsvp");
            s_push(&a, id);
            const char *answer = json_string_value(json_object_get(jb, "answer"));
            static const char *const answers[][2] = {
                {"yes", "--yes"}, {"oui", "--yes"}, {"no", "--no"}, {"non", "--no"},
                {"maybe", "--maybe"}, {"peut-etre", "--maybe"}, {NULL, NULL}};
            const char *opt = NULL;
            for (size_t i = 0; answer && answers[i][0]; i++)
                if (strcmp(answers[i][0], answer) == 0)
                    opt = answers[i][1];
            if (!opt) {
                mg_api_error(rep, 400, "answer : « yes », « no » ou « maybe »");
                ok = false;
            } else {
                s_push(&a, opt);
                json_object_del(jb, "answer");
                static const char *const rsvp_map[][2] = {
                    {"seats", "--seats"}, {"comment", "--comment"}, {NULL, NULL}};
                ok = s_push_body(&a, &pool, jb, rsvp_map, ',', rep);
            }
        }
        if (ok) {
            s_push(&a, "--json");
            if (s_run(api, action[0] == 'c' ? mg_cmd_event : mg_cmd_rsvp, &a, &res, rep))
                s_event_show(api, id, 200, rep);
        }
    } else {
        mg_api_error(rep, 404, "adresse inconnue");
    }
    json_decref(res);
    json_decref(jb);
    s_pool_free(&pool);
}

static void s_notes(mg_api_t *api, const mg_api_req_t *req, const char *id,
                    mg_api_rep_t *rep)
{
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    s_argv_t a = {0};
    s_pool_t pool = {0};
    s_push(&a, "note");
    if (id) {
        if (!get)
            return s_method_not_allowed(rep, "GET");
        s_push(&a, "show");
        s_push(&a, id);
        s_push(&a, "--json");
        s_run_reply(api, mg_cmd_note, &a, NULL, 200, rep);
        return;
    }
    if (get) {
        const char *q = s_arg(req, "q");
        char *copy = q ? strdup(q) : NULL;
        if (copy) {
            s_push(&a, "search");
            /* Words only: "-x" would read as an option. */
            for (char *save = NULL, *w = strtok_r(copy, " \t\r\n", &save); w;
                 w = strtok_r(NULL, " \t\r\n", &save))
                if (w[0] != '-')
                    s_push(&a, w);
            s_push_arg(&a, req, "limit", "--limit");
        } else {
            s_push(&a, "list");
        }
        s_push_arg(&a, req, "tag", "--tag");
        s_push_arg(&a, req, "service", "--service");
        if (s_flag(req, "mine"))
            s_push(&a, "--mine");
        s_push(&a, "--json");
        s_run_reply(api, mg_cmd_note, &a, "notes", 200, rep);
        free(copy);
        return;
    }
    if (!post)
        return s_method_not_allowed(rep, "GET, POST");
    json_t *jb = s_body(req, rep), *res = NULL;
    if (!jb)
        return;
    /* Never let the command read its text from stdin or a file. */
    if (!json_is_string(json_object_get(jb, "text"))) {
        mg_api_error(rep, 400, "indiquez le texte de la note : {\"title\": …, \"text\": …}");
    } else {
        s_push(&a, "add");
        if (s_push_body(&a, &pool, jb, s_note_map, ',', rep)) {
            s_push(&a, "--json");
            char rid[64];
            if (s_run(api, mg_cmd_note, &a, &res, rep)) {
                if (s_id_of(res, rid, sizeof rid)) {
                    s_argv_t b = {0};
                    s_push(&b, "note");
                    s_push(&b, "show");
                    s_push(&b, rid);
                    s_push(&b, "--json");
                    s_run_reply(api, mg_cmd_note, &b, NULL, 201, rep);
                } else
                    mg_api_error(rep, 500, "note enregistrée sans identifiant");
            }
        }
    }
    json_decref(res);
    json_decref(jb);
    s_pool_free(&pool);
}

/* GET /api/events.ics (id NULL) or /api/events/ID.ics. */
static void s_ics(mg_api_t *api, const mg_api_req_t *req, const char *id, mg_api_rep_t *rep)
{
    mg_node_ctx_t ctx;
    if (!s_open(api, &ctx, rep))
        return;
    mg_why_t why;
    mg_why_clear(&why);
    uint8_t author[32];
    char rid[MG_RID_MAX + 1] = "";
    int rc = MG_OK;
    if (id)
        rc = mg_store_resolve(ctx.store, "event", id, NULL, author, rid, &why);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = rc == MG_OK ? open_memstream(&buf, &len) : NULL;
    if (rc == MG_OK && !out)
        rc = MG_ERR_NOMEM;
    if (rc == MG_OK && id) {
        rc = mg_ics_export_one(ctx.store, author, rid, out, &why);
    } else if (rc == MG_OK) {
        /* As `maillage export --format ics --upcoming [--mine]`. */
        mg_event_query_t q = {.upcoming = true};
        if (s_flag(req, "mine"))
            q.mine = ctx.id.pk;
        rc = mg_ics_export(ctx.store, &q, out, NULL, &why);
    }
    if (out)
        fclose(out);
    if (rc == MG_OK) {
        rep->status = 200;
        rep->body = buf;
        rep->len = len;
        rep->type = "text/calendar; charset=utf-8";
        if (id)
            snprintf(rep->filename, sizeof rep->filename, "evenement-%.8s.ics", rid);
        else
            snprintf(rep->filename, sizeof rep->filename, "maillage.ics");
    } else {
        free(buf);
        s_fail(rep, rc, &why, "export");
    }
    mg_node_close(&ctx);
}

/* ------------------------------------------------------------------ */
/* Analyses                                                             */

typedef struct {
    const char *name;
    s_cmd_fn *fn;
    bool geojson;       /* has --geojson */
    bool communes;      /* takes --communes */
    bool needs_communes;
    const char *list;   /* the main list of the JSON result, for CSV */
} s_analysis_t;

static const s_analysis_t s_analyses[] = {
    {"overlaps", mg_cmd_overlaps, true, true, false, "groupes"},
    {"duplicates", mg_cmd_duplicates, false, true, false, "groupes"},
    {"gaps", mg_cmd_gaps, true, true, true, "analyses"},
    {"complementarities", mg_cmd_complementarities, true, true, false, "partenaires"},
    {"diagnostic", mg_cmd_diagnostic, false, true, false, NULL},
    {"check", mg_cmd_check, false, false, false, "offres"},
    {NULL, NULL, false, false, false, NULL}};

/* Query parameter -> option, for every analysis; each command refuses the
   options it does not know with its own message. */
static const char *const s_analysis_map[][2] = {
    {"within", "--within"},         {"service", "--service"},
    {"public", "--public"},         {"departement", "--departement"},
    {"limit", "--limit"},           {"pairs", "--pairs"},
    {"max_m", "--max-m"},           {"structure", "--structure"},
    {"today", "--today"},           {NULL, NULL}};

/* A JSON value as one CSV cell: lists joined with " | ", objects as
   compact JSON. Caller frees. */
static char *s_cell(json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_null(v) || !v)
        return strdup("");
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        char *acc = strdup("");
        json_array_foreach(v, i, item) {
            char *c = s_cell(item);
            size_t n = strlen(acc) + (c ? strlen(c) : 0) + 4;
            char *next = acc && c ? malloc(n) : NULL;
            if (next)
                snprintf(next, n, "%s%s%s", acc, i ? " | " : "", c);
            free(acc);
            free(c);
            acc = next;
            if (!acc)
                return NULL;
        }
        return acc;
    }
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
}

static void s_csv_cell(FILE *out, const char *text, bool first)
{
    if (!first)
        fputc(',', out);
    csv_fwrite(out, text, strlen(text));
}

/* The JSON result's main list as CSV: one row per item, one column per
   key (the union of the items' keys, in order of appearance). */
static char *s_to_csv(json_t *list, size_t *len)
{
    char *buf = NULL;
    FILE *out = open_memstream(&buf, len);
    if (!out)
        return NULL;
    json_t *cols = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        const char *k;
        json_t *v;
        if (!json_is_object(item))
            continue;
        json_object_foreach(item, k, v) {
            bool seen = false;
            for (size_t c = 0; c < json_array_size(cols) && !seen; c++)
                seen = strcmp(json_string_value(json_array_get(cols, c)), k) == 0;
            if (!seen)
                json_array_append_new(cols, json_string(k));
        }
    }
    for (size_t c = 0; c < json_array_size(cols); c++)
        s_csv_cell(out, json_string_value(json_array_get(cols, c)), c == 0);
    fputs("\r\n", out);
    json_array_foreach(list, i, item) {
        for (size_t c = 0; c < json_array_size(cols); c++) {
            char *cell = s_cell(json_is_object(item) ? json_object_get(
                                                           item, json_string_value(
                                                                     json_array_get(cols, c)))
                                                     : (c == 0 ? item : NULL));
            s_csv_cell(out, cell ? cell : "", c == 0);
            free(cell);
        }
        fputs("\r\n", out);
    }
    json_decref(cols);
    fclose(out);
    return buf;
}

static void s_analysis(mg_api_t *api, const mg_api_req_t *req, const char *name,
                       mg_api_rep_t *rep)
{
    if (strcmp(req->method, "GET") != 0)
        return s_method_not_allowed(rep, "GET");
    const s_analysis_t *an = NULL;
    for (size_t i = 0; s_analyses[i].name; i++)
        if (strcmp(s_analyses[i].name, name) == 0)
            an = &s_analyses[i];
    if (!an) {
        mg_api_error(rep, 404, "analyse inconnue (overlaps, duplicates, gaps, "
                               "complementarities, diagnostic, check)");
        return;
    }
    const char *format = s_arg(req, "format");
    if (!format)
        format = "json";
    bool geojson = strcmp(format, "geojson") == 0, csv = strcmp(format, "csv") == 0;
    if (!geojson && !csv && strcmp(format, "json") != 0) {
        mg_api_error(rep, 400, "format : json, csv ou geojson");
        return;
    }
    if (geojson && !an->geojson) {
        mg_api_error(rep, 400, "cette analyse n'a pas de version GeoJSON (format=json ou csv)");
        return;
    }
    if (csv && !an->list) {
        mg_api_error(rep, 400, "cette analyse n'a pas de version CSV (format=json)");
        return;
    }
    if (an->needs_communes && !api->communes_path) {
        mg_api_error(rep, 409, "il faut la table des communes : relancez le nœud avec "
                               "« maillage node --http … --communes FICHIER »");
        return;
    }
    s_argv_t a = {0};
    s_push(&a, an->name);
    for (size_t i = 0; s_analysis_map[i][0]; i++)
        s_push_arg(&a, req, s_analysis_map[i][0], s_analysis_map[i][1]);
    if (s_flag(req, "all"))
        s_push(&a, "--all");
    if (s_flag(req, "national"))
        s_push(&a, "--national");
    if (an->communes && api->communes_path) {
        s_push(&a, "--communes");
        s_push(&a, api->communes_path);
    }
    s_push(&a, geojson ? "--geojson" : "--json");
    json_t *j = NULL;
    if (!s_run(api, an->fn, &a, &j, rep))
        return;
    if (!j) {
        mg_api_error(rep, 500, "l'analyse n'a rien produit");
        return;
    }
    if (geojson) {
        s_json_reply(rep, 200, j);
        rep->type = "application/geo+json";
        snprintf(rep->filename, sizeof rep->filename, "maillage-%s.geojson", an->name);
        return;
    }
    if (csv) {
        json_t *list = json_is_array(j) ? j : json_object_get(j, an->list);
        size_t len = 0;
        char *buf = s_to_csv(json_is_array(list) ? list : NULL, &len);
        json_decref(j);
        if (!buf) {
            mg_api_error(rep, 500, "mémoire insuffisante");
            return;
        }
        rep->status = 200;
        rep->body = buf;
        rep->len = len;
        rep->type = "text/csv; charset=utf-8";
        snprintf(rep->filename, sizeof rep->filename, "maillage-%s.csv", an->name);
        return;
    }
    s_json_reply(rep, 200, j);
}

/* ------------------------------------------------------------------ */
/* Routing                                                              */

/* When path is prefix + "..." returns the rest ("" when equal), else NULL. */
static const char *s_under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0)
        return NULL;
    if (path[n] == '\0')
        return path + n;
    return path[n] == '/' ? path + n + 1 : NULL;
}

/* "ID.ics" (no slash) -> ID. */
static bool s_ics_id(const char *rest, char *id, size_t size)
{
    size_t n = strlen(rest);
    if (n <= 4 || n - 4 >= size || strchr(rest, '/') || strcmp(rest + n - 4, ".ics") != 0)
        return false;
    memcpy(id, rest, n - 4);
    id[n - 4] = '\0';
    return true;
}

void mg_api_handle(mg_api_t *api, const mg_api_req_t *req, mg_api_rep_t *rep)
{
    memset(rep, 0, sizeof *rep);
    const char *p = req->path, *rest;
    char id[128];
    bool get = strcmp(req->method, "GET") == 0;
    if (strcmp(p, "/api/session") == 0) {
        if (!get)
            return s_method_not_allowed(rep, "GET");
        s_json_reply(rep, 200, json_pack("{s:s,s:b,s:b}", "csrf", api->csrf, "token_required",
                                         api->token_required, "read_only", 0));
    } else if (strcmp(p, "/api/changes") == 0) {
        if (!get)
            return s_method_not_allowed(rep, "GET");
        s_changes(api, rep);
    } else if (strcmp(p, "/api/status") == 0) {
        if (!get)
            return s_method_not_allowed(rep, "GET");
        s_status(api, rep);
    } else if (strcmp(p, "/api/standard") == 0) {
        if (!get)
            return s_method_not_allowed(rep, "GET");
        s_standard(rep);
    } else if (strcmp(p, "/api/profile") == 0) {
        s_profile(api, req, rep);
    } else if (strcmp(p, "/api/profiles") == 0) {
        if (!get)
            return s_method_not_allowed(rep, "GET");
        s_profiles(api, rep);
    } else if ((rest = s_under(p, "/api/offers"))) {
        if (!*rest) {
            if (get)
                s_offers_list(api, req, rep);
            else if (strcmp(req->method, "POST") == 0)
                s_offer_create(api, req, rep);
            else
                s_method_not_allowed(rep, "GET, POST");
        } else if (strchr(rest, '/')) {
            mg_api_error(rep, 404, "adresse inconnue");
        } else {
            s_offer_one(api, req, rest, rep);
        }
    } else if (strcmp(p, "/api/check") == 0) {
        if (strcmp(req->method, "POST") != 0)
            return s_method_not_allowed(rep, "POST");
        s_check(api, req, rep);
    } else if (strcmp(p, "/api/events.ics") == 0) {
        if (!get)
            return s_method_not_allowed(rep, "GET");
        s_ics(api, req, NULL, rep);
    } else if ((rest = s_under(p, "/api/events")) && s_ics_id(rest, id, sizeof id)) {
        if (!get)
            return s_method_not_allowed(rep, "GET");
        s_ics(api, req, id, rep);
    } else if ((rest = s_under(p, "/api/events"))) {
        s_events(api, req, *rest ? rest : NULL, rep);
    } else if ((rest = s_under(p, "/api/notes"))) {
        if (strchr(rest, '/'))
            mg_api_error(rep, 404, "adresse inconnue");
        else
            s_notes(api, req, *rest ? rest : NULL, rep);
    } else if ((rest = s_under(p, "/api/peers"))) {
        if (strchr(rest, '/'))
            mg_api_error(rep, 404, "adresse inconnue");
        else
            s_peers(api, req, *rest ? rest : NULL, rep);
    } else if (strcmp(p, "/api/invite") == 0) {
        if (!get)
            return s_method_not_allowed(rep, "GET");
        s_invite(api, rep);
    } else if ((rest = s_under(p, "/api/analysis")) && *rest && !strchr(rest, '/')) {
        s_analysis(api, req, rest, rep);
    } else if (strcmp(p, "/api/communes") == 0) {
        if (!get)
            return s_method_not_allowed(rep, "GET");
        s_communes(api, rep);
    } else {
        mg_api_error(rep, 404, "adresse inconnue");
    }
}
