/*  mg_http.h - the dashboard's HTTP server (libmicrohttpd) inside
    `maillage node --http [ADDRESS:]PORT`: the JSON API of docs/api.md
    (tools/mg_api.c) and the embedded interface (tools/web/).

    Threading: one libmicrohttpd polling thread serves every request in
    turn; each API request opens the node's identity and its own SQLite
    connection and closes them at the end, like one CLI invocation. The
    engine actor keeps its own connection: both only share the SQLite file.
*/
#ifndef MG_HTTP_H
#define MG_HTTP_H

#include "mg_error.h"

typedef struct mg_http_t mg_http_t;

typedef struct {
    const char *dir;       /* the node's data folder (resolved, absolute) */
    const char *address;   /* "[ADDR:]PORT": "8080", "0.0.0.0:8080",
                              "[::1]:8080"; port 0 picks a free one */
    const char *communes;  /* communes table CSV, or NULL */
} mg_http_config_t;

/* Starts serving. Creates DIR/http.token (mode 0600) when the address
   is not loopback and there is none. Caller owns *out. */
int mg_http_start(const mg_http_config_t *cfg, mg_http_t **out, mg_why_t *why);

/* The address to open: "http://127.0.0.1:8080/", with "#jeton=TOKEN"
   when a token is required. Valid until mg_http_stop. */
const char *mg_http_url(const mg_http_t *self);

/* Stops serving (waits for the request in progress); safe on NULL. */
void mg_http_stop(mg_http_t **self_p);

#endif
