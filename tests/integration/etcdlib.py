"""
Helpers for the etcd integration tests: a real single-member etcd (Debian's
etcd-server) in a temp dir on loopback ports below 32768, etcdctl (v3 API)
to change it, and skydns started with [Etcd] pointing at it.

Ports: the kernel's ephemeral range starts at 32768, so ports are picked at
random below it and checked free (the project's rule for test ports).
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import dns.message
import dns.rcode
import dns.rdatatype

import skytest

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


_handed_out = set()  # ports given to this test already: free now, taken once started


def low_port(taken=()):
    """A port below 32768 free for TCP and UDP on 127.0.0.1, not handed out before."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        if port in taken or port in _handed_out:
            continue
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", port))
            u.bind(("127.0.0.1", port))
            _handed_out.add(port)
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port below 32768")


class Etcd:
    """One etcd member on loopback; start(), stop(), kill(); data kept across restarts."""

    def __init__(self, root, extra_args=(), tls=None):
        self.extra_args = list(extra_args)
        self.tls = tls  # make_certs() paths: clients must show a cert signed by the CA
        self.user = None  # "name:password" for etcdctl once auth is on
        self.dir = os.path.join(root, "etcd")
        os.makedirs(self.dir, exist_ok=True)
        self.cport = low_port()
        self.pport = low_port({self.cport})
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.cport)
        if tls:
            self.extra_args += ["--cert-file", tls["srv.pem"], "--key-file", tls["srv.key"],
                                "--client-cert-auth", "--trusted-ca-file", tls["ca.pem"]]
        self.proc = None

    def start(self, deadline=30.0):
        self.start_async()
        return self.wait_healthy(deadline)

    def start_async(self):
        peer = "http://127.0.0.1:%d" % self.pport
        self.log = open(os.path.join(self.dir, "etcd.log"), "a")
        args = ["--name", "m1", "--initial-cluster", "m1=" + peer]
        if "--initial-cluster" in self.extra_args:
            args = []
        self.proc = subprocess.Popen(
            [ETCD, "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--log-level", "warn"] + args + self.extra_args,
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self, deadline=30.0):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("etcd exited: see %s" % self.log.name)
            if self.tls:
                try:
                    self.ctl("endpoint", "health")
                    return self
                except RuntimeError:
                    pass
            else:
                try:
                    with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                        if b'"true"' in r.read():
                            return self
                except (OSError, urllib.error.URLError):
                    pass
            time.sleep(0.1)
        raise RuntimeError("etcd did not become healthy")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def ctl(self, *args):
        env = dict(os.environ, ETCDCTL_API="3")
        user = ["--user", self.user] if self.user else []
        if self.tls:
            user += ["--cacert", self.tls["ca.pem"], "--cert", self.tls["cli.pem"], "--key",
                     self.tls["cli.key"]]
        r = subprocess.run([ETCDCTL, "--endpoints", self.url] + user + list(args), env=env,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("etcdctl %s: %s" % (" ".join(args), r.stderr))
        return r.stdout

    def put(self, key, value):
        self.ctl("put", key, value)

    def delete(self, key):
        self.ctl("del", key)

    def put_fast(self, key, value):
        """One put through the JSON gateway (no etcdctl process): for many puts."""
        import base64
        body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                           "value": base64.b64encode(value.encode()).decode()}).encode()
        with urllib.request.urlopen(urllib.request.Request(self.url + "/v3/kv/put", body),
                                    timeout=10) as r:
            r.read()

    def revision(self):
        out = self.ctl("endpoint", "status", "-w", "json")
        return int(re.search(r'"revision":(\d+)', out).group(1))

    def compact(self, rev=None):
        self.ctl("compact", str(rev or self.revision()))

    def items(self, prefix="/skydns/"):
        """Every key under prefix -> value (etcdctl prints key and value lines)."""
        out = self.ctl("get", "--prefix", prefix).splitlines()
        return dict(zip(out[0::2], out[1::2]))


def make_certs(d):
    """A CA, a server cert for 127.0.0.1 and a client cert, with openssl; returns paths."""
    os.makedirs(d, exist_ok=True)
    p = {k: os.path.join(d, k) for k in
         ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem", "cli.key", "cli.csr", "cli.pem",
          "ext.cnf")}

    def run(*a):
        subprocess.run(["openssl"] + list(a), check=True, capture_output=True, timeout=60)
    with open(p["ext.cnf"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["ca.key"], "-out",
        p["ca.pem"], "-days", "2", "-subj", "/CN=skydns-test-ca")
    for who in ("srv", "cli"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p[who + ".key"], "-out",
            p[who + ".csr"], "-subj", "/CN=" + who)
        run("x509", "-req", "-in", p[who + ".csr"], "-CA", p["ca.pem"], "-CAkey", p["ca.key"],
            "-CAcreateserial", "-out", p[who + ".pem"], "-days", "2", "-extfile", p["ext.cnf"])
    return p


class EtcdCluster:
    """n members on loopback, one data dir each; members[i] has start/stop/kill and ctl."""

    def __init__(self, root, n=3):
        taken = set()
        self.members = []
        for i in range(n):
            m = Etcd(os.path.join(root, "m%d" % i))
            taken |= {m.cport, m.pport}
            while m.pport in taken - {m.pport} or m.cport in taken - {m.cport}:
                m.cport, m.pport = low_port(taken), low_port(taken)
            m.url = "http://127.0.0.1:%d" % m.cport
            m.name = "m%d" % i
            self.members.append(m)
        self.initial = ",".join("%s=http://127.0.0.1:%d" % (m.name, m.pport)
                                for m in self.members)
        for m in self.members:
            m.extra_args = ["--initial-cluster", self.initial, "--name", m.name]

    def urls(self):
        return ",".join(m.url for m in self.members)

    def start(self, deadline=60.0):
        for m in self.members:
            m.start_async()
        for m in self.members:
            m.wait_healthy(deadline)
        return self

    def stop(self):
        for m in self.members:
            m.stop()


class Skydns:
    """skydns with the etcd watcher, on low ports, in root; start()/stop() keep its store."""

    def __init__(self, root, etcd_url, domain="skydns.local.", etcd_extra=""):
        self.dir = root
        os.makedirs(root, exist_ok=True)
        self.port = low_port()
        self.api_port = low_port({self.port})
        self.conf = os.path.join(root, "skydns.conf")
        self.logpath = os.path.join(root, "skydns.out")
        with open(self.conf, "w") as f:
            f.write("[Dns]\ndns-addr = 127.0.0.1:%d\nworkers = 1\ndns-domains = %s\n"
                    "nameservers = 127.0.0.1:9\n"
                    "[Store]\ndata-dir = %s/store\nmap-size = 256M\n"
                    "[Log]\nlog-to-stdio = true\nlog-level = info\n"
                    "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                    "[Etcd]\netcd-servers = %s\n%s\n"
                    % (self.port, domain, root, self.api_port, etcd_url, etcd_extra))
        self.proc = None

    def start(self, deadline=15.0):
        self.out = open(self.logpath, "a")
        self.mark = os.path.getsize(self.logpath)
        self.proc = subprocess.Popen([skytest.SKYDNS, "-config-file", self.conf],
                                     stdout=self.out, stderr=subprocess.STDOUT)
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
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self, since_start=False):
        with open(self.logpath) as f:
            if since_start:
                f.seek(self.mark)
            return f.read()

    def ready(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/ready" % self.api_port,
                                        timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return 0

    def metrics(self):
        """The /metrics samples without labels' quoting: {'name{labels}': float}."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.api_port,
                                    timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def query(self, name, qtype="A"):
        q = dns.message.make_query(name, qtype)
        return dns.message.from_wire(skytest.udp_query(self.port, q.to_wire(), timeout=2.0))

    def answer(self, name, qtype="A"):
        """(rcode, sorted texts of the answer's records of qtype)."""
        r = self.query(name, qtype)
        want = dns.rdatatype.from_text(qtype)
        out = []
        for rrset in r.answer:
            if rrset.rdtype == want:
                out += [rd.to_text() for rd in rrset]
        return r.rcode(), sorted(out)

    def watcher_pid(self):
        pids = re.findall(r"child: started \S+skydns-watch-etcd \(pid (\d+)\)", self.log())
        return int(pids[-1]) if pids else 0


def wait_for(cond, deadline, step=0.02):
    """Poll cond() until true or deadline seconds; returns the elapsed seconds or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def tempdir():
    return tempfile.mkdtemp(prefix="skydns-etcd-")
