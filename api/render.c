/*
 * api/render: store rrsets -> JSON objects for GET replies. Pure on the
 * bytes of an rrset view; rdata comes from the store and is still checked
 * (a corrupt entry renders as hex rather than crashing the API).
 */
#include "api/api_render.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api/api_json.h"
#include "common/wire.h"
#include "store/store.h"

enum { RENDER_BAD = -1 };

/* Text of a wire name occupying exactly rdata[0..len). */
static int rdata_name(const uint8_t *p, size_t len, char *out, size_t cap)
{
	if (wire_name_check(p, len) < 0)
		return RENDER_BAD;
	return wire_name_to_text(p, len, out, cap) < 0 ? RENDER_BAD : 0;
}

static json_t *render_hex(const uint8_t *p, size_t len)
{
	char buf[2 * 512 + 1];
	size_t n = len > 512 ? 512 : len;

	for (size_t i = 0; i < n; i++)
		snprintf(buf + 2 * i, 3, "%02x", p[i]);
	buf[2 * n] = '\0';
	return json_string(buf);
}

static json_t *render_txt(const uint8_t *p, size_t len)
{
	char buf[65536 / 4];
	size_t pos = 0, n = 0;

	while (pos < len) {
		size_t l = p[pos++];
		if (l > len - pos || n + l >= sizeof(buf))
			return render_hex(p, len);
		memcpy(buf + n, p + pos, l);
		n += l;
		pos += l;
	}
	return json_stringn(buf, n);
}

static json_t *render_srv(const uint8_t *p, size_t len)
{
	char name[WIRE_NAME_TEXT_MAX];

	if (len < 7 || rdata_name(p + 6, len - 6, name, sizeof(name)) < 0)
		return render_hex(p, len);
	return json_pack("{s:i,s:i,s:i,s:s}", "priority", wire_read_u16(p), "weight",
			 wire_read_u16(p + 2), "port", wire_read_u16(p + 4), "target", name);
}

static json_t *render_mx(const uint8_t *p, size_t len)
{
	char name[WIRE_NAME_TEXT_MAX];

	if (len < 3 || rdata_name(p + 2, len - 2, name, sizeof(name)) < 0)
		return render_hex(p, len);
	return json_pack("{s:i,s:s}", "priority", wire_read_u16(p), "host", name);
}

/* A TXT rdata's strings, each on its own: the joined "text" hides where they split. */
static json_t *render_txt_strings(const uint8_t *p, size_t len)
{
	json_t *arr = json_array();
	size_t pos = 0;

	while (arr && pos < len) {
		size_t l = p[pos++];
		if (l > len - pos) {
			json_decref(arr);
			return NULL;
		}
		json_array_append_new(arr, json_stringn((const char *)p + pos, l));
		pos += l;
	}
	return arr;
}

/* One rdata as a JSON value; `field` receives the member name it belongs in. */
static json_t *render_rdata(uint16_t type, const uint8_t *p, size_t len, const char **field)
{
	char buf[WIRE_NAME_TEXT_MAX];
	api_addr_t a;

	switch (type) {
	case WIRE_TYPE_A:
	case WIRE_TYPE_AAAA:
		*field = "ips";
		if (len != (type == WIRE_TYPE_A ? 4u : 16u))
			return render_hex(p, len);
		a.len = (uint8_t)len;
		memcpy(a.b, p, len);
		api_addr_format(&a, buf, sizeof(buf));
		return json_string(buf);
	case WIRE_TYPE_CNAME:
	case WIRE_TYPE_PTR:
	case WIRE_TYPE_NS:
		*field = "hosts";
		if (rdata_name(p, len, buf, sizeof(buf)) < 0)
			return render_hex(p, len);
		return json_string(buf);
	case WIRE_TYPE_TXT:
		*field = "text";
		return render_txt(p, len);
	case WIRE_TYPE_SRV:
		*field = "srv";
		return render_srv(p, len);
	case WIRE_TYPE_MX:
		*field = "mx";
		return render_mx(p, len);
	default:
		*field = "rdata";
		return render_hex(p, len);
	}
}

json_t *api_render_value(uint16_t type, const uint8_t *rd, size_t len)
{
	const char *field;

	return render_rdata(type, rd, len, &field);
}

json_t *api_render_rrset(const store_rrset_t *set)
{
	char tname[16];
	json_t *obj = NULL, *arr = NULL, *strs = NULL;
	const char *field = "rdata";
	store_rr_t rr;
	size_t pos = 0;
	uint32_t ttl = 0;
	int r;

	wire_type_to_text(set->type, tname, sizeof(tname));
	if (!(arr = json_array()))
		return NULL;
	if (set->type == WIRE_TYPE_TXT && !(strs = json_array())) {
		json_decref(arr);
		return NULL;
	}
	while ((r = store_rrset_next(set, &pos, &rr)) == 1) {
		if (json_array_size(arr) == 0)
			ttl = rr.ttl;
		json_array_append_new(arr, render_rdata(set->type, rr.rdata, rr.rdlen, &field));
		if (strs) {
			json_t *st = render_txt_strings(rr.rdata, rr.rdlen);
			json_array_append_new(strs, st ? st : json_null()); /* keeps the indices */
		}
	}
	if (r < 0) {
		json_decref(arr);
		json_decref(strs);
		return NULL;
	}
	obj = json_pack("{s:s,s:I,s:s}", "type", tname, "ttl", (json_int_t)ttl, "mode",
			api_mode_name(set->mode));
	if (!obj) {
		json_decref(arr);
		json_decref(strs);
		return NULL;
	}
	json_object_set_new(obj, field, arr);
	if (strs)
		json_object_set_new(obj, "strings", strs);
	return obj;
}
