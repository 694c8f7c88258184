/*
 * pmode: what skydns-probe's main loop shares with its two ways of stating
 * health: the store's health table (embedded, probe/main.c) and etcd's status
 * keys (probe/etcd_mode.c). One thread owns a pmode_t.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/probe_stats.h"
#include "probe/probe.h"

#define PMODE_SOURCE "probe" /* the health records' source in embedded mode */

struct conf;
struct store;
struct store_rtxn;
struct pmode_etcd;

typedef struct {
	const struct conf *conf; /* borrowed */
	const char *id;		 /* this probe's name (borrowed) */
	struct store *store;
	struct store_rtxn *rtx; /* kept reset between ticks */
	probe_t *p;
	probe_stats_t *st; /* the mapped stats file, or a local struct */
	uint64_t gen;	   /* store generation the table was built from */
	bool gen_known;
	size_t last_count;
	bool etcd;
	volatile sig_atomic_t *stop;
	struct pmode_etcd *e; /* etcd mode's state, owned by etcd_mode.c */
} pmode_t;

/** Rebuild the table when the store's generation moved. @return 0 or an ERR_*. */
int pmode_refresh(pmode_t *m);

/** etcd mode (probe/etcd_mode.c): connect, take a lease. @return 0 or an error. */
int pmode_etcd_start(pmode_t *m);
/** Once per tick: keep the lease, follow the live probes, write changed status keys. */
int pmode_etcd_tick(pmode_t *m);
/** Revoke the lease (the others take over at once) and free. */
void pmode_etcd_stop(pmode_t *m);
