/*
 * etcd: a client of etcd's v3 JSON gateway (etcd 3.4: /v3/kv/range, /v3/watch),
 * over watchers/http. It knows the gateway's encoding (base64 keys, values and
 * range_end; int64s as JSON strings; zero-valued fields omitted), reads a
 * prefix page by page at one revision, and parses the watch stream. The
 * parsers are pure functions of their input (unit-tested, fuzzed).
 * One etcd_t per thread. Endpoints are tried in order; etcd_failover moves on.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "watchers/http.h"

typedef struct etcd etcd_t;

/* One key as a range or a watch event gives it. Pointers borrowed for the callback. */
typedef struct {
	const uint8_t *key;
	size_t klen;
	const uint8_t *val; /* empty for a delete */
	size_t vlen;
	int64_t mod_rev; /* the delete's revision for a delete */
	bool del;
} etcd_kv_t;

/** @return 0 to go on; anything else stops the parse/read and is returned. */
typedef int (*etcd_kv_fn)(void *ctx, const etcd_kv_t *kv);

/* What one watch stream message said besides its events. */
typedef struct {
	bool created;
	bool canceled;
	int64_t compact_rev; /* > 0: the start revision was compacted, re-read */
	int64_t header_rev;  /* 0 when absent (a compaction cancel has none) */
	uint64_t cluster_id; /* header.cluster_id, 0 when absent */
	int64_t last_rev;    /* mod_revision of the last event, 0 without events */
	size_t nevents;
	char error[128]; /* non-empty: a stream error or a cancel reason */
} etcd_watch_msg_t;

/* What one range reply said besides its kvs. */
typedef struct {
	int64_t header_rev;
	uint64_t cluster_id;
	int64_t count;
	bool more;
	size_t nkvs;
	uint8_t *last_key; /* owned (free()), the last kv's key, for the next page */
	size_t last_klen;
} etcd_range_info_t;

/** Standard base64 of src into dst (cap >= 4 * ceil(n / 3) + 1, NUL-terminated). */
size_t etcd_b64_encode(const uint8_t *src, size_t n, char *dst);
/**
 * Decode standard base64 (padding optional). @param dst at least 3 * (n / 4) + 3 bytes.
 * @return decoded length, or ERR_PARSE.
 */
int etcd_b64_decode(const char *src, size_t n, uint8_t *dst, size_t *outlen);
/**
 * range_end of a prefix: the prefix with its last byte below 0xff incremented and
 * the rest cut; "\0" (1 byte) when every byte is 0xff or the prefix is empty.
 * @param out at least n bytes (1 when n = 0). @return its length.
 */
size_t etcd_prefix_end(const uint8_t *prefix, size_t n, uint8_t *out);

/**
 * Parse one range reply body; calls fn for every kv in order.
 * @param info filled on success (and on a callback stop); caller frees info->last_key.
 * @return 0, ERR_PARSE, ERR_UPSTREAM (an {"error":...} reply), or fn's value.
 */
int etcd_parse_range(const char *body, size_t len, etcd_kv_fn fn, void *ctx,
		     etcd_range_info_t *info);
/**
 * Parse one watch stream line ({"result":{...}} or {"error":{...}}); calls fn for
 * every event in order. @return 0, ERR_PARSE, or fn's value.
 */
int etcd_parse_watch(const char *line, size_t len, etcd_kv_fn fn, void *ctx, etcd_watch_msg_t *msg);

/**
 * @param servers comma-separated URLs (borrowed, copied).
 * @param out owned; free with etcd_free.
 * @return 0, ERR_INVAL (no server), -ENOMEM.
 */
int etcd_new(etcd_t **out, const char *servers, const http_tls_t *tls, volatile sig_atomic_t *stop);
void etcd_free(etcd_t *e);
/** The endpoint in use (borrowed, valid until etcd_free). */
const char *etcd_endpoint(const etcd_t *e);
/** Move to the next endpoint. @return true when it wrapped around to the first. */
bool etcd_failover(etcd_t *e);

/** Use etcd username/password auth (both borrowed for the etcd_t's life); NULL = none. */
void etcd_set_auth(etcd_t *e, const char *user, const char *password);
/**
 * Get a fresh token from the current endpoint (/v3/auth/authenticate) for the requests
 * that follow; without credentials, or when the cluster has auth off, send none (etcd
 * answers 401 to any token then, even a good one). Call before each read or watch: a
 * token expires (simple tokens after --auth-token-ttl, 300 s by default).
 * @return 0, ERR_CONFLICT (credentials refused), ERR_UPSTREAM, ERR_TIMEOUT, -EINTR.
 */
int etcd_authenticate(etcd_t *e);

/**
 * Read every key under prefix at one revision, page_size keys per request:
 * the first page fixes the revision, the next ones ask for it (one snapshot).
 * @param rev receives that revision on success.
 * @param cluster_id receives the cluster's id (header.cluster_id) on success.
 * @return 0, ERR_NOTFOUND (the revision was compacted while paging: start over),
 *         ERR_UPSTREAM, ERR_TIMEOUT, ERR_PARSE, -EINTR, or fn's value.
 */
int etcd_range_prefix(etcd_t *e, const uint8_t *prefix, size_t plen, size_t page_size,
		      etcd_kv_fn fn, void *ctx, int64_t *rev, uint64_t *cluster_id);

/* Callbacks of a watch: events one at a time, then the message, then a flush
 * per received chunk (commit point). Each returns 0 to go on. */
typedef struct {
	etcd_kv_fn event;
	int (*message)(void *ctx, const etcd_watch_msg_t *msg);
	int (*flush)(void *ctx);
	void *ctx;
} etcd_watch_cb_t;

/**
 * Watch prefix from start_rev until the stream ends or a callback stops it.
 * @return a callback's value, ERR_UPSTREAM (connect failed, HTTP error, stream ended),
 *         -EINTR, ERR_PARSE.
 */
int etcd_watch(etcd_t *e, const uint8_t *prefix, size_t plen, int64_t start_rev,
	       const etcd_watch_cb_t *cb);

/* ---- leases (skydns-probe) ---- */

/** Grant a lease of ttl_s seconds. @param id receives its id. @return 0, ERR_UPSTREAM, ... */
int etcd_lease_grant(etcd_t *e, int64_t ttl_s, int64_t *id);
/**
 * Renew a lease once. @param ttl_s receives the TTL etcd granted again: 0 when the
 * lease had expired (grant a new one). @return 0, ERR_UPSTREAM, ERR_TIMEOUT, -EINTR.
 */
int etcd_lease_keepalive(etcd_t *e, int64_t id, int64_t *ttl_s);
/** Revoke a lease: its keys go at once. @return 0 or an error. */
int etcd_lease_revoke(etcd_t *e, int64_t id);

/* ---- writes (the API's distributed mode, the probe) ---- */

/* One compare of a txn: the key's mod_revision equals mod (0: the key is absent), or,
 * with end set (a range), every key in [key, end) has a mod_revision below mod. */
typedef struct {
	const uint8_t *key;
	size_t klen;
	const uint8_t *end; /* NULL: a single key */
	size_t elen;
	int64_t mod;
} etcd_cmp_t;

/* One operation of a txn's success branch: a put of val (attached to lease unless
 * it is 0), or a delete of the key. */
typedef struct {
	const uint8_t *key;
	size_t klen;
	const uint8_t *val;
	size_t vlen;
	int64_t lease;
	bool del;
} etcd_op_t;

/**
 * One txn (/v3/kv/txn): if every compare holds, apply every op; else nothing.
 * All borrowed for the call. etcd refuses more ops than its --max-txn-ops (128 by
 * default): callers split larger batches.
 * @param ok receives whether the compares held (and the ops were applied).
 * @param rev receives the header revision (on success, the revision of this txn's write).
 * @return 0, ERR_UPSTREAM, ERR_TIMEOUT, ERR_PARSE, ERR_CONFLICT (etcd refused the txn:
 *         auth, too many ops), -EINTR, -ENOMEM.
 */
int etcd_txn(etcd_t *e, const etcd_cmp_t *cmp, size_t ncmp, const etcd_op_t *ops, size_t nops,
	     bool *ok, int64_t *rev);
