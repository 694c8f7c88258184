/*
 * common/probe_stats: the counters skydns-probe publishes to skydns's /metrics.
 *
 * The probe is another process and checks a thousand addresses a second, so
 * committing counters to the store would bump the store generation (the SOA
 * serial) and drop every worker's lookup cache each time. Instead each probe
 * maps one small file, <data-dir>/probe-<id>.stats, holding this struct; the
 * probe's single thread writes the fields with relaxed atomic stores, and the
 * API maps the file read-only and loads them. The layout is versioned by
 * magic: a reader ignores a file whose magic or size differs.
 * Only libc types here: api/ and probe/ both include it.
 */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

#define PROBE_STATS_MAGIC 0x31545350594b53ull /* "SKYPST1" little-endian, layout 1 */
#define PROBE_STATS_ID_MAX 64
#define PROBE_STATS_LAT_BOUNDS                                                                     \
	{                                                                                          \
		1, 5, 10, 50, 100, 500, 1000                                                       \
	} /* ms, the upper bounds of the latency buckets */
#define PROBE_STATS_LAT_NBOUNDS 7

typedef struct {
	uint64_t magic; /* PROBE_STATS_MAGIC once the file is initialised */
	int64_t pid;	/* the probe's pid: a reader skips files of dead probes */
	char id[PROBE_STATS_ID_MAX];
	_Atomic uint64_t checks;     /* checks finished (one per address and round) */
	_Atomic uint64_t failures;   /* failed checks, all reasons */
	_Atomic uint64_t refused;    /* TCP connects refused (RST) */
	_Atomic uint64_t timeouts;   /* attempts with no answer within check-timeout */
	_Atomic uint64_t errors;     /* other errors (unreachable, no route, EMFILE) */
	_Atomic uint64_t to_down;    /* state changes UP -> DOWN */
	_Atomic uint64_t to_up;	     /* state changes DOWN -> UP */
	_Atomic uint64_t targets;    /* addresses found in the store */
	_Atomic uint64_t owned;	     /* addresses this probe checks (all, without etcd) */
	_Atomic uint64_t down;	     /* owned addresses DOWN now */
	_Atomic uint64_t writes;     /* health statements written (store records or etcd keys) */
	_Atomic uint64_t deferred;   /* writes skipped: a manual statement came first */
	_Atomic uint64_t manual;     /* owned addresses a manual statement holds now */
	_Atomic uint64_t saturated;  /* checks started late because max-checks were in flight */
	_Atomic uint64_t lat_sum_us; /* sum of the latencies of successful checks */
	_Atomic uint64_t
	    lat[PROBE_STATS_LAT_NBOUNDS + 1]; /* per bucket, +Inf last; not cumulative */
	_Atomic uint64_t probes_live;	      /* live probes seen in etcd (1 without etcd) */
} probe_stats_t;
