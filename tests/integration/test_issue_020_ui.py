"""
Issue 20 acceptance: the status page, driven in a real headless browser.

Method: the real skydns (2 workers, a zone, an API on loopback, forwarding to
a real NSD) under a bounded dnsperf load; Debian's chromium --headless driven
over the DevTools protocol (python3-websocket). The test reads the rendered
DOM, never the page's own variables:
  - the graphs get data points, the points move between two reads, and the
    queries/s the page shows agree with the rate the API's counters give;
  - an address set DOWN with `skydns -set-status` and one set DOWN through the
    API show as DOWN in the health table, with who said so and the names that
    use them;
  - the lookup box answers a local name (the DOWN address left out, as a
    worker answers, the zone import named as the source) and says a foreign
    name would be forwarded;
  - no console error or exception, and every request the page makes goes to
    the skydns origin (DevTools Network events; the CSP is 'self' only);
  - with api-token set, the page asks for the token, sends it as an
    Authorization header once given, and never puts it in a URL; a foreign
    Host or Origin is refused for the page as for the API.
It also measures what polling costs skydns (printed, with a loose bound), and,
with a real etcd, checks the watcher's card (synced at etcd's revision, its
process killed and restarted) and a lookup naming etcd as the source.
SKYDNS_UI_SCREENSHOT=/path.png saves screenshots of the page.
Skips (77) when chromium or python3-websocket is missing.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from skytest import SKYDNS, Checks, Skydns, free_port, http_request, start_nsd, wait_api

c = Checks()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    import websocket  # python3-websocket
except ImportError:
    websocket = None
if not CHROMIUM:
    c.skip("chromium is not installed (Debian package chromium)")
if websocket is None:
    c.skip("python3-websocket is not installed")
if not shutil.which("dnsperf") or not shutil.which("nsd"):
    c.skip("dnsperf or nsd is not installed")

ZONE = """$ORIGIN skydns.local.
web A 10.0.0.1
web A 10.0.0.2
web A 10.0.0.3
alias CNAME web
db A 10.0.0.3
"""
UPZONE = """$ORIGIN example.test.
@ 3600 SOA ns.example.test. h.example.test. 1 3600 600 86400 60
@ 3600 NS ns.example.test.
ns 3600 A 127.0.0.1
www 3600 A 192.0.2.80
"""


class Browser:
    """chromium --headless with one page, driven over DevTools; events are collected."""

    def __init__(self, workdir):
        self.port = free_port()
        self.profile = os.path.join(workdir, "chromium")
        os.makedirs(workdir, exist_ok=True)
        self.log = open(os.path.join(workdir, "chromium.log"), "w")
        # Nothing may leave the machine: every non-loopback host goes to a dead proxy
        # and resolves to nothing; background services are off.
        self.proc = subprocess.Popen([
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=%d" % self.port,
            "--user-data-dir=" + self.profile, "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", "--no-pings",
            "--disable-domain-reliability", "--disable-client-side-phishing-detection",
            "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
            "AutofillServerCommunication,CertificateTransparencyComponentUpdater",
            "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--window-size=1280,1800", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.ws = None
        self.seq = 0
        self.events = []
        end = time.monotonic() + 30
        while time.monotonic() < end and self.ws is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port,
                                            timeout=1) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"],
                                                          timeout=10, suppress_origin=True)
            except (OSError, ValueError):
                time.sleep(0.2)
        if self.ws is None:
            self.close()
            raise RuntimeError("chromium did not offer a DevTools page")
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(domain + ".enable")

    def call(self, method, **params):
        self.seq += 1
        want = self.seq
        self.ws.send(json.dumps({"id": want, "method": method, "params": params}))
        end = time.monotonic() + 20
        while time.monotonic() < end:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise RuntimeError("%s: no reply" % method)

    def js(self, expr):
        """Evaluate in the page; returns the value (JSON-serializable) or None."""
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("page JS failed: %s" % r["exceptionDetails"])
        return r.get("result", {}).get("value")

    def wait(self, expr, within=20.0):
        """Poll a JS expression until it is truthy; returns its last value."""
        end = time.monotonic() + within
        v = None
        while time.monotonic() < end:
            try:
                v = self.js(expr)
            except RuntimeError:  # the page is not there yet
                v = None
            if v:
                return v
            time.sleep(0.25)
        return v

    def drain(self, seconds=0.0):
        """Collect events that arrived without a call."""
        end = time.monotonic() + seconds
        self.ws.settimeout(0.1)
        while True:
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                if time.monotonic() >= end:
                    break
        self.ws.settimeout(10)

    def requests(self):
        return [e["params"]["request"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def errors(self, allow=()):
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append("exception: %s" % p.get("exceptionDetails", {}).get("text"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.%s: %s" % (p["type"], [a.get("value") for a in p["args"]]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                text = p["entry"].get("text", "")
                if not any(a in text for a in allow):
                    out.append("log: %s (%s)" % (text, p["entry"].get("url")))
        return out

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png",
                         captureBeyondViewport=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        if self.ws is not None:
            try:
                self.ws.close()
            except OSError:
                pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def live(api, headers=None):
    st, body = http_request(api, "GET", "/skydns/stats/live", headers=headers)
    return json.loads(body) if st == 200 else None


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def dnsperf(port, qfile, seconds, qps, mode="udp"):
    return subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
                             "-l", str(seconds), "-Q", str(qps), "-c", "4", "-q", "100",
                             "-m", mode],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def measure_cost(d, api):
    """Requests/s of /skydns/stats/live, one client in a row, bounded at 3 s."""
    n, end = 0, time.monotonic() + 3.0
    t0 = cpu_ticks(d.proc.pid)
    start = time.monotonic()
    while time.monotonic() < end and n < 20000:
        st, _ = http_request(api, "GET", "/skydns/stats/live")
        if st != 200:
            break
        n += 1
    el = time.monotonic() - start
    ticks = cpu_ticks(d.proc.pid) - t0
    hz = os.sysconf("SC_CLK_TCK")
    return n / el, (ticks / hz) / max(n, 1) * 1e3


def main_phase(work):
    nsd, upport = start_nsd(os.path.join(work, "nsd"), "example.test", UPZONE)
    api = free_port()
    extra = ("nameservers = 127.0.0.1:%d\n[Api]\napi-enable = true\n"
             "api-address = 127.0.0.1:%d\n" % (upport, api))
    qfile = os.path.join(work, "queries.txt")
    with open(qfile, "w") as f:
        f.write("web.skydns.local. A\nalias.skydns.local. A\ndb.skydns.local. A\n"
                "nx.skydns.local. A\nwww.example.test. A\n" * 5)
    br = None
    try:
        with Skydns(ZONE, extra_conf=extra, workers=2) as d:
            d.start()
            c.ok(wait_api(api), "API up")
            perf = dnsperf(d.port, qfile, 40, 400)
            perf_tcp = dnsperf(d.port, qfile, 40, 40, "tcp")
            br = Browser(work)
            br.call("Page.navigate", url="http://127.0.0.1:%d/" % api)
            c.ok(br.wait("+(document.body && document.body.dataset.polls || 0) >= 4", 20),
                 "the page polled /skydns/stats/live at least 4 times")
            # Graphs: points exist and move.
            pts1 = br.js("Array.from(document.querySelectorAll('canvas')).map(c => +(c.dataset.points || 0))")
            time.sleep(3)
            pts2 = br.js("Array.from(document.querySelectorAll('canvas')).map(c => +(c.dataset.points || 0))")
            c.eq(len(pts1 or []), 5, "five graphs drawn")
            c.ok(pts1 and all(p > 0 for p in pts1[:3] + pts1[4:]),
                 "qps, rcode, forwarded and latency graphs have data points: %s" % pts1)
            c.ok(pts2 and all(b > a for a, b in zip(pts1[:3], pts2[:3])),
                 "the points move between two reads 3 s apart: %s -> %s" % (pts1, pts2))
            # QPS on the page vs the API's counters.
            a = live(api)
            time.sleep(2)
            b = live(api)
            rate = (b["counters"]["queries"] - a["counters"]["queries"]) / (
                (b["time_ms"] - a["time_ms"]) / 1000.0)
            page_qps = br.js("+document.querySelector('#l-qps b[data-series=\"total\"]').dataset.value")
            c.ok(page_qps and rate > 50 and 0.5 * rate < page_qps < 1.5 * rate,
                 "page QPS %s agrees with the API's rate %.0f/s" % (page_qps, rate))
            udp = br.js("+document.querySelector('#l-qps b[data-series=\"udp\"]').dataset.value")
            tcp = br.js("+document.querySelector('#l-qps b[data-series=\"tcp\"]').dataset.value")
            c.ok(udp > 0 and tcp > 0, "by transport: udp %s tcp %s" % (udp, tcp))
            fwd = br.js("+document.querySelector('#l-fwd b[data-series=\"forwarded\"]').dataset.value")
            c.ok(fwd > 0, "forwarded queries/s shown (%s)" % fwd)
            nx = br.js("+document.querySelector('#l-rcode b[data-series=\"NXDOMAIN\"]').dataset.value")
            c.ok(nx > 0, "NXDOMAIN answers/s shown (%s)" % nx)
            p99 = br.js("+document.querySelector('#l-lat b[data-series=\"p99\"]').dataset.value")
            c.ok(p99 > 0, "p99 latency shown (%s us)" % p99)
            c.ok(br.wait("document.querySelector('#upstreams tr[data-server=\"127.0.0.1:%d\"]')"
                         " ? document.querySelector('#upstreams tr[data-server=\"127.0.0.1:%d\"]').textContent : ''"
                         % (upport, upport), 10), "the upstream server is listed")

            # Health: one DOWN by -set-status (another process), one through the API.
            r = subprocess.run([SKYDNS, "-config-file", d.conf, "-set-status", "10.0.0.2", "DOWN"],
                               capture_output=True, text=True, timeout=30)
            c.eq(r.returncode, 0, "-set-status 10.0.0.2 DOWN")
            st, _ = http_request(api, "PUT", "/skydns/status/10.0.0.3", b'{"status":"DOWN"}',
                                 {"Content-Type": "application/json"})
            c.eq(st, 200, "PUT /skydns/status/10.0.0.3 DOWN")
            row = ("(() => { const r = document.querySelector('#health tr[data-ip=\"%s\"]');"
                   " return r && r.dataset.status === 'DOWN' && r.textContent.includes('.skydns.local.')"
                   " ? Array.from(r.cells).map(x => x.textContent) : null; })()")
            r2 = br.wait(row % "10.0.0.2", 15)
            c.ok(r2 and r2[1] == "DOWN" and r2[3] == "cli" and "web.skydns.local." in r2[4]
                 and "ago" in r2[2], "health row for 10.0.0.2 (-set-status): %s" % r2)
            r3 = br.wait(row % "10.0.0.3", 15)
            c.ok(r3 and r3[3] == "api" and "web.skydns.local." in r3[4]
                 and "db.skydns.local." in r3[4], "health row for 10.0.0.3 (API): %s" % r3)

            # Lookup box: a local name, answered as a worker would (DOWN addresses gone).
            br.js("document.getElementById('lk-name').value = 'alias';"
                  "document.getElementById('lk-type').value = 'A';"
                  "document.getElementById('lookup').requestSubmit(); true")
            rows = br.wait("(() => { const t = document.getElementById('lk-table');"
                           " return t ? Array.from(t.tBodies[0].rows).map(r =>"
                           " Array.from(r.cells).map(x => x.textContent)) : null; })()", 10)
            c.eq(br.js("document.getElementById('lk-rcode') && document.getElementById('lk-rcode').textContent"),
                 "NOERROR", "lookup of alias A: rcode")
            ans = [x for x in rows or [] if x[0] == "answer"]
            c.ok(len(ans) == 2 and ans[0][2] == "CNAME" and ans[0][4] == "web.skydns.local."
                 and ans[1][4] == "10.0.0.1" and ans[1][5] == "import:skydns.local.",
                 "lookup answer: CNAME then the one UP address, source named: %s" % rows)
            br.js("document.getElementById('lk-name').value = 'www.example.test.';"
                  "document.getElementById('lookup').requestSubmit(); true")
            fw = br.wait("document.getElementById('lk-forwarded') && document.getElementById('lk-forwarded').textContent", 10)
            c.ok(fw and "forward" in fw, "lookup of a foreign name says it is forwarded: %r" % fw)

            # Data sources and top names are filled.
            store = br.js("document.getElementById('store').textContent")
            c.ok(store and "generation" in store and "names" in store, "store table: %r" % store)
            c.ok(br.wait("document.querySelectorAll('#top tbody tr td').length > 0 &&"
                         " document.querySelector('#top tbody').textContent.includes('skydns.local.')", 15),
                 "top names listed")

            # Cost: the page polling vs not, then requests/s of the endpoint.
            hz = os.sysconf("SC_CLK_TCK")
            t0, w0 = cpu_ticks(d.proc.pid), time.monotonic()
            time.sleep(5)
            with_page = (cpu_ticks(d.proc.pid) - t0) / hz / (time.monotonic() - w0)
            shot = os.environ.get("SKYDNS_UI_SCREENSHOT")
            if shot:
                br.screenshot(shot)
            br.drain(0.5)
            reqs = br.requests()
            origin = "http://127.0.0.1:%d/" % api
            foreign = [q["url"] for q in reqs if not q["url"].startswith(origin)
                       and not q["url"].startswith("data:")]
            c.ok(reqs and not foreign, "every request went to the skydns origin "
                 "(%d requests; foreign: %s)" % (len(reqs), foreign[:5]))
            errs = br.errors()
            c.ok(not errs, "no console errors: %s" % errs[:5])
            br.close()
            br = None
            time.sleep(1)
            t0, w0 = cpu_ticks(d.proc.pid), time.monotonic()
            time.sleep(5)
            without = (cpu_ticks(d.proc.pid) - t0) / hz / (time.monotonic() - w0)
            for p in (perf, perf_tcp):
                p.kill()
                p.wait()
            rps, ms_cpu = measure_cost(d, api)
            print("cost: skydns CPU under ~400 q/s dnsperf %.1f%% with the page polling, "
                  "%.1f%% without; /skydns/stats/live %.0f requests/s from one client, "
                  "%.2f ms of skydns CPU per request" % (with_page * 100, without * 100, rps,
                                                         ms_cpu), flush=True)
            c.ok(rps > 50, "/skydns/stats/live serves more than 50 requests/s (%.0f)" % rps)

            # The guard covers the page: a rebinding Host, a foreign Origin.
            st, _ = http_request(api, "GET", "/ui", headers={"Host": "evil.example:%d" % api})
            c.eq(st, 421, "GET /ui with a foreign Host")
            st, _ = http_request(api, "GET", "/skydns/stats/live",
                                 headers={"Origin": "http://evil.example"})
            c.eq(st, 403, "GET /skydns/stats/live with a foreign Origin")
            st, body = http_request(api, "GET", "/ui/app.js")
            c.ok(st == 200 and b"stats/live" in body, "GET /ui/app.js serves the script")
            st, _ = http_request(api, "GET", "/ui/nope.js")
            c.eq(st, 404, "GET /ui/nope.js")
            # The lookup route on its own: sources, synthesized records, refusals.
            st, body = http_request(api, "GET", "/skydns/lookup/nx?type=A")
            j = json.loads(body) if st == 200 else {}
            c.ok(j.get("rcode") == "NXDOMAIN" and j["authority"][0]["type"] == "SOA"
                 and j["authority"][0]["sources"] == [], "lookup nx: NXDOMAIN, SOA synthesized: %s" % body)
            st, body = http_request(api, "GET", "/skydns/lookup/db.skydns.local.?type=A")
            j = json.loads(body) if st == 200 else {}
            c.ok([a["value"] for a in j.get("answer", [])] == ["10.0.0.3"],
                 "lookup of a name whose only address is DOWN fails open, as workers do: %s" % body)
            for path, want in (("/skydns/lookup/web?type=BOGUS", 400),
                               ("/skydns/lookup/a..b?type=A", 400)):
                c.eq(http_request(api, "GET", path)[0], want, "GET %s" % path)
            c.eq(http_request(api, "POST", "/skydns/lookup/web", b"{}",
                              {"Content-Type": "application/json"})[0], 405, "POST lookup")
    finally:
        if br is not None:
            br.close()
        nsd.terminate()
        nsd.wait()


def token_phase(work):
    api = free_port()
    secret = "s3cret-token-for-ui"
    extra = "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = %s\n" % (api, secret)
    br = None
    with Skydns(ZONE, extra_conf=extra) as d:
        d.start()
        c.ok(wait_api(api), "API with token up")
        st, body = http_request(api, "GET", "/")
        c.ok(st == 200 and b"<html" in body, "the page itself loads without the token (no data in it)")
        st, _ = http_request(api, "GET", "/skydns/stats/live")
        c.eq(st, 401, "the data needs the token")
        try:
            br = Browser(os.path.join(work, "tok"))
            br.call("Page.navigate", url="http://127.0.0.1:%d/ui" % api)
            c.ok(br.wait("!document.getElementById('login').hidden", 15), "the page asks for a token")
            br.js("document.getElementById('token').value = %s;"
                  "document.getElementById('login').requestSubmit(); true" % json.dumps(secret))
            c.ok(br.wait("+(document.body.dataset.polls || 0) >= 2", 15),
                 "with the token the page polls")
            c.ok(br.js("sessionStorage.getItem('skydns-api-token')") == secret,
                 "the token is kept in sessionStorage")
            br.drain(0.3)
            reqs = br.requests()
            c.ok(not [q for q in reqs if secret in q["url"]], "no URL carries the token")
            c.ok(any(q.get("headers", {}).get("Authorization") == "Bearer " + secret
                     for q in reqs if "/skydns/stats/live" in q["url"]),
                 "the token goes in an Authorization header")
            # 401s before the token was given are the only errors allowed.
            c.ok(not br.errors(allow=("status of 401",)), "no other errors: %s" % br.errors()[:3])
        finally:
            if br is not None:
                br.close()


def etcd_phase(work):
    """The etcd watcher's card shows the revision the store holds; a lookup names etcd."""
    import etcdlib
    if not os.path.exists(etcdlib.ETCD):
        print("NOTE: etcd is not installed: the data-source card is not checked with a watcher")
        return
    root = os.path.join(work, "etcd")
    e = etcdlib.Etcd(root).start()
    d = br = None
    try:
        e.put("/skydns/local/skydns/svc/a", json.dumps({"host": "10.9.0.1"}))
        e.put("/skydns/local/skydns/svc/b", json.dumps({"host": "10.9.0.2"}))
        d = etcdlib.Skydns(os.path.join(root, "sky"), e.url).start()
        c.ok(wait_api(d.api_port), "API (etcd mode) up")
        rev = e.revision()
        end = time.monotonic() + 15
        while time.monotonic() < end:
            l = live(d.api_port) or {}
            if l.get("watchers", {}).get("etcd", {}).get("rev") == rev:
                break
            time.sleep(0.2)
        c.eq(l.get("watchers", {}).get("etcd", {}).get("rev"), rev,
             "/skydns/stats/live reports the watcher's applied revision")
        br = Browser(os.path.join(work, "etcdbr"))
        br.call("Page.navigate", url="http://127.0.0.1:%d/" % d.api_port)
        card = br.wait("(() => { const c = document.querySelector('.watcher[data-source=\"etcd\"]');"
                       " return c ? Array.from(c.querySelectorAll('tr')).map(r =>"
                       " Array.from(r.cells).map(x => x.textContent)) : null; })()", 15)
        kv = dict((r[0], r[1]) for r in card or [] if len(r) == 2)
        c.ok(kv.get("state") == "synced" and kv.get("applied revision") == str(rev)
             and kv.get("behind by") == "0 revisions",
             "the etcd card: synced at revision %d: %s" % (rev, kv))
        c.ok(kv.get("process", "").startswith("running (pid"), "the watcher process is shown running: %r"
             % kv.get("process"))
        # A watcher that dies: the card says so (and that skydns restarted it).
        procs = {p["name"]: p for p in (live(d.api_port) or {}).get("processes", [])}
        pid = procs.get("skydns-watch-etcd", {}).get("pid", 0)
        c.ok(pid > 0, "/skydns/stats/live lists the watcher process: %s" % procs)
        if pid > 0:
            os.kill(pid, 9)
            txt = br.wait("(() => { const c = document.querySelector('.watcher[data-source=\"etcd\"]');"
                          " return c && c.textContent.includes('killed by signal 9') ? c.textContent : ''; })()", 15)
            c.ok(txt and "1 restart" in txt, "the card shows the watcher was killed and restarted: %r" % txt)
        br.js("document.getElementById('lk-name').value = 'svc';"
              "document.getElementById('lookup').requestSubmit(); true")
        rows = br.wait("(() => { const t = document.getElementById('lk-table');"
                       " return t ? Array.from(t.tBodies[0].rows).map(r =>"
                       " Array.from(r.cells).map(x => x.textContent)) : null; })()", 10)
        got = sorted((x[4], x[5]) for x in rows or [] if x[0] == "answer")
        c.eq(got, [("10.9.0.1", "etcd"), ("10.9.0.2", "etcd")],
             "lookup of an etcd name: both addresses, source etcd")
        c.ok(not br.errors(), "no console errors (etcd mode): %s" % br.errors()[:3])
        shot = os.environ.get("SKYDNS_UI_SCREENSHOT")
        if shot:
            br.screenshot(shot[:-4] + "-etcd.png" if shot.endswith(".png") else shot + "-etcd")
    finally:
        if br is not None:
            br.close()
        if d is not None:
            d.stop()
        e.stop()


work = tempfile.mkdtemp(prefix="skydns-ui-")
os.makedirs(os.path.join(work, "tok"))
try:
    main_phase(work)
    token_phase(work)
    etcd_phase(work)
finally:
    shutil.rmtree(work, ignore_errors=True)
c.finish()
