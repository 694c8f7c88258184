/*
 * k8ssync.c: Kubernetes objects -> the store's `k8s` source. Objects are kept
 * in compact form (k8smap.h) in store kv namespaces; each batch re-derives the
 * Services it touched and swaps their records in its txn (k8ssync.h).
 */
#include "watchers/k8ssync.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "store/store.h"
#include "watchers/k8smap.h"

#define SOURCE "k8s"
#define NS_SVC "k8s-svc"
#define NS_EPS "k8s-eps"
#define NS_IDX "k8s-idx"
#define NS_OWN "k8s-own"
#define NS_RV "k8s-rv"
#define NS_POD "k8s-pod"
#define NS_PIP "k8s-pip"
#define KEY_MAX 400

enum { C_LAT_SUM = K8SSYNC_NCOUNTERS, C_LAT0, C_N = C_LAT0 + STORE_K8S_LAT_NBOUNDS + 1 };

static const char *const rv_keys[K8SSYNC_KINDS] = {"services", "endpointslices", "pods"};

struct k8ssync {
	const conf_t *conf;
	store_t *store;
	store_wtxn_t *w;
	int src;
	k8smap_conf_t mc;
	bool full;		   /* re-derive every Service at commit (a first list) */
	bool listed;		   /* a list is in this batch: the zone's records at commit */
	bool sweep[K8SSYNC_KINDS]; /* a list of the kind is in this batch */
	uint64_t *seen;		   /* hashes of the compact forms the lists named */
	size_t nseen, capseen;
	unsigned passed; /* objects put or Services derived since store_release_map */
	char **dirty;	 /* "<ns>/<svc>" to re-derive */
	size_t ndirty, capdirty;
	int64_t objects_delta;
	uint64_t pending[C_N];
};

uint64_t k8ssync_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int k8ssync_new(k8ssync_t **out, const conf_t *conf, store_t *store)
{
	k8ssync_t *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->conf = conf;
	s->store = store;
	s->src = -1;
	if (wire_name_from_text(conf->kube_domain, s->mc.zone, &s->mc.zonelen) < 0) {
		free(s);
		return ERR_INVAL;
	}
	wire_name_lower(s->mc.zone, s->mc.zonelen);
	s->mc.external_ips = conf->svc_ip_source && !strcmp(conf->svc_ip_source, "externalIP");
	*out = s;
	return 0;
}

static void dirty_clear(k8ssync_t *s)
{
	for (size_t i = 0; i < s->ndirty; i++)
		free(s->dirty[i]);
	s->ndirty = 0;
}

static void seen_clear(k8ssync_t *s)
{
	free(s->seen);
	s->seen = NULL;
	s->nseen = s->capseen = 0;
	memset(s->sweep, 0, sizeof(s->sweep));
}

void k8ssync_free(k8ssync_t *s)
{
	if (!s)
		return;
	k8ssync_abort(s);
	free(s->dirty);
	free(s);
}

void k8ssync_abort(k8ssync_t *s)
{
	store_write_abort(s->w);
	s->w = NULL;
	s->full = false;
	s->listed = false;
	s->objects_delta = 0;
	dirty_clear(s);
	seen_clear(s);
}

bool k8ssync_open(const k8ssync_t *s)
{
	return s->w != NULL;
}

void k8ssync_note(k8ssync_t *s, int counter)
{
	if (counter >= 0 && counter < K8SSYNC_NCOUNTERS)
		s->pending[counter]++;
}

int k8ssync_stored_rv(k8ssync_t *s, int kind, char *rv, size_t cap)
{
	store_rtxn_t *t = NULL;
	const uint8_t *v;
	size_t vlen;
	int ret = store_read_begin(s->store, &t);

	if (ret < 0)
		return ret;
	ret = store_kv_get(t, NS_RV, (const uint8_t *)rv_keys[kind], strlen(rv_keys[kind]), &v,
			   &vlen);
	if (ret == 0 && vlen < cap) {
		memcpy(rv, v, vlen);
		rv[vlen] = 0;
	} else if (ret == ERR_NOTFOUND || ret == 0) {
		rv[0] = 0;
		ret = 0;
	}
	store_read_end(t);
	return ret;
}

int k8ssync_begin(k8ssync_t *s)
{
	int ret;

	if (s->w)
		return 0;
	if ((ret = store_write_begin(s->store, &s->w)) < 0)
		return ret;
	if ((ret = store_source_id(s->w, SOURCE)) < 0) {
		k8ssync_abort(s);
		return ret;
	}
	s->src = ret;
	return 0;
}

int k8ssync_reset(k8ssync_t *s, int kind)
{
	if (!s->w || kind < 0 || kind >= K8SSYNC_KINDS)
		return ERR_INVAL;
	/* The kind's compact forms are not cleared: the list's objects are compared
	 * with them (put_form) and only those that changed are written; those the
	 * list did not name are deleted at commit (sweep). Clearing and rewriting all
	 * of them made a re-list dirty every page of the namespaces, which LMDB holds
	 * in memory until the commit, and doubled the store file. Only the Services
	 * whose forms changed are re-derived (marked as by events), so a re-list
	 * reads the compact forms but not every Service's records; a store that never
	 * synced derives them all. */
	uint64_t synced = 0;

	if (store_meta_u64(store_write_view(s->w), STORE_K8S_SYNCED, &synced) < 0 || !synced)
		s->full = true;
	s->sweep[kind] = true;
	s->listed = true;
	return 0;
}

/* FNV-1a over namespace and key: what a list named, 8 bytes per object. A
 * collision (p ~ n^2 / 2^65) would keep one deleted object until the next list. */
static uint64_t form_hash(const char *ns, const char *key)
{
	uint64_t h = 14695981039346656037ULL;

	for (const char *p = ns; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	h = (h ^ 0) * 1099511628211ULL;
	for (const char *p = key; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	return h;
}

static int seen_add(k8ssync_t *s, const char *ns, const char *key)
{
	if (s->nseen == s->capseen) {
		size_t cap = s->capseen ? s->capseen * 2 : 1024;
		uint64_t *n = realloc(s->seen, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->seen = n;
		s->capseen = cap;
	}
	s->seen[s->nseen++] = form_hash(ns, key);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int mark(k8ssync_t *s, const char *ns, const char *svc)
{
	char key[KEY_MAX];

	if (s->full || !svc[0])
		return 0;
	/* Duplicates are dropped at commit (sorted): a list marks thousands. */
	snprintf(key, sizeof(key), "%s/%s", ns, svc);
	if (s->ndirty == s->capdirty) {
		size_t cap = s->capdirty ? s->capdirty * 2 : 64;
		char **nd = realloc(s->dirty, cap * sizeof(*nd));
		if (!nd)
			return -ENOMEM;
		s->dirty = nd;
		s->capdirty = cap;
	}
	if (!(s->dirty[s->ndirty] = strdup(key)))
		return -ENOMEM;
	s->ndirty++;
	return 0;
}

static int mark_n(k8ssync_t *s, const char *ns, const char *svc, size_t len)
{
	char name[64];

	if (len >= sizeof(name))
		return 0;
	memcpy(name, svc, len);
	name[len] = 0;
	return mark(s, ns, name);
}

static int kv_put_str(k8ssync_t *s, const char *ns, const char *key, const char *val)
{
	return store_kv_put(s->w, ns, (const uint8_t *)key, strlen(key), (const uint8_t *)val,
			    strlen(val));
}

static bool kv_exists(k8ssync_t *s, const char *ns, const char *key)
{
	const uint8_t *v;
	size_t vl;

	return store_kv_get(store_write_view(s->w), ns, (const uint8_t *)key, strlen(key), &v,
			    &vl) == 0;
}

/* A slice's old filing (the Service it was under), removed; *old gets that Service. */
static int unfile_slice(k8ssync_t *s, const k8smap_id_t *id, char *old, size_t cap)
{
	char ikey[KEY_MAX], ekey[KEY_MAX];
	const uint8_t *v;
	size_t vl;
	int ret;

	old[0] = 0;
	snprintf(ikey, sizeof(ikey), "%s/%s", id->ns, id->name);
	ret = store_kv_get(store_write_view(s->w), NS_IDX, (const uint8_t *)ikey, strlen(ikey), &v,
			   &vl);
	if (ret == ERR_NOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	if (vl >= cap)
		vl = cap - 1;
	memcpy(old, v, vl);
	old[vl] = 0;
	snprintf(ekey, sizeof(ekey), "%s/%s/%s", id->ns, old, id->name);
	if ((ret = store_kv_del(s->w, NS_EPS, (const uint8_t *)ekey, strlen(ekey))) < 0 &&
	    ret != ERR_NOTFOUND)
		return ret;
	if ((ret = store_kv_del(s->w, NS_IDX, (const uint8_t *)ikey, strlen(ikey))) < 0 &&
	    ret != ERR_NOTFOUND)
		return ret;
	s->objects_delta--;
	return mark(s, id->ns, old);
}

/* ---- pods = verified: a-b-c-d.<ns>.pod.<zone> A for the pods that own the address ---- */

static int any_key(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	(void)ctx;
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	return 1;
}

/* Owners are counted by key, so two pods with one address (hostNetwork pods
 * share their node's) keep the record until the last of them goes. */
static int pod_ip(k8ssync_t *s, const char *ns, const char *pod, const char *ip, bool add)
{
	char key[KEY_MAX], prefix[KEY_MAX];
	uint8_t name[WIRE_NAME_MAX], a[16];
	size_t namelen;
	uint16_t alen = 4, type = WIRE_TYPE_A;
	int ret;

	if (k8smap_pod_name(&s->mc, ns, ip, name, &namelen) < 0)
		return 0; /* no DNS name: nothing stored */
	if (inet_pton(AF_INET, ip, a) != 1) {
		if (inet_pton(AF_INET6, ip, a) != 1)
			return 0;
		alen = 16;
		type = WIRE_TYPE_AAAA;
	}
	snprintf(key, sizeof(key), "%s/%s/%s", ns, ip, pod);
	snprintf(prefix, sizeof(prefix), "%s/%s/", ns, ip);
	if (add) {
		const uint8_t *rd = a;
		uint16_t rdlen = alen;
		if ((ret = kv_put_str(s, NS_PIP, key, "")) < 0)
			return ret;
		ret = store_rrset_replace(s->w, s->src, name, namelen, type, s->conf->k8s_ttl, &rd,
					  &rdlen, 1);
		return ret < 0 ? ret : 0;
	}
	ret = store_kv_del(s->w, NS_PIP, (const uint8_t *)key, strlen(key));
	if (ret < 0)
		return ret == ERR_NOTFOUND ? 0 : ret;
	ret = store_kv_iter(store_write_view(s->w), NS_PIP, (const uint8_t *)prefix, strlen(prefix),
			    any_key, NULL);
	if (ret != 0)
		return ret < 0 ? ret : 0; /* another pod has the address */
	ret = store_rr_del(s->w, s->src, name, namelen, type, NULL, 0);
	return ret == ERR_NOTFOUND ? 0 : ret;
}

/* Is ip in the comma-separated list? */
static bool in_list(const char *list, const char *ip)
{
	size_t n = strlen(ip);

	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && !memcmp(p, ip, n))
			return true;
		p += l + (e ? 1 : 0);
	}
	return false;
}

/* Each address of list that is not in other: add or drop its owner. */
static int pod_ips(k8ssync_t *s, const char *ns, const char *pod, const char *list,
		   const char *other, bool add)
{
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char ip[64];
		int ret;

		snprintf(ip, sizeof(ip), "%.*s", (int)(l < sizeof(ip) ? l : sizeof(ip) - 1), p);
		if (!in_list(other, ip) && (ret = pod_ip(s, ns, pod, ip, add)) < 0)
			return ret;
		p += l + (e ? 1 : 0);
	}
	return 0;
}

/* A pod now has the addresses ips ("" = none: deleted, ended or terminating). */
static int put_pod(k8ssync_t *s, const char *ns, const char *pod, const char *ips)
{
	char key[KEY_MAX], old[256] = "";
	const uint8_t *v;
	size_t vl;
	int ret;

	snprintf(key, sizeof(key), "%s/%s", ns, pod);
	if (s->sweep[K8SSYNC_PODS] && ips[0] && (ret = seen_add(s, NS_POD, key)) < 0)
		return ret;
	ret = store_kv_get(store_write_view(s->w), NS_POD, (const uint8_t *)key, strlen(key), &v,
			   &vl);
	if (ret < 0 && ret != ERR_NOTFOUND)
		return ret;
	if (ret == 0)
		snprintf(old, sizeof(old), "%.*s", (int)(vl < sizeof(old) ? vl : sizeof(old) - 1),
			 (const char *)v);
	if (!strcmp(old, ips) && (ret == 0 || !ips[0]))
		return 0;
	if ((ret = pod_ips(s, ns, pod, old, ips, false)) < 0 ||
	    (ret = pod_ips(s, ns, pod, ips, old, true)) < 0)
		return ret;
	if (ips[0])
		return kv_put_str(s, NS_POD, key, ips);
	ret = store_kv_del(s->w, NS_POD, (const uint8_t *)key, strlen(key));
	return ret == ERR_NOTFOUND ? 0 : ret;
}

/* Whether ns:key holds exactly val: an unchanged object is neither written (no
 * dirty page) nor re-derived. */
static bool form_same(k8ssync_t *s, const char *ns, const char *key, const char *val)
{
	const uint8_t *v;
	size_t vl;

	return store_kv_get(store_write_view(s->w), ns, (const uint8_t *)key, strlen(key), &v,
			    &vl) == 0 &&
	       vl == strlen(val) && memcmp(v, val, vl) == 0;
}

static int put_service(k8ssync_t *s, const k8smap_id_t *id, const char *c)
{
	char key[KEY_MAX];
	int ret;

	snprintf(key, sizeof(key), "%s/%s", id->ns, id->name);
	if (s->sweep[K8SSYNC_SERVICES] && (ret = seen_add(s, NS_SVC, key)) < 0)
		return ret;
	if (form_same(s, NS_SVC, key, c))
		return 0;
	s->objects_delta += kv_exists(s, NS_SVC, key) ? 0 : 1;
	if ((ret = kv_put_str(s, NS_SVC, key, c)) < 0)
		return ret;
	return mark(s, id->ns, id->name);
}

static int put_slice(k8ssync_t *s, const k8smap_id_t *id, const char *c)
{
	char key[KEY_MAX], ikey[KEY_MAX], old[64];
	int ret;

	snprintf(key, sizeof(key), "%s/%s/%s", id->ns, id->svc, id->name);
	snprintf(ikey, sizeof(ikey), "%s/%s", id->ns, id->name);
	if (s->sweep[K8SSYNC_SLICES] && (ret = seen_add(s, NS_EPS, key)) < 0)
		return ret;
	/* Filed under the same Service with the same form: nothing to do. */
	if (form_same(s, NS_IDX, ikey, id->svc) && form_same(s, NS_EPS, key, c))
		return 0;
	if ((ret = unfile_slice(s, id, old, sizeof(old))) < 0)
		return ret;
	s->objects_delta++;
	if ((ret = kv_put_str(s, NS_EPS, key, c)) < 0)
		return ret;
	if ((ret = kv_put_str(s, NS_IDX, ikey, id->svc)) < 0)
		return ret;
	return mark(s, id->ns, id->svc);
}

/* A list puts, sweeps and re-derives every object, reading its stored forms once:
 * without this the watcher's RSS grows by every store page it passed through (shared
 * with skydns, file-backed) and a re-list peaks at ~1.3x the steady RSS (issue 12). */
#define RELEASE_EVERY 1024

static void passed_one(k8ssync_t *s)
{
	if (++s->passed >= RELEASE_EVERY) {
		s->passed = 0;
		store_release_map(s->store);
	}
}

int k8ssync_put(k8ssync_t *s, int kind, const json_t *obj)
{
	k8smap_id_t id;
	char *c = NULL;
	int ret;

	if (!s->w)
		return ERR_INVAL;
	passed_one(s);
	ret = kind == K8SSYNC_SERVICES ? k8smap_service(obj, &id, &c)
	      : kind == K8SSYNC_SLICES ? k8smap_slice(obj, &id, &c)
				       : k8smap_pod(obj, &id, &c);
	if (ret == ERR_PARSE) {
		s->pending[K8SSYNC_BAD]++;
		return 0;
	}
	if (ret < 0)
		return ret;
	ret = kind == K8SSYNC_SERVICES ? put_service(s, &id, c)
	      : kind == K8SSYNC_SLICES ? put_slice(s, &id, c)
				       : put_pod(s, id.ns, id.name, c);
	free(c);
	return ret;
}

int k8ssync_del(k8ssync_t *s, int kind, const json_t *obj)
{
	char key[KEY_MAX], old[64];
	k8smap_id_t id;
	int ret;

	if (!s->w)
		return ERR_INVAL;
	if (k8smap_ident(obj, &id) < 0) {
		s->pending[K8SSYNC_BAD]++;
		return 0;
	}
	if (kind == K8SSYNC_SLICES)
		return unfile_slice(s, &id, old, sizeof(old));
	if (kind == K8SSYNC_PODS)
		return put_pod(s, id.ns, id.name, "");
	snprintf(key, sizeof(key), "%s/%s", id.ns, id.name);
	ret = store_kv_del(s->w, NS_SVC, (const uint8_t *)key, strlen(key));
	if (ret == ERR_NOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	s->objects_delta--;
	return mark(s, id.ns, id.name);
}

int k8ssync_forget(k8ssync_t *s, int kind)
{
	int ret;

	/* An empty list: the sweep at commit drops every object of the kind */
	if ((ret = k8ssync_reset(s, kind)) < 0)
		return ret;
	ret = store_kv_del(s->w, NS_RV, (const uint8_t *)rv_keys[kind], strlen(rv_keys[kind]));
	return ret == ERR_NOTFOUND ? 0 : ret;
}

int k8ssync_set_rv(k8ssync_t *s, int kind, const char *rv)
{
	if (!s->w)
		return ERR_INVAL;
	if (!rv || !rv[0])
		return 0;
	return kv_put_str(s, NS_RV, rv_keys[kind], rv);
}

/* ---- deriving a Service's records ---- */

typedef struct {
	k8smap_derive_t *d;
	int ret;
} slices_ctx_t;

static int on_slice(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	slices_ctx_t *c = ctx;

	(void)k;
	(void)kl;
	c->ret = k8smap_derive_slice(c->d, (const char *)v, vl);
	return c->ret;
}

/*
 * A Service's k8s-own list: every record it wrote, in k8smap_derive_end's order
 * (name, type, rdata), each as namelen u8 | name | type u16 | rdlen u16 | rdata |
 * shared u8. Diffing the new records against it rewrites only the rrsets that
 * changed, so one endpoint of a 5,000-endpoint Service costs a few writes, not
 * 20,000.
 */
typedef struct {
	const uint8_t *name, *rdata;
	size_t namelen;
	uint16_t type, rdlen;
	bool shared;
} own_t;

/* Parse a copy of the list into views. @return count, or -ENOMEM. */
static long own_parse(const uint8_t *p, size_t len, own_t **out)
{
	size_t n = 0, cap = 0, at = 0;
	own_t *v = NULL;

	while (at + 1 <= len) {
		size_t nl = p[at];
		if (at + 1 + nl + 4 > len)
			break;
		uint16_t rl = (uint16_t)(p[at + 3 + nl] << 8 | p[at + 4 + nl]);
		if (at + 6 + nl + rl > len)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			own_t *nv = realloc(v, cap * sizeof(*nv));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n].name = p + at + 1;
		v[n].namelen = nl;
		v[n].type = (uint16_t)(p[at + 1 + nl] << 8 | p[at + 2 + nl]);
		v[n].rdlen = rl;
		v[n].rdata = p + at + 5 + nl;
		v[n].shared = p[at + 5 + nl + rl] != 0;
		n++;
		at += 6 + nl + rl;
	}
	*out = v;
	return (long)n;
}

static int own_add(uint8_t **buf, size_t *len, size_t *cap, const k8smap_rec_t *r)
{
	size_t need = 6 + r->namelen + r->rdlen;

	if (*len + need > *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		while (nc < *len + need)
			nc *= 2;
		uint8_t *nb = realloc(*buf, nc);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = nc;
	}
	uint8_t *p = *buf + *len;
	p[0] = (uint8_t)r->namelen;
	memcpy(p + 1, r->name, r->namelen);
	wire_write_u16(p + 1 + r->namelen, r->type);
	wire_write_u16(p + 3 + r->namelen, r->rdlen);
	memcpy(p + 5 + r->namelen, r->rdata, r->rdlen);
	p[5 + r->namelen + r->rdlen] = r->shared;
	*len += need;
	return 0;
}

/* Order of (name, type) groups, as k8smap's rec_cmp sorts them. */
static int group_cmp(const uint8_t *a, size_t al, uint16_t at, const uint8_t *b, size_t bl,
		     uint16_t bt)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c || al != bl)
		return c ? c : (al < bl ? -1 : 1);
	return at == bt ? 0 : (at < bt ? -1 : 1);
}

static size_t new_group_end(const k8smap_derive_t *d, size_t i)
{
	size_t j = i;

	while (j < d->n && !group_cmp(d->recs[j].name, d->recs[j].namelen, d->recs[j].type,
				      d->recs[i].name, d->recs[i].namelen, d->recs[i].type))
		j++;
	return j;
}

static size_t old_group_end(const own_t *o, size_t m, size_t i)
{
	size_t j = i;

	while (j < m &&
	       !group_cmp(o[j].name, o[j].namelen, o[j].type, o[i].name, o[i].namelen, o[i].type))
		j++;
	return j;
}

static bool group_same(const k8smap_derive_t *d, size_t i, size_t ie, const own_t *o, size_t j,
		       size_t je)
{
	if (ie - i != je - j)
		return false;
	for (; i < ie; i++, j++)
		if (d->recs[i].rdlen != o[j].rdlen ||
		    memcmp(d->recs[i].rdata, o[j].rdata, o[j].rdlen) != 0)
			return false;
	return true;
}

static int group_del(k8ssync_t *s, const own_t *o, size_t j, size_t je)
{
	for (; j < je; j++) {
		int ret =
		    store_rr_del(s->w, s->src, o[j].name, o[j].namelen, o[j].type,
				 o[j].shared ? o[j].rdata : NULL, o[j].shared ? o[j].rdlen : 0);
		if (ret < 0 && ret != ERR_NOTFOUND)
			return ret;
		if (!o[j].shared)
			return 0; /* one delete took the whole rrset of this source */
	}
	return 0;
}

static int group_put(k8ssync_t *s, const k8smap_derive_t *d, size_t i, size_t ie,
		     const uint8_t **rd, uint16_t *rl)
{
	const k8smap_rec_t *r = &d->recs[i];
	const uint32_t ttl = s->conf->k8s_ttl;
	int ret;

	if (r->shared) {
		for (; i < ie; i++)
			if ((ret = store_rr_add(s->w, s->src, r->name, r->namelen, r->type, ttl,
						d->recs[i].rdata, d->recs[i].rdlen)) < 0)
				return ret;
		return 0;
	}
	for (size_t k = i; k < ie; k++) {
		rd[k - i] = d->recs[k].rdata;
		rl[k - i] = d->recs[k].rdlen;
	}
	ret = store_rrset_replace(s->w, s->src, r->name, r->namelen, r->type, ttl, rd, rl, ie - i);
	return ret < 0 ? ret : 0;
}

/* Make the store hold d's records for the Service `key`, touching only changed rrsets. */
static int swap_records(k8ssync_t *s, const char *key, const k8smap_derive_t *d)
{
	const uint8_t *v, **rd = NULL;
	uint8_t *old = NULL, *own = NULL;
	uint16_t *rl = NULL;
	own_t *o = NULL;
	size_t vl = 0, olen = 0, ocap = 0, i = 0, j = 0, m = 0;
	long n;
	int ret = store_kv_get(store_write_view(s->w), NS_OWN, (const uint8_t *)key, strlen(key),
			       &v, &vl);

	if (ret < 0 && ret != ERR_NOTFOUND)
		return ret;
	/* Borrowed until the next write: copy before changing anything. */
	if (ret == 0 && (!(old = malloc(vl ? vl : 1)) || !memcpy(old, v, vl))) {
		ret = -ENOMEM;
		goto out;
	}
	if (ret == 0 && (n = own_parse(old, vl, &o)) < 0) {
		ret = (int)n;
		goto out;
	}
	m = ret == 0 ? (size_t)n : 0;
	if (d->n && (!(rd = malloc(d->n * sizeof(*rd))) || !(rl = malloc(d->n * sizeof(*rl))))) {
		ret = -ENOMEM;
		goto out;
	}
	ret = 0;
	while (ret == 0 && (i < d->n || j < m)) {
		size_t ie = i < d->n ? new_group_end(d, i) : i,
		       je = j < m ? old_group_end(o, m, j) : j;
		int c = i >= d->n ? 1
			: j >= m  ? -1
				  : group_cmp(d->recs[i].name, d->recs[i].namelen, d->recs[i].type,
					      o[j].name, o[j].namelen, o[j].type);
		if (c > 0) {
			ret = group_del(s, o, j, je);
			j = je;
			continue;
		}
		if (c == 0 && !group_same(d, i, ie, o, j, je)) {
			if (d->recs[i].shared)
				ret = group_del(s, o, j, je);
			if (ret == 0)
				ret = group_put(s, d, i, ie, rd, rl);
		} else if (c < 0) {
			ret = group_put(s, d, i, ie, rd, rl);
		}
		if (c == 0)
			j = je;
		i = ie;
	}
	for (size_t k = 0; ret == 0 && k < d->n; k++)
		ret = own_add(&own, &olen, &ocap, &d->recs[k]);
	/* Unchanged (a re-list of a quiet cluster): no write, no dirty page. */
	if (ret == 0 && old && olen == vl && memcmp(own, old, olen) == 0)
		goto out;
	if (ret == 0)
		ret = olen
			  ? store_kv_put(s->w, NS_OWN, (const uint8_t *)key, strlen(key), own, olen)
			  : store_kv_del(s->w, NS_OWN, (const uint8_t *)key, strlen(key));
	if (ret == ERR_NOTFOUND)
		ret = 0;
out:
	free(o);
	free(old);
	free(own);
	free(rd);
	free(rl);
	return ret;
}

static void observe(k8ssync_t *s, uint64_t lat_us)
{
	static const unsigned bounds[] = STORE_K8S_LAT_BOUNDS;
	unsigned b = 0;

	while (b < STORE_K8S_LAT_NBOUNDS && lat_us > (uint64_t)bounds[b] * 1000)
		b++;
	s->pending[C_LAT0 + b]++;
	s->pending[C_LAT_SUM] += lat_us;
}

/* key = "<ns>/<svc>". */
static int derive(k8ssync_t *s, const char *key, uint64_t arrival_us)
{
	passed_one(s);
	store_rtxn_t *view = store_write_view(s->w);
	char ns[64], name[64], prefix[KEY_MAX];
	const char *slash = strchr(key, '/');
	const uint8_t *v;
	char *svc = NULL;
	size_t vl = 0;
	k8smap_derive_t d;
	slices_ctx_t sc = {.d = &d};
	int ret;

	if (!slash || (size_t)(slash - key) >= sizeof(ns) || strlen(slash + 1) >= sizeof(name))
		return 0;
	memcpy(ns, key, (size_t)(slash - key));
	ns[slash - key] = 0;
	snprintf(name, sizeof(name), "%s", slash + 1);
	ret = store_kv_get(view, NS_SVC, (const uint8_t *)key, strlen(key), &v, &vl);
	if (ret == 0 && !(svc = strndup((const char *)v, vl)))
		return -ENOMEM;
	if (ret < 0 && ret != ERR_NOTFOUND)
		return ret;
	ret = k8smap_derive_begin(&d, &s->mc, ns, name, svc, vl);
	free(svc);
	if (ret == ERR_PARSE)
		return 0; /* a name that is no DNS label: no records */
	if (ret == 0 && d.valid) {
		snprintf(prefix, sizeof(prefix), "%s/", key);
		ret = store_kv_iter(view, NS_EPS, (const uint8_t *)prefix, strlen(prefix), on_slice,
				    &sc);
	}
	if (ret == 0) {
		k8smap_derive_end(&d);
		ret = swap_records(s, key, &d);
	}
	if (ret == 0 && d.valid && arrival_us) {
		uint64_t now = wall_ms();
		if (d.trigger_ms && d.trigger_ms <= now && now - d.trigger_ms < 3600000)
			observe(s, (now - d.trigger_ms) * 1000);
		else
			observe(s, k8ssync_now_us() - arrival_us);
	}
	k8smap_derive_free(&d);
	return ret;
}

typedef struct {
	char **keys;
	size_t n, cap;
	int ret;
} keys_t;

static int on_svc_key(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	keys_t *c = ctx;

	(void)v;
	(void)vl;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		char **nk = realloc(c->keys, cap * sizeof(*nk));
		if (!nk)
			return c->ret = -ENOMEM;
		c->keys = nk;
		c->cap = cap;
	}
	if (!(c->keys[c->n] = strndup((const char *)k, kl)))
		return c->ret = -ENOMEM;
	c->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
	k8ssync_t *s;
	const char *ns;
	keys_t gone;
} sweep_ctx_t;

static int on_swept(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	sweep_ctx_t *c = ctx;
	char key[KEY_MAX];
	uint64_t h;

	passed_one(c->s);

	if (kl >= sizeof(key))
		return 0;
	memcpy(key, k, kl);
	key[kl] = 0;
	h = form_hash(c->ns, key);
	if (c->s->nseen && bsearch(&h, c->s->seen, c->s->nseen, sizeof(h), cmp_u64))
		return 0;
	return on_svc_key(&c->gone, k, kl, v, vl);
}

/* After a list of a kind: delete the compact forms it did not name (objects deleted
 * while the watch was away). Collected first: no writes while a cursor walks. */
static int sweep(k8ssync_t *s, int kind)
{
	sweep_ctx_t c = {.s = s,
			 .ns = kind == K8SSYNC_SERVICES ? NS_SVC
			       : kind == K8SSYNC_SLICES ? NS_EPS
							: NS_POD};
	int ret = store_kv_iter(store_write_view(s->w), c.ns, NULL, 0, on_swept, &c);

	if (ret == 0)
		ret = c.gone.ret;
	for (size_t i = 0; ret == 0 && i < c.gone.n; i++) {
		char *key = c.gone.keys[i], ikey[KEY_MAX];
		const char *a = strchr(key, '/'), *b = a ? strchr(a + 1, '/') : NULL;

		if (kind == K8SSYNC_PODS) {
			char ns[64];
			snprintf(ns, sizeof(ns), "%.*s", a ? (int)(a - key) : 0, key);
			if (a && (ret = put_pod(s, ns, a + 1, "")) < 0)
				break;
			continue;
		}
		if ((ret = store_kv_del(s->w, c.ns, (const uint8_t *)key, strlen(key))) < 0)
			break;
		s->objects_delta--;
		if (a) {
			char ns[64];
			snprintf(ns, sizeof(ns), "%.*s", (int)(a - key), key);
			ret = b ? mark_n(s, ns, a + 1, (size_t)(b - a - 1)) : mark(s, ns, a + 1);
			if (ret < 0)
				break;
		}
		if (kind == K8SSYNC_SLICES && b) {
			/* "<ns>/<svc>/<slice>" is filed as "<ns>/<slice>" */
			snprintf(ikey, sizeof(ikey), "%.*s%s", (int)(a - key), key, b);
			ret = store_kv_del(s->w, NS_IDX, (const uint8_t *)ikey, strlen(ikey));
			if (ret == ERR_NOTFOUND)
				ret = 0;
		}
	}
	for (size_t i = 0; i < c.gone.n; i++)
		free(c.gone.keys[i]);
	free(c.gone.keys);
	return ret;
}

/* Every Service again, after a list: the source is replaced in this txn. */
static int derive_all(k8ssync_t *s)
{
	keys_t ks = {0};
	int ret;

	store_rtxn_t *view = store_write_view(s->w);

	/* The first list starts from nothing (a re-list derives only the Services
	 * whose forms changed, against what they wrote: k8ssync_reset). */
	if ((ret = store_source_clear(s->w, s->src)) < 0 ||
	    (ret = store_kv_clear(s->w, NS_OWN)) < 0)
		return ret;
	/* Names collected first: no writes while a cursor walks the same DBI. */
	ret = store_kv_iter(view, NS_SVC, NULL, 0, on_svc_key, &ks);
	if (ret == 0)
		ret = store_kv_iter(view, NS_OWN, NULL, 0, on_svc_key, &ks);
	if (ret == 0 && ks.n > 1)
		qsort(ks.keys, ks.n, sizeof(*ks.keys), cmp_str);
	for (size_t i = 0; ret == 0 && i < ks.n; i++)
		if (i == 0 || strcmp(ks.keys[i - 1], ks.keys[i]) != 0)
			ret = derive(s, ks.keys[i], 0);
	for (size_t i = 0; i < ks.n; i++)
		free(ks.keys[i]);
	free(ks.keys);
	return ret;
}

/* The first list cleared the source: the pod records again, from k8s-pip. */
static int pods_rewrite(k8ssync_t *s)
{
	keys_t ks = {0};
	int ret = store_kv_iter(store_write_view(s->w), NS_PIP, NULL, 0, on_svc_key, &ks);

	if (ret == 0)
		ret = ks.ret;
	for (size_t i = 0; ret == 0 && i < ks.n; i++) {
		char *ns = ks.keys[i], *ip = strchr(ns, '/'),
		     *pod = ip ? strchr(ip + 1, '/') : NULL;
		if (!pod)
			continue;
		*ip++ = 0;
		*pod++ = 0;
		ret = pod_ip(s, ns, pod, ip, true);
	}
	for (size_t i = 0; i < ks.n; i++)
		free(ks.keys[i]);
	free(ks.keys);
	return ret;
}

/* After a list: dns-version.<zone> and the mark of a synced store. */
static int zone_records(k8ssync_t *s)
{
	k8smap_rec_t zr;
	int ret;

	if (k8smap_zone_records(&s->mc, &zr) == 1) {
		const uint8_t *rd = zr.rdata;
		ret = store_rrset_replace(s->w, s->src, zr.name, zr.namelen, zr.type,
					  s->conf->k8s_ttl, &rd, &zr.rdlen, 1);
		if (ret < 0)
			return ret;
	}
	return store_meta_put_u64(s->w, STORE_K8S_SYNCED, 1);
}

static void counter_key(unsigned i, char *out, size_t cap)
{
	static const unsigned bounds[] = STORE_K8S_LAT_BOUNDS;
	static const char *const names[] = {STORE_K8S_EVENTS, STORE_K8S_RELISTS, STORE_K8S_RESUMES,
					    STORE_K8S_ERRORS, STORE_K8S_BAD,	 STORE_K8S_LAT_SUM};

	if (i < C_LAT0)
		snprintf(out, cap, "%s", names[i]);
	else if (i - C_LAT0 < STORE_K8S_LAT_NBOUNDS)
		snprintf(out, cap, STORE_K8S_LAT_FMT, bounds[i - C_LAT0]);
	else
		snprintf(out, cap, "%s", STORE_K8S_LAT_INF);
}

static int flush_counters(k8ssync_t *s)
{
	store_rtxn_t *view = store_write_view(s->w);
	char key[64];
	uint64_t v;
	int ret;

	for (unsigned i = 0; i < C_N; i++) {
		if (!s->pending[i])
			continue;
		counter_key(i, key, sizeof(key));
		if (store_meta_u64(view, key, &v) < 0)
			v = 0;
		if ((ret = store_meta_put_u64(s->w, key, v + s->pending[i])) < 0)
			return ret;
	}
	if (s->objects_delta) {
		if (store_meta_u64(view, STORE_K8S_OBJECTS, &v) < 0)
			v = 0;
		int64_t n = (int64_t)v + s->objects_delta;
		return store_meta_put_u64(s->w, STORE_K8S_OBJECTS, n > 0 ? (uint64_t)n : 0);
	}
	return 0;
}

int k8ssync_commit(k8ssync_t *s, uint64_t arrival_us)
{
	int ret = 0;

	if (!s->w)
		return ERR_INVAL;
	if (s->nseen > 1)
		qsort(s->seen, s->nseen, sizeof(*s->seen), cmp_u64);
	for (int k = 0; ret == 0 && k < K8SSYNC_KINDS; k++)
		if (s->sweep[k])
			ret = sweep(s, k);
	if (ret == 0 && s->full && (ret = derive_all(s)) == 0)
		ret = pods_rewrite(s);
	if (s->ndirty > 1)
		qsort(s->dirty, s->ndirty, sizeof(*s->dirty), cmp_str);
	for (size_t i = 0; ret == 0 && !s->full && i < s->ndirty; i++)
		if (i == 0 || strcmp(s->dirty[i - 1], s->dirty[i]) != 0)
			ret = derive(s, s->dirty[i], arrival_us);
	if (ret == 0 && s->listed)
		ret = zone_records(s);
	if (ret == 0)
		ret = flush_counters(s);
	if (ret < 0) {
		k8ssync_abort(s);
		return ret;
	}
	ret = store_write_commit(s->w);
	if (s->listed)
		store_release_map(s->store);
	s->w = NULL;
	s->full = false;
	s->listed = false;
	s->objects_delta = 0;
	dirty_clear(s);
	seen_clear(s);
	if (ret == 0)
		memset(s->pending, 0, sizeof(s->pending));
	return ret;
}
