/*
 * http.c: libcurl easy handles for POST-and-collect and POST-and-stream.
 * Everything that talks to curl is here, so CURLcode never leaves this file.
 */
#include "watchers/http.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/err.h"

#define HTTP_BODY_MAX ((size_t)256 << 20)
#define HTTP_LINE_MAX ((size_t)64 << 20)

/* Accumulates a reply (post) or the unfinished line (stream). */
typedef struct {
	char *buf;
	size_t len, cap, max;
	http_line_fn line;
	http_flush_fn flush;
	void *ctx;
	int cb_ret; /* a callback's non-zero return */
	bool too_big;
	bool unflushed; /* lines were handed on since the last flush */
	http_t *h;	/* stream: for the stop flag in the progress callback */
} sink_t;

struct http {
	CURL *curl;
	struct curl_slist *hdrs;
	char *token_hdr;
	char *cafile, *certfile, *keyfile;
	volatile sig_atomic_t *stop;
	sink_t msink;		  /* the stream of an http_multi transfer */
	struct http_multi *multi; /* non-NULL while in one */
};

struct http_multi {
	CURLM *m;
	volatile sig_atomic_t *stop;
};

static bool g_curl_ready;

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int http_new(http_t **out, const http_tls_t *tls, volatile sig_atomic_t *stop)
{
	http_t *h;

	/* Once, before any thread: curl_global_init is not thread-safe. */
	if (!g_curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return ERR_INVAL;
		g_curl_ready = true;
	}
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	h->stop = stop;
	if (tls) {
		h->cafile = dup_or_null(tls->cafile);
		h->certfile = dup_or_null(tls->certfile);
		h->keyfile = dup_or_null(tls->keyfile);
	}
	h->curl = curl_easy_init();
	h->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (!h->curl || !h->hdrs) {
		http_free(h);
		return -ENOMEM;
	}
	*out = h;
	return 0;
}

void http_free(http_t *h)
{
	if (!h)
		return;
	if (h->multi)
		http_multi_remove(h->multi, h);
	if (h->curl)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->hdrs);
	free(h->token_hdr);
	free(h->cafile);
	free(h->certfile);
	free(h->keyfile);
	free(h);
}

static int set_auth(http_t *h, const char *scheme, const char *token)
{
	struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
	char *th = NULL;

	if (!l)
		return -ENOMEM;
	if (token) {
		size_t n = strlen(scheme) + strlen(token) + sizeof("Authorization: ");
		struct curl_slist *l2;

		if (!(th = malloc(n))) {
			curl_slist_free_all(l);
			return -ENOMEM;
		}
		snprintf(th, n, "Authorization: %s%s", scheme, token);
		if (!(l2 = curl_slist_append(l, th))) {
			free(th);
			curl_slist_free_all(l);
			return -ENOMEM;
		}
		l = l2;
	}
	curl_slist_free_all(h->hdrs);
	free(h->token_hdr);
	h->hdrs = l;
	h->token_hdr = th;
	return 0;
}

int http_set_token(http_t *h, const char *token)
{
	return set_auth(h, "", token);
}

int http_set_bearer(http_t *h, const char *token)
{
	return set_auth(h, "Bearer ", token);
}

void http_resp_clear(http_resp_t *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

static bool sink_grow(sink_t *s, size_t add)
{
	if (s->len + add + 1 > s->max) {
		s->too_big = true;
		return false;
	}
	if (s->len + add + 1 <= s->cap)
		return true;
	size_t cap = s->cap ? s->cap : 4096;
	while (cap < s->len + add + 1)
		cap *= 2;
	char *nb = realloc(s->buf, cap);
	if (!nb)
		return false;
	s->buf = nb;
	s->cap = cap;
	return true;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	sink_t *s = arg;
	size_t len = size * n;

	if (!sink_grow(s, len))
		return 0; /* curl: write error, the transfer ends */
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->buf[s->len] = 0;
	return len;
}

/* Split what arrived into lines; keep the unfinished tail for the next chunk. */
static size_t on_stream(char *data, size_t size, size_t n, void *arg)
{
	sink_t *s = arg;
	size_t len = size * n, start = 0;

	if (on_body(data, size, n, s) != len)
		return 0;
	for (size_t i = 0; i < s->len; i++) {
		if (s->buf[i] != '\n')
			continue;
		size_t l = i - start;
		if (l > 0 && s->buf[start + l - 1] == '\r')
			l--;
		if (l > 0 && (s->cb_ret = s->line(s->ctx, s->buf + start, l)) != 0)
			return 0;
		start = i + 1;
	}
	memmove(s->buf, s->buf + start, s->len - start);
	s->len -= start;
	s->unflushed = s->unflushed || start > 0;
	return len;
}

/*
 * The flush (the watcher's commit point) is called from the progress callback,
 * which curl calls once per pass over the socket, not from the write callback,
 * which curl calls once per HTTP chunk: etcd's gateway sends every watch
 * message as its own chunk, so a flush per chunk made one store commit (and
 * fsync) per event and, at 500 puts/s, a queue of 300 ms. A pass reads all that
 * has arrived, so a burst is one batch and a lone event is flushed at once.
 */
static int on_stream_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	sink_t *s = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	if (s->h->stop && *s->h->stop)
		return 1;
	if (s->unflushed && s->flush) {
		s->unflushed = false;
		if ((s->cb_ret = s->flush(s->ctx)) != 0)
			return 1;
	}
	return 0;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	http_t *h = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return h->stop && *h->stop ? 1 : 0;
}

static void setup(http_t *h, const char *url, const char *body, size_t len, long connect_ms)
{
	CURL *c = h->curl;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->hdrs);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 10L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 5L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	if (h->cafile)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->cafile);
	if (h->certfile)
		curl_easy_setopt(c, CURLOPT_SSLCERT, h->certfile);
	if (h->keyfile)
		curl_easy_setopt(c, CURLOPT_SSLKEY, h->keyfile);
}

static int curl_err(http_t *h, CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return ERR_TIMEOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		return -EINTR;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return h->stop && *h->stop ? -EINTR : ERR_UPSTREAM;
	}
}

int http_get(http_t *h, const char *url, long timeout_ms, http_resp_t *out)
{
	return http_post(h, url, NULL, 0, timeout_ms, out);
}

int http_post(http_t *h, const char *url, const char *body, size_t len, long timeout_ms,
	      http_resp_t *out)
{
	sink_t s = {.max = HTTP_BODY_MAX};
	long status = 0;
	int ret;

	setup(h, url, body, len, timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
	ret = curl_err(h, curl_easy_perform(h->curl));
	if (ret == 0 && s.too_big)
		ret = ERR_TOOBIG;
	if (ret == 0 && !s.buf && !(s.buf = calloc(1, 1)))
		ret = -ENOMEM;
	if (ret < 0) {
		free(s.buf);
		return ret;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	out->status = status;
	out->body = s.buf;
	out->len = s.len;
	return 0;
}

int http_stream(http_t *h, const char *url, const char *body, size_t len, long connect_ms,
		long idle_ms, http_line_fn fn, http_flush_fn flush, void *ctx, long *status)
{
	sink_t s = {.max = HTTP_LINE_MAX, .line = fn, .flush = flush, .ctx = ctx, .h = h};
	int ret;

	setup(h, url, body, len, connect_ms);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_stream_progress);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, &s);
	/* Idle = below 1 byte/s for idle_ms: a silent peer, not a slow one. */
	if (idle_ms > 0) {
		curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, (idle_ms + 999) / 1000);
	}
	ret = curl_err(h, curl_easy_perform(h->curl));
	/* The stream ended: what arrived last is a batch too. */
	if (s.unflushed && s.flush && s.cb_ret == 0 && !(h->stop && *h->stop))
		s.cb_ret = s.flush(s.ctx);
	*status = 0;
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status);
	if (s.cb_ret != 0)
		ret = s.cb_ret;
	else if (s.too_big)
		ret = ERR_TOOBIG;
	free(s.buf);
	return ret;
}

/* ---- several streams on one thread (curl multi) ---- */

int http_multi_new(http_multi_t **out, volatile sig_atomic_t *stop)
{
	http_multi_t *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	if (!(m->m = curl_multi_init())) {
		free(m);
		return -ENOMEM;
	}
	m->stop = stop;
	*out = m;
	return 0;
}

void http_multi_free(http_multi_t *m)
{
	if (!m)
		return;
	curl_multi_cleanup(m->m);
	free(m);
}

int http_multi_add(http_multi_t *m, http_t *h, const char *url, long connect_ms, long idle_ms,
		   http_line_fn fn, http_flush_fn flush, void *ctx)
{
	if (h->multi)
		return -EBUSY;
	h->msink = (sink_t){.max = HTTP_LINE_MAX, .line = fn, .flush = flush, .ctx = ctx, .h = h};
	setup(h, url, NULL, 0, connect_ms);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &h->msink);
	/* The flush comes from the progress callback, once per pass (see on_stream_progress). */
	curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_stream_progress);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, &h->msink);
	curl_easy_setopt(h->curl, CURLOPT_PRIVATE, h);
	if (idle_ms > 0) {
		curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, (idle_ms + 999) / 1000);
	}
	if (curl_multi_add_handle(m->m, h->curl) != CURLM_OK)
		return -ENOMEM;
	h->multi = m;
	return 0;
}

void http_multi_remove(http_multi_t *m, http_t *h)
{
	if (!h || h->multi != m)
		return;
	curl_multi_remove_handle(m->m, h->curl);
	free(h->msink.buf);
	h->msink.buf = NULL;
	h->msink.len = h->msink.cap = 0;
	h->multi = NULL;
}

/* The result of a finished transfer, as http_stream would return it. */
static int multi_result(http_t *h, CURLcode rc)
{
	int ret = curl_err(h, rc);

	/* Lines of the last pass that no progress call flushed yet (as http_stream does). */
	if (h->msink.unflushed && h->msink.flush && h->msink.cb_ret == 0 && !(h->stop && *h->stop))
		h->msink.cb_ret = h->msink.flush(h->msink.ctx);
	h->msink.unflushed = false;
	if (h->msink.cb_ret != 0)
		ret = h->msink.cb_ret;
	else if (h->msink.too_big)
		ret = ERR_TOOBIG;
	return ret;
}

int http_multi_wait(http_multi_t *m, long timeout_ms, http_t **done, long *status)
{
	uint64_t waited = 0;

	*done = NULL;
	for (;;) {
		CURLMsg *msg;
		int running = 0, left = 0;

		if (m->stop && *m->stop)
			return -EINTR;
		if (curl_multi_perform(m->m, &running) != CURLM_OK)
			return ERR_UPSTREAM;
		while ((msg = curl_multi_info_read(m->m, &left))) {
			http_t *h = NULL;
			int ret;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
			ret = multi_result(h, msg->data.result);
			*status = 0;
			curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status);
			http_multi_remove(m, h);
			*done = h;
			return ret;
		}
		if (running == 0 && timeout_ms < 0)
			return -ENOENT;
		if (timeout_ms >= 0 && waited >= (uint64_t)timeout_ms)
			return ERR_TIMEOUT;
		/* Bounded wait: the stop flag is looked at at least every 200 ms. */
		long step = timeout_ms >= 0 && (uint64_t)timeout_ms - waited < 200
				? (long)((uint64_t)timeout_ms - waited)
				: 200;
		if (running == 0) {
			struct timespec ts = {0, step * 1000000L};
			nanosleep(&ts, NULL);
		} else if (curl_multi_poll(m->m, NULL, 0, (int)step, NULL) != CURLM_OK) {
			return ERR_UPSTREAM;
		}
		waited += (uint64_t)step;
	}
}
