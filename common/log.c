#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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

/* The file's path, for the rotation check. A changed log-dir is written to the next slot and
 * then published, so a thread still reading the previous one is not written under (it would
 * take LOG_PATHS changes within one check). */
#define LOG_PATHS 4
static char g_paths[LOG_PATHS][4096];
static unsigned g_npath; /* main only */
static const char *_Atomic g_path;
static _Atomic uint64_t g_checked_s; /* last second a thread compared g_path with g_fd */

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
		const char *cur = atomic_load(&g_path);
		if (!cur || strcmp(cur, path) != 0) {
			char *slot = g_paths[g_npath++ % LOG_PATHS];
			memcpy(slot, path, sizeof(path));
			atomic_store(&g_path, slot);
		}
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

/*
 * The component of a message: its "word: " prefix (every caller writes
 * "module: what happened", STYLE.md rule 17). @return its length, 0 if none.
 */
static size_t comp_len(const char *msg)
{
	size_t i = 0;

	while (i < 24 && (islower((unsigned char)msg[i]) || isdigit((unsigned char)msg[i]) ||
			  msg[i] == '-' || msg[i] == '_'))
		i++;
	return i > 0 && msg[i] == ':' && msg[i + 1] == ' ' ? i : 0;
}

/* logfmt value: quoted, with '"' and '\\' escaped and control bytes as spaces. */
static size_t put_quoted(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	if (cap < 3)
		return 0;
	out[n++] = '"';
	for (; *s && n + 3 < cap; s++) {
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		out[n++] = (unsigned char)*s < 0x20 ? ' ' : *s;
	}
	out[n++] = '"';
	return n;
}

/*
 * logrotate renamed the file (no SIGUSR1 reached this process, e.g. a
 * watcher): once a second at most, one thread compares the path's inode with
 * the open file's and reopens onto the same descriptor number (dup2), so
 * other threads write to one file or the other, never to a closed fd.
 */
static void check_rotated(int fd)
{
	struct timespec ts;
	struct stat a, b;
	uint64_t now, last;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = (uint64_t)ts.tv_sec;
	last = atomic_load(&g_checked_s);
	if (now == last || !atomic_compare_exchange_strong(&g_checked_s, &last, now))
		return;
	const char *path = atomic_load(&g_path);

	if (!path || fstat(fd, &a) < 0)
		return;
	if (stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		return;
	int nfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (nfd >= 0) {
		(void)dup2(nfd, fd);
		close(nfd);
	}
}

void log_msg(int level, const char *fmt, ...)
{
	char line[2048], msg[1800];
	struct timespec ts;
	struct tm tm;
	size_t n, comp;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = 0;
	va_end(ap);
	/* One logfmt line: ts level prog pid comp msg. msg keeps the whole sentence, its
	 * "comp: " prefix included, so a grep for what a message says keeps working. */
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s prog=%s pid=%d",
			      ts.tv_nsec / 1000000,
			      level_names[level < 0   ? 0
					  : level > 3 ? 3
						      : level],
			      g_ident, (int)getpid());
	comp = comp_len(msg);
	if (comp)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " comp=%.*s", (int)comp, msg);
	n += (size_t)snprintf(line + n, sizeof(line) - n, " msg=");
	n += put_quoted(line + n, sizeof(line) - n - 1, msg);
	line[n++] = '\n';
	/* One write per line so concurrent threads never interleave inside a line. */
	if (g_to_stdio && write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
	int fd = atomic_load(&g_fd);
	if (fd >= 0 && write(fd, line, n) < 0) {
		/* the disk is full: stderr may still get it */
	}
	if (fd >= 0)
		check_rotated(fd);
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
			log_warn("log: %u lines suppressed in the last second", rl->suppressed);
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
