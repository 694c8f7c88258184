/*
 * sync.c: etcd keys -> the store's `etcd` source. The raw copy of each key is
 * kept under store kv namespace "etcd" as
 *     name key (common/wire.h) || 0x00 || etcd key  ->  mod_revision (u64 BE) || value
 * so that a prefix walk over a name key finds exactly the keys of its subtree
 * in name order. A name's records are re-derived from that walk (map_build)
 * whenever a key at or below it changes; names from the changed key's up to,
 * not including, its zone apex are touched (the apex's own answers are
 * synthesized by the server).
 */
#include "watchers/sync.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "store/store.h"
#include "watchers/map.h"

#define KV_NS STORE_ETCD_KV_NS
#define KV_NS_HEALTH "etcdh"
#define SYNC_SOURCE "etcd"
/* "dns" then "ns" as key labels (reversed order): ns.dns.<apex> holds the zone's NS. */
#define NS_DNS_KEY "\003dns\002ns"

enum {
	C_EVENTS,
	C_BAD,
	C_REREADS,
	C_ERRORS,
	C_LAT_SUM,
	C_LAT0, /* STORE_ETCD_LAT_NBOUNDS + 1 buckets */
	C_N = C_LAT0 + STORE_ETCD_LAT_NBOUNDS + 1,
};

struct sync {
	uint64_t pending[C_N]; /* counted since the last commit, added to meta by the next */
	int64_t seen_rev;
	const conf_t *conf;
	store_t *store;
	store_wtxn_t *w;
	int src;
	uint8_t *dirty; /* names to re-derive: (len u8, name key) records */
	size_t dlen, dcap;
	sync_stats_t stats;
};

int sync_new(sync_t **out, const conf_t *conf, store_t *store)
{
	sync_t *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->conf = conf;
	s->store = store;
	s->src = -1;
	*out = s;
	return 0;
}

void sync_free(sync_t *s)
{
	if (!s)
		return;
	sync_abort(s);
	free(s->dirty);
	free(s);
}

const sync_stats_t *sync_stats(const sync_t *s)
{
	return &s->stats;
}

bool sync_open(const sync_t *s)
{
	return s->w != NULL;
}

int sync_stored_rev(sync_t *s, int64_t *rev)
{
	store_rtxn_t *t = NULL;
	uint64_t v = 0;
	int ret = store_read_begin(s->store, &t);

	if (ret < 0)
		return ret;
	ret = store_meta_u64(t, STORE_ETCD_REV, &v);
	store_read_end(t);
	if (ret == ERR_NOTFOUND)
		v = 0;
	else if (ret < 0)
		return ret;
	*rev = (int64_t)v;
	return 0;
}

int sync_stored_cluster(sync_t *s, uint64_t *id)
{
	store_rtxn_t *t = NULL;
	uint64_t v = 0;
	int ret = store_read_begin(s->store, &t);

	if (ret < 0)
		return ret;
	ret = store_meta_u64(t, STORE_ETCD_CLUSTER, &v);
	store_read_end(t);
	if (ret < 0 && ret != ERR_NOTFOUND)
		return ret;
	*id = ret == 0 ? v : 0;
	return 0;
}

int sync_set_cluster(sync_t *s, uint64_t id)
{
	return id ? store_meta_put_u64(s->w, STORE_ETCD_CLUSTER, id) : 0;
}

int sync_begin(sync_t *s)
{
	int ret;

	if (s->w)
		return 0;
	if ((ret = store_write_begin(s->store, &s->w)) < 0)
		return ret;
	if ((ret = store_source_id(s->w, SYNC_SOURCE)) < 0) {
		sync_abort(s);
		return ret;
	}
	s->src = ret;
	s->dlen = 0;
	return 0;
}

void sync_abort(sync_t *s)
{
	uint64_t errors = s->pending[C_ERRORS];

	store_write_abort(s->w);
	s->w = NULL;
	s->dlen = 0;
	/* What the batch counted is undone with it (its events come again); failures stay. */
	memset(s->pending, 0, sizeof(s->pending));
	s->pending[C_ERRORS] = errors;
}

/* Addresses whose health record the etcd source wrote (others' records stay). */
typedef struct {
	uint8_t (*addrs)[17]; /* len, address */
	size_t n, cap;
} addrs_t;

static int collect_health(void *ctx, const uint8_t *addr, size_t addrlen, int status,
			  uint64_t changed_ms, const char *source)
{
	addrs_t *a = ctx;

	(void)status;
	(void)changed_ms;
	if (!source || strcmp(source, SYNC_SOURCE) != 0 || addrlen > 16)
		return 0;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		uint8_t(*na)[17] = realloc(a->addrs, cap * sizeof(*na));
		if (!na)
			return -ENOMEM;
		a->addrs = na;
		a->cap = cap;
	}
	a->addrs[a->n][0] = (uint8_t)addrlen;
	memcpy(a->addrs[a->n] + 1, addr, addrlen);
	a->n++;
	return 0;
}

int sync_reset(sync_t *s)
{
	addrs_t a = {0};
	int ret;

	s->dlen = 0;
	if ((ret = store_source_clear(s->w, s->src)) < 0 || (ret = store_kv_clear(s->w, KV_NS)) < 0)
		return ret;
	/* Collected first: deleting under the iterator's cursor is not allowed. */
	ret = store_health_iter(store_write_view(s->w), collect_health, &a);
	for (size_t i = 0; i < a.n && ret == 0; i++) {
		ret = store_health_del(s->w, a.addrs[i] + 1, a.addrs[i][0]);
		ret = ret == ERR_NOTFOUND ? 0 : ret;
	}
	free(a.addrs);
	if (ret == 0)
		ret = store_kv_clear(s->w, STORE_OWNER_NS_ETCD);
	return ret < 0 ? ret : store_kv_clear(s->w, KV_NS_HEALTH);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	wire_write_u32(p, (uint32_t)(v >> 32));
	wire_write_u32(p + 4, (uint32_t)v);
}

static uint64_t get_u64(const uint8_t *p)
{
	return ((uint64_t)wire_read_u32(p) << 32) | wire_read_u32(p + 4);
}

static int mark_dirty(sync_t *s, const uint8_t *key, size_t klen)
{
	if (s->dlen + 1 + klen > s->dcap) {
		size_t cap = s->dcap ? s->dcap * 2 : 4096;
		uint8_t *nd = realloc(s->dirty, cap);
		if (!nd)
			return -ENOMEM;
		s->dirty = nd;
		s->dcap = cap;
	}
	s->dirty[s->dlen] = (uint8_t)klen;
	memcpy(s->dirty + s->dlen + 1, key, klen);
	s->dlen += 1 + klen;
	return 0;
}

/* The name and its ancestors strictly below its zone apex (just the name outside the zones). */
static int mark_name(sync_t *s, const uint8_t *name, size_t namelen)
{
	uint8_t key[WIRE_KEY_MAX], akey[WIRE_KEY_MAX];
	size_t klen, apexlen = 0, ends[WIRE_NAME_MAX], n = 0;
	int zi = conf_domain_of(s->conf, name, namelen), ret;

	if (wire_name_to_key(name, namelen, key, &klen) < 0)
		return 0;
	if (zi >= 0 &&
	    wire_name_to_key(s->conf->domains[zi], s->conf->domainlens[zi], akey, &apexlen) < 0)
		apexlen = 0;
	if ((ret = mark_dirty(s, key, klen)) < 0 || zi < 0)
		return ret;
	/* Below ns.dns.<apex>: the apex's NS rrset comes from there (CoreDNS). */
	if (klen >= apexlen + sizeof(NS_DNS_KEY) - 1 &&
	    memcmp(key + apexlen, NS_DNS_KEY, sizeof(NS_DNS_KEY) - 1) == 0 &&
	    (ret = mark_dirty(s, akey, apexlen)) < 0)
		return ret;
	/* Ancestors: the key cut after each label beyond the apex's, except the whole key. */
	for (size_t p = apexlen; p < klen; p += 1u + key[p])
		ends[n++] = p + 1u + key[p];
	for (size_t i = 0; i + 1 < n; i++)
		if ((ret = mark_dirty(s, key, ends[i])) < 0)
			return ret;
	return 0;
}

/* "kv" key of an etcd key at a name: name key || 0x00 || etcd key. */
static int kv_key(const uint8_t *name, size_t namelen, const etcd_kv_t *kv, uint8_t *out,
		  size_t cap, size_t *len)
{
	size_t nk;

	if (wire_name_to_key(name, namelen, out, &nk) < 0 || nk + 1 + kv->klen > cap)
		return ERR_TOOBIG;
	out[nk] = 0;
	memcpy(out + nk + 1, kv->key, kv->klen);
	*len = nk + 1 + kv->klen;
	return 0;
}

static void log_bad(sync_t *s, const etcd_kv_t *kv, const char *why)
{
	s->stats.bad_keys++;
	s->pending[C_BAD]++;
	log_warn("etcd: skipping key %.*s: %s", (int)(kv->klen > 300 ? 300 : kv->klen),
		 (const char *)kv->key, why);
}

/* Skip an event the store already has (same key at this revision or newer). */
static bool is_stale(sync_t *s, const char *ns, const uint8_t *k, size_t klen, int64_t rev)
{
	const uint8_t *v;
	size_t vlen;

	if (store_kv_get(store_write_view(s->w), ns, k, klen, &v, &vlen) == 0 && vlen >= 8 &&
	    (int64_t)get_u64(v) >= rev) {
		s->stats.stale++;
		return true;
	}
	return false;
}

static int apply_health(sync_t *s, const etcd_kv_t *kv, size_t plen)
{
	char ip[64];
	uint8_t addr[16], val[24];
	size_t alen = 4, n = kv->klen - plen;
	int st = 0, ret;

	while (n > 0 && kv->key[plen + n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(ip)) {
		log_bad(s, kv, "not an IP address after ip-monitor-path");
		return 0;
	}
	memcpy(ip, kv->key + plen, n);
	ip[n] = 0;
	if (inet_pton(AF_INET, ip, addr) != 1) {
		alen = 16;
		if (inet_pton(AF_INET6, ip, addr) != 1) {
			log_bad(s, kv, "not an IP address after ip-monitor-path");
			return 0;
		}
	}
	if (is_stale(s, KV_NS_HEALTH, kv->key, kv->klen, kv->mod_rev))
		return 0;
	s->stats.events++;
	s->pending[C_EVENTS]++;
	if (kv->del) {
		ret = store_health_del(s->w, addr, alen);
		if (ret == 0 || ret == ERR_NOTFOUND)
			ret = store_kv_del(s->w, KV_NS_HEALTH, kv->key, kv->klen);
		return ret == ERR_NOTFOUND ? 0 : ret;
	}
	if ((st = map_parse_health(kv->val, kv->vlen)) < 0) {
		log_bad(s, kv, "status is not {\"status\":\"UP\"} or {\"status\":\"DOWN\"}");
		return 0;
	}
	if ((ret = store_health_set(s->w, addr, alen, st, SYNC_SOURCE)) < 0)
		return ret;
	put_u64(val, (uint64_t)kv->mod_rev);
	memcpy(val + 8, addr, alen);
	return store_kv_put(s->w, KV_NS_HEALTH, kv->key, kv->klen, val, 8 + alen);
}

int sync_apply(sync_t *s, const etcd_kv_t *kv)
{
	const char *mon = s->conf->ip_monitor_path;
	uint8_t name[WIRE_NAME_MAX], k[STORE_KV_KEY_MAX];
	size_t namelen, klen, ml = mon ? strlen(mon) : 0;
	map_value_t *v = NULL;
	char why[160];
	int ret;

	if (ml && kv->klen > ml && memcmp(kv->key, mon, ml) == 0)
		return apply_health(s, kv, ml);
	ret = map_key_name(s->conf->etcd_prefix, kv->key, kv->klen, name, &namelen);
	if (ret == ERR_NOTFOUND)
		return 0;
	if (ret < 0 || kv_key(name, namelen, kv, k, sizeof(k), &klen) < 0) {
		log_bad(s, kv, "key does not make a DNS name");
		return 0;
	}
	if (is_stale(s, KV_NS, k, klen, kv->mod_rev))
		return 0;
	s->stats.events++;
	s->pending[C_EVENTS]++;
	if (kv->del) {
		ret = store_kv_del(s->w, KV_NS, k, klen);
		if (ret < 0 && ret != ERR_NOTFOUND)
			return ret;
		return mark_name(s, name, namelen);
	}
	if (!(v = malloc(sizeof(*v))))
		return -ENOMEM;
	/* Checked here to log it once; a bad value stays in the copy (it is still a key
	 * of the subtree) and map_parse_value leaves it out of every answer. */
	if (map_parse_value(kv->val, kv->vlen, v, why, sizeof(why)) < 0)
		log_bad(s, kv, why);
	free(v);
	uint8_t *val = malloc(8 + kv->vlen);
	if (!val)
		return -ENOMEM;
	put_u64(val, (uint64_t)kv->mod_rev);
	memcpy(val + 8, kv->val, kv->vlen);
	ret = store_kv_put(s->w, KV_NS, k, klen, val, 8 + kv->vlen);
	free(val);
	if (ret < 0) {
		log_bad(s, kv, err_str(ret));
		return ret == ERR_TOOBIG ? 0 : ret;
	}
	return mark_name(s, name, namelen);
}

/* ---- re-deriving one name ---- */

typedef struct {
	map_leaf_t *leaves;
	map_value_t **vals;
	uint8_t **names;
	size_t n, cap;
	uint8_t last[WIRE_KEY_MAX]; /* name key of the last entry kept */
	size_t lastlen;
	size_t last_from; /* first leaf index of that name */
	bool have_last;
	map_value_t scratch; /* parse target, copied out at its used size */
} collect_t;

static void drop_from(collect_t *c, size_t from)
{
	while (c->n > from) {
		c->n--;
		free(c->vals[c->n]);
		free(c->names[c->n]);
	}
}

static int collect_kv(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	collect_t *c = ctx;
	size_t nk = 0;
	char why[160];

	while (nk < klen && key[nk] != 0)
		nk += 1u + key[nk];
	if (nk >= klen || nk > WIRE_KEY_MAX || vlen < 8)
		return 0; /* not ours to judge: skip a malformed copy */
	bool same = c->have_last && nk == c->lastlen && memcmp(key, c->last, nk) == 0;
	if (!same) {
		/* A descendant of the previous name makes that name's keys inner ones. */
		if (c->have_last && nk > c->lastlen && memcmp(key, c->last, c->lastlen) == 0)
			drop_from(c, c->last_from);
		memcpy(c->last, key, nk);
		c->lastlen = nk;
		c->last_from = c->n;
		c->have_last = true;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		map_leaf_t *l = realloc(c->leaves, cap * sizeof(*l));
		if (l)
			c->leaves = l;
		map_value_t **v = realloc(c->vals, cap * sizeof(*v));
		if (v)
			c->vals = v;
		uint8_t **nm = realloc(c->names, cap * sizeof(*nm));
		if (nm)
			c->names = nm;
		if (!l || !v || !nm)
			return -ENOMEM;
		c->cap = cap;
	}
	uint8_t name[WIRE_NAME_MAX];
	size_t namelen;
	/* Still a key of the subtree when bad: it kept its place (inner-ness) above. */
	if (wire_key_to_name(key, nk, name, &namelen) < 0 ||
	    map_parse_value(val + 8, vlen - 8, &c->scratch, why, sizeof(why)) < 0)
		return 0;
	/* Only the text's used part is kept: a subtree's leaves are held at once. */
	size_t vsz = offsetof(map_value_t, text) + c->scratch.textlen;
	map_value_t *mv = malloc(vsz);
	uint8_t *nm = malloc(namelen);
	if (!mv || !nm) {
		free(mv);
		free(nm);
		return -ENOMEM;
	}
	memcpy(mv, &c->scratch, vsz);
	memcpy(nm, name, namelen);
	c->vals[c->n] = mv;
	c->names[c->n] = nm;
	c->leaves[c->n] = (map_leaf_t){.name = nm, .namelen = namelen, .v = mv};
	c->n++;
	return 0;
}

/* The records map_build gives one name, buffered to be written one rrset at a time. */
typedef struct {
	uint16_t type, rdlen;
	uint32_t ttl;
	size_t off; /* into bytes */
} rec_t;

typedef struct {
	rec_t *recs;
	size_t n, cap;
	uint8_t *bytes;
	size_t blen, bcap;
} recs_t;

static int emit_rr(void *ctx, uint16_t type, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
	recs_t *r = ctx;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		rec_t *nr = realloc(r->recs, cap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		r->recs = nr;
		r->cap = cap;
	}
	if (r->blen + rdlen > r->bcap) {
		size_t cap = r->bcap ? r->bcap : 4096;
		while (cap < r->blen + rdlen)
			cap *= 2;
		uint8_t *nb = realloc(r->bytes, cap);
		if (!nb)
			return -ENOMEM;
		r->bytes = nb;
		r->bcap = cap;
	}
	memcpy(r->bytes + r->blen, rdata, rdlen);
	r->recs[r->n++] = (rec_t){.type = type, .rdlen = rdlen, .ttl = ttl, .off = r->blen};
	r->blen += rdlen;
	return 0;
}

static const uint8_t *g_sort_bytes; /* qsort has no context argument; one thread */

static int cmp_rec(const void *a, const void *b)
{
	const rec_t *x = a, *y = b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->rdlen != y->rdlen)
		return x->rdlen < y->rdlen ? -1 : 1;
	return memcmp(g_sort_bytes + x->off, g_sort_bytes + y->off, x->rdlen);
}

/* Sort, drop duplicate rdata (answers are deduplicated), write each type's rrset once. */
static int write_recs(sync_t *s, const uint8_t *name, size_t namelen, recs_t *r)
{
	const uint8_t **rd = NULL;
	uint16_t *rl = NULL;
	int ret = 0;

	if (r->n == 0)
		return 0;
	g_sort_bytes = r->bytes;
	qsort(r->recs, r->n, sizeof(*r->recs), cmp_rec);
	if (!(rd = malloc(r->n * sizeof(*rd))) || !(rl = malloc(r->n * sizeof(*rl)))) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0, end; i < r->n && ret >= 0; i = end) {
		size_t k = 0;
		for (end = i; end < r->n && r->recs[end].type == r->recs[i].type; end++) {
			if (end > i && cmp_rec(&r->recs[end - 1], &r->recs[end]) == 0)
				continue;
			rd[k] = r->bytes + r->recs[end].off;
			rl[k++] = r->recs[end].rdlen;
		}
		ret = store_rrset_replace(s->w, s->src, name, namelen, r->recs[i].type,
					  r->recs[i].ttl, rd, rl, k);
		if (ret >= 0 && (size_t)ret < k) {
			char text[WIRE_NAME_TEXT_MAX];
			wire_name_to_text(name, namelen, text, sizeof(text));
			log_warn("etcd: %s: %zu of %zu type %u records fit one rrset (64 KiB); "
				 "the rest are left out",
				 text, (size_t)ret, k, r->recs[i].type);
		}
	}
out:
	free(rd);
	free(rl);
	return ret < 0 ? ret : 0;
}

static void collect_free(collect_t *c)
{
	drop_from(c, 0);
	free(c->leaves);
	free(c->vals);
	free(c->names);
	free(c);
}

/*
 * The apex's own records are synthesized by the server (SOA, NS ns1.<domain>),
 * except NS: the leaves below ns.dns.<apex> give it, as CoreDNS's etcd plugin
 * does. An IP host's NS target is the leaf's own name, whose A/AAAA (derived as
 * for any leaf) is the glue the server adds; a name host is the target itself.
 */
static int derive_apex_ns(sync_t *s, const uint8_t *name, size_t namelen, const uint8_t *key,
			  size_t klen)
{
	uint8_t nskey[WIRE_KEY_MAX];
	collect_t *c = calloc(1, sizeof(*c));
	recs_t r = {0};
	uint32_t ttl = UINT32_MAX;
	int ret;

	if (!c)
		return -ENOMEM;
	if (klen + sizeof(NS_DNS_KEY) - 1 > sizeof(nskey)) {
		free(c);
		return 0;
	}
	memcpy(nskey, key, klen);
	memcpy(nskey + klen, NS_DNS_KEY, sizeof(NS_DNS_KEY) - 1);
	ret = store_rr_del(s->w, s->src, name, namelen, WIRE_TYPE_NS, NULL, 0);
	if (ret == 0 || ret == ERR_NOTFOUND)
		ret = store_kv_iter(store_write_view(s->w), KV_NS, nskey,
				    klen + sizeof(NS_DNS_KEY) - 1, collect_kv, c);
	for (size_t i = 0; ret == 0 && i < c->n; i++)
		if (c->leaves[i].v->host_kind != MAP_HOST_NONE && c->leaves[i].v->ttl < ttl)
			ttl = c->leaves[i].v->ttl; /* one TTL per rrset: the smallest */
	for (size_t i = 0; ret == 0 && i < c->n; i++) {
		const map_leaf_t *l = &c->leaves[i];
		if (l->v->host_kind == MAP_HOST_NAME)
			ret =
			    emit_rr(&r, WIRE_TYPE_NS, ttl, l->v->target, (uint16_t)l->v->targetlen);
		else if (l->v->host_kind != MAP_HOST_NONE)
			ret = emit_rr(&r, WIRE_TYPE_NS, ttl, l->name, (uint16_t)l->namelen);
	}
	if (ret == 0)
		ret = write_recs(s, name, namelen, &r);
	free(r.recs);
	free(r.bytes);
	collect_free(c);
	s->stats.names++;
	return ret;
}

/*
 * The name's owner for the API (store.h STORE_OWNER_NS_ETCD): the "user" of its first
 * leaf that names one; none (the admin's) when no leaf does. Before map_build, which
 * reorders the leaves.
 */
static int note_owner(sync_t *s, const uint8_t *key, size_t klen, const collect_t *c)
{
	int ret;

	for (size_t i = 0; i < c->n; i++)
		if (c->leaves[i].v->user[0])
			return store_kv_put(s->w, STORE_OWNER_NS_ETCD, key, klen,
					    (const uint8_t *)c->leaves[i].v->user,
					    strlen(c->leaves[i].v->user));
	ret = store_kv_del(s->w, STORE_OWNER_NS_ETCD, key, klen);
	return ret == ERR_NOTFOUND ? 0 : ret;
}

static int derive(sync_t *s, const uint8_t *key, size_t klen)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t namelen;
	collect_t *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	if (wire_key_to_name(key, klen, name, &namelen) < 0) {
		free(c);
		return 0;
	}
	int zi = conf_domain_of(s->conf, name, namelen);
	if (zi >= 0 &&
	    wire_name_equal(name, namelen, s->conf->domains[zi], s->conf->domainlens[zi])) {
		free(c);
		return derive_apex_ns(s, name, namelen, key, klen);
	}
	ret = store_rr_del(s->w, s->src, name, namelen, 0, NULL, 0);
	if (ret == 0 || ret == ERR_NOTFOUND)
		ret = store_kv_iter(store_write_view(s->w), KV_NS, key, klen, collect_kv, c);
	if (ret == 0)
		ret = note_owner(s, key, klen, c);
	if (ret == 0) {
		recs_t r = {0};
		ret = map_build(name, namelen, c->leaves, c->n, emit_rr, &r);
		if (ret == 0)
			ret = write_recs(s, name, namelen, &r);
		free(r.recs);
		free(r.bytes);
	}
	drop_from(c, 0);
	free(c->leaves);
	free(c->vals);
	free(c->names);
	free(c);
	s->stats.names++;
	return ret;
}

static int cmp_dirty(const void *a, const void *b)
{
	const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
	size_t n = x[0] < y[0] ? x[0] : y[0];
	int c = memcmp(x + 1, y + 1, n);

	return c ? c : (int)x[0] - (int)y[0];
}

uint64_t sync_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void sync_note(sync_t *s, bool reread, bool error)
{
	s->pending[C_REREADS] += reread;
	s->pending[C_ERRORS] += error;
}

void sync_seen(sync_t *s, int64_t rev)
{
	if (rev > s->seen_rev)
		s->seen_rev = rev;
}

static void counter_key(unsigned i, char *out, size_t cap)
{
	static const unsigned bounds[] = STORE_ETCD_LAT_BOUNDS;
	static const char *const names[] = {STORE_ETCD_EVENTS, STORE_ETCD_BAD, STORE_ETCD_REREADS,
					    STORE_ETCD_ERRORS, STORE_ETCD_LAT_SUM};

	if (i < C_LAT0)
		snprintf(out, cap, "%s", names[i]);
	else if (i - C_LAT0 < STORE_ETCD_LAT_NBOUNDS)
		snprintf(out, cap, STORE_ETCD_LAT_FMT, bounds[i - C_LAT0]);
	else
		snprintf(out, cap, "%s", STORE_ETCD_LAT_INF);
}

/* Add the pending counters to meta in the batch's txn: they commit with it or not at all. */
static int flush_counters(sync_t *s, uint64_t arrival_us)
{
	static const unsigned bounds[] = STORE_ETCD_LAT_BOUNDS;
	store_rtxn_t *view = store_write_view(s->w);
	char key[64];
	uint64_t v;
	int ret;

	if (arrival_us) {
		uint64_t lat = sync_now_us() - arrival_us;
		unsigned b = 0;
		while (b < STORE_ETCD_LAT_NBOUNDS && lat > (uint64_t)bounds[b] * 1000)
			b++;
		s->pending[C_LAT0 + b]++;
		s->pending[C_LAT_SUM] += lat;
	}
	for (unsigned i = 0; i < C_N; i++) {
		if (!s->pending[i])
			continue;
		counter_key(i, key, sizeof(key));
		if (store_meta_u64(view, key, &v) < 0)
			v = 0;
		if ((ret = store_meta_put_u64(s->w, key, v + s->pending[i])) < 0)
			return ret;
	}
	if (s->seen_rev > 0 &&
	    (store_meta_u64(view, STORE_ETCD_SEEN_REV, &v) < 0 || (int64_t)v < s->seen_rev))
		return store_meta_put_u64(s->w, STORE_ETCD_SEEN_REV, (uint64_t)s->seen_rev);
	return 0;
}

int sync_commit(sync_t *s, int64_t rev)
{
	return sync_commit_at(s, rev, 0);
}

int sync_commit_at(sync_t *s, int64_t rev, uint64_t arrival_us)
{
	const uint8_t **v = NULL;
	size_t n = 0;
	int ret;

	if (!s->w)
		return ERR_INVAL;
	for (size_t p = 0; p < s->dlen; p += 1u + s->dirty[p])
		n++;
	if (n && !(v = malloc(n * sizeof(*v)))) {
		ret = -ENOMEM;
		goto fail;
	}
	n = 0;
	for (size_t p = 0; p < s->dlen; p += 1u + s->dirty[p])
		v[n++] = s->dirty + p;
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_dirty);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && cmp_dirty(&v[i - 1], &v[i]) == 0)
			continue;
		if ((ret = derive(s, v[i] + 1, v[i][0])) < 0)
			goto fail;
	}
	free(v);
	v = NULL;
	sync_seen(s, rev);
	if ((rev > 0 && (ret = store_meta_put_u64(s->w, STORE_ETCD_REV, (uint64_t)rev)) < 0) ||
	    (ret = flush_counters(s, arrival_us)) < 0)
		goto fail;
	ret = store_write_commit(s->w);
	s->w = NULL;
	s->dlen = 0;
	if (ret == 0) {
		s->stats.batches++;
		memset(s->pending, 0, sizeof(s->pending));
	}
	return ret;
fail:
	free(v);
	sync_abort(s);
	return ret;
}

/* ---- re-reading one name (POST /skydns/domainL1/<name>) ---- */

typedef struct {
	sync_t *s;
	const uint8_t *name;
	size_t namelen;
	uint8_t **have; /* the store's copies at or below the name: kv keys, (len u16, bytes) */
	bool *seen;
	size_t n, cap;
	sync_reread_t *out;
	int err;
} reread_t;

static int collect_have(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	reread_t *r = ctx;
	uint8_t *k;

	(void)val;
	(void)vlen;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		uint8_t **nh = realloc(r->have, cap * sizeof(*nh));
		bool *ns = nh ? realloc(r->seen, cap * sizeof(*ns)) : NULL;
		if (nh)
			r->have = nh;
		if (!ns)
			return -ENOMEM;
		r->seen = ns;
		r->cap = cap;
	}
	if (!(k = malloc(2 + klen)))
		return -ENOMEM;
	k[0] = (uint8_t)(klen >> 8);
	k[1] = (uint8_t)klen;
	memcpy(k + 2, key, klen);
	r->seen[r->n] = false;
	r->have[r->n++] = k;
	return 0;
}

static int cmp_have(const void *a, const void *b)
{
	const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
	size_t xl = ((size_t)x[0] << 8) | x[1], yl = ((size_t)y[0] << 8) | y[1];
	int c = memcmp(x + 2, y + 2, xl < yl ? xl : yl);

	return c ? c : (xl > yl) - (xl < yl);
}

/*
 * Drop the store's copy of kv's key unless it equals kv (same mod_revision and value).
 * A re-read cannot trust mod_revision alone: an etcd rebuilt as the same cluster
 * gives other values the same revisions. @return 1 dropped, 0 equal or absent, or <0.
 */
static int drop_unequal(sync_t *s, const etcd_kv_t *kv, const uint8_t *k, size_t klen)
{
	const uint8_t *v;
	size_t vlen;
	int ret;

	if (store_kv_get(store_write_view(s->w), KV_NS, k, klen, &v, &vlen) < 0)
		return 0;
	if (!kv->del && vlen == 8 + kv->vlen && (int64_t)get_u64(v) == kv->mod_rev &&
	    memcmp(v + 8, kv->val, kv->vlen) == 0)
		return 0;
	ret = store_kv_del(s->w, KV_NS, k, klen);
	return ret < 0 && ret != ERR_NOTFOUND ? ret : 1;
}

/* One key of the read: ours if at or below the name; put unless the copy equals it. */
static int reread_kv(void *ctx, const etcd_kv_t *kv)
{
	reread_t *r = ctx;
	uint8_t name[WIRE_NAME_MAX], k[2 + STORE_KV_KEY_MAX], *kp = k;
	size_t namelen, klen;
	uint64_t events = r->s->stats.events;
	int ret;

	if (kv->del ||
	    map_key_name(r->s->conf->etcd_prefix, kv->key, kv->klen, name, &namelen) < 0 ||
	    !wire_name_is_subdomain(name, namelen, r->name, r->namelen))
		return 0; /* a sibling such as www2 under the range's prefix www */
	r->out->keys++;
	if (kv_key(name, namelen, kv, k + 2, sizeof(k) - 2, &klen) == 0) {
		k[0] = (uint8_t)(klen >> 8);
		k[1] = (uint8_t)klen;
		uint8_t **hit = bsearch(&kp, r->have, r->n, sizeof(*r->have), cmp_have);
		if (hit)
			r->seen[hit - r->have] = true;
		if ((ret = drop_unequal(r->s, kv, k + 2, klen)) < 0)
			return r->err = ret;
	}
	if ((ret = sync_apply(r->s, kv)) < 0)
		return r->err = ret;
	if (r->s->stats.events > events)
		r->out->changed++;
	return 0;
}

int sync_reread_name(sync_t *s, const uint8_t *name, size_t namelen, sync_read_fn read, void *ctx,
		     sync_reread_t *out)
{
	reread_t r = {.s = s, .name = name, .namelen = namelen, .out = out};
	uint8_t key[WIRE_KEY_MAX];
	uint64_t stored = 0;
	size_t nk;
	int ret;

	*out = (sync_reread_t){0};
	if (s->w)
		return ERR_INVAL; /* a batch of the watch is open: not ours to commit */
	if (wire_name_to_key(name, namelen, key, &nk) < 0)
		return ERR_INVAL;
	if ((ret = sync_begin(s)) < 0)
		return ret;
	/* The write txn excludes the watch's commits until ours: the stored revision and
	 * the copies below stay as read here while etcd is read. */
	ret = store_meta_u64(store_write_view(s->w), STORE_ETCD_REV, &stored);
	if (ret < 0 && ret != ERR_NOTFOUND)
		goto out;
	out->stored_rev = (int64_t)stored;
	if ((ret = store_kv_iter(store_write_view(s->w), KV_NS, key, nk, collect_have, &r)) < 0)
		goto out;
	if (r.n > 1)
		qsort(r.have, r.n, sizeof(*r.have), cmp_have);
	if ((ret = read(ctx, reread_kv, &r, &out->rev)) < 0 || (ret = r.err) < 0)
		goto out;
	/* A read older than the store (a lagging member) could undo newer copies. */
	if (out->rev < out->stored_rev) {
		ret = ERR_CONFLICT;
		goto out;
	}
	/* Copies the read does not hold: deleted in etcd at or before out->rev (or never
	 * there, in a rebuilt etcd). A later put replayed by the watch still applies. */
	for (size_t i = 0; i < r.n; i++) {
		const uint8_t *k = r.have[i] + 2;
		size_t kl = ((size_t)r.have[i][0] << 8) | r.have[i][1], e = 0;
		if (r.seen[i])
			continue;
		while (e < kl && k[e] != 0)
			e += 1u + k[e];
		if (e >= kl)
			continue;
		etcd_kv_t kv = {
		    .key = k + e + 1, .klen = kl - e - 1, .mod_rev = out->rev, .del = true};
		/* The copy first: one at out->rev itself would be "stale" to the delete. */
		if ((ret = drop_unequal(s, &kv, k, kl)) < 0 || (ret = sync_apply(s, &kv)) < 0)
			goto out;
		out->dropped++;
	}
	/* rev 0: the stored revision stays; the watch goes on from it (its replay of what
	 * this read already holds is stale by each key's mod_revision and skipped). */
	ret = sync_commit(s, 0);
out:
	if (ret < 0)
		sync_abort(s);
	for (size_t i = 0; i < r.n; i++)
		free(r.have[i]);
	free(r.have);
	free(r.seen);
	return ret;
}
