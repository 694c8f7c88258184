/*
 * A small store shared by the fuzz targets that need records: created once
 * per process in a temp dir, removed at exit.
 */
#pragma once

struct store;

/** @return borrowed store with a few records of every type under skydns.local. */
struct store *fixture_store(void);
