"""
A scripted upstream nameserver for the issue 10 forwarding tests: UDP and
TCP on one loopback port, answers built by a handler from the parsed query,
every query remembered (name, flags) so tests can assert on what skydns
sent. Uses only the stdlib and dnspython.

    up = FakeUpstream(handler)   # handler(query_msg, tcp) -> bytes, None (silence)
                                 # or (delay_s, bytes) (UDP only)
    ... nameservers = 127.0.0.1:<up.port> ...
    up.stop()
"""
import os
import select
import socket
import struct
import sys
import threading

import multiprocessing

import dns.message

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import free_port, recv_exact  # noqa: E402


class FakeUpstream:
    def __init__(self, handler, port=None):
        self.handler = handler
        self.port = port or free_port()
        self.queries = []  # (qname text, qtype int, flags int, tcp bool)
        self.lock = threading.Lock()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(64)
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _answer(self, data, tcp):
        try:
            q = dns.message.from_wire(data)
        except Exception:
            return None
        with self.lock:
            self.queries.append((q.question[0].name.to_text().lower(),
                                 q.question[0].rdtype, q.flags, tcp))
        return self.handler(q, tcp)

    def _serve_tcp(self, conn):
        conn.settimeout(3.0)
        try:
            for _ in range(100):  # bounded: a test connection carries few queries
                (n,) = struct.unpack("!H", recv_exact(conn, 2))
                out = self._answer(recv_exact(conn, n), True)
                if out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)
        except (OSError, ConnectionError, struct.error):
            pass
        finally:
            conn.close()

    def _run(self):
        while not self.stop_ev.is_set():
            ready, _, _ = select.select([self.udp, self.tcp], [], [], 0.1)
            for s in ready:
                if s is self.udp:
                    data, addr = self.udp.recvfrom(65535)
                    out = self._answer(data, False)
                    if isinstance(out, tuple):  # (delay seconds, bytes): answer later
                        threading.Timer(out[0], self.udp.sendto, (out[1], addr)).start()
                    elif out is not None:
                        self.udp.sendto(out, addr)
                else:
                    conn, _ = self.tcp.accept()
                    threading.Thread(target=self._serve_tcp, args=(conn,),
                                     daemon=True).start()

    def seen(self, name):
        with self.lock:
            return [x for x in self.queries if x[0] == name.lower()]

    def stop(self):
        self.stop_ev.set()
        self.t.join(timeout=2)
        self.udp.close()
        self.tcp.close()


def proc_cpu_s(pid):
    """utime + stime of every thread of pid, seconds (Linux /proc)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def serve_forked(handler, port):
    """Run FakeUpstream(handler, port) in a child process, so its Python work does
    not share the test's GIL (latency probes). @return the process; terminate() it."""
    def child():
        up = FakeUpstream(handler, port)
        up.t.join()

    p = multiprocessing.get_context("fork").Process(target=child, daemon=True)
    p.start()
    return p


def thread_cpu_s(pid):
    """{tid: utime + stime seconds} of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def busiest_delta(before, after):
    """CPU seconds of the thread that used the most between two thread_cpu_s()."""
    return max((v - before.get(t, 0.0) for t, v in after.items()), default=0.0)
