/* Unit tests of server/fairshare: the per-network counts behind the forwarder's fair share. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "engine/fairshare.h"

static conf_addr_t addr(const char *ip)
{
	conf_addr_t a;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&a.sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a.sa;

	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		a.len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		a.len = sizeof(*v6);
	}
	return a;
}

static uint64_t key(const char *ip)
{
	conf_addr_t a = addr(ip);
	return fairshare_key(&a);
}

static void test_keys(void)
{
	conf_addr_t none = {.len = 0};

	CHECK(key("192.0.2.1") != 0);
	CHECK_EQ_INT(key("192.0.2.1"), key("192.0.2.254"));
	CHECK(key("192.0.2.1") != key("192.0.3.1"));
	CHECK_EQ_INT(key("::ffff:192.0.2.7"), key("192.0.2.1"));
	CHECK_EQ_INT(key("2001:db8:1:2300::1"), key("2001:db8:1:23ff:ffff:ffff:ffff:ffff"));
	CHECK(key("2001:db8:1:2300::1") != key("2001:db8:1:2400::1"));
	/* 0.0.0.0/24 and ::/56 are networks too, not "no address". */
	CHECK(key("0.0.0.1") != 0 && key("::1") != 0 && key("0.0.0.1") != key("::1"));
	CHECK_EQ_INT(fairshare_key(&none), 0);
}

static void test_caps(void)
{
	fairshare_t *s = NULL;
	uint64_t k = key("198.51.100.1");

	CHECK_EQ_INT(fairshare_new(&s, 0, 1, 1), ERR_INVAL);
	CHECK(s == NULL);
	CHECK_EQ_INT(fairshare_new(&s, 2, 3, 1), 0);
	CHECK(fairshare_admit(s, k, true));
	fairshare_take(s, k, 1, 1);
	fairshare_take(s, k, 1, 1);
	CHECK(!fairshare_admit(s, k, true)); /* 2 questions */
	CHECK(fairshare_admit(s, k, false)); /* a third waiter */
	fairshare_take(s, k, 0, 1);
	CHECK(!fairshare_admit(s, k, false));
	CHECK(fairshare_admit(s, 0, true)); /* no address: never counted */
	fairshare_take(s, 0, 1, 1);
	CHECK_EQ_INT(fairshare_count(s), 1);
	fairshare_put(s, k, 1, 2);
	CHECK(fairshare_admit(s, k, true));
	fairshare_put(s, k, 1, 1);
	CHECK_EQ_INT(fairshare_count(s), 0);
	fairshare_free(s);
	fairshare_free(NULL);
}

/*
 * Random takes and puts over 6,000 networks against a plain array: deleting
 * from the middle of probe runs must never lose or duplicate an entry.
 */
static void test_against_model(void)
{
	enum { NKEYS = 6000, OPS = 400000 };
	static uint32_t nq[NKEYS], nw[NKEYS];
	fairshare_t *s = NULL;
	uint64_t rng = 88172645463325252ull;
	unsigned live = 0, wrong = 0, total_w = 0;

	CHECK_EQ_INT(fairshare_new(&s, 3, 5, 7), 0);
	for (int op = 0; op < OPS; op++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		uint32_t i = (uint32_t)(rng % NKEYS);
		uint64_t k =
		    (1ull << 62) | ((uint64_t)i << 8); /* /56 keys, as fairshare_key makes */
		bool q = (rng >> 32) & 1;
		bool admit = nw[i] < 5 && (!q || nq[i] < 3);

		wrong += fairshare_admit(s, k, q) != admit;
		/* Take while the total stays under the forwarder's 8,192 waiters, else put. */
		if (admit && total_w < 8000 && ((rng >> 40) & 3) != 0) {
			live += nq[i] == 0 && nw[i] == 0;
			fairshare_take(s, k, q, 1);
			nq[i] += q;
			nw[i]++;
			total_w++;
		} else if (nw[i] > 0) {
			unsigned dq = nq[i] > 0 && (nq[i] >= nw[i] || ((rng >> 44) & 1));
			fairshare_put(s, k, dq, 1);
			nq[i] -= dq;
			nw[i]--;
			total_w--;
			live -= nq[i] == 0 && nw[i] == 0;
		}
		if (op % 1000 == 0)
			wrong += fairshare_count(s) != live;
	}
	CHECK_EQ_INT(wrong, 0);
	CHECK_EQ_INT(fairshare_count(s), live);
	fairshare_free(s);
}

int main(void)
{
	test_keys();
	test_caps();
	test_against_model();
	return check_done();
}
