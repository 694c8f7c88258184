/*
 * qbench: CPU time per query_process over a 20k-name zone, the figure issue 17's
 * zone-cut regression was measured with. No sockets: the pure query engine on a
 * temp store with the workers' lookup cache on.
 *
 * Usage: skydns-qbench [rounds] [shape]
 *   rounds  passes over all queries (default 5); the best pass is reported
 *   shape   "plain" (default): A records only, as most zones served;
 *           "apex": the same plus an apex NS (an imported zone);
 *           "cuts": the same plus a delegation and a wildcard elsewhere in the zone.
 * Env (issue 16; unset: every one of the 20k names once, in order, as before):
 *   QB_NAMES N      names in the zone (host<i>.skydns.local. A)
 *   QB_QUERIES Q    queries per pass, names drawn at random (fixed seed)
 *   QB_NEG P        percent negative: 3/4 NXDOMAIN under a search path
 *                   (host<i>.example.com.default.svc.skydns.local.), 1/4 NODATA (AAAA)
 *   QB_CACHE E      lookup-cache entries (default 131072)
 *   QB_CHURN R      a writer thread commits R times a second, 10 queried names' A
 *                   changed each time, through the store API as a watcher would; the
 *                   query side renews its snapshot every 64 queries in every mode
 * Prints µs/query of CPU time of the querying thread (CLOCK_THREAD_CPUTIME_ID, not wall
 * time, so a busy machine shifts the figure less, and the writer's CPU is not counted:
 * it is a watcher's). bench/qbench-cg.sh counts instructions instead.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/wire.h"
#include "conf/conf.h"
#include "engine/query.h"
#include "store/store.h"

#define QB_DEFAULT_NAMES 20000
#define QB_BATCH 64 /* queries between renews, as a worker's batch */

static int nnames = QB_DEFAULT_NAMES, nqueries, neg;

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
	for (int i = 0; i < nnames; i++) {
		snprintf(owner, sizeof(owner), "host%d.skydns.local.", i);
		ip[1] = (uint8_t)(i >> 16);
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

enum { Q_POS, Q_NX, Q_NODATA };

static size_t make_query(uint8_t *buf, int i, int kind)
{
	char qname[96];
	size_t len;

	if (kind == Q_NX)
		snprintf(qname, sizeof(qname), "host%d.example.com.default.svc.skydns.local.", i);
	else
		snprintf(qname, sizeof(qname), "host%d.skydns.local.", i);
	memset(buf, 0, WIRE_HDR_LEN);
	buf[0] = (uint8_t)(i >> 8);
	buf[1] = (uint8_t)i;
	buf[2] = 0x01; /* RD */
	buf[5] = 1;    /* QDCOUNT */
	len = WIRE_HDR_LEN + text_name(qname, buf + WIRE_HDR_LEN);
	wire_write_u16(buf + len, kind == Q_NODATA ? WIRE_TYPE_AAAA : WIRE_TYPE_A);
	wire_write_u16(buf + len + 2, WIRE_CLASS_IN);
	return len + 4;
}

static uint32_t lcg = 20240101u;

static uint32_t rnd(uint32_t n)
{
	lcg = lcg * 1103515245u + 12345u;
	return (uint32_t)(((uint64_t)(lcg >> 1) * n) >> 31);
}

/* The churn writer: R commits a second of 10 changed names, until told to stop. */
typedef struct {
	store_t *s;
	int rate;
	const int *names; /* the names queried, nqueries of them */
	atomic_bool stop;
	atomic_long commits;
} churn_t;

static void *churn_main(void *arg)
{
	churn_t *ch = arg;
	uint32_t seed = 7u;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&ch->stop)) {
		store_wtxn_t *w = NULL;
		uint8_t name[WIRE_NAME_MAX], ip[4];
		char owner[64];
		int src;
		if (store_write_begin(ch->s, &w) < 0 || (src = store_source_id(w, "bench")) < 0) {
			store_write_abort(w);
			break;
		}
		for (int k = 0; k < 10; k++) {
			seed = seed * 1103515245u + 12345u;
			int i = ch->names[(seed >> 8) % (uint32_t)nqueries];
			const uint8_t *rd = ip;
			uint16_t rdlen = 4;
			snprintf(owner, sizeof(owner), "host%d.skydns.local.", i);
			size_t len = text_name(owner, name);
			memcpy(
			    ip,
			    (uint8_t[]){10, (uint8_t)(seed >> 24), (uint8_t)(i >> 8), (uint8_t)i},
			    4);
			(void)store_rrset_replace(w, src, name, len, WIRE_TYPE_A, 60, &rd, &rdlen,
						  1);
		}
		if (store_write_commit(w) < 0)
			break;
		atomic_fetch_add(&ch->commits, 1);
		next.tv_nsec += 1000000000L / ch->rate;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	return NULL;
}

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/*
 * One pass over every name. @return µs of CPU, or <0 when an answer was wrong.
 * noinline: LTO would fold query_process in, and callgrind reads this function's
 * inclusive count (bench/qbench-cg.sh).
 */
__attribute__((noinline)) static double pass(query_ctx_t *ctx, uint8_t (*reqs)[512],
					     const size_t *lens, const uint8_t *kinds)
{
	static uint8_t resp[4096];
	query_client_t cl = {.addr = {127, 0, 0, 1}, .addrlen = 4};
	size_t rl;
	query_t q;
	double t0 = cpu_us();

	for (int i = 0; i < nqueries; i++) {
		if (i % QB_BATCH == 0) {
			store_read_reset(ctx->txn);
			if (store_read_renew(ctx->txn) < 0)
				return -1;
		}
		if (query_process(ctx, reqs[i], lens[i], &cl, resp, sizeof(resp), &rl, &q) < 0 ||
		    rl < WIRE_HDR_LEN)
			return -1;
		/* The answer the query deserves: 1 A; or no answer and the SOA in authority. */
		unsigned rcode = resp[3] & 0xF, an = wire_read_u16(resp + 6),
			 ns = wire_read_u16(resp + 8);
		if (kinds[i] == Q_POS ? an != 1 || rcode != 0
				      : an != 0 || ns != 1 || rcode != (kinds[i] == Q_NX ? 3u : 0u))
			return -1;
	}
	return cpu_us() - t0;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : dflt;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/skydns-qbench-XXXXXX", cmd[96];
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	const char *shape = argc > 2 ? argv[2] : "plain";
	int cuts = strcmp(shape, "cuts") == 0 ? 2 : strcmp(shape, "apex") == 0;
	int random_order = getenv("QB_QUERIES") != NULL;
	size_t cache = (size_t)env_int("QB_CACHE", 1 << 17);
	churn_t ch = {.rate = env_int("QB_CHURN", 0)};
	pthread_t churner;
	bool churning = false;
	uint8_t(*reqs)[512] = NULL;
	size_t *lens = NULL;
	uint8_t *kinds = NULL;
	int *names = NULL;
	store_t *s = NULL;
	store_rtxn_t *t = NULL;
	conf_t *c = NULL;
	query_ctx_t ctx;
	double best = -1, total = 0;
	int ret = 1;

	nnames = env_int("QB_NAMES", QB_DEFAULT_NAMES);
	nqueries = env_int("QB_QUERIES", nnames);
	neg = env_int("QB_NEG", 0);
	reqs = calloc((size_t)nqueries, 512);
	lens = calloc((size_t)nqueries, sizeof(*lens));
	kinds = calloc((size_t)nqueries, 1);
	names = calloc((size_t)nqueries, sizeof(*names));
	if (!reqs || !lens || !kinds || !names || rounds < 1 || rounds > 100 || nnames < 1 ||
	    nqueries < 1 || neg < 0 || neg > 100 || ch.rate < 0 || !mkdtemp(dir))
		return 2;
	if (store_open(&s, dir, (size_t)1 << 31, 0) < 0 || build(s, cuts) < 0 ||
	    store_read_begin(s, &t) < 0 || store_read_cache(t, cache) < 0 ||
	    conf_defaults(&c) < 0) {
		fprintf(stderr, "qbench: cannot set up the store in %s\n", dir);
		goto out;
	}
	query_ctx_init(&ctx, c, 1);
	ctx.txn = t;
	for (int i = 0; i < nqueries; i++) {
		int n = random_order ? (int)rnd((uint32_t)nnames) : i;
		int r = (int)rnd(400), kind = Q_POS;
		if (r < 4 * neg)
			kind = r < 3 * neg ? Q_NX : Q_NODATA;
		names[i] = n;
		kinds[i] = (uint8_t)kind;
		lens[i] = make_query(reqs[i], n, kind);
	}
	if (pass(&ctx, reqs, lens, kinds) < 0) { /* warm the lookup cache, as a worker's is */
		fprintf(stderr, "qbench: a query got a wrong answer\n");
		goto out;
	}
	if (ch.rate > 0) {
		ch.s = s;
		ch.names = names;
		if (pthread_create(&churner, NULL, churn_main, &ch) != 0)
			goto out;
		churning = true;
	}
	for (int r = 0; r < rounds; r++) {
		double us = pass(&ctx, reqs, lens, kinds);
		if (us < 0) {
			fprintf(stderr, "qbench: a query got a wrong answer\n");
			goto out;
		}
		if (best < 0 || us < best)
			best = us;
		total += us;
	}
	if (churning) {
		atomic_store(&ch.stop, true);
		pthread_join(churner, NULL);
		churning = false;
	}
	printf("%s: %d names, %d queries (%d%% negative) x %d rounds, churn %d/s (%ld commits), "
	       "best %.3f us/query (CPU)\n",
	       shape, nnames, nqueries, neg, rounds, ch.rate, atomic_load(&ch.commits),
	       best / nqueries);
	ret = 0;
out:
	if (churning) {
		atomic_store(&ch.stop, true);
		pthread_join(churner, NULL);
	}
	store_read_end(t);
	store_close(s);
	conf_free(c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "qbench: could not remove %s\n", dir);
	free(reqs);
	free(lens);
	free(kinds);
	free(names);
	return ret;
}
