/*
 * test_store: the LMDB store against a temp directory: lookup semantics
 * (exists, empty non-terminals, CNAME), sources, deletes, txn atomicity,
 * generation, map-full recovery, health, iteration, persistence, layout,
 * and a map grown by another process (re-mapped while readers run).
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "tests/unit/check.h"

#define MAP (64u << 20)

static char g_dir[256];

typedef struct {
	uint8_t b[WIRE_NAME_MAX];
	size_t n;
} nm_t;

static nm_t nm(const char *text)
{
	nm_t r = {{0}, 0};
	if (wire_name_from_text(text, r.b, &r.n) < 0)
		fprintf(stderr, "bad test name %s\n", text);
	return r;
}

static int look(store_rtxn_t *t, const char *text, uint16_t type, store_lookup_t *out)
{
	nm_t n = nm(text);
	uint8_t key[WIRE_KEY_MAX];
	size_t klen = 0;

	if (wire_name_to_key(n.b, n.n, key, &klen) < 0)
		return ERR_INVAL;
	return store_lookup(t, key, klen, type, out);
}

static int add(store_wtxn_t *w, int src, const char *name, uint16_t type, uint32_t ttl,
	       const void *rd, uint16_t rdlen)
{
	nm_t n = nm(name);
	return store_rr_add(w, src, n.b, n.n, type, ttl, rd, rdlen);
}

static int add_a(store_wtxn_t *w, int src, const char *name, uint8_t last)
{
	uint8_t ip[4] = {10, 0, 0, last};
	return add(w, src, name, WIRE_TYPE_A, 300, ip, 4);
}

static int del(store_wtxn_t *w, int src, const char *name, uint16_t type, const void *rd,
	       uint16_t rdlen)
{
	nm_t n = nm(name);
	return store_rr_del(w, src, n.b, n.n, type, rd, rdlen);
}

/* Count of entries in the rrset name/type in a fresh snapshot, -1 when absent. */
static int count_of(store_t *s, const char *name, uint16_t type)
{
	store_rtxn_t *t = NULL;
	store_lookup_t lk;
	int ret = -2;

	if (store_read_begin(s, &t) < 0)
		return -2;
	if (look(t, name, type, &lk) == 0)
		ret = lk.has_rrset ? lk.rrset.count : -1;
	store_read_end(t);
	return ret;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void test_lookup(store_t *s)
{
	store_wtxn_t *w = NULL;
	store_rtxn_t *t = NULL;
	store_lookup_t lk;
	int api;

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	api = store_source_id(w, "api");
	CHECK(api >= 0);
	CHECK_EQ_INT(add_a(w, api, "www.Example.", 1), 0);
	CHECK_EQ_INT(add_a(w, api, "WWW.example.", 2), 0);
	CHECK_EQ_INT(add_a(w, api, "a.b.c.example.", 3), 0);
	CHECK_EQ_INT(add(w, api, "tv.example.", WIRE_TYPE_CNAME, 60, "\3www\7example", 13), 0);
	CHECK_EQ_INT(add_a(w, api, "wwwx.example.", 4), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);

	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(look(t, "www.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.exists && lk.has_rrset && !lk.has_cname);
	CHECK_EQ_INT(lk.rrset.count, 2);
	CHECK_EQ_INT(lk.rrset.type, WIRE_TYPE_A);
	/* Entry layout: src, then ttl||rdlen||rdata ready for a packet. */
	CHECK_EQ_INT(lk.rrset.len, 2 * (7 + 4));
	CHECK_EQ_INT(lk.rrset.entries[0], api);
	CHECK_MEM(lk.rrset.entries + 1, "\0\0\x01\x2c\0\x04\x0a\0\0\x01", 10);
	size_t pos = 0;
	store_rr_t rr;
	CHECK_EQ_INT(store_rrset_next(&lk.rrset, &pos, &rr), 1);
	CHECK_EQ_INT(rr.ttl, 300);
	CHECK_EQ_INT(rr.rdlen, 4);
	CHECK(rr.wire == lk.rrset.entries + 1);
	CHECK_EQ_INT(store_rrset_next(&lk.rrset, &pos, &rr), 1);
	CHECK_EQ_INT(rr.rdata[3], 2);
	CHECK_EQ_INT(store_rrset_next(&lk.rrset, &pos, &rr), 0);

	/* NODATA: the name exists, not the type. */
	CHECK_EQ_INT(look(t, "www.example.", WIRE_TYPE_AAAA, &lk), 0);
	CHECK(lk.exists && !lk.has_rrset);
	/* NXDOMAIN, including a name that is a byte prefix of an existing one. */
	CHECK_EQ_INT(look(t, "nx.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(!lk.exists);
	CHECK_EQ_INT(look(t, "ww.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(!lk.exists);
	CHECK_EQ_INT(look(t, "x.www.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(!lk.exists);
	/* Empty non-terminals exist. */
	CHECK_EQ_INT(look(t, "b.c.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.exists && !lk.has_rrset);
	CHECK_EQ_INT(look(t, "c.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.exists);
	CHECK_EQ_INT(look(t, "example.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.exists && !lk.has_rrset);
	CHECK_EQ_INT(look(t, ".", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.exists && !lk.has_rrset);
	CHECK_EQ_INT(look(t, "other.", WIRE_TYPE_A, &lk), 0);
	CHECK(!lk.exists);
	/* CNAME is reported whatever the asked type. */
	CHECK_EQ_INT(look(t, "TV.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.exists && lk.has_cname && !lk.has_rrset);
	CHECK_EQ_INT(lk.cname.count, 1);
	pos = 0;
	CHECK_EQ_INT(store_rrset_next(&lk.cname, &pos, &rr), 1);
	CHECK_EQ_INT(rr.ttl, 60);
	CHECK_EQ_INT(rr.rdlen, 13);
	CHECK_MEM(rr.rdata, "\3www\7example", 13);
	CHECK_EQ_INT(look(t, "tv.example.", WIRE_TYPE_CNAME, &lk), 0);
	CHECK(lk.has_rrset && lk.has_cname);
	store_read_end(t);
}

static void test_sources(store_t *s)
{
	store_wtxn_t *w = NULL;
	store_rtxn_t *t = NULL;
	uint8_t key[WIRE_KEY_MAX];
	size_t klen;
	uint64_t mask = 0;
	int api, etcd;

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	api = store_source_id(w, "api");
	etcd = store_source_id(w, "etcd");
	CHECK(etcd >= 0 && etcd != api);
	CHECK_EQ_INT(store_source_id(w, "etcd"), etcd);
	CHECK_EQ_INT(store_source_id(w, ""), ERR_INVAL);
	CHECK_EQ_INT(add_a(w, etcd, "www.example.", 9), 0);
	CHECK_EQ_INT(add_a(w, etcd, "www.example.", 1), 0); /* same rdata, other source */
	CHECK_EQ_INT(add_a(w, etcd, "only-etcd.example.", 7), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(count_of(s, "www.example.", WIRE_TYPE_A), 4);

	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(store_source_find(t, "etcd"), etcd);
	CHECK_EQ_INT(store_source_find(t, "k8s"), ERR_NOTFOUND);
	/* The inverse, for the status page's record sources. */
	char sname[STORE_SOURCE_MAX];
	CHECK_EQ_INT(store_source_name(t, etcd, sname, sizeof(sname)), 0);
	CHECK(strcmp(sname, "etcd") == 0);
	CHECK_EQ_INT(store_source_name(t, api, sname, sizeof(sname)), 0);
	CHECK(strcmp(sname, "api") == 0);
	CHECK_EQ_INT(store_source_name(t, 63, sname, sizeof(sname)), ERR_NOTFOUND);
	CHECK_EQ_INT(store_source_name(t, etcd, sname, 4), ERR_TOOBIG);
	nm_t n = nm("www.example.");
	CHECK_EQ_INT(wire_name_to_key(n.b, n.n, key, &klen), 0);
	CHECK_EQ_INT(store_name_sources(t, key, klen, &mask), 0);
	CHECK_EQ_INT(mask, (1ull << api) | (1ull << etcd));
	n = nm("only-etcd.example.");
	CHECK_EQ_INT(wire_name_to_key(n.b, n.n, key, &klen), 0);
	CHECK_EQ_INT(store_name_sources(t, key, klen, &mask), 0);
	CHECK_EQ_INT(mask, 1ull << etcd);
	store_read_end(t);

	/* Identical (source, rdata) replaces: new ttl, same count. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	uint8_t ip[4] = {10, 0, 0, 9};
	CHECK_EQ_INT(add(w, etcd, "www.example.", WIRE_TYPE_A, 77, ip, 4), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(count_of(s, "www.example.", WIRE_TYPE_A), 4);
	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	store_lookup_t lk;
	store_rr_t rr;
	size_t pos = 0;
	int found = 0;
	CHECK_EQ_INT(look(t, "www.example.", WIRE_TYPE_A, &lk), 0);
	while (store_rrset_next(&lk.rrset, &pos, &rr) == 1)
		found += rr.source_id == etcd && rr.rdata[3] == 9 && rr.ttl == 77;
	CHECK_EQ_INT(found, 1);
	store_read_end(t);

	/* Clearing etcd leaves api's entries and drops etcd-only names. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(store_source_clear(w, etcd), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(count_of(s, "www.example.", WIRE_TYPE_A), 2);
	CHECK_EQ_INT(count_of(s, "only-etcd.example.", WIRE_TYPE_A), -1);
	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(look(t, "only-etcd.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(!lk.exists);
	store_read_end(t);
	/* A second clear finds nothing left (bysrc was kept in step). */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(del(w, etcd, "www.example.", 0, NULL, 0), ERR_NOTFOUND);
	store_write_abort(w);
}

static void test_delete(store_t *s)
{
	store_wtxn_t *w = NULL;
	uint8_t ip1[4] = {10, 0, 0, 1}, ip9[4] = {10, 0, 0, 9};
	int api, k8s;

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	api = store_source_id(w, "api");
	k8s = store_source_id(w, "k8s");
	CHECK_EQ_INT(add_a(w, api, "d.example.", 1), 0);
	CHECK_EQ_INT(add_a(w, api, "d.example.", 2), 0);
	CHECK_EQ_INT(add_a(w, k8s, "d.example.", 1), 0);
	CHECK_EQ_INT(add(w, api, "d.example.", WIRE_TYPE_TXT, 5, "\2hi", 3), 0);
	CHECK_EQ_INT(add(w, api, "d.example.", WIRE_TYPE_AAAA, 5, "0123456789abcdef", 16), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(count_of(s, "d.example.", WIRE_TYPE_A), 3);

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(del(w, api, "d.example.", WIRE_TYPE_A, ip9, 4), ERR_NOTFOUND);
	CHECK_EQ_INT(del(w, api, "d.example.", WIRE_TYPE_A, ip1, 4), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(count_of(s, "d.example.", WIRE_TYPE_A), 2); /* api .2 and k8s .1 */

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(del(w, api, "d.example.", WIRE_TYPE_TXT, NULL, 0), 0);
	CHECK_EQ_INT(del(w, api, "d.example.", WIRE_TYPE_TXT, NULL, 0), ERR_NOTFOUND);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(count_of(s, "d.example.", WIRE_TYPE_TXT), -1);
	CHECK_EQ_INT(count_of(s, "d.example.", WIRE_TYPE_AAAA), 1);

	/* Whole name for one source: k8s's A stays. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(del(w, api, "d.example.", 0, NULL, 0), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(count_of(s, "d.example.", WIRE_TYPE_AAAA), -1);
	CHECK_EQ_INT(count_of(s, "d.example.", WIRE_TYPE_A), 1);
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(del(w, k8s, "d.example.", 0, NULL, 0), 0);
	CHECK_EQ_INT(del(w, k8s, "d.example.", 0, NULL, 0), ERR_NOTFOUND);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(count_of(s, "d.example.", WIRE_TYPE_A), -1);
}

static void test_txn(store_t *s)
{
	store_wtxn_t *w = NULL;
	store_rtxn_t *t = NULL;
	store_lookup_t lk;
	uint64_t g0, g1;
	int api;

	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	g0 = store_generation(t);
	CHECK(g0 > 0);
	store_read_reset(t);

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	api = store_source_id(w, "api");
	CHECK_EQ_INT(add_a(w, api, "aborted.example.", 1), 0);
	/* Read-your-writes through the view. */
	CHECK_EQ_INT(look(store_write_view(w), "aborted.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.exists && lk.has_rrset);
	store_write_abort(w);
	CHECK_EQ_INT(count_of(s, "aborted.example.", WIRE_TYPE_A), -1);
	CHECK_EQ_INT(store_read_renew(t), 0);
	CHECK_EQ_INT(store_generation(t), g0);
	CHECK_EQ_INT(look(t, "aborted.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(!lk.exists);

	/* A held snapshot does not see a later commit until renewed. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(add_a(w, api, "later.example.", 1), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(look(t, "later.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(!lk.exists);
	CHECK_EQ_INT(store_generation(t), g0);
	store_read_reset(t);
	CHECK_EQ_INT(store_read_renew(t), 0);
	g1 = store_generation(t);
	CHECK_EQ_INT(g1, g0 + 1);
	CHECK_EQ_INT(look(t, "later.example.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.exists && lk.has_rrset);
	store_read_end(t);

	/* Mode is kept across adds. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	nm_t n = nm("later.example.");
	CHECK_EQ_INT(store_rrset_set_mode(w, n.b, n.n, WIRE_TYPE_A, STORE_MODE_HONE_ONE), 0);
	CHECK_EQ_INT(store_rrset_set_mode(w, n.b, n.n, WIRE_TYPE_MX, STORE_MODE_ALL), ERR_NOTFOUND);
	CHECK_EQ_INT(add_a(w, api, "later.example.", 2), 0);
	CHECK_EQ_INT(look(store_write_view(w), "later.example.", WIRE_TYPE_A, &lk), 0);
	CHECK_EQ_INT(lk.rrset.mode, STORE_MODE_HONE_ONE);
	CHECK_EQ_INT(lk.rrset.count, 2);
	CHECK_EQ_INT(store_write_commit(w), 0);
}

static void test_source_limit(store_t *s)
{
	store_wtxn_t *w = NULL;
	char name[32];
	int last = 0;

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	for (int i = 0; i < 70 && last >= 0; i++) {
		snprintf(name, sizeof(name), "src-%d", i);
		last = store_source_id(w, name);
	}
	CHECK_EQ_INT(last, ERR_TOOBIG);
	CHECK_EQ_INT(store_source_id(w, "api"), 0); /* existing ones still resolve */
	store_write_abort(w);
}

static int count_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	(void)key;
	(void)keylen;
	(void)set;
	(*(int *)ctx)++;
	return 0;
}

static int stop_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	(void)key;
	(void)keylen;
	(void)set;
	(*(int *)ctx)++;
	return 42;
}

static void test_iter(store_t *s)
{
	store_rtxn_t *t = NULL;
	uint8_t key[WIRE_KEY_MAX];
	size_t klen;
	int n = 0;

	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	nm_t c = nm("c.example.");
	CHECK_EQ_INT(wire_name_to_key(c.b, c.n, key, &klen), 0);
	CHECK_EQ_INT(store_iter(t, key, klen, count_cb, &n), 0);
	CHECK_EQ_INT(n, 1); /* a.b.c.example. A */
	c = nm("www.example.");
	CHECK_EQ_INT(wire_name_to_key(c.b, c.n, key, &klen), 0);
	n = 0;
	CHECK_EQ_INT(store_iter(t, key, klen, count_cb, &n), 0);
	CHECK_EQ_INT(n, 1); /* not wwwx.example. */
	n = 0;
	CHECK_EQ_INT(store_iter(t, NULL, 0, count_cb, &n), 0);
	/* www A, a.b.c A, tv CNAME, wwwx A, later A */
	CHECK_EQ_INT(n, 5);
	n = 0;
	CHECK_EQ_INT(store_iter(t, NULL, 0, stop_cb, &n), 42);
	CHECK_EQ_INT(n, 1);
	store_read_end(t);
}

typedef struct {
	int n, up, down;
	char src[STORE_SOURCE_MAX];
} hctx_t;

static int health_cb(void *ctx, const uint8_t *addr, size_t addrlen, int status,
		     uint64_t changed_ms, const char *source)
{
	hctx_t *h = ctx;
	(void)addr;
	h->n++;
	h->up += status == STORE_HEALTH_UP;
	h->down += status == STORE_HEALTH_DOWN;
	if (addrlen == 16)
		snprintf(h->src, sizeof(h->src), "%s", source);
	return changed_ms > 1600000000000ull ? 0 : -1;
}

static void test_health(store_t *s)
{
	store_wtxn_t *w = NULL;
	store_rtxn_t *t = NULL;
	uint8_t a1[4] = {10, 0, 0, 1}, a2[4] = {10, 0, 0, 2};
	uint8_t a6[16] = {0xfd, 0, [15] = 1};
	hctx_t h = {0};

	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK(store_health_empty(t));
	CHECK_EQ_INT(store_health_get(t, a1, 4), STORE_HEALTH_UNKNOWN);
	CHECK_EQ_INT(store_health_get(t, a1, 3), ERR_INVAL);
	store_read_reset(t);

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(store_health_set(w, a1, 4, STORE_HEALTH_DOWN, "probe"), 0);
	CHECK_EQ_INT(store_health_set(w, a2, 4, STORE_HEALTH_UP, "probe"), 0);
	CHECK_EQ_INT(store_health_set(w, a6, 16, STORE_HEALTH_UP, "etcd"), 0);
	CHECK(!store_health_empty(store_write_view(w)));
	CHECK_EQ_INT(store_write_commit(w), 0);

	CHECK(store_health_empty(t)); /* cached per snapshot: renew needed */
	CHECK_EQ_INT(store_read_renew(t), 0);
	CHECK(!store_health_empty(t));
	CHECK_EQ_INT(store_health_get(t, a1, 4), STORE_HEALTH_DOWN);
	CHECK_EQ_INT(store_health_get(t, a2, 4), STORE_HEALTH_UP);
	CHECK_EQ_INT(store_health_get(t, a6, 16), STORE_HEALTH_UP);
	CHECK_EQ_INT(store_health_iter(t, health_cb, &h), 0);
	CHECK_EQ_INT(h.n, 3);
	CHECK_EQ_INT(h.up, 2);
	CHECK_EQ_INT(h.down, 1);
	CHECK(strcmp(h.src, "etcd") == 0);
	store_read_reset(t);

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(store_health_del(w, a1, 4), 0);
	CHECK_EQ_INT(store_health_del(w, a1, 4), ERR_NOTFOUND);
	CHECK_EQ_INT(store_health_del(w, a2, 4), 0);
	CHECK_EQ_INT(store_health_del(w, a6, 16), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(store_read_renew(t), 0);
	CHECK(store_health_empty(t));
	CHECK_EQ_INT(store_health_get(t, a1, 4), STORE_HEALTH_UNKNOWN);
	store_read_end(t);
}

/* A tiny map fills up; the failed txn leaves the committed content whole. */
static void test_map_full(void)
{
	char dir[300];
	store_t *s = NULL;
	store_wtxn_t *w = NULL;
	char name[64];
	int committed = 0, ret = 0, src;

	snprintf(dir, sizeof(dir), "%s/tiny", g_dir);
	CHECK_EQ_INT(store_open(&s, dir, 128 << 10, 0), 0);
	if (!s)
		return;
	/* One record per txn until the map is full. */
	for (int i = 0; i < 5000 && ret == 0; i++) {
		CHECK_EQ_INT(store_write_begin(s, &w), 0);
		src = store_source_id(w, "api");
		snprintf(name, sizeof(name), "host-%04d.full.example.", i);
		ret = add_a(w, src, name, (uint8_t)i);
		if (ret == 0)
			ret = store_write_commit(w);
		else
			store_write_abort(w);
		if (ret == 0)
			committed++;
	}
	CHECK_EQ_INT(ret, ERR_SPACE);
	CHECK(committed > 10);
	/* One big batch also fails as a whole. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	src = store_source_id(w, "api");
	ret = 0;
	for (int i = 0; i < 5000 && ret == 0; i++) {
		snprintf(name, sizeof(name), "batch-%04d.full.example.", i);
		ret = add_a(w, src, name, 1);
	}
	if (ret == 0)
		ret = store_write_commit(w);
	else
		store_write_abort(w);
	CHECK_EQ_INT(ret, ERR_SPACE);
	int present = 0;
	for (int i = 0; i < committed; i++) {
		snprintf(name, sizeof(name), "host-%04d.full.example.", i);
		present += count_of(s, name, WIRE_TYPE_A) == 1;
	}
	CHECK_EQ_INT(present, committed);
	CHECK_EQ_INT(count_of(s, "batch-0000.full.example.", WIRE_TYPE_A), -1);
	store_close(s);
}

/* A store written by a newer schema is refused. */
static void test_version(void)
{
	char dir[300];
	store_t *s = NULL;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	uint8_t v99[4] = {0, 0, 0, 99};
	MDB_val k = {7, "version"}, v = {4, v99};

	snprintf(dir, sizeof(dir), "%s/newer", g_dir);
	CHECK_EQ_INT(store_open(&s, dir, MAP, 0), 0);
	store_close(s);
	s = NULL;
	CHECK_EQ_INT(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	CHECK_EQ_INT(mdb_env_open(env, dir, 0, 0640), 0);
	CHECK_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_EQ_INT(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	CHECK_EQ_INT(mdb_put(txn, dbi, &k, &v, 0), 0);
	CHECK_EQ_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	CHECK_EQ_INT(store_open(&s, dir, MAP, 0), ERR_STORE);
	CHECK(s == NULL);
}

static void test_reopen(const char *dir)
{
	store_t *s = NULL;
	store_rtxn_t *t = NULL;

	CHECK_EQ_INT(store_open(&s, dir, MAP, 0), 0);
	if (!s)
		return;
	CHECK_EQ_INT(count_of(s, "www.example.", WIRE_TYPE_A), 2);
	CHECK_EQ_INT(count_of(s, "later.example.", WIRE_TYPE_A), 2);
	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(store_source_find(t, "api"), 0);
	CHECK(store_generation(t) >= 8);
	store_read_end(t);
	CHECK(store_reader_check(s) >= 0);
	store_close(s);

	/* Read-only handles refuse record writes but may write health. */
	CHECK_EQ_INT(store_open(&s, dir, MAP, STORE_F_RDONLY), 0);
	if (!s)
		return;
	store_wtxn_t *w = NULL;
	uint8_t a[4] = {1, 2, 3, 4};
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(add_a(w, 0, "ro.example.", 1), ERR_READONLY);
	CHECK_EQ_INT(store_health_set(w, a, 4, STORE_HEALTH_UP, "probe"), 0);
	store_write_abort(w);
	store_close(s);
}

/*
 * A committed txn survives kill -9 of its writer, and a reader slot left by
 * a killed process is reclaimed by store_reader_check.
 */
static void test_kill9(void)
{
	char dir[300];
	store_t *s = NULL;
	pid_t pid;
	int status = 0;

	snprintf(dir, sizeof(dir), "%s/kill", g_dir);
	/* Open first: the last process to open a lock file resets its reader table. */
	CHECK_EQ_INT(store_open(&s, dir, MAP, 0), 0);
	if (!s)
		return;
	pid = fork();
	if (pid == 0) {
		store_t *cs = NULL; /* the child opens its own handle */
		store_wtxn_t *w = NULL;
		store_rtxn_t *t = NULL;
		if (store_open(&cs, dir, MAP, 0) < 0 || store_write_begin(cs, &w) < 0 ||
		    add_a(w, store_source_id(w, "api"), "durable.example.", 1) < 0 ||
		    store_write_commit(w) < 0 || store_read_begin(cs, &t) < 0)
			_exit(3);
		raise(SIGKILL); /* no close: its reader slot stays taken */
		_exit(4);
	}
	CHECK(pid > 0);
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK_EQ_INT(store_reader_check(s), 1);
	CHECK_EQ_INT(store_reader_check(s), 0);
	CHECK_EQ_INT(count_of(s, "durable.example.", WIRE_TYPE_A), 1);
	store_close(s);
	s = NULL;
	CHECK_EQ_INT(store_open(&s, dir, MAP, 0), 0);
	if (s)
		CHECK_EQ_INT(count_of(s, "durable.example.", WIRE_TYPE_A), 1);
	store_close(s);
}

/*
 * Readers on other threads (reset/renew per batch, MDB_NOTLS) always see
 * whole commits: the writer puts N entries into two rrsets in one txn, so a
 * snapshot with unequal counts would be a torn read.
 */
typedef struct {
	store_t *s;
	atomic_bool stop;
	atomic_int torn, reads, errors;
} race_t;

static void *race_reader(void *arg)
{
	race_t *r = arg;
	store_rtxn_t *t = NULL;
	store_lookup_t a, b;

	if (store_read_begin(r->s, &t) < 0) {
		atomic_fetch_add(&r->errors, 1);
		return NULL;
	}
	for (int i = 0; i < 200000 && !atomic_load(&r->stop); i++) {
		if (look(t, "one.race.", WIRE_TYPE_A, &a) < 0 ||
		    look(t, "two.race.", WIRE_TYPE_A, &b) < 0) {
			atomic_fetch_add(&r->errors, 1);
			break;
		}
		int na = a.has_rrset ? a.rrset.count : 0, nb = b.has_rrset ? b.rrset.count : 0;
		if (na != nb || (uint64_t)na != store_generation(t) % 5)
			atomic_fetch_add(&r->torn, 1);
		atomic_fetch_add(&r->reads, 1);
		if (i % 16 == 15) {
			store_read_reset(t);
			if (store_read_renew(t) < 0) {
				atomic_fetch_add(&r->errors, 1);
				break;
			}
		}
	}
	store_read_end(t);
	return NULL;
}

/* @return 0 when the commit landed: a writer that quietly failed would leave
 * the readers nothing to tear, so the caller counts these. */
static int race_commit(store_t *s, uint64_t gen)
{
	store_wtxn_t *w = NULL;
	int src, ret;

	if ((ret = store_write_begin(s, &w)) < 0)
		return ret;
	src = store_source_id(w, "race");
	store_source_clear(w, src);
	/* This commit makes generation gen+1: store (gen+1) % 5 entries. */
	for (uint64_t i = 0; i < (gen + 1) % 5; i++) {
		add_a(w, src, "one.race.", (uint8_t)i);
		add_a(w, src, "two.race.", (uint8_t)i);
	}
	if ((ret = store_write_commit(w)) < 0)
		fprintf(stderr, "race commit failed: %s\n", err_str(ret));
	return ret;
}

static void test_threads(void)
{
	char dir[300];
	race_t r = {0};
	pthread_t th[2];
	store_rtxn_t *t = NULL;
	int commits = 0;

	snprintf(dir, sizeof(dir), "%s/race", g_dir);
	CHECK_EQ_INT(store_open(&r.s, dir, MAP, 0), 0);
	if (!r.s)
		return;
	for (int i = 0; i < 2; i++)
		CHECK_EQ_INT(pthread_create(&th[i], NULL, race_reader, &r), 0);
	for (int i = 0; i < 200; i++) {
		uint64_t gen = 0;
		if (store_read_begin(r.s, &t) == 0) {
			gen = store_generation(t);
			store_read_end(t);
		}
		if (race_commit(r.s, gen) == 0)
			commits++;
	}
	CHECK_EQ_INT(commits, 200);
	atomic_store(&r.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(atomic_load(&r.errors), 0);
	CHECK_EQ_INT(atomic_load(&r.torn), 0);
	CHECK(atomic_load(&r.reads) > 0);
	store_close(r.s);
}

/* Same rrset (count and bytes) from two handles, or absent from both. */
static void same_as_fresh(store_t *s, store_rtxn_t *cached, const char *name, uint16_t type)
{
	store_rtxn_t *fresh = NULL;
	store_lookup_t a, b;

	CHECK_EQ_INT(store_read_begin(s, &fresh), 0);
	CHECK_EQ_INT(look(cached, name, type, &a), 0);
	CHECK_EQ_INT(look(fresh, name, type, &b), 0);
	CHECK_EQ_INT(a.exists, b.exists);
	CHECK_EQ_INT(a.has_rrset, b.has_rrset);
	CHECK_EQ_INT(a.has_cname, b.has_cname);
	if (a.has_rrset && b.has_rrset) {
		CHECK_EQ_INT(a.rrset.type, b.rrset.type);
		CHECK_EQ_INT(a.rrset.count, b.rrset.count);
		CHECK_EQ_INT(a.rrset.len, b.rrset.len);
		CHECK(a.rrset.len == b.rrset.len &&
		      memcmp(a.rrset.entries, b.rrset.entries, a.rrset.len) == 0);
	}
	if (a.has_cname && b.has_cname)
		CHECK(a.cname.len == b.cname.len &&
		      memcmp(a.cname.entries, b.cname.entries, a.cname.len) == 0);
	store_read_end(fresh);
}

/* The lookup cache answers as the B-tree does, across commits and slot collisions. */
static void test_lookup_cache(store_t *s)
{
	static const char *names[] = {"c1.cache.", "c2.cache.", "c3.cache.", "c4.cache.",
				      "c5.cache.", "c6.cache.", "tv.cache."};
	char longname[200];
	store_wtxn_t *w = NULL;
	store_rtxn_t *t = NULL;
	store_lookup_t lk, again;
	int api;

	/* 130 octets: longer than a slot's key, so it always takes the B-tree. */
	snprintf(longname, sizeof(longname), "%s.%s.cache.",
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	api = store_source_id(w, "api");
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ_INT(add_a(w, api, names[i], (uint8_t)(i + 1)), 0);
	CHECK_EQ_INT(add(w, api, "tv.cache.", WIRE_TYPE_CNAME, 60, "\2c1\5cache", 10), 0);
	CHECK_EQ_INT(add_a(w, api, longname, 9), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);

	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(store_read_cache(t, 3), 0); /* one set of 2 slots for 8 rrsets */
	CHECK_EQ_INT(store_read_cache(t, 3), ERR_INVAL);
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 7; i++) {
			same_as_fresh(s, t, names[i], WIRE_TYPE_A);
			same_as_fresh(s, t, names[i], WIRE_TYPE_CNAME);
			same_as_fresh(s, t, names[i], WIRE_TYPE_AAAA);
		}
		same_as_fresh(s, t, longname, WIRE_TYPE_A);
	}
	/* A hit is the same place in the map as the miss that filled it. */
	CHECK_EQ_INT(look(t, "c1.cache.", WIRE_TYPE_A, &lk), 0);
	CHECK_EQ_INT(look(t, "C1.cache.", WIRE_TYPE_A, &again), 0);
	CHECK(lk.has_rrset && again.has_rrset && lk.rrset.entries == again.rrset.entries);

	/* Reset and renew without a commit keep the entries; a commit drops the changed ones. */
	store_read_reset(t);
	CHECK_EQ_INT(store_read_renew(t), 0);
	same_as_fresh(s, t, "c1.cache.", WIRE_TYPE_A);
	store_read_reset(t);
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(add_a(w, api, "c1.cache.", 77), 0);
	CHECK_EQ_INT(del(w, api, "c2.cache.", WIRE_TYPE_A, "\x0a\0\0\x02", 4), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(store_read_renew(t), 0);
	CHECK_EQ_INT(look(t, "c1.cache.", WIRE_TYPE_A, &lk), 0);
	CHECK_EQ_INT(lk.rrset.count, 2);
	CHECK_EQ_INT(look(t, "c2.cache.", WIRE_TYPE_A, &lk), 0);
	CHECK(!lk.has_rrset && !lk.exists);
	for (unsigned i = 0; i < 7; i++)
		same_as_fresh(s, t, names[i], WIRE_TYPE_A);
	store_read_end(t);

	/* A cache sized for a small store grows when a commit brings many more rrsets. */
	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(store_read_cache(t, 8192), 0);
	same_as_fresh(s, t, "c3.cache.", WIRE_TYPE_A);
	store_read_reset(t);
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	for (unsigned i = 0; i < 1500; i++) {
		char name[64];
		snprintf(name, sizeof(name), "g%u.grow.cache.", i);
		CHECK_EQ_INT(add_a(w, api, name, (uint8_t)i), 0);
	}
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(store_read_renew(t), 0);
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned i = 0; i < 1500; i += 7) {
			char name[64];
			snprintf(name, sizeof(name), "g%u.grow.cache.", i);
			same_as_fresh(s, t, name, WIRE_TYPE_A);
		}
		same_as_fresh(s, t, "c3.cache.", WIRE_TYPE_A);
	}
	store_read_end(t);

	/* 0 entries: no cache, lookups as before. */
	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(store_read_cache(t, 0), 0);
	same_as_fresh(s, t, "c3.cache.", WIRE_TYPE_A);
	store_read_end(t);
}

/*
 * Issue 10 item 8: another process with a larger map-size grows the store past
 * our map. The second writer is a child forked before it opens anything (LMDB:
 * one env per process, none across fork); a pipe orders the two opens.
 */
#define RESIZE_SMALL (1u << 20)
#define RESIZE_BIG (32u << 20)
#define RESIZE_NAMES 12000 /* ~3 MiB of rrsets: far past the small map */

typedef struct {
	store_t *s;
	atomic_bool stop;
	atomic_int errors, busy, saw_big, renews, last_ok;
	atomic_llong slowest_us;       /* longest renew that saw a remap: what it costs a batch */
	atomic_llong slowest_other_us; /* longest of the others (preemption on a busy machine) */
} grow_t;

static long long mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A worker's pattern: one handle, renew per batch, reset before waiting. */
static void *grow_reader(void *arg)
{
	grow_t *g = arg;
	store_rtxn_t *t = NULL;
	store_lookup_t lk;
	int ret;

	if (store_read_begin(g->s, &t) < 0 || store_read_cache(t, 64) < 0) {
		atomic_fetch_add(&g->errors, 1);
		store_read_end(t);
		return NULL;
	}
	store_read_reset(t);
	for (int i = 0; i < 2000000 && !atomic_load(&g->stop); i++) {
		store_stats_t before, after;
		store_stats(g->s, &before);
		long long t0 = mono_us(), us;
		ret = store_read_renew(t);
		us = mono_us() - t0;
		store_stats(g->s, &after);
		atomic_llong *slowest =
		    after.map_resizes != before.map_resizes ? &g->slowest_us : &g->slowest_other_us;
		if (us > atomic_load(slowest))
			atomic_store(slowest, us);
		if (ret < 0) {
			/* -EBUSY: a remap waits for a snapshot another thread holds (store.h). */
			if (ret != -EBUSY && atomic_fetch_add(&g->errors, 1) == 0)
				fprintf(stderr, "grow reader: renew: %s\n", err_str(ret));
			if (ret == -EBUSY)
				atomic_fetch_add(&g->busy, 1);
			atomic_store(&g->last_ok, 0);
			continue;
		}
		atomic_fetch_add(&g->renews, 1);
		atomic_store(&g->last_ok, 1);
		if (look(t, "marker.grow.", WIRE_TYPE_A, &lk) < 0 || !lk.has_rrset)
			atomic_fetch_add(&g->errors, 1);
		if (look(t, "h11999.big.grow.", WIRE_TYPE_A, &lk) == 0 && lk.has_rrset)
			atomic_store(&g->saw_big, 1);
		store_read_reset(t);
	}
	store_read_end(t);
	return NULL;
}

/* The child: wait for the go byte, open with the big map, run fn, exit with its status. */
static pid_t spawn_writer(const char *dir, int (*fn)(store_t *), int *go_fd)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		store_t *cs = NULL;
		char c;
		close(p[1]);
		if (read(p[0], &c, 1) != 1 || store_open(&cs, dir, RESIZE_BIG, 0) < 0)
			_exit(3);
		int ret = fn(cs);
		store_close(cs);
		_exit(ret < 0 ? 4 : 0);
	}
	close(p[0]);
	*go_fd = p[1];
	return pid;
}

static int wait_writer(pid_t pid, int go_fd)
{
	int status = 0;

	if (write(go_fd, "g", 1) != 1)
		return -1;
	close(go_fd);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static int write_big(store_t *cs)
{
	store_wtxn_t *w = NULL;
	char name[64];
	int ret, src;

	if ((ret = store_write_begin(cs, &w)) < 0)
		return ret;
	src = store_source_id(w, "import:grow.");
	for (int i = 0; i < RESIZE_NAMES && ret == 0; i++) {
		snprintf(name, sizeof(name), "h%05d.big.grow.", i);
		ret = add(w, src, name, WIRE_TYPE_TXT, 300,
			  "\xf0"
			  "padding-padding-padding-padding-padding-padding-padding-padding-"
			  "padding-padding-padding-padding-padding-padding-padding-padding-"
			  "padding-padding-padding-padding-padding-padding-padding-padding-"
			  "padding-padding-padding-padding-padding-padding-padding-padd",
			  241);
		if (ret == 0)
			ret = add_a(w, src, name, (uint8_t)i);
	}
	if (ret < 0) {
		store_write_abort(w);
		return ret;
	}
	return store_write_commit(w);
}

static long file_size(const char *dir)
{
	char path[400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/*
 * Readers renew all along while the child commits past our map. With
 * hold_live, a snapshot from before the growth is held across it: it must
 * still read its own data, and the remap waits for it (readers get -EBUSY).
 */
static void test_resized(const char *sub, bool hold_live)
{
	char dir[300];
	grow_t g = {0};
	pthread_t th[2];
	store_rtxn_t *t = NULL, *live = NULL, *other = NULL;
	store_wtxn_t *w = NULL;
	store_lookup_t lk;
	store_stats_t st;
	int go = -1, nth = 0;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/%s", g_dir, sub);
	pid = spawn_writer(dir, write_big, &go);
	CHECK(pid > 0);
	if (pid <= 0)
		return;
	CHECK_EQ_INT(store_open(&g.s, dir, RESIZE_SMALL, 0), 0);
	if (!g.s) {
		wait_writer(pid, go);
		return;
	}
	CHECK_EQ_INT(store_write_begin(g.s, &w), 0);
	CHECK_EQ_INT(add_a(w, store_source_id(w, "api"), "marker.grow.", 7), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	if (hold_live) {
		CHECK_EQ_INT(store_read_begin(g.s, &other), 0);
		store_read_reset(other);
		CHECK_EQ_INT(store_read_begin(g.s, &live), 0);
	}
	for (; nth < 2; nth++)
		CHECK_EQ_INT(pthread_create(&th[nth], NULL, grow_reader, &g), 0);
	CHECK_EQ_INT(wait_writer(pid, go), 0);
	CHECK(file_size(dir) > (long)RESIZE_SMALL); /* the map really grew */
	if (other) {
		/* Its own thread holds `live`: waiting for quiet would wait for itself. */
		CHECK_EQ_INT(store_read_renew(other), -EBUSY);
		CHECK(look(other, "marker.grow.", WIRE_TYPE_A, &lk) < 0); /* no snapshot */
	}
	if (live) {
		CHECK_EQ_INT(look(live, "marker.grow.", WIRE_TYPE_A, &lk), 0);
		CHECK(lk.has_rrset);
		CHECK_EQ_INT(look(live, "h00001.big.grow.", WIRE_TYPE_A, &lk), 0);
		CHECK(!lk.has_rrset); /* its snapshot predates the child's commit */
		store_read_reset(live);
		CHECK_EQ_INT(store_read_renew(live), 0);
		CHECK_EQ_INT(look(live, "h11999.big.grow.", WIRE_TYPE_TXT, &lk), 0);
		CHECK(lk.has_rrset);
		store_read_end(live);
	}
	if (other) {
		CHECK_EQ_INT(store_read_renew(other), 0);
		CHECK_EQ_INT(look(other, "marker.grow.", WIRE_TYPE_A, &lk), 0);
		CHECK(lk.has_rrset);
		store_read_end(other);
	}
	/* Readers must come to see the new data: bounded, generous for a loaded machine. */
	for (int i = 0; i < 1000 && !(atomic_load(&g.saw_big) && atomic_load(&g.last_ok)); i++)
		usleep(10 * 1000);
	atomic_store(&g.stop, true);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	CHECK(atomic_load(&g.saw_big));
	CHECK(atomic_load(&g.last_ok));
	CHECK_EQ_INT(atomic_load(&g.errors), 0);
	CHECK(atomic_load(&g.renews) > 0);
	printf("resize %s: %d renews, %d -EBUSY, slowest renew %lld us with a remap, %lld us "
	       "without\n",
	       sub, atomic_load(&g.renews), atomic_load(&g.busy),
	       (long long)atomic_load(&g.slowest_us), (long long)atomic_load(&g.slowest_other_us));
	/* Fresh handles and writes work on the grown map. */
	CHECK_EQ_INT(count_of(g.s, "h05000.big.grow.", WIRE_TYPE_A), 1);
	w = NULL; /* a failed begin leaves it alone */
	CHECK_EQ_INT(store_write_begin(g.s, &w), 0);
	if (w) {
		CHECK_EQ_INT(add_a(w, store_source_id(w, "api"), "after.grow.", 8), 0);
		CHECK_EQ_INT(store_write_commit(w), 0);
	}
	CHECK_EQ_INT(count_of(g.s, "after.grow.", WIRE_TYPE_A), 1);
	CHECK_EQ_INT(store_check(g.s), 0);
	CHECK_EQ_INT(store_read_begin(g.s, &t), 0);
	store_read_end(t);
	store_stats(g.s, &st);
	CHECK_EQ_INT(st.map_resizes, 1);
	CHECK(st.map_bytes >= RESIZE_BIG);
	store_close(g.s);
}

static int write_tiny(store_t *cs)
{
	store_wtxn_t *w = NULL;
	int ret;

	if ((ret = store_write_begin(cs, &w)) < 0)
		return ret;
	if ((ret = add_a(w, store_source_id(w, "api"), "tiny.grow.", 1)) < 0) {
		store_write_abort(w);
		return ret;
	}
	return store_write_commit(w);
}

/* One write txn of RESIZE_NAMES/4 names, like an API batch. */
static int write_batch(store_t *s, int base)
{
	store_wtxn_t *w = NULL;
	char name[64];
	int ret, src;

	if ((ret = store_write_begin(s, &w)) < 0)
		return ret;
	src = store_source_id(w, "api");
	for (int i = 0; i < RESIZE_NAMES / 4 && ret == 0; i++) {
		snprintf(name, sizeof(name), "b%05d.full.grow.", base + i);
		ret = add(w, src, name, WIRE_TYPE_TXT, 300, "\x20padding-padding-padding-padding",
			  33);
	}
	if (ret < 0) {
		store_write_abort(w);
		return ret;
	}
	return store_write_commit(w);
}

/*
 * MDB_MAP_FULL with a larger map recorded by another process: the write that
 * ran out fails, the next one re-maps and succeeds, up to that larger size.
 */
static void test_full_grows(void)
{
	char dir[300];
	store_t *s = NULL;
	int go = -1, ret = 0, batches = 0;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/full", g_dir);
	pid = spawn_writer(dir, write_tiny, &go);
	CHECK(pid > 0);
	if (pid <= 0)
		return;
	CHECK_EQ_INT(store_open(&s, dir, RESIZE_SMALL, 0), 0);
	CHECK_EQ_INT(wait_writer(pid, go), 0);
	if (!s)
		return;
	/* Bounded: 8 batches of ~0.5 MiB fit in the big map, not in the small one. */
	for (int i = 0; i < 8; i++) {
		ret = write_batch(s, i * RESIZE_NAMES);
		if (ret == ERR_SPACE)
			ret = write_batch(s, i * RESIZE_NAMES); /* the caller's retry */
		if (ret < 0)
			break;
		batches++;
	}
	CHECK_EQ_INT(ret, 0);
	CHECK_EQ_INT(batches, 8);
	CHECK(file_size(dir) > (long)RESIZE_SMALL);
	CHECK_EQ_INT(count_of(s, "tiny.grow.", WIRE_TYPE_A), 1);
	store_close(s);
}

/* Is `text` among the snapshot's NS owners? -1 when the list is not available. */
static int ns_listed(store_rtxn_t *t, const char *text)
{
	nm_t n = nm(text);
	uint8_t key[WIRE_KEY_MAX];
	size_t klen = 0;
	const store_key_t *own = NULL;
	int cnt = store_ns_owners(t, &own);

	if (cnt < 0 || wire_name_to_key(n.b, n.n, key, &klen) < 0)
		return -1;
	for (int i = 0; i < cnt; i++) {
		if (own[i].len == klen && memcmp(own[i].key, key, klen) == 0)
			return 1;
	}
	return 0;
}

static int ns_count(store_t *s)
{
	store_rtxn_t *t = NULL;
	const store_key_t *own;
	int n;

	if (store_read_begin(s, &t) < 0)
		return -1000;
	n = store_ns_owners(t, &own);
	store_read_end(t);
	return n;
}

/*
 * Issue 17 performance: the NS owner list and the wildcard flag the query path
 * uses instead of walking every label follow every writer (add, delete, source
 * clear, bulk replace), a store from before the index gets one at open, and more
 * owners than the list holds say "walk".
 */
/* The meta "version" of the store in dir, read with LMDB directly; 0 when unreadable. */
static unsigned schema_version(const char *dir)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi meta;
	MDB_val k = {7, "version"}, v;
	unsigned ver = 0;

	if (mdb_env_create(&env) != 0)
		return 0;
	mdb_env_set_maxdbs(env, 8);
	if (mdb_env_open(env, dir, MDB_RDONLY, 0640) == 0 &&
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0) {
		if (mdb_dbi_open(txn, "meta", 0, &meta) == 0 && mdb_get(txn, meta, &k, &v) == 0 &&
		    v.mv_size == 4) {
			const uint8_t *b = v.mv_data;
			ver = (unsigned)b[0] << 24 | (unsigned)b[1] << 16 | (unsigned)b[2] << 8 |
			      b[3];
		}
		mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	return ver;
}

static void set_schema_version(const char *dir, unsigned ver)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi meta;
	uint8_t b[4] = {(uint8_t)(ver >> 24), (uint8_t)(ver >> 16), (uint8_t)(ver >> 8),
			(uint8_t)ver};
	MDB_val k = {7, "version"}, v = {4, b};

	CHECK_EQ_INT(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	CHECK_EQ_INT(mdb_env_open(env, dir, 0, 0640), 0);
	CHECK_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_EQ_INT(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	CHECK_EQ_INT(mdb_put(txn, meta, &k, &v, 0), 0);
	CHECK_EQ_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void test_shape(void)
{
	char dir[300];
	store_t *s = NULL;
	store_wtxn_t *w = NULL;
	store_rtxn_t *t = NULL;
	nm_t ns = nm("ns.other.test."), cut = nm("cut.shape.test."), wild = nm("*.w.shape.test.");
	const uint8_t *rd[1] = {ns.b};
	uint16_t rl[1] = {(uint16_t)ns.n};
	int src = -1, src2 = -1;

	snprintf(dir, sizeof(dir), "%s/shape", g_dir);
	CHECK_EQ_INT(store_open(&s, dir, MAP, 0), 0);
	if (!s)
		return;
	CHECK_EQ_INT(ns_count(s), 0);
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK((src = store_source_id(w, "a")) >= 0 && (src2 = store_source_id(w, "b")) >= 0);
	CHECK_EQ_INT(add(w, src, "shape.test.", WIRE_TYPE_NS, 60, ns.b, (uint16_t)ns.n), 0);
	CHECK_EQ_INT(add(w, src, "cut.shape.test.", WIRE_TYPE_NS, 60, ns.b, (uint16_t)ns.n), 0);
	CHECK_EQ_INT(add(w, src2, "cut.shape.test.", WIRE_TYPE_NS, 60, ns.b, (uint16_t)ns.n), 0);
	CHECK_EQ_INT(add_a(w, src, "x.y.*.v.shape.test.", 1), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(ns_listed(t, "shape.test."), 1);
	CHECK_EQ_INT(ns_listed(t, "cut.shape.test."), 1);
	CHECK_EQ_INT(ns_listed(t, "x.y.*.v.shape.test."), 0);
	CHECK(store_may_have_wildcards(t)); /* "*" as an inner label: an empty wildcard */
	store_read_end(t);
	t = NULL;

	/* One source of two goes: the rrset stays, so does its owner. Then the other. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(store_source_clear(w, src2), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(ns_count(s), 2);
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(store_rr_del(w, src, cut.b, cut.n, WIRE_TYPE_NS, NULL, 0), 0);
	CHECK_EQ_INT(store_rr_del(w, src, nm("x.y.*.v.shape.test.").b, nm("x.y.*.v.shape.test.").n,
				  0, NULL, 0),
		     0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(ns_listed(t, "cut.shape.test."), 0);
	CHECK_EQ_INT(ns_listed(t, "shape.test."), 1);
	CHECK(!store_may_have_wildcards(t));
	store_read_end(t);
	t = NULL;

	/* The bulk writer (etcd): a replace creates, an empty replace deletes. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(store_rrset_replace(w, src, cut.b, cut.n, WIRE_TYPE_NS, 60, rd, rl, 1), 1);
	uint8_t ip[4] = {10, 0, 0, 9};
	const uint8_t *ipp[1] = {ip};
	uint16_t ipl[1] = {4};
	CHECK_EQ_INT(store_rrset_replace(w, src, wild.b, wild.n, WIRE_TYPE_A, 60, ipp, ipl, 1), 1);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(ns_count(s), 2);
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(store_rrset_replace(w, src, cut.b, cut.n, WIRE_TYPE_NS, 60, rd, rl, 0), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(ns_listed(t, "cut.shape.test."), 0);
	CHECK(store_may_have_wildcards(t));
	store_read_end(t);
	t = NULL;

	/* More owners than the list holds: the caller must walk. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	for (int i = 0; i < STORE_NSOWN_MAX; i++) {
		char name[64];
		snprintf(name, sizeof(name), "d%d.shape.test.", i);
		CHECK_EQ_INT(add(w, src, name, WIRE_TYPE_NS, 60, ns.b, (uint16_t)ns.n), 0);
	}
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(ns_count(s), ERR_TOOBIG);
	store_close(s);
	s = NULL;

	/* A store from before the index (no marker, no owner keys) gets one at open. */
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_dbi meta;
	MDB_val k, v;
	CHECK_EQ_INT(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	CHECK_EQ_INT(mdb_env_open(env, dir, 0, 0640), 0);
	CHECK_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_EQ_INT(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	CHECK_EQ_INT(mdb_cursor_open(txn, meta, &cur), 0);
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		if ((k.mv_size > 6 && memcmp(k.mv_data, "nsown:", 6) == 0) ||
		    (k.mv_size == 8 && memcmp(k.mv_data, "shape-v1", 8) == 0) ||
		    (k.mv_size == 11 && memcmp(k.mv_data, "wild-rrsets", 11) == 0))
			CHECK_EQ_INT(mdb_cursor_del(cur, 0), 0);
	}
	mdb_cursor_close(cur);
	/* ... and says it is schema 1, as such a store does. */
	uint8_t ver[4] = {0, 0, 0, 1};
	k = (MDB_val){7, "version"};
	v = (MDB_val){4, ver};
	CHECK_EQ_INT(mdb_put(txn, meta, &k, &v, 0), 0);
	CHECK_EQ_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	CHECK_EQ_INT(store_open(&s, dir, MAP, 0), 0);
	if (!s)
		return;
	CHECK_EQ_INT(ns_count(s), ERR_TOOBIG);
	/* Upgraded to the version that keeps the index, so a binary that does not keep it
	 * refuses the store rather than let the index drift. */
	CHECK_EQ_INT(schema_version(dir), 2); /* 2: the first that keeps the index */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	for (int i = 0; i < STORE_NSOWN_MAX; i++) {
		char name[64];
		nm_t d;
		snprintf(name, sizeof(name), "d%d.shape.test.", i);
		d = nm(name);
		CHECK_EQ_INT(store_rr_del(w, src, d.b, d.n, WIRE_TYPE_NS, NULL, 0), 0);
	}
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(ns_listed(t, "shape.test."), 1);
	CHECK(store_may_have_wildcards(t));
	store_read_end(t);
	store_close(s);

	/* A store from a newer skydns is refused, not written with rules this one lacks. */
	set_schema_version(dir, STORE_SCHEMA_VERSION + 1);
	s = NULL;
	CHECK(store_open(&s, dir, MAP, 0) < 0);
	CHECK(s == NULL);
	set_schema_version(dir, STORE_SCHEMA_VERSION);
}

/*
 * Issue 16: a commit no longer empties the lookup cache; the renew after it forgets
 * only what the commit log names. Every answer after the renew must be the fresh
 * snapshot's: changed rrsets, new and deleted names (a remembered NXDOMAIN or NODATA),
 * a name that becomes an empty non-terminal, a changed CNAME, long (pointer) values,
 * and a commit too big to log (the whole cache goes).
 */
static void check_all(store_t *s, store_rtxn_t *t, const char *const *names, size_t n)
{
	static const uint16_t types[] = {WIRE_TYPE_A, WIRE_TYPE_AAAA, WIRE_TYPE_CNAME,
					 WIRE_TYPE_TXT};

	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
			same_as_fresh(s, t, names[i], types[k]);
}

static void commit_then_renew(store_rtxn_t *t, store_wtxn_t *w)
{
	store_read_reset(t);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(store_read_renew(t), 0);
}

/*
 * Names that differ only in their last octets (host0 .. host19999, as fleets name their
 * machines) must spread over the cache's sets: with a hash that moved those octets only
 * into high bits, half of a second pass over 20k names missed in a cache sized for them.
 */
static void test_lookup_cache_spread(store_t *s)
{
	enum { N = 20000 };
	store_wtxn_t *w = NULL;
	store_rtxn_t *t = NULL;
	store_lookup_t lk;
	uint64_t h0, m0, h1, m1;
	char name[64];
	int api;

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	api = store_source_id(w, "api");
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "host%u.skydns.local.", i);
		CHECK_EQ_INT(add_a(w, api, name, (uint8_t)i), 0);
	}
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(store_read_cache(t, 1 << 17), 0);
	for (int pass = 0; pass < 2; pass++) {
		store_cache_counts(t, &h0, &m0);
		for (unsigned i = 0; i < N; i++) {
			snprintf(name, sizeof(name), "host%u.skydns.local.", i);
			CHECK(look(t, name, WIRE_TYPE_A, &lk) == 0 && lk.has_rrset);
		}
		store_cache_counts(t, &h1, &m1);
	}
	/* Two ways per set, sets for twice the rrsets: a few percent of the names share a set
	 * with two others (Poisson), and a pass in order evicts them each time. */
	CHECK(h1 - h0 + m1 - m0 == N);
	CHECK(m1 - m0 < N / 5);
	printf("lookup cache, second pass over %d names: %llu missed\n", N,
	       (unsigned long long)(m1 - m0));
	store_read_end(t);
}

static void test_lookup_cache_churn(store_t *s)
{
	static const char *const names[] = {"a.ch.", "b.ch.",	     "c.ch.",  "nx.ch.",
					    "e.ch.", "x.e.ch.",	     "al.ch.", "long.ch.",
					    "ch.",   "deep.x.e.ch.", "f.ch.",  "g.ch."};
	size_t n = sizeof(names) / sizeof(names[0]);
	uint8_t six[16] = {0xfd, 0, [15] = 1};
	store_wtxn_t *w = NULL;
	store_rtxn_t *t = NULL;
	store_lookup_t lk;
	int api;

	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	api = store_source_id(w, "api");
	CHECK_EQ_INT(add_a(w, api, "a.ch.", 1), 0);
	CHECK_EQ_INT(add_a(w, api, "b.ch.", 2), 0);
	CHECK_EQ_INT(add_a(w, api, "c.ch.", 3), 0);
	CHECK_EQ_INT(add_a(w, api, "f.ch.", 6), 0);
	CHECK_EQ_INT(add_a(w, api, "g.ch.", 7), 0);
	CHECK_EQ_INT(add(w, api, "al.ch.", WIRE_TYPE_CNAME, 60, "\1a\2ch", 6), 0);
	for (uint8_t i = 0; i < 12; i++) /* 4 + 12 * 11 octets: too long to copy into a slot */
		CHECK_EQ_INT(add_a(w, api, "long.ch.", (uint8_t)(100 + i)), 0);
	CHECK_EQ_INT(store_write_commit(w), 0);

	CHECK_EQ_INT(store_read_begin(s, &t), 0);
	CHECK_EQ_INT(store_read_cache(t, 1024), 0);
	for (int round = 0; round < 2; round++) /* the second round is answered by the cache */
		check_all(s, t, names, n);

	/* Changed, deleted, created, an empty non-terminal appearing, a retargeted CNAME. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	CHECK_EQ_INT(add_a(w, api, "a.ch.", 11), 0);
	CHECK_EQ_INT(del(w, api, "b.ch.", WIRE_TYPE_A, NULL, 0), 0);
	CHECK_EQ_INT(add_a(w, api, "nx.ch.", 4), 0);
	CHECK_EQ_INT(add(w, api, "c.ch.", WIRE_TYPE_AAAA, 60, six, 16), 0);
	CHECK_EQ_INT(add_a(w, api, "deep.x.e.ch.", 5), 0);
	CHECK_EQ_INT(del(w, api, "al.ch.", WIRE_TYPE_CNAME, NULL, 0), 0);
	CHECK_EQ_INT(add(w, api, "al.ch.", WIRE_TYPE_CNAME, 60, "\1c\2ch", 6), 0);
	CHECK_EQ_INT(add_a(w, api, "long.ch.", 99), 0);
	commit_then_renew(t, w);
	CHECK_EQ_INT(look(t, "a.ch.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.has_rrset && lk.rrset.count == 2);
	CHECK_EQ_INT(look(t, "b.ch.", WIRE_TYPE_A, &lk), 0);
	CHECK(!lk.exists && !lk.has_rrset);
	CHECK_EQ_INT(look(t, "nx.ch.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.has_rrset);
	CHECK_EQ_INT(look(t, "c.ch.", WIRE_TYPE_AAAA, &lk), 0);
	CHECK(lk.has_rrset);
	CHECK_EQ_INT(look(t, "e.ch.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.exists && !lk.has_rrset); /* an empty non-terminal now, NXDOMAIN before */
	CHECK_EQ_INT(look(t, "long.ch.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.has_rrset && lk.rrset.count == 13);
	check_all(s, t, names, n);

	/* Commits one after another, a renew between each: f.ch. and g.ch. take turns. */
	for (int i = 0; i < 40; i++) {
		const char *name = i % 2 ? "f.ch." : "g.ch.";
		uint8_t ip[4] = {10, 1, 0, (uint8_t)i};
		CHECK_EQ_INT(store_write_begin(s, &w), 0);
		CHECK_EQ_INT(del(w, api, name, WIRE_TYPE_A, NULL, 0), 0);
		CHECK_EQ_INT(add(w, api, name, WIRE_TYPE_A, 300, ip, 4), 0);
		if (i % 10 == 9)
			CHECK_EQ_INT(del(w, api, "deep.x.e.ch.", WIRE_TYPE_A, NULL, 0), 0);
		if (i % 10 == 4)
			CHECK_EQ_INT(add_a(w, api, "deep.x.e.ch.", (uint8_t)i), 0);
		commit_then_renew(t, w);
		CHECK_EQ_INT(look(t, name, WIRE_TYPE_A, &lk), 0);
		CHECK(lk.has_rrset && lk.rrset.len == 11 && lk.rrset.entries[10] == i);
		check_all(s, t, names, n);
	}

	/* Several commits between two renews: all of them are applied. */
	store_read_reset(t);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(store_write_begin(s, &w), 0);
		CHECK_EQ_INT(add_a(w, api, i == 0 ? "a.ch." : i == 1 ? "b.ch." : "e.ch.", 30), 0);
		CHECK_EQ_INT(store_write_commit(w), 0);
	}
	CHECK_EQ_INT(store_read_renew(t), 0);
	check_all(s, t, names, n);

	/* Too many names for the log: the commit says "everything", the cache empties. */
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	for (unsigned i = 0; i < 300; i++) {
		char name[64];
		snprintf(name, sizeof(name), "many%u.ch.", i);
		CHECK_EQ_INT(add_a(w, api, name, (uint8_t)i), 0);
	}
	CHECK_EQ_INT(add_a(w, api, "c.ch.", 33), 0);
	commit_then_renew(t, w);
	CHECK_EQ_INT(look(t, "c.ch.", WIRE_TYPE_A, &lk), 0);
	CHECK(lk.has_rrset && lk.rrset.count == 2);
	check_all(s, t, names, n);
	store_read_end(t);
}

/* Resident KiB of this process's mappings of dir/data.mdb (smaps). */
static long map_rss_kib(const char *dir)
{
	char want[400], line[512];
	long kib = 0;
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "re");

	snprintf(want, sizeof(want), "%s/data.mdb", dir);
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		long v;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = strstr(line, want) != NULL;
		else if (in && sscanf(line, "Rss: %ld kB", &v) == 1)
			kib += v;
	}
	fclose(f);
	return kib;
}

static int sum_val(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	(void)k;
	(void)kl;
	for (size_t i = 0; i < vl; i++)
		*(unsigned *)ctx += v[i];
	return 0;
}

/* store_release_map (issue 12: a watcher's re-list walks the whole store) drops the
 * pages a walk made resident from this process, and the data reads back the same. */
static void test_release_map(void)
{
	char dir[300];
	uint8_t val[4000];
	store_t *s = NULL;
	store_wtxn_t *w = NULL;
	store_rtxn_t *r = NULL;
	unsigned sum1 = 0, sum2 = 0;

	snprintf(dir, sizeof(dir), "%s/release", g_dir);
	CHECK_EQ_INT(store_open(&s, dir, MAP, 0), 0);
	if (!s)
		return;
	CHECK_EQ_INT(store_write_begin(s, &w), 0);
	for (int i = 0; w && i < 4096; i++) { /* ~16 MiB of values */
		char key[32];
		memset(val, i & 255, sizeof(val));
		snprintf(key, sizeof(key), "k%06d", i);
		CHECK_EQ_INT(
		    store_kv_put(w, "rel", (const uint8_t *)key, strlen(key), val, sizeof(val)), 0);
	}
	if (w)
		CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(store_read_begin(s, &r), 0);
	if (r) {
		CHECK_EQ_INT(store_kv_iter(r, "rel", NULL, 0, sum_val, &sum1), 0);
		long before = map_rss_kib(dir);
		store_release_map(s);
		long after = map_rss_kib(dir);
		printf("store_release_map: data.mdb resident %ld -> %ld KiB\n", before, after);
		CHECK(before > 8 * 1024);
		CHECK(after < before / 8);
		CHECK_EQ_INT(store_kv_iter(r, "rel", NULL, 0, sum_val, &sum2), 0);
		CHECK(sum1 == sum2 && sum1 != 0);
		store_read_end(r);
	}
	store_close(s);
}

/* Opened by root in a directory another account owns (the package's data-dir,
 * `skydns -import` run as root): the store files go to that account, so the
 * service running as it can open them. Before, they stayed root's and the
 * service failed with "store: open /var/lib/skydns: Permission denied". */
static void test_root_gives_files_to_dir_owner(void)
{
	char dir[300], path[340];
	store_t *s = NULL;
	struct stat st;

	if (geteuid() != 0) {
		printf("SKIP root_gives_files_to_dir_owner: not root\n");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/owned", g_dir);
	CHECK_EQ_INT(mkdir(dir, 0750), 0);
	CHECK_EQ_INT(chown(dir, 65534, 65534), 0);
	CHECK_EQ_INT(store_open(&s, dir, MAP, 0), 0);
	store_close(s);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, i ? "lock.mdb" : "data.mdb");
		CHECK_EQ_INT(stat(path, &st), 0);
		CHECK_EQ_INT((int)st.st_uid, 65534);
		CHECK_EQ_INT((int)st.st_gid, 65534);
	}
}

int main(void)
{
	char dir[300];
	store_t *s = NULL;

	snprintf(g_dir, sizeof(g_dir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/a/b", g_dir); /* created like mkdir -p */
	CHECK_EQ_INT(store_open(&s, dir, MAP, 0), 0);
	if (s) {
		test_lookup(s);
		test_sources(s);
		test_delete(s);
		test_txn(s);
		test_source_limit(s);
		test_iter(s);
		test_health(s);
		test_lookup_cache(s);
		test_lookup_cache_churn(s);
		test_lookup_cache_spread(s);
		store_close(s);
		test_reopen(dir);
	}
	test_map_full();
	test_version();
	test_shape();
	test_kill9();
	test_threads();
	test_resized("grow", false);
	test_resized("grow-live", true);
	test_full_grows();
	test_release_map();
	test_root_gives_files_to_dir_owner();
	nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}
