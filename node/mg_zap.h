/*  mg_zap.h - the process-wide ZAP handler (RFC 27).

    libzmq asks one handler per process (inproc://zeromq.zap.01) to
    authenticate every CURVE client. This one accepts every client that
    completed the CURVE handshake and returns its CURVE public key, in hex,
    as the connection's User-Id: the engine compares it with the key the
    client claims in its HELLO, so an inbound peer's identity is proven.
    Several engines in one process (tests, benchmarks) share the handler:
    it is reference-counted. */
#ifndef MG_ZAP_H
#define MG_ZAP_H

#include <stddef.h>
#include <stdint.h>

/* Starts the handler if not running; returns 0 or -1. */
int mg_zap_acquire(void);

/* Stops it when the last user releases it. */
void mg_zap_release(void);

/* Refuses new connections from the client whose CURVE public key is
   `curve_hex` (64 hex digits, as given in User-Id) until `until_ms`
   (zclock_time). A peer that keeps sending garbage is banned this way:
   libzmq cannot close one peer of a ROUTER, but it can refuse its next
   handshakes, and the engine ignores its current connection meanwhile. */
void mg_zap_ban(const char *curve_hex, int64_t until_ms);

/* Federation: from now on, connections to sockets of ZAP domain `domain`
   are accepted only from the listed CURVE public keys (hex). count = 0
   removes the list (anyone with CURVE). The engine sets one domain per
   node, so nodes sharing a process keep their own lists. Returns 0 or
   -1 (out of memory / too many domains). */
int mg_zap_allow(const char *domain, const char (*curve_hex)[65], size_t count);

#endif
