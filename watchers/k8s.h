/*
 * k8s: a Kubernetes API client for list and watch (GET, JSON, the bearer
 * token k8sauth re-reads when its file changes, sent with every request so a
 * rotated service-account token is picked up). Lists are paginated (limit/continue) and handed to
 * the caller item by item, one page in memory at a time; watches are line streams of events run on
 * an http_multi_t so several run on one thread. resourceVersions are opaque strings. One thread.
 */
#pragma once

#include <signal.h>
#include <stddef.h>

#include "watchers/http.h"

typedef struct json_t json_t;
typedef struct k8s k8s_t;
struct k8s_auth;

/* Not an error: the resourceVersion is too old (HTTP 410 or an in-stream ERROR
 * with a 410 Status); the caller lists again. */
#define K8S_GONE 1

/**
 * @param auth borrowed for the client's life (watchers/k8sauth.h: server, TLS files,
 *             the token it re-reads when its file changes).
 * @param stop borrowed. @param out owned (k8s_free).
 */
int k8s_new(k8s_t **out, struct k8s_auth *auth, volatile sig_atomic_t *stop);
/** NULL is a no-op; watches must have ended first. */
void k8s_free(k8s_t *k);
const char *k8s_server(const k8s_t *k);

/** Called per list item or watch event object; obj borrowed for the call.
 * Return 0 to go on, anything else stops (and is returned). */
typedef int (*k8s_item_fn)(void *ctx, const json_t *obj);

/**
 * GET path (e.g. "/api/v1/services") in pages of `limit`, fn per item.
 * @param rv receives the list's resourceVersion (the first page's snapshot).
 * @return 0, K8S_GONE (a continue token expired: list again), ERR_UPSTREAM
 *         (connection failed, non-200 status, a body that is no list), ERR_TIMEOUT,
 *         -EINTR, -ENOMEM, or fn's value.
 */
int k8s_list(k8s_t *k, const char *path, size_t limit, k8s_item_fn fn, void *ctx, char *rv,
	     size_t rvcap);

typedef struct {
	/* type: ADDED, MODIFIED, DELETED, BOOKMARK; obj borrowed for the call */
	int (*event)(void *ctx, const char *type, const json_t *obj);
	int (*flush)(void *ctx); /* after each received chunk; may be NULL */
	void *ctx;
} k8s_watch_cb_t;

/* One watch stream; embedded by the caller, started on a multi. */
typedef struct {
	http_t *http;
	k8s_watch_cb_t cb;
	int err; /* why the stream ended early (K8S_GONE, ERR_UPSTREAM) */
	char url[2048];
} k8s_watch_t;

/** @return 0 or -ENOMEM. */
int k8s_watch_init(k8s_t *k, k8s_watch_t *w);
void k8s_watch_deinit(k8s_watch_t *w);
/**
 * Start watching path from resourceVersion rv with bookmarks on m.
 * @param cb borrowed until the stream ends. @return 0 or an error.
 */
int k8s_watch_start(k8s_t *k, k8s_watch_t *w, http_multi_t *m, const char *path, const char *rv,
		    const k8s_watch_cb_t *cb);
/**
 * The watch's end, from http_multi_wait's result and status.
 * @return 0 (EOF: watch again from the last resourceVersion), K8S_GONE, or an error.
 */
int k8s_watch_result(k8s_watch_t *w, int ret, long status);
