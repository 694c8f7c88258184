#!/usr/bin/env python3
"""
Issue 15: skydns speaks systemd's readiness protocol (Type=notify) itself.

A test socket stands in for systemd: an AF_UNIX datagram socket named by
$NOTIFY_SOCKET, once as a path and once as an abstract name ("@..."). skydns
must send READY=1 and, the moment it has, answer over UDP and TCP (sockets
bound, store open); on SIGTERM it must send STOPPING=1 and exit 0.
"""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

from skytest import SKYDNS, Checks, Skydns, tcp_connect, tcp_read_msg, udp_query  # noqa: E402

# Generous: an ASan build on a machine shared with other builds can take
# seconds to map the store and start its workers.
READY_WAIT_S = 30.0


def recv_state(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(4096).decode()
    except socket.timeout:
        return ""


def soa_ok(port, tcp):
    q = dns.message.make_query("skydns.local.", "SOA").to_wire()
    try:
        if tcp:
            s = tcp_connect(port, timeout=2.0)
            try:
                s.sendall(len(q).to_bytes(2, "big") + q)
                r = dns.message.from_wire(tcp_read_msg(s))
            finally:
                s.close()
        else:
            r = dns.message.from_wire(udp_query(port, q, timeout=2.0))
    except Exception as e:  # a refused connection or a timeout fails the check
        print("query failed: %r" % e)
        return False
    return r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1


def run(c, sky, name, bind_addr):
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(bind_addr)
    env = dict(os.environ, NOTIFY_SOCKET=name)
    out = open(sky.log, "a")
    p = subprocess.Popen([SKYDNS, "-config-file", sky.conf], stdout=out,
                         stderr=subprocess.STDOUT, env=env)
    try:
        state = recv_state(ns, READY_WAIT_S)
        c.ok("READY=1" in state.split("\n"),
             "%s: READY=1 within %.0f s, got %r" % (name, READY_WAIT_S, state))
        c.ok("STATUS=serving on 127.0.0.1:%d" % sky.port in state.split("\n"),
             "%s: STATUS names the address, got %r" % (name, state))
        c.ok(soa_ok(sky.port, tcp=False), "%s: answers over UDP once ready" % name)
        c.ok(soa_ok(sky.port, tcp=True), "%s: answers over TCP once ready" % name)
        p.send_signal(signal.SIGTERM)
        state = recv_state(ns, 15.0)
        c.ok("STOPPING=1" in state.split("\n"), "%s: STOPPING=1 on SIGTERM, got %r"
             % (name, state))
        c.eq(p.wait(timeout=20), 0, "%s: exit status after SIGTERM" % name)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        ns.close()
        out.close()


def main():
    c = Checks()
    with Skydns(extra_conf="shutdown-grace = 0.2") as sky:
        path = os.path.join(sky.dir, "notify.sock")
        run(c, sky, path, path)
        abstract = "skydns-test-notify-%d" % os.getpid()
        run(c, sky, "@" + abstract, "\0" + abstract)
        # Not a path nor an abstract name: a warning, and skydns serves all the same.
        out = open(sky.log, "a")
        p = subprocess.Popen([SKYDNS, "-config-file", sky.conf], stdout=out,
                             stderr=subprocess.STDOUT,
                             env=dict(os.environ, NOTIFY_SOCKET="relative/notify.sock"))
        try:
            end = time.monotonic() + READY_WAIT_S
            while time.monotonic() < end and p.poll() is None and not soa_ok(sky.port, False):
                time.sleep(0.1)
            c.ok(soa_ok(sky.port, tcp=False), "bad NOTIFY_SOCKET: still serves")
            c.ok("notify $NOTIFY_SOCKET" in open(sky.log).read(),
                 "bad NOTIFY_SOCKET: a warning says so")
            p.send_signal(signal.SIGTERM)
            c.eq(p.wait(timeout=20), 0, "bad NOTIFY_SOCKET: exit status after SIGTERM")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            out.close()
        if c.failed:
            print(open(sky.log).read())
    c.finish()


main()
