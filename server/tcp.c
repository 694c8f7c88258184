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
	free(p->conns);
	free(p->free);
	if (p->mem)
		munmap(p->mem, p->membytes);
	memset(p, 0, sizeof(*p));
}

void tcp_arm_accept(struct worker *w)
{
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

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
		c->send_pending = false; /* drops the reservation conn_query made */
		conn_close(w, idx);
		return;
	}
	io_uring_prep_send(sqe, c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_TCP_SEND, idx));
	c->send_pending = true;
}

void tcp_reply(struct worker *w, uint32_t idx, size_t len)
{
	tcp_conn_t *c = &w->tcp.conns[idx];

	if (len == 0 || len > TCP_WBUF - 2 || c->fd < 0) {
		c->send_pending = false;
		conn_close(w, idx);
		return;
	}
	wire_write_u16(c->wbuf, (uint16_t)len);
	c->wlen = (uint32_t)len + 2;
	c->woff = 0;
	conn_arm_send(w, idx);
}

/* Answer one framed query of mlen bytes at rbuf + 2, then drop it from rbuf. */
static void conn_query(struct worker *w, uint32_t idx, size_t mlen)
{
	tcp_conn_t *c = &w->tcp.conns[idx];
	worker_reply_to_t to = {.tcp = true, .idx = idx};
	size_t len = 0, used = 2 + mlen;
	uint64_t start = worker_clock_ns();
	query_t q;
	int ret;

	worker_txn(w);
	ret =
	    query_process(&w->qctx, c->rbuf + 2, mlen, &c->cl, c->wbuf + 2, TCP_WBUF - 2, &len, &q);
	memmove(c->rbuf, c->rbuf + used, c->rlen - used);
	c->rlen -= (uint32_t)used;
	/* Reserve the connection's one send before the reply exists (the forwarder answers later).
	 */
	c->send_pending = true;
	if (ret == QUERY_REPLY) {
		tcp_reply(w, idx, len);
		stats_observe(&w->qctx.stats, worker_clock_ns() - start, 1);
	} else if (ret == QUERY_FORWARD)
		worker_forward(w, &q, to);
	else
		tcp_reply(w, idx, 0);
}

/* Next step of a connection: answer a buffered query, or read more. */
static void conn_pump(struct worker *w, uint32_t idx)
{
	tcp_conn_t *c = &w->tcp.conns[idx];
	size_t mlen;

	if (c->fd < 0 || c->send_pending)
		return;
	if (c->rlen >= 2) {
		mlen = wire_read_u16(c->rbuf);
		if (mlen < WIRE_HDR_LEN || mlen > TCP_RBUF - 2) {
			conn_close(w, idx);
			return;
		}
		if (c->rlen >= 2 + mlen) {
			conn_query(w, idx, mlen);
			return;
		}
	}
	if (!c->recv_pending)
		conn_arm_recv(w, idx);
}

/* One address may hold only tcp-max-per-client of this worker's connections (0 = no cap).
 * A linear scan: accepts are rare next to queries, and the pool is small. */
static bool conn_over_client_cap(struct worker *w, const query_client_t *cl)
{
	unsigned max = w->conf->tcp_max_per_client, n = 0;

	for (uint32_t i = 0; max && i < w->tcp.n; i++) {
		const tcp_conn_t *c = &w->tcp.conns[i];

		if (c->in_use && c->fd >= 0 && c->cl.addrlen == cl->addrlen &&
		    memcmp(c->cl.addr, cl->addr, cl->addrlen) == 0 && ++n >= max)
			return true;
	}
	return false;
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
	tcp_conn_t *c;
	uint32_t idx;

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
	if (w->tcp.nfree == 0 || conn_over_client_cap(w, &cl)) {
		/* over tcp-max-connections or tcp-max-per-client: refuse */
		stats_inc(&w->qctx.stats, STATS_TCP_REFUSED);
		close(cqe->res);
		return;
	}
	idx = w->tcp.free[--w->tcp.nfree];
	c = &w->tcp.conns[idx];
	c->fd = cqe->res;
	c->in_use = true;
	c->fwd_wait = false;
	c->gen++;
	c->recv_pending = c->send_pending = false;
	c->rlen = c->wlen = c->woff = 0;
	c->last_ms = w->now_ms;
	c->cl = cl;
	conn_pump(w, idx);
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
		return;
	}
	c->rlen += (uint32_t)cqe->res;
	c->last_ms = w->now_ms;
	conn_pump(w, idx);
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
		return;
	}
	c->last_ms = w->now_ms;
	c->woff += (uint32_t)cqe->res;
	if (c->woff < c->wlen)
		conn_arm_send(w, idx); /* short write */
	else
		conn_pump(w, idx);
}

void tcp_sweep(struct worker *w)
{
	uint64_t idle = w->conf->tcp_idle_ms;

	for (uint32_t i = 0; i < w->tcp.n; i++) {
		tcp_conn_t *c = &w->tcp.conns[i];

		if (c->fd >= 0 && w->now_ms - c->last_ms >= idle)
			conn_close(w, i);
	}
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
	if (len > TCP_WBUF - 2)
		len = 0; /* closes the connection: the client retries */
	memcpy(c->wbuf + 2, buf, len);
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
