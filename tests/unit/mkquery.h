/*
 * mkquery: the parsed question the forwarder and the cache are handed, built
 * from text, for their unit tests (test_cache, test_forward).
 */
#pragma once

#include <string.h>

#include "common/wire.h"
#include "engine/query.h"

/* A recursive IN question for name/qtype with id, no EDNS (512-byte replies). */
static inline void mkq(query_t *q, const char *name, uint16_t qtype, uint16_t id)
{
	memset(q, 0, sizeof(*q));
	wire_name_from_text(name, q->qname, &q->qnamelen);
	q->qtype = qtype;
	q->qclass = WIRE_CLASS_IN;
	q->id = id;
	q->flags = WIRE_FLAG_RD;
	q->resp_limit = 512;
}
