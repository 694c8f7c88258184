#include "server/takeover.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/err.h"

int takeover_path(const char *data_dir, char *out, size_t cap)
{
	struct sockaddr_un sun;
	int n = snprintf(out, cap, "%s/skydns.ctl", data_dir);

	if (n < 0 || (size_t)n >= cap || (size_t)n >= sizeof(sun.sun_path))
		return ERR_TOOBIG;
	return 0;
}

static int addr_of(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return ERR_TOOBIG;
	memcpy(sun->sun_path, path, strlen(path));
	return 0;
}

int takeover_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd, ret = addr_of(path, &sun);

	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int takeover_listen(const char *path, int replace)
{
	struct sockaddr_un sun;
	int fd, ret = addr_of(path, &sun);

	if (ret < 0)
		return ret;
	if (!replace) {
		int probe = takeover_connect(path);

		if (probe >= 0) {
			close(probe);
			return -EADDRINUSE;
		}
	}
	/* Stale (nobody answered) or handed over: the path is ours now. */
	(void)unlink(path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* 0600 from the start: the socket hands out the DNS listeners. */
	mode_t old = umask(077);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 4) < 0 ? -errno : 0;
	umask(old);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

int takeover_accept(int lfd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    (cr.uid != getuid() && cr.uid != 0)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int takeover_send(int fd, const char *msg, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * TAKEOVER_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > TAKEOVER_MAX_FDS)
		return ERR_TOOBIG;
	if (nfds > 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

int takeover_recv(int fd, char *msg, size_t msgcap, int *fds, unsigned cap, unsigned *nfds,
		  int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * TAKEOVER_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = msg, .iov_len = msgcap - 1};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	unsigned got = 0;
	ssize_t n;
	int ret = 0;

	*nfds = 0;
	n = poll(&pfd, 1, timeout_ms);
	if (n == 0)
		return ERR_TIMEOUT;
	if (n < 0)
		return -errno;
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	msg[n] = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int *in = (int *)CMSG_DATA(c);

		for (unsigned i = 0; i < k; i++) {
			if (got < cap && ret == 0)
				fds[got++] = in[i];
			else {
				close(in[i]);
				ret = ERR_TOOBIG;
			}
		}
	}
	if ((mh.msg_flags & MSG_CTRUNC) || ret < 0) {
		for (unsigned i = 0; i < got; i++)
			close(fds[i]);
		return ERR_TOOBIG;
	}
	*nfds = got;
	return 0;
}
