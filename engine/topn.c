/*
 * server/topn: Space-Saving heavy hitters with a hash index and a min-heap
 * over fixed slots, plus a seqlock-published copy for readers (topn.h).
 */
#include "engine/topn.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define TOPN_SNAPSHOT_TRIES 64
#define TOPN_EMPTY UINT32_MAX

_Static_assert(sizeof(topn_entry_t) % sizeof(uint64_t) == 0, "entries are copied as words");

struct topn {
	size_t cap;
	size_t used;
	uint64_t seed;
	topn_entry_t *slots; /* live table, owner only */
	uint64_t *hash;	     /* hash of each slot's name */
	uint32_t *heap;	     /* slot indexes, min-heap on count */
	uint32_t *pos;	     /* slot -> heap position */
	uint32_t *index;     /* open addressing: slot or TOPN_EMPTY */
	size_t mask;	     /* index buckets - 1 */
	bool dirty;
	unsigned skipped; /* queries passed over since the last sampled one */
	uint32_t now_s;	  /* topn_set_now */

	/* Published copy: words [0] = used, [1] = min, then the entries. */
	_Atomic uint64_t seq;
	uint64_t *pub;
	size_t pubwords;
};

static uint64_t name_hash(uint64_t seed, const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 29; /* FNV's low bits are weak; the index uses them */
	return h * 0xbf58476d1ce4e5b9ULL;
}

int topn_new(topn_t **out, size_t capacity, uint64_t seed)
{
	topn_t *t;
	size_t nb = 2;

	if (capacity == 0 || capacity > TOPN_MAX_CAPACITY)
		return ERR_INVAL;
	while (nb < capacity * 2)
		nb <<= 1; /* load factor at most 1/2 keeps linear probes short */
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->cap = capacity;
	t->seed = seed;
	t->mask = nb - 1;
	t->pubwords = 2 + capacity * (sizeof(topn_entry_t) / sizeof(uint64_t));
	t->slots = calloc(capacity, sizeof(*t->slots));
	t->hash = calloc(capacity, sizeof(*t->hash));
	t->heap = calloc(capacity, sizeof(*t->heap));
	t->pos = calloc(capacity, sizeof(*t->pos));
	t->index = malloc(nb * sizeof(*t->index));
	t->pub = calloc(t->pubwords, sizeof(*t->pub));
	if (!t->slots || !t->hash || !t->heap || !t->pos || !t->index || !t->pub) {
		topn_free(t);
		return -ENOMEM;
	}
	memset(t->index, 0xff, nb * sizeof(*t->index));
	atomic_init(&t->seq, 0);
	*out = t;
	return 0;
}

void topn_free(topn_t *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t->hash);
	free(t->heap);
	free(t->pos);
	free(t->index);
	free(t->pub);
	free(t);
}

size_t topn_capacity(const topn_t *t)
{
	return t->cap;
}

/* ---- hash index ---- */

static size_t index_find(const topn_t *t, uint64_t h, const uint8_t *name, size_t len)
{
	for (size_t b = h & t->mask;; b = (b + 1) & t->mask) {
		uint32_t s = t->index[b];

		if (s == TOPN_EMPTY)
			return b;
		if (t->hash[s] == h && t->slots[s].namelen == len &&
		    memcmp(t->slots[s].name, name, len) == 0)
			return b;
	}
}

/* Backward-shift deletion: no tombstones, so probes stay short forever. */
static void index_remove(topn_t *t, size_t b)
{
	size_t next = (b + 1) & t->mask;

	while (t->index[next] != TOPN_EMPTY) {
		size_t home = t->hash[t->index[next]] & t->mask;

		/* Move `next` into the hole unless its home lies cyclically in (b, next]. */
		if (((next - home) & t->mask) >= ((next - b) & t->mask)) {
			t->index[b] = t->index[next];
			b = next;
		}
		next = (next + 1) & t->mask;
	}
	t->index[b] = TOPN_EMPTY;
}

/* ---- min-heap on count ---- */

static void heap_swap(topn_t *t, size_t i, size_t j)
{
	uint32_t a = t->heap[i], b = t->heap[j];

	t->heap[i] = b;
	t->heap[j] = a;
	t->pos[b] = (uint32_t)i;
	t->pos[a] = (uint32_t)j;
}

static void heap_down(topn_t *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < t->used && t->slots[t->heap[l]].count < t->slots[t->heap[m]].count)
			m = l;
		if (r < t->used && t->slots[t->heap[r]].count < t->slots[t->heap[m]].count)
			m = r;
		if (m == i)
			return;
		heap_swap(t, i, m);
		i = m;
	}
}

static void heap_up(topn_t *t, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (t->slots[t->heap[p]].count <= t->slots[t->heap[i]].count)
			return;
		heap_swap(t, i, p);
		i = p;
	}
}

/* ---- owner side ---- */

static void slot_set(topn_t *t, uint32_t s, uint64_t h, const uint8_t *name, size_t len)
{
	t->hash[s] = h;
	t->slots[s].namelen = (uint8_t)len;
	memcpy(t->slots[s].name, name, len);
	/* Zero the tail so published bytes never depend on an evicted name. */
	memset(t->slots[s].name + len, 0, WIRE_NAME_MAX - len);
}

static void add_weighted(topn_t *t, const uint8_t *name, size_t len, uint64_t w)
{
	uint64_t h;
	size_t b;
	uint32_t s;

	if (len == 0 || len > WIRE_NAME_MAX)
		return;
	h = name_hash(t->seed, name, len);
	b = index_find(t, h, name, len);
	t->dirty = true;
	if (t->index[b] != TOPN_EMPTY) {
		s = t->index[b];
		t->slots[s].count += w;
		t->slots[s].last_s = t->now_s;
		heap_down(t, t->pos[s]);
		return;
	}
	if (t->used < t->cap) {
		/* A new name counts 1, the least possible: it rises to the root. */
		s = (uint32_t)t->used;
		t->heap[t->used] = s;
		t->pos[s] = (uint32_t)t->used;
		t->used++;
		t->slots[s].count = w;
		t->slots[s].error = 0;
	} else {
		/* Evict the minimum: the newcomer inherits its count as error (Space-Saving). */
		s = t->heap[0];
		index_remove(t, index_find(t, t->hash[s], t->slots[s].name, t->slots[s].namelen));
		t->slots[s].error = t->slots[s].count;
		t->slots[s].count += w;
		b = index_find(t, h, name, len); /* the removal may have shifted buckets */
	}
	slot_set(t, s, h, name, len);
	t->slots[s].first_s = t->slots[s].last_s = t->now_s;
	t->index[b] = s;
	heap_up(t, t->pos[s]);
	heap_down(t, t->pos[s]);
}

void topn_set_now(topn_t *t, uint32_t now_s)
{
	t->now_s = now_s;
}

void topn_add(topn_t *t, const uint8_t *name, size_t len)
{
	add_weighted(t, name, len, 1);
}

void topn_sample(topn_t *t, const uint8_t *name, size_t len)
{
	if (t->used < t->cap) {
		add_weighted(t, name, len, 1);
		return;
	}
	if (++t->skipped < TOPN_SAMPLE)
		return;
	t->skipped = 0;
	add_weighted(t, name, len, TOPN_SAMPLE);
}

static uint64_t table_min(const topn_t *t)
{
	return t->used == t->cap ? t->slots[t->heap[0]].count : 0;
}

void topn_publish(topn_t *t)
{
	const uint64_t *src = (const uint64_t *)t->slots;
	size_t words = t->used * (sizeof(topn_entry_t) / sizeof(uint64_t));
	uint64_t seq = atomic_load_explicit(&t->seq, memory_order_relaxed);

	if (!t->dirty)
		return;
	atomic_store_explicit(&t->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release); /* odd generation before any word */
	__atomic_store_n(&t->pub[0], (uint64_t)t->used, __ATOMIC_RELAXED);
	__atomic_store_n(&t->pub[1], table_min(t), __ATOMIC_RELAXED);
	for (size_t i = 0; i < words; i++)
		__atomic_store_n(&t->pub[2 + i], src[i], __ATOMIC_RELAXED);
	atomic_store_explicit(&t->seq, seq + 2, memory_order_release);
	t->dirty = false;
}

/* ---- readers ---- */

static bool snapshot_try(const topn_t *t, topn_entry_t *out, uint64_t *min, size_t *n)
{
	uint64_t s1 = atomic_load_explicit(&t->seq, memory_order_acquire), s2;
	uint64_t used, *dst = (uint64_t *)out;

	if (s1 & 1)
		return false;
	used = __atomic_load_n(&t->pub[0], __ATOMIC_RELAXED);
	*min = __atomic_load_n(&t->pub[1], __ATOMIC_RELAXED);
	if (used > t->cap)
		used = t->cap; /* torn read: the generation check below rejects it */
	for (size_t i = 0; i < used * (sizeof(topn_entry_t) / sizeof(uint64_t)); i++)
		dst[i] = __atomic_load_n(&t->pub[2 + i], __ATOMIC_RELAXED);
	atomic_thread_fence(memory_order_acquire); /* every word before the recheck */
	s2 = atomic_load_explicit(&t->seq, memory_order_relaxed);
	*n = (size_t)used;
	return s1 == s2;
}

int topn_snapshot(const topn_t *t, topn_entry_t *out, uint64_t *min)
{
	for (int i = 0; i < TOPN_SNAPSHOT_TRIES; i++) {
		size_t n;

		if (snapshot_try(t, out, min, &n))
			return (int)n;
	}
	return ERR_TIMEOUT;
}

/* ---- merging ---- */

static int by_name(const void *a, const void *b)
{
	const topn_entry_t *x = a, *y = b;

	if (x->namelen != y->namelen)
		return x->namelen < y->namelen ? -1 : 1;
	return memcmp(x->name, y->name, x->namelen);
}

static int by_count_desc(const void *a, const void *b)
{
	const topn_entry_t *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return by_name(a, b);
}

size_t topn_merge(topn_entry_t *all, size_t total, const size_t *ends, const uint64_t *mins,
		  size_t tables, topn_entry_t *out, size_t n)
{
	uint64_t summin = 0;
	size_t groups = 0, start = 0;

	/*
	 * A name's merged bounds are sum(present count) + sum(absent min) and
	 * sum(present error) + sum(absent min). Rewrite each entry relative to
	 * its own table's min (count >= min >= error holds in a snapshot), so
	 * groups can be summed without knowing which tables they came from.
	 */
	for (size_t ti = 0; ti < tables; ti++) {
		summin += mins[ti];
		for (size_t i = start; i < ends[ti] && i < total; i++) {
			all[i].count -= mins[ti];
			all[i].error = mins[ti] - all[i].error;
		}
		start = ends[ti];
	}
	qsort(all, total, sizeof(*all), by_name);
	for (size_t i = 0; i < total;) {
		uint64_t c = 0, d = 0;
		uint32_t first = all[i].first_s, last = all[i].last_s;
		size_t j = i;

		for (; j < total && by_name(&all[i], &all[j]) == 0; j++) {
			c += all[j].count;
			d += all[j].error;
			first = all[j].first_s < first ? all[j].first_s : first;
			last = all[j].last_s > last ? all[j].last_s : last;
		}
		all[groups] = all[i];
		all[groups].first_s = first;
		all[groups].last_s = last;
		all[groups].count = summin + c;
		all[groups].error = summin - d;
		groups++;
		i = j;
	}
	qsort(all, groups, sizeof(*all), by_count_desc);
	if (n > groups)
		n = groups;
	memcpy(out, all, n * sizeof(*out));
	return n;
}
