/*
 * api/stats: GET /skydns/stats (JSON) and GET /metrics (Prometheus text
 * exposition format 0.0.4). Worker counters come summed from the
 * query_stats hook; workers are never waited for.
 */
#include "api/api_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <civetweb.h>
#include <jansson.h>

#include "common/err.h"
#include "common/probe_stats.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "common/stats.h"
#include "store/store.h"

static const char *const rcode_names[16] = {
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",  "RCODE11",  "RCODE12", "RCODE13", "RCODE14",  "RCODE15",
};

static const struct {
	unsigned stat;
	const char *name;
} type_stats[] = {
    {STATS_TYPE_A, "A"},	 {STATS_TYPE_AAAA, "AAAA"}, {STATS_TYPE_SRV, "SRV"},
    {STATS_TYPE_CNAME, "CNAME"}, {STATS_TYPE_PTR, "PTR"},   {STATS_TYPE_TXT, "TXT"},
    {STATS_TYPE_MX, "MX"},	 {STATS_TYPE_NS, "NS"},	    {STATS_TYPE_SOA, "SOA"},
    {STATS_TYPE_OTHER, "other"},
};

#define NTYPES (sizeof(type_stats) / sizeof(type_stats[0]))

static void read_counters(const api_t *api, unsigned long long *v)
{
	memset(v, 0, sizeof(*v) * STATS_COUNT);
	if (api->hooks.query_stats)
		api->hooks.query_stats(api->hooks.ctx, v, STATS_COUNT);
}

typedef struct {
	long count;
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen;
} count_t;

static int count_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	count_t *c = ctx;

	if (set->count == 0 || (keylen == c->keylen && memcmp(key, c->key, keylen) == 0))
		return 0;
	c->count++;
	memcpy(c->key, key, keylen);
	c->keylen = keylen;
	return 0;
}

long api_count_names(store_rtxn_t *t)
{
	count_t c = {0};
	int ret = store_iter(t, NULL, 0, count_cb, &c);

	return ret < 0 ? 0 : c.count;
}

const char *api_rcode_name(unsigned rcode)
{
	return rcode_names[rcode & 15];
}

/* Store facts for stats and metrics; zeros when the store cannot be read. */
static void store_facts(api_t *api, uint64_t *gen, long *names)
{
	store_rtxn_t *t = NULL;

	*gen = 0;
	*names = 0;
	if (store_read_begin(api->store, &t) < 0)
		return;
	*gen = store_generation(t);
	*names = api_count_names(t);
	store_read_end(t);
}

static const struct {
	unsigned stat;
	const char *json; /* key in /skydns/stats "forwarder" or "cache" */
	const char *metric;
	const char *help;
} fwd_stats[] = {
    {STATS_FWD_FORWARDED, "forwarded", "skydns_forward_queries_total",
     "Questions sent to upstream servers (first try)."},
    {STATS_FWD_TIMEOUTS, "timeouts", "skydns_forward_timeouts_total",
     "Upstream tries that got no usable answer in time."},
    {STATS_FWD_ERRORS, "errors", "skydns_forward_errors_total",
     "Upstream answers malformed or SERVFAIL/REFUSED/FORMERR/NOTIMP."},
    {STATS_FWD_IGNORED, "ignored", "skydns_forward_ignored_total",
     "Upstream packets ignored: unknown ID, wrong source or question."},
    {STATS_FWD_SERVFAIL, "servfail", "skydns_forward_servfail_total",
     "Clients answered SERVFAIL by the forwarder."},
    {STATS_FWD_DROPS, "drops", "skydns_forward_drops_total",
     "Forwarded queries dropped: in-flight table full."},
    {STATS_FWD_TCP, "tcpRetries", "skydns_forward_tcp_retries_total",
     "Truncated upstream answers asked again over TCP."},
    {STATS_FWD_SHARE_DROPS, "shareDrops", "skydns_forward_share_drops_total",
     "Forwarded queries answered SERVFAIL at once: the client's /24 (/56) already held its "
     "share of the in-flight table (forward-max-per-client)."},
    {STATS_FWD_SCRUBBED, "scrubbed", "skydns_forward_scrubbed_total",
     "Upstream records dropped: off the answer's chain and out of bailiwick, or for local "
     "names."},
    {STATS_FWD_JOINED_WORKERS, "joinedWorkers", "skydns_forward_joined_workers_total",
     "Questions not sent upstream: another worker was asking them already, its answer "
     "came through the shared cache."},
    {STATS_CACHE_HITS, "hits", "skydns_cache_hits_total", "Forwarded queries answered from cache."},
    {STATS_CACHE_MISSES, "misses", "skydns_cache_misses_total", "Cache lookups that missed."},
    {STATS_CACHE_EVICTIONS, "evictions", "skydns_cache_evictions_total",
     "Live cache entries evicted to make room."},
    {STATS_CACHE_STALE, "stale", "skydns_cache_stale_answers_total",
     "Answers served past their TTL (serve-stale): every upstream failed or was slower than "
     "stale-answer-timeout."},
    {STATS_CACHE_PREFETCH, "prefetches", "skydns_cache_prefetches_total",
     "Cache hits in the last 10 % of their TTL that refreshed the entry in the background."},
};

#define NFWD (sizeof(fwd_stats) / sizeof(fwd_stats[0]))

static json_t *fwd_json(const unsigned long long *v)
{
	json_t *o = json_object();

	for (size_t i = 0; i < NFWD; i++)
		if (fwd_stats[i].stat < STATS_CACHE_HITS)
			json_object_set_new(o, fwd_stats[i].json,
					    json_integer((json_int_t)v[fwd_stats[i].stat]));
	return o;
}

static json_t *cache_json(const unsigned long long *v)
{
	json_t *o = json_object();

	for (size_t i = 0; i < NFWD; i++)
		if (fwd_stats[i].stat >= STATS_CACHE_HITS)
			json_object_set_new(o, fwd_stats[i].json,
					    json_integer((json_int_t)v[fwd_stats[i].stat]));
	json_object_set_new(o, "entries", json_integer((json_int_t)v[STATS_CACHE_ENTRIES]));
	return o;
}

int api_stats_handle(api_t *api, struct mg_connection *c, const char *rest)
{
	unsigned long long v[STATS_COUNT];
	json_t *rc = json_object(), *types = json_object();
	uint64_t gen;
	long names;

	(void)rest;
	read_counters(api, v);
	store_facts(api, &gen, &names);
	for (unsigned i = 0; i < 16; i++) {
		if (v[STATS_RCODE0 + i] || i <= 5)
			json_object_set_new(rc, rcode_names[i],
					    json_integer((json_int_t)v[STATS_RCODE0 + i]));
	}
	json_object_set_new(rc, "BADVERS", json_integer((json_int_t)v[STATS_BADVERS]));
	json_object_set_new(rc, "BADCOOKIE", json_integer((json_int_t)v[STATS_BADCOOKIE]));
	for (size_t i = 0; i < NTYPES; i++)
		json_object_set_new(types, type_stats[i].name,
				    json_integer((json_int_t)v[type_stats[i].stat]));
	return api_reply_json(
	    c, 200,
	    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:I,s:I,s:o,s:o}", "queries",
		      (json_int_t)v[STATS_QUERIES], "udp", (json_int_t)v[STATS_UDP], "tcp",
		      (json_int_t)v[STATS_TCP], "truncated", (json_int_t)v[STATS_TRUNCATED],
		      "dropped", (json_int_t)v[STATS_DROPPED], "forward",
		      (json_int_t)v[STATS_FORWARD], "rcode", rc, "qtype", types, "domainSize",
		      (json_int_t)names, "generation", (json_int_t)gen, "forwarder", fwd_json(v),
		      "cache", cache_json(v)));
}

/* A growable text buffer for the exposition; `oom` sticks once set. */
typedef struct {
	char *p;
	size_t len, cap;
	bool oom;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int tries = 0; tries < 2 && !b->oom; tries++) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = (b->cap + (size_t)n) * 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

static void metric_head(sbuf_t *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_queries(sbuf_t *b, const unsigned long long *v)
{
	metric_head(b, "skydns_queries_total", "counter", "DNS queries received, by transport.");
	sb_printf(b, "skydns_queries_total{proto=\"udp\"} %llu\n", v[STATS_UDP]);
	sb_printf(b, "skydns_queries_total{proto=\"tcp\"} %llu\n", v[STATS_TCP]);
	metric_head(b, "skydns_responses_total", "counter", "DNS responses sent, by rcode.");
	for (unsigned i = 0; i < 16; i++) {
		if (v[STATS_RCODE0 + i] || i <= 5)
			sb_printf(b, "skydns_responses_total{rcode=\"%s\"} %llu\n", rcode_names[i],
				  v[STATS_RCODE0 + i]);
	}
	sb_printf(b, "skydns_responses_total{rcode=\"BADVERS\"} %llu\n", v[STATS_BADVERS]);
	sb_printf(b, "skydns_responses_total{rcode=\"BADCOOKIE\"} %llu\n", v[STATS_BADCOOKIE]);
	metric_head(
	    b, "skydns_tsig_errors_total", "counter",
	    "Signed requests answered NOTAUTH (RFC 8945): unknown key, wrong MAC, clock skew.");
	sb_printf(b, "skydns_tsig_errors_total{error=\"BADKEY\"} %llu\n", v[STATS_TSIG_BADKEY]);
	sb_printf(b, "skydns_tsig_errors_total{error=\"BADSIG\"} %llu\n", v[STATS_TSIG_BADSIG]);
	sb_printf(b, "skydns_tsig_errors_total{error=\"BADTIME\"} %llu\n", v[STATS_TSIG_BADTIME]);
	metric_head(b, "skydns_queries_by_type_total", "counter", "DNS queries, by question type.");
	for (size_t i = 0; i < NTYPES; i++)
		sb_printf(b, "skydns_queries_by_type_total{type=\"%s\"} %llu\n", type_stats[i].name,
			  v[type_stats[i].stat]);
	metric_head(b, "skydns_truncated_total", "counter", "UDP responses sent with TC set.");
	sb_printf(b, "skydns_truncated_total %llu\n", v[STATS_TRUNCATED]);
	metric_head(b, "skydns_dropped_total", "counter", "Packets dropped without a reply.");
	sb_printf(b, "skydns_dropped_total %llu\n", v[STATS_DROPPED]);
	metric_head(b, "skydns_forwarded_total", "counter", "Queries handed to the forwarder.");
	sb_printf(b, "skydns_forwarded_total %llu\n", v[STATS_FORWARD]);
	for (size_t i = 0; i < NFWD; i++) {
		metric_head(b, fwd_stats[i].metric, "counter", fwd_stats[i].help);
		sb_printf(b, "%s %llu\n", fwd_stats[i].metric, v[fwd_stats[i].stat]);
	}
	metric_head(b, "skydns_cache_entries", "gauge", "Answers held in the cache now.");
	sb_printf(b, "skydns_cache_entries %llu\n", v[STATS_CACHE_ENTRIES]);
	metric_head(b, "skydns_lookup_cache_hits_total", "counter",
		    "Store lookups answered by the workers' lookup cache ([Store] lookup-cache).");
	sb_printf(b, "skydns_lookup_cache_hits_total %llu\n", v[STATS_LOOKUP_HITS]);
	metric_head(b, "skydns_lookup_cache_misses_total", "counter",
		    "Store lookups that searched the store: not cached yet, evicted, or changed.");
	sb_printf(b, "skydns_lookup_cache_misses_total %llu\n", v[STATS_LOOKUP_MISSES]);
	metric_head(b, "skydns_rrl_responses_total", "counter",
		    "UDP replies over the response rate limit, by action.");
	sb_printf(b, "skydns_rrl_responses_total{action=\"dropped\"} %llu\n", v[STATS_RRL_DROPPED]);
	sb_printf(b, "skydns_rrl_responses_total{action=\"slipped\"} %llu\n", v[STATS_RRL_SLIPPED]);
	metric_head(b, "skydns_tcp_refused_total", "counter",
		    "TCP connections closed at accept: per-worker or per-client cap reached.");
	sb_printf(b, "skydns_tcp_refused_total %llu\n", v[STATS_TCP_REFUSED]);
	metric_head(
	    b, "skydns_tcp_closed_total", "counter",
	    "TCP connections closed by the server, by reason (refusals at accept included).");
	sb_printf(b, "skydns_tcp_closed_total{reason=\"idle\"} %llu\n", v[STATS_TCP_CLOSE_IDLE]);
	sb_printf(b, "skydns_tcp_closed_total{reason=\"message_timeout\"} %llu\n",
		  v[STATS_TCP_CLOSE_MSG_TIMEOUT]);
	sb_printf(b, "skydns_tcp_closed_total{reason=\"evicted\"} %llu\n",
		  v[STATS_TCP_CLOSE_EVICTED]);
	sb_printf(b, "skydns_tcp_closed_total{reason=\"client_limit\"} %llu\n",
		  v[STATS_TCP_REFUSED_CLIENT]);
	sb_printf(b, "skydns_tcp_closed_total{reason=\"pool_full\"} %llu\n",
		  v[STATS_TCP_REFUSED_FULL]);
	metric_head(b, "skydns_tcp_accept_paused_total", "counter",
		    "TCP accepts that failed for want of file descriptors or memory (EMFILE, "
		    "ENFILE, ENOBUFS, ENOMEM); accepting resumes on the next timer tick.");
	sb_printf(b, "skydns_tcp_accept_paused_total %llu\n", v[STATS_TCP_ACCEPT_PAUSED]);
	metric_head(b, "skydns_ring_full_total", "counter",
		    "I/O operations dropped (a reply, a TCP connection) or deferred (a re-arm) "
		    "because the io_uring submission queue stayed full.");
	sb_printf(b, "skydns_ring_full_total %llu\n", v[STATS_RING_FULL]);
	metric_head(b, "skydns_querylog_lines_total", "counter",
		    "Query log ([Log] query-log) lines written to the file.");
	sb_printf(b, "skydns_querylog_lines_total %llu\n", v[STATS_QLOG_WRITTEN]);
	metric_head(b, "skydns_querylog_dropped_total", "counter",
		    "Query log records not kept: a worker's ring was full because the writer "
		    "(the disk) was behind; the query was answered all the same.");
	sb_printf(b, "skydns_querylog_dropped_total{reason=\"ring_full\"} %llu\n",
		  v[STATS_QLOG_DROPPED]);
	sb_printf(b, "skydns_querylog_dropped_total{reason=\"write_failed\"} %llu\n",
		  v[STATS_QLOG_LOST]);
}

/* Prometheus wants cumulative buckets; the workers count each bucket on its own. */
static void metrics_latency(sbuf_t *b, const unsigned long long *v)
{
	const char *name = "skydns_request_duration_seconds";
	unsigned long long below = 0;

	metric_head(
	    b, name, "histogram",
	    "Time from reading a question to handing its answer from the store to the "
	    "kernel (UDP: the time of its receive batch). Forwarded answers are not in it.");
	for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++) {
		below += v[STATS_LAT0 + i];
		if (i < STATS_LAT_BUCKETS - 1)
			sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, stats_lat_le_ns(i) / 1e9,
				  below);
		else
			sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, below);
	}
	sb_printf(b, "%s_sum %.9f\n%s_count %llu\n", name, v[STATS_LAT_SUM_NS] / 1e9, name, below);
}

/* Size of the LMDB file: what the store costs on disk (and at most in page cache). */
static long long store_file_size(const api_t *api)
{
	char path[4096];
	struct stat st;

	if (!api->conf->data_dir)
		return -1;
	snprintf(path, sizeof(path), "%s/data.mdb", api->conf->data_dir);
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* The store's map: how big it is, and how often another process grew it under us. */
static void metrics_store_map(sbuf_t *b, api_t *api)
{
	store_stats_t st;

	store_stats(api->store, &st);
	metric_head(b, "skydns_store_map_size_bytes", "gauge",
		    "Size of the store's memory map (grows when another process grows the store).");
	sb_printf(b, "skydns_store_map_size_bytes %zu\n", st.map_bytes);
	metric_head(b, "skydns_store_map_resizes_total", "counter",
		    "Times the store was re-mapped because another process grew it.");
	sb_printf(b, "skydns_store_map_resizes_total %llu\n", (unsigned long long)st.map_resizes);
}

/* Build, store file and API facts: things not counted by the workers. */
static void metrics_api(sbuf_t *b, api_t *api)
{
	long long size = store_file_size(api);

	metric_head(b, "skydns_build_info", "gauge", "Always 1; the version is in the label.");
	sb_printf(b, "skydns_build_info{version=\"%s\"} 1\n", SKYDNS_VERSION);
	if (size >= 0) {
		metric_head(b, "skydns_store_size_bytes", "gauge",
			    "Size of the store file data.mdb.");
		sb_printf(b, "skydns_store_size_bytes %lld\n", size);
	}
	metric_head(b, "skydns_api_requests_total", "counter",
		    "Admin API replies, by HTTP status (this scrape not yet counted).");
	for (unsigned i = 0; i < API_NCODES; i++) {
		int code = api_code_of_slot(i);
		unsigned long long v = atomic_load_explicit(&api->replies[i], memory_order_relaxed);

		if (code)
			sb_printf(b, "skydns_api_requests_total{code=\"%d\"} %llu\n", code, v);
		else
			sb_printf(b, "skydns_api_requests_total{code=\"other\"} %llu\n", v);
	}
}

static uint64_t meta_or_zero(store_rtxn_t *t, const char *key)
{
	uint64_t v = 0;

	return store_meta_u64(t, key, &v) == 0 ? v : 0;
}

/* A counter or gauge a watcher keeps in the store's meta under key. */
static void meta_counter(sbuf_t *b, store_rtxn_t *t, const char *name, const char *type,
			 const char *help, const char *key)
{
	metric_head(b, name, type, help);
	sb_printf(b, "%s %llu\n", name, (unsigned long long)meta_or_zero(t, key));
}

/*
 * A latency histogram a watcher keeps in the store's meta: per bucket (not
 * cumulative) under "<prefix><bound>ms", the rest under "<prefix>inf", the
 * sum in microseconds under sum_key. Bounds in ms.
 */
static void meta_histogram(sbuf_t *b, store_rtxn_t *t, const char *h, const char *help,
			   const unsigned *bounds, unsigned n, const char *prefix,
			   const char *sum_key)
{
	unsigned long long below = 0;
	char key[64];

	metric_head(b, h, "histogram", help);
	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s%ums", prefix, bounds[i]);
		below += meta_or_zero(t, key);
		sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", h, bounds[i] / 1e3, below);
	}
	snprintf(key, sizeof(key), "%sinf", prefix);
	below += meta_or_zero(t, key);
	sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", h, below);
	sb_printf(b, "%s_sum %.6f\n%s_count %llu\n", h, meta_or_zero(t, sum_key) / 1e6, h, below);
}

/* What skydns-watch-etcd recorded in the store's meta (it is another process). */
static void metrics_etcd(sbuf_t *b, api_t *api)
{
	static const unsigned bounds[] = STORE_ETCD_LAT_BOUNDS;
	store_rtxn_t *t = NULL;

	if (!api->conf->etcd_servers || store_read_begin(api->store, &t) < 0)
		return;
	meta_counter(b, t, "skydns_etcd_revision_applied", "gauge",
		     "etcd revision the store holds.", STORE_ETCD_REV);
	meta_counter(b, t, "skydns_etcd_revision_seen", "gauge",
		     "Highest etcd revision the watcher was told of.", STORE_ETCD_SEEN_REV);
	meta_counter(b, t, "skydns_etcd_events_applied_total", "counter",
		     "etcd keys applied to the store (puts and deletes).", STORE_ETCD_EVENTS);
	meta_counter(b, t, "skydns_etcd_rereads_total", "counter",
		     "Full reads of the prefix committed (first sync, compaction).",
		     STORE_ETCD_REREADS);
	meta_counter(b, t, "skydns_etcd_invalid_records_total", "counter",
		     "etcd values skipped as invalid (logged with their key).", STORE_ETCD_BAD);
	meta_counter(b, t, "skydns_etcd_errors_total", "counter",
		     "Failed etcd reads and watches (counted at the next commit).",
		     STORE_ETCD_ERRORS);
	meta_histogram(b, t, "skydns_etcd_event_commit_seconds",
		       "Time from a watch message's arrival to its batch's commit (before fsync).",
		       bounds, STORE_ETCD_LAT_NBOUNDS, STORE_ETCD_LAT_PREFIX, STORE_ETCD_LAT_SUM);
	store_read_end(t);
}

/* skydns-probe's counters: each live probe maps <data-dir>/probe-<id>.stats (it is
 * another process, and committing counters to the store would move the SOA
 * serial at every check). Files of dead probes (pid gone) are skipped. */
#define PROBES_MAX 16

typedef struct {
	const char *name, *type, *help;
	size_t off;
} probe_metric_t;

#define PM(n, t, h, f)                                                                             \
	{                                                                                          \
		n, t, h, offsetof(probe_stats_t, f)                                                \
	}
static const probe_metric_t probe_metrics[] = {
    PM("skydns_probe_checks_total", "counter", "Checks finished (one per address and round).",
       checks),
    PM("skydns_probe_failures_total", "counter", "Checks that failed.", failures),
    PM("skydns_probe_refused_total", "counter", "TCP connects refused.", refused),
    PM("skydns_probe_timeouts_total", "counter", "Attempts unanswered within check-timeout.",
       timeouts),
    PM("skydns_probe_errors_total", "counter", "Attempts failed otherwise (unreachable, EMFILE).",
       errors),
    PM("skydns_probe_down_changes_total", "counter", "State changes UP -> DOWN.", to_down),
    PM("skydns_probe_up_changes_total", "counter", "State changes DOWN -> UP.", to_up),
    PM("skydns_probe_writes_total", "counter", "Health statements written.", writes),
    PM("skydns_probe_deferred_total", "counter",
       "Writes skipped because a manual statement holds the address.", deferred),
    PM("skydns_probe_saturated_total", "counter", "Passes that found max-checks in flight.",
       saturated),
    PM("skydns_probe_addresses_manual", "gauge",
       "Owned addresses whose health was set by hand (the probe does not write them).", manual),
    PM("skydns_probe_addresses", "gauge", "Addresses found in the local zones.", targets),
    PM("skydns_probe_addresses_owned", "gauge", "Addresses this probe checks.", owned),
    PM("skydns_probe_addresses_down", "gauge", "Owned addresses DOWN now.", down),
    PM("skydns_probe_peers", "gauge", "Live probes sharing the addresses.", probes_live),
};
#define NPROBE_METRICS (sizeof(probe_metrics) / sizeof(probe_metrics[0]))

static size_t probe_files(const char *dir, const probe_stats_t **out, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	while (d && n < cap && (de = readdir(d))) {
		char path[4096];
		size_t len = strlen(de->d_name);
		struct stat sb;
		int fd;

		if (strncmp(de->d_name, "probe-", 6) != 0 || len < 12 ||
		    strcmp(de->d_name + len - 6, ".stats") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		void *p = fstat(fd, &sb) == 0 && sb.st_size == (off_t)sizeof(probe_stats_t)
			      ? mmap(NULL, sizeof(probe_stats_t), PROT_READ, MAP_SHARED, fd, 0)
			      : MAP_FAILED;
		close(fd);
		if (p == MAP_FAILED)
			continue;
		const probe_stats_t *st = p;
		if (st->magic != PROBE_STATS_MAGIC || st->pid <= 0 ||
		    (kill((pid_t)st->pid, 0) < 0 && errno == ESRCH)) {
			munmap(p, sizeof(probe_stats_t));
			continue;
		}
		out[n++] = st;
	}
	if (d)
		closedir(d);
	return n;
}

static uint64_t pload(const probe_stats_t *st, size_t off)
{
	return atomic_load_explicit((_Atomic uint64_t *)((char *)st + off), memory_order_relaxed);
}

static void metrics_probe(sbuf_t *b, api_t *api)
{
	static const unsigned bounds[] = PROBE_STATS_LAT_BOUNDS;
	const char *h = "skydns_probe_check_seconds";
	const probe_stats_t *st[PROBES_MAX];
	size_t n = api->conf->data_dir ? probe_files(api->conf->data_dir, st, PROBES_MAX) : 0;
	char id[PROBE_STATS_ID_MAX];

	if (n == 0)
		return;
	for (size_t m = 0; m < NPROBE_METRICS; m++) {
		metric_head(b, probe_metrics[m].name, probe_metrics[m].type, probe_metrics[m].help);
		for (size_t i = 0; i < n; i++) {
			snprintf(id, sizeof(id), "%.*s", (int)sizeof(id) - 1, st[i]->id);
			sb_printf(b, "%s{probe=\"%s\"} %llu\n", probe_metrics[m].name, id,
				  (unsigned long long)pload(st[i], probe_metrics[m].off));
		}
	}
	metric_head(b, h, "histogram", "Latency of successful check attempts (connect, echo).");
	for (size_t i = 0; i < n; i++) {
		unsigned long long below = 0;

		snprintf(id, sizeof(id), "%.*s", (int)sizeof(id) - 1, st[i]->id);
		for (unsigned k = 0; k <= PROBE_STATS_LAT_NBOUNDS; k++) {
			below += atomic_load_explicit(&st[i]->lat[k], memory_order_relaxed);
			if (k < PROBE_STATS_LAT_NBOUNDS)
				sb_printf(b, "%s_bucket{probe=\"%s\",le=\"%g\"} %llu\n", h, id,
					  bounds[k] / 1e3, below);
			else
				sb_printf(b, "%s_bucket{probe=\"%s\",le=\"+Inf\"} %llu\n", h, id,
					  below);
		}
		sb_printf(b, "%s_sum{probe=\"%s\"} %.6f\n%s_count{probe=\"%s\"} %llu\n", h, id,
			  atomic_load_explicit(&st[i]->lat_sum_us, memory_order_relaxed) / 1e6, h,
			  id, below);
		munmap((void *)st[i], sizeof(probe_stats_t));
	}
}

/* What skydns-watch-k8s recorded in the store's meta. */
static void metrics_k8s(sbuf_t *b, api_t *api)
{
	static const unsigned bounds[] = STORE_K8S_LAT_BOUNDS;
	store_rtxn_t *t = NULL;

	if (!api->conf->k8s_enable || store_read_begin(api->store, &t) < 0)
		return;
	meta_counter(b, t, "skydns_k8s_synced", "gauge",
		     "1 once the store holds a committed list of the cluster.", STORE_K8S_SYNCED);
	meta_counter(b, t, "skydns_k8s_objects", "gauge",
		     "Services and EndpointSlices the store holds.", STORE_K8S_OBJECTS);
	meta_counter(b, t, "skydns_k8s_events_total", "counter",
		     "Watch events applied to the store.", STORE_K8S_EVENTS);
	meta_counter(b, t, "skydns_k8s_relists_total", "counter",
		     "Full lists committed (first sync, 410 Gone).", STORE_K8S_RELISTS);
	meta_counter(b, t, "skydns_k8s_resumes_total", "counter",
		     "Watches resumed from a stored resourceVersion without a list.",
		     STORE_K8S_RESUMES);
	meta_counter(b, t, "skydns_k8s_api_errors_total", "counter",
		     "Failed Kubernetes API requests (counted at the next commit).",
		     STORE_K8S_ERRORS);
	meta_counter(b, t, "skydns_k8s_invalid_objects_total", "counter",
		     "Objects skipped as unusable.", STORE_K8S_BAD);
	meta_histogram(b, t, "skydns_k8s_dns_programming_duration_seconds",
		       "Time from an EndpointSlice's last-change-trigger-time (or the event's "
		       "arrival) to the commit of its Service's records.",
		       bounds, STORE_K8S_LAT_NBOUNDS, STORE_K8S_LAT_PREFIX, STORE_K8S_LAT_SUM);
	store_read_end(t);
}

/* Per-upstream forwarding (issue 14): one series per server, labelled by address. */
#define UPSTREAMS_MAX 64

static void metrics_upstreams(sbuf_t *b, api_t *api)
{
	api_upstream_t *u;
	size_t n;

	if (!api->hooks.upstreams || !(u = calloc(UPSTREAMS_MAX, sizeof(*u))))
		return;
	n = api->hooks.upstreams(api->hooks.ctx, u, UPSTREAMS_MAX);
	metric_head(b, "skydns_upstream_queries_total", "counter", "Tries sent to the server.");
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "skydns_upstream_queries_total{server=\"%s\"} %llu\n", u[i].addr,
			  (unsigned long long)u[i].queries);
	metric_head(b, "skydns_upstream_timeouts_total", "counter", "Tries it did not answer.");
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "skydns_upstream_timeouts_total{server=\"%s\"} %llu\n", u[i].addr,
			  (unsigned long long)u[i].timeouts);
	metric_head(b, "skydns_upstream_probes_total", "counter",
		    "Health probes (. NS) sent to it after it failed.");
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "skydns_upstream_probes_total{server=\"%s\"} %llu\n", u[i].addr,
			  (unsigned long long)u[i].probes);
	metric_head(b, "skydns_upstream_responses_total", "counter", "Its answers, by rcode.");
	for (size_t i = 0; i < n; i++)
		for (unsigned k = 0; k < 16; k++)
			if (u[i].rcode[k] || k <= 5)
				sb_printf(b,
					  "skydns_upstream_responses_total{server=\"%s\",rcode="
					  "\"%s\"} %llu\n",
					  u[i].addr, rcode_names[k],
					  (unsigned long long)u[i].rcode[k]);
	metric_head(b, "skydns_upstream_healthy", "gauge",
		    "1 while every worker uses the server, 0 once one took it out (max-fails).");
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "skydns_upstream_healthy{server=\"%s\"} %d\n", u[i].addr,
			  u[i].healthy ? 1 : 0);
	metric_head(b, "skydns_upstream_srtt_seconds", "gauge",
		    "Smoothed round trip (highest of the workers'; a timeout counts its try).");
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "skydns_upstream_srtt_seconds{server=\"%s\"} %.3f\n", u[i].addr,
			  u[i].srtt_ms / 1e3);
	metric_head(b, "skydns_upstream_rtt_seconds", "histogram", "Round trip of its answers.");
	for (size_t i = 0; i < n; i++) {
		unsigned long long below = 0;
		for (unsigned k = 0; k < API_RTT_BUCKETS; k++) {
			below += u[i].rtt[k];
			if (k + 1 < API_RTT_BUCKETS)
				sb_printf(b,
					  "skydns_upstream_rtt_seconds_bucket{server=\"%s\",le="
					  "\"%g\"} %llu\n",
					  u[i].addr, u[i].rtt_le_ms[k] / 1e3, below);
			else
				sb_printf(b,
					  "skydns_upstream_rtt_seconds_bucket{server=\"%s\",le="
					  "\"+Inf\"} %llu\n",
					  u[i].addr, below);
		}
		sb_printf(b, "skydns_upstream_rtt_seconds_sum{server=\"%s\"} %.3f\n", u[i].addr,
			  u[i].rtt_sum_ms / 1e3);
		sb_printf(b, "skydns_upstream_rtt_seconds_count{server=\"%s\"} %llu\n", u[i].addr,
			  below);
	}
	free(u);
}

int api_metrics_handle(api_t *api, struct mg_connection *c)
{
	unsigned long long v[STATS_COUNT];
	sbuf_t b = {.cap = 8192};
	uint64_t gen;
	long names;
	int ret;

	if (!(b.p = malloc(b.cap)))
		return api_reply_error(c, 500, "out of memory");
	read_counters(api, v);
	store_facts(api, &gen, &names);
	metric_head(&b, "skydns_up", "gauge", "1 while the server runs.");
	sb_printf(&b, "skydns_up 1\n");
	metric_head(&b, "skydns_ready", "gauge", "1 when ready, 0 while draining.");
	sb_printf(&b, "skydns_ready %d\n", atomic_load(&api->draining) ? 0 : 1);
	metrics_queries(&b, v);
	metrics_latency(&b, v);
	metric_head(&b, "skydns_store_generation", "gauge", "Store generation (SOA serial).");
	sb_printf(&b, "skydns_store_generation %llu\n", (unsigned long long)gen);
	metric_head(&b, "skydns_store_names", "gauge", "Names holding records in the store.");
	sb_printf(&b, "skydns_store_names %ld\n", names);
	metrics_store_map(&b, api);
	metrics_api(&b, api);
	metrics_etcd(&b, api);
	metrics_probe(&b, api);
	metrics_k8s(&b, api);
	metrics_upstreams(&b, api);
	if (b.oom) {
		free(b.p);
		return api_reply_error(c, 500, "out of memory");
	}
	ret = api_reply_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
	free(b.p);
	return ret;
}
