/*
 * api/guard: what stands in for the token on a tokenless loopback API
 * (issue 10 item 4). A web page in a local browser can reach 127.0.0.1: it
 * can POST a text/plain body cross-site without a CORS preflight, and a
 * DNS-rebinding page talks to us under its own host name. What it cannot do
 * without a preflight, which this API never approves, is send a JSON
 * Content-Type, hide its Origin, or choose the Host header. So a request to
 * /skydns/ must carry our own Host (or none), no foreign Origin, and JSON
 * for a body. Non-browser clients (curl, skydns-cli) meet all three as is.
 */
#include "api/api_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <civetweb.h>

#include "common/err.h"
#include "conf/conf.h"

static int add_host(api_t *api, const char *host)
{
	char **nh;

	if (!(nh = realloc(api->hosts, (api->nhosts + 1) * sizeof(*nh))))
		return -ENOMEM;
	api->hosts = nh;
	if (!(nh[api->nhosts] = strdup(host)))
		return -ENOMEM;
	api->nhosts++;
	return 0;
}

/* One name as Host: with our port, and bare (a proxy in front, or port 80/443). */
static int add_name(api_t *api, const char *name, unsigned port, bool bare)
{
	char buf[300];
	int ret;

	snprintf(buf, sizeof(buf), "%s:%u", name, port);
	ret = add_host(api, buf);
	if (ret == 0 && bare)
		ret = add_host(api, name);
	return ret;
}

int api_guard_init(api_t *api, const conf_t *conf)
{
	char ip[INET6_ADDRSTRLEN + 2] = "", list[1024];
	conf_addr_t a;
	unsigned port;
	bool dflt;
	int ret;

	if (conf_parse_addr(conf->api_address ? conf->api_address : "127.0.0.1:9001", 9001, &a) < 0)
		return ERR_CONFIG;
	if (a.sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a.sa;
		ip[0] = '[';
		inet_ntop(AF_INET6, &s->sin6_addr, ip + 1, sizeof(ip) - 2);
		strcat(ip, "]");
		port = ntohs(s->sin6_port);
	} else {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&a.sa;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		port = ntohs(s->sin_port);
	}
	/* Browsers leave the scheme's default port out of Host and Origin. */
	dflt = port == 80 || port == 443;
	if ((ret = add_name(api, ip, port, dflt)) < 0 ||
	    (ret = add_name(api, "localhost", port, dflt)) < 0 ||
	    (ret = add_name(api, "127.0.0.1", port, dflt)) < 0 ||
	    (ret = add_name(api, "[::1]", port, dflt)) < 0)
		return ret;
	snprintf(list, sizeof(list), "%s", conf->api_hostnames ? conf->api_hostnames : "");
	for (char *save = NULL, *n = strtok_r(list, ",", &save); n; n = strtok_r(NULL, ",", &save))
		if ((ret = add_name(api, n, port, true)) < 0)
			return ret;
	return 0;
}

void api_guard_free(api_t *api)
{
	for (size_t i = 0; i < api->nhosts; i++)
		free(api->hosts[i]);
	free(api->hosts);
	api->hosts = NULL;
	api->nhosts = 0;
}

static bool host_ok(const api_t *api, const char *h, size_t len)
{
	char buf[300];
	const char *colon;
	size_t name;

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, h, len);
	buf[len] = '\0';
	/* "name.:port" and "name." are the same host as without the dot. */
	colon = buf[0] == '[' ? NULL : strrchr(buf, ':');
	name = colon ? (size_t)(colon - buf) : len;
	if (name > 1 && buf[name - 1] == '.') {
		memmove(buf + name - 1, buf + name, len - name + 1);
	}
	for (size_t i = 0; i < api->nhosts; i++)
		if (strcasecmp(api->hosts[i], buf) == 0)
			return true;
	return false;
}

/* "scheme://host[:port]" with one of our hosts; "null" (sandboxed pages, files) is foreign. */
static bool origin_ok(const api_t *api, const char *o)
{
	const char *auth;

	if (strncasecmp(o, "http://", 7) == 0)
		auth = o + 7;
	else if (strncasecmp(o, "https://", 8) == 0)
		auth = o + 8;
	else
		return false;
	return host_ok(api, auth, strcspn(auth, "/"));
}

static bool is_json(const char *ct)
{
	if (!ct)
		return false;
	ct += strspn(ct, " \t");
	if (strncasecmp(ct, "application/json", 16) != 0)
		return false;
	return ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ' || ct[16] == '\t';
}

int api_guard_check(api_t *api, struct mg_connection *c)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	const char *host = mg_get_header(c, "Host");
	const char *origin = mg_get_header(c, "Origin");
	bool body = ri->content_length > 0 || mg_get_header(c, "Transfer-Encoding");

	/* No Host at all is an HTTP/1.0 tool, never a browser: let it through. */
	if (host && !host_ok(api, host, strlen(host)))
		return api_reply_error(c, 421,
				       "Host \"%.100s\" is not this API's address; list it in "
				       "api-hostnames or configure api-token",
				       host);
	if (origin && !origin_ok(api, origin))
		return api_reply_error(c, 403, "cross-origin request from \"%.100s\" refused",
				       origin);
	if (body && !is_json(mg_get_header(c, "Content-Type")))
		return api_reply_error(c, 415,
				       "a request body must be Content-Type: "
				       "application/json");
	return 0;
}
