#include "server/zonecut.h"

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

int zonecut_find(store_rtxn_t *txn, const uint8_t *lower, size_t len, size_t apexlen,
		 zonecut_t *out)
{
	size_t offs[WIRE_NAME_MAX], n = 0, keylen;
	uint8_t key[WIRE_KEY_MAX];
	zonecut_t res = {.kind = ZONECUT_EXISTS};
	int ret;

	if ((ret = label_offsets(lower, len, apexlen, offs, &n)) < 0)
		return ret;
	/* From just below the apex down: the highest cut wins (RFC 1034 §4.3.2). */
	for (size_t i = n; i-- > 0;) {
		store_lookup_t lk;
		if (wire_name_to_key(lower + offs[i], len - offs[i], key, &keylen) < 0)
			return ERR_INVAL;
		if ((ret = store_lookup(txn, key, keylen, WIRE_TYPE_NS, &lk)) < 0)
			return ret;
		if (lk.has_rrset) {
			res.kind = ZONECUT_REFERRAL;
			res.cut_off = offs[i];
			res.ns = lk.rrset;
			break;
		}
		if (!lk.exists) {
			res.kind = ZONECUT_MISSING;
			res.encloser_off = i + 1 < n ? offs[i + 1] : len - apexlen;
			break;
		}
	}
	*out = res;
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
