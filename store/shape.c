/*
 * shape.c: what the query path needs to know about the whole store to skip the
 * zone-cut and wildcard walks (issue 17 performance): the owner keys of every
 * NS rrset (meta "nsown:" || key, one per NS rrset) and the count of rrsets
 * whose owner has a "*" label (meta "wild-rrsets"). Writers keep both in the
 * same write txn as the rrset they create or delete; readers load them once
 * per snapshot (rtxn_load).
 *
 * Why owners and not a count of NS: nearly every imported zone has an apex NS,
 * which is never a cut, so "no NS at all" would almost never hold. The list lets
 * the server tell the apex NS apart from a delegation without knowing the store's
 * zones here, and costs one length compare per NS owner per query.
 */
#include "store/store.h"

#include <string.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store_internal.h"

#define NSOWN_PREFIX "nsown:"
#define NSOWN_PLEN 6
#define SHAPE_MARK "shape-v1" /* the index covers every rrset (set at open) */

/* True when the name key has a "*" label: its owner is or sits below a wildcard. */
static bool key_has_star(const uint8_t *key, size_t keylen)
{
	size_t pos = 0;

	/* Bounded: each step moves past one label of a key the store built. */
	while (pos < keylen) {
		size_t l = key[pos];
		if (l == 1 && pos + 1 < keylen && key[pos + 1] == '*')
			return true;
		pos += l + 1;
	}
	return false;
}

static int wild_add(MDB_txn *txn, MDB_dbi meta, int delta)
{
	uint64_t n;
	uint8_t buf[8];
	int ret = store_meta_get_u64(txn, meta, "wild-rrsets", &n);

	if (ret < 0)
		return ret;
	/* Never below zero: a count that drifted would only cost walks, not answers. */
	n = delta < 0 ? (n > 0 ? n - 1 : 0) : n + 1;
	wire_write_u32(buf, (uint32_t)(n >> 32));
	wire_write_u32(buf + 4, (uint32_t)n);
	MDB_val k = {11, "wild-rrsets"}, v = {8, buf};
	return store_mdb_err(mdb_put(txn, meta, &k, &v, 0));
}

static int nsown_set(MDB_txn *txn, MDB_dbi meta, const uint8_t *key, size_t keylen, bool present)
{
	uint8_t buf[NSOWN_PLEN + WIRE_KEY_MAX];
	MDB_val k = {NSOWN_PLEN + keylen, buf}, v = {0, buf};
	int rc;

	memcpy(buf, NSOWN_PREFIX, NSOWN_PLEN);
	memcpy(buf + NSOWN_PLEN, key, keylen);
	if (present)
		return store_mdb_err(mdb_put(txn, meta, &k, &v, 0));
	rc = mdb_del(txn, meta, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : store_mdb_err(rc);
}

/* Note one rrset (rrsets key: name key || 0 || type) created (delta 1) or deleted (-1). */
static int note(MDB_txn *txn, MDB_dbi meta, const uint8_t *rkey, size_t rkeylen, int delta)
{
	size_t keylen;
	int ret = 0;

	if (rkeylen < STORE_KEY_EXTRA)
		return ERR_STORE;
	keylen = rkeylen - STORE_KEY_EXTRA;
	if (wire_read_u16(rkey + rkeylen - 2) == WIRE_TYPE_NS)
		ret = nsown_set(txn, meta, rkey, keylen, delta > 0);
	if (ret == 0 && key_has_star(rkey, keylen))
		ret = wild_add(txn, meta, delta);
	return ret;
}

int store_shape_note(store_wtxn_t *w, const uint8_t *rkey, size_t rkeylen, int delta)
{
	return note(w->txn, w->s->meta, rkey, rkeylen, delta);
}

int store_shape_init(MDB_txn *txn, MDB_dbi rrsets, MDB_dbi meta)
{
	MDB_val mk = {8, SHAPE_MARK}, k, v;
	MDB_cursor *cur = NULL;
	int rc, ret;

	if ((rc = mdb_get(txn, meta, &mk, &v)) != MDB_NOTFOUND)
		return store_mdb_err(rc);
	/* A store from before the index: one pass over it, once. */
	if ((rc = mdb_cursor_open(txn, rrsets, &cur)) != 0)
		return store_mdb_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if ((ret = note(txn, meta, k.mv_data, k.mv_size, 1)) < 0)
			goto out;
	}
	if (rc != MDB_NOTFOUND) {
		ret = store_mdb_err(rc);
		goto out;
	}
	v.mv_size = 0;
	v.mv_data = &v;
	ret = store_mdb_err(mdb_put(txn, meta, &mk, &v, 0));
out:
	mdb_cursor_close(cur);
	return ret;
}

int store_shape_load(store_rtxn_t *t)
{
	MDB_cursor *cur = NULL;
	MDB_val k = {NSOWN_PLEN, NSOWN_PREFIX}, v;
	uint64_t wild;
	size_t used = 0, n = 0;
	int rc, ret;

	t->nnsown = -1;
	if ((ret = store_meta_get_u64(t->txn, t->s->meta, "wild-rrsets", &wild)) < 0)
		return ret;
	t->wild = wild > 0;
	if ((rc = mdb_cursor_open(t->txn, t->s->meta, &cur)) != 0)
		return store_mdb_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		size_t l = k.mv_size - NSOWN_PLEN;
		if (k.mv_size < NSOWN_PLEN || memcmp(k.mv_data, NSOWN_PREFIX, NSOWN_PLEN) != 0)
			break;
		/* Too many to compare per query: the caller walks instead (still correct). */
		if (n == STORE_NSOWN_MAX || used + l > sizeof(t->nsbuf)) {
			ret = 0;
			goto out;
		}
		memcpy(t->nsbuf + used, (const uint8_t *)k.mv_data + NSOWN_PLEN, l);
		t->nsown[n].key = t->nsbuf + used;
		t->nsown[n].len = l;
		used += l;
		n++;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		ret = store_mdb_err(rc);
		goto out;
	}
	t->nnsown = (int)n;
	ret = 0;
out:
	mdb_cursor_close(cur);
	return ret;
}

int store_ns_owners(store_rtxn_t *t, const store_key_t **owners)
{
	/* A view sees its own uncommitted writes: no per-snapshot list to trust. */
	if (t->view || t->nnsown < 0)
		return ERR_TOOBIG;
	*owners = t->nsown;
	return t->nnsown;
}

bool store_may_have_wildcards(store_rtxn_t *t)
{
	return t->view || t->wild;
}
