/*
 * server/querylog: the optional query log ([Log] query-log, off by default).
 *
 * A worker never writes the file: querylog_note() copies a few fields of a
 * reply (client, transport, question, rcode) into that worker's
 * single-producer ring and returns; when the ring is full the record is
 * dropped and counted. One writer thread (not a worker) drains every ring
 * each QUERYLOG_FLUSH_MS, formats logfmt lines and writes them in large
 * writes; it alone owns the file, reopens it on querylog_reopen() (SIGUSR1)
 * and when logrotate renamed it, and reports drops once a second at most.
 *
 * Threads: querylog_note() from the ring's own worker only; querylog_reopen()
 * from any thread; new/free from main.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;

#define QUERYLOG_RING 4096 /* records per worker (~300 bytes each, allocated only when on) */
#define QUERYLOG_FLUSH_MS 100

typedef struct querylog querylog_t;
typedef struct querylog_ring querylog_ring_t;

/**
 * Open conf's query-log file and start the writer thread for nworkers rings.
 * @param out owned (querylog_free); NULL when query-log is off.
 * @return 0, -errno (the file cannot be opened), -ENOMEM.
 */
int querylog_new(querylog_t **out, const struct conf *conf, unsigned nworkers);

/** Stop the writer after a last drain, close the file. NULL is a no-op. */
void querylog_free(querylog_t *ql);

/** The ring of worker i (borrowed, valid until querylog_free), NULL when ql is NULL. */
querylog_ring_t *querylog_ring(querylog_t *ql, unsigned i);

/**
 * Note one reply (worker thread, never blocks). Every sample-th call of a
 * ring is kept. resp is the reply as sent (its question is read from it).
 * @param tcp transport of the client.
 */
void querylog_note(querylog_ring_t *r, const uint8_t addr[16], unsigned addrlen, bool tcp,
		   const uint8_t *resp, size_t len);

/**
 * Totals since start, for /metrics (any thread; relaxed reads). written: lines
 * in the file; dropped: records a worker's full ring refused; lost: lines whose
 * write() failed. All 0 when ql is NULL.
 */
void querylog_counts(const querylog_t *ql, uint64_t *written, uint64_t *dropped, uint64_t *lost);

/** Reopen the file at its path at the writer's next round (SIGUSR1). Any thread. */
void querylog_reopen(querylog_t *ql);
