"""
Issue 10 item 4: the tokenless loopback API took cross-site and DNS-rebinding
requests. A text/plain POST with `Origin: http://evil.example` created a
record (201) and a DELETE with `Host: rebind.attacker.example` removed one,
so any web page open in a local browser could change DNS.

Now, without api-token, /skydns/ requests need a JSON Content-Type for a
body (415), no foreign Origin (403) and a Host that is the API's own address,
localhost, a loopback literal or a name from api-hostnames (421). With a
token configured the token is the defence and Host is not checked.

Method: the real skydns; raw HTTP requests with exactly the headers a browser
page could send; each refusal must leave the store unchanged (checked over
the API and with a real DNS query), allowed forms must work, the refusals
must show in skydns_api_requests_total, and a bad api-hostnames value must
fail -check-config.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.message
import dns.rcode

from skytest import SKYDNS, Checks, Skydns, free_port, http_request, udp_query, wait_api

c = Checks()
JSON = {"Content-Type": "application/json"}
REC = b'{"type":"A","ips":["10.8.0.1"]}'


def dns_a(port, name):
    q = dns.message.make_query(name, "A")
    try:
        r = dns.message.from_wire(udp_query(port, q.to_wire(), timeout=1.0))
    except OSError:
        return "timeout"
    if r.rcode() != dns.rcode.NOERROR or not r.answer:
        return dns.rcode.to_text(r.rcode())
    return r.answer[0][0].address



def metric_codes(port):
    st, body = http_request(port, "GET", "/metrics")
    out = {}
    for line in body.decode(errors="replace").splitlines():
        if line.startswith('skydns_api_requests_total{code="'):
            out[line.split('"')[1]] = int(line.split()[1])
    return out


def error_of(body):
    try:
        return json.loads(body).get("error", "")
    except ValueError:
        return ""


api = free_port()
extra = ("[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
         "api-hostnames = skydns.internal, Admin.Example.\n" % api)
with Skydns("$ORIGIN skydns.local.\nweb A 10.7.0.1\n", extra_conf=extra) as d:
    d.start()
    c.ok(wait_api(api), "API up")
    own = "127.0.0.1:%d" % api

    # Cross-site forms: what a page can send without a CORS preflight.
    refused = [
        ("text/plain POST from evil.example", "POST", "/skydns/api/x1",
         {"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403),
        ("text/plain POST, no Origin", "POST", "/skydns/api/x1",
         {"Content-Type": "text/plain"}, 415),
        ("form POST", "POST", "/skydns/api/x1",
         {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ("POST without Content-Type", "POST", "/skydns/api/x1", {}, 415),
        ("application/jsonp is not JSON", "POST", "/skydns/api/x1",
         {"Content-Type": "application/jsonp"}, 415),
        ("JSON POST from a foreign Origin", "POST", "/skydns/api/x1",
         dict(JSON, Origin="http://evil.example"), 403),
        ("JSON POST from Origin null", "POST", "/skydns/api/x1",
         dict(JSON, Origin="null"), 403),
        ("JSON POST from another local port", "POST", "/skydns/api/x1",
         dict(JSON, Origin="http://localhost:%d" % (api + 1)), 403),
        ("JSON POST from evil with our port", "POST", "/skydns/api/x1",
         dict(JSON, Origin="http://evil.example:%d" % api), 403),
        ("rebinding POST", "POST", "/skydns/api/x1",
         dict(JSON, Host="rebind.attacker.example:%d" % api), 421),
        ("rebinding POST, no port", "POST", "/skydns/api/x1",
         dict(JSON, Host="rebind.attacker.example"), 421),
        ("Host that only starts like ours", "POST", "/skydns/api/x1",
         dict(JSON, Host="skydns.internal.evil.example:%d" % api), 421),
    ]
    for what, method, path, hdrs, want in refused:
        st, body = http_request(api, method, path, REC, hdrs)
        c.eq(st, want, what)
        c.ok(error_of(body) != "", "%s: JSON error (%r)" % (what, body[:80]))
    c.eq(http_request(api, "GET", "/skydns/api/x1")[0], 404, "no refused POST created x1")
    c.eq(dns_a(d.port, "x1.skydns.local."), "NXDOMAIN", "x1 not in DNS")

    # Allowed: what curl, skydns-cli and same-origin pages send.
    st, _ = http_request(api, "POST", "/skydns/api/x1", REC, JSON)
    c.eq(st, 201, "JSON POST with our Host creates")
    c.eq(dns_a(d.port, "x1.skydns.local."), "10.8.0.1", "x1 in DNS")
    st, _ = http_request(api, "POST", "/skydns/api/x2", b'{"type":"A","ips":["10.8.0.2"]}',
                         {"Content-Type": "Application/JSON; charset=utf-8",
                          "Origin": "http://%s" % own})
    c.eq(st, 201, "same-origin POST with charset parameter creates")
    for host in (own, "localhost:%d" % api, "LocalHost:%d" % api, "[::1]:%d" % api,
                 "skydns.internal:%d" % api, "skydns.internal", "admin.example:%d" % api,
                 "skydns.internal.:%d" % api, None):
        st, _ = http_request(api, "GET", "/skydns/api/x1", headers={"Host": host})
        c.eq(st, 200, "GET with Host %r" % host)

    # Rebinding reads and deletes are refused too; the record survives.
    for method in ("GET", "DELETE"):
        st, body = http_request(api, method, "/skydns/api/x1",
                                headers={"Host": "rebind.attacker.example:%d" % api})
        c.eq(st, 421, "rebinding %s" % method)
    st, _ = http_request(api, "DELETE", "/skydns/api/x1", b'{"ips":["10.8.0.1"]}',
                         {"Content-Type": "text/plain"})
    c.eq(st, 415, "DELETE with a text/plain body")
    st, _ = http_request(api, "PUT", "/skydns/status/10.8.0.1", b'{"status":"DOWN"}',
                         {"Content-Type": "text/plain", "Origin": "http://evil.example"})
    c.ok(st in (403, 415), "cross-site status PUT refused (%d)" % st)
    c.eq(dns_a(d.port, "x1.skydns.local."), "10.8.0.1", "x1 still in DNS")
    st, _ = http_request(api, "DELETE", "/skydns/api/x1")
    c.eq(st, 200, "a plain DELETE from curl works")
    c.eq(dns_a(d.port, "x1.skydns.local."), "NXDOMAIN", "x1 gone")

    # skydns-cli sends JSON and the Host of its -addr: it keeps working without a token.
    cli = os.path.join(os.path.dirname(SKYDNS), "..", "cli", "skydns-cli")
    for addr in (own, "localhost:%d" % api):
        env = dict(os.environ, SKYDNS_API_ADDR=addr)
        env.pop("SKYDNS_API_TOKEN", None)
        r = subprocess.run([cli, "-domain", "c1", "-method", "create", "-ips", "10.8.0.7"],
                           capture_output=True, text=True, timeout=30, env=env)
        c.eq(r.returncode, 0, "skydns-cli create via %s (%s)" % (addr, r.stderr.strip()))
        c.eq(dns_a(d.port, "c1.skydns.local."), "10.8.0.7", "cli record in DNS via %s" % addr)
        r = subprocess.run([cli, "-domain", "c1", "-method", "delete"],
                           capture_output=True, text=True, timeout=30, env=env)
        c.eq(r.returncode, 0, "skydns-cli delete via %s (%s)" % (addr, r.stderr.strip()))

    # Probes keep working whatever Host they send.
    st, _ = http_request(api, "GET", "/health", headers={"Host": "10.1.2.3:8080"})
    c.eq(st, 200, "/health does not check Host")

    codes = metric_codes(api)
    c.ok(codes.get("415", 0) >= 5, "415s counted (%r)" % codes.get("415"))
    c.ok(codes.get("403", 0) >= 5, "403s counted (%r)" % codes.get("403"))
    c.ok(codes.get("421", 0) >= 5, "421s counted (%r)" % codes.get("421"))

# With a token, the token is the defence: any Host and Content-Type still work.
api = free_port()
extra = "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = s3cret\n" % api
with Skydns("$ORIGIN skydns.local.\nweb A 10.7.0.1\n", extra_conf=extra) as d:
    d.start()
    c.ok(wait_api(api), "tokened API up")
    auth = {"Authorization": "Bearer s3cret"}
    st, _ = http_request(api, "POST", "/skydns/api/t1", REC,
                         dict(auth, Host="dns-admin.corp.example"))
    c.eq(st, 201, "with a token, Host and Content-Type are not checked")
    st, _ = http_request(api, "POST", "/skydns/api/t2", REC,
                         {"Content-Type": "text/plain", "Origin": "http://evil.example"})
    c.eq(st, 401, "without the token a cross-site POST is still refused")

# api-hostnames is validated by conf/.
api = free_port()
for bad in ("evil.example:80", "http://x", "a b", "*.example"):
    with Skydns(None, extra_conf="[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                "api-hostnames = %s\n" % (api, bad)) as d:
        r = subprocess.run([SKYDNS, "-config-file", d.conf, "-check-config"],
                           capture_output=True, text=True, timeout=30)
        c.eq(r.returncode, 2, "-check-config refuses api-hostnames = %s" % bad)
        c.ok("api-hostnames" in r.stdout + r.stderr, "and names the key (%r)"
             % (r.stdout + r.stderr)[:200])
c.finish()
