/*
 * common/base64: standard base64 decoding (RFC 4648 §4, the URL-safe
 * alphabet accepted too), shared by the etcd gateway client (keys and values)
 * and the config (TSIG secrets). Pure, no allocation, any thread.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/**
 * Decode src[0..n) (padding optional). @param dst at least 3 * (n / 4) + 3 bytes.
 * @return 0 with *outlen set, or ERR_PARSE (a character outside the alphabet,
 *         a dangling one).
 */
int base64_decode(const char *src, size_t n, uint8_t *dst, size_t *outlen);
