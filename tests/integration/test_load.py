"""
Issue 2 acceptance: a 100,000-record zone served under 20 s of dnsperf load
answers 100 % of queries and the server's memory stays flat.

Uses the benchmark's zone generator (bench/make-zone.sh) so the query mix is
the benchmark's: A, multi-A, AAAA, CNAME, SRV, NODATA and NXDOMAIN.
"""
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from skytest import Checks, Skydns

SRC = os.environ.get("SKYDNS_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
SECONDS = 20
c = Checks()


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def main():
    with Skydns(workers=2) as srv:
        data = os.path.join(srv.dir, "bench")
        env = dict(os.environ, NSVC="100000", NAAAA="10000", NQ="50000")
        subprocess.run(["sh", os.path.join(SRC, "bench", "make-zone.sh"), data], env=env,
                       check=True, timeout=120)
        t0 = time.monotonic()
        with open(os.path.join(data, "skydns.local.zone")) as f:
            srv.import_zone(f.read())
        print("import of the 100k-record zone: %.1f s" % (time.monotonic() - t0))
        srv.start()
        samples = []
        done = threading.Event()

        def sample_rss():
            while not done.wait(1.0):
                samples.append(status_kb(srv.proc.pid, "VmRSS"))

        sampler = threading.Thread(target=sample_rss)
        sampler.start()
        perf = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(srv.port), "-d",
                               os.path.join(data, "queries.txt"), "-l", str(SECONDS), "-c", "8",
                               "-Q", "30000"], capture_output=True, text=True,
                              timeout=SECONDS + 60)
        done.set()
        sampler.join()
        out = perf.stdout
        sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
        completed = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
        lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
        codes = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+) \(\d", out.split(
            "Response codes:")[1].splitlines()[0])) if "Response codes:" in out else {}
        hwm = status_kb(srv.proc.pid, "VmHWM")
        print("dnsperf: sent %d completed %d lost %d codes %s; VmRSS samples (KiB) first %s "
              "last %s, VmHWM %d KiB" % (sent, completed, lost, codes, samples[:3], samples[-3:],
                                          hwm))
        c.ok(sent > SECONDS * 5000, "dnsperf sent a real load (%d queries)" % sent)
        c.eq(lost, 0, "no query lost")
        c.eq(completed, sent, "100 % answered")
        c.eq(sorted(codes), ["NOERROR", "NXDOMAIN"], "only NOERROR and NXDOMAIN answers")
        # Flat memory: after warm-up (the mapped store paged in), RSS grows by < 2 MiB.
        warm = samples[len(samples) // 4:]
        c.ok(len(warm) >= 5, "enough RSS samples (%d)" % len(warm))
        if warm:
            c.ok(max(warm) - warm[0] < 2048,
                 "RSS flat under load: %d -> %d KiB" % (warm[0], max(warm)))
        c.ok(srv.alive(), "alive after the load")
    c.finish()


main()
