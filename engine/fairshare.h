/*
 * server/fairshare: how much of one worker's forwarding tables each client
 * network holds, so that one client cannot deny forwarding to all others
 * (issue 10, item 7). Clients are counted by network as RRL counts them
 * (engine/rrl.h): the /24 of an IPv4 address (also when v4-mapped), the /56
 * of an IPv6 address, since one host or customer usually holds at least
 * that much address space. Two things are counted per network: the
 * questions in flight it started (the try slots and upstream sockets) and
 * the clients of it waiting for any answer (the waiter table).
 *
 * What it cannot do: an attacker holding more networks than the table has
 * shares (8 at the default), or spoofing UDP sources over as many networks,
 * can still fill the tables; the share stops one host, NAT or customer.
 *
 * Threads: a fairshare_t belongs to one worker thread; no locks.
 * Memory: one fixed open-addressing table (linear probing, seeded hash,
 * backward-shift deletion) allocated by fairshare_new(), nothing afterwards.
 * Invariant: a network has an entry only while its counts are not both zero,
 * and every counted network holds a waiter, so at most FORWARD_MAX_WAITERS
 * entries are live: the table (twice that) is never more than half full.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"

#define FAIRSHARE_SLOTS 16384 /* power of two, twice FORWARD_MAX_WAITERS (forward.c asserts) */

typedef struct fairshare fairshare_t;

/**
 * @param out receives an owned table (fairshare_free), only on success.
 * @param max_questions questions in flight one network may have started;
 * @param max_waiters   its clients waiting at once (both > 0).
 * @param seed          keys the hash, so nobody can aim for long probe chains.
 * @return 0, -ENOMEM or ERR_INVAL.
 */
int fairshare_new(fairshare_t **out, unsigned max_questions, unsigned max_waiters, uint64_t seed);

/** Free; NULL is a no-op. */
void fairshare_free(fairshare_t *s);

/** The network of a client address; 0 when it has none we count (not AF_INET/AF_INET6). */
uint64_t fairshare_key(const conf_addr_t *a);

/**
 * Whether network `key` may take one more waiter, and one more question
 * too when `question`. Key 0 is always admitted.
 */
bool fairshare_admit(const fairshare_t *s, uint64_t key, bool question);

/** Count dq questions and dw waiters more for `key` (0: nothing happens). */
void fairshare_take(fairshare_t *s, uint64_t key, unsigned dq, unsigned dw);

/** Count them less (as many as were taken; 0: nothing happens). */
void fairshare_put(fairshare_t *s, uint64_t key, unsigned dq, unsigned dw);

/** Networks counted now (tests). */
unsigned fairshare_count(const fairshare_t *s);
