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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"

#define FUZZ_STACK (100 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
	const uint8_t *data;
	size_t size;
	api_req_t *req;
} job_t;

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
}

static void *parse_job(void *arg)
{
	const job_t *j = arg;
	char err[256];
	int op = API_OP_CREATE + j->data[0] % 3;

	err[0] = 0;
	if (api_json_parse(op, (const char *)j->data + 1, j->size - 1, j->req, err, sizeof(err)) ==
	    0)
		check(j->req);
	else if (memchr(err, 0, sizeof(err)) == NULL)
		abort();
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	job_t job = {.data = data, .size = size};
	pthread_attr_t attr;
	pthread_t t;

	if (size < 1)
		return 0;
	if (!g_req && !(g_req = malloc(sizeof(*g_req))))
		abort();
	job.req = g_req;
	/* A thread per input: slower than a pool, but each run starts on an empty stack. */
	if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, FUZZ_STACK) != 0 ||
	    pthread_create(&t, &attr, parse_job, &job) != 0)
		abort();
	pthread_attr_destroy(&attr);
	pthread_join(t, NULL);
	return 0;
}
