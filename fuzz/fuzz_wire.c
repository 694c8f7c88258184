/* Names from untrusted packets: parse, print, parse again, compare. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t name[WIRE_NAME_MAX], again[WIRE_NAME_MAX], key[WIRE_KEY_MAX];
	char text[WIRE_NAME_TEXT_MAX];
	size_t len, againlen, keylen;
	wire_reader_t r;

	if (size < 1)
		return 0;
	/* First byte picks the start offset so pointers into earlier bytes get exercised. */
	wire_reader_init(&r, data + 1, size - 1);
	if (wire_skip(&r, data[0] % (size)) < 0)
		return 0;
	if (wire_get_name(&r, name, &len) < 0)
		return 0;
	if (wire_name_check(name, len) != 0)
		abort();
	if (wire_name_to_text(name, len, text, sizeof(text)) != 0)
		abort();
	if (wire_name_from_text(text, again, &againlen) != 0)
		abort();
	if (againlen != len || memcmp(again, name, len) != 0)
		abort();
	if (wire_name_to_key(name, len, key, &keylen) != 0)
		abort();
	if (wire_key_to_name(key, keylen, again, &againlen) != 0)
		abort();
	wire_name_lower(name, len);
	if (againlen != len || memcmp(again, name, len) != 0)
		abort();
	return 0;
}
