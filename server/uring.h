/*
 * server/uring: io_uring plumbing shared by the worker's UDP and TCP paths:
 * ring setup with feature fallback, the provided-buffer ring (liburing 2.3
 * has no io_uring_setup_buf_ring, so the ring memory is mmapped here), and
 * the user_data encoding that makes CQE dispatch a switch.
 *
 * Threads: everything here is used by the one worker thread owning the ring.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <liburing.h>

/*
 * user_data = type (top 8 bits) | index (low 32 bits). The index is a UDP
 * response slot, a TCP connection or an upstream socket, depending on type.
 */
enum {
	UD_UDP_RECV = 1,   /* readiness poll / drain NOP of the worker's UDP socket (udp.h) */
	UD_UDP_SEND = 2,   /* send of UDP response slot idx (forwarded answers) */
	UD_TCP_ACCEPT = 3, /* multishot accept on the TCP listener */
	UD_TCP_RECV = 4,   /* recv on TCP connection idx */
	UD_TCP_SEND = 5,   /* send on TCP connection idx */
	UD_EVENTFD = 6,	   /* read on the wake/stop eventfd */
	UD_TIMER = 7,	   /* periodic tick (idle sweep, forwarder timeouts) */
	UD_UPSTREAM = 8,   /* multishot recv on the socket of upstream try slot idx */
	UD_CANCEL = 9,	   /* completions nobody waits for */
	UD_UP_SEND = 10,   /* send on the socket of upstream try slot idx */
	UD_UP_TCP = 11,	   /* connect/send/recv of upstream TCP connection idx */
	UD_FWD_TICK = 12,  /* forwarder timeout tick, armed while questions are in flight */
	UD_DOT = 13,	   /* readiness poll of DoT upstream connection idx (dot.h) */
};

static inline uint64_t uring_ud(unsigned type, uint32_t idx)
{
	return ((uint64_t)type << 56) | idx;
}

static inline unsigned uring_ud_type(uint64_t ud)
{
	return (unsigned)(ud >> 56);
}

static inline uint32_t uring_ud_idx(uint64_t ud)
{
	return (uint32_t)ud;
}

/* A provided-buffer ring and the buffers it hands out. */
typedef struct {
	struct io_uring_buf_ring *br; /* owned: mmapped */
	size_t br_bytes;
	uint8_t *bufs;	/* owned: nbufs * bufsize bytes, mmapped */
	unsigned nbufs; /* power of two */
	unsigned bufsize;
	uint16_t bgid;
} uring_bufs_t;

/**
 * Create a ring, asking for SINGLE_ISSUER|COOP_TASKRUN|DEFER_TASKRUN and
 * falling back to plainer flags when the kernel refuses (EINVAL).
 * Call from the thread that will submit (SINGLE_ISSUER).
 * @return 0 or -errno.
 */
int uring_init(struct io_uring *ring, unsigned entries);

/**
 * Allocate nbufs buffers of bufsize bytes and register them as group bgid.
 * @return 0 or -errno; on failure *b is untouched and nothing is registered.
 */
int uring_bufs_init(uring_bufs_t *b, struct io_uring *ring, unsigned nbufs, unsigned bufsize,
		    uint16_t bgid);

/**
 * Unregister and free. Safe on a zeroed struct. ring may be NULL once
 * io_uring_queue_exit() ran (that unregisters everything): freeing after the
 * exit is the safe order, since no receive can then still land in the buffers.
 */
void uring_bufs_deinit(uring_bufs_t *b, struct io_uring *ring);

/** Address of buffer bid. */
static inline uint8_t *uring_buf(const uring_bufs_t *b, unsigned bid)
{
	return b->bufs + (size_t)bid * b->bufsize;
}

/** Give buffer bid back to the kernel. */
static inline void uring_buf_recycle(uring_bufs_t *b, unsigned bid)
{
	io_uring_buf_ring_add(b->br, uring_buf(b, bid), b->bufsize, (unsigned short)bid,
			      io_uring_buf_ring_mask(b->nbufs), 0);
	io_uring_buf_ring_advance(b->br, 1);
}

/**
 * True when IORING_OP_SEND accepts a destination address (sendto). Kernel 6.0
 * added it together with IORING_OP_SEND_ZC, which the probe can see; older
 * kernels fail such a send with -EINVAL.
 */
bool uring_has_sendto(struct io_uring *ring);

/**
 * Next free SQE; when the SQ is full, submit what is queued and try again.
 * @return NULL when the SQ stays full (the kernel refused the submit, e.g.
 *         -EBUSY with the CQ overflowing). Every caller must cope: drop the
 *         operation (release its slot, close its connection, or re-arm it
 *         later) and count it in STATS_RING_FULL.
 */
struct io_uring_sqe *uring_sqe(struct io_uring *ring);
