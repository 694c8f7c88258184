#include "server/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t n;
	socklen_t len;
	int fd, ret;

	if (!path || !*path)
		return 0;
	n = strlen(path);
	/* An abstract name may use the whole sun_path; a path needs its NUL. */
	if ((path[0] != '/' && path[0] != '@') || n > sizeof(sun.sun_path) ||
	    (path[0] == '/' && n == sizeof(sun.sun_path)))
		return -EINVAL;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* MSG_NOSIGNAL: systemd going away must not kill us with SIGPIPE. */
	ret = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0
		  ? -errno
		  : 1;
	close(fd);
	return ret;
}
