/*
 * map.c: the SkyDNS / CoreDNS etcd value format (DESIGN §4). Values are
 * untrusted: every field is type-checked and range-checked, and a value that
 * fails is reported to the caller, which skips that key only.
 */
#include "watchers/map.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/err.h"
#include "common/wire.h"

#define MAP_LABELS_MAX 128

int map_key_name(const char *prefix, const uint8_t *key, size_t klen, uint8_t name[255],
		 size_t *namelen)
{
	size_t pl = strlen(prefix), starts[MAP_LABELS_MAX], lens[MAP_LABELS_MAX], n = 0, i, o = 0;

	while (pl > 0 && prefix[pl - 1] == '/')
		pl--;
	if (klen <= pl || memcmp(key, prefix, pl) != 0 || key[pl] != '/')
		return ERR_NOTFOUND;
	for (i = pl; i < klen;) {
		if (key[i] == '/') {
			i++;
			continue;
		}
		size_t s = i;
		while (i < klen && key[i] != '/')
			i++;
		if (n == MAP_LABELS_MAX || i - s > WIRE_LABEL_MAX)
			return ERR_PARSE;
		starts[n] = s;
		lens[n++] = i - s;
	}
	for (i = n; i > 0; i--) {
		size_t l = lens[i - 1];
		if (o + 1 + l + 1 > 255)
			return ERR_PARSE;
		name[o++] = (uint8_t)l;
		for (size_t j = 0; j < l; j++) {
			uint8_t c = key[starts[i - 1] + j];
			/* A dot or NUL would make the label unlike what a query can ask. */
			if (c == '.' || c == 0)
				return ERR_PARSE;
			name[o++] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
		}
	}
	name[o++] = 0;
	*namelen = o;
	return 0;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
						      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ERR_PARSE;
}

/* An unsigned field: a JSON integer (or an integer string, as some writers do). */
static int get_uint(const json_t *o, const char *k, unsigned long max, unsigned long *out,
		    char *err, size_t errlen)
{
	const json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    (unsigned long long)json_integer_value(v) <= max) {
		*out = (unsigned long)json_integer_value(v);
		return 1;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		unsigned long long x = strtoull(s, &end, 10);
		if (*s && *s != '-' && !*end && !errno && x <= max) {
			*out = (unsigned long)x;
			return 1;
		}
	}
	return fail(err, errlen, "bad %s", k);
}

static const struct {
	const char *name;
	uint16_t type;
} g_types[] = {
    {"A", WIRE_TYPE_A},	    {"AAAA", WIRE_TYPE_AAAA}, {"CNAME", WIRE_TYPE_CNAME},
    {"SRV", WIRE_TYPE_SRV}, {"TXT", WIRE_TYPE_TXT},   {"MX", WIRE_TYPE_MX},
    {"NS", WIRE_TYPE_NS},   {"PTR", WIRE_TYPE_PTR},
};

static int parse_type(const json_t *v, map_value_t *out, char *err, size_t errlen)
{
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return fail(err, errlen, "bad type%s", "");
	for (size_t i = 0; i < sizeof(g_types) / sizeof(g_types[0]); i++) {
		if (strcasecmp(json_string_value(v), g_types[i].name) == 0) {
			out->type = g_types[i].type;
			return 0;
		}
	}
	return fail(err, errlen, "unknown type %.32s", json_string_value(v));
}

static int parse_host(const char *h, map_value_t *out, char *err, size_t errlen)
{
	char buf[256];
	size_t n = strlen(h);

	if (n == 0)
		return 0;
	if (n >= sizeof(buf))
		return fail(err, errlen, "host too long%s", "");
	memcpy(buf, h, n + 1);
	/* "[2001:db8::1]" is how some writers quote an IPv6 host. */
	if (buf[0] == '[' && buf[n - 1] == ']') {
		buf[n - 1] = 0;
		memmove(buf, buf + 1, n - 1);
	}
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->host_kind = MAP_HOST_IP4;
		return 0;
	}
	if (strchr(buf, ':')) {
		if (inet_pton(AF_INET6, buf, out->addr) == 1) {
			out->host_kind = MAP_HOST_IP6;
			return 0;
		}
		return fail(err, errlen, "bad IP %.64s", h);
	}
	/* All digits and dots but not an IPv4 address: a typo, not a name. */
	if (strspn(buf, "0123456789.") == n)
		return fail(err, errlen, "bad IP %.64s", h);
	if (wire_name_from_text(buf, out->target, &out->targetlen) < 0 || out->targetlen <= 1)
		return fail(err, errlen, "bad host %.64s", h);
	wire_name_lower(out->target, out->targetlen);
	out->host_kind = MAP_HOST_NAME;
	return 0;
}

/* Does the explicit type fit the host? */
static int check_type(const map_value_t *v, char *err, size_t errlen)
{
	switch (v->type) {
	case WIRE_TYPE_A:
		return v->host_kind == MAP_HOST_IP4
			   ? 0
			   : fail(err, errlen, "type A needs an IPv4 host%s", "");
	case WIRE_TYPE_AAAA:
		return v->host_kind == MAP_HOST_IP6
			   ? 0
			   : fail(err, errlen, "type AAAA needs an IPv6 host%s", "");
	case WIRE_TYPE_CNAME:
	case WIRE_TYPE_PTR:
	case WIRE_TYPE_NS:
		return v->host_kind == MAP_HOST_NAME
			   ? 0
			   : fail(err, errlen, "type needs a name as host%s", "");
	case WIRE_TYPE_SRV:
	case WIRE_TYPE_MX:
		return v->host_kind != MAP_HOST_NONE ? 0
						     : fail(err, errlen, "type needs a host%s", "");
	case WIRE_TYPE_TXT:
		return v->textlen > 0 ? 0 : fail(err, errlen, "type TXT needs text%s", "");
	default:
		return v->host_kind != MAP_HOST_NONE || v->textlen > 0
			   ? 0
			   : fail(err, errlen, "neither host nor text%s", "");
	}
}

int map_parse_value(const uint8_t *json, size_t len, map_value_t *out, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb((const char *)json, len, 0, &je);
	map_value_t v = {.ttl = MAP_TTL_DEFAULT, .priority = MAP_PRIORITY_DEFAULT};
	unsigned long x;
	const json_t *f;
	int ret = ERR_PARSE, r;

	if (!json_is_object(root)) {
		fail(err, errlen, root ? "not a JSON object%s" : "invalid JSON: %.80s",
		     root ? "" : je.text);
		goto out;
	}
	if ((f = json_object_get(root, "host")) && !json_is_null(f)) {
		if (!json_is_string(f)) {
			fail(err, errlen, "host is not a string%s", "");
			goto out;
		}
		if (parse_host(json_string_value(f), &v, err, errlen) < 0)
			goto out;
	}
	if ((f = json_object_get(root, "text")) && !json_is_null(f)) {
		if (!json_is_string(f) || json_string_length(f) >= MAP_TEXT_MAX) {
			fail(err, errlen, "bad text%s", "");
			goto out;
		}
		v.textlen = json_string_length(f);
		memcpy(v.text, json_string_value(f), v.textlen);
	}
	if ((f = json_object_get(root, "group")) && !json_is_null(f)) {
		if (!json_is_string(f) || json_string_length(f) >= MAP_GROUP_MAX) {
			fail(err, errlen, "bad group%s", "");
			goto out;
		}
		memcpy(v.group, json_string_value(f), json_string_length(f) + 1);
	}
	/* Never a reason to skip the value: the records are served whoever owns them. */
	if ((f = json_object_get(root, "user")) && json_is_string(f) &&
	    json_string_length(f) < MAP_USER_MAX)
		memcpy(v.user, json_string_value(f), json_string_length(f) + 1);
	if ((f = json_object_get(root, "mail")) && !json_is_null(f)) {
		if (!json_is_boolean(f)) {
			fail(err, errlen, "mail is not a boolean%s", "");
			goto out;
		}
		v.mail = json_is_true(f);
	}
	if ((r = get_uint(root, "ttl", UINT32_MAX >> 1, &x, err, errlen)) < 0)
		goto out;
	if (r)
		v.ttl = (uint32_t)x;
	if ((r = get_uint(root, "port", 65535, &x, err, errlen)) < 0)
		goto out;
	if (r)
		v.port = (uint16_t)x;
	if ((r = get_uint(root, "priority", 65535, &x, err, errlen)) < 0)
		goto out;
	if (r)
		v.priority = (uint16_t)x;
	if ((r = get_uint(root, "weight", 65535, &x, err, errlen)) < 0)
		goto out;
	if (r)
		v.weight = (uint16_t)x;
	if ((r = get_uint(root, "targetstrip", 127, &x, err, errlen)) < 0)
		goto out;
	if (r)
		v.targetstrip = (unsigned)x;
	if (parse_type(json_object_get(root, "type"), &v, err, errlen) < 0 ||
	    check_type(&v, err, errlen) < 0)
		goto out;
	*out = v;
	ret = 0;
out:
	json_decref(root);
	return ret;
}

int map_parse_health(const uint8_t *json, size_t len)
{
	json_t *root = json_loadb((const char *)json, len, 0, NULL);
	const json_t *st = json_object_get(root, "status");
	int ret = ERR_PARSE;

	if (json_is_string(st) && strcasecmp(json_string_value(st), "UP") == 0)
		ret = 1;
	else if (json_is_string(st) && strcasecmp(json_string_value(st), "DOWN") == 0)
		ret = 2;
	json_decref(root);
	return ret;
}

/* ---- building a name's records ---- */

static bool name_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	return al == bl && memcmp(a, b, al) == 0;
}

static bool under_arpa(const uint8_t *name, size_t len)
{
	static const uint8_t v4[] = "\7in-addr\4arpa", v6[] = "\3ip6\4arpa";

	return (len >= sizeof(v4) && memcmp(name + len - sizeof(v4), v4, sizeof(v4)) == 0) ||
	       (len >= sizeof(v6) && memcmp(name + len - sizeof(v6), v6, sizeof(v6)) == 0);
}

/* The one type a name-only record (alias) has at its own name, or 0. */
static uint16_t alias_type(const map_leaf_t *l)
{
	const map_value_t *v = l->v;

	if (v->type == WIRE_TYPE_CNAME || v->type == WIRE_TYPE_PTR || v->type == WIRE_TYPE_NS)
		return v->type;
	if (v->type == 0 && v->host_kind == MAP_HOST_NAME && !v->mail)
		return under_arpa(l->name, l->namelen) ? WIRE_TYPE_PTR : WIRE_TYPE_CNAME;
	return 0;
}

static int cmp_leaf_len(const void *a, const void *b)
{
	const map_leaf_t *x = a, *y = b;

	return x->namelen < y->namelen ? -1 : x->namelen > y->namelen;
}

/* Keep the leaves of the winning group (the shortest leaf name's), and those without one. */
static size_t filter_groups(map_leaf_t *l, size_t n)
{
	const char *g = NULL;
	size_t k = 0;

	if (n > 1)
		qsort(l, n, sizeof(*l), cmp_leaf_len);
	for (size_t i = 0; i < n && !g; i++)
		if (l[i].v->group[0])
			g = l[i].v->group;
	for (size_t i = 0; i < n; i++)
		if (!g || !l[i].v->group[0] || strcmp(l[i].v->group, g) == 0)
			l[k++] = l[i];
	return k;
}

/* An IP host's SRV/MX target: the leaf's own name without targetstrip labels. */
static void own_target(const map_leaf_t *l, const uint8_t **t, size_t *tl)
{
	const uint8_t *p = l->name;
	size_t len = l->namelen;

	for (unsigned i = 0; i < l->v->targetstrip && len > 1; i++) {
		len -= 1u + p[0];
		p += 1u + p[0];
	}
	*t = p;
	*tl = len;
}

static void target_of(const map_leaf_t *l, const uint8_t **t, size_t *tl)
{
	if (l->v->host_kind == MAP_HOST_NAME) {
		*t = l->v->target;
		*tl = l->v->targetlen;
	} else {
		own_target(l, t, tl);
	}
}

static bool gives(const map_value_t *v, uint16_t type)
{
	switch (type) {
	case WIRE_TYPE_A:
		return (v->type == 0 || v->type == WIRE_TYPE_A) && v->host_kind == MAP_HOST_IP4;
	case WIRE_TYPE_AAAA:
		return (v->type == 0 || v->type == WIRE_TYPE_AAAA) && v->host_kind == MAP_HOST_IP6;
	case WIRE_TYPE_TXT:
		return (v->type == 0 || v->type == WIRE_TYPE_TXT) && v->textlen > 0;
	case WIRE_TYPE_SRV:
		return (v->type == 0 || v->type == WIRE_TYPE_SRV) && v->host_kind != MAP_HOST_NONE;
	case WIRE_TYPE_MX:
		return (v->type == WIRE_TYPE_MX || (v->type == 0 && v->mail)) &&
		       v->host_kind != MAP_HOST_NONE;
	default:
		return false;
	}
}

static uint32_t min_ttl(const map_leaf_t *l, size_t n, uint16_t type)
{
	uint32_t t = UINT32_MAX;

	for (size_t i = 0; i < n; i++)
		if (gives(l[i].v, type) && l[i].v->ttl < t)
			t = l[i].v->ttl;
	return t;
}

/* TXT rdata: the text cut into strings of at most 255 bytes, no empty trailing one. */
static size_t txt_rdata(const map_value_t *v, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < v->textlen; i += 255) {
		size_t n = v->textlen - i < 255 ? v->textlen - i : 255;
		out[o++] = (uint8_t)n;
		memcpy(out + o, v->text + i, n);
		o += n;
	}
	return o;
}

static int emit_simple(const map_leaf_t *l, size_t n, uint16_t type, map_rr_fn fn, void *ctx)
{
	uint8_t rd[MAP_TEXT_MAX + MAP_TEXT_MAX / 255 + 2];
	uint32_t ttl = min_ttl(l, n, type);
	int ret;

	for (size_t i = 0; i < n; i++) {
		const map_value_t *v = l[i].v;
		size_t len;
		if (!gives(v, type))
			continue;
		if (type == WIRE_TYPE_TXT) {
			len = txt_rdata(v, rd);
		} else if (type == WIRE_TYPE_MX) {
			const uint8_t *t;
			size_t tl;
			target_of(&l[i], &t, &tl);
			wire_write_u16(rd, v->priority);
			memcpy(rd + 2, t, tl);
			len = 2 + tl;
		} else {
			len = type == WIRE_TYPE_A ? 4 : 16;
			memcpy(rd, v->addr, len);
		}
		if ((ret = fn(ctx, type, ttl, rd, (uint16_t)len)) != 0)
			return ret;
	}
	return 0;
}

static int cmp_leaf_prio(const void *a, const void *b)
{
	const map_leaf_t *x = a, *y = b;

	return x->v->priority < y->v->priority ? -1 : x->v->priority > y->v->priority;
}

/* SRV per priority run (leaves sorted by priority): one pass for the sum, one to emit. */
static int emit_srv(map_leaf_t *l, size_t n, map_rr_fn fn, void *ctx)
{
	uint8_t rd[6 + 255];
	uint32_t ttl = min_ttl(l, n, WIRE_TYPE_SRV);
	int ret;

	if (n > 1)
		qsort(l, n, sizeof(*l), cmp_leaf_prio);
	for (size_t i = 0, end; i < n; i = end) {
		unsigned long sum = 0;

		for (end = i; end < n && l[end].v->priority == l[i].v->priority; end++)
			if (gives(l[end].v, WIRE_TYPE_SRV))
				sum += l[end].v->weight ? l[end].v->weight : 100;
		for (size_t j = i; j < end; j++) {
			const map_value_t *v = l[j].v;
			unsigned long w = v->weight ? v->weight : 100;
			const uint8_t *t;
			size_t tl;

			if (!gives(v, WIRE_TYPE_SRV))
				continue;
			target_of(&l[j], &t, &tl);
			wire_write_u16(rd, v->priority);
			wire_write_u16(rd + 2, (uint16_t)(100 * w / sum));
			wire_write_u16(rd + 4, v->port);
			memcpy(rd + 6, t, tl);
			if ((ret = fn(ctx, WIRE_TYPE_SRV, ttl, rd, (uint16_t)(6 + tl))) != 0)
				return ret;
		}
	}
	return 0;
}

int map_build(const uint8_t *qname, size_t qlen, map_leaf_t *leaves, size_t n, map_rr_fn fn,
	      void *ctx)
{
	static const uint16_t types[] = {WIRE_TYPE_A, WIRE_TYPE_AAAA, WIRE_TYPE_TXT, WIRE_TYPE_MX};
	size_t k;
	int ret;

	/* An alias answers only at its own name, and alone (a CNAME owns its name). */
	for (size_t i = 0; i < n; i++) {
		uint16_t at = alias_type(&leaves[i]);
		if (!at)
			continue;
		if (name_eq(leaves[i].name, leaves[i].namelen, qname, qlen))
			return fn(ctx, at, leaves[i].v->ttl, leaves[i].v->target,
				  (uint16_t)leaves[i].v->targetlen);
	}
	/* Below their own name, aliases still count as SRV/MX targets (gives()). */
	k = filter_groups(leaves, n);
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		if ((ret = emit_simple(leaves, k, types[t], fn, ctx)) != 0)
			return ret;
	return emit_srv(leaves, k, fn, ctx);
}

int map_health_source(const uint8_t *json, size_t len, char *source, size_t cap)
{
	json_t *root = json_loadb((const char *)json, len, 0, NULL);
	const json_t *src = json_object_get(root, "source");

	if (cap)
		snprintf(source, cap, "%s", json_is_string(src) ? json_string_value(src) : "");
	json_decref(root);
	return map_parse_health(json, len);
}

int map_health_restate(const uint8_t *json, size_t len, int status, const char *source, char **out)
{
	json_t *root = json ? json_loadb((const char *)json, len, 0, NULL) : NULL;
	char *text;

	/* Keep every other field of the value; a value that is not an object is replaced. */
	if (!json_is_object(root)) {
		json_decref(root);
		root = json_object();
	}
	if (!root ||
	    json_object_set_new(root, "status", json_string(status == 2 ? "DOWN" : "UP")) < 0 ||
	    json_object_set_new(root, "source", json_string(source)) < 0) {
		json_decref(root);
		return -ENOMEM;
	}
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	*out = text;
	return 0;
}
