/*
 * api/names: the names API requests give (owners, aliases, targets) as
 * text -> lowercase wire names, keys and canonical text, relative to the
 * configured local domains (DESIGN §6). Pure: conf and wire only, no store,
 * no I/O; any thread. Shared by records.c and its unit test.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

struct conf;

/* A resolved name: all three forms, filled together. */
typedef struct {
	uint8_t name[WIRE_NAME_MAX]; /* lowercase wire form */
	size_t len;
	uint8_t key[WIRE_KEY_MAX];
	size_t keylen;
	char text[WIRE_NAME_TEXT_MAX];
} api_name_t;

/** Lowercase n->name and fill key and text from it. @return 0 or ERR_INVAL. */
int api_name_finish(api_name_t *n);

/**
 * An owner name: "name." is absolute; a name ending in a local domain is
 * taken as is; a single label (after any "_service" labels) gets the first
 * local domain that is not a reverse zone (conf_default_domain); any other dotted name is refused,
 * so typos create nothing.
 * @param conf borrowed. @param out written only on success.
 * @return 0, ERR_INVAL (not a name) or ERR_NOTFOUND (outside the domains).
 */
int api_name_owner(const struct conf *conf, const char *text, api_name_t *out);

/**
 * The reverse name of an address (RFC 1035 §3.5 "4.3.2.1.in-addr.arpa.",
 * RFC 3596 §2.5 nibbles ".ip6.arpa."), for PTR bodies that give "ip".
 * @param addr borrowed, network order, alen 4 or 16.
 * @return 0, ERR_INVAL, or ERR_NOTFOUND when no local domain (a reverse zone
 *         in dns-domains) holds the name.
 */
int api_name_reverse(const struct conf *conf, const uint8_t *addr, size_t alen, api_name_t *out);

/**
 * A record's target (SRV, MX, PTR): anywhere, but a single label gets the
 * first local domain that is not a reverse zone (conf_default_domain).
 * @return 0, ERR_INVAL or ERR_TOOBIG.
 */
int api_name_target(const struct conf *conf, const char *text, api_name_t *out);

/**
 * The 400 text for a name api_name_owner() refused with `code`, naming the
 * local domains. @param what "name", "alias", ... for the message.
 */
void api_name_error(const struct conf *conf, const char *what, const char *text, int code,
		    char *buf, size_t cap);
