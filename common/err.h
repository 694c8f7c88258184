/*
 * common/err: the one error convention of skydns.
 *
 * Every fallible function returns int: 0 is success, a negative value is
 * failure. Values in (-1000, 0) are -errno; project codes start at -1000 and
 * go down. Foreign error spaces (MDB, CURLcode, ldns_status, HTTP) are
 * translated into these at the module that owns the library.
 * Thread-safe: err_str() returns static strings only.
 */
#pragma once

enum {
	ERR_NOTFOUND = -1000,  /* no such name, key or record */
	ERR_SPACE = -1001,     /* store map full */
	ERR_PARSE = -1002,     /* text input does not parse (config, zone, JSON) */
	ERR_TOOBIG = -1003,    /* does not fit the buffer or a limit */
	ERR_TRUNC = -1004,     /* wire read past the end of the data */
	ERR_MALFORMED = -1005, /* wire data is structurally broken (bad label, loop) */
	ERR_CONFIG = -1006,    /* configuration invalid */
	ERR_STORE = -1007,     /* store internal failure (corruption, version) */
	ERR_CONFLICT = -1008,  /* write refused: owned by another source, exists, ... */
	ERR_INVAL = -1009,     /* argument out of range */
	ERR_READONLY = -1010,  /* write to a read-only source or store */
	ERR_TIMEOUT = -1011,   /* operation timed out */
	ERR_UPSTREAM = -1012,  /* remote peer failed or answered garbage */
	ERR_DENIED = -1013,    /* the caller may not change this (owned by another user) */
};

/**
 * Describe an error code.
 * @param code 0, -errno or an ERR_* value.
 * @return borrowed static string; never NULL.
 */
const char *err_str(int code);
