/*
 * server/worker: one DNS worker thread. It owns an io_uring, a UDP socket
 * and a TCP listener (SO_REUSEPORT siblings of the other workers'), a store
 * read txn, batch buffers for UDP (server/udp.h: readiness poll, then
 * recvmmsg/sendmmsg), a pool of UDP response slots (forwarded answers) and a
 * pool of TCP connections, all allocated before serving starts.
 *
 * Threads: everything in worker_t belongs to the worker thread, except the
 * fields marked "shared", which main() touches through server.c only.
 * Invariants: the worker never blocks except in io_uring_submit_and_wait,
 * never mallocs after worker_init, and holds a read snapshot only while
 * it processes a batch of completions.
 *
 * Forwarding (engine/forward.h, a sans-IO module; server/upstream.h moves
 * its bytes): worker_forward() hands a QUERY_FORWARD query to the
 * forwarder; a cache hit or an immediate failure is sent at once from the
 * query's own reply buffer. Otherwise a UDP query's slot is released (a slow
 * upstream must not starve local answers of slots) and a TCP connection
 * keeps its one send reserved; the answer comes back later through
 * worker_forward_reply() with the client's address (UDP, a fresh slot) or
 * the connection's index + generation (TCP).
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "engine/query.h"
#include "server/tcp.h"
#include "server/uring.h"
#include "server/upstream.h"
#include "common/log.h"

struct conf;
struct store;
struct store_rtxn;
struct rrl;

#define WORKER_NBUFS 1024    /* UDP response slots (forwarded answers) */
#define WORKER_BUFSIZE 2048  /* one UDP receive buffer (larger queries are dropped) */
#define WORKER_UDP_RESP 4096 /* largest UDP response (edns-bufsize max) */
#define WORKER_RING 4096     /* SQ entries */

enum { WORKER_REARM_UDP = 1 << 0, WORKER_REARM_EFD = 1 << 1, WORKER_REARM_TIMER = 1 << 2 };

/* A UDP response in flight: buffer, address and msghdr stay put until the send completes. */
typedef struct {
	struct sockaddr_storage addr;
	struct iovec iov;
	struct msghdr msg;
	uint8_t buf[WORKER_UDP_RESP];
} udp_slot_t;

/* Where a reply goes: a UDP response slot or a TCP connection. */
typedef struct {
	bool tcp;
	uint32_t idx;
} worker_reply_to_t;

enum { WORKER_CTL_SHOW = 1, WORKER_CTL_FLUSH, WORKER_CTL_TTL };
#define WORKER_CTL_MAX 32 /* cached answers of one name a SHOW reports per worker */

typedef struct worker {
	unsigned idx;
	int udp_fd; /* owned */
	int tcp_fd; /* owned; -1 when TCP is off */
	int efd;    /* owned; wakes the ring (reload, stop) */
	struct io_uring ring;
	bool ring_ok;
	bool send_to;	       /* IORING_OP_SEND takes a destination address (kernel >= 6.0) */
	struct udp_batch *udp; /* owned; the UDP query path's buffers (server/udp.h) */

	udp_slot_t *slots; /* owned, WORKER_NBUFS */
	uint32_t *slot_free;
	unsigned nfree;

	tcp_pool_t tcp;
	upstream_t up; /* forwarding I/O and the forwarder */

	const struct conf *conf; /* the conf the worker uses now */
	size_t lookup_cache;	 /* this worker's share of [Store] lookup-cache */
	struct store *store;
	struct store_rtxn *rtx;
	bool txn_live;
	query_ctx_t qctx;
	struct rrl *rrl;	    /* owned; UDP response rate limiting (engine/rrl.h) */
	struct querylog_ring *qlog; /* borrowed from server_t; NULL: query log off */

	unsigned rearm; /* WORKER_REARM_*: arms that found the SQ full, retried after the batch */
	uint64_t efd_val;
	struct __kernel_timespec tick;
	uint64_t now_ms; /* CLOCK_MONOTONIC at the start of the batch */
	log_ratelimit_t rl;

	pthread_t thread;
	/* shared with server.c */
	_Atomic(const struct conf *) conf_next;
	/* The CA store of conf_next's tls:// servers (server/dot.h), stored before gen_want;
	 * borrowed: server.c frees it after every worker acknowledged a later conf. */
	_Atomic(const struct dot_cred *) dot_cred;
	_Atomic uint64_t gen_want;
	_Atomic uint64_t gen_ack;
	_Atomic bool stop;
	/* Takeover (main sets it, then wakes the worker): stop taking new queries from udp_fd and
	 * tcp_fd, which another process now serves too, and finish what is in flight. */
	_Atomic bool release;
	bool released; /* worker only: the poll and the accept were cancelled */
	/* While released: open TCP connections + forwarded questions waiting upstream, published
	 * per batch; main stops the worker once every worker reports 0. UINT_MAX until known. */
	_Atomic unsigned busy;
	_Atomic int state; /* 0 starting, 1 serving, <0 setup failed (-errno) */
	/* -errno the ring failed with while serving, 0 while alive. Set once the worker closed its
	 * sockets (the kernel then steers their clients to the live workers) and stopped acking
	 * reloads. */
	_Atomic int dead;
	bool dead_logged; /* main only: server_check() reported it */
	/* main only: its forwarder was not rebuilt for srv->conf (the build failed on reload) */
	bool fwd_stale;
	/* A control request (server_cache_*), one at a time: the poster writes ctl_op..ctl_len
	 * only while ctl_ack == ctl_want, then bumps ctl_want and wakes the worker; the worker
	 * serves it in its loop, writes ctl_n/ctl_out and stores ctl_ack = ctl_want (release).
	 * So neither side ever reads what the other is writing, and the worker never waits. */
	_Atomic uint64_t ctl_want;
	_Atomic uint64_t ctl_ack;
	int ctl_op;	    /* WORKER_CTL_* */
	uint32_t ctl_ttl;   /* WORKER_CTL_TTL: the cap, 0 = [Dns] max-ttl */
	uint32_t cache_ttl; /* worker only: the cap in force, reapplied to a reload's forwarder */
	uint8_t ctl_name[WIRE_NAME_MAX];
	size_t ctl_len;
	size_t ctl_n; /* entries of the name (may exceed WORKER_CTL_MAX), or flushed */
	cache_name_entry_t ctl_out[WORKER_CTL_MAX];
} worker_t;

/**
 * Prepare a worker (main thread): memory, eventfd. Takes ownership of the
 * sockets (closed by worker_deinit, even when this fails) and of the
 * forwarder `fwd` (NULL when forwarding is off; freed by worker_deinit).
 * @return 0 or -errno.
 */
/** CLOCK_MONOTONIC in ns (vDSO: no syscall). */
static inline uint64_t worker_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int worker_init(worker_t *w, unsigned idx, int udp_fd, int tcp_fd, const struct conf *conf,
		struct store *store, forward_t *fwd);

/** Thread entry: sets up the ring, serves until stopped. arg is a worker_t *. */
void *worker_main(void *arg);

/** Wake the worker's ring (it then notices stop or a new conf). Any thread. */
void worker_wake(worker_t *w);

/** Free everything; the thread must have been joined (or never started). */
void worker_deinit(worker_t *w);

/** The read snapshot for this batch, renewed on first use. */
struct store_rtxn *worker_txn(worker_t *w);

/** Hand a QUERY_FORWARD query to the forwarder (SERVFAIL when there is none). */
void worker_forward(worker_t *w, const query_t *q, worker_reply_to_t to);

/** Send a forwarder reply built in buf (borrowed) to its client. */
void worker_forward_reply(worker_t *w, const forward_reply_t *r, const uint8_t *buf);

/** Send `len` bytes already written into the reply buffer of `to`. */
void worker_reply(worker_t *w, worker_reply_to_t to, size_t len);

/** Reply buffer of `to` and its capacity (for the forwarder and query_process). */
uint8_t *worker_reply_buf(worker_t *w, worker_reply_to_t to, size_t *cap);

/**
 * forward_local_fn of the worker `ctx`: our own reply for a local name an
 * upstream CNAME led to, from this batch's store snapshot (query_process,
 * so it is chased and counted like a client query). Worker thread only.
 */
size_t worker_local_answer(void *ctx, const uint8_t *name, size_t len, uint16_t qtype,
			   uint16_t qclass, uint8_t *buf, size_t cap);

/** Fill a query_client_t from a socket address (4 or 16 address bytes). */
void worker_client(query_client_t *cl, const struct sockaddr *sa, socklen_t len, bool tcp);
