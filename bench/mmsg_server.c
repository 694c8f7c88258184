/*
 * bench/mmsg_server: the recvmmsg/sendmmsg candidate of issue 6, for bench/run.sh only.
 *
 * A single-threaded UDP server with skydns's real query path (libserver's
 * query_process over a store read txn, renewed once per batch and reset
 * before blocking, exactly like server/worker.c) but classic batched socket
 * I/O: one blocking recvmmsg(MSG_WAITFORONE) of up to MMSG_BATCH datagrams,
 * answer them all, one sendmmsg. It exists to measure whether this I/O model
 * costs less CPU per query than the io_uring worker on this kernel, so it
 * has no TCP, no forwarding, no reload and no RRL (off by default in skydns).
 *
 *   skydns-mmsg-bench -config-file skydns.conf
 * Reads dns-addr, dns-domains, data-dir and the rest from the same file as
 * skydns; runs until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "conf/conf.h"
#include "engine/query.h"
#include "engine/topn.h"
#include "store/store.h"

#define MMSG_BATCH 64
#define MMSG_RECV_BUF 2048
#define MMSG_RESP_BUF 4096
#define MMSG_RCVBUF (8 << 20) /* as server.c: bursts must not be dropped */

typedef struct {
	struct mmsghdr in[MMSG_BATCH];
	struct mmsghdr out[MMSG_BATCH];
	struct iovec in_iov[MMSG_BATCH];
	struct iovec out_iov[MMSG_BATCH];
	struct sockaddr_storage addr[MMSG_BATCH];
	uint8_t req[MMSG_BATCH][MMSG_RECV_BUF];
	uint8_t resp[MMSG_BATCH][MMSG_RESP_BUF];
} mmsg_bufs_t;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static int sock_open(const conf_addr_t *a)
{
	int one = 1, want = MMSG_RCVBUF, fd, ret;

	fd = socket(a->sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	if (bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* The receive side is set up once; only the lengths the kernel overwrote are restored. */
static void bufs_init(mmsg_bufs_t *b)
{
	memset(b->in, 0, sizeof(b->in));
	memset(b->out, 0, sizeof(b->out));
	for (int i = 0; i < MMSG_BATCH; i++) {
		b->in_iov[i].iov_base = b->req[i];
		b->in_iov[i].iov_len = MMSG_RECV_BUF;
		b->in[i].msg_hdr.msg_iov = &b->in_iov[i];
		b->in[i].msg_hdr.msg_iovlen = 1;
		b->in[i].msg_hdr.msg_name = &b->addr[i];
		b->in[i].msg_hdr.msg_namelen = sizeof(b->addr[i]);
		b->out_iov[i].iov_base = b->resp[i];
		b->out[i].msg_hdr.msg_iov = &b->out_iov[i];
		b->out[i].msg_hdr.msg_iovlen = 1;
	}
}

static void client_of(query_client_t *cl, const struct sockaddr_storage *ss)
{
	memset(cl, 0, sizeof(*cl));
	if (ss->ss_family == AF_INET) {
		memcpy(cl->addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		cl->addrlen = 4;
	} else if (ss->ss_family == AF_INET6) {
		memcpy(cl->addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
		cl->addrlen = 16;
	}
}

/* Answer datagram i into the next out slot. @return 1 when a reply was queued. */
static int answer_one(query_ctx_t *q, mmsg_bufs_t *b, int i, int m)
{
	struct msghdr *in = &b->in[i].msg_hdr;
	query_client_t cl;
	query_t parsed;
	size_t len = 0;

	if (in->msg_flags & MSG_TRUNC)
		return 0;
	client_of(&cl, &b->addr[i]);
	if (query_process(q, b->req[i], b->in[i].msg_len, &cl, b->resp[m], MMSG_RESP_BUF, &len,
			  &parsed) != QUERY_REPLY)
		return 0; /* FORWARD: no forwarder here, the benchmark zone is local */
	b->out_iov[m].iov_len = len;
	b->out[m].msg_hdr.msg_name = &b->addr[i];
	b->out[m].msg_hdr.msg_namelen = in->msg_namelen;
	return 1;
}

static void send_all(int fd, mmsg_bufs_t *b, int m)
{
	int done = 0, n;

	while (done < m) {
		n = sendmmsg(fd, b->out + done, (unsigned)(m - done), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* a failed send is a lost reply, as in the worker */
		done += n;
	}
}

static int serve(int fd, query_ctx_t *q, store_rtxn_t *rtx, mmsg_bufs_t *b)
{
	int n, m, ret;

	while (!g_stop) {
		n = recvmmsg(fd, b->in, MMSG_BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		ret = store_read_renew(rtx);
		if (ret < 0)
			return ret;
		m = 0;
		for (int i = 0; i < n; i++)
			m += answer_one(q, b, i, m);
		/* Before blocking again: an idle reader pins old pages (LMDB caveat). */
		store_read_reset(rtx);
		send_all(fd, b, m);
		for (int i = 0; i < n; i++)
			b->in[i].msg_hdr.msg_namelen = sizeof(b->addr[i]);
	}
	return 0;
}

static int run(const conf_t *conf, store_t *store, mmsg_bufs_t *b)
{
	static query_ctx_t q;
	store_rtxn_t *rtx = NULL;
	uint64_t seed = 1;
	int fd = -1, ret;

	(void)getrandom(&seed, sizeof(seed), 0);
	query_ctx_init(&q, conf, seed);
	/* As server.c does per worker: counting asked names is part of the query path. */
	ret = topn_new(&q.topn, TOPN_DEFAULT_CAPACITY, seed);
	if (ret < 0)
		goto out;
	ret = store_read_begin(store, &rtx);
	if (ret < 0)
		goto out;
	ret = store_read_cache(rtx, conf->lookup_cache);
	if (ret < 0)
		goto out;
	store_read_reset(rtx);
	q.txn = rtx;
	fd = sock_open(&conf->dns_addr);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	bufs_init(b);
	ret = serve(fd, &q, rtx, b);
out:
	if (fd >= 0)
		close(fd);
	store_read_end(rtx);
	topn_free(q.topn);
	return ret;
}

int main(int argc, char **argv)
{
	static mmsg_bufs_t bufs;
	struct sigaction sa;
	conf_t *conf = NULL;
	store_t *store = NULL;
	char err[512] = "";
	int ret;

	if (argc != 3 || strcmp(argv[1], "-config-file") != 0) {
		fprintf(stderr, "usage: %s -config-file PATH\n", argv[0]);
		return 2;
	}
	ret = conf_load(argv[2], &conf, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "%s\n", err[0] ? err : err_str(ret));
		return 2;
	}
	(void)log_open(NULL, true, conf->log_level, "skydns-mmsg-bench");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: recvmmsg must return EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	ret = store_open(&store, conf->data_dir, conf->map_size, 0);
	if (ret == 0)
		ret = run(conf, store, &bufs);
	if (ret < 0)
		fprintf(stderr, "skydns-mmsg-bench: %s\n", err_str(ret));
	store_close(store);
	conf_free(conf);
	return ret < 0 ? 1 : 0;
}
