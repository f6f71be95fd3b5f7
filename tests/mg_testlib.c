/*  mg_testlib.c - see mg_testlib.h. */
#include "mg_testlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <sodium.h>

#include "mg_text.h"

int64_t mg_test_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mg_test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool mg_test_wait(mg_test_cond_fn *cond, void *arg, int timeout_ms)
{
    for (int64_t end = mg_test_ms() + timeout_ms; mg_test_ms() < end; mg_test_sleep_ms(20))
        if (cond(arg))
            return true;
    return cond(arg);
}

/* Runs `cmd`, reading all its stdout. */
static int s_popen(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    if (!buf) {
        if (p)
            pclose(p);
        return -1;
    }
    while (p && (n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    int status = p ? pclose(p) : -1;
    if (out)
        *out = buf;
    else
        free(buf);
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int mg_test_sh(char **out, const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    return s_popen(cmd, out);
}

/* `maillage --dir DIR ARGS REDIRECT` into cmd. */
static void s_cli_cmd(char *cmd, size_t size, const char *dir, const char *redirect,
                      const char *fmt, va_list ap)
{
    char args[8192];
    vsnprintf(args, sizeof args, fmt, ap);
    snprintf(cmd, size, "'%s' --dir '%s' %s %s", MG_BINARY, dir, args, redirect);
}

int mg_test_cli(const char *dir, char **out, const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    s_cli_cmd(cmd, sizeof cmd, dir, "2>&1", fmt, ap);
    va_end(ap);
    return s_popen(cmd, out);
}

json_t *mg_test_cli_json(const char *dir, int *exit_code, const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    s_cli_cmd(cmd, sizeof cmd, dir, "2>/dev/null", fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    json_error_t err = {0};
    json_t *j = p ? json_loadf(p, 0, &err) : NULL;
    int status = p ? pclose(p) : -1;
    int code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (exit_code)
        *exit_code = code;
    else if (code != 0)
        json_decref(j), j = NULL;
    if (!j)
        fprintf(stderr, "no JSON from %s (exit %d): %s\n", cmd, code, err.text);
    return j;
}

bool mg_test_intact(const char *db)
{
    mg_store_t *store = NULL;
    mg_why_t why;
    int rc = mg_store_open(db, &store, &why);
    if (rc == MG_OK)
        rc = mg_store_check(store, &why);
    if (rc != MG_OK)
        fprintf(stderr, "%s: %s\n", db, why.text);
    mg_store_destroy(&store);
    return rc == MG_OK;
}

void mg_test_run_cases(const mg_test_case_t *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        int64_t t0 = mg_test_ms();
        cases[i].fn();
        printf("== %s: %lld ms\n", cases[i].name, (long long) (mg_test_ms() - t0));
    }
}

mg_body_t *mg_test_offer_body(const char *rid, const char *nom, const char *code_postal)
{
    mg_body_t *b = mg_body_new();
    if (!b)
        return NULL;
    mg_body_set_str(b, "id", rid);
    mg_body_set_str(b, "pivot", "21160291600019");
    mg_body_set_str(b, "nom", nom);
    mg_body_set_str(b, "commune", "Angoulême");
    mg_body_set_str(b, "code_postal", code_postal);
    mg_body_set_str(b, "adresse", "1 place de l'Hôtel de Ville");
    mg_body_set_str(b, "date_maj", "2026-11-28");
    mg_body_set_list_split(b, "services", "Aide aux démarches administratives", '|');
    return b;
}

void mg_test_node_init(mg_test_node_t *n, const char *root, const char *name)
{
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->db, sizeof n->db, "%s/%s.db", root, name);
    mg_identity_generate(&n->id);
    mg_why_t why;
    if (mg_store_open(n->db, &n->store, &why) != MG_OK) {
        fprintf(stderr, "cannot open %s: %s\n", n->db, why.text);
        exit(1);
    }
    mg_store_meta_set(n->store, "name", name, NULL);
}

void mg_test_node_init_cli(mg_test_node_t *n, const char *root, const char *name,
                           const char *nom)
{
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->dir, sizeof n->dir, "%s/%s", root, name);
    snprintf(n->db, sizeof n->db, "%s/maillage.db", n->dir);
    char *out = NULL;
    if (mg_test_cli(n->dir, &out, "init --name \"%s\"", nom) != 0) {
        fprintf(stderr, "maillage init in %s: %s\n", n->dir, out ? out : "");
        exit(1);
    }
    free(out);
    /* The key file: a comment line, then the seed in hex. */
    char path[400], header[128] = "", hex[80] = "";
    snprintf(path, sizeof path, "%s/identity.key", n->dir);
    FILE *f = fopen(path, "r");
    bool read = f && fgets(header, sizeof header, f) && fgets(hex, sizeof hex, f);
    if (f)
        fclose(f);
    hex[strcspn(hex, "\r\n")] = '\0';
    uint8_t seed[32];
    if (!read || mg_hex_decode(hex, seed, 32) != 0) {
        fprintf(stderr, "cannot read the identity in %s\n", path);
        exit(1);
    }
    mg_identity_from_seed(&n->id, seed);
    sodium_memzero(seed, sizeof seed);
    mg_why_t why;
    if (mg_store_open(n->db, &n->store, &why) != MG_OK) {
        fprintf(stderr, "cannot open %s: %s\n", n->db, why.text);
        exit(1);
    }
}

bool mg_test_node_start(mg_test_node_t *n, bool listen, const mg_node_config_t *opts,
                        int reply_ms)
{
    /* 33 KiB: not on the stack of a test's many threads. */
    mg_node_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return false;
    if (opts) {
        *cfg = *opts;
    } else {
        cfg->interval_ms = 200;
        cfg->quiet = true;
    }
    cfg->db_path = n->db;
    cfg->identity = n->id;
    if (listen) {
        cfg->listen[0] = "tcp://127.0.0.1:*";
        cfg->listen_count = 1;
    }
    n->actor = mg_node_new(cfg);
    free(cfg);
    if (!n->actor)
        return false;
    zsock_set_rcvtimeo(n->actor, reply_ms);
    zstr_send(n->actor, "ENDPOINTS");
    char *ep = zstr_recv(n->actor);
    snprintf(n->endpoint, sizeof n->endpoint, "%s", ep ? ep : "");
    zstr_free(&ep);
    return !listen || n->endpoint[0] != '\0';
}

void mg_test_node_stop(mg_test_node_t *n)
{
    zactor_destroy(&n->actor);
}

void mg_test_node_destroy(mg_test_node_t *n)
{
    mg_test_node_stop(n);
    mg_store_destroy(&n->store);
    mg_identity_wipe(&n->id);
}

bool mg_test_author(mg_test_node_t *n, const char *kind, const char *rid, bool deleted,
                    const mg_body_t *body)
{
    mg_why_t why;
    int rc = mg_store_author(n->store, &n->id, kind, rid, zclock_time(), deleted, body, &why);
    if (rc != MG_OK)
        fprintf(stderr, "author %s: %s\n", rid, why.text);
    return rc == MG_OK;
}

bool mg_test_profile(mg_test_node_t *n)
{
    mg_body_t *b = mg_body_new();
    if (!b)
        return false;
    mg_body_set_str(b, "nom", n->name);
    bool ok = mg_test_author(n, "profile", "profile", false, b);
    mg_body_destroy(&b);
    return ok;
}

bool mg_test_offer(mg_test_node_t *n, const char *rid, const char *nom)
{
    mg_body_t *b = mg_test_offer_body(rid, nom, "16000");
    bool ok = b && mg_test_author(n, "offer", rid, false, b);
    mg_body_destroy(&b);
    return ok;
}

bool mg_test_profile_v1(mg_test_node_t *n)
{
    mg_body_t *b = mg_body_new();
    mg_record_t *rec = NULL;
    int rc = b ? mg_body_set_str(b, "nom", n->name) : MG_ERR_NOMEM;
    if (rc == MG_OK)
        rc = mg_record_sign(&n->id, "profile", "profile", 1, 1700000000000, false, b, &rec,
                            NULL);
    if (rc == MG_OK)
        rc = mg_store_apply_record(n->store, rec, NULL, NULL);
    mg_record_destroy(&rec);
    mg_body_destroy(&b);
    return rc == MG_OK;
}

void mg_test_link(mg_test_node_t *n, const mg_test_node_t *to)
{
    mg_store_peer_add(n->store, to->id.pk, to->endpoint, "invite", zclock_time(), NULL, NULL);
}

bool mg_test_stats(mg_test_node_t *n, mg_test_stats_t *st)
{
    zstr_send(n->actor, "STATS");
    char *s = zstr_recv(n->actor);
    bool ok = s && sscanf(s, "%zu %32s %zu %llu %llu %llu %llu %llu %llu", &st->records, st->fp,
                          &st->live, &st->rounds, &st->bytes_out, &st->bytes_in,
                          &st->records_in, &st->records_out, &st->syncs) == 9;
    zstr_free(&s);
    return ok;
}

bool mg_test_same(mg_test_node_t *a, mg_test_node_t *b, int timeout_ms)
{
    mg_test_stats_t sa, sb;
    for (int64_t end = mg_test_ms() + timeout_ms; mg_test_ms() < end; mg_test_sleep_ms(50))
        if (mg_test_stats(a, &sa) && mg_test_stats(b, &sb) && sa.records == sb.records
            && strcmp(sa.fp, sb.fp) == 0) {
            /* The engine's set follows the store; check the stores too. */
            uint8_t fa[MG_FINGERPRINT_BYTES], fb[MG_FINGERPRINT_BYTES];
            int64_t ca = 0, cb = 0;
            if (mg_store_fingerprint(a->store, fa, &ca, NULL) == MG_OK
                && mg_store_fingerprint(b->store, fb, &cb, NULL) == MG_OK && ca == cb
                && memcmp(fa, fb, sizeof fa) == 0)
                return true;
        }
    return false;
}
