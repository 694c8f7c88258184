/*
 * store.c: the LMDB environment, schema set-up and version check, MDB error
 * translation, and the read txn handle lifecycle (reset/renew per batch).
 *
 * Durability: the env is opened without MDB_NOSYNC/MDB_NOMETASYNC, so a
 * commit that returned 0 survives kill -9 and power loss.
 */
#include "store/store.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store_internal.h"

int store_mdb_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return ERR_NOTFOUND;
	case MDB_MAP_FULL:
		store_gate_note_full(); /* the next write txn may find a larger map (gate.c) */
		return ERR_SPACE;
	case MDB_TXN_FULL:
		return ERR_SPACE;
	case MDB_READERS_FULL:
		return -EUSERS;
	case MDB_MAP_RESIZED:
		return -EBUSY; /* still resized after the remaps a call may try */
	case MDB_KEYEXIST:
		return ERR_CONFLICT;
	case MDB_BAD_VALSIZE:
		return ERR_INVAL;
	default:
		break;
	}
	/* errno values are positive; every MDB_* code is negative. */
	if (rc > 0)
		return -rc;
	return ERR_STORE;
}

static int mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char c = path[i];
		path[i] = '\0';
		if (mkdir(path, 0750) < 0 && errno != EEXIST)
			return -errno;
		path[i] = c;
	}
	return 0;
}

int store_meta_get_u64(MDB_txn *txn, MDB_dbi meta, const char *key, uint64_t *out)
{
	MDB_val k = {strlen(key), (void *)key}, v;
	int rc = mdb_get(txn, meta, &k, &v);

	if (rc == MDB_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rc != 0)
		return store_mdb_err(rc);
	if (v.mv_size != 8)
		return ERR_STORE;
	const uint8_t *p = v.mv_data;
	*out = ((uint64_t)wire_read_u32(p) << 32) | wire_read_u32(p + 4);
	return 0;
}

/* A fresh store gets the version; an older one is upgraded (store_shape_init builds what
 * it lacks in the same txn); a newer one is refused. */
static int schema_check(MDB_txn *txn, MDB_dbi meta)
{
	MDB_val k = {7, "version"}, v;
	uint8_t buf[4];
	int rc = mdb_get(txn, meta, &k, &v);

	if (rc == MDB_NOTFOUND) {
		wire_write_u32(buf, STORE_SCHEMA_VERSION);
		v.mv_size = sizeof(buf);
		v.mv_data = buf;
		return store_mdb_err(mdb_put(txn, meta, &k, &v, 0));
	}
	if (rc != 0)
		return store_mdb_err(rc);
	if (v.mv_size != 4 || wire_read_u32(v.mv_data) > STORE_SCHEMA_VERSION)
		return ERR_STORE;
	if (wire_read_u32(v.mv_data) < STORE_SCHEMA_VERSION) {
		wire_write_u32(buf, STORE_SCHEMA_VERSION);
		v.mv_size = sizeof(buf);
		v.mv_data = buf;
		return store_mdb_err(mdb_put(txn, meta, &k, &v, 0));
	}
	return 0;
}

static int schema_open(store_t *s)
{
	MDB_txn *txn = NULL;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

	/* Another process may have grown the map since mdb_env_open read its size. */
	if (rc == MDB_MAP_RESIZED && (rc = mdb_env_set_mapsize(s->env, 0)) == 0)
		rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0)
		return store_mdb_err(rc);
	if ((rc = mdb_dbi_open(txn, "rrsets", MDB_CREATE, &s->rrsets)) != 0 ||
	    (rc = mdb_dbi_open(txn, "bysrc", MDB_CREATE, &s->bysrc)) != 0 ||
	    (rc = mdb_dbi_open(txn, "health", MDB_CREATE, &s->health)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) != 0) {
		mdb_txn_abort(txn);
		return store_mdb_err(rc);
	}
	if ((rc = schema_check(txn, s->meta)) < 0 ||
	    (rc = store_shape_init(txn, s->rrsets, s->meta)) < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return store_mdb_err(mdb_txn_commit(txn));
}

/*
 * root running `skydns -import` into the data directory of a service that runs
 * as its own account (the package's /var/lib/skydns, owned by skydns) would
 * leave data.mdb and lock.mdb owned by root, and the service then fails to
 * open its store. Files root just created or owns there go to the directory's
 * owner instead; nothing changes for any other caller. No symlinks followed.
 */
static void give_to_dir_owner(const char *dir)
{
	static const char *const files[] = {"data.mdb", "lock.mdb"};
	struct stat d, f;
	int dfd;

	if (geteuid() != 0 || (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return;
	if (fstat(dfd, &d) == 0 && d.st_uid != 0) {
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
			if (fstatat(dfd, files[i], &f, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(f.st_mode) && f.st_uid == 0)
				(void)fchownat(dfd, files[i], d.st_uid, d.st_gid,
					       AT_SYMLINK_NOFOLLOW);
	}
	close(dfd);
}

int store_open(store_t **out, const char *dir, size_t mapsize, unsigned flags)
{
	store_t *s = NULL;
	int ret, rc;

	if (!out || !dir || mapsize == 0)
		return ERR_INVAL;
	if ((ret = mkdir_p(dir)) < 0)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->flags = flags;
	if ((ret = store_gate_init(s)) < 0) {
		free(s);
		return ret;
	}
	if ((rc = mdb_env_create(&s->env)) != 0) {
		store_gate_deinit(s);
		free(s);
		return store_mdb_err(rc);
	}
	/* NOTLS: a worker's read handle outlives reset/renew and may sit on a
	 * thread that also runs a write txn; NORDAHEAD: random access. */
	if ((rc = mdb_env_set_maxdbs(s->env, 8)) != 0 ||
	    (rc = mdb_env_set_maxreaders(s->env, 512)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, mapsize)) != 0 ||
	    (rc = mdb_env_open(s->env, dir, MDB_NOTLS | MDB_NORDAHEAD, 0640)) != 0) {
		ret =
		    rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ? ERR_STORE : store_mdb_err(rc);
		goto fail;
	}
	give_to_dir_owner(dir);
	if ((ret = schema_open(s)) < 0)
		goto fail;
	MDB_envinfo info;
	if (mdb_env_info(s->env, &info) == 0)
		atomic_store(&s->map_bytes, info.me_mapsize);
	*out = s;
	return 0;
fail:
	mdb_env_close(s->env);
	store_gate_deinit(s);
	free(s);
	return ret;
}

void store_release_map(store_t *s)
{
	/* mdb_env_info's me_mapaddr is set only for MDB_FIXEDMAP, so the map is found
	 * in /proc/self/maps by the data file's device and inode. */
	mdb_filehandle_t fd;
	struct stat st;
	char line[512];
	FILE *f;

	if (mdb_env_get_fd(s->env, &fd) != 0 || fstat(fd, &st) != 0 ||
	    !(f = fopen("/proc/self/maps", "re")))
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		unsigned maj, mnr;
		if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &lo, &hi, &maj, &mnr, &ino) == 5 &&
		    ino == (unsigned long)st.st_ino && makedev(maj, mnr) == st.st_dev)
			(void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
	}
	fclose(f);
}

void store_close(store_t *s)
{
	if (!s)
		return;
	mdb_env_close(s->env);
	store_gate_deinit(s);
	free(s);
}

void store_stats(store_t *s, store_stats_t *out)
{
	out->map_resizes = atomic_load_explicit(&s->resizes, memory_order_relaxed);
	out->map_bytes = atomic_load_explicit(&s->map_bytes, memory_order_relaxed);
}

int store_check(store_t *s)
{
	store_rtxn_t *t = NULL;
	int ret = store_read_begin(s, &t);

	store_read_end(t);
	return ret;
}

int store_reader_check(store_t *s)
{
	int dead = 0;
	int rc = mdb_reader_check(s->env, &dead);

	return rc ? store_mdb_err(rc) : dead;
}

/* Cache what the query path asks per query, once per snapshot. */
static int rtxn_load(store_rtxn_t *t)
{
	MDB_stat st;
	int rc = mdb_stat(t->txn, t->s->health, &st);

	if (rc != 0)
		return store_mdb_err(rc);
	t->nhealth = st.ms_entries;
	if ((rc = mdb_stat(t->txn, t->s->rrsets, &st)) != 0)
		return store_mdb_err(rc);
	t->nrrsets = st.ms_entries;
	if ((rc = store_shape_load(t)) < 0)
		return rc;
	return store_meta_get_u64(t->txn, t->s->meta, "generation", &t->gen);
}

/*
 * LMDB 0.9 takes a reader's txn id, then copies the roots from that id's meta
 * page; two commits in between rewrite the page, so the txn may hold a newer
 * snapshot than its id says (libmdbx re-checks for this; LMDB does not). The
 * id is trusted as the snapshot's name only when no commit has happened since:
 * the newest committed id is still ours. Seen in test_store's reader race on a
 * busy machine (2 runs in 100).
 */
static bool snapshot_is_newest(store_rtxn_t *t)
{
	MDB_envinfo info;

	return mdb_env_info(t->s->env, &info) == 0 && info.me_last_txnid == mdb_txn_id(t->txn);
}

/*
 * Enter the gate and take a snapshot: a fresh txn when t->txn is NULL, else renew
 * the reset one. MDB_MAP_RESIZED (another process grew the map past ours) re-maps
 * and tries again. @return 0 inside the gate, or an error outside it.
 */
static int snapshot(store_rtxn_t *t)
{
	store_t *s = t->s;
	unsigned epoch;
	int ret, rc;

	for (int tries = 0;; tries++) {
		if ((ret = store_gate_enter(s, &t->busy)) < 0)
			return ret;
		rc = t->txn ? mdb_txn_renew(t->txn)
			    : mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->txn);
		if (rc == 0)
			break;
		store_gate_exit(&t->busy);
		/* Each try follows a commit that outgrew the map again: a few are plenty. */
		if (rc != MDB_MAP_RESIZED || tries == 2)
			return store_mdb_err(rc);
		if ((ret = store_gate_remap(s, false)) < 0)
			return ret;
	}
	/* Stable until we leave the gate: a remap waits for us. */
	epoch = atomic_load(&s->epoch);
	if (epoch != t->epoch) {
		t->epoch = epoch;
		t->loaded_id = 0; /* the cached facts and lookup slots point into the old map */
	}
	return 0;
}

int store_read_begin(store_t *s, store_rtxn_t **out)
{
	store_rtxn_t *t = calloc(1, sizeof(*t));
	int ret, rc;

	if (!t)
		return -ENOMEM;
	t->s = s;
	t->epoch = atomic_load(&s->epoch);
	store_gate_add(s, t); /* before the first entry, so a remapper waits for it */
	if ((ret = snapshot(t)) < 0) {
		store_gate_del(s, t);
		free(t);
		return ret;
	}
	if ((rc = mdb_cursor_open(t->txn, s->rrsets, &t->cur)) != 0) {
		ret = store_mdb_err(rc);
		goto fail;
	}
	if ((ret = rtxn_load(t)) < 0)
		goto fail;
	t->loaded_id = snapshot_is_newest(t) ? mdb_txn_id(t->txn) : 0;
	t->live = true;
	*out = t;
	return 0;
fail:
	if (t->cur)
		mdb_cursor_close(t->cur);
	mdb_txn_abort(t->txn);
	store_gate_exit(&t->busy);
	store_gate_del(s, t);
	free(t);
	return ret;
}

void store_read_reset(store_rtxn_t *t)
{
	if (!t || t->view || !t->live)
		return;
	mdb_txn_reset(t->txn);
	t->live = false;
	store_gate_exit(&t->busy);
}

/* Undo a renew that entered the gate but cannot hand out the snapshot. */
static int renew_fail(store_rtxn_t *t, int ret)
{
	mdb_txn_reset(t->txn);
	store_gate_exit(&t->busy);
	return ret;
}

int store_read_renew(store_rtxn_t *t)
{
	int rc;

	if (t->view)
		return 0;
	store_read_reset(t); /* renew on a live handle = a fresh snapshot */
	if ((rc = snapshot(t)) < 0)
		return rc;
	if ((rc = mdb_cursor_renew(t->txn, t->cur)) != 0)
		return renew_fail(t, store_mdb_err(rc));
	/* Same txn id = same snapshot (no commit since): gen, nhealth and the lookup cache
	 * still hold, and the lookups they cost are skipped on most batches of the worker.
	 * After a commit, store_cache_sync forgets what the commit log says changed. */
	store_cache_tick(t);
	if (mdb_txn_id(t->txn) != t->loaded_id || !snapshot_is_newest(t)) {
		if ((rc = rtxn_load(t)) < 0) {
			store_cache_drop(t);
			return renew_fail(t, rc);
		}
		/* Only the names the commits since changed leave the cache (issue 16). */
		if ((rc = store_cache_sync(t)) < 0)
			return renew_fail(t, rc);
		store_cache_fit(t);
		/* An id that may not name this snapshot names nothing: load again next time. */
		t->loaded_id = snapshot_is_newest(t) ? mdb_txn_id(t->txn) : 0;
	}
	t->live = true;
	return 0;
}

void store_read_end(store_rtxn_t *t)
{
	if (!t || t->view)
		return;
	store_read_reset(t);
	store_gate_del(t->s, t);
	store_cache_free(t);
	mdb_cursor_close(t->cur);
	mdb_txn_abort(t->txn);
	free(t);
}

uint64_t store_generation(store_rtxn_t *t)
{
	uint64_t gen;

	/* A view sees its own writes, so it cannot use a cached value. */
	if (t->view && store_meta_get_u64(t->txn, t->s->meta, "generation", &gen) == 0)
		return gen;
	return t->gen;
}

bool store_health_empty(store_rtxn_t *t)
{
	MDB_stat st;

	if (t->view)
		return mdb_stat(t->txn, t->s->health, &st) != 0 || st.ms_entries == 0;
	return t->nhealth == 0;
}
