/*
 * server/cache: the cache of forwarded answers, one for all the workers, and
 * the message normalizer the forwarder uses for every upstream answer.
 *
 * Threads: every function may be called from any thread at once. The table
 * is split into up to CACHE_SHARDS shards by key hash (one when it holds
 * fewer than 2,048 entries), each under a spinlock held only for a find and
 * the copy of one reply (or one insert), never across anything that blocks,
 * so two workers meet only on the same shard for a few hundred ns.
 * Handles: a cache_t is one thread's handle on the shared table (cache_new
 * makes the first, cache_share more); the table lives until its last handle
 * is freed, so the forwarders of one configuration share one table. The
 * counters (cache_stats_t) are the handle's: what that thread's calls did,
 * so sums over the workers count every lookup once. A handle's calls must
 * come from one thread at a time; different handles may run at once.
 *
 * Memory: cache_new() allocates a fixed array of small entry headers
 * (CACHE_ENTRY_SIZE bytes each) plus a bucket array of 4 bytes per entry,
 * rounded up to a power of two >= 2 * entries; the array comes from calloc,
 * so untouched entries cost only address space. Each cached message is a
 * malloc of exactly its length, freed when the entry goes, so memory follows
 * the answers held (cache_memory), not entries * the largest answer. A
 * failed malloc leaves the answer uncached. Answers whose normalized form
 * exceeds CACHE_MSG_MAX are not cached.
 *
 * A "normalized" message (cache_msg_parse) is what the cache stores and
 * what client replies are built from: header with QDCOUNT 1, the question
 * with a lowercased name, every RR of the upstream message except OPT and
 * those the policy scrubs (cache_policy_t), TTLs capped at the policy's
 * max_ttl, re-encoded with our own compression (pointers only to names we
 * wrote, at most 16 pointers per name), so no pointer can reach bytes of the
 * untrusted original. Normalizing costs time linear in the message.
 *
 * Invariants: count <= capacity; an entry is served only while
 * now < insert time + its TTL; TTLs served = stored TTL - age (whole s);
 * past that only by cache_lookup_stale, within the serve-stale window.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/query.h"

#define CACHE_MSG_MAX 1232    /* largest normalized answer cached, bytes */
#define CACHE_MAX_TTL 86400u  /* TTLs above are cached for this long */
#define CACHE_SERVFAIL_TTL 5u /* SERVFAIL is remembered this long at most */
#define CACHE_ENTRY_SIZE 40   /* bytes per entry header; the message is allocated apart */
#define CACHE_STALE_TTL 30u   /* TTL of a stale answer (RFC 8767 section 4) */
#define CACHE_SHARDS 64	      /* most shards (locks) a cache is split into */

typedef struct cache cache_t;

typedef struct {
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions; /* live entries pushed out to make room */
	uint64_t inserts;
	uint64_t expired;    /* entries dropped because their TTL ran out */
	uint64_t stale;	     /* answers served past their TTL (serve-stale) */
	uint64_t prefetches; /* hits that asked for a refresh (cache_lookup_prefetch) */
} cache_stats_t;

/* A zone name for cache_policy_t: wire form, borrowed. */
typedef struct {
	const uint8_t *name;
	size_t len;
} cache_zone_t;

/*
 * What of an upstream answer may reach clients (issue 10: scrubbing). An RR is
 * kept when it is on the answer's CNAME chain from the question name, or its
 * owner is inside `bailiwick` (the zone the upstream was asked for); never
 * when its owner is one of our own names: inside a `local` zone but not inside
 * a `forwarded` one. A CNAME into a local name ends the chain there: the rest
 * of the message is dropped and cache_msg_t.local names where to continue.
 * All pointers borrowed for the call.
 */
typedef struct {
	uint32_t max_ttl;	/* TTLs above are lowered to it; 0 = CACHE_MAX_TTL */
	cache_zone_t bailiwick; /* name NULL = the root: everything is in bailiwick */
	const cache_zone_t *local;
	size_t nlocal;
	const cache_zone_t *forwarded; /* subDomainServers zones (they may lie in local ones) */
	size_t nforwarded;
} cache_policy_t;

/* What cache_msg_parse learnt about a message. */
typedef struct {
	uint16_t id;
	uint16_t flags; /* header flags word, rcode in the low 4 bits */
	uint16_t qtype;
	uint16_t qclass;
	uint8_t qname[WIRE_NAME_MAX]; /* lowercase */
	size_t qnamelen;
	uint16_t ancount;
	uint32_t ttl;	   /* seconds it may be cached (RFC 2308 for negatives); 0 = never */
	uint16_t scrubbed; /* RRs the policy dropped */
	uint8_t local[WIRE_NAME_MAX]; /* the CNAME chain's local target (a cut), or */
	size_t locallen;	      /* 0: the answer is the upstream's alone */
} cache_msg_t;

/**
 * Create a cache.
 * @param out      receives an owned cache (free with cache_free), only on success.
 * @param entries  capacity in answers (>= 1).
 * @param seed     random seed for the bucket hash (hash flooding).
 * @return 0, -ENOMEM or ERR_INVAL.
 */
int cache_new(cache_t **out, size_t entries, uint64_t seed);

/**
 * Another handle on c's table, for another thread: the same entries, its own
 * counters (cache_stats_read of a handle counts what was done through it).
 * @param out receives an owned handle (cache_free), only on success.
 * @return 0 or -ENOMEM.
 */
int cache_share(cache_t *c, cache_t **out);

/** Free a handle; the last handle on a table frees the table. NULL is a no-op. */
void cache_free(cache_t *c);

/**
 * Remember a normalized answer for the key (its question, do_bit, cd: the
 * client's CD bit, so checking-disabled answers never reach validating
 * clients, RFC 4035 §3.2.2). An existing entry for the key is replaced.
 * @param norm,len a message produced by cache_msg_parse (borrowed; copied).
 * @param info     its facts from cache_msg_parse.
 * @return 0, ERR_TOOBIG (len > CACHE_MSG_MAX) or ERR_INVAL (TTL 0: TC,
 *         REFUSED, negative answer without SOA, ...). Not cached on error.
 */
int cache_insert(cache_t *c, const uint8_t *norm, size_t len, const cache_msg_t *info, bool do_bit,
		 bool cd, uint64_t now_ms);

/**
 * Answer q from the cache (key: question, q->edns_do, q's CD bit): the
 * client's ID and question case, RA set, AA
 * cleared, every TTL lowered by the entry's age, OPT added when q had EDNS,
 * TC when it exceeds q->resp_limit.
 * @param our_udp  UDP size we advertise in our OPT.
 * @return 0 (resp holds *resplen bytes), ERR_NOTFOUND (miss or expired) or
 *         ERR_TOOBIG (cap too small even for a truncated reply).
 */
int cache_lookup(cache_t *c, const query_t *q, uint16_t our_udp, uint64_t now_ms, uint8_t *resp,
		 size_t cap, size_t *resplen);

/**
 * cache_lookup, and on a hit in the last 10 % of the entry's TTL (the first
 * such hit of that entry only; never for a remembered SERVFAIL) set
 * *prefetch to true: the caller should refresh it in the background, so a
 * name in use never expires. *prefetch is left alone otherwise; NULL = no hint.
 */
int cache_lookup_prefetch(cache_t *c, const query_t *q, uint16_t our_udp, uint64_t now_ms,
			  uint8_t *resp, size_t cap, size_t *resplen, bool *prefetch);

/**
 * Serve-stale (RFC 8767): keep expired entries `seconds` longer for
 * cache_lookup_stale (0, the default: drop them at expiry). cache_lookup
 * still misses on them, so the question goes upstream first.
 */
void cache_set_stale(cache_t *c, uint32_t seconds);

/**
 * Answer q from an entry even if its TTL ran out, within the serve-stale
 * window: as cache_lookup, but an expired entry is served with every TTL
 * CACHE_STALE_TTL and, when q had EDNS, EDE 3 "Stale Answer" (RFC 8914) in
 * the OPT. A remembered SERVFAIL is never served this way.
 * @return 0, ERR_NOTFOUND or ERR_TOOBIG.
 */
int cache_lookup_stale(cache_t *c, const query_t *q, uint16_t our_udp, uint64_t now_ms,
		       uint8_t *resp, size_t cap, size_t *resplen);

/** Whether cache_lookup_stale would find an answer for q now (no counters touched). */
bool cache_has_stale(cache_t *c, const query_t *q, uint64_t now_ms);

/** Number of entries held now in the whole table (<= capacity; any thread). */
size_t cache_count(const cache_t *c);
size_t cache_capacity(const cache_t *c);

/* One cached answer of a name, as GET /skydns/domain/<name> shows it. */
typedef struct {
	uint16_t qtype;
	uint16_t rcode;
	uint32_t ttl_left; /* whole seconds until it expires; 0: expired, kept for serve-stale */
	bool do_bit, cd;
} cache_name_entry_t;

/**
 * The entries whose question name is `name` (wire, any case), into
 * out[0..cap). A walk of the whole table, one shard lock at a time (any
 * handle; run on a control request, never per query). @return how many there
 * are (may exceed cap).
 */
size_t cache_name_entries(cache_t *c, const uint8_t *name, size_t len, uint64_t now_ms,
			  cache_name_entry_t *out, size_t cap);

/** Drop every entry whose question name is `name` (any handle, one shard lock at a time).
 * @return entries dropped. */
size_t cache_flush_name(cache_t *c, const uint8_t *name, size_t len);

/** Bytes the cache holds now: headers touched, buckets, message chunks (any thread; relaxed). */
size_t cache_memory(const cache_t *c);

/** Copy the handle's counters (any thread; relaxed loads). */
void cache_stats_read(const cache_t *c, cache_stats_t *out);

/**
 * Validate an untrusted message fully and normalize it (see above): one
 * question, every counted RR present, names valid (compression loops and
 * forward pointers rejected), RDATA names of known types decompressed and
 * their RDATA consumed exactly, OPT only in the additional section.
 * Scrubbed RRs are validated too. A cut chain (info->locallen > 0) is
 * answered NOERROR and never cached (info->ttl 0).
 * @param pol      what to keep (borrowed); NULL keeps every RR, TTLs capped at
 *                 CACHE_MAX_TTL.
 * @param out,cap  receives the normalized message (cap up to 65535).
 * @param info     filled on success.
 * @return 0, ERR_TRUNC, ERR_MALFORMED or ERR_TOOBIG (out too small, or its
 *         names decompress to more than 256 KiB: a bound on the work).
 */
int cache_msg_parse(const uint8_t *msg, size_t len, const cache_policy_t *pol, uint8_t *out,
		    size_t cap, size_t *outlen, cache_msg_t *info);

/**
 * Continue a cut chain (cache_msg_t.local) with our own answer for its local
 * name: append the answer and authority RRs of `rep` (a whole reply, e.g. from
 * query_process; validated all the same) to the normalized message `norm`,
 * whose rcode becomes rep's.
 * @param norm,len,cap  a cut message from cache_msg_parse (no authority or
 *                      additional RRs), rewritten in place.
 * @return 0 (*outlen set), ERR_INVAL (not such a message), ERR_TOOBIG, or a
 *         parse error of rep; norm[0..len) unchanged on error.
 */
int cache_msg_splice(uint8_t *norm, size_t len, size_t cap, const uint8_t *rep, size_t replen,
		     size_t *outlen);

/**
 * Build the normalized form of an answer with no records: q's question
 * (lowercased), flags QR|RD|RA and `rcode`. Used for SERVFAIL.
 * @return 0 or ERR_TOOBIG.
 */
int cache_msg_rcode(const query_t *q, uint16_t rcode, uint8_t *out, size_t cap, size_t *outlen,
		    cache_msg_t *info);

/**
 * Turn a normalized message into the reply for one client: q's ID and
 * question case, RD/CD echoed, RA set, AA cleared, AD kept only for DO/AD
 * clients, TTLs minus `age` seconds, our OPT (our_udp, DO echoed) when q had
 * EDNS, and header + question + OPT with TC when the whole does not fit
 * min(q->resp_limit, cap).
 * @return 0 or ERR_TOOBIG (not even the truncated form fits), ERR_INVAL
 *         (q's question differs from the message's).
 */
int cache_msg_finish(const uint8_t *norm, size_t len, const query_t *q, uint16_t our_udp,
		     uint32_t age, uint8_t *resp, size_t cap, size_t *resplen);

/** cache_msg_finish of our own reply (age 0) with the EDNS_EDE_* code `ede` in its OPT. */
int cache_msg_finish_ede(const uint8_t *norm, size_t len, const query_t *q, uint16_t our_udp,
			 int ede, uint8_t *resp, size_t cap, size_t *resplen);
