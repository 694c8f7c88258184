/*
 * api/dist: see api_dist.h. The records of a name, as this API writes and
 * reads them in etcd, are keys of the name's own etcd directory D (prefix
 * and the reversed labels, "/skydns/local/skydns/web"):
 *   D/ip-10-0-0-1   {"host":"10.0.0.1","ttl":300}     A (AAAA alike)
 *   D/txt-<fnv32>   {"text":"...","ttl":300}          TXT
 *   <alias dir>     {"host":"web.skydns.local.","type":"CNAME","ttl":300}
 * so a request's record always has the same key (create-if-absent finds a
 * duplicate written by another node) and the watcher answers them as any
 * CoreDNS-format keys. Keys others wrote at D or directly below it with an IP
 * host or a text are records of the name as well: they are shown, replaced
 * and deleted like the API's own.
 */
#include "api/api_dist.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>
#include <jansson.h>

#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "store/store.h"

#define DIST_SOCK_NAME "etcd-api.sock" /* watchers/door.h DOOR_SOCK_NAME */
#define DIST_TRIES 8		       /* computations of one request against newer copies */
#define DIST_APPLY_WAIT_MS 3000	       /* reply 504 if the store has not applied by then */
#define DIST_CATCHUP_WAIT_MS 1000      /* after a failed compare: wait for the newer copy */
#define DIST_DOOR_TIMEOUT_S 30	       /* the door fails over between members itself */
#define DIST_KEY_MAX 512
#define DIST_VAL_MAX (API_TEXT_MAX * 2 + 256)
#define DIST_RECS_MAX 1024

/* A record of the name in etcd: its key, value and what it stands for. */
typedef struct {
	char key[DIST_KEY_MAX];
	int64_t mod; /* 0: not in etcd (a new key) */
	uint16_t type;
	uint32_t ttl;
	char value[API_TEXT_MAX + 1]; /* the address as text, the TXT text, the CNAME target */
} drec_t;

typedef struct {
	drec_t *v;
	size_t n;
} drecs_t;

/* One etcd txn being planned. */
typedef struct {
	json_t *cmp, *ops;	 /* owned */
	json_t *added, *removed; /* owned, the reply's lists */
	bool deleted;
	const api_who_t *who;	 /* who asks (set again by plan_init's caller each try) */
	char user[API_USER_MAX]; /* the owner new values carry ("user"), from check_owner */
	char msg[400];
} plan_t;

#define refuse(p, code, ...) api_refuse((p)->msg, sizeof((p)->msg), (code), __VA_ARGS__)

static const char *type_name(uint16_t t)
{
	return t == WIRE_TYPE_A	      ? "A"
	       : t == WIRE_TYPE_AAAA  ? "AAAA"
	       : t == WIRE_TYPE_TXT   ? "TXT"
	       : t == WIRE_TYPE_CNAME ? "CNAME"
				      : "?";
}

bool api_dist_on(const api_t *api)
{
	return api->conf->etcd_servers && api->conf->etcd_servers[0];
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- names and keys ---- */

/* The etcd directory of a name: prefix + its labels reversed ("/skydns/local/skydns/web"). */
static int name_dir(const conf_t *conf, const api_name_t *n, char *out, size_t cap)
{
	const char *p = conf->etcd_prefix ? conf->etcd_prefix : "/skydns";
	size_t pl = strlen(p), o, labels[128], nl = 0;

	while (pl > 0 && p[pl - 1] == '/')
		pl--;
	if (pl + 1 > cap)
		return ERR_TOOBIG;
	memcpy(out, p, pl);
	o = pl;
	for (size_t pos = 0; pos < n->len && n->name[pos] && nl < 128; pos += 1 + n->name[pos])
		labels[nl++] = pos;
	while (nl-- > 0) {
		size_t l = n->name[labels[nl]];
		if (o + 1 + l + 1 > cap)
			return ERR_TOOBIG;
		out[o++] = '/';
		memcpy(out + o, n->name + labels[nl] + 1, l); /* already lowercase */
		o += l;
	}
	out[o] = 0;
	return 0;
}

static uint32_t fnv32(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

/* The key this API gives a record of the name. */
static void rec_key(const char *dir, drec_t *r)
{
	if (r->type == WIRE_TYPE_TXT) {
		snprintf(r->key, sizeof(r->key), "%s/txt-%08x", dir,
			 fnv32(r->value, strlen(r->value)));
		return;
	}
	char leaf[64];
	snprintf(leaf, sizeof(leaf), "%.63s", r->value);
	for (char *p = leaf; *p; p++)
		if (*p == '.' || *p == ':')
			*p = '-';
	snprintf(r->key, sizeof(r->key), "%s/ip-%s", dir, leaf);
}

/* The etcd value of r; `user` is its owner, kept in the original's "user" field (none for
 * the admin's, as the original's values without one). */
static char *rec_value(const drec_t *r, const char *user)
{
	json_t *j = r->type == WIRE_TYPE_TXT
			? json_pack("{s:s,s:I}", "text", r->value, "ttl", (json_int_t)r->ttl)
		    : r->type == WIRE_TYPE_CNAME
			? json_pack("{s:s,s:s,s:I}", "host", r->value, "type", "CNAME", "ttl",
				    (json_int_t)r->ttl)
			: json_pack("{s:s,s:I}", "host", r->value, "ttl", (json_int_t)r->ttl);
	char *s;

	if (j && user[0] && strcmp(user, API_ADMIN_USER) != 0)
		json_object_set_new(j, "user", json_string(user));
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

/* ---- this node's copy of etcd ---- */

typedef struct {
	const api_name_t *n;
	drecs_t *out;
	bool own_only; /* only the key at the name itself (an alias) */
	int err;
} read_t;

/* What an etcd value at (or directly below) the name stands for; 0: none we show. */
static uint16_t classify(const uint8_t *val, size_t vlen, drec_t *r, bool own)
{
	json_t *root = json_loadb((const char *)val, vlen, 0, NULL);
	const char *host = json_string_value(json_object_get(root, "host"));
	const char *text = json_string_value(json_object_get(root, "text"));
	const char *type = json_string_value(json_object_get(root, "type"));
	json_t *ttl = json_object_get(root, "ttl");
	api_addr_t a;
	uint16_t t = 0;

	r->ttl = json_is_integer(ttl) ? (uint32_t)json_integer_value(ttl) : 300;
	if (host && api_addr_parse(host, &a) == 0) {
		t = a.len == 4 ? WIRE_TYPE_A : WIRE_TYPE_AAAA;
		api_addr_format(&a, r->value, sizeof(r->value));
	} else if (host && own && (!type || strcasecmp(type, "CNAME") == 0)) {
		t = WIRE_TYPE_CNAME;
		snprintf(r->value, sizeof(r->value), "%s", host);
	} else if (!host && text) {
		t = WIRE_TYPE_TXT;
		snprintf(r->value, sizeof(r->value), "%s", text);
	}
	json_decref(root);
	return t;
}

static int read_cb(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	read_t *rd = ctx;
	size_t nk = 0, el;
	drec_t *r;

	while (nk < klen && key[nk] != 0)
		nk += 1u + key[nk];
	if (nk >= klen || vlen < 8)
		return 0;
	/* The name itself, or (for records) one label below it. */
	bool own = nk == rd->n->keylen;
	if (!own && (rd->own_only || nk != rd->n->keylen + 1u + key[rd->n->keylen]))
		return 0;
	el = klen - nk - 1;
	if (el >= DIST_KEY_MAX || rd->out->n == DIST_RECS_MAX)
		return 0;
	r = &rd->out->v[rd->out->n];
	memset(r, 0, offsetof(drec_t, value) + 1);
	if (!(r->type = classify(val + 8, vlen - 8, r, own)))
		return 0;
	memcpy(r->key, key + nk + 1, el);
	r->key[el] = 0;
	r->mod = 0;
	for (int i = 0; i < 8; i++)
		r->mod = r->mod << 8 | val[i];
	rd->out->n++;
	return 0;
}

static int read_recs(store_rtxn_t *t, const api_name_t *n, bool own_only, drecs_t *out)
{
	read_t rd = {.n = n, .out = out, .own_only = own_only};

	out->n = 0;
	return store_kv_iter(t, STORE_ETCD_KV_NS, n->key, n->keylen, read_cb, &rd);
}

/*
 * A user changes only the etcd names it owns (the owner the etcd watcher copied from the
 * values' "user" field), the admin every one, keeping its owner; a new name becomes the
 * writer's. Sets p->user, the owner the written values carry.
 */
static int check_user(store_rtxn_t *t, const api_name_t *n, int etcd, plan_t *p)
{
	char owner[API_USER_MAX];
	int ret =
	    api_owner_of(t, n->key, n->keylen, etcd, STORE_OWNER_NS_ETCD, owner, sizeof(owner));

	if (ret < 0)
		return ret;
	if (ret == 0) {
		snprintf(p->user, sizeof(p->user), "%s", p->who->user);
		return 0;
	}
	if ((ret = api_may_change(p->who, owner, n->text, p->msg, sizeof(p->msg))) < 0)
		return ret;
	snprintf(p->user, sizeof(p->user), "%s", owner);
	return 0;
}

/* Names held by sources other than etcd (a zone import, k8s, the embedded API) are not ours. */
static int check_owner(store_rtxn_t *t, const api_name_t *n, plan_t *p)
{
	uint64_t mask = 0;
	int etcd = store_source_find(t, "etcd"), ret;

	if ((ret = store_name_sources(t, n->key, n->keylen, &mask)) < 0)
		return ret;
	if (etcd >= 0)
		mask &= ~((uint64_t)1 << etcd);
	if (!mask)
		return check_user(t, n, etcd, p);
	snprintf(p->msg, sizeof(p->msg),
		 "%.200s holds records of another source (a zone import, the Kubernetes watcher or "
		 "this node's local API store); in distributed mode the API changes only names "
		 "that live in etcd",
		 n->text);
	return ERR_READONLY;
}

/* ---- planning the txn ---- */

static int note(plan_t *p, json_t *list, const api_name_t *owner, const drec_t *r)
{
	json_t *e = json_pack("{s:s,s:s,s:I,s:s}", "name", owner->text, "type", type_name(r->type),
			      "ttl", (json_int_t)r->ttl, "value", r->value);

	(void)p;
	return e && json_array_append_new(list, e) == 0 ? 0 : -ENOMEM;
}

static int cmp_key(plan_t *p, const char *key, int64_t mod)
{
	json_t *c = json_pack("{s:s,s:I}", "key", key, "mod", (json_int_t)mod);

	return c && json_array_append_new(p->cmp, c) == 0 ? 0 : -ENOMEM;
}

/* Every key below dir changed at or before rev: nothing was added behind our back. */
static int cmp_subtree(plan_t *p, const char *dir, int64_t rev)
{
	char from[DIST_KEY_MAX + 2], end[DIST_KEY_MAX + 2];
	json_t *c;

	snprintf(from, sizeof(from), "%s/", dir);
	snprintf(end, sizeof(end), "%s0", dir); /* '0' is '/' + 1 */
	c = json_pack("{s:s,s:s,s:I}", "key", from, "end", end, "mod", (json_int_t)rev + 1);
	return c && json_array_append_new(p->cmp, c) == 0 ? 0 : -ENOMEM;
}

static int op_put(plan_t *p, const api_name_t *owner, const drec_t *r, int64_t expect)
{
	char *v = rec_value(r, p->user);
	json_t *o = v ? json_pack("{s:s,s:s}", "put", r->key, "value", v) : NULL;
	int ret = o && json_array_append_new(p->ops, o) == 0 ? 0 : -ENOMEM;

	free(v);
	if (ret == 0)
		ret = cmp_key(p, r->key, expect);
	return ret == 0 ? note(p, p->added, owner, r) : ret;
}

static int op_del(plan_t *p, const api_name_t *owner, const drec_t *r)
{
	json_t *o = json_pack("{s:s}", "del", r->key);
	int ret = o && json_array_append_new(p->ops, o) == 0 ? 0 : -ENOMEM;

	if (ret == 0)
		ret = cmp_key(p, r->key, r->mod);
	return ret == 0 ? note(p, p->removed, owner, r) : ret;
}

static const drec_t *find_rec(const drecs_t *h, uint16_t type, const char *value)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].type == type && strcmp(h->v[i].value, value) == 0)
			return &h->v[i];
	return NULL;
}

static const drec_t *find_cname(const drecs_t *h)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].type == WIRE_TYPE_CNAME)
			return &h->v[i];
	return NULL;
}

/* The records a request names (addresses, text), with their keys. */
static int wanted(const api_req_t *req, const char *dir, drecs_t *out)
{
	out->n = 0;
	for (size_t i = 0; i < req->naddrs && out->n < DIST_RECS_MAX; i++) {
		drec_t *r = &out->v[out->n++];
		r->type = req->addrs[i].len == 4 ? WIRE_TYPE_A : WIRE_TYPE_AAAA;
		r->ttl = req->ttl;
		r->mod = 0;
		api_addr_format(&req->addrs[i], r->value, sizeof(r->value));
		rec_key(dir, r);
	}
	if (req->type == API_T_TXT && req->textlen && out->n < DIST_RECS_MAX) {
		drec_t *r = &out->v[out->n++];
		r->type = WIRE_TYPE_TXT;
		r->ttl = req->ttl;
		r->mod = 0;
		snprintf(r->value, sizeof(r->value), "%.*s", (int)req->textlen, req->text);
		rec_key(dir, r);
	}
	return req->naddrs > DIST_RECS_MAX ? ERR_TOOBIG : 0;
}

typedef struct {
	api_t *api;
	const api_who_t *who;
	const api_name_t *name;
	const api_req_t *req;
	char dir[DIST_KEY_MAX];
	drecs_t have, want;
	int64_t rev; /* the revision the copy was read at */
} dreq_t;

static int plan_create(dreq_t *d, plan_t *p)
{
	int ret;

	if (find_cname(&d->have))
		return refuse(p, ERR_CONFLICT, "%s is a CNAME; it cannot hold other records",
			      d->name->text);
	for (size_t i = 0; i < d->want.n; i++) {
		const drec_t *w = &d->want.v[i];
		if (find_rec(&d->have, w->type, w->value))
			return refuse(p, ERR_CONFLICT, "%s already has this %s record",
				      d->name->text, type_name(w->type));
		/* Create-if-absent only: two nodes adding different records both win. */
		if ((ret = op_put(p, d->name, w, 0)) < 0)
			return ret;
	}
	return 0;
}

static bool type_in(const drecs_t *s, uint16_t type)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].type == type)
			return true;
	return false;
}

/* PUT without "update": the request's records replace the name's records of their types. */
static int plan_replace(dreq_t *d, plan_t *p)
{
	int ret;

	if (find_cname(&d->have))
		return refuse(p, ERR_CONFLICT, "%s is a CNAME; it cannot hold other records",
			      d->name->text);
	for (size_t i = 0; i < d->have.n; i++) {
		const drec_t *h = &d->have.v[i];
		const drec_t *w = find_rec(&d->want, h->type, h->value);
		/* A key the request writes again is overwritten below: one op per key
		 * (etcd refuses a txn naming a key twice). */
		if (!type_in(&d->want, h->type) || (w && !strcmp(w->key, h->key)))
			continue;
		if ((ret = op_del(p, d->name, h)) < 0)
			return ret;
	}
	for (size_t i = 0; i < d->want.n; i++) {
		const drec_t *w = &d->want.v[i];
		const drec_t *h = find_rec(&d->have, w->type, w->value);
		bool same_key = h && !strcmp(w->key, h->key);
		if (same_key && h->ttl == w->ttl)
			continue; /* unchanged */
		if (same_key && (ret = note(p, p->removed, d->name, h)) < 0)
			return ret;
		if ((ret = op_put(p, d->name, w, same_key ? h->mod : 0)) < 0)
			return ret;
	}
	return cmp_subtree(p, d->dir, d->rev);
}

static int plan_updates(dreq_t *d, plan_t *p)
{
	const api_req_t *r = d->req;
	int ret;

	for (size_t i = 0; i < r->nupdates; i++) {
		char from[64], to[64];
		uint16_t type = r->updates[i].from.len == 4 ? WIRE_TYPE_A : WIRE_TYPE_AAAA;
		api_addr_format(&r->updates[i].from, from, sizeof(from));
		api_addr_format(&r->updates[i].to, to, sizeof(to));
		const drec_t *h = find_rec(&d->have, type, from);
		if (!h)
			return refuse(p, ERR_NOTFOUND, "%s has no address %s", d->name->text, from);
		if (find_rec(&d->have, r->updates[i].to.len == 4 ? WIRE_TYPE_A : WIRE_TYPE_AAAA,
			     to))
			return refuse(p, ERR_CONFLICT, "%s already has address %s", d->name->text,
				      to);
		drec_t n = {.type = r->updates[i].to.len == 4 ? WIRE_TYPE_A : WIRE_TYPE_AAAA,
			    .ttl = r->has_ttl ? r->ttl : h->ttl};
		snprintf(n.value, sizeof(n.value), "%s", to);
		rec_key(d->dir, &n);
		if ((ret = op_del(p, d->name, h)) < 0 || (ret = op_put(p, d->name, &n, 0)) < 0)
			return ret;
	}
	return 0;
}

static int plan_delete(dreq_t *d, plan_t *p)
{
	const api_req_t *r = d->req;
	char missing[200] = "";
	int ret;

	p->deleted = true;
	if (d->want.n) {
		for (size_t i = 0; i < d->want.n; i++) {
			const drec_t *w = &d->want.v[i];
			const drec_t *h = find_rec(&d->have, w->type, w->value);
			size_t l = strlen(missing);
			if (!h)
				snprintf(missing + l, sizeof(missing) - l, "%s%s %.60s",
					 l ? ", " : "", type_name(w->type), w->value);
			else if ((ret = op_del(p, d->name, h)) < 0)
				return ret;
		}
		if (missing[0])
			return refuse(p, ERR_NOTFOUND, "%s has no %s; nothing was deleted",
				      d->name->text, missing);
		return 0;
	}
	for (size_t i = 0; i < d->have.n; i++) {
		const drec_t *h = &d->have.v[i];
		if (r->type && h->type != r->type)
			continue;
		if ((ret = op_del(p, d->name, h)) < 0)
			return ret;
	}
	if (json_array_size(p->ops) == 0)
		return refuse(p, ERR_NOTFOUND, "%s has no records%s", d->name->text,
			      r->type ? " of that type" : "");
	return cmp_subtree(p, d->dir, d->rev);
}

/* {"type":"cname","alias":A}: A becomes an alias of the name (a CNAME key at A's directory). */
static int plan_alias(dreq_t *d, store_rtxn_t *t, plan_t *p)
{
	api_name_t alias;
	drecs_t *ah = &d->have; /* the alias's own records replace the name's here */
	char adir[DIST_KEY_MAX];
	uint64_t mask = 0;
	int ret;

	if ((ret = api_name_owner(d->api->conf, d->req->alias, &alias)) < 0) {
		api_name_error(d->api->conf, "alias", d->req->alias, ret, p->msg, sizeof(p->msg));
		return ERR_INVAL;
	}
	if ((ret = name_dir(d->api->conf, &alias, adir, sizeof(adir))) < 0 ||
	    (ret = check_owner(t, &alias, p)) < 0 || (ret = read_recs(t, &alias, true, ah)) < 0)
		return ret;
	const drec_t *h = find_cname(ah);
	drec_t n = {.type = WIRE_TYPE_CNAME, .ttl = d->req->ttl};
	snprintf(n.value, sizeof(n.value), "%s", d->name->text);
	snprintf(n.key, sizeof(n.key), "%s", adir);
	if (d->req->op == API_OP_DELETE) {
		p->deleted = true;
		if (!h || strcasecmp(h->value, n.value) != 0)
			return refuse(p, ERR_NOTFOUND, "%s is not an alias of %s", alias.text,
				      d->name->text);
		return op_del(p, &alias, h);
	}
	if (store_name_sources(t, alias.key, alias.keylen, &mask) == 0 && mask)
		return refuse(p, ERR_CONFLICT, "%s already has records; a CNAME cannot join them",
			      alias.text);
	if (h && d->req->op == API_OP_CREATE)
		return refuse(p, ERR_CONFLICT, "%s already has this CNAME record", alias.text);
	return op_put(p, &alias, &n, h ? h->mod : 0);
}

/* Read this node's copy and plan one txn. @return 0, or a refusal with p->msg. */
static int plan(dreq_t *d, plan_t *p)
{
	store_rtxn_t *t = NULL;
	uint64_t rev = 0;
	int ret;

	if ((ret = store_read_begin(d->api->store, &t)) < 0)
		return refuse(p, ret, "store: %s", err_str(ret));
	if ((ret = store_meta_u64(t, STORE_ETCD_REV, &rev)) < 0) {
		ret = refuse(p, ERR_UPSTREAM,
			     "this node has not read etcd yet (the etcd watcher has not synced)");
		goto out;
	}
	d->rev = (int64_t)rev;
	if (d->req->type == API_T_CNAME) {
		ret = plan_alias(d, t, p);
		goto out;
	}
	if ((ret = check_owner(t, d->name, p)) < 0 ||
	    (ret = read_recs(t, d->name, false, &d->have)) < 0 ||
	    (ret = wanted(d->req, d->dir, &d->want)) < 0)
		goto out;
	if (d->req->op == API_OP_CREATE)
		ret = plan_create(d, p);
	else if (d->req->op == API_OP_UPDATE)
		ret = d->req->nupdates ? plan_updates(d, p) : plan_replace(d, p);
	else
		ret = plan_delete(d, p);
out:
	store_read_end(t);
	if (ret < 0 && !p->msg[0])
		refuse(p, ret, "%s: %s", d->name->text, err_str(ret));
	return ret;
}

/* ---- the door and the wait ---- */

/*
 * One txn through the watcher's socket.
 * @param ok, rev written on success. @return 0, ERR_UPSTREAM (no watcher there, or etcd
 *         failed the txn; msg says why), ERR_PARSE.
 */
static int door_txn(const conf_t *conf, json_t *req, bool *ok, int64_t *rev, char *msg, size_t cap)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = DIST_DOOR_TIMEOUT_S};
	char *body = json_dumps(req, JSON_COMPACT), buf[4096];
	size_t n = 0;
	int fd = -1, ret = ERR_UPSTREAM;
	json_t *root = NULL;

	if (!body)
		return -ENOMEM;
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", conf->data_dir,
			     DIST_SOCK_NAME) >= sizeof(sa.sun_path)) {
		snprintf(msg, cap, "data-dir too long for a socket path");
		goto out;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(msg, cap,
			 "the etcd watcher is not reachable at %s: %s; nothing was written",
			 sa.sun_path, strerror(errno));
		goto out;
	}
	for (size_t off = 0, len = strlen(body); off < len;) {
		ssize_t w = send(fd, body + off, len - off, MSG_NOSIGNAL);
		if (w <= 0) {
			snprintf(msg, cap, "sending to the etcd watcher: %s", strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	shutdown(fd, SHUT_WR);
	for (ssize_t r; n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0;)
		n += (size_t)r;
	buf[n] = 0;
	root = json_loadb(buf, n, 0, NULL);
	const char *err = json_string_value(json_object_get(root, "error"));
	json_t *jrev = json_object_get(root, "rev");
	if (err) {
		snprintf(msg, cap, "etcd: %s (at %s)", err,
			 json_string_value(json_object_get(root, "at"))
			     ? json_string_value(json_object_get(root, "at"))
			     : "?");
		ret = ERR_UPSTREAM;
		goto out;
	}
	if (!json_is_integer(jrev)) {
		snprintf(msg, cap,
			 "the etcd watcher gave no answer; the write may or may not "
			 "have happened");
		ret = ERR_PARSE;
		goto out;
	}
	*ok = json_is_true(json_object_get(root, "ok"));
	*rev = json_integer_value(jrev);
	ret = 0;
out:
	json_decref(root);
	if (fd >= 0)
		close(fd);
	free(body);
	return ret;
}

/* Wait until the store has applied rev. @return true if it did within ms. */
static bool wait_applied(store_t *s, int64_t rev, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	for (;;) {
		store_rtxn_t *t = NULL;
		uint64_t have = 0;
		if (store_read_begin(s, &t) == 0) {
			store_meta_u64(t, STORE_ETCD_REV, &have);
			store_read_end(t);
		}
		if ((int64_t)have >= rev)
			return true;
		if (now_ms() >= end)
			return false;
		struct timespec ts = {.tv_nsec = 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
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
		return 413;
	case ERR_UPSTREAM:
		return 503;
	default:
		return 500;
	}
}

static void plan_clear(plan_t *p)
{
	json_decref(p->cmp);
	json_decref(p->ops);
	json_decref(p->added);
	json_decref(p->removed);
	*p = (plan_t){0};
}

static int plan_init(plan_t *p)
{
	*p = (plan_t){.cmp = json_array(),
		      .ops = json_array(),
		      .added = json_array(),
		      .removed = json_array()};
	return p->cmp && p->ops && p->added && p->removed ? 0 : -ENOMEM;
}

/*
 * Plan, send, and on a failed compare wait for the newer copy and plan again.
 * @return 0 with p holding the applied plan, or <0 with p->msg (and *http set).
 */
static int run(dreq_t *d, plan_t *p, int *http)
{
	int64_t rev = 0;
	bool ok = false;
	int ret;

	for (int tries = 0; tries < DIST_TRIES; tries++) {
		plan_clear(p);
		if ((ret = plan_init(p)) < 0)
			break;
		p->who = d->who;
		if ((ret = plan(d, p)) < 0)
			break;
		if (json_array_size(p->ops) == 0)
			return 0; /* a PUT of what is there already */
		json_t *req = json_pack("{s:O,s:O}", "cmp", p->cmp, "ops", p->ops);
		ret =
		    req ? door_txn(d->api->conf, req, &ok, &rev, p->msg, sizeof(p->msg)) : -ENOMEM;
		json_decref(req);
		if (ret < 0)
			break;
		if (ok) {
			if (wait_applied(d->api->store, rev, DIST_APPLY_WAIT_MS))
				return 0;
			*http = 504;
			refuse(p, ERR_TIMEOUT,
			       "etcd committed the write at revision %lld, but this node's store "
			       "has not applied it within %d ms (is skydns-watch-etcd behind or "
			       "down?)",
			       (long long)rev, DIST_APPLY_WAIT_MS);
			return ERR_TIMEOUT;
		}
		/* Another writer changed the name since our copy: read it again once it is here.
		 * The failed txn's revision may belong to a key outside the prefix, which the
		 * watch never applies, so the wait is bounded and a retry goes on regardless. */
		log_info("api: %s: a concurrent write changed it (etcd revision %lld); computing "
			 "the request again (try %d of %d)",
			 d->name->text, (long long)rev, tries + 2, DIST_TRIES);
		wait_applied(d->api->store, rev, DIST_CATCHUP_WAIT_MS);
	}
	if (ret == 0 && !ok) {
		*http = 409;
		refuse(p, ERR_CONFLICT,
		       "%s: %d tries each lost to a concurrent write; nothing was "
		       "written",
		       d->name->text, DIST_TRIES);
		return ERR_CONFLICT;
	}
	*http = status_of(ret);
	if (!p->msg[0])
		refuse(p, ret, "%s: %s", d->name->text, err_str(ret));
	return ret;
}

int api_dist_write(api_t *api, struct mg_connection *c, const api_who_t *who,
		   const api_name_t *name, const api_req_t *req)
{
	dreq_t *d = calloc(1, sizeof(*d));
	plan_t p = {0};
	int http = 500, ret;

	if (!d || !(d->have.v = calloc(DIST_RECS_MAX, sizeof(drec_t))) ||
	    !(d->want.v = calloc(DIST_RECS_MAX, sizeof(drec_t)))) {
		ret = api_reply_error(c, 500, "out of memory");
		goto out;
	}
	d->api = api;
	d->who = who;
	d->name = name;
	d->req = req;
	if (req->type != API_T_A && req->type != API_T_AAAA && req->type != API_T_TXT &&
	    req->type != API_T_CNAME && !(req->type == API_T_NONE && req->op == API_OP_DELETE)) {
		ret = api_reply_error(c, 501,
				      "distributed mode writes A, AAAA, TXT and cname records; "
				      "write other types as etcd keys (README, etcd)");
		goto out;
	}
	if (req->mode) {
		ret = api_reply_error(c, 400,
				      "\"mode\" cannot be kept in etcd; set random-one / "
				      "hone-one in the config of every node");
		goto out;
	}
	if ((ret = name_dir(api->conf, name, d->dir, sizeof(d->dir))) < 0) {
		ret = api_reply_error(c, 413, "%s: too long for an etcd key", name->text);
		goto out;
	}
	if (run(d, &p, &http) < 0) {
		if (http >= 500)
			log_warn("api: %s: %s", name->text, p.msg);
		ret = api_reply_error(c, http, "%s", p.msg);
		goto out;
	}
	ret = api_records_reply(api, c, who, name, p.added, p.removed, NULL, p.deleted,
				req->op == API_OP_CREATE ? 201 : 200);
out:
	plan_clear(&p);
	if (d) {
		free(d->have.v);
		free(d->want.v);
	}
	free(d);
	return ret;
}

int api_dist_status(api_t *api, struct mg_connection *c, const api_addr_t *a, int st)
{
	const char *mon =
	    api->conf->ip_monitor_path ? api->conf->ip_monitor_path : "/skydns/monitor/status/";
	char ip[64], key[DIST_KEY_MAX], msg[400] = "";
	json_t *req;
	bool ok = false;
	int64_t rev = 0;
	int ret;

	api_addr_format(a, ip, sizeof(ip));
	snprintf(key, sizeof(key), "%s%s", mon, ip);
	/* Health is last-writer-wins (a probe or an operator saying what is true now). */
	req = st ? json_pack("{s:[],s:[{s:s,s:s}]}", "cmp", "ops", "put", key, "value",
			     st == STORE_HEALTH_DOWN ? "{\"status\":\"DOWN\"}"
						     : "{\"status\":\"UP\"}")
		 : json_pack("{s:[],s:[{s:s}]}", "cmp", "ops", "del", key);
	ret = req ? door_txn(api->conf, req, &ok, &rev, msg, sizeof(msg)) : -ENOMEM;
	json_decref(req);
	if (ret < 0)
		return api_reply_error(c, status_of(ret), "%s", msg[0] ? msg : err_str(ret));
	if (!wait_applied(api->store, rev, DIST_APPLY_WAIT_MS))
		return api_reply_error(c, 504,
				       "etcd committed %s at revision %lld, but this node's store "
				       "has not applied it within %d ms",
				       key, (long long)rev, DIST_APPLY_WAIT_MS);
	return 0;
}

int api_dist_reread(api_t *api, const api_name_t *name, json_t **res, char *msg, size_t cap)
{
	char dir[DIST_KEY_MAX], buf[8192];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = DIST_DOOR_TIMEOUT_S};
	json_t *req, *root = NULL;
	char *body = NULL;
	size_t n = 0;
	int fd = -1, http = 503;

	*res = NULL;
	if (name_dir(api->conf, name, dir, sizeof(dir)) < 0) {
		snprintf(msg, cap, "%s: too long for an etcd key", name->text);
		return 413;
	}
	/* Not door_txn: its reply is a txn's; this one carries the re-read's counts. */
	req = json_pack("{s:s}", "reread", dir);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body) {
		snprintf(msg, cap, "out of memory");
		return 500;
	}
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", api->conf->data_dir,
			     DIST_SOCK_NAME) >= sizeof(sa.sun_path)) {
		snprintf(msg, cap, "data-dir too long for a socket path");
		goto out;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, body, strlen(body), MSG_NOSIGNAL) != (ssize_t)strlen(body)) {
		snprintf(msg, cap, "the etcd watcher is not reachable at %s: %s", sa.sun_path,
			 strerror(errno));
		goto out;
	}
	shutdown(fd, SHUT_WR);
	for (ssize_t r; n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0;)
		n += (size_t)r;
	root = json_loadb(buf, n, 0, NULL);
	if (json_is_string(json_object_get(root, "error"))) {
		const char *at = json_string_value(json_object_get(root, "at"));
		snprintf(msg, cap, "re-reading %s from etcd: %s (at %s); the store is as it was",
			 name->text, json_string_value(json_object_get(root, "error")),
			 at ? at : "?");
		goto out;
	}
	if (!json_is_true(json_object_get(root, "ok"))) {
		snprintf(msg, cap, "the etcd watcher gave no answer re-reading %s", name->text);
		goto out;
	}
	json_object_del(root, "ok");
	json_object_set_new(root, "key", json_string(dir));
	*res = root;
	root = NULL;
	http = 200;
out:
	json_decref(root);
	if (fd >= 0)
		close(fd);
	free(body);
	return http;
}
