/* echo — "null DNS server" ceiling for the harness: answers every UDP DNS query
 * by echoing it back with QR=1 (no lookup at all), so dnsperf against it shows
 * the most any server can get from this box/load-generator combination.
 * (Same idea as ISC's DNS echo server baseline.)
 *
 *   cc -O2 -o bench/run/bin/echo bench/echo.c -lpthread -luring   (bench/run.sh does this)
 *   echo PORT WORKERS MODE     MODE: plain (recvfrom/sendto), mmsg (recvmmsg/sendmmsg,
 *                              batch 64), uring (io_uring, 64 recvmsg in flight, send via SQE)
 * One SO_REUSEPORT socket + thread per worker, bound to 127.0.0.1:PORT. Foreground.
 * bench/run.sh runs it in uring mode as the "floor" row of its table.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define BUFSZ 1500
static int port;
static const char *mode;

static int mksock(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1, sz = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("bind");
		exit(1);
	}
	return fd;
}

static void run_plain(int fd)
{
	unsigned char buf[BUFSZ];
	struct sockaddr_storage ss;
	for (;;) {
		socklen_t sl = sizeof ss;
		ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&ss, &sl);
		if (n < 12)
			continue;
		buf[2] |= 0x80;
		sendto(fd, buf, n, 0, (struct sockaddr *)&ss, sl);
	}
}

static void run_mmsg(int fd)
{
	static __thread unsigned char bufs[BATCH][BUFSZ];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage addrs[BATCH];
	for (;;) {
		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = BUFSZ;
			memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &addrs[i];
			msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
		}
		int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			bufs[i][2] |= 0x80;
			iov[i].iov_len = msgs[i].msg_len;
		}
		sendmmsg(fd, msgs, n, 0);
	}
}

/* io_uring: BATCH slots, each cycles recvmsg -> sendmsg -> recvmsg ... */
struct slot {
	struct msghdr mh;
	struct iovec iov;
	struct sockaddr_storage sa;
	unsigned char buf[BUFSZ];
	int sending;
};
static void queue_recv(struct io_uring *r, int fd, struct slot *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	s->iov.iov_base = s->buf;
	s->iov.iov_len = BUFSZ;
	memset(&s->mh, 0, sizeof s->mh);
	s->mh.msg_name = &s->sa;
	s->mh.msg_namelen = sizeof s->sa;
	s->mh.msg_iov = &s->iov;
	s->mh.msg_iovlen = 1;
	s->sending = 0;
	io_uring_prep_recvmsg(sqe, fd, &s->mh, 0);
	io_uring_sqe_set_data(sqe, s);
}
static void run_uring(int fd)
{
	struct io_uring ring;
	if (io_uring_queue_init(2 * BATCH, &ring, 0) < 0) {
		perror("io_uring_queue_init");
		exit(1);
	}
	struct slot *slots = calloc(BATCH, sizeof *slots);
	for (int i = 0; i < BATCH; i++)
		queue_recv(&ring, fd, &slots[i]);
	for (;;) {
		io_uring_submit_and_wait(&ring, 1);
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			struct slot *s = io_uring_cqe_get_data(cqe);
			int res = cqe->res;
			seen++;
			if (!s->sending && res >= 12) {
				s->buf[2] |= 0x80;
				s->iov.iov_len = res;
				s->sending = 1;
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
				io_uring_prep_sendmsg(sqe, fd, &s->mh, 0);
				io_uring_sqe_set_data(sqe, s);
			} else {
				queue_recv(&ring, fd, s);
			}
		}
		io_uring_cq_advance(&ring, seen);
	}
}

static void *worker(void *arg)
{
	(void)arg;
	int fd = mksock();
	if (!strcmp(mode, "plain"))
		run_plain(fd);
	else if (!strcmp(mode, "uring"))
		run_uring(fd);
	else
		run_mmsg(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PORT WORKERS [plain|mmsg|uring]\n", argv[0]);
		return 2;
	}
	port = atoi(argv[1]);
	int w = atoi(argv[2]);
	mode = argc > 3 ? argv[3] : "mmsg";
	pthread_t t[64];
	for (int i = 0; i < w && i < 64; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < w && i < 64; i++)
		pthread_join(t[i], NULL);
	return 0;
}
