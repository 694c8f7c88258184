/*
 * k8s.c: list pages and watch streams against the Kubernetes API (k8s.h).
 */
#include "watchers/k8s.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/log.h"
#include "watchers/k8sauth.h"

#define LIST_TIMEOUT_MS 60000
#define CONNECT_MS 5000
/* The API server ends a watch after timeoutSeconds; the watcher re-watches from
 * its last resourceVersion (a cheap request), so a dead proxy is noticed too. */
#define WATCH_TIMEOUT_S 300
/* Bookmarks come about once a minute from kube-apiserver: three missed = gone. */
#define WATCH_IDLE_MS ((WATCH_TIMEOUT_S + 30) * 1000L)

struct k8s {
	k8s_auth_t *auth;
	const char *server; /* borrowed from auth */
	http_tls_t tls;	    /* strings borrowed from auth */
	http_t *list;
	volatile sig_atomic_t *stop;
};

void k8s_free(k8s_t *k)
{
	if (!k)
		return;
	http_free(k->list);
	free(k);
}

int k8s_new(k8s_t **out, k8s_auth_t *auth, volatile sig_atomic_t *stop)
{
	k8s_t *k = calloc(1, sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	k->stop = stop;
	k->auth = auth;
	k->server = k8s_auth_server(auth);
	k->tls =
	    (http_tls_t){k8s_auth_cafile(auth), k8s_auth_certfile(auth), k8s_auth_keyfile(auth)};
	if ((ret = http_new(&k->list, &k->tls, stop)) < 0) {
		k8s_free(k);
		return ret;
	}
	*out = k;
	return 0;
}

const char *k8s_server(const k8s_t *k)
{
	return k->server;
}

/* The token as of now (k8sauth re-reads a rotated file), on this handle. */
static int set_token(k8s_t *k, http_t *h)
{
	char buf[K8S_TOKEN_MAX + 1], err[256] = "";
	int ret = k8s_auth_token(k->auth, buf, sizeof(buf), NULL, err, sizeof(err));

	if (ret < 0) {
		log_warn("k8s: token: %s", err[0] ? err : err_str(ret));
		return ret;
	}
	return http_set_bearer(h, buf[0] ? buf : NULL);
}

/* Percent-encode a continue token (base64: '+', '/', '=') for a query string. */
static void url_escape(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in && o + 4 < cap; in++) {
		unsigned char c = (unsigned char)*in;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = 0;
}

/* A Status object's code (410 for an expired resourceVersion or continue token). */
static long status_code(const json_t *o)
{
	const char *kind = json_string_value(json_object_get(o, "kind"));

	if (!kind || strcmp(kind, "Status") != 0)
		return 0;
	return (long)json_integer_value(json_object_get(o, "code"));
}

static int list_page(k8s_t *k, const char *url, k8s_item_fn fn, void *ctx, char *rv, size_t rvcap,
		     char *cont, size_t contcap)
{
	http_resp_t r = {0};
	json_t *o = NULL, *items, *it;
	const char *s;
	size_t i;
	int ret;

	if ((ret = set_token(k, k->list)) < 0 ||
	    (ret = http_get(k->list, url, LIST_TIMEOUT_MS, &r)) < 0)
		return ret;
	o = json_loadb(r.body, r.len, 0, NULL);
	if (r.status == 410 || status_code(o) == 410) {
		ret = K8S_GONE;
		goto out;
	}
	if (r.status != 200 || !json_is_object(o) ||
	    !json_is_array(items = json_object_get(o, "items"))) {
		const char *msg = json_string_value(json_object_get(o, "message"));
		log_warn("k8s: GET %s: HTTP %ld%s%s", url, r.status, msg ? ": " : "",
			 msg ? msg : "");
		ret = ERR_UPSTREAM;
		goto out;
	}
	json_t *md = json_object_get(o, "metadata");
	if (rv[0] == 0 && (s = json_string_value(json_object_get(md, "resourceVersion"))))
		snprintf(rv, rvcap, "%s", s);
	s = json_string_value(json_object_get(md, "continue"));
	snprintf(cont, contcap, "%s", s ? s : "");
	json_array_foreach(items, i, it)
	{
		if ((ret = fn(ctx, it)) != 0)
			goto out;
	}
	ret = 0;
out:
	json_decref(o);
	http_resp_clear(&r);
	return ret;
}

int k8s_list(k8s_t *k, const char *path, size_t limit, k8s_item_fn fn, void *ctx, char *rv,
	     size_t rvcap)
{
	char cont[2048] = "", esc[6144], url[8192], got[256] = "";
	int ret;

	do {
		url_escape(cont, esc, sizeof(esc));
		snprintf(url, sizeof(url), "%s%s?limit=%zu%s%s", k->server, path, limit,
			 cont[0] ? "&continue=" : "", esc);
		if ((ret = list_page(k, url, fn, ctx, got, sizeof(got), cont, sizeof(cont))) != 0)
			return ret;
	} while (cont[0]);
	if (!got[0]) {
		log_warn("k8s: list %s: no resourceVersion", path);
		return ERR_UPSTREAM;
	}
	snprintf(rv, rvcap, "%s", got);
	return 0;
}

int k8s_watch_init(k8s_t *k, k8s_watch_t *w)
{
	memset(w, 0, sizeof(*w));
	return http_new(&w->http, &k->tls, k->stop);
}

void k8s_watch_deinit(k8s_watch_t *w)
{
	http_free(w->http);
	w->http = NULL;
}

static int on_line(void *ctx, const char *line, size_t len)
{
	k8s_watch_t *w = ctx;
	json_t *o = json_loadb(line, len, 0, NULL);
	const char *type = json_string_value(json_object_get(o, "type"));
	const json_t *obj = json_object_get(o, "object");
	int ret = 0;

	if (!type || !json_is_object(obj)) {
		/* An HTTP error body (a Status, not an event) arrives as lines too. */
		ret = status_code(o) == 410 ? K8S_GONE : ERR_UPSTREAM;
	} else if (strcmp(type, "ERROR") == 0) {
		const char *msg = json_string_value(json_object_get(obj, "message"));
		ret = status_code(obj) == 410 ? K8S_GONE : ERR_UPSTREAM;
		if (ret != K8S_GONE)
			log_warn("k8s: watch %s: ERROR %s", w->url, msg ? msg : "");
	} else {
		ret = w->cb.event(w->cb.ctx, type, obj);
	}
	json_decref(o);
	if (ret != 0)
		w->err = ret;
	return ret;
}

static int on_flush(void *ctx)
{
	k8s_watch_t *w = ctx;

	return w->cb.flush ? w->cb.flush(w->cb.ctx) : 0;
}

int k8s_watch_start(k8s_t *k, k8s_watch_t *w, http_multi_t *m, const char *path, const char *rv,
		    const k8s_watch_cb_t *cb)
{
	char esc[512];
	int ret;

	url_escape(rv ? rv : "", esc, sizeof(esc));
	snprintf(w->url, sizeof(w->url),
		 "%s%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s",
		 k->server, path, WATCH_TIMEOUT_S, esc);
	w->cb = *cb;
	w->err = 0;
	if ((ret = set_token(k, w->http)) < 0)
		return ret;
	return http_multi_add(m, w->http, w->url, CONNECT_MS, WATCH_IDLE_MS, on_line, on_flush, w);
}

int k8s_watch_result(k8s_watch_t *w, int ret, long status)
{
	if (w->err == K8S_GONE || status == 410)
		return K8S_GONE;
	if (ret != 0)
		return ret;
	if (status != 200) {
		log_warn("k8s: watch %s: HTTP %ld", w->url, status);
		return ERR_UPSTREAM;
	}
	return 0;
}
