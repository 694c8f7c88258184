#!/usr/bin/python3
"""
Issue 5 soak: 10,000 API writes (POSTs of distinct names from 4 parallel
keep-alive HTTP clients) while dnsperf queries names that exist from the
start. DNS must keep answering 100 % (dnsperf: 0 lost, only NOERROR), every
write must get 201, and afterwards every written name must be in the store
(GET /skydns/api/ lists all of them) and in DNS answers (a sample over dig).

Environment: SKYDNS_WRITES (default 10000), SKYDNS_SOAK_SECONDS (dnsperf
duration, default 30; the writes must finish inside it).
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
SECONDS = int(os.environ.get("SKYDNS_SOAK_SECONDS", "30"))
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
            for attempt in range(3):
                try:
                    conn.request("POST", "/skydns/api/w%d" % i, body, hdr)
                    r = conn.getresponse()
                    r.read()
                    self.codes[r.status] = self.codes.get(r.status, 0) + 1
                    if r.getheader("Connection", "").lower() == "close":
                        self.reconnects += 1
                    break
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    if attempt == 2:
                        self.errors.append("w%d: %r" % (i, e))


def dnsperf_cmd(port, qfile):
    return ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(SECONDS),
            "-Q", str(QPS), "-c", "2", "-t", "2"]


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
    args = ["dig", "+noall", "+answer", "+time=2", "+tries=2", "-p", str(dnsport), "@127.0.0.1"]
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
        perf = subprocess.Popen(dnsperf_cmd(sky.port, qfile), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        time.sleep(0.5)  # let dnsperf reach its rate before the writes start
        ids = list(range(WRITES))
        writers = [Writer(aport, ids[k::WRITERS]) for k in range(WRITERS)]
        t0 = time.monotonic()
        for w in writers:
            w.start()
        for w in writers:
            w.join(timeout=SECONDS + 60)
        wtime = time.monotonic() - t0
        perf_running = perf.poll() is None
        try:
            out, _ = perf.communicate(timeout=SECONDS + 30)
        except subprocess.TimeoutExpired:
            perf.kill()
            out, _ = perf.communicate()
        codes = {}
        for w in writers:
            for k, v in w.codes.items():
                codes[k] = codes.get(k, 0) + v
        errors = sum((w.errors for w in writers), [])
        closes = sum(w.reconnects for w in writers)
        print("writes: %d in %.1f s = %.0f/s (%d replies said Connection: close)" %
              (WRITES, wtime, WRITES / wtime, closes), flush=True)
        c.ok(not any(w.is_alive() for w in writers), "writers finished")
        c.eq(codes, {201: WRITES}, "every write got 201")
        c.eq(errors[:5], [], "no write failed at the HTTP level")
        c.ok(perf_running, "dnsperf still ran when the writes ended (%.1f s < %d s)"
             % (wtime, SECONDS))
        p = parse_dnsperf(out)
        print("dnsperf: sent %d completed %d lost %d rcodes %s" %
              (p["sent"], p["completed"], p["lost"], p["rcodes"]), flush=True)
        c.ok(p["sent"] > QPS * SECONDS // 2, "dnsperf sent a real load (%d)" % p["sent"])
        c.eq(p["lost"], 0, "dnsperf lost no query")
        c.eq(p["completed"], p["sent"], "dnsperf: every query answered")
        c.eq(set(p["rcodes"]), {"NOERROR"}, "only NOERROR for names that exist")

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
