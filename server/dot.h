/*
 * server/dot: DNS over TLS to upstreams (RFC 7858) inside one worker's ring.
 * A nameserver written "tls://ip[:port]@name" is reached over one TLS
 * connection per (worker, server), opened at the first query and reused:
 * queries are pipelined with the 2-byte length framing of RFC 7766 and
 * answers matched to the forwarder's try slot by message ID. The socket is
 * non-blocking and GnuTLS reads and writes it directly; the worker never
 * waits on it: io_uring poll ops say when it is readable or writable, and
 * the handshake advances one step per readiness. The certificate is checked
 * against the name after '@' (gnutls_session_set_verify_cert) and the
 * system store or [Dns] tls-cafile.
 *
 * Failures (connect, handshake, a bad certificate, the server closing with
 * queries pending, the handshake or read timeout) end every pending try
 * with forward_on_error, so the forwarder's health accounting counts them
 * like any upstream error; one log line per state change (failing / up
 * again). An idle connection is closed after DOT_IDLE_MS and reopened on
 * demand.
 *
 * Threads: everything belongs to the worker thread (w->up.dot is created
 * and freed there, except dot_free at upstream_deinit after the worker
 * ended). Memory: allocated at the first DoT query (credentials, per
 * connection buffers), the one exception to upstream.h's "nothing after
 * upstream_init"; loading the CA store reads local files once per worker.
 * Invariants: a poll op is pending on a connection's fd exactly while
 * `polling`; user_data carries the connection's generation, bumped at every
 * close, so a late completion never reaches the next socket.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "engine/forward.h"

struct worker;
struct io_uring_cqe;
struct dot;

#define DOT_IDLE_MS 10000 /* an idle connection is closed after this */
#define DOT_PEND 512	  /* queries in flight per connection; more fail over */

/**
 * Send s over TLS when its server is a DoT upstream of w->conf.
 * @return true when taken (sent, queued or failed through the forwarder), false for a plain server.
 */
bool dot_send(struct worker *w, const forward_send_t *s);

/** A completion of type UD_DOT. */
void dot_on_cqe(struct worker *w, const struct io_uring_cqe *cqe);

/** Handshake, read and idle timeouts (from the periodic ticks). */
void dot_sweep(struct worker *w);

/** Close every connection and forget pending tries (the forwarder or conf changed). */
void dot_reset(struct worker *w);

/** Free everything (upstream_deinit). Safe on NULL. */
void dot_free(struct dot *d);
