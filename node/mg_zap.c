/*  mg_zap.c - process-wide ZAP handler, see mg_zap.h. */
#include "mg_zap.h"

#include <czmq.h>
#include <pthread.h>

#include "mg_text.h"

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static zactor_t *s_actor = NULL;
static int s_users = 0;

/* Banned CURVE keys (hex) -> expiry; bounded so a flood of keys cannot
   grow it without limit (the oldest entries are dropped first). */
#define S_BANS_MAX 1024
typedef struct {
    char key[65];
    int64_t until_ms;
} s_ban_t;
static s_ban_t s_bans[S_BANS_MAX];
static size_t s_ban_count = 0;

void mg_zap_ban(const char *curve_hex, int64_t until_ms)
{
    pthread_mutex_lock(&s_lock);
    size_t slot = s_ban_count;
    for (size_t i = 0; i < s_ban_count; i++)
        if (strcmp(s_bans[i].key, curve_hex) == 0)
            slot = i;
    if (slot == s_ban_count) {
        if (s_ban_count == S_BANS_MAX) {
            memmove(s_bans, s_bans + 1, (S_BANS_MAX - 1) * sizeof *s_bans);
            slot = S_BANS_MAX - 1;
        } else {
            s_ban_count++;
        }
    }
    snprintf(s_bans[slot].key, sizeof s_bans[slot].key, "%s", curve_hex);
    s_bans[slot].until_ms = until_ms;
    pthread_mutex_unlock(&s_lock);
}

/* Allow-lists per ZAP domain. */
#define S_DOMAINS_MAX 64
typedef struct {
    char domain[64];
    char (*keys)[65];
    size_t count;
} s_allow_t;
static s_allow_t s_allows[S_DOMAINS_MAX];
static size_t s_allow_count = 0;

int mg_zap_allow(const char *domain, const char (*curve_hex)[65], size_t count)
{
    pthread_mutex_lock(&s_lock);
    int rc = 0;
    size_t slot = s_allow_count;
    for (size_t i = 0; i < s_allow_count; i++)
        if (strcmp(s_allows[i].domain, domain) == 0)
            slot = i;
    if (slot < s_allow_count) {
        free(s_allows[slot].keys);
        s_allows[slot] = s_allows[--s_allow_count];
    }
    if (count) {
        if (s_allow_count == S_DOMAINS_MAX) {
            rc = -1;
        } else {
            s_allow_t *a = &s_allows[s_allow_count];
            a->keys = malloc(count * sizeof *a->keys);
            if (!a->keys) {
                rc = -1;
            } else {
                memcpy(a->keys, curve_hex, count * sizeof *a->keys);
                a->count = count;
                snprintf(a->domain, sizeof a->domain, "%s", domain);
                s_allow_count++;
            }
        }
    }
    pthread_mutex_unlock(&s_lock);
    return rc;
}

/* Whether the domain has a list that does not hold the key. */
static bool s_refused(const char *domain, const char *curve_hex)
{
    bool refused = false;
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < s_allow_count; i++) {
        if (strcmp(s_allows[i].domain, domain ? domain : "") != 0)
            continue;
        refused = true;
        for (size_t k = 0; k < s_allows[i].count && refused; k++)
            refused = strcmp(s_allows[i].keys[k], curve_hex) != 0;
    }
    pthread_mutex_unlock(&s_lock);
    return refused;
}

static bool s_banned(const char *curve_hex)
{
    bool banned = false;
    int64_t now = zclock_time();
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < s_ban_count && !banned; i++)
        banned = s_bans[i].until_ms > now && strcmp(s_bans[i].key, curve_hex) == 0;
    pthread_mutex_unlock(&s_lock);
    return banned;
}

static void s_reply(zsock_t *handler, const char *version, const char *req_id,
                    const char *status, const char *text, const char *user)
{
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, version);
    zmsg_addstr(reply, req_id);
    zmsg_addstr(reply, status);
    zmsg_addstr(reply, text);
    zmsg_addstr(reply, user);
    zmsg_addmem(reply, NULL, 0); /* no metadata */
    zmsg_send(&reply, handler);
}

static void s_zap_actor(zsock_t *pipe, void *arg)
{
    (void) arg;
    zsock_t *handler = zsock_new_rep("inproc://zeromq.zap.01");
    /* zactor_new discards the signal's value: the status follows as a
       string, so the starter can retry while a previous handler is still
       releasing the endpoint. */
    zsock_signal(pipe, 0);
    zstr_send(pipe, handler ? "OK" : "FAIL");
    if (!handler) {
        char *cmd = zstr_recv(pipe); /* $TERM */
        zstr_free(&cmd);
        return;
    }
    zpoller_t *poller = zpoller_new(pipe, handler, NULL);
    while (true) {
        void *which = zpoller_wait(poller, -1);
        if (which == pipe || !which)
            break; /* $TERM or interrupted */
        zmsg_t *req = zmsg_recv(handler);
        if (!req)
            break;
        /* version, request id, domain, address, identity, mechanism,
           credentials... (RFC 27) */
        char *version = zmsg_popstr(req);
        char *req_id = zmsg_popstr(req);
        char *domain = zmsg_popstr(req);
        char *address = zmsg_popstr(req);
        char *identity = zmsg_popstr(req);
        char *mechanism = zmsg_popstr(req);
        zframe_t *cred = zmsg_pop(req);
        if (version && req_id && mechanism && streq(mechanism, "CURVE") && cred
            && zframe_size(cred) == 32) {
            char hex[65];
            mg_hex_encode(zframe_data(cred), 32, hex);
            if (s_banned(hex))
                s_reply(handler, version, req_id, "400", "banned for a while", "");
            else if (s_refused(domain, hex)) {
                s_reply(handler, version, req_id, "400", "not on the allow list", "");
                /* Said once a second at most: a refused peer retries. */
                static int64_t last_log = 0;
                if (zclock_time() - last_log > 1000) {
                    zsys_warning("connexion refusée (clé absente de la liste --allow) cle_curve=%.12s",
                                 hex);
                    last_log = zclock_time();
                }
            }
            else
                s_reply(handler, version, req_id, "200", "OK", hex);
        } else {
            s_reply(handler, version ? version : "1.0", req_id ? req_id : "",
                    "400", "CURVE required", "");
        }
        zframe_destroy(&cred);
        zstr_free(&version);
        zstr_free(&req_id);
        zstr_free(&domain);
        zstr_free(&address);
        zstr_free(&identity);
        zstr_free(&mechanism);
        zmsg_destroy(&req);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&handler);
}

int mg_zap_acquire(void)
{
    pthread_mutex_lock(&s_lock);
    int rc = 0;
    if (s_users == 0) {
        /* The endpoint of a handler just stopped may still be bound for a
           moment: retry for up to a second rather than run without one
           (connections would then carry no User-Id, and every inbound
           HELLO would be refused). */
        rc = -1;
        for (int attempt = 0; attempt < 100 && rc != 0; attempt++) {
            s_actor = zactor_new(s_zap_actor, NULL);
            char *status = s_actor ? zstr_recv(s_actor) : NULL;
            if (status && streq(status, "OK"))
                rc = 0;
            else {
                zactor_destroy(&s_actor);
                zclock_sleep(10);
            }
            zstr_free(&status);
        }
    }
    if (rc == 0)
        s_users++;
    pthread_mutex_unlock(&s_lock);
    return rc;
}

void mg_zap_release(void)
{
    pthread_mutex_lock(&s_lock);
    if (s_users > 0 && --s_users == 0)
        zactor_destroy(&s_actor);
    pthread_mutex_unlock(&s_lock);
}
