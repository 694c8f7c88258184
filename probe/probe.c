/*
 * probe.c: the check engine (see probe.h). One epoll holds every TCP connect
 * in flight and the ICMP sockets; attempts live in a fixed slot array sized
 * max-checks, linked in start order, so the oldest attempt is the first to
 * time out (check-timeout is one constant) and expiry costs O(expired).
 */
#include "probe/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "store/store.h"

enum { KIND_FREE = 0, KIND_TCP = 1, KIND_ICMP = 2 };
enum { RES_OK, RES_REFUSED, RES_TIMEOUT, RES_ERROR };

#define EV_ICMP4 (UINT64_MAX - 1)
#define EV_ICMP6 (UINT64_MAX - 2)
#define EVENTS_MAX 256
#define ICMP_PAYLOAD 8 /* the slot's generation, twice: a stale reply cannot match */

typedef struct {
	probe_target_t t;
	uint64_t due_ms;
	uint64_t round_us; /* start of the round in flight */
	uint16_t pending;  /* attempts of the round not finished */
	uint8_t state;	   /* STORE_HEALTH_UP or STORE_HEALTH_DOWN */
	uint8_t stored;	   /* PROBE_STORED_* */
	uint8_t okrun, failrun;
	bool known, owned, in_round, tcp_ok, icmp_ok;
} entry_t;

typedef struct {
	int fd;		/* TCP socket; -1 for ICMP */
	uint32_t entry; /* index into probe_t.e */
	uint32_t gen;	/* bumped at every reuse: stale epoll events and replies miss */
	uint8_t kind;	/* KIND_* */
	uint64_t start_us;
	int32_t prev, next; /* in-flight list in start order */
} slot_t;

struct probe {
	probe_conf_t c;
	probe_stats_t *st;
	int ep;
	int icmp4, icmp6;
	bool icmp_raw;
	uint16_t icmp_id; /* echo id on raw sockets (the kernel picks it on datagram ones) */
	entry_t *e;
	size_t n;
	slot_t *slots;
	uint32_t *freel;
	size_t nfree;
	int32_t head, tail;
	uint64_t next_pass_ms;
	probe_owner_fn owner;
	void *owner_ctx;
};

static char g_icmp_err[256];

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

#define STAT_ADD(p, field, v)                                                                      \
	do {                                                                                       \
		if ((p)->st)                                                                       \
			add(&(p)->st->field, (v));                                                 \
	} while (0)
#define STAT_SET(p, field, v)                                                                      \
	do {                                                                                       \
		if ((p)->st)                                                                       \
			atomic_store_explicit(&(p)->st->field, (v), memory_order_relaxed);         \
	} while (0)

const char *probe_icmp_error(void)
{
	return g_icmp_err;
}

const char *probe_icmp_kind(const probe_t *p)
{
	return p->icmp4 < 0 && p->icmp6 < 0 ? "off" : p->icmp_raw ? "raw" : "datagram";
}

/* Unprivileged ICMP first (net.ipv4.ping_group_range), raw (CAP_NET_RAW) second. */
static int icmp_open(probe_t *p, int family, int proto, uint64_t tag, int *out)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	int dgram_err = errno, raw_err;

	if (fd < 0) {
		fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
		raw_err = errno;
		if (fd < 0) {
			snprintf(g_icmp_err, sizeof(g_icmp_err),
				 "no ICMP%s datagram socket (%s; net.ipv4.ping_group_range must "
				 "include the probe's group) and no raw socket (%s; needs "
				 "CAP_NET_RAW)",
				 family == AF_INET6 ? "v6" : "", strerror(dgram_err),
				 strerror(raw_err));
			return -raw_err;
		}
		p->icmp_raw = true;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

int probe_new(probe_t **out, const probe_conf_t *c, probe_stats_t *stats)
{
	probe_t *p = calloc(1, sizeof(*p));
	int ret;

	if (!p || c->max_checks < 1 || c->max_checks > 65535) {
		free(p);
		return p ? ERR_INVAL : -ENOMEM;
	}
	p->c = *c;
	/* One round needs every port and the echo at once; fewer slots would starve it. */
	if (p->c.max_checks < PROBE_PORTS_MAX + 1)
		p->c.max_checks = PROBE_PORTS_MAX + 1;
	p->st = stats;
	p->icmp4 = p->icmp6 = -1;
	p->head = p->tail = -1;
	p->icmp_id = (uint16_t)getpid();
	g_icmp_err[0] = 0;
	p->slots = calloc(p->c.max_checks, sizeof(*p->slots));
	p->freel = calloc(p->c.max_checks, sizeof(*p->freel));
	if ((p->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || !p->slots || !p->freel) {
		ret = p->ep < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < p->c.max_checks; i++) {
		p->slots[i].fd = -1;
		p->freel[p->nfree++] = (uint32_t)(p->c.max_checks - 1 - i);
	}
	if (c->icmp) {
		if ((ret = icmp_open(p, AF_INET, IPPROTO_ICMP, EV_ICMP4, &p->icmp4)) < 0)
			goto fail;
		/* IPv6 is best effort: a host without it still pings IPv4. */
		if (icmp_open(p, AF_INET6, IPPROTO_ICMPV6, EV_ICMP6, &p->icmp6) < 0)
			log_warn("probe: ICMPv6 off: %s", g_icmp_err);
	}
	*out = p;
	return 0;
fail:
	probe_free(p);
	return ret;
}

void probe_free(probe_t *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->c.max_checks && p->slots; i++)
		if (p->slots[i].fd >= 0)
			close(p->slots[i].fd);
	if (p->icmp4 >= 0)
		close(p->icmp4);
	if (p->icmp6 >= 0)
		close(p->icmp6);
	if (p->ep >= 0)
		close(p->ep);
	free(p->slots);
	free(p->freel);
	free(p->e);
	free(p);
}

/* ---- slots ---- */

static int32_t slot_take(probe_t *p, uint32_t entry, uint8_t kind, uint64_t now)
{
	int32_t i = (int32_t)p->freel[--p->nfree];
	slot_t *s = &p->slots[i];

	s->entry = entry;
	s->kind = kind;
	s->start_us = now;
	s->gen++;
	s->next = -1;
	s->prev = p->tail;
	if (p->tail >= 0)
		p->slots[p->tail].next = i;
	else
		p->head = i;
	p->tail = i;
	return i;
}

static void slot_release(probe_t *p, int32_t i)
{
	slot_t *s = &p->slots[i];

	if (s->fd >= 0) {
		close(s->fd); /* linger 0: an RST, no TIME_WAIT per check */
		s->fd = -1;
	}
	if (s->prev >= 0)
		p->slots[s->prev].next = s->next;
	else
		p->head = s->next;
	if (s->next >= 0)
		p->slots[s->next].prev = s->prev;
	else
		p->tail = s->prev;
	s->kind = KIND_FREE;
	s->gen++;
	p->freel[p->nfree++] = (uint32_t)i;
}

/* ---- results and hysteresis ---- */

static void lat_note(probe_t *p, uint64_t us)
{
	static const unsigned bounds[] = PROBE_STATS_LAT_BOUNDS;
	size_t b = 0;

	while (b < PROBE_STATS_LAT_NBOUNDS && us > (uint64_t)bounds[b] * 1000u)
		b++;
	STAT_ADD(p, lat[b], 1);
	STAT_ADD(p, lat_sum_us, us);
}

static void addr_text(const entry_t *e, char *buf, size_t cap)
{
	if (!inet_ntop(e->t.alen == 4 ? AF_INET : AF_INET6, e->t.addr, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
}

static void round_done(probe_t *p, entry_t *e)
{
	bool pass = (e->t.nports == 0 || e->tcp_ok) && (!p->c.icmp || e->icmp_ok);
	char ip[64];

	e->in_round = false;
	STAT_ADD(p, checks, 1);
	if (pass) {
		e->failrun = 0;
		e->okrun = e->okrun < 255 ? e->okrun + 1 : 255;
		if (e->state == STORE_HEALTH_DOWN && e->okrun >= p->c.rise) {
			e->state = STORE_HEALTH_UP;
			STAT_ADD(p, to_up, 1);
			addr_text(e, ip, sizeof(ip));
			log_info("probe: %s is UP (%u checks passed)", ip, e->okrun);
		}
		if (e->state == STORE_HEALTH_UP)
			e->known = true;
		return;
	}
	STAT_ADD(p, failures, 1);
	e->okrun = 0;
	e->failrun = e->failrun < 255 ? e->failrun + 1 : 255;
	if (e->state == STORE_HEALTH_UP && e->failrun >= p->c.fall) {
		e->state = STORE_HEALTH_DOWN;
		e->known = true;
		STAT_ADD(p, to_down, 1);
		addr_text(e, ip, sizeof(ip));
		log_info("probe: %s is DOWN (%u checks failed)", ip, e->failrun);
	}
}

static void attempt_done(probe_t *p, int32_t si, int res, uint64_t now)
{
	slot_t *s = &p->slots[si];
	entry_t *e = &p->e[s->entry];

	if (res == RES_OK) {
		lat_note(p, now - s->start_us);
		if (s->kind == KIND_TCP)
			e->tcp_ok = true;
		else
			e->icmp_ok = true;
	} else if (res == RES_REFUSED)
		STAT_ADD(p, refused, 1);
	else if (res == RES_TIMEOUT)
		STAT_ADD(p, timeouts, 1);
	else
		STAT_ADD(p, errors, 1);
	slot_release(p, si);
	if (e->pending > 0 && --e->pending == 0)
		round_done(p, e);
}

/* ---- starting attempts ---- */

static socklen_t sockaddr_of(const entry_t *e, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (e->t.alen == 4) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		memcpy(&a->sin_addr, e->t.addr, 4);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	memcpy(&a->sin6_addr, e->t.addr, 16);
	return sizeof(*a);
}

static int tcp_start(probe_t *p, uint32_t ei, uint16_t port, uint64_t now)
{
	entry_t *e = &p->e[ei];
	struct sockaddr_storage ss;
	socklen_t sl = sockaddr_of(e, port, &ss);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	int32_t si = slot_take(p, ei, KIND_TCP, now);
	slot_t *s = &p->slots[si];
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return attempt_done(p, si, RES_ERROR, now), 0;
	s->fd = fd;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
		return attempt_done(p, si, RES_OK, now), 0;
	if (errno == ECONNREFUSED)
		return attempt_done(p, si, RES_REFUSED, now), 0;
	if (errno != EINPROGRESS)
		return attempt_done(p, si, RES_ERROR, now), 0;
	struct epoll_event ev = {.events = EPOLLOUT,
				 .data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)si};
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return attempt_done(p, si, RES_ERROR, now), 0;
	return 0;
}

static uint16_t cksum(const uint8_t *b, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)b[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void icmp_start(probe_t *p, uint32_t ei, uint64_t now)
{
	entry_t *e = &p->e[ei];
	int fd = e->t.alen == 4 ? p->icmp4 : p->icmp6;
	int32_t si = slot_take(p, ei, KIND_ICMP, now);
	uint32_t gen = p->slots[si].gen;
	uint8_t pkt[8 + ICMP_PAYLOAD];
	struct sockaddr_storage ss;
	socklen_t sl = sockaddr_of(e, 0, &ss);

	if (fd < 0)
		return attempt_done(p, si, RES_ERROR, now);
	pkt[0] = e->t.alen == 4 ? 8 : 128; /* echo request */
	pkt[1] = 0;
	wire_write_u16(pkt + 2, 0);
	wire_write_u16(pkt + 4, p->icmp_id);
	wire_write_u16(pkt + 6, (uint16_t)si);
	wire_write_u32(pkt + 8, gen);
	wire_write_u32(pkt + 12, ~gen);
	/* IPv4 needs our checksum on a raw socket (the kernel fills it on a datagram one);
	 * ICMPv6's covers a pseudo-header, which the kernel always computes. */
	if (e->t.alen == 4)
		wire_write_u16(pkt + 2, cksum(pkt, sizeof(pkt)));
	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&ss, sl) < 0)
		attempt_done(p, si, RES_ERROR, now);
}

/* One round for entry ei: every port, and ICMP. @return false when slots ran out. */
static bool round_start(probe_t *p, uint32_t ei, uint64_t now)
{
	entry_t *e = &p->e[ei];
	unsigned need = e->t.nports + (p->c.icmp ? 1u : 0u);

	if (need > p->nfree)
		return false;
	e->in_round = true;
	e->tcp_ok = e->icmp_ok = false;
	e->round_us = now;
	e->pending = (uint16_t)need;
	for (unsigned k = 0; k < e->t.nports && e->in_round; k++)
		tcp_start(p, ei, e->t.ports[k], now);
	if (p->c.icmp && e->in_round)
		icmp_start(p, ei, now);
	return true;
}

/* Start what is due; cache when the next start is due. */
static void start_due(probe_t *p, uint64_t now)
{
	uint64_t now_ms = now / 1000u, next = UINT64_MAX;
	bool full = false;

	if (now_ms < p->next_pass_ms)
		return;
	for (size_t i = 0; i < p->n; i++) {
		entry_t *e = &p->e[i];
		unsigned need = e->t.nports + (p->c.icmp ? 1u : 0u);

		if (!e->owned || need == 0)
			continue;
		if (e->due_ms <= now_ms && !e->in_round && !full) {
			if (!round_start(p, (uint32_t)i, now)) {
				full = true;
				STAT_ADD(p, saturated, 1);
			} else {
				e->due_ms += p->c.interval_ms;
				if (e->due_ms <= now_ms) /* far behind (a stop): keep the phase */
					e->due_ms = now_ms + p->c.interval_ms -
						    (now_ms - e->due_ms) % p->c.interval_ms;
			}
		}
		if (e->due_ms < next)
			next = e->due_ms;
	}
	/* Out of slots: look again soon; finished attempts free some. */
	p->next_pass_ms = full ? now_ms + 1 : next;
}

static void expire(probe_t *p, uint64_t now)
{
	uint64_t to = (uint64_t)p->c.timeout_ms * 1000u;

	while (p->head >= 0 && p->slots[p->head].start_us + to <= now)
		attempt_done(p, p->head, RES_TIMEOUT, now);
}

/* ---- events ---- */

static void tcp_event(probe_t *p, uint64_t data, uint64_t now)
{
	int32_t si = (int32_t)(uint32_t)data;
	slot_t *s;
	int err = 0;
	socklen_t el = sizeof(err);

	if ((size_t)si >= p->c.max_checks)
		return;
	s = &p->slots[si];
	if (s->kind != KIND_TCP || s->gen != (uint32_t)(data >> 32))
		return; /* finished (timed out) in this batch already */
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		err = errno;
	attempt_done(p, si, err == 0 ? RES_OK : err == ECONNREFUSED ? RES_REFUSED : RES_ERROR, now);
}

static void icmp_reply(probe_t *p, const uint8_t *b, size_t n, const uint8_t *from, size_t flen,
		       uint64_t now)
{
	uint8_t want = flen == 4 ? 0 : 129; /* echo reply */
	int32_t si;
	slot_t *s;

	if (n < 8 + ICMP_PAYLOAD || b[0] != want)
		return;
	if (p->icmp_raw && wire_read_u16(b + 4) != p->icmp_id)
		return; /* a raw socket sees every echo reply of the host */
	si = (int32_t)wire_read_u16(b + 6);
	if ((size_t)si >= p->c.max_checks)
		return;
	s = &p->slots[si];
	if (s->kind != KIND_ICMP || wire_read_u32(b + 8) != s->gen ||
	    wire_read_u32(b + 12) != ~s->gen)
		return;
	if (p->e[s->entry].t.alen != flen || memcmp(p->e[s->entry].t.addr, from, flen) != 0)
		return;
	attempt_done(p, si, RES_OK, now);
}

static void icmp_event(probe_t *p, int fd, bool v6, uint64_t now)
{
	uint8_t buf[1500];

	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);
		const uint8_t *b = buf;
		size_t len;

		if (n < 0)
			return; /* EAGAIN, or an error we cannot act on */
		len = (size_t)n;
		/* A raw IPv4 socket hands us the IP header too; IPv6 never does. */
		if (!v6 && p->icmp_raw) {
			size_t ihl = len ? (size_t)(buf[0] & 0x0f) * 4 : 0;
			if (ihl < 20 || ihl > len)
				continue;
			b += ihl;
			len -= ihl;
		}
		if (v6 && ss.ss_family == AF_INET6)
			icmp_reply(p, b, len, ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr, 16,
				   now);
		else if (!v6 && ss.ss_family == AF_INET)
			icmp_reply(p, b, len,
				   (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr, 4, now);
	}
}

int probe_run(probe_t *p, int max_wait_ms)
{
	struct epoll_event evs[EVENTS_MAX];
	uint64_t now = now_us();
	int64_t wait = max_wait_ms;
	int n;

	expire(p, now);
	start_due(p, now);
	if (p->next_pass_ms != UINT64_MAX) {
		int64_t d = (int64_t)p->next_pass_ms - (int64_t)(now / 1000u);
		wait = d < wait ? d : wait;
	}
	if (p->head >= 0) {
		int64_t d = ((int64_t)p->slots[p->head].start_us + (int64_t)p->c.timeout_ms * 1000 -
			     (int64_t)now + 999) /
			    1000;
		wait = d < wait ? d : wait;
	}
	n = epoll_wait(p->ep, evs, EVENTS_MAX, wait < 0 ? 0 : (int)wait);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	now = now_us();
	for (int i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;
		if (d == EV_ICMP4)
			icmp_event(p, p->icmp4, false, now);
		else if (d == EV_ICMP6)
			icmp_event(p, p->icmp6, true, now);
		else
			tcp_event(p, d, now);
	}
	expire(p, now);
	return 0;
}

/* ---- the table ---- */

static int target_cmp(const void *a, const void *b)
{
	const probe_target_t *x = a, *y = b;

	if (x->alen != y->alen)
		return x->alen < y->alen ? -1 : 1;
	return memcmp(x->addr, y->addr, x->alen);
}

static entry_t *find(const probe_t *p, const uint8_t *addr, size_t alen)
{
	probe_target_t key = {.alen = (uint8_t)alen};

	if ((alen != 4 && alen != 16) || p->n == 0)
		return NULL;
	memcpy(key.addr, addr, alen);
	/* entry_t starts with its target: the comparison sees only that. */
	return bsearch(&key, p->e, p->n, sizeof(entry_t), target_cmp);
}

static void merge_ports(probe_target_t *into, const probe_target_t *from)
{
	for (unsigned k = 0; k < from->nports; k++) {
		bool have = false;
		for (unsigned j = 0; j < into->nports; j++)
			have = have || into->ports[j] == from->ports[k];
		if (!have && into->nports < PROBE_PORTS_MAX)
			into->ports[into->nports++] = from->ports[k];
	}
}

/* A stable spread of first checks over one interval, so 5,000 new addresses do
 * not all connect in the same millisecond. */
static uint64_t first_due(const probe_t *p, const probe_target_t *t, uint64_t now_ms)
{
	uint32_t h = 2166136261u;

	for (unsigned i = 0; i < t->alen; i++)
		h = (h ^ t->addr[i]) * 16777619u;
	return now_ms + h % p->c.interval_ms;
}

static void owned_update(probe_t *p, entry_t *e)
{
	bool mine = !p->owner || p->owner(p->owner_ctx, e->t.addr, e->t.alen);

	if (mine && !e->owned) {
		/* Taken over (or new): resume what was stated last, else presume UP. */
		e->okrun = e->failrun = 0;
		e->known = e->stored == PROBE_STORED_UP || e->stored == PROBE_STORED_DOWN;
		e->state = e->stored == PROBE_STORED_DOWN ? STORE_HEALTH_DOWN : STORE_HEALTH_UP;
	}
	e->owned = mine;
}

static void count_owned(probe_t *p)
{
	uint64_t owned = 0, down = 0, manual = 0;

	for (size_t i = 0; i < p->n; i++) {
		owned += p->e[i].owned;
		down += p->e[i].owned && p->e[i].state == STORE_HEALTH_DOWN;
		manual += p->e[i].owned && p->e[i].stored == PROBE_STORED_MANUAL;
	}
	STAT_SET(p, manual, manual);
	STAT_SET(p, targets, p->n);
	STAT_SET(p, owned, owned);
	STAT_SET(p, down, down);
}

int probe_set_targets(probe_t *p, const probe_target_t *t, size_t n)
{
	probe_target_t *sorted = malloc((n ? n : 1) * sizeof(*sorted));
	entry_t *ne = calloc(n ? n : 1, sizeof(*ne));
	uint64_t now_ms = now_us() / 1000u;
	size_t m = 0;

	if (!sorted || !ne) {
		free(sorted);
		free(ne);
		return -ENOMEM;
	}
	if (n) {
		memcpy(sorted, t, n * sizeof(*t));
		qsort(sorted, n, sizeof(*sorted), target_cmp);
	}
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && target_cmp(&ne[m - 1].t, &sorted[i]) == 0) {
			merge_ports(&ne[m - 1].t, &sorted[i]);
			continue;
		}
		entry_t *old = find(p, sorted[i].addr, sorted[i].alen);
		if (old) {
			ne[m] = *old;
			ne[m].t = sorted[i];
		} else {
			ne[m] = (entry_t){.t = sorted[i], .state = STORE_HEALTH_UP};
			ne[m].due_ms = first_due(p, &sorted[i], now_ms);
		}
		m++;
	}
	/* Attempts in flight follow their address to its new index, or end unseen. */
	for (int32_t si = p->head, nx; si >= 0; si = nx) {
		slot_t *s = &p->slots[si];
		entry_t *old = &p->e[s->entry];
		probe_target_t key = old->t;
		entry_t *now_at = m ? bsearch(&key, ne, m, sizeof(entry_t), target_cmp) : NULL;

		nx = s->next;
		if (now_at)
			s->entry = (uint32_t)(now_at - ne);
		else
			slot_release(p, si);
	}
	free(sorted);
	free(p->e);
	p->e = ne;
	p->n = m;
	for (size_t i = 0; i < m; i++)
		owned_update(p, &p->e[i]);
	count_owned(p);
	p->next_pass_ms = 0;
	return 0;
}

size_t probe_count(const probe_t *p)
{
	return p->n;
}

void probe_set_owner(probe_t *p, probe_owner_fn fn, void *ctx)
{
	p->owner = fn;
	p->owner_ctx = ctx;
	for (size_t i = 0; i < p->n; i++)
		owned_update(p, &p->e[i]);
	count_owned(p);
	p->next_pass_ms = 0;
}

void probe_stored_reset(probe_t *p)
{
	for (size_t i = 0; i < p->n; i++)
		p->e[i].stored = PROBE_STORED_NONE;
}

bool probe_stored_set(probe_t *p, const uint8_t *addr, size_t alen, int stored)
{
	entry_t *e = find(p, addr, alen);

	if (!e)
		return false;
	e->stored = (uint8_t)stored;
	if (!e->known && (stored == PROBE_STORED_UP || stored == PROBE_STORED_DOWN)) {
		e->known = true;
		e->state = stored == PROBE_STORED_DOWN ? STORE_HEALTH_DOWN : STORE_HEALTH_UP;
	}
	return true;
}

int probe_changes(probe_t *p, probe_change_fn fn, void *ctx)
{
	int written = 0, ret;

	for (size_t i = 0; i < p->n; i++) {
		entry_t *e = &p->e[i];

		if (!e->owned || !e->known || e->stored == PROBE_STORED_MANUAL ||
		    e->stored == e->state)
			continue;
		if ((ret = fn(ctx, e->t.addr, e->t.alen, e->state)) < 0)
			return ret;
		if (ret == 1) {
			e->stored = e->state;
			written++;
		}
	}
	count_owned(p);
	return written;
}

int probe_state(const probe_t *p, const uint8_t *addr, size_t alen)
{
	entry_t *e = find(p, addr, alen);

	return e ? e->state : 0;
}
