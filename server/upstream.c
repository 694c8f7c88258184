#include "server/upstream.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "server/dot.h"
#include "server/worker.h"

#define UPSTREAM_BGID 2
#define TCP_RBUF_BYTES (2 + UPSTREAM_TCP_MSG)
#define TCP_MIN_BUDGET_MS 1000

enum { UPT_CONNECT, UPT_SEND, UPT_RECV };

_Static_assert(FORWARD_MAX_INFLIGHT <= 0x10000, "UDP slot index must fit user_data's low 16 bits");

/* user_data index of a TCP slot's op: slot in the low 16 bits, its use count above. */
static uint32_t tcp_ud_idx(const upstream_tcp_t *c, uint32_t idx)
{
	return ((uint32_t)c->gen << 16) | idx;
}

/* The same for a UDP slot: its socket's generation above the slot. */
static uint32_t udp_ud_idx(const upstream_udp_t *c, uint32_t slot)
{
	return ((uint32_t)c->gen << 16) | slot;
}

/* Offered on reload to mean "forwarding off" (NULL in `next` means "nothing offered"). */
static char upstream_off_mark;
#define UPSTREAM_OFF ((forward_t *)(void *)&upstream_off_mark)

int upstream_init(upstream_t *u, forward_t *fwd)
{
	size_t mem = (size_t)TCP_RBUF_BYTES * UPSTREAM_TCP;

	memset(u, 0, sizeof(*u));
	u->fwd = fwd;
	u->pub_stale = true;
	atomic_init(&u->next, NULL);
	/* Even with forwarding off: a reload may turn it on, and untouched pages cost nothing. */
	u->udp = calloc(FORWARD_MAX_INFLIGHT, sizeof(*u->udp));
	u->tcp = calloc(UPSTREAM_TCP, sizeof(*u->tcp));
	u->tcp_free = calloc(UPSTREAM_TCP, sizeof(*u->tcp_free));
	u->reply = malloc(UPSTREAM_TCP_MSG);
	u->pub = calloc(UPSTREAM_PUB_MAX, sizeof(*u->pub));
	/* Reserved, not touched: a TCP slot's pages become resident only when a retry uses it. */
	u->tcp_mem = mmap(NULL, mem, PROT_READ | PROT_WRITE,
			  MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
	if (u->tcp_mem == MAP_FAILED)
		u->tcp_mem = NULL;
	if (!u->udp || !u->tcp || !u->tcp_free || !u->reply || !u->tcp_mem || !u->pub)
		return -ENOMEM;
	for (unsigned i = 0; i < FORWARD_MAX_INFLIGHT; i++)
		u->udp[i].fd = -1;
	for (unsigned i = 0; i < UPSTREAM_TCP; i++) {
		u->tcp[i].fd = -1;
		u->tcp[i].rbuf = u->tcp_mem + (size_t)TCP_RBUF_BYTES * i;
		u->tcp_free[i] = UPSTREAM_TCP - 1 - i;
	}
	u->ntcp_free = UPSTREAM_TCP;
	return 0;
}

void upstream_deinit(upstream_t *u)
{
	forward_t *next = atomic_exchange(&u->next, NULL);

	if (next != UPSTREAM_OFF)
		forward_free(next);
	forward_free(u->fwd);
	dot_free(u->dot);
	for (unsigned i = 0; u->udp && i < FORWARD_MAX_INFLIGHT; i++)
		if (u->udp[i].fd >= 0)
			close(u->udp[i].fd);
	for (unsigned i = 0; u->tcp && i < UPSTREAM_TCP; i++)
		if (u->tcp[i].fd >= 0)
			close(u->tcp[i].fd);
	if (u->tcp_mem)
		munmap(u->tcp_mem, (size_t)TCP_RBUF_BYTES * UPSTREAM_TCP);
	free(u->udp);
	free(u->tcp);
	free(u->tcp_free);
	free(u->reply);
	free(u->pub);
	memset(u, 0, sizeof(*u));
}

/* An SQE, or NULL (SQ full, counted): every caller drops or defers its operation. */
static struct io_uring_sqe *up_sqe(worker_t *w)
{
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	if (!sqe)
		stats_inc(&w->qctx.stats, STATS_RING_FULL);
	return sqe;
}

/* ---- UDP: a connected socket per try ------------------------------------ */

/* @return false when the SQ is full: nothing listens, the try times out. */
static bool arm_recv(worker_t *w, uint32_t slot)
{
	upstream_udp_t *c = &w->up.udp[slot];
	struct io_uring_sqe *sqe = up_sqe(w);

	if (!sqe)
		return false;
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = UPSTREAM_BGID;
	io_uring_sqe_set_data64(sqe, uring_ud(UD_UPSTREAM, udp_ud_idx(c, slot)));
	c->armed = true;
	return true;
}

/*
 * Cancel the receive and close through the ring: ops already queued for this
 * fd are issued before the close, so its number cannot be reused under them.
 * With the SQ full, the same synchronously: shutdown wakes and ends the
 * pending receive (which holds the socket past close).
 */
static void udp_close(worker_t *w, uint32_t slot)
{
	upstream_udp_t *c = &w->up.udp[slot];
	struct io_uring_sqe *sqe;

	if (c->fd < 0)
		return;
	if (c->armed) {
		sqe = up_sqe(w);
		if (sqe) {
			io_uring_prep_cancel64(sqe, uring_ud(UD_UPSTREAM, udp_ud_idx(c, slot)), 0);
			io_uring_sqe_set_data64(sqe, uring_ud(UD_CANCEL, 0));
		} else {
			(void)shutdown(c->fd, SHUT_RDWR);
		}
	}
	sqe = up_sqe(w);
	if (sqe) {
		io_uring_prep_close(sqe, c->fd);
		io_uring_sqe_set_data64(sqe, uring_ud(UD_CANCEL, 0));
	} else {
		close(c->fd);
	}
	c->fd = -1;
	c->armed = false;
	c->gen++;
}

static void close_all_udp(worker_t *w)
{
	for (uint32_t i = 0; w->up.udp && i < FORWARD_MAX_INFLIGHT; i++)
		udp_close(w, i);
}

/* A socket connected to `to`: the kernel picks a random ephemeral port at connect. */
static int udp_open(const conf_addr_t *to)
{
	int rcvbuf = 1 << 20, fd, ret;

	fd = socket(to->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A flood of junk ahead of the answer must not overflow the default
	 * ~200 KiB buffer before the ring drains it. Best effort (rmem_max caps it). */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(fd, (const struct sockaddr *)&to->sa, to->len) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static void udp_error(worker_t *w, uint32_t slot, int err)
{
	if (!w->up.fwd)
		return;
	if ((err == -EMFILE || err == -ENFILE) && !w->up.emfile_logged) {
		log_warn("server: worker %u: upstream socket: %s; raise RLIMIT_NOFILE "
			 "(%u UDP + %u TCP upstream sockets per worker)",
			 w->idx, err_str(err), FORWARD_MAX_INFLIGHT, UPSTREAM_TCP);
		w->up.emfile_logged = true;
	}
	/* The server refused (ICMP port unreachable): next one now. Local trouble: time out. */
	forward_on_error(w->up.fwd, slot, err == -ECONNREFUSED, w->now_ms);
}

static void udp_send(worker_t *w, const forward_send_t *s)
{
	upstream_udp_t *c;
	struct io_uring_sqe *sqe;
	int fd;

	if (s->slot >= FORWARD_MAX_INFLIGHT || s->to->len > sizeof(c->to.sa))
		return;
	c = &w->up.udp[s->slot];
	if (c->fd >= 0 || c->send_busy) { /* not released yet, or its last send pending */
		udp_error(w, s->slot, -EBUSY);
		return;
	}
	fd = udp_open(s->to);
	if (fd < 0) {
		udp_error(w, s->slot, fd);
		return;
	}
	c->fd = fd;
	c->to = *s->to;
	memcpy(c->pkt, s->pkt, s->len);
	/* SQ full: the socket stays until the release (the try times out). */
	sqe = arm_recv(w, s->slot) ? up_sqe(w) : NULL;
	if (!sqe) {
		udp_error(w, s->slot, -EAGAIN);
		return;
	}
	io_uring_prep_send(sqe, fd, c->pkt, s->len, 0);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_UP_SEND, udp_ud_idx(c, s->slot)));
	c->send_busy = true;
}

/* Whether a CQE is about the slot's open socket (not an earlier one). */
static upstream_udp_t *udp_current(upstream_t *u, uint32_t ud)
{
	uint32_t slot = ud & 0xFFFF;

	if (!u->udp || slot >= FORWARD_MAX_INFLIGHT || u->udp[slot].fd < 0 ||
	    udp_ud_idx(&u->udp[slot], slot) != ud)
		return NULL;
	return &u->udp[slot];
}

static void on_recv(worker_t *w, const struct io_uring_cqe *cqe)
{
	upstream_t *u = &w->up;
	uint32_t ud = uring_ud_idx(cqe->user_data), slot = ud & 0xFFFF;
	upstream_udp_t *c = udp_current(u, ud);
	bool buf = cqe->flags & IORING_CQE_F_BUFFER;
	unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

	if (c && !(cqe->flags & IORING_CQE_F_MORE))
		c->armed = false;
	/* A full buffer may hold a cut datagram (we ask for at most 4096 bytes): dropped. */
	if (c && u->fwd && buf && cqe->res > 0 && (unsigned)cqe->res < UPSTREAM_BUFSIZE)
		forward_on_packet(u->fwd, slot, &c->to, uring_buf(&u->bufs, bid), (size_t)cqe->res,
				  w->now_ms);
	else if (c && u->fwd && cqe->res == -ECONNREFUSED)
		udp_error(w, slot, cqe->res);
	if (buf) /* a late or stale completion still holds a buffer of ours */
		uring_buf_recycle(&u->bufs, bid);
	upstream_drain(w);
	/* Still this try's socket after the drain, and an error that passes (no buffer
	 * free, a refusal the forwarder did not act on): listen again. */
	c = udp_current(u, ud);
	if (c && !c->armed && !atomic_load(&w->stop) &&
	    (cqe->res >= 0 || cqe->res == -ENOBUFS || cqe->res == -ECONNREFUSED))
		arm_recv(w, slot);
}

static void on_send(worker_t *w, const struct io_uring_cqe *cqe)
{
	upstream_t *u = &w->up;
	uint32_t ud = uring_ud_idx(cqe->user_data), slot = ud & 0xFFFF;

	if (!u->udp || slot >= FORWARD_MAX_INFLIGHT)
		return;
	u->udp[slot].send_busy = false; /* one send per slot at a time, whatever its socket */
	if (cqe->res < 0 && u->fwd && udp_current(u, ud)) {
		udp_error(w, slot, cqe->res);
		upstream_drain(w);
	}
}

int upstream_setup(worker_t *w)
{
	upstream_t *u = &w->up;
	int ret;

	ret = uring_bufs_init(&u->bufs, &w->ring, UPSTREAM_NBUFS, UPSTREAM_BUFSIZE, UPSTREAM_BGID);
	if (ret < 0)
		return ret;
	u->bufs_ok = true;
	return 0;
}

void upstream_teardown(worker_t *w)
{
	if (w->up.bufs_ok)
		uring_bufs_deinit(&w->up.bufs, &w->ring);
	w->up.bufs_ok = false;
}

/* ---- TCP retries --------------------------------------------------------- */

static void tcp_free_slot(upstream_t *u, uint32_t idx)
{
	upstream_tcp_t *c = &u->tcp[idx];

	close(c->fd);
	c->fd = -1;
	u->tcp_free[u->ntcp_free++] = idx;
}

/* Queue the connection's next op; with the SQ full it is given up (the try times out). */
static void tcp_arm(worker_t *w, uint32_t idx)
{
	upstream_tcp_t *c = &w->up.tcp[idx];
	struct io_uring_sqe *sqe = up_sqe(w);

	if (!sqe) {
		tcp_free_slot(&w->up, idx);
		return;
	}
	if (c->state == UPT_CONNECT)
		io_uring_prep_connect(sqe, c->fd, (const struct sockaddr *)&c->to.sa, c->to.len);
	else if (c->state == UPT_SEND)
		io_uring_prep_send(sqe, c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
	else
		io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, TCP_RBUF_BYTES - c->rlen, 0);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_UP_TCP, tcp_ud_idx(c, idx)));
}

static void tcp_start(worker_t *w, const forward_send_t *s)
{
	upstream_t *u = &w->up;
	uint32_t budget = w->conf->forward_timeout_ms * 2, idx;
	upstream_tcp_t *c;
	int fd;

	if (u->ntcp_free == 0 || s->to->len > sizeof(c->to.sa))
		return;
	fd = socket(s->to->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	idx = u->tcp_free[--u->ntcp_free];
	c = &u->tcp[idx];
	c->fd = fd;
	c->to = *s->to;
	c->slot = s->slot;
	c->state = UPT_CONNECT;
	c->cancelling = false;
	c->gen++;
	wire_write_u16(c->wbuf, (uint16_t)s->len);
	memcpy(c->wbuf + 2, s->pkt, s->len);
	c->wlen = (uint32_t)s->len + 2;
	c->woff = c->rlen = 0;
	c->deadline = w->now_ms + (budget > TCP_MIN_BUDGET_MS ? budget : TCP_MIN_BUDGET_MS);
	tcp_arm(w, idx);
}

/* Read bytes arrived: a whole answer goes to the forwarder and ends the connection. */
static bool tcp_got(worker_t *w, upstream_tcp_t *c)
{
	size_t mlen;

	if (c->rlen < 2)
		return false;
	mlen = wire_read_u16(c->rbuf);
	if (c->rlen < 2 + mlen)
		return false;
	if (w->up.fwd)
		forward_on_packet(w->up.fwd, c->slot, &c->to, c->rbuf + 2, mlen, w->now_ms);
	return true;
}

static void on_tcp(worker_t *w, const struct io_uring_cqe *cqe)
{
	upstream_t *u = &w->up;
	uint32_t ud = uring_ud_idx(cqe->user_data), idx = ud & 0xFFFF;
	upstream_tcp_t *c;

	if (!u->tcp || idx >= UPSTREAM_TCP || u->tcp[idx].fd < 0 ||
	    tcp_ud_idx(&u->tcp[idx], idx) != ud)
		return;
	c = &u->tcp[idx];
	if (c->cancelling || cqe->res < 0 || (cqe->res == 0 && c->state == UPT_RECV)) {
		tcp_free_slot(u, idx);
		return;
	}
	if (c->state == UPT_CONNECT) {
		c->state = UPT_SEND;
	} else if (c->state == UPT_SEND) {
		c->woff += (uint32_t)cqe->res;
		if (c->woff >= c->wlen)
			c->state = UPT_RECV;
	} else {
		c->rlen += (uint32_t)cqe->res;
		if (tcp_got(w, c) || c->rlen >= TCP_RBUF_BYTES) {
			tcp_free_slot(u, idx);
			upstream_drain(w);
			return;
		}
	}
	tcp_arm(w, idx);
}

static void arm_tick(worker_t *w);

void upstream_sweep(worker_t *w)
{
	upstream_t *u = &w->up;

	/* A tick that could not be armed (SQ full) must not leave tries without a timeout. */
	if (u->fwd && !u->tick_armed && forward_wants_tick(u->fwd))
		arm_tick(w);
	dot_sweep(w);
	for (uint32_t i = 0; u->tcp && i < UPSTREAM_TCP; i++) {
		upstream_tcp_t *c = &u->tcp[i];
		struct io_uring_sqe *sqe;

		if (c->fd < 0 || c->cancelling || w->now_ms < c->deadline)
			continue;
		/* Its one pending op completes with -ECANCELED; the slot is freed then.
		 * SQ full: try again at the next sweep. */
		sqe = up_sqe(w);
		if (!sqe)
			continue;
		io_uring_prep_cancel64(sqe, uring_ud(UD_UP_TCP, tcp_ud_idx(c, i)), 0);
		io_uring_sqe_set_data64(sqe, uring_ud(UD_CANCEL, 0));
		c->cancelling = true;
	}
}

/* ---- the forwarder's queues ---------------------------------------------- */

static void arm_tick(worker_t *w)
{
	struct io_uring_sqe *sqe = up_sqe(w);

	if (!sqe) /* not armed: the next drain or sweep tries again */
		return;
	w->up.tick.tv_sec = 0;
	w->up.tick.tv_nsec = (long long)UPSTREAM_TICK_MS * 1000000;
	io_uring_prep_timeout(sqe, &w->up.tick, 0, 0);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_FWD_TICK, 0));
	w->up.tick_armed = true;
}

void upstream_drain(worker_t *w)
{
	upstream_t *u = &w->up;
	forward_send_t s;
	forward_reply_t r;
	uint32_t slot;

	if (!u->fwd)
		return;
	/* Releases first, every round: a failed send can end its try (fail fast). */
	for (;;) {
		while (forward_next_release(u->fwd, &slot))
			if (slot < FORWARD_MAX_INFLIGHT)
				udp_close(w, slot);
		if (!forward_next_send(u->fwd, &s))
			break;
		if (dot_send(w, &s)) /* a tls:// server: its own connection */
			continue;
		if (s.tcp)
			tcp_start(w, &s);
		else
			udp_send(w, &s);
	}
	while (forward_next_reply(u->fwd, &r, u->reply, UPSTREAM_TCP_MSG))
		worker_forward_reply(w, &r, u->reply);
	/* Workers waiting for questions we ended: one eventfd write each (a counter add,
	 * never blocks), however many of their questions ended in this call. */
	for (uint64_t m = forward_take_wakes(u->fwd); m; m &= m - 1) {
		int fd = inflight_wake_fd(forward_registry(u->fwd), (unsigned)__builtin_ctzll(m));
		if (fd >= 0)
			eventfd_write(fd, 1);
	}
	u->dirty = true;
	if (!u->tick_armed && forward_wants_tick(u->fwd))
		arm_tick(w);
}

void upstream_wake(worker_t *w)
{
	if (!w->up.fwd || !forward_registry(w->up.fwd))
		return;
	forward_on_wake(w->up.fwd, w->now_ms);
	upstream_drain(w);
}

void upstream_on_cqe(worker_t *w, const struct io_uring_cqe *cqe)
{
	upstream_t *u = &w->up;

	switch (uring_ud_type(cqe->user_data)) {
	case UD_UPSTREAM:
		on_recv(w, cqe);
		break;
	case UD_UP_SEND:
		on_send(w, cqe);
		break;
	case UD_UP_TCP:
		on_tcp(w, cqe);
		break;
	case UD_DOT:
		dot_on_cqe(w, cqe);
		break;
	case UD_FWD_TICK:
		u->tick_armed = false;
		if (u->fwd)
			forward_on_tick(u->fwd, w->now_ms);
		upstream_sweep(w);
		upstream_drain(w);
		break;
	default:
		break;
	}
}

/* ---- reload and counters ------------------------------------------------- */

static void read_counts(const forward_t *f, uint64_t *v)
{
	forward_server_stats_t s;
	forward_stats_t st;

	memset(v, 0, sizeof(uint64_t) * UPSTREAM_NSTATS);
	if (!f)
		return;
	forward_stats_read(f, &st);
	for (size_t i = 0; i < forward_server_count(f); i++) {
		if (forward_server_stats(f, i, &s) < 0)
			continue;
		v[STATS_FWD_TIMEOUTS - STATS_FWD_FORWARDED] += s.timeouts;
		v[STATS_FWD_ERRORS - STATS_FWD_FORWARDED] += s.errors;
	}
	v[STATS_FWD_FORWARDED - STATS_FWD_FORWARDED] = st.forwarded;
	v[STATS_FWD_IGNORED - STATS_FWD_FORWARDED] = st.ignored;
	v[STATS_FWD_SERVFAIL - STATS_FWD_FORWARDED] = st.servfail;
	v[STATS_FWD_DROPS - STATS_FWD_FORWARDED] = st.inflight_drops;
	v[STATS_FWD_TCP - STATS_FWD_FORWARDED] = st.tcp_retries;
	v[STATS_FWD_SHARE_DROPS - STATS_FWD_FORWARDED] = st.share_drops;
	v[STATS_FWD_SCRUBBED - STATS_FWD_FORWARDED] = st.scrubbed;
	v[STATS_FWD_JOINED_WORKERS - STATS_FWD_FORWARDED] = st.joined_workers;
	v[STATS_CACHE_HITS - STATS_FWD_FORWARDED] = st.cache.hits;
	v[STATS_CACHE_MISSES - STATS_FWD_FORWARDED] = st.cache.misses;
	v[STATS_CACHE_EVICTIONS - STATS_FWD_FORWARDED] = st.cache.evictions;
}

static void put(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Rewrite the addresses only when the list may have changed (start, reload). */
static void publish_addrs(upstream_t *u)
{
	size_t n = u->fwd ? forward_server_count(u->fwd) : 0;
	forward_server_stats_t s;
	uint64_t words[8];

	if (n > UPSTREAM_PUB_MAX)
		n = UPSTREAM_PUB_MAX;
	atomic_fetch_add(&u->pub_seq, 1);
	for (size_t i = 0; i < n; i++) {
		memset(words, 0, sizeof(words));
		if (forward_server_stats(u->fwd, i, &s) == 0)
			conf_format_addr(&s.addr, (char *)words, sizeof(words));
		for (size_t k = 0; k < 8; k++)
			put(&u->pub[i].addr[k], words[k]);
	}
	atomic_store(&u->npub, (uint32_t)n);
	atomic_fetch_add(&u->pub_seq, 1);
}

static void publish_servers(upstream_t *u)
{
	size_t n = atomic_load_explicit(&u->npub, memory_order_relaxed);
	forward_server_stats_t s;

	for (size_t i = 0; u->fwd && i < n; i++) {
		uint64_t *v = u->pub[i].v;
		if (forward_server_stats(u->fwd, i, &s) < 0)
			continue;
		put(&v[0], s.queries);
		put(&v[1], s.timeouts);
		put(&v[2], s.errors);
		put(&v[3], s.probes);
		for (size_t k = 0; k < 16; k++)
			put(&v[4 + k], s.rcode[k]);
		for (size_t k = 0; k < FORWARD_RTT_BUCKETS; k++)
			put(&v[20 + k], s.rtt[k]);
		put(&v[20 + FORWARD_RTT_BUCKETS], s.rtt_sum_ms);
		put(&v[21 + FORWARD_RTT_BUCKETS], s.srtt_ms);
		put(&v[22 + FORWARD_RTT_BUCKETS], s.healthy);
	}
}

void upstream_report(const upstream_t *u, upstream_report_t *out, size_t *n, size_t cap)
{
	upstream_pub_t *p = u->pub;
	uint32_t seq = atomic_load(&u->pub_seq), np = atomic_load(&u->npub);
	uint64_t words[8], v[UPSTREAM_PUB_NV];

	if (!p || (seq & 1))
		return;
	for (uint32_t i = 0; i < np && i < UPSTREAM_PUB_MAX; i++) {
		size_t j;
		for (size_t k = 0; k < 8; k++)
			words[k] = __atomic_load_n(&p[i].addr[k], __ATOMIC_RELAXED);
		for (size_t k = 0; k < UPSTREAM_PUB_NV; k++)
			v[k] = __atomic_load_n(&p[i].v[k], __ATOMIC_RELAXED);
		if (atomic_load(&u->pub_seq) != seq)
			return;
		((char *)words)[sizeof(words) - 1] = '\0';
		for (j = 0; j < *n && strcmp(out[j].addr, (const char *)words) != 0; j++)
			;
		if (j == *n) {
			if (*n >= cap)
				continue;
			memset(&out[j], 0, sizeof(out[j]));
			snprintf(out[j].addr, sizeof(out[j].addr), "%s", (const char *)words);
			(*n)++;
		}
		upstream_report_t *r = &out[j];
		r->queries += v[0];
		r->timeouts += v[1];
		r->errors += v[2];
		r->probes += v[3];
		for (size_t k = 0; k < 16; k++)
			r->rcode[k] += v[4 + k];
		for (size_t k = 0; k < FORWARD_RTT_BUCKETS; k++)
			r->rtt[k] += v[20 + k];
		r->rtt_sum_ms += v[20 + FORWARD_RTT_BUCKETS];
		if (v[21 + FORWARD_RTT_BUCKETS] > r->srtt_ms)
			r->srtt_ms = v[21 + FORWARD_RTT_BUCKETS];
		r->healthy += v[22 + FORWARD_RTT_BUCKETS];
		r->nworkers++;
	}
}

/* The forwarder's cache counters (its handle's: this worker's lookups); zeros without one. */
static cache_stats_t cache_counts(const forward_t *f)
{
	forward_stats_t st = {0};

	if (f)
		forward_stats_read(f, &st);
	return st.cache;
}

void upstream_publish(worker_t *w)
{
	upstream_t *u = &w->up;
	uint64_t v[UPSTREAM_NSTATS];

	read_counts(u->fwd, v);
	for (unsigned i = 0; i < UPSTREAM_NSTATS; i++)
		stats_set(&w->qctx.stats, STATS_FWD_FORWARDED + i, u->base[i] + v[i]);
	stats_set(&w->qctx.stats, STATS_CACHE_ENTRIES, u->fwd ? forward_cache_entries(u->fwd) : 0);
	cache_stats_t cs = cache_counts(u->fwd);
	stats_set(&w->qctx.stats, STATS_CACHE_STALE, u->stale_base + cs.stale);
	stats_set(&w->qctx.stats, STATS_CACHE_PREFETCH, u->prefetch_base + cs.prefetches);
	if (u->pub_stale) {
		publish_addrs(u);
		u->pub_stale = false;
	}
	publish_servers(u);
	u->dirty = false;
}

void upstream_offer(upstream_t *u, forward_t *fwd)
{
	forward_t *old = atomic_exchange(&u->next, fwd ? fwd : UPSTREAM_OFF);

	/* Not taken yet: the worker never saw it, so main may free it. */
	if (old && old != UPSTREAM_OFF)
		forward_free(old);
}

void upstream_reload(worker_t *w)
{
	upstream_t *u = &w->up;
	forward_t *next = atomic_exchange(&u->next, NULL);
	uint64_t v[UPSTREAM_NSTATS];

	if (!next)
		return;
	read_counts(u->fwd, v);
	for (unsigned i = 0; i < UPSTREAM_NSTATS; i++)
		u->base[i] += v[i];
	cache_stats_t cs = cache_counts(u->fwd);
	u->stale_base += cs.stale;
	u->prefetch_base += cs.prefetches;
	tcp_forward_abandon(w);
	/* The old forwarder's tries die with it: their slots mean nothing to the new one. */
	close_all_udp(w);
	dot_reset(w);
	forward_free(u->fwd);
	u->fwd = next == UPSTREAM_OFF ? NULL : next;
	u->dirty = true;
	u->pub_stale = true;
}
