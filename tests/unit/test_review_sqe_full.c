/*
 * Review regression (SQ full): uring_sqe() returned NULL when the SQ was full
 * and the submit failed, and its callers dereferenced it. This checks the
 * contract the callers now rely on: a full SQ whose submit works yields an
 * SQE; one whose submit fails yields NULL (no crash), and the ring works
 * again once the kernel takes submissions.
 */
#include <fcntl.h>
#include <unistd.h>

#include "server/uring.h"
#include "tests/unit/check.h"

#define ENTRIES 4

static void fill(struct io_uring *ring)
{
	struct io_uring_sqe *sqe;

	while ((sqe = io_uring_get_sqe(ring)))
		io_uring_prep_nop(sqe);
}

int main(void)
{
	struct io_uring ring;
	int saved, null_fd;

	CHECK_EQ_INT(io_uring_queue_init(ENTRIES, &ring, 0), 0);
	fill(&ring);
	CHECK(uring_sqe(&ring) != NULL); /* submitted the full SQ, then got one */

	/* io_uring_enter on a non-ring fd fails: the SQ cannot drain. */
	fill(&ring);
	saved = dup(ring.ring_fd);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(saved >= 0 && null_fd >= 0);
	CHECK(dup2(null_fd, ring.ring_fd) == ring.ring_fd);
	CHECK(uring_sqe(&ring) == NULL);
	CHECK(dup2(saved, ring.ring_fd) == ring.ring_fd);
	close(saved);
	close(null_fd);

	CHECK(uring_sqe(&ring) != NULL); /* the queued NOPs went in this time */
	io_uring_queue_exit(&ring);
	return check_done();
}
