/*
 * xfr: outgoing zone transfers (AXFR, RFC 5936; IXFR answered with the full
 * zone as RFC 1995 §4 allows) of a local domain, one DNS message at a time.
 *
 * A transfer is a cursor, not a snapshot: each message is built from the
 * worker's current read txn, walking the store from the rrset after the one
 * the previous message ended with, and at most one message (64 KiB) of work
 * happens per call, so a transfer never holds a read txn across batches and
 * other queries of the worker are served between its messages. The zone is
 * the store's generation seen by the first message; if a commit lands before
 * the last one, the transfer fails (the connection is closed) rather than
 * send a mix of two versions, and the secondary retries.
 *
 * Content: the synthesized SOA (serial = generation) first and last, the
 * synthesized apex NS and its address when the store has none, then every
 * rrset of the zone in key order (glue and delegations included, subzones
 * that are local domains of their own left out). Names are not compressed.
 *
 * Threads: an xfr_t belongs to the worker that started it. No I/O; no
 * allocation but libcrypto's digest context when signed (engine/tsig.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"
#include "engine/query.h"

typedef struct {
	bool active;
	bool started; /* the first message (SOA, question) went out */
	bool walked;  /* every rrset went out; the closing SOA is left */
	bool done;    /* the closing SOA went out */
	int zi;	      /* the zone's index in conf->domains */
	uint64_t gen; /* generation of the first message */
	query_t q;    /* the request: id, question, EDNS */
	uint8_t zkey[WIRE_KEY_MAX];
	size_t zkeylen;
	uint8_t after[WIRE_KEY_MAX]; /* resume after this rrset (name key, type) */
	size_t afterlen;
	uint16_t after_type;
	bool has_after;
	unsigned msgs;
	unsigned long rrs;
	tsig_signer_t tsig; /* on: the request was signed; every message is (RFC 8945 §5.3.1) */
} xfr_t;

/**
 * Start a transfer of the zone q asks for (its apex, conf domain zi), signed when
 * ctx->tsig is on (query_process verified the request).
 * @param q borrowed, copied.
 * @return 0, or ERR_INVAL (not an apex).
 */
int xfr_begin(xfr_t *x, const query_ctx_t *ctx, const query_t *q, int zi);

/**
 * Build the next message into resp (cap bytes, at most 65535 used).
 * @return its length, or 0 when the transfer must stop: the store changed
 *         (a new generation), a store error, or an rrset too big for a message.
 *         After the last message x->done is set.
 */
size_t xfr_next(xfr_t *x, query_ctx_t *ctx, uint8_t *resp, size_t cap);
