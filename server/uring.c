#include "server/uring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "common/log.h"

int uring_init(struct io_uring *ring, unsigned entries)
{
	static const unsigned tries[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN,
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
	    IORING_SETUP_COOP_TASKRUN,
	    0,
	};
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		/* Multishot recv can complete many datagrams per submit: room for bursts. */
		p.flags = tries[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		ret = io_uring_queue_init_params(entries, ring, &p);
		if (ret == 0)
			log_debug("server: io_uring setup flags 0x%x, features 0x%x", ring->flags,
				  p.features);
		if (ret != -EINVAL)
			return ret;
	}
	return ret;
}

int uring_bufs_init(uring_bufs_t *b, struct io_uring *ring, unsigned nbufs, unsigned bufsize,
		    uint16_t bgid)
{
	struct io_uring_buf_reg reg;
	size_t br_bytes = (size_t)nbufs * sizeof(struct io_uring_buf);
	size_t buf_bytes = (size_t)nbufs * bufsize;
	void *br = MAP_FAILED, *bufs = MAP_FAILED;
	int ret;

	br = mmap(NULL, br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	bufs = mmap(NULL, buf_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED || bufs == MAP_FAILED) {
		ret = -ENOMEM;
		goto fail;
	}
	io_uring_buf_ring_init(br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = nbufs;
	reg.bgid = bgid;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret < 0)
		goto fail;

	b->br = br;
	b->br_bytes = br_bytes;
	b->bufs = bufs;
	b->nbufs = nbufs;
	b->bufsize = bufsize;
	b->bgid = bgid;
	for (unsigned i = 0; i < nbufs; i++)
		io_uring_buf_ring_add(b->br, uring_buf(b, i), bufsize, (unsigned short)i,
				      io_uring_buf_ring_mask(nbufs), (int)i);
	io_uring_buf_ring_advance(b->br, (int)nbufs);
	return 0;
fail:
	if (br != MAP_FAILED)
		munmap(br, br_bytes);
	if (bufs != MAP_FAILED)
		munmap(bufs, buf_bytes);
	return ret;
}

void uring_bufs_deinit(uring_bufs_t *b, struct io_uring *ring)
{
	if (!b->br)
		return;
	if (ring)
		io_uring_unregister_buf_ring(ring, b->bgid);
	munmap(b->br, b->br_bytes);
	munmap(b->bufs, (size_t)b->nbufs * b->bufsize);
	memset(b, 0, sizeof(*b));
}

struct io_uring_sqe *uring_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	/* Twice: a submit interrupted by a signal (-EINTR) gets a second chance. */
	for (int i = 0; !sqe && i < 2; i++) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	return sqe;
}

bool uring_has_sendto(struct io_uring *ring)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	bool ok = p && io_uring_opcode_supported(p, IORING_OP_SEND_ZC);

	if (p)
		io_uring_free_probe(p);
	return ok;
}
