/*
 * server/rrl: response rate limiting for UDP replies (as in NSD and Knot
 * DNS), so the server cannot be used as a reflector/amplifier with spoofed
 * sources. Responses are counted per (client network, response kind): the
 * network is the client's /24 (IPv4) or /56 (IPv6), the kind is what the
 * response says (answer, no data, NXDOMAIN, error). Each key has a token
 * bucket that refills at `rate` responses per second and holds at most
 * rate * window of them. Over the limit, a response is dropped, except every
 * `slip`-th, which goes out truncated (TC=1, no records) so a real client
 * retries over TCP, which cannot be spoofed.
 *
 * Threads: an rrl_t belongs to one worker thread; no locks.
 * Memory: a fixed table allocated by rrl_new(), nothing afterwards. Keys that
 * collide in the table share a bucket or push out the least recently used
 * one: the limiter may then be stricter or looser, never unbounded in size.
 * Pure: the caller passes the clock.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define RRL_TABLE_SIZE 16384 /* entries per worker (power of two), 32 bytes each */

enum {
	RRL_PASS = 0, /* send the response */
	RRL_DROP = 1, /* send nothing */
	RRL_SLIP = 2, /* send the truncated form (rrl_slip) */
};

/* Response kinds: a flood of one kind does not limit the others. */
enum {
	RRL_KIND_ANSWER = 0,
	RRL_KIND_NODATA = 1,
	RRL_KIND_NXDOMAIN = 2,
	RRL_KIND_ERROR = 3,
};

typedef struct rrl rrl_t;

/**
 * Create a limiter.
 * @param out    receives an owned limiter (rrl_free), only on success.
 * @param rate   responses per second per key (>= 1).
 * @param slip   0 = drop every limited response, n = every n-th slips.
 * @param window seconds of rate a key may burst (>= 1).
 * @param seed   random seed for the table hash.
 * @return 0, -ENOMEM or ERR_INVAL.
 */
int rrl_new(rrl_t **out, uint32_t rate, uint32_t slip, uint32_t window, uint64_t seed);

/** Free; NULL is a no-op. */
void rrl_free(rrl_t *r);

/**
 * Change the limits (after a config reload) without touching the table.
 * @return 0, or ERR_INVAL (rate or window 0; nothing changed).
 */
int rrl_configure(rrl_t *r, uint32_t rate, uint32_t slip, uint32_t window);

/**
 * Account one response to a client.
 * @param addr,addrlen client address (4 or 16 bytes; others share one key).
 * @param kind  RRL_KIND_* (rrl_kind of the response).
 * @param now_ms monotonic milliseconds.
 * @return RRL_PASS, RRL_DROP or RRL_SLIP.
 */
int rrl_check(rrl_t *r, const uint8_t *addr, size_t addrlen, unsigned kind, uint64_t now_ms);

/** The kind of a response (its header: rcode and ANCOUNT). Short input: RRL_KIND_ERROR. */
unsigned rrl_kind(const uint8_t *resp, size_t len);

/**
 * Cut a response down to header + question in place, with TC=1 and the
 * other counts zero.
 * @return the new length, or 0 when the question does not parse (then
 *         send nothing).
 */
size_t rrl_slip(uint8_t *resp, size_t len);
