#include "server/upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "server/worker.h"

#define UPSTREAM_BGID 2
#define TCP_RBUF_BYTES (2 + UPSTREAM_TCP_MSG)
#define TCP_MIN_BUDGET_MS 1000

enum { UPT_CONNECT, UPT_SEND, UPT_RECV };

/* user_data index of a TCP slot's op: slot in the low 16 bits, its use count above. */
static uint32_t tcp_ud_idx(const upstream_tcp_t *c, uint32_t idx)
{
	return ((uint32_t)c->gen << 16) | idx;
}

/* Offered on reload to mean "forwarding off" (NULL in `next` means "nothing offered"). */
static char upstream_off_mark;
#define UPSTREAM_OFF ((forward_t *)(void *)&upstream_off_mark)

int upstream_init(upstream_t *u, forward_t *fwd)
{
	size_t mem = (size_t)TCP_RBUF_BYTES * UPSTREAM_TCP;

	memset(u, 0, sizeof(*u));
	u->fwd = fwd;
	atomic_init(&u->next, NULL);
	/* Even with forwarding off: a reload may turn it on, and untouched pages cost nothing. */
	u->sends = calloc(UPSTREAM_SENDS, sizeof(*u->sends));
	u->send_free = calloc(UPSTREAM_SENDS, sizeof(*u->send_free));
	u->tcp = calloc(UPSTREAM_TCP, sizeof(*u->tcp));
	u->tcp_free = calloc(UPSTREAM_TCP, sizeof(*u->tcp_free));
	u->reply = malloc(UPSTREAM_TCP_MSG);
	/* Reserved, not touched: a TCP slot's pages become resident only when a retry uses it. */
	u->tcp_mem = mmap(NULL, mem, PROT_READ | PROT_WRITE,
			  MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
	if (u->tcp_mem == MAP_FAILED)
		u->tcp_mem = NULL;
	if (!u->sends || !u->send_free || !u->tcp || !u->tcp_free || !u->reply || !u->tcp_mem)
		return -ENOMEM;
	for (unsigned i = 0; i < UPSTREAM_SENDS; i++)
		u->send_free[i] = UPSTREAM_SENDS - 1 - i;
	u->nsend_free = UPSTREAM_SENDS;
	for (unsigned i = 0; i < UPSTREAM_TCP; i++) {
		u->tcp[i].fd = -1;
		u->tcp[i].rbuf = u->tcp_mem + (size_t)TCP_RBUF_BYTES * i;
		u->tcp_free[i] = UPSTREAM_TCP - 1 - i;
	}
	u->ntcp_free = UPSTREAM_TCP;
	return 0;
}

static void close_sockets(upstream_t *u)
{
	for (int fam = 0; fam < 2; fam++) {
		for (int i = 0; u->fam_open[fam] && i < FORWARD_SOCKETS; i++)
			close(u->fds[fam][i]);
		u->fam_open[fam] = false;
	}
}

void upstream_deinit(upstream_t *u)
{
	forward_t *next = atomic_exchange(&u->next, NULL);

	if (next != UPSTREAM_OFF)
		forward_free(next);
	forward_free(u->fwd);
	close_sockets(u);
	for (unsigned i = 0; u->tcp && i < UPSTREAM_TCP; i++)
		if (u->tcp[i].fd >= 0)
			close(u->tcp[i].fd);
	if (u->tcp_mem)
		munmap(u->tcp_mem, (size_t)TCP_RBUF_BYTES * UPSTREAM_TCP);
	free(u->sends);
	free(u->send_free);
	free(u->tcp);
	free(u->tcp_free);
	free(u->reply);
	memset(u, 0, sizeof(*u));
}

/* ---- UDP sockets --------------------------------------------------------- */

static void arm_recv(worker_t *w, unsigned fam, unsigned i)
{
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	io_uring_prep_recvmsg_multishot(sqe, w->up.fds[fam][i], &w->recv_msg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = UPSTREAM_BGID;
	io_uring_sqe_set_data64(sqe, uring_ud(UD_UPSTREAM, fam * FORWARD_SOCKETS + i));
}

/* One unconnected socket on a kernel-chosen (random) port: a source port per socket. */
static int open_one(int family)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, rcvbuf = 1 << 20, fd, ret;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		goto fail;
	/* A burst of answers (or of spoofed junk) must not overflow the default
	 * ~200 KiB buffer before the ring drains it. FORCE passes rmem_max when
	 * we may (CAP_NET_ADMIN); otherwise the plain request is capped. Best effort. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	return fd;
fail:
	ret = -errno;
	close(fd);
	return ret;
}

static int open_family(worker_t *w, unsigned fam)
{
	upstream_t *u = &w->up;
	int family = fam ? AF_INET6 : AF_INET;

	for (unsigned i = 0; i < FORWARD_SOCKETS; i++) {
		int fd = open_one(family);
		if (fd < 0) {
			while (i-- > 0)
				close(u->fds[fam][i]);
			return fd;
		}
		u->fds[fam][i] = fd;
	}
	u->fam_open[fam] = true;
	for (unsigned i = 0; i < FORWARD_SOCKETS; i++)
		arm_recv(w, fam, i);
	return 0;
}

/* Sockets for every address family the forwarder's servers use. */
static void open_sockets(worker_t *w)
{
	upstream_t *u = &w->up;
	forward_server_stats_t s;
	int ret;

	for (size_t i = 0; u->fwd && i < forward_server_count(u->fwd); i++) {
		if (forward_server_stats(u->fwd, i, &s) < 0)
			continue;
		unsigned fam = s.addr.sa.ss_family == AF_INET6;
		if (u->fam_open[fam])
			continue;
		ret = open_family(w, fam);
		if (ret < 0)
			log_err("server: worker %u: upstream %s sockets: %s", w->idx,
				fam ? "IPv6" : "IPv4", err_str(ret));
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
	open_sockets(w);
	return 0;
}

void upstream_teardown(worker_t *w)
{
	if (w->up.bufs_ok)
		uring_bufs_deinit(&w->up.bufs, &w->ring);
	w->up.bufs_ok = false;
}

static void on_recv(worker_t *w, const struct io_uring_cqe *cqe)
{
	upstream_t *u = &w->up;
	uint32_t idx = uring_ud_idx(cqe->user_data);
	unsigned fam = idx / FORWARD_SOCKETS, bid;
	struct io_uring_recvmsg_out *out;
	conf_addr_t from;
	uint8_t *buf;

	if (fam > 1 || !u->fam_open[fam])
		return;
	if (!(cqe->flags & IORING_CQE_F_MORE) && !atomic_load(&w->stop))
		arm_recv(w, fam, idx % FORWARD_SOCKETS); /* -ENOBUFS included: not fatal */
	if (cqe->res < 0 || !(cqe->flags & IORING_CQE_F_BUFFER))
		return;
	bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	buf = uring_buf(&u->bufs, bid);
	out = io_uring_recvmsg_validate(buf, cqe->res, &w->recv_msg);
	if (u->fwd && out && !(out->flags & MSG_TRUNC) && out->namelen <= sizeof(from.sa) &&
	    out->namelen <= w->recv_msg.msg_namelen) {
		memset(&from, 0, sizeof(from));
		memcpy(&from.sa, io_uring_recvmsg_name(out), out->namelen);
		from.len = out->namelen;
		forward_on_packet(u->fwd, &from, io_uring_recvmsg_payload(out, &w->recv_msg),
				  io_uring_recvmsg_payload_length(out, cqe->res, &w->recv_msg),
				  w->now_ms);
	}
	uring_buf_recycle(&u->bufs, bid);
	upstream_drain(w);
}

static void udp_send(worker_t *w, const forward_send_t *s)
{
	upstream_t *u = &w->up;
	unsigned fam = s->to->sa.ss_family == AF_INET6;
	struct io_uring_sqe *sqe;
	upstream_send_t *m;
	uint32_t idx;

	/* No socket or no slot: the try times out and the forwarder moves on. */
	if (!u->fam_open[fam] || u->nsend_free == 0 || s->sock < 0 || s->sock >= FORWARD_SOCKETS ||
	    s->to->len > sizeof(m->addr))
		return;
	idx = u->send_free[--u->nsend_free];
	m = &u->sends[idx];
	memcpy(&m->addr, &s->to->sa, s->to->len);
	memcpy(m->pkt, s->pkt, s->len);
	m->iov.iov_base = m->pkt;
	m->iov.iov_len = s->len;
	memset(&m->msg, 0, sizeof(m->msg));
	m->msg.msg_name = &m->addr;
	m->msg.msg_namelen = s->to->len;
	m->msg.msg_iov = &m->iov;
	m->msg.msg_iovlen = 1;
	sqe = uring_sqe(&w->ring);
	io_uring_prep_sendmsg(sqe, u->fds[fam][s->sock], &m->msg, 0);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_UP_SEND, idx));
}

/* ---- TCP retries --------------------------------------------------------- */

static void tcp_free_slot(upstream_t *u, uint32_t idx)
{
	upstream_tcp_t *c = &u->tcp[idx];

	close(c->fd);
	c->fd = -1;
	u->tcp_free[u->ntcp_free++] = idx;
}

static void tcp_arm(worker_t *w, uint32_t idx)
{
	upstream_tcp_t *c = &w->up.tcp[idx];
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

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
		forward_on_packet(w->up.fwd, &c->to, c->rbuf + 2, mlen, w->now_ms);
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

void upstream_sweep(worker_t *w)
{
	upstream_t *u = &w->up;

	for (uint32_t i = 0; u->tcp && i < UPSTREAM_TCP; i++) {
		upstream_tcp_t *c = &u->tcp[i];
		struct io_uring_sqe *sqe;

		if (c->fd < 0 || c->cancelling || w->now_ms < c->deadline)
			continue;
		/* Its one pending op completes with -ECANCELED; the slot is freed then. */
		sqe = uring_sqe(&w->ring);
		io_uring_prep_cancel64(sqe, uring_ud(UD_UP_TCP, tcp_ud_idx(c, i)), 0);
		io_uring_sqe_set_data64(sqe, uring_ud(UD_CANCEL, 0));
		c->cancelling = true;
	}
}

/* ---- the forwarder's queues ---------------------------------------------- */

static void arm_tick(worker_t *w)
{
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

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

	if (!u->fwd)
		return;
	while (forward_next_send(u->fwd, &s)) {
		if (s.sock == FORWARD_SOCK_TCP)
			tcp_start(w, &s);
		else
			udp_send(w, &s);
	}
	while (forward_next_reply(u->fwd, &r, u->reply, UPSTREAM_TCP_MSG))
		worker_forward_reply(w, &r, u->reply);
	u->dirty = true;
	if (!u->tick_armed && forward_inflight(u->fwd) > 0)
		arm_tick(w);
}

void upstream_on_cqe(worker_t *w, const struct io_uring_cqe *cqe)
{
	upstream_t *u = &w->up;
	uint32_t idx = uring_ud_idx(cqe->user_data);

	switch (uring_ud_type(cqe->user_data)) {
	case UD_UPSTREAM:
		on_recv(w, cqe);
		break;
	case UD_UP_SEND:
		if (u->sends && idx < UPSTREAM_SENDS)
			u->send_free[u->nsend_free++] = idx;
		break;
	case UD_UP_TCP:
		on_tcp(w, cqe);
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
	v[STATS_CACHE_HITS - STATS_FWD_FORWARDED] = st.cache.hits;
	v[STATS_CACHE_MISSES - STATS_FWD_FORWARDED] = st.cache.misses;
	v[STATS_CACHE_EVICTIONS - STATS_FWD_FORWARDED] = st.cache.evictions;
}

void upstream_publish(worker_t *w)
{
	upstream_t *u = &w->up;
	uint64_t v[UPSTREAM_NSTATS];

	read_counts(u->fwd, v);
	for (unsigned i = 0; i < UPSTREAM_NSTATS; i++)
		stats_set(&w->qctx.stats, STATS_FWD_FORWARDED + i, u->base[i] + v[i]);
	stats_set(&w->qctx.stats, STATS_CACHE_ENTRIES, u->fwd ? forward_cache_entries(u->fwd) : 0);
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
	tcp_forward_abandon(w);
	forward_free(u->fwd);
	u->fwd = next == UPSTREAM_OFF ? NULL : next;
	u->dirty = true;
	if (u->bufs_ok)
		open_sockets(w);
}
