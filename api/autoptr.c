/*
 * api/autoptr: PTRs that follow the API's addresses (see api_autoptr.h).
 */
#include "api/api_autoptr.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api/api_json.h"
#include "api/api_render.h"
#include "common/err.h"
#include "common/wire.h"
#include "store/store.h"

/* The address of an A/AAAA entry at owner in a reply list; false for anything else. */
static bool entry_addr(json_t *e, const api_name_t *owner, api_addr_t *a, uint32_t *ttl)
{
	const char *name = json_string_value(json_object_get(e, "name"));
	const char *type = json_string_value(json_object_get(e, "type"));
	const char *value = json_string_value(json_object_get(e, "value"));
	json_t *t = json_object_get(e, "ttl");

	if (!name || !type || !value || !json_is_integer(t) || strcmp(name, owner->text) != 0 ||
	    (strcmp(type, "A") != 0 && strcmp(type, "AAAA") != 0))
		return false;
	if (api_addr_parse(value, a) < 0)
		return false;
	*ttl = (uint32_t)json_integer_value(t);
	return true;
}

/*
 * The reverse name to keep a PTR at: 1 and *rev set, 0 when the address gets none (no
 * reverse zone holds it, another source owns the name, or a CNAME is there), or < 0.
 */
static int ptr_name(const struct conf *conf, store_rtxn_t *v, int src, const api_addr_t *a,
		    api_name_t *rev)
{
	uint64_t mask = 0;
	store_lookup_t lk;
	int ret = api_name_reverse(conf, a->b, a->len, rev);

	if (ret == ERR_NOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	if ((ret = store_name_sources(v, rev->key, rev->keylen, &mask)) < 0)
		return ret;
	if (mask & ~((uint64_t)1 << src))
		return 0; /* the zone's or watcher's PTR is the truth there */
	if ((ret = store_lookup(v, rev->key, rev->keylen, WIRE_TYPE_CNAME, &lk)) < 0)
		return ret;
	return lk.has_rrset && lk.rrset.count ? 0 : 1;
}

static int note(json_t *list, const api_name_t *rev, uint32_t ttl, const api_name_t *owner)
{
	json_t *e = json_pack("{s:s,s:s,s:I,s:o?}", "name", rev->text, "type", "PTR", "ttl",
			      (json_int_t)ttl, "value",
			      api_render_value(WIRE_TYPE_PTR, owner->name, owner->len));

	return e && json_array_append_new(list, e) == 0 ? 0 : -ENOMEM;
}

/* One address: add (or with del, remove) its PTR to owner. */
static int sync_one(const struct conf *conf, store_wtxn_t *w, int src, const api_name_t *owner,
		    const api_addr_t *a, uint32_t ttl, bool del, json_t *list)
{
	api_name_t rev;
	int ret = ptr_name(conf, store_write_view(w), src, a, &rev);

	if (ret <= 0)
		return ret;
	if (del) {
		ret = store_rr_del(w, src, rev.name, rev.len, WIRE_TYPE_PTR, owner->name,
				   (uint16_t)owner->len);
		if (ret == ERR_NOTFOUND)
			return 0; /* written before auto-ptr was on, or deleted by hand */
	} else {
		ret = store_rr_add(w, src, rev.name, rev.len, WIRE_TYPE_PTR, ttl, owner->name,
				   (uint16_t)owner->len);
	}
	return ret < 0 ? ret : note(list, &rev, ttl, owner);
}

static int sync_list(const struct conf *conf, store_wtxn_t *w, int src, const api_name_t *owner,
		     json_t *list, bool del)
{
	size_t n = json_array_size(list); /* not the PTRs appended on the way */
	api_addr_t a;
	uint32_t ttl;
	int ret;

	for (size_t i = 0; i < n; i++) {
		if (!entry_addr(json_array_get(list, i), owner, &a, &ttl))
			continue;
		if ((ret = sync_one(conf, w, src, owner, &a, ttl, del, list)) < 0)
			return ret;
	}
	return 0;
}

int api_autoptr_sync(const struct conf *conf, store_wtxn_t *w, int src, const api_name_t *owner,
		     json_t *added, json_t *removed, char *msg, size_t msglen)
{
	int ret;

	/* Removals first: a PUT that changes an address's TTL removes and re-adds its PTR. */
	if ((ret = sync_list(conf, w, src, owner, removed, true)) < 0 ||
	    (ret = sync_list(conf, w, src, owner, added, false)) < 0)
		snprintf(msg, msglen, "auto-ptr for %s: %s", owner->text, err_str(ret));
	return ret;
}
