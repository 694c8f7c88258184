/*
 * api/autoptr: [Api] auto-ptr, a PTR kept for every A/AAAA the API writes.
 *
 * records.c calls api_autoptr_sync() once per write request, inside the request's write
 * txn and after the operation, with the entries the request added and removed (the
 * reply's "added" and "removed" lists). The PTRs are written in that txn, so they commit
 * or abort with the addresses and the reply lists them too. Only the request's own name
 * counts (not the generated SRV target names below it); only reverse names that a
 * reverse zone of dns-domains holds, and that no other source (a zone import, a watcher)
 * holds and no CNAME occupies (RFC 2317), get a PTR.
 *
 * Threads: the API request thread that owns the write txn.
 */
#pragma once

#include <stddef.h>

#include "api/api_names.h"

struct conf;
struct json_t;
struct store_wtxn;

/**
 * Mirror the request's A/AAAA changes as PTRs: each removed address's PTR to owner goes
 * (if there), then each added address gets one with the address's TTL.
 * @param conf borrowed. @param w borrowed, the request's open write txn. @param src the
 *        API's source id in w. @param owner borrowed, the request's name.
 * @param added,removed borrowed arrays of {"name","type","ttl","value"}; the PTRs
 *        changed are appended to them.
 * @param msg on failure, the reason (a 4xx/5xx body); untouched on success.
 * @return 0 or a negative ERR_* / -errno (the caller aborts the txn).
 */
int api_autoptr_sync(const struct conf *conf, struct store_wtxn *w, int src,
		     const api_name_t *owner, struct json_t *added, struct json_t *removed,
		     char *msg, size_t msglen);
