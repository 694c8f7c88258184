/*
 * write.c: write txns and the record mutations (add, delete, per-source
 * clear, sources, mode). Every mutation keeps the rrsets value header count
 * and the bysrc index consistent inside the caller's one write txn, so a
 * commit publishes a whole batch and an abort leaves nothing behind.
 */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store_internal.h"

#define BYSRC_KEY_MAX (1 + WIRE_KEY_MAX + STORE_KEY_EXTRA)

/* Enter the gate and begin; MDB_MAP_RESIZED re-maps and tries again (see snapshot()). */
static int begin_txn(store_t *s, MDB_txn **txn)
{
	int ret, rc;

	/* A write ran out of map: a larger one may be recorded by now (store.h). Best effort:
	 * without it this write fails as the last one did. */
	if (atomic_load(&s->grow))
		(void)store_gate_remap(s, true);
	for (int tries = 0;; tries++) {
		if ((ret = store_gate_enter(s, &s->writers)) < 0)
			return ret;
		if ((rc = mdb_txn_begin(s->env, NULL, 0, txn)) == 0)
			return 0;
		store_gate_exit(&s->writers);
		if (rc != MDB_MAP_RESIZED || tries == 2)
			return store_mdb_err(rc);
		if ((ret = store_gate_remap(s, false)) < 0)
			return ret;
	}
}

/* After the txn ended: leave the gate, and remember a map that was too small. */
static void end_txn(store_t *s)
{
	store_gate_exit(&s->writers);
	if (store_gate_take_full())
		atomic_store(&s->grow, true);
}

int store_write_begin(store_t *s, store_wtxn_t **out)
{
	store_wtxn_t *w = calloc(1, sizeof(*w));
	int ret, rc;

	if (!w)
		return -ENOMEM;
	w->s = s;
	(void)store_gate_take_full(); /* only this txn's MDB_MAP_FULL counts */
	if ((ret = begin_txn(s, &w->txn)) < 0) {
		free(w);
		return ret;
	}
	w->view.s = s;
	w->view.txn = w->txn;
	w->view.view = true;
	if ((rc = mdb_cursor_open(w->txn, s->rrsets, &w->view.cur)) != 0) {
		ret = store_mdb_err(rc);
		goto fail;
	}
	if ((ret = store_meta_get_u64(w->txn, s->meta, "generation", &w->view.gen)) < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	mdb_txn_abort(w->txn);
	end_txn(s);
	free(w);
	return ret;
}

static int put_generation(store_wtxn_t *w, uint64_t *out)
{
	uint64_t gen;
	uint8_t buf[8];
	int ret = store_meta_get_u64(w->txn, w->s->meta, "generation", &gen);

	if (ret < 0)
		return ret;
	gen++;
	wire_write_u32(buf, (uint32_t)(gen >> 32));
	wire_write_u32(buf + 4, (uint32_t)gen);
	MDB_val k = {10, "generation"}, v = {8, buf};
	*out = gen;
	return store_mdb_err(mdb_put(w->txn, w->s->meta, &k, &v, 0));
}

void store_clog_note(store_wtxn_t *w, const uint8_t *rkey, size_t rkeylen)
{
	size_t keylen = rkeylen - STORE_KEY_EXTRA;

	if (w->clog_all || rkeylen < STORE_KEY_EXTRA)
		return;
	/* Once per name: a watcher's txn changes a few names, often several types each. */
	for (size_t p = 0; p < w->cloglen; p += 1u + w->clog[p])
		if (w->clog[p] == keylen && memcmp(w->clog + p + 1, rkey, keylen) == 0)
			return;
	if (w->cloglen + 1 + keylen > sizeof(w->clog)) {
		w->clog_all = true; /* an import or a source clear: readers start over */
		return;
	}
	w->clog[w->cloglen] = (uint8_t)keylen;
	memcpy(w->clog + w->cloglen + 1, rkey, keylen);
	w->cloglen += 1 + keylen;
}

static void clog_key(uint8_t key[12], uint64_t gen)
{
	memcpy(key, "clog", 4);
	wire_write_u32(key + 4, (uint32_t)(gen >> 32));
	wire_write_u32(key + 8, (uint32_t)gen);
}

/* This commit's log entry, and the one that falls out of the kept window. */
static int put_clog(store_wtxn_t *w, uint64_t gen)
{
	uint8_t key[12], val[1 + STORE_CLOG_BYTES];
	MDB_val k = {sizeof(key), key}, v = {1, val};
	int rc;

	clog_key(key, gen);
	val[0] = w->clog_all ? STORE_CLOG_ALL : 0;
	if (!w->clog_all) {
		memcpy(val + 1, w->clog, w->cloglen);
		v.mv_size += w->cloglen;
	}
	if ((rc = mdb_put(w->txn, w->s->meta, &k, &v, 0)) != 0)
		return store_mdb_err(rc);
	if (gen <= STORE_CLOG_KEEP)
		return 0;
	clog_key(key, gen - STORE_CLOG_KEEP);
	rc = mdb_del(w->txn, w->s->meta, &k, NULL);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_err(rc);
}

int store_write_commit(store_wtxn_t *w)
{
	uint64_t gen = 0;
	int ret = put_generation(w, &gen);

	if (ret == 0)
		ret = put_clog(w, gen);
	mdb_cursor_close(w->view.cur);
	if (ret < 0)
		mdb_txn_abort(w->txn);
	else
		ret = store_mdb_err(mdb_txn_commit(w->txn)); /* aborts on failure */
	end_txn(w->s);
	free(w);
	return ret;
}

void store_write_abort(store_wtxn_t *w)
{
	if (!w)
		return;
	mdb_cursor_close(w->view.cur);
	mdb_txn_abort(w->txn);
	end_txn(w->s);
	free(w);
}

store_rtxn_t *store_write_view(store_wtxn_t *w)
{
	return &w->view;
}

int store_source_id(store_wtxn_t *w, const char *source)
{
	char kbuf[4 + STORE_SOURCE_MAX];
	size_t len = source ? strlen(source) : 0;
	MDB_val next_k = {7, "srcnext"}, k, v;
	uint8_t id = 0;
	int ret;

	if ((ret = store_source_find(&w->view, source)) != ERR_NOTFOUND)
		return ret;
	/* Ids are never reused: a stale bysrc entry must not change owner. */
	if ((ret = mdb_get(w->txn, w->s->meta, &next_k, &v)) == 0 && v.mv_size == 1)
		id = *(const uint8_t *)v.mv_data;
	else if (ret != MDB_NOTFOUND)
		return ret ? store_mdb_err(ret) : ERR_STORE;
	if (id >= 64)
		return ERR_TOOBIG;
	memcpy(kbuf, "src:", 4);
	memcpy(kbuf + 4, source, len);
	k.mv_size = 4 + len;
	k.mv_data = kbuf;
	v.mv_size = 1;
	v.mv_data = &id;
	if ((ret = mdb_put(w->txn, w->s->meta, &k, &v, 0)) != 0)
		return store_mdb_err(ret);
	uint8_t next = id + 1;
	v.mv_data = &next;
	if ((ret = mdb_put(w->txn, w->s->meta, &next_k, &v, 0)) != 0)
		return store_mdb_err(ret);
	return id;
}

static int bysrc_put(store_wtxn_t *w, int src, const uint8_t *key, size_t keylen)
{
	uint8_t buf[BYSRC_KEY_MAX];
	MDB_val k = {keylen + 1, buf}, v = {0, buf};

	buf[0] = (uint8_t)src;
	memcpy(buf + 1, key, keylen);
	return store_mdb_err(mdb_put(w->txn, w->s->bysrc, &k, &v, 0));
}

static int bysrc_del(store_wtxn_t *w, int src, const uint8_t *key, size_t keylen)
{
	uint8_t buf[BYSRC_KEY_MAX];
	MDB_val k = {keylen + 1, buf};
	int rc;

	buf[0] = (uint8_t)src;
	memcpy(buf + 1, key, keylen);
	rc = mdb_del(w->txn, w->s->bysrc, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : store_mdb_err(rc);
}

/* Offset in the value of src's entry with this rdata, 0 when none, or ERR_STORE. */
static long find_entry(const MDB_val *v, int src, const uint8_t *rdata, uint16_t rdlen)
{
	store_rrset_t set = {.entries = (const uint8_t *)v->mv_data + STORE_RRSET_HDR,
			     .len = v->mv_size - STORE_RRSET_HDR};
	size_t pos = 0, at = 0;
	store_rr_t rr;
	int rc;

	while ((rc = store_rrset_next(&set, &at, &rr)) == 1) {
		if (rr.source_id == src && rr.rdlen == rdlen &&
		    (rdlen == 0 || memcmp(rr.rdata, rdata, rdlen) == 0))
			return (long)(STORE_RRSET_HDR + pos);
		pos = at;
	}
	return rc < 0 ? rc : 0;
}

/* Copy old value (or a fresh header) plus one new entry and put it. */
static int rrset_append(store_wtxn_t *w, MDB_val *k, const MDB_val *old, int src, uint32_t ttl,
			const uint8_t *rdata, uint16_t rdlen)
{
	size_t oldlen = old ? old->mv_size : STORE_RRSET_HDR;
	size_t len = oldlen + STORE_ENTRY_HDR + rdlen;
	uint8_t *buf;
	int ret;

	if (len > STORE_RRSET_MAX)
		return ERR_TOOBIG;
	if (!(buf = malloc(len)))
		return -ENOMEM;
	if (old)
		memcpy(buf, old->mv_data, oldlen);
	else
		memset(buf, 0, STORE_RRSET_HDR);
	uint16_t count = wire_read_u16(buf + 2);
	wire_write_u16(buf + 2, count + 1);
	uint8_t *e = buf + oldlen;
	e[0] = (uint8_t)src;
	wire_write_u32(e + 1, ttl);
	wire_write_u16(e + 5, rdlen);
	if (rdlen)
		memcpy(e + STORE_ENTRY_HDR, rdata, rdlen);
	MDB_val v = {len, buf};
	ret = store_mdb_err(mdb_put(w->txn, w->s->rrsets, k, &v, 0));
	if (ret == 0)
		store_clog_note(w, k->mv_data, k->mv_size);
	if (ret == 0 && !old)
		ret = store_shape_note(w, k->mv_data, k->mv_size, 1);
	free(buf);
	return ret;
}

/* Same entry again: rewrite its ttl only. */
static int rrset_set_ttl(store_wtxn_t *w, MDB_val *k, const MDB_val *old, size_t off, uint32_t ttl)
{
	uint8_t *buf;
	int ret;

	if (wire_read_u32((const uint8_t *)old->mv_data + off + 1) == ttl)
		return 0;
	if (!(buf = malloc(old->mv_size)))
		return -ENOMEM;
	memcpy(buf, old->mv_data, old->mv_size);
	wire_write_u32(buf + off + 1, ttl);
	MDB_val v = {old->mv_size, buf};
	ret = store_mdb_err(mdb_put(w->txn, w->s->rrsets, k, &v, 0));
	if (ret == 0)
		store_clog_note(w, k->mv_data, k->mv_size);
	free(buf);
	return ret;
}

/*
 * STORE_F_RDONLY guards records only: a server-only process keeps a
 * writable env so it may still record health (store.h).
 */
static int check_writable(store_wtxn_t *w, int src)
{
	if (w->s->flags & STORE_F_RDONLY)
		return ERR_READONLY;
	return src < 0 || src >= 64 ? ERR_INVAL : 0;
}

int store_rr_add(store_wtxn_t *w, int src, const uint8_t *name, size_t namelen, uint16_t type,
		 uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
	uint8_t key[WIRE_KEY_MAX + STORE_KEY_EXTRA];
	MDB_val k, v;
	long off = 0;
	int ret, rc, keylen;

	if ((ret = check_writable(w, src)) < 0)
		return ret;
	if ((rdlen && !rdata) || type == 0)
		return ERR_INVAL;
	if ((keylen = store_rrset_key(name, namelen, type, key)) < 0)
		return keylen;
	k.mv_size = (size_t)keylen;
	k.mv_data = key;
	rc = mdb_get(w->txn, w->s->rrsets, &k, &v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_err(rc);
	if (rc == 0) {
		if (v.mv_size < STORE_RRSET_HDR)
			return ERR_STORE;
		if ((off = find_entry(&v, src, rdata, rdlen)) < 0)
			return (int)off;
	}
	if (off > 0)
		ret = rrset_set_ttl(w, &k, &v, (size_t)off, ttl);
	else
		ret = rrset_append(w, &k, rc == 0 ? &v : NULL, src, ttl, rdata, rdlen);
	if (ret < 0)
		return ret;
	return bysrc_put(w, src, key, (size_t)keylen);
}

/*
 * Drop src's entries from one rrset (all of them when rdata is NULL, else
 * those with this rdata). Deletes the rrset when it empties and the bysrc
 * key when src has nothing left in it.
 * @return entries removed (>= 0) or an error.
 */
static int rrset_remove(store_wtxn_t *w, const uint8_t *key, size_t keylen, int src,
			const uint8_t *rdata, uint16_t rdlen)
{
	MDB_val k = {keylen, (void *)key}, v;
	int rc = mdb_get(w->txn, w->s->rrsets, &k, &v);

	if (rc == MDB_NOTFOUND)
		return bysrc_del(w, src, key, keylen);
	if (rc != 0)
		return store_mdb_err(rc);
	if (v.mv_size < STORE_RRSET_HDR)
		return ERR_STORE;
	uint8_t *buf = malloc(v.mv_size);
	if (!buf)
		return -ENOMEM;
	store_rrset_t set = {.entries = (const uint8_t *)v.mv_data + STORE_RRSET_HDR,
			     .len = v.mv_size - STORE_RRSET_HDR};
	size_t pos = 0, len = STORE_RRSET_HDR;
	unsigned kept = 0, removed = 0, src_left = 0;
	store_rr_t rr;
	memcpy(buf, v.mv_data, STORE_RRSET_HDR);
	while ((rc = store_rrset_next(&set, &pos, &rr)) == 1) {
		bool match = rr.source_id == src &&
			     (!rdata || (rr.rdlen == rdlen && memcmp(rr.rdata, rdata, rdlen) == 0));
		size_t n = STORE_ENTRY_HDR + rr.rdlen;
		if (match) {
			removed++;
			continue;
		}
		src_left += rr.source_id == src;
		memcpy(buf + len, rr.rdata - STORE_ENTRY_HDR, n);
		len += n;
		kept++;
	}
	if (rc < 0 || removed == 0)
		goto out;
	if (kept == 0) {
		rc = store_mdb_err(mdb_del(w->txn, w->s->rrsets, &k, NULL));
		if (rc == 0)
			rc = store_shape_note(w, key, keylen, -1);
	} else {
		wire_write_u16(buf + 2, (uint16_t)kept);
		MDB_val nv = {len, buf};
		rc = store_mdb_err(mdb_put(w->txn, w->s->rrsets, &k, &nv, 0));
	}
	if (rc == 0)
		store_clog_note(w, key, keylen);
	if (rc == 0 && src_left == 0)
		rc = bysrc_del(w, src, key, keylen);
out:
	free(buf);
	return rc < 0 ? rc : (int)removed;
}

/*
 * Find src's first rrset key at `namekey` with type >= `type` through the
 * bysrc index. @return rrset key length, 0 when none, or an error.
 */
static int next_src_type(store_wtxn_t *w, int src, const uint8_t *namekey, size_t nklen,
			 uint32_t type, uint8_t *out)
{
	uint8_t buf[BYSRC_KEY_MAX];
	MDB_cursor *cur = NULL;
	MDB_val k = {1 + nklen + STORE_KEY_EXTRA, buf}, v;
	int rc, ret = 0;

	buf[0] = (uint8_t)src;
	memcpy(buf + 1, namekey, nklen);
	buf[1 + nklen] = 0;
	wire_write_u16(buf + 2 + nklen, (uint16_t)type);
	if ((rc = mdb_cursor_open(w->txn, w->s->bysrc, &cur)) != 0)
		return store_mdb_err(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == 1 + nklen + STORE_KEY_EXTRA &&
	    memcmp(k.mv_data, buf, 2 + nklen) == 0) {
		memcpy(out, (const uint8_t *)k.mv_data + 1, nklen + STORE_KEY_EXTRA);
		ret = (int)(nklen + STORE_KEY_EXTRA);
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		ret = store_mdb_err(rc);
	}
	mdb_cursor_close(cur);
	return ret;
}

static int del_all_types(store_wtxn_t *w, int src, const uint8_t *key, size_t nklen)
{
	uint8_t rkey[WIRE_KEY_MAX + STORE_KEY_EXTRA];
	uint32_t type = 0;
	int total = 0, n = 0, ret;

	/* Re-seek after each rrset: deletes move the index under a cursor. */
	while (type <= 0xffff && (n = next_src_type(w, src, key, nklen, type, rkey)) > 0) {
		type = (uint32_t)wire_read_u16(rkey + nklen + 1) + 1;
		if ((ret = rrset_remove(w, rkey, (size_t)n, src, NULL, 0)) < 0)
			return ret;
		total += ret;
	}
	return n < 0 ? n : total;
}

int store_rr_del(store_wtxn_t *w, int src, const uint8_t *name, size_t namelen, uint16_t type,
		 const uint8_t *rdata, uint16_t rdlen)
{
	uint8_t key[WIRE_KEY_MAX + STORE_KEY_EXTRA];
	int ret, keylen;

	if ((ret = check_writable(w, src)) < 0)
		return ret;
	if (rdata && type == 0)
		return ERR_INVAL;
	if ((keylen = store_rrset_key(name, namelen, type, key)) < 0)
		return keylen;
	if (type == 0)
		ret = del_all_types(w, src, key, (size_t)keylen - STORE_KEY_EXTRA);
	else
		ret = rrset_remove(w, key, (size_t)keylen, src, rdata, rdlen);
	if (ret < 0)
		return ret;
	return ret > 0 ? 0 : ERR_NOTFOUND;
}

int store_source_clear(store_wtxn_t *w, int src)
{
	uint8_t first = (uint8_t)src, rkey[WIRE_KEY_MAX + STORE_KEY_EXTRA];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc, ret;

	if ((ret = check_writable(w, src)) < 0)
		return ret;
	if ((rc = mdb_cursor_open(w->txn, w->s->bysrc, &cur)) != 0)
		return store_mdb_err(rc);
	for (;;) {
		k.mv_size = 1;
		k.mv_data = &first;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || *(const uint8_t *)k.mv_data != first)
			break;
		size_t n = k.mv_size - 1;
		if (n < STORE_KEY_EXTRA || n > sizeof(rkey)) {
			ret = ERR_STORE;
			goto out;
		}
		memcpy(rkey, (const uint8_t *)k.mv_data + 1, n);
		/* Removing all of src's entries also drops this bysrc key, so
		 * the next seek makes progress. */
		if ((ret = rrset_remove(w, rkey, n, src, NULL, 0)) < 0 ||
		    (ret = bysrc_del(w, src, rkey, n)) < 0)
			goto out;
	}
	ret = rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_err(rc);
out:
	mdb_cursor_close(cur);
	return ret;
}

int store_rrset_set_mode(store_wtxn_t *w, const uint8_t *name, size_t namelen, uint16_t type,
			 uint8_t mode)
{
	uint8_t key[WIRE_KEY_MAX + STORE_KEY_EXTRA];
	MDB_val k, v;
	int rc, keylen;

	if (w->s->flags & STORE_F_RDONLY)
		return ERR_READONLY;
	if (mode > STORE_MODE_HONE_ONE)
		return ERR_INVAL;
	if ((keylen = store_rrset_key(name, namelen, type, key)) < 0)
		return keylen;
	k.mv_size = (size_t)keylen;
	k.mv_data = key;
	if ((rc = mdb_get(w->txn, w->s->rrsets, &k, &v)) != 0)
		return store_mdb_err(rc);
	if (v.mv_size < STORE_RRSET_HDR)
		return ERR_STORE;
	if (*(const uint8_t *)v.mv_data == mode)
		return 0;
	uint8_t *buf = malloc(v.mv_size);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, v.mv_data, v.mv_size);
	buf[0] = mode;
	MDB_val nv = {v.mv_size, buf};
	rc = store_mdb_err(mdb_put(w->txn, w->s->rrsets, &k, &nv, 0));
	if (rc == 0)
		store_clog_note(w, key, (size_t)keylen);
	free(buf);
	return rc;
}
