/*
 * test_import: master-file import into a temp store: every supported type,
 * $ORIGIN/$TTL, relative names, errors with PATH:LINE and no change to the
 * store, out-of-zone refusal, re-import replacing, zones side by side.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wire.h"
#include "store/store.h"
#include "tests/unit/check.h"

static char g_dir[256];
static store_t *g_s;

static const char zone_full[] = "; test zone\n"
				"$ORIGIN example.test.\n"
				"$TTL 120\n"
				"\n"
				"@       IN SOA ns1 hostmaster ( 1 3600 600\n"
				"                86400 60 )\n"
				"@           IN NS    NS1.Example.Test.\n"
				"ns1         IN A     192.0.2.1\n"
				"www     300 IN A     192.0.2.10\n"
				"www         IN AAAA  2001:db8::10\n"
				"alias       IN CNAME WWW\n"
				"_http._tcp  IN SRV   0 10 80 www.example.test.\n"
				"txt         IN TXT   \"hello world\" \"two\"\n"
				"mail        IN MX    10 MX1\n"
				"ptr         IN PTR   www.example.test.\n"
				"$ORIGIN sub.example.test.\n"
				"deep        IN A     192.0.2.20 ; relative to the new origin\n"
				"$TTL 60\n"
				"ttl60       IN A     192.0.2.21\n";

static int write_file(const char *name, const char *text, char *path, size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/%s", g_dir, name);
	if (!(f = fopen(path, "w")))
		return -errno;
	fputs(text, f);
	fclose(f);
	return 0;
}

static int import(const char *name, const char *text, const char *origin, char *err, size_t errlen,
		  size_t *nrr)
{
	char path[512];
	uint8_t o[WIRE_NAME_MAX];
	size_t olen;

	if (write_file(name, text, path, sizeof(path)) < 0 ||
	    wire_name_from_text(origin, o, &olen) < 0)
		return -EIO;
	err[0] = '\0';
	return store_import_zone(g_s, path, o, olen, err, errlen, nrr);
}

static int import_flags(const char *name, const char *text, const char *origin, unsigned flags,
			char *err, size_t errlen, store_import_result_t *res)
{
	char path[512];
	uint8_t o[WIRE_NAME_MAX];
	size_t olen;

	if (write_file(name, text, path, sizeof(path)) < 0 ||
	    wire_name_from_text(origin, o, &olen) < 0)
		return -EIO;
	err[0] = '\0';
	return store_import_zone_flags(g_s, path, o, olen, flags, err, errlen, res);
}

/* The rrset in a fresh snapshot; *t must be ended by the caller. */
static int get(const char *name, uint16_t type, store_rtxn_t **t, store_lookup_t *lk)
{
	uint8_t n[WIRE_NAME_MAX], key[WIRE_KEY_MAX];
	size_t nlen, klen;

	if (wire_name_from_text(name, n, &nlen) < 0 || wire_name_to_key(n, nlen, key, &klen) < 0)
		return ERR_INVAL;
	if (store_read_begin(g_s, t) < 0)
		return ERR_STORE;
	return store_lookup(*t, key, klen, type, lk);
}

/* First entry of name/type: ttl and rdata copied out; -1 when absent. */
static int first_rr(const char *name, uint16_t type, uint32_t *ttl, uint8_t *rd, size_t cap)
{
	store_rtxn_t *t = NULL;
	store_lookup_t lk;
	store_rr_t rr;
	size_t pos = 0;
	int ret = -1;

	if (get(name, type, &t, &lk) == 0 && lk.has_rrset &&
	    store_rrset_next(&lk.rrset, &pos, &rr) == 1 && rr.rdlen <= cap) {
		*ttl = rr.ttl;
		memcpy(rd, rr.rdata, rr.rdlen);
		ret = rr.rdlen;
	}
	store_read_end(t);
	return ret;
}

static bool exists(const char *name)
{
	store_rtxn_t *t = NULL;
	store_lookup_t lk = {0};
	bool ret = get(name, WIRE_TYPE_A, &t, &lk) == 0 && lk.exists;

	store_read_end(t);
	return ret;
}

static uint64_t generation(void)
{
	store_rtxn_t *t = NULL;
	uint64_t g = 0;

	if (store_read_begin(g_s, &t) == 0)
		g = store_generation(t);
	store_read_end(t);
	return g;
}

static void check_rr(const char *name, uint16_t type, uint32_t ttl, const void *rd, int rdlen)
{
	uint8_t buf[512];
	uint32_t got_ttl = 0;
	int n = first_rr(name, type, &got_ttl, buf, sizeof(buf));

	CHECK_EQ_INT(n, rdlen);
	CHECK_EQ_INT(got_ttl, ttl);
	if (n == rdlen)
		CHECK_MEM(buf, rd, (size_t)rdlen);
	else
		fprintf(stderr, "  (for %s type %u)\n", name, type);
}

static void test_full(void)
{
	char err[512];
	size_t nrr = 0;
	uint8_t buf[64];
	uint32_t ttl;

	CHECK_EQ_INT(import("full.zone", zone_full, "example.test.", err, sizeof(err), &nrr), 0);
	if (err[0])
		fprintf(stderr, "  import: %s\n", err);
	CHECK_EQ_INT(nrr, 11);
	CHECK_EQ_INT(first_rr("example.test.", WIRE_TYPE_SOA, &ttl, buf, sizeof(buf)), -1);
	check_rr("example.test.", WIRE_TYPE_NS, 120, "\3ns1\7example\4test", 18);
	check_rr("ns1.example.test.", WIRE_TYPE_A, 120, "\xc0\0\2\1", 4);
	check_rr("www.example.test.", WIRE_TYPE_A, 300, "\xc0\0\2\x0a", 4);
	check_rr("www.example.test.", WIRE_TYPE_AAAA, 120,
		 "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x10", 16);
	check_rr("alias.example.test.", WIRE_TYPE_CNAME, 120, "\3www\7example\4test", 18);
	check_rr("_http._tcp.example.test.", WIRE_TYPE_SRV, 120,
		 "\0\0\0\x0a\0\x50\3www\7example\4test", 24);
	check_rr("txt.example.test.", WIRE_TYPE_TXT, 120, "\x0bhello world\x03two", 16);
	check_rr("mail.example.test.", WIRE_TYPE_MX, 120, "\0\x0a\3mx1\7example\4test", 20);
	check_rr("ptr.example.test.", WIRE_TYPE_PTR, 120, "\3www\7example\4test", 18);
	check_rr("deep.sub.example.test.", WIRE_TYPE_A, 120, "\xc0\0\2\x14", 4);
	check_rr("ttl60.sub.example.test.", WIRE_TYPE_A, 60, "\xc0\0\2\x15", 4);
	CHECK(exists("sub.example.test.")); /* empty non-terminal */

	/* Without $TTL the default is 3600; the origin comes from the caller. */
	CHECK_EQ_INT(
	    import("nottl.zone", "x IN A 192.0.2.99\n", "other.test.", err, sizeof(err), &nrr), 0);
	CHECK_EQ_INT(nrr, 1);
	check_rr("x.other.test.", WIRE_TYPE_A, 3600, "\xc0\0\2\x63", 4);
}

static void test_errors(void)
{
	char err[512], want[600];
	size_t nrr = 12345;
	uint64_t g = generation();
	int ret;

	/* Line 4 is bad; lines before it must not land. */
	ret = import("bad.zone",
		     "$ORIGIN example.test.\n"
		     "new1 IN A 192.0.2.50\n"
		     "; comment\n"
		     "www IN A 999.1.1.1\n"
		     "new2 IN A 192.0.2.51\n",
		     "example.test.", err, sizeof(err), &nrr);
	CHECK_EQ_INT(ret, ERR_PARSE);
	snprintf(want, sizeof(want), "%s/bad.zone:4: ", g_dir);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	if (strncmp(err, want, strlen(want)) != 0)
		fprintf(stderr, "  got: %s\n", err);
	CHECK_EQ_INT(nrr, 12345);
	CHECK_EQ_INT(generation(), g);
	CHECK(!exists("new1.example.test."));
	CHECK(exists("www.example.test."));

	ret = import("out.zone",
		     "www IN A 192.0.2.1\n"
		     "\n"
		     "www.elsewhere.test. IN A 192.0.2.2\n",
		     "example.test.", err, sizeof(err), NULL);
	CHECK_EQ_INT(ret, ERR_PARSE);
	snprintf(want, sizeof(want),
		 "%s/out.zone:3: name www.elsewhere.test. is outside zone example.test.", g_dir);
	CHECK(strcmp(err, want) == 0);
	if (strcmp(err, want) != 0)
		fprintf(stderr, "  got: %s\n", err);

	ret = import("origin.zone", "$ORIGIN test.\nx IN A 192.0.2.1\n", "example.test.", err,
		     sizeof(err), NULL);
	CHECK_EQ_INT(ret, ERR_PARSE);
	CHECK(strstr(err, "origin.zone:1: $ORIGIN test. is outside zone") != NULL);

	ret = import("incl.zone", "a IN A 192.0.2.1\n$INCLUDE /etc/passwd\n", "example.test.", err,
		     sizeof(err), NULL);
	CHECK_EQ_INT(ret, ERR_PARSE);
	CHECK(strstr(err, "incl.zone:2: $INCLUDE") != NULL);

	ret = import("class.zone", "a IN A 192.0.2.1\na CH A 192.0.2.1", "example.test.", err,
		     sizeof(err), NULL);
	CHECK_EQ_INT(ret, ERR_PARSE);
	CHECK(strstr(err, "class.zone:2: class") != NULL); /* no final newline */

	ret = import("soa.zone", "a IN SOA ns1 hm 1 2 3 4 5\n", "example.test.", err, sizeof(err),
		     NULL);
	CHECK_EQ_INT(ret, ERR_PARSE);
	CHECK(strstr(err, "apex") != NULL);

	uint8_t o[WIRE_NAME_MAX];
	size_t olen;
	CHECK_EQ_INT(wire_name_from_text("example.test.", o, &olen), 0);
	ret = store_import_zone(g_s, "/nonexistent/zone", o, olen, err, sizeof(err), NULL);
	CHECK_EQ_INT(ret, -ENOENT);
	CHECK(strncmp(err, "/nonexistent/zone: ", 19) == 0);

	CHECK_EQ_INT(generation(), g);
	CHECK(exists("www.example.test."));
	CHECK(exists("x.other.test."));
}

static void test_reimport(void)
{
	char err[512];
	size_t nrr = 0;
	uint8_t buf[64];
	uint32_t ttl;

	CHECK_EQ_INT(import("full.zone",
			    "$ORIGIN example.test.\n"
			    "www 30 IN A 192.0.2.10\n"
			    "new IN A 192.0.2.77\n",
			    "example.test.", err, sizeof(err), &nrr),
		     0);
	CHECK_EQ_INT(nrr, 2);
	check_rr("www.example.test.", WIRE_TYPE_A, 30, "\xc0\0\2\x0a", 4);
	check_rr("new.example.test.", WIRE_TYPE_A, 3600, "\xc0\0\2\x4d", 4);
	CHECK_EQ_INT(first_rr("www.example.test.", WIRE_TYPE_AAAA, &ttl, buf, sizeof(buf)), -1);
	CHECK(!exists("alias.example.test."));
	CHECK(!exists("deep.sub.example.test."));
	CHECK(!exists("sub.example.test."));
	/* The other zone was not touched. */
	check_rr("x.other.test.", WIRE_TYPE_A, 3600, "\xc0\0\2\x63", 4);

	/* Re-importing other.test. leaves example.test. alone. */
	CHECK_EQ_INT(
	    import("nottl.zone", "y IN A 192.0.2.98\n", "other.test.", err, sizeof(err), &nrr), 0);
	CHECK(!exists("x.other.test."));
	CHECK(exists("y.other.test."));
	CHECK(exists("new.example.test."));

	/* A record that another source also holds keeps that source's entry. */
	store_wtxn_t *w = NULL;
	uint8_t n[WIRE_NAME_MAX];
	size_t nlen;
	CHECK_EQ_INT(store_write_begin(g_s, &w), 0);
	int api = store_source_id(w, "api");
	CHECK_EQ_INT(wire_name_from_text("y.other.test.", n, &nlen), 0);
	CHECK_EQ_INT(store_rr_add(w, api, n, nlen, WIRE_TYPE_A, 5, (const uint8_t *)"\1\2\3\4", 4),
		     0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	/* Issue 17: an empty file no longer wipes a zone unless asked to. */
	uint64_t g = generation();
	CHECK_EQ_INT(import("nottl.zone", "; nothing\n", "other.test.", err, sizeof(err), &nrr),
		     ERR_PARSE);
	CHECK(strstr(err, "nottl.zone: no records: importing it would empty zone other.test. "
			  "(pass -import-allow-empty to do that)") != NULL);
	CHECK_EQ_INT(generation(), g);
	CHECK(exists("y.other.test."));
	store_import_result_t res = {.nrr = 99, .nsoa = 99};
	CHECK_EQ_INT(import_flags("nottl.zone", "", "other.test.", STORE_IMPORT_ALLOW_EMPTY, err,
				  sizeof(err), &res),
		     0);
	CHECK_EQ_INT(res.nrr, 0);
	CHECK_EQ_INT(res.nsoa, 0);
	check_rr("y.other.test.", WIRE_TYPE_A, 5, "\1\2\3\4", 4);
	/* Now the zone holds no import: another empty file is harmless. */
	CHECK_EQ_INT(import("nottl.zone", "", "other.test.", err, sizeof(err), &nrr), 0);
}

/* Issue 17: data that cannot work is refused with PATH:LINE and its own message. */
static void expect_refused(const char *text, int line, const char *msg)
{
	char err[512], want[700];
	uint64_t g = generation();

	CHECK_EQ_INT(import("v.zone", text, "example.test.", err, sizeof(err), NULL), ERR_PARSE);
	snprintf(want, sizeof(want), "%s/v.zone:%d: %s", g_dir, line, msg);
	CHECK(strcmp(err, want) == 0);
	if (strcmp(err, want) != 0)
		fprintf(stderr, "  got:  %s\n  want: %s\n", err, want);
	CHECK_EQ_INT(generation(), g);
}

static void test_validation(void)
{
	char err[512];
	store_import_result_t res = {0};

	expect_refused("www IN A 192.0.2.1\nwww IN CNAME other\n", 2,
		       "CNAME at www.example.test. beside other data (a name with a CNAME has "
		       "nothing else)");
	expect_refused("www IN CNAME other\n\nwww IN TXT \"x\"\n", 3,
		       "www.example.test. already has a CNAME, so it can have no other data");
	expect_refused("www IN CNAME a\nwww IN CNAME b\n", 2,
		       "a second CNAME at www.example.test. (a name has at most one)");
	expect_refused("@ IN CNAME elsewhere.test.\n", 1,
		       "CNAME at the zone apex example.test. (the apex has SOA and NS records)");
	expect_refused("@ IN SOA ns1 hm 1 2 3 4 5\nwww IN A 192.0.2.1\n@ IN SOA ns1 hm 2 2 3 4 5\n",
		       3, "a second SOA record (the first is on line 1; a zone has one)");
	expect_refused("www IN A 192.0.2.1\nx.elsewhere.test. IN A 192.0.2.2\n", 2,
		       "name x.elsewhere.test. is outside zone example.test.");
	expect_refused("www IN FOO 1.2.3.4\n", 1, "unknown type \"FOO\"");
	expect_refused("www IN A 192.0.2.1\nwww FOO\n", 2, "unknown type \"FOO\"");
	expect_refused("www 99x IN A 192.0.2.1\n", 1,
		       "bad TTL \"99x\" (seconds up to 2147483647, or units as in 1h30m)");
	expect_refused("www -5 IN A 192.0.2.1\n", 1,
		       "bad TTL \"-5\" (seconds up to 2147483647, or units as in 1h30m)");
	expect_refused("www IN 4294967296 A 192.0.2.1\n", 1,
		       "bad TTL \"4294967296\" (seconds up to 2147483647, or units as in 1h30m)");
	expect_refused("; c\n\nwww IN A 1.2.3\n", 3,
		       "bad A data: Syntax error, could not parse the RR's rdata");

	/* What is fine stays fine: BIND TTL units, TYPEnnn, an SOA once, CNAME alone. */
	CHECK_EQ_INT(import_flags("ok.zone",
				  "@ IN SOA ns1 hm ( 1 2\n 3 4 5 )\n"
				  "a 1h30m IN A 192.0.2.1\n"
				  "b 2147483647 IN TYPE65280 \\# 1 00\n"
				  "c IN CNAME a\n"
				  "  IN TXT \"x\" ; no owner: the previous one, c\n",
				  "example.test.", 0, err, sizeof(err), &res),
		     ERR_PARSE); /* the owner-less TXT belongs to c, which has a CNAME */
	CHECK(strstr(err, "ok.zone:6: c.example.test. already has a CNAME") != NULL);
	CHECK_EQ_INT(import_flags("ok.zone",
				  "@ IN SOA ns1 hm ( 1 2\n 3 4 5 )\n"
				  "a 1h30m IN A 192.0.2.1\n"
				  "b 2147483647 IN TYPE65280 \\# 1 00\n"
				  "c IN CNAME a\n",
				  "example.test.", 0, err, sizeof(err), &res),
		     0);
	CHECK_EQ_INT(res.nrr, 3);
	CHECK_EQ_INT(res.nsoa, 1);
	check_rr("a.example.test.", WIRE_TYPE_A, 5400, "\xc0\0\2\1", 4);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Sources and entries of name/type: count of entries, *api those of the "api" source. */
static int count_rr(const char *name, uint16_t type, int *api)
{
	store_rtxn_t *t = NULL;
	store_lookup_t lk;
	store_rr_t rr;
	size_t pos = 0;
	int n = 0, src;

	*api = 0;
	if (get(name, type, &t, &lk) == 0 && lk.has_rrset) {
		src = store_source_find(t, STORE_SOURCE_API);
		while (store_rrset_next(&lk.rrset, &pos, &rr) == 1) {
			n++;
			*api += rr.source_id == src;
		}
	}
	store_read_end(t);
	return n;
}

/* Issue 18: a name the API holds (taken over, or written through the API) is the API's:
 * a re-import skips the file's records there and says so; other names import as before. */
static void test_api_names_skipped(void)
{
	static const char zone[] = "$ORIGIN skip.test.\n$TTL 60\n"
				   "www A 10.0.1.1\nwww A 10.0.1.2\nwww TXT \"z\"\n"
				   "other A 10.0.2.1\napi2 A 10.0.3.1\n";
	uint8_t n[WIRE_NAME_MAX];
	size_t nlen;
	store_import_result_t res = {0};
	store_wtxn_t *w = NULL;
	char err[512];
	int api, src;

	CHECK_EQ_INT(import_flags("skip1.zone", zone, "skip.test.", 0, err, sizeof(err), &res), 0);
	CHECK_EQ_INT((int)res.nskipped_names, 0);
	CHECK_EQ_INT(count_rr("www.skip.test.", WIRE_TYPE_A, &api), 2);
	/* The API holds www (one address) and api2, as after a takeover and a PUT. */
	CHECK_EQ_INT(store_write_begin(g_s, &w), 0);
	src = store_source_id(w, STORE_SOURCE_API);
	CHECK(src >= 0);
	CHECK_EQ_INT(wire_name_from_text("www.skip.test.", n, &nlen), 0);
	CHECK_EQ_INT(
	    store_rr_add(w, src, n, nlen, WIRE_TYPE_A, 30, (const uint8_t *)"\x0a\0\x09\x09", 4),
	    0);
	CHECK_EQ_INT(wire_name_from_text("api2.skip.test.", n, &nlen), 0);
	CHECK_EQ_INT(
	    store_rr_add(w, src, n, nlen, WIRE_TYPE_A, 30, (const uint8_t *)"\x0a\0\x09\x08", 4),
	    0);
	CHECK_EQ_INT(store_write_commit(w), 0);
	CHECK_EQ_INT(import_flags("skip2.zone", zone, "skip.test.", 0, err, sizeof(err), &res), 0);
	CHECK_EQ_INT((int)res.nrr, 1);
	CHECK_EQ_INT((int)res.nskipped_rr, 4);
	CHECK_EQ_INT((int)res.nskipped_names, 2);
	CHECK(strcmp(res.skipped, "www.skip.test., api2.skip.test.") == 0);
	CHECK_EQ_INT(count_rr("www.skip.test.", WIRE_TYPE_A, &api), 1);
	CHECK_EQ_INT(api, 1);
	CHECK_EQ_INT(count_rr("www.skip.test.", WIRE_TYPE_TXT, &api), 0);
	CHECK_EQ_INT(count_rr("api2.skip.test.", WIRE_TYPE_A, &api), 1);
	CHECK_EQ_INT(api, 1);
	CHECK_EQ_INT(count_rr("other.skip.test.", WIRE_TYPE_A, &api), 1);
	CHECK_EQ_INT(api, 0);
}

int main(void)
{
	char dir[300];

	snprintf(g_dir, sizeof(g_dir), "/tmp/test_import.XXXXXX");
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/db", g_dir);
	CHECK_EQ_INT(store_open(&g_s, dir, 64u << 20, 0), 0);
	if (g_s) {
		test_full();
		test_errors();
		test_reimport();
		test_validation();
		test_api_names_skipped();
		store_close(g_s);
	}
	nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}
