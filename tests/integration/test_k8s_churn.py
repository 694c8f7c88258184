"""
Issue 12 acceptance: under churn — 10 % of 5,000 endpoints changing every second for 20 s —
no existing name is ever NXDOMAIN (nor SERVFAIL, nor empty).

50 Services in one namespace, 100 endpoints each in two EndpointSlices of 50 (so every
answer is a merge of two slices): 25 headless, 25 with a ClusterIP. Each headless service
has 10 stable endpoints with hostnames (a StatefulSet's) that never change; the other 90
churn the way the EndpointSlice controller makes them churn: a pod replaced (new IP), a pod
going unready and back, a pod terminating, an endpoint moved from one slice to its sibling
(the sibling updated first, then the origin, as the controller orders creates before
deletes), and every 2 s a slice replaced by a new one of another name (created, then the old
deleted). The API server's state always has ready endpoints for every service, so a name
that is ever NXDOMAIN or empty was a half-applied update.

While that runs, queries over UDP (dnspython, as fast as one thread goes; a truncated
answer asked again over TCP, as stub resolvers do) and dig
processes (a real client, every ~0.3 s) ask for the headless names, the ClusterIP names
and the stable hostnames; each must be NOERROR with at least one A record (the ClusterIP
exactly). Afterwards every headless name must converge to exactly the API's ready set, and
the watcher must not have re-listed.

Needs skydns-watch-k8s (branch k8s); exits 77 without it.
"""
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dns.exception  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

import kubeapi  # noqa: E402
import skytest  # noqa: E402

NS = "churn"
ZONE = "cluster.local."
NSVC = 50
PER_SLICE = 50
STABLE = 10
SECONDS = float(os.environ.get("CHURN_SECONDS", "20"))
RATE = 500  # endpoint changes per second: 10 % of 5,000
TICK = 0.1
TOKEN = "churn-token"
c = skytest.Checks()


class Cluster:
    """The test's own model of the API state, to know the ready set at every moment."""

    def __init__(self, api):
        self.api = api
        self.rnd = random.Random(1201)
        self.next_ip = 0
        self.slices = {}  # service -> [slice name, slice name]
        self.eps = {}     # slice name -> list of endpoint dicts
        self.changes = 0
        self.renames = 0

    def ip(self):
        self.next_ip += 1
        k = self.next_ip
        return "10.%d.%d.%d" % (100 + (k >> 16), (k >> 8) & 255, k & 255)

    def build(self):
        for i in range(NSVC):
            headless = i < NSVC // 2
            name = ("hl-%02d" if headless else "ci-%02d") % i
            self.api.add(kubeapi.service(NS, name, "None" if headless else "10.97.0.%d" % (i + 1),
                                         ports=(("http", "TCP", 80),)))
            self.slices[name] = []
            for s in range(2):
                eps = []
                for e in range(PER_SLICE):
                    stable = headless and s == 0 and e < STABLE
                    eps.append(kubeapi.endpoint(self.ip(),
                                                hostname="stable-%d" % e if stable else None))
                sname = "%s-%d" % (name, s)
                self.eps[sname] = eps
                self.slices[name].append(sname)
                self.put(name, sname, add=True)

    def put(self, svc, sname, add=False):
        obj = kubeapi.endpointslice(NS, svc, sname, self.eps[sname], ports=(("http", "TCP", 80),))
        (self.api.add if add else self.api.update)(obj)

    @staticmethod
    def is_stable(ep):
        return ep.get("hostname", "").startswith("stable-")

    def ready_ips(self, svc):
        out = set()
        for sname in self.slices[svc]:
            for ep in self.eps[sname]:
                if ep["conditions"].get("ready", True):
                    out.add(ep["addresses"][0])
        return out

    def churn_slice(self, svc, sname, n):
        """Change n endpoints of one slice (a move also updates the sibling)."""
        eps = self.eps[sname]
        movable = [i for i, ep in enumerate(eps) if not self.is_stable(ep)]
        for i in self.rnd.sample(movable, min(n, len(movable))):
            op = self.rnd.random()
            if op < 0.4:  # pod replaced
                eps[i] = kubeapi.endpoint(self.ip())
            elif op < 0.7:  # readiness flips
                ready = not eps[i]["conditions"].get("ready", True)
                eps[i] = kubeapi.endpoint(eps[i]["addresses"][0], ready=ready, serving=ready)
            else:  # terminating (ready false, still serving), replaced next time
                eps[i] = kubeapi.endpoint(eps[i]["addresses"][0], ready=False, serving=True,
                                          terminating=True)
            self.changes += 1
        self.put(svc, sname)

    def move(self, svc):
        """One endpoint from slice 1 to slice 0: the sibling gains it first."""
        a, b = self.slices[svc]
        src = [i for i, ep in enumerate(self.eps[b]) if not self.is_stable(ep)]
        if not src:
            return
        i = self.rnd.choice(src)
        self.eps[a].append(self.eps[b].pop(i))
        self.put(svc, a)
        self.put(svc, b)
        self.changes += 1

    def rename(self, svc):
        """Replace slice 1 with a new slice of another name: create, then delete."""
        old = self.slices[svc][1]
        new = "%s-r%d" % (svc, self.renames)
        self.renames += 1
        self.eps[new] = self.eps.pop(old)
        self.slices[svc][1] = new
        self.put(svc, new, add=True)
        self.api.delete("endpointslices", NS, old)


class Asker:
    """Queries in a thread; every bad answer is kept (name, what, when)."""

    def __init__(self, port, names, cluster_ips):
        self.port, self.names, self.cluster_ips = port, names, cluster_ips
        self.bad = []
        self.count = 0
        self.digs = 0
        self.tcp = 0  # truncated UDP answers asked again over TCP
        self.stop = threading.Event()
        self.rnd = random.Random(7)

    def check(self, name, rcode, ips, how):
        self.count += 1
        want = self.cluster_ips.get(name)
        if rcode != "NOERROR" or not ips or (want and ips != {want}):
            self.bad.append((round(time.monotonic(), 3), how, name, rcode, sorted(ips)[:3]))

    def udp(self, name):
        """UDP, and over TCP when the answer is truncated, as a stub resolver does: a
        headless service's 50-100 addresses do not fit 1232 bytes."""
        q = dns.message.make_query(name, "A", use_edns=0, payload=1232)
        try:
            r = dns.message.from_wire(skytest.udp_query(self.port, q.to_wire(), timeout=2.0))
            if r.flags & dns.flags.TC:
                self.tcp += 1
                r = dns.message.from_wire(skytest.tcp_query(self.port, q.to_wire()))
        except (OSError, dns.exception.DNSException) as e:
            return "ERROR:%s" % e.__class__.__name__, set()
        return dns.rcode.to_text(r.rcode()), {rd.to_text() for rrset in r.answer
                                              if rrset.rdtype == dns.rdatatype.A
                                              for rd in rrset}

    def dig(self, name):
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(self.port), name, "A", "+notcp",
                            "+time=2", "+tries=1", "+noall", "+answer", "+comments"],
                           capture_output=True, text=True, timeout=10)
        rcode = "TIMEOUT"
        for line in r.stdout.splitlines():
            if "status:" in line:
                rcode = line.split("status:")[1].split(",")[0].strip()
        ips = {f.split()[4] for f in r.stdout.splitlines()
               if f and not f.startswith(";") and len(f.split()) == 5 and f.split()[3] == "A"}
        return rcode, ips

    def run_udp(self):
        while not self.stop.is_set():
            name = self.rnd.choice(self.names)
            self.check(name, *self.udp(name), how="udp")

    def run_dig(self):
        rnd = random.Random(9)
        while not self.stop.wait(0.3):
            name = rnd.choice(self.names)
            self.check(name, *self.dig(name), how="dig")
            self.digs += 1


def http_status(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def wait_for(cond, deadline, step=0.05):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


def main():
    watcher = os.path.join(os.path.dirname(skytest.SKYDNS), "skydns-watch-k8s")
    if not os.path.exists(watcher):
        c.skip("%s is not built (the Kubernetes watcher)" % watcher)
    api = kubeapi.KubeAPI(skytest.free_port(), token=TOKEN, bookmark_interval=1.0).start()
    cl = Cluster(api)
    cl.build()
    aport = skytest.free_port()
    srv = skytest.Skydns(extra_conf="[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                         "[Kubernetes]\nenable = true\nserver = %s\ntoken-file = @TOK@\n"
                         % (aport, api.url))
    tok = os.path.join(srv.dir, "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    with open(srv.conf) as f:
        text = f.read().replace("@TOK@", tok)
    with open(srv.conf, "w") as f:
        f.write(text)
    try:
        srv.start()
        c.ok(wait_for(lambda: http_status(aport, "/ready") == 200, 60), "skydns ready (synced)")
        headless = [s for s in cl.slices if s.startswith("hl-")]
        fq = {s: "%s.%s.svc.%s" % (s, NS, ZONE) for s in cl.slices}
        cluster_ips = {fq["ci-%02d" % i]: "10.97.0.%d" % (i + 1) for i in range(NSVC // 2, NSVC)}
        names = list(fq.values()) + ["stable-%d.%s.%s.svc.%s" % (e, s, NS, ZONE)
                                     for s in headless for e in range(STABLE)]
        ask = Asker(srv.port, names, cluster_ips)
        # Before the churn: everything answers (else the churn check proves nothing).
        for n in names:
            ask.check(n, *ask.udp(n), how="before")
        c.eq(ask.bad, [], "every name answers before the churn")
        ask.bad = []
        lists0 = api.counters()["lists"]

        threads = [threading.Thread(target=ask.run_udp), threading.Thread(target=ask.run_dig)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        tick = 0
        all_slices = [(s, sn) for s in cl.slices for sn in range(2)]
        per_tick = int(RATE * TICK)  # endpoint changes per tick
        while time.monotonic() - t0 < SECONDS:
            due = t0 + tick * TICK
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            done = 0
            while done < per_tick:
                svc, sn = cl.rnd.choice(all_slices)
                if cl.rnd.random() < 0.1:
                    cl.move(svc)
                    done += 1
                else:
                    cl.churn_slice(svc, cl.slices[svc][sn], 10)
                    done += 10
            if tick % int(2 / TICK) == 0:
                cl.rename(cl.rnd.choice(list(cl.slices)))
            tick += 1
        elapsed = time.monotonic() - t0
        ask.stop.set()
        for t in threads:
            t.join(30)
        print("churn: %d endpoint changes in %.1f s (%.0f/s), %d slice renames, %d queries "
              "(%d dig, %d retried over TCP)" % (cl.changes, elapsed, cl.changes / elapsed, cl.renames,
                                              ask.count, ask.digs, ask.tcp), flush=True)
        c.ok(cl.changes >= 0.8 * RATE * SECONDS, "the churn ran at >= 80 %% of %d/s" % RATE)
        c.ok(ask.count > 1000 and ask.digs > 10, "queries ran through the churn")
        for b in ask.bad[:10]:
            print("  bad answer: %r" % (b,))
        c.eq(len(ask.bad), 0, "bad answers (NXDOMAIN, SERVFAIL, empty, wrong ClusterIP) "
             "during the churn")

        # Converged: every headless name answers exactly the API's ready set.
        for s in headless:
            want = cl.ready_ips(s)
            got = set()

            def same():
                nonlocal got
                got = ask.udp(fq[s])[1]
                return got == want
            if not wait_for(same, 10):
                c.eq(sorted(got), sorted(want), "%s converged to the API's ready set" % s)
                break
        else:
            c.ok(True, "every headless name converged to the API's ready set")
        cnt = api.counters()
        c.eq([cnt["lists"][r] - lists0[r] for r in ("services", "endpointslices")], [0, 0],
             "no re-list during the churn")
    finally:
        srv.stop()
        api.stop()
        import shutil
        shutil.rmtree(srv.dir, ignore_errors=True)
    c.finish()


if __name__ == "__main__":
    main()
