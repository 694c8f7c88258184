/*
 * server/upstream: the I/O side of forwarding inside one worker's ring. The
 * sans-IO forwarder (engine/forward.h) decides what to send and what to
 * answer; this module moves the bytes: one fresh UDP socket per try,
 * connected to the server it asks (a kernel-random source port per query;
 * the kernel drops datagrams from any other address or port), read by a
 * multishot recv on a provided-buffer group of their own and closed through
 * the ring when the forwarder releases the try; a small pool of one-shot
 * TCP connections for TC retries (connect, send, read one length-prefixed
 * answer, close); and a 50 ms tick while questions are in flight.
 *
 * File descriptors: up to FORWARD_MAX_INFLIGHT UDP sockets plus UPSTREAM_TCP
 * per worker when the forwarder is full (4096 + 64; plus one per tls:// server, dot.h), so
 * RLIMIT_NOFILE must be at least workers * 4160 plus the listeners, clients and the store. When
 * socket() fails (EMFILE) the try counts as an upstream error and times out; nothing else breaks.
 *
 * Threads: everything belongs to the worker thread, except upstream_offer()
 * which main calls on reload (the `next` field), and upstream_report() which
 * the API's threads call (the `pub` copies, written by upstream_publish with
 * relaxed atomic stores; a forwarder replaced by a reload starts its
 * per-server counters from 0, so /metrics shows a counter reset).
 * Invariants: nothing is allocated after upstream_init(); a TCP slot is
 * reused only after its SQE completed, a UDP slot's packet buffer only
 * after its send completed; a UDP slot's socket is open exactly while the
 * forwarder's try in that slot is sent and not released; user_data of a
 * UDP slot's ops carries the slot's generation (bumped at every close), so
 * completions of a closed socket never reach the slot's next socket; the
 * forwarder's queues are empty whenever control returns to the ring loop.
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
#include "engine/forward.h"
#include "server/uring.h"

struct worker;
struct io_uring_cqe;

#define UPSTREAM_TCP 64	       /* TCP retries at once; more wait for the try timeout */
#define UPSTREAM_NBUFS 256     /* receive buffers for upstream answers */
#define UPSTREAM_BUFSIZE 4352  /* > edns-bufsize max (4096): a full buffer may be cut, dropped */
#define UPSTREAM_TCP_MSG 65535 /* largest answer over TCP */
#define UPSTREAM_TICK_MS 50    /* timeout resolution while questions are in flight */
#define UPSTREAM_NSTATS (STATS_CACHE_EVICTIONS - STATS_FWD_FORWARDED + 1)

/* Servers whose counters a worker publishes for /metrics (the first ones listed). */
#define UPSTREAM_PUB_MAX 64
/* Published per server: queries, timeouts, errors, probes, rcode[16], rtt[], rtt_sum_ms,
 * srtt_ms, healthy (upstream_report_t's order). */
#define UPSTREAM_PUB_NV (4 + 16 + FORWARD_RTT_BUCKETS + 3)

/* One server's counters, summed over the workers (server_upstreams). */
typedef struct upstream_report {
	char addr[64]; /* "ip:port" or "[ip6]:port" */
	uint64_t queries, timeouts, errors, probes;
	uint64_t rcode[16];
	uint64_t rtt[FORWARD_RTT_BUCKETS]; /* not cumulative */
	uint64_t rtt_sum_ms;
	uint64_t srtt_ms;  /* the highest of the workers' */
	uint64_t healthy;  /* workers that count it healthy */
	unsigned nworkers; /* workers that use it */
} upstream_report_t;

/* A worker's copy for other threads: words written with relaxed atomic stores. */
typedef struct {
	uint64_t addr[8]; /* the text, NUL-padded */
	uint64_t v[UPSTREAM_PUB_NV];
} upstream_pub_t;

/* The UDP socket of one forwarder try slot. */
typedef struct {
	int fd;		/* -1 when closed */
	uint16_t gen;	/* bumped at every close: in user_data */
	bool armed;	/* a recv is pending on fd (cancelled at close) */
	bool send_busy; /* pkt is being sent (the op may outlive the socket) */
	conf_addr_t to; /* the server it is connected to */
	uint8_t pkt[FORWARD_QUERY_MAX];
} upstream_udp_t;

typedef struct {
	int fd;		 /* -1 when free */
	uint8_t state;	 /* connecting, sending, reading */
	bool cancelling; /* a cancel SQE was queued for its pending op */
	uint16_t gen;	 /* bumped per use: in user_data, so a late cancel misses a reused slot */
	uint32_t wlen, woff, rlen;
	uint32_t slot; /* the forwarder's try slot */
	uint64_t deadline;
	conf_addr_t to;
	uint8_t wbuf[2 + FORWARD_QUERY_MAX];
	uint8_t *rbuf; /* 2 + UPSTREAM_TCP_MSG bytes in the pool's mapping */
} upstream_tcp_t;

typedef struct {
	forward_t *fwd; /* owned; NULL when forwarding is off */
	uring_bufs_t bufs;
	bool bufs_ok;
	bool emfile_logged; /* the "raise RLIMIT_NOFILE" warning is given once */

	upstream_udp_t *udp; /* owned, FORWARD_MAX_INFLIGHT: one per try slot */
	upstream_tcp_t *tcp; /* owned, UPSTREAM_TCP */
	uint32_t *tcp_free;
	unsigned ntcp_free;
	uint8_t *tcp_mem; /* owned mapping for every rbuf */
	uint8_t *reply;	  /* owned, UPSTREAM_TCP_MSG: client replies are built here */

	struct dot *dot; /* owned, DoT connections (dot.h); NULL until a DoT query */

	struct __kernel_timespec tick;
	bool tick_armed;
	bool dirty;			/* counters changed since the last upstream_publish */
	uint64_t base[UPSTREAM_NSTATS]; /* counters of forwarders replaced by reloads */
	uint64_t stale_base;		/* the same for STATS_CACHE_STALE */
	uint64_t prefetch_base;		/* and STATS_CACHE_PREFETCH */

	_Atomic(forward_t *) next; /* shared: offered by main, taken by the worker */

	/* Per-server copies for the API: odd pub_seq while the list changes (reload). */
	upstream_pub_t *pub; /* owned, UPSTREAM_PUB_MAX */
	_Atomic uint32_t pub_seq;
	_Atomic uint32_t npub;
	bool pub_stale; /* worker: the forwarder changed, publish_addrs before the counters */
} upstream_t;

/**
 * Preallocate (main thread).
 * @param fwd steals: freed by upstream_deinit even when this fails; may be NULL.
 * @return 0 or -ENOMEM.
 */
int upstream_init(upstream_t *u, forward_t *fwd);

/** Close sockets, free memory and forwarders. Safe on a zeroed or half-built upstream_t. */
void upstream_deinit(upstream_t *u);

/** Worker thread, after the ring exists: the receive buffer group. @return 0 or -errno. */
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

/** The worker's eventfd fired: another worker may have ended questions we wait for. */
void upstream_wake(struct worker *w);

/** A completion of type UD_UPSTREAM, UD_UP_SEND, UD_UP_TCP or UD_FWD_TICK. */
void upstream_on_cqe(struct worker *w, const struct io_uring_cqe *cqe);

/** Give up TCP retries past their deadline (from any periodic tick). */
void upstream_sweep(struct worker *w);

/** Copy the forwarder's counters into the worker's stats (end of a batch, when dirty). */
void upstream_publish(struct worker *w);

/**
 * Add this worker's per-server counters to out[0..*n) (any thread): a server
 * already in out (same address) is summed, a new one appended while *n < cap.
 * A copy read while a reload changes the list is skipped (next scrape).
 */
void upstream_report(const upstream_t *u, upstream_report_t *out, size_t *n, size_t cap);
