/*  mg_capture.h - running a command of the command line for the HTTP API.

    The dashboard's API (tools/mg_api.c) answers several requests by
    running the very command function the CLI runs (mg_cmd_event,
    mg_cmd_overlaps, ...) with the options as an argv, so that both share
    one code path: the same option parsing, validation, signing and
    messages. While a capture is active on the calling thread, what such a
    command would print as its --json result is handed over as a json_t,
    and its error messages are kept instead of written to stderr. Other
    threads (the engine, the CLI itself) are unaffected: the state is
    thread-local.
*/
#ifndef MG_CAPTURE_H
#define MG_CAPTURE_H

#include <stdbool.h>

#include <jansson.h>

typedef struct {
    json_t *json;      /* the command's --json result, or NULL; owned */
    int rc;            /* MG_ERR_* code of the failure the command reported, or 0 */
    char error[1024];  /* first message meant for stderr, without "maillage : " */
} mg_capture_t;

/* Starts capturing on this thread into `c` (cleared). */
void mg_capture_begin(mg_capture_t *c);

/* Stops capturing on this thread; `c` keeps what was caught. */
void mg_capture_end(mg_capture_t *c);

/* Releases what `c` holds. */
void mg_capture_clear(mg_capture_t *c);

/* For the command functions. When a capture is active, keeps a reference
   to `j` (the first one only) and returns true: the caller must not print
   it. Returns false otherwise. */
bool mg_capture_json(json_t *j);

/* Whether a capture is active on this thread (a command run by the API). */
bool mg_capture_active(void);

/* Records the MG_ERR_* code of a failure being reported (first one). */
void mg_capture_rc(int rc);

/* Writes an error or warning like fprintf(stderr, ...), or keeps it when
   a capture is active. */
void mg_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
