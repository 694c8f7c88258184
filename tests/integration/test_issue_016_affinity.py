#!/usr/bin/env python3
"""
Workers run on the CPUs skydns was given, not on CPUs 0..N-1 of the machine.

Worker i used to be pinned to CPU i of the whole machine, whatever affinity the
process was started with: under `taskset -c 1` (or systemd's CPUAffinity=, or a
cpuset) worker 0 ran on CPU 0, outside the set, and `workers = 0` started one
worker per online CPU instead of one per allowed CPU. (bench/run.sh was not fooled:
it moves every thread back onto its server CPU with `taskset -a` after the start;
a plain `taskset -c 1 skydns` was.)

Checks, with the process's affinity set to one CPU other than 0:
  - workers = 0 starts one worker (the log says so), pinned to that CPU;
  - workers = 2 pins both to that CPU;
  - every thread of the process stays inside the set;
and with the test's full affinity (at least 2 CPUs), workers = 2 are pinned to two
different CPUs of it. Each server answers a query.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.message  # noqa: E402

from skytest import Checks, Skydns, udp_query  # noqa: E402

ZONE = "$ORIGIN skydns.local.\n$TTL 60\nwww IN A 10.0.0.10\n"


def threads(pid):
    """{tid: (comm, allowed CPU set)} of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            comm = open("/proc/%d/task/%s/comm" % (pid, tid)).read().strip()
            out[int(tid)] = (comm, os.sched_getaffinity(int(tid)))
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return out


def workers_of(pid):
    return {c: cpus for c, cpus in threads(pid).values() if c.startswith("skydns-w")}


def answers_www(port):
    q = dns.message.make_query("www.skydns.local.", "A")
    r = dns.message.from_wire(udp_query(port, q.to_wire(), timeout=2.0))
    return [rr.address for rrs in r.answer for rr in rrs]


def started_with(log, n, deadline=5.0):
    """The start line names n workers (it is written once the workers are up)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        m = re.search(r"start: serving on \S+ with (\d+) workers", open(log).read())
        if m:
            return int(m.group(1)) == n, m.group(0)
        time.sleep(0.05)
    return False, "no start line"


def run(ck, allowed, workers, want_workers):
    """Start skydns with the test process's affinity set to `allowed` (inherited),
    return {worker name: CPU set} and the set of every thread's CPUs."""
    mine = os.sched_getaffinity(0)
    sky = Skydns(ZONE, workers=workers)
    os.sched_setaffinity(0, allowed)
    try:
        sky.start()
    finally:
        os.sched_setaffinity(0, mine)
    try:
        ok, line = started_with(sky.log, want_workers)
        ck.ok(ok, "workers = %d under CPUs %s: want %d workers, log: %s"
              % (workers, sorted(allowed), want_workers, line))
        ck.eq(answers_www(sky.port), ["10.0.0.10"], "www under CPUs %s" % sorted(allowed))
        ws = workers_of(sky.proc.pid)
        every = set().union(*[c for _, c in threads(sky.proc.pid).values()])
        return ws, every
    finally:
        sky.stop()


def main():
    ck = Checks()
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        ck.skip("needs 2 CPUs to run on, has %s" % mine)
    one = {mine[-1]}  # not CPU 0: the old code put worker 0 there whatever the set

    ws, every = run(ck, one, 0, 1)
    ck.eq(sorted(ws), ["skydns-w0"], "worker threads with workers = 0 under %s" % one)
    ck.eq(ws.get("skydns-w0"), one, "worker 0's CPUs under taskset %s" % one)
    ck.ok(every <= one, "every thread inside %s: %s" % (one, sorted(every)))

    ws, every = run(ck, one, 2, 2)
    ck.eq(sorted(ws), ["skydns-w0", "skydns-w1"], "worker threads with workers = 2")
    for name in sorted(ws):
        ck.eq(ws[name], one, "%s's CPUs under taskset %s" % (name, one))
    ck.ok(every <= one, "every thread inside %s: %s" % (one, sorted(every)))

    ws, _ = run(ck, set(mine), 2, 2)
    pinned = [ws.get("skydns-w%d" % i, set()) for i in range(2)]
    ck.ok(all(len(p) == 1 and p <= set(mine) for p in pinned),
          "each worker pinned to one allowed CPU: %s" % pinned)
    ck.ok(len(pinned) == 2 and pinned[0] != pinned[1],
          "two workers on two CPUs: %s" % pinned)
    ck.finish()


if __name__ == "__main__":
    main()
