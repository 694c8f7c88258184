/*
 * read.c: the query-path reads (store_lookup, rrset entry walk) and the
 * slower walks used by the API and tools (subtree iteration, sources at a
 * name). store_lookup allocates nothing and uses the handle's one cursor.
 */
#include "store/store.h"

#include <string.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store_internal.h"

int store_rrset_key(const uint8_t *name, size_t namelen, uint16_t type, uint8_t *out)
{
	size_t keylen;

	if (!name || wire_name_check(name, namelen) < 0 ||
	    wire_name_to_key(name, namelen, out, &keylen) < 0)
		return ERR_INVAL;
	out[keylen] = 0;
	wire_write_u16(out + keylen + 1, type);
	return (int)(keylen + STORE_KEY_EXTRA);
}

int store_rrset_next(const store_rrset_t *set, size_t *pos, store_rr_t *rr)
{
	size_t p = *pos;

	if (p >= set->len)
		return 0;
	if (set->len - p < STORE_ENTRY_HDR)
		return ERR_STORE;
	const uint8_t *e = set->entries + p;
	uint16_t rdlen = wire_read_u16(e + 5);
	if (set->len - p - STORE_ENTRY_HDR < rdlen)
		return ERR_STORE;
	rr->source_id = e[0];
	rr->ttl = wire_read_u32(e + 1);
	rr->rdlen = rdlen;
	rr->rdata = e + STORE_ENTRY_HDR;
	rr->wire = e + 1;
	*pos = p + STORE_ENTRY_HDR + rdlen;
	return 1;
}

/* Fill a view of an rrsets value. @return 0 or ERR_STORE. */
static int rrset_view(const MDB_val *k, const MDB_val *v, store_rrset_t *set)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < STORE_RRSET_HDR || k->mv_size < STORE_KEY_EXTRA)
		return ERR_STORE;
	set->type = wire_read_u16((const uint8_t *)k->mv_data + k->mv_size - 2);
	set->mode = p[0];
	set->count = wire_read_u16(p + 2);
	set->entries = p + STORE_RRSET_HDR;
	set->len = v->mv_size - STORE_RRSET_HDR;
	return 0;
}

/* True when k is an rrset key of exactly the name `key`. */
static bool key_is_rrset_of(const MDB_val *k, const uint8_t *key, size_t keylen)
{
	const uint8_t *p = k->mv_data;

	return k->mv_size == keylen + STORE_KEY_EXTRA && p[keylen] == 0 &&
	       memcmp(p, key, keylen) == 0;
}

/*
 * The common case, the asked rrset exists: one B-tree descent for the exact
 * key instead of a cursor walk over all of the name's rrsets and one key
 * past them (3 cursor moves for a name with A and AAAA). Issue 6: the walk
 * was half of the lookup's cost. @return 1 hit, 0 miss, or ERR_*.
 */
static int lookup_exact(store_rtxn_t *t, uint8_t *buf, size_t keylen, uint16_t qtype,
			store_lookup_t *out)
{
	MDB_val k = {keylen + STORE_KEY_EXTRA, buf}, v;
	store_lookup_t res = {0};
	int rc, ret;

	wire_write_u16(buf + keylen + 1, qtype);
	rc = mdb_get(t->txn, t->s->rrsets, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_err(rc);
	if ((ret = rrset_view(&k, &v, &res.rrset)) < 0)
		return ret;
	res.exists = res.has_rrset = true;
	if (qtype == WIRE_TYPE_CNAME) {
		res.has_cname = true;
		res.cname = res.rrset;
	}
	*out = res;
	return 1;
}

int store_lookup(store_rtxn_t *t, const uint8_t *key, size_t keylen, uint16_t qtype,
		 store_lookup_t *out)
{
	uint8_t buf[WIRE_KEY_MAX + STORE_KEY_EXTRA];
	MDB_val k = {keylen + 1, buf}, v;
	store_lookup_t res = {0};
	int rc, ret;

	if (keylen > WIRE_KEY_MAX)
		return ERR_INVAL;
	if (keylen)
		memcpy(buf, key, keylen);
	buf[keylen] = 0;
	if ((ret = lookup_exact(t, buf, keylen, qtype, out)) != 0)
		return ret < 0 ? ret : 0;
	/* key||0x00 sorts first among the name's rrsets, and every descendant
	 * (key||len||...) sorts right after them. */
	rc = mdb_cursor_get(t->cur, &k, &v, MDB_SET_RANGE);
	for (; rc == 0 && key_is_rrset_of(&k, key, keylen);
	     rc = mdb_cursor_get(t->cur, &k, &v, MDB_NEXT)) {
		store_rrset_t set;
		if ((ret = rrset_view(&k, &v, &set)) < 0)
			return ret;
		res.exists = true;
		if (set.type == WIRE_TYPE_CNAME) {
			res.has_cname = true;
			res.cname = set;
		}
		if (set.type == qtype) {
			res.has_rrset = true;
			res.rrset = set;
		}
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_err(rc);
	/* Empty non-terminal: the next key lies below the name. */
	if (!res.exists && rc == 0 && k.mv_size > keylen &&
	    (keylen == 0 || memcmp(k.mv_data, key, keylen) == 0))
		res.exists = true;
	*out = res;
	return 0;
}

int store_iter(store_rtxn_t *t, const uint8_t *key, size_t keylen, store_iter_fn fn, void *ctx)
{
	MDB_cursor *cur = NULL;
	MDB_val k = {keylen, (void *)key}, v;
	int rc, ret;

	/* Own cursor: fn may call store_lookup, which moves t->cur. */
	if ((rc = mdb_cursor_open(t->txn, t->s->rrsets, &cur)) != 0)
		return store_mdb_err(rc);
	rc = mdb_cursor_get(cur, &k, &v, keylen ? MDB_SET_RANGE : MDB_FIRST);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		store_rrset_t set;
		if (k.mv_size < keylen + STORE_KEY_EXTRA ||
		    (keylen && memcmp(k.mv_data, key, keylen) != 0))
			break;
		if ((ret = rrset_view(&k, &v, &set)) < 0)
			goto out;
		ret = fn(ctx, k.mv_data, k.mv_size - STORE_KEY_EXTRA, &set);
		if (ret != 0)
			goto out;
	}
	ret = rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_err(rc);
out:
	mdb_cursor_close(cur);
	return ret;
}

/* OR the source ids of one rrset's entries into *mask. */
static int rrset_sources(const store_rrset_t *set, uint64_t *mask)
{
	size_t pos = 0;
	store_rr_t rr;
	int rc;

	while ((rc = store_rrset_next(set, &pos, &rr)) == 1) {
		if (rr.source_id < 64)
			*mask |= (uint64_t)1 << rr.source_id;
	}
	return rc;
}

int store_name_sources(store_rtxn_t *t, const uint8_t *key, size_t keylen, uint64_t *mask)
{
	uint8_t buf[WIRE_KEY_MAX + 1];
	MDB_val k = {keylen + 1, buf}, v;
	uint64_t m = 0;
	int rc, ret;

	if (keylen > WIRE_KEY_MAX)
		return ERR_INVAL;
	if (keylen)
		memcpy(buf, key, keylen);
	buf[keylen] = 0;
	rc = mdb_cursor_get(t->cur, &k, &v, MDB_SET_RANGE);
	for (; rc == 0 && key_is_rrset_of(&k, key, keylen);
	     rc = mdb_cursor_get(t->cur, &k, &v, MDB_NEXT)) {
		store_rrset_t set;
		if ((ret = rrset_view(&k, &v, &set)) < 0 || (ret = rrset_sources(&set, &m)) < 0)
			return ret;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_err(rc);
	*mask = m;
	return 0;
}

int store_source_find(store_rtxn_t *t, const char *source)
{
	char kbuf[4 + STORE_SOURCE_MAX];
	size_t len = source ? strlen(source) : 0;
	MDB_val k, v;
	int rc;

	if (len == 0 || len >= STORE_SOURCE_MAX)
		return ERR_INVAL;
	memcpy(kbuf, "src:", 4);
	memcpy(kbuf + 4, source, len);
	k.mv_size = 4 + len;
	k.mv_data = kbuf;
	if ((rc = mdb_get(t->txn, t->s->meta, &k, &v)) != 0)
		return store_mdb_err(rc);
	if (v.mv_size != 1)
		return ERR_STORE;
	return *(const uint8_t *)v.mv_data;
}
