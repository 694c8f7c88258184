/*
 * conf/: every key, every alias, every error message with its FILE:LINE,
 * address parsing, domain matching, and the shipped example configs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/err.h"
#include "common/log.h"
#include "common/wire.h"
#include "conf/conf.h"

static char g_dir[64];
static char g_path[128];

/* Write `text` to <tmp>/skydns.conf and load it. */
static int load(const char *text, conf_t **out, char *err, size_t errlen)
{
	FILE *f = fopen(g_path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	fclose(f);
	return conf_load(g_path, out, err, errlen);
}

/* Load text that must fail; check the code and the whole message. */
static void expect_error(const char *text, int code, const char *msg_after_path)
{
	char err[512], want[512];
	conf_t *c = (conf_t *)0x1; /* must stay untouched on failure */
	int ret = load(text, &c, err, sizeof(err));

	CHECK_EQ_INT(ret, code);
	CHECK(c == (conf_t *)0x1);
	snprintf(want, sizeof(want), "%s%s", g_path, msg_after_path);
	if (strcmp(err, want) != 0)
		fprintf(stderr, "  got:  %s\n  want: %s\n", err, want);
	CHECK(strcmp(err, want) == 0);
}

static conf_t *expect_ok(const char *text)
{
	char err[512] = "";
	conf_t *c = NULL;
	int ret = load(text, &c, err, sizeof(err));

	if (ret != 0)
		fprintf(stderr, "  unexpected error %d: %s\n", ret, err);
	CHECK_EQ_INT(ret, 0);
	return c;
}

static uint16_t port_of(const conf_addr_t *a)
{
	return ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
}

/* "1.2.3.4:53" or "[::1]:53" */
static const char *addr_text(const conf_addr_t *a, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->sa.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->sa)->sin_addr, ip, sizeof(ip));
		snprintf(buf, cap, "%s:%u", ip, port_of(a));
	} else {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->sa)->sin6_addr, ip,
			  sizeof(ip));
		snprintf(buf, cap, "[%s]:%u", ip, port_of(a));
	}
	return buf;
}

static bool addr_is(const conf_addr_t *a, const char *want)
{
	char buf[80];

	addr_text(a, buf, sizeof(buf));
	if (strcmp(buf, want) != 0)
		fprintf(stderr, "  address %s, want %s\n", buf, want);
	return strcmp(buf, want) == 0;
}

static bool domain_is(const uint8_t *name, size_t len, const char *want)
{
	char text[WIRE_NAME_TEXT_MAX];

	if (wire_name_to_text(name, len, text, sizeof(text)) < 0)
		return false;
	if (strcmp(text, want) != 0)
		fprintf(stderr, "  domain %s, want %s\n", text, want);
	return strcmp(text, want) == 0;
}

static bool str_is(const char *s, const char *want)
{
	if (!s || !want)
		return s == want;
	return strcmp(s, want) == 0;
}

static void check_defaults(const conf_t *c)
{
	CHECK_EQ_INT(c->ndomains, 1);
	CHECK(domain_is(c->domains[0], c->domainlens[0], "skydns.local."));
	CHECK(addr_is(&c->dns_addr, "127.0.0.1:53"));
	CHECK_EQ_INT(c->workers, 0);
	CHECK_EQ_INT(c->edns_bufsize, 1232);
	CHECK_EQ_INT(c->min_ttl, 60);
	CHECK_EQ_INT(c->tcp_idle_ms, 10000);
	CHECK_EQ_INT(c->tcp_msg_ms, 3000);
	CHECK_EQ_INT(c->tcp_max_conns, 1024);
	CHECK_EQ_INT(c->tcp_max_per_client, 32);
	CHECK_EQ_INT(c->rrl_rate, 0);
	CHECK_EQ_INT(c->rrl_slip, 2);
	CHECK_EQ_INT(c->rrl_window, 1);
	CHECK_EQ_INT(c->nnameservers, 0);
	CHECK(!c->nameservers_set);
	CHECK_EQ_INT(c->nsubdomains, 0);
	CHECK_EQ_INT(c->forward_timeout_ms, 2000);
	CHECK_EQ_INT(c->cache_size, 100000);
	CHECK(str_is(c->ip_monitor_path, "/skydns/monitor/status/"));
	CHECK_EQ_INT(c->shutdown_grace_ms, 5000);
	CHECK(str_is(c->data_dir, "/var/lib/skydns"));
	CHECK_EQ_INT(c->map_size, 1ULL << 30);
	CHECK(c->log_dir == NULL);
	CHECK_EQ_INT(c->log_level, LOG_LVL_INFO);
	CHECK(c->log_to_stdio);
	CHECK(!c->random_one && !c->hone_one);
	CHECK(!c->api_enable);
	CHECK(str_is(c->api_address, "127.0.0.1:9001"));
	CHECK(c->api_token == NULL && c->api_certfile == NULL && c->api_keyfile == NULL);
	CHECK(c->etcd_servers == NULL);
	CHECK(str_is(c->etcd_prefix, "/skydns"));
	CHECK(!c->k8s_enable && c->k8s_server == NULL);
	CHECK(str_is(c->kube_domain, "cluster.local."));
	CHECK(str_is(c->svc_ip_source, "clusterIP"));
	CHECK(!c->probe_enable && c->scan_ports == NULL);
	CHECK_EQ_INT(c->check_interval_ms, 5000);
	CHECK_EQ_INT(c->check_timeout_ms, 1000);
	CHECK_EQ_INT(c->rise, 2);
	CHECK_EQ_INT(c->fall, 3);
	CHECK(!c->icmp);
}

static void test_defaults(void)
{
	conf_t *c = NULL;

	CHECK_EQ_INT(conf_defaults(&c), 0);
	if (c)
		check_defaults(c);
	conf_free(c);
	c = expect_ok("; nothing but a comment\n\n# and another\n");
	if (c) {
		check_defaults(c);
		CHECK(str_is(c->path, g_path));
	}
	conf_free(c);
	conf_free(NULL);
}

static const char all_keys[] =
    "[Dns]\n"
    "dns-domains = Skydns.Local.%example.com,corp.example.com.\n"
    "dns-addr = [::1]:5353\n"
    "workers = 3\n"
    "edns-bufsize = 4096\n"
    "min-ttl = 30\n"
    "tcp-idle-timeout = 2.5\n"
    "tcp-message-timeout = 1.5\n"
    "tcp-max-connections = 77\n"
    "tcp-max-per-client = 5\n"
    "rrl-responses-per-second = 50\n"
    "rrl-slip = 0\n"
    "rrl-window = 15\n"
    "nameservers = 8.8.8.8, 9.9.9.9:5300,[2001:db8::1]:54,::1\n"
    "subDomainServers = a.example.com@10.0.0.1:53,10.0.0.2%B.Example.org."
    "@[::1]:5353\n"
    "forward-timeout = 0.25\n"
    "cacheSize = 0\n"
    "ip-monitor-path = /hades/monitor/status\n"
    "shutdown-grace = 0\n"
    "[Store]\n"
    "data-dir = /tmp/skydns-data\n"
    "map-size = 64M\n"
    "[Log]\n"
    "log-dir = /tmp/skydns-log\n"
    "log-level = debug\n"
    "log-to-stdio = no\n"
    "[Fun]\n"
    "random-one = yes\n"
    "hone-one = off\n"
    "[Api]\n"
    "api-enable = on\n"
    "api-address = [::1]:9101\n"
    "api-token = s3cret\n"
    "api-certfile = /etc/skydns/api.pem\n"
    "api-keyfile = /etc/skydns/api.key\n"
    "[Etcd]\n"
    "etcd-servers = http://127.0.0.1:2379, https://10.0.0.1:2379\n"
    "etcd-prefix = /dns/\n"
    "etcd-certfile = /c.pem\n"
    "etcd-keyfile = /k.pem\n"
    "etcd-cafile = /ca.pem\n"
    "[Kubernetes]\n"
    "enable = 1\n"
    "server = https://10.96.0.1:443\n"
    "token-file = /var/run/token\n"
    "cafile = /var/run/ca.crt\n"
    "kubeconfig = /etc/kubeconfig\n"
    "kube-domain = Cluster.Example\n"
    "svc-ip-source = externalip\n"
    "ttl = 30\n"
    "pods = verified\n"
    "[Probe]\n"
    "enable = TRUE\n"
    "scann-ports = 80, 0443,8080\n"
    "check-interval = 10\n"
    "check-timeout = 0.5\n"
    "rise = 4\n"
    "fall = 5\n"
    "icmp = true\n";

static void test_every_key(void)
{
	conf_t *c = expect_ok(all_keys);

	if (!c)
		return;
	/* The kube-domain is appended: the watcher is on, the zone is answered. */
	CHECK_EQ_INT(c->ndomains, 4);
	CHECK(domain_is(c->domains[0], c->domainlens[0], "skydns.local."));
	CHECK(domain_is(c->domains[1], c->domainlens[1], "example.com."));
	CHECK(domain_is(c->domains[2], c->domainlens[2], "corp.example.com."));
	CHECK(domain_is(c->domains[3], c->domainlens[3], "cluster.example."));
	CHECK_EQ_INT(c->k8s_zone, 3);
	CHECK_EQ_INT(c->k8s_ttl, 30);
	CHECK_EQ_INT(c->k8s_pods, CONF_PODS_VERIFIED);
	CHECK(addr_is(&c->dns_addr, "[::1]:5353"));
	CHECK_EQ_INT(c->workers, 3);
	CHECK_EQ_INT(c->edns_bufsize, 4096);
	CHECK_EQ_INT(c->min_ttl, 30);
	CHECK_EQ_INT(c->tcp_idle_ms, 2500);
	CHECK_EQ_INT(c->tcp_msg_ms, 1500);
	CHECK_EQ_INT(c->tcp_max_conns, 77);
	CHECK_EQ_INT(c->tcp_max_per_client, 5);
	CHECK_EQ_INT(c->rrl_rate, 50);
	CHECK_EQ_INT(c->rrl_slip, 0);
	CHECK_EQ_INT(c->rrl_window, 15);
	CHECK(c->nameservers_set);
	CHECK_EQ_INT(c->nnameservers, 4);
	CHECK(addr_is(&c->nameservers[0], "8.8.8.8:53"));
	CHECK(addr_is(&c->nameservers[1], "9.9.9.9:5300"));
	CHECK(addr_is(&c->nameservers[2], "[2001:db8::1]:54"));
	CHECK(addr_is(&c->nameservers[3], "[::1]:53"));
	CHECK_EQ_INT(c->nsubdomains, 2);
	CHECK(domain_is(c->subdomains[0].name, c->subdomains[0].namelen, "a.example.com."));
	CHECK_EQ_INT(c->subdomains[0].nservers, 2);
	CHECK(addr_is(&c->subdomains[0].servers[0], "10.0.0.1:53"));
	CHECK(addr_is(&c->subdomains[0].servers[1], "10.0.0.2:53"));
	CHECK(domain_is(c->subdomains[1].name, c->subdomains[1].namelen, "b.example.org."));
	CHECK_EQ_INT(c->subdomains[1].nservers, 1);
	CHECK(addr_is(&c->subdomains[1].servers[0], "[::1]:5353"));
	CHECK_EQ_INT(c->forward_timeout_ms, 250);
	CHECK_EQ_INT(c->cache_size, 0);
	CHECK(str_is(c->ip_monitor_path, "/hades/monitor/status/"));
	CHECK_EQ_INT(c->shutdown_grace_ms, 0);
	CHECK(str_is(c->data_dir, "/tmp/skydns-data"));
	CHECK_EQ_INT(c->map_size, 64ULL << 20);
	CHECK(str_is(c->log_dir, "/tmp/skydns-log"));
	CHECK_EQ_INT(c->log_level, LOG_LVL_DEBUG);
	CHECK(!c->log_to_stdio);
	CHECK(c->random_one && !c->hone_one);
	CHECK(c->api_enable);
	CHECK(str_is(c->api_address, "[::1]:9101"));
	CHECK(str_is(c->api_token, "s3cret"));
	CHECK(str_is(c->api_certfile, "/etc/skydns/api.pem"));
	CHECK(str_is(c->api_keyfile, "/etc/skydns/api.key"));
	CHECK(str_is(c->etcd_servers, "http://127.0.0.1:2379,https://10.0.0.1:2379"));
	CHECK(str_is(c->etcd_prefix, "/dns"));
	CHECK(str_is(c->etcd_certfile, "/c.pem"));
	CHECK(str_is(c->etcd_keyfile, "/k.pem"));
	CHECK(str_is(c->etcd_cafile, "/ca.pem"));
	CHECK(c->k8s_enable);
	CHECK(str_is(c->k8s_server, "https://10.96.0.1:443"));
	CHECK(str_is(c->k8s_token_file, "/var/run/token"));
	CHECK(str_is(c->k8s_cafile, "/var/run/ca.crt"));
	CHECK(str_is(c->k8s_kubeconfig, "/etc/kubeconfig"));
	CHECK(str_is(c->kube_domain, "cluster.example."));
	CHECK(str_is(c->svc_ip_source, "externalIP"));
	CHECK(c->probe_enable);
	CHECK(str_is(c->scan_ports, "80,443,8080"));
	CHECK_EQ_INT(c->check_interval_ms, 10000);
	CHECK_EQ_INT(c->check_timeout_ms, 500);
	CHECK_EQ_INT(c->rise, 4);
	CHECK_EQ_INT(c->fall, 5);
	CHECK(c->icmp);
	conf_free(c);
}

static void test_aliases(void)
{
	conf_t *c;

	/* The original SkyDNS spellings, in mixed case, quoted like gcfg allowed. */
	c = expect_ok("[DNS]\n"
		      "DNS-Domain = a.example%b.example.\n"
		      "ex-nameservers = \"\"\n"
		      "inDomainServers = x.a.example@1.2.3.4:99\n"
		      "CACHESIZE = 5\n"
		      "skipDomain = false\n"
		      "[skydnsapi]\n"
		      "api-enable = YES\n"
		      "skydns-auth = 123456789\n"
		      "[Fun]\n"
		      "hone-one = true\n"
		      "[Probe]\n"
		      "scan-ports = 22\n"
		      "[Kube2Skydns]\n"
		      "kube-enable = NO\n");
	if (c) {
		CHECK_EQ_INT(c->ndomains, 2);
		CHECK(domain_is(c->domains[1], c->domainlens[1], "b.example."));
		CHECK(c->nameservers_set);
		CHECK_EQ_INT(c->nnameservers, 0);
		CHECK_EQ_INT(c->nsubdomains, 1);
		CHECK(addr_is(&c->subdomains[0].servers[0], "1.2.3.4:99"));
		CHECK_EQ_INT(c->cache_size, 5);
		CHECK(c->api_enable);
		CHECK(str_is(c->api_token, "123456789"));
		CHECK(c->hone_one && !c->random_one);
		CHECK(str_is(c->scan_ports, "22"));
		CHECK(!c->k8s_enable);
	}
	conf_free(c);

	/* [Stats] statsServer is the API address and turns the API on. */
	c = expect_ok(
	    "[Stats]\nstatsServer = 127.0.0.1:9600\nstatsServerAuthToken = @skydns.com\n");
	if (c) {
		CHECK(c->api_enable);
		CHECK(str_is(c->api_address, "127.0.0.1:9600"));
		CHECK(str_is(c->api_token, "@skydns.com"));
	}
	conf_free(c);

	/* ... unless api-enable says otherwise, in either order. */
	c = expect_ok("[Api]\napi-enable = false\n[Stats]\nstatsServer = 127.0.0.1:9600\n");
	if (c)
		CHECK(!c->api_enable);
	conf_free(c);
	c = expect_ok("[Stats]\nstatsServer = \"\"\n");
	if (c)
		CHECK(!c->api_enable && str_is(c->api_address, "127.0.0.1:9001"));
	conf_free(c);

	/* skydns-auth is also accepted inside [Api]. */
	c = expect_ok("[Api]\nskydns-auth = t0k\n");
	if (c)
		CHECK(str_is(c->api_token, "t0k"));
	conf_free(c);

	/* Indented keys are keys, not continuation lines; inline comments go. */
	c = expect_ok("[Dns]\n  workers = 2 ; two\n\tmin-ttl = 9\n");
	if (c) {
		CHECK_EQ_INT(c->workers, 2);
		CHECK_EQ_INT(c->min_ttl, 9);
	}
	conf_free(c);
}

static void test_booleans(void)
{
	static const struct {
		const char *text;
		bool value;
	} cases[] = {{"true", true},   {"Yes", true}, {"ON", true},   {"1", true},
		     {"false", false}, {"no", false}, {"Off", false}, {"0", false}};
	char text[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[Log]\nlog-to-stdio = %s\n", cases[i].text);
		conf_t *c = expect_ok(text);
		if (c)
			CHECK(c->log_to_stdio == cases[i].value);
		conf_free(c);
	}
	expect_error("[Log]\nlog-to-stdio = maybe\n", ERR_CONFIG,
		     ":2: [Log] log-to-stdio: expected true or false (yes/no, on/off, 1/0), got "
		     "\"maybe\"");
}

static void test_numbers(void)
{
	conf_t *c;

	c = expect_ok("[Store]\nmap-size = 2G\n[Log]\nlog-level = 0\n[Dns]\nedns-bufsize = 512\n");
	if (c) {
		CHECK_EQ_INT(c->map_size, 2ULL << 30);
		CHECK_EQ_INT(c->log_level, LOG_LVL_ERR);
		CHECK_EQ_INT(c->edns_bufsize, 512);
	}
	conf_free(c);
	c = expect_ok("[Store]\nmap-size = 1048576\n[Log]\nlog-level = warning\n");
	if (c) {
		CHECK_EQ_INT(c->map_size, 1 << 20);
		CHECK_EQ_INT(c->log_level, LOG_LVL_WARN);
	}
	conf_free(c);
	c = expect_ok("[Store]\nmap-size = 4096k\n[Dns]\nforward-timeout = 1.5\n");
	if (c) {
		CHECK_EQ_INT(c->map_size, 4 << 20);
		CHECK_EQ_INT(c->forward_timeout_ms, 1500);
		CHECK_EQ_INT(c->forward_max_per_client, 512); /* issue 10: on by default */
	}
	conf_free(c);
	c = expect_ok("[Dns]\nforward-max-per-client = 0\n");
	if (c)
		CHECK_EQ_INT(c->forward_max_per_client, 0);
	conf_free(c);
}

static void test_bad_values(void)
{
	expect_error("; laptop\n[Dns]\ndns-addr = 127.0.0.1:5353\n\nworkers = 2\n\n"
		     "edns-bufsize = 9000\n",
		     ERR_CONFIG,
		     ":7: [Dns] edns-bufsize: expected a number from 512 to 4096, got \"9000\"");
	expect_error("[Dns]\nedns-bufsize = 511\n", ERR_CONFIG,
		     ":2: [Dns] edns-bufsize: expected a number from 512 to 4096, got \"511\"");
	expect_error("[Dns]\nrrl-window = 0\n", ERR_CONFIG,
		     ":2: [Dns] rrl-window: expected a number from 1 to 3600, got \"0\"");
	expect_error(
	    "[Dns]\ntcp-max-per-client = 0\n", ERR_CONFIG,
	    ":2: [Dns] tcp-max-per-client: expected a number from 1 to 1000000, got \"0\"");
	expect_error("[Dns]\nworkers = -1\n", ERR_CONFIG,
		     ":2: [Dns] workers: expected a number from 0 to 1024, got \"-1\"");
	expect_error("[Dns]\nworkers = 2x\n", ERR_CONFIG,
		     ":2: [Dns] workers: expected a number from 0 to 1024, got \"2x\"");
	expect_error("[Dns]\ncacheSize = 99999999999999999999999\n", ERR_CONFIG,
		     ":2: [Dns] cacheSize: expected a number from 0 to 100000000, got "
		     "\"99999999999999999999999\"");
	expect_error("[Dns]\nforward-max-per-client = 4097\n", ERR_CONFIG,
		     ":2: [Dns] forward-max-per-client: expected a number from 0 to 4096, got "
		     "\"4097\"");
	expect_error("[Dns]\nforward-timeout = 0.0001\n", ERR_CONFIG,
		     ":2: [Dns] forward-timeout: expected seconds from 0.01 to 60, got \"0.0001\"");
	expect_error("[Dns]\ntcp-idle-timeout = 1.\n", ERR_CONFIG,
		     ":2: [Dns] tcp-idle-timeout: expected seconds from 0.1 to 3600, got \"1.\"");
	expect_error("[Dns]\ndns-addr = 127.0.0.1:70000\n", ERR_CONFIG,
		     ":2: [Dns] dns-addr: expected an address such as 127.0.0.1:53 or [::1]:53, "
		     "got \"127.0.0.1:70000\"");
	expect_error("[Dns]\ndns-domains = a..b\n", ERR_CONFIG,
		     ":2: [Dns] dns-domains: expected domain names separated by '%', \"a..b\" is "
		     "not one, got \"a..b\"");
	expect_error("[Dns]\ndns-domain = .\n", ERR_CONFIG,
		     ":2: [Dns] dns-domain: expected domain names separated by '%', \".\" is not "
		     "one, got \".\"");
	expect_error("[Dns]\ndns-domains = a.%A.\n", ERR_CONFIG,
		     ":2: [Dns] dns-domains: domain \"A.\" is listed twice, got \"a.%A.\"");
	expect_error("[Dns]\nnameservers = 8.8.8.8,,9.9.9.9\n", ERR_CONFIG,
		     ":2: [Dns] nameservers: expected at most 16 addresses ip[:port] or "
		     "tls://ip[:port]@name separated by "
		     "',' (\"\" is wrong), got \"8.8.8.8,,9.9.9.9\"");
	expect_error("[Dns]\nex-nameservers = 8.8.8.8:53,dns.google\n", ERR_CONFIG,
		     ":2: [Dns] ex-nameservers: expected at most 16 addresses ip[:port] or "
		     "tls://ip[:port]@name separated "
		     "by ',' (\"dns.google\" is wrong), got \"8.8.8.8:53,dns.google\"");
	expect_error("[Dns]\nsubDomainServers = a.example@\n", ERR_CONFIG,
		     ":2: [Dns] subDomainServers: expected at most 64 items "
		     "sub.domain@ip[:port],ip[:port] separated by '%' (\"a.example@\" is wrong), "
		     "got \"a.example@\"");
	expect_error("[Dns]\ninDomainServers = a.example\n", ERR_CONFIG,
		     ":2: [Dns] inDomainServers: expected at most 64 items "
		     "sub.domain@ip[:port],ip[:port] separated by '%' (\"a.example\" is wrong), "
		     "got \"a.example\"");
	expect_error(
	    "[Dns]\nip-monitor-path = status\n", ERR_CONFIG,
	    ":2: [Dns] ip-monitor-path: expected an absolute key path such as /skydns, got "
	    "\"status\"");
	expect_error(
	    "[Store]\nmap-size = 10T\n", ERR_CONFIG,
	    ":2: [Store] map-size: expected a size from 1M to 1024G (suffix K, M or G), got "
	    "\"10T\"");
	expect_error(
	    "[Store]\nmap-size = 1K\n", ERR_CONFIG,
	    ":2: [Store] map-size: expected a size from 1M to 1024G (suffix K, M or G), got "
	    "\"1K\"");
	expect_error("[Store]\ndata-dir =\n", ERR_CONFIG,
		     ":2: [Store] data-dir: expected a non-empty value, got \"\"");
	expect_error("[Log]\nlog-level = loud\n", ERR_CONFIG,
		     ":2: [Log] log-level: expected error, warn, info, debug or 0 to 3, got "
		     "\"loud\"");
	expect_error("[Log]\nlog-level = 4\n", ERR_CONFIG,
		     ":2: [Log] log-level: expected error, warn, info, debug or 0 to 3, got \"4\"");
	expect_error("[Api]\napi-address = 127.0.0.1\n", ERR_CONFIG,
		     ":2: [Api] api-address: expected an address with a port such as "
		     "127.0.0.1:9001, got \"127.0.0.1\"");
	expect_error("[Etcd]\netcd-servers = 127.0.0.1:2379\n", ERR_CONFIG,
		     ":2: [Etcd] etcd-servers: expected http:// or https:// URLs separated by ',', "
		     "got \"127.0.0.1:2379\"");
	expect_error("[Kubernetes]\nsvc-ip-source = nodeIP\n", ERR_CONFIG,
		     ":2: [Kubernetes] svc-ip-source: expected clusterIP or externalIP, got "
		     "\"nodeIP\"");
	expect_error("[Kubernetes]\npods = all\n", ERR_CONFIG,
		     ":2: [Kubernetes] pods: expected disabled, insecure or verified, got \"all\"");
	expect_error("[Kubernetes]\nttl = 86401\n", ERR_CONFIG,
		     ":2: [Kubernetes] ttl: expected a number from 0 to 86400, got \"86401\"");
	expect_error("[Kubernetes]\nkube-domain = a..b\n", ERR_CONFIG,
		     ":2: [Kubernetes] kube-domain: expected a domain name such as cluster.local., "
		     "got \"a..b\"");
	expect_error(
	    "[Probe]\nscann-ports = 80,http\n", ERR_CONFIG,
	    ":2: [Probe] scann-ports: expected ports from 1 to 65535 separated by ',', got "
	    "\"80,http\"");
	expect_error("[Probe]\nrise = 0\n", ERR_CONFIG,
		     ":2: [Probe] rise: expected a number from 1 to 100, got \"0\"");
	expect_error("[Dns]\nskipDomain = sometimes\n", ERR_CONFIG,
		     ":2: [Dns] skipDomain: expected true or false, got \"sometimes\"");
}

/* [General] user/group resolve at load, so -check-config catches a missing account. */
static void test_user(void)
{
	conf_t *c = expect_ok("[General]\nuser = root\n");

	if (c) {
		CHECK(c->has_user);
		CHECK_EQ_INT((int)c->run_uid, 0);
		CHECK_EQ_INT((int)c->run_gid, 0);
		conf_free(c);
	}
	c = expect_ok("[General]\ngroup = nogroup\nuser = root\n");
	if (c) {
		CHECK_EQ_INT((int)c->run_uid, 0);
		CHECK(c->run_gid != 0); /* group wins over the user's primary group, in any order */
		conf_free(c);
	}
	c = expect_ok("[Dns]\n");
	if (c) {
		CHECK(!c->has_user);
		conf_free(c);
	}
	expect_error(
	    "[General]\nuser = no-such-user-015\n", ERR_CONFIG,
	    ":2: [General] user: expected an existing user name, got \"no-such-user-015\"");
	expect_error("[General]\nuser = root\ngroup = no-such-group-015\n", ERR_CONFIG,
		     ":3: [General] group: expected an existing group name, got "
		     "\"no-such-group-015\"");
	expect_error("[General]\ngroup = root\n", ERR_CONFIG, ": [General] group needs user");
}

static void test_structure_errors(void)
{
	char text[400];

	expect_error("[Dns]\nworkers = 1\ndns-adress = 127.0.0.1\n", ERR_CONFIG,
		     ":3: [Dns] dns-adress: unknown key");
	/* A key valid in another section is still unknown here. */
	expect_error("[Dns]\ndata-dir = /tmp\n", ERR_CONFIG, ":2: [Dns] data-dir: unknown key");
	expect_error("[Dns]\nworkers = 1\n\n[Dnss]\nworkers = 1\n", ERR_CONFIG,
		     ":4: [Dnss]: unknown section (expected one of General, Dns, Store, Log, Fun, "
		     "Api, Stats, Etcd, Kubernetes, Probe)");
	/* Reported even when the section is empty. */
	expect_error("[Dns]\n[Generic]\n", ERR_CONFIG,
		     ":2: [Generic]: unknown section (expected one of General, Dns, Store, Log, "
		     "Fun, Api, Stats, Etcd, Kubernetes, Probe)");
	expect_error("workers = 1\n", ERR_CONFIG, ":1: workers: key outside of any [section]");
	expect_error("[Dns]\nworkers\n", ERR_CONFIG,
		     ":2: syntax error, expected [section] or key = value");
	expect_error("[Dns\n", ERR_CONFIG, ":1: syntax error, expected [section] or key = value");
	expect_error("[Dns]\nworkers = 1\nWorkers = 2\n", ERR_CONFIG,
		     ":3: [Dns] Workers: already set on line 2");
	/* Lists append when their key (or an alias) repeats; other keys may not repeat. */
	expect_error("[Dns]\ndns-domain = a.\ndns-domains = a.\n", ERR_CONFIG,
		     ":3: [Dns] dns-domains: domain \"a.\" is listed twice, got \"a.%a.\"");
	expect_error("[Api]\napi-token = x\n[Stats]\nstatsServerAuthToken = y\n", ERR_CONFIG,
		     ":4: [Stats] statsServerAuthToken: already set on line 2");
	/* The first error wins; later lines are not parsed into the message. */
	expect_error("[Dns]\nworkers = x\nfoo = 1\n", ERR_CONFIG,
		     ":2: [Dns] workers: expected a number from 0 to 1024, got \"x\"");

	memset(text, 0, sizeof(text));
	strcpy(text, "[Dns]\nip-monitor-path = /");
	memset(text + strlen(text), 'a', 250);
	strcat(text, "\n");
	expect_error(
	    text, ERR_CONFIG,
	    ":2: line longer than 197 characters (split a long list by repeating its key)");
}

static void test_fun_modes(void)
{
	conf_t *c = expect_ok("[Fun]\nrandom-one = true\n");

	CHECK(c && c->random_one && !c->hone_one);
	conf_free(c);
	c = expect_ok("[Fun]\nhone-one = true\nrandom-one = false\n");
	CHECK(c && c->hone_one && !c->random_one);
	conf_free(c);
	expect_error("[Fun]\nrandom-one = true\nhone-one = true\n", ERR_CONFIG,
		     ": [Fun] random-one and hone-one exclude each other");
}

static void test_cross_checks(void)
{
	expect_error("[Api]\napi-certfile = /a.pem\n", ERR_CONFIG,
		     ": [Api] api-certfile and api-keyfile go together");
	expect_error("[Etcd]\netcd-keyfile = /a.key\n", ERR_CONFIG,
		     ": [Etcd] etcd-certfile and etcd-keyfile go together");
	expect_error("[Probe]\ncheck-interval = 1\ncheck-timeout = 2\n", ERR_CONFIG,
		     ": [Probe] check-timeout must not exceed check-interval");
	/* No token on a public address is api_start's call, not conf's. */
	conf_t *c = expect_ok("[Api]\napi-enable = true\napi-address = 0.0.0.0:9001\n");
	conf_free(c);
}

/* Issue 10 items 4 and 6: the tokenless API's Host names and its thread count. */
static void test_api_guard_keys(void)
{
	conf_t *c = expect_ok("[Api]\napi-hostnames = Skydns.Internal. , admin-1.example\n");

	if (c) {
		CHECK(c->api_hostnames &&
		      strcmp(c->api_hostnames, "skydns.internal,admin-1.example") == 0);
		CHECK_EQ_INT(c->api_threads, 32);
		conf_free(c);
	}
	c = expect_ok("[Api]\napi-hostnames =\napi-threads = 4\n");
	if (c) {
		CHECK(c->api_hostnames == NULL);
		CHECK_EQ_INT(c->api_threads, 4);
		conf_free(c);
	}
	expect_error("[Api]\napi-hostnames = evil.example:80\n", ERR_CONFIG,
		     ":2: [Api] api-hostnames: expected host names (letters, digits, '-', '.') "
		     "separated by ',', got \"evil.example:80\"");
	expect_error("[Api]\napi-hostnames = a,,b\n", ERR_CONFIG,
		     ":2: [Api] api-hostnames: expected host names (letters, digits, '-', '.') "
		     "separated by ',', got \"a,,b\"");
	expect_error("[Api]\napi-threads = 3\n", ERR_CONFIG,
		     ":2: [Api] api-threads: expected a number from 4 to 256, got \"3\"");
}

static void test_subdomains(void)
{
	conf_t *c = expect_ok("[Dns]\nsubDomainServers = one.example@1.1.1.1 % two.EXAMPLE.@"
			      "2.2.2.2:5300,[2001:db8::2]:53,::3%three.example@3.3.3.3\n");

	if (c) {
		CHECK_EQ_INT(c->nsubdomains, 3);
		CHECK(domain_is(c->subdomains[0].name, c->subdomains[0].namelen, "one.example."));
		CHECK_EQ_INT(c->subdomains[0].nservers, 1);
		CHECK(addr_is(&c->subdomains[0].servers[0], "1.1.1.1:53"));
		CHECK(domain_is(c->subdomains[1].name, c->subdomains[1].namelen, "two.example."));
		CHECK_EQ_INT(c->subdomains[1].nservers, 3);
		CHECK(addr_is(&c->subdomains[1].servers[0], "2.2.2.2:5300"));
		CHECK(addr_is(&c->subdomains[1].servers[1], "[2001:db8::2]:53"));
		CHECK(addr_is(&c->subdomains[1].servers[2], "[::3]:53"));
		CHECK(domain_is(c->subdomains[2].name, c->subdomains[2].namelen, "three.example."));
	}
	conf_free(c);
	c = expect_ok("[Dns]\nsubDomainServers =\n");
	CHECK(c && c->nsubdomains == 0);
	conf_free(c);
	expect_error("[Dns]\nsubDomainServers = a@1.1.1.1@2.2.2.2\n", ERR_CONFIG,
		     ":2: [Dns] subDomainServers: expected at most 64 items "
		     "sub.domain@ip[:port],ip[:port] separated by '%' (\"a@1.1.1.1@2.2.2.2\" is "
		     "wrong), got \"a@1.1.1.1@2.2.2.2\"");
}

/* A list split over repeated keys, longer than inih's 199-byte line. */
static void test_list_continuation(void)
{
	char text[2048] = "[Dns]\n";
	conf_t *c;

	for (int i = 0; i < 20; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "subDomainServers = service-number-%02d.example@10.0.%d.1:53,10.0.%d.2\n",
			 i, i, i);
	strcat(text, "nameservers = 192.0.2.1\nex-nameservers = 192.0.2.2:5300\n"
		     "dns-domain = skydns.local.\ndns-domains = example.org\n");
	c = expect_ok(text);
	if (c) {
		CHECK_EQ_INT(c->nsubdomains, 20);
		CHECK(domain_is(c->subdomains[19].name, c->subdomains[19].namelen,
				"service-number-19.example."));
		CHECK(addr_is(&c->subdomains[19].servers[1], "10.0.19.2:53"));
		CHECK_EQ_INT(c->nnameservers, 2);
		CHECK(addr_is(&c->nameservers[1], "192.0.2.2:5300"));
		CHECK_EQ_INT(c->ndomains, 2);
		CHECK(domain_is(c->domains[1], c->domainlens[1], "example.org."));
	}
	conf_free(c);
	/* An empty first line adds nothing; a bad later item names its line. */
	c = expect_ok("[Dns]\nnameservers =\nnameservers = 192.0.2.9\n");
	CHECK(c && c->nnameservers == 1 && addr_is(&c->nameservers[0], "192.0.2.9:53"));
	conf_free(c);
	expect_error("[Dns]\nnameservers = 192.0.2.1\nnameservers = nope\n", ERR_CONFIG,
		     ":3: [Dns] nameservers: expected at most 16 addresses ip[:port] or "
		     "tls://ip[:port]@name separated "
		     "by ',' (\"nope\" is wrong), got \"192.0.2.1,nope\"");
}

static void test_parse_addr(void)
{
	static const struct {
		const char *text;
		const char *want; /* NULL: must fail */
	} cases[] = {
	    {"1.2.3.4", "1.2.3.4:53"},
	    {"1.2.3.4:5353", "1.2.3.4:5353"},
	    {"[::1]:5300", "[::1]:5300"},
	    {"[::1]", "[::1]:53"},
	    {"::1", "[::1]:53"},
	    {"2001:db8::1", "[2001:db8::1]:53"},
	    {"::ffff:1.2.3.4", "[::ffff:1.2.3.4]:53"},
	    {"1.2.3", NULL},
	    {"1.2.3.4:", NULL},
	    {"1.2.3.4:0", NULL},
	    {"1.2.3.4:65536", NULL},
	    {"1.2.3.4:+53", NULL},
	    {"[::1", NULL},
	    {"[::1]53", NULL},
	    {"[1.2.3.4]:53", NULL},
	    {"::1:53:x", NULL},
	    {"localhost:53", NULL},
	    {"", NULL},
	};
	conf_addr_t a, untouched;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&a, 0xAB, sizeof(a));
		untouched = a;
		int ret = conf_parse_addr(cases[i].text, 53, &a);
		if (cases[i].want) {
			CHECK_EQ_INT(ret, 0);
			CHECK(addr_is(&a, cases[i].want));
			CHECK_EQ_INT(a.len, a.sa.ss_family == AF_INET
						? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6));
		} else {
			if (ret != ERR_PARSE)
				fprintf(stderr, "  \"%s\" parsed\n", cases[i].text);
			CHECK_EQ_INT(ret, ERR_PARSE);
			CHECK(memcmp(&a, &untouched, sizeof(a)) == 0);
		}
	}
	CHECK_EQ_INT(conf_parse_addr("10.0.0.1", 9001, &a), 0);
	CHECK_EQ_INT(port_of(&a), 9001);

	/* conf_format_addr writes what conf_parse_addr reads (logs, metrics labels). */
	static const char *const round[] = {"127.0.0.1:5353", "[::1]:53", "[2001:db8::1]:8053"};
	for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
		char text[64];
		CHECK_EQ_INT(conf_parse_addr(round[i], 53, &a), 0);
		conf_format_addr(&a, text, sizeof(text));
		CHECK(strcmp(text, round[i]) == 0);
	}
}

static void wire(const char *text, uint8_t name[WIRE_NAME_MAX], size_t *len)
{
	CHECK_EQ_INT(wire_name_from_text(text, name, len), 0);
}

static void test_domain_of(void)
{
	conf_t *c = expect_ok("[Dns]\ndns-domains = example.com%sub.example.com%skydns.local\n");
	static const struct {
		const char *name;
		int want;
	} cases[] = {
	    {"example.com.", 0},
	    {"www.EXAMPLE.com.", 0},
	    {"sub.example.com.", 1},
	    {"a.b.sub.example.com", 1},
	    {"xsub.example.com.", 0},
	    {"notexample.com.", -1},
	    {"com.", -1},
	    {".", -1},
	    {"skydns.local", 2},
	    {"x.skydns.LOCAL.", 2},
	    {"skydns.local.example.", -1},
	};
	uint8_t name[WIRE_NAME_MAX];
	size_t len;

	if (!c)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wire(cases[i].name, name, &len);
		int got = conf_domain_of(c, name, len);
		if (got != cases[i].want)
			fprintf(stderr, "  %s -> %d\n", cases[i].name, got);
		CHECK_EQ_INT(got, cases[i].want);
	}
	conf_free(c);
}

static void test_missing_file(void)
{
	char err[256], path[160];
	conf_t *c = NULL;

	snprintf(path, sizeof(path), "%s/nope.conf", g_dir);
	CHECK_EQ_INT(conf_load(path, &c, err, sizeof(err)), -ENOENT);
	CHECK(c == NULL);
	CHECK(strstr(err, "nope.conf: No such file or directory") != NULL);
	CHECK_EQ_INT(conf_load(g_dir, &c, err, sizeof(err)), -EISDIR);
	CHECK(c == NULL);
	CHECK(strstr(err, ": Is a directory") != NULL);
}

static void src_dir(char *out, size_t cap)
{
	const char *env = getenv("SKYDNS_SRC");
	const char *file = __FILE__, *cut;

	if (env && *env) {
		snprintf(out, cap, "%s", env);
		return;
	}
	/* __FILE__ is <src>/tests/unit/test_conf.c */
	cut = strstr(file, "tests/unit/test_conf.c");
	snprintf(out, cap, "%.*s", cut ? (int)(cut - file) : 0, file);
	if (!*out)
		snprintf(out, cap, ".");
}

static void test_examples(void)
{
	static const char *files[] = {"conf/skydns.conf", "conf/examples/minimal.conf",
				      "conf/examples/etcd.conf", "conf/examples/k8s.conf",
				      "conf/examples/original.conf"};
	char src[256], path[512], err[512];

	src_dir(src, sizeof(src));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		conf_t *c = NULL;
		snprintf(path, sizeof(path), "%s/%s", src, files[i]);
		int ret = conf_load(path, &c, err, sizeof(err));
		if (ret)
			fprintf(stderr, "  %s: %s\n", path, err);
		CHECK_EQ_INT(ret, 0);
		if (!c)
			continue;
		if (i == 0) {
			CHECK(addr_is(&c->dns_addr, "127.0.0.1:5353"));
			CHECK(str_is(c->data_dir, "./data/store"));
			CHECK(c->log_to_stdio && c->log_level == LOG_LVL_INFO);
			CHECK(domain_is(c->domains[0], c->domainlens[0], "skydns.local."));
			CHECK(!c->api_enable && str_is(c->api_address, "127.0.0.1:9001"));
		}
		if (i == 4) {
			CHECK(c->hone_one && c->api_enable);
			CHECK(str_is(c->api_address, "127.0.0.1:9600"));
			CHECK(str_is(c->api_token, "123456789"));
			CHECK(str_is(c->ip_monitor_path, "/skydns/monitor/status/"));
			CHECK(c->etcd_certfile == NULL);
			CHECK_EQ_INT(c->log_level, 2);
		}
		conf_free(c);
	}
}

/* Issue 10 item 11: [Dns] max-ttl, default what the cache keeps at most. */
static void test_max_ttl(void)
{
	conf_t *c = expect_ok("[Dns]\nmin-ttl = 30\n");

	if (c)
		CHECK_EQ_INT(c->max_ttl, 86400);
	conf_free(c);
	c = expect_ok("[Dns]\nmax-ttl = 2147483647\n");
	if (c)
		CHECK_EQ_INT(c->max_ttl, 2147483647u);
	conf_free(c);
	expect_error("[Dns]\nmax-ttl = 0\n", ERR_CONFIG,
		     ":2: [Dns] max-ttl: expected a number from 1 to 2147483647, got \"0\"");
	expect_error(
	    "[Dns]\nmax-ttl = 2147483648\n", ERR_CONFIG,
	    ":2: [Dns] max-ttl: expected a number from 1 to 2147483647, got \"2147483648\"");
}

/* Issue 17: ns-address, and its default from dns-addr. */
static void test_ns_address(void)
{
	conf_t *c = expect_ok("[Dns]\ndns-addr = 127.0.0.2:5300\n");

	if (c)
		CHECK(c->ns_has_v4 && !c->ns_has_v6 && memcmp(c->ns_v4, "\x7f\0\0\2", 4) == 0);
	conf_free(c);
	c = expect_ok("[Dns]\ndns-addr = 0.0.0.0:53\n");
	if (c)
		CHECK(!c->ns_has_v4 && !c->ns_has_v6);
	conf_free(c);
	c = expect_ok("[Dns]\ndns-addr = [::1]:53\n");
	if (c)
		CHECK(!c->ns_has_v4 && c->ns_has_v6 && c->ns_v6[15] == 1);
	conf_free(c);
	c = expect_ok("[Dns]\ndns-addr = 0.0.0.0:53\nns-address = 192.0.2.1, 2001:db8::53\n");
	if (c)
		CHECK(c->ns_has_v4 && c->ns_has_v6 && c->ns_v4[0] == 192 && c->ns_v6[15] == 0x53);
	conf_free(c);
	c = expect_ok("[Dns]\nns-address = none\n");
	if (c)
		CHECK(!c->ns_has_v4 && !c->ns_has_v6);
	conf_free(c);
	expect_error("[Dns]\nns-address = 192.0.2.1,192.0.2.2\n", ERR_CONFIG,
		     ":2: [Dns] ns-address: expected at most one IPv4 and one IPv6 address "
		     "separated by ',', or none, got \"192.0.2.1,192.0.2.2\"");
	expect_error("[Dns]\nns-address = ns1.example.\n", ERR_CONFIG,
		     ":2: [Dns] ns-address: expected at most one IPv4 and one IPv6 address "
		     "separated by ',', or none, got \"ns1.example.\"");
}

/* Issue 17: nsid, cookies, cookie-secret. */
static void test_edns_keys(void)
{
	conf_t *c = expect_ok("[Dns]\nnsid = node-7\ncookies = require\n"
			      "cookie-secret = 000102030405060708090A0b0c0d0e0f\n");

	if (c) {
		CHECK(c->nsidlen == 6 && memcmp(c->nsid, "node-7", 6) == 0);
		CHECK_EQ_INT(c->cookies, CONF_COOKIES_REQUIRE);
		CHECK(c->cookie_secret_set && c->cookie_secret[10] == 10 &&
		      c->cookie_secret[15] == 15);
	}
	conf_free(c);
	c = expect_ok("[Dns]\nnsid = 0x00ff\ncookies = off\n");
	if (c) {
		CHECK(c->nsidlen == 2 && c->nsid[0] == 0 && c->nsid[1] == 0xff);
		CHECK_EQ_INT(c->cookies, CONF_COOKIES_OFF);
		CHECK(!c->cookie_secret_set);
	}
	conf_free(c);
	/* Defaults: no NSID, cookies on, a random secret (two loads differ). */
	conf_t *a = expect_ok(""), *b = expect_ok("");
	if (a && b) {
		CHECK(a->nsidlen == 0 && a->cookies == CONF_COOKIES_ON && !a->cookie_secret_set);
		CHECK(memcmp(a->cookie_secret, b->cookie_secret, 16) != 0);
	}
	conf_free(a);
	conf_free(b);
	c = expect_ok("[Dns]\nxfr-allow = 127.0.0.1, 10.0.0.0/8, 2001:db8::/32\n");
	if (c) {
		const uint8_t lo[4] = {127, 0, 0, 1}, ten[4] = {10, 9, 8, 7},
			      lo2[4] = {127, 0, 0, 2};
		uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
		CHECK(conf_xfr_allowed(c, lo, 4) && conf_xfr_allowed(c, ten, 4));
		CHECK(!conf_xfr_allowed(c, lo2, 4));
		CHECK(conf_xfr_allowed(c, v6, 16));
		v6[3] = 0xb9;
		CHECK(!conf_xfr_allowed(c, v6, 16));
	}
	conf_free(c);
	expect_error("[Dns]\nxfr-allow = 10.0.0.0/33\n", ERR_CONFIG,
		     ":2: [Dns] xfr-allow: a prefix length 0..32 after '/', got \"10.0.0.0/33\"");
	/* TSIG keys: algorithms, several lines, xfr-key tied to a key; errors never show the
	 * secret. */
	c = expect_ok("[Dns]\ntsig-keys = K1. hmac-sha256 c2VjcmV0, k2 HMAC-SHA512. b3RoZXI=\n"
		      "tsig-keys = k3 hmac-sha1 eA==\nxfr-key = k2\n");
	if (c) {
		CHECK_EQ_INT((int)c->ntsig_keys, 3);
		CHECK_EQ_INT(c->tsig_keys[0].alg, CONF_TSIG_SHA256);
		CHECK_EQ_INT(c->tsig_keys[1].alg, CONF_TSIG_SHA512);
		CHECK_EQ_INT(c->tsig_keys[2].alg, CONF_TSIG_SHA1);
		CHECK(c->tsig_keys[0].secretlen == 6 &&
		      memcmp(c->tsig_keys[0].secret, "secret", 6) == 0);
		CHECK(!c->tsig_keys[0].xfr && c->tsig_keys[1].xfr && !c->tsig_keys[2].xfr);
		CHECK_EQ_INT(conf_tsig_key(c, (const uint8_t *)"\002k1", 4, CONF_TSIG_SHA256), 0);
		CHECK_EQ_INT(conf_tsig_key(c, (const uint8_t *)"\002k1", 4, CONF_TSIG_SHA1), -1);
	}
	conf_free(c);
	expect_error("[Dns]\ntsig-keys = k1 hmac-md5 c2VjcmV0\n", ERR_CONFIG,
		     ":2: [Dns] tsig-keys: key \"k1\": algorithm hmac-sha256, hmac-sha512 or "
		     "hmac-sha1, got \"hmac-md5\"");
	expect_error("[Dns]\ntsig-keys = k1 hmac-sha256 c2V*jcmV0\n", ERR_CONFIG,
		     ":2: [Dns] tsig-keys: key \"k1\": the secret is not base64 of 1..128 bytes");
	expect_error("[Dns]\ntsig-keys = k1 hmac-sha256\n", ERR_CONFIG,
		     ":2: [Dns] tsig-keys: entries are \"name algorithm base64secret\"; entry 1 is "
		     "not");
	expect_error("[Dns]\ntsig-keys = k1 hmac-sha256 eA==\nxfr-key = k9\n", ERR_CONFIG,
		     ": [Dns] xfr-key names a key that tsig-keys lacks");
	expect_error("[Dns]\nnsid = 0x0\n", ERR_CONFIG,
		     ":2: [Dns] nsid: 0x and an even number of hex digits, at most 128 bytes, got "
		     "\"0x0\"");
	expect_error("[Dns]\ncookies = maybe\n", ERR_CONFIG,
		     ":2: [Dns] cookies: on, off or require, got \"maybe\"");
	expect_error("[Dns]\ncookie-secret = 0011\n", ERR_CONFIG,
		     ":2: [Dns] cookie-secret: 32 hex digits (16 bytes), got \"0011\"");
}

int main(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/test_conf.XXXXXX");
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(g_path, sizeof(g_path), "%s/skydns.conf", g_dir);

	test_defaults();
	test_every_key();
	test_aliases();
	test_booleans();
	test_numbers();
	test_bad_values();
	test_structure_errors();
	test_user();
	test_fun_modes();
	test_cross_checks();
	test_api_guard_keys();
	test_subdomains();
	test_list_continuation();
	test_parse_addr();
	test_domain_of();
	test_missing_file();
	test_examples();
	test_max_ttl();
	test_ns_address();
	test_edns_keys();

	unlink(g_path);
	rmdir(g_dir);
	return check_done();
}
