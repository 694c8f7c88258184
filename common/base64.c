#include "common/base64.h"

#include "common/err.h"

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int base64_decode(const char *src, size_t n, uint8_t *dst, size_t *outlen)
{
	uint32_t acc = 0;
	size_t o = 0, bits = 0;

	while (n > 0 && src[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val(src[i]);
		if (v < 0)
			return ERR_PARSE;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dst[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 6) /* one dangling character: not base64 */
		return ERR_PARSE;
	*outlen = o;
	return 0;
}
