/*
 * The packet path of a worker: any bytes in, a well-formed reply (or a
 * drop) out, over UDP and TCP limits, against a small fixture store.
 */
#include <stdint.h>
#include <stdlib.h>

#include "conf/conf.h"
#include "common/wire.h"
#include "fuzz/fixture.h"
#include "server/query.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static conf_t *g_conf;
static store_rtxn_t *g_txn;

/* Every reply must itself parse: header, question, and each RR's owner and rdata length. */
static void check_reply(const uint8_t *p, size_t len, size_t limit)
{
	wire_reader_t r;
	uint16_t counts[4], qd, u16;
	uint8_t name[WIRE_NAME_MAX];
	size_t nlen;

	if (len < WIRE_HDR_LEN || len > limit)
		abort();
	wire_reader_init(&r, p, len);
	if (wire_skip(&r, 4) < 0)
		abort();
	for (int i = 0; i < 4; i++)
		if (wire_get_u16(&r, &counts[i]) < 0)
			abort();
	for (qd = 0; qd < counts[0]; qd++)
		if (wire_get_name(&r, name, &nlen) < 0 || wire_skip(&r, 4) < 0)
			abort();
	for (int s = 1; s < 4; s++) {
		for (uint16_t i = 0; i < counts[s]; i++) {
			if (wire_get_name(&r, name, &nlen) < 0 || wire_skip(&r, 8) < 0 ||
			    wire_get_u16(&r, &u16) < 0 || wire_skip(&r, u16) < 0)
				abort();
		}
	}
	if (wire_remaining(&r) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t resp[65535];
	query_ctx_t ctx;
	query_client_t cl = {.addr = {127, 0, 0, 2}, .addrlen = 4};
	query_t q;
	size_t len;

	if (!g_conf) {
		if (conf_defaults(&g_conf) != 0 || store_read_begin(fixture_store(), &g_txn) != 0)
			abort();
	}
	query_ctx_init(&ctx, g_conf, 42);
	ctx.txn = g_txn;
	for (int tcp = 0; tcp <= 1; tcp++) {
		cl.tcp = tcp;
		if (query_process(&ctx, data, size, &cl, resp, sizeof(resp), &len, &q) == QUERY_REPLY)
			check_reply(resp, len, tcp ? sizeof(resp) : q.resp_limit);
	}
	return 0;
}
