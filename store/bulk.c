/*
 * bulk.c: one rrset's entries of one source written in a single put, for
 * writers that derive whole rrsets (the etcd watcher). Keeps the rrset header
 * count and the bysrc index as write.c does.
 */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store_internal.h"

static int bysrc_set(store_wtxn_t *w, int src, const uint8_t *key, size_t keylen, bool present)
{
	uint8_t buf[1 + WIRE_KEY_MAX + STORE_KEY_EXTRA];
	MDB_val k = {keylen + 1, buf}, v = {0, buf};
	int rc;

	buf[0] = (uint8_t)src;
	memcpy(buf + 1, key, keylen);
	if (present)
		return store_mdb_err(mdb_put(w->txn, w->s->bysrc, &k, &v, 0));
	rc = mdb_del(w->txn, w->s->bysrc, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : store_mdb_err(rc);
}

/* Copy the entries of other sources from the old value into buf. @return bytes or <0. */
static long keep_others(const MDB_val *old, int src, uint8_t *buf, unsigned *kept)
{
	store_rrset_t set = {.entries = (const uint8_t *)old->mv_data + STORE_RRSET_HDR,
			     .len = old->mv_size - STORE_RRSET_HDR};
	size_t pos = 0, len = 0;
	store_rr_t rr;
	int rc;

	while ((rc = store_rrset_next(&set, &pos, &rr)) == 1) {
		if (rr.source_id == src)
			continue;
		size_t n = STORE_ENTRY_HDR + rr.rdlen;
		memcpy(buf + len, rr.rdata - STORE_ENTRY_HDR, n);
		len += n;
		(*kept)++;
	}
	return rc < 0 ? rc : (long)len;
}

int store_rrset_replace(store_wtxn_t *w, int src, const uint8_t *name, size_t namelen,
			uint16_t type, uint32_t ttl, const uint8_t *const *rdata,
			const uint16_t *rdlen, size_t n)
{
	uint8_t key[WIRE_KEY_MAX + STORE_KEY_EXTRA], *buf = NULL;
	unsigned kept = 0;
	size_t written = 0;
	MDB_val k, old;
	int ret, rc, keylen;

	if (w->s->flags & STORE_F_RDONLY)
		return ERR_READONLY;
	if (src < 0 || src >= 64 || type == 0)
		return ERR_INVAL;
	if ((keylen = store_rrset_key(name, namelen, type, key)) < 0)
		return keylen;
	k.mv_size = (size_t)keylen;
	k.mv_data = key;
	rc = mdb_get(w->txn, w->s->rrsets, &k, &old);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_err(rc);
	if (rc == 0 && old.mv_size < STORE_RRSET_HDR)
		return ERR_STORE;
	if (!(buf = malloc(STORE_RRSET_MAX)))
		return -ENOMEM;
	memset(buf, 0, STORE_RRSET_HDR);
	size_t len = STORE_RRSET_HDR;
	if (rc == 0) {
		long l = keep_others(&old, src, buf + STORE_RRSET_HDR, &kept);
		if (l < 0) {
			ret = (int)l;
			goto out;
		}
		buf[0] = ((const uint8_t *)old.mv_data)[0]; /* keep the selection mode */
		len += (size_t)l;
	}
	for (; written < n && len + STORE_ENTRY_HDR + rdlen[written] <= STORE_RRSET_MAX;
	     written++) {
		uint8_t *e = buf + len;
		e[0] = (uint8_t)src;
		wire_write_u32(e + 1, ttl);
		wire_write_u16(e + 5, rdlen[written]);
		if (rdlen[written])
			memcpy(e + STORE_ENTRY_HDR, rdata[written], rdlen[written]);
		len += STORE_ENTRY_HDR + rdlen[written];
	}
	if (kept + written == 0) {
		bool existed = rc == 0;
		ret = store_mdb_err(existed ? mdb_del(w->txn, w->s->rrsets, &k, NULL) : 0);
		if (ret == 0 && existed)
			ret = store_shape_note(w, key, (size_t)keylen, -1);
	} else {
		bool created = rc != 0;
		wire_write_u16(buf + 2, (uint16_t)(kept + written));
		MDB_val v = {len, buf};
		ret = store_mdb_err(mdb_put(w->txn, w->s->rrsets, &k, &v, 0));
		if (ret == 0 && created)
			ret = store_shape_note(w, key, (size_t)keylen, 1);
	}
	if (ret == 0 && (rc == 0 || kept + written > 0))
		store_clog_note(w, key, (size_t)keylen);
	if (ret == 0)
		ret = bysrc_set(w, src, key, (size_t)keylen, written > 0);
	if (ret == 0)
		ret = (int)written;
out:
	free(buf);
	return ret;
}
