/*
 * conf: the typed, immutable configuration of skydns.
 *
 * conf_load() parses the INI file (libinih for the syntax; keys, aliases and
 * validation are ours), checks every value and returns a conf_t nobody
 * modifies afterwards. A reload builds a new conf_t and swaps it in main().
 * Any unknown section or key, or a bad value, fails with "FILE:LINE: message".
 * Keys of the original SkyDNS keep working (aliases noted below).
 * conf/ uses no third-party library besides libinih.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONF_MAX_DOMAINS 16

enum { CONF_PODS_DISABLED = 0, CONF_PODS_INSECURE = 1, CONF_PODS_VERIFIED = 2 };
#define CONF_MAX_SERVERS 16
#define CONF_MAX_SUBDOMAINS 64

#define CONF_NSID_MAX 128
#define CONF_MAX_XFR_ALLOW 32
#define CONF_MAX_TSIG_KEYS 16
#define CONF_MAX_XFR_KEYS 4
#define CONF_TSIG_SECRET_MAX 128 /* bytes; HMAC hashes a longer key first, so more adds nothing */
#define CONF_MAX_NOTIFY CONF_MAX_SERVERS

/* TSIG algorithms (RFC 8945 §6). */
enum { CONF_TSIG_SHA1 = 1, CONF_TSIG_SHA256, CONF_TSIG_SHA512 };

/* One tsig-keys entry. */
typedef struct {
	uint8_t name[255]; /* wire form, lower case (WIRE_NAME_MAX) */
	size_t namelen;
	uint8_t alg; /* CONF_TSIG_* */
	uint8_t secret[CONF_TSIG_SECRET_MAX];
	size_t secretlen;
	bool xfr; /* named by xfr-key: may sign a zone transfer */
} conf_tsig_key_t;

/* One xfr-allow entry: an address prefix. */
typedef struct {
	uint8_t len; /* 4 or 16 */
	uint8_t addr[16];
	uint8_t prefix; /* bits */
} conf_prefix_t;

/* [Dns] cookies: answer DNS cookies (on), also refuse a UDP query whose server cookie is
 * missing or bad with BADCOOKIE when it sent a client cookie (require), or ignore them (off). */
enum {
	CONF_COOKIES_ON = 0,
	CONF_COOKIES_OFF,
	CONF_COOKIES_REQUIRE,
};

/* [Dns] policy: which upstream a question's first try goes to. 0 is the default. */
enum {
	CONF_POLICY_FASTEST = 0, /* lowest smoothed RTT among the healthy */
	CONF_POLICY_SEQUENTIAL,	 /* the first healthy in the listed order */
	CONF_POLICY_RANDOM,	 /* a random healthy one */
	CONF_POLICY_ROUND_ROBIN, /* the next healthy one, in turn */
};

#define CONF_TLS_NAME_MAX 256 /* a DoT upstream's certificate name, with NUL */
#define CONF_LINES 160	      /* more than there are keys */

typedef struct {
	struct sockaddr_storage sa;
	socklen_t len;
} conf_addr_t;

typedef struct {
	uint8_t name[255]; /* wire form, lowercase */
	size_t namelen;
	size_t nservers;
	conf_addr_t servers[CONF_MAX_SERVERS];
} conf_subdomain_t;

typedef struct conf {
	char *path; /* the file it came from */

	/* [Dns] */
	size_t ndomains; /* >= 1; dns-domains ('%'-separated), alias dns-domain; default
			    skydns.local.; in-addr.arpa./ip6.arpa. ones are reverse zones */
	uint8_t domains[CONF_MAX_DOMAINS][255]; /* wire form, lowercase */
	size_t domainlens[CONF_MAX_DOMAINS];
	conf_addr_t dns_addr;	/* dns-addr, "ip:port" or "[ip6]:port"; default 127.0.0.1:53 */
	unsigned workers;	/* workers; 0 = one per online CPU */
	uint16_t edns_bufsize;	/* edns-bufsize, 512..4096, default 1232 */
	uint32_t min_ttl;	/* min-ttl: SOA minimum = negative TTL, default 60 */
	uint32_t max_ttl;	/* max-ttl: forwarded TTLs (and cache lifetimes) capped, 86400 */
	uint32_t tcp_idle_ms;	/* tcp-idle-timeout (seconds in file), default 10 s */
	unsigned tcp_max_conns; /* tcp-max-connections per worker, default 1024 */
	unsigned
	    tcp_max_per_client; /* tcp-max-per-client: per client address and worker, default 32 */
	/* tcp-message-timeout (seconds in file), default 3 s: a started message must end by then.
	 * tcp-max-per-client above counts per client /24 (IPv6 /56), not per address. */
	uint32_t tcp_msg_ms;
	/* UDP response rate limiting per client /24 (/56) and response kind (engine/rrl.h) */
	uint32_t rrl_rate; /* rrl-responses-per-second; 0 = off (default) */
	uint32_t
	    rrl_slip; /* rrl-slip: every n-th limited reply goes out TC=1; 0 = none; default 2 */
	uint32_t rrl_window; /* rrl-window: seconds of rate a client may burst, default 1 */
	size_t nnameservers; /* nameservers, alias ex-nameservers; comma list ip[:port] */
	conf_addr_t nameservers[CONF_MAX_SERVERS];
	bool nameservers_set; /* key present (even empty: then use /etc/resolv.conf) */
	/* DNS over TLS: "tls://ip[:port]@name" in nameservers; the name the certificate must
	 * match, "" for a plain server (same index as nameservers[]). */
	char nameserver_tls[CONF_MAX_SERVERS][CONF_TLS_NAME_MAX];
	char *tls_cafile;   /* tls-cafile: CA bundle for DoT upstreams; NULL = system store */
	size_t nsubdomains; /* subDomainServers, alias inDomainServers */
	conf_subdomain_t subdomains[CONF_MAX_SUBDOMAINS];
	uint32_t forward_timeout_ms; /* forward-timeout (seconds, may be fractional), default 2 */
	size_t cache_size;	     /* cacheSize, entries, default 100000; 0 disables */
	char *ip_monitor_path;	     /* ip-monitor-path, default /skydns/monitor/status/ */
	uint32_t shutdown_grace_ms;  /* shutdown-grace (seconds), default 5 */
	/* forward-max-per-client: questions in flight one client /24 (/56) may start per worker,
	 * twice that many of its queries waiting; 0 = no cap; default 512 (issue 10) */
	unsigned forward_max_per_client;
	/* ns-address: addresses of the synthesized apex NS ns1.<domain> (issue 17), at most one
	 * IPv4 and one IPv6, ','-separated; "none" or empty = no address. Default: the IP of
	 * dns-addr unless it is a wildcard (0.0.0.0, ::). Raw network-order bytes. */
	bool ns_has_v4, ns_has_v6;
	uint8_t ns_v4[4];
	uint8_t ns_v6[16];
	/* Upstream selection and health (issue 14): policy (CONF_POLICY_*, default fastest);
	 * max-fails: failures in a row that take a server out, 0 = never, default 2;
	 * health-check (seconds): how often a server taken out is probed, default 0.5 s */
	uint8_t policy;
	unsigned max_fails;
	uint32_t health_check_ms;
	/* Serve-stale (RFC 8767, issue 14): serve-stale = seconds an expired cached answer may
	 * still be served (TTL 30, EDE 3) when every upstream fails, 0 = off (default);
	 * stale-answer-timeout (seconds): how long a client waits for upstream before it
	 * gets the stale answer (the question goes on, refreshing the cache), default 1.8 */
	uint32_t serve_stale;
	uint32_t stale_answer_timeout_ms;
	/* nsid (RFC 5001, issue 17): what a query with an NSID option is answered; "hostname" =
	 * gethostname() at load, "0x<hex>" bytes, else the text itself; unset or empty = off */
	uint8_t nsid[CONF_NSID_MAX];
	size_t nsidlen;
	/* cookies (RFC 7873/9018): CONF_COOKIES_*, default on */
	uint8_t cookies;
	/* cookie-secret: 32 hex digits (16 bytes) keying server cookies; give every node behind
	 * one anycast address the same one. Default: random at each load (keys rotate hourly) */
	uint8_t cookie_secret[16];
	bool cookie_secret_set; /* configured: RFC 9018's key as is; random: hourly keys from it */
	/* xfr-allow: clients (addresses or prefixes, ','-separated) that may transfer the local
	 * zones (AXFR, IXFR answered as AXFR) over TCP; default none: REFUSED */
	size_t nxfr_allow;
	conf_prefix_t xfr_allow[CONF_MAX_XFR_ALLOW];
	/* tsig-keys: "name algorithm base64secret" entries (','-separated; algorithm hmac-sha1,
	 * hmac-sha256 or hmac-sha512) that sign queries and transfers (RFC 8945); default none */
	size_t ntsig_keys;
	conf_tsig_key_t tsig_keys[CONF_MAX_TSIG_KEYS];
	/* xfr-key: key names (','-separated, each in tsig-keys) of which a transfer must be
	 * signed with one, besides coming from xfr-allow; default none: unsigned transfers */
	size_t nxfr_keys;
	uint8_t xfr_keys[CONF_MAX_XFR_KEYS][255];
	size_t xfr_keylens[CONF_MAX_XFR_KEYS];
	/* notify: secondaries (ip[:port], ','-separated, port 53) sent a NOTIFY (RFC 1996) for
	 * every local domain after the store changed; default none */
	size_t nnotify;
	conf_addr_t notify[CONF_MAX_NOTIFY];

	/* [General] */
	char *user;	  /* user, default none: run as the starting user */
	char *group;	  /* group, default the user's primary group */
	bool has_user;	  /* user is set: run_uid/run_gid are valid */
	unsigned run_uid; /* resolved at load */
	unsigned run_gid;

	/* [Store] */
	char *data_dir;	 /* data-dir, default /var/lib/skydns */
	size_t map_size; /* map-size, bytes; suffixes K M G; default 1G */
	/* lookup-cache: most exact store hits remembered, split over the workers (128 B each;
	 * sized to twice the store's rrsets up to this); default 262144, 0 disables */
	size_t lookup_cache;

	/* [Log] */
	char *log_dir;		   /* log-dir, default none */
	int log_level;		   /* log-level, default info */
	bool log_to_stdio;	   /* log-to-stdio, default true */
	char *query_log;	   /* query-log: absolute path, default none (off) */
	unsigned query_log_sample; /* query-log-sample: 1 in N answers logged, default 1 */

	/* [Fun] */
	bool random_one; /* random-one */
	bool hone_one;	 /* hone-one; exclusive with random-one */

	/* [Api] (alias section [SkydnsApi] with skydns-auth; [Stats] statsServer,
	 * statsServerAuthToken) */
	bool api_enable;   /* api-enable, default false */
	char *api_address; /* api-address, default 127.0.0.1:9001 */
	char *api_token;   /* api-token, alias skydns-auth / statsServerAuthToken; NULL = none */
	/* api-tokens-file: "user token" lines, one token per user (api/tokens.c reads it at
	 * start and on SIGHUP); NULL = none */
	char *api_tokens_file;
	char *api_certfile;
	char *api_keyfile;
	/* api-hostnames: comma list of names (lowercase, no trailing dot) a tokenless API also
	 * accepts in Host and Origin besides its own address and localhost; NULL = none */
	char *api_hostnames;
	unsigned api_threads; /* api-threads: civetweb request threads, 4..256, default 32 */
	/* api-search (alias search): labels ("svc") under the first local domain where the API
	 * looks for a two-label name ("web.default" -> web.default.svc.<domain>); NULL = none */
	char *api_search;
	/* auto-ptr: every A/AAAA an API write adds or removes gets a PTR added or removed at its
	 * reverse name, where a reverse zone of domains[] holds it; default false */
	bool api_auto_ptr;

	/* [Etcd] */
	char *etcd_servers; /* comma list of URLs; NULL = etcd off */
	char *etcd_prefix;  /* default /skydns */
	char *etcd_certfile;
	char *etcd_keyfile;
	char *etcd_cafile;
	char *etcd_username; /* etcd-username: etcd auth (with etcd-password); NULL = none */
	char *etcd_password;

	/* [Kubernetes] */
	bool k8s_enable;
	char *k8s_server; /* server URL; NULL = in-cluster */
	char *k8s_token_file;
	char *k8s_cafile;
	char *k8s_kubeconfig;
	char *kube_domain;   /* default cluster.local. */
	char *svc_ip_source; /* clusterIP | externalIP */
	uint32_t k8s_ttl;    /* ttl: TTL of every Kubernetes record, default 5 */
	uint8_t k8s_pods;    /* pods: CONF_PODS_*, default disabled */
	/* With k8s_enable, kube-domain is appended to domains[] (answered authoritatively
	 * without being listed in dns-domains); this is its index there, -1 otherwise. */
	int k8s_zone;

	/* [Probe] */
	bool probe_enable;
	char *scan_ports; /* scann-ports (original spelling), alias scan-ports */
	uint32_t check_interval_ms;
	uint32_t check_timeout_ms;
	unsigned rise;
	unsigned fall;
	bool icmp;
	unsigned max_checks; /* max-checks: attempts in flight, default 4096 */
	char *probe_id; /* id: this probe's name in etcd and its stats file; default hostname */

	/* Where each key given in the file was set, by field offset (conf_line). */
	struct {
		uint32_t off, line;
	} lines[CONF_LINES];
	unsigned nlines;
} conf_t;

/**
 * The line of the file that set the field at offset `field` (offsetof(conf_t,
 * ...)), for messages about a value found bad after parsing; 0 when it was
 * not in the file (a default).
 */
unsigned conf_line(const conf_t *c, size_t field);

/**
 * Load and validate a config file.
 * @param out receives an owned conf_t (free with conf_free), only on success.
 * @param err receives "FILE:LINE: message" (or "FILE: message") on failure.
 * @return 0, ERR_CONFIG, -errno (file unreadable).
 */
int conf_load(const char *path, conf_t **out, char *err, size_t errlen);

/** Defaults only, as if loading an empty file. @param out owned. */
int conf_defaults(conf_t **out);

/** Free; NULL is a no-op. */
void conf_free(conf_t *c);

/**
 * Parse "ip", "ip:port", "[ip6]:port" (default_port when absent).
 * @return 0 or ERR_PARSE.
 */
int conf_parse_addr(const char *text, uint16_t default_port, conf_addr_t *out);

/** Format a as "ip:port" or "[ip6]:port", the text conf_parse_addr reads; "?" for a bad one. */
void conf_format_addr(const conf_addr_t *a, char *out, size_t cap);

/** Index of the local domain containing the wire name (lowercase), or -1. Longest match. */
int conf_domain_of(const conf_t *c, const uint8_t *name, size_t len);

/** May the client address (4 or 16 bytes) transfer zones (xfr-allow)? */
bool conf_xfr_allowed(const conf_t *c, const uint8_t *addr, size_t len);

/** The tsig-keys entry of a key name (wire form, any case) and algorithm, or -1. */
int conf_tsig_key(const conf_t *c, const uint8_t *name, size_t namelen, uint8_t alg);

/** Is the wire name (lowercase) in-addr.arpa. or ip6.arpa. or below them? */
bool conf_name_is_reverse(const uint8_t *name, size_t len);

/**
 * The domain short names are completed with (API names, SRV/MX/PTR targets,
 * the import's default origin): the first of dns-domains that is not a
 * reverse zone, so "dns-domains = 10.in-addr.arpa.%skydns.local." still
 * puts "web" at web.skydns.local.; 0 when every domain is a reverse zone.
 */
size_t conf_default_domain(const conf_t *c);
