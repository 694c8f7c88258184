/*
 * targets.c: addresses and their ports from a store snapshot (see targets.h).
 */
#include "probe/targets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "store/store.h"

#define TYPE_A 1
#define TYPE_AAAA 28
#define TYPE_SRV 33

typedef struct {
	uint8_t key[WIRE_KEY_MAX];
	uint8_t keylen;
	uint16_t port;
} srv_t;

typedef struct {
	uint8_t key[WIRE_KEY_MAX];
	uint8_t keylen;
	uint8_t addr[16];
	uint8_t alen;
} host_t;

typedef struct {
	srv_t *srv;
	size_t nsrv, capsrv;
	host_t *host;
	size_t nhost, caphost;
	bool oom;
} walk_t;

static void *grow(void *arr, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return arr;
	size_t ncap = *cap ? *cap * 2 : 256;
	void *p = realloc(arr, ncap * size);
	if (p)
		*cap = ncap;
	return p;
}

static void add_host(walk_t *w, const uint8_t *key, size_t keylen, const uint8_t *addr, size_t alen)
{
	host_t *h = grow(w->host, &w->caphost, w->nhost + 1, sizeof(*h));

	if (!h) {
		w->oom = true;
		return;
	}
	w->host = h;
	h = &w->host[w->nhost++];
	memcpy(h->key, key, keylen);
	h->keylen = (uint8_t)keylen;
	memcpy(h->addr, addr, alen);
	h->alen = (uint8_t)alen;
}

static void add_srv(walk_t *w, const store_rr_t *rr)
{
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen;
	srv_t *s;

	if (rr->rdlen < 7 || wire_name_to_key(rr->rdata + 6, rr->rdlen - 6u, key, &keylen) < 0)
		return;
	if (!(s = grow(w->srv, &w->capsrv, w->nsrv + 1, sizeof(*s)))) {
		w->oom = true;
		return;
	}
	w->srv = s;
	s = &w->srv[w->nsrv++];
	memcpy(s->key, key, keylen);
	s->keylen = (uint8_t)keylen;
	s->port = wire_read_u16(rr->rdata + 4);
}

static int walk_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	walk_t *w = ctx;
	store_rr_t rr;
	size_t pos = 0;
	int ret;

	if (set->type != TYPE_A && set->type != TYPE_AAAA && set->type != TYPE_SRV)
		return 0;
	while ((ret = store_rrset_next(set, &pos, &rr)) == 1 && !w->oom) {
		if (set->type == TYPE_SRV)
			add_srv(w, &rr);
		else if (rr.rdlen == (set->type == TYPE_A ? 4 : 16))
			add_host(w, key, keylen, rr.rdata, rr.rdlen);
	}
	if (w->oom)
		return -ENOMEM;
	return ret < 0 ? ret : 0;
}

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : alen < blen ? -1 : alen > blen;
}

static int srv_cmp(const void *x, const void *y)
{
	const srv_t *a = x, *b = y;

	return key_cmp(a->key, a->keylen, b->key, b->keylen);
}

size_t probe_parse_ports(const char *text, uint16_t *ports, size_t cap)
{
	size_t n = 0;

	while (text && *text && n < cap) {
		char *end;
		unsigned long v = strtoul(text, &end, 10);

		if (end == text)
			break;
		if (v > 0 && v < 65536)
			ports[n++] = (uint16_t)v;
		text = end;
		while (*text == ',' || *text == ' ' || *text == '\t')
			text++;
	}
	return n;
}

/* The SRV ports aimed at the host's name, else the scan ports. */
static void fill_ports(const walk_t *w, const host_t *h, const uint16_t *scan, size_t nscan,
		       probe_target_t *t)
{
	size_t lo = 0, hi = w->nsrv;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (key_cmp(w->srv[mid].key, w->srv[mid].keylen, h->key, h->keylen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < w->nsrv && t->nports < PROBE_PORTS_MAX &&
	       key_cmp(w->srv[lo].key, w->srv[lo].keylen, h->key, h->keylen) == 0;
	     lo++) {
		bool have = false;
		for (unsigned j = 0; j < t->nports; j++)
			have = have || t->ports[j] == w->srv[lo].port;
		if (!have)
			t->ports[t->nports++] = w->srv[lo].port;
	}
	for (size_t i = 0; t->nports == 0 && i < nscan; i++)
		t->ports[t->nports++] = scan[i];
}

int probe_targets_load(struct store_rtxn *t, const struct conf *c, probe_target_t **out, size_t *n)
{
	walk_t w = {0};
	uint16_t scan[PROBE_PORTS_MAX];
	size_t nscan = probe_parse_ports(c->scan_ports, scan, PROBE_PORTS_MAX);
	probe_target_t *res = NULL;
	int ret = 0;

	for (size_t d = 0; d < c->ndomains && ret == 0; d++) {
		uint8_t key[WIRE_KEY_MAX];
		size_t keylen;

		if ((ret = wire_name_to_key(c->domains[d], c->domainlens[d], key, &keylen)) == 0)
			ret = store_iter(t, key, keylen, walk_cb, &w);
	}
	if (ret < 0)
		goto out;
	if (w.nsrv)
		qsort(w.srv, w.nsrv, sizeof(*w.srv), srv_cmp);
	if (!(res = calloc(w.nhost ? w.nhost : 1, sizeof(*res)))) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < w.nhost; i++) {
		memcpy(res[i].addr, w.host[i].addr, w.host[i].alen);
		res[i].alen = w.host[i].alen;
		fill_ports(&w, &w.host[i], scan, nscan, &res[i]);
	}
	*out = res;
	*n = w.nhost;
	res = NULL;
	ret = 0;
out:
	free(res);
	free(w.srv);
	free(w.host);
	return ret;
}
