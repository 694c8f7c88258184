/*
 * edns: the EDNS(0) options skydns understands (RFC 6891), read from a
 * query's OPT and written into every reply's OPT by one encoder:
 *
 * - NSID (RFC 5001, code 3): answered with `[Dns] nsid` only when asked.
 * - COOKIE (RFC 7873, code 10), server cookies as RFC 9018 builds them:
 *   version 1, 3 reserved bytes, a 32-bit timestamp and SipHash-2-4 of
 *   (client cookie | version | reserved | timestamp | client IP). A
 *   configured `[Dns] cookie-secret` is the key itself, as RFC 9018 has it,
 *   so other servers behind one anycast address can share it. Without one,
 *   the key is derived from a random secret of this load and the timestamp's
 *   hour, so the key in use rotates every hour without shared state between
 *   workers: a cookie is checked with the key of its own hour. A server
 *   cookie is valid for an hour (5 minutes of clock skew into the future);
 *   every reply carries a fresh one.
 * - Extended DNS Errors (RFC 8914, code 15): an info-code where skydns has a
 *   reason (stale answer, not authoritative, prohibited, network error...).
 *
 * Pure functions of their arguments, no I/O, no allocation: any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

struct conf;

enum {
	EDNS_OPT_NSID = 3,
	EDNS_OPT_COOKIE = 10,
	EDNS_OPT_EDE = 15,
	EDNS_CLIENT_COOKIE_LEN = 8,
	EDNS_SERVER_COOKIE_LEN = 16, /* RFC 9018: what we send */
	EDNS_COOKIE_LEN = EDNS_CLIENT_COOKIE_LEN + EDNS_SERVER_COOKIE_LEN,
	EDNS_RCODE_BADCOOKIE = 23, /* extended rcode (RFC 7873 §8) */
	EDNS_OPT_FIXED = 11,	   /* an OPT RR without options */
	EDNS_EDE_LEN = 6,	   /* an EDE option without text */
};

/* Extended DNS Error info-codes used (RFC 8914 §4); EDNS_EDE_NONE = none. */
enum {
	EDNS_EDE_NONE = -1,
	EDNS_EDE_OTHER = 0,
	EDNS_EDE_STALE = 3,
	EDNS_EDE_PROHIBITED = 18,
	EDNS_EDE_NOT_AUTHORITATIVE = 20,
	EDNS_EDE_NOT_SUPPORTED = 21,
	EDNS_EDE_NO_REACHABLE_AUTHORITY = 22,
	EDNS_EDE_NETWORK_ERROR = 23,
};

/* What a query's OPT asked for (the options the reply answers). */
typedef struct {
	bool nsid;	    /* NSID option present */
	bool cookie;	    /* a well-formed COOKIE option */
	bool cookie_ok;	    /* ... with a server cookie that is ours and fresh */
	bool server_cookie; /* ... with a server cookie at all (valid or not) */
	uint8_t client[EDNS_CLIENT_COOKIE_LEN];
	uint8_t server[40 - EDNS_CLIENT_COOKIE_LEN]; /* as received */
	uint8_t serverlen;
} edns_req_t;

/**
 * Read the options of an OPT rdata (untrusted, `len` bytes).
 * @return 0, or -1 when malformed: an option running past the rdata, or a
 *         COOKIE whose length is not 8 or 16..40 (RFC 7873 §5.2.2: FORMERR).
 *         out is written only on success.
 */
int edns_parse(const uint8_t *rd, size_t len, edns_req_t *out);

/**
 * Check the request's server cookie (sets cookie_ok) and build the COOKIE
 * option data the reply carries: the client cookie and a fresh server cookie.
 * @param secret 16 bytes; `derive`: key by the hour's key derived from it
 *        (random secret) instead of by the secret itself (configured one).
 * @param ip client address, iplen 4 or 16 (borrowed).
 * @param now Unix seconds. @param out receives EDNS_COOKIE_LEN bytes.
 */
void edns_cookie(edns_req_t *req, const uint8_t secret[16], bool derive, const uint8_t *ip,
		 size_t iplen, uint32_t now, uint8_t out[EDNS_COOKIE_LEN]);

/** SipHash-2-4 of in under key (exported for its test vectors). */
uint64_t edns_siphash(const uint8_t key[16], const uint8_t *in, size_t len);

/* What a reply's OPT carries. All borrowed for the call. */
typedef struct {
	uint16_t udp;	     /* our UDP payload size */
	uint16_t rcode;	     /* the full rcode: its high 8 bits go into the OPT */
	bool do_bit;	     /* echoed (RFC 3225 §3) */
	int ede;	     /* EDNS_EDE_* info-code, EDNS_EDE_NONE for none */
	const uint8_t *nsid; /* NULL: none */
	size_t nsidlen;
	const uint8_t *cookie; /* NULL: none; else EDNS_COOKIE_LEN bytes */
} edns_reply_t;

/** Bytes the OPT RR of `r` takes. */
size_t edns_opt_len(const edns_reply_t *r);

/** Write the OPT RR of `r` at w (the caller counts it in ARCOUNT). @return 0 or <0 (no room). */
int edns_put_opt(wire_writer_t *w, const edns_reply_t *r);
