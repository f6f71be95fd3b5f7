/*  test_http.c - the dashboard's API (docs/api.md) over real HTTP against
    real `maillage node --http` processes: reads, authoring with the CSRF
    rules, the CLI's messages on refused input with the store unchanged,
    replication between two nodes linked through the API, the access
    token on a non-loopback bind, headers, analyses equal to the CLI's
    --json, exports, events and replies, notes, peers, and garbage on
    every endpoint. The HTTP client is a plain socket.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mg_test.h"
#include "mg_testlib.h"

#define COMMUNES MG_TEST_DATA "/charente.csv"
#define LIEUX MG_TEST_DATA "/charente-2023-07.json"

static int64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* The CLI                                                              */

/* A CLI command's JSON on stdout, whatever its exit code (`check`
   exits 1 with its result). */
static json_t *s_cli_json(const char *dir, const char *args)
{
    int code;
    return mg_test_cli_json(dir, &code, "%s", args);
}

/* ------------------------------------------------------------------ */
/* Nodes                                                                */

typedef struct {
    char dir[512];
    pid_t pid;
    int port;
    char host[64];        /* what the URL printed */
    char token[80];       /* "" when none */
    char csrf[80];
} s_node_t;

static s_node_t *s_nodes[8];
static int s_node_count = 0;

static void s_stop(s_node_t *n)
{
    if (n->pid <= 0)
        return;
    kill(n->pid, SIGTERM);
    int status;
    for (int64_t end = s_ms() + 10000; s_ms() < end;) {
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            n->pid = 0;
            /* A clean stop; under the sanitizers, no error nor leak. */
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                fprintf(stderr, "node %s: exit status %d (see %s/node.log)\n", n->dir,
                        status, n->dir);
            return;
        }
        usleep(20 * 1000);
    }
    kill(n->pid, SIGKILL);
    waitpid(n->pid, &status, 0);
    n->pid = 0;
}

static void s_stop_all(void)
{
    for (int i = 0; i < s_node_count; i++)
        s_stop(s_nodes[i]);
}

static void s_on_signal(int sig)
{
    s_stop_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Starts `maillage node --http ADDRESS` on n->dir; waits (10 s at most)
   for the "Tableau de bord : URL" line and reads port and token from it. */
static bool s_start(s_node_t *n, const char *address)
{
    char log[600];
    snprintf(log, sizeof log, "%s/node.log", n->dir);
    unlink(log);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execl(MG_BINARY, MG_BINARY, "--dir", n->dir, "node", "--listen", "tcp://127.0.0.1:*",
              "--interval", "200", "--http", address, "--communes", COMMUNES, (char *) NULL);
        _exit(127);
    }
    n->pid = pid;
    s_nodes[s_node_count++] = n;
    for (int64_t end = s_ms() + 10000; s_ms() < end;) {
        FILE *f = fopen(log, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f)) {
            const char *u = strstr(line, "Tableau de bord : http://");
            if (!u)
                continue;
            u += strlen("Tableau de bord : http://");
            const char *colon = strchr(u, ':');
            if (!colon)
                continue;
            snprintf(n->host, sizeof n->host, "%.*s", (int) (colon - u), u);
            n->port = atoi(colon + 1);
            const char *t = strstr(line, "#jeton=");
            n->token[0] = '\0';
            if (t)
                snprintf(n->token, sizeof n->token, "%.64s", t + 7);
            fclose(f);
            return n->port > 0;
        }
        if (f)
            fclose(f);
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            n->pid = 0;
            return false;
        }
        usleep(20 * 1000);
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* A plain HTTP/1.1 client                                              */

typedef struct {
    int status;
    char *headers;   /* raw header block, lowercase names kept as sent */
    char *body;
    size_t len;
} s_resp_t;

static void s_resp_free(s_resp_t *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* The value of header `name` (case-insensitive) into out, or false. */
static bool s_header(const s_resp_t *r, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, size, "%.*s", (int) (eol - v), v);
            return true;
        }
        p = eol + 2;
    }
    return false;
}

/* Sends one request; `extra` holds complete header lines ("X: y\r\n").
   Host is "127.0.0.1:PORT" unless `extra` starts with "Host:". */
static bool s_http(const s_node_t *n, const char *method, const char *path, const char *extra,
                   const char *body, size_t body_len, s_resp_t *r)
{
    memset(r, 0, sizeof *r);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) n->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) != 0) {
        close(fd);
        return false;
    }
    char host[128] = "";
    if (!extra || strncasecmp(extra, "Host:", 5) != 0)
        snprintf(host, sizeof host, "Host: 127.0.0.1:%d\r\n", n->port);
    size_t hcap = strlen(path) + (extra ? strlen(extra) : 0) + 512;
    char *head = malloc(hcap);
    int hl = snprintf(head, hcap, "%s %s HTTP/1.1\r\n%s%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      method, path, host, extra ? extra : "", body ? body_len : 0);
    bool ok = write(fd, head, (size_t) hl) == hl;
    free(head);
    size_t off = 0;
    while (ok && body && off < body_len) {
        ssize_t w = write(fd, body + off, body_len - off);
        if (w <= 0)
            break; /* the server may answer 413 and close early */
        off += (size_t) w;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while ((got = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t) got;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fd);
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
        free(buf);
        return false;
    }
    r->headers = strndup(buf, (size_t) (sep - buf) + 2);
    r->len = len - (size_t) (sep + 4 - buf);
    r->body = malloc(r->len + 1);
    memcpy(r->body, sep + 4, r->len);
    r->body[r->len] = '\0';
    free(buf);
    return true;
}

/* An API call with the node's token and, for writes, its CSRF token and
   the JSON content type. Returns the parsed body (NULL if not JSON). */
static json_t *s_api(s_node_t *n, const char *method, const char *path, const char *body,
                     int *status)
{
    char extra[512] = "";
    size_t used = 0;
    if (n->token[0])
        used += (size_t) snprintf(extra + used, sizeof extra - used,
                                  "Authorization: Bearer %s\r\n", n->token);
    if (strcmp(method, "GET") != 0)
        snprintf(extra + used, sizeof extra - used,
                 "X-CSRF-Token: %s\r\nContent-Type: application/json\r\n", n->csrf);
    s_resp_t r;
    *status = -1;
    if (!s_http(n, method, path, extra, body, body ? strlen(body) : 0, &r))
        return NULL;
    *status = r.status;
    json_error_t err;
    json_t *j = json_loadb(r.body, r.len, 0, &err);
    s_resp_free(&r);
    return j;
}

static json_t *s_get(s_node_t *n, const char *path, int *status)
{
    return s_api(n, "GET", path, NULL, status);
}

static bool s_session(s_node_t *n)
{
    int st;
    json_t *j = s_get(n, "/api/session", &st);
    const char *csrf = json_string_value(json_object_get(j, "csrf"));
    if (csrf)
        snprintf(n->csrf, sizeof n->csrf, "%s", csrf);
    json_decref(j);
    return st == 200 && csrf;
}

static const char *s_error(json_t *j)
{
    return json_string_value(json_object_get(j, "error"));
}

/* The store's fingerprint and version count, as `maillage status --json`. */
static void s_fingerprint(const char *dir, char out[128])
{
    json_t *st = s_cli_json(dir, "status --json");
    snprintf(out, 128, "%s/%lld", json_string_value(json_object_get(st, "fingerprint")),
             (long long) json_integer_value(json_object_get(st, "versions")));
    json_decref(st);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void s_init(s_node_t *n, const char *base, const char *key, const char *name,
                   const char *postal, const char *insee)
{
    snprintf(n->dir, sizeof n->dir, "%s/%s", base, key);
    CHECK(mg_test_cli(n->dir, NULL, "init --name \"%s\"", name) == 0);
    CHECK(mg_test_cli(n->dir, NULL,
                "profile set --pivot 12345678901234 --commune Angoulême --code-postal %s "
                "--code-insee %s --adresse '1 rue du Test' --latitude 45.65 --longitude 0.16 "
                "--telephone +33545000000",
                postal, insee) == 0);
}

static void test_headers_and_static(s_node_t *a)
{
    s_resp_t r;
    char v[512];
    CHECK(s_http(a, "GET", "/", NULL, NULL, 0, &r));
    CHECK(r.status == 200);
    CHECK(s_header(&r, "Content-Type", v, sizeof v) && strncmp(v, "text/html", 9) == 0);
    CHECK(strstr(r.body, "<html") != NULL);
    CHECK(s_header(&r, "Content-Security-Policy", v, sizeof v)
          && strstr(v, "default-src 'none'") && strstr(v, "script-src 'self'")
          && strstr(v, "frame-ancestors 'none'"));
    CHECK(s_header(&r, "X-Content-Type-Options", v, sizeof v) && strcmp(v, "nosniff") == 0);
    CHECK(s_header(&r, "Referrer-Policy", v, sizeof v) && strcmp(v, "no-referrer") == 0);
    CHECK(s_header(&r, "X-Frame-Options", v, sizeof v) && strcmp(v, "DENY") == 0);
    s_resp_free(&r);
    CHECK(s_http(a, "GET", "/app.js", NULL, NULL, 0, &r));
    CHECK(r.status == 200);
    CHECK(s_header(&r, "Content-Type", v, sizeof v) && strncmp(v, "text/javascript", 15) == 0);
    s_resp_free(&r);
    CHECK(s_http(a, "GET", "/../../etc/passwd", NULL, NULL, 0, &r));
    CHECK(r.status == 404);
    s_resp_free(&r);
    CHECK(s_http(a, "GET", "/api/status", NULL, NULL, 0, &r));
    CHECK(r.status == 200);
    CHECK(s_header(&r, "Cache-Control", v, sizeof v) && strcmp(v, "no-store") == 0);
    CHECK(s_header(&r, "Content-Security-Policy", v, sizeof v));
    s_resp_free(&r);
    /* DNS rebinding: a foreign Host is refused, on pages and API. */
    CHECK(s_http(a, "GET", "/api/status", "Host: evil.example:80\r\n", NULL, 0, &r));
    CHECK(r.status == 403);
    s_resp_free(&r);
    char host[128];
    snprintf(host, sizeof host, "Host: localhost:%d\r\n", a->port);
    CHECK(s_http(a, "GET", "/api/status", host, NULL, 0, &r));
    CHECK(r.status == 200);
    s_resp_free(&r);
}

static void test_reads(s_node_t *a)
{
    int st;
    json_t *j = s_get(a, "/api/status", &st);
    CHECK(st == 200);
    CHECK(json_integer_value(json_object_get(j, "last_seq")) > 0);
    CHECK(json_is_true(json_object_get(json_object_get(j, "node"), "running")));
    json_t *cli = s_cli_json(a->dir, "status --json");
    CHECK_STR(json_string_value(json_object_get(j, "public_key")),
              json_string_value(json_object_get(cli, "public_key")));
    /* The same object as `maillage status --json`, plus two members. */
    json_object_del(j, "last_seq");
    json_object_del(j, "http");
    CHECK(json_equal(j, cli));
    json_decref(cli);
    json_decref(j);
    j = s_get(a, "/api/standard", &st);
    CHECK(st == 200);
    CHECK(json_array_size(json_object_get(j, "questions")) == 8);
    bool services = false;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(j, "fields"), i, f) {
        if (strcmp(json_string_value(json_object_get(f, "name")), "services") == 0)
            services = json_array_size(json_object_get(f, "values")) >= 9;
    }
    CHECK(services);
    json_decref(j);
    j = s_get(a, "/api/profile", &st);
    CHECK(st == 200);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "fields"), "commune")),
              "Angoulême");
    CHECK(json_is_true(json_object_get(j, "mine")));
    json_decref(j);
    j = s_get(a, "/api/offers?limit=5", &st);
    CHECK(st == 200);
    CHECK(json_integer_value(json_object_get(j, "total")) > 50);
    CHECK(json_array_size(json_object_get(j, "offers")) == 5);
    json_decref(j);
    /* Filters are the CLI's: the same count as offer list --json. */
    j = s_get(a, "/api/offers?commune=angouleme&limit=1000", &st);
    json_t *cli_list = s_cli_json(a->dir, "offer list --commune angouleme --json");
    CHECK(st == 200 && json_integer_value(json_object_get(j, "total"))
                           == (json_int_t) json_array_size(cli_list));
    CHECK(json_array_size(cli_list) > 0);
    json_decref(cli_list);
    json_decref(j);
    j = s_get(a, "/api/communes", &st);
    CHECK(st == 200 && json_array_size(json_object_get(j, "communes")) > 300);
    json_decref(j);
    j = s_get(a, "/api/changes?since=0", &st);
    CHECK(st == 200 && json_integer_value(json_object_get(j, "last_seq")) > 0);
    json_decref(j);
}

static void test_offer_writes(s_node_t *a)
{
    int st;
    const char *offer =
        "{\"fields\": {\"nom\": \"Atelier tablette\", \"services\": [\"Maîtrise des outils "
        "numériques du quotidien\"], \"presentation_resume\": \"Prendre en main sa tablette\"}}";
    json_t *j = s_api(a, "POST", "/api/offers", offer, &st);
    CHECK(st == 201);
    char id[64] = "";
    if (json_string_value(json_object_get(j, "id")))
        snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    CHECK(strlen(id) == 16);
    CHECK(json_is_true(json_object_get(j, "mine")));
    /* Inherited from the profile, like `maillage offer add`. */
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "fields"), "code_postal")),
              "16000");
    json_decref(j);
    char *out = NULL;
    CHECK(mg_test_cli(a->dir, &out, "offer show %s", id) == 0);
    CHECK(strstr(out, "Atelier tablette") != NULL);
    free(out);
    char path[256];
    snprintf(path, sizeof path, "/api/offers/%.6s", id); /* a prefix, like the CLI */
    j = s_api(a, "PUT", path, "{\"fields\": {\"nom\": \"Atelier tablette et smartphone\", "
                              "\"presentation_resume\": null}}", &st);
    CHECK(st == 200);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "fields"), "nom")),
              "Atelier tablette et smartphone");
    CHECK(json_object_get(json_object_get(j, "fields"), "presentation_resume") == NULL);
    json_decref(j);
    json_t *cli = NULL;
    char args[128];
    snprintf(args, sizeof args, "offer show %s --json", id);
    cli = s_cli_json(a->dir, args);
    CHECK_STR(json_string_value(json_object_get(cli, "nom")), "Atelier tablette et smartphone");
    json_decref(cli);

    /* Security of writes: CSRF, content type, Origin, size. */
    char fp_before[128], fp_after[128];
    s_fingerprint(a->dir, fp_before);
    s_resp_t r;
    CHECK(s_http(a, "POST", "/api/offers", "Content-Type: application/json\r\n", offer,
                 strlen(offer), &r));
    CHECK(r.status == 403);
    CHECK(strstr(r.body, "CSRF") != NULL);
    s_resp_free(&r);
    char extra[512];
    snprintf(extra, sizeof extra, "X-CSRF-Token: %s\r\nContent-Type: text/plain\r\n", a->csrf);
    CHECK(s_http(a, "POST", "/api/offers", extra, offer, strlen(offer), &r));
    CHECK(r.status == 415);
    s_resp_free(&r);
    snprintf(extra, sizeof extra, "X-CSRF-Token: %s\r\n", a->csrf);
    CHECK(s_http(a, "POST", "/api/offers", extra, offer, strlen(offer), &r));
    CHECK(r.status == 415);
    s_resp_free(&r);
    snprintf(extra, sizeof extra,
             "X-CSRF-Token: %s\r\nContent-Type: application/json\r\nOrigin: http://evil.example\r\n",
             a->csrf);
    CHECK(s_http(a, "POST", "/api/offers", extra, offer, strlen(offer), &r));
    CHECK(r.status == 403);
    s_resp_free(&r);
    snprintf(extra, sizeof extra,
             "Host: evil.example:%d\r\nX-CSRF-Token: %s\r\nContent-Type: application/json\r\n",
             a->port, a->csrf);
    CHECK(s_http(a, "POST", "/api/offers", extra, offer, strlen(offer), &r));
    CHECK(r.status == 403);
    s_resp_free(&r);
    snprintf(extra, sizeof extra, "X-CSRF-Token: %s\r\nContent-Type: application/json\r\n",
             a->csrf);
    size_t big = 1024 * 1024 + 10;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    memcpy(huge, "{\"fields\": {\"nom\": \"x\"}}", 24);
    CHECK(s_http(a, "POST", "/api/offers", extra, huge, big, &r));
    CHECK(r.status == 413);
    s_resp_free(&r);
    free(huge);
    /* Refused values: the CLI's message, nothing stored. */
    j = s_api(a, "POST", "/api/offers", "{\"fields\": {\"services\": [\"Cuisine\"]}}", &st);
    CHECK(st == 400);
    CHECK(mg_test_cli(a->dir, &out, "offer add --services Cuisine") != 0);
    CHECK(s_error(j) && strstr(out, s_error(j)) != NULL);
    if (s_error(j) && !strstr(out, s_error(j)))
        fprintf(stderr, "API: %s\nCLI: %s\n", s_error(j), out);
    free(out);
    json_decref(j);
    j = s_api(a, "POST", "/api/offers", "{\"fields\": {\"latitude\": \"pas un nombre\"}}", &st);
    CHECK(st == 400);
    CHECK(mg_test_cli(a->dir, &out, "offer add --latitude 'pas un nombre'") != 0);
    CHECK(s_error(j) && strstr(out, s_error(j)) != NULL);
    free(out);
    json_decref(j);
    j = s_api(a, "PUT", path, "{\"fields\": {\"code_postal\": \"1600\"}}", &st);
    CHECK(st == 400);
    snprintf(args, sizeof args, "offer update %s --code-postal 1600", id);
    CHECK(mg_test_cli(a->dir, &out, "%s", args) != 0);
    CHECK(s_error(j) && strstr(out, s_error(j)) != NULL);
    free(out);
    json_decref(j);
    s_fingerprint(a->dir, fp_after);
    CHECK_STR(fp_before, fp_after);

    /* Someone else's offer: 403 with the CLI's message. */
    json_t *list = s_get(a, "/api/offers?limit=1", &st);
    const char *other = json_string_value(
        json_object_get(json_array_get(json_object_get(list, "offers"), 0), "id"));
    if (other && !json_is_true(json_object_get(json_array_get(json_object_get(list, "offers"), 0), "mine"))) {
        snprintf(path, sizeof path, "/api/offers/%s", other);
        j = s_api(a, "DELETE", path, NULL, &st);
        CHECK(st == 403);
        CHECK(s_error(j) && strstr(s_error(j), "appartient à une autre structure"));
        json_decref(j);
    }
    json_decref(list);

    snprintf(path, sizeof path, "/api/offers/%s", id);
    j = s_api(a, "DELETE", path, NULL, &st);
    CHECK(st == 200 && json_is_true(json_object_get(j, "deleted")));
    json_decref(j);
    j = s_get(a, path, &st);
    CHECK(st == 404);
    json_decref(j);
    /* The live check of the form. */
    j = s_api(a, "POST", "/api/check", "{\"fields\": {\"services\": [\"Aide aux démarches administratives\"]}}", &st);
    CHECK(st == 200);
    CHECK(json_array_size(json_object_get(j, "questions")) == 8);
    CHECK(json_is_boolean(json_object_get(j, "valid")));
    json_decref(j);
}

static void test_replication(s_node_t *a, s_node_t *b)
{
    int st;
    /* Link B to A through B's API, with A's invite line from A's API. */
    json_t *inv = s_get(a, "/api/invite", &st);
    CHECK(st == 200);
    const char *line = json_string_value(json_object_get(inv, "invite"));
    CHECK(line && strncmp(line, "maillage:", 9) == 0);
    char body[2048];
    snprintf(body, sizeof body, "{\"invite\": \"%s\"}", line ? line : "");
    json_t *j = s_api(b, "POST", "/api/peers", body, &st);
    CHECK(st == 201);
    CHECK(json_array_size(json_object_get(j, "peers")) == 1);
    json_decref(j);
    json_decref(inv);
    j = s_api(b, "POST", "/api/peers", "{\"invite\": \"maillage:zz@tcp://x:1\"}", &st);
    CHECK(st == 400 && s_error(j));
    json_decref(j);
    /* An offer written at B through its API appears at A. */
    j = s_api(b, "POST", "/api/offers",
              "{\"fields\": {\"nom\": \"Point numérique <script>alert(1)</script>\", "
              "\"services\": \"Aide aux démarches administratives\"}}", &st);
    CHECK(st == 201);
    char id[64] = "";
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")) ?: "");
    json_decref(j);
    char path[256];
    snprintf(path, sizeof path, "%s", "/api/offers?q=point%20numerique%20script&limit=10");
    bool seen = false;
    int64_t t0 = s_ms();
    for (int64_t end = s_ms() + 20000; s_ms() < end && !seen;) {
        j = s_get(a, path, &st);
        json_t *o = json_array_get(json_object_get(j, "offers"), 0);
        seen = o && strcmp(json_string_value(json_object_get(o, "id")) ?: "", id) == 0
               && !json_is_true(json_object_get(o, "mine"));
        json_decref(j);
        if (!seen)
            usleep(100 * 1000);
    }
    CHECK(seen);
    printf("replication through the dashboards: %lld ms\n", (long long) (s_ms() - t0));
}

static void test_analyses(s_node_t *a)
{
    /* An offer of its own, for complementarities' default structure. */
    int st0;
    json_t *mine = s_api(a, "POST", "/api/offers",
                         "{\"fields\": {\"nom\": \"Permanence numérique\", \"services\": "
                         "[\"Aide aux démarches administratives\"]}}", &st0);
    CHECK(st0 == 201);
    json_decref(mine);
    static const char *const names[] = {"overlaps", "duplicates", "gaps",
                                        "complementarities", "diagnostic", "check", NULL};
    for (int i = 0; names[i]; i++) {
        int st;
        char path[256], args[1024];
        snprintf(path, sizeof path, "/api/analysis/%s?within=5", names[i]);
        bool km = strcmp(names[i], "duplicates") != 0 && strcmp(names[i], "check") != 0;
        if (!km)
            snprintf(path, sizeof path, "/api/analysis/%s", names[i]);
        json_t *api = s_get(a, path, &st);
        CHECK(st == 200);
        snprintf(args, sizeof args, "%s %s %s --json", names[i], km ? "--within 5" : "",
                 strcmp(names[i], "check") != 0 ? "--communes '" COMMUNES "'" : "");
        json_t *cli = s_cli_json(a->dir, args);
        CHECK(cli != NULL);
        CHECK(api && cli && json_equal(api, cli));
        if (!(api && cli && json_equal(api, cli)))
            fprintf(stderr, "analysis %s differs from the CLI\n", names[i]);
        json_decref(api);
        json_decref(cli);
    }
    s_resp_t r;
    char v[256];
    char extra[256] = "";
    CHECK(s_http(a, "GET", "/api/analysis/gaps?format=csv", extra, NULL, 0, &r));
    CHECK(r.status == 200);
    CHECK(s_header(&r, "Content-Type", v, sizeof v) && strncmp(v, "text/csv", 8) == 0);
    CHECK(s_header(&r, "Content-Disposition", v, sizeof v) && strstr(v, "attachment"));
    CHECK(strchr(r.body, ',') && strstr(r.body, "\r\n"));
    s_resp_free(&r);
    CHECK(s_http(a, "GET", "/api/analysis/gaps?format=geojson", extra, NULL, 0, &r));
    CHECK(r.status == 200);
    json_t *g = json_loadb(r.body, r.len, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(g, "type")), "FeatureCollection");
    CHECK(json_array_size(json_object_get(g, "features")) > 0);
    json_decref(g);
    s_resp_free(&r);
    CHECK(s_http(a, "GET", "/api/analysis/diagnostic?format=geojson", extra, NULL, 0, &r));
    CHECK(r.status == 400);
    s_resp_free(&r);
    int st;
    json_t *j = s_get(a, "/api/analysis/overlaps?within=abc", &st);
    CHECK(st == 400 && s_error(j));
    json_decref(j);
}

static void test_events(s_node_t *a, s_node_t *b)
{
    int st;
    json_t *j = s_api(a, "POST", "/api/events",
                      "{\"title\": \"Café numérique\", \"start\": \"2030-03-12T14:00\", "
                      "\"end\": \"16:00\", \"place\": \"1 rue du Test\", \"commune\": \"Angoulême\", "
                      "\"code_postal\": \"16000\", \"territory\": [\"16\"], \"capacity\": 10}",
                      &st);
    CHECK(st == 201);
    char id[64] = "";
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")) ?: "");
    CHECK_STR(json_string_value(json_object_get(j, "titre")), "Café numérique");
    json_decref(j);
    j = s_api(a, "POST", "/api/events", "{\"title\": \"Sans date\"}", &st);
    CHECK(st == 400 && s_error(j));
    json_decref(j);
    j = s_api(a, "POST", "/api/events", "{\"title\": 12, \"start\": [1]}", &st);
    CHECK(st == 400 && s_error(j));
    json_decref(j);
    j = s_api(a, "POST", "/api/events", "{\"file\": \"/etc/passwd\"}", &st);
    CHECK(st == 400 && s_error(j));
    json_decref(j);
    /* B sees the invitation, answers it; A sees the tally. */
    bool seen = false;
    for (int64_t end = s_ms() + 20000; s_ms() < end && !seen;) {
        j = s_get(b, "/api/events?scope=invitations", &st);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "events"), i, e)
            seen = seen || strcmp(json_string_value(json_object_get(e, "id")) ?: "", id) == 0;
        json_decref(j);
        if (!seen)
            usleep(100 * 1000);
    }
    CHECK(seen);
    char path[256];
    snprintf(path, sizeof path, "/api/events/%s/rsvp", id);
    j = s_api(b, "POST", path, "{\"answer\": \"yes\", \"seats\": 2, \"comment\": \"Deux personnes\"}",
              &st);
    CHECK(st == 200);
    CHECK_STR(json_string_value(json_object_get(j, "ma_reponse")), "oui");
    json_decref(j);
    j = s_api(b, "POST", path, "{\"answer\": \"perhaps\"}", &st);
    CHECK(st == 400);
    json_decref(j);
    bool tallied = false;
    snprintf(path, sizeof path, "/api/events/%s", id);
    for (int64_t end = s_ms() + 20000; s_ms() < end && !tallied;) {
        j = s_get(a, path, &st);
        tallied = json_integer_value(json_object_get(json_object_get(j, "reponses"),
                                                     "places_confirmees")) == 2;
        json_decref(j);
        if (!tallied)
            usleep(100 * 1000);
    }
    CHECK(tallied);
    /* The same object as `maillage event show --json`. */
    j = s_get(a, path, &st);
    char args[256];
    snprintf(args, sizeof args, "event show %s --json", id);
    json_t *cli = s_cli_json(a->dir, args);
    CHECK(j && cli && json_equal(j, cli));
    json_decref(cli);
    json_decref(j);
    j = s_api(a, "PUT", path, "{\"capacity\": 1}", &st);
    CHECK(st == 200 && json_integer_value(json_object_get(j, "capacite")) == 1);
    json_decref(j);
    j = s_api(b, "PUT", path, "{\"capacity\": 100}", &st);
    CHECK(st == 403);
    json_decref(j);
    s_resp_t r;
    CHECK(s_http(a, "GET", "/api/events.ics", NULL, NULL, 0, &r));
    char v[256];
    CHECK(r.status == 200 && s_header(&r, "Content-Type", v, sizeof v)
          && strncmp(v, "text/calendar", 13) == 0);
    CHECK(strstr(r.body, "BEGIN:VCALENDAR") && strstr(r.body, "Café numérique"));
    s_resp_free(&r);
    char icspath[128];
    snprintf(icspath, sizeof icspath, "/api/events/%.8s.ics", id);
    CHECK(s_http(b, "GET", icspath, NULL, NULL, 0, &r));
    CHECK(r.status == 200 && s_header(&r, "Content-Disposition", v, sizeof v)
          && strstr(v, "attachment"));
    CHECK(strstr(r.body, "Café numérique") != NULL);
    const char *first = strstr(r.body, "BEGIN:VEVENT"); /* exactly one */
    CHECK(first && !strstr(first + 1, "BEGIN:VEVENT"));
    s_resp_free(&r);
    j = s_get(a, "/api/events/ffffffffffffffff.ics", &st);
    CHECK(st == 404 && s_error(j));
    json_decref(j);
    snprintf(path, sizeof path, "/api/events/%s/cancel", id);
    j = s_api(a, "POST", path, "{\"reason\": \"Salle indisponible\"}", &st);
    CHECK(st == 200 && json_is_true(json_object_get(j, "annule")));
    json_decref(j);
    j = s_get(a, "/api/events?scope=mine", &st);
    CHECK(st == 200 && json_array_size(json_object_get(j, "events")) == 1);
    json_decref(j);
}

static void test_notes(s_node_t *a)
{
    int st;
    json_t *j = s_api(a, "POST", "/api/notes",
                      "{\"title\": \"Accueillir sans rendez-vous\", \"text\": \"Les démarches "
                      "en ligne se font mieux à deux.\", \"tags\": [\"accueil\", \"démarches\"]}",
                      &st);
    CHECK(st == 201);
    char id[64] = "";
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")) ?: "");
    json_decref(j);
    j = s_get(a, "/api/notes?q=demarch", &st);
    CHECK(st == 200);
    json_t *hit = json_array_get(json_object_get(j, "notes"), 0);
    CHECK_STR(json_string_value(json_object_get(hit, "id")), id);
    CHECK(json_string_value(json_object_get(hit, "extrait"))
          && strstr(json_string_value(json_object_get(hit, "extrait")), "<mark>"));
    json_decref(j);
    j = s_get(a, "/api/notes?q=introuvablissime", &st);
    CHECK(st == 200 && json_array_size(json_object_get(j, "notes")) == 0);
    json_decref(j);
    j = s_api(a, "POST", "/api/notes", "{\"title\": \"Sans texte\"}", &st);
    CHECK(st == 400);
    json_decref(j);
    j = s_get(a, "/api/notes", &st);
    CHECK(st == 200 && json_array_size(json_object_get(j, "notes")) == 1);
    json_decref(j);
}

/* Whether a {"peers": [...]} answer lists the key of an invite line. */
static bool s_has_peer(json_t *j, const char *invite)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(j, "peers"), i, p) {
        const char *key = json_string_value(json_object_get(p, "key"));
        if (key && invite && strncmp(invite + 9, key, 64) == 0)
            return true;
    }
    return false;
}

static void test_peers(s_node_t *a, s_node_t *b)
{
    int st;
    json_t *inv = s_get(b, "/api/invite", &st);
    char body[2048];
    snprintf(body, sizeof body, "{\"invite\": \"%s\"}",
             json_string_value(json_object_get(inv, "invite")) ?: "");
    const char *line = json_string_value(json_object_get(inv, "invite"));
    json_t *j = s_api(a, "POST", "/api/peers", body, &st);
    CHECK(st == 201);
    CHECK(s_has_peer(j, line));
    json_decref(j);
    char path[256];
    snprintf(path, sizeof path, "/api/peers/%.10s", line ? line + 9 : "zz");
    j = s_api(a, "DELETE", path, NULL, &st);
    CHECK(st == 200 && json_is_array(json_object_get(j, "peers")));
    CHECK(!s_has_peer(j, line));
    json_decref(j);
    j = s_api(a, "DELETE", "/api/peers/00000000000000000000", NULL, &st);
    CHECK(st == 404 && s_error(j));
    json_decref(j);
    json_decref(inv);
    j = s_get(a, "/api/peers", &st);
    CHECK(st == 200 && json_is_array(json_object_get(j, "peers")));
    json_decref(j);
}

/* Garbage everywhere: always a 4xx with a JSON error, never a crash. */
static void test_garbage(s_node_t *a)
{
    static const char *const bodies[] = {
        "{", "[]", "\"x\"", "{\"fields\": 3}", "{\"fields\": {\"nom\": {\"a\": 1}}}",
        "{\"fields\": {\"inconnu\": \"x\"}}", "{\"fields\": {\"services\": [1, 2]}}",
        "{\"title\": null, \"capacity\": \"beaucoup\"}", "{\"answer\": 3}",
        "{\"invite\": 42}", "{\"a\": 1, \"a\": 2}", "\xff\xfe", "{\"title\": true}",
        "{\"text\": true, \"title\": \"x\"}", "{\"undo\": \"oui\"}", NULL};
    static const char *const writes[][2] = {
        {"POST", "/api/offers"}, {"PUT", "/api/offers/zzzz"}, {"PUT", "/api/profile"},
        {"POST", "/api/check"}, {"POST", "/api/events"}, {"PUT", "/api/events/zzzz"},
        {"POST", "/api/events/zzzz/rsvp"}, {"POST", "/api/events/zzzz/cancel"},
        {"POST", "/api/notes"}, {"POST", "/api/peers"}, {"DELETE", "/api/peers/zz"},
        {"DELETE", "/api/offers/zzzz"}, {"POST", "/api/status"}, {"PATCH", "/api/offers"},
        {NULL, NULL}};
    int bad = 0, total = 0;
    char fp_before[128], fp_after[128];
    s_fingerprint(a->dir, fp_before);
    for (int w = 0; writes[w][0]; w++)
        for (int b = 0; bodies[b]; b++) {
            int st;
            json_t *j = s_api(a, writes[w][0], writes[w][1], bodies[b], &st);
            total++;
            if (!(st >= 400 && st < 500 && s_error(j))) {
                bad++;
                fprintf(stderr, "garbage: %s %s %s -> %d\n", writes[w][0], writes[w][1],
                        bodies[b], st);
            }
            json_decref(j);
        }
    static const char *const reads[] = {
        "/api/offers/zzzz", "/api/offers/a", "/api/offers?limit=-1", "/api/offers?limit=abc",
        "/api/offers?offset=99999999999999999999", "/api/events/zzzz", "/api/events?scope=x",
        "/api/notes/zzzz", "/api/analysis/nothing", "/api/analysis/gaps?format=pdf",
        "/api/analysis/overlaps?limit=-3", "/api/analysis/complementarities?structure=zzzzzzzzz",
        "/api/nothing", "/api/offers/a/b", "/api/events/a/b/c", "/api/analysis/check?today=hier",
        "/api/notes?q=%ff", NULL};
    for (int i = 0; reads[i]; i++) {
        int st;
        json_t *j = s_get(a, reads[i], &st);
        total++;
        if (!(st >= 400 && st < 500 && s_error(j))) {
            bad++;
            fprintf(stderr, "garbage: GET %s -> %d\n", reads[i], st);
        }
        json_decref(j);
    }
    /* A huge query string. */
    size_t n = 20000;
    char *path = malloc(n + 64);
    strcpy(path, "/api/offers?q=");
    memset(path + strlen(path), 'a', n);
    path[n + 14] = '\0';
    int st;
    json_t *j = s_get(a, path, &st);
    total++;
    if (!(st >= 400 && st < 500)) {
        bad++;
        fprintf(stderr, "garbage: huge query -> %d\n", st);
    }
    json_decref(j);
    free(path);
    CHECK(bad == 0);
    printf("garbage requests: %d, all answered 4xx\n", total);
    /* None of them wrote anything. */
    s_fingerprint(a->dir, fp_after);
    CHECK_STR(fp_before, fp_after);
    /* Still serving. */
    j = s_get(a, "/api/session", &st);
    CHECK(st == 200);
    json_decref(j);
}

static void test_token(const char *base)
{
    s_node_t c = {0};
    s_init(&c, base, "c", "Centre social", "16100", "16102");
    CHECK(s_start(&c, "0.0.0.0:0"));
    CHECK(strlen(c.token) == 64);
    char tokpath[700];
    snprintf(tokpath, sizeof tokpath, "%s/http.token", c.dir);
    struct stat sb;
    CHECK(stat(tokpath, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    char saved[80];
    snprintf(saved, sizeof saved, "%s", c.token);
    int st;
    c.token[0] = '\0';
    json_t *j = s_get(&c, "/api/status", &st);
    CHECK(st == 401 && s_error(j));
    json_decref(j);
    snprintf(c.token, sizeof c.token, "%.63s0", saved);
    if (strcmp(c.token, saved) == 0)
        c.token[63] = '1';
    j = s_get(&c, "/api/status", &st);
    CHECK(st == 401);
    json_decref(j);
    snprintf(c.token, sizeof c.token, "%s", saved);
    CHECK(s_session(&c));
    j = s_get(&c, "/api/status", &st);
    CHECK(st == 200 && json_is_true(json_object_get(json_object_get(j, "http"), "token_required")));
    json_decref(j);
    j = s_api(&c, "PUT", "/api/profile", "{\"fields\": {\"nom\": \"Centre social de Cognac\"}}", &st);
    CHECK(st == 200);
    json_decref(j);
    /* Static files need no token (no data in them). */
    s_resp_t r;
    CHECK(s_http(&c, "GET", "/", NULL, NULL, 0, &r) && r.status == 200);
    s_resp_free(&r);
    /* The token survives a restart. */
    s_stop(&c);
    CHECK(s_start(&c, "0.0.0.0:0"));
    CHECK_STR(c.token, saved);
    s_stop(&c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    atexit(s_stop_all);
    char base[] = "/tmp/mg-test-http-XXXXXX";
    if (!mkdtemp(base))
        return 1;
    s_node_t a = {0}, b = {0};
    s_init(&a, base, "a", "Médiathèque d'Angoulême", "16000", "16015");
    s_init(&b, base, "b", "France Services Cognac", "16100", "16102");
    CHECK(mg_test_cli(a.dir, NULL, "import '%s'", LIEUX) == 0);
    CHECK(s_start(&a, "127.0.0.1:0"));
    CHECK(s_start(&b, "0"));
    CHECK(a.token[0] == '\0' && b.token[0] == '\0');
    CHECK(s_session(&a));
    CHECK(s_session(&b));
    if (a.port && b.port) {
        test_headers_and_static(&a);
        test_reads(&a);
        test_offer_writes(&a);
        test_replication(&a, &b);
        test_analyses(&a);
        test_events(&a, &b);
        test_notes(&a);
        test_peers(&a, &b);
        test_garbage(&a);
    }
    s_stop(&a);
    s_stop(&b);
    test_token(base);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (mg_test_failed_ == 0)
        CHECK(system(cmd) == 0);
    else
        fprintf(stderr, "test files kept in %s\n", base);
    return mg_test_done("test_http");
}
