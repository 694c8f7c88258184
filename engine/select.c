#include "engine/select.h"

#include "store/store.h"

/* Fixed key: weights must agree between processes, nodes and restarts. */
#define SELECT_KEY 0x736b79646e73686fULL

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* MurmurHash3 finalizer: full avalanche, a bijection on 64 bits. */
static inline uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

/* MurmurHash3-style block absorption; bytes are read little-endian so the
 * result does not depend on the host's byte order. */
static uint64_t absorb(uint64_t h, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t m = n < 8 ? n : 8;
		uint64_t k = 0;
		for (size_t i = 0; i < m; i++)
			k |= (uint64_t)p[i] << (8 * i);
		k *= 0x87c37b91114253d5ULL;
		k = rotl64(k, 31);
		k *= 0x4cf5ad432745937fULL;
		h ^= k;
		h = rotl64(h, 27) * 5 + 0x52dce729;
		p += m;
		n -= m;
	}
	return h;
}

uint64_t select_weight(const uint8_t *client, size_t clen, const uint8_t *addr, size_t alen)
{
	/* Lengths go into the seed so (client, addr) splits cannot collide. */
	uint64_t h = SELECT_KEY ^ ((uint64_t)clen << 8) ^ (uint64_t)alen;
	h = absorb(h, client, clen);
	h = absorb(h, addr, alen);
	return fmix64(h ^ (clen + alen));
}

static size_t pick_hone(const select_addr_t *cand, size_t n, bool use_down, const uint8_t *client,
			size_t clen)
{
	size_t best = 0;
	uint64_t bestw = 0;
	bool found = false;

	for (size_t i = 0; i < n; i++) {
		if (use_down && cand[i].down)
			continue;
		uint64_t w = select_weight(client, clen, cand[i].addr, cand[i].len);
		/* Ties (practically never) go to the lower index: still deterministic. */
		if (!found || w > bestw) {
			best = i;
			bestw = w;
			found = true;
		}
	}
	return best;
}

/* Index of the k-th candidate that counts (k < number counted). */
static size_t nth_up(const select_addr_t *cand, size_t n, bool use_down, size_t k)
{
	for (size_t i = 0; i < n; i++) {
		if (use_down && cand[i].down)
			continue;
		if (k-- == 0)
			return i;
	}
	return 0;
}

size_t select_answer(unsigned mode, const select_addr_t *cand, size_t n, const uint8_t *client,
		     size_t clen, uint64_t rnd, uint16_t *order)
{
	size_t nup = 0;

	if (n > SELECT_MAX)
		n = SELECT_MAX;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		nup += !cand[i].down;
	/* Fail open: with every address DOWN, answer as if none were. */
	bool use_down = nup > 0;
	if (!use_down)
		nup = n;

	if (mode == STORE_MODE_HONE_ONE) {
		order[0] = (uint16_t)pick_hone(cand, n, use_down, client, clen);
		return 1;
	}
	if (mode == STORE_MODE_RANDOM_ONE) {
		order[0] = (uint16_t)nth_up(cand, n, use_down, (size_t)(rnd % nup));
		return 1;
	}
	/* ALL: healthy ones in stored order, rotated to start at a random one. */
	size_t start = (size_t)(rnd % nup), k = 0, out = 0;
	for (size_t i = 0; i < n; i++) {
		if (use_down && cand[i].down)
			continue;
		size_t slot = k >= start ? k - start : nup - start + k;
		order[slot] = (uint16_t)i;
		k++;
		out++;
	}
	return out;
}
