/*
 * etcd.c: the etcd v3 JSON gateway client. Facts it relies on (etcd 3.4.23,
 * shared/controlplane-facts.md §1): keys, values and range_end are base64;
 * int64s come as strings; zero values are omitted (no "kvs" on an empty range,
 * no "type" on a PUT event, no header.revision in a compaction cancel); the
 * watch reply is a chunked stream of {"result":{...}} lines, the first one
 * "created"; a compacted start revision gets "canceled" + "compact_revision".
 */
#include "watchers/etcd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"

#define ETCD_MAX_SERVERS 16
#define ETCD_TIMEOUT_MS 10000 /* one range page; a 1.5 MiB page on a busy box fits */
#define ETCD_CONNECT_MS 2000

struct etcd {
	const char *user, *password;
	char *urls[ETCD_MAX_SERVERS];
	size_t nurls, cur;
	http_t *http;
};

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t etcd_b64_encode(const uint8_t *src, size_t n, char *dst)
{
	size_t o = 0, i = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
		dst[o++] = b64chars[v >> 18];
		dst[o++] = b64chars[(v >> 12) & 63];
		dst[o++] = b64chars[(v >> 6) & 63];
		dst[o++] = b64chars[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < n ? (uint32_t)src[i + 1] << 8 : 0);
		dst[o++] = b64chars[v >> 18];
		dst[o++] = b64chars[(v >> 12) & 63];
		dst[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		dst[o++] = '=';
	}
	dst[o] = 0;
	return o;
}

int etcd_b64_decode(const char *src, size_t n, uint8_t *dst, size_t *outlen)
{
	return base64_decode(src, n, dst, outlen);
}

size_t etcd_prefix_end(const uint8_t *prefix, size_t n, uint8_t *out)
{
	for (size_t i = n; i > 0; i--) {
		if (prefix[i - 1] != 0xff) {
			memcpy(out, prefix, i - 1);
			out[i - 1] = (uint8_t)(prefix[i - 1] + 1);
			return i;
		}
	}
	out[0] = 0;
	return 1;
}

/* An int64 that the gateway sends as a string (a number is accepted too); absent = 0. */
static int get_i64(const json_t *obj, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(obj, name);
	char *end;

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0)
		return ERR_PARSE;
	errno = 0;
	long long x = strtoll(json_string_value(v), &end, 10);
	if (errno || *end)
		return ERR_PARSE;
	*out = x;
	return 0;
}

/* A uint64 string (cluster and member ids use all 64 bits); absent = 0. */
static int get_u64(const json_t *obj, const char *name, uint64_t *out)
{
	const json_t *v = json_object_get(obj, name);
	char *end;

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_value(v)[0] == '-')
		return ERR_PARSE;
	errno = 0;
	unsigned long long x = strtoull(json_string_value(v), &end, 10);
	if (errno || *end)
		return ERR_PARSE;
	*out = x;
	return 0;
}

static bool get_bool(const json_t *obj, const char *name)
{
	return json_is_true(json_object_get(obj, name));
}

/* Decode a base64 member into an owned buffer (NULL, 0 when absent). */
static int get_b64(const json_t *obj, const char *name, uint8_t **out, size_t *len)
{
	const json_t *v = json_object_get(obj, name);
	uint8_t *buf;

	*out = NULL;
	*len = 0;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return ERR_PARSE;
	size_t n = json_string_length(v);
	if (!(buf = malloc(3 * (n / 4) + 3)))
		return -ENOMEM;
	if (etcd_b64_decode(json_string_value(v), n, buf, len) < 0) {
		free(buf);
		return ERR_PARSE;
	}
	*out = buf;
	return 0;
}

/* One mvccpb.KeyValue to fn. @param last if non-NULL, receives an owned copy of the key. */
static int emit_kv(const json_t *kvj, bool del, etcd_kv_fn fn, void *ctx, uint8_t **last,
		   size_t *lastlen)
{
	uint8_t *key = NULL, *val = NULL;
	etcd_kv_t kv = {.del = del};
	int ret;

	if (!json_is_object(kvj))
		return ERR_PARSE;
	if ((ret = get_b64(kvj, "key", &key, &kv.klen)) < 0 ||
	    (ret = get_b64(kvj, "value", &val, &kv.vlen)) < 0 ||
	    (ret = get_i64(kvj, "mod_revision", &kv.mod_rev)) < 0)
		goto out;
	if (!key || kv.klen == 0) {
		ret = ERR_PARSE;
		goto out;
	}
	kv.key = key;
	kv.val = val ? val : (const uint8_t *)"";
	if (fn && (ret = fn(ctx, &kv)) != 0)
		goto out;
	if (last) {
		free(*last);
		*last = key;
		*lastlen = kv.klen;
		key = NULL;
	}
	ret = 0;
out:
	free(key);
	free(val);
	return ret;
}

int etcd_parse_range(const char *body, size_t len, etcd_kv_fn fn, void *ctx,
		     etcd_range_info_t *info)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	const json_t *kvs;
	etcd_range_info_t ri = {0};
	int ret = ERR_PARSE;

	if (!json_is_object(root))
		goto out;
	if (json_object_get(root, "error")) {
		ret = ERR_UPSTREAM;
		goto out;
	}
	if (get_i64(json_object_get(root, "header"), "revision", &ri.header_rev) < 0 ||
	    get_u64(json_object_get(root, "header"), "cluster_id", &ri.cluster_id) < 0 ||
	    get_i64(root, "count", &ri.count) < 0)
		goto out;
	ri.more = get_bool(root, "more");
	kvs = json_object_get(root, "kvs");
	if (kvs && !json_is_array(kvs))
		goto out;
	ret = 0;
	for (size_t i = 0; i < json_array_size(kvs) && ret == 0; i++) {
		ret = emit_kv(json_array_get(kvs, i), false, fn, ctx, &ri.last_key, &ri.last_klen);
		ri.nkvs += ret == 0;
	}
	if (ret == 0) {
		*info = ri;
		ri.last_key = NULL;
	}
out:
	free(ri.last_key);
	json_decref(root);
	return ret;
}

static void copy_text(char *dst, size_t cap, const json_t *v, const char *dflt)
{
	snprintf(dst, cap, "%s", json_is_string(v) ? json_string_value(v) : dflt);
}

int etcd_parse_watch(const char *line, size_t len, etcd_kv_fn fn, void *ctx, etcd_watch_msg_t *msg)
{
	json_t *root = json_loadb(line, len, 0, NULL);
	const json_t *res, *evs, *err;
	etcd_watch_msg_t m = {0};
	int ret = ERR_PARSE;

	if (!json_is_object(root))
		goto out;
	if ((err = json_object_get(root, "error"))) {
		copy_text(m.error, sizeof(m.error),
			  json_is_object(err) ? json_object_get(err, "message") : err,
			  "stream error");
		if (!m.error[0])
			snprintf(m.error, sizeof(m.error), "stream error");
		ret = 0;
		goto done;
	}
	res = json_object_get(root, "result");
	if (!json_is_object(res))
		goto out;
	m.created = get_bool(res, "created");
	m.canceled = get_bool(res, "canceled");
	if (get_i64(res, "compact_revision", &m.compact_rev) < 0 ||
	    get_i64(json_object_get(res, "header"), "revision", &m.header_rev) < 0 ||
	    get_u64(json_object_get(res, "header"), "cluster_id", &m.cluster_id) < 0)
		goto out;
	if (m.canceled)
		copy_text(m.error, sizeof(m.error), json_object_get(res, "cancel_reason"),
			  "watch canceled");
	evs = json_object_get(res, "events");
	if (evs && !json_is_array(evs))
		goto out;
	ret = 0;
	for (size_t i = 0; i < json_array_size(evs) && ret == 0; i++) {
		const json_t *ev = json_array_get(evs, i), *type;
		int64_t rev = 0;

		if (!json_is_object(ev)) {
			ret = ERR_PARSE;
			break;
		}
		type = json_object_get(ev, "type");
		bool del = json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0;
		if (type && !del &&
		    !(json_is_string(type) && !strcmp(json_string_value(type), "PUT"))) {
			ret = ERR_PARSE;
			break;
		}
		if (get_i64(json_object_get(ev, "kv"), "mod_revision", &rev) < 0) {
			ret = ERR_PARSE;
			break;
		}
		ret = emit_kv(json_object_get(ev, "kv"), del, fn, ctx, NULL, NULL);
		if (ret == 0) {
			m.nevents++;
			m.last_rev = rev;
		}
	}
	if (ret != 0)
		goto out;
done:
	*msg = m;
out:
	json_decref(root);
	return ret;
}

int etcd_new(etcd_t **out, const char *servers, const http_tls_t *tls, volatile sig_atomic_t *stop)
{
	etcd_t *e = calloc(1, sizeof(*e));
	const char *p = servers;
	int ret;

	if (!e)
		return -ENOMEM;
	while (p && *p && e->nurls < ETCD_MAX_SERVERS) {
		size_t n = strcspn(p, ",");
		size_t a = 0;
		while (a < n && (p[a] == ' ' || p[a] == '\t'))
			a++;
		size_t b = n;
		while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t' || p[b - 1] == '/'))
			b--;
		if (b > a && !(e->urls[e->nurls++] = strndup(p + a, b - a))) {
			ret = -ENOMEM;
			goto fail;
		}
		p += n + (p[n] == ',');
	}
	if (e->nurls == 0) {
		ret = ERR_INVAL;
		goto fail;
	}
	if ((ret = http_new(&e->http, tls, stop)) < 0)
		goto fail;
	*out = e;
	return 0;
fail:
	etcd_free(e);
	return ret;
}

void etcd_free(etcd_t *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nurls; i++)
		free(e->urls[i]);
	http_free(e->http);
	free(e);
}

const char *etcd_endpoint(const etcd_t *e)
{
	return e->urls[e->cur];
}

bool etcd_failover(etcd_t *e)
{
	e->cur = (e->cur + 1) % e->nurls;
	return e->cur == 0;
}

void etcd_set_auth(etcd_t *e, const char *user, const char *password)
{
	e->user = user;
	e->password = password;
}

static void url_of(const etcd_t *e, const char *path, char *out, size_t cap);

int etcd_authenticate(etcd_t *e)
{
	char url[1024], *body = NULL;
	http_resp_t resp = {0};
	json_t *req = NULL, *root = NULL;
	const json_t *tok;
	int ret;

	/* Never a stale token: with auth off etcd refuses every token (HTTP 401). */
	if ((ret = http_set_token(e->http, NULL)) < 0 || !e->user)
		return ret;
	req = json_pack("{s:s,s:s}", "name", e->user, "password", e->password);
	if (!req || !(body = json_dumps(req, JSON_COMPACT))) {
		ret = -ENOMEM;
		goto out;
	}
	url_of(e, "/v3/auth/authenticate", url, sizeof(url));
	if ((ret = http_post(e->http, url, body, strlen(body), ETCD_TIMEOUT_MS, &resp)) < 0)
		goto out;
	root = resp.body ? json_loadb(resp.body, resp.len, 0, NULL) : NULL;
	tok = json_object_get(root, "token");
	if (resp.status == 200 && json_is_string(tok)) {
		ret = http_set_token(e->http, json_string_value(tok));
		goto out;
	}
	if (resp.body && strstr(resp.body, "authentication is not enabled")) {
		ret = 0; /* auth off in the cluster: plain requests work */
		goto out;
	}
	log_warn("etcd: %s: authenticate as %s: HTTP %ld: %.200s", e->urls[e->cur], e->user,
		 resp.status, resp.body ? resp.body : "");
	ret = resp.status == 400 || resp.status == 401 ? ERR_CONFLICT : ERR_UPSTREAM;
out:
	json_decref(root);
	json_decref(req);
	free(body);
	http_resp_clear(&resp);
	return ret;
}

static void url_of(const etcd_t *e, const char *path, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s", e->urls[e->cur], path);
}

/* A base64 JSON string member's text for a byte string (owned, free()). */
static char *b64_dup(const uint8_t *p, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);

	if (s)
		etcd_b64_encode(p, n, s);
	return s;
}

/* POST one range page. @return as etcd_range_prefix. */
static int range_page(etcd_t *e, const uint8_t *from, size_t flen, const uint8_t *end, size_t elen,
		      size_t limit, int64_t rev, etcd_kv_fn fn, void *ctx, etcd_range_info_t *info)
{
	char url[1024], *k = b64_dup(from, flen), *re = b64_dup(end, elen), *body = NULL;
	http_resp_t resp = {0};
	int ret = -ENOMEM;

	if (!k || !re)
		goto out;
	json_t *req =
	    json_pack("{s:s,s:s,s:I}", "key", k, "range_end", re, "limit", (json_int_t)limit);
	if (req && rev > 0)
		json_object_set_new(req, "revision", json_integer(rev));
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		goto out;
	url_of(e, "/v3/kv/range", url, sizeof(url));
	if ((ret = http_post(e->http, url, body, strlen(body), ETCD_TIMEOUT_MS, &resp)) < 0)
		goto out;
	if (resp.status != 200) {
		/* HTTP 400 code 11: "required revision has been compacted". */
		bool compacted = resp.body && strstr(resp.body, "compacted");
		log_warn("etcd: %s: range: HTTP %ld: %.200s", e->urls[e->cur], resp.status,
			 resp.body ? resp.body : "");
		ret = compacted ? ERR_NOTFOUND : ERR_UPSTREAM;
		goto out;
	}
	ret = etcd_parse_range(resp.body, resp.len, fn, ctx, info);
out:
	http_resp_clear(&resp);
	free(body);
	free(k);
	free(re);
	return ret;
}

int etcd_range_prefix(etcd_t *e, const uint8_t *prefix, size_t plen, size_t page_size,
		      etcd_kv_fn fn, void *ctx, int64_t *rev, uint64_t *cluster_id)
{
	uint8_t *from = NULL, *end = malloc(plen + 1);
	size_t flen = plen, elen;
	int64_t at = 0;
	uint64_t cid = 0;
	int ret = -ENOMEM;

	if (!end || !(from = malloc(plen ? plen : 1)))
		goto out;
	memcpy(from, prefix, plen);
	elen = etcd_prefix_end(prefix, plen, end);
	for (;;) {
		etcd_range_info_t info = {0};

		ret = range_page(e, from, flen, end, elen, page_size, at, fn, ctx, &info);
		if (ret != 0) {
			free(info.last_key);
			goto out;
		}
		if (at == 0) {
			at = info.header_rev;
			cid = info.cluster_id;
		}
		if (!info.more || info.nkvs == 0) {
			free(info.last_key);
			break;
		}
		/* Next page: just after the last key (key || "\0"). */
		uint8_t *nf = realloc(info.last_key, info.last_klen + 1);
		if (!nf) {
			free(info.last_key);
			ret = -ENOMEM;
			goto out;
		}
		nf[info.last_klen] = 0;
		free(from);
		from = nf;
		flen = info.last_klen + 1;
	}
	*rev = at;
	*cluster_id = cid;
	ret = 0;
out:
	free(from);
	free(end);
	return ret;
}

typedef struct {
	const etcd_watch_cb_t *cb;
	bool created;
} watch_state_t;

static int on_watch_line(void *arg, const char *line, size_t len)
{
	watch_state_t *st = arg;
	etcd_watch_msg_t m;
	int ret = etcd_parse_watch(line, len, st->cb->event, st->cb->ctx, &m);

	if (ret != 0)
		return ret;
	st->created |= m.created;
	return st->cb->message ? st->cb->message(st->cb->ctx, &m) : 0;
}

static int on_watch_flush(void *arg)
{
	watch_state_t *st = arg;

	return st->cb->flush ? st->cb->flush(st->cb->ctx) : 0;
}

int etcd_watch(etcd_t *e, const uint8_t *prefix, size_t plen, int64_t start_rev,
	       const etcd_watch_cb_t *cb)
{
	char url[1024], *k = b64_dup(prefix, plen), *re = NULL, *body = NULL;
	uint8_t *end = malloc(plen + 1);
	watch_state_t st = {.cb = cb};
	long status = 0;
	int ret = -ENOMEM;

	if (!k || !end)
		goto out;
	size_t elen = etcd_prefix_end(prefix, plen, end);
	if (!(re = b64_dup(end, elen)))
		goto out;
	json_t *req = json_pack("{s:{s:s,s:s,s:I,s:b}}", "create_request", "key", k, "range_end",
				re, "start_revision", (json_int_t)start_rev, "progress_notify", 1);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		goto out;
	url_of(e, "/v3/watch", url, sizeof(url));
	ret = http_stream(e->http, url, body, strlen(body), ETCD_CONNECT_MS, 0, on_watch_line,
			  on_watch_flush, &st, &status);
	if (ret == 0 || (ret < 0 && status != 0 && status != 200)) {
		if (status != 200)
			log_warn("etcd: %s: watch: HTTP %ld", e->urls[e->cur], status);
		ret = ERR_UPSTREAM; /* the stream should never end by itself */
	}
out:
	free(body);
	free(k);
	free(re);
	free(end);
	return ret;
}

/* ---- leases (skydns-probe) and txns (the API's distributed mode, the probe) ---- */

/* POST a JSON request, parse the reply. @return 0 (*root owned), ERR_UPSTREAM, ... */
static int post_json(etcd_t *e, const char *path, json_t *req, json_t **root)
{
	char url[1024], *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	http_resp_t resp = {0};
	int ret;

	json_decref(req);
	if (!body)
		return -ENOMEM;
	url_of(e, path, url, sizeof(url));
	ret = http_post(e->http, url, body, strlen(body), ETCD_TIMEOUT_MS, &resp);
	free(body);
	if (ret < 0)
		return ret;
	if (resp.status != 200) {
		log_warn("etcd: %s: %s: HTTP %ld: %.200s", e->urls[e->cur], path, resp.status,
			 resp.body ? resp.body : "");
		http_resp_clear(&resp);
		return ERR_UPSTREAM;
	}
	*root = resp.body ? json_loadb(resp.body, resp.len, 0, NULL) : NULL;
	http_resp_clear(&resp);
	return *root ? 0 : ERR_PARSE;
}

int etcd_lease_grant(etcd_t *e, int64_t ttl_s, int64_t *id)
{
	json_t *root = NULL;
	int64_t v = 0;
	int ret =
	    post_json(e, "/v3/lease/grant", json_pack("{s:I}", "TTL", (json_int_t)ttl_s), &root);

	if (ret == 0 && (get_i64(root, "ID", &v) < 0 || v == 0))
		ret = ERR_PARSE;
	json_decref(root);
	if (ret == 0)
		*id = v;
	return ret;
}

int etcd_lease_keepalive(etcd_t *e, int64_t id, int64_t *ttl_s)
{
	json_t *root = NULL;
	int64_t ttl = 0;
	int ret =
	    post_json(e, "/v3/lease/keepalive", json_pack("{s:I}", "ID", (json_int_t)id), &root);

	/* The gateway streams {"result":{...}}; one request gets one result. A lease
	 * that expired comes back without a TTL (zero values are omitted). */
	if (ret == 0) {
		const json_t *r = json_object_get(root, "result");
		if (get_i64(r ? r : root, "TTL", &ttl) < 0)
			ttl = 0;
	}
	json_decref(root);
	if (ret == 0)
		*ttl_s = ttl;
	return ret;
}

int etcd_lease_revoke(etcd_t *e, int64_t id)
{
	json_t *root = NULL;
	int ret = post_json(e, "/v3/lease/revoke", json_pack("{s:I}", "ID", (json_int_t)id), &root);

	json_decref(root);
	return ret;
}

static json_t *b64_json(const uint8_t *p, size_t n)
{
	char *s = b64_dup(p, n);
	json_t *j = s ? json_string(s) : NULL;

	free(s);
	return j;
}

/* The gateway's JSON for a txn (Compare.range_end needs etcd >= 3.3). */
static json_t *txn_json(const etcd_cmp_t *cmp, size_t ncmp, const etcd_op_t *ops, size_t nops)
{
	json_t *req = json_pack("{s:[],s:[],s:[]}", "compare", "success", "failure");
	json_t *ca = json_object_get(req, "compare"), *sa = json_object_get(req, "success");

	for (size_t i = 0; req && i < ncmp; i++) {
		char mod[24];
		json_t *c;

		snprintf(mod, sizeof(mod), "%lld", (long long)cmp[i].mod);
		c = json_pack("{s:s,s:s,s:o,s:s}", "target", "MOD", "result",
			      cmp[i].end ? "LESS" : "EQUAL", "key",
			      b64_json(cmp[i].key, cmp[i].klen), "mod_revision", mod);
		if (c && cmp[i].end)
			json_object_set_new(c, "range_end", b64_json(cmp[i].end, cmp[i].elen));
		if (!c || json_array_append_new(ca, c) < 0) {
			json_decref(req);
			return NULL;
		}
	}
	for (size_t i = 0; req && i < nops; i++) {
		json_t *o = ops[i].del ? json_pack("{s:{s:o}}", "request_delete_range", "key",
						   b64_json(ops[i].key, ops[i].klen))
				       : json_pack("{s:{s:o,s:o}}", "request_put", "key",
						   b64_json(ops[i].key, ops[i].klen), "value",
						   b64_json(ops[i].val, ops[i].vlen));
		if (o && !ops[i].del && ops[i].lease)
			json_object_set_new(json_object_get(o, "request_put"), "lease",
					    json_integer(ops[i].lease));
		if (!o || json_array_append_new(sa, o) < 0) {
			json_decref(req);
			return NULL;
		}
	}
	return req;
}

int etcd_txn(etcd_t *e, const etcd_cmp_t *cmp, size_t ncmp, const etcd_op_t *ops, size_t nops,
	     bool *ok, int64_t *rev)
{
	char url[1024], *body = NULL;
	http_resp_t resp = {0};
	json_t *req = txn_json(cmp, ncmp, ops, nops), *root = NULL;
	int64_t r = 0;
	int ret = -ENOMEM;

	if (!req || !(body = json_dumps(req, JSON_COMPACT)))
		goto out;
	url_of(e, "/v3/kv/txn", url, sizeof(url));
	if ((ret = http_post(e->http, url, body, strlen(body), ETCD_TIMEOUT_MS, &resp)) < 0)
		goto out;
	root = resp.body ? json_loadb(resp.body, resp.len, 0, NULL) : NULL;
	if (resp.status != 200) {
		log_warn("etcd: %s: txn: HTTP %ld: %.200s", e->urls[e->cur], resp.status,
			 resp.body ? resp.body : "");
		/* 5xx and "no leader" are the member's trouble: another one may do. */
		ret = resp.status >= 500 || resp.status == 0 ? ERR_UPSTREAM : ERR_CONFLICT;
		goto out;
	}
	if (!json_is_object(root) || get_i64(json_object_get(root, "header"), "revision", &r) < 0 ||
	    r <= 0) {
		ret = ERR_PARSE;
		goto out;
	}
	/* "succeeded" is omitted when false (a zero value). */
	*ok = json_is_true(json_object_get(root, "succeeded"));
	*rev = r;
	ret = 0;
out:
	json_decref(root);
	json_decref(req);
	free(body);
	http_resp_clear(&resp);
	return ret;
}
