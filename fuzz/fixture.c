#include "fuzz/fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "store/store.h"

static store_t *g_store;
static char g_dir[64];

static void fixture_cleanup(void)
{
	char cmd[128];

	store_close(g_store);
	g_store = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0) {
		/* a leftover temp dir is harmless */
	}
}

static int add(store_wtxn_t *w, int src, const char *owner, uint16_t type, const void *rdata,
	       uint16_t rdlen)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t len;

	if (wire_name_from_text(owner, name, &len) != 0)
		return -1;
	return store_rr_add(w, src, name, len, type, 60, rdata, rdlen);
}

static uint16_t name_rdata(const char *text, uint8_t *out)
{
	size_t len = 0;

	if (wire_name_from_text(text, out, &len) != 0)
		return 0;
	return (uint16_t)len;
}

struct store *fixture_store(void)
{
	store_wtxn_t *w = NULL;
	uint8_t rd[300];
	int src, ret = 0;

	if (g_store)
		return g_store;
	strcpy(g_dir, "/tmp/skydns-fuzz-XXXXXX");
	if (!mkdtemp(g_dir) || store_open(&g_store, g_dir, 16u << 20, 0) != 0)
		abort();
	atexit(fixture_cleanup);
	if (store_write_begin(g_store, &w) != 0 || (src = store_source_id(w, "fuzz")) < 0)
		abort();
	ret |= add(w, src, "a.skydns.local.", WIRE_TYPE_A, "\x0a\x00\x00\x01", 4);
	for (int i = 1; i <= 40; i++) { /* large enough to need TC over UDP */
		uint8_t ip[4] = {10, 0, 1, (uint8_t)i};
		ret |= add(w, src, "multi.skydns.local.", WIRE_TYPE_A, ip, 4);
	}
	ret |= add(w, src, "a.skydns.local.", WIRE_TYPE_AAAA,
		   "\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16);
	ret |= add(w, src, "alias.skydns.local.", WIRE_TYPE_CNAME, rd,
		   name_rdata("a.skydns.local.", rd));
	ret |= add(w, src, "loop1.skydns.local.", WIRE_TYPE_CNAME, rd,
		   name_rdata("loop2.skydns.local.", rd));
	ret |= add(w, src, "loop2.skydns.local.", WIRE_TYPE_CNAME, rd,
		   name_rdata("loop1.skydns.local.", rd));
	memcpy(rd, "\x00\x00\x00\x0a\x00\x50", 6);
	ret |= add(w, src, "_http._tcp.a.skydns.local.", WIRE_TYPE_SRV, rd,
		   (uint16_t)(6 + name_rdata("a.skydns.local.", rd + 6)));
	ret |= add(w, src, "t.skydns.local.", WIRE_TYPE_TXT, "\x05hello", 6);
	memcpy(rd, "\x00\x0a", 2);
	ret |= add(w, src, "skydns.local.", WIRE_TYPE_MX, rd,
		   (uint16_t)(2 + name_rdata("a.skydns.local.", rd + 2)));
	ret |= add(w, src, "deep.ent.skydns.local.", WIRE_TYPE_A, "\x0a\x00\x00\x02", 4);
	/* Issue 17: a wildcard, a CNAME wildcard, a delegation with glue. */
	ret |= add(w, src, "*.w.skydns.local.", WIRE_TYPE_A, "\x0a\x00\x00\x03", 4);
	ret |= add(w, src, "*.cw.skydns.local.", WIRE_TYPE_CNAME, rd,
		   name_rdata("a.skydns.local.", rd));
	ret |= add(w, src, "sub.skydns.local.", WIRE_TYPE_NS, rd,
		   name_rdata("ns.sub.skydns.local.", rd));
	ret |= add(w, src, "ns.sub.skydns.local.", WIRE_TYPE_A, "\x0a\x00\x00\x04", 4);
	if (ret != 0 || store_write_commit(w) != 0)
		abort();
	return g_store;
}

void fixture_check_reply(const uint8_t *p, size_t len, size_t limit)
{
	wire_reader_t r;
	uint16_t counts[4], u16;
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
	for (uint16_t i = 0; i < counts[0]; i++)
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
