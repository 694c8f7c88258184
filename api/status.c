/*
 * api/status: backend health by address. PUT /skydns/status/<ip>
 * {"status":"UP"|"DOWN"}, GET /skydns/status/ (all), GET|DELETE
 * /skydns/status/<ip>. The probe writes the same records with source
 * "probe"; a record written here holds the address against the probe until
 * DELETE clears it (README "Health checks"). With etcd configured a write
 * goes to ip-monitor-path<ip> in etcd (api/dist.c).
 */
#include "api/api_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <civetweb.h>
#include <jansson.h>

#include "api/api_dist.h"
#include "api/api_json.h"
#include "common/err.h"
#include "store/store.h"

static const char *health_name(int st)
{
	return st == STORE_HEALTH_DOWN ? "DOWN" : st == STORE_HEALTH_UP ? "UP" : "UNKNOWN";
}

static json_t *health_obj(const uint8_t *addr, size_t len, int status, uint64_t ms,
			  const char *source)
{
	api_addr_t a = {.len = (uint8_t)len};
	time_t secs = (time_t)(ms / 1000u);
	struct tm tm;
	char ip[64], since[32] = "";

	if (len != 4 && len != 16)
		return NULL;
	memcpy(a.b, addr, len);
	api_addr_format(&a, ip, sizeof(ip));
	/* Who said so and since when: "probe" (skydns-probe), "api", "cli" (skydns
	 * -set-status), "etcd" (status keys); a manual statement holds off the probe. */
	if (gmtime_r(&secs, &tm))
		strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:s,s:s,s:I,s:s,s:s}", "ip", ip, "status", health_name(status),
			 "changed_ms", (json_int_t)ms, "since", since, "source",
			 source ? source : "");
}

static int list_cb(void *ctx, const uint8_t *addr, size_t len, int status, uint64_t ms,
		   const char *source)
{
	json_t *o = health_obj(addr, len, status, ms, source);

	if (o)
		json_array_append_new(ctx, o);
	return 0;
}

typedef struct {
	const api_addr_t *want;
	json_t *found;
} one_t;

static int one_cb(void *ctx, const uint8_t *addr, size_t len, int status, uint64_t ms,
		  const char *source)
{
	one_t *o = ctx;

	if (len != o->want->len || memcmp(addr, o->want->b, len) != 0)
		return 0;
	o->found = health_obj(addr, len, status, ms, source);
	return 1;
}

static int get_status(api_t *api, struct mg_connection *c, const api_addr_t *one)
{
	store_rtxn_t *t = NULL;
	json_t *arr = json_array();
	one_t o = {.want = one};
	int ret;

	if (!arr)
		return api_reply_error(c, 500, "out of memory");
	if ((ret = store_read_begin(api->store, &t)) < 0) {
		json_decref(arr);
		return api_reply_err_code(c, ret, "store");
	}
	ret = one ? store_health_iter(t, one_cb, &o) : store_health_iter(t, list_cb, arr);
	store_read_end(t);
	if (ret < 0) {
		json_decref(arr);
		json_decref(o.found);
		return api_reply_err_code(c, ret, "status");
	}
	if (!one)
		return api_reply_json(c, 200, json_pack("{s:o}", "status", arr));
	json_decref(arr);
	if (!o.found)
		return api_reply_error(c, 404, "no status recorded for this address");
	return api_reply_json(c, 200, o.found);
}

/* Body {"status":"UP"|"DOWN"} -> STORE_HEALTH_*, or <0 with a message. */
static int parse_status(const char *body, size_t len, char *err, size_t errlen)
{
	/* Depth first: jansson recurses, and civetweb's thread stacks are small. */
	bool shallow = api_json_depth_ok(body, len, API_JSON_DEPTH_MAX);
	json_t *root = shallow ? json_loadb(body, len, 0, NULL) : NULL;
	const char *s = root ? json_string_value(json_object_get(root, "status")) : NULL;
	int st = -1;

	if (!shallow)
		snprintf(err, errlen, "JSON nested deeper than %d levels", API_JSON_DEPTH_MAX);
	else if (!root)
		snprintf(err, errlen, "invalid JSON");
	else if (s && strcasecmp(s, "UP") == 0)
		st = STORE_HEALTH_UP;
	else if (s && strcasecmp(s, "DOWN") == 0)
		st = STORE_HEALTH_DOWN;
	else
		snprintf(err, errlen, "\"status\" must be \"UP\" or \"DOWN\"");
	json_decref(root);
	return st;
}

static int write_status(api_t *api, struct mg_connection *c, const api_addr_t *a, int st)
{
	store_wtxn_t *w = NULL;
	int ret;

	/* Distributed mode: the monitor key in etcd, so every node sees the status. */
	if (api_dist_on(api))
		return api_dist_status(api, c, a, st);
	if ((ret = store_write_begin(api->store, &w)) < 0)
		return api_reply_err_code(c, ret, "store");
	ret = st ? store_health_set(w, a->b, a->len, st, "api") : store_health_del(w, a->b, a->len);
	if (ret < 0) {
		store_write_abort(w);
		return api_reply_err_code(c, ret, "status");
	}
	if ((ret = store_write_commit(w)) < 0)
		return api_reply_err_code(c, ret, "store commit");
	return 0;
}

static int put_status(api_t *api, struct mg_connection *c, const api_addr_t *a, const char *ip)
{
	char *body = NULL, err[128];
	size_t len = 0;
	int st, ret;

	if ((ret = api_read_body(c, &body, &len)) < 0)
		return ret == API_JSON_TOOBIG ? api_reply_error(c, 413, "body too large")
		       : ret == -ETIMEDOUT    ? api_reply_error(c, 408, "the body came too slowly")
					      : api_reply_error(c, 400, "cannot read the body");
	st = parse_status(body, len, err, sizeof(err));
	free(body);
	if (st < 0)
		return api_reply_error(c, 400, "%s", err);
	if ((ret = write_status(api, c, a, st)) != 0)
		return ret;
	return api_reply_json(c, 200, json_pack("{s:s,s:s}", "ip", ip, "status", health_name(st)));
}

int api_status_handle(api_t *api, struct mg_connection *c, const char *method, const char *rest)
{
	api_addr_t a;
	int ret;

	if (rest[0] == '\0') {
		if (strcmp(method, "GET") != 0)
			return api_reply_error(c, 405, "method %s not allowed here", method);
		return get_status(api, c, NULL);
	}
	if (api_addr_parse(rest, &a) < 0)
		return api_reply_error(c, 400, "bad IP address \"%.64s\"", rest);
	if (strcmp(method, "GET") == 0)
		return get_status(api, c, &a);
	if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0)
		return put_status(api, c, &a, rest);
	if (strcmp(method, "DELETE") != 0)
		return api_reply_error(c, 405, "method %s not allowed here", method);
	if ((ret = write_status(api, c, &a, 0)) != 0)
		return ret;
	return api_reply_json(c, 200, json_pack("{s:s,s:b}", "ip", rest, "deleted", 1));
}
