/*
 * Unit tests for api/json: request bodies -> api_req_t, table-driven over
 * raw bytes, including the limits (1 MiB body, 1000 addresses).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"
#include "store/store.h"
#include "tests/unit/check.h"

typedef struct {
	int op;
	const char *body;
	int want;	     /* 0, API_JSON_BAD, API_JSON_TOOBIG */
	const char *errpart; /* expected in the error text, or NULL */
} json_case_t;

static const json_case_t cases[] = {
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":[\"192.168.10.1\",\"192.168.10.2\"]}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"a\",\"ips\":[\"10.0.0.1\"]}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"AAAA\",\"ips\":[\"2001:db8::1\"]}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"cname\",\"alias\":\"tv1\"}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"ips\":[\"10.0.0.1\"],\"ports\":[80,443]}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"target\":\"web\",\"ports\":[80]}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"TXT\",\"text\":\"hi\"}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"MX\",\"host\":\"mx\",\"priority\":5}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"PTR\",\"host\":\"x.\"}", 0, NULL},
    {API_OP_UPDATE, "{\"type\":\"A\",\"update\":{\"10.0.0.1\":\"10.0.0.2\"}}", 0, NULL},
    {API_OP_DELETE, "{\"ips\":[\"10.0.0.1\"]}", 0, NULL},
    {API_OP_DELETE, "", 0, NULL},
    {API_OP_CREATE, "", API_JSON_BAD, "required"},
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":[\"10.0.0.1\"]", API_JSON_BAD, "invalid JSON"},
    {API_OP_CREATE, "[]", API_JSON_BAD, "object"},
    {API_OP_CREATE, "{\"ips\":[\"10.0.0.1\"]}", API_JSON_BAD, "\"type\" is required"},
    {API_OP_CREATE, "{\"type\":\"HINFO\",\"ips\":[\"10.0.0.1\"]}", API_JSON_BAD, "unknown type"},
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":[\"10.0.0.256\"]}", API_JSON_BAD, "bad IP"},
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":[\"2001:db8::1\"]}", API_JSON_BAD, "IPv4"},
    {API_OP_CREATE, "{\"type\":\"AAAA\",\"ips\":[\"10.0.0.1\"]}", API_JSON_BAD, "IPv6"},
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":[\"10.0.0.1\",\"10.0.0.1\"]}", API_JSON_BAD,
     "duplicate"},
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":\"10.0.0.1\"}", API_JSON_BAD, "array"},
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":[1]}", API_JSON_BAD, "array of strings"},
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":[]}", API_JSON_BAD, "required"},
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":[\"10.0.0.1\"],\"ttl\":-1}", API_JSON_BAD, "ttl"},
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":[\"10.0.0.1\"],\"mode\":\"x\"}", API_JSON_BAD, "mode"},
    {API_OP_CREATE, "{\"type\":\"A\",\"type\":\"A\",\"ips\":[\"10.0.0.1\"]}", API_JSON_BAD,
     "invalid JSON"},
    {API_OP_CREATE, "{\"type\":\"cname\"}", API_JSON_BAD, "alias"},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"target\":\"w\"}", API_JSON_BAD, "ports"},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"target\":\"w\",\"ports\":[0]}", API_JSON_BAD, "ports"},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"ports\":[1]}", API_JSON_BAD, "SRV needs"},
    {API_OP_CREATE, "{\"type\":\"TXT\",\"text\":\"\"}", API_JSON_BAD, "empty"},
    {API_OP_CREATE, "{\"type\":\"MX\"}", API_JSON_BAD, "host"},
    {API_OP_CREATE, "{\"type\":\"A\",\"update\":{\"10.0.0.1\":\"10.0.0.2\"}}", API_JSON_BAD,
     "only for PUT"},
    {API_OP_UPDATE, "{\"type\":\"A\",\"update\":{\"10.0.0.1\":\"::1\"}}", API_JSON_BAD, "mixes"},
    {API_OP_UPDATE, "{\"type\":\"A\",\"update\":{\"10.0.0.1\":5}}", API_JSON_BAD, "strings"},
    {API_OP_CREATE, "{\"type\":\"TXT\",\"text\":\"a\\u0000b\"}", API_JSON_BAD, "NUL"},
    /* Issue 18: a mode where it would change nothing; SRV targets, "port", pairing. */
    {API_OP_CREATE, "{\"type\":\"TXT\",\"text\":\"x\",\"mode\":\"all\"}", API_JSON_BAD,
     "A and AAAA"},
    {API_OP_CREATE, "{\"type\":\"AAAA\",\"ips\":[\"::1\"],\"mode\":\"all\"}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"target\":\"w\",\"port\":443}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"ips\":[\"10.0.0.1\",\"10.0.0.2\"],\"port\":80}", 0, NULL},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"targets\":[{\"host\":\"10.0.0.1\",\"port\":80}]}", 0,
     NULL},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"port\":0,\"target\":\"w\"}", API_JSON_BAD, "port"},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"port\":1,\"ports\":[2],\"target\":\"w\"}", API_JSON_BAD,
     "not both"},
    {API_OP_CREATE,
     "{\"type\":\"SRV\",\"ips\":[\"10.0.0.1\",\"10.0.0.2\",\"10.0.0.3\"],\"ports\":[1,2]}",
     API_JSON_BAD, "pairs each address"},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"targets\":[{\"host\":\"w\"}]}", API_JSON_BAD, "port"},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"targets\":[{\"port\":1}]}", API_JSON_BAD, "host"},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"targets\":[1]}", API_JSON_BAD, "objects"},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"targets\":[],\"ips\":[\"10.0.0.1\"],\"port\":1}",
     API_JSON_BAD, "replaces"},
    {API_OP_CREATE, "{\"type\":\"SRV\",\"targets\":[]}", API_JSON_BAD, "SRV needs"},
    {API_OP_CREATE, "{\"type\":\"A\",\"ips\":[\"10.0.0.1\"],\"targets\":[]}", API_JSON_BAD,
     "only for SRV"},
};

static void test_table(void)
{
	api_req_t *r = malloc(sizeof(*r));
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const json_case_t *c = &cases[i];
		err[0] = '\0';
		int ret = api_json_parse(c->op, c->body, strlen(c->body), r, err, sizeof(err));
		CHECK_EQ_INT(ret, c->want);
		if (c->errpart && !strstr(err, c->errpart)) {
			fprintf(stderr, "case %zu: error \"%s\" lacks \"%s\"\n", i, err,
				c->errpart);
			CHECK(0);
		}
	}
	free(r);
}

static void test_fields(void)
{
	api_req_t *r = malloc(sizeof(*r));
	char err[256];
	const char *b = "{\"type\":\"A\",\"ips\":[\"192.168.10.1\",\"10.0.0.2\"],\"ttl\":120,"
			"\"mode\":\"hone-one\"}";

	CHECK_EQ_INT(api_json_parse(API_OP_CREATE, b, strlen(b), r, err, sizeof(err)), 0);
	CHECK_EQ_INT(r->type, API_T_A);
	CHECK_EQ_INT(r->naddrs, 2);
	CHECK_EQ_INT(r->addrs[0].len, 4);
	CHECK_MEM(r->addrs[0].b, "\xc0\xa8\x0a\x01", 4);
	CHECK_EQ_INT(r->ttl, 120);
	CHECK(r->has_ttl);
	CHECK_EQ_INT(r->mode, STORE_MODE_HONE_ONE);

	b = "{\"type\":\"cname\",\"alias\":\"tv1\"}";
	CHECK_EQ_INT(api_json_parse(API_OP_CREATE, b, strlen(b), r, err, sizeof(err)), 0);
	CHECK_EQ_INT(r->type, API_T_CNAME);
	CHECK(strcmp(r->alias, "tv1") == 0);
	CHECK_EQ_INT(r->ttl, API_TTL_DEFAULT);
	CHECK(!r->has_ttl);
	CHECK_EQ_INT(r->mode, 0);

	b = "{\"type\":\"SRV\",\"targets\":[{\"host\":\"10.0.0.1\",\"port\":80,\"priority\":1},"
	    "{\"host\":\"web\",\"port\":81,\"weight\":2}],\"priority\":9}";
	CHECK_EQ_INT(api_json_parse(API_OP_CREATE, b, strlen(b), r, err, sizeof(err)), 0);
	CHECK_EQ_INT(r->nsrv, 2);
	CHECK_EQ_INT(r->srv[0].addr.len, 4);
	CHECK(r->srv[0].host[0] == '\0');
	CHECK_EQ_INT(r->srv[0].port, 80);
	CHECK_EQ_INT(r->srv[0].priority, 1);
	CHECK_EQ_INT(r->srv[0].weight, 10);
	CHECK(strcmp(r->srv[1].host, "web") == 0);
	CHECK_EQ_INT(r->srv[1].priority, 9);
	CHECK_EQ_INT(r->srv[1].weight, 2);

	b = "{\"type\":\"SRV\",\"ips\":[\"10.0.0.1\",\"10.0.0.2\"],\"ports\":[80,81]}";
	CHECK_EQ_INT(api_json_parse(API_OP_CREATE, b, strlen(b), r, err, sizeof(err)), 0);
	CHECK_EQ_INT(r->nsrv, 2);
	CHECK_EQ_INT(r->srv[1].addr.b[3], 2);
	CHECK_EQ_INT(r->srv[1].port, 81);

	b = "{\"type\":\"SRV\",\"target\":\"web\",\"ports\":[8080],\"priority\":5,\"weight\":7}";
	CHECK_EQ_INT(api_json_parse(API_OP_CREATE, b, strlen(b), r, err, sizeof(err)), 0);
	CHECK_EQ_INT(r->nports, 1);
	CHECK_EQ_INT(r->ports[0], 8080);
	CHECK_EQ_INT(r->priority, 5);
	CHECK_EQ_INT(r->weight, 7);
	CHECK(strcmp(r->target, "web") == 0);

	b = "{\"type\":\"AAAA\",\"update\":{\"2001:db8::1\":\"2001:db8::2\"}}";
	CHECK_EQ_INT(api_json_parse(API_OP_UPDATE, b, strlen(b), r, err, sizeof(err)), 0);
	CHECK_EQ_INT(r->nupdates, 1);
	CHECK_EQ_INT(r->updates[0].to.len, 16);
	CHECK_EQ_INT(r->updates[0].to.b[15], 2);

	/* Not NUL-terminated: the parser must stop at len. */
	char raw[] = "{\"type\":\"TXT\",\"text\":\"abc\"}XXXX";
	CHECK_EQ_INT(api_json_parse(API_OP_CREATE, raw, strlen(raw) - 4, r, err, sizeof(err)), 0);
	CHECK_EQ_INT(r->textlen, 3);
	free(r);
}

static void test_limits(void)
{
	api_req_t *r = malloc(sizeof(*r));
	size_t cap = 64 + 1001 * 20;
	char *b = malloc(cap), err[256];
	size_t n;

	/* 1000 addresses are fine, 1001 are too many. */
	for (unsigned count = 1000; count <= 1001; count++) {
		n = (size_t)snprintf(b, cap, "{\"type\":\"A\",\"ips\":[");
		for (unsigned i = 0; i < count; i++)
			n += (size_t)snprintf(b + n, cap - n, "%s\"10.%u.%u.%u\"", i ? "," : "",
					      i >> 16, (i >> 8) & 255, i & 255);
		n += (size_t)snprintf(b + n, cap - n, "]}");
		CHECK_EQ_INT(api_json_parse(API_OP_CREATE, b, n, r, err, sizeof(err)),
			     count == 1000 ? 0 : API_JSON_TOOBIG);
	}
	free(b);

	/* Over 1 MiB is refused before parsing. */
	b = malloc(API_BODY_MAX + 2);
	memset(b, ' ', API_BODY_MAX + 1);
	CHECK_EQ_INT(api_json_parse(API_OP_CREATE, b, API_BODY_MAX + 1, r, err, sizeof(err)),
		     API_JSON_TOOBIG);
	free(b);

	/* Every prefix of a valid body is rejected cleanly (no crash, no success). */
	const char *ok = "{\"type\":\"SRV\",\"ips\":[\"10.0.0.1\",\"::1\"],\"ports\":[1,2]}";
	for (size_t l = 1; l < strlen(ok); l++)
		CHECK_EQ_INT(api_json_parse(API_OP_CREATE, ok, l, r, err, sizeof(err)),
			     API_JSON_BAD);
	free(r);
}

/* Issue 10 item 2: nesting is refused before jansson recurses into it. */
static void test_depth(void)
{
	static const struct {
		const char *text;
		bool ok;
	} depth_cases[] = {
	    {"{\"ips\":[\"10.0.0.1\"]}", true},
	    {"[[[[[[[[]]]]]]]]", true},	   /* 8 */
	    {"[[[[[[[[[]]]]]]]]]", false}, /* 9 */
	    {"{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}", false},
	    {"[[[[[[[[]]]]]]]],[[[[[[[[]]]]]]]]", true},     /* siblings do not add up */
	    {"{\"t\":\"[[[[[[[[[[[[\"}", true},		     /* brackets in a string */
	    {"{\"t\":\"\\\"[[[[[[[[[[\"}", true},	     /* after an escaped quote */
	    {"{\"t\":\"\\\\\"[[[[[[[[[[]]]]]]]]]]}", false}, /* an escaped backslash ends it */
	    {"]]]][[[[[[[[[", false},			     /* stray closers do not earn credit */
	};
	api_req_t *r = malloc(sizeof(*r));
	size_t n = 100000;
	char *deep = malloc(n), err[256];

	for (size_t i = 0; i < sizeof(depth_cases) / sizeof(depth_cases[0]); i++) {
		if (api_json_depth_ok(depth_cases[i].text, strlen(depth_cases[i].text),
				      API_JSON_DEPTH_MAX) != depth_cases[i].ok) {
			fprintf(stderr, "depth case %zu: %s\n", i, depth_cases[i].text);
			CHECK(0);
		}
	}
	memset(deep, '[', n);
	CHECK_EQ_INT(api_json_parse(API_OP_CREATE, deep, n, r, err, sizeof(err)), API_JSON_BAD);
	CHECK(strstr(err, "nested deeper") != NULL);
	for (size_t i = 0; i + 5 <= n; i += 5)
		memcpy(deep + i, "{\"a\":", 5);
	CHECK_EQ_INT(api_json_parse(API_OP_DELETE, deep, n, r, err, sizeof(err)), API_JSON_BAD);
	CHECK(strstr(err, "nested deeper") != NULL);
	free(deep);
	free(r);
}

static void test_addr(void)
{
	api_addr_t a;
	char buf[64];

	CHECK_EQ_INT(api_addr_parse("::ffff:10.0.0.1", &a), 0);
	CHECK_EQ_INT(a.len, 16);
	CHECK_EQ_INT(api_addr_parse("1.2.3", &a), API_JSON_BAD);
	CHECK_EQ_INT(api_addr_parse("", &a), API_JSON_BAD);
	CHECK_EQ_INT(api_addr_parse("2001:DB8::A", &a), 0);
	api_addr_format(&a, buf, sizeof(buf));
	CHECK(strcmp(buf, "2001:db8::a") == 0);
	CHECK(strcmp(api_mode_name(STORE_MODE_RANDOM_ONE), "random-one") == 0);
	CHECK(strcmp(api_mode_name(0), "default") == 0);
}

int main(void)
{
	test_table();
	test_fields();
	test_limits();
	test_depth();
	test_addr();
	return check_done();
}
