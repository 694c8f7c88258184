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
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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
#include "server/privs.h"
#include "engine/query.h"
#include "server/xfrnotify.h"
#include "server/server.h"
#include "server/takeover.h"
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
	bool takeover;
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
	/* Published for the status page: main writes, API threads read (api_children_hook).
	 * pub_name is stored last, so a reader that sees it sees the slot set up. */
	_Atomic(const char *) pub_name;
	_Atomic int pub_pid;	       /* 0: not running */
	_Atomic int64_t pub_since_ms;  /* unix ms of the last start or exit */
	_Atomic unsigned pub_restarts; /* exits seen */
	_Atomic int pub_exit;	       /* last exit: status, -signal, or INT_MIN (none yet) */
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
	api_hooks_t hooks;   /* what api_start gets, again on a reload that restarts it */
	xfrnotify_t *notify; /* NOTIFY to [Dns] notify after changes; NULL when it failed */
	int sfd;
	int ctl; /* the takeover control socket (server/takeover.h), -1 when none */
	char ctl_path[108];
	pid_t successor; /* the process that took our sockets over, 0 before */
	pid_t upgrading; /* the skydns -takeover SIGUSR2 started, 0 when none */
	const opts_t *opts;
	const char *argv0;
} daemon_t;

/* next_signal()'s answer when the control socket has a connection waiting. */
#define CTL_READY (-1)
/* How long each side waits for the other's next step of a takeover. The old side's RELEASED
 * comes after its children stopped (up to CHILD_STOP_MS each). */
#define TAKEOVER_STEP_MS 10000
#define TAKEOVER_RELEASE_MS (TAKEOVER_STEP_MS + MAX_CHILDREN * CHILD_STOP_MS)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: skydns [-config-file FILE] [-check-config] [-version]\n"
		"              [-import ZONEFILE [-origin NAME] [-import-allow-empty]]\n"
		"              [-set-status IP UP|DOWN] [-takeover]\n"
		"  -config-file FILE, --config-file, -c  config (default " DEFAULT_CONF ")\n"
		"  -check-config   validate the config and exit (0 ok, 2 error)\n"
		"  -version        print the version and exit\n"
		"  -import FILE    load a zone file into the store (replaces the previous\n"
		"                  import of the same origin) and exit\n"
		"  -origin NAME    origin of the zone file (default: first local domain)\n"
		"  -import-allow-empty  let a file with no records empty a zone\n"
		"  -set-status IP UP|DOWN  record an address's health in the store and exit\n"
		"  -takeover       take the listening sockets over from the skydns running with\n"
		"                  this config (data-dir), then make it drain and exit (an\n"
		"                  upgrade without downtime); starts normally when none runs\n");
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
		else if (flag_is(a, "takeover"))
			o->takeover = true;
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
	store_import_result_t res = {0};
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
	if (res.nskipped_names)
		fprintf(
		    stderr,
		    "%s: skipped %zu record%s at %zu name%s the API owns (taken over or written "
		    "through the API; change them there): %s\n",
		    o->import, res.nskipped_rr, res.nskipped_rr == 1 ? "" : "s", res.nskipped_names,
		    res.nskipped_names == 1 ? "" : "s", res.skipped);
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

/* One -check-config finding: FILE:LINE: [Section] key: problem (no LINE for a default). */
static void check_fail(const conf_t *c, size_t field, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void check_fail(const conf_t *c, size_t field, const char *key, const char *fmt, ...)
{
	unsigned line = conf_line(c, field);
	va_list ap;

	if (line)
		fprintf(stderr, "%s:%u: %s: ", c->path, line, key);
	else
		fprintf(stderr, "%s: %s (default): ", c->path, key);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A directory skydns must create files in: it, or the parent that will hold it. */
static int check_dir(const conf_t *c, size_t field, const char *key, const char *dir,
		     bool may_create)
{
	struct stat st;
	char parent[PATH_MAX];

	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			check_fail(c, field, key, "%s is not a directory", dir);
			return -1;
		}
		if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0) {
			check_fail(c, field, key, "%s is not writable%s%s: %s", dir,
				   c->has_user ? " by user " : "", c->has_user ? c->user : "",
				   strerror(errno));
			return -1;
		}
		return 0;
	}
	if (!may_create || errno != ENOENT) {
		check_fail(c, field, key, "%s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = 0;
	else if (slash)
		*slash = 0;
	else
		snprintf(parent, sizeof(parent), ".");
	if (faccessat(AT_FDCWD, parent, W_OK | X_OK, AT_EACCESS) < 0) {
		check_fail(c, field, key, "%s does not exist and %s cannot be written%s%s: %s", dir,
			   parent, c->has_user ? " by user " : "", c->has_user ? c->user : "",
			   strerror(errno));
		return -1;
	}
	return 0;
}

static int check_readable(const conf_t *c, size_t field, const char *key, const char *path)
{
	int fd;

	if (!path || !path[0])
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		check_fail(c, field, key, "%s cannot be read%s%s: %s", path,
			   c->has_user ? " by user " : "", c->has_user ? c->user : "",
			   strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * -check-config beyond the syntax: what a start would fail on, checked as
 * the account skydns will run as ([General] user). Nothing is created.
 * @return the number of problems (each printed).
 */
static int check_startup(const conf_t *c)
{
	int bad = 0, as_user = privs_enter(c);

	if (as_user < 0) {
		check_fail(c, offsetof(conf_t, user), "[General] user", "cannot act as %s: %s",
			   c->user, err_str(as_user));
		return 1;
	}
	bad -= check_dir(c, offsetof(conf_t, data_dir), "[Store] data-dir", c->data_dir, true);
	if (c->log_dir && c->log_dir[0])
		bad -= check_dir(c, offsetof(conf_t, log_dir), "[Log] log-dir", c->log_dir, false);
	if (c->query_log) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", c->query_log);
		*strrchr(dir, '/') = 0; /* conf/ requires an absolute path */
		if (faccessat(AT_FDCWD, c->query_log, F_OK, AT_EACCESS) == 0
			? faccessat(AT_FDCWD, c->query_log, W_OK, AT_EACCESS) < 0
			: faccessat(AT_FDCWD, dir[0] ? dir : "/", W_OK | X_OK, AT_EACCESS) < 0) {
			check_fail(c, offsetof(conf_t, query_log), "[Log] query-log",
				   "%s cannot be written%s%s: %s", c->query_log,
				   c->has_user ? " by user " : "", c->has_user ? c->user : "",
				   strerror(errno));
			bad++;
		}
	}
	if (c->api_enable) {
		bad -= check_readable(c, offsetof(conf_t, api_certfile), "[Api] api-certfile",
				      c->api_certfile);
		bad -= check_readable(c, offsetof(conf_t, api_keyfile), "[Api] api-keyfile",
				      c->api_keyfile);
		if (api_check_conf(c) < 0) {
			check_fail(c, offsetof(conf_t, api_address), "[Api] api-address",
				   "the API would refuse to start (the line above says why)");
			bad++;
		}
	}
	if (c->etcd_servers) {
		bad -= check_readable(c, offsetof(conf_t, etcd_cafile), "[Etcd] etcd-cafile",
				      c->etcd_cafile);
		bad -= check_readable(c, offsetof(conf_t, etcd_certfile), "[Etcd] etcd-certfile",
				      c->etcd_certfile);
		bad -= check_readable(c, offsetof(conf_t, etcd_keyfile), "[Etcd] etcd-keyfile",
				      c->etcd_keyfile);
	}
	if (as_user == 1 && privs_leave() < 0)
		bad++;
	return bad;
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
		out[i].first_s = e[i].first_s;
		out[i].last_s = e[i].last_s;
	}
	free(e);
	return ret;
}

_Static_assert(sizeof(((api_cache_entry_t *)0)->qtype) == sizeof(((cache_name_entry_t *)0)->qtype),
	       "one qtype width");

static unsigned api_cache_name_hook(void *ctx, int op, const uint8_t *name, size_t len,
				    api_cache_entry_t *out, size_t cap, size_t *n)
{
	server_cache_entry_t *e;
	unsigned answered;

	if (op == API_CACHE_FLUSH)
		return server_cache_flush(ctx, name, len, n);
	if (!(e = calloc(cap ? cap : 1, sizeof(*e)))) {
		*n = 0;
		return 0;
	}
	answered = server_cache_show(ctx, name, len, e, cap, n);
	for (size_t i = 0; i < *n && i < cap; i++)
		out[i] = (api_cache_entry_t){.qtype = e[i].e.qtype,
					     .rcode = e[i].e.rcode,
					     .ttl_left = e[i].e.ttl_left,
					     .do_bit = e[i].e.do_bit,
					     .cd = e[i].e.cd,
					     .worker = e[i].worker};
	free(e);
	return answered;
}

static uint32_t api_cache_ttl_hook(void *ctx, const uint32_t *set)
{
	if (set)
		server_cache_set_ttl(ctx, *set);
	return server_cache_ttl(ctx);
}

/*
 * The status page's lookup box: the real query_process on the API thread's
 * own snapshot and query state, so the answer is what a worker would send
 * (health, selection, CNAME chase, wildcards) without asking a worker.
 * Seeded from the clock: rotation order is all the seed decides here.
 */
static int api_answer_hook(void *ctx, const conf_t *conf, store_rtxn_t *txn, const uint8_t *req,
			   size_t reqlen, uint8_t *resp, size_t cap, size_t *resplen)
{
	query_client_t cl = {.addr = {127, 0, 0, 1}, .addrlen = 4, .tcp = true};
	query_ctx_t *qc = malloc(sizeof(*qc));
	query_t q;
	int ret;

	(void)ctx;
	if (!qc)
		return -ENOMEM;
	query_ctx_init(qc, conf, mono_ms());
	qc->txn = txn;
	ret = query_process(qc, req, reqlen, &cl, resp, cap, resplen, &q);
	free(qc);
	return ret == QUERY_REPLY ? 0 : ret == QUERY_FORWARD ? 1 : -EINVAL;
}

static size_t api_children_hook(void *ctx, api_child_t *out, size_t cap)
{
	daemon_t *d = ctx;
	size_t n = 0;

	for (unsigned i = 0; i < MAX_CHILDREN && n < cap; i++) {
		child_t *ch = &d->children[i];
		const char *name = atomic_load(&ch->pub_name);
		if (!name)
			continue;
		snprintf(out[n].name, sizeof(out[n].name), "%s", name);
		out[n].pid = atomic_load(&ch->pub_pid);
		out[n].since_ms = atomic_load(&ch->pub_since_ms);
		out[n].restarts = atomic_load(&ch->pub_restarts);
		out[n].last_exit = atomic_load(&ch->pub_exit);
		n++;
	}
	return n;
}

static void child_stop(child_t *ch);

static bool str_same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Only each name's own bytes: a conf's buffers past a name's length are not
 * cleared the same way in every conf, so a whole-array memcmp saw a change in
 * every reload and restarted the API for nothing. */
static bool domains_same(const conf_t *a, const conf_t *b)
{
	if (a->ndomains != b->ndomains)
		return false;
	for (size_t i = 0; i < a->ndomains; i++)
		if (a->domainlens[i] != b->domainlens[i] ||
		    memcmp(a->domains[i], b->domains[i], a->domainlens[i]) != 0)
			return false;
	return true;
}

/* Everything api/ reads from its conf: a change restarts the API with the new one. */
static bool api_conf_same(const conf_t *a, const conf_t *b)
{
	return a->api_enable == b->api_enable && str_same(a->api_address, b->api_address) &&
	       str_same(a->api_token, b->api_token) &&
	       str_same(a->api_tokens_file, b->api_tokens_file) &&
	       str_same(a->api_certfile, b->api_certfile) &&
	       str_same(a->api_keyfile, b->api_keyfile) &&
	       str_same(a->api_hostnames, b->api_hostnames) && a->api_threads == b->api_threads &&
	       str_same(a->api_search, b->api_search) && domains_same(a, b) &&
	       str_same(a->etcd_servers, b->etcd_servers) &&
	       str_same(a->etcd_prefix, b->etcd_prefix);
}

/* What the children (they read the file themselves) are started with. */
static bool children_conf_same(const conf_t *a, const conf_t *b)
{
	return str_same(a->etcd_servers, b->etcd_servers) &&
	       str_same(a->etcd_prefix, b->etcd_prefix) &&
	       str_same(a->etcd_certfile, b->etcd_certfile) &&
	       str_same(a->etcd_keyfile, b->etcd_keyfile) &&
	       str_same(a->etcd_cafile, b->etcd_cafile) &&
	       str_same(a->etcd_username, b->etcd_username) &&
	       str_same(a->etcd_password, b->etcd_password) && a->k8s_enable == b->k8s_enable &&
	       str_same(a->k8s_server, b->k8s_server) &&
	       str_same(a->k8s_token_file, b->k8s_token_file) &&
	       str_same(a->k8s_cafile, b->k8s_cafile) &&
	       str_same(a->k8s_kubeconfig, b->k8s_kubeconfig) &&
	       str_same(a->kube_domain, b->kube_domain) &&
	       str_same(a->svc_ip_source, b->svc_ip_source) && a->k8s_ttl == b->k8s_ttl &&
	       a->probe_enable == b->probe_enable && str_same(a->scan_ports, b->scan_ports) &&
	       a->check_interval_ms == b->check_interval_ms &&
	       a->check_timeout_ms == b->check_timeout_ms && a->rise == b->rise &&
	       a->fall == b->fall && a->icmp == b->icmp && a->max_checks == b->max_checks &&
	       str_same(a->probe_id, b->probe_id);
}

/*
 * The settings sized or bound at start: a reload keeps the running values.
 * @return how many differ; their names, comma-separated, in out.
 */
static unsigned restart_only(const conf_t *a, const conf_t *b, char *out, size_t cap)
{
	char x[64], y[64];
	unsigned n = 0;
	size_t len = 0;

	out[0] = 0;
	conf_format_addr(&a->dns_addr, x, sizeof(x));
	conf_format_addr(&b->dns_addr, y, sizeof(y));
#define RESTART_ONLY(cond, name)                                                                   \
	do {                                                                                       \
		if ((cond) && len < cap) {                                                         \
			len +=                                                                     \
			    (size_t)snprintf(out + len, cap - len, "%s%s", n ? ", " : "", name);   \
			n++;                                                                       \
		}                                                                                  \
	} while (0)
	RESTART_ONLY(strcmp(x, y) != 0, "[Dns] dns-addr");
	RESTART_ONLY(a->workers != b->workers, "[Dns] workers");
	RESTART_ONLY(a->tcp_max_conns != b->tcp_max_conns, "[Dns] tcp-max-connections");
	RESTART_ONLY(!str_same(a->data_dir, b->data_dir), "[Store] data-dir");
	RESTART_ONLY(a->map_size != b->map_size, "[Store] map-size");
	RESTART_ONLY(a->lookup_cache != b->lookup_cache, "[Store] lookup-cache");
	RESTART_ONLY(!str_same(a->user, b->user) || !str_same(a->group, b->group),
		     "[General] user/group");
	RESTART_ONLY(!a->etcd_servers != !b->etcd_servers, "[Etcd] etcd-servers on/off");
	RESTART_ONLY(!str_same(a->query_log, b->query_log) ||
			 a->query_log_sample != b->query_log_sample,
		     "[Log] query-log");
#undef RESTART_ONLY
	return n;
}

/* *dst becomes a copy of src (on OOM it keeps its own value). */
static void copy_str(char **dst, const char *src)
{
	char *c = src ? strdup(src) : NULL;

	if (src && !c)
		return;
	free(*dst);
	*dst = c;
}

/*
 * The new conf carries the running values of the restart-only settings, so
 * d->conf always says what runs and the next reload still sees the change.
 * Copied, not moved: the API may still borrow old (when [Api] did not change)
 * and read it from its threads.
 */
static void keep_running(conf_t *old, conf_t *nc)
{
	nc->dns_addr = old->dns_addr;
	nc->workers = old->workers;
	nc->tcp_max_conns = old->tcp_max_conns;
	nc->map_size = old->map_size;
	nc->lookup_cache = old->lookup_cache;
	copy_str(&nc->data_dir, old->data_dir);
	copy_str(&nc->user, old->user);
	copy_str(&nc->query_log, old->query_log);
	nc->query_log_sample = old->query_log_sample;
	copy_str(&nc->group, old->group);
	nc->has_user = old->has_user;
	nc->run_uid = old->run_uid;
	nc->run_gid = old->run_gid;
}

/*
 * The API borrows its conf: a changed [Api] (a rotated api-token, another
 * address) restarts it on the new one, a few ms without an API; when the new
 * one cannot start, the old settings come back.
 */
static void reload_api(daemon_t *d, conf_t *nc, conf_t *old)
{
	conf_t *prev = d->api_conf;
	int ret;

	if (api_conf_same(prev, nc)) {
		api_reload_tokens(d->api); /* the file may have changed although its path did not */
		return;
	}
	api_stop(d->api);
	d->api = NULL;
	ret = api_start(&d->api, nc, d->store, &d->hooks);
	if (ret == 0) {
		d->api_conf = nc;
		if (prev != old)
			conf_free(prev);
		log_info("reload: [Api] changed: API restarted with the new settings");
		return;
	}
	log_err("reload: [Api]: the new settings do not start (%s); restarting the API with the "
		"previous ones",
		err_str(ret));
	if ((ret = api_start(&d->api, prev, d->store, &d->hooks)) < 0)
		log_err("reload: the API is down: %s; restart skydns", err_str(ret));
}

static void reload(daemon_t *d)
{
	char err[512] = "", kept[256];
	conf_t *nc = NULL, *old = d->conf;
	int ret = conf_load(d->conf->path, &nc, err, sizeof(err));

	if (ret < 0) {
		log_err("reload: %s; keeping the running config", err[0] ? err : err_str(ret));
		return;
	}
	unsigned nkept = restart_only(old, nc, kept, sizeof(kept));
	keep_running(old, nc);
	ret = server_reload(d->srv, nc);
	if (ret < 0) {
		/* A worker may still read the old conf: leak it rather than free it under it. */
		log_err("reload: workers did not switch in time: %s", err_str(ret));
		d->conf = nc;
		return;
	}
	ret = log_open(nc->log_dir, nc->log_to_stdio, nc->log_level, "skydns");
	if (ret < 0)
		log_err("reload: log-dir %s: %s; logging as before", nc->log_dir, err_str(ret));
	reload_api(d, nc, old);
	d->conf = nc;
	if (!children_conf_same(old, nc))
		for (unsigned i = 0; i < d->nchildren; i++) {
			if (!d->children[i].pid)
				continue;
			log_info("reload: restarting %s for its new settings", d->children[i].name);
			child_stop(&d->children[i]);
			d->children[i].next_start_ms = 0; /* child_check starts it again now */
			d->children[i].backoff_ms = CHILD_BACKOFF_MIN_MS;
		}
	if (old != d->api_conf)
		conf_free(old);
	if (nkept > 0)
		log_warn("reload: config %s applied, except %s: these need a restart "
			 "(skydns -takeover, or SIGUSR2); the running values stay",
			 nc->path, kept);
	else
		log_info("reload: config %s applied", nc->path);
}

/* SIGUSR1: logrotate moved the files away; write to new ones at the same paths. */
static void reopen_logs(daemon_t *d)
{
	const conf_t *c = d->conf;
	int ret;

	server_querylog_reopen(d->srv);
	if (!c->log_dir)
		return;
	ret = log_open(c->log_dir, c->log_to_stdio, c->log_level, "skydns");
	if (ret < 0)
		log_err("log: reopen %s/skydns.log: %s; writing to the old file", c->log_dir,
			err_str(ret));
	else
		log_info("log: reopened %s/skydns.log (SIGUSR1)", c->log_dir);
}

/*
 * Wait for a signal (or a takeover on ctl, when >= 0) up to timeout_ms.
 * @return the signal number, CTL_READY, or 0.
 */
static int next_event(int sfd, int ctl, int timeout_ms)
{
	struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = ctl, .events = POLLIN}};
	struct signalfd_siginfo si;

	if (poll(pfd, ctl >= 0 ? 2 : 1, timeout_ms) <= 0)
		return 0;
	if (!(pfd[0].revents & POLLIN))
		return (pfd[1].revents & POLLIN) ? CTL_READY : 0;
	if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

static int next_signal(int sfd, int timeout_ms)
{
	return next_event(sfd, -1, timeout_ms);
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
 * -set-status with etcd configured: the monitor key in etcd, so every node gets
 * the status from its watcher. skydns-watch-etcd owns the etcd client (server/
 * uses no libcurl), so this runs it with the same config and -set-status.
 * @return the exit status when exec fails (it does not return otherwise).
 */
static int set_status_etcd(const opts_t *o)
{
	child_t ch = {.name = "skydns-watch-etcd"};
	char path[PATH_MAX];

	child_path(&ch, path, sizeof(path));
	char *argv[] = {path,	       "-config-file",	     (char *)o->conf_path,
			"-set-status", (char *)o->status_ip, (char *)o->status,
			NULL};
	fflush(stdout);
	execvp(path, argv);
	fprintf(stderr, "skydns: -set-status: run %s: %s\n", path, strerror(errno));
	return 1;
}

/*
 * posix_spawn: the child execs at once, so it never uses the store env this
 * process opened (LMDB: no env across fork); it opens its own. It starts with
 * no blocked signals and default handlers, unlike our threads.
 */
static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the status page shows of a child: running or not, since when. */
static void child_publish(child_t *ch, pid_t pid)
{
	atomic_store(&ch->pub_pid, (int)pid);
	atomic_store(&ch->pub_since_ms, real_ms());
}

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
	child_publish(ch, pid);
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
		atomic_store(&ch->pub_exit,
			     WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status));
		atomic_fetch_add(&ch->pub_restarts, 1);
		child_publish(ch, 0);
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

	ch->name = name;
	ch->pid = 0;
	ch->backoff_ms = CHILD_BACKOFF_MIN_MS;
	atomic_store(&ch->pub_exit, INT_MIN);
	atomic_store(&ch->pub_name, name);
	child_start(d, ch);
}

/*
 * Old side of a takeover (server/takeover.h), on a connection to our control
 * socket. Until RELEASED is sent nothing changed here: a successor that
 * fails leaves us serving.
 * @return true when the sockets were handed over (then drain and exit).
 */
static bool takeover_give(daemon_t *d)
{
	int fds[TAKEOVER_MAX_FDS], none[1];
	char msg[64];
	unsigned nfds = 0, n0;
	pid_t pid = 0;
	int c = takeover_accept(d->ctl), ret;

	if (c < 0) {
		log_warn("takeover: accept on %s: %s", d->ctl_path, err_str(c));
		return false;
	}
	ret = takeover_recv(c, msg, sizeof(msg), none, 0, &n0, TAKEOVER_STEP_MS);
	if (ret == 0 && strcmp(msg, "TAKEOVER") != 0)
		ret = ERR_PARSE;
	if (ret == 0) {
		nfds = server_listeners(d->srv, fds, TAKEOVER_MAX_FDS);
		snprintf(msg, sizeof(msg), "SOCKETS %d", (int)getpid());
		ret = takeover_send(c, msg, fds, nfds);
	}
	if (ret == 0)
		ret = takeover_recv(c, msg, sizeof(msg), none, 0, &n0, TAKEOVER_STEP_MS);
	if (ret == 0 && sscanf(msg, "SERVING %d", &pid) != 1)
		ret = ERR_PARSE;
	if (ret < 0) {
		log_err("takeover: the new process failed before serving (%s); still serving",
			err_str(ret));
		close(c);
		return false;
	}
	log_info("takeover: pid %d serves our %u sockets; releasing them and draining", (int)pid,
		 nfds);
	server_release(d->srv);
	api_stop(d->api); /* its port: civetweb cannot hand its listener over */
	d->api = NULL;
	for (unsigned i = 0; i < d->nchildren; i++)
		child_stop(&d->children[i]);
	d->nchildren = 0; /* the successor runs its own */
	close(d->ctl);
	d->ctl = -1;
	if ((ret = takeover_send(c, "RELEASED", NULL, 0)) < 0)
		log_err("takeover: telling pid %d: %s", (int)pid, err_str(ret));
	close(c);
	d->successor = pid;
	return true;
}

/*
 * After a takeover: answer what is in flight (TCP connections, forwarded
 * questions) until nothing is left or shutdown-grace passed.
 */
static void takeover_drain(daemon_t *d)
{
	uint64_t start = mono_ms(), end = start + d->conf->shutdown_grace_ms;
	unsigned busy = server_busy(d->srv);

	while (busy > 0 && mono_ms() < end) {
		int s = next_signal(d->sfd, 20);

		if (s == SIGTERM || s == SIGINT)
			break;
		busy = server_busy(d->srv);
	}
	if (busy > 0)
		log_warn("takeover: drained for %llu ms, %u TCP connections or forwarded "
			 "questions left; exiting",
			 (unsigned long long)(mono_ms() - start), busy);
	else
		log_info("takeover: drained in %llu ms; exiting, pid %d serves",
			 (unsigned long long)(mono_ms() - start), (int)d->successor);
}

/*
 * New side of a takeover: take the running skydns's sockets and start the
 * workers on them.
 * @return 0 serving, 1 nothing runs (start normally), -1 failed (exit).
 */
static int takeover_take(daemon_t *d)
{
	int fds[TAKEOVER_MAX_FDS], none[1];
	unsigned nfds = 0, n0;
	char msg[64];
	int c = takeover_connect(d->ctl_path), ret, old = 0;

	if (c == -ENOENT || c == -ECONNREFUSED) {
		log_info("takeover: no skydns runs with control socket %s (%s): starting normally",
			 d->ctl_path, err_str(c));
		return 1;
	}
	if (c < 0) {
		log_err("takeover: connect %s: %s", d->ctl_path, err_str(c));
		return -1;
	}
	ret = takeover_send(c, "TAKEOVER", NULL, 0);
	if (ret == 0)
		ret = takeover_recv(c, msg, sizeof(msg), fds, TAKEOVER_MAX_FDS, &nfds,
				    TAKEOVER_STEP_MS);
	if (ret == 0 && (sscanf(msg, "SOCKETS %d", &old) != 1 || nfds == 0 || nfds % 2)) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		ret = ERR_PARSE;
	}
	if (ret < 0) {
		log_err("takeover: receiving the sockets from %s: %s", d->ctl_path, err_str(ret));
		close(c);
		return -1;
	}
	ret = server_start_with(&d->srv, d->conf, d->store, fds, nfds);
	if (ret < 0) {
		log_err("takeover: serving on the sockets of pid %d: %s; it keeps serving", old,
			err_str(ret));
		close(c);
		return -1;
	}
	snprintf(msg, sizeof(msg), "SERVING %d", (int)getpid());
	ret = takeover_send(c, msg, NULL, 0);
	if (ret == 0)
		ret = takeover_recv(c, msg, sizeof(msg), none, 0, &n0, TAKEOVER_RELEASE_MS);
	if (ret == 0 && strcmp(msg, "RELEASED") != 0)
		ret = ERR_PARSE;
	close(c);
	if (ret < 0) {
		/* Both serve the sockets now; ours answer. The API and children may clash. */
		log_err("takeover: pid %d did not confirm the release (%s); serving beside it", old,
			err_str(ret));
		return 0;
	}
	log_info("takeover: took %u sockets from pid %d, which drains and exits", nfds, old);
	return 0;
}

/*
 * SIGUSR2: start `skydns -takeover` from the binary now installed where this
 * one was started from (a package upgrade replaced it; /proc/self/exe names
 * the old, deleted file). The successor connects to our control socket like
 * any -takeover; under systemd it is in the unit's cgroup and announces
 * itself with MAINPID= (the unit needs NotifyAccess=all).
 */
static void upgrade_spawn(daemon_t *d, const char *argv0)
{
	char exe[PATH_MAX];
	char *argv[] = {exe, "-config-file", d->conf->path, "-takeover", NULL};
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *gone = " (deleted)";
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid;
	int rc;

	if (d->upgrading) {
		log_warn("upgrade: SIGUSR2 ignored: pid %d is taking over already",
			 (int)d->upgrading);
		return;
	}
	if (argv0[0] == '/')
		snprintf(exe, sizeof(exe), "%s", argv0);
	else if (n > 0) {
		exe[n] = 0;
		if ((size_t)n > strlen(gone) && strcmp(exe + n - strlen(gone), gone) == 0)
			exe[n - strlen(gone)] = 0;
	} else {
		log_err("upgrade: cannot tell which binary to start: %s", strerror(errno));
		return;
	}
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawn(&pid, exe, NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		log_err("upgrade: start %s -takeover: %s; still serving", exe, strerror(rc));
		return;
	}
	d->upgrading = pid;
	log_info("upgrade: SIGUSR2: started %s -takeover (pid %d)", exe, (int)pid);
}

/* A successor that exits while we still serve failed its takeover: say so once. */
static void upgrade_check(daemon_t *d)
{
	int status;

	if (d->upgrading <= 0 || waitpid(d->upgrading, &status, WNOHANG) != d->upgrading)
		return;
	log_err("upgrade: pid %d exited (%s %d) without taking over; still serving",
		(int)d->upgrading, WIFSIGNALED(status) ? "signal" : "status",
		WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	d->upgrading = 0;
}

/* The API's port is free only once the old process stopped civetweb: retry briefly. */
static int api_start_retry(daemon_t *d, api_hooks_t *hooks)
{
	int ret = 0;

	for (int i = 0; i < 50; i++) {
		ret = api_start(&d->api, d->conf, d->store, hooks);
		if (ret == 0 || !d->opts->takeover)
			return ret;
		struct timespec ts = {0, 40 * 1000000};
		nanosleep(&ts, NULL);
	}
	return ret;
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
		int sig = next_event(d->sfd, d->ctl, due < wait ? due : wait);

		if (sig == CTL_READY && takeover_give(d)) {
			takeover_drain(d);
			return;
		}
		server_check(d->srv);
		for (unsigned i = 0; i < d->nchildren; i++)
			child_check(d, &d->children[i]);
		upgrade_check(d);
		if (sig == SIGHUP)
			reload(d);
		else if (sig == SIGUSR1)
			reopen_logs(d);
		else if (sig == SIGUSR2)
			upgrade_spawn(d, d->argv0);
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
	sigaddset(&handled, SIGUSR1); /* reopen the log files (logrotate) */
	sigaddset(&handled, SIGUSR2); /* upgrade: start skydns -takeover */
	sigaddset(&handled, SIGCHLD); /* wakes the loop to reap and restart a child */
	return signalfd(-1, &handled, SFD_CLOEXEC);
}

/*
 * Out of descriptors, a worker can neither accept nor forward: take the whole
 * hard limit, and say plainly when even that is short of the config's needs.
 */
static void raise_nofile(const conf_t *c)
{
	unsigned long long workers = c->workers ? c->workers : server_default_workers();
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
	char addr[INET6_ADDRSTRLEN + 16];
	int ret;

	d->sfd = block_signals();
	if (d->sfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return 1;
	}
	raise_nofile(d->conf);
	conf_format_addr(&d->conf->dns_addr, addr, sizeof(addr));
	if ((ret = takeover_path(d->conf->data_dir, d->ctl_path, sizeof(d->ctl_path))) < 0) {
		log_err("start: control socket in data-dir %s: path too long", d->conf->data_dir);
		return 1;
	}
	ret = d->opts->takeover ? takeover_take(d) : 1;
	if (ret < 0)
		return 1;
	if (ret == 1)
		ret = server_start(&d->srv, d->conf, d->store);
	if (ret < 0) {
		log_err("start: serving on %s: %s", addr, err_str(ret));
		return 1;
	}
	d->hooks = (api_hooks_t){.query_stats = api_stats_hook,
				 .top_names = api_top_hook,
				 .upstreams = api_upstreams_hook,
				 .answer = api_answer_hook,
				 .cache_name = api_cache_name_hook,
				 .cache_ttl = api_cache_ttl_hook,
				 .children = api_children_hook,
				 .ctx = d->srv,
				 .children_ctx = d};
	ret = api_start_retry(d, &d->hooks);
	if (ret < 0) {
		log_err("start: api: %s", err_str(ret));
		return 1;
	}
	d->api_conf = d->conf;
	/* Everything that needs root (port 53, SO_RCVBUFFORCE) is bound by now. */
	if ((ret = privs_drop(d->conf)) < 0) {
		log_err("start: [General] user %s: dropping root: %s", d->conf->user, err_str(ret));
		return 1;
	}
	/* After the API: a takeover that failed halfway must not leave two APIs answering. */
	d->ctl = takeover_listen(d->ctl_path, d->opts->takeover);
	if (d->ctl < 0)
		log_warn("start: control socket %s: %s; skydns -takeover cannot replace this "
			 "process",
			 d->ctl_path, err_str(d->ctl));
	log_info("start: serving on %s with %u workers", addr, server_workers(d->srv));
	/* Type=notify: the sockets are bound and the store is open, so start dependents now.
	 * MAINPID: after a takeover systemd follows this process, not the one that exits. */
	char state[sizeof(addr) + 64];
	snprintf(state, sizeof(state), "READY=1\nMAINPID=%d\nSTATUS=serving on %s", (int)getpid(),
		 addr);
	if ((ret = notify_send(state)) < 0)
		log_warn("start: notify $NOTIFY_SOCKET: %s", err_str(ret));
	if (d->conf->etcd_servers)
		child_add(d, "skydns-watch-etcd");
	if (d->conf->probe_enable)
		child_add(d, "skydns-probe");
	if (d->conf->k8s_enable)
		child_add(d, "skydns-watch-k8s");
	if ((ret = xfrnotify_new(&d->notify)) < 0)
		log_warn("start: notify secondaries: %s", err_str(ret));
	serve_loop(d);
	if (!d->successor) /* else the service goes on, in the successor */
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
	if (d->ctl >= 0) {
		close(d->ctl);
		unlink(d->ctl_path); /* a successor would have closed ours */
	}
	log_close();
}

int main(int argc, char **argv)
{
	opts_t o;
	daemon_t d = {.sfd = -1, .ctl = -1, .opts = &o, .argv0 = argv[0]};
	char err[512] = "";
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
		int bad = check_startup(d.conf);

		if (bad == 0)
			printf("%s: ok\n", o.conf_path);
		else
			fprintf(stderr, "%s: %d problem%s that would stop skydns from starting\n",
				o.conf_path, bad, bad == 1 ? "" : "s");
		conf_free(d.conf);
		return bad ? 2 : 0;
	}
	/* The store and the log are created as [General] user, who must be able to reopen them. */
	int as_user = privs_enter(d.conf);
	if (as_user < 0) {
		fprintf(stderr, "skydns: [General] user %s: %s\n", d.conf->user, err_str(as_user));
		conf_free(d.conf);
		return 1;
	}
	ret = log_open(d.conf->log_dir, d.conf->log_to_stdio, d.conf->log_level, "skydns");
	if (ret < 0)
		fprintf(stderr, "skydns: log: %s\n", err_str(ret));
	ret = store_open(&d.store, d.conf->data_dir, d.conf->map_size, 0);
	if (as_user == 1 && privs_leave() < 0) {
		fprintf(stderr, "skydns: cannot return to root after opening the store\n");
		return 1;
	}
	if (ret < 0) {
		char why[160] = "";

		if (as_user == 1 && (ret == -EACCES || ret == -EPERM))
			snprintf(why, sizeof(why),
				 " (as [General] user %s: data-dir must be writable by that user: "
				 "create it with chown %s)",
				 d.conf->user, d.conf->user);
		log_err("store: open %s: %s%s", d.conf->data_dir, err_str(ret), why);
		fprintf(stderr, "skydns: store: open %s: %s%s\n", d.conf->data_dir, err_str(ret),
			why);
		ret = 1;
	} else if (o.import)
		ret = do_import(d.conf, d.store, &o);
	else if (o.status_ip && d.conf->etcd_servers && d.conf->etcd_servers[0])
		ret = set_status_etcd(&o);
	else if (o.status_ip)
		ret = do_set_status(d.store, &o);
	else
		ret = run_daemon(&d);
	daemon_free(&d);
	return ret;
}
