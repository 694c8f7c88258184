"""
Issue 10 item 1 regression: one forwarded answer must not stall a worker.

Re-encoding an upstream answer for the client compared every suffix of every
name with up to 64 saved names, each decompressed: quadratic in names x
labels. A ~1,230-byte answer of long many-label CNAME chains (b.b.b...,
a.a.a..., c.c.c... under evil.test, each name one label longer than the one
before, so the upstream's own compression keeps the message small) cost
~0.3-0.7 s of worker CPU, every time (too big to cache), and local names on
that worker waited behind it.

A fake upstream (its own process, loopback) sends that answer for every
q<N>.evil.test and a 4 KB one over TCP (after TC over UDP) for big<N>.evil.test.
Checks, with workers = 1:
  - the client gets the whole chain (re-encoding is still right);
  - while 100 worst-case queries per second arrive for 3 s, local names are
    answered within 10 ms (95 % of probes: a shared 2-core test machine may
    deschedule us now and then, which is not the server's doing);
  - the worker thread's CPU time (/proc/<pid>/task, the busiest thread: there
    is one worker) per worst-case answer is <= 1 ms for the 1,230-byte one and
    <= 5 ms for the 4 KB one over TCP (see CPU_MAX_BIG_S); CPU, not wall time,
    so a loaded machine does not fail it.
"""
import multiprocessing
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeup import busiest_delta, proc_cpu_s, serve_forked, thread_cpu_s  # noqa: E402
from skytest import Checks, Skydns, free_port, tcp_query, udp_query  # noqa: E402

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402

C = Checks()
QLABEL = b"q00000000"  # replaced per query: one template, unique names (no cache hits)
RATE = 100  # worst-case queries per second
LOAD_S = 3.0
CPU_MAX_S = 0.001
# The 4 KB answer over TCP (client TCP, upstream UDP with TC, then upstream TCP)
# measures ~2.5 ms of worker CPU in the ASan build, of which re-encoding is ~1.7 ms
# (tests/unit/test_cache.c); it was ~950 ms. Bound: 4x below that noise, 200x
# below the bug.
CPU_MAX_BIG_S = 0.005


def chain_names(budget_rrs):
    """b^1..b^60, a^1..a^122, c^1..c^122, d^1..: each one label longer than the last."""
    names = []
    for letter, n in (("b", 60), ("a", 122), ("c", 122), ("d", 122), ("e", 122)):
        for k in range(1, n + 1):
            names.append("%s.evil.test." % ".".join([letter] * k))
            if len(names) >= budget_rrs:
                return names
    return names


def build(qname, target_size):
    """The largest chain answer for qname whose wire form is <= target_size bytes."""
    def render(n):
        q = dns.message.make_query(qname, "A")
        r = dns.message.make_response(q)
        prev = qname
        for nm in chain_names(n):
            r.answer.append(dns.rrset.from_text(prev, 300, "IN", "CNAME", nm))
            prev = nm
        return r.to_wire(max_size=65535), r

    lo, hi = 1, 700
    while lo < hi:  # largest n that fits
        mid = (lo + hi + 1) // 2
        if len(render(mid)[0]) <= target_size:
            lo = mid
        else:
            hi = mid - 1
    return render(lo)


SMALL, SMALL_MSG = build("q00000000.evil.test.", 1230)
BIG, BIG_MSG = build("big00000000.evil.test.", 4096)


def handler(q, tcp):
    name = q.question[0].name.to_text().encode()
    label = name.split(b".")[0]
    if name.startswith(b"big"):
        if not tcp:
            r = dns.message.make_response(q)
            r.flags |= dns.flags.TC
            return r.to_wire()
        tmpl, old = BIG, b"big" + QLABEL[1:]
    else:
        tmpl, old = SMALL, QLABEL
    if len(label) != len(old):
        return None
    wire = bytearray(tmpl.replace(old, label, 1))
    wire[0:2] = q.id.to_bytes(2, "big")
    return bytes(wire)


def upstream_ready(port):
    q = dns.message.make_query("q00000001.evil.test.", "A")
    for _ in range(50):
        try:
            udp_query(port, q.to_wire(), timeout=0.1)
            return True
        except OSError:
            time.sleep(0.05)
    return False


def load(port, n, rate, out):
    """Child process: n worst-case UDP queries at `rate`/s; put the answers counted."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    got, start = 0, time.monotonic()
    for i in range(n):
        q = dns.message.make_query("q%08d.evil.test." % (10000 + i), "A",
                                   use_edns=0, payload=4096)
        s.sendto(q.to_wire(), ("127.0.0.1", port))
        while True:
            delay = start + (i + 1) / rate - time.monotonic()
            if delay <= 0:
                break
            try:
                s.settimeout(delay)
                s.recv(65535)
                got += 1
            except (socket.timeout, BlockingIOError):
                break
    end = time.monotonic() + 5.0  # stragglers; bounded
    while got < n and time.monotonic() < end:
        try:
            s.settimeout(max(0.01, end - time.monotonic()))
            s.recv(65535)
            got += 1
        except socket.timeout:
            break
    out.put(got)


def probe_local(port, stop, lat):
    q = dns.message.make_query("www.skydns.local.", "A").to_wire()
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            udp_query(port, q, timeout=1.0)
            lat.append(time.perf_counter() - t0)
        except socket.timeout:
            lat.append(1.0)
        time.sleep(0.02)


def check_chain(sky):
    q = dns.message.make_query("q00000002.evil.test.", "A", use_edns=0, payload=4096)
    try:  # dnspython follows at most 16 pointers per name, like careful clients
        r = dns.message.from_wire(tcp_query(sky.port, q.to_wire()))
    except Exception as e:
        C.ok(False, "worst-case answer does not parse: %r" % e)
        return
    C.eq(r.rcode(), 0, "worst-case answer rcode")
    C.eq(sum(len(x) for x in r.answer), sum(len(x) for x in SMALL_MSG.answer),
         "worst-case answer: every CNAME of the chain relayed")
    last = SMALL_MSG.answer[-1][0].target
    C.ok(any(x[0].target == last for x in r.answer), "chain ends at %s" % last)


def baseline(sky):
    """Local latency with no load, printed: how noisy this machine is right now."""
    stop, lat = threading.Event(), []
    t = threading.Thread(target=probe_local, args=(sky.port, stop, lat))
    t.start()
    time.sleep(1.0)
    stop.set()
    t.join()
    lat.sort()
    print("idle: local p50 %.2f ms p95 %.2f ms (%d probes)"
          % (1000 * lat[len(lat) // 2], 1000 * lat[int(len(lat) * 0.95)], len(lat)), flush=True)


def check_load(sky):
    n = int(RATE * LOAD_S)
    out = multiprocessing.get_context("fork").Queue()
    stop, lat = threading.Event(), []
    prober = threading.Thread(target=probe_local, args=(sky.port, stop, lat))
    cpu0, th0 = proc_cpu_s(sky.proc.pid), thread_cpu_s(sky.proc.pid)
    gen = multiprocessing.get_context("fork").Process(target=load,
                                                      args=(sky.port, n, RATE, out))
    gen.start()
    prober.start()
    gen.join(timeout=LOAD_S + 20)
    stop.set()
    prober.join()
    got = out.get(timeout=5) if not gen.is_alive() else 0
    if gen.is_alive():
        gen.terminate()
    total = proc_cpu_s(sky.proc.pid) - cpu0
    cpu = busiest_delta(th0, thread_cpu_s(sky.proc.pid))  # the worker (workers = 1)
    lat.sort()
    p95 = lat[int(len(lat) * 0.95)] if lat else 1.0
    print("load: %d/%d answered, worker cpu %.3f s = %.3f ms/answer (process %.3f s); "
          "local p50 %.2f ms p95 %.2f ms max %.2f ms (%d probes)"
          % (got, n, cpu, 1000 * cpu / max(got, 1), total, 1000 * lat[len(lat) // 2],
             1000 * p95, 1000 * lat[-1], len(lat)), flush=True)
    C.ok(got >= n * 0.95, "worst-case answers: %d of %d" % (got, n))
    C.ok(cpu / max(got, 1) <= CPU_MAX_S, "worker CPU per 1,230-byte answer %.3f ms > 1 ms"
         % (1000 * cpu / max(got, 1)))
    C.ok(p95 <= 0.010, "local names within 10 ms under load: p95 %.2f ms" % (1000 * p95))


def check_big_tcp(sky):
    n, ok = 40, 0
    th0 = thread_cpu_s(sky.proc.pid)
    want = sum(len(x) for x in BIG_MSG.answer)
    for i in range(n):
        q = dns.message.make_query("big%08d.evil.test." % (20000 + i), "A", use_edns=0,
                                   payload=4096)
        try:
            r = dns.message.from_wire(tcp_query(sky.port, q.to_wire(), timeout=3.0))
            ok += sum(len(x) for x in r.answer) == want
        except Exception as e:  # timeouts, or a reply that does not parse
            print("big %d: %r" % (i, e), flush=True)
    cpu = busiest_delta(th0, thread_cpu_s(sky.proc.pid))
    print("4 KB over TCP: %d/%d whole, worker cpu %.3f s = %.3f ms/answer (%d bytes upstream)"
          % (ok, n, cpu, 1000 * cpu / max(ok, 1), len(BIG)), flush=True)
    C.eq(ok, n, "4 KB chains relayed whole over TCP")
    C.ok(cpu / max(ok, 1) <= CPU_MAX_BIG_S, "worker CPU per 4 KB answer %.3f ms > 5 ms"
         % (1000 * cpu / max(ok, 1)))


def main():
    print("upstream answers: %d bytes (%d RRs), %d bytes (%d RRs)"
          % (len(SMALL), len(SMALL_MSG.answer), len(BIG), len(BIG_MSG.answer)), flush=True)
    port = free_port()
    up = serve_forked(handler, port)
    try:
        C.ok(upstream_ready(port), "fake upstream answers")
        with Skydns("$ORIGIN skydns.local.\nwww 300 IN A 10.0.0.1\n",
                    extra_conf="nameservers = 127.0.0.1:%d\nforward-timeout = 5\n" % port,
                    workers=1) as sky:
            sky.start()
            check_chain(sky)
            baseline(sky)
            check_load(sky)
            check_big_tcp(sky)
            C.ok(sky.alive(), "server alive")
    finally:
        up.terminate()
        up.join(timeout=5)
    C.finish()


if __name__ == "__main__":
    main()
