/*
 * api/takeover: POST /skydns/api/<name>?takeover=import (issue 18). The API changes
 * only names no other source holds (records.c, check_owner), so a name from a zone
 * import gets 409. This route makes such a name the API's on purpose: in one write txn,
 * every entry a zone import holds at the name is re-labelled as the API's (same type,
 * TTL and rdata, so DNS answers do not change) and the caller becomes its owner. From
 * then on normal API writes work on it, and a re-import of the zone leaves it alone
 * (store/import.c skips names the API holds). Watcher names (etcd, Kubernetes) are
 * refused with 409: the watcher would write them again at its next event or re-list.
 * Runs on a civetweb worker thread, like every API handler; no state of its own.
 */
#include "api/api_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>
#include <jansson.h>

#include "api/api_dist.h"
#include "api/api_names.h"
#include "api/api_render.h"
#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "store/store.h"

#define IMPORT_PREFIX "import:"

/* One entry to move, copied out of the map (the writes move the map's pages). */
typedef struct {
	int src;
	uint16_t type;
	uint32_t ttl;
	uint16_t rdlen;
	uint8_t *rdata;
} move_t;

typedef struct {
	const api_name_t *n;
	uint64_t imports; /* source ids of zone imports */
	move_t *moves;
	size_t nmoves, cap;
	int err;
} collect_t;

static int collect_cb(void *ctx, const uint8_t *key, size_t keylen, const store_rrset_t *set)
{
	collect_t *cl = ctx;
	store_rr_t rr;
	size_t pos = 0;
	int ret;

	(void)key;
	if (keylen != cl->n->keylen)
		return 1; /* a descendant: the name's own rrsets come first; those stay */
	while ((ret = store_rrset_next(set, &pos, &rr)) == 1) {
		move_t *m;
		if (!((cl->imports >> rr.source_id) & 1))
			continue;
		if (cl->nmoves == cl->cap) {
			size_t cap = cl->cap ? cl->cap * 2 : 16;
			move_t *p = realloc(cl->moves, cap * sizeof(*p));
			if (!p)
				return cl->err = -ENOMEM;
			cl->moves = p;
			cl->cap = cap;
		}
		m = &cl->moves[cl->nmoves];
		*m = (move_t){.src = rr.source_id,
			      .type = set->type,
			      .ttl = rr.ttl,
			      .rdlen = rr.rdlen,
			      .rdata = malloc(rr.rdlen ? rr.rdlen : 1)};
		if (!m->rdata)
			return cl->err = -ENOMEM;
		memcpy(m->rdata, rr.rdata, rr.rdlen);
		cl->nmoves++;
	}
	return ret < 0 ? (cl->err = ret) : 0;
}

/* Who a source other than the API and the imports is, for the 409. */
static void watcher_label(const char *src, char *out, size_t cap)
{
	if (strcmp(src, "k8s") == 0)
		snprintf(out, cap, "the Kubernetes watcher");
	else if (strcmp(src, "etcd") == 0)
		snprintf(out, cap, "the etcd watcher");
	else
		snprintf(out, cap, "source \"%.100s\"", src);
}

typedef struct {
	api_t *api;
	const api_who_t *who;
	const api_name_t *n;
	store_wtxn_t *w;
	store_rtxn_t *v;
	int api_src;
	uint64_t imports;
	char from[400]; /* the import sources, ", "-separated */
	char owner[API_USER_MAX];
	json_t *taken; /* the entries re-labelled */
	char msg[600];
	int status;
} take_t;

static int refuse(take_t *t, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Note the reply's status and message. @return -1. */
static int refuse(take_t *t, int status, const char *fmt, ...)
{
	va_list ap;

	t->status = status;
	va_start(ap, fmt);
	vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* The name's sources: only zone imports (and the API) may be there. @return 0 or -1. */
static int check_sources(take_t *t)
{
	uint64_t mask = 0;
	char src[STORE_SOURCE_MAX], who[160];
	int ret;

	if ((ret = store_name_sources(t->v, t->n->key, t->n->keylen, &mask)) < 0)
		return refuse(t, 500, "store: %s", err_str(ret));
	if (!mask)
		return refuse(t, 404, "%s: no such name", t->n->text);
	mask &= ~((uint64_t)1 << t->api_src);
	for (int id = 0; id < 64; id++) {
		size_t len = strlen(t->from);
		if (!((mask >> id) & 1))
			continue;
		if ((ret = store_source_name(t->v, id, src, sizeof(src))) < 0)
			snprintf(src, sizeof(src), "#%d", id);
		if (strncmp(src, IMPORT_PREFIX, strlen(IMPORT_PREFIX)) != 0) {
			watcher_label(src, who, sizeof(who));
			return refuse(t, 409,
				      "%s is owned by %s; only a name a zone import holds can be "
				      "taken over (the watcher would write it again): change it "
				      "in its source",
				      t->n->text, who);
		}
		t->imports |= (uint64_t)1 << id;
		snprintf(t->from + len, sizeof(t->from) - len, "%s%s", len ? ", " : "", src);
	}
	if (!t->imports)
		return refuse(t, 409,
			      "%s holds no records of a zone import: it is the API's already "
			      "(change it with PUT, POST or DELETE)",
			      t->n->text);
	return 0;
}

/*
 * The owner the name gets: the caller, as for a new name (records.c, check_user), or the
 * API owner it already has when the API holds records there too (a store imported over
 * API records before imports skipped them), which the caller must then be allowed to
 * change. The admin's names carry no owner value. @return 0 or -1.
 */
static int set_owner(take_t *t)
{
	const api_name_t *n = t->n;
	int ret = api_owner_of(t->v, n->key, n->keylen, t->api_src, STORE_OWNER_NS_API, t->owner,
			       sizeof(t->owner));

	if (ret < 0)
		return refuse(t, 500, "store: %s", err_str(ret));
	if (ret == 1) {
		if (api_may_change(t->who, t->owner, n->text, t->msg, sizeof(t->msg)) < 0)
			return t->status = 403, -1;
		return 0;
	}
	snprintf(t->owner, sizeof(t->owner), "%s", t->who->user);
	if (t->who->admin) {
		snprintf(t->owner, sizeof(t->owner), "%s", API_ADMIN_USER);
		ret = store_kv_del(t->w, STORE_OWNER_NS_API, n->key, n->keylen);
		ret = ret == ERR_NOTFOUND ? 0 : ret;
	} else {
		ret = store_kv_put(t->w, STORE_OWNER_NS_API, n->key, n->keylen,
				   (const uint8_t *)t->who->user, strlen(t->who->user));
	}
	return ret < 0 ? refuse(t, 500, "store: %s", err_str(ret)) : 0;
}

/* Re-label every import entry at the name as the API's. @return 0 or -1. */
static int move_entries(take_t *t)
{
	collect_t cl = {.n = t->n, .imports = t->imports};
	const api_name_t *n = t->n;
	int ret = store_iter(t->v, n->key, n->keylen, collect_cb, &cl);

	if (ret >= 0 && cl.err < 0)
		ret = cl.err;
	/* Add before delete: the rrset never empties, so its answer selection mode stays. */
	for (size_t i = 0; ret >= 0 && i < cl.nmoves; i++) {
		const move_t *m = &cl.moves[i];
		char tname[16], src[STORE_SOURCE_MAX] = "";
		json_t *e;

		if ((ret = store_rr_add(t->w, t->api_src, n->name, n->len, m->type, m->ttl,
					m->rdata, m->rdlen)) < 0 ||
		    (ret = store_rr_del(t->w, m->src, n->name, n->len, m->type, m->rdata,
					m->rdlen)) < 0)
			break;
		wire_type_to_text(m->type, tname, sizeof(tname));
		(void)store_source_name(t->v, m->src, src, sizeof(src));
		e = json_pack("{s:s,s:s,s:I,s:o?,s:s}", "name", n->text, "type", tname, "ttl",
			      (json_int_t)m->ttl, "value",
			      api_render_value(m->type, m->rdata, m->rdlen), "from", src);
		if (!e || json_array_append_new(t->taken, e) < 0)
			ret = -ENOMEM;
	}
	for (size_t i = 0; i < cl.nmoves; i++)
		free(cl.moves[i].rdata);
	free(cl.moves);
	return ret < 0 ? refuse(t, 500, "%s: store: %s", n->text, err_str(ret)) : 0;
}

static int take(take_t *t)
{
	int ret;

	if ((ret = store_write_begin(t->api->store, &t->w)) < 0)
		return refuse(t, 503, "store: %s", err_str(ret));
	t->v = store_write_view(t->w);
	if ((t->api_src = store_source_id(t->w, STORE_SOURCE_API)) < 0) {
		refuse(t, 500, "store: %s", err_str(t->api_src));
		goto fail;
	}
	if (check_sources(t) < 0 || set_owner(t) < 0 || move_entries(t) < 0)
		goto fail;
	ret = store_write_commit(t->w);
	t->w = NULL;
	if (ret < 0)
		return refuse(t, 500, "store commit: %s", err_str(ret));
	return 0;
fail:
	store_write_abort(t->w);
	t->w = NULL;
	return -1;
}

int api_takeover(api_t *api, struct mg_connection *c, const api_who_t *who, const api_name_t *n,
		 const char *what)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	take_t t = {.api = api, .who = who, .n = n};
	json_t *extra, *none;
	int ret;

	if (strcmp(what, "import") != 0)
		return api_reply_error(c, 400,
				       "takeover=%.60s: only takeover=import exists (names of the "
				       "etcd and Kubernetes watchers stay theirs)",
				       what);
	if (ri->content_length > 0 || mg_get_header(c, "Transfer-Encoding"))
		return api_reply_error(c, 400, "a takeover takes no body");
	if (api_dist_on(api))
		return api_reply_error(
		    c, 501,
		    "takeover: with etcd configured the API writes etcd; put the "
		    "name's records into etcd and remove it from the zone file");
	if (!(t.taken = json_array()))
		return api_reply_error(c, 500, "out of memory");
	if (take(&t) < 0) {
		json_decref(t.taken);
		if (t.status == 500)
			log_err("api: takeover of %s: %s", n->text, t.msg);
		return api_reply_error(c, t.status, "%s", t.msg);
	}
	log_info("api: %s taken over from %s by user %s: %zu records are the API's now", n->text,
		 t.from, t.owner, json_array_size(t.taken));
	/* The DNS answers did not change (added and removed stay empty); who holds them did. */
	extra = json_pack("{s:{s:s,s:s,s:O}}", "takeover", "from", t.from, "owner", t.owner,
			  "records", t.taken);
	none = json_array();
	ret = extra && none
		  ? api_records_reply_with(api, c, who, n, none, none, NULL, false, 200, extra)
		  : api_reply_error(c, 500, "out of memory");
	json_decref(extra);
	json_decref(none);
	json_decref(t.taken);
	return ret;
}
