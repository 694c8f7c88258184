/*
 * skydns: the daemon's composition root, the only file that includes every
 * module. It parses flags, loads the config, opens the store, runs the
 * one-shot commands (-import, -set-status) or starts the DNS workers and
 * the admin API, then handles signals on a signalfd: SIGHUP reloads the
 * config, SIGTERM drains for shutdown-grace then exits, SIGINT exits now.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "server/notify.h"
#include "server/xfrnotify.h"
#include "server/server.h"
#include "server/upstream.h"
#include "store/store.h"

#define DEFAULT_CONF "/etc/skydns/skydns.conf"
#define READER_CHECK_MS 10000
/*
 * Descriptors one worker may need besides its TCP connections: forwarding
 * opens one UDP socket per in-flight upstream try (up to 4096 per worker),
 * plus its sockets, ring, eventfd and upstream TCP.
 */
#define FD_PER_WORKER_UPSTREAM (4096 + 64)
#define FD_PROCESS_SLACK 256 /* store, log, API listener and its threads' connections */

typedef struct {
	const char *conf_path;
	bool check_config;
	bool version;
	const char *import;
	const char *origin;
	bool import_allow_empty;
	const char *status_ip;
	const char *status;
} opts_t;

#define CHILD_BACKOFF_MIN_MS 200
#define CHILD_BACKOFF_MAX_MS 30000
#define CHILD_HEALTHY_MS 60000 /* a child that ran this long restarts at the minimum backoff */
#define CHILD_STOP_MS 5000     /* SIGTERM, then SIGKILL after this */
#define MAX_CHILDREN 4

extern char **environ;

/* A supervised child process (a watcher or the probe), restarted with backoff. */
typedef struct {
	const char *name; /* executable name, looked up next to skydns first */
	pid_t pid;	  /* 0: not running */
	uint64_t started_ms, next_start_ms;
	unsigned backoff_ms;
} child_t;

/* Everything main() owns while serving. */
typedef struct {
	/* The children the config enables (skydns-watch-etcd when [Etcd] etcd-servers is set,
	 * ...), started after the sockets are bound; unused slots have no name. */
	child_t children[MAX_CHILDREN];
	unsigned nchildren;
	conf_t *conf;
	conf_t *api_conf; /* the conf api_start borrowed: kept until api_stop */
	store_t *store;
	server_t *srv;
	api_t *api;
	xfrnotify_t *notify; /* NOTIFY to [Dns] notify after changes; NULL when it failed */
	int sfd;
} daemon_t;

static void usage(FILE *f)
{
	fprintf(f, "usage: skydns [-config-file FILE] [-check-config] [-version]\n"
		   "              [-import ZONEFILE [-origin NAME] [-import-allow-empty]]\n"
		   "              [-set-status IP UP|DOWN]\n"
		   "  -config-file FILE, --config-file, -c  config (default " DEFAULT_CONF ")\n"
		   "  -check-config   validate the config and exit (0 ok, 2 error)\n"
		   "  -version        print the version and exit\n"
		   "  -import FILE    load a zone file into the store (replaces the previous\n"
		   "                  import of the same origin) and exit\n"
		   "  -origin NAME    origin of the zone file (default: first local domain)\n"
		   "  -import-allow-empty  let a file with no records empty a zone\n"
		   "  -set-status IP UP|DOWN  record an address's health in the store and exit\n");
}

/* Accept -flag and --flag. */
static bool flag_is(const char *arg, const char *name)
{
	if (arg[0] != '-')
		return false;
	arg += arg[1] == '-' ? 2 : 1;
	return strcmp(arg, name) == 0;
}

/* @return 0 to go on, 1 to exit 0 (help), 2 on a usage error. */
static int parse_flags(int argc, char **argv, opts_t *o)
{
	memset(o, 0, sizeof(*o));
	o->conf_path = DEFAULT_CONF;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has1 = i + 1 < argc, has2 = i + 2 < argc;

		if ((flag_is(a, "config-file") || strcmp(a, "-c") == 0) && has1)
			o->conf_path = argv[++i];
		else if (flag_is(a, "check-config"))
			o->check_config = true;
		else if (flag_is(a, "version"))
			o->version = true;
		else if (flag_is(a, "import") && has1)
			o->import = argv[++i];
		else if (flag_is(a, "origin") && has1)
			o->origin = argv[++i];
		else if (flag_is(a, "import-allow-empty"))
			o->import_allow_empty = true;
		else if (flag_is(a, "set-status") && has2) {
			o->status_ip = argv[++i];
			o->status = argv[++i];
		} else if (flag_is(a, "h") || flag_is(a, "help")) {
			usage(stdout);
			return 1;
		} else {
			fprintf(stderr, "skydns: unknown or incomplete flag: %s\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (o->origin && !o->import) {
		fprintf(stderr, "skydns: -origin needs -import\n");
		return 2;
	}
	if (o->import_allow_empty && !o->import) {
		fprintf(stderr, "skydns: -import-allow-empty needs -import\n");
		return 2;
	}
	return 0;
}

static int do_import(const conf_t *conf, store_t *store, const opts_t *o)
{
	uint8_t origin[WIRE_NAME_MAX];
	size_t originlen;
	store_import_result_t res = {0, 0};
	char err[512] = "";
	int ret;

	if (o->origin) {
		ret = wire_name_from_text(o->origin, origin, &originlen);
		if (ret < 0) {
			fprintf(stderr, "skydns: -origin %s: %s\n", o->origin, err_str(ret));
			return 1;
		}
		wire_name_lower(origin, originlen);
		if (conf_domain_of(conf, origin, originlen) < 0) {
			fprintf(stderr,
				"skydns: -origin %s is not in a local domain (dns-domains)\n",
				o->origin);
			return 1;
		}
	} else {
		size_t d = conf_default_domain(conf); /* a reverse zone needs -origin */
		originlen = conf->domainlens[d];
		memcpy(origin, conf->domains[d], originlen);
	}
	ret = store_import_zone_flags(store, o->import, origin, originlen,
				      o->import_allow_empty ? STORE_IMPORT_ALLOW_EMPTY : 0, err,
				      sizeof(err), &res);
	if (ret < 0) {
		fprintf(stderr, "%s\n", err[0] ? err : err_str(ret));
		if (err[0] && ret != ERR_PARSE)
			fprintf(stderr, "skydns: import: %s\n", err_str(ret));
		return 1;
	}
	if (res.nsoa == 0)
		fprintf(stderr, "%s: warning: no SOA record (skydns answers with its own)\n",
			o->import);
	printf("imported %zu records from %s\n", res.nrr, o->import);
	return 0;
}

static int do_set_status(store_t *store, const opts_t *o)
{
	uint8_t addr[16];
	size_t len = 4;
	store_wtxn_t *w = NULL;
	int status, ret;

	if (strcasecmp(o->status, "UP") == 0)
		status = STORE_HEALTH_UP;
	else if (strcasecmp(o->status, "DOWN") == 0)
		status = STORE_HEALTH_DOWN;
	else {
		fprintf(stderr, "skydns: -set-status: status must be UP or DOWN, not %s\n",
			o->status);
		return 1;
	}
	if (inet_pton(AF_INET, o->status_ip, addr) != 1) {
		len = 16;
		if (inet_pton(AF_INET6, o->status_ip, addr) != 1) {
			fprintf(stderr, "skydns: -set-status: not an IP address: %s\n",
				o->status_ip);
			return 1;
		}
	}
	ret = store_write_begin(store, &w);
	if (ret == 0)
		ret = store_health_set(w, addr, len, status, "cli");
	if (ret == 0) {
		ret = store_write_commit(w);
		w = NULL;
	}
	store_write_abort(w);
	if (ret < 0) {
		fprintf(stderr, "skydns: -set-status %s: %s\n", o->status_ip, err_str(ret));
		return 1;
	}
	printf("%s is now %s\n", o->status_ip, status == STORE_HEALTH_UP ? "UP" : "DOWN");
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void api_stats_hook(void *ctx, unsigned long long *out, unsigned n)
{
	stats_t s;

	server_stats(ctx, &s);
	for (unsigned i = 0; i < n; i++)
		out[i] = i < STATS_COUNT ? s.v[i] : 0;
}

_Static_assert(API_RTT_BUCKETS == FORWARD_RTT_BUCKETS, "one RTT histogram layout");

static size_t api_upstreams_hook(void *ctx, api_upstream_t *out, size_t cap)
{
	upstream_report_t *r = calloc(cap ? cap : 1, sizeof(*r));
	size_t n;

	if (!r)
		return 0;
	n = server_upstreams(ctx, r, cap);
	for (size_t i = 0; i < n; i++) {
		api_upstream_t *o = &out[i];
		memset(o, 0, sizeof(*o));
		memcpy(o->addr, r[i].addr, sizeof(o->addr));
		o->queries = r[i].queries;
		o->timeouts = r[i].timeouts;
		o->errors = r[i].errors;
		o->probes = r[i].probes;
		memcpy(o->rcode, r[i].rcode, sizeof(o->rcode));
		memcpy(o->rtt, r[i].rtt, sizeof(o->rtt));
		for (unsigned k = 0; k < API_RTT_BUCKETS; k++)
			o->rtt_le_ms[k] = forward_rtt_le_ms(k);
		o->rtt_sum_ms = r[i].rtt_sum_ms;
		o->srtt_ms = r[i].srtt_ms;
		o->healthy = r[i].healthy == r[i].nworkers;
	}
	free(r);
	return n;
}

static int api_top_hook(void *ctx, api_top_name_t *out, size_t n)
{
	topn_entry_t *e = calloc(n ? n : 1, sizeof(*e));
	int ret;

	if (!e)
		return -ENOMEM;
	ret = server_top_names(ctx, e, n);
	for (int i = 0; i < ret; i++) {
		if (wire_name_to_text(e[i].name, e[i].namelen, out[i].name, sizeof(out[i].name)) <
		    0)
			snprintf(out[i].name, sizeof(out[i].name), "?");
		out[i].count = e[i].count;
		out[i].error = e[i].error;
	}
	free(e);
	return ret;
}

static void reload(daemon_t *d)
{
	char err[512] = "";
	conf_t *nc = NULL;
	int ret = conf_load(d->conf->path, &nc, err, sizeof(err));

	if (ret < 0) {
		log_err("reload: %s; keeping the running config", err[0] ? err : err_str(ret));
		return;
	}
	ret = server_reload(d->srv, nc);
	if (ret < 0) {
		/* A worker may still read the old conf: leak it rather than free it under it. */
		log_err("reload: workers did not switch in time: %s", err_str(ret));
		d->conf = nc;
		return;
	}
	log_open(nc->log_dir, nc->log_to_stdio, nc->log_level, "skydns");
	if (d->conf != d->api_conf)
		conf_free(d->conf);
	d->conf = nc;
	log_info("reload: config %s applied", nc->path);
}

/* Wait for a signal up to timeout_ms. @return the signal number, or 0. */
static int next_signal(int sfd, int timeout_ms)
{
	struct pollfd pfd = {.fd = sfd, .events = POLLIN};
	struct signalfd_siginfo si;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

/* SIGTERM: /ready says 503 and workers keep answering for shutdown-grace. */
static void drain(daemon_t *d, int sig)
{
	uint64_t end = mono_ms() + (sig == SIGTERM ? d->conf->shutdown_grace_ms : 0);

	api_set_draining(d->api, true);
	log_info("shutdown: %s, draining for %u ms", sig == SIGTERM ? "SIGTERM" : "SIGINT",
		 sig == SIGTERM ? d->conf->shutdown_grace_ms : 0);
	for (uint64_t now = mono_ms(); now < end; now = mono_ms()) {
		int s = next_signal(d->sfd, (int)(end - now));

		if (s == SIGTERM || s == SIGINT)
			break; /* a second signal: stop now */
	}
}

/*
 * The child's executable: the environment variable named after it (tests:
 * skydns-watch-etcd -> $SKYDNS_WATCH_ETCD), next to skydns, else $PATH.
 */
static void child_path(const child_t *ch, char *out, size_t cap)
{
	char self[PATH_MAX], var[64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	size_t i;

	for (i = 0; ch->name[i] && i + 1 < sizeof(var); i++)
		var[i] = ch->name[i] == '-' ? '_' : (char)toupper((unsigned char)ch->name[i]);
	var[i] = 0;
	if (getenv(var)) {
		snprintf(out, cap, "%s", getenv(var));
		return;
	}
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(out, cap, "%s/%s", self, ch->name);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, cap, "%s", ch->name);
}

/*
 * posix_spawn: the child execs at once, so it never uses the store env this
 * process opened (LMDB: no env across fork); it opens its own. It starts with
 * no blocked signals and default handlers, unlike our threads.
 */
static void child_start(daemon_t *d, child_t *ch)
{
	char path[PATH_MAX + 64];
	char *argv[] = {path, "-config-file", d->conf->path, NULL};
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	pid_t pid;
	int rc;

	child_path(ch, path, sizeof(path));
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGCHLD);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = strchr(path, '/') ? posix_spawn(&pid, path, NULL, &attr, argv, environ)
			       : posix_spawnp(&pid, path, NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	ch->started_ms = mono_ms();
	if (rc != 0) {
		ch->next_start_ms = ch->started_ms + ch->backoff_ms;
		log_err("child: start %s: %s; retrying in %u ms", path, strerror(rc),
			ch->backoff_ms);
		ch->backoff_ms = ch->backoff_ms * 2 > CHILD_BACKOFF_MAX_MS ? CHILD_BACKOFF_MAX_MS
									   : ch->backoff_ms * 2;
		return;
	}
	ch->pid = pid;
	log_info("child: started %s (pid %d)", path, (int)pid);
}

/* Reap an exited child, log how it ended, schedule its restart; start it when due. */
static void child_check(daemon_t *d, child_t *ch)
{
	int status;

	if (!ch->name)
		return;
	if (ch->pid > 0 && waitpid(ch->pid, &status, WNOHANG) == ch->pid) {
		uint64_t ran = mono_ms() - ch->started_ms;

		if (ran >= CHILD_HEALTHY_MS)
			ch->backoff_ms = CHILD_BACKOFF_MIN_MS;
		if (WIFSIGNALED(status))
			log_warn("child: %s (pid %d) killed by signal %d after %llu ms; restarting "
				 "in %u ms",
				 ch->name, (int)ch->pid, WTERMSIG(status), (unsigned long long)ran,
				 ch->backoff_ms);
		else
			log_warn("child: %s (pid %d) exited with status %d after %llu ms; "
				 "restarting in %u ms",
				 ch->name, (int)ch->pid, WEXITSTATUS(status),
				 (unsigned long long)ran, ch->backoff_ms);
		ch->pid = 0;
		ch->next_start_ms = mono_ms() + ch->backoff_ms;
		ch->backoff_ms = ch->backoff_ms * 2 > CHILD_BACKOFF_MAX_MS ? CHILD_BACKOFF_MAX_MS
									   : ch->backoff_ms * 2;
	}
	if (ch->pid == 0 && mono_ms() >= ch->next_start_ms)
		child_start(d, ch);
}

/* Milliseconds until the child is due a start (or INT_MAX when it runs). */
static int child_due_ms(const child_t *ch)
{
	uint64_t now = mono_ms();

	if (!ch->name || ch->pid > 0)
		return INT_MAX;
	return ch->next_start_ms > now ? (int)(ch->next_start_ms - now) : 0;
}

static void child_stop(child_t *ch)
{
	uint64_t end = mono_ms() + CHILD_STOP_MS;
	int status;

	if (!ch->name || ch->pid <= 0)
		return;
	kill(ch->pid, SIGTERM);
	while (mono_ms() < end) {
		if (waitpid(ch->pid, &status, WNOHANG) == ch->pid) {
			log_info("child: %s (pid %d) stopped", ch->name, (int)ch->pid);
			ch->pid = 0;
			return;
		}
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
	}
	log_warn("child: %s (pid %d) ignored SIGTERM for %d ms; killing it", ch->name, (int)ch->pid,
		 CHILD_STOP_MS);
	kill(ch->pid, SIGKILL);
	waitpid(ch->pid, &status, 0);
	ch->pid = 0;
}

/* Supervise the child named name from now on: start it at once. */
static void child_add(daemon_t *d, const char *name)
{
	child_t *ch = &d->children[d->nchildren++];

	*ch = (child_t){.name = name, .backoff_ms = CHILD_BACKOFF_MIN_MS};
	child_start(d, ch);
}

/* The store's generation, for NOTIFY; a short read txn of main's own. @return ms to wait. */
static int notify_tick(daemon_t *d)
{
	store_rtxn_t *t = NULL;
	uint64_t gen;

	if (!d->notify || d->conf->nnotify == 0 || store_read_begin(d->store, &t) < 0)
		return INT_MAX;
	gen = store_generation(t);
	store_read_end(t);
	return xfrnotify_tick(d->notify, d->conf, gen, mono_ms());
}

static void serve_loop(daemon_t *d)
{
	uint64_t next_check = mono_ms() + READER_CHECK_MS;

	for (;;) {
		uint64_t now = mono_ms();
		int wait = now < next_check ? (int)(next_check - now) : 0;
		int due = notify_tick(d);

		for (unsigned i = 0; i < d->nchildren; i++) {
			int t = child_due_ms(&d->children[i]);
			due = t < due ? t : due;
		}
		int sig = next_signal(d->sfd, due < wait ? due : wait);

		server_check(d->srv);
		for (unsigned i = 0; i < d->nchildren; i++)
			child_check(d, &d->children[i]);
		if (sig == SIGHUP)
			reload(d);
		else if (sig == SIGTERM || sig == SIGINT) {
			drain(d, sig);
			return;
		}
		if (mono_ms() >= next_check) {
			int n = store_reader_check(d->store);

			if (n > 0)
				log_info("store: cleared %d stale reader slots", n);
			next_check = mono_ms() + READER_CHECK_MS;
		}
	}
}

static int block_signals(void)
{
	sigset_t all, handled;

	/* Threads inherit this mask: only main sees signals, through the signalfd. */
	signal(SIGPIPE, SIG_IGN);
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	sigemptyset(&handled);
	sigaddset(&handled, SIGINT);
	sigaddset(&handled, SIGTERM);
	sigaddset(&handled, SIGHUP);
	sigaddset(&handled, SIGCHLD); /* wakes the loop to reap and restart a child */
	return signalfd(-1, &handled, SFD_CLOEXEC);
}

/*
 * Out of descriptors, a worker can neither accept nor forward: take the whole
 * hard limit, and say plainly when even that is short of the config's needs.
 */
static void raise_nofile(const conf_t *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned long long workers = c->workers ? c->workers : (ncpu > 0 ? (unsigned long)ncpu : 1);
	unsigned long long need =
	    workers * ((unsigned long long)c->tcp_max_conns + FD_PER_WORKER_UPSTREAM) +
	    FD_PROCESS_SLACK;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("start: getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
		else
			log_warn("start: setrlimit(RLIMIT_NOFILE, %llu): %s",
				 (unsigned long long)rl.rlim_max, strerror(errno));
	}
	log_info("start: open file limit %llu (hard %llu)", (unsigned long long)rl.rlim_cur,
		 (unsigned long long)rl.rlim_max);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		log_warn("start: open file limit %llu is below the %llu this config may need: "
			 "%llu workers x (tcp-max-connections %u + %u for upstream sockets, one "
			 "per in-flight forwarded try) + %u; TCP accepts and forwarding fail when "
			 "it runs out (raise LimitNOFILE / ulimit -n)",
			 (unsigned long long)rl.rlim_cur, need, workers, c->tcp_max_conns,
			 FD_PER_WORKER_UPSTREAM, FD_PROCESS_SLACK);
}

static int run_daemon(daemon_t *d)
{
	api_hooks_t hooks = {.query_stats = api_stats_hook,
			     .top_names = api_top_hook,
			     .upstreams = api_upstreams_hook};
	char addr[INET6_ADDRSTRLEN + 16];
	int ret;

	d->sfd = block_signals();
	if (d->sfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return 1;
	}
	raise_nofile(d->conf);
	ret = server_start(&d->srv, d->conf, d->store);
	conf_format_addr(&d->conf->dns_addr, addr, sizeof(addr));
	if (ret < 0) {
		log_err("start: serving on %s: %s", addr, err_str(ret));
		return 1;
	}
	hooks.ctx = d->srv;
	ret = api_start(&d->api, d->conf, d->store, &hooks);
	if (ret < 0) {
		log_err("start: api: %s", err_str(ret));
		return 1;
	}
	d->api_conf = d->conf;
	log_info("serving on %s with %u workers", addr, server_workers(d->srv));
	/* Type=notify: the sockets are bound and the store is open, so start dependents now. */
	char state[sizeof(addr) + 32];
	snprintf(state, sizeof(state), "READY=1\nSTATUS=serving on %s", addr);
	if ((ret = notify_send(state)) < 0)
		log_warn("start: notify $NOTIFY_SOCKET: %s", err_str(ret));
	if (d->conf->etcd_servers)
		child_add(d, "skydns-watch-etcd");
	if ((ret = xfrnotify_new(&d->notify)) < 0)
		log_warn("start: notify secondaries: %s", err_str(ret));
	serve_loop(d);
	notify_send("STOPPING=1");
	log_info("shutdown: stopping");
	for (unsigned i = 0; i < d->nchildren; i++)
		child_stop(&d->children[i]);
	return 0;
}

static void daemon_free(daemon_t *d)
{
	api_stop(d->api);
	xfrnotify_free(d->notify);
	server_stop(d->srv);
	store_close(d->store);
	if (d->api_conf && d->api_conf != d->conf)
		conf_free(d->api_conf);
	conf_free(d->conf);
	if (d->sfd >= 0)
		close(d->sfd);
	log_close();
}

int main(int argc, char **argv)
{
	daemon_t d = {.sfd = -1};
	char err[512] = "";
	opts_t o;
	int ret;

	ret = parse_flags(argc, argv, &o);
	if (ret != 0)
		return ret == 1 ? 0 : 2;
	if (o.version) {
		printf("skydns %s\n", SKYDNS_VERSION);
		return 0;
	}
	ret = conf_load(o.conf_path, &d.conf, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "%s\n", err[0] ? err : err_str(ret));
		return 2;
	}
	if (o.check_config) {
		printf("%s: ok\n", o.conf_path);
		conf_free(d.conf);
		return 0;
	}
	ret = log_open(d.conf->log_dir, d.conf->log_to_stdio, d.conf->log_level, "skydns");
	if (ret < 0)
		fprintf(stderr, "skydns: log: %s\n", err_str(ret));
	ret = store_open(&d.store, d.conf->data_dir, d.conf->map_size, 0);
	if (ret < 0) {
		log_err("store: open %s: %s", d.conf->data_dir, err_str(ret));
		fprintf(stderr, "skydns: store: open %s: %s\n", d.conf->data_dir, err_str(ret));
		ret = 1;
	} else if (o.import)
		ret = do_import(d.conf, d.store, &o);
	else if (o.status_ip)
		ret = do_set_status(d.store, &o);
	else
		ret = run_daemon(&d);
	daemon_free(&d);
	return ret;
}
