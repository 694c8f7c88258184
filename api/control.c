/*
 * api/control: the original SkyDNS's control routes, which its operators'
 * scripts call (DESIGN §6):
 *   GET    /skydns/stats/<name>     how often one name was asked (the top-N tables)
 *   GET    /skydns/domain/<name>    the forward cache's answers for a name
 *   DELETE /skydns/domain/<name>    flush them (the next query goes upstream)
 *   GET    /skydns/domainL1/<name>  the store's records of a name, with sources and health
 *   POST   /skydns/domainL1/<name>  re-read the name from etcd first (api/dist.c), then as GET
 *   GET    /skydns/master           run-time settings ({"cacheTtl": s, "maxTtl": s})
 *   POST   /skydns/master           change them ({"cacheTtl": s}; 0 = back to max-ttl)
 * The caches belong to the workers: the hooks post a request to each
 * worker's mailbox and this API thread waits (bounded) for the answers.
 */
#include "api/api_internal.h"
#include "api/api_dist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <civetweb.h>
#include <jansson.h>

#include "api/api_json.h"
#include "api/api_names.h"
#include "api/api_render.h"
#include "common/err.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "store/store.h"

#define CONTROL_SHOW_MAX 256   /* cached answers of one name listed */
#define CONTROL_TTL_MAX 86400u /* engine/cache.h CONTROL_TTL_MAX: longer is never cached */

static int get_only(struct mg_connection *c, const char *method)
{
	if (strcmp(method, "GET") == 0)
		return 0;
	api_reply_error(c, 405, "method %s not allowed here", method);
	return 405;
}

/* A time as RFC 3339 UTC text (`key`) and as Unix seconds (`skey`); none when unknown. */
static void time_field(json_t *doc, const char *key, const char *skey, uint32_t s)
{
	time_t tt = (time_t)s;
	struct tm tm;
	char buf[32];

	if (!s || !gmtime_r(&tt, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return;
	json_object_set_new(doc, key, json_string(buf));
	json_object_set_new(doc, skey, json_integer((json_int_t)s));
}

/* GET /skydns/stats/<name>: the name's estimated count, from the merged top-N tables. */
static int stats_name(api_t *api, struct mg_connection *c, const char *rest)
{
	uint8_t name[WIRE_NAME_MAX];
	char canon[WIRE_NAME_TEXT_MAX];
	api_top_name_t *t;
	size_t len;
	json_t *doc;
	int n;

	if (!rest[0] || api_lookup_name(api->conf, rest, name, &len, canon, sizeof(canon)) < 0)
		return api_reply_error(c, 400, "bad name \"%.255s\"", rest);
	if (!api->hooks.top_names)
		return api_reply_error(c, 404, "name counting is not available");
	if (!(t = calloc(API_TOP_MAX, sizeof(*t))))
		return api_reply_error(c, 500, "out of memory");
	if ((n = api->hooks.top_names(api->hooks.ctx, t, API_TOP_MAX)) < 0) {
		free(t);
		return api_reply_error(c, 503, "name counts: %s", err_str(n));
	}
	/* Space-Saving keeps the heavy hitters only: an unmonitored name was asked at most
	 * as often as the table's least counted one, so 0 with "tracked": false. The times
	 * are those of the monitored slot: since the name (re)entered the table, to the
	 * second, and a table that samples (full) stamps one query in TOPN_SAMPLE. */
	doc = json_pack("{s:s,s:I,s:I,s:b}", "name", canon, "count", (json_int_t)0, "error",
			(json_int_t)0, "tracked", 0);
	for (int i = 0; doc && i < n; i++)
		if (strcmp(t[i].name, canon) == 0) {
			json_object_set_new(doc, "count", json_integer((json_int_t)t[i].count));
			json_object_set_new(doc, "error", json_integer((json_int_t)t[i].error));
			json_object_set_new(doc, "tracked", json_true());
			time_field(doc, "firstQueryTime", "first", t[i].first_s);
			time_field(doc, "lastQueryTime", "last", t[i].last_s);
			break;
		}
	free(t);
	return api_reply_json(c, 200, doc);
}

static json_t *entry_json(const api_cache_entry_t *e)
{
	char type[16];

	wire_type_to_text(e->qtype, type, sizeof(type));
	return json_pack("{s:s,s:s,s:I,s:b,s:b,s:I}", "type", type, "rcode",
			 api_rcode_name(e->rcode), "ttl", (json_int_t)e->ttl_left, "do", e->do_bit,
			 "cd", e->cd, "worker", (json_int_t)e->worker);
}

/* GET|DELETE /skydns/domain/<name>: show or flush the forward cache's answers for a name. */
static int domain(api_t *api, struct mg_connection *c, const char *method, const char *rest)
{
	uint8_t name[WIRE_NAME_MAX];
	char canon[WIRE_NAME_TEXT_MAX];
	api_cache_entry_t *e;
	size_t len, n = 0;
	unsigned answered;
	json_t *arr, *doc;
	bool del = strcmp(method, "DELETE") == 0;

	if (!del && strcmp(method, "GET") != 0)
		return api_reply_error(c, 405, "method %s not allowed here", method);
	if (!rest[0] || api_lookup_name(api->conf, rest, name, &len, canon, sizeof(canon)) < 0)
		return api_reply_error(c, 400, "bad name \"%.255s\"", rest);
	if (!api->hooks.cache_name)
		return api_reply_error(c, 404, "the forward cache is not reachable");
	if (del) {
		answered =
		    api->hooks.cache_name(api->hooks.ctx, API_CACHE_FLUSH, name, len, NULL, 0, &n);
		return api_reply_json(c, answered ? 200 : 503,
				      json_pack("{s:s,s:I,s:I}", "name", canon, "flushed",
						(json_int_t)n, "workers", (json_int_t)answered));
	}
	if (!(e = calloc(CONTROL_SHOW_MAX, sizeof(*e))))
		return api_reply_error(c, 500, "out of memory");
	answered = api->hooks.cache_name(api->hooks.ctx, API_CACHE_SHOW, name, len, e,
					 CONTROL_SHOW_MAX, &n);
	arr = json_array();
	for (size_t i = 0; arr && i < n && i < CONTROL_SHOW_MAX; i++)
		json_array_append_new(arr, entry_json(&e[i]));
	free(e);
	doc = json_pack("{s:s,s:I,s:I,s:o}", "name", canon, "count", (json_int_t)n, "workers",
			(json_int_t)answered, "answers", arr);
	return api_reply_json(c, answered ? 200 : 503, doc);
}

typedef struct {
	store_rtxn_t *t;
	size_t keylen;
	json_t *records;
	int err;
} l1_t;

static const char *health_of(store_rtxn_t *t, uint16_t type, const store_rr_t *rr)
{
	store_health_rec_t h;

	if ((type != WIRE_TYPE_A || rr->rdlen != 4) && (type != WIRE_TYPE_AAAA || rr->rdlen != 16))
		return NULL;
	if (store_health_lookup(t, rr->rdata, rr->rdlen, &h) < 0)
		return "UP"; /* no record: an address counts as up */
	return h.status == STORE_HEALTH_DOWN ? "DOWN" : "UP";
}

static int l1_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	l1_t *l = ctx;
	char type[16], src[STORE_SOURCE_MAX];
	size_t pos = 0;
	store_rr_t rr;

	(void)key;
	if (keylen != l->keylen)
		return 1; /* a name below: the walk is past this name's rrsets */
	wire_type_to_text(set->type, type, sizeof(type));
	while (store_rrset_next(set, &pos, &rr) == 1) {
		const char *h = health_of(l->t, set->type, &rr);
		json_t *o, *v = api_render_value(set->type, rr.rdata, rr.rdlen);

		if (store_source_name(l->t, rr.source_id, src, sizeof(src)) < 0)
			snprintf(src, sizeof(src), "source #%u", rr.source_id);
		o = json_pack("{s:s,s:I,s:o*,s:s}", "type", type, "ttl", (json_int_t)rr.ttl,
			      "value", v, "source", src);
		if (!o)
			return l->err = -ENOMEM;
		if (h)
			json_object_set_new(o, "health", json_string(h));
		json_array_append_new(l->records, o);
	}
	return 0;
}

/* GET /skydns/domainL1/<name>: what the store holds at a name, entry by entry. */
static int domain_l1(api_t *api, struct mg_connection *c, const char *method, const char *rest)
{
	api_name_t n;
	l1_t l = {0};
	int ret = ERR_INVAL;

	bool post = strcmp(method, "POST") == 0;
	json_t *reread = NULL;

	/* The original's re-read from etcd. Without etcd there is nothing to re-read from. */
	if (post && !api_dist_on(api))
		return api_reply_error(
		    c, 409,
		    "POST re-reads a name from etcd, and no etcd-servers is "
		    "configured: the store's records come from zone imports, the "
		    "API and the Kubernetes watcher only");
	if (!post && get_only(c, method))
		return 405;
	if (!rest[0] || (ret = api_name_owner(api->conf, rest, &n)) < 0) {
		char msg[512];
		api_name_error(api->conf, "name", rest, rest[0] ? ret : ERR_INVAL, msg,
			       sizeof(msg));
		return api_reply_error(c, 400, "%s", msg);
	}
	if (post) {
		char msg[512];
		int http = api_dist_reread(api, &n, &reread, msg, sizeof(msg));
		if (http != 200)
			return api_reply_error(c, http, "%s", msg);
	}
	if ((ret = store_read_begin(api->store, &l.t)) < 0) {
		json_decref(reread);
		return api_reply_err_code(c, ret, "store");
	}
	l.keylen = n.keylen;
	l.records = json_array();
	ret = store_iter(l.t, n.key, n.keylen, l1_cb, &l);
	store_read_end(l.t);
	if (ret < 0 || l.err < 0) {
		json_decref(l.records);
		json_decref(reread);
		return api_reply_err_code(c, ret < 0 ? ret : l.err, n.text);
	}
	/* After a re-read, an empty name is an answer (etcd has none), not a missing one. */
	if (json_array_size(l.records) == 0 && !reread) {
		json_decref(l.records);
		return api_reply_error(c, 404, "%s: no such name", n.text);
	}
	return api_reply_json(
	    c, 200,
	    json_pack("{s:s,s:o,s:o*}", "name", n.text, "records", l.records, "reread", reread));
}

static json_t *master_doc(api_t *api, uint32_t ttl)
{
	uint32_t max = api->conf->max_ttl ? api->conf->max_ttl : CONTROL_TTL_MAX;

	return json_pack("{s:I,s:I}", "cacheTtl", (json_int_t)(ttl ? ttl : max), "maxTtl",
			 (json_int_t)max);
}

/* GET|POST /skydns/master: the forward cache's TTL cap, changed without a restart. */
static int master(api_t *api, struct mg_connection *c, const char *method)
{
	char *body = NULL;
	size_t len = 0;
	json_t *root, *v;
	uint32_t ttl;

	if (!api->hooks.cache_ttl)
		return api_reply_error(c, 404, "run-time settings are not available");
	if (strcmp(method, "GET") == 0)
		return api_reply_json(c, 200,
				      master_doc(api, api->hooks.cache_ttl(api->hooks.ctx, NULL)));
	if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0)
		return api_reply_error(c, 405, "method %s not allowed here", method);
	if (api_read_body(c, &body, &len) < 0)
		return api_reply_error(c, 400, "cannot read the body");
	/* Depth first: jansson recurses, and civetweb's thread stacks are small. */
	root = api_json_depth_ok(body, len, API_JSON_DEPTH_MAX) ? json_loadb(body, len, 0, NULL)
								: NULL;
	free(body);
	v = json_object_get(root, "cacheTtl");
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > CONTROL_TTL_MAX) {
		json_decref(root);
		return api_reply_error(c, 400,
				       "want {\"cacheTtl\": seconds}, 1 to %u (0: back to max-ttl)",
				       CONTROL_TTL_MAX);
	}
	ttl = (uint32_t)json_integer_value(v);
	json_decref(root);
	ttl = api->hooks.cache_ttl(api->hooks.ctx, &ttl);
	return api_reply_json(c, 200, master_doc(api, ttl));
}

int api_control_handle(api_t *api, struct mg_connection *c, const char *method, const char *p)
{
	if (strncmp(p, "stats/", 6) == 0)
		return get_only(c, method) ? 405 : stats_name(api, c, p + 6);
	if (strncmp(p, "domain/", 7) == 0)
		return domain(api, c, method, p + 7);
	if (strncmp(p, "domainL1/", 9) == 0)
		return domain_l1(api, c, method, p + 9);
	if (strcmp(p, "master") == 0 || strcmp(p, "master/") == 0)
		return master(api, c, method);
	return api_reply_error(c, 404, "no such route");
}
