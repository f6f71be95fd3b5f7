/*  mg_node.h - the maillage node daemon: an engine actor that owns the
    sockets, the peers and the gossip rounds (docs/architecture.md).

    The engine runs in its own thread (a czmq zactor) with one reactor
    (zloop). It shares nothing with the rest of the process but its pipe
    and the SQLite file: the CLI in another process writes records into
    the store, the engine notices them through the store's change feed.
*/
#ifndef MG_NODE_H
#define MG_NODE_H

#include <czmq.h>
#include <stdbool.h>

#include "mg_record.h"

#define MG_NODE_LISTEN_MAX 8
#define MG_NODE_PEERS_MAX 64
#define MG_NODE_ALLOW_MAX 1024  /* keys in a federation allow-list */
#define MG_NODE_TRUST_MAX 8     /* trusted coordinators */

typedef struct {
    const char *db_path;          /* the node's SQLite store */
    mg_identity_t identity;       /* copied; wiped by the engine at exit */
    const char *listen[MG_NODE_LISTEN_MAX];   /* endpoints to bind (tcp://host:port, port may be *) */
    size_t listen_count;
    const char *advertise[MG_NODE_LISTEN_MAX];/* endpoints to publish; default: bound, non-wildcard ones */
    size_t advertise_count;
    int interval_ms;              /* gossip round interval; default 1000 */
    int max_links;                /* outgoing links kept open; default 8 */
    bool no_push;                 /* disable eager push (anti-entropy only) */
    bool discover;                /* LAN discovery with zbeacon */
    int beacon_port;              /* UDP port for zbeacon; default 7677 */
    bool verbose;                 /* log every message */
    bool quiet;                   /* no informational logs */
    /* Federation (docs/security.md). allow: when allow_count > 0, links
       (in and out) only with these keys; refused at the CURVE handshake
       by ZAP. trust: when trust_count > 0, offers, events, replies, notes
       and unknown kinds are stored (and so relayed) only from authors a
       trusted coordinator endorses, and from the coordinators. */
    uint8_t allow[MG_NODE_ALLOW_MAX][MG_KEY_BYTES];
    size_t allow_count;
    uint8_t trust[MG_NODE_TRUST_MAX][MG_KEY_BYTES];
    size_t trust_count;
} mg_node_config_t;

/* Starts a node engine. Returns NULL (and logs why) if the store cannot be
   opened or an endpoint cannot be bound. The caller destroys the actor
   with zactor_destroy, which stops the engine cleanly ($TERM).

   Pipe commands (strings), each answered on the pipe:
     "ENDPOINTS"  -> one string: bound endpoints (actual ports), space-separated
     "STATS"      -> frames: records, fingerprint hex, live links,
                     rounds, bytes_out, bytes_in, records_in, records_out
*/
zactor_t *mg_node_new(const mg_node_config_t *config);

/* Parses an invite line "maillage:KEYHEX@ENDPOINT[,ENDPOINT...]" (see
   docs/protocol.md). Fills key and up to `max` endpoints (each of
   MG_ENDPOINT_MAX+1 bytes); returns the number of endpoints, or a
   negative code with `why`. */
int mg_invite_parse(const char *invite, uint8_t key[MG_KEY_BYTES],
                    char endpoints[][256], int max, mg_why_t *why);

/* Formats an invite line; returns MG_OK or MG_ERR_ARG. */
int mg_invite_format(const uint8_t key[MG_KEY_BYTES],
                     const char *const *endpoints, size_t count, char *out,
                     size_t size);

#endif
