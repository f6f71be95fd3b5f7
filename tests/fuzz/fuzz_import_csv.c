/*  fuzz_import_csv.c - libFuzzer target: `maillage import` of a CSV file
    in the national standard (tools/mg_import.h), any schema generation.

    Input: the file's bytes. They are written to a file in a tmpfs
    directory (/dev/shm when there is one) and imported with
    mg_import_file, as the command line does, into one in-memory store
    kept for the whole run: when an import commits, the store is copied
    back from a pristine image (SQLite's backup API, a few pages), so every
    run starts from the same empty store and runs take milliseconds.

    Invariants checked: a refused import explains itself and writes
    nothing (all or nothing); an accepted one returns a report whose
    counts add up, stores only offers of this node's identity that pass
    the strict offer rules, and importing the same file again changes
    nothing (every lieu unchanged). The report is also printed and turned
    into JSON, as the command line does.

    Built as a fuzzer by tests/fuzz/CMakeLists.txt; tests/test_hostile.c
    replays the committed corpus through it. */
#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_import.h"
#include "mg_offer.h"
#include "mg_record.h"
#include "mg_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_FORMAT MG_FORMAT_STANDARD_CSV
#define S_NAME "fuzz_import_csv"
#define S_FILE "input.csv"

#define S_CHECK(cond)                                                      \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,     \
                    __LINE__, #cond);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

static char s_dir[256];       /* the run's temporary directory */
static char s_path[300];      /* the file imported at every run */
static mg_store_t *s_store;   /* reused across runs */
static sqlite3 *s_pristine;   /* the store's empty image */
static mg_identity_t s_id;    /* the importing node */
static FILE *s_null;          /* where reports are printed */
static int s_commits;         /* commits since the last restore */

static void s_cleanup(void)
{
    unlink(s_path);
    rmdir(s_dir);
}

static int s_on_commit(void *arg)
{
    (void) arg;
    s_commits++;
    return 0; /* let it commit */
}

/* Copies the whole database `from` into `to`. */
static void s_copy_db(sqlite3 *to, sqlite3 *from)
{
    sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
    if (!b || sqlite3_backup_step(b, -1) != SQLITE_DONE
        || sqlite3_backup_finish(b) != SQLITE_OK) {
        fprintf(stderr, S_NAME ": backup: %s\n", sqlite3_errmsg(to));
        abort();
    }
}

static void s_init(void)
{
    if (s_store)
        return;
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)
                               && access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(s_dir, sizeof s_dir, "%s/mg-fuzz-XXXXXX", base);
    if (!mkdtemp(s_dir)) {
        perror(S_NAME ": mkdtemp");
        abort();
    }
    snprintf(s_path, sizeof s_path, "%s/" S_FILE, s_dir);
    atexit(s_cleanup);
    uint8_t seed[32];
    memset(seed, 0x42, sizeof seed);
    if (mg_identity_from_seed(&s_id, seed) != MG_OK)
        abort();
    mg_why_t why;
    if (mg_store_open(":memory:", &s_store, &why) != MG_OK) {
        fprintf(stderr, S_NAME ": store: %s\n", why.text);
        abort();
    }
    if (sqlite3_open(":memory:", &s_pristine) != SQLITE_OK)
        abort();
    s_copy_db(s_pristine, mg_store_db(s_store));
    sqlite3_commit_hook(mg_store_db(s_store), s_on_commit, NULL);
    s_null = fopen("/dev/null", "w");
    if (!s_null)
        abort();
}

static void s_progress(size_t done, size_t total, void *arg)
{
    (void) arg;
    S_CHECK(done <= total);
}

/* Every stored offer is ours and passes the strict rules. */
static int s_check_offer(const mg_record_t *rec, void *arg)
{
    size_t *count = arg;
    (*count)++;
    mg_why_t why;
    S_CHECK(memcmp(mg_record_author(rec), s_id.pk, MG_KEY_BYTES) == 0);
    if (mg_offer_validate(mg_record_body(rec), &why) != MG_OK) {
        fprintf(stderr, S_NAME ": stored offer %s breaks the rules: %s\n",
                mg_record_rid(rec), why.text);
        abort();
    }
    return 0;
}

static void s_write(const uint8_t *data, size_t size)
{
    FILE *f = fopen(s_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(S_NAME ": write");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_init();
    s_write(data, size);
    s_commits = 0;
    mg_import_report_t *report = NULL;
    mg_why_t why;
    int rc = mg_import_file(s_store, &s_id, s_path, S_FORMAT, s_progress,
                            NULL, &report, &why);
    int64_t seq = -1;
    S_CHECK(mg_store_last_seq(s_store, &seq) == MG_OK);
    if (rc != MG_OK) {
        /* Refused: explained, nothing written. */
        S_CHECK(rc < 0 && why.text[0] != '\0' && report == NULL);
        S_CHECK(s_commits == 0 && seq == 0);
        return 0;
    }
    S_CHECK(report != NULL);
    size_t read = mg_import_report_read(report);
    size_t written = mg_import_report_new(report)
                     + mg_import_report_updated(report);
    /* An identical duplicate is read but neither new nor unchanged. */
    S_CHECK(written + mg_import_report_unchanged(report) <= read);
    S_CHECK(mg_import_report_updated(report) == 0); /* the store was empty */
    mg_import_report_print(report, s_null);
    json_t *j = mg_import_report_json(report);
    char *text = j ? json_dumps(j, 0) : NULL;
    free(text);
    json_decref(j);
    mg_import_report_destroy(&report);
    size_t offers = 0;
    S_CHECK(mg_store_records(s_store, "offer", true, s_check_offer, &offers,
                             &why) == MG_OK);
    S_CHECK(offers == written);
    S_CHECK(written == 0 || seq > 0);

    /* The same file again: every lieu is unchanged. */
    rc = mg_import_file(s_store, &s_id, s_path, S_FORMAT, NULL, NULL, &report,
                        &why);
    if (rc != MG_OK) {
        fprintf(stderr, S_NAME ": second import refused: %s\n", why.text);
        abort();
    }
    S_CHECK(mg_import_report_new(report) == 0
            && mg_import_report_updated(report) == 0);
    mg_import_report_destroy(&report);
    int64_t seq2 = -1;
    S_CHECK(mg_store_last_seq(s_store, &seq2) == MG_OK && seq2 == seq);

    if (s_commits)
        s_copy_db(mg_store_db(s_store), s_pristine);
    return 0;
}
