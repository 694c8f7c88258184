/*
 * store_internal: the handle layouts and helpers shared by the store/ sources (and
 * white-box unit tests). Not part of the public API; nothing outside
 * store/ and tests/ may include it. Same threading rules as store.h.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "store/store.h"

/* 2: meta holds the NS owner index and wildcard count (store/shape.c), which every
 * writer must keep; a binary that knows only 1 refuses the store instead of letting the
 * index drift (a missed delegation would be answered as authoritative data). */
#define STORE_SCHEMA_VERSION 2u
#define STORE_RRSET_HDR 4     /* mode, flags, count (u16 BE) */
#define STORE_ENTRY_HDR 7     /* source id, ttl (u32 BE), rdlength (u16 BE) */
#define STORE_RRSET_MAX 65535 /* a value larger than this is ERR_TOOBIG */
#define STORE_KEY_EXTRA 3     /* 0x00 || type (u16 BE) after the name key */
#define STORE_HEALTH_HDR 9    /* status (u8), changed-at (u64 BE) */
/* The commit log (issue 16): meta "clog" || generation (u64 BE) -> flags (u8) then the
 * name keys whose rrsets that commit changed, each as length (u8) || key. Kept for the
 * last STORE_CLOG_KEEP generations; a reader further behind drops its whole cache. */
#define STORE_CLOG_KEEP 1024u
#define STORE_CLOG_BYTES 2048u /* names logged per commit; more: STORE_CLOG_ALL */
#define STORE_CLOG_ALL 1u      /* flags: too many names to list, everything may have changed */

struct store {
	MDB_env *env;
	MDB_dbi rrsets, bysrc, health, meta;
	unsigned flags; /* STORE_F_* */
	/* The remap gate (gate.c, scheme in store.h). */
	pthread_mutex_t gate_lock;	  /* held for a whole remap; guards `handles` */
	struct store_rtxn *handles;	  /* every read handle (not views), under gate_lock */
	atomic_bool remapping;		  /* a remap waits for quiet or runs: do not enter */
	atomic_int writers;		  /* write txns of this process between begin and end */
	atomic_uint_fast64_t remap_after; /* monotonic ms: no remap tried before (back-off) */
	atomic_bool grow;		  /* a write hit MDB_MAP_FULL: try a larger map first */
	atomic_int dead;		  /* ERR_STORE once a remap lost the map, else 0 */
	atomic_uint epoch;	      /* bumped by every remap: pointers into the map are stale */
	atomic_uint_fast64_t resizes; /* remaps that changed the map size */
	atomic_size_t map_bytes;      /* bytes mapped now */
};

struct store_lookup_cache; /* read.c */

struct store_rtxn {
	store_t *s;
	struct store_lookup_cache *cache; /* exact-hit memo, NULL unless enabled */
	MDB_txn *txn;
	MDB_cursor *cur;  /* on rrsets; renewed together with txn */
	uint64_t gen;	  /* meta generation of this snapshot */
	size_t nhealth;	  /* health entries in this snapshot */
	size_t nrrsets;	  /* rrsets in this snapshot (sizes the lookup cache) */
	size_t loaded_id; /* mdb_txn_id whose gen and nhealth are cached above */
	bool view;	  /* wraps a write txn: not ours to reset/renew/end */
	bool live;	  /* holds a snapshot (not reset); then busy is 1 */
	atomic_int busy;  /* 1 while the handle may touch the map (gate.c) */
	unsigned epoch;	  /* store epoch the loaded facts and cache belong to */
	/* NS owners and wildcards of this snapshot (shape.c); nnsown -1: too many or unknown. */
	int nnsown;
	bool wild;
	store_key_t nsown[STORE_NSOWN_MAX];
	uint8_t nsbuf[STORE_NSOWN_MAX * 32];
	struct store_rtxn *next, *prev; /* in store->handles */
};

struct store_wtxn {
	store_t *s;
	MDB_txn *txn;
	struct store_rtxn view;
	/* Names this txn changed, for the commit log (write.c); clog_all once they overflow. */
	bool clog_all;
	size_t cloglen;
	uint8_t clog[STORE_CLOG_BYTES];
};

/** Drop every entry of t's lookup cache; no-op without one. */
void store_cache_drop(store_rtxn_t *t);
/**
 * After t took a snapshot other than the last one its cache was filled from (t->gen
 * loaded): forget the entries of the names the commits since changed, read from the
 * commit log in t's snapshot, or all of them when the log does not reach back. No-op
 * without a cache. @return 0 or ERR_* (then the cache is empty).
 */
int store_cache_sync(store_rtxn_t *t);
/** A renew: replies built before it no longer point into t's cache slots. */
void store_cache_tick(store_rtxn_t *t);
/**
 * Note in w's commit log that the rrset with this key (name key || 0 || type) was put
 * or deleted. Every writer of rrsets calls it, as store_shape_note.
 */
void store_clog_note(store_wtxn_t *w, const uint8_t *rkey, size_t rkeylen);
/** Grow t's empty lookup cache to suit t->nrrsets (up to its cap); keeps it on failure. */
void store_cache_fit(store_rtxn_t *t);
/** Free t's lookup cache; no-op without one. */
void store_cache_free(store_rtxn_t *t);

/* ---- store shape for the query path's shortcuts (shape.c) ---- */

/**
 * Note an rrset created (delta 1) or deleted (-1) in w, by its rrsets key (name
 * key || 0 || type), in the same txn. Every writer of rrsets calls it.
 * @return 0 or ERR_*.
 */
int store_shape_note(store_wtxn_t *w, const uint8_t *rkey, size_t rkeylen, int delta);
/** Build the NS owner index and wildcard count of a store that has none yet. @return 0/ERR_*. */
int store_shape_init(MDB_txn *txn, MDB_dbi rrsets, MDB_dbi meta);
/** Load the snapshot's NS owners and wildcard flag into t. @return 0 or ERR_*. */
int store_shape_load(store_rtxn_t *t);

/* ---- the remap gate (gate.c) ---- */

/** Set up / tear down the gate of a store. @return 0 or -errno. */
int store_gate_init(store_t *s);
void store_gate_deinit(store_t *s);
/** Register a read handle before its first entry; unregister it after its last exit. */
void store_gate_add(store_t *s, store_rtxn_t *t);
void store_gate_del(store_t *s, store_rtxn_t *t);
/**
 * Take a busy count (a handle's `busy`, or the store's `writers`) before touching the
 * map; waits for a running remap. @return 0, -EBUSY (remaps keep coming, or this thread
 * holds another busy handle), ERR_STORE (the map is lost).
 */
int store_gate_enter(store_t *s, atomic_int *busy);
/** Drop the count taken by store_gate_enter, after the last access to the map. */
void store_gate_exit(atomic_int *busy);
/**
 * Re-map to the size the store records now (mdb_env_set_mapsize(env, 0)) once no
 * thread of this process uses the map. `grow`: also when no commit outgrew our map
 * (a write ran out of map); never shrinks below the current size. The caller holds
 * no busy count. @return 0, -EBUSY (not quiet in time), ERR_STORE (map lost).
 */
int store_gate_remap(store_t *s, bool grow);
/** Note that LMDB said MDB_MAP_FULL on this thread (store_mdb_err calls it). */
void store_gate_note_full(void);
/** @return whether MDB_MAP_FULL was noted on this thread since the last call; clears it. */
bool store_gate_take_full(void);

/** Translate an MDB return code to 0 / ERR_* / -errno. */
int store_mdb_err(int rc);

/**
 * Build the rrsets key name key || 0x00 || type from a wire name.
 * @param out at least WIRE_KEY_MAX + STORE_KEY_EXTRA bytes.
 * @return key length, or ERR_INVAL on a bad name.
 */
int store_rrset_key(const uint8_t *name, size_t namelen, uint16_t type, uint8_t *out);

/** Read the u64 meta value `key` (0 when absent). @return 0 or ERR_*. */
int store_meta_get_u64(MDB_txn *txn, MDB_dbi meta, const char *key, uint64_t *out);
