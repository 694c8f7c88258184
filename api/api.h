/*
 * api: the REST admin API, stats, metrics, health and readiness, served by
 * civetweb on its own threads inside the skydns process (DESIGN §6).
 * main() owns the api_t. Handlers read the store with their own read txns
 * and write it with short write txns; they never wait for DNS workers.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

struct conf;
struct store;
struct store_rtxn;

typedef struct api api_t;

/* One of the most-asked names (GET /skydns/stats/top/<N>). */
typedef struct {
	char name[WIRE_NAME_TEXT_MAX]; /* text, lowercase, trailing dot */
	uint64_t count;		       /* upper bound of the times it was asked */
	uint64_t error;		       /* count - error is a lower bound */
	uint32_t first_s, last_s;      /* first and last counted, Unix s (0: unknown) */
} api_top_name_t;

/* Largest N of /skydns/stats/top/<N>. */
#define API_TOP_MAX 1000

/* One upstream server's forwarding counters, summed over the workers (issue 14). */
#define API_RTT_BUCKETS 12
typedef struct {
	char addr[64];
	uint64_t queries, timeouts, errors, probes;
	uint64_t rcode[16];		     /* answers by rcode */
	uint64_t rtt[API_RTT_BUCKETS];	     /* answers by round trip, not cumulative */
	uint32_t rtt_le_ms[API_RTT_BUCKETS]; /* bucket bounds; the last is +Inf */
	uint64_t rtt_sum_ms, srtt_ms;
	bool healthy; /* every worker has it in use */
} api_upstream_t;

/* A child process skydns supervises (a watcher, the probe), as the status page shows it. */
typedef struct {
	char name[32];	   /* executable name, e.g. "skydns-watch-etcd" */
	int pid;	   /* 0: not running (waiting to be restarted) */
	int64_t since_ms;  /* unix ms of its last start, or of its exit when not running */
	unsigned restarts; /* exits seen since skydns started */
	int last_exit;	   /* exit status, -signal, or INT_MIN when it never exited */
} api_child_t;

/* One cached forwarded answer of a name (GET /skydns/domain/<name>). */
typedef struct {
	uint16_t qtype;
	uint16_t rcode;
	uint32_t ttl_left; /* s until it expires; 0: expired, kept for serve-stale */
	bool do_bit, cd;   /* the cache keys answers by the query's DO and CD bits too */
	unsigned worker;   /* the worker whose cache holds it */
} api_cache_entry_t;

enum { API_CACHE_SHOW = 1, API_CACHE_FLUSH };

/* What the API needs from the rest of the daemon, without depending on server/. */
typedef struct {
	/* Fill `out` (an array of `n` uint64 counters, indexed by STATS_*)
	 * with the sum over workers. May be NULL (stats report zeros). */
	void (*query_stats)(void *ctx, unsigned long long *out, unsigned n);
	/* Fill `out` with at most `n` most-asked names, highest count first,
	 * without waiting for workers. @return entries written or a negative
	 * error. May be NULL (the route answers 404). */
	int (*top_names)(void *ctx, api_top_name_t *out, size_t n);
	/* Fill out[0..cap) with the upstream servers' counters. @return entries
	 * written. May be NULL (no per-upstream metrics). */
	size_t (*upstreams)(void *ctx, api_upstream_t *out, size_t cap);
	/* Answer the DNS query req[0..reqlen) the way a worker would, from the
	 * read snapshot `txn` under `conf`, into resp[0..cap) (the status
	 * page's lookup box). Runs on the calling API thread with its own
	 * query state: no worker is asked or waited for, nothing is sent
	 * upstream, and the workers' counters do not move.
	 * @return 0 (*resplen bytes in resp), 1 (the name is not local: a
	 * worker would forward it), or <0 (not a query it can answer). May be
	 * NULL (the lookup route answers 404). */
	int (*answer)(void *ctx, const struct conf *conf, struct store_rtxn *txn,
		      const uint8_t *req, size_t reqlen, uint8_t *resp, size_t cap,
		      size_t *resplen);
	/* GET|DELETE /skydns/domain/<name> (wire name `name`): API_CACHE_SHOW fills
	 * out[0..cap) and sets *n to how many entries there are; API_CACHE_FLUSH drops
	 * them and sets *n to how many it dropped. The workers own their caches: the
	 * request goes to each one's mailbox and this API thread waits (at most a second)
	 * for their answers; workers never wait. @return workers that answered. May be
	 * NULL (the route answers 404). */
	unsigned (*cache_name)(void *ctx, int op, const uint8_t *name, size_t len,
			       api_cache_entry_t *out, size_t cap, size_t *n);
	/* /skydns/master cacheTtl: when `set` is not NULL, cap the TTLs of answers cached
	 * from now on at *set s (0 = back to [Dns] max-ttl), posted to every worker as
	 * above. @return the cap in force (0 = max-ttl). May be NULL (404). */
	uint32_t (*cache_ttl)(void *ctx, const uint32_t *set);
	void *ctx;
	/* Fill out[0..cap) with the supervised children, from copies main publishes with
	 * atomic stores (never waits for main). @return entries written. Called with
	 * children_ctx. May be NULL (no process list). */
	size_t (*children)(void *children_ctx, api_child_t *out, size_t cap);
	void *children_ctx;
} api_hooks_t;

/**
 * Start the API if conf->api_enable. Refuses (ERR_CONFIG) a non-loopback
 * api-address without an api-token.
 * @param out receives an owned handle, or NULL when the API is disabled.
 * @return 0, ERR_CONFIG, -errno (bind failed).
 */
int api_start(api_t **out, const struct conf *conf, struct store *store, const api_hooks_t *hooks);

/**
 * What api_start() refuses before binding (skydns -check-config): a
 * non-loopback address without a token, TLS this civetweb cannot serve. The
 * reason is logged. @return 0 (also when the API is off) or ERR_CONFIG.
 */
int api_check_conf(const struct conf *conf);

/** Mark not ready (/ready answers 503) while draining on shutdown. */
void api_set_draining(api_t *api, bool draining);

/**
 * Re-read [Api] api-tokens-file (SIGHUP): the new table replaces the old one for the
 * requests that follow; a file that does not load is logged (PATH:LINE) and the old
 * table stays. NULL api, or no file configured: no-op. Main thread.
 */
void api_reload_tokens(api_t *api);

/** Stop the HTTP threads and free; NULL is a no-op. */
void api_stop(api_t *api);
