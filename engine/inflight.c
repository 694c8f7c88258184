#include "engine/inflight.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

#define PER_SHARD (INFLIGHT_SLOTS / INFLIGHT_SHARDS)

_Static_assert(INFLIGHT_SLOTS % INFLIGHT_SHARDS == 0, "whole shards");
_Static_assert(INFLIGHT_MAX_WORKERS <= 64, "waiters are a 64-bit mask");

struct slot {
	uint32_t
	    gen; /* atomic: changes at every claim and done (inflight_live reads it unlocked) */
	uint32_t hash;
	uint64_t waiters; /* workers other than the owner */
	uint16_t qtype, qclass;
	uint8_t owner;
	uint8_t qnamelen;
	bool used, do_bit, cd;
	uint8_t qname[WIRE_NAME_MAX];
};

struct shard {
	uint8_t lock; /* test-and-set spinlock: one scan of PER_SHARD slots, never blocks */
	struct slot s[PER_SHARD];
} __attribute__((aligned(64)));

struct inflight {
	struct shard sh[INFLIGHT_SHARDS];
	int wake_fd[INFLIGHT_MAX_WORKERS]; /* atomic */
};

static void lock(struct shard *s)
{
	while (__atomic_test_and_set(&s->lock, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&s->lock, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
}

static void unlock(struct shard *s)
{
	__atomic_clear(&s->lock, __ATOMIC_RELEASE);
}

int inflight_new(inflight_t **out)
{
	inflight_t *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < INFLIGHT_MAX_WORKERS; i++)
		r->wake_fd[i] = -1;
	*out = r;
	return 0;
}

void inflight_free(inflight_t *r)
{
	free(r);
}

static bool same_key(const struct slot *s, const inflight_key_t *k)
{
	return s->used && s->hash == k->hash && s->qtype == k->qtype && s->qclass == k->qclass &&
	       s->do_bit == k->do_bit && s->cd == k->cd && s->qnamelen == k->len &&
	       memcmp(s->qname, k->name, k->len) == 0;
}

static uint64_t make_ref(size_t shard, size_t i, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)(shard * PER_SHARD + i);
}

int inflight_claim(inflight_t *r, const inflight_key_t *k, unsigned worker, uint64_t *ref)
{
	struct shard *sh = &r->sh[k->hash % INFLIGHT_SHARDS];
	size_t free_i = PER_SHARD;
	int ret = INFLIGHT_FULL;

	if (worker >= INFLIGHT_MAX_WORKERS || k->len == 0 || k->len > WIRE_NAME_MAX)
		return INFLIGHT_FULL;
	lock(sh);
	for (size_t i = 0; i < PER_SHARD; i++) {
		struct slot *s = &sh->s[i];
		if (!s->used) {
			if (free_i == PER_SHARD)
				free_i = i;
			continue;
		}
		if (!same_key(s, k))
			continue;
		if (s->owner != worker) {
			s->waiters |= 1ull << worker;
			*ref = make_ref((size_t)(sh - r->sh), i, s->gen);
			ret = INFLIGHT_JOINED;
		}
		unlock(sh);
		return ret;
	}
	if (free_i < PER_SHARD) {
		struct slot *s = &sh->s[free_i];
		s->hash = k->hash;
		s->qtype = k->qtype;
		s->qclass = k->qclass;
		s->do_bit = k->do_bit;
		s->cd = k->cd;
		s->qnamelen = (uint8_t)k->len;
		memcpy(s->qname, k->name, k->len);
		s->owner = (uint8_t)worker;
		s->waiters = 0;
		s->used = true;
		__atomic_store_n(&s->gen, s->gen + 1, __ATOMIC_RELEASE);
		*ref = make_ref((size_t)(sh - r->sh), free_i, s->gen);
		ret = INFLIGHT_OWNER;
	}
	unlock(sh);
	return ret;
}

uint64_t inflight_done(inflight_t *r, uint64_t ref)
{
	uint32_t idx = (uint32_t)ref, gen = (uint32_t)(ref >> 32);
	struct shard *sh;
	struct slot *s;
	uint64_t waiters = 0;

	if (idx >= INFLIGHT_SLOTS)
		return 0;
	sh = &r->sh[idx / PER_SHARD];
	s = &sh->s[idx % PER_SHARD];
	lock(sh);
	if (s->used && s->gen == gen) {
		waiters = s->waiters;
		s->used = false;
		s->waiters = 0;
		__atomic_store_n(&s->gen, gen + 1, __ATOMIC_RELEASE);
	}
	unlock(sh);
	return waiters;
}

bool inflight_live(const inflight_t *r, uint64_t ref)
{
	uint32_t idx = (uint32_t)ref;

	if (idx >= INFLIGHT_SLOTS)
		return false;
	return __atomic_load_n(&r->sh[idx / PER_SHARD].s[idx % PER_SHARD].gen, __ATOMIC_ACQUIRE) ==
	       (uint32_t)(ref >> 32);
}

void inflight_set_wake_fd(inflight_t *r, unsigned worker, int fd)
{
	if (worker < INFLIGHT_MAX_WORKERS)
		__atomic_store_n(&r->wake_fd[worker], fd, __ATOMIC_RELEASE);
}

int inflight_wake_fd(const inflight_t *r, unsigned worker)
{
	return worker < INFLIGHT_MAX_WORKERS
		   ? __atomic_load_n(&r->wake_fd[worker], __ATOMIC_ACQUIRE)
		   : -1;
}
