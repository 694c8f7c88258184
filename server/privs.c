#include "server/privs.h"

#include <errno.h>
#include <grp.h>
#include <unistd.h>

#include "common/log.h"
#include "conf/conf.h"

int privs_enter(const struct conf *c)
{
	gid_t gid = (gid_t)c->run_gid;

	if (!c->has_user || geteuid() != 0)
		return 0;
	/* Supplementary groups first: root's own would otherwise grant access the user lacks. */
	if (setgroups(1, &gid) < 0 || setegid(gid) < 0 || seteuid((uid_t)c->run_uid) < 0)
		return -errno;
	return 1;
}

int privs_leave(void)
{
	if (seteuid(0) < 0 || setegid(0) < 0)
		return -errno;
	return 0;
}

int privs_drop(const struct conf *c)
{
	gid_t gid = (gid_t)c->run_gid;

	if (!c->has_user)
		return 0;
	if (getuid() != 0) {
		if (getuid() != (uid_t)c->run_uid)
			log_warn(
			    "privs: started as uid %u, not as root: [General] user = %s has no "
			    "effect",
			    (unsigned)getuid(), c->user);
		return 0;
	}
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid((uid_t)c->run_uid) < 0)
		return -errno;
	/* The drop must be one-way; setuid(0) succeeding would mean it was not. */
	if (setuid(0) == 0 || seteuid(0) == 0)
		return -EPERM;
	log_info("privs: running as user %s (uid %u, gid %u) after binding", c->user, c->run_uid,
		 c->run_gid);
	return 0;
}
