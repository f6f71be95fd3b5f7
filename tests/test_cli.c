/*  test_cli.c - end-to-end tests of the maillage command line: the real
    binary, run as a user would, on real SQLite files in a temp folder. */
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "mg_store.h"
#include "mg_test.h"
#include "mg_testlib.h"

static char s_tmp[256];

static json_int_t s_count(const char *dir, const char *kind)
{
    json_t *st = mg_test_cli_json(dir, NULL, "status --json");
    json_int_t n = json_integer_value(
        json_object_get(json_object_get(json_object_get(st, "records"), kind), "live"));
    json_decref(st);
    return n;
}

/* Highest counter of the node's own records, read straight from SQLite. */
static uint64_t s_max_counter(const char *dir)
{
    json_t *st = mg_test_cli_json(dir, NULL, "status --json");
    const char *hex = json_string_value(json_object_get(st, "public_key"));
    uint8_t pk[32] = {0};
    for (int i = 0; hex && i < 32; i++)
        sscanf(hex + 2 * i, "%2hhx", &pk[i]);
    json_decref(st);
    char path[512];
    snprintf(path, sizeof path, "%s/maillage.db", dir);
    mg_store_t *s = NULL;
    uint64_t max = 0;
    if (mg_store_open(path, &s, NULL) == MG_OK)
        mg_store_max_counter(s, pk, &max);
    mg_store_destroy(&s);
    return max;
}

static void test_help(void)
{
    const char *cmds[] = {"--help", "init --help", "status --help",
                          "profile --help", "profile set --help",
                          "offer --help", "offer add --help", "offer list --help",
                          "offer update --help", "import --help", "export --help",
                          NULL};
    for (int i = 0; cmds[i]; i++) {
        char *out;
        CHECK(mg_test_cli(s_tmp, &out, "%s", cmds[i]) == 0);
        CHECK(strstr(out, "Usage") != NULL);
        free(out);
    }
    char *out;
    CHECK(mg_test_cli(s_tmp, &out, "frobnicate") == 2);
    CHECK(strstr(out, "commande inconnue") != NULL);
    free(out);
}

static void test_init(const char *dir)
{
    char *out;
    /* Before init, commands say what to do. */
    CHECK(mg_test_cli(dir, &out, "status") == 1);
    CHECK(strstr(out, "maillage init") != NULL);
    free(out);
    CHECK(mg_test_cli(dir, &out, "init --name 'Médiathèque de Ruelle'") == 0);
    CHECK(strstr(out, "Clé publique") != NULL);
    free(out);
    char key[512];
    snprintf(key, sizeof key, "%s/identity.key", dir);
    struct stat st;
    CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
    FILE *f = fopen(key, "r");
    char before[256] = "";
    CHECK(f && fread(before, 1, sizeof before - 1, f) > 0);
    if (f)
        fclose(f);
    /* A second init never overwrites the identity. */
    CHECK(mg_test_cli(dir, &out, "init --name Autre") == 1);
    CHECK(strstr(out, "existe déjà") != NULL);
    free(out);
    f = fopen(key, "r");
    char after[256] = "";
    CHECK(f && fread(after, 1, sizeof after - 1, f) > 0);
    if (f)
        fclose(f);
    CHECK(strcmp(before, after) == 0);
    /* A key readable by others is refused, with the fix. */
    chmod(key, 0644);
    CHECK(mg_test_cli(dir, &out, "status") == 1);
    CHECK(strstr(out, "chmod 600") != NULL);
    free(out);
    chmod(key, 0600);
    CHECK(s_count(dir, "profile") == 1);
}

static void test_profile_and_offers(const char *dir)
{
    char *out;
    CHECK(mg_test_cli(dir, &out,
                "profile set --pivot 21160291600019 --adresse '1 place du Champ de Foire' "
                "--commune Ruelle-sur-Touvre --code-postal 16600 --latitude 45.6797 "
                "--longitude 0.2306 --telephone +33545655656") == 0);
    free(out);
    json_t *p = mg_test_cli_json(dir, NULL, "profile show --json");
    CHECK_STR(json_string_value(json_object_get(p, "commune")), "Ruelle-sur-Touvre");
    CHECK_STR(json_string_value(json_object_get(p, "nom")), "Médiathèque de Ruelle");
    json_decref(p);
    /* A bad value is refused with the rule, and nothing changes. */
    uint64_t max = s_max_counter(dir);
    CHECK(mg_test_cli(dir, &out, "profile set --code-postal 166") == 1);
    CHECK(strstr(out, "code_postal") != NULL);
    free(out);
    CHECK(s_max_counter(dir) == max);

    /* An offer inherits the place from the profile; enumerations forgive
       case and accents. */
    CHECK(mg_test_cli(dir, &out,
                "offer add --services 'aide aux demarches administratives|Maîtrise des outils numériques du quotidien' "
                "--publics-specifiquement-adresses Seniors --duree 'parcours de 5 séances de 2 h' "
                "--frequence 'chaque mardi' --demarche 'téléphoner à la médiathèque'") == 0);
    char rid[64] = "";
    CHECK(sscanf(out, "Offre ajoutée : %63s", rid) == 1);
    free(out);
    json_t *list = mg_test_cli_json(dir, NULL, "offer list --json");
    CHECK(json_array_size(list) == 1);
    json_t *o = json_array_get(list, 0);
    CHECK_STR(json_string_value(json_object_get(o, "id")), rid);
    CHECK_STR(json_string_value(json_object_get(o, "commune")), "Ruelle-sur-Touvre");
    CHECK_STR(json_string_value(json_array_get(json_object_get(o, "services"), 0)),
              "Aide aux démarches administratives");
    CHECK(json_string_length(json_object_get(o, "author")) == 64);
    CHECK(json_object_get(o, "updated") != NULL);
    CHECK_STR(json_string_value(json_object_get(o, "duree")), "parcours de 5 séances de 2 h");
    json_decref(list);

    /* Invalid enumeration: refused, allowed values listed, nothing written. */
    max = s_max_counter(dir);
    CHECK(mg_test_cli(dir, &out, "offer add --services Cuisine") == 1);
    CHECK(strstr(out, "Aide aux démarches administratives") != NULL);
    free(out);
    CHECK(s_max_counter(dir) == max);
    CHECK(s_count(dir, "offer") == 1);

    /* Update by a short prefix. */
    char prefix[8];
    snprintf(prefix, sizeof prefix, "%.5s", rid);
    CHECK(mg_test_cli(dir, &out, "offer update %s --horaires 'Mo-Fr 09:00-12:00' --unset frequence", prefix) == 0);
    free(out);
    json_t *shown = mg_test_cli_json(dir, NULL, "offer show %s --json", prefix);
    CHECK_STR(json_string_value(json_object_get(shown, "horaires")), "Mo-Fr 09:00-12:00");
    CHECK(json_object_get(shown, "frequence") == NULL);
    json_decref(shown);
    CHECK(mg_test_cli(dir, &out, "offer show %s", prefix) == 0);
    CHECK(strstr(out, "Mo-Fr 09:00-12:00") != NULL);
    free(out);

    /* A second offer; then the empty prefix is ambiguous. */
    CHECK(mg_test_cli(dir, &out, "offer add --services 'Loisirs et créations numériques' --nom 'Atelier photo'") == 0);
    free(out);
    CHECK(mg_test_cli(dir, &out, "offer show ''") != 0);
    free(out);
    CHECK(mg_test_cli(dir, &out, "offer show zzzz") == 1);
    CHECK(strstr(out, "zzzz") != NULL);
    free(out);
    /* Filters. */
    list = mg_test_cli_json(dir, NULL, "offer list --json --service 'Loisirs et créations numériques'");
    CHECK(json_array_size(list) == 1);
    json_decref(list);
    list = mg_test_cli_json(dir, NULL, "offer list --json --commune ruelle-sur-touvre --public Seniors");
    CHECK(json_array_size(list) == 2); /* no specific public = open to all */
    json_decref(list);
    list = mg_test_cli_json(dir, NULL, "offer list --json --departement 17");
    CHECK(json_array_size(list) == 0);
    json_decref(list);
    CHECK(mg_test_cli(dir, &out, "offer list") == 0);
    CHECK(strstr(out, "2 offres.") != NULL);
    free(out);

    /* Removal: a tombstone; the offer disappears from lists. */
    CHECK(mg_test_cli(dir, &out, "offer rm %s", prefix) == 0);
    free(out);
    CHECK(s_count(dir, "offer") == 1);
    CHECK(mg_test_cli(dir, &out, "offer show %s", prefix) == 1);
    free(out);
}

static void test_import_export(const char *dir, const char *fresh)
{
    char *out;
    json_int_t before = s_count(dir, "offer");
    CHECK(mg_test_cli(dir, &out, "import '%s/charente-2023-07.json'", MG_TEST_DATA) == 0);
    CHECK(strstr(out, "188") != NULL);
    free(out);
    CHECK(s_count(dir, "offer") == before + 188);
    /* Importing the same file again writes no new version. */
    uint64_t max = s_max_counter(dir);
    CHECK(mg_test_cli(dir, &out, "import '%s/charente-2023-07.json'", MG_TEST_DATA) == 0);
    free(out);
    CHECK(s_max_counter(dir) == max);
    /* Accent-insensitive commune filter on real data. */
    json_t *list = mg_test_cli_json(dir, NULL, "offer list --json --commune angouleme");
    CHECK(json_array_size(list) > 0);
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o) {
        /* The real file spells it ANGOULÊME, Angoulême and ANGOULEME. */
        char *folded = NULL;
        mg_store_fold(json_string_value(json_object_get(o, "commune")), &folded);
        CHECK_STR(folded, "angouleme");
        free(folded);
    }
    json_decref(list);

    /* A truncated file is refused and nothing is written. */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/truncated.json", s_tmp);
    FILE *f = fopen(bad, "w");
    fputs("[{\"id\": \"x\", \"nom\": \"Lieu\", \"commune\": \"Cognac\"", f);
    fclose(f);
    CHECK(mg_test_cli(dir, &out, "import '%s'", bad) == 1);
    CHECK(strstr(out, "Rien n'a été importé") != NULL);
    free(out);
    CHECK(s_max_counter(dir) == max);

    /* Export, then import into a fresh node: the same offers. */
    char path[512];
    snprintf(path, sizeof path, "%s/export.json", s_tmp);
    CHECK(mg_test_cli(dir, &out, "export --format standard-json -o '%s'", path) == 0);
    free(out);
    CHECK(mg_test_cli(fresh, &out, "init --name 'Hub territorial'") == 0);
    free(out);
    CHECK(mg_test_cli(fresh, &out, "import '%s'", path) == 0);
    free(out);
    CHECK(s_count(fresh, "offer") == s_count(dir, "offer"));
    json_t *a = mg_test_cli_json(dir, NULL, "offer list --json --commune cognac");
    json_t *b = mg_test_cli_json(fresh, NULL, "offer list --json --commune cognac");
    CHECK(a && b && json_array_size(a) == json_array_size(b) && json_array_size(a) > 0);
    for (i = 0; a && b && i < json_array_size(a); i++) {
        json_t *x = json_deep_copy(json_array_get(a, i));
        json_t *y = json_deep_copy(json_array_get(b, i));
        /* Author, version time and record id differ by construction. */
        const char *drop[] = {"author", "updated", "id", NULL};
        for (int k = 0; drop[k]; k++) {
            json_object_del(x, drop[k]);
            json_object_del(y, drop[k]);
        }
        CHECK(json_equal(x, y));
        json_decref(x);
        json_decref(y);
    }
    json_decref(a);
    json_decref(b);
    snprintf(path, sizeof path, "%s/export.csv", s_tmp);
    CHECK(mg_test_cli(dir, &out, "export --format standard-csv -o '%s'", path) == 0);
    CHECK(strstr(out, "exportées") != NULL);
    free(out);
    CHECK(mg_test_cli(dir, &out, "export --format geojson") == 0);
    CHECK(strstr(out, "FeatureCollection") != NULL);
    free(out);
    CHECK(mg_test_cli(dir, &out, "export --format pdf") == 2);
    free(out);
}

/* The daemon as a real process: starts, reports itself in status, gives
   an invite, refuses a second instance, stops cleanly on SIGTERM. */
static void test_daemon(const char *dir, const char *other)
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        execl(MG_BINARY, MG_BINARY, "--dir", dir, "node", "--listen", "tcp://127.0.0.1:*",
              "--interval", "200", (char *) NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    bool running = false;
    for (int64_t end = mg_test_ms() + 10000; mg_test_ms() < end && !running;) {
        json_t *st = mg_test_cli_json(dir, NULL, "status --json");
        running = json_is_true(json_object_get(json_object_get(st, "node"), "running"));
        json_decref(st);
        if (!running)
            usleep(50 * 1000);
    }
    CHECK(running);
    char *out;
    CHECK(mg_test_cli(dir, &out, "invite") == 0);
    CHECK(strncmp(out, "maillage:", 9) == 0);
    char invite[1024];
    snprintf(invite, sizeof invite, "%s", out);
    invite[strcspn(invite, "\n")] = '\0';
    free(out);
    CHECK(mg_test_cli(dir, &out, "node --listen tcp://127.0.0.1:*") == 1);
    CHECK(strstr(out, "tourne déjà") != NULL);
    free(out);
    /* Another node adds it as a peer, lists it, removes it. */
    CHECK(mg_test_cli(other, &out, "peer add '%s'", invite) == 0);
    CHECK(strstr(out, "Pair ajouté") != NULL);
    free(out);
    CHECK(mg_test_cli(other, &out, "peer add 'maillage:zz@tcp://x:1'") == 1);
    CHECK(strstr(out, "invitation invalide") != NULL);
    free(out);
    json_t *peers = mg_test_cli_json(other, NULL, "peer list --json");
    CHECK(json_array_size(peers) == 1);
    json_decref(peers);
    CHECK(mg_test_cli(other, &out, "peer rm %.8s", invite + 9) == 0);
    free(out);
    peers = mg_test_cli_json(other, NULL, "peer list --json");
    CHECK(json_array_size(peers) == 0);
    json_decref(peers);
    kill(pid, SIGTERM);
    int status = -1;
    for (int64_t end = mg_test_ms() + 10000; mg_test_ms() < end;) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        usleep(20 * 1000);
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    json_t *st = mg_test_cli_json(dir, NULL, "status --json");
    CHECK(!json_is_true(json_object_get(json_object_get(st, "node"), "running")));
    json_decref(st);
}

static void test_demo(void)
{
    char *out;
    CHECK(mg_test_cli(s_tmp, &out, "demo") == 0);
    CHECK(strstr(out, "Image partagée identique") != NULL);
    free(out);
}

/* Search rows owed after a bulk pull (mg_store_apply_bulk): status says
   so, listings warn on stderr with no daemon running, and both go quiet
   once the rows are written. */
static void test_pending_note(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/maillage.db", dir);
    mg_store_t *s = NULL;
    CHECK(mg_store_open(path, &s, NULL) == MG_OK);
    if (!s)
        return;
    /* The mark a pull leaves (from the first seq: every offer again). */
    CHECK(mg_store_meta_set(s, "offers_pending_seq", "1", NULL) == MG_OK);
    char *out = NULL;
    CHECK(mg_test_cli(dir, &out, "status") == 0);
    CHECK(out && strstr(out, "Index        : en construction") != NULL);
    free(out);
    json_t *st = mg_test_cli_json(dir, NULL, "status --json");
    CHECK(json_integer_value(json_object_get(st, "offers_pending")) > 0);
    json_decref(st);
    CHECK(mg_test_cli(dir, &out, "offer list") == 0);
    CHECK(out && strstr(out, "pas encore indexées") != NULL
          && strstr(out, "maillage node") != NULL);
    free(out);

    int64_t left = 1;
    for (int i = 0; i < 1000 && left > 0; i++)
        CHECK(mg_store_index_pending(s, 50, &left, NULL) == MG_OK);
    CHECK(left == 0);
    mg_store_destroy(&s);
    CHECK(mg_test_cli(dir, &out, "status") == 0);
    CHECK(out && strstr(out, "Index        :") == NULL);
    free(out);
    CHECK(mg_test_cli(dir, &out, "offer list") == 0);
    CHECK(out && strstr(out, "indexées") == NULL);
    free(out);
    st = mg_test_cli_json(dir, NULL, "status --json");
    CHECK(json_integer_value(json_object_get(st, "offers_pending")) == 0);
    json_decref(st);
}

int main(void)
{
    snprintf(s_tmp, sizeof s_tmp, "/tmp/mg-test-cli-XXXXXX");
    if (!mkdtemp(s_tmp))
        return 1;
    char dir[300], fresh[300];
    snprintf(dir, sizeof dir, "%s/node", s_tmp);
    snprintf(fresh, sizeof fresh, "%s/fresh", s_tmp);
    test_help();
    test_init(dir);
    test_profile_and_offers(dir);
    test_import_export(dir, fresh);
    test_pending_note(dir);
    test_daemon(dir, fresh);
    test_demo();
    int rc = mg_test_done("test_cli");
    if (rc == 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s_tmp);
    }
    return rc;
}
