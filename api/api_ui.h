/*
 * api/ui: the status page's files (api/ui/), compiled into the binary by
 * cmake/embed.cmake so the page needs nothing at run time but skydns itself.
 * Read-only data, any thread.
 */
#pragma once

#include <stddef.h>

typedef struct {
	const char *name;	   /* file name under api/ui/, e.g. "app.js" */
	const char *content_type;  /* from the extension */
	const unsigned char *data; /* static, NUL after the last byte */
	size_t len;
} api_ui_asset_t;

extern const api_ui_asset_t api_ui_assets[];
extern const size_t api_ui_nassets;
