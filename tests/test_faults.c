/*  test_faults.c - disk and database faults: disk full, I/O errors,
    read-only database, database locked by another program.

    I/O errors are injected, not provoked by hand: the test registers an
    SQLite VFS shim as the default VFS of this process. It wraps the
    platform VFS and, when armed, lets `countdown` writes (or syncs)
    through and then fails the next one with SQLITE_FULL or an
    SQLITE_IOERR code -- once (a transient fault) or from then on (a full
    disk). Only files whose path contains `match` are affected, so one
    engine of a pair can be given a full disk while the other is fine.
    SQLite's own test suite does this (test_vfs.c, the ioerr tests): sweep
    the failing call over every write an operation makes, and after each
    failure check that the operation failed cleanly, the database is
    intact (integrity_check) and unchanged (fingerprint), and the same
    operation succeeds once the fault is gone.

    The CLI faults (read-only database, database locked) run the real
    `maillage` binary in another process. MG_FAULT_SCALE (percent,
    default 100) makes the sweeps sparser and the engine's batches
    smaller for slow builds (AddressSanitizer). */
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mg_import.h"
#include "mg_node.h"
#include "mg_store.h"
#include "mg_test.h"
#include "mg_testlib.h"
#include "mg_text.h"

static char s_root[256];
static int s_scale = 100; /* MG_FAULT_SCALE, percent */

static size_t s_scaled(size_t n, size_t min)
{
    size_t v = n * (size_t) s_scale / 100;
    return v < min ? min : v;
}

/* ------------------------------------------------------------------ */
/* The fault-injecting VFS                                              */

enum { S_OP_WRITE = 1, S_OP_SYNC = 2, S_OP_TRUNCATE = 4 };

/* The switches, read by whichever thread does I/O (engines run in their
   own threads), hence atomics. `match` is only changed while no
   connection is being opened. */
static struct {
    sqlite3_vfs *real;          /* the platform VFS we wrap */
    atomic_int armed;           /* 0: every call goes through */
    atomic_long countdown;      /* calls still let through before failing */
    atomic_int rc;              /* what a failing write returns */
    atomic_int ops;             /* S_OP_* that may fail */
    atomic_int persist;         /* keep failing after the first failure */
    atomic_long hits;           /* calls failed so far */
    char match[512];            /* only files whose path contains this */
} s_fault;

typedef struct {
    sqlite3_file base;          /* our methods */
    sqlite3_file *real;         /* the wrapped file, right after this struct */
    bool target;                /* its path contains s_fault.match */
} s_file_t;

/* Arms the fault: `countdown` calls of `ops` succeed, then they fail
   with `rc` (writes) -- once, or from then on when `persist`. */
static void s_arm(int ops, long countdown, int rc, bool persist)
{
    atomic_store(&s_fault.armed, 0);
    atomic_store(&s_fault.ops, ops);
    atomic_store(&s_fault.countdown, countdown);
    atomic_store(&s_fault.rc, rc);
    atomic_store(&s_fault.persist, persist ? 1 : 0);
    atomic_store(&s_fault.hits, 0);
    atomic_store(&s_fault.armed, 1);
}

static void s_disarm(void)
{
    atomic_store(&s_fault.armed, 0);
}

static bool s_should_fail(s_file_t *f, int op)
{
    if (!atomic_load(&s_fault.armed) || !f->target || !(atomic_load(&s_fault.ops) & op))
        return false;
    long left = atomic_fetch_sub(&s_fault.countdown, 1);
    if (left > 0 || (left < 0 && !atomic_load(&s_fault.persist)))
        return false;
    atomic_fetch_add(&s_fault.hits, 1);
    return true;
}

static int s_close(sqlite3_file *file)
{
    s_file_t *f = (s_file_t *) file;
    return f->real->pMethods->xClose(f->real);
}

static int s_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
    s_file_t *f = (s_file_t *) file;
    return f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int s_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
    s_file_t *f = (s_file_t *) file;
    if (s_should_fail(f, S_OP_WRITE))
        return atomic_load(&s_fault.rc);
    return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int s_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    s_file_t *f = (s_file_t *) file;
    if (s_should_fail(f, S_OP_TRUNCATE))
        return SQLITE_IOERR_TRUNCATE;
    return f->real->pMethods->xTruncate(f->real, size);
}

static int s_sync(sqlite3_file *file, int flags)
{
    s_file_t *f = (s_file_t *) file;
    if (s_should_fail(f, S_OP_SYNC))
        return SQLITE_IOERR_FSYNC;
    return f->real->pMethods->xSync(f->real, flags);
}

static int s_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    s_file_t *f = (s_file_t *) file;
    return f->real->pMethods->xFileSize(f->real, size);
}

static int s_lock(sqlite3_file *file, int lock)
{
    s_file_t *f = (s_file_t *) file;
    return f->real->pMethods->xLock(f->real, lock);
}

static int s_unlock(sqlite3_file *file, int lock)
{
    s_file_t *f = (s_file_t *) file;
    return f->real->pMethods->xUnlock(f->real, lock);
}

static int s_check_reserved(sqlite3_file *file, int *out)
{
    s_file_t *f = (s_file_t *) file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int s_file_control(sqlite3_file *file, int op, void *arg)
{
    s_file_t *f = (s_file_t *) file;
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int s_sector_size(sqlite3_file *file)
{
    s_file_t *f = (s_file_t *) file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int s_device_chars(sqlite3_file *file)
{
    s_file_t *f = (s_file_t *) file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* Shared memory (WAL index) and memory-mapped reads go straight through;
   a wrapped file of an older method version does without them. */
static int s_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
    s_file_t *f = (s_file_t *) file;
    if (f->real->pMethods->iVersion < 2)
        return SQLITE_IOERR_SHMMAP;
    return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}

static int s_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    s_file_t *f = (s_file_t *) file;
    if (f->real->pMethods->iVersion < 2)
        return SQLITE_IOERR_SHMLOCK;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void s_shm_barrier(sqlite3_file *file)
{
    s_file_t *f = (s_file_t *) file;
    if (f->real->pMethods->iVersion >= 2)
        f->real->pMethods->xShmBarrier(f->real);
}

static int s_shm_unmap(sqlite3_file *file, int delete_flag)
{
    s_file_t *f = (s_file_t *) file;
    if (f->real->pMethods->iVersion < 2)
        return SQLITE_OK;
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int s_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
    s_file_t *f = (s_file_t *) file;
    if (f->real->pMethods->iVersion < 3) {
        *out = NULL;
        return SQLITE_OK;
    }
    return f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int s_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    s_file_t *f = (s_file_t *) file;
    if (f->real->pMethods->iVersion < 3)
        return SQLITE_OK;
    return f->real->pMethods->xUnfetch(f->real, off, p);
}

static const sqlite3_io_methods s_io = {
    3,
    s_close, s_read, s_write, s_truncate, s_sync, s_file_size, s_lock, s_unlock,
    s_check_reserved, s_file_control, s_sector_size, s_device_chars,
    s_shm_map, s_shm_lock, s_shm_barrier, s_shm_unmap, s_fetch, s_unfetch,
};

static int s_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                  int *out_flags)
{
    (void) vfs;
    s_file_t *f = (s_file_t *) file;
    f->real = (sqlite3_file *) (f + 1);
    f->target = name && strstr(name, s_fault.match) != NULL;
    int rc = s_fault.real->xOpen(s_fault.real, name, f->real, flags, out_flags);
    /* SQLite calls xClose only when pMethods is set. */
    f->base.pMethods = f->real->pMethods ? &s_io : NULL;
    return rc;
}

static int s_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void) vfs;
    return s_fault.real->xDelete(s_fault.real, name, sync_dir);
}

static int s_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void) vfs;
    return s_fault.real->xAccess(s_fault.real, name, flags, out);
}

static int s_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void) vfs;
    return s_fault.real->xFullPathname(s_fault.real, name, n, out);
}

static void *s_dl_open(sqlite3_vfs *vfs, const char *name)
{
    (void) vfs;
    return s_fault.real->xDlOpen(s_fault.real, name);
}

static void s_dl_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void) vfs;
    s_fault.real->xDlError(s_fault.real, n, out);
}

static void (*s_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void) vfs;
    return s_fault.real->xDlSym(s_fault.real, h, sym);
}

static void s_dl_close(sqlite3_vfs *vfs, void *h)
{
    (void) vfs;
    s_fault.real->xDlClose(s_fault.real, h);
}

static int s_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void) vfs;
    return s_fault.real->xRandomness(s_fault.real, n, out);
}

static int s_sleep(sqlite3_vfs *vfs, int us)
{
    (void) vfs;
    return s_fault.real->xSleep(s_fault.real, us);
}

static int s_current_time(sqlite3_vfs *vfs, double *out)
{
    (void) vfs;
    return s_fault.real->xCurrentTime(s_fault.real, out);
}

static int s_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void) vfs;
    return s_fault.real->xGetLastError(s_fault.real, n, out);
}

static int s_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void) vfs;
    return s_fault.real->xCurrentTimeInt64(s_fault.real, out);
}

static sqlite3_vfs s_vfs;

/* Registers the shim as this process's default VFS. */
static bool s_vfs_install(void)
{
    s_fault.real = sqlite3_vfs_find(NULL);
    if (!s_fault.real || s_fault.real->iVersion < 2)
        return false;
    s_vfs = (sqlite3_vfs) {
        .iVersion = 2,
        .szOsFile = (int) sizeof(s_file_t) + s_fault.real->szOsFile,
        .mxPathname = s_fault.real->mxPathname,
        .zName = "mg-fault",
        .xOpen = s_open,
        .xDelete = s_delete,
        .xAccess = s_access,
        .xFullPathname = s_full_pathname,
        .xDlOpen = s_dl_open,
        .xDlError = s_dl_error,
        .xDlSym = s_dl_sym,
        .xDlClose = s_dl_close,
        .xRandomness = s_randomness,
        .xSleep = s_sleep,
        .xCurrentTime = s_current_time,
        .xGetLastError = s_last_error,
        .xCurrentTimeInt64 = s_current_time64,
    };
    return sqlite3_vfs_register(&s_vfs, 1) == SQLITE_OK;
}

/* ------------------------------------------------------------------ */
/* Records and stores                                                   */

/* `count` new offers by `id`, rids prefix-0..count-1, at `counter`. */
static mg_record_t **s_sign(const mg_identity_t *id, const char *prefix, size_t count,
                            uint64_t counter)
{
    mg_record_t **recs = calloc(count, sizeof *recs);
    char rid[64], nom[96];
    for (size_t i = 0; i < count; i++) {
        snprintf(rid, sizeof rid, "%s-%05zu", prefix, i);
        snprintf(nom, sizeof nom, "Lieu %s %zu", prefix, i);
        mg_body_t *b = mg_test_offer_body(rid, nom, "16000");
        mg_record_sign(id, "offer", rid, counter, 1700000000000, false, b, &recs[i], NULL);
        mg_body_destroy(&b);
    }
    return recs;
}

static void s_free_records(mg_record_t **recs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        mg_record_destroy(&recs[i]);
    free(recs);
}

typedef struct {
    uint8_t fp[MG_FINGERPRINT_BYTES];
    int64_t count;
} s_snap_t;

static bool s_snap(mg_store_t *store, s_snap_t *snap)
{
    return mg_store_fingerprint(store, snap->fp, &snap->count, NULL) == MG_OK;
}

static bool s_snap_eq(const s_snap_t *a, const s_snap_t *b)
{
    return a->count == b->count && memcmp(a->fp, b->fp, sizeof a->fp) == 0;
}

static bool s_check(mg_store_t *store)
{
    mg_why_t why;
    if (mg_store_check(store, &why) == MG_OK)
        return true;
    fprintf(stderr, "integrity: %s\n", why.text);
    return false;
}

/* Whether the message a person sees names the fault in plain French and
   so tells what to do: free some disk space, check the disk, give write
   permission. SQLite's English text ("database or disk is full") may
   follow, but is not enough on its own for the staff who read it. */
static bool s_clear_message(const char *text, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return strstr(text, "disque plein") || strstr(text, "plus de place")
               || strstr(text, "espace disque");
    case SQLITE_READONLY:
        return strstr(text, "lecture seule") != NULL;
    default:
        return strstr(text, "entrée-sortie") || strstr(text, "entrée/sortie")
               || strstr(text, "erreur du disque") || strstr(text, "erreur disque");
    }
}

/* The code an injected fault may come back as: a database error, or an
   I/O error once the store tells disk faults apart. */
static bool s_fault_rc(int rc)
{
    return rc == MG_ERR_DB || rc == MG_ERR_IO;
}

/* Counts unclear messages; prints the first of each kind. */
static int s_unclear(const char *where, const char *text, int rc, int *count)
{
    if (s_clear_message(text, rc))
        return 0;
    if ((*count)++ == 0)
        printf("  unclear message (%s): \"%s\"\n", where, text);
    return 1;
}

/* ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    int ops;
    int rc;
    bool persist;
} s_mode_t;

static const s_mode_t s_modes[] = {
    {"disk full (write, persistent)", S_OP_WRITE, SQLITE_FULL, true},
    {"I/O error (write, persistent)", S_OP_WRITE, SQLITE_IOERR_WRITE, true},
    {"I/O error (write, once)", S_OP_WRITE, SQLITE_IOERR_WRITE, false},
    {"I/O error (sync or truncate, persistent)", S_OP_SYNC | S_OP_TRUNCATE, SQLITE_IOERR, true},
};

/* Which countdowns to try: every one at first, then sparser (much
   sparser when MG_FAULT_SCALE asks for a shorter run). */
static long s_next_k(long k)
{
    if (s_scale < 100)
        return k < 8 ? k + 1 : k + 1 + k / 2;
    return k < 24 ? k + 1 : k + 1 + k / 6;
}

/* A bulk pull's way of writing: one transaction, the batch applied in
   two calls of mg_store_apply_bulk (no savepoint), then the commit. */
static int s_apply_bulk_txn(mg_store_t *store, mg_record_t **recs, size_t n, mg_apply_t *out,
                            mg_why_t *why)
{
    int rc = mg_store_begin(store, why);
    /* A page cache of 8 pages spills to the WAL inside the transaction,
       so that faults also hit mg_store_apply_bulk, not only the commit. */
    if (rc == MG_OK)
        sqlite3_exec(mg_store_db(store), "PRAGMA cache_size = 8", NULL, NULL, NULL);
    if (rc == MG_OK)
        rc = mg_store_apply_bulk(store, recs, n / 2, out, why);
    if (rc == MG_OK)
        rc = mg_store_apply_bulk(store, recs + n / 2, n - n / 2, out + n / 2, why);
    if (rc == MG_OK)
        rc = mg_store_commit(store, why);
    if (rc != MG_OK)
        mg_store_rollback(store);
    mg_store_release_memory(store); /* back to the normal cache */
    return rc;
}

static int s_apply(bool bulk, mg_store_t *store, mg_record_t **recs, size_t n, mg_apply_t *out,
                   mg_why_t *why)
{
    return bulk ? s_apply_bulk_txn(store, recs, n, out, why)
                : mg_store_apply_batch(store, recs, n, out, why);
}

/* mg_store_apply_batch (or, with `bulk`, a transaction of
   mg_store_apply_bulk) while the k-th write fails, for every k until the
   batch goes through untouched. The store's WAL is checkpointed often
   (wal_autocheckpoint 40 pages on this connection) so that the sweep
   also hits the main file's writes and syncs. */
static void test_apply_batch(bool bulk)
{
    const char *what = bulk ? "apply_bulk" : "apply_batch";
    char path[400];
    snprintf(path, sizeof path, "%s/%s.db", s_root, what);
    snprintf(s_fault.match, sizeof s_fault.match, "%s/%s.db", s_root, what);
    mg_store_t *store = NULL;
    CHECK_RC(mg_store_open(path, &store, NULL), MG_OK);
    sqlite3_exec(mg_store_db(store), "PRAGMA wal_autocheckpoint = 40", NULL, NULL, NULL);
    mg_identity_t x;
    mg_identity_generate(&x);
    enum { N = 60 };
    mg_apply_t out[N];
    mg_record_t **base = s_sign(&x, "base", 300, 1);
    for (size_t i = 0; i < 300; i += N)
        CHECK_RC(mg_store_apply_batch(store, base + i, N, out, NULL), MG_OK);
    s_free_records(base, 300);

    int batch_no = 0;
    for (size_t m = 0; m < sizeof s_modes / sizeof s_modes[0]; m++) {
        const s_mode_t *mode = &s_modes[m];
        int failures = 0, tries = 0, unclear = 0;
        for (long k = 0;; k = s_next_k(k)) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "b%d", batch_no++);
            mg_record_t **recs = s_sign(&x, prefix, N, 1);
            s_snap_t before, after;
            CHECK(s_snap(store, &before));
            mg_why_t why;
            mg_why_clear(&why);
            s_arm(mode->ops, k, mode->rc, mode->persist);
            int rc = s_apply(bulk, store, recs, N, out, &why);
            s_disarm();
            long hits = atomic_load(&s_fault.hits);
            tries++;
            CHECK(s_snap(store, &after));
            CHECK(s_check(store));
            if (rc == MG_OK) {
                /* All of it, whatever failed after the commit (a
                   checkpoint's sync is retried by the next one). */
                CHECK(after.count == before.count + N);
                for (size_t i = 0; i < N; i++)
                    CHECK(out[i] == MG_APPLY_NEW);
            } else {
                failures++;
                /* None of it, and a message that says what happened; a
                   fresh connection (another program) sees the same. */
                CHECK(s_fault_rc(rc));
                CHECK(s_snap_eq(&before, &after));
                mg_store_t *other = NULL;
                s_snap_t seen = {0};
                CHECK(mg_store_open(path, &other, NULL) == MG_OK && s_snap(other, &seen)
                      && s_snap_eq(&before, &seen));
                mg_store_destroy(&other);
                s_unclear(mode->name, why.text, mode->rc, &unclear);
                /* The disk has room again: the same batch goes in. */
                CHECK_RC(s_apply(bulk, store, recs, N, out, &why), MG_OK);
                CHECK(s_snap(store, &after));
                CHECK(after.count == before.count + N);
            }
            s_free_records(recs, N);
            if (hits == 0)
                break; /* the batch made fewer calls than k: swept */
            if (k > 2000) {
                CHECK(!"sweep did not end");
                break;
            }
        }
        printf("%s, %s: %d countdowns tried, %d failed cleanly\n", what, mode->name, tries,
               failures);
        if (mode->ops & S_OP_WRITE)
            CHECK(failures > 0);
        CHECK(unclear == 0);
    }
    CHECK(s_check(store));
    mg_store_destroy(&store);
    mg_identity_wipe(&x);
}

static void test_apply_batch_one(void)
{
    test_apply_batch(false);
}

static void test_apply_bulk(void)
{
    test_apply_batch(true);
}

/* Creating a store (schema migration) while the k-th write fails: it
   either opens or says why, and a later open works. */
static void test_open(void)
{
    int failures = 0, unclear = 0;
    for (long k = 0;; k = s_next_k(k)) {
        char path[400];
        snprintf(path, sizeof path, "%s/open-%ld.db", s_root, k);
        snprintf(s_fault.match, sizeof s_fault.match, "%s", path);
        mg_store_t *store = NULL;
        mg_why_t why;
        mg_why_clear(&why);
        s_arm(S_OP_WRITE, k, SQLITE_FULL, true);
        int rc = mg_store_open(path, &store, &why);
        s_disarm();
        long hits = atomic_load(&s_fault.hits);
        if (rc != MG_OK) {
            failures++;
            CHECK(s_fault_rc(rc));
            s_unclear("store creation", why.text, SQLITE_FULL, &unclear);
        }
        mg_store_destroy(&store);
        CHECK_RC(mg_store_open(path, &store, &why), MG_OK);
        CHECK(store && s_check(store));
        int64_t last = -1;
        CHECK(store && mg_store_last_seq(store, &last) == MG_OK && last == 0);
        mg_store_destroy(&store);
        if (hits == 0)
            break;
    }
    printf("store creation: %d countdowns failed cleanly\n", failures);
    CHECK(failures > 0);
    CHECK(unclear == 0);
}

static int64_t s_offers(mg_store_t *store)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(mg_store_db(store), "SELECT count(*) FROM record WHERE kind = 'offer'",
                           -1, &st, NULL) == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* mg_import_file (188 lieux of Charente, one transaction) while the
   k-th write fails. With a small page cache (10 pages) the import spills
   pages to the WAL while it applies, so failures land in the middle of
   the transaction too, not only in its commit. */
static void test_import(void)
{
    char file[400];
    snprintf(file, sizeof file, "%s/charente-2023-07.json", MG_TEST_DATA);
    mg_identity_t id;
    mg_identity_generate(&id);
    for (int small_cache = 0; small_cache < 2; small_cache++) {
        int failures = 0, tries = 0, unclear = 0;
        for (long k = 0;; k = s_next_k(k)) {
            char path[400];
            snprintf(path, sizeof path, "%s/import-%d-%ld.db", s_root, small_cache, k);
            snprintf(s_fault.match, sizeof s_fault.match, "%s", path);
            mg_store_t *store = NULL;
            CHECK_RC(mg_store_open(path, &store, NULL), MG_OK);
            if (small_cache)
                sqlite3_exec(mg_store_db(store), "PRAGMA cache_size = 10", NULL, NULL, NULL);
            s_snap_t before, after;
            CHECK(s_snap(store, &before));
            mg_why_t why;
            mg_why_clear(&why);
            s_arm(S_OP_WRITE, k, SQLITE_FULL, true);
            int rc = mg_import_file(store, &id, file, MG_FORMAT_AUTO, NULL, NULL, NULL, &why);
            s_disarm();
            long hits = atomic_load(&s_fault.hits);
            tries++;
            CHECK(s_check(store));
            CHECK(s_snap(store, &after));
            if (rc == MG_OK) {
                CHECK(s_offers(store) == 188);
            } else {
                failures++;
                CHECK(s_fault_rc(rc));
                CHECK(s_snap_eq(&before, &after)); /* all or nothing */
                CHECK(s_offers(store) == 0);
                s_unclear("import", why.text, SQLITE_FULL, &unclear);
                mg_why_clear(&why);
                CHECK_RC(mg_import_file(store, &id, file, MG_FORMAT_AUTO, NULL, NULL, NULL,
                                        &why),
                         MG_OK);
                CHECK(s_offers(store) == 188);
            }
            CHECK(s_check(store));
            mg_store_destroy(&store);
            if (hits == 0)
                break;
        }
        printf("import, %s page cache: %d countdowns tried, %d failed cleanly\n",
               small_cache ? "small" : "default", tries, failures);
        CHECK(failures > 0);
        CHECK(unclear == 0);
    }
    mg_identity_wipe(&id);
}

/* ------------------------------------------------------------------ */
/* An engine whose disk is full                                         */

static void s_node_init(mg_test_node_t *n, const char *name)
{
    mg_test_node_init(n, s_root, name);
    CHECK(mg_test_profile_v1(n));
}

/* Engines log here (not quiet): the test counts their warnings. */
static bool s_node_start(mg_test_node_t *n, bool listen)
{
    mg_node_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return false;
    cfg->interval_ms = 200;
    bool ok = mg_test_node_start(n, listen, cfg, 20000);
    free(cfg);
    return ok;
}

static char s_log_path[400];

/* Lines of the engines' log containing `needle`. */
static int s_log_count(const char *needle)
{
    FILE *f = fopen(s_log_path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* The last line of the engines' log containing `needle` ("" if none). */
static void s_log_last(const char *needle, char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen(s_log_path, "r");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            snprintf(out, size, "%s", line);
    fclose(f);
}

/* One fault phase: the source gets `count` new offers while the victim
   cannot write; the victim keeps running, stores nothing partial, says
   why in its log, and catches up once the fault is gone. */
static void s_engine_phase(mg_test_node_t *src, mg_test_node_t *victim, const mg_identity_t *x,
                           const char *prefix, size_t count, int rc)
{
    s_snap_t v0;
    CHECK(s_snap(victim->store, &v0));
    int warned0 = s_log_count("écriture impossible");
    s_arm(S_OP_WRITE, 0, rc, true);
    mg_record_t **recs = s_sign(x, prefix, count, 1);
    mg_apply_t *out = calloc(count, sizeof *out);
    CHECK_RC(mg_store_apply_batch(src->store, recs, count, out, NULL), MG_OK);
    free(out);
    s_free_records(recs, count);

    /* The victim tries, fails, says why, and tries again. */
    int64_t t0 = mg_test_ms();
    bool retried = false;
    for (int64_t end = mg_test_ms() + 30000; mg_test_ms() < end && !retried; mg_test_sleep_ms(50))
        retried = s_log_count("écriture impossible") >= warned0 + 2;
    CHECK(retried);
    int64_t failing_ms = mg_test_ms() - t0;
    char line[4096];
    s_log_last("écriture impossible", line, sizeof line);
    int unclear = 0;
    s_unclear("engine log", line, rc, &unclear);
    CHECK(unclear == 0);
    mg_test_stats_t st;
    CHECK(mg_test_stats(victim, &st)); /* still answering */
    s_snap_t v1;
    CHECK(s_snap(victim->store, &v1));
    CHECK(s_snap_eq(&v0, &v1)); /* nothing half-written */
    CHECK(s_check(victim->store));
    long hits = atomic_load(&s_fault.hits);
    int warned = s_log_count("écriture impossible") - warned0;
    s_disarm();
    printf("engine, %s: %ld writes failed, %d warnings in %lld ms; ", prefix, hits, warned,
           (long long) failing_ms);

    /* Room again: it catches up. */
    t0 = mg_test_ms();
    bool same = mg_test_same(src, victim, 60000);
    CHECK(same);
    printf("caught up %lld ms after the disk came back\n", (long long) (mg_test_ms() - t0));
    CHECK(s_check(victim->store));
}

static void test_engine(void)
{
    snprintf(s_log_path, sizeof s_log_path, "%s/engines.log", s_root);
    FILE *log = fopen(s_log_path, "w");
    setvbuf(log, NULL, _IOLBF, 0);
    zsys_set_logstream(log);
    mg_test_node_t src, victim;
    s_node_init(&src, "source");
    s_node_init(&victim, "victim");
    snprintf(s_fault.match, sizeof s_fault.match, "%s", victim.db);
    mg_identity_t x;
    mg_identity_generate(&x);
    CHECK(s_node_start(&src, true));
    mg_store_peer_add(victim.store, src.id.pk, src.endpoint, "invite", 1, NULL, NULL);
    CHECK(s_node_start(&victim, false));
    CHECK(mg_test_same(&src, &victim, 20000));

    /* The source pushes the new offers at once; what the victim could
       not store comes back through reconciliation once it can. */
    s_engine_phase(&src, &victim, &x, "plein", s_scaled(3000, 300), SQLITE_FULL);
    s_engine_phase(&src, &victim, &x, "ioerr", s_scaled(300, 100), SQLITE_IOERR_WRITE);

    /* Locked by another program beyond the busy timeout (5 s): the
       engine says so, then catches up when the lock goes. */
    sqlite3 *other = NULL;
    CHECK(sqlite3_open_v2(victim.db, &other, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    int busy0 = s_log_count("occupée");
    mg_record_t **recs = s_sign(&x, "verrou", 50, 1);
    mg_apply_t out[50];
    CHECK_RC(mg_store_apply_batch(src.store, recs, 50, out, NULL), MG_OK);
    s_free_records(recs, 50);
    bool said = false;
    for (int64_t end = mg_test_ms() + 30000; mg_test_ms() < end && !said; mg_test_sleep_ms(100))
        said = s_log_count("occupée") > busy0;
    CHECK(said);
    if (!said) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "tail -20 '%s' >&2", s_log_path);
        if (system(cmd) != 0)
            fprintf(stderr, "(no engine log)\n");
    }
    CHECK(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(other);
    CHECK(mg_test_same(&src, &victim, 60000));
    CHECK(s_check(victim.store));

    mg_test_node_destroy(&victim);
    mg_test_node_destroy(&src);
    mg_identity_wipe(&x);
    zsys_set_logstream(stderr);
    fclose(log);
}

/* ------------------------------------------------------------------ */
/* The command line against a read-only or locked database              */

/* Runs `maillage --dir DIR ARGS` (ARGS a shell fragment) as `uid` (-1:
   as the test), returns the exit code and the combined output. */
static int s_cli(int uid, const char *dir, char **out, const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' --dir '%s' %s 2>&1", MG_BINARY, dir, args);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        if (uid >= 0 && (setgroups(0, NULL) != 0 || setgid((gid_t) uid) != 0
                         || setuid((uid_t) uid) != 0))
            _exit(126);
        execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fds[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t) r;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The bytes of a file, hashed, to prove that nothing touched it. */
static bool s_file_hash(const char *path, uint8_t out[32])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        crypto_generichash_update(&st, buf, n);
    fclose(f);
    crypto_generichash_final(&st, out, 32);
    return true;
}

static const char *const s_offer_args =
    "offer add --services 'Aide aux démarches administratives' --nom 'Permanence' "
    "--pivot 21160291600019 --adresse '1 rue de la Paix' --commune Cognac --code-postal 16100";

/* Starts `maillage node` as `uid` and waits for it to end; returns the
   exit code (-1: still running after `timeout_ms`, then stopped) and the
   output in *out (caller frees). */
static int s_node_run(int uid, const char *dir, int timeout_ms, char **out)
{
    char log[400];
    snprintf(log, sizeof log, "%s/../node-%d.log", dir, (int) getpid());
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (uid >= 0 && (setgroups(0, NULL) != 0 || setgid((gid_t) uid) != 0
                         || setuid((uid_t) uid) != 0))
            _exit(126);
        execl(MG_BINARY, MG_BINARY, "--dir", dir, "node", "--listen", "tcp://127.0.0.1:*",
              (char *) NULL);
        _exit(127);
    }
    int status = 0, rc = -1;
    bool ended = false;
    for (int64_t end = mg_test_ms() + timeout_ms; mg_test_ms() < end && !ended; mg_test_sleep_ms(20))
        ended = waitpid(pid, &status, WNOHANG) == pid;
    if (!ended) {
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
    } else if (WIFEXITED(status)) {
        rc = WEXITSTATUS(status);
    }
    *out = NULL;
    FILE *f = fopen(log, "r");
    size_t cap = 65536, len = 0;
    char *buf = calloc(1, cap);
    if (f) {
        len = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[len] = '\0';
    *out = buf;
    unlink(log);
    return rc;
}

/* Sets the mode of the store and of its -wal and -shm companions. */
static void s_chmod_store(const char *db, mode_t mode)
{
    char path[450];
    chmod(db, mode);
    snprintf(path, sizeof path, "%s-wal", db);
    chmod(path, mode);
    snprintf(path, sizeof path, "%s-shm", db);
    chmod(path, mode);
}

/* The database read-only: commands that write fail with exit 1, a
   message that says the base is read-only, and leave the file as it
   was; the daemon refuses to run on a base it cannot write. Root
   ignores file modes, so as root the commands run as `nobody`. */
static void test_read_only(void)
{
    char dir[300], db[400];
    snprintf(dir, sizeof dir, "%s/ro", s_root);
    snprintf(db, sizeof db, "%s/maillage.db", dir);
    char *out = NULL;
    CHECK(s_cli(-1, dir, &out, "init --name 'Base en lecture seule'") == 0);
    free(out);
    int uid = -1;
    if (geteuid() == 0) {
        uid = 65534;
        chmod(s_root, 0711);
        char key[400];
        snprintf(key, sizeof key, "%s/identity.key", dir);
        CHECK(chown(dir, (uid_t) uid, (gid_t) uid) == 0);
        CHECK(chown(key, (uid_t) uid, (gid_t) uid) == 0);
        CHECK(chown(db, (uid_t) uid, (gid_t) uid) == 0);
    }
    CHECK(s_cli(uid, dir, &out, "status --json") == 0);
    free(out);
    int unclear = 0;

    /* 1. File and folder read-only (the WAL files cannot be created). */
    uint8_t h0[32], h1[32];
    CHECK(s_file_hash(db, h0));
    chmod(db, 0444);
    chmod(dir, 0555);
    int rc = s_cli(uid, dir, &out, "%s", s_offer_args);
    printf("read-only file and folder: offer add: exit %d: %s", rc, out);
    CHECK(rc == 1);
    s_unclear("read-only file and folder", out, SQLITE_READONLY, &unclear);
    free(out);
    chmod(dir, 0700);
    chmod(db, 0600);
    CHECK(s_file_hash(db, h1));
    CHECK(memcmp(h0, h1, 32) == 0);

    /* 2. Only the file: SQLite creates -wal and -shm with the file's
       mode (0444) and, read-only, leaves them behind. */
    chmod(db, 0444);
    rc = s_cli(uid, dir, &out, "%s", s_offer_args);
    printf("read-only file: offer add: exit %d: %s", rc, out);
    CHECK(rc == 1);
    s_unclear("read-only file", out, SQLITE_READONLY, &unclear);
    free(out);
    CHECK(s_cli(uid, dir, &out, "profile set --commune Cognac") == 1);
    s_unclear("read-only file, profile set", out, SQLITE_READONLY, &unclear);
    free(out);
    /* The daemon cannot keep anything it receives: it must not pretend
       to run (status would call it stopped), but stop and say why. */
    rc = s_node_run(uid, dir, 5000, &out);
    printf("read-only file: node: exit %d: %s", rc, out);
    CHECK(rc == 1);
    s_unclear("read-only file, node", out, SQLITE_READONLY, &unclear);
    free(out);
    CHECK(s_file_hash(db, h1));
    CHECK(memcmp(h0, h1, 32) == 0);

    /* 3. The person gives the file its write permission back, as told.
       The leftover read-only -wal/-shm must then either not matter or
       be named in the message. */
    chmod(db, 0600);
    rc = s_cli(uid, dir, &out, "%s", s_offer_args);
    printf("file writable again, -wal/-shm still 0444: offer add: exit %d: %s", rc, out);
    CHECK(rc == 0 || strstr(out, "-wal") || strstr(out, "-shm") || strstr(out, "db*"));
    free(out);

    /* 4. Everything writable: the same command works. */
    s_chmod_store(db, 0600);
    rc = s_cli(uid, dir, &out, "%s", s_offer_args);
    CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "after chmod u+w maillage.db*: exit %d: %s", rc, out);
    free(out);
    json_t *st = NULL;
    CHECK(s_cli(uid, dir, &out, "status --json") == 0);
    st = json_loads(out, 0, NULL);
    json_int_t offers = json_integer_value(
        json_object_get(json_object_get(json_object_get(st, "records"), "offer"), "live"));
    CHECK(offers == 1 || offers == 2); /* 2 if step 3 went through */
    json_decref(st);
    free(out);
    CHECK(unclear == 0);
}

/* Another program holds the write lock: a command that writes waits the
   busy timeout, then says the base is busy, exits 1 and writes nothing;
   reads still work meanwhile (WAL). */
static void test_locked(void)
{
    char dir[300], db[400];
    snprintf(dir, sizeof dir, "%s/locked", s_root);
    snprintf(db, sizeof db, "%s/maillage.db", dir);
    char *out = NULL;
    CHECK(s_cli(-1, dir, &out, "init --name 'Base verrouillée'") == 0);
    free(out);
    CHECK(s_cli(-1, dir, &out, "%s", s_offer_args) == 0);
    free(out);

    sqlite3 *other = NULL;
    CHECK(sqlite3_open_v2(db, &other, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    mg_store_t *store = NULL;
    CHECK_RC(mg_store_open(db, &store, NULL), MG_OK);
    s_snap_t before, after;
    CHECK(s_snap(store, &before));

    int64_t t0 = mg_test_ms();
    int rc = s_cli(-1, dir, &out, "%s", s_offer_args);
    int64_t waited = mg_test_ms() - t0;
    printf("locked: offer add: exit %d after %lld ms: %s", rc, (long long) waited, out);
    CHECK(rc == 1);
    CHECK(strstr(out, "occupée") != NULL);
    CHECK(waited >= 4500 && waited < 20000); /* the busy timeout, 5 s */
    free(out);
    char file[400];
    snprintf(file, sizeof file, "%s/charente-2023-07.json", MG_TEST_DATA);
    t0 = mg_test_ms();
    rc = s_cli(-1, dir, &out, "import '%s'", file);
    waited = mg_test_ms() - t0;
    printf("locked: import: exit %d after %lld ms: %s", rc, (long long) waited, out);
    CHECK(rc == 1);
    CHECK(strstr(out, "occupée") && strstr(out, "Rien n'a été importé"));
    CHECK(waited >= 4500 && waited < 20000);
    free(out);
    /* Readers are not blocked by a writer. */
    CHECK(s_cli(-1, dir, &out, "status --json") == 0);
    free(out);
    CHECK(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(other);
    CHECK(s_snap(store, &after));
    CHECK(s_snap_eq(&before, &after));
    CHECK(s_check(store));
    mg_store_destroy(&store);
    CHECK(s_cli(-1, dir, &out, "%s", s_offer_args) == 0);
    free(out);
}

int main(void)
{
    const char *scale = getenv("MG_FAULT_SCALE");
    if (scale && atoi(scale) > 0 && atoi(scale) <= 100)
        s_scale = atoi(scale);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("MG_FAULT_SCALE=%d%%\n", s_scale);
    zsys_init();
    zsys_set_logstream(stderr);
    if (!s_vfs_install()) {
        fprintf(stderr, "cannot install the fault VFS\n");
        return 1;
    }
    snprintf(s_root, sizeof s_root, "/tmp/mg-test-faults-XXXXXX");
    if (!mkdtemp(s_root))
        return 1;
    const mg_test_case_t tests[] = {
        {"apply_batch under write faults", test_apply_batch_one},
        {"bulk transaction (apply_bulk) under write faults", test_apply_bulk},
        {"store creation under write faults", test_open},
        {"import under write faults", test_import},
        {"engine with a full disk", test_engine},
        {"read-only database", test_read_only},
        {"locked database", test_locked},
    };
    mg_test_run_cases(tests, sizeof tests / sizeof tests[0]);
    int rc = mg_test_done("test_faults");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_root);
    if (rc == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_root);
    return rc;
}
