#include "server/udp.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "conf/conf.h"
#include "engine/rrl.h"
#include "server/querylog.h"
#include "server/worker.h"
#include "store/store.h"

/* Bounds the sendmmsg retries of one batch: each try sends or skips at least one reply,
 * EINTR aside. */
#define UDP_SEND_TRIES (2 * UDP_BATCH)

struct udp_batch {
	struct mmsghdr in[UDP_BATCH];
	struct mmsghdr out[UDP_BATCH];
	struct iovec in_iov[UDP_BATCH];
	struct iovec out_iov[UDP_BATCH];
	struct sockaddr_storage addr[UDP_BATCH];
	uint8_t req[UDP_BATCH][WORKER_BUFSIZE];
	uint8_t resp[UDP_BATCH][WORKER_UDP_RESP];
	bool nop_pending; /* a UDP_UD_DRAIN NOP is in the ring */
	bool want_poll;	  /* the poll found the SQ full: arm it after the batch */
	bool want_drain;  /* the NOP found the SQ full: drain after the batch */
};

int udp_init(worker_t *w)
{
	struct udp_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	/* The receive side is set up once; recvmmsg only overwrites lengths and flags. */
	for (unsigned i = 0; i < UDP_BATCH; i++) {
		b->in_iov[i].iov_base = b->req[i];
		b->in_iov[i].iov_len = sizeof(b->req[i]);
		b->in[i].msg_hdr.msg_iov = &b->in_iov[i];
		b->in[i].msg_hdr.msg_iovlen = 1;
		b->in[i].msg_hdr.msg_name = &b->addr[i];
		b->in[i].msg_hdr.msg_namelen = sizeof(b->addr[i]);
		b->out_iov[i].iov_base = b->resp[i];
		b->out[i].msg_hdr.msg_iov = &b->out_iov[i];
		b->out[i].msg_hdr.msg_iovlen = 1;
	}
	w->udp = b;
	return 0;
}

void udp_deinit(worker_t *w)
{
	free(w->udp);
	w->udp = NULL;
}

/* No SQE even after a submit: the worker calls udp_rearm() once the batch is done. */
static void udp_later(worker_t *w, bool *what)
{
	stats_inc(&w->qctx.stats, STATS_RING_FULL);
	*what = true;
	w->rearm |= WORKER_REARM_UDP;
}

/*
 * A one-shot poll, armed again after each drain. A multishot poll would stay on the
 * socket's wait queue while the batch is sent, and then every reply's sock_wfree wakes
 * that queue (EPOLLOUT, which the poll does not want but still takes the queue's lock
 * and calls io_uring's wake function): 2.5-3 % of the worker's CPU under load, one
 * wasted wakeup per datagram to save one SQE per batch. The new poll goes in with the
 * next submit, after the drain, and fires at once if datagrams came in meanwhile.
 */
void udp_arm(worker_t *w)
{
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	if (!sqe) {
		udp_later(w, &w->udp->want_poll);
		return;
	}
	io_uring_prep_poll_add(sqe, w->udp_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_UDP_RECV, UDP_UD_POLL));
}

/* Come back after the completions already queued: the poll will not fire for old data. */
static void udp_defer(worker_t *w)
{
	struct io_uring_sqe *sqe;

	if (w->udp->nop_pending)
		return;
	sqe = uring_sqe(&w->ring);
	if (!sqe) {
		udp_later(w, &w->udp->want_drain);
		return;
	}
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_UDP_RECV, UDP_UD_DRAIN));
	w->udp->nop_pending = true;
}

void udp_rearm(worker_t *w)
{
	struct udp_batch *b = w->udp;

	if (b->want_poll) {
		b->want_poll = false;
		udp_arm(w);
	}
	if (b->want_drain) {
		b->want_drain = false;
		udp_drain(w);
	}
}

void udp_on_cqe(worker_t *w, const struct io_uring_cqe *cqe)
{
	if (uring_ud_idx(cqe->user_data) == UDP_UD_DRAIN) {
		w->udp->nop_pending = false;
	} else if (w->released) {
		return; /* the poll's cancellation: the new process reads this socket now */
	} else {
		udp_arm(w);
	}
	if (!w->released)
		udp_drain(w);
}

size_t udp_rrl(worker_t *w, const struct sockaddr *sa, socklen_t salen, uint8_t *buf, size_t len)
{
	const struct conf *c = w->conf;
	query_client_t cl;
	int v;

	if (c->rrl_rate == 0)
		return len;
	/* Every time: three stores, and a reload (a new conf, maybe at a freed one's address) is
	 * always seen. */
	rrl_configure(w->rrl, c->rrl_rate, c->rrl_slip, c->rrl_window);
	worker_client(&cl, sa, salen, false);
	v = rrl_check(w->rrl, cl.addr, cl.addrlen, rrl_kind(buf, len), w->now_ms);
	if (v == RRL_PASS)
		return len;
	if (v == RRL_SLIP && (len = rrl_slip(buf, len)) > 0) {
		stats_inc(&w->qctx.stats, STATS_RRL_SLIPPED);
		return len;
	}
	stats_inc(&w->qctx.stats, STATS_RRL_DROPPED);
	return 0;
}

/* A question for the forwarder: it needs a slot that outlives the batch, as before. */
static void udp_forward(worker_t *w, const query_t *q, const struct sockaddr *sa, socklen_t len)
{
	worker_reply_to_t to = {.tcp = false};
	udp_slot_t *s;

	if (w->nfree == 0 || len > sizeof(s->addr)) {
		stats_inc(&w->qctx.stats, STATS_DROPPED);
		return;
	}
	to.idx = w->slot_free[--w->nfree];
	s = &w->slots[to.idx];
	memcpy(&s->addr, sa, len);
	s->msg.msg_name = &s->addr;
	s->msg.msg_namelen = len;
	worker_forward(w, q, to);
}

/* Answer datagram i into out slot m. @return 1 when a reply was queued there. */
static int udp_answer(worker_t *w, struct udp_batch *b, unsigned i, unsigned m)
{
	const struct msghdr *in = &b->in[i].msg_hdr;
	const struct sockaddr *sa = (const struct sockaddr *)&b->addr[i];
	socklen_t salen = in->msg_namelen;
	query_client_t cl;
	query_t q;
	size_t len = 0;
	int ret;

	/* A datagram larger than the buffer is not a query we can answer whole: drop it. */
	if ((in->msg_flags & MSG_TRUNC) || salen > sizeof(b->addr[i]))
		return 0;
	worker_client(&cl, sa, salen, false);
	ret = query_process(&w->qctx, b->req[i], b->in[i].msg_len, &cl, b->resp[m],
			    sizeof(b->resp[m]), &len, &q);
	if (ret == QUERY_FORWARD)
		udp_forward(w, &q, sa, salen);
	if (ret != QUERY_REPLY || len == 0)
		return 0;
	/* A valid server cookie proves the source address (RFC 7873 §5.3): no RRL for it. */
	if (!q.cookie_ok && (len = udp_rrl(w, sa, salen, b->resp[m], len)) == 0)
		return 0;
	if (w->qlog)
		querylog_note(w->qlog, cl.addr, cl.addrlen, false, b->resp[m], len);
	b->out_iov[m].iov_len = len;
	b->out[m].msg_hdr.msg_name = &b->addr[i];
	b->out[m].msg_hdr.msg_namelen = salen;
	return 1;
}

/*
 * Start the batch's store reads together, slots first and then the rrsets
 * they point at, so the cache misses of 64 lookups overlap instead of
 * queueing one behind the other. In a store much larger than the CPU caches
 * those misses are most of a query's cost (issue 6, 1M names).
 */
static void udp_prefetch(worker_t *w, struct udp_batch *b, unsigned n)
{
	const void *hint[UDP_BATCH];
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen;
	uint16_t qtype;

	for (unsigned i = 0; i < n; i++) {
		hint[i] = NULL;
		if (query_peek(b->req[i], b->in[i].msg_len, key, &keylen, &qtype) == 0)
			hint[i] = store_prefetch(w->rtx, key, keylen, qtype);
	}
	for (unsigned i = 0; i < n; i++)
		store_prefetch_value(w->rtx, hint[i]);
}

/* Send out[0..m): retry after a partial send; a full socket buffer drops the rest. */
static void udp_send(worker_t *w, struct udp_batch *b, unsigned m)
{
	unsigned done = 0;
	int n;

	for (unsigned tries = 0; done < m && tries < UDP_SEND_TRIES; tries++) {
		n = sendmmsg(w->udp_fd, b->out + done, m - done, MSG_DONTWAIT);
		if (n > 0) {
			done += (unsigned)n;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		} else if (errno != EINTR) {
			/* This reply's own error (e.g. no route): skip it, send the others. */
			stats_inc(&w->qctx.stats, STATS_DROPPED);
			done++;
		}
	}
	if (done < m)
		stats_add(&w->qctx.stats, STATS_DROPPED, m - done);
}

void udp_drain(worker_t *w)
{
	struct udp_batch *b = w->udp;
	uint64_t start;
	unsigned m;
	int n;

	for (unsigned round = 0; round < UDP_BUDGET; round++) {
		n = recvmmsg(w->udp_fd, b->in, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			if (n != -EAGAIN && n != -EWOULDBLOCK && log_ratelimit_ok(&w->rl, 1))
				log_err("server: worker %u: recvmmsg: %s", w->idx, err_str(n));
			return;
		}
		start = worker_clock_ns();
		worker_txn(w); /* renewed once per ring batch, reset before the worker sleeps */
		if (n > 1 && w->lookup_cache)
			udp_prefetch(w, b, (unsigned)n);
		m = 0;
		for (unsigned i = 0; i < (unsigned)n; i++) {
			m += (unsigned)udp_answer(w, b, i, m);
			b->in[i].msg_hdr.msg_namelen = sizeof(b->addr[i]);
		}
		udp_send(w, b, m);
		/* Each answer is counted with its batch's time: the last one in a batch waited for
		 * all the others, and two clock reads per batch cost nothing per query. */
		if (m)
			stats_observe(&w->qctx.stats, worker_clock_ns() - start, m);
		/* A short batch emptied the queue; what arrives later fires the poll again. */
		if (n < UDP_BATCH)
			return;
	}
	udp_defer(w);
}
