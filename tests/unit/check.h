/*
 * A tiny unit-test harness: CHECK() records a failure and goes on, so one
 * run reports every broken case. check_done() prints the closing
 * "N passed, N failed" line and returns the process exit status.
 */
#pragma once

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

/*
 * How much slower code runs under the sanitizer of this build, for the few
 * CPU-time bounds that guard against a quadratic algorithm coming back: their
 * figures are for the ASan build, and TSan instruments every access (~5-10x).
 */
#if defined(__SANITIZE_THREAD__)
#define SANITIZER_SLOWDOWN 10
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SANITIZER_SLOWDOWN 10
#endif
#endif
#ifndef SANITIZER_SLOWDOWN
#define SANITIZER_SLOWDOWN 1
#endif

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (cond) {                                                                        \
			check_passed++;                                                            \
		} else {                                                                           \
			check_failed++;                                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                    \
		if (check_a_ == check_b_) {                                                        \
			check_passed++;                                                            \
		} else {                                                                           \
			check_failed++;                                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n",          \
				__FILE__, __LINE__, #a, #b, check_a_, check_b_);                   \
		}                                                                                  \
	} while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

/* A run in which no CHECK executed proves nothing (a table left empty, a
 * skipped loop): it fails like a failed check. */
static inline int check_done(void)
{
	if (check_passed + check_failed == 0) {
		fprintf(stderr, "no CHECK ran\n");
		check_failed = 1;
	}
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed ? 1 : 0;
}
