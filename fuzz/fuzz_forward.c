/*
 * The forwarder's upstream-answer path: one question goes upstream, then the
 * input arrives as its answer. The target writes the in-flight ID and the
 * question into the packet, so the fuzzer gets past the matching checks to
 * the parser, the cache insert and the client reply builder behind them.
 *
 * Input: byte 0 = control bits, then the packet body.
 *   bit 0: raw mode: the body is the whole packet, only the ID is patched.
 *          Otherwise the body holds header bytes 2..11 (flags and counts,
 *          QDCOUNT forced to 1 unless bit 1), then the section bytes after
 *          the question, which the target inserts.
 *   bit 2: the answer comes from the wrong address (must be ignored).
 *   bits 3-5: QTYPE; bit 6: the client used EDNS; bit 7: the client used TCP.
 * When the answer makes the forwarder try again (TC -> TCP), the same body with TC
 * cleared answers the new try. A run whose answer fails takes the server out
 * (max-fails 1): the health probes (". NS") that follow get the same body as
 * their answer, then a valid one, so the probe path is fuzzed and the server
 * comes back. The worker's socket per UDP try is modelled:
 * a slot opens at its send and closes at its release; a send on an open
 * slot, a release of a closed one, or a slot left open once nothing is in
 * flight aborts. Every query comes from the same client address, so a share
 * of the in-flight tables (forward-max-per-client) not given back at the end
 * of a run shows within 512 runs: the next fresh question is refused, which
 * aborts.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "conf/conf.h"
#include "fuzz/fixture.h"
#include "engine/forward.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PKT_MAX 65535

static const uint16_t g_types[8] = {WIRE_TYPE_A,   WIRE_TYPE_AAAA, WIRE_TYPE_CNAME, WIRE_TYPE_MX,
				    WIRE_TYPE_SRV, WIRE_TYPE_TXT,  WIRE_TYPE_NS,    WIRE_TYPE_PTR};
static forward_t *g_fwd;
static conf_t *g_conf;
static uint64_t g_now = 1000;
static uint32_t g_serial;
static uint8_t g_buf[PKT_MAX];
static uint8_t g_pkt[PKT_MAX + 512];
static bool g_open[FORWARD_MAX_INFLIGHT];
static unsigned g_nopen;

static void setup(void)
{
	struct sockaddr_in *s;
	forward_opts_t o = {.seed = 42, .nworkers = 1, .resolv_conf = "/dev/null"};

	if (conf_defaults(&g_conf) != 0)
		abort();
	g_conf->cache_size = 64; /* small: inserts also evict */
	g_conf->max_fails = 1;	 /* a failed run takes the server out: its probes get answers */
	g_conf->nnameservers = 1;
	g_conf->nameservers_set = true;
	s = (struct sockaddr_in *)&g_conf->nameservers[0].sa;
	s->sin_family = AF_INET;
	s->sin_port = htons(5300);
	s->sin_addr.s_addr = htonl(0x7f000002);
	g_conf->nameservers[0].len = sizeof(*s);
	if (forward_new(&g_fwd, g_conf, &o) != 0)
		abort();
}

/* A fresh name each run, so no earlier run's cache entry answers it; fixed length keeps
 * the seeds' compression pointers valid. */
static void make_query(query_t *q, uint8_t ctl)
{
	char text[32];

	memset(q, 0, sizeof(*q));
	snprintf(text, sizeof(text), "q%08x.example.", g_serial++);
	if (wire_name_from_text(text, q->qname, &q->qnamelen) != 0)
		abort();
	q->id = 0x1234;
	q->flags = WIRE_FLAG_RD;
	q->qtype = g_types[(ctl >> 3) & 7];
	q->qclass = WIRE_CLASS_IN;
	q->edns = ctl & 0x40;
	q->edns_udp = q->edns ? 1232 : 0;
	q->resp_limit = (ctl & 0x80) ? 65535 : (q->edns ? 1232 : 512);
}

static void drain_releases(void)
{
	uint32_t slot;

	while (forward_next_release(g_fwd, &slot)) {
		if (slot >= FORWARD_MAX_INFLIGHT || !g_open[slot])
			abort();
		g_open[slot] = false;
		g_nopen--;
	}
}

/* Releases first (the contract), then one send. @return 1 (s filled) or 0. */
static int next_send(forward_send_t *s)
{
	drain_releases();
	if (!forward_next_send(g_fwd, s))
		return 0;
	if (s->len < WIRE_HDR_LEN || s->len > sizeof(s->pkt) || s->slot >= FORWARD_MAX_INFLIGHT)
		abort();
	if (!s->tcp) {
		if (g_open[s->slot])
			abort();
		g_open[s->slot] = true;
		g_nopen++;
	}
	return 1;
}

static const uint8_t *g_body;
static size_t g_bodylen;
static uint8_t g_ctl;
static size_t build(const forward_send_t *s, uint8_t ctl, const uint8_t *body, size_t n);

/* A health probe: the question ". NS". */
static bool is_probe(const forward_send_t *s)
{
	return s->len >= WIRE_HDR_LEN + 5 && s->pkt[WIRE_HDR_LEN] == 0 &&
	       wire_read_u16(s->pkt + WIRE_HDR_LEN + 1) == WIRE_TYPE_NS;
}

/* The input answers the probe too (the parser behind it), then a valid answer does,
 * so the server comes back and nothing stays in flight. */
static void answer_probe(const forward_send_t *s)
{
	size_t plen = build(s, g_ctl & (uint8_t)~4, g_body, g_bodylen);
	uint8_t ok[WIRE_HDR_LEN + 5];

	forward_on_packet(g_fwd, s->slot, s->to, g_pkt, plen, g_now);
	memset(ok, 0, sizeof(ok));
	wire_write_u16(ok, s->id);
	wire_write_u16(ok + 2, WIRE_FLAG_QR | WIRE_FLAG_RA);
	wire_write_u16(ok + 4, 1);
	wire_write_u16(ok + WIRE_HDR_LEN + 1, WIRE_TYPE_NS);
	wire_write_u16(ok + WIRE_HDR_LEN + 3, WIRE_CLASS_IN);
	forward_on_packet(g_fwd, s->slot, s->to, ok, sizeof(ok), g_now);
}

/* Send, release and reply queues emptied; @return 1 when a new try went out (in *last). */
static int drain(const query_t *q, forward_send_t *last)
{
	forward_send_t s;
	forward_reply_t r;
	int sent = 0;

	while (next_send(&s)) {
		if (is_probe(&s)) {
			answer_probe(&s);
			continue;
		}
		*last = s;
		sent = 1;
	}
	drain_releases();
	while (forward_next_reply(g_fwd, &r, g_buf, sizeof(g_buf)))
		fixture_check_reply(g_buf, r.len, r.client.tcp ? PKT_MAX : q->resp_limit);
	return sent;
}

/* Packet = the in-flight ID, the fuzzer's header bytes, our question, the fuzzer's rest. */
static size_t build(const forward_send_t *s, uint8_t ctl, const uint8_t *body, size_t n)
{
	size_t qlen, hdr = n < 10 ? n : 10, len;

	if (ctl & 1) {
		memcpy(g_pkt, body, n);
		if (n >= 2)
			wire_write_u16(g_pkt, s->id);
		return n;
	}
	memset(g_pkt, 0, WIRE_HDR_LEN);
	wire_write_u16(g_pkt, s->id);
	memcpy(g_pkt + 2, body, hdr);
	if (!(ctl & 2))
		wire_write_u16(g_pkt + 4, 1);
	/* the upstream query's question: up to the end of QTYPE/QCLASS, before its OPT */
	qlen = 0;
	while (WIRE_HDR_LEN + qlen < s->len && s->pkt[WIRE_HDR_LEN + qlen] != 0)
		qlen += 1u + s->pkt[WIRE_HDR_LEN + qlen];
	qlen += 5;
	if (WIRE_HDR_LEN + qlen > s->len)
		abort();
	memcpy(g_pkt + WIRE_HDR_LEN, s->pkt + WIRE_HDR_LEN, qlen);
	len = WIRE_HDR_LEN + qlen;
	memcpy(g_pkt + len, body + hdr, n - hdr);
	return len + n - hdr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	query_t q;
	forward_client_t cl;
	forward_send_t s;
	conf_addr_t from;
	size_t len, plen;
	uint8_t ctl;
	int r;

	if (size < 1 || size > PKT_MAX)
		return 0;
	if (!g_fwd)
		setup();
	ctl = data[0];
	g_ctl = ctl;
	g_body = data + 1;
	g_bodylen = size - 1;
	make_query(&q, ctl);
	memset(&cl, 0, sizeof(cl));
	cl.tcp = ctl & 0x80;
	((struct sockaddr_in *)&cl.addr.sa)->sin_family = AF_INET;
	((struct sockaddr_in *)&cl.addr.sa)->sin_addr.s_addr = htonl(0xC0000201); /* 192.0.2.1 */
	cl.addr.len = sizeof(struct sockaddr_in);
	g_now += 100000; /* past every earlier deadline and cache TTL */
	r = forward_query(g_fwd, &q, &cl, g_now, g_buf, sizeof(g_buf), &len);
	if (r != FWD_PENDING || !next_send(&s) || is_probe(&s))
		abort(); /* a fresh question with a live server must go upstream */
	plen = build(&s, ctl, data + 1, size - 1);
	from = g_conf->nameservers[0];
	if (ctl & 4)
		((struct sockaddr_in *)&from.sa)->sin_port = htons(5301);
	forward_on_packet(g_fwd, s.slot, &from, g_pkt, plen, g_now + 1);
	/* a retry (TC -> TCP) gets the same body as its answer, so the TCP path is fuzzed too */
	if (drain(&q, &s)) {
		plen = build(&s, ctl, data + 1, size - 1);
		if (plen > 2)
			g_pkt[2] &= (uint8_t) ~(WIRE_FLAG_TC >> 8); /* a whole answer this time */
		forward_on_packet(g_fwd, s.slot, &from, g_pkt, plen, g_now + 2);
		drain(&q, &s);
	}
	/* the same question again: a cache hit must be a whole reply too */
	r = forward_query(g_fwd, &q, &cl, g_now + 3, g_buf, sizeof(g_buf), &len);
	if (r == FWD_ANSWERED || r == FWD_FAILED)
		fixture_check_reply(g_buf, len, cl.tcp ? PKT_MAX : q.resp_limit);
	drain(&q, &s);
	/* every try times out within a few ticks: no in-flight slot may leak */
	for (int i = 0; i < 8 && forward_inflight(g_fwd) > 0; i++) {
		g_now += 10000;
		forward_on_tick(g_fwd, g_now);
		drain(&q, &s);
	}
	drain_releases();
	if (forward_inflight(g_fwd) != 0 || g_nopen != 0)
		abort();
	return 0;
}
