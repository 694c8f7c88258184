/* latprobe — open-loop fixed-rate DNS/UDP latency probe (percentiles).
 *
 * dnsperf 2.10 (Debian 12) has no latency percentiles, and its -v per-query
 * printing inflates latency ~4x, so this tiny single-threaded client sends the
 * dnsperf query file at a fixed rate (paced by clock, not by replies), records
 * every RTT and prints p50/p90/p99/p99.9/max.
 *
 *   cc -O2 -o bench/run/bin/latprobe bench/latprobe.c   (bench/run.sh does this)
 *   latprobe -s 127.0.0.1 -p 5301 -d bench/data/queries.txt -Q 20000 -l 10 [-c 4] [-t 1]
 *
 * -M: closed-loop max-throughput mode instead ("fastgen"): keeps -q queries in flight
 *     (spread over -c sockets) and sends/receives in batches with sendmmsg/recvmmsg,
 *     so it needs far less CPU per query than dnsperf (one syscall per packet) and
 *     the server, not the generator, becomes the bottleneck on a small box.
 *   latprobe -M -s 127.0.0.1 -p 5301 -d bench/data/queries.txt -l 10 -c 8 -q 256
 *
 * -T: closed-loop TCP mode (RFC 7766 pipelining, issue 16): -c connections (up to
 *     TCP_MAXCONN), each keeps -q queries in flight (length-prefixed; answered in any
 *     order; the free slots are refilled in one write after each read); with -N n a
 *     connection is closed after n answers and opened again (-N 1: setup per query).
 *     A connection that makes no progress for -t seconds counts its queries lost.
 *   latprobe -T -s 127.0.0.1 -p 5301 -d bench/data/queries.txt -l 10 -c 10 -q 8
 *
 * Queries that get no answer within -t seconds (default 1) count as lost.
 * Supported qtypes in the file: A NS CNAME SOA PTR MX TXT AAAA SRV ANY.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXSOCK 64
typedef struct {
	unsigned char b[300];
	int len;
} query_t;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
static int qtype(const char *t)
{
	static const struct {
		const char *n;
		int v;
	} m[] = {{"A", 1},   {"NS", 2},	  {"CNAME", 5}, {"SOA", 6},  {"PTR", 12},
		 {"MX", 15}, {"TXT", 16}, {"AAAA", 28}, {"SRV", 33}, {"ANY", 255}};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		if (!strcasecmp(t, m[i].n))
			return m[i].v;
	return -1;
}
static int build(query_t *q, const char *name, int type)
{
	unsigned char *p = q->b;
	memset(p, 0, 12);
	p[2] = 0x01; /* RD, like dnsperf */
	p[5] = 1;    /* QDCOUNT */
	p += 12;
	const char *s = name;
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		if (l == 0 || l > 63 || p + l + 6 >= q->b + sizeof q->b)
			return -1;
		*p++ = (unsigned char)l;
		memcpy(p, s, l);
		p += l;
		s += l;
		if (*s == '.')
			s++;
	}
	*p++ = 0;
	*p++ = type >> 8;
	*p++ = type & 0xff;
	*p++ = 0;
	*p++ = 1;
	q->len = (int)(p - q->b);
	return 0;
}
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- TCP mode (-T) ---------------------------------------------------- */
#define TCP_MAXCONN 4096
#define TCP_MAXDEPTH 64

typedef struct {
	int fd;
	int connected;
	int inflight; /* queries written and not answered */
	int done;     /* queries answered on this connection */
	uint64_t sent[TCP_MAXDEPTH];
	uint64_t since; /* the last progress (connect, first query, an answer), for -t */
	unsigned char rbuf[16384];
	size_t rlen;
} tconn_t;

typedef struct {
	uint64_t nsent, nlost, bad, rcodes[16], conns;
	uint64_t *lat;
	size_t nlat, maxlat;
} tstat_t;

static int tcp_open(int ep, tconn_t *c, const struct sockaddr_in *sa, int idx)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)idx};
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) < 0 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	c->connected = 0;
	c->inflight = 0;
	c->done = 0;
	memset(c->sent, 0, sizeof c->sent); /* a new connection owes no answers */
	c->rlen = 0;
	c->since = now_ns();
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void tcp_close(tconn_t *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Fill the connection's free slots (ids = slot) with up to k queries, in one write.
 * @return 0 or -1 (drop the connection). */
static int tcp_refill(tconn_t *c, query_t *qs, size_t nq, int depth, int k, tstat_t *st)
{
	unsigned char out[TCP_MAXDEPTH * 302];
	size_t len = 0;
	uint64_t t = now_ns();
	int n = 0;

	for (int i = 0; i < depth && n < k; i++) {
		if (c->sent[i])
			continue;
		query_t *q = &qs[(st->nsent + n) % nq];
		out[len] = (unsigned char)(q->len >> 8);
		out[len + 1] = (unsigned char)q->len;
		memcpy(out + len + 2, q->b, q->len);
		out[len + 2] = 0;
		out[len + 3] = (unsigned char)i;
		len += 2 + q->len;
		c->sent[i] = t;
		n++;
	}
	if (n == 0)
		return 0;
	/* A few queries (< 20 KB): the socket buffer takes them whole or the conn is dropped. */
	if (write(c->fd, out, len) != (ssize_t)len)
		return -1;
	if (c->inflight == 0)
		c->since = t;
	c->inflight += n;
	st->nsent += (uint64_t)n;
	return 0;
}

/* Read what arrived; account every whole answer. @return 0, or -1 (closed/error). */
static int tcp_read(tconn_t *c, int depth, tstat_t *st)
{
	for (;;) {
		ssize_t r = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
		if (r == 0)
			return -1;
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		c->rlen += (size_t)r;
		uint64_t rt = now_ns();
		size_t p = 0;
		while (c->rlen - p >= 2) {
			size_t m = (size_t)c->rbuf[p] << 8 | c->rbuf[p + 1];
			if (c->rlen - p - 2 < m)
				break;
			const unsigned char *b = c->rbuf + p + 2;
			unsigned id = m >= 12 ? (unsigned)(b[0] << 8 | b[1]) : 0xffff;
			if (m < 12 || !(b[2] & 0x80) || id >= (unsigned)depth || !c->sent[id]) {
				st->bad++;
			} else {
				if (st->nlat < st->maxlat)
					st->lat[st->nlat++] = rt - c->sent[id];
				c->sent[id] = 0;
				c->inflight--;
				c->done++;
				c->since = rt; /* progress: the stall clock starts again */
				st->rcodes[b[3] & 0x0f]++;
			}
			p += 2 + m;
		}
		if (c->rlen - p == sizeof c->rbuf)
			return -1; /* an answer larger than the buffer: not ours */
		memmove(c->rbuf, c->rbuf + p, c->rlen - p);
		c->rlen -= p;
	}
}

static int tcp_main(const struct sockaddr_in *sa, query_t *qs, size_t nq, int nconn, int depth,
		    int perconn, double secs, double timeout, tstat_t *st)
{
	struct rlimit rl;
	int ep = epoll_create1(0);
	tconn_t *cs = calloc((size_t)nconn, sizeof *cs);
	struct epoll_event evs[256];
	const uint64_t tmo = (uint64_t)(timeout * 1e9);
	const uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
	uint64_t lastscan = now_ns();

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nconn + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (ep < 0 || !cs)
		return -1;
	for (int i = 0; i < nconn; i++)
		if (tcp_open(ep, &cs[i], sa, i) < 0) {
			perror("tcp connect");
			return -1;
		}
	st->conns = (uint64_t)nconn;
	for (;;) {
		uint64_t t = now_ns();
		int live = 0;
		if (t >= end) {
			for (int i = 0; i < nconn; i++)
				live += cs[i].fd >= 0 && cs[i].inflight > 0;
			if (!live || t >= end + tmo)
				break;
		}
		int n = epoll_wait(ep, evs, 256, 10);
		for (int e = 0; e < n; e++) {
			tconn_t *c = &cs[evs[e].data.u32];
			if (c->fd < 0)
				continue;
			int drop = 0;
			if (!c->connected && (evs[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
				int err = 0;
				socklen_t el = sizeof err;
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err || (evs[e].events & (EPOLLERR | EPOLLHUP))) {
					drop = 1;
				} else {
					struct epoll_event ev = {.events = EPOLLIN,
								 .data.u32 = evs[e].data.u32};
					c->connected = 1;
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				}
			}
			if (!drop && c->connected &&
			    (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				drop = tcp_read(c, depth, st) < 0;
			if (drop) {
				st->nlost += (uint64_t)c->inflight;
				c->inflight = 0;
				tcp_close(c);
			}
		}
		/* Keep every connection's pipeline full, or start it over (-N). */
		t = now_ns();
		for (int i = 0; i < nconn && t < end; i++) {
			tconn_t *c = &cs[i];
			if (c->fd >= 0 && c->connected && c->inflight == 0 && perconn &&
			    c->done >= perconn)
				tcp_close(c);
			if (c->fd < 0) {
				if (tcp_open(ep, c, sa, i) == 0)
					st->conns++;
				continue;
			}
			if (!c->connected || c->inflight >= depth)
				continue;
			int k = depth - c->inflight;
			if (perconn && perconn - c->done - c->inflight < k)
				k = perconn - c->done - c->inflight;
			if (k > 0 && tcp_refill(c, qs, nq, depth, k, st) < 0) {
				st->nlost += (uint64_t)c->inflight;
				c->inflight = 0;
				tcp_close(c);
			}
		}
		if (t - lastscan > 50000000ull) { /* every 50 ms: a stuck burst is lost */
			lastscan = t;
			for (int i = 0; i < nconn; i++) {
				tconn_t *c = &cs[i];
				/* since may be later than t (set after t was read): not stuck */
				if (c->fd >= 0 && (c->inflight > 0 || !c->connected) &&
				    t > c->since && t - c->since > tmo) {
					st->nlost += (uint64_t)c->inflight;
					c->inflight = 0;
					tcp_close(c);
				}
			}
		}
	}
	for (int i = 0; i < nconn; i++) {
		st->nlost += (uint64_t)(cs[i].fd >= 0 ? cs[i].inflight : 0);
		tcp_close(&cs[i]);
	}
	free(cs);
	close(ep);
	return 0;
}

int main(int argc, char **argv)
{
	const char *server = "127.0.0.1", *file = NULL;
	int port = 53, nsock = 4, opt, maxmode = 0, window = 256, tcpmode = 0, perconn = 0;
	double rate = 10000, secs = 10, timeout = 1;
	while ((opt = getopt(argc, argv, "s:p:d:Q:l:c:t:Mq:TN:")) != -1)
		switch (opt) {
		case 'M':
			maxmode = 1;
			break;
		case 'T':
			tcpmode = 1;
			break;
		case 'N':
			perconn = atoi(optarg);
			break;
		case 'q':
			window = atoi(optarg);
			break;
		case 's':
			server = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'd':
			file = optarg;
			break;
		case 'Q':
			rate = atof(optarg);
			break;
		case 'l':
			secs = atof(optarg);
			break;
		case 'c':
			nsock = atoi(optarg);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s -s addr -p port -d queryfile (-Q qps | -M [-q "
				"inflight] | -T [-q depth] [-N per-conn]) -l secs [-c sockets] [-t "
				"timeout]\n",
				argv[0]);
			return 2;
		}
	if (!file || nsock < 1 || (!tcpmode && nsock > MAXSOCK) || nsock > TCP_MAXCONN ||
	    rate <= 0 || (tcpmode && (window < 1 || window > TCP_MAXDEPTH || perconn < 0))) {
		fprintf(stderr, "bad args\n");
		return 2;
	}

	/* load queries */
	FILE *f = fopen(file, "r");
	if (!f) {
		perror(file);
		return 1;
	}
	size_t nq = 0, cap = 1024;
	query_t *qs = malloc(cap * sizeof *qs);
	char line[512], name[300], type[32];
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%299s %31s", name, type) != 2 || name[0] == '#')
			continue;
		int t = qtype(type);
		if (t < 0)
			continue;
		if (nq == cap)
			qs = realloc(qs, (cap *= 2) * sizeof *qs);
		if (build(&qs[nq], name, t) == 0)
			nq++;
	}
	fclose(f);
	if (!nq) {
		fprintf(stderr, "no queries\n");
		return 1;
	}

	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, server, &sa.sin_addr) != 1) {
		fprintf(stderr, "bad addr\n");
		return 2;
	}
	if (tcpmode) {
		tstat_t st = {.maxlat = (size_t)8 << 20};
		st.lat = malloc(st.maxlat * sizeof *st.lat);
		if (!st.lat ||
		    tcp_main(&sa, qs, nq, nsock, window, perconn, secs, timeout, &st) < 0)
			return 1;
		qsort(st.lat, st.nlat, sizeof *st.lat, cmp_u64);
		double tsum = 0;
		for (size_t i = 0; i < st.nlat; i++)
			tsum += st.lat[i];
#define TP(x) (st.nlat ? st.lat[(size_t)((st.nlat - 1) * (x))] / 1e6 : 0.0)
		printf(
		    "sent %llu received %zu lost %llu unmatched %llu rate %.0f qps over %.1f s, %d "
		    "connections x %d pipelined, %llu connections opened\n",
		    (unsigned long long)st.nsent, st.nlat, (unsigned long long)st.nlost,
		    (unsigned long long)st.bad, st.nlat / secs, secs, nsock, window,
		    (unsigned long long)st.conns);
		printf("rcodes NOERROR %llu NXDOMAIN %llu other %llu\n",
		       (unsigned long long)st.rcodes[0], (unsigned long long)st.rcodes[3],
		       (unsigned long long)(st.nlat - st.rcodes[0] - st.rcodes[3]));
		printf("latency_ms avg %.3f p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f\n",
		       st.nlat ? tsum / st.nlat / 1e6 : 0.0, TP(0.50), TP(0.90), TP(0.99),
		       TP(0.999), TP(1.0));
		return 0;
	}
	int fd[MAXSOCK];
	struct pollfd pfd[MAXSOCK];
	for (int i = 0; i < nsock; i++) {
		fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		int sz = 4 << 20;
		setsockopt(fd[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
		if (fd[i] < 0 || connect(fd[i], (struct sockaddr *)&sa, sizeof sa) < 0) {
			perror("socket");
			return 1;
		}
		pfd[i].fd = fd[i];
		pfd[i].events = POLLIN;
	}
	/* per socket, per DNS id: send time (0 = free) */
	uint64_t(*sent)[65536] = calloc(nsock, sizeof *sent);
	size_t maxlat = maxmode ? (size_t)8 << 20 : (size_t)(rate * secs) + 16, nlat = 0;
	uint64_t *lat = malloc(maxlat * sizeof *lat);
	uint64_t nsent = 0, nlost = 0, rcodes[16] = {0}, bad = 0;
	uint16_t nextid[MAXSOCK] = {0};
	const uint64_t interval = (uint64_t)(1e9 / rate), tmo = (uint64_t)(timeout * 1e9);
	const uint64_t start = now_ns(), end = start + (uint64_t)(secs * 1e9);
	uint64_t next = start, drain_end = end + tmo, outstanding = 0;
	unsigned char buf[4096];

	if (maxmode) {
		/* closed loop: per socket keep w queries in flight, batch with sendmmsg/recvmmsg */
		enum { B = 64 };
		int w = window / nsock < 1 ? 1 : window / nsock;
		if (w > 4096)
			w = 4096;
		int *inflight = calloc(nsock, sizeof *inflight);
		uint16_t *oldest = calloc(nsock, sizeof *oldest);
		static unsigned char rbuf[B][1500];
		struct mmsghdr sm[B], rm[B];
		struct iovec siov[B], riov[B];
		uint64_t nrecv = 0, lastscan = start;
		for (int i = 0; i < B; i++) {
			memset(&rm[i], 0, sizeof rm[i]);
			riov[i].iov_base = rbuf[i];
			riov[i].iov_len = sizeof rbuf[i];
			rm[i].msg_hdr.msg_iov = &riov[i];
			rm[i].msg_hdr.msg_iovlen = 1;
		}
		for (;;) {
			uint64_t t = now_ns();
			int progress = 0, sending = t < end;
			if (!sending) {
				int busy = 0;
				for (int s = 0; s < nsock; s++)
					busy += inflight[s];
				if (!busy || t >= end + tmo)
					break; /* drained (or timed out) */
			}
			for (int s = 0; s < nsock; s++) {
				int n = recvmmsg(fd[s], rm, B, MSG_DONTWAIT, NULL);
				if (n > 0) {
					uint64_t rt = now_ns();
					progress = 1;
					for (int i = 0; i < n; i++) {
						unsigned char *b = rbuf[i];
						if (rm[i].msg_len < 12 || !(b[2] & 0x80)) {
							bad++;
							continue;
						}
						uint16_t id = (uint16_t)(b[0] << 8 | b[1]);
						if (!sent[s][id]) {
							bad++;
							continue;
						}
						if (nlat < maxlat)
							lat[nlat++] = rt - sent[s][id];
						nrecv++;
						sent[s][id] = 0;
						inflight[s]--;
						rcodes[b[3] & 0x0f]++;
					}
				}
				if (!sending)
					continue;
				int k = w - inflight[s];
				if (k > B)
					k = B;
				if (k <= 0)
					continue;
				uint64_t st = now_ns();
				int m = 0;
				for (; m < k; m++) {
					uint16_t id = nextid[s];
					if (sent[s][id])
						break; /* id space exhausted by stuck queries */
					nextid[s]++;
					query_t *q = &qs[(nsent + m) % nq];
					siov[m].iov_base = q->b;
					siov[m].iov_len = q->len;
					memset(&sm[m], 0, sizeof sm[m]);
					sm[m].msg_hdr.msg_iov = &siov[m];
					sm[m].msg_hdr.msg_iovlen = 1;
					q->b[0] = id >> 8;
					q->b[1] = id & 0xff; /* id patched below per send */
					sent[s][id] = st;
				}
				/* templates are shared: a template used twice in one batch would
				 * carry one id; nq (>> B) consecutive distinct templates make that
				 * impossible */
				int r = m ? sendmmsg(fd[s], sm, m, 0) : 0;
				if (r < 0)
					r = 0;
				for (int i = r; i < m; i++) { /* unsent: release ids */
					uint16_t id = (uint16_t)(nextid[s] - (m - i));
					sent[s][id] = 0;
				}
				if (r < m)
					nextid[s] = (uint16_t)(nextid[s] - (m - r));
				inflight[s] += r;
				nsent += r;
				if (r)
					progress = 1;
			}
			if (t - lastscan > 50000000ull) { /* every 50 ms: expire lost queries */
				t = now_ns();		  /* must not be older than any send time */
				lastscan = t;
				for (int s = 0; s < nsock; s++) {
					while (oldest[s] != nextid[s] && !sent[s][oldest[s]])
						oldest[s]++;
					while (oldest[s] != nextid[s] && sent[s][oldest[s]] &&
					       t - sent[s][oldest[s]] > tmo) {
						sent[s][oldest[s]] = 0;
						inflight[s]--;
						nlost++;
						oldest[s]++;
					}
				}
			}
			if (!progress) {
				struct timespec ts = {0, 200000};
				ppoll(pfd, nsock, &ts, NULL);
			}
		}
		(void)nrecv;
	} else
		for (;;) {
			uint64_t t = now_ns();
			/* send everything that is due (open loop: schedule does not wait for
			 * replies) */
			while (next <= t && next < end) {
				int s = (int)(nsent % nsock);
				uint16_t id = nextid[s]++;
				if (sent[s][id]) {
					nlost++;
					outstanding--;
				} /* id slot reused: previous query never answered */
				query_t *q = &qs[nsent % nq];
				q->b[0] = id >> 8;
				q->b[1] = id & 0xff;
				if (send(fd[s], q->b, q->len, 0) == q->len) {
					sent[s][id] = now_ns();
					outstanding++;
				} else {
					sent[s][id] = 0;
					nlost++;
				}
				nsent++;
				next += interval;
			}
			if (t >= drain_end || (t >= end && !outstanding))
				break;
			uint64_t wake = next < end ? next : drain_end;
			struct timespec ts = {0, 0};
			if (wake > t) {
				ts.tv_sec = (wake - t) / 1000000000ull;
				ts.tv_nsec = (wake - t) % 1000000000ull;
			}
			int n = ppoll(pfd, nsock, &ts, NULL);
			if (n < 0 && errno != EINTR) {
				perror("ppoll");
				return 1;
			}
			if (n <= 0)
				continue;
			for (int i = 0; i < nsock; i++) {
				if (!(pfd[i].revents & POLLIN))
					continue;
				for (;;) {
					ssize_t r = recv(fd[i], buf, sizeof buf, 0);
					if (r < 0)
						break;
					uint64_t rt = now_ns();
					if (r < 12 || !(buf[2] & 0x80)) {
						bad++;
						continue;
					}
					uint16_t id = (uint16_t)(buf[0] << 8 | buf[1]);
					if (!sent[i][id]) {
						bad++;
						continue;
					}
					if (rt - sent[i][id] <= tmo && nlat < maxlat)
						lat[nlat++] = rt - sent[i][id];
					else
						nlost++;
					sent[i][id] = 0;
					outstanding--;
					rcodes[buf[3] & 0x0f]++;
				}
			}
		}
	for (int i = 0; i < nsock; i++)
		for (int id = 0; id < 65536; id++)
			if (sent[i][id])
				nlost++;
	qsort(lat, nlat, sizeof *lat, cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < nlat; i++)
		sum += lat[i];
#define P(x) (nlat ? lat[(size_t)((nlat - 1) * (x))] / 1e6 : 0.0)
	printf("sent %llu received %zu lost %llu unmatched %llu rate %.0f qps over %.1f s, %d "
	       "sockets%s\n",
	       (unsigned long long)nsent, nlat, (unsigned long long)nlost, (unsigned long long)bad,
	       maxmode ? nlat / secs : rate, secs, nsock, maxmode ? " (closed loop, -M)" : "");
	printf("rcodes NOERROR %llu NXDOMAIN %llu other %llu\n", (unsigned long long)rcodes[0],
	       (unsigned long long)rcodes[3], (unsigned long long)(nlat - rcodes[0] - rcodes[3]));
	printf("latency_ms avg %.3f p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f\n",
	       nlat ? sum / nlat / 1e6 : 0.0, P(0.50), P(0.90), P(0.99), P(0.999), P(1.0));
	return 0;
}
