/*
 * xfr: zone transfers, one message per call (see xfr.h).
 */
#include "engine/xfr.h"

#include <string.h>

#include "common/err.h"
#include "conf/conf.h"
#include "engine/additional.h"
#include "engine/edns.h"
#include "store/store.h"

#define XFR_NS_TTL 3600 /* the synthesized apex NS and its address, as query.c answers */
#define XFR_MSG_MAX 65535

typedef struct {
	xfr_t *x;
	const conf_t *c;
	wire_writer_t *w;
	uint16_t an;
	int err;
	bool full; /* stopped: the next rrset does not fit */
} msg_t;

int xfr_begin(xfr_t *x, const query_ctx_t *ctx, const query_t *q, int zi)
{
	const conf_t *c = ctx->conf;
	uint8_t lower[WIRE_NAME_MAX];

	memcpy(lower, q->qname, q->qnamelen);
	wire_name_lower(lower, q->qnamelen);
	if (zi < 0 || !wire_name_equal(lower, q->qnamelen, c->domains[zi], c->domainlens[zi]))
		return ERR_INVAL;
	memset(x, 0, sizeof(*x));
	x->active = true;
	x->zi = zi;
	x->q = *q;
	x->tsig = ctx->tsig;
	if (wire_name_to_key(c->domains[zi], c->domainlens[zi], x->zkey, &x->zkeylen) < 0)
		return ERR_INVAL;
	return 0;
}

/* Is the transfer's zone still domain zi of this conf? */
static bool same_zone(const conf_t *c, const xfr_t *x)
{
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen;

	return wire_name_to_key(c->domains[x->zi], c->domainlens[x->zi], key, &keylen) == 0 &&
	       keylen == x->zkeylen && memcmp(key, x->zkey, keylen) == 0;
}

static void put_prefixed(msg_t *m, const char *label)
{
	size_t n = strlen(label);

	m->err |= wire_put_u8(m->w, (uint8_t)n);
	m->err |= wire_put_bytes(m->w, label, n);
	m->err |= wire_put_bytes(m->w, m->c->domains[m->x->zi], m->c->domainlens[m->x->zi]);
}

static void put_apex(msg_t *m, uint16_t type, uint32_t ttl)
{
	m->err |= wire_put_bytes(m->w, m->c->domains[m->x->zi], m->c->domainlens[m->x->zi]);
	m->err |= wire_put_u16(m->w, type);
	m->err |= wire_put_u16(m->w, WIRE_CLASS_IN);
	m->err |= wire_put_u32(m->w, ttl);
}

/* The SOA query.c synthesizes, with the transfer's serial. */
static void put_soa(msg_t *m)
{
	size_t at;

	put_apex(m, WIRE_TYPE_SOA, m->c->min_ttl);
	at = m->w->pos;
	m->err |= wire_put_u16(m->w, 0);
	put_prefixed(m, "ns1");
	put_prefixed(m, "hostmaster");
	m->err |= wire_put_u32(m->w, (uint32_t)m->x->gen);
	m->err |= wire_put_u32(m->w, 3600);
	m->err |= wire_put_u32(m->w, 600);
	m->err |= wire_put_u32(m->w, 86400);
	m->err |= wire_put_u32(m->w, m->c->min_ttl);
	if (m->err == 0)
		wire_patch_u16(m->w, at, (uint16_t)(m->w->pos - at - 2));
	m->an++;
}

/* The apex NS ns1.<zone> and its addresses, when the store has no apex NS (query.c's). */
static int put_synth_ns(msg_t *m, store_rtxn_t *txn)
{
	const conf_t *c = m->c;
	uint8_t ns1[WIRE_NAME_MAX], key[WIRE_KEY_MAX];
	size_t len = 4 + c->domainlens[m->x->zi], keylen;
	store_lookup_t lk;
	int ret;

	if ((ret = store_lookup(txn, m->x->zkey, m->x->zkeylen, WIRE_TYPE_NS, &lk)) < 0)
		return ret;
	if (lk.has_rrset)
		return 0;
	put_apex(m, WIRE_TYPE_NS, XFR_NS_TTL);
	m->err |= wire_put_u16(m->w, (uint16_t)len);
	put_prefixed(m, "ns1");
	m->an++;
	ns1[0] = 3;
	memcpy(ns1 + 1, "ns1", 3);
	memcpy(ns1 + 4, c->domains[m->x->zi], c->domainlens[m->x->zi]);
	if (wire_name_to_key(ns1, len, key, &keylen) < 0 ||
	    (ret = store_lookup(txn, key, keylen, WIRE_TYPE_A, &lk)) < 0)
		return ret < 0 ? ret : ERR_INVAL;
	if (lk.exists || !additional_is_synth_ns(c, m->x->zi, ns1, len))
		return 0; /* ns1 has data of its own: the walk sends it */
	const uint16_t types[2] = {WIRE_TYPE_A, WIRE_TYPE_AAAA};
	for (int i = 0; i < 2; i++) {
		const uint8_t *addr = NULL;
		size_t alen = additional_ns_addr(c, m->x->zi, ns1, len, types[i], &addr);
		if (alen == 0)
			continue;
		m->err |= wire_put_bytes(m->w, ns1, len);
		m->err |= wire_put_u16(m->w, types[i]);
		m->err |= wire_put_u16(m->w, WIRE_CLASS_IN);
		m->err |= wire_put_u32(m->w, XFR_NS_TTL);
		m->err |= wire_put_u16(m->w, (uint16_t)alen);
		m->err |= wire_put_bytes(m->w, addr, alen);
		m->an++;
	}
	return 0;
}

/* One rrset of the walk: all of it, or nothing and stop (the next message starts here). */
static int walk_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	msg_t *m = ctx;
	uint8_t name[WIRE_NAME_MAX];
	size_t namelen, pos = 0, mark = m->w->pos;
	uint16_t an = m->an;
	store_rr_t rr;
	int rc;

	if (wire_key_to_name(key, keylen, name, &namelen) < 0)
		return ERR_STORE;
	/* A local domain below this one is a zone of its own; the apex SOA is ours. */
	if (conf_domain_of(m->c, name, namelen) != m->x->zi ||
	    (set->type == WIRE_TYPE_SOA && keylen == m->x->zkeylen))
		goto next;
	while ((rc = store_rrset_next(set, &pos, &rr)) == 1) {
		m->err |= wire_put_bytes(m->w, name, namelen);
		m->err |= wire_put_u16(m->w, set->type);
		m->err |= wire_put_u16(m->w, WIRE_CLASS_IN);
		m->err |= wire_put_bytes(m->w, rr.wire, 6 + (size_t)rr.rdlen);
		m->an++;
	}
	if (rc < 0)
		return rc;
	if (m->err < 0) {
		/* Does not fit: take it back; an empty message means it never will. */
		m->w->pos = mark;
		m->an = an;
		m->err = 0;
		m->full = true;
		return an == 0 ? ERR_TOOBIG : 1;
	}
	m->x->rrs += (unsigned long)(m->an - an);
next:
	memcpy(m->x->after, key, keylen);
	m->x->afterlen = keylen;
	m->x->after_type = set->type;
	m->x->has_after = true;
	return 0;
}

/* Header and (first message) question, and the EDNS the request had. */
static int put_head(const xfr_t *x, wire_writer_t *w, bool question)
{
	uint16_t flags = (uint16_t)(WIRE_FLAG_QR | WIRE_FLAG_AA | (x->q.flags & WIRE_FLAG_RD));
	int e = wire_put_u16(w, x->q.id);

	e |= wire_put_u16(w, flags);
	e |= wire_put_u32(w, 0);
	e |= wire_put_u32(w, 0);
	if (question) {
		e |= wire_put_bytes(w, x->q.qname, x->q.qnamelen);
		e |= wire_put_u16(w, x->q.qtype);
		e |= wire_put_u16(w, x->q.qclass);
		wire_patch_u16(w, 4, 1);
	}
	return e;
}

size_t xfr_next(xfr_t *x, query_ctx_t *ctx, uint8_t *resp, size_t cap)
{
	edns_reply_t opt = {.udp = ctx->conf->edns_bufsize,
			    .do_bit = x->q.edns_do,
			    .ede = EDNS_EDE_NONE,
			    .cookie = x->q.has_cookie ? x->q.cookie : NULL};
	size_t optroom = x->q.edns ? edns_opt_len(&opt) : 0;
	size_t sigroom = x->tsig.on ? tsig_room(ctx->conf, x->tsig.key) : 0;
	wire_writer_t w;
	msg_t m = {.x = x, .c = ctx->conf, .w = &w};
	int ret;

	/* A reload may have changed the domains under a running transfer: end it. */
	if (!x->active || x->done || !ctx->txn || x->zi >= (int)ctx->conf->ndomains ||
	    !same_zone(ctx->conf, x))
		return 0;
	if (cap > XFR_MSG_MAX)
		cap = XFR_MSG_MAX;
	if (x->tsig.on && x->tsig.key >= (int)ctx->conf->ntsig_keys)
		return 0; /* a reload took the key away */
	if (!x->started)
		x->gen = store_generation(ctx->txn);
	else if (store_generation(ctx->txn) != x->gen)
		return 0; /* a commit since the first message: no mixed zone */
	wire_writer_init(&w, resp, cap - optroom - sigroom);
	if (put_head(x, &w, !x->started) < 0)
		return 0;
	if (!x->started) {
		put_soa(&m);
		if ((ret = put_synth_ns(&m, ctx->txn)) < 0 || m.err < 0)
			return 0;
	}
	if (!x->walked) {
		ret = x->has_after ? store_iter_after(ctx->txn, x->zkey, x->zkeylen, x->after,
						      x->afterlen, x->after_type, walk_cb, &m)
				   : store_iter(ctx->txn, x->zkey, x->zkeylen, walk_cb, &m);
		if (ret < 0)
			return 0;
		x->walked = !m.full;
	}
	if (x->walked) {
		size_t mark = w.pos;
		put_soa(&m);
		if (m.err < 0) {
			w.pos = mark; /* the closing SOA goes in a message of its own */
			m.an--;
			m.err = 0;
		} else {
			x->done = true;
		}
	}
	x->started = true;
	x->msgs++;
	wire_patch_u16(&w, 6, m.an);
	if (x->q.edns) {
		w.cap += optroom;
		if (edns_put_opt(&w, &opt) < 0)
			return 0;
		wire_patch_u16(&w, 10, 1);
	}
	if (x->tsig.on)
		return tsig_sign(ctx->conf, &x->tsig, resp, w.pos, cap, ctx->now_s, TSIG_NOERROR,
				 NULL);
	return w.pos;
}
