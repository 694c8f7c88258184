/*
 * api: the REST admin API, stats, metrics, health and readiness, served by
 * civetweb on its own threads inside the skydns process (DESIGN §6).
 * main() owns the api_t. Handlers read the store with their own read txns
 * and write it with short write txns; they never wait for DNS workers.
 */
#pragma once

#include <stdbool.h>

struct conf;
struct store;

typedef struct api api_t;

/* What the API needs from the rest of the daemon, without depending on server/. */
typedef struct {
	/* Fill `out` (an array of `n` uint64 counters, indexed by STATS_*)
	 * with the sum over workers. May be NULL (stats report zeros). */
	void (*query_stats)(void *ctx, unsigned long long *out, unsigned n);
	void *ctx;
} api_hooks_t;

/**
 * Start the API if conf->api_enable. Refuses (ERR_CONFIG) a non-loopback
 * api-address without an api-token.
 * @param out receives an owned handle, or NULL when the API is disabled.
 * @return 0, ERR_CONFIG, -errno (bind failed).
 */
int api_start(api_t **out, const struct conf *conf, struct store *store, const api_hooks_t *hooks);

/** Mark not ready (/ready answers 503) while draining on shutdown. */
void api_set_draining(api_t *api, bool draining);

/** Stop the HTTP threads and free; NULL is a no-op. */
void api_stop(api_t *api);
