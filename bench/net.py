#!/usr/bin/env python3
"""tern network benchmark: tern-vmm versus QEMU (microvm, virtio-net-device on
-netdev tap), the same tern-guest (tern.ip=), the same rig.

The rig, in a network namespace of its own: bridges brA and brB joined by a
veth pair (the switch link), tapA on brA, tapB on brB, the pinger on brB's
address. Two measurements, RUNS times each per system:

  migrate  a live migration from tapA to tapB while brB's address pings the
           guest every 10 ms: the gap between the two answers around the
           pause (the pause's wall-clock time from the monitor: tern's
           `paused_at_us`, QEMU's STOP event), answers lost (and those of
           them sent outside the pause), the monitor's own downtime, and
           the gap decomposed: `before` (last answer to the pause: the
           ping's phase), the downtime, `after` (its end to the first
           answer), with the first answer's round trip, the departures
           of the two answered requests around the gap (`req spacing`:
           10 ms plus one interval per request lost, unless the pinger
           itself was late) and, for tern, the pause to the announce
           (`loaded_at_us` of the destination's NIC) and
           the guest's first frame after the load (`first_tx_ms`).
           `noise` is the longest gap elsewhere in the window (a loaded
           host's scheduling).
  udp      guest packets per second: a UDP echo flood (port 7) from brB's
           address with WINDOW datagrams outstanding, for SECONDS.

The systems take turns (tern, qemu, tern, qemu, ...) so that a change in
the host's load hits both; the load average is recorded with each run.
Prints one table (medians, each run in brackets) and writes
bench/results/net-<time>.json. Run as root (`make bench-net`). Python 3
standard library only.
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
        self.events = []  # every event line read so far

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
        m = json.loads(line)
        if "event" in m:
            self.events.append(m)
        return m

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
        d = m.get("downtime", {})
        out = {"ok": m.get("status") == "completed",
               "downtime_ms": float(m.get("downtime_ms", 0)),
               "paused_at": m["paused_at_us"] / 1e6 if "paused_at_us" in m else None,
               "split": {k[:-3]: round(v, 2) for k, v in d.items()
                         if k.endswith("_ms") and k != "total_ms"}}
        out.update(self.nic_after())
        return out

    def nic_after(self):
        """The destination NIC's load time and the guest's first frame
        after it (waits up to a second for that frame)."""
        c = Lines(os.path.join(self.work, "dst.sock"))
        end = time.time() + 1.0
        while True:
            c.send({"cmd": "status"})
            st = c.until(lambda m: "devices" in m or "error" in m)
            nic = [x for x in st.get("devices", []) if x.get("type") == "virtio-net"][0]
            if "first_tx_ms" in nic or time.time() > end:
                return {"loaded_at": nic["loaded_at_us"] / 1e6 if "loaded_at_us" in nic else None,
                        "first_tx_ms": nic.get("first_tx_ms"),
                        "rarps": nic.get("rarps")}
            time.sleep(0.05)

    def stop(self):
        self.src.kill()
        self.src.wait()


def qmp_time(events, name):
    """Wall-clock time (s) of the last QMP event NAME, or None."""
    ts = [e["timestamp"] for e in events if e["event"] == name]
    return ts[-1]["seconds"] + ts[-1]["microseconds"] / 1e6 if ts else None


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
        # the destination's RESUME event (it may come a little later)
        end = time.time() + 2.0
        while not [e for e in d.events if e["event"] == "RESUME"] and time.time() < end:
            try:
                d.read(0.2)
            except (socket.timeout, EOFError):
                pass
        return {"ok": r.get("status") == "completed", "downtime_ms": float(r.get("downtime", 0)),
                "paused_at": qmp_time(q.events, "STOP"),
                "resumed_at": qmp_time(d.events, "RESUME")}

    def stop(self):
        self.src.kill()
        self.src.wait()


# ---- measurements --------------------------------------------------------------

INTERVAL = 0.01  # the pinger's


def ping_log(path):
    """[(reply time s, seq, rtt s)] from `ping -D` output."""
    out = []
    for ln in open(path, errors="replace"):
        m = re.match(r"\[([0-9.]+)\] .*icmp_seq=(\d+).* time=([0-9.]+) ms", ln)
        if m and "bytes from" in ln:
            out.append((float(m.group(1)), int(m.group(2)), float(m.group(3)) / 1000))
    return out


def sent_at(replies, seq):
    """When request seq left: from the nearest answered one."""
    t, s, rtt = min(replies, key=lambda r: abs(r[1] - seq))
    return t - rtt + (seq - s) * INTERVAL


def ping_figures(path, t0, t1, pause, downtime_ms):
    """The gap around the pause [pause, pause + downtime] (the longest
    between two answers that overlaps it), its parts, the answers lost
    (and those sent outside the pause, 10 ms of path either side), the
    longest gap elsewhere in [t0, t1]. Times in ms."""
    rep = ping_log(path)
    end = pause + downtime_ms / 1000
    pairs = list(zip(rep, rep[1:]))
    span = max((p for p in pairs if p[0][0] < end and p[1][0] > pause),
               key=lambda p: p[1][0] - p[0][0], default=None)
    got = {r[1] for r in rep}
    lost = [q for q in range(1, max(got) + 1) if q not in got] if got else []
    outside = [q for q in lost
               if not pause - INTERVAL <= sent_at(rep, q) <= end + INTERVAL]
    noise = max((b[0] - a[0] for a, b in pairs if (a, b) != span and t0 <= b[0] <= t1),
                default=0.0)
    f = {"lost": len(lost), "lost_outside": len(outside), "noise_ms": round(noise * 1000, 1)}
    if span:
        a, b = span
        f.update(gap_ms=round((b[0] - a[0]) * 1000, 1), before_ms=round((pause - a[0]) * 1000, 1),
                 after_ms=round((b[0] - end) * 1000, 1), first_rtt_ms=round(b[2] * 1000, 2),
                 # the two answered requests' departures: the gap less the
                 # rtt difference, what the pinger itself spread them by
                 req_spacing_ms=round(((b[0] - b[2]) - (a[0] - a[2])) * 1000, 1))
    return f


def run_migrate(system, work):
    con = system.start("src", "tapA")
    if not wait_file(con, r"^NET up", 15):
        raise RuntimeError("%s: guest NIC did not come up" % system.name)
    ping_path = os.path.join(work, "ping")
    pinger = subprocess.Popen(["ping", "-D", "-O", "-i", str(INTERVAL), VM_IP],
                              stdout=open(ping_path, "w"), stderr=subprocess.STDOUT)
    time.sleep(1.0)
    load = os.getloadavg()[0]
    t0 = time.time()
    r = system.migrate()
    time.sleep(1.5)
    t1 = time.time()
    pinger.send_signal(2)
    pinger.wait()
    system.stop()
    r["load"] = round(load, 2)
    if not r.get("paused_at"):
        raise RuntimeError("%s: no pause time from the monitor" % system.name)
    r.update(ping_figures(ping_path, t0 - 1.0, t1, r["paused_at"], r["downtime_ms"]))
    r["excess_ms"] = round(r.get("gap_ms", 0) - r["downtime_ms"], 1)
    if r.get("loaded_at"):
        r["to_announce_ms"] = round((r["loaded_at"] - r["paused_at"]) * 1000, 2)
    if r.get("resumed_at"):
        r["to_resume_ms"] = round((r["resumed_at"] - r["paused_at"]) * 1000, 2)
    return r


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


COLUMNS = (("downtime_ms", "downtime"), ("gap_ms", "gap"), ("excess_ms", "gap-downtime"),
           ("before_ms", "before"), ("after_ms", "after"), ("first_rtt_ms", "1st rtt"),
           ("req_spacing_ms", "req spacing"),
           ("to_announce_ms", "pause-announce"), ("first_tx_ms", "1st frame"),
           ("to_resume_ms", "pause-resume"), ("lost", "lost"), ("lost_outside", "lost outside"),
           ("noise_ms", "noise"), ("load", "load"))


def table(runs):
    """Medians, each run in brackets; ms unless said."""
    def col(rows, key):
        v = [r[key] for r in rows if r.get(key) is not None]
        return "%.1f (%s)" % (statistics.median(v), " ".join("%g" % x for x in v)) if v else "-"
    print("\n%-15s" % "medians, ms" + "".join(" %-28s" % n for n in runs))
    for key, title in COLUMNS:
        print("%-15s" % title + "".join(" %-28s" % col(res["migrate"], key)
                                         for res in runs.values()))
    print("%-15s" % "udp echo pps" + "".join(" %-28s" % col(res["udp"], "pps")
                                            for res in runs.values()))
    print("%-15s" % "load (udp)" + "".join(" %-28s" % col(res["udp"], "load")
                                          for res in runs.values()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--only", choices=("tern", "qemu"))
    ap.add_argument("--part", choices=("migrate", "udp"), help="one measurement only")
    args = ap.parse_args()
    if not os.environ.get("TERN_BENCH_NS"):
        ns = "%s-bench-%d" % (os.environ.get("TERN_NS_PREFIX", "tern"), os.getpid())
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
    systems = [c for c in (Tern, Qemu) if not args.only or c.name == args.only]
    for c in systems:
        out["runs"][c.name] = {"migrate": [], "udp": []}
    for i in range(args.runs):  # the systems take turns
        for cls in systems if args.part != "udp" else ():
            res = out["runs"][cls.name]
            with tempfile.TemporaryDirectory(prefix="tern-bench-net.") as work:
                res["migrate"].append(run_migrate(cls(work), work))
                p = os.path.join(work, "dst.err")
                if os.path.exists(p) and os.path.getsize(p):
                    print("%s dst.err: %s" % (cls.name, open(p).read().strip()[-400:]))
            print("%s run %d: %s" % (cls.name, i + 1, res["migrate"][-1]), flush=True)
        for cls in systems if args.part != "migrate" else ():
            res = out["runs"][cls.name]
            load = os.getloadavg()[0]
            with tempfile.TemporaryDirectory(prefix="tern-bench-net.") as work:
                res["udp"].append(run_udp(cls(work), work, args.seconds, args.window))
            res["udp"][-1]["load"] = round(load, 2)
            print("%s run %d: %s" % (cls.name, i + 1, res["udp"][-1]), flush=True)
    table(out["runs"])
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "net-%s.json" % time.strftime("%Y%m%dT%H%M%S"))
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("results in", os.path.relpath(path, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
