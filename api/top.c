/*
 * api/top: GET /skydns/stats/top/<N>, the most-asked names merged from the
 * workers' Space-Saving tables (engine/topn.h) through the top_names hook.
 * Counts are estimates with a stated error: count is an upper bound and
 * count - error a lower bound of the times a name was asked.
 */
#include "api/api_internal.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"

/* "1".."API_TOP_MAX" in plain decimal, nothing else (no sign, no spaces, no leading zero). */
static int parse_n(const char *s, size_t *out)
{
	size_t v = 0, i = 0;

	if (s[0] < '1' || s[0] > '9')
		return ERR_INVAL;
	for (; s[i] >= '0' && s[i] <= '9' && v <= API_TOP_MAX; i++)
		v = v * 10 + (size_t)(s[i] - '0');
	if ((s[i] != '\0' && strcmp(s + i, "/") != 0) || v > API_TOP_MAX)
		return ERR_INVAL;
	*out = v;
	return 0;
}

static json_t *render(const api_top_name_t *t, int n)
{
	json_t *arr = json_array();

	for (int i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "name", t[i].name, "count",
						     (json_int_t)t[i].count, "error",
						     (json_int_t)t[i].error));
	return json_pack("{s:o}", "top", arr);
}

int api_top_handle(api_t *api, struct mg_connection *c, const char *method, const char *rest)
{
	api_top_name_t *t;
	size_t n;
	int ret;

	if (strcmp(method, "GET") != 0)
		return api_reply_error(c, 405, "method %s not allowed here", method);
	if (parse_n(rest, &n) < 0)
		return api_reply_error(c, 400, "N must be an integer from 1 to %d", API_TOP_MAX);
	if (!api->hooks.top_names)
		return api_reply_error(c, 404, "name counting is not available");
	if (!(t = calloc(n, sizeof(*t))))
		return api_reply_error(c, 500, "out of memory");
	ret = api->hooks.top_names(api->hooks.ctx, t, n);
	if (ret < 0) {
		free(t);
		return api_reply_error(c, 503, "top names: %s", err_str(ret));
	}
	ret = api_reply_json(c, 200, render(t, ret));
	free(t);
	return ret;
}
