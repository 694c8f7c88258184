/*
 * read.c: the query-path reads (store_lookup, rrset entry walk) and the
 * slower walks used by the API and tools (subtree iteration, sources at a
 * name). store_lookup allocates nothing and uses the handle's one cursor.
 */
#include "store/store.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store_internal.h"

int store_rrset_key(const uint8_t *name, size_t namelen, uint16_t type, uint8_t *out)
{
	size_t keylen;

	if (!name || wire_name_check(name, namelen) < 0 ||
	    wire_name_to_key(name, namelen, out, &keylen) < 0)
		return ERR_INVAL;
	out[keylen] = 0;
	wire_write_u16(out + keylen + 1, type);
	return (int)(keylen + STORE_KEY_EXTRA);
}

int store_rrset_next(const store_rrset_t *set, size_t *pos, store_rr_t *rr)
{
	size_t p = *pos;

	if (p >= set->len)
		return 0;
	if (set->len - p < STORE_ENTRY_HDR)
		return ERR_STORE;
	const uint8_t *e = set->entries + p;
	uint16_t rdlen = wire_read_u16(e + 5);
	if (set->len - p - STORE_ENTRY_HDR < rdlen)
		return ERR_STORE;
	rr->source_id = e[0];
	rr->ttl = wire_read_u32(e + 1);
	rr->rdlen = rdlen;
	rr->rdata = e + STORE_ENTRY_HDR;
	rr->wire = e + 1;
	*pos = p + STORE_ENTRY_HDR + rdlen;
	return 1;
}

/* Fill a view of the rrsets value p[0..len) of type `type`. @return 0 or ERR_STORE. */
static int value_view(uint16_t type, const uint8_t *p, size_t len, store_rrset_t *set)
{
	if (len < STORE_RRSET_HDR)
		return ERR_STORE;
	set->type = type;
	set->mode = p[0];
	set->count = wire_read_u16(p + 2);
	set->entries = p + STORE_RRSET_HDR;
	set->len = len - STORE_RRSET_HDR;
	return 0;
}

/* Fill a view of an rrsets record. @return 0 or ERR_STORE. */
static int rrset_view(const MDB_val *k, const MDB_val *v, store_rrset_t *set)
{
	if (k->mv_size < STORE_KEY_EXTRA)
		return ERR_STORE;
	return value_view(wire_read_u16((const uint8_t *)k->mv_data + k->mv_size - 2), v->mv_data,
			  v->mv_size, set);
}

/*
 * The lookup cache: two-way sets of 128-byte slots, one slot per (name, type),
 * keyed inline so a hit is a compare in the set's own cache lines (two ways:
 * names that meet in a set do not evict each other, as in a direct-mapped
 * table, where a third of a store twice the table's size missed).
 *
 * A slot says one of: the rrset is this value; there is no such rrset; or, for a
 * store_lookup that missed, the whole answer (the name exists or not, and its
 * CNAME if any): NXDOMAIN and NODATA answers are what Kubernetes' search paths
 * mostly ask (issue 16). A value of up to SLOT_DATA - keylen octets is copied into
 * the slot and outlives commits; a longer one is a pointer into the map, good only
 * for the snapshot it was read in (pgen), since a commit may free its page.
 *
 * Commits do not empty the cache: store_cache_sync reads the commit log (meta
 * "clog", write.c) and forgets the changed names, and every ancestor of one, whose
 * "exists" may depend on it, in each type the cache holds (at most CACHE_TYPES of
 * them, so a name's slots can be found). A slot is valid while its epoch is the
 * cache's; store_cache_drop bumps the epoch, dropping every slot at once.
 *
 * Replies point into copied values, so a slot used since the last renew (tick) is
 * never taken for another entry before the next one (a reply is built within one).
 */
#define CACHE_KEY_MAX 104 /* longer keys always take the B-tree */
#define SLOT_DATA 104	  /* key, then an inline value */
#define CACHE_TYPES 16	  /* distinct qtypes cached; others always take the B-tree */

enum {
	SLOT_PTR = 1,	 /* the value is at val, in the map (valid while pgen is the cache's) */
	SLOT_NONE = 2,	 /* no rrset of qtype at the name */
	SLOT_LOOKUP = 4, /* with NONE: the name's existence and CNAME are known too */
	SLOT_EXISTS = 8, /* ... the name exists (or is an empty non-terminal) */
	SLOT_CNAME = 16, /* ... and has this CNAME rrset (the value) */
};

struct cache_slot {
	uint32_t epoch;
	uint32_t pgen; /* SLOT_PTR: the snapshot the pointer is good for */
	uint16_t qtype;
	uint16_t vlen;
	uint8_t keylen;
	uint8_t flags; /* SLOT_* */
	uint16_t tick; /* the cache's tick when last filled or hit */
	const uint8_t *val;
	uint8_t data[SLOT_DATA];
};

struct store_lookup_cache {
	struct cache_slot *slots;
	size_t mask;
	size_t cap;	/* most slots it may grow to (even) */
	uint32_t epoch; /* slots of another epoch are empty */
	uint32_t pgen;	/* bumped with every new snapshot: older SLOT_PTR slots are stale */
	uint16_t tick;	/* bumped by every renew */
	bool synced;	/* gen names the store state the slots agree with */
	uint64_t gen;
	unsigned ntypes;
	uint16_t types[CACHE_TYPES]; /* every qtype a slot of this epoch may hold */
	uint64_t hits, misses;	     /* exact gets answered by a slot, and not */
};

_Static_assert(sizeof(struct cache_slot) == 128, "two cache lines per slot");

#define CACHE_MIN_SLOTS 1024

/* Slots for a store of n rrsets: twice as many (fewer collisions), a power of two. */
static size_t cache_want(const struct store_lookup_cache *c, size_t nrrsets)
{
	size_t n = CACHE_MIN_SLOTS;

	while (n < c->cap && n < 2 * nrrsets)
		n <<= 1;
	return n < c->cap ? n : c->cap;
}

/* Replace the slots with n fresh ones. @return 0 or -ENOMEM (old slots kept). */
static int cache_map(struct store_lookup_cache *c, size_t n)
{
	/* Anonymous pages read as zero (epoch 0: never valid) and cost no memory until used. */
	void *p = mmap(NULL, n * sizeof(*c->slots), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	/* Slots are hit at random: on 2 MiB pages a hit costs no page walk (a nested one in a
	 * VM). */
	(void)madvise(p, n * sizeof(*c->slots), MADV_HUGEPAGE);
	if (c->slots)
		munmap(c->slots, (c->mask + 1) * sizeof(*c->slots));
	c->slots = p;
	c->mask = n - 1;
	c->epoch = 1;
	c->ntypes = 0;
	return 0;
}

int store_read_cache(store_rtxn_t *t, size_t entries)
{
	struct store_lookup_cache *c;

	if (!t || t->view || t->cache)
		return ERR_INVAL;
	if (entries == 0)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* At most `entries`: a budget, so round down (to an even count for the two ways). */
	c->cap = 2;
	while (c->cap * 2 <= entries && c->cap < ((size_t)1 << 28))
		c->cap <<= 1;
	if (cache_map(c, cache_want(c, t->nrrsets)) < 0) {
		free(c);
		return -ENOMEM;
	}
	c->gen = t->gen;
	c->synced = true;
	t->cache = c;
	return 0;
}

void store_cache_fit(store_rtxn_t *t)
{
	struct store_lookup_cache *c = t->cache;

	/* Grow only: a store that shrinks and grows again would remap every time. */
	if (c && cache_want(c, t->nrrsets) > c->mask + 1)
		(void)cache_map(c, cache_want(c, t->nrrsets));
}

void store_cache_free(store_rtxn_t *t)
{
	if (!t->cache)
		return;
	munmap(t->cache->slots, (t->cache->mask + 1) * sizeof(*t->cache->slots));
	free(t->cache);
	t->cache = NULL;
}

void store_cache_drop(store_rtxn_t *t)
{
	struct store_lookup_cache *c = t->cache;

	if (!c)
		return;
	c->ntypes = 0;
	if (++c->epoch == 0) {
		/* After 2^32 drops old epochs would match again: start from zeroed slots. */
		madvise(c->slots, (c->mask + 1) * sizeof(*c->slots), MADV_DONTNEED);
		c->epoch = 1;
	}
}

/* The set (two slots) of (key, qtype). */
static struct cache_slot *cache_set(struct store_lookup_cache *c, const uint8_t *key, size_t keylen,
				    uint16_t qtype)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)keylen << 16 | qtype), w;
	size_t i = 0;

	/* 8 bytes per step: the keys of one zone share long prefixes, so every byte counts. */
	for (; i + 8 <= keylen; i += 8) {
		memcpy(&w, key + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	/* The 0..7 octets left, by hand: a memcpy of unknown length here became a `rep movs`
	 * on the hot path (issue 16). */
	w = 0;
	for (size_t j = 0; i + j < keylen; j++)
		w |= (uint64_t)key[i + j] << (8 * j);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	/* A second round, so every octet reaches the low bits the set index takes: with one,
	 * the last octets (where names such as svc-1234 differ) moved only high bits, and the
	 * 20k names of bench/qbench met in so few sets that half of the lookups missed. */
	h ^= h >> 32;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 29;
	return &c->slots[h & c->mask & ~(size_t)1];
}

static bool slot_live(const struct store_lookup_cache *c, const struct cache_slot *slot)
{
	return slot->epoch == c->epoch && (!(slot->flags & SLOT_PTR) || slot->pgen == c->pgen);
}

static bool slot_holds(const struct store_lookup_cache *c, const struct cache_slot *slot,
		       const uint8_t *key, size_t keylen, uint16_t qtype)
{
	return slot_live(c, slot) && slot->qtype == qtype && slot->keylen == keylen &&
	       memcmp(slot->data, key, keylen) == 0;
}

/* The slot of (key, qtype) in its set, or NULL. */
static struct cache_slot *cache_find(store_rtxn_t *t, const uint8_t *key, size_t keylen,
				     uint16_t qtype, struct cache_slot **set)
{
	struct store_lookup_cache *c = t->cache;

	*set = NULL;
	if (!c || !t->live || keylen > CACHE_KEY_MAX)
		return NULL;
	*set = cache_set(c, key, keylen, qtype);
	for (struct cache_slot *slot = *set; slot < *set + 2; slot++) {
		if (slot_holds(c, slot, key, keylen, qtype)) {
			slot->tick = c->tick;
			c->hits++;
			return slot;
		}
	}
	c->misses++;
	return NULL;
}

static const uint8_t *slot_value(const struct cache_slot *slot)
{
	return slot->flags & SLOT_PTR ? slot->val : slot->data + slot->keylen;
}

const void *store_prefetch(store_rtxn_t *t, const uint8_t *key, size_t keylen, uint16_t qtype)
{
	struct cache_slot *set;

	if (!t->cache || !t->live || keylen > CACHE_KEY_MAX)
		return NULL;
	set = cache_set(t->cache, key, keylen, qtype);
	/* The head line of each way: epoch, value and the first 40 octets of the key. */
	__builtin_prefetch(&set[0]);
	__builtin_prefetch(&set[1]);
	return set;
}

void store_prefetch_value(store_rtxn_t *t, const void *hint)
{
	const struct cache_slot *set = hint;

	/* Only a hint: the other way's rrset costs a wasted prefetch, never an answer. */
	if (!set)
		return;
	for (int i = 0; i < 2; i++) {
		if (!slot_live(t->cache, &set[i]) || set[i].vlen == 0)
			continue;
		if (set[i].flags & SLOT_PTR)
			__builtin_prefetch(set[i].val);
		else if (offsetof(struct cache_slot, data) + set[i].keylen + set[i].vlen > 64)
			__builtin_prefetch((const uint8_t *)&set[i] +
					   64); /* the copied value's end */
	}
}

/* True when k is an rrset key of exactly the name `key`. */
static bool key_is_rrset_of(const MDB_val *k, const uint8_t *key, size_t keylen)
{
	const uint8_t *p = k->mv_data;

	return k->mv_size == keylen + STORE_KEY_EXTRA && p[keylen] == 0 &&
	       memcmp(p, key, keylen) == 0;
}

/* Whether the cache may hold qtype (it can forget every type it holds, by name). */
static bool cache_type_ok(struct store_lookup_cache *c, uint16_t qtype)
{
	for (unsigned i = 0; i < c->ntypes; i++)
		if (c->types[i] == qtype)
			return true;
	if (c->ntypes == CACHE_TYPES)
		return false;
	c->types[c->ntypes++] = qtype;
	return true;
}

/*
 * Remember (key, qtype) in its set: val (v->mv_size octets) with flags 0, or
 * flags SLOT_NONE [| SLOT_LOOKUP ...] and val the CNAME rrset or NULL.
 * An existing slot of the key is rewritten; else a free way, else the one
 * used least recently, unless both were used since the last renew.
 */
static void cache_put(store_rtxn_t *t, struct cache_slot *set, const uint8_t *buf, size_t keylen,
		      uint16_t qtype, const MDB_val *v, uint8_t flags)
{
	struct store_lookup_cache *c = t->cache;
	struct cache_slot *slot = NULL;
	size_t vlen = v ? v->mv_size : 0;

	if (vlen > UINT16_MAX || !cache_type_ok(c, qtype))
		return;
	for (int i = 0; i < 2 && !slot; i++)
		if (slot_holds(c, &set[i], buf, keylen, qtype))
			slot = &set[i];
	for (int i = 0; i < 2 && !slot; i++)
		if (!slot_live(c, &set[i]))
			slot = &set[i];
	if (!slot) {
		uint16_t a0 = (uint16_t)(c->tick - set[0].tick),
			 a1 = (uint16_t)(c->tick - set[1].tick);
		slot = a0 >= a1 ? &set[0] : &set[1];
		if ((slot == &set[0] ? a0 : a1) == 0)
			return; /* both may back a reply being built */
	} else if (slot->tick == c->tick && slot->vlen != 0) {
		return; /* its value may back a reply being built */
	}
	slot->epoch = c->epoch;
	slot->pgen = c->pgen;
	slot->qtype = qtype;
	slot->keylen = (uint8_t)keylen;
	slot->tick = c->tick;
	slot->vlen = (uint16_t)vlen;
	memcpy(slot->data, buf, keylen);
	if (keylen + vlen <= SLOT_DATA) {
		if (vlen)
			memcpy(slot->data + keylen, v->mv_data, vlen);
		slot->val = NULL;
		slot->flags = flags;
	} else {
		slot->val = v->mv_data;
		slot->flags = (uint8_t)(flags | SLOT_PTR);
	}
}

/* Forget every slot of the name key[0..keylen), in every type the cache holds. */
static void cache_forget(struct store_lookup_cache *c, const uint8_t *key, size_t keylen)
{
	if (keylen > CACHE_KEY_MAX)
		return;
	for (unsigned i = 0; i < c->ntypes; i++) {
		struct cache_slot *set = cache_set(c, key, keylen, c->types[i]);
		for (int w = 0; w < 2; w++)
			if (slot_holds(c, &set[w], key, keylen, c->types[i]))
				set[w].epoch = 0;
	}
}

/* Forget a changed name and each of its ancestors (keys are labels root first). */
static void cache_forget_tree(struct store_lookup_cache *c, const uint8_t *key, size_t keylen)
{
	size_t p = 0;

	for (;;) {
		cache_forget(c, key, p);
		if (p >= keylen)
			return;
		p += 1u + key[p];
		if (p > keylen)
			return; /* not a key; the log is ours, but a reader never trusts a length */
	}
}

int store_cache_sync(store_rtxn_t *t)
{
	struct store_lookup_cache *c = t->cache;
	uint8_t kbuf[12];
	MDB_val k = {sizeof(kbuf), kbuf}, v;
	int rc;

	if (!c)
		return 0;
	c->pgen++;
	if (!c->synced || t->gen < c->gen || t->gen - c->gen > STORE_CLOG_KEEP)
		goto drop;
	memcpy(kbuf, "clog", 4);
	for (uint64_t g = c->gen + 1; g <= t->gen; g++) {
		wire_write_u32(kbuf + 4, (uint32_t)(g >> 32));
		wire_write_u32(kbuf + 8, (uint32_t)g);
		if ((rc = mdb_get(t->txn, t->s->meta, &k, &v)) != 0) {
			if (rc != MDB_NOTFOUND) {
				store_cache_drop(t);
				c->synced = false;
				return store_mdb_err(rc);
			}
			goto drop; /* written before the log existed */
		}
		const uint8_t *p = v.mv_data;
		if (v.mv_size < 1 || (p[0] & STORE_CLOG_ALL))
			goto drop;
		for (size_t i = 1; i < v.mv_size && i + 1 + p[i] <= v.mv_size; i += 1u + p[i])
			cache_forget_tree(c, p + i + 1, p[i]);
	}
	c->gen = t->gen;
	c->synced = true;
	return 0;
drop:
	store_cache_drop(t);
	c->gen = t->gen;
	c->synced = true;
	return 0;
}

void store_cache_counts(const store_rtxn_t *t, uint64_t *hits, uint64_t *misses)
{
	*hits = t && t->cache ? t->cache->hits : 0;
	*misses = t && t->cache ? t->cache->misses : 0;
}

void store_cache_tick(store_rtxn_t *t)
{
	if (t->cache)
		t->cache->tick++;
}

/*
 * One exact get of (buf[0..keylen) || 0 || qtype), through the cache.
 * buf has room for the key extra. @param neg also cache a miss (issue 17:
 * the zone-cut walk asks for NS at names that almost never have one).
 * @return 1 hit (*v set), 0 miss, or ERR_*. *setp: the key's set when cached.
 */
static int exact_get(store_rtxn_t *t, uint8_t *buf, size_t keylen, uint16_t qtype, MDB_val *v,
		     bool neg, struct cache_slot **hitp, struct cache_slot **setp)
{
	MDB_val k = {keylen + STORE_KEY_EXTRA, buf};
	struct cache_slot *set, *slot = cache_find(t, buf, keylen, qtype, &set);
	int rc;

	*hitp = slot;
	*setp = set;
	if (slot) {
		if (slot->flags & SLOT_NONE)
			return 0; /* a remembered miss */
		v->mv_data = (void *)slot_value(slot);
		v->mv_size = slot->vlen;
		return 1;
	}
	buf[keylen] = 0;
	wire_write_u16(buf + keylen + 1, qtype);
	rc = mdb_get(t->txn, t->s->rrsets, &k, v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_err(rc);
	if (set && (rc == 0 || neg))
		cache_put(t, set, buf, keylen, qtype, rc == 0 ? v : NULL, rc == 0 ? 0 : SLOT_NONE);
	return rc == 0 ? 1 : 0;
}

int store_has_rrset(store_rtxn_t *t, const uint8_t *key, size_t keylen, uint16_t qtype)
{
	uint8_t buf[WIRE_KEY_MAX + STORE_KEY_EXTRA];
	MDB_val v;

	if (keylen > WIRE_KEY_MAX)
		return ERR_INVAL;
	memcpy(buf, key, keylen);
	struct cache_slot *hit, *set;
	return exact_get(t, buf, keylen, qtype, &v, true, &hit, &set);
}

/*
 * The common case, the asked rrset exists: one B-tree descent for the exact
 * key instead of a cursor walk over all of the name's rrsets and one key
 * past them (3 cursor moves for a name with A and AAAA). Issue 6: the walk
 * was half of the lookup's cost. @return 1 hit, 0 miss, or ERR_*.
 */
static int lookup_exact(store_rtxn_t *t, uint8_t *buf, size_t keylen, uint16_t qtype,
			store_lookup_t *out, struct cache_slot **hit, struct cache_slot **set)
{
	store_lookup_t res = {0};
	MDB_val v;
	int ret;

	if ((ret = exact_get(t, buf, keylen, qtype, &v, false, hit, set)) <= 0)
		return ret;
	if ((ret = value_view(qtype, v.mv_data, v.mv_size, &res.rrset)) < 0)
		return ret;
	res.exists = res.has_rrset = true;
	if (qtype == WIRE_TYPE_CNAME) {
		res.has_cname = true;
		res.cname = res.rrset;
	}
	*out = res;
	return 1;
}

/* A remembered store_lookup miss. @return 0 or ERR_STORE. */
static int lookup_remembered(const struct cache_slot *slot, store_lookup_t *out)
{
	store_lookup_t res = {0};
	int ret;

	res.exists = (slot->flags & SLOT_EXISTS) != 0;
	if (slot->flags & SLOT_CNAME) {
		if ((ret = value_view(WIRE_TYPE_CNAME, slot_value(slot), slot->vlen, &res.cname)) <
		    0)
			return ret;
		res.has_cname = true;
	}
	*out = res;
	return 0;
}

int store_lookup(store_rtxn_t *t, const uint8_t *key, size_t keylen, uint16_t qtype,
		 store_lookup_t *out)
{
	uint8_t buf[WIRE_KEY_MAX + STORE_KEY_EXTRA];
	MDB_val k = {keylen + 1, buf}, v, cv = {0, NULL};
	store_lookup_t res = {0};
	struct cache_slot *hit, *cset;
	int rc, ret;

	if (keylen > WIRE_KEY_MAX)
		return ERR_INVAL;
	if (keylen)
		memcpy(buf, key, keylen);
	buf[keylen] = 0;
	if ((ret = lookup_exact(t, buf, keylen, qtype, out, &hit, &cset)) != 0)
		return ret < 0 ? ret : 0;
	if (hit && (hit->flags & SLOT_LOOKUP))
		return lookup_remembered(hit, out);
	/* key||0x00 sorts first among the name's rrsets, and every descendant
	 * (key||len||...) sorts right after them. */
	rc = mdb_cursor_get(t->cur, &k, &v, MDB_SET_RANGE);
	for (; rc == 0 && key_is_rrset_of(&k, key, keylen);
	     rc = mdb_cursor_get(t->cur, &k, &v, MDB_NEXT)) {
		store_rrset_t set;
		if ((ret = rrset_view(&k, &v, &set)) < 0)
			return ret;
		res.exists = true;
		if (set.type == WIRE_TYPE_CNAME) {
			res.has_cname = true;
			res.cname = set;
			cv = v;
		}
		if (set.type == qtype) {
			res.has_rrset = true;
			res.rrset = set;
		}
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_err(rc);
	/* Empty non-terminal: the next key lies below the name. */
	if (!res.exists && rc == 0 && k.mv_size > keylen &&
	    (keylen == 0 || memcmp(k.mv_data, key, keylen) == 0))
		res.exists = true;
	/* Remember the miss whole: NXDOMAIN and NODATA cost a hit next time. */
	if (cset && !res.has_rrset)
		cache_put(t, cset, key, keylen, qtype, res.has_cname ? &cv : NULL,
			  (uint8_t)(SLOT_NONE | SLOT_LOOKUP | (res.exists ? SLOT_EXISTS : 0) |
				    (res.has_cname ? SLOT_CNAME : 0)));
	*out = res;
	return 0;
}

/* The walk of store_iter and store_iter_after: from `start` (a full rrsets key, exclusive)
 * or from the first key with the prefix. */
static int iter_range(store_rtxn_t *t, const uint8_t *key, size_t keylen, const uint8_t *start,
		      size_t startlen, store_iter_fn fn, void *ctx)
{
	MDB_cursor *cur = NULL;
	MDB_val k = {keylen, (void *)key}, v;
	int rc, ret;

	/* Own cursor: fn may call store_lookup, which moves t->cur. */
	if ((rc = mdb_cursor_open(t->txn, t->s->rrsets, &cur)) != 0)
		return store_mdb_err(rc);
	if (start) {
		k.mv_size = startlen;
		k.mv_data = (void *)start;
	}
	rc = mdb_cursor_get(cur, &k, &v, k.mv_size ? MDB_SET_RANGE : MDB_FIRST);
	if (rc == 0 && start && k.mv_size == startlen && memcmp(k.mv_data, start, startlen) == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		store_rrset_t set;
		if (k.mv_size < keylen + STORE_KEY_EXTRA ||
		    (keylen && memcmp(k.mv_data, key, keylen) != 0))
			break;
		if ((ret = rrset_view(&k, &v, &set)) < 0)
			goto out;
		ret = fn(ctx, k.mv_data, k.mv_size - STORE_KEY_EXTRA, &set);
		if (ret != 0)
			goto out;
	}
	ret = rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_err(rc);
out:
	mdb_cursor_close(cur);
	return ret;
}

int store_iter(store_rtxn_t *t, const uint8_t *key, size_t keylen, store_iter_fn fn, void *ctx)
{
	return iter_range(t, key, keylen, NULL, 0, fn, ctx);
}

int store_iter_after(store_rtxn_t *t, const uint8_t *key, size_t keylen, const uint8_t *after,
		     size_t afterlen, uint16_t after_type, store_iter_fn fn, void *ctx)
{
	uint8_t start[WIRE_KEY_MAX + STORE_KEY_EXTRA];

	if (afterlen > WIRE_KEY_MAX)
		return ERR_INVAL;
	memcpy(start, after, afterlen);
	start[afterlen] = 0;
	wire_write_u16(start + afterlen + 1, after_type);
	return iter_range(t, key, keylen, start, afterlen + STORE_KEY_EXTRA, fn, ctx);
}

/* OR the source ids of one rrset's entries into *mask. */
static int rrset_sources(const store_rrset_t *set, uint64_t *mask)
{
	size_t pos = 0;
	store_rr_t rr;
	int rc;

	while ((rc = store_rrset_next(set, &pos, &rr)) == 1) {
		if (rr.source_id < 64)
			*mask |= (uint64_t)1 << rr.source_id;
	}
	return rc;
}

int store_name_sources(store_rtxn_t *t, const uint8_t *key, size_t keylen, uint64_t *mask)
{
	uint8_t buf[WIRE_KEY_MAX + 1];
	MDB_val k = {keylen + 1, buf}, v;
	uint64_t m = 0;
	int rc, ret;

	if (keylen > WIRE_KEY_MAX)
		return ERR_INVAL;
	if (keylen)
		memcpy(buf, key, keylen);
	buf[keylen] = 0;
	rc = mdb_cursor_get(t->cur, &k, &v, MDB_SET_RANGE);
	for (; rc == 0 && key_is_rrset_of(&k, key, keylen);
	     rc = mdb_cursor_get(t->cur, &k, &v, MDB_NEXT)) {
		store_rrset_t set;
		if ((ret = rrset_view(&k, &v, &set)) < 0 || (ret = rrset_sources(&set, &m)) < 0)
			return ret;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_err(rc);
	*mask = m;
	return 0;
}

int store_source_find(store_rtxn_t *t, const char *source)
{
	char kbuf[4 + STORE_SOURCE_MAX];
	size_t len = source ? strlen(source) : 0;
	MDB_val k, v;
	int rc;

	if (len == 0 || len >= STORE_SOURCE_MAX)
		return ERR_INVAL;
	memcpy(kbuf, "src:", 4);
	memcpy(kbuf + 4, source, len);
	k.mv_size = 4 + len;
	k.mv_data = kbuf;
	if ((rc = mdb_get(t->txn, t->s->meta, &k, &v)) != 0)
		return store_mdb_err(rc);
	if (v.mv_size != 1)
		return ERR_STORE;
	return *(const uint8_t *)v.mv_data;
}

int store_source_name(store_rtxn_t *t, int id, char *out, size_t cap)
{
	MDB_cursor *cur = NULL;
	MDB_val k = {4, (void *)"src:"}, v;
	int rc, ret = ERR_NOTFOUND;

	if ((rc = mdb_cursor_open(t->txn, t->s->meta, &cur)) != 0)
		return store_mdb_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size > 4 && memcmp(k.mv_data, "src:", 4) == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (v.mv_size != 1 || *(const uint8_t *)v.mv_data != id)
			continue;
		if (k.mv_size - 4 >= cap) {
			ret = ERR_TOOBIG;
			break;
		}
		memcpy(out, (const char *)k.mv_data + 4, k.mv_size - 4);
		out[k.mv_size - 4] = '\0';
		ret = 0;
		break;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		ret = store_mdb_err(rc);
	mdb_cursor_close(cur);
	return ret;
}

int store_source_has_data(store_rtxn_t *t, int src)
{
	uint8_t first = (uint8_t)src;
	MDB_cursor *cur = NULL;
	MDB_val k = {1, &first}, v;
	int rc, ret;

	if (src < 0 || src > UINT8_MAX)
		return ERR_INVAL;
	/* bysrc keys start with the source id: one seek answers it. */
	if ((rc = mdb_cursor_open(t->txn, t->s->bysrc, &cur)) != 0)
		return store_mdb_err(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		ret = *(const uint8_t *)k.mv_data == first ? 1 : 0;
	else
		ret = rc == MDB_NOTFOUND ? 0 : store_mdb_err(rc);
	mdb_cursor_close(cur);
	return ret;
}
