/*
 * server/select: answer selection for names with several A/AAAA records
 * (DESIGN §3 "Answer selection"). Pure functions: no I/O, no allocation, no
 * globals, so the policy can be unit tested without a store.
 *
 * Health is applied first: DOWN candidates are excluded, unless every
 * candidate is DOWN, in which case all of them are used (fail open).
 * Threads: any; everything here is reentrant.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most candidates one selection considers; stack arrays are sized by it. */
#define SELECT_MAX 512

typedef struct {
	const uint8_t *addr; /* borrowed: 4 or 16 address bytes (the rdata) */
	uint16_t len;
	bool down; /* health says DOWN */
} select_addr_t;

/**
 * Rendezvous weight of (client, address): a 64-bit hash with a fixed key, so
 * it is the same in every process and across restarts.
 * @param client,clen the client address bytes (clen may be 0).
 * @param addr,alen   the record's address bytes.
 */
uint64_t select_weight(const uint8_t *client, size_t clen, const uint8_t *addr, size_t alen);

/**
 * Choose the addresses to answer with, in answer order.
 * @param mode   STORE_MODE_ALL (healthy ones rotated by rnd), STORE_MODE_RANDOM_ONE
 *               (one healthy one chosen by rnd) or STORE_MODE_HONE_ONE (the healthy one
 *               of highest select_weight for the client); other values act as ALL.
 * @param cand   n candidates (n <= SELECT_MAX; more are ignored).
 * @param rnd    a per-query random value.
 * @param order  receives the chosen indices into cand.
 * @return number of indices written: 0 only when n == 0.
 */
size_t select_answer(unsigned mode, const select_addr_t *cand, size_t n, const uint8_t *client,
		     size_t clen, uint64_t rnd, uint16_t *order);
