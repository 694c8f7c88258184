#include "common/wire.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"

/*
 * Label length octets: the top two bits select the kind. 00 is a normal
 * label, 11 a compression pointer; 01 (EDNS0 extended labels, RFC 6891
 * deprecated them) and 10 (reserved) are malformed here.
 */
#define LABEL_KIND_MASK 0xC0
#define LABEL_KIND_PTR 0xC0

/*
 * A name has at most 127 labels, so no sane encoder emits more than one
 * pointer per label; the cap bounds the work a pointer-to-pointer chain can
 * cost us even though strictly decreasing targets already rule out loops.
 */
#define MAX_PTR_HOPS 128

static inline uint8_t lower(uint8_t c)
{
	return (uint8_t)(c - 'A') < 26u ? (uint8_t)(c + ('a' - 'A')) : c;
}

/*
 * lower() of 8 octets at once, the query path's commonest loop (every name is lowered,
 * compared and turned into a key): each octet's low 7 bits plus a bias set its top bit
 * when it is >= 'A', and another when it is > 'Z'; neither sum carries into the next
 * octet. An octet with its own top bit set is no letter.
 */
static inline uint64_t lower8(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, top = 0x8080808080808080ull;
	uint64_t low7 = w & ~top;
	uint64_t ge_a = low7 + (0x80 - 'A') * ones, gt_z = low7 + (0x80 - 'Z' - 1) * ones;

	return w | ((ge_a & ~gt_z & ~w & top) >> 2); /* 0x80 >> 2: the case bit */
}

static inline uint64_t load8(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
	return w;
}

/*
 * Copy n octets (a label and its length octet), lowered when `low`, 8 at a time while
 * both stay inside their buffers (dst_room, src_room: octets left in each from dst and
 * src), so a copy may write up to 7 octets past dst + n, inside dst_room. A memcpy of a
 * label's unknown length is a call or a `rep movs` that costs more than the copy (a
 * label is ~10 octets); the short tail near a buffer's end is rare.
 */
static inline void copy_label(uint8_t *dst, size_t dst_room, const uint8_t *src, size_t src_room,
			      size_t n, bool low)
{
	size_t i = 0;

	for (; i < n && i + 8 <= dst_room && i + 8 <= src_room; i += 8) {
		uint64_t w = load8(src + i);
		if (low)
			w = lower8(w);
		memcpy(dst + i, &w, 8);
	}
	for (; i < n; i++)
		dst[i] = low ? lower(src[i]) : src[i];
}

/* ---- reader ---------------------------------------------------------- */

void wire_reader_init(wire_reader_t *r, const uint8_t *p, size_t len)
{
	r->base = p;
	r->len = p ? len : 0;
	r->pos = 0;
}

size_t wire_remaining(const wire_reader_t *r)
{
	/* pos > len only if a caller wrote pos by hand; treat it as exhausted. */
	return r->pos < r->len ? r->len - r->pos : 0;
}

int wire_get_u8(wire_reader_t *r, uint8_t *out)
{
	if (wire_remaining(r) < 1)
		return ERR_TRUNC;
	*out = r->base[r->pos++];
	return 0;
}

int wire_get_u16(wire_reader_t *r, uint16_t *out)
{
	if (wire_remaining(r) < 2)
		return ERR_TRUNC;
	*out = wire_read_u16(r->base + r->pos);
	r->pos += 2;
	return 0;
}

int wire_get_u32(wire_reader_t *r, uint32_t *out)
{
	if (wire_remaining(r) < 4)
		return ERR_TRUNC;
	*out = wire_read_u32(r->base + r->pos);
	r->pos += 4;
	return 0;
}

int wire_get_bytes(wire_reader_t *r, uint8_t *out, size_t n)
{
	if (wire_remaining(r) < n)
		return ERR_TRUNC;
	if (n)
		memcpy(out, r->base + r->pos, n);
	r->pos += n;
	return 0;
}

int wire_skip(wire_reader_t *r, size_t n)
{
	if (wire_remaining(r) < n)
		return ERR_TRUNC;
	r->pos += n;
	return 0;
}

/*
 * Pointers must point before the start of the label run that contains them
 * (the original name, or the previous pointer's target). Targets then
 * strictly decrease, so no loop can exist, and a pointer past the end or
 * forward is malformed by the same test. This also rejects pointers into the
 * same name's earlier labels, which no correct encoder produces.
 *
 * Labels are copied straight into `out` (a staging copy doubled the cost on
 * the hot path), so on failure `out` holds garbage; r->pos and *outlen are
 * untouched, as the header promises.
 */
int wire_get_name(wire_reader_t *r, uint8_t out[WIRE_NAME_MAX], size_t *outlen)
{
	const uint8_t *p = r->base;
	size_t len = r->len, pos = r->pos, run_start = r->pos, end = 0, n = 0;
	unsigned hops = 0;

	for (;;) {
		if (pos >= len)
			return ERR_TRUNC;
		uint8_t c = p[pos];
		if ((c & LABEL_KIND_MASK) == LABEL_KIND_PTR) {
			if (len - pos < 2)
				return ERR_TRUNC;
			size_t target = ((size_t)(c & 0x3F) << 8) | p[pos + 1];
			if (target >= run_start || ++hops > MAX_PTR_HOPS)
				return ERR_MALFORMED;
			if (!end)
				end = pos + 2;
			pos = run_start = target;
			continue;
		}
		if (c & LABEL_KIND_MASK)
			return ERR_MALFORMED;
		if (n + 1u + c > WIRE_NAME_MAX)
			return ERR_MALFORMED;
		if (len - pos < 1u + c)
			return ERR_TRUNC;
		copy_label(out + n, WIRE_NAME_MAX - n, p + pos, len - pos, 1u + c, false);
		n += 1u + c;
		pos += 1u + c;
		if (c == 0)
			break;
	}
	*outlen = n;
	r->pos = end ? end : pos;
	return 0;
}

/* ---- writer ---------------------------------------------------------- */

void wire_writer_init(wire_writer_t *w, uint8_t *p, size_t cap)
{
	w->base = p;
	w->cap = p ? cap : 0;
	w->pos = 0;
}

static inline size_t writer_room(const wire_writer_t *w)
{
	return w->pos < w->cap ? w->cap - w->pos : 0;
}

int wire_put_u8(wire_writer_t *w, uint8_t v)
{
	if (writer_room(w) < 1)
		return ERR_TOOBIG;
	w->base[w->pos++] = v;
	return 0;
}

int wire_put_u16(wire_writer_t *w, uint16_t v)
{
	if (writer_room(w) < 2)
		return ERR_TOOBIG;
	wire_write_u16(w->base + w->pos, v);
	w->pos += 2;
	return 0;
}

int wire_put_u32(wire_writer_t *w, uint32_t v)
{
	if (writer_room(w) < 4)
		return ERR_TOOBIG;
	wire_write_u32(w->base + w->pos, v);
	w->pos += 4;
	return 0;
}

int wire_put_bytes(wire_writer_t *w, const void *p, size_t n)
{
	if (writer_room(w) < n)
		return ERR_TOOBIG;
	if (n)
		memcpy(w->base + w->pos, p, n);
	w->pos += n;
	return 0;
}

void wire_patch_u16(wire_writer_t *w, size_t at, uint16_t v)
{
	assert(at <= w->pos && w->pos - at >= 2);
	/* Still checked in release builds: a bad offset must not write out of bounds. */
	if (at > w->pos || w->pos - at < 2 || w->pos > w->cap)
		return;
	wire_write_u16(w->base + at, v);
}

/* ---- raw big-endian helpers ----------------------------------------- */

uint16_t wire_read_u16(const uint8_t *p)
{
	return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

uint32_t wire_read_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void wire_write_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void wire_write_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- uncompressed names --------------------------------------------- */

int wire_name_check(const uint8_t *name, size_t len)
{
	size_t pos = 0;

	if (!name || len == 0 || len > WIRE_NAME_MAX)
		return ERR_MALFORMED;
	while (pos < len) {
		uint8_t c = name[pos];
		if (c > WIRE_LABEL_MAX)
			return ERR_MALFORMED;
		if (c == 0)
			return pos + 1 == len ? 0 : ERR_MALFORMED;
		pos += 1u + c;
	}
	return ERR_MALFORMED; /* ran off the end without a root label */
}

/*
 * Label lengths are at most 63 (< 'A'), so lowering every byte leaves them
 * alone: no need to walk the labels.
 */
void wire_name_lower(uint8_t *name, size_t len)
{
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w = lower8(load8(name + i));
		memcpy(name + i, &w, 8);
	}
	for (; i < len; i++) /* a short tail: a copy of unknown length would be a call */
		name[i] = lower(name[i]);
}

/*
 * The same trick makes a flat case-insensitive compare exact for valid
 * names: a length octet can only match an equal length octet, so both names
 * split into labels at the same offsets.
 */
static bool equal_nocase(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t wa = load8(a + i), wb = load8(b + i);
		if (wa != wb && lower8(wa) != lower8(wb))
			return false;
	}
	for (; i < n; i++)
		if (a[i] != b[i] && lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

bool wire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && equal_nocase(a, b, alen);
}

bool wire_name_is_subdomain(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen)
{
	size_t pos = 0;

	if (plen == 0 || plen > len)
		return false;
	/* Walk to the label boundary where the remaining suffix has plen bytes. */
	while (pos < len && len - pos > plen) {
		uint8_t c = name[pos];
		if (c == 0 || c > WIRE_LABEL_MAX)
			return false;
		pos += 1u + c;
	}
	return pos <= len && len - pos == plen && equal_nocase(name + pos, parent, plen);
}

unsigned wire_name_labels(const uint8_t *name, size_t len)
{
	unsigned n = 0;

	for (size_t pos = 0; pos < len && name[pos] != 0 && name[pos] <= WIRE_LABEL_MAX;
	     pos += 1u + name[pos])
		n++;
	return n;
}

/*
 * The key is the name without its root octet, labels reversed: a label at
 * name offset o with length l lands at key offset keylen - (o + 1 + l). One
 * forward pass that also validates (no label stack, no second walk); on
 * failure `key` holds garbage and *keylen is untouched.
 */
int wire_name_to_key(const uint8_t *name, size_t len, uint8_t key[WIRE_KEY_MAX], size_t *keylen)
{
	uint8_t off[WIRE_NAME_MAX / 2]; /* label offsets: a label takes at least 2 octets */
	size_t klen, pos = 0, n = 0, k = 0;

	if (!name || len == 0 || len > WIRE_NAME_MAX)
		return ERR_MALFORMED;
	klen = len - 1;
	for (;;) {
		size_t l = name[pos];
		if (l == 0)
			break;
		if (l > WIRE_LABEL_MAX || pos + 1 + l > klen)
			return ERR_MALFORMED;
		off[n++] = (uint8_t)pos;
		pos += 1 + l;
	}
	if (pos != klen)
		return ERR_MALFORMED;
	/* Root side first: a copy's overrun then lands where the next label goes. */
	while (n-- > 0) {
		size_t o = off[n], m = 1u + name[o];
		copy_label(key + k, WIRE_KEY_MAX - k, name + o, len - o, m, true);
		k += m;
	}
	*keylen = klen;
	return 0;
}

static int key_check(const uint8_t *key, size_t keylen)
{
	size_t pos = 0;

	if (keylen >= WIRE_NAME_MAX || (keylen && !key))
		return ERR_MALFORMED;
	while (pos < keylen) {
		uint8_t c = key[pos];
		if (c == 0 || c > WIRE_LABEL_MAX || keylen - pos < 1u + c)
			return ERR_MALFORMED;
		pos += 1u + c;
	}
	return 0;
}

int wire_key_to_name(const uint8_t *key, size_t keylen, uint8_t name[WIRE_NAME_MAX], size_t *len)
{
	size_t pos = 0;

	if (key_check(key, keylen) < 0)
		return ERR_MALFORMED;
	while (pos < keylen) {
		size_t l = key[pos];
		uint8_t *dst = name + keylen - (pos + 1 + l);
		dst[0] = (uint8_t)l;
		for (size_t i = 1; i <= l; i++)
			dst[i] = lower(key[pos + i]);
		pos += 1 + l;
	}
	name[keylen] = 0;
	*len = keylen + 1;
	return 0;
}

/* ---- presentation form ---------------------------------------------- */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decode one character or escape at *s; advances *s. @return byte or ERR_PARSE. */
static int text_unescape(const char **s)
{
	const char *p = *s;

	if (*p != '\\') {
		*s = p + 1;
		return (uint8_t)*p;
	}
	p++;
	if (*p == '\0')
		return ERR_PARSE;
	if (!is_digit(*p)) {
		*s = p + 1;
		return (uint8_t)*p;
	}
	if (!is_digit(p[1]) || !is_digit(p[2]))
		return ERR_PARSE;
	int v = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (v > 255)
		return ERR_PARSE;
	*s = p + 3;
	return v;
}

int wire_name_from_text(const char *text, uint8_t name[WIRE_NAME_MAX], size_t *len)
{
	uint8_t buf[WIRE_NAME_MAX + WIRE_LABEL_MAX + 2];
	size_t n = 0, lab = 0; /* lab: offset of the current label's length octet */
	const char *s = text;

	if (!text)
		return ERR_PARSE;
	if (s[0] == '.' && s[1] == '\0')
		s++;
	buf[0] = 0;
	n = 1;
	while (*s) {
		if (*s == '.') {
			if (n == lab + 1)
				return ERR_PARSE; /* empty label */
			s++;
			if (*s == '\0')
				break; /* trailing dot */
			lab = n++;
			buf[lab] = 0;
			continue;
		}
		int c = text_unescape(&s);
		if (c < 0)
			return c;
		if (n - lab > WIRE_LABEL_MAX || n >= WIRE_NAME_MAX)
			return ERR_TOOBIG;
		buf[n++] = (uint8_t)c;
		buf[lab]++;
	}
	if (n == 1) { /* "" or "." */
		name[0] = 0;
		*len = 1;
		return 0;
	}
	if (n + 1 > WIRE_NAME_MAX)
		return ERR_TOOBIG;
	buf[n++] = 0;
	memcpy(name, buf, n);
	*len = n;
	return 0;
}

static size_t text_put_byte(char *out, uint8_t c)
{
	if (c == '.' || c == '\\') {
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	}
	if (c > 0x20 && c < 0x7F) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = (char)('0' + c / 100);
	out[2] = (char)('0' + c / 10 % 10);
	out[3] = (char)('0' + c % 10);
	return 4;
}

int wire_name_to_text(const uint8_t *name, size_t len, char *out, size_t cap)
{
	char buf[WIRE_NAME_TEXT_MAX];
	size_t n = 0, pos = 0;

	if (wire_name_check(name, len) < 0)
		return ERR_MALFORMED;
	if (len == 1)
		buf[n++] = '.';
	while (name[pos] != 0) {
		size_t l = name[pos];
		for (size_t i = 1; i <= l; i++)
			n += text_put_byte(buf + n, name[pos + i]);
		buf[n++] = '.';
		pos += 1 + l;
	}
	/* 250 data octets * 4 + 4 dots + NUL is the worst case: always fits buf. */
	buf[n++] = '\0';
	if (n > cap)
		return ERR_TOOBIG;
	memcpy(out, buf, n);
	return 0;
}

/* ---- RR type mnemonics ---------------------------------------------- */

static const struct {
	uint16_t type;
	const char *name;
} type_names[] = {
    {WIRE_TYPE_A, "A"},	      {WIRE_TYPE_NS, "NS"},	{WIRE_TYPE_CNAME, "CNAME"},
    {WIRE_TYPE_SOA, "SOA"},   {WIRE_TYPE_PTR, "PTR"},	{WIRE_TYPE_MX, "MX"},
    {WIRE_TYPE_TXT, "TXT"},   {WIRE_TYPE_AAAA, "AAAA"}, {WIRE_TYPE_SRV, "SRV"},
    {WIRE_TYPE_OPT, "OPT"},   {WIRE_TYPE_ANY, "ANY"},	{WIRE_TYPE_AXFR, "AXFR"},
    {WIRE_TYPE_IXFR, "IXFR"},
};

#define TYPE_NAMES_N (sizeof(type_names) / sizeof(type_names[0]))

void wire_type_to_text(uint16_t type, char *out, size_t cap)
{
	if (!out || cap == 0)
		return;
	for (size_t i = 0; i < TYPE_NAMES_N; i++) {
		if (type_names[i].type == type) {
			snprintf(out, cap, "%s", type_names[i].name);
			return;
		}
	}
	snprintf(out, cap, "TYPE%u", (unsigned)type);
}

/* RFC 3597 generic form: "TYPE" and decimal digits, at most 65535. */
static int type_generic(const char *digits)
{
	unsigned v = 0;
	size_t i = 0;

	for (; digits[i]; i++) {
		if (!is_digit(digits[i]))
			return ERR_PARSE;
		v = v * 10 + (unsigned)(digits[i] - '0');
		if (v > 65535)
			return ERR_PARSE; /* checked per digit: v never overflows */
	}
	return i ? (int)v : ERR_PARSE;
}

int wire_type_from_text(const char *text)
{
	if (!text)
		return ERR_PARSE;
	for (size_t i = 0; i < TYPE_NAMES_N; i++)
		if (strcasecmp(text, type_names[i].name) == 0)
			return type_names[i].type;
	if (strncasecmp(text, "TYPE", 4) == 0)
		return type_generic(text + 4);
	return ERR_PARSE;
}
