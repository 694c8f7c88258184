#include "common/csprng.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define KEY_BYTES 32

_Static_assert(sizeof(((csprng_t *)0)->buf) > KEY_BYTES, "a refill must leave output");

static uint32_t rotl(uint32_t v, int n)
{
	return (v << n) | (v >> (32 - n));
}

#define QR(a, b, c, d)                                                                             \
	do {                                                                                       \
		a += b;                                                                            \
		d = rotl(d ^ a, 16);                                                               \
		c += d;                                                                            \
		b = rotl(b ^ c, 12);                                                               \
		a += b;                                                                            \
		d = rotl(d ^ a, 8);                                                                \
		c += d;                                                                            \
		b = rotl(b ^ c, 7);                                                                \
	} while (0)

void csprng_chacha20_block(const uint32_t key[8], uint32_t counter, const uint32_t nonce[3],
			   uint8_t out[64])
{
	uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574, key[0], key[1],
			   key[2],     key[3],	   key[4],     key[5],	   key[6], key[7],
			   counter,    nonce[0],   nonce[1],   nonce[2]};
	uint32_t x[16];

	memcpy(x, in, sizeof(x));
	for (int i = 0; i < 10; i++) {
		QR(x[0], x[4], x[8], x[12]);
		QR(x[1], x[5], x[9], x[13]);
		QR(x[2], x[6], x[10], x[14]);
		QR(x[3], x[7], x[11], x[15]);
		QR(x[0], x[5], x[10], x[15]);
		QR(x[1], x[6], x[11], x[12]);
		QR(x[2], x[7], x[8], x[13]);
		QR(x[3], x[4], x[9], x[14]);
	}
	for (int i = 0; i < 16; i++) {
		uint32_t v = x[i] + in[i];
		out[4 * i] = (uint8_t)v;
		out[4 * i + 1] = (uint8_t)(v >> 8);
		out[4 * i + 2] = (uint8_t)(v >> 16);
		out[4 * i + 3] = (uint8_t)(v >> 24);
	}
}

/* Bytes of the compiler may not drop (the key must not outlive its use in memory). */
static void wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;

	while (n--)
		*v++ = 0;
}

static void key_from_bytes(uint32_t key[8], const uint8_t *b, bool mix)
{
	for (int i = 0; i < 8; i++) {
		uint32_t w = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
			     (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
		key[i] = mix ? key[i] ^ w : w;
	}
}

/* /dev/urandom: for kernels or sandboxes without the getrandom syscall. */
static int urandom(uint8_t *out, size_t len)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC), ret = 0;
	size_t got = 0;

	if (fd < 0)
		return -errno;
	while (got < len) {
		ssize_t n = read(fd, out + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	return ret;
}

static int kernel_bytes(uint8_t *out, size_t len, unsigned flags)
{
	ssize_t n;

	do
		n = getrandom(out, len, flags);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		return -EIO; /* short read: cannot happen for <= 256 bytes, never trusted */
	return -errno;
}

/* New output under the current key; its first 32 bytes replace the key (key erasure). */
static void refill(csprng_t *r)
{
	static const uint32_t nonce[3] = {0, 0, 0};
	uint8_t fresh[KEY_BYTES];

	for (uint32_t i = 0; i < CSPRNG_BLOCKS; i++)
		csprng_chacha20_block(r->key, i, nonce, r->buf + 64 * i);
	key_from_bytes(r->key, r->buf, false);
	wipe(r->buf, KEY_BYTES);
	r->pos = KEY_BYTES;
	r->refills++;
	/* Mix in the kernel now and then, so a state leaked once heals. Never waits: a
	 * failure keeps the current key, which is still the kernel's secret. */
	if (++r->since >= CSPRNG_RESEED) {
		r->since = 0;
		if (kernel_bytes(fresh, sizeof(fresh), GRND_NONBLOCK) == 0) {
			key_from_bytes(r->key, fresh, true);
			r->reseeds++;
		}
		wipe(fresh, sizeof(fresh));
	}
}

int csprng_init(csprng_t *r)
{
	uint8_t seed[KEY_BYTES];
	int ret;

	memset(r, 0, sizeof(*r));
	ret = kernel_bytes(seed, sizeof(seed), 0);
	if (ret == -ENOSYS || ret == -EPERM)
		ret = urandom(seed, sizeof(seed));
	if (ret == 0)
		key_from_bytes(r->key, seed, false);
	wipe(seed, sizeof(seed));
	r->pos = sizeof(r->buf);
	return ret;
}

void csprng_deinit(csprng_t *r)
{
	wipe(r, sizeof(*r));
}

void csprng_bytes(csprng_t *r, void *out, size_t len)
{
	uint8_t *o = out;

	while (len > 0) {
		size_t n;

		if (r->pos >= sizeof(r->buf))
			refill(r);
		n = sizeof(r->buf) - r->pos;
		if (n > len)
			n = len;
		memcpy(o, r->buf + r->pos, n);
		/* Used output is wiped: a later look at the state must not show it. */
		wipe(r->buf + r->pos, n);
		r->pos += n;
		o += n;
		len -= n;
	}
}

uint16_t csprng_u16(csprng_t *r)
{
	uint8_t b[2];

	csprng_bytes(r, b, sizeof(b));
	return (uint16_t)(b[0] | b[1] << 8);
}
