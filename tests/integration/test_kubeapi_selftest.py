"""
The Kubernetes API test server (kubeapi.py) against its contract, with urllib and a raw
socket, so the watcher's tests stand on a server that behaves like kube-apiserver:
paginated lists with opaque continue tokens and a consistent snapshot, 410 for an expired
continue, watch replay from a resourceVersion as chunked JSON lines, BOOKMARKs with only a
resourceVersion, a too-old resourceVersion as an in-stream ERROR event or an HTTP 410,
timeoutSeconds, 401 without the bearer token, drop/stop/restart, and the counters.
"""
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kubeapi  # noqa: E402
import skytest  # noqa: E402

TOKEN = "s3cret"
c = skytest.Checks()


def get(api, path, token=TOKEN, timeout=5):
    """(status, parsed JSON body)."""
    req = urllib.request.Request(api.url + path)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def watch_lines(api, path, n, timeout=5):
    """Open a watch and read n event lines (or until EOF); returns (lines, eof)."""
    req = urllib.request.Request(api.url + path, headers={"Authorization": "Bearer " + TOKEN})
    out = []
    with urllib.request.urlopen(req, timeout=timeout) as r:
        c.eq(r.headers.get("Transfer-Encoding"), "chunked", "watch is chunked")
        while len(out) < n:
            line = r.readline()
            if not line:
                return out, True
            out.append(json.loads(line))
    return out, False


def raw_watch(api, path, want_bytes, timeout=3):
    """The raw bytes of a watch response, to check the chunk framing itself."""
    s = socket.create_connection(("127.0.0.1", api.port), timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
               % (path, TOKEN)).encode())
    data = b""
    end = time.monotonic() + timeout
    while len(data) < want_bytes and time.monotonic() < end:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        if not b:
            break
        data += b
    s.close()
    return data


def main():
    port = skytest.free_port()
    api = kubeapi.KubeAPI(port, token=TOKEN, bookmark_interval=0.3).start()
    # 25 services in two namespaces, dual-stack, headless, ExternalName.
    for i in range(25):
        ns = "default" if i % 2 else "kube-system"
        api.add(kubeapi.service(ns, "svc%02d" % i, "10.96.0.%d" % (i + 1)))
    api.add(kubeapi.service("default", "dual", ["10.96.1.1", "fd00::1"],
                            ports=(("dns", "UDP", 53), (None, "TCP", 9153))))
    api.add(kubeapi.service("default", "headless", "None", ports=(("", "TCP", 80),),
                            publish_not_ready=True))
    api.add(kubeapi.service("default", "ext", type_="ExternalName",
                            external_name="example.org"))
    api.add(kubeapi.endpointslice("default", "headless", "headless-abc", endpoints=None,
                                  ports=((None, "TCP", None),)))

    # --- 401
    code, body = get(api, "/api/v1/services", token=None)
    c.eq((code, body.get("kind"), body.get("code")), (401, "Status", 401), "no token: 401 Status")
    code, body = get(api, "/api/v1/services", token="wrong")
    c.eq(code, 401, "wrong token: 401")

    # --- full list
    code, body = get(api, "/api/v1/services")
    c.eq((code, body["kind"], body["apiVersion"]), (200, "ServiceList", "v1"), "list kind")
    c.eq(len(body["items"]), 28, "list has every service")
    c.eq(body["metadata"]["resourceVersion"], str(api.rv), "list RV = current RV")
    c.ok("continue" not in body["metadata"], "unpaged list has no continue")
    c.ok("kind" not in body["items"][0], "list items carry no kind, as the real server's")
    dual = [s for s in body["items"] if s["metadata"]["name"] == "dual"][0]
    c.eq(dual["spec"]["clusterIPs"], ["10.96.1.1", "fd00::1"], "dual-stack clusterIPs")
    c.ok("name" not in dual["spec"]["ports"][1], "a port without name has no name key")
    code, body = get(api, "/api/v1/namespaces/kube-system/services")
    c.eq(len(body["items"]), 13, "namespaced list filters by namespace")
    code, body = get(api, "/apis/discovery.k8s.io/v1/endpointslices")
    c.eq(body["kind"], "EndpointSliceList", "slice list kind")
    sl = body["items"][0]
    c.eq((sl["endpoints"], sl["ports"][0]["name"], sl["ports"][0]["port"]), (None, None, None),
         "endpoints: null, port name/port null")
    code, body = get(api, "/apis/discovery.k8s.io/v1/endpointslices?labelSelector="
                     "kubernetes.io%2Fservice-name%3Dnope")
    c.eq(body["items"], [], "labelSelector filters")

    # --- pagination: a consistent snapshot even when objects change between pages
    seen = []
    code, body = get(api, "/api/v1/services?limit=10")
    list_rv = body["metadata"]["resourceVersion"]
    c.eq((len(body["items"]), body["metadata"].get("remainingItemCount")), (10, 18),
         "first page: 10 items, 18 remaining")
    cont = body["metadata"]["continue"]
    seen += [s["metadata"]["name"] for s in body["items"]]
    api.add(kubeapi.service("default", "zzz-late", "10.96.9.9"))  # after the snapshot
    pages = 1
    while cont:
        code, body = get(api, "/api/v1/services?limit=10&continue=" + cont)
        c.eq(code, 200, "next page")
        c.eq(body["metadata"]["resourceVersion"], list_rv, "every page has the list's RV")
        seen += [s["metadata"]["name"] for s in body["items"]]
        cont = body["metadata"].get("continue")
        pages += 1
    c.eq((pages, len(seen), len(set(seen))), (3, 28, 28), "3 pages, 28 distinct items")
    c.ok("zzz-late" not in seen, "an object added during the paged list is not in it")

    # --- an expired continue token: 410 Expired
    code, body = get(api, "/api/v1/services?limit=5")
    cont = body["metadata"]["continue"]
    api.add(kubeapi.service("default", "after-page", "10.96.9.10"))
    api.compact()
    code, body = get(api, "/api/v1/services?limit=5&continue=" + cont)
    c.eq((code, body.get("reason"), body.get("code")), (410, "Expired", 410),
         "continue after compaction: 410 Expired")
    code, body = get(api, "/api/v1/services?limit=5&continue=bm90LWEtdG9rZW4=")
    c.eq(code, 400, "garbage continue token: 400")

    # --- watch from an RV: replay newer events, then live ones, one JSON per line
    rv0 = api.rv
    api.update(kubeapi.service("default", "svc01", "10.96.7.1"))
    api.delete("services", "default", "svc03")
    api.add(kubeapi.endpointslice("default", "svc01", "svc01-x",
                                  [kubeapi.endpoint("10.244.0.1", ready=True)]))  # other kind
    lines, eof = watch_lines(api, "/api/v1/services?watch=1&resourceVersion=%d"
                             "&allowWatchBookmarks=true&timeoutSeconds=2" % rv0, 2)
    c.eq([(e["type"], e["object"]["metadata"]["name"]) for e in lines],
         [("MODIFIED", "svc01"), ("DELETED", "svc03")], "watch replays newer events in order")
    c.eq(lines[0]["object"].get("kind"), "Service", "watch objects carry kind")
    c.ok(int(lines[1]["object"]["metadata"]["resourceVersion"]) >
         int(lines[0]["object"]["metadata"]["resourceVersion"]), "RVs increase")

    # live events fan out to an open watch, BOOKMARKs carry only the RV
    import threading
    got = []

    def reader():
        got.extend(watch_lines(api, "/api/v1/namespaces/default/services?watch=true"
                               "&resourceVersion=%d&allowWatchBookmarks=true"
                               "&timeoutSeconds=3" % api.rv, 50)[0])
    t = threading.Thread(target=reader)
    t.start()
    c.ok(api.wait_watches(1), "the watch is open")
    api.add(kubeapi.service("default", "live", "10.96.5.5"))
    api.add(kubeapi.service("kube-system", "other-ns", "10.96.5.6"))
    api.bookmark()
    t.join(10)
    types = [e["type"] for e in got]
    c.eq([e["object"]["metadata"].get("name") for e in got if e["type"] != "BOOKMARK"],
         ["live"], "a namespaced watch sees only its namespace's live event")
    bms = [e for e in got if e["type"] == "BOOKMARK"]
    c.ok(len(bms) >= 2, "bookmarks: on bookmark(), every interval and at timeout (%d)"
         % len(bms))
    c.eq(sorted(bms[0]["object"].keys()), ["apiVersion", "kind", "metadata"],
         "bookmark object keys")
    c.eq(list(bms[-1]["object"]["metadata"].keys()), ["resourceVersion"],
         "bookmark metadata has only resourceVersion")
    c.eq(bms[-1]["object"]["metadata"]["resourceVersion"], str(api.rv), "bookmark RV")
    c.ok(types and types[-1] == "BOOKMARK", "the stream ended after timeoutSeconds")

    # no bookmarks unless allowed
    lines, eof = watch_lines(api, "/api/v1/services?watch=1&resourceVersion=%d"
                             "&timeoutSeconds=1" % api.rv, 5)
    c.eq((lines, eof), ([], True), "no allowWatchBookmarks: nothing, then EOF at timeout")

    # watch without RV: the current objects as ADDED first
    lines, _ = watch_lines(api, "/api/v1/namespaces/kube-system/services?watch=1"
                           "&timeoutSeconds=1", 100)
    c.ok(len(lines) == 14 and all(e["type"] == "ADDED" for e in lines),
         "watch without RV starts with ADDED for current objects (%d)" % len(lines))

    # chunk framing on the wire: chunk-size CRLF json LF CRLF ... 0 CRLF CRLF
    raw = raw_watch(api, "/api/v1/services?watch=1&resourceVersion=%d&timeoutSeconds=1"
                    % rv0, 1 << 20)
    head, _, body = raw.partition(b"\r\n\r\n")
    c.ok(b"Transfer-Encoding: chunked" in head, "raw: chunked header")
    size, _, rest = body.partition(b"\r\n")
    n = int(size, 16)
    c.ok(rest[:n].endswith(b"}\n") and json.loads(rest[:n])["type"] == "MODIFIED"
         and rest[n:n + 2] == b"\r\n", "raw: one event per chunk, newline-terminated")
    c.ok(body.endswith(b"0\r\n\r\n"), "raw: the stream ends with the last chunk")

    # --- too-old RV: in-stream ERROR 410 (default), or HTTP 410
    old = rv0 - 5
    lines, eof = watch_lines(api, "/api/v1/services?watch=1&resourceVersion=%d" % old, 5)
    c.ok(len(lines) == 1 and lines[0]["type"] == "ERROR" and
         lines[0]["object"]["code"] == 410 and lines[0]["object"]["kind"] == "Status" and eof,
         "too-old RV: one in-stream ERROR 410 Status, then EOF: %r" % lines)
    api.too_old = "http"
    code, body = get(api, "/api/v1/services?watch=1&resourceVersion=%d" % old)
    c.eq((code, body.get("kind"), body.get("reason")), (410, "Status", "Expired"),
         "too-old RV in http mode: HTTP 410 Status")
    api.too_old = "event"

    # --- drop_watches: clean EOF; counters tell a resume from a re-list
    api.reset_counters()
    done = []
    t = threading.Thread(target=lambda: done.append(watch_lines(
        api, "/api/v1/services?watch=1&resourceVersion=%d" % api.rv, 10, timeout=10)))
    t.start()
    c.ok(api.wait_watches(1), "watch open before drop")
    api.drop_watches()
    t.join(10)
    c.ok(done and done[0][1], "drop_watches: the client sees EOF")
    end = time.monotonic() + 5
    while api.counters()["open_watches"] and time.monotonic() < end:
        time.sleep(0.01)
    cnt = api.counters()
    c.eq((cnt["lists"]["services"], cnt["watches"]["services"], cnt["open_watches"]), (0, 1, 0),
         "counters: 0 lists, 1 watch, none open")
    c.eq(cnt["watch_from"], [("services", str(api.rv))], "counters: the watch's RV")

    # --- stop / restart on the same port keeps the state
    rv_before = api.rv
    api.stop()
    try:
        get(api, "/api/v1/services", timeout=1)
        c.ok(False, "stopped server refuses connections")
    except (urllib.error.URLError, OSError):
        c.ok(True, "stopped server refuses connections")
    api.start()
    code, body = get(api, "/api/v1/services")
    c.eq((code, body["metadata"]["resourceVersion"]), (200, str(rv_before)),
         "restart on the same port keeps objects and RV")

    # --- injected failure
    api.inject("endpointslices", 500)
    c.eq(get(api, "/apis/discovery.k8s.io/v1/endpointslices")[0], 500, "injected 500")
    c.eq(get(api, "/apis/discovery.k8s.io/v1/endpointslices")[0], 200, "then 200 again")

    api.stop()
    tls_checks()
    c.finish()


def tls_checks():
    """HTTPS with a test CA; a client certificate from that CA stands in for the token."""
    import shutil
    import ssl
    import tempfile
    d = tempfile.mkdtemp(prefix="kubeapi-tls-")
    try:
        p = kubeapi.make_test_certs(d)
        api = kubeapi.KubeAPI(skytest.free_port(), token=TOKEN, tls=(p["srv.pem"], p["srv.key"]),
                              client_ca=p["ca.pem"]).start()
        api.add(kubeapi.namespace("default"))
        ctx = ssl.create_default_context(cafile=p["ca.pem"])
        req = urllib.request.Request(api.url + "/api/v1/namespaces",
                                     headers={"Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            c.eq(json.loads(r.read())["items"][0]["metadata"]["name"], "default",
                 "https list with the test CA")
        try:
            urllib.request.urlopen(api.url + "/api/v1/namespaces", context=ctx, timeout=5)
            c.ok(False, "https without token or client cert: 401")
        except urllib.error.HTTPError as e:
            c.eq(e.code, 401, "https without token or client cert: 401")
        ctx.load_cert_chain(p["cli.pem"], p["cli.key"])
        with urllib.request.urlopen(api.url + "/api/v1/namespaces/default", context=ctx,
                                    timeout=5) as r:
            c.eq(json.loads(r.read())["kind"], "Namespace", "client certificate authenticates")
        api.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
