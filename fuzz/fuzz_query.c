/*
 * The packet path of a worker: any bytes in, a well-formed reply (or a
 * drop) out, over UDP and TCP limits, against a small fixture store.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "common/wire.h"
#include "fuzz/fixture.h"
#include "engine/query.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1700000000u /* the corpus's signed seeds were signed at this time */

static conf_t *g_conf;
static store_rtxn_t *g_txn;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t resp[65535];
	query_ctx_t ctx;
	query_client_t cl = {.addr = {127, 0, 0, 2}, .addrlen = 4};
	query_t q;
	size_t len;

	if (!g_conf) {
		/* With the workers' lookup cache, small enough that names evict each other. */
		if (conf_defaults(&g_conf) != 0 || store_read_begin(fixture_store(), &g_txn) != 0 ||
		    store_read_cache(g_txn, 8) != 0)
			abort();
		/* A known TSIG key, so signed seeds (corpus tsig_ok_*, signed at FUZZ_NOW) reach
		 * MAC verification and reply signing, not only BADKEY. */
		conf_tsig_key_t *k = &g_conf->tsig_keys[0];
		memcpy(k->name, "\003key", 5);
		k->namelen = 5;
		k->alg = CONF_TSIG_SHA256;
		memcpy(k->secret, "secret", 6);
		k->secretlen = 6;
		g_conf->ntsig_keys = 1;
	}
	query_ctx_init(&ctx, g_conf, 42);
	ctx.txn = g_txn;
	ctx.now_s = FUZZ_NOW;
	for (int tcp = 0; tcp <= 1; tcp++) {
		cl.tcp = tcp;
		if (query_process(&ctx, data, size, &cl, resp, sizeof(resp), &len, &q) ==
		    QUERY_REPLY)
			fixture_check_reply(resp, len, tcp ? sizeof(resp) : q.resp_limit);
	}
	return 0;
}
