/*  test_crash.c - crash safety with real processes and SIGKILL.

    1. A node killed mid-sync. A peer `maillage node` process holds
       50,000 offers (signed here by a third author and stored with
       mg_store_apply_batch, much faster than 50,000 CLI calls); a fresh
       node process pulls them and is SIGKILLed twice while it applies
       them. Right after each kill, the store is opened read-only and
       the version ids it holds are listed: that is what the node had
       committed. Then PRAGMA integrity_check (mg_store_check) must say
       ok, the node must start again, converge on the peer's fingerprint
       (`maillage status --json`), and still hold every listed version.
    2. An import killed mid-write. `maillage import` of 20,000 lieux is
       SIGKILLed once its transaction has started spilling pages into the
       WAL (uncommitted frames on disk): the store then holds none of them
       (or all, had the commit won the race), passes integrity_check, and
       a later import of the same file works.

    Every wait polls a condition until a deadline. MG_FAULT_SCALE
    (percent, default 100) shrinks the record counts for slow builds
    (AddressSanitizer) in the node part, to no fewer than 16,000; the test
    prints the sizes it used. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mg_store.h"
#include "mg_test.h"
#include "mg_testlib.h"
#include "mg_text.h"

static char s_root[256];
static int s_scale = 100; /* MG_FAULT_SCALE, percent */

static size_t s_scaled(size_t n)
{
    size_t v = n * (size_t) s_scale / 100;
    return v < 100 ? 100 : v;
}

typedef struct {
    char fp[64];
    int64_t versions;
    bool running;
} s_st_t;

static bool s_st(const char *dir, s_st_t *st)
{
    memset(st, 0, sizeof *st);
    json_t *j = mg_test_cli_json(dir, NULL, "status --json");
    if (!j)
        return false;
    const char *fp = json_string_value(json_object_get(j, "fingerprint"));
    snprintf(st->fp, sizeof st->fp, "%s", fp ? fp : "");
    st->versions = json_integer_value(json_object_get(j, "versions"));
    st->running = json_is_true(json_object_get(json_object_get(j, "node"), "running"));
    json_decref(j);
    return true;
}

/* Starts `maillage node` on `dir`, on 127.0.0.1 with a free port, its
   output appended to dir/node.log. */
static pid_t s_node_start(const char *dir)
{
    char log[512];
    snprintf(log, sizeof log, "%s/node.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execl(MG_BINARY, MG_BINARY, "--dir", dir, "node", "--listen", "tcp://127.0.0.1:*",
              "--interval", "200", (char *) NULL);
        _exit(127);
    }
    return pid;
}

/* Waits until status says the daemon on `dir` runs. */
static bool s_wait_running(const char *dir, int timeout_ms)
{
    for (int64_t end = mg_test_ms() + timeout_ms; mg_test_ms() < end; mg_test_sleep_ms(50)) {
        s_st_t st;
        if (s_st(dir, &st) && st.running)
            return true;
    }
    return false;
}

/* Sends `sig` and reaps the process; returns its wait status, -1 if it
   did not end before the deadline (then it is SIGKILLed). */
static int s_stop(pid_t pid, int sig, int timeout_ms)
{
    kill(pid, sig);
    int status = 0;
    for (int64_t end = mg_test_ms() + timeout_ms; mg_test_ms() < end; mg_test_sleep_ms(10))
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static void s_print_log(const char *dir)
{
    char *out = NULL;
    mg_test_sh(&out, "tail -n 20 '%s/node.log'", dir);
    fprintf(stderr, "--- %s/node.log (end)\n%s---\n", dir, out);
    free(out);
}

/* Signs `count` offers by a fresh author and stores them in `db` in
   batches, as if they had been received from the network. */
static bool s_fill(const char *db, size_t count, uint8_t author[32])
{
    mg_identity_t x;
    mg_identity_generate(&x);
    memcpy(author, x.pk, 32);
    mg_store_t *store = NULL;
    mg_why_t why;
    if (mg_store_open(db, &store, &why) != MG_OK) {
        fprintf(stderr, "open %s: %s\n", db, why.text);
        return false;
    }
    enum { BATCH = 1000 };
    mg_record_t **recs = calloc(BATCH, sizeof *recs);
    mg_apply_t *out = calloc(BATCH, sizeof *out);
    bool ok = true;
    char rid[32], nom[64];
    for (size_t base = 0; ok && base < count; base += BATCH) {
        size_t n = count - base < BATCH ? count - base : BATCH;
        for (size_t i = 0; i < n; i++) {
            snprintf(rid, sizeof rid, "crash-%06zu", base + i);
            snprintf(nom, sizeof nom, "Lieu %zu", base + i);
            mg_body_t *b = mg_test_offer_body(rid, nom, "16000");
            ok &= mg_record_sign(&x, "offer", rid, 1, 1700000000000, false, b, &recs[i],
                                 &why) == MG_OK;
            mg_body_destroy(&b);
        }
        if (ok && mg_store_apply_batch(store, recs, n, out, &why) != MG_OK) {
            fprintf(stderr, "apply_batch: %s\n", why.text);
            ok = false;
        }
        for (size_t i = 0; i < n; i++)
            mg_record_destroy(&recs[i]);
    }
    free(recs);
    free(out);
    mg_identity_wipe(&x);
    mg_store_destroy(&store);
    return ok;
}

/* Opens a store file read-only with plain SQLite: what another program
   sees right after a crash, without letting it write anything. */
static sqlite3 *s_open_ro(const char *db)
{
    sqlite3 *h = NULL;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "read-only open of %s: %s\n", db, h ? sqlite3_errmsg(h) : "?");
        sqlite3_close(h);
        return NULL;
    }
    sqlite3_busy_timeout(h, 5000);
    return h;
}

/* Records of `author` in `db`, read-only; -1 when unreadable. */
static int64_t s_count_author(const char *db, const uint8_t author[32])
{
    sqlite3 *h = s_open_ro(db);
    if (!h)
        return -1;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(h, "SELECT count(*) FROM record WHERE author = ?1", -1, &st, NULL)
        == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, author, 32, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* Every vid of `author` in `db` (32 bytes each); *count gets how many. */
static uint8_t *s_vids(const char *db, const uint8_t author[32], size_t *count)
{
    *count = 0;
    sqlite3 *h = s_open_ro(db);
    if (!h)
        return NULL;
    size_t cap = 1024;
    uint8_t *vids = malloc(cap * 32);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, "SELECT vid FROM record WHERE author = ?1", -1, &st, NULL)
        == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, author, 32, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (sqlite3_column_bytes(st, 0) != 32)
                continue;
            if (*count == cap)
                vids = realloc(vids, (cap *= 2) * 32);
            memcpy(vids + 32 * *count, sqlite3_column_blob(st, 0), 32);
            (*count)++;
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return vids;
}

/* How many of `vids` are missing from `db`. */
static size_t s_missing(const char *db, const uint8_t *vids, size_t count)
{
    sqlite3 *h = s_open_ro(db);
    if (!h)
        return count;
    size_t missing = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, "SELECT 1 FROM record WHERE vid = ?1", -1, &st, NULL) != SQLITE_OK)
        missing = count;
    for (size_t i = 0; st && i < count; i++) {
        sqlite3_bind_blob(st, 1, vids + 32 * i, 32, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW)
            missing++;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return missing;
}

static bool s_init(const char *dir, const char *name)
{
    char *out = NULL;
    int rc = mg_test_sh(&out, "'%s' --dir '%s' init --name '%s'", MG_BINARY, dir, name);
    if (rc != 0)
        fprintf(stderr, "init %s: %s\n", dir, out);
    free(out);
    return rc == 0;
}

/* Both nodes hold the same versions (status --json fingerprint). */
static bool s_converged(const char *a, const char *b, int64_t expect, int timeout_ms)
{
    s_st_t sa = {0}, sb = {0};
    for (int64_t end = mg_test_ms() + timeout_ms; mg_test_ms() < end; mg_test_sleep_ms(200)) {
        if (s_st(a, &sa) && s_st(b, &sb) && sa.fp[0] && strcmp(sa.fp, sb.fp) == 0
            && sa.versions == expect && sb.versions == expect)
            return true;
    }
    fprintf(stderr, "not converged: %s has %lld (%s), %s has %lld (%s), expected %lld\n", a,
            (long long) sa.versions, sa.fp, b, (long long) sb.versions, sb.fp,
            (long long) expect);
    return false;
}

/* ------------------------------------------------------------------ */

static void test_kill_node_mid_sync(void)
{
    /* At least 16,000 even when scaled down: the node commits a pull every
       20,000 records or 1 s (node/mg_node.c, S_BULK_RECORDS, S_BULK_MS),
       and the second kill must land with commits still to come. With
       5,000 the last commit followed the threshold within milliseconds;
       with 50,000 at 15,000 records/s, once in a CI run, the commit that
       crossed two thirds was the last one and the kill came after the
       end. 100,000 leaves a third (33,000 records, two commits or more). */
    size_t n = s_scaled(100000);
    if (n < 16000)
        n = 16000;
    char pdir[300], vdir[300], pdb[400], vdb[400];
    snprintf(pdir, sizeof pdir, "%s/peer", s_root);
    snprintf(vdir, sizeof vdir, "%s/victim", s_root);
    snprintf(pdb, sizeof pdb, "%s/maillage.db", pdir);
    snprintf(vdb, sizeof vdb, "%s/maillage.db", vdir);
    CHECK(s_init(pdir, "Pair source"));
    CHECK(s_init(vdir, "Nœud tué"));
    uint8_t author[32];
    int64_t t0 = mg_test_ms();
    CHECK(s_fill(pdb, n, author));
    printf("peer store: %zu offers signed and stored in %lld ms\n", n,
           (long long) (mg_test_ms() - t0));

    pid_t peer = s_node_start(pdir);
    CHECK(s_wait_running(pdir, 20000));
    char *invite = NULL;
    CHECK(mg_test_sh(&invite, "'%s' --dir '%s' invite", MG_BINARY, pdir) == 0);
    invite[strcspn(invite, "\n")] = '\0';
    CHECK(strncmp(invite, "maillage:", 9) == 0);
    char *out = NULL;
    CHECK(mg_test_sh(&out, "'%s' --dir '%s' peer add '%s'", MG_BINARY, vdir, invite) == 0);
    free(out);
    free(invite);

    /* Two kills: at a third and at two thirds of the transfer. Each time
       the node is in the middle of pulling batches. */
    t0 = mg_test_ms();
    pid_t victim = s_node_start(vdir);
    for (int round = 1; round <= 2; round++) {
        int64_t threshold = (int64_t) n * round / 3;
        int64_t have = 0;
        for (int64_t end = mg_test_ms() + 120000; mg_test_ms() < end && have < threshold; mg_test_sleep_ms(5))
            have = s_count_author(vdb, author);
        CHECK(have >= threshold);
        kill(victim, SIGKILL);
        int status = 0;
        waitpid(victim, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        /* What the node had committed when it died. */
        size_t committed = 0;
        uint8_t *vids = s_vids(vdb, author, &committed);
        printf("kill %d after %lld ms: %zu of %zu offers committed\n", round,
               (long long) (mg_test_ms() - t0), committed, n);
        CHECK(committed >= (size_t) threshold);
        CHECK(committed < n); /* killed mid-way, not after the end */
        CHECK(mg_test_intact(vdb));
        /* Its pid is still written in the store: status must not take
           the dead daemon for a running one. */
        s_st_t st;
        CHECK(s_st(vdir, &st) && !st.running);

        /* It starts again (the dead daemon's pid does not block it) and
           catches up; nothing it had committed is lost. */
        victim = s_node_start(vdir);
        CHECK(s_wait_running(vdir, 20000));
        if (round == 2) {
            /* n offers, two profiles. */
            bool ok = s_converged(pdir, vdir, (int64_t) n + 2, 180000);
            CHECK(ok);
            if (!ok) {
                s_print_log(pdir);
                s_print_log(vdir);
            }
            printf("converged %lld ms after the first start\n", (long long) (mg_test_ms() - t0));
        }
        CHECK(s_missing(vdb, vids, committed) == 0);
        free(vids);
    }
    CHECK(s_count_author(vdb, author) == (int64_t) n);
    int st = s_stop(victim, SIGTERM, 20000);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = s_stop(peer, SIGTERM, 20000);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(mg_test_intact(vdb));
    CHECK(mg_test_intact(pdb));
}

/* A standard-json file of `count` lieux. */
static bool s_write_lieux(const char *path, size_t count)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fputs("[", f);
    for (size_t i = 0; i < count; i++)
        fprintf(f,
                "%s{\"id\": \"gen-%06zu\", \"nom\": \"Lieu généré %zu\", "
                "\"services\": \"Prendre en main un smartphone ou une tablette;"
                "Utiliser le numérique au quotidien\", \"pivot\": \"00000000000000\", "
                "\"commune\": \"CHÂTEAUBERNARD\", \"code_postal\": \"16100\", "
                "\"adresse\": \"%zu allée des justes de France\", \"latitude\": 45.681367, "
                "\"longitude\": -0.331217, \"source\": \"test-crash\", "
                "\"date_maj\": \"2023-02-22\"}\n",
                i ? "," : "", i, i, i + 1);
    fputs("]\n", f);
    return fclose(f) == 0;
}

static int64_t s_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t) st.st_size : 0;
}

/* Runs `maillage import` and SIGKILLs it once the WAL has grown by
   `grown` bytes. Returns true if it was killed (false: it ended first). */
static bool s_import_killed(const char *dir, const char *file, int64_t grown)
{
    char wal[400];
    snprintf(wal, sizeof wal, "%s/maillage.db-wal", dir);
    int64_t start = s_file_size(wal);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execl(MG_BINARY, MG_BINARY, "--dir", dir, "import", file, (char *) NULL);
        _exit(127);
    }
    int status = 0;
    for (int64_t end = mg_test_ms() + 120000; mg_test_ms() < end; mg_test_sleep_ms(2)) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return false;
        if (s_file_size(wal) > start + grown) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return WIFSIGNALED(status);
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return false;
}

static int64_t s_offers(const char *dir)
{
    json_t *j = mg_test_cli_json(dir, NULL, "status --json");
    int64_t n = json_integer_value(
        json_object_get(json_object_get(json_object_get(j, "records"), "offer"), "live"));
    json_decref(j);
    return n;
}

static void test_kill_import(void)
{
    /* Not scaled: the kill must land while the import spills pages into
       the WAL, which a much smaller import never does. */
    const size_t n = 20000;
    char dir[300], db[400], file[400];
    snprintf(dir, sizeof dir, "%s/import", s_root);
    snprintf(db, sizeof db, "%s/maillage.db", dir);
    snprintf(file, sizeof file, "%s/lieux.json", s_root);
    CHECK(s_init(dir, "Import interrompu"));
    CHECK(s_write_lieux(file, n));

    /* As soon as the first uncommitted pages reach the WAL, then deep
       into the write. */
    const int64_t depths[] = {0, 8 * 1024 * 1024};
    for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
        bool killed = s_import_killed(dir, file, depths[k]);
        CHECK(killed);
        int64_t offers = s_offers(dir);
        printf("import of %zu lieux killed %s (WAL +%lld bytes): %lld offers in the store\n",
               n, killed ? "mid-write" : "too late", (long long) depths[k],
               (long long) offers);
        CHECK(offers == 0 || offers == (int64_t) n);
        CHECK(mg_test_intact(db));
    }
    /* The store is usable: the same import, uninterrupted, brings all. */
    char *out = NULL;
    int rc = mg_test_sh(&out, "'%s' --dir '%s' import '%s'", MG_BINARY, dir, file);
    CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    free(out);
    CHECK(s_offers(dir) == (int64_t) n);
    CHECK(mg_test_intact(db));
}

int main(void)
{
    const char *scale = getenv("MG_FAULT_SCALE");
    if (scale && atoi(scale) > 0 && atoi(scale) <= 100)
        s_scale = atoi(scale);
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(s_root, sizeof s_root, "/tmp/mg-test-crash-XXXXXX");
    if (!mkdtemp(s_root))
        return 1;
    printf("MG_FAULT_SCALE=%d%%\n", s_scale);
    int64_t t0 = mg_test_ms();
    test_kill_node_mid_sync();
    printf("node killed mid-sync: %lld ms\n", (long long) (mg_test_ms() - t0));
    t0 = mg_test_ms();
    test_kill_import();
    printf("import killed mid-write: %lld ms\n", (long long) (mg_test_ms() - t0));
    int rc = mg_test_done("test_crash");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_root);
    if (rc == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_root);
    return rc;
}
