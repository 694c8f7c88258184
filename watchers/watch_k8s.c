/*
 * skydns-watch-k8s: keeps the store's `k8s` source equal to the cluster's
 * Services and EndpointSlices (and Pods' addresses for pods = verified). Started and supervised by
 * skydns when [Kubernetes] enable = true, and runnable alone with the same config. One thread:
 *   - the store holds no resourceVersion: list Services and EndpointSlices
 *     (paginated) into one txn that replaces the k8s source;
 *   - watch both from their resourceVersions (two streams on one curl multi),
 *     with bookmarks; each received chunk of events is one txn that also
 *     records the new resourceVersion, so a restart resumes the watch;
 *   - a watch that ends (timeout, EOF) is started again from its last
 *     resourceVersion; 410 Gone (HTTP or an in-stream ERROR) re-lists that
 *     kind and replaces it atomically; an unreachable API server is retried
 *     with backoff while the store keeps answering.
 * SIGTERM/SIGINT end it within a fraction of a second.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/err.h"
#include "common/log.h"
#include "conf/conf.h"
#include "store/store.h"
#include "watchers/http.h"
#include "watchers/k8s.h"
#include "watchers/k8sauth.h"
#include "watchers/k8ssync.h"

#define DEFAULT_CONF "/etc/skydns/skydns.conf"
/* Objects per list page: one decoded page is the list's only memory beyond the
 * store (500, client-go's default, grew the watcher's heap by 7 MiB during a
 * re-list of 10,000 Services, 28.6 -> 36.4 MiB; 200: 31.0; bench/k8s.sh). */
#define PAGE_SIZE 200
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 10000

static volatile sig_atomic_t g_stop;

static const char *const paths[K8SSYNC_KINDS] = {
    "/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices", "/api/v1/pods"};
static const char *const kind_names[K8SSYNC_KINDS] = {"Services", "EndpointSlices", "Pods"};

typedef struct watcher watcher_t;

typedef struct {
	watcher_t *w;
	int kind;
	k8s_watch_t watch;
	char rv[256];
	bool running;
	bool need_list;
	bool resumed; /* this watch continues a stored resourceVersion (no list since start) */
	uint64_t not_before_ms;
	unsigned backoff;
} stream_t;

struct watcher {
	const conf_t *conf;
	k8ssync_t *sync;
	k8s_t *k8s;
	http_multi_t *multi;
	stream_t st[K8SSYNC_KINDS];
	int nkinds; /* Pods are watched only for pods = verified */
	uint64_t batch_arrival_us;
	int list_kind; /* kind being listed, for on_item */
	uint64_t listed;
};

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static uint64_t mono_ms(void)
{
	return k8ssync_now_us() / 1000;
}

static int on_item(void *ctx, const json_t *obj)
{
	watcher_t *w = ctx;

	w->listed++;
	return k8ssync_put(w->sync, w->list_kind, obj);
}

/* List the given kinds into one txn replacing them (and every Service's records). */
static int list_kinds(watcher_t *w, const bool kinds[K8SSYNC_KINDS])
{
	char rv[K8SSYNC_KINDS][256];
	uint64_t t0 = mono_ms();
	int ret;

	w->listed = 0;
	if ((ret = k8ssync_begin(w->sync)) < 0)
		goto fail;
	for (int k = 0; k < w->nkinds; k++) {
		if (!kinds[k])
			continue;
		w->list_kind = k;
		if ((ret = k8ssync_reset(w->sync, k)) < 0 ||
		    (ret = k8s_list(w->k8s, paths[k], PAGE_SIZE, on_item, w, rv[k],
				    sizeof(rv[k]))) != 0 ||
		    (ret = k8ssync_set_rv(w->sync, k, rv[k])) < 0)
			goto fail;
	}
	k8ssync_note(w->sync, K8SSYNC_RELISTS);
	if ((ret = k8ssync_commit(w->sync, 0)) < 0)
		goto fail;
	for (int k = 0; k < w->nkinds; k++) {
		if (!kinds[k])
			continue;
		memcpy(w->st[k].rv, rv[k], sizeof(w->st[k].rv));
		w->st[k].need_list = false;
		w->st[k].resumed = false;
	}
	log_info("k8s: listed %llu objects (%s%s%s%s%s) from %s in %llu ms",
		 (unsigned long long)w->listed, kinds[0] ? "Services" : "",
		 kinds[0] && kinds[1] ? ", " : "", kinds[1] ? "EndpointSlices" : "",
		 (kinds[0] || kinds[1]) && kinds[2] ? ", " : "", kinds[2] ? "Pods" : "",
		 k8s_server(w->k8s), (unsigned long long)(mono_ms() - t0));
	return 0;
fail:
	k8ssync_abort(w->sync);
	if (ret == K8S_GONE)
		log_info("k8s: a list's continue token expired: listing again");
	else if (ret != -EINTR)
		log_warn("k8s: list from %s failed: %s", k8s_server(w->k8s), err_str(ret));
	return ret;
}

static int on_event(void *ctx, const char *type, const json_t *obj)
{
	stream_t *s = ctx;
	watcher_t *w = s->w;
	const char *rv =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	int ret;

	if ((ret = k8ssync_begin(w->sync)) < 0)
		return ret;
	if (s->resumed) {
		log_info("k8s: resumed the %s watch from resourceVersion %s (no re-list)",
			 kind_names[s->kind], s->rv);
		k8ssync_note(w->sync, K8SSYNC_RESUMES);
		s->resumed = false;
	}
	if (strcmp(type, "BOOKMARK") != 0) {
		if (!w->batch_arrival_us)
			w->batch_arrival_us = k8ssync_now_us();
		k8ssync_note(w->sync, K8SSYNC_EVENTS);
		if (strcmp(type, "DELETED") == 0)
			ret = k8ssync_del(w->sync, s->kind, obj);
		else if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED"))
			ret = k8ssync_put(w->sync, s->kind, obj);
		if (ret < 0)
			return ret;
	}
	if (rv && rv[0] && strlen(rv) < sizeof(s->rv)) {
		if ((ret = k8ssync_set_rv(w->sync, s->kind, rv)) < 0)
			return ret;
		snprintf(s->rv, sizeof(s->rv), "%s", rv);
	}
	return 0;
}

/* End of a received chunk: its events are one txn. */
static int on_flush(void *ctx)
{
	stream_t *s = ctx;
	watcher_t *w = s->w;
	int ret;

	if (!k8ssync_open(w->sync))
		return 0;
	ret = k8ssync_commit(w->sync, w->batch_arrival_us);
	w->batch_arrival_us = 0;
	if (ret < 0)
		log_err("k8s: commit: %s", err_str(ret));
	return ret;
}

static void fail_stream(stream_t *s, int ret)
{
	watcher_t *w = s->w;

	k8ssync_note(w->sync, K8SSYNC_ERRORS);
	s->not_before_ms = mono_ms() + s->backoff;
	log_warn("k8s: %s at %s: %s; again in %u ms", kind_names[s->kind], k8s_server(w->k8s),
		 err_str(ret), s->backoff);
	s->backoff = s->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff * 2;
}

/* Start what is due: lists first (they replace a kind), then watches. */
static int start_due(watcher_t *w)
{
	bool kinds[K8SSYNC_KINDS] = {false}, any = false;
	uint64_t now = mono_ms();
	int ret;

	for (int k = 0; k < w->nkinds; k++) {
		stream_t *s = &w->st[k];
		if (s->need_list && !s->running && now >= s->not_before_ms)
			kinds[k] = any = true;
	}
	if (any) {
		ret = list_kinds(w, kinds);
		if (ret == ERR_SPACE || ret == ERR_STORE)
			return ret;
		for (int k = 0; k < w->nkinds; k++)
			if (kinds[k] && ret != 0 && ret != -EINTR)
				fail_stream(&w->st[k], ret);
	}
	for (int k = 0; k < w->nkinds; k++) {
		stream_t *s = &w->st[k];
		k8s_watch_cb_t cb = {.event = on_event, .flush = on_flush, .ctx = s};

		if (s->running || s->need_list || mono_ms() < s->not_before_ms)
			continue;
		if ((ret = k8s_watch_start(w->k8s, &s->watch, w->multi, paths[k], s->rv, &cb)) <
		    0) {
			fail_stream(s, ret);
			continue;
		}
		s->running = true;
	}
	return 0;
}

static void stream_ended(watcher_t *w, stream_t *s, int ret, long status, uint64_t ran_ms)
{
	s->running = false;
	k8ssync_abort(w->sync); /* a chunk cut off mid-way is read again from s->rv */
	w->batch_arrival_us = 0;
	ret = k8s_watch_result(&s->watch, ret, status);
	if (ret == K8S_GONE) {
		log_info("k8s: %s resourceVersion %s is too old (410): re-listing",
			 kind_names[s->kind], s->rv);
		s->need_list = true;
		s->resumed = false;
		return;
	}
	if (ret == 0) {
		s->backoff = BACKOFF_MIN_MS;
		return; /* EOF or timeoutSeconds: watch again from s->rv */
	}
	if (ran_ms > 10000)
		s->backoff = BACKOFF_MIN_MS;
	fail_stream(s, ret);
}

static int run(watcher_t *w)
{
	uint64_t started[K8SSYNC_KINDS] = {0};

	while (!g_stop) {
		http_t *done = NULL;
		long status = 0;
		int ret;

		if ((ret = start_due(w)) < 0)
			return ret;
		for (int k = 0; k < w->nkinds; k++)
			if (w->st[k].running && !started[k])
				started[k] = mono_ms();
		ret = http_multi_wait(w->multi, 200, &done, &status);
		if (g_stop)
			break;
		if (!done)
			continue;
		for (int k = 0; k < w->nkinds; k++) {
			stream_t *s = &w->st[k];
			if (s->watch.http != done)
				continue;
			if (ret == ERR_SPACE || ret == ERR_STORE)
				return ret;
			stream_ended(w, s, ret, status, mono_ms() - started[k]);
			started[k] = 0;
		}
	}
	return 0;
}

static const char *parse_args(int argc, char **argv)
{
	const char *path = DEFAULT_CONF;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((!strcmp(a, "-config-file") || !strcmp(a, "--config-file") ||
		     !strcmp(a, "-c")) &&
		    i + 1 < argc) {
			path = argv[++i];
		} else {
			fprintf(stderr, "usage: skydns-watch-k8s [-config-file FILE]\n");
			return NULL;
		}
	}
	return path;
}

static int setup(watcher_t *w, store_t **store)
{
	char rv[256];
	int ret;

	if ((ret = store_open(store, w->conf->data_dir, w->conf->map_size, 0)) < 0 ||
	    (ret = k8ssync_new(&w->sync, w->conf, *store)) < 0 ||
	    (ret = http_multi_new(&w->multi, &g_stop)) < 0)
		return ret;
	for (int k = 0; k < w->nkinds; k++) {
		stream_t *s = &w->st[k];
		s->w = w;
		s->kind = k;
		s->backoff = BACKOFF_MIN_MS;
		if ((ret = k8s_watch_init(w->k8s, &s->watch)) < 0 ||
		    (ret = k8ssync_stored_rv(w->sync, k, rv, sizeof(rv))) < 0)
			return ret;
		snprintf(s->rv, sizeof(s->rv), "%s", rv);
		s->need_list = rv[0] == 0;
		s->resumed = rv[0] != 0;
	}
	/* Pod records from a time pods was verified go (it is not now). */
	if (w->nkinds <= K8SSYNC_PODS &&
	    (ret = k8ssync_stored_rv(w->sync, K8SSYNC_PODS, rv, sizeof(rv))) == 0 && rv[0]) {
		if ((ret = k8ssync_begin(w->sync)) < 0 ||
		    (ret = k8ssync_forget(w->sync, K8SSYNC_PODS)) < 0 ||
		    (ret = k8ssync_commit(w->sync, 0)) < 0)
			return ret;
		log_info("k8s: pods is not verified: dropped the stored pod records");
	}
	/* One list covers both kinds: a store with only one of them is listed anew.
	 * The first list of Services clears the source, so Pods are listed with it. */
	if (w->st[0].need_list != w->st[1].need_list)
		w->st[0].need_list = w->st[1].need_list = true;
	if (w->nkinds > K8SSYNC_PODS && w->st[0].need_list)
		w->st[K8SSYNC_PODS].need_list = true;
	if (!w->st[0].need_list)
		log_info("k8s: the store holds resourceVersions %s (Services), %s "
			 "(EndpointSlices); resuming the watches",
			 w->st[0].rv, w->st[1].rv);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	const char *path = parse_args(argc, argv);
	watcher_t w = {0};
	conf_t *conf = NULL;
	store_t *store = NULL;
	k8s_auth_t *auth = NULL;
	char err[512] = "";
	int ret, rc = 1;

	if (!path)
		return 2;
	if ((ret = conf_load(path, &conf, err, sizeof(err))) < 0) {
		fprintf(stderr, "%s\n", err[0] ? err : err_str(ret));
		return 2;
	}
	log_open(conf->log_dir, conf->log_to_stdio, conf->log_level, "skydns-watch-k8s");
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	w.conf = conf;
	w.nkinds = conf->k8s_pods == CONF_PODS_VERIFIED ? K8SSYNC_KINDS : K8SSYNC_PODS;
	k8s_auth_params_t ap = {conf->k8s_server, conf->k8s_token_file, conf->k8s_cafile,
				conf->k8s_kubeconfig};
	if ((ret = k8s_auth_new(&auth, &ap, err, sizeof(err))) < 0) {
		log_err("k8s: %s", err[0] ? err : err_str(ret));
		rc = 2;
		goto out;
	}
	log_info("k8s: API server %s (%s)", k8s_auth_server(auth), k8s_auth_describe(auth));
	if ((ret = k8s_new(&w.k8s, auth, &g_stop)) < 0 || (ret = setup(&w, &store)) < 0) {
		log_err("k8s: start: %s", err_str(ret));
		goto out;
	}
	if ((ret = run(&w)) < 0) {
		log_err("k8s: store: %s", err_str(ret));
		goto out;
	}
	log_info("k8s: stopping at resourceVersions %s (Services), %s (EndpointSlices)", w.st[0].rv,
		 w.st[1].rv);
	rc = 0;
out:
	for (int k = 0; k < w.nkinds; k++) {
		http_multi_remove(w.multi, w.st[k].watch.http);
		k8s_watch_deinit(&w.st[k].watch);
	}
	http_multi_free(w.multi);
	k8ssync_free(w.sync);
	k8s_free(w.k8s);
	k8s_auth_free(auth);
	store_close(store);
	conf_free(conf);
	log_close();
	return rc;
}
