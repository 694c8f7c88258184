/*
 * churn: control-plane churn for bench/run.sh churn (issue 16). Commits R times a
 * second, each commit changing the A set of 10 names svc-N.default.svc.skydns.local.
 * (N drawn at random below NSVC), through the store API in its own process, as a
 * watcher does. Every changed name gets one address of source "bench-churn" beside
 * the imported one, replaced on every later change.
 *
 * Usage: skydns-churn DATA_DIR NSVC RATE SECONDS
 * Prints the commits made and the slowest commit on exit; exits 1 on a store error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store.h"

#define NAMES_PER_COMMIT 10

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

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	store_t *s = NULL;
	uint32_t seed = 16;
	long commits = 0;
	double slowest = 0;
	struct timespec next;
	int ret;

	if (argc != 5) {
		fprintf(stderr, "usage: skydns-churn DATA_DIR NSVC RATE SECONDS\n");
		return 2;
	}
	long nsvc = atol(argv[2]), rate = atol(argv[3]);
	double secs = atof(argv[4]);
	if (nsvc < 1 || rate < 1 || rate > 100000 || secs <= 0)
		return 2;
	if ((ret = store_open(&s, argv[1], (size_t)1 << 30, 0)) < 0) {
		fprintf(stderr, "churn: store_open %s: %s\n", argv[1], err_str(ret));
		return 1;
	}
	double end = now_s() + secs;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (now_s() < end) {
		store_wtxn_t *w = NULL;
		double t0 = now_s();
		int src;
		if ((ret = store_write_begin(s, &w)) < 0 ||
		    (ret = src = store_source_id(w, "bench-churn")) < 0)
			goto fail;
		for (int k = 0; k < NAMES_PER_COMMIT; k++) {
			char owner[80];
			uint8_t name[WIRE_NAME_MAX], ip[4];
			const uint8_t *rd = ip;
			uint16_t rdlen = 4;
			seed = seed * 1103515245u + 12345u;
			long n = (long)((seed >> 4) % (uint32_t)nsvc);
			snprintf(owner, sizeof(owner), "svc-%ld.default.svc.skydns.local.", n);
			size_t len = text_name(owner, name);
			ip[0] = 10;
			ip[1] = 250;
			ip[2] = (uint8_t)(seed >> 24);
			ip[3] = (uint8_t)(seed >> 16);
			if ((ret = store_rrset_replace(w, src, name, len, WIRE_TYPE_A, 60, &rd,
						       &rdlen, 1)) < 0)
				goto fail;
		}
		if ((ret = store_write_commit(w)) < 0) {
			w = NULL;
			goto fail;
		}
		commits++;
		if (now_s() - t0 > slowest)
			slowest = now_s() - t0;
		next.tv_nsec += 1000000000L / rate;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		continue;
	fail:
		store_write_abort(w);
		fprintf(stderr, "churn: write: %s\n", err_str(ret));
		store_close(s);
		return 1;
	}
	printf("churn: %ld commits of %d names in %.1f s, slowest %.1f ms\n", commits,
	       NAMES_PER_COMMIT, secs, slowest * 1e3);
	store_close(s);
	return 0;
}
