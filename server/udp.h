/*
 * server/udp: the worker's UDP query path. The socket is watched by a
 * multishot io_uring poll (edge-triggered); each readiness completion drains
 * it with non-blocking recvmmsg, answers every datagram with query_process
 * under the worker's per-batch read snapshot, and sends the answers with one
 * sendmmsg. On this kernel (6.18) a recvmsg/send SQE per datagram cost more
 * CPU per query than the two batched syscalls (issue 6: 1.92 vs 1.72 µs/q).
 *
 * Forwarded questions still take a worker UDP slot and go through
 * worker_forward(); their answers leave through the ring (worker_reply).
 *
 * Threads: everything here runs on the worker thread that owns the socket.
 * Invariants: no allocation after udp_init; one drain handles at most
 * UDP_BUDGET batches, then yields to the ring with a NOP so TCP, upstream and
 * timer completions are not starved, and resumes on that NOP's completion
 * (an edge-triggered poll would not fire again for data already queued).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct worker;
struct io_uring_cqe;

#define UDP_BATCH 64  /* datagrams per recvmmsg/sendmmsg */
#define UDP_BUDGET 16 /* batches per drain before other completions get a turn */

/* user_data index of a UD_UDP_RECV completion */
enum {
	UDP_UD_POLL = 0,  /* the readiness poll */
	UDP_UD_DRAIN = 1, /* NOP queued when a drain ran out of budget */
};

/** Allocate the batch buffers (main thread, before serving). @return 0 or -ENOMEM. */
int udp_init(struct worker *w);

/** Free them. Safe after a failed or no udp_init. */
void udp_deinit(struct worker *w);

/** Arm the readiness poll on the worker's UDP socket (multishot when the kernel has it). */
void udp_arm(struct worker *w);

/** Retry the arms that found the SQ full (worker_rearm, WORKER_REARM_UDP). */
void udp_rearm(struct worker *w);

/** A UD_UDP_RECV completion: re-arm the poll when it ended, then drain. */
void udp_on_cqe(struct worker *w, const struct io_uring_cqe *cqe);

/** Receive, answer and send until the socket is empty or the budget is spent. */
void udp_drain(struct worker *w);

/**
 * Response rate limiting of one UDP reply in buf (rrl-*): may rewrite it to
 * its truncated form (slip). @return the length to send, 0 = send nothing.
 */
size_t udp_rrl(struct worker *w, const struct sockaddr *sa, socklen_t salen, uint8_t *buf,
	       size_t len);
