/*
 * server/tcp: DNS over TCP (RFC 7766) inside a worker's ring: multishot
 * accept, a preallocated pool of connections (conf tcp-max-connections per
 * worker; beyond it new connections are closed at once), 2-byte length
 * framing with reassembly across reads, pipelined queries answered in
 * order, one outstanding send per connection (no reads while it is
 * pending, so a slow reader only stalls itself), idle timeout swept by the
 * worker's timer tick.
 *
 * Threads: called only by the worker thread that owns the pool.
 * A connection slot is reused only once its fd is closed and no SQE of it
 * is in flight.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/query.h"

struct worker;
struct io_uring_cqe;

#define TCP_RBUF 8192	     /* buffered request bytes per connection */
#define TCP_WBUF (2 + 65535) /* length prefix + largest DNS message */

typedef struct {
	int fd; /* -1 when closed */
	bool recv_pending;
	bool send_pending;
	bool in_use;
	bool fwd_wait; /* its send is reserved for a forwarded answer */
	uint32_t gen;  /* bumped per accept: tells a forwarder reply for an old connection */
	uint32_t rlen; /* bytes in rbuf */
	uint32_t wlen; /* bytes of wbuf to send */
	uint32_t woff; /* bytes of wbuf sent */
	uint64_t last_ms;
	uint8_t *rbuf; /* TCP_RBUF bytes, in the pool's mapping */
	uint8_t *wbuf; /* TCP_WBUF bytes */
	query_client_t cl;
} tcp_conn_t;

typedef struct {
	tcp_conn_t *conns; /* owned, n entries */
	unsigned n;
	uint32_t *free; /* stack of free indexes */
	unsigned nfree;
	uint8_t *mem; /* owned mapping for every buffer */
	size_t membytes;
	/* Accept failed for want of fds: the connection is still queued, so re-arming at once
	 * would fail again at once (a 100 % CPU spin). The timer tick re-arms instead. */
	bool accept_paused;
} tcp_pool_t;

/** Allocate n connections (n may be 0: TCP refuses everything). @return 0 or -errno. */
int tcp_pool_init(tcp_pool_t *p, unsigned n);
/** Close open connections and free. Safe on a zeroed pool. */
void tcp_pool_deinit(tcp_pool_t *p);

/** Queue the multishot accept on the worker's listener. */
void tcp_arm_accept(struct worker *w);
void tcp_on_accept(struct worker *w, const struct io_uring_cqe *cqe);
void tcp_on_recv(struct worker *w, const struct io_uring_cqe *cqe);
void tcp_on_send(struct worker *w, const struct io_uring_cqe *cqe);
/**
 * Timer tick: close connections idle for longer than the conf's tcp-idle-timeout, and
 * re-arm an accept paused by fd exhaustion (EMFILE/ENFILE).
 */
void tcp_sweep(struct worker *w);
/** Send `len` bytes of response already written at wbuf + 2 on connection idx. */
void tcp_reply(struct worker *w, uint32_t idx, size_t len);

/** The forwarder's handle for connection idx: index and generation. */
uint64_t tcp_cookie(struct worker *w, uint32_t idx);
/** The query of connection idx went upstream: its reserved send waits for the answer. */
void tcp_forward_wait(struct worker *w, uint32_t idx);
/**
 * A forwarded answer for the connection `cookie` names: sent if it is still the same
 * connection (a closed one is freed now), dropped otherwise.
 */
void tcp_forward_reply(struct worker *w, uint64_t cookie, const uint8_t *buf, size_t len);
/** The forwarder was replaced: close every connection waiting for it. */
void tcp_forward_abandon(struct worker *w);
