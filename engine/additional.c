#include "engine/additional.h"

#include <string.h>

#include "conf/conf.h"
#include "engine/zonecut.h"
#include "store/store.h"

#define ADDITIONAL_PTR_MAX 0x3fff /* highest offset a compression pointer reaches */
#define ADDITIONAL_NS_TTL 3600	  /* as the synthesized apex NS itself */

static const uint8_t ns1_label[] = {3, 'n', 's', '1'};

void additional_init(additional_t *a)
{
	a->n = 0;
	a->glue = false;
}

void additional_note(additional_t *a, const uint8_t *name, size_t len, size_t off)
{
	if (a->n >= ADDITIONAL_MAX || wire_name_check(name, len) < 0)
		return;
	for (size_t i = 0; i < a->n; i++) {
		if (wire_name_equal(a->t[i].name, a->t[i].len, name, len))
			return;
	}
	a->t[a->n].name = name;
	a->t[a->n].len = len;
	a->t[a->n].off = off <= ADDITIONAL_PTR_MAX ? off : 0;
	a->t[a->n].glue = a->glue;
	a->n++;
}

void additional_note_rdata(additional_t *a, uint16_t type, const uint8_t *rdata, size_t rdlen,
			   size_t rdoff)
{
	size_t skip;

	switch (type) {
	case WIRE_TYPE_SRV:
		skip = 6; /* priority, weight, port */
		break;
	case WIRE_TYPE_MX:
		skip = 2; /* preference */
		break;
	case WIRE_TYPE_NS:
		skip = 0;
		break;
	default:
		return;
	}
	/* Stored rdata is uncompressed, so the name runs to the end of it. */
	if (rdlen > skip)
		additional_note(a, rdata + skip, rdlen - skip, rdoff + skip);
}

bool additional_is_synth_ns(const conf_t *c, int zi, const uint8_t *lower, size_t len)
{
	return (c->ns_has_v4 || c->ns_has_v6) && len == sizeof(ns1_label) + c->domainlens[zi] &&
	       memcmp(lower, ns1_label, sizeof(ns1_label)) == 0 &&
	       memcmp(lower + sizeof(ns1_label), c->domains[zi], c->domainlens[zi]) == 0;
}

size_t additional_ns_addr(const conf_t *c, int zi, const uint8_t *lower, size_t len, uint16_t type,
			  const uint8_t **addr)
{
	if (!additional_is_synth_ns(c, zi, lower, len))
		return 0;
	if (type == WIRE_TYPE_A && c->ns_has_v4) {
		*addr = c->ns_v4;
		return 4;
	}
	if (type == WIRE_TYPE_AAAA && c->ns_has_v6) {
		*addr = c->ns_v6;
		return 16;
	}
	return 0;
}

/* The owner: a pointer to the target's copy when it has one, else the name itself. */
static int put_owner(wire_writer_t *w, const additional_target_t *t)
{
	if (t->off > 0)
		return wire_put_u16(w, (uint16_t)(0xc000 | t->off));
	return wire_put_bytes(w, t->name, t->len);
}

/*
 * A stored A/AAAA RRset, or nothing. Health applies as in the answer section:
 * DOWN addresses are left out unless every one is DOWN (fail open), so a
 * resolver that uses the additional section does not get the address the
 * answer just steered it away from. @return RRs written.
 */
static uint16_t put_rrset(wire_writer_t *w, const additional_target_t *t, const store_rrset_t *set,
			  store_rtxn_t *txn)
{
	size_t start = w->pos, pos = 0;
	bool health = !store_health_empty(txn), skip_down = false;
	store_rr_t rr;
	uint16_t n = 0;
	int e = 0, rc;

	if (health)
		while (!skip_down && (rc = store_rrset_next(set, &pos, &rr)) == 1)
			skip_down = store_health_get(txn, rr.rdata, rr.rdlen) != STORE_HEALTH_DOWN;
	pos = 0;
	while ((rc = store_rrset_next(set, &pos, &rr)) == 1) {
		if (skip_down && store_health_get(txn, rr.rdata, rr.rdlen) == STORE_HEALTH_DOWN)
			continue;
		e |= put_owner(w, t);
		e |= wire_put_u16(w, set->type);
		e |= wire_put_u16(w, WIRE_CLASS_IN);
		e |= wire_put_bytes(w, rr.wire, 6 + (size_t)rr.rdlen);
		n++;
	}
	if (e < 0 || rc < 0) {
		w->pos = start;
		return 0;
	}
	return n;
}

static uint16_t put_synth(wire_writer_t *w, const additional_target_t *t, uint16_t type,
			  const uint8_t *addr, size_t alen)
{
	size_t start = w->pos;
	int e = put_owner(w, t);

	e |= wire_put_u16(w, type);
	e |= wire_put_u16(w, WIRE_CLASS_IN);
	e |= wire_put_u32(w, ADDITIONAL_NS_TTL);
	e |= wire_put_u16(w, (uint16_t)alen);
	e |= wire_put_bytes(w, addr, alen);
	if (e < 0) {
		w->pos = start;
		return 0;
	}
	return 1;
}

/*
 * A and AAAA of one target. An RRset that does not fit is left out whole and
 * the next one is tried: a smaller one may still fit. @return RRs written.
 */
static uint16_t fill_one(const additional_target_t *t, wire_writer_t *w, store_rtxn_t *txn,
			 const conf_t *c)
{
	static const uint16_t types[2] = {WIRE_TYPE_A, WIRE_TYPE_AAAA};
	uint8_t lower[WIRE_NAME_MAX], key[WIRE_KEY_MAX];
	size_t keylen;
	uint16_t n = 0;

	memcpy(lower, t->name, t->len);
	wire_name_lower(lower, t->len);
	int zi = conf_domain_of(c, lower, t->len);
	if (zi < 0 || wire_name_to_key(lower, t->len, key, &keylen) < 0)
		return 0; /* not ours: the resolver asks its own authority */
	zonecut_t zc;
	if (!t->glue && txn &&
	    (zonecut_find(txn, lower, t->len, c->domainlens[zi], &zc) < 0 ||
	     zc.kind == ZONECUT_REFERRAL))
		return 0; /* below a delegation: glue, which only a referral carries (NSD) */
	for (int i = 0; i < 2; i++) {
		store_lookup_t lk = {0};
		const uint8_t *addr = NULL;
		size_t alen;
		uint16_t k = 0;
		if (txn && store_lookup(txn, key, keylen, types[i], &lk) == 0 && lk.has_rrset) {
			k = put_rrset(w, t, &lk.rrset, txn);
		} else if (!lk.exists &&
			   (alen = additional_ns_addr(c, zi, lower, t->len, types[i], &addr)) > 0) {
			k = put_synth(w, t, types[i], addr, alen);
		}
		n += k;
	}
	return n;
}

uint16_t additional_fill(const additional_t *a, wire_writer_t *w, store_rtxn_t *txn,
			 const conf_t *c)
{
	uint16_t n = 0;

	/* Bounded: at most ADDITIONAL_MAX targets, two lookups each. */
	for (size_t i = 0; i < a->n; i++)
		n += fill_one(&a->t[i], w, txn, c);
	return n;
}
