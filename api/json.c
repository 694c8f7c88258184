/*
 * api/json: request body -> validated api_req_t (see api_json.h).
 */
#include "api/api_json.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "store/store.h"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

int api_addr_parse(const char *text, api_addr_t *out)
{
	api_addr_t a = {0};

	if (inet_pton(AF_INET, text, a.b) == 1) {
		a.len = 4;
	} else if (inet_pton(AF_INET6, text, a.b) == 1) {
		a.len = 16;
	} else {
		return API_JSON_BAD;
	}
	*out = a;
	return 0;
}

void api_addr_format(const api_addr_t *a, char *out, size_t cap)
{
	if (!inet_ntop(a->len == 4 ? AF_INET : AF_INET6, a->b, out, (socklen_t)cap) && cap)
		out[0] = '\0';
}

const char *api_mode_name(int mode)
{
	switch (mode) {
	case STORE_MODE_ALL:
		return "all";
	case STORE_MODE_RANDOM_ONE:
		return "random-one";
	case STORE_MODE_HONE_ONE:
		return "hone-one";
	default:
		return "default";
	}
}

static int parse_type(const char *t, uint16_t *out)
{
	static const struct {
		const char *name;
		uint16_t type;
	} types[] = {{"A", API_T_A},	 {"AAAA", API_T_AAAA}, {"CNAME", API_T_CNAME},
		     {"SRV", API_T_SRV}, {"TXT", API_T_TXT},   {"MX", API_T_MX},
		     {"PTR", API_T_PTR}};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcasecmp(t, types[i].name) == 0) {
			*out = types[i].type;
			return 0;
		}
	}
	return API_JSON_BAD;
}

static int parse_mode(const char *m)
{
	/* "default" is what GET shows for a name without its own mode: it must read back. */
	if (strcmp(m, "default") == 0)
		return STORE_MODE_DEFAULT;
	if (strcmp(m, "all") == 0)
		return STORE_MODE_ALL;
	if (strcmp(m, "random-one") == 0)
		return STORE_MODE_RANDOM_ONE;
	if (strcmp(m, "hone-one") == 0)
		return STORE_MODE_HONE_ONE;
	return API_JSON_BAD;
}

/* Copy a JSON string member into a fixed buffer; absent leaves it "". */
static int get_str(json_t *root, const char *key, char *dst, size_t cap, size_t *outlen, char *err,
		   size_t errlen)
{
	json_t *v = json_object_get(root, key);

	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(err, errlen, API_JSON_BAD, "\"%s\" must be a string", key);
	size_t n = json_string_length(v);
	if (n == 0)
		return fail(err, errlen, API_JSON_BAD, "\"%s\" must not be empty", key);
	if (n >= cap)
		return fail(err, errlen, API_JSON_BAD, "\"%s\" is too long", key);
	if (memchr(json_string_value(v), '\0', n))
		return fail(err, errlen, API_JSON_BAD, "\"%s\" contains a NUL byte", key);
	memcpy(dst, json_string_value(v), n);
	dst[n] = '\0';
	if (outlen)
		*outlen = n;
	return 0;
}

static int get_uint(json_t *root, const char *key, uint32_t max, uint32_t *out, bool *present,
		    char *err, size_t errlen)
{
	json_t *v = json_object_get(root, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return fail(err, errlen, API_JSON_BAD, "\"%s\" must be an integer 0..%u", key, max);
	*out = (uint32_t)json_integer_value(v);
	if (present)
		*present = true;
	return 0;
}

static int get_addrs(json_t *root, api_req_t *r, char *err, size_t errlen)
{
	json_t *ips = json_object_get(root, "ips");
	size_t i;
	json_t *v;

	if (!ips)
		return 0;
	if (!json_is_array(ips))
		return fail(err, errlen, API_JSON_BAD, "\"ips\" must be an array of strings");
	if (json_array_size(ips) > API_ADDRS_MAX)
		return fail(err, errlen, API_JSON_TOOBIG, "more than %d addresses", API_ADDRS_MAX);
	json_array_foreach(ips, i, v)
	{
		if (!json_is_string(v))
			return fail(err, errlen, API_JSON_BAD,
				    "\"ips\" must be an array of strings");
		if (api_addr_parse(json_string_value(v), &r->addrs[i]) < 0)
			return fail(err, errlen, API_JSON_BAD, "bad IP address \"%.64s\"",
				    json_string_value(v));
		for (size_t j = 0; j < i; j++) {
			if (r->addrs[j].len == r->addrs[i].len &&
			    memcmp(r->addrs[j].b, r->addrs[i].b, r->addrs[i].len) == 0)
				return fail(err, errlen, API_JSON_BAD,
					    "duplicate IP address \"%.64s\"", json_string_value(v));
		}
	}
	r->naddrs = json_array_size(ips);
	return 0;
}

static int get_ports(json_t *root, api_req_t *r, char *err, size_t errlen)
{
	json_t *ports = json_object_get(root, "ports");
	size_t i;
	json_t *v;

	json_t *one = json_object_get(root, "port");

	if (one && ports)
		return fail(err, errlen, API_JSON_BAD, "give \"port\" or \"ports\", not both");
	if (one) {
		if (!json_is_integer(one) || json_integer_value(one) < 1 ||
		    json_integer_value(one) > 65535)
			return fail(err, errlen, API_JSON_BAD,
				    "\"port\" must be an integer 1..65535");
		r->ports[0] = (uint16_t)json_integer_value(one);
		r->nports = 1;
		return 0;
	}
	if (!ports)
		return 0;
	if (!json_is_array(ports))
		return fail(err, errlen, API_JSON_BAD, "\"ports\" must be an array of integers");
	if (json_array_size(ports) > API_ADDRS_MAX)
		return fail(err, errlen, API_JSON_TOOBIG, "more than %d ports", API_ADDRS_MAX);
	json_array_foreach(ports, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 65535)
			return fail(err, errlen, API_JSON_BAD, "ports must be integers 1..65535");
		r->ports[i] = (uint16_t)json_integer_value(v);
	}
	r->nports = json_array_size(ports);
	return 0;
}

/* "update": {"old-ip": "new-ip", ...}: both of one family. */
static int get_updates(json_t *root, api_req_t *r, char *err, size_t errlen)
{
	json_t *upd = json_object_get(root, "update");
	const char *key;
	json_t *v;

	if (!upd)
		return 0;
	if (!json_is_object(upd))
		return fail(err, errlen, API_JSON_BAD, "\"update\" must be an object");
	if (json_object_size(upd) > API_ADDRS_MAX)
		return fail(err, errlen, API_JSON_TOOBIG, "more than %d updates", API_ADDRS_MAX);
	json_object_foreach(upd, key, v)
	{
		api_update_t *u = &r->updates[r->nupdates];

		if (!json_is_string(v))
			return fail(err, errlen, API_JSON_BAD, "\"update\" values must be strings");
		if (api_addr_parse(key, &u->from) < 0 ||
		    api_addr_parse(json_string_value(v), &u->to) < 0)
			return fail(err, errlen, API_JSON_BAD, "bad IP address in \"update\"");
		if (u->from.len != u->to.len)
			return fail(err, errlen, API_JSON_BAD,
				    "\"update\" mixes IPv4 and IPv6 addresses");
		r->nupdates++;
	}
	return 0;
}

/* One member of "targets": {"host": name or address, "port", "priority", "weight"}. */
static int get_target(json_t *t, size_t i, api_req_t *r, char *err, size_t errlen)
{
	api_srv_t *s = &r->srv[i];
	uint32_t u;
	int ret;

	if (!json_is_object(t))
		return fail(err, errlen, API_JSON_BAD, "\"targets\" must be an array of objects");
	if ((ret = get_str(t, "host", s->host, sizeof(s->host), NULL, err, errlen)) < 0)
		return ret;
	if (!s->host[0])
		return fail(err, errlen, API_JSON_BAD, "targets[%zu] needs \"host\"", i);
	if (api_addr_parse(s->host, &s->addr) == 0)
		s->host[0] = '\0';
	u = 0;
	if ((ret = get_uint(t, "port", 65535, &u, NULL, err, errlen)) < 0)
		return ret;
	if (u == 0)
		return fail(err, errlen, API_JSON_BAD, "targets[%zu] needs \"port\" 1..65535", i);
	s->port = (uint16_t)u;
	u = r->priority;
	if ((ret = get_uint(t, "priority", 65535, &u, NULL, err, errlen)) < 0)
		return ret;
	s->priority = (uint16_t)u;
	u = r->weight;
	if ((ret = get_uint(t, "weight", 65535, &u, NULL, err, errlen)) < 0)
		return ret;
	s->weight = (uint16_t)u;
	return 0;
}

/*
 * SRV records from the short forms: a target name with each port, or each
 * address with its port (one address: every port; one port: every address;
 * otherwise the n-th address with the n-th port).
 */
static int pair_srv(api_req_t *r, char *err, size_t errlen)
{
	size_t n;

	if (r->target[0]) {
		if (strlen(r->target) >= API_SRV_HOST_MAX)
			return fail(err, errlen, API_JSON_BAD, "\"target\" is too long");
		for (size_t i = 0; i < r->nports; i++) {
			api_srv_t *s = &r->srv[i];
			memcpy(s->host, r->target, strlen(r->target) + 1);
			s->port = r->ports[i];
		}
		n = r->nports;
	} else if (r->naddrs == 1 || r->nports == 1 || r->naddrs == r->nports) {
		n = r->naddrs > r->nports ? r->naddrs : r->nports;
		if (r->naddrs == 0 || r->nports == 0)
			n = 0;
		for (size_t i = 0; i < n; i++) {
			r->srv[i].addr = r->addrs[r->naddrs == 1 ? 0 : i];
			r->srv[i].port = r->ports[r->nports == 1 ? 0 : i];
		}
	} else {
		return fail(err, errlen, API_JSON_BAD,
			    "SRV pairs each address with its port: give one port, or one "
			    "address, or as many ports as addresses");
	}
	for (size_t i = 0; i < n; i++) {
		r->srv[i].priority = r->priority;
		r->srv[i].weight = r->weight;
	}
	r->nsrv = n;
	return 0;
}

static int get_srv(json_t *root, api_req_t *r, char *err, size_t errlen)
{
	json_t *ts = json_object_get(root, "targets"), *t;
	size_t i;
	int ret;

	if (r->type != API_T_SRV) {
		if (ts)
			return fail(err, errlen, API_JSON_BAD, "\"targets\" is only for SRV");
		return 0;
	}
	if (!ts)
		return pair_srv(r, err, errlen);
	if (r->naddrs || r->nports || r->target[0])
		return fail(err, errlen, API_JSON_BAD,
			    "\"targets\" replaces \"ips\", \"port(s)\" and \"target\"");
	if (!json_is_array(ts))
		return fail(err, errlen, API_JSON_BAD, "\"targets\" must be an array of objects");
	if (json_array_size(ts) > API_ADDRS_MAX)
		return fail(err, errlen, API_JSON_TOOBIG, "more than %d targets", API_ADDRS_MAX);
	json_array_foreach(ts, i, t)
	{
		if ((ret = get_target(t, i, r, err, errlen)) < 0)
			return ret;
	}
	r->nsrv = json_array_size(ts);
	return 0;
}

static int get_fields(json_t *root, api_req_t *r, char *err, size_t errlen)
{
	uint32_t u = 0;
	char buf[32] = "", ip[64] = "";
	int ret;

	if ((ret = get_str(root, "type", buf, sizeof(buf), NULL, err, errlen)) < 0)
		return ret;
	if (buf[0] && parse_type(buf, &r->type) < 0)
		return fail(err, errlen, API_JSON_BAD, "unknown type \"%s\"", buf);
	buf[0] = '\0';
	if ((ret = get_str(root, "mode", buf, sizeof(buf), NULL, err, errlen)) < 0)
		return ret;
	if (buf[0] && (r->mode = parse_mode(buf)) < 0)
		return fail(
		    err, errlen, API_JSON_BAD,
		    "\"mode\" must be \"default\", \"all\", \"random-one\" or \"hone-one\"");
	if ((ret = get_addrs(root, r, err, errlen)) < 0 ||
	    (ret = get_ports(root, r, err, errlen)) < 0 ||
	    (ret = get_updates(root, r, err, errlen)) < 0)
		return ret;
	if ((ret = get_str(root, "alias", r->alias, sizeof(r->alias), NULL, err, errlen)) < 0 ||
	    (ret = get_str(root, "text", r->text, sizeof(r->text), &r->textlen, err, errlen)) < 0)
		return ret;
	if ((ret = get_str(root, "ip", ip, sizeof(ip), NULL, err, errlen)) < 0)
		return ret;
	if (ip[0] && api_addr_parse(ip, &r->ip) < 0)
		return fail(err, errlen, API_JSON_BAD, "bad IP address \"%.64s\"", ip);
	/* SRV says "target", MX and PTR say "host": one field, both spellings. */
	if ((ret = get_str(root, "target", r->target, sizeof(r->target), NULL, err, errlen)) < 0 ||
	    (ret = get_str(root, "host", r->target, sizeof(r->target), NULL, err, errlen)) < 0)
		return ret;
	if ((ret = get_uint(root, "ttl", 0x7fffffff, &r->ttl, &r->has_ttl, err, errlen)) < 0)
		return ret;
	u = 10;
	if ((ret = get_uint(root, "priority", 65535, &u, NULL, err, errlen)) < 0)
		return ret;
	r->priority = (uint16_t)u;
	u = 10;
	if ((ret = get_uint(root, "weight", 65535, &u, NULL, err, errlen)) < 0)
		return ret;
	r->weight = (uint16_t)u;
	return get_srv(root, r, err, errlen);
}

static int check_families(const api_req_t *r, char *err, size_t errlen)
{
	for (size_t i = 0; i < r->naddrs; i++) {
		if (r->type == API_T_A && r->addrs[i].len != 4)
			return fail(err, errlen, API_JSON_BAD, "type A needs IPv4 addresses");
		if (r->type == API_T_AAAA && r->addrs[i].len != 16)
			return fail(err, errlen, API_JSON_BAD, "type AAAA needs IPv6 addresses");
	}
	for (size_t i = 0; i < r->nupdates; i++) {
		if ((r->type == API_T_A && r->updates[i].from.len != 4) ||
		    (r->type == API_T_AAAA && r->updates[i].from.len != 16))
			return fail(err, errlen, API_JSON_BAD,
				    "\"update\" addresses do not match the type");
	}
	return 0;
}

/* Which fields each type needs to create (POST) or replace (PUT) records. */
static int check_create(const api_req_t *r, char *err, size_t errlen)
{
	switch (r->type) {
	case API_T_NONE:
		return fail(err, errlen, API_JSON_BAD, "\"type\" is required");
	case API_T_A:
	case API_T_AAAA:
		if (r->naddrs == 0 && !(r->op == API_OP_UPDATE && r->nupdates))
			return fail(err, errlen, API_JSON_BAD, "\"ips\" is required");
		return 0;
	case API_T_CNAME:
		if (!r->alias[0])
			return fail(err, errlen, API_JSON_BAD, "\"alias\" is required");
		return 0;
	case API_T_SRV:
		if (r->target[0] && r->naddrs)
			return fail(err, errlen, API_JSON_BAD,
				    "SRV takes \"ips\" or \"target\", not both");
		if (r->nsrv)
			return 0;
		if (r->nports == 0 && (r->target[0] || r->naddrs))
			return fail(err, errlen, API_JSON_BAD, "\"port\" or \"ports\" is required");
		return fail(err, errlen, API_JSON_BAD,
			    "SRV needs \"targets\", or \"ips\" or \"target\" with \"port\" or "
			    "\"ports\"");
	case API_T_TXT:
		if (!r->text[0])
			return fail(err, errlen, API_JSON_BAD, "\"text\" is required");
		return 0;
	default: /* MX, PTR */
		if (!r->target[0])
			return fail(err, errlen, API_JSON_BAD, "\"host\" is required");
		return 0;
	}
}

static int validate(api_req_t *r, char *err, size_t errlen)
{
	int ret;

	if ((ret = check_families(r, err, errlen)) < 0)
		return ret;
	if (r->nupdates && r->op != API_OP_UPDATE)
		return fail(err, errlen, API_JSON_BAD, "\"update\" is only for PUT");
	if (r->nupdates && r->type != API_T_A && r->type != API_T_AAAA)
		return fail(err, errlen, API_JSON_BAD, "\"update\" needs type A or AAAA");
	if (r->nupdates && r->naddrs)
		return fail(err, errlen, API_JSON_BAD, "\"update\" and \"ips\" are exclusive");
	if (r->ip.len && r->type != API_T_PTR)
		return fail(err, errlen, API_JSON_BAD,
			    "\"ip\" is only for PTR (it names the reverse name to write)");
	if (r->op == API_OP_DELETE)
		return 0; /* every field optional: narrows what is removed */
	/* Answer selection picks among addresses: elsewhere a mode would be a no-op reply. */
	if (r->mode && r->type != API_T_A && r->type != API_T_AAAA)
		return fail(err, errlen, API_JSON_BAD,
			    "\"mode\" applies to A and AAAA records only");
	return check_create(r, err, errlen);
}

bool api_json_depth_ok(const char *body, size_t len, unsigned max)
{
	unsigned depth = 0;
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		char ch = body[i];

		if (in_str) {
			if (ch == '\\')
				i++; /* the escaped byte cannot end the string */
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == '[' || ch == '{') {
			if (++depth > max)
				return false;
		} else if ((ch == ']' || ch == '}') && depth > 0) {
			depth--;
		}
	}
	return true;
}

int api_json_parse(int op, const char *body, size_t len, api_req_t *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	out->op = op;
	out->ttl = API_TTL_DEFAULT;
	if (len > API_BODY_MAX)
		return fail(err, errlen, API_JSON_TOOBIG, "body larger than %d bytes",
			    API_BODY_MAX);
	if (len == 0) {
		if (op == API_OP_DELETE)
			return 0;
		return fail(err, errlen, API_JSON_BAD, "a JSON body is required");
	}
	/* Before jansson: its recursive descent would run off a civetweb thread's stack. */
	if (!api_json_depth_ok(body, len, API_JSON_DEPTH_MAX))
		return fail(err, errlen, API_JSON_BAD, "JSON nested deeper than %d levels",
			    API_JSON_DEPTH_MAX);
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return fail(err, errlen, API_JSON_BAD, "invalid JSON: %s (line %d)", jerr.text,
			    jerr.line);
	if (!json_is_object(root)) {
		ret = fail(err, errlen, API_JSON_BAD, "the body must be a JSON object");
		goto out;
	}
	if ((ret = get_fields(root, out, err, errlen)) < 0)
		goto out;
	ret = validate(out, err, errlen);
out:
	json_decref(root);
	return ret;
}
