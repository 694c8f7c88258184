/*
 * api/dist: distributed mode. With [Etcd] etcd-servers set, etcd is the
 * source of truth for every node, so the admin API writes etcd keys (the
 * SkyDNS/CoreDNS format the watcher maps) instead of the local store:
 *   - a request is read-modify-write against the node's copy of etcd's keys
 *     (the store's etcd kv namespace, with each key's mod_revision), sent as
 *     ONE etcd txn whose compares make a concurrent change on another node
 *     fail it: create-if-absent (mod_revision 0) for new keys, the known
 *     mod_revision for keys it changes or deletes, and, for requests that
 *     replace or empty a set, "no key under the name changed after the
 *     revision this copy holds". A failed compare waits for this store to
 *     catch up and computes again (at most DIST_TRIES times);
 *   - the txn goes to skydns-watch-etcd over its Unix socket (watchers/door.h),
 *     because api/ must not use libcurl and the watcher owns etcd's members,
 *     TLS and auth;
 *   - the reply waits until this node's store has applied the txn's revision
 *     (read-your-writes on the node that answered), or says 504.
 * Handlers run on civetweb's threads and may block (bounded).
 */
#pragma once

#include <stdbool.h>

#include "api/api_internal.h"
#include "api/api_json.h"
#include "api/api_names.h"

/** True when the API writes etcd (etcd-servers configured). */
bool api_dist_on(const api_t *api);

/**
 * One write request (req parsed, name resolved) in distributed mode; replies.
 * A, AAAA, TXT and the cname alias form are written; other types get 501.
 * @return what civetweb's handler returns.
 */
int api_dist_write(api_t *api, struct mg_connection *c, const api_who_t *who,
		   const api_name_t *name, const api_req_t *req);

/** PUT (st = STORE_HEALTH_*) or DELETE (st = 0) of ip-monitor-path<ip>; replies on failure.
 * @return 0 when written and applied (the caller replies), else the handler's value. */
int api_dist_status(api_t *api, struct mg_connection *c, const api_addr_t *a, int st);

/**
 * POST /skydns/domainL1/<name> in distributed mode: skydns-watch-etcd re-reads the
 * name's etcd keys (its own and those below) into the store (watchers/door.h) and
 * answers when that txn has committed, so the caller's next read sees it.
 * @param res receives {"rev","storedRev","keys","changed","dropped","key"} (owned) on 200.
 * @return the HTTP status: 200, 413 (name too long for a key), 500, 503 (msg says why).
 */
int api_dist_reread(api_t *api, const api_name_t *name, struct json_t **res, char *msg, size_t cap);

/**
 * The reply of a write: what it added and removed (borrowed), then the name as the
 * store holds it now. Shared by records.c (embedded mode) and dist.c.
 */
int api_records_reply(api_t *api, struct mg_connection *c, const api_who_t *who,
		      const api_name_t *n, struct json_t *added, struct json_t *removed,
		      struct json_t *modes, bool deleted, int status);
/** api_records_reply with the members of `extra` (borrowed; NULL: none) added to the reply. */
int api_records_reply_with(api_t *api, struct mg_connection *c, const api_who_t *who,
			   const api_name_t *n, struct json_t *added, struct json_t *removed,
			   struct json_t *modes, bool deleted, int status, struct json_t *extra);
/**
 * POST /skydns/api/<name>?takeover=<what> (api/takeover.c): with what "import", make
 * the zone-import records at the name the API's, owned by `who`, in one write txn.
 * 409 for a name a watcher holds, 404 for an empty name, 501 in distributed mode.
 * @return the HTTP status replied.
 */
int api_takeover(api_t *api, struct mg_connection *c, const api_who_t *who, const api_name_t *n,
		 const char *what);

/**
 * The owner of the name with this key as source `src` holds it (issue 18): the user in
 * the owner namespace `ns` (STORE_OWNER_NS_*), or API_ADMIN_USER when none is noted.
 * @return 1 (owner in out[0..cap)), 0 (src holds no entry at the name), or ERR_*.
 */
int api_owner_of(struct store_rtxn *t, const uint8_t *key, size_t keylen, int src, const char *ns,
		 char *out, size_t cap);
/**
 * May `who` change a name that `owner` owns (from api_owner_of)? A user changes only its
 * own names, the admin every one. @return 0, or ERR_DENIED with the reply's message
 * (naming the owner) in msg[0..cap).
 */
int api_may_change(const api_who_t *who, const char *owner, const char *name, char *msg,
		   size_t cap);
