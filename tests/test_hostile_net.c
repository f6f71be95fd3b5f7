/*  test_hostile_net.c - hostile peers against real engines on
    tcp://127.0.0.1 (docs/security.md, "Hostile input tested").

    Each case attacks node A while a real peer syncs records with it:
      - silent connections: a raw TCP connection that never sends a byte,
        a CURVE client that completes the handshake and never speaks, and
        255 CURVE clients that send one message other than HELLO and then
        nothing, filling A's table of links (4 x MG_NODE_PEERS_MAX = 256);
        they are dropped after the hello timeout and a new real peer gets
        in;
      - 1,000 simultaneous plain TCP connections, held open while a new
        real peer dials A and syncs;
      - a CURVE client that sends frames at and over ZMQ_MAXMSGSIZE
        (MG_MSG_MAX): libzmq disconnects it at the first oversized frame.
    Waits are conditions polled until a deadline, never fixed sleeps
    (except where a duration is what is measured). */
#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mg_msg.h"
#include "mg_node.h"
#include "mg_offer.h"
#include "mg_store.h"
#include "mg_test.h"
#include "mg_testlib.h"

static char s_root[256];

/* ------------------------------------------------------------------ */
/* Nodes (as in test_node.c)                                            */

static bool s_node_start(mg_test_node_t *n, bool listen)
{
    return mg_test_node_start(n, listen, NULL, 10000);
}

/* Live links of node n, or -1 if the engine does not answer. */
static int s_live(mg_test_node_t *n)
{
    zstr_send(n->actor, "STATS");
    char *s = zstr_recv(n->actor);
    size_t records = 0, live = 0;
    char fp[33];
    bool ok = s && sscanf(s, "%zu %32s %zu", &records, fp, &live) == 3;
    zstr_free(&s);
    return ok ? (int) live : -1;
}


/* Does node n hold (author, rid)? */
typedef struct {
    mg_test_node_t *n;
    const uint8_t *author;
    const char *rid;
} s_has_t;

static bool s_has(void *arg)
{
    s_has_t *h = arg;
    mg_record_t *r = NULL;
    bool ok = mg_store_get(h->n->store, h->author, h->rid, &r, NULL) == MG_OK;
    mg_record_destroy(&r);
    return ok;
}

static bool s_is_live(void *arg)
{
    return s_live(arg) >= 1;
}

/* A authors `rid` and it reaches `to` within the deadline. */
static bool s_syncs(mg_test_node_t *a, mg_test_node_t *to, const char *rid, int timeout_ms)
{
    mg_test_offer(a, rid, rid);
    s_has_t h = {to, a->id.pk, rid};
    return mg_test_wait(s_has, &h, timeout_ms);
}

static int s_port(const mg_test_node_t *n)
{
    const char *colon = strrchr(n->endpoint, ':');
    return colon ? atoi(colon + 1) : 0;
}

/* ------------------------------------------------------------------ */
/* Hostile clients                                                      */

/* A plain TCP connection to n, non-blocking; -1 on failure. */
static int s_tcp_connect(const mg_test_node_t *n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t) s_port(n))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *) &addr, sizeof addr) != 0
        && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads and discards what the server sent (its ZMTP greeting); returns
   1 once the server closed the connection, 0 while it is open. */
static int s_tcp_closed(int fd)
{
    uint8_t buf[512];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0)
            continue;
        if (r == 0)
            return 1;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
    }
}

/* Watches a socket's connection events (libzmq's socket monitor). */
typedef struct {
    zsock_t *pair;
    void *watched;
} s_mon_t;

static void s_mon_start(s_mon_t *m, zsock_t *sock, const char *name)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://mon-%s", name);
    m->watched = zsock_resolve(sock);
    zmq_socket_monitor(m->watched, ep, ZMQ_EVENT_ALL);
    m->pair = zsock_new(ZMQ_PAIR);
    zsock_connect(m->pair, "%s", ep);
}

/* Waits for one of `events`; returns it, or 0 at the deadline. */
static int s_mon_wait(s_mon_t *m, int events, int timeout_ms)
{
    int64_t deadline = zclock_time() + timeout_ms;
    zpoller_t *p = zpoller_new(m->pair, NULL);
    int found = 0;
    while (!found && zclock_time() < deadline) {
        if (!zpoller_wait(p, (int) (deadline - zclock_time())))
            break;
        zframe_t *f = zframe_recv(m->pair);
        zframe_t *addr = zsock_rcvmore(m->pair) ? zframe_recv(m->pair) : NULL;
        if (f && zframe_size(f) >= 2) {
            uint16_t ev;
            memcpy(&ev, zframe_data(f), 2);
            if (ev & events)
                found = ev;
        }
        zframe_destroy(&f);
        zframe_destroy(&addr);
    }
    zpoller_destroy(&p);
    return found;
}

static void s_mon_stop(s_mon_t *m)
{
    zmq_socket_monitor(m->watched, NULL, 0);
    zsock_destroy(&m->pair);
}

/* A DEALER with a valid CURVE client key (that of `client`, converted as
   the node converts its own) and `server`'s CURVE key, connected to it;
   `mon` (may be NULL) watches it from before the connection. */
static zsock_t *s_curve_client(const mg_identity_t *client, const mg_test_node_t *server,
                               s_mon_t *mon, const char *name)
{
    uint8_t cpk[32], csk[32], spk[32];
    if (crypto_sign_ed25519_pk_to_curve25519(cpk, client->pk) != 0
        || crypto_sign_ed25519_sk_to_curve25519(csk, client->sk) != 0
        || crypto_sign_ed25519_pk_to_curve25519(spk, server->id.pk) != 0)
        return NULL;
    zcert_t *cert = zcert_new_from(cpk, csk);
    sodium_memzero(csk, sizeof csk);
    zsock_t *d = zsock_new(ZMQ_DEALER);
    zcert_apply(cert, d);
    zcert_destroy(&cert);
    zsock_set_curve_serverkey_bin(d, spk);
    zsock_set_linger(d, 0);
    zsock_set_sndhwm(d, 10);
    zsock_set_sndtimeo(d, 2000);
    if (mon)
        s_mon_start(mon, d, name);
    if (zsock_connect(d, "%s", server->endpoint) != 0) {
        if (mon)
            s_mon_stop(mon);
        zsock_destroy(&d);
    }
    return d;
}

/* Sends HELLO as `id` and waits for the node's HELLO in return. */
static bool s_hello_answered(zsock_t *d, const mg_identity_t *id, int timeout_ms)
{
    uint8_t *msg = NULL;
    size_t len = 0;
    mg_msg_hello(id->pk, NULL, 0, "intrus", &msg, &len);
    zframe_t *f = zframe_new(msg, len);
    free(msg);
    if (zframe_send(&f, d, 0) != 0) {
        zframe_destroy(&f);
        return false;
    }
    zpoller_t *p = zpoller_new(d, NULL);
    bool answered = false;
    int64_t deadline = zclock_time() + timeout_ms;
    while (!answered && zclock_time() < deadline
           && zpoller_wait(p, (int) (deadline - zclock_time()))) {
        zframe_t *in = zframe_recv(d);
        mg_msg_t m;
        if (in && mg_msg_decode(zframe_data(in), zframe_size(in), &m, NULL) == MG_OK) {
            answered = m.type == MG_MSG_HELLO;
            mg_msg_clear(&m);
        }
        zframe_destroy(&in);
    }
    zpoller_destroy(&p);
    return answered;
}

static void s_send_bytes(zsock_t *d, const uint8_t *data, size_t len)
{
    zframe_t *f = zframe_new(data, len);
    if (zframe_send(&f, d, 0) != 0)
        zframe_destroy(&f);
}

/* ------------------------------------------------------------------ */

/* Silent connections. */
static void test_silent_peers(void)
{
    enum { HALF = 4 * MG_NODE_PEERS_MAX - 1 }; /* every free link slot */
    mg_test_node_t a, b, c;
    mg_test_node_init(&a, s_root, "SA");
    mg_test_node_init(&b, s_root, "SB");
    mg_test_node_init(&c, s_root, "SC");
    mg_test_profile(&a);
    mg_test_profile(&b);
    mg_test_profile(&c);
    CHECK(s_node_start(&a, true));
    mg_test_link(&b, &a);
    CHECK(s_node_start(&b, false));
    CHECK(mg_test_wait(s_is_live, &b, 10000));

    /* 1. A TCP connection that never sends a byte. */
    int raw = s_tcp_connect(&a);
    CHECK(raw >= 0);
    int64_t raw_opened = zclock_time();
    /* 2. A CURVE client that completes the handshake and never speaks. */
    mg_identity_t mute_id;
    mg_identity_generate(&mute_id);
    s_mon_t mute_mon;
    zsock_t *mute = s_curve_client(&mute_id, &a, &mute_mon, "mute");
    CHECK(mute != NULL);
    CHECK(s_mon_wait(&mute_mon, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 5000) != 0);
    /* 3. 255 CURVE clients that each send one RECON_Q before any HELLO
       (counted as malformed, the link stays unauthenticated) and then
       nothing: every free slot of A's link table is taken. */
    zsock_t **half = calloc(HALF, sizeof *half);
    s_mon_t *half_mon = calloc(HALF, sizeof *half_mon);
    mg_identity_t half_id;
    mg_identity_generate(&half_id);
    static const uint8_t recon_q[] = {0x92, 0x02, 0xc4, 0x02, 0x91, 0x01};
    /* No link can exist before this instant, so none is dropped before
       this instant plus the hello timeout. */
    int64_t flood_start = zclock_time();
    for (int i = 0; i < HALF; i++) {
        char name[32];
        snprintf(name, sizeof name, "half-%d", i);
        half[i] = s_curve_client(&half_id, &a, &half_mon[i], name);
        if (half[i])
            s_send_bytes(half[i], recon_q, sizeof recon_q);
    }
    /* Every handshake done: each message follows its handshake at once. */
    int shaken = 0;
    for (int i = 0; i < HALF; i++)
        if (half[i]) {
            shaken += s_mon_wait(&half_mon[i], ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 10000) != 0;
            s_mon_stop(&half_mon[i]);
        }
    CHECK(shaken == HALF);
    /* A read them all, in order, before this round trip completes. */
    CHECK(s_syncs(&a, &b, "pendant-silence", 10000));

    /* A new real peer dials A: its HELLO finds no free slot until the
       hello timeout (5 s) drops the silent links. */
    mg_test_link(&c, &a);
    CHECK(s_node_start(&c, false));
    CHECK(mg_test_wait(s_is_live, &c, 30000));
    int64_t admitted = zclock_time() - flood_start;
    printf("silent peers: %d unauthenticated links held A's table; a new peer got in "
           "%.1f s after the first of them (hello timeout 5 s)\n", HALF,
           (double) admitted / 1000);
    CHECK(admitted >= 5000);
    CHECK(s_syncs(&a, &c, "apres-silence", 10000));
    for (int i = 0; i < HALF; i++)
        zsock_destroy(&half[i]);
    free(half);
    free(half_mon);

    /* The raw connection: closed by libzmq when its handshake interval
       runs out (ZMQ_HANDSHAKE_IVL; libzmq's default, 30 s: the node does
       not set it). */
    int closed = 0;
    while (!(closed = s_tcp_closed(raw)) && zclock_time() - raw_opened < 45000)
        zclock_sleep(100);
    int64_t raw_life = zclock_time() - raw_opened;
    printf("silent TCP connection: %s after %.1f s\n",
           closed ? "closed by the node" : "still open", (double) raw_life / 1000);
    CHECK(closed && raw_life <= 40000);
    close(raw);
    /* The mute CURVE client is never seen by the engine (ROUTER
       delivers messages, not connections): it stays connected. */
    int ev = s_mon_wait(&mute_mon, ZMQ_EVENT_DISCONNECTED, 100);
    printf("silent CURVE client: %s after %.1f s\n",
           ev ? "disconnected" : "still connected", (double) raw_life / 1000);
    CHECK(ev == 0);
    s_mon_stop(&mute_mon);
    zsock_destroy(&mute);
    /* A still serves. */
    CHECK(s_syncs(&a, &b, "fin-silence", 10000));
    mg_test_node_destroy(&c);
    mg_test_node_destroy(&b);
    mg_test_node_destroy(&a);
}

/* Raises the soft limit on open files to `want` if the hard limit
   allows; returns the limit now in force. */
static rlim_t s_raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want
                                                                          : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

/* 1,000 simultaneous TCP connections. */
static void test_thousand_connections(void)
{
    enum { N = 1000 };
    /* Both ends live in this process: N client sockets, N accepted by
       libzmq, and the engines' own. */
    rlim_t limit = s_raise_nofile(2 * N + 512);
    if (limit < 2 * N + 256) {
        printf("1,000 connections: SKIPPED, the open-file limit is %llu and the hard "
               "limit does not allow %d\n", (unsigned long long) limit, 2 * N + 256);
        return;
    }
    mg_test_node_t a, b;
    mg_test_node_init(&a, s_root, "TA");
    mg_test_node_init(&b, s_root, "TB");
    mg_test_profile(&a);
    mg_test_profile(&b);
    CHECK(s_node_start(&a, true));
    int *fds = malloc(N * sizeof *fds);
    int opened = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = s_tcp_connect(&a);
        opened += fds[i] >= 0;
    }
    /* Wait until every connect completed (accepted by A). */
    int connected = 0;
    int64_t deadline = zclock_time() + 20000;
    struct pollfd *pfd = calloc(N, sizeof *pfd);
    bool *done = calloc(N, sizeof *done);
    while (connected < opened && zclock_time() < deadline) {
        int n = 0;
        for (int i = 0; i < N; i++)
            if (fds[i] >= 0 && !done[i]) {
                pfd[n].fd = fds[i];
                pfd[n].events = POLLOUT;
                pfd[n].revents = 0;
                n++;
            }
        if (poll(pfd, (nfds_t) n, 100) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!(pfd[k].revents & (POLLOUT | POLLERR | POLLHUP)))
                continue;
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(pfd[k].fd, SOL_SOCKET, SO_ERROR, &err, &el);
            for (int i = 0; i < N; i++)
                if (fds[i] == pfd[k].fd) {
                    done[i] = true;
                    break;
                }
            if (err == 0)
                connected++;
        }
    }
    printf("1,000 connections: %d of %d connected (open-file limit %llu)\n", connected, N,
           (unsigned long long) limit);
    CHECK(connected == N);
    /* A new real peer dials A while they are all open, and syncs. */
    mg_test_link(&b, &a);
    CHECK(s_node_start(&b, false));
    int64_t t0 = zclock_time();
    CHECK(mg_test_wait(s_is_live, &b, 15000));
    CHECK(s_syncs(&a, &b, "mille-connexions", 15000));
    printf("1,000 connections: the real peer synced a record in %.1f s\n",
           (double) (zclock_time() - t0) / 1000);
    int still = 0;
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0) {
            still += !s_tcp_closed(fds[i]);
            close(fds[i]);
        }
    printf("1,000 connections: %d still open at the end\n", still);
    free(done);
    free(pfd);
    free(fds);
    mg_test_node_destroy(&b);
    mg_test_node_destroy(&a);
}

/* Frames at and over ZMQ_MAXMSGSIZE from an authenticated CURVE client. */
static void test_oversized_frames(void)
{
    mg_test_node_t a, b;
    mg_test_node_init(&a, s_root, "OA");
    mg_test_node_init(&b, s_root, "OB");
    mg_test_profile(&a);
    mg_test_profile(&b);
    CHECK(s_node_start(&a, true));
    mg_test_link(&b, &a);
    CHECK(s_node_start(&b, false));
    CHECK(mg_test_wait(s_is_live, &b, 10000));

    mg_identity_t x;
    mg_identity_generate(&x);
    s_mon_t mon;
    zsock_t *d = s_curve_client(&x, &a, &mon, "big");
    CHECK(d != NULL);
    CHECK(s_hello_answered(d, &x, 5000)); /* a live, authenticated link */

    /* libzmq applies ZMQ_MAXMSGSIZE to the frame on the wire: with CURVE
       that is the message plus 33 bytes (command name, nonce, MAC, flags),
       so the largest message that passes is MG_MSG_MAX - 33. */
    enum { CURVE_OVERHEAD = 33 };
    size_t sizes[2] = {MG_MSG_MAX - CURVE_OVERHEAD, MG_MSG_MAX + 1};
    uint8_t *big = malloc(MG_MSG_MAX + 1);
    memset(big, 0xc1, MG_MSG_MAX + 1); /* never valid msgpack */
    s_send_bytes(d, big, sizes[0]);
    CHECK(s_mon_wait(&mon, ZMQ_EVENT_DISCONNECTED, 1500) == 0);
    CHECK(s_hello_answered(d, &x, 5000)); /* the same connection still works */
    s_send_bytes(d, big, sizes[1]);
    int64_t t0 = zclock_time();
    int ev = s_mon_wait(&mon, ZMQ_EVENT_DISCONNECTED, 5000);
    printf("frame of MG_MSG_MAX + 1 bytes: %s after %lld ms\n",
           ev ? "disconnected by libzmq" : "NOT disconnected",
           (long long) (zclock_time() - t0));
    CHECK(ev == ZMQ_EVENT_DISCONNECTED);
    /* One byte over on the wire is enough. */
    s_mon_t mon2;
    zsock_t *d2 = s_curve_client(&x, &a, &mon2, "edge");
    CHECK(s_hello_answered(d2, &x, 5000));
    s_send_bytes(d2, big, MG_MSG_MAX - CURVE_OVERHEAD + 1);
    CHECK(s_mon_wait(&mon2, ZMQ_EVENT_DISCONNECTED, 5000) == ZMQ_EVENT_DISCONNECTED);
    s_mon_stop(&mon2);
    zsock_destroy(&d2);
    free(big);

    /* A keeps serving its real peer, and the engine answers. */
    CHECK(s_syncs(&a, &b, "apres-grosse-trame", 10000));
    CHECK(s_live(&a) >= 1);
    s_mon_stop(&mon);
    zsock_destroy(&d);
    mg_test_node_destroy(&b);
    mg_test_node_destroy(&a);
}

/* A peer of another protocol version (an old maillage): its HELLO is
   refused without an answer, but it is not taken for an attacker: the
   same key says HELLO at our version right after and is answered (a ban
   would refuse it for 10 minutes), however many times it tried before. */
static void test_other_version(void)
{
    mg_test_node_t a;
    mg_test_node_init(&a, s_root, "VA");
    mg_test_profile(&a);
    CHECK(s_node_start(&a, true));
    mg_identity_t x;
    mg_identity_generate(&x);
    uint8_t *hello = NULL;
    size_t len = 0;
    CHECK(mg_msg_hello(x.pk, NULL, 0, "ancienne version", &hello, &len) == MG_OK);
    /* [1, version, ...]: 0x95, 0x01, then the version as a positive fixint. */
    CHECK(len > 3 && hello[0] == 0x95 && hello[1] == 0x01 && hello[2] == MG_PROTOCOL_VERSION);
    hello[2] = MG_PROTOCOL_VERSION - 1;
    for (int i = 0; i < 25; i++) { /* more than the malformed limit (20) */
        zsock_t *d = s_curve_client(&x, &a, NULL, "old");
        CHECK(d != NULL);
        s_send_bytes(d, hello, len);
        if (i == 0) {
            /* No HELLO comes back for an old one. */
            zpoller_t *p = zpoller_new(d, NULL);
            zframe_t *in = zpoller_wait(p, 1500) ? zframe_recv(d) : NULL;
            mg_msg_t m;
            bool answered = false;
            if (in && mg_msg_decode(zframe_data(in), zframe_size(in), &m, NULL) == MG_OK) {
                answered = m.type == MG_MSG_HELLO;
                mg_msg_clear(&m);
            }
            CHECK(!answered);
            zframe_destroy(&in);
            zpoller_destroy(&p);
        }
        zsock_destroy(&d);
    }
    free(hello);
    zsock_t *d = s_curve_client(&x, &a, NULL, "new");
    CHECK(d != NULL);
    CHECK(s_hello_answered(d, &x, 5000));
    zsock_destroy(&d);
    mg_identity_wipe(&x);
    mg_test_node_destroy(&a);
}

int main(void)
{
    /* 256 hostile sockets, their monitors and the engines' own stay
       under czmq's default of 1,024 sockets; leave room anyway. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    zsys_set_max_sockets(4096);
    zsys_set_logstream(stderr);
    snprintf(s_root, sizeof s_root, "/tmp/mg-test-hostile-net-XXXXXX");
    if (!mkdtemp(s_root))
        return 1;
    test_oversized_frames();
    test_other_version();
    test_thousand_connections();
    test_silent_peers();
    int rc = mg_test_done("test_hostile_net");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_root);
    if (rc == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_root);
    return rc;
}
