/*
 * map: etcd values in the SkyDNS / CoreDNS etcd format (DESIGN §4) to DNS
 * records. Pure functions of their input, no I/O, no globals (fuzzed):
 *   map_key_name     etcd key -> owner name (labels reversed under the prefix)
 *   map_parse_value  one value's JSON -> map_value_t (validated: bad = skipped)
 *   map_build        the records a name answers with, from the leaves of its
 *                    subtree (SkyDNS semantics: every leaf below answers)
 *   map_parse_health a monitor key's {"status":"UP"|"DOWN"}
 * Any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAP_TEXT_MAX 4096
#define MAP_GROUP_MAX 64
#define MAP_USER_MAX 64	    /* api/api_internal.h API_USER_MAX */
#define MAP_TTL_DEFAULT 300 /* CoreDNS's etcd plugin */
#define MAP_PRIORITY_DEFAULT 10

enum {
	MAP_HOST_NONE = 0,
	MAP_HOST_IP4,
	MAP_HOST_IP6,
	MAP_HOST_NAME,
};

typedef struct {
	uint16_t type; /* WIRE_TYPE_* from "type"; 0 = guess from host */
	int host_kind; /* MAP_HOST_* */
	uint8_t addr[16];
	uint8_t target[255]; /* host as a lowercase wire name when MAP_HOST_NAME */
	size_t targetlen;
	uint32_t ttl;
	uint16_t port, priority, weight;
	bool mail;
	unsigned targetstrip;
	char group[MAP_GROUP_MAX];
	/* "user": who wrote the value through the API (the original's owner field); a value
	 * whose user is not a string of fewer than MAP_USER_MAX bytes counts as the admin's */
	char user[MAP_USER_MAX];
	size_t textlen;
	char text[MAP_TEXT_MAX]; /* last: a copy may keep only offsetof(text) + textlen bytes */
} map_value_t;

/**
 * Owner name of an etcd key: the part after prefix (which must be followed by
 * '/'), split at '/', empty parts dropped (a trailing '/' is fine), labels
 * reversed and lowercased: /skydns/local/skydns/x -> x.skydns.local.
 * @param name receives the wire name (at most 255 bytes).
 * @return 0, ERR_NOTFOUND (not under the prefix), ERR_PARSE (bad label, too long).
 */
int map_key_name(const char *prefix, const uint8_t *key, size_t klen, uint8_t name[255],
		 size_t *namelen);

/**
 * Parse and validate a value.
 * @param err receives a one-line reason on failure.
 * @return 0 or ERR_PARSE (invalid JSON, unknown type, bad IP, type/host mismatch, range).
 */
int map_parse_value(const uint8_t *json, size_t len, map_value_t *out, char *err, size_t errlen);

/** @return STORE_HEALTH_UP (1) or STORE_HEALTH_DOWN (2) for {"status":...}, or ERR_PARSE. */
int map_parse_health(const uint8_t *json, size_t len);
/**
 * map_parse_health, and the value's "source" (who wrote it; "probe" for
 * skydns-probe, "" when absent) into source (cap bytes, NUL-terminated).
 */
int map_health_source(const uint8_t *json, size_t len, char *source, size_t cap);
/**
 * A status value that keeps every other field of json (NULL or not an object:
 * a fresh one) and sets "status" (1 UP, 2 DOWN) and "source".
 * @param out receives owned text (free()). @return 0 or -ENOMEM.
 */
int map_health_restate(const uint8_t *json, size_t len, int status, const char *source, char **out);

/* A leaf of the subtree being answered. Both pointers borrowed. */
typedef struct {
	const uint8_t *name; /* the leaf's own wire name (lowercase) */
	size_t namelen;
	const map_value_t *v;
} map_leaf_t;

/** Receives one record; rdata borrowed for the call. @return 0 to go on. */
typedef int (*map_rr_fn)(void *ctx, uint16_t type, uint32_t ttl, const uint8_t *rdata,
			 uint16_t rdlen);

/**
 * The records name `qname` answers with, given every leaf at or below it:
 * CNAME (PTR, NS) only from a leaf at qname itself and then nothing else;
 * A/AAAA, TXT, SRV (weight = floor(100 w / sum of w at that priority), w 0
 * counting as 100; an IP host's target is the leaf's own name minus
 * targetstrip labels) and MX (mail: true) from every leaf; the group of the
 * shortest leaf name wins, leaves without a group always count; one TTL per
 * type, the minimum. Identical records may repeat (the store merges them).
 * @param leaves reordered in place.
 * @return 0, -ENOMEM, or fn's value.
 */
int map_build(const uint8_t *qname, size_t qlen, map_leaf_t *leaves, size_t n, map_rr_fn fn,
	      void *ctx);
