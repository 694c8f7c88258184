/*
 * server/zonecut: where a question sits in its zone's tree, for delegations
 * (RFC 1034 §4.3.2 step 3b) and wildcards (RFC 4592).
 *
 * One walk from the label below the apex down to the question name asks
 * each name for an NS RRset: the first name with one is a zone cut (a
 * delegation: the answer is a referral, and everything at or below it, glue
 * included, is not ours to answer authoritatively). For a name that does not
 * exist, a walk up from its parent finds the closest encloser, whose "*"
 * child is the only wildcard that may answer (no synthesis past existing
 * names, RFC 4592 §3.3.1).
 *
 * Part of the pure query engine: no I/O, no allocation. The cut comes from the
 * snapshot's list of NS owners (store_ns_owners): a compare per owner, no store
 * get unless there is a cut; only a store with more NS owners than the list holds
 * is walked, one exact get per label below the apex. Threads: the caller's read
 * txn, one worker.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"
#include "store/store.h"

enum {
	ZONECUT_EXISTS = 0,   /* no cut at or above the name */
	ZONECUT_REFERRAL = 1, /* a cut at or above the name: see cut_off and ns */
};

typedef struct {
	int kind;	  /* ZONECUT_* */
	size_t cut_off;	  /* REFERRAL: offset of the cut's name within the question name */
	store_rrset_t ns; /* REFERRAL: its NS RRset; borrowed until the txn resets */
} zonecut_t;

/**
 * Walk the names between the apex (exclusive) and `lower` (inclusive).
 * @param lower    the question name, lowercased wire form, inside the zone.
 * @param apexlen  length of the zone apex (a suffix of lower).
 * @return 0 with *out filled, or ERR_* (store error, bad name).
 */
int zonecut_find(struct store_rtxn *txn, const uint8_t *lower, size_t len, size_t apexlen,
		 zonecut_t *out);

/**
 * zonecut_find for a caller that has the name's store key already (the answer
 * path): saves building it again. @param key the key of lower, keylen == len - 1.
 */
int zonecut_find_key(struct store_rtxn *txn, const uint8_t *lower, size_t len, const uint8_t *key,
		     size_t keylen, size_t apexlen, zonecut_t *out);

/**
 * zonecut_find by walking every name below the apex (a store_has_rrset each), what
 * zonecut_find does when the snapshot has too many NS owners to list. Exposed for
 * the unit test that compares both. Same parameters and return.
 */
int zonecut_walk(struct store_rtxn *txn, const uint8_t *lower, size_t len, size_t apexlen,
		 zonecut_t *out);

/**
 * The closest encloser of a name that does not exist: the longest existing
 * ancestor (the apex at least). @param encloser_off receives its offset
 * within lower. @return 0 or ERR_*.
 */
int zonecut_encloser(struct store_rtxn *txn, const uint8_t *lower, size_t len, size_t apexlen,
		     size_t *encloser_off);

/**
 * The store key of the wildcard "*.<encloser>", the encloser being the
 * suffix of `lower` at encloser_off. @return 0, or ERR_INVAL when too long.
 */
int zonecut_wildcard_key(const uint8_t *lower, size_t len, size_t encloser_off,
			 uint8_t key[WIRE_KEY_MAX], size_t *keylen);
