#include "engine/rrl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wire.h"

#define RRL_KEY_VALID (1ull << 62) /* so the all-zero entry is never a live key */
#define RRL_KEY_V4 (1ull << 63)
#define RRL_MILLI 1000u /* tokens are counted in thousandths of a response */

typedef struct {
	uint64_t key;
	uint64_t last_ms; /* last refill */
	uint64_t tokens;  /* thousandths of a response */
	uint32_t limited; /* responses over the limit, for slip */
	uint32_t pad;
} rrl_entry_t;

struct rrl {
	uint64_t rate;
	uint64_t cap; /* rate * window, thousandths */
	uint32_t slip;
	uint64_t seed;
	rrl_entry_t *tab; /* RRL_TABLE_SIZE */
};

int rrl_new(rrl_t **out, uint32_t rate, uint32_t slip, uint32_t window, uint64_t seed)
{
	rrl_t *r;

	if (rate == 0 || window == 0)
		return ERR_INVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->tab = calloc(RRL_TABLE_SIZE, sizeof(*r->tab));
	if (!r->tab) {
		free(r);
		return -ENOMEM;
	}
	rrl_configure(r, rate, slip, window);
	r->seed = seed;
	*out = r;
	return 0;
}

int rrl_configure(rrl_t *r, uint32_t rate, uint32_t slip, uint32_t window)
{
	if (rate == 0 || window == 0)
		return ERR_INVAL;
	r->rate = rate;
	r->cap = (uint64_t)rate * window * RRL_MILLI;
	r->slip = slip;
	return 0;
}

void rrl_free(rrl_t *r)
{
	if (!r)
		return;
	free(r->tab);
	free(r);
}

/* The client's network (/24 or /56) and the kind, in one word. */
static uint64_t rrl_key(const uint8_t *addr, size_t addrlen, unsigned kind)
{
	uint64_t k = RRL_KEY_VALID | ((uint64_t)(kind & 7) << 56);

	if (addrlen == 4)
		return k | RRL_KEY_V4 | ((uint64_t)addr[0] << 16) | ((uint64_t)addr[1] << 8) |
		       addr[2];
	if (addrlen == 16)
		for (int i = 0; i < 7; i++)
			k |= (uint64_t)addr[i] << (8 * (6 - i));
	return k;
}

/* splitmix64 finalizer over the seeded key: spoofed sources cannot aim at one slot. */
static uint64_t rrl_hash(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Two-way set: the key's entry, else the least recently used of the two, reset. */
static rrl_entry_t *rrl_entry(rrl_t *r, uint64_t key, uint64_t now_ms)
{
	size_t i = (size_t)rrl_hash(key ^ r->seed) & (RRL_TABLE_SIZE - 1);
	rrl_entry_t *a = &r->tab[i], *b = &r->tab[i ^ 1], *e;

	if (a->key == key)
		return a;
	if (b->key == key)
		return b;
	e = a->last_ms <= b->last_ms ? a : b;
	e->key = key;
	e->last_ms = now_ms;
	e->tokens = r->cap;
	e->limited = 0;
	return e;
}

int rrl_check(rrl_t *r, const uint8_t *addr, size_t addrlen, unsigned kind, uint64_t now_ms)
{
	rrl_entry_t *e = rrl_entry(r, rrl_key(addr, addrlen, kind), now_ms);

	if (now_ms > e->last_ms) {
		uint64_t add = (now_ms - e->last_ms) * r->rate; /* ms * per-s = thousandths */

		/* no overflow: tokens <= 3.6e12 and add <= uptime ms * 1e6; tokens may exceed a cap
		 * lowered by rrl_configure, hence no cap - tokens */
		e->tokens = e->tokens + add > r->cap ? r->cap : e->tokens + add;
		e->last_ms = now_ms;
	}
	if (e->tokens >= RRL_MILLI) {
		e->tokens -= RRL_MILLI;
		return RRL_PASS;
	}
	e->limited++;
	if (r->slip && e->limited % r->slip == 0)
		return RRL_SLIP;
	return RRL_DROP;
}

unsigned rrl_kind(const uint8_t *resp, size_t len)
{
	unsigned rcode;

	if (len < WIRE_HDR_LEN)
		return RRL_KIND_ERROR;
	rcode = resp[3] & 0xf;
	if (rcode == WIRE_RCODE_NXDOMAIN)
		return RRL_KIND_NXDOMAIN;
	if (rcode != WIRE_RCODE_NOERROR)
		return RRL_KIND_ERROR;
	return wire_read_u16(resp + 6) ? RRL_KIND_ANSWER : RRL_KIND_NODATA;
}

size_t rrl_slip(uint8_t *resp, size_t len)
{
	wire_reader_t rd;
	uint8_t name[WIRE_NAME_MAX];
	size_t nlen;
	uint16_t qd;

	if (len < WIRE_HDR_LEN)
		return 0;
	wire_reader_init(&rd, resp, len);
	qd = wire_read_u16(resp + 4);
	if (wire_skip(&rd, WIRE_HDR_LEN) < 0 || qd > 1 ||
	    (qd == 1 && (wire_get_name(&rd, name, &nlen) < 0 || wire_skip(&rd, 4) < 0)))
		return 0;
	resp[2] |= WIRE_FLAG_TC >> 8;
	memset(resp + 6, 0, 6);
	return rd.pos;
}
