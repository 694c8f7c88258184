/*
 * server/csprng: the unpredictable numbers of one worker's forwarder
 * (upstream query IDs). Query IDs and source ports are all that keeps a
 * spoofer from poisoning forwarded answers, so they must not be predictable
 * from IDs seen before (xorshift128+ is: a few outputs give its state).
 *
 * A ChaCha20 keystream (RFC 8439) keyed from the kernel (getrandom), in the
 * "fast key erasure" shape of OpenBSD's arc4random: each refill makes
 * CSPRNG_BLOCKS blocks at once, the first 32 bytes become the next key and
 * are wiped, so a state read later does not reveal earlier outputs. Every
 * CSPRNG_RESEED refills fresh kernel bytes are mixed into the key with
 * GRND_NONBLOCK. The hot path pays no syscall: ~490 IDs per refill, one
 * getrandom per ~500,000 IDs.
 *
 * Threads: a csprng_t belongs to one thread; no locks.
 * Memory: embedded by the caller; nothing allocated.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CSPRNG_BLOCKS 16   /* ChaCha20 blocks per refill: 1 KiB, 32 bytes of it the next key */
#define CSPRNG_RESEED 1024 /* refills between kernel reseeds */

typedef struct {
	uint32_t key[8];
	uint8_t buf[CSPRNG_BLOCKS * 64];
	size_t pos;	  /* next unused byte of buf; sizeof(buf) = empty */
	uint32_t since;	  /* refills since the last kernel (re)seed */
	uint64_t refills; /* total refills (tests, stats) */
	uint64_t reseeds; /* kernel reseeds that succeeded after the first key */
} csprng_t;

/**
 * Key the generator from the kernel: getrandom(2), which blocks only until
 * the kernel's pool is first initialised after boot (call it from a thread
 * that may wait: main, at startup or reload); /dev/urandom when the
 * syscall is missing or filtered (ENOSYS, EPERM under seccomp).
 * @return 0, or -errno when neither gives 32 bytes (r is left unkeyed:
 *         the caller must not serve without it).
 */
int csprng_init(csprng_t *r);

/** Wipe the key and the unused output. */
void csprng_deinit(csprng_t *r);

/** Fill out[0..len) with unpredictable bytes; never fails, never blocks. */
void csprng_bytes(csprng_t *r, void *out, size_t len);

/** One unpredictable 16-bit value (a DNS query ID). */
uint16_t csprng_u16(csprng_t *r);

/**
 * The ChaCha20 block function of RFC 8439 §2.3 (exposed for its test vector).
 * @param key 8 little-endian words; @param nonce 3 words; @param out 64 bytes.
 */
void csprng_chacha20_block(const uint32_t key[8], uint32_t counter, const uint32_t nonce[3],
			   uint8_t out[64]);
