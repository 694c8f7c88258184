/*
 * What etcd hands the watcher, as any bytes: byte 0 selects the parser
 * (value JSON + the records built from it, range reply, watch line, health
 * value, key), the rest is its input. Whatever parses must respect the
 * documented bounds; nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "watchers/etcd.h"
#include "watchers/map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static map_value_t g_v;

static int on_rr(void *ctx, uint16_t type, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
	(void)ctx;
	(void)ttl;
	if (type == 0 || (rdlen && !rdata))
		abort();
	volatile uint8_t x = rdlen ? rdata[rdlen - 1] : 0; /* ASan checks the length */
	(void)x;
	return 0;
}

static int on_kv(void *ctx, const etcd_kv_t *kv)
{
	(void)ctx;
	if (kv->klen == 0 || !kv->key || !kv->val)
		abort();
	volatile uint8_t x = kv->key[kv->klen - 1];
	(void)x;
	return 0;
}

static void value(const uint8_t *p, size_t n)
{
	static const uint8_t name[] = "\1a\4test\0", parent[] = "\4test\0";
	char err[160];
	map_leaf_t leaf = {name, sizeof(name) - 1, &g_v};

	if (map_parse_value(p, n, &g_v, err, sizeof(err)) < 0) {
		if (!memchr(err, 0, sizeof(err)))
			abort();
		return;
	}
	if (g_v.textlen >= MAP_TEXT_MAX || g_v.targetlen > 255 || g_v.targetstrip > 127)
		abort();
	map_build(name, sizeof(name) - 1, &leaf, 1, on_rr, NULL);
	map_build(parent, sizeof(parent) - 1, &leaf, 1, on_rr, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	etcd_range_info_t ri = {0};
	etcd_watch_msg_t m;
	uint8_t name[255];
	size_t namelen;

	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	switch (data[0] % 5) {
	case 0:
		value(p, n);
		break;
	case 1:
		if (etcd_parse_range((const char *)p, n, on_kv, NULL, &ri) == 0)
			free(ri.last_key);
		break;
	case 2:
		if (etcd_parse_watch((const char *)p, n, on_kv, NULL, &m) == 0 &&
		    !memchr(m.error, 0, sizeof(m.error)))
			abort();
		break;
	case 3: {
		/* The probe's read of a status value and its rewrite (issue 13): the rewrite
		 * keeps every field, so it must read back as what it states, by the probe. */
		char src[16], *out = NULL;
		int st = map_health_source(p, n, src, sizeof(src));
		if (!memchr(src, 0, sizeof(src)))
			abort();
		if (map_health_restate(p, n, st == 2 ? 2 : 1, "probe", &out) == 0) {
			if (map_health_source((const uint8_t *)out, strlen(out), src,
					      sizeof(src)) != (st == 2 ? 2 : 1) ||
			    strcmp(src, "probe") != 0)
				abort();
			free(out);
		}
		break;
	}
	default:
		if (map_key_name("/skydns", p, n, name, &namelen) == 0 &&
		    (namelen == 0 || namelen > 255 || name[namelen - 1] != 0))
			abort();
		break;
	}
	return 0;
}
