/*
 * server/query: one DNS query in, one response out. No I/O, no allocation,
 * no locks: a pure function of (request bytes, read snapshot, config,
 * client address, per-worker random state). Workers call it from their
 * ring loop; tests and the fuzzer call it directly.
 *
 * Threads: a query_ctx_t belongs to one worker thread. Its counters are
 * written only by that thread (relaxed atomic stores) and may be read by any
 * thread with relaxed atomic loads (see stats_sum()).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/stats.h"
#include "common/wire.h"
#include "engine/tsig.h"

struct conf;
struct store_rtxn;
struct topn;

/* Per-worker state for query processing. Embed; init with query_ctx_init. */
typedef struct {
	const struct conf *conf; /* borrowed; the worker swaps it on reload */
	struct store_rtxn *txn;	 /* borrowed; renewed by the worker per batch */
	uint64_t rng[2];	 /* xorshift128+ state: rotation, random-one */
	stats_t stats;
	struct topn *topn; /* borrowed, may be NULL: counts asked names (engine/topn.h) */
	uint32_t now_s;	   /* Unix seconds, set by the worker per batch: cookie timestamps */
	/* The last request's verified TSIG signer when it returned QUERY_XFR: xfr_begin takes
	 * it to sign the transfer; off for everything else. */
	tsig_signer_t tsig;
} query_ctx_t;

/* Who asked, and how. */
typedef struct {
	uint8_t addr[16]; /* client IP, 4 or 16 bytes used (for hone-one) */
	uint8_t addrlen;
	bool tcp;
} query_client_t;

/* The parsed question, filled by query_process (also for QUERY_FORWARD). */
typedef struct {
	uint16_t id;
	uint16_t flags;
	uint16_t qtype;
	uint16_t qclass;
	uint8_t qname[WIRE_NAME_MAX]; /* as received: case preserved */
	size_t qnamelen;
	/* The flags side by side: query_reset clears them with one store. EDNS options the
	 * reply answers (engine/edns.h) live here so that every reply built from this query,
	 * also a forwarded one, carries them. */
	bool edns;
	bool edns_do;
	bool nsid;	   /* NSID asked: local replies carry [Dns] nsid */
	bool has_cookie;   /* cookie[] goes into the reply: client cookie + our fresh one */
	bool cookie_ok;	   /* the query's server cookie was ours and fresh */
	uint16_t edns_udp; /* client's advertised size (0 without EDNS) */
	size_t resp_limit; /* effective response size limit for this query */
	uint8_t cookie[24];
} query_t;

enum {
	QUERY_REPLY = 0,   /* resp holds *resplen bytes to send */
	QUERY_DROP = 1,	   /* send nothing (not a query, too short for a header) */
	QUERY_FORWARD = 2, /* not ours and forwarding is configured: see *q */
	QUERY_XFR = 3,	   /* an allowed zone transfer over TCP: stream it (engine/xfr.h) */
};

/** Initialize; seed the random state from `seed` (use getrandom at startup). */
void query_ctx_init(query_ctx_t *ctx, const struct conf *conf, uint64_t seed);

/**
 * Answer one query.
 * @param req,reqlen  the request as received (untrusted).
 * @param resp,cap    output buffer (at least 512 bytes; 65535 for TCP).
 * @param resplen     receives the response length on QUERY_REPLY.
 * @param q           receives the parsed question (valid on REPLY and FORWARD;
 *                    zeroed fields if the header could not be parsed).
 * @return QUERY_REPLY, QUERY_DROP or QUERY_FORWARD. Never fails otherwise:
 *         store errors become SERVFAIL.
 */
int query_process(query_ctx_t *ctx, const uint8_t *req, size_t reqlen, const query_client_t *cl,
		  uint8_t *resp, size_t cap, size_t *resplen, query_t *q);

/**
 * The store key and type a well-formed one-question query asks for, read
 * without answering (to prefetch a batch's lookups). Anything unusual is
 * left to query_process. @return 0, or <0 when there is nothing to peek at.
 */
int query_peek(const uint8_t *req, size_t reqlen, uint8_t key[WIRE_KEY_MAX], size_t *keylen,
	       uint16_t *qtype);

/**
 * Build a reply with only header, question (and OPT when the query had
 * EDNS, with q's cookie and the EDNS_EDE_* code `ede` unless EDNS_EDE_NONE)
 * and the given rcode, e.g. SERVFAIL from the forwarder.
 * @return length written, or 0 if it does not fit.
 */
size_t query_reply_rcode(const query_t *q, uint16_t rcode, int ede, uint8_t *resp, size_t cap);
