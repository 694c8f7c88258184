/*
 * Unit tests for server/edns (issue 17): SipHash-2-4 and RFC 9018's server
 * cookie against their published test vectors, cookie validity (fresh, old,
 * future, tampered, another client address, hourly keys), the option
 * lengths RFC 7873 §5.2.2 calls malformed, and the one OPT encoder.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "common/wire.h"
#include "engine/edns.h"

static void test_siphash(void)
{
	uint8_t key[16], in[15];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 15; i++)
		in[i] = (uint8_t)i;
	/* The SipHash paper, Appendix A: 15 bytes 00..0e under key 00..0f. */
	CHECK(edns_siphash(key, in, sizeof(in)) == 0xa129ca6149be45e5ULL);
	/* The reference vectors' first entry: the empty message. */
	CHECK(edns_siphash(key, in, 0) == 0x726fdb47dd0e0e31ULL);
}

static int hex(const char *t, uint8_t *out)
{
	int n = 0;

	for (; t[0] && t[1]; t += 2)
		sscanf(t, "%2hhx", &out[n++]);
	return n;
}

/* RFC 9018 Appendix A.1 and A.2: a configured secret is the SipHash key as is. */
static void test_rfc9018_vectors(void)
{
	uint8_t secret[16], opt[EDNS_COOKIE_LEN], want[16];
	const uint8_t ip[4] = {198, 51, 100, 100};
	edns_req_t r;

	hex("e5e973e5a6b2a43f48e7dc849e37bfcf", secret);
	CHECK_EQ_INT(
	    edns_parse((const uint8_t *)"\x00\x0a\x00\x08\x24\x64\xc4\xab\xcf\x10\xc9\x57", 12, &r),
	    0);
	CHECK(r.cookie && !r.server_cookie);
	edns_cookie(&r, secret, false, ip, 4, 1559731985, opt);
	CHECK(!r.cookie_ok);
	hex("010000005cf79f111f8130c3eee29480", want);
	CHECK_MEM(opt, "\x24\x64\xc4\xab\xcf\x10\xc9\x57", 8);
	CHECK_MEM(opt + 8, want, 16);
	/* A.2: the client returns it a little later, and it is valid. */
	uint8_t back[4 + 24] = {0, 10, 0, 24};
	memcpy(back + 4, opt, 24);
	CHECK_EQ_INT(edns_parse(back, sizeof(back), &r), 0);
	edns_cookie(&r, secret, false, ip, 4, 1559731985 + 1000, opt);
	CHECK(r.cookie_ok);
}

static void parse_cookie(const uint8_t *c, size_t len, edns_req_t *r, int *ret)
{
	uint8_t buf[4 + 64] = {0, 10, 0, (uint8_t)len};

	memcpy(buf + 4, c, len);
	*ret = edns_parse(buf, 4 + len, r);
}

static void test_validity(void)
{
	uint8_t secret[16] = {1, 2, 3}, opt[EDNS_COOKIE_LEN];
	const uint8_t ip[4] = {127, 0, 0, 1}, other[4] = {127, 0, 0, 2};
	const uint8_t client[8] = {9, 8, 7, 6, 5, 4, 3, 2};
	uint32_t t0 = 1700000000;
	edns_req_t r;
	int ret;

	for (int derive = 0; derive < 2; derive++) {
		parse_cookie(client, 8, &r, &ret);
		edns_cookie(&r, secret, derive, ip, 4, t0, opt);
		uint8_t ck[24];
		memcpy(ck, opt, 24);
		/* Valid back at once, 59 minutes later (a new hour key for derive), 4 min early. */
		const uint32_t ok_at[] = {t0, t0 + 3540, t0 - 240};
		for (size_t i = 0; i < 3; i++) {
			parse_cookie(ck, 24, &r, &ret);
			edns_cookie(&r, secret, derive, ip, 4, ok_at[i], opt);
			CHECK(ret == 0 && r.cookie_ok);
		}
		/* Too old, too far ahead, from another address, tampered, another secret. */
		parse_cookie(ck, 24, &r, &ret);
		edns_cookie(&r, secret, derive, ip, 4, t0 + 3700, opt);
		CHECK(!r.cookie_ok);
		parse_cookie(ck, 24, &r, &ret);
		edns_cookie(&r, secret, derive, ip, 4, t0 - 400, opt);
		CHECK(!r.cookie_ok);
		parse_cookie(ck, 24, &r, &ret);
		edns_cookie(&r, secret, derive, other, 4, t0, opt);
		CHECK(!r.cookie_ok);
		ck[23] ^= 1;
		parse_cookie(ck, 24, &r, &ret);
		edns_cookie(&r, secret, derive, ip, 4, t0, opt);
		CHECK(!r.cookie_ok);
		ck[23] ^= 1;
		secret[0] ^= 0x80;
		parse_cookie(ck, 24, &r, &ret);
		edns_cookie(&r, secret, derive, ip, 4, t0, opt);
		CHECK(!r.cookie_ok);
		secret[0] ^= 0x80;
		/* Another version byte is not ours either. */
		ck[8] = 2;
		parse_cookie(ck, 24, &r, &ret);
		edns_cookie(&r, secret, derive, ip, 4, t0, opt);
		CHECK(!r.cookie_ok);
	}
}

static void test_parse(void)
{
	uint8_t c[64] = {0};
	edns_req_t r = {.nsid = false};
	int ret;

	/* RFC 7873 §5.2.2: 8 or 16..40 bytes, anything else FORMERR. */
	const size_t bad[] = {0, 5, 7, 9, 12, 15, 41};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		parse_cookie(c, bad[i], &r, &ret);
		CHECK_EQ_INT(ret, -1);
	}
	const size_t good[] = {8, 16, 24, 40};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		parse_cookie(c, good[i], &r, &ret);
		CHECK(ret == 0 && r.cookie && r.serverlen == good[i] - 8);
	}
	/* Two COOKIE options, an option past the end: malformed. */
	const uint8_t two[] = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
			       0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
	CHECK_EQ_INT(edns_parse(two, sizeof(two), &r), -1);
	const uint8_t past[] = {0, 3, 0, 4, 1};
	CHECK_EQ_INT(edns_parse(past, sizeof(past), &r), -1);
	/* NSID: empty as RFC 5001 wants, or with a payload (ignored); unknown options skipped. */
	const uint8_t nsid[] = {0, 3, 0, 0, 0xfe, 0xed, 0, 1, 7};
	CHECK(edns_parse(nsid, sizeof(nsid), &r) == 0 && r.nsid && !r.cookie);
	const uint8_t nsid2[] = {0, 3, 0, 2, 'h', 'i'};
	CHECK(edns_parse(nsid2, sizeof(nsid2), &r) == 0 && r.nsid);
	CHECK(edns_parse(NULL, 0, &r) == 0 && !r.nsid && !r.cookie);
}

static void test_encode(void)
{
	uint8_t buf[256], ck[EDNS_COOKIE_LEN] = {1};
	wire_writer_t w;
	edns_reply_t o = {.udp = 1232, .rcode = 23, .do_bit = true, .ede = EDNS_EDE_STALE};

	o.nsid = (const uint8_t *)"node";
	o.nsidlen = 4;
	o.cookie = ck;
	wire_writer_init(&w, buf, sizeof(buf));
	CHECK_EQ_INT(edns_put_opt(&w, &o), 0);
	CHECK_EQ_INT((int)w.pos, (int)edns_opt_len(&o));
	CHECK_EQ_INT((int)w.pos, 11 + 28 + 8 + 6);
	CHECK_EQ_INT(wire_read_u16(buf + 1), WIRE_TYPE_OPT);
	CHECK_EQ_INT(buf[5], 1);		      /* BADCOOKIE's high bits */
	CHECK_EQ_INT(wire_read_u16(buf + 7), 0x8000); /* DO */
	CHECK_EQ_INT(wire_read_u16(buf + 9), (int)(w.pos - 11));
	CHECK_EQ_INT(wire_read_u16(buf + 11), EDNS_OPT_COOKIE);
	CHECK_EQ_INT(wire_read_u16(buf + 11 + 28), EDNS_OPT_NSID);
	CHECK_MEM(buf + 11 + 28 + 4, "node", 4);
	CHECK_EQ_INT(wire_read_u16(buf + 11 + 36), EDNS_OPT_EDE);
	CHECK_EQ_INT(wire_read_u16(buf + 11 + 40), 3);
	/* No room: an error, not a partial OPT passed off as whole. */
	wire_writer_init(&w, buf, 20);
	CHECK(edns_put_opt(&w, &o) < 0);
}

int main(void)
{
	test_siphash();
	test_rfc9018_vectors();
	test_validity();
	test_parse();
	test_encode();
	return check_done();
}
