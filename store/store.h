/*
 * store: the LMDB record store, the single state shared by the server,
 * the admin API, the watchers and the probe. Only store/ includes lmdb.h.
 *
 * Schema (named DBIs in one environment):
 *   rrsets  key = name key (see common/wire.h) || 0x00 || type (u16 BE)
 *           val = rrset header || entries. Header: mode (u8), flags (u8),
 *           count (u16 BE). Entry: source id (u8), ttl (u32 BE),
 *           rdlength (u16 BE), rdata (uncompressed wire, names lowercase
 *           as given). From ttl onward an entry is byte-for-byte what goes
 *           into a packet after owner/type/class, so answers are memcpy.
 *           Several sources may contribute entries to one rrset.
 *   bysrc   key = source id (u8) || name key || 0x00 || type; val empty.
 *           Lets a source find and replace all of its records at once.
 *   health  key = address (4 or 16 bytes); val = status (u8, STORE_HEALTH_*),
 *           changed-at (u64 BE, unix ms), source name (text).
 *   meta    "generation" -> u64 BE, bumped by every committed write txn
 *           (used as SOA serial); "src:<name>" -> source id (u8);
 *           "version" -> schema version.
 *
 * Threads: a store_t is shared by every thread of one process. Each thread
 * uses at most one read txn handle at a time, and keeps it across queries by
 * reset/renew (never hold a read snapshot while idle: it pins pages).
 * Write txns are serialized by LMDB across threads and processes; keep them
 * short. Never carry a store_t across fork(): open it after forking.
 *
 * Consistency: a write txn commits as a whole or not at all; a failed call
 * inside a write txn leaves the txn usable but the caller should abort.
 *
 * A map grown by another process (issue 10 item 8): a process that commits with
 * a larger map-size (skydns -import, another writer) may use pages past the end
 * of our map; LMDB then refuses our txn begin/renew with MDB_MAP_RESIZED until
 * mdb_env_set_mapsize(env, 0) re-maps to the size the store records. LMDB
 * munmaps first and leaves it to the caller that no txn of the process is
 * active, so the store keeps a gate (gate.c):
 *  - A read handle counts as busy from begin/renew until reset/end, and a write
 *    txn from begin until commit/abort; each takes its count with one atomic
 *    add on its own cache line and reads a `remapping` flag that is written
 *    only by a remap. No lock on the query path.
 *  - The thread that meets MDB_MAP_RESIZED leaves the gate, raises `remapping`
 *    (new entries wait for the remap), waits for every count to drop (readers
 *    reset once per batch, so a worker waits for the longest batch or API
 *    request in flight, bounded at 1 s for a holder that is descheduled),
 *    re-maps, and tries its begin again. This is the one place a worker may
 *    wait on another thread, once per growth: the alternative is SERVFAIL.
 *    Live snapshots taken before the growth stay valid until they reset: their
 *    pages lie inside the old map.
 *  - A thread that holds a busy handle never waits for quiet (it would wait for
 *    itself): its remap or entry fails with -EBUSY, and the next renew retries.
 *    So a live handle stays on the thread that began or renewed it until reset.
 *  - A remap that finds no quiet in 1 s (a stuck reader, or a writer of ours
 *    queued behind another process's long write txn) gives up with -EBUSY, and
 *    for the next 100 ms other remaps fail fast instead of stalling workers
 *    again.
 *  - A write that fails with ERR_SPACE (MDB_MAP_FULL) marks the store, and the
 *    next store_write_begin re-maps first: a map that another process's larger
 *    map-size has raised is used up to that size, never shrunk below our own.
 *    Retrying the failed write is the caller's (it may succeed now).
 *  - If re-mapping fails (mmap ENOMEM), LMDB has no map left: every later
 *    begin/renew returns ERR_STORE and store_check() says so until a restart.
 * Lookup-cache slots and cached snapshot facts point into the map, so every
 * remap bumps an epoch that drops them at the next renew.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;
typedef struct store_rtxn store_rtxn_t;
typedef struct store_wtxn store_wtxn_t;

#define STORE_SOURCE_MAX 64 /* max length of a source name, incl. NUL */

/* Answer selection mode stored with an rrset (DESIGN §3). */
enum {
	STORE_MODE_DEFAULT = 0, /* use the domain's configured mode */
	STORE_MODE_ALL = 1,
	STORE_MODE_RANDOM_ONE = 2,
	STORE_MODE_HONE_ONE = 3,
};

enum {
	STORE_HEALTH_UNKNOWN = 0, /* no record: counts as UP */
	STORE_HEALTH_UP = 1,
	STORE_HEALTH_DOWN = 2,
};

enum {
	STORE_F_RDONLY = 1 << 0, /* open read-only (server-only processes may still write health) */
};

/**
 * Open (creating if needed) the store in directory `dir`.
 * @param mapsize maximum size of the map in bytes (LMDB mapsize).
 * @param out     receives the handle (owned; free with store_close).
 * @return 0, -errno, ERR_STORE (incompatible or corrupt store).
 */
int store_open(store_t **out, const char *dir, size_t mapsize, unsigned flags);
/** Close; NULL is a no-op. All txns must be ended first. */
void store_close(store_t *s);

/* Drops this process's view of the mapped store pages it has read (MADV_DONTNEED on
 * LMDB's read-only shared map). Nothing is lost: the pages stay in the page cache and on
 * disk, and the next read faults them back. For a writer that walks most of the store at
 * once (a watcher's full re-list), so its RSS does not grow by the store pages it only
 * passed through, which skydns's workers map anyway. Safe inside a write txn: without
 * MDB_WRITEMAP nothing is written through the map. Any thread; never fails. */
void store_release_map(store_t *s);
/* What the store has seen; plain values, for metrics. */
typedef struct {
	uint64_t map_resizes; /* remaps that changed the map size (another process grew it) */
	size_t map_bytes;     /* size of the map now */
} store_stats_t;

/** Fill *out; any thread, never blocks. */
void store_stats(store_t *s, store_stats_t *out);

/**
 * Can the store be read now? Begins a read txn (re-mapping a grown store, as any
 * begin does), reads the snapshot's facts and ends it. For readiness checks.
 * @return 0, ERR_STORE (corrupt, or the map is lost), -EUSERS (reader table
 *         full), -EBUSY (a remap could not finish), -ENOMEM.
 */
int store_check(store_t *s);

/** Clear stale reader slots left by crashed processes (mdb_reader_check). @return cleared count or
 * <0. */
int store_reader_check(store_t *s);

/* ---- read side ---- */

/**
 * Begin a read txn. @param out receives an owned handle (store_read_end frees).
 * @return 0, -ENOMEM, -EUSERS (reader table full), -EBUSY (a grown map could not be
 *         re-mapped yet: try again), ERR_STORE.
 */
int store_read_begin(store_t *s, store_rtxn_t **out);
/** Release the snapshot but keep the handle for store_read_renew. */
void store_read_reset(store_rtxn_t *t);
/** Take a fresh snapshot on a reset handle. @return as store_read_begin; on failure the
 * handle stays reset (lookups on it fail) and may be renewed again. */
int store_read_renew(store_rtxn_t *t);
/** End and free; NULL is a no-op. */
void store_read_end(store_rtxn_t *t);
/**
 * Give this handle a cache of at most `entries` (a power of two, at least 2)
 * store_lookup results: name, type -> the rrset (copied when small, else its place
 * in the map), or the miss (NXDOMAIN / NODATA facts). A commit does not empty it:
 * the first renew after one forgets the names the commit log says changed (and their
 * ancestors), so a renewed handle never answers older than its snapshot. One B-tree
 * descent touches ~8 cold cache lines in a 1M-name map; a hit touches one or two.
 * For one thread's handle (the query path); 0 leaves it off. @return 0 or -ENOMEM.
 */
int store_read_cache(store_rtxn_t *t, size_t entries);
/** The cache's exact gets since store_read_cache: answered by a slot, and not (0, 0 without
 * a cache). The handle's thread only. */
void store_cache_counts(const store_rtxn_t *t, uint64_t *hits, uint64_t *misses);
/**
 * Start loading the cache slot a store_lookup of (key, qtype) will read; for a
 * batch of lookups, so their cache misses overlap. @return a hint for
 * store_prefetch_value, or NULL (no cache, long key, not live).
 */
const void *store_prefetch(store_rtxn_t *t, const uint8_t *key, size_t keylen, uint16_t qtype);
/** Second step, a little later: start loading the rrset a valid slot points at. */
void store_prefetch_value(store_rtxn_t *t, const void *hint);

/** Generation of the snapshot (SOA serial). */
uint64_t store_generation(store_rtxn_t *t);

/* A view of one rrset. All pointers borrowed: valid until the txn is reset/ended. */
typedef struct {
	uint16_t type;
	uint8_t mode; /* STORE_MODE_* */
	uint16_t count;
	const uint8_t *entries; /* count entries, layout in the file comment */
	size_t len;		/* bytes of entries */
} store_rrset_t;

/* Iterate the entries of an rrset without touching raw offsets. */
typedef struct {
	uint8_t source_id;
	uint32_t ttl;
	uint16_t rdlen;
	const uint8_t *rdata;
	const uint8_t *wire; /* ttl||rdlength||rdata, 6 + rdlen bytes, ready to copy */
} store_rr_t;

/** @return 1 and fills rr, 0 at the end, ERR_STORE on a corrupt value. *pos starts at 0. */
int store_rrset_next(const store_rrset_t *set, size_t *pos, store_rr_t *rr);

/* Result of looking up one name for one type. */
typedef struct {
	bool exists;	     /* the name has rrsets or descendants (empty non-terminal) */
	bool has_rrset;	     /* rrset for the asked type found */
	bool has_cname;	     /* the name has a CNAME rrset; with has_rrset, reported only for
			      * qtype CNAME (a name with a CNAME holds nothing else) */
	store_rrset_t rrset; /* valid when has_rrset */
	store_rrset_t cname; /* valid when has_cname */
} store_lookup_t;

/**
 * Look a name up by its key (common/wire.h) for one type: one exact get when
 * the rrset exists, else one cursor walk that also reports whether the name
 * exists and whether it holds a CNAME.
 * qtype ANY is not special here: it finds an rrset only if type 255 is stored.
 * @return 0 (result in *out, also when nothing exists) or ERR_STORE.
 */
int store_lookup(store_rtxn_t *t, const uint8_t *key, size_t keylen, uint16_t qtype,
		 store_lookup_t *out);

/**
 * Does the name hold an rrset of this type? One exact get, no walk; with a
 * lookup cache a miss is remembered too (for the zone-cut walk, which asks
 * every name for an NS it almost never has). @return 1, 0, or ERR_*.
 */
int store_has_rrset(store_rtxn_t *t, const uint8_t *key, size_t keylen, uint16_t qtype);

/** A name key (store form) of the snapshot. */
typedef struct {
	const uint8_t *key;
	size_t len;
} store_key_t;

#define STORE_NSOWN_MAX 32 /* more NS owners than this: callers walk the names */

/**
 * The owner keys of every NS rrset in the snapshot, loaded once per snapshot,
 * so the zone-cut check costs a compare per owner instead of a get per label
 * (issue 17 performance). Apex NS are listed too: telling them apart is the
 * caller's, who knows its zones.
 * @param owners  set on success; borrowed until store_read_reset/renew.
 * @return the count (0..STORE_NSOWN_MAX), or ERR_TOOBIG when there are more,
 * or for a write view (callers then ask each name with store_has_rrset).
 */
int store_ns_owners(store_rtxn_t *t, const store_key_t **owners);

/**
 * False when no rrset's owner has a "*" label in the snapshot: no wildcard can
 * answer, and a name that does not exist is NXDOMAIN without the encloser walk.
 * Always true for a write view.
 */
bool store_may_have_wildcards(store_rtxn_t *t);

/**
 * Call fn for every rrset of every name whose key starts with `key` (the
 * subtree at that name; keylen 0 = everything), in key order.
 * fn returns 0 to go on, anything else stops the walk and is returned.
 */
typedef int (*store_iter_fn)(void *ctx, const uint8_t *key, size_t keylen,
			     const store_rrset_t *set);
int store_iter(store_rtxn_t *t, const uint8_t *key, size_t keylen, store_iter_fn fn, void *ctx);

/**
 * store_iter, resuming after the rrset (after, after_type) that an earlier
 * walk stopped at (a zone transfer, one message per txn). @return as store_iter,
 * or ERR_INVAL for a key longer than WIRE_KEY_MAX.
 */
int store_iter_after(store_rtxn_t *t, const uint8_t *key, size_t keylen, const uint8_t *after,
		     size_t afterlen, uint16_t after_type, store_iter_fn fn, void *ctx);

/**
 * Health of an address (4 bytes IPv4 or 16 bytes IPv6).
 * @return STORE_HEALTH_* (UNKNOWN when no record), or ERR_STORE.
 */
int store_health_get(store_rtxn_t *t, const uint8_t *addr, size_t addrlen);
/** True when the snapshot holds no health records at all (lets the query path skip lookups). */
bool store_health_empty(store_rtxn_t *t);

/* One health record, copied out of the map. */
typedef struct {
	int status;		       /* STORE_HEALTH_UP or STORE_HEALTH_DOWN */
	uint64_t changed_ms;	       /* when it was written (unix ms) */
	char source[STORE_SOURCE_MAX]; /* who said so: "api", "cli", "probe", "etcd" */
} store_health_rec_t;

/**
 * The whole record of an address, with who wrote it and when (the probe asks
 * before writing, inside its write txn's view, so a manual statement is never
 * overwritten). @return 0 (*out filled), ERR_NOTFOUND, ERR_INVAL, ERR_STORE.
 */
int store_health_lookup(store_rtxn_t *t, const uint8_t *addr, size_t addrlen,
			store_health_rec_t *out);

/** Iterate health records; fn as for store_iter. */
typedef int (*store_health_fn)(void *ctx, const uint8_t *addr, size_t addrlen, int status,
			       uint64_t changed_ms, const char *source);
int store_health_iter(store_rtxn_t *t, store_health_fn fn, void *ctx);

/**
 * Source ids present at a name (any type): bit i set when source id i has
 * an entry there (ids < 64). Lets the API refuse names owned by k8s.
 */
int store_name_sources(store_rtxn_t *t, const uint8_t *key, size_t keylen, uint64_t *mask);
/** Has source id `src` any entry in this snapshot? @return 1, 0, or ERR_*. */
int store_source_has_data(store_rtxn_t *t, int src);
/** Look up a source's id without creating it. @return id (>=0) or ERR_NOTFOUND. */
int store_source_find(store_rtxn_t *t, const char *source);
/**
 * The name of source id `id` (the inverse of store_source_find), into out[0..cap).
 * A walk over the source table (at most 64 entries): for reports, not for queries.
 * @return 0, ERR_NOTFOUND (no such id), ERR_TOOBIG (cap too small), ERR_STORE.
 */
int store_source_name(store_rtxn_t *t, int id, char *out, size_t cap);

/* ---- write side ---- */

/** Begin a write txn (blocks while another writer holds the lock). @param out owned.
 * @return 0, -ENOMEM, -EBUSY (see store_read_begin), ERR_STORE. */
int store_write_begin(store_t *s, store_wtxn_t **out);
/** Commit, bump the generation, free the handle (also on failure). @return 0, ERR_SPACE, ... */
int store_write_commit(store_wtxn_t *w);
/** Abort and free; NULL is a no-op. */
void store_write_abort(store_wtxn_t *w);

/**
 * Get or create the id of a source name ("import:skydns.local.", "api",
 * "etcd", "k8s", ...). At most 64 sources.
 * @return id (>= 0) or ERR_TOOBIG / ERR_INVAL.
 */
int store_source_id(store_wtxn_t *w, const char *source);

/** Remove every entry that source id `src` contributed, anywhere. */
int store_source_clear(store_wtxn_t *w, int src);

/**
 * Add one RR. `name` is a valid wire name (any case; stored by key).
 * An identical entry (same source, type, rdata) is replaced (new ttl), not
 * duplicated. Rdata is stored as given: callers lowercase embedded names.
 * @return 0, ERR_INVAL (bad name/rdlen), ERR_TOOBIG (rrset > 64 KiB), ERR_SPACE.
 */
int store_rr_add(store_wtxn_t *w, int src, const uint8_t *name, size_t namelen, uint16_t type,
		 uint32_t ttl, const uint8_t *rdata, uint16_t rdlen);

/**
 * Delete RRs of source `src` at `name`: type 0 = every type; rdata NULL =
 * every entry of that type. Entries of other sources stay.
 * @return 0 when something was deleted, ERR_NOTFOUND when nothing matched.
 */
int store_rr_del(store_wtxn_t *w, int src, const uint8_t *name, size_t namelen, uint16_t type,
		 const uint8_t *rdata, uint16_t rdlen);

/** Set the selection mode of an existing rrset. @return 0 or ERR_NOTFOUND. */
int store_rrset_set_mode(store_wtxn_t *w, const uint8_t *name, size_t namelen, uint16_t type,
			 uint8_t mode);

/** Set the health of an address. @param source who says so (text, borrowed). */
int store_health_set(store_wtxn_t *w, const uint8_t *addr, size_t addrlen, int status,
		     const char *source);
/** Remove a health record. @return 0 or ERR_NOTFOUND. */
int store_health_del(store_wtxn_t *w, const uint8_t *addr, size_t addrlen);

/**
 * Read-your-writes inside a write txn: a read txn view over the write txn,
 * valid until the write txn ends. Borrowed; do not reset/renew/end it.
 */
store_rtxn_t *store_write_view(store_wtxn_t *w);

/* ---- zone import (ldns; off the hot path) ---- */

/**
 * Load an RFC 1035 master file into the store in one write txn, replacing
 * everything the previous import of the same origin put there (source
 * "import:<origin>"). SOA at the apex is validated but not stored (skydns
 * synthesizes its SOA); every other record must be at or below the origin.
 * @param origin  wire name the file is relative to; its $ORIGIN may not
 *                leave it.
 * @param err     receives "PATH:LINE: message" on failure.
 * @param nrr     receives the number of records loaded (may be NULL).
 * @return 0, ERR_PARSE (store unchanged), ERR_SPACE, -errno.
 */
int store_import_zone(store_t *s, const char *path, const uint8_t *origin, size_t originlen,
		      char *err, size_t errlen, size_t *nrr);

/* ---- meta counters and a source's raw key/value copy (store/kv.c) ----
 *
 * A watcher keeps what its control plane said (etcd keys and values) next to
 * the records it derived from them, in the same write txn, so a restart can
 * resume from the stored position without re-reading everything, and a
 * change can re-derive the records of a subtree without asking etcd. Stored
 * in the meta DBI under "kv:<ns>:" and "u64:<key>", apart from store.c's keys.
 */

/** Read a u64 meta value set by store_meta_put_u64. @return 0, ERR_NOTFOUND, ERR_STORE. */
int store_meta_u64(store_rtxn_t *t, const char *key, uint64_t *out);
/** Set a u64 meta value in the write txn. @return 0, ERR_INVAL (key too long), ERR_SPACE. */
int store_meta_put_u64(store_wtxn_t *w, const char *key, uint64_t val);
/** Remove a u64 meta value. @return 0 (also when absent) or an error. */
int store_meta_del_u64(store_wtxn_t *w, const char *key);

#define STORE_KV_KEY_MAX 480 /* namespace + key: LMDB's 511-byte key limit, minus headroom */

/** Put key -> val in namespace ns (short text, borrowed). @return 0, ERR_TOOBIG, ERR_SPACE. */
int store_kv_put(store_wtxn_t *w, const char *ns, const uint8_t *key, size_t klen,
		 const uint8_t *val, size_t vlen);
/**
 * Get the value of key in ns.
 * @param val receives a borrowed pointer into the map, valid until the txn ends or writes again.
 * @return 0, ERR_NOTFOUND, ERR_TOOBIG.
 */
int store_kv_get(store_rtxn_t *t, const char *ns, const uint8_t *key, size_t klen,
		 const uint8_t **val, size_t *vlen);
/** Delete key from ns. @return 0 or ERR_NOTFOUND. */
int store_kv_del(store_wtxn_t *w, const char *ns, const uint8_t *key, size_t klen);
/** Delete every key of ns. @return 0 or an error. */
int store_kv_clear(store_wtxn_t *w, const char *ns);
/**
 * Call fn for every key of ns starting with prefix, in key order; key and val
 * borrowed for the call. fn returns 0 to go on; anything else stops and is returned.
 */
typedef int (*store_kv_fn)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			   size_t vlen);
int store_kv_iter(store_rtxn_t *t, const char *ns, const uint8_t *prefix, size_t plen,
		  store_kv_fn fn, void *ctx);

/*
 * Who owns a name (issue 18): store_kv namespaces whose key is a name key and whose value
 * the user name (text, no NUL) that created the name through the API. One namespace per
 * source the API writes through: the API's own records, and in distributed mode the etcd
 * records (skydns-watch-etcd copies the etcd values' "user" field here). A value counts
 * only while that source holds entries at the name; a name with entries and no value
 * belongs to the admin (every store from before owners existed).
 */
#define STORE_OWNER_NS_API "owner:api"
#define STORE_OWNER_NS_ETCD "owner:etcd"

/* ---- bulk rrset writes (store/bulk.c) ---- */

/**
 * Replace every entry source `src` has in the rrset (name, type) with n entries of one
 * ttl, in a single write of the value (store_rr_add per entry rewrites the whole rrset
 * each time: O(n^2) for a name with thousands of records). Entries of other sources stay
 * first. Callers deduplicate rdata. rdata[i] borrowed; rdata is stored as given.
 * @return entries written (fewer than n when the 64 KiB rrset limit cut the rest), or
 *         ERR_INVAL, ERR_READONLY, ERR_SPACE, ERR_STORE.
 */
int store_rrset_replace(store_wtxn_t *w, int src, const uint8_t *name, size_t namelen,
			uint16_t type, uint32_t ttl, const uint8_t *const *rdata,
			const uint16_t *rdlen, size_t n);

/* Meta u64 keys the etcd watcher keeps (store_meta_u64) and the API reports in /metrics.
 * Counters are cumulative over watcher restarts; each commit adds what it counted. */
#define STORE_ETCD_KV_NS "etcd"	  /* store_kv namespace of etcd's raw keys (watchers/sync.c) */
#define STORE_ETCD_REV "etcd:rev" /* revision the store holds (0/absent: never synced) */
#define STORE_ETCD_CLUSTER "etcd:cluster_id" /* the cluster the revision belongs to */
#define STORE_ETCD_SEEN_REV "etcd:seen_rev"  /* highest revision etcd reported */
#define STORE_ETCD_EVENTS "etcd:events"	     /* keys applied */
#define STORE_ETCD_BAD "etcd:bad_keys"	     /* values skipped as invalid */
#define STORE_ETCD_REREADS "etcd:rereads"    /* full reads committed */
#define STORE_ETCD_ERRORS "etcd:errors"	     /* failed reads/watches (counted at the next commit) */
#define STORE_ETCD_LAT_SUM "etcd:lat_sum_us" /* sum of event -> commit latencies, microseconds */
#define STORE_ETCD_LAT_PREFIX "etcd:lat_le_"
#define STORE_ETCD_LAT_FMT STORE_ETCD_LAT_PREFIX "%ums" /* batches per bucket (not cumulative) */
#define STORE_ETCD_LAT_INF STORE_ETCD_LAT_PREFIX "inf"
#define STORE_ETCD_LAT_BOUNDS                                                                      \
	{                                                                                          \
		1, 5, 10, 50, 100, 500, 1000                                                       \
	} /* ms */
#define STORE_ETCD_LAT_NBOUNDS 7

/* Meta u64 keys of the Kubernetes watcher (skydns-watch-k8s), as the etcd watcher's:
 * counters cumulative over restarts, each commit adding what it counted. */
#define STORE_K8S_SYNCED "k8s:synced"	   /* 1 once a full list was committed */
#define STORE_K8S_EVENTS "k8s:events"	   /* watch events applied */
#define STORE_K8S_RELISTS "k8s:relists"	   /* full lists committed */
#define STORE_K8S_RESUMES "k8s:resumes"	   /* watches resumed from a stored resourceVersion */
#define STORE_K8S_ERRORS "k8s:errors"	   /* failed API requests */
#define STORE_K8S_BAD "k8s:bad_objects"	   /* objects skipped as unusable */
#define STORE_K8S_OBJECTS "k8s:objects"	   /* Services + EndpointSlices in the store (gauge) */
#define STORE_K8S_LAT_SUM "k8s:lat_sum_us" /* sum of programming latencies, microseconds */
#define STORE_K8S_LAT_PREFIX "k8s:lat_le_"
#define STORE_K8S_LAT_FMT STORE_K8S_LAT_PREFIX "%ums" /* Services per bucket (not cumulative) */
#define STORE_K8S_LAT_INF STORE_K8S_LAT_PREFIX "inf"
#define STORE_K8S_LAT_BOUNDS                                                                       \
	{                                                                                          \
		1, 5, 10, 50, 100, 500, 1000, 5000                                                 \
	} /* ms */
#define STORE_K8S_LAT_NBOUNDS 8

enum {
	/* A file with no records may replace a zone that has some (skydns -import-allow-empty);
	 * without it that import fails, so a truncated file cannot wipe a zone by accident. */
	STORE_IMPORT_ALLOW_EMPTY = 1 << 0,
};

/* The source the admin API writes its records under (embedded mode). */
#define STORE_SOURCE_API "api"

/* What an import found, for the caller's report. */
typedef struct {
	size_t nrr;  /* records stored */
	size_t nsoa; /* SOA records seen (0 or 1): 0 deserves a warning */
	/* Records of the file at names the API holds (written or taken over through the API):
	 * the import leaves those names to the API and skips their records. */
	size_t nskipped_rr;
	size_t nskipped_names;
	char skipped[512]; /* the first skipped names, ", "-separated, "..." once cut */
} store_import_result_t;

/**
 * store_import_zone with flags (STORE_IMPORT_*). Besides syntax, it refuses
 * with "PATH:LINE: message": a CNAME beside other data at one name (RFC 1034
 * §3.6.2), a CNAME at the apex, a second SOA, an unknown type, a bad TTL,
 * names outside the zone, and an empty file over a non-empty zone unless
 * STORE_IMPORT_ALLOW_EMPTY. Records at a name the API (source STORE_SOURCE_API) holds
 * records at are skipped and counted in res: that name is the API's.
 * @param res receives the counts on success (may be NULL).
 */
int store_import_zone_flags(store_t *s, const char *path, const uint8_t *origin, size_t originlen,
			    unsigned flags, char *err, size_t errlen, store_import_result_t *res);
