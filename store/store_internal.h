/*
 * store_internal: the handle layouts and helpers shared by the store/ sources (and
 * white-box unit tests). Not part of the public API; nothing outside
 * store/ and tests/ may include it. Same threading rules as store.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "store/store.h"

#define STORE_SCHEMA_VERSION 1u
#define STORE_RRSET_HDR 4     /* mode, flags, count (u16 BE) */
#define STORE_ENTRY_HDR 7     /* source id, ttl (u32 BE), rdlength (u16 BE) */
#define STORE_RRSET_MAX 65535 /* a value larger than this is ERR_TOOBIG */
#define STORE_KEY_EXTRA 3     /* 0x00 || type (u16 BE) after the name key */
#define STORE_HEALTH_HDR 9    /* status (u8), changed-at (u64 BE) */

struct store {
	MDB_env *env;
	MDB_dbi rrsets, bysrc, health, meta;
	unsigned flags; /* STORE_F_* */
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
	bool live;	  /* holds a snapshot (not reset) */
};

struct store_wtxn {
	store_t *s;
	MDB_txn *txn;
	struct store_rtxn view;
};

/** Drop every entry of t's lookup cache (a commit happened); no-op without one. */
void store_cache_drop(store_rtxn_t *t);
/** Grow t's empty lookup cache to suit t->nrrsets (up to its cap); keeps it on failure. */
void store_cache_fit(store_rtxn_t *t);
/** Free t's lookup cache; no-op without one. */
void store_cache_free(store_rtxn_t *t);

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
