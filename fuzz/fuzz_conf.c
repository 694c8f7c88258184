/* The config parser: any bytes as a config file must load or fail with a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[512] = "";
	conf_t *c = NULL;
	int fd = memfd_create("fuzz.conf", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int ret = conf_load(path, &c, err, sizeof(err));
	if (ret == 0 && !c)
		abort();
	if (ret != 0 && (c || err[0] == '\0'))
		abort(); /* a failure always says why and hands out nothing */
	conf_free(c);
	close(fd);
	return 0;
}
