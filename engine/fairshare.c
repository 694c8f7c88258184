#include "engine/fairshare.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define MASK (FAIRSHARE_SLOTS - 1)
#define KEY_V4 (1ull << 63)
#define KEY_V6 (1ull << 62)

struct entry {
	uint64_t key; /* 0 = empty */
	uint32_t nq;  /* questions in flight it started */
	uint32_t nw;  /* its clients waiting */
};

struct fairshare {
	uint32_t max_q, max_w;
	uint64_t seed;
	unsigned n;
	struct entry tab[FAIRSHARE_SLOTS];
};

int fairshare_new(fairshare_t **out, unsigned max_questions, unsigned max_waiters, uint64_t seed)
{
	fairshare_t *s;

	if (max_questions == 0 || max_waiters == 0)
		return ERR_INVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->max_q = max_questions;
	s->max_w = max_waiters;
	s->seed = seed;
	*out = s;
	return 0;
}

void fairshare_free(fairshare_t *s)
{
	free(s);
}

static uint64_t v4_key(const uint8_t *p)
{
	return KEY_V4 | (uint64_t)p[0] << 16 | (uint64_t)p[1] << 8 | p[2];
}

uint64_t fairshare_key(const conf_addr_t *a)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->sa;
	const struct sockaddr_in *v4 = (const void *)sa;
	const struct sockaddr_in6 *v6 = (const void *)sa;
	const uint8_t *p;
	uint64_t k = 0;

	if (sa->sa_family == AF_INET && a->len >= sizeof(*v4))
		return v4_key((const uint8_t *)&v4->sin_addr);
	if (sa->sa_family != AF_INET6 || a->len < sizeof(*v6))
		return 0;
	p = v6->sin6_addr.s6_addr;
	if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
		return v4_key(p + 12);
	for (int i = 0; i < 7; i++)
		k = k << 8 | p[i];
	return KEY_V6 | k;
}

static uint32_t home(const fairshare_t *s, uint64_t key)
{
	uint64_t z = key ^ s->seed;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return (uint32_t)(z ^ (z >> 31)) & MASK;
}

/* Where key is, or the empty slot where it would go (one exists: at most half full). */
static uint32_t find(const fairshare_t *s, uint64_t key)
{
	uint32_t i = home(s, key);

	while (s->tab[i].key != 0 && s->tab[i].key != key)
		i = (i + 1) & MASK;
	return i;
}

bool fairshare_admit(const fairshare_t *s, uint64_t key, bool question)
{
	const struct entry *e;

	if (key == 0)
		return true;
	e = &s->tab[find(s, key)];
	if (e->key == 0)
		return true;
	return e->nw < s->max_w && (!question || e->nq < s->max_q);
}

void fairshare_take(fairshare_t *s, uint64_t key, unsigned dq, unsigned dw)
{
	struct entry *e;

	if (key == 0)
		return;
	e = &s->tab[find(s, key)];
	if (e->key == 0) {
		assert(s->n < FAIRSHARE_SLOTS / 2);
		e->key = key;
		s->n++;
	}
	e->nq += dq;
	e->nw += dw;
}

/* Empty slot i, moving later entries of its probe run back so none is cut off from home. */
static void remove_at(fairshare_t *s, uint32_t i)
{
	for (uint32_t j = (i + 1) & MASK; s->tab[j].key != 0; j = (j + 1) & MASK) {
		uint32_t h = home(s, s->tab[j].key);
		if (((j - h) & MASK) >= ((j - i) & MASK)) {
			s->tab[i] = s->tab[j];
			i = j;
		}
	}
	memset(&s->tab[i], 0, sizeof(s->tab[i]));
	s->n--;
}

void fairshare_put(fairshare_t *s, uint64_t key, unsigned dq, unsigned dw)
{
	uint32_t i;
	struct entry *e;

	if (key == 0)
		return;
	i = find(s, key);
	e = &s->tab[i];
	assert(e->key == key && e->nq >= dq && e->nw >= dw);
	if (e->key != key)
		return;
	e->nq -= dq < e->nq ? dq : e->nq;
	e->nw -= dw < e->nw ? dw : e->nw;
	if (e->nq == 0 && e->nw == 0)
		remove_at(s, i);
}

unsigned fairshare_count(const fairshare_t *s)
{
	return s->n;
}
