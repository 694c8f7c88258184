/*
 * api: civetweb start/stop, routing, auth and reply helpers (DESIGN §6).
 */
#include "api/api.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>
#include <jansson.h>

#include "api/api_internal.h"
#include "api/api_json.h"
#include "common/err.h"
#include "common/log.h"
#include "conf/conf.h"
#include "store/store.h"

/* Header deadline (civetweb measures it from the first byte) and each body read's. */
#define API_REQUEST_TIMEOUT_MS "2000"
/* A whole body, however it trickles in; 1 MiB over loopback takes milliseconds. */
#define API_BODY_DEADLINE_MS 5000

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 421:
		return "Misdirected Request";
	case 503:
		return "Service Unavailable";
	default:
		return status >= 500 ? "Internal Server Error" : "Error";
	}
}

static const int api_codes[API_NCODES - 1] = {API_CODES_LIST};

unsigned api_code_slot(int status)
{
	for (unsigned i = 0; i < API_NCODES - 1; i++)
		if (api_codes[i] == status)
			return i;
	return API_NCODES - 1;
}

int api_code_of_slot(unsigned i)
{
	return i < API_NCODES - 1 ? api_codes[i] : 0;
}

int api_reply_text(struct mg_connection *c, int status, const char *ctype, const char *body,
		   size_t len)
{
	return api_reply_headers(c, status, ctype, NULL, body, len);
}

int api_reply_headers(struct mg_connection *c, int status, const char *ctype, const char *extra,
		      const char *body, size_t len)
{
	api_t *api = mg_get_request_info(c)->user_data;

	/* Every reply passes here, so this is the one place that counts them. */
	if (api)
		atomic_fetch_add_explicit(&api->replies[api_code_slot(status)], 1,
					  memory_order_relaxed);
	/* Close after every reply: an unread request body must not be parsed as the next request.
	 */
	mg_printf(c,
		  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		  "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
		  status, status_text(status), ctype, len, extra ? extra : "");
	mg_write(c, body, len);
	return status;
}

void api_reply_stream_start(struct mg_connection *c, int status, const char *ctype)
{
	api_t *api = mg_get_request_info(c)->user_data;

	if (api)
		atomic_fetch_add_explicit(&api->replies[api_code_slot(status)], 1,
					  memory_order_relaxed);
	/* No length: the body ends when the connection closes, as every reply's does. */
	mg_printf(c,
		  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
		  "Connection: close\r\n\r\n",
		  status, status_text(status), ctype);
}

int api_reply_json(struct mg_connection *c, int status, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	int ret;

	json_decref(doc);
	if (!text) {
		static const char oom[] = "{\"error\":\"out of memory\"}";
		return api_reply_text(c, 500, "application/json", oom, sizeof(oom) - 1);
	}
	size_t n = strlen(text);
	text[n] = '\n'; /* json_dumps leaves room: the NUL becomes the newline */
	ret = api_reply_text(c, status, "application/json", text, n + 1);
	free(text);
	return ret;
}

int api_reply_error(struct mg_connection *c, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return api_reply_json(c, status, json_pack("{s:s}", "error", msg));
}

int api_refuse(char *msg, size_t cap, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
	return code;
}

int api_reply_err_code(struct mg_connection *c, int code, const char *what)
{
	switch (code) {
	case ERR_NOTFOUND:
		return api_reply_error(c, 404, "%s: not found", what);
	case ERR_CONFLICT:
	case ERR_READONLY:
		return api_reply_error(c, 409, "%s: %s", what, err_str(code));
	case ERR_TOOBIG:
	case ERR_SPACE:
		return api_reply_error(c, 413, "%s: %s", what, err_str(code));
	case ERR_INVAL:
	case ERR_PARSE:
		return api_reply_error(c, 400, "%s: %s", what, err_str(code));
	default:
		log_err("api: %s: %s", what, err_str(code));
		return api_reply_error(c, 500, "%s: %s", what, err_str(code));
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int api_read_body(struct mg_connection *c, char **out, size_t *len)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	size_t cap = 4096, n = 0;
	int64_t deadline = mono_ms() + API_BODY_DEADLINE_MS;
	char *buf;

	if (ri->content_length > API_BODY_MAX)
		return API_JSON_TOOBIG; /* refuse before reading a byte */
	if (ri->content_length >= 0)
		cap = (size_t)ri->content_length + 1;
	if (!(buf = malloc(cap)))
		return -ENOMEM;
	for (;;) {
		if (n + 1 >= cap) {
			char *nb;
			if (cap > API_BODY_MAX + 1 || !(nb = realloc(buf, cap * 2))) {
				free(buf);
				return cap > API_BODY_MAX + 1 ? API_JSON_TOOBIG : -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		/*
		 * One byte per call: mg_read() returns only when the whole length
		 * asked for has come, and its timeout restarts with every byte, so
		 * a client sending a byte a second would hold a bigger read (and
		 * the thread) for as many seconds as it asks bytes. Bytes that came
		 * with the header are copied from civetweb's buffer without a
		 * syscall; the rest cost a poll + recv each (~40 ms for 20 KB).
		 */
		int r = mg_read(c, buf + n, 1);
		if (r < 0) {
			free(buf);
			return -EIO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (mono_ms() > deadline) {
			free(buf);
			return -ETIMEDOUT;
		}
	}
	if (n > API_BODY_MAX) {
		free(buf);
		return API_JSON_TOOBIG;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

bool api_token_equal(const char *want, const char *got, size_t gotlen)
{
	size_t wlen = strlen(want);
	unsigned char diff = (unsigned char)(wlen != gotlen);

	for (size_t i = 0; i < wlen; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < gotlen ? got[i] : 0);
	return diff == 0;
}

/* The token a request presents (Bearer header, else ?token=), into buf. @return its length
 * or -1 when it brings none. */
static int presented_token(struct mg_connection *c, char *buf, size_t cap)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	const char *h = mg_get_header(c, "Authorization");

	if (h && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		if (strlen(h) >= cap)
			return -1;
		snprintf(buf, cap, "%s", h);
		return (int)strlen(buf);
	}
	if (ri->query_string)
		return mg_get_var(ri->query_string, strlen(ri->query_string), "token", buf, cap);
	return -1;
}

/*
 * Who sent the request: the admin (the single api-token, or no token on a tokenless
 * loopback API), or the user whose api-tokens-file token it brings. The admin may act as
 * a user with ?user=<name> (the original's shared-token scripts), which then owns what it
 * writes and sees only its names. @return 0 (*who filled), 401 or 403 (replied).
 */
static int identify(api_t *api, struct mg_connection *c, api_who_t *who)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	char tok[512], user[API_USER_MAX + 1];
	int n, un = -1;

	*who = (api_who_t){.user = API_ADMIN_USER, .admin = true};
	/* api->tokens is set once at start and only swapped for another table after. */
	if (api->token || api->tokens) {
		n = presented_token(c, tok, sizeof(tok));
		if (n < 0 || (!(api->token && api_token_equal(api->token, tok, (size_t)n)) &&
			      !api_tokens_match(api, tok, (size_t)n, who))) {
			api_reply_error(c, 401, "missing or bad token");
			return 401;
		}
	}
	if (ri->query_string)
		un = mg_get_var(ri->query_string, strlen(ri->query_string), "user", user,
				sizeof(user));
	if (un < 0 || (un == 0 && who->admin) || strcmp(user, who->user) == 0)
		return 0;
	if (!api_user_valid(user, (size_t)un)) {
		api_reply_error(c, 400, "user: bad user name \"%.64s\"", user);
		return 400;
	}
	if (!who->admin) {
		api_reply_error(c, 403, "the token of user %s cannot act as user %s", who->user,
				user);
		return 403;
	}
	memcpy(who->user, user, (size_t)un + 1); /* api_user_valid: un < API_USER_MAX */
	who->admin = strcmp(user, API_ADMIN_USER) == 0;
	return 0;
}

/*
 * Debian 12's civetweb 1.15 loads OpenSSL at run time (dlopen "libssl.so")
 * and calls SSL_get_peer_certificate on every TLS connection. OpenSSL 3 only
 * has it as a macro, so dlsym finds nothing and civetweb calls a NULL
 * pointer. Look the symbol up the way civetweb does, so a broken pairing is
 * a clear start-up error rather than a crash, and a fixed one just works.
 */
static bool tls_runtime_usable(void)
{
	void *ssl = dlopen("libssl.so", RTLD_LAZY | RTLD_LOCAL);
	bool ok = ssl && dlsym(ssl, "SSL_get_peer_certificate");

	if (ssl)
		dlclose(ssl);
	return ok;
}

/*
 * With etcd configured, ready only once the watcher committed a full read or
 * the store already held a revision to resume from (skydns-watch-etcd writes
 * "etcd:rev" in the txn of its first commit): before that the etcd names would
 * answer NXDOMAIN.
 */
static bool etcd_synced(api_t *api)
{
	store_rtxn_t *t = NULL;
	uint64_t rev = 0;
	int ret;

	if (!api->conf->etcd_servers)
		return true;
	if (store_read_begin(api->store, &t) < 0)
		return false;
	ret = store_meta_u64(t, STORE_ETCD_REV, &rev);
	store_read_end(t);
	return ret == 0 && rev > 0;
}

/* As etcd_synced: the Kubernetes watcher writes "k8s:synced" in its first list's txn. */
static bool k8s_synced(api_t *api)
{
	store_rtxn_t *t = NULL;
	uint64_t v = 0;
	int ret;

	if (!api->conf->k8s_enable)
		return true;
	if (store_read_begin(api->store, &t) < 0)
		return false;
	ret = store_meta_u64(t, STORE_K8S_SYNCED, &v);
	store_read_end(t);
	return ret == 0 && v > 0;
}

static int handle_ready(api_t *api, struct mg_connection *c)
{
	char why[128];
	int ret;

	if (atomic_load(&api->draining))
		return api_reply_json(c, 503, json_pack("{s:s}", "status", "draining"));
	/* Ready = able to answer from the store. A read txn is what every answer needs;
	 * beginning one also re-maps a store another process has grown (issue 10 item 8). */
	if ((ret = store_check(api->store)) < 0) {
		snprintf(why, sizeof(why), "store cannot be read: %s", err_str(ret));
		return api_reply_json(
		    c, 503, json_pack("{s:s,s:s}", "status", "unavailable", "reason", why));
	}
	if (!etcd_synced(api))
		return api_reply_json(
		    c, 503,
		    json_pack("{s:s,s:s}", "status", "unavailable", "reason",
			      "etcd not synced yet: no full read or resume committed"));
	if (!k8s_synced(api))
		return api_reply_json(c, 503,
				      json_pack("{s:s,s:s}", "status", "unavailable", "reason",
						"kubernetes not synced yet: no list committed"));
	return api_reply_json(c, 200, json_pack("{s:s}", "status", "ready"));
}

static int route_skydns(api_t *api, struct mg_connection *c, const api_who_t *who,
			const char *method, const char *p)
{
	if (strncmp(p, "api/", 4) == 0)
		return api_records_handle(api, c, who, method, p + 4);
	if (strcmp(p, "api") == 0)
		return api_records_handle(api, c, who, method, "");
	if (strncmp(p, "status/", 7) == 0)
		return api_status_handle(api, c, method, p + 7);
	if (strcmp(p, "status") == 0)
		return api_status_handle(api, c, method, "");
	if (strncmp(p, "stats/top/", 10) == 0)
		return api_top_handle(api, c, method, p + 10);
	if (strcmp(p, "stats/live") == 0) {
		if (strcmp(method, "GET") != 0)
			return api_reply_error(c, 405, "method %s not allowed here", method);
		return api_live_handle(api, c);
	}
	if (strncmp(p, "lookup/", 7) == 0) {
		if (strcmp(method, "GET") != 0)
			return api_reply_error(c, 405, "method %s not allowed here", method);
		return api_lookup_handle(api, c, p + 7);
	}
	if (strcmp(p, "stats") == 0 || strcmp(p, "stats/") == 0) {
		if (strcmp(method, "GET") != 0)
			return api_reply_error(c, 405, "method %s not allowed here", method);
		return api_stats_handle(api, c, "");
	}
	return api_control_handle(api, c, method, p);
}

static int route_plain(api_t *api, struct mg_connection *c, const char *method, const char *uri)
{
	int which = strcmp(uri, "/health") == 0	   ? 1
		    : strcmp(uri, "/ready") == 0   ? 2
		    : strcmp(uri, "/metrics") == 0 ? 3
						   : 0;

	if (!which)
		return api_reply_error(c, 404, "no such route");
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return api_reply_error(c, 405, "method %s not allowed here", method);
	if (which == 1)
		return api_reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
	if (which == 2)
		return handle_ready(api, c);
	return api_metrics_handle(api, c);
}

static int on_request(struct mg_connection *c, void *cbdata)
{
	api_t *api = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(c);
	/* The raw form: civetweb's cleaned local_uri drops a trailing '.', which makes a name
	 * absolute. */
	const char *uri = ri->local_uri_raw ? ri->local_uri_raw
			  : ri->local_uri   ? ri->local_uri
					    : "";
	const char *method = ri->request_method ? ri->request_method : "";
	api_who_t who;
	int ret;

	if ((ret = api_ui_handle(api, c, method, uri)) != 0)
		return ret;
	if (strncmp(uri, "/skydns/", 8) != 0)
		return route_plain(api, c, method, uri);
	/* Without a token nothing else tells a browser page from the admin. */
	if (!api->token && !api->tokens && (ret = api_guard_check(api, c)) != 0)
		return ret;
	if ((ret = identify(api, c, &who)) != 0)
		return ret;
	/* Users own records; health, caches and settings are the admin's. */
	if (!who.admin && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    strncmp(uri + 8, "api/", 4) != 0 && strcmp(uri + 8, "api") != 0)
		return api_reply_error(c, 403, "user %s: only the admin token may %s %s", who.user,
				       method, uri);
	return route_skydns(api, c, &who, method, uri + 8);
}

static int on_log(const struct mg_connection *c, const char *msg)
{
	(void)c;
	log_warn("api: civetweb: %s", msg);
	return 1;
}

static bool addr_is_loopback(const conf_addr_t *a)
{
	if (a->sa.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&a->sa;
		return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
	}
	if (a->sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->sa;
		return IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
	}
	return false;
}

/* Build civetweb's listening_ports value: "ip:port", 's' suffix for TLS. */
static int listen_spec(const conf_t *conf, char *out, size_t cap, bool *loopback)
{
	conf_addr_t a;
	char ip[INET6_ADDRSTRLEN];
	bool tls = conf->api_certfile && conf->api_certfile[0];

	if (conf_parse_addr(conf->api_address ? conf->api_address : "127.0.0.1:9001", 9001, &a) <
	    0) {
		log_err("api: bad api-address \"%s\"", conf->api_address);
		return ERR_CONFIG;
	}
	*loopback = addr_is_loopback(&a);
	if (a.sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a.sa;
		if (!mg_check_feature(MG_FEATURES_IPV6)) {
			log_err("api: api-address %s: this civetweb build has no IPv6 support",
				conf->api_address);
			return ERR_CONFIG;
		}
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		snprintf(out, cap, "[%s]:%u%s", ip, ntohs(s->sin6_port), tls ? "s" : "");
	} else {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&a.sa;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		snprintf(out, cap, "%s:%u%s", ip, ntohs(s->sin_port), tls ? "s" : "");
	}
	return 0;
}

static int check_conf(const conf_t *conf, char *spec, size_t cap)
{
	bool loopback = false;
	bool has_token = (conf->api_token && conf->api_token[0]) ||
			 (conf->api_tokens_file && conf->api_tokens_file[0]);
	int ret;

	if ((ret = listen_spec(conf, spec, cap, &loopback)) < 0)
		return ret;
	if (!loopback && !has_token) {
		log_err(
		    "api: refusing to serve %s without api-token (only loopback may go without)",
		    conf->api_address);
		return ERR_CONFIG;
	}
	if ((conf->api_certfile && conf->api_certfile[0]) && !mg_check_feature(MG_FEATURES_TLS)) {
		log_err("api: api-certfile set but civetweb was built without TLS");
		return ERR_CONFIG;
	}
	if ((conf->api_certfile && conf->api_certfile[0]) && !tls_runtime_usable()) {
		log_err(
		    "api: api-certfile set, but this civetweb cannot serve TLS with the installed "
		    "OpenSSL: it looks up SSL_get_peer_certificate, which OpenSSL 3 no longer "
		    "exports, and would crash on the first connection. Terminate TLS in front "
		    "of the API (e.g. stunnel or nginx on the same host) instead");
		return ERR_CONFIG;
	}
	return 0;
}

static int copy_file(int to, const char *path)
{
	char buf[4096];
	FILE *f = fopen(path, "re");
	size_t n;
	int ret = 0;

	if (!f)
		return -errno;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (write(to, buf, n) != (ssize_t)n) {
			ret = -EIO;
			break;
		}
	}
	if (ferror(f))
		ret = -EIO;
	fclose(f);
	return ret;
}

/*
 * civetweb loads certificate and key from the one PEM named by
 * ssl_certificate. With a separate key file, join both into a memfd so the
 * key never lands in another file on disk.
 */
static int tls_pem(api_t *api, const conf_t *conf, char *path, size_t cap)
{
	int ret;

	if (!conf->api_keyfile || !conf->api_keyfile[0] ||
	    strcmp(conf->api_keyfile, conf->api_certfile) == 0) {
		snprintf(path, cap, "%s", conf->api_certfile);
		return 0;
	}
	if ((api->pemfd = memfd_create("skydns-api-tls", MFD_CLOEXEC)) < 0)
		return -errno;
	if ((ret = copy_file(api->pemfd, conf->api_certfile)) < 0 ||
	    (ret = copy_file(api->pemfd, conf->api_keyfile)) < 0) {
		log_err("api: reading api-certfile/api-keyfile: %s", err_str(ret));
		return ret;
	}
	snprintf(path, cap, "/proc/self/fd/%d", api->pemfd);
	return 0;
}

/*
 * Every request, from the first one civetweb accepts. A handler set with
 * mg_set_request_handler after mg_start2 left a window in which the port
 * already listened and requests got civetweb's own 404 (TSan made it wide
 * enough for test_forward to hit it).
 */
static int on_begin_request(struct mg_connection *c)
{
	return on_request(c, mg_get_user_data(mg_get_context(c)));
}

static int start_civetweb(api_t *api, const conf_t *conf, const char *spec)
{
	struct mg_callbacks cb = {.log_message = on_log, .begin_request = on_begin_request};
	const char *opts[16];
	char errtext[256] = "";
	struct mg_error_data errd = {.text = errtext, .text_buffer_size = sizeof(errtext)};
	struct mg_init_data init = {.callbacks = &cb, .user_data = api};
	char pem[PATH_MAX], threads[16];
	size_t n = 0;

	opts[n++] = "listening_ports";
	opts[n++] = spec;
	/*
	 * Issue 10 item 6: a civetweb thread reads one request header at a time
	 * and waits for it up to request_timeout_ms, so K slow clients hold K
	 * threads and /health queued behind them. Many threads (api-threads,
	 * 100 KB stacks each) and a 2 s header deadline mean a liveness probe
	 * waits only when more than api-threads clients stall at once, and then
	 * at most ~2 s. A separate listener for /health would have changed the
	 * port probes use; civetweb's queue alone would only move the wait.
	 */
	snprintf(threads, sizeof(threads), "%u", conf->api_threads ? conf->api_threads : 32);
	opts[n++] = "num_threads";
	opts[n++] = threads;
	opts[n++] = "request_timeout_ms";
	opts[n++] = API_REQUEST_TIMEOUT_MS;
	opts[n++] = "enable_keep_alive";
	opts[n++] = "no";
	if (conf->api_certfile && conf->api_certfile[0]) {
		int ret = tls_pem(api, conf, pem, sizeof(pem));
		if (ret < 0)
			return ret;
		opts[n++] = "ssl_certificate";
		opts[n++] = pem;
	}
	opts[n] = NULL;
	init.configuration_options = opts;
	api->ctx = mg_start2(&init, &errd);
	if (!api->ctx) {
		log_err("api: cannot listen on %s: %s", spec,
			errtext[0] ? errtext : "unknown error");
		return strstr(errtext, "bind") || strstr(errtext, "port") ? -EADDRINUSE
									  : ERR_CONFIG;
	}
	return 0;
}

int api_check_conf(const struct conf *conf)
{
	char spec[128];

	return conf->api_enable ? check_conf(conf, spec, sizeof(spec)) : 0;
}

int api_start(api_t **out, const struct conf *conf, struct store *store, const api_hooks_t *hooks)
{
	char spec[128];
	api_t *api = NULL;
	int ret;

	if (!conf->api_enable) {
		*out = NULL;
		return 0;
	}
	if ((ret = check_conf(conf, spec, sizeof(spec))) < 0)
		return ret;
	if (!(api = calloc(1, sizeof(*api))))
		return -ENOMEM;
	api->pemfd = -1;
	pthread_mutex_init(&api->tokens_lock, NULL);
	api->conf = conf;
	api->store = store;
	if (hooks)
		api->hooks = *hooks;
	if (conf->api_token && conf->api_token[0] && !(api->token = strdup(conf->api_token))) {
		ret = -ENOMEM;
		goto fail;
	}
	if (conf->api_tokens_file && conf->api_tokens_file[0] &&
	    (ret = api_tokens_load(conf->api_tokens_file, &api->tokens)) < 0)
		goto fail;
	if (!api->token && !api->tokens && (ret = api_guard_init(api, conf)) < 0)
		goto fail;
	mg_init_library(conf->api_certfile && conf->api_certfile[0] ? MG_FEATURES_TLS : 0);
	if ((ret = start_civetweb(api, conf, spec)) < 0) {
		mg_exit_library();
		goto fail;
	}
	log_info("api: listening on %s%s", spec,
		 api->token || api->tokens ? " (token required)" : "");
	*out = api;
	return 0;
fail:
	if (api->pemfd >= 0)
		close(api->pemfd);
	api_guard_free(api);
	api_tokens_free(api->tokens);
	pthread_mutex_destroy(&api->tokens_lock);
	free(api->token);
	free(api);
	return ret;
}

void api_set_draining(api_t *api, bool draining)
{
	if (api)
		atomic_store(&api->draining, draining);
}

void api_stop(api_t *api)
{
	if (!api)
		return;
	mg_stop(api->ctx);
	mg_exit_library();
	if (api->pemfd >= 0)
		close(api->pemfd);
	api_guard_free(api);
	api_tokens_free(api->tokens);
	pthread_mutex_destroy(&api->tokens_lock);
	free(api->token);
	free(api);
}
