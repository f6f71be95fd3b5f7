/*  mg_api.h - the JSON API of the dashboard (docs/api.md), called by the
    HTTP server (mg_http.c) once a request has passed the security checks
    (Host, token, CSRF, content type, size). */
#ifndef MG_API_H
#define MG_API_H

#include <stdbool.h>
#include <stddef.h>

#include "mg_analysis.h"

struct MHD_Connection;

/* What the API needs to know of the server. */
typedef struct {
    const char *dir;             /* the node's data folder */
    char csrf[65];               /* this server's CSRF token (hex) */
    bool token_required;         /* non-loopback bind */
    const char *url;             /* the printed address, without token */
    const char *communes_path;   /* communes table, or NULL */
    mg_communes_t *communes;     /* loaded table, or NULL */
} mg_api_t;

typedef struct {
    struct MHD_Connection *conn; /* for the query parameters */
    const char *method;          /* "GET", "POST", "PUT", "DELETE" */
    const char *path;            /* "/api/offers/3f2a" (no query string) */
    const char *body;            /* NUL-terminated request body ("" when none) */
    size_t body_len;
} mg_api_req_t;

typedef struct {
    int status;                  /* HTTP status */
    char *body;                  /* response body (malloc'd), or NULL */
    size_t len;
    const char *type;            /* Content-Type */
    char filename[64];           /* "" or an attachment's file name */
    const char *allow;           /* 405: the allowed methods */
} mg_api_rep_t;

/* Answers one /api/ request into `rep` (status, body). Never fails:
   every error becomes a JSON {"error": ...} with its status. */
void mg_api_handle(mg_api_t *api, const mg_api_req_t *req, mg_api_rep_t *rep);

/* Sets `rep` to the JSON error {"error": message} with `status`. */
void mg_api_error(mg_api_rep_t *rep, int status, const char *message);

#endif
