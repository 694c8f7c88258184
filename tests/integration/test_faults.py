"""
Faults (issue 7): a full store map, a full disk during import, SIGHUP under
load, SIGTERM draining. Each shows what the user sees and that nothing
already committed is lost and serving goes on.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import dns.message
import dns.rcode

from skytest import SKYDNS, Checks, Skydns, free_port, udp_query

c = Checks()
BASE = "$ORIGIN skydns.local.\nkeep A 10.0.0.1\n"


def big_zone(n):
    return BASE + "".join("n%06d.bulk A 10.%d.%d.%d\n" % (i, i >> 16 & 255, i >> 8 & 255, i & 255)
                          for i in range(n))


def lookup(srv, name, rdtype="A"):
    r = dns.message.from_wire(udp_query(srv.port, dns.message.make_query(name, rdtype).to_wire()))
    return r.rcode(), [str(x) for rr in r.answer for x in rr]


def import_cmd(srv, text):
    path = os.path.join(srv.dir, "more.zone")
    with open(path, "w") as f:
        f.write(text)
    return subprocess.run([SKYDNS, "-config-file", srv.conf, "-import", path],
                          capture_output=True, text=True, timeout=300)


def map_full():
    with Skydns(BASE, extra_conf="[Store]\n") as srv:
        # Shrink the map after the first import: the next, larger import cannot fit.
        conf = open(srv.conf).read().replace("map-size = 256M", "map-size = 1M")
        open(srv.conf, "w").write(conf)
        srv.start()
        r = import_cmd(srv, big_zone(40000))
        c.ok(r.returncode != 0, "import larger than the map fails")
        c.ok(re.search(r"full|map-size", r.stderr + r.stdout, re.I),
             "the error says the store is full: %r" % (r.stderr + r.stdout)[-300:])
        c.eq(lookup(srv, "keep.skydns.local."), (dns.rcode.NOERROR, ["10.0.0.1"]),
             "previous data still served after the failed import")
        c.eq(lookup(srv, "n000001.bulk.skydns.local.")[0], dns.rcode.NXDOMAIN,
             "nothing partial of the failed import is visible")
        c.ok(srv.alive(), "server alive after map full")


SKIPPED = []


def disk_full():
    if os.geteuid() != 0:
        # mount(2) of the 2 MiB tmpfs needs root: say so, do not pass in silence
        SKIPPED.append("disk_full needs root to mount a 2 MiB tmpfs")
        return
    mnt = tempfile.mkdtemp(prefix="skydns-tmpfs-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]).returncode != 0:
        c.ok(False, "cannot mount a 2 MiB tmpfs for the disk-full test (needs root)")
        return
    try:
        with Skydns() as srv:
            conf = open(srv.conf).read().replace("data-dir = %s/store" % srv.dir,
                                                 "data-dir = %s/store" % mnt)
            open(srv.conf, "w").write(conf)
            srv.import_zone(BASE)
            srv.start()
            r = import_cmd(srv, big_zone(60000))
            c.ok(r.returncode != 0, "import onto a full disk fails")
            c.ok(r.stderr.strip() != "", "and says why: %r" % r.stderr.strip()[-200:])
            c.eq(lookup(srv, "keep.skydns.local."), (dns.rcode.NOERROR, ["10.0.0.1"]),
                 "previous data intact after disk full")
            c.eq(lookup(srv, "n000001.bulk.skydns.local.")[0], dns.rcode.NXDOMAIN,
                 "nothing partial after disk full")
            srv.stop()
            srv.start()
            c.eq(lookup(srv, "keep.skydns.local."), (dns.rcode.NOERROR, ["10.0.0.1"]),
                 "store opens and serves after a restart on the full disk")
    finally:
        subprocess.run(["umount", mnt])
        shutil.rmtree(mnt, ignore_errors=True)


def sighup_under_load():
    with Skydns(big_zone(1000), workers=2) as srv:
        srv.start()
        qfile = os.path.join(srv.dir, "q.txt")
        with open(qfile, "w") as f:
            for i in range(1000):
                f.write("n%06d.bulk.skydns.local. A\n" % i)
        perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(srv.port), "-d", qfile,
                                 "-l", "4", "-c", "4", "-Q", "5000"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(8):
            time.sleep(0.4)
            srv.proc.send_signal(signal.SIGHUP)
        out, _ = perf.communicate(timeout=60)
        sent = re.search(r"Queries sent:\s+(\d+)", out)
        done = re.search(r"Queries completed:\s+(\d+)", out)
        lost = re.search(r"Queries lost:\s+(\d+)", out)
        c.ok(sent and int(sent.group(1)) > 1000, "dnsperf ran under SIGHUPs: %s" % (sent and sent.group(1)))
        c.eq(lost and int(lost.group(1)), 0, "no query lost across 8 reloads")
        # Answered is not enough: every name asked exists, so each answer is NOERROR.
        codes = dict((k, int(v)) for k, v in re.findall(r"\b([A-Z]+) (\d+) \(", out))
        c.eq(codes, {"NOERROR": done and int(done.group(1))},
             "only NOERROR across the reloads, one per completed query")
        c.ok(srv.alive(), "alive after reloads")


def sigterm_drain():
    api = free_port()
    extra = "shutdown-grace = 2\n[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n" % api
    with Skydns(BASE, extra_conf=extra) as srv:
        srv.start()
        url = "http://127.0.0.1:%d/ready" % api
        c.eq(urllib.request.urlopen(url, timeout=3).status, 200, "/ready 200 while serving")
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        try:
            code = urllib.request.urlopen(url, timeout=3).status
        except urllib.error.HTTPError as e:
            code = e.code
        c.eq(code, 503, "/ready 503 while draining")
        c.eq(lookup(srv, "keep.skydns.local."), (dns.rcode.NOERROR, ["10.0.0.1"]),
             "DNS still answered during the grace period")
        rc = srv.proc.wait(timeout=20)
        took = time.monotonic() - t0
        c.eq(rc, 0, "exit status 0 after draining")
        c.ok(1.5 <= took <= 8, "exited after the 2 s grace (%.1f s)" % took)
        srv.proc = None


for fn in (map_full, disk_full, sighup_under_load, sigterm_drain):
    try:
        fn()
    except Exception as e:
        c.ok(False, "%s: %r" % (fn.__name__, e))
if SKIPPED:
    c.skip("; ".join(SKIPPED) + " (the other parts ran)")
c.finish()
