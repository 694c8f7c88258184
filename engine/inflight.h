/*
 * engine/inflight: the questions the workers have upstream now, shared by
 * all of them, so a question one worker asks is not asked again by another
 * (issue 14: "2 workers ask upstream once per name"). Each forwarder still
 * joins identical questions of its own clients itself (engine/forward.c);
 * this registry only says which worker asks a question and which other
 * workers wait for its answer in the shared cache.
 *
 * Threads: any worker thread, concurrently. The table is split into
 * INFLIGHT_SHARDS shards under spinlocks held only for one find/insert or
 * one removal (a scan of INFLIGHT_SLOTS / INFLIGHT_SHARDS slots), never
 * across anything that blocks; inflight_live takes no lock.
 *
 * Ownership: one inflight_t for the process (server_t), made before the
 * workers start and freed after they are joined. A reference returned by
 * inflight_claim as INFLIGHT_OWNER belongs to the claiming worker, which
 * must end it with inflight_done exactly once (answer, failure or its
 * forwarder's teardown); INFLIGHT_JOINED references are only looked at.
 *
 * Invariants: at most one live entry per key (name lowercased, qtype,
 * qclass, DO, CD: the cache's key); a slot's generation changes when its
 * entry ends, so a reference never names a later question; the table is
 * fixed in size (no allocation after inflight_new) and a full shard makes
 * inflight_claim say INFLIGHT_FULL (the caller asks upstream itself, as
 * before this registry). Workers are numbered < INFLIGHT_MAX_WORKERS; the
 * waiters of an entry are a bitmask of them.
 *
 * The owner must insert the answer into the shared cache before
 * inflight_done, so a worker that is woken (or finds its reference dead)
 * and then misses the cache knows the owner got nothing cacheable and asks
 * itself.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INFLIGHT_MAX_WORKERS 64
#define INFLIGHT_SHARDS 64
#define INFLIGHT_SLOTS 4096 /* questions registered at once, all workers */

enum {
	INFLIGHT_OWNER = 0,  /* registered: the caller asks upstream, then inflight_done */
	INFLIGHT_JOINED = 1, /* another worker asks: wait for its wake, then the cache */
	INFLIGHT_FULL = 2,   /* no room (or no registry for this worker): ask yourself */
};

typedef struct {
	const uint8_t *name; /* lowercase wire name */
	size_t len;
	uint16_t qtype, qclass;
	bool do_bit, cd;
	uint32_t hash; /* of all the above, the caller's choice (forward.c's q_hash) */
} inflight_key_t;

typedef struct inflight inflight_t;

/** @return 0 or -ENOMEM. *out is owned (inflight_free). */
int inflight_new(inflight_t **out);

/** Free; NULL is a no-op. No worker may use it any more. */
void inflight_free(inflight_t *r);

/**
 * Register `worker` as the one asking k, or as a waiter of the worker that
 * asks it already. Found an entry of `worker` itself (its forwarder did not
 * join locally, e.g. after a reload): INFLIGHT_FULL.
 * @param ref receives the entry's reference (OWNER and JOINED).
 */
int inflight_claim(inflight_t *r, const inflight_key_t *k, unsigned worker, uint64_t *ref);

/** End an OWNER reference. @return the workers waiting for it (bitmask; not the owner). */
uint64_t inflight_done(inflight_t *r, uint64_t ref);

/** Whether the entry `ref` names is still in flight (no lock; any thread). */
bool inflight_live(const inflight_t *r, uint64_t ref);

/**
 * The file descriptor that wakes worker i (the server's eventfd of that
 * worker), -1 when unset. The registry only keeps the number for the
 * workers: it never does I/O on it.
 */
void inflight_set_wake_fd(inflight_t *r, unsigned worker, int fd);
int inflight_wake_fd(const inflight_t *r, unsigned worker);
