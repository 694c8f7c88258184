/*
 * http: the only libcurl wrapper of skydns's watchers. One http_t owns one
 * easy handle (kept connections, TLS settings) and is used by one thread at
 * a time. Requests are POSTs of JSON (the etcd v3 gateway accepts nothing
 * else) or GETs (the Kubernetes API); a stream request hands its body to a
 * callback line by line as the chunks arrive. No signals: CURLOPT_NOSIGNAL, and a stop flag polled
 * by the transfer instead. CURLcode is translated here, nowhere else.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct http http_t;
typedef struct http_multi http_multi_t;

typedef struct {
	const char *cafile; /* borrowed, NULL = system CAs */
	const char *certfile;
	const char *keyfile;
} http_tls_t;

/**
 * @param tls borrowed for the call (strings copied by libcurl on use); may be NULL.
 * @param stop borrowed, may be NULL: a transfer in progress ends with -EINTR within
 *             about a second of *stop becoming non-zero.
 * @param out  owned; free with http_free.
 * @return 0, -ENOMEM, ERR_INVAL.
 */
int http_new(http_t **out, const http_tls_t *tls, volatile sig_atomic_t *stop);
/** Free; NULL is a no-op. */
void http_free(http_t *h);
/** Send "Authorization: <token>" on later requests (etcd wants the raw token); NULL clears. */
int http_set_token(http_t *h, const char *token);

/** Send "Authorization: Bearer <token>" (the Kubernetes API); NULL clears. */
int http_set_bearer(http_t *h, const char *token);

typedef struct {
	long status; /* HTTP status; 0 when no response */
	char *body;  /* owned, NUL-terminated; free with http_resp_clear */
	size_t len;
} http_resp_t;

/** Free the body of a response; safe on a zeroed or cleared one. */
void http_resp_clear(http_resp_t *r);

/**
 * POST body (JSON) to url and collect the reply (at most 256 MiB).
 * @param timeout_ms whole-request limit.
 * @param out filled on success (any HTTP status); caller clears it.
 * @return 0, ERR_TIMEOUT, ERR_UPSTREAM (connect/transfer failed), -EINTR (stopped), -ENOMEM.
 */
int http_post(http_t *h, const char *url, const char *body, size_t len, long timeout_ms,
	      http_resp_t *out);

/** GET url and collect the reply; as http_post otherwise. */
int http_get(http_t *h, const char *url, long timeout_ms, http_resp_t *out);

/** Called once per complete line (without its '\n'); line borrowed for the call.
 * Return 0 to go on; anything else ends the stream and is returned by http_stream. */
typedef int (*http_line_fn)(void *ctx, const char *line, size_t len);
/** Called after the lines of one pass over the socket (all that had arrived: a point
 * to commit a batch), and when the stream ends with lines not yet flushed. */
typedef int (*http_flush_fn)(void *ctx);

/**
 * POST body to url and feed the reply, as it arrives, to fn line by line; flush
 * (may be NULL) after each pass over the socket. Runs until the server ends
 * the reply, a callback returns non-zero, the stop flag is set, or the
 * connection is idle for idle_ms (0: never; TCP keepalive still finds a dead peer).
 * @param status receives the HTTP status (0 if none) in every case.
 * @return 0 (the server ended the stream), a callback's non-zero value,
 *         ERR_UPSTREAM, ERR_TIMEOUT, ERR_TOOBIG (a line over 64 MiB), -EINTR.
 */
int http_stream(http_t *h, const char *url, const char *body, size_t len, long connect_ms,
		long idle_ms, http_line_fn fn, http_flush_fn flush, void *ctx, long *status);

/*
 * Several GET streams on one thread (the Kubernetes watcher watches Services and
 * EndpointSlices at once without threads). An http_t is in at most one multi at
 * a time, from http_multi_add until http_multi_wait reports it done or
 * http_multi_remove; while in it, it serves no other request.
 */
/** @param stop borrowed, may be NULL. @param out owned (http_multi_free). */
int http_multi_new(http_multi_t **out, volatile sig_atomic_t *stop);
/** Free; every http_t must have been removed or reported done. NULL is a no-op. */
void http_multi_free(http_multi_t *m);
/**
 * Start a GET stream of url on h; fn/flush/ctx as for http_stream, borrowed until
 * the transfer ends. @return 0, -EBUSY (h already in a multi), -ENOMEM.
 */
int http_multi_add(http_multi_t *m, http_t *h, const char *url, long connect_ms, long idle_ms,
		   http_line_fn fn, http_flush_fn flush, void *ctx);
/** Stop h's transfer (no-op when h is not in m). */
void http_multi_remove(http_multi_t *m, http_t *h);
/**
 * Run the transfers until one ends or timeout_ms passes (-1: no limit; it then
 * returns -ENOENT when nothing runs). @param done receives the http_t that ended
 * (removed from m); @param status its HTTP status (0 if none).
 * @return that transfer's result as http_stream returns it; ERR_TIMEOUT (nothing
 * ended), -EINTR (stop flag), -ENOENT, ERR_UPSTREAM.
 */
int http_multi_wait(http_multi_t *m, long timeout_ms, http_t **done, long *status);
