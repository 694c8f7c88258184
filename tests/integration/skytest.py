"""
Shared helpers for the Python integration tests: start the real skydns on
a free loopback port with a zone imported, send raw packets over UDP/TCP,
and count checks so the run ends with an "N passed, N failed" line.

Every process a test starts inherits ASAN_OPTIONS/UBSAN_OPTIONS with a
log_path in one per-test directory (SAN_DIR), so a sanitizer report from
skydns, an import run or a child skydns spawns (watchers, probe) lands
there; Checks.finish() fails the test on any report and prints it. Stopping
a daemon asserts a clean exit (SIGTERM -> 0, within STOP_TIMEOUT).

Ports come from below the kernel's ephemeral range (ip_local_port_range),
so no client socket (dig, dnsperf, skydns's own upstream sockets) can take
one between the pick and the daemon's bind, and each pick is recorded in a
lock file naming the owning test's pid, so tests running side by side
(ctest -j2, several worktrees) never pick the same port.

Run as a program, `skytest.py free-port PID` prints a port owned by PID
(lib.sh uses it with its shell's $$).

Uses only Debian's python3 and python3-dnspython.
"""
import atexit
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import dns.message
import dns.rcode
import dns.rdatatype

BUILD = os.environ.get("SKYDNS_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
SKYDNS = os.path.join(BUILD, "server", "skydns")


# A report must not be lost with the test's temp dir: one dir per test process,
# shared with children that import this module too (SKYDNS_SAN_DIR).
SAN_DIR = os.environ.get("SKYDNS_SAN_DIR")
_SAN_OWNER = SAN_DIR is None
if _SAN_OWNER:
    SAN_DIR = tempfile.mkdtemp(prefix="skydns-san-")
    os.environ["SKYDNS_SAN_DIR"] = SAN_DIR


def _add_log_path(var, name):
    """Append log_path (the last setting wins) unless the caller collects reports itself."""
    opts = os.environ.get(var, "")
    if var == "TSAN_OPTIONS" and "log_path=" in opts:
        return  # ./dev.sh tsan collects TSan reports in its own dir
    os.environ[var] = (opts + ":" if opts else "") + "log_path=" + os.path.join(SAN_DIR, name)


for _var, _name in (("ASAN_OPTIONS", "asan"), ("UBSAN_OPTIONS", "ubsan"),
                    ("TSAN_OPTIONS", "tsan")):
    _add_log_path(_var, _name)
os.environ["UBSAN_OPTIONS"] += ":print_stacktrace=1"

# Failures the harness itself finds (unclean exit, sanitizer report); finish() counts them.
HARNESS_FAILS = []
STOP_TIMEOUT = 15  # s; the longest shutdown-grace a test sets is 5 s


def harness_fail(what):
    HARNESS_FAILS.append(what)
    print("FAIL: %s" % what, flush=True)


def sanitizer_reports():
    """Paths of the sanitizer reports written so far by any process of this test."""
    try:
        return sorted(os.path.join(SAN_DIR, f) for f in os.listdir(SAN_DIR))
    except OSError:
        return []


def _print_reports(paths):
    for path in paths:
        print("--- sanitizer report %s ---" % os.path.basename(path), flush=True)
        with open(path, errors="replace") as f:
            sys.stdout.write(f.read()[-20000:])
        print("--- end of %s ---" % os.path.basename(path), flush=True)


_REPORTED = set()


def _san_atexit():
    # A test that dies before finish() still shows (and fails on) its reports.
    left = [p for p in sanitizer_reports() if p not in _REPORTED]
    if _SAN_OWNER and left:
        _print_reports(left)
        print("FAIL: %d sanitizer report(s)" % len(left), flush=True)
    if _SAN_OWNER:
        shutil.rmtree(SAN_DIR, ignore_errors=True)
    if _SAN_OWNER and left:
        sys.stdout.flush()
        os._exit(1)


atexit.register(_san_atexit)

# Test ports: PORT_MIN up to the ephemeral range (and below 32768 in any case).
PORT_MIN = 10000
PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "skydns-test-ports")


def port_range():
    """[lo, hi) of the ports tests may use: under ip_local_port_range's first port."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph = 32768
    hi = min(eph, 32768)
    lo = PORT_MIN if hi - PORT_MIN >= 1000 else 1024
    if hi - lo < 100:
        raise RuntimeError("no room for test ports below the ephemeral range (starts at %d)" % eph)
    return lo, hi


def _proc_start(pid):
    """pid's start time (field 22 of /proc/PID/stat), or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _bindable(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _lock_held(path):
    """Whether the lock file names a process that still runs (pid and start time)."""
    try:
        with open(path) as f:
            pid, start = f.read().split()
        return _proc_start(int(pid)) == start
    except (OSError, ValueError):
        return False


def free_port(owner=None):
    """A port free for both UDP and TCP on 127.0.0.1, below the ephemeral range,
    recorded as taken by `owner` (a pid; default this process) until it exits.
    The whole pick runs under one flock, so concurrent tests never get the same port."""
    owner = owner or os.getpid()
    start = _proc_start(owner)
    lo, hi = port_range()
    os.makedirs(PORT_LOCK_DIR, exist_ok=True)
    try:
        os.chmod(PORT_LOCK_DIR, 0o1777)
    except OSError:
        pass
    # The test's name spreads tests over the range; the pid moves reruns along.
    name = os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "python")
    first = zlib.crc32(("%s:%d" % (name, owner)).encode()) % (hi - lo)
    # Read-only is enough for flock, and works on a mutex another user created.
    mutex = os.open(os.path.join(PORT_LOCK_DIR, ".mutex"), os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(mutex, fcntl.LOCK_EX)  # held for a few binds: short
        for i in range(hi - lo):
            port = lo + (first + i) % (hi - lo)
            path = os.path.join(PORT_LOCK_DIR, str(port))
            if _lock_held(path) or not _bindable(port):
                continue
            tmp = "%s.%d.tmp" % (path, os.getpid())
            try:
                with open(tmp, "w") as f:
                    f.write("%d %s\n" % (owner, start))
                os.replace(tmp, path)
            except OSError:  # another user's stale lock in the sticky dir: use another port
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                continue
            return port
    finally:
        os.close(mutex)
    raise RuntimeError("no free port in %d..%d" % (lo, hi - 1))


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

    def skip(self, reason):
        """End the test as skipped (CTest SKIP_RETURN_CODE 77), saying why; a failed
        check or a harness failure still fails it."""
        print("SKIP: %s" % reason, flush=True)
        self.finish(skipped=True)

    def finish(self, skipped=False):
        reports = [p for p in sanitizer_reports() if p not in _REPORTED]
        if reports:
            _print_reports(reports)
            harness_fail("%d sanitizer report(s): %s" % (
                len(reports), ", ".join(os.path.basename(p) for p in reports)))
            _REPORTED.update(reports)
        self.failed += len(HARNESS_FAILS)
        del HARNESS_FAILS[:]
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        if self.failed:
            sys.exit(1)
        if not self.passed and not skipped:
            print("FAIL: no check ran", flush=True)
            sys.exit(1)
        sys.exit(77 if skipped else 0)


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
        """SIGTERM and wait; anything but exit status 0 within STOP_TIMEOUT is a
        harness failure (LSan's leak report at exit changes the status, too)."""
        if self.proc is None:
            return
        rc = self.proc.poll()
        if rc is not None:
            harness_fail("skydns (pid %d) had exited by itself with status %d before stop()"
                         % (self.proc.pid, rc))
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=STOP_TIMEOUT)
                if rc != 0:
                    harness_fail("skydns (pid %d) exited with status %d after SIGTERM, want 0"
                                 % (self.proc.pid, rc))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                harness_fail("skydns (pid %d) still ran %d s after SIGTERM"
                             % (self.proc.pid, STOP_TIMEOUT))
                rc = -1
        if rc != 0:
            try:
                with open(self.log, errors="replace") as f:
                    tail = f.read()[-3000:]
                print("--- skydns log (tail) ---\n%s--- end of log ---" % tail, flush=True)
            except OSError:
                pass
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


def wait_api(port, within=10.0):
    """True once the admin API on port answers /health 200, False after `within` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if http_request(port, "GET", "/health", timeout=1.0)[0] == 200:
            return True
        time.sleep(0.05)
    return False

def start_nsd(dirpath, zone, zone_text, extra_server="", probe=None, extra_zone="", port=None):
    """NSD in the foreground on a free loopback port, serving `zone` (no trailing dot)
    from zone_text, files in dirpath (created). Waits until it answers `probe` (a name,
    default www.<zone>) A; extra_zone: lines for its zone: clause (a secondary's
    request-xfr); port: one already taken from free_port(), else a new one.
    Returns (process, port); the caller terminates the process."""
    os.makedirs(dirpath, exist_ok=True)
    port = port or free_port()
    with open(os.path.join(dirpath, "zone"), "w") as f:
        f.write(zone_text)
    conf = os.path.join(dirpath, "nsd.conf")
    d = dirpath
    with open(conf, "w") as f:
        f.write("server:\n  ip-address: 127.0.0.1@%d\n  server-count: 1\n  do-ip6: no\n"
                "  username: \"\"\n  chroot: \"\"\n  zonesdir: \"%s\"\n  database: \"\"\n"
                "  zonelistfile: \"%s/zone.list\"\n  xfrdfile: \"%s/xfrd.state\"\n"
                "  xfrdir: \"%s\"\n  pidfile: \"%s/nsd.pid\"\n  verbosity: 0\n"
                "  rrl-ratelimit: 0\n%s"
                "remote-control:\n  control-enable: no\n"
                "zone:\n  name: %s\n  zonefile: %s/zone\n%s"
                % (port, d, d, d, d, d, extra_server, zone, d, extra_zone))
    out = open(os.path.join(dirpath, "nsd.out"), "w")
    proc = subprocess.Popen(["nsd", "-d", "-c", conf], stdout=out, stderr=subprocess.STDOUT)
    out.close()
    q = dns.message.make_query(probe or "www.%s." % zone, "A").to_wire()
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            udp_query(port, q, timeout=0.3)
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("nsd did not start on port %d (see %s/nsd.out)" % (port, dirpath))


def start_knot(dirpath, zone, primary_port, key=None, port=None, probe=None):
    """Knot DNS (knotd) in the foreground on a free loopback port as a secondary of
    `zone` (no trailing dot) from 127.0.0.1@primary_port, files in dirpath (created);
    key: (name, algorithm, base64 secret) to sign its transfers with, else none. NOTIFY
    from 127.0.0.1 is accepted signed with that key, else unsigned. Waits until it answers at all (the zone may not
    be there yet: SERVFAIL counts). Returns the process; the caller terminates it."""
    os.makedirs(dirpath, exist_ok=True)
    port = port or free_port()
    d = dirpath
    keys = remote_key = ""
    if key:
        keys = "key:\n  - id: %s\n    algorithm: %s\n    secret: %s\n" % key
        remote_key = "    key: %s\n" % key[0]
    conf = os.path.join(d, "knot.conf")
    with open(conf, "w") as f:
        f.write("server:\n  listen: 127.0.0.1@%d\n  rundir: \"%s\"\n"
                "  pidfile: \"%s/knot.pid\"\n"
                "log:\n  - target: stderr\n    any: info\n"
                "database:\n  storage: \"%s\"\n%s"
                "remote:\n  - id: primary\n    address: 127.0.0.1@%d\n%s"
                "acl:\n  - id: notify_from_primary\n    address: 127.0.0.1\n"
                "    action: notify\n%s"
                "template:\n  - id: default\n    storage: \"%s\"\n"
                "    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n"
                "zone:\n  - domain: %s\n    master: primary\n"
                "    acl: notify_from_primary\n"
                % (port, d, d, d, keys, primary_port, remote_key, remote_key, d, zone))
    out = open(os.path.join(d, "knot.out"), "w")
    proc = subprocess.Popen(["knotd", "-c", conf], stdout=out, stderr=subprocess.STDOUT)
    out.close()
    q = dns.message.make_query(probe or "%s." % zone, "SOA").to_wire()
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if proc.poll() is not None:
            break
        try:
            udp_query(port, q, timeout=0.3)
            return proc
        except OSError:
            time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    raise RuntimeError("knotd did not start on port %d (see %s/knot.out)" % (port, d))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "free-port":
        print(free_port(int(sys.argv[2])))
        sys.exit(0)
    print("usage: skytest.py free-port PID", file=sys.stderr)
    sys.exit(2)
