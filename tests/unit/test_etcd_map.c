/*
 * test_etcd_map: the SkyDNS / CoreDNS etcd value format (watchers/map.c):
 * keys to names, value validation (bad values are refused, not guessed),
 * and the records a name answers with from the leaves of its subtree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wire.h"
#include "tests/unit/check.h"
#include "watchers/map.h"

#define K(s) (const uint8_t *)(s), strlen(s)

static void test_key_name(void)
{
	uint8_t n[255];
	size_t len;

	CHECK_EQ_INT(map_key_name("/skydns", K("/skydns/local/skydns/cctv2"), n, &len), 0);
	CHECK_EQ_INT(len, 20);
	CHECK_MEM(n, "\5cctv2\6skydns\5local", 20);
	/* A trailing '/' (the original's keys) and upper case give the same name. */
	CHECK_EQ_INT(map_key_name("/skydns", K("/skydns/local/SkyDNS/TV1/"), n, &len), 0);
	CHECK_EQ_INT(len, 18);
	CHECK_MEM(n, "\3tv1\6skydns\5local", 18);
	CHECK_EQ_INT(map_key_name("/skydns/", K("/skydns/local/x"), n, &len), 0);
	CHECK_EQ_INT(map_key_name("/skydns", K("/skydnsx/local"), n, &len), ERR_NOTFOUND);
	CHECK_EQ_INT(map_key_name("/skydns", K("/other/local"), n, &len), ERR_NOTFOUND);
	CHECK_EQ_INT(map_key_name("/skydns", K("/skydns/local/a.b"), n, &len), ERR_PARSE);
	char big[400] = "/skydns/";
	memset(big + 8, 'a', 70);
	CHECK_EQ_INT(map_key_name("/skydns", (const uint8_t *)big, strlen(big), n, &len),
		     ERR_PARSE);
}

static int parse(const char *json, map_value_t *v)
{
	char err[160];

	return map_parse_value((const uint8_t *)json, strlen(json), v, err, sizeof(err));
}

static void test_parse(void)
{
	map_value_t v;
	char err[160] = "";

	CHECK_EQ_INT(parse("{\"host\":\"192.168.10.1\",\"ttl\":30}", &v), 0);
	CHECK_EQ_INT(v.host_kind, MAP_HOST_IP4);
	CHECK_EQ_INT(v.ttl, 30);
	CHECK_EQ_INT(v.priority, MAP_PRIORITY_DEFAULT);
	CHECK_EQ_INT(parse("{\"host\":\"10.0.0.1\"}", &v), 0);
	CHECK_EQ_INT(v.ttl, MAP_TTL_DEFAULT);
	CHECK_EQ_INT(parse("{\"host\":\"2001:db8::1\"}", &v), 0);
	CHECK_EQ_INT(v.host_kind, MAP_HOST_IP6);
	CHECK_EQ_INT(parse("{\"host\":\"[2001:db8::1]\"}", &v), 0);
	CHECK_EQ_INT(parse("{\"host\":\"Cctv2.SkyDNS.local\",\"type\":\"cname\"}", &v), 0);
	CHECK_EQ_INT(v.type, WIRE_TYPE_CNAME);
	CHECK_MEM(v.target, "\5cctv2\6skydns\5local", 20); /* with the root label */
	CHECK_EQ_INT(parse("{\"host\":\"x.example.\",\"port\":8080,\"priority\":20,\"weight\":5,"
			   "\"mail\":true,\"targetstrip\":1,\"group\":\"g1\",\"text\":\"hi\"}",
			   &v),
		     0);
	CHECK_EQ_INT(v.port, 8080);
	CHECK_EQ_INT(v.weight, 5);
	CHECK(v.mail);
	CHECK(strcmp(v.group, "g1") == 0);
	CHECK_EQ_INT(parse("{\"text\":\"only text\"}", &v), 0);
	/* Bad values: each refused with a reason. */
	const char *bad[] = {
	    "{nope",
	    "[1,2]",
	    "{\"host\":\"300.1.1.1\"}",
	    "{\"host\":\"10.0.0\"}",
	    "{\"host\":\"2001:db8::zz\"}",
	    "{\"host\":\"10.0.0.1\",\"type\":\"BOGUS\"}",
	    "{\"host\":\"10.0.0.1\",\"type\":\"AAAA\"}",
	    "{\"host\":\"10.0.0.1\",\"type\":\"CNAME\"}",
	    "{\"host\":\"10.0.0.1\",\"port\":70000}",
	    "{\"host\":\"10.0.0.1\",\"ttl\":-1}",
	    "{\"host\":\"10.0.0.1\",\"mail\":\"yes\"}",
	    "{\"host\":5}",
	    "{}",
	    "{\"host\":\"a..b\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		int ret =
		    map_parse_value((const uint8_t *)bad[i], strlen(bad[i]), &v, err, sizeof(err));
		CHECK_EQ_INT(ret, ERR_PARSE);
		CHECK(err[0] != 0);
		if (ret == 0)
			fprintf(stderr, "accepted: %s\n", bad[i]);
	}
	CHECK_EQ_INT(map_parse_health(K("{\"status\":\"UP\"}")), 1);
	CHECK_EQ_INT(map_parse_health(K("{\"status\":\"down\",\"x\":1}")), 2);
	CHECK_EQ_INT(map_parse_health(K("{\"status\":\"maybe\"}")), ERR_PARSE);
}

/* Records collected from map_build. */
typedef struct {
	uint16_t type[32];
	uint32_t ttl[32];
	uint8_t rdata[32][400];
	uint16_t rdlen[32];
	size_t n;
} rrs_t;

static int collect(void *ctx, uint16_t type, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
	rrs_t *r = ctx;

	if (r->n == 32 || rdlen > 400)
		return -1;
	r->type[r->n] = type;
	r->ttl[r->n] = ttl;
	memcpy(r->rdata[r->n], rdata, rdlen);
	r->rdlen[r->n++] = rdlen;
	return 0;
}

static size_t count_type(const rrs_t *r, uint16_t t)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += r->type[i] == t;
	return n;
}

/* Build at qname from leaves given as (key, json) pairs. */
static void build(const char *qname_key, const char **kv, size_t n, rrs_t *out)
{
	map_leaf_t leaves[16];
	map_value_t vals[16];
	uint8_t names[16][255], q[255];
	size_t ql;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		size_t len;
		CHECK_EQ_INT(map_key_name("/skydns", K(kv[2 * i]), names[i], &len), 0);
		CHECK_EQ_INT(parse(kv[2 * i + 1], &vals[i]), 0);
		leaves[i] = (map_leaf_t){.name = names[i], .namelen = len, .v = &vals[i]};
	}
	CHECK_EQ_INT(map_key_name("/skydns", K(qname_key), q, &ql), 0);
	CHECK_EQ_INT(map_build(q, ql, leaves, n, collect, out), 0);
}

static void test_build_subtree(void)
{
	const char *kv[] = {
	    "/skydns/local/skydns/cctv2/a",   "{\"host\":\"192.168.10.1\",\"ttl\":30}",
	    "/skydns/local/skydns/cctv2/b",   "{\"host\":\"192.168.10.2\",\"ttl\":60}",
	    "/skydns/local/skydns/cctv2/c/d", "{\"host\":\"2001:db8::1\"}"};
	rrs_t r;

	build("/skydns/local/skydns/cctv2", kv, 3, &r);
	CHECK_EQ_INT(count_type(&r, WIRE_TYPE_A), 2);
	CHECK_EQ_INT(count_type(&r, WIRE_TYPE_AAAA), 1);
	CHECK_EQ_INT(count_type(&r, WIRE_TYPE_SRV), 3);
	for (size_t i = 0; i < r.n; i++) {
		/* One TTL per RRset: the minimum. */
		if (r.type[i] == WIRE_TYPE_A || r.type[i] == WIRE_TYPE_SRV)
			CHECK_EQ_INT(r.ttl[i], 30);
		if (r.type[i] == WIRE_TYPE_AAAA)
			CHECK_EQ_INT(r.ttl[i], 300);
	}
}

static uint16_t srv_weight(const rrs_t *r, const char *target_tail)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->type[i] != WIRE_TYPE_SRV)
			continue;
		size_t tl = strlen(target_tail);
		if (r->rdlen[i] >= 6 + tl && memcmp(r->rdata[i] + 6, target_tail, tl) == 0)
			return wire_read_u16(r->rdata[i] + 2);
	}
	return 0xffff;
}

static void test_build_srv(void)
{
	/* Same priority: weights 0 (=100), 100, 300 -> 20, 20, 60. A lone priority 20: 100. */
	const char *kv[] = {"/skydns/test/svc/a",
			    "{\"host\":\"10.0.0.1\",\"port\":80}",
			    "/skydns/test/svc/b",
			    "{\"host\":\"10.0.0.2\",\"port\":80,\"weight\":100}",
			    "/skydns/test/svc/c",
			    "{\"host\":\"web.example.\",\"port\":81,\"weight\":300}",
			    "/skydns/test/svc/d",
			    "{\"host\":\"10.0.0.4\",\"port\":82,\"priority\":20,\"weight\":7}"};
	rrs_t r;

	build("/skydns/test/svc", kv, 4, &r);
	CHECK_EQ_INT(count_type(&r, WIRE_TYPE_SRV), 4);
	CHECK_EQ_INT(srv_weight(&r, "\1a\3svc\4test"), 20);
	CHECK_EQ_INT(srv_weight(&r, "\1b\3svc\4test"), 20);
	CHECK_EQ_INT(srv_weight(&r, "\3web\7example"), 60);
	CHECK_EQ_INT(srv_weight(&r, "\1d\3svc\4test"), 100);
	CHECK_EQ_INT(count_type(&r, WIRE_TYPE_A), 3);
	CHECK_EQ_INT(count_type(&r, WIRE_TYPE_CNAME), 0); /* a name host below: SRV only */

	/* targetstrip 1: the IP host's target loses its first label. */
	const char *ts[] = {"/skydns/test/svc/x/y", "{\"host\":\"10.0.0.9\",\"targetstrip\":1}"};
	build("/skydns/test/svc", ts, 1, &r);
	CHECK_EQ_INT(srv_weight(&r, "\1x\3svc\4test\0"), 100);
}

static void test_build_alias_groups_mx_txt(void)
{
	rrs_t r;
	const char *cn[] = {"/skydns/local/skydns/tv1/",
			    "{\"host\":\"cctv2.skydns.local\",\"type\":\"CNAME\"}"};

	build("/skydns/local/skydns/tv1", cn, 1, &r);
	CHECK_EQ_INT(r.n, 1);
	CHECK_EQ_INT(r.type[0], WIRE_TYPE_CNAME);
	CHECK_EQ_INT(r.rdlen[0], 20);
	/* Above its own name a CNAME leaf gives nothing (explicit type). */
	build("/skydns/local/skydns", cn, 1, &r);
	CHECK_EQ_INT(r.n, 0);

	const char *ptr[] = {"/skydns/arpa/in-addr/10/0/0/1", "{\"host\":\"a.example.\"}"};
	build("/skydns/arpa/in-addr/10/0/0/1", ptr, 1, &r);
	CHECK_EQ_INT(r.n, 1);
	CHECK_EQ_INT(r.type[0], WIRE_TYPE_PTR);

	const char *g[] = {"/skydns/test/g/a",	 "{\"host\":\"10.0.0.1\",\"group\":\"g1\"}",
			   "/skydns/test/g/b/c", "{\"host\":\"10.0.0.2\",\"group\":\"g2\"}",
			   "/skydns/test/g/d/e", "{\"host\":\"10.0.0.3\"}"};
	build("/skydns/test/g", g, 3, &r);
	CHECK_EQ_INT(count_type(&r, WIRE_TYPE_A), 2); /* g1 (shortest) and the ungrouped one */
	for (size_t i = 0; i < r.n; i++)
		if (r.type[i] == WIRE_TYPE_A)
			CHECK(r.rdata[i][3] != 2);

	const char *mx[] = {
	    "/skydns/test/m/a", "{\"host\":\"mail.example.\",\"mail\":true,\"priority\":5}",
	    "/skydns/test/m/b", "{\"host\":\"10.0.0.1\"}",
	    "/skydns/test/m/t", "{\"text\":\"hello\"}"};
	build("/skydns/test/m", mx, 3, &r);
	CHECK_EQ_INT(count_type(&r, WIRE_TYPE_MX), 1); /* only mail: true */
	CHECK_EQ_INT(count_type(&r, WIRE_TYPE_TXT), 1);
	for (size_t i = 0; i < r.n; i++) {
		if (r.type[i] == WIRE_TYPE_MX)
			CHECK_EQ_INT(wire_read_u16(r.rdata[i]), 5);
		if (r.type[i] == WIRE_TYPE_TXT)
			CHECK(r.rdlen[i] == 6 && memcmp(r.rdata[i], "\5hello", 6) == 0);
	}
}

static void test_txt_split(void)
{
	char json[700];
	rrs_t r;

	snprintf(json, sizeof(json), "{\"text\":\"%0300d\"}", 0);
	const char *kv[] = {"/skydns/test/t", json};
	build("/skydns/test/t", kv, 1, &r);
	CHECK_EQ_INT(r.n, 1);
	CHECK_EQ_INT(r.rdlen[0], 302);
	CHECK_EQ_INT(r.rdata[0][0], 255);
	CHECK_EQ_INT(r.rdata[0][256], 45);
}

int main(void)
{
	test_key_name();
	test_parse();
	test_build_subtree();
	test_build_srv();
	test_build_alias_groups_mx_txt();
	test_txt_split();
	return check_done();
}
