"""
Shared helpers for the Python integration tests: start the real skydns on
a free loopback port with a zone imported, send raw packets over UDP/TCP,
and count checks so the run ends with an "N passed, N failed" line.

Uses only Debian's python3 and python3-dnspython.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import dns.message
import dns.rcode
import dns.rdatatype

BUILD = os.environ.get("SKYDNS_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
SKYDNS = os.path.join(BUILD, "server", "skydns")


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s" % what, flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, "%s: got %r, want %r" % (what, got, want))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed or not self.passed else 0)


class Skydns:
    """The real daemon, in a temp dir, on a free port; stop() or context exit kills it."""

    def __init__(self, zone_text=None, extra_conf="", workers=1, origin=None):
        self.dir = tempfile.mkdtemp(prefix="skydns-it-")
        self.port = free_port()
        self.conf = os.path.join(self.dir, "skydns.conf")
        self.log = os.path.join(self.dir, "skydns.out")
        # "@SELFPORT@" in extra_conf becomes this server's own DNS port (loop tests).
        extra_conf = extra_conf.replace("@SELFPORT@", str(self.port))
        dns_extra, other = self._split_extra(extra_conf)
        with open(self.conf, "w") as f:
            f.write("[Dns]\ndns-addr = 127.0.0.1:%d\nworkers = %d\n%s\n"
                    "[Store]\ndata-dir = %s/store\nmap-size = 256M\n"
                    "[Log]\nlog-to-stdio = true\nlog-level = info\n%s\n"
                    % (self.port, workers, dns_extra, self.dir, other))
        if zone_text is not None:
            self.import_zone(zone_text, origin)
        self.proc = None

    @staticmethod
    def _split_extra(extra):
        """Lines before the first section header go into [Dns]."""
        dns_lines, rest, seen = [], [], False
        for line in extra.splitlines():
            if line.strip().startswith("["):
                seen = True
            (rest if seen else dns_lines).append(line)
        return "\n".join(dns_lines), "\n".join(rest)

    def import_zone(self, text, origin=None):
        path = os.path.join(self.dir, "zone.txt")
        with open(path, "w") as f:
            f.write(text)
        cmd = [SKYDNS, "-config-file", self.conf, "-import", path]
        if origin:
            cmd += ["-origin", origin]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("import failed: %s%s" % (r.stdout, r.stderr))

    def start(self, deadline=10.0):
        self.out = open(self.log, "w")
        self.proc = subprocess.Popen([SKYDNS, "-config-file", self.conf],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        end = time.monotonic() + deadline
        q = dns.message.make_query("skydns.local.", "SOA")
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                udp_query(self.port, q.to_wire(), timeout=0.2)
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("skydns did not start:\n" + open(self.log).read())

    def alive(self):
        """The server still answers a plain query over UDP."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        q = dns.message.make_query("skydns.local.", "SOA")
        try:
            r = dns.message.from_wire(udp_query(self.port, q.to_wire(), timeout=1.0))
            return r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1
        except Exception:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def udp_query(port, wire, timeout=2.0, host="127.0.0.1", source=None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.sendto(wire, (host, port))
        data, _ = s.recvfrom(65535)
        return data
    finally:
        s.close()


def udp_maybe(port, wire, timeout=0.5):
    """Send; return the reply or None when the server (rightly) stays silent."""
    try:
        return udp_query(port, wire, timeout=timeout)
    except socket.timeout:
        return None


def tcp_connect(port, timeout=3.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def tcp_read_msg(s):
    (n,) = struct.unpack("!H", recv_exact(s, 2))
    return recv_exact(s, n)


def tcp_query(port, wire, timeout=3.0):
    s = tcp_connect(port, timeout)
    try:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        return tcp_read_msg(s)
    finally:
        s.close()


def http_request(port, method, path, body=None, headers=None, timeout=5.0):
    """One raw HTTP/1.1 request to 127.0.0.1:port, headers exactly as given.

    Host defaults to 127.0.0.1:port; pass {"Host": None} to send none. The
    API closes every connection after its reply, so the reply ends at EOF.
    Returns (status, body bytes); status 0 when the connection broke first.
    """
    hdrs = {"Host": "127.0.0.1:%d" % port}
    hdrs.update(headers or {})
    if body is not None:
        hdrs.setdefault("Content-Length", str(len(body)))
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs.items() if v is not None)
    head += "Connection: close\r\n\r\n"
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(head.encode() + (body or b""))
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        pass
    if not data.startswith(b"HTTP/1."):
        return 0, data
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
