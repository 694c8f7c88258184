#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

/* Written by main() (log_open: at start and again on every SIGHUP reload, while the
 * workers log), read by every thread: hence atomics, and a reopened file takes the old
 * descriptor's number (dup2), so a thread writing at that moment never hits a closed or
 * reused descriptor. */
static _Atomic int g_fd = -1;
static _Atomic int g_level = LOG_LVL_INFO;
static _Atomic int g_to_stdio = 1;
static const char *_Atomic g_ident = "skydns";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_open(const char *dir, bool to_stdio, int level, const char *ident)
{
	int fd = -1;

	if (dir && *dir) {
		char path[4096];
		if (snprintf(path, sizeof(path), "%s/%s.log", dir, ident) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0)
			return -errno;
	}
	int old = atomic_load(&g_fd);
	if (fd >= 0 && old >= 0) {
		if (dup2(fd, old) < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		close(fd);
		fd = old;
	} else if (old >= 0) {
		atomic_store(&g_fd, -1);
		close(old);
	}
	atomic_store(&g_fd, fd);
	g_to_stdio = to_stdio || fd < 0;
	g_level = level;
	g_ident = ident;
	return 0;
}

void log_close(void)
{
	int old = atomic_exchange(&g_fd, -1);

	if (old >= 0)
		close(old);
}

int log_level_parse(const char *text)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcasecmp(text, level_names[i]) == 0)
			return i;
	if (strcasecmp(text, "err") == 0 || strcasecmp(text, "fatal") == 0)
		return LOG_LVL_ERR;
	if (strcasecmp(text, "warning") == 0)
		return LOG_LVL_WARN;
	return ERR_INVAL;
}

bool log_enabled(int level)
{
	return level <= g_level;
}

void log_msg(int level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n,
			      ".%03ldZ %s[%d] %s: ", ts.tv_nsec / 1000000, g_ident, (int)getpid(),
			      level_names[level < 0   ? 0
					  : level > 3 ? 3
						      : level]);
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	n = (m < 0) ? n : (n + (size_t)m >= sizeof(line) - 1) ? sizeof(line) - 2 : n + (size_t)m;
	line[n++] = '\n';
	/* One write per line so concurrent threads never interleave inside a line. */
	if (g_to_stdio && write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
	int fd = atomic_load(&g_fd);
	if (fd >= 0 && write(fd, line, n) < 0) {
		/* the disk is full: stderr may still get it */
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool log_ratelimit_ok(log_ratelimit_t *rl, uint32_t per_sec)
{
	uint64_t now = now_ms();

	if (now - rl->window_start_ms >= 1000) {
		if (rl->suppressed)
			log_warn("%u log lines suppressed in the last second", rl->suppressed);
		rl->window_start_ms = now;
		rl->used = 0;
		rl->suppressed = 0;
	}
	if (rl->used < per_sec) {
		rl->used++;
		return true;
	}
	rl->suppressed++;
	return false;
}
