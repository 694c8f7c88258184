#!/usr/bin/env python3
"""
Issue 15: [General] user drops root after binding.

Started as root with user = nobody, skydns binds a port below 1024, then
every thread runs as nobody/nogroup with no capabilities, and still
answers. The store is created as nobody (so the user can reopen it); a
data-dir the user cannot write is refused with a message that says so; a
user that does not exist is a config error with file:line. A SIGUSR2
successor (skydns -takeover) started by the unprivileged process takes the
port-below-1024 sockets over without needing root.

Needs root (skips with 77 otherwise).
"""
import atexit
import ctypes
import grp
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.message  # noqa: E402

from skytest import SKYDNS, STOP_TIMEOUT, Checks, Skydns, udp_query, tcp_query  # noqa: E402

ZONE = "$ORIGIN skydns.local.\n$TTL 60\nwww IN A 10.0.0.10\n"
WAIT_S = 30.0
c = Checks()


def nobody_can_run(path):
    """A copy of the binary nobody can execute again (the SIGUSR2 successor re-executes it
    after the drop): a clone in a 0700 directory, as `git clone . "$(mktemp -d)/c"` makes,
    would otherwise fail the takeover for a reason that is not skydns's."""
    d = tempfile.mkdtemp(prefix="skydns-015-bin-")
    atexit.register(shutil.rmtree, d, True)
    os.chmod(d, 0o755)
    dst = os.path.join(d, "skydns")
    shutil.copy2(path, dst)
    os.chmod(dst, 0o755)
    return dst


SKYDNS_BIN = None


def low_port():
    """A port below 1024 free for UDP and TCP: only root may bind it."""
    for _ in range(200):
        port = random.randint(600, 1000)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind(("127.0.0.1", port))
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port below 1024")


def status(pid, tid=None):
    path = "/proc/%d/task/%d/status" % (pid, tid) if tid else "/proc/%d/status" % pid
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def answers(port):
    q = dns.message.make_query("www.skydns.local.", "A").to_wire()
    got = []
    for fn in (udp_query, tcp_query):
        try:
            r = dns.message.from_wire(fn(port, q, timeout=2.0))
            got.append([rd.address for rr in r.answer for rd in rr])
        except OSError as e:
            got.append(str(e))
    return got


def wait_log(path, needle, within=WAIT_S):
    end = time.monotonic() + within
    while time.monotonic() < end:
        if needle in open(path, errors="replace").read():
            return True
        time.sleep(0.05)
    return False


def run(conf, *args):
    return subprocess.run([SKYDNS_BIN, "-config-file", conf] + list(args), capture_output=True,
                          text=True, timeout=120)


def wait_exit(pid, within):
    end = time.monotonic() + within
    while time.monotonic() < end:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p == pid:
            return os.waitstatus_to_exitcode(st)
        time.sleep(0.05)
    return None


def main():
    if os.geteuid() != 0:
        c.skip("needs root to test dropping it (euid %d)" % os.geteuid())
    try:
        pw = pwd.getpwnam("nobody")
        gid = grp.getgrnam("nogroup").gr_gid
    except KeyError:
        c.skip("no user nobody / group nogroup here")
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: adopt the successor
    global SKYDNS_BIN
    SKYDNS_BIN = nobody_can_run(SKYDNS)

    with Skydns(None, workers=2, extra_conf="[General]\nuser = nobody\ngroup = nogroup\n") \
            as sky:
        port = low_port()
        text = open(sky.conf).read().replace("127.0.0.1:%d" % sky.port, "127.0.0.1:%d" % port)
        open(sky.conf, "w").write(text)
        zone = os.path.join(sky.dir, "zone.txt")
        open(zone, "w").write(ZONE)

        # sky.dir is 0700 root: nobody cannot create the store in it.
        r = run(sky.conf, "-import", zone)
        c.ok(r.returncode == 1 and "writable by that user" in r.stderr,
             "a data-dir the user cannot write is refused clearly: %d %s"
             % (r.returncode, r.stderr.strip()[-300:]))

        bad = os.path.join(sky.dir, "bad.conf")
        open(bad, "w").write(text.replace("user = nobody", "user = no-such-user-015"))
        r = run(bad, "-check-config")
        c.ok(r.returncode == 2 and re.search(r"bad.conf:\d+: .*user", r.stdout + r.stderr),
             "an unknown user fails -check-config with file:line: %s"
             % (r.stdout + r.stderr).strip())

        # What tmpfiles.d does for the unit: the data-dir belongs to the user.
        os.chmod(sky.dir, 0o755)
        os.mkdir(os.path.join(sky.dir, "store"), 0o750)
        os.chown(os.path.join(sky.dir, "store"), pw.pw_uid, gid)
        r = run(sky.conf, "-import", zone)
        c.eq(r.returncode, 0, "import into a data-dir nobody can write (%s)" % r.stderr.strip())
        store = os.path.join(sky.dir, "store")
        owners = {f: os.stat(os.path.join(store, f)).st_uid for f in os.listdir(store)}
        c.ok(owners and all(u == pw.pw_uid for u in owners.values()),
             "the store is created as nobody: %s" % owners)

        out = open(sky.log, "w")
        p = subprocess.Popen([SKYDNS_BIN, "-config-file", sky.conf], stdout=out,
                             stderr=subprocess.STDOUT)
        try:
            c.ok(wait_log(sky.log, "serving on"), "skydns starts on port %d" % port)
            c.ok("running as user nobody" in open(sky.log).read(), "it logs the drop")
            c.eq(answers(port), [["10.0.0.10"], ["10.0.0.10"]],
                 "answers over UDP and TCP on port %d after the drop" % port)
            tids = [int(t) for t in os.listdir("/proc/%d/task" % p.pid)]
            c.ok(len(tids) >= 3, "worker threads exist (%d)" % len(tids))
            for tid in tids:
                st = status(p.pid, tid)
                if st["Uid"] != [str(pw.pw_uid)] * 4 or st["Gid"] != [str(gid)] * 4 \
                        or st["Groups"] != [str(gid)] or st["CapEff"] != ["0000000000000000"] \
                        or st["CapPrm"] != ["0000000000000000"]:
                    c.ok(False, "thread %d: Uid %s Gid %s Groups %s CapEff %s" % (
                        tid, st["Uid"], st["Gid"], st["Groups"], st["CapEff"]))
                    break
            else:
                c.ok(True, "every thread is nobody/nogroup without capabilities")

            # The unprivileged process starts its successor, which takes port < 1024 over.
            p.send_signal(signal.SIGUSR2)
            c.ok(wait_log(sky.log, "sockets from pid %d," % p.pid),
                 "the SIGUSR2 successor takes the sockets as nobody")
            try:
                rc = p.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                rc = None
            c.eq(rc, 0, "the old process exits 0 after the takeover")
            m = re.search(r"-takeover \(pid (\d+)\)", open(sky.log).read())
            succ = int(m.group(1)) if m else 0
            c.ok(succ and status(succ)["Uid"] == [str(pw.pw_uid)] * 4,
                 "the successor runs as nobody")
            c.eq(answers(port), [["10.0.0.10"], ["10.0.0.10"]], "the successor answers")
            if succ:
                os.kill(succ, signal.SIGTERM)
                c.eq(wait_exit(succ, STOP_TIMEOUT), 0, "the successor exits 0 on SIGTERM")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            out.close()
    c.finish()


main()
