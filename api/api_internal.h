/*
 * api internals shared by api.c (server, routing, auth), records.c
 * (/skydns/api), status.c (/skydns/status) and stats.c (stats, metrics).
 * Handlers run on civetweb's threads; each opens its own store txns and
 * ends them before it replies.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"

struct mg_connection;
struct mg_context;
struct json_t;

/* HTTP statuses counted for skydns_api_requests_total; the last slot counts any other. */
#define API_CODES_LIST 200, 201, 400, 401, 404, 405, 409, 413, 500, 503
#define API_NCODES 11

struct api {
	struct mg_context *ctx;
	const struct conf *conf; /* borrowed from main; outlives the api */
	struct store *store;	 /* borrowed from main */
	api_hooks_t hooks;
	int pemfd;   /* memfd joining TLS cert + key, or -1 */
	char *token; /* owned copy; NULL = no auth */
	_Atomic bool draining;
	_Atomic unsigned long long replies[API_NCODES]; /* by status, see api_code_slot() */
};

/* Index into api->replies for an HTTP status. */
unsigned api_code_slot(int status);
/* The status counted in slot i, or 0 for the "other" slot. */
int api_code_of_slot(unsigned i);

/* Reply with a JSON document; steals `doc` (NULL sends {"error":"out of memory"}). */
int api_reply_json(struct mg_connection *c, int status, struct json_t *doc);
/* Reply {"error": msg} with `status`. */
int api_reply_error(struct mg_connection *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reply with a plain text body (Prometheus). */
int api_reply_text(struct mg_connection *c, int status, const char *ctype, const char *body,
		   size_t len);
/* Map a project error code to an HTTP status and reply. */
int api_reply_err_code(struct mg_connection *c, int code, const char *what);

/**
 * Read the request body into an owned buffer (free()). NUL-terminated.
 * @return 0, API_JSON_TOOBIG (over API_BODY_MAX), -ENOMEM, -EIO.
 */
int api_read_body(struct mg_connection *c, char **out, size_t *len);

/* Route handlers; `rest` is the path after the route prefix (URL-decoded). */
int api_records_handle(api_t *api, struct mg_connection *c, const char *method, const char *rest);
int api_status_handle(api_t *api, struct mg_connection *c, const char *method, const char *rest);
int api_stats_handle(api_t *api, struct mg_connection *c, const char *rest);
int api_metrics_handle(api_t *api, struct mg_connection *c);
int api_top_handle(api_t *api, struct mg_connection *c, const char *method, const char *rest);
