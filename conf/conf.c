#include "conf/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <ini.h>

#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"

/*
 * Parsing model: libinih does the INI syntax and calls on_key() for every
 * "key = value". We feed it through our own line reader (read_line()) so we
 * know the line number (Debian's inih is built without INI_HANDLER_LINENO),
 * can strip leading blanks (inih would otherwise take an indented line as a
 * continuation of the previous value) and can reject unknown sections even
 * when they hold no key. Each key is looked up in keys[] and handed to its
 * setter, which validates the text and writes the typed field.
 */

enum section {
	SEC_NONE = -1,
	SEC_DNS,
	SEC_STORE,
	SEC_LOG,
	SEC_FUN,
	SEC_API,
	SEC_STATS,
	SEC_ETCD,
	SEC_K8S,
	SEC_PROBE,
	SEC_GENERAL,
};

static const struct {
	const char *name;
	enum section id;
} sections[] = {
    {"Dns", SEC_DNS},	     {"Store", SEC_STORE},
    {"Log", SEC_LOG},	     {"Fun", SEC_FUN},
    {"Api", SEC_API},	     {"SkydnsApi", SEC_API}, /* original skydns-kubeapi spelling */
    {"Stats", SEC_STATS},    {"Etcd", SEC_ETCD},
    {"Kubernetes", SEC_K8S}, {"Kube2Skydns", SEC_K8S}, /* original skydns-kubeapi spelling */
    {"Probe", SEC_PROBE},    {"General", SEC_GENERAL},
};

#define KNOWN_SECTIONS "General, Dns, Store, Log, Fun, Api, Stats, Etcd, Kubernetes, Probe"

typedef struct keydef keydef_t;

/* A setter validates `val`; on failure it writes what it expected into msg. */
typedef int (*setter_fn)(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen);

struct keydef {
	enum section sec;
	const char *names[3]; /* canonical spelling first, then aliases */
	setter_fn set;
	size_t off;  /* field in conf_t */
	size_t size; /* its sizeof, for integer fields */
	uint64_t min, max;
};

#define MAX_SEEN 64
#define TOKEN_MAX 256

typedef struct {
	conf_t *c;
	const char *path;
	FILE *f;
	unsigned line;
	int ret; /* first error; later ones are not reported */
	char *err;
	size_t errlen;
	size_t nseen;
	struct {
		size_t off;
		unsigned line;
		char *text; /* a list key's value so far (owned), for appending */
	} seen[MAX_SEEN];
	bool stats_server; /* [Stats] statsServer given: it implies the API */
} parser_t;

static const size_t string_fields[] = {
    offsetof(conf_t, path),	     offsetof(conf_t, ip_monitor_path),
    offsetof(conf_t, data_dir),	     offsetof(conf_t, log_dir),
    offsetof(conf_t, api_address),   offsetof(conf_t, api_token),
    offsetof(conf_t, tls_cafile),    offsetof(conf_t, api_certfile),
    offsetof(conf_t, api_keyfile),   offsetof(conf_t, etcd_servers),
    offsetof(conf_t, etcd_prefix),   offsetof(conf_t, etcd_certfile),
    offsetof(conf_t, etcd_keyfile),  offsetof(conf_t, etcd_cafile),
    offsetof(conf_t, k8s_server),    offsetof(conf_t, k8s_token_file),
    offsetof(conf_t, k8s_cafile),    offsetof(conf_t, k8s_kubeconfig),
    offsetof(conf_t, kube_domain),   offsetof(conf_t, svc_ip_source),
    offsetof(conf_t, scan_ports),    offsetof(conf_t, api_hostnames),
    offsetof(conf_t, etcd_username), offsetof(conf_t, etcd_password),
    offsetof(conf_t, api_search),    offsetof(conf_t, probe_id),
    offsetof(conf_t, user),	     offsetof(conf_t, group),
    offsetof(conf_t, query_log),     offsetof(conf_t, api_tokens_file),
};

static char **str_field(conf_t *c, size_t off)
{
	return (char **)(void *)((char *)c + off);
}

/* Replace a string field; NULL or "" (when allowed) clears it. */
static int set_string_field(conf_t *c, size_t off, const char *val)
{
	char *copy = NULL;

	if (val && !(copy = strdup(val)))
		return -ENOMEM;
	free(*str_field(c, off));
	*str_field(c, off) = copy;
	return 0;
}

static void put_uint(conf_t *c, const keydef_t *k, uint64_t v)
{
	void *p = (char *)c + k->off;

	switch (k->size) {
	case sizeof(uint16_t):
		*(uint16_t *)p = (uint16_t)v;
		break;
	case sizeof(uint32_t):
		*(uint32_t *)p = (uint32_t)v;
		break;
	default:
		*(uint64_t *)p = v;
		break;
	}
}

static int expected(char *msg, size_t msglen, const char *val, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int expected(char *msg, size_t msglen, const char *val, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < msglen)
		snprintf(msg + n, msglen - (size_t)n, ", got \"%s\"", val);
	return ERR_CONFIG;
}

/* ---- scalar parsers (return false on any junk, never partial) ---- */

static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s)
		return false;
	*out = v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *yes[] = {"true", "yes", "on", "1"};
	static const char *no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* "2", "0.5", "1.250": seconds with at most millisecond precision, as ms. */
static bool parse_seconds_ms(const char *s, uint64_t *out)
{
	uint64_t sec = 0, ms = 0;
	int digits = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (sec > 1000000000)
			return false;
		sec = sec * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
			if (digits >= 3)
				return false;
			ms = ms * 10 + (uint64_t)(*s - '0');
		}
		if (digits == 0)
			return false;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (*s)
		return false;
	*out = sec * 1000 + ms;
	return true;
}

/* "1073741824", "512K", "64M", "1G" (binary multiples). */
static bool parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t len = strlen(s);
	unsigned shift = 0;
	uint64_t v;

	if (len == 0 || len >= sizeof(num))
		return false;
	memcpy(num, s, len + 1);
	switch (num[len - 1]) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	}
	if (shift)
		num[len - 1] = '\0';
	if (!parse_u64(num, &v) || v > (UINT64_MAX >> shift))
		return false;
	*out = v << shift;
	return true;
}

static void fmt_seconds(uint64_t ms, char *out, size_t cap)
{
	if (ms % 1000 == 0)
		snprintf(out, cap, "%llu", (unsigned long long)(ms / 1000));
	else if (ms % 100 == 0)
		snprintf(out, cap, "%llu.%llu", (unsigned long long)(ms / 1000),
			 (unsigned long long)(ms % 1000 / 100));
	else if (ms % 10 == 0)
		snprintf(out, cap, "%llu.%02llu", (unsigned long long)(ms / 1000),
			 (unsigned long long)(ms % 1000 / 10));
	else
		snprintf(out, cap, "%llu.%03llu", (unsigned long long)(ms / 1000),
			 (unsigned long long)(ms % 1000));
}

static void fmt_size(uint64_t v, char *out, size_t cap)
{
	static const char suffix[] = "GMK";

	for (unsigned i = 0; i < 3; i++) {
		unsigned shift = 30 - 10 * i;
		if (v >= (1ULL << shift) && v % (1ULL << shift) == 0) {
			snprintf(out, cap, "%llu%c", (unsigned long long)(v >> shift), suffix[i]);
			return;
		}
	}
	snprintf(out, cap, "%llu", (unsigned long long)v);
}

/*
 * Next item of a separated list, blanks trimmed. Empty items are returned
 * (as "") so callers can reject "a,,b".
 * @return 1 with an item, 0 at the end, -1 when an item exceeds TOKEN_MAX.
 */
static int next_token(const char **cur, const char *seps, char out[TOKEN_MAX])
{
	const char *s = *cur, *e;
	size_t n;

	if (!s)
		return 0;
	e = s + strcspn(s, seps);
	*cur = *e ? e + 1 : NULL;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - s);
	if (n >= TOKEN_MAX)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 1;
}

/* ---- public helpers ---- */

static bool parse_port(const char *s, uint16_t *out)
{
	uint64_t v;

	if (!parse_u64(s, &v) || v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

static int make_addr(int family, const char *ip, uint16_t port, conf_addr_t *out)
{
	conf_addr_t a;

	memset(&a, 0, sizeof(a));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a.sa;
		if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1)
			return ERR_PARSE;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		a.len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.sa;
		if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) != 1)
			return ERR_PARSE;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		a.len = sizeof(*sin6);
	}
	*out = a;
	return 0;
}

void conf_format_addr(const conf_addr_t *a, char *out, size_t cap)
{
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a->sa;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->sa;
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->sa.ss_family == AF_INET) {
		inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
		snprintf(out, cap, "%s:%u", ip, ntohs(v4->sin_port));
	} else {
		inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
		snprintf(out, cap, "[%s]:%u", ip, ntohs(v6->sin6_port));
	}
}

int conf_parse_addr(const char *text, uint16_t default_port, conf_addr_t *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *end;
	uint16_t port = default_port;
	size_t n;

	if (text[0] == '[') {
		end = strchr(text, ']');
		if (!end || (end[1] && (end[1] != ':' || !parse_port(end + 2, &port))))
			return ERR_PARSE;
		n = (size_t)(end - text - 1);
		if (n >= sizeof(host))
			return ERR_PARSE;
		memcpy(host, text + 1, n);
		host[n] = '\0';
		return make_addr(AF_INET6, host, port, out);
	}
	colon = strchr(text, ':');
	if (colon && strchr(colon + 1, ':')) /* two colons: bare IPv6, no port */
		return make_addr(AF_INET6, text, port, out);
	n = colon ? (size_t)(colon - text) : strlen(text);
	if (n >= sizeof(host) || (colon && !parse_port(colon + 1, &port)))
		return ERR_PARSE;
	memcpy(host, text, n);
	host[n] = '\0';
	return make_addr(AF_INET, host, port, out);
}

int conf_domain_of(const conf_t *c, const uint8_t *name, size_t len)
{
	int best = -1;

	for (size_t i = 0; i < c->ndomains; i++) {
		if (best >= 0 && c->domainlens[i] <= c->domainlens[best])
			continue;
		if (wire_name_is_subdomain(name, len, c->domains[i], c->domainlens[i]))
			best = (int)i;
	}
	return best;
}

bool conf_xfr_allowed(const conf_t *c, const uint8_t *addr, size_t len)
{
	for (size_t i = 0; i < c->nxfr_allow; i++) {
		const conf_prefix_t *p = &c->xfr_allow[i];
		size_t full = p->prefix / 8, bits = p->prefix % 8;

		if (p->len != len || memcmp(p->addr, addr, full) != 0)
			continue;
		if (bits == 0 ||
		    ((p->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - bits))) == 0)
			return true;
	}
	return false;
}

bool conf_name_is_reverse(const uint8_t *name, size_t len)
{
	static const uint8_t v4[] = "\7in-addr\4arpa", v6[] = "\3ip6\4arpa";

	return wire_name_is_subdomain(name, len, v4, sizeof(v4)) ||
	       wire_name_is_subdomain(name, len, v6, sizeof(v6));
}

size_t conf_default_domain(const conf_t *c)
{
	for (size_t i = 0; i < c->ndomains; i++)
		if (!conf_name_is_reverse(c->domains[i], c->domainlens[i]))
			return i;
	return 0;
}

/* ---- setters ---- */

static int set_bool(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	bool b;

	if (!parse_bool(val, &b))
		return expected(msg, msglen, val, "expected true or false (yes/no, on/off, 1/0)");
	*(bool *)((char *)c + k->off) = b;
	return 0;
}

static int set_uint(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	uint64_t v;

	if (!parse_u64(val, &v) || v < k->min || v > k->max)
		return expected(msg, msglen, val, "expected a number from %llu to %llu",
				(unsigned long long)k->min, (unsigned long long)k->max);
	put_uint(c, k, v);
	return 0;
}

static int set_seconds(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	char lo[32], hi[32];
	uint64_t ms;

	if (!parse_seconds_ms(val, &ms) || ms < k->min || ms > k->max) {
		fmt_seconds(k->min, lo, sizeof(lo));
		fmt_seconds(k->max, hi, sizeof(hi));
		return expected(msg, msglen, val, "expected seconds from %s to %s", lo, hi);
	}
	put_uint(c, k, ms);
	return 0;
}

static int set_size(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	char lo[32], hi[32];
	uint64_t v;

	if (!parse_size(val, &v) || v < k->min || v > k->max) {
		fmt_size(k->min, lo, sizeof(lo));
		fmt_size(k->max, hi, sizeof(hi));
		return expected(msg, msglen, val,
				"expected a size from %s to %s (suffix K, M or G)", lo, hi);
	}
	put_uint(c, k, v);
	return 0;
}

/* Strings: min = 1 means required (no empty value); otherwise "" unsets. */
static int set_str(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	if (!*val && k->min)
		return expected(msg, msglen, val, "expected a non-empty value");
	return set_string_field(c, k->off, *val ? val : NULL);
}

/*
 * [General] user / group: resolved here (NSS) so -check-config names the
 * file and line of an account that does not exist; the ids are what a start
 * uses. A user's primary group is the group unless group is set.
 */
static int set_user(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	struct passwd *pw = *val ? getpwnam(val) : NULL;

	if (*val && !pw)
		return expected(msg, msglen, val, "expected an existing user name");
	if (!pw) {
		c->has_user = false;
		return set_string_field(c, k->off, NULL);
	}
	c->has_user = true;
	c->run_uid = pw->pw_uid;
	if (!c->group)
		c->run_gid = pw->pw_gid;
	return set_string_field(c, k->off, val);
}

static int set_group(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	struct group *gr = *val ? getgrnam(val) : NULL;

	if (*val && !gr)
		return expected(msg, msglen, val, "expected an existing group name");
	if (gr)
		c->run_gid = gr->gr_gid;
	return set_string_field(c, k->off, *val ? val : NULL);
}

/* [Log] query-log: a file path, or off / "" for none. */
static int set_query_log(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	if (!*val || strcasecmp(val, "off") == 0)
		return set_string_field(c, k->off, NULL);
	if (val[0] != '/')
		return expected(msg, msglen, val, "expected an absolute file path or off");
	return set_string_field(c, k->off, val);
}

/* An absolute etcd-style path; `dir` keeps exactly one trailing '/'. */
static int set_etcd_path(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	char buf[TOKEN_MAX + 1];
	size_t n = strlen(val);

	if (val[0] != '/' || n >= TOKEN_MAX)
		return expected(msg, msglen, val, "expected an absolute key path such as /skydns");
	memcpy(buf, val, n + 1);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	if (k->max && n > 1) /* ip-monitor-path is a directory: the ip is appended */
		strcat(buf, "/");
	return set_string_field(c, k->off, buf);
}

static int parse_domain(const char *text, uint8_t name[WIRE_NAME_MAX], size_t *len)
{
	size_t n;
	int ret = wire_name_from_text(text, name, &n);

	if (ret < 0)
		return ret;
	if (n <= 1)
		return ERR_PARSE; /* the root: skydns is not a root server */
	wire_name_lower(name, n);
	*len = n;
	return 0;
}

static int set_domains(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	uint8_t names[CONF_MAX_DOMAINS][WIRE_NAME_MAX];
	size_t lens[CONF_MAX_DOMAINS], n = 0;
	char tok[TOKEN_MAX];
	const char *cur = val;
	int r;

	(void)k;
	while ((r = next_token(&cur, "%,", tok)) > 0) {
		if (n == CONF_MAX_DOMAINS)
			return expected(msg, msglen, val, "expected at most %d domains",
					CONF_MAX_DOMAINS);
		if (parse_domain(tok, names[n], &lens[n]) < 0)
			return expected(
			    msg, msglen, val,
			    "expected domain names separated by '%%', \"%s\" is not one", tok);
		for (size_t i = 0; i < n; i++)
			if (wire_name_equal(names[i], lens[i], names[n], lens[n]))
				return expected(msg, msglen, val, "domain \"%s\" is listed twice",
						tok);
		n++;
	}
	if (r < 0)
		return expected(msg, msglen, val, "expected shorter domain names");
	memcpy(c->domains, names, sizeof(names[0]) * n);
	memcpy(c->domainlens, lens, sizeof(lens[0]) * n);
	c->ndomains = n;
	return 0;
}

static int set_dns_addr(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	(void)k;
	if (conf_parse_addr(val, 53, &c->dns_addr) < 0)
		return expected(msg, msglen, val,
				"expected an address such as 127.0.0.1:53 or [::1]:53");
	return 0;
}

/* A listen address for civetweb: validated here, kept as text. */
static int set_http_addr(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	conf_addr_t a;

	/* sin_port and sin6_port share their offset (RFC 3493). */
	if (conf_parse_addr(val, 0, &a) < 0 || ((struct sockaddr_in *)&a.sa)->sin_port == 0)
		return expected(msg, msglen, val,
				"expected an address with a port such as 127.0.0.1:9001");
	return set_string_field(c, k->off, val);
}

/* "ip[:port],ip[:port]" into servers[]; an empty list is fine. */
static int parse_servers(const char *list, conf_addr_t servers[CONF_MAX_SERVERS], size_t *n,
			 char *bad, size_t badlen)
{
	char tok[TOKEN_MAX];
	const char *cur = list;
	size_t count = 0;
	int r;

	while (*list && (r = next_token(&cur, ",", tok)) != 0) {
		snprintf(bad, badlen, "%s", r < 0 ? "" : tok);
		if (r < 0 || count == CONF_MAX_SERVERS ||
		    conf_parse_addr(tok, 53, &servers[count]) < 0)
			return ERR_PARSE;
		count++;
	}
	*n = count;
	return 0;
}

/* "tls://ip[:port]@name" (port 853 by default) or a plain "ip[:port]"; name[0] = 0 for plain. */
static int parse_nameserver(const char *tok, conf_addr_t *out, char name[CONF_TLS_NAME_MAX])
{
	char addr[TOKEN_MAX];
	const char *at;

	name[0] = '\0';
	if (strncmp(tok, "tls://", 6) != 0)
		return conf_parse_addr(tok, 53, out);
	tok += 6;
	at = strrchr(tok, '@');
	if (!at || at == tok || !at[1] || strlen(at + 1) >= CONF_TLS_NAME_MAX ||
	    (size_t)(at - tok) >= sizeof(addr))
		return ERR_PARSE;
	memcpy(addr, tok, (size_t)(at - tok));
	addr[at - tok] = '\0';
	snprintf(name, CONF_TLS_NAME_MAX, "%s", at + 1);
	return conf_parse_addr(addr, 853, out);
}

static int set_nameservers(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	conf_addr_t servers[CONF_MAX_SERVERS];
	char bad[TOKEN_MAX], tok[TOKEN_MAX];
	const char *cur = val;
	size_t n = 0;
	int r;

	(void)k;
	memset(c->nameserver_tls, 0, sizeof(c->nameserver_tls));
	while (*val && (r = next_token(&cur, ",", tok)) != 0) {
		snprintf(bad, sizeof(bad), "%s", r < 0 ? "" : tok);
		if (r < 0 || n == CONF_MAX_SERVERS ||
		    parse_nameserver(tok, &servers[n], c->nameserver_tls[n]) < 0)
			return expected(msg, msglen, val,
					"expected at most %d addresses ip[:port] or "
					"tls://ip[:port]@name separated by ',' (\"%s\" is wrong)",
					CONF_MAX_SERVERS, bad);
		n++;
	}
	memcpy(c->nameservers, servers, sizeof(servers[0]) * n);
	c->nnameservers = n;
	c->nameservers_set = true;
	return 0;
}

static int set_notify(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	conf_addr_t servers[CONF_MAX_SERVERS];
	char bad[TOKEN_MAX];
	size_t n;

	(void)k;
	if (parse_servers(val, servers, &n, bad, sizeof(bad)) < 0)
		return expected(msg, msglen, val,
				"expected at most %d addresses ip[:port] separated by ',' "
				"(\"%s\" is wrong)",
				CONF_MAX_NOTIFY, bad);
	memcpy(c->notify, servers, sizeof(servers[0]) * n);
	c->nnotify = n;
	return 0;
}

/* One "sub.domain@ip:port,ip:port" item. */
static int parse_subdomain(const char *item, conf_subdomain_t *sd)
{
	char dom[TOKEN_MAX], bad[TOKEN_MAX];
	const char *at = strchr(item, '@');
	size_t n;

	if (!at || strchr(at + 1, '@') || (size_t)(at - item) >= sizeof(dom))
		return ERR_PARSE;
	n = (size_t)(at - item);
	memcpy(dom, item, n);
	dom[n] = '\0';
	while (n > 0 && (dom[n - 1] == ' ' || dom[n - 1] == '\t'))
		dom[--n] = '\0';
	if (parse_domain(dom, sd->name, &sd->namelen) < 0)
		return ERR_PARSE;
	if (parse_servers(at + 1, sd->servers, &sd->nservers, bad, sizeof(bad)) < 0 ||
	    sd->nservers == 0)
		return ERR_PARSE;
	return 0;
}

static int set_subdomains(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	/* 64 entries of ~2.3 KB: too big for the stack, and failure must not touch c. */
	conf_subdomain_t *sds = calloc(CONF_MAX_SUBDOMAINS, sizeof(*sds));
	char tok[TOKEN_MAX];
	const char *cur = val;
	size_t n = 0;
	int r, ret = ERR_CONFIG;

	(void)k;
	if (!sds)
		return -ENOMEM;
	while (*val && (r = next_token(&cur, "%", tok)) != 0) {
		if (r < 0 || n == CONF_MAX_SUBDOMAINS || parse_subdomain(tok, &sds[n]) < 0) {
			expected(
			    msg, msglen, val,
			    "expected at most %d items sub.domain@ip[:port],ip[:port] separated "
			    "by '%%' (\"%s\" is wrong)",
			    CONF_MAX_SUBDOMAINS, r < 0 ? "" : tok);
			goto out;
		}
		n++;
	}
	memcpy(c->subdomains, sds, sizeof(sds[0]) * n);
	c->nsubdomains = n;
	ret = 0;
out:
	free(sds);
	return ret;
}

static int set_log_level(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	uint64_t v;
	int lvl;

	(void)k;
	/* The original passed log-level to glog -v, so numbers stay valid. */
	if (parse_u64(val, &v))
		lvl = v <= LOG_LVL_DEBUG ? (int)v : -1;
	else
		lvl = log_level_parse(val);
	if (lvl < 0)
		return expected(msg, msglen, val, "expected error, warn, info, debug or 0 to 3");
	c->log_level = lvl;
	return 0;
}

static int set_svc_ip_source(conf_t *c, const keydef_t *k, const char *val, char *msg,
			     size_t msglen)
{
	if (strcasecmp(val, "clusterIP") == 0)
		return set_string_field(c, k->off, "clusterIP");
	if (strcasecmp(val, "externalIP") == 0)
		return set_string_field(c, k->off, "externalIP");
	return expected(msg, msglen, val, "expected clusterIP or externalIP");
}

/* CoreDNS's `pods` modes: no pod records, any a-b-c-d answered, or only running pods' IPs. */
static int set_pods(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	static const char *const names[] = {"disabled", "insecure", "verified"};

	(void)k;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(val, names[i]) == 0) {
			c->k8s_pods = (uint8_t)i;
			return 0;
		}
	return expected(msg, msglen, val, "expected disabled, insecure or verified");
}

/* The names CoreDNS's forward plugin uses, so its users need nothing new. */
static int set_policy(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	static const char *const names[] = {"fastest", "sequential", "random", "round-robin"};

	(void)k;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(val, names[i]) == 0) {
			c->policy = (uint8_t)i;
			return 0;
		}
	return expected(msg, msglen, val, "expected fastest, sequential, random or round-robin");
}

static int set_kube_domain(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	uint8_t name[WIRE_NAME_MAX];
	char text[WIRE_NAME_TEXT_MAX];
	size_t len;

	if (parse_domain(val, name, &len) < 0 || wire_name_to_text(name, len, text, sizeof(text)))
		return expected(msg, msglen, val, "expected a domain name such as cluster.local.");
	return set_string_field(c, k->off, text);
}

/* Comma list of ports, stored normalized ("80,443"). */
static int set_ports(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	char tok[TOKEN_MAX], out[TOKEN_MAX] = "";
	const char *cur = val;
	uint16_t port;
	size_t len = 0;
	int r;

	while (*val && (r = next_token(&cur, ",", tok)) != 0) {
		if (r < 0 || !parse_port(tok, &port) || len + 7 > sizeof(out))
			return expected(msg, msglen, val,
					"expected ports from 1 to 65535 separated by ','");
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%u", len ? "," : "",
					(unsigned)port);
	}
	return set_string_field(c, k->off, *out ? out : NULL);
}

/* Comma list of http(s) URLs, stored without blanks; "" unsets. */
static int set_urls(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	char tok[TOKEN_MAX], out[TOKEN_MAX] = "";
	const char *cur = val;
	size_t len = 0;
	int r;

	while (*val && (r = next_token(&cur, ",", tok)) != 0) {
		if (r < 0 || (strncasecmp(tok, "http://", 7) && strncasecmp(tok, "https://", 8)) ||
		    len + strlen(tok) + 2 > sizeof(out))
			return expected(msg, msglen, val,
					"expected http:// or https:// URLs separated by ','");
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", len ? "," : "", tok);
	}
	return set_string_field(c, k->off, *out ? out : NULL);
}

/* Comma list of host names for the API's Host check, stored lowercase without blanks or a
 * trailing dot; "" unsets. Only name characters: a port or scheme here would never match. */
static int set_hostnames(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	char tok[TOKEN_MAX], out[TOKEN_MAX] = "";
	const char *cur = val;
	size_t len = 0, n;
	int r;

	while (*val && (r = next_token(&cur, ",", tok)) != 0) {
		n = strlen(tok);
		if (n && tok[n - 1] == '.')
			tok[--n] = '\0';
		bool bad = r < 0 || n == 0 || n > 253 || tok[0] == '-' || tok[0] == '.' ||
			   len + n + 2 > sizeof(out);
		for (size_t i = 0; i < n && !bad; i++) {
			tok[i] = (char)tolower((unsigned char)tok[i]);
			bad = !isalnum((unsigned char)tok[i]) && tok[i] != '-' && tok[i] != '.';
		}
		if (bad)
			return expected(msg, msglen, val,
					"expected host names (letters, digits, '-', '.') separated "
					"by ','");
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", len ? "," : "", tok);
	}
	return set_string_field(c, k->off, *out ? out : NULL);
}

/* ns-address: one IPv4 and/or one IPv6 for ns1.<domain>; "none" (or empty) for neither. */
static int set_ns_address(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	char tok[TOKEN_MAX];
	const char *list = strcasecmp(val, "none") == 0 ? "" : val, *cur = list;
	bool v4 = false, v6 = false;
	uint8_t a4[4], a6[16];
	int r;

	(void)k;
	while (*list && (r = next_token(&cur, ",", tok)) != 0) {
		if (r > 0 && !v4 && inet_pton(AF_INET, tok, a4) == 1)
			v4 = true;
		else if (r > 0 && !v6 && inet_pton(AF_INET6, tok, a6) == 1)
			v6 = true;
		else
			return expected(msg, msglen, val,
					"expected at most one IPv4 and one IPv6 address separated "
					"by ',', or none");
	}
	c->ns_has_v4 = v4;
	c->ns_has_v6 = v6;
	if (v4)
		memcpy(c->ns_v4, a4, 4);
	if (v6)
		memcpy(c->ns_v6, a6, 16);
	return 0;
}

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9'	? ch - '0'
	       : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
	       : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
					: -1;
}

/* "0a1b..." -> bytes; exactly `want` bytes when want > 0, else up to cap. @return count or -1. */
static int parse_hex(const char *t, uint8_t *out, size_t cap, size_t want)
{
	size_t n = strlen(t);

	if (n == 0 || n % 2 || n / 2 > cap || (want && n / 2 != want))
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(t[i]), lo = hexval(t[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

/* nsid: "hostname", "0x<hex>" or text; empty = off. */
static int set_nsid(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	char host[256];
	int n;

	(void)k;
	if (strcasecmp(val, "hostname") == 0) {
		if (gethostname(host, sizeof(host)) < 0)
			return expected(msg, msglen, val,
					"the host name, but gethostname() failed");
		host[sizeof(host) - 1] = '\0';
		val = host;
	} else if ((val[0] == '0' && (val[1] == 'x' || val[1] == 'X'))) {
		if ((n = parse_hex(val + 2, c->nsid, sizeof(c->nsid), 0)) < 0)
			return expected(msg, msglen, val,
					"0x and an even number of hex digits, at most 128 bytes");
		c->nsidlen = (size_t)n;
		return 0;
	}
	if (strlen(val) > sizeof(c->nsid))
		return expected(msg, msglen, val, "at most 128 bytes of text");
	c->nsidlen = strlen(val);
	memcpy(c->nsid, val, c->nsidlen);
	return 0;
}

static int set_cookies(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	(void)k;
	if (strcasecmp(val, "on") == 0)
		c->cookies = CONF_COOKIES_ON;
	else if (strcasecmp(val, "off") == 0)
		c->cookies = CONF_COOKIES_OFF;
	else if (strcasecmp(val, "require") == 0)
		c->cookies = CONF_COOKIES_REQUIRE;
	else
		return expected(msg, msglen, val, "on, off or require");
	return 0;
}

static int set_cookie_secret(conf_t *c, const keydef_t *k, const char *val, char *msg,
			     size_t msglen)
{
	(void)k;
	if (parse_hex(val, c->cookie_secret, sizeof(c->cookie_secret), 16) < 0)
		return expected(msg, msglen, val, "32 hex digits (16 bytes)");
	c->cookie_secret_set = true;
	return 0;
}

/* xfr-allow: "127.0.0.1, 10.0.0.0/8, ::1"; empty or "none" = nobody. */
static int set_xfr_allow(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	conf_prefix_t pfx[CONF_MAX_XFR_ALLOW];
	const char *list = strcasecmp(val, "none") == 0 ? "" : val, *cur = list;
	char tok[TOKEN_MAX];
	size_t n = 0;
	int r;

	(void)k;
	while (*list && (r = next_token(&cur, ",", tok)) != 0) {
		conf_prefix_t p = {.len = 4};
		char *slash = strchr(tok, '/');
		unsigned long bits = 0;
		char *end = NULL;

		if (r < 0 || n == CONF_MAX_XFR_ALLOW)
			return expected(msg, msglen, val,
					"at most %d addresses or prefixes (10.0.0.0/8, ::1) "
					"separated by ','",
					CONF_MAX_XFR_ALLOW);
		if (slash)
			*slash = '\0';
		if (inet_pton(AF_INET, tok, p.addr) != 1) {
			p.len = 16;
			if (inet_pton(AF_INET6, tok, p.addr) != 1)
				return expected(msg, msglen, val,
						"addresses or prefixes (10.0.0.0/8, ::1) separated "
						"by ','; \"%s\" is neither",
						tok);
		}
		p.prefix = (uint8_t)(p.len * 8);
		if (slash) {
			bits = strtoul(slash + 1, &end, 10);
			if (!slash[1] || *end || bits > p.len * 8u)
				return expected(msg, msglen, val, "a prefix length 0..%u after '/'",
						p.len * 8u);
			p.prefix = (uint8_t)bits;
		}
		pfx[n++] = p;
	}
	memcpy(c->xfr_allow, pfx, n * sizeof(pfx[0]));
	c->nxfr_allow = n;
	return 0;
}

/* Default ns-address: where we listen, unless that is a wildcard (no one address to name). */
/* "hmac-sha256" (with or without the trailing dot) -> CONF_TSIG_*, or 0. */
static uint8_t tsig_alg_of(const char *t)
{
	static const struct {
		const char *name;
		uint8_t alg;
	} algs[] = {{"hmac-sha1", CONF_TSIG_SHA1},
		    {"hmac-sha256", CONF_TSIG_SHA256},
		    {"hmac-sha512", CONF_TSIG_SHA512}};
	size_t n = strlen(t);

	if (n > 0 && t[n - 1] == '.')
		n--;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strlen(algs[i].name) == n && strncasecmp(t, algs[i].name, n) == 0)
			return algs[i].alg;
	return 0;
}

/* An error about tsig-keys that does not echo the value: it holds the secrets. */
static int keys_error(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int keys_error(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return ERR_CONFIG;
}

/* tsig-keys: "name algorithm secret, ..." (BIND's and NSD's triple, base64 secret). */
static int set_tsig_keys(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	const char *cur = val;
	char tok[TOKEN_MAX];
	size_t n = 0;
	int r;

	(void)k;
	while (*val && (r = next_token(&cur, ",", tok)) != 0) {
		conf_tsig_key_t *key = &c->tsig_keys[n];
		char name[TOKEN_MAX], alg[TOKEN_MAX], sec[TOKEN_MAX], extra[2];
		uint8_t buf[TOKEN_MAX];
		size_t blen = 0;

		if (r < 0 || n == CONF_MAX_TSIG_KEYS)
			return keys_error(msg, msglen, "at most %d keys separated by ','",
					  CONF_MAX_TSIG_KEYS);
		if (sscanf(tok, "%255s %255s %255s %1s", name, alg, sec, extra) != 3)
			return keys_error(msg, msglen,
					  "entries are \"name algorithm base64secret\"; entry %zu "
					  "is not",
					  n + 1);
		if (parse_domain(name, key->name, &key->namelen) < 0)
			return keys_error(msg, msglen, "\"%s\" is not a key name", name);
		if (!(key->alg = tsig_alg_of(alg)))
			return keys_error(msg, msglen,
					  "key \"%s\": algorithm hmac-sha256, hmac-sha512 or "
					  "hmac-sha1, got \"%s\"",
					  name, alg);
		if (base64_decode(sec, strlen(sec), buf, &blen) < 0 || blen == 0 ||
		    blen > CONF_TSIG_SECRET_MAX)
			return keys_error(msg, msglen,
					  "key \"%s\": the secret is not base64 of 1..%d bytes",
					  name, CONF_TSIG_SECRET_MAX);
		memcpy(key->secret, buf, blen);
		key->secretlen = blen;
		for (size_t i = 0; i < n; i++)
			if (wire_name_equal(c->tsig_keys[i].name, c->tsig_keys[i].namelen,
					    key->name, key->namelen))
				return keys_error(msg, msglen, "key \"%s\" given twice", name);
		n++;
	}
	c->ntsig_keys = n;
	return 0;
}

/* xfr-key: key names; cross_check ties them to tsig-keys, which may come later. */
static int set_xfr_key(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	const char *list = strcasecmp(val, "none") == 0 ? "" : val, *cur = list;
	char tok[TOKEN_MAX];
	size_t n = 0;
	int r;

	(void)k;
	while (*list && (r = next_token(&cur, ",", tok)) != 0) {
		if (r < 0 || n == CONF_MAX_XFR_KEYS)
			return expected(msg, msglen, val, "at most %d key names separated by ','",
					CONF_MAX_XFR_KEYS);
		if (parse_domain(tok, c->xfr_keys[n], &c->xfr_keylens[n]) < 0)
			return expected(msg, msglen, val, "key names; \"%s\" is not one", tok);
		n++;
	}
	c->nxfr_keys = n;
	return 0;
}

int conf_tsig_key(const conf_t *c, const uint8_t *name, size_t namelen, uint8_t alg)
{
	for (size_t i = 0; i < c->ntsig_keys; i++)
		if (c->tsig_keys[i].alg == alg &&
		    wire_name_equal(c->tsig_keys[i].name, c->tsig_keys[i].namelen, name, namelen))
			return (int)i;
	return -1;
}

static void ns_address_default(conf_t *c)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->dns_addr.sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&c->dns_addr.sa;

	c->ns_has_v4 = c->ns_has_v6 = false;
	if (c->dns_addr.sa.ss_family == AF_INET && sin->sin_addr.s_addr != htonl(INADDR_ANY)) {
		memcpy(c->ns_v4, &sin->sin_addr, 4);
		c->ns_has_v4 = true;
	} else if (c->dns_addr.sa.ss_family == AF_INET6 &&
		   !IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) {
		memcpy(c->ns_v6, &sin6->sin6_addr, 16);
		c->ns_has_v6 = true;
	}
}

/* Relative labels such as "svc": lowercase, no leading or trailing dot, no list. */
static int set_search(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	char out[128];
	size_t n = strlen(val), lab = 0;
	bool bad = n == 0 || n >= sizeof(out) || val[0] == '.' || val[n - 1] == '.';

	for (size_t i = 0; i < n && !bad; i++) {
		out[i] = (char)tolower((unsigned char)val[i]);
		lab = out[i] == '.' ? 0 : lab + 1;
		bad = lab > 63 || (out[i] == '.' && i && out[i - 1] == '.') ||
		      !(isalnum((unsigned char)out[i]) || out[i] == '-' || out[i] == '_' ||
			out[i] == '.');
	}
	if (bad)
		return expected(
		    msg, msglen, val,
		    "expected relative labels such as svc (no leading or trailing dot)");
	out[n] = '\0';
	return set_string_field(c, k->off, out);
}

/* The original's [Stats] server: now the admin API, which also serves stats. */
static int set_stats_server(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	if (!*val)
		return 0;
	return set_http_addr(c, k, val, msg, msglen);
}

/* Keys of the original with no meaning here: checked, then dropped. */
static int set_ignored_bool(conf_t *c, const keydef_t *k, const char *val, char *msg, size_t msglen)
{
	bool b;

	(void)c;
	(void)k;
	if (!parse_bool(val, &b))
		return expected(msg, msglen, val, "expected true or false");
	return 0;
}

#define F(field) offsetof(conf_t, field), sizeof(((conf_t *)0)->field)
#define NAMES(...)                                                                                 \
	{                                                                                          \
		__VA_ARGS__                                                                        \
	}
#define SEC(x) ((x)*1000)
#define MIB (1ULL << 20)

static const keydef_t keys[] = {
    {SEC_GENERAL, NAMES("user"), set_user, F(user), 0, 0},
    {SEC_GENERAL, NAMES("group"), set_group, F(group), 0, 0},
    {SEC_DNS, NAMES("dns-domains", "dns-domain"), set_domains, F(ndomains), 0, 0},
    {SEC_DNS, NAMES("dns-addr"), set_dns_addr, F(dns_addr), 0, 0},
    {SEC_DNS, NAMES("workers"), set_uint, F(workers), 0, 1024},
    {SEC_DNS, NAMES("edns-bufsize"), set_uint, F(edns_bufsize), 512, 4096},
    {SEC_DNS, NAMES("min-ttl"), set_uint, F(min_ttl), 0, 86400},
    {SEC_DNS, NAMES("max-ttl"), set_uint, F(max_ttl), 1, 0x7FFFFFFF},
    {SEC_DNS, NAMES("tcp-idle-timeout"), set_seconds, F(tcp_idle_ms), 100, SEC(3600)},
    {SEC_DNS, NAMES("tcp-message-timeout"), set_seconds, F(tcp_msg_ms), 100, SEC(3600)},
    {SEC_DNS, NAMES("tcp-max-connections"), set_uint, F(tcp_max_conns), 1, 1000000},
    {SEC_DNS, NAMES("tcp-max-per-client"), set_uint, F(tcp_max_per_client), 1, 1000000},
    {SEC_DNS, NAMES("rrl-responses-per-second"), set_uint, F(rrl_rate), 0, 1000000},
    {SEC_DNS, NAMES("rrl-slip"), set_uint, F(rrl_slip), 0, 100},
    {SEC_DNS, NAMES("rrl-window"), set_uint, F(rrl_window), 1, 3600},
    {SEC_DNS, NAMES("nameservers", "ex-nameservers"), set_nameservers, F(nameservers), 0, 0},
    {SEC_DNS, NAMES("tls-cafile"), set_str, F(tls_cafile), 0, 0},
    {SEC_DNS, NAMES("subDomainServers", "inDomainServers"), set_subdomains, F(subdomains), 0, 0},
    {SEC_DNS, NAMES("forward-timeout"), set_seconds, F(forward_timeout_ms), 10, SEC(60)},
    {SEC_DNS, NAMES("forward-max-per-client"), set_uint, F(forward_max_per_client), 0, 4096},
    {SEC_DNS, NAMES("policy"), set_policy, F(policy), 0, 0},
    {SEC_DNS, NAMES("max-fails"), set_uint, F(max_fails), 0, 100},
    {SEC_DNS, NAMES("health-check"), set_seconds, F(health_check_ms), 50, SEC(3600)},
    {SEC_DNS, NAMES("serve-stale"), set_uint, F(serve_stale), 0, 30 * 86400},
    {SEC_DNS, NAMES("stale-answer-timeout"), set_seconds, F(stale_answer_timeout_ms), 0, SEC(60)},
    {SEC_DNS, NAMES("cacheSize", "cache-size"), set_uint, F(cache_size), 0, 100000000},
    {SEC_DNS, NAMES("ip-monitor-path"), set_etcd_path, F(ip_monitor_path), 1, 1},
    {SEC_DNS, NAMES("shutdown-grace"), set_seconds, F(shutdown_grace_ms), 0, SEC(3600)},
    {SEC_DNS, NAMES("ns-address"), set_ns_address, F(ns_has_v4), 0, 0},
    {SEC_DNS, NAMES("nsid"), set_nsid, F(nsidlen), 0, 0},
    {SEC_DNS, NAMES("xfr-allow", "transfer-allow"), set_xfr_allow, F(nxfr_allow), 0, 0},
    {SEC_DNS, NAMES("tsig-keys"), set_tsig_keys, F(ntsig_keys), 0, 0},
    {SEC_DNS, NAMES("xfr-key", "transfer-key"), set_xfr_key, F(nxfr_keys), 0, 0},
    {SEC_DNS, NAMES("notify"), set_notify, F(nnotify), 0, 0},
    {SEC_DNS, NAMES("cookies"), set_cookies, F(cookies), 0, 0},
    {SEC_DNS, NAMES("cookie-secret"), set_cookie_secret, F(cookie_secret), 0, 0},
    {SEC_DNS, NAMES("skipDomain"), set_ignored_bool, 0, 0, 0, 0},
    {SEC_STORE, NAMES("data-dir"), set_str, F(data_dir), 1, 0},
    {SEC_STORE, NAMES("map-size"), set_size, F(map_size), MIB, 1ULL << 40},
    {SEC_STORE, NAMES("lookup-cache"), set_uint, F(lookup_cache), 0, 1u << 24},
    {SEC_LOG, NAMES("log-dir"), set_str, F(log_dir), 0, 0},
    {SEC_LOG, NAMES("log-level"), set_log_level, F(log_level), 0, 0},
    {SEC_LOG, NAMES("log-to-stdio"), set_bool, F(log_to_stdio), 0, 0},
    {SEC_LOG, NAMES("query-log"), set_query_log, F(query_log), 0, 0},
    {SEC_LOG, NAMES("query-log-sample"), set_uint, F(query_log_sample), 1, 1000000},
    {SEC_FUN, NAMES("random-one"), set_bool, F(random_one), 0, 0},
    {SEC_FUN, NAMES("hone-one"), set_bool, F(hone_one), 0, 0},
    {SEC_API, NAMES("api-enable"), set_bool, F(api_enable), 0, 0},
    {SEC_API, NAMES("api-address"), set_http_addr, F(api_address), 0, 0},
    {SEC_API, NAMES("api-token", "skydns-auth"), set_str, F(api_token), 0, 0},
    {SEC_API, NAMES("api-tokens-file"), set_str, F(api_tokens_file), 0, 0},
    {SEC_API, NAMES("api-certfile"), set_str, F(api_certfile), 0, 0},
    {SEC_API, NAMES("api-keyfile"), set_str, F(api_keyfile), 0, 0},
    {SEC_API, NAMES("api-hostnames"), set_hostnames, F(api_hostnames), 0, 0},
    {SEC_API, NAMES("api-threads"), set_uint, F(api_threads), 4, 256},
    {SEC_API, NAMES("api-search", "search"), set_search, F(api_search), 0, 0},
    {SEC_API, NAMES("auto-ptr"), set_bool, F(api_auto_ptr), 0, 0},
    {SEC_STATS, NAMES("statsServer"), set_stats_server, F(api_address), 0, 0},
    {SEC_STATS, NAMES("statsServerAuthToken"), set_str, F(api_token), 0, 0},
    {SEC_ETCD, NAMES("etcd-servers"), set_urls, F(etcd_servers), 0, 0},
    {SEC_ETCD, NAMES("etcd-prefix"), set_etcd_path, F(etcd_prefix), 1, 0},
    {SEC_ETCD, NAMES("etcd-certfile"), set_str, F(etcd_certfile), 0, 0},
    {SEC_ETCD, NAMES("etcd-keyfile"), set_str, F(etcd_keyfile), 0, 0},
    {SEC_ETCD, NAMES("etcd-cafile"), set_str, F(etcd_cafile), 0, 0},
    {SEC_ETCD, NAMES("etcd-username"), set_str, F(etcd_username), 1, 0},
    {SEC_ETCD, NAMES("etcd-password"), set_str, F(etcd_password), 1, 0},
    {SEC_K8S, NAMES("enable", "kube-enable"), set_bool, F(k8s_enable), 0, 0},
    {SEC_K8S, NAMES("server"), set_urls, F(k8s_server), 0, 0},
    {SEC_K8S, NAMES("token-file"), set_str, F(k8s_token_file), 0, 0},
    {SEC_K8S, NAMES("cafile"), set_str, F(k8s_cafile), 0, 0},
    {SEC_K8S, NAMES("kubeconfig"), set_str, F(k8s_kubeconfig), 0, 0},
    {SEC_K8S, NAMES("kube-domain"), set_kube_domain, F(kube_domain), 0, 0},
    {SEC_K8S, NAMES("svc-ip-source"), set_svc_ip_source, F(svc_ip_source), 0, 0},
    {SEC_K8S, NAMES("ttl"), set_uint, F(k8s_ttl), 0, 86400},
    {SEC_K8S, NAMES("pods"), set_pods, F(k8s_pods), 0, 0},
    {SEC_PROBE, NAMES("enable"), set_bool, F(probe_enable), 0, 0},
    {SEC_PROBE, NAMES("scann-ports", "scan-ports"), set_ports, F(scan_ports), 0, 0},
    {SEC_PROBE, NAMES("check-interval"), set_seconds, F(check_interval_ms), 100, SEC(86400)},
    {SEC_PROBE, NAMES("check-timeout"), set_seconds, F(check_timeout_ms), 10, SEC(60)},
    {SEC_PROBE, NAMES("rise"), set_uint, F(rise), 1, 100},
    {SEC_PROBE, NAMES("fall"), set_uint, F(fall), 1, 100},
    {SEC_PROBE, NAMES("icmp"), set_bool, F(icmp), 0, 0},
    {SEC_PROBE, NAMES("max-checks"), set_uint, F(max_checks), 16, 65535},
    {SEC_PROBE, NAMES("id"), set_str, F(probe_id), 0, 0},
};

/* ---- the inih glue ---- */

/*
 * Lists may be split over several lines by repeating the key (each line
 * appends): Debian's inih caps a line at 199 bytes, too short for a long
 * subDomainServers list. @return the list separator, or 0 for other keys.
 */
static char list_sep(const keydef_t *k)
{
	if (k->set == set_domains || k->set == set_subdomains)
		return '%';
	return k->set == set_nameservers || k->set == set_tsig_keys ? ',' : 0;
}

static int fail(parser_t *p, int ret, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(parser_t *p, int ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->ret)
		return p->ret;
	p->ret = ret;
	/* Checks of the whole file have no line: "FILE: message". */
	if (p->line)
		n = snprintf(p->err, p->errlen, "%s:%u: ", p->path, p->line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->path);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static enum section find_section(const char *name)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcasecmp(name, sections[i].name) == 0)
			return sections[i].id;
	return SEC_NONE;
}

static const keydef_t *find_key(enum section sec, const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].sec != sec)
			continue;
		for (size_t j = 0; j < 3 && keys[i].names[j]; j++)
			if (strcasecmp(name, keys[i].names[j]) == 0)
				return &keys[i];
	}
	return NULL;
}

/*
 * A field set twice (also through two aliases) is an error, not "last
 * wins"; except a list, where each repetition appends.
 * @return the slot of an earlier setting, or NULL (and the key is recorded).
 */
static __typeof__(((parser_t *)0)->seen[0]) *seen_before(parser_t *p, const keydef_t *k)
{
	if (k->size == 0)
		return NULL;
	for (size_t i = 0; i < p->nseen; i++)
		if (p->seen[i].off == k->off)
			return &p->seen[i];
	if (p->nseen < MAX_SEEN) {
		p->seen[p->nseen].off = k->off;
		p->seen[p->nseen].line = p->line;
		p->seen[p->nseen].text = NULL;
		p->nseen++;
	}
	return NULL;
}

/* Remember a list key's accepted value, so a later line can append to it. */
static int remember_list(parser_t *p, const keydef_t *k, const char *value)
{
	for (size_t i = 0; i < p->nseen; i++) {
		if (p->seen[i].off != k->off)
			continue;
		char *copy = strdup(value);
		if (!copy)
			return -ENOMEM;
		free(p->seen[i].text);
		p->seen[i].text = copy;
		return 0;
	}
	return 0;
}

/* "earlier<sep>value" in a new owned string; an empty side adds nothing. */
static char *join_list(const char *earlier, char sep, const char *value)
{
	size_t a = strlen(earlier), b = strlen(value);
	char *out = malloc(a + b + 2);

	if (!out)
		return NULL;
	memcpy(out, earlier, a);
	if (a && b)
		out[a++] = sep;
	memcpy(out + a, value, b + 1);
	return out;
}

static bool was_set(const parser_t *p, size_t off)
{
	for (size_t i = 0; i < p->nseen; i++)
		if (p->seen[i].off == off)
			return true;
	return false;
}

/* The original (gcfg) allowed "value" in double quotes; "" is an empty value. */
static const char *unquote(const char *val, char *buf, size_t cap)
{
	size_t n = strlen(val);

	if (n < 2 || val[0] != '"' || val[n - 1] != '"' || n - 1 > cap)
		return val;
	memcpy(buf, val + 1, n - 2);
	buf[n - 2] = '\0';
	return buf;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	parser_t *p = user;
	const keydef_t *k;
	enum section sec = find_section(section);
	char msg[512], buf[TOKEN_MAX + 2], *joined = NULL;
	int ret;

	if (p->ret)
		return 0;
	if (!*section)
		return !fail(p, ERR_CONFIG, "%s: key outside of any [section]", name);
	if (sec == SEC_NONE)
		return !fail(p, ERR_CONFIG, "[%s]: unknown section (expected one of %s)", section,
			     KNOWN_SECTIONS);
	if (!(k = find_key(sec, name)))
		return !fail(p, ERR_CONFIG, "[%s] %s: unknown key", section, name);
	__typeof__(p->seen[0]) *first = seen_before(p, k);
	if (first && !list_sep(k))
		return !fail(p, ERR_CONFIG, "[%s] %s: already set on line %u", section, name,
			     first->line);
	msg[0] = '\0';
	value = unquote(value, buf, sizeof(buf));
	if (first &&
	    !(value = joined = join_list(first->text ? first->text : "", list_sep(k), value)))
		return !fail(p, -ENOMEM, "%s", strerror(ENOMEM));
	ret = k->set(p->c, k, value, msg, sizeof(msg));
	if (ret == 0 && list_sep(k))
		ret = remember_list(p, k, value);
	free(joined);
	if (ret == ERR_CONFIG)
		return !fail(p, ret, "[%s] %s: %s", section, name, msg);
	if (ret < 0)
		return !fail(p, ret, "[%s] %s: %s", section, name, err_str(ret));
	if (sec == SEC_STATS && k->off == offsetof(conf_t, api_address))
		p->stats_server = *value != '\0';
	if (!first && p->c->nlines < CONF_LINES) {
		p->c->lines[p->c->nlines].off = (uint32_t)k->off;
		p->c->lines[p->c->nlines++].line = p->line;
	}
	return 1;
}

unsigned conf_line(const conf_t *c, size_t field)
{
	for (unsigned i = 0; i < c->nlines; i++)
		if (c->lines[i].off == field)
			return c->lines[i].line;
	return 0;
}

/*
 * fgets for inih, counting lines. Leading blanks are dropped so inih never
 * takes an indented key for a continuation line; section headers are
 * checked here so an empty unknown section is still reported.
 */
static char *read_line(char *str, int num, void *stream)
{
	parser_t *p = stream;
	size_t skip, len;
	char *close;

	if (p->ret)
		return NULL;
	if (!fgets(str, num, p->f)) {
		if (ferror(p->f)) /* e.g. EISDIR: fopen(dir, "r") succeeds */
			fail(p, errno ? -errno : -EIO, "%s", strerror(errno ? errno : EIO));
		return NULL;
	}
	p->line++;
	len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && !feof(p->f)) {
		fail(p, ERR_CONFIG,
		     "line longer than %d characters (split a long list by repeating its key)",
		     num - 3);
		return NULL;
	}
	skip = strspn(str, " \t");
	memmove(str, str + skip, len - skip + 1);
	if (str[0] == '[' && (close = strchr(str, ']'))) {
		*close = '\0';
		if (find_section(str + 1) == SEC_NONE)
			fail(p, ERR_CONFIG, "[%s]: unknown section (expected one of %s)", str + 1,
			     KNOWN_SECTIONS);
		*close = ']';
		if (p->ret)
			return NULL;
	}
	return str;
}

/* ---- checks that need the whole file ---- */

/* The cluster zone is skydns's to answer once the watcher is on, listed or not. */
static int add_kube_domain(parser_t *p)
{
	conf_t *c = p->c;
	uint8_t name[WIRE_NAME_MAX];
	size_t len;

	c->k8s_zone = -1;
	if (!c->k8s_enable)
		return 0;
	if (parse_domain(c->kube_domain, name, &len) < 0)
		return fail(p, ERR_CONFIG, "[Kubernetes] kube-domain: bad name %s", c->kube_domain);
	for (size_t i = 0; i < c->ndomains; i++)
		if (c->domainlens[i] == len && memcmp(c->domains[i], name, len) == 0) {
			c->k8s_zone = (int)i;
			return 0;
		}
	if (c->ndomains >= CONF_MAX_DOMAINS)
		return fail(p, ERR_CONFIG, "[Kubernetes] kube-domain: already %d dns-domains",
			    CONF_MAX_DOMAINS);
	memcpy(c->domains[c->ndomains], name, len);
	c->domainlens[c->ndomains] = len;
	c->k8s_zone = (int)c->ndomains++;
	return 0;
}

static int cross_check(parser_t *p)
{
	conf_t *c = p->c;

	p->line = 0;
	if (c->random_one && c->hone_one)
		return fail(p, ERR_CONFIG, "[Fun] random-one and hone-one exclude each other");
	if (!c->api_certfile != !c->api_keyfile)
		return fail(p, ERR_CONFIG, "[Api] api-certfile and api-keyfile go together");
	if (!c->etcd_certfile != !c->etcd_keyfile)
		return fail(p, ERR_CONFIG, "[Etcd] etcd-certfile and etcd-keyfile go together");
	if (!c->etcd_username != !c->etcd_password)
		return fail(p, ERR_CONFIG, "[Etcd] etcd-username and etcd-password go together");
	if (c->group && !c->user)
		return fail(p, ERR_CONFIG, "[General] group needs user");
	if (c->check_timeout_ms > c->check_interval_ms)
		return fail(p, ERR_CONFIG, "[Probe] check-timeout must not exceed check-interval");
	if (p->stats_server && !was_set(p, offsetof(conf_t, api_enable)))
		c->api_enable = true;
	if (!was_set(p, offsetof(conf_t, ns_has_v4)))
		ns_address_default(c);
	for (size_t i = 0; i < c->ntsig_keys; i++)
		c->tsig_keys[i].xfr = false;
	for (size_t i = 0; i < c->nxfr_keys; i++) {
		bool found = false;
		for (size_t j = 0; j < c->ntsig_keys; j++) {
			conf_tsig_key_t *key = &c->tsig_keys[j];
			if (wire_name_equal(key->name, key->namelen, c->xfr_keys[i],
					    c->xfr_keylens[i]))
				key->xfr = found = true;
		}
		if (!found)
			return fail(p, ERR_CONFIG,
				    "[Dns] xfr-key names a key that tsig-keys lacks");
	}
	return add_kube_domain(p);
}

/* ---- lifecycle ---- */

void conf_free(conf_t *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < sizeof(string_fields) / sizeof(string_fields[0]); i++)
		free(*str_field(c, string_fields[i]));
	free(c);
}

int conf_defaults(conf_t **out)
{
	conf_t *c = calloc(1, sizeof(*c));
	int ret = -ENOMEM;

	if (!c)
		return -ENOMEM;
	if (parse_domain("skydns.local.", c->domains[0], &c->domainlens[0]) < 0 ||
	    conf_parse_addr("127.0.0.1", 53, &c->dns_addr) < 0) {
		ret = ERR_INVAL; /* wire.c broken: nothing a user can fix */
		goto fail;
	}
	c->ndomains = 1;
	c->k8s_zone = -1;
	c->k8s_ttl = 5;
	ns_address_default(c);
	/* A fresh cookie secret per load; cookie-secret replaces it. */
	if (getrandom(c->cookie_secret, sizeof(c->cookie_secret), 0) !=
	    (ssize_t)sizeof(c->cookie_secret)) {
		ret = -errno;
		goto fail;
	}
	c->edns_bufsize = 1232;
	c->min_ttl = 60;
	c->max_ttl = 86400;
	c->tcp_idle_ms = SEC(10);
	c->tcp_msg_ms = SEC(3);
	c->tcp_max_conns = 1024;
	c->tcp_max_per_client = 32;
	c->rrl_slip = 2;
	c->rrl_window = 1;
	c->forward_timeout_ms = SEC(2);
	c->forward_max_per_client = 512;
	c->max_fails = 2;
	c->health_check_ms = 500;
	c->stale_answer_timeout_ms = 1800;
	c->cache_size = 100000;
	c->shutdown_grace_ms = SEC(5);
	c->api_threads = 32;
	c->map_size = 1ULL << 30;
	c->lookup_cache = 262144;
	c->log_level = LOG_LVL_INFO;
	c->log_to_stdio = true;
	c->query_log_sample = 1;
	c->check_interval_ms = SEC(5);
	c->check_timeout_ms = SEC(1);
	c->rise = 2;
	c->fall = 3;
	c->max_checks = 4096;
	if (!(c->ip_monitor_path = strdup("/skydns/monitor/status/")) ||
	    !(c->data_dir = strdup("/var/lib/skydns")) ||
	    !(c->api_address = strdup("127.0.0.1:9001")) || !(c->etcd_prefix = strdup("/skydns")) ||
	    !(c->kube_domain = strdup("cluster.local.")) ||
	    !(c->svc_ip_source = strdup("clusterIP")))
		goto fail;
	*out = c;
	return 0;
fail:
	conf_free(c);
	return ret;
}

int conf_load(const char *path, conf_t **out, char *err, size_t errlen)
{
	parser_t p = {.path = path, .err = err, .errlen = errlen};
	int ret, r;

	if (errlen)
		err[0] = '\0';
	if ((ret = conf_defaults(&p.c)) < 0)
		return ret;
	if (!(p.c->path = strdup(path))) {
		ret = -ENOMEM;
		goto out;
	}
	if (!(p.f = fopen(path, "r"))) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		goto out;
	}
	r = ini_parse_stream(read_line, &p, on_key, &p);
	if (!p.ret && r > 0) {
		p.line = (unsigned)r;
		fail(&p, ERR_CONFIG, "syntax error, expected [section] or key = value");
	}
	if (!p.ret && r < 0)
		fail(&p, -ENOMEM, "%s", strerror(ENOMEM));
	if (!p.ret)
		cross_check(&p);
	if ((ret = p.ret) < 0)
		goto out;
	*out = p.c;
	p.c = NULL;
	ret = 0;
out:
	if (p.f)
		fclose(p.f);
	for (size_t i = 0; i < p.nseen; i++)
		free(p.seen[i].text);
	conf_free(p.c);
	return ret;
}
