#!/usr/bin/env python3
"""
bench/etcd.py — the etcd watcher's numbers (issue 11), one command:

  SKYDNS_BUILD=build bench/etcd.py        (a Release build; ASan numbers mean little)

  1. KEYS (50,000) keys in one etcd member on loopback, loaded through txns of 128
     puts; skydns started on them: time to /ready 200, the watcher's own "full read
     ... in N ms" line, and the watcher's peak RSS (VmHWM).
  2. dnsperf at DNS_QPS (5,000/s) for a fixed query file of loaded names, first alone
     (baseline), then while PUTS (1,000) puts of new names go into etcd at PUT_RATE
     (500/s): for each put, the time from sending it and from etcd's reply to the
     first DNS answer that holds it (polled over UDP every 0.5 ms); dnsperf's lost
     queries. Then the same puts again without the pollers: skydns's CPU (schedstat of
     all its threads) per query answered over the churn's span, against the same span
     of dnsperf alone, and their ratio.
Everything on 127.0.0.1, in a temp dir; every process is stopped by PID on exit.
Prints one "name value" line per number (the report quotes them); no pass/fail.
"""
import base64
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("SKYDNS_BUILD", os.path.join(HERE, "..", "build"))
import etcdlib  # noqa: E402

KEYS = int(os.environ.get("KEYS", 50000))
PUTS = int(os.environ.get("PUTS", 1000))
PUT_RATE = float(os.environ.get("PUT_RATE", 500))
DNS_QPS = int(os.environ.get("DNS_QPS", 5000))
SECS = int(os.environ.get("BENCH_SECONDS", 8))
D = "skydns.local."


def b64(s):
    return base64.b64encode(s.encode()).decode()


def txn_put(url, items):
    body = json.dumps({"success": [{"request_put": {"key": b64(k), "value": b64(v)}}
                                   for k, v in items]}).encode()
    with urllib.request.urlopen(urllib.request.Request(url + "/v3/kv/txn", body),
                                timeout=30) as r:
        r.read()


def queries_total(sky):
    """Every query skydns answered (dnsperf's and the pollers'), from /metrics."""
    return sum(v for k, v in sky.metrics().items() if k.startswith("skydns_queries_total"))


def cpu_ns(pid):
    """CPU time of all of pid's threads in ns (schedstat: finer than utime's ticks)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))


def qname_wire(name, qid=0x1234):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return (qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + out +
            b"\x00\x00\x01\x00\x01")


def dnsperf(port, qfile, secs):
    out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
                          "-l", str(secs), "-Q", str(DNS_QPS), "-c", "4", "-t", "2"],
                         capture_output=True, text=True).stdout
    sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
    done = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    return sent, done, lost


class Poller(threading.Thread):
    """One UDP socket asking every pending name once per POLL_S until it answers;
    answers matched by query ID. Cheaper than a thread per put, so the numbers
    are the watcher's, not the poller's."""

    POLL_S = 0.002

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.pending = {}  # qid -> (name, wire)
        self.seen = {}     # qid -> monotonic time of the first non-empty answer
        self.lock = threading.Lock()
        self.stop = False

    def add(self, qid, name):
        with self.lock:
            self.pending[qid] = qname_wire(name, qid)

    def run(self):
        import select
        while not self.stop:
            with self.lock:
                items = list(self.pending.items())
            for qid, wire in items:
                self.sock.sendto(wire, ("127.0.0.1", self.port))
            end = time.monotonic() + self.POLL_S
            while True:
                left = end - time.monotonic()
                if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                    break
                try:
                    r = self.sock.recv(512)
                except BlockingIOError:
                    break
                qid = int.from_bytes(r[0:2], "big")
                if len(r) > 12 and int.from_bytes(r[6:8], "big") > 0:
                    with self.lock:
                        if qid in self.pending:
                            del self.pending[qid]
                            self.seen[qid] = time.monotonic()


def churn(etcd_url, port, results, poll=True):
    """PUTS puts at PUT_RATE from 4 threads with kept-alive connections; with poll, the
    time until each answers (its own queries: a CPU run goes without)."""
    import http.client
    from urllib.parse import urlparse
    poller = Poller(port)
    if poll:
        poller.start()
    u = urlparse(etcd_url)
    times = {}
    start = time.monotonic()

    def putter(k):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        for i in range(k, PUTS, 4):
            at = start + i / PUT_RATE
            while time.monotonic() < at:
                time.sleep(max(0, at - time.monotonic()))
            key = "/skydns/local/skydns/churn%s%d/x" % ("" if poll else "c", i)
            val = json.dumps({"host": "10.200.%d.%d" % (i // 250, i % 250 + 1)})
            body = json.dumps({"key": b64(key), "value": b64(val)})
            t0 = time.monotonic()
            conn.request("POST", "/v3/kv/put", body)
            conn.getresponse().read()
            t1 = time.monotonic()
            if poll:
                poller.add(i + 1, "churn%d.%s" % (i, D))
                times[i + 1] = (t0, t1)

    threads = [threading.Thread(target=putter, args=(k,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    took = time.monotonic() - start
    end = time.monotonic() + 5
    while poller.pending and time.monotonic() < end:
        time.sleep(0.01)
    poller.stop = True
    if poll:
        poller.join()
    for qid, (t0, t1) in times.items():
        results.append((t0, t1, poller.seen.get(qid)))
    return took


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    root = tempfile.mkdtemp(prefix="skydns-bench-etcd-")
    e = etcdlib.Etcd(os.path.join(root, "etcd"), ["--quota-backend-bytes", str(4 << 30)])
    sky = etcdlib.Skydns(os.path.join(root, "sky"), "")
    try:
        e.start()
        sky = etcdlib.Skydns(os.path.join(root, "sky"), e.url)
        t0 = time.monotonic()
        batch = []
        for i in range(KEYS):
            batch.append(("/skydns/local/skydns/svc%d/k%d" % (i % 5000, i),
                          json.dumps({"host": "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255,
                                                                i & 255), "ttl": 60})))
            if len(batch) == 128:
                txn_put(e.url, batch)
                batch = []
        if batch:
            txn_put(e.url, batch)
        print("etcd_load_seconds %.1f" % (time.monotonic() - t0))
        t0 = time.monotonic()
        sky.start(deadline=60)
        if etcdlib.wait_for(lambda: sky.ready() == 200, 300, step=0.05) is None:
            raise RuntimeError("not ready:\n" + sky.log()[-3000:])
        print("initial_load_to_ready_seconds %.2f" % (time.monotonic() - t0))
        m = re.search(r"full read of (\d+) keys .* in (\d+) ms", sky.log())
        print("watcher_full_read_keys %s" % (m.group(1) if m else "?"))
        print("watcher_full_read_ms %s" % (m.group(2) if m else "?"))
        wpid = sky.watcher_pid()
        print("watcher_peak_rss_kb %d" % hwm_kb(wpid))
        print("skydns_peak_rss_kb %d" % hwm_kb(sky.proc.pid))

        qfile = os.path.join(root, "queries.txt")
        with open(qfile, "w") as f:
            for i in range(5000):
                f.write("svc%d.%s A\n" % (i, D))
        # Baseline, then churn: the same dnsperf load; CPU and queries are sampled over
        # the same span inside it (the churn's span), so the two compare like for like.
        span = PUTS / PUT_RATE
        runs = {}
        for mode in ["baseline", "churn"] + ["churn_cpu", "baseline"] * 2:
            out = {}
            dp = threading.Thread(target=lambda: out.update(r=dnsperf(sky.port, qfile, SECS)))
            dp.start()
            time.sleep(1)
            c0, q0 = cpu_ns(sky.proc.pid), queries_total(sky)
            results = []
            if mode == "churn":
                lat = results
                m0 = sky.metrics()
                took = churn(e.url, sky.port, results)
                m1 = sky.metrics()
                n = (m1.get("skydns_etcd_event_commit_seconds_count", 0) -
                     m0.get("skydns_etcd_event_commit_seconds_count", 0))
                ssum = (m1.get("skydns_etcd_event_commit_seconds_sum", 0) -
                        m0.get("skydns_etcd_event_commit_seconds_sum", 0))
                print("watcher_batches %d mean_event_to_commit_ms %.2f" % (
                    n, ssum / max(n, 1) * 1000))
            elif mode == "churn_cpu":
                took = churn(e.url, sky.port, [], poll=False)
            else:
                time.sleep(span)
                took = span
            c1, q1 = cpu_ns(sky.proc.pid), queries_total(sky)
            dp.join()
            sent, done, lost = out["r"]
            runs.setdefault(mode, []).append((c1 - c0) / 1000.0 / max(q1 - q0, 1))
            print("%s_dnsperf_sent %d completed %d lost %d" % (mode, sent, done, lost))
            print("%s_span_s %.2f queries_answered %d cpu_us_per_query %.2f" % (
                mode, took, q1 - q0, runs[mode][-1]))
            if mode != "baseline":
                print("%s_puts_per_s %.0f" % (mode, PUTS / took))
        results = lat
        print("churn_puts %d" % len(results))
        seen = [r for r in results if r[2] is not None]
        print("churn_not_visible_within_5s %d" % (len(results) - len(seen)))
        from_send = [(s - a) * 1000 for a, b, s in seen]
        from_ack = [(s - b) * 1000 for a, b, s in seen]
        for label, v in (("put_sent_to_visible_ms", from_send),
                         ("put_acked_to_visible_ms", from_ack)):
            print("%s p50 %.2f p99 %.2f max %.2f mean %.2f" % (
                label, pct(v, 50), pct(v, 99), max(v), statistics.mean(v)))
        # churn_cpu: the same puts without the pollers, so every query is dnsperf's.
        print("cpu_ratio_churn_vs_baseline %.3f (medians of %d and %d runs)" % (
            statistics.median(runs["churn_cpu"]) / statistics.median(runs["baseline"]),
            len(runs["churn_cpu"]), len(runs["baseline"])))
    finally:
        sky.stop()
        e.stop()
        subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main()
