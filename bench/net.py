#!/usr/bin/env python3
"""tern network benchmark: tern-vmm versus QEMU (microvm, virtio-net-device on
-netdev tap), the same tern-guest (tern.ip=), the same rig.

The rig, in a network namespace of its own: bridges brA and brB joined by a
veth pair (the switch link), tapA on brA, tapB on brB, the pinger on brB's
address. Two measurements, RUNS times each per system:

  migrate  a live migration from tapA to tapB while brB's address pings the
           guest every 10 ms: answers lost, the longest gap between two
           answers from one second before the migration to 1.5 s after it,
           and the monitor's own downtime figure.
  udp      guest packets per second: a UDP echo flood (port 7) from brB's
           address with WINDOW datagrams outstanding, for SECONDS.

Prints one table and writes bench/results/net-<time>.json. Run as root
(`make bench-net`). Python 3 standard library only.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
VMM = os.path.join(BUILD, "tern-vmm")
GUEST = os.path.join(BUILD, "guest", "tern-guest")
QEMU = shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"
RESULTS = os.path.join(ROOT, "bench", "results")
BR_IP, VM_IP = "10.81.0.1", "10.81.0.2"
MAC = "52:54:00:81:00:02"
CMDLINE = "tern.ip=%s/24 tern.hb=1000" % VM_IP
MEM_MIB = 128


def sh(*argv):
    subprocess.run(argv, check=True)


def rig():
    sh("ip", "link", "add", "vA", "type", "veth", "peer", "name", "vB")
    for h in "AB":
        sh("ip", "link", "add", "br" + h, "type", "bridge")
        sh("ip", "tuntap", "add", "mode", "tap", "name", "tap" + h)
        for dev in ("tap" + h, "v" + h):
            sh("ip", "link", "set", dev, "master", "br" + h)
            sh("ip", "link", "set", dev, "up")
        sh("ip", "link", "set", "br" + h, "up")
    sh("ip", "addr", "add", BR_IP + "/24", "dev", "brB")


def wait_file(path, pattern, timeout):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(path, errors="replace") as f:
                if re.search(pattern, f.read(), re.M):
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    return False


class Lines:
    """JSON lines over a unix socket: tern-vmm's control socket or QMP."""

    def __init__(self, path, timeout=10.0):
        end = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > end:
                    raise
                time.sleep(0.05)
        self.buf = b""

    def send(self, obj):
        self.s.sendall(json.dumps(obj).encode() + b"\n")

    def read(self, timeout=60.0):
        self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            data = self.s.recv(65536)
            if not data:
                raise EOFError("socket closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def until(self, pred, timeout=60.0):
        end = time.time() + timeout
        while True:
            m = self.read(max(0.1, end - time.time()))
            if pred(m):
                return m


# ---- the two systems: start a source, a destination, migrate ----------------

class Tern:
    name = "tern"

    def __init__(self, work):
        self.work = work

    def start(self, tag, tap):
        con = os.path.join(self.work, tag + ".con")
        argv = [VMM, "--name", "bench", "--memory", "%dM" % MEM_MIB,
                "--net", "tap=%s,mac=%s" % (tap, MAC), "--console", "file:" + con,
                "--control", os.path.join(self.work, tag + ".sock"),
                "--kernel", GUEST, "--cmdline", CMDLINE]
        self.src = subprocess.Popen(argv, stderr=open(os.path.join(self.work, tag + ".log"), "w"))
        return con

    def migrate(self):
        uri = "unix:" + os.path.join(self.work, "mig")
        dst = subprocess.Popen(
            [VMM, "--incoming", uri, "--net", "tap=tapB",
             "--console", "file:" + os.path.join(self.work, "dst.con"),
             "--control", os.path.join(self.work, "dst.sock")],
            stderr=open(os.path.join(self.work, "dst.log"), "w"))
        time.sleep(0.3)
        c = Lines(os.path.join(self.work, "src.sock"))
        c.send({"cmd": "migrate", "uri": uri})
        m = c.until(lambda m: m.get("event") == "migration" and
                    m.get("status") in ("completed", "failed", "cancelled"))
        self.src.wait(10)
        self.src = dst
        return m.get("status") == "completed", float(m.get("downtime_ms", 0))

    def stop(self):
        self.src.kill()
        self.src.wait()


class Qemu:
    name = "qemu"

    def __init__(self, work):
        self.work = work

    def argv(self, tag, tap, incoming=None):
        a = [QEMU, "-machine", "microvm,acpi=off", "-accel", "kvm",
             "-cpu", "host,-arch-capabilities", "-m", str(MEM_MIB), "-smp", "1",
             "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
             "-serial", "file:" + os.path.join(self.work, tag + ".con"),
             "-kernel", GUEST, "-append", CMDLINE,
             "-global", "virtio-mmio.force-legacy=false",
             "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no,vhost=off" % tap,
             "-device", "virtio-net-device,netdev=n0,mac=" + MAC,
             "-qmp", "unix:%s,server=on,wait=off" % os.path.join(self.work, tag + ".qmp")]
        if incoming:
            a += ["-incoming", incoming]
        return a

    def qmp(self, tag):
        q = Lines(os.path.join(self.work, tag + ".qmp"))
        q.read()  # greeting
        q.send({"execute": "qmp_capabilities"})
        q.until(lambda m: "return" in m)
        return q

    def start(self, tag, tap):
        self.src = subprocess.Popen(self.argv(tag, tap), stderr=subprocess.DEVNULL)
        return os.path.join(self.work, tag + ".con")

    def migrate(self):
        uri = "unix:" + os.path.join(self.work, "mig")
        dst = subprocess.Popen(self.argv("dst", "tapB", "defer"),
                               stderr=open(os.path.join(self.work, "dst.err"), "w"))
        d = self.qmp("dst")
        d.send({"execute": "migrate-incoming", "arguments": {"uri": uri}})
        d.until(lambda m: "return" in m or "error" in m)
        q = self.qmp("src")
        q.send({"execute": "migrate", "arguments": {"uri": uri}})
        q.until(lambda m: "return" in m)
        while True:
            q.send({"execute": "query-migrate"})
            r = q.until(lambda m: "return" in m)["return"]
            if r.get("status") in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.01)
        if r.get("status") != "completed":
            print("qemu: migration %s: %s" % (r.get("status"), r.get("error-desc", "?")),
                  file=sys.stderr)
        self.src.kill()
        self.src.wait()
        self.src = dst
        return r.get("status") == "completed", float(r.get("downtime", 0))

    def stop(self):
        self.src.kill()
        self.src.wait()


# ---- measurements --------------------------------------------------------------

def ping_figures(path, t0, t1):
    """Answers lost (requests up to the last answered one), longest gap
    between answers within [t0, t1] (wall clock, s), in ms."""
    got, times = set(), []
    for ln in open(path, errors="replace"):
        m = re.match(r"\[([0-9.]+)\] .*icmp_seq=(\d+)", ln)
        if m and "bytes from" in ln:
            got.add(int(m.group(2)))
            times.append(float(m.group(1)))
    last = max(got) if got else 0
    lost = sum(1 for s in range(1, last + 1) if s not in got)
    win = [t for t in times if t0 <= t <= t1]
    gap = max((b - a for a, b in zip(win, win[1:])), default=0.0) * 1000
    return lost, gap


def run_migrate(system, work):
    con = system.start("src", "tapA")
    if not wait_file(con, r"^NET up", 15):
        raise RuntimeError("%s: guest NIC did not come up" % system.name)
    ping_log = os.path.join(work, "ping")
    pinger = subprocess.Popen(["ping", "-D", "-O", "-i", "0.01", VM_IP],
                              stdout=open(ping_log, "w"), stderr=subprocess.STDOUT)
    time.sleep(1.0)
    t0 = time.time()
    ok, downtime = system.migrate()
    time.sleep(1.5)
    t1 = time.time()
    pinger.send_signal(2)
    pinger.wait()
    system.stop()
    lost, gap = ping_figures(ping_log, t0 - 1.0, t1)
    return {"ok": ok, "downtime_ms": downtime, "lost": lost, "gap_ms": round(gap, 1)}


def run_udp(system, work, seconds, window):
    con = system.start("src", "tapB")
    if not wait_file(con, r"^NET up", 15):
        raise RuntimeError("%s: guest NIC did not come up" % system.name)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((BR_IP, 0))
    s.connect((VM_IP, 7))
    s.settimeout(1.0)
    s.send(b"warm")
    try:
        s.recv(2048)
    except socket.timeout:
        pass
    s.setblocking(False)
    payload = b"x" * 64
    sent = recv = 0
    end = time.time() + seconds
    while time.time() < end:
        while sent - recv < window:
            s.send(payload)
            sent += 1
        try:
            while True:
                s.recv(2048)
                recv += 1
        except BlockingIOError:
            pass
        if sent - recv >= window:  # lost ones would stall the window
            time.sleep(0.0005)
            if sent - recv >= window:
                recv = sent - window // 2  # count them lost, go on
    system.stop()
    s.close()
    return {"pps": round(recv / seconds)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--only", choices=("tern", "qemu"))
    args = ap.parse_args()
    if not os.environ.get("TERN_BENCH_NS"):
        ns = "tern-bench-%d" % os.getpid()
        sh("ip", "netns", "add", ns)
        try:
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            env = dict(os.environ, TERN_BENCH_NS=ns)
            return subprocess.call(["ip", "netns", "exec", ns, sys.executable] + sys.argv,
                                   env=env)
        finally:
            subprocess.call(["ip", "netns", "del", ns])
    rig()
    out = {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(), "runs": {}}
    for cls in (Tern, Qemu):
        if args.only and cls.name != args.only:
            continue
        res = {"migrate": [], "udp": []}
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="tern-bench-net.") as work:
                sys_ = cls(work)
                res["migrate"].append(run_migrate(sys_, work))
                for f in ("dst.err",):
                    p = os.path.join(work, f)
                    if os.path.exists(p) and os.path.getsize(p):
                        print("%s %s: %s" % (cls.name, f, open(p).read().strip()[-400:]))
            with tempfile.TemporaryDirectory(prefix="tern-bench-net.") as work:
                res["udp"].append(run_udp(cls(work), work, args.seconds, args.window))
            print("%s run %d: %s %s" % (cls.name, i + 1, res["migrate"][-1], res["udp"][-1]),
                  flush=True)
        out["runs"][cls.name] = res
    print("\n%-6s %-22s %-22s %-22s %-18s" % ("", "downtime ms", "ping gap ms", "lost",
                                              "udp echo pps"))
    for name, res in out["runs"].items():
        def col(key, part="migrate"):
            v = [r[key] for r in res[part]]
            return "%.1f (%s)" % (statistics.median(v), " ".join("%g" % x for x in v))
        print("%-6s %-22s %-22s %-22s %-18s" % (name, col("downtime_ms"), col("gap_ms"),
                                                col("lost"), col("pps", "udp")))
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "net-%s.json" % time.strftime("%Y%m%dT%H%M%S"))
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("results in", os.path.relpath(path, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
