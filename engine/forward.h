/*
 * server/forward: the sans-IO forwarder of one worker. It decides which
 * upstream server to ask, builds the upstream queries, matches the answers,
 * handles per-try timeouts, TC -> TCP retries and failover, coalesces
 * identical questions in flight, caches answers (engine/cache.h) and builds
 * the client replies. It does no I/O: the worker moves the bytes.
 *
 * Threads: a forward_t belongs to one worker thread; no locks. Counters are
 * written with relaxed atomic stores, readable from any thread through
 * forward_stats_read() / forward_server_stats().
 *
 * Memory: everything (in-flight table, waiting clients, answer buffers, the
 * cache) is allocated by forward_new(); nothing afterwards.
 *
 * How the worker drives it (all calls from the worker thread):
 *   1. query_process() returned QUERY_FORWARD:
 *        r = forward_query(f, &q, &client, now, resp, cap, &len);
 *        FWD_ANSWERED / FWD_FAILED: send resp[0..len) to the client now.
 *        FWD_PENDING: nothing to send to the client yet.
 *   2. After every forwarder call, drain in this order:
 *        while (forward_next_release(f, &slot)) -> close the UDP socket of
 *                                            try slot `slot` (cancel its
 *                                            receive first);
 *        while (forward_next_send(f, &s))  -> s.tcp: a new TCP connection to
 *                                            *s.to (2-byte length); else a
 *                                            fresh UDP socket for try slot
 *                                            s.slot, connected to *s.to,
 *                                            s.pkt sent on it, receives
 *                                            armed on it until its release;
 *        while (forward_next_reply(f, &r, buf, cap)) -> send buf[0..r.len)
 *                                            to r.client.
 *      A slot is released before it is sent again, and forward_next_send
 *      gives nothing while a release is queued, so draining releases first
 *      never closes the socket of a live try. Every UDP send gets exactly
 *      one release (answer accepted, TC -> TCP, failover, timeout); the
 *      forwarder's own teardown (forward_free, reload) emits none: the
 *      worker closes whatever slot sockets are still open then.
 *      Why a socket per try: a connected socket on a kernel-chosen
 *      ephemeral port makes a spoofer guess ~15 bits of port on top of the
 *      16-bit ID, and the kernel drops datagrams from any other source.
 *      Replies must be drained before the next forward_on_packet (the
 *      answer they are built from is replaced by the next one; undrained
 *      replies degrade to SERVFAIL).
 *   3. Every datagram read on a try's UDP socket, and every whole message
 *      read from an upstream TCP connection (without the length prefix):
 *      forward_on_packet(f, slot, &from, pkt, len, now).
 *   4. A try's socket could not be made (socket/connect: EMFILE, ...) or
 *      its server refused (ECONNREFUSED): forward_on_error.
 *   5. At forward_next_timeout(f) (absolute ms) or on any periodic tick:
 *      forward_on_tick(f, now). A failed TCP connect needs no call: the try
 *      times out.
 * `now` is a monotonic clock in milliseconds (CLOCK_MONOTONIC).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "engine/cache.h"
#include "engine/inflight.h"
#include "engine/query.h"

/* Distinct questions upstream at once = try slots = at most this many UDP
 * sockets open per worker (plus its TCP retries): RLIMIT_NOFILE must cover
 * workers * (FORWARD_MAX_INFLIGHT + UPSTREAM_TCP) on top of the rest. */
#define FORWARD_MAX_INFLIGHT 4096
#define FORWARD_MAX_WAITERS 8192 /* clients waiting for them */
#define FORWARD_MIN_TRY_MS 200	 /* a try never gets less time than this */
#define FORWARD_QUERY_MAX 300	 /* upstream query size bound: 12 + 255 + 4 + 11 */

enum {
	FWD_ANSWERED = 0, /* resp holds the answer (cache hit) */
	FWD_PENDING = 1,  /* asked upstream (or joined an identical question in flight) */
	FWD_FAILED = 2,	  /* resp holds SERVFAIL (no server, table full, cached SERVFAIL) */
};

/* Who gets a reply. The forwarder copies it and hands it back untouched. */
typedef struct {
	conf_addr_t addr; /* client address, for UDP replies */
	uint64_t cookie;  /* the worker's handle: listening socket, TCP connection id, ... */
	bool tcp;
} forward_client_t;

typedef struct {
	const conf_addr_t *to; /* borrowed; valid until forward_free */
	uint32_t slot;	       /* try slot, < FORWARD_MAX_INFLIGHT: names the UDP socket */
	bool tcp;	       /* over a new TCP connection instead */
	uint16_t id;	       /* the query ID (for logs) */
	size_t len;
	uint8_t pkt[FORWARD_QUERY_MAX];
} forward_send_t;

typedef struct {
	forward_client_t client;
	size_t len; /* bytes written to the caller's buffer */
} forward_reply_t;

typedef struct {
	uint64_t queries;	 /* forward_query calls */
	uint64_t forwarded;	 /* questions sent upstream (first try) */
	uint64_t joined;	 /* queries that joined an identical question in flight */
	uint64_t joined_workers; /* questions that waited for another worker's (inflight.h) */
	uint64_t tcp_retries;	 /* TC over UDP, asked again over TCP */
	uint64_t servfail;	 /* clients answered SERVFAIL by us */
	uint64_t ignored;	 /* upstream packets: unknown ID, wrong source or question */
	uint64_t malformed;	 /* upstream packets that did not parse */
	uint64_t inflight_drops; /* in-flight or waiter table full */
	uint64_t share_drops;	 /* the client's /24 (/56) held its share already */
	uint64_t scrubbed;	 /* upstream RRs dropped by the policy (cache_policy_t) */
	cache_stats_t cache;
} forward_stats_t;

/* Upstream RTT histogram: answers that took at most forward_rtt_le_ms(i) (last: any). */
#define FORWARD_RTT_BUCKETS 12

typedef struct {
	conf_addr_t addr;
	uint64_t queries;		   /* tries sent to it (UDP and TCP) */
	uint64_t timeouts;		   /* tries that got no usable answer in time */
	uint64_t errors;		   /* malformed answers, SERVFAIL/REFUSED/FORMERR/NOTIMP */
	uint64_t probes;		   /* health probes sent to it (not in queries) */
	uint64_t rcode[16];		   /* answers to questions (not probes), by rcode */
	uint64_t rtt[FORWARD_RTT_BUCKETS]; /* those answers by round trip, not cumulative */
	uint64_t rtt_sum_ms;
	uint32_t srtt_ms; /* smoothed RTT now (timeouts count as their try time) */
	bool healthy;	  /* not taken out (max-fails) */
} forward_server_stats_t;

/** Upper bound of RTT bucket i in ms; UINT32_MAX for the last. */
uint32_t forward_rtt_le_ms(unsigned i);

/*
 * Our own answer for a local name that an upstream's CNAME chain led to
 * (cache_msg_t.local): a whole reply message for (name, qtype, qclass) from
 * the store, written to buf. Called on the worker thread, during
 * forward_on_packet. @return its length, 0 for none (the cut chain is sent).
 */
typedef size_t (*forward_local_fn)(void *ctx, const uint8_t *name, size_t len, uint16_t qtype,
				   uint16_t qclass, uint8_t *buf, size_t cap);

typedef struct {
	uint64_t seed;		 /* keys internal hashes; query IDs never depend on it */
	unsigned nworkers;	 /* conf cache_size is split evenly over this many (0 = 1) */
	const char *resolv_conf; /* NULL = /etc/resolv.conf; read only when no nameservers */
	forward_local_fn local;	 /* NULL: chains into local names end at the CNAME */
	void *local_ctx;	 /* borrowed; passed to local, must outlive the forwarder */
	cache_t *cache;		 /* shared by the workers (the forwarder takes its own handle,
				  * cache_share); NULL: its own of conf cache_size / nworkers */
	inflight_t *inflight;	 /* with `cache`: the workers' registry (borrowed, outlives the
				  * forwarder); NULL: every worker asks for itself */
	unsigned worker;	 /* this worker's number in `inflight` */
	bool cache_reports;	 /* with `cache`: forward_cache_entries reports the table's
				  * size (one forwarder per table, so sums over workers count
				  * it once); counters are always the forwarder's own */
} forward_opts_t;

typedef struct forward forward_t;

/**
 * Create the forwarder of one worker: copies the upstream servers out of
 * `c` (so `c` may be freed afterwards), reads resolv_conf when `c` has no
 * nameservers, drops (with a warning) any server equal to dns-addr, keys
 * its query-ID generator from the kernel (common/csprng.h: may wait for the
 * kernel's pool right after boot, so call it from main), and preallocates
 * everything.
 * @param out receives an owned forwarder (forward_free), only on success.
 * @return 0, -ENOMEM, ERR_INVAL, or -errno when the kernel gives no randomness.
 */
int forward_new(forward_t **out, const conf_t *c, const forward_opts_t *opts);

/** Free; NULL is a no-op. */
void forward_free(forward_t *f);

/**
 * Forward one client query. A client whose /24 (IPv4) or /56 (IPv6) already
 * started forward-max-per-client questions in flight, or has twice that many
 * queries waiting, gets SERVFAIL at once (share_drops), so one network
 * cannot fill the tables for everyone; nobody else's question is evicted.
 * Clients without an address (family not AF_INET/AF_INET6) are not counted.
 * Serve-stale: a question whose cached answer expired (within serve-stale)
 * goes upstream; its clients get the stale answer (TTL 30, EDE 3) when every
 * server fails, or at stale-answer-timeout (at the next forward_on_tick),
 * and at once while that question is still refreshing the entry.
 * @param q      the parsed question from query_process (borrowed; copied).
 * @param client borrowed; copied. Its addr is needed for TCP clients too.
 * @param resp,cap,resplen  filled on FWD_ANSWERED and FWD_FAILED.
 * @return FWD_ANSWERED, FWD_PENDING or FWD_FAILED.
 */
int forward_query(forward_t *f, const query_t *q, const forward_client_t *client, uint64_t now_ms,
		  uint8_t *resp, size_t cap, size_t *resplen);

/**
 * Next upstream packet to send.
 * @return 1 (out filled) or 0 (none, or a release is queued: drain those first).
 */
int forward_next_send(forward_t *f, forward_send_t *out);

/** Next UDP try whose socket must be closed. @return 1 (*slot filled) or 0 (none). */
int forward_next_release(forward_t *f, uint32_t *slot);

/**
 * An upstream message arrived (untrusted) on the socket or TCP connection
 * of try slot `slot`. Accepted only for that slot's current try, from the
 * server it was sent to, with its ID, QR set, exactly one question equal
 * to ours, and fully parseable; otherwise ignored and counted.
 * @param from the peer address (borrowed).
 */
void forward_on_packet(forward_t *f, uint32_t slot, const conf_addr_t *from, const uint8_t *pkt,
		       size_t len, uint64_t now_ms);

/**
 * The UDP try in `slot` failed locally (no socket) or was refused: counted
 * as an error of its server. fail_fast: go to the next server now (a
 * refusal); otherwise the try waits for its timeout (a local shortage
 * says nothing about the server). Ignored when slot has no sent UDP try.
 */
void forward_on_error(forward_t *f, uint32_t slot, bool fail_fast, uint64_t now_ms);

/**
 * Next client reply to send.
 * @param buf,cap where to build it (65535 fits any reply).
 * @return 1 (out and buf filled) or 0 (none left).
 */
int forward_next_reply(forward_t *f, forward_reply_t *out, uint8_t *buf, size_t cap);

/**
 * Expire tries due at now_ms (next server, or SERVFAIL to every waiting
 * client) and start the health probes due: a server whose try failed is
 * asked ". NS" in the background at once, and every health-check while it
 * is out (max-fails failures in a row); its first answer brings it back.
 */
void forward_on_tick(forward_t *f, uint64_t now_ms);

/** Whether forward_on_tick has work ahead: questions in flight or servers to probe. */
bool forward_wants_tick(const forward_t *f);

/** Earliest try deadline or probe due (absolute ms), UINT64_MAX when none. */
uint64_t forward_next_timeout(const forward_t *f);

/**
 * Cross-worker joining (opts.inflight). A question another worker asks
 * already is not sent: its clients wait here until that worker's answer is
 * in the shared cache. That worker's forwarder collects which workers wait
 * for the questions it ended; after every forwarder call the worker takes
 * them and wakes each (one eventfd write per worker per drain, i.e. per
 * upstream answer, never per query):
 *   m = forward_take_wakes(f); for each bit j: write inflight_wake_fd(reg, j).
 * A woken worker calls forward_on_wake: every waiting question whose owner
 * is done is answered from the cache, or, when the cache has nothing (the
 * owner failed without caching, a stale answer, eviction), asked upstream
 * by this worker itself. forward_on_tick does the same check (so a lost
 * wake costs one tick), and sends itself a question whose owner did not
 * finish within the group's whole timeout.
 */
uint64_t forward_take_wakes(forward_t *f);
void forward_on_wake(forward_t *f, uint64_t now_ms);
/** The registry the forwarder uses, NULL for none. */
inflight_t *forward_registry(const forward_t *f);

/** Questions in flight now. */
size_t forward_inflight(const forward_t *f);

/** Counters (any thread). */
void forward_stats_read(const forward_t *f, forward_stats_t *out);

/** Number of upstream servers known (all groups). */
size_t forward_server_count(const forward_t *f);

/**
 * Counters of server i (< forward_server_count), from any thread, except
 * srtt_ms and healthy: worker thread only. @return 0 or ERR_INVAL.
 */
int forward_server_stats(const forward_t *f, size_t i, forward_server_stats_t *out);

/** Entries held in the cache now (worker thread only). */
size_t forward_cache_entries(const forward_t *f);

/** The cached answers of `name` (cache_name_entries). */
size_t forward_cache_name(const forward_t *f, const uint8_t *name, size_t len, uint64_t now_ms,
			  cache_name_entry_t *out, size_t cap);
/** Drop the cached answers of `name` (worker thread only). @return entries dropped. */
size_t forward_cache_flush(forward_t *f, const uint8_t *name, size_t len);
/**
 * Cap the TTLs of answers cached from now on at `ttl` seconds, 0: back to
 * [Dns] max-ttl (worker thread only). Entries already cached keep theirs.
 */
void forward_set_max_ttl(forward_t *f, uint32_t ttl);

/** Whether `c` turns forwarding on (nameservers, even empty, or subDomainServers). */
bool forward_configured(const conf_t *c);

/**
 * Whether a forwarder made from `a` would be the same as one made from `b`
 * (servers, subdomains, timeout, cache size, EDNS size, dns-addr, the
 * per-client share, max-ttl, local domains), so a
 * reload may keep the running one with its cache and in-flight questions.
 * An empty nameservers list counts as different: /etc/resolv.conf may have
 * changed.
 */
bool forward_conf_same(const conf_t *a, const conf_t *b);
