#include "server/querylog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"

typedef struct {
	uint64_t ts_ms; /* CLOCK_REALTIME */
	uint8_t addr[16];
	uint8_t addrlen;
	bool tcp;
	uint8_t rcode;
	uint8_t qnamelen;
	uint16_t qtype;
	uint8_t qname[WIRE_NAME_MAX];
} qrec_t;

/* Single producer (its worker), single consumer (the writer): head and tail only grow. */
struct querylog_ring {
	_Atomic uint32_t head; /* next slot the worker writes */
	_Atomic uint32_t tail; /* next slot the writer reads */
	_Atomic uint64_t dropped;
	uint32_t sample, count; /* worker only */
	qrec_t rec[QUERYLOG_RING];
};

struct querylog {
	char *path;
	int fd;
	unsigned n;
	querylog_ring_t *rings; /* owned, n */
	pthread_t thread;
	bool started;
	_Atomic bool stop;
	_Atomic bool reopen;
	uint64_t dropped_seen, last_check_s;
	/* Writer thread only writes these; any thread reads them (server_stats). */
	_Atomic uint64_t written, lost; /* lost: formatted, but write() failed (disk full) */
};

static int open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

	return fd < 0 ? -errno : fd;
}

void querylog_note(querylog_ring_t *r, const uint8_t addr[16], unsigned addrlen, bool tcp,
		   const uint8_t *resp, size_t len)
{
	uint32_t head, tail;
	wire_reader_t rd;
	uint16_t flags;
	size_t namelen;
	struct timespec ts;
	qrec_t *q;

	if (!r || ++r->count < r->sample)
		return;
	r->count = 0;
	head = atomic_load_explicit(&r->head, memory_order_relaxed);
	tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (head - tail >= QUERYLOG_RING) {
		atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
		return;
	}
	q = &r->rec[head % QUERYLOG_RING];
	wire_reader_init(&rd, resp, len);
	if (wire_skip(&rd, 2) < 0 || wire_get_u16(&rd, &flags) < 0 || wire_skip(&rd, 8) < 0)
		return;
	/* A FORMERR may come without its question: log it with the root name. */
	if (wire_get_name(&rd, q->qname, &namelen) < 0 || wire_get_u16(&rd, &q->qtype) < 0) {
		q->qname[0] = 0;
		namelen = 1;
		q->qtype = 0;
	}
	q->qnamelen = (uint8_t)namelen;
	q->rcode = (uint8_t)(flags & 0xf);
	q->tcp = tcp;
	q->addrlen = (uint8_t)(addrlen > 16 ? 16 : addrlen);
	memcpy(q->addr, addr, q->addrlen);
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	q->ts_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

static const char *rcode_name(unsigned rc)
{
	static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
					    "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
					    "NXRRSET", "NOTAUTH", "NOTZONE"};

	return rc < sizeof(names) / sizeof(names[0]) ? names[rc] : "RCODE";
}

static size_t format(const qrec_t *q, char *out, size_t cap)
{
	char name[1024] = ".", type[16], addr[INET6_ADDRSTRLEN] = "?", tsbuf[32];
	time_t sec = (time_t)(q->ts_ms / 1000);
	struct tm tm;
	int n;

	if (q->qnamelen > 1 && wire_name_to_text(q->qname, q->qnamelen, name, sizeof(name)) < 0)
		snprintf(name, sizeof(name), "?");
	wire_type_to_text(q->qtype, type, sizeof(type));
	inet_ntop(q->addrlen == 16 ? AF_INET6 : AF_INET, q->addr, addr, sizeof(addr));
	gmtime_r(&sec, &tm);
	strftime(tsbuf, sizeof(tsbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	/* Names are printed with \DDD escapes by wire_name_to_text: no quotes or spaces. */
	n = snprintf(out, cap, "ts=%s.%03uZ client=%s proto=%s qname=%s qtype=%s rcode=%s\n", tsbuf,
		     (unsigned)(q->ts_ms % 1000), addr, q->tcp ? "tcp" : "udp", name, type,
		     rcode_name(q->rcode));
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* Writes the buffer of nrec lines and counts them written or lost. */
static void write_all(querylog_t *ql, const char *buf, size_t len, uint64_t nrec)
{
	while (len > 0) {
		ssize_t n = write(ql->fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Disk full: lines are lost, the workers are not slowed. A partly
			 * written buffer counts as lost whole: the file has a torn line. */
			atomic_fetch_add_explicit(&ql->lost, nrec, memory_order_relaxed);
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
	atomic_fetch_add_explicit(&ql->written, nrec, memory_order_relaxed);
}

/* SIGUSR1, or logrotate moved the file (checked once a second). */
static void maybe_reopen(querylog_t *ql)
{
	struct timespec ts;
	struct stat a, b;
	bool want = atomic_exchange(&ql->reopen, false);

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	if (!want && (uint64_t)ts.tv_sec != ql->last_check_s) {
		ql->last_check_s = (uint64_t)ts.tv_sec;
		want = fstat(ql->fd, &a) < 0 || stat(ql->path, &b) < 0 || a.st_ino != b.st_ino ||
		       a.st_dev != b.st_dev;
	}
	if (!want)
		return;
	int fd = open_file(ql->path);
	if (fd < 0) {
		log_err("querylog: reopen %s: %s; writing to the old file", ql->path, err_str(fd));
		return;
	}
	close(ql->fd);
	ql->fd = fd;
}

static void drain(querylog_t *ql)
{
	static char buf[1 << 16]; /* the writer thread's own */
	size_t len = 0;
	uint64_t dropped = 0, nrec = 0;

	for (unsigned i = 0; i < ql->n; i++) {
		querylog_ring_t *r = &ql->rings[i];
		uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
		uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);

		for (; tail != head; tail++) {
			if (sizeof(buf) - len < 1400) {
				write_all(ql, buf, len, nrec);
				len = 0;
				nrec = 0;
			}
			len += format(&r->rec[tail % QUERYLOG_RING], buf + len, sizeof(buf) - len);
			nrec++;
		}
		atomic_store_explicit(&r->tail, tail, memory_order_release);
		dropped += atomic_load_explicit(&r->dropped, memory_order_relaxed);
	}
	if (len)
		write_all(ql, buf, len, nrec);
	if (dropped > ql->dropped_seen) {
		log_warn("querylog: %llu records dropped (a worker's ring of %d was full: the disk "
			 "is slower than the queries; raise query-log-sample)",
			 (unsigned long long)(dropped - ql->dropped_seen), QUERYLOG_RING);
		ql->dropped_seen = dropped;
	}
}

static void *writer_main(void *arg)
{
	querylog_t *ql = arg;
	struct timespec pause = {0, QUERYLOG_FLUSH_MS * 1000000L};

	while (!atomic_load(&ql->stop)) {
		maybe_reopen(ql);
		drain(ql);
		nanosleep(&pause, NULL);
	}
	drain(ql);
	return NULL;
}

int querylog_new(querylog_t **out, const struct conf *conf, unsigned nworkers)
{
	querylog_t *ql;
	sigset_t all, old;
	int ret;

	*out = NULL;
	if (!conf->query_log)
		return 0;
	ql = calloc(1, sizeof(*ql));
	if (!ql)
		return -ENOMEM;
	ql->fd = -1;
	ql->n = nworkers;
	ql->path = strdup(conf->query_log);
	ql->rings = calloc(nworkers, sizeof(*ql->rings));
	if (!ql->path || !ql->rings) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < nworkers; i++)
		ql->rings[i].sample = conf->query_log_sample ? conf->query_log_sample : 1;
	if ((ret = ql->fd = open_file(ql->path)) < 0)
		goto fail;
	/* Only main handles signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&ql->thread, NULL, writer_main, ql);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0)
		goto fail;
	ql->started = true;
	log_info("querylog: writing 1 in %u answers to %s", ql->rings[0].sample, ql->path);
	*out = ql;
	return 0;
fail:
	querylog_free(ql);
	return ret;
}

void querylog_free(querylog_t *ql)
{
	if (!ql)
		return;
	if (ql->started) {
		atomic_store(&ql->stop, true);
		pthread_join(ql->thread, NULL);
	}
	if (ql->fd >= 0)
		close(ql->fd);
	free(ql->rings);
	free(ql->path);
	free(ql);
}

querylog_ring_t *querylog_ring(querylog_t *ql, unsigned i)
{
	return ql && i < ql->n ? &ql->rings[i] : NULL;
}

void querylog_reopen(querylog_t *ql)
{
	if (ql)
		atomic_store(&ql->reopen, true);
}

void querylog_counts(const querylog_t *ql, uint64_t *written, uint64_t *dropped, uint64_t *lost)
{
	*written = *dropped = *lost = 0;
	if (!ql)
		return;
	*written = atomic_load_explicit(&ql->written, memory_order_relaxed);
	*lost = atomic_load_explicit(&ql->lost, memory_order_relaxed);
	for (unsigned i = 0; i < ql->n; i++)
		*dropped += atomic_load_explicit(&ql->rings[i].dropped, memory_order_relaxed);
}
