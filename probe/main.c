/*
 * skydns-probe: active health checks that steer answers (DESIGN §8).
 * Started and supervised by skydns when [Probe] enable = true, and runnable
 * alone with the same config (-config-file). One thread:
 *   - every 100 ms, when the store's generation moved, re-read the addresses
 *     (probe/targets.h) and what the health table holds;
 *   - probe_run checks them on non-blocking sockets;
 *   - every 100 ms, the state changes go out in one batch: one store write txn
 *     (embedded), or etcd status keys (probe/etcd_mode.c, when [Etcd]
 *     etcd-servers is set).
 * Precedence: a health record written by anyone else (the API, skydns
 * -set-status) holds the address until it is cleared; the probe keeps
 * checking, and writes its own state once the record is gone.
 * SIGTERM/SIGINT end it within 100 ms.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "conf/conf.h"
#include "probe/pmode.h"
#include "probe/probe.h"
#include "probe/targets.h"
#include "store/store.h"

#define DEFAULT_CONF "/etc/skydns/skydns.conf"
#define TICK_MS 100

static volatile sig_atomic_t g_stop;

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

/* ---- embedded mode: health records in the store ---- */

typedef struct {
	probe_t *p;
	store_t *store;
	store_wtxn_t *w;
	probe_stats_t *st;
	int err;
} flush_t;

static int stored_of(const char *source, int status)
{
	if (strcmp(source, PMODE_SOURCE) != 0)
		return PROBE_STORED_MANUAL;
	return status == STORE_HEALTH_DOWN ? PROBE_STORED_DOWN : PROBE_STORED_UP;
}

static int write_cb(void *ctx, const uint8_t *addr, size_t alen, int status)
{
	flush_t *f = ctx;
	store_health_rec_t rec;
	int ret;

	if (!f->w && (ret = store_write_begin(f->store, &f->w)) < 0)
		return ret;
	/* Asked inside the txn: a statement made since our last read still wins. */
	ret = store_health_lookup(store_write_view(f->w), addr, alen, &rec);
	if (ret == 0 && strcmp(rec.source, PMODE_SOURCE) != 0) {
		probe_stored_set(f->p, addr, alen, PROBE_STORED_MANUAL);
		atomic_fetch_add_explicit(&f->st->deferred, 1, memory_order_relaxed);
		return 0;
	}
	if (ret < 0 && ret != ERR_NOTFOUND)
		return ret;
	if ((ret = store_health_set(f->w, addr, alen, status, PMODE_SOURCE)) < 0)
		return ret;
	return 1;
}

static int emb_flush(pmode_t *m)
{
	flush_t f = {.p = m->p, .store = m->store, .st = m->st};
	int n = probe_changes(m->p, write_cb, &f), ret = n;

	if (n >= 0 && f.w) {
		ret = store_write_commit(f.w);
		f.w = NULL;
	}
	store_write_abort(f.w);
	if (ret < 0) {
		/* The table thinks they are stored: read the truth back next tick. */
		m->gen_known = false;
		log_err("probe: writing %d health changes: %s", n, err_str(ret));
		return ret;
	}
	if (n > 0) {
		atomic_fetch_add_explicit(&m->st->writes, (uint64_t)n, memory_order_relaxed);
		log_info("probe: wrote %d health changes", n);
	}
	return 0;
}

typedef struct {
	pmode_t *m;
	uint8_t (*stale)[17]; /* len, addr: probe records of addresses no record has now */
	size_t nstale, cap;
} sync_t;

static int health_cb(void *ctx, const uint8_t *addr, size_t alen, int status, uint64_t ms,
		     const char *source)
{
	sync_t *s = ctx;
	int stored = stored_of(source, status);

	(void)ms;
	if (probe_stored_set(s->m->p, addr, alen, stored) || stored == PROBE_STORED_MANUAL)
		return 0;
	if (s->nstale == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		void *q = realloc(s->stale, ncap * sizeof(*s->stale));
		if (!q)
			return -ENOMEM;
		s->stale = q;
		s->cap = ncap;
	}
	s->stale[s->nstale][0] = (uint8_t)alen;
	memcpy(s->stale[s->nstale] + 1, addr, alen);
	s->nstale++;
	return 0;
}

/* Our records for addresses that left the zone data would pin a DOWN forever on
 * an address that comes back later under another name. */
static int drop_stale(pmode_t *m, const sync_t *s)
{
	store_wtxn_t *w = NULL;
	int ret;

	if (!s->nstale)
		return 0;
	if ((ret = store_write_begin(m->store, &w)) < 0)
		return ret;
	for (size_t i = 0; i < s->nstale && ret >= 0; i++) {
		store_health_rec_t rec;
		const uint8_t *a = s->stale[i] + 1;
		size_t alen = s->stale[i][0];

		if (store_health_lookup(store_write_view(w), a, alen, &rec) == 0 &&
		    strcmp(rec.source, PMODE_SOURCE) == 0)
			ret = store_health_del(w, a, alen);
	}
	if (ret < 0) {
		store_write_abort(w);
		return ret;
	}
	log_info("probe: removed %zu health records of addresses no longer in the zones",
		 s->nstale);
	return store_write_commit(w);
}

static int emb_health(pmode_t *m, store_rtxn_t *t)
{
	sync_t s = {.m = m};
	int ret;

	probe_stored_reset(m->p);
	ret = store_health_iter(t, health_cb, &s);
	store_read_reset(t);
	if (ret == 0)
		ret = drop_stale(m, &s);
	free(s.stale);
	return ret;
}

/* ---- common: targets from the store ---- */

int pmode_refresh(pmode_t *m)
{
	probe_target_t *t = NULL;
	size_t n = 0;
	uint64_t gen;
	int ret;

	if ((ret = store_read_renew(m->rtx)) < 0)
		return ret;
	gen = store_generation(m->rtx);
	if (m->gen_known && gen == m->gen) {
		store_read_reset(m->rtx);
		return 0;
	}
	if ((ret = probe_targets_load(m->rtx, m->conf, &t, &n)) < 0 ||
	    (ret = probe_set_targets(m->p, t, n)) < 0) {
		store_read_reset(m->rtx);
		free(t);
		return ret;
	}
	free(t);
	if (!m->gen_known || probe_count(m->p) != m->last_count)
		log_info("probe: %zu addresses to check", probe_count(m->p));
	m->last_count = probe_count(m->p);
	/* Embedded: the health table is the stored state. With etcd the status keys are. */
	ret = m->etcd ? (store_read_reset(m->rtx), 0) : emb_health(m, m->rtx);
	if (ret == 0) {
		m->gen = gen;
		m->gen_known = true;
	}
	return ret;
}

/* ---- the stats file ---- */

static probe_stats_t *stats_map(const conf_t *c, const char *id, char *path, size_t cap)
{
	probe_stats_t *st;
	int fd;

	snprintf(path, cap, "%s/probe-%s.stats", c->data_dir, id);
	/* The id names a file and a metrics label: keep it to a safe alphabet. */
	for (char *q = path + strlen(c->data_dir) + 1; *q; q++)
		if (!isalnum((unsigned char)*q) && !strchr("._:-", *q))
			*q = '_';
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, 0) < 0 || ftruncate(fd, sizeof(*st)) < 0) {
		log_warn("probe: stats file %s: %s; /metrics will not show the probe", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		path[0] = 0;
		return NULL;
	}
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (st == MAP_FAILED) {
		path[0] = 0;
		return NULL;
	}
	snprintf(st->id, sizeof(st->id), "%.*s", (int)(strlen(path) - strlen(c->data_dir) - 13),
		 path + strlen(c->data_dir) + 7);
	st->pid = getpid();
	atomic_thread_fence(memory_order_release);
	st->magic = PROBE_STATS_MAGIC;
	return st;
}

/* Enough descriptors for max-checks connects plus our own. */
static void raise_nofile(unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	setrlimit(RLIMIT_NOFILE, &rl);
}

static const char *parse_args(int argc, char **argv, const char **id)
{
	const char *path = DEFAULT_CONF;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((!strcmp(a, "-config-file") || !strcmp(a, "--config-file") ||
		     !strcmp(a, "-c")) &&
		    i + 1 < argc) {
			path = argv[++i];
		} else if ((!strcmp(a, "-id") || !strcmp(a, "--id")) && i + 1 < argc) {
			*id = argv[++i];
		} else {
			fprintf(stderr, "usage: skydns-probe [-config-file FILE] [-id NAME]\n");
			return NULL;
		}
	}
	return path;
}

static int run(pmode_t *m)
{
	uint64_t next = 0;
	int ret;

	while (!g_stop) {
		uint64_t now = mono_ms();

		if (now >= next) {
			next = now + TICK_MS;
			if ((ret = pmode_refresh(m)) < 0)
				log_warn("probe: reading the store: %s", err_str(ret));
			if (m->etcd)
				ret = pmode_etcd_tick(m);
			else
				ret = emb_flush(m);
			if (ret == ERR_SPACE || ret == ERR_STORE)
				return 1;
		}
		now = mono_ms();
		if ((ret = probe_run(m->p, next > now ? (int)(next - now) : 0)) < 0) {
			log_err("probe: epoll: %s", err_str(ret));
			return 1;
		}
	}
	log_info("probe: stopping");
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	const char *id = NULL, *path = parse_args(argc, argv, &id);
	char err[512] = "", host[PROBE_STATS_ID_MAX], spath[4096] = "";
	pmode_t m = {0};
	conf_t *conf = NULL;
	probe_stats_t local = {0};
	int ret, rc = 1;

	if (!path)
		return 2;
	if ((ret = conf_load(path, &conf, err, sizeof(err))) < 0) {
		fprintf(stderr, "%s\n", err[0] ? err : err_str(ret));
		return 2;
	}
	log_open(conf->log_dir, conf->log_to_stdio, conf->log_level, "skydns-probe");
	if (!id)
		id = conf->probe_id;
	if (!id) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "probe");
		host[sizeof(host) - 1] = 0;
		id = host;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN); /* the config is read at start; skydns restarts us */
	raise_nofile(conf->max_checks + 256);
	m.conf = conf;
	m.id = id;
	m.stop = &g_stop;
	m.st = stats_map(conf, id, spath, sizeof(spath));
	if (!m.st)
		m.st = &local;
	atomic_store(&m.st->probes_live, 1);
	probe_conf_t pc = {.interval_ms = conf->check_interval_ms,
			   .timeout_ms = conf->check_timeout_ms,
			   .rise = conf->rise,
			   .fall = conf->fall,
			   .max_checks = conf->max_checks,
			   .icmp = conf->icmp};
	if ((ret = probe_new(&m.p, &pc, m.st)) < 0) {
		if (conf->icmp && probe_icmp_error()[0])
			log_err("probe: icmp = true but %s", probe_icmp_error());
		else
			log_err("probe: start: %s", err_str(ret));
		goto out;
	}
	if ((ret = store_open(&m.store, conf->data_dir, conf->map_size, 0)) < 0 ||
	    (ret = store_read_begin(m.store, &m.rtx)) < 0) {
		log_err("probe: store %s: %s", conf->data_dir, err_str(ret));
		goto out;
	}
	store_read_reset(m.rtx);
	m.etcd = conf->etcd_servers && conf->etcd_servers[0];
	if (m.etcd && (ret = pmode_etcd_start(&m)) < 0) {
		log_err("probe: etcd: %s", err_str(ret));
		goto out;
	}
	log_info("probe %s: every %u ms, timeout %u ms, rise %u, fall %u, up to %u in flight, "
		 "icmp %s, health to %s",
		 id, conf->check_interval_ms, conf->check_timeout_ms, conf->rise, conf->fall,
		 conf->max_checks, probe_icmp_kind(m.p), m.etcd ? "etcd" : "the store");
	rc = run(&m);
out:
	if (m.etcd)
		pmode_etcd_stop(&m);
	probe_free(m.p);
	store_read_end(m.rtx);
	store_close(m.store);
	if (m.st && m.st != &local)
		munmap(m.st, sizeof(*m.st));
	if (spath[0])
		unlink(spath);
	conf_free(conf);
	log_close();
	return rc;
}
