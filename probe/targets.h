/*
 * targets: which addresses the probe checks, read from one store snapshot.
 * Every A/AAAA record under the local domains is an address; its ports are
 * those of the SRV records whose target is the name holding the address (the
 * API's {"type":"SRV","ips":[...],"ports":[...]} stores exactly that), else
 * [Probe] scan-ports. Pure function of the snapshot and the config.
 * Threads: any; the caller's read txn.
 */
#pragma once

#include <stddef.h>

#include "probe/probe.h"

struct conf;
struct store_rtxn;

/**
 * @param out receives an owned array (free()) of *n targets, only on success.
 * @return 0, -ENOMEM, ERR_STORE.
 */
int probe_targets_load(struct store_rtxn *t, const struct conf *c, probe_target_t **out, size_t *n);

/** Parse scan-ports ("80,443"; validated by conf/) into ports. @return the count. */
size_t probe_parse_ports(const char *text, uint16_t *ports, size_t cap);
