/*
 * k8ssync: applies what the Kubernetes API says to the store's `k8s` source,
 * one write txn per batch (a received chunk of watch events, or a whole list).
 *
 * The store keeps, in the same txns as the records (store_kv_*):
 *   k8s-svc  "<ns>/<name>"          -> the Service's compact form (watchers/k8smap.h)
 *   k8s-eps  "<ns>/<svc>/<slice>"   -> an EndpointSlice's compact form
 *   k8s-idx  "<ns>/<slice>"         -> the Service the slice was filed under
 *   k8s-own  "<ns>/<svc>"           -> the (name, type[, rdata]) the Service wrote
 *   k8s-pod  "<ns>/<pod>"           -> the pod's IPv4 addresses (pods = verified)
 *   k8s-pip  "<ns>/<ip>/<pod>"      -> "": the pods that own an address's pod record
 *   k8s-rv   "services" | "endpointslices" | "pods" -> the resourceVersion of the last event
 * so a slice event re-derives its Service from the store (all slices merged, the
 * Service's records swapped in the batch's txn: no half-updated answers), and a
 * restart resumes each watch from its stored resourceVersion. Nothing of the
 * cluster is held in memory beyond one batch's list of touched Services.
 *
 * One thread (the watcher's).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct store;
typedef struct json_t json_t;
typedef struct k8ssync k8ssync_t;

enum {
	K8SSYNC_SERVICES = 0,
	K8SSYNC_SLICES = 1,
	K8SSYNC_PODS = 2, /* pods = verified only */
	K8SSYNC_KINDS = 3,
};

enum {
	K8SSYNC_EVENTS,	 /* objects applied from watches */
	K8SSYNC_RELISTS, /* full lists committed */
	K8SSYNC_RESUMES, /* watches resumed from a stored resourceVersion */
	K8SSYNC_ERRORS,	 /* failed API requests (counted at the next commit) */
	K8SSYNC_BAD,	 /* objects skipped as unusable */
	K8SSYNC_NCOUNTERS,
};

/** @param conf, store borrowed for the sync's life. @param out owned (k8ssync_free). */
int k8ssync_new(k8ssync_t **out, const struct conf *conf, struct store *store);
/** Aborts an open batch; NULL is a no-op. */
void k8ssync_free(k8ssync_t *s);

/** The stored resourceVersion of a kind ("" when never synced). @return 0 or an error. */
int k8ssync_stored_rv(k8ssync_t *s, int kind, char *rv, size_t cap);

/** Start a batch (a write txn) unless one is open. */
int k8ssync_begin(k8ssync_t *s);
/** In the open batch: forget every object of a kind (a list of it follows);
 * every Service is re-derived at commit. */
int k8ssync_reset(k8ssync_t *s, int kind);
/** In the open batch: an object was added or modified (obj borrowed). A bad object
 * is counted and skipped. @return 0 or a store error (abort the batch). */
int k8ssync_put(k8ssync_t *s, int kind, const json_t *obj);
/** In the open batch: an object was deleted. */
int k8ssync_del(k8ssync_t *s, int kind, const json_t *obj);
/** In the open batch: forget every object of a kind and its resourceVersion (a kind no
 * longer watched, as Pods when pods is no longer verified). */
int k8ssync_forget(k8ssync_t *s, int kind);
/** In the open batch: the resourceVersion a kind's watch resumes from (text borrowed). */
int k8ssync_set_rv(k8ssync_t *s, int kind, const char *rv);
/**
 * Re-derive the touched Services, write the counters and commit. A full list
 * also writes dns-version.<zone>, the mark of a synced store.
 * @param arrival_us CLOCK_MONOTONIC µs when the batch's first event arrived (0: a list),
 *        for the programming-latency histogram when a slice carries no trigger time.
 */
int k8ssync_commit(k8ssync_t *s, uint64_t arrival_us);
/** Drop the open batch, if any. */
void k8ssync_abort(k8ssync_t *s);
bool k8ssync_open(const k8ssync_t *s);
/** Count something (K8SSYNC_*) into the next commit. */
void k8ssync_note(k8ssync_t *s, int counter);
/** CLOCK_MONOTONIC in microseconds. */
uint64_t k8ssync_now_us(void);
