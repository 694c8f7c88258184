#!/usr/bin/python3
"""
Flood acceptance (issue 7): dnsperf sends valid queries for 20 s while a
second process floods malformed UDP packets from another loopback address
(random bytes, lying counts, compression loops, truncated and oversized
names, trailing garbage, responses, bad opcodes). Valid queries must still
be answered (>= 99 %) and the daemon's VmRSS must stay flat (< 5 MiB growth
after warm-up). Every loop is bounded in time and count.
"""
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from skytest import Checks, Skydns  # noqa: E402

SECONDS = int(os.environ.get("FLOOD_SECONDS", "20"))
QPS = int(os.environ.get("FLOOD_QPS", "10000"))       # dnsperf's valid queries
BAD_PPS = int(os.environ.get("FLOOD_BAD_PPS", "4000"))  # malformed packets per second
BAD_MAX = BAD_PPS * SECONDS                             # hard cap on the flood's size
NAMES = ["a", "b", "multi", "alias", "_http._tcp.a"]
ZONE = ("a.skydns.local. 60 IN A 10.0.0.1\n"
        "b.skydns.local. 60 IN AAAA fd00::1\n"
        "alias.skydns.local. 60 IN CNAME a.skydns.local.\n"
        "_http._tcp.a.skydns.local. 60 IN SRV 0 10 80 a.skydns.local.\n"
        + "".join("multi.skydns.local. 60 IN A 10.0.1.%d\n" % i for i in range(1, 41)))


def qname(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0"


def bad_packet(rng):
    """One malformed packet, of a kind chosen at random."""
    hdr = lambda qd, an, ns, ar, flags=0x0100: struct.pack(  # noqa: E731
        "!HHHHHH", rng.getrandbits(16), flags, qd, an, ns, ar)
    q = qname("a.skydns.local") + b"\0\1\0\1"
    kind = rng.randrange(10)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 600))
    if kind == 1:  # counts that lie
        return hdr(rng.choice([0, 2, 65535]), 65535, 65535, 65535) + q
    if kind == 2:  # compression loop: a pointer to itself
        return hdr(1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1"
    if kind == 3:  # truncated question
        return (hdr(1, 0, 0, 0) + q)[:rng.randrange(1, 12 + len(q))]
    if kind == 4:  # label length past the end, and a name over 255 octets
        return hdr(1, 0, 0, 0) + (b"\x3f" + b"a" * 63) * 5 + b"\0\0\1\0\1"
    if kind == 5:  # trailing garbage
        return hdr(1, 0, 0, 0) + q + rng.randbytes(rng.randrange(1, 300))
    if kind == 6:  # a response, not a query (must be dropped, never answered: no loops)
        return hdr(1, 1, 0, 0, flags=0x8180) + q + b"\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4\1\2\3\4"
    if kind == 7:  # unknown opcode, reserved Z bit
        return hdr(1, 0, 0, 0, flags=0x7940) + q
    if kind == 8:  # OPT with lying RDLENGTH and a forward pointer
        return hdr(1, 0, 0, 1) + q + b"\0\0\x29\x10\0\0\0\0\0\xff\xff\0\x0a"
    return hdr(1, 0, 0, 0) + b"\xc0\xff" + b"\0\1\0\1"  # pointer past the end


def flooder(port, seconds, pps, limit):
    """Child process body: send malformed packets at ~pps from 127.0.0.2."""
    rng = random.Random(7)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.2", 0))
    s.setblocking(False)
    t0 = time.monotonic()
    sent = 0
    while sent < limit and time.monotonic() - t0 < seconds:
        for _ in range(50):
            try:
                s.sendto(bad_packet(rng), ("127.0.0.1", port))
            except (BlockingIOError, OSError):
                pass
            sent += 1
        # pace to pps: sleep until this batch's due time
        due = t0 + sent / pps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            while s.recv(65535):
                pass  # replies (FORMERR etc.) are read and thrown away
        except (BlockingIOError, OSError):
            pass
    print("flooder: %d malformed packets in %.1f s" % (sent, time.monotonic() - t0), flush=True)


def run_dnsperf(port, datafile, seconds):
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", datafile, "-l", str(seconds),
           "-Q", str(QPS), "-c", "4", "-q", "500", "-t", "2"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main():
    c = Checks()
    with Skydns(ZONE, workers=2) as d, tempfile.NamedTemporaryFile("w", suffix=".txt") as data:
        for n in NAMES:
            for t in ("A", "AAAA", "SRV"):
                data.write("%s.skydns.local %s\n" % (n, t))
        data.flush()
        d.start()
        perf = run_dnsperf(d.port, data.name, SECONDS)
        flood = subprocess.Popen([sys.executable, __file__, "--flooder", str(d.port),
                                  str(SECONDS), str(BAD_PPS), str(BAD_MAX)])
        # RSS: baseline after warm-up (buffers and caches touched), then sampled each second
        time.sleep(3)
        base = d.rss_kb()
        peak = base
        end = time.monotonic() + SECONDS + 30
        while perf.poll() is None and time.monotonic() < end:
            peak = max(peak, d.rss_kb())
            time.sleep(1)
        try:
            out, _ = perf.communicate(timeout=30)
            flood.wait(timeout=30)
        except subprocess.TimeoutExpired:
            perf.kill()
            flood.kill()
            out = ""
        peak = max(peak, d.rss_kb())
        sent = re.search(r"Queries sent:\s+(\d+)", out)
        done = re.search(r"Queries completed:\s+(\d+)", out)
        if not c.ok(sent and done, "dnsperf output parsed:\n" + out):
            c.finish()
        codes = dict((k, int(v)) for k, v in re.findall(r"\b([A-Z]+) (\d+) \(", out))
        sent, done = int(sent.group(1)), int(done.group(1))
        share = 100.0 * done / sent if sent else 0.0
        print("flood: %d valid queries sent, %d answered (%.3f %%); VmRSS %d kB after "
              "warm-up, peak %d kB (+%d kB)" % (sent, done, share, base, peak, peak - base),
              flush=True)
        c.ok(sent >= QPS * SECONDS * 0.5, "dnsperf sent enough queries: %d" % sent)
        c.ok(share >= 99.0, "valid queries answered under the flood: %.3f %%" % share)
        # Every name asked exists (A, or NODATA for the other types): NOERROR only, so
        # a FORMERR or SERVFAIL answer does not count as served.
        c.eq(codes, {"NOERROR": done}, "dnsperf response codes: NOERROR for every answer")
        c.ok(peak - base < 5 * 1024, "VmRSS flat: +%d kB" % (peak - base))
        c.eq(flood.returncode, 0, "flooder ran to the end")
        c.ok(d.alive(), "server alive after the flood")
    c.finish()


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--flooder":
        flooder(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
