/*
 * api/names: request names -> wire names inside the local domains (see
 * api_names.h).
 */
#include "api/api_names.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/wire.h"
#include "conf/conf.h"

int api_name_finish(api_name_t *n)
{
	wire_name_lower(n->name, n->len);
	if (wire_name_to_key(n->name, n->len, n->key, &n->keylen) < 0)
		return ERR_INVAL;
	return wire_name_to_text(n->name, n->len, n->text, sizeof(n->text)) < 0 ? ERR_INVAL : 0;
}

/* Append the default (first forward) local domain to a relative wire name. */
static int append_domain(const conf_t *conf, api_name_t *n)
{
	size_t d = conf_default_domain(conf);
	size_t dlen = conf->domainlens[d];

	if (n->len - 1 + dlen > WIRE_NAME_MAX)
		return ERR_TOOBIG;
	memcpy(n->name + n->len - 1, conf->domains[d], dlen);
	n->len = n->len - 1 + dlen;
	return 0;
}

/*
 * May a relative name get the first local domain? A single label may
 * ("cctv2"), and so may service labels before it ("_http._tcp.web"), which
 * nobody types by accident. Any other dotted name was meant as a full name:
 * completing "cctv9.skydns.locl" would create a name nobody asked for.
 */
static bool completable(const uint8_t *name, size_t len)
{
	size_t pos = 0;

	while (pos < len && name[pos] != 0) {
		size_t l = name[pos];
		bool last = pos + 1 + l >= len || name[pos + 1 + l] == 0;
		if (!last && (l == 0 || name[pos + 1] != '_'))
			return false;
		pos += 1 + l;
	}
	return true;
}

static size_t label_count(const uint8_t *name, size_t len)
{
	size_t n = 0;

	for (size_t pos = 0; pos < len && name[pos]; pos += 1 + (size_t)name[pos])
		n++;
	return n;
}

/* "web.default" -> "web.default.<api-search>.<first domain>" (the original's name.namespace). */
static int append_search(const conf_t *conf, api_name_t *n)
{
	uint8_t s[WIRE_NAME_MAX];
	size_t slen;

	if (wire_name_from_text(conf->api_search, s, &slen) < 0 ||
	    n->len - 1 + slen > WIRE_NAME_MAX)
		return ERR_INVAL;
	wire_name_lower(s, slen);
	memcpy(n->name + n->len - 1, s, slen);
	n->len = n->len - 1 + slen;
	return append_domain(conf, n);
}

/* "skydns.local., example.test." for error messages. */
static const char *domains_text(const conf_t *conf, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < conf->ndomains && n < cap; i++) {
		char t[WIRE_NAME_TEXT_MAX];
		if (wire_name_to_text(conf->domains[i], conf->domainlens[i], t, sizeof(t)) < 0)
			continue;
		n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", t);
	}
	return buf;
}

/*
 * Owner names (DESIGN §6): "name." is absolute; a name already ending in a
 * local domain is taken as is; a single label (after any "_service" labels)
 * gets the first local domain. Anything else is refused. The result must lie
 * inside a local domain.
 * @return 0, ERR_INVAL (not a name) or ERR_NOTFOUND (outside the domains).
 */
int api_name_owner(const conf_t *conf, const char *text, api_name_t *out)
{
	api_name_t n;
	size_t tl = strlen(text);

	if (tl == 0 || strcmp(text, ".") == 0 || wire_name_from_text(text, n.name, &n.len) < 0)
		return ERR_INVAL;
	wire_name_lower(n.name, n.len);
	if (text[tl - 1] != '.' && conf_domain_of(conf, n.name, n.len) < 0) {
		if (completable(n.name, n.len)) {
			if (append_domain(conf, &n) < 0)
				return ERR_INVAL;
		} else if (!conf->api_search || label_count(n.name, n.len) != 2) {
			return ERR_NOTFOUND;
		} else if (append_search(conf, &n) < 0) {
			return ERR_INVAL;
		}
	}
	if (conf_domain_of(conf, n.name, n.len) < 0)
		return ERR_NOTFOUND;
	if (api_name_finish(&n) < 0)
		return ERR_INVAL;
	*out = n;
	return 0;
}

/* The 400 text for a name resolve_owner refused. */
void api_name_error(const conf_t *conf, const char *what, const char *text, int code, char *buf,
		    size_t cap)
{
	char doms[300];

	if (code == ERR_INVAL)
		snprintf(buf, cap, "%s \"%.200s\" is not a valid name", what, text);
	else
		snprintf(buf, cap,
			 "%s \"%.200s\" is not inside a local domain (%s): give a single label, "
			 "a name ending in a local domain, or a full name with a trailing dot",
			 what, text, domains_text(conf, doms, sizeof(doms)));
}

/* Targets (SRV/MX/PTR) may point anywhere: only a single label is made local. */
int api_name_target(const conf_t *conf, const char *text, api_name_t *out)
{
	api_name_t n;

	if (wire_name_from_text(text, n.name, &n.len) < 0 || n.len < 2)
		return ERR_INVAL;
	if (!strchr(text, '.') && append_domain(conf, &n) < 0)
		return ERR_TOOBIG;
	if (api_name_finish(&n) < 0)
		return ERR_INVAL;
	*out = n;
	return 0;
}

/* Append the label `text` at pos; returns the new end. */
static size_t put_label(uint8_t *p, size_t pos, const char *text)
{
	size_t l = strlen(text);

	p[pos] = (uint8_t)l;
	memcpy(p + pos + 1, text, l);
	return pos + 1 + l;
}

int api_name_reverse(const conf_t *conf, const uint8_t *addr, size_t alen, api_name_t *out)
{
	static const char hex[] = "0123456789abcdef";
	api_name_t n;
	size_t pos = 0;
	char t[4];

	if (alen != 4 && alen != 16)
		return ERR_INVAL;
	for (size_t i = alen; i-- > 0;) {
		if (alen == 4) {
			snprintf(t, sizeof(t), "%u", addr[i]);
			pos = put_label(n.name, pos, t);
			continue;
		}
		t[1] = '\0';
		t[0] = hex[addr[i] & 15];
		pos = put_label(n.name, pos, t);
		t[0] = hex[addr[i] >> 4];
		pos = put_label(n.name, pos, t);
	}
	pos = put_label(n.name, pos, alen == 4 ? "in-addr" : "ip6");
	pos = put_label(n.name, pos, "arpa");
	n.name[pos++] = 0;
	n.len = pos;
	if (conf_domain_of(conf, n.name, n.len) < 0)
		return ERR_NOTFOUND;
	if (api_name_finish(&n) < 0)
		return ERR_INVAL;
	*out = n;
	return 0;
}
