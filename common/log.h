/*
 * common/log: the one logging API.
 *
 * log_open() is called once by main() before threads start; after that every
 * thread may log. A line is logfmt: ts=<UTC ISO 8601 ms> level=<error|warn|
 * info|debug> prog=<ident> pid=<pid> comp=<the message's "module: " prefix>
 * msg="<the message, prefix included>". Calling log_open() again with the
 * same dir reopens the file (SIGUSR1 after logrotate moved it). Lines go to stderr (log-to-stdio)
 * and/or to <log-dir>/skydns.log, each written with one write(2) so lines never interleave. Worker
 * threads must not log per query: they use a log_ratelimit_t so a flood of bad packets cannot turn
 * into a flood of lines.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/**
 * Configure logging. Safe to call again (SIGHUP) from main only.
 * @param dir      directory for skydns.log, or NULL/"" for none.
 * @param to_stdio also write to stderr.
 * @param level    highest LOG_LVL_* written.
 * @param ident    program name put in front of every line (borrowed, must
 *                 outlive logging; usually a string literal).
 * @return 0 or -errno (the log file could not be opened).
 */
int log_open(const char *dir, bool to_stdio, int level, const char *ident);

/** Close the log file, if any. */
void log_close(void);

/** Parse "error"|"warn"|"info"|"debug" (case-insensitive). @return level or ERR_INVAL. */
int log_level_parse(const char *text);

/** True when a message at this level would be written (skip expensive formatting). */
bool log_enabled(int level);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* A per-thread token bucket: at most `per_sec` lines a second. Embed and zero-init. */
typedef struct {
	uint64_t window_start_ms;
	uint32_t used;
	uint32_t suppressed;
} log_ratelimit_t;

/**
 * @return true when a line may be written now; counts suppressed lines and,
 * when a new window opens, logs how many were suppressed in the last one.
 */
bool log_ratelimit_ok(log_ratelimit_t *rl, uint32_t per_sec);
