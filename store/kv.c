/*
 * kv.c: u64 meta values and per-namespace raw key/value copies, both in the
 * meta DBI under their own key prefixes ("u64:", "kv:<ns>:") so they never
 * meet store.c's own meta keys. Used by the watchers (store.h).
 */
#include "store/store.h"

#include <errno.h>
#include <string.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store_internal.h"

#define KV_BUF (8 + STORE_KV_KEY_MAX)

/* "kv:<ns>:" || key into buf. @return length or ERR_TOOBIG. */
static int kv_key(const char *ns, const uint8_t *key, size_t klen, uint8_t *buf)
{
	size_t nl = strlen(ns), len = 3 + nl + 1 + klen;

	if (len > STORE_KV_KEY_MAX)
		return ERR_TOOBIG;
	memcpy(buf, "kv:", 3);
	memcpy(buf + 3, ns, nl);
	buf[3 + nl] = ':';
	if (klen)
		memcpy(buf + 4 + nl, key, klen);
	return (int)len;
}

static int u64_key(const char *key, uint8_t *buf)
{
	return kv_key("u64", (const uint8_t *)key, strlen(key), buf);
}

int store_meta_u64(store_rtxn_t *t, const char *key, uint64_t *out)
{
	uint8_t buf[KV_BUF];
	int n = u64_key(key, buf), rc;
	MDB_val k, v;

	if (n < 0)
		return n;
	k.mv_size = (size_t)n;
	k.mv_data = buf;
	if ((rc = mdb_get(t->txn, t->s->meta, &k, &v)) != 0)
		return store_mdb_err(rc);
	if (v.mv_size != 8)
		return ERR_STORE;
	const uint8_t *p = v.mv_data;
	*out = ((uint64_t)wire_read_u32(p) << 32) | wire_read_u32(p + 4);
	return 0;
}

int store_meta_put_u64(store_wtxn_t *w, const char *key, uint64_t val)
{
	uint8_t buf[KV_BUF], vb[8];
	int n = u64_key(key, buf);

	if (n < 0)
		return n;
	wire_write_u32(vb, (uint32_t)(val >> 32));
	wire_write_u32(vb + 4, (uint32_t)val);
	MDB_val k = {(size_t)n, buf}, v = {8, vb};
	return store_mdb_err(mdb_put(w->txn, w->s->meta, &k, &v, 0));
}

int store_meta_del_u64(store_wtxn_t *w, const char *key)
{
	uint8_t buf[KV_BUF];
	int n = u64_key(key, buf), rc;

	if (n < 0)
		return n;
	MDB_val k = {(size_t)n, buf};
	rc = mdb_del(w->txn, w->s->meta, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : store_mdb_err(rc);
}

int store_kv_put(store_wtxn_t *w, const char *ns, const uint8_t *key, size_t klen,
		 const uint8_t *val, size_t vlen)
{
	uint8_t buf[KV_BUF];
	int n = kv_key(ns, key, klen, buf);

	if (n < 0)
		return n;
	if (w->s->flags & STORE_F_RDONLY)
		return ERR_READONLY;
	MDB_val k = {(size_t)n, buf}, v = {vlen, (void *)val};
	return store_mdb_err(mdb_put(w->txn, w->s->meta, &k, &v, 0));
}

int store_kv_get(store_rtxn_t *t, const char *ns, const uint8_t *key, size_t klen,
		 const uint8_t **val, size_t *vlen)
{
	uint8_t buf[KV_BUF];
	int n = kv_key(ns, key, klen, buf), rc;
	MDB_val k, v;

	if (n < 0)
		return n;
	k.mv_size = (size_t)n;
	k.mv_data = buf;
	if ((rc = mdb_get(t->txn, t->s->meta, &k, &v)) != 0)
		return store_mdb_err(rc);
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

int store_kv_del(store_wtxn_t *w, const char *ns, const uint8_t *key, size_t klen)
{
	uint8_t buf[KV_BUF];
	int n = kv_key(ns, key, klen, buf);

	if (n < 0)
		return n;
	MDB_val k = {(size_t)n, buf};
	return store_mdb_err(mdb_del(w->txn, w->s->meta, &k, NULL));
}

/* Walk ns||prefix with a cursor; del removes each key found instead of calling fn. */
static int kv_walk(MDB_txn *txn, MDB_dbi dbi, const char *ns, const uint8_t *prefix, size_t plen,
		   bool del, store_kv_fn fn, void *ctx)
{
	uint8_t buf[KV_BUF];
	int n = kv_key(ns, prefix, plen, buf), rc, ret = 0;
	size_t hl = strlen(ns) + 4;
	MDB_cursor *cur = NULL;
	MDB_val k, v;

	if (n < 0)
		return n;
	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return store_mdb_err(rc);
	k.mv_size = (size_t)n;
	k.mv_data = buf;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < (size_t)n || memcmp(k.mv_data, buf, (size_t)n) != 0)
			break;
		if (del)
			ret = store_mdb_err(mdb_cursor_del(cur, 0));
		else
			ret = fn(ctx, (const uint8_t *)k.mv_data + hl, k.mv_size - hl, v.mv_data,
				 v.mv_size);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
		ret = store_mdb_err(rc);
	mdb_cursor_close(cur);
	return ret;
}

int store_kv_clear(store_wtxn_t *w, const char *ns)
{
	if (w->s->flags & STORE_F_RDONLY)
		return ERR_READONLY;
	return kv_walk(w->txn, w->s->meta, ns, NULL, 0, true, NULL, NULL);
}

int store_kv_iter(store_rtxn_t *t, const char *ns, const uint8_t *prefix, size_t plen,
		  store_kv_fn fn, void *ctx)
{
	return kv_walk(t->txn, t->s->meta, ns, prefix, plen, false, fn, ctx);
}
