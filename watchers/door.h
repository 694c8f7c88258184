/*
 * door: the etcd watcher's local txn service for the admin API in distributed
 * mode. The API (api/dist.c) must not use libcurl, and the watcher already
 * owns the etcd connection (members, TLS, auth), so the API hands each write
 * to the watcher over a Unix stream socket, DOOR_SOCK_NAME in data-dir:
 *   request  {"cmp":[{"key":K,"mod":N} | {"key":K,"end":E,"mod":N}],
 *             "ops":[{"put":K,"value":V} | {"del":K}]}        (keys as text)
 *   reply    {"ok":true|false,"rev":R} | {"error":"..."}
 * or a re-read of one name (POST /skydns/domainL1/<name>):
 *   request  {"reread": "<etcd key of the name>"}
 *   reply    {"ok":true,"rev":R,"storedRev":S,"keys":N,"changed":C,"dropped":D}
 * which reads the keys at and below the name from etcd and writes them into the
 * store itself (watchers/sync.h sync_reread_name, a sync_t of the door's own, on
 * the watcher's store_t: LMDB serializes its write txn with the watch's).
 * one request per connection (the client shuts its write side down after the
 * request). A compare {"key","mod"} holds when the key's mod_revision is N
 * (0: absent); with "end" every key in [key, end) must have a mod_revision
 * below N. The door runs one etcd txn per request, failing over between the
 * members, and replies; it does not wait for the watch (the API waits for the
 * store's applied revision, so the reply also proves this node applied it).
 * One thread of its own, with its own etcd_t; requests are served one at a time.
 */
#pragma once

#include <signal.h>

#include "watchers/http.h"

#define DOOR_SOCK_NAME "etcd-api.sock"
#define DOOR_REQ_MAX (1024 * 1024) /* bytes of one request */

struct conf;
struct store;
typedef struct door door_t;

/**
 * Bind data-dir/DOOR_SOCK_NAME (a stale socket file is replaced) and start the thread.
 * @param conf, store, tls, stop borrowed for the door's life; stop ends the thread.
 *        store NULL: re-reads are refused.
 * @param out owned; door_stop frees it.
 * @return 0, ERR_TOOBIG (path too long for a socket), -errno.
 */
int door_start(door_t **out, const struct conf *conf, struct store *store, const http_tls_t *tls,
	       volatile sig_atomic_t *stop);
/** Wait for the thread (the stop flag must be set), remove the socket, free. NULL: no-op. */
void door_stop(door_t *d);
