/*  mg_cli.h - shared plumbing of the maillage command line: the data
    folder, the identity key file, option parsing, output helpers. */
#ifndef MG_CLI_H
#define MG_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "mg_record.h"
#include "mg_store.h"

/* Option parsing and errors, shared by every command (and by the
   dashboard's API, which runs the commands with their output captured:
   mg_capture.h). */

/* "--help", "-h", "aide" or "help". */
bool mg_cli_is_help(const char *arg);

/* The value of option argv[*i] (argv[*i + 1], *i moves on to it), or NULL
   after saying the option wants one. */
const char *mg_cli_value(int argc, char **argv, int *i);

/* Says "maillage : WHAT : why" (or the code's meaning) and returns 1, the
   exit status of a failed command. */
int mg_cli_fail(const char *what, int rc, const mg_why_t *why);

/* Says the option is unknown to `cmd`, points at its --help, returns 2. */
int mg_cli_unknown(const char *cmd, const char *arg);

/* Tells on stderr that offers received by a bulk pull are still being
   indexed (mg_store_offers_pending), so listings may miss some. */
void mg_cli_note_pending(mg_store_t *store);

/* The node's data folder: --dir, else $MAILLAGE_DIR, else
   $XDG_DATA_HOME/maillage, else ~/.local/share/maillage. */
typedef struct {
    char dir[4096];       /* the folder */
    char key_path[4200];  /* dir/identity.key, mode 0600 */
    char db_path[4200];   /* dir/maillage.db */
} mg_paths_t;

/* Fills `paths` from `dir_option` (NULL when --dir was not given). */
int mg_paths_resolve(mg_paths_t *paths, const char *dir_option, mg_why_t *why);

/* Creates a new identity key file (refuses to overwrite; mode 0600). */
int mg_identity_create(const char *key_path, mg_identity_t *id, mg_why_t *why);

/* Loads the identity; refuses a key file readable by other users. */
int mg_identity_load(const char *key_path, mg_identity_t *id, mg_why_t *why);

/* An opened node: paths, identity and store. */
typedef struct {
    mg_paths_t paths;
    mg_identity_t id;
    mg_store_t *store;
} mg_node_ctx_t;

/* Opens the node in paths (identity + store); explains in French what to
   do when there is none yet ("maillage init --name ..."). */
int mg_node_open(mg_node_ctx_t *ctx, const char *dir_option, mg_why_t *why);
void mg_node_close(mg_node_ctx_t *ctx);

/* Signs `body` as the next version of (kind, rid) by this node and applies
   it to the store, inside one write transaction (so two CLI processes
   never reuse a counter). deleted=true writes a tombstone. */
int mg_node_author(mg_node_ctx_t *ctx, const char *kind, const char *rid,
                   bool deleted, const mg_body_t *body, mg_why_t *why);

/* Milliseconds since the Unix epoch. */
int64_t mg_now_ms(void);

/* Today's date as YYYY-MM-DD (local time). */
void mg_today(char out[11]);

/* A new random record id: 16 lowercase hex characters (64 bits). */
void mg_new_rid(char out[17]);

/* Case- and accent-insensitive fold of UTF-8 text (utf8proc). Caller
   frees. NULL when out of memory or invalid UTF-8. */
char *mg_fold(const char *text);

/* Prints `text` in exactly `width` terminal columns: cut with "…" when
   too long, padded with spaces when short. A negative width -W is for
   the last column of a line: cut at W columns, not padded. */
void mg_print_cell(FILE *out, const char *text, int width);

/* Prints a field value: list items joined by sep. */
void mg_print_value(FILE *out, const mg_body_t *body, const char *key,
                    const char *sep);

/* Commands around the daemon (mg_cmd_node.c). argv[0] is the command. */
int mg_cmd_node(int argc, char **argv, const char *dir);
int mg_cmd_invite(int argc, char **argv, const char *dir);
int mg_cmd_peer(int argc, char **argv, const char *dir);
int mg_cmd_demo(int argc, char **argv, const char *data_file);
int mg_cmd_endorse(int argc, char **argv, const char *dir);

/* Whether a node daemon is running on this store (live pid, heartbeat
   younger than 5 s); fills its pid and the heartbeat's age. */
bool mg_node_running(mg_store_t *store, long *pid, int64_t *age_ms);

/* Adds the peers of an invite line ("maillage:...") to the store; prints
   each unless quiet. MG_ERR_ARG (with why) for this node's own line. */
int mg_peer_add_invite(mg_store_t *store, const uint8_t *self_key,
                       const char *invite, bool quiet, mg_why_t *why);

/* Prints the peer table, as text or JSON. */
int mg_print_peers(mg_store_t *store, bool json);

/* The peer table as a JSON array (as `peer list --json`); NULL on error.
   Caller owns the result. */
struct json_t;
struct json_t *mg_peers_json(mg_store_t *store);

#endif
