"""
Issue 18 item 5: a differential check of the write model.

A seeded random sequence of 500 API writes (POST, PUT and DELETE of A, AAAA,
TXT, MX, SRV with address and name targets, CNAME aliases; whole names, whole
types and exact records) on a small pool of names, so writes collide. A Python
model of what each write should do predicts its status (201/200/404/409) and its
"added"/"removed" lists; after the sequence, GET /skydns/api/ and dig (every
name x every type, through dnspython) must both equal the model's state.

The seed is SKYDNS_SEED (default 18), printed first, so a failure replays.
Bounded: 500 writes and a 240 s budget (the loaded 2-core CI machine runs
them in well under a minute; the margin is for ASan and load).
"""
import ipaddress
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.message
import dns.rcode
import dns.rdatatype

from skytest import Checks, Skydns, free_port, http_request, udp_query

c = Checks()
TOKEN = "t0ken-018-diff"
SEED = int(os.environ.get("SKYDNS_SEED", "18"))
WRITES = 500
BUDGET_S = 240
D = "skydns.local."
POOL = ["n%d" % i for i in range(8)]
V4 = ["10.0.0.%d" % i for i in range(1, 7)]
V6 = ["2001:db8::%d" % i for i in range(1, 4)]
TEXTS = ["alpha", "beta gamma", "delta"]
HOSTS = ["mx1", "mx2"]
print("seed", SEED, flush=True)
rng = random.Random(SEED)


def full(n):
    return n + "." + D


def helper(owner, ip):
    return ipaddress.ip_address(ip).compressed.replace(".", "-").replace(":", "-") + "." + owner


# ---- the model: {(name, type): set(value)} ----
# Values: A/AAAA address text, TXT text, CNAME target, MX (prio, host), SRV (prio, weight, port, target).

def names_of(st):
    return {n for (n, _t), v in st.items() if v}


def has(st, n, t):
    return bool(st.get((n, t)))


def has_any(st, n):
    return any(v for (nn, _t), v in st.items() if nn == n)


def srv_records(owner, targets):
    """The SRV values and helper A/AAAA entries a targets list stands for."""
    srv, helpers = set(), set()
    for t in targets:
        h = t["host"]
        try:
            ipaddress.ip_address(h)
            name = helper(owner, h)
            helpers.add((name, "A" if "." in h else "AAAA", ipaddress.ip_address(h).compressed))
        except ValueError:
            name = h + "." + D
        srv.add((t.get("priority", 10), t.get("weight", 10), t["port"], name))
    return srv, helpers


def gc(st, owner):
    """Generated targets no SRV at owner points at any more go."""
    refs = {v[3] for v in st.get((owner, "SRV"), set())}
    for (n, t) in list(st):
        if t in ("A", "AAAA") and n.endswith("." + owner) and n.count(".") == owner.count(".") + 1:
            for v in list(st[(n, t)]):
                if helper(owner, v) == n and n not in refs:
                    st[(n, t)].discard(v)


def entries(st, n, t):
    return {(n, t, v) for v in st.get((n, t), set())}


def add_all(st, items):
    for (n, t, v) in items:
        st.setdefault((n, t), set()).add(v)


def model(st, op):
    """Apply op to a copy of st. @return (status, new state)."""
    new = {k: set(v) for k, v in st.items()}
    method, name, body = op
    n = full(name)
    typ = (body or {}).get("type", "").upper()
    if method in ("POST", "PUT") and typ == "CNAME":
        a = full(body["alias"])
        if method == "PUT":
            new[(a, "CNAME")] = set()
        if has_any(new, a):
            return 409, st
        new[(a, "CNAME")] = {n}
        return (201 if method == "POST" else 200), new
    if method in ("POST", "PUT"):
        if typ in ("A", "AAAA"):
            recs, helpers = {(n, typ, ipaddress.ip_address(i).compressed) for i in body["ips"]}, set()
        elif typ == "TXT":
            recs, helpers = {(n, "TXT", body["text"])}, set()
        elif typ == "MX":
            recs, helpers = {(n, "MX", (body["priority"], body["host"] + "." + D))}, set()
        else:
            srv, helpers = srv_records(n, body["targets"])
            recs = {(n, "SRV", v) for v in srv}
        if method == "PUT":
            new[(n, typ)] = set()
        elif any(v in new.get((n, typ), set()) for (_n, _t, v) in recs):
            return 409, st
        if has(new, n, "CNAME"):
            return 409, st
        add_all(new, recs | helpers)
        if method == "PUT" and typ == "SRV":
            gc(new, n)
        return (201 if method == "POST" else 200), new
    # DELETE
    if body is None or set(body) == {"type"}:
        types = [typ] if body else [t for (nn, t) in new if nn == n]
        if not any(has(new, n, t) for t in types):
            return 404, st
        for t in types:
            new[(n, t)] = set()
        if not body or typ == "SRV":
            gc(new, n)
        return 200, new
    if "alias" in body:
        want = {(full(body["alias"]), "CNAME", n)}
    elif "ips" in body:
        want = {(n, "A" if "." in i else "AAAA", ipaddress.ip_address(i).compressed)
                for i in body["ips"]}
    elif "text" in body:
        want = {(n, "TXT", body["text"])}
    else:
        want = {(n, "SRV", v) for v in srv_records(n, body["targets"])[0]}
    if any(v not in new.get((nn, t), set()) for (nn, t, v) in want):
        return 404, st
    for (nn, t, v) in want:
        new[(nn, t)].discard(v)
    if typ == "SRV":
        gc(new, n)
    return 200, new


def all_entries(st):
    return {(n, t, v) for (n, t), vals in st.items() for v in vals}


# ---- random writes ----

def rand_targets():
    out = []
    for _ in range(rng.randint(1, 3)):
        t = {"host": rng.choice(V4 + V6[:1] + ["web", "db"]), "port": rng.choice([80, 443, 8080])}
        if rng.random() < 0.5:
            t["priority"] = rng.choice([1, 10])
        out.append(t)
    return out


def rand_op():
    name = rng.choice(POOL)
    r = rng.random()
    kind = rng.choice(["A", "A", "AAAA", "TXT", "MX", "SRV", "CNAME"])
    if r < 0.55:
        method = "POST" if rng.random() < 0.6 else "PUT"
        if kind == "A":
            body = {"type": "A", "ips": rng.sample(V4, rng.randint(1, 3))}
        elif kind == "AAAA":
            body = {"type": "AAAA", "ips": rng.sample(V6, rng.randint(1, 2))}
        elif kind == "TXT":
            body = {"type": "TXT", "text": rng.choice(TEXTS)}
        elif kind == "MX":
            body = {"type": "MX", "host": rng.choice(HOSTS), "priority": rng.choice([5, 10])}
        elif kind == "SRV":
            body = {"type": "SRV", "targets": rand_targets()}
        else:
            body = {"type": "cname", "alias": rng.choice([p for p in POOL if p != name])}
            method = "POST"
        return method, name, body
    if r < 0.65:
        return "DELETE", name, None
    if r < 0.75:
        return "DELETE", name, {"type": rng.choice(["A", "AAAA", "TXT", "MX", "SRV"])}
    if kind in ("A", "AAAA"):
        return "DELETE", name, {"ips": rng.sample(V4 + V6, rng.randint(1, 2))}
    if kind == "TXT":
        return "DELETE", name, {"type": "TXT", "text": rng.choice(TEXTS)}
    if kind == "CNAME":
        return "DELETE", name, {"type": "cname", "alias": rng.choice([p for p in POOL if p != name])}
    return "DELETE", name, {"type": "SRV", "targets": rand_targets()[:1]}


# ---- the server's views ----

def norm_value(t, v):
    if t in ("A", "AAAA"):
        return ipaddress.ip_address(v).compressed
    if t == "MX":
        return (v["priority"], v["host"])
    if t == "SRV":
        return (v["priority"], v["weight"], v["port"], v["target"])
    return v


def api(port, method, name, body):
    hdrs = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    st, reply = http_request(port, method, "/skydns/api/" + name, data, hdrs, timeout=10)
    try:
        return st, json.loads(reply or b"null")
    except ValueError:
        return st, None


def from_list(doc):
    st = {}
    fields = {"A": "ips", "AAAA": "ips", "CNAME": "hosts", "TXT": "text", "MX": "mx", "SRV": "srv"}
    for n in doc["names"]:
        for r in n["records"]:
            vals = r.get(fields.get(r["type"], "rdata"), [])
            st[(n["name"], r["type"])] = {norm_value(r["type"], v) for v in vals}
    return {k: v for k, v in st.items() if v}


def from_dig(port, names):
    st, rcodes = {}, {}
    for n in sorted(names):
        for t in ("A", "AAAA", "TXT", "MX", "SRV", "CNAME"):
            q = dns.message.make_query(n, t)
            r = dns.message.from_wire(udp_query(port, q.to_wire(), timeout=3.0))
            rcodes[n] = r.rcode()
            for rrset in r.answer:
                if rrset.name.to_text() != n or dns.rdatatype.to_text(rrset.rdtype) != t:
                    continue
                for rd in rrset:
                    if t in ("A", "AAAA"):
                        v = rd.address
                    elif t == "TXT":
                        v = b"".join(rd.strings).decode()
                    elif t == "MX":
                        v = (rd.preference, rd.exchange.to_text())
                    elif t == "SRV":
                        v = (rd.priority, rd.weight, rd.port, rd.target.to_text())
                    else:
                        v = rd.target.to_text()
                    st.setdefault((n, t), set()).add(v)
    return st, rcodes


def reply_entries(lst):
    return {(e["name"], e["type"], norm_value(e["type"], e["value"])) for e in lst or []}


aport = free_port()
extra = "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = %s\n" % (aport, TOKEN)
with Skydns(None, extra_conf=extra) as d:
    d.start()
    for _ in range(100):
        if http_request(aport, "GET", "/health", timeout=1.0)[0] == 200:
            break
        time.sleep(0.05)
    state = {}
    start = time.monotonic()
    bad = 0
    statuses = {}
    for i in range(WRITES):
        if time.monotonic() - start > BUDGET_S:
            c.ok(False, "500 writes within %d s (stopped at %d)" % (BUDGET_S, i))
            break
        op = rand_op()
        want, new = model(state, op)
        got, reply = api(aport, *op)
        statuses[got] = statuses.get(got, 0) + 1
        ok = got == want
        if ok and got in (200, 201):
            added = all_entries(new) - all_entries(state)
            removed = all_entries(state) - all_entries(new)
            ok = (reply_entries(reply.get("added")) == added and
                  reply_entries(reply.get("removed")) == removed)
        if not ok and bad < 5:
            print("write %d %s: status %d (model %d), reply %s" % (i, op, got, want, reply))
        bad += not ok
        state = new
    c.eq(bad, 0, "every write's status and added/removed match the model")
    print("statuses", sorted(statuses.items()), "in %.1f s" % (time.monotonic() - start))
    c.ok(all(statuses.get(s, 0) >= 20 for s in (200, 201, 404, 409)),
         "the sequence exercises 200, 201, 404 and 409 (%s)" % statuses)
    want = {k: v for k, v in state.items() if v}
    st, doc = api(aport, "GET", "", None)
    c.eq(st, 200, "GET the list")
    got = from_list(doc)
    c.eq(sorted((k, sorted(map(str, v))) for k, v in got.items()),
         sorted((k, sorted(map(str, v))) for k, v in want.items()), "GET /skydns/api/ = model")
    names = names_of(want) | {full(p) for p in POOL}
    dug, rcodes = from_dig(d.port, names)
    c.eq(sorted((k, sorted(map(str, v))) for k, v in dug.items()),
         sorted((k, sorted(map(str, v))) for k, v in want.items()), "dig = model")
    empty = sorted(full(p) for p in POOL if not has_any(want, full(p)))
    c.eq([rcodes[n] for n in empty], [dns.rcode.NXDOMAIN] * len(empty),
         "empty pool names are NXDOMAIN: %s" % empty)
c.finish()
