/*
 * The answer cache on arbitrary upstream messages: normalize (the parser
 * every upstream answer goes through), insert, look up and finish a client
 * reply; the same message scrubbed (a fixed policy: local domain "local.",
 * forwarded "fwd.local.", bailiwick "com.", max TTL 600) and, when that cut a
 * chain, spliced with the normalized message. Input: byte 0 = control bits (bit 0: client EDNS, bit
 * 1: DO, bit 2: TCP limit, bits 3-7: the entry's age in seconds x 16), then the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wire.h"
#include "fuzz/fixture.h"
#include "engine/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PKT_MAX 65535

static cache_t *g_cache;
static uint8_t g_norm[PKT_MAX], g_norm2[PKT_MAX], g_resp[PKT_MAX], g_scrub[PKT_MAX];
static const uint8_t k_local[] = "\5local", k_fwd[] = "\3fwd\5local", k_com[] = "\3com";

/* Scrubbing never turns a valid message into an error, and keeps it valid. */
static void check_scrub(const uint8_t *msg, size_t len, const cache_msg_t *plain)
{
	cache_zone_t local = {k_local, sizeof(k_local)}, fwd = {k_fwd, sizeof(k_fwd)};
	cache_policy_t pol = {.max_ttl = 600,
			      .bailiwick = {k_com, sizeof(k_com)},
			      .local = &local,
			      .nlocal = 1,
			      .forwarded = &fwd,
			      .nforwarded = 1};
	cache_msg_t info, info2;
	size_t slen, nlen2, out;

	if (cache_msg_parse(msg, len, &pol, g_scrub, sizeof(g_scrub), &slen, &info) != 0 ||
	    info.ancount > plain->ancount || info.ttl > 600 ||
	    cache_msg_parse(g_scrub, slen, NULL, g_norm2, sizeof(g_norm2), &nlen2, &info2) != 0)
		abort();
	if (info.locallen == 0)
		return;
	if (info.ttl != 0)
		abort(); /* a cut chain is never cached */
	if (cache_msg_splice(g_scrub, slen, sizeof(g_scrub), g_norm, 0, &out) == 0)
		abort(); /* an empty reply is no reply */
	if (cache_msg_splice(g_scrub, slen, sizeof(g_scrub), msg, len, &out) == 0 &&
	    cache_msg_parse(g_scrub, out, NULL, g_norm2, sizeof(g_norm2), &nlen2, &info2) != 0)
		abort();
}
static uint64_t g_now = 1000;

static void make_query(query_t *q, const cache_msg_t *info, uint8_t ctl)
{
	memset(q, 0, sizeof(*q));
	q->id = 0x4242;
	q->flags = WIRE_FLAG_RD;
	q->qtype = info->qtype;
	q->qclass = info->qclass;
	memcpy(q->qname, info->qname, info->qnamelen);
	q->qnamelen = info->qnamelen;
	/* 0x20: the client's case differs from the cached one */
	for (size_t i = 0; i < q->qnamelen; i++)
		if (q->qname[i] >= 'a' && q->qname[i] <= 'z' && (i & 1))
			q->qname[i] = (uint8_t)(q->qname[i] - 32);
	q->edns = ctl & 1;
	q->edns_udp = q->edns ? 1232 : 0;
	q->edns_do = q->edns && (ctl & 2);
	q->resp_limit = (ctl & 4) ? PKT_MAX : (q->edns ? 1232 : 512);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cache_msg_t info, info2;
	query_t q;
	size_t nlen, nlen2, rlen;
	uint8_t ctl;
	uint32_t age;

	if (size < 1 || size > PKT_MAX)
		return 0;
	if (!g_cache && cache_new(&g_cache, 32, 7) != 0)
		abort();
	ctl = data[0];
	age = (uint32_t)(ctl >> 3) * 16;
	if (cache_msg_parse(data + 1, size - 1, NULL, g_norm, sizeof(g_norm), &nlen, &info) != 0)
		return 0;
	/* a normalized message is valid input again, with the same facts */
	if (cache_msg_parse(g_norm, nlen, NULL, g_norm2, sizeof(g_norm2), &nlen2, &info2) != 0 ||
	    info2.qtype != info.qtype || info2.ancount != info.ancount ||
	    !wire_name_equal(info.qname, info.qnamelen, info2.qname, info2.qnamelen))
		abort();
	check_scrub(data + 1, size - 1, &info);
	make_query(&q, &info, ctl);
	if (cache_msg_finish(g_norm, nlen, &q, 1232, age, g_resp, sizeof(g_resp), &rlen) == 0)
		fixture_check_reply(g_resp, rlen, q.resp_limit);
	g_now += 1000;
	if (cache_insert(g_cache, g_norm, nlen, &info, q.edns_do, false, g_now) != 0)
		return 0;
	if (cache_count(g_cache) > cache_capacity(g_cache))
		abort();
	if (cache_lookup(g_cache, &q, 1232, g_now + (uint64_t)age * 1000, g_resp, sizeof(g_resp),
			 &rlen) == 0)
		fixture_check_reply(g_resp, rlen, q.resp_limit);
	return 0;
}
