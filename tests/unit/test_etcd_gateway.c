/*
 * test_etcd_gateway: the etcd v3 JSON gateway encoding (watchers/etcd.c) on
 * replies shaped as etcd 3.4.23 sends them: base64 keys and values, int64s as
 * strings, zero fields omitted, the watch stream's created / events /
 * compaction-cancel / progress / error messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/check.h"
#include "watchers/etcd.h"

typedef struct {
	char keys[8][64];
	char vals[8][64];
	int64_t revs[8];
	bool dels[8];
	size_t n;
} seen_t;

static int on_kv(void *ctx, const etcd_kv_t *kv)
{
	seen_t *s = ctx;

	if (s->n == 8 || kv->klen >= 64 || kv->vlen >= 64)
		return 99;
	memcpy(s->keys[s->n], kv->key, kv->klen);
	s->keys[s->n][kv->klen] = 0;
	memcpy(s->vals[s->n], kv->val, kv->vlen);
	s->vals[s->n][kv->vlen] = 0;
	s->revs[s->n] = kv->mod_rev;
	s->dels[s->n++] = kv->del;
	return 0;
}

static void test_b64(void)
{
	char out[64];
	uint8_t dec[64];
	size_t n;

	etcd_b64_encode((const uint8_t *)"/skydns/", 8, out);
	CHECK(strcmp(out, "L3NreWRucy8=") == 0);
	etcd_b64_encode((const uint8_t *)"ab", 2, out);
	CHECK(strcmp(out, "YWI=") == 0);
	etcd_b64_encode((const uint8_t *)"", 0, out);
	CHECK(strcmp(out, "") == 0);
	CHECK_EQ_INT(etcd_b64_decode("L3NreWRucy8=", 12, dec, &n), 0);
	CHECK(n == 8 && memcmp(dec, "/skydns/", 8) == 0);
	CHECK_EQ_INT(etcd_b64_decode("YWI", 3, dec, &n), 0);
	CHECK(n == 2 && memcmp(dec, "ab", 2) == 0);
	CHECK_EQ_INT(etcd_b64_decode("Y*I=", 4, dec, &n), ERR_PARSE);
	CHECK_EQ_INT(etcd_b64_decode("Y", 1, dec, &n), ERR_PARSE);
}

static void test_prefix_end(void)
{
	uint8_t out[16];

	CHECK_EQ_INT(etcd_prefix_end((const uint8_t *)"/skydns/", 8, out), 8);
	CHECK_MEM(out, "/skydns0", 8);
	CHECK_EQ_INT(etcd_prefix_end((const uint8_t *)"a\xff\xff", 3, out), 1);
	CHECK_EQ_INT(out[0], 'b');
	CHECK_EQ_INT(etcd_prefix_end((const uint8_t *)"\xff", 1, out), 1);
	CHECK_EQ_INT(out[0], 0);
}

#define S(x) x, strlen(x)

static void test_range(void)
{
	seen_t s = {0};
	etcd_range_info_t ri = {0};
	/* key /skydns/a = {"host":"1.2.3.4"}, revision strings, more + count. */
	const char *page =
	    "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"5\","
	    "\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"L3NreWRucy9h\","
	    "\"create_revision\":\"2\",\"mod_revision\":\"3\",\"version\":\"1\","
	    "\"value\":\"eyJob3N0IjoiMS4yLjMuNCJ9\"}],\"more\":true,\"count\":\"5\"}";

	CHECK_EQ_INT(etcd_parse_range(S(page), on_kv, &s, &ri), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK(strcmp(s.keys[0], "/skydns/a") == 0);
	CHECK(strcmp(s.vals[0], "{\"host\":\"1.2.3.4\"}") == 0);
	CHECK_EQ_INT(s.revs[0], 3);
	CHECK_EQ_INT(ri.header_rev, 5);
	CHECK_EQ_INT(ri.count, 5);
	CHECK(ri.more);
	CHECK(ri.last_klen == 9 && memcmp(ri.last_key, "/skydns/a", 9) == 0);
	free(ri.last_key);
	/* An empty range omits kvs, count and more. */
	memset(&ri, 0, sizeof(ri));
	s.n = 0;
	CHECK_EQ_INT(etcd_parse_range(S("{\"header\":{\"revision\":\"9\"}}"), on_kv, &s, &ri), 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(ri.header_rev, 9);
	CHECK(!ri.more && ri.last_key == NULL);
	/* An error reply and garbage. */
	CHECK_EQ_INT(etcd_parse_range(S("{\"error\":\"etcdserver: mvcc: required revision has "
					"been compacted\",\"code\":11}"),
				      on_kv, &s, &ri),
		     ERR_UPSTREAM);
	CHECK_EQ_INT(etcd_parse_range(S("{\"kvs\":[{\"key\":\"!!\"}]}"), on_kv, &s, &ri),
		     ERR_PARSE);
	CHECK_EQ_INT(etcd_parse_range(S("{\"kvs\":[{\"value\":\"YQ==\"}]}"), on_kv, &s, &ri),
		     ERR_PARSE);
	CHECK_EQ_INT(etcd_parse_range(S("nope"), on_kv, &s, &ri), ERR_PARSE);
	CHECK_EQ_INT(etcd_parse_range(S("{\"header\":{\"revision\":\"x5\"}}"), on_kv, &s, &ri),
		     ERR_PARSE);
}

static void test_watch(void)
{
	seen_t s = {0};
	etcd_watch_msg_t m;

	CHECK_EQ_INT(etcd_parse_watch(S("{\"result\":{\"header\":{\"revision\":\"5\"},"
					"\"created\":true}}"),
				      on_kv, &s, &m),
		     0);
	CHECK(m.created && !m.canceled && m.nevents == 0 && m.header_rev == 5);
	/* A PUT has no "type"; a DELETE has no value; two events in one message. */
	CHECK_EQ_INT(etcd_parse_watch(S("{\"result\":{\"header\":{\"revision\":\"10\"},\"events\":["
					"{\"kv\":{\"key\":\"L3NreWRucy9h\",\"mod_revision\":\"9\","
					"\"value\":\"eA==\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":"
					"\"L3NreWRucy9h\",\"mod_revision\":\"10\"}}]}}"),
				      on_kv, &s, &m),
		     0);
	CHECK_EQ_INT(s.n, 2);
	CHECK(!s.dels[0] && s.dels[1]);
	CHECK(strcmp(s.vals[0], "x") == 0 && s.vals[1][0] == 0);
	CHECK_EQ_INT(s.revs[1], 10);
	CHECK_EQ_INT(m.nevents, 2);
	CHECK_EQ_INT(m.last_rev, 10);
	/* The compaction cancel carries no header.revision. */
	CHECK_EQ_INT(
	    etcd_parse_watch(S("{\"result\":{\"header\":{\"cluster_id\":\"1\",\"member_id\":"
			       "\"2\",\"raft_term\":\"2\"},\"canceled\":true,"
			       "\"compact_revision\":\"9\"}}"),
			     on_kv, &s, &m),
	    0);
	CHECK(m.canceled && m.compact_rev == 9 && m.header_rev == 0);
	/* Cluster ids use all 64 bits: above INT64_MAX is normal. */
	CHECK_EQ_INT(etcd_parse_watch(S("{\"result\":{\"header\":{\"cluster_id\":"
					"\"14841639068965178418\",\"revision\":\"3\"},"
					"\"created\":true}}"),
				      on_kv, &s, &m),
		     0);
	CHECK(m.cluster_id == 14841639068965178418ull);
	/* Progress notify: a header, no events. */
	CHECK_EQ_INT(etcd_parse_watch(S("{\"result\":{\"header\":{\"revision\":\"12\"},"
					"\"watch_id\":\"7\"}}"),
				      on_kv, &s, &m),
		     0);
	CHECK(!m.created && m.nevents == 0 && m.header_rev == 12 && !m.error[0]);
	/* A mid-stream failure. */
	CHECK_EQ_INT(etcd_parse_watch(S("{\"error\":{\"grpc_code\":14,\"http_code\":503,"
					"\"message\":\"transport closing\"}}"),
				      on_kv, &s, &m),
		     0);
	CHECK(strcmp(m.error, "transport closing") == 0);
	CHECK_EQ_INT(etcd_parse_watch(S("{\"result\":{\"events\":[{\"type\":\"BOOM\",\"kv\":{"
					"\"key\":\"YQ==\"}}]}}"),
				      on_kv, &s, &m),
		     ERR_PARSE);
	CHECK_EQ_INT(etcd_parse_watch(S("{\"result\":{\"events\":{}}}"), on_kv, &s, &m), ERR_PARSE);
	CHECK_EQ_INT(etcd_parse_watch(S("{\"result\":5}"), on_kv, &s, &m), ERR_PARSE);
}

int main(void)
{
	test_b64();
	test_prefix_end();
	test_range();
	test_watch();
	return check_done();
}
