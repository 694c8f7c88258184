/*
 * k8smap: Kubernetes objects (Services, discovery.k8s.io/v1 EndpointSlices) ->
 * compact index entries -> DNS records of the Kubernetes DNS specification
 * (schema 1.1.0). Pure: no I/O, no store; fuzzed (fuzz/fuzz_k8s_json.c).
 *
 * Why a compact form: the watcher keeps, per Service and per EndpointSlice, only
 * what the records need (a few hundred bytes, not the object's kilobytes of
 * managedFields) in the store next to the records, so a slice event re-derives
 * its Service from the store without holding a copy of the cluster in memory.
 * Compact forms are short JSON texts written and read only by this file:
 *   service: {"t":type,"h":headless,"u":publishNotReady,"x":externalName,
 *             "ips":[clusterIPs],"e":[externalIPs],"p":[[name,proto,port],...]}
 *   slice:   {"at":addressType,"ep":[[address,hostname|null,ready],...],
 *             "p":[[name,proto,port|null],...],"tt":trigger-time-unix-ms}
 *
 * Threads: any; no shared state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

typedef struct json_t json_t;

#define K8SMAP_NAME_MAX 254 /* object names: DNS subdomains of <= 253 chars */

/* Which object a compact form belongs to. */
typedef struct {
	char ns[64];
	char name[K8SMAP_NAME_MAX];
	char svc[64]; /* slices: the kubernetes.io/service-name label ("" when absent) */
	char rv[64];  /* metadata.resourceVersion ("" when absent) */
} k8smap_id_t;

/**
 * A Service object -> its compact form.
 * @param obj borrowed. @param id filled on success.
 * @param out owned text (free()); written only on success.
 * @return 0, ERR_PARSE (not a usable Service: no name/namespace), -ENOMEM.
 */
int k8smap_service(const json_t *obj, k8smap_id_t *id, char **out);
/** An EndpointSlice object -> its compact form; as k8smap_service. A slice
 * without the service-name label maps (its records are none) with id->svc "". */
int k8smap_slice(const json_t *obj, k8smap_id_t *id, char **out);
/**
 * A Pod object -> its compact form for `pods = verified`: its IPv4 addresses
 * (status.podIPs, else status.podIP), dotted, comma-separated, in the API's order;
 * "" when it has none, is terminating (metadata.deletionTimestamp) or has ended
 * (phase Succeeded/Failed): such a pod no longer owns an address. As k8smap_service.
 */
int k8smap_pod(const json_t *obj, k8smap_id_t *id, char **out);
/** The metadata (namespace, name, labels, resourceVersion) only, for DELETED events
 * and BOOKMARKs. @return 0 or ERR_PARSE. */
int k8smap_ident(const json_t *obj, k8smap_id_t *id);

/* One derived record. */
typedef struct {
	uint8_t name[WIRE_NAME_MAX];
	size_t namelen;
	uint16_t type;
	uint16_t rdlen;
	uint8_t rdata[WIRE_NAME_MAX + 6];
	bool shared; /* PTR: a name other services may also write; added and deleted by rdata */
} k8smap_rec_t;

typedef struct {
	uint8_t zone[WIRE_NAME_MAX]; /* kube-domain, wire form lowercase */
	size_t zonelen;
	bool external_ips; /* svc-ip-source = externalIP */
} k8smap_conf_t;

/* The records of one Service, built from its compact form and its slices'. */
typedef struct {
	const k8smap_conf_t *conf;
	uint8_t base[WIRE_NAME_MAX]; /* <svc>.<ns>.svc.<zone> */
	size_t baselen;
	bool headless, pna, valid;
	k8smap_rec_t *recs; /* owned */
	size_t n, cap;
	uint64_t trigger_ms; /* newest last-change-trigger-time of the slices, 0 if none */
} k8smap_derive_t;

/**
 * Start a Service's records. svc may be NULL (the Service is gone, or not seen
 * yet): then no records come, whatever its slices say.
 * @param conf borrowed until k8smap_derive_free. @return 0, ERR_PARSE (bad ns/name), -ENOMEM.
 */
int k8smap_derive_begin(k8smap_derive_t *d, const k8smap_conf_t *conf, const char *ns,
			const char *name, const char *svc, size_t svclen);
/** Add one slice's endpoints (headless Services). A bad compact form is skipped. */
int k8smap_derive_slice(k8smap_derive_t *d, const char *slice, size_t len);
/** Sort by (name, type), drop duplicates, set SRV weights. After it, d->recs[0..n). */
void k8smap_derive_end(k8smap_derive_t *d);
/** Free the records; the struct may be begun again. */
void k8smap_derive_free(k8smap_derive_t *d);

/** The zone's own records: dns-version.<zone> TXT "1.1.0". @return count written (1). */
size_t k8smap_zone_records(const k8smap_conf_t *conf, k8smap_rec_t *out);

/**
 * The pod record's owner, a-b-c-d.<ns>.pod.<zone> (IPv6: the canonical text with
 * dashes for colons, fd00--5.<ns>.pod.<zone>), lowercase wire form.
 * @param ip IPv4 or IPv6 text. @param out WIRE_NAME_MAX bytes.
 * @return 0, or ERR_PARSE (ns no DNS label, ip no address, name too long).
 */
int k8smap_pod_name(const k8smap_conf_t *conf, const char *ns, const char *ip, uint8_t *out,
		    size_t *len);

/** RFC 3339 ("2026-12-02T03:04:05Z", optional fraction) -> unix ms. @return 0 or ERR_PARSE. */
int k8smap_time_ms(const char *text, uint64_t *ms);
