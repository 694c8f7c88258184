#include "server/dot.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "server/uring.h"
#include "server/worker.h"

#define DOT_RBUF (2 + 65535)
#define DOT_WBUF (64 * 1024)
#define DOT_MIN_TIMEOUT_MS 1000

enum { DOT_CLOSED, DOT_CONNECTING, DOT_HANDSHAKE, DOT_READY };

typedef struct {
	uint16_t id;
	uint32_t slot;
	uint64_t sent_ms; /* past the try timeout the forwarder gave up on it: dropped */
} dot_pend_t;

typedef struct {
	conf_addr_t to;
	char name[CONF_TLS_NAME_MAX];
	char label[64 + CONF_TLS_NAME_MAX]; /* "ip:port@name" for logs */
	int fd;
	uint8_t state;
	bool polling;
	bool failed; /* last outcome was a failure: logged once until it recovers */
	uint16_t gen;
	gnutls_session_t s;
	uint64_t deadline; /* handshake: give up; ready with pending: read timeout */
	uint64_t last_ms;  /* last traffic */
	uint8_t *wq;	   /* framed queries not yet given to GnuTLS */
	size_t wlen;
	uint8_t *rb;
	size_t rlen;
	dot_pend_t pend[DOT_PEND];
	unsigned npend;
	uint64_t connects; /* TCP+TLS connections opened (tests read the log) */
} dot_conn_t;

struct dot_cred {
	gnutls_certificate_credentials_t cred;
};

struct dot {
	const dot_cred_t *cred; /* borrowed from the worker (w->dot_cred); NULL: none loaded */
	unsigned n;
	bool stale; /* dot_reset: rebuild from w->conf at the next query (gens kept) */
	dot_conn_t conn[CONF_MAX_SERVERS];
};

static uint64_t timeout_ms(const worker_t *w)
{
	uint64_t t = (uint64_t)w->conf->forward_timeout_ms * 2;

	return t > DOT_MIN_TIMEOUT_MS ? t : DOT_MIN_TIMEOUT_MS;
}

/* The DoT servers of w->conf, with credentials; NULL when there are none or on failure. */
static struct dot *dot_get(worker_t *w)
{
	const conf_t *c = w->conf;
	struct dot *d = w->up.dot;
	bool any = false;

	if (d && !d->stale)
		return d;
	for (size_t i = 0; i < c->nnameservers; i++)
		any |= c->nameserver_tls[i][0] != '\0';
	if (!any) /* plain servers only: nothing to allocate (a few bytes read per send) */
		return d;
	if (!d) {
		if (!(d = calloc(1, sizeof(*d))))
			return NULL;
		for (size_t i = 0; i < CONF_MAX_SERVERS; i++)
			d->conn[i].fd = -1;
	}
	d->stale = false;
	d->n = 0;
	for (size_t i = 0; i < c->nnameservers; i++) {
		dot_conn_t *k;
		char addr[64];
		if (!c->nameserver_tls[i][0])
			continue;
		k = &d->conn[d->n++];
		k->npend = 0;
		k->failed = false;
		k->to = c->nameservers[i];
		k->fd = -1;
		snprintf(k->name, sizeof(k->name), "%s", c->nameserver_tls[i]);
		conf_format_addr(&k->to, addr, sizeof(addr));
		snprintf(k->label, sizeof(k->label), "%s@%s", addr, c->nameserver_tls[i]);
	}
	d->cred = atomic_load_explicit(&w->dot_cred, memory_order_acquire);
	w->up.dot = d;
	return d;
}

static dot_conn_t *find(struct dot *d, const conf_addr_t *to)
{
	for (unsigned i = 0; d && i < d->n; i++)
		if (d->conn[i].to.len == to->len &&
		    memcmp(&d->conn[i].to.sa, &to->sa, to->len) == 0)
			return &d->conn[i];
	return NULL;
}

static uint32_t ud_idx(const struct dot *d, const dot_conn_t *k)
{
	return ((uint32_t)k->gen << 16) | (uint32_t)(k - d->conn);
}

static void arm_poll(worker_t *w, dot_conn_t *k, unsigned mask)
{
	struct io_uring_sqe *sqe;

	if (k->polling || k->fd < 0)
		return;
	sqe = uring_sqe(&w->ring);
	if (!sqe) { /* SQ full: the sweep's timeout ends the connection */
		stats_inc(&w->qctx.stats, STATS_RING_FULL);
		return;
	}
	io_uring_prep_poll_add(sqe, k->fd, mask);
	io_uring_sqe_set_data64(sqe, uring_ud(UD_DOT, ud_idx(w->up.dot, k)));
	k->polling = true;
}

static void conn_close(worker_t *w, dot_conn_t *k)
{
	struct io_uring_sqe *sqe;

	if (k->fd < 0)
		return;
	if (k->polling && (sqe = uring_sqe(&w->ring))) {
		io_uring_prep_poll_remove(sqe, uring_ud(UD_DOT, ud_idx(w->up.dot, k)));
		io_uring_sqe_set_data64(sqe, uring_ud(UD_CANCEL, 0));
	}
	if (k->s)
		gnutls_deinit(k->s);
	k->s = NULL;
	close(k->fd);
	k->fd = -1;
	k->polling = false;
	k->state = DOT_CLOSED;
	k->gen++;
	k->wlen = k->rlen = 0;
}

/* End the connection and every try on it (counted by the forwarder as upstream errors). */
static void conn_fail(worker_t *w, dot_conn_t *k, const char *why)
{
	if (!k->failed)
		log_warn("dot: upstream %s failing: %s", k->label, why);
	k->failed = true;
	conn_close(w, k);
	for (unsigned i = 0; i < k->npend; i++)
		if (w->up.fwd)
			forward_on_error(w->up.fwd, k->pend[i].slot, true, w->now_ms);
	k->npend = 0;
}

static int conn_open(worker_t *w, dot_conn_t *k)
{
	int fd = socket(k->to.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (!k->rb)
		k->rb = malloc(DOT_RBUF);
	if (!k->wq)
		k->wq = malloc(DOT_WBUF);
	if (!k->rb || !k->wq) {
		close(fd);
		return -ENOMEM;
	}
	k->fd = fd;
	k->wlen = k->rlen = 0;
	k->deadline = w->now_ms + timeout_ms(w);
	k->last_ms = w->now_ms;
	k->connects++;
	if (connect(fd, (const struct sockaddr *)&k->to.sa, k->to.len) < 0 &&
	    errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		k->fd = -1;
		return e;
	}
	log_debug("dot: upstream %s: connecting (connection %llu)", k->label,
		  (unsigned long long)k->connects);
	k->state = DOT_CONNECTING;
	arm_poll(w, k, POLLOUT);
	return 0;
}

static bool tls_start(worker_t *w, dot_conn_t *k)
{
	struct dot *d = w->up.dot;

	if (!d->cred || gnutls_init(&k->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0)
		return false;
	if (gnutls_set_default_priority(k->s) < 0 ||
	    gnutls_credentials_set(k->s, GNUTLS_CRD_CERTIFICATE, d->cred->cred) < 0)
		return false;
	(void)gnutls_server_name_set(k->s, GNUTLS_NAME_DNS, k->name, strlen(k->name));
	/* The handshake fails with GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR unless the chain
	 * is trusted and the certificate names k->name. */
	gnutls_session_set_verify_cert(k->s, k->name, 0);
	gnutls_transport_set_int(k->s, k->fd);
	gnutls_handshake_set_timeout(k->s, 0); /* ours: the sweep's deadline */
	k->state = DOT_HANDSHAKE;
	return true;
}

/* Frames in rb: each answer goes to the try that sent its ID. */
static void deliver(worker_t *w, dot_conn_t *k)
{
	size_t off = 0;

	while (k->rlen - off >= 2) {
		size_t mlen = wire_read_u16(k->rb + off);
		if (k->rlen - off < 2 + mlen)
			break;
		if (mlen >= 12) {
			uint16_t id = wire_read_u16(k->rb + off + 2);
			for (unsigned i = 0; i < k->npend; i++) {
				if (k->pend[i].id != id)
					continue;
				uint32_t slot = k->pend[i].slot;
				k->pend[i] = k->pend[--k->npend];
				if (w->up.fwd)
					forward_on_packet(w->up.fwd, slot, &k->to, k->rb + off + 2,
							  mlen, w->now_ms);
				break;
			}
		}
		off += 2 + mlen;
	}
	memmove(k->rb, k->rb + off, k->rlen - off);
	k->rlen -= off;
	k->deadline = w->now_ms + timeout_ms(w);
}

/* Give queued queries to GnuTLS. @return false when the connection failed. */
static bool flush(worker_t *w, dot_conn_t *k)
{
	while (k->wlen > 0) {
		ssize_t r = gnutls_record_send(k->s, k->wq, k->wlen);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			return true; /* call again with the same data when writable */
		if (r < 0) {
			conn_fail(w, k, gnutls_strerror((int)r));
			return false;
		}
		memmove(k->wq, k->wq + r, k->wlen - (size_t)r);
		k->wlen -= (size_t)r;
	}
	return true;
}

static void step(worker_t *w, dot_conn_t *k)
{
	int r;

	if (k->state == DOT_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			conn_fail(w, k, err_str(-err));
			return;
		}
		if (!tls_start(w, k)) {
			conn_fail(w, k, "TLS session setup failed");
			return;
		}
	}
	if (k->state == DOT_HANDSHAKE) {
		r = gnutls_handshake(k->s);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			arm_poll(w, k, gnutls_record_get_direction(k->s) ? POLLOUT : POLLIN);
			return;
		}
		if (r < 0) {
			char why[512];
			gnutls_datum_t txt = {0};
			unsigned st = gnutls_session_get_verify_cert_status(k->s);
			if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
			    gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509, &txt,
									 0) == 0) {
				snprintf(why, sizeof(why), "certificate verification failed: %s",
					 (const char *)txt.data);
				gnutls_free(txt.data);
			} else {
				snprintf(why, sizeof(why), "TLS handshake: %s", gnutls_strerror(r));
			}
			conn_fail(w, k, why);
			return;
		}
		if (k->failed)
			log_info("dot: upstream %s up again", k->label);
		else
			log_debug("dot: upstream %s: TLS up", k->label);
		k->failed = false;
		k->state = DOT_READY;
		k->deadline = w->now_ms + timeout_ms(w);
	}
	/* Ready: read what there is, write what waits, then wait for more. */
	for (;;) {
		ssize_t n = gnutls_record_recv(k->s, k->rb + k->rlen, DOT_RBUF - k->rlen);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			break;
		if (n <= 0) {
			if (k->npend > 0)
				conn_fail(w, k,
					  n == 0 ? "closed by the server"
						 : gnutls_strerror((int)n));
			else
				conn_close(w, k); /* idle close by the server: reopened on demand */
			return;
		}
		k->rlen += (size_t)n;
		k->last_ms = w->now_ms;
		deliver(w, k);
		if (k->rlen >= DOT_RBUF) { /* cannot happen with 2-byte lengths; be safe */
			conn_fail(w, k, "frame too long");
			return;
		}
	}
	if (!flush(w, k))
		return;
	arm_poll(w, k, POLLIN | (k->wlen ? POLLOUT : 0));
}

bool dot_send(worker_t *w, const forward_send_t *s)
{
	struct dot *d = w->conf->nnameservers ? dot_get(w) : w->up.dot;
	dot_conn_t *k = find(d, s->to);
	int r;

	if (!k)
		return false;
	if (k->fd < 0 && (r = conn_open(w, k)) < 0) {
		if (w->up.fwd) {
			if (!k->failed)
				log_warn("dot: upstream %s failing: connect: %s", k->label,
					 err_str(r));
			k->failed = true;
			forward_on_error(w->up.fwd, s->slot, true, w->now_ms);
		}
		return true;
	}
	if (k->npend >= DOT_PEND || k->wlen + 2 + s->len > DOT_WBUF || s->len < 12) {
		if (w->up.fwd)
			forward_on_error(w->up.fwd, s->slot, true, w->now_ms);
		return true;
	}
	/* A retry of the same slot replaces its earlier entry. */
	for (unsigned i = 0; i < k->npend; i++)
		if (k->pend[i].slot == s->slot)
			k->pend[i] = k->pend[--k->npend];
	if (k->npend == 0)
		k->deadline = w->now_ms + timeout_ms(w);
	k->pend[k->npend].sent_ms = w->now_ms;
	k->pend[k->npend].id = wire_read_u16(s->pkt);
	k->pend[k->npend++].slot = s->slot;
	wire_write_u16(k->wq + k->wlen, (uint16_t)s->len);
	memcpy(k->wq + k->wlen + 2, s->pkt, s->len);
	k->wlen += 2 + s->len;
	k->last_ms = w->now_ms;
	if (k->state == DOT_READY && flush(w, k) && k->wlen && k->polling) {
		/* Polling for input only: ask for writability too. */
		struct io_uring_sqe *sqe = uring_sqe(&w->ring);
		if (sqe) {
			io_uring_prep_poll_remove(sqe, uring_ud(UD_DOT, ud_idx(d, k)));
			io_uring_sqe_set_data64(sqe, uring_ud(UD_CANCEL, 0));
		}
	}
	return true;
}

void dot_on_cqe(worker_t *w, const struct io_uring_cqe *cqe)
{
	struct dot *d = w->up.dot;
	uint32_t ud = uring_ud_idx(cqe->user_data), idx = ud & 0xFFFF;
	dot_conn_t *k;

	if (!d || idx >= d->n || d->conn[idx].fd < 0 || ud_idx(d, &d->conn[idx]) != ud)
		return;
	k = &d->conn[idx];
	k->polling = false;
	if (cqe->res < 0 && cqe->res != -ECANCELED && cqe->res != -ENOENT) {
		conn_fail(w, k, err_str(cqe->res));
	} else {
		step(w, k);
	}
	upstream_drain(w);
}

void dot_sweep(worker_t *w)
{
	struct dot *d = w->up.dot;

	for (unsigned i = 0; d && i < d->n; i++) {
		dot_conn_t *k = &d->conn[i];
		if (k->fd < 0)
			continue;
		/* Tries the forwarder timed out long ago: their answers would be ignored. */
		for (unsigned j = 0; j < k->npend;)
			if (w->now_ms - k->pend[j].sent_ms >= 2 * timeout_ms(w))
				k->pend[j] = k->pend[--k->npend];
			else
				j++;
		if (k->state != DOT_READY && w->now_ms >= k->deadline)
			conn_fail(w, k, "handshake timeout");
		else if (k->state == DOT_READY && k->npend > 0 && w->now_ms >= k->deadline)
			conn_fail(w, k, "read timeout");
		else if (k->state == DOT_READY && k->npend == 0 &&
			 w->now_ms - k->last_ms >= DOT_IDLE_MS)
			conn_close(w, k);
		else if (!k->polling) /* an arm that found the SQ full */
			arm_poll(w, k, k->state == DOT_CONNECTING ? POLLOUT : POLLIN);
	}
}

void dot_reset(worker_t *w)
{
	struct dot *d = w->up.dot;

	if (!d)
		return;
	for (unsigned i = 0; i < d->n; i++) {
		conn_close(w, &d->conn[i]);
		d->conn[i].npend = 0;
	}
	d->cred = NULL; /* the next conf's comes with it */
	/* Kept, not freed: the generations outlive the list so late completions miss. */
	d->n = 0;
	d->stale = true;
}

void dot_free(struct dot *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < CONF_MAX_SERVERS; i++) {
		dot_conn_t *k = &d->conn[i];
		if (k->s)
			gnutls_deinit(k->s);
		if (k->fd >= 0)
			close(k->fd);
		free(k->rb);
		free(k->wq);
	}
	free(d);
}

int dot_cred_new(const conf_t *c, dot_cred_t **out)
{
	bool any = false;
	dot_cred_t *d;
	int r;

	*out = NULL;
	for (size_t i = 0; i < c->nnameservers; i++)
		any |= c->nameserver_tls[i][0] != '\0';
	if (!any)
		return 0;
	if (!(d = calloc(1, sizeof(*d))))
		return -ENOMEM;
	if (gnutls_certificate_allocate_credentials(&d->cred) < 0) {
		free(d);
		return -ENOMEM;
	}
	r = c->tls_cafile ? gnutls_certificate_set_x509_trust_file(d->cred, c->tls_cafile,
								   GNUTLS_X509_FMT_PEM)
			  : gnutls_certificate_set_x509_system_trust(d->cred);
	if (r <= 0)
		log_warn("dot: no CA certificates from %s: %s; every tls:// server will fail "
			 "verification",
			 c->tls_cafile ? c->tls_cafile : "the system store",
			 r < 0 ? gnutls_strerror(r) : "none found");
	*out = d;
	return 0;
}

void dot_cred_free(dot_cred_t *d)
{
	if (!d)
		return;
	gnutls_certificate_free_credentials(d->cred);
	free(d);
}
