"""
Issue 18: every record written through the API carries its owner.

[Api] api-tokens-file gives each user a token ("user token" lines); the single
api-token stays the admin's. A user changes only its own names (403 naming the owner),
the admin every name (keeping its owner); GET shows a user its own names, the admin
everything. The file is read again on SIGHUP. With only the shared token, the original's
?user=<name> sets the owner. With etcd configured the owner is the etcd value's "user"
field, which the etcd watcher copies into the store.

Before: one token, no owners: any token holder changed every record.

Method: the real skydns (a zone import next to the API's names), dig for the effect of
every write, curl-like requests from Python; then a real one-member etcd and skydns in
distributed mode. Bounded: a few dozen requests, each with a timeout.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etcdlib  # noqa: E402
from skytest import BUILD, Checks, Skydns, free_port, http_request  # noqa: E402

C = Checks()
D = "skydns.local."
ADMIN = "adm1n-018o"
ZONE = """$ORIGIN skydns.local.
$TTL 60
imported A 10.9.9.9
"""


def api(port, method, path, body=None, token=None, query=""):
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    st, reply = http_request(port, method, "/skydns/" + path + query, data, hdrs, timeout=20)
    try:
        return st, json.loads(reply or b"null")
    except ValueError:
        return st, {"raw": reply.decode(errors="replace")}


def dig(port, name, qtype="A"):
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=2",
                        "+tries=1", name, qtype], capture_output=True, text=True, timeout=10)
    return sorted(r.stdout.split())


def names(port, token, query=""):
    st, r = api(port, "GET", "api/", token=token, query=query)
    return st, sorted(n["name"] for n in (r or {}).get("names", []))


def cli(aport, token, *args):
    r = subprocess.run([os.path.join(BUILD, "cli", "skydns-cli"), "-addr",
                        "127.0.0.1:%d" % aport, "-token", token] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def tokens_file(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def local_users():
    aport = free_port()
    sky = Skydns(ZONE, extra_conf="[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                                  "api-token = %s\napi-tokens-file = @TOK@\n" % (aport, ADMIN))
    tok = os.path.join(sky.dir, "tokens")
    tokens_file(tok, "# users of the API\nalice ta-018\nbob tb-018  # bob's\n")
    with open(sky.conf) as f:
        conf = f.read().replace("@TOK@", tok)
    with open(sky.conf, "w") as f:
        f.write(conf)
    try:
        sky.start()
        P = sky.port
        st, r = api(aport, "POST", "api/web1", {"type": "A", "ips": ["10.1.0.1"]}, "ta-018")
        C.eq(st, 201, "alice creates web1 (%s)" % r)
        st, r = api(aport, "POST", "api/web2", {"type": "A", "ips": ["10.2.0.1"]}, "tb-018")
        C.eq(st, 201, "bob creates web2 (%s)" % r)

        # bob cannot change or delete alice's record; dig shows it unchanged.
        for method, body in (("PUT", {"type": "A", "ips": ["10.1.0.66"]}),
                             ("POST", {"type": "A", "ips": ["10.1.0.67"]}),
                             ("DELETE", {"type": "A", "ips": ["10.1.0.1"]}),
                             ("DELETE", None)):
            st, r = api(aport, method, "api/web1", body, "tb-018")
            C.ok(st == 403 and "alice" in r.get("error", ""),
                 "bob %s web1: 403 naming the owner alice (%d %s)" % (method, st, r))
        C.eq(dig(P, "web1." + D), ["10.1.0.1"], "dig: web1 unchanged after bob's tries")

        # GET: a user sees its own names, the admin everything.
        C.eq(names(aport, "ta-018"), (200, ["web1." + D]), "alice's list: web1 only")
        C.eq(names(aport, "tb-018"), (200, ["web2." + D]), "bob's list: web2 only")
        C.eq(names(aport, ADMIN), (200, ["imported." + D, "web1." + D, "web2." + D]),
             "the admin's list: every name")
        st, _ = api(aport, "GET", "api/web1", token="tb-018")
        C.eq(st, 404, "bob's GET of alice's name finds nothing")
        rc, out = cli(aport, "ta-018", "-list")
        C.ok(rc == 0 and "web1." + D in out and "web2" not in out and "imported" not in out,
             "skydns-cli -list with alice's token: her names only (%s)" % out)
        rc, out = cli(aport, "tb-018", "-domain", "web1", "-method", "delete")
        C.ok(rc != 0 and "403" in out and "alice" in out,
             "skydns-cli delete with bob's token: the 403 naming alice (%s)" % out)
        st, r = api(aport, "GET", "api/web1", token="ta-018")
        C.ok(st == 200 and r["records"], "alice's GET of web1")

        # The admin changes every name and keeps its owner.
        st, r = api(aport, "PUT", "api/web1", {"type": "A", "ips": ["10.1.0.9"]}, ADMIN)
        C.eq(st, 200, "the admin replaces web1's addresses (%s)" % r)
        C.eq(dig(P, "web1." + D), ["10.1.0.9"], "dig: the admin's change")
        C.eq(names(aport, "ta-018"), (200, ["web1." + D]), "web1 is still alice's")
        st, r = api(aport, "PUT", "api/web1", {"type": "A", "ips": ["10.1.0.2"]}, "tb-018")
        C.eq(st, 403, "still not bob's after the admin's write")
        st, r = api(aport, "POST", "api/shared", {"type": "A", "ips": ["10.3.0.1"]}, ADMIN)
        C.eq(st, 201, "the admin creates shared")
        st, r = api(aport, "DELETE", "api/shared", None, "ta-018")
        C.ok(st == 403 and "admin" in r.get("error", ""),
             "alice cannot delete the admin's name (%d %s)" % (st, r))
        C.eq(dig(P, "shared." + D), ["10.3.0.1"], "dig: shared unchanged")
        st, r = api(aport, "DELETE", "api/imported", None, "ta-018")
        C.eq(st, 409, "an imported name stays read-only for users too (%s)" % r)
        st, r = api(aport, "POST", "master", {"cacheTtl": 5}, "ta-018")
        C.eq(st, 403, "settings are the admin's (%s)" % r)
        st, r = api(aport, "GET", "api/", token="ta-018", query="?user=bob")
        C.eq(st, 403, "a user's token cannot act as another user")

        # The owner can delete; the name is then free for another user.
        st, r = api(aport, "DELETE", "api/web1", None, "ta-018")
        C.eq(st, 200, "alice deletes web1 (%s)" % r)
        C.eq(dig(P, "web1." + D), [], "dig: web1 gone")
        st, r = api(aport, "POST", "api/web1", {"type": "A", "ips": ["10.1.1.1"]}, "tb-018")
        C.eq(st, 201, "bob creates web1 once it is free (%s)" % r)
        C.eq(names(aport, "ta-018"), (200, []), "alice's list is empty")

        # SIGHUP: bob's token removed (401), carol's added; a broken file keeps the old.
        tokens_file(tok, "alice ta-018\ncarol tc-018\n")
        sky.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        st, _ = api(aport, "GET", "api/", token="tb-018")
        C.eq(st, 401, "bob's removed token: 401 after SIGHUP")
        st, r = api(aport, "POST", "api/web3", {"type": "A", "ips": ["10.4.0.1"]}, "tc-018")
        C.eq(st, 201, "carol's new token works after SIGHUP (%s)" % r)
        tokens_file(tok, "alice ta-018\ncarol\n")
        sky.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        with open(sky.log) as f:
            log = f.read()
        C.ok("%s:2:" % tok in log, "a broken tokens file is logged with file:line")
        st, _ = api(aport, "GET", "api/", token="tc-018")
        C.eq(st, 200, "after a broken file the previous tokens stay")
    finally:
        sky.stop()


def shared_token():
    """Only the single token: ?user= sets the owner, as the original's scripts do."""
    aport = free_port()
    sky = Skydns(ZONE, extra_conf="[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                                  "api-token = %s\n" % (aport, ADMIN))
    try:
        sky.start()
        st, r = api(aport, "POST", "api/app", {"type": "A", "ips": ["10.5.0.1"]}, ADMIN,
                    "?user=dave")
        C.eq(st, 201, "?user=dave creates app (%s)" % r)
        C.eq(names(aport, ADMIN, "?user=dave"), (200, ["app." + D]), "dave's list")
        C.eq(names(aport, ADMIN, "?user=erin"), (200, []), "erin's list is empty")
        rc, out = cli(aport, ADMIN, "-user", "dave", "-domain", "app2", "-ips", "10.5.1.1")
        C.eq(rc, 0, "skydns-cli -user dave creates app2 (%s)" % out)
        C.eq(names(aport, ADMIN, "?user=dave"), (200, ["app." + D, "app2." + D]),
             "app2 is dave's")
        rc, out = cli(aport, ADMIN, "-user", "dave", "-list", "-limit", "1")
        C.ok(rc == 0 and "app." + D in out and "next: -after app." + D in out,
             "skydns-cli -user with a paged list (%s)" % out)
        st, r = api(aport, "PUT", "api/app", {"type": "A", "ips": ["10.5.0.2"]}, ADMIN,
                    "?user=erin")
        C.ok(st == 403 and "dave" in r.get("error", ""), "erin cannot change dave's (%s)" % r)
        C.eq(dig(sky.port, "app." + D), ["10.5.0.1"], "dig: app unchanged")
        st, r = api(aport, "PUT", "api/app", {"type": "A", "ips": ["10.5.0.2"]}, ADMIN)
        C.eq(st, 200, "the shared token without ?user= is the admin (%s)" % r)
        C.eq(dig(sky.port, "app." + D), ["10.5.0.2"], "dig: the admin's change")
        st, r = api(aport, "GET", "api/", token=ADMIN, query="?user=bad%20name")
        C.eq(st, 400, "a bad ?user= name is refused")
    finally:
        sky.stop()


def etcd_users():
    if not os.path.exists(etcdlib.ETCD):
        C.skip("no etcd binary")
    root = etcdlib.tempdir()
    et = etcdlib.Etcd(root)
    node = etcdlib.Skydns(os.path.join(root, "sky"), None)
    tok = os.path.join(root, "tokens")
    tokens_file(tok, "alice ta-018\nbob tb-018\n")
    try:
        et.start()
        with open(node.conf) as f:
            conf = f.read().replace("etcd-servers = None", "etcd-servers = " + et.url)
        conf = conf.replace("api-enable = true\n", "api-enable = true\napi-token = %s\n"
                            "api-tokens-file = %s\n" % (ADMIN, tok))
        with open(node.conf, "w") as f:
            f.write(conf)
        node.start()
        C.ok(etcdlib.wait_for(lambda: node.ready() == 200, 20) is not None, "etcd node ready")
        st, r = api(node.api_port, "POST", "api/e1", {"type": "A", "ips": ["10.6.0.1"]},
                    "ta-018")
        C.eq(st, 201, "alice creates e1 through etcd (%s)" % r)
        v = et.ctl("get", "/skydns/local/skydns/e1/ip-10-6-0-1", "--print-value-only")
        C.eq(json.loads(v.strip() or "{}").get("user"), "alice",
             "the etcd value's user field names alice")
        st, r = api(node.api_port, "PUT", "api/e1", {"type": "A", "ips": ["10.6.0.2"]},
                    "tb-018")
        C.ok(st == 403 and "alice" in r.get("error", ""), "bob cannot change e1 (%s)" % r)
        C.eq(node.answer("e1." + D), (0, ["10.6.0.1"]), "e1 unchanged")
        # A value written straight into etcd with a user: the watcher reads the owner back.
        et.put("/skydns/local/skydns/e2/x1", json.dumps({"host": "10.6.0.5", "user": "bob"}))
        etcdlib.wait_for(lambda: node.answer("e2." + D) == (0, ["10.6.0.5"]), 5)
        # Each etcd leaf is a name too (x1.e2., as CoreDNS answers it), with the same owner.
        C.eq(names(node.api_port, "tb-018"), (200, ["e2." + D, "x1.e2." + D]),
             "bob's list: e2 from etcd")
        C.eq(names(node.api_port, "ta-018"), (200, ["e1." + D, "ip-10-6-0-1.e1." + D]),
             "alice's list: e1")
        st, r = api(node.api_port, "DELETE", "api/e2", None, "ta-018")
        C.ok(st == 403 and "bob" in r.get("error", ""), "alice cannot delete e2 (%s)" % r)
        st, r = api(node.api_port, "PUT", "api/e1", {"type": "A", "ips": ["10.6.0.3"]}, ADMIN)
        C.eq(st, 200, "the admin changes e1 (%s)" % r)
        v = et.ctl("get", "/skydns/local/skydns/e1/ip-10-6-0-3", "--print-value-only")
        C.eq(json.loads(v.strip() or "{}").get("user"), "alice",
             "the admin's write keeps alice as the owner in etcd")
        C.eq(node.answer("e1." + D), (0, ["10.6.0.3"]), "dig: the admin's change")
    finally:
        node.stop()
        et.stop()


local_users()
shared_token()
etcd_users()
C.finish()
