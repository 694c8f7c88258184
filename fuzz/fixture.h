/*
 * A small store shared by the fuzz targets that need records: created once
 * per process in a temp dir, removed at exit.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct store;

/** @return borrowed store with a few records of every type under skydns.local. */
struct store *fixture_store(void);

/**
 * Abort unless p[0..len) is a whole DNS message no longer than limit:
 * header, each counted question and RR present, and nothing after them.
 */
void fixture_check_reply(const uint8_t *p, size_t len, size_t limit);
