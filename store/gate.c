/*
 * gate.c: re-mapping the LMDB environment while other threads of this
 * process read and write it (issue 10 item 8; the scheme is in store.h).
 *
 * Every read handle and every write txn holds a "busy" count while it uses
 * the map, taken and dropped with sequentially consistent atomics. The
 * remapper raises `remapping`, then waits until no count is held; a thread
 * entering sees `remapping` and backs off. Either the entering thread sees
 * the flag or the remapper sees its count (both sides store, then load:
 * Dekker's pattern), so nothing touches the map while it moves.
 */
#include "store/store.h"

#include <errno.h>
#include <time.h>

#include <lmdb.h>

#include "common/err.h"
#include "common/log.h"
#include "store/store_internal.h"

/*
 * A remap waits this long for every reader to reset. Readers reset after a worker's batch
 * or an API request (micro- to milliseconds), and the wait ends the moment they have;
 * the bound is for a holder that is descheduled: on a loaded machine (2 cores, load 14)
 * renews were seen to take over 500 ms without any remap. Waiting beats SERVFAIL.
 */
#define GATE_QUIESCE_MS 1000
/* After a remap found no quiet in time, others fail fast this long instead of waiting too. */
#define GATE_BACKOFF_MS 100
/* Entries tried while remaps keep coming, before the caller gets -EBUSY. */
#define GATE_ENTER_TRIES 4

/* Busy handles of this thread, on any store: a thread that holds one cannot wait for all. */
static _Thread_local unsigned tl_busy;
/* Set by store_mdb_err when LMDB said MDB_MAP_FULL on this thread's write txn. */
static _Thread_local bool tl_map_full;

int store_gate_init(store_t *s)
{
	int rc = pthread_mutex_init(&s->gate_lock, NULL);

	return rc ? -rc : 0;
}

void store_gate_deinit(store_t *s)
{
	pthread_mutex_destroy(&s->gate_lock);
}

void store_gate_note_full(void)
{
	tl_map_full = true;
}

int store_gate_enter(store_t *s, atomic_int *busy)
{
	int dead;

	for (int i = 0; i < GATE_ENTER_TRIES; i++) {
		if ((dead = atomic_load_explicit(&s->dead, memory_order_acquire)) != 0)
			return dead;
		atomic_fetch_add(busy, 1);
		if (!atomic_load(&s->remapping)) {
			tl_busy++;
			return 0;
		}
		atomic_fetch_sub(busy, 1);
		/* Our other busy handle is what the remapper waits for: back off, do not wait. */
		if (tl_busy)
			return -EBUSY;
		/* The remapper holds the lock for the whole remap: this waits until it is done. */
		pthread_mutex_lock(&s->gate_lock);
		pthread_mutex_unlock(&s->gate_lock);
	}
	return -EBUSY;
}

void store_gate_exit(atomic_int *busy)
{
	/* Release: every access to the map before this is done before a remapper sees 0. */
	atomic_fetch_sub_explicit(busy, 1, memory_order_release);
	tl_busy--;
}

void store_gate_add(store_t *s, store_rtxn_t *t)
{
	pthread_mutex_lock(&s->gate_lock);
	t->next = s->handles;
	t->prev = NULL;
	if (s->handles)
		s->handles->prev = t;
	s->handles = t;
	pthread_mutex_unlock(&s->gate_lock);
}

void store_gate_del(store_t *s, store_rtxn_t *t)
{
	pthread_mutex_lock(&s->gate_lock);
	if (t->prev)
		t->prev->next = t->next;
	else
		s->handles = t->next;
	if (t->next)
		t->next->prev = t->prev;
	pthread_mutex_unlock(&s->gate_lock);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool quiet(store_t *s)
{
	if (atomic_load(&s->writers) != 0)
		return false;
	for (store_rtxn_t *t = s->handles; t; t = t->next) {
		if (atomic_load(&t->busy) != 0)
			return false;
	}
	return true;
}

/* Under gate_lock with `remapping` raised. @return 0 when nothing uses the map. */
static int quiesce(store_t *s)
{
	struct timespec pause = {0, 50 * 1000};
	uint64_t end = mono_ms() + GATE_QUIESCE_MS;

	while (!quiet(s)) {
		if (mono_ms() >= end)
			return -EBUSY;
		nanosleep(&pause, NULL);
	}
	return 0;
}

static size_t map_size(store_t *s)
{
	MDB_envinfo info;

	return mdb_env_info(s->env, &info) == 0 ? info.me_mapsize : 0;
}

/* True when the newest commit (by any process) uses pages beyond our map. */
static bool map_too_small(store_t *s)
{
	MDB_envinfo info;
	MDB_stat st;

	if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
		return false;
	return (info.me_last_pgno + 1) * (size_t)st.ms_psize > info.me_mapsize;
}

/*
 * mdb_env_set_mapsize(env, 0) maps the size the newest meta page records
 * (the largest any process configured and committed with), at least the
 * data. Nothing may use the map now: LMDB munmaps it first.
 */
static int remap_now(store_t *s, bool grow)
{
	size_t before = map_size(s), after;
	int rc;

	if (!grow && !map_too_small(s))
		return 0; /* another thread re-mapped while we waited */
	if ((rc = mdb_env_set_mapsize(s->env, 0)) == 0 && (after = map_size(s)) < before)
		rc = mdb_env_set_mapsize(s->env, before); /* the meta lags our own size */
	if (rc != 0) {
		/* LMDB unmapped first: no map is left, and nothing may touch the env again. */
		atomic_store_explicit(&s->dead, ERR_STORE, memory_order_release);
		log_err("store: re-mapping the grown store failed (%s): restart skydns",
			err_str(store_mdb_err(rc)));
		return ERR_STORE;
	}
	after = map_size(s);
	atomic_store(&s->map_bytes, after);
	atomic_fetch_add(&s->epoch, 1);
	if (after != before) {
		atomic_fetch_add_explicit(&s->resizes, 1, memory_order_relaxed);
		/* Once per growth by another process: rare enough to log from any thread. */
		log_info("store: map re-mapped from %zu to %zu MiB", before >> 20, after >> 20);
	}
	return 0;
}

int store_gate_remap(store_t *s, bool grow)
{
	int ret;

	if (tl_busy || mono_ms() < atomic_load(&s->remap_after))
		return -EBUSY;
	pthread_mutex_lock(&s->gate_lock);
	atomic_store(&s->remapping, true);
	if ((ret = quiesce(s)) == -EBUSY)
		atomic_store(&s->remap_after, mono_ms() + GATE_BACKOFF_MS);
	if (ret == 0 && (ret = atomic_load(&s->dead)) == 0)
		ret = remap_now(s, grow);
	if (ret == 0 && grow)
		atomic_store(&s->grow, false);
	atomic_store(&s->remapping, false);
	pthread_mutex_unlock(&s->gate_lock);
	return ret;
}

bool store_gate_take_full(void)
{
	bool full = tl_map_full;

	tl_map_full = false;
	return full;
}
