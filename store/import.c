/*
 * import.c: load an RFC 1035 master file with ldns into one write txn.
 * Off the hot path (CLI/admin start-up); allocates freely. The whole file
 * lands or nothing does: any error aborts the txn.
 */
#include "store/store.h"

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

typedef struct {
	store_wtxn_t *w;
	int src;
	const uint8_t *origin;
	size_t originlen;
	uint8_t *rdata;			       /* IMPORT_RDATA_MAX scratch */
	char msg[2 * WIRE_NAME_TEXT_MAX + 64]; /* reason of the last failure, without PATH:LINE */
	size_t count;
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

/* One parser step. @return 0 to go on, 1 at the end of the file, <0 with im->msg set. */
static int import_step(import_t *im, FILE *fp, uint32_t *ttl, ldns_rdf **orig, ldns_rdf **prev,
		       int *line)
{
	ldns_rr *rr = NULL;
	ldns_status st = ldns_rr_new_frm_fp_l(&rr, fp, ttl, orig, prev, line);
	int ret;

	switch (st) {
	case LDNS_STATUS_OK:
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
	    (im->src = ret, ret = store_source_clear(im->w, im->src)) < 0) {
		fmt_err(err, errlen, "%s: store: %s", path, err_str(ret));
		store_write_abort(im->w);
		im->w = NULL;
		return ret;
	}
	return 0;
}

int store_import_zone(store_t *s, const char *path, const uint8_t *origin, size_t originlen,
		      char *err, size_t errlen, size_t *nrr)
{
	import_t im = {.origin = origin, .originlen = originlen};
	FILE *fp = NULL;
	int ret;

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
	if ((ret = import_file(&im, fp, path, err, errlen)) < 0) {
		store_write_abort(im.w);
		goto out;
	}
	if ((ret = store_write_commit(im.w)) < 0) {
		fmt_err(err, errlen, "%s: store commit: %s", path, err_str(ret));
		goto out;
	}
	if (nrr)
		*nrr = im.count;
	ret = 0;
out:
	free(im.rdata);
	fclose(fp);
	return ret;
}
