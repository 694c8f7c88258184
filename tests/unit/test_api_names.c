/*
 * Unit tests for api/names (issue 18 item 2): which request names are
 * completed with the first local domain, which are taken as they are, and
 * which are refused so that a typo like "cctv9.skydns.locl" creates nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_names.h"
#include "check.h"
#include "common/err.h"
#include "conf/conf.h"

typedef struct {
	const char *text;
	int want;	  /* 0, ERR_INVAL, ERR_NOTFOUND */
	const char *full; /* the name it means, when 0 */
} name_case_t;

static const name_case_t owners[] = {
    {"cctv2", 0, "cctv2.skydns.local."},
    {"CCTV2", 0, "cctv2.skydns.local."},
    {"cctv2.skydns.local", 0, "cctv2.skydns.local."},
    {"cctv2.skydns.local.", 0, "cctv2.skydns.local."},
    {"mail.example.test", 0, "mail.example.test."},
    {"a.b.example.test", 0, "a.b.example.test."},
    {"_http._tcp.web", 0, "_http._tcp.web.skydns.local."},
    {"_http._tcp", 0, "_http._tcp.skydns.local."},
    {"skydns.local", 0, "skydns.local."},
    {"cctv9.skydns.locl", ERR_NOTFOUND, NULL},
    {"www.example.com", ERR_NOTFOUND, NULL},
    {"www.example.com.", ERR_NOTFOUND, NULL},
    {"a._b.web", ERR_NOTFOUND, NULL},
    {"local", 0, "local.skydns.local."},
    {"", ERR_INVAL, NULL},
    {".", ERR_INVAL, NULL},
    {"a..b", ERR_INVAL, NULL},
};

static conf_t *load_conf_domains(const char *domains, const char *extra)
{
	char dir[] = "/tmp/test_api_names.XXXXXX", path[64], err[256];
	conf_t *c = NULL;
	FILE *f;

	if (!mkdtemp(dir))
		return NULL;
	snprintf(path, sizeof(path), "%s/skydns.conf", dir);
	if (!(f = fopen(path, "w")))
		return NULL;
	fprintf(f, "[Dns]\ndns-domains = %s\n%s", domains, extra);
	fclose(f);
	if (conf_load(path, &c, err, sizeof(err)) < 0)
		fprintf(stderr, "conf: %s\n", err);
	unlink(path);
	rmdir(dir);
	return c;
}

static conf_t *load_conf(const char *extra)
{
	return load_conf_domains("skydns.local.%example.test.", extra);
}

static void test_owners(const conf_t *c)
{
	for (size_t i = 0; i < sizeof(owners) / sizeof(owners[0]); i++) {
		api_name_t n;
		int ret = api_name_owner(c, owners[i].text, &n);
		if (ret != owners[i].want || (ret == 0 && strcmp(n.text, owners[i].full) != 0)) {
			fprintf(stderr, "owner \"%s\": %d %s, want %d %s\n", owners[i].text, ret,
				ret == 0 ? n.text : "", owners[i].want,
				owners[i].full ? owners[i].full : "");
			CHECK(0);
		} else {
			CHECK(1);
		}
	}
}

static void test_targets_and_errors(const conf_t *c)
{
	api_name_t n;
	char msg[512];

	CHECK_EQ_INT(api_name_target(c, "backend", &n), 0);
	CHECK(strcmp(n.text, "backend.skydns.local.") == 0);
	CHECK_EQ_INT(api_name_target(c, "mx.example.org", &n), 0);
	CHECK(strcmp(n.text, "mx.example.org.") == 0);
	api_name_error(c, "name", "cctv9.skydns.locl", ERR_NOTFOUND, msg, sizeof(msg));
	CHECK(strstr(msg, "cctv9.skydns.locl") != NULL);
	CHECK(strstr(msg, "skydns.local., example.test.") != NULL);
	api_name_error(c, "alias", "a..b", ERR_INVAL, msg, sizeof(msg));
	CHECK(strstr(msg, "not a valid name") != NULL);
}

/* [Api] api-search = svc: the original's name.namespace lies below svc.<domain>. */
static void test_search(void)
{
	conf_t *c = load_conf("[Api]\napi-search = SVC\n");
	api_name_t n;

	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ_INT(api_name_owner(c, "qiyf-nginx-5.default", &n), 0);
	CHECK(strcmp(n.text, "qiyf-nginx-5.default.svc.skydns.local.") == 0);
	CHECK_EQ_INT(api_name_owner(c, "cctv2", &n), 0);
	CHECK(strcmp(n.text, "cctv2.skydns.local.") == 0);
	CHECK_EQ_INT(api_name_owner(c, "mail.example.test", &n), 0);
	CHECK(strcmp(n.text, "mail.example.test.") == 0);
	/* Only name.namespace: three labels stay a likely typo. */
	CHECK_EQ_INT(api_name_owner(c, "cctv9.skydns.locl", &n), ERR_NOTFOUND);
	conf_free(c);
	CHECK(load_conf("[Api]\napi-search = .svc\n") == NULL);
	CHECK(load_conf("[Api]\napi-search = svc.\n") == NULL);
	CHECK(load_conf("[Api]\napi-search = a..b\n") == NULL);
	CHECK(load_conf("[Api]\napi-search = a,b\n") == NULL);
}

/* Reverse zones (issue 17): listed first, they still do not take short names. */
static void test_reverse(void)
{
	conf_t *c = load_conf_domains("10.in-addr.arpa.%skydns.local.%d.f.ip6.arpa.", "");
	const uint8_t v4[4] = {10, 0, 0, 7}, out4[4] = {192, 168, 1, 1};
	uint8_t v6[16] = {0xfd, 0, [15] = 1};
	api_name_t n;

	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ_INT((int)conf_default_domain(c), 1);
	CHECK_EQ_INT(api_name_owner(c, "web", &n), 0);
	CHECK(strcmp(n.text, "web.skydns.local.") == 0);
	CHECK_EQ_INT(api_name_target(c, "web", &n), 0);
	CHECK(strcmp(n.text, "web.skydns.local.") == 0);
	CHECK_EQ_INT(api_name_owner(c, "7.0.0.10.in-addr.arpa", &n), 0);
	CHECK(strcmp(n.text, "7.0.0.10.in-addr.arpa.") == 0);
	CHECK_EQ_INT(api_name_reverse(c, v4, 4, &n), 0);
	CHECK(strcmp(n.text, "7.0.0.10.in-addr.arpa.") == 0);
	CHECK_EQ_INT(api_name_reverse(c, out4, 4, &n), ERR_NOTFOUND);
	CHECK_EQ_INT(api_name_reverse(c, v6, 16, &n), 0);
	CHECK(strcmp(n.text, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f."
			     "ip6.arpa.") == 0);
	v6[0] = 0x20;
	CHECK_EQ_INT(api_name_reverse(c, v6, 16, &n), ERR_NOTFOUND);
	CHECK_EQ_INT(api_name_reverse(c, v4, 5, &n), ERR_INVAL);
	conf_free(c);
	/* Only reverse zones: the first one it is. */
	c = load_conf_domains("in-addr.arpa.", "");
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_INT((int)conf_default_domain(c), 0);
	conf_free(c);
}

int main(void)
{
	conf_t *c = load_conf("");

	CHECK(c != NULL);
	if (c) {
		test_owners(c);
		test_targets_and_errors(c);
	}
	conf_free(c);
	test_search();
	test_reverse();
	return check_done();
}
