/*
 * api/tokens: who a request is (issue 18 ownership). The single api-token is the
 * admin; [Api] api-tokens-file adds one token per user ("user token" lines, '#'
 * comments), read at start and again on SIGHUP (api_reload_tokens). A reload that
 * finds an error keeps the previous table, so a typo never locks every user out.
 * The table is swapped under tokens_lock; a request copies its user's name out
 * under the same lock, so a reload never frees what a request still reads.
 */
#include "api/api_internal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "common/err.h"
#include "common/log.h"
#include "conf/conf.h"

#define TOKENS_LINE_MAX 1024

struct api_tokens {
	size_t n;
	struct {
		char user[API_USER_MAX];
		char *token; /* owned */
	} * v;
};

void api_tokens_free(struct api_tokens *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].token);
	free(t->v);
	free(t);
}

bool api_user_valid(const char *u, size_t len)
{
	if (len == 0 || len >= API_USER_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)u[i]) && !strchr("._-@", u[i]))
			return false;
	return true;
}

/* One "user token" line into t; err names what is wrong. @return 0 or ERR_PARSE. */
static int add_line(struct api_tokens *t, char *line, char *err, size_t cap)
{
	char *user, *tok, *extra, *save = NULL;

	if (!(user = strtok_r(line, " \t\r\n", &save)) || user[0] == '#')
		return 0;
	tok = strtok_r(NULL, " \t\r\n", &save);
	extra = strtok_r(NULL, " \t\r\n", &save);
	if (!tok || (extra && extra[0] != '#')) {
		snprintf(err, cap, "expected \"user token\"");
		return ERR_PARSE;
	}
	if (!api_user_valid(user, strlen(user))) {
		snprintf(err, cap, "bad user name \"%.64s\" (letters, digits, . _ - @; < %d bytes)",
			 user, API_USER_MAX);
		return ERR_PARSE;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].user, user) == 0 || strcmp(t->v[i].token, tok) == 0) {
			snprintf(err, cap, "%s \"%.64s\" given twice",
				 strcmp(t->v[i].user, user) == 0 ? "user" : "token of", user);
			return ERR_PARSE;
		}
	}
	void *nv = realloc(t->v, (t->n + 1) * sizeof(*t->v));
	if (!nv)
		return -ENOMEM;
	t->v = nv;
	snprintf(t->v[t->n].user, API_USER_MAX, "%s", user);
	if (!(t->v[t->n].token = strdup(tok)))
		return -ENOMEM;
	t->n++;
	return 0;
}

int api_tokens_load(const char *path, struct api_tokens **out)
{
	char line[TOKENS_LINE_MAX], why[200] = "";
	struct api_tokens *t = calloc(1, sizeof(*t));
	unsigned lineno = 0;
	FILE *f = NULL;
	int ret = -ENOMEM;

	if (!t)
		goto fail;
	if (!(f = fopen(path, "re"))) {
		ret = -errno;
		log_err("api: api-tokens-file %s: %s", path, err_str(ret));
		goto fail;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(why, sizeof(why), "line longer than %d bytes",
				 TOKENS_LINE_MAX - 2);
			ret = ERR_PARSE;
		} else {
			ret = add_line(t, line, why, sizeof(why));
		}
		if (ret < 0) {
			log_err("api: %s:%u: %s", path, lineno, why[0] ? why : err_str(ret));
			goto fail;
		}
	}
	fclose(f);
	*out = t;
	return 0;
fail:
	if (f)
		fclose(f);
	api_tokens_free(t);
	return ret == ERR_PARSE ? ERR_CONFIG : ret;
}

void api_reload_tokens(api_t *api)
{
	struct api_tokens *t = NULL, *old;
	const char *path = api ? api->conf->api_tokens_file : NULL;

	if (!path || !path[0])
		return;
	if (api_tokens_load(path, &t) < 0) {
		log_err("api: reload: %s not loaded; the previous tokens stay in force", path);
		return;
	}
	pthread_mutex_lock(&api->tokens_lock);
	old = api->tokens;
	api->tokens = t;
	pthread_mutex_unlock(&api->tokens_lock);
	api_tokens_free(old);
	log_info("api: reload: %zu user tokens from %s", t->n, path);
}

bool api_tokens_match(api_t *api, const char *tok, size_t len, api_who_t *who)
{
	bool found = false;

	pthread_mutex_lock(&api->tokens_lock);
	/* Every entry is compared, in constant time each: no early exit tells which matched. */
	for (size_t i = 0; api->tokens && i < api->tokens->n; i++) {
		if (api_token_equal(api->tokens->v[i].token, tok, len) && !found) {
			found = true;
			snprintf(who->user, sizeof(who->user), "%s", api->tokens->v[i].user);
			who->admin = strcmp(who->user, API_ADMIN_USER) == 0;
		}
	}
	pthread_mutex_unlock(&api->tokens_lock);
	return found;
}
