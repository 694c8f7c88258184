/*
 * skydns-cli: manage records through the admin API of a running skydns
 * (DESIGN §6). A remote client: libcurl + jansson, never the store.
 * Every failure prints one line on stderr and exits non-zero.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#define CLI_RESP_MAX (64u * 1024 * 1024)

typedef struct {
	const char *addr;
	const char *token;
	const char *user;
	const char *reread;
	const char *takeover; /* -takeover NAME: POST /skydns/api/NAME?takeover=import */
	const char *query;    /* appended after the escaped name (with "?") */
	const char *show;
	const char *domain;
	const char *method;
	const char *ips;
	const char *alias;
	const char *updates;
	const char *type;
	const char *text;
	const char *host;
	const char *priority;
	const char *weight;
	const char *target;
	const char *ttl;
	const char *status_ip;
	const char *status_val;
	const char *ptr;   /* -ptr IP: write the PTR of IP (its reverse name) */
	const char *stats; /* control routes (api/control.c) */
	const char *cache;
	const char *flush;
	const char *l1;
	const char *cache_ttl;
	const char *limit; /* -list paging */
	const char *after;
	bool master;
	bool list;
	bool json;
} cli_opts_t;

typedef struct {
	char *p;
	size_t len;
	bool overflow;
	bool quiet404; /* a 404 is an answer the caller handles: print nothing */
	long status;
} buf_t;

static void usage(FILE *f)
{
	fputs(
	    "usage: skydns-cli [-addr HOST:PORT] [-token TOKEN] [-json] COMMAND\n"
	    "commands:\n"
	    "  -list             print every name and its records\n"
	    "                    (-limit N: a page of N names; -after NAME: the names after it)\n"
	    "  -show NAME        print one name\n"
	    "  -takeover NAME    make the zone-import records of NAME the API's (yours), so\n"
	    "                    the API can change it and re-imports leave it alone\n"
	    "  -domain NAME      write NAME (short names get the first local domain);\n"
	    "                    with -method and -ips, -alias or -updates\n"
	    "  -ptr IP -host NAME  write the PTR record of IP (at its in-addr.arpa./ip6.arpa.\n"
	    "                    name, in a reverse zone of dns-domains); -method as for -domain\n"
	    "  -status IP [UP|DOWN]  show, or set, the health of an address\n"
	    "  -stats NAME       how often NAME was asked (GET /skydns/stats/NAME)\n"
	    "  -cache NAME       the forward cache's answers for NAME (/skydns/domain/NAME)\n"
	    "  -flush NAME       flush them: the next query goes upstream\n"
	    "  -l1 NAME          the store's records of NAME with sources and health\n"
	    "                    (/skydns/domainL1/NAME)\n"
	    "  -reread NAME      re-read NAME from etcd into the store (POST domainL1/NAME)\n"
	    "  -master           run-time settings (/skydns/master)\n"
	    "  -cache-ttl S      cap the TTL of answers cached from now on at S seconds\n"
	    "                    (0: back to max-ttl), without a restart\n"
	    "options for -domain:\n"
	    "  -method M         create (POST), update (PUT) or delete (DELETE); default create\n"
	    "  -type TYPE        A, AAAA, CNAME, TXT, MX, SRV or PTR (default A; CNAME\n"
	    "                    with -alias)\n"
	    "  -ips \"a;b\"        addresses: create adds them, update replaces the set,\n"
	    "                    delete removes them (no record flag: delete the whole name)\n"
	    "  -alias NAME       make NAME a CNAME of -domain\n"
	    "  -updates \"ips:old->new[;old->new]\"  update: replace addresses one by one\n"
	    "  -text TEXT        TXT: the text\n"
	    "  -host NAME        MX: the mail host; PTR: the name it points at\n"
	    "  -priority N       MX (and SRV's default) priority\n"
	    "  -weight N         SRV's default weight\n"
	    "  -target \"host:port[:prio[:weight]][;...]\"  SRV targets; host is a name or an\n"
	    "                    address ([v6]:port); an address gets a generated target name\n"
	    "  -ttl SECONDS      the records' TTL\n"
	    "options:\n"
	    "  -addr HOST:PORT   API address (env SKYDNS_API_ADDR, default 127.0.0.1:9001);\n"
	    "                    an http:// or https:// URL is taken as is\n"
	    "  -token TOKEN      API token (env SKYDNS_API_TOKEN), sent as a Bearer header;\n"
	    "                    a user's token (api-tokens-file) changes and lists only its "
	    "names\n"
	    "  -user NAME        with the admin's (shared) token: act as user NAME, the owner of\n"
	    "                    what it writes (?user=, env SKYDNS_API_USER)\n"
	    "  -json             print the server's JSON instead of the table\n"
	    "  -h                this help\n",
	    f);
}

static int parse_args(int argc, char **argv, cli_opts_t *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;

		if (a[0] == '-' && a[1] == '-')
			a++;
		if (strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "-list") == 0) {
			o->list = true;
		} else if (strcmp(a, "-json") == 0) {
			o->json = true;
		} else if (strcmp(a, "-master") == 0) {
			o->master = true;
		} else if (strcmp(a, "-status") == 0) {
			if (i + 1 >= argc)
				return -1;
			o->status_ip = argv[++i];
			if (i + 1 < argc && argv[i + 1][0] != '-')
				o->status_val = argv[++i];
		} else {
			dst = strcmp(a, "-addr") == 0	     ? &o->addr
			      : strcmp(a, "-token") == 0     ? &o->token
			      : strcmp(a, "-user") == 0	     ? &o->user
			      : strcmp(a, "-reread") == 0    ? &o->reread
			      : strcmp(a, "-takeover") == 0  ? &o->takeover
			      : strcmp(a, "-show") == 0	     ? &o->show
			      : strcmp(a, "-domain") == 0    ? &o->domain
			      : strcmp(a, "-method") == 0    ? &o->method
			      : strcmp(a, "-ips") == 0	     ? &o->ips
			      : strcmp(a, "-alias") == 0     ? &o->alias
			      : strcmp(a, "-updates") == 0   ? &o->updates
			      : strcmp(a, "-type") == 0	     ? &o->type
			      : strcmp(a, "-text") == 0	     ? &o->text
			      : strcmp(a, "-host") == 0	     ? &o->host
			      : strcmp(a, "-priority") == 0  ? &o->priority
			      : strcmp(a, "-weight") == 0    ? &o->weight
			      : strcmp(a, "-target") == 0    ? &o->target
			      : strcmp(a, "-ttl") == 0	     ? &o->ttl
			      : strcmp(a, "-ptr") == 0	     ? &o->ptr
			      : strcmp(a, "-stats") == 0     ? &o->stats
			      : strcmp(a, "-cache") == 0     ? &o->cache
			      : strcmp(a, "-flush") == 0     ? &o->flush
			      : strcmp(a, "-l1") == 0	     ? &o->l1
			      : strcmp(a, "-cache-ttl") == 0 ? &o->cache_ttl
			      : strcmp(a, "-limit") == 0     ? &o->limit
			      : strcmp(a, "-after") == 0     ? &o->after
							     : NULL;
			if (!dst || i + 1 >= argc) {
				fprintf(stderr,
					"skydns-cli: bad or incomplete option %s (see -h)\n",
					argv[i]);
				return -1;
			}
			*dst = argv[++i];
		}
	}
	return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	buf_t *b = ctx;
	size_t add = size * n;
	char *np;

	if (b->len + add > CLI_RESP_MAX || !(np = realloc(b->p, b->len + add + 1))) {
		b->overflow = true;
		return 0;
	}
	b->p = np;
	memcpy(b->p + b->len, data, add);
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

/* Percent-encode a path segment (names are plain, but keep the URL valid). */
static char *url_of(CURL *c, const cli_opts_t *o, const char *path, const char *seg)
{
	char *esc = seg ? curl_easy_escape(c, seg, 0) : NULL;
	char *uesc = o->user && o->user[0] ? curl_easy_escape(c, o->user, 0) : NULL;
	const char *scheme = strstr(o->addr, "://") ? "" : "http://";
	const char *q = o->query ? o->query : "";
	size_t n = strlen(scheme) + strlen(o->addr) + strlen(path) + (esc ? strlen(esc) : 0) +
		   strlen(q) + (uesc ? strlen(uesc) + 6 : 0) + 1;
	char *url = malloc(n);

	/* ?user= goes last: a list path already carries ?limit=...&after=<seg>. */
	if (url)
		snprintf(url, n, "%s%s%s%s%s%s%s", scheme, o->addr, path, esc ? esc : "", q,
			 uesc ? (strchr(path, '?') || q[0] ? "&user=" : "?user=") : "",
			 uesc ? uesc : "");
	curl_free(esc);
	curl_free(uesc);
	return url;
}

/* Print the server's {"error": ...} text, or the raw body. */
static void print_http_error(long status, const buf_t *b)
{
	json_t *doc = b->p ? json_loads(b->p, 0, NULL) : NULL;
	const char *msg = doc ? json_string_value(json_object_get(doc, "error")) : NULL;

	if (status == 401)
		fprintf(stderr, "skydns-cli: unauthorized (401): %s\n",
			msg ? msg : "bad or missing token");
	else
		fprintf(stderr, "skydns-cli: server said %ld: %s\n", status,
			msg ? msg : (b->p ? b->p : "(no body)"));
	json_decref(doc);
}

/*
 * One HTTP request. @return 0 with the body in *out (owned), 2 for a 404
 * when out->quiet404 is set, or 1 after printing why it failed.
 */
static int http(const cli_opts_t *o, const char *method, const char *path, const char *seg,
		const char *body, buf_t *out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char auth[1024], *url = NULL;
	long status = 0;
	CURLcode rc;
	int ret = 1;

	if (!c || !(url = url_of(c, o, path, seg))) {
		fprintf(stderr, "skydns-cli: out of memory\n");
		goto out;
	}
	if (o->token && o->token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
		hdr = curl_slist_append(hdr, auth);
	}
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		fprintf(stderr, "skydns-cli: cannot reach %s: %s\n", o->addr,
			out->overflow ? "response too large" : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	out->status = status;
	if (status == 404 && out->quiet404) {
		ret = 2;
		goto out;
	}
	if (status < 200 || status > 299) {
		print_http_error(status, out);
		goto out;
	}
	ret = 0;
out:
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	free(url);
	return ret;
}

/* "a;b;c" -> ["a","b","c"] (empty pieces skipped). */
static json_t *split_list(const char *s)
{
	json_t *arr = json_array();
	const char *p = s;

	while (arr && p && *p) {
		const char *e = strchr(p, ';');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n)
			json_array_append_new(arr, json_stringn(p, n));
		p = e ? e + 1 : NULL;
	}
	return arr;
}

/* "ips:old->new;old2->new2" (the "ips:" prefix optional) -> {"old":"new",...}. */
static json_t *parse_updates(const char *s)
{
	json_t *obj = json_object();
	const char *p = strncmp(s, "ips:", 4) == 0 ? s + 4 : s;

	while (obj && *p) {
		const char *e = strchr(p, ';'), *arrow = strstr(p, "->");
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!arrow || arrow >= p + n) {
			json_decref(obj);
			return NULL;
		}
		char *from = strndup(p, (size_t)(arrow - p));
		char *to = strndup(arrow + 2, n - (size_t)(arrow + 2 - p));
		if (from && to && *from && *to)
			json_object_set_new(obj, from, json_string(to));
		free(from);
		free(to);
		p = e ? e + 1 : p + n;
	}
	return obj;
}

/* A decimal 0..max, or -1. */
static long parse_num(const char *s, long max)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	v = strtol(s, &end, 10);
	return (*end || v < 0 || v > max) ? -1 : v;
}

/* "host:port[:prio[:weight]]", host may be "[v6]": one "targets" member. */
static json_t *parse_target(const char *s, size_t n)
{
	char *dup = strndup(s, n), *host = dup, *rest, *f[3] = {NULL, NULL, NULL};
	json_t *t = NULL;
	long v[3];

	if (!dup)
		return NULL;
	if (host[0] == '[') {
		host++;
		if (!(rest = strchr(host, ']')) || rest[1] != ':')
			goto out;
		*rest = '\0';
		rest += 2;
	} else {
		if (!(rest = strchr(host, ':')))
			goto out;
		*rest++ = '\0';
	}
	for (int i = 0; i < 3 && rest; i++) {
		f[i] = rest;
		if ((rest = strchr(rest, ':')))
			*rest++ = '\0';
	}
	v[0] = parse_num(f[0], 65535);
	v[1] = f[1] ? parse_num(f[1], 65535) : 0;
	v[2] = f[2] ? parse_num(f[2], 65535) : 0;
	if (!*host || rest || v[0] < 1 || v[1] < 0 || v[2] < 0)
		goto out;
	t = json_pack("{s:s,s:i}", "host", host, "port", (int)v[0]);
	if (t && f[1])
		json_object_set_new(t, "priority", json_integer(v[1]));
	if (t && f[2])
		json_object_set_new(t, "weight", json_integer(v[2]));
out:
	free(dup);
	return t;
}

static json_t *parse_targets(const char *s)
{
	json_t *arr = json_array();

	for (const char *p = s; arr && p && *p;) {
		const char *e = strchr(p, ';');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		json_t *t = n ? parse_target(p, n) : NULL;
		if (n && !t) {
			fprintf(stderr,
				"skydns-cli: -target wants \"host:port[:prio[:weight]]\", "
				"not \"%.*s\"\n",
				(int)n, p);
			json_decref(arr);
			return NULL;
		}
		if (t)
			json_array_append_new(arr, t);
		p = e ? e + 1 : NULL;
	}
	return arr;
}

/* Set doc[key] to the number in `val` (0..max), or say why not. */
static int set_num(json_t *doc, const char *key, const char *flag, const char *val, long max)
{
	long v = parse_num(val, max);

	if (v < 0) {
		fprintf(stderr, "skydns-cli: %s wants a number 0..%ld, not \"%s\"\n", flag, max,
			val);
		return -1;
	}
	json_object_set_new(doc, key, json_integer(v));
	return 0;
}

static json_t *record_body(const cli_opts_t *o)
{
	const char *type = o->type ? o->type : o->ptr ? "PTR" : (o->alias ? "cname" : "A");
	json_t *doc = json_pack("{s:s}", "type", type);

	if (!doc)
		return NULL;
	if (o->ptr)
		json_object_set_new(doc, "ip", json_string(o->ptr));
	if (o->ips)
		json_object_set_new(doc, "ips", split_list(o->ips));
	if (o->alias)
		json_object_set_new(doc, "alias", json_string(o->alias));
	if (o->text)
		json_object_set_new(doc, "text", json_string(o->text));
	if (o->host)
		json_object_set_new(doc, "host", json_string(o->host));
	if ((o->priority && set_num(doc, "priority", "-priority", o->priority, 65535) < 0) ||
	    (o->weight && set_num(doc, "weight", "-weight", o->weight, 65535) < 0) ||
	    (o->ttl && set_num(doc, "ttl", "-ttl", o->ttl, 0x7fffffff) < 0)) {
		json_decref(doc);
		return NULL;
	}
	if (o->target) {
		json_t *t = parse_targets(o->target);
		if (!t) {
			json_decref(doc);
			return NULL;
		}
		json_object_set_new(doc, "targets", t);
	}
	if (o->updates) {
		json_t *u = parse_updates(o->updates);
		if (!u) {
			fprintf(stderr, "skydns-cli: -updates wants \"ips:old->new[;old->new]\"\n");
			json_decref(doc);
			return NULL;
		}
		json_object_set_new(doc, "update", u);
	}
	return doc;
}

/* Append s to vals at *len (bounded). */
static void vals_add(char *vals, size_t cap, size_t *len, const char *sep, const char *s)
{
	if (*len < cap)
		*len += (size_t)snprintf(vals + *len, cap - *len, "%s%s", *len ? sep : "", s);
}

/* A TXT record as its strings, each quoted: "a" "b". */
static void txt_quoted(json_t *strs, char *out, size_t cap)
{
	size_t len = 0, i;
	json_t *v;

	out[0] = '\0';
	json_array_foreach(strs, i, v)
	{
		if (len < cap)
			len += (size_t)snprintf(out + len, cap - len, "%s\"%s\"", i ? " " : "",
						json_string_value(v) ? json_string_value(v) : "");
	}
}

/* One value as the table shows it: SRV "prio weight port target", MX "prio host". */
static void value_text(const char *type, json_t *v, char *out, size_t cap)
{
	if (json_is_string(v) && type && strcmp(type, "TXT") == 0)
		snprintf(out, cap, "\"%s\"", json_string_value(v));
	else if (json_is_string(v))
		snprintf(out, cap, "%s", json_string_value(v));
	else if (json_object_get(v, "port"))
		snprintf(out, cap, "%lld %lld %lld %s",
			 (long long)json_integer_value(json_object_get(v, "priority")),
			 (long long)json_integer_value(json_object_get(v, "weight")),
			 (long long)json_integer_value(json_object_get(v, "port")),
			 json_string_value(json_object_get(v, "target")));
	else if (json_object_get(v, "host"))
		snprintf(out, cap, "%lld %s",
			 (long long)json_integer_value(json_object_get(v, "priority")),
			 json_string_value(json_object_get(v, "host")));
	else
		snprintf(out, cap, "?");
}

static void print_line(const char *name, const char *type, const char *vals)
{
	printf("domain: %56s       val: { type:%s  ips:[%s] }\n", name ? name : "?",
	       type ? type : "?", vals);
}

/* The original's line: "domain: <name>       val: { type:A  ips:[a,b] }". */
static void print_name(json_t *name)
{
	json_t *recs = json_object_get(name, "records"), *r;
	const char *n = json_string_value(json_object_get(name, "name"));
	size_t i;

	json_array_foreach(recs, i, r)
	{
		static const char *const fields[] = {"ips", "hosts", "text", "srv", "mx", "rdata"};
		const char *type = json_string_value(json_object_get(r, "type"));
		json_t *strs = json_object_get(r, "strings");
		char vals[8192] = "", one[2048];
		size_t len = 0, j;
		json_t *v;

		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			json_array_foreach(json_object_get(r, fields[f]), j, v)
			{
				if (json_is_array(json_array_get(strs, j)))
					txt_quoted(json_array_get(strs, j), one, sizeof(one));
				else
					value_text(type, v, one, sizeof(one));
				vals_add(vals, sizeof(vals), &len, ",", one);
			}
		}
		print_line(n, type, vals);
	}
}

/* A write's "added" or "removed" entries, one line per name and type. */
static void print_changes(json_t *list, const char *verb)
{
	size_t i = 0;

	while (i < json_array_size(list)) {
		json_t *e = json_array_get(list, i);
		const char *n = json_string_value(json_object_get(e, "name"));
		const char *t = json_string_value(json_object_get(e, "type"));
		char vals[8192] = "", one[2048];
		size_t len = 0;

		for (; i < json_array_size(list); i++) {
			json_t *x = json_array_get(list, i);
			const char *xn = json_string_value(json_object_get(x, "name"));
			const char *xt = json_string_value(json_object_get(x, "type"));
			if (!n || !t || !xn || !xt || strcmp(n, xn) != 0 || strcmp(t, xt) != 0)
				break;
			value_text(t, json_object_get(x, "value"), one, sizeof(one));
			vals_add(vals, sizeof(vals), &len, ",", one);
		}
		if (len == 0) /* a malformed entry: show it rather than loop */
			i++;
		printf("%s ", verb);
		print_line(n, t, vals);
	}
}

static int print_result(const cli_opts_t *o, const buf_t *b)
{
	json_t *doc, *names, *n;
	size_t i;

	if (o->json) {
		fputs(b->p ? b->p : "", stdout);
		return 0;
	}
	if (!b->p || !(doc = json_loads(b->p, 0, NULL))) {
		fprintf(stderr, "skydns-cli: the server did not answer JSON\n");
		return 1;
	}
	if ((names = json_object_get(doc, "names"))) {
		json_array_foreach(names, i, n) print_name(n);
		if (json_string_value(json_object_get(doc, "next")))
			printf("next: -after %s\n",
			       json_string_value(json_object_get(doc, "next")));
	} else if (json_object_get(doc, "deleted")) {
		/* A delete shows what went, in the same table. */
		print_changes(json_object_get(doc, "removed"), "deleted");
	} else if (json_is_object(json_object_get(doc, "takeover"))) {
		json_t *t = json_object_get(doc, "takeover");
		printf("taken over from %s by %s: %zu records are the API's now\n",
		       json_string_value(json_object_get(t, "from")),
		       json_string_value(json_object_get(t, "owner")),
		       json_array_size(json_object_get(t, "records")));
		print_name(doc);
	} else if (json_object_get(doc, "records")) {
		print_name(doc);
	} else if (json_object_get(doc, "status") && json_is_array(json_object_get(doc, "status")))
		json_array_foreach(json_object_get(doc, "status"), i, n)
		    printf("ip: %s  status: %s\n", json_string_value(json_object_get(n, "ip")),
			   json_string_value(json_object_get(n, "status")));
	else if (json_object_get(doc, "ip"))
		printf("ip: %s  status: %s\n", json_string_value(json_object_get(doc, "ip")),
		       json_string_value(json_object_get(doc, "status")));
	else
		puts(b->p);
	json_decref(doc);
	return 0;
}

/* The control routes' replies as lines (the original printed them as they came). */
static void print_control(json_t *doc)
{
	json_t *a, *v;
	size_t i;

	if ((a = json_object_get(doc, "answers"))) {
		printf("domain: %s  cached answers: %lld\n",
		       json_string_value(json_object_get(doc, "name")),
		       (long long)json_integer_value(json_object_get(doc, "count")));
		json_array_foreach(a, i, v)
		    printf("  type:%s  rcode:%s  ttl:%lld  worker:%lld%s%s\n",
			   json_string_value(json_object_get(v, "type")),
			   json_string_value(json_object_get(v, "rcode")),
			   (long long)json_integer_value(json_object_get(v, "ttl")),
			   (long long)json_integer_value(json_object_get(v, "worker")),
			   json_is_true(json_object_get(v, "do")) ? "  do" : "",
			   json_is_true(json_object_get(v, "cd")) ? "  cd" : "");
	} else if (json_object_get(doc, "flushed")) {
		printf("domain: %s  flushed: %lld cached answers\n",
		       json_string_value(json_object_get(doc, "name")),
		       (long long)json_integer_value(json_object_get(doc, "flushed")));
	} else if (json_object_get(doc, "tracked")) {
		printf("domain: %s  count: %lld  error: %lld%s\n",
		       json_string_value(json_object_get(doc, "name")),
		       (long long)json_integer_value(json_object_get(doc, "count")),
		       (long long)json_integer_value(json_object_get(doc, "error")),
		       json_is_true(json_object_get(doc, "tracked"))
			   ? ""
			   : "  (not among the most asked)");
		if (json_object_get(doc, "lastQueryTime"))
			printf("  first: %s  last: %s\n",
			       json_string_value(json_object_get(doc, "firstQueryTime")),
			       json_string_value(json_object_get(doc, "lastQueryTime")));
	} else if (json_object_get(doc, "cacheTtl")) {
		printf("cacheTtl: %lld  maxTtl: %lld\n",
		       (long long)json_integer_value(json_object_get(doc, "cacheTtl")),
		       (long long)json_integer_value(json_object_get(doc, "maxTtl")));
	}
}

static void print_l1(json_t *doc)
{
	const char *n = json_string_value(json_object_get(doc, "name"));
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(doc, "records"), i, v)
	{
		char one[2048];
		const char *type = json_string_value(json_object_get(v, "type"));
		const char *h = json_string_value(json_object_get(v, "health"));

		value_text(type, json_object_get(v, "value"), one, sizeof(one));
		printf("domain: %s  type:%s  val:%s  ttl:%lld  source:%s%s%s\n", n ? n : "?",
		       type ? type : "?", one,
		       (long long)json_integer_value(json_object_get(v, "ttl")),
		       json_string_value(json_object_get(v, "source")), h ? "  status:" : "",
		       h ? h : "");
	}
}

static int run_control(const cli_opts_t *o, buf_t *b)
{
	json_t *doc;
	int ret;

	if (o->stats)
		ret = http(o, "GET", "/skydns/stats/", o->stats, NULL, b);
	else if (o->cache)
		ret = http(o, "GET", "/skydns/domain/", o->cache, NULL, b);
	else if (o->flush)
		ret = http(o, "DELETE", "/skydns/domain/", o->flush, NULL, b);
	else if (o->l1)
		ret = http(o, "GET", "/skydns/domainL1/", o->l1, NULL, b);
	else if (o->reread)
		ret = http(o, "POST", "/skydns/domainL1/", o->reread, "{}", b);
	else if (o->cache_ttl) {
		char body[64];
		long v = parse_num(o->cache_ttl, 86400);
		if (v < 0) {
			fprintf(stderr,
				"skydns-cli: -cache-ttl wants seconds 0..86400, not \"%s\"\n",
				o->cache_ttl);
			return 1;
		}
		snprintf(body, sizeof(body), "{\"cacheTtl\":%ld}", v);
		ret = http(o, "POST", "/skydns/master", NULL, body, b);
	} else
		ret = http(o, "GET", "/skydns/master", NULL, NULL, b);
	if (ret != 0 || o->json)
		return ret ? ret : print_result(o, b);
	if (!b->p || !(doc = json_loads(b->p, 0, NULL))) {
		fprintf(stderr, "skydns-cli: the server did not answer JSON\n");
		return 1;
	}
	if (o->l1 || o->reread)
		print_l1(doc);
	else
		print_control(doc);
	json_decref(doc);
	return 0;
}

static int run_domain(const cli_opts_t *o, buf_t *b)
{
	const char *m = o->method ? o->method : "create";
	const char *verb = strcmp(m, "create") == 0   ? "POST"
			   : strcmp(m, "update") == 0 ? "PUT"
			   : strcmp(m, "delete") == 0 ? "DELETE"
						      : NULL;
	json_t *doc = NULL;
	char *body = NULL;
	int ret;

	if (!verb) {
		fprintf(stderr, "skydns-cli: -method must be create, update or delete\n");
		return 1;
	}
	/* A bare delete removes the whole name: send no body at all. */
	if (!(strcmp(m, "delete") == 0 && !o->ips && !o->alias && !o->type && !o->text &&
	      !o->host && !o->target && !o->ptr)) {
		if (!(doc = record_body(o)) || !(body = json_dumps(doc, JSON_COMPACT))) {
			json_decref(doc);
			return 1;
		}
	}
	ret = http(o, verb, "/skydns/api/", o->domain, body, b);
	free(body);
	json_decref(doc);
	return ret;
}

static int run(const cli_opts_t *o)
{
	buf_t b = {0};
	int ret;

	if (o->list && (o->limit || o->after)) {
		char path[64];
		if (o->limit && parse_num(o->limit, 1000000) < 1) {
			fprintf(stderr, "skydns-cli: -limit wants a number 1..1000000\n");
			return 2;
		}
		/* after= last: http() appends the name, escaped */
		snprintf(path, sizeof(path), "/skydns/api/?%s%s%s", o->limit ? "limit=" : "",
			 o->limit ? o->limit : "",
			 o->after ? (o->limit ? "&after=" : "after=") : "");
		ret = http(o, "GET", path, o->after, NULL, &b);
	} else if (o->list) {
		ret = http(o, "GET", "/skydns/api/", NULL, NULL, &b);
	} else if (o->show) {
		ret = http(o, "GET", "/skydns/api/", o->show, NULL, &b);
	} else if (o->takeover) {
		cli_opts_t t = *o;
		t.query = "?takeover=import";
		ret = http(&t, "POST", "/skydns/api/", o->takeover, NULL, &b);
	} else if (o->domain || o->ptr) {
		/* -ptr without -domain posts to the list: the server makes the name */
		ret = run_domain(o, &b);
	} else if (o->stats || o->cache || o->flush || o->l1 || o->reread || o->cache_ttl ||
		   o->master) {
		ret = run_control(o, &b);
		free(b.p);
		return ret;
	} else if (o->status_ip && o->status_val) {
		char body[64];
		snprintf(body, sizeof(body), "{\"status\":\"%s\"}",
			 strcasecmp(o->status_val, "DOWN") == 0 ? "DOWN" : "UP");
		if (strcasecmp(o->status_val, "UP") != 0 &&
		    strcasecmp(o->status_val, "DOWN") != 0) {
			fprintf(stderr, "skydns-cli: -status IP takes UP or DOWN\n");
			return 1;
		}
		ret = http(o, "PUT", "/skydns/status/", o->status_ip, body, &b);
	} else if (o->status_ip) {
		b.quiet404 = true;
		ret = http(o, "GET", "/skydns/status/", o->status_ip, NULL, &b);
		if (ret == 2) {
			/* No record: the address counts as UP (DESIGN §6), so say that. */
			json_t *j = o->json ? json_pack("{s:s,s:s,s:b}", "ip", o->status_ip,
							"status", "UP", "recorded", 0)
					    : NULL;
			char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
			if (o->json)
				printf("%s\n", txt ? txt : "{}");
			else
				printf("ip: %s  status: UP (no record)\n", o->status_ip);
			free(txt);
			json_decref(j);
			free(b.p);
			return 0;
		}
	} else {
		usage(stderr);
		return 2;
	}
	if (ret == 0)
		ret = print_result(o, &b);
	free(b.p);
	return ret;
}

int main(int argc, char **argv)
{
	cli_opts_t o = {0};
	int ret;

	o.addr = getenv("SKYDNS_API_ADDR");
	o.token = getenv("SKYDNS_API_TOKEN");
	o.user = getenv("SKYDNS_API_USER");
	if (parse_args(argc, argv, &o) < 0)
		return 2;
	if (!o.addr || !o.addr[0])
		o.addr = "127.0.0.1:9001";
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "skydns-cli: libcurl init failed\n");
		return 1;
	}
	ret = run(&o);
	curl_global_cleanup();
	return ret;
}
