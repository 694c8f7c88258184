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
	const char *show;
	const char *domain;
	const char *method;
	const char *ips;
	const char *alias;
	const char *updates;
	const char *type;
	const char *status_ip;
	const char *status_val;
	bool list;
	bool json;
} cli_opts_t;

typedef struct {
	char *p;
	size_t len;
	bool overflow;
} buf_t;

static void usage(FILE *f)
{
	fputs("usage: skydns-cli [-addr HOST:PORT] [-token TOKEN] [-json] COMMAND\n"
	      "commands:\n"
	      "  -list             print every name and its records\n"
	      "  -show NAME        print one name\n"
	      "  -domain NAME      write NAME (short names get the first local domain);\n"
	      "                    with -method and -ips, -alias or -updates\n"
	      "  -status IP [UP|DOWN]  show, or set, the health of an address\n"
	      "options for -domain:\n"
	      "  -method M         create (POST), update (PUT) or delete (DELETE); default create\n"
	      "  -type TYPE        record type (default A; cname when -alias is given)\n"
	      "  -ips \"a;b\"        addresses: create adds them, update replaces the set,\n"
	      "                    delete removes them (no -ips: delete the whole name)\n"
	      "  -alias NAME       create: make NAME a CNAME of -domain\n"
	      "  -updates \"ips:old->new[;old->new]\"  update: replace addresses one by one\n"
	      "options:\n"
	      "  -addr HOST:PORT   API address (env SKYDNS_API_ADDR, default 127.0.0.1:9001);\n"
	      "                    an http:// or https:// URL is taken as is\n"
	      "  -token TOKEN      API token (env SKYDNS_API_TOKEN), sent as a Bearer header\n"
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
		} else if (strcmp(a, "-status") == 0) {
			if (i + 1 >= argc)
				return -1;
			o->status_ip = argv[++i];
			if (i + 1 < argc && argv[i + 1][0] != '-')
				o->status_val = argv[++i];
		} else {
			dst = strcmp(a, "-addr") == 0	   ? &o->addr
			      : strcmp(a, "-token") == 0   ? &o->token
			      : strcmp(a, "-show") == 0	   ? &o->show
			      : strcmp(a, "-domain") == 0  ? &o->domain
			      : strcmp(a, "-method") == 0  ? &o->method
			      : strcmp(a, "-ips") == 0	   ? &o->ips
			      : strcmp(a, "-alias") == 0   ? &o->alias
			      : strcmp(a, "-updates") == 0 ? &o->updates
			      : strcmp(a, "-type") == 0	   ? &o->type
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
	const char *scheme = strstr(o->addr, "://") ? "" : "http://";
	size_t n = strlen(scheme) + strlen(o->addr) + strlen(path) + (esc ? strlen(esc) : 0) + 1;
	char *url = malloc(n);

	if (url)
		snprintf(url, n, "%s%s%s%s", scheme, o->addr, path, esc ? esc : "");
	curl_free(esc);
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
 * One HTTP request. @return 0 with the body in *out (owned), or 1 after
 * printing why it failed.
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

static json_t *record_body(const cli_opts_t *o)
{
	const char *type = o->type ? o->type : (o->alias ? "cname" : "A");
	json_t *doc = json_pack("{s:s}", "type", type);

	if (!doc)
		return NULL;
	if (o->ips)
		json_object_set_new(doc, "ips", split_list(o->ips));
	if (o->alias)
		json_object_set_new(doc, "alias", json_string(o->alias));
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

/* The original's line: "domain: <name>       val: { type:A  ips:[a,b] }". */
static void print_name(json_t *name)
{
	json_t *recs = json_object_get(name, "records"), *r;
	const char *n = json_string_value(json_object_get(name, "name"));
	size_t i;

	json_array_foreach(recs, i, r)
	{
		static const char *const fields[] = {"ips", "hosts", "text", "srv", "mx", "rdata"};
		char vals[4096] = "";
		size_t len = 0, j;
		json_t *v;

		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			json_array_foreach(json_object_get(r, fields[f]), j, v)
			{
				char *txt = json_is_string(v)
						? strdup(json_string_value(v))
						: json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
				if (txt && len < sizeof(vals))
					len += (size_t)snprintf(vals + len, sizeof(vals) - len,
								"%s%s", len ? "," : "", txt);
				free(txt);
			}
		}
		printf("domain: %56s       val: { type:%s  ips:[%s] }\n", n ? n : "?",
		       json_string_value(json_object_get(r, "type")), vals);
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
	if ((names = json_object_get(doc, "names")))
		json_array_foreach(names, i, n) print_name(n);
	else if (json_object_get(doc, "records"))
		print_name(doc);
	else if (json_object_get(doc, "status") && json_is_array(json_object_get(doc, "status")))
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
	if (!(strcmp(m, "delete") == 0 && !o->ips && !o->alias && !o->type)) {
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

	if (o->list) {
		ret = http(o, "GET", "/skydns/api/", NULL, NULL, &b);
	} else if (o->show) {
		ret = http(o, "GET", "/skydns/api/", o->show, NULL, &b);
	} else if (o->domain) {
		ret = run_domain(o, &b);
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
		ret = http(o, "GET", "/skydns/status/", o->status_ip, NULL, &b);
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
