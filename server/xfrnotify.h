/*
 * xfrnotify: DNS NOTIFY (RFC 1996) to the secondaries in `[Dns] notify`
 * when the store generation (every zone's SOA serial) changes, so that they
 * transfer the new version at once instead of at the SOA refresh.
 *
 * Driven by main()'s loop, not by a worker: xfrnotify_tick() is called with
 * the current generation and returns how soon it wants to run again. A change
 * is sent once the store has been quiet for XFRNOTIFY_DEBOUNCE_MS (at most
 * XFRNOTIFY_DEBOUNCE_MAX_MS after the first change), one NOTIFY per local
 * domain and secondary, retried every second until the secondary answers
 * (up to XFRNOTIFY_TRIES). With an xfr-key set, each NOTIFY is signed with the
 * first one (RFC 8945), so a secondary that only accepts signed NOTIFY follows too;
 * the answer is matched by id and address, its TSIG not verified (an answer only
 * stops the retries). Sockets are non-blocking; nothing here waits.
 *
 * Threads: one thread (main) owns an xfrnotify_t.
 */
#pragma once

#include <stdint.h>

struct conf;

#define XFRNOTIFY_DEBOUNCE_MS 200
#define XFRNOTIFY_DEBOUNCE_MAX_MS 1000
#define XFRNOTIFY_RETRY_MS 1000
#define XFRNOTIFY_TRIES 5
#define XFRNOTIFY_POLL_MS 250 /* how often the generation is looked at */

typedef struct xfrnotify xfrnotify_t;

/** @param out owned (xfrnotify_free). @return 0 or -errno. */
int xfrnotify_new(xfrnotify_t **out);
/** NULL is a no-op. */
void xfrnotify_free(xfrnotify_t *n);

/**
 * Look at the generation, read answers, send what is due.
 * @param c borrowed for the call (targets and domains are read every time, so a
 *        reload applies). @param gen the store's generation now.
 * @return milliseconds until the next call is wanted (INT32_MAX: no notify set).
 */
int xfrnotify_tick(xfrnotify_t *n, const struct conf *c, uint64_t gen, uint64_t now_ms);

/** NOTIFY messages sent and answered so far (for the log and tests). */
uint64_t xfrnotify_sent(const xfrnotify_t *n);
uint64_t xfrnotify_acked(const xfrnotify_t *n);
