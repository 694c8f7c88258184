/*
 * xfrnotify: NOTIFY to the secondaries after a change (see xfrnotify.h).
 */
#include "server/xfrnotify.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "engine/tsig.h"

#define XFRNOTIFY_OPCODE (4u << 11) /* RFC 1996 */
#define XFRNOTIFY_PENDING (CONF_MAX_NOTIFY * CONF_MAX_DOMAINS)

typedef struct {
	bool used;
	conf_addr_t to;
	uint8_t zone[WIRE_NAME_MAX];
	size_t zonelen;
	uint16_t id;
	unsigned tries;
	uint64_t next_ms;
} pending_t;

struct xfrnotify {
	int fd4, fd6;
	bool known; /* gen holds the generation last notified (or scheduled) */
	uint64_t gen;
	uint64_t due_ms;   /* send for the new generation then; 0 = nothing scheduled */
	uint64_t first_ms; /* first change not yet sent: the debounce's cap */
	pending_t p[XFRNOTIFY_PENDING];
	uint64_t sent, acked;
};

int xfrnotify_new(xfrnotify_t **out)
{
	xfrnotify_t *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->fd4 = n->fd6 = -1;
	*out = n;
	return 0;
}

void xfrnotify_free(xfrnotify_t *n)
{
	if (!n)
		return;
	if (n->fd4 >= 0)
		close(n->fd4);
	if (n->fd6 >= 0)
		close(n->fd6);
	free(n);
}

uint64_t xfrnotify_sent(const xfrnotify_t *n)
{
	return n->sent;
}

uint64_t xfrnotify_acked(const xfrnotify_t *n)
{
	return n->acked;
}

static int sock_for(xfrnotify_t *n, int family)
{
	int *fd = family == AF_INET6 ? &n->fd6 : &n->fd4;

	if (*fd < 0)
		*fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	return *fd;
}

/* The key NOTIFY is signed with: the first xfr-key, since a secondary that must sign its
 * transfers with it is configured to accept NOTIFY signed with it too (NSD's allow-notify
 * and Knot's acl name one key for both). -1: none, the NOTIFY goes unsigned. */
static int notify_key(const conf_t *c)
{
	for (size_t i = 0; i < c->ntsig_keys; i++)
		if (c->tsig_keys[i].xfr)
			return (int)i;
	return -1;
}

static void send_one(xfrnotify_t *n, const conf_t *c, pending_t *e, uint64_t now_ms)
{
	uint8_t buf[1024]; /* question and a TSIG RR (tsig_room is under 400 bytes) */
	wire_writer_t w;
	int fd = sock_for(n, e->to.sa.ss_family);
	int key = notify_key(c);
	size_t len;
	char t[64];

	e->tries++;
	e->next_ms = now_ms + XFRNOTIFY_RETRY_MS;
	wire_writer_init(&w, buf, sizeof(buf));
	wire_put_u16(&w, e->id);
	wire_put_u16(&w, XFRNOTIFY_OPCODE | WIRE_FLAG_AA);
	wire_put_u16(&w, 1);
	wire_put_u16(&w, 0);
	wire_put_u32(&w, 0);
	wire_put_bytes(&w, e->zone, e->zonelen);
	wire_put_u16(&w, WIRE_TYPE_SOA);
	wire_put_u16(&w, WIRE_CLASS_IN);
	len = w.pos;
	if (key >= 0) {
		tsig_signer_t sg = {.on = true, .key = key, .first = true};
		len = tsig_sign(c, &sg, buf, len, sizeof(buf), (uint64_t)time(NULL), TSIG_NOERROR,
				NULL);
		if (len == 0) {
			log_warn("notify: could not sign with the xfr-key");
			return;
		}
	}
	/* Non-blocking: a full socket buffer is a lost datagram, which the retry covers. */
	if (fd < 0 ||
	    sendto(fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)&e->to.sa, e->to.len) < 0) {
		conf_format_addr(&e->to, t, sizeof(t));
		log_warn("notify: to %s: %s", t, strerror(errno));
		return;
	}
	n->sent++;
}

static bool same_addr(const struct sockaddr_storage *a, const conf_addr_t *b)
{
	if (a->ss_family != b->sa.ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)&b->sa;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)&b->sa;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* Answers: a NOTIFY response with the id, from the address asked, ends its retries. */
static void read_answers(xfrnotify_t *n, int fd)
{
	uint8_t buf[512];
	struct sockaddr_storage from;
	socklen_t flen;
	ssize_t r;

	for (int i = 0; fd >= 0 && i < 256; i++) {
		flen = sizeof(from);
		r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		if (r < 0)
			return;
		if (r < WIRE_HDR_LEN || !(wire_read_u16(buf + 2) & WIRE_FLAG_QR) ||
		    (wire_read_u16(buf + 2) & 0x7800) != XFRNOTIFY_OPCODE)
			continue;
		for (size_t k = 0; k < XFRNOTIFY_PENDING; k++) {
			pending_t *e = &n->p[k];
			if (e->used && e->id == wire_read_u16(buf) && same_addr(&from, &e->to)) {
				e->used = false;
				n->acked++;
			}
		}
	}
}

/* One NOTIFY per local domain and secondary, replacing any still retrying. */
static void schedule_all(xfrnotify_t *n, const conf_t *c, uint64_t now_ms)
{
	size_t k = 0;

	memset(n->p, 0, sizeof(n->p));
	for (size_t s = 0; s < c->nnotify; s++) {
		for (size_t d = 0; d < c->ndomains && k < XFRNOTIFY_PENDING; d++, k++) {
			pending_t *e = &n->p[k];
			e->used = true;
			e->to = c->notify[s];
			memcpy(e->zone, c->domains[d], c->domainlens[d]);
			e->zonelen = c->domainlens[d];
			if (getrandom(&e->id, sizeof(e->id), GRND_NONBLOCK) != sizeof(e->id))
				e->id = (uint16_t)(now_ms * 2654435761u >> 7);
			e->next_ms = now_ms;
		}
	}
}

int xfrnotify_tick(xfrnotify_t *n, const conf_t *c, uint64_t gen, uint64_t now_ms)
{
	int wait = XFRNOTIFY_POLL_MS;

	if (c->nnotify == 0)
		return INT32_MAX;
	read_answers(n, n->fd4);
	read_answers(n, n->fd6);
	if (!n->known || gen != n->gen) {
		/* Debounce: a burst of commits (a watcher's batches) is one NOTIFY. */
		if (!n->due_ms)
			n->first_ms = now_ms;
		n->due_ms = now_ms + XFRNOTIFY_DEBOUNCE_MS;
		if (n->due_ms > n->first_ms + XFRNOTIFY_DEBOUNCE_MAX_MS)
			n->due_ms = n->first_ms + XFRNOTIFY_DEBOUNCE_MAX_MS;
		n->gen = gen;
		n->known = true;
	}
	if (n->due_ms && now_ms >= n->due_ms) {
		n->due_ms = 0;
		schedule_all(n, c, now_ms);
		log_info("notify: generation %llu to %zu secondaries", (unsigned long long)gen,
			 c->nnotify);
	}
	if (n->due_ms && (int)(n->due_ms - now_ms) < wait)
		wait = (int)(n->due_ms - now_ms);
	for (size_t k = 0; k < XFRNOTIFY_PENDING; k++) {
		pending_t *e = &n->p[k];
		if (!e->used)
			continue;
		if (now_ms >= e->next_ms) {
			if (e->tries >= XFRNOTIFY_TRIES) {
				e->used =
				    false; /* RFC 1996 §3.6: give up; the refresh timer remains */
				continue;
			}
			send_one(n, c, e, now_ms);
		}
		if ((int)(e->next_ms - now_ms) < wait)
			wait = (int)(e->next_ms - now_ms);
	}
	return wait < 1 ? 1 : wait;
}
