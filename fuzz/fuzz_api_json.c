/*
 * The admin API's request bodies: any bytes, for each operation. On success
 * the parsed request must respect the documented bounds.
 * Input: byte 0 selects the operation (POST, PUT, DELETE), the rest is the body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static api_req_t *g_req;

static void check(const api_req_t *r)
{
	if (r->naddrs > API_ADDRS_MAX || r->nports > API_ADDRS_MAX || r->nupdates > API_ADDRS_MAX ||
	    r->textlen > API_TEXT_MAX || memchr(r->alias, 0, sizeof(r->alias)) == NULL ||
	    memchr(r->target, 0, sizeof(r->target)) == NULL || r->mode < 0 || r->mode > 3)
		abort();
	for (size_t i = 0; i < r->naddrs; i++)
		if (r->addrs[i].len != 4 && r->addrs[i].len != 16)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	int op;

	if (size < 1)
		return 0;
	if (!g_req && !(g_req = malloc(sizeof(*g_req))))
		abort();
	op = API_OP_CREATE + data[0] % 3;
	err[0] = 0;
	if (api_json_parse(op, (const char *)data + 1, size - 1, g_req, err, sizeof(err)) == 0)
		check(g_req);
	else if (memchr(err, 0, sizeof(err)) == NULL)
		abort();
	return 0;
}
