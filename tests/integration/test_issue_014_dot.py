"""
Issue 14, DNS over TLS to upstreams (RFC 7858).

A throwaway CA and a server certificate for "dot.example" (openssl, in a temp
dir); Unbound serves DoT on one loopback port and plain DNS on another, with
local data only (the root is a static local zone: nothing goes out).

1. `nameservers = tls://127.0.0.1:<port>@dot.example` with `tls-cafile` =
   the CA: a forwarded name gets Unbound's answer.
2. 50 distinct names (cold cache): all answered, over ONE TLS connection
   (established connections from skydns to the DoT port, by `ss`, and the
   "connecting" debug lines in skydns's log).
3. `@wrong.example`: the certificate does not match, so SERVFAIL with no
   answer, and a log line naming the certificate failure.
4. A mixed list (a plain server and a tls:// one) passes -check-config; bad
   tls:// forms are refused.

Before this change `tls://` was refused by the config parser, so every check
failed. DOT_BENCH=1 also prints cold-cache queries/s and skydns CPU per query,
DoT vs plain UDP (bounded: 2 x 400 queries). Ends "N passed, N failed".
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import SKYDNS, Checks, Skydns, free_port, udp_query  # noqa: E402

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

C = Checks()
NAMES = 50


def make_certs(d):
    """CA + server cert for dot.example, and an unrelated name check later."""
    def run(*a):
        subprocess.run(a, cwd=d, check=True, capture_output=True, timeout=60)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=skydns test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key",
        "-out", "srv.csr", "-subj", "/CN=dot.example")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:dot.example\n")
    run("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")


def start_unbound(d, tls_port, udp_port):
    data = "\n".join('  local-data: "n%d.dot.test. 300 IN A 192.0.2.%d"' % (i, i % 250 + 1)
                     for i in range(NAMES))
    conf = os.path.join(d, "unbound.conf")
    with open(conf, "w") as f:
        f.write("""server:
  interface: 127.0.0.1@%d
  interface: 127.0.0.1@%d
  tls-port: %d
  tls-service-key: "%s/srv.key"
  tls-service-pem: "%s/srv.pem"
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "%s"
  pidfile: ""
  use-syslog: no
  logfile: "%s/unbound.log"
  verbosity: 1
  access-control: 127.0.0.0/8 allow
  tcp-idle-timeout: 60000
  incoming-num-tcp: 64
  local-zone: "." static
  local-zone: "dot.test." static
  local-data: "dot.test. 300 IN SOA ns.dot.test. h.dot.test. 1 3600 600 86400 60"
  local-data: "dot.test. 300 IN A 192.0.2.53"
%s
remote-control:
  control-enable: no
""" % (tls_port, udp_port, tls_port, d, d, d, d, data))
    p = subprocess.Popen(["unbound", "-d", "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT)
    q = dns.message.make_query("dot.test.", "A").to_wire()
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if p.poll() is not None:
            break
        try:
            udp_query(udp_port, q, timeout=0.2)
            return p
        except OSError:
            time.sleep(0.1)
    p.kill()
    p.wait()
    log = open(os.path.join(d, "unbound.log")).read() if os.path.exists(
        os.path.join(d, "unbound.log")) else ""
    raise RuntimeError("unbound did not start: " + log)


def ask(port, name, timeout=4.0):
    q = dns.message.make_query(name, "A")
    return dns.message.from_wire(udp_query(port, q.to_wire(), timeout=timeout))


def addrs(r):
    return sorted(rd.address for rr in r.answer for rd in rr)


def established(port, pid):
    """Established TCP connections of process pid to 127.0.0.1:port."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", "dst", "127.0.0.1:%d" % port],
                         capture_output=True, text=True, timeout=10).stdout
    return sum(1 for line in out.splitlines() if "pid=%d," % pid in line)


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def bench(sky, prefix, n=int(os.environ.get("DOT_BENCH_N", "400"))):
    """Sequential cold-cache queries (NXDOMAIN names: every one is forwarded)."""
    c0, t0 = cpu_s(sky.proc.pid), time.monotonic()
    ok = 0
    for i in range(n):
        try:
            r = ask(sky.port, "%s%d.dot.test." % (prefix, i), timeout=2.0)
            ok += r.rcode() == dns.rcode.NXDOMAIN
        except OSError:
            pass
        if time.monotonic() - t0 > 60:
            break
    dt, dc = time.monotonic() - t0, cpu_s(sky.proc.pid) - c0
    return ok, ok / dt if dt else 0, dc / max(ok, 1) * 1e6


def check_config(text):
    d = tempfile.mkdtemp(prefix="skydns-dotconf-")
    try:
        path = os.path.join(d, "c.conf")
        with open(path, "w") as f:
            f.write("[Dns]\n%s\n[Store]\ndata-dir = %s\n" % (text, d))
        r = subprocess.run([SKYDNS, "-config-file", path, "-check-config"],
                           capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout + r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    if not shutil.which("unbound") or not shutil.which("openssl") or not shutil.which("ss"):
        C.skip("unbound, openssl or ss missing (./dev.sh deps)")
    tmp = tempfile.mkdtemp(prefix="skydns-dot-")
    unb = None
    try:
        make_certs(tmp)
        tls_port, udp_port = free_port(), free_port()
        unb = start_unbound(tmp, tls_port, udp_port)
        ca = os.path.join(tmp, "ca.pem")

        # 4. config forms
        rc, out = check_config("nameservers = 127.0.0.1:%d,tls://127.0.0.1:%d@dot.example\n"
                               "tls-cafile = %s" % (udp_port, tls_port, ca))
        C.eq(rc, 0, "mixed plain + tls:// nameservers pass -check-config (%s)" % out.strip())
        for bad in ("tls://127.0.0.1:853", "tls://@dot.example", "tls://127.0.0.1@"):
            rc, out = check_config("nameservers = %s" % bad)
            C.ok(rc != 0, "-check-config refuses %r" % bad)

        # 1 + 2: answers over one reused connection
        extra = "nameservers = tls://127.0.0.1:%d@dot.example\ntls-cafile = %s\n" % (
            tls_port, ca)
        with Skydns(extra_conf=extra) as sky:
            with open(sky.conf) as f:  # debug: the "connecting" lines
                txt = f.read().replace("log-level = info", "log-level = debug")
            with open(sky.conf, "w") as f:
                f.write(txt)
            sky.start()
            r = ask(sky.port, "dot.test.")
            C.eq(r.rcode(), dns.rcode.NOERROR, "dot.test. over DoT: rcode")
            C.eq(addrs(r), ["192.0.2.53"], "dot.test. over DoT: the answer")
            got = 0
            for i in range(NAMES):
                r = ask(sky.port, "n%d.dot.test." % i)
                got += addrs(r) == ["192.0.2.%d" % (i % 250 + 1)]
            C.eq(got, NAMES, "distinct names answered over DoT")
            conns = established(tls_port, sky.proc.pid)
            C.eq(conns, 1, "established TLS connections from skydns to unbound")
            with open(sky.log, errors="replace") as f:
                log = f.read()
            n_connect = log.count("connecting (connection")
            C.eq(n_connect, 1, "connections opened (skydns debug log)")
            C.ok("failing" not in log, "no DoT failure logged on the good config")

            if os.environ.get("DOT_BENCH"):
                ok, qps, us = bench(sky, "cold")
                print("BENCH DoT: %d answered, %.0f q/s, %.0f us CPU/query" % (ok, qps, us))

        if os.environ.get("DOT_BENCH"):
            with Skydns(extra_conf="nameservers = 127.0.0.1:%d\n" % udp_port) as sky:
                sky.start()
                ok, qps, us = bench(sky, "plain")
                print("BENCH UDP: %d answered, %.0f q/s, %.0f us CPU/query" % (ok, qps, us))

        # 3. a certificate that does not match the name: refused
        extra = "nameservers = tls://127.0.0.1:%d@wrong.example\ntls-cafile = %s\n" % (
            tls_port, ca)
        with Skydns(extra_conf=extra) as sky:
            sky.start()
            r = ask(sky.port, "dot.test.", timeout=8.0)
            C.eq(r.rcode(), dns.rcode.SERVFAIL, "wrong certificate name: SERVFAIL")
            C.eq(addrs(r), [], "wrong certificate name: no answer from the upstream")
            r = ask(sky.port, "n1.dot.test.", timeout=8.0)
            C.eq(r.rcode(), dns.rcode.SERVFAIL, "wrong certificate name: still SERVFAIL")
            time.sleep(0.2)
            with open(sky.log, errors="replace") as f:
                log = f.read()
            lines = [l for l in log.splitlines() if "certificate verification failed" in l]
            C.ok(len(lines) >= 1 and "wrong.example" in lines[0],
                 "log names the certificate failure: %r" % lines[:1])
            C.ok(len(lines) <= 1, "the failure is logged once per state change, got %d"
                 % len(lines))

        # 3b. a CA that did not sign the server's certificate
        other = os.path.join(tmp, "other")
        os.mkdir(other)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=other CA"],
                       cwd=other, check=True, capture_output=True, timeout=60)
        extra = "nameservers = tls://127.0.0.1:%d@dot.example\ntls-cafile = %s/ca.pem\n" % (
            tls_port, other)
        with Skydns(extra_conf=extra) as sky:
            sky.start()
            r = ask(sky.port, "dot.test.", timeout=8.0)
            C.eq(r.rcode(), dns.rcode.SERVFAIL, "untrusted CA: SERVFAIL")
            time.sleep(0.2)
            with open(sky.log, errors="replace") as f:
                C.ok("certificate verification failed" in f.read(),
                     "untrusted CA: the certificate failure is logged")
    finally:
        if unb:
            unb.terminate()
            try:
                unb.wait(timeout=10)
            except subprocess.TimeoutExpired:
                unb.kill()
                unb.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    C.finish()


main()
