/*
 * Zone import: any master file either loads or fails with PATH:LINE and
 * leaves the store as it was (checked through the generation counter).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/wire.h"
#include "fuzz/fixture.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t generation(store_t *s)
{
	store_rtxn_t *t = NULL;
	uint64_t g;

	if (store_read_begin(s, &t) != 0)
		abort();
	g = store_generation(t);
	store_read_end(t);
	return g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t origin[] = "\6skydns\5local";
	char path[64], err[512] = "";
	store_t *s = fixture_store();
	int fd = memfd_create("fuzz.zone", MFD_CLOEXEC);
	size_t nrr = 0;

	if (fd < 0)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	uint64_t before = generation(s);
	int ret = store_import_zone(s, path, origin, sizeof(origin), err, sizeof(err), &nrr);
	if (ret != 0 && (generation(s) != before || strncmp(err, path, strlen(path)) != 0))
		abort(); /* a failed import changed the store or did not name the file */
	close(fd);
	return 0;
}
