/*
 * skydns-watch-etcd: keeps the store's `etcd` source equal to etcd's prefix.
 * Started and supervised by skydns when [Etcd] etcd-servers is set, and
 * runnable alone with the same config (-config-file). One thread:
 *   - the store holds no revision: read the whole prefix at one revision
 *     (paginated) and commit it as the etcd source in one txn;
 *   - watch from the stored revision + 1; each received chunk of events is one
 *     txn that also records the revision, so a restart resumes the watch;
 *   - a compacted start revision: full re-read replacing the source atomically;
 *   - a failed endpoint: the next one of etcd-servers, with backoff once all failed.
 * SIGTERM/SIGINT end it within about a second (libcurl polls the stop flag).
 * A second thread (watchers/door.c) runs the admin API's etcd txns in
 * distributed mode, so the API needs no etcd client of its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "conf/conf.h"
#include "store/store.h"
#include "watchers/door.h"
#include "watchers/etcd.h"
#include "watchers/sync.h"

#define DEFAULT_CONF "/etc/skydns/skydns.conf"
#define PAGE_SIZE 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define WATCH_REREAD 1 /* a callback's "start over with a full read" */

static volatile sig_atomic_t g_stop;

typedef struct {
	const conf_t *conf;
	sync_t *sync;
	etcd_t *etcd;
	uint8_t prefix[1024];
	size_t plen;
	int64_t applied;     /* revision the store holds */
	uint64_t cluster_id; /* the cluster that revision belongs to (0: unknown) */
	int64_t batch_rev;
	uint64_t batch_arrival_us; /* when the open batch's first event arrived */
	bool resumed;		   /* the current watch resumes a stored revision */
	uint64_t rereads;
} watcher_t;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	/* A signal cuts it short (no SA_RESTART): stop is seen at once. */
	nanosleep(&ts, NULL);
}

static int on_range_kv(void *ctx, const etcd_kv_t *kv)
{
	watcher_t *w = ctx;

	return sync_apply(w->sync, kv);
}

/* The whole prefix at one revision, as one txn replacing the etcd source. */
static int full_read(watcher_t *w)
{
	const sync_stats_t *st = sync_stats(w->sync);
	uint64_t t0 = mono_ms(), ev0 = st->events, bad0 = st->bad_keys;
	int64_t rev = 0;
	uint64_t cid = 0;
	int ret;

	if ((ret = sync_begin(w->sync)) < 0 || (ret = sync_reset(w->sync)) < 0)
		goto fail;
	ret = etcd_range_prefix(w->etcd, w->prefix, w->plen, PAGE_SIZE, on_range_kv, w, &rev, &cid);
	if (ret < 0 || (ret = sync_set_cluster(w->sync, cid)) < 0)
		goto fail;
	sync_note(w->sync, true, false);
	if ((ret = sync_commit(w->sync, rev)) < 0)
		goto fail;
	w->applied = rev;
	w->cluster_id = cid;
	w->rereads++;
	log_info("etcd: full read of %llu keys (%llu bad) at revision %lld from %s in %llu ms",
		 (unsigned long long)(st->events - ev0), (unsigned long long)(st->bad_keys - bad0),
		 (long long)rev, etcd_endpoint(w->etcd), (unsigned long long)(mono_ms() - t0));
	return 0;
fail:
	sync_abort(w->sync);
	if (ret != -EINTR)
		log_warn("etcd: full read from %s failed: %s", etcd_endpoint(w->etcd),
			 err_str(ret));
	return ret;
}

static int on_event(void *ctx, const etcd_kv_t *kv)
{
	watcher_t *w = ctx;
	int ret = sync_begin(w->sync);

	if (!w->batch_arrival_us)
		w->batch_arrival_us = sync_now_us();
	if (ret == 0)
		ret = sync_apply(w->sync, kv);
	if (ret == 0 && kv->mod_rev > w->batch_rev)
		w->batch_rev = kv->mod_rev;
	return ret;
}

static int on_message(void *ctx, const etcd_watch_msg_t *m)
{
	watcher_t *w = ctx;

	sync_seen(w->sync, m->header_rev);
	/* A store from another (or a rebuilt) cluster: its revision means nothing here. */
	if (m->created && w->cluster_id && m->cluster_id && m->cluster_id != w->cluster_id) {
		log_warn("etcd: %s belongs to cluster %llx, the store to %llx: full re-read",
			 etcd_endpoint(w->etcd), (unsigned long long)m->cluster_id,
			 (unsigned long long)w->cluster_id);
		return WATCH_REREAD;
	}
	if (m->created && m->header_rev > 0 && m->header_rev < w->applied) {
		log_warn("etcd: %s is at revision %lld, behind the stored %lld (a new cluster?): "
			 "full re-read",
			 etcd_endpoint(w->etcd), (long long)m->header_rev, (long long)w->applied);
		return WATCH_REREAD;
	}
	if (m->created) {
		if (w->resumed)
			log_info("etcd: resumed from revision %lld (watch from %lld at %s, no "
				 "re-read)",
				 (long long)w->applied, (long long)w->applied + 1,
				 etcd_endpoint(w->etcd));
		else
			log_info("etcd: watching from revision %lld at %s",
				 (long long)w->applied + 1, etcd_endpoint(w->etcd));
		w->resumed = false;
	}
	if (m->canceled && m->compact_rev > 0) {
		log_info("etcd: revision %lld is compacted (compact revision %lld): full re-read",
			 (long long)w->applied + 1, (long long)m->compact_rev);
		return WATCH_REREAD;
	}
	if (m->canceled || m->error[0]) {
		log_warn("etcd: watch at %s ended: %s", etcd_endpoint(w->etcd),
			 m->error[0] ? m->error : "canceled");
		return ERR_UPSTREAM;
	}
	return 0;
}

/* End of a received chunk: its events are one batch, one txn. */
static int on_flush(void *ctx)
{
	watcher_t *w = ctx;
	int64_t rev = w->batch_rev > w->applied ? w->batch_rev : w->applied;
	int ret;

	if (!sync_open(w->sync))
		return 0;
	ret = sync_commit_at(w->sync, rev, w->batch_arrival_us);
	w->batch_arrival_us = 0;
	if (ret < 0) {
		log_err("etcd: commit at revision %lld: %s", (long long)rev, err_str(ret));
		return ret;
	}
	w->applied = rev;
	return 0;
}

static int watch(watcher_t *w)
{
	etcd_watch_cb_t cb = {
	    .event = on_event, .message = on_message, .flush = on_flush, .ctx = w};
	int ret;

	w->batch_rev = 0;
	w->batch_arrival_us = 0;
	ret = etcd_watch(w->etcd, w->prefix, w->plen, w->applied + 1, &cb);
	sync_abort(w->sync); /* a batch cut off mid-chunk is read again from applied + 1 */
	return ret;
}

static int run(watcher_t *w)
{
	unsigned backoff = BACKOFF_MIN_MS;
	bool need_read = w->applied == 0;

	while (!g_stop) {
		uint64_t t0 = mono_ms();
		int ret = etcd_authenticate(w->etcd);

		if (ret == 0)
			ret = need_read ? full_read(w) : watch(w);

		if (g_stop)
			break;
		if (ret == 0 && need_read) {
			need_read = false;
			continue;
		}
		if (ret == WATCH_REREAD) {
			need_read = true;
			continue;
		}
		if (ret == ERR_SPACE || ret == ERR_STORE) {
			log_err("etcd: store: %s", err_str(ret));
			return 1;
		}
		sync_note(w->sync, false, true);
		/* A watch that ran a while was healthy: start the backoff over. */
		if (mono_ms() - t0 > 10000)
			backoff = BACKOFF_MIN_MS;
		log_warn("etcd: %s: %s; trying the next endpoint", etcd_endpoint(w->etcd),
			 err_str(ret));
		if (etcd_failover(w->etcd)) {
			sleep_ms(backoff);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		}
	}
	log_info("etcd: stopping at revision %lld", (long long)w->applied);
	return 0;
}

static int set_prefix(watcher_t *w, const char *p)
{
	size_t n = strlen(p);

	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n + 2 > sizeof(w->prefix))
		return ERR_TOOBIG;
	memcpy(w->prefix, p, n);
	w->prefix[n] = '/';
	w->plen = n + 1;
	return 0;
}

typedef struct {
	const char *path;
	const char *status_ip, *status; /* -set-status IP UP|DOWN */
} args_t;

static int parse_args(int argc, char **argv, args_t *a)
{
	a->path = DEFAULT_CONF;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if ((!strcmp(s, "-config-file") || !strcmp(s, "--config-file") ||
		     !strcmp(s, "-c")) &&
		    i + 1 < argc) {
			a->path = argv[++i];
		} else if ((!strcmp(s, "-set-status") || !strcmp(s, "--set-status")) &&
			   i + 2 < argc) {
			a->status_ip = argv[++i];
			a->status = argv[++i];
		} else {
			fprintf(stderr, "usage: skydns-watch-etcd [-config-file FILE] "
					"[-set-status IP UP|DOWN]\n");
			return -1;
		}
	}
	return 0;
}

/*
 * -set-status (also what `skydns -set-status` runs when etcd is configured): put
 * ip-monitor-path<ip> = {"status":...} in etcd, so every node's watcher applies
 * it, trying each member once.
 */
static int set_status(const conf_t *conf, const http_tls_t *tls, const args_t *a)
{
	const char *mon = conf->ip_monitor_path ? conf->ip_monitor_path : "/skydns/monitor/status/";
	char key[512], val[32];
	uint8_t addr[16];
	etcd_t *e = NULL;
	bool ok = false;
	int64_t rev = 0;
	int ret;

	if (strcasecmp(a->status, "UP") != 0 && strcasecmp(a->status, "DOWN") != 0) {
		fprintf(stderr, "skydns: -set-status: status must be UP or DOWN, not %s\n",
			a->status);
		return 1;
	}
	if (inet_pton(AF_INET, a->status_ip, addr) != 1 &&
	    inet_pton(AF_INET6, a->status_ip, addr) != 1) {
		fprintf(stderr, "skydns: -set-status: not an IP address: %s\n", a->status_ip);
		return 1;
	}
	snprintf(key, sizeof(key), "%s%s", mon, a->status_ip);
	snprintf(val, sizeof(val), "{\"status\":\"%s\"}",
		 strcasecmp(a->status, "UP") == 0 ? "UP" : "DOWN");
	etcd_op_t op = {.key = (const uint8_t *)key,
			.klen = strlen(key),
			.val = (const uint8_t *)val,
			.vlen = strlen(val)};
	if ((ret = etcd_new(&e, conf->etcd_servers, tls, &g_stop)) < 0)
		goto out;
	etcd_set_auth(e, conf->etcd_username, conf->etcd_password);
	do {
		if ((ret = etcd_authenticate(e)) == 0 &&
		    (ret = etcd_txn(e, NULL, 0, &op, 1, &ok, &rev)) == 0)
			break;
	} while (!etcd_failover(e));
out:
	etcd_free(e);
	if (ret < 0) {
		fprintf(stderr, "skydns: -set-status %s: etcd: %s\n", a->status_ip, err_str(ret));
		return 1;
	}
	printf("%s is now %s (etcd %s, revision %lld)\n", a->status_ip,
	       strcasecmp(a->status, "UP") == 0 ? "UP" : "DOWN", key, (long long)rev);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	args_t args = {0};
	const char *path;
	watcher_t w = {0};
	conf_t *conf = NULL;
	store_t *store = NULL;
	door_t *door = NULL;
	http_tls_t tls;
	char err[512] = "";
	int ret, rc = 1;

	if (parse_args(argc, argv, &args) < 0)
		return 2;
	path = args.path;
	if ((ret = conf_load(path, &conf, err, sizeof(err))) < 0) {
		fprintf(stderr, "%s\n", err[0] ? err : err_str(ret));
		return 2;
	}
	log_open(conf->log_dir, conf->log_to_stdio, conf->log_level, "skydns-watch-etcd");
	if (!conf->etcd_servers || !conf->etcd_servers[0]) {
		log_err("etcd: [Etcd] etcd-servers is not set in %s", path);
		rc = 2;
		goto out;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	w.conf = conf;
	tls = (http_tls_t){conf->etcd_cafile, conf->etcd_certfile, conf->etcd_keyfile};
	if (args.status_ip) {
		rc = set_status(conf, &tls, &args);
		goto out;
	}
	if ((ret = set_prefix(&w, conf->etcd_prefix)) < 0 ||
	    (ret = store_open(&store, conf->data_dir, conf->map_size, 0)) < 0 ||
	    (ret = sync_new(&w.sync, conf, store)) < 0 ||
	    (ret = etcd_new(&w.etcd, conf->etcd_servers, &tls, &g_stop)) < 0) {
		log_err("etcd: start: %s", err_str(ret));
		goto out;
	}
	etcd_set_auth(w.etcd, conf->etcd_username, conf->etcd_password);
	if ((ret = sync_stored_rev(w.sync, &w.applied)) < 0 ||
	    (ret = sync_stored_cluster(w.sync, &w.cluster_id)) < 0) {
		log_err("etcd: start: store: %s", err_str(ret));
		goto out;
	}
	/* Without the door the API's writes fail with 503; DNS still works, so go on. */
	if ((ret = door_start(&door, conf, store, &tls, &g_stop)) < 0)
		log_err("etcd: api socket in %s: %s; API writes in distributed mode will fail",
			conf->data_dir, err_str(ret));
	if (w.applied > 0) {
		w.resumed = true;
		log_info("etcd: the store holds revision %lld; resuming the watch",
			 (long long)w.applied);
	}
	rc = run(&w);
	g_stop = 1;
out:
	door_stop(door);
	etcd_free(w.etcd);
	sync_free(w.sync);
	store_close(store);
	conf_free(conf);
	log_close();
	return rc;
}
