/*
 * server/takeover: the control socket through which a new skydns takes the
 * listening sockets of a running one (skydns -takeover, a zero-downtime
 * upgrade). A SOCK_SEQPACKET Unix socket at <data-dir>/skydns.ctl, mode
 * 0600; one message per step, descriptors passed with SCM_RIGHTS:
 *
 *   new -> old  "TAKEOVER"
 *   old -> new  "SOCKETS <pid>" + one UDP socket and one TCP listener per worker
 *   new -> old  "SERVING"      (its workers read those sockets now)
 *   old -> new  "RELEASED"     (old stopped reading them, stopped its API and
 *                               children, closed its control socket; it drains
 *                               what it has in flight, then exits)
 *
 * Until the old process sent RELEASED it owns the address: a new process that
 * fails or goes away before then changes nothing. Only main() calls these;
 * every call that waits takes a timeout (main is not a worker).
 */
#pragma once

#include <stddef.h>

/** Most descriptors one message carries (the kernel's SCM_MAX_FD is 253). */
#define TAKEOVER_MAX_FDS 252

/**
 * The control socket's path for a data directory.
 * @return 0, or ERR_TOOBIG when it does not fit a sockaddr_un.
 */
int takeover_path(const char *data_dir, char *out, size_t cap);

/**
 * Listen on path. A socket file nobody answers on (a crashed run) is
 * replaced; one that answers is not (-EADDRINUSE), unless replace is set
 * (the new process after RELEASED: the old one no longer accepts there).
 * @return the listening fd (owned, non-blocking, close-on-exec) or -errno.
 */
int takeover_listen(const char *path, int replace);

/** @return a connected fd (owned), or -errno: -ENOENT / -ECONNREFUSED when nothing runs. */
int takeover_connect(const char *path);

/**
 * Accept one connection on a listening fd, refusing peers of another user
 * (root excepted). @return the connection (owned) or -errno.
 */
int takeover_accept(int lfd);

/**
 * Send one message, with nfds descriptors (borrowed; the peer gets copies).
 * @return 0 or -errno.
 */
int takeover_send(int fd, const char *msg, const int *fds, unsigned nfds);

/**
 * Wait up to timeout_ms for one message; msg is NUL-terminated.
 * @param fds receives up to cap descriptors (owned by the caller), *nfds their count.
 * @return 0, ERR_TIMEOUT, -EPIPE (peer gone), ERR_TOOBIG (more than cap fds: all closed).
 */
int takeover_recv(int fd, char *msg, size_t msgcap, int *fds, unsigned cap, unsigned *nfds,
		  int timeout_ms);
