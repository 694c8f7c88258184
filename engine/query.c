#include "engine/query.h"

#include <arpa/inet.h>
#include <string.h>

#include "common/err.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "engine/additional.h"
#include "engine/edns.h"
#include "engine/select.h"
#include "engine/topn.h"
#include "engine/tsig.h"
#include "engine/zonecut.h"
#include "store/store.h"

#define QUERY_CNAME_MAX 8    /* CNAME links chased inside the store (DESIGN §3) */
#define QUERY_NS_TTL 3600    /* TTL of the synthesized apex NS */
#define QUERY_PTR_MAX 0x3fff /* highest offset a compression pointer can reach */
#define QUERY_TYPE_HINFO 13
#define QUERY_TYPE_TSIG TSIG_TYPE
#define QUERY_RCODE_NOTAUTH TSIG_RCODE_NOTAUTH /* RFC 8945 §5.2: a TSIG we cannot verify */
#define QUERY_OPCODE(f) (((f) >> 11) & 0xf)
/* Request bits a reply copies: opcode, RD, CD. */
#define QUERY_COPY_FLAGS (0x7800 | WIRE_FLAG_RD | WIRE_FLAG_CD)
/* CD means something only to QUERY (RFC 6840 §5.9); Knot copies only RD for other opcodes. */
#define QUERY_COPY_FLAGS_OTHER (0x7800 | WIRE_FLAG_RD)
#define QUERY_EDNS_DO 0x8000 /* DO bit in the OPT TTL's flags (RFC 3225) */

/* Outcome of parsing everything after the header. */
enum { PARSE_OK, PARSE_FORMERR, PARSE_BADVERS };

/* A name that may already sit uncompressed in the response at `off`. */
typedef struct {
	const uint8_t *name; /* wire form */
	size_t len;
	size_t off; /* 0 = no copy yet */
} name_ref_t;

/* Response under construction. Writer errors are OR-ed into err (all are
 * negative), so a failed put anywhere means "does not fit". */
typedef struct {
	query_ctx_t *ctx;
	const conf_t *conf;
	const query_t *q;
	const query_client_t *cl;
	wire_writer_t w;
	int err;
	int store_err;
	uint16_t rcode;
	uint16_t an, ns, ar;
	bool referral;	  /* a delegation answered: AA clear (RFC 1034 §4.3.2 step 3b) */
	additional_t add; /* targets whose addresses go in the additional section */
	uint8_t ns1name[WIRE_NAME_MAX]; /* ns1.<domain>, when the synthesized NS named it */
} build_t;

/*
 * Every field but the arrays, which are written before they are read: zeroing the
 * whole 0.9 KiB (an initializer) was 118 instructions of every answer, a twentieth of
 * query_process. A new field must be set here.
 */
static void build_init(build_t *b, query_ctx_t *ctx, const query_t *q, const query_client_t *cl)
{
	b->ctx = ctx;
	b->conf = ctx->conf;
	b->q = q;
	b->cl = cl;
	memset(&b->w, 0, sizeof(b->w));
	b->err = b->store_err = 0;
	b->rcode = b->an = b->ns = b->ar = 0;
	b->referral = false;
	additional_init(&b->add);
}

static uint64_t rng_next(uint64_t s[2])
{
	uint64_t a = s[0], b = s[1];
	s[0] = b;
	a ^= a << 23;
	s[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
	return s[1] + b;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void query_ctx_init(query_ctx_t *ctx, const struct conf *conf, uint64_t seed)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->conf = conf;
	ctx->rng[0] = splitmix64(&seed);
	ctx->rng[1] = splitmix64(&seed);
	if ((ctx->rng[0] | ctx->rng[1]) == 0)
		ctx->rng[1] = 1; /* xorshift must not start from all zeros */
}

static unsigned stat_of_type(uint16_t t)
{
	switch (t) {
	case WIRE_TYPE_A:
		return STATS_TYPE_A;
	case WIRE_TYPE_AAAA:
		return STATS_TYPE_AAAA;
	case WIRE_TYPE_SRV:
		return STATS_TYPE_SRV;
	case WIRE_TYPE_CNAME:
		return STATS_TYPE_CNAME;
	case WIRE_TYPE_PTR:
		return STATS_TYPE_PTR;
	case WIRE_TYPE_TXT:
		return STATS_TYPE_TXT;
	case WIRE_TYPE_MX:
		return STATS_TYPE_MX;
	case WIRE_TYPE_NS:
		return STATS_TYPE_NS;
	case WIRE_TYPE_SOA:
		return STATS_TYPE_SOA;
	default:
		return STATS_TYPE_OTHER;
	}
}

/* ---- request parsing ---- */

/* Skip one RR of the answer or authority section; names are validated. A TSIG here is
 * misplaced: RFC 8945 §5.1 allows it only as the last RR of the additional section. */
static int skip_rr(wire_reader_t *r)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t len;
	uint16_t type, rdlen;

	if (wire_get_name(r, name, &len) < 0 || wire_get_u16(r, &type) < 0 || wire_skip(r, 6) < 0 ||
	    wire_get_u16(r, &rdlen) < 0 || type == QUERY_TYPE_TSIG)
		return -1;
	return wire_skip(r, rdlen) < 0 ? -1 : 0;
}

/*
 * TSIG rdata (RFC 8945 §4.2), kept to verify it or echo it in an error reply: the
 * fields must frame exactly rdlen bytes, or the message is malformed.
 */
static int parse_tsig_rdata(wire_reader_t *r, uint16_t rdlen, tsig_t *ts)
{
	wire_reader_t t;
	uint16_t maclen;

	if (wire_remaining(r) < rdlen)
		return -1;
	/* The same bytes, ending where the rdata ends (a compressed name may point before). */
	t = *r;
	t.len = r->pos + rdlen;
	if (wire_get_name(&t, ts->alg, &ts->alglen) < 0 ||
	    wire_get_bytes(&t, ts->time_signed, sizeof(ts->time_signed)) < 0 ||
	    wire_get_u16(&t, &ts->fudge) < 0 || wire_get_u16(&t, &maclen) < 0 ||
	    wire_remaining(&t) < maclen)
		return -1;
	ts->maclen = maclen;
	memcpy(ts->mac, t.base + t.pos, maclen < TSIG_MAC_MAX ? maclen : TSIG_MAC_MAX);
	if (wire_skip(&t, maclen) < 0 || wire_get_u16(&t, &ts->orig_id) < 0 ||
	    wire_get_u16(&t, &ts->error) < 0 || wire_get_u16(&t, &ts->otherlen) < 0)
		return -1;
	ts->other_off = t.pos;
	if (wire_skip(&t, ts->otherlen) < 0 || wire_remaining(&t) > 0)
		return -1;
	ts->present = true;
	return wire_skip(r, rdlen);
}

/* One RR of the additional section: only the OPT and a last TSIG matter. */
static int parse_additional_rr(wire_reader_t *r, query_t *q, bool last, uint8_t *version,
			       tsig_t *ts, edns_req_t *er)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t len;
	uint16_t type, class, rdlen;
	uint32_t ttl;
	size_t start = r->pos;

	if (wire_get_name(r, name, &len) < 0 || wire_get_u16(r, &type) < 0 ||
	    wire_get_u16(r, &class) < 0 || wire_get_u32(r, &ttl) < 0 || wire_get_u16(r, &rdlen) < 0)
		return -1;
	if (type == QUERY_TYPE_TSIG) {
		/* RFC 8945 §5.1: anywhere but last is FORMERR (so is a second one). */
		if (!last)
			return -1;
		memcpy(ts->key, name, len);
		ts->keylen = len;
		ts->rr_off = start;
		return parse_tsig_rdata(r, rdlen, ts);
	}
	if (type != WIRE_TYPE_OPT)
		return wire_skip(r, rdlen) < 0 ? -1 : 0;
	/* RFC 6891 §6.1.1: one OPT at most, owned by the root. */
	if (q->edns || len != 1)
		return -1;
	q->edns = true;
	q->edns_udp = class;
	q->edns_do = (ttl & 0x8000) != 0;
	*version = (uint8_t)(ttl >> 16);
	if (wire_remaining(r) < rdlen || edns_parse(r->base + r->pos, rdlen, er) < 0)
		return -1;
	return wire_skip(r, rdlen);
}

static int parse_sections(wire_reader_t *r, const uint16_t cnt[4], query_t *q, tsig_t *ts,
			  edns_req_t *er)
{
	uint8_t version = 0;

	for (uint32_t i = 0; i < (uint32_t)cnt[1] + cnt[2]; i++) {
		if (skip_rr(r) < 0)
			return PARSE_FORMERR;
	}
	for (uint32_t i = 0; i < cnt[3]; i++) {
		if (parse_additional_rr(r, q, i + 1 == cnt[3], &version, ts, er) < 0)
			return PARSE_FORMERR;
	}
	/* Bytes past the counted sections mean the counts lie. */
	if (wire_remaining(r) > 0)
		return PARSE_FORMERR;
	return version > 0 ? PARSE_BADVERS : PARSE_OK;
}

static int parse_question(wire_reader_t *r, query_t *q)
{
	size_t len;

	if (wire_get_name(r, q->qname, &len) < 0 || wire_get_u16(r, &q->qtype) < 0 ||
	    wire_get_u16(r, &q->qclass) < 0)
		return -1;
	q->qnamelen = len;
	return 0;
}

static size_t udp_limit(const query_t *q, const conf_t *c)
{
	size_t lim = q->edns_udp;

	if (!q->edns)
		return 512;
	if (lim > c->edns_bufsize)
		lim = c->edns_bufsize;
	return lim < 512 ? 512 : lim;
}

/* ---- response pieces ---- */

/* Header with zero counts; callers patch the counts they use. */
static int put_header(wire_writer_t *w, const query_t *q, uint16_t flags)
{
	int e = wire_put_u16(w, q->id);
	e |= wire_put_u16(w, flags);
	e |= wire_put_u32(w, 0);
	e |= wire_put_u32(w, 0);
	return e;
}

static uint16_t reply_flags(const query_t *q, uint16_t rcode)
{
	uint16_t copy = QUERY_OPCODE(q->flags) == 0 ? QUERY_COPY_FLAGS : QUERY_COPY_FLAGS_OTHER;

	return (uint16_t)(WIRE_FLAG_QR | (q->flags & copy) | (rcode & 0xf));
}

static int put_question(wire_writer_t *w, const query_t *q)
{
	int e = wire_put_bytes(w, q->qname, q->qnamelen);
	e |= wire_put_u16(w, q->qtype);
	e |= wire_put_u16(w, q->qclass);
	return e;
}

/* The reply's OPT for q: DO, its cookie, NSID when asked and c has one (c may be NULL). */
static edns_reply_t reply_opt(const query_t *q, const conf_t *c, uint16_t bufsize, uint16_t rcode,
			      int ede)
{
	edns_reply_t o = {.udp = bufsize, .rcode = rcode, .do_bit = q->edns_do, .ede = ede};

	if (q->has_cookie)
		o.cookie = q->cookie;
	if (q->nsid && c && c->nsidlen) {
		o.nsid = c->nsid;
		o.nsidlen = c->nsidlen;
	}
	return o;
}

static int put_opt(wire_writer_t *w, const query_t *q, const conf_t *c, uint16_t bufsize,
		   uint16_t rcode, int ede)
{
	edns_reply_t o = reply_opt(q, c, bufsize, rcode, ede);

	return edns_put_opt(w, &o);
}

/* Header, optional question, optional OPT: no records. @return length or 0. */
static size_t reply_bare(const query_t *q, const conf_t *c, uint16_t rcode, int ede, bool question,
			 uint16_t bufsize, uint8_t *resp, size_t cap)
{
	wire_writer_t w;
	int e;

	wire_writer_init(&w, resp, cap);
	if (put_header(&w, q, reply_flags(q, rcode)) < 0)
		return 0;
	e = 0;
	if (question) {
		e |= put_question(&w, q);
		wire_patch_u16(&w, 4, 1);
	}
	if (q->edns) {
		e |= put_opt(&w, q, c, bufsize, rcode, ede);
		wire_patch_u16(&w, 10, 1);
	}
	return e < 0 ? 0 : w.pos;
}

size_t query_reply_rcode(const query_t *q, uint16_t rcode, int ede, uint8_t *resp, size_t cap)
{
	/* No conf here: advertise the limit this query was answered under. */
	size_t adv = q->resp_limit < 512 ? 512 : q->resp_limit > 4096 ? 4096 : q->resp_limit;

	return reply_bare(q, NULL, rcode, ede, q->qnamelen > 0, (uint16_t)adv, resp, cap);
}

/* ---- answer assembly ---- */

static void put_name(build_t *b, name_ref_t *n)
{
	if (n->off > 0 && n->off <= QUERY_PTR_MAX) {
		b->err |= wire_put_u16(&b->w, (uint16_t)(0xc000 | n->off));
		return;
	}
	if (b->w.pos <= QUERY_PTR_MAX)
		n->off = b->w.pos;
	b->err |= wire_put_bytes(&b->w, n->name, n->len);
}

/* Owner, type, class, then the stored ttl||rdlength||rdata. @return rdata offset. */
static size_t put_stored_rr(build_t *b, name_ref_t *owner, uint16_t type, const store_rr_t *rr)
{
	size_t at;

	put_name(b, owner);
	b->err |= wire_put_u16(&b->w, type);
	b->err |= wire_put_u16(&b->w, WIRE_CLASS_IN);
	at = b->w.pos + 6;
	b->err |= wire_put_bytes(&b->w, rr->wire, 6 + (size_t)rr->rdlen);
	b->an++;
	return at;
}

static void put_rrset_plain(build_t *b, name_ref_t *owner, const store_rrset_t *set)
{
	store_rr_t rr;
	size_t pos = 0;
	int rc;

	while ((rc = store_rrset_next(set, &pos, &rr)) == 1) {
		size_t rdoff = put_stored_rr(b, owner, set->type, &rr);
		additional_note_rdata(&b->add, set->type, rr.rdata, rr.rdlen, rdoff);
	}
	if (rc < 0)
		b->store_err = rc;
}

/* Every address, starting at a random one: no health records to honour. */
static void put_rrset_rotated(build_t *b, name_ref_t *owner, const store_rrset_t *set, size_t k)
{
	store_rr_t rr;
	size_t pos = 0, i = 0;
	int rc;

	while ((rc = store_rrset_next(set, &pos, &rr)) == 1) {
		if (i++ >= k)
			put_stored_rr(b, owner, set->type, &rr);
	}
	pos = 0;
	for (i = 0; i < k && (rc = store_rrset_next(set, &pos, &rr)) == 1; i++)
		put_stored_rr(b, owner, set->type, &rr);
	if (rc < 0)
		b->store_err = rc;
}

static unsigned rrset_mode(const build_t *b, const store_rrset_t *set)
{
	if (set->mode != STORE_MODE_DEFAULT)
		return set->mode;
	if (b->conf->random_one)
		return STORE_MODE_RANDOM_ONE;
	if (b->conf->hone_one)
		return STORE_MODE_HONE_ONE;
	return STORE_MODE_ALL;
}

static void put_rrset_selected(build_t *b, name_ref_t *owner, const store_rrset_t *set,
			       unsigned mode, bool health)
{
	select_addr_t cand[SELECT_MAX];
	const uint8_t *wires[SELECT_MAX];
	uint16_t order[SELECT_MAX];
	store_rr_t rr;
	size_t pos = 0, n = 0;
	int rc = 0;

	while (n < SELECT_MAX && (rc = store_rrset_next(set, &pos, &rr)) == 1) {
		cand[n].addr = rr.rdata;
		cand[n].len = rr.rdlen;
		/* A failed health read counts as UP: fail open, never fail the answer. */
		cand[n].down = health && store_health_get(b->ctx->txn, rr.rdata, rr.rdlen) ==
					     STORE_HEALTH_DOWN;
		wires[n++] = rr.wire;
	}
	if (n < SELECT_MAX && rc < 0) {
		b->store_err = rc;
		return;
	}
	size_t k =
	    select_answer(mode, cand, n, b->cl->addr, b->cl->addrlen, rng_next(b->ctx->rng), order);
	for (size_t i = 0; i < k; i++) {
		rr.wire = wires[order[i]];
		rr.rdlen = cand[order[i]].len;
		put_stored_rr(b, owner, set->type, &rr);
	}
}

static void put_rrset(build_t *b, name_ref_t *owner, const store_rrset_t *set)
{
	if (set->count <= 1 || (set->type != WIRE_TYPE_A && set->type != WIRE_TYPE_AAAA)) {
		put_rrset_plain(b, owner, set);
		return;
	}
	unsigned mode = rrset_mode(b, set);
	bool health = !store_health_empty(b->ctx->txn);
	if (mode == STORE_MODE_ALL && !health) {
		put_rrset_rotated(b, owner, set, (size_t)(rng_next(b->ctx->rng) % set->count));
		return;
	}
	put_rrset_selected(b, owner, set, mode, health);
}

/* Patch an rdlength written at `at` once the rdata (ending at pos) is known. */
static void patch_rdlen(build_t *b, size_t at)
{
	if (b->err == 0)
		wire_patch_u16(&b->w, at, (uint16_t)(b->w.pos - at - 2));
}

static void put_prefixed(build_t *b, const char *label, name_ref_t *zone)
{
	size_t n = strlen(label);

	b->err |= wire_put_u8(&b->w, (uint8_t)n);
	b->err |= wire_put_bytes(&b->w, label, n);
	put_name(b, zone);
}

/* The synthesized SOA (DESIGN §3); answer or authority section. */
static void put_soa(build_t *b, name_ref_t *zone, bool authority)
{
	uint32_t minimum = b->conf->min_ttl;
	size_t at;

	put_name(b, zone);
	b->err |= wire_put_u16(&b->w, WIRE_TYPE_SOA);
	b->err |= wire_put_u16(&b->w, WIRE_CLASS_IN);
	/* Negative TTL = min(SOA TTL, minimum): both are min_ttl. */
	b->err |= wire_put_u32(&b->w, minimum);
	at = b->w.pos;
	b->err |= wire_put_u16(&b->w, 0);
	put_prefixed(b, "ns1", zone);
	put_prefixed(b, "hostmaster", zone);
	b->err |= wire_put_u32(&b->w, (uint32_t)store_generation(b->ctx->txn));
	b->err |= wire_put_u32(&b->w, 3600);
	b->err |= wire_put_u32(&b->w, 600);
	b->err |= wire_put_u32(&b->w, 86400);
	b->err |= wire_put_u32(&b->w, minimum);
	patch_rdlen(b, at);
	if (authority)
		b->ns++;
	else
		b->an++;
}

static void put_synth_ns(build_t *b, name_ref_t *zone)
{
	size_t at;

	put_name(b, zone);
	b->err |= wire_put_u16(&b->w, WIRE_TYPE_NS);
	b->err |= wire_put_u16(&b->w, WIRE_CLASS_IN);
	b->err |= wire_put_u32(&b->w, QUERY_NS_TTL);
	at = b->w.pos;
	b->err |= wire_put_u16(&b->w, 0);
	put_prefixed(b, "ns1", zone);
	patch_rdlen(b, at);
	b->an++;
	/* "\3ns1" then a pointer to the zone: a valid compression target for the glue. */
	b->ns1name[0] = 3;
	memcpy(b->ns1name + 1, "ns1", 3);
	memcpy(b->ns1name + 4, zone->name, zone->len);
	additional_note(&b->add, b->ns1name, 4 + zone->len, at + 2);
}

/* ns1.<domain> without data of its own: the configured ns-address, else NODATA. */
static void put_synth_ns_addr(build_t *b, name_ref_t *cur, int zi, const uint8_t *lower,
			      name_ref_t *zone)
{
	const uint8_t *addr = NULL;
	size_t alen = additional_ns_addr(b->conf, zi, lower, cur->len, b->q->qtype, &addr);

	if (alen == 0) {
		put_soa(b, zone, true);
		return;
	}
	put_name(b, cur);
	b->err |= wire_put_u16(&b->w, b->q->qtype);
	b->err |= wire_put_u16(&b->w, WIRE_CLASS_IN);
	b->err |= wire_put_u32(&b->w, QUERY_NS_TTL);
	b->err |= wire_put_u16(&b->w, (uint16_t)alen);
	b->err |= wire_put_bytes(&b->w, addr, alen);
	b->an++;
}

/* RFC 8482: a minimal answer to ANY instead of every rrset. */
static void put_any_hinfo(build_t *b, name_ref_t *owner)
{
	static const uint8_t rdata[] = {7, 'R', 'F', 'C', '8', '4', '8', '2', 0};

	put_name(b, owner);
	b->err |= wire_put_u16(&b->w, QUERY_TYPE_HINFO);
	b->err |= wire_put_u16(&b->w, WIRE_CLASS_IN);
	b->err |= wire_put_u32(&b->w, b->conf->min_ttl);
	b->err |= wire_put_u16(&b->w, sizeof(rdata));
	b->err |= wire_put_bytes(&b->w, rdata, sizeof(rdata));
	b->an++;
}

/* The zone apex as a name_ref: a pointer into `cur`'s copy when it has one. */
static name_ref_t zone_ref(const conf_t *c, int zi, const name_ref_t *cur)
{
	name_ref_t z = {c->domains[zi], c->domainlens[zi], 0};

	if (cur->off > 0)
		z.off = cur->off + cur->len - z.len;
	return z;
}

/* Walk state for one name of the CNAME chain. */
typedef struct {
	name_ref_t cur;
	uint8_t lower[WIRE_NAME_MAX]; /* cur, lowercased, for conf matching */
	int zi;
	const uint8_t *seen[QUERY_CNAME_MAX + 1];
	size_t seenlen[QUERY_CNAME_MAX + 1];
	unsigned links;
} chase_t;

static bool chase_seen(const chase_t *ch, const uint8_t *name, size_t len)
{
	for (unsigned i = 0; i <= ch->links; i++) {
		if (wire_name_equal(ch->seen[i], ch->seenlen[i], name, len))
			return true;
	}
	return false;
}

/*
 * Add the CNAME at cur and move cur to its target when the target is local.
 * @return true to look the target up, false when the chain stops here.
 */
static bool follow_cname(build_t *b, chase_t *ch, const store_rrset_t *cname)
{
	store_rr_t rr;
	size_t pos = 0;
	int rc = store_rrset_next(cname, &pos, &rr);

	if (rc != 1) {
		b->store_err = rc < 0 ? rc : ERR_STORE;
		return false;
	}
	size_t rdoff = put_stored_rr(b, &ch->cur, WIRE_TYPE_CNAME, &rr);
	if (wire_name_check(rr.rdata, rr.rdlen) < 0 || chase_seen(ch, rr.rdata, rr.rdlen))
		return false;
	memcpy(ch->lower, rr.rdata, rr.rdlen);
	wire_name_lower(ch->lower, rr.rdlen);
	int zi = conf_domain_of(b->conf, ch->lower, rr.rdlen);
	if (zi < 0)
		return false; /* not ours: the resolver chases it */
	ch->links++;
	ch->seen[ch->links] = rr.rdata;
	ch->seenlen[ch->links] = rr.rdlen;
	ch->cur.name = rr.rdata;
	ch->cur.len = rr.rdlen;
	ch->cur.off = rdoff <= QUERY_PTR_MAX ? rdoff : 0;
	ch->zi = zi;
	return true;
}

/* Below a zone cut: the cut's NS in authority, glue in additional, not authoritative. */
static void put_referral(build_t *b, const chase_t *ch, const zonecut_t *zc)
{
	name_ref_t owner = {ch->cur.name + zc->cut_off, ch->cur.len - zc->cut_off,
			    ch->cur.off > 0 ? ch->cur.off + zc->cut_off : 0};
	uint16_t an = b->an;

	b->add.glue = true;
	put_rrset_plain(b, &owner, &zc->ns);
	b->add.glue = false;
	b->ns = (uint16_t)(b->ns + b->an - an);
	b->an = an;
	/* After CNAMEs of ours the answer is still authoritative for them. */
	b->referral = an == 0;
}

/*
 * RFC 4592: a name that does not exist is answered from "*.<closest encloser>"
 * when that exists, with the question's name as owner. @return as answer_name.
 */
static bool answer_wildcard(build_t *b, chase_t *ch, name_ref_t *zone)
{
	uint16_t qtype = b->q->qtype;
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen, enc = 0;
	store_lookup_t lk = {0};
	int rc = 0;

	/* No "*" label anywhere in the snapshot: lk stays empty, NXDOMAIN, no walk. */
	if (store_may_have_wildcards(b->ctx->txn))
		rc = zonecut_encloser(b->ctx->txn, ch->lower, ch->cur.len,
				      b->conf->domainlens[ch->zi], &enc);
	if (rc < 0) {
		b->store_err = rc;
		return false;
	}
	/* A name too long to have a wildcard sibling simply has none. */
	if (store_may_have_wildcards(b->ctx->txn) &&
	    zonecut_wildcard_key(ch->lower, ch->cur.len, enc, key, &keylen) == 0 &&
	    (rc = store_lookup(b->ctx->txn, key, keylen, qtype, &lk)) < 0) {
		b->store_err = rc;
		return false;
	}
	if (lk.has_rrset) {
		put_rrset(b, &ch->cur, &lk.rrset);
	} else if (lk.has_cname && qtype != WIRE_TYPE_CNAME) {
		return ch->links < QUERY_CNAME_MAX && follow_cname(b, ch, &lk.cname);
	} else if (lk.exists && qtype == WIRE_TYPE_ANY) {
		put_any_hinfo(b, &ch->cur);
	} else {
		/* A wildcard without the type is NODATA (RFC 4592 §2.2.1). */
		b->rcode = lk.exists ? WIRE_RCODE_NOERROR : WIRE_RCODE_NXDOMAIN;
		put_soa(b, zone, true);
	}
	return false;
}

/* store_iter callback: stop (2) at the first rrset of a name below the start. */
static int below_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	(void)key;
	(void)set;
	return keylen != *(const size_t *)ctx ? 2 : 0;
}

/*
 * SkyDNS/CoreDNS etcd wildcards: a first label "*" or "any" in a question that
 * names nothing matches every name one label below its parent E. Each of those
 * answers with its whole subtree, and E (having children) answers with exactly
 * their union, which the etcd watcher already derived, so `*.E` is E's rrset
 * under the question's name. Only for names fed by etcd (an imported zone keeps
 * RFC 4592), only when E has children (a leaf has nothing below it), and not at
 * the apex, whose own records the watcher does not derive. A label "*" or "any"
 * further down is not matched (CoreDNS walks the keys for that per query).
 * @return true when it answered (rcode and sections set).
 */
static bool answer_etcd_wildcard(build_t *b, chase_t *ch, name_ref_t *zone)
{
	const uint8_t *n = ch->lower;
	size_t first = (size_t)n[0] + 1, plen = ch->cur.len - first;
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen;
	store_lookup_t lk;
	store_rr_t rr;
	size_t pos = 0;
	int etcd, rc;

	if (!((n[0] == 1 && n[1] == '*') || (n[0] == 3 && memcmp(n + 1, "any", 3) == 0)) ||
	    plen <= b->conf->domainlens[ch->zi] || b->q->qtype == WIRE_TYPE_CNAME)
		return false;
	if ((etcd = store_source_find(b->ctx->txn, "etcd")) < 0 ||
	    wire_name_to_key(n + first, plen, key, &keylen) < 0 ||
	    store_iter(b->ctx->txn, key, keylen, below_cb, &keylen) != 2)
		return false; /* no etcd source, or E has no children */
	if ((rc = store_lookup(b->ctx->txn, key, keylen, b->q->qtype, &lk)) < 0) {
		b->store_err = rc;
		return true;
	}
	if (!lk.has_rrset) {
		b->rcode = WIRE_RCODE_NOERROR; /* names match, none with the type: NODATA */
		put_soa(b, zone, true);
		return true;
	}
	while ((rc = store_rrset_next(&lk.rrset, &pos, &rr)) == 1)
		if (rr.source_id != etcd)
			return false;
	if (rc < 0) {
		b->store_err = rc;
		return true;
	}
	put_rrset(b, &ch->cur, &lk.rrset);
	return true;
}

/*
 * Has the Kubernetes watcher ever committed a list? It writes dns-version.<zone>
 * TXT in the txn of its first full list, so a store without it has never synced
 * and a missing name may only be missing because the list has not finished.
 * Asked on negative answers in the cluster zone only (one exact get).
 */
static bool k8s_synced(build_t *b, const chase_t *ch)
{
	static const uint8_t label[] = {11, 'd', 'n', 's', '-', 'v', 'e', 'r', 's', 'i', 'o', 'n'};
	const conf_t *c = b->conf;
	uint8_t name[WIRE_NAME_MAX], key[WIRE_KEY_MAX];
	size_t zlen = c->domainlens[ch->zi], keylen;

	if (sizeof(label) + zlen > sizeof(name))
		return true;
	memcpy(name, label, sizeof(label));
	memcpy(name + sizeof(label), c->domains[ch->zi], zlen);
	if (wire_name_to_key(name, sizeof(label) + zlen, key, &keylen) < 0)
		return true;
	return store_has_rrset(b->ctx->txn, key, keylen, WIRE_TYPE_TXT) == 1;
}

/* "a-b-c-d" -> 4 bytes. @return true when the label spells an IPv4 address so. */
static bool parse_dashed_v4(const uint8_t *l, size_t len, uint8_t out[4])
{
	unsigned part = 0, v = 0, digits = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || l[i] == '-') {
			if (digits == 0 || part > 3)
				return false;
			out[part++] = (uint8_t)v;
			v = digits = 0;
		} else if (l[i] >= '0' && l[i] <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(l[i] - '0');
			digits++;
			if (v > 255)
				return false;
		} else {
			return false;
		}
	}
	return part == 4;
}

/* "2001-db8--1" -> 16 bytes: an IPv6 address with its colons spelled as dashes, as
 * Kubernetes names IPv6 pods. Only hex digits and dashes; inet_pton (pure: parses a
 * string) decides the rest, so "::" compression and its limits are the address's own. */
static bool parse_dashed_v6(const uint8_t *l, size_t len, uint8_t out[16])
{
	char text[INET6_ADDRSTRLEN];

	if (len < 2 || len >= sizeof(text))
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = l[i];
		if (ch == '-')
			text[i] = ':';
		else if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))
			text[i] = (char)ch;
		else
			return false;
	}
	text[len] = 0;
	return inet_pton(AF_INET6, text, out) == 1;
}

/*
 * [Kubernetes] pods = insecure: a-b-c-d.<ns>.pod.<zone> answers A a.b.c.d (and an
 * IPv6 pod's 2001-db8--1.<ns>.pod.<zone> AAAA 2001:db8::1) without
 * a store lookup, as CoreDNS's "pods insecure" (the spec's pod A records; the
 * conformance tests ask for their own). @return true when cur is such a name.
 */
static bool answer_pod(build_t *b, chase_t *ch, name_ref_t *zone)
{
	static const uint8_t pod[] = {3, 'p', 'o', 'd'};
	const conf_t *c = b->conf;
	const uint8_t *n = ch->lower;
	size_t len = ch->cur.len, p1, p2, iplen;
	uint16_t type;
	uint8_t ip[16];

	if (ch->zi != c->k8s_zone || c->k8s_pods != CONF_PODS_INSECURE || len < 1 || n[0] == 0)
		return false;
	p1 = 1 + (size_t)n[0];
	if (p1 >= len || n[p1] == 0)
		return false;
	p2 = p1 + 1 + (size_t)n[p1];
	if (p2 + sizeof(pod) + c->domainlens[ch->zi] != len ||
	    memcmp(n + p2, pod, sizeof(pod)) != 0)
		return false;
	if (parse_dashed_v4(n + 1, n[0], ip)) {
		type = WIRE_TYPE_A;
		iplen = 4;
	} else if (parse_dashed_v6(n + 1, n[0], ip)) {
		type = WIRE_TYPE_AAAA; /* 2001-db8--1.<ns>.pod.<zone> (spec 1.1.0, IPv6 pods) */
		iplen = 16;
	} else {
		return false;
	}
	if (b->q->qtype != type && b->q->qtype != WIRE_TYPE_ANY) {
		put_soa(b, zone, true); /* the name exists: NODATA */
		return true;
	}
	put_name(b, &ch->cur);
	b->err |= wire_put_u16(&b->w, type);
	b->err |= wire_put_u16(&b->w, WIRE_CLASS_IN);
	b->err |= wire_put_u32(&b->w, c->k8s_ttl);
	b->err |= wire_put_u16(&b->w, (uint16_t)iplen);
	b->err |= wire_put_bytes(&b->w, ip, iplen);
	b->an++;
	return true;
}

/* Answer for ch->cur. @return true when a CNAME moved the chase on. */
static bool answer_name(build_t *b, chase_t *ch)
{
	const conf_t *c = b->conf;
	uint16_t qtype = b->q->qtype;
	bool apex = ch->cur.len == c->domainlens[ch->zi];
	name_ref_t zone = zone_ref(c, ch->zi, &ch->cur);
	store_lookup_t lk;
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen;

	/* A UDP IXFR (route_xfr) gets the current SOA alone (RFC 1995 §2). */
	if (apex && (qtype == WIRE_TYPE_SOA || qtype == WIRE_TYPE_IXFR)) {
		put_soa(b, &ch->cur, false);
		return false;
	}
	if (answer_pod(b, ch, &zone))
		return false;
	if (wire_name_to_key(ch->lower, ch->cur.len, key, &keylen) < 0 || b->ctx->txn == NULL) {
		b->store_err = ERR_STORE;
		return false;
	}
	zonecut_t zc = {.kind = ZONECUT_EXISTS};
	int rc = apex ? 0
		      : zonecut_find_key(b->ctx->txn, ch->lower, ch->cur.len, key, keylen,
					 c->domainlens[ch->zi], &zc);
	if (rc < 0) {
		b->store_err = rc;
		return false;
	}
	if (zc.kind == ZONECUT_REFERRAL) {
		put_referral(b, ch, &zc);
		return false;
	}
	rc = store_lookup(b->ctx->txn, key, keylen, qtype, &lk);
	if (rc < 0) {
		b->store_err = rc;
		return false;
	}
	if (lk.has_rrset) {
		put_rrset(b, &ch->cur, &lk.rrset);
	} else if (apex && qtype == WIRE_TYPE_NS) {
		put_synth_ns(b, &ch->cur);
	} else if (lk.has_cname && qtype != WIRE_TYPE_CNAME) {
		/* Chain too long: stop with what was collected (NOERROR). */
		return ch->links < QUERY_CNAME_MAX && follow_cname(b, ch, &lk.cname);
	} else if (!lk.exists && additional_is_synth_ns(c, ch->zi, ch->lower, ch->cur.len)) {
		put_synth_ns_addr(b, &ch->cur, ch->zi, ch->lower, &zone);
	} else if (ch->zi == c->k8s_zone && !k8s_synced(b, ch)) {
		b->store_err = ERR_STORE; /* SERVFAIL: "no such name" is not known yet */
	} else if (!lk.exists && !apex) {
		if (answer_etcd_wildcard(b, ch, &zone))
			return false;
		return answer_wildcard(b, ch, &zone);
	} else if (qtype == WIRE_TYPE_ANY && (lk.exists || apex)) {
		put_any_hinfo(b, &ch->cur);
	} else {
		b->rcode = (lk.exists || apex) ? WIRE_RCODE_NOERROR : WIRE_RCODE_NXDOMAIN;
		put_soa(b, &zone, true);
	}
	return false;
}

static void answer_local(build_t *b, const uint8_t *lower, int zi)
{
	chase_t ch;

	ch.cur.name = b->q->qname;
	ch.cur.len = b->q->qnamelen;
	ch.cur.off = WIRE_HDR_LEN;
	memcpy(ch.lower, lower, b->q->qnamelen);
	ch.zi = zi;
	ch.seen[0] = b->q->qname;
	ch.seenlen[0] = b->q->qnamelen;
	ch.links = 0;
	/* Bounded: follow_cname stops after QUERY_CNAME_MAX links. */
	while (answer_name(b, &ch) && b->err == 0 && b->store_err == 0)
		;
}

/* Finish: TC or SERVFAIL fallbacks, OPT, header counts. @return length. */
static size_t finish(build_t *b, size_t qend, size_t optroom, uint16_t flags)
{
	if (b->store_err < 0) {
		b->rcode = WIRE_RCODE_SERVFAIL;
		flags &= (uint16_t)~WIRE_FLAG_AA;
	}
	if (b->store_err < 0 || b->err < 0) {
		/* Never a partial RRset: all records go, the client retries over TCP. */
		if (b->store_err == 0) {
			flags |= WIRE_FLAG_TC;
			stats_inc(&b->ctx->stats, STATS_TRUNCATED);
		}
		b->w.pos = qend;
		b->an = b->ns = 0;
	} else {
		/* Last: optional records use only the room the answer left (RFC 2181 §9). */
		b->ar = additional_fill(&b->add, &b->w, b->ctx->txn, b->conf);
	}
	b->w.cap += optroom;
	wire_patch_u16(&b->w, 2, reply_flags(b->q, b->rcode) | flags);
	wire_patch_u16(&b->w, 4, 1);
	wire_patch_u16(&b->w, 6, b->an);
	wire_patch_u16(&b->w, 8, b->ns);
	wire_patch_u16(&b->w, 10, b->ar);
	if (b->q->edns) {
		if (put_opt(&b->w, b->q, b->conf, b->conf->edns_bufsize, b->rcode, EDNS_EDE_NONE) <
		    0)
			return 0;
		wire_patch_u16(&b->w, 10, (uint16_t)(b->ar + 1));
	}
	return b->w.pos;
}

static size_t reply_local(query_ctx_t *ctx, const query_t *q, const query_client_t *cl,
			  const uint8_t *lower, int zi, uint8_t *resp, size_t cap, uint16_t *rcode)
{
	build_t b;
	size_t lim = q->resp_limit < cap ? q->resp_limit : cap;
	size_t optroom = 0;

	if (q->edns) {
		edns_reply_t opt = reply_opt(q, ctx->conf, 0, 0, EDNS_EDE_NONE);
		optroom = edns_opt_len(&opt);
	}

	build_init(&b, ctx, q, cl);
	if (lim < WIRE_HDR_LEN + q->qnamelen + 4 + optroom)
		return 0;
	wire_writer_init(&b.w, resp, lim - optroom);
	if ((put_header(&b.w, q, 0) | put_question(&b.w, q)) < 0)
		return 0;
	size_t qend = b.w.pos;
	answer_local(&b, lower, zi);
	size_t len = finish(&b, qend, optroom, b.store_err < 0 || b.referral ? 0 : WIRE_FLAG_AA);
	*rcode = b.rcode;
	return len;
}

/* ---- dispatch ---- */

static bool forwarding_on(const conf_t *c)
{
	return c->nnameservers > 0 || c->nameservers_set || c->nsubdomains > 0;
}

static bool in_subdomain_server(const conf_t *c, const uint8_t *lower, size_t len)
{
	for (size_t i = 0; i < c->nsubdomains; i++) {
		if (wire_name_is_subdomain(lower, len, c->subdomains[i].name,
					   c->subdomains[i].namelen))
			return true;
	}
	return false;
}

static void count_rcode(query_ctx_t *ctx, uint16_t rcode)
{
	stats_inc(&ctx->stats, rcode < 16		       ? STATS_RCODE0 + rcode
			       : rcode == EDNS_RCODE_BADCOOKIE ? STATS_BADCOOKIE
							       : STATS_BADVERS);
}

static int reply_rcode(query_ctx_t *ctx, const query_t *q, uint16_t rcode, int ede, bool question,
		       uint8_t *resp, size_t cap, size_t *resplen)
{
	size_t len =
	    reply_bare(q, ctx->conf, rcode, ede, question, ctx->conf->edns_bufsize, resp, cap);

	if (len == 0) {
		stats_inc(&ctx->stats, STATS_DROPPED);
		return QUERY_DROP;
	}
	count_rcode(ctx, rcode);
	*resplen = len;
	return QUERY_REPLY;
}

/*
 * NOTAUTH with an unsigned TSIG echoing the request's (RFC 8945 §5.2): a key we do not
 * know (BADKEY) or a MAC that does not verify (BADSIG). Two long names and a long
 * question can exceed a UDP limit: then the question goes (NSD never sends it), and
 * last the TSIG.
 */
static int reply_unsigned(query_ctx_t *ctx, const query_t *q, const tsig_t *ts, uint16_t error,
			  uint8_t *resp, size_t cap, size_t *resplen)
{
	size_t lim = q->resp_limit < cap ? q->resp_limit : cap, len = 0;

	for (int question = 1; question >= 0 && len == 0; question--) {
		len = reply_bare(q, ctx->conf, QUERY_RCODE_NOTAUTH, EDNS_EDE_NONE, question,
				 ctx->conf->edns_bufsize, resp, lim);
		if (len > 0)
			len = tsig_put_unsigned(ts, error, resp, len, lim);
	}
	if (len == 0)
		return reply_rcode(ctx, q, QUERY_RCODE_NOTAUTH, EDNS_EDE_NONE, true, resp, cap,
				   resplen);
	stats_inc(&ctx->stats, STATS_RCODE0 + QUERY_RCODE_NOTAUTH);
	*resplen = len;
	return QUERY_REPLY;
}

/*
 * An IXFR over UDP by an allowed client: the current SOA alone (RFC 1995 §2). A client as
 * new as we are is done; an older one sees the serial moved and comes back over TCP.
 */
static int reply_ixfr_udp(query_ctx_t *ctx, const query_t *q, const query_client_t *cl,
			  const uint8_t *lower, int zi, uint8_t *resp, size_t cap, size_t *resplen)
{
	uint16_t rcode = 0;
	size_t len = reply_local(ctx, q, cl, lower, zi, resp, cap, &rcode);

	if (len == 0) {
		stats_inc(&ctx->stats, STATS_DROPPED);
		return QUERY_DROP;
	}
	count_rcode(ctx, rcode);
	*resplen = len;
	return QUERY_REPLY;
}

/*
 * AXFR and IXFR (answered as AXFR, RFC 1995 §4): over TCP, of a local domain's apex, by a
 * client in xfr-allow, signed with an xfr-key when those are set; the caller streams it
 * (engine/xfr.h), signed when the request was. An allowed IXFR over UDP gets the SOA. Everything
 * else is REFUSED with the reason as EDE: 20 not a zone of ours, 18 not allowed, 21 an AXFR over
 * UDP.
 */
static int route_xfr(query_ctx_t *ctx, const query_t *q, const query_client_t *cl, uint8_t *resp,
		     size_t cap, size_t *resplen)
{
	const conf_t *c = ctx->conf;
	uint8_t lower[WIRE_NAME_MAX];
	int zi, ede = EDNS_EDE_NONE;

	memcpy(lower, q->qname, q->qnamelen);
	wire_name_lower(lower, q->qnamelen);
	zi = conf_domain_of(c, lower, q->qnamelen);
	if (zi < 0 || c->domainlens[zi] != q->qnamelen)
		ede = EDNS_EDE_NOT_AUTHORITATIVE;
	else if (!conf_xfr_allowed(c, cl->addr, cl->addrlen))
		ede = EDNS_EDE_PROHIBITED;
	else if (c->nxfr_keys > 0 && !(ctx->tsig.on && c->tsig_keys[ctx->tsig.key].xfr))
		ede =
		    EDNS_EDE_PROHIBITED; /* xfr-key: signed with one of those keys, or not at all */
	else if (!cl->tcp && q->qtype == WIRE_TYPE_IXFR)
		return reply_ixfr_udp(ctx, q, cl, lower, zi, resp, cap, resplen);
	else if (!cl->tcp)
		ede = EDNS_EDE_NOT_SUPPORTED;
	if (ede != EDNS_EDE_NONE)
		return reply_rcode(ctx, q, WIRE_RCODE_REFUSED, ede, true, resp, cap, resplen);
	stats_inc(&ctx->stats, STATS_RCODE0);
	return QUERY_XFR;
}

/* After a valid question: class, type, and whose name it is. */
static int route(query_ctx_t *ctx, const query_t *q, const query_client_t *cl, uint8_t *resp,
		 size_t cap, size_t *resplen)
{
	const conf_t *c = ctx->conf;
	uint8_t lower[WIRE_NAME_MAX];
	uint16_t rcode = 0;

	stats_inc(&ctx->stats, stat_of_type(q->qtype));
	if (q->qclass != WIRE_CLASS_IN && q->qclass != WIRE_CLASS_ANY)
		return reply_rcode(ctx, q, WIRE_RCODE_REFUSED, EDNS_EDE_NOT_SUPPORTED, true, resp,
				   cap, resplen);
	if (q->qtype == WIRE_TYPE_AXFR || q->qtype == WIRE_TYPE_IXFR)
		return route_xfr(ctx, q, cl, resp, cap, resplen);
	memcpy(lower, q->qname, q->qnamelen);
	wire_name_lower(lower, q->qnamelen);
	if (ctx->topn) {
		topn_set_now(ctx->topn, ctx->now_s);
		topn_sample(ctx->topn, lower, q->qnamelen);
	}
	/* A subDomainServers entry wins even inside a local domain. */
	int zi =
	    in_subdomain_server(c, lower, q->qnamelen) ? -1 : conf_domain_of(c, lower, q->qnamelen);
	if (zi < 0) {
		if (!forwarding_on(c))
			return reply_rcode(ctx, q, WIRE_RCODE_REFUSED, EDNS_EDE_NOT_AUTHORITATIVE,
					   true, resp, cap, resplen);
		stats_inc(&ctx->stats, STATS_FORWARD);
		return QUERY_FORWARD;
	}
	size_t len = reply_local(ctx, q, cl, lower, zi, resp, cap, &rcode);
	if (len == 0) {
		stats_inc(&ctx->stats, STATS_DROPPED);
		return QUERY_DROP;
	}
	count_rcode(ctx, rcode);
	*resplen = len;
	return QUERY_REPLY;
}

static void query_reset(query_t *q)
{
	q->id = q->flags = q->qtype = q->qclass = 0;
	q->qnamelen = 0;
	q->edns = q->edns_do = q->nsid = q->has_cookie = q->cookie_ok = false;
	q->edns_udp = 0;
	q->resp_limit = 512;
}

/* What the reply answers of the query's options: NSID, and a fresh cookie (RFC 7873 §5.2).
 * @return true when the policy wants BADCOOKIE (RFC 7873 §5.2.3: cookies required, a UDP
 * client with a cookie but no valid server cookie; over TCP the path is proven). */
static bool edns_answer(const query_ctx_t *ctx, query_t *q, edns_req_t *er,
			const query_client_t *cl)
{
	q->nsid = er->nsid;
	if (!er->cookie || ctx->conf->cookies == CONF_COOKIES_OFF)
		return false;
	edns_cookie(er, ctx->conf->cookie_secret, !ctx->conf->cookie_secret_set, cl->addr,
		    cl->addrlen, ctx->now_s, q->cookie);
	q->has_cookie = true;
	q->cookie_ok = er->cookie_ok;
	return !q->cookie_ok && !cl->tcp && ctx->conf->cookies == CONF_COOKIES_REQUIRE;
}

/*
 * A signed request (RFC 8945 §5.2): a key we do not know or a MAC that does not verify
 * gets an unsigned NOTAUTH; a good MAC outside the fudge a signed BADTIME; else the
 * answer, signed, with the TSIG's room kept free. A signed query is not forwarded (the
 * upstream does not know our keys): REFUSED. A transfer leaves the signer in ctx->tsig.
 */
static int reply_signed(query_ctx_t *ctx, query_t *q, const query_client_t *cl, const uint8_t *req,
			const tsig_t *ts, int pr, bool badcookie, uint8_t *resp, size_t cap,
			size_t *resplen)
{
	const conf_t *c = ctx->conf;
	int err = tsig_verify(c, req, ts, ctx->now_s, &ctx->tsig), ret;
	size_t lim = q->resp_limit < cap ? q->resp_limit : cap, room, len;

	if (err == TSIG_BADKEY || err == TSIG_BADSIG) {
		stats_inc(&ctx->stats, err == TSIG_BADKEY ? STATS_TSIG_BADKEY : STATS_TSIG_BADSIG);
		return reply_unsigned(ctx, q, ts, (uint16_t)err, resp, cap, resplen);
	}
	room = tsig_room(c, ctx->tsig.key);
	if (lim < room + WIRE_HDR_LEN + q->qnamelen + 4 + 11) {
		/* A long key name and a 512-byte UDP limit: no room to sign anything. TC, so
		 * the client asks again over TCP (where room is plenty). */
		ctx->tsig.on = false;
		len = reply_bare(q, c, 0, EDNS_EDE_NONE, true, c->edns_bufsize, resp, lim);
		if (len == 0) {
			stats_inc(&ctx->stats, STATS_DROPPED);
			return QUERY_DROP;
		}
		wire_write_u16(resp + 2, (uint16_t)(wire_read_u16(resp + 2) | WIRE_FLAG_TC));
		stats_inc(&ctx->stats, STATS_TRUNCATED);
		count_rcode(ctx, 0);
		*resplen = len;
		return QUERY_REPLY;
	}
	q->resp_limit = lim - room;
	if (err == TSIG_BADTIME) {
		stats_inc(&ctx->stats, STATS_TSIG_BADTIME);
		ret = reply_rcode(ctx, q, QUERY_RCODE_NOTAUTH, EDNS_EDE_NONE, true, resp,
				  lim - room, resplen);
	} else if (pr == PARSE_BADVERS)
		ret = reply_rcode(ctx, q, WIRE_RCODE_BADVERS, EDNS_EDE_NONE, true, resp, lim - room,
				  resplen);
	else if (badcookie)
		ret = reply_rcode(ctx, q, EDNS_RCODE_BADCOOKIE, EDNS_EDE_NONE, true, resp,
				  lim - room, resplen);
	else
		ret = route(ctx, q, cl, resp, lim - room, resplen);
	if (ret == QUERY_FORWARD)
		ret = reply_rcode(ctx, q, WIRE_RCODE_REFUSED, EDNS_EDE_NOT_AUTHORITATIVE, true,
				  resp, lim - room, resplen);
	if (ret == QUERY_XFR)
		return ret;  /* ctx->tsig signs its messages */
	q->resp_limit = lim; /* what the signed reply fits */
	if (ret == QUERY_REPLY) {
		len = tsig_sign(c, &ctx->tsig, resp, *resplen, lim, ctx->now_s, (uint16_t)err,
				err == TSIG_BADTIME ? ts->time_signed : NULL);
		if (len == 0)
			ret = QUERY_DROP; /* cannot happen: the room was kept */
		*resplen = len;
	}
	ctx->tsig.on = false;
	return ret;
}

int query_process(query_ctx_t *ctx, const uint8_t *req, size_t reqlen, const query_client_t *cl,
		  uint8_t *resp, size_t cap, size_t *resplen, query_t *q)
{
	wire_reader_t r;
	uint16_t cnt[4];

	query_reset(q);
	if (reqlen < WIRE_HDR_LEN || (wire_read_u16(req + 2) & WIRE_FLAG_QR)) {
		stats_inc(&ctx->stats, STATS_DROPPED);
		return QUERY_DROP;
	}
	wire_reader_init(&r, req, reqlen);
	wire_get_u16(&r, &q->id);
	wire_get_u16(&r, &q->flags);
	for (int i = 0; i < 4; i++)
		wire_get_u16(&r, &cnt[i]);
	stats_inc(&ctx->stats, STATS_QUERIES);
	stats_inc(&ctx->stats, cl->tcp ? STATS_TCP : STATS_UDP);

	bool qok = cnt[0] == 1 && parse_question(&r, q) == 0;
	if (!qok)
		q->qnamelen = 0;
	if (QUERY_OPCODE(q->flags) != 0)
		return reply_rcode(ctx, q, WIRE_RCODE_NOTIMP, EDNS_EDE_NONE, qok, resp, cap,
				   resplen);
	if (!qok)
		return reply_rcode(ctx, q, WIRE_RCODE_FORMERR, EDNS_EDE_NONE, false, resp, cap,
				   resplen);

	tsig_t ts; /* only read when parse_sections set present */
	ts.present = false;
	ctx->tsig.on = false;
	edns_req_t er; /* written by edns_parse whenever q->edns becomes true */
	int pr = parse_sections(&r, cnt, q, &ts, &er);
	if (pr == PARSE_FORMERR) {
		q->edns = false; /* its OPT may be the broken part: answer without one */
		return reply_rcode(ctx, q, WIRE_RCODE_FORMERR, EDNS_EDE_NONE, true, resp, cap,
				   resplen);
	}
	q->resp_limit = cl->tcp ? cap : udp_limit(q, ctx->conf);
	bool badcookie = q->edns && edns_answer(ctx, q, &er, cl);
	/* Before BADVERS and routing: a signed query is never answered (or forwarded) unsigned. */
	if (ts.present)
		return reply_signed(ctx, q, cl, req, &ts, pr, badcookie, resp, cap, resplen);
	if (pr == PARSE_BADVERS)
		return reply_rcode(ctx, q, WIRE_RCODE_BADVERS, EDNS_EDE_NONE, true, resp, cap,
				   resplen);
	if (badcookie) /* with a fresh cookie, which the client retries with */
		return reply_rcode(ctx, q, EDNS_RCODE_BADCOOKIE, EDNS_EDE_NONE, true, resp, cap,
				   resplen);
	return route(ctx, q, cl, resp, cap, resplen);
}

int query_peek(const uint8_t *req, size_t reqlen, uint8_t key[WIRE_KEY_MAX], size_t *keylen,
	       uint16_t *qtype)
{
	uint8_t name[WIRE_NAME_MAX];
	wire_reader_t r;
	size_t namelen;

	if (reqlen < WIRE_HDR_LEN || wire_read_u16(req + 4) != 1)
		return ERR_MALFORMED;
	wire_reader_init(&r, req + WIRE_HDR_LEN, reqlen - WIRE_HDR_LEN);
	if (wire_get_name(&r, name, &namelen) < 0 || wire_get_u16(&r, qtype) < 0)
		return ERR_MALFORMED;
	return wire_name_to_key(name, namelen, key, keylen);
}
