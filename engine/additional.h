/*
 * server/additional: additional-section processing for authoritative answers
 * (RFC 1034 §4.3.2 step 6, RFC 2782, RFC 5321 §5): the A and AAAA records of
 * the in-zone targets of SRV, MX and NS answers, and of the synthesized apex
 * NS ns1.<domain> (its addresses come from [Dns] ns-address).
 *
 * Part of the pure query engine: no I/O, no allocation. The query builder
 * notes targets while it writes the answer, then asks for the additional
 * records once the answer and authority sections are complete. Additional
 * records are optional (RFC 2181 §9): a record that does not fit is left
 * out, whole RRset by whole RRset, and never sets TC.
 *
 * Threads: an additional_t lives on one worker's stack for one query.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

struct conf;
struct store_rtxn;

#define ADDITIONAL_MAX 16 /* targets remembered per answer; more are not looked up */

typedef struct {
	const uint8_t *name; /* borrowed: into the response or the read snapshot */
	size_t len;
	size_t off; /* where the name sits uncompressed in the response; 0 = nowhere */
	bool glue;  /* a referral's NS target: addresses below the cut may go in */
} additional_target_t;

typedef struct {
	size_t n;
	bool glue; /* targets noted from now on are glue (set while writing a referral) */
	additional_target_t t[ADDITIONAL_MAX];
} additional_t;

/** Start with no targets. */
void additional_init(additional_t *a);

/**
 * Remember a target (a valid wire name). Duplicates and targets past
 * ADDITIONAL_MAX are dropped.
 * @param name borrowed; must stay valid until additional_fill returns.
 * @param off  offset of an uncompressed copy of the name in the response
 *             (compression target), or 0.
 */
void additional_note(additional_t *a, const uint8_t *name, size_t len, size_t off);

/**
 * Remember the target inside the rdata of an SRV, MX or NS record written at
 * rdoff in the response; other types are ignored.
 */
void additional_note_rdata(additional_t *a, uint16_t type, const uint8_t *rdata, size_t rdlen,
			   size_t rdoff);

/**
 * Append A and AAAA RRsets of every noted target that lies in one of the
 * local domains and, unless noted as glue, not at or below a zone cut (data
 * there is not ours to give out as authoritative): from the store, or for a
 * synthesized ns1.<domain> without
 * stored addresses, from the configured ns-address. An RRset that does not
 * fit is rolled back and skipped.
 * @param w   the response writer, positioned after the authority section.
 * @param txn the read snapshot (may be NULL: then only synthesized records).
 * @return the number of RRs appended (ARCOUNT to add).
 */
uint16_t additional_fill(const additional_t *a, wire_writer_t *w, struct store_rtxn *txn,
			 const struct conf *c);

/**
 * Address of the synthesized name server: is (lowercased) `lower` the name
 * ns1.<domain> of local domain zi, and is there an address of `type`?
 * @param addr receives a borrowed pointer into conf (4 or 16 bytes).
 * @return the address length (4 or 16), 0 when the name is not ns1.<domain>
 *         or no address of that type is configured.
 */
size_t additional_ns_addr(const struct conf *c, int zi, const uint8_t *lower, size_t len,
			  uint16_t type, const uint8_t **addr);

/** True when lowercased `lower` is ns1.<domain> of zone zi and ns-address names it. */
bool additional_is_synth_ns(const struct conf *c, int zi, const uint8_t *lower, size_t len);
