/*
 * server/topn: the most-asked names of one worker, in bounded memory
 * (Space-Saving, Metwally et al. 2005), for GET /skydns/stats/top/<N>.
 *
 * A topn_t monitors at most `capacity` names in fixed-size slots allocated
 * by topn_new(); topn_add() never allocates, never locks and costs one hash
 * lookup plus an O(log capacity) heap fix-up. Space-Saving guarantees, for
 * a stream of total length T and the table's minimum count `min`:
 *  - every monitored name has  count - error <= true count <= count;
 *  - error <= min <= T / capacity;
 *  - a name asked more than min times is monitored;
 *  - the counts of a full table sum to T.
 *
 * Threads: the owning worker calls topn_add() and topn_publish(). Other
 * threads read only the published copy, through topn_snapshot(): a seqlock
 * (the generation is odd while the owner copies) lets a reader copy a
 * consistent snapshot without ever making the owner wait; the reader retries
 * a bounded number of times. The owner publishes from its timer tick (at
 * most every second), so a snapshot lags the live table by at most a tick.
 * Published words are accessed with relaxed atomics, so the races the
 * seqlock tolerates are not data races in the C11 sense.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

typedef struct topn topn_t;

/* One monitored name: lowercased wire form, estimated count and its error bound, and when
 * it was first and last counted while monitored (Unix seconds of topn_set_now; a name
 * that took over an evicted slot starts its first time then). */
typedef struct {
	uint64_t count; /* upper bound of the true count */
	uint64_t error; /* count - error is a lower bound */
	uint32_t first_s, last_s;
	uint8_t namelen;
	uint8_t name[WIRE_NAME_MAX];
} topn_entry_t;

#define TOPN_DEFAULT_CAPACITY 256
#define TOPN_MAX_CAPACITY 65535

/**
 * @param capacity names monitored, 1..TOPN_MAX_CAPACITY.
 * @param seed     hash seed (random per worker, against crafted collisions).
 * @param out      receives an owned table; free with topn_free().
 * @return 0, ERR_INVAL, -ENOMEM.
 */
int topn_new(topn_t **out, size_t capacity, uint64_t seed);

/** NULL is a no-op. No thread may use the table any more. */
void topn_free(topn_t *t);

/** Capacity given to topn_new(). */
size_t topn_capacity(const topn_t *t);

/**
 * Count one occurrence of a name (owner thread only).
 * @param name lowercased wire name, 1..WIRE_NAME_MAX bytes (longer is ignored).
 */
void topn_add(topn_t *t, const uint8_t *name, size_t len);

/** The time later adds are stamped with (owner thread; the worker sets it per batch). */
void topn_set_now(topn_t *t, uint32_t now_s);

/* Once the table is full, topn_sample() counts one query in TOPN_SAMPLE. */
#define TOPN_SAMPLE 8

/**
 * Count a name from the query path (owner thread only): exactly, like
 * topn_add(), while fewer than `capacity` names are monitored; after that
 * one query in TOPN_SAMPLE, weighted TOPN_SAMPLE. With many distinct names
 * nearly every query is a Space-Saving eviction, and counting all of them
 * cost ~800 instructions a query (a fifth of the user-space work); sampling
 * keeps heavy hitters' estimates within a few percent of their true counts.
 */
void topn_sample(topn_t *t, const uint8_t *name, size_t len);

/** Copy the live table to the published one if it changed (owner thread only). */
void topn_publish(topn_t *t);

/**
 * Copy the published table (any thread; never blocks the owner).
 * @param out     room for topn_capacity(t) entries, in no particular order.
 * @param min     receives the minimum count of a full table, else 0: the
 *                upper bound of the count of any name not in `out`.
 * @return entries written, or ERR_TIMEOUT when every retry met a publish.
 */
int topn_snapshot(const topn_t *t, topn_entry_t *out, uint64_t *min);

/**
 * Merge per-worker snapshots into global top names (pure).
 * A name missing from a table may still have been counted there up to
 * that table's `min`, which joins its error (and its count upper bound).
 * @param all     every table's entries, concatenated; reordered in place.
 * @param total   number of entries in `all`.
 * @param tables  number of tables; mins[i] is table i's min, and
 *                ends[i] the index in `all` one past table i's entries.
 * @param out     receives at most n entries, highest count first (ties by name);
 *                first_s is the earliest of the tables', last_s the latest.
 * @return entries written.
 */
size_t topn_merge(topn_entry_t *all, size_t total, const size_t *ends, const uint64_t *mins,
		  size_t tables, topn_entry_t *out, size_t n);
