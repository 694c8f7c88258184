/*
 * server/privs: [General] user/group, the account skydns runs as when it is
 * started as root. The sockets (port 53) and the API listener are bound as
 * root, then privs_drop() gives up root for good; files skydns creates (the
 * store, the log, the control socket) are created as that account already
 * (privs_enter() around their opening), so a later start as the user, a
 * watcher child or a -takeover successor can open them.
 *
 * main() only. privs_enter() runs before any thread exists; privs_drop() may
 * run with threads (glibc applies set*id to every thread).
 */
#pragma once

#include <stdbool.h>

struct conf;

/**
 * Act as the configured account for file creation and access checks
 * (effective ids and groups), when started as root with user set.
 * @return 1 switched (call privs_leave), 0 nothing to do, -errno.
 */
int privs_enter(const struct conf *c);

/** Back to root after privs_enter() returned 1. @return 0 or -errno. */
int privs_leave(void);

/**
 * Become the configured account for good: groups, gid, uid, and check that
 * root cannot be regained. Not root: nothing to do (a warning when running
 * as another account than user).
 * @return 0 or -errno.
 */
int privs_drop(const struct conf *c);
