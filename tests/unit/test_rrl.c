/* Unit tests of server/rrl with a fake clock: rate, burst window, slip, keys, table bounds. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "common/wire.h"
#include "engine/rrl.h"

static const uint8_t A1[4] = {192, 0, 2, 1}, A2[4] = {192, 0, 2, 200}, B1[4] = {192, 0, 3, 1};

/* Count verdicts of n responses at one instant. */
static void burst(rrl_t *r, const uint8_t *a, size_t alen, unsigned kind, uint64_t now, int n,
		  int out[3])
{
	out[0] = out[1] = out[2] = 0;
	for (int i = 0; i < n; i++)
		out[rrl_check(r, a, alen, kind, now)]++;
}

static void test_rate_and_refill(void)
{
	rrl_t *r = NULL;
	int v[3];

	CHECK_EQ_INT(rrl_new(&r, 50, 0, 1, 1), 0);
	burst(r, A1, 4, RRL_KIND_ANSWER, 1000, 200, v);
	CHECK_EQ_INT(v[RRL_PASS], 50); /* the first second's budget */
	CHECK_EQ_INT(v[RRL_DROP], 150);
	CHECK_EQ_INT(v[RRL_SLIP], 0); /* slip 0: all dropped */
	/* 100 ms later: 5 more tokens */
	burst(r, A1, 4, RRL_KIND_ANSWER, 1100, 20, v);
	CHECK_EQ_INT(v[RRL_PASS], 5);
	/* a long pause refills only up to rate * window */
	burst(r, A1, 4, RRL_KIND_ANSWER, 100000, 200, v);
	CHECK_EQ_INT(v[RRL_PASS], 50);
	/* steady 50/s over 10 s passes whole */
	int pass = 0;
	for (uint64_t t = 100020; t < 110020; t += 20)
		pass += rrl_check(r, A1, 4, RRL_KIND_ANSWER, t) == RRL_PASS;
	CHECK(pass >= 495);
	rrl_free(r);
}

static void test_window(void)
{
	rrl_t *r = NULL;
	int v[3];

	CHECK_EQ_INT(rrl_new(&r, 10, 0, 5, 1), 0);
	burst(r, A1, 4, RRL_KIND_ANSWER, 1, 100, v);
	CHECK_EQ_INT(v[RRL_PASS], 50);
	rrl_free(r);
}

static void test_slip(void)
{
	rrl_t *r = NULL;
	int v[3];

	CHECK_EQ_INT(rrl_new(&r, 10, 2, 1, 1), 0);
	burst(r, A1, 4, RRL_KIND_ANSWER, 1, 110, v);
	CHECK_EQ_INT(v[RRL_PASS], 10);
	CHECK_EQ_INT(v[RRL_SLIP], 50);
	CHECK_EQ_INT(v[RRL_DROP], 50);
	rrl_free(r);
	CHECK_EQ_INT(rrl_new(&r, 10, 1, 1, 1), 0);
	burst(r, A1, 4, RRL_KIND_ANSWER, 1, 30, v);
	CHECK_EQ_INT(v[RRL_SLIP], 20);
	/* reconfigured: a larger budget refills the same entry */
	CHECK_EQ_INT(rrl_configure(r, 100, 0, 1), 0);
	CHECK_EQ_INT(rrl_configure(r, 0, 0, 1), ERR_INVAL);
	burst(r, A1, 4, RRL_KIND_ANSWER, 1001, 200, v);
	CHECK_EQ_INT(v[RRL_PASS], 100);
	CHECK_EQ_INT(v[RRL_DROP], 100);
	rrl_free(r);
}

static void test_keys(void)
{
	rrl_t *r = NULL;
	int v[3];
	uint8_t v6a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1}, v6b[16], v6c[16];

	CHECK_EQ_INT(rrl_new(&r, 5, 0, 1, 7), 0);
	burst(r, A1, 4, RRL_KIND_ANSWER, 1, 10, v);
	CHECK_EQ_INT(v[RRL_PASS], 5);
	/* same /24: same bucket, already empty */
	burst(r, A2, 4, RRL_KIND_ANSWER, 1, 10, v);
	CHECK_EQ_INT(v[RRL_PASS], 0);
	/* another /24, and another kind: their own buckets */
	burst(r, B1, 4, RRL_KIND_ANSWER, 1, 10, v);
	CHECK_EQ_INT(v[RRL_PASS], 5);
	burst(r, A1, 4, RRL_KIND_NXDOMAIN, 1, 10, v);
	CHECK_EQ_INT(v[RRL_PASS], 5);
	/* IPv6: the /56 is the key */
	memcpy(v6b, v6a, 16);
	v6b[15] = 9;
	v6b[7] = 0xff;
	memcpy(v6c, v6a, 16);
	v6c[6] = 1;
	burst(r, v6a, 16, RRL_KIND_ANSWER, 1, 10, v);
	CHECK_EQ_INT(v[RRL_PASS], 5);
	burst(r, v6b, 16, RRL_KIND_ANSWER, 1, 10, v);
	CHECK_EQ_INT(v[RRL_PASS], 0);
	burst(r, v6c, 16, RRL_KIND_ANSWER, 1, 10, v);
	CHECK_EQ_INT(v[RRL_PASS], 5);
	rrl_free(r);
}

/* Far more networks than entries: no growth, and the newest keys still get their budget. */
static void test_table_pressure(void)
{
	rrl_t *r = NULL;
	uint8_t a[4] = {10, 0, 0, 1};
	int pass = 0;

	CHECK_EQ_INT(rrl_new(&r, 1, 0, 1, 3), 0);
	for (uint32_t i = 0; i < 4 * RRL_TABLE_SIZE; i++) {
		a[0] = (uint8_t)(10 + (i >> 16));
		a[1] = (uint8_t)(i >> 8);
		a[2] = (uint8_t)i;
		pass += rrl_check(r, a, 4, RRL_KIND_ANSWER, 1000 + i / 1000) == RRL_PASS;
	}
	CHECK_EQ_INT(pass, 4 * RRL_TABLE_SIZE);
	rrl_free(r);
	rrl_free(NULL);
	CHECK_EQ_INT(rrl_new(&r, 0, 2, 1, 1), ERR_INVAL);
	CHECK_EQ_INT(rrl_new(&r, 1, 2, 0, 1), ERR_INVAL);
}

static void test_kind_and_slip_form(void)
{
	/* id, flags QR|AA|RD, qd 1, an 1, ns 0, ar 1, "a.b." A IN, then 16 bytes of records */
	uint8_t m[64] = {0x12, 0x34, 0x85, 0x00, 0,   1, 0, 1, 0, 0, 0,
			 1,    1,    'a',  1,	 'b', 0, 0, 1, 0, 1};
	size_t len = 21 + 16;

	CHECK_EQ_INT(rrl_kind(m, len), RRL_KIND_ANSWER);
	m[7] = 0;
	CHECK_EQ_INT(rrl_kind(m, len), RRL_KIND_NODATA);
	m[3] = WIRE_RCODE_NXDOMAIN;
	CHECK_EQ_INT(rrl_kind(m, len), RRL_KIND_NXDOMAIN);
	m[3] = WIRE_RCODE_REFUSED;
	CHECK_EQ_INT(rrl_kind(m, len), RRL_KIND_ERROR);
	CHECK_EQ_INT(rrl_kind(m, 5), RRL_KIND_ERROR);
	m[3] = 0;
	m[7] = 1;
	CHECK_EQ_INT(rrl_slip(m, len), 21);
	CHECK_EQ_INT(m[2], 0x87); /* TC added, the rest kept */
	CHECK_EQ_INT(wire_read_u16(m + 4), 1);
	CHECK_EQ_INT(wire_read_u16(m + 6), 0);
	CHECK_EQ_INT(wire_read_u16(m + 10), 0);
	CHECK_EQ_INT(rrl_slip(m, 15), 0); /* question cut short */
	CHECK_EQ_INT(rrl_slip(m, 11), 0);
	m[5] = 2;
	CHECK_EQ_INT(rrl_slip(m, len), 0);
	m[5] = 0;
	CHECK_EQ_INT(rrl_slip(m, len), 12);
}

int main(void)
{
	test_rate_and_refill();
	test_window();
	test_slip();
	test_keys();
	test_table_pressure();
	test_kind_and_slip_form();
	return check_done();
}
