/*  mg_cli.c - data folder, identity file, authoring, output helpers. */
#include "mg_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#include "mg_capture.h"
#include "mg_text.h"

bool mg_cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0
           || strcmp(arg, "aide") == 0 || strcmp(arg, "help") == 0;
}

const char *mg_cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        mg_errorf("maillage : l'option %s attend une valeur\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int mg_cli_fail(const char *what, int rc, const mg_why_t *why)
{
    mg_capture_rc(rc);
    mg_errorf("maillage : %s : %s\n", what,
              why && why->text[0] ? why->text : mg_strerror(rc));
    return 1;
}

/* Whether a node daemon runs on this store: a live pid and a heartbeat
   younger than 5 s (it beats every second). */
bool mg_node_running(mg_store_t *store, long *pid_out, int64_t *age_ms)
{
    char pid[32] = "", hb[32] = "";
    mg_store_meta_get(store, "node.pid", pid, sizeof pid);
    mg_store_meta_get(store, "node.heartbeat_ms", hb, sizeof hb);
    long p = atol(pid);
    int64_t age = mg_now_ms() - atoll(hb);
    if (pid_out)
        *pid_out = p;
    if (age_ms)
        *age_ms = age;
    return p > 0 && (kill((pid_t) p, 0) == 0 || errno == EPERM) && age < 5000;
}

void mg_cli_note_pending(mg_store_t *store)
{
    /* Run by the dashboard's API inside the daemon: /api/status carries
       offers_pending, and the daemon's log is not the place for this. */
    int64_t owed = 0;
    if (!store || mg_capture_active() || mg_store_offers_pending(store, &owed) != MG_OK
        || owed == 0)
        return;
    if (mg_node_running(store, NULL, NULL))
        fprintf(stderr,
                "Note : le nœud termine l'indexation de fiches reçues (au plus %lld) ; "
                "listes, recherches et analyses peuvent encore en omettre quelques-unes "
                "pendant quelques secondes.\n",
                (long long) owed);
    else
        fprintf(stderr,
                "Note : des fiches reçues ne sont pas encore indexées (au plus %lld) ; "
                "listes, recherches et analyses peuvent en omettre. Lancez « maillage "
                "node » : il les indexe en quelques secondes.\n",
                (long long) owed);
}

int mg_cli_unknown(const char *cmd, const char *arg)
{
    mg_errorf("maillage : option inconnue pour « %s » : %s\n"
              "Voir « maillage %s --help ».\n",
              cmd, arg, cmd);
    return 2;
}

#define S_KEY_HEADER "maillage-identity-v1"

int mg_paths_resolve(mg_paths_t *paths, const char *dir_option, mg_why_t *why)
{
    const char *dir = dir_option;
    char buf[4096];
    if (!dir || !*dir)
        dir = getenv("MAILLAGE_DIR");
    if (!dir || !*dir) {
        const char *xdg = getenv("XDG_DATA_HOME");
        const char *home = getenv("HOME");
        if (xdg && *xdg)
            snprintf(buf, sizeof buf, "%s/maillage", xdg);
        else if (home && *home)
            snprintf(buf, sizeof buf, "%s/.local/share/maillage", home);
        else
            return mg_why_set(why, MG_ERR_ARG,
                              "aucun dossier de données : indiquez --dir DOSSIER ou MAILLAGE_DIR");
        dir = buf;
    }
    if (strlen(dir) >= sizeof paths->dir)
        return mg_why_set(why, MG_ERR_ARG, "chemin du dossier trop long");
    snprintf(paths->dir, sizeof paths->dir, "%s", dir);
    snprintf(paths->key_path, sizeof paths->key_path, "%s/identity.key", dir);
    snprintf(paths->db_path, sizeof paths->db_path, "%s/maillage.db", dir);
    return MG_OK;
}

int mg_identity_create(const char *key_path, mg_identity_t *id, mg_why_t *why)
{
    uint8_t seed[32];
    if (sodium_init() < 0)
        return mg_why_set(why, MG_ERR_IO, "générateur aléatoire indisponible");
    randombytes_buf(seed, sizeof seed);
    mg_identity_from_seed(id, seed);
    char hex[65];
    mg_hex_encode(seed, sizeof seed, hex);
    sodium_memzero(seed, sizeof seed);
    /* O_EXCL: never overwrite an identity, even in a race with another init. */
    int fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return mg_why_set(why, MG_ERR_EXISTS,
                              "une identité existe déjà (%s) : elle n'est jamais écrasée", key_path);
        return mg_why_set(why, MG_ERR_IO, "impossible de créer %s : %s",
                          key_path, strerror(errno));
    }
    char line[128];
    int n = snprintf(line, sizeof line, "%s\n%s\n", S_KEY_HEADER, hex);
    sodium_memzero(hex, sizeof hex);
    bool ok = write(fd, line, (size_t) n) == n && fsync(fd) == 0;
    sodium_memzero(line, sizeof line);
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        unlink(key_path);
        return mg_why_set(why, MG_ERR_IO, "écriture de %s impossible : %s",
                          key_path, strerror(errno));
    }
    return MG_OK;
}

int mg_identity_load(const char *key_path, mg_identity_t *id, mg_why_t *why)
{
    struct stat st;
    if (stat(key_path, &st) != 0)
        return mg_why_set(why, MG_ERR_NOT_FOUND, "pas d'identité dans %s", key_path);
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return mg_why_set(why, MG_ERR_PERM,
                          "la clé d'identité %s est accessible à d'autres utilisateurs : "
                          "corrigez avec « chmod 600 %s »",
                          key_path, key_path);
    FILE *f = fopen(key_path, "r");
    if (!f)
        return mg_why_set(why, MG_ERR_IO, "lecture de %s impossible : %s",
                          key_path, strerror(errno));
    char header[64] = "", hex[80] = "";
    bool ok = fgets(header, sizeof header, f) && fgets(hex, sizeof hex, f);
    fclose(f);
    header[strcspn(header, "\r\n")] = '\0';
    hex[strcspn(hex, "\r\n")] = '\0';
    uint8_t seed[32];
    if (!ok || strcmp(header, S_KEY_HEADER) != 0
        || mg_hex_decode(hex, seed, sizeof seed) != 0) {
        sodium_memzero(hex, sizeof hex);
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "le fichier de clé %s est illisible ou abîmé", key_path);
    }
    sodium_memzero(hex, sizeof hex);
    mg_identity_from_seed(id, seed);
    sodium_memzero(seed, sizeof seed);
    return MG_OK;
}

int mg_node_open(mg_node_ctx_t *ctx, const char *dir_option, mg_why_t *why)
{
    memset(ctx, 0, sizeof *ctx);
    int rc = mg_paths_resolve(&ctx->paths, dir_option, why);
    if (rc != MG_OK)
        return rc;
    rc = mg_identity_load(ctx->paths.key_path, &ctx->id, why);
    if (rc == MG_ERR_NOT_FOUND)
        return mg_why_set(why, rc,
                          "aucun nœud maillage dans %s : créez-le avec « maillage init --name \"Nom de la structure\" »",
                          ctx->paths.dir);
    if (rc != MG_OK)
        return rc;
    return mg_store_open(ctx->paths.db_path, &ctx->store, why);
}

void mg_node_close(mg_node_ctx_t *ctx)
{
    mg_store_destroy(&ctx->store);
    mg_identity_wipe(&ctx->id);
}

int mg_node_author(mg_node_ctx_t *ctx, const char *kind, const char *rid,
                   bool deleted, const mg_body_t *body, mg_why_t *why)
{
    return mg_store_author(ctx->store, &ctx->id, kind, rid, mg_now_ms(), deleted, body,
                           why);
}

int64_t mg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mg_today(char out[11])
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

void mg_new_rid(char out[17])
{
    uint8_t b[8];
    if (sodium_init() < 0)
        abort(); /* no random source at all: nothing safe to do */
    randombytes_buf(b, sizeof b);
    mg_hex_encode(b, sizeof b, out);
}

char *mg_fold(const char *text)
{
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t n = utf8proc_map(
        (const utf8proc_uint8_t *) text, 0, &out,
        UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE
            | UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK);
    if (n < 0)
        return NULL;
    return (char *) out;
}

void mg_print_cell(FILE *out, const char *text, int width)
{
    /* A negative width is the last column: cut, but never padded. */
    bool last = width < 0;
    if (last)
        width = -width;
    if (!text)
        text = "";
    int used = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *) text;
    utf8proc_ssize_t left = (utf8proc_ssize_t) strlen(text);
    /* First pass: total width. */
    int total = 0;
    for (utf8proc_ssize_t i = 0; i < left;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, left - i, &cp);
        if (n <= 0)
            break;
        total += utf8proc_charwidth(cp);
        i += n;
    }
    bool cut = total > width;
    int room = cut ? width - 1 : width;
    for (utf8proc_ssize_t i = 0; i < left;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, left - i, &cp);
        if (n <= 0)
            break;
        int w = utf8proc_charwidth(cp);
        if (used + w > room)
            break;
        fwrite(p + i, 1, (size_t) n, out);
        used += w;
        i += n;
    }
    if (cut) {
        fputs("…", out);
        used++;
    }
    for (; used < width && !last; used++)
        fputc(' ', out);
}

void mg_print_value(FILE *out, const mg_body_t *body, const char *key,
                    const char *sep)
{
    double num;
    if (mg_body_num(body, key, &num) == 0) {
        fprintf(out, "%.6f", num);
        return;
    }
    const char *const *items;
    size_t n = mg_body_list(body, key, &items);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? sep : "", items[i]);
}
