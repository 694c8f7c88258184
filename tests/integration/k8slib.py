"""
skydns with the Kubernetes watcher for the integration tests: the real daemon
(which starts and supervises skydns-watch-k8s) pointed at a kubeapi.KubeAPI,
in a temp dir whose store survives stop()/start(); answers asked with dig over
UDP or TCP.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import dns.message

import skytest

ZONE = "cluster.local."


class Skydns:
    def __init__(self, api_url, token="test-token", extra_k8s="", ttl=5, domains=None):
        self.dir = tempfile.mkdtemp(prefix="skydns-k8s-")
        self.port = skytest.free_port()
        self.api_port = skytest.free_port()
        self.conf = os.path.join(self.dir, "skydns.conf")
        self.logpath = os.path.join(self.dir, "skydns.out")
        tokfile = os.path.join(self.dir, "token")
        with open(tokfile, "w") as f:
            f.write(token + "\n")
        with open(self.conf, "w") as f:
            f.write("[Dns]\ndns-addr = 127.0.0.1:%d\nworkers = 1\n%s"
                    "[Store]\ndata-dir = %s/store\nmap-size = 256M\n"
                    "[Log]\nlog-to-stdio = true\nlog-level = info\n"
                    "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                    "[Kubernetes]\nenable = true\nserver = %s\ntoken-file = %s\nttl = %d\n%s\n"
                    % (self.port, "dns-domains = %s\n" % domains if domains else "",
                       self.dir, self.api_port, api_url, tokfile, ttl, extra_k8s))
        self.proc = None
        self.mark = 0

    def start(self, deadline=15.0):
        self.out = open(self.logpath, "a")
        self.mark = os.path.getsize(self.logpath)
        env = dict(os.environ)
        env.setdefault("SKYDNS_WATCH_K8S",
                       os.path.join(os.path.dirname(skytest.SKYDNS), "skydns-watch-k8s"))
        self.proc = subprocess.Popen([skytest.SKYDNS, "-config-file", self.conf],
                                     stdout=self.out, stderr=subprocess.STDOUT, env=env)
        end = time.monotonic() + deadline
        q = dns.message.make_query("skydns.local.", "SOA")
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                skytest.udp_query(self.port, q.to_wire(), timeout=0.2)
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("skydns did not start:\n" + self.log())

    def stop(self):
        """SIGTERM; True when skydns exited 0 in time."""
        if not self.proc:
            return True
        ok = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                ok = self.proc.wait(timeout=20) == 0
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                ok = False
        else:
            ok = False
        self.proc = None
        self.out.close()
        return ok

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self, since_start=False):
        with open(self.logpath, errors="replace") as f:
            if since_start:
                f.seek(self.mark)
            return f.read()

    def http(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.api_port, path),
                                        timeout=3) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def metrics(self):
        _, text = self.http("/metrics")
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def dig(self, name, qtype="A", tcp=False):
        """(rcode text, sorted answer rdata texts of qtype, aa flag) from dig."""
        cmd = ["dig", "@127.0.0.1", "-p", str(self.port), name, qtype, "+norec",
               "+noall", "+answer", "+comments", "+time=2", "+tries=1",
               "+tcp" if tcp else "+notcp"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        m = re.search(r"status: (\w+)", r.stdout)
        flags = re.search(r";; flags: ([a-z ]+);", r.stdout)
        rcode = m.group(1) if m else "TIMEOUT"
        ans = []
        for line in r.stdout.splitlines():
            if not line or line.startswith(";"):
                continue
            f = line.split(None, 4)
            if len(f) == 5 and f[3] == qtype:
                ans.append(f[4])
        return rcode, sorted(ans), bool(flags and "aa" in flags.group(1).split())

    def answer(self, name, qtype="A", tcp=False):
        rc, ans, _ = self.dig(name, qtype, tcp)
        return rc, ans


def wait_for(cond, deadline, step=0.05):
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None
