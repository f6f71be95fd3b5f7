/*  mg_http.c - the dashboard's HTTP server (mg_http.h): libmicrohttpd
    plumbing, the security checks every request goes through, and the
    embedded static files. The API itself is in mg_api.c.

    Order of the checks on a request (docs/api.md, "Security"):
      1. Host must name this server (DNS rebinding) -> 403;
      2. under /api/, the access token when the bind is not loopback -> 401;
      3. a body above 1 MiB -> 413 (the rest of it is read and dropped);
      4. writes: X-CSRF-Token -> 403, Content-Type JSON -> 415, Origin -> 403;
      5. query strings above 8 KiB -> 414, invalid UTF-8 in them -> 400.
    Every response carries the strict Content-Security-Policy and the
    other headers of s_add_headers.
*/
#include "mg_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "mg_api.h"
#include "mg_cmd_analysis.h"
#include "mg_record.h"
#include "mg_text.h"
#include "mg_web.h"

/* Request bodies: an offer is a few KB; a note is at most MG_NOTE_TEXT_MAX.
   1 MiB leaves room for any of them and bounds the memory one request
   can hold. */
#define S_BODY_MAX (1024 * 1024)
/* Query strings: filters and ids are short; 8 KiB is what common proxies
   accept in a request line. */
#define S_QUERY_MAX 8192
/* Memory libmicrohttpd may use per connection for headers and the request
   line: above S_QUERY_MAX, so that 414 is ours and in JSON. */
#define S_CONN_MEMORY (64 * 1024)

static const char *const s_csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

struct mg_http_t {
    struct MHD_Daemon *daemon;
    mg_api_t api;
    char dir[4096];
    char communes_path[4096];
    char token[65];          /* access token (hex), "" when not required */
    char host[300];          /* the bound address as typed, for Host checks */
    bool any_host;           /* bound to every interface: Host by port only */
    unsigned port;
    char url[700];           /* printed address, with #jeton= when needed */
    char base_url[600];      /* without the token */
};

/* Per-request state, kept by libmicrohttpd between the calls of one
   request. */
typedef struct {
    char *body;
    size_t len, cap;
    bool too_large;
} s_req_t;

/* ------------------------------------------------------------------ */
/* Responses                                                           */

static void s_add_headers(struct MHD_Response *r, bool api)
{
    MHD_add_response_header(r, "Content-Security-Policy", s_csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    if (api)
        MHD_add_response_header(r, "Cache-Control", "no-store");
}

static enum MHD_Result s_send(struct MHD_Connection *conn, mg_api_rep_t *rep, bool api)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        rep->len, rep->body ? rep->body : (void *) "", rep->body ? MHD_RESPMEM_MUST_FREE
                                                                   : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(rep->body);
        return MHD_NO;
    }
    rep->body = NULL;
    s_add_headers(r, api);
    MHD_add_response_header(r, "Content-Type", rep->type ? rep->type : "application/json");
    if (rep->filename[0]) {
        char cd[128];
        snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", rep->filename);
        MHD_add_response_header(r, "Content-Disposition", cd);
    }
    if (rep->allow)
        MHD_add_response_header(r, "Allow", rep->allow);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned) rep->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result s_send_error(struct MHD_Connection *conn, int status,
                                    const char *message, bool api)
{
    mg_api_rep_t rep = {0};
    if (api) {
        mg_api_error(&rep, status, message);
    } else {
        rep.status = status;
        rep.body = strdup(message);
        rep.len = rep.body ? strlen(rep.body) : 0;
        rep.type = "text/plain; charset=utf-8";
    }
    return s_send(conn, &rep, api);
}

static enum MHD_Result s_send_static(struct MHD_Connection *conn, const char *url,
                                     const char *method)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        mg_api_rep_t rep = {.status = 405, .allow = "GET, HEAD"};
        rep.body = strdup("méthode non permise");
        rep.len = rep.body ? strlen(rep.body) : 0;
        rep.type = "text/plain; charset=utf-8";
        return s_send(conn, &rep, false);
    }
    const char *path = url[0] == '/' ? url + 1 : url;
    if (!*path)
        path = "index.html";
    for (size_t i = 0; i < mg_web_file_count; i++) {
        const mg_web_file_t *f = &mg_web_files[i];
        if (strcmp(f->path, path) != 0)
            continue;
        struct MHD_Response *r = MHD_create_response_from_buffer(
            f->size, (void *) f->data, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        s_add_headers(r, false);
        MHD_add_response_header(r, "Content-Type", f->mime);
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    return s_send_error(conn, 404, "page introuvable", false);
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */

/* Whether a Host header value (or the host[:port] part of an Origin)
   names this server. */
static bool s_host_ok(const mg_http_t *h, const char *host)
{
    if (!host)
        return false;
    char port[16];
    snprintf(port, sizeof port, ":%u", h->port);
    size_t hl = strlen(host), pl = strlen(port);
    if (hl <= pl || strcmp(host + hl - pl, port) != 0)
        return false;
    size_t nl = hl - pl;
    if (h->any_host)
        return true;
    static const char *const local[] = {"localhost", "127.0.0.1", "[::1]", NULL};
    for (size_t i = 0; local[i]; i++)
        if (strlen(local[i]) == nl && strncasecmp(host, local[i], nl) == 0)
            return true;
    return strlen(h->host) == nl && strncasecmp(host, h->host, nl) == 0;
}

static bool s_origin_ok(const mg_http_t *h, const char *origin)
{
    if (!origin)
        return true; /* same-origin GETs and non-browser clients send none */
    if (strncmp(origin, "http://", 7) != 0)
        return false;
    return s_host_ok(h, origin + 7);
}

/* Constant-time comparison of a presented secret with ours. */
static bool s_secret_eq(const char *given, const char *ours)
{
    if (!given)
        return false;
    size_t n = strlen(ours);
    if (strlen(given) != n)
        return false;
    return sodium_memcmp(given, ours, n) == 0;
}

static bool s_is_json_type(const char *type)
{
    if (!type)
        return false;
    const char *t = "application/json";
    size_t n = strlen(t);
    if (strncasecmp(type, t, n) != 0)
        return false;
    return type[n] == '\0' || type[n] == ';' || type[n] == ' ';
}

typedef struct {
    size_t total;
    bool bad_utf8;
} s_query_t;

static enum MHD_Result s_query_each(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void) kind;
    s_query_t *q = cls;
    size_t kl = key ? strlen(key) : 0, vl = value ? strlen(value) : 0;
    q->total += kl + vl + 2;
    if ((key && !mg_utf8_valid(key, kl)) || (value && !mg_utf8_valid(value, vl)))
        q->bad_utf8 = true;
    return MHD_YES;
}

/* ------------------------------------------------------------------ */
/* The request handler                                                 */

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_data_size,
                                void **con_cls)
{
    (void) version;
    mg_http_t *h = cls;
    s_req_t *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->too_large || req->len + n > S_BODY_MAX) {
            req->too_large = true;
            free(req->body);
            req->body = NULL;
            req->len = req->cap = 0;
            return MHD_YES;
        }
        if (req->len + n + 1 > req->cap) {
            size_t cap = req->cap ? req->cap : 4096;
            while (cap < req->len + n + 1)
                cap *= 2;
            char *b = realloc(req->body, cap);
            if (!b)
                return MHD_NO;
            req->body = b;
            req->cap = cap;
        }
        memcpy(req->body + req->len, upload_data, n);
        req->len += n;
        req->body[req->len] = '\0';
        return MHD_YES;
    }
    bool api = strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0;
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (!s_host_ok(h, host))
        return s_send_error(conn, 403, "adresse du serveur non reconnue (en-tête Host)", api);
    if (!api)
        return s_send_static(conn, url, method);
    if (h->token[0]) {
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        const char *given = auth && strncmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
        if (!s_secret_eq(given, h->token))
            return s_send_error(conn, 401,
                                "jeton d'accès manquant ou incorrect : ouvrez l'adresse "
                                "affichée par « maillage node »", true);
    }
    if (req->too_large)
        return s_send_error(conn, 413, "requête trop volumineuse (1 Mio au plus)", true);
    bool write = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0
                 && strcmp(method, "OPTIONS") != 0;
    if (write) {
        const char *csrf = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");
        if (!s_secret_eq(csrf, h->api.csrf))
            return s_send_error(conn, 403,
                                "jeton de sécurité (CSRF) manquant ou incorrect : rechargez la page",
                                true);
        const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
        if (!s_origin_ok(h, origin))
            return s_send_error(conn, 403, "origine de la requête refusée", true);
        const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (!s_is_json_type(type))
            return s_send_error(conn, 415,
                                "le corps de la requête doit être du JSON "
                                "(Content-Type: application/json)", true);
    }
    s_query_t q = {0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, s_query_each, &q);
    if (q.total > S_QUERY_MAX)
        return s_send_error(conn, 414, "adresse trop longue (8 Kio au plus de paramètres)", true);
    if (q.bad_utf8 || !mg_utf8_valid(url, strlen(url)))
        return s_send_error(conn, 400, "paramètres de l'adresse illisibles (UTF-8 invalide)", true);
    if (req->body && !mg_utf8_valid(req->body, req->len))
        return s_send_error(conn, 400, "corps de la requête illisible (UTF-8 invalide)", true);
    if (req->body && memchr(req->body, '\0', req->len))
        return s_send_error(conn, 400, "corps de la requête illisible (caractère nul)", true);
    mg_api_req_t areq = {.conn = conn, .method = method, .path = url,
                         .body = req->body ? req->body : "", .body_len = req->len};
    mg_api_rep_t rep = {0};
    mg_api_handle(&h->api, &areq, &rep);
    return s_send(conn, &rep, true);
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void) cls;
    (void) conn;
    (void) toe;
    s_req_t *req = *con_cls;
    if (req) {
        free(req->body);
        free(req);
    }
    *con_cls = NULL;
}

/* ------------------------------------------------------------------ */
/* Start, stop                                                         */

/* Reads DIR/http.token, or creates it (mode 0600) with a new random
   token. */
static int s_token(const char *dir, char out[65], mg_why_t *why)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/http.token", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char buf[128] = "";
        bool ok = fgets(buf, sizeof buf, f) != NULL;
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
        uint8_t raw[32];
        if (ok && strlen(buf) == 64 && mg_hex_decode(buf, raw, sizeof raw) == 0) {
            memcpy(out, buf, 65); /* 64 hex digits and the NUL */
            return MG_OK;
        }
        return mg_why_set(why, MG_ERR_MALFORMED,
                          "le fichier %s est illisible : supprimez-le, un nouveau jeton sera créé",
                          path);
    }
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    mg_hex_encode(raw, sizeof raw, out);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return mg_why_set(why, MG_ERR_IO, "impossible de créer %s : %s", path, strerror(errno));
    char line[66];
    snprintf(line, sizeof line, "%s\n", out);
    bool ok = write(fd, line, 65) == 65;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlink(path);
        return mg_why_set(why, MG_ERR_IO, "impossible d'écrire %s", path);
    }
    return MG_OK;
}

/* Splits "[ADDR:]PORT" into a host and a port; "[v6]:port" too. */
static int s_split_address(const char *text, char *host, size_t hsize, unsigned *port,
                           mg_why_t *why)
{
    const char *colon = strrchr(text, ':');
    const char *ptext = colon ? colon + 1 : text;
    if (colon) {
        size_t n = (size_t) (colon - text);
        if (n >= hsize)
            n = hsize - 1;
        memcpy(host, text, n);
        host[n] = '\0';
    } else {
        snprintf(host, hsize, "127.0.0.1");
    }
    char *end = NULL;
    errno = 0;
    long p = strtol(ptext, &end, 10);
    if (!*ptext || errno || *end || p < 0 || p > 65535 || (colon && !host[0]))
        return mg_why_set(why, MG_ERR_ARG,
                          "--http : « %s » n'est pas une adresse ADRESSE:PORT ou un PORT "
                          "(exemples : 8080, 127.0.0.1:8080, 0.0.0.0:8080)", text);
    *port = (unsigned) p;
    return MG_OK;
}

static bool s_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

static bool s_is_any(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *) sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *) sa)->sin6_addr);
    return false;
}

/* A non-loopback IPv4 address of this machine, to print for a 0.0.0.0
   bind; "127.0.0.1" when there is none. */
static void s_public_ipv4(char *out, size_t size)
{
    snprintf(out, size, "127.0.0.1");
    struct ifaddrs *all = NULL;
    if (getifaddrs(&all) != 0)
        return;
    for (struct ifaddrs *i = all; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK)
            || !(i->ifa_flags & IFF_UP))
            continue;
        inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, out,
                  (socklen_t) size);
        break;
    }
    freeifaddrs(all);
}

int mg_http_start(const mg_http_config_t *cfg, mg_http_t **out, mg_why_t *why)
{
    *out = NULL;
    if (sodium_init() < 0)
        return mg_why_set(why, MG_ERR_NOMEM, "libsodium n'a pas pu démarrer");
    mg_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return MG_ERR_NOMEM;
    snprintf(h->dir, sizeof h->dir, "%s", cfg->dir);
    char host[300];
    unsigned port = 0;
    int rc = s_split_address(cfg->address, host, sizeof host, &port, why);
    /* "[::1]" -> "::1" for getaddrinfo; the brackets stay in h->host for
       the Host header. */
    char bare[300];
    snprintf(bare, sizeof bare, "%s", host);
    if (bare[0] == '[') {
        size_t n = strlen(bare);
        if (n > 2 && bare[n - 1] == ']') {
            memmove(bare, bare + 1, n - 2);
            bare[n - 2] = '\0';
        }
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE}, *ai = NULL;
    if (rc == MG_OK) {
        int g = getaddrinfo(bare, NULL, &hints, &ai);
        if (g != 0 || !ai)
            rc = mg_why_set(why, MG_ERR_ARG, "--http : adresse inconnue « %s » (%s)", host,
                            gai_strerror(g));
    }
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    if (rc == MG_OK) {
        memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
        if (sa.ss_family == AF_INET)
            ((struct sockaddr_in *) &sa)->sin_port = htons((uint16_t) port);
        else
            ((struct sockaddr_in6 *) &sa)->sin6_port = htons((uint16_t) port);
        snprintf(h->host, sizeof h->host, "%s", host);
        h->any_host = s_is_any((struct sockaddr *) &sa);
        if (!s_is_loopback((struct sockaddr *) &sa))
            rc = s_token(h->dir, h->token, why);
    }
    if (ai)
        freeaddrinfo(ai);
    if (rc == MG_OK && cfg->communes) {
        snprintf(h->communes_path, sizeof h->communes_path, "%s", cfg->communes);
        rc = mg_communes_load(h->communes_path, &h->api.communes, why);
    }
    if (rc != MG_OK) {
        mg_http_stop(&h);
        return rc;
    }
    uint8_t raw[16];
    randombytes_buf(raw, sizeof raw);
    mg_hex_encode(raw, sizeof raw, h->api.csrf);
    h->api.dir = h->dir;
    h->api.token_required = h->token[0] != '\0';
    h->api.communes_path = h->communes_path[0] ? h->communes_path : NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(flags, (uint16_t) port, NULL, NULL, s_handle, h,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
                                 MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned) 64,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) S_CONN_MEMORY,
                                 MHD_OPTION_END);
    if (!h->daemon) {
        mg_http_stop(&h);
        return mg_why_set(why, MG_ERR_IO,
                          "--http : impossible d'écouter sur %s (port déjà pris ?)",
                          cfg->address);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info && info->port ? info->port : port;
    char shown[300];
    if (h->any_host)
        s_public_ipv4(shown, sizeof shown);
    else
        snprintf(shown, sizeof shown, "%s", host);
    snprintf(h->base_url, sizeof h->base_url, "http://%s:%u/", shown, h->port);
    if (h->token[0])
        snprintf(h->url, sizeof h->url, "%s#jeton=%s", h->base_url, h->token);
    else
        snprintf(h->url, sizeof h->url, "%s", h->base_url);
    h->api.url = h->base_url;
    *out = h;
    return MG_OK;
}

const char *mg_http_url(const mg_http_t *self)
{
    return self->url;
}

void mg_http_stop(mg_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_http_t *h = *self_p;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    mg_communes_destroy(&h->api.communes);
    sodium_memzero(h->token, sizeof h->token);
    free(h);
    *self_p = NULL;
}
