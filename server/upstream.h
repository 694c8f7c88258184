/*
 * server/upstream: the I/O side of forwarding inside one worker's ring. The
 * sans-IO forwarder (server/forward.h) decides what to send and what to
 * answer; this module moves the bytes: FORWARD_SOCKETS unconnected UDP
 * sockets per address family bound to random ports (multishot recvmsg on a
 * provided-buffer group of their own), a pool of UDP send slots, a small
 * pool of one-shot TCP connections for TC retries (connect, send, read one
 * length-prefixed answer, close), and a 50 ms tick while questions are in
 * flight.
 *
 * Threads: everything belongs to the worker thread, except upstream_offer()
 * which main calls on reload (the `next` field is the only shared state).
 * Invariants: nothing is allocated after upstream_init(); a TCP slot or a
 * send slot is reused only after its SQE completed; the forwarder's reply
 * queue is empty whenever control returns to the ring loop.
 *
 * Reload (SIGHUP): when the forwarding settings are unchanged
 * (forward_conf_same) the running forwarder stays, with its cache and its
 * questions in flight. Otherwise main builds a new forwarder per worker and
 * offers it; the worker swaps at its next batch: the old cache and the
 * questions in flight are dropped, UDP clients waiting for them get no
 * answer (they retry), TCP clients waiting for them are disconnected.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/stats.h"
#include "server/forward.h"
#include "server/uring.h"

struct worker;
struct io_uring_cqe;

#define UPSTREAM_SENDS 4096    /* UDP upstream queries being sent at once */
#define UPSTREAM_TCP 64	       /* TCP retries at once; more wait for the try timeout */
#define UPSTREAM_NBUFS 256     /* receive buffers for upstream answers */
#define UPSTREAM_BUFSIZE 4352  /* edns-bufsize max (4096) + recvmsg header + address */
#define UPSTREAM_TCP_MSG 65535 /* largest answer over TCP */
#define UPSTREAM_TICK_MS 50    /* timeout resolution while questions are in flight */
#define UPSTREAM_NSTATS (STATS_CACHE_EVICTIONS - STATS_FWD_FORWARDED + 1)

typedef struct {
	struct sockaddr_storage addr;
	struct iovec iov;
	struct msghdr msg;
	uint8_t pkt[FORWARD_QUERY_MAX];
} upstream_send_t;

typedef struct {
	int fd;		 /* -1 when free */
	uint8_t state;	 /* connecting, sending, reading */
	bool cancelling; /* a cancel SQE was queued for its pending op */
	uint16_t gen;	 /* bumped per use: in user_data, so a late cancel misses a reused slot */
	uint32_t wlen, woff, rlen;
	uint64_t deadline;
	conf_addr_t to;
	uint8_t wbuf[2 + FORWARD_QUERY_MAX];
	uint8_t *rbuf; /* 2 + UPSTREAM_TCP_MSG bytes in the pool's mapping */
} upstream_tcp_t;

typedef struct {
	forward_t *fwd; /* owned; NULL when forwarding is off */
	int fds[2][FORWARD_SOCKETS];
	bool fam_open[2]; /* fds[fam] are open (AF_INET, AF_INET6) */
	uring_bufs_t bufs;
	bool bufs_ok;

	upstream_send_t *sends; /* owned, UPSTREAM_SENDS */
	uint32_t *send_free;
	unsigned nsend_free;
	upstream_tcp_t *tcp; /* owned, UPSTREAM_TCP */
	uint32_t *tcp_free;
	unsigned ntcp_free;
	uint8_t *tcp_mem; /* owned mapping for every rbuf */
	uint8_t *reply;	  /* owned, UPSTREAM_TCP_MSG: client replies are built here */

	struct __kernel_timespec tick;
	bool tick_armed;
	bool dirty;			/* counters changed since the last upstream_publish */
	uint64_t base[UPSTREAM_NSTATS]; /* counters of forwarders replaced by reloads */

	_Atomic(forward_t *) next; /* shared: offered by main, taken by the worker */
} upstream_t;

/**
 * Preallocate (main thread).
 * @param fwd steals: freed by upstream_deinit even when this fails; may be NULL.
 * @return 0 or -ENOMEM.
 */
int upstream_init(upstream_t *u, forward_t *fwd);

/** Close sockets, free memory and forwarders. Safe on a zeroed or half-built upstream_t. */
void upstream_deinit(upstream_t *u);

/** Worker thread, after the ring exists: buffer group, sockets, receives. @return 0 or -errno. */
int upstream_setup(struct worker *w);

/** Unregister the buffer group (before the ring is destroyed). */
void upstream_teardown(struct worker *w);

/**
 * Offer a new forwarder to the worker (main thread, on reload).
 * @param fwd steals; NULL turns forwarding off.
 */
void upstream_offer(upstream_t *u, forward_t *fwd);

/** Worker: take an offered forwarder, if any (after a conf change). */
void upstream_reload(struct worker *w);

/** Move the forwarder's queued packets and replies; arm the tick. After every forwarder call. */
void upstream_drain(struct worker *w);

/** A completion of type UD_UPSTREAM, UD_UP_SEND, UD_UP_TCP or UD_FWD_TICK. */
void upstream_on_cqe(struct worker *w, const struct io_uring_cqe *cqe);

/** Give up TCP retries past their deadline (from any periodic tick). */
void upstream_sweep(struct worker *w);

/** Copy the forwarder's counters into the worker's stats (end of a batch, when dirty). */
void upstream_publish(struct worker *w);
