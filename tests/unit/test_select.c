/* Answer selection: rendezvous stability and spread, health, fail-open. */
#include <stdint.h>
#include <string.h>

#include "engine/select.h"
#include "store/store.h"
#include "tests/unit/check.h"

#define NCLIENTS 10000

static uint8_t addrs[8][4];

static void make_addrs(select_addr_t *cand, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		addrs[i][0] = 10;
		addrs[i][1] = 0;
		addrs[i][2] = 0;
		addrs[i][3] = (uint8_t)(i + 1);
		cand[i].addr = addrs[i];
		cand[i].len = 4;
		cand[i].down = false;
	}
}

static void client_addr(unsigned i, uint8_t out[4])
{
	out[0] = 192;
	out[1] = 168;
	out[2] = (uint8_t)(i >> 8);
	out[3] = (uint8_t)i;
}

/* The address (not the index) a client is given under hone-one. */
static const uint8_t *hone(const select_addr_t *cand, size_t n, unsigned client)
{
	uint8_t c[4];
	uint16_t order[SELECT_MAX];

	client_addr(client, c);
	size_t k = select_answer(STORE_MODE_HONE_ONE, cand, n, c, 4, 12345, order);
	return k == 1 ? cand[order[0]].addr : NULL;
}

static void test_spread(void)
{
	select_addr_t cand[4];
	unsigned hits[4] = {0};

	make_addrs(cand, 4);
	for (unsigned i = 0; i < NCLIENTS; i++) {
		const uint8_t *a = hone(cand, 4, i);
		CHECK(a != NULL);
		if (a != NULL)
			hits[a[3] - 1]++;
	}
	for (int i = 0; i < 4; i++) {
		CHECK(hits[i] >= 2250 && hits[i] <= 2750);
		if (hits[i] < 2250 || hits[i] > 2750)
			fprintf(stderr, "address %d got %u of %d clients\n", i, hits[i], NCLIENTS);
	}
}

static void test_add_unrelated(void)
{
	select_addr_t cand[5];
	unsigned moved = 0, wrong = 0;

	make_addrs(cand, 5);
	for (unsigned i = 0; i < NCLIENTS; i++) {
		const uint8_t *before = hone(cand, 4, i), *after = hone(cand, 5, i);
		if (before == after)
			continue;
		moved++;
		if (after != addrs[4])
			wrong++;
	}
	CHECK_EQ_INT(wrong, 0);
	/* About a fifth should move to the new address: rendezvous, not modulo. */
	CHECK(moved > NCLIENTS / 5 - NCLIENTS / 20 && moved < NCLIENTS / 5 + NCLIENTS / 20);
}

static void test_down_moves_only_its_clients(void)
{
	select_addr_t cand[4];
	unsigned wrong = 0, moved = 0;

	make_addrs(cand, 4);
	const uint8_t *before[NCLIENTS];
	for (unsigned i = 0; i < NCLIENTS; i++)
		before[i] = hone(cand, 4, i);
	cand[2].down = true;
	for (unsigned i = 0; i < NCLIENTS; i++) {
		const uint8_t *after = hone(cand, 4, i);
		CHECK(after != addrs[2]);
		if (before[i] != addrs[2] && after != before[i])
			wrong++;
		moved += before[i] == addrs[2];
	}
	CHECK_EQ_INT(wrong, 0);
	CHECK(moved > 0);
	/* Back UP: every client returns to its original address. */
	cand[2].down = false;
	unsigned back = 0;
	for (unsigned i = 0; i < NCLIENTS; i++)
		back += hone(cand, 4, i) == before[i];
	CHECK_EQ_INT(back, NCLIENTS);
}

static void test_fail_open(void)
{
	select_addr_t cand[3];
	uint16_t order[SELECT_MAX];
	uint8_t c[4] = {1, 2, 3, 4};

	make_addrs(cand, 3);
	for (int i = 0; i < 3; i++)
		cand[i].down = true;
	size_t k = select_answer(STORE_MODE_ALL, cand, 3, c, 4, 7, order);
	CHECK_EQ_INT(k, 3);
	unsigned seen = 0;
	for (size_t i = 0; i < k; i++)
		seen |= 1u << order[i];
	CHECK_EQ_INT(seen, 7);
	CHECK_EQ_INT(select_answer(STORE_MODE_HONE_ONE, cand, 3, c, 4, 7, order), 1);
	CHECK(order[0] < 3);
	CHECK_EQ_INT(select_answer(STORE_MODE_RANDOM_ONE, cand, 3, c, 4, 7, order), 1);
	CHECK(order[0] < 3);
	CHECK_EQ_INT(select_answer(STORE_MODE_ALL, cand, 0, c, 4, 7, order), 0);
}

static void test_random_one_healthy(void)
{
	select_addr_t cand[4];
	uint16_t order[SELECT_MAX];
	unsigned hits[4] = {0};

	make_addrs(cand, 4);
	cand[0].down = cand[3].down = true;
	for (uint64_t r = 0; r < 1000; r++) {
		CHECK_EQ_INT(select_answer(STORE_MODE_RANDOM_ONE, cand, 4, NULL, 0,
					   r * 0x9e3779b97f4a7c15ULL, order),
			     1);
		hits[order[0]]++;
	}
	CHECK_EQ_INT(hits[0], 0);
	CHECK_EQ_INT(hits[3], 0);
	CHECK(hits[1] > 300 && hits[2] > 300);
}

static void test_all_rotation(void)
{
	select_addr_t cand[4];
	uint16_t order[SELECT_MAX];
	unsigned first[4] = {0};

	make_addrs(cand, 4);
	cand[1].down = true;
	for (uint64_t r = 0; r < 300; r++) {
		size_t k = select_answer(STORE_MODE_ALL, cand, 4, NULL, 0, r, order);
		CHECK_EQ_INT(k, 3);
		/* Rotation keeps the cyclic order of the healthy ones: 0, 2, 3. */
		static const uint16_t cyc[3] = {0, 2, 3};
		size_t s = 0;
		while (s < 3 && cyc[s] != order[0])
			s++;
		CHECK(s < 3);
		for (size_t i = 0; i < k && s < 3; i++)
			CHECK_EQ_INT(order[i], cyc[(s + i) % 3]);
		first[order[0]]++;
	}
	CHECK_EQ_INT(first[1], 0);
	CHECK(first[0] == 100 && first[2] == 100 && first[3] == 100);
}

static void test_weight_fixed(void)
{
	uint8_t c[4] = {192, 168, 1, 1}, a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};

	uint8_t c2[4], a2[4];

	/* Deterministic (a function of the bytes, not of where they are) and
	 * sensitive to both inputs. */
	memcpy(c2, c, sizeof(c2));
	memcpy(a2, a, sizeof(a2));
	CHECK(select_weight(c, 4, a, 4) == select_weight(c2, 4, a2, 4));
	CHECK(select_weight(c, 4, a, 4) != select_weight(c, 4, b, 4));
	CHECK(select_weight(c, 4, a, 4) != select_weight(a, 4, c, 4));
	CHECK(select_weight(c, 3, a, 4) != select_weight(c, 4, a, 3));
	/* Golden value: changing the hash would move every hone-one client on upgrade
	 * and split a fleet of mixed versions, so a change must be deliberate. */
	CHECK(select_weight(c, 4, a, 4) == 0xc3da74714ddb5033ULL);
}

int main(void)
{
	test_spread();
	test_add_unrelated();
	test_down_moves_only_its_clients();
	test_fail_open();
	test_random_one_healthy();
	test_all_rotation();
	test_weight_fixed();
	return check_done();
}
