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
 * ended), but the CA store: reading it is file I/O, which a worker must
 * not do, so the thread that starts or reloads the server loads it once
 * per conf (dot_cred_new) and hands it to every worker with the conf
 * (worker_t.dot_cred). GnuTLS credentials are read-only once loaded and
 * shared by every worker's sessions; server.c frees a generation's only
 * after every worker acknowledged the next conf (a worker closes its
 * sessions, dot_reset, before it acknowledges). Memory: per connection
 * buffers are allocated at the first DoT query, the one exception to
 * upstream.h's "nothing after upstream_init".
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
struct conf;

/** A CA store loaded for the DoT servers of one conf (shared, read-only). */
typedef struct dot_cred dot_cred_t;

/**
 * Load the CA store for conf's tls:// servers ([Dns] tls-cafile or the
 * system's). Blocking file I/O: call it from the thread that starts or
 * reloads the server, never from a worker. A store that yields no
 * certificate is logged (every handshake will then fail verification).
 * @return 0 with *out NULL when conf has no tls:// server, 0 with an owned
 *         *out (dot_cred_free), or -ENOMEM.
 */
int dot_cred_new(const struct conf *conf, dot_cred_t **out);

/** Free; NULL is a no-op. No session may use it any more. */
void dot_cred_free(dot_cred_t *c);

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
