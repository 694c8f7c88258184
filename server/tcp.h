/*
 * server/tcp: DNS over TCP (RFC 7766) inside a worker's ring: multishot
 * accept, a preallocated pool of connections (conf tcp-max-connections per
 * worker), 2-byte length framing with reassembly across reads, pipelined
 * queries answered in order, one outstanding send per connection (no reads
 * while it is pending, so a slow reader only stalls itself). Every whole query
 * a read brought is answered before that send, and the replies leave in it
 * together (issue 16: one send per query, each waiting for the last one's
 * completion, left a pipelining client's queries waiting a ring round trip each
 * and its small segments behind Nagle), as long as wbuf has room for one more
 * reply of the largest size; a query sent upstream ends the run, and its
 * answer joins the replies before it when it comes.
 *
 * Fairness (issue 10 item 5), so that no client holds the pool:
 *  - a message whose first byte arrived must be complete within
 *    tcp-message-timeout; later bytes do not extend it (slow-loris). The
 *    clock restarts only when a reply of ours went out, i.e. after the
 *    client finished a message;
 *  - tcp-max-per-client counts connections per client /24 (IPv6 /56), like
 *    engine/rrl.c;
 *  - with the pool full, a new connection replaces the one quiet the longest
 *    (idle since its last query, RFC 7766 §6.2.3, or stuck in a partial
 *    message since its first byte) instead of being refused; only when every
 *    connection has a reply in flight is it refused.
 * The timeouts are swept by the worker's timer tick.
 *
 * Threads: called only by the worker thread that owns the pool.
 * A connection slot is reused only once its fd is closed and no SQE of it
 * is in flight: an accepted fd that must wait for an evicted slot to drain
 * sits in a short queue (TCP_WAITQ) and takes the first slot freed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/query.h"
#include "engine/xfr.h"

struct worker;
struct io_uring_cqe;

#define TCP_RBUF 8192		    /* buffered request bytes per connection */
#define TCP_MSG_ROOM (2 + 65535)    /* length prefix + largest DNS message */
#define TCP_WBUF (2 * TCP_MSG_ROOM) /* replies of one run; the last one may be the largest */
#define TCP_WAITQ 64		    /* accepted fds waiting for an evicted slot to drain */
#define TCP_XFR_MAX 4		    /* zone transfers in progress per worker; more are REFUSED */

typedef struct {
	int fd; /* -1 when closed */
	bool recv_pending;
	bool send_pending; /* a send SQE is in flight */
	bool in_use;
	bool fwd_wait;	  /* a forwarded answer is owed: no query is answered before it */
	bool in_run;	  /* answering buffered queries: replies wait for the run's end */
	uint32_t gen;	  /* bumped per accept: tells a forwarder reply for an old connection */
	uint32_t rlen;	  /* bytes in rbuf */
	uint32_t wlen;	  /* bytes of wbuf to send (framed replies) */
	uint32_t woff;	  /* bytes of wbuf sent; both 0 once all went */
	uint64_t last_ms; /* last query byte in, or last whole reply out */
	uint64_t msg_ms;  /* when the incomplete message at rbuf's head began; 0 = none */
	uint8_t *rbuf;	  /* TCP_RBUF bytes, in the pool's mapping */
	uint8_t *wbuf;	  /* TCP_WBUF bytes */
	int xfr;	  /* index of its zone transfer in the pool's xfr[], -1 = none */
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
	int wait_fd[TCP_WAITQ]; /* owned; accepted, each matched to an evicted slot */
	query_client_t wait_cl[TCP_WAITQ];
	unsigned nwait;
	/* Zone transfers: each sends its next message when the previous one is out, so
	 * between two messages the worker serves everything else (engine/xfr.h). */
	xfr_t xfr[TCP_XFR_MAX];
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
 * Timer tick: close connections idle for longer than the conf's tcp-idle-timeout or with a
 * message unfinished after tcp-message-timeout, and re-arm an accept paused by fd
 * exhaustion (EMFILE/ENFILE).
 */
void tcp_sweep(struct worker *w);
/** Send the `len`-byte reply already written at tcp_reply_buf() on connection idx (with
 * the others of its run); len 0 closes the connection. */
void tcp_reply(struct worker *w, uint32_t idx, size_t len);
/** Where the next reply of connection idx goes (after those not sent yet), and its room. */
uint8_t *tcp_reply_buf(struct worker *w, uint32_t idx, size_t *cap);

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
