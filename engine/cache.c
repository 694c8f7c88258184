#include "engine/cache.h"

#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wire.h"
#include "engine/edns.h"

#define NIL UINT32_MAX
#define PTR_MAX 0x3FFFu /* highest offset a compression pointer can reach */
#define FLAG_OPCODE 0x7800u
#define FLAG_RCODE 0x000Fu
#define KEY_DO 1u
#define KEY_CD 2u

/* RR types whose RDATA holds names (RFC 1035 + RFC 3597 §4). */
enum {
	T_MD = 3,
	T_MF = 4,
	T_MB = 7,
	T_MG = 8,
	T_MR = 9,
	T_MINFO = 14,
	T_RP = 17,
	T_AFSDB = 18,
	T_RT = 21,
	T_KX = 36,
	T_RRSIG = 46,
};

struct entry {
	uint32_t hash;
	uint32_t next; /* bucket chain, or free list */
	uint64_t insert_ms;
	uint64_t expire_ms;
	uint16_t len;
	uint16_t keylen; /* qname + qtype + qclass, at offset WIRE_HDR_LEN of msg */
	uint8_t used;
	uint8_t ref;	    /* CLOCK reference bit */
	uint8_t kbits;	    /* KEY_DO | KEY_CD */
	uint8_t prefetched; /* cache_lookup_prefetch asked for its refresh once */
	uint8_t *msg;	    /* len bytes of its own (malloc), sized to the answer */
};

_Static_assert(sizeof(struct entry) <= CACHE_ENTRY_SIZE, "CACHE_ENTRY_SIZE out of date");

/* One lock's worth of the table: the whole cache when it is small, else 1/CACHE_SHARDS. */
struct shard {
	uint8_t lock; /* spinlock (test-and-set): held for a find plus a copy, never blocks */
	size_t cap;
	size_t count;
	size_t hand;
	uint32_t mask;
	uint32_t free_head;
	uint32_t fresh;	  /* entries [fresh, cap) were never used: taken in order, no list */
	size_t msg_bytes; /* heap the messages take (chunks, glibc overhead included) */
	uint64_t seed;
	uint64_t stale_ms; /* serve-stale: expired entries kept this long (0: dropped) */
	uint32_t *buckets;
	struct entry *e;
	cache_stats_t *st; /* the counters of the handle holding the lock */
};

/* The shards, shared by every handle. */
struct table {
	uint32_t nshards; /* power of two */
	uint32_t shift;	  /* shard = hash >> shift (the buckets use the low bits) */
	int refs;	  /* handles */
	struct shard *sh[];
};

/* A handle: one thread's way into the table, with that thread's counters. */
struct cache {
	struct table *t;
	cache_stats_t st;
};

/* ---- counters --------------------------------------------------------- */

static void stat_inc(uint64_t *v)
{
	__atomic_store_n(v, __atomic_load_n(v, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

void cache_stats_read(const cache_t *c, cache_stats_t *out)
{
	out->hits = __atomic_load_n(&c->st.hits, __ATOMIC_RELAXED);
	out->misses = __atomic_load_n(&c->st.misses, __ATOMIC_RELAXED);
	out->evictions = __atomic_load_n(&c->st.evictions, __ATOMIC_RELAXED);
	out->inserts = __atomic_load_n(&c->st.inserts, __ATOMIC_RELAXED);
	out->expired = __atomic_load_n(&c->st.expired, __ATOMIC_RELAXED);
	out->stale = __atomic_load_n(&c->st.stale, __ATOMIC_RELAXED);
	out->prefetches = __atomic_load_n(&c->st.prefetches, __ATOMIC_RELAXED);
}

/* ---- normalizing ------------------------------------------------------- */

/*
 * Compression targets: every label we wrote at an offset a pointer can
 * reach, keyed by (the label, lowercased; the offset of the suffix after it),
 * so a suffix is found by one hash probe per label and re-encoding stays
 * linear in the message (comparing decompressed names was names x labels x
 * targets: one crafted answer cost a worker ~0.5 s). Probes and entries are
 * bounded, so hostile labels colliding in the hash cost compression, not CPU.
 */
#define CTAB_SLOTS 2048 /* power of two, twice CTAB_MAX */
#define CTAB_MAX 1024	/* labels remembered per message */
#define CTAB_PROBES 8
#define CTAB_ROOT 0xFFFFu /* "parent" of a last label: the root */
#define CTAB_HOPS 16	  /* pointers a reader follows for one name: dnspython's limit */
/* Decompressed name bytes one message may make us write: the work per message is linear in
 * them, and a 64 KB message can decompress to 8 MB; 256 KiB is ~2.5 ms of CPU at worst, and
 * more than 8,000 names of 30 bytes (a 64 KB answer of A records holds 4,000). */
#define NAME_BUDGET (256u * 1024u)

typedef struct {
	uint16_t off[CTAB_SLOTS]; /* where the label was written; 0 = free (the header) */
	uint16_t parent[CTAB_SLOTS];
	uint8_t hops[CTAB_SLOTS]; /* pointers followed decoding the name at off */
	uint32_t hash[CTAB_SLOTS];
	uint16_t log[CTAB_MAX]; /* slots in insertion order, for rollback */
	size_t n;
	size_t budget; /* name bytes left to write (NAME_BUDGET) */
} ctab_t;

static void ctab_init(ctab_t *t)
{
	memset(t->off, 0, sizeof(t->off));
	t->n = 0;
	t->budget = NAME_BUDGET;
}

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static uint32_t label_hash(const uint8_t *label, uint16_t parent)
{
	uint32_t h = 2166136261u ^ parent;

	for (size_t i = 0; i <= label[0]; i++)
		h = (h ^ lower(label[i])) * 16777619u;
	return h ^ (h >> 15);
}

static bool label_equal(const uint8_t *a, const uint8_t *b)
{
	if (a[0] != b[0])
		return false;
	for (size_t i = 1; i <= a[0]; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

/* @return the slot holding (label, parent), or -1. */
static int ctab_find(const ctab_t *t, const wire_writer_t *w, const uint8_t *label, uint16_t parent)
{
	uint32_t h = label_hash(label, parent);

	for (uint32_t i = 0; i < CTAB_PROBES; i++) {
		uint32_t s = (h + i) & (CTAB_SLOTS - 1);
		if (t->off[s] == 0)
			return -1;
		if (t->hash[s] == h && t->parent[s] == parent &&
		    label_equal(w->base + t->off[s], label))
			return (int)s;
	}
	return -1;
}

/* @return whether (label at off, parent) is remembered now. */
static bool ctab_add(ctab_t *t, const wire_writer_t *w, size_t off, uint16_t parent, uint8_t hops)
{
	uint32_t h;

	if (off > PTR_MAX || t->n >= CTAB_MAX)
		return false;
	h = label_hash(w->base + off, parent);
	for (uint32_t i = 0; i < CTAB_PROBES; i++) {
		uint32_t s = (h + i) & (CTAB_SLOTS - 1);
		if (t->off[s] != 0)
			continue;
		t->off[s] = (uint16_t)off;
		t->parent[s] = parent;
		t->hops[s] = hops;
		t->hash[s] = h;
		t->log[t->n++] = (uint16_t)s;
		return true;
	}
	return false;
}

/* Forget the labels written at or after `mark` (an RR we dropped after writing it). */
static void ctab_rollback(ctab_t *t, size_t mark)
{
	while (t->n > 0 && t->off[t->log[t->n - 1]] >= mark)
		t->off[t->log[--t->n]] = 0;
}

/*
 * Write a valid wire name: its new labels, then a pointer to the longest
 * suffix already written (when `compress`), never making a reader follow
 * more than CTAB_HOPS pointers (dnspython gives up after 16).
 */
static int put_name(wire_writer_t *w, ctab_t *t, const uint8_t *name, size_t len, bool compress)
{
	size_t start[WIRE_NAME_MAX / 2 + 1], at[WIRE_NAME_MAX / 2 + 1], n = 0, keep, use;
	int slot[WIRE_NAME_MAX / 2 + 1];
	uint16_t parent = CTAB_ROOT;
	uint8_t hops = 0;
	int ret;

	if (len > t->budget)
		return ERR_TOOBIG; /* bounded work per message, even for names we drop */
	t->budget -= len;
	for (size_t off = 0; off < len && name[off] != 0; off += 1u + name[off])
		start[n++] = off;
	/* Longest known suffix: labels [keep, n), found right to left. */
	for (keep = n; keep > 0; keep--) {
		int s = ctab_find(t, w, name + start[keep - 1], parent);
		if (s < 0)
			break;
		slot[keep - 1] = s;
		parent = t->off[s];
	}
	/* The suffix we point to: the longest known one, unless pointing there would make
	 * too long a pointer chain; then a much shallower one, so the names written next
	 * (nested chains: each name one label longer) can point here again for a while. */
	use = keep;
	if (use < n && t->hops[slot[use]] >= CTAB_HOPS - 1)
		while (use < n && t->hops[slot[use]] >= CTAB_HOPS / 2)
			use++;
	if (!compress)
		use = n;
	for (size_t i = 0; i < use; i++) {
		at[i] = w->pos;
		if ((ret = wire_put_bytes(w, name + start[i], 1u + name[start[i]])) < 0)
			return ret;
	}
	if (use < n)
		ret = wire_put_u16(w, (uint16_t)(0xC000u | t->off[slot[use]]));
	else
		ret = wire_put_u8(w, 0);
	if (ret < 0)
		return ret;
	/* Register the new labels, right to left: each one's parent is the next. */
	if (use < n)
		hops = (uint8_t)(t->hops[slot[use]] + 1);
	parent = keep < n ? t->off[slot[keep]] : CTAB_ROOT;
	for (size_t i = keep; i > 0; i--) {
		if (!ctab_add(t, w, at[i - 1], parent, hops))
			break; /* not remembered: no longer name can point through it */
		parent = (uint16_t)at[i - 1];
	}
	return 0;
}

static int copy_name(wire_reader_t *r, wire_writer_t *w, ctab_t *t, bool compress)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t len;
	int ret;

	if ((ret = wire_get_name(r, name, &len)) < 0)
		return ret;
	return put_name(w, t, name, len, compress);
}

static int copy_bytes(wire_reader_t *r, wire_writer_t *w, size_t n)
{
	uint8_t buf[512];
	int ret;

	while (n > 0) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);
		if ((ret = wire_get_bytes(r, buf, k)) < 0 || (ret = wire_put_bytes(w, buf, k)) < 0)
			return ret;
		n -= k;
	}
	return 0;
}

/* SOA: two names then serial, refresh, retry, expire, minimum. */
static int copy_soa(wire_reader_t *r, wire_writer_t *w, ctab_t *t, uint32_t *minimum)
{
	uint32_t v = 0;
	int ret;

	if ((ret = copy_name(r, w, t, true)) < 0 || (ret = copy_name(r, w, t, true)) < 0)
		return ret;
	for (int i = 0; i < 5; i++) {
		if ((ret = wire_get_u32(r, &v)) < 0 || (ret = wire_put_u32(w, v)) < 0)
			return ret;
	}
	*minimum = v;
	return 0;
}

/* What one RR's RDATA told us. */
typedef struct {
	uint32_t soa_min;
	uint8_t target[WIRE_NAME_MAX]; /* a CNAME's target */
	size_t targetlen;
} rdata_t;

/* Copy RDATA ending at `end`, decompressing the names of known types. */
static int copy_rdata(wire_reader_t *r, size_t end, uint16_t type, wire_writer_t *w, ctab_t *t,
		      rdata_t *rd)
{
	int ret;

	switch (type) {
	case WIRE_TYPE_CNAME:
		ret = wire_get_name(r, rd->target, &rd->targetlen);
		if (ret == 0)
			ret = put_name(w, t, rd->target, rd->targetlen, true);
		break;
	case WIRE_TYPE_NS:
	case WIRE_TYPE_PTR:
	case T_MD:
	case T_MF:
	case T_MB:
	case T_MG:
	case T_MR:
		ret = copy_name(r, w, t, true);
		break;
	case T_MINFO:
	case T_RP:
		ret = copy_name(r, w, t, type == T_MINFO);
		if (ret == 0)
			ret = copy_name(r, w, t, type == T_MINFO);
		break;
	case WIRE_TYPE_MX:
	case T_AFSDB:
	case T_RT:
	case T_KX:
		ret = copy_bytes(r, w, 2);
		if (ret == 0)
			ret = copy_name(r, w, t, type == WIRE_TYPE_MX);
		break;
	case WIRE_TYPE_SRV:
		ret = copy_bytes(r, w, 6);
		if (ret == 0)
			ret = copy_name(r, w, t, false);
		break;
	case WIRE_TYPE_SOA:
		ret = copy_soa(r, w, t, &rd->soa_min);
		break;
	default:
		ret = end >= r->pos ? copy_bytes(r, w, end - r->pos) : ERR_MALFORMED;
		break;
	}
	if (ret == 0 && r->pos != end)
		ret = ERR_MALFORMED; /* RDLENGTH disagrees with the RDATA */
	return ret;
}

/* State of one message's normalization. */
typedef struct {
	const cache_policy_t *pol; /* NULL: keep everything */
	uint32_t max_ttl;
	uint16_t qtype;
	uint32_t min_ttl;
	uint32_t soa_neg; /* min(SOA TTL, SOA minimum) of an authority SOA */
	bool soa_seen;
	bool cut;		      /* the CNAME chain entered a local domain */
	uint16_t scrubbed;	      /* RRs keep_rr dropped */
	uint8_t chain[WIRE_NAME_MAX]; /* the name the answer is about by now */
	size_t chainlen;
	uint8_t cut_owner[WIRE_NAME_MAX]; /* owner of the chain's last CNAME */
	size_t cut_ownerlen;
} norm_t;

static bool name_in(const uint8_t *name, size_t len, const cache_zone_t *z, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (wire_name_is_subdomain(name, len, z[i].name, z[i].len))
			return true;
	return false;
}

/* skydns answers this name itself (query.c's rule): no upstream may speak for it. */
static bool is_local(const cache_policy_t *p, const uint8_t *name, size_t len)
{
	return name_in(name, len, p->local, p->nlocal) &&
	       !name_in(name, len, p->forwarded, p->nforwarded);
}

/*
 * Whether to relay a copied RR (RFC 2181 §5.4.1 ranking, the Unbound scrubber's
 * rules in small): the answer's CNAME chain from the question name, and
 * anything else inside the zone the upstream was asked for, except names of
 * our own domains. A chain into a local domain ends the upstream's part.
 */
static bool keep_rr(norm_t *n, int section, const uint8_t *owner, size_t ownerlen, uint16_t type,
		    const rdata_t *rd)
{
	const cache_policy_t *p = n->pol;

	if (!p)
		return true;
	if (n->cut) /* only the signature of the CNAME that led to us */
		return section == 0 && type == T_RRSIG &&
		       wire_name_equal(owner, ownerlen, n->cut_owner, n->cut_ownerlen);
	if (is_local(p, owner, ownerlen))
		return false;
	if (section == 0 && wire_name_equal(owner, ownerlen, n->chain, n->chainlen)) {
		if (type == WIRE_TYPE_CNAME && n->qtype != WIRE_TYPE_CNAME) {
			memcpy(n->cut_owner, owner, ownerlen);
			n->cut_ownerlen = ownerlen;
			memcpy(n->chain, rd->target, rd->targetlen);
			n->chainlen = rd->targetlen;
			n->cut = is_local(p, rd->target, rd->targetlen);
		}
		return true;
	}
	return !p->bailiwick.name ||
	       wire_name_is_subdomain(owner, ownerlen, p->bailiwick.name, p->bailiwick.len);
}

/* One RR: copy it unless it is OPT or scrubbed. @return 1 copied, 0 skipped, or an error. */
static int copy_rr(wire_reader_t *r, wire_writer_t *w, ctab_t *t, int section, norm_t *n)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t namelen, rdlen_at, mark = w->pos;
	uint16_t type, cls, rdlen;
	uint32_t ttl;
	rdata_t rd = {.soa_min = 0, .targetlen = 0};
	int ret;

	if ((ret = wire_get_name(r, name, &namelen)) < 0 || (ret = wire_get_u16(r, &type)) < 0 ||
	    (ret = wire_get_u16(r, &cls)) < 0 || (ret = wire_get_u32(r, &ttl)) < 0 ||
	    (ret = wire_get_u16(r, &rdlen)) < 0)
		return ret;
	if (wire_remaining(r) < rdlen)
		return ERR_TRUNC;
	size_t end = r->pos + rdlen;
	if (type == WIRE_TYPE_OPT) {
		if (section != 2 || namelen != 1)
			return ERR_MALFORMED;
		return wire_skip(r, rdlen) < 0 ? ERR_TRUNC : 0;
	}
	if (ttl > 0x7FFFFFFFu)
		ttl = 0; /* RFC 2181 §8 */
	if (ttl > n->max_ttl)
		ttl = n->max_ttl; /* never promise a client more than we would keep */
	if ((ret = put_name(w, t, name, namelen, true)) < 0 || (ret = wire_put_u16(w, type)) < 0 ||
	    (ret = wire_put_u16(w, cls)) < 0 || (ret = wire_put_u32(w, ttl)) < 0)
		return ret;
	rdlen_at = w->pos;
	if ((ret = wire_put_u16(w, 0)) < 0 || (ret = copy_rdata(r, end, type, w, t, &rd)) < 0)
		return ret;
	/* Validated in full either way; a scrubbed RR leaves no bytes and no targets. */
	if (!keep_rr(n, section, name, namelen, type, &rd)) {
		n->scrubbed++;
		ctab_rollback(t, mark);
		w->pos = mark;
		return 0;
	}
	wire_patch_u16(w, rdlen_at, (uint16_t)(w->pos - rdlen_at - 2));
	if (ttl < n->min_ttl)
		n->min_ttl = ttl;
	if (type == WIRE_TYPE_SOA && section == 1 && !n->soa_seen) {
		n->soa_seen = true;
		n->soa_neg = ttl < rd.soa_min ? ttl : rd.soa_min;
	}
	return 1;
}

/* How long a normalized answer may be cached, in seconds (0 = not at all). */
static uint32_t cache_ttl(uint16_t flags, uint16_t ancount, const norm_t *n)
{
	uint16_t rcode = flags & FLAG_RCODE;
	uint32_t ttl = n->min_ttl;

	if (flags & WIRE_FLAG_TC)
		return 0;
	if (n->cut)
		return 0; /* the local part is read from the store for every reply */
	if (rcode == WIRE_RCODE_SERVFAIL)
		return CACHE_SERVFAIL_TTL < n->max_ttl ? CACHE_SERVFAIL_TTL : n->max_ttl;
	if (rcode == WIRE_RCODE_NXDOMAIN || (rcode == WIRE_RCODE_NOERROR && ancount == 0)) {
		if (!n->soa_seen)
			return 0; /* RFC 2308 §5: no SOA, no negative caching */
		if (n->soa_neg < ttl)
			ttl = n->soa_neg;
	} else if (rcode != WIRE_RCODE_NOERROR) {
		return 0;
	}
	return ttl > n->max_ttl ? n->max_ttl : ttl;
}

static int parse_question(wire_reader_t *r, cache_msg_t *m)
{
	int ret;

	if ((ret = wire_get_name(r, m->qname, &m->qnamelen)) < 0 ||
	    (ret = wire_get_u16(r, &m->qtype)) < 0 || (ret = wire_get_u16(r, &m->qclass)) < 0)
		return ret;
	wire_name_lower(m->qname, m->qnamelen);
	return 0;
}

static int put_header_question(wire_writer_t *w, ctab_t *t, const cache_msg_t *m)
{
	int ret;

	if ((ret = wire_put_u16(w, m->id)) < 0 || (ret = wire_put_u16(w, m->flags)) < 0 ||
	    (ret = wire_put_u16(w, 1)) < 0 || (ret = wire_put_u16(w, 0)) < 0 ||
	    (ret = wire_put_u16(w, 0)) < 0 || (ret = wire_put_u16(w, 0)) < 0 ||
	    (ret = put_name(w, t, m->qname, m->qnamelen, false)) < 0 ||
	    (ret = wire_put_u16(w, m->qtype)) < 0 || (ret = wire_put_u16(w, m->qclass)) < 0)
		return ret;
	return 0;
}

static void norm_init(norm_t *n, const cache_policy_t *pol, const cache_msg_t *m)
{
	memset(n, 0, sizeof(*n));
	n->pol = pol;
	n->max_ttl = pol && pol->max_ttl ? pol->max_ttl : CACHE_MAX_TTL;
	n->min_ttl = UINT32_MAX;
	n->qtype = m->qtype;
	memcpy(n->chain, m->qname, m->qnamelen);
	n->chainlen = m->qnamelen;
}

int cache_msg_parse(const uint8_t *msg, size_t len, const cache_policy_t *pol, uint8_t *out,
		    size_t cap, size_t *outlen, cache_msg_t *info)
{
	wire_reader_t r;
	wire_writer_t w;
	ctab_t t;
	norm_t n;
	cache_msg_t m;
	uint16_t qd, counts[3], kept[3] = {0, 0, 0};
	int ret;

	memset(&m, 0, sizeof(m));
	wire_reader_init(&r, msg, len);
	if ((ret = wire_get_u16(&r, &m.id)) < 0 || (ret = wire_get_u16(&r, &m.flags)) < 0 ||
	    (ret = wire_get_u16(&r, &qd)) < 0 || (ret = wire_get_u16(&r, &counts[0])) < 0 ||
	    (ret = wire_get_u16(&r, &counts[1])) < 0 || (ret = wire_get_u16(&r, &counts[2])) < 0)
		return ret;
	if (qd != 1)
		return ERR_MALFORMED;
	if ((ret = parse_question(&r, &m)) < 0)
		return ret;
	ctab_init(&t);
	norm_init(&n, pol, &m);
	wire_writer_init(&w, out, cap);
	if ((ret = put_header_question(&w, &t, &m)) < 0)
		return ret;
	for (int s = 0; s < 3; s++) {
		for (unsigned i = 0; i < counts[s]; i++) {
			if ((ret = copy_rr(&r, &w, &t, s, &n)) < 0)
				return ret;
			kept[s] += (uint16_t)ret;
		}
	}
	m.scrubbed = n.scrubbed;
	if (n.cut) {
		/* What the upstream said about our name (NXDOMAIN, ...) is not the answer. */
		m.flags = (uint16_t)(m.flags & ~FLAG_RCODE);
		memcpy(m.local, n.chain, n.chainlen);
		m.locallen = n.chainlen;
		wire_patch_u16(&w, 2, m.flags);
	}
	wire_patch_u16(&w, 6, kept[0]);
	wire_patch_u16(&w, 8, kept[1]);
	wire_patch_u16(&w, 10, kept[2]);
	m.ancount = kept[0];
	m.ttl = cache_ttl(m.flags, kept[0], &n);
	*info = m;
	*outlen = w.pos;
	return 0;
}

int cache_msg_splice(uint8_t *norm, size_t len, size_t cap, const uint8_t *rep, size_t replen,
		     size_t *outlen)
{
	wire_reader_t r;
	wire_writer_t w;
	ctab_t t;
	norm_t n;
	cache_msg_t m;
	uint8_t name[WIRE_NAME_MAX];
	size_t namelen;
	uint16_t id, flags, qd, counts[3], kept[2] = {0, 0};
	int ret;

	/* Appending answers is only possible when nothing follows the answer section. */
	if (len < WIRE_HDR_LEN || len > cap || wire_read_u16(norm + 8) || wire_read_u16(norm + 10))
		return ERR_INVAL;
	wire_reader_init(&r, rep, replen);
	if ((ret = wire_get_u16(&r, &id)) < 0 || (ret = wire_get_u16(&r, &flags)) < 0 ||
	    (ret = wire_get_u16(&r, &qd)) < 0 || (ret = wire_get_u16(&r, &counts[0])) < 0 ||
	    (ret = wire_get_u16(&r, &counts[1])) < 0 || (ret = wire_get_u16(&r, &counts[2])) < 0)
		return ret;
	if (qd != 1)
		return ERR_MALFORMED;
	if ((ret = wire_get_name(&r, name, &namelen)) < 0 || (ret = wire_skip(&r, 4)) < 0)
		return ret;
	memset(&m, 0, sizeof(m));
	ctab_init(&t);
	norm_init(&n, NULL, &m);
	wire_writer_init(&w, norm, cap);
	w.pos = len; /* bytes past len may change on failure; the message itself does not */
	for (int s = 0; s < 2; s++) {
		for (unsigned i = 0; i < counts[s]; i++) {
			if ((ret = copy_rr(&r, &w, &t, s, &n)) < 0)
				return ret;
			kept[s] += (uint16_t)ret;
		}
	}
	wire_patch_u16(&w, 2,
		       (uint16_t)((wire_read_u16(norm + 2) & ~FLAG_RCODE) | (flags & FLAG_RCODE)));
	wire_patch_u16(&w, 6, (uint16_t)(wire_read_u16(norm + 6) + kept[0]));
	wire_patch_u16(&w, 8, kept[1]);
	*outlen = w.pos;
	return 0;
}

int cache_msg_rcode(const query_t *q, uint16_t rcode, uint8_t *out, size_t cap, size_t *outlen,
		    cache_msg_t *info)
{
	wire_writer_t w;
	ctab_t t;
	norm_t n;
	cache_msg_t m;
	int ret;

	memset(&m, 0, sizeof(m));
	m.id = q->id;
	m.flags = (uint16_t)(WIRE_FLAG_QR | WIRE_FLAG_RD | WIRE_FLAG_RA | (rcode & FLAG_RCODE));
	m.qtype = q->qtype;
	m.qclass = q->qclass;
	if (q->qnamelen == 0 || q->qnamelen > WIRE_NAME_MAX)
		return ERR_INVAL;
	memcpy(m.qname, q->qname, q->qnamelen);
	m.qnamelen = q->qnamelen;
	wire_name_lower(m.qname, m.qnamelen);
	ctab_init(&t);
	wire_writer_init(&w, out, cap);
	if ((ret = put_header_question(&w, &t, &m)) < 0)
		return ret;
	norm_init(&n, NULL, &m);
	m.ttl = cache_ttl(m.flags, 0, &n);
	*info = m;
	*outlen = w.pos;
	return 0;
}

/* ---- replies ----------------------------------------------------------- */

static uint16_t reply_flags(uint16_t up, const query_t *q)
{
	uint16_t f = (uint16_t)(WIRE_FLAG_QR | WIRE_FLAG_RA | (up & (FLAG_OPCODE | FLAG_RCODE)));

	f |= up & WIRE_FLAG_TC;
	f |= q->flags & (WIRE_FLAG_RD | WIRE_FLAG_CD);
	if ((up & WIRE_FLAG_AD) && (q->edns_do || (q->flags & WIRE_FLAG_AD)))
		f |= WIRE_FLAG_AD; /* RFC 6840 §5.8 */
	return f;
}

/* Lower every RR TTL of a (normalized, hence valid) message by age; with `fixed`,
 * set every TTL to age instead (serve-stale). */
static int age_ttls(uint8_t *msg, size_t len, uint32_t age, bool fixed)
{
	wire_reader_t r;
	uint8_t name[WIRE_NAME_MAX];
	size_t namelen;
	uint16_t n[3], rdlen;
	uint32_t ttl;
	int ret;

	wire_reader_init(&r, msg, len);
	r.pos = 6;
	if ((ret = wire_get_u16(&r, &n[0])) < 0 || (ret = wire_get_u16(&r, &n[1])) < 0 ||
	    (ret = wire_get_u16(&r, &n[2])) < 0 || (ret = wire_get_name(&r, name, &namelen)) < 0 ||
	    (ret = wire_skip(&r, 4)) < 0)
		return ret;
	for (unsigned i = 0; i < (unsigned)n[0] + n[1] + n[2]; i++) {
		if ((ret = wire_get_name(&r, name, &namelen)) < 0 || (ret = wire_skip(&r, 4)) < 0)
			return ret;
		size_t at = r.pos;
		if ((ret = wire_get_u32(&r, &ttl)) < 0 || (ret = wire_get_u16(&r, &rdlen)) < 0 ||
		    (ret = wire_skip(&r, rdlen)) < 0)
			return ret;
		/* at + 4 <= len: read above */
		wire_write_u32(msg + at, fixed ? age : ttl > age ? ttl - age : 0);
	}
	return 0;
}

/* cache_msg_finish; `stale`: every TTL CACHE_STALE_TTL and EDE 3 in the OPT. */
static int finish(const uint8_t *norm, size_t len, const query_t *q, uint16_t our_udp, uint32_t age,
		  bool stale, int ede, uint8_t *resp, size_t cap, size_t *resplen)
{
	size_t qend = WIRE_HDR_LEN + q->qnamelen + 4;
	size_t limit = q->resp_limit >= 512 ? q->resp_limit : 512;
	/* The client's cookie rides along; EDE 3 "Stale Answer" (RFC 8767 §6). No NSID: the
	 * cache keeps no conf (a reload may free it), and NSID names who answers locally. */
	edns_reply_t o = {.udp = our_udp,
			  .do_bit = q->edns_do,
			  .ede = stale ? EDNS_EDE_STALE : ede,
			  .cookie = q->has_cookie ? q->cookie : NULL};
	size_t opt = q->edns ? edns_opt_len(&o) : 0;
	bool trunc;
	wire_writer_t w;
	int ret;

	if (limit > cap)
		limit = cap;
	if (len < qend || !wire_name_equal(norm + WIRE_HDR_LEN, q->qnamelen, q->qname, q->qnamelen))
		return ERR_INVAL;
	trunc = len + opt > limit;
	if (qend + opt > limit)
		return ERR_TOOBIG;
	wire_writer_init(&w, resp, cap);
	if ((ret = wire_put_bytes(&w, norm, trunc ? qend : len)) < 0)
		return ret;
	wire_write_u16(resp, q->id);
	wire_write_u16(resp + 2,
		       reply_flags(wire_read_u16(norm + 2), q) | (trunc ? WIRE_FLAG_TC : 0));
	/* The client's spelling of the name (0x20); owners pointing at it follow. */
	memcpy(resp + WIRE_HDR_LEN, q->qname, q->qnamelen);
	if (trunc) {
		wire_write_u16(resp + 6, 0);
		wire_write_u16(resp + 8, 0);
		wire_write_u16(resp + 10, 0);
	} else if (stale && (ret = age_ttls(resp, len, CACHE_STALE_TTL, true)) < 0) {
		return ret;
	} else if (!stale && age > 0 && (ret = age_ttls(resp, len, age, false)) < 0) {
		return ret;
	}
	if (opt) {
		o.rcode = (uint16_t)(wire_read_u16(resp + 2) & 0xf);
		if (edns_put_opt(&w, &o) < 0)
			return ERR_TOOBIG;
		wire_write_u16(resp + 10, (uint16_t)(wire_read_u16(resp + 10) + 1));
	}
	*resplen = w.pos;
	return 0;
}

int cache_msg_finish(const uint8_t *norm, size_t len, const query_t *q, uint16_t our_udp,
		     uint32_t age, uint8_t *resp, size_t cap, size_t *resplen)
{
	return finish(norm, len, q, our_udp, age, false, EDNS_EDE_NONE, resp, cap, resplen);
}

int cache_msg_finish_ede(const uint8_t *norm, size_t len, const query_t *q, uint16_t our_udp,
			 int ede, uint8_t *resp, size_t cap, size_t *resplen)
{
	return finish(norm, len, q, our_udp, 0, false, ede, resp, cap, resplen);
}

/* ---- the table --------------------------------------------------------- */

static void shard_free(struct shard *c);

static int shard_new(struct shard **out, size_t entries, uint64_t seed)
{
	struct shard *c;
	size_t nb = 2;

	if (entries == 0 || entries >= NIL / 2)
		return ERR_INVAL;
	while (nb < 2 * entries)
		nb <<= 1;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->e = calloc(entries, sizeof(*c->e));
	c->buckets = malloc(nb * sizeof(*c->buckets));
	if (!c->e || !c->buckets) {
		shard_free(c);
		return -ENOMEM;
	}
	memset(c->buckets, 0xFF, nb * sizeof(*c->buckets));
	/* No free list over the whole array: writing every entry would make all of it
	 * resident (cacheSize x CACHE_ENTRY_SIZE) before the first answer is cached. */
	c->cap = entries;
	c->mask = (uint32_t)(nb - 1);
	c->seed = seed;
	c->free_head = NIL;
	*out = c;
	return 0;
}

static void shard_free(struct shard *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; c->e && i < c->fresh; i++)
		if (c->e[i].used)
			free(c->e[i].msg);
	free(c->e);
	free(c->buckets);
	free(c);
}

/* What malloc took for a message: its usable size and glibc's size word. */
static size_t chunk_bytes(void *p)
{
	return malloc_usable_size(p) + sizeof(size_t);
}

/* Key bytes: lowercase qname, qtype, qclass (the question of a normalized message). */
typedef struct {
	uint8_t b[WIRE_NAME_MAX + 4];
	size_t len;
	uint8_t kbits;
	uint32_t hash;
} ckey_t;

static uint32_t key_hash(uint64_t seed, const uint8_t *p, size_t n, uint8_t kbits)
{
	uint64_t h = seed ^ 0xcbf29ce484222325ull ^ (kbits * 0x9E3779B97F4A7C15ull);

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

static void key_make(uint64_t seed, ckey_t *k, const uint8_t *qname, size_t qnamelen,
		     uint16_t qtype, uint16_t qclass, bool do_bit, bool cd)
{
	memcpy(k->b, qname, qnamelen);
	wire_name_lower(k->b, qnamelen);
	wire_write_u16(k->b + qnamelen, qtype);
	wire_write_u16(k->b + qnamelen + 2, qclass);
	k->len = qnamelen + 4;
	k->kbits = (uint8_t)((do_bit ? KEY_DO : 0) | (cd ? KEY_CD : 0));
	k->hash = key_hash(seed, k->b, k->len, k->kbits);
}

static uint32_t find(const struct shard *c, const ckey_t *k)
{
	for (uint32_t i = c->buckets[k->hash & c->mask]; i != NIL; i = c->e[i].next) {
		const struct entry *e = &c->e[i];
		if (e->hash == k->hash && e->keylen == k->len && e->kbits == k->kbits &&
		    memcmp(e->msg + WIRE_HDR_LEN, k->b, k->len) == 0)
			return i;
	}
	return NIL;
}

static void unlink_entry(struct shard *c, uint32_t idx)
{
	uint32_t *pp = &c->buckets[c->e[idx].hash & c->mask];

	while (*pp != idx)
		pp = &c->e[*pp].next;
	*pp = c->e[idx].next;
	__atomic_store_n(&c->msg_bytes, c->msg_bytes - chunk_bytes(c->e[idx].msg),
			 __ATOMIC_RELAXED);
	free(c->e[idx].msg);
	c->e[idx].msg = NULL;
	c->e[idx].used = 0;
	c->e[idx].next = c->free_head;
	c->free_head = idx;
	__atomic_store_n(&c->count, c->count - 1, __ATOMIC_RELAXED);
}

/* CLOCK: expired entries go first, then the first one not used since the last sweep. */
static void evict_one(struct shard *c, uint64_t now_ms)
{
	for (size_t n = 0; n < 2 * c->cap + 1; n++) {
		struct entry *e = &c->e[c->hand];
		uint32_t idx = (uint32_t)c->hand;

		c->hand = (c->hand + 1) % c->cap;
		if (!e->used)
			continue;
		if (e->expire_ms <= now_ms) {
			stat_inc(&c->st->expired);
			unlink_entry(c, idx);
			return;
		}
		if (e->ref) {
			e->ref = 0;
			continue;
		}
		stat_inc(&c->st->evictions);
		unlink_entry(c, idx);
		return;
	}
}

static int shard_insert(struct shard *c, const ckey_t *kp, const uint8_t *norm, size_t len,
			const cache_msg_t *info, uint64_t now_ms)
{
	const ckey_t k = *kp;
	uint32_t idx;
	struct entry *e;
	uint8_t *msg;

	if (info->ttl == 0)
		return ERR_INVAL;
	if (len > CACHE_MSG_MAX)
		return ERR_TOOBIG;
	/* Sized to the answer: a typical one is ~60-200 bytes, the old fixed slot 1,264. */
	if (!(msg = malloc(len)))
		return -ENOMEM;
	idx = find(c, &k);
	if (idx != NIL)
		unlink_entry(c, idx);
	if (c->free_head == NIL && c->fresh < c->cap) {
		idx = c->fresh;
		__atomic_store_n(&c->fresh, c->fresh + 1, __ATOMIC_RELAXED);
		e = &c->e[idx];
	} else {
		if (c->free_head == NIL)
			evict_one(c, now_ms);
		idx = c->free_head;
		assert(idx != NIL); /* a full table always has an entry CLOCK can take */
		e = &c->e[idx];
		c->free_head = e->next;
	}
	memcpy(msg, norm, len);
	e->msg = msg;
	__atomic_store_n(&c->msg_bytes, c->msg_bytes + chunk_bytes(msg), __ATOMIC_RELAXED);
	e->len = (uint16_t)len;
	e->keylen = (uint16_t)k.len;
	e->hash = k.hash;
	e->kbits = k.kbits;
	e->insert_ms = now_ms;
	e->expire_ms = now_ms + (uint64_t)info->ttl * 1000u;
	e->used = 1;
	e->ref = 0;
	e->prefetched = 0;
	e->next = c->buckets[k.hash & c->mask];
	c->buckets[k.hash & c->mask] = idx;
	__atomic_store_n(&c->count, c->count + 1, __ATOMIC_RELAXED);
	stat_inc(&c->st->inserts);
	return 0;
}

/* In the last tenth of its TTL, once: a refresh then lands before expiry for any TTL >= 1 s
 * the upstream answers within, and a SERVFAIL (5 s at most) is asked again at expiry only. */
static bool wants_prefetch(const struct entry *e, uint64_t now_ms)
{
	return !e->prefetched && (e->expire_ms - now_ms) * 10u <= e->expire_ms - e->insert_ms &&
	       (wire_read_u16(e->msg + 2) & 0xF) != WIRE_RCODE_SERVFAIL;
}

static int shard_lookup(struct shard *c, const ckey_t *kp, const query_t *q, uint16_t our_udp,
			uint64_t now_ms, uint8_t *resp, size_t cap, size_t *resplen, bool *prefetch)
{
	const ckey_t k = *kp;
	uint32_t idx;
	struct entry *e;

	idx = find(c, &k);
	if (idx == NIL) {
		stat_inc(&c->st->misses);
		return ERR_NOTFOUND;
	}
	e = &c->e[idx];
	if (e->expire_ms <= now_ms) {
		stat_inc(&c->st->misses);
		/* Kept for cache_lookup_stale while the serve-stale window lasts. */
		if (e->expire_ms + c->stale_ms > now_ms)
			return ERR_NOTFOUND;
		stat_inc(&c->st->expired);
		unlink_entry(c, idx);
		return ERR_NOTFOUND;
	}
	uint64_t age = (now_ms - e->insert_ms) / 1000u;
	int ret = cache_msg_finish(e->msg, e->len, q, our_udp, (uint32_t)age, resp, cap, resplen);
	if (ret < 0)
		return ret;
	e->ref = 1;
	stat_inc(&c->st->hits);
	if (prefetch && wants_prefetch(e, now_ms)) {
		e->prefetched = 1;
		*prefetch = true;
		stat_inc(&c->st->prefetches);
	}
	return 0;
}

static int shard_lookup_stale(struct shard *c, const ckey_t *kp, const query_t *q, uint16_t our_udp,
			      uint64_t now_ms, uint8_t *resp, size_t cap, size_t *resplen)
{
	const ckey_t k = *kp;
	uint32_t idx;
	struct entry *e;
	int ret;

	if (c->stale_ms == 0)
		return ERR_NOTFOUND;
	idx = find(c, &k);
	if (idx == NIL)
		return ERR_NOTFOUND;
	e = &c->e[idx];
	/* A remembered SERVFAIL is no answer to fall back on. */
	if (e->expire_ms + c->stale_ms <= now_ms ||
	    (wire_read_u16(e->msg + 2) & 0xF) == WIRE_RCODE_SERVFAIL)
		return ERR_NOTFOUND;
	bool stale = e->expire_ms <= now_ms;
	uint32_t age = stale ? 0 : (uint32_t)((now_ms - e->insert_ms) / 1000u);
	ret = finish(e->msg, e->len, q, our_udp, age, stale, EDNS_EDE_NONE, resp, cap, resplen);
	if (ret < 0)
		return ret;
	e->ref = 1;
	stat_inc(stale ? &c->st->stale : &c->st->hits);
	return 0;
}

static bool shard_has_stale(const struct shard *c, const ckey_t *kp, uint64_t now_ms)
{
	const ckey_t k = *kp;
	uint32_t idx;
	const struct entry *e;

	if (c->stale_ms == 0)
		return false;
	idx = find(c, &k);
	if (idx == NIL)
		return false;
	e = &c->e[idx];
	return e->expire_ms + c->stale_ms > now_ms &&
	       (wire_read_u16(e->msg + 2) & 0xF) != WIRE_RCODE_SERVFAIL;
}

/* ---- the shared cache: shards under spinlocks --------------------------- */

static void lock(struct shard *s, cache_stats_t *st)
{
	while (__atomic_test_and_set(&s->lock, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&s->lock, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
	s->st = st;
}

static void unlock(struct shard *s)
{
	__atomic_clear(&s->lock, __ATOMIC_RELEASE);
}

static void table_unref(struct table *t)
{
	if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (uint32_t i = 0; i < t->nshards; i++)
		if (t->sh[i])
			shard_free(t->sh[i]);
	free(t);
}

int cache_new(cache_t **out, size_t entries, uint64_t seed)
{
	uint32_t n = 1, shift = 32;
	struct table *t;
	cache_t *c;
	int ret;

	if (entries == 0 || entries >= NIL / 2)
		return ERR_INVAL;
	/* Shards only when each holds >= 1,024 entries: a small cache keeps one exact CLOCK. */
	while (n < CACHE_SHARDS && entries / (2u * n) >= 1024u) {
		n *= 2;
		shift--;
	}
	t = calloc(1, sizeof(*t) + n * sizeof(t->sh[0]));
	if (!t)
		return -ENOMEM;
	t->nshards = n;
	t->shift = shift;
	t->refs = 1;
	for (uint32_t i = 0; i < n; i++)
		if ((ret = shard_new(&t->sh[i], (entries + n - 1) / n, seed)) < 0) {
			table_unref(t);
			return ret;
		}
	if (!(c = calloc(1, sizeof(*c)))) {
		table_unref(t);
		return -ENOMEM;
	}
	c->t = t;
	*out = c;
	return 0;
}

int cache_share(cache_t *c, cache_t **out)
{
	cache_t *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	__atomic_add_fetch(&c->t->refs, 1, __ATOMIC_RELAXED);
	h->t = c->t;
	*out = h;
	return 0;
}

void cache_free(cache_t *c)
{
	if (!c)
		return;
	table_unref(c->t);
	free(c);
}

static struct shard *shard_of(const cache_t *c, const ckey_t *k)
{
	return c->t->sh[c->t->shift >= 32 ? 0 : k->hash >> c->t->shift];
}

static void q_key(const cache_t *c, ckey_t *k, const query_t *q)
{
	key_make(c->t->sh[0]->seed, k, q->qname, q->qnamelen, q->qtype, q->qclass, q->edns_do,
		 (q->flags & WIRE_FLAG_CD) != 0);
}

int cache_insert(cache_t *c, const uint8_t *norm, size_t len, const cache_msg_t *info, bool do_bit,
		 bool cd, uint64_t now_ms)
{
	ckey_t k;
	struct shard *s;
	int ret;

	key_make(c->t->sh[0]->seed, &k, info->qname, info->qnamelen, info->qtype, info->qclass,
		 do_bit, cd);
	s = shard_of(c, &k);
	lock(s, &c->st);
	ret = shard_insert(s, &k, norm, len, info, now_ms);
	unlock(s);
	return ret;
}

int cache_lookup(cache_t *c, const query_t *q, uint16_t our_udp, uint64_t now_ms, uint8_t *resp,
		 size_t cap, size_t *resplen)
{
	return cache_lookup_prefetch(c, q, our_udp, now_ms, resp, cap, resplen, NULL);
}

int cache_lookup_prefetch(cache_t *c, const query_t *q, uint16_t our_udp, uint64_t now_ms,
			  uint8_t *resp, size_t cap, size_t *resplen, bool *prefetch)
{
	ckey_t k;
	struct shard *s;
	int ret;

	if (q->qnamelen == 0 || q->qnamelen > WIRE_NAME_MAX)
		return ERR_NOTFOUND;
	q_key(c, &k, q);
	s = shard_of(c, &k);
	lock(s, &c->st);
	ret = shard_lookup(s, &k, q, our_udp, now_ms, resp, cap, resplen, prefetch);
	unlock(s);
	return ret;
}

static bool entry_is_name(const struct entry *e, const uint8_t *lname, size_t len)
{
	return e->used && e->keylen == len + 4 && memcmp(e->msg + WIRE_HDR_LEN, lname, len) == 0;
}

/*
 * Call fn for every entry whose question name is `name` (wire, any case), one
 * shard lock at a time; fn may unlink the entry. @return how many there were.
 */
static size_t walk_name(cache_t *c, const uint8_t *name, size_t len,
			void (*fn)(struct shard *sh, uint32_t idx, size_t nth, void *ctx),
			void *ctx)
{
	uint8_t lname[WIRE_NAME_MAX];
	size_t n = 0;

	if (len == 0 || len > WIRE_NAME_MAX)
		return 0;
	memcpy(lname, name, len);
	wire_name_lower(lname, len);
	for (uint32_t k = 0; k < c->t->nshards; k++) {
		struct shard *sh = c->t->sh[k];

		lock(sh, &c->st);
		for (size_t i = 0; i < sh->fresh; i++)
			if (entry_is_name(&sh->e[i], lname, len))
				fn(sh, (uint32_t)i, n++, ctx);
		unlock(sh);
	}
	return n;
}

typedef struct {
	cache_name_entry_t *out;
	size_t cap, len;
	uint64_t now_ms;
} show_ctx_t;

static void show_one(struct shard *sh, uint32_t idx, size_t nth, void *ctx)
{
	show_ctx_t *s = ctx;
	const struct entry *e = &sh->e[idx];

	if (nth >= s->cap)
		return;
	s->out[nth] = (cache_name_entry_t){
	    .qtype = wire_read_u16(e->msg + WIRE_HDR_LEN + s->len),
	    .rcode = (uint16_t)(e->msg[3] & 0x0F),
	    .ttl_left =
		e->expire_ms > s->now_ms ? (uint32_t)((e->expire_ms - s->now_ms) / 1000u) : 0,
	    .do_bit = (e->kbits & KEY_DO) != 0,
	    .cd = (e->kbits & KEY_CD) != 0,
	};
}

size_t cache_name_entries(cache_t *c, const uint8_t *name, size_t len, uint64_t now_ms,
			  cache_name_entry_t *out, size_t cap)
{
	show_ctx_t s = {.out = out, .cap = cap, .len = len, .now_ms = now_ms};

	return walk_name(c, name, len, show_one, &s);
}

static void flush_one(struct shard *sh, uint32_t idx, size_t nth, void *ctx)
{
	(void)nth;
	(void)ctx;
	unlink_entry(sh, idx);
}

size_t cache_flush_name(cache_t *c, const uint8_t *name, size_t len)
{
	return walk_name(c, name, len, flush_one, NULL);
}

void cache_set_stale(cache_t *c, uint32_t seconds)
{
	for (uint32_t i = 0; i < c->t->nshards; i++) {
		lock(c->t->sh[i], &c->st);
		c->t->sh[i]->stale_ms = (uint64_t)seconds * 1000u;
		unlock(c->t->sh[i]);
	}
}

int cache_lookup_stale(cache_t *c, const query_t *q, uint16_t our_udp, uint64_t now_ms,
		       uint8_t *resp, size_t cap, size_t *resplen)
{
	ckey_t k;
	struct shard *s;
	int ret;

	if (q->qnamelen == 0 || q->qnamelen > WIRE_NAME_MAX)
		return ERR_NOTFOUND;
	q_key(c, &k, q);
	s = shard_of(c, &k);
	lock(s, &c->st);
	ret = shard_lookup_stale(s, &k, q, our_udp, now_ms, resp, cap, resplen);
	unlock(s);
	return ret;
}

bool cache_has_stale(cache_t *c, const query_t *q, uint64_t now_ms)
{
	ckey_t k;
	struct shard *s;
	bool ret;

	if (q->qnamelen == 0 || q->qnamelen > WIRE_NAME_MAX)
		return false;
	q_key(c, &k, q);
	s = shard_of(c, &k);
	lock(s, &c->st);
	ret = shard_has_stale(s, &k, now_ms);
	unlock(s);
	return ret;
}

size_t cache_count(const cache_t *c)
{
	size_t n = 0;

	for (uint32_t i = 0; i < c->t->nshards; i++)
		n += __atomic_load_n(&c->t->sh[i]->count, __ATOMIC_RELAXED);
	return n;
}

size_t cache_capacity(const cache_t *c)
{
	size_t n = 0;

	for (uint32_t i = 0; i < c->t->nshards; i++)
		n += c->t->sh[i]->cap;
	return n;
}

size_t cache_memory(const cache_t *c)
{
	size_t n = sizeof(*c->t) + c->t->nshards * sizeof(struct shard);

	for (uint32_t i = 0; i < c->t->nshards; i++) {
		const struct shard *s = c->t->sh[i];
		n += __atomic_load_n(&s->msg_bytes, __ATOMIC_RELAXED) +
		     (size_t)__atomic_load_n(&s->fresh, __ATOMIC_RELAXED) * sizeof(struct entry) +
		     ((size_t)s->mask + 1) * sizeof(*s->buckets);
	}
	return n;
}
