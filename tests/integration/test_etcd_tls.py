"""
Issue 11: etcd over TLS with client certificates ([Etcd] etcd-cafile,
etcd-certfile, etcd-keyfile). A real etcd requiring client certs signed by a
test CA (openssl, in a temp dir):
  - with the CA and the client cert, the watcher reads and watches
  - without the client cert (CA only), it gets nothing: not ready, no data
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
import etcdlib  # noqa: E402
import skytest  # noqa: E402
from dns.rcode import NOERROR  # noqa: E402

D = "skydns.local."
c = skytest.Checks()
root = etcdlib.tempdir()
certs = etcdlib.make_certs(os.path.join(root, "pki"))
etcd = etcdlib.Etcd(root, tls=certs)
good = etcdlib.Skydns(os.path.join(root, "good"), etcd.url, etcd_extra=(
    "etcd-cafile = %s\netcd-certfile = %s\netcd-keyfile = %s"
    % (certs["ca.pem"], certs["cli.pem"], certs["cli.key"])))
nocert = etcdlib.Skydns(os.path.join(root, "nocert"), etcd.url,
                        etcd_extra="etcd-cafile = %s" % certs["ca.pem"])


def answers(sky, name, want, deadline):
    return etcdlib.wait_for(lambda: sky.answer(name + "." + D, "A") == want, deadline)


try:
    etcd.start()
    etcd.put("/skydns/local/skydns/a/x", json.dumps({"host": "10.0.0.1"}))
    good.start()
    c.ok(answers(good, "a", (NOERROR, ["10.0.0.1"]), 15) is not None,
         "TLS full read answers: %r" % (good.answer("a." + D),))
    etcd.put("/skydns/local/skydns/b/x", json.dumps({"host": "10.0.0.2"}))
    c.ok(answers(good, "b", (NOERROR, ["10.0.0.2"]), 5) is not None, "TLS watch delivers a put")
    c.eq(good.ready(), 200, "ready over TLS")
    good.stop()
    nocert.start()
    etcdlib.wait_for(lambda: "full read from" in nocert.log(), 10)
    c.ok("full read from" in nocert.log(), "a refused TLS handshake is logged")
    c.eq(nocert.ready(), 503, "no client cert: not ready")
    c.eq(nocert.answer("a." + D, "A")[1], [], "no client cert: no etcd data")
except Exception as e:  # a harness failure is a test failure, with the logs
    c.ok(False, "exception: %r" % e)
finally:
    good.stop()
    nocert.stop()
    etcd.stop()
    if c.failed:
        for s in (good, nocert):
            if os.path.exists(s.logpath):
                print("---- %s ----\n%s" % (s.logpath, s.log()[-4000:]))
    shutil.rmtree(root, ignore_errors=True)
c.finish()
