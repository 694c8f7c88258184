/*
 * notify: the service manager's readiness protocol (sd_notify(3)) without
 * libsystemd. systemd (Type=notify) passes $NOTIFY_SOCKET, an AF_UNIX
 * datagram socket (abstract when it starts with '@'); one datagram of
 * "KEY=value" lines tells it the daemon is READY=1, RELOADING=1 or
 * STOPPING=1. Only main() calls this, from its own thread.
 */
#pragma once

/**
 * Send `state` (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET.
 * @param state borrowed.
 * @return 1 sent, 0 no $NOTIFY_SOCKET (not run by a service manager),
 *         -EINVAL bad $NOTIFY_SOCKET, -errno from socket/sendto.
 */
int notify_send(const char *state);
