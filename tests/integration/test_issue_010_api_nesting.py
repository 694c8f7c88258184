"""
Issue 10 item 2: nested JSON killed skydns. civetweb runs handlers on ~100 KB
stacks and jansson recurses up to 2048 levels, so a body of 900 '[' overflowed
the stack (700 still got 400). The API now refuses nesting deeper than
API_JSON_DEPTH_MAX (8) with a cheap scan before jansson runs.

Method: the real skydns with a tokenless loopback API; POST (and PUT status)
bodies of 900 and 100000 '[' and '{"a":' nests; each must get 400 with a JSON
error that says why, and after each the process must still serve /health and
answer a DNS query. A shallow body must still create its record.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.message
import dns.rcode

from skytest import Checks, Skydns, free_port, http_request, udp_query, wait_api

c = Checks()
JSON = {"Content-Type": "application/json"}


def dns_a(port, name):
    q = dns.message.make_query(name, "A")
    try:
        r = dns.message.from_wire(udp_query(port, q.to_wire(), timeout=1.0))
    except OSError:
        return None
    if r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return r.answer[0][0].address



api = free_port()
extra = "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n" % api
with Skydns("$ORIGIN skydns.local.\nweb A 10.7.0.1\n", extra_conf=extra) as d:
    d.start()
    c.ok(wait_api(api), "API up")
    bodies = [
        ("900 [", b"[" * 900),
        ("100000 [", b"[" * 100000),
        ('900 {"a":', b'{"a":' * 900),
        ('100000 bytes of {"a":', b'{"a":' * 20000),
    ]
    for what, body in bodies:
        for method, path in (("POST", "/skydns/api/deep"), ("PUT", "/skydns/status/10.0.0.1")):
            st, reply = http_request(api, method, path, body, JSON, timeout=10)
            c.eq(st, 400, "%s %s with %s" % (method, path, what))
            try:
                err = json.loads(reply).get("error", "")
            except ValueError:
                err = ""
            c.ok("nested deeper" in err, "%s %s: JSON error says why (%r)"
                 % (method, what, reply[:80]))
            c.ok(d.proc.poll() is None, "skydns alive after %s %s" % (method, what))
            c.eq(http_request(api, "GET", "/health")[0], 200, "/health after %s" % what)
            c.eq(dns_a(d.port, "web.skydns.local."), "10.7.0.1", "DNS answered after %s" % what)
            if d.proc.poll() is not None:
                print(open(d.log).read()[-3000:])
                c.finish()
    # Shallow bodies, and brackets inside strings, still work.
    st, _ = http_request(api, "POST", "/skydns/api/ok",
                         b'{"type":"A","ips":["10.7.0.2"],"note":"[[[[[[[[[[[["}', JSON)
    c.eq(st, 201, "a body with brackets inside a string is created")
    c.eq(dns_a(d.port, "ok.skydns.local."), "10.7.0.2", "and answers")
    st, _ = http_request(api, "POST", "/skydns/api/nine",
                         b'{"type":"A","ips":["10.7.0.3"],"x":[[[[[[[[]]]]]]]]}', JSON)
    c.eq(st, 400, "9 levels are refused")
c.finish()
