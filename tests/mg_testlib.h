/*  mg_testlib.h - what the tests share besides CHECK (mg_test.h): time
    and deadlines, running the `maillage` binary and shell commands, a
    typical offer, and engines (mg_node_new) on stores of their own.

    Every wait is a condition polled until a deadline, never a fixed
    sleep standing for "long enough". */
#ifndef MG_TESTLIB_H
#define MG_TESTLIB_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>
#include <jansson.h>

#include "mg_body.h"
#include "mg_node.h"
#include "mg_record.h"
#include "mg_store.h"

/* Monotonic milliseconds. */
int64_t mg_test_ms(void);
void mg_test_sleep_ms(int ms);

/* Polls `cond` every 20 ms until it holds or `timeout_ms` passes; the
   last answer is taken after the deadline. */
typedef bool (mg_test_cond_fn)(void *arg);
bool mg_test_wait(mg_test_cond_fn *cond, void *arg, int timeout_ms);

/* Runs a shell command line (printf-formatted) with stderr joined to
   stdout; returns its exit code (-1 if it did not exit) and, when `out`
   is not NULL, its output (caller frees). */
int mg_test_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs `maillage --dir DIR ARGS` (ARGS a shell fragment), as mg_test_sh. */
int mg_test_cli(const char *dir, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs `maillage --dir DIR ARGS` and parses its stdout as JSON (stderr is
   discarded so that warnings do not spoil it). With `exit_code`, gets the
   exit code and returns whatever JSON was printed (`check` prints its
   result and exits 1); without, NULL unless it exits 0. NULL, with a
   line on stderr, when it prints no JSON. */
json_t *mg_test_cli_json(const char *dir, int *exit_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* PRAGMA integrity_check and foreign_key_check of the store at `db`,
   through the store's own API (mg_store_check); the reason on stderr. */
bool mg_test_intact(const char *db);

/* Runs the named parts of a test in order, printing "== NAME: N ms"
   after each. */
typedef struct {
    const char *name;
    void (*fn)(void);
} mg_test_case_t;
void mg_test_run_cases(const mg_test_case_t *cases, size_t count);

/* A valid offer of the national standard in Angoulême, id `rid`. */
mg_body_t *mg_test_offer_body(const char *rid, const char *nom, const char *code_postal);

/* An engine and the test's own connection to its store (like a CLI
   process next to the daemon). */
typedef struct {
    char name[32];
    char dir[320];      /* the node's folder (mg_test_node_init_cli), or "" */
    char db[340];
    mg_identity_t id;
    mg_store_t *store;
    zactor_t *actor;
    char endpoint[256]; /* bound endpoint, "" when not listening */
} mg_test_node_t;

/* A fresh identity and store root/NAME.db with its name set; exits the
   test when the store cannot be opened. */
void mg_test_node_init(mg_test_node_t *n, const char *root, const char *name);

/* A node made by the real command line: `maillage init --name NOM` in
   root/NAME, the identity read back from its key file, the store
   root/NAME/maillage.db opened; exits the test when that fails. */
void mg_test_node_init_cli(mg_test_node_t *n, const char *root, const char *name,
                           const char *nom);

/* Starts the engine: `opts` (may be NULL) gives the settings besides the
   store and identity (default: 200 ms rounds, quiet); `listen` binds
   tcp://127.0.0.1 on a free port and fills n->endpoint. Replies from the
   engine are awaited `reply_ms` at most, so a stuck engine fails the
   test instead of hanging it. */
bool mg_test_node_start(mg_test_node_t *n, bool listen, const mg_node_config_t *opts,
                        int reply_ms);
void mg_test_node_stop(mg_test_node_t *n);
void mg_test_node_destroy(mg_test_node_t *n);

/* Signs the next version of (kind, rid) by n and applies it to n's store
   in one transaction, as `maillage` does; false (with a line on stderr)
   when it fails. */
bool mg_test_author(mg_test_node_t *n, const char *kind, const char *rid, bool deleted,
                    const mg_body_t *body);

/* n's profile (nom: n->name) and a typical offer (mg_test_offer_body)
   signed by n, as mg_test_author. */
bool mg_test_profile(mg_test_node_t *n);
bool mg_test_offer(mg_test_node_t *n, const char *rid, const char *nom);

/* n's profile as version 1 signed at a fixed date (2023-11-14): the same
   record whatever the run's clock, so that later versions always win. */
bool mg_test_profile_v1(mg_test_node_t *n);

/* n will dial `to` (as after `maillage peer add` with to's invite). */
void mg_test_link(mg_test_node_t *n, const mg_test_node_t *to);

/* The engine's STATS answer (mg_node.h). */
typedef struct {
    size_t records;
    char fp[33];
    size_t live;
    unsigned long long rounds, bytes_out, bytes_in, records_in, records_out, syncs;
} mg_test_stats_t;
bool mg_test_stats(mg_test_node_t *n, mg_test_stats_t *st);

/* Whether the engines of a and b, and their stores, hold the same set
   (count and fingerprint), polled until `timeout_ms`. */
bool mg_test_same(mg_test_node_t *a, mg_test_node_t *b, int timeout_ms);

#endif
