/*
 * common/wire: the only code that touches DNS packet bytes.
 *
 * A reader walks untrusted bytes with bounds checks; every read returns 0 or
 * a negative error and never reads past `len`. A writer appends into a fixed
 * buffer and fails with ERR_TOOBIG (leaving pos unchanged) when it would
 * overflow. Both are plain values the caller embeds; they own no memory.
 *
 * Names: "wire form" is the uncompressed RFC 1035 form ending with the root
 * label (e.g. "\3www\7example\0"), at most WIRE_NAME_MAX (255) octets.
 * A "key" is the store's lookup form of a name: its labels lowercased and in
 * reverse order, each preceded by its length, without the root label
 * ("www.example." -> "\7example\3www"). The root name has an empty key.
 * Keys of descendants start with the key of their ancestor, on a label
 * boundary, so a prefix scan finds a subtree. No key byte string contains a
 * 0x00 length byte, so key||0x00 sorts before every descendant's key.
 *
 * Thread-safe: no globals.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_NAME_MAX 255
#define WIRE_LABEL_MAX 63
#define WIRE_KEY_MAX 255
#define WIRE_HDR_LEN 12
#define WIRE_NAME_TEXT_MAX 1024 /* text form incl. escapes (\DDD) and NUL */

/* RR types and classes used by skydns. */
enum {
	WIRE_TYPE_A = 1,
	WIRE_TYPE_NS = 2,
	WIRE_TYPE_CNAME = 5,
	WIRE_TYPE_SOA = 6,
	WIRE_TYPE_PTR = 12,
	WIRE_TYPE_MX = 15,
	WIRE_TYPE_TXT = 16,
	WIRE_TYPE_AAAA = 28,
	WIRE_TYPE_SRV = 33,
	WIRE_TYPE_OPT = 41,
	WIRE_TYPE_IXFR = 251,
	WIRE_TYPE_AXFR = 252,
	WIRE_TYPE_ANY = 255,
	WIRE_CLASS_IN = 1,
	WIRE_CLASS_CH = 3,
	WIRE_CLASS_ANY = 255,
};

/* Header flag bits (in the 16-bit flags word) and rcodes. */
enum {
	WIRE_FLAG_QR = 0x8000,
	WIRE_FLAG_AA = 0x0400,
	WIRE_FLAG_TC = 0x0200,
	WIRE_FLAG_RD = 0x0100,
	WIRE_FLAG_RA = 0x0080,
	WIRE_FLAG_AD = 0x0020,
	WIRE_FLAG_CD = 0x0010,
	WIRE_RCODE_NOERROR = 0,
	WIRE_RCODE_FORMERR = 1,
	WIRE_RCODE_SERVFAIL = 2,
	WIRE_RCODE_NXDOMAIN = 3,
	WIRE_RCODE_NOTIMP = 4,
	WIRE_RCODE_REFUSED = 5,
	WIRE_RCODE_BADVERS = 16, /* extended: needs OPT */
};

typedef struct {
	const uint8_t *base;
	size_t len;
	size_t pos;
} wire_reader_t;

typedef struct {
	uint8_t *base;
	size_t cap;
	size_t pos;
} wire_writer_t;

void wire_reader_init(wire_reader_t *r, const uint8_t *p, size_t len);
/** @return bytes left to read. */
size_t wire_remaining(const wire_reader_t *r);
int wire_get_u8(wire_reader_t *r, uint8_t *out);
int wire_get_u16(wire_reader_t *r, uint16_t *out);
int wire_get_u32(wire_reader_t *r, uint32_t *out);
int wire_get_bytes(wire_reader_t *r, uint8_t *out, size_t n);
int wire_skip(wire_reader_t *r, size_t n);

/**
 * Read a name at r->pos, following compression pointers (only backwards,
 * loops and over-long names rejected) within r->base. The reader advances
 * past the name as it appears at r->pos (2 bytes for a pointer).
 * @param out    receives the uncompressed wire form, case preserved; octets past
 *               *outlen are unspecified (labels are copied 8 octets at a time).
 * @param outlen receives its length (1..255). Written only on success.
 * @return 0, ERR_TRUNC or ERR_MALFORMED.
 */
int wire_get_name(wire_reader_t *r, uint8_t out[WIRE_NAME_MAX], size_t *outlen);

void wire_writer_init(wire_writer_t *w, uint8_t *p, size_t cap);
int wire_put_u8(wire_writer_t *w, uint8_t v);
int wire_put_u16(wire_writer_t *w, uint16_t v);
int wire_put_u32(wire_writer_t *w, uint32_t v);
int wire_put_bytes(wire_writer_t *w, const void *p, size_t n);
/** Overwrite a u16 already written at offset `at` (< w->pos). */
void wire_patch_u16(wire_writer_t *w, size_t at, uint16_t v);

/* Big-endian helpers on raw buffers the caller has bounds-checked. */
uint16_t wire_read_u16(const uint8_t *p);
uint32_t wire_read_u32(const uint8_t *p);
void wire_write_u16(uint8_t *p, uint16_t v);
void wire_write_u32(uint8_t *p, uint32_t v);

/** Validate an uncompressed wire name of exactly `len` bytes. @return 0 or ERR_MALFORMED. */
int wire_name_check(const uint8_t *name, size_t len);
/** ASCII-lowercase a wire name in place (label lengths untouched). */
void wire_name_lower(uint8_t *name, size_t len);
/** Case-insensitive equality of two wire names. */
bool wire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/**
 * True when `name` equals `parent` or is below it, on a label boundary,
 * case-insensitively. Both are valid wire names.
 */
bool wire_name_is_subdomain(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen);
/** Number of labels, not counting the root. */
unsigned wire_name_labels(const uint8_t *name, size_t len);

/**
 * Build the store key of a valid wire name (see above), lowercased.
 * @param key receives at most WIRE_KEY_MAX bytes; *keylen its length. Octets of key
 *            past *keylen are unspecified (labels are copied 8 octets at a time).
 * @return 0 or ERR_MALFORMED.
 */
int wire_name_to_key(const uint8_t *name, size_t len, uint8_t key[WIRE_KEY_MAX], size_t *keylen);
/** Inverse of wire_name_to_key (lowercase result). @return 0 or ERR_MALFORMED. */
int wire_key_to_name(const uint8_t *key, size_t keylen, uint8_t name[WIRE_NAME_MAX], size_t *len);

/**
 * Parse presentation form ("www.Example.com", trailing dot optional, "\."
 * and "\DDD" escapes, "." or "" = root) into wire form, case preserved.
 * @return 0, ERR_PARSE (bad escape, empty label) or ERR_TOOBIG (label > 63,
 * name > 255).
 */
int wire_name_from_text(const char *text, uint8_t name[WIRE_NAME_MAX], size_t *len);
/**
 * Format a wire name as text with a trailing dot, escaping '.', '\\' and
 * bytes outside printable ASCII as \DDD.
 * @return 0 or ERR_TOOBIG when `cap` is too small (WIRE_NAME_TEXT_MAX always fits).
 */
int wire_name_to_text(const uint8_t *name, size_t len, char *out, size_t cap);

/** Name of an RR type ("A", "AAAA", ..., else "TYPE123") into out (>= 16 bytes). */
void wire_type_to_text(uint16_t type, char *out, size_t cap);
/** Parse "A", "aaaa", "TYPE123", ... @return type or ERR_PARSE. */
int wire_type_from_text(const char *text);
