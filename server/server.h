/*
 * server: the DNS serving side of the skydns daemon: one worker thread per
 * CPU, each with its own io_uring, its own SO_REUSEPORT UDP socket and TCP
 * listener, and its own store read txn. Workers never block and never take
 * a lock; main() owns the server_t and is the only caller of these
 * functions.
 */
#pragma once

#include <stddef.h>

#include "engine/cache.h"
#include "engine/query.h"
#include "engine/topn.h"

struct conf;
struct store;

typedef struct server server_t;

/**
 * Workers when the config says 0: one per CPU this process may run on (its affinity at
 * start: taskset, systemd's CPUAffinity=, a cpuset), not per CPU of the machine. Worker i
 * is pinned to the i-th of those CPUs.
 */
unsigned server_default_workers(void);

/**
 * Bind every worker's sockets and start the worker threads.
 * @param conf  borrowed; must outlive the server or be replaced with
 *              server_reload() before it is freed.
 * @param store borrowed; must outlive the server.
 * @param out   owned; free with server_stop().
 * @return 0, -errno (bind failed: address in use, permission), ERR_*.
 */
int server_start(server_t **out, const struct conf *conf, struct store *store);

/**
 * server_start() on sockets a running skydns handed over (-takeover): fds
 * holds nfds descriptors, a UDP socket then a TCP listener per worker (TCP
 * may be -1), bound to conf's dns address; worker i serves pair i, workers
 * beyond them open new sockets that join the group. No one-instance check.
 * @param fds steals every descriptor (closed on failure too).
 * @return as server_start(); ERR_INVAL when a socket is not of conf's address.
 */
int server_start_with(server_t **out, const struct conf *conf, struct store *store, const int *fds,
		      unsigned nfds);

/**
 * The live workers' listening sockets in server_start_with()'s order, for a
 * takeover. @param fds borrowed: valid until server_stop().
 * @return descriptors written (two per live worker, at most cap).
 */
unsigned server_listeners(const server_t *srv, int *fds, unsigned cap);

/**
 * Takeover: every worker stops taking queries and connections from its
 * listening sockets (another process serves them now) and finishes what it
 * has in flight: open TCP connections, forwarded questions. Returns at once.
 */
void server_release(server_t *srv);

/**
 * After server_release(): what the workers still owe (TCP connections plus
 * forwarded questions), UINT_MAX-ish until each worker reported once.
 */
unsigned server_busy(server_t *srv);

/**
 * Hand the workers a new config (SIGHUP). Only settings that do not need
 * new sockets take effect (domains, selection mode, EDNS size, timeouts);
 * the caller keeps the old conf alive until this returns: workers switch at
 * their next batch and the call waits for all of them.
 */
int server_reload(server_t *srv, const struct conf *conf);

/**
 * Look for workers whose ring failed while serving (they closed their
 * sockets and left); log each once, loudly. main calls it on every wakeup.
 * Reloads skip dead workers.
 * @return how many workers are dead.
 */
unsigned server_check(server_t *srv);

/** SIGUSR1: the query log reopens its file at its next round. */
void server_querylog_reopen(server_t *srv);

/** Stop every worker, close sockets, free. NULL is a no-op. */
void server_stop(server_t *srv);

/** Sum of every worker's counters, readable while serving. */
void server_stats(server_t *srv, stats_t *out);

/** Number of worker threads running. */
unsigned server_workers(const server_t *srv);

/**
 * The most-asked names over all workers, highest count first, merged from
 * the snapshots each worker publishes on its timer tick (so up to a second
 * old). Never waits for a worker. Any thread, while the server runs.
 * @param out receives at most n entries (lowercased wire names).
 * @return entries written, -ENOMEM, ERR_TIMEOUT (a snapshot kept tearing).
 */
int server_top_names(server_t *srv, topn_entry_t *out, size_t n);

/* One cached forwarded answer of a name, and the worker that holds it. */
typedef struct {
	cache_name_entry_t e;
	unsigned worker;
} server_cache_entry_t;

/*
 * Cache control (GET|DELETE /skydns/domain/<name>, /skydns/master): each
 * worker owns its cache, so the request is posted to every worker's
 * mailbox (worker_t.ctl_*), served in the worker's loop, and waited for
 * here for at most a second. Any thread but a worker's (the API's);
 * callers take turns. Each returns the number of workers that answered
 * (fewer than server_workers() when one is stuck or dead).
 */
/** The cached answers of `name` (wire) into out[0..cap); *n = how many there are. */
unsigned server_cache_show(server_t *srv, const uint8_t *name, size_t len,
			   server_cache_entry_t *out, size_t cap, size_t *n);
/** Drop the cached answers of `name`; *flushed = entries dropped. */
unsigned server_cache_flush(server_t *srv, const uint8_t *name, size_t len, size_t *flushed);
/** Cap the TTLs of answers cached from now on at `ttl` s (0 = [Dns] max-ttl), until changed. */
unsigned server_cache_set_ttl(server_t *srv, uint32_t ttl);
/** The cap last set by server_cache_set_ttl(), 0 = none (max-ttl applies). */
uint32_t server_cache_ttl(server_t *srv);

struct upstream_report;

/**
 * Per-upstream counters summed over the workers (any thread; never waits).
 * @param out,cap where to write, one entry per server address.
 * @return entries written.
 */
size_t server_upstreams(server_t *srv, struct upstream_report *out, size_t cap);
