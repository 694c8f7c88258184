/*
 * server: sockets and threads around the workers (server/worker.h).
 * main() calls everything here from one thread.
 */
#include "server/server.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "conf/conf.h"
#include "server/dot.h"
#include "server/querylog.h"
#include "engine/inflight.h"
#include "engine/topn.h"
#include "server/worker.h"

#define SERVER_START_WAIT_MS 5000
#define SERVER_RELOAD_WAIT_MS 2000
#define SERVER_CTL_WAIT_MS 1000 /* a worker's loop turns at least once a timer tick */
/*
 * UDP receive buffer per worker socket. The default (rmem_default, ~208 KiB)
 * holds ~250 small datagrams: a worker off its CPU for a millisecond under
 * load overflowed it and the kernel dropped queries (issue 6: RcvbufErrors
 * rose by exactly the benchmark's lost count). 8 MiB holds ~10,000.
 */
#define SERVER_UDP_RCVBUF (8 << 20)

struct server {
	const conf_t *conf; /* borrowed: the one the workers use now */
	worker_t *workers;  /* owned, n entries */
	unsigned n;
	unsigned started; /* threads created */
	uint64_t gen;	  /* last reload generation */
	querylog_t *qlog; /* owned; NULL when [Log] query-log is off */
	/* Posters of control requests (API threads) take turns; workers never take it. */
	pthread_mutex_t ctl_lock;
	_Atomic uint32_t cache_ttl; /* the last server_cache_set_ttl(), 0 = [Dns] max-ttl */
	dot_cred_t *dot_cred;	    /* the CA store of srv->conf's tls:// servers, or NULL */
	cache_t *cache;		    /* one reference: the workers' shared cache of srv->conf's
				     * forwarding (made with the first forwarder; a reload that
				     * changes forwarding starts a new one) */
	inflight_t *inflight;	    /* owned: the questions the workers have upstream (n > 1) */
};

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Best effort: FORCE passes rmem_max with CAP_NET_ADMIN, plain SO_RCVBUF is capped by it. */
static void udp_rcvbuf(int fd)
{
	int want = SERVER_UDP_RCVBUF, got = 0;
	socklen_t len = sizeof(got);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	/* The kernel reports twice the size asked (bookkeeping overhead included). */
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && got / 2 < want)
		log_warn("server: UDP receive buffer is %d KiB, not %d: bursts may be dropped; "
			 "raise net.core.rmem_max",
			 got / 2048, want / 1024);
}

static int sock_open(const conf_addr_t *a, int type)
{
	int one = 1, fd, ret;

	fd = socket(a->sa.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	/* Accepted sockets inherit it (Linux), so no syscall per connection: a reply must not
	 * wait behind the last one's ACK, which a client delays (40 ms) while it waits for
	 * the answers to its pipelined queries (issue 16). */
	if (type == SOCK_STREAM && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		goto fail;
	if (a->sa.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (type == SOCK_DGRAM)
		udp_rcvbuf(fd);
	if (bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 1024) < 0)
		goto fail;
	return fd;
fail:
	ret = -errno;
	close(fd);
	return ret;
}

/*
 * One instance per address. The workers bind with SO_REUSEPORT, which lets a
 * second skydns (same user) silently join the first one's group and answer
 * half its queries from another store. A socket without SO_REUSEPORT cannot
 * bind where one is bound, so try that first, before our own sockets exist.
 * TCP sets SO_REUSEADDR: it still fails against a listener, but not against
 * connections of a previous run left in TIME_WAIT.
 */
static int addr_free(const conf_addr_t *a, int type)
{
	int one = 1, fd, ret = 0;

	fd = socket(a->sa.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if ((type == SOCK_STREAM &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) ||
	    (a->sa.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0)
		ret = -errno;
	close(fd);
	if (ret == -EADDRINUSE) {
		char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";

		getnameinfo((const struct sockaddr *)&a->sa, a->len, host, sizeof(host), port,
			    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
		log_err("server: %s%s%s:%s (%s) is already served by another process, maybe "
			"another skydns: stop it first (skydns never shares its address)",
			a->sa.ss_family == AF_INET6 ? "[" : "", host,
			a->sa.ss_family == AF_INET6 ? "]" : "", port,
			type == SOCK_DGRAM ? "UDP" : "TCP");
	}
	return ret;
}

/*
 * The CPUs this process may run on: the affinity it was started with (taskset, systemd's
 * CPUAffinity=, a container's cpuset), read from the main thread, which is never pinned.
 * Workers are spread over these only: worker i on CPU i of the whole machine would put it
 * outside the set it was given (on a CPU the operator reserved for something else), and a
 * default of one worker per online CPU would start more workers than the set has CPUs.
 */
static unsigned allowed_cpus(cpu_set_t *set)
{
	long ncpu;

	if (sched_getaffinity(0, sizeof(*set), set) == 0 && CPU_COUNT(set) > 0)
		return (unsigned)CPU_COUNT(set);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	CPU_ZERO(set);
	for (long c = 0; c < (ncpu > 0 ? ncpu : 1) && c < CPU_SETSIZE; c++)
		CPU_SET((int)c, set);
	return (unsigned)CPU_COUNT(set);
}

unsigned server_default_workers(void)
{
	cpu_set_t set;

	return allowed_cpus(&set);
}

/* Pin worker i to the (i mod n)-th of the allowed CPUs. */
static void pin(pthread_t t, unsigned i, const cpu_set_t *allowed)
{
	unsigned k = i % (unsigned)CPU_COUNT(allowed);
	cpu_set_t set;
	int cpu = 0, ret;

	for (;; cpu++)
		if (CPU_ISSET(cpu, allowed) && k-- == 0)
			break;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	ret = pthread_setaffinity_np(t, sizeof(set), &set);
	if (ret != 0)
		log_warn("server: pin worker %u to cpu %d: %s", i, cpu, err_str(-ret));
}

/* Wait until the worker finished its setup (ring, buffers, read txn). */
static int wait_started(worker_t *w)
{
	for (int i = 0; i < SERVER_START_WAIT_MS; i++) {
		int st = atomic_load(&w->state);

		if (st != 0)
			return st < 0 ? st : 0;
		sleep_ms(1);
	}
	return ERR_TIMEOUT;
}

/* The worker's most-asked names table, created before its thread starts. */
static int worker_topn(worker_t *w)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL) ^ (uintptr_t)w;
	return topn_new(&w->qctx.topn, TOPN_DEFAULT_CAPACITY, seed);
}

/*
 * The forwarder of worker i, or NULL (*out) when forwarding is off. Every
 * worker's forwarder uses srv->cache (made here with the first), so a name
 * one worker cached is a hit for all and is held once; worker 0's reports it.
 */
static int make_forwarder(server_t *srv, const conf_t *conf, unsigned i, forward_t **out)
{
	worker_t *w = &srv->workers[i];
	forward_opts_t o = {.nworkers = srv->n, .local = worker_local_answer, .local_ctx = w};
	int ret;

	*out = NULL;
	if (!forward_configured(conf))
		return 0;
	if (getrandom(&o.seed, sizeof(o.seed), 0) != sizeof(o.seed))
		o.seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)out;
	if (!srv->cache && conf->cache_size > 0 &&
	    (ret = cache_new(&srv->cache, conf->cache_size, o.seed ^ 0x5bd1e995u)) < 0)
		return ret;
	o.cache = srv->cache;
	o.cache_reports = i == 0;
	o.inflight = srv->cache ? srv->inflight : NULL;
	o.worker = i;
	return forward_new(out, conf, &o);
}

/*
 * Start worker i on the sockets udp and tcp (owned from here on; -1: open
 * new ones, which join the SO_REUSEPORT group already bound).
 */
static int start_worker(server_t *srv, unsigned i, const conf_t *conf, struct store *store,
			const cpu_set_t *cpus, int udp, int tcp)
{
	worker_t *w = &srv->workers[i];
	forward_t *fwd = NULL;
	sigset_t all, old;
	int ret;

	ret = make_forwarder(srv, conf, i, &fwd);
	if (ret == 0 && udp < 0 && (udp = sock_open(&conf->dns_addr, SOCK_DGRAM)) < 0)
		ret = udp;
	if (ret == 0 && tcp < 0 && (tcp = sock_open(&conf->dns_addr, SOCK_STREAM)) < 0)
		ret = tcp;
	if (ret < 0) {
		forward_free(fwd);
		if (udp >= 0)
			close(udp);
		if (tcp >= 0)
			close(tcp);
		return ret;
	}
	ret = worker_init(w, i, udp, tcp, conf, store, fwd);
	atomic_store_explicit(&w->dot_cred, srv->dot_cred, memory_order_relaxed);
	w->qlog = querylog_ring(srv->qlog, i);
	if (srv->inflight && ret == 0)
		inflight_set_wake_fd(srv->inflight, i, w->efd);
	/* One budget for the process, as cacheSize: each worker remembers the names its own
	 * clients ask. */
	w->lookup_cache = conf->lookup_cache / srv->n;
	if (ret == 0)
		ret = worker_topn(w);
	if (ret < 0) {
		worker_deinit(w);
		return ret;
	}
	/* Only main handles signals: the thread starts with all of them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0) {
		worker_deinit(w);
		topn_free(w->qctx.topn);
		return ret;
	}
	srv->started++;
	/* "skydns-w<i>" in top -H, ps -L and /proc/PID/task/TID/comm (at most 15 chars). */
	char tname[16];
	snprintf(tname, sizeof(tname), "skydns-w%u", i & 0xffffu); /* workers <= 1024 */
	pthread_setname_np(w->thread, tname);
	pin(w->thread, i, cpus);
	return wait_started(w);
}

/*
 * A socket handed over by a running skydns must be the kind, and be bound to
 * the address, this config serves: -takeover cannot move the address.
 */
static int adopted_ok(const conf_t *conf, int fd, int type)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int got = 0;
	socklen_t glen = sizeof(got);
	char want[64], have[64];
	conf_addr_t a;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &got, &glen) < 0 || got != type ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return ERR_INVAL;
	memset(&a, 0, sizeof(a));
	memcpy(&a.sa, &ss, len);
	a.len = len;
	conf_format_addr(&a, have, sizeof(have));
	conf_format_addr(&conf->dns_addr, want, sizeof(want));
	if (strcmp(have, want) != 0) {
		log_err("server: takeover: the running skydns serves %s, the config says %s: "
			"-takeover cannot change the address; stop it and start anew",
			have, want);
		return ERR_INVAL;
	}
	return 0;
}

int server_start_with(server_t **out, const struct conf *conf, struct store *store, const int *fds,
		      unsigned nfds)
{
	cpu_set_t cpus;
	unsigned ncpu = allowed_cpus(&cpus), n = conf->workers, pairs = nfds / 2, i;
	server_t *srv;
	int ret = 0;

	if (n == 0)
		n = ncpu;
	if (pairs > n) {
		/* Every handed-over socket needs a reader: closing one would drop what is queued
		 * in it once the old process exits. */
		log_warn("server: takeover: %u sockets pairs handed over for %u workers: serving "
			 "with %u workers",
			 pairs, n, pairs);
		n = pairs;
	}
	for (i = 0; i < nfds; i++)
		if (fds[i] >= 0 &&
		    (ret = adopted_ok(conf, fds[i], i % 2 ? SOCK_STREAM : SOCK_DGRAM)) < 0)
			goto fail;
	srv = calloc(1, sizeof(*srv));
	if (srv) {
		srv->workers = calloc(n, sizeof(*srv->workers));
		pthread_mutex_init(&srv->ctl_lock, NULL);
	}
	if (!srv || !srv->workers) {
		free(srv);
		ret = -ENOMEM;
		goto fail;
	}
	srv->n = n;
	srv->conf = conf;
	/* One worker never waits for another; without the registry each asks for itself. */
	if (n > 1 && inflight_new(&srv->inflight) < 0)
		log_warn("server: no memory for the in-flight registry: workers ask upstream "
			 "each for itself");
	if (dot_cred_new(conf, &srv->dot_cred) < 0)
		log_err("server: no memory for the CA store: tls:// servers fail until a reload");
	if ((ret = querylog_new(&srv->qlog, conf, n)) < 0)
		log_err("server: query-log %s: %s", conf->query_log, err_str(ret));
	/* Only a fresh start checks that nobody serves the address: a takeover joins on purpose. */
	if (nfds == 0 && (ret = addr_free(&conf->dns_addr, SOCK_DGRAM)) == 0)
		ret = addr_free(&conf->dns_addr, SOCK_STREAM);
	for (i = 0; ret == 0 && i < n; i++) {
		int udp = i < pairs ? fds[2 * i] : -1, tcp = i < pairs ? fds[2 * i + 1] : -1;

		ret = start_worker(srv, i, conf, store, &cpus, udp, tcp);
	}
	/* start_worker took (and on failure closed) the sockets of workers 0..i-1. */
	for (unsigned k = 2 * i; k < 2 * pairs; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	if (ret < 0) {
		server_stop(srv);
		return ret;
	}
	*out = srv;
	return 0;
fail:
	for (i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}

int server_start(server_t **out, const struct conf *conf, struct store *store)
{
	return server_start_with(out, conf, store, NULL, 0);
}

unsigned server_listeners(const server_t *srv, int *fds, unsigned cap)
{
	unsigned n = 0;

	for (unsigned i = 0; i < srv->started && n + 2 <= cap; i++) {
		const worker_t *w = &srv->workers[i];

		if (atomic_load(&w->dead) || w->udp_fd < 0)
			continue; /* its sockets are closed: nothing to hand over */
		fds[n++] = w->udp_fd;
		fds[n++] = w->tcp_fd;
	}
	return n;
}

void server_release(server_t *srv)
{
	for (unsigned i = 0; i < srv->started; i++) {
		atomic_store(&srv->workers[i].release, true);
		worker_wake(&srv->workers[i]);
	}
}

unsigned server_busy(server_t *srv)
{
	unsigned long long sum = 0;

	for (unsigned i = 0; i < srv->started; i++)
		if (!atomic_load(&srv->workers[i].dead))
			sum += atomic_load_explicit(&srv->workers[i].busy, memory_order_relaxed);
	return sum > UINT_MAX ? UINT_MAX : (unsigned)sum;
}

int server_reload(server_t *srv, const struct conf *conf)
{
	uint64_t gen = ++srv->gen;
	bool same = forward_conf_same(srv->conf, conf);
	dot_cred_t *cred = NULL, *old_cred = srv->dot_cred;
	forward_t *fwd;
	int ret;

	srv->conf = conf;
	/* Loaded here, not in the workers: reading a CA store is file I/O. Each reload reads
	 * it again, so a renewed tls-cafile takes effect on SIGHUP. */
	if (dot_cred_new(conf, &cred) < 0) {
		log_err("server: reload: no memory for the CA store: keeping the old one");
		cred = old_cred;
	}
	srv->dot_cred = cred;
	if (!same) { /* new forwarders, new cache: answers scrubbed and capped by the old rules go
		      */
		cache_free(srv->cache);
		srv->cache = NULL;
	}
	for (unsigned i = 0; i < srv->started; i++) {
		worker_t *w = &srv->workers[i];

		if (atomic_load(&w->dead))
			continue; /* it would never take the forwarder nor ack */
		/* Same upstreams: the worker keeps its forwarder, cache included, unless that
		 * one predates srv->conf (its rebuild failed before): then try again. */
		if (!same || w->fwd_stale) {
			ret = make_forwarder(srv, conf, i, &fwd);
			w->fwd_stale = ret < 0;
			if (ret < 0)
				log_err("server: reload: forwarder of worker %u: %s; keeping the "
					"old one until a reload succeeds",
					i, err_str(ret));
			else
				upstream_offer(&w->up, fwd);
		}

		atomic_store_explicit(&w->dot_cred, cred, memory_order_relaxed);
		atomic_store_explicit(&w->conf_next, conf, memory_order_release);
		atomic_store_explicit(&w->gen_want, gen, memory_order_release);
		worker_wake(w);
	}
	for (int t = 0; t < SERVER_RELOAD_WAIT_MS; t++) {
		unsigned done = 0;

		for (unsigned i = 0; i < srv->started; i++)
			if (atomic_load(&srv->workers[i].dead) ||
			    atomic_load_explicit(&srv->workers[i].gen_ack, memory_order_acquire) >=
				gen)
				done++;
		if (done == srv->started) {
			/* Every worker closed its sessions on the old store before it acked. */
			if (old_cred != cred)
				dot_cred_free(old_cred);
			return 0;
		}
		sleep_ms(1);
	}
	/* A worker may still use the old store: it is kept (leaked) rather than freed under it. */
	return ERR_TIMEOUT;
}

unsigned server_check(server_t *srv)
{
	unsigned dead = 0;

	for (unsigned i = 0; i < srv->started; i++) {
		worker_t *w = &srv->workers[i];
		int err = atomic_load(&w->dead);

		if (err == 0)
			continue;
		dead++;
		if (w->dead_logged)
			continue;
		w->dead_logged = true;
		log_err("server: worker %u died (io_uring: %s): its sockets are closed and the "
			"other workers take its clients; restart skydns to get it back",
			i, err_str(err));
	}
	if (dead == srv->started && dead > 0)
		log_err("server: every worker died: nothing answers DNS; restart skydns");
	return dead;
}

void server_stop(server_t *srv)
{
	if (!srv)
		return;
	for (unsigned i = 0; i < srv->started; i++) {
		atomic_store(&srv->workers[i].stop, true);
		worker_wake(&srv->workers[i]);
	}
	/* Every thread first: a running worker may still write another's eventfd (cross-worker
	 * wakes), which must stay open until nobody can. */
	for (unsigned i = 0; i < srv->started; i++)
		pthread_join(srv->workers[i].thread, NULL);
	for (unsigned i = 0; i < srv->started; i++) {
		worker_deinit(&srv->workers[i]);
		topn_free(srv->workers[i].qctx.topn);
	}
	querylog_free(srv->qlog); /* after the workers: they write its rings */
	pthread_mutex_destroy(&srv->ctl_lock);
	free(srv->workers);
	cache_free(srv->cache);
	inflight_free(srv->inflight);
	dot_cred_free(srv->dot_cred);
	free(srv);
}

void server_querylog_reopen(server_t *srv)
{
	querylog_reopen(srv->qlog);
}

void server_stats(server_t *srv, stats_t *out)
{
	uint64_t w, d, l;

	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < srv->started; i++)
		stats_sum(&srv->workers[i].qctx.stats, out);
	querylog_counts(srv->qlog, &w, &d, &l);
	out->v[STATS_QLOG_WRITTEN] = w;
	out->v[STATS_QLOG_DROPPED] = d;
	out->v[STATS_QLOG_LOST] = l;
}

unsigned server_workers(const server_t *srv)
{
	return srv->started;
}

size_t server_upstreams(server_t *srv, struct upstream_report *out, size_t cap)
{
	size_t n = 0;

	for (unsigned i = 0; i < srv->started; i++)
		upstream_report(&srv->workers[i].up, out, &n, cap);
	return n;
}

/*
 * Post one control request to every live worker and wait (this thread, never
 * a worker) until each acked or SERVER_CTL_WAIT_MS passed. A worker that did
 * not ack an earlier request is skipped: its slot is still its to read.
 * Calls `done` for each worker that answered. @return workers that answered.
 */
typedef void (*ctl_done_fn)(void *ctx, const worker_t *w);

static unsigned ctl_post(server_t *srv, int op, const uint8_t *name, size_t len, uint32_t ttl,
			 ctl_done_fn done, void *ctx)
{
	bool *posted = calloc(srv->started + 1u, sizeof(*posted));
	unsigned answered = 0, pending = 0;

	if (!posted)
		return 0;
	pthread_mutex_lock(&srv->ctl_lock);
	for (unsigned i = 0; i < srv->started; i++) {
		worker_t *w = &srv->workers[i];
		uint64_t want = atomic_load_explicit(&w->ctl_want, memory_order_relaxed);

		if (atomic_load(&w->dead) ||
		    atomic_load_explicit(&w->ctl_ack, memory_order_acquire) != want)
			continue;
		w->ctl_op = op;
		w->ctl_ttl = ttl;
		w->ctl_len = len <= WIRE_NAME_MAX ? len : 0;
		if (name && w->ctl_len)
			memcpy(w->ctl_name, name, w->ctl_len);
		atomic_store_explicit(&w->ctl_want, want + 1, memory_order_release);
		worker_wake(w);
		posted[i] = true;
		pending++;
	}
	for (int t = 0; pending && t < SERVER_CTL_WAIT_MS; t++) {
		for (unsigned i = 0; i < srv->started; i++) {
			worker_t *w = &srv->workers[i];
			if (!posted[i] ||
			    atomic_load_explicit(&w->ctl_ack, memory_order_acquire) !=
				atomic_load_explicit(&w->ctl_want, memory_order_relaxed))
				continue;
			posted[i] = false;
			pending--;
			answered++;
			if (done)
				done(ctx, w);
		}
		if (pending)
			sleep_ms(1);
	}
	pthread_mutex_unlock(&srv->ctl_lock);
	free(posted);
	if (pending)
		log_warn("server: %u worker(s) did not answer a cache control request within %d ms",
			 pending, SERVER_CTL_WAIT_MS);
	return answered;
}

typedef struct {
	server_cache_entry_t *out;
	size_t cap, n;
	bool got;
} show_t;

/* The workers share one cache (srv->cache): the first worker's answer lists it all, the
 * others would list the same entries again. */
static void show_done(void *ctx, const worker_t *w)
{
	show_t *s = ctx;

	if (s->got)
		return;
	s->got = true;
	for (size_t k = 0; k < w->ctl_n && k < WORKER_CTL_MAX; k++) {
		if (s->n < s->cap)
			s->out[s->n] = (server_cache_entry_t){.e = w->ctl_out[k], .worker = w->idx};
		s->n++;
	}
}

unsigned server_cache_show(server_t *srv, const uint8_t *name, size_t len,
			   server_cache_entry_t *out, size_t cap, size_t *n)
{
	show_t s = {.out = out, .cap = cap};
	unsigned answered = ctl_post(srv, WORKER_CTL_SHOW, name, len, 0, show_done, &s);

	*n = s.n;
	return answered;
}

static void flush_done(void *ctx, const worker_t *w)
{
	*(size_t *)ctx += w->ctl_n;
}

unsigned server_cache_flush(server_t *srv, const uint8_t *name, size_t len, size_t *flushed)
{
	*flushed = 0;
	return ctl_post(srv, WORKER_CTL_FLUSH, name, len, 0, flush_done, flushed);
}

unsigned server_cache_set_ttl(server_t *srv, uint32_t ttl)
{
	atomic_store(&srv->cache_ttl, ttl);
	return ctl_post(srv, WORKER_CTL_TTL, NULL, 0, ttl, NULL, NULL);
}

uint32_t server_cache_ttl(server_t *srv)
{
	return atomic_load(&srv->cache_ttl);
}

int server_top_names(server_t *srv, topn_entry_t *out, size_t n)
{
	size_t cap = TOPN_DEFAULT_CAPACITY, total = 0;
	topn_entry_t *all = calloc((size_t)srv->started * cap + 1, sizeof(*all));
	size_t *ends = calloc((size_t)srv->started + 1, sizeof(*ends));
	uint64_t *mins = calloc((size_t)srv->started + 1, sizeof(*mins));
	int ret = -ENOMEM;

	if (!all || !ends || !mins)
		goto out;
	for (unsigned i = 0; i < srv->started; i++) {
		ret = topn_snapshot(srv->workers[i].qctx.topn, all + total, &mins[i]);
		if (ret < 0)
			goto out;
		total += (size_t)ret;
		ends[i] = total;
	}
	ret = (int)topn_merge(all, total, ends, mins, srv->started, out, n);
out:
	free(all);
	free(ends);
	free(mins);
	return ret;
}
