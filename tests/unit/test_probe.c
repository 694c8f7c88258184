/*
 * test_probe: the check engine (probe/probe.h) against real loopback sockets:
 * UP before the first result, rise/fall hysteresis, refused vs timed out,
 * what probe_changes reports (known states only, never over a manual
 * statement), table merges that keep state, and ownership.
 */
#include "probe/probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"

static int listen_on(const char *ip, uint16_t *port, int backlog)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, ip, &a.sin_addr);
	a.sin_port = htons(*port);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, backlog) < 0) {
		close(fd);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

static probe_target_t target(const char *ip, uint16_t port)
{
	probe_target_t t = {.alen = 4, .nports = 1, .ports = {port}};

	inet_pton(AF_INET, ip, t.addr);
	return t;
}

/* Run the engine for ms milliseconds. */
static void run_for(probe_t *p, int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		probe_run(p, 10);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

typedef struct {
	int n, last;
	bool accept;
} changes_t;

static int change_cb(void *ctx, const uint8_t *addr, size_t alen, int status)
{
	changes_t *c = ctx;

	(void)addr;
	(void)alen;
	c->n++;
	c->last = status;
	return c->accept ? 1 : 0;
}

static void test_hysteresis(void)
{
	probe_conf_t pc = {
	    .interval_ms = 100, .timeout_ms = 50, .rise = 2, .fall = 2, .max_checks = 16};
	probe_stats_t st = {0};
	probe_t *p = NULL;
	uint16_t port = 0;
	int lfd = listen_on("127.0.0.1", &port, 16);
	probe_target_t t = target("127.0.0.1", port);
	changes_t ch = {.accept = true};

	CHECK(lfd >= 0);
	CHECK_EQ_INT(probe_new(&p, &pc, &st), 0);
	CHECK_EQ_INT(probe_set_targets(p, &t, 1), 0);
	/* UP before any result, and nothing to write yet. */
	CHECK_EQ_INT(probe_state(p, t.addr, 4), STORE_HEALTH_UP);
	CHECK_EQ_INT(probe_changes(p, change_cb, &ch), 0);
	run_for(p, 250);
	CHECK(atomic_load(&st.checks) >= 1);
	CHECK_EQ_INT(probe_changes(p, change_cb, &ch), 1); /* the first pass confirms UP */
	CHECK_EQ_INT(ch.last, STORE_HEALTH_UP);
	CHECK_EQ_INT(probe_changes(p, change_cb, &ch), 0); /* stored now: written once */
	/* Closed: refused checks, DOWN after two of them, not after one. */
	close(lfd);
	uint64_t c0 = atomic_load(&st.checks);
	while (atomic_load(&st.checks) < c0 + 1)
		probe_run(p, 10);
	CHECK_EQ_INT(probe_state(p, t.addr, 4), STORE_HEALTH_UP);
	while (atomic_load(&st.checks) < c0 + 2)
		probe_run(p, 10);
	CHECK_EQ_INT(probe_state(p, t.addr, 4), STORE_HEALTH_DOWN);
	CHECK(atomic_load(&st.refused) >= 2);
	CHECK_EQ_INT(atomic_load(&st.to_down), 1);
	CHECK_EQ_INT(probe_changes(p, change_cb, &ch), 1);
	CHECK_EQ_INT(ch.last, STORE_HEALTH_DOWN);
	/* A manual statement holds: no write while it is there. */
	probe_stored_set(p, t.addr, 4, PROBE_STORED_MANUAL);
	lfd = listen_on("127.0.0.1", &port, 16);
	CHECK(lfd >= 0);
	run_for(p, 350);
	CHECK_EQ_INT(probe_state(p, t.addr, 4), STORE_HEALTH_UP);
	ch.n = 0;
	CHECK_EQ_INT(probe_changes(p, change_cb, &ch), 0);
	CHECK_EQ_INT(ch.n, 0);
	CHECK_EQ_INT(atomic_load(&st.manual), 1);
	/* Deleted: the probe's own state goes out. */
	probe_stored_reset(p);
	CHECK_EQ_INT(probe_changes(p, change_cb, &ch), 1);
	CHECK_EQ_INT(ch.last, STORE_HEALTH_UP);
	CHECK_EQ_INT(atomic_load(&st.to_up), 1);
	probe_free(p);
	close(lfd);
}

static void test_timeout(void)
{
	probe_conf_t pc = {
	    .interval_ms = 200, .timeout_ms = 80, .rise = 1, .fall = 1, .max_checks = 16};
	probe_stats_t st = {0};
	probe_t *p = NULL;
	uint16_t port = 0;
	/* Backlog 0 with one queued connection: Linux drops further SYNs. */
	int lfd = listen_on("127.0.0.1", &port, 0);
	int filler = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	probe_target_t t = target("127.0.0.1", port);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	CHECK(lfd >= 0);
	CHECK_EQ_INT(connect(filler, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ_INT(probe_new(&p, &pc, &st), 0);
	CHECK_EQ_INT(probe_set_targets(p, &t, 1), 0);
	while (atomic_load(&st.checks) < 2)
		probe_run(p, 10);
	CHECK_EQ_INT(probe_state(p, t.addr, 4), STORE_HEALTH_DOWN);
	CHECK(atomic_load(&st.timeouts) >= 1);
	CHECK_EQ_INT(atomic_load(&st.refused), 0);
	probe_free(p);
	close(filler);
	close(lfd);
}

static bool none_mine(void *ctx, const uint8_t *addr, size_t alen)
{
	(void)ctx;
	(void)addr;
	(void)alen;
	return false;
}

static void test_table(void)
{
	probe_conf_t pc = {
	    .interval_ms = 100, .timeout_ms = 50, .rise = 1, .fall = 1, .max_checks = 4};
	probe_stats_t st = {0};
	probe_t *p = NULL;
	probe_target_t t[3] = {target("127.0.0.2", 1), target("127.0.0.3", 1),
			       target("127.0.0.2", 2)};
	changes_t ch = {.accept = true};

	CHECK_EQ_INT(probe_new(&p, &pc, &st), 0);
	CHECK_EQ_INT(probe_set_targets(p, t, 3), 0);
	CHECK_EQ_INT(probe_count(p), 2); /* duplicates merged */
	/* A stored DOWN seeds an address not checked yet (a restarted probe). */
	CHECK(probe_stored_set(p, t[1].addr, 4, PROBE_STORED_DOWN));
	CHECK_EQ_INT(probe_state(p, t[1].addr, 4), STORE_HEALTH_DOWN);
	CHECK_EQ_INT(probe_changes(p, change_cb, &ch), 0);
	/* Rebuilt: the state survives. */
	CHECK_EQ_INT(probe_set_targets(p, &t[1], 1), 0);
	CHECK_EQ_INT(probe_count(p), 1);
	CHECK_EQ_INT(probe_state(p, t[1].addr, 4), STORE_HEALTH_DOWN);
	CHECK_EQ_INT(probe_state(p, t[0].addr, 4), 0);
	/* Not owned: never checked. */
	probe_set_owner(p, none_mine, NULL);
	CHECK_EQ_INT(atomic_load(&st.owned), 0);
	run_for(p, 250);
	CHECK_EQ_INT(atomic_load(&st.checks), 0);
	probe_set_owner(p, NULL, NULL);
	CHECK_EQ_INT(atomic_load(&st.owned), 1);
	probe_free(p);
	CHECK_EQ_INT(probe_new(&p, &pc, &st), 0);
	probe_free(NULL);
	probe_free(p);
}

int main(void)
{
	test_hysteresis();
	test_timeout();
	test_table();
	return check_done();
}
