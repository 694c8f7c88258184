#include "engine/forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "common/csprng.h"
#include "engine/edns.h"
#include "engine/fairshare.h"

#define NIL UINT32_MAX
#define GEN_STALE (NIL - 1)  /* a reply built from the cache's stale entry */
#define GEN_NETERR (NIL - 2) /* SERVFAIL: every try ended in a network error (EDE 23) */
#define GEN_CACHE (NIL - 3)  /* another worker's answer: each waiter's reply from the cache */
#define NGROUPS (1 + CONF_MAX_SUBDOMAINS) /* group 0: nameservers, then subdomains */
#define NBUCKETS 8192			  /* in-flight question hash, power of two */
#define MSG_MAX 65535
#define EDNS_DO 0x8000u
#define RESOLV_CONF "/etc/resolv.conf"
#define RTT_BAND_MS 10 /* fastest: servers this close to the best count as equally fast */

_Static_assert(CONF_MAX_SERVERS <= 16, "struct inflight's tried mask is 16 bits");

_Static_assert(FAIRSHARE_SLOTS >= 2 * FORWARD_MAX_WAITERS, "every waiter's network must fit");

struct group {
	uint8_t name[WIRE_NAME_MAX];
	size_t namelen;
	size_t n;
	size_t stat0; /* index of its first server in f->srv */
	uint32_t try_ms;
	uint32_t rr; /* round-robin: where the next question starts */
};

/*
 * What this worker knows of one upstream server. Per worker, so the hot path
 * takes no lock; each worker learns on its own (a dead server costs each
 * worker one try at most, then probes find it).
 */
struct health {
	uint32_t srtt8;	     /* smoothed RTT, ms x 8 (EWMA 1/8, as TCP's) */
	uint32_t fails;	     /* failed tries and probes in a row */
	uint64_t next_probe; /* when a server with fails > 0 is probed next (ms) */
	uint64_t waiting;    /* since when a try has had no answer (0: none) */
	uint8_t group, idx;  /* where it is listed */
	bool measured;	     /* srtt8 holds a sample */
	bool down;	     /* taken out: max-fails reached, no answer since */
	bool probing;	     /* a probe of it is in flight */
};

struct inflight {
	uint64_t owner; /* fairshare key of the network that started it (0: none) */
	uint32_t hnext;
	uint32_t hash;
	uint32_t waiters; /* list of struct waiter */
	uint32_t apos;	  /* index in f->active */
	uint64_t deadline;
	uint16_t id;
	uint16_t qtype;
	uint16_t qclass;
	uint8_t qname[WIRE_NAME_MAX]; /* lowercase */
	uint8_t qnamelen;
	uint8_t group;
	uint8_t cur; /* server being tried, index in the group */
	bool used, tcp, queued, do_bit, cd, has_id;
	bool sent;	   /* its UDP try went out and was not released yet */
	bool probe;	   /* a health probe (". NS"): no waiters, never joined, never cached */
	bool prefetch;	   /* a refresh of a live cache entry: started with no waiters, and a
			    * failure leaves the entry alone (no SERVFAIL cached over it) */
	uint16_t tried;	   /* servers of the group asked already (bit = index in the group) */
	uint64_t sent_ms;  /* the current try's start, for its RTT sample */
	uint64_t stale_at; /* serve-stale: when its waiters get the stale answer */
	bool has_stale;	   /* the cache holds one (serve-stale on) */
	bool stale_done;   /* they got it: the question goes on to refresh the cache */
	/* How its tries failed: a network error (port unreachable) / a timeout. Only network
	 * errors make the SERVFAIL say EDE 23 (Network Error) rather than 22. */
	bool neterr, timed_out;
	/* Cross-worker joining (engine/inflight.h): `registered`: we asked, `ref` is ours to
	 * end at release; `remote`: another worker asks, `ref` is its question, nothing is
	 * sent and `deadline` is when we give up waiting and ask ourselves. */
	bool registered, remote;
	uint64_t ref;
};

struct waiter {
	uint64_t net; /* fairshare key of its client (0: not counted) */
	uint32_t next;
	forward_client_t client;
	query_t q;
};

struct reply {
	uint32_t waiter;
	uint32_t gen; /* answer generation, or NIL for SERVFAIL */
};

struct forward {
	struct group groups[NGROUPS];
	size_t ngroups;
	forward_server_stats_t srv[NGROUPS * CONF_MAX_SERVERS];
	struct health hs[NGROUPS * CONF_MAX_SERVERS];
	size_t nsrv;
	uint8_t policy;		/* CONF_POLICY_* */
	unsigned max_fails;	/* 0: servers are never taken out, never probed */
	uint32_t probe_ms;	/* health-check */
	uint64_t rng;		/* random policy; splitmix state, not a secret */
	size_t nsick;		/* servers with fails > 0: they want probes, so ticks */
	log_ratelimit_t rl;	/* health changes: a flapping server must not flood the log */
	bool serve_stale;	/* serve-stale > 0 and a cache */
	uint32_t stale_wait_ms; /* stale-answer-timeout */
	uint64_t now_ms; /* of the last call that passed one: stale replies are built later */
	uint16_t edns_udp;
	csprng_t ids;	    /* upstream query IDs: unpredictable (issue 10) */
	fairshare_t *share; /* NULL: forward-max-per-client = 0 */
	forward_stats_t st;
	cache_t *cache;	    /* maybe shared with the other workers' forwarders */
	inflight_t *reg;    /* with a shared cache: the workers' in-flight registry, or NULL */
	unsigned worker;    /* our number in reg */
	uint64_t wakes;	    /* workers waiting for questions we ended (forward_take_wakes) */
	bool cache_reports; /* forward_cache_entries reports the shared table */

	struct inflight fl[FORWARD_MAX_INFLIGHT];
	uint32_t fl_free[FORWARD_MAX_INFLIGHT];
	size_t nfl_free;
	uint32_t active[FORWARD_MAX_INFLIGHT];
	size_t nactive;
	uint16_t idmap[65536]; /* query ID -> in-flight index + 1 */
	uint32_t buckets[NBUCKETS];

	struct waiter w[FORWARD_MAX_WAITERS];
	uint32_t w_free;

	uint32_t sendq[FORWARD_MAX_INFLIGHT]; /* each in-flight entry at most once */
	size_t send_head, nsend;
	uint32_t relq[FORWARD_MAX_INFLIGHT]; /* each slot at most once: set `sent` -> queued */
	size_t rel_head, nrel;
	struct reply replyq[FORWARD_MAX_WAITERS]; /* each waiter at most once */
	size_t reply_head, nreply;

	/* Scrubbing (cache_policy_t): our own domains, and the subdomain groups' zones. */
	uint8_t local_dom[CONF_MAX_DOMAINS][WIRE_NAME_MAX];
	cache_zone_t local_z[CONF_MAX_DOMAINS];
	size_t nlocal;
	cache_zone_t fwd_z[NGROUPS];
	uint32_t max_ttl;      /* what answers are capped at now */
	uint32_t conf_max_ttl; /* [Dns] max-ttl; forward_set_max_ttl(f, 0) returns to it */
	forward_local_fn local;
	void *local_ctx;
	uint8_t *local_buf; /* MSG_MAX: our own reply for a local name a chain led to */

	uint8_t *answer, *scratch; /* MSG_MAX each: current normalized answer, next one */
	size_t answer_len;
	uint32_t answer_gen;
	cache_msg_t answer_info;
};

/* ---- small helpers ----------------------------------------------------- */

static void inc(uint64_t *v)
{
	__atomic_store_n(v, __atomic_load_n(v, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static bool addr_equal(const conf_addr_t *a, const conf_addr_t *b)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->sa;
	const struct sockaddr *sb = (const struct sockaddr *)&b->sa;

	if (sa->sa_family != sb->sa_family)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)sa, *y = (const void *)sb;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)sa, *y = (const void *)sb;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/* A server that is us: dns-addr itself, or loopback on our port when we listen on any. */
static bool addr_is_self(const conf_addr_t *srv, const conf_addr_t *self)
{
	const struct sockaddr *s = (const struct sockaddr *)&srv->sa;
	const struct sockaddr *me = (const struct sockaddr *)&self->sa;

	if (addr_equal(srv, self))
		return true;
	if (s->sa_family == AF_INET && me->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)s, *y = (const void *)me;
		return x->sin_port == y->sin_port && y->sin_addr.s_addr == htonl(INADDR_ANY) &&
		       (ntohl(x->sin_addr.s_addr) >> 24) == 127;
	}
	if (s->sa_family == AF_INET6 && me->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)s, *y = (const void *)me;
		return x->sin6_port == y->sin6_port && IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr) &&
		       IN6_IS_ADDR_LOOPBACK(&x->sin6_addr);
	}
	return false;
}

/* ---- setup ------------------------------------------------------------- */

static int parse_ns_addr(const char *text, conf_addr_t *out)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->sa;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(53);
		out->len = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(53);
		out->len = sizeof(*v6);
		return 0;
	}
	return ERR_PARSE;
}

/* The `nameserver` lines of resolv.conf(5); a missing file means no servers. */
static size_t read_resolv_conf(const char *path, conf_addr_t *out, size_t max)
{
	char line[512], addr[128];
	size_t n = 0;
	FILE *fp = fopen(path, "re");

	if (!fp) {
		log_warn("forward: %s: %s; no upstream servers", path, strerror(errno));
		return 0;
	}
	while (n < max && fgets(line, sizeof(line), fp)) {
		if (sscanf(line, " nameserver %127s", addr) != 1)
			continue;
		char *pct = strchr(addr, '%'); /* link-local zone: not supported */
		if (pct)
			*pct = '\0';
		if (parse_ns_addr(addr, &out[n]) == 0)
			n++;
		else
			log_warn("forward: %s: bad nameserver '%s' ignored", path, addr);
	}
	fclose(fp);
	return n;
}

static void add_group(forward_t *f, const conf_t *c, const uint8_t *name, size_t namelen,
		      const conf_addr_t *srv, size_t n)
{
	struct group *g = &f->groups[f->ngroups++];
	char text[INET6_ADDRSTRLEN + 8];

	memcpy(g->name, name, namelen);
	g->namelen = namelen;
	g->stat0 = f->nsrv;
	g->n = 0;
	for (size_t i = 0; i < n; i++) {
		if (addr_is_self(&srv[i], &c->dns_addr)) {
			const struct sockaddr_in *v4 = (const void *)&srv[i].sa;
			const struct sockaddr_in6 *v6 = (const void *)&srv[i].sa;
			const void *a = v4->sin_family == AF_INET ? (const void *)&v4->sin_addr
								  : (const void *)&v6->sin6_addr;
			if (!inet_ntop(v4->sin_family, a, text, sizeof(text)))
				strcpy(text, "?");
			log_warn("forward: upstream %s is this server (dns-addr): forwarding loop, "
				 "server skipped",
				 text);
			continue;
		}
		f->hs[f->nsrv].group = (uint8_t)f->ngroups - 1;
		f->hs[f->nsrv].idx = (uint8_t)g->n;
		f->srv[f->nsrv++].addr = srv[i];
		g->n++;
	}
	uint32_t per = g->n ? c->forward_timeout_ms / (uint32_t)g->n : 0;
	g->try_ms = per > FORWARD_MIN_TRY_MS ? per : FORWARD_MIN_TRY_MS;
}

static void setup_groups(forward_t *f, const conf_t *c, const char *resolv)
{
	conf_addr_t rc[CONF_MAX_SERVERS];
	static const uint8_t root[1] = {0};

	if (c->nnameservers > 0) {
		add_group(f, c, root, 1, c->nameservers, c->nnameservers);
	} else {
		size_t n = read_resolv_conf(resolv ? resolv : RESOLV_CONF, rc, CONF_MAX_SERVERS);
		add_group(f, c, root, 1, rc, n);
	}
	for (size_t i = 0; i < c->nsubdomains && i < CONF_MAX_SUBDOMAINS; i++) {
		const conf_subdomain_t *s = &c->subdomains[i];
		add_group(f, c, s->name, s->namelen, s->servers, s->nservers);
	}
}

/*
 * forward-max-per-client questions (1/8 of the table by default) and twice
 * that many waiters per client network: one network then holds at most an
 * eighth of either table, and a busy NAT still gets 512 distinct questions
 * in flight per worker (thousands of uncached queries a second at usual
 * upstream round trips).
 */
static int share_new(forward_t *f, const conf_t *c, uint64_t seed)
{
	unsigned q = c->forward_max_per_client, w;

	if (q == 0)
		return 0;
	if (q > FORWARD_MAX_INFLIGHT)
		q = FORWARD_MAX_INFLIGHT;
	w = 2 * q > FORWARD_MAX_WAITERS ? FORWARD_MAX_WAITERS : 2 * q;
	return fairshare_new(&f->share, q, w, seed);
}

/* Copies: the forwarder outlives the conf_t it was made from. */
static void setup_policy(forward_t *f, const conf_t *c)
{
	for (size_t i = 0; i < c->ndomains && i < CONF_MAX_DOMAINS; i++) {
		memcpy(f->local_dom[i], c->domains[i], c->domainlens[i]);
		f->local_z[i].name = f->local_dom[i];
		f->local_z[i].len = c->domainlens[i];
		f->nlocal++;
	}
	for (size_t i = 1; i < f->ngroups; i++) {
		f->fwd_z[i - 1].name = f->groups[i].name;
		f->fwd_z[i - 1].len = f->groups[i].namelen;
	}
	f->max_ttl = c->max_ttl;
	f->conf_max_ttl = c->max_ttl;
	f->policy = c->policy;
	f->max_fails = c->max_fails;
	f->probe_ms = c->health_check_ms ? c->health_check_ms : 500;
	f->serve_stale = c->serve_stale > 0 && f->cache;
	f->stale_wait_ms = c->stale_answer_timeout_ms;
	if (f->serve_stale)
		cache_set_stale(f->cache, c->serve_stale);
}

int forward_new(forward_t **out, const conf_t *c, const forward_opts_t *opts)
{
	forward_t *f;
	uint64_t x = opts->seed;
	unsigned nw = opts->nworkers ? opts->nworkers : 1;
	int ret;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->answer = malloc(MSG_MAX);
	f->scratch = malloc(MSG_MAX);
	f->local_buf = malloc(MSG_MAX);
	if (!f->answer || !f->scratch || !f->local_buf) {
		ret = -ENOMEM;
		goto fail;
	}
	f->cache_reports = true;
	if (opts->cache) {
		if ((ret = cache_share(opts->cache, &f->cache)) < 0)
			goto fail;
		f->cache_reports = opts->cache_reports;
		f->reg = opts->inflight;
		f->worker = opts->worker;
	} else if (c->cache_size > 0) {
		size_t per = c->cache_size / nw;
		if ((ret = cache_new(&f->cache, per ? per : 1, splitmix(&x))) < 0)
			goto fail;
	}
	if ((ret = csprng_init(&f->ids)) < 0) {
		log_err("forward: no kernel randomness for upstream query IDs: %s", err_str(ret));
		goto fail;
	}
	if ((ret = share_new(f, c, splitmix(&x))) < 0)
		goto fail;
	f->rng = splitmix(&x);
	f->edns_udp = c->edns_bufsize >= 512 ? c->edns_bufsize : 1232;
	memset(f->buckets, 0xFF, sizeof(f->buckets));
	for (size_t i = 0; i < FORWARD_MAX_INFLIGHT; i++)
		f->fl_free[i] = (uint32_t)(FORWARD_MAX_INFLIGHT - 1 - i);
	f->nfl_free = FORWARD_MAX_INFLIGHT;
	for (size_t i = 0; i < FORWARD_MAX_WAITERS; i++)
		f->w[i].next = i + 1 < FORWARD_MAX_WAITERS ? (uint32_t)(i + 1) : NIL;
	f->w_free = 0;
	setup_groups(f, c, opts->resolv_conf);
	setup_policy(f, c);
	f->local = opts->local;
	f->local_ctx = opts->local_ctx;
	*out = f;
	return 0;
fail:
	forward_free(f);
	return ret;
}

void forward_free(forward_t *f)
{
	if (!f)
		return;
	/* Our questions end here: other workers waiting for them find them dead at their
	 * next tick (this teardown does no I/O, so it wakes nobody) and ask themselves. */
	for (size_t i = 0; f->reg && i < f->nactive; i++)
		if (f->fl[f->active[i]].registered)
			inflight_done(f->reg, f->fl[f->active[i]].ref);
	csprng_deinit(&f->ids);
	fairshare_free(f->share);
	cache_free(f->cache);
	free(f->answer);
	free(f->scratch);
	free(f->local_buf);
	free(f);
}

/* ---- in-flight table --------------------------------------------------- */

/* The key of a question in flight: name, type, class, DO and CD (as the cache's). */
static bool q_cd(const query_t *q)
{
	return (q->flags & WIRE_FLAG_CD) != 0;
}

static uint32_t q_hash(const uint8_t *name, size_t len, uint16_t qtype, uint16_t qclass,
		       bool do_bit, bool cd)
{
	uint32_t h = 2166136261u ^ qtype ^ ((uint32_t)qclass << 16) ^ (do_bit ? 0x5bd1e995u : 0) ^
		     (cd ? 0x27d4eb2du : 0);

	for (size_t i = 0; i < len; i++)
		h = (h ^ name[i]) * 16777619u;
	return h;
}

static uint32_t fl_find(const forward_t *f, const uint8_t *lname, size_t len, const query_t *q,
			uint32_t h)
{
	for (uint32_t i = f->buckets[h & (NBUCKETS - 1)]; i != NIL; i = f->fl[i].hnext) {
		const struct inflight *e = &f->fl[i];
		if (!e->probe && e->hash == h && e->qtype == q->qtype && e->qclass == q->qclass &&
		    e->do_bit == q->edns_do && e->cd == q_cd(q) && e->qnamelen == len &&
		    memcmp(e->qname, lname, len) == 0)
			return i;
	}
	return NIL;
}

/* The slot's UDP try is over: its socket must go before the slot sends again. */
static void end_udp_try(forward_t *f, uint32_t idx)
{
	struct inflight *e = &f->fl[idx];

	if (!e->sent)
		return;
	e->sent = false;
	f->relq[(f->rel_head + f->nrel++) % FORWARD_MAX_INFLIGHT] = idx;
}

static void fl_release(forward_t *f, uint32_t idx)
{
	struct inflight *e = &f->fl[idx];
	uint32_t *pp = &f->buckets[e->hash & (NBUCKETS - 1)];
	uint32_t last;

	end_udp_try(f, idx);
	while (*pp != idx)
		pp = &f->fl[*pp].hnext;
	*pp = e->hnext;
	if (e->has_id) /* a remote wait never had one: e->id may be another entry's now */
		f->idmap[e->id] = 0;
	e->has_id = false;
	/* After complete() cached the answer (or the SERVFAIL): the woken find it there. */
	if (e->registered)
		f->wakes |= inflight_done(f->reg, e->ref);
	e->registered = e->remote = false;
	if (f->share)
		fairshare_put(f->share, e->owner, 1, 0);
	e->owner = 0;
	last = f->active[--f->nactive];
	f->active[e->apos] = last;
	f->fl[last].apos = e->apos;
	e->used = false;
	f->fl_free[f->nfl_free++] = idx;
}

/* A random ID not in use; the IDs and the kernel's source port are all a spoofer must guess. */
static uint16_t new_id(forward_t *f)
{
	for (int i = 0; i < 64; i++) {
		uint16_t id = csprng_u16(&f->ids);
		if (f->idmap[id] == 0)
			return id;
	}
	for (uint32_t id = csprng_u16(&f->ids), n = 0; n < 65536; n++, id = (id + 1) & 0xFFFF)
		if (f->idmap[id] == 0)
			return (uint16_t)id;
	return 0; /* unreachable: at most FORWARD_MAX_INFLIGHT IDs are in use */
}

/* Send the question to server `cur` of its group: fresh ID and socket, new deadline. */
static void start_try(forward_t *f, uint32_t idx, bool tcp, uint64_t now_ms)
{
	struct inflight *e = &f->fl[idx];
	const struct group *g = &f->groups[e->group];

	end_udp_try(f, idx);
	if (e->has_id)
		f->idmap[e->id] = 0;
	e->id = new_id(f);
	f->idmap[e->id] = (uint16_t)(idx + 1);
	e->has_id = true;
	e->tcp = tcp;
	e->deadline = now_ms + (tcp ? 2u * g->try_ms : g->try_ms);
	/* A probe lasts at most one health-check, so one starts every interval. */
	if (e->probe)
		e->deadline =
		    now_ms + (f->probe_ms > FORWARD_MIN_TRY_MS ? f->probe_ms : FORWARD_MIN_TRY_MS);
	e->sent_ms = now_ms;
	e->tried |= (uint16_t)(1u << e->cur);
	if (f->hs[g->stat0 + e->cur].waiting == 0)
		f->hs[g->stat0 + e->cur].waiting = now_ms;
	inc(e->probe ? &f->srv[g->stat0 + e->cur].probes : &f->srv[g->stat0 + e->cur].queries);
	if (!e->queued) {
		e->queued = true;
		f->sendq[(f->send_head + f->nsend++) % FORWARD_MAX_INFLIGHT] = idx;
	}
}

/* ---- upstream selection and health (issue 14) -------------------------- */

static void probe_end(forward_t *f, uint32_t idx);

static struct health *health_of(forward_t *f, const struct inflight *e)
{
	return &f->hs[f->groups[e->group].stat0 + e->cur];
}

static void health_log(forward_t *f, const struct inflight *e, bool up)
{
	char text[INET6_ADDRSTRLEN + 16];

	if (!log_ratelimit_ok(&f->rl, 4))
		return;
	conf_format_addr(&f->srv[f->groups[e->group].stat0 + e->cur].addr, text, sizeof(text));
	if (up)
		log_info("forward: upstream %s answers again, back in use", text);
	else
		log_warn("forward: upstream %s failed %u times in a row, taken out "
			 "and probed every %u ms",
			 text, f->max_fails, f->probe_ms);
}

static const uint32_t rtt_le[FORWARD_RTT_BUCKETS] = {1,	  2,   5,   10,	  20,	50,
						     100, 200, 500, 1000, 2000, UINT32_MAX};

uint32_t forward_rtt_le_ms(unsigned i)
{
	return i < FORWARD_RTT_BUCKETS ? rtt_le[i] : UINT32_MAX;
}

/* An answer to a question (not a probe): its rcode and round trip, for /metrics. */
static void count_answer(forward_t *f, const struct inflight *e, uint16_t flags, uint64_t now_ms)
{
	forward_server_stats_t *st = &f->srv[f->groups[e->group].stat0 + e->cur];
	uint64_t ms = now_ms - e->sent_ms;
	unsigned b = 0;

	while (b + 1 < FORWARD_RTT_BUCKETS && ms > rtt_le[b])
		b++;
	inc(&st->rcode[flags & 0xF]);
	inc(&st->rtt[b]);
	__atomic_store_n(&st->rtt_sum_ms, __atomic_load_n(&st->rtt_sum_ms, __ATOMIC_RELAXED) + ms,
			 __ATOMIC_RELAXED);
}

static void rtt_sample(struct health *h, uint64_t ms)
{
	uint32_t v = ms > 60000 ? 60000 : (uint32_t)ms;

	h->srtt8 = h->measured ? h->srtt8 - h->srtt8 / 8 + v : v * 8;
	h->measured = true;
}

/* The current try of e got an answer (any rcode: the server is alive). */
static void server_ok(forward_t *f, const struct inflight *e, uint64_t now_ms)
{
	struct health *h = health_of(f, e);

	/* A probe's sample replaces the history: the timeouts that took it out are
	 * not what it does now, and it must compete again to get questions. */
	if (e->probe)
		h->measured = false;
	rtt_sample(h, now_ms - e->sent_ms);
	h->waiting = 0;
	if (h->fails > 0 && f->max_fails > 0)
		f->nsick--;
	h->fails = 0;
	if (h->down) {
		h->down = false;
		health_log(f, e, true);
	}
}

/* The current try of e timed out or was refused. */
static void server_failed(forward_t *f, const struct inflight *e, uint64_t now_ms)
{
	struct health *h = health_of(f, e);

	if (!e->probe) /* a timeout is a lower bound of its RTT: fastest moves away from it */
		rtt_sample(h, now_ms - e->sent_ms);
	h->waiting = 0; /* that wait is in srtt now */
	if (f->max_fails == 0)
		return;
	if (h->fails++ == 0)
		f->nsick++;
	if (!h->down && h->fails >= f->max_fails) {
		h->down = true;
		health_log(f, e, false);
	}
	/* Not out yet: ask it again in the background at once, so max-fails counts
	 * probes too and the clients' questions do not pay for the verdict. */
	h->next_probe = h->down ? e->sent_ms + f->probe_ms : now_ms;
}

static bool untried(const struct inflight *e, size_t i)
{
	return !(e->tried & (1u << i));
}

/* Server i of g may take the next try: not asked yet, and healthy unless none is. */
static bool candidate(const forward_t *f, const struct group *g, const struct inflight *e, size_t i,
		      bool any_up)
{
	return untried(e, i) && (!any_up || !f->hs[g->stat0 + i].down);
}

/*
 * A server's RTT as far as we know now, in ms: its srtt, or longer while a
 * try has waited longer than that. So a server that went silent loses its
 * questions within RTT_BAND_MS instead of at its first timeout, which would
 * let every question of that first try time (thousands a second) wait.
 */
static uint64_t rtt_now(const forward_t *f, const struct health *h)
{
	uint64_t rtt = h->srtt8 / 8;

	if (h->waiting && f->now_ms > h->waiting && f->now_ms - h->waiting > rtt)
		rtt = f->now_ms - h->waiting;
	return rtt;
}

static size_t pick_fastest(const forward_t *f, const struct group *g, const struct inflight *e,
			   bool any_up)
{
	uint64_t best = UINT64_MAX;
	size_t i;

	for (i = 0; i < g->n; i++)
		if (candidate(f, g, e, i, any_up) && rtt_now(f, &f->hs[g->stat0 + i]) < best)
			best = rtt_now(f, &f->hs[g->stat0 + i]);
	/* Within the band, the listed order decides: stable, and what users expect. */
	for (i = 0; i < g->n; i++)
		if (candidate(f, g, e, i, any_up) &&
		    rtt_now(f, &f->hs[g->stat0 + i]) <= best + RTT_BAND_MS)
			break;
	return i;
}

/*
 * The servers passed over drift towards fast (BIND's decay, 1/64 a question),
 * so one that was slow once, or timed out while max-fails = 0 keeps it from
 * being probed, is measured again after some hundred questions.
 */
static void decay_others(forward_t *f, const struct group *g, const struct inflight *e,
			 size_t chosen, bool any_up)
{
	for (size_t i = 0; i < g->n; i++)
		if (i != chosen && candidate(f, g, e, i, any_up))
			f->hs[g->stat0 + i].srtt8 -= f->hs[g->stat0 + i].srtt8 / 64;
}

/*
 * The server (index in its group) for e's next try, chosen by the policy
 * among the healthy servers not asked yet, or among the ones taken out
 * when no healthy one is left (a guess beats SERVFAIL). @return -1 when
 * every server was asked.
 */
static int pick_server(forward_t *f, const struct inflight *e, bool first)
{
	struct group *g = &f->groups[e->group];
	size_t n = g->n, start = 0, m = 0, i, k;
	bool any_up = false, any = false;

	for (i = 0; i < n; i++) {
		any |= untried(e, i);
		any_up |= untried(e, i) && !f->hs[g->stat0 + i].down;
	}
	if (!any)
		return -1;
	switch (f->policy) {
	case CONF_POLICY_FASTEST:
		k = pick_fastest(f, g, e, any_up);
		if (first)
			decay_others(f, g, e, k, any_up);
		return (int)k;
	case CONF_POLICY_RANDOM:
		for (i = 0; i < n; i++)
			m += candidate(f, g, e, i, any_up);
		k = (size_t)(splitmix(&f->rng) % m);
		for (i = 0; i < n; i++)
			if (candidate(f, g, e, i, any_up) && k-- == 0)
				return (int)i;
		return -1;
	case CONF_POLICY_ROUND_ROBIN:
		start = first ? g->rr++ % n : ((size_t)e->cur + 1) % n;
		break;
	default: /* sequential */
		break;
	}
	for (k = 0; k < n; k++)
		if (candidate(f, g, e, (start + k) % n, any_up))
			return (int)((start + k) % n);
	return -1;
}

/* Longest subdomain group containing the name, else group 0. */
static uint8_t pick_group(const forward_t *f, const uint8_t *name, size_t len)
{
	size_t best = 0, bestlen = 0;

	for (size_t i = 1; i < f->ngroups; i++) {
		const struct group *g = &f->groups[i];
		if (g->namelen > bestlen &&
		    wire_name_is_subdomain(name, len, g->name, g->namelen)) {
			best = i;
			bestlen = g->namelen;
		}
	}
	return (uint8_t)best;
}

static uint32_t fl_alloc(forward_t *f, const query_t *q, const uint8_t *lname, uint32_t h,
			 uint8_t group)
{
	uint32_t idx = f->fl_free[--f->nfl_free];
	struct inflight *e = &f->fl[idx];

	e->hash = h;
	e->hnext = f->buckets[h & (NBUCKETS - 1)];
	f->buckets[h & (NBUCKETS - 1)] = idx;
	e->waiters = NIL;
	e->qtype = q->qtype;
	e->qclass = q->qclass;
	memcpy(e->qname, lname, q->qnamelen);
	e->qnamelen = (uint8_t)q->qnamelen;
	e->group = group;
	e->cur = 0;
	e->tried = 0;
	e->probe = false;
	e->prefetch = false;
	e->has_stale = false;
	e->stale_done = false;
	e->neterr = e->timed_out = false;
	e->registered = e->remote = false;
	e->do_bit = q->edns_do;
	e->cd = q_cd(q); /* part of the key: the upstream query's CD is every waiter's */
	e->used = true;
	e->apos = (uint32_t)f->nactive;
	f->active[f->nactive++] = idx;
	return idx;
}

/* Build our own SERVFAIL for q into resp, with the EDNS_EDE_* reason `ede`. */
static int servfail_ede(forward_t *f, const query_t *q, int ede, uint8_t *resp, size_t cap,
			size_t *resplen)
{
	uint8_t norm[WIRE_HDR_LEN + WIRE_NAME_MAX + 4];
	cache_msg_t info;
	size_t len;

	inc(&f->st.servfail);
	if (cache_msg_rcode(q, WIRE_RCODE_SERVFAIL, norm, sizeof(norm), &len, &info) < 0 ||
	    cache_msg_finish_ede(norm, len, q, f->edns_udp, ede, resp, cap, resplen) < 0)
		*resplen = 0;
	return FWD_FAILED;
}

static int servfail(forward_t *f, const query_t *q, uint8_t *resp, size_t cap, size_t *resplen)
{
	return servfail_ede(f, q, EDNS_EDE_NONE, resp, cap, resplen);
}

static int add_waiter(forward_t *f, uint32_t idx, const query_t *q, const forward_client_t *client,
		      uint64_t net)
{
	uint32_t wi = f->w_free;

	if (wi == NIL)
		return ERR_SPACE;
	f->w_free = f->w[wi].next;
	f->w[wi].q = *q;
	f->w[wi].client = *client;
	f->w[wi].net = net;
	if (f->share)
		fairshare_take(f->share, net, 0, 1);
	f->w[wi].next = f->fl[idx].waiters;
	f->fl[idx].waiters = wi;
	return 0;
}

static void complete(forward_t *f, uint32_t idx, uint32_t gen);

/*
 * A new question of ours (entry idx, not sent yet): is another worker asking
 * it already? Then wait for that one (remote) and send nothing; otherwise
 * register as the one asking (or, with the registry full, just ask).
 * @return true when it waits for another worker.
 */
static bool reg_claim(forward_t *f, uint32_t idx, uint64_t now_ms)
{
	struct inflight *e = &f->fl[idx];
	const struct group *g = &f->groups[e->group];
	inflight_key_t k = {.name = e->qname,
			    .len = e->qnamelen,
			    .qtype = e->qtype,
			    .qclass = e->qclass,
			    .do_bit = e->do_bit,
			    .cd = e->cd,
			    .hash = e->hash};
	uint64_t ref;

	if (!f->reg)
		return false;
	switch (inflight_claim(f->reg, &k, f->worker, &ref)) {
	case INFLIGHT_OWNER:
		e->ref = ref;
		e->registered = true;
		return false;
	case INFLIGHT_JOINED:
		/* The owner's every try, one TCP retry, and a margin: past that it is stuck. */
		e->ref = ref;
		e->remote = true;
		e->deadline = now_ms + (uint64_t)g->try_ms * (g->n + 2) + 100;
		inc(&f->st.joined_workers);
		return true;
	default:
		return false;
	}
}

/*
 * The owner of remote entry idx is done (or late): its waiters get the
 * cached answer, or, with nothing cached, we ask ourselves.
 */
static void remote_resolve(forward_t *f, uint32_t idx, uint64_t now_ms)
{
	struct inflight *e = &f->fl[idx];
	size_t len;

	bool live = inflight_live(f->reg, e->ref); /* still: the owner is late */

	e->remote = false;
	if (e->waiters == NIL || /* they got the stale answer: the owner refreshes the entry */
	    (!live && cache_lookup(f->cache, &f->w[e->waiters].q, f->edns_udp, now_ms, f->local_buf,
				   MSG_MAX, &len) == 0)) {
		complete(f, idx, GEN_CACHE);
		return;
	}
	/* Nothing cached: ask ourselves, registered unless the late owner still is. */
	if (!live && reg_claim(f, idx, now_ms))
		return;
	inc(&f->st.forwarded);
	f->fl[idx].cur = (uint8_t)pick_server(f, &f->fl[idx], true);
	start_try(f, idx, false, now_ms);
}

/*
 * A hit in the last tenth of its TTL: ask upstream again now, with nobody
 * waiting, so the answer replaces the entry before it expires and the name
 * never misses while it is in use. At most one question per key is in flight
 * (a miss joins this one); a full table skips the refresh (it is only an
 * optimisation), and it never takes a client's fair share.
 */
static void prefetch(forward_t *f, const query_t *q, uint64_t now_ms)
{
	uint8_t lname[WIRE_NAME_MAX];
	uint32_t h, idx;
	uint8_t group;

	memcpy(lname, q->qname, q->qnamelen);
	wire_name_lower(lname, q->qnamelen);
	h = q_hash(lname, q->qnamelen, q->qtype, q->qclass, q->edns_do, q_cd(q));
	if (fl_find(f, lname, q->qnamelen, q, h) != NIL || f->nfl_free == 0)
		return;
	group = pick_group(f, lname, q->qnamelen);
	if (f->groups[group].n == 0)
		return;
	idx = fl_alloc(f, q, lname, h, group);
	f->fl[idx].owner = 0;
	f->fl[idx].prefetch = true;
	inc(&f->st.forwarded);
	if (f->serve_stale) { /* a client that misses later may still get the old answer */
		f->fl[idx].has_stale = true;
		f->fl[idx].stale_at = now_ms + f->stale_wait_ms;
	}
	f->fl[idx].cur = (uint8_t)pick_server(f, &f->fl[idx], true);
	start_try(f, idx, false, now_ms);
}

int forward_query(forward_t *f, const query_t *q, const forward_client_t *client, uint64_t now_ms,
		  uint8_t *resp, size_t cap, size_t *resplen)
{
	uint8_t lname[WIRE_NAME_MAX];
	uint32_t h, idx;
	uint8_t group;
	uint64_t net;

	inc(&f->st.queries);
	f->now_ms = now_ms;
	if (q->qnamelen == 0 || q->qnamelen > WIRE_NAME_MAX)
		return servfail(f, q, resp, cap, resplen);
	bool refresh = false;
	if (f->cache && cache_lookup_prefetch(f->cache, q, f->edns_udp, now_ms, resp, cap, resplen,
					      &refresh) == 0) {
		if (refresh)
			prefetch(f, q, now_ms);
		return (wire_read_u16(resp + 2) & 0xF) == WIRE_RCODE_SERVFAIL ? FWD_FAILED
									      : FWD_ANSWERED;
	}
	memcpy(lname, q->qname, q->qnamelen);
	wire_name_lower(lname, q->qnamelen);
	h = q_hash(lname, q->qnamelen, q->qtype, q->qclass, q->edns_do, q_cd(q));
	idx = fl_find(f, lname, q->qnamelen, q, h);
	/* Over its share: refused before it takes anything, and nobody is evicted. */
	net = f->share ? fairshare_key(&client->addr) : 0;
	if (f->share && !fairshare_admit(f->share, net, idx == NIL))
		goto share_drop;
	/* Its waiters got the stale answer already: so does this one, at once. */
	if (idx != NIL && f->fl[idx].stale_done &&
	    cache_lookup_stale(f->cache, q, f->edns_udp, now_ms, resp, cap, resplen) == 0)
		return FWD_ANSWERED;
	if (idx != NIL) {
		if (add_waiter(f, idx, q, client, net) < 0)
			goto drop;
		inc(&f->st.joined);
		return FWD_PENDING;
	}
	group = pick_group(f, lname, q->qnamelen);
	if (f->groups[group].n == 0)
		return servfail(f, q, resp, cap, resplen);
	if (f->nfl_free == 0 || f->w_free == NIL)
		goto drop;
	idx = fl_alloc(f, q, lname, h, group);
	f->fl[idx].owner = net;
	if (f->share)
		fairshare_take(f->share, net, 1, 0);
	add_waiter(f, idx, q, client, net);
	if (f->serve_stale && cache_has_stale(f->cache, q, now_ms)) {
		f->fl[idx].has_stale = true;
		f->fl[idx].stale_at = now_ms + f->stale_wait_ms;
	}
	if (reg_claim(f, idx, now_ms))
		return FWD_PENDING;
	inc(&f->st.forwarded);
	f->fl[idx].cur = (uint8_t)pick_server(f, &f->fl[idx], true);
	start_try(f, idx, false, now_ms);
	return FWD_PENDING;
share_drop:
	/* SERVFAIL, as for a full table: a transient shortage of this server, after
	 * which a stub tries its next server; not cached, so nobody else sees it. */
	inc(&f->st.share_drops);
	return servfail(f, q, resp, cap, resplen);
drop:
	inc(&f->st.inflight_drops);
	return servfail(f, q, resp, cap, resplen);
}

/* ---- upstream packets -------------------------------------------------- */

static int build_query(const struct inflight *e, uint16_t edns_udp, uint8_t *buf, size_t cap,
		       size_t *len)
{
	wire_writer_t w;
	uint16_t flags = (uint16_t)(WIRE_FLAG_RD | (e->cd ? WIRE_FLAG_CD : 0));
	int ret;

	wire_writer_init(&w, buf, cap);
	if ((ret = wire_put_u16(&w, e->id)) < 0 || (ret = wire_put_u16(&w, flags)) < 0 ||
	    (ret = wire_put_u16(&w, 1)) < 0 || (ret = wire_put_u16(&w, 0)) < 0 ||
	    (ret = wire_put_u16(&w, 0)) < 0 || (ret = wire_put_u16(&w, 1)) < 0 ||
	    (ret = wire_put_bytes(&w, e->qname, e->qnamelen)) < 0 ||
	    (ret = wire_put_u16(&w, e->qtype)) < 0 || (ret = wire_put_u16(&w, e->qclass)) < 0)
		return ret;
	/* OPT: our buffer size, DO when the client wants DNSSEC records. */
	if ((ret = wire_put_u8(&w, 0)) < 0 || (ret = wire_put_u16(&w, WIRE_TYPE_OPT)) < 0 ||
	    (ret = wire_put_u16(&w, edns_udp)) < 0 || (ret = wire_put_u16(&w, 0)) < 0 ||
	    (ret = wire_put_u16(&w, e->do_bit ? EDNS_DO : 0)) < 0 ||
	    (ret = wire_put_u16(&w, 0)) < 0)
		return ret;
	*len = w.pos;
	return 0;
}

int forward_next_send(forward_t *f, forward_send_t *out)
{
	/* A queued release may name a slot about to send: its old socket must close first. */
	while (f->nrel == 0 && f->nsend > 0) {
		uint32_t idx = f->sendq[f->send_head];
		struct inflight *e = &f->fl[idx];

		f->send_head = (f->send_head + 1) % FORWARD_MAX_INFLIGHT;
		f->nsend--;
		e->queued = false;
		if (!e->used ||
		    build_query(e, f->edns_udp, out->pkt, sizeof(out->pkt), &out->len) < 0)
			continue;
		out->to = &f->srv[f->groups[e->group].stat0 + e->cur].addr;
		out->slot = idx;
		out->tcp = e->tcp;
		out->id = e->id;
		e->sent = !e->tcp;
		return 1;
	}
	return 0;
}

int forward_next_release(forward_t *f, uint32_t *slot)
{
	if (f->nrel == 0)
		return 0;
	*slot = f->relq[f->rel_head];
	f->rel_head = (f->rel_head + 1) % FORWARD_MAX_INFLIGHT;
	f->nrel--;
	return 1;
}

/* Hand every waiting client to the reply queue; gen NIL = SERVFAIL. */
static void complete(forward_t *f, uint32_t idx, uint32_t gen)
{
	for (uint32_t wi = f->fl[idx].waiters; wi != NIL; wi = f->w[wi].next) {
		struct reply *r = &f->replyq[(f->reply_head + f->nreply++) % FORWARD_MAX_WAITERS];
		r->waiter = wi;
		r->gen = gen;
	}
	fl_release(f, idx);
}

static void cache_servfail(forward_t *f, const struct inflight *e, uint64_t now_ms)
{
	uint8_t norm[WIRE_HDR_LEN + WIRE_NAME_MAX + 4];
	cache_msg_t info;
	query_t q;
	size_t len;

	if (!f->cache)
		return;
	memset(&q, 0, sizeof(q));
	memcpy(q.qname, e->qname, e->qnamelen);
	q.qnamelen = e->qnamelen;
	q.qtype = e->qtype;
	q.qclass = e->qclass;
	if (cache_msg_rcode(&q, WIRE_RCODE_SERVFAIL, norm, sizeof(norm), &len, &info) == 0)
		cache_insert(f->cache, norm, len, &info, e->do_bit, e->cd, now_ms);
}

/* The current try failed: next server, or SERVFAIL for everyone. */
static void next_server(forward_t *f, uint32_t idx, uint64_t now_ms)
{
	struct inflight *e = &f->fl[idx];
	int next = pick_server(f, e, false);

	if (next >= 0) {
		e->cur = (uint8_t)next;
		start_try(f, idx, false, now_ms);
		return;
	}
	/* Every server failed: the stale answer, which a cached SERVFAIL would replace. */
	if (e->has_stale) {
		complete(f, idx, GEN_STALE);
		return;
	}
	if (!e->prefetch) /* a refresh that failed keeps the answer it was to replace */
		cache_servfail(f, e, now_ms);
	complete(f, idx, e->neterr && !e->timed_out ? GEN_NETERR : NIL);
}

static bool upstream_failed(uint16_t flags)
{
	switch (flags & 0xF) {
	case WIRE_RCODE_SERVFAIL:
	case WIRE_RCODE_REFUSED:
	case WIRE_RCODE_FORMERR:
	case WIRE_RCODE_NOTIMP:
		return true;
	default:
		return false;
	}
}

static bool question_matches(const struct inflight *e, const cache_msg_t *m)
{
	return m->qtype == e->qtype && m->qclass == e->qclass && m->qnamelen == e->qnamelen &&
	       memcmp(m->qname, e->qname, e->qnamelen) == 0;
}

/* A chain cut at one of our names goes on with the store's answer (issue 10 item 9). */
static size_t continue_local(forward_t *f, size_t len, const cache_msg_t *m)
{
	size_t n, out;

	if (!f->local)
		return len;
	n = f->local(f->local_ctx, m->local, m->locallen, m->qtype, m->qclass, f->local_buf,
		     MSG_MAX);
	if (n == 0 || cache_msg_splice(f->answer, len, MSG_MAX, f->local_buf, n, &out) < 0)
		return len;
	return out;
}

/* Accept a parsed answer for in-flight entry idx. */
static void accept_answer(forward_t *f, uint32_t idx, size_t len, const cache_msg_t *m,
			  uint64_t now_ms)
{
	struct inflight *e = &f->fl[idx];
	uint8_t *tmp;

	if ((m->flags & WIRE_FLAG_TC) && !e->tcp) {
		inc(&f->st.tcp_retries);
		start_try(f, idx, true, now_ms);
		return;
	}
	if (upstream_failed(m->flags) && pick_server(f, e, false) >= 0) {
		inc(&f->srv[f->groups[e->group].stat0 + e->cur].errors);
		next_server(f, idx, now_ms);
		return;
	}
	if (upstream_failed(m->flags))
		inc(&f->srv[f->groups[e->group].stat0 + e->cur].errors);
	if (upstream_failed(m->flags) && e->has_stale) { /* RFC 8767: a failure, like a timeout */
		complete(f, idx, GEN_STALE);
		return;
	}
	tmp = f->answer;
	f->answer = f->scratch;
	f->scratch = tmp;
	if (m->locallen > 0)
		len = continue_local(f, len, m);
	f->answer_len = len;
	f->answer_info = *m;
	f->answer_gen = (f->answer_gen + 1) % GEN_NETERR; /* never one of the GEN_ marks */
	if (f->cache && !(e->prefetch && upstream_failed(m->flags)))
		cache_insert(f->cache, f->answer, len, m, e->do_bit, e->cd, now_ms);
	complete(f, idx, f->answer_gen);
}

void forward_on_packet(forward_t *f, uint32_t slot, const conf_addr_t *from, const uint8_t *pkt,
		       size_t len, uint64_t now_ms)
{
	wire_reader_t r;
	uint16_t id, flags;
	cache_msg_t m;
	size_t nlen;
	uint32_t idx;

	f->now_ms = now_ms;
	wire_reader_init(&r, pkt, len);
	if (wire_get_u16(&r, &id) < 0 || wire_get_u16(&r, &flags) < 0 || f->idmap[id] == 0) {
		inc(&f->st.ignored);
		return;
	}
	idx = f->idmap[id] - 1u;
	struct inflight *e = &f->fl[idx];
	const struct group *g = &f->groups[e->group];
	/* Another try's ID on this socket: a spoofer hit a port, not this try's ID. */
	if (idx != slot || !(flags & WIRE_FLAG_QR) ||
	    !addr_equal(from, &f->srv[g->stat0 + e->cur].addr)) {
		inc(&f->st.ignored);
		return;
	}
	cache_policy_t pol = {
	    .max_ttl = f->max_ttl,
	    .bailiwick = {.name = e->group ? g->name : NULL, .len = g->namelen},
	    .local = f->local_z,
	    .nlocal = f->nlocal,
	    .forwarded = f->fwd_z,
	    .nforwarded = f->ngroups - 1,
	};
	if (cache_msg_parse(pkt, len, &pol, f->scratch, MSG_MAX, &nlen, &m) < 0) {
		inc(&f->st.malformed);
		inc(&f->srv[g->stat0 + e->cur].errors);
		return;
	}
	if (!question_matches(e, &m)) {
		inc(&f->st.ignored);
		return;
	}
	server_ok(f, e, now_ms);
	if (!e->probe)
		count_answer(f, e, m.flags, now_ms);
	if (e->probe) {
		health_of(f, e)->probing = false;
		fl_release(f, idx);
		return;
	}
	if (m.scrubbed)
		__atomic_store_n(&f->st.scrubbed,
				 __atomic_load_n(&f->st.scrubbed, __ATOMIC_RELAXED) + m.scrubbed,
				 __ATOMIC_RELAXED);
	accept_answer(f, idx, nlen, &m, now_ms);
}

void forward_on_error(forward_t *f, uint32_t slot, bool fail_fast, uint64_t now_ms)
{
	struct inflight *e;

	if (slot >= FORWARD_MAX_INFLIGHT)
		return;
	f->now_ms = now_ms;
	e = &f->fl[slot];
	if (!e->used || e->tcp || !e->sent)
		return;
	inc(&f->srv[f->groups[e->group].stat0 + e->cur].errors);
	if (!fail_fast)
		return;
	e->neterr = true;
	server_failed(f, e, now_ms);
	if (e->probe)
		probe_end(f, slot);
	else
		next_server(f, slot, now_ms);
}

int forward_next_reply(forward_t *f, forward_reply_t *out, uint8_t *buf, size_t cap)
{
	while (f->nreply > 0) {
		struct reply r = f->replyq[f->reply_head];
		struct waiter *w = &f->w[r.waiter];
		size_t len = 0;
		int ret;

		f->reply_head = (f->reply_head + 1) % FORWARD_MAX_WAITERS;
		f->nreply--;
		if (r.gen == GEN_STALE) {
			if (!f->cache || cache_lookup_stale(f->cache, &w->q, f->edns_udp, f->now_ms,
							    buf, cap, &len) < 0)
				servfail(f, &w->q, buf, cap, &len);
		} else if (r.gen == f->answer_gen && f->answer_len > 0) {
			ret = cache_msg_finish(f->answer, f->answer_len, &w->q, f->edns_udp, 0, buf,
					       cap, &len);
			if (ret < 0)
				servfail(f, &w->q, buf, cap, &len);
		} else if (r.gen == GEN_CACHE) {
			/* Just found by remote_resolve; gone only if evicted since. */
			if (cache_lookup(f->cache, &w->q, f->edns_udp, f->now_ms, buf, cap, &len) <
			    0)
				servfail(f, &w->q, buf, cap, &len);
		} else if (r.gen == GEN_NETERR) {
			/* Every try was refused by the network (RFC 8914 23 "Network Error"). */
			servfail_ede(f, &w->q, EDNS_EDE_NETWORK_ERROR, buf, cap, &len);
		} else {
			/* Every server failed or timed out (RFC 8914 22 "No Reachable Authority").
			 */
			servfail_ede(f, &w->q, EDNS_EDE_NO_REACHABLE_AUTHORITY, buf, cap, &len);
		}
		out->client = w->client;
		out->len = len;
		if (f->share)
			fairshare_put(f->share, w->net, 0, 1);
		w->net = 0;
		w->next = f->w_free;
		f->w_free = r.waiter;
		if (len > 0)
			return 1;
	}
	return 0;
}

/* A probe of a server that failed: a question for the root NS, as CoreDNS sends. */
static void probe_start(forward_t *f, size_t s, uint64_t now_ms)
{
	struct health *h = &f->hs[s];
	query_t q;
	uint32_t idx;

	if (f->nfl_free == 0) /* the table is full of real questions: next tick */
		return;
	memset(&q, 0, sizeof(q));
	q.qname[0] = 0;
	q.qnamelen = 1;
	q.qtype = WIRE_TYPE_NS;
	q.qclass = WIRE_CLASS_IN;
	idx =
	    fl_alloc(f, &q, q.qname, q_hash(q.qname, 1, q.qtype, q.qclass, false, false), h->group);
	f->fl[idx].probe = true;
	f->fl[idx].cur = h->idx;
	f->fl[idx].owner = 0;
	h->probing = true;
	start_try(f, idx, false, now_ms);
}

static void probe_end(forward_t *f, uint32_t idx)
{
	health_of(f, &f->fl[idx])->probing = false;
	fl_release(f, idx);
}

static void probes_due(forward_t *f, uint64_t now_ms)
{
	for (size_t s = 0; f->nsick > 0 && s < f->nsrv; s++) {
		struct health *h = &f->hs[s];
		if (h->fails > 0 && !h->probing && h->next_probe <= now_ms)
			probe_start(f, s, now_ms);
	}
}

/* stale-answer-timeout passed: the waiters get the stale answer, the question goes on. */
static void stale_now(forward_t *f, uint32_t idx)
{
	struct inflight *e = &f->fl[idx];

	for (uint32_t wi = e->waiters; wi != NIL; wi = f->w[wi].next) {
		struct reply *r = &f->replyq[(f->reply_head + f->nreply++) % FORWARD_MAX_WAITERS];
		r->waiter = wi;
		r->gen = GEN_STALE;
	}
	e->waiters = NIL;
	e->stale_done = true;
}

void forward_on_tick(forward_t *f, uint64_t now_ms)
{
	size_t i = 0;

	f->now_ms = now_ms;
	while (i < f->nactive) {
		uint32_t idx = f->active[i];
		struct inflight *e = &f->fl[idx];

		if (e->has_stale && !e->stale_done && e->stale_at <= now_ms)
			stale_now(f, idx);
		if (e->remote) { /* no try of ours: the owner's end, or our patience's */
			if (e->deadline <= now_ms || !inflight_live(f->reg, e->ref))
				remote_resolve(f, idx, now_ms);
			if (f->fl[idx].used)
				i++;
			continue;
		}
		if (e->deadline > now_ms) {
			i++;
			continue;
		}
		inc(&f->srv[f->groups[e->group].stat0 + e->cur].timeouts);
		e->timed_out = true;
		server_failed(f, e, now_ms);
		if (e->probe)
			probe_end(f, idx);
		else
			next_server(f, idx, now_ms);
		if (f->fl[idx].used)
			i++; /* retried: still here, deadline in the future */
			     /* else released: active[i] now holds another entry, look at it */
	}
	probes_due(f, now_ms);
}

uint64_t forward_take_wakes(forward_t *f)
{
	uint64_t m = f->wakes;

	f->wakes = 0;
	return m;
}

void forward_on_wake(forward_t *f, uint64_t now_ms)
{
	size_t i = 0;

	f->now_ms = now_ms;
	while (i < f->nactive) {
		uint32_t idx = f->active[i];
		if (f->fl[idx].remote && !inflight_live(f->reg, f->fl[idx].ref))
			remote_resolve(f, idx, now_ms);
		if (f->fl[idx].used && f->active[i] == idx)
			i++; /* else released: active[i] holds another entry now */
	}
}

inflight_t *forward_registry(const forward_t *f)
{
	return f->reg;
}

bool forward_wants_tick(const forward_t *f)
{
	return f->nactive > 0 || f->nsick > 0;
}

uint64_t forward_next_timeout(const forward_t *f)
{
	uint64_t t = UINT64_MAX;

	for (size_t i = 0; i < f->nactive; i++)
		if (f->fl[f->active[i]].deadline < t)
			t = f->fl[f->active[i]].deadline;
	for (size_t s = 0; f->nsick > 0 && s < f->nsrv; s++)
		if (f->hs[s].fails > 0 && !f->hs[s].probing && f->hs[s].next_probe < t)
			t = f->hs[s].next_probe;
	return t;
}

size_t forward_inflight(const forward_t *f)
{
	return f->nactive;
}

void forward_stats_read(const forward_t *f, forward_stats_t *out)
{
	const uint64_t *src = (const uint64_t *)&f->st;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < offsetof(forward_stats_t, cache) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	if (f->cache)
		cache_stats_read(f->cache, &out->cache); /* this worker's lookups and inserts */
	else
		memset(&out->cache, 0, sizeof(out->cache));
}

size_t forward_server_count(const forward_t *f)
{
	return f->nsrv;
}

int forward_server_stats(const forward_t *f, size_t i, forward_server_stats_t *out)
{
	if (i >= f->nsrv)
		return ERR_INVAL;
	out->addr = f->srv[i].addr;
	out->queries = __atomic_load_n(&f->srv[i].queries, __ATOMIC_RELAXED);
	out->timeouts = __atomic_load_n(&f->srv[i].timeouts, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&f->srv[i].errors, __ATOMIC_RELAXED);
	out->probes = __atomic_load_n(&f->srv[i].probes, __ATOMIC_RELAXED);
	for (size_t k = 0; k < 16; k++)
		out->rcode[k] = __atomic_load_n(&f->srv[i].rcode[k], __ATOMIC_RELAXED);
	for (size_t k = 0; k < FORWARD_RTT_BUCKETS; k++)
		out->rtt[k] = __atomic_load_n(&f->srv[i].rtt[k], __ATOMIC_RELAXED);
	out->rtt_sum_ms = __atomic_load_n(&f->srv[i].rtt_sum_ms, __ATOMIC_RELAXED);
	/* Worker thread only (upstream_publish): health is not atomic. */
	out->srtt_ms = f->hs[i].srtt8 / 8;
	out->healthy = !f->hs[i].down;
	return 0;
}

size_t forward_cache_entries(const forward_t *f)
{
	return f->cache && f->cache_reports ? cache_count(f->cache) : 0;
}

size_t forward_cache_name(const forward_t *f, const uint8_t *name, size_t len, uint64_t now_ms,
			  cache_name_entry_t *out, size_t cap)
{
	return f->cache ? cache_name_entries(f->cache, name, len, now_ms, out, cap) : 0;
}

size_t forward_cache_flush(forward_t *f, const uint8_t *name, size_t len)
{
	return f->cache ? cache_flush_name(f->cache, name, len) : 0;
}

void forward_set_max_ttl(forward_t *f, uint32_t ttl)
{
	f->max_ttl = ttl ? ttl : f->conf_max_ttl;
}

bool forward_configured(const conf_t *c)
{
	return c->nnameservers > 0 || c->nameservers_set || c->nsubdomains > 0;
}

static bool addrs_same(const conf_addr_t *a, size_t na, const conf_addr_t *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!addr_equal(&a[i], &b[i]))
			return false;
	return true;
}

/* The local domains decide what is scrubbed from upstream answers. */
static bool domains_same(const conf_t *a, const conf_t *b)
{
	if (a->ndomains != b->ndomains)
		return false;
	for (size_t i = 0; i < a->ndomains && i < CONF_MAX_DOMAINS; i++)
		if (a->domainlens[i] != b->domainlens[i] ||
		    memcmp(a->domains[i], b->domains[i], a->domainlens[i]) != 0)
			return false;
	return true;
}

bool forward_conf_same(const conf_t *a, const conf_t *b)
{
	if (forward_configured(a) != forward_configured(b) || a->nnameservers == 0 ||
	    a->forward_timeout_ms != b->forward_timeout_ms || a->cache_size != b->cache_size ||
	    a->edns_bufsize != b->edns_bufsize || !addr_equal(&a->dns_addr, &b->dns_addr) ||
	    a->forward_max_per_client != b->forward_max_per_client || a->max_ttl != b->max_ttl ||
	    a->policy != b->policy || a->max_fails != b->max_fails ||
	    a->health_check_ms != b->health_check_ms || a->serve_stale != b->serve_stale ||
	    a->stale_answer_timeout_ms != b->stale_answer_timeout_ms || !domains_same(a, b) ||
	    !addrs_same(a->nameservers, a->nnameservers, b->nameservers, b->nnameservers) ||
	    a->nsubdomains != b->nsubdomains ||
	    /* DoT names and CA: server/dot.c rebuilds its connections with the forwarder */
	    memcmp(a->nameserver_tls, b->nameserver_tls, sizeof(a->nameserver_tls)) != 0 ||
	    strcmp(a->tls_cafile ? a->tls_cafile : "", b->tls_cafile ? b->tls_cafile : "") != 0)
		return false;
	for (size_t i = 0; i < a->nsubdomains && i < CONF_MAX_SUBDOMAINS; i++) {
		const conf_subdomain_t *x = &a->subdomains[i], *y = &b->subdomains[i];
		if (x->namelen != y->namelen || memcmp(x->name, y->name, x->namelen) != 0 ||
		    !addrs_same(x->servers, x->nservers, y->servers, y->nservers))
			return false;
	}
	return true;
}
