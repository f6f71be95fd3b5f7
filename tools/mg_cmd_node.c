/*  mg_cmd_node.c - the commands around the daemon: node, invite, peer,
    demo, and the node part of status. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_cli.h"
#include "mg_endorse.h"
#include "mg_http.h"
#include "mg_import.h"
#include "mg_json.h"
#include "mg_msg.h"
#include "mg_node.h"
#include "mg_text.h"

int mg_peer_add_invite(mg_store_t *store, const uint8_t *self_key,
                        const char *invite, bool quiet, mg_why_t *why)
{
    uint8_t key[MG_KEY_BYTES];
    char eps[MG_ENDPOINTS_MAX][256];
    int n = mg_invite_parse(invite, key, eps, MG_ENDPOINTS_MAX, why);
    if (n < 0)
        return n;
    if (memcmp(key, self_key, MG_KEY_BYTES) == 0)
        return mg_why_set(why, MG_ERR_ARG,
                          "c'est l'invitation de ce nœud lui-même : demandez celle d'un autre nœud");
    for (int i = 0; i < n; i++) {
        bool added = false;
        int rc = mg_store_peer_add(store, key, eps[i], "invite", mg_now_ms(), &added, why);
        if (rc != MG_OK)
            return rc;
        if (!quiet) {
            char hex[65];
            mg_hex_encode(key, 32, hex);
            printf("%s %.12s %s\n", added ? "Pair ajouté :" : "Pair déjà connu :", hex, eps[i]);
        }
    }
    return MG_OK;
}

/* A public key typed by a person: 64 hex digits, or an invite line. */
static int s_parse_key(const char *text, uint8_t key[MG_KEY_BYTES], mg_why_t *why)
{
    while (*text == ' ' || *text == '\t')
        text++;
    char hex[65];
    size_t n = strcspn(text, " \t\r\n#");
    if (n == 2 * MG_KEY_BYTES) {
        memcpy(hex, text, n);
        hex[n] = '\0';
        if (mg_hex_decode(hex, key, MG_KEY_BYTES) == 0)
            return MG_OK;
    }
    char eps[MG_ENDPOINTS_MAX][256];
    if (mg_invite_parse(text, key, eps, MG_ENDPOINTS_MAX, NULL) >= 0)
        return MG_OK;
    int shown = (int) strcspn(text, "\r\n");
    return mg_why_set(why, MG_ERR_ARG,
                      "« %.*s » n'est ni une clé publique (64 caractères hexadécimaux) ni une invitation",
                      shown > 80 ? 80 : shown, text);
}

/* Reads an allow-list file: one key or invite per line, # comments. */
static int s_read_allow(const char *path, mg_node_config_t *cfg, mg_why_t *why)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return mg_why_set(why, MG_ERR_IO, "lecture de %s impossible : %s", path, strerror(errno));
    char line[2048];
    int lineno = 0, rc = MG_OK;
    while (rc == MG_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || !*p)
            continue;
        if (cfg->allow_count == MG_NODE_ALLOW_MAX) {
            rc = mg_why_set(why, MG_ERR_TOO_LARGE, "%s : plus de %d clés", path, MG_NODE_ALLOW_MAX);
            break;
        }
        mg_why_t inner;
        if (s_parse_key(p, cfg->allow[cfg->allow_count], &inner) != MG_OK)
            rc = mg_why_set(why, MG_ERR_MALFORMED, "%s, ligne %d : %s", path, lineno, inner.text);
        else
            cfg->allow_count++;
    }
    fclose(f);
    if (rc == MG_OK && cfg->allow_count == 0)
        rc = mg_why_set(why, MG_ERR_ARG, "%s ne contient aucune clé : personne ne pourrait se connecter", path);
    return rc;
}

/* ------------------------------------------------------------------ */

static volatile sig_atomic_t s_stop = 0;
static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

int mg_cmd_node(int argc, char **argv, const char *dir)
{
    static mg_node_config_t cfg; /* large (allow-list): not on the stack */
    memset(&cfg, 0, sizeof cfg);
    mg_why_t perr;
    mg_why_clear(&perr);
    const char *peers[MG_NODE_PEERS_MAX];
    int npeers = 0;
    bool no_listen = false;
    const char *http = NULL, *communes = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (mg_cli_is_help(a)) {
            printf("Usage : maillage node [--listen ADRESSE]... [--peer INVITATION]...\n"
                   "                      [--interval MS] [--max-links N] [--advertise ADRESSE]...\n"
                   "                      [--discover] [--no-push] [--verbose]\n"
                   "                      [--http [ADRESSE:]PORT [--communes FICHIER]]\n\n"
                   "Fait tourner le nœud : il échange les fiches avec ses pairs jusqu'à Ctrl-C\n"
                   "(ou SIGTERM). Par défaut il écoute sur tcp://*:7470 ; « --listen none »\n"
                   "pour un nœud qui ne fait que des connexions sortantes (derrière une box).\n\n"
                   "  --listen tcp://HÔTE:PORT   adresse d'écoute (répétable ; port * = libre)\n"
                   "  --peer INVITATION          ajoute un pair (ligne donnée par « maillage invite »)\n"
                   "  --interval MS              intervalle entre deux synchronisations (1000)\n"
                   "  --max-links N              liens sortants gardés ouverts (8)\n"
                   "  --advertise tcp://...      adresse publiée aux autres nœuds\n"
                   "  --discover                 découvre les nœuds du réseau local (UDP 7677)\n"
                   "  --no-push                  pas de diffusion immédiate (tests, mesures)\n"
                   "  --allow FICHIER            fédération : liens seulement avec les clés du fichier\n"
                   "                             (une clé ou invitation par ligne, # commentaires)\n"
                   "  --trust-coordinator CLÉ    ne garde les offres, événements et notes que des\n"
                   "                             structures recommandées par ce coordinateur (répétable)\n"
                   "  --http [ADRESSE:]PORT      tableau de bord dans le navigateur (docs/api.md) ;\n"
                   "                             PORT seul = 127.0.0.1:PORT ; sur une autre adresse,\n"
                   "                             l'accès demande le jeton affiché (DOSSIER/http.token)\n"
                   "  --communes FICHIER         table des communes pour la carte et les zones\n"
                   "                             carencées (retenue pour les lancements suivants)\n");
            return 0;
        } else if (strcmp(a, "--listen") == 0 && v) {
            if (strcmp(v, "none") == 0)
                no_listen = true;
            else if (cfg.listen_count < MG_NODE_LISTEN_MAX)
                cfg.listen[cfg.listen_count++] = v;
            i++;
        } else if (strcmp(a, "--advertise") == 0 && v) {
            if (cfg.advertise_count < MG_NODE_LISTEN_MAX)
                cfg.advertise[cfg.advertise_count++] = v;
            i++;
        } else if (strcmp(a, "--peer") == 0 && v) {
            if (npeers < MG_NODE_PEERS_MAX)
                peers[npeers++] = v;
            i++;
        } else if (strcmp(a, "--interval") == 0 && v) {
            cfg.interval_ms = atoi(v);
            if (cfg.interval_ms < 10 || cfg.interval_ms > 3600000) {
                fprintf(stderr, "maillage : --interval entre 10 et 3600000 ms\n");
                return 2;
            }
            i++;
        } else if (strcmp(a, "--max-links") == 0 && v) {
            cfg.max_links = atoi(v);
            if (cfg.max_links < 1 || cfg.max_links > MG_NODE_PEERS_MAX) {
                fprintf(stderr, "maillage : --max-links entre 1 et %d\n", MG_NODE_PEERS_MAX);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--allow") == 0 && v) {
            if (s_read_allow(v, &cfg, &perr) != MG_OK)
                return mg_cli_fail("--allow", MG_ERR_ARG, &perr);
            i++;
        } else if (strcmp(a, "--trust-coordinator") == 0 && v) {
            if (cfg.trust_count == MG_NODE_TRUST_MAX) {
                fprintf(stderr, "maillage : %d coordinateurs de confiance au plus\n", MG_NODE_TRUST_MAX);
                return 2;
            }
            if (s_parse_key(v, cfg.trust[cfg.trust_count], &perr) != MG_OK)
                return mg_cli_fail("--trust-coordinator", MG_ERR_ARG, &perr);
            cfg.trust_count++;
            i++;
        } else if (strcmp(a, "--http") == 0 && v) {
            http = v;
            i++;
        } else if (strcmp(a, "--communes") == 0 && v) {
            communes = v;
            i++;
        } else if (strcmp(a, "--discover") == 0) {
            cfg.discover = true;
        } else if (strcmp(a, "--no-push") == 0) {
            cfg.no_push = true;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            cfg.verbose = true;
        } else {
            fprintf(stderr, "maillage : option inconnue ou sans valeur pour « node » : %s\n"
                            "Voir « maillage node --help ».\n", a);
            return 2;
        }
    }
    if (!no_listen && cfg.listen_count == 0)
        cfg.listen[cfg.listen_count++] = "tcp://*:7470";
    if (no_listen)
        cfg.listen_count = 0;
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, dir, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("node", rc, &why);
    }
    long pid;
    if (mg_node_running(ctx.store, &pid, NULL)) {
        fprintf(stderr, "maillage : un nœud tourne déjà sur ce dossier (processus %ld) ; "
                        "arrêtez-le d'abord (kill %ld)\n", pid, pid);
        mg_node_close(&ctx);
        return 1;
    }
    for (int i = 0; i < npeers; i++) {
        rc = mg_peer_add_invite(ctx.store, ctx.id.pk, peers[i], false, &why);
        if (rc != MG_OK) {
            mg_node_close(&ctx);
            return mg_cli_fail("--peer", rc, &why);
        }
    }
    /* The communes table: given now (remembered, as an absolute path),
       or remembered from an earlier run. */
    char communes_abs[4096] = "";
    if (communes) {
        if (!realpath(communes, communes_abs)) {
            mg_why_set(&why, MG_ERR_NOT_FOUND, "fichier introuvable : %s", communes);
            mg_node_close(&ctx);
            return mg_cli_fail("--communes", MG_ERR_NOT_FOUND, &why);
        }
        rc = mg_store_meta_set(ctx.store, "http.communes", communes_abs, &why);
        if (rc != MG_OK) {
            mg_node_close(&ctx);
            return mg_cli_fail("--communes", rc, &why);
        }
    } else if (http && mg_store_meta_get(ctx.store, "http.communes", communes_abs,
                                         sizeof communes_abs) == MG_OK
               && access(communes_abs, R_OK) != 0) {
        fprintf(stderr, "Attention : la table des communes %s est introuvable ; carte et "
                        "zones carencées sans elle (--communes FICHIER)\n", communes_abs);
        communes_abs[0] = '\0';
    }
    mg_store_destroy(&ctx.store); /* the engine opens its own connection */
    cfg.db_path = ctx.paths.db_path;
    cfg.identity = ctx.id;
    zsys_handler_set(NULL); /* our own handler below; czmq's would print */
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    zactor_t *node = mg_node_new(&cfg);
    if (!node) {
        fprintf(stderr, "maillage : le nœud n'a pas pu démarrer (voir le message ci-dessus)\n");
        mg_node_close(&ctx);
        return 1;
    }
    /* Print how to invite others, from what the engine published. */
    mg_store_t *store = NULL;
    if (mg_store_open(ctx.paths.db_path, &store, NULL) == MG_OK) {
        mg_record_t *profile = NULL;
        const char *const *eps = NULL;
        size_t n = 0;
        if (mg_store_get(store, ctx.id.pk, "profile", &profile, NULL) == MG_OK)
            n = mg_body_list(mg_record_body(profile), "endpoints", &eps);
        char line[2048];
        if (n && mg_invite_format(ctx.id.pk, eps, n, line, sizeof line) == MG_OK)
            printf("Nœud en marche. Invitation à donner aux structures voisines :\n  %s\n", line);
        else
            printf("Nœud en marche (connexions sortantes seulement).\n");
        printf("Arrêt : Ctrl-C.\n");
        fflush(stdout);
        mg_record_destroy(&profile);
        mg_store_destroy(&store);
    }
    /* The dashboard: its own thread and, per request, its own store
       connection (mg_http.h). */
    mg_http_t *dashboard = NULL;
    if (http) {
        mg_http_config_t hc = {.dir = ctx.paths.dir, .address = http,
                               .communes = communes_abs[0] ? communes_abs : NULL};
        rc = mg_http_start(&hc, &dashboard, &why);
        if (rc != MG_OK) {
            zactor_destroy(&node);
            mg_node_close(&ctx);
            return mg_cli_fail("--http", rc, &why);
        }
        printf("Tableau de bord : %s\n", mg_http_url(dashboard));
        fflush(stdout);
    }
    zpoller_t *poller = zpoller_new(zactor_sock(node), NULL);
    while (!s_stop) {
        void *which = zpoller_wait(poller, 500);
        if (which) {
            /* The engine never writes unasked: it ended. */
            break;
        }
    }
    zpoller_destroy(&poller);
    printf("Arrêt du nœud...\n");
    mg_http_stop(&dashboard);
    zactor_destroy(&node);
    mg_node_close(&ctx);
    printf("Nœud arrêté proprement.\n");
    return 0;
}

/* ------------------------------------------------------------------ */

int mg_cmd_invite(int argc, char **argv, const char *dir)
{
    const char *eps[MG_ENDPOINTS_MAX];
    size_t neps = 0;
    for (int i = 1; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage invite [--endpoint tcp://ADRESSE:PORT]...\n\n"
                   "Affiche la ligne d'invitation de ce nœud (sa clé publique et ses adresses),\n"
                   "à donner à une structure voisine : elle la colle dans « maillage peer add ».\n"
                   "Sans --endpoint : les adresses publiées par le nœud à son dernier démarrage.\n");
            return 0;
        } else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc && neps < MG_ENDPOINTS_MAX) {
            eps[neps++] = argv[++i];
        } else {
            fprintf(stderr, "maillage : option inconnue pour « invite » : %s\n", argv[i]);
            return 2;
        }
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, dir, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("invite", rc, &why);
    }
    mg_record_t *profile = NULL;
    const char *const *peps = NULL;
    if (!neps && mg_store_get(ctx.store, ctx.id.pk, "profile", &profile, NULL) == MG_OK) {
        neps = mg_body_list(mg_record_body(profile), "endpoints", &peps);
        for (size_t i = 0; i < neps && i < MG_ENDPOINTS_MAX; i++)
            eps[i] = peps[i];
    }
    int out = 0;
    char line[2048];
    if (!neps) {
        fprintf(stderr, "maillage : ce nœud ne connaît pas encore ses adresses : démarrez-le une fois\n"
                        "(maillage node) ou indiquez-les : maillage invite --endpoint tcp://ADRESSE:7470\n");
        out = 1;
    } else if (mg_invite_format(ctx.id.pk, eps, neps, line, sizeof line) != MG_OK) {
        fprintf(stderr, "maillage : adresses trop longues\n");
        out = 1;
    } else {
        printf("%s\n", line);
    }
    mg_record_destroy(&profile);
    mg_node_close(&ctx);
    return out;
}

/* ------------------------------------------------------------------ */

typedef struct {
    json_t *json;
    mg_store_t *store;
    size_t count;
} s_peers_t;

static void s_ago(int64_t ms, char *out, size_t size)
{
    if (ms <= 0) {
        snprintf(out, size, "jamais");
        return;
    }
    int64_t s = (mg_now_ms() - ms) / 1000;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, size, "il y a %lld s", (long long) s);
    else if (s < 7200)
        snprintf(out, size, "il y a %lld min", (long long) s / 60);
    else if (s < 172800)
        snprintf(out, size, "il y a %lld h", (long long) s / 3600);
    else
        snprintf(out, size, "il y a %lld j", (long long) s / 86400);
}

static const char *s_state_fr(const char *state)
{
    if (strcmp(state, "live") == 0) return "connecté";
    if (strcmp(state, "new") == 0) return "nouveau";
    if (strcmp(state, "connecting") == 0) return "connexion";
    if (strcmp(state, "backoff") == 0) return "injoignable";
    if (strcmp(state, "dead") == 0) return "abandonné";
    return state;
}

static int s_peer_row(const mg_peer_row_t *r, void *arg)
{
    s_peers_t *p = arg;
    char hex[65];
    mg_hex_encode(r->key, 32, hex);
    p->count++;
    if (p->json) {
        json_array_append_new(p->json, json_pack(
            "{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:i}", "key", hex, "endpoint", r->endpoint,
            "source", r->source, "state", r->state, "last_sync_ms", (json_int_t) r->last_sync_ms,
            "last_seen_ms", (json_int_t) r->last_seen_ms, "records_in", (json_int_t) r->records_in,
            "records_out", (json_int_t) r->records_out, "failures", r->failures));
        return 0;
    }
    char sync[32];
    s_ago(r->last_sync_ms, sync, sizeof sync);
    mg_record_t *prof = NULL;
    const char *name = NULL;
    if (mg_store_get(p->store, r->key, "profile", &prof, NULL) == MG_OK && !mg_record_deleted(prof))
        name = mg_body_str(mg_record_body(prof), "nom");
    printf("  %.12s  ", hex);
    mg_print_cell(stdout, name ? name : "?", 26);
    printf(" ");
    mg_print_cell(stdout, r->endpoint[0] ? r->endpoint : "(entrant)", 28);
    printf(" ");
    mg_print_cell(stdout, s_state_fr(r->state), 12);
    printf(" synchro %-14s reçues %-6lld envoyées %lld\n", sync, (long long) r->records_in,
           (long long) r->records_out);
    mg_record_destroy(&prof);
    return 0;
}

json_t *mg_peers_json(mg_store_t *store)
{
    s_peers_t p = {.json = json_array(), .store = store};
    if (mg_store_peers(store, s_peer_row, &p, NULL) != MG_OK) {
        json_decref(p.json);
        return NULL;
    }
    return p.json;
}

/* Prints the peer table (shared with status). */
int mg_print_peers(mg_store_t *store, bool json_out)
{
    s_peers_t p = {.json = json_out ? json_array() : NULL, .store = store};
    mg_why_t why;
    int rc = mg_store_peers(store, s_peer_row, &p, &why);
    if (json_out) {
        json_dumpf(p.json, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(p.json);
    } else if (p.count == 0) {
        printf("  aucun pair : ajoutez-en un avec « maillage peer add INVITATION »\n");
    }
    return rc;
}

int mg_cmd_peer(int argc, char **argv, const char *dir)
{
    static const char *usage =
        "Usage :\n"
        "  maillage peer add INVITATION     ajoute un pair (ligne de « maillage invite »)\n"
        "  maillage peer list [--json]      liste les pairs, leur état et leur dernière synchro\n"
        "  maillage peer rm CLÉ|ADRESSE     retire un pair (début de clé d'au moins 4 caractères)\n";
    if (argc < 2 || mg_cli_is_help(argv[1])) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (argc > 2 && mg_cli_is_help(argv[2])) {
        fputs(usage, stdout);
        return 0;
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, dir, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("peer", rc, &why);
    }
    int out = 0;
    if (strcmp(sub, "add") == 0 && argc == 3) {
        rc = mg_peer_add_invite(ctx.store, ctx.id.pk, argv[2], false, &why);
        if (rc != MG_OK)
            out = mg_cli_fail("peer add", rc, &why);
    } else if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0) {
        bool json = argc > 2 && strcmp(argv[2], "--json") == 0;
        if (!json)
            printf("Pairs :\n");
        rc = mg_print_peers(ctx.store, json);
        if (rc != MG_OK)
            out = mg_cli_fail("peer list", rc, &why);
    } else if ((strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0) && argc == 3) {
        int removed = 0;
        rc = mg_store_peer_rm(ctx.store, argv[2], &removed, &why);
        if (rc != MG_OK)
            out = mg_cli_fail("peer rm", rc, &why);
        else if (removed == 0) {
            fprintf(stderr, "maillage : aucun pair ne correspond à « %s » (voir maillage peer list)\n", argv[2]);
            out = 1;
        } else
            printf("%d pair%s retiré%s.\n", removed, removed > 1 ? "s" : "", removed > 1 ? "s" : "");
    } else {
        fputs(usage, stderr);
        out = 2;
    }
    mg_node_close(&ctx);
    return out;
}

/* ------------------------------------------------------------------ */
/* endorse: a coordinator vouches for (or stops vouching for) a key.   */

typedef struct {
    json_t *json;
    const uint8_t *self;
    size_t count;
} s_endorse_list_t;

static int s_endorse_row(const mg_record_t *r, void *arg)
{
    s_endorse_list_t *l = arg;
    if (memcmp(mg_record_author(r), l->self, MG_KEY_BYTES) != 0)
        return 0;
    uint8_t subject[MG_KEY_BYTES];
    bool endorsed;
    if (mg_endorse_read(r, subject, &endorsed) != MG_OK)
        return 0;
    char hex[65], when[32];
    mg_hex_encode(subject, 32, hex);
    mg_time_iso(mg_record_created(r), when);
    const char *note = mg_body_str(mg_record_body(r), "note");
    l->count++;
    if (l->json)
        json_array_append_new(l->json, json_pack("{s:s,s:b,s:s,s:s?}", "subject", hex, "endorsed",
                                                 endorsed, "updated", when, "note", note));
    else
        printf("  %s  %-12s %s  %s\n", hex, endorsed ? "recommandée" : "retirée", when,
               note ? note : "");
    return 0;
}

int mg_cmd_endorse(int argc, char **argv, const char *dir)
{
    static const char *usage =
        "Usage :\n"
        "  maillage endorse CLÉ|INVITATION [--revoke] [--note TEXTE]\n"
        "  maillage endorse list [--json]\n\n"
        "Pour un coordinateur : recommande la structure dont c'est la clé (ou retire la\n"
        "recommandation avec --revoke). Les nœuds lancés avec\n"
        "« maillage node --trust-coordinator VOTRE-CLÉ » ne gardent que les offres,\n"
        "événements et notes des structures que vous recommandez.\n";
    if (argc < 2 || mg_cli_is_help(argv[1])) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 2; i < argc; i++)
        if (mg_cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return 0;
        }
    mg_why_t why;
    mg_why_clear(&why);
    mg_node_ctx_t ctx;
    int rc = mg_node_open(&ctx, dir, &why);
    if (rc != MG_OK) {
        mg_node_close(&ctx);
        return mg_cli_fail("endorse", rc, &why);
    }
    int out = 0;
    if (strcmp(argv[1], "list") == 0) {
        bool json = argc > 2 && strcmp(argv[2], "--json") == 0;
        s_endorse_list_t l = {.json = json ? json_array() : NULL, .self = ctx.id.pk};
        if (!json)
            printf("Structures recommandées par ce nœud :\n");
        rc = mg_store_records(ctx.store, "endorse", false, s_endorse_row, &l, &why);
        if (json) {
            json_dumpf(l.json, stdout, JSON_INDENT(2));
            printf("\n");
            json_decref(l.json);
        } else if (l.count == 0) {
            printf("  aucune\n");
        }
        if (rc != MG_OK)
            out = mg_cli_fail("endorse list", rc, &why);
        mg_node_close(&ctx);
        return out;
    }
    uint8_t subject[MG_KEY_BYTES];
    bool revoke = false;
    const char *note = NULL;
    rc = s_parse_key(argv[1], subject, &why);
    for (int i = 2; rc == MG_OK && i < argc; i++) {
        if (strcmp(argv[i], "--revoke") == 0)
            revoke = true;
        else if (strcmp(argv[i], "--note") == 0 && i + 1 < argc)
            note = argv[++i];
        else
            rc = mg_why_set(&why, MG_ERR_ARG, "option inconnue : %s", argv[i]);
    }
    if (rc == MG_OK) {
        char hex[65], rid[MG_RID_MAX + 1];
        mg_hex_encode(subject, 32, hex);
        mg_endorse_rid(subject, rid);
        mg_body_t *b = mg_body_new();
        mg_body_set_str(b, "subject", hex);
        mg_body_set_str(b, "status", revoke ? "revoked" : "endorsed");
        if (note && *note)
            mg_body_set_str(b, "note", note);
        rc = mg_node_author(&ctx, "endorse", rid, false, b, &why);
        mg_body_destroy(&b);
        if (rc == MG_OK)
            printf("%s : %.12s\n", revoke ? "Recommandation retirée" : "Structure recommandée", hex);
    }
    if (rc != MG_OK)
        out = mg_cli_fail("endorse", rc, &why);
    mg_node_close(&ctx);
    return out;
}

/* ------------------------------------------------------------------ */
/* demo: three nodes in a temporary folder, linked in a line.          */

typedef struct {
    char dir[512];
    mg_node_ctx_t ctx;
    zactor_t *actor;
} s_demo_node_t;

static int s_demo_stats(zactor_t *a, size_t *records, char fp[33])
{
    zstr_send(a, "STATS");
    char *s = zstr_recv(a);
    if (!s)
        return -1;
    int ok = sscanf(s, "%zu %32s", records, fp) == 2 ? 0 : -1;
    zstr_free(&s);
    return ok;
}

int mg_cmd_demo(int argc, char **argv, const char *data_file)
{
    for (int i = 1; i < argc; i++) {
        if (mg_cli_is_help(argv[i])) {
            printf("Usage : maillage demo\n\n"
                   "Une minute pour comprendre : trois nœuds dans un dossier temporaire, chacun\n"
                   "avec un tiers des lieux de Charente, reliés en ligne (A — B — C). On les voit\n"
                   "converger vers la même image partagée, puis tout s'arrête proprement.\n");
            return 0;
        }
        fprintf(stderr, "maillage : option inconnue pour « demo » : %s\n", argv[i]);
        return 2;
    }
    json_error_t jerr;
    json_t *all = json_load_file(data_file, 0, &jerr);
    if (!json_is_array(all)) {
        fprintf(stderr, "maillage : données de démonstration introuvables (%s) : %s\n", data_file,
                jerr.text);
        json_decref(all);
        return 1;
    }
    char root[] = "/tmp/maillage-demo-XXXXXX";
    if (!mkdtemp(root)) {
        fprintf(stderr, "maillage : dossier temporaire impossible : %s\n", strerror(errno));
        json_decref(all);
        return 1;
    }
    static const char *names[3] = {"Médiathèque d'Angoulême (démo A)",
                                   "Centre social de Cognac (démo B)",
                                   "Mairie de Confolens (démo C)"};
    s_demo_node_t nodes[3];
    memset(nodes, 0, sizeof nodes);
    int out = 1;
    mg_why_t why;
    mg_why_clear(&why);
    printf("Démonstration dans %s\n", root);
    size_t total = json_array_size(all);
    for (int k = 0; k < 3; k++) {
        snprintf(nodes[k].dir, sizeof nodes[k].dir, "%s/%c", root, 'A' + k);
        mkdir(nodes[k].dir, 0700);
        mg_paths_t paths;
        mg_paths_resolve(&paths, nodes[k].dir, &why);
        nodes[k].ctx.paths = paths;
        if (mg_identity_create(paths.key_path, &nodes[k].ctx.id, &why) != MG_OK
            || mg_store_open(paths.db_path, &nodes[k].ctx.store, &why) != MG_OK)
            goto done;
        mg_body_t *b = mg_body_new();
        mg_body_set_str(b, "nom", names[k]);
        int rc = mg_node_author(&nodes[k].ctx, "profile", "profile", false, b, &why);
        mg_body_destroy(&b);
        mg_store_meta_set(nodes[k].ctx.store, "name", names[k], NULL);
        /* A third of the lieux each. */
        json_t *part = json_array();
        for (size_t i = (size_t) k; i < total; i += 3)
            json_array_append(part, json_array_get(all, i));
        char file[600];
        snprintf(file, sizeof file, "%.500s/lieux.json", nodes[k].dir);
        json_dump_file(part, file, 0);
        json_decref(part);
        if (rc == MG_OK)
            rc = mg_import_file(nodes[k].ctx.store, &nodes[k].ctx.id, file, MG_FORMAT_AUTO,
                                NULL, NULL, NULL, &why);
        if (rc != MG_OK)
            goto done;
        printf("  nœud %c : %s, %zu lieux importés\n", 'A' + k, names[k], (total + 2 - (size_t) k) / 3);
    }
    /* B listens; A and C connect to it: a line A - B - C. */
    const char *bind = "tcp://127.0.0.1:*";
    char b_invite[1024] = "";
    for (int k = 1; k >= 0; k = (k == 1) ? 0 : (k == 0 ? 2 : -1)) {
        if (k == 2 && nodes[2].actor)
            break;
        mg_node_config_t cfg = {0};
        cfg.db_path = nodes[k].ctx.paths.db_path;
        cfg.identity = nodes[k].ctx.id;
        cfg.interval_ms = 300;
        cfg.quiet = true;
        cfg.listen[0] = bind;
        cfg.listen_count = 1;
        if (k != 1) {
            /* A and C only know B */
            mg_store_peer_add(nodes[k].ctx.store, nodes[1].ctx.id.pk, b_invite, "invite",
                              mg_now_ms(), NULL, NULL);
        }
        nodes[k].actor = mg_node_new(&cfg);
        if (!nodes[k].actor)
            goto done;
        if (k == 1) {
            zstr_send(nodes[1].actor, "ENDPOINTS");
            char *ep = zstr_recv(nodes[1].actor);
            snprintf(b_invite, sizeof b_invite, "%s", ep ? ep : "");
            zstr_free(&ep);
        }
        if (k == 2)
            break;
    }
    printf("Liens : A → B ← C. Synchronisation...\n");
    int64_t start = mg_now_ms();
    bool converged = false;
    size_t rec[3], last[3] = {0, 0, 0};
    char fp[3][33];
    while (mg_now_ms() - start < 60000 && !s_stop) {
        bool ok = true;
        for (int k = 0; k < 3; k++)
            ok &= s_demo_stats(nodes[k].actor, &rec[k], fp[k]) == 0;
        if (!ok)
            break;
        /* On a terminal, one line redrawn in place; in a file or a pipe,
           a line each time the counts move. */
        bool tty = isatty(STDOUT_FILENO);
        if (tty || rec[0] != last[0] || rec[1] != last[1] || rec[2] != last[2]) {
            printf("%s  A : %4zu fiches   B : %4zu fiches   C : %4zu fiches   (%.1f s)%s",
                   tty ? "\r\033[K" : "", rec[0], rec[1], rec[2],
                   (double) (mg_now_ms() - start) / 1000.0, tty ? "" : "\n");
            fflush(stdout);
            memcpy(last, rec, sizeof last);
        }
        if (rec[0] == rec[1] && rec[1] == rec[2] && strcmp(fp[0], fp[1]) == 0
            && strcmp(fp[1], fp[2]) == 0) {
            converged = true;
            break;
        }
        zclock_sleep(100); /* a display refresh, not a synchronisation */
    }
    if (isatty(STDOUT_FILENO))
        printf("\n");
    if (converged) {
        printf("\nImage partagée identique sur les trois nœuds :\n");
        for (int k = 0; k < 3; k++)
            printf("  nœud %c : %zu fiches, empreinte %s\n", 'A' + k, rec[k], fp[k]);
        printf("(%zu lieux + 3 fiches structure ; chaque fiche est signée par le nœud qui l'a publiée)\n",
               total);
        out = 0;
    } else {
        printf("Les nœuds n'ont pas convergé en 60 s : voir les messages ci-dessus.\n");
    }
done:
    if (out && why.text[0])
        fprintf(stderr, "maillage : demo : %s\n", why.text);
    for (int k = 0; k < 3; k++) {
        zactor_destroy(&nodes[k].actor);
        mg_node_close(&nodes[k].ctx);
    }
    json_decref(all);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "maillage : %s n'a pas pu être effacé\n", root);
    printf("Démonstration terminée, nœuds arrêtés, dossier temporaire effacé.\n");
    return out;
}
