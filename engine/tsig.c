/*
 * tsig: RFC 8945 MACs (see tsig.h).
 */
#include "engine/tsig.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "conf/conf.h"

#define TSIG_BLOCK_MAX 128 /* SHA-512's block */
#define TSIG_FIXED 16	   /* rdata after the algorithm name, with empty MAC and other data */

/* The algorithm's wire name and digest. */
static const EVP_MD *alg_md(uint8_t alg, const uint8_t **name, size_t *len)
{
	static const uint8_t sha1[] = "\x09hmac-sha1";
	static const uint8_t sha256[] = "\x0bhmac-sha256";
	static const uint8_t sha512[] = "\x0bhmac-sha512";

	switch (alg) {
	case CONF_TSIG_SHA1:
		*name = sha1, *len = sizeof(sha1);
		return EVP_sha1();
	case CONF_TSIG_SHA256:
		*name = sha256, *len = sizeof(sha256);
		return EVP_sha256();
	case CONF_TSIG_SHA512:
		*name = sha512, *len = sizeof(sha512);
		return EVP_sha512();
	default:
		return NULL;
	}
}

static uint8_t alg_of_name(const uint8_t *name, size_t len)
{
	for (uint8_t a = CONF_TSIG_SHA1; a <= CONF_TSIG_SHA512; a++) {
		const uint8_t *n;
		size_t nl;
		alg_md(a, &n, &nl);
		if (wire_name_equal(n, nl, name, len))
			return a;
	}
	return 0;
}

/* HMAC (RFC 2104) over a list of pieces. */
typedef struct {
	const void *p;
	size_t n;
} piece_t;

static int hmac(const conf_tsig_key_t *k, const piece_t *pc, size_t npc, uint8_t *out,
		size_t *outlen)
{
	const uint8_t *an;
	size_t al;
	const EVP_MD *md = alg_md(k->alg, &an, &al);
	uint8_t kb[TSIG_BLOCK_MAX] = {0}, pad[TSIG_BLOCK_MAX], inner[EVP_MAX_MD_SIZE];
	unsigned il = 0, ol = 0;
	size_t bs;
	EVP_MD_CTX *ctx;
	int ok;

	if (!md || (bs = (size_t)EVP_MD_get_block_size(md)) > sizeof(kb) ||
	    !(ctx = EVP_MD_CTX_new()))
		return -1;
	if (k->secretlen > bs) {
		ok = EVP_DigestInit_ex(ctx, md, NULL) &&
		     EVP_DigestUpdate(ctx, k->secret, k->secretlen) &&
		     EVP_DigestFinal_ex(ctx, kb, &il);
	} else {
		memcpy(kb, k->secret, k->secretlen);
		ok = 1;
	}
	for (size_t i = 0; i < bs; i++)
		pad[i] = kb[i] ^ 0x36;
	ok = ok && EVP_DigestInit_ex(ctx, md, NULL) && EVP_DigestUpdate(ctx, pad, bs);
	for (size_t i = 0; ok && i < npc; i++)
		ok = EVP_DigestUpdate(ctx, pc[i].p, pc[i].n);
	ok = ok && EVP_DigestFinal_ex(ctx, inner, &il);
	for (size_t i = 0; i < bs; i++)
		pad[i] = kb[i] ^ 0x5c;
	ok = ok && EVP_DigestInit_ex(ctx, md, NULL) && EVP_DigestUpdate(ctx, pad, bs) &&
	     EVP_DigestUpdate(ctx, inner, il) && EVP_DigestFinal_ex(ctx, out, &ol);
	EVP_MD_CTX_free(ctx);
	OPENSSL_cleanse(kb, sizeof(kb));
	OPENSSL_cleanse(pad, sizeof(pad));
	*outlen = ol;
	return ok ? 0 : -1;
}

static uint64_t get48(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 6; i++)
		v = (v << 8) | p[i];
	return v;
}

static void put48(uint8_t *p, uint64_t v)
{
	for (int i = 5; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

int tsig_verify(const conf_t *c, const uint8_t *req, const tsig_t *ts, uint64_t now,
		tsig_signer_t *s)
{
	uint8_t alg = alg_of_name(ts->alg, ts->alglen);
	int ki = alg ? conf_tsig_key(c, ts->key, ts->keylen, alg) : -1;
	uint8_t hdr[WIRE_HDR_LEN], keyname[WIRE_NAME_MAX], algname[WIRE_NAME_MAX],
	    mac[TSIG_MAC_MAX];
	uint8_t vars[6 + 4 + 6 + 2 + 2 + 2];
	size_t maclen = 0;

	if (ki < 0)
		return TSIG_BADKEY;
	/* §4.3.1-2: the message as before signing (original ID, ARCOUNT without the TSIG),
	 * then the variables with names in canonical (lower case, uncompressed) form. */
	memcpy(hdr, req, sizeof(hdr));
	wire_write_u16(hdr, ts->orig_id);
	wire_write_u16(hdr + 10, (uint16_t)(wire_read_u16(req + 10) - 1));
	memcpy(keyname, ts->key, ts->keylen);
	wire_name_lower(keyname, ts->keylen);
	memcpy(algname, ts->alg, ts->alglen);
	wire_name_lower(algname, ts->alglen);
	wire_write_u16(vars, WIRE_CLASS_ANY);
	wire_write_u32(vars + 2, 0);
	memcpy(vars + 6, ts->time_signed, 6);
	wire_write_u16(vars + 12, ts->fudge);
	wire_write_u16(vars + 14, ts->error);
	wire_write_u16(vars + 16, ts->otherlen);
	const piece_t pc[] = {{hdr, sizeof(hdr)},
			      {req + WIRE_HDR_LEN, ts->rr_off - WIRE_HDR_LEN},
			      {keyname, ts->keylen},
			      {vars, 6},
			      {algname, ts->alglen},
			      {vars + 6, 12},
			      {req + ts->other_off, ts->otherlen}};
	if (hmac(&c->tsig_keys[ki], pc, sizeof(pc) / sizeof(pc[0]), mac, &maclen) < 0 ||
	    ts->maclen != maclen || CRYPTO_memcmp(mac, ts->mac, maclen) != 0)
		return TSIG_BADSIG;
	s->on = true;
	s->key = ki;
	memcpy(s->mac, ts->mac, maclen);
	s->maclen = maclen;
	s->first = true;
	uint64_t t = get48(ts->time_signed);
	if ((t > now ? t - now : now - t) > ts->fudge)
		return TSIG_BADTIME;
	return TSIG_NOERROR;
}

size_t tsig_room(const conf_t *c, int key)
{
	const conf_tsig_key_t *k = &c->tsig_keys[key];
	const uint8_t *an;
	size_t al;
	const EVP_MD *md = alg_md(k->alg, &an, &al);

	return k->namelen + 10 + al + TSIG_FIXED + (size_t)EVP_MD_get_size(md) + 6;
}

size_t tsig_sign(const conf_t *c, tsig_signer_t *s, uint8_t *msg, size_t len, size_t cap,
		 uint64_t now, uint16_t error, const uint8_t *badtime)
{
	const conf_tsig_key_t *k = &c->tsig_keys[s->key];
	const uint8_t *an;
	size_t al, maclen = 0;
	const EVP_MD *md = alg_md(k->alg, &an, &al);
	uint8_t pm[2], vars[6 + 4], timers[8], tail[6], mac[TSIG_MAC_MAX], other[6];
	uint16_t otherlen = badtime ? 6 : 0;
	wire_writer_t w;
	int e;

	if (!md || len < WIRE_HDR_LEN)
		return 0;
	wire_write_u16(pm, (uint16_t)s->maclen);
	wire_write_u16(vars, WIRE_CLASS_ANY);
	wire_write_u32(vars + 2, 0);
	put48(timers, now);
	if (badtime) {
		memcpy(other, timers, 6);
		memcpy(timers, badtime, 6);
	}
	wire_write_u16(timers + 6, TSIG_FUDGE);
	wire_write_u16(tail, error);
	wire_write_u16(tail + 2, otherlen);
	/* §5.3: request MAC, message, variables; §5.3.1: later messages only the timers. A
	 * signer without a prior MAC signs a request (our NOTIFY): §4.3.1 has no MAC field. */
	const piece_t full[] = {{pm, s->maclen ? 2 : 0},
				{s->mac, s->maclen},
				{msg, len},
				{k->name, k->namelen},
				{vars, 6},
				{an, al},
				{timers, 8},
				{tail, 4},
				{other, otherlen}};
	const piece_t later[] = {{pm, 2}, {s->mac, s->maclen}, {msg, len}, {timers, 8}};
	if ((s->first ? hmac(k, full, sizeof(full) / sizeof(full[0]), mac, &maclen)
		      : hmac(k, later, sizeof(later) / sizeof(later[0]), mac, &maclen)) < 0)
		return 0;
	wire_writer_init(&w, msg, cap);
	w.pos = len;
	e = wire_put_bytes(&w, k->name, k->namelen);
	e |= wire_put_u16(&w, TSIG_TYPE);
	e |= wire_put_u16(&w, WIRE_CLASS_ANY);
	e |= wire_put_u32(&w, 0);
	e |= wire_put_u16(&w, (uint16_t)(al + TSIG_FIXED + maclen + otherlen));
	e |= wire_put_bytes(&w, an, al);
	e |= wire_put_bytes(&w, timers, 8);
	e |= wire_put_u16(&w, (uint16_t)maclen);
	e |= wire_put_bytes(&w, mac, maclen);
	e |= wire_put_u16(&w, wire_read_u16(msg)); /* original ID: ours is the request's */
	e |= wire_put_bytes(&w, tail, 4);
	if (otherlen)
		e |= wire_put_bytes(&w, other, otherlen);
	if (e < 0)
		return 0;
	wire_write_u16(msg + 10, (uint16_t)(wire_read_u16(msg + 10) + 1));
	memcpy(s->mac, mac, maclen);
	s->maclen = maclen;
	s->first = false;
	return w.pos;
}

size_t tsig_put_unsigned(const tsig_t *ts, uint16_t error, uint8_t *msg, size_t len, size_t cap)
{
	wire_writer_t w;
	int e;

	wire_writer_init(&w, msg, cap);
	w.pos = len;
	/* Names uncompressed, as §4.2 wants for the algorithm. */
	e = wire_put_bytes(&w, ts->key, ts->keylen);
	e |= wire_put_u16(&w, TSIG_TYPE);
	e |= wire_put_u16(&w, WIRE_CLASS_ANY);
	e |= wire_put_u32(&w, 0);
	e |= wire_put_u16(&w, (uint16_t)(ts->alglen + TSIG_FIXED));
	e |= wire_put_bytes(&w, ts->alg, ts->alglen);
	/* Time signed and fudge copied: BADKEY and BADSIG, unlike BADTIME, report no time. */
	e |= wire_put_bytes(&w, ts->time_signed, sizeof(ts->time_signed));
	e |= wire_put_u16(&w, ts->fudge);
	e |= wire_put_u16(&w, 0); /* MAC size: nothing we could sign with */
	e |= wire_put_u16(&w, ts->orig_id);
	e |= wire_put_u16(&w, error);
	e |= wire_put_u16(&w, 0); /* other len */
	if (e < 0)
		return 0;
	wire_write_u16(msg + 10, (uint16_t)(wire_read_u16(msg + 10) + 1));
	return w.pos;
}
