/*  test_partition.c - partitions and churn with real `maillage node`
    processes on 127.0.0.1.

    1. Split and heal. Six nodes converge on a first set (node 1's 100
       lieux). Then they split 3 | 3: every process is stopped and
       restarted on a port never used before, side A = {1, 2, 3} and
       B = {4, 5, 6} each given only its own side's new invitations (and
       the other side's peers removed). The other side's old endpoints,
       learnt again from the profiles, now lead nowhere, so no link
       crosses. During the split both sides write, and node 1 (side A)
       updates all its 100 lieux: side B keeps the old versions. Heal:
       side A is stopped, given side B's invitations (`maillage peer
       add`) and restarted. All six must hold the same set (the
       fingerprint of `maillage status --json`), with node 1's updates
       everywhere.
    2. The same with a real network partition, when run as root: each
       node in its own network namespace (10.201.0.N, addresses that only
       exist inside namespaces this test creates), side A's nodes on one
       bridge and side B's on another, joined by one veth pair; the
       split cuts that pair while every process keeps running, until the
       nodes have noticed. Skipped with a message when not root or `ip
       netns` does not work.
    3. Every peer moved: a node whose peers all changed address dials
       them all, they all fail together; it must keep running and stop
       cleanly.
    4. Churn: two nodes restart in a loop (SIGTERM, every third time
       SIGKILL, then start) while two others publish 200 offers with
       `maillage offer add`; at the end every offer is on every node.

    Every wait polls a condition until a deadline. MG_FAULT_SCALE
    (percent, default 100) publishes fewer offers in the churn for slow
    builds (AddressSanitizer). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mg_store.h"
#include "mg_test.h"
#include "mg_testlib.h"

static char s_root[256];
static int s_scale = 100; /* MG_FAULT_SCALE, percent */

/* ------------------------------------------------------------------ */
/* Nodes as processes                                                   */

/* A port of 127.0.0.1 that nothing listens on: bound by the system,
   then closed. */
static int s_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = 0;
    if (bind(fd, (struct sockaddr *) &addr, sizeof addr) == 0
        && getsockname(fd, (struct sockaddr *) &addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

/* Ports handed out so far: a node never listens twice on the same one,
   so an endpoint learnt before a restart never leads to it again. */
static int s_used[512];
static int s_used_count;

static int s_fresh_port(void)
{
    for (int tries = 0; tries < 1000; tries++) {
        int port = s_closed_port();
        bool used = port == 0;
        for (int i = 0; i < s_used_count && !used; i++)
            used = s_used[i] == port;
        if (!used && s_used_count < (int) (sizeof s_used / sizeof s_used[0])) {
            s_used[s_used_count++] = port;
            return port;
        }
    }
    return 0;
}


typedef struct {
    char name[16];
    char dir[300];
    char ns[32];            /* network namespace, "" for the host's */
    char listen[64];        /* endpoint to bind */
    bool fixed;             /* listen is fixed; else a new port each start */
    pid_t pid;              /* the `maillage node` process, 0 when stopped */
    char key[65];           /* public key, hex */
    char invite[1024];      /* its invitation at its last start */
} s_node_t;

typedef struct {
    char fp[64];
    int64_t versions;
    bool running;
} s_st_t;

static bool s_st(const s_node_t *n, s_st_t *st)
{
    memset(st, 0, sizeof *st);
    json_t *j = mg_test_cli_json(n->dir, NULL, "status --json");
    if (!j)
        return false;
    const char *fp = json_string_value(json_object_get(j, "fingerprint"));
    snprintf(st->fp, sizeof st->fp, "%s", fp ? fp : "");
    st->versions = json_integer_value(json_object_get(j, "versions"));
    st->running = json_is_true(json_object_get(json_object_get(j, "node"), "running"));
    json_decref(j);
    return true;
}

static bool s_node_init(s_node_t *n, const char *name, const char *ns, const char *listen)
{
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->dir, sizeof n->dir, "%s/%s", s_root, name);
    snprintf(n->ns, sizeof n->ns, "%s", ns ? ns : "");
    snprintf(n->listen, sizeof n->listen, "%s", listen ? listen : "");
    n->fixed = listen != NULL;
    char *out = NULL;
    int rc = mg_test_sh(&out, "'%s' --dir '%s' init --name 'Nœud %s'", MG_BINARY, n->dir, name);
    if (rc != 0)
        fprintf(stderr, "init %s: %s\n", name, out);
    free(out);
    json_t *j = mg_test_cli_json(n->dir, NULL, "status --json");
    const char *key = json_string_value(json_object_get(j, "public_key"));
    snprintf(n->key, sizeof n->key, "%s", key ? key : "");
    json_decref(j);
    return rc == 0 && strlen(n->key) == 64;
}

/* Starts the daemon and waits until it runs; reads its invitation. */
static bool s_node_start(s_node_t *n)
{
    char log[400];
    snprintf(log, sizeof log, "%s/node.log", n->dir);
    if (!n->fixed)
        snprintf(n->listen, sizeof n->listen, "tcp://127.0.0.1:%d", s_fresh_port());
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        if (n->ns[0])
            /* ip execs the command in the namespace: same pid. */
            execlp("ip", "ip", "netns", "exec", n->ns, MG_BINARY, "--dir", n->dir, "node",
                   "--listen", n->listen, "--interval", "200", (char *) NULL);
        else
            execl(MG_BINARY, MG_BINARY, "--dir", n->dir, "node", "--listen", n->listen,
                  "--interval", "200", (char *) NULL);
        _exit(127);
    }
    n->pid = pid;
    s_st_t st = {0};
    for (int64_t end = mg_test_ms() + 30000; mg_test_ms() < end; mg_test_sleep_ms(50)) {
        if (s_st(n, &st) && st.running)
            break;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            n->pid = 0;
            break;
        }
    }
    if (!st.running) {
        fprintf(stderr, "node %s did not start\n", n->name);
        return false;
    }
    char *out = NULL;
    int rc = mg_test_sh(&out, "'%s' --dir '%s' invite", MG_BINARY, n->dir);
    out[strcspn(out, "\n")] = '\0';
    snprintf(n->invite, sizeof n->invite, "%s", out);
    free(out);
    return rc == 0 && strncmp(n->invite, "maillage:", 9) == 0;
}

/* Stops the daemon with `sig`; returns its wait status (-1: it did not
   end within 20 s and was killed). */
static int s_node_stop(s_node_t *n, int sig)
{
    if (!n->pid)
        return 0;
    kill(n->pid, sig);
    int status = 0, result = -1;
    for (int64_t end = mg_test_ms() + 20000; mg_test_ms() < end; mg_test_sleep_ms(10)) {
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            result = status;
            break;
        }
    }
    if (result == -1) {
        kill(n->pid, SIGKILL);
        waitpid(n->pid, &status, 0);
    }
    n->pid = 0;
    return result;
}

static bool s_clean_exit(int status)
{
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool s_peer_add(const s_node_t *n, const s_node_t *to)
{
    char *out = NULL;
    int rc = mg_test_sh(&out, "'%s' --dir '%s' peer add '%s'", MG_BINARY, n->dir, to->invite);
    if (rc != 0)
        fprintf(stderr, "peer add %s -> %s: %s\n", n->name, to->name, out);
    free(out);
    return rc == 0;
}

/* Removes every peer row of `to` from n's table (n stopped). */
static void s_peer_rm(const s_node_t *n, const s_node_t *to)
{
    mg_test_sh(NULL, "'%s' --dir '%s' peer rm %.16s", MG_BINARY, n->dir, to->key);
}

/* Do the `count` nodes at `idx` hold `expect` versions with one same
   fingerprint? Fills fp. */
static bool s_agree(s_node_t *nodes, const int *idx, int count, int64_t expect, char fp[64])
{
    s_st_t first, st;
    if (!s_st(&nodes[idx[0]], &first) || first.versions != expect || !first.fp[0])
        return false;
    for (int i = 1; i < count; i++)
        if (!s_st(&nodes[idx[i]], &st) || st.versions != expect || strcmp(st.fp, first.fp) != 0)
            return false;
    if (fp)
        snprintf(fp, 64, "%s", first.fp);
    return true;
}

static bool s_wait_agree(s_node_t *nodes, const int *idx, int count, int64_t expect,
                         int timeout_ms, char fp[64])
{
    for (int64_t end = mg_test_ms() + timeout_ms; mg_test_ms() < end; mg_test_sleep_ms(200))
        if (s_agree(nodes, idx, count, expect, fp))
            return true;
    bool ok = s_agree(nodes, idx, count, expect, fp);
    if (!ok) {
        fprintf(stderr, "no agreement on %lld versions:\n", (long long) expect);
        for (int i = 0; i < count; i++) {
            s_st_t st;
            s_st(&nodes[idx[i]], &st);
            fprintf(stderr, "  %s: %lld versions, %s\n", nodes[idx[i]].name,
                    (long long) st.versions, st.fp);
        }
    }
    return ok;
}

/* Writes a standard-json file of `count` lieux from `source`, named
   "Lieu SOURCE I" + suffix. */
static bool s_write_lieux(const char *path, const char *source, int count, const char *suffix)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fputs("[", f);
    for (int i = 0; i < count; i++)
        fprintf(f,
                "%s{\"id\": \"%s-%04d\", \"nom\": \"Lieu %s %d%s\", "
                "\"services\": \"Prendre en main un smartphone ou une tablette\", "
                "\"pivot\": \"00000000000000\", \"commune\": \"Cognac\", "
                "\"code_postal\": \"16100\", \"adresse\": \"%d rue de la Paix\", "
                "\"source\": \"%s\", \"date_maj\": \"2026-11-28\"}\n",
                i ? "," : "", source, i, source, i, suffix, i + 1, source);
    fputs("]\n", f);
    return fclose(f) == 0;
}

static bool s_import(const s_node_t *n, const char *source, int count, const char *suffix)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s%s.json", s_root, source, suffix);
    if (!s_write_lieux(path, source, count, suffix))
        return false;
    char *out = NULL;
    int rc = mg_test_sh(&out, "'%s' --dir '%s' import '%s'", MG_BINARY, n->dir, path);
    if (rc != 0)
        fprintf(stderr, "import on %s: %s\n", n->name, out);
    free(out);
    return rc == 0;
}

/* Offers of n whose nom starts with `prefix`; *updated gets how many of
   them end with " v2". */
static int s_offers_named(const s_node_t *n, const char *prefix, int *updated)
{
    json_t *list = mg_test_cli_json(n->dir, NULL, "offer list --json");
    int count = 0;
    *updated = 0;
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o) {
        const char *nom = json_string_value(json_object_get(o, "nom"));
        if (!nom || strncmp(nom, prefix, strlen(prefix)) != 0)
            continue;
        count++;
        size_t len = strlen(nom);
        *updated += len > 3 && strcmp(nom + len - 3, " v2") == 0;
    }
    json_decref(list);
    return list ? count : -1;
}

/* Does n hold a live link to a node of the other side? */
static bool s_linked_across(const s_node_t *n, s_node_t *other, int count)
{
    json_t *st = mg_test_cli_json(n->dir, NULL, "status --json");
    bool across = false;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(st, "peers"), i, p) {
        const char *key = json_string_value(json_object_get(p, "key"));
        const char *state = json_string_value(json_object_get(p, "state"));
        for (int k = 0; key && state && k < count; k++)
            across |= strcmp(key, other[k].key) == 0 && strcmp(state, "live") == 0;
    }
    json_decref(st);
    return across;
}

static bool s_intact(const s_node_t *n)
{
    char db[400];
    snprintf(db, sizeof db, "%s/maillage.db", n->dir);
    return mg_test_intact(db);
}

/* ------------------------------------------------------------------ */

static const int s_all[6] = {0, 1, 2, 3, 4, 5};
static const int s_side_a[3] = {0, 1, 2};
static const int s_side_b[3] = {3, 4, 5};

/* Writes of the split, on both sides; checks the sides stay apart and
   each converges on its own set. A: node 1 updates its 100 lieux, node
   2 imports 30. B: node 4 imports 40, node 5 adds 5 offers by hand. */
static void s_split_writes(s_node_t *n, int64_t base, int lieux)
{
    CHECK(s_import(&n[0], "n1", lieux, " v2"));
    CHECK(s_import(&n[1], "n2", 30, ""));
    CHECK(s_import(&n[3], "n4", 40, ""));
    for (int i = 0; i < 5; i++) {
        char *out = NULL;
        CHECK(mg_test_sh(&out, "'%s' --dir '%s' offer add --services 'Aide aux démarches "
                         "administratives' --nom 'Permanence n5 %d' --pivot 21160291600019 "
                         "--adresse '2 place du Marché' --commune Cognac --code-postal 16100",
                   MG_BINARY, n[4].dir, i) == 0);
        free(out);
    }
    char fa[64] = "", fb[64] = "";
    CHECK(s_wait_agree(n, s_side_a, 3, base + 30, 60000, fa));
    CHECK(s_wait_agree(n, s_side_b, 3, base + 40 + 5, 60000, fb));
    CHECK(strcmp(fa, fb) != 0);
    /* Side B still has node 1's old versions; A has the new ones. */
    int updated = 0;
    CHECK(s_offers_named(&n[5], "Lieu n1 ", &updated) == lieux);
    CHECK(updated == 0);
    CHECK(s_offers_named(&n[2], "Lieu n1 ", &updated) == lieux);
    CHECK(updated == lieux);
    CHECK(s_offers_named(&n[2], "Lieu n4 ", &updated) == 0);
    CHECK(s_offers_named(&n[5], "Lieu n2 ", &updated) == 0);
}

/* Has any node a live link to the other side (its peer table)? */
static bool s_any_across(s_node_t *n)
{
    bool across = false;
    for (int i = 0; i < 3; i++)
        across |= s_linked_across(&n[i], &n[3], 3) || s_linked_across(&n[3 + i], &n[0], 3);
    return across;
}

/* After the heal: everything everywhere, node 1's updates included. */
static void s_healed(s_node_t *n, int64_t expect, int lieux, int timeout_ms)
{
    int64_t t0 = mg_test_ms();
    char fp[64] = "";
    CHECK(s_wait_agree(n, s_all, 6, expect, timeout_ms, fp));
    printf("healed: six nodes agree on %lld versions (%s) after %lld ms\n", (long long) expect,
           fp, (long long) (mg_test_ms() - t0));
    for (int i = 0; i < 6; i++) {
        int updated = 0;
        CHECK(s_offers_named(&n[i], "Lieu n1 ", &updated) == lieux);
        CHECK(updated == lieux);
    }
}

static void test_split_restart(void)
{
    enum { LIEUX = 100 };
    s_node_t n[6];
    char name[8];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "n%d", i + 1);
        CHECK(s_node_init(&n[i], name, NULL, NULL));
        CHECK(s_node_start(&n[i]));
    }
    /* One ring through both sides: 1 > 2 > 3 > 4 > 5 > 6 > 1. */
    for (int i = 0; i < 6; i++)
        CHECK(s_peer_add(&n[i], &n[(i + 1) % 6]));
    CHECK(s_import(&n[0], "n1", LIEUX, ""));
    const int64_t base = 6 + LIEUX; /* profiles, node 1's lieux */
    CHECK(s_wait_agree(n, s_all, 6, base, 60000, NULL));

    /* Split: stop all; each side restarts on new ports knowing only its
       own side's new invitations. */
    char old[6][1024];
    for (int i = 0; i < 6; i++) {
        snprintf(old[i], sizeof old[i], "%s", n[i].invite);
        CHECK(s_clean_exit(s_node_stop(&n[i], SIGTERM)));
    }
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 6; k++)
            if ((i < 3) != (k < 3))
                s_peer_rm(&n[i], &n[k]);
    /* Each start takes a port never used before (s_fresh_port). */
    for (int side = 0; side < 2; side++) {
        s_node_t *first = &n[3 * side];
        for (int i = 0; i < 3; i++) {
            s_node_t *m = &n[3 * side + i];
            if (i > 0)
                CHECK(s_peer_add(m, first));
            CHECK(s_node_start(m));
            CHECK(strcmp(m->invite, old[3 * side + i]) != 0);
        }
    }
    CHECK(!s_any_across(n));
    s_split_writes(n, base, LIEUX);
    CHECK(!s_any_across(n));

    /* Heal: side A stops, learns side B's invitations, starts again. */
    for (int i = 0; i < 3; i++) {
        CHECK(s_clean_exit(s_node_stop(&n[i], SIGTERM)));
        CHECK(s_peer_add(&n[i], &n[3 + i]));
        CHECK(s_node_start(&n[i]));
    }
    s_healed(n, base + 30 + 40 + 5, LIEUX, 90000);
    for (int i = 0; i < 6; i++) {
        CHECK(s_clean_exit(s_node_stop(&n[i], SIGTERM)));
        CHECK(s_intact(&n[i]));
    }
}

/* ------------------------------------------------------------------ */
/* The same with network namespaces                                     */

static char s_ns_prefix[16];
static bool s_ns_made;

static int s_ip(const char *fmt, ...)
{
    char args[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char *out = NULL;
    int rc = mg_test_sh(&out, "ip %s", args);
    if (rc != 0)
        fprintf(stderr, "ip %s: %s", args, out);
    free(out);
    return rc;
}

static void s_ns_cleanup(void)
{
    if (!s_ns_made)
        return;
    mg_test_sh(NULL, "ip netns del %ssw", s_ns_prefix);
    for (int i = 1; i <= 6; i++)
        mg_test_sh(NULL, "ip netns del %sn%d", s_ns_prefix, i);
    s_ns_made = false;
}

/* Six node namespaces, each with one veth to a switch namespace holding
   bridge A (nodes 1-3) and bridge B (nodes 4-6), the bridges joined by
   the veth pair xa-xb. Only namespaces and links created here. */
static bool s_ns_setup(void)
{
    snprintf(s_ns_prefix, sizeof s_ns_prefix, "mgf%d", (int) getpid() % 100000);
    char sw[32];
    snprintf(sw, sizeof sw, "%ssw", s_ns_prefix);
    if (mg_test_sh(NULL, "ip netns add %s", sw) != 0)
        return false;
    s_ns_made = true;
    atexit(s_ns_cleanup);
    int rc = s_ip("-n %s link add brA type bridge", sw) | s_ip("-n %s link add brB type bridge", sw)
             | s_ip("-n %s link add xa type veth peer name xb", sw)
             | s_ip("-n %s link set xa master brA", sw) | s_ip("-n %s link set xb master brB", sw);
    const char *up[] = {"brA", "brB", "xa", "xb", "lo"};
    for (size_t i = 0; i < 5; i++)
        rc |= s_ip("-n %s link set %s up", sw, up[i]);
    for (int i = 1; i <= 6; i++) {
        rc |= s_ip("netns add %sn%d", s_ns_prefix, i);
        rc |= s_ip("-n %s link add v%d type veth peer name eth0 netns %sn%d", sw, i, s_ns_prefix,
                   i);
        rc |= s_ip("-n %s link set v%d master %s", sw, i, i <= 3 ? "brA" : "brB");
        rc |= s_ip("-n %s link set v%d up", sw, i);
        rc |= s_ip("-n %sn%d addr add 10.201.0.%d/24 dev eth0", s_ns_prefix, i, i);
        rc |= s_ip("-n %sn%d link set eth0 up", s_ns_prefix, i);
        rc |= s_ip("-n %sn%d link set lo up", s_ns_prefix, i);
    }
    return rc == 0;
}

static void test_split_netns(void)
{
    if (geteuid() != 0) {
        printf("skipped: network namespaces need root\n");
        return;
    }
    if (!s_ns_setup()) {
        printf("skipped: network namespaces need root (ip netns does not work here)\n");
        s_ns_cleanup();
        return;
    }
    enum { LIEUX = 60 };
    s_node_t n[6];
    char name[8], ns[32], listen[64];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "ns%d", i + 1);
        snprintf(ns, sizeof ns, "%sn%d", s_ns_prefix, i + 1);
        snprintf(listen, sizeof listen, "tcp://10.201.0.%d:7470", i + 1);
        CHECK(s_node_init(&n[i], name, ns, listen));
        CHECK(s_node_start(&n[i]));
    }
    for (int i = 0; i < 6; i++)
        CHECK(s_peer_add(&n[i], &n[(i + 1) % 6]));
    /* The file names "n1" so that s_split_writes finds node 1's lieux. */
    CHECK(s_import(&n[0], "n1", LIEUX, ""));
    const int64_t base = 6 + LIEUX;
    CHECK(s_wait_agree(n, s_all, 6, base, 60000, NULL));

    /* Cut the wire between the bridges; every process keeps running.
       The nodes notice when their links across fall silent (15 s). */
    CHECK(s_ip("-n %ssw link set xa down", s_ns_prefix) == 0);
    int64_t cut = mg_test_ms();
    bool noticed = false;
    for (int64_t end = mg_test_ms() + 90000; mg_test_ms() < end && !noticed; mg_test_sleep_ms(500))
        noticed = !s_any_across(n);
    CHECK(noticed);
    printf("split noticed after %lld ms\n", (long long) (mg_test_ms() - cut));
    s_split_writes(n, base, LIEUX);
    printf("network split for %lld ms\n", (long long) (mg_test_ms() - cut));
    CHECK(s_ip("-n %ssw link set xa up", s_ns_prefix) == 0);
    /* Links that died during the split back off up to a few tens of
       seconds before they are tried again. */
    s_healed(n, base + 30 + 40 + 5, LIEUX, 180000);
    for (int i = 0; i < 6; i++) {
        CHECK(s_clean_exit(s_node_stop(&n[i], SIGTERM)));
        CHECK(s_intact(&n[i]));
    }
    s_ns_cleanup();
}

/* ------------------------------------------------------------------ */
/* Every peer moved                                                     */

/* A node restarts after all its peers changed address (a new box, a
   new IP from the provider): it dials each old endpoint, none answers,
   and the links fail together after the HELLO timeout. It must go on
   running (and back off), and stop cleanly. */
static void test_peers_moved(void)
{
    s_node_t n;
    CHECK(s_node_init(&n, "moved", NULL, NULL));
    enum { PEERS = 4 };
    for (int i = 0; i < PEERS; i++) {
        /* A valid key, and a port that nothing listens on any more. */
        uint8_t pk[32], sk[64];
        crypto_sign_keypair(pk, sk);
        char hex[65];
        for (int b = 0; b < 32; b++)
            snprintf(hex + 2 * b, 3, "%02x", pk[b]);
        s_node_t ghost = {0};
        snprintf(ghost.name, sizeof ghost.name, "ghost%d", i);
        snprintf(ghost.invite, sizeof ghost.invite, "maillage:%s@tcp://127.0.0.1:%d", hex,
                 s_closed_port());
        CHECK(s_peer_add(&n, &ghost));
    }
    CHECK(s_node_start(&n));
    /* Wait until every old endpoint has failed at least once. */
    int backoff = 0;
    for (int64_t end = mg_test_ms() + 30000; mg_test_ms() < end && backoff < PEERS; mg_test_sleep_ms(200)) {
        json_t *st = mg_test_cli_json(n.dir, NULL, "status --json");
        backoff = 0;
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(st, "peers"), i, p)
            backoff += json_integer_value(json_object_get(p, "failures")) > 0;
        json_decref(st);
        int status;
        if (waitpid(n.pid, &status, WNOHANG) == n.pid) {
            fprintf(stderr, "the node died: %s %d\n", WIFSIGNALED(status) ? "signal" : "exit",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            n.pid = 0;
            break;
        }
    }
    CHECK(backoff == PEERS);
    CHECK(n.pid != 0);
    CHECK(s_clean_exit(s_node_stop(&n, SIGTERM)));
}

/* ------------------------------------------------------------------ */
/* Churn                                                                */

typedef struct {
    s_node_t *nodes;        /* the two restarting nodes */
    atomic_int stop;        /* set by the publisher when done */
    atomic_int restarts;
    int unclean;            /* SIGTERM stops that did not exit 0 */
    int failed_starts;
} s_churn_t;

static void *s_churn(void *arg)
{
    s_churn_t *c = arg;
    while (!atomic_load(&c->stop)) {
        for (int k = 0; k < 2 && !atomic_load(&c->stop); k++) {
            s_node_t *n = &c->nodes[k];
            /* Every third stop is a crash. */
            int sig = atomic_load(&c->restarts) % 3 == 2 ? SIGKILL : SIGTERM;
            int status = s_node_stop(n, sig);
            if (sig == SIGTERM && !s_clean_exit(status))
                c->unclean++;
            if (!s_node_start(n))
                c->failed_starts++;
            atomic_fetch_add(&c->restarts, 1);
            mg_test_sleep_ms(100 + (int) randombytes_uniform(500)); /* uptime */
        }
    }
    return NULL;
}

typedef struct {
    const s_node_t *node;   /* where this publisher writes */
    int first, count;       /* offers first .. first + count - 1 */
    char (*rids)[64];       /* the ids `offer add` gave them */
    int published;
    s_churn_t *churn;       /* paces the publisher */
} s_publisher_t;

/* One structure publishing offers one `maillage offer add` at a time.
   Every tenth offer it waits for one more restart of the churning
   nodes, so that the restarts are spread over the whole publication
   whatever the speed of either. */
static void *s_publish(void *arg)
{
    s_publisher_t *p = arg;
    for (int i = p->first; i < p->first + p->count; i++) {
        if ((i - p->first) % 10 == 0) {
            int target = (i - p->first) / 10;
            for (int64_t end = mg_test_ms() + 30000;
                 mg_test_ms() < end && atomic_load(&p->churn->restarts) < target;)
                mg_test_sleep_ms(10);
        }
        char *out = NULL;
        int rc = mg_test_sh(&out, "'%s' --dir '%s' offer add --services 'Aide aux démarches "
                            "administratives' --nom 'Offre %d' --pivot 21160291600019 "
                            "--adresse '3 rue Haute' --commune Jarnac --code-postal 16200",
                      MG_BINARY, p->node->dir, i);
        if (rc == 0 && sscanf(out, "Offre ajoutée : %63s", p->rids[p->published]) == 1)
            p->published++;
        else
            fprintf(stderr, "offer add %d on %s: exit %d: %s", i, p->node->name, rc, out);
        free(out);
    }
    return NULL;
}

static void test_churn(void)
{
    /* 200, or fewer (an even number, at least 40) under MG_FAULT_SCALE. */
    int total = 200 * s_scale / 100 / 2 * 2;
    if (total < 40)
        total = 40;
    s_node_t n[4]; /* 0, 1 publish; 2, 3 restart */
    const char *names[4] = {"pub1", "pub2", "churn1", "churn2"};
    for (int i = 0; i < 4; i++)
        CHECK(s_node_init(&n[i], names[i], NULL, NULL));
    CHECK(s_node_start(&n[0]));
    CHECK(s_peer_add(&n[1], &n[0]));
    CHECK(s_node_start(&n[1]));
    for (int i = 2; i < 4; i++) {
        CHECK(s_peer_add(&n[i], &n[0]));
        CHECK(s_peer_add(&n[i], &n[1]));
        CHECK(s_node_start(&n[i]));
    }
    const int all4[4] = {0, 1, 2, 3};
    CHECK(s_wait_agree(n, all4, 4, 4, 30000, NULL));

    /* Two publishers at once, while the other two nodes restart. */
    s_churn_t churn = {.nodes = &n[2]};
    pthread_t churner, pub_threads[2];
    char (*rids)[64] = calloc(total, sizeof *rids);
    s_publisher_t pubs[2];
    int64_t t0 = mg_test_ms();
    CHECK(pthread_create(&churner, NULL, s_churn, &churn) == 0);
    for (int k = 0; k < 2; k++) {
        pubs[k] = (s_publisher_t) {&n[k], k * total / 2, total / 2,
                                   rids + k * total / 2, 0, &churn};
        CHECK(pthread_create(&pub_threads[k], NULL, s_publish, &pubs[k]) == 0);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(pub_threads[k], NULL);
    atomic_store(&churn.stop, 1);
    pthread_join(churner, NULL);
    int published = pubs[0].published + pubs[1].published;
    printf("churn: %d offers published in %lld ms while 2 nodes restarted %d times "
           "(every third a SIGKILL)\n",
           published, (long long) (mg_test_ms() - t0), atomic_load(&churn.restarts));
    CHECK(published == total);
    CHECK(atomic_load(&churn.restarts) >= total / 2 / 10 - 1);
    CHECK(churn.unclean == 0);
    CHECK(churn.failed_starts == 0);

    /* Everything everywhere: counts, fingerprints, and each offer by id. */
    t0 = mg_test_ms();
    CHECK(s_wait_agree(n, all4, 4, 4 + total, 60000, NULL));
    printf("churn: converged %lld ms after the last offer\n", (long long) (mg_test_ms() - t0));
    for (int i = 0; i < 4; i++) {
        json_t *list = mg_test_cli_json(n[i].dir, NULL, "offer list --json");
        int found = 0;
        for (int k = 0; k < 2; k++) {
            for (int r = 0; r < pubs[k].published; r++) {
                size_t j;
                json_t *o;
                json_array_foreach(list, j, o) {
                    const char *id = json_string_value(json_object_get(o, "id"));
                    if (id && strcmp(id, pubs[k].rids[r]) == 0) {
                        found++;
                        break;
                    }
                }
            }
        }
        printf("  %s: %d of %d offers\n", n[i].name, found, published);
        CHECK(found == published);
        json_decref(list);
    }
    free(rids);
    for (int i = 0; i < 4; i++) {
        CHECK(s_clean_exit(s_node_stop(&n[i], SIGTERM)));
        CHECK(s_intact(&n[i]));
    }
}

int main(void)
{
    const char *scale = getenv("MG_FAULT_SCALE");
    if (scale && atoi(scale) > 0 && atoi(scale) <= 100)
        s_scale = atoi(scale);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("MG_FAULT_SCALE=%d%%\n", s_scale);
    if (sodium_init() < 0)
        return 1;
    snprintf(s_root, sizeof s_root, "/tmp/mg-test-partition-XXXXXX");
    if (!mkdtemp(s_root))
        return 1;
    const mg_test_case_t tests[] = {
        {"split 3 | 3 by restarts, heal", test_split_restart},
        {"split 3 | 3 in network namespaces, heal", test_split_netns},
        {"every peer moved", test_peers_moved},
        {"churn", test_churn},
    };
    mg_test_run_cases(tests, sizeof tests / sizeof tests[0]);
    int rc = mg_test_done("test_partition");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_root);
    if (rc == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_root);
    return rc;
}
