/*
 * qbench: CPU time per query_process over a 20k-name zone, the figure issue 17's
 * zone-cut regression was measured with. No sockets: the pure query engine on a
 * temp store with the workers' lookup cache on.
 *
 * Usage: skydns-qbench [rounds] [shape]
 *   rounds  passes over all names (default 5); the best pass is reported
 *   shape   "plain" (default): A records only, as most zones served;
 *           "apex": the same plus an apex NS (an imported zone);
 *           "cuts": the same plus a delegation and a wildcard elsewhere in the zone.
 * Prints µs/query of CPU time (CLOCK_PROCESS_CPUTIME_ID, not wall time, so a busy
 * machine shifts the figure less). bench/qbench-cg.sh counts instructions instead.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/wire.h"
#include "conf/conf.h"
#include "server/query.h"
#include "store/store.h"

#define QB_NAMES 20000

static size_t text_name(const char *text, uint8_t *out)
{
	size_t len = 0;

	/* Bounded by the fixed, short names this program makes. */
	while (*text) {
		const char *dot = strchr(text, '.');
		size_t l = (size_t)(dot - text);
		out[len++] = (uint8_t)l;
		memcpy(out + len, text, l);
		len += l;
		text = dot + 1;
	}
	out[len++] = 0;
	return len;
}

static int add(store_wtxn_t *w, int src, const char *owner, uint16_t type, const uint8_t *rd,
	       uint16_t rdlen)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t len = text_name(owner, name);

	return store_rr_add(w, src, name, len, type, 60, rd, rdlen);
}

static int build(store_t *s, int cuts)
{
	store_wtxn_t *w = NULL;
	char owner[64];
	uint8_t ip[4] = {10, 0, 0, 0}, ns[WIRE_NAME_MAX];
	int src, ret;

	if ((ret = store_write_begin(s, &w)) < 0)
		return ret;
	if ((src = store_source_id(w, "bench")) < 0) {
		store_write_abort(w);
		return src;
	}
	for (int i = 0; i < QB_NAMES; i++) {
		snprintf(owner, sizeof(owner), "host%d.skydns.local.", i);
		ip[2] = (uint8_t)(i >> 8);
		ip[3] = (uint8_t)i;
		if ((ret = add(w, src, owner, WIRE_TYPE_A, ip, 4)) < 0)
			goto fail;
	}
	if (cuts) {
		/* Every imported zone has one; never a cut. */
		size_t nslen = text_name("ns.deleg.skydns.local.", ns);
		if ((ret = add(w, src, "skydns.local.", WIRE_TYPE_NS, ns, (uint16_t)nslen)) < 0)
			goto fail;
	}
	if (cuts > 1) {
		size_t nslen = text_name("ns.deleg.skydns.local.", ns);
		if ((ret = add(w, src, "deleg.skydns.local.", WIRE_TYPE_NS, ns, (uint16_t)nslen)) <
			0 ||
		    (ret = add(w, src, "*.wild.skydns.local.", WIRE_TYPE_A, ip, 4)) < 0)
			goto fail;
	}
	return store_write_commit(w);
fail:
	store_write_abort(w);
	return ret;
}

static size_t make_query(uint8_t *buf, int i)
{
	char qname[64];
	size_t len;

	snprintf(qname, sizeof(qname), "host%d.skydns.local.", i);
	memset(buf, 0, WIRE_HDR_LEN);
	buf[0] = (uint8_t)(i >> 8);
	buf[1] = (uint8_t)i;
	buf[2] = 0x01; /* RD */
	buf[5] = 1;    /* QDCOUNT */
	len = WIRE_HDR_LEN + text_name(qname, buf + WIRE_HDR_LEN);
	wire_write_u16(buf + len, WIRE_TYPE_A);
	wire_write_u16(buf + len + 2, WIRE_CLASS_IN);
	return len + 4;
}

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/*
 * One pass over every name. @return µs of CPU, or <0 when an answer was wrong.
 * noinline: LTO would fold query_process in, and callgrind reads this function's
 * inclusive count (bench/qbench-cg.sh).
 */
__attribute__((noinline)) static double pass(query_ctx_t *ctx, uint8_t (*reqs)[512],
					     const size_t *lens)
{
	static uint8_t resp[4096];
	query_client_t cl = {.addr = {127, 0, 0, 1}, .addrlen = 4};
	size_t rl;
	query_t q;
	double t0 = cpu_us();

	for (int i = 0; i < QB_NAMES; i++) {
		if (query_process(ctx, reqs[i], lens[i], &cl, resp, sizeof(resp), &rl, &q) < 0 ||
		    rl < WIRE_HDR_LEN || wire_read_u16(resp + 6) != 1)
			return -1;
	}
	return cpu_us() - t0;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/skydns-qbench-XXXXXX", cmd[96];
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	const char *shape = argc > 2 ? argv[2] : "plain";
	int cuts = strcmp(shape, "cuts") == 0 ? 2 : strcmp(shape, "apex") == 0;
	uint8_t(*reqs)[512] = calloc(QB_NAMES, 512);
	size_t *lens = calloc(QB_NAMES, sizeof(*lens));
	store_t *s = NULL;
	store_rtxn_t *t = NULL;
	conf_t *c = NULL;
	query_ctx_t ctx;
	double best = -1;
	int ret = 1;

	if (!reqs || !lens || rounds < 1 || rounds > 100 || !mkdtemp(dir))
		return 2;
	if (store_open(&s, dir, 256 << 20, 0) < 0 || build(s, cuts) < 0 ||
	    store_read_begin(s, &t) < 0 || store_read_cache(t, 1 << 17) < 0 ||
	    conf_defaults(&c) < 0) {
		fprintf(stderr, "qbench: cannot set up the store in %s\n", dir);
		goto out;
	}
	query_ctx_init(&ctx, c, 1);
	ctx.txn = t;
	for (int i = 0; i < QB_NAMES; i++)
		lens[i] = make_query(reqs[i], i);
	(void)pass(&ctx, reqs, lens); /* warm the lookup cache, as a worker's is */
	for (int r = 0; r < rounds; r++) {
		double us = pass(&ctx, reqs, lens);
		if (us < 0) {
			fprintf(stderr, "qbench: a query got no answer\n");
			goto out;
		}
		if (best < 0 || us < best)
			best = us;
	}
	printf("%s: %d queries x %d rounds, best %.3f us/query (CPU)\n", shape, QB_NAMES, rounds,
	       best / QB_NAMES);
	ret = 0;
out:
	store_read_end(t);
	store_close(s);
	conf_free(c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "qbench: could not remove %s\n", dir);
	free(reqs);
	free(lens);
	return ret;
}
