#!/usr/bin/python3
"""
bench/fwd_dead.py — issue 14: forwarding latency with one of two upstreams
dead, and the forwarding cache's memory per entry. Called by
`bench/run.sh forward-dead`, which starts two NSDs serving the bench zone.

    fwd_dead.py SKYDNS LIVE_PORT1 LIVE_PORT2 QUERIES RUN_DIR [N]

Two skydns runs (1 worker, CPU as the caller pins it), each asking N [3000]
distinct names of QUERIES one after the other (every one a cache miss, so
every one goes upstream):
  alive:  nameservers = live1, live2
  dead:   nameservers = dead, live2, where `dead` is a bound UDP socket that
          never answers (packets swallowed, no ICMP), listed first
Prints a row per run: p50 / p99 / max latency in ms, the skydns VmRSS
growth over the run divided by the entries cached (cache memory per entry,
an upper bound: it includes the allocator's slack and the pages the forwarder
touches for the first time) and the average reply size.
"""
import os
import socket
import subprocess
import sys
import time

import dns.message

SIZES = []  # reply bytes of the measured queries


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ask(port, name, qtype):
    q = dns.message.make_query(name, qtype, use_edns=0)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5.0)
    t = time.monotonic()
    try:
        s.sendto(q.to_wire(), ("127.0.0.1", port))
        data, _ = s.recvfrom(65535)
        SIZES.append(len(data))
        return time.monotonic() - t
    except socket.timeout:
        return None
    finally:
        s.close()


def run(label, skydns, servers, names, rundir):
    port = free_port()
    d = os.path.join(rundir, "fwd-" + label)
    os.makedirs(os.path.join(d, "store"), exist_ok=True)
    conf = os.path.join(d, "skydns.conf")
    with open(conf, "w") as f:
        f.write("[Dns]\ndns-addr = 127.0.0.1:%d\nworkers = 1\nshutdown-grace = 0\n"
                "dns-domains = bench.invalid.\nnameservers = %s\ncacheSize = 200000\n"
                "[Store]\ndata-dir = %s/store\n[Log]\nlog-level = warn\n"
                % (port, ",".join(servers), d))
    p = subprocess.Popen([skydns, "-config-file", conf], stdout=open(d + "/stdout", "w"),
                         stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if ask(port, "svc-0.default.svc.skydns.local.", "A") is not None:
                break
            time.sleep(0.1)
        rss0 = rss_kb(p.pid)
        del SIZES[:]
        lat, lost = [], 0
        for name, qtype in names:
            dt = ask(port, name, qtype)
            if dt is None:
                lost += 1
            else:
                lat.append(dt * 1000)
        rss1 = rss_kb(p.pid)
    finally:
        p.terminate()
        p.wait(timeout=10)
    lat.sort()
    pct = lambda x: lat[min(len(lat) - 1, int(len(lat) * x))] if lat else -1  # noqa: E731
    per = (rss1 - rss0) * 1024 / max(1, len(lat))
    avg = sum(SIZES) / max(1, len(SIZES))
    print("%-6s %6d q  lost %-3d  p50 %7.3f  p99 %7.3f  max %8.3f ms  cache ~%4.0f B/entry"
          " (replies %.0f B)"
          % (label, len(names), lost, pct(0.5), pct(0.99), lat[-1] if lat else -1, per, avg),
          flush=True)
    return pct(0.99)


def main():
    skydns, live1, live2, queries, rundir = sys.argv[1:6]
    n = int(sys.argv[6]) if len(sys.argv) > 6 else 3000
    seen, names = set(), []
    with open(queries) as f:
        for line in f:
            w = line.split()
            if len(w) == 2 and (w[0], w[1]) not in seen:
                seen.add((w[0], w[1]))
                names.append((w[0], w[1]))
    half = n if len(names) >= 2 * n else len(names) // 2
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never read: swallows
    dead.bind(("127.0.0.1", 0))
    dport = dead.getsockname()[1]
    a = run("alive", skydns, ["127.0.0.1:" + live1, "127.0.0.1:" + live2], names[:half], rundir)
    b = run("dead", skydns, ["127.0.0.1:%d" % dport, "127.0.0.1:" + live2],
            names[half:2 * half], rundir)
    print("p99 dead/alive: %.2fx" % (b / a if a > 0 else -1), flush=True)
    dead.close()


if __name__ == "__main__":
    main()
