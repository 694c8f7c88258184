/*
 * Unit tests for common/wire: reader/writer bounds, name decompression
 * (valid and hostile pointers), limits, text <-> wire, store keys, compare.
 */
#include "common/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/check.h"

/* A byte-string literal and its length (the literal's implicit NUL excluded). */
#define BS(s) (const uint8_t *)(s), (sizeof(s) - 1)

typedef struct {
	const uint8_t *p;
	size_t len;
} bytes_t;
#define B(s)                                                                                       \
	{                                                                                          \
		(const uint8_t *)(s), sizeof(s) - 1                                                \
	}

/* Build a name of `nlabels` labels of `llen` octets each ('a'..), plus root. */
static size_t make_name(uint8_t *out, size_t cap, unsigned nlabels, unsigned llen)
{
	size_t n = 0;

	for (unsigned i = 0; i < nlabels; i++) {
		if (n + 1 + llen + 1 > cap)
			return 0;
		out[n++] = (uint8_t)llen;
		memset(out + n, 'a' + (int)(i % 26), llen);
		n += llen;
	}
	out[n++] = 0;
	return n;
}

/* ---- reader ---------------------------------------------------------- */

enum { OP_U8, OP_U16, OP_U32, OP_BYTES, OP_SKIP };

static void test_reader_table(void)
{
	static const uint8_t data[] = {0x12, 0x34, 0x56, 0x78, 0x9a};
	static const struct {
		int op;
		size_t len, start, n; /* reader length, start pos, n for bytes/skip */
		int ret;
		uint32_t val;
	} cases[] = {
	    {OP_U8, 0, 0, 0, ERR_TRUNC, 0},
	    {OP_U8, 1, 0, 0, 0, 0x12},
	    {OP_U8, 5, 4, 0, 0, 0x9a},
	    {OP_U8, 5, 5, 0, ERR_TRUNC, 0},
	    {OP_U16, 1, 0, 0, ERR_TRUNC, 0},
	    {OP_U16, 2, 0, 0, 0, 0x1234},
	    {OP_U16, 5, 3, 0, 0, 0x789a},
	    {OP_U16, 5, 4, 0, ERR_TRUNC, 0},
	    {OP_U32, 3, 0, 0, ERR_TRUNC, 0},
	    {OP_U32, 4, 0, 0, 0, 0x12345678},
	    {OP_U32, 5, 1, 0, 0, 0x3456789a},
	    {OP_U32, 5, 2, 0, ERR_TRUNC, 0},
	    {OP_BYTES, 5, 0, 5, 0, 0},
	    {OP_BYTES, 5, 0, 6, ERR_TRUNC, 0},
	    {OP_BYTES, 5, 5, 0, 0, 0},
	    {OP_BYTES, 5, 2, 3, 0, 0},
	    {OP_BYTES, 5, 2, 4, ERR_TRUNC, 0},
	    {OP_BYTES, 5, 1, (size_t)-1, ERR_TRUNC, 0},
	    {OP_SKIP, 5, 0, 5, 0, 0},
	    {OP_SKIP, 5, 0, 6, ERR_TRUNC, 0},
	    {OP_SKIP, 5, 4, 1, 0, 0},
	    {OP_SKIP, 5, 4, 2, ERR_TRUNC, 0},
	    {OP_SKIP, 5, 1, (size_t)-1, ERR_TRUNC, 0},
	};
	static const size_t width[] = {1, 2, 4, 0, 0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wire_reader_t r;
		uint8_t u8 = 0xEE, buf[8];
		uint16_t u16 = 0xEEEE;
		uint32_t u32 = 0xEEEEEEEE, got = 0;
		int ret = -1;
		size_t adv = cases[i].op >= OP_BYTES ? cases[i].n : width[cases[i].op];

		memset(buf, 0xEE, sizeof(buf));
		wire_reader_init(&r, data, cases[i].len);
		r.pos = cases[i].start;
		switch (cases[i].op) {
		case OP_U8:
			ret = wire_get_u8(&r, &u8);
			got = ret ? (u8 == 0xEE ? 0 : 1) : u8;
			break;
		case OP_U16:
			ret = wire_get_u16(&r, &u16);
			got = ret ? (u16 == 0xEEEE ? 0 : 1) : u16;
			break;
		case OP_U32:
			ret = wire_get_u32(&r, &u32);
			got = ret ? (u32 == 0xEEEEEEEE ? 0 : 1) : u32;
			break;
		case OP_BYTES:
			ret = wire_get_bytes(&r, buf, cases[i].n);
			if (ret == 0)
				CHECK_MEM(buf, data + cases[i].start, cases[i].n);
			else
				CHECK(buf[0] == 0xEE); /* out untouched on failure */
			break;
		case OP_SKIP:
			ret = wire_skip(&r, cases[i].n);
			break;
		}
		CHECK_EQ_INT(ret, cases[i].ret);
		CHECK_EQ_INT(got, cases[i].val);
		/* Success advances by exactly the width; failure leaves pos alone. */
		CHECK_EQ_INT(r.pos, cases[i].start + (ret == 0 ? adv : 0));
		CHECK_EQ_INT(wire_remaining(&r), cases[i].len - r.pos);
	}
}

static void test_reader_misc(void)
{
	wire_reader_t r;
	uint8_t b;

	wire_reader_init(&r, NULL, 100);
	CHECK_EQ_INT(wire_remaining(&r), 0);
	CHECK_EQ_INT(wire_get_u8(&r, &b), ERR_TRUNC);

	/* A hand-set pos past the end reads as exhausted, never underflows. */
	wire_reader_init(&r, (const uint8_t *)"ab", 2);
	r.pos = 7;
	CHECK_EQ_INT(wire_remaining(&r), 0);
	CHECK_EQ_INT(wire_get_u8(&r, &b), ERR_TRUNC);
	CHECK_EQ_INT(wire_skip(&r, 0), 0);
}

/* ---- writer ---------------------------------------------------------- */

static void test_writer_table(void)
{
	static const struct {
		int op;
		size_t cap, start, n;
		uint32_t val;
		int ret;
		const char *expect; /* bytes at start.. on success */
	} cases[] = {
	    {OP_U8, 0, 0, 0, 0xAB, ERR_TOOBIG, ""},
	    {OP_U8, 1, 0, 0, 0xAB, 0, "\xAB"},
	    {OP_U8, 4, 4, 0, 0xAB, ERR_TOOBIG, ""},
	    {OP_U16, 1, 0, 0, 0xABCD, ERR_TOOBIG, ""},
	    {OP_U16, 2, 0, 0, 0xABCD, 0, "\xAB\xCD"},
	    {OP_U16, 4, 2, 0, 0xABCD, 0, "\xAB\xCD"},
	    {OP_U16, 4, 3, 0, 0xABCD, ERR_TOOBIG, ""},
	    {OP_U32, 3, 0, 0, 0x01020304, ERR_TOOBIG, ""},
	    {OP_U32, 4, 0, 0, 0x01020304, 0, "\x01\x02\x03\x04"},
	    {OP_U32, 6, 3, 0, 0x01020304, ERR_TOOBIG, ""},
	    {OP_BYTES, 3, 0, 3, 0, 0, "xyz"},
	    {OP_BYTES, 3, 0, 4, 0, ERR_TOOBIG, ""},
	    {OP_BYTES, 3, 3, 0, 0, 0, ""},
	    {OP_BYTES, 3, 1, (size_t)-1, 0, ERR_TOOBIG, ""},
	};
	static const size_t width[] = {1, 2, 4, 0, 0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[16];
		wire_writer_t w;
		int ret = -1;
		size_t adv = cases[i].op == OP_BYTES ? cases[i].n : width[cases[i].op];

		memset(buf, 0xEE, sizeof(buf));
		wire_writer_init(&w, buf, cases[i].cap);
		w.pos = cases[i].start;
		switch (cases[i].op) {
		case OP_U8:
			ret = wire_put_u8(&w, (uint8_t)cases[i].val);
			break;
		case OP_U16:
			ret = wire_put_u16(&w, (uint16_t)cases[i].val);
			break;
		case OP_U32:
			ret = wire_put_u32(&w, cases[i].val);
			break;
		case OP_BYTES:
			ret = wire_put_bytes(&w, "xyzw", cases[i].n);
			break;
		}
		CHECK_EQ_INT(ret, cases[i].ret);
		CHECK_EQ_INT(w.pos, cases[i].start + (ret == 0 ? adv : 0));
		if (ret == 0)
			CHECK_MEM(buf + cases[i].start, cases[i].expect, adv);
		/* Nothing written at or past the end of what succeeded. */
		for (size_t j = w.pos; j < sizeof(buf); j++)
			CHECK(buf[j] == 0xEE);
	}
}

static void test_writer_patch_and_raw(void)
{
	uint8_t buf[8];
	wire_writer_t w;

	memset(buf, 0, sizeof(buf));
	wire_writer_init(&w, buf, sizeof(buf));
	CHECK_EQ_INT(wire_put_u16(&w, 0), 0);
	CHECK_EQ_INT(wire_put_u16(&w, 0x1111), 0);
	wire_patch_u16(&w, 2, 0xBEEF);
	CHECK_MEM(buf, "\x00\x00\xBE\xEF", 4);
	wire_patch_u16(&w, 0, 0x0102);
	CHECK_MEM(buf, "\x01\x02\xBE\xEF", 4);
	CHECK_EQ_INT(w.pos, 4);

	wire_writer_init(&w, NULL, 10);
	CHECK_EQ_INT(wire_put_u8(&w, 1), ERR_TOOBIG);

	wire_write_u16(buf, 0xFEDC);
	CHECK_MEM(buf, "\xFE\xDC", 2);
	CHECK_EQ_INT(wire_read_u16(buf), 0xFEDC);
	wire_write_u32(buf, 0xF1E2D3C4u);
	CHECK_MEM(buf, "\xF1\xE2\xD3\xC4", 4);
	CHECK(wire_read_u32(buf) == 0xF1E2D3C4u);
}

/* ---- wire_get_name --------------------------------------------------- */

/*
 * A 12-byte header, then at 12: www.example.com. (17 bytes, to 29),
 * at 29: mail + pointer to example.com. at 16 (to 36),
 * at 36: ftp + pointer to 29 (two hops: 29 -> 16),
 * at 42: pointer to 12 only (to 44).
 */
static const uint8_t pkt[] = "\0\0\0\0\0\0\0\0\0\0\0\0"
			     "\3www\7Example\3com\0"
			     "\4mail\xC0\x10"
			     "\3ftp\xC0\x1D"
			     "\xC0\x0C";

static void test_get_name_table(void)
{
	static const struct {
		const char *what;
		bytes_t pkt;
		size_t start;
		int ret;
		bytes_t name;
		size_t end;
	} cases[] = {
	    {"plain", {pkt, sizeof(pkt) - 1}, 12, 0, B("\3www\7Example\3com\0"), 29},
	    {"one pointer", {pkt, sizeof(pkt) - 1}, 29, 0, B("\4mail\7Example\3com\0"), 36},
	    {"two hops", {pkt, sizeof(pkt) - 1}, 36, 0, B("\3ftp\4mail\7Example\3com\0"), 42},
	    {"only a pointer", {pkt, sizeof(pkt) - 1}, 42, 0, B("\3www\7Example\3com\0"), 44},
	    {"root", B("\0"), 0, 0, B("\0"), 1},
	    {"root then data", B("\0\1\2"), 0, 0, B("\0"), 1},
	    {"empty", B(""), 0, ERR_TRUNC, B(""), 0},
	    {"start at end", B("\0"), 1, ERR_TRUNC, B(""), 1},
	    {"no root", B("\3www"), 0, ERR_TRUNC, B(""), 0},
	    {"label past end", B("\3ww"), 0, ERR_TRUNC, B(""), 0},
	    {"half pointer", B("\1a\xC0"), 0, ERR_TRUNC, B(""), 0},
	    {"forward pointer", B("\xC0\x02\0"), 0, ERR_MALFORMED, B(""), 0},
	    {"self loop", B("\0\0\xC0\x02"), 2, ERR_MALFORMED, B(""), 2},
	    {"two-pointer loop", B("\xC0\x02\xC0\x00"), 2, ERR_MALFORMED, B(""), 2},
	    {"loop through label", B("\1a\xC0\x00"), 0, ERR_MALFORMED, B(""), 0},
	    {"back into own labels", B("\0\1a\1b\xC0\x03"), 1, ERR_MALFORMED, B(""), 1},
	    {"pointer past end", B("\0\xC0\xFF"), 1, ERR_MALFORMED, B(""), 1},
	    {"pointer far past end", B("\0\xFF\xFF"), 1, ERR_MALFORMED, B(""), 1},
	    {"pointer to truncated", B("\5ab\xC0\x00"), 3, ERR_TRUNC, B(""), 3},
	    {"label type 0x40",
	     B("\x41"
	       "a\0"),
	     0, ERR_MALFORMED, B(""), 0},
	    {"label type 0x80",
	     B("\x81"
	       "a\0"),
	     0, ERR_MALFORMED, B(""), 0},
	    {"case kept", B("\3WwW\0"), 0, 0, B("\3WwW\0"), 5},
	    /* Not a loop, but no encoder points into its own name's label data. */
	    {"pointer into own label", B("\2\0x\xC0\x01"), 0, ERR_MALFORMED, B(""), 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wire_reader_t r;
		uint8_t out[WIRE_NAME_MAX];
		size_t outlen = 999;
		int ret;

		wire_reader_init(&r, cases[i].pkt.p, cases[i].pkt.len);
		r.pos = cases[i].start;
		ret = wire_get_name(&r, out, &outlen);
		if (ret != cases[i].ret)
			fprintf(stderr, "get_name case '%s'\n", cases[i].what);
		CHECK_EQ_INT(ret, cases[i].ret);
		CHECK_EQ_INT(r.pos, cases[i].end);
		if (ret == 0) {
			CHECK_EQ_INT(outlen, cases[i].name.len);
			CHECK(outlen == cases[i].name.len &&
			      memcmp(out, cases[i].name.p, outlen) == 0);
		} else {
			CHECK_EQ_INT(outlen, 999);
		}
	}
}

static void test_get_name_limits(void)
{
	uint8_t p[600], out[WIRE_NAME_MAX];
	size_t n, outlen;
	wire_reader_t r;

	/* 63-octet label is fine, 64 is a 0x40 type octet. */
	n = make_name(p, sizeof(p), 1, 63);
	wire_reader_init(&r, p, n);
	CHECK_EQ_INT(wire_get_name(&r, out, &outlen), 0);
	CHECK_EQ_INT(outlen, 65);
	n = make_name(p, sizeof(p), 1, 64);
	wire_reader_init(&r, p, n);
	CHECK_EQ_INT(wire_get_name(&r, out, &outlen), ERR_MALFORMED);

	/* 4 x 63 + 1 x 1: 4*64 + 2 + 1 = 259 too long; 3 x 63 + 61: exactly 255. */
	n = make_name(p, sizeof(p), 3, 63);
	p[n - 1] = 61;
	memset(p + n, 'z', 61);
	p[n + 61] = 0;
	n += 62;
	CHECK_EQ_INT(n, 255);
	wire_reader_init(&r, p, n);
	CHECK_EQ_INT(wire_get_name(&r, out, &outlen), 0);
	CHECK_EQ_INT(outlen, 255);
	CHECK_EQ_INT(r.pos, 255);
	CHECK_MEM(out, p, 255);
	/* One more octet in the last label: 256. */
	p[3 * 64] = 62;
	memset(p + 3 * 64 + 1, 'z', 62);
	p[3 * 64 + 63] = 0;
	wire_reader_init(&r, p, 256);
	CHECK_EQ_INT(wire_get_name(&r, out, &outlen), ERR_MALFORMED);
	CHECK_EQ_INT(r.pos, 0);

	/*
	 * Too long only after decompression: 192 octets of labels at 0, then at
	 * 200 a 63-octet label + pointer to 0 = 64 + 193 = 257.
	 */
	memset(p, 0, sizeof(p));
	n = make_name(p, sizeof(p), 3, 63); /* 193 bytes at 0 */
	size_t at = 200;
	p[at] = 63;
	memset(p + at + 1, 'q', 63);
	p[at + 64] = 0xC0;
	p[at + 65] = 0;
	wire_reader_init(&r, p, at + 66);
	r.pos = at;
	CHECK_EQ_INT(wire_get_name(&r, out, &outlen), ERR_MALFORMED);
	/* The same with a 61-octet label is exactly 255. */
	p[at] = 61;
	p[at + 62] = 0xC0;
	p[at + 63] = 0;
	wire_reader_init(&r, p, at + 64);
	r.pos = at;
	CHECK_EQ_INT(wire_get_name(&r, out, &outlen), 0);
	CHECK_EQ_INT(outlen, 255);
	CHECK_EQ_INT(r.pos, at + 64);

	/* A long backward chain of pointers to pointers is cut off. */
	p[0] = 0;
	for (size_t i = 1; i + 1 < 400; i += 2) {
		p[i] = (uint8_t)(0xC0 | ((i - 1 > 1 ? i - 2 : 0) >> 8));
		p[i + 1] = (uint8_t)(i - 1 > 1 ? i - 2 : 0);
	}
	wire_reader_init(&r, p, 400);
	r.pos = 1;
	CHECK_EQ_INT(wire_get_name(&r, out, &outlen), 0); /* 1 -> 0: root */
	r.pos = 2 * 100 + 1;
	CHECK_EQ_INT(wire_get_name(&r, out, &outlen), 0); /* 101 hops */
	r.pos = 2 * 150 + 1;
	CHECK_EQ_INT(wire_get_name(&r, out, &outlen), ERR_MALFORMED); /* 151 hops */
}

/* ---- uncompressed name helpers -------------------------------------- */

static void test_name_check(void)
{
	static const struct {
		bytes_t name;
		int ret;
	} cases[] = {
	    {B("\0"), 0},
	    {B("\3www\7example\0"), 0},
	    {B(""), ERR_MALFORMED},
	    {B("\3www"), ERR_MALFORMED},
	    {B("\3ww"), ERR_MALFORMED},
	    {B("\0\0"), ERR_MALFORMED},
	    {B("\3www\0x"), ERR_MALFORMED},
	    {B("\xC0\x00"), ERR_MALFORMED},
	    {B("\x40"
	       "a\0"),
	     ERR_MALFORMED},
	};
	uint8_t p[300];
	size_t n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_EQ_INT(wire_name_check(cases[i].name.p, cases[i].name.len), cases[i].ret);
	n = make_name(p, sizeof(p), 1, 63);
	CHECK_EQ_INT(wire_name_check(p, n), 0);
	n = make_name(p, sizeof(p), 1, 64);
	CHECK_EQ_INT(wire_name_check(p, n), ERR_MALFORMED);
	n = make_name(p, sizeof(p), 127, 1); /* 255 */
	CHECK_EQ_INT(n, 255);
	CHECK_EQ_INT(wire_name_check(p, n), 0);
	n = make_name(p, sizeof(p), 127, 1);
	p[n - 1] = 1; /* a 128th label pushes it to 257 */
	p[n] = 'x';
	p[n + 1] = 0;
	CHECK_EQ_INT(wire_name_check(p, n + 2), ERR_MALFORMED);
	CHECK_EQ_INT(wire_name_check(NULL, 1), ERR_MALFORMED);
}

static void test_name_compare(void)
{
	static const struct {
		bytes_t a, b;
		bool equal, a_under_b;
	} cases[] = {
	    {B("\6skydns\5local\0"), B("\6skydns\5local\0"), true, true},
	    {B("\6SkyDNS\5LOCAL\0"), B("\6skydns\5local\0"), true, true},
	    {B("\3www\6skydns\5local\0"), B("\6skydns\5local\0"), false, true},
	    {B("\3WWW\6SKYDNS\5local\0"), B("\6skydns\5LOCAL\0"), false, true},
	    {B("\7xskydns\5local\0"), B("\6skydns\5local\0"), false, false},
	    {B("\5local\0"), B("\6skydns\5local\0"), false, false},
	    {B("\6skydns\5local\0"), B("\0"), false, true},
	    {B("\0"), B("\0"), true, true},
	    {B("\0"), B("\5local\0"), false, false},
	    {B("\2ab\1c\0"), B("\1b\1c\0"), false, false},
	    /* parent's bytes occur as a suffix, but not on a label boundary */
	    {B("\2\1b\1c\0"), B("\1b\1c\0"), false, false},
	    {B("\1a\1b\1c\0"), B("\1b\1c\0"), false, true},
	    {B("\1a\0"), B("\1b\0"), false, false},
	    {B("\3AZa\0"), B("\3azA\0"), true, true},
	    {B("\1@\0"), B("\1`\0"), false, false}, /* not letters: no case folding */
	    {B("\1[\0"), B("\1{\0"), false, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint8_t *a = cases[i].a.p, *b = cases[i].b.p;
		size_t al = cases[i].a.len, bl = cases[i].b.len;
		CHECK(wire_name_equal(a, al, b, bl) == cases[i].equal);
		CHECK(wire_name_equal(b, bl, a, al) == cases[i].equal);
		CHECK(wire_name_is_subdomain(a, al, b, bl) == cases[i].a_under_b);
		if (!cases[i].equal && cases[i].a_under_b)
			CHECK(!wire_name_is_subdomain(b, bl, a, al));
	}
	/* Broken input must not be walked past its end. */
	CHECK(!wire_name_is_subdomain(BS("\x3f"
					 "ab\1c\0"),
				      BS("\0")));
	CHECK(!wire_name_is_subdomain(BS("\x09"
					 "a\0"),
				      BS("\1b\0")));
}

static void test_name_labels_lower(void)
{
	uint8_t n[] = "\3WwW\7EXAMPLE\3c0M\0";
	uint8_t all[256], want[256];

	CHECK_EQ_INT(wire_name_labels(BS("\0")), 0);
	CHECK_EQ_INT(wire_name_labels(BS("\3www\0")), 1);
	CHECK_EQ_INT(wire_name_labels(n, sizeof(n) - 1), 3);
	CHECK_EQ_INT(wire_name_labels(BS("\3www")), 1); /* bounded by len */
	CHECK_EQ_INT(wire_name_labels(BS("\x50zz")), 0);
	wire_name_lower(n, sizeof(n) - 1);
	CHECK_MEM(n, "\3www\7example\3c0m\0", sizeof(n));
	/* Only A-Z fold: the bytes either side ('@', '[') stay. */
	for (int i = 0; i < 256; i++) {
		all[i] = (uint8_t)i;
		want[i] = (uint8_t)(i >= 'A' && i <= 'Z' ? i + 32 : i);
	}
	wire_name_lower(all, sizeof(all));
	CHECK_MEM(all, want, sizeof(all));
}

/*
 * The word-at-a-time paths (lowering, compare, label copies in wire_get_name and
 * wire_name_to_key) against byte-at-a-time references, on seeded random names of every
 * length whose octets cluster around 'A'..'Z' and the top bit. Each name sits at the very
 * end of its own heap block, so an 8-octet read past it is an ASan report.
 */
static uint8_t ref_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static uint32_t rnd_state = 12345;

static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static uint8_t rnd_octet(void)
{
	static const uint8_t edge[] = {'@',  'A',  'B',	 'Y',  'Z',  '[',  '`',	 'a', 'z', '{',
				       0x7f, 0x80, 0xc0, 0xc1, 0xda, 0xdb, 0xff, '0', '-', 0};
	return rnd(3) ? edge[rnd(sizeof(edge))] : (uint8_t)rnd(256);
}

/* A valid random name of at most `max` octets. */
static size_t rnd_name(uint8_t *out, size_t max)
{
	size_t n = 0;

	while (n + 2 <= max - 1 && rnd(8) != 0) {
		size_t l = 1 + rnd(rnd(4) ? 12 : WIRE_LABEL_MAX);
		if (n + 1 + l + 1 > max)
			l = max - n - 2;
		out[n++] = (uint8_t)l;
		for (size_t i = 0; i < l; i++)
			out[n++] = rnd_octet();
	}
	out[n++] = 0;
	return n;
}

static void test_word_paths(void)
{
	for (int iter = 0; iter < 20000; iter++) {
		uint8_t tmp[WIRE_NAME_MAX], key[WIRE_KEY_MAX], want[WIRE_KEY_MAX],
		    out[WIRE_NAME_MAX];
		size_t len = rnd_name(tmp, iter % 3 ? 1 + rnd(WIRE_NAME_MAX) : WIRE_NAME_MAX), klen,
		       outlen, pos = 0, k = len - 1;
		uint8_t *name = malloc(len), *other = malloc(len);

		memcpy(name, tmp, len);
		/* The key by hand: labels reversed, lowered, no root octet. */
		while (name[pos] != 0) {
			size_t l = name[pos];
			k -= 1 + l;
			want[k] = (uint8_t)l;
			for (size_t i = 1; i <= l; i++)
				want[k + i] = ref_lower(name[pos + i]);
			pos += 1 + l;
		}
		CHECK(wire_name_to_key(name, len, key, &klen) == 0);
		CHECK(klen == len - 1 && memcmp(key, want, klen) == 0);

		/* The same name read out of a message that ends with it. */
		wire_reader_t r;
		wire_reader_init(&r, name, len);
		CHECK(wire_get_name(&r, out, &outlen) == 0);
		CHECK(outlen == len && memcmp(out, name, len) == 0 && r.pos == len);

		/* Compare: a copy with random letters' case flipped is equal; one octet changed
		 * to something no fold makes equal is not. */
		memcpy(other, name, len);
		for (size_t i = 0; i < len; i++)
			if (ref_lower(other[i]) != other[i] || (other[i] >= 'a' && other[i] <= 'z'))
				if (rnd(2))
					other[i] ^= 0x20;
		CHECK(wire_name_equal(name, len, other, len));
		CHECK(wire_name_is_subdomain(name, len, other, len));
		if (len > 1) {
			size_t at = 1 + rnd((uint32_t)(len - 1));
			if (name[at - 1] != 0 && at < len - 1) {
				other[at] =
				    (uint8_t)(ref_lower(name[at]) == ref_lower('q') ? '7' : 'q');
				if (ref_lower(other[at]) != ref_lower(name[at]))
					CHECK(!wire_name_equal(name, len, other, len));
			}
		}

		/* Lowering in place, at every length up to the block's end. */
		memcpy(other, name, len);
		wire_name_lower(other, len);
		for (size_t i = 0; i < len; i++)
			CHECK(other[i] == ref_lower(name[i]));
		free(name);
		free(other);
	}
}

/* ---- keys ------------------------------------------------------------ */

static void test_key_table(void)
{
	static const struct {
		bytes_t name;
		int ret;
		bytes_t key;
	} cases[] = {
	    {B("\0"), 0, B("")},
	    {B("\5local\0"), 0, B("\5local")},
	    {B("\3www\7example\0"), 0, B("\7example\3www")},
	    {B("\5cctv2\6SkyDNS\5LOCAL\0"), 0, B("\5local\6skydns\5cctv2")},
	    {B("\6ABCXYZ\6@[`{~\x7F\0"), 0, B("\6@[`{~\x7F\6abcxyz")},
	    {B("\3www\7example"), ERR_MALFORMED, B("")},
	    {B(""), ERR_MALFORMED, B("")},
	    {B("\3www\0\0"), ERR_MALFORMED, B("")},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t key[WIRE_KEY_MAX], back[WIRE_NAME_MAX], low[WIRE_NAME_MAX];
		size_t klen = 999, blen = 999;
		int ret = wire_name_to_key(cases[i].name.p, cases[i].name.len, key, &klen);

		CHECK_EQ_INT(ret, cases[i].ret);
		if (ret < 0) {
			CHECK_EQ_INT(klen, 999);
			continue;
		}
		CHECK_EQ_INT(klen, cases[i].key.len);
		CHECK(klen == cases[i].key.len && memcmp(key, cases[i].key.p, klen) == 0);
		/* Inverse gives back the lowercased name. */
		CHECK_EQ_INT(wire_key_to_name(key, klen, back, &blen), 0);
		memcpy(low, cases[i].name.p, cases[i].name.len);
		wire_name_lower(low, cases[i].name.len);
		CHECK_EQ_INT(blen, cases[i].name.len);
		CHECK(blen == cases[i].name.len && memcmp(back, low, blen) == 0);
	}
}

static void test_key_to_name_bad(void)
{
	static const bytes_t bad[] = {
	    B("\0"),	    /* zero-length label */
	    B("\5loc"),	    /* label overruns */
	    B("\5local\0"), /* root inside the key */
	    B("\x40"	    /* label type bits */
	      "abc"),
	};
	uint8_t name[WIRE_NAME_MAX], key[300];
	size_t len = 999, n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(wire_key_to_name(bad[i].p, bad[i].len, name, &len), ERR_MALFORMED);
		CHECK_EQ_INT(len, 999);
	}
	/* 254-byte key (255-byte name) is the largest. */
	n = make_name(key, sizeof(key), 127, 1) - 1;
	CHECK_EQ_INT(n, 254);
	CHECK_EQ_INT(wire_key_to_name(key, n, name, &len), 0);
	CHECK_EQ_INT(len, 255);
	key[n] = 'x';
	key[n - 2] = 2; /* widen the last label: 255-byte key */
	CHECK_EQ_INT(wire_key_to_name(key, n + 1, name, &len), ERR_MALFORMED);
	/* Keys written by hand (or by an older version) still come back lowercase. */
	CHECK_EQ_INT(wire_key_to_name(BS("\5LOCAL\3WwW"), name, &len), 0);
	CHECK(len == 11 && memcmp(name, "\3www\5local\0", 11) == 0);
	/* Empty key is the root. */
	CHECK_EQ_INT(wire_key_to_name(key, 0, name, &len), 0);
	CHECK_EQ_INT(len, 1);
	CHECK_EQ_INT(name[0], 0);
}

/* LMDB's default order: memcmp over the shorter length, then shorter first. */
static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static void test_key_order(void)
{
	static const char *const names[] = {
	    ".",
	    "local",
	    "skydns.local",
	    "xskydns.local",
	    "a.skydns.local",
	    "cctv2.skydns.local",
	    "4af19cb2.cctv2.skydns.local",
	    "CCTV2.SkyDNS.Local",
	    "b.local",
	    "\\000.local",
	    "\\255.local",
	    "z.a.b.c.d.e",
	    "a.b.c.d.e",
	    "e",
	};
	enum { N = sizeof(names) / sizeof(names[0]) };
	uint8_t keys[N][WIRE_KEY_MAX + 1], wire[N][WIRE_NAME_MAX];
	size_t klen[N], wlen[N];

	for (size_t i = 0; i < N; i++) {
		CHECK_EQ_INT(wire_name_from_text(names[i], wire[i], &wlen[i]), 0);
		CHECK_EQ_INT(wire_name_to_key(wire[i], wlen[i], keys[i], &klen[i]), 0);
	}
	for (size_t i = 0; i < N; i++) {
		for (size_t j = 0; j < N; j++) {
			bool under = wire_name_is_subdomain(wire[j], wlen[j], wire[i], wlen[i]);
			bool prefix = klen[i] <= klen[j] && memcmp(keys[i], keys[j], klen[i]) == 0;
			/* key(parent) is a byte prefix of key(child), and only then. */
			CHECK(under == prefix);
			if (!under || wire_name_equal(wire[i], wlen[i], wire[j], wlen[j]))
				continue;
			/* key(i)||0x00 sorts after key(i), before every descendant key. */
			uint8_t k0[WIRE_KEY_MAX + 1];
			memcpy(k0, keys[i], klen[i]);
			k0[klen[i]] = 0;
			CHECK(key_cmp(keys[i], klen[i], k0, klen[i] + 1) < 0);
			CHECK(key_cmp(k0, klen[i] + 1, keys[j], klen[j]) < 0);
		}
	}
}

/* ---- text ------------------------------------------------------------ */

static void test_from_text_table(void)
{
	static const struct {
		const char *text;
		int ret;
		bytes_t wire;
	} cases[] = {
	    {"", 0, B("\0")},
	    {".", 0, B("\0")},
	    {"www.Example.com", 0, B("\3www\7Example\3com\0")},
	    {"www.Example.com.", 0, B("\3www\7Example\3com\0")},
	    {"a\\.b.c", 0, B("\3a.b\1c\0")},
	    {"a\\\\b", 0, B("\3a\\b\0")},
	    {"\\065\\066c", 0, B("\3ABc\0")},
	    {"\\000.x", 0, B("\1\0\1x\0")},
	    {"\\255", 0, B("\1\xFF\0")},
	    {"\\a\\-", 0, B("\2a-\0")},
	    {"a b", 0, B("\3a b\0")},
	    {"..", ERR_PARSE, B("")},
	    {".a", ERR_PARSE, B("")},
	    {"a..b", ERR_PARSE, B("")},
	    {"a.b..", ERR_PARSE, B("")},
	    {"a\\", ERR_PARSE, B("")},
	    {"\\25", ERR_PARSE, B("")},
	    {"\\25x", ERR_PARSE, B("")},
	    {"\\256", ERR_PARSE, B("")},
	    {"\\999", ERR_PARSE, B("")},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t out[WIRE_NAME_MAX];
		size_t len = 999;
		int ret = wire_name_from_text(cases[i].text, out, &len);

		if (ret != cases[i].ret)
			fprintf(stderr, "from_text case \"%s\"\n", cases[i].text);
		CHECK_EQ_INT(ret, cases[i].ret);
		if (ret == 0)
			CHECK(len == cases[i].wire.len && memcmp(out, cases[i].wire.p, len) == 0);
		else
			CHECK_EQ_INT(len, 999);
	}
	CHECK_EQ_INT(wire_name_from_text(NULL, (uint8_t[WIRE_NAME_MAX]){0}, &(size_t){0}),
		     ERR_PARSE);
}

static void test_from_text_limits(void)
{
	char text[1200];
	uint8_t out[WIRE_NAME_MAX];
	size_t len;

	memset(text, 'a', 63);
	text[63] = '\0';
	CHECK_EQ_INT(wire_name_from_text(text, out, &len), 0);
	CHECK_EQ_INT(len, 65);
	text[63] = 'a';
	text[64] = '\0';
	CHECK_EQ_INT(wire_name_from_text(text, out, &len), ERR_TOOBIG);
	/* An escaped byte counts as one octet: 63 x "\065" is a full label. */
	for (int i = 0; i < 63; i++)
		memcpy(text + 4 * i, "\\065", 4);
	text[4 * 63] = '\0';
	CHECK_EQ_INT(wire_name_from_text(text, out, &len), 0);
	CHECK_EQ_INT(len, 65);

	/* 127 one-octet labels = 255 octets; a 128th would be 257. */
	for (int i = 0; i < 127; i++)
		memcpy(text + 2 * i, "x.", 2);
	text[2 * 127] = '\0';
	CHECK_EQ_INT(wire_name_from_text(text, out, &len), 0);
	CHECK_EQ_INT(len, 255);
	text[2 * 127 - 1] = '\0'; /* without the trailing dot: same */
	CHECK_EQ_INT(wire_name_from_text(text, out, &len), 0);
	CHECK_EQ_INT(len, 255);
	memcpy(text + 2 * 127 - 1, ".y", 3); /* 128 labels */
	CHECK_EQ_INT(wire_name_from_text(text, out, &len), ERR_TOOBIG);
	/* 3 x 63 + 62: 256 octets. */
	memset(text, 'b', sizeof(text));
	text[63] = text[127] = text[191] = '.';
	text[192 + 62] = '\0';
	CHECK_EQ_INT(wire_name_from_text(text, out, &len), ERR_TOOBIG);
	text[192 + 61] = '\0';
	CHECK_EQ_INT(wire_name_from_text(text, out, &len), 0);
	CHECK_EQ_INT(len, 255);
}

static void test_to_text(void)
{
	static const struct {
		bytes_t wire;
		const char *text;
	} cases[] = {
	    {B("\0"), "."},
	    {B("\3www\7Example\3com\0"), "www.Example.com."},
	    {B("\3a.b\1c\0"), "a\\.b.c."},
	    {B("\3a\\b\0"), "a\\\\b."},
	    {B("\3a b\0"), "a\\032b."},
	    {B("\2\0\xFF\0"), "\\000\\255."},
	    {B("\3\x7F~!\0"), "\\127~!."},
	};
	char out[WIRE_NAME_TEXT_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t tl = strlen(cases[i].text);
		CHECK_EQ_INT(
		    wire_name_to_text(cases[i].wire.p, cases[i].wire.len, out, sizeof(out)), 0);
		CHECK(strcmp(out, cases[i].text) == 0);
		/* Exact fit works; one byte less fails and leaves out alone. */
		memset(out, '#', sizeof(out));
		CHECK_EQ_INT(wire_name_to_text(cases[i].wire.p, cases[i].wire.len, out, tl + 1), 0);
		CHECK(strcmp(out, cases[i].text) == 0);
		memset(out, '#', sizeof(out));
		CHECK_EQ_INT(wire_name_to_text(cases[i].wire.p, cases[i].wire.len, out, tl),
			     ERR_TOOBIG);
		CHECK(out[0] == '#');
	}
	CHECK_EQ_INT(wire_name_to_text(BS("\3ab"), out, sizeof(out)), ERR_MALFORMED);
}

/* wire -> text -> wire is the identity, for every byte value and the worst case size. */
static void test_round_trip(void)
{
	uint8_t w[WIRE_NAME_MAX], back[WIRE_NAME_MAX];
	char text[WIRE_NAME_TEXT_MAX];
	size_t n, blen;

	/* Every byte 0..255, spread over labels of 50. */
	for (unsigned start = 0; start < 256; start += 150) {
		n = 0;
		for (unsigned b = start; b < start + 150 && b < 256;) {
			unsigned l = 0;
			size_t at = n++;
			for (; l < 50 && b < start + 150 && b < 256; l++, b++)
				w[n++] = (uint8_t)b;
			w[at] = (uint8_t)l;
		}
		w[n++] = 0;
		CHECK_EQ_INT(wire_name_to_text(w, n, text, sizeof(text)), 0);
		CHECK_EQ_INT(wire_name_from_text(text, back, &blen), 0);
		CHECK(blen == n && memcmp(back, w, n) == 0);
	}
	/* Largest text: 3 x 63 + 61 octets, all escaped as \DDD. */
	n = 0;
	for (int l = 0; l < 4; l++) {
		unsigned ll = l < 3 ? 63 : 61;
		w[n++] = (uint8_t)ll;
		memset(w + n, 0x01, ll);
		n += ll;
	}
	w[n++] = 0;
	CHECK_EQ_INT(n, 255);
	CHECK_EQ_INT(wire_name_to_text(w, n, text, sizeof(text)), 0);
	CHECK_EQ_INT(strlen(text), 250 * 4 + 4);
	CHECK_EQ_INT(wire_name_from_text(text, back, &blen), 0);
	CHECK(blen == n && memcmp(back, w, n) == 0);
}

/* ---- types ----------------------------------------------------------- */

static void test_types(void)
{
	static const struct {
		const char *text;
		int type;
	} cases[] = {
	    {"A", 1},	  {"NS", 2},	    {"CNAME", 5},  {"SOA", 6},
	    {"PTR", 12},  {"MX", 15},	    {"TXT", 16},   {"AAAA", 28},
	    {"SRV", 33},  {"OPT", 41},	    {"IXFR", 251}, {"AXFR", 252},
	    {"ANY", 255}, {"TYPE999", 999}, {"TYPE0", 0},  {"TYPE65535", 65535},
	};
	static const struct {
		const char *text;
		int ret;
	} parse[] = {
	    {"aaaa", 28},
	    {"Srv", 33},
	    {"type28", 28},
	    {"TYPE00001", 1},
	    {"TYPE65536", ERR_PARSE},
	    {"TYPE", ERR_PARSE},
	    {"TYPE-1", ERR_PARSE},
	    {"TYPE1x", ERR_PARSE},
	    {"TYPE0000000000001", 1},
	    {"TYPE99999999999999999999", ERR_PARSE},
	    {"A1", ERR_PARSE},
	    {"", ERR_PARSE},
	    {"AAAAA", ERR_PARSE},
	    {" A", ERR_PARSE},
	};
	char out[16];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wire_type_to_text((uint16_t)cases[i].type, out, sizeof(out));
		CHECK(strcmp(out, cases[i].text) == 0);
		CHECK_EQ_INT(wire_type_from_text(cases[i].text), cases[i].type);
	}
	for (size_t i = 0; i < sizeof(parse) / sizeof(parse[0]); i++)
		CHECK_EQ_INT(wire_type_from_text(parse[i].text), parse[i].ret);
	CHECK_EQ_INT(wire_type_from_text(NULL), ERR_PARSE);
	/* A small buffer truncates, NUL-terminated, and never overflows. */
	memset(out, '#', sizeof(out));
	wire_type_to_text(65535, out, 5);
	CHECK(strcmp(out, "TYPE") == 0);
	CHECK(out[5] == '#');
	wire_type_to_text(1, out, 0);
	CHECK(out[0] == 'T');
}

int main(void)
{
	test_reader_table();
	test_reader_misc();
	test_writer_table();
	test_writer_patch_and_raw();
	test_get_name_table();
	test_get_name_limits();
	test_name_check();
	test_name_compare();
	test_name_labels_lower();
	test_word_paths();
	test_key_table();
	test_key_to_name_bad();
	test_key_order();
	test_from_text_table();
	test_from_text_limits();
	test_to_text();
	test_round_trip();
	test_types();
	return check_done();
}
