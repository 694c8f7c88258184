/*
 * common/stats: the daemon's counters, one array per worker thread.
 *
 * The owning thread adds with stats_inc()/stats_add() (relaxed atomic
 * load+store: no lock prefix on the hot path, since only the owner writes);
 * any thread sums them with stats_sum() using relaxed loads. The API reads
 * the sums through a hook, so it needs this header, not server/.
 */
#pragma once

#include <stdint.h>

#define STATS_LAT_BUCKETS 16 /* latency histogram buckets, +Inf included */

enum {
	STATS_QUERIES,
	STATS_UDP,
	STATS_TCP,
	STATS_TRUNCATED,
	STATS_DROPPED, /* no reply slot, or not a query */
	STATS_FORWARD, /* handed to the forwarder */
	STATS_RCODE0,  /* STATS_RCODE0 + rcode, rcodes 0..15 */
	STATS_BADVERS = STATS_RCODE0 + 16,
	STATS_BADCOOKIE, /* extended rcode 23 (RFC 7873), counted apart from BADVERS */
	STATS_TYPE_A,
	STATS_TYPE_AAAA,
	STATS_TYPE_SRV,
	STATS_TYPE_CNAME,
	STATS_TYPE_PTR,
	STATS_TYPE_TXT,
	STATS_TYPE_MX,
	STATS_TYPE_NS,
	STATS_TYPE_SOA,
	STATS_TYPE_OTHER,
	/* Forwarder and cache (engine/forward.h), published by each worker after a batch. */
	STATS_FWD_FORWARDED, /* questions sent upstream (first try) */
	STATS_FWD_TIMEOUTS,  /* upstream tries without a usable answer in time */
	STATS_FWD_ERRORS,    /* upstream answers malformed or SERVFAIL/REFUSED/FORMERR/NOTIMP */
	STATS_FWD_IGNORED,   /* upstream packets with unknown ID, wrong source or question */
	STATS_FWD_SERVFAIL,  /* clients answered SERVFAIL by the forwarder */
	STATS_FWD_DROPS,     /* in-flight or waiter table full */
	STATS_FWD_TCP,	     /* TC over UDP, asked again over TCP */
	/* SERVFAIL at once: the client's /24 (/56) held its share (forward-max-per-client) */
	STATS_FWD_SHARE_DROPS,
	STATS_FWD_SCRUBBED,	  /* upstream records dropped: off the chain and out of bailiwick */
	STATS_FWD_JOINED_WORKERS, /* questions not sent: another worker had them upstream */
	STATS_CACHE_HITS,
	STATS_CACHE_MISSES,
	STATS_CACHE_EVICTIONS, /* live entries pushed out to make room */
	STATS_CACHE_ENTRIES,   /* gauge: answers held now */
	/* Resource limits (issue 7) */
	STATS_RRL_DROPPED, /* UDP replies not sent: over rrl-responses-per-second */
	STATS_RRL_SLIPPED, /* UDP replies sent truncated (TC=1) instead: rrl-slip */
	STATS_TCP_REFUSED, /* TCP connections closed at accept: tcp-max-connections/-per-client */
	STATS_TCP_ACCEPT_PAUSED, /* accept failed for want of fds/memory: paused until the tick */
	/* TCP closes by reason (issue 10 item 5); the refusals also count in STATS_TCP_REFUSED. */
	STATS_TCP_CLOSE_IDLE,	     /* no query for tcp-idle-timeout */
	STATS_TCP_CLOSE_MSG_TIMEOUT, /* a started message not finished in tcp-message-timeout */
	STATS_TCP_CLOSE_EVICTED,     /* longest-idle connection closed to admit a new one */
	STATS_TCP_REFUSED_CLIENT,    /* refused at accept: the client's /24 (/56) at its cap */
	STATS_TCP_REFUSED_FULL,	     /* refused at accept: pool full and nothing idle to evict */
	STATS_RING_FULL,      /* operations dropped or deferred: no free SQE even after a submit */
	STATS_CACHE_STALE,    /* answers served past their TTL: serve-stale (issue 14) */
	STATS_CACHE_PREFETCH, /* hits in the last 10 % of the TTL that started a refresh */
	/* The store's lookup cache ([Store] lookup-cache), the worker's cumulative counts. */
	STATS_LOOKUP_HITS,   /* exact gets answered by a slot */
	STATS_LOOKUP_MISSES, /* exact gets that took the B-tree */
	/* Signed requests refused (RFC 8945 §5.2): unknown key, wrong MAC, clock skew. */
	STATS_TSIG_BADKEY,
	STATS_TSIG_BADSIG,
	STATS_TSIG_BADTIME,
	/* Query log ([Log] query-log), filled by server_stats from its writer, not per worker. */
	STATS_QLOG_WRITTEN, /* lines written to the file */
	STATS_QLOG_DROPPED, /* records not kept: the worker's ring was full (writer behind) */
	STATS_QLOG_LOST,    /* lines formatted but not written: write() failed (disk full) */
	/* Latency of answers from the store: STATS_LAT0 + i counts those that took at most
	 * stats_lat_le_ns(i) (not cumulative), the last one the rest; the sum in ns. */
	STATS_LAT0,
	STATS_LAT_SUM_NS = STATS_LAT0 + STATS_LAT_BUCKETS,
	STATS_COUNT
};

/** Upper bound of latency bucket i < STATS_LAT_BUCKETS - 1, in ns (Prometheus "le"). */
static inline uint64_t stats_lat_le_ns(unsigned i)
{
	static const uint64_t le[STATS_LAT_BUCKETS - 1] = {
	    50000,    100000,	250000,	   500000,    1000000,	 2500000,    5000000,	10000000,
	    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000};
	return le[i];
}

typedef struct {
	uint64_t v[STATS_COUNT];
} stats_t;

/** Add n to a counter of the owning thread. */
static inline void stats_add(stats_t *s, unsigned which, uint64_t n)
{
	__atomic_store_n(&s->v[which], __atomic_load_n(&s->v[which], __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

static inline void stats_inc(stats_t *s, unsigned which)
{
	stats_add(s, which, 1);
}

/** Count n answers that took ns each (owning thread). */
static inline void stats_observe(stats_t *s, uint64_t ns, uint64_t n)
{
	unsigned i = 0;

	while (i < STATS_LAT_BUCKETS - 1 && ns > stats_lat_le_ns(i))
		i++;
	stats_add(s, STATS_LAT0 + i, n);
	stats_add(s, STATS_LAT_SUM_NS, ns * n);
}

/** Add a worker's counters into *sum (any thread). */
static inline void stats_sum(const stats_t *s, stats_t *sum)
{
	for (unsigned i = 0; i < STATS_COUNT; i++)
		sum->v[i] += __atomic_load_n(&s->v[i], __ATOMIC_RELAXED);
}

/** Overwrite a counter or gauge of the owning thread (published copies of other counters). */
static inline void stats_set(stats_t *s, unsigned which, uint64_t v)
{
	__atomic_store_n(&s->v[which], v, __ATOMIC_RELAXED);
}
