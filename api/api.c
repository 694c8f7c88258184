/*
 * api: civetweb start/stop, routing and auth (DESIGN §6).
 */
#include "api/api.h"

#include <stdlib.h>

#include "common/err.h"
#include "conf/conf.h"

struct api {
	int unused;
};

int api_start(api_t **out, const struct conf *conf, struct store *store, const api_hooks_t *hooks)
{
	(void)store;
	(void)hooks;
	if (!conf->api_enable) {
		*out = NULL;
		return 0;
	}
	return ERR_CONFIG;
}

void api_set_draining(api_t *api, bool draining)
{
	(void)api;
	(void)draining;
}

void api_stop(api_t *api)
{
	free(api);
}
