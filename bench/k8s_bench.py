"""
bench/k8s_bench.py: skydns + skydns-watch-k8s against a synthetic cluster in the Kubernetes
API test server (bench/k8s.sh runs it; see there for the environment).

Measures, in one run:
  list_to_ready_s    skydns started on an empty store -> /ready 200
  list_to_serving_s  -> the last Service of the list answers over UDP
  store_file_mib     data.mdb size; store_used_mib: pages in use (mdb_stat) x page size
  watcher_rss_*      the watcher's VmHWM after the first sync (first_list_hwm), VmRSS
                     steady (a few seconds later), VmHWM during a forced re-list (API
                     server stopped, changes, history compacted, restarted -> both
                     re-watches get 410 -> re-list; VmHWM reset first through
                     /proc/PID/clear_refs) and their ratio (issue 12: <= 1.2); the same
                     for RssAnon alone (heap, LMDB's dirty pages), sampled every 5 ms,
                     since RSS also counts the store's file pages the watcher maps
  relist_s           API server back -> the re-list done (both watches open again, the
                     change made while it was away answered)
  <kind>_p50/p99/max_ms  API change -> the new answer visible over UDP, polled every
                     ~0.5 ms, for: a Service added (svc_add), an endpoint added to a
                     headless service's slice (ep_add), an endpoint removed (ep_del)
Prints a table and appends one TSV row per number to bench/results/<date>-k8s.tsv.
"""
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

import k8s_gen  # noqa: E402
import kubeapi  # noqa: E402
import skytest  # noqa: E402

NSVC = int(os.environ.get("K8S_SERVICES", "10000"))
NEP = int(os.environ.get("K8S_ENDPOINTS", "50000"))
SAMPLES = int(os.environ.get("K8S_SAMPLES", "200"))
ZONE = "cluster.local."
TOKEN = "bench-token"


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def watcher_pid(skydns_pid):
    for c in children(skydns_pid):
        try:
            if os.path.basename(os.readlink("/proc/%d/exe" % c)) == "skydns-watch-k8s":
                return c
        except OSError:
            pass
    return 0


class Resolver:
    """One UDP socket, for polling an answer as fast as it can change."""

    def __init__(self, port):
        self.addr = ("127.0.0.1", port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(1.0)

    def query(self, name, qtype="A"):
        q = dns.message.make_query(name, qtype)
        self.s.sendto(q.to_wire(), self.addr)
        while True:
            data, _ = self.s.recvfrom(65535)
            r = dns.message.from_wire(data)
            if r.id == q.id:
                return r

    def addrs(self, name, qtype="A"):
        try:
            r = self.query(name, qtype)
        except (OSError, dns.exception.DNSException):
            return None, set()
        want = dns.rdatatype.from_text(qtype)
        return r.rcode(), {rd.to_text() for rrset in r.answer if rrset.rdtype == want
                           for rd in rrset}


def wait_until(cond, deadline, step=0.0005):
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def http_status(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] if xs else float("nan")


def store_sizes(data_dir):
    path = os.path.join(data_dir, "data.mdb")
    size = os.path.getsize(path) if os.path.exists(path) else 0
    used = 0
    try:
        out = subprocess.run(["mdb_stat", "-e", "-f", data_dir], capture_output=True, text=True,
                             timeout=30).stdout
        psize = int(re.search(r"Page size: (\d+)", out).group(1))
        pages = int(re.search(r"Number of pages used: (\d+)", out).group(1))
        free = re.search(r"Free pages: (\d+)", out)
        used = (pages - (int(free.group(1)) if free else 0)) * psize
    except (OSError, AttributeError, subprocess.SubprocessError):
        pass
    return size, used


def main():
    skydns = skytest.SKYDNS
    watcher = os.path.join(os.path.dirname(skydns), "skydns-watch-k8s")
    if not os.path.exists(watcher):
        print("k8s_bench: %s is not built (the watcher lives on branch k8s)" % watcher)
        return 2
    results = []

    def rec(name, value, unit):
        results.append((name, value, unit))
        print("%-28s %12.3f %s" % (name, value, unit), flush=True)

    api = kubeapi.KubeAPI(skytest.free_port(), token=TOKEN, bookmark_interval=10.0)
    t = time.monotonic()
    counts = k8s_gen.load(api, nsvc=NSVC, nendpoints=NEP)
    api.compact()  # nothing to replay: the watcher lists
    print("cluster: %s in %.1f s (%d endpoints)" % (counts, time.monotonic() - t, NEP))
    api.start()

    d = tempfile.mkdtemp(prefix="skydns-k8s-bench-")
    port, aport = skytest.free_port(), skytest.free_port()
    tokfile = os.path.join(d, "token")
    with open(tokfile, "w") as f:
        f.write(TOKEN)
    conf = os.path.join(d, "skydns.conf")
    with open(conf, "w") as f:
        f.write("[Dns]\ndns-addr = 127.0.0.1:%d\nworkers = 1\n"
                "[Store]\ndata-dir = %s/store\nmap-size = 4G\n"
                "[Log]\nlog-to-stdio = true\nlog-level = warn\n"
                "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                "[Kubernetes]\nenable = true\nserver = %s\ntoken-file = %s\n"
                % (port, d, aport, api.url, tokfile))
    log = open(os.path.join(d, "skydns.out"), "w")
    proc = None
    try:
        t0 = time.monotonic()
        proc = subprocess.Popen([skydns, "-config-file", conf], stdout=log,
                                stderr=subprocess.STDOUT)
        res = Resolver(port)
        i = NSVC - 1
        while i % 5 == 0:  # the last service with a ClusterIP (every 5th is headless)
            i -= 1
        last = "svc-%05d.ns-%03d.svc.%s" % (i, i % 100, ZONE)
        ready = wait_until(lambda: http_status(aport, "/ready") == 200, 600, 0.01)
        if ready is None:
            print("k8s_bench: not ready within 600 s; log in %s" % d)
            return 1
        rec("list_to_ready_s", ready, "s")
        serving = wait_until(lambda: res.addrs(last)[0] == dns.rcode.NOERROR and
                             res.addrs(last)[1], 120, 0.005)
        rec("list_to_serving_s", time.monotonic() - t0 if serving is not None else -1, "s")
        wpid = watcher_pid(proc.pid)
        rec("watcher_first_list_hwm_mib", status_kb(wpid, "VmHWM") / 1024.0, "MiB")
        time.sleep(3)
        steady = status_kb(wpid, "VmRSS")
        rec("watcher_rss_steady_mib", steady / 1024.0, "MiB")
        size, used = store_sizes(os.path.join(d, "store"))
        rec("store_file_mib", size / 1048576.0, "MiB")
        rec("store_used_mib", used / 1048576.0, "MiB")

        # A forced re-list of both resources: the API server goes away, changes happen and
        # its history is compacted past them, so both re-watches get 410.
        anon0 = status_kb(wpid, "RssAnon")
        rec("watcher_rss_anon_steady_mib", anon0 / 1024.0, "MiB")
        with open("/proc/%d/clear_refs" % wpid, "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        lists0 = api.counters()["lists"]
        api.stop()
        api.add(kubeapi.service("ns-000", "bench-marker", "10.111.0.1"))
        api.add(kubeapi.endpointslice("ns-000", "bench-marker", "bench-marker-0",
                                      [kubeapi.endpoint("10.250.255.1")]))
        api.compact()
        peak = {"anon": anon0}
        sampling = threading.Event()

        def sample():
            while not sampling.wait(0.005):
                peak["anon"] = max(peak["anon"], status_kb(wpid, "RssAnon"))
        sampler = threading.Thread(target=sample)
        sampler.start()
        api.start()
        relisted = wait_until(lambda: all(api.counters()["lists"][r] > lists0[r]
                                          for r in ("services", "endpointslices")) and
                              api.counters()["open_watches"] >= 2 and
                              res.addrs("bench-marker.ns-000.svc." + ZONE)[1] ==
                              {"10.111.0.1"}, 300, 0.01)
        sampling.set()
        sampler.join()
        rec("relist_s", relisted if relisted is not None else -1, "s")
        hwm = status_kb(wpid, "VmHWM")
        rec("watcher_relist_hwm_mib", hwm / 1024.0, "MiB")
        rec("watcher_relist_ratio", hwm / float(steady or 1), "x")
        rec("watcher_relist_anon_peak_mib", peak["anon"] / 1024.0, "MiB")
        rec("watcher_relist_anon_ratio", peak["anon"] / float(anon0 or 1), "x")
        time.sleep(3)
        rec("watcher_rss_after_relist_mib", status_kb(wpid, "VmRSS") / 1024.0, "MiB")
        rec("watcher_rss_file_after_relist_mib", status_kb(wpid, "RssFile") / 1024.0, "MiB")
        size, used = store_sizes(os.path.join(d, "store"))
        rec("store_file_after_relist_mib", size / 1048576.0, "MiB")

        # Event -> answer latency.
        lat = {"svc_add": [], "ep_add": [], "ep_del": []}
        rnd = random.Random(12)
        for n in range(SAMPLES):
            ip = "10.112.%d.%d" % (n // 250, n % 250 + 1)
            name = "lat-%d" % n
            api.add(kubeapi.service("ns-001", name, ip))
            x = wait_until(lambda: ip in res.addrs("%s.ns-001.svc.%s" % (name, ZONE))[1], 5)
            lat["svc_add"].append(x * 1000 if x is not None else 5000)
            # a headless service's slice: one endpoint more, then one fewer
            i = rnd.randrange(0, NSVC, 5)
            ns, svc = "ns-%03d" % (i % 100), "svc-%05d" % i
            sl = api.get("endpointslices", ns, "%s-0" % svc)
            if sl is None:
                continue
            epip = "10.250.%d.%d" % (n // 250, n % 250 + 1)
            sl["endpoints"] = (sl["endpoints"] or []) + [kubeapi.endpoint(epip)]
            fq = "%s.%s.svc.%s" % (svc, ns, ZONE)
            api.update(dict(sl, kind="EndpointSlice"))
            x = wait_until(lambda: epip in res.addrs(fq)[1], 5)
            lat["ep_add"].append(x * 1000 if x is not None else 5000)
            sl["endpoints"] = sl["endpoints"][:-1]
            api.update(dict(sl, kind="EndpointSlice"))
            x = wait_until(lambda: epip not in res.addrs(fq)[1], 5)
            lat["ep_del"].append(x * 1000 if x is not None else 5000)
            time.sleep(0.01)
        for k, xs in lat.items():
            rec(k + "_p50_ms", pct(xs, 50), "ms")
            rec(k + "_p99_ms", pct(xs, 99), "ms")
            rec(k + "_max_ms", max(xs) if xs else float("nan"), "ms")
            rec(k + "_mean_ms", statistics.mean(xs) if xs else float("nan"), "ms")
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        api.stop()
        log.close()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", time.strftime("%Y%m%d-%H%M%S") + "-k8s.tsv")
    with open(out, "w") as f:
        f.write("metric\tvalue\tunit\tservices\tendpoints\n")
        for name, value, unit in results:
            f.write("%s\t%.3f\t%s\t%d\t%d\n" % (name, value, unit, NSVC, NEP))
    print("results: %s (skydns dir %s)" % (out, d))
    subprocess.run(["rm", "-rf", d])
    return 0


if __name__ == "__main__":
    sys.exit(main())
