/*
 * Unit tests for server/topn: exact counts below capacity, capacity bound,
 * the Space-Saving error bounds on a skewed stream against exact counts,
 * publish/snapshot (including a reader racing the publisher), merging.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "engine/topn.h"
#include "check.h"

#define NNAMES 5000

/* "\x01" "n" <decimal id> "\x05" "local" "\0": distinct names of varying length. */
static size_t make_name(unsigned id, uint8_t *out)
{
	char lab[16];
	int n = snprintf(lab, sizeof(lab), "n%u", id);

	out[0] = (uint8_t)n;
	memcpy(out + 1, lab, (size_t)n);
	memcpy(out + 1 + n, "\5local", 7);
	return (size_t)n + 8;
}

static unsigned name_id(const topn_entry_t *e)
{
	return (unsigned)strtoul((const char *)e->name + 2, NULL, 10);
}

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Roughly Zipf(1) over NNAMES ids: id i has weight 1/(i+1). */
static unsigned zipf(const double *cdf)
{
	double u = (double)(rnd() >> 11) / (double)(1ULL << 53);
	unsigned lo = 0, hi = NNAMES - 1;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void add_id(topn_t *t, unsigned id)
{
	uint8_t name[32];

	topn_add(t, name, make_name(id, name));
}

static bool no_duplicates(const topn_entry_t *e, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (e[i].namelen == e[j].namelen &&
			    memcmp(e[i].name, e[j].name, e[i].namelen) == 0)
				return false;
	return true;
}

static void test_exact_below_capacity(void)
{
	topn_t *t = NULL;
	topn_entry_t out[64];
	uint64_t min = 99;
	int n;

	CHECK_EQ_INT(topn_new(&t, 64, 1), 0);
	/* id i asked (i+1)*3 times, interleaved so order does not help. */
	for (unsigned round = 0; round < 30; round++)
		for (unsigned i = 0; i < 10; i++)
			if (round < (i + 1) * 3)
				add_id(t, i);
	CHECK_EQ_INT(topn_snapshot(t, out, &min), 0); /* nothing published yet */
	topn_publish(t);
	n = topn_snapshot(t, out, &min);
	CHECK_EQ_INT(n, 10);
	CHECK_EQ_INT(min, 0); /* not full: an absent name was never seen */
	for (int i = 0; i < n; i++) {
		CHECK_EQ_INT(out[i].count, (name_id(&out[i]) + 1) * 3);
		CHECK_EQ_INT(out[i].error, 0);
	}
	CHECK(no_duplicates(out, n));
	/* Names are not normalized by topn: the caller lowercases, and length matters. */
	topn_add(t, (const uint8_t *)"\1N\5local", 9);
	topn_add(t, (const uint8_t *)"", 0);
	topn_publish(t);
	CHECK_EQ_INT(topn_snapshot(t, out, &min), 11);
	topn_free(t);
	CHECK_EQ_INT(topn_new(&t, 0, 1), ERR_INVAL);
	topn_free(NULL);
}

static void test_space_saving_bounds(void)
{
	static double cdf[NNAMES];
	static uint64_t truth[NNAMES];
	const size_t cap = 64;
	const uint64_t total = 200000;
	topn_entry_t out[64];
	topn_t *t = NULL;
	uint64_t min = 0, sumc = 0;
	bool bounds = true, heavy = true;
	int n;

	for (unsigned i = 0; i < NNAMES; i++)
		cdf[i] = (i ? cdf[i - 1] : 0) + 1.0 / (i + 1);
	for (unsigned i = 0; i < NNAMES; i++)
		cdf[i] /= cdf[NNAMES - 1];
	CHECK_EQ_INT(topn_new(&t, cap, 42), 0);
	for (uint64_t k = 0; k < total; k++) {
		unsigned id = zipf(cdf);
		truth[id]++;
		add_id(t, id);
	}
	topn_publish(t);
	n = topn_snapshot(t, out, &min);
	CHECK_EQ_INT(n, (int)cap); /* capacity respected, and full */
	CHECK(no_duplicates(out, n));
	CHECK(min > 0 && min <= total / cap);
	for (int i = 0; i < n; i++) {
		uint64_t tc = truth[name_id(&out[i])];
		sumc += out[i].count;
		if (!(out[i].count - out[i].error <= tc && tc <= out[i].count) ||
		    out[i].error > min) {
			bounds = false;
			fprintf(stderr, "id %u: count %llu error %llu true %llu\n",
				name_id(&out[i]), (unsigned long long)out[i].count,
				(unsigned long long)out[i].error, (unsigned long long)tc);
		}
	}
	CHECK(bounds);
	CHECK_EQ_INT(sumc, total); /* a full table's counts sum to the stream length */
	/* Every name asked more than min times is monitored. */
	for (unsigned id = 0; id < NNAMES; id++) {
		bool found = false;
		if (truth[id] <= min)
			continue;
		for (int i = 0; i < n && !found; i++)
			found = name_id(&out[i]) == id;
		heavy = heavy && found;
	}
	CHECK(heavy);
	/* With this skew the three heaviest names are exactly counted enough to rank first. */
	topn_entry_t top[3];
	uint64_t mins[1] = {min};
	size_t ends[1] = {(size_t)n};
	CHECK_EQ_INT(topn_merge(out, (size_t)n, ends, mins, 1, top, 3), 3);
	CHECK_EQ_INT(name_id(&top[0]), 0);
	CHECK_EQ_INT(name_id(&top[1]), 1);
	CHECK_EQ_INT(name_id(&top[2]), 2);
	topn_free(t);
}

/* topn_sample: exact until full, then heavy hitters stay ranked and close to their counts. */
static void test_sampled(void)
{
	static double cdf[NNAMES];
	static uint64_t truth[NNAMES];
	const size_t cap = 64;
	const uint64_t total = 400000;
	topn_entry_t out[64], top[3];
	topn_t *t = NULL;
	uint64_t min = 0;
	uint8_t name[32];
	int n;

	for (unsigned i = 0; i < NNAMES; i++)
		cdf[i] = (i ? cdf[i - 1] : 0) + 1.0 / (i + 1);
	for (unsigned i = 0; i < NNAMES; i++)
		cdf[i] /= cdf[NNAMES - 1];
	CHECK_EQ_INT(topn_new(&t, cap, 7), 0);
	for (unsigned id = 0; id < 10; id++) /* below capacity: every query counts */
		for (unsigned k = 0; k <= id; k++)
			topn_sample(t, name, make_name(id, name));
	topn_publish(t);
	n = topn_snapshot(t, out, &min);
	CHECK_EQ_INT(n, 10);
	for (int i = 0; i < n; i++)
		CHECK_EQ_INT(out[i].count, name_id(&out[i]) + 1);
	for (uint64_t k = 0; k < total; k++) {
		unsigned id = zipf(cdf);
		truth[id]++;
		topn_sample(t, name, make_name(id, name));
	}
	topn_publish(t);
	n = topn_snapshot(t, out, &min);
	uint64_t mins[1] = {min};
	size_t ends[1] = {(size_t)n};
	CHECK_EQ_INT(topn_merge(out, (size_t)n, ends, mins, 1, top, 3), 3);
	for (int i = 0; i < 3; i++) {
		uint64_t tc = truth[name_id(&top[i])] + name_id(&top[i]) + 1;
		CHECK_EQ_INT(name_id(&top[i]), i);
		/* Within 5 % of the true count (sampling noise is ~1 % at these counts). */
		CHECK(top[i].count * 100 >= tc * 95 &&
		      top[i].count * 100 <= tc * 105 + top[i].error * 100);
	}
	topn_free(t);
}

/* Many distinct names through a tiny table: eviction and index deletion stay consistent. */
static void test_churn_tiny(void)
{
	topn_t *t = NULL;
	topn_entry_t out[4];
	uint64_t min = 0, sumc = 0;
	int n;

	CHECK_EQ_INT(topn_new(&t, 4, 7), 0);
	for (unsigned k = 0; k < 100000; k++)
		add_id(t, (unsigned)(rnd() % 1000));
	for (unsigned k = 0; k < 500; k++)
		add_id(t, 5000); /* one heavy hitter at the end */
	topn_publish(t);
	n = topn_snapshot(t, out, &min);
	CHECK_EQ_INT(n, 4);
	CHECK(no_duplicates(out, n));
	for (int i = 0; i < n; i++)
		sumc += out[i].count;
	CHECK_EQ_INT(sumc, 100500);
	bool heavy = false;
	for (int i = 0; i < n; i++)
		if (name_id(&out[i]) == 5000)
			heavy = out[i].count >= 500 && out[i].count - out[i].error <= 500;
	CHECK(heavy);
	topn_free(t);
}

static void test_merge(void)
{
	topn_entry_t all[5], out[5];
	/* Table 0 (full, min 10): a 50/e0, b 10/e5. Table 1 (not full, min 0): a 7, c 3. */
	unsigned ids[5] = {1, 2, 1, 3, 0};
	uint64_t cnt[4] = {50, 10, 7, 3}, err[4] = {0, 5, 0, 0};
	size_t ends[2] = {2, 4};
	uint64_t mins[2] = {10, 0};

	memset(all, 0, sizeof(all));
	for (int i = 0; i < 4; i++) {
		all[i].namelen = (uint8_t)make_name(ids[i], all[i].name);
		all[i].count = cnt[i];
		all[i].error = err[i];
	}
	CHECK_EQ_INT(topn_merge(all, 4, ends, mins, 2, out, 5), 3);
	CHECK_EQ_INT(name_id(&out[0]), 1);
	CHECK_EQ_INT(out[0].count, 57);
	CHECK_EQ_INT(out[0].error, 0);
	/* c was absent from the full table 0: up to its min (10) may have been counted there. */
	CHECK_EQ_INT(name_id(&out[1]), 3);
	CHECK_EQ_INT(out[1].count, 13);
	CHECK_EQ_INT(out[1].error, 10);
	CHECK_EQ_INT(name_id(&out[2]), 2);
	CHECK_EQ_INT(out[2].count, 10);
	CHECK_EQ_INT(out[2].error, 5);
	CHECK_EQ_INT(topn_merge(all, 0, ends, mins, 0, out, 5), 0);
}

typedef struct {
	topn_t *t;
	_Atomic bool done;
	long snaps, bad, timeouts;
} race_t;

/* Each publish happens after a multiple of 100 adds: a torn copy would show another sum. */
static void *reader(void *arg)
{
	race_t *r = arg;
	static topn_entry_t out[32];
	uint64_t min;

	while (!atomic_load(&r->done) && r->snaps < 200000) {
		int n = topn_snapshot(r->t, out, &min);
		uint64_t sum = 0;

		if (n < 0) {
			r->timeouts++;
			continue;
		}
		for (int i = 0; i < n; i++)
			sum += out[i].count;
		if (sum % 100 != 0 || !no_duplicates(out, n))
			r->bad++;
		r->snaps++;
	}
	return NULL;
}

static void test_reader_race(void)
{
	race_t r = {0};
	pthread_t th;

	CHECK_EQ_INT(topn_new(&r.t, 32, 3), 0);
	CHECK_EQ_INT(pthread_create(&th, NULL, reader, &r), 0);
	for (unsigned k = 1; k <= 400000; k++) {
		add_id(r.t, (unsigned)(rnd() % 20)); /* fewer names than slots: sums are exact */
		if (k % 100 == 0)
			topn_publish(r.t);
	}
	atomic_store(&r.done, true);
	pthread_join(th, NULL);
	CHECK(r.snaps > 0);
	CHECK_EQ_INT(r.bad, 0);
	printf("reader race: %ld snapshots, %ld timeouts, %ld torn\n", r.snaps, r.timeouts, r.bad);
	topn_free(r.t);
}

int main(void)
{
	test_exact_below_capacity();
	test_space_saving_bounds();
	test_churn_tiny();
	test_sampled();
	test_merge();
	test_reader_race();
	return check_done();
}
