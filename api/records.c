/*
 * api/records: GET|POST|PUT|DELETE /skydns/api/<name> and the list at
 * /skydns/api/. One write txn per request, committed before the reply, so
 * DNS answers with the change by the time the client sees the response; any
 * refusal aborts the txn and the store is unchanged.
 */
#include "api/api_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>
#include <jansson.h>

#include "api/api_autoptr.h"
#include "api/api_dist.h"
#include "api/api_json.h"
#include "api/api_names.h"
#include "api/api_render.h"
#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "store/store.h"

#define API_SOURCE STORE_SOURCE_API
#define K8S_SOURCE "k8s"

typedef api_name_t rname_t;

/* State of one write request. */
typedef struct {
	api_t *api;
	const api_who_t *who;
	const api_req_t *req;
	store_wtxn_t *w;
	store_rtxn_t *v; /* read view of w */
	int src;
	rname_t name;
	rname_t alias;	   /* cname requests */
	rname_t target;	   /* MX / PTR host (SRV targets are in req->srv) */
	json_t *added;	   /* owned: entries this request added, as the reply lists them */
	json_t *removed;   /* owned: entries it removed */
	json_t *modes;	   /* owned: answer selection modes it changed */
	bool helper;	   /* the entry being visited is an SRV target's generated address */
	char missing[200]; /* DELETE: the asked-for records that are not there */
	size_t nmissing;
	char msg[400];
} wreq_t;

#define refuse(q, code, ...) api_refuse((q)->msg, sizeof((q)->msg), (code), __VA_ARGS__)

/* ---- generating the records a request stands for ---- */

typedef int (*rr_fn)(wreq_t *q, const rname_t *owner, uint16_t type, const uint8_t *rd,
		     uint16_t rdlen);

static int each_addr(wreq_t *q, rr_fn fn)
{
	for (size_t i = 0; i < q->req->naddrs; i++) {
		const api_addr_t *a = &q->req->addrs[i];
		int ret = fn(q, &q->name, a->len == 4 ? WIRE_TYPE_A : WIRE_TYPE_AAAA, a->b, a->len);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * The target name generated for an SRV host given as an address: its text
 * with '-' for '.' and ':' as the first label below the SRV name
 * ("10-0-0-1._http._tcp.web.skydns.local."), holding that address, as
 * SkyDNS does for etcd entries with an IP host.
 */
static int srv_helper_name(const rname_t *owner, const api_addr_t *a, rname_t *out)
{
	char label[64];
	rname_t n;
	size_t l;

	api_addr_format(a, label, sizeof(label));
	for (char *p = label; *p; p++)
		if (*p == '.' || *p == ':')
			*p = '-';
	l = strlen(label);
	if (l == 0 || l > 63 || 1 + l + owner->len > WIRE_NAME_MAX)
		return ERR_TOOBIG;
	n.name[0] = (uint8_t)l;
	memcpy(n.name + 1, label, l);
	memcpy(n.name + 1 + l, owner->name, owner->len);
	n.len = 1 + l + owner->len;
	if (api_name_finish(&n) < 0)
		return ERR_INVAL;
	*out = n;
	return 0;
}

static int each_srv(wreq_t *q, rr_fn fn)
{
	uint8_t rd[6 + WIRE_NAME_MAX];
	rname_t t;
	int ret;

	for (size_t i = 0; i < q->req->nsrv; i++) {
		const api_srv_t *s = &q->req->srv[i];

		if (s->addr.len) {
			if ((ret = srv_helper_name(&q->name, &s->addr, &t)) < 0)
				return refuse(q, ERR_INVAL,
					      "%s: no room for a target name below it",
					      q->name.text);
			q->helper = true;
			ret = fn(q, &t, s->addr.len == 4 ? WIRE_TYPE_A : WIRE_TYPE_AAAA, s->addr.b,
				 s->addr.len);
			q->helper = false;
			if (ret < 0)
				return ret;
		} else if (api_name_target(q->api->conf, s->host, &t) < 0) {
			return refuse(q, ERR_INVAL, "bad SRV host \"%.200s\"", s->host);
		}
		wire_write_u16(rd, s->priority);
		wire_write_u16(rd + 2, s->weight);
		wire_write_u16(rd + 4, s->port);
		memcpy(rd + 6, t.name, t.len);
		if ((ret = fn(q, &q->name, WIRE_TYPE_SRV, rd, (uint16_t)(6 + t.len))) < 0)
			return ret;
	}
	return 0;
}

static int each_txt(wreq_t *q, rr_fn fn)
{
	uint8_t rd[API_TEXT_MAX + API_TEXT_MAX / 255 + 2];
	size_t n = 0;

	/* A TXT string holds at most 255 bytes: split longer text. */
	for (size_t pos = 0; pos < q->req->textlen;) {
		size_t l = q->req->textlen - pos > 255 ? 255 : q->req->textlen - pos;
		rd[n++] = (uint8_t)l;
		memcpy(rd + n, q->req->text + pos, l);
		n += l;
		pos += l;
	}
	return fn(q, &q->name, WIRE_TYPE_TXT, rd, (uint16_t)n);
}

static int each_rr(wreq_t *q, rr_fn fn)
{
	uint8_t rd[2 + WIRE_NAME_MAX];
	int ret;

	if (q->req->type != API_T_SRV && (ret = each_addr(q, fn)) < 0)
		return ret;
	switch (q->req->type) {
	case API_T_CNAME:
		return q->alias.len
			   ? fn(q, &q->alias, WIRE_TYPE_CNAME, q->name.name, (uint16_t)q->name.len)
			   : 0;
	case API_T_SRV:
		return each_srv(q, fn);
	case API_T_TXT:
		return q->req->textlen ? each_txt(q, fn) : 0;
	case API_T_MX:
		if (!q->target.len)
			return 0;
		wire_write_u16(rd, q->req->priority);
		memcpy(rd + 2, q->target.name, q->target.len);
		return fn(q, &q->name, WIRE_TYPE_MX, rd, (uint16_t)(2 + q->target.len));
	case API_T_PTR:
		return q->target.len
			   ? fn(q, &q->name, WIRE_TYPE_PTR, q->target.name, (uint16_t)q->target.len)
			   : 0;
	default:
		return 0;
	}
}

/* ---- what a request changed ---- */

static int log_change(wreq_t *q, json_t *arr, const rname_t *owner, uint16_t type, uint32_t ttl,
		      const uint8_t *rd, uint16_t rdlen)
{
	char tname[16];
	json_t *e;

	wire_type_to_text(type, tname, sizeof(tname));
	e = json_pack("{s:s,s:s,s:I,s:o?}", "name", owner->text, "type", tname, "ttl",
		      (json_int_t)ttl, "value", api_render_value(type, rd, rdlen));
	if (!e || json_array_append_new(arr, e) < 0)
		return refuse(q, -ENOMEM, "out of memory");
	return 0;
}

/* Log every entry of `src` at owner/type (type 0: every type) as removed. */
typedef struct {
	wreq_t *q;
	const rname_t *owner;
	uint16_t type;
	int err;
} logdel_t;

static int logdel_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	logdel_t *d = ctx;
	store_rr_t rr;
	size_t pos = 0;
	int ret;

	(void)key;
	if (keylen != d->owner->keylen)
		return 1; /* descendants follow the name's own rrsets */
	if (d->type && set->type != d->type)
		return 0;
	while ((ret = store_rrset_next(set, &pos, &rr)) == 1) {
		if (rr.source_id == d->q->src &&
		    (ret = log_change(d->q, d->q->removed, d->owner, set->type, rr.ttl, rr.rdata,
				      rr.rdlen)) < 0)
			break;
	}
	if (ret < 0) {
		d->err = ret;
		return 1;
	}
	return 0;
}

static int log_removed_all(wreq_t *q, const rname_t *owner, uint16_t type)
{
	logdel_t d = {.q = q, .owner = owner, .type = type};
	int ret = store_iter(q->v, owner->key, owner->keylen, logdel_cb, &d);

	return ret < 0 ? ret : d.err;
}

/*
 * A PUT that replaces a set with itself removed and re-added the same
 * entries: list only what differs, so the reply says what really changed.
 */
static void cancel_unchanged(wreq_t *q)
{
	for (size_t i = 0; i < json_array_size(q->added);) {
		size_t j;
		for (j = 0; j < json_array_size(q->removed); j++) {
			if (json_equal(json_array_get(q->added, i), json_array_get(q->removed, j)))
				break;
		}
		if (j < json_array_size(q->removed)) {
			json_array_remove(q->added, i);
			json_array_remove(q->removed, j);
		} else {
			i++;
		}
	}
}

/* ---- ownership ---- */

/* Who source id `id` is, for the 409 text: tries the names the writers use. */
static void source_label(wreq_t *q, const rname_t *n, int id, char *buf, size_t cap)
{
	static const struct {
		const char *source;
		const char *label;
	} known[] = {{K8S_SOURCE, "the Kubernetes watcher"}, {"etcd", "the etcd watcher"}};
	char src[STORE_SOURCE_MAX];

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (store_source_find(q->v, known[i].source) == id) {
			snprintf(buf, cap, "%s", known[i].label);
			return;
		}
	}
	/* A zone import's source is "import:<origin>", the origin being n or an ancestor. */
	for (size_t pos = 0; pos < n->len && n->name[pos];) {
		char t[WIRE_NAME_TEXT_MAX];
		if (wire_name_to_text(n->name + pos, n->len - pos, t, sizeof(t)) == 0 &&
		    (size_t)snprintf(src, sizeof(src), "import:%s", t) < sizeof(src) &&
		    store_source_find(q->v, src) == id) {
			snprintf(buf, cap, "the zone import of %.150s", t);
			return;
		}
		pos += 1 + (size_t)n->name[pos];
	}
	snprintf(buf, cap, "store source #%d", id);
}

int api_owner_of(store_rtxn_t *t, const uint8_t *key, size_t keylen, int src, const char *ns,
		 char *out, size_t cap)
{
	const uint8_t *val = NULL;
	uint64_t mask = 0;
	size_t vlen = 0;
	int ret;

	if (src < 0)
		return 0;
	if ((ret = store_name_sources(t, key, keylen, &mask)) < 0)
		return ret;
	if (!((mask >> src) & 1))
		return 0;
	ret = store_kv_get(t, ns, key, keylen, &val, &vlen);
	if (ret == ERR_NOTFOUND || (ret == 0 && (vlen == 0 || vlen >= cap)))
		snprintf(out, cap, "%s", API_ADMIN_USER);
	else if (ret < 0)
		return ret;
	else
		snprintf(out, cap, "%.*s", (int)vlen, (const char *)val);
	return 1;
}

int api_may_change(const api_who_t *who, const char *owner, const char *name, char *msg, size_t cap)
{
	if (who->admin || strcmp(owner, who->user) == 0)
		return 0;
	return api_refuse(msg, cap, ERR_DENIED,
			  "%s is owned by user %s; user %s changes only its own records", name,
			  owner, who->user);
}

/*
 * A user changes only the names it owns; the admin changes every name, and its
 * writes keep the owner. A name no one owns yet becomes the writer's: its owner is
 * noted now, in this txn (a note where the request ends up adding nothing is
 * harmless: an owner counts only while the API holds entries at the name).
 */
static int check_user(wreq_t *q, const rname_t *n)
{
	char owner[API_USER_MAX];
	int ret =
	    api_owner_of(q->v, n->key, n->keylen, q->src, STORE_OWNER_NS_API, owner, sizeof(owner));

	if (ret < 0)
		return ret;
	if (ret == 1)
		return api_may_change(q->who, owner, n->text, q->msg, sizeof(q->msg));
	if (q->who->admin) {
		ret = store_kv_del(q->w, STORE_OWNER_NS_API, n->key, n->keylen);
		return ret == ERR_NOTFOUND ? 0 : ret;
	}
	return store_kv_put(q->w, STORE_OWNER_NS_API, n->key, n->keylen,
			    (const uint8_t *)q->who->user, strlen(q->who->user));
}

/*
 * The API changes only names no other source holds: a write there would be
 * undone by the next import or watch event, or be a 2xx that changes nothing.
 */
static int check_owner(wreq_t *q, const rname_t *n)
{
	uint64_t mask = 0;
	char who[200];
	int ret;

	if ((ret = store_name_sources(q->v, n->key, n->keylen, &mask)) < 0)
		return ret;
	mask &= ~((uint64_t)1 << q->src);
	if (!mask)
		return check_user(q, n);
	for (int id = 0; id < 64; id++) {
		if ((mask >> id) & 1) {
			source_label(q, n, id, who, sizeof(who));
			break;
		}
	}
	return refuse(q, ERR_READONLY,
		      "%s is owned by %s; the API changes only names it created "
		      "(zone imports and watchers are read-only here%s)",
		      n->text, who,
		      strncmp(who, "the zone import", 15) == 0
			  ? "; POST /skydns/api/<name>?takeover=import makes an imported name "
			    "the API's"
			  : "");
}

static int rr_check_owner(wreq_t *q, const rname_t *owner, uint16_t type, const uint8_t *rd,
			  uint16_t rdlen)
{
	(void)type;
	(void)rd;
	(void)rdlen;
	return check_owner(q, owner);
}

/* ---- checks against the current store ---- */

/* Does source `src` already hold exactly this entry? @return 1, 0 or <0. */
static int find_entry(store_rtxn_t *v, const rname_t *owner, uint16_t type, int src,
		      const uint8_t *rd, uint16_t rdlen, uint32_t *ttl)
{
	store_lookup_t lk;
	store_rr_t rr;
	size_t pos = 0;
	int ret;

	if ((ret = store_lookup(v, owner->key, owner->keylen, type, &lk)) < 0)
		return ret;
	if (!lk.has_rrset)
		return 0;
	while ((ret = store_rrset_next(&lk.rrset, &pos, &rr)) == 1) {
		if (rr.source_id == src && rr.rdlen == rdlen && memcmp(rr.rdata, rd, rdlen) == 0) {
			if (ttl)
				*ttl = rr.ttl;
			return 1;
		}
	}
	return ret;
}

typedef struct {
	size_t keylen;
	bool other; /* holds an rrset that is not a CNAME */
	bool cname;
} probe_t;

static int probe_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	probe_t *p = ctx;

	(void)key;
	if (keylen != p->keylen)
		return 1; /* a descendant: the name's own rrsets come first */
	if (set->type == WIRE_TYPE_CNAME)
		p->cname = true;
	else if (set->count)
		p->other = true;
	return 0;
}

static int name_probe(store_rtxn_t *v, const rname_t *n, probe_t *p)
{
	int ret;

	*p = (probe_t){.keylen = n->keylen};
	ret = store_iter(v, n->key, n->keylen, probe_cb, p);
	return ret < 0 ? ret : 0;
}

/* CNAME and other data cannot share a name (RFC 1034 §3.6.2). */
static int check_cname_rules(wreq_t *q, const rname_t *owner, uint16_t type)
{
	probe_t p;
	int ret;

	if ((ret = name_probe(q->v, owner, &p)) < 0)
		return ret;
	if (type == WIRE_TYPE_CNAME && (p.other || p.cname))
		return refuse(q, ERR_CONFLICT, "%s already has records; a CNAME cannot join them",
			      owner->text);
	if (type != WIRE_TYPE_CNAME && p.cname)
		return refuse(q, ERR_CONFLICT, "%s is a CNAME; it cannot hold other records",
			      owner->text);
	return 0;
}

static int rr_check_new(wreq_t *q, const rname_t *owner, uint16_t type, const uint8_t *rd,
			uint16_t rdlen)
{
	int ret;

	if (q->helper) /* shared by every port of that address */
		return check_cname_rules(q, owner, type);
	ret = find_entry(q->v, owner, type, q->src, rd, rdlen, NULL);

	if (ret < 0)
		return ret;
	if (ret == 1)
		return refuse(q, ERR_CONFLICT, "%s already has this %s record", owner->text,
			      type == WIRE_TYPE_A	? "A"
			      : type == WIRE_TYPE_AAAA	? "AAAA"
			      : type == WIRE_TYPE_CNAME ? "CNAME"
							: "same");
	return check_cname_rules(q, owner, type);
}

static int rr_add(wreq_t *q, const rname_t *owner, uint16_t type, const uint8_t *rd, uint16_t rdlen)
{
	uint32_t ttl = 0;
	int ret = find_entry(q->v, owner, type, q->src, rd, rdlen, &ttl);

	if (ret < 0)
		return ret;
	if (ret == 1 && ttl == q->req->ttl)
		return 0; /* one request naming an entry twice (SRV helpers) */
	if (ret == 1 && (ret = log_change(q, q->removed, owner, type, ttl, rd, rdlen)) < 0)
		return ret;
	ret = store_rr_add(q->w, q->src, owner->name, owner->len, type, q->req->ttl, rd, rdlen);
	if (ret < 0)
		return refuse(q, ret, "adding to %s: %s", owner->text, err_str(ret));
	return log_change(q, q->added, owner, type, q->req->ttl, rd, rdlen);
}

static int rr_del_type(wreq_t *q, const rname_t *owner, uint16_t type, const uint8_t *rd,
		       uint16_t rdlen)
{
	int ret;

	(void)rd;
	(void)rdlen;
	if (q->helper)
		return 0; /* gc_helpers() removes what no SRV points at any more */
	if ((ret = log_removed_all(q, owner, type)) < 0)
		return ret;
	ret = store_rr_del(q->w, q->src, owner->name, owner->len, type, NULL, 0);
	return ret == ERR_NOTFOUND ? 0 : ret;
}

/* Note an asked-for record that is not there; the request fails after the pass. */
static void note_missing(wreq_t *q, uint16_t type, const uint8_t *rd, uint16_t rdlen)
{
	char v[WIRE_NAME_TEXT_MAX + 32], tname[16];
	size_t n = strlen(q->missing);
	json_t *j = api_render_value(type, rd, rdlen);
	char *dump = j && !json_is_string(j) ? json_dumps(j, JSON_COMPACT) : NULL;

	wire_type_to_text(type, tname, sizeof(tname));
	snprintf(v, sizeof(v), "%s %s", tname,
		 dump ? dump : (j && json_is_string(j) ? json_string_value(j) : "?"));
	if (q->nmissing < 8 && n < sizeof(q->missing))
		snprintf(q->missing + n, sizeof(q->missing) - n, "%s%.100s", n ? ", " : "", v);
	else if (q->nmissing == 8 && n < sizeof(q->missing))
		snprintf(q->missing + n, sizeof(q->missing) - n, ", ...");
	q->nmissing++;
	free(dump);
	json_decref(j);
}

static int rr_del_exact(wreq_t *q, const rname_t *owner, uint16_t type, const uint8_t *rd,
			uint16_t rdlen)
{
	uint32_t ttl = 0;
	int ret;

	if (q->helper)
		return 0; /* gc_helpers() removes what no SRV points at any more */
	if ((ret = find_entry(q->v, owner, type, q->src, rd, rdlen, &ttl)) < 0)
		return ret;
	if (ret == 0) {
		note_missing(q, type, rd, rdlen);
		return 0;
	}
	if ((ret = store_rr_del(q->w, q->src, owner->name, owner->len, type, rd, rdlen)) < 0)
		return ret;
	return log_change(q, q->removed, owner, type, ttl, rd, rdlen);
}

static int set_mode(wreq_t *q, uint16_t type)
{
	return store_rrset_set_mode(q->w, q->name.name, q->name.len, type, (uint8_t)q->req->mode);
}

/* Modes of the name's A and AAAA rrsets: -1 where there is none. */
static int modes_of(wreq_t *q, int out[2])
{
	static const uint16_t types[2] = {WIRE_TYPE_A, WIRE_TYPE_AAAA};
	store_lookup_t lk;
	int ret;

	for (int i = 0; i < 2; i++) {
		if ((ret = store_lookup(q->v, q->name.key, q->name.keylen, types[i], &lk)) < 0)
			return ret;
		out[i] = lk.has_rrset && lk.rrset.count ? lk.rrset.mode : -1;
	}
	return 0;
}

/*
 * Note every answer selection mode the request changed, including a PUT
 * that rebuilt a set without "mode" and so put it back to the default.
 */
static int log_modes(wreq_t *q, const int before[2])
{
	static const char *const tnames[2] = {"A", "AAAA"};
	int after[2], ret;

	if ((ret = modes_of(q, after)) < 0)
		return ret;
	for (int i = 0; i < 2; i++) {
		int was = before[i] < 0 ? STORE_MODE_DEFAULT : before[i];
		json_t *e;
		if (after[i] < 0 || after[i] == was)
			continue;
		e = json_pack("{s:s,s:s,s:s,s:s}", "name", q->name.text, "type", tnames[i], "mode",
			      api_mode_name(after[i]), "was", api_mode_name(was));
		if (!e || json_array_append_new(q->modes, e) < 0)
			return refuse(q, -ENOMEM, "out of memory");
	}
	return 0;
}

static int apply_mode(wreq_t *q)
{
	const api_req_t *r = q->req;
	bool v4 = false, v6 = false;
	int ret = 0;

	if (!r->mode)
		return 0;
	for (size_t i = 0; i < r->naddrs; i++)
		*(r->addrs[i].len == 4 ? &v4 : &v6) = true;
	if (r->type == API_T_A || (r->nupdates && r->updates[0].to.len == 4))
		v4 = true;
	if (r->type == API_T_AAAA || (r->nupdates && r->updates[0].to.len == 16))
		v6 = true;
	if (v4)
		ret = set_mode(q, WIRE_TYPE_A);
	if (ret == 0 && v6)
		ret = set_mode(q, WIRE_TYPE_AAAA);
	return ret == ERR_NOTFOUND ? 0 : ret;
}

/* ---- SRV target helpers ---- */

#define API_GC_MAX 1024 /* helper entries one request can sweep */

typedef struct {
	wreq_t *q;
	store_lookup_t srv; /* the SRV rrset at the owner, if any */
	struct {
		rname_t name;
		uint16_t type;
		uint32_t ttl;
		api_addr_t addr;
	} * dead;
	size_t ndead;
	int err;
} gc_t;

/* Does an SRV of the API at the owner still point at `n`? */
static bool gc_referenced(const gc_t *g, const rname_t *n)
{
	store_rr_t rr;
	size_t pos = 0;

	if (!g->srv.has_rrset)
		return false;
	while (store_rrset_next(&g->srv.rrset, &pos, &rr) == 1) {
		if (rr.source_id == g->q->src && rr.rdlen == 6 + n->len &&
		    memcmp(rr.rdata + 6, n->name, n->len) == 0)
			return true;
	}
	return false;
}

static int gc_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	gc_t *g = ctx;
	const rname_t *owner = &g->q->name;
	store_rr_t rr;
	size_t pos = 0;
	rname_t n, h;

	if (keylen == owner->keylen || (set->type != WIRE_TYPE_A && set->type != WIRE_TYPE_AAAA))
		return 0;
	if (wire_key_to_name(key, keylen, n.name, &n.len) < 0 ||
	    n.len != 1 + (size_t)n.name[0] + owner->len || api_name_finish(&n) < 0)
		return 0; /* not a direct child */
	while (store_rrset_next(set, &pos, &rr) == 1) {
		api_addr_t a = {.len = (uint8_t)rr.rdlen};
		if (rr.source_id != g->q->src || (rr.rdlen != 4 && rr.rdlen != 16))
			continue;
		memcpy(a.b, rr.rdata, rr.rdlen);
		/* Only the generated shape: a name the user wrote keeps its records. */
		if (srv_helper_name(owner, &a, &h) < 0 || h.len != n.len ||
		    memcmp(h.name, n.name, n.len) != 0 || gc_referenced(g, &n))
			continue;
		if (g->ndead == API_GC_MAX) {
			g->err = ERR_TOOBIG;
			return 1;
		}
		g->dead[g->ndead].name = n;
		g->dead[g->ndead].type = set->type;
		g->dead[g->ndead].ttl = rr.ttl;
		g->dead[g->ndead].addr = a;
		g->ndead++;
	}
	return 0;
}

/*
 * After SRV records changed: remove the generated target addresses no SRV
 * of this name points at any more (several ports share one helper, so they
 * go only with the last SRV that uses them).
 */
static int gc_helpers(wreq_t *q)
{
	gc_t g = {.q = q};
	int ret;

	if (!(g.dead = malloc(API_GC_MAX * sizeof(*g.dead))))
		return refuse(q, -ENOMEM, "out of memory");
	if ((ret = store_lookup(q->v, q->name.key, q->name.keylen, WIRE_TYPE_SRV, &g.srv)) < 0 ||
	    (ret = store_iter(q->v, q->name.key, q->name.keylen, gc_cb, &g)) < 0 ||
	    (ret = g.err) < 0)
		goto out;
	for (size_t i = 0; i < g.ndead && ret == 0; i++) {
		const api_addr_t *a = &g.dead[i].addr;
		ret = store_rr_del(q->w, q->src, g.dead[i].name.name, g.dead[i].name.len,
				   g.dead[i].type, a->b, a->len);
		if (ret == 0)
			ret = log_change(q, q->removed, &g.dead[i].name, g.dead[i].type,
					 g.dead[i].ttl, a->b, a->len);
	}
out:
	free(g.dead);
	return ret;
}

/* ---- the operations ---- */

static int op_create(wreq_t *q)
{
	int ret;

	if ((ret = each_rr(q, rr_check_new)) < 0 || (ret = each_rr(q, rr_add)) < 0)
		return ret;
	return apply_mode(q);
}

static int op_update_addrs(wreq_t *q)
{
	const api_req_t *r = q->req;
	char from[64], to[64];
	int ret;

	for (size_t i = 0; i < r->nupdates; i++) {
		const api_update_t *u = &r->updates[i];
		uint16_t type = u->from.len == 4 ? WIRE_TYPE_A : WIRE_TYPE_AAAA;
		uint32_t ttl = r->ttl;

		api_addr_format(&u->from, from, sizeof(from));
		api_addr_format(&u->to, to, sizeof(to));
		ret = find_entry(q->v, &q->name, type, q->src, u->from.b, u->from.len, &ttl);
		if (ret == 0)
			return refuse(q, ERR_NOTFOUND, "%s has no address %s", q->name.text, from);
		if (ret < 0 ||
		    (ret = store_rr_del(q->w, q->src, q->name.name, q->name.len, type, u->from.b,
					u->from.len)) < 0 ||
		    (ret = log_change(q, q->removed, &q->name, type, ttl, u->from.b, u->from.len)) <
			0)
			return ret;
		if (find_entry(q->v, &q->name, type, q->src, u->to.b, u->to.len, NULL) == 1)
			return refuse(q, ERR_CONFLICT, "%s already has address %s", q->name.text,
				      to);
		if ((ret = store_rr_add(q->w, q->src, q->name.name, q->name.len, type,
					r->has_ttl ? r->ttl : ttl, u->to.b, u->to.len)) < 0 ||
		    (ret = log_change(q, q->added, &q->name, type, r->has_ttl ? r->ttl : ttl,
				      u->to.b, u->to.len)) < 0)
			return ret;
	}
	return apply_mode(q);
}

/* PUT without "update": the request's records replace the API's records of those types. */
static int op_update(wreq_t *q)
{
	int ret;

	if (q->req->nupdates)
		return op_update_addrs(q);
	if ((ret = each_rr(q, rr_del_type)) < 0 || (ret = each_rr(q, rr_check_new)) < 0 ||
	    (ret = each_rr(q, rr_add)) < 0)
		return ret;
	cancel_unchanged(q);
	return apply_mode(q);
}

static int op_delete(wreq_t *q)
{
	const api_req_t *r = q->req;
	int ret;
	bool exact = r->naddrs || r->alias[0] || r->target[0] || r->textlen || r->nsrv;

	if (exact) {
		if ((ret = each_rr(q, rr_del_exact)) < 0)
			return ret;
		if (q->nmissing)
			return refuse(q, ERR_NOTFOUND, "%s has no %s; nothing was deleted",
				      q->name.text, q->missing);
		return 0;
	}
	if ((ret = log_removed_all(q, &q->name, r->type)) < 0)
		return ret;
	ret = store_rr_del(q->w, q->src, q->name.name, q->name.len, r->type, NULL, 0);
	if (ret == ERR_NOTFOUND)
		return refuse(q, ret, "%s has no records%s", q->name.text,
			      r->type ? " of that type" : "");
	return ret;
}

/* ---- request plumbing ---- */

static int resolve_req_names(wreq_t *q)
{
	const conf_t *conf = q->api->conf;
	const api_req_t *r = q->req;
	int ret;

	if (r->alias[0]) {
		ret = api_name_owner(conf, r->alias, &q->alias);
		if (ret < 0) {
			api_name_error(conf, "alias", r->alias, ret, q->msg, sizeof(q->msg));
			return ERR_INVAL;
		}
	}
	if (r->target[0] && r->type != API_T_SRV) {
		if (api_name_target(conf, r->target, &q->target) < 0)
			return refuse(q, ERR_INVAL, "bad host name \"%.200s\"", r->target);
	}
	return 0;
}

static int run_op(wreq_t *q)
{
	int modes[2], ret;

	if ((ret = resolve_req_names(q)) < 0)
		return ret;
	if ((ret = store_write_begin(q->api->store, &q->w)) < 0)
		return refuse(q, ret, "store: %s", err_str(ret));
	q->v = store_write_view(q->w);
	if ((q->src = store_source_id(q->w, API_SOURCE)) < 0) {
		ret = refuse(q, q->src, "store: %s", err_str(q->src));
		goto fail;
	}
	/* Every name the request writes must be the API's: the name itself unless
	 * the request is about an alias, and every name each_rr() visits. */
	if ((ret = each_rr(q, rr_check_owner)) < 0 ||
	    (!q->req->alias[0] && (ret = check_owner(q, &q->name)) < 0))
		goto fail;
	if ((ret = modes_of(q, modes)) < 0)
		goto fail;
	if (q->req->op == API_OP_CREATE)
		ret = op_create(q);
	else if (q->req->op == API_OP_UPDATE)
		ret = op_update(q);
	else
		ret = op_delete(q);
	if (ret == 0 && q->req->op != API_OP_CREATE &&
	    (q->req->type == API_T_SRV || q->req->type == API_T_NONE))
		ret = gc_helpers(q);
	if (ret == 0)
		ret = log_modes(q, modes);
	if (ret == 0 && q->api->conf->api_auto_ptr)
		ret = api_autoptr_sync(q->api->conf, q->w, q->src, &q->name, q->added, q->removed,
				       q->msg, sizeof(q->msg));
	if (ret < 0)
		goto fail;
	ret = store_write_commit(q->w);
	q->w = NULL;
	if (ret < 0)
		return refuse(q, ret, "store commit: %s", err_str(ret));
	return 0;
fail:
	store_write_abort(q->w);
	q->w = NULL;
	if (!q->msg[0])
		refuse(q, ret, "%s: %s", q->name.text, err_str(ret));
	return ret;
}

static int status_of(int code)
{
	switch (code) {
	case ERR_NOTFOUND:
		return 404;
	case ERR_CONFLICT:
	case ERR_READONLY:
		return 409;
	case ERR_DENIED:
		return 403;
	case ERR_INVAL:
	case ERR_PARSE:
		return 400;
	case ERR_TOOBIG:
	case ERR_SPACE:
		return 413;
	default:
		return 500;
	}
}

static int show_name(api_t *api, struct mg_connection *c, const api_who_t *who, const rname_t *n,
		     int status);
static int reply_write(api_t *api, struct mg_connection *c, wreq_t *q, int status);

/*
 * The name a write is for: the URL's, or for a PTR body with "ip" the
 * address's reverse name (which must then be the URL's, when one is given).
 * name NULL: the request went to the list, /skydns/api/.
 */
static int write_owner(wreq_t *q, const rname_t *name)
{
	const api_addr_t *ip = &q->req->ip;
	char t[64];
	rname_t rev;
	int ret;

	if (!ip->len) {
		q->name = *name; /* the list (name NULL) was answered 405 before */
		return 0;
	}
	api_addr_format(ip, t, sizeof(t));
	if ((ret = api_name_reverse(q->api->conf, ip->b, ip->len, &rev)) == ERR_NOTFOUND)
		return refuse(q, ERR_INVAL,
			      "no local domain holds the reverse name of %s: add its reverse zone "
			      "(e.g. %s) to dns-domains",
			      t, ip->len == 4 ? "in-addr.arpa." : "ip6.arpa.");
	if (ret < 0)
		return refuse(q, ERR_INVAL, "bad IP address \"%s\"", t);
	if (name && !wire_name_equal(name->name, name->len, rev.name, rev.len))
		return refuse(q, ERR_INVAL, "\"ip\" %s is %s, not %s", t, rev.text, name->text);
	q->name = rev;
	return 0;
}

static int handle_write(api_t *api, struct mg_connection *c, const api_who_t *who, int op,
			const rname_t *name)
{
	char *body = NULL;
	size_t len = 0;
	wreq_t q = {.api = api, .who = who};
	api_req_t *req = NULL;
	int ret;

	if ((ret = api_read_body(c, &body, &len)) < 0) {
		ret = ret == API_JSON_TOOBIG
			  ? api_reply_error(c, 413, "body larger than %d bytes", API_BODY_MAX)
		      : ret == -ETIMEDOUT ? api_reply_error(c, 408, "the body came too slowly")
					  : api_reply_error(c, 400, "cannot read the body");
		goto out;
	}
	if (!(req = malloc(sizeof(*req)))) {
		ret = api_reply_error(c, 500, "out of memory");
		goto out;
	}
	if ((ret = api_json_parse(op, body, len, req, q.msg, sizeof(q.msg))) < 0) {
		ret = api_reply_error(c, ret == API_JSON_TOOBIG ? 413 : 400, "%s", q.msg);
		goto out;
	}
	if (api_dist_on(api)) {
		ret = api_dist_write(api, c, who, name, req);
		goto out;
	}
	q.req = req;
	if (!name && !req->ip.len) {
		ret = api_reply_error(c, 405,
				      "method %s not allowed on the list, except for a PTR body "
				      "with \"ip\"; other records go to /skydns/api/<name>",
				      op == API_OP_CREATE   ? "POST"
				      : op == API_OP_UPDATE ? "PUT"
							    : "DELETE");
		goto out;
	}
	if ((ret = write_owner(&q, name)) < 0) {
		ret = api_reply_error(c, 400, "%s", q.msg);
		goto out;
	}
	q.added = json_array();
	q.removed = json_array();
	q.modes = json_array();
	if (!q.added || !q.removed || !q.modes) {
		ret = api_reply_error(c, 500, "out of memory");
		goto out;
	}
	if ((ret = run_op(&q)) < 0) {
		if (status_of(ret) == 500)
			log_err("api: %s %s: %s", op == API_OP_DELETE ? "delete" : "write",
				q.name.text, q.msg);
		ret = api_reply_error(c, status_of(ret), "%s", q.msg);
		goto out;
	}
	ret = reply_write(api, c, &q, op == API_OP_CREATE ? 201 : 200);
out:
	json_decref(q.added);
	json_decref(q.removed);
	json_decref(q.modes);
	free(req);
	free(body);
	return ret;
}

/* ---- reads ---- */

typedef struct {
	json_t *names; /* list: array of name objects */
	json_t *cur;   /* the name object being filled */
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen;
	size_t only_keylen; /* show: stop at descendants; 0 = list everything */
	bool single;
	size_t max_names; /* list: stop before name max_names + 1 (more = true); 0 = no cap */
	bool more;
	size_t count; /* names started */
	/* list: each finished name goes to emit(sink, name) and is dropped, so a batch holds
	 * one name's JSON at a time (NULL: names stay in `names`) */
	int (*emit)(void *sink, json_t *name);
	void *sink;
	/* a user's view: only rrsets of source src at names `user` owns (NULL: everything) */
	const char *user;
	store_rtxn_t *txn;
	int src;
	const char *owner_ns;
	int err;
} collect_t;

/* Does the user of a filtered view own this rrset? @return 1, 0, or <0. */
static int visible(collect_t *cl, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	char owner[API_USER_MAX];
	store_rr_t rr;
	size_t pos = 0;
	bool ours = false;
	int ret;

	if (!cl->user)
		return 1;
	while (!ours && store_rrset_next(set, &pos, &rr) == 1)
		ours = rr.source_id == cl->src;
	if (!ours)
		return 0;
	ret = api_owner_of(cl->txn, key, keylen, cl->src, cl->owner_ns, owner, sizeof(owner));
	return ret <= 0 ? ret : strcmp(owner, cl->user) == 0;
}

/* Filter cl for who: a user sees the names it owns, the admin everything. */
static void collect_for(api_t *api, const api_who_t *who, store_rtxn_t *t, collect_t *cl)
{
	bool dist = api_dist_on(api);

	cl->txn = t;
	if (who && !who->admin) {
		cl->user = who->user;
		cl->owner_ns = dist ? STORE_OWNER_NS_ETCD : STORE_OWNER_NS_API;
		/* No source yet: no records of it, so nothing to show. */
		cl->src = store_source_find(t, dist ? "etcd" : API_SOURCE);
	}
}

static json_t *name_object(const uint8_t *key, size_t keylen)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t len;
	char text[WIRE_NAME_TEXT_MAX];

	if (wire_key_to_name(key, keylen, name, &len) < 0 ||
	    wire_name_to_text(name, len, text, sizeof(text)) < 0)
		return NULL;
	return json_pack("{s:s,s:[]}", "name", text, "records");
}

static int collect_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	collect_t *cl = ctx;
	json_t *rec;

	if (cl->single && keylen != cl->only_keylen)
		return 1;
	if (set->count == 0)
		return 0;
	if ((cl->err = visible(cl, key, keylen, set)) <= 0)
		return cl->err;
	if (!cl->cur || keylen != cl->keylen || memcmp(key, cl->key, keylen) != 0) {
		if (cl->max_names && cl->count >= cl->max_names) {
			cl->more = true;
			return 1;
		}
		if (cl->emit && cl->cur) {
			if ((cl->err = cl->emit(cl->sink, cl->cur)) < 0)
				return cl->err;
			json_array_clear(cl->names);
		}
		if (!(cl->cur = name_object(key, keylen)))
			return cl->err = ERR_STORE;
		json_array_append_new(cl->names, cl->cur);
		cl->count++;
		memcpy(cl->key, key, keylen);
		cl->keylen = keylen;
	}
	if (!(rec = api_render_rrset(set)))
		return cl->err = ERR_STORE;
	json_array_append_new(json_object_get(cl->cur, "records"), rec);
	return 0;
}

/*
 * The name as GET shows it. @param doc receives an owned object, or NULL
 * when the name holds nothing. @return 0 or an error code.
 */
static int name_doc(api_t *api, const api_who_t *who, const rname_t *n, json_t **doc)
{
	collect_t cl = {.names = json_array(), .single = true, .only_keylen = n->keylen};
	store_rtxn_t *t = NULL;
	int ret;

	if (!cl.names)
		return -ENOMEM;
	if ((ret = store_read_begin(api->store, &t)) < 0) {
		json_decref(cl.names);
		return ret;
	}
	collect_for(api, who, t, &cl);
	ret = store_iter(t, n->key, n->keylen, collect_cb, &cl);
	store_read_end(t);
	if (ret < 0 || cl.err < 0) {
		json_decref(cl.names);
		return ret < 0 ? ret : cl.err;
	}
	*doc = json_incref(json_array_get(cl.names, 0)); /* NULL when empty */
	json_decref(cl.names);
	return 0;
}

static int show_name(api_t *api, struct mg_connection *c, const api_who_t *who, const rname_t *n,
		     int status)
{
	json_t *doc = NULL;
	int ret = name_doc(api, who, n, &doc);

	if (ret < 0)
		return api_reply_err_code(c, ret, n->text);
	if (!doc)
		return api_reply_error(c, 404, "%s: no such name", n->text);
	return api_reply_json(c, status, doc);
}

/*
 * A write's reply: what it added and removed, then the name as it is now
 * ("records" empty once nothing is left; "deleted" for the original's
 * scripts).
 */
int api_records_reply(api_t *api, struct mg_connection *c, const api_who_t *who, const rname_t *n,
		      json_t *added, json_t *removed, json_t *modes, bool deleted, int status)
{
	return api_records_reply_with(api, c, who, n, added, removed, modes, deleted, status, NULL);
}

int api_records_reply_with(api_t *api, struct mg_connection *c, const api_who_t *who,
			   const rname_t *n, json_t *added, json_t *removed, json_t *modes,
			   bool deleted, int status, json_t *extra)
{
	json_t *doc = NULL;
	int ret = name_doc(api, who, n, &doc);

	if (ret < 0)
		return api_reply_err_code(c, ret, n->text);
	if (!doc && !(doc = json_pack("{s:s,s:[]}", "name", n->text, "records")))
		return api_reply_error(c, 500, "out of memory");
	json_object_set(doc, "added", added);
	json_object_set(doc, "removed", removed);
	if (modes && json_array_size(modes))
		json_object_set(doc, "modes", modes);
	if (deleted)
		json_object_set_new(doc, "deleted", json_true());
	if (extra)
		json_object_update(doc, extra);
	return api_reply_json(c, status, doc);
}

static int reply_write(api_t *api, struct mg_connection *c, wreq_t *q, int status)
{
	return api_records_reply(api, c, q->who, &q->name, q->added, q->removed, q->modes,
				 q->req->op == API_OP_DELETE, status);
}

/* A domain listed inside another configured domain would be listed twice. */
static bool domain_nested(const conf_t *conf, size_t i)
{
	for (size_t j = 0; j < conf->ndomains; j++) {
		if (j != i &&
		    wire_name_is_subdomain(conf->domains[i], conf->domainlens[i], conf->domains[j],
					   conf->domainlens[j]) &&
		    !(wire_name_equal(conf->domains[i], conf->domainlens[i], conf->domains[j],
				      conf->domainlens[j]) &&
		      j > i))
			return true;
	}
	return false;
}

/* Names per read txn of a list: bounds both the memory of a batch and how long a slow
 * client can pin a snapshot (LMDB: no long-lived readers). */
#define API_LIST_BATCH 1000

typedef struct {
	const conf_t *conf;
	const api_who_t *who;
	size_t dom;		     /* index of the domain being walked */
	uint8_t after[WIRE_KEY_MAX]; /* resume after this name's key; afterlen 0 = from the start */
	size_t afterlen;
	size_t remaining;	       /* names still to send (SIZE_MAX: no limit) */
	char next[WIRE_NAME_TEXT_MAX]; /* the last name sent, once a limit stopped the list */
	char *buf;		       /* one batch of text */
	size_t len, cap;
	bool first;
} list_t;

static int buf_add(list_t *l, const char *s, size_t n)
{
	if (l->len + n > l->cap) {
		size_t cap = (l->len + n) * 2;
		char *b = realloc(l->buf, cap);
		if (!b)
			return -ENOMEM;
		l->buf = b;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return 0;
}

/* One name of a batch into l->buf, comma-separated. */
static int list_emit(void *sink, json_t *n)
{
	list_t *l = sink;
	char *text = json_dumps(n, JSON_COMPACT);
	int ret = text ? 0 : -ENOMEM;

	if (!ret && !l->first)
		ret = buf_add(l, ",", 1);
	if (!ret)
		ret = buf_add(l, text, strlen(text));
	free(text);
	if (ret < 0)
		return ret;
	l->first = false;
	snprintf(l->next, sizeof(l->next), "%s", json_string_value(json_object_get(n, "name")));
	return 0;
}

/* One batch: up to API_LIST_BATCH names of domain l->dom after l->after, in one read txn,
 * rendered into l->buf. @return 1 when the domain has more names, 0 when done, <0 error. */
static int list_batch(api_t *api, list_t *l)
{
	size_t want = l->remaining < API_LIST_BATCH ? l->remaining : API_LIST_BATCH;
	collect_t cl = {.names = json_array(), .max_names = want, .emit = list_emit, .sink = l};
	const conf_t *conf = l->conf;
	store_rtxn_t *t = NULL;
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen;
	int ret;

	if (!cl.names)
		return -ENOMEM;
	if ((ret = wire_name_to_key(conf->domains[l->dom], conf->domainlens[l->dom], key,
				    &keylen)) < 0 ||
	    (ret = store_read_begin(api->store, &t)) < 0) {
		json_decref(cl.names);
		return ret;
	}
	collect_for(api, l->who, t, &cl);
	ret = l->afterlen
		  ? store_iter_after(t, key, keylen, l->after, l->afterlen, 0xFFFF, collect_cb, &cl)
		  : store_iter(t, key, keylen, collect_cb, &cl);
	store_read_end(t);
	if (ret >= 0 && cl.err >= 0 && cl.cur) /* the batch's last name */
		cl.err = list_emit(l, cl.cur);
	json_decref(cl.names);
	if (ret < 0 || cl.err < 0)
		return ret < 0 ? ret : cl.err;
	if (cl.keylen) {
		memcpy(l->after, cl.key, cl.keylen);
		l->afterlen = cl.keylen;
	}
	if (l->remaining != SIZE_MAX)
		l->remaining -= cl.count;
	return cl.more ? 1 : 0;
}

/* ?limit=N&after=<name>: parsed into l. @return 0 or the status already replied. */
static int list_params(api_t *api, struct mg_connection *c, list_t *l)
{
	const char *qs = mg_get_request_info(c)->query_string;
	char v[WIRE_NAME_TEXT_MAX + 1], *end;
	const conf_t *conf = api->conf;
	rname_t a;

	l->remaining = SIZE_MAX;
	if (!qs)
		return 0;
	if (mg_get_var(qs, strlen(qs), "limit", v, sizeof(v)) >= 0) {
		unsigned long n = strtoul(v, &end, 10);
		if (!v[0] || *end || v[0] == '-' || n == 0 || n > 1000000)
			return api_reply_error(c, 400,
					       "limit must be an integer from 1 to 1000000");
		l->remaining = n;
	}
	if (mg_get_var(qs, strlen(qs), "after", v, sizeof(v)) < 0 || !v[0])
		return 0;
	if (api_name_owner(conf, v, &a) < 0)
		return api_reply_error(c, 400, "after: bad or foreign name \"%.255s\"", v);
	for (l->dom = 0; l->dom < conf->ndomains; l->dom++)
		if (!domain_nested(conf, l->dom) &&
		    wire_name_is_subdomain(a.name, a.len, conf->domains[l->dom],
					   conf->domainlens[l->dom]))
			break;
	if (l->dom == conf->ndomains)
		return api_reply_error(c, 400, "after: \"%s\" is in no listed domain", a.text);
	memcpy(l->after, a.key, a.keylen);
	l->afterlen = a.keylen;
	return 0;
}

/*
 * GET /skydns/api/[?limit=N&after=<name>]: the names in store order, domain by domain,
 * streamed batch by batch (API_LIST_BATCH names per read txn), so neither the document nor
 * a snapshot grows with the store. The body ends at the close (the API closes after every
 * reply), not with chunked framing, so clients that read to EOF keep working. With a limit,
 * "next" names the last name sent while more remain: pass it as after= for the next page.
 * An error past the headers can only cut the body short (invalid JSON), and is logged.
 */
static int list_names(api_t *api, struct mg_connection *c, const api_who_t *who)
{
	const conf_t *conf = api->conf;
	list_t l = {.conf = conf, .who = who, .first = true};
	bool more = false;
	int ret;

	if ((ret = list_params(api, c, &l)) != 0)
		return ret;
	api_reply_stream_start(c, 200, "application/json");
	ret = buf_add(&l, "{\"names\":[", 10);
	for (; ret >= 0 && l.dom < conf->ndomains; l.dom++, l.afterlen = 0) {
		if (domain_nested(conf, l.dom))
			continue;
		do {
			ret = list_batch(api, &l);
			if (l.len && mg_write(c, l.buf, l.len) <= 0)
				ret = -EPIPE;
			l.len = 0;
		} while (ret == 1 && l.remaining);
		if (ret == 1) { /* the limit ran out in a domain that has more */
			more = true;
			break;
		}
		if (ret == 0 && l.remaining == 0 && l.dom + 1 < conf->ndomains) {
			more = true; /* later domains may hold names: next says where to go on */
			break;
		}
	}
	if (ret >= 0) {
		json_t *tail = more ? json_pack("{s:s}", "next", l.next) : NULL;
		char *t = tail ? json_dumps(tail, JSON_COMPACT) : NULL;
		/* "],"next":"x"}" from {"next":"x"}: the object's members after the array */
		if (t)
			mg_printf(c, "],%s\n", t + 1);
		else
			mg_printf(c, "]}\n");
		free(t);
		json_decref(tail);
	} else {
		log_err("api: list cut short: %s", err_str(ret));
	}
	free(l.buf);
	return 200;
}

/* POST ?takeover=<what>: true with what[0..cap) set. */
static bool takeover_arg(struct mg_connection *c, char *what, size_t cap)
{
	const char *qs = mg_get_request_info(c)->query_string;

	return qs && mg_get_var(qs, strlen(qs), "takeover", what, cap) >= 0;
}

int api_records_handle(api_t *api, struct mg_connection *c, const api_who_t *who,
		       const char *method, const char *rest)
{
	char what[64];
	rname_t name;
	int ret;

	int op = strcmp(method, "POST") == 0	 ? API_OP_CREATE
		 : strcmp(method, "PUT") == 0	 ? API_OP_UPDATE
		 : strcmp(method, "DELETE") == 0 ? API_OP_DELETE
						 : 0;
	if (!op && strcmp(method, "GET") != 0)
		return api_reply_error(c, 405, "method %s not allowed", method);
	/* The list: GET lists; a write there is only a PTR given by its address ("ip"). */
	if (rest[0] == '\0')
		return op ? handle_write(api, c, who, op, NULL) : list_names(api, c, who);
	if ((ret = api_name_owner(api->conf, rest, &name)) < 0) {
		char msg[500];
		api_name_error(api->conf, "name", rest, ret, msg, sizeof(msg));
		return api_reply_error(c, 400, "%s", msg);
	}
	if (!op)
		return show_name(api, c, who, &name, 200);
	if (op == API_OP_CREATE && takeover_arg(c, what, sizeof(what)))
		return api_takeover(api, c, who, &name, what);
	return handle_write(api, c, who, op, &name);
}
