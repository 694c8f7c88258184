"""
Issue 11: failover between the members of a real 3-member etcd cluster on
loopback. skydns lists all three in etcd-servers; the member the watcher
reads from is SIGKILLed; answers stay, and a put made through another member
arrives through the watcher's next member without a re-read; a second skydns
node (own store and ports) answers the same. Then a second member dies too
(no quorum): answers still stay.
"""
import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
import etcdlib  # noqa: E402
import skytest  # noqa: E402
from dns.rcode import NOERROR  # noqa: E402

D = "skydns.local."
c = skytest.Checks()
root = etcdlib.tempdir()
cl = etcdlib.EtcdCluster(root, 3)
sky = etcdlib.Skydns(os.path.join(root, "sky"), cl.urls())
# A second node, its own store and ports, listing the members the other way round.
sky2 = etcdlib.Skydns(os.path.join(root, "sky2"),
                      ",".join(m.url for m in reversed(cl.members)))


def put_retrying(member, key, val, deadline=30):
    """A put right after the leader died may time out while the others elect a new one."""
    ok = etcdlib.wait_for(lambda: _try_put(member, key, val), deadline, step=0.2)
    if ok is None:
        raise RuntimeError("no put through %s within %d s" % (member.url, deadline))


def _try_put(member, key, val):
    try:
        member.put(key, val)
        return True
    except RuntimeError:
        return False


def answers(name, want, deadline):
    return etcdlib.wait_for(lambda: sky.answer(name + "." + D, "A") == want, deadline)


try:
    cl.start()
    m0, m1, m2 = cl.members
    m2.put("/skydns/local/skydns/a/x", json.dumps({"host": "10.0.0.1"}))
    sky.start()
    sky2.start()
    c.ok(answers("a", (NOERROR, ["10.0.0.1"]), 15) is not None, "read through the cluster")
    used = re.findall(r'watching from revision \d+ at ([^\s"]+)', sky.log())
    c.eq(used[-1:] if used else None, [m0.url], "the watcher starts at the first member")
    mark = len(sky.log())
    m0.kill()
    c.eq(sky.answer("a." + D, "A"), (NOERROR, ["10.0.0.1"]), "member down: answers stay")
    put_retrying(m2, "/skydns/local/skydns/b/x", json.dumps({"host": "10.0.0.2"}))
    # Backoff is at most 5 s once every member failed; one alive member is tried next.
    c.ok(answers("b", (NOERROR, ["10.0.0.2"]), 15) is not None,
         "a put through another member arrives after the failover")
    log = sky.log()
    moved = re.findall(r'watching from revision \d+ at ([^\s"]+)', log[mark:])
    c.ok(bool(moved) and moved[-1] in (m1.url, m2.url),
         "the watcher moved to a live member: %r" % moved)
    c.eq(len(re.findall(r"full read of", log)), 1, "no re-read on failover")
    for name, ip in (("a", "10.0.0.1"), ("b", "10.0.0.2")):
        c.ok(etcdlib.wait_for(lambda: sky2.answer(name + "." + D, "A") == (NOERROR, [ip]),
                              15) is not None, "the second node agrees on %s" % name)
    m1.kill()
    c.eq(sky.answer("b." + D, "A"), (NOERROR, ["10.0.0.2"]),
         "quorum lost: answers stay")
except Exception as e:  # a harness failure is a test failure, with the logs
    c.ok(False, "exception: %r" % e)
finally:
    sky.stop()
    sky2.stop()
    cl.stop()
    if c.failed and os.path.exists(sky.logpath):
        print("---- skydns log ----\n" + sky.log()[-5000:])
    shutil.rmtree(root, ignore_errors=True)
c.finish()
