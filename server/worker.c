#include "server/worker.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "conf/conf.h"
#include "engine/edns.h"
#include "server/querylog.h"
#include "engine/rrl.h"
#include "engine/topn.h"
#include "server/udp.h"
#include "store/store.h"

#define WORKER_QUIESCE_MS 1000 /* longest wait for cancelled I/O at exit */

static uint64_t now_ms(void)
{
	return worker_clock_ns() / 1000000;
}

int worker_init(worker_t *w, unsigned idx, int udp_fd, int tcp_fd, const struct conf *conf,
		struct store *store, forward_t *fwd)
{
	uint64_t seed = 0;
	int ret;

	memset(w, 0, sizeof(*w));
	w->idx = idx;
	w->udp_fd = udp_fd;
	w->tcp_fd = tcp_fd;
	w->conf = conf;
	w->store = store;
	ret = upstream_init(&w->up, fwd);
	atomic_init(&w->conf_next, conf);
	atomic_init(&w->gen_want, 0);
	atomic_init(&w->gen_ack, 0);
	atomic_init(&w->ctl_want, 0);
	atomic_init(&w->ctl_ack, 0);
	atomic_init(&w->stop, false);
	atomic_init(&w->release, false);
	atomic_init(&w->busy, UINT_MAX);
	atomic_init(&w->state, 0);
	atomic_init(&w->dead, 0);
	w->efd = eventfd(0, EFD_CLOEXEC);
	w->slots = calloc(WORKER_NBUFS, sizeof(*w->slots));
	w->slot_free = calloc(WORKER_NBUFS, sizeof(*w->slot_free));
	if (w->efd < 0 || !w->slots || !w->slot_free || ret < 0)
		return w->efd < 0 ? -errno : -ENOMEM;
	for (unsigned i = 0; i < WORKER_NBUFS; i++)
		w->slot_free[i] = WORKER_NBUFS - 1 - i;
	w->nfree = WORKER_NBUFS;
	ret = tcp_pool_init(&w->tcp, tcp_fd >= 0 ? conf->tcp_max_conns : 0);
	if (ret < 0)
		return ret;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = now_ms() ^ ((uint64_t)idx << 32);
	query_ctx_init(&w->qctx, conf, seed);
	ret = udp_init(w);
	if (ret < 0)
		return ret;
	/* Always there (512 KiB, untouched until used), so a reload can turn RRL on. */
	return rrl_new(&w->rrl, 1, 0, 1, seed ^ 0x5bd1e995u);
}

void worker_deinit(worker_t *w)
{
	tcp_pool_deinit(&w->tcp);
	upstream_deinit(&w->up);
	rrl_free(w->rrl);
	w->rrl = NULL;
	udp_deinit(w);
	free(w->slots);
	free(w->slot_free);
	if (w->efd >= 0)
		close(w->efd);
	if (w->udp_fd >= 0)
		close(w->udp_fd);
	if (w->tcp_fd >= 0)
		close(w->tcp_fd);
	w->slots = NULL;
	w->slot_free = NULL;
	w->efd = w->udp_fd = w->tcp_fd = -1;
}

void worker_wake(worker_t *w)
{
	eventfd_write(w->efd, 1);
}

struct store_rtxn *worker_txn(worker_t *w)
{
	int ret;

	if (!w->txn_live) {
		ret = store_read_renew(w->rtx);
		if (ret < 0 && log_ratelimit_ok(&w->rl, 1))
			log_err("server: worker %u: store read renew: %s", w->idx, err_str(ret));
		w->txn_live = true;
	}
	return w->rtx;
}

/* ---- arming ---- */

/* No SQE even after a submit: count it and let worker_rearm() try after this batch. */
static void rearm_later(worker_t *w, unsigned what)
{
	stats_inc(&w->qctx.stats, STATS_RING_FULL);
	w->rearm |= what;
}

static void arm_eventfd(worker_t *w)
{
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	if (!sqe) {
		rearm_later(w, WORKER_REARM_EFD);
		return;
	}
	io_uring_prep_read(sqe, w->efd, &w->efd_val, sizeof(w->efd_val), 0);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_EVENTFD, 0));
}

static void arm_timer(worker_t *w)
{
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);
	uint32_t ms =
	    w->conf->tcp_idle_ms < w->conf->tcp_msg_ms ? w->conf->tcp_idle_ms : w->conf->tcp_msg_ms;

	ms /= 4;
	if (!sqe) {
		rearm_later(w, WORKER_REARM_TIMER);
		return;
	}
	/* Sweep often enough that a TCP connection outlives its idle or message timeout by at
	 * most 25 %. */
	if (ms < 100)
		ms = 100;
	if (ms > 1000)
		ms = 1000;
	w->tick.tv_sec = ms / 1000;
	w->tick.tv_nsec = (long long)(ms % 1000) * 1000000;
	io_uring_prep_timeout(sqe, &w->tick, 0, 0);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_TIMER, 0));
}

/* ---- replies ---- */

uint8_t *worker_reply_buf(worker_t *w, worker_reply_to_t to, size_t *cap)
{
	if (to.tcp)
		return tcp_reply_buf(w, to.idx, cap);
	*cap = sizeof(w->slots[to.idx].buf);
	return w->slots[to.idx].buf;
}

static void slot_release(worker_t *w, uint32_t idx)
{
	w->slot_free[w->nfree++] = idx;
}

void worker_reply(worker_t *w, worker_reply_to_t to, size_t len)
{
	struct io_uring_sqe *sqe;
	udp_slot_t *s;

	if (to.tcp) {
		tcp_reply(w, to.idx, len);
		return;
	}
	s = &w->slots[to.idx];
	if (len > 0)
		len =
		    udp_rrl(w, (const struct sockaddr *)&s->addr, s->msg.msg_namelen, s->buf, len);
	if (len > 0 && w->qlog) {
		query_client_t cl;

		worker_client(&cl, (const struct sockaddr *)&s->addr, s->msg.msg_namelen, false);
		querylog_note(w->qlog, cl.addr, cl.addrlen, false, s->buf, len);
	}
	if (len == 0) {
		slot_release(w, to.idx);
		return;
	}
	sqe = uring_sqe(&w->ring);
	if (!sqe) {
		stats_inc(&w->qctx.stats, STATS_RING_FULL);
		slot_release(w, to.idx);
		return;
	}
	if (w->send_to) {
		/* No msghdr and iovec for the kernel to copy in and check per reply. */
		io_uring_prep_send(sqe, w->udp_fd, s->buf, len, 0);
		io_uring_prep_send_set_addr(sqe, (const struct sockaddr *)&s->addr,
					    (uint16_t)s->msg.msg_namelen);
	} else {
		s->iov.iov_base = s->buf;
		s->iov.iov_len = len;
		s->msg.msg_iov = &s->iov;
		s->msg.msg_iovlen = 1;
		io_uring_prep_sendmsg(sqe, w->udp_fd, &s->msg, 0);
	}
	io_uring_sqe_set_data64(sqe, uring_ud(UD_UDP_SEND, to.idx));
}

/* A TCP client's address for the forwarder, which counts clients by network (port 0). */
static void tcp_client_addr(const query_client_t *qc, conf_addr_t *out)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->sa;

	memset(out, 0, sizeof(*out));
	if (qc->addrlen == 4) {
		v4->sin_family = AF_INET;
		memcpy(&v4->sin_addr, qc->addr, 4);
		out->len = sizeof(*v4);
	} else if (qc->addrlen == 16) {
		v6->sin6_family = AF_INET6;
		memcpy(&v6->sin6_addr, qc->addr, 16);
		out->len = sizeof(*v6);
	}
}

/* Forwarded answers count by rcode as the worker's own do (query.c counts those). */
static void count_forwarded(worker_t *w, const uint8_t *answer, size_t len)
{
	if (len >= WIRE_HDR_LEN)
		stats_inc(&w->qctx.stats, STATS_RCODE0 + (answer[3] & 0x0F));
}

void worker_forward(worker_t *w, const query_t *q, worker_reply_to_t to)
{
	forward_client_t cl = {.tcp = to.tcp};
	size_t cap, len = 0;
	uint8_t *buf = worker_reply_buf(w, to, &cap);
	int ret;

	if (!w->up.fwd) {
		len = query_reply_rcode(q, WIRE_RCODE_SERVFAIL, EDNS_EDE_NONE, buf, cap);
		count_forwarded(w, buf, len);
		worker_reply(w, to, len);
		return;
	}
	if (to.tcp) {
		cl.cookie = tcp_cookie(w, to.idx);
		tcp_client_addr(&w->tcp.conns[to.idx].cl, &cl.addr);
	} else {
		memcpy(&cl.addr.sa, &w->slots[to.idx].addr, w->slots[to.idx].msg.msg_namelen);
		cl.addr.len = w->slots[to.idx].msg.msg_namelen;
	}
	ret = forward_query(w->up.fwd, q, &cl, w->now_ms, buf, cap, &len);
	if (ret != FWD_PENDING) {
		count_forwarded(w, buf, len);
		worker_reply(w, to, len);
	} else if (to.tcp)
		tcp_forward_wait(w, to.idx);
	else
		slot_release(w, to.idx);
	upstream_drain(w);
}

void worker_forward_reply(worker_t *w, const forward_reply_t *r, const uint8_t *buf)
{
	worker_reply_to_t to = {.tcp = false};
	udp_slot_t *s;

	count_forwarded(w, buf, r->len);
	if (r->client.tcp) {
		tcp_forward_reply(w, r->client.cookie, buf, r->len);
		return;
	}
	if (w->nfree == 0 || r->len > sizeof(s->buf) || r->client.addr.len > sizeof(s->addr)) {
		stats_inc(&w->qctx.stats, STATS_DROPPED);
		return;
	}
	to.idx = w->slot_free[--w->nfree];
	s = &w->slots[to.idx];
	memcpy(&s->addr, &r->client.addr.sa, r->client.addr.len);
	s->msg.msg_name = &s->addr;
	s->msg.msg_namelen = r->client.addr.len;
	memcpy(s->buf, buf, r->len);
	worker_reply(w, to, r->len);
}

size_t worker_local_answer(void *ctx, const uint8_t *name, size_t len, uint16_t qtype,
			   uint16_t qclass, uint8_t *buf, size_t cap)
{
	worker_t *w = ctx;
	uint8_t req[WIRE_HDR_LEN + WIRE_NAME_MAX + 4];
	query_client_t cl = {.tcp = true}; /* no size limit: the caller truncates */
	wire_writer_t wr;
	query_t q;
	size_t n = 0;

	wire_writer_init(&wr, req, sizeof(req));
	if (wire_put_u16(&wr, 0) < 0 || wire_put_u16(&wr, WIRE_FLAG_RD) < 0 ||
	    wire_put_u16(&wr, 1) < 0 || wire_put_u16(&wr, 0) < 0 || wire_put_u16(&wr, 0) < 0 ||
	    wire_put_u16(&wr, 0) < 0 || wire_put_bytes(&wr, name, len) < 0 ||
	    wire_put_u16(&wr, qtype) < 0 || wire_put_u16(&wr, qclass) < 0)
		return 0;
	worker_txn(w);
	if (query_process(&w->qctx, req, wr.pos, &cl, buf, cap, &n, &q) != QUERY_REPLY)
		return 0;
	return n;
}

/* ---- UDP ---- */

void worker_client(query_client_t *cl, const struct sockaddr *sa, socklen_t len, bool tcp)
{
	memset(cl, 0, sizeof(*cl));
	cl->tcp = tcp;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		memcpy(cl->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		cl->addrlen = 4;
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		memcpy(cl->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		cl->addrlen = 16;
	}
}

static void udp_on_send(worker_t *w, const struct io_uring_cqe *cqe)
{
	uint32_t idx = uring_ud_idx(cqe->user_data);

	if (idx < WORKER_NBUFS)
		slot_release(w, idx);
}

/* ---- loop ---- */

/* Arms that found no SQE, tried again once the batch is done (the loop submits first). */
static void worker_rearm(worker_t *w)
{
	unsigned what = w->rearm;

	w->rearm = 0;
	if (what & WORKER_REARM_UDP)
		udp_rearm(w);
	if ((what & WORKER_REARM_EFD) && !atomic_load(&w->stop))
		arm_eventfd(w);
	if (what & WORKER_REARM_TIMER)
		arm_timer(w);
}

static void worker_check_reload(worker_t *w)
{
	uint64_t want = atomic_load_explicit(&w->gen_want, memory_order_acquire);

	if (want == atomic_load_explicit(&w->gen_ack, memory_order_relaxed))
		return;
	w->conf = atomic_load_explicit(&w->conf_next, memory_order_acquire);
	w->qctx.conf = w->conf;
	upstream_reload(w);
	if (w->up.fwd && w->cache_ttl)
		forward_set_max_ttl(w->up.fwd, w->cache_ttl);
	atomic_store_explicit(&w->gen_ack, want, memory_order_release);
}

/* A control request posted by server_cache_*(): a walk of this worker's cache at most. */
static void worker_check_ctl(worker_t *w)
{
	uint64_t want = atomic_load_explicit(&w->ctl_want, memory_order_acquire);
	forward_t *f = w->up.fwd;

	if (want == atomic_load_explicit(&w->ctl_ack, memory_order_relaxed))
		return;
	w->ctl_n = 0;
	if (w->ctl_op == WORKER_CTL_SHOW && f)
		w->ctl_n = forward_cache_name(f, w->ctl_name, w->ctl_len, w->now_ms, w->ctl_out,
					      WORKER_CTL_MAX);
	else if (w->ctl_op == WORKER_CTL_FLUSH && f)
		w->ctl_n = forward_cache_flush(f, w->ctl_name, w->ctl_len);
	else if (w->ctl_op == WORKER_CTL_TTL) {
		w->cache_ttl = w->ctl_ttl;
		if (f)
			forward_set_max_ttl(f, w->ctl_ttl);
	}
	atomic_store_explicit(&w->ctl_ack, want, memory_order_release);
}

static void worker_dispatch(worker_t *w, const struct io_uring_cqe *cqe)
{
	switch (uring_ud_type(cqe->user_data)) {
	case UD_UDP_RECV:
		udp_on_cqe(w, cqe);
		break;
	case UD_UDP_SEND:
		udp_on_send(w, cqe);
		break;
	case UD_TCP_ACCEPT:
		tcp_on_accept(w, cqe);
		break;
	case UD_TCP_RECV:
		tcp_on_recv(w, cqe);
		break;
	case UD_TCP_SEND:
		tcp_on_send(w, cqe);
		break;
	case UD_EVENTFD:
		if (!atomic_load(&w->stop))
			arm_eventfd(w);
		upstream_wake(w);
		break;
	case UD_TIMER:
		tcp_sweep(w);
		if (w->qctx.topn) /* readers see the most-asked names a tick late */
			topn_publish(w->qctx.topn);
		upstream_sweep(w);
		arm_timer(w);
		break;
	case UD_UPSTREAM:
	case UD_UP_SEND:
	case UD_UP_TCP:
	case UD_FWD_TICK:
	case UD_DOT:
		upstream_on_cqe(w, cqe);
		break;
	default:
		break;
	}
}

static int worker_setup(worker_t *w)
{
	int ret = uring_init(&w->ring, WORKER_RING);

	if (ret < 0)
		return ret;
	w->ring_ok = true;
	w->send_to = uring_has_sendto(&w->ring);
	ret = store_read_begin(w->store, &w->rtx);
	if (ret < 0)
		return ret;
	ret = store_read_cache(w->rtx, w->lookup_cache);
	if (ret < 0)
		return ret;
	store_read_reset(w->rtx);
	w->qctx.txn = w->rtx;
	w->now_ms = now_ms();
	w->qctx.now_s = (uint32_t)time(NULL); /* cookie timestamps: wall clock */
	ret = upstream_setup(w);
	if (ret < 0)
		return ret;
	udp_arm(w);
	if (w->tcp_fd >= 0)
		tcp_arm_accept(w);
	arm_eventfd(w);
	arm_timer(w);
	return 0;
}

/*
 * Cancel everything in flight and reap the completions: the kernel tears a
 * ring down asynchronously, so a recv still queued at io_uring_queue_exit()
 * could write into buffers freed right after it. Bounded: it stops once
 * the ring stayed quiet for a wait, or after WORKER_QUIESCE_MS.
 */
static void worker_quiesce(worker_t *w)
{
	struct __kernel_timespec quiet = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);
	uint64_t end = now_ms() + WORKER_QUIESCE_MS;
	struct io_uring_cqe *cqe;

	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data64(sqe, uring_ud(UD_CANCEL, 0));
	}
	io_uring_submit(&w->ring);
	while (now_ms() < end && io_uring_wait_cqe_timeout(&w->ring, &cqe, &quiet) == 0)
		io_uring_cq_advance(&w->ring, io_uring_cq_ready(&w->ring));
}

/* Ring first, memory after: nothing may still target the buffers we unmap. */
static void worker_teardown(worker_t *w)
{
	if (w->ring_ok) {
		worker_quiesce(w);
		upstream_teardown(w);
		io_uring_queue_exit(&w->ring);
		w->ring_ok = false;
	}
	tcp_pool_deinit(&w->tcp);
	store_read_end(w->rtx);
	w->rtx = NULL;
	w->qctx.txn = NULL;
}

/*
 * Takeover: cancel the UDP poll and the multishot accept (by fd: every
 * request on it), so the kernel hands new datagrams and connections to the
 * process that took the sockets over. Answers being sent, connections
 * already accepted and questions waiting upstream carry on.
 */
static void worker_release(worker_t *w)
{
	int fds[2] = {w->udp_fd, w->tcp_fd};

	w->released = true;
	for (int i = 0; i < 2; i++) {
		struct io_uring_sqe *sqe;

		if (fds[i] < 0)
			continue;
		sqe = uring_sqe(&w->ring);
		if (!sqe) {
			w->released =
			    false; /* SQ full even after a submit: try after the next batch */
			return;
		}
		io_uring_prep_cancel_fd(sqe, fds[i], IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, uring_ud(UD_CANCEL, 0));
	}
}

/* What a released worker still owes: open TCP connections and forwarded questions. */
static unsigned worker_busy(const worker_t *w)
{
	size_t n = (size_t)(w->tcp.n - w->tcp.nfree) + w->tcp.nwait;

	if (w->up.fwd)
		n += forward_inflight(w->up.fwd);
	return n > UINT_MAX - 1 ? UINT_MAX - 1 : (unsigned)n;
}

/* @return 0 when stopped, -errno when the ring failed. */
static int worker_loop(worker_t *w)
{
	struct io_uring_cqe *cqe;
	unsigned head, n;
	int ret;

	while (!atomic_load(&w->stop)) {
		/* Reset before sleeping: an idle reader pins old pages (LMDB caveat). */
		if (w->txn_live) {
			store_read_reset(w->rtx);
			w->txn_live = false;
		}
		ret = io_uring_submit_and_wait(&w->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY && ret != -ETIME) {
			log_err("server: worker %u: io_uring: %s", w->idx, err_str(ret));
			goto out;
		}
		w->now_ms = now_ms();
		w->qctx.now_s = (uint32_t)time(NULL); /* cookie timestamps: wall clock */
		worker_check_reload(w);
		worker_check_ctl(w);
		n = 0;
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			worker_dispatch(w, cqe);
			n++;
		}
		io_uring_cq_advance(&w->ring, n);
		if (w->rearm)
			worker_rearm(w);
		if (!w->released && atomic_load(&w->release))
			worker_release(w);
		if (w->released)
			atomic_store_explicit(&w->busy, worker_busy(w), memory_order_relaxed);
		/* Once per batch, not per answer: the API reads these copies, never the
		 * forwarder.
		 */
		if (w->up.dirty)
			upstream_publish(w);
		uint64_t hits, misses;
		store_cache_counts(w->rtx, &hits, &misses);
		stats_set(&w->qctx.stats, STATS_LOOKUP_HITS, hits);
		stats_set(&w->qctx.stats, STATS_LOOKUP_MISSES, misses);
	}
	ret = 0;
out:
	if (w->txn_live) {
		store_read_reset(w->rtx);
		w->txn_live = false;
	}
	return ret;
}

/*
 * The ring failed: leave the SO_REUSEPORT groups, or the kernel keeps
 * hashing ~1/N of the clients to sockets nobody reads. Teardown ran first,
 * so no SQE holds a reference that would keep the sockets bound.
 */
static void worker_die(worker_t *w, int err)
{
	if (w->udp_fd >= 0)
		close(w->udp_fd);
	if (w->tcp_fd >= 0)
		close(w->tcp_fd);
	w->udp_fd = w->tcp_fd = -1;
	atomic_store(&w->dead, err);
}

void *worker_main(void *arg)
{
	worker_t *w = arg;
	int ret = worker_setup(w);

	if (ret < 0) {
		worker_teardown(w);
		atomic_store(&w->state, ret);
		return NULL;
	}
	atomic_store(&w->state, 1);
	ret = worker_loop(w);
	worker_teardown(w);
	if (ret < 0)
		worker_die(w, ret);
	return NULL;
}
