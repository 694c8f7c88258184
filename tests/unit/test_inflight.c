/* Unit tests of engine/inflight: the workers' shared registry of questions in flight. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "engine/inflight.h"

static const uint8_t NAME[] = "\3www\7example\3com";

static inflight_key_t key(const uint8_t *name, size_t len, uint16_t qtype, bool do_bit,
			  uint32_t hash)
{
	inflight_key_t k = {.name = name,
			    .len = len,
			    .qtype = qtype,
			    .qclass = 1,
			    .do_bit = do_bit,
			    .cd = false,
			    .hash = hash};
	return k;
}

/* Owner, joiners, done: the waiters come back once, the reference dies. */
static void test_claim_join_done(void)
{
	inflight_t *r = NULL;
	uint64_t a, b, c, d;
	inflight_key_t k = key(NAME, sizeof(NAME), 1, false, 7);

	CHECK_EQ_INT(inflight_new(&r), 0);
	CHECK_EQ_INT(inflight_claim(r, &k, 0, &a), INFLIGHT_OWNER);
	CHECK(inflight_live(r, a));
	CHECK_EQ_INT(inflight_claim(r, &k, 1, &b), INFLIGHT_JOINED);
	CHECK(b == a);
	CHECK_EQ_INT(inflight_claim(r, &k, 5, &b), INFLIGHT_JOINED);
	/* The owner itself again (its forwarder did not join locally): ask, do not wait. */
	CHECK_EQ_INT(inflight_claim(r, &k, 0, &c), INFLIGHT_FULL);
	/* Another key (DO differs, as the cache's key): its own entry. */
	inflight_key_t k2 = key(NAME, sizeof(NAME), 1, true, 7);
	CHECK_EQ_INT(inflight_claim(r, &k2, 1, &d), INFLIGHT_OWNER);
	CHECK(d != a);
	CHECK(inflight_done(r, a) == ((1ull << 1) | (1ull << 5)));
	CHECK(!inflight_live(r, a));
	CHECK(inflight_done(r, a) == 0); /* a second done is a no-op */
	/* The slot again: a new generation, the old reference stays dead. */
	CHECK_EQ_INT(inflight_claim(r, &k, 1, &c), INFLIGHT_OWNER);
	CHECK(c != a && !inflight_live(r, a) && inflight_live(r, c));
	CHECK(inflight_done(r, c) == 0);
	CHECK(inflight_done(r, d) == 0);
	CHECK_EQ_INT(inflight_claim(r, &k, INFLIGHT_MAX_WORKERS, &c), INFLIGHT_FULL);
	inflight_free(r);
}

/* Fixed size: a full shard says FULL, and frees up again after done. */
static void test_full(void)
{
	enum { PER = INFLIGHT_SLOTS / INFLIGHT_SHARDS };
	inflight_t *r = NULL;
	uint8_t names[PER + 1][4];
	uint64_t refs[PER + 1];

	CHECK_EQ_INT(inflight_new(&r), 0);
	for (int i = 0; i <= PER; i++) {
		names[i][0] = 2;
		names[i][1] = (uint8_t)('a' + i % 26);
		names[i][2] = (uint8_t)('a' + i / 26);
		names[i][3] = 0;
		inflight_key_t k = key(names[i], 4, 1, false, 3); /* one shard: same hash */
		int ret = inflight_claim(r, &k, 0, &refs[i]);
		CHECK_EQ_INT(ret, i < PER ? INFLIGHT_OWNER : INFLIGHT_FULL);
	}
	inflight_done(r, refs[0]);
	inflight_key_t k = key(names[PER], 4, 1, false, 3);
	CHECK_EQ_INT(inflight_claim(r, &k, 0, &refs[PER]), INFLIGHT_OWNER);
	CHECK_EQ_INT(inflight_wake_fd(r, 3), -1);
	inflight_set_wake_fd(r, 3, 42);
	CHECK_EQ_INT(inflight_wake_fd(r, 3), 42);
	inflight_free(r);
}

int main(void)
{
	test_claim_join_done();
	test_full();
	return check_done();
}
