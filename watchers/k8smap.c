/*
 * k8smap.c: Service/EndpointSlice JSON -> compact forms -> records, after the
 * Kubernetes DNS-Based Service Discovery specification 1.1.0 and what
 * CoreDNS's kubernetes plugin answers.
 */
#include "watchers/k8smap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <jansson.h>

#include "common/err.h"

#define TRIGGER_ANNOTATION "endpoints.kubernetes.io/last-change-trigger-time"
#define SERVICE_LABEL "kubernetes.io/service-name"

static const char *str_at(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int copy_str(char *dst, size_t cap, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n >= cap)
		return ERR_PARSE;
	memcpy(dst, s ? s : "", n);
	dst[n] = 0;
	return 0;
}

/* A DNS label as Kubernetes names are (RFC 1123, lowercase). */
static bool is_label(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

int k8smap_ident(const json_t *obj, k8smap_id_t *id)
{
	const json_t *md = json_object_get(obj, "metadata");
	const json_t *labels = json_object_get(md, "labels");
	k8smap_id_t t;

	memset(&t, 0, sizeof(t));
	if (!json_is_object(md) || copy_str(t.ns, sizeof(t.ns), str_at(md, "namespace")) < 0 ||
	    copy_str(t.name, sizeof(t.name), str_at(md, "name")) < 0 ||
	    copy_str(t.rv, sizeof(t.rv), str_at(md, "resourceVersion")) < 0)
		return ERR_PARSE;
	if (copy_str(t.svc, sizeof(t.svc), str_at(labels, SERVICE_LABEL)) < 0)
		t.svc[0] = 0;
	*id = t;
	return 0;
}

/* [[name, proto, port], ...] from a Service's or slice's ports; unusable entries skipped. */
static json_t *compact_ports(const json_t *ports, bool service)
{
	json_t *out = json_array();
	const json_t *p;
	size_t i;

	if (!out)
		return NULL;
	json_array_foreach(ports, i, p)
	{
		const char *name = str_at(p, "name"), *proto = str_at(p, "protocol");
		const json_t *port = json_object_get(p, "port");
		json_t *e;

		if (!json_is_object(p))
			continue;
		if (service && !json_is_integer(port))
			continue;
		e = json_pack("[s?sO]", name && name[0] ? name : NULL, proto ? proto : "TCP",
			      json_is_integer(port) ? (json_t *)port : json_null());
		if (!e || json_array_append_new(out, e) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* Addresses that parse as IPs, as text; others dropped. */
static json_t *compact_ips(const json_t *list)
{
	json_t *out = json_array();
	const json_t *v;
	uint8_t buf[16];
	size_t i;

	if (!out)
		return NULL;
	json_array_foreach(list, i, v)
	{
		const char *s = json_string_value(v);

		if (!s || (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1))
			continue;
		if (json_array_append_new(out, json_string(s)) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

static int dump(json_t *o, char **out)
{
	char *s;

	if (!o)
		return -ENOMEM;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	*out = s;
	return 0;
}

int k8smap_service(const json_t *obj, k8smap_id_t *id, char **out)
{
	const json_t *spec = json_object_get(obj, "spec");
	const json_t *ips = json_object_get(spec, "clusterIPs");
	const char *cip = str_at(spec, "clusterIP"), *type = str_at(spec, "type");
	k8smap_id_t t;
	json_t *one = NULL, *o;
	int ret;

	if ((ret = k8smap_ident(obj, &t)) < 0)
		return ret;
	/* clusterIPs is newer (dual-stack); an old object has clusterIP alone. */
	if (!json_is_array(ips) || json_array_size(ips) == 0) {
		if (!(one = json_array()) || (cip && json_array_append_new(one, json_string(cip))))
			goto nomem;
		ips = one;
	}
	o = json_pack("{s:s,s:b,s:b,s:s?,s:o,s:o,s:o}", "t", type ? type : "ClusterIP", "h",
		      cip && strcmp(cip, "None") == 0, "u",
		      json_is_true(json_object_get(spec, "publishNotReadyAddresses")), "x",
		      str_at(spec, "externalName"), "ips", compact_ips(ips), "e",
		      compact_ips(json_object_get(spec, "externalIPs")), "p",
		      compact_ports(json_object_get(spec, "ports"), true));
	json_decref(one);
	if ((ret = dump(o, out)) < 0)
		return ret;
	*id = t;
	return 0;
nomem:
	json_decref(one);
	return -ENOMEM;
}

int k8smap_time_ms(const char *text, uint64_t *ms)
{
	struct tm tm;
	unsigned frac = 0, scale = 1000;
	const char *p;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (!text || !(p = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm)))
		return ERR_PARSE;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (unsigned)(*p - '0') * scale;
			}
		}
	}
	if (*p != 'Z' || p[1] != 0)
		return ERR_PARSE;
	if ((t = timegm(&tm)) < 0)
		return ERR_PARSE;
	*ms = (uint64_t)t * 1000 + frac;
	return 0;
}

/* [[address, hostname|null, ready], ...]: the first address of each endpoint. */
static json_t *compact_endpoints(const json_t *eps)
{
	json_t *out = json_array();
	const json_t *ep;
	uint8_t buf[16];
	size_t i;

	if (!out)
		return NULL;
	json_array_foreach(eps, i, ep)
	{
		const char *addr =
		    json_string_value(json_array_get(json_object_get(ep, "addresses"), 0));
		const char *host = str_at(ep, "hostname");
		const json_t *ready = json_object_get(json_object_get(ep, "conditions"), "ready");
		json_t *e;

		if (!addr ||
		    (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1))
			continue;
		/* conditions.ready: nil means true (EndpointSlice API). */
		e = json_pack("[ss?b]", addr, is_label(host) ? host : NULL, !json_is_false(ready));
		if (!e || json_array_append_new(out, e) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

int k8smap_slice(const json_t *obj, k8smap_id_t *id, char **out)
{
	const json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
	const char *at = str_at(obj, "addressType");
	uint64_t tt = 0;
	k8smap_id_t t;
	json_t *o;
	int ret;

	if ((ret = k8smap_ident(obj, &t)) < 0)
		return ret;
	if (k8smap_time_ms(str_at(ann, TRIGGER_ANNOTATION), &tt) < 0)
		tt = 0;
	/* FQDN slices are deprecated and have no DNS meaning: kept, without endpoints. */
	bool ip = at && (!strcmp(at, "IPv4") || !strcmp(at, "IPv6"));
	o = json_pack("{s:s,s:o,s:o,s:I}", "at", at ? at : "", "ep",
		      ip ? compact_endpoints(json_object_get(obj, "endpoints")) : json_array(), "p",
		      compact_ports(json_object_get(obj, "ports"), false), "tt", (json_int_t)tt);
	if ((ret = dump(o, out)) < 0)
		return ret;
	*id = t;
	return 0;
}

int k8smap_pod(const json_t *obj, k8smap_id_t *id, char **out)
{
	const json_t *md = json_object_get(obj, "metadata");
	const json_t *st = json_object_get(obj, "status");
	const json_t *ips = json_object_get(st, "podIPs"), *e;
	const char *phase = str_at(st, "phase");
	char buf[256] = "", *c;
	uint8_t a[16];
	size_t i, n = 0;
	k8smap_id_t t;
	int ret;

	if ((ret = k8smap_ident(obj, &t)) < 0)
		return ret;
	bool gone = (json_object_get(md, "deletionTimestamp") &&
		     !json_is_null(json_object_get(md, "deletionTimestamp"))) ||
		    (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")));
	for (i = 0; !gone && i < (json_is_array(ips) ? json_array_size(ips) : 1); i++) {
		e = json_is_array(ips) ? json_object_get(json_array_get(ips, i), "ip")
				       : json_object_get(st, "podIP");
		const char *ip = json_string_value(e);
		size_t l = ip ? strlen(ip) : 0;
		if (!ip || (inet_pton(AF_INET, ip, a) != 1 && inet_pton(AF_INET6, ip, a) != 1) ||
		    n + l + 2 > sizeof(buf))
			continue;
		if (n)
			buf[n++] = ',';
		memcpy(buf + n, ip, l + 1);
		n += l;
	}
	if (!(c = strdup(buf)))
		return -ENOMEM;
	*id = t;
	*out = c;
	return 0;
}

/* ---- records ---- */

static int name_cat(uint8_t *dst, size_t *len, const char *label)
{
	size_t n = strlen(label);

	if (n == 0 || n > 63 || *len + n + 1 > WIRE_NAME_MAX - 1)
		return ERR_TOOBIG;
	dst[*len] = (uint8_t)n;
	memcpy(dst + *len + 1, label, n);
	*len += n + 1;
	return 0;
}

/* labels... then a wire suffix. */
static int name_join(uint8_t *dst, size_t *len, const char *l1, const char *l2,
		     const uint8_t *suffix, size_t slen)
{
	size_t n = 0;

	if ((l1 && name_cat(dst, &n, l1) < 0) || (l2 && name_cat(dst, &n, l2) < 0) ||
	    n + slen > WIRE_NAME_MAX)
		return ERR_TOOBIG;
	memcpy(dst + n, suffix, slen);
	*len = n + slen;
	return 0;
}

static k8smap_rec_t *rec_new(k8smap_derive_t *d)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		k8smap_rec_t *nr = realloc(d->recs, cap * sizeof(*nr));

		if (!nr)
			return NULL;
		d->recs = nr;
		d->cap = cap;
	}
	return &d->recs[d->n++];
}

static int add_rec(k8smap_derive_t *d, const uint8_t *name, size_t len, uint16_t type,
		   const void *rdata, size_t rdlen, bool shared)
{
	k8smap_rec_t *r;

	if (rdlen > sizeof(r->rdata))
		return ERR_TOOBIG;
	if (!(r = rec_new(d)))
		return -ENOMEM;
	memcpy(r->name, name, len);
	r->namelen = len;
	wire_name_lower(r->name, len);
	r->type = type;
	r->rdlen = (uint16_t)rdlen;
	memcpy(r->rdata, rdata, rdlen);
	r->shared = shared;
	return 0;
}

/* The PTR owner of an address: d.c.b.a.in-addr.arpa or the ip6.arpa nibbles. */
static int ptr_name(const uint8_t *a, size_t alen, uint8_t *out, size_t *len)
{
	static const uint8_t v4[] = {7,	  'i', 'n', '-', 'a', 'd', 'd',
				     'r', 4,   'a', 'r', 'p', 'a', 0};
	static const uint8_t v6[] = {3, 'i', 'p', '6', 4, 'a', 'r', 'p', 'a', 0};
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (alen == 4) {
		for (size_t i = 4; i-- > 0;) {
			char l[4];
			snprintf(l, sizeof(l), "%u", a[i]);
			name_cat(out, &n, l);
		}
		memcpy(out + n, v4, sizeof(v4));
		*len = n + sizeof(v4);
		return 0;
	}
	for (size_t i = 16; i-- > 0;) {
		out[n++] = 1;
		out[n++] = (uint8_t)hex[a[i] & 15];
		out[n++] = 1;
		out[n++] = (uint8_t)hex[a[i] >> 4];
	}
	memcpy(out + n, v6, sizeof(v6));
	*len = n + sizeof(v6);
	return 0;
}

int k8smap_pod_name(const k8smap_conf_t *conf, const char *ns, const char *ip, uint8_t *out,
		    size_t *len)
{
	static const uint8_t pod[] = {3, 'p', 'o', 'd'};
	uint8_t a[16];
	char dashed[INET6_ADDRSTRLEN];
	size_t n = 0;

	if (!is_label(ns))
		return ERR_PARSE;
	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(dashed, sizeof(dashed), "%u-%u-%u-%u", a[0], a[1], a[2], a[3]);
	} else if (inet_pton(AF_INET6, ip, a) == 1 &&
		   inet_ntop(AF_INET6, a, dashed, sizeof(dashed))) {
		/* The canonical text (RFC 5952, lowercase, "::") with dashes for colons:
		 * fd00::5 -> fd00--5, what pods = insecure also answers. */
		for (char *p = dashed; *p; p++)
			if (*p == ':')
				*p = '-';
	} else {
		return ERR_PARSE;
	}
	if (name_cat(out, &n, dashed) < 0 || name_cat(out, &n, ns) < 0 ||
	    n + sizeof(pod) + conf->zonelen > WIRE_NAME_MAX)
		return ERR_PARSE;
	memcpy(out + n, pod, sizeof(pod));
	memcpy(out + n + sizeof(pod), conf->zone, conf->zonelen);
	*len = n + sizeof(pod) + conf->zonelen;
	return 0;
}

/* addr (text) -> bytes; @return 4, 16, or 0 when not an address. */
static size_t parse_ip(const char *s, uint8_t out[16])
{
	if (!s)
		return 0;
	if (inet_pton(AF_INET, s, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, out) == 1)
		return 16;
	return 0;
}

/* A, AAAA at name, and the PTR of the address pointing at target. */
static int add_addr(k8smap_derive_t *d, const uint8_t *name, size_t len, const char *ip,
		    const uint8_t *target, size_t tlen)
{
	uint8_t a[16], pn[WIRE_NAME_MAX];
	size_t alen = parse_ip(ip, a), plen;
	int ret;

	if (alen == 0)
		return 0;
	if ((ret = add_rec(d, name, len, alen == 4 ? WIRE_TYPE_A : WIRE_TYPE_AAAA, a, alen,
			   false)) < 0)
		return ret;
	if (!target || ptr_name(a, alen, pn, &plen) < 0)
		return 0;
	return add_rec(d, pn, plen, WIRE_TYPE_PTR, target, tlen, true);
}

/* _<port>._<proto>.<base> SRV 0 <weight later> port target. */
static int add_srv(k8smap_derive_t *d, const json_t *port, const uint8_t *target, size_t tlen)
{
	const char *pname = json_string_value(json_array_get(port, 0));
	const char *proto = json_string_value(json_array_get(port, 1));
	const json_t *num = json_array_get(port, 2);
	char l1[65], l2[65], lp[16];
	uint8_t name[WIRE_NAME_MAX], rd[6 + WIRE_NAME_MAX];
	size_t len, i;
	json_int_t pn = json_integer_value(num);

	if (!pname || !proto || !json_is_integer(num) || pn < 1 || pn > 65535 || !is_label(pname))
		return 0;
	snprintf(l1, sizeof(l1), "_%s", pname);
	for (i = 0; proto[i] && i < sizeof(lp) - 1; i++)
		lp[i] = (char)(proto[i] >= 'A' && proto[i] <= 'Z' ? proto[i] + 32 : proto[i]);
	lp[i] = 0;
	snprintf(l2, sizeof(l2), "_%s", lp);
	if (name_join(name, &len, l1, l2, d->base, d->baselen) < 0)
		return 0;
	wire_write_u16(rd, 0);
	wire_write_u16(rd + 2, 0);
	wire_write_u16(rd + 4, (uint16_t)pn);
	memcpy(rd + 6, target, tlen);
	return add_rec(d, name, len, WIRE_TYPE_SRV, rd, 6 + tlen, false);
}

static json_t *load(const char *text, size_t len)
{
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);

	if (o && !json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int derive_service(k8smap_derive_t *d, const json_t *s)
{
	const char *x = str_at(s, "x"), *type = str_at(s, "t");
	const json_t *ips, *port, *ip;
	size_t i;
	int ret = 0;

	if (type && strcmp(type, "ExternalName") == 0) {
		uint8_t target[WIRE_NAME_MAX];
		size_t tlen;

		if (!x || wire_name_from_text(x, target, &tlen) < 0 || tlen <= 1)
			return 0; /* no usable name: no record, as CoreDNS */
		wire_name_lower(target, tlen);
		return add_rec(d, d->base, d->baselen, WIRE_TYPE_CNAME, target, tlen, false);
	}
	if (d->headless)
		return 0; /* endpoints come with the slices */
	ips = json_object_get(s, d->conf->external_ips ? "e" : "ips");
	json_array_foreach(ips, i, ip)
	{
		if ((ret = add_addr(d, d->base, d->baselen, json_string_value(ip), d->base,
				    d->baselen)) < 0)
			return ret;
	}
	if (json_array_size(ips) == 0)
		return 0; /* no address: its SRV would point at a name without one */
	json_array_foreach(json_object_get(s, "p"), i, port)
	{
		if ((ret = add_srv(d, port, d->base, d->baselen)) < 0)
			return ret;
	}
	return 0;
}

int k8smap_derive_begin(k8smap_derive_t *d, const k8smap_conf_t *conf, const char *ns,
			const char *name, const char *svc, size_t svclen)
{
	uint8_t suffix[WIRE_NAME_MAX];
	size_t slen;
	json_t *s = NULL;
	int ret;

	memset(d, 0, sizeof(*d));
	d->conf = conf;
	if (!is_label(ns) || !is_label(name) ||
	    name_join(suffix, &slen, "svc", NULL, conf->zone, conf->zonelen) < 0 ||
	    name_join(d->base, &d->baselen, name, ns, suffix, slen) < 0)
		return ERR_PARSE;
	if (!svc || !(s = load(svc, svclen)))
		return 0;
	d->valid = true;
	d->headless = json_is_true(json_object_get(s, "h"));
	d->pna = json_is_true(json_object_get(s, "u"));
	const char *type = str_at(s, "t");
	if (type && strcmp(type, "ExternalName") == 0)
		d->headless = false;
	ret = derive_service(d, s);
	json_decref(s);
	return ret;
}

/* The endpoint's own name: its hostname, else its address with dashes (1-2-3-4). */
static void endpoint_label(const char *addr, const char *host, char *out, size_t cap)
{
	size_t i;

	if (host) {
		snprintf(out, cap, "%s", host);
		return;
	}
	for (i = 0; addr[i] && i + 1 < cap; i++)
		out[i] = addr[i] == '.' || addr[i] == ':' ? '-' : addr[i];
	out[i] = 0;
	/* "::1" gives "--1"; a label may not start or end with '-' in DNS tools' eyes,
	 * but CoreDNS answers the same form, so clients already ask for it. */
}

static int derive_endpoint(k8smap_derive_t *d, const json_t *ep, const json_t *ports)
{
	const char *addr = json_string_value(json_array_get(ep, 0));
	const char *host = json_string_value(json_array_get(ep, 1));
	bool ready = json_is_true(json_array_get(ep, 2));
	uint8_t ename[WIRE_NAME_MAX];
	char label[64];
	size_t elen, i;
	const json_t *port;
	int ret;

	if (!addr || !(ready || d->pna))
		return 0;
	endpoint_label(addr, host, label, sizeof(label));
	if (name_join(ename, &elen, label, NULL, d->base, d->baselen) < 0)
		return 0;
	if ((ret = add_addr(d, d->base, d->baselen, addr, NULL, 0)) < 0 ||
	    (ret = add_addr(d, ename, elen, addr, ename, elen)) < 0)
		return ret;
	json_array_foreach(ports, i, port)
	{
		if ((ret = add_srv(d, port, ename, elen)) < 0)
			return ret;
	}
	return 0;
}

int k8smap_derive_slice(k8smap_derive_t *d, const char *slice, size_t len)
{
	const json_t *ep;
	json_t *s;
	size_t i;
	int ret = 0;

	if (!d->valid || !d->headless || !(s = load(slice, len)))
		return 0;
	json_int_t tt = json_integer_value(json_object_get(s, "tt"));
	if (tt > 0 && (uint64_t)tt > d->trigger_ms)
		d->trigger_ms = (uint64_t)tt;
	json_array_foreach(json_object_get(s, "ep"), i, ep)
	{
		if ((ret = derive_endpoint(d, ep, json_object_get(s, "p"))) < 0)
			break;
	}
	json_decref(s);
	return ret;
}

static int rec_cmp(const void *a, const void *b)
{
	const k8smap_rec_t *x = a, *y = b;
	size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
	int c = memcmp(x->name, y->name, n);

	if (c || x->namelen != y->namelen)
		return c ? c : (x->namelen < y->namelen ? -1 : 1);
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->rdlen != y->rdlen)
		return x->rdlen < y->rdlen ? -1 : 1;
	return memcmp(x->rdata, y->rdata, x->rdlen);
}

void k8smap_derive_end(k8smap_derive_t *d)
{
	size_t w = 0;

	if (d->n == 0)
		return;
	qsort(d->recs, d->n, sizeof(*d->recs), rec_cmp);
	for (size_t i = 0; i < d->n; i++)
		if (w == 0 || rec_cmp(&d->recs[w - 1], &d->recs[i]) != 0)
			d->recs[w++] = d->recs[i];
	d->n = w;
	/* SRV weights of one rrset share 100 (spec: weight = 100 / count, at least 1). */
	for (size_t i = 0; i < d->n;) {
		size_t j = i;
		while (j < d->n && d->recs[j].type == d->recs[i].type &&
		       d->recs[j].namelen == d->recs[i].namelen &&
		       memcmp(d->recs[j].name, d->recs[i].name, d->recs[i].namelen) == 0)
			j++;
		if (d->recs[i].type == WIRE_TYPE_SRV) {
			uint16_t wgt = (uint16_t)(100 / (j - i) ? 100 / (j - i) : 1);
			for (size_t k = i; k < j; k++)
				wire_write_u16(d->recs[k].rdata + 2, wgt);
		}
		i = j;
	}
}

void k8smap_derive_free(k8smap_derive_t *d)
{
	free(d->recs);
	d->recs = NULL;
	d->n = d->cap = 0;
}

size_t k8smap_zone_records(const k8smap_conf_t *conf, k8smap_rec_t *out)
{
	static const uint8_t txt[] = {5, '1', '.', '1', '.', '0'};

	memset(out, 0, sizeof(*out));
	if (name_join(out->name, &out->namelen, "dns-version", NULL, conf->zone, conf->zonelen) < 0)
		return 0;
	out->type = WIRE_TYPE_TXT;
	out->rdlen = sizeof(txt);
	memcpy(out->rdata, txt, sizeof(txt));
	return 1;
}
