/*
 * api/lookup: GET /skydns/lookup/<name>?type=<T>, the status page's lookup
 * box. The answer is the real one: the answer hook runs query_process on
 * this thread's own read snapshot (health, selection, CNAME chase and
 * wildcards included), and this file reads the reply back, section by
 * section, through the bounds-checked wire reader. Each record is matched
 * against the store's entries at its owner to say which source put it there
 * (none: synthesized, such as the SOA, or from a wildcard). A name that is
 * not local is not sent anywhere: the reply says a worker would forward it.
 * Read-only; the workers' counters do not move.
 */
#include "api/api_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>
#include <jansson.h>

#include "api/api_names.h"
#include "api/api_render.h"
#include "common/err.h"
#include "common/wire.h"
#include "conf/conf.h"
#include "store/store.h"

#define LOOKUP_RESP_MAX 65535
/* Decompressed rdata: the names of an SOA can grow past their rdlen. (Heap: civetweb's
 * threads have small stacks.) */
#define LOOKUP_RDATA_MAX (LOOKUP_RESP_MAX + 2 * WIRE_NAME_MAX)

/* The rdata at r->pos (rdlen bytes), names uncompressed, into out. @return length or <0. */
static int rdata_plain(wire_reader_t *r, uint16_t type, uint16_t rdlen, uint8_t *out, size_t cap)
{
	size_t end = r->pos + rdlen, fixed = 0, names = 1, n = 0, tail = 0;
	uint8_t name[WIRE_NAME_MAX];
	size_t len;

	switch (type) {
	case WIRE_TYPE_CNAME:
	case WIRE_TYPE_NS:
	case WIRE_TYPE_PTR:
		break;
	case WIRE_TYPE_MX:
		fixed = 2;
		break;
	case WIRE_TYPE_SRV:
		fixed = 6;
		break;
	case WIRE_TYPE_SOA:
		names = 2;
		tail = 20;
		break;
	default:
		names = 0;
		tail = rdlen;
	}
	if (fixed > cap || wire_get_bytes(r, out, fixed) < 0)
		return ERR_MALFORMED;
	n = fixed;
	for (size_t i = 0; i < names; i++) {
		if (wire_get_name(r, name, &len) < 0 || n + len > cap)
			return ERR_MALFORMED;
		memcpy(out + n, name, len);
		n += len;
	}
	if (n + tail > cap || wire_get_bytes(r, out + n, tail) < 0 || r->pos != end)
		return ERR_MALFORMED;
	return (int)(n + tail);
}

static bool has_names(uint16_t type)
{
	return type == WIRE_TYPE_CNAME || type == WIRE_TYPE_NS || type == WIRE_TYPE_PTR ||
	       type == WIRE_TYPE_MX || type == WIRE_TYPE_SRV;
}

static bool rdata_same(uint16_t type, const uint8_t *a, const uint8_t *b, size_t len)
{
	if (!has_names(type))
		return memcmp(a, b, len) == 0;
	for (size_t i = 0; i < len; i++)
		if (tolower(a[i]) != tolower(b[i]))
			return false;
	return true;
}

/* The sources of the store entries at (owner, type) equal to rd. */
static json_t *sources_of(store_rtxn_t *t, const uint8_t *owner, size_t olen, uint16_t type,
			  const uint8_t *rd, size_t rdlen)
{
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen, pos = 0;
	store_lookup_t l;
	store_rr_t rr;
	char name[STORE_SOURCE_MAX];
	json_t *arr = json_array();

	if (wire_name_to_key(owner, olen, key, &keylen) < 0 ||
	    store_lookup(t, key, keylen, type, &l) < 0 || !l.has_rrset)
		return arr;
	while (store_rrset_next(&l.rrset, &pos, &rr) == 1) {
		if (rr.rdlen != rdlen || !rdata_same(type, rr.rdata, rd, rdlen))
			continue;
		if (store_source_name(t, rr.source_id, name, sizeof(name)) < 0)
			snprintf(name, sizeof(name), "source #%u", rr.source_id);
		json_array_append_new(arr, json_string(name));
	}
	return arr;
}

static json_t *soa_text(const uint8_t *rd, size_t len)
{
	char m[WIRE_NAME_TEXT_MAX], r[WIRE_NAME_TEXT_MAX], buf[2 * WIRE_NAME_TEXT_MAX + 64];
	wire_reader_t rdr;
	uint8_t n1[WIRE_NAME_MAX], n2[WIRE_NAME_MAX];
	size_t l1, l2;
	uint32_t v[5];

	wire_reader_init(&rdr, rd, len);
	if (wire_get_name(&rdr, n1, &l1) < 0 || wire_get_name(&rdr, n2, &l2) < 0 ||
	    wire_name_to_text(n1, l1, m, sizeof(m)) < 0 ||
	    wire_name_to_text(n2, l2, r, sizeof(r)) < 0)
		return json_string("?");
	for (int i = 0; i < 5; i++)
		if (wire_get_u32(&rdr, &v[i]) < 0)
			return json_string("?");
	snprintf(buf, sizeof(buf), "%s %s %u %u %u %u %u", m, r, v[0], v[1], v[2], v[3], v[4]);
	return json_string(buf);
}

/* One section's records as JSON; OPT is left out. @return 0 or ERR_MALFORMED. */
static int section(wire_reader_t *r, store_rtxn_t *t, unsigned count, json_t *arr, uint8_t *rd)
{
	uint8_t owner[WIRE_NAME_MAX];
	char text[WIRE_NAME_TEXT_MAX], tname[16];
	uint16_t type, klass, rdlen;
	uint32_t ttl;
	size_t olen;
	int n;

	for (unsigned i = 0; i < count; i++) {
		if (wire_get_name(r, owner, &olen) < 0 || wire_get_u16(r, &type) < 0 ||
		    wire_get_u16(r, &klass) < 0 || wire_get_u32(r, &ttl) < 0 ||
		    wire_get_u16(r, &rdlen) < 0 || rdlen > wire_remaining(r))
			return ERR_MALFORMED;
		if (type == WIRE_TYPE_OPT) {
			wire_skip(r, rdlen);
			continue;
		}
		if ((n = rdata_plain(r, type, rdlen, rd, LOOKUP_RDATA_MAX)) < 0)
			return n;
		wire_name_to_text(owner, olen, text, sizeof(text));
		wire_type_to_text(type, tname, sizeof(tname));
		json_t *val = type == WIRE_TYPE_SOA ? soa_text(rd, (size_t)n)
						    : api_render_value(type, rd, (size_t)n);
		json_array_append_new(
		    arr, json_pack("{s:s,s:s,s:I,s:o,s:o}", "name", text, "type", tname, "ttl",
				   (json_int_t)ttl, "value", val ? val : json_null(), "sources",
				   sources_of(t, owner, olen, type, rd, (size_t)n)));
	}
	return 0;
}

/* Read the reply back. @return owned JSON or NULL (malformed: a bug of ours, not input). */
static json_t *reply_json(const uint8_t *resp, size_t len, store_rtxn_t *t, uint8_t *rd)
{
	static const char *const names[3] = {"answer", "authority", "additional"};
	uint8_t qname[WIRE_NAME_MAX];
	wire_reader_t r;
	uint16_t id, flags, cnt[4], qt, qc;
	size_t ql;
	json_t *out;

	wire_reader_init(&r, resp, len);
	if (wire_get_u16(&r, &id) < 0 || wire_get_u16(&r, &flags) < 0)
		return NULL;
	for (int i = 0; i < 4; i++)
		if (wire_get_u16(&r, &cnt[i]) < 0)
			return NULL;
	for (unsigned i = 0; i < cnt[0]; i++)
		if (wire_get_name(&r, qname, &ql) < 0 || wire_get_u16(&r, &qt) < 0 ||
		    wire_get_u16(&r, &qc) < 0)
			return NULL;
	out = json_pack("{s:s,s:b,s:b}", "rcode", api_rcode_name(flags & 15), "aa",
			(flags & WIRE_FLAG_AA) != 0, "tc", (flags & WIRE_FLAG_TC) != 0);
	for (int s = 0; out && s < 3; s++) {
		json_t *arr = json_array();
		json_object_set_new(out, names[s], arr);
		if (section(&r, t, cnt[s + 1], arr, rd) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* A query for (name, type) without EDNS, as dig +noedns would send it. @return length. */
static size_t build_query(const uint8_t *name, size_t len, uint16_t type, uint8_t *buf)
{
	memset(buf, 0, WIRE_HDR_LEN);
	wire_write_u16(buf + 2, WIRE_FLAG_RD);
	wire_write_u16(buf + 4, 1);
	memcpy(buf + WIRE_HDR_LEN, name, len);
	wire_write_u16(buf + WIRE_HDR_LEN + len, type);
	wire_write_u16(buf + WIRE_HDR_LEN + len + 2, WIRE_CLASS_IN);
	return WIRE_HDR_LEN + len + 4;
}

/* The name as the page typed it: completed like the records API, or taken as absolute. */
int api_lookup_name(const conf_t *conf, const char *text, uint8_t *name, size_t *len, char *canon,
		    size_t cap)
{
	api_name_t n;

	if (api_name_owner(conf, text, &n) == 0) {
		memcpy(name, n.name, n.len);
		*len = n.len;
		snprintf(canon, cap, "%s", n.text);
		return 0;
	}
	if (wire_name_from_text(text, name, len) < 0)
		return ERR_INVAL;
	wire_name_lower(name, *len);
	return wire_name_to_text(name, *len, canon, cap);
}

static json_t *forwarded_json(api_t *api)
{
	json_t *arr = json_array();
	api_upstream_t *u;
	size_t n;

	if (!api->hooks.upstreams || !(u = calloc(64, sizeof(*u))))
		return arr;
	n = api->hooks.upstreams(api->hooks.ctx, u, 64);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(
		    arr, json_pack("{s:s,s:b}", "server", u[i].addr, "healthy", u[i].healthy));
	free(u);
	return arr;
}

int api_lookup_handle(api_t *api, struct mg_connection *c, const char *rest)
{
	const char *qs = mg_get_request_info(c)->query_string;
	uint8_t name[WIRE_NAME_MAX], req[WIRE_HDR_LEN + WIRE_NAME_MAX + 4], *resp = NULL;
	char canon[WIRE_NAME_TEXT_MAX], tname[32] = "A";
	store_rtxn_t *t = NULL;
	size_t len, rlen = 0;
	json_t *out;
	int type, ret;

	if (!api->hooks.answer)
		return api_reply_error(c, 404, "lookups are not available");
	if (qs && mg_get_var(qs, strlen(qs), "type", tname, sizeof(tname)) < -1)
		return api_reply_error(c, 400, "bad type");
	if ((type = wire_type_from_text(tname)) < 0)
		return api_reply_error(c, 400, "unknown type \"%.32s\"", tname);
	if (!rest[0] || api_lookup_name(api->conf, rest, name, &len, canon, sizeof(canon)) < 0)
		return api_reply_error(c, 400, "bad name \"%.255s\"", rest);
	wire_type_to_text((uint16_t)type, tname, sizeof(tname));
	if ((ret = store_read_begin(api->store, &t)) < 0)
		return api_reply_err_code(c, ret, "store");
	if (!(resp = malloc(LOOKUP_RESP_MAX + LOOKUP_RDATA_MAX))) {
		store_read_end(t);
		return api_reply_error(c, 500, "out of memory");
	}
	ret = api->hooks.answer(api->hooks.ctx, api->conf, t, req,
				build_query(name, len, (uint16_t)type, req), resp, LOOKUP_RESP_MAX,
				&rlen);
	if (ret == 1)
		out = json_pack("{s:s,s:s,s:b,s:o}", "name", canon, "type", tname, "forwarded", 1,
				"upstreams", forwarded_json(api));
	else if (ret == 0 && (out = reply_json(resp, rlen, t, resp + LOOKUP_RESP_MAX)))
		json_object_update_new(out, json_pack("{s:s,s:s,s:b,s:I}", "name", canon, "type",
						      tname, "forwarded", 0, "generation",
						      (json_int_t)store_generation(t)));
	else
		out = NULL;
	store_read_end(t);
	free(resp);
	if (!out)
		return api_reply_error(c, 500, "the answer could not be built or read back");
	return api_reply_json(c, 200, out);
}
