/*
 * api/live: GET /skydns/stats/live, the status page's one data source,
 * polled every second or two by every open page.
 *
 * Cheap by construction: worker counters through the query_stats hook (the
 * relaxed loads /metrics does), the upstream and top-name hooks (published
 * copies, no worker is asked or waited for), one short read txn over the
 * health records and the watchers' meta counters. Two things cost a walk of
 * the whole store and are bounded: the name count is redone at most every
 * API_LIVE_NAMES_MS and only when the generation moved, and the names that
 * use each address are found only with ?names=1 (the page asks every few
 * polls) and at most LIVE_SCAN_MAX rrsets are looked at.
 *
 * History (the graphs' last minutes) is kept by the page: a reply is a
 * snapshot of cumulative counters with its time, and rates are deltas.
 */
#include "api/api_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <civetweb.h>
#include <jansson.h>

#include "api/api_json.h"
#include "common/err.h"
#include "common/stats.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "store/store.h"

#define API_LIVE_NAMES_MS 5000
#define LIVE_HEALTH_MAX 1024 /* health rows in one reply */
#define LIVE_NAMES_PER_ADDR 8
#define LIVE_SCAN_MAX 200000 /* rrsets one ?names=1 looks at */
#define LIVE_TOP 10
#define LIVE_UPSTREAMS_MAX 64

static int64_t now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *jint(unsigned long long v)
{
	return json_integer((json_int_t)v);
}

static json_t *counters_json(const unsigned long long *v)
{
	json_t *rc = json_object(), *lat = json_array(), *le = json_array();

	for (unsigned i = 0; i < 16; i++)
		if (v[STATS_RCODE0 + i] || i <= 5)
			json_object_set_new(rc, api_rcode_name(i), jint(v[STATS_RCODE0 + i]));
	json_object_set_new(rc, "BADVERS", jint(v[STATS_BADVERS]));
	json_object_set_new(rc, "BADCOOKIE", jint(v[STATS_BADCOOKIE]));
	for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++) {
		json_array_append_new(lat, jint(v[STATS_LAT0 + i]));
		if (i + 1 < STATS_LAT_BUCKETS)
			json_array_append_new(le, jint(stats_lat_le_ns(i) / 1000));
	}
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:{s:o,s:o,s:o,s:o},s:{s:o,s:o,s:o,s:o},"
			 "s:{s:o,s:o,s:o}}",
			 "queries", jint(v[STATS_QUERIES]), "udp", jint(v[STATS_UDP]), "tcp",
			 jint(v[STATS_TCP]), "forwarded", jint(v[STATS_FORWARD]), "dropped",
			 jint(v[STATS_DROPPED]), "truncated", jint(v[STATS_TRUNCATED]), "rcode", rc,
			 "cache", "hits", jint(v[STATS_CACHE_HITS]), "misses",
			 jint(v[STATS_CACHE_MISSES]), "entries", jint(v[STATS_CACHE_ENTRIES]),
			 "stale", jint(v[STATS_CACHE_STALE]), "forwarder", "servfail",
			 jint(v[STATS_FWD_SERVFAIL]), "timeouts", jint(v[STATS_FWD_TIMEOUTS]),
			 "errors", jint(v[STATS_FWD_ERRORS]), "drops", jint(v[STATS_FWD_DROPS]),
			 "latency", "le_us", le, "count", lat, "sum_ns", jint(v[STATS_LAT_SUM_NS]));
}

/* ---- health, and the names that use each address ---- */

typedef struct {
	uint8_t addr[16];
	uint8_t len;
	json_t *row;   /* borrowed from the reply's array */
	json_t *names; /* borrowed from row; NULL until ?names=1 */
	size_t nnames;
} hrow_t;

typedef struct {
	hrow_t *rows;
	size_t n, cap;
	bool truncated;
} health_t;

static int health_cb(void *ctx, const uint8_t *addr, size_t len, int status, uint64_t ms,
		     const char *source)
{
	health_t *h = ctx;
	api_addr_t a = {.len = (uint8_t)len};
	char ip[64];

	if (len != 4 && len != 16)
		return 0;
	if (h->n == h->cap) {
		h->truncated = true;
		return 1;
	}
	memcpy(a.b, addr, len);
	api_addr_format(&a, ip, sizeof(ip));
	hrow_t *r = &h->rows[h->n];
	memcpy(r->addr, addr, len);
	r->len = (uint8_t)len;
	/* since/source are optional to the page: an older store's record may lack them. */
	r->row = json_pack("{s:s,s:s,s:I,s:s}", "ip", ip, "status",
			   status == STORE_HEALTH_DOWN ? "DOWN"
			   : status == STORE_HEALTH_UP ? "UP"
						       : "UNKNOWN",
			   "since_ms", (json_int_t)ms, "source", source ? source : "");
	if (r->row)
		h->n++;
	return 0;
}

static int hrow_cmp(const void *a, const void *b)
{
	const hrow_t *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->addr, y->addr, x->len);
}

typedef struct {
	health_t *h;
	size_t scanned;
	bool truncated;
} scan_t;

static void add_name(hrow_t *r, const uint8_t *key, size_t keylen)
{
	uint8_t name[WIRE_NAME_MAX];
	char text[WIRE_NAME_TEXT_MAX];
	size_t len;

	r->nnames++;
	if (r->nnames > LIVE_NAMES_PER_ADDR || wire_key_to_name(key, keylen, name, &len) < 0 ||
	    wire_name_to_text(name, len, text, sizeof(text)) < 0)
		return;
	json_array_append_new(r->names, json_string(text));
}

static int scan_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	scan_t *s = ctx;
	size_t pos = 0;
	store_rr_t rr;

	if (++s->scanned > LIVE_SCAN_MAX) {
		s->truncated = true;
		return 1;
	}
	if (set->type != WIRE_TYPE_A && set->type != WIRE_TYPE_AAAA)
		return 0;
	while (store_rrset_next(set, &pos, &rr) == 1) {
		hrow_t want = {.len = (uint8_t)rr.rdlen}, *r;
		if (rr.rdlen != 4 && rr.rdlen != 16)
			continue;
		memcpy(want.addr, rr.rdata, rr.rdlen);
		r = bsearch(&want, s->h->rows, s->h->n, sizeof(*r), hrow_cmp);
		if (r)
			add_name(r, key, keylen);
	}
	return 0;
}

static json_t *health_json(store_rtxn_t *t, bool names, json_t *out)
{
	health_t h = {.cap = LIVE_HEALTH_MAX};
	json_t *arr = json_array();
	scan_t s = {.h = &h};

	if (!(h.rows = calloc(h.cap, sizeof(*h.rows))) || !arr)
		goto out;
	if (store_health_iter(t, health_cb, &h) < 0)
		json_object_set_new(out, "health_error", json_string("cannot read health records"));
	for (size_t i = 0; i < h.n; i++)
		json_array_append_new(arr, h.rows[i].row);
	json_object_set_new(out, "health_truncated", json_boolean(h.truncated));
	if (!names || h.n == 0)
		goto out;
	for (size_t i = 0; i < h.n; i++) {
		h.rows[i].names = json_array();
		json_object_set_new(h.rows[i].row, "names", h.rows[i].names);
	}
	qsort(h.rows, h.n, sizeof(*h.rows), hrow_cmp);
	store_iter(t, NULL, 0, scan_cb, &s);
	for (size_t i = 0; i < h.n; i++)
		json_object_set_new(h.rows[i].row, "names_total", jint(h.rows[i].nnames));
	json_object_set_new(out, "names_scanned", jint(s.scanned));
	json_object_set_new(out, "names_truncated", json_boolean(s.truncated));
out:
	free(h.rows);
	return arr;
}

/* ---- store and watchers ---- */

static long names_cached(api_t *api, store_rtxn_t *t, uint64_t gen)
{
	int64_t now = now_ms(CLOCK_MONOTONIC), at = atomic_load(&api->names_at);

	if (at && (atomic_load(&api->names_gen) == gen || now - at < API_LIVE_NAMES_MS))
		return atomic_load(&api->names);
	/* One request recounts; the others meanwhile report the last count. */
	if (!atomic_compare_exchange_strong(&api->names_at, &at, now))
		return atomic_load(&api->names);
	long n = api_count_names(t);
	atomic_store(&api->names, n);
	atomic_store(&api->names_gen, gen);
	return n;
}

/* Every u64 meta counter a writer published ("etcd:rev", ...), grouped by its prefix. */
static int meta_cb(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	json_t *groups = ctx, *g;
	char k[128], *colon;

	if (vlen != 8 || klen >= sizeof(k))
		return 0;
	memcpy(k, key, klen);
	k[klen] = '\0';
	if (!(colon = strchr(k, ':')) || colon == k || !colon[1])
		return 0;
	*colon = '\0';
	if (!(g = json_object_get(groups, k))) {
		g = json_object();
		json_object_set_new(groups, k, g);
	}
	uint64_t v = ((uint64_t)wire_read_u32(val) << 32) | wire_read_u32(val + 4);
	json_object_set_new(g, colon + 1, json_integer((json_int_t)v));
	return 0;
}

static void watcher(json_t *groups, const char *name, bool enabled)
{
	json_t *g = json_object_get(groups, name);

	if (!g) {
		if (!enabled)
			return;
		g = json_object();
		json_object_set_new(groups, name, g);
	}
	json_object_set_new(g, "enabled", json_boolean(enabled));
}

static json_t *watchers_json(store_rtxn_t *t, const conf_t *conf)
{
	json_t *groups = json_object();

	store_kv_iter(t, "u64", NULL, 0, meta_cb, groups);
	watcher(groups, "etcd", conf->etcd_servers != NULL);
	watcher(groups, "k8s", conf->k8s_enable);
	watcher(groups, "probe", conf->probe_enable);
	return groups;
}

static json_t *store_json(api_t *api, store_rtxn_t *t, uint64_t gen)
{
	store_stats_t st;

	store_stats(api->store, &st);
	return json_pack("{s:I,s:I,s:I,s:I}", "generation", (json_int_t)gen, "names",
			 (json_int_t)names_cached(api, t, gen), "map_bytes",
			 (json_int_t)st.map_bytes, "map_resizes", (json_int_t)st.map_resizes);
}

/* ---- hooks: upstreams and top names ---- */

static json_t *upstreams_json(api_t *api)
{
	json_t *arr = json_array();
	api_upstream_t *u;
	size_t n;

	if (!api->hooks.upstreams || !(u = calloc(LIVE_UPSTREAMS_MAX, sizeof(*u))))
		return arr;
	n = api->hooks.upstreams(api->hooks.ctx, u, LIVE_UPSTREAMS_MAX);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(
		    arr, json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I}", "server", u[i].addr, "healthy",
				   u[i].healthy, "srtt_ms", (json_int_t)u[i].srtt_ms, "queries",
				   (json_int_t)u[i].queries, "timeouts", (json_int_t)u[i].timeouts,
				   "errors", (json_int_t)u[i].errors, "probes",
				   (json_int_t)u[i].probes));
	free(u);
	return arr;
}

static json_t *top_json(api_t *api)
{
	api_top_name_t t[LIVE_TOP];
	json_t *arr = json_array();
	int n;

	if (!api->hooks.top_names || (n = api->hooks.top_names(api->hooks.ctx, t, LIVE_TOP)) < 0)
		return arr;
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "name", t[i].name, "count",
						     (json_int_t)t[i].count, "error",
						     (json_int_t)t[i].error));
	return arr;
}

static json_t *children_json(api_t *api)
{
	api_child_t ch[8];
	json_t *arr = json_array();
	size_t n;

	if (!api->hooks.children)
		return arr;
	n = api->hooks.children(api->hooks.children_ctx, ch, sizeof(ch) / sizeof(ch[0]));
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_pack("{s:s,s:b,s:i,s:I,s:i}", "name", ch[i].name, "running",
				      ch[i].pid > 0, "pid", ch[i].pid, "since_ms",
				      (json_int_t)ch[i].since_ms, "restarts", (int)ch[i].restarts);
		if (o && ch[i].last_exit != INT_MIN)
			json_object_set_new(o, "last_exit", json_integer(ch[i].last_exit));
		json_array_append_new(arr, o);
	}
	return arr;
}

static bool want_names(struct mg_connection *c)
{
	const char *qs = mg_get_request_info(c)->query_string;
	char v[8];

	return qs && mg_get_var(qs, strlen(qs), "names", v, sizeof(v)) > 0 && strcmp(v, "1") == 0;
}

int api_live_handle(api_t *api, struct mg_connection *c)
{
	unsigned long long v[STATS_COUNT];
	json_t *out;
	store_rtxn_t *t = NULL;
	int ret;

	memset(v, 0, sizeof(v));
	if (api->hooks.query_stats)
		api->hooks.query_stats(api->hooks.ctx, v, STATS_COUNT);
	out = json_pack("{s:I,s:b,s:o,s:o,s:o,s:o}", "time_ms", (json_int_t)now_ms(CLOCK_REALTIME),
			"ready", !atomic_load(&api->draining), "counters", counters_json(v),
			"upstreams", upstreams_json(api), "top", top_json(api), "processes",
			children_json(api));
	if (!out)
		return api_reply_error(c, 500, "out of memory");
	if ((ret = store_read_begin(api->store, &t)) < 0) {
		json_object_set_new(out, "store_error", json_string(err_str(ret)));
		return api_reply_json(c, 200, out);
	}
	uint64_t gen = store_generation(t);
	json_object_set_new(out, "store", store_json(api, t, gen));
	json_object_set_new(out, "watchers", watchers_json(t, api->conf));
	json_object_set_new(out, "health", health_json(t, want_names(c), out));
	store_read_end(t);
	return api_reply_json(c, 200, out);
}
