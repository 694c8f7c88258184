/*
 * import.c: load an RFC 1035 master file with ldns into one write txn.
 * Off the hot path (CLI/admin start-up); allocates freely. The whole file
 * lands or nothing does: any error aborts the txn.
 */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "common/err.h"
#include "common/wire.h"

#define IMPORT_DEFAULT_TTL 3600
#define IMPORT_RDATA_MAX 65535
#define IMPORT_TTL_MAX 2147483647UL /* RFC 2181 §8 */
#define IMPORT_LINE_MAX 4096	    /* what check_entry reads of an entry's first line */

typedef struct {
	store_wtxn_t *w;
	int src;
	const uint8_t *origin;
	size_t originlen;
	uint8_t *rdata;				/* IMPORT_RDATA_MAX scratch */
	char msg[2 * WIRE_NAME_TEXT_MAX + 128]; /* reason of the last failure, without PATH:LINE */
	size_t count;
	size_t nsoa;
	int line;      /* line of the entry being imported (ldns's count) */
	int soa_line;  /* line of the first SOA */
	bool had_data; /* the previous import of this origin left records */
	int api_src;   /* the API's source id when it holds records, else -1 */
	/* The last name asked about the API (a file's records of one name come together). */
	uint8_t last_key[WIRE_KEY_MAX];
	size_t last_keylen;
	bool last_api;
	store_import_result_t *res; /* skipped names go here */
} import_t;

static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *name_text(const uint8_t *name, size_t len, char *buf, size_t cap)
{
	if (wire_name_to_text(name, len, buf, cap) < 0)
		snprintf(buf, cap, "(bad name)");
	return buf;
}

/* Types whose rdata names we lowercase, so stored answers are canonical. */
static bool lower_names(uint16_t type)
{
	switch (type) {
	case WIRE_TYPE_NS:
	case WIRE_TYPE_CNAME:
	case WIRE_TYPE_PTR:
	case WIRE_TYPE_MX:
	case WIRE_TYPE_SRV:
	case WIRE_TYPE_SOA:
		return true;
	default:
		return false;
	}
}

/* Uncompressed wire rdata: ldns keeps each rdf in wire form already. */
static int rdata_wire(import_t *im, const ldns_rr *rr, uint16_t type, size_t *outlen)
{
	size_t len = 0;

	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *rdf = ldns_rr_rdf(rr, i);
		size_t n = ldns_rdf_size(rdf);
		if (n > IMPORT_RDATA_MAX - len) {
			snprintf(im->msg, sizeof(im->msg), "rdata longer than 65535 bytes");
			return ERR_PARSE;
		}
		memcpy(im->rdata + len, ldns_rdf_data(rdf), n);
		if (ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_DNAME && lower_names(type))
			wire_name_lower(im->rdata + len, n);
		len += n;
	}
	*outlen = len;
	return 0;
}

/* SOA: validated but not stored (skydns synthesizes its own). @return 1 skipped or ERR_PARSE. */
static int check_soa(import_t *im, const ldns_rr *rr, const ldns_rdf *owner)
{
	if (!wire_name_equal(ldns_rdf_data(owner), ldns_rdf_size(owner), im->origin,
			     im->originlen)) {
		snprintf(im->msg, sizeof(im->msg), "SOA is only allowed at the zone apex");
		return ERR_PARSE;
	}
	if (ldns_rr_rd_count(rr) != 7) {
		snprintf(im->msg, sizeof(im->msg), "SOA needs 7 fields");
		return ERR_PARSE;
	}
	if (im->nsoa > 0) {
		snprintf(im->msg, sizeof(im->msg),
			 "a second SOA record (the first is on line %d; a zone has one)",
			 im->soa_line);
		return ERR_PARSE;
	}
	im->nsoa++;
	im->soa_line = im->line;
	return 1;
}

static int check_owner(import_t *im, const ldns_rdf *owner)
{
	char a[WIRE_NAME_TEXT_MAX], b[WIRE_NAME_TEXT_MAX];
	const uint8_t *o = ldns_rdf_data(owner);
	size_t olen = ldns_rdf_size(owner);

	if (wire_name_check(o, olen) == 0 &&
	    wire_name_is_subdomain(o, olen, im->origin, im->originlen))
		return 0;
	snprintf(im->msg, sizeof(im->msg), "name %s is outside zone %s",
		 name_text(o, olen, a, sizeof(a)),
		 name_text(im->origin, im->originlen, b, sizeof(b)));
	return ERR_PARSE;
}

/*
 * RFC 1034 §3.6.2: a name with a CNAME has no other data. Checked against the
 * store as it is inside this txn, so it also sees data of other sources.
 */
static int check_cname(import_t *im, const ldns_rdf *owner, uint16_t type)
{
	char a[WIRE_NAME_TEXT_MAX];
	const uint8_t *o = ldns_rdf_data(owner);
	size_t olen = ldns_rdf_size(owner), klen;
	uint8_t lower[WIRE_NAME_MAX], key[WIRE_KEY_MAX];
	store_rtxn_t *view = store_write_view(im->w);
	store_lookup_t lk;
	uint64_t mask = 0;
	int ret;

	if (type == WIRE_TYPE_CNAME && wire_name_equal(o, olen, im->origin, im->originlen)) {
		snprintf(im->msg, sizeof(im->msg),
			 "CNAME at the zone apex %s (the apex has SOA and NS records)",
			 name_text(o, olen, a, sizeof(a)));
		return ERR_PARSE;
	}
	memcpy(lower, o, olen);
	wire_name_lower(lower, olen);
	if (wire_name_to_key(lower, olen, key, &klen) < 0 ||
	    (ret = store_lookup(view, key, klen, type, &lk)) < 0)
		return ERR_STORE;
	if (type == WIRE_TYPE_CNAME && lk.has_rrset) {
		snprintf(im->msg, sizeof(im->msg), "a second CNAME at %s (a name has at most one)",
			 name_text(o, olen, a, sizeof(a)));
		return ERR_PARSE;
	}
	if (type == WIRE_TYPE_CNAME && (ret = store_name_sources(view, key, klen, &mask)) < 0)
		return ret;
	if (type == WIRE_TYPE_CNAME && mask != 0) {
		snprintf(im->msg, sizeof(im->msg),
			 "CNAME at %s beside other data (a name with a CNAME has nothing else)",
			 name_text(o, olen, a, sizeof(a)));
		return ERR_PARSE;
	}
	if (type != WIRE_TYPE_CNAME && lk.has_cname) {
		snprintf(im->msg, sizeof(im->msg),
			 "%s already has a CNAME, so it can have no other data",
			 name_text(o, olen, a, sizeof(a)));
		return ERR_PARSE;
	}
	return 0;
}

/*
 * A name the API holds records at (created through the API, or taken over from an
 * import with POST /skydns/api/<name>?takeover=import) is the API's: the import leaves
 * it alone, so a re-import cannot undo a takeover or put the file's records beside the
 * API's (the API, for its part, refuses names an import holds). @return 1 skip, 0, <0.
 */
static int api_owns(import_t *im, const ldns_rdf *owner)
{
	const uint8_t *o = ldns_rdf_data(owner);
	size_t olen = ldns_rdf_size(owner), klen, n;
	uint8_t lower[WIRE_NAME_MAX], key[WIRE_KEY_MAX];
	char text[WIRE_NAME_TEXT_MAX];
	store_import_result_t *res = im->res;
	uint64_t mask = 0;
	int ret;

	if (im->api_src < 0)
		return 0;
	memcpy(lower, o, olen);
	wire_name_lower(lower, olen);
	if (wire_name_to_key(lower, olen, key, &klen) < 0)
		return ERR_STORE;
	if (klen == im->last_keylen && memcmp(key, im->last_key, klen) == 0) {
		if (im->last_api)
			res->nskipped_rr++;
		return im->last_api;
	}
	if ((ret = store_name_sources(store_write_view(im->w), key, klen, &mask)) < 0)
		return ret;
	memcpy(im->last_key, key, klen);
	im->last_keylen = klen;
	im->last_api = (mask >> im->api_src) & 1;
	if (!im->last_api)
		return 0;
	res->nskipped_rr++;
	res->nskipped_names++;
	n = strlen(res->skipped);
	name_text(lower, olen, text, sizeof(text));
	if (res->nskipped_names > 1 && n + 2 < sizeof(res->skipped))
		n += (size_t)snprintf(res->skipped + n, sizeof(res->skipped) - n, ", ");
	if (n + strlen(text) + 4 < sizeof(res->skipped))
		snprintf(res->skipped + n, sizeof(res->skipped) - n, "%s", text);
	else if (n + 4 < sizeof(res->skipped) && !strstr(res->skipped, "..."))
		snprintf(res->skipped + n, sizeof(res->skipped) - n, "...");
	return 1;
}

static int import_rr(import_t *im, const ldns_rr *rr)
{
	const ldns_rdf *owner = ldns_rr_owner(rr);
	uint16_t type = (uint16_t)ldns_rr_get_type(rr);
	size_t rdlen;
	int ret;

	if ((ret = check_owner(im, owner)) < 0)
		return ret;
	if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
		snprintf(im->msg, sizeof(im->msg), "class %u not supported (IN only)",
			 (unsigned)ldns_rr_get_class(rr));
		return ERR_PARSE;
	}
	if (type == WIRE_TYPE_OPT || (type >= 249 && type <= 255)) {
		snprintf(im->msg, sizeof(im->msg), "meta type %u not allowed in a zone", type);
		return ERR_PARSE;
	}
	if (type == WIRE_TYPE_SOA)
		return check_soa(im, rr, owner) < 0 ? ERR_PARSE : 0;
	if ((ret = api_owns(im, owner)) != 0) {
		if (ret < 0)
			snprintf(im->msg, sizeof(im->msg), "store: %s", err_str(ret));
		return ret < 0 ? ret : 0;
	}
	if ((ret = check_cname(im, owner, type)) < 0)
		return ret;
	if ((ret = rdata_wire(im, rr, type, &rdlen)) < 0)
		return ret;
	ret = store_rr_add(im->w, im->src, ldns_rdf_data(owner), ldns_rdf_size(owner), type,
			   ldns_rr_ttl(rr), im->rdata, (uint16_t)rdlen);
	if (ret < 0) {
		snprintf(im->msg, sizeof(im->msg), "store: %s", err_str(ret));
		return ret;
	}
	im->count++;
	return 0;
}

/* $ORIGIN may move down inside the zone, never out of it. */
static int check_origin(import_t *im, const ldns_rdf *o)
{
	char a[WIRE_NAME_TEXT_MAX], b[WIRE_NAME_TEXT_MAX];

	if (o &&
	    wire_name_is_subdomain(ldns_rdf_data(o), ldns_rdf_size(o), im->origin, im->originlen))
		return 0;
	snprintf(im->msg, sizeof(im->msg), "$ORIGIN %s is outside zone %s",
		 o ? name_text(ldns_rdf_data(o), ldns_rdf_size(o), a, sizeof(a)) : "?",
		 name_text(im->origin, im->originlen, b, sizeof(b)));
	return ERR_PARSE;
}

/* A TTL as RFC 1035 (seconds) or BIND writes it (1h30m), at most 2^31 - 1 (RFC 2181 §8). */
static bool ttl_ok(const char *t)
{
	unsigned long long total = 0, n = 0;
	bool digits = false;

	for (; *t; t++) {
		if (isdigit((unsigned char)*t)) {
			n = n * 10 + (unsigned)(*t - '0');
			digits = true;
			if (n > IMPORT_TTL_MAX)
				return false;
			continue;
		}
		const char *u = strchr("smhdw", tolower((unsigned char)*t));
		static const unsigned mult[] = {1, 60, 3600, 86400, 604800};
		if (!digits || !u || *u == '\0')
			return false;
		total += n * mult[u - "smhdw"];
		n = 0;
		digits = false;
	}
	total += n;
	return total <= IMPORT_TTL_MAX;
}

/*
 * ldns says "could not parse the RR's rdata" for an unknown type and a bad TTL
 * alike, and takes "99x" as 99 and 4294967296 as 0. So the fields before the
 * rdata ([owner] [ttl] [class] type, ttl and class in either order) are read
 * here from the entry's first line. @return 0 or ERR_PARSE with im->msg set.
 */
static int check_fields(import_t *im, char *line, char *type, size_t typecap)
{
	char *save = NULL, *tok;
	bool owner = !isspace((unsigned char)line[0]);

	line[strcspn(line, ";")] = '\0'; /* a comment; quotes come only after the type */
	tok = strtok_r(line, " \t\r\n", &save);
	if (tok && owner)
		tok = strtok_r(NULL, " \t\r\n", &save);
	for (int i = 0; tok && i < 3; i++, tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (strcmp(tok, "(") == 0 || ldns_get_rr_class_by_name(tok) != 0)
			continue;
		if (isdigit((unsigned char)tok[0]) || tok[0] == '-' || tok[0] == '+') {
			if (ttl_ok(tok))
				continue;
			snprintf(
			    im->msg, sizeof(im->msg),
			    "bad TTL \"%.64s\" (seconds up to 2147483647, or units as in 1h30m)",
			    tok);
			return ERR_PARSE;
		}
		snprintf(type, typecap, "%s", tok);
		if (ldns_get_rr_type_by_name(tok) != 0)
			return 0;
		snprintf(im->msg, sizeof(im->msg), "unknown type \"%.64s\"", tok);
		return ERR_PARSE;
	}
	return 0;
}

/*
 * Read the first line of the entry that starts at `start` (skipping blank and
 * comment lines) and check it, then return to where ldns left the file.
 */
static int check_entry(import_t *im, FILE *fp, long start, char *type, size_t typecap)
{
	char buf[IMPORT_LINE_MAX];
	bool eof = feof(fp);
	long end = ftell(fp);
	int ret = 0;

	type[0] = '\0';
	if (start < 0 || end < 0 || fseek(fp, start, SEEK_SET) != 0)
		return 0; /* a pipe: ldns's own checks only */
	while (fgets(buf, sizeof(buf), fp)) {
		size_t skip = strspn(buf, " \t\r\n");
		if (buf[skip] != '\0' && buf[skip] != ';') {
			ret = check_fields(im, buf, type, typecap);
			break;
		}
	}
	/* Back where ldns stopped, with its end-of-file state (error_line reads it). */
	if (fseek(fp, end, SEEK_SET) == 0 && eof)
		(void)fgetc(fp);
	return ret;
}

/* One parser step. @return 0 to go on, 1 at the end of the file, <0 with im->msg set. */
static int import_step(import_t *im, FILE *fp, uint32_t *ttl, ldns_rdf **orig, ldns_rdf **prev,
		       int *line)
{
	ldns_rr *rr = NULL;
	long start = ftell(fp);
	ldns_status st = ldns_rr_new_frm_fp_l(&rr, fp, ttl, orig, prev, line);
	char type[32];
	int ret;

	im->line = *line;
	switch (st) {
	case LDNS_STATUS_OK:
		ret = check_entry(im, fp, start, type, sizeof(type));
		if (ret == 0)
			ret = import_rr(im, rr);
		ldns_rr_free(rr);
		return ret;
	case LDNS_STATUS_SYNTAX_EMPTY:
	case LDNS_STATUS_SYNTAX_TTL:
		return feof(fp) ? 1 : 0;
	case LDNS_STATUS_SYNTAX_ORIGIN:
		return check_origin(im, *orig);
	case LDNS_STATUS_SYNTAX_INCLUDE:
		snprintf(im->msg, sizeof(im->msg), "$INCLUDE is not supported");
		return ERR_PARSE;
	default:
		/* ldns reports a read of nothing at end of file as a syntax error. */
		if (st == LDNS_STATUS_SYNTAX_ERR && feof(fp))
			return 1;
		if (check_entry(im, fp, start, type, sizeof(type)) < 0)
			return ERR_PARSE;
		if (type[0])
			snprintf(im->msg, sizeof(im->msg), "bad %s data: %s", type,
				 ldns_get_errorstr_by_id(st));
		else
			snprintf(im->msg, sizeof(im->msg), "%s", ldns_get_errorstr_by_id(st));
		return ERR_PARSE;
	}
}

/*
 * ldns counts the newlines it consumed, so after a failed entry that is the
 * entry's (last) line, except on a last line without a newline.
 */
static int error_line(FILE *fp, int line)
{
	if (feof(fp) && fseek(fp, -1, SEEK_END) == 0 && fgetc(fp) != '\n')
		return line + 1;
	return line;
}

static int import_file(import_t *im, FILE *fp, const char *path, char *err, size_t errlen)
{
	uint32_t ttl = IMPORT_DEFAULT_TTL;
	ldns_rdf *orig = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, im->originlen, im->origin);
	ldns_rdf *prev = orig ? ldns_rdf_clone(orig) : NULL;
	int line = 0, ret = 0;

	if (!orig || !prev) {
		ret = -ENOMEM;
		fmt_err(err, errlen, "%s: out of memory", path);
		goto out;
	}
	/* Bounded by the file: every step consumes at least one line or ends. */
	while (!feof(fp) && (ret = import_step(im, fp, &ttl, &orig, &prev, &line)) == 0)
		;
	if (ret < 0)
		fmt_err(err, errlen, "%s:%d: %s", path, error_line(fp, line), im->msg);
	else
		ret = 0;
out:
	ldns_rdf_deep_free(orig);
	ldns_rdf_deep_free(prev);
	return ret;
}

/* Open the txn and replace the previous import of this origin. */
static int import_begin(store_t *s, import_t *im, const char *path, char *err, size_t errlen)
{
	char otext[WIRE_NAME_TEXT_MAX], src[STORE_SOURCE_MAX];
	int ret;

	name_text(im->origin, im->originlen, otext, sizeof(otext));
	if ((size_t)snprintf(src, sizeof(src), "import:%s", otext) >= sizeof(src)) {
		fmt_err(err, errlen, "%s: origin %s too long for a source name", path, otext);
		return ERR_INVAL;
	}
	if ((ret = store_write_begin(s, &im->w)) < 0) {
		fmt_err(err, errlen, "%s: store: %s", path, err_str(ret));
		return ret;
	}
	if ((ret = store_source_id(im->w, src)) < 0 ||
	    (im->src = ret, ret = store_source_has_data(store_write_view(im->w), im->src)) < 0 ||
	    (im->had_data = ret == 1, ret = store_source_clear(im->w, im->src)) < 0) {
		fmt_err(err, errlen, "%s: store: %s", path, err_str(ret));
		store_write_abort(im->w);
		im->w = NULL;
		return ret;
	}
	im->api_src = store_source_find(store_write_view(im->w), STORE_SOURCE_API);
	if (im->api_src >= 0 && store_source_has_data(store_write_view(im->w), im->api_src) != 1)
		im->api_src = -1; /* no API records: nothing to skip, no look-up per name */
	return 0;
}

/* An empty file over a zone with records is most likely a truncated one. */
static int check_empty(const import_t *im, const char *path, unsigned flags, char *err,
		       size_t errlen)
{
	char otext[WIRE_NAME_TEXT_MAX];

	if (im->count > 0 || im->res->nskipped_rr > 0 || !im->had_data ||
	    (flags & STORE_IMPORT_ALLOW_EMPTY))
		return 0;
	fmt_err(err, errlen,
		"%s: no records: importing it would empty zone %s (pass -import-allow-empty to do "
		"that)",
		path, name_text(im->origin, im->originlen, otext, sizeof(otext)));
	return ERR_PARSE;
}

int store_import_zone(store_t *s, const char *path, const uint8_t *origin, size_t originlen,
		      char *err, size_t errlen, size_t *nrr)
{
	store_import_result_t res;
	int ret = store_import_zone_flags(s, path, origin, originlen, 0, err, errlen, &res);

	if (ret == 0 && nrr)
		*nrr = res.nrr;
	return ret;
}

int store_import_zone_flags(store_t *s, const char *path, const uint8_t *origin, size_t originlen,
			    unsigned flags, char *err, size_t errlen, store_import_result_t *res)
{
	store_import_result_t scratch;
	import_t im = {
	    .origin = origin, .originlen = originlen, .api_src = -1, .res = res ? res : &scratch};
	FILE *fp = NULL;
	int ret;

	memset(im.res, 0, sizeof(*im.res));
	if (!s || !path || !origin || wire_name_check(origin, originlen) < 0) {
		fmt_err(err, errlen, "%s: invalid origin", path ? path : "(null)");
		return ERR_INVAL;
	}
	if (!(fp = fopen(path, "r"))) {
		ret = -errno;
		fmt_err(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}
	if (!(im.rdata = malloc(IMPORT_RDATA_MAX))) {
		ret = -ENOMEM;
		fmt_err(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if ((ret = import_begin(s, &im, path, err, errlen)) < 0)
		goto out;
	if ((ret = import_file(&im, fp, path, err, errlen)) < 0 ||
	    (ret = check_empty(&im, path, flags, err, errlen)) < 0) {
		store_write_abort(im.w);
		goto out;
	}
	if ((ret = store_write_commit(im.w)) < 0) {
		fmt_err(err, errlen, "%s: store commit: %s", path, err_str(ret));
		goto out;
	}
	if (res) {
		res->nrr = im.count;
		res->nsoa = im.nsoa;
	}
	ret = 0;
out:
	free(im.rdata);
	fclose(fp);
	return ret;
}
