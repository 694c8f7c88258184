/*
 * test_k8s_sync: Kubernetes objects applied to a temp store (watchers/k8smap.c,
 * watchers/k8ssync.c): a slice seen before its Service, headless readiness
 * (ready missing = true, publishNotReadyAddresses), the merge of several slices,
 * SRV weights, PTR kept apart per Service, a slice that moves to another
 * Service, deletes down to NXDOMAIN, resourceVersions stored with the records,
 * a reset (re-list) that drops what the list no longer has, an abort changing
 * nothing, and RFC 3339 trigger times.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/err.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "store/store.h"
#include "tests/unit/check.h"
#include "watchers/k8smap.h"
#include "watchers/k8ssync.h"

static store_t *g_s;
static k8ssync_t *g_k;

static int64_t meta(const char *key);
static int64_t stored_objects(void);

static int apply(int kind, const char *json, bool del)
{
	json_t *o = json_loads(json, 0, NULL);
	int ret;

	if (!o)
		return ERR_PARSE;
	ret = k8ssync_begin(g_k);
	if (ret == 0)
		ret = del ? k8ssync_del(g_k, kind, o) : k8ssync_put(g_k, kind, o);
	json_decref(o);
	return ret;
}

/* Records of `type` at a text name; -1 when the name does not exist at all. */
static int count(const char *name, uint16_t type)
{
	uint8_t wire[255], key[255];
	size_t wl, kl, pos = 0;
	store_rtxn_t *t;
	store_lookup_t lk;
	store_rr_t rr;
	int n = 0;

	if (wire_name_from_text(name, wire, &wl) < 0 || wire_name_to_key(wire, wl, key, &kl) < 0 ||
	    store_read_begin(g_s, &t) < 0)
		return -2;
	if (store_lookup(t, key, kl, type, &lk) < 0)
		n = -2;
	else if (!lk.exists)
		n = -1;
	else if (lk.has_rrset)
		while (store_rrset_next(&lk.rrset, &pos, &rr) == 1)
			n++;
	store_read_end(t);
	return n;
}

/* The weight of the first SRV at name (-1 if none). */
static int srv_weight(const char *name)
{
	uint8_t wire[255], key[255];
	size_t wl, kl, pos = 0;
	store_rtxn_t *t;
	store_lookup_t lk;
	store_rr_t rr;
	int w = -1;

	if (wire_name_from_text(name, wire, &wl) < 0 || wire_name_to_key(wire, wl, key, &kl) < 0 ||
	    store_read_begin(g_s, &t) < 0)
		return -2;
	if (store_lookup(t, key, kl, WIRE_TYPE_SRV, &lk) == 0 && lk.has_rrset &&
	    store_rrset_next(&lk.rrset, &pos, &rr) == 1 && rr.rdlen >= 6)
		w = rr.rdata[2] << 8 | rr.rdata[3];
	store_read_end(t);
	return w;
}

#define SVC_DB                                                                                     \
	"{\"metadata\":{\"namespace\":\"ns\",\"name\":\"db\",\"resourceVersion\":\"7\"},"          \
	"\"spec\":{\"clusterIP\":\"None\",\"ports\":[{\"name\":\"pg\",\"port\":5432}]}}"
#define SLICE(name, svc, eps)                                                                      \
	"{\"metadata\":{\"namespace\":\"ns\",\"name\":\"" name "\",\"labels\":"                    \
	"{\"kubernetes.io/service-name\":\"" svc "\"},\"annotations\":"                            \
	"{\"endpoints.kubernetes.io/last-change-trigger-time\":\"2026-12-02T03:04:05Z\"}},"        \
	"\"addressType\":\"IPv4\",\"endpoints\":" eps ","                                          \
	"\"ports\":[{\"name\":\"pg\",\"protocol\":\"TCP\",\"port\":5432},"                         \
	"{\"name\":null,\"port\":1},{\"name\":\"x\",\"port\":null}]}"

static void test_headless(void)
{
	char rv[64];

	/* The slice first: no Service yet, no records. */
	CHECK_EQ_INT(apply(K8SSYNC_SLICES,
			   SLICE("db-1", "db",
				 "[{\"addresses\":[\"10.0.0.1\"],\"hostname\":\"db-0\"},"
				 "{\"addresses\":[\"10.0.0.2\"],\"conditions\":{\"ready\":false}},"
				 "{\"addresses\":[\"10.0.0.3\"],\"conditions\":{\"ready\":true}}]"),
			   false),
		     0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 1), 0);
	CHECK_EQ_INT(count("db.ns.svc.cluster.local.", WIRE_TYPE_A), -1);

	CHECK_EQ_INT(apply(K8SSYNC_SERVICES, SVC_DB, false), 0);
	CHECK_EQ_INT(apply(K8SSYNC_SLICES,
			   SLICE("db-2", "db",
				 "[{\"addresses\":[\"10.0.1.1\"]},{\"addresses\":"
				 "[\"bogus\"]},{\"addresses\":[]}]"),
			   false),
		     0);
	CHECK_EQ_INT(k8ssync_set_rv(g_k, K8SSYNC_SERVICES, "7"), 0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 1), 0);
	CHECK_EQ_INT(count("db.ns.svc.cluster.local.", WIRE_TYPE_A), 3);
	CHECK_EQ_INT(count("db-0.db.ns.svc.cluster.local.", WIRE_TYPE_A), 1);
	CHECK_EQ_INT(count("10-0-0-2.db.ns.svc.cluster.local.", WIRE_TYPE_A), -1);
	CHECK_EQ_INT(count("10-0-0-3.db.ns.svc.cluster.local.", WIRE_TYPE_A), 1);
	CHECK_EQ_INT(count("_pg._tcp.db.ns.svc.cluster.local.", WIRE_TYPE_SRV), 3);
	CHECK_EQ_INT(srv_weight("_pg._tcp.db.ns.svc.cluster.local."), 33);
	CHECK_EQ_INT(count("_x._tcp.db.ns.svc.cluster.local.", WIRE_TYPE_SRV), -1);
	CHECK_EQ_INT(count("1.0.0.10.in-addr.arpa.", WIRE_TYPE_PTR), 1);
	CHECK_EQ_INT(k8ssync_stored_rv(g_k, K8SSYNC_SERVICES, rv, sizeof(rv)), 0);
	CHECK(strcmp(rv, "7") == 0);
	CHECK_EQ_INT(k8ssync_stored_rv(g_k, K8SSYNC_SLICES, rv, sizeof(rv)), 0);
	CHECK(rv[0] == 0);

	/* Another Service with the same endpoint address: its own PTR beside db's. */
	CHECK_EQ_INT(apply(K8SSYNC_SERVICES,
			   "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"db2\"},"
			   "\"spec\":{\"clusterIP\":\"None\",\"publishNotReadyAddresses\":true}}",
			   false),
		     0);
	CHECK_EQ_INT(
	    apply(K8SSYNC_SLICES,
		  SLICE("db2-1", "db2",
			"[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":false}}]"),
		  false),
	    0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 1), 0);
	CHECK_EQ_INT(count("db2.ns.svc.cluster.local.", WIRE_TYPE_A), 1); /* publishNotReady */
	CHECK_EQ_INT(count("1.0.0.10.in-addr.arpa.", WIRE_TYPE_PTR), 2);

	/* The slice moves to db2: db loses its endpoints, db2 gains them. */
	CHECK_EQ_INT(
	    apply(K8SSYNC_SLICES, SLICE("db-2", "db2", "[{\"addresses\":[\"10.0.1.1\"]}]"), false),
	    0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 1), 0);
	CHECK_EQ_INT(count("db.ns.svc.cluster.local.", WIRE_TYPE_A), 2);
	CHECK_EQ_INT(count("db2.ns.svc.cluster.local.", WIRE_TYPE_A), 2);

	/* An abort changes nothing. */
	CHECK_EQ_INT(apply(K8SSYNC_SERVICES, SVC_DB, true), 0);
	k8ssync_abort(g_k);
	CHECK_EQ_INT(count("db.ns.svc.cluster.local.", WIRE_TYPE_A), 2);

	/* Deletes: the slice, then the Service, down to NXDOMAIN; db2's PTR stays. */
	CHECK_EQ_INT(apply(K8SSYNC_SLICES, SLICE("db-1", "db", "[]"), true), 0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 1), 0);
	CHECK_EQ_INT(count("db-0.db.ns.svc.cluster.local.", WIRE_TYPE_A), -1);
	CHECK_EQ_INT(count("db.ns.svc.cluster.local.", WIRE_TYPE_A), -1); /* no ready endpoint */
	CHECK_EQ_INT(count("1.0.0.10.in-addr.arpa.", WIRE_TYPE_PTR), 1);
	CHECK_EQ_INT(apply(K8SSYNC_SERVICES, SVC_DB, true), 0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 1), 0);
	CHECK_EQ_INT(meta(STORE_K8S_OBJECTS), stored_objects());
}

static void test_relist(void)
{
	/* A re-list of Services that no longer has db2 drops its records; ClusterIP and
	 * ExternalName Services come with it, and the zone's version TXT. */
	CHECK_EQ_INT(k8ssync_begin(g_k), 0);
	CHECK_EQ_INT(k8ssync_reset(g_k, K8SSYNC_SERVICES), 0);
	CHECK_EQ_INT(apply(K8SSYNC_SERVICES,
			   "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"web\"},\"spec\":{"
			   "\"clusterIP\":\"10.96.0.1\",\"clusterIPs\":[\"10.96.0.1\",\"fd00::1\"],"
			   "\"ports\":[{\"name\":\"http\",\"port\":80},{\"port\":81}]}}",
			   false),
		     0);
	CHECK_EQ_INT(apply(K8SSYNC_SERVICES,
			   "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"ext\"},\"spec\":{"
			   "\"type\":\"ExternalName\",\"externalName\":\"Www.Example.com\"}}",
			   false),
		     0);
	CHECK_EQ_INT(apply(K8SSYNC_SERVICES, "{\"metadata\":{\"name\":\"no-namespace\"}}", false),
		     0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 0), 0);
	CHECK_EQ_INT(count("db2.ns.svc.cluster.local.", WIRE_TYPE_A), -1);
	CHECK_EQ_INT(count("1.0.0.10.in-addr.arpa.", WIRE_TYPE_PTR), -1);
	CHECK_EQ_INT(count("web.ns.svc.cluster.local.", WIRE_TYPE_A), 1);
	CHECK_EQ_INT(count("web.ns.svc.cluster.local.", WIRE_TYPE_AAAA), 1);
	CHECK_EQ_INT(count("_http._tcp.web.ns.svc.cluster.local.", WIRE_TYPE_SRV), 1);
	CHECK_EQ_INT(srv_weight("_http._tcp.web.ns.svc.cluster.local."), 100);
	CHECK_EQ_INT(count("ext.ns.svc.cluster.local.", WIRE_TYPE_CNAME), 1);
	CHECK_EQ_INT(count("dns-version.cluster.local.", WIRE_TYPE_TXT), 1);
	CHECK_EQ_INT(count("svc.cluster.local.", WIRE_TYPE_A), 0); /* exists: NODATA */
	CHECK_EQ_INT(meta(STORE_K8S_OBJECTS), stored_objects());
}

/* store meta u64 (a counter), -1 when absent */
static int64_t meta(const char *key)
{
	store_rtxn_t *t;
	uint64_t v = 0;
	int64_t r = -1;

	if (store_read_begin(g_s, &t) < 0)
		return -2;
	if (store_meta_u64(t, key, &v) == 0)
		r = (int64_t)v;
	store_read_end(t);
	return r;
}

static int count_cb(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	(*(int64_t *)ctx)++;
	return 0;
}

/* The Services and slices the store holds, to check the k8s:objects gauge. */
static int64_t stored_objects(void)
{
	store_rtxn_t *t;
	int64_t n = 0;

	if (store_read_begin(g_s, &t) < 0)
		return -2;
	store_kv_iter(t, "k8s-svc", NULL, 0, count_cb, &n);
	store_kv_iter(t, "k8s-eps", NULL, 0, count_cb, &n);
	store_read_end(t);
	return n;
}

/* A re-list of slices keeps the unchanged ones (not rewritten), drops those it
 * does not name, files a moved slice under its new Service, and counts objects. */
static void test_relist_slices(void)
{
	CHECK_EQ_INT(apply(K8SSYNC_SERVICES, SVC_DB, false), 0);
	CHECK_EQ_INT(
	    apply(K8SSYNC_SLICES, SLICE("db-a", "db", "[{\"addresses\":[\"10.1.0.1\"]}]"), false),
	    0);
	CHECK_EQ_INT(
	    apply(K8SSYNC_SLICES, SLICE("db-b", "db", "[{\"addresses\":[\"10.1.0.2\"]}]"), false),
	    0);
	CHECK_EQ_INT(
	    apply(K8SSYNC_SLICES, SLICE("db-c", "db", "[{\"addresses\":[\"10.1.0.3\"]}]"), false),
	    0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 1), 0);
	CHECK_EQ_INT(count("db.ns.svc.cluster.local.", WIRE_TYPE_A), 3);
	CHECK_EQ_INT(meta(STORE_K8S_OBJECTS), stored_objects());

	CHECK_EQ_INT(k8ssync_begin(g_k), 0);
	CHECK_EQ_INT(k8ssync_reset(g_k, K8SSYNC_SLICES), 0);
	CHECK_EQ_INT(
	    apply(K8SSYNC_SLICES, SLICE("db-a", "db", "[{\"addresses\":[\"10.1.0.1\"]}]"), false),
	    0);
	CHECK_EQ_INT(
	    apply(K8SSYNC_SLICES, SLICE("db-c", "web", "[{\"addresses\":[\"10.1.0.3\"]}]"), false),
	    0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 0), 0);
	CHECK_EQ_INT(count("db.ns.svc.cluster.local.", WIRE_TYPE_A), 1);
	CHECK_EQ_INT(count("10-1-0-2.db.ns.svc.cluster.local.", WIRE_TYPE_A), -1);
	CHECK_EQ_INT(count("2.0.1.10.in-addr.arpa.", WIRE_TYPE_PTR), -1);
	CHECK_EQ_INT(count("1.0.1.10.in-addr.arpa.", WIRE_TYPE_PTR), 1);
	CHECK_EQ_INT(meta(STORE_K8S_OBJECTS), stored_objects());

	/* The same list again changes nothing. */
	CHECK_EQ_INT(k8ssync_begin(g_k), 0);
	CHECK_EQ_INT(k8ssync_reset(g_k, K8SSYNC_SLICES), 0);
	CHECK_EQ_INT(
	    apply(K8SSYNC_SLICES, SLICE("db-a", "db", "[{\"addresses\":[\"10.1.0.1\"]}]"), false),
	    0);
	CHECK_EQ_INT(
	    apply(K8SSYNC_SLICES, SLICE("db-c", "web", "[{\"addresses\":[\"10.1.0.3\"]}]"), false),
	    0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 0), 0);
	CHECK_EQ_INT(count("db.ns.svc.cluster.local.", WIRE_TYPE_A), 1);
	CHECK_EQ_INT(meta(STORE_K8S_OBJECTS), stored_objects());

	/* An empty list of slices: db has no ready endpoint left. */
	CHECK_EQ_INT(k8ssync_begin(g_k), 0);
	CHECK_EQ_INT(k8ssync_reset(g_k, K8SSYNC_SLICES), 0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 0), 0);
	CHECK_EQ_INT(count("db.ns.svc.cluster.local.", WIRE_TYPE_A), -1);
	CHECK_EQ_INT(count("1.0.1.10.in-addr.arpa.", WIRE_TYPE_PTR), -1);
	CHECK_EQ_INT(meta(STORE_K8S_OBJECTS), stored_objects());
}

#define POD(name, extra_meta, status)                                                              \
	"{\"metadata\":{\"namespace\":\"ns\",\"name\":\"" name "\"" extra_meta "},"                \
	"\"status\":" status "}"
#define POD_A(ip) "10-244-0-" ip ".ns.pod.cluster.local."

/* pods = verified: a-b-c-d.<ns>.pod.<zone> exists while a pod of ns has the address. */
static void test_pods(void)
{
	CHECK_EQ_INT(apply(K8SSYNC_PODS, POD("p1", "", "{\"podIP\":\"10.244.0.5\"}"), false), 0);
	CHECK_EQ_INT(
	    apply(K8SSYNC_PODS,
		  POD("p2", "", "{\"podIPs\":[{\"ip\":\"10.244.0.5\"},{\"ip\":\"fd00::5\"}]}"),
		  false),
	    0);
	CHECK_EQ_INT(apply(K8SSYNC_PODS, POD("p3", "", "{\"podIP\":\"10.244.0.7\"}"), false), 0);
	CHECK_EQ_INT(apply(K8SSYNC_PODS, POD("p4", "", "{\"phase\":\"Pending\"}"), false), 0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 1), 0);
	CHECK_EQ_INT(count(POD_A("5"), WIRE_TYPE_A), 1);
	CHECK_EQ_INT(count(POD_A("7"), WIRE_TYPE_A), 1);
	CHECK_EQ_INT(count("10-244-0-5.other.pod.cluster.local.", WIRE_TYPE_A), -1);

	/* Two pods own 10.244.0.5: it stays until both are gone. */
	CHECK_EQ_INT(apply(K8SSYNC_PODS, POD("p1", "", "{}"), true), 0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 1), 0);
	CHECK_EQ_INT(count(POD_A("5"), WIRE_TYPE_A), 1);
	/* p2 moves to .6; p3 is terminating. */
	CHECK_EQ_INT(apply(K8SSYNC_PODS, POD("p2", "", "{\"podIP\":\"10.244.0.6\"}"), false), 0);
	CHECK_EQ_INT(apply(K8SSYNC_PODS,
			   POD("p3", ",\"deletionTimestamp\":\"2026-12-02T03:04:05Z\"",
			       "{\"podIP\":\"10.244.0.7\"}"),
			   false),
		     0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 1), 0);
	CHECK_EQ_INT(count(POD_A("5"), WIRE_TYPE_A), -1);
	CHECK_EQ_INT(count(POD_A("6"), WIRE_TYPE_A), 1);
	CHECK_EQ_INT(count(POD_A("7"), WIRE_TYPE_A), -1);

	/* A re-list of pods: p2 unchanged, p5 new, the rest (none) swept; then one without p2. */
	CHECK_EQ_INT(k8ssync_begin(g_k), 0);
	CHECK_EQ_INT(k8ssync_reset(g_k, K8SSYNC_PODS), 0);
	CHECK_EQ_INT(apply(K8SSYNC_PODS, POD("p2", "", "{\"podIP\":\"10.244.0.6\"}"), false), 0);
	CHECK_EQ_INT(apply(K8SSYNC_PODS, POD("p5", "", "{\"podIP\":\"10.244.0.8\"}"), false), 0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 0), 0);
	CHECK_EQ_INT(count(POD_A("6"), WIRE_TYPE_A), 1);
	CHECK_EQ_INT(count(POD_A("8"), WIRE_TYPE_A), 1);
	CHECK_EQ_INT(k8ssync_begin(g_k), 0);
	CHECK_EQ_INT(k8ssync_reset(g_k, K8SSYNC_PODS), 0);
	CHECK_EQ_INT(apply(K8SSYNC_PODS, POD("p5", "", "{\"podIP\":\"10.244.0.8\"}"), false), 0);
	CHECK_EQ_INT(k8ssync_commit(g_k, 0), 0);
	CHECK_EQ_INT(count(POD_A("6"), WIRE_TYPE_A), -1);
	CHECK_EQ_INT(count(POD_A("8"), WIRE_TYPE_A), 1);
	CHECK_EQ_INT(meta(STORE_K8S_OBJECTS), stored_objects()); /* pods are not counted */
}

static void test_time(void)
{
	uint64_t ms = 0;

	CHECK_EQ_INT(k8smap_time_ms("2026-12-02T03:04:05Z", &ms), 0);
	CHECK_EQ_INT(ms, 1796180645000ULL);
	CHECK_EQ_INT(k8smap_time_ms("2026-12-02T03:04:05.25Z", &ms), 0);
	CHECK_EQ_INT(ms, 1796180645250ULL);
	CHECK_EQ_INT(k8smap_time_ms("2026-12-02T03:04:05+01:00", &ms), ERR_PARSE);
	CHECK_EQ_INT(k8smap_time_ms("yesterday", &ms), ERR_PARSE);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

int main(void)
{
	char dir[256], db[300];
	conf_t *conf = NULL;

	snprintf(dir, sizeof(dir), "/tmp/test_k8s_sync.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(db, sizeof(db), "%s/db", dir);
	CHECK_EQ_INT(conf_defaults(&conf), 0);
	CHECK_EQ_INT(store_open(&g_s, db, 64u << 20, 0), 0);
	CHECK_EQ_INT(k8ssync_new(&g_k, conf, g_s), 0);
	if (g_s && g_k) {
		test_headless();
		test_relist();
		test_relist_slices();
		test_pods();
	}
	test_time();
	k8ssync_free(g_k);
	store_close(g_s);
	conf_free(conf);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}
