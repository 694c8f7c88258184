/*
 * edns: EDNS(0) options in and out (see edns.h).
 */
#include "engine/edns.h"

#include <string.h>

#include "common/wire.h"

#define EDNS_COOKIE_VERSION 1
#define EDNS_COOKIE_PAST 3600  /* RFC 9018 §4.3: older server cookies are not ours */
#define EDNS_COOKIE_FUTURE 300 /* ... nor ones more than 5 minutes ahead */
#define EDNS_KEY_PERIOD 3600   /* the derived cookie key changes every hour */

/* ---- SipHash-2-4 (Aumasson & Bernstein), the hash RFC 9018 names ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL(v[1], 13) ^ v[0];
	v[0] = ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = ROTL(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = ROTL(v[1], 17) ^ v[2];
	v[2] = ROTL(v[2], 32);
}

uint64_t edns_siphash(const uint8_t key[16], const uint8_t *in, size_t len)
{
	uint64_t k0 = le64(key), k1 = le64(key + 8);
	uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
			 k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
	uint8_t last[8] = {0};
	size_t i = 0;
	uint64_t m;

	for (; i + 8 <= len; i += 8) {
		m = le64(in + i);
		v[3] ^= m;
		sip_round(v);
		sip_round(v);
		v[0] ^= m;
	}
	memcpy(last, in + i, len - i);
	last[7] = (uint8_t)len;
	m = le64(last);
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* ---- cookies ---- */

/* The key of the hour `ts` falls in: SipHash of the hour under the secret. */
static void hour_key(const uint8_t secret[16], uint32_t ts, uint8_t key[16])
{
	uint8_t in[5];

	wire_write_u32(in, ts / EDNS_KEY_PERIOD);
	in[4] = 0;
	put_le64(key, edns_siphash(secret, in, sizeof(in)));
	in[4] = 1;
	put_le64(key + 8, edns_siphash(secret, in, sizeof(in)));
}

/*
 * RFC 9018 §4.4: Hash = SipHash-2-4(client | version | reserved | timestamp | client IP),
 * keyed by the secret itself when it is configured (nodes of other vendors behind one
 * address compute the same), else by the key of the timestamp's hour (`derive`).
 */
static void cookie_hash(const uint8_t secret[16], bool derive, const uint8_t client[8],
			const uint8_t head[8], const uint8_t *ip, size_t iplen, uint8_t out[8])
{
	uint8_t in[EDNS_CLIENT_COOKIE_LEN + 8 + 16], key[16];
	size_t n = 0;

	memcpy(in, client, EDNS_CLIENT_COOKIE_LEN);
	n += EDNS_CLIENT_COOKIE_LEN;
	memcpy(in + n, head, 8);
	n += 8;
	if (iplen > 16)
		iplen = 16;
	memcpy(in + n, ip, iplen);
	n += iplen;
	if (derive)
		hour_key(secret, wire_read_u32(head + 4), key);
	else
		memcpy(key, secret, sizeof(key));
	put_le64(out, edns_siphash(key, in, n));
}

static bool cookie_valid(const edns_req_t *req, const uint8_t secret[16], bool derive,
			 const uint8_t *ip, size_t iplen, uint32_t now)
{
	uint8_t h[8];
	uint32_t ts;

	if (req->serverlen != EDNS_SERVER_COOKIE_LEN || req->server[0] != EDNS_COOKIE_VERSION)
		return false;
	ts = wire_read_u32(req->server + 4);
	/* Serial-number arithmetic (RFC 1982), as RFC 9018 §4.3 wants. */
	if ((int32_t)(now - ts) > EDNS_COOKIE_PAST || (int32_t)(ts - now) > EDNS_COOKIE_FUTURE)
		return false;
	cookie_hash(secret, derive, req->client, req->server, ip, iplen, h);
	/* Not secret-dependent timing worth hiding: the hash is per client and hour. */
	return memcmp(h, req->server + 8, 8) == 0;
}

void edns_cookie(edns_req_t *req, const uint8_t secret[16], bool derive, const uint8_t *ip,
		 size_t iplen, uint32_t now, uint8_t out[EDNS_COOKIE_LEN])
{
	uint8_t *s = out + EDNS_CLIENT_COOKIE_LEN;

	req->cookie_ok = cookie_valid(req, secret, derive, ip, iplen, now);
	memcpy(out, req->client, EDNS_CLIENT_COOKIE_LEN);
	s[0] = EDNS_COOKIE_VERSION;
	s[1] = s[2] = s[3] = 0;
	wire_write_u32(s + 4, now);
	cookie_hash(secret, derive, req->client, s, ip, iplen, s + 8);
}

/* ---- parsing and writing the OPT ---- */

int edns_parse(const uint8_t *rd, size_t len, edns_req_t *out)
{
	edns_req_t e = {.nsid = false};
	wire_reader_t r;
	uint16_t code, olen;

	wire_reader_init(&r, rd, len);
	while (wire_remaining(&r) > 0) {
		if (wire_get_u16(&r, &code) < 0 || wire_get_u16(&r, &olen) < 0 ||
		    wire_remaining(&r) < olen)
			return -1;
		const uint8_t *v = rd + r.pos;
		wire_skip(&r, olen);
		if (code == EDNS_OPT_NSID) {
			e.nsid = true; /* RFC 5001 §2.1: a payload in a query is ignored */
		} else if (code == EDNS_OPT_COOKIE) {
			/* RFC 7873 §5.2.2: 8 (client only) or 16..40; one COOKIE. */
			if (e.cookie || olen < EDNS_CLIENT_COOKIE_LEN ||
			    (olen > EDNS_CLIENT_COOKIE_LEN && olen < 16) || olen > 40)
				return -1;
			e.cookie = true;
			memcpy(e.client, v, EDNS_CLIENT_COOKIE_LEN);
			e.serverlen = (uint8_t)(olen - EDNS_CLIENT_COOKIE_LEN);
			e.server_cookie = e.serverlen > 0;
			memcpy(e.server, v + EDNS_CLIENT_COOKIE_LEN, e.serverlen);
		}
	}
	*out = e;
	return 0;
}

size_t edns_opt_len(const edns_reply_t *r)
{
	return EDNS_OPT_FIXED + (r->ede >= 0 ? EDNS_EDE_LEN : 0) + (r->nsid ? 4 + r->nsidlen : 0) +
	       (r->cookie ? 4 + EDNS_COOKIE_LEN : 0);
}

int edns_put_opt(wire_writer_t *w, const edns_reply_t *r)
{
	size_t rdlen = edns_opt_len(r) - EDNS_OPT_FIXED;
	int e = wire_put_u8(w, 0);

	e |= wire_put_u16(w, WIRE_TYPE_OPT);
	e |= wire_put_u16(w, r->udp);
	/* Extended rcode: its high 8 bits; version 0; DO echoed (RFC 3225 §3 MUST), though
	 * nothing here is signed: it tells the client the server understood the bit. */
	e |= wire_put_u32(w, (uint32_t)(r->rcode >> 4) << 24 | (r->do_bit ? 0x8000u : 0));
	e |= wire_put_u16(w, (uint16_t)rdlen);
	if (r->cookie) {
		e |= wire_put_u16(w, EDNS_OPT_COOKIE);
		e |= wire_put_u16(w, EDNS_COOKIE_LEN);
		e |= wire_put_bytes(w, r->cookie, EDNS_COOKIE_LEN);
	}
	if (r->nsid) {
		e |= wire_put_u16(w, EDNS_OPT_NSID);
		e |= wire_put_u16(w, (uint16_t)r->nsidlen);
		e |= wire_put_bytes(w, r->nsid, r->nsidlen);
	}
	if (r->ede >= 0) {
		e |= wire_put_u16(w, EDNS_OPT_EDE);
		e |= wire_put_u16(w, 2);
		e |= wire_put_u16(w, (uint16_t)r->ede);
	}
	return e < 0 ? -1 : 0;
}
