/*
 * api internals shared by api.c (server, routing, auth), records.c
 * (/skydns/api), status.c (/skydns/status) and stats.c (stats, metrics).
 * Handlers run on civetweb's threads; each opens its own store txns and
 * ends them before it replies.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"

struct mg_connection;
struct mg_context;
struct json_t;
struct store_rtxn;

/* HTTP statuses counted for skydns_api_requests_total; the last slot counts any other. */
#define API_CODES_LIST 200, 201, 400, 401, 403, 404, 405, 408, 409, 413, 415, 421, 500, 503
#define API_NCODES 15

/* Who sent a request (api/tokens.c): the admin changes every API record, a user only the
 * names it owns. The single api-token, a tokenless loopback API and the user named
 * API_ADMIN_USER in api-tokens-file are the admin. */
#define API_USER_MAX 64
#define API_ADMIN_USER "admin"
typedef struct {
	char user[API_USER_MAX]; /* API_ADMIN_USER for the admin */
	bool admin;
} api_who_t;

struct api_tokens; /* tokens.c */

struct api {
	struct mg_context *ctx;
	const struct conf *conf; /* borrowed from main; outlives the api */
	struct store *store;	 /* borrowed from main */
	api_hooks_t hooks;
	int pemfd;   /* memfd joining TLS cert + key, or -1 */
	char *token; /* owned copy; NULL = no auth */
	/* api-tokens-file's table (owned), swapped by api_reload_tokens under tokens_lock;
	 * NULL = no file. */
	pthread_mutex_t tokens_lock;
	struct api_tokens *tokens;
	_Atomic bool draining;
	char **hosts; /* owned: Host values a tokenless API accepts (guard.c) */
	size_t nhosts;
	_Atomic unsigned long long replies[API_NCODES]; /* by status, see api_code_slot() */
	/* /skydns/stats/live counts the store's names (a walk of the whole store) at most
	 * once per API_LIVE_NAMES_MS, by whichever request wins names_at; others reuse it. */
	_Atomic int64_t names_at;   /* monotonic ms of the last count, 0 = never */
	_Atomic long names;	    /* that count */
	_Atomic uint64_t names_gen; /* the generation it was counted at */
};

/* Constant time in the length of `want`: no early exit on a mismatch. */
bool api_token_equal(const char *want, const char *got, size_t gotlen);
/**
 * Read an api-tokens-file. Errors are logged as "PATH:LINE: message".
 * @param out receives an owned table (api_tokens_free). @return 0, ERR_CONFIG, -errno.
 */
int api_tokens_load(const char *path, struct api_tokens **out);
void api_tokens_free(struct api_tokens *t);
/** The user whose token is tok[0..len): fills *who. @return whether one matched. */
bool api_tokens_match(api_t *api, const char *tok, size_t len, api_who_t *who);
/** A user name as the tokens file and ?user= take it: [A-Za-z0-9._@-], < API_USER_MAX. */
bool api_user_valid(const char *u, size_t len);

/* Index into api->replies for an HTTP status. */
unsigned api_code_slot(int status);
/* The status counted in slot i, or 0 for the "other" slot. */
int api_code_of_slot(unsigned i);

/* Reply with a JSON document; steals `doc` (NULL sends {"error":"out of memory"}). */
int api_reply_json(struct mg_connection *c, int status, struct json_t *doc);
/* Reply {"error": msg} with `status`. */
int api_reply_error(struct mg_connection *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Format a refused write's message into msg (cap bytes) and return code: the error path
 * of the write planners (records.c, dist.c), whose reply names the message later. */
int api_refuse(char *msg, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reply with a plain text body (Prometheus). */
int api_reply_text(struct mg_connection *c, int status, const char *ctype, const char *body,
		   size_t len);
/* api_reply_text with extra header lines (each ending in CRLF; borrowed, may be NULL). */
int api_reply_headers(struct mg_connection *c, int status, const char *ctype, const char *extra,
		      const char *body, size_t len);
/* Send the status line and headers of a reply whose body follows in mg_write()s of any
 * size and ends with the connection (streamed lists); counted like every reply. */
void api_reply_stream_start(struct mg_connection *c, int status, const char *ctype);
/* Map a project error code to an HTTP status and reply. */
int api_reply_err_code(struct mg_connection *c, int code, const char *what);

/**
 * Read the request body into an owned buffer (free()). NUL-terminated.
 * @return 0, API_JSON_TOOBIG (over API_BODY_MAX), -ETIMEDOUT (the whole body
 *         took longer than a few seconds), -ENOMEM, -EIO.
 */
int api_read_body(struct mg_connection *c, char **out, size_t *len);

/**
 * Build the Host list of a tokenless API: its own address, localhost, the
 * loopback literals and conf->api_hostnames, each with the API's port.
 * @return 0, ERR_CONFIG, -ENOMEM (api_guard_free() cleans up either way).
 */
int api_guard_init(api_t *api, const struct conf *conf);
void api_guard_free(api_t *api);
/**
 * Refuse what a browser page could forge: a foreign Host (421), a foreign
 * Origin (403), a body that is not application/json (415).
 * @return 0 to go on, or the status already replied.
 */
int api_guard_check(api_t *api, struct mg_connection *c);

/* Route handlers; `rest` is the path after the route prefix (URL-decoded). */
int api_records_handle(api_t *api, struct mg_connection *c, const api_who_t *who,
		       const char *method, const char *rest);
int api_status_handle(api_t *api, struct mg_connection *c, const char *method, const char *rest);
int api_stats_handle(api_t *api, struct mg_connection *c, const char *rest);
int api_metrics_handle(api_t *api, struct mg_connection *c);
int api_top_handle(api_t *api, struct mg_connection *c, const char *method, const char *rest);
/* GET /skydns/stats/live (live.c): the status page's one data source. */
int api_live_handle(api_t *api, struct mg_connection *c);
/* GET /skydns/lookup/<name>?type=T (lookup.c): what skydns answers, with record sources. */
int api_lookup_handle(api_t *api, struct mg_connection *c, const char *rest);
/* GET /skydns/stats/<name>, /skydns/domain/<name>, /skydns/domainL1/<name>, /skydns/master
 * (control.c): the original's control routes. */
int api_control_handle(api_t *api, struct mg_connection *c, const char *method, const char *p);
/* A name as a request gives it (lookup.c): completed like the records API when it is local,
 * else taken as absolute. @return 0 (name, *len, canonical text) or ERR_INVAL. */
int api_lookup_name(const struct conf *conf, const char *text, uint8_t *name, size_t *len,
		    char *canon, size_t cap);
/* GET / and /ui (ui.c): the status page, compiled in. @return 0 when `uri` is not its. */
int api_ui_handle(api_t *api, struct mg_connection *c, const char *method, const char *uri);

/* Count the names holding records in a snapshot (a walk of the whole store). @return >= 0. */
long api_count_names(struct store_rtxn *t);
/* Text of rcode 0..15 ("NOERROR", ...). */
const char *api_rcode_name(unsigned rcode);
