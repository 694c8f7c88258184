/* Unit tests of server/forward, driven with a fake upstream (no sockets). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mkquery.h"
#include "common/err.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "engine/forward.h"

static uint8_t g_resp[65535];

static conf_addr_t addr4(const char *ip, uint16_t port)
{
	conf_addr_t a;
	struct sockaddr_in *s = (struct sockaddr_in *)&a.sa;

	memset(&a, 0, sizeof(a));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	inet_pton(AF_INET, ip, &s->sin_addr);
	a.len = sizeof(*s);
	return a;
}

static bool same_addr(const conf_addr_t *a, const conf_addr_t *b)
{
	const struct sockaddr_in *x = (const void *)&a->sa, *y = (const void *)&b->sa;
	return x->sin_family == y->sin_family && x->sin_port == y->sin_port &&
	       x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static conf_t *mkconf(void)
{
	conf_t *c = calloc(1, sizeof(*c));
	c->dns_addr = addr4("127.0.0.1", 53);
	c->edns_bufsize = 1232;
	c->forward_timeout_ms = 2000;
	c->cache_size = 1000;
	c->nnameservers = 2;
	c->nameservers_set = true;
	c->nameservers[0] = addr4("127.0.0.2", 5300);
	c->nameservers[1] = addr4("127.0.0.3", 5300);
	return c;
}

/*
 * The worker's socket per UDP try, modelled: a slot is "open" from its send
 * to its release. Sending on an open slot or releasing a closed one fails a
 * check, and every test ends with all slots closed (no socket leaked).
 */
static bool g_open[FORWARD_MAX_INFLIGHT];
static int g_nopen, g_nsent, g_nreleased;

static void drain_releases(forward_t *f)
{
	uint32_t slot;

	while (forward_next_release(f, &slot)) {
		CHECK(slot < FORWARD_MAX_INFLIGHT);
		if (slot >= FORWARD_MAX_INFLIGHT)
			continue;
		CHECK(g_open[slot]);
		g_nopen -= g_open[slot];
		g_open[slot] = false;
		g_nreleased++;
	}
}

/* Releases first (the contract), then one send; a UDP send opens its slot. */
static int take_send(forward_t *f, forward_send_t *s)
{
	drain_releases(f);
	if (!forward_next_send(f, s))
		return 0;
	CHECK(s->slot < FORWARD_MAX_INFLIGHT);
	if (!s->tcp && s->slot < FORWARD_MAX_INFLIGHT) {
		CHECK(!g_open[s->slot]);
		g_nopen += !g_open[s->slot];
		g_open[s->slot] = true;
		g_nsent++;
	}
	return 1;
}

static forward_t *mkfwd(const conf_t *c, const char *resolv)
{
	forward_t *f = NULL;

	memset(g_open, 0, sizeof(g_open));
	g_nopen = g_nsent = g_nreleased = 0;
	forward_opts_t o = {.seed = 12345, .nworkers = 1, .resolv_conf = resolv};
	CHECK_EQ_INT(forward_new(&f, c, &o), 0);
	return f;
}

static int ask(forward_t *f, const query_t *q, uint64_t cookie, uint64_t now, size_t *len)
{
	forward_client_t cl;
	memset(&cl, 0, sizeof(cl));
	cl.cookie = cookie;
	return forward_query(f, q, &cl, now, g_resp, sizeof(g_resp), len);
}

/* The upstream query: ID and question (checked to be lowercase and with OPT). */
typedef struct {
	forward_send_t s;
	uint8_t qname[WIRE_NAME_MAX];
	size_t qnamelen;
	uint16_t qtype;
} sent_t;

static int next_send(forward_t *f, sent_t *out)
{
	wire_reader_t r;
	uint16_t ar;

	if (!take_send(f, &out->s))
		return 0;
	wire_reader_init(&r, out->s.pkt, out->s.len);
	r.pos = 10;
	if (wire_get_u16(&r, &ar) < 0 || wire_get_name(&r, out->qname, &out->qnamelen) < 0 ||
	    wire_get_u16(&r, &out->qtype) < 0)
		return -1;
	CHECK_EQ_INT(ar, 1);
	return 1;
}

/* An upstream answer for a sent query: `nrr` A records with `ttl`, optional TXT padding. */
static size_t mkans(uint8_t *buf, size_t cap, uint16_t id, uint16_t flags, const uint8_t *qname,
		    size_t qnamelen, uint16_t qtype, int nrr, uint32_t ttl)
{
	wire_writer_t w;

	wire_writer_init(&w, buf, cap);
	wire_put_u16(&w, id);
	wire_put_u16(&w, flags);
	wire_put_u16(&w, 1);
	wire_put_u16(&w, (uint16_t)nrr);
	wire_put_u16(&w, 0);
	wire_put_u16(&w, 0);
	wire_put_bytes(&w, qname, qnamelen);
	wire_put_u16(&w, qtype);
	wire_put_u16(&w, WIRE_CLASS_IN);
	for (int i = 0; i < nrr; i++) {
		wire_put_u16(&w, 0xC00C);
		wire_put_u16(&w, WIRE_TYPE_A);
		wire_put_u16(&w, WIRE_CLASS_IN);
		wire_put_u32(&w, ttl);
		wire_put_u16(&w, 4);
		wire_put_u32(&w, 0xC0000200u + (uint32_t)i);
	}
	return w.pos;
}

static size_t answer_for(const sent_t *s, uint8_t *buf, int nrr, uint32_t ttl)
{
	return mkans(buf, 4096, s->s.id, WIRE_FLAG_QR | WIRE_FLAG_AA | WIRE_FLAG_RD, s->qname,
		     s->qnamelen, s->qtype, nrr, ttl);
}

static uint32_t first_ttl(const uint8_t *m, size_t len)
{
	wire_reader_t r;
	uint8_t name[WIRE_NAME_MAX];
	size_t nl;
	uint32_t ttl = 0;

	wire_reader_init(&r, m, len);
	r.pos = WIRE_HDR_LEN;
	if (wire_get_name(&r, name, &nl) < 0 || wire_skip(&r, 4) < 0 ||
	    wire_get_name(&r, name, &nl) < 0 || wire_skip(&r, 4) < 0 || wire_get_u32(&r, &ttl) < 0)
		return 0;
	return ttl;
}

static bool is_probe(const sent_t *s)
{
	return s->qnamelen == 1 && s->qname[0] == 0 && s->qtype == WIRE_TYPE_NS;
}

/* Let every try left time out (SERVFAIL) and free f: every UDP send was released.
 * Health probes (". NS") are answered, so servers come back and probing stops. */
static void done(forward_t *f)
{
	static uint8_t out[65535];
	uint8_t ans[512];
	sent_t s;
	forward_reply_t rep;
	uint64_t now = 1000000;

	for (int i = 0; i < 16 && forward_inflight(f) > 0; i++, now += 100000) {
		forward_on_tick(f, now);
		while (next_send(f, &s) == 1)
			if (is_probe(&s))
				forward_on_packet(f, s.s.slot, s.s.to, ans,
						  answer_for(&s, ans, 0, 0), now);
		while (forward_next_reply(f, &rep, out, sizeof(out)))
			;
	}
	drain_releases(f);
	CHECK_EQ_INT(forward_inflight(f), 0);
	CHECK_EQ_INT(g_nopen, 0);
	CHECK_EQ_INT(g_nreleased, g_nsent);
	forward_free(f);
}

static void test_basic_and_cache(void)
{
	conf_t *c = mkconf();
	forward_t *f = mkfwd(c, NULL);
	query_t q;
	sent_t s;
	forward_reply_t rep;
	uint8_t ans[4096], out[65535];
	size_t len;

	mkq(&q, "Www.Example.NET", WIRE_TYPE_A, 0xABCD);
	CHECK_EQ_INT(ask(f, &q, 77, 1000, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s), 1);
	CHECK_EQ_INT(next_send(f, &(sent_t){0}), 0);
	CHECK(same_addr(s.s.to, &c->nameservers[0]));
	CHECK(!s.s.tcp);
	CHECK_EQ_INT(g_nopen, 1);
	uint8_t lower[WIRE_NAME_MAX];
	memcpy(lower, q.qname, q.qnamelen);
	wire_name_lower(lower, q.qnamelen);
	CHECK_MEM(s.qname, lower, q.qnamelen);

	size_t alen = answer_for(&s, ans, 2, 300);
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 1050);
	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 1);
	CHECK_EQ_INT(rep.client.cookie, 77);
	CHECK_EQ_INT(wire_read_u16(out), 0xABCD);
	CHECK(wire_read_u16(out + 2) & WIRE_FLAG_RA);
	CHECK(!(wire_read_u16(out + 2) & WIRE_FLAG_AA));
	CHECK_MEM(out + WIRE_HDR_LEN, q.qname, q.qnamelen);
	CHECK_EQ_INT(wire_read_u16(out + 6), 2);
	CHECK_EQ_INT(first_ttl(out, rep.len), 300);
	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 0);
	CHECK_EQ_INT(forward_inflight(f), 0);
	drain_releases(f);
	CHECK_EQ_INT(g_nopen, 0); /* answer accepted: its socket goes */

	/* Second query 10 s later: cache hit, TTL counted down, nothing sent. */
	mkq(&q, "www.example.net", WIRE_TYPE_A, 0x1111);
	CHECK_EQ_INT(ask(f, &q, 78, 11050, &len), FWD_ANSWERED);
	CHECK_EQ_INT(wire_read_u16(g_resp), 0x1111);
	CHECK_EQ_INT(first_ttl(g_resp, len), 290);
	CHECK_EQ_INT(next_send(f, &s), 0);

	forward_stats_t st;
	forward_stats_read(f, &st);
	CHECK_EQ_INT(st.forwarded, 1);
	CHECK_EQ_INT(st.cache.hits, 1);
	CHECK_EQ_INT(st.cache.misses, 1);
	done(f);
	free(c);
}

static void test_mismatch_ignored(void)
{
	conf_t *c = mkconf();
	forward_t *f = mkfwd(c, NULL);
	query_t q;
	sent_t s;
	forward_reply_t rep;
	uint8_t ans[4096], out[65535], other[WIRE_NAME_MAX];
	size_t len, alen, olen;

	mkq(&q, "m.example.net", WIRE_TYPE_A, 1);
	CHECK_EQ_INT(ask(f, &q, 1, 0, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s), 1);

	/* Wrong ID. */
	alen = mkans(ans, sizeof(ans), (uint16_t)(s.s.id + 1), WIRE_FLAG_QR, s.qname, s.qnamelen,
		     s.qtype, 1, 60);
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 10);
	/* Wrong source (the other server, and another port). */
	alen = answer_for(&s, ans, 1, 60);
	forward_on_packet(f, s.s.slot, &c->nameservers[1], ans, alen, 10);
	conf_addr_t port = addr4("127.0.0.2", 5301);
	forward_on_packet(f, s.s.slot, &port, ans, alen, 10);
	/* Wrong question name, wrong type. */
	wire_name_from_text("evil.example.net", other, &olen);
	alen = mkans(ans, sizeof(ans), s.s.id, WIRE_FLAG_QR, other, olen, s.qtype, 1, 60);
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 10);
	alen = mkans(ans, sizeof(ans), s.s.id, WIRE_FLAG_QR, s.qname, s.qnamelen, WIRE_TYPE_AAAA, 1,
		     60);
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 10);
	/* Wrong question class (CH for an IN question): name and type alone do not match. */
	alen = answer_for(&s, ans, 1, 60);
	wire_write_u16(ans + WIRE_HDR_LEN + s.qnamelen + 2, WIRE_CLASS_CH);
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 10);
	/* Not a response. */
	alen = mkans(ans, sizeof(ans), s.s.id, 0, s.qname, s.qnamelen, s.qtype, 1, 60);
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 10);
	/* Compression loop in the answer: owner points at itself. */
	alen = answer_for(&s, ans, 1, 60);
	wire_write_u16(ans + WIRE_HDR_LEN + s.qnamelen + 4,
		       (uint16_t)(0xC000 | (WIRE_HDR_LEN + s.qnamelen + 4)));
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 10);
	/* Truncated garbage. */
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, 3, 10);
	/* Right ID, source and question, but on another try's socket. */
	alen = answer_for(&s, ans, 1, 60);
	forward_on_packet(f, (s.s.slot + 1) % FORWARD_MAX_INFLIGHT, &c->nameservers[0], ans, alen,
			  10);
	forward_on_packet(f, UINT32_MAX, &c->nameservers[0], ans, alen, 10);

	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 0);
	CHECK_EQ_INT(forward_inflight(f), 1);
	forward_stats_t st;
	forward_stats_read(f, &st);
	CHECK_EQ_INT(st.ignored, 10);
	CHECK_EQ_INT(g_nopen, 1); /* ignored packets end nothing */
	CHECK_EQ_INT(st.malformed, 1);

	/* Same server, answer with the question in other case: accepted. */
	uint8_t upper[WIRE_NAME_MAX];
	memcpy(upper, s.qname, s.qnamelen);
	upper[1] = 'M';
	alen = mkans(ans, sizeof(ans), s.s.id, WIRE_FLAG_QR, upper, s.qnamelen, s.qtype, 1, 60);
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 20);
	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 1);
	CHECK_EQ_INT(wire_read_u16(out + 6), 1);
	done(f);
	free(c);
}

static void test_timeout_failover_servfail(void)
{
	conf_t *c = mkconf();
	forward_t *f = mkfwd(c, NULL);
	query_t q;
	sent_t s1, s2;
	forward_reply_t rep;
	uint8_t ans[4096], out[65535];
	size_t len;

	mkq(&q, "slow.example.net", WIRE_TYPE_A, 9);
	CHECK_EQ_INT(ask(f, &q, 5, 0, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s1), 1);
	CHECK_EQ_INT(forward_next_timeout(f), 1000); /* 2 s budget / 2 servers */
	forward_on_tick(f, 999);
	CHECK_EQ_INT(next_send(f, &s2), 0);
	forward_on_tick(f, 1000);
	/* The timed-out try's socket must close before the next try's opens. */
	forward_send_t raw;
	uint32_t rel;
	CHECK_EQ_INT(forward_next_send(f, &raw), 0);
	CHECK_EQ_INT(forward_next_release(f, &rel), 1);
	CHECK_EQ_INT(rel, s1.s.slot);
	CHECK_EQ_INT(forward_next_release(f, &rel), 0);
	CHECK(g_open[rel]);
	g_open[rel] = false;
	g_nopen--;
	g_nreleased++;
	CHECK_EQ_INT(next_send(f, &s2), 1);
	CHECK(same_addr(s2.s.to, &c->nameservers[1]));
	/* A late answer of the first server is no longer accepted. */
	size_t alen = answer_for(&s1, ans, 1, 60);
	forward_on_packet(f, s1.s.slot, &c->nameservers[0], ans, alen, 1100);
	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 0);
	forward_on_tick(f, 2000);
	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 1);
	CHECK_EQ_INT(rep.client.cookie, 5);
	CHECK_EQ_INT(wire_read_u16(out), 9);
	CHECK_EQ_INT(wire_read_u16(out + 2) & 0xF, WIRE_RCODE_SERVFAIL);
	CHECK_EQ_INT(forward_inflight(f), 0);

	forward_server_stats_t ss;
	CHECK_EQ_INT(forward_server_stats(f, 0, &ss), 0);
	CHECK_EQ_INT(ss.queries, 1);
	CHECK_EQ_INT(ss.timeouts, 1);
	CHECK_EQ_INT(forward_server_stats(f, 1, &ss), 0);
	CHECK_EQ_INT(ss.timeouts, 1);

	/* SERVFAIL is cached for 5 s, then asked again. */
	CHECK_EQ_INT(ask(f, &q, 6, 6999, &len), FWD_FAILED);
	CHECK_EQ_INT(wire_read_u16(g_resp + 2) & 0xF, WIRE_RCODE_SERVFAIL);
	CHECK_EQ_INT(next_send(f, &s1), 0);
	CHECK_EQ_INT(ask(f, &q, 6, 7000, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s1), 1);

	/* An upstream SERVFAIL moves on to the next server. */
	alen = mkans(ans, sizeof(ans), s1.s.id, WIRE_FLAG_QR | WIRE_RCODE_SERVFAIL, s1.qname,
		     s1.qnamelen, s1.qtype, 0, 0);
	forward_on_packet(f, s1.s.slot, &c->nameservers[0], ans, alen, 7010);
	CHECK_EQ_INT(next_send(f, &s2), 1);
	CHECK(same_addr(s2.s.to, &c->nameservers[1]));
	alen = answer_for(&s2, ans, 1, 60);
	forward_on_packet(f, s2.s.slot, &c->nameservers[1], ans, alen, 7020);
	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 1);
	CHECK_EQ_INT(wire_read_u16(out + 2) & 0xF, WIRE_RCODE_NOERROR);
	done(f);
	free(c);
}

static void test_tc_retry_tcp(void)
{
	conf_t *c = mkconf();
	forward_t *f = mkfwd(c, NULL);
	query_t q;
	sent_t s, t;
	forward_reply_t rep;
	uint8_t ans[4096], out[65535];
	size_t len, alen;

	mkq(&q, "big.example.net", WIRE_TYPE_A, 3);
	CHECK_EQ_INT(ask(f, &q, 1, 0, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s), 1);
	alen = mkans(ans, sizeof(ans), s.s.id, WIRE_FLAG_QR | WIRE_FLAG_TC, s.qname, s.qnamelen,
		     s.qtype, 0, 0);
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 10);
	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 0);
	CHECK_EQ_INT(next_send(f, &t), 1);
	CHECK(t.s.tcp);
	CHECK_EQ_INT(t.s.slot, s.s.slot);
	drain_releases(f);
	CHECK_EQ_INT(g_nopen, 0); /* the UDP try ended with the TC answer */
	CHECK(same_addr(t.s.to, &c->nameservers[0]));
	alen = answer_for(&t, ans, 3, 60);
	forward_on_packet(f, t.s.slot, &c->nameservers[0], ans, alen, 20);
	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 1);
	CHECK_EQ_INT(wire_read_u16(out + 6), 3);
	CHECK(!(wire_read_u16(out + 2) & WIRE_FLAG_TC));
	forward_stats_t st;
	forward_stats_read(f, &st);
	CHECK_EQ_INT(st.tcp_retries, 1);
	done(f);
	free(c);
}

static void test_coalesce(void)
{
	conf_t *c = mkconf();
	forward_t *f = mkfwd(c, NULL);
	query_t q1, q2;
	sent_t s;
	forward_reply_t rep;
	uint8_t ans[4096], out[65535];
	size_t len;
	int got = 0;

	mkq(&q1, "dup.example.net", WIRE_TYPE_A, 100);
	mkq(&q2, "DUP.EXAMPLE.net", WIRE_TYPE_A, 200);
	CHECK_EQ_INT(ask(f, &q1, 1, 0, &len), FWD_PENDING);
	CHECK_EQ_INT(ask(f, &q2, 2, 5, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s), 1);
	sent_t none;
	CHECK_EQ_INT(next_send(f, &none), 0); /* one upstream query for both */
	size_t alen = answer_for(&s, ans, 1, 60);
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 10);
	while (forward_next_reply(f, &rep, out, sizeof(out)) == 1 && got < 4) {
		got++;
		const query_t *q = rep.client.cookie == 1 ? &q1 : &q2;
		CHECK_EQ_INT(wire_read_u16(out), q->id);
		CHECK_MEM(out + WIRE_HDR_LEN, q->qname, q->qnamelen);
	}
	CHECK_EQ_INT(got, 2);
	forward_stats_t st;
	forward_stats_read(f, &st);
	CHECK_EQ_INT(st.joined, 1);
	CHECK_EQ_INT(st.forwarded, 1);
	drain_releases(f);
	CHECK_EQ_INT(g_nsent, 1);
	CHECK_EQ_INT(g_nreleased, 1);
	done(f);
	free(c);
}

/* A try without a socket (EMFILE) waits for its timeout; a refusal fails over at once. */
static void test_send_errors(void)
{
	conf_t *c = mkconf();
	forward_t *f = mkfwd(c, NULL);
	forward_server_stats_t ss;
	forward_reply_t rep;
	uint8_t out[65535];
	query_t q;
	sent_t s1, s2;
	size_t len;

	mkq(&q, "err.example.net", WIRE_TYPE_A, 5);
	CHECK_EQ_INT(ask(f, &q, 1, 0, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s1), 1);
	forward_on_error(f, s1.s.slot, false, 10);
	forward_on_error(f, (s1.s.slot + 1) % FORWARD_MAX_INFLIGHT, true, 10); /* no try there */
	forward_on_error(f, UINT32_MAX, true, 10);
	CHECK_EQ_INT(next_send(f, &s2), 0);
	CHECK_EQ_INT(forward_inflight(f), 1);
	CHECK_EQ_INT(g_nopen, 1);
	CHECK_EQ_INT(forward_server_stats(f, 0, &ss), 0);
	CHECK_EQ_INT(ss.errors, 1);

	forward_on_error(f, s1.s.slot, true, 20);
	CHECK_EQ_INT(next_send(f, &s2), 1);
	CHECK(same_addr(s2.s.to, &c->nameservers[1]));
	CHECK_EQ_INT(g_nopen, 1); /* the first socket released, the second open */
	CHECK_EQ_INT(forward_server_stats(f, 0, &ss), 0);
	CHECK_EQ_INT(ss.errors, 2);
	forward_on_error(f, s2.s.slot, true, 30);
	drain_releases(f);
	CHECK_EQ_INT(g_nopen, 0);
	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 1);
	CHECK_EQ_INT(wire_read_u16(out + 2) & 0xF, WIRE_RCODE_SERVFAIL);
	CHECK_EQ_INT(forward_inflight(f), 0);
	done(f);
	free(c);
}

static void add_sub(conf_t *c, const char *name, const char *ip)
{
	conf_subdomain_t *s = &c->subdomains[c->nsubdomains++];
	wire_name_from_text(name, s->name, &s->namelen);
	s->nservers = 1;
	s->servers[0] = addr4(ip, 53);
}

static void test_subdomain_routing(void)
{
	conf_t *c = mkconf();
	add_sub(c, "a.example.com", "127.0.0.11"); /* listed before its parent */
	add_sub(c, "example.com", "127.0.0.10");
	add_sub(c, "b.example.com", "127.0.0.12");
	forward_t *f = mkfwd(c, NULL);
	query_t q;
	sent_t s;
	size_t len;
	conf_addr_t want;

	mkq(&q, "x.a.example.com", WIRE_TYPE_A, 1);
	CHECK_EQ_INT(ask(f, &q, 1, 0, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s), 1);
	want = addr4("127.0.0.11", 53);
	CHECK(same_addr(s.s.to, &want));

	mkq(&q, "xa.example.com", WIRE_TYPE_A, 1); /* not a label boundary */
	CHECK_EQ_INT(ask(f, &q, 1, 0, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s), 1);
	want = addr4("127.0.0.10", 53);
	CHECK(same_addr(s.s.to, &want));

	mkq(&q, "other.org", WIRE_TYPE_A, 1);
	CHECK_EQ_INT(ask(f, &q, 1, 0, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s), 1);
	CHECK(same_addr(s.s.to, &c->nameservers[0]));
	CHECK_EQ_INT(forward_server_count(f), 5);
	done(f);
	free(c);
}

static void test_client_edns_limit(void)
{
	conf_t *c = mkconf();
	forward_t *f = mkfwd(c, NULL);
	query_t q;
	sent_t s;
	forward_reply_t rep;
	uint8_t ans[4096], out[65535];
	size_t len;

	/* 40 A records: 12 + 17 + 40 * 16 = 669 bytes. */
	mkq(&q, "many.example.net", WIRE_TYPE_A, 4);
	q.edns = true;
	q.edns_udp = 600;
	q.resp_limit = 600;
	CHECK_EQ_INT(ask(f, &q, 1, 0, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s), 1);
	size_t alen = answer_for(&s, ans, 40, 60);
	forward_on_packet(f, s.s.slot, &c->nameservers[0], ans, alen, 10);
	CHECK_EQ_INT(forward_next_reply(f, &rep, out, sizeof(out)), 1);
	CHECK(rep.len <= 600);
	CHECK(wire_read_u16(out + 2) & WIRE_FLAG_TC);
	CHECK_EQ_INT(wire_read_u16(out + 6), 0);
	CHECK_EQ_INT(wire_read_u16(out + 10), 1); /* our OPT */

	/* The same client over TCP gets it whole, from the cache. */
	q.resp_limit = 65535;
	CHECK_EQ_INT(ask(f, &q, 1, 20, &len), FWD_ANSWERED);
	CHECK_EQ_INT(wire_read_u16(g_resp + 6), 40);
	CHECK(!(wire_read_u16(g_resp + 2) & WIRE_FLAG_TC));
	done(f);
	free(c);
}

static void test_resolv_conf_and_loop(void)
{
	char path[] = "/tmp/test_forward_resolv_XXXXXX";
	int fd = mkstemp(path);
	const char text[] = "# comment\nsearch example.net\nnameserver 127.0.0.9\n"
			    "nameserver ::1\nnameserver bogus\nnameserver 127.0.0.1\n";
	CHECK(fd >= 0);
	CHECK_EQ_INT(write(fd, text, sizeof(text) - 1), (long)(sizeof(text) - 1));
	close(fd);

	conf_t *c = mkconf();
	c->nnameservers = 0; /* key present but empty */
	forward_t *f = mkfwd(c, path);
	/* 127.0.0.1:53 is dns-addr: a loop, skipped. */
	CHECK_EQ_INT(forward_server_count(f), 2);
	query_t q;
	sent_t s;
	size_t len;
	mkq(&q, "r.example.net", WIRE_TYPE_A, 1);
	CHECK_EQ_INT(ask(f, &q, 1, 0, &len), FWD_PENDING);
	CHECK_EQ_INT(next_send(f, &s), 1);
	conf_addr_t want = addr4("127.0.0.9", 53);
	CHECK(same_addr(s.s.to, &want));
	done(f);

	/* No servers at all: SERVFAIL right away. */
	f = mkfwd(c, "/nonexistent/resolv.conf");
	CHECK_EQ_INT(forward_server_count(f), 0);
	CHECK_EQ_INT(ask(f, &q, 1, 0, &len), FWD_FAILED);
	CHECK_EQ_INT(wire_read_u16(g_resp + 2) & 0xF, WIRE_RCODE_SERVFAIL);
	done(f);
	unlink(path);
	free(c);
}

static void test_inflight_bound(void)
{
	conf_t *c = mkconf();
	forward_t *f = mkfwd(c, NULL);
	query_t q;
	size_t len;
	char name[64];
	int pending = 0, failed = 0;

	for (int i = 0; i < FORWARD_MAX_INFLIGHT + 3; i++) {
		snprintf(name, sizeof(name), "n%d.example.net", i);
		mkq(&q, name, WIRE_TYPE_A, 1);
		int r = ask(f, &q, (uint64_t)i, 0, &len);
		pending += r == FWD_PENDING;
		failed += r == FWD_FAILED;
	}
	CHECK_EQ_INT(pending, FORWARD_MAX_INFLIGHT);
	CHECK_EQ_INT(failed, 3);
	forward_stats_t st;
	forward_stats_read(f, &st);
	CHECK_EQ_INT(st.inflight_drops, 3);
	/* Every upstream query has a distinct ID. */
	static uint8_t seen[65536];
	forward_send_t s;
	int sends = 0, dups = 0;
	while (take_send(f, &s) && sends < 2 * FORWARD_MAX_INFLIGHT) {
		dups += seen[s.id]++ > 0;
		sends++;
	}
	CHECK_EQ_INT(sends, FORWARD_MAX_INFLIGHT);
	CHECK_EQ_INT(dups, 0);
	CHECK_EQ_INT(g_nopen, FORWARD_MAX_INFLIGHT); /* a socket per question: each slot once */
	done(f);
	free(c);
}

/* A reload keeps the forwarder (and its cache) only when nothing it copied changed. */
static void test_conf_same(void)
{
	conf_t *a = mkconf(), *b = mkconf();

	CHECK(forward_configured(a));
	CHECK(forward_conf_same(a, b));
	/* garbage in sockaddr padding must not matter */
	memset(((struct sockaddr_in *)&b->nameservers[0].sa)->sin_zero, 0xAA, 8);
	CHECK(forward_conf_same(a, b));
	b->nameservers[1] = addr4("127.0.0.4", 5300);
	CHECK(!forward_conf_same(a, b));
	b->nameservers[1] = a->nameservers[1];
	b->cache_size = 5;
	CHECK(!forward_conf_same(a, b));
	b->cache_size = a->cache_size;
	add_sub(a, "x.test.", "127.0.0.9");
	CHECK(!forward_conf_same(a, b));
	add_sub(b, "x.test.", "127.0.0.9");
	CHECK(forward_conf_same(a, b));
	b->subdomains[0].servers[0] = addr4("127.0.0.8", 53);
	CHECK(!forward_conf_same(a, b));
	/* resolv.conf may have changed behind an empty nameservers list */
	a->nnameservers = b->nnameservers = 0;
	b->subdomains[0] = a->subdomains[0];
	CHECK(!forward_conf_same(a, b));
	a->nameservers_set = b->nameservers_set = false;
	a->nsubdomains = b->nsubdomains = 0;
	CHECK(!forward_configured(a));
	free(a);
	free(b);
}

/* ---- issue 10 -------------------------------------------------------------- */

static conf_addr_t addr6(const char *ip)
{
	conf_addr_t a;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a.sa;

	memset(&a, 0, sizeof(a));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(40000);
	inet_pton(AF_INET6, ip, &s->sin6_addr);
	a.len = sizeof(*s);
	return a;
}

static int ask_from(forward_t *f, const char *name, const conf_addr_t *from, uint64_t cookie,
		    uint64_t now)
{
	forward_client_t cl;
	query_t q;
	size_t len;

	memset(&cl, 0, sizeof(cl));
	cl.addr = *from;
	cl.cookie = cookie;
	mkq(&q, name, WIRE_TYPE_A, (uint16_t)cookie);
	return forward_query(f, &q, &cl, now, g_resp, sizeof(g_resp), &len);
}

/* Take every queued send; keep the one whose question is `name` (lowercase). */
static int send_for(forward_t *f, const char *name, sent_t *out)
{
	uint8_t want[WIRE_NAME_MAX];
	size_t wantlen;
	sent_t s;
	int found = 0;

	wire_name_from_text(name, want, &wantlen);
	while (next_send(f, &s) == 1)
		if (s.qnamelen == wantlen && memcmp(s.qname, want, wantlen) == 0) {
			*out = s;
			found = 1;
		}
	return found;
}

/* The reply for client `cookie` among those queued; its rcode, or -1 when none came. */
static int reply_rcode(forward_t *f, uint64_t cookie)
{
	static uint8_t out[65535];
	forward_reply_t rep;
	int rcode = -1;

	while (forward_next_reply(f, &rep, out, sizeof(out)))
		if (rep.client.cookie == cookie)
			rcode = wire_read_u16(out + 2) & 0xF;
	return rcode;
}

/* The defaults, with the two upstreams of mkconf. */
static conf_t *mkconf_defaults(void)
{
	conf_t *c = NULL, *m = mkconf();

	CHECK_EQ_INT(conf_defaults(&c), 0);
	c->nnameservers = m->nnameservers;
	c->nameservers_set = true;
	memcpy(c->nameservers, m->nameservers, sizeof(c->nameservers));
	c->dns_addr = m->dns_addr;
	free(m);
	return c;
}

/*
 * Item 7: 6,000 unique names from one /24 towards an upstream that never
 * answers take at most their share; a question of another network already in
 * flight is not evicted, and a new one still goes upstream and is answered.
 * Before the fix the flood took all 4,096 slots and the newcomer got SERVFAIL.
 */
static void test_fair_share_flood(void)
{
	conf_t *c = mkconf_defaults();
	forward_t *f = mkfwd(c, NULL);
	conf_addr_t b = addr4("127.1.0.1", 40000);
	uint8_t ans[4096];
	char name[64];
	sent_t s1, s2;
	int pending = 0, failed = 0;

	CHECK_EQ_INT(ask_from(f, "before.victim.example", &b, 1, 0), FWD_PENDING);
	CHECK_EQ_INT(send_for(f, "before.victim.example", &s1), 1);
	for (int i = 0; i < 6000; i++) {
		conf_addr_t a = addr4("127.0.0.1", (uint16_t)(1024 + i));
		((struct sockaddr_in *)&a.sa)->sin_addr.s_addr = htonl(0x7f000001u + (i % 250));
		snprintf(name, sizeof(name), "flood%d.attacker.example", i);
		int r = ask_from(f, name, &a, 1000 + (uint64_t)i, 1);
		pending += r == FWD_PENDING;
		failed +=
		    r == FWD_FAILED && (wire_read_u16(g_resp + 2) & 0xF) == WIRE_RCODE_SERVFAIL;
	}
	CHECK(pending <= FORWARD_MAX_INFLIGHT / 8);
	CHECK_EQ_INT(pending + failed, 6000);
	CHECK_EQ_INT(ask_from(f, "after.victim.example", &b, 2, 2), FWD_PENDING);
	CHECK_EQ_INT(send_for(f, "after.victim.example", &s2), 1);
	forward_on_packet(f, s1.s.slot, s1.s.to, ans, answer_for(&s1, ans, 1, 60), 3);
	CHECK_EQ_INT(reply_rcode(f, 1), WIRE_RCODE_NOERROR);
	forward_on_packet(f, s2.s.slot, s2.s.to, ans, answer_for(&s2, ans, 1, 60), 4);
	CHECK_EQ_INT(reply_rcode(f, 2), WIRE_RCODE_NOERROR);
	printf("fair share: flood from one /24: %d in flight, %d SERVFAIL at once\n", pending,
	       failed);
	done(f);
	conf_free(c);
}

/* Item 7 in detail: what counts as one network, waiters, and shares given back. */
static void test_fair_share_rules(void)
{
	conf_t *c = mkconf();
	forward_t *f;
	forward_stats_t st;
	char name[64];
	int n;

	c->forward_max_per_client = 4; /* 4 questions, 8 waiters per network */
	f = mkfwd(c, NULL);
	const conf_addr_t a1 = addr4("10.1.2.3", 1), a2 = addr4("10.1.2.200", 2),
			  mapped = addr6("::ffff:10.1.2.9"), other24 = addr4("10.1.3.3", 1),
			  v6a = addr6("2001:db8:0:1200::1"), v6b = addr6("2001:db8:0:12ff:ffff::2"),
			  v6c = addr6("2001:db8:0:1300::1"), none = {.len = 0};
	const conf_addr_t *same24[3] = {&a1, &a2, &mapped};

	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "q%d.a.example", i);
		n = ask_from(f, name, same24[i % 3], (uint64_t)i, 0);
		CHECK_EQ_INT(n, i < 4 ? FWD_PENDING : FWD_FAILED);
	}
	CHECK_EQ_INT(ask_from(f, "x.other24.example", &other24, 50, 0), FWD_PENDING);
	/* Joining questions in flight costs waiters only: 4 more fit, then no more. */
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "q%d.a.example", i % 4);
		CHECK_EQ_INT(ask_from(f, name, &a1, 100 + (uint64_t)i, 0),
			     i < 4 ? FWD_PENDING : FWD_FAILED);
	}
	/* Another network may join them. */
	CHECK_EQ_INT(ask_from(f, "q0.a.example", &other24, 51, 0), FWD_PENDING);
	/* IPv6 counts by /56. */
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "v%d.six.example", i);
		CHECK_EQ_INT(ask_from(f, name, i % 2 ? &v6a : &v6b, 200 + (uint64_t)i, 0),
			     FWD_PENDING);
	}
	CHECK_EQ_INT(ask_from(f, "v9.six.example", &v6a, 210, 0), FWD_FAILED);
	CHECK_EQ_INT(ask_from(f, "v9.six.example", &v6c, 211, 0), FWD_PENDING);
	/* No address (an internal caller): not counted. */
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "n%d.none.example", i);
		CHECK_EQ_INT(ask_from(f, name, &none, 300 + (uint64_t)i, 0), FWD_PENDING);
	}
	forward_stats_read(f, &st);
	CHECK_EQ_INT(st.share_drops, 2 + 2 + 1);
	CHECK_EQ_INT(st.inflight_drops, 0);
	/* Every try times out: the SERVFAILs give the shares back. */
	for (uint64_t now = 1000; forward_inflight(f) > 0 && now < 100000; now += 1000) {
		forward_on_tick(f, now);
		while (take_send(f, &(forward_send_t){0}))
			;
		(void)reply_rcode(f, 0);
	}
	CHECK_EQ_INT(forward_inflight(f), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "again%d.a.example", i);
		CHECK_EQ_INT(ask_from(f, name, same24[i % 3], 400 + (uint64_t)i, 200000),
			     FWD_PENDING);
	}
	CHECK_EQ_INT(ask_from(f, "again9.a.example", &a1, 410, 200000), FWD_FAILED);
	done(f);
	/* 0 turns the cap off. */
	c->forward_max_per_client = 0;
	f = mkfwd(c, NULL);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "q%d.off.example", i);
		CHECK_EQ_INT(ask_from(f, name, &a1, (uint64_t)i, 0), FWD_PENDING);
	}
	done(f);
	free(c);
}

/* The old generator: xorshift128+ seeded from opts.seed through splitmix, after the cache's. */
static uint64_t sm(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint16_t xorshift_id(uint64_t st[2])
{
	uint64_t s1 = st[0];
	const uint64_t s0 = st[1];

	st[0] = s0;
	s1 ^= s1 << 23;
	st[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return (uint16_t)(st[1] + s0);
}

/*
 * Item 10: upstream IDs do not follow from the seed (two forwarders made with
 * the same seed ask with different IDs, and neither with xorshift128+'s), and
 * they keep coming unpredictable past the generator's refills (1,200 IDs).
 */
static void test_ids_unpredictable(void)
{
	enum { N = 1200 };
	static uint16_t ids[2][N];
	conf_t *c = mkconf();
	char name[64];
	uint64_t x = 12345, st[2];
	int same = 0, xs = 0, dups = 0;

	for (int k = 0; k < 2; k++) {
		forward_t *f = mkfwd(c, NULL); /* seed 12345 both times */
		forward_send_t s;
		int n = 0;
		for (int i = 0; i < N; i++) {
			snprintf(name, sizeof(name), "id%d.example.net", i);
			ask_from(f, name, &(conf_addr_t){.len = 0}, (uint64_t)i, 0);
			while (take_send(f, &s) && n < N)
				ids[k][n++] = s.id;
		}
		CHECK_EQ_INT(n, N);
		done(f);
	}
	(void)sm(&x); /* the cache's seed came first */
	st[0] = sm(&x);
	st[1] = sm(&x) | 1;
	for (int i = 0; i < N; i++) {
		same += ids[0][i] == ids[1][i];
		xs += ids[0][i] == xorshift_id(st);
		for (int j = i > 16 ? i - 16 : 0; j < i; j++)
			dups += ids[0][j] == ids[0][i];
	}
	/* Chance agreement: N / 65536 expected, so 0 or 1. */
	CHECK(same < 8);
	CHECK(xs < 8);
	CHECK_EQ_INT(dups, 0); /* IDs in flight are distinct */
	free(c);
}

/* ---- issue 14: upstream selection and health --------------------------- */

/* Ask `name`, take its first send. @return the index of the server it went to (0, 1, ..). */
static int first_server(forward_t *f, const conf_t *c, const char *name, uint64_t cookie,
			uint64_t now, sent_t *out)
{
	query_t q;
	size_t len;

	mkq(&q, name, WIRE_TYPE_A, (uint16_t)cookie);
	CHECK_EQ_INT(ask(f, &q, cookie, now, &len), FWD_PENDING);
	if (!send_for(f, name, out))
		return -1;
	for (size_t i = 0; i < c->nnameservers; i++)
		if (same_addr(out->s.to, &c->nameservers[i]))
			return (int)i;
	return -1;
}

/* Count the probes among the queued sends, answering them when `answer`. */
static int take_probes(forward_t *f, bool answer, uint64_t now, conf_addr_t *to)
{
	uint8_t ans[512];
	sent_t s;
	int n = 0;

	while (next_send(f, &s) == 1) {
		if (!is_probe(&s))
			continue;
		n++;
		if (to)
			*to = *s.s.to;
		if (answer)
			forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 0, 0), now);
	}
	return n;
}

/*
 * nameservers = dead,live with the default policy (fastest): the first
 * question waits for the dead server's try, then goes to the live one;
 * after that, questions go to the live one first. The dead one is probed
 * in the background (". NS"), taken out after max-fails, probed every
 * health-check, and back in use at its first answer. Before issue 14 every
 * question asked server 0 first and waited out its timeout.
 */
static void test_dead_server_routed_around(void)
{
	conf_t *c = mkconf();
	uint8_t ans[4096];
	char name[64];
	sent_t s;
	uint64_t now = 1000;
	conf_addr_t pto;

	c->max_fails = 2;
	c->health_check_ms = 500;
	forward_t *f = mkfwd(c, NULL);
	CHECK_EQ_INT(first_server(f, c, "q0.example", 1, now, &s), 0);
	now += 1000; /* try time: 2 s / 2 servers */
	forward_on_tick(f, now);
	CHECK_EQ_INT(take_send(f, &s.s) && same_addr(s.s.to, &c->nameservers[1]), 1);
	forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 60), now + 1);
	CHECK_EQ_INT(reply_rcode(f, 1), WIRE_RCODE_NOERROR);
	/* 20 more questions: each asks the live server first; the dead one gets probes only. */
	int probes = 0;
	for (int i = 1; i <= 20; i++) {
		snprintf(name, sizeof(name), "q%d.example", i);
		CHECK_EQ_INT(first_server(f, c, name, 100 + (uint64_t)i, now, &s), 1);
		forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 60), now + 1);
		CHECK_EQ_INT(reply_rcode(f, 100 + (uint64_t)i), WIRE_RCODE_NOERROR);
		now += 100;
		forward_on_tick(f, now); /* probes time out (1 s) and are sent again */
		probes += take_probes(f, false, now, &pto);
		if (probes)
			CHECK(same_addr(&pto, &c->nameservers[0]));
	}
	/* 2 s: the first probe at once (fails 1 -> 2 = down), then one per 500 ms. */
	CHECK(probes >= 2 && probes <= 4);
	/* It answers now: the next probe (at most one health-check away) brings it back. */
	int back = 0;
	for (int i = 0; i < 12 && !back; i++) {
		now += 100;
		forward_on_tick(f, now);
		back = take_probes(f, true, now, NULL);
	}
	CHECK_EQ_INT(back, 1);
	CHECK_EQ_INT(first_server(f, c, "after.example", 500, now, &s), 0);
	forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 60), now);
	forward_server_stats_t st;
	CHECK_EQ_INT(forward_server_stats(f, 0, &st), 0);
	CHECK(st.probes >= 3);
	CHECK_EQ_INT(st.queries, 2);
	printf("dead,live: %d probes of the dead server in 2 s, back at its first answer\n",
	       probes);
	done(f);
	free(c);
}

/* All servers out: questions still go to them (a guess beats SERVFAIL). */
static void test_all_down_still_asked(void)
{
	conf_t *c = mkconf();
	sent_t s;
	uint64_t now = 1000;

	c->max_fails = 1;
	c->health_check_ms = 60000;
	forward_t *f = mkfwd(c, NULL);
	CHECK_EQ_INT(first_server(f, c, "a.example", 1, now, &s), 0);
	now += 1000;
	forward_on_tick(f, now);
	now += 1000;
	forward_on_tick(f, now); /* both timed out: both out */
	CHECK_EQ_INT(reply_rcode(f, 1), WIRE_RCODE_SERVFAIL);
	take_probes(f, false, now, NULL);
	CHECK(first_server(f, c, "b.example", 2, now, &s) >= 0);
	done(f);
	free(c);
}

static void test_policies(void)
{
	uint8_t ans[4096];
	char name[64];
	sent_t s;
	int seen[2];

	/* round-robin: first tries alternate. */
	conf_t *c = mkconf();
	c->policy = CONF_POLICY_ROUND_ROBIN;
	forward_t *f = mkfwd(c, NULL);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "rr%d.example", i);
		CHECK_EQ_INT(first_server(f, c, name, 1 + (uint64_t)i, 10, &s), i % 2);
		forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 60), 11);
		reply_rcode(f, 1 + (uint64_t)i);
	}
	done(f);
	/* sequential: always the first, even when the second is faster. */
	c->policy = CONF_POLICY_SEQUENTIAL;
	f = mkfwd(c, NULL);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "seq%d.example", i);
		CHECK_EQ_INT(first_server(f, c, name, 1 + (uint64_t)i, 10, &s), 0);
		forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 60),
				  10 + 100 * (uint64_t)(i + 1));
		reply_rcode(f, 1 + (uint64_t)i);
	}
	done(f);
	/* random: both get first tries. */
	c->policy = CONF_POLICY_RANDOM;
	f = mkfwd(c, NULL);
	seen[0] = seen[1] = 0;
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "rnd%d.example", i);
		int k = first_server(f, c, name, 1 + (uint64_t)i, 10, &s);
		CHECK(k == 0 || k == 1);
		if (k == 0 || k == 1)
			seen[k]++;
		forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 60), 11);
		reply_rcode(f, 1 + (uint64_t)i);
	}
	CHECK(seen[0] > 0 && seen[1] > 0);
	done(f);
	/* fastest: server 0 answers in 300 ms, server 1 in 1 ms: server 1 wins. */
	c->policy = CONF_POLICY_FASTEST;
	c->nameservers[0] = addr4("127.0.0.2", 5300);
	f = mkfwd(c, NULL);
	CHECK_EQ_INT(first_server(f, c, "slow.example", 1, 10, &s), 0);
	forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 60), 310);
	reply_rcode(f, 1);
	/* server 1 has no sample yet: it is tried (unknown counts as fast), then kept. */
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "fast%d.example", i);
		CHECK_EQ_INT(first_server(f, c, name, 2 + (uint64_t)i, 400, &s), 1);
		forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 60), 401);
		reply_rcode(f, 2 + (uint64_t)i);
	}
	done(f);
	free(c);
}

/* Serve-stale: the reply queued for client `cookie`: its rcode and first TTL (-1: none). */
static int stale_reply(forward_t *f, uint64_t cookie, uint32_t *ttl)
{
	static uint8_t out[65535];
	forward_reply_t rep;
	int rcode = -1;

	while (forward_next_reply(f, &rep, out, sizeof(out)))
		if (rep.client.cookie == cookie) {
			rcode = wire_read_u16(out + 2) & 0xF;
			*ttl = first_ttl(out, rep.len);
		}
	return rcode;
}

/*
 * Serve-stale: an expired answer is asked upstream again; when every server
 * fails its waiters get the stale answer (TTL 30), not SERVFAIL; when the
 * servers are slower than stale-answer-timeout they get it then, and the
 * late answer still refreshes the cache. Before issue 14: SERVFAIL.
 */
static void test_serve_stale(void)
{
	conf_t *c = mkconf();
	uint8_t ans[4096];
	query_t q;
	sent_t s;
	size_t len;
	uint32_t ttl = 0;

	c->serve_stale = 60;
	c->stale_answer_timeout_ms = 5000; /* longer than both tries: the all-fail path */
	forward_t *f = mkfwd(c, NULL);
	mkq(&q, "s.example", WIRE_TYPE_A, 1);
	CHECK_EQ_INT(ask(f, &q, 1, 1000, &len), FWD_PENDING);
	CHECK_EQ_INT(send_for(f, "s.example", &s), 1);
	forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 10), 1001);
	CHECK_EQ_INT(reply_rcode(f, 1), WIRE_RCODE_NOERROR);
	/* Expired at 11 s: asked again; both servers time out (1 s each). */
	CHECK_EQ_INT(ask(f, &q, 2, 20000, &len), FWD_PENDING);
	CHECK_EQ_INT(send_for(f, "s.example", &s), 1);
	forward_on_tick(f, 21000);
	CHECK_EQ_INT(send_for(f, "s.example", &s), 1);
	forward_on_tick(f, 22000);
	CHECK_EQ_INT(stale_reply(f, 2, &ttl), WIRE_RCODE_NOERROR);
	CHECK_EQ_INT(ttl, CACHE_STALE_TTL);
	/* Still stale afterwards: the failure cached no SERVFAIL over it. */
	CHECK_EQ_INT(ask(f, &q, 3, 22100, &len), FWD_PENDING);
	done(f);

	/* Slow servers: stale at stale-answer-timeout, the late answer refreshes. */
	c->stale_answer_timeout_ms = 300;
	f = mkfwd(c, NULL);
	CHECK_EQ_INT(ask(f, &q, 1, 1000, &len), FWD_PENDING);
	CHECK_EQ_INT(send_for(f, "s.example", &s), 1);
	forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 10), 1001);
	reply_rcode(f, 1);
	CHECK_EQ_INT(ask(f, &q, 2, 20000, &len), FWD_PENDING);
	CHECK_EQ_INT(send_for(f, "s.example", &s), 1);
	forward_on_tick(f, 20200);
	CHECK_EQ_INT(stale_reply(f, 2, &ttl), -1); /* not yet */
	forward_on_tick(f, 20300);
	CHECK_EQ_INT(stale_reply(f, 2, &ttl), WIRE_RCODE_NOERROR);
	CHECK_EQ_INT(ttl, CACHE_STALE_TTL);
	/* A client asking now joins nothing: the stale answer at once. */
	CHECK_EQ_INT(ask(f, &q, 3, 20400, &len), FWD_ANSWERED);
	CHECK_EQ_INT(first_ttl(g_resp, len), CACHE_STALE_TTL);
	forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 77), 20900);
	CHECK_EQ_INT(ask(f, &q, 4, 21000, &len), FWD_ANSWERED);
	CHECK_EQ_INT(first_ttl(g_resp, len), 77);
	done(f);
	free(c);
}

/*
 * Prefetch: a hit in the last 10 % of an entry's TTL answers from the cache at
 * once and asks upstream once in the background (a second hit and a client
 * that misses meanwhile ask nothing more); the answer replaces the entry, so
 * the name does not miss at the old expiry. A refresh that fails keeps the
 * old answer. Before: nothing was sent until the entry expired and missed.
 */
static void test_prefetch(void)
{
	conf_t *c = mkconf();
	forward_t *f = mkfwd(c, NULL);
	uint8_t ans[4096];
	query_t q;
	sent_t s;
	size_t len;

	mkq(&q, "p.example", WIRE_TYPE_A, 1);
	CHECK_EQ_INT(ask(f, &q, 1, 1000, &len), FWD_PENDING);
	CHECK_EQ_INT(send_for(f, "p.example", &s), 1);
	forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 100), 1001);
	CHECK_EQ_INT(reply_rcode(f, 1), WIRE_RCODE_NOERROR);
	/* 85 s of 100: a plain hit, nothing sent. */
	CHECK_EQ_INT(ask(f, &q, 2, 86001, &len), FWD_ANSWERED);
	CHECK_EQ_INT(next_send(f, &s), 0);
	/* 95 s: answered from the cache, and one refresh goes out. */
	CHECK_EQ_INT(ask(f, &q, 3, 96001, &len), FWD_ANSWERED);
	CHECK_EQ_INT(first_ttl(g_resp, len), 5);
	CHECK_EQ_INT(send_for(f, "p.example", &s), 1);
	CHECK_EQ_INT(ask(f, &q, 4, 96500, &len), FWD_ANSWERED);
	CHECK_EQ_INT(next_send(f, &(sent_t){0}), 0);
	CHECK_EQ_INT(forward_inflight(f), 1);
	forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 100), 96600);
	CHECK_EQ_INT(reply_rcode(f, 3), -1); /* nobody waited on the refresh */
	CHECK_EQ_INT(forward_inflight(f), 0);
	/* Past the old expiry (101 s): a hit on the refreshed entry. */
	CHECK_EQ_INT(ask(f, &q, 5, 110000, &len), FWD_ANSWERED);
	CHECK_EQ_INT(first_ttl(g_resp, len), 87);
	CHECK_EQ_INT(next_send(f, &s), 0);

	/* A refresh that fails (both servers time out) caches no SERVFAIL over it. */
	CHECK_EQ_INT(ask(f, &q, 6, 187000, &len), FWD_ANSWERED);
	CHECK_EQ_INT(send_for(f, "p.example", &s), 1);
	forward_on_tick(f, 188000);
	CHECK_EQ_INT(send_for(f, "p.example", &s), 1);
	forward_on_tick(f, 189000);
	CHECK_EQ_INT(forward_inflight(f), 0);
	CHECK_EQ_INT(ask(f, &q, 7, 189500, &len), FWD_ANSWERED);
	CHECK_EQ_INT(wire_read_u16(g_resp + 2) & 0xF, WIRE_RCODE_NOERROR);
	CHECK_EQ_INT(next_send(f, &s), 0); /* once per entry */

	forward_stats_t st;
	forward_stats_read(f, &st);
	CHECK_EQ_INT(st.cache.prefetches, 2);
	done(f);
	free(c);
}

/*
 * Many questions at once, server 0 silent: only those of the first
 * RTT_BAND_MS (10 ms) ask it first; later ones go to server 1 while server
 * 0's first try still waits for its timeout. Before: all of them, for 1 s.
 */
static void test_silent_server_loses_questions_early(void)
{
	conf_t *c = mkconf();
	char name[64];
	sent_t s;
	int first0 = 0;

	forward_t *f = mkfwd(c, NULL);
	for (int i = 0; i < 100; i++) { /* one a millisecond, for 100 ms */
		snprintf(name, sizeof(name), "c%d.example", i);
		int k = first_server(f, c, name, 1 + (uint64_t)i, 1000 + (uint64_t)i, &s);
		first0 += k == 0;
		if (i > 11)
			CHECK_EQ_INT(k, 1);
	}
	CHECK(first0 >= 1 && first0 <= 12);
	printf("silent server: %d of 100 questions asked it first\n", first0);
	done(f);
	free(c);
}

/*
 * max-fails = 0 (no probes): a server that timed out once is not dropped
 * for good under fastest; the passed-over server's srtt decays (1/64 a
 * question) until it is asked again, after some hundred questions.
 */
static void test_fastest_retries_slow_server(void)
{
	conf_t *c = mkconf();
	uint8_t ans[4096];
	char name[64];
	sent_t s;
	int again = -1;

	forward_t *f = mkfwd(c, NULL);
	CHECK_EQ_INT(first_server(f, c, "t0.example", 1, 1000, &s), 0);
	forward_on_tick(f, 2000); /* 1 s try: srtt 1000 ms */
	CHECK_EQ_INT(take_send(f, &s.s) && same_addr(s.s.to, &c->nameservers[1]), 1);
	forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 60), 2001);
	reply_rcode(f, 1);
	for (int i = 0; i < 1000 && again < 0; i++) {
		snprintf(name, sizeof(name), "t%d.example", i + 1);
		int k = first_server(f, c, name, 10 + (uint64_t)i, 3000, &s);
		if (k == 0)
			again = i;
		forward_on_packet(f, s.s.slot, s.s.to, ans, answer_for(&s, ans, 1, 60), 3001);
		reply_rcode(f, 10 + (uint64_t)i);
	}
	CHECK(again >= 100 && again <= 400);
	printf("fastest: a server that timed out is asked again after %d questions\n", again);
	done(f);
	free(c);
}

int main(void)
{
	test_basic_and_cache();
	test_mismatch_ignored();
	test_timeout_failover_servfail();
	test_tc_retry_tcp();
	test_coalesce();
	test_send_errors();
	test_subdomain_routing();
	test_client_edns_limit();
	test_resolv_conf_and_loop();
	test_inflight_bound();
	test_conf_same();
	test_fair_share_flood();
	test_fair_share_rules();
	test_ids_unpredictable();
	test_dead_server_routed_around();
	test_all_down_still_asked();
	test_policies();
	test_serve_stale();
	test_prefetch();
	test_silent_server_loses_questions_early();
	test_fastest_retries_slow_server();
	return check_done();
}
