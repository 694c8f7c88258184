/*
 * The admin API's request bodies: any bytes, for each operation. On success
 * the parsed request must respect the documented bounds.
 * Input: byte 0 selects the operation (POST, PUT, DELETE), the rest is the body.
 *
 * The parser runs on a thread with a 100 KB stack, the size Debian's
 * civetweb gives its request threads (issue 10 item 2: 900 nested '[' ran
 * jansson off such a stack). On the fuzzer's own 8 MB stack that crash
 * would never show.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"

#define FUZZ_STACK (100 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One job at a time, handed to a long-lived parser thread: a thread per input ran ~1,500
 * inputs/s; a handover through a condition variable costs microseconds. */
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const uint8_t *data; /* non-NULL: a job waits for the parser thread */
	size_t size;
	bool done;
} job_t;

static job_t g_job = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, false};
static api_req_t *g_req;

static void check(const api_req_t *r)
{
	if (r->naddrs > API_ADDRS_MAX || r->nports > API_ADDRS_MAX || r->nupdates > API_ADDRS_MAX ||
	    r->textlen > API_TEXT_MAX || memchr(r->alias, 0, sizeof(r->alias)) == NULL ||
	    memchr(r->target, 0, sizeof(r->target)) == NULL || r->mode < 0 || r->mode > 3)
		abort();
	for (size_t i = 0; i < r->naddrs; i++)
		if (r->addrs[i].len != 4 && r->addrs[i].len != 16)
			abort();
	if (r->nsrv > API_ADDRS_MAX)
		abort();
	for (size_t i = 0; i < r->nsrv; i++) {
		const api_srv_t *s = &r->srv[i];
		/* Each SRV is a name or an address, never both, and has a port. */
		if (memchr(s->host, 0, sizeof(s->host)) == NULL || s->port == 0 ||
		    (s->host[0] != 0) == (s->addr.len != 0) ||
		    (s->addr.len && s->addr.len != 4 && s->addr.len != 16))
			abort();
	}
}

static void parse_one(const uint8_t *data, size_t size)
{
	char err[256];
	int op = API_OP_CREATE + data[0] % 3;

	err[0] = 0;
	if (api_json_parse(op, (const char *)data + 1, size - 1, g_req, err, sizeof(err)) == 0)
		check(g_req);
	else if (memchr(err, 0, sizeof(err)) == NULL)
		abort();
}

static void *parser_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g_job.mu);
	for (;;) {
		while (!g_job.data)
			pthread_cond_wait(&g_job.cv, &g_job.mu);
		parse_one(g_job.data, g_job.size);
		g_job.data = NULL;
		g_job.done = true;
		pthread_cond_broadcast(&g_job.cv);
	}
	return NULL;
}

static void start_parser(void)
{
	pthread_attr_t attr;
	pthread_t t;

	if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, FUZZ_STACK) != 0 ||
	    pthread_create(&t, &attr, parser_thread, NULL) != 0)
		abort();
	pthread_attr_destroy(&attr);
	pthread_detach(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!g_req) {
		if (!(g_req = malloc(sizeof(*g_req))))
			abort();
		start_parser();
	}
	pthread_mutex_lock(&g_job.mu);
	g_job.data = data;
	g_job.size = size;
	g_job.done = false;
	pthread_cond_broadcast(&g_job.cv);
	while (!g_job.done)
		pthread_cond_wait(&g_job.cv, &g_job.mu);
	pthread_mutex_unlock(&g_job.mu);
	return 0;
}
