/*
 * etcd_mode.c: health as etcd status keys (DESIGN §8), shared between probes
 * without a lock or a scheduler.
 *
 *  - Each probe holds a lease (TTL 3 x check-interval, at least 3 s, renewed
 *    every third of it) and the key <etcd-prefix>-probes/<id> under it. The
 *    key sits beside the watched prefix, not under it, so the etcd watcher
 *    never reads it as a record.
 *  - Every second a probe lists the live probes and checks only the addresses
 *    that rendezvous-hash to it (highest random weight of (probe id, address)):
 *    every probe computes the same owner from the same list, and a probe that
 *    leaves moves only its own addresses. A probe killed with SIGKILL loses
 *    its key when its lease expires; the others see it gone within a second.
 *  - Changes are written as <ip-monitor-path><ip> = the existing value with
 *    "status" and "source":"probe" set, in txns of up to 128 puts; a value
 *    without "source":"probe" is a manual statement and holds the address
 *    (read again right before each batch, and every 5 s to see one deleted).
 * The local store still supplies the addresses (the etcd watcher fills it).
 */
#include "probe/pmode.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "conf/conf.h"
#include "watchers/etcd.h"
#include "watchers/map.h"

#define PEERS_MAX 256
#define LIST_MS 1000
#define STORED_MS 5000 /* re-read every status value: a manual one deleted meanwhile */
#define TXN_OPS 128    /* etcd's default --max-txn-ops */

typedef struct {
	uint8_t addr[16];
	uint8_t alen;
	uint8_t status;
	bool manual;
	uint8_t *val; /* the value etcd holds now (owned), NULL when absent */
	size_t vlen;
} change_t;

struct pmode_etcd {
	etcd_t *etcd;
	int64_t lease;
	unsigned ttl_s;
	uint64_t next_keep_ms, next_list_ms, next_stored_ms;
	char self[PROBE_STATS_ID_MAX + 512]; /* our key */
	char prefix[512];		     /* <etcd-prefix>-probes/ */
	char *peers[PEERS_MAX];		     /* live ids, sorted */
	size_t npeers;
	bool need_stored;
	change_t *ch;
	size_t nch, capch;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- rendezvous hashing ---- */

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

static uint64_t weight(const char *id, const uint8_t *addr, size_t alen)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *c = id; *c; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull; /* separator: ("a","bc") != ("ab","c") */
	for (size_t i = 0; i < alen; i++)
		h = (h ^ addr[i]) * 1099511628211ull;
	return mix(h);
}

static bool owner_cb(void *ctx, const uint8_t *addr, size_t alen)
{
	pmode_t *m = ctx;
	struct pmode_etcd *e = m->e;
	const char *best = m->id;
	uint64_t bw = 0;

	/* Not listed yet (our own key not seen): check everything rather than nothing. */
	if (e->npeers == 0)
		return true;
	for (size_t i = 0; i < e->npeers; i++) {
		uint64_t w = weight(e->peers[i], addr, alen);
		if (i == 0 || w > bw || (w == bw && strcmp(e->peers[i], best) < 0)) {
			bw = w;
			best = e->peers[i];
		}
	}
	return strcmp(best, m->id) == 0;
}

/* ---- lease and peers ---- */

/* Apply puts in one txn without compares (so it always succeeds when etcd answers). */
static int put_all(etcd_t *etcd, const etcd_op_t *ops, size_t n)
{
	int64_t rev;
	bool ok;
	int ret = etcd_txn(etcd, NULL, 0, ops, n, &ok, &rev);

	return ret < 0 ? ret : ok ? 0 : ERR_UPSTREAM;
}

static int lease_take(pmode_t *m)
{
	struct pmode_etcd *e = m->e;
	char val[256];
	int ret;

	if ((ret = etcd_lease_grant(e->etcd, e->ttl_s, &e->lease)) < 0)
		return ret;
	snprintf(val, sizeof(val), "{\"id\":\"%s\",\"pid\":%d}", m->id, (int)getpid());
	etcd_op_t put = {.key = (const uint8_t *)e->self,
			 .klen = strlen(e->self),
			 .val = (const uint8_t *)val,
			 .vlen = strlen(val),
			 .lease = e->lease};
	if ((ret = put_all(e->etcd, &put, 1)) < 0)
		return ret;
	log_info("probe: holding %s with lease %llx (TTL %u s)", e->self,
		 (unsigned long long)e->lease, e->ttl_s);
	return 0;
}

static int keep(pmode_t *m)
{
	struct pmode_etcd *e = m->e;
	int64_t ttl = 0;
	int ret = e->lease ? etcd_lease_keepalive(e->etcd, e->lease, &ttl) : 0;

	if (ret < 0)
		return ret;
	if (ttl <= 0) {
		if (e->lease)
			log_warn("probe: lease %llx expired; taking a new one",
				 (unsigned long long)e->lease);
		e->lease = 0;
		return lease_take(m);
	}
	return 0;
}

typedef struct {
	char *ids[PEERS_MAX];
	size_t n;
	size_t plen;
} peers_t;

static int peer_cb(void *ctx, const etcd_kv_t *kv)
{
	peers_t *p = ctx;
	char *id;

	if (p->n == PEERS_MAX || kv->klen <= p->plen)
		return 0;
	if (!(id = strndup((const char *)kv->key + p->plen, kv->klen - p->plen)))
		return -ENOMEM;
	p->ids[p->n++] = id;
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_peers(pmode_t *m)
{
	struct pmode_etcd *e = m->e;
	peers_t p = {.plen = strlen(e->prefix)};
	int64_t rev;
	uint64_t cid;
	bool same;
	int ret = etcd_range_prefix(e->etcd, (const uint8_t *)e->prefix, p.plen, PEERS_MAX, peer_cb,
				    &p, &rev, &cid);

	if (ret < 0) {
		for (size_t i = 0; i < p.n; i++)
			free(p.ids[i]);
		return ret;
	}
	qsort(p.ids, p.n, sizeof(p.ids[0]), str_cmp);
	same = p.n == e->npeers;
	for (size_t i = 0; same && i < p.n; i++)
		same = strcmp(p.ids[i], e->peers[i]) == 0;
	for (size_t i = 0; i < e->npeers; i++)
		free(e->peers[i]);
	memcpy(e->peers, p.ids, p.n * sizeof(p.ids[0]));
	e->npeers = p.n;
	atomic_store_explicit(&m->st->probes_live, p.n, memory_order_relaxed);
	if (!same) {
		log_info("probe: %zu live probes; sharing the addresses among them", p.n);
		probe_set_owner(m->p, owner_cb, m);
		e->need_stored = true;
	}
	return 0;
}

/* ---- status keys ---- */

static int key_addr(const pmode_t *m, const etcd_kv_t *kv, uint8_t *addr, size_t *alen)
{
	size_t ml = strlen(m->conf->ip_monitor_path), n;
	char ip[64];

	if (kv->klen <= ml || (n = kv->klen - ml) >= sizeof(ip))
		return ERR_PARSE;
	memcpy(ip, kv->key + ml, n);
	while (n > 0 && ip[n - 1] == '/')
		n--;
	ip[n] = 0;
	if (inet_pton(AF_INET, ip, addr) == 1)
		*alen = 4;
	else if (inet_pton(AF_INET6, ip, addr) == 1)
		*alen = 16;
	else
		return ERR_PARSE;
	return 0;
}

static int stored_cb(void *ctx, const etcd_kv_t *kv)
{
	pmode_t *m = ctx;
	uint8_t addr[16];
	size_t alen;
	char src[16];
	int st;

	if (key_addr(m, kv, addr, &alen) < 0 ||
	    (st = map_health_source(kv->val, kv->vlen, src, sizeof(src))) < 0)
		return 0;
	probe_stored_set(m->p, addr, alen,
			 strcmp(src, PMODE_SOURCE) != 0 ? PROBE_STORED_MANUAL
			 : st == 2			? PROBE_STORED_DOWN
							: PROBE_STORED_UP);
	return 0;
}

static int read_stored(pmode_t *m)
{
	const char *mon = m->conf->ip_monitor_path;
	int64_t rev;
	uint64_t cid;

	probe_stored_reset(m->p);
	return etcd_range_prefix(m->e->etcd, (const uint8_t *)mon, strlen(mon), 1000, stored_cb, m,
				 &rev, &cid);
}

static int collect_cb(void *ctx, const uint8_t *addr, size_t alen, int status)
{
	struct pmode_etcd *e = ctx;

	if (e->nch == e->capch) {
		size_t ncap = e->capch ? e->capch * 2 : 64;
		change_t *q = realloc(e->ch, ncap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		e->ch = q;
		e->capch = ncap;
	}
	e->ch[e->nch] = (change_t){.alen = (uint8_t)alen, .status = (uint8_t)status};
	memcpy(e->ch[e->nch].addr, addr, alen);
	e->nch++;
	return 1;
}

static int change_cmp(const void *a, const void *b)
{
	const change_t *x = a, *y = b;

	if (x->alen != y->alen)
		return x->alen < y->alen ? -1 : 1;
	return memcmp(x->addr, y->addr, x->alen);
}

/* The current value of every changed address, to keep its other fields. */
static int current_cb(void *ctx, const etcd_kv_t *kv)
{
	pmode_t *m = ctx;
	struct pmode_etcd *e = m->e;
	change_t key = {0}, *c;
	size_t alen;
	char src[16];

	if (key_addr(m, kv, key.addr, &alen) < 0)
		return 0;
	key.alen = (uint8_t)alen;
	if (!(c = bsearch(&key, e->ch, e->nch, sizeof(*c), change_cmp)))
		return 0;
	free(c->val);
	if (!(c->val = malloc(kv->vlen ? kv->vlen : 1)))
		return -ENOMEM;
	memcpy(c->val, kv->val, kv->vlen);
	c->vlen = kv->vlen;
	c->manual = map_health_source(kv->val, kv->vlen, src, sizeof(src)) > 0 &&
		    strcmp(src, PMODE_SOURCE) != 0;
	return 0;
}

static int write_batch(pmode_t *m, size_t from, size_t to, size_t *written)
{
	struct pmode_etcd *e = m->e;
	etcd_op_t puts[TXN_OPS];
	char *keys[TXN_OPS], *vals[TXN_OPS];
	size_t n = 0;
	int ret = 0;

	for (size_t i = from; i < to && ret == 0; i++) {
		change_t *c = &e->ch[i];
		char ip[64];

		if (c->manual) {
			probe_stored_set(m->p, c->addr, c->alen, PROBE_STORED_MANUAL);
			atomic_fetch_add_explicit(&m->st->deferred, 1, memory_order_relaxed);
			continue;
		}
		inet_ntop(c->alen == 4 ? AF_INET : AF_INET6, c->addr, ip, sizeof(ip));
		if (asprintf(&keys[n], "%s%s", m->conf->ip_monitor_path, ip) < 0) {
			ret = -ENOMEM;
			break;
		}
		if ((ret = map_health_restate(c->val, c->vlen, c->status, PMODE_SOURCE, &vals[n])) <
		    0) {
			free(keys[n]);
			break;
		}
		puts[n] = (etcd_op_t){.key = (const uint8_t *)keys[n],
				      .klen = strlen(keys[n]),
				      .val = (const uint8_t *)vals[n],
				      .vlen = strlen(vals[n])};
		n++;
	}
	if (ret == 0 && n)
		ret = put_all(e->etcd, puts, n);
	if (ret == 0)
		*written += n;
	for (size_t i = 0; i < n; i++) {
		free(keys[i]);
		free(vals[i]);
	}
	return ret;
}

static int flush(pmode_t *m)
{
	struct pmode_etcd *e = m->e;
	const char *mon = m->conf->ip_monitor_path;
	size_t written = 0;
	int64_t rev;
	uint64_t cid;
	int ret;

	e->nch = 0;
	if ((ret = probe_changes(m->p, collect_cb, e)) <= 0)
		return ret;
	qsort(e->ch, e->nch, sizeof(*e->ch), change_cmp);
	ret = etcd_range_prefix(e->etcd, (const uint8_t *)mon, strlen(mon), 1000, current_cb, m,
				&rev, &cid);
	for (size_t i = 0; ret == 0 && i < e->nch; i += TXN_OPS)
		ret = write_batch(m, i, i + TXN_OPS < e->nch ? i + TXN_OPS : e->nch, &written);
	for (size_t i = 0; i < e->nch; i++)
		free(e->ch[i].val);
	if (ret < 0) {
		e->need_stored = true; /* the table took them as written: read the truth */
		log_warn("probe: writing %zu status keys to %s: %s", e->nch, etcd_endpoint(e->etcd),
			 err_str(ret));
		return ret;
	}
	if (written) {
		atomic_fetch_add_explicit(&m->st->writes, written, memory_order_relaxed);
		log_info("probe: wrote %zu status keys", written);
	}
	return 0;
}

/* ---- the mode's entry points ---- */

int pmode_etcd_start(pmode_t *m)
{
	const conf_t *c = m->conf;
	struct pmode_etcd *e = calloc(1, sizeof(*e));
	http_tls_t tls = {c->etcd_cafile, c->etcd_certfile, c->etcd_keyfile};
	size_t n;
	int ret;

	if (!e)
		return -ENOMEM;
	m->e = e;
	n = strlen(c->etcd_prefix);
	while (n > 0 && c->etcd_prefix[n - 1] == '/')
		n--;
	snprintf(e->prefix, sizeof(e->prefix), "%.*s-probes/", (int)n, c->etcd_prefix);
	snprintf(e->self, sizeof(e->self), "%s%s", e->prefix, m->id);
	e->ttl_s = c->check_interval_ms * 3 / 1000;
	if (e->ttl_s < 3)
		e->ttl_s = 3;
	if ((ret = etcd_new(&e->etcd, c->etcd_servers, &tls, m->stop)) < 0)
		return ret;
	etcd_set_auth(e->etcd, c->etcd_username, c->etcd_password);
	e->need_stored = true;
	/* Until the first listing every address is ours: a lone probe starts at once. */
	probe_set_owner(m->p, owner_cb, m);
	return 0;
}

int pmode_etcd_tick(pmode_t *m)
{
	struct pmode_etcd *e = m->e;
	uint64_t now = mono_ms();
	int ret = 0;

	if (now >= e->next_keep_ms) {
		if ((ret = etcd_authenticate(e->etcd)) == 0)
			ret = keep(m);
		/* A failed renewal is tried again next tick, on the next endpoint. */
		e->next_keep_ms = ret == 0 ? now + e->ttl_s * 1000u / 3 : now + 200;
		if (ret < 0) {
			log_warn("probe: etcd %s: %s", etcd_endpoint(e->etcd), err_str(ret));
			etcd_failover(e->etcd);
			return 0;
		}
	}
	if (now >= e->next_list_ms) {
		e->next_list_ms = now + LIST_MS;
		if ((ret = list_peers(m)) < 0)
			return 0;
	}
	/* A write reads the values it replaces anyway (a manual one is never overwritten);
	 * this re-read finds manual statements deleted since, to state ours again. */
	if (now >= e->next_stored_ms)
		e->need_stored = true;
	if (e->need_stored && read_stored(m) == 0) {
		e->need_stored = false;
		e->next_stored_ms = now + STORED_MS;
	}
	if (!e->need_stored)
		flush(m);
	return 0;
}

void pmode_etcd_stop(pmode_t *m)
{
	struct pmode_etcd *e = m->e;

	if (!e)
		return;
	/* Revoked, not left to expire: the others take our addresses at their next listing. */
	if (e->lease && e->etcd) {
		volatile sig_atomic_t *stop = m->stop;
		*stop = 0; /* the request must run although SIGTERM set the flag */
		if (etcd_lease_revoke(e->etcd, e->lease) < 0)
			log_warn("probe: revoking lease %llx failed; it expires in %u s",
				 (unsigned long long)e->lease, e->ttl_s);
	}
	for (size_t i = 0; i < e->npeers; i++)
		free(e->peers[i]);
	free(e->ch);
	etcd_free(e->etcd);
	free(e);
	m->e = NULL;
}
