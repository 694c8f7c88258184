/*
 * api/ui: GET / and /ui (the status page), /ui/<file> (its script and
 * style), served from the arrays cmake/embed.cmake compiled in.
 *
 * The files are static and hold no data; everything they show comes from
 * GET /skydns/stats/live and /skydns/lookup/, under the API's own rules (a
 * token when one is configured, which the page sends as an Authorization
 * header from a login field, never in a URL). Without a token the page gets
 * the guard's checks too (a foreign Host or Origin is refused), so a
 * rebinding site cannot even frame it. Every file is sent with a CSP that
 * allows nothing but this origin: the page cannot load or send anything
 * elsewhere, even if a record's text tried to inject markup.
 */
#include "api/api_internal.h"

#include <string.h>

#include <civetweb.h>

#include "api/api_ui.h"

#define UI_HEADERS                                                                                 \
	"Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "       \
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "      \
	"form-action 'none'\r\n"                                                                   \
	"X-Content-Type-Options: nosniff\r\n"                                                      \
	"X-Frame-Options: DENY\r\n"                                                                \
	"Referrer-Policy: no-referrer\r\n"

static const api_ui_asset_t *asset(const char *name)
{
	for (size_t i = 0; i < api_ui_nassets; i++)
		if (strcmp(api_ui_assets[i].name, name) == 0)
			return &api_ui_assets[i];
	return NULL;
}

int api_ui_handle(api_t *api, struct mg_connection *c, const char *method, const char *uri)
{
	const api_ui_asset_t *a;
	const char *file;
	int ret;

	if (strcmp(uri, "/") == 0 || strcmp(uri, "/ui") == 0 || strcmp(uri, "/ui/") == 0)
		file = "index.html";
	else if (strncmp(uri, "/ui/", 4) == 0)
		file = uri + 4;
	else
		return 0;
	if (!api->token && (ret = api_guard_check(api, c)) != 0)
		return ret;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return api_reply_error(c, 405, "method %s not allowed here", method);
	if (!(a = asset(file)))
		return api_reply_error(c, 404, "no such file");
	return api_reply_headers(c, 200, a->content_type, UI_HEADERS, (const char *)a->data,
				 a->len);
}
