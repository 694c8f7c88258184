/*
 * api/json: parse and validate the JSON body of an admin API request
 * (DESIGN §6) into a plain struct. Pure: no store, no conf, no I/O, so it is
 * unit tested and fuzzed on raw bytes. Names stay text here; records.c turns
 * them into wire names relative to the local domains.
 * Thread-safe: no globals.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_BODY_MAX (1024 * 1024) /* bytes; larger bodies get 413 */
#define API_ADDRS_MAX 1000	   /* addresses (or ports, or updates) per request */
#define API_TEXT_MAX 4096	   /* TXT text, split into 255-byte strings */
#define API_HOST_MAX 1024	   /* a host name in text form */
#define API_TTL_DEFAULT 30	   /* the original's examples use 30 s */
/* Deepest nesting of arrays and objects a body may have. Valid bodies need 2
 * ({"ips":[...]}); 8 leaves room for fields we ignore. jansson's own limit
 * (2048) overflows civetweb's ~100 KB thread stacks near 900 levels. */
#define API_JSON_DEPTH_MAX 8

/* What the request is for: decides which fields are required. */
enum {
	API_OP_CREATE = 1, /* POST */
	API_OP_UPDATE = 2, /* PUT */
	API_OP_DELETE = 3, /* DELETE */
};

/* Request "type" field; CNAME is the original's "cname" alias form. */
enum {
	API_T_NONE = 0, /* not given (only allowed for DELETE) */
	API_T_A = 1,
	API_T_AAAA = 28,
	API_T_CNAME = 5,
	API_T_SRV = 33,
	API_T_TXT = 16,
	API_T_MX = 15,
	API_T_PTR = 12,
};

/* Why a body was refused; the HTTP layer maps these to 400 or 413. */
enum {
	API_JSON_BAD = -1,    /* 400 */
	API_JSON_TOOBIG = -2, /* 413 */
};

typedef struct {
	uint8_t len; /* 4 or 16 */
	uint8_t b[16];
} api_addr_t;

typedef struct {
	api_addr_t from;
	api_addr_t to;
} api_update_t;

#define API_SRV_HOST_MAX 256 /* an SRV target host in text form */

/* One SRV record to write: a host name, or an address (addr.len > 0) that
 * records.c turns into a generated target name holding that address. */
typedef struct {
	char host[API_SRV_HOST_MAX]; /* "" when addr is set */
	api_addr_t addr;
	uint16_t port, priority, weight;
} api_srv_t;

typedef struct {
	int op;
	uint16_t type; /* API_T_* */
	size_t naddrs;
	api_addr_t addrs[API_ADDRS_MAX];
	size_t nports;
	uint16_t ports[API_ADDRS_MAX];
	size_t nupdates;
	api_update_t updates[API_ADDRS_MAX];
	char alias[API_HOST_MAX];  /* cname: the alias name, text ("" = none) */
	char target[API_HOST_MAX]; /* SRV target / MX host / PTR host, text */
	char text[API_TEXT_MAX];   /* TXT */
	size_t textlen;
	api_addr_t ip;	   /* PTR "ip": the owner is the address's reverse name; len 0 = none */
	uint16_t priority; /* SRV, MX */
	uint16_t weight;   /* SRV */
	uint32_t ttl;
	bool has_ttl;
	int mode; /* STORE_MODE_* value (1..3), or 0 when not given */
	/* SRV: every record the body stands for, from "targets" or from
	 * "ips"/"target" paired with "port"/"ports" (the fields above stay set). */
	size_t nsrv;
	api_srv_t srv[API_ADDRS_MAX];
} api_req_t;

/**
 * Parse and validate one request body.
 * @param op   API_OP_*.
 * @param body untrusted bytes (need not be NUL-terminated); len 0 = no body
 *             (allowed only for DELETE: the whole name).
 * @param out  filled on success (the caller owns it; it is large: heap it).
 * @param err  receives a one-line reason on failure.
 * @return 0, API_JSON_BAD or API_JSON_TOOBIG.
 */
int api_json_parse(int op, const char *body, size_t len, api_req_t *out, char *err, size_t errlen);

/**
 * Check that a JSON text nests at most `max` arrays/objects, without parsing
 * it (so on any stack). Brackets inside strings do not count. The count never
 * undercounts what a parser reaches before it finds a syntax error.
 * @param body untrusted bytes, need not be NUL-terminated.
 * @return true when the nesting is within `max`.
 */
bool api_json_depth_ok(const char *body, size_t len, unsigned max);

/** Parse an IPv4 or IPv6 address in text form. @return 0 or API_JSON_BAD. */
int api_addr_parse(const char *text, api_addr_t *out);

/** Format an address as text into out (>= 46 bytes). */
void api_addr_format(const api_addr_t *a, char *out, size_t cap);

/** "all" / "random-one" / "hone-one" -> STORE_MODE_*; NULL for others. */
const char *api_mode_name(int mode);
