/* Unit tests of server/csprng: the generator of upstream query IDs (issue 10, item 10). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/csprng.h"

/* RFC 8439 §2.3.2: proves the block function is ChaCha20, not something like it. */
static void test_chacha20_vector(void)
{
	static const uint8_t want[64] = {
	    0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15, 0x50, 0x0f, 0xdd, 0x1f, 0xa3,
	    0x20, 0x71, 0xc4, 0xc7, 0xd1, 0xf4, 0xc7, 0x33, 0xc0, 0x68, 0x03, 0x04, 0x22,
	    0xaa, 0x9a, 0xc3, 0xd4, 0x6c, 0x4e, 0xd2, 0x82, 0x64, 0x46, 0x07, 0x9f, 0xaa,
	    0x09, 0x14, 0xc2, 0xd7, 0x05, 0xd9, 0x8b, 0x02, 0xa2, 0xb5, 0x12, 0x9c, 0xd1,
	    0xde, 0x16, 0x4e, 0xb9, 0xcb, 0xd0, 0x83, 0xe8, 0xa2, 0x50, 0x3c, 0x4e};
	uint32_t key[8];
	const uint32_t nonce[3] = {0x09000000, 0x4a000000, 0};
	uint8_t out[64];

	for (uint32_t i = 0; i < 8; i++)
		key[i] = (4 * i) | (4 * i + 1) << 8 | (4 * i + 2) << 16 | (4 * i + 3) << 24;
	csprng_chacha20_block(key, 1, nonce, out);
	CHECK_MEM(out, want, sizeof(want));
}

/* Two generators never share a stream: the key is the kernel's, not a seed we pass. */
static void test_independent(void)
{
	static csprng_t a, b;
	uint16_t x[64], y[64];

	CHECK_EQ_INT(csprng_init(&a), 0);
	CHECK_EQ_INT(csprng_init(&b), 0);
	for (int i = 0; i < 64; i++) {
		x[i] = csprng_u16(&a);
		y[i] = csprng_u16(&b);
	}
	CHECK(memcmp(x, y, sizeof(x)) != 0);
	csprng_deinit(&a);
	csprng_deinit(&b);
}

/* Output keeps coming across refills and reseeds; a refill erases the key it used. */
static void test_refill_and_reseed(void)
{
	static csprng_t r;
	uint32_t key0[8];
	size_t per = sizeof(r.buf) - 32; /* bytes of output per refill */
	uint64_t n = (uint64_t)CSPRNG_RESEED * 2 + 3;
	uint8_t b[64];

	CHECK_EQ_INT(csprng_init(&r), 0);
	memcpy(key0, r.key, sizeof(key0));
	(void)csprng_u16(&r);
	CHECK_EQ_INT(r.refills, 1);
	CHECK(memcmp(key0, r.key, sizeof(key0)) != 0);
	for (uint64_t i = 0; i < n * per / sizeof(b); i++)
		csprng_bytes(&r, b, sizeof(b));
	CHECK(r.refills >= n);
	CHECK(r.reseeds >= 2); /* the kernel's pool is up on any machine that runs tests */
	csprng_deinit(&r);
}

/*
 * Statistical sanity (not a proof): every bit used and fair, byte values spread
 * evenly, and repeats among a few consecutive IDs no more often than chance.
 */
static void test_statistics(void)
{
	enum { N = 1 << 18, WIN = 16 };
	static csprng_t r;
	static uint32_t hi[256], lo[256];
	uint32_t bits[16] = {0}, orv = 0, andv = 0xFFFF, repeats = 0;
	uint16_t win[WIN];
	double chi_hi = 0, chi_lo = 0, e = N / 256.0;

	CHECK_EQ_INT(csprng_init(&r), 0);
	for (uint32_t i = 0; i < N; i++) {
		uint16_t v = csprng_u16(&r);
		orv |= v;
		andv &= v;
		for (int b = 0; b < 16; b++)
			bits[b] += (v >> b) & 1;
		hi[v >> 8]++;
		lo[v & 0xFF]++;
		for (uint32_t j = 0; j < WIN && j < i; j++)
			repeats += win[j] == v;
		win[i % WIN] = v;
	}
	CHECK_EQ_INT(orv, 0xFFFF);
	CHECK_EQ_INT(andv, 0);
	/* Each bit: N/2 ± 6 sigma (sigma = sqrt(N)/2 = 256). */
	for (int b = 0; b < 16; b++)
		CHECK(bits[b] > N / 2 - 1536 && bits[b] < N / 2 + 1536);
	for (int i = 0; i < 256; i++) {
		chi_hi += (hi[i] - e) * (hi[i] - e) / e;
		chi_lo += (lo[i] - e) * (lo[i] - e) / e;
	}
	/* 255 degrees of freedom: mean 255, sd 22.6; 400 is past 6 sd. */
	CHECK(chi_hi < 400 && chi_lo < 400);
	/* Pairs within a window of 16: N * 16 / 65536 = 64 expected (Poisson, sd 8). */
	CHECK(repeats < 64 + 64);
	printf("csprng: chi2 hi %.1f lo %.1f, repeats in a window of %d: %u (64 expected)\n",
	       chi_hi, chi_lo, WIN, repeats);
	csprng_deinit(&r);
}

int main(void)
{
	test_chacha20_vector();
	test_independent();
	test_refill_and_reseed();
	test_statistics();
	return check_done();
}
