#include "server/tcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "engine/edns.h"
#include "server/querylog.h"
#include "server/worker.h"

int tcp_pool_init(tcp_pool_t *p, unsigned n)
{
	size_t per = (size_t)TCP_RBUF + TCP_WBUF;

	memset(p, 0, sizeof(*p));
	if (n == 0)
		return 0;
	p->conns = calloc(n, sizeof(*p->conns));
	p->free = calloc(n, sizeof(*p->free));
	p->membytes = per * n;
	/* Reserved, not touched: a connection's pages become resident only when it is used. */
	p->mem = mmap(NULL, p->membytes, PROT_READ | PROT_WRITE,
		      MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
	if (!p->conns || !p->free || p->mem == MAP_FAILED) {
		if (p->mem == MAP_FAILED)
			p->mem = NULL;
		tcp_pool_deinit(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		p->conns[i].fd = -1;
		p->conns[i].xfr = -1;
		p->conns[i].rbuf = p->mem + per * i;
		p->conns[i].wbuf = p->conns[i].rbuf + TCP_RBUF;
		p->free[i] = n - 1 - i;
	}
	p->n = n;
	p->nfree = n;
	return 0;
}

void tcp_pool_deinit(tcp_pool_t *p)
{
	for (unsigned i = 0; p->conns && i < p->n; i++)
		if (p->conns[i].fd >= 0)
			close(p->conns[i].fd);
	for (unsigned i = 0; i < p->nwait; i++)
		close(p->wait_fd[i]);
	free(p->conns);
	free(p->free);
	if (p->mem)
		munmap(p->mem, p->membytes);
	memset(p, 0, sizeof(*p));
}

void tcp_arm_accept(struct worker *w)
{
	struct io_uring_sqe *sqe;

	if (w->released)
		return; /* takeover: the new process accepts from this listener now */
	sqe = uring_sqe(&w->ring);
	if (!sqe) {
		/* Queued connections wait in the backlog: the next timer tick re-arms. */
		stats_inc(&w->qctx.stats, STATS_RING_FULL);
		w->tcp.accept_paused = true;
		return;
	}
	io_uring_prep_multishot_accept(sqe, w->tcp_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_TCP_ACCEPT, 0));
}

/* The slot goes back to the pool only when the kernel holds no SQE of it. */
static void conn_maybe_free(struct worker *w, uint32_t idx)
{
	tcp_conn_t *c = &w->tcp.conns[idx];

	if (c->in_use && c->fd < 0 && !c->recv_pending && !c->send_pending) {
		c->in_use = false;
		w->tcp.free[w->tcp.nfree++] = idx;
	}
}

static void conn_close(struct worker *w, uint32_t idx)
{
	tcp_conn_t *c = &w->tcp.conns[idx];

	if (c->xfr >= 0) {
		w->tcp.xfr[c->xfr].active = false;
		c->xfr = -1;
	}

	if (c->fd >= 0) {
		/* shutdown first: it completes our pending recv/send SQEs, which close alone would
		 * not. */
		shutdown(c->fd, SHUT_RDWR);
		close(c->fd);
		c->fd = -1;
	}
	conn_maybe_free(w, idx);
}

static void conn_arm_recv(struct worker *w, uint32_t idx)
{
	tcp_conn_t *c = &w->tcp.conns[idx];
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	if (!sqe) {
		/* Nothing of it is in flight: closing frees the slot; the client retries. */
		stats_inc(&w->qctx.stats, STATS_RING_FULL);
		conn_close(w, idx);
		return;
	}
	io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, TCP_RBUF - c->rlen, 0);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_TCP_RECV, idx));
	c->recv_pending = true;
}

static void conn_arm_send(struct worker *w, uint32_t idx)
{
	tcp_conn_t *c = &w->tcp.conns[idx];
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	if (!sqe) {
		stats_inc(&w->qctx.stats, STATS_RING_FULL);
		conn_close(w, idx);
		return;
	}
	io_uring_prep_send(sqe, c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_TCP_SEND, idx));
	c->send_pending = true;
}

static void conn_pump(struct worker *w, uint32_t idx);

uint8_t *tcp_reply_buf(struct worker *w, uint32_t idx, size_t *cap)
{
	tcp_conn_t *c = &w->tcp.conns[idx];

	/* conn_pump starts a query only with a whole TCP_MSG_ROOM free. */
	*cap =
	    TCP_WBUF - c->wlen - 2 < TCP_MSG_ROOM - 2 ? TCP_WBUF - c->wlen - 2 : TCP_MSG_ROOM - 2;
	return c->wbuf + c->wlen + 2;
}

void tcp_reply(struct worker *w, uint32_t idx, size_t len)
{
	tcp_conn_t *c = &w->tcp.conns[idx];

	if (len == 0 || len > TCP_MSG_ROOM - 2 || c->wlen + 2 + len > TCP_WBUF || c->fd < 0) {
		conn_close(w, idx);
		return;
	}
	if (w->qlog)
		querylog_note(w->qlog, c->cl.addr, c->cl.addrlen, true, c->wbuf + c->wlen + 2, len);
	wire_write_u16(c->wbuf + c->wlen, (uint16_t)len);
	c->wlen += (uint32_t)len + 2;
	/* Inside a run the reply leaves with the others at its end; a forwarded one now. */
	if (!c->in_run)
		conn_pump(w, idx);
}

/*
 * Start or stop the message clock after rbuf changed: it runs while the head of rbuf is an
 * incomplete message. `restart`: our reply just went out, so the client has had no chance
 * to send the rest while we were not reading.
 */
static void conn_mark(tcp_conn_t *c, uint64_t now, bool restart)
{
	if (c->rlen == 0 || (c->rlen >= 2 && c->rlen >= 2 + (uint32_t)wire_read_u16(c->rbuf))) {
		c->msg_ms = 0;
		return;
	}
	if (c->msg_ms == 0 || restart)
		c->msg_ms = now;
}

/*
 * The next message of the connection's zone transfer, or its end: then the connection reads
 * queries again. Called when everything before it was sent, so each message is built from
 * the worker's current snapshot and no read txn is held across messages. A transfer that
 * cannot go on (the zone changed, a store error) closes the connection, which tells the
 * secondary that it failed (RFC 5936 §2.2).
 */
static void conn_xfr_next(struct worker *w, uint32_t idx)
{
	tcp_conn_t *c = &w->tcp.conns[idx];
	xfr_t *x = &w->tcp.xfr[c->xfr];
	size_t cap;
	uint8_t *out;

	if (x->done) {
		x->active = false;
		c->xfr = -1;
		conn_pump(w, idx);
		return;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	worker_txn(w);
	out = tcp_reply_buf(w, idx, &cap);
	tcp_reply(w, idx, xfr_next(x, &w->qctx, out, cap)); /* 0 closes */
}

/* Start a transfer the query allowed (QUERY_XFR); REFUSED when every slot is busy. While
 * it runs, conn_pump answers no further query of the connection (replies stay in order). */
static void conn_xfr_start(struct worker *w, uint32_t idx, const query_t *q)
{
	tcp_conn_t *c = &w->tcp.conns[idx];
	uint8_t lower[WIRE_NAME_MAX];
	size_t cap;
	uint8_t *out = tcp_reply_buf(w, idx, &cap);
	int slot = -1;

	for (int i = 0; i < TCP_XFR_MAX && slot < 0; i++)
		if (!w->tcp.xfr[i].active)
			slot = i;
	memcpy(lower, q->qname, q->qnamelen);
	wire_name_lower(lower, q->qnamelen);
	if (slot < 0 || xfr_begin(&w->tcp.xfr[slot], &w->qctx, q,
				  conf_domain_of(w->qctx.conf, lower, q->qnamelen)) < 0) {
		tcp_reply(w, idx,
			  query_reply_rcode(q, WIRE_RCODE_REFUSED, EDNS_EDE_OTHER, out, cap));
		return;
	}
	c->xfr = slot;
	tcp_reply(w, idx, xfr_next(&w->tcp.xfr[slot], &w->qctx, out, cap));
}

/* Answer one framed query of mlen bytes at rbuf + 2 into wbuf, then drop it from rbuf. */
static void conn_query(struct worker *w, uint32_t idx, size_t mlen)
{
	tcp_conn_t *c = &w->tcp.conns[idx];
	worker_reply_to_t to = {.tcp = true, .idx = idx};
	size_t len = 0, cap, used = 2 + mlen;
	uint64_t start = worker_clock_ns();
	uint8_t *out = tcp_reply_buf(w, idx, &cap);
	query_t q;
	int ret;

	worker_txn(w);
	ret = query_process(&w->qctx, c->rbuf + 2, mlen, &c->cl, out, cap, &len, &q);
	memmove(c->rbuf, c->rbuf + used, c->rlen - used);
	c->rlen -= (uint32_t)used;
	conn_mark(c, w->now_ms, false);
	if (ret == QUERY_REPLY) {
		tcp_reply(w, idx, len);
		stats_observe(&w->qctx.stats, worker_clock_ns() - start, 1);
	} else if (ret == QUERY_FORWARD)
		worker_forward(w, &q, to); /* replies now, or sets fwd_wait */
	else if (ret == QUERY_XFR)
		conn_xfr_start(w, idx, &q);
	else
		tcp_reply(w, idx, 0);
}

/*
 * Next step of a connection: answer the whole queries buffered (a run), send what
 * was answered, or read more. Nothing is answered while a send is in flight or a
 * forwarded answer is owed (replies stay in order, wbuf is not touched under a send).
 */
static void conn_pump(struct worker *w, uint32_t idx)
{
	tcp_conn_t *c = &w->tcp.conns[idx];
	size_t mlen;

	if (c->fd < 0 || c->send_pending)
		return;
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0; /* all sent: the next run starts at the front */
	c->in_run = true;
	while (!c->fwd_wait && c->xfr < 0 && c->rlen >= 2 && c->wlen + TCP_MSG_ROOM <= TCP_WBUF) {
		mlen = wire_read_u16(c->rbuf);
		if (mlen < WIRE_HDR_LEN || mlen > TCP_RBUF - 2) {
			c->in_run = false;
			conn_close(w, idx);
			return;
		}
		if (c->rlen < 2 + mlen)
			break;
		conn_query(w, idx, mlen);
		if (c->fd < 0) {
			c->in_run = false;
			return;
		}
	}
	c->in_run = false;
	if (c->woff < c->wlen)
		conn_arm_send(w, idx);
	else if (!c->fwd_wait && !c->recv_pending && c->rlen < TCP_RBUF)
		conn_arm_recv(w, idx);
}

/* The client's network as RRL counts it, /24 or /56 (IPv6 listeners are V6ONLY, so no
 * IPv4-mapped peers), with its family in net[0]. @return bytes written to net (at most 8). */
static size_t client_net(const query_client_t *cl, uint8_t net[8])
{
	net[0] = cl->addrlen;
	if (cl->addrlen == 4) {
		memcpy(net + 1, cl->addr, 3);
		return 4;
	}
	if (cl->addrlen == 16) {
		memcpy(net + 1, cl->addr, 7);
		return 8;
	}
	return 1; /* unknown peer: all such share one bucket */
}

static bool same_net(const query_client_t *a, const uint8_t *net, size_t len)
{
	uint8_t n[8];

	return client_net(a, n) == len && memcmp(n, net, len) == 0;
}

/* One /24 (/56) may hold only tcp-max-per-client of this worker's connections, waiting ones
 * included. A linear scan: accepts are rare next to queries, and the pool is small. */
static bool conn_over_client_cap(struct worker *w, const query_client_t *cl)
{
	unsigned max = w->conf->tcp_max_per_client, n = 0;
	uint8_t net[8];
	size_t len = client_net(cl, net);

	for (uint32_t i = 0; max && i < w->tcp.n; i++) {
		const tcp_conn_t *c = &w->tcp.conns[i];

		if (c->in_use && c->fd >= 0 && same_net(&c->cl, net, len) && ++n >= max)
			return true;
	}
	for (unsigned i = 0; max && i < w->tcp.nwait; i++)
		if (same_net(&w->tcp.wait_cl[i], net, len) && ++n >= max)
			return true;
	return false;
}

/* Take a free slot for an accepted fd and start reading. */
static void conn_open(struct worker *w, int fd, const query_client_t *cl)
{
	uint32_t idx = w->tcp.free[--w->tcp.nfree];
	tcp_conn_t *c = &w->tcp.conns[idx];

	c->fd = fd;
	c->in_use = true;
	c->fwd_wait = false;
	c->in_run = false;
	c->gen++;
	c->recv_pending = c->send_pending = false;
	c->rlen = c->wlen = c->woff = 0;
	c->last_ms = w->now_ms;
	c->msg_ms = 0;
	c->xfr = -1;
	c->cl = *cl;
	conn_pump(w, idx);
}

/* Waiting fds take the slots that evicted connections freed, first come first served. */
static void pool_adopt(struct worker *w)
{
	tcp_pool_t *p = &w->tcp;

	while (p->nwait > 0 && p->nfree > 0) {
		int fd = p->wait_fd[0];
		query_client_t cl = p->wait_cl[0];

		p->nwait--;
		memmove(p->wait_fd, p->wait_fd + 1, p->nwait * sizeof(*p->wait_fd));
		memmove(p->wait_cl, p->wait_cl + 1, p->nwait * sizeof(*p->wait_cl));
		conn_open(w, fd, &cl);
	}
}

/*
 * The connection to close for a newcomer when the pool is full. Candidates
 * are those with no reply in flight or awaited; the one quiet the longest
 * goes: an idle one (no partial query, RFC 7766 §6.2.3) counts from its last
 * activity, one with a partial message from that message's first byte. A
 * real client's message arrives within a round trip and its connection is
 * then new, so the oldest is an idle connection or a slow loris that
 * reconnects as fast as its connections die; a newcomer survives as many
 * later arrivals as the pool has slots.
 * @return its index, or UINT32_MAX when every connection is busy.
 */
static uint32_t pool_victim(const struct worker *w)
{
	uint64_t oldest = UINT64_MAX;
	uint32_t victim = UINT32_MAX;

	for (uint32_t i = 0; i < w->tcp.n; i++) {
		const tcp_conn_t *c = &w->tcp.conns[i];
		uint64_t since = c->rlen == 0 ? c->last_ms : c->msg_ms;

		if (!c->in_use || c->fd < 0 || c->send_pending || c->fwd_wait ||
		    (c->rlen > 0 && !c->msg_ms))
			continue;
		if (since < oldest) {
			oldest = since;
			victim = i;
		}
	}
	return victim;
}

/* Make room for one accepted fd. @return false when nothing may go or the queue is full. */
static bool pool_evict(struct worker *w)
{
	uint32_t victim = w->tcp.nwait < TCP_WAITQ ? pool_victim(w) : UINT32_MAX;

	if (victim == UINT32_MAX)
		return false;
	stats_inc(&w->qctx.stats, STATS_TCP_CLOSE_EVICTED);
	conn_close(w, victim);
	return true;
}

static void conn_refuse(struct worker *w, int fd, unsigned why)
{
	stats_inc(&w->qctx.stats, STATS_TCP_REFUSED);
	stats_inc(&w->qctx.stats, why);
	close(fd);
}

/* The queued connection stays queued: accepting again now fails the same way. */
static bool accept_out_of_resources(int res)
{
	return res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM;
}

void tcp_on_accept(struct worker *w, const struct io_uring_cqe *cqe)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	query_client_t cl;

	if (!(cqe->flags & IORING_CQE_F_MORE) && !atomic_load(&w->stop)) {
		if (accept_out_of_resources(cqe->res)) {
			stats_inc(&w->qctx.stats, STATS_TCP_ACCEPT_PAUSED);
			w->tcp.accept_paused = true;
			if (log_ratelimit_ok(&w->rl, 1))
				log_warn("server: worker %u: TCP accept: %s; retrying on the "
					 "next timer tick (raise the open file limit)",
					 w->idx, err_str(cqe->res));
		} else {
			tcp_arm_accept(w);
		}
	}
	if (cqe->res < 0)
		return;
	memset(&ss, 0, sizeof(ss));
	if (getpeername(cqe->res, (struct sockaddr *)&ss, &sslen) < 0)
		sslen = 0;
	worker_client(&cl, (struct sockaddr *)&ss, sslen, true);
	if (conn_over_client_cap(w, &cl)) {
		conn_refuse(w, cqe->res, STATS_TCP_REFUSED_CLIENT);
		return;
	}
	if (w->tcp.nfree == 0 && !pool_evict(w)) {
		conn_refuse(w, cqe->res, STATS_TCP_REFUSED_FULL);
		return;
	}
	if (w->tcp.nfree > 0) {
		conn_open(w, cqe->res, &cl);
		return;
	}
	/* The evicted slot frees when its cancelled recv completes, in a batch or two. */
	w->tcp.wait_fd[w->tcp.nwait] = cqe->res;
	w->tcp.wait_cl[w->tcp.nwait++] = cl;
}

void tcp_on_recv(struct worker *w, const struct io_uring_cqe *cqe)
{
	uint32_t idx = uring_ud_idx(cqe->user_data);
	tcp_conn_t *c;

	if (idx >= w->tcp.n)
		return;
	c = &w->tcp.conns[idx];
	c->recv_pending = false;
	if (c->fd < 0 || cqe->res <= 0) {
		conn_close(w, idx); /* EOF, error, or completion of a closed connection */
		pool_adopt(w);
		return;
	}
	c->rlen += (uint32_t)cqe->res;
	c->last_ms = w->now_ms;
	conn_mark(c, w->now_ms, false);
	conn_pump(w, idx);
	pool_adopt(w); /* conn_pump may have closed it */
}

void tcp_on_send(struct worker *w, const struct io_uring_cqe *cqe)
{
	uint32_t idx = uring_ud_idx(cqe->user_data);
	tcp_conn_t *c;

	if (idx >= w->tcp.n)
		return;
	c = &w->tcp.conns[idx];
	c->send_pending = false;
	if (c->fd < 0 || cqe->res <= 0) {
		conn_close(w, idx);
		pool_adopt(w);
		return;
	}
	c->woff += (uint32_t)cqe->res;
	if (c->woff < c->wlen) {
		/* No last_ms: a reader that drains a byte now and then must not look active. */
		conn_arm_send(w, idx);
		return;
	}
	c->last_ms = w->now_ms;
	conn_mark(c, w->now_ms, true);
	if (c->xfr >= 0)
		conn_xfr_next(w, idx);
	else
		conn_pump(w, idx);
	/* Takeover: a kept-open connection ends after an answer with nothing else asked, so its
	 * client reconnects to the new process (RFC 7766 §6.2.4) instead of losing the
	 * connection mid-query when this process exits at the end of its drain. */
	if (w->released && c->fd >= 0 && c->rlen == 0 && !c->send_pending && !c->fwd_wait)
		conn_close(w, idx);
	pool_adopt(w); /* conn_pump may have closed it */
}

void tcp_sweep(struct worker *w)
{
	uint64_t idle = w->conf->tcp_idle_ms, msg = w->conf->tcp_msg_ms;

	for (uint32_t i = 0; i < w->tcp.n; i++) {
		tcp_conn_t *c = &w->tcp.conns[i];

		if (c->fd < 0)
			continue;
		/* Not while our send is pending: we are not reading, the client may be done. */
		if (c->msg_ms && !c->send_pending && !c->fwd_wait && w->now_ms - c->msg_ms >= msg) {
			stats_inc(&w->qctx.stats, STATS_TCP_CLOSE_MSG_TIMEOUT);
			conn_close(w, i);
		} else if (w->now_ms - c->last_ms >= idle) {
			stats_inc(&w->qctx.stats, STATS_TCP_CLOSE_IDLE);
			conn_close(w, i);
		}
	}
	pool_adopt(w);
	/* Once per tick at most: fds freed by the sweep above (or by clients) let it succeed. */
	if (w->tcp.accept_paused && !atomic_load(&w->stop)) {
		w->tcp.accept_paused = false;
		tcp_arm_accept(w);
	}
}

uint64_t tcp_cookie(struct worker *w, uint32_t idx)
{
	return ((uint64_t)w->tcp.conns[idx].gen << 32) | idx;
}

void tcp_forward_wait(struct worker *w, uint32_t idx)
{
	w->tcp.conns[idx].fwd_wait = true;
}

void tcp_forward_reply(struct worker *w, uint64_t cookie, const uint8_t *buf, size_t len)
{
	uint32_t idx = (uint32_t)cookie;
	tcp_conn_t *c;

	if (idx >= w->tcp.n)
		return;
	c = &w->tcp.conns[idx];
	if (!c->in_use || !c->fwd_wait || c->gen != (uint32_t)(cookie >> 32))
		return;
	c->fwd_wait = false;
	size_t cap;
	uint8_t *out = tcp_reply_buf(w, idx, &cap);
	if (len > cap)
		len = 0; /* closes the connection: the client retries */
	memcpy(out, buf, len);
	tcp_reply(w, idx, len);
}

void tcp_forward_abandon(struct worker *w)
{
	for (uint32_t i = 0; i < w->tcp.n; i++) {
		if (w->tcp.conns[i].in_use && w->tcp.conns[i].fwd_wait) {
			w->tcp.conns[i].fwd_wait = false;
			tcp_reply(w, i, 0);
		}
	}
}
