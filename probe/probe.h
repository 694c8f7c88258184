/*
 * probe: the check engine of skydns-probe. It owns a table of addresses (each
 * with the TCP ports to connect to), runs one check per address every
 * check-interval on non-blocking sockets under one epoll (TCP connects and
 * ICMP echo, at most max-checks attempts in flight), and turns results into
 * UP/DOWN with rise/fall hysteresis. It does no store or etcd I/O: the caller
 * feeds targets and what the store holds, and collects the changes to write.
 *
 * Threads: a probe_t belongs to one thread. Nothing here blocks except
 * probe_run's epoll_wait, bounded by its argument.
 *
 * Invariants:
 *  - an address counts UP until a check says otherwise: a fresh table is never
 *    "all down";
 *  - a check of an address passes when the ICMP echo is answered (icmp on)
 *    and, when the address has ports, at least one port accepts a connection;
 *  - the state moves to DOWN after `fall` failed checks in a row and back to
 *    UP after `rise` passed ones; a state is "known" (worth writing) after the
 *    first check, or when the store already held the probe's statement;
 *  - rounds keep their phase: an address's next check is due one interval after
 *    its previous one started, so a slow check does not drift the schedule.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/probe_stats.h"

#define PROBE_PORTS_MAX 8 /* ports checked per address; more are ignored (logged once) */

typedef struct probe probe_t;

/* One address to check. A plain value. */
typedef struct {
	uint8_t addr[16];
	uint8_t alen; /* 4 or 16 */
	uint8_t nports;
	uint16_t ports[PROBE_PORTS_MAX];
} probe_target_t;

typedef struct {
	uint32_t interval_ms;
	uint32_t timeout_ms;
	unsigned rise, fall;
	unsigned max_checks; /* attempts in flight, 1..65535 (raised to PROBE_PORTS_MAX + 1) */
	bool icmp;
} probe_conf_t;

/* What the store (or etcd) holds for an address, as the caller last read it. */
enum {
	PROBE_STORED_NONE = 0,	 /* no statement: counts as UP */
	PROBE_STORED_UP = 1,	 /* the probe said UP (STORE_HEALTH_UP) */
	PROBE_STORED_DOWN = 2,	 /* the probe said DOWN (STORE_HEALTH_DOWN) */
	PROBE_STORED_MANUAL = 3, /* someone else (API, CLI): the probe does not write */
};

/**
 * @param stats counters to publish (borrowed, must outlive the probe; may be NULL).
 * @param out   owned; free with probe_free.
 * @return 0, -ENOMEM, -errno (epoll); with icmp on, the -errno of the raw socket
 *         when neither an ICMP datagram socket nor a raw socket can be opened
 *         (probe_icmp_error says why, in a sentence for the log).
 */
int probe_new(probe_t **out, const probe_conf_t *c, probe_stats_t *stats);
void probe_free(probe_t *p);
/** Why ICMP could not start (borrowed, valid until probe_free of p or the next probe_new). */
const char *probe_icmp_error(void);
/** Which ICMP socket kind is in use: "datagram", "raw" or "off". */
const char *probe_icmp_kind(const probe_t *p);

/**
 * Replace the table with these targets (copied). Addresses already known keep
 * their state, counters and schedule; new ones count UP and get a check within
 * one interval (spread by a hash of the address); gone ones are dropped, and
 * their attempts in flight are abandoned. Duplicates are merged (ports united).
 * @return 0 or -ENOMEM (table unchanged).
 */
int probe_set_targets(probe_t *p, const probe_target_t *t, size_t n);
/** Number of addresses in the table. */
size_t probe_count(const probe_t *p);

/** Forget what the store holds for every address (all PROBE_STORED_NONE). */
void probe_stored_reset(probe_t *p);
/**
 * Record what the store holds for an address. A probe statement also seeds an
 * address whose state is not known yet (a restarted probe resumes its DOWNs
 * instead of presuming them UP). @return true when the address is in the table.
 */
bool probe_stored_set(probe_t *p, const uint8_t *addr, size_t alen, int stored);

/**
 * Start the checks that are due, wait up to max_wait_ms for results, finish
 * them, and expire attempts past check-timeout. @return 0 or -errno (epoll).
 */
int probe_run(probe_t *p, int max_wait_ms);

/**
 * Call fn for every address whose known state differs from what the store holds
 * (and the store does not hold a manual statement). fn returns 1 when it wrote
 * the state (the address then counts as stored), 0 to skip, <0 to stop.
 * @return the number written, or fn's negative value.
 */
typedef int (*probe_change_fn)(void *ctx, const uint8_t *addr, size_t alen, int status);
int probe_changes(probe_t *p, probe_change_fn fn, void *ctx);

/**
 * Which addresses this probe checks: fn(ctx, addr) true = mine. NULL = all.
 * Addresses not owned are not checked and never reported as changes; an
 * address that becomes owned starts from the stored statement, else UP.
 */
typedef bool (*probe_owner_fn)(void *ctx, const uint8_t *addr, size_t alen);
void probe_set_owner(probe_t *p, probe_owner_fn fn, void *ctx);

/** State of an address for tests: STORE_HEALTH_UP/DOWN, or 0 when not in the table. */
int probe_state(const probe_t *p, const uint8_t *addr, size_t alen);
