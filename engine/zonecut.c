#include "engine/zonecut.h"

#include <string.h>

#include "common/err.h"

/* Offsets of the label starts of `lower` that lie below the apex, question first. */
static int label_offsets(const uint8_t *lower, size_t len, size_t apexlen,
			 size_t offs[WIRE_NAME_MAX], size_t *n)
{
	size_t pos = 0, k = 0;

	if (apexlen > len)
		return ERR_INVAL;
	/* Bounded: every step moves past one label of a checked name. */
	while (pos < len - apexlen) {
		offs[k++] = pos;
		pos += (size_t)lower[pos] + 1;
	}
	if (pos != len - apexlen)
		return ERR_INVAL; /* the apex is not a label-aligned suffix */
	*n = k;
	return 0;
}

/*
 * The cut from the snapshot's list of NS owners: the shortest owner key that is a
 * label-aligned prefix of the name's key and longer than the apex's (the highest
 * cut, strictly below the apex). Apex NS fail the length test at once, so a zone
 * without delegations costs one key build and a compare per NS owner; the walk
 * below costs a lookup-cache probe per label, and its NS misses took half the
 * lookup cache from the answers (bench/qbench-cg.sh: 4166 -> 2691 instructions per
 * query without NS, 2707 with an apex NS).
 */
static int find_listed(store_rtxn_t *txn, const uint8_t *key, size_t keylen, size_t len,
		       size_t apexlen, const store_key_t *own, int nown, zonecut_t *out)
{
	size_t best = 0;
	zonecut_t res = {.kind = ZONECUT_EXISTS};
	store_lookup_t lk;
	int ret;

	if (apexlen == 0 || apexlen > len || keylen + 1 != len)
		return ERR_INVAL;
	for (int i = 0; i < nown; i++) {
		/* A key that is a byte prefix of another is a label-aligned one: both parse
		 * from offset 0 through the same length octets. */
		if (own[i].len > apexlen - 1 && own[i].len <= keylen &&
		    (best == 0 || own[i].len < best) && memcmp(own[i].key, key, own[i].len) == 0)
			best = own[i].len;
	}
	if (best > 0) {
		if ((ret = store_lookup(txn, key, best, WIRE_TYPE_NS, &lk)) < 0)
			return ret;
		if (!lk.has_rrset)
			return ERR_STORE; /* listed in this snapshot: it must be there */
		res.kind = ZONECUT_REFERRAL;
		res.cut_off = len - (best + 1);
		res.ns = lk.rrset;
	}
	*out = res;
	return 0;
}

int zonecut_find_key(store_rtxn_t *txn, const uint8_t *lower, size_t len, const uint8_t *key,
		     size_t keylen, size_t apexlen, zonecut_t *out)
{
	const store_key_t *own;
	int nown = store_ns_owners(txn, &own);

	if (nown >= 0)
		return find_listed(txn, key, keylen, len, apexlen, own, nown, out);
	return zonecut_walk(txn, lower, len, apexlen, out);
}

int zonecut_find(store_rtxn_t *txn, const uint8_t *lower, size_t len, size_t apexlen,
		 zonecut_t *out)
{
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen;

	if (wire_name_to_key(lower, len, key, &keylen) < 0)
		return ERR_INVAL;
	return zonecut_find_key(txn, lower, len, key, keylen, apexlen, out);
}

int zonecut_walk(store_rtxn_t *txn, const uint8_t *lower, size_t len, size_t apexlen,
		 zonecut_t *out)
{
	size_t offs[WIRE_NAME_MAX], n = 0, keylen;
	uint8_t key[WIRE_KEY_MAX];
	zonecut_t res = {.kind = ZONECUT_EXISTS};
	store_lookup_t lk;
	int ret;

	if ((ret = label_offsets(lower, len, apexlen, offs, &n)) < 0)
		return ret;
	/*
	 * From just below the apex down: the highest cut wins (RFC 1034 §4.3.2).
	 * Exact gets only, their misses cached: a name that does not exist has no
	 * NS, so walking past it changes nothing, and most names have no NS.
	 */
	for (size_t i = n; i-- > 0;) {
		if (wire_name_to_key(lower + offs[i], len - offs[i], key, &keylen) < 0)
			return ERR_INVAL;
		if ((ret = store_has_rrset(txn, key, keylen, WIRE_TYPE_NS)) < 0)
			return ret;
		if (ret == 0)
			continue;
		if ((ret = store_lookup(txn, key, keylen, WIRE_TYPE_NS, &lk)) < 0)
			return ret;
		if (!lk.has_rrset)
			return ERR_STORE; /* just seen: the snapshot cannot have changed */
		res.kind = ZONECUT_REFERRAL;
		res.cut_off = offs[i];
		res.ns = lk.rrset;
		break;
	}
	*out = res;
	return 0;
}

int zonecut_encloser(store_rtxn_t *txn, const uint8_t *lower, size_t len, size_t apexlen,
		     size_t *encloser_off)
{
	size_t offs[WIRE_NAME_MAX], n = 0, keylen;
	uint8_t key[WIRE_KEY_MAX];
	store_lookup_t lk;
	int ret;

	if ((ret = label_offsets(lower, len, apexlen, offs, &n)) < 0)
		return ret;
	/* Up from the parent: the first name that exists; the apex always does. */
	for (size_t i = 1; i < n; i++) {
		if (wire_name_to_key(lower + offs[i], len - offs[i], key, &keylen) < 0)
			return ERR_INVAL;
		if ((ret = store_lookup(txn, key, keylen, WIRE_TYPE_NS, &lk)) < 0)
			return ret;
		if (lk.exists) {
			*encloser_off = offs[i];
			return 0;
		}
	}
	*encloser_off = len - apexlen;
	return 0;
}

int zonecut_wildcard_key(const uint8_t *lower, size_t len, size_t encloser_off,
			 uint8_t key[WIRE_KEY_MAX], size_t *keylen)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t elen = len - encloser_off;

	if (encloser_off >= len || 2 + elen > WIRE_NAME_MAX)
		return ERR_INVAL;
	name[0] = 1;
	name[1] = '*';
	memcpy(name + 2, lower + encloser_off, elen);
	return wire_name_to_key(name, 2 + elen, key, keylen) < 0 ? ERR_INVAL : 0;
}
