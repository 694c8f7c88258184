/*
 * health.c: the health DBI (address -> status, changed-at, who said so).
 * Written by the probe and the etcd watcher, read per answer by workers
 * (which skip it entirely while store_health_empty()).
 */
#include "store/store.h"

#include <string.h>
#include <time.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store_internal.h"

static bool addr_ok(const uint8_t *addr, size_t addrlen)
{
	return addr && (addrlen == 4 || addrlen == 16);
}

int store_health_get(store_rtxn_t *t, const uint8_t *addr, size_t addrlen)
{
	MDB_val k = {addrlen, (void *)addr}, v;
	int rc;

	if (!addr_ok(addr, addrlen))
		return ERR_INVAL;
	rc = mdb_get(t->txn, t->s->health, &k, &v);
	if (rc == MDB_NOTFOUND)
		return STORE_HEALTH_UNKNOWN;
	if (rc != 0)
		return store_mdb_err(rc);
	if (v.mv_size < STORE_HEALTH_HDR)
		return ERR_STORE;
	return *(const uint8_t *)v.mv_data;
}

static uint64_t read_u64(const uint8_t *p)
{
	return ((uint64_t)wire_read_u32(p) << 32) | wire_read_u32(p + 4);
}

int store_health_lookup(store_rtxn_t *t, const uint8_t *addr, size_t addrlen,
			store_health_rec_t *out)
{
	MDB_val k = {addrlen, (void *)addr}, v;
	const uint8_t *p;
	size_t n;
	int rc;

	if (!addr_ok(addr, addrlen))
		return ERR_INVAL;
	if ((rc = mdb_get(t->txn, t->s->health, &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? ERR_NOTFOUND : store_mdb_err(rc);
	if (v.mv_size < STORE_HEALTH_HDR)
		return ERR_STORE;
	p = v.mv_data;
	n = v.mv_size - STORE_HEALTH_HDR;
	if (n >= sizeof(out->source))
		n = sizeof(out->source) - 1;
	out->status = p[0];
	out->changed_ms = read_u64(p + 1);
	memcpy(out->source, p + STORE_HEALTH_HDR, n);
	out->source[n] = '\0';
	return 0;
}

int store_health_iter(store_rtxn_t *t, store_health_fn fn, void *ctx)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	char src[STORE_SOURCE_MAX];
	int rc, ret;

	if ((rc = mdb_cursor_open(t->txn, t->s->health, &cur)) != 0)
		return store_mdb_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *p = v.mv_data;
		if (v.mv_size < STORE_HEALTH_HDR) {
			ret = ERR_STORE;
			goto out;
		}
		/* The value holds the source without a NUL. */
		size_t n = v.mv_size - STORE_HEALTH_HDR;
		if (n >= sizeof(src))
			n = sizeof(src) - 1;
		memcpy(src, p + STORE_HEALTH_HDR, n);
		src[n] = '\0';
		ret = fn(ctx, k.mv_data, k.mv_size, p[0], read_u64(p + 1), src);
		if (ret != 0)
			goto out;
	}
	ret = rc == MDB_NOTFOUND ? 0 : store_mdb_err(rc);
out:
	mdb_cursor_close(cur);
	return ret;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int store_health_set(store_wtxn_t *w, const uint8_t *addr, size_t addrlen, int status,
		     const char *source)
{
	uint8_t buf[STORE_HEALTH_HDR + STORE_SOURCE_MAX];
	size_t n = source ? strlen(source) : 0;
	uint64_t ms = now_ms();

	if (!addr_ok(addr, addrlen) || status < STORE_HEALTH_UNKNOWN || status > STORE_HEALTH_DOWN)
		return ERR_INVAL;
	if (n >= STORE_SOURCE_MAX)
		return ERR_INVAL;
	buf[0] = (uint8_t)status;
	wire_write_u32(buf + 1, (uint32_t)(ms >> 32));
	wire_write_u32(buf + 5, (uint32_t)ms);
	if (n)
		memcpy(buf + STORE_HEALTH_HDR, source, n);
	MDB_val k = {addrlen, (void *)addr}, v = {STORE_HEALTH_HDR + n, buf};
	return store_mdb_err(mdb_put(w->txn, w->s->health, &k, &v, 0));
}

int store_health_del(store_wtxn_t *w, const uint8_t *addr, size_t addrlen)
{
	MDB_val k = {addrlen, (void *)addr};

	if (!addr_ok(addr, addrlen))
		return ERR_INVAL;
	return store_mdb_err(mdb_del(w->txn, w->s->health, &k, NULL));
}
