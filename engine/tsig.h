/*
 * server/tsig: TSIG (RFC 8945) for the query engine and zone transfers:
 * verify a request's MAC and time with a key of [Dns] tsig-keys, sign a
 * reply (and every message of a transfer, §5.3.1 allows it) so the client
 * can verify it, and build the unsigned / BADTIME error replies of §5.2.
 *
 * HMAC-SHA1/256/512 through libcrypto's EVP digests (CPU only; its digest
 * context is allocated per signed message, which only signed traffic pays).
 * MAC truncation (§5.2.2.1) is not offered: a shorter MAC is BADSIG.
 *
 * Threads: pure functions over caller buffers; any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

struct conf;

#define TSIG_TYPE 250
#define TSIG_MAC_MAX 64 /* SHA-512 */
#define TSIG_FUDGE 300	/* what we sign with (§10 recommends 300 s) */
#define TSIG_NOERROR 0
#define TSIG_BADSIG 16
#define TSIG_BADKEY 17
#define TSIG_BADTIME 18
#define TSIG_RCODE_NOTAUTH 9

/* A request's TSIG RR (RFC 8945 §4.2), as parsed. */
typedef struct {
	bool present;
	uint8_t key[WIRE_NAME_MAX]; /* owner = key name, uncompressed */
	size_t keylen;
	uint8_t alg[WIRE_NAME_MAX];
	size_t alglen;
	uint8_t time_signed[6]; /* 48-bit seconds, copied verbatim */
	uint16_t fudge;
	uint8_t mac[TSIG_MAC_MAX];
	uint16_t maclen; /* as sent; > TSIG_MAC_MAX keeps only the first bytes (never verifies) */
	uint16_t orig_id;
	uint16_t error;
	size_t rr_off;	  /* where the TSIG RR starts in the request */
	size_t other_off; /* other data in the request */
	uint16_t otherlen;
} tsig_t;

/* A verified signer: what signing the replies needs. A signer set up by the caller
 * with on, key, first and maclen 0 signs a request (RFC 8945 §4.3.1: no prior MAC). */
typedef struct {
	bool on;
	int key;		   /* index into conf->tsig_keys */
	uint8_t mac[TSIG_MAC_MAX]; /* the prior MAC: the request's, then the last message's */
	size_t maclen;
	bool first; /* the next message is the first reply (full variables, §5.3) */
} tsig_signer_t;

/**
 * Verify ts (parsed from req) against the keys of c at Unix time now.
 * @return TSIG_NOERROR with *s set to sign the replies, TSIG_BADKEY (no such key
 *         and algorithm), TSIG_BADSIG (MAC wrong) or TSIG_BADTIME (outside the fudge;
 *         *s is set: a BADTIME reply is signed).
 */
int tsig_verify(const struct conf *c, const uint8_t *req, const tsig_t *ts, uint64_t now,
		tsig_signer_t *s);

/** Bytes a TSIG RR of key k adds to a reply (with a 6-byte other data at most). */
size_t tsig_room(const struct conf *c, int key);

/**
 * Sign msg[0..len) in place: append the TSIG RR (time signed now, the given error) and
 * count it in ARCOUNT. The first message covers the full TSIG variables, later ones only
 * the timers (§5.3.1). Updates s->mac to this message's MAC. With badtime (the request's
 * 6-byte time signed), the reply is BADTIME's (§5.2.3): that time signed, and ours as
 * other data so the client can see the skew.
 * @return the new length, or 0 when it does not fit cap.
 */
size_t tsig_sign(const struct conf *c, tsig_signer_t *s, uint8_t *msg, size_t len, size_t cap,
		 uint64_t now, uint16_t error, const uint8_t *badtime);

/**
 * Append an unsigned TSIG (empty MAC) echoing ts with the given error (BADKEY, BADSIG),
 * count it in ARCOUNT. @return the new length, or 0 when it does not fit cap.
 */
size_t tsig_put_unsigned(const tsig_t *ts, uint16_t error, uint8_t *msg, size_t len, size_t cap);
