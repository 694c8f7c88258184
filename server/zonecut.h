/*
 * server/zonecut: where a question sits in its zone's tree, for delegations
 * (RFC 1034 §4.3.2 step 3b) and wildcards (RFC 4592).
 *
 * One walk from the label below the apex down to the question name looks up
 * each name's NS RRset: the first name with one is a zone cut (a delegation:
 * the answer is a referral, and everything at or below it, glue included, is
 * not ours to answer authoritatively); the first name that does not exist
 * ends the walk, and its parent is the closest encloser, whose "*" child is
 * the only wildcard that may answer (no synthesis past existing names).
 *
 * Part of the pure query engine: no I/O, no allocation; one store lookup per
 * label below the apex. Threads: the caller's read txn, one worker.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"
#include "store/store.h"

enum {
	ZONECUT_EXISTS = 0,   /* the name exists (or is the apex), no cut above it */
	ZONECUT_REFERRAL = 1, /* a cut at or above the name: see cut_off and ns */
	ZONECUT_MISSING = 2,  /* the name does not exist: see encloser_off */
};

typedef struct {
	int kind;	     /* ZONECUT_* */
	size_t cut_off;	     /* REFERRAL: offset of the cut's name within the question name */
	store_rrset_t ns;    /* REFERRAL: its NS RRset; borrowed until the txn resets */
	size_t encloser_off; /* MISSING: offset of the closest encloser within the name */
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
 * The store key of the wildcard "*.<encloser>", the encloser being the
 * suffix of `lower` at encloser_off. @return 0, or ERR_INVAL when too long.
 */
int zonecut_wildcard_key(const uint8_t *lower, size_t len, size_t encloser_off,
			 uint8_t key[WIRE_KEY_MAX], size_t *keylen);
