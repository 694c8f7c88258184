#!/usr/bin/python3
"""
Issue 5 soak: 10,000 API writes (POSTs of distinct names from 4 parallel
keep-alive HTTP clients) while dnsperf queries names that exist from the
start. DNS must keep answering 100 % (dnsperf: 0 lost, only NOERROR), every
write must get 201, and afterwards every written name must be in the store
(GET /skydns/api/ lists all of them) and in DNS answers (a sample over dig).

dnsperf and the writes are tied by count, not by wall time: dnsperf runs in
back-to-back RUN_SECONDS runs until the last write got its reply (under ASan
beside test_load the 10,000 writes took 25.8 s of a fixed 30 s run). Each
write is sent once: a failed POST is an error, never retried.

Environment: SKYDNS_WRITES (default 10000), SKYDNS_SOAK_SECONDS (the bound on
the writes, default 180).
"""
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import Checks, Skydns, free_port  # noqa: E402

WRITES = int(os.environ.get("SKYDNS_WRITES", "10000"))
SECONDS = int(os.environ.get("SKYDNS_SOAK_SECONDS", "180"))
RUN_SECONDS = 5  # one dnsperf run; runs follow each other until the writes end
WRITERS = 4
ZONE_NAMES = 300
TOKEN = "soak-token"
QPS = 4000  # bounded: on 2 cores an unthrottled dnsperf starves the writers


def zone_text():
    lines = ["s%d.skydns.local. 30 IN A 10.1.%d.%d" % (i, i // 256, i % 256)
             for i in range(ZONE_NAMES)]
    return "\n".join(lines) + "\n"


def addr(i):
    return "10.200.%d.%d" % (i // 256, i % 256)


class Writer(threading.Thread):
    """POSTs names w<i> for i in its share, over one keep-alive connection."""

    def __init__(self, port, ids):
        super().__init__(daemon=True)
        self.port, self.ids = port, ids
        self.codes = {}
        self.errors = []
        self.reconnects = 0

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        hdr = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
        for i in self.ids:
            body = json.dumps({"type": "A", "ips": [addr(i)]})
            try:
                conn.request("POST", "/skydns/api/w%d" % i, body, hdr)
                r = conn.getresponse()
                r.read()
                self.codes[r.status] = self.codes.get(r.status, 0) + 1
                # http.client reopens by itself after a reply that says it closes
                if r.getheader("Connection", "").lower() == "close":
                    self.reconnects += 1
            except (OSError, http.client.HTTPException) as e:
                conn.close()  # once: the next write opens a new connection
                self.errors.append("w%d: %r" % (i, e))


def dnsperf_cmd(port, qfile):
    return ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(RUN_SECONDS),
            "-Q", str(QPS), "-c", "2", "-t", "2"]


class Perf(threading.Thread):
    """dnsperf runs, one after another, until stop() (the writes ended); bounded in count."""

    def __init__(self, port, qfile):
        super().__init__(daemon=True)
        self.cmd = dnsperf_cmd(port, qfile)
        self.stop_ev = threading.Event()
        self.runs = []  # parse_dnsperf() of each run
        self.started = threading.Event()

    def run(self):
        for _ in range(SECONDS // RUN_SECONDS + 2):
            p = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
            self.started.set()
            try:
                out, _ = p.communicate(timeout=RUN_SECONDS + 30)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            self.runs.append(parse_dnsperf(out))
            if self.stop_ev.is_set():
                return

    def stop(self):
        self.stop_ev.set()


def parse_dnsperf(out):
    def num(pat):
        m = re.search(pat, out)
        return int(m.group(1)) if m else -1
    rcodes = dict((k, int(v)) for k, v in re.findall(r"\b([A-Z]+) (\d+) \(", out))
    return {"sent": num(r"Queries sent:\s+(\d+)"), "completed": num(r"Queries completed:\s+(\d+)"),
            "lost": num(r"Queries lost:\s+(\d+)"), "rcodes": rcodes}


def api_list(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/skydns/api/", headers={"Authorization": "Bearer " + TOKEN})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, json.loads(data)


def dig_sample(dnsport, ids):
    """Ask for a sample of written names in one dig run; returns {name: address}."""
    args = ["dig", "+noall", "+answer", "+time=3", "+tries=1", "-p", str(dnsport), "@127.0.0.1"]
    for i in ids:
        args += ["w%d.skydns.local." % i, "A"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120).stdout
    got = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 5 and f[3] == "A":
            got[f[0]] = f[4]
    return got


def main():
    c = Checks()
    aport = free_port()
    extra = "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = %s\n" % (
        aport, TOKEN)
    with Skydns(zone_text(), extra_conf=extra, workers=2) as sky:
        sky.start()
        qfile = os.path.join(sky.dir, "queries.txt")
        with open(qfile, "w") as f:
            for i in range(ZONE_NAMES):
                f.write("s%d.skydns.local A\n" % i)
        perf = Perf(sky.port, qfile)
        perf.start()
        perf.started.wait(10)
        time.sleep(0.5)  # let dnsperf reach its rate before the writes start
        ids = list(range(WRITES))
        writers = [Writer(aport, ids[k::WRITERS]) for k in range(WRITERS)]
        t0 = time.monotonic()
        for w in writers:
            w.start()
        for w in writers:
            w.join(timeout=max(1, SECONDS - (time.monotonic() - t0)))
        wtime = time.monotonic() - t0
        # Writes done (or out of time): the current dnsperf run is the last one.
        perf_running = perf.is_alive()
        perf.stop()
        perf.join(RUN_SECONDS + 40)
        codes = {}
        for w in writers:
            for k, v in w.codes.items():
                codes[k] = codes.get(k, 0) + v
        errors = sum((w.errors for w in writers), [])
        closes = sum(w.reconnects for w in writers)
        print("writes: %d in %.1f s = %.0f/s (%d replies said Connection: close)" %
              (WRITES, wtime, WRITES / wtime, closes), flush=True)
        c.ok(not any(w.is_alive() for w in writers), "writers finished within %d s" % SECONDS)
        c.eq(codes, {201: WRITES}, "every write got 201")
        c.eq(errors[:5], [], "no write failed at the HTTP level (%d did)" % len(errors))
        # The API keeps every connection or announces every close (civetweb's
        # enable_keep_alive): a mix means connections closed under load, which a
        # client only learns from a failed write.
        c.ok(closes in (0, WRITES), "keep-alive: 0 or all %d replies say Connection: close "
             "(%d did)" % (WRITES, closes))
        c.ok(perf_running, "dnsperf ran until the writes ended")
        c.ok(not perf.is_alive(), "dnsperf's last run ended")
        runs = perf.runs
        p = {"sent": sum(r["sent"] for r in runs), "completed": sum(r["completed"] for r in runs),
             "lost": sum(r["lost"] for r in runs), "rcodes": {}}
        for r in runs:
            for k, v in r["rcodes"].items():
                p["rcodes"][k] = p["rcodes"].get(k, 0) + v
        print("dnsperf: %d runs of %d s: sent %d completed %d lost %d rcodes %s" %
              (len(runs), RUN_SECONDS, p["sent"], p["completed"], p["lost"], p["rcodes"]),
              flush=True)
        c.eq([r for r in runs if min(r["sent"], r["completed"], r["lost"]) < 0], [],
             "every dnsperf run's output parsed")
        c.ok(p["sent"] > QPS * wtime // 2, "dnsperf sent a real load (%d in %.1f s)"
             % (p["sent"], wtime))
        c.eq(p["lost"], 0, "dnsperf lost no query")
        c.eq(p["completed"], p["sent"], "dnsperf: every query answered")
        c.eq(set(p["rcodes"]), {"NOERROR"}, "only NOERROR for names that exist")
        c.eq(sum(p["rcodes"].values()), p["completed"], "an rcode for every answer")

        status, doc = api_list(aport)
        c.eq(status, 200, "GET /skydns/api/ after the soak")
        names = set(n["name"] for n in doc.get("names", []))
        written = set("w%d.skydns.local." % i for i in range(WRITES))
        c.eq(len(written - names), 0, "every written name is listed (missing: %s)"
             % sorted(written - names)[:5])
        c.eq(len(names), WRITES + ZONE_NAMES, "list holds zone + written names exactly")
        sample = random.Random(5).sample(range(WRITES), 200)
        got = dig_sample(sky.port, sample)
        want = dict(("w%d.skydns.local." % i, addr(i)) for i in sample)
        c.eq(got, want, "dig answers a sample of 200 written names with their addresses")
        c.ok(sky.alive(), "skydns alive after the soak")
    c.finish()


if __name__ == "__main__":
    main()
