/*
 * test_etcd_conf: the [Etcd] keys the watcher adds to conf/ (etcd-username,
 * etcd-password): parsed, and refused one without the other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "conf/conf.h"
#include "tests/unit/check.h"

static int load(const char *text, conf_t **out, char *err, size_t errlen)
{
	char path[] = "/tmp/test_etcd_conf.XXXXXX";
	int fd = mkstemp(path), ret;
	FILE *f;

	if (fd < 0 || !(f = fdopen(fd, "w")))
		return -1;
	fputs(text, f);
	fclose(f);
	ret = conf_load(path, out, err, errlen);
	unlink(path);
	return ret;
}

int main(void)
{
	conf_t *c = NULL;
	char err[512] = "";

	CHECK_EQ_INT(load("[Etcd]\netcd-servers = http://127.0.0.1:2379\netcd-username = root\n"
			  "etcd-password = pw\n",
			  &c, err, sizeof(err)),
		     0);
	CHECK(c && c->etcd_username && strcmp(c->etcd_username, "root") == 0);
	CHECK(c && c->etcd_password && strcmp(c->etcd_password, "pw") == 0);
	conf_free(c);
	c = NULL;
	CHECK_EQ_INT(load("[Etcd]\netcd-username = root\n", &c, err, sizeof(err)), ERR_CONFIG);
	CHECK(strstr(err, "etcd-username and etcd-password go together") != NULL);
	CHECK(c == NULL);
	CHECK_EQ_INT(load("[Etcd]\netcd-password =\n", &c, err, sizeof(err)), ERR_CONFIG);
	CHECK_EQ_INT(conf_defaults(&c), 0);
	CHECK(c && c->etcd_username == NULL && c->etcd_password == NULL);
	conf_free(c);
	return check_done();
}
