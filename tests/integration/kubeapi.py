"""
A Kubernetes API test server that speaks list/watch the way kube-apiserver does,
for the skydns-watch-k8s tests, its benchmark and manual runs.

What it serves (python3 stdlib only, one thread per connection, HTTP/1.1 keep-alive):
- GET /api/v1/services, /apis/discovery.k8s.io/v1/endpointslices, /api/v1/namespaces,
  /api/v1/pods and the namespaced forms /api/v1/namespaces/<ns>/services, ...;
  GET /api/v1/namespaces/<name> (one Namespace); /healthz, /readyz, /version.
- Lists: {"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"N",
  "continue":"...","remainingItemCount":M},"items":[...]}; items carry no kind/apiVersion,
  as the real server's typed lists. `limit` pages; a continue token is opaque (base64 JSON
  as the real one) and pins a consistent snapshot at the first page's resourceVersion;
  once that resourceVersion is compacted the token answers HTTP 410 (reason Expired).
  `labelSelector` (k=v, k!=v, k, !k; comma = and) and `fieldSelector` metadata.name /
  metadata.namespace are honoured.
- Watches (`watch=1|true`): chunked Transfer-Encoding, one JSON event per chunk and line,
  {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}. From resourceVersion R
  every event with a newer resourceVersion is replayed, then live events follow; without R
  (or R = "0") the current objects come first as ADDED. BOOKMARK objects carry kind,
  apiVersion and metadata.resourceVersion only, and are sent with allowWatchBookmarks every
  `bookmark_interval` seconds, at the end of timeoutSeconds, and on bookmark(). A too-old R
  answers per `too_old`: "event" (HTTP 200 then an ERROR event with a 410 Status, then
  EOF: what kube-apiserver does) or "http" (HTTP 410 Status JSON).
- Bearer tokens (Authorization: Bearer T; any of `tokens`) or, over TLS with a client CA,
  a verified client certificate; otherwise 401 Status JSON.

Test API (in-process): KubeAPI(port, token=...).start(); add/update/delete/apply objects
(each bumps the one global resourceVersion and fans the event out to matching watches);
compact(); drop_watches(); bookmark(); inject(); stop(); restart() on the same port;
counters (lists, list_pages, watches, watch_from) so a test can assert "resumed, no re-list".
Object builders: service(), endpointslice(), endpoint(), pod(), namespace().

As a program: kubeapi.py --port P [--token T] [--fixture objects.json] [--tls-dir D]
serves the fixture ({"services":[...],"endpointslices":[...],...} or a list of objects
with "kind") until SIGINT/SIGTERM.

Threading: every state change holds self.lock; watch threads copy what they need under it
and write to sockets outside it. Events are serialized once, when they happen.
"""
import argparse
import base64
import copy
import http.server
import json
import os
import queue
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

# resource -> (kind, apiVersion, list path prefix, namespaced)
RESOURCES = {
    "services": ("Service", "v1", "/api/v1", True),
    "endpointslices": ("EndpointSlice", "discovery.k8s.io/v1", "/apis/discovery.k8s.io/v1", True),
    "namespaces": ("Namespace", "v1", "/api/v1", False),
    "pods": ("Pod", "v1", "/api/v1", True),
}
KIND_TO_RESOURCE = {v[0]: k for k, v in RESOURCES.items()}

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def now_rfc3339(t=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


# ---- object builders: the shapes kube-apiserver returns (fields a client must skip included)

def _meta(name, namespace=None, labels=None, annotations=None):
    m = {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339(),
         "managedFields": [{"manager": "kubeapi.py", "operation": "Update",
                            "apiVersion": "v1", "time": now_rfc3339(),
                            "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]}
    if namespace is not None:
        m["namespace"] = namespace
    if labels:
        m["labels"] = dict(labels)
    if annotations:
        m["annotations"] = dict(annotations)
    return m


def service(ns, name, cluster_ip="10.96.0.10", ports=(("http", "TCP", 80),), type_="ClusterIP",
            external_name=None, external_ips=None, publish_not_ready=None, labels=None):
    """A v1 Service. cluster_ip: one address, a list (dual-stack clusterIPs, the first is
    clusterIP), or "None" (headless). ports: (name, protocol, port[, targetPort]) tuples;
    a name of None is left out of the object, "" is kept (both occur)."""
    spec = {"type": type_, "sessionAffinity": "None"}
    if type_ == "ExternalName":
        spec["externalName"] = external_name
    else:
        ips = [cluster_ip] if isinstance(cluster_ip, str) else list(cluster_ip)
        spec["clusterIP"] = ips[0]
        spec["clusterIPs"] = ips
        if ips[0] != "None":
            spec["ipFamilies"] = ["IPv6" if ":" in ip else "IPv4" for ip in ips]
            spec["ipFamilyPolicy"] = "RequireDualStack" if len(ips) > 1 else "SingleStack"
        spec["internalTrafficPolicy"] = "Cluster"
        spec["selector"] = {"app": name}
    plist = []
    for p in ports or ():
        e = {"protocol": p[1], "port": p[2], "targetPort": p[3] if len(p) > 3 else p[2]}
        if p[0] is not None:
            e["name"] = p[0]
        plist.append(e)
    if plist:
        spec["ports"] = plist
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    if publish_not_ready is not None:
        spec["publishNotReadyAddresses"] = publish_not_ready
    return {"kind": "Service", "apiVersion": "v1", "metadata": _meta(name, ns, labels),
            "spec": spec, "status": {"loadBalancer": {}}}


def endpoint(addr, ready=None, serving=None, terminating=None, hostname=None, pod=None,
             node="node-1", addresses=None):
    """One EndpointSlice endpoint; a condition left None is missing from the object."""
    cond = {}
    for k, v in (("ready", ready), ("serving", serving), ("terminating", terminating)):
        if v is not None:
            cond[k] = v
    e = {"addresses": list(addresses) if addresses else [addr], "conditions": cond,
         "nodeName": node}
    if hostname is not None:
        e["hostname"] = hostname
    if pod is not None:
        e["targetRef"] = {"kind": "Pod", "namespace": pod[0], "name": pod[1],
                          "uid": str(uuid.uuid4())}
    return e


def endpointslice(ns, svc, name=None, endpoints=(), ports=(("http", "TCP", 80),),
                  address_type="IPv4", trigger_time=None):
    """A discovery.k8s.io/v1 EndpointSlice of service svc. endpoints=None gives
    "endpoints": null; ports=None gives "ports": null; a port tuple member of None
    (name or port) becomes a JSON null, as the API server sends them."""
    labels = {SERVICE_NAME_LABEL: svc, "endpointslice.kubernetes.io/managed-by":
              "endpointslice-controller.k8s.io"}
    ann = {TRIGGER_TIME: trigger_time or now_rfc3339()}
    m = _meta(name or "%s-%s" % (svc, uuid.uuid4().hex[:5]), ns, labels, ann)
    m["ownerReferences"] = [{"apiVersion": "v1", "kind": "Service", "name": svc,
                             "uid": str(uuid.uuid4()), "controller": True,
                             "blockOwnerDeletion": True}]
    plist = None
    if ports is not None:
        plist = [{"name": p[0], "protocol": p[1], "port": p[2]} for p in ports]
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1", "metadata": m,
            "addressType": address_type,
            "endpoints": None if endpoints is None else list(endpoints), "ports": plist}


def pod(ns, name, ips=("10.244.0.5",), hostname=None, subdomain=None, phase="Running"):
    spec = {"containers": [{"name": "c", "image": "busybox"}], "nodeName": "node-1"}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    st = {"phase": phase, "hostIP": "192.168.0.1"}
    if ips:
        st["podIP"] = ips[0]
        st["podIPs"] = [{"ip": ip} for ip in ips]
    return {"kind": "Pod", "apiVersion": "v1", "metadata": _meta(name, ns, {"app": name}),
            "spec": spec, "status": st}


def namespace(name):
    return {"kind": "Namespace", "apiVersion": "v1",
            "metadata": _meta(name, labels={"kubernetes.io/metadata.name": name}),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


# ---- selectors

def _label_match(sel, labels):
    if not sel:
        return True
    for term in sel.split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "==" in term or "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field_match(sel, meta):
    if not sel:
        return True
    for term in sel.split(","):
        neg = "!=" in term
        k, v = term.replace("!=", "=").replace("==", "=").split("=", 1)
        got = {"metadata.name": meta.get("name"),
               "metadata.namespace": meta.get("namespace")}.get(k.strip())
        if (got == v.strip()) == neg:
            return False
    return True


class _Watch:
    """One open watch: its filter and the queue of serialized lines (None = drop)."""

    def __init__(self, resource, ns, lsel, fsel, bookmarks):
        self.resource, self.ns, self.lsel, self.fsel = resource, ns, lsel, fsel
        self.bookmarks = bookmarks
        self.q = queue.Queue()

    def wants(self, resource, obj):
        m = obj["metadata"]
        return (resource == self.resource and (self.ns is None or m.get("namespace") == self.ns)
                and _label_match(self.lsel, m.get("labels") or {})
                and _field_match(self.fsel, m))


class KubeAPI:
    """The fake API server. State (objects, history, resourceVersion) survives stop/restart,
    like etcd behind a restarted kube-apiserver."""

    def __init__(self, port=0, token="test-token", tokens=None, host="127.0.0.1",
                 tls=None, client_ca=None, too_old="event", bookmark_interval=5.0):
        """tls: (certfile, keyfile) to serve HTTPS; client_ca: a CA whose client
        certificates authenticate (mutual TLS, as a kubeconfig client-certificate);
        token=None and tokens=None disable authentication."""
        self.host, self.port = host, port
        self.tokens = set(tokens or ()) | ({token} if token else set())
        self.tls, self.client_ca = tls, client_ca
        self.too_old = too_old
        self.bookmark_interval = bookmark_interval
        self.lock = threading.RLock()
        self.rv = 1000  # kube-apiserver's first RVs are etcd revisions, never small
        self.objects = {r: {} for r in RESOURCES}  # resource -> "ns/name" -> obj
        self.history = []  # (rv, resource, obj, line) in rv order, newer than compacted_rv
        self.compacted_rv = self.rv
        self.snapshots = {}  # continue id -> (rv, [(key, obj)])
        self.watches = set()
        self.conns = set()
        self.injected = []  # [path substring, status code, remaining count]
        self.reset_counters()
        self.httpd = None
        self.thread = None

    # ---- counters

    def reset_counters(self):
        with self.lock:
            self.lists = {r: 0 for r in RESOURCES}       # first pages served
            self.list_pages = {r: 0 for r in RESOURCES}  # every page
            self.watches_served = {r: 0 for r in RESOURCES}
            self.watch_from = []  # (resource, resourceVersion param or None) per watch
            self.unauthorized = 0
            self.gone = 0  # 410s sent (HTTP or in-stream)

    def counters(self):
        with self.lock:
            return {"lists": dict(self.lists), "list_pages": dict(self.list_pages),
                    "watches": dict(self.watches_served), "watch_from": list(self.watch_from),
                    "unauthorized": self.unauthorized, "gone": self.gone,
                    "open_watches": len(self.watches)}

    # ---- lifecycle

    def start(self):
        api = self

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        class Handler(_Handler):
            pass
        Handler.api = api
        self.httpd = Server((self.host, self.port), Handler)
        self.port = self.httpd.server_address[1]
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls[0], self.tls[1])
            if self.client_ca:
                ctx.load_verify_locations(self.client_ca)
                ctx.verify_mode = ssl.CERT_OPTIONAL
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self.tls else "http", self.host, self.port)

    def stop(self):
        """Stop listening and cut every connection (open watches end without their last
        chunk, as when the API server dies)."""
        if not self.httpd:
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            for w in self.watches:
                w.q.put(None)
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.httpd = None

    def restart(self, down_for=0.0):
        self.stop()
        if down_for:
            time.sleep(down_for)
        return self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- changes

    @staticmethod
    def _key(obj):
        m = obj["metadata"]
        return "%s/%s" % (m.get("namespace", ""), m["name"])

    def _event(self, etype, resource, obj):
        """Caller holds the lock; obj already carries its new resourceVersion."""
        kind, api_version, _, _ = RESOURCES[resource]
        full = dict(obj, kind=kind, apiVersion=api_version)
        line = (json.dumps({"type": etype, "object": full}, separators=(",", ":")) +
                "\n").encode()
        self.history.append((self.rv, resource, obj, line))
        for w in self.watches:
            if w.wants(resource, obj):
                w.q.put(line)

    def _resource_of(self, obj, resource):
        if resource:
            return resource
        return KIND_TO_RESOURCE[obj["kind"]]

    def add(self, obj, resource=None):
        """Create obj (a dict from a builder or with "kind"); returns its resourceVersion."""
        return self._put(obj, resource, "ADDED")

    def update(self, obj, resource=None):
        return self._put(obj, resource, "MODIFIED")

    def apply(self, obj, resource=None):
        """add or update, whichever applies."""
        return self._put(obj, resource, None)

    def _put(self, obj, resource, etype):
        resource = self._resource_of(obj, resource)
        obj = copy.deepcopy(obj)
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        with self.lock:
            key = self._key(obj)
            old = self.objects[resource].get(key)
            if etype is None:
                etype = "MODIFIED" if old else "ADDED"
            if etype == "ADDED" and old:
                raise KeyError("%s %s exists" % (resource, key))
            if etype == "MODIFIED" and not old:
                raise KeyError("%s %s not found" % (resource, key))
            if old:
                obj["metadata"]["uid"] = old["metadata"]["uid"]
                obj["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[resource][key] = obj
            self._event(etype, resource, obj)
            return self.rv

    def delete(self, resource, ns, name):
        """Delete one object; the DELETED event carries it with the deletion's
        resourceVersion. Returns that resourceVersion."""
        with self.lock:
            key = "%s/%s" % (ns or "", name)
            old = self.objects[resource].pop(key)
            self.rv += 1
            obj = copy.deepcopy(old)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._event("DELETED", resource, obj)
            return self.rv

    def get(self, resource, ns, name):
        with self.lock:
            return copy.deepcopy(self.objects[resource].get("%s/%s" % (ns or "", name)))

    def load(self, fixture):
        """Objects from a fixture: {"services":[...], ...} or [{"kind":...}, ...]."""
        if isinstance(fixture, dict):
            for resource, objs in fixture.items():
                for o in objs:
                    self.apply(o, resource)
        else:
            for o in fixture:
                self.apply(o)

    def compact(self, rv=None):
        """Forget history up to rv (default: now): watches from an older resourceVersion,
        and continue tokens of lists taken before it, get 410 Gone."""
        with self.lock:
            rv = self.rv if rv is None else int(rv)
            self.compacted_rv = max(self.compacted_rv, rv)
            self.history = [h for h in self.history if h[0] > self.compacted_rv]
            for cid in [c for c, s in self.snapshots.items() if s[0] < self.compacted_rv]:
                del self.snapshots[cid]

    def drop_watches(self):
        """End every open watch cleanly (last chunk sent): the client sees EOF."""
        with self.lock:
            for w in self.watches:
                w.q.put(None)

    def bookmark(self):
        """Send a BOOKMARK at the current resourceVersion to every watch that allows them."""
        with self.lock:
            for w in self.watches:
                if w.bookmarks:
                    w.q.put(self._bookmark_line(w.resource))

    def _bookmark_line(self, resource):
        kind, api_version, _, _ = RESOURCES[resource]
        obj = {"kind": kind, "apiVersion": api_version,
               "metadata": {"resourceVersion": str(self.rv)}}
        return (json.dumps({"type": "BOOKMARK", "object": obj}, separators=(",", ":")) +
                "\n").encode()

    def inject(self, path_part, code, count=1):
        """The next `count` requests whose path contains path_part answer HTTP `code`
        with a Status body (500, 429 with Retry-After: 1, 403 ...)."""
        with self.lock:
            self.injected.append([path_part, code, count])

    def wait_watches(self, n, deadline=10.0):
        """Wait until at least n watches are open; True if they are."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            with self.lock:
                if len(self.watches) >= n:
                    return True
            time.sleep(0.01)
        return False

    # ---- request side (called by _Handler)

    def _take_injected(self, path):
        with self.lock:
            for inj in self.injected:
                if inj[0] in path and inj[2] > 0:
                    inj[2] -= 1
                    return inj[1]
        return None

    def list_page(self, resource, ns, q):
        """(http code, body dict)."""
        limit = int(q.get("limit", "0") or 0)
        cont = q.get("continue")
        lsel, fsel = q.get("labelSelector"), q.get("fieldSelector")
        with self.lock:
            if cont:
                try:
                    tok = json.loads(base64.urlsafe_b64decode(cont.encode()))
                    cid, rv, start = tok["id"], int(tok["rv"]), int(tok["start"])
                except (ValueError, KeyError, TypeError):
                    return 400, status(400, "BadRequest", "invalid continue token")
                snap = self.snapshots.get(cid)
                if snap is None or rv < self.compacted_rv:
                    self.gone += 1
                    return 410, status(410, "Expired",
                                       "The provided continue parameter is too old to display "
                                       "a consistent list result. You can start a new list "
                                       "without the continue parameter, or use the continue "
                                       "value from the response.")
                items = snap[1]
            else:
                self.lists[resource] += 1
                rv = self.rv
                items = [(k, o) for k, o in sorted(self.objects[resource].items())
                         if (ns is None or o["metadata"].get("namespace") == ns)
                         and _label_match(lsel, o["metadata"].get("labels") or {})
                         and _field_match(fsel, o["metadata"])]
                start = 0
                cid = None
            self.list_pages[resource] += 1
            end = len(items) if not limit else min(len(items), start + limit)
            page = [o for _, o in items[start:end]]
            meta = {"resourceVersion": str(rv)}
            if end < len(items):
                if cid is None:
                    cid = uuid.uuid4().hex
                    self.snapshots[cid] = (rv, items)
                meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                    {"v": "meta.k8s.io/v1", "rv": rv, "start": end, "id": cid}).encode()
                ).decode()
                meta["remainingItemCount"] = len(items) - end
            elif cid is not None:
                self.snapshots.pop(cid, None)
        kind, api_version, _, _ = RESOURCES[resource]
        return 200, {"kind": kind + "List", "apiVersion": api_version, "metadata": meta,
                     "items": page}

    def open_watch(self, resource, ns, q):
        """Register a watch. Returns (http code, status body or None, watch, backlog lines)."""
        rvs = q.get("resourceVersion")
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        w = _Watch(resource, ns, q.get("labelSelector"), q.get("fieldSelector"), bookmarks)
        kind, api_version, _, _ = RESOURCES[resource]
        with self.lock:
            self.watches_served[resource] += 1
            self.watch_from.append((resource, rvs))
            backlog = []
            if rvs in (None, "", "0"):
                for _, o in sorted(self.objects[resource].items()):
                    if w.wants(resource, o):
                        full = dict(o, kind=kind, apiVersion=api_version)
                        backlog.append((json.dumps({"type": "ADDED", "object": full},
                                                   separators=(",", ":")) + "\n").encode())
            else:
                try:
                    rv = int(rvs)
                except ValueError:
                    return 400, status(400, "BadRequest", "invalid resourceVersion %r" % rvs), \
                        None, None
                if rv < self.compacted_rv:
                    self.gone += 1
                    st = status(410, "Expired", "too old resource version: %d (%d)"
                                % (rv, self.compacted_rv))
                    if self.too_old == "http":
                        return 410, st, None, None
                    line = (json.dumps({"type": "ERROR", "object": st}) + "\n").encode()
                    return 200, None, None, [line]
                backlog = [h[3] for h in self.history if h[0] > rv and w.wants(h[1], h[2])]
            self.watches.add(w)
        return 200, None, w, backlog

    def close_watch(self, w):
        with self.lock:
            self.watches.discard(w)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api = None  # set per server

    def log_message(self, fmt, *args):
        if os.environ.get("KUBEAPI_VERBOSE"):
            sys.stderr.write("kubeapi: " + fmt % args + "\n")

    def setup(self):
        super().setup()
        with self.api.lock:
            self.api.conns.add(self.connection)

    def finish(self):
        with self.api.lock:
            self.api.conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def handle(self):
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError):
                return
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, OSError):
            pass

    def send_json(self, code, body, extra=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        api = self.api
        if not api.tokens:
            return True
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:].strip() in api.tokens:
            return True
        if isinstance(self.connection, ssl.SSLSocket) and self.connection.getpeercert():
            return True
        return False

    def route(self, path):
        """(resource, namespace, single name) or None."""
        parts = [p for p in path.split("/") if p]
        for resource, (_, _, prefix, namespaced) in RESOURCES.items():
            pre = [p for p in prefix.split("/") if p]
            if parts[:len(pre)] != pre:
                continue
            rest = parts[len(pre):]
            if rest == [resource]:
                return resource, None, None
            if namespaced and len(rest) == 3 and rest[0] == "namespaces" and rest[2] == resource:
                return resource, rest[1], None
            if resource == "namespaces" and len(rest) == 2 and rest[0] == "namespaces":
                return resource, None, rest[1]
        return None

    def do_GET(self):
        api = self.api
        u = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        if u.path in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(data)
            return
        if not self.authorized():
            with api.lock:
                api.unauthorized += 1
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        code = api._take_injected(u.path + "?" + u.query)
        if code:
            extra = (("Retry-After", "1"),) if code == 429 else ()
            return self.send_json(code, status(code, "InternalError" if code >= 500 else
                                               "TooManyRequests" if code == 429 else "Forbidden",
                                               "injected by the test"), extra)
        if u.path == "/version":
            return self.send_json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0"})
        r = self.route(u.path)
        if r is None:
            return self.send_json(404, status(404, "NotFound", "the server could not find "
                                              "the requested resource"))
        resource, ns, name = r
        if name is not None:
            obj = api.get(resource, None, name)
            if obj is None:
                return self.send_json(404, status(404, "NotFound", 'namespaces "%s" not found'
                                                  % name))
            kind, av, _, _ = RESOURCES[resource]
            return self.send_json(200, dict(obj, kind=kind, apiVersion=av))
        if q.get("watch") in ("1", "true"):
            return self.serve_watch(resource, ns, q)
        code, body = api.list_page(resource, ns, q)
        self.send_json(code, body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def serve_watch(self, resource, ns, q):
        api = self.api
        code, st, w, backlog = api.open_watch(resource, ns, q)
        if code != 200:
            return self.send_json(code, st)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for line in backlog:
                self.chunk(line)
            if w is not None:
                self.stream(w, q)
            self.wfile.write(b"0\r\n\r\n")  # a clean end: the client sees EOF
            self.wfile.flush()
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            if w is not None:
                api.close_watch(w)

    def stream(self, w, q):
        api = self.api
        timeout = float(q.get("timeoutSeconds") or 1800)
        end = time.monotonic() + timeout
        next_bm = time.monotonic() + api.bookmark_interval
        while True:
            now = time.monotonic()
            if now >= end:
                if w.bookmarks:
                    with api.lock:
                        self.chunk(api._bookmark_line(w.resource))
                return
            wait = min(end, next_bm) - now if w.bookmarks else end - now
            try:
                line = w.q.get(timeout=max(0.0, wait))
            except queue.Empty:
                if w.bookmarks and time.monotonic() >= next_bm:
                    with api.lock:
                        line = api._bookmark_line(w.resource)
                    next_bm = time.monotonic() + api.bookmark_interval
                    self.chunk(line)
                continue
            if line is None:
                return
            # Send what is queued in one write: a burst of events, as the real server does.
            batch = [line]
            while len(batch) < 256:
                try:
                    nxt = w.q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    for ln in batch:
                        self.chunk(ln)
                    return
                batch.append(nxt)
            for ln in batch:
                self.chunk(ln)


def make_test_certs(d):
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, made with
    openssl (shared with the etcd tests); returns their paths by name."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import etcdlib  # dnspython: only the TLS tests need it
    return etcdlib.make_certs(d)


def main():
    ap = argparse.ArgumentParser(description="Kubernetes list/watch test server")
    ap.add_argument("--port", type=int, default=6443)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--token", default="test-token", help="bearer token ('' = no auth)")
    ap.add_argument("--fixture", help="JSON file of objects to serve")
    ap.add_argument("--tls-dir", help="make a test CA and serve HTTPS; certs land here")
    ap.add_argument("--too-old", choices=("event", "http"), default="event")
    args = ap.parse_args()
    tls = client_ca = None
    if args.tls_dir:
        p = make_test_certs(args.tls_dir)
        tls, client_ca = (p["srv.pem"], p["srv.key"]), p["ca.pem"]
    api = KubeAPI(args.port, token=args.token or None, host=args.host, tls=tls,
                  client_ca=client_ca, too_old=args.too_old)
    if args.fixture:
        with open(args.fixture) as f:
            api.load(json.load(f))
    api.start()
    print("kubeapi: serving %s (resourceVersion %d)" % (api.url, api.rv), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    api.stop()


if __name__ == "__main__":
    main()
