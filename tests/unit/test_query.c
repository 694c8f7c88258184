/*
 * query_process against a real temp store: whole responses (flags, rcode,
 * sections, TTLs, rdata), EDNS, truncation, FORMERR/NOTIMP/REFUSED/FORWARD,
 * answer selection with health, and a bounded random/mutation loop.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "engine/edns.h"
#include "engine/query.h"
#include "store/store.h"
#include "tests/unit/check.h"

#define MAX_RR 512
#define MIN_TTL 45

typedef struct {
	uint8_t name[WIRE_NAME_MAX];
	size_t namelen;
	uint16_t type, class;
	uint32_t ttl;
	uint16_t rdlen;
	size_t rdoff; /* rdata offset in the packet */
} rr_t;

typedef struct {
	uint16_t id, flags, qd, an, ns, ar;
	uint8_t qname[WIRE_NAME_MAX];
	size_t qnamelen;
	uint16_t qtype, qclass;
	size_t nrr;
	rr_t rr[MAX_RR];
	bool has_opt;
	uint16_t opt_size;
	uint32_t opt_ttl;
	const uint8_t *pkt;
	size_t len;
} resp_t;

static store_t *g_store;
static store_rtxn_t *g_txn;
static conf_t *g_conf;
static query_ctx_t g_ctx;
static char g_dir[] = "/tmp/skydns-test-query-XXXXXX";
static uint8_t g_resp[65535];
static resp_t g_r;
static query_t g_q;
static int g_src;

/* ---- building the store ---- */

static size_t text_name(const char *text, uint8_t *out)
{
	size_t len = 0;

	if (wire_name_from_text(text, out, &len) < 0) {
		fprintf(stderr, "bad test name %s\n", text);
		exit(2);
	}
	return len;
}

static void add(store_wtxn_t *w, const char *owner, uint16_t type, uint32_t ttl, const uint8_t *rd,
		size_t rdlen)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t len = text_name(owner, name);
	int rc = store_rr_add(w, g_src, name, len, type, ttl, rd, (uint16_t)rdlen);

	if (rc < 0) {
		fprintf(stderr, "store_rr_add %s: %s\n", owner, err_str(rc));
		exit(2);
	}
}

static void add_a(store_wtxn_t *w, const char *owner, const char *ip, uint32_t ttl)
{
	uint8_t a[16];

	if (strchr(ip, ':')) {
		inet_pton(AF_INET6, ip, a);
		add(w, owner, WIRE_TYPE_AAAA, ttl, a, 16);
	} else {
		inet_pton(AF_INET, ip, a);
		add(w, owner, WIRE_TYPE_A, ttl, a, 4);
	}
}

static void add_name(store_wtxn_t *w, const char *owner, uint16_t type, const char *target)
{
	uint8_t t[WIRE_NAME_MAX];
	size_t len = text_name(target, t);

	add(w, owner, type, 300, t, len);
}

static void add_srv_mx(store_wtxn_t *w, const char *owner, uint16_t type, const char *target)
{
	uint8_t rd[6 + WIRE_NAME_MAX];
	size_t off = type == WIRE_TYPE_SRV ? 6 : 2;
	static const uint8_t srv[6] = {0, 10, 0, 20, 0, 80}, mx[2] = {0, 10};

	memcpy(rd, type == WIRE_TYPE_SRV ? srv : mx, off);
	off += text_name(target, rd + off);
	add(w, owner, type, 120, rd, off);
}

static void build_store(void)
{
	store_wtxn_t *w = NULL;
	char owner[64], target[64], ip[32];

	if (!mkdtemp(g_dir) || store_open(&g_store, g_dir, 64 << 20, 0) < 0 ||
	    store_write_begin(g_store, &w) < 0 || (g_src = store_source_id(w, "test")) < 0) {
		fprintf(stderr, "cannot set up the store in %s\n", g_dir);
		exit(2);
	}
	add_name(w, "skydns.local.", WIRE_TYPE_NS, "ns9.skydns.local.");
	add_a(w, "a.skydns.local.", "10.0.0.1", 30);
	for (int i = 1; i <= 4; i++) {
		snprintf(ip, sizeof(ip), "10.0.1.%d", i);
		add_a(w, "multi.skydns.local.", ip, 60);
	}
	for (int i = 1; i <= 40; i++) {
		snprintf(ip, sizeof(ip), "10.0.2.%d", i);
		add_a(w, "big.skydns.local.", ip, 60);
	}
	add_a(w, "v6.skydns.local.", "2001:db8::1", 90);
	add_name(w, "c1.skydns.local.", WIRE_TYPE_CNAME, "c2.skydns.local.");
	add_name(w, "c2.skydns.local.", WIRE_TYPE_CNAME, "a.skydns.local.");
	add_name(w, "loop1.skydns.local.", WIRE_TYPE_CNAME, "loop2.skydns.local.");
	add_name(w, "loop2.skydns.local.", WIRE_TYPE_CNAME, "loop1.skydns.local.");
	add_name(w, "dangling.skydns.local.", WIRE_TYPE_CNAME, "nothere.skydns.local.");
	add_name(w, "ext.skydns.local.", WIRE_TYPE_CNAME, "www.example.com.");
	add_name(w, "toother.skydns.local.", WIRE_TYPE_CNAME, "x.other.test.");
	for (int i = 0; i < 10; i++) {
		snprintf(owner, sizeof(owner), "l%d.skydns.local.", i);
		snprintf(target, sizeof(target), "l%d.skydns.local.", i + 1);
		add_name(w, owner, WIRE_TYPE_CNAME, target);
	}
	add_a(w, "l10.skydns.local.", "10.0.0.10", 30);
	add_srv_mx(w, "_http._tcp.svc.skydns.local.", WIRE_TYPE_SRV, "a.skydns.local.");
	add_srv_mx(w, "mx.skydns.local.", WIRE_TYPE_MX, "mail.skydns.local.");
	add_srv_mx(w, "mx2.skydns.local.", WIRE_TYPE_MX, "v6.skydns.local.");
	add_srv_mx(w, "mx2.skydns.local.", WIRE_TYPE_MX, "www.example.com.");
	add_srv_mx(w, "_big._tcp.skydns.local.", WIRE_TYPE_SRV, "big.skydns.local.");
	add_srv_mx(w, "_big._tcp.skydns.local.", WIRE_TYPE_SRV, "a.skydns.local.");
	add_name(w, "sub.other.test.", WIRE_TYPE_NS, "ns1.other.test.");
	add_a(w, "*.wild.skydns.local.", "10.0.5.1", 70);
	add_a(w, "x.wild.skydns.local.", "10.0.5.2", 70);
	add_name(w, "*.cw.skydns.local.", WIRE_TYPE_CNAME, "a.skydns.local.");
	add_name(w, "deleg.skydns.local.", WIRE_TYPE_NS, "ns.deleg.skydns.local.");
	add_a(w, "ns.deleg.skydns.local.", "10.0.6.1", 80);
	add_a(w, "www.deleg.skydns.local.", "10.0.6.2", 80);
	add_srv_mx(w, "_d._tcp.skydns.local.", WIRE_TYPE_SRV, "ns.deleg.skydns.local.");
	add(w, "txt.skydns.local.", WIRE_TYPE_TXT, 200, (const uint8_t *)"\5hello", 6);
	add_name(w, "ptr.skydns.local.", WIRE_TYPE_PTR, "a.skydns.local.");
	add_a(w, "x.y.ent.skydns.local.", "10.0.0.3", 30);
	/* A small lookup cache, as the workers have: every answer below goes through it,
	 * with slot collisions. */
	if (store_write_commit(w) < 0 || store_read_begin(g_store, &g_txn) < 0 ||
	    store_read_cache(g_txn, 8) < 0) {
		fprintf(stderr, "cannot commit the test store\n");
		exit(2);
	}
}

static void set_health(const char *ip, int status)
{
	store_wtxn_t *w = NULL;
	uint8_t a[4];

	inet_pton(AF_INET, ip, a);
	if (store_write_begin(g_store, &w) < 0 || store_health_set(w, a, 4, status, "test") < 0 ||
	    store_write_commit(w) < 0) {
		fprintf(stderr, "cannot set health\n");
		exit(2);
	}
	store_read_reset(g_txn);
	if (store_read_renew(g_txn) < 0)
		exit(2);
}

/* ---- packets ---- */

static size_t put_opt(wire_writer_t *w, uint16_t udp, uint8_t version)
{
	int e = wire_put_u8(w, 0) | wire_put_u16(w, WIRE_TYPE_OPT) | wire_put_u16(w, udp);
	e |= wire_put_u32(w, (uint32_t)version << 16) | wire_put_u16(w, 0);
	return e < 0 ? 0 : 1;
}

/* A query; udp < 0 means no EDNS. */
static size_t make_query(uint8_t *buf, size_t cap, uint16_t flags, const char *qname,
			 uint16_t qtype, uint16_t qclass, int udp, uint8_t version)
{
	wire_writer_t w;
	uint8_t name[WIRE_NAME_MAX];
	size_t len = text_name(qname, name);

	wire_writer_init(&w, buf, cap);
	wire_put_u16(&w, 0x1234);
	wire_put_u16(&w, flags);
	wire_put_u16(&w, 1);
	wire_put_u16(&w, 0);
	wire_put_u16(&w, 0);
	wire_put_u16(&w, udp >= 0 ? 1 : 0);
	wire_put_bytes(&w, name, len);
	wire_put_u16(&w, qtype);
	wire_put_u16(&w, qclass);
	if (udp >= 0)
		put_opt(&w, (uint16_t)udp, version);
	return w.pos;
}

/* Parse a whole response; every byte must be accounted for. */
static int parse_resp(const uint8_t *p, size_t len, resp_t *r)
{
	wire_reader_t rd;

	memset(r, 0, offsetof(resp_t, rr));
	r->pkt = p;
	r->len = len;
	r->nrr = 0;
	r->has_opt = false;
	r->opt_size = 0;
	r->opt_ttl = 0;
	wire_reader_init(&rd, p, len);
	if (wire_get_u16(&rd, &r->id) < 0 || wire_get_u16(&rd, &r->flags) < 0 ||
	    wire_get_u16(&rd, &r->qd) < 0 || wire_get_u16(&rd, &r->an) < 0 ||
	    wire_get_u16(&rd, &r->ns) < 0 || wire_get_u16(&rd, &r->ar) < 0 || r->qd > 1)
		return -1;
	if (r->qd == 1 && (wire_get_name(&rd, r->qname, &r->qnamelen) < 0 ||
			   wire_get_u16(&rd, &r->qtype) < 0 || wire_get_u16(&rd, &r->qclass) < 0))
		return -1;
	size_t total = (size_t)r->an + r->ns + r->ar;
	for (size_t i = 0; i < total; i++) {
		rr_t *x = &r->rr[i < MAX_RR ? i : MAX_RR - 1];
		if (wire_get_name(&rd, x->name, &x->namelen) < 0 ||
		    wire_get_u16(&rd, &x->type) < 0 || wire_get_u16(&rd, &x->class) < 0 ||
		    wire_get_u32(&rd, &x->ttl) < 0 || wire_get_u16(&rd, &x->rdlen) < 0)
			return -1;
		x->rdoff = rd.pos;
		if (wire_skip(&rd, x->rdlen) < 0)
			return -1;
		if (x->type == WIRE_TYPE_OPT) {
			if (r->has_opt || i < (size_t)r->an + r->ns || x->namelen != 1)
				return -1;
			r->has_opt = true;
			r->opt_size = x->class;
			r->opt_ttl = x->ttl;
		}
	}
	r->nrr = total < MAX_RR ? total : MAX_RR;
	return wire_remaining(&rd) == 0 ? 0 : -1;
}

static query_client_t g_client = {.addr = {192, 168, 1, 7}, .addrlen = 4, .tcp = false};

static int run(const uint8_t *req, size_t len, bool tcp)
{
	size_t resplen = 0;
	query_client_t cl = g_client;

	cl.tcp = tcp;
	int rc = query_process(&g_ctx, req, len, &cl, g_resp, tcp ? sizeof(g_resp) : 4096, &resplen,
			       &g_q);
	if (rc == QUERY_REPLY && parse_resp(g_resp, resplen, &g_r) < 0) {
		fprintf(stderr, "unparseable reply\n");
		return -1;
	}
	return rc;
}

static int ask(const char *qname, uint16_t qtype, int udp, bool tcp)
{
	uint8_t req[512];
	size_t len =
	    make_query(req, sizeof(req), WIRE_FLAG_RD, qname, qtype, WIRE_CLASS_IN, udp, 0);

	return run(req, len, tcp);
}

static bool name_is(const uint8_t *name, size_t len, const char *text)
{
	uint8_t n[WIRE_NAME_MAX];
	size_t nl = text_name(text, n);

	return wire_name_equal(name, len, n, nl);
}

static bool rr_is(size_t i, const char *owner, uint16_t type, uint32_t ttl)
{
	const rr_t *x = &g_r.rr[i];

	return i < g_r.nrr && name_is(x->name, x->namelen, owner) && x->type == type &&
	       x->class == WIRE_CLASS_IN && x->ttl == ttl;
}

static bool rdata_addr(size_t i, const char *ip)
{
	uint8_t a[16];
	int v6 = strchr(ip, ':') != NULL;

	inet_pton(v6 ? AF_INET6 : AF_INET, ip, a);
	return g_r.rr[i].rdlen == (v6 ? 16 : 4) &&
	       memcmp(g_r.pkt + g_r.rr[i].rdoff, a, v6 ? 16 : 4) == 0;
}

static bool rdata_name(size_t i, size_t skip, const char *text)
{
	wire_reader_t rd;
	uint8_t n[WIRE_NAME_MAX];
	size_t nl;

	wire_reader_init(&rd, g_r.pkt, g_r.len);
	rd.pos = g_r.rr[i].rdoff + skip;
	return wire_get_name(&rd, n, &nl) == 0 && name_is(n, nl, text);
}

static unsigned rcode(void)
{
	return g_r.flags & 0xf;
}

/* ---- cases ---- */

static void check_soa(size_t i, const char *zone, uint32_t ttl)
{
	wire_reader_t rd;
	uint8_t n[WIRE_NAME_MAX];
	size_t nl;
	uint32_t serial = 0, v[4] = {0};

	CHECK(rr_is(i, zone, WIRE_TYPE_SOA, ttl));
	wire_reader_init(&rd, g_r.pkt, g_r.len);
	rd.pos = g_r.rr[i].rdoff;
	CHECK(wire_get_name(&rd, n, &nl) == 0);
	char want[300];
	snprintf(want, sizeof(want), "ns1.%s", zone);
	CHECK(name_is(n, nl, want));
	CHECK(wire_get_name(&rd, n, &nl) == 0);
	snprintf(want, sizeof(want), "hostmaster.%s", zone);
	CHECK(name_is(n, nl, want));
	wire_get_u32(&rd, &serial);
	for (int k = 0; k < 4; k++)
		wire_get_u32(&rd, &v[k]);
	CHECK_EQ_INT(rd.pos, g_r.rr[i].rdoff + g_r.rr[i].rdlen);
	CHECK_EQ_INT(serial, (uint32_t)store_generation(g_txn));
	CHECK_EQ_INT(v[0], 3600);
	CHECK_EQ_INT(v[1], 600);
	CHECK_EQ_INT(v[2], 86400);
	CHECK_EQ_INT(v[3], MIN_TTL);
}

static void check_hdr(uint16_t flags, unsigned rc, unsigned an, unsigned ns, unsigned ar)
{
	CHECK_EQ_INT(g_r.id, 0x1234);
	CHECK_EQ_INT(g_r.flags & 0xfff0, flags);
	CHECK_EQ_INT(rcode(), rc);
	CHECK_EQ_INT(g_r.qd, 1);
	CHECK_EQ_INT(g_r.an, an);
	CHECK_EQ_INT(g_r.ns, ns);
	CHECK_EQ_INT(g_r.ar, ar);
}

#define AUTH (WIRE_FLAG_QR | WIRE_FLAG_AA | WIRE_FLAG_RD)

static void test_positive(void)
{
	CHECK_EQ_INT(ask("a.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK(rr_is(0, "a.skydns.local.", WIRE_TYPE_A, 30) && rdata_addr(0, "10.0.0.1"));
	CHECK(name_is(g_r.qname, g_r.qnamelen, "a.skydns.local.") && g_r.qtype == WIRE_TYPE_A);

	CHECK_EQ_INT(ask("v6.skydns.local.", WIRE_TYPE_AAAA, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK(rr_is(0, "v6.skydns.local.", WIRE_TYPE_AAAA, 90) && rdata_addr(0, "2001:db8::1"));

	CHECK_EQ_INT(ask("_http._tcp.svc.skydns.local.", WIRE_TYPE_SRV, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 1); /* and a.skydns.local.'s A (issue 17) */
	CHECK(rr_is(0, "_http._tcp.svc.skydns.local.", WIRE_TYPE_SRV, 120));
	CHECK_MEM(g_r.pkt + g_r.rr[0].rdoff, "\0\12\0\24\0\120", 6);
	CHECK(rdata_name(0, 6, "a.skydns.local."));

	CHECK_EQ_INT(ask("mx.skydns.local.", WIRE_TYPE_MX, -1, false), QUERY_REPLY);
	CHECK(rr_is(0, "mx.skydns.local.", WIRE_TYPE_MX, 120) &&
	      rdata_name(0, 2, "mail.skydns.local."));
	CHECK_MEM(g_r.pkt + g_r.rr[0].rdoff, "\0\12", 2);

	CHECK_EQ_INT(ask("txt.skydns.local.", WIRE_TYPE_TXT, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK(rr_is(0, "txt.skydns.local.", WIRE_TYPE_TXT, 200) && g_r.rr[0].rdlen == 6);
	CHECK_MEM(g_r.pkt + g_r.rr[0].rdoff, "\5hello", 6);

	CHECK_EQ_INT(ask("ptr.skydns.local.", WIRE_TYPE_PTR, -1, false), QUERY_REPLY);
	CHECK(rr_is(0, "ptr.skydns.local.", WIRE_TYPE_PTR, 300) &&
	      rdata_name(0, 0, "a.skydns.local."));
}

static void test_case_echo(void)
{
	uint8_t req[512], want[WIRE_NAME_MAX];
	size_t len =
	    make_query(req, sizeof(req), 0, "A.SkyDns.LOCAL.", WIRE_TYPE_A, WIRE_CLASS_IN, -1, 0);
	size_t wl = text_name("A.SkyDns.LOCAL.", want);

	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_AA, 0, 1, 0, 0);
	/* The question is echoed byte for byte; the owner points at it. */
	CHECK_MEM(g_r.pkt + 12, want, wl);
	CHECK(g_r.rr[0].namelen == wl && memcmp(g_r.rr[0].name, want, wl) == 0);
	CHECK(rdata_addr(0, "10.0.0.1"));
}

static void test_apex(void)
{
	CHECK_EQ_INT(ask("skydns.local.", WIRE_TYPE_SOA, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	check_soa(0, "skydns.local.", MIN_TTL);

	CHECK_EQ_INT(ask("skydns.local.", WIRE_TYPE_NS, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK(rr_is(0, "skydns.local.", WIRE_TYPE_NS, 300) &&
	      rdata_name(0, 0, "ns9.skydns.local."));

	/* A domain with nothing stored: the apex still exists, NS synthesized. */
	CHECK_EQ_INT(ask("Other.Test.", WIRE_TYPE_NS, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 1);
	CHECK(rr_is(0, "other.test.", WIRE_TYPE_NS, 3600) && rdata_name(0, 0, "ns1.other.test."));
	/* Issue 17: its address (ns-address, by default the listen address 127.0.0.1). */
	CHECK(rr_is(1, "ns1.other.test.", WIRE_TYPE_A, 3600) && rdata_addr(1, "127.0.0.1"));

	CHECK_EQ_INT(ask("other.test.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 0, 1, 0);
	check_soa(0, "other.test.", MIN_TTL);
	CHECK_EQ_INT(ask("other.test.", WIRE_TYPE_SOA, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	check_soa(0, "other.test.", MIN_TTL);
}

static void test_negative(void)
{
	CHECK_EQ_INT(ask("a.skydns.local.", WIRE_TYPE_MX, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NOERROR, 0, 1, 0);
	check_soa(0, "skydns.local.", MIN_TTL);

	CHECK_EQ_INT(ask("nope.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);
	check_soa(0, "skydns.local.", MIN_TTL);

	CHECK_EQ_INT(ask("deep.nope.other.test.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);
	check_soa(0, "other.test.", MIN_TTL);

	/* Empty non-terminals exist: NODATA, not NXDOMAIN. */
	CHECK_EQ_INT(ask("ent.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NOERROR, 0, 1, 0);
	CHECK_EQ_INT(ask("y.ent.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NOERROR, 0, 1, 0);
	CHECK_EQ_INT(ask("_tcp.svc.skydns.local.", WIRE_TYPE_SRV, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NOERROR, 0, 1, 0);
	check_soa(0, "skydns.local.", MIN_TTL);
	CHECK_EQ_INT(ask("x.y.ent.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NOERROR, 1, 0, 0);
}

static void test_cname(void)
{
	CHECK_EQ_INT(ask("c1.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 3, 0, 0);
	CHECK(rr_is(0, "c1.skydns.local.", WIRE_TYPE_CNAME, 300) &&
	      rdata_name(0, 0, "c2.skydns.local."));
	CHECK(rr_is(1, "c2.skydns.local.", WIRE_TYPE_CNAME, 300) &&
	      rdata_name(1, 0, "a.skydns.local."));
	CHECK(rr_is(2, "a.skydns.local.", WIRE_TYPE_A, 30) && rdata_addr(2, "10.0.0.1"));

	/* Asking for the CNAME itself does not chase. */
	CHECK_EQ_INT(ask("c1.skydns.local.", WIRE_TYPE_CNAME, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);

	/* Chase ends in NODATA: SOA in authority. */
	CHECK_EQ_INT(ask("c1.skydns.local.", WIRE_TYPE_TXT, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 2, 1, 0);
	check_soa(2, "skydns.local.", MIN_TTL);

	CHECK_EQ_INT(ask("loop1.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 2, 0, 0);
	CHECK(rr_is(0, "loop1.skydns.local.", WIRE_TYPE_CNAME, 300));
	CHECK(rr_is(1, "loop2.skydns.local.", WIRE_TYPE_CNAME, 300));

	CHECK_EQ_INT(ask("dangling.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 1, 1, 0);
	CHECK(rr_is(0, "dangling.skydns.local.", WIRE_TYPE_CNAME, 300));
	check_soa(1, "skydns.local.", MIN_TTL);

	CHECK_EQ_INT(ask("ext.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK(rdata_name(0, 0, "www.example.com."));

	/* Into another local domain: its SOA in authority. */
	CHECK_EQ_INT(ask("toother.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 1, 1, 0);
	check_soa(1, "other.test.", MIN_TTL);

	/* l0 -> l1 -> ... -> l10 (A): only 8 links are followed. */
	CHECK_EQ_INT(ask("l0.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 8, 0, 0);
	for (size_t i = 0; i < 8 && i < g_r.nrr; i++)
		CHECK(g_r.rr[i].type == WIRE_TYPE_CNAME);
	CHECK(rr_is(7, "l7.skydns.local.", WIRE_TYPE_CNAME, 300));
	CHECK_EQ_INT(ask("l3.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 8, 0, 0);
	CHECK(rr_is(7, "l10.skydns.local.", WIRE_TYPE_A, 30));
}

static void test_any_class_axfr(void)
{
	uint8_t req[512];
	size_t len;

	CHECK_EQ_INT(ask("a.skydns.local.", WIRE_TYPE_ANY, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK(rr_is(0, "a.skydns.local.", 13, MIN_TTL));
	CHECK_MEM(g_r.pkt + g_r.rr[0].rdoff, "\7RFC8482\0", 9);
	CHECK_EQ_INT(ask("nope.skydns.local.", WIRE_TYPE_ANY, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);

	len =
	    make_query(req, sizeof(req), 0, "a.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_ANY, -1, 0);
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_AA, 0, 1, 0, 0);
	CHECK_EQ_INT(g_r.qclass, WIRE_CLASS_ANY);
	CHECK(rr_is(0, "a.skydns.local.", WIRE_TYPE_A, 30));

	len = make_query(req, sizeof(req), 0, "a.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_CH, -1, 0);
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR, WIRE_RCODE_REFUSED, 0, 0, 0);

	CHECK_EQ_INT(ask("skydns.local.", WIRE_TYPE_AXFR, -1, true), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, WIRE_RCODE_REFUSED, 0, 0, 0);
	CHECK_EQ_INT(ask("skydns.local.", WIRE_TYPE_IXFR, -1, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, WIRE_RCODE_REFUSED, 0, 0, 0);
}

static void test_forward(void)
{
	CHECK_EQ_INT(ask("www.example.com.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, WIRE_RCODE_REFUSED, 0, 0, 0);

	g_conf->nnameservers = 1;
	CHECK_EQ_INT(ask("www.Example.com.", WIRE_TYPE_AAAA, 1400, false), QUERY_FORWARD);
	CHECK(name_is(g_q.qname, g_q.qnamelen, "www.example.com."));
	CHECK_MEM(g_q.qname, "\3www\7Example", 12);
	CHECK(g_q.qtype == WIRE_TYPE_AAAA && g_q.qclass == WIRE_CLASS_IN && g_q.id == 0x1234);
	CHECK(g_q.edns && g_q.edns_udp == 1400 && g_q.resp_limit == 1232);
	/* Local names are still answered locally. */
	CHECK_EQ_INT(ask("a.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);

	/* The forwarder's SERVFAIL: header, question, OPT. */
	uint8_t out[600];
	CHECK_EQ_INT(ask("www.example.com.", WIRE_TYPE_A, 4096, false), QUERY_FORWARD);
	size_t n = query_reply_rcode(&g_q, WIRE_RCODE_SERVFAIL, EDNS_EDE_NONE, out, sizeof(out));
	CHECK(n > 0 && parse_resp(out, n, &g_r) == 0);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, WIRE_RCODE_SERVFAIL, 0, 0, 1);
	CHECK(g_r.has_opt && name_is(g_r.qname, g_r.qnamelen, "www.example.com."));
	CHECK_EQ_INT(query_reply_rcode(&g_q, WIRE_RCODE_SERVFAIL, EDNS_EDE_NONE, out, 20), 0);
	g_conf->nnameservers = 0;

	/* A subDomainServers entry inside a local domain wins. */
	g_conf->nsubdomains = 1;
	g_conf->subdomains[0].namelen = text_name("sub.skydns.local.", g_conf->subdomains[0].name);
	CHECK_EQ_INT(ask("x.SUB.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_FORWARD);
	CHECK_EQ_INT(ask("sub.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_FORWARD);
	CHECK_EQ_INT(ask("xsub.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	CHECK_EQ_INT(rcode(), WIRE_RCODE_NXDOMAIN);
	/* Forwarding configured: other names go out too. */
	CHECK_EQ_INT(ask("www.example.com.", WIRE_TYPE_A, -1, false), QUERY_FORWARD);
	g_conf->nsubdomains = 0;
	g_conf->nameservers_set = true;
	CHECK_EQ_INT(ask("www.example.com.", WIRE_TYPE_A, -1, false), QUERY_FORWARD);
	g_conf->nameservers_set = false;
}

/* Issue 17: a query with DO set gets DO back in every reply with an OPT, UDP and TCP. */
static void ask_do(const char *qname, uint16_t qtype, uint8_t version, bool tcp, int udp)
{
	uint8_t req[512];
	size_t len =
	    make_query(req, sizeof(req), WIRE_FLAG_RD, qname, qtype, WIRE_CLASS_IN, udp, version);

	req[len - 4] |= 0x80; /* the OPT TTL's flags: DO */
	CHECK_EQ_INT(run(req, len, tcp), QUERY_REPLY);
}

static void test_do_bit(void)
{
	for (int tcp = 0; tcp < 2; tcp++) {
		ask_do("a.skydns.local.", WIRE_TYPE_A, 0, tcp, 1232);
		check_hdr(AUTH, 0, 1, 0, 1);
		CHECK_EQ_INT(g_r.opt_ttl, 0x8000);
		ask_do("nope.skydns.local.", WIRE_TYPE_A, 0, tcp, 1232);
		check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 1);
		CHECK_EQ_INT(g_r.opt_ttl, 0x8000);
		ask_do("www.example.com.", WIRE_TYPE_A, 0, tcp, 1232);
		CHECK_EQ_INT(rcode(), WIRE_RCODE_REFUSED);
		CHECK_EQ_INT(g_r.opt_ttl, 0x8000);
		ask_do("a.skydns.local.", WIRE_TYPE_A, 1, tcp, 1232);
		CHECK_EQ_INT(g_r.opt_ttl, 0x01008000); /* BADVERS (16 = 1 << 4), DO */
		ask_do("big.skydns.local.", WIRE_TYPE_A, 0, false, 512);
		CHECK(g_r.flags & WIRE_FLAG_TC);
		CHECK_EQ_INT(g_r.opt_ttl, 0x8000);
	}
	/* Without DO, none comes back. */
	CHECK_EQ_INT(ask("a.skydns.local.", WIRE_TYPE_A, 1232, true), QUERY_REPLY);
	CHECK_EQ_INT(g_r.opt_ttl, 0);
}

/* Issue 17: A/AAAA of in-zone SRV, MX and NS targets ride in the additional section. */
static void test_additional(void)
{
	CHECK_EQ_INT(ask("_http._tcp.svc.skydns.local.", WIRE_TYPE_SRV, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 1);
	CHECK(rr_is(1, "a.skydns.local.", WIRE_TYPE_A, 30) && rdata_addr(1, "10.0.0.1"));
	/* The owner is a pointer to the SRV's target (answer rdata + 6). */
	CHECK_EQ_INT(wire_read_u16(g_r.pkt + g_r.rr[0].rdoff + g_r.rr[0].rdlen),
		     0xc000 | (g_r.rr[0].rdoff + 6));

	/* MX: the AAAA of the in-zone target; the out-of-zone one is not looked up. */
	CHECK_EQ_INT(ask("mx2.skydns.local.", WIRE_TYPE_MX, 1232, true), QUERY_REPLY);
	check_hdr(AUTH, 0, 2, 0, 2);
	CHECK(rr_is(2, "v6.skydns.local.", WIRE_TYPE_AAAA, 90) && rdata_addr(2, "2001:db8::1"));
	CHECK(g_r.rr[3].type == WIRE_TYPE_OPT);
	CHECK_EQ_INT(ask("mx.skydns.local.", WIRE_TYPE_MX, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);

	/* Additional records never cause TC: 40 A of big do not fit 512 bytes and are left
	 * out whole, a's A still goes in. Over TCP all of them fit. */
	CHECK_EQ_INT(ask("_big._tcp.skydns.local.", WIRE_TYPE_SRV, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 2, 0, 1);
	CHECK(rr_is(2, "a.skydns.local.", WIRE_TYPE_A, 30));
	CHECK(g_r.len <= 512);
	CHECK_EQ_INT(ask("_big._tcp.skydns.local.", WIRE_TYPE_SRV, -1, true), QUERY_REPLY);
	check_hdr(AUTH, 0, 2, 0, 41);

	/* NS below the apex pointing at the synthesized name server. */
	CHECK_EQ_INT(ask("sub.other.test.", WIRE_TYPE_NS, -1, false), QUERY_REPLY);
	CHECK_EQ_INT(g_r.ar, 1);
	CHECK(rr_is(g_r.an + g_r.ns, "ns1.other.test.", WIRE_TYPE_A, 3600));

	/* ns1.<domain> itself answers with ns-address; NODATA for other types. */
	CHECK_EQ_INT(ask("NS1.other.test.", WIRE_TYPE_A, -1, true), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK(rr_is(0, "NS1.other.test.", WIRE_TYPE_A, 3600) && rdata_addr(0, "127.0.0.1"));
	CHECK_EQ_INT(ask("ns1.skydns.local.", WIRE_TYPE_AAAA, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NOERROR, 0, 1, 0);
	CHECK_EQ_INT(ask("ns2.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);

	/* ns-address = none: no address, ns1 is NXDOMAIN again, no additional. */
	g_conf->ns_has_v4 = false;
	CHECK_EQ_INT(ask("other.test.", WIRE_TYPE_NS, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK_EQ_INT(ask("ns1.other.test.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);
	/* An IPv6 ns-address only. */
	g_conf->ns_has_v6 = true;
	memcpy(g_conf->ns_v6, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x53", 16);
	CHECK_EQ_INT(ask("other.test.", WIRE_TYPE_NS, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 1);
	CHECK(rr_is(1, "ns1.other.test.", WIRE_TYPE_AAAA, 3600) && rdata_addr(1, "2001:db8::53"));
	g_conf->ns_has_v6 = false;
	g_conf->ns_has_v4 = true;
}

/* Issue 17: wildcards per RFC 4592. */
static void test_wildcard(void)
{
	CHECK_EQ_INT(ask("Abc.wild.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK(rr_is(0, "Abc.wild.skydns.local.", WIRE_TYPE_A, 70) && rdata_addr(0, "10.0.5.1"));
	/* Any depth below the closest encloser. */
	CHECK_EQ_INT(ask("d.e.wild.skydns.local.", WIRE_TYPE_A, -1, true), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK(rr_is(0, "d.e.wild.skydns.local.", WIRE_TYPE_A, 70));
	/* NODATA at a wildcard without the type. */
	CHECK_EQ_INT(ask("abc.wild.skydns.local.", WIRE_TYPE_AAAA, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NOERROR, 0, 1, 0);
	check_soa(0, "skydns.local.", MIN_TTL);
	/* An existing name is answered as itself, and nothing is synthesized below it. */
	CHECK_EQ_INT(ask("x.wild.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	CHECK(rr_is(0, "x.wild.skydns.local.", WIRE_TYPE_A, 70) && rdata_addr(0, "10.0.5.2"));
	CHECK_EQ_INT(ask("x.wild.skydns.local.", WIRE_TYPE_TXT, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NOERROR, 0, 1, 0);
	CHECK_EQ_INT(ask("a.x.wild.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);
	/* The wildcard itself, asked literally. */
	CHECK_EQ_INT(ask("*.wild.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	CHECK(rr_is(0, "*.wild.skydns.local.", WIRE_TYPE_A, 70));
	/* No wildcard at the closest encloser: NXDOMAIN. */
	CHECK_EQ_INT(ask("q.txt.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);
	/* A CNAME wildcard is chased. */
	CHECK_EQ_INT(ask("foo.cw.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 2, 0, 0);
	CHECK(rr_is(0, "foo.cw.skydns.local.", WIRE_TYPE_CNAME, 300) &&
	      rdata_name(0, 0, "a.skydns.local."));
	CHECK(rr_is(1, "a.skydns.local.", WIRE_TYPE_A, 30));
	CHECK_EQ_INT(ask("foo.cw.skydns.local.", WIRE_TYPE_CNAME, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0); /* the CNAME itself, not chased */
	CHECK(rr_is(0, "foo.cw.skydns.local.", WIRE_TYPE_CNAME, 300));
}

/* Issue 17: NS below the apex is a zone cut. */
static void test_delegation(void)
{
	const char *names[] = {"deleg.skydns.local.", "www.deleg.skydns.local.",
			       "ns.deleg.skydns.local.", "no.such.deleg.skydns.local."};
	uint16_t types[] = {WIRE_TYPE_NS, WIRE_TYPE_A, WIRE_TYPE_A, WIRE_TYPE_AAAA};

	for (int tcp = 0; tcp < 2; tcp++) {
		for (size_t i = 0; i < 4; i++) {
			CHECK_EQ_INT(ask(names[i], types[i], -1, tcp), QUERY_REPLY);
			/* AA clear, no answer: glue is never answered authoritatively. */
			check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, 0, 0, 1, 1);
			CHECK(rr_is(0, "deleg.skydns.local.", WIRE_TYPE_NS, 300) &&
			      rdata_name(0, 0, "ns.deleg.skydns.local."));
			CHECK(rr_is(1, "ns.deleg.skydns.local.", WIRE_TYPE_A, 80) &&
			      rdata_addr(1, "10.0.6.1"));
		}
	}
	/* An authoritative answer's target below the cut gets no glue (NSD neither). */
	CHECK_EQ_INT(ask("_d._tcp.skydns.local.", WIRE_TYPE_SRV, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0);
	/* A cut that appears later is seen at the next snapshot: the lookup cache's
	 * remembered "no NS here" dies with the commit. */
	CHECK_EQ_INT(ask("x.ptr.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);
	store_wtxn_t *w = NULL;
	if (store_write_begin(g_store, &w) < 0)
		exit(2);
	add_name(w, "ptr.skydns.local.", WIRE_TYPE_NS, "ns.other.test.");
	if (store_write_commit(w) < 0)
		exit(2);
	CHECK_EQ_INT(ask("x.ptr.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0); /* old snapshot until renewed */
	store_read_reset(g_txn);
	if (store_read_renew(g_txn) < 0)
		exit(2);
	CHECK_EQ_INT(ask("x.ptr.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, 0, 0, 1, 0);
	CHECK(rr_is(0, "ptr.skydns.local.", WIRE_TYPE_NS, 300));
	/* Case kept in the owner: it points into the question. */
	CHECK_EQ_INT(ask("WWW.Deleg.skydns.local.", WIRE_TYPE_A, 1232, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, 0, 0, 1, 2);
	CHECK(rr_is(0, "deleg.skydns.local.", WIRE_TYPE_NS, 300));
}

/*
 * Every store get of the process passes here (the test links libstore statically,
 * so its calls bind to this definition): counts the gets of NS rrsets.
 */
static unsigned g_ns_gets, g_star_gets;

/* Does the rrsets key (name key || 0 || type) hold a "*" label? */
static bool key_has_star(const uint8_t *k, size_t len)
{
	for (size_t pos = 0; pos + 3 < len && k[pos] != 0; pos += (size_t)k[pos] + 1) {
		if (k[pos] == 1 && k[pos + 1] == '*')
			return true;
	}
	return false;
}

int mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
	static int (*real)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *);
	const uint8_t *k = key->mv_data;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "mdb_get");
	if (key->mv_size >= 3 && k[key->mv_size - 3] == 0 && k[key->mv_size - 2] == 0 &&
	    k[key->mv_size - 1] == WIRE_TYPE_NS)
		g_ns_gets++;
	if (key_has_star(k, key->mv_size))
		g_star_gets++;
	return real(txn, dbi, key, data);
}

static unsigned ns_gets_for(const char *qname, uint16_t qtype)
{
	g_ns_gets = 0;
	CHECK_EQ_INT(ask(qname, qtype, -1, false), QUERY_REPLY);
	return g_ns_gets;
}

/*
 * Issue 17 performance: a name with no cut above it costs no NS get (the walk
 * asked every label below the apex for one: 1.28 us instead of 0.80 per query),
 * and one below a cut costs one, for the cut's NS. No lookup cache here, so
 * every get the engine makes is seen.
 */
static void test_zonecut_cost(void)
{
	store_rtxn_t *t = NULL;

	if (store_read_begin(g_store, &t) < 0)
		exit(2);
	g_ctx.txn = t;
	CHECK_EQ_INT(ns_gets_for("a.skydns.local.", WIRE_TYPE_A), 0);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK_EQ_INT(ns_gets_for("x.y.ent.skydns.local.", WIRE_TYPE_A), 0);
	check_hdr(AUTH, 0, 1, 0, 0);
	CHECK_EQ_INT(ns_gets_for("www.deleg.skydns.local.", WIRE_TYPE_A), 1);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, 0, 0, 1, 1);
	/* With wildcards in the store a name that does not exist asks for one... */
	g_star_gets = 0;
	CHECK_EQ_INT(ask("nothere.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);
	CHECK_EQ_INT(g_star_gets, 1);
	store_read_end(t);
	/* ...and without any, it does not (the walk and the get are skipped). */
	store_wtxn_t *w = NULL;
	uint8_t n1[WIRE_NAME_MAX], n2[WIRE_NAME_MAX];
	size_t l1 = text_name("*.wild.skydns.local.", n1), l2 = text_name("*.cw.skydns.local.", n2);
	if (store_write_begin(g_store, &w) < 0 || store_rr_del(w, g_src, n1, l1, 0, NULL, 0) < 0 ||
	    store_rr_del(w, g_src, n2, l2, 0, NULL, 0) < 0 || store_write_commit(w) < 0 ||
	    store_read_begin(g_store, &t) < 0)
		exit(2);
	g_ctx.txn = t;
	g_star_gets = 0;
	CHECK_EQ_INT(ask("nothere.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);
	CHECK_EQ_INT(g_star_gets, 0);
	CHECK_EQ_INT(ask("x.wild.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 0); /* an existing sibling stays */
	CHECK_EQ_INT(ask("y.wild.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 0);
	g_ctx.txn = g_txn;
	store_read_end(t);
	/* Back as they were for the tests after this one (they renew g_txn). */
	if (store_write_begin(g_store, &w) < 0)
		exit(2);
	add_a(w, "*.wild.skydns.local.", "10.0.5.1", 70);
	add_name(w, "*.cw.skydns.local.", WIRE_TYPE_CNAME, "a.skydns.local.");
	if (store_write_commit(w) < 0)
		exit(2);
}

static void test_edns(void)
{
	uint8_t req[512];
	size_t len;

	CHECK_EQ_INT(ask("a.skydns.local.", WIRE_TYPE_A, 4096, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 1, 0, 1);
	CHECK(g_r.has_opt && g_r.opt_size == 1232 && g_r.opt_ttl == 0);
	CHECK_EQ_INT(g_q.resp_limit, 1232);
	CHECK(rr_is(0, "a.skydns.local.", WIRE_TYPE_A, 30));

	CHECK_EQ_INT(ask("a.skydns.local.", WIRE_TYPE_A, 100, false), QUERY_REPLY);
	CHECK_EQ_INT(g_q.resp_limit, 512);
	CHECK(g_r.has_opt);
	CHECK_EQ_INT(ask("a.skydns.local.", WIRE_TYPE_A, 900, false), QUERY_REPLY);
	CHECK_EQ_INT(g_q.resp_limit, 900);
	CHECK_EQ_INT(ask("a.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	CHECK(!g_r.has_opt && g_q.resp_limit == 512);

	/* Negative answers and errors to EDNS queries carry an OPT too. */
	CHECK_EQ_INT(ask("nope.skydns.local.", WIRE_TYPE_A, 1232, false), QUERY_REPLY);
	check_hdr(AUTH, WIRE_RCODE_NXDOMAIN, 0, 1, 1);
	CHECK(g_r.has_opt);
	CHECK_EQ_INT(ask("www.example.com.", WIRE_TYPE_A, 1232, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, WIRE_RCODE_REFUSED, 0, 0, 1);

	len =
	    make_query(req, sizeof(req), 0, "a.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_IN, 1232, 1);
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR, 0, 0, 0, 1);
	CHECK(g_r.has_opt && (g_r.opt_ttl >> 24) == 1 && g_r.opt_size == 1232);
	CHECK_EQ_INT(g_ctx.stats.v[STATS_BADVERS] > 0, 1);

	/* An unknown option is ignored; DO is echoed (RFC 3225 §3). */
	len =
	    make_query(req, sizeof(req), 0, "a.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_IN, 1232, 0);
	memcpy(req + len - 6, "\0\0\x80\0\0\6\0\x63\0\2\xab\xcd", 12);
	len += 6;
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_AA, 0, 1, 0, 1);
	CHECK(g_q.edns_do && g_r.opt_ttl == 0x8000);
	test_do_bit();
}

/* Append a TSIG RR (RFC 8945 §4.2) with a 32-byte MAC and bump ARCOUNT. */
static size_t add_tsig(uint8_t *buf, size_t len, size_t cap, const char *key, const char *alg)
{
	static const uint8_t when[6] = {0, 0, 0x6a, 0x0e, 0x4c, 0xd7};
	uint8_t kn[WIRE_NAME_MAX], an[WIRE_NAME_MAX], mac[32];
	size_t kl = text_name(key, kn), al = text_name(alg, an);
	wire_writer_t w;

	memset(mac, 0xab, sizeof(mac));
	wire_writer_init(&w, buf, cap);
	w.pos = len;
	wire_put_bytes(&w, kn, kl);
	wire_put_u16(&w, 250);
	wire_put_u16(&w, WIRE_CLASS_ANY);
	wire_put_u32(&w, 0);
	wire_put_u16(&w, (uint16_t)(al + 16 + sizeof(mac)));
	wire_put_bytes(&w, an, al);
	wire_put_bytes(&w, when, sizeof(when));
	wire_put_u16(&w, 300);
	wire_put_u16(&w, sizeof(mac));
	wire_put_bytes(&w, mac, sizeof(mac));
	wire_put_u16(&w, 0x1234); /* original ID */
	wire_put_u16(&w, 0);
	wire_put_u16(&w, 0);
	wire_write_u16(buf + 10, (uint16_t)(wire_read_u16(buf + 10) + 1));
	return w.pos;
}

/* The reply's last RR is an unsigned BADKEY TSIG echoing key, algorithm, time and fudge. */
static void check_badkey(const char *key, const char *alg)
{
	const rr_t *t = &g_r.rr[g_r.nrr - 1];
	static const uint8_t when[6] = {0, 0, 0x6a, 0x0e, 0x4c, 0xd7};
	uint8_t an[WIRE_NAME_MAX];
	size_t al = text_name(alg, an);
	const uint8_t *rd = g_r.pkt + t->rdoff;

	CHECK(g_r.nrr >= 1);
	CHECK_EQ_INT(t->type, 250);
	CHECK_EQ_INT(t->class, WIRE_CLASS_ANY);
	CHECK_EQ_INT(t->ttl, 0);
	CHECK(name_is(t->name, t->namelen, key));
	CHECK_EQ_INT(t->rdlen, al + 16);
	if (t->rdlen != al + 16)
		return;
	CHECK_MEM(rd, an, al);
	CHECK_MEM(rd + al, when, 6);
	CHECK_EQ_INT(wire_read_u16(rd + al + 6), 300); /* fudge */
	CHECK_EQ_INT(wire_read_u16(rd + al + 8), 0);   /* MAC size */
	CHECK_EQ_INT(wire_read_u16(rd + al + 10), 0x1234);
	CHECK_EQ_INT(wire_read_u16(rd + al + 12), 17); /* BADKEY */
	CHECK_EQ_INT(wire_read_u16(rd + al + 14), 0);  /* other len */
}

/* Issue 10 item 12: we know no TSIG keys, so a signed query is NOTAUTH/BADKEY (RFC 8945). */
static void test_tsig(void)
{
	uint8_t req[1024];
	size_t len;
	uint64_t notauth = g_ctx.stats.v[STATS_RCODE0 + 9];

	len = make_query(req, sizeof(req), WIRE_FLAG_RD, "a.skydns.local.", WIRE_TYPE_A,
			 WIRE_CLASS_IN, -1, 0);
	len = add_tsig(req, len, sizeof(req), "MyKey.Example.", "hmac-sha256.");
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, 9, 0, 0, 1);
	CHECK(name_is(g_r.qname, g_r.qnamelen, "a.skydns.local."));
	check_badkey("MyKey.Example.", "hmac-sha256.");
	CHECK_EQ_INT(g_ctx.stats.v[STATS_RCODE0 + 9], notauth + 1);

	/* With EDNS: OPT first, TSIG still last; also over TCP and for a forwarded name. */
	len = make_query(req, sizeof(req), 0, "nope.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_IN,
			 1232, 0);
	len = add_tsig(req, len, sizeof(req), "k.", "hmac-md5.sig-alg.reg.int.");
	CHECK_EQ_INT(run(req, len, true), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR, 9, 0, 0, 2);
	CHECK(g_r.has_opt && g_r.rr[0].type == WIRE_TYPE_OPT);
	check_badkey("k.", "hmac-md5.sig-alg.reg.int.");
	g_conf->nnameservers = 1;
	len = make_query(req, sizeof(req), WIRE_FLAG_RD, "www.example.com.", WIRE_TYPE_A,
			 WIRE_CLASS_IN, -1, 0);
	len = add_tsig(req, len, sizeof(req), "k.", "hmac-sha256.");
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	g_conf->nnameservers = 0;
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD, 9, 0, 0, 1);

	/* A TSIG that is not the last RR, or in the authority section: FORMERR. */
	len = make_query(req, sizeof(req), 0, "a.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_IN, -1, 0);
	len = add_tsig(req, len, sizeof(req), "k.", "hmac-sha256.");
	wire_writer_t w;
	wire_writer_init(&w, req, sizeof(req));
	w.pos = len;
	put_opt(&w, 1232, 0);
	wire_write_u16(req + 10, 2);
	CHECK_EQ_INT(run(req, w.pos, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR, WIRE_RCODE_FORMERR, 0, 0, 0);
	len = make_query(req, sizeof(req), 0, "a.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_IN, -1, 0);
	len = add_tsig(req, len, sizeof(req), "k.", "hmac-sha256.");
	wire_write_u16(req + 8, 1);
	wire_write_u16(req + 10, 0);
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR, WIRE_RCODE_FORMERR, 0, 0, 0);

	/* TSIG rdata whose fields do not frame rdlen exactly: FORMERR. */
	len = make_query(req, sizeof(req), 0, "a.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_IN, -1, 0);
	size_t at = len + 3 + 8; /* owner "k." then type, class, ttl: the rdlen */
	len = add_tsig(req, len, sizeof(req), "k.", "hmac-sha256.");
	wire_write_u16(req + at, (uint16_t)(wire_read_u16(req + at) + 1));
	req[len++] = 0;
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR, WIRE_RCODE_FORMERR, 0, 0, 0);
	wire_write_u16(req + at, (uint16_t)(wire_read_u16(req + at) - 2));
	CHECK_EQ_INT(run(req, len - 2, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR, WIRE_RCODE_FORMERR, 0, 0, 0);
}

static void test_truncation(void)
{
	uint64_t tc0 = g_ctx.stats.v[STATS_TRUNCATED];

	/* 40 A records need 652 bytes: too many for 512. */
	CHECK_EQ_INT(ask("big.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	check_hdr(AUTH | WIRE_FLAG_TC, 0, 0, 0, 0);
	CHECK(g_r.len <= 512);
	CHECK_EQ_INT(ask("big.skydns.local.", WIRE_TYPE_A, 512, false), QUERY_REPLY);
	check_hdr(AUTH | WIRE_FLAG_TC, 0, 0, 0, 1);
	CHECK(g_r.has_opt);
	CHECK_EQ_INT(g_ctx.stats.v[STATS_TRUNCATED], tc0 + 2);

	CHECK_EQ_INT(ask("big.skydns.local.", WIRE_TYPE_A, 1232, false), QUERY_REPLY);
	check_hdr(AUTH, 0, 40, 0, 1);
	CHECK(g_r.len <= 1232);
	CHECK_EQ_INT(ask("big.skydns.local.", WIRE_TYPE_A, -1, true), QUERY_REPLY);
	check_hdr(AUTH, 0, 40, 0, 0);
	/* Every address exactly once, rotated. */
	unsigned seen[41] = {0};
	for (size_t i = 0; i < g_r.nrr; i++) {
		uint8_t last = g_r.pkt[g_r.rr[i].rdoff + 3];
		if (last >= 1 && last <= 40)
			seen[last]++;
	}
	unsigned ok = 0;
	for (int i = 1; i <= 40; i++)
		ok += seen[i] == 1;
	CHECK_EQ_INT(ok, 40);
}

static void test_bad_packets(void)
{
	uint8_t req[600];
	size_t len;

	/* Too short for a header, and responses: dropped. */
	len = make_query(req, sizeof(req), 0, "a.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_IN, -1, 0);
	CHECK_EQ_INT(run(req, 11, false), QUERY_DROP);
	CHECK_EQ_INT(run(req, 0, false), QUERY_DROP);
	req[2] |= 0x80;
	CHECK_EQ_INT(run(req, len, false), QUERY_DROP);
	req[2] &= 0x7f;

	/* QDCOUNT 0 and 2. */
	wire_write_u16(req + 4, 0);
	CHECK_EQ_INT(run(req, 12, false), QUERY_REPLY);
	CHECK(rcode() == WIRE_RCODE_FORMERR && g_r.qd == 0 && (g_r.flags & WIRE_FLAG_QR));
	wire_write_u16(req + 4, 2);
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	CHECK(rcode() == WIRE_RCODE_FORMERR && g_r.qd == 0);
	wire_write_u16(req + 4, 1);

	/* Truncated question. */
	CHECK_EQ_INT(run(req, len - 3, false), QUERY_REPLY);
	CHECK_EQ_INT(rcode(), WIRE_RCODE_FORMERR);
	CHECK_EQ_INT(run(req, 14, false), QUERY_REPLY);
	CHECK_EQ_INT(rcode(), WIRE_RCODE_FORMERR);

	/* A name that points at itself. */
	uint8_t loop[] = {0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
	CHECK_EQ_INT(run(loop, sizeof(loop), false), QUERY_REPLY);
	CHECK_EQ_INT(rcode(), WIRE_RCODE_FORMERR);

	/* Lying counts. */
	wire_write_u16(req + 6, 1);
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	CHECK_EQ_INT(rcode(), WIRE_RCODE_FORMERR);
	wire_write_u16(req + 6, 0);
	wire_write_u16(req + 10, 1);
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	CHECK_EQ_INT(rcode(), WIRE_RCODE_FORMERR);
	wire_write_u16(req + 10, 0);
	/* Trailing bytes beyond the counted sections. */
	req[len] = 0;
	CHECK_EQ_INT(run(req, len + 1, false), QUERY_REPLY);
	CHECK_EQ_INT(rcode(), WIRE_RCODE_FORMERR);
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	CHECK_EQ_INT(rcode(), WIRE_RCODE_NOERROR);

	/* Two OPTs; an OPT not at the root; an option running past its RR. */
	len =
	    make_query(req, sizeof(req), 0, "a.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_IN, 1232, 0);
	memcpy(req + len, req + len - 11, 11);
	wire_write_u16(req + 10, 2);
	CHECK_EQ_INT(run(req, len + 11, false), QUERY_REPLY);
	CHECK(rcode() == WIRE_RCODE_FORMERR && !g_r.has_opt && g_r.qd == 1);
	wire_write_u16(req + 10, 1);
	uint8_t bad[64];
	size_t q = len - 11;
	memcpy(bad, req, q);
	memcpy(bad + q, "\1x\0\0\x29\4\xd0\0\0\0\0\0\0", 13);
	CHECK_EQ_INT(run(bad, q + 13, false), QUERY_REPLY);
	CHECK_EQ_INT(rcode(), WIRE_RCODE_FORMERR);
	memcpy(bad + q, "\0\0\x29\4\xd0\0\0\0\0\0\4\0\1\0\x09", 15);
	CHECK_EQ_INT(run(bad, q + 15, false), QUERY_REPLY);
	CHECK_EQ_INT(rcode(), WIRE_RCODE_FORMERR);

	/* Unknown opcode (NOTIFY): NOTIMP, question echoed, opcode copied. */
	len = make_query(req, sizeof(req), 4 << 11, "a.skydns.local.", WIRE_TYPE_SOA, WIRE_CLASS_IN,
			 -1, 0);
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | (4 << 11), WIRE_RCODE_NOTIMP, 0, 0, 0);
	CHECK(name_is(g_r.qname, g_r.qnamelen, "a.skydns.local."));
	/* Issue 17: RD is copied, CD is not (it only means something to QUERY). */
	len = make_query(req, sizeof(req), (5 << 11) | WIRE_FLAG_RD | WIRE_FLAG_CD,
			 "a.skydns.local.", WIRE_TYPE_A, WIRE_CLASS_IN, -1, 0);
	CHECK_EQ_INT(run(req, len, false), QUERY_REPLY);
	check_hdr(WIRE_FLAG_QR | WIRE_FLAG_RD | (5 << 11), WIRE_RCODE_NOTIMP, 0, 0, 0);
}

static void test_selection(void)
{
	unsigned first[5] = {0}, n;

	for (int i = 0; i < 200; i++) {
		CHECK_EQ_INT(ask("multi.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
		CHECK_EQ_INT(g_r.an, 4);
		first[g_r.pkt[g_r.rr[0].rdoff + 3] % 5]++;
	}
	n = 0;
	for (int i = 1; i <= 4; i++)
		n += first[i] > 20;
	CHECK_EQ_INT(n, 4); /* rotation: each address leads sometimes */

	g_conf->hone_one = true;
	CHECK_EQ_INT(ask("multi.skydns.local.", WIRE_TYPE_A, -1, false), QUERY_REPLY);
	CHECK_EQ_INT(g_r.an, 1);
	uint8_t mine = g_r.pkt[g_r.rr[0].rdoff + 3];
	for (int i = 0; i < 20; i++) {
		ask("multi.skydns.local.", WIRE_TYPE_A, -1, false);
		CHECK(g_r.an == 1 && g_r.pkt[g_r.rr[0].rdoff + 3] == mine);
	}
	char ip[32];
	snprintf(ip, sizeof(ip), "10.0.1.%u", mine);
	set_health(ip, STORE_HEALTH_DOWN);
	ask("multi.skydns.local.", WIRE_TYPE_A, -1, false);
	CHECK(g_r.an == 1 && g_r.pkt[g_r.rr[0].rdoff + 3] != mine);
	g_conf->hone_one = false;

	/* Default mode with health: the DOWN address never appears. */
	for (int i = 0; i < 50; i++) {
		ask("multi.skydns.local.", WIRE_TYPE_A, -1, false);
		CHECK_EQ_INT(g_r.an, 3);
		for (size_t k = 0; k < g_r.nrr; k++)
			CHECK(g_r.pkt[g_r.rr[k].rdoff + 3] != mine);
	}
	g_conf->random_one = true;
	for (int i = 0; i < 50; i++) {
		ask("multi.skydns.local.", WIRE_TYPE_A, -1, false);
		CHECK(g_r.an == 1 && g_r.pkt[g_r.rr[0].rdoff + 3] != mine);
	}
	/* All DOWN: fail open. */
	for (int i = 1; i <= 4; i++) {
		snprintf(ip, sizeof(ip), "10.0.1.%d", i);
		set_health(ip, STORE_HEALTH_DOWN);
	}
	ask("multi.skydns.local.", WIRE_TYPE_A, -1, false);
	CHECK_EQ_INT(g_r.an, 1);
	g_conf->random_one = false;
	ask("multi.skydns.local.", WIRE_TYPE_A, -1, false);
	CHECK_EQ_INT(g_r.an, 4);
}

static void test_stats(void)
{
	stats_t sum;

	memset(&sum, 0, sizeof(sum));
	stats_sum(&g_ctx.stats, &sum);
	CHECK(sum.v[STATS_QUERIES] > 100);
	CHECK_EQ_INT(sum.v[STATS_QUERIES], sum.v[STATS_UDP] + sum.v[STATS_TCP]);
	CHECK(sum.v[STATS_TCP] >= 2 && sum.v[STATS_TYPE_A] > 50);
	CHECK(sum.v[STATS_RCODE0 + WIRE_RCODE_NXDOMAIN] > 0 &&
	      sum.v[STATS_RCODE0 + WIRE_RCODE_FORMERR] > 5 &&
	      sum.v[STATS_RCODE0 + WIRE_RCODE_NOTIMP] > 0 && sum.v[STATS_FORWARD] > 0 &&
	      sum.v[STATS_DROPPED] >= 3);
}

/* ---- random and mutated packets ---- */

static uint64_t g_seed = 0x5eed5eed12345678ULL;

static uint64_t prng(void)
{
	g_seed ^= g_seed << 13;
	g_seed ^= g_seed >> 7;
	g_seed ^= g_seed << 17;
	return g_seed;
}

static size_t mutate(uint8_t *p, size_t len, size_t cap)
{
	unsigned ops = 1 + prng() % 4;

	for (unsigned i = 0; i < ops; i++) {
		switch (prng() % 6) {
		case 0: /* flip a byte */
			if (len)
				p[prng() % len] = (uint8_t)prng();
			break;
		case 1: /* truncate */
			if (len)
				len = prng() % len;
			break;
		case 2: /* append junk */
			if (len < cap)
				p[len++] = (uint8_t)prng();
			break;
		case 3: /* a count */
			if (len >= 12)
				p[4 + 2 * (prng() % 4) + 1] = (uint8_t)(prng() % 4);
			break;
		case 4: /* a compression pointer */
			if (len > 14) {
				size_t at = 12 + prng() % (len - 13);
				p[at] = 0xc0 | (uint8_t)(prng() & 0x3f);
				p[at + 1] = (uint8_t)prng();
			}
			break;
		default: /* clear QR, opcode */
			if (len >= 3)
				p[2] &= 0x07;
			break;
		}
	}
	return len;
}

static void test_fuzz(void)
{
	static const char *names[] = {
	    "a.skydns.local.", "big.skydns.local.", "c1.skydns.local.", "nope.skydns.local.",
	    "skydns.local.",   "www.example.com.",  "l0.skydns.local.", "multi.skydns.local."};
	static const uint16_t types[] = {1, 28, 5, 6, 2, 255, 252, 33, 16, 15, 12, 99};
	uint8_t req[600], resp[4096];
	unsigned bad = 0, replies = 0;
	query_t q;

	for (int i = 0; i < 200000; i++) {
		size_t len;
		if (i % 8 == 0) {
			len = prng() % sizeof(req);
			for (size_t k = 0; k < len; k++)
				req[k] = (uint8_t)prng();
		} else {
			len = make_query(
			    req, sizeof(req), (uint16_t)(prng() & 0x0110), names[prng() % 8],
			    types[prng() % 12], prng() % 5 ? 1 : (uint16_t)(prng() % 256),
			    prng() % 3 ? (int)(prng() % 5000) : -1, (uint8_t)(prng() % 5 == 0));
			len = mutate(req, len, sizeof(req));
		}
		g_conf->nnameservers = (size_t)(i & 1);
		query_client_t cl = {.addr = {10, (uint8_t)i}, .addrlen = 4, .tcp = (i % 7) == 0};
		size_t cap = cl.tcp ? sizeof(g_resp) : sizeof(resp), rl = 0;
		uint8_t *out = cl.tcp ? g_resp : resp;
		int rc = query_process(&g_ctx, req, len, &cl, out, cap, &rl, &q);
		if (rc == QUERY_DROP || rc == QUERY_FORWARD)
			continue;
		replies++;
		if (rc != QUERY_REPLY || rl < 12 || rl > cap || (!cl.tcp && rl > q.resp_limit) ||
		    parse_resp(out, rl, &g_r) < 0 || !(g_r.flags & WIRE_FLAG_QR) ||
		    g_r.id != wire_read_u16(req)) {
			if (bad++ < 5)
				fprintf(stderr, "fuzz case %d: rc %d, bad reply of %zu bytes\n", i,
					rc, rl);
		}
	}
	g_conf->nnameservers = 0;
	CHECK_EQ_INT(bad, 0);
	CHECK(replies > 100000);
}

int main(void)
{
	uint8_t other[WIRE_NAME_MAX];

	build_store();
	if (conf_defaults(&g_conf) < 0)
		return 2;
	g_conf->min_ttl = MIN_TTL;
	g_conf->domainlens[1] = text_name("other.test.", other);
	memcpy(g_conf->domains[1], other, g_conf->domainlens[1]);
	g_conf->ndomains = 2;
	query_ctx_init(&g_ctx, g_conf, 42);
	g_ctx.txn = g_txn;

	test_positive();
	test_case_echo();
	test_apex();
	test_negative();
	test_cname();
	test_any_class_axfr();
	test_forward();
	test_edns();
	test_additional();
	test_wildcard();
	test_zonecut_cost();
	test_delegation();
	test_tsig();
	test_truncation();
	test_bad_packets();
	test_selection();
	test_stats();
	test_fuzz();

	store_read_end(g_txn);
	store_close(g_store);
	conf_free(g_conf);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", g_dir);
	return check_done();
}
