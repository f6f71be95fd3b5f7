/*  maillage.c - the command line: one program, one subcommand per task.

    Every command works on the node's data folder (--dir, MAILLAGE_DIR or
    the XDG default) with no daemon running: it opens the SQLite store,
    does its work in a transaction, and exits. Messages are in French, for
    the staff of the structures who use it.
*/
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_cli.h"
#include "mg_cmd_analysis.h"
#include "mg_cmd_events.h"
#include "mg_export.h"
#include "mg_fields.h"
#include "mg_import.h"
#include "mg_json.h"
#include "mg_offer.h"
#include "mg_text.h"

#define S_VERSION "0.1.0"

/* The --dir option, wherever it appeared on the command line. */
static const char *s_dir_option = NULL;

/* ------------------------------------------------------------------ */
/* Field options: --code-postal 16000, --services "A|B", --unset champ  */

/* The field named by an option ("--code-postal" -> "code_postal"). */
static const mg_field_t *s_field_option(const char *arg)
{
    if (strncmp(arg, "--", 2) != 0)
        return NULL;
    char name[80];
    snprintf(name, sizeof name, "%s", arg + 2);
    for (char *p = name; *p; p++)
        if (*p == '-')
            *p = '_';
    return mg_offer_field(name);
}

/* Parses field options into `body`. Other options are left for the
   caller: their indexes are returned through `rest` (NULL-terminated). */
static int s_parse_fields(const char *cmd, int argc, char **argv, int first,
                          mg_body_t *body, int *changes, const char **rest,
                          int rest_cap)
{
    int nrest = 0;
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        const mg_field_t *f = s_field_option(arg);
        if (strcmp(arg, "--unset") == 0) {
            const char *name = mg_cli_value(argc, argv, &i);
            if (!name)
                return 2;
            char key[80];
            snprintf(key, sizeof key, "%s", name);
            for (char *p = key; *p; p++)
                if (*p == '-')
                    *p = '_';
            if (!mg_offer_field(key) && strcmp(key, "endpoints") != 0) {
                fprintf(stderr, "maillage : champ inconnu : %s\n", name);
                return 2;
            }
            mg_body_remove(body, key);
            (*changes)++;
        } else if (f) {
            const char *value = mg_cli_value(argc, argv, &i);
            if (!value)
                return 2;
            mg_why_t why;
            mg_why_clear(&why);
            int rc = mg_field_set_text(body, f, value, &why);
            if (rc != MG_OK) {
                mg_cli_fail("valeur refusée", rc, &why);
                return 1;
            }
            (*changes)++;
        } else if (strncmp(arg, "--", 2) == 0 && nrest + 2 < rest_cap
                   && (strcmp(arg, "--json") == 0)) {
            rest[nrest++] = arg;
        } else {
            return mg_cli_unknown(cmd, arg);
        }
    }
    rest[nrest] = NULL;
    return 0;
}

static void s_print_field_help(bool offer)
{
    printf("Champs (nom du standard national, « _ » écrit « - ») :\n");
    for (const mg_field_t *f = mg_offer_fields(); f->name; f++) {
        char opt[64];
        snprintf(opt, sizeof opt, "--%s", f->name);
        for (char *p = opt + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        printf("  %-36s %s%s%s\n", opt, f->title,
               (offer && f->required) ? " [obligatoire]" : "",
               (f->type == MG_FT_LIST || f->type == MG_FT_ENUM)
                   ? " (plusieurs valeurs séparées par « | »)" : "");
        if (f->type == MG_FT_ENUM) {
            printf("  %-36s valeurs : ", "");
            for (size_t i = 0; f->values[i]; i++)
                printf("%s%s", i ? " | " : "", f->values[i]);
            printf("\n");
        }
    }
    printf("  %-36s retire un champ\n", "--unset CHAMP");
}

/* ------------------------------------------------------------------ */
/* init                                                                */

static int s_cmd_init(int argc, char **argv)
{
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage init --name \"Nom de la structure\" [--dir DOSSIER]\n\n"
                   "Crée l'identité du nœud (clé Ed25519, fichier identity.key en mode 0600)\n"
                   "et sa base de données. Ne remplace jamais une identité existante.\n");
            return 0;
        } else if (strcmp(argv[i], "--name") == 0 || strcmp(argv[i], "--nom") == 0) {
            if (!(name = mg_cli_value(argc, argv, &i)))
                return 2;
        } else {
            return mg_cli_unknown("init", argv[i]);
        }
    }
    if (!name || !*name) {
        fprintf(stderr, "maillage : indiquez le nom de la structure : maillage init --name \"Médiathèque de ...\"\n");
        return 2;
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_paths_t paths;
    int rc = mg_paths_resolve(&paths, s_dir_option, &why);
    if (rc != MG_OK)
        return mg_cli_fail("init", rc, &why);
    /* Create the folder (and its parents), private to this user. */
    char tmp[sizeof paths.dir];
    snprintf(tmp, sizeof tmp, "%s", paths.dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0700);
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "maillage : impossible de créer le dossier %s : %s\n",
                paths.dir, strerror(errno));
        return 1;
    }
    mg_node_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.paths = paths;
    rc = mg_identity_create(paths.key_path, &ctx.id, &why);
    if (rc != MG_OK)
        return mg_cli_fail("init", rc, &why);
    rc = mg_store_open(paths.db_path, &ctx.store, &why);
    mg_body_t *body = mg_body_new();
    if (rc == MG_OK)
        rc = body ? mg_body_set_str(body, "nom", name) : MG_ERR_NOMEM;
    if (rc == MG_OK)
        rc = mg_node_author(&ctx, "profile", "profile", false, body, &why);
    if (rc == MG_OK)
        rc = mg_store_meta_set(ctx.store, "name", name, &why);
    mg_body_destroy(&body);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("init", rc, &why);
    }
    char hex[65];
    mg_hex_encode(ctx.id.pk, 32, hex);
    printf("Nœud créé dans %s\n"
           "  Structure    : %s\n"
           "  Clé publique : %s\n\n"
           "Étapes suivantes :\n"
           "  maillage profile set --commune Angoulême --code-postal 16000 --adresse \"...\"\n"
           "  maillage offer add --services \"Aide aux démarches administratives\" ...\n",
           paths.dir, name, hex);
    mg_node_close(&ctx);
    return 0;
}

/* ------------------------------------------------------------------ */
/* status                                                              */

typedef struct {
    mg_node_ctx_t *ctx;
    const uint8_t *last; /* author of the previous row */
    uint8_t last_buf[32];
    bool have_last;
} s_status_t;

static int s_status_kind(const mg_count_t *c, void *arg)
{
    (void) arg;
    printf("  %-10s %6lld", c->kind, (long long) c->live);
    if (c->tombstones)
        printf("  (+%lld supprimées)", (long long) c->tombstones);
    printf("\n");
    return 0;
}

static int s_status_author(const mg_count_t *c, void *arg)
{
    s_status_t *st = arg;
    char hex[65];
    mg_hex_encode(c->author, 32, hex);
    if (!st->have_last || memcmp(st->last_buf, c->author, 32) != 0) {
        char *name = mg_author_name(st->ctx->store, c->author);
        printf("%s  %.12s  %s%s\n", st->have_last ? "\n" : "", hex,
               name ? name : "(structure sans fiche)",
               memcmp(c->author, st->ctx->id.pk, 32) == 0 ? "  [ce nœud]" : "");
        free(name);
        memcpy(st->last_buf, c->author, 32);
        st->have_last = true;
    }
    printf("      %-10s %6lld\n", c->kind, (long long) c->live);
    return 0;
}

static int s_cmd_status(int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage status [--json]\n\n"
                   "Affiche l'identité du nœud et le nombre de fiches, par type et par auteur.\n");
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            return mg_cli_unknown("status", argv[i]);
        }
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, s_dir_option, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("status", rc, &why);
    }
    char name[512] = "";
    mg_store_meta_get(ctx.store, "name", name, sizeof name);
    char *pname = mg_author_name(ctx.store, ctx.id.pk);
    char hex[65];
    mg_hex_encode(ctx.id.pk, 32, hex);
    s_status_t st = {.ctx = &ctx};
    if (json) {
        json_t *j = mg_status_json(&ctx, &why);
        if (j) {
            json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
            printf("\n");
        } else {
            rc = why.text[0] ? MG_ERR_DB : MG_ERR_NOMEM;
        }
        json_decref(j);
    } else {
        long pid = 0;
        int64_t age = 0;
        bool running = mg_node_running(ctx.store, &pid, &age);
        char eps[1024] = "";
        mg_store_meta_get(ctx.store, "node.endpoints", eps, sizeof eps);
        printf("Nœud         : %s\n"
               "Dossier      : %s\n"
               "Clé publique : %s\n",
               pname ? pname : name, ctx.paths.dir, hex);
        if (running)
            printf("Démon        : en marche (processus %ld), écoute %s\n", pid,
                   eps[0] ? eps : "(connexions sortantes seulement)");
        else
            printf("Démon        : arrêté (lancez « maillage node »)\n");
        printf("\nPairs :\n");
        mg_print_peers(ctx.store, false);
        int64_t owed = 0;
        if (mg_store_offers_pending(ctx.store, &owed) == MG_OK && owed > 0)
            printf("Index        : en construction (au plus %lld fiches reçues à indexer)\n",
                   (long long) owed);
        printf("\nFiches par type :\n");
        rc = mg_store_counts(ctx.store, false, s_status_kind, &st, &why);
        if (rc == MG_OK) {
            printf("\nFiches par auteur :\n");
            rc = mg_store_counts(ctx.store, true, s_status_author, &st, &why);
        }
    }
    free(pname);
    mg_node_close(&ctx);
    return rc == MG_OK ? 0 : mg_cli_fail("status", rc, &why);
}

/* ------------------------------------------------------------------ */
/* Showing records                                                     */

static void s_print_json_record(const mg_record_t *rec)
{
    json_t *j = mg_record_to_json(rec);
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    printf("\n");
    json_decref(j);
}

static void s_print_record_text(mg_store_t *store, const mg_record_t *rec,
                                const char *title)
{
    const mg_body_t *body = mg_record_body(rec);
    char hex[65], when[32];
    mg_hex_encode(mg_record_author(rec), 32, hex);
    mg_time_iso(mg_record_created(rec), when);
    char *author = mg_author_name(store, mg_record_author(rec));
    printf("%s %s\n  auteur : %.12s (%s), version %llu du %s\n\n", title,
           mg_record_rid(rec), hex, author ? author : "structure inconnue",
           (unsigned long long) mg_record_counter(rec), when);
    free(author);
    for (const mg_field_t *f = mg_offer_fields(); f->name; f++) {
        if (mg_body_find(body, f->name) < 0)
            continue;
        printf("  %-32s ", f->name);
        mg_print_value(stdout, body, f->name, " | ");
        printf("\n");
    }
    /* Fields this version does not know, or kept from an import. */
    for (size_t i = 0; i < mg_body_count(body); i++) {
        const char *key = mg_body_key_at(body, i);
        if (mg_offer_field(key))
            continue;
        printf("  %-32s ", key);
        if (mg_body_type_at(body, i) == MG_VAL_RAW) {
            json_t *all = mg_body_to_json(body);
            char *s = json_dumps(json_object_get(all, key), JSON_COMPACT);
            printf("%s", s ? s : "");
            free(s);
            json_decref(all);
        } else {
            mg_print_value(stdout, body, key, " | ");
        }
        printf("\n");
    }
}

/* ------------------------------------------------------------------ */
/* profile                                                             */

static int s_cmd_profile(int argc, char **argv)
{
    if (argc < 2 || mg_cli_is_help(argv[1])) {
        printf("Usage :\n"
               "  maillage profile set --CHAMP VALEUR...   décrit la structure\n"
               "  maillage profile show [--json]           affiche la fiche de la structure\n\n"
               "La fiche structure est partagée avec le réseau ; ses champs reprennent ceux\n"
               "du standard national (nom, pivot, adresse, commune, code-postal, ...).\n");
        if (argc >= 2)
            s_print_field_help(false);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    mg_why_t why;
    mg_why_clear(&why);
    if (strcmp(sub, "set") == 0) {
        for (int i = 2; i < argc; i++)
            if (mg_cli_is_help(argv[i])) {
                printf("Usage : maillage profile set --CHAMP VALEUR... [--unset CHAMP]\n\n");
                s_print_field_help(false);
                return 0;
            }
        mg_node_ctx_t ctx;
        int rc = mg_node_open(&ctx, s_dir_option, &why);
        mg_body_t *body = NULL;
        if (rc == MG_OK)
            rc = mg_profile_load(&ctx, &body, &why);
        if (rc != MG_OK) {
            mg_node_close(&ctx);
            return mg_cli_fail("profile set", rc, &why);
        }
        int changes = 0;
        const char *rest[8];
        int prc = s_parse_fields("profile set", argc, argv, 2, body, &changes,
                                 rest, 8);
        if (prc == 0 && changes == 0) {
            fprintf(stderr, "maillage : rien à changer ; voir « maillage profile set --help »\n");
            prc = 2;
        }
        if (prc == 0) {
            rc = mg_node_author(&ctx, "profile", "profile", false, body, &why);
            /* The name peers see in HELLO follows the profile's. */
            if (rc == MG_OK && mg_body_str(body, "nom"))
                rc = mg_store_meta_set(ctx.store, "name", mg_body_str(body, "nom"), &why);
            if (rc == MG_OK)
                printf("Fiche de la structure mise à jour.\n");
            else
                prc = mg_cli_fail("profile set", rc, &why);
        }
        mg_body_destroy(&body);
        mg_node_close(&ctx);
        return prc;
    }
    if (strcmp(sub, "show") == 0) {
        bool json = false;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--json") == 0)
                json = true;
            else if (mg_cli_is_help(argv[i])) {
                printf("Usage : maillage profile show [--json]\n");
                return 0;
            } else
                return mg_cli_unknown("profile show", argv[i]);
        }
        mg_node_ctx_t ctx;
        int rc = mg_node_open(&ctx, s_dir_option, &why);
        mg_record_t *rec = NULL;
        if (rc == MG_OK)
            rc = mg_store_get(ctx.store, ctx.id.pk, "profile", &rec, &why);
        if (rc == MG_OK) {
            if (json)
                s_print_json_record(rec);
            else
                s_print_record_text(ctx.store, rec, "Structure");
        }
        mg_record_destroy(&rec);
        mg_node_close(&ctx);
        return rc == MG_OK ? 0 : mg_cli_fail("profile show", rc, &why);
    }
    fprintf(stderr, "maillage : sous-commande inconnue : profile %s (set, show)\n", sub);
    return 2;
}

/* ------------------------------------------------------------------ */
/* offer                                                               */

static const char *const s_offer_usage =
    "Usage :\n"
    "  maillage offer add --CHAMP VALEUR...          ajoute une offre\n"
    "  maillage offer update ID --CHAMP VALEUR...    modifie une de vos offres\n"
    "  maillage offer rm ID                          supprime une de vos offres\n"
    "  maillage offer show ID [--json]               affiche une offre\n"
    "  maillage offer list [--json] [--mine] [--service S] [--public P]\n"
    "                      [--commune C] [--code-postal CP] [--departement D]\n\n"
    "ID : l'identifiant de l'offre, ou son début s'il est unique (comme git).\n"
    "Les champs absents d'une nouvelle offre (nom, pivot, adresse, commune,\n"
    "code postal, coordonnées, contacts) sont repris de la fiche structure ;\n"
    "date-maj est mise à la date du jour.\n";

static int s_offer_add(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage offer add --CHAMP VALEUR... [--json]\n\n");
            s_print_field_help(true);
            return 0;
        }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, s_dir_option, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("offer add", rc, &why);
    }
    mg_body_t *body = mg_body_new();
    int changes = 0;
    const char *rest[8];
    int prc = s_parse_fields("offer add", argc, argv, 2, body, &changes, rest, 8);
    char rid[17];
    mg_new_rid(rid);
    char today[11];
    mg_today(today);
    if (prc == 0) {
        rc = mg_offer_inherit(&ctx, body, &why);
        if (rc == MG_OK && mg_body_find(body, "id") < 0)
            rc = mg_body_set_str(body, "id", rid);
        if (rc == MG_OK)
            rc = mg_body_set_str(body, "date_maj", today);
        if (rc == MG_OK)
            rc = mg_node_author(&ctx, "offer", rid, false, body, &why);
        if (rc == MG_OK) {
            bool json = rest[0] != NULL;
            if (json)
                printf("{\"id\": \"%s\"}\n", rid);
            else
                printf("Offre ajoutée : %s\n", rid);
        } else {
            prc = mg_cli_fail("offre refusée", rc, &why);
            if (rc == MG_ERR_SCHEMA)
                fprintf(stderr, "Astuce : les champs obligatoires manquants peuvent venir de la fiche structure (maillage profile set ...).\n");
        }
    }
    mg_body_destroy(&body);
    mg_node_close(&ctx);
    return prc;
}

static int s_offer_update(int argc, char **argv, bool remove)
{
    const char *cmd = remove ? "offer rm" : "offer update";
    if (argc < 3 || mg_cli_is_help(argv[2])) {
        printf("Usage : maillage %s ID%s\n", cmd, remove ? "" : " --CHAMP VALEUR... [--unset CHAMP]");
        if (!remove && argc >= 3)
            s_print_field_help(true);
        return argc < 3 ? 2 : 0;
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, s_dir_option, &why);
    uint8_t author[32];
    char rid[MG_RID_MAX + 1];
    if (rc == MG_OK)
        rc = mg_offer_resolve(&ctx, argv[2], true, author, rid, &why);
    mg_record_t *rec = NULL;
    if (rc == MG_OK)
        rc = mg_store_get(ctx.store, author, rid, &rec, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail(cmd, rc, &why);
    }
    int prc = 0;
    if (remove) {
        if (argc > 3)
            prc = mg_cli_unknown(cmd, argv[3]);
        else {
            rc = mg_node_author(&ctx, "offer", rid, true, NULL, &why);
            if (rc == MG_OK)
                printf("Offre supprimée : %s\n", rid);
            else
                prc = mg_cli_fail(cmd, rc, &why);
        }
    } else {
        mg_body_t *body = mg_body_dup(mg_record_body(rec));
        int changes = 0;
        const char *rest[8];
        prc = body ? s_parse_fields(cmd, argc, argv, 3, body, &changes, rest, 8) : 1;
        if (prc == 0 && changes == 0) {
            fprintf(stderr, "maillage : rien à changer ; voir « maillage offer update --help »\n");
            prc = 2;
        }
        char today[11];
        mg_today(today);
        if (prc == 0) {
            rc = mg_body_set_str(body, "date_maj", today);
            if (rc == MG_OK)
                rc = mg_node_author(&ctx, "offer", rid, false, body, &why);
            if (rc == MG_OK)
                printf("Offre mise à jour : %s\n", rid);
            else
                prc = mg_cli_fail("offre refusée", rc, &why);
        }
        mg_body_destroy(&body);
    }
    mg_record_destroy(&rec);
    mg_node_close(&ctx);
    return prc;
}

static int s_offer_show(int argc, char **argv)
{
    const char *id = NULL;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage offer show ID [--json]\n");
            return 0;
        } else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (!id && argv[i][0] != '-')
            id = argv[i];
        else
            return mg_cli_unknown("offer show", argv[i]);
    }
    if (!id) {
        fprintf(stderr, "maillage : indiquez l'identifiant de l'offre (maillage offer list les montre)\n");
        return 2;
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, s_dir_option, &why);
    uint8_t author[32];
    char rid[MG_RID_MAX + 1];
    mg_record_t *rec = NULL;
    if (rc == MG_OK)
        rc = mg_offer_resolve(&ctx, id, false, author, rid, &why);
    if (rc == MG_OK)
        rc = mg_store_get(ctx.store, author, rid, &rec, &why);
    if (rc == MG_OK) {
        if (json)
            s_print_json_record(rec);
        else
            s_print_record_text(ctx.store, rec, "Offre");
    }
    mg_record_destroy(&rec);
    mg_node_close(&ctx);
    return rc == MG_OK ? 0 : mg_cli_fail("offer show", rc, &why);
}

typedef struct {
    json_t *array; /* --json output, else NULL */
    size_t count;  /* offers listed */
} s_list_t;

static int s_list_one(const mg_record_t *rec, void *arg)
{
    s_list_t *l = arg;
    l->count++;
    if (l->array) {
        json_array_append_new(l->array, mg_record_to_json(rec));
        return 0;
    }
    const mg_body_t *b = mg_record_body(rec);
    char id[9];
    snprintf(id, sizeof id, "%s", mg_record_rid(rec));
    mg_print_cell(stdout, id, 9);
    mg_print_cell(stdout, mg_body_str(b, "nom"), 36);
    fputc(' ', stdout);
    mg_print_cell(stdout, mg_body_str(b, "commune"), 22);
    fputc(' ', stdout);
    mg_print_cell(stdout, mg_body_str(b, "code_postal"), 6);
    const char *const *items;
    size_t n = mg_body_list(b, "services", &items);
    char services[1024] = "";
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(services);
        snprintf(services + used, sizeof services - used, "%s%s", i ? ", " : "", items[i]);
    }
    mg_print_cell(stdout, services, -60);
    fputc('\n', stdout);
    return 0;
}

/* Parses offer filters shared by list and export. Returns 0, or an exit
   code. Unknown options go to `other` when not NULL. */
static int s_parse_query(const char *cmd, int argc, char **argv, int *i,
                         mg_offer_query_t *q, bool *mine, bool *matched)
{
    const char *a = argv[*i];
    *matched = true;
    const char **slot = NULL;
    if (strcmp(a, "--service") == 0 || strcmp(a, "--services") == 0)
        slot = &q->service;
    else if (strcmp(a, "--public") == 0 || strcmp(a, "--publics") == 0)
        slot = &q->public_;
    else if (strcmp(a, "--commune") == 0)
        slot = &q->commune;
    else if (strcmp(a, "--code-postal") == 0)
        slot = &q->code_postal;
    else if (strcmp(a, "--departement") == 0 || strcmp(a, "--département") == 0)
        slot = &q->departement;
    else if (strcmp(a, "--mine") == 0) {
        *mine = true;
        return 0;
    } else {
        *matched = false;
        return 0;
    }
    const char *v = mg_cli_value(argc, argv, i);
    if (!v)
        return 2;
    *slot = v;
    (void) cmd;
    return 0;
}

static int s_offer_list(int argc, char **argv)
{
    mg_offer_query_t q = {0};
    bool json = false, mine = false;
    for (int i = 2; i < argc; i++) {
        bool matched;
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage offer list [--json] [--mine] [--service S] [--public P]\n"
                   "                            [--commune C] [--code-postal CP] [--departement D]\n\n"
                   "Liste les offres connues du nœud (les vôtres et celles du réseau).\n"
                   "Les filtres ignorent majuscules et accents (« angouleme » trouve « ANGOULÊME »).\n"
                   "--public P garde aussi les offres ouvertes à tous (sans public spécifique).\n");
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
            continue;
        }
        int rc = s_parse_query("offer list", argc, argv, &i, &q, &mine, &matched);
        if (rc)
            return rc;
        if (!matched)
            return mg_cli_unknown("offer list", argv[i]);
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, s_dir_option, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("offer list", rc, &why);
    }
    if (mine)
        q.author = ctx.id.pk;
    s_list_t l = {.array = json ? json_array() : NULL};
    if (!json) {
        mg_print_cell(stdout, "ID", 9);
        mg_print_cell(stdout, "NOM", 37);
        mg_print_cell(stdout, "COMMUNE", 23);
        mg_print_cell(stdout, "CP", 6);
        printf("SERVICES\n");
    }
    mg_cli_note_pending(ctx.store);
    rc = mg_store_offers(ctx.store, &q, s_list_one, &l, &why);
    if (rc == MG_OK) {
        if (json) {
            json_dumpf(l.array, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
            printf("\n");
        } else {
            printf("%zu offre%s.\n", l.count, l.count > 1 ? "s" : "");
        }
    }
    json_decref(l.array);
    mg_node_close(&ctx);
    return rc == MG_OK ? 0 : mg_cli_fail("offer list", rc, &why);
}

static int s_cmd_offer(int argc, char **argv)
{
    if (argc < 2 || mg_cli_is_help(argv[1])) {
        fputs(s_offer_usage, stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "add") == 0)
        return s_offer_add(argc, argv);
    if (strcmp(sub, "update") == 0)
        return s_offer_update(argc, argv, false);
    if (strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0)
        return s_offer_update(argc, argv, true);
    if (strcmp(sub, "show") == 0)
        return s_offer_show(argc, argv);
    if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
        return s_offer_list(argc, argv);
    fprintf(stderr, "maillage : sous-commande inconnue : offer %s\n%s", sub, s_offer_usage);
    return 2;
}

/* ------------------------------------------------------------------ */
/* import / export                                                     */

static void s_progress(size_t done, size_t total, void *arg)
{
    (void) arg;
    fprintf(stderr, "\rImport : %zu / %zu lieux", done, total);
    if (done == total)
        fprintf(stderr, "\n");
    fflush(stderr);
}

static int s_cmd_import(int argc, char **argv)
{
    const char *file = NULL;
    mg_format_t format = MG_FORMAT_AUTO;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage import FICHIER [--format standard-csv|standard-json] [--json]\n\n"
                   "Importe des lieux au format du standard national (CSV ou JSON, anciennes\n"
                   "versions comprises) comme offres signées par ce nœud. Tout ou rien : au\n"
                   "moindre problème, rien n'est écrit et la position de l'erreur est donnée.\n"
                   "Réimporter le même fichier ne crée pas de nouvelle version.\n"
                   "Correspondances avec les anciens champs : docs/import-mapping.md\n");
            return 0;
        } else if (strcmp(argv[i], "--format") == 0) {
            const char *v = mg_cli_value(argc, argv, &i);
            if (!v)
                return 2;
            if (mg_format_parse(v, &format) != MG_OK || format == MG_FORMAT_GEOJSON) {
                fprintf(stderr, "maillage : format d'import inconnu : %s (standard-csv, standard-json)\n", v);
                return 2;
            }
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (!file && argv[i][0] != '-') {
            file = argv[i];
        } else {
            return mg_cli_unknown("import", argv[i]);
        }
    }
    if (!file) {
        fprintf(stderr, "maillage : indiquez le fichier à importer : maillage import lieux.csv\n");
        return 2;
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, s_dir_option, &why);
    mg_import_report_t *report = NULL;
    if (rc == MG_OK)
        rc = mg_import_file(ctx.store, &ctx.id, file, format,
                            isatty(STDERR_FILENO) ? s_progress : NULL, NULL,
                            &report, &why);
    if (rc == MG_OK) {
        if (json) {
            json_t *j = mg_import_report_json(report);
            json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
            printf("\n");
            json_decref(j);
        } else {
            mg_import_report_print(report, stdout);
        }
    }
    mg_import_report_destroy(&report);
    mg_node_close(&ctx);
    if (rc != MG_OK) {
        mg_cli_fail("import refusé", rc, &why);
        fprintf(stderr, "Rien n'a été importé.\n");
        return 1;
    }
    return 0;
}

static int s_cmd_export(int argc, char **argv)
{
    mg_format_t format = MG_FORMAT_AUTO;
    const char *output = NULL;
    mg_offer_query_t q = {0};
    bool mine = false;
    /* Events go to calendars: --format ics is mg_cmd_events.c's. */
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--format") == 0 && strcmp(argv[i + 1], "ics") == 0)
            return mg_cmd_export_ics(argc, argv, s_dir_option);
    for (int i = 1; i < argc; i++) {
        bool matched;
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage export --format standard-csv|standard-json|geojson [-o FICHIER]\n"
                   "                        [--mine] [--service S] [--public P] [--commune C]\n"
                   "                        [--code-postal CP] [--departement D]\n"
                   "        maillage export --format ics [-o FICHIER] [--upcoming] ...\n\n"
                   "Exporte les offres au format du standard national (CSV valide selon\n"
                   "schema.json, JSON) ou en GeoJSON pour une carte. Sans -o : sortie standard.\n"
                   "--format ics exporte les événements pour un agenda (voir\n"
                   "« maillage export --format ics --help »).\n");
            return 0;
        } else if (strcmp(argv[i], "--format") == 0) {
            const char *v = mg_cli_value(argc, argv, &i);
            if (!v)
                return 2;
            if (mg_format_parse(v, &format) != MG_OK) {
                fprintf(stderr, "maillage : format d'export inconnu : %s (standard-csv, standard-json, geojson, ics)\n", v);
                return 2;
            }
            continue;
        } else if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (!(output = mg_cli_value(argc, argv, &i)))
                return 2;
            continue;
        }
        int rc = s_parse_query("export", argc, argv, &i, &q, &mine, &matched);
        if (rc)
            return rc;
        if (!matched)
            return mg_cli_unknown("export", argv[i]);
    }
    if (format == MG_FORMAT_AUTO) {
        fprintf(stderr, "maillage : indiquez le format : --format standard-csv, standard-json ou geojson\n");
        return 2;
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, s_dir_option, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("export", rc, &why);
    }
    if (mine)
        q.author = ctx.id.pk;
    /* Write to a temporary file and rename, so a failed export never
       leaves a half-written file behind. */
    char tmp[4200] = "";
    FILE *out = stdout;
    if (output) {
        snprintf(tmp, sizeof tmp, "%s.tmp-%ld", output, (long) getpid());
        out = fopen(tmp, "w");
        if (!out) {
            fprintf(stderr, "maillage : impossible d'écrire %s : %s\n", output, strerror(errno));
            mg_node_close(&ctx);
            return 1;
        }
    }
    size_t count = 0;
    mg_cli_note_pending(ctx.store);
    rc = mg_export(ctx.store, format, &q, out, &count, &why);
    if (output) {
        if (fclose(out) != 0 && rc == MG_OK)
            rc = mg_why_set(&why, MG_ERR_IO, "écriture de %s : %s", output, strerror(errno));
        if (rc == MG_OK && rename(tmp, output) != 0)
            rc = mg_why_set(&why, MG_ERR_IO, "écriture de %s : %s", output, strerror(errno));
        if (rc != MG_OK)
            unlink(tmp);
    } else {
        fflush(stdout);
    }
    mg_node_close(&ctx);
    if (rc != MG_OK)
        return mg_cli_fail("export", rc, &why);
    if (output)
        fprintf(stderr, "%zu offre%s exportée%s dans %s\n", count,
                count > 1 ? "s" : "", count > 1 ? "s" : "", output);
    return 0;
}

/* ------------------------------------------------------------------ */

static void s_usage(FILE *out)
{
    fprintf(out,
            "maillage %s — le réseau des lieux de médiation numérique, sans serveur central\n\n"
            "Usage : maillage [--dir DOSSIER] COMMANDE [OPTIONS]\n\n"
            "Commandes :\n"
            "  init --name NOM        crée l'identité et la base du nœud\n"
            "  status [--json]        identité et nombre de fiches\n"
            "  profile set|show       la fiche de votre structure\n"
            "  offer add|update|rm|show|list\n"
            "                         vos offres de service, et celles du réseau\n"
            "  import FICHIER         importe des lieux (standard national, CSV ou JSON)\n"
            "  export --format F      exporte les offres (standard-csv, standard-json, geojson)\n"
            "                         ou les événements pour un agenda (ics)\n"
            "  event add|update|cancel|rm|list|show|retention\n"
            "                         les événements : vos invitations et celles du réseau\n"
            "  invitations            les événements auxquels vous êtes invité·e, à répondre\n"
            "  rsvp ID --yes|--no|--maybe\n"
            "                         répond à un événement\n"
            "  note add|update|rm|list|show|search\n"
            "                         les notes de pratiques, cherchées sans accents\n"
            "  node                   fait tourner le nœud (synchronisation avec les pairs)\n"
            "  invite                 affiche l'invitation à donner aux structures voisines\n"
            "  peer add|list|rm       les pairs de ce nœud\n"
            "  endorse CLÉ|list       (coordinateurs) recommander une structure\n"
            "  overlaps               (coordinateurs) offres qui se juxtaposent\n"
            "  duplicates             (coordinateurs) lieux listés deux fois\n"
            "  gaps --communes F      (coordinateurs) communes sans offre à portée\n"
            "  complementarities      partenaires possibles autour d'une structure\n"
            "  diagnostic             le diagnostic de territoire (Qui, Quoi, Où…)\n"
            "  check [ID]             vos offres répondent-elles aux huit questions ?\n"
            "  demo                   trois nœuds de démonstration, en une minute\n\n"
            "Dossier des données : --dir, sinon $MAILLAGE_DIR, sinon\n"
            "$XDG_DATA_HOME/maillage (par défaut ~/.local/share/maillage).\n"
            "« maillage COMMANDE --help » détaille chaque commande.\n",
            S_VERSION);
}

int main(int argc, char **argv)
{
    /* Take --dir out of the arguments, wherever it is. */
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            s_dir_option = argv[++i];
        } else if (strncmp(argv[i], "--dir=", 6) == 0) {
            s_dir_option = argv[i] + 6;
        } else {
            argv[n++] = argv[i];
        }
    }
    argc = n;
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (mg_cli_is_help(cmd)) {
        s_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("maillage %s\n", S_VERSION);
        return 0;
    }
    argc--;
    argv++;
    if (strcmp(cmd, "init") == 0)
        return s_cmd_init(argc, argv);
    if (strcmp(cmd, "status") == 0)
        return s_cmd_status(argc, argv);
    if (strcmp(cmd, "profile") == 0)
        return s_cmd_profile(argc, argv);
    if (strcmp(cmd, "offer") == 0 || strcmp(cmd, "offers") == 0)
        return s_cmd_offer(argc, argv);
    if (strcmp(cmd, "import") == 0)
        return s_cmd_import(argc, argv);
    if (strcmp(cmd, "export") == 0)
        return s_cmd_export(argc, argv);
    if (strcmp(cmd, "event") == 0 || strcmp(cmd, "events") == 0)
        return mg_cmd_event(argc, argv, s_dir_option);
    if (strcmp(cmd, "invitations") == 0)
        return mg_cmd_invitations(argc, argv, s_dir_option);
    if (strcmp(cmd, "rsvp") == 0)
        return mg_cmd_rsvp(argc, argv, s_dir_option);
    if (strcmp(cmd, "note") == 0 || strcmp(cmd, "notes") == 0)
        return mg_cmd_note(argc, argv, s_dir_option);
    if (strcmp(cmd, "node") == 0)
        return mg_cmd_node(argc, argv, s_dir_option);
    if (strcmp(cmd, "invite") == 0)
        return mg_cmd_invite(argc, argv, s_dir_option);
    if (strcmp(cmd, "peer") == 0 || strcmp(cmd, "peers") == 0)
        return mg_cmd_peer(argc, argv, s_dir_option);
    if (strcmp(cmd, "overlaps") == 0)
        return mg_cmd_overlaps(argc, argv, s_dir_option);
    if (strcmp(cmd, "duplicates") == 0)
        return mg_cmd_duplicates(argc, argv, s_dir_option);
    if (strcmp(cmd, "gaps") == 0)
        return mg_cmd_gaps(argc, argv, s_dir_option);
    if (strcmp(cmd, "complementarities") == 0)
        return mg_cmd_complementarities(argc, argv, s_dir_option);
    if (strcmp(cmd, "diagnostic") == 0)
        return mg_cmd_diagnostic(argc, argv, s_dir_option);
    if (strcmp(cmd, "check") == 0)
        return mg_cmd_check(argc, argv, s_dir_option);
    if (strcmp(cmd, "endorse") == 0)
        return mg_cmd_endorse(argc, argv, s_dir_option);
    if (strcmp(cmd, "demo") == 0) {
        const char *data = getenv("MAILLAGE_DEMO_DATA");
        return mg_cmd_demo(argc, argv, data && *data ? data : MG_DEMO_DATA);
    }
    fprintf(stderr, "maillage : commande inconnue : %s\n\n", cmd);
    s_usage(stderr);
    return 2;
}
