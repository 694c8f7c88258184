/*
 * sync: applies what etcd says to the store's `etcd` source, one write txn
 * per batch. It keeps etcd's raw keys and values in the store (store_kv_*,
 * namespace "etcd") next to the records derived from them, so that a change
 * re-derives only the names above the changed key, a restart resumes from
 * the stored revision, and a re-read replaces everything in one txn.
 * Health keys under ip-monitor-path become health records instead.
 * One thread (the watcher's).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "watchers/etcd.h"

struct conf;
struct store;
typedef struct sync sync_t;

typedef struct {
	uint64_t events;   /* keys applied (puts and deletes) */
	uint64_t stale;	   /* events skipped: the store already had that revision */
	uint64_t bad_keys; /* values skipped as invalid */
	uint64_t batches;  /* committed txns */
	uint64_t names;	   /* names re-derived */
} sync_stats_t;

/** @param conf, store borrowed for the sync's life. @param out owned (sync_free). */
int sync_new(sync_t **out, const struct conf *conf, struct store *store);
/** Aborts an open batch; NULL is a no-op. */
void sync_free(sync_t *s);

/** The revision the store holds (0 when never synced). @return 0 or an error. */
int sync_stored_rev(sync_t *s, int64_t *rev);

/** The etcd cluster id the stored revision belongs to (0 when unknown). */
int sync_stored_cluster(sync_t *s, uint64_t *id);
/** In the open batch: record the cluster id (a full read's), committed with the batch. */
int sync_set_cluster(sync_t *s, uint64_t id);

/** Start a batch (a write txn) unless one is open. @return 0 or an error. */
int sync_begin(sync_t *s);
/** In the open batch: forget everything of the etcd source (a full re-read follows). */
int sync_reset(sync_t *s);
/**
 * In the open batch: apply one put or delete. Idempotent by key and mod_revision
 * (a revision at or below the stored one is skipped). A bad value is logged with
 * its key, counted and kept out of the answers; it is not an error.
 * @return 0 or a store error (the batch should be aborted).
 */
int sync_apply(sync_t *s, const etcd_kv_t *kv);
/** Re-derive the touched names, record `rev` as applied, commit. @return 0 or an error. */
int sync_commit(sync_t *s, int64_t rev);
/**
 * As sync_commit, and count the batch's latency from arrival_us (CLOCK_MONOTONIC
 * microseconds, when its first event arrived) to just before the commit.
 */
int sync_commit_at(sync_t *s, int64_t rev, uint64_t arrival_us);
/** Count a full read (reread) or a failure (error) into the next commit's counters. */
void sync_note(sync_t *s, bool reread, bool error);
/** Note the highest revision etcd reported (a header), stored at the next commit. */
void sync_seen(sync_t *s, int64_t rev);
/** CLOCK_MONOTONIC in microseconds. */
uint64_t sync_now_us(void);

/** Drop the open batch, if any. */
void sync_abort(sync_t *s);
/** True while a batch is open. */
bool sync_open(const sync_t *s);

const sync_stats_t *sync_stats(const sync_t *s);

/* What a re-read of one name did. */
typedef struct {
	int64_t rev;	    /* the etcd revision the read saw */
	int64_t stored_rev; /* the store's revision, which the re-read leaves as it was */
	size_t keys;	    /* etcd keys at or below the name */
	size_t changed;	    /* of them, put in the store: absent or older there */
	size_t dropped;	    /* copies of keys etcd no longer has, deleted */
} sync_reread_t;

/**
 * Reads etcd: calls fn(fnctx, kv) for every key under the name's key prefix at one
 * revision (keys of other names may come too; they are skipped) and sets *rev to it.
 * @return 0, or an error that fails the re-read.
 */
typedef int (*sync_read_fn)(void *ctx, etcd_kv_fn fn, void *fnctx, int64_t *rev);

/**
 * Make the etcd source's copy of `name` and the names below it what etcd holds now
 * (the original's POST /skydns/domainL1/<name>), in one txn of its own, without
 * moving the stored revision: every key whose copy differs from the read (value or
 * mod_revision: an etcd rebuilt as the same cluster reuses revisions) is put, copies
 * the read lacks are deleted, equal copies stay. The watch's later replay of events
 * the read already holds is stale by each key's mod_revision. The txn
 * is open while `read` runs, so the watch's commits wait for it.
 * Not while a batch is open (the watch's): a second sync_t on the same store.
 * @return 0, ERR_CONFLICT (the read is older than the stored revision: a lagging
 *         member), ERR_INVAL, read's error, or a store error.
 */
int sync_reread_name(sync_t *s, const uint8_t *name, size_t namelen, sync_read_fn read, void *ctx,
		     sync_reread_t *out);
