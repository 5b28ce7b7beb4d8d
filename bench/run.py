#!/usr/bin/env python3
"""tern benchmark: live migration tern-vmm -> tern-vmm versus QEMU -> QEMU.

Both monitors boot the same build/guest/tern-guest (QEMU through its PVH
entry). See bench/README.md for what each figure means and how it is measured.
Python 3 standard library only.
"""

import argparse
import atexit
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
VMM = os.path.join(BUILD, "tern-vmm")
GUEST = os.path.join(BUILD, "guest", "tern-guest")
QEMU = shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"
RESULTS = os.path.join(ROOT, "bench", "results")

MIB = 1 << 20
HB_MS = 5
WARMUP_S = 2.0          # guest runs this long after its first HB before migrating
MIGRATE_LIMIT_S = 60.0  # a migration still running after this is cancelled
VERIFY_WAIT_S = 3.0     # the first VERIFY ok must show on the destination within this
VERIFY_ALL_S = 10.0     # with several vCPUs, every vCPU's VERIFY ok within this
VERIFY_LATE_S = 15.0
WRITE_ONCE_S = 120      # a written-once working set must be complete within this    # after VERIFY_WAIT_S, keep watching this long to tell "late" from "missing"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# --------------------------------------------------------------------------
# scenarios
#
# A scenario is one guest workload; each of its "systems" is one way to
# migrate it. The table maps systems onto columns (see ROWS).

QEMU_UNCAPPED = 100 * 1000 * 1000 * 1000  # 100 GB/s: only the link limits


def guest_cmdline(sc):
    # hbclock: HB lines carry the guest clock, for the achieved dirty rate
    parts = ["tern.hb=%d" % HB_MS, "tern.hbclock=1"]
    if sc["ws"]:
        parts += ["tern.ws=%d" % sc["ws"], "tern.rate=%d" % sc["rate"], "tern.verify=1"]
    if sc["touch"]:
        parts.append("tern.touch=%d" % sc["touch"])
    if sc["smp"]:
        parts.append("tern.smp=1")
    return " ".join(parts)


def S(name, title, mem_mib, ws=0, rate=0, cpus=1, touch=0, systems=None):
    """touch: words the dirtier stamps per page (0 = the whole page)"""
    return {"name": name, "title": title, "mem_mib": mem_mib, "ws": ws,
            "rate": rate, "cpus": cpus, "smp": cpus > 1, "touch": touch,
            "systems": systems or {}}


# systems: kind tern|qemu plus migration parameters
T = {"kind": "tern", "auto_converge": False}
T_AC = {"kind": "tern", "auto_converge": True}
Q_DEF = {"kind": "qemu"}
Q_UNC = {"kind": "qemu", "max_bandwidth": QEMU_UNCAPPED}
Q_DEF_AC = {"kind": "qemu", "auto_converge": True}
Q_UNC_AC = {"kind": "qemu", "max_bandwidth": QEMU_UNCAPPED, "auto_converge": True}

SCENARIOS = [
    S("idle-1g", "1 GiB idle", 1024,
      systems={"tern": T, "qemu-default": Q_DEF, "qemu-uncapped": Q_UNC}),
    S("idle-4g", "4 GiB idle", 4096,
      systems={"tern": T, "qemu-default": Q_DEF, "qemu-uncapped": Q_UNC}),
    S("ws256-r50", "1 GiB, 256 MiB ws @ 50 MiB/s", 1024, ws=256, rate=50,
      systems={"tern": T, "qemu-default": Q_DEF, "qemu-uncapped": Q_UNC}),
    S("ws512-r400", "1 GiB, 512 MiB ws @ 400 MiB/s", 1024, ws=512, rate=400,
      systems={"tern-ac": T_AC, "qemu-default": Q_DEF, "qemu-uncapped": Q_UNC,
               "qemu-default-ac": Q_DEF_AC, "qemu-uncapped-ac": Q_UNC_AC}),
    S("smp2", "2 vCPUs, 256 MiB ws @ 100 MiB/s", 1024, ws=256, rate=100, cpus=2,
      systems={"tern": T, "qemu-default": Q_DEF, "qemu-uncapped": Q_UNC}),
    # the same working sets with a dirtier that stamps 2 words per page: every
    # page as dirty, but the guest keeps its nominal rate under dirty logging
    S("ws256-r50-t2", "1 GiB, 256 MiB ws @ 50 MiB/s, 2 words/page", 1024, ws=256,
      rate=50, touch=2,
      systems={"tern": T, "qemu-default": Q_DEF, "qemu-uncapped": Q_UNC}),
    S("ws512-r400-t2", "1 GiB, 512 MiB ws @ 400 MiB/s, 2 words/page", 1024, ws=512,
      rate=400, touch=2,
      systems={"tern-ac": T_AC, "qemu-uncapped": Q_UNC, "qemu-uncapped-ac": Q_UNC_AC}),
    S("smp2-t2", "2 vCPUs, 256 MiB ws @ 100 MiB/s, 2 words/page", 1024, ws=256,
      rate=100, cpus=2, touch=2,
      systems={"tern": T, "qemu-uncapped": Q_UNC}),
    # throughput: 1.5 GiB written once (rate 0), then nothing is dirtied
    S("bulk-2g", "2 GiB, 1.5 GiB written once, then idle", 2048, ws=1536, rate=0,
      systems={"tern": T, "tern-ch2": dict(T, channels=2), "tern-ch4": dict(T, channels=4),
               "qemu-uncapped": Q_UNC}),
    S("bw100", "256 MiB ws @ 50 MiB/s, 100 MiB/s cap", 1024, ws=256, rate=50,
      systems={"tern": dict(T, max_bandwidth=100 * MIB),
               "qemu": dict(Q_DEF, max_bandwidth=100 * MIB)}),
    S("tls", "256 MiB ws @ 50 MiB/s, TLS vs insecure", 1024, ws=256, rate=50,
      systems={"tern": T, "tern-tls": dict(T, tls=True)}),
]

QUICK = ["idle-1g", "ws256-r50", "ws256-r50-t2", "smp2", "bw100", "tls"]

# rows of the comparison table: (label, scenario, tern system, qemu default, qemu uncapped)
ROWS = [
    ("1 GiB idle", "idle-1g", "tern", "qemu-default", "qemu-uncapped"),
    ("4 GiB idle", "idle-4g", "tern", "qemu-default", "qemu-uncapped"),
    ("ws256 @50", "ws256-r50", "tern", "qemu-default", "qemu-uncapped"),
    ("ws512 @400, QEMU no AC", "ws512-r400", "tern-ac", "qemu-default", "qemu-uncapped"),
    ("ws512 @400, QEMU AC", "ws512-r400", "tern-ac", "qemu-default-ac", "qemu-uncapped-ac"),
    ("2 vCPUs ws256 @100", "smp2", "tern", "qemu-default", "qemu-uncapped"),
    ("ws256 @50, 2 words/page", "ws256-r50-t2", "tern", "qemu-default", "qemu-uncapped"),
    ("ws512 @400 2w, QEMU no AC", "ws512-r400-t2", "tern-ac", None, "qemu-uncapped"),
    ("ws512 @400 2w, QEMU AC", "ws512-r400-t2", "tern-ac", None, "qemu-uncapped-ac"),
    ("2 vCPUs ws256 @100 2w", "smp2-t2", "tern", None, "qemu-uncapped"),
    ("bulk 1.5 GiB of 2 GiB", "bulk-2g", "tern", None, "qemu-uncapped"),
    ("100 MiB/s cap (both capped)", "bw100", "tern", "qemu", None),
]
# tern only: TLS versus insecure on the same workload
TLS_ROW = ("tls", "tern", "tern-tls")
# throughput block: scenario, tern system, qemu uncapped
BULK_ROW = ("bulk-2g", "tern", "qemu-uncapped")

# --------------------------------------------------------------------------
# process bookkeeping: everything we start is killed on exit and on signals

PROCS = []


def spawn(argv, stderr_path, **kw):
    errf = open(stderr_path, "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=errf,
                         stderr=subprocess.STDOUT, start_new_session=True, **kw)
    errf.close()
    PROCS.append(p)
    return p


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
    for p in PROCS:
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    PROCS.clear()


def on_signal(signum, frame):
    kill_all()
    sys.stderr.write("\nbench: interrupted, processes cleaned up\n")
    os._exit(130)


def cpu_seconds(pid):
    """utime+stime of a live process (all threads), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def wait_listen(port, proc, timeout=10.0):
    """wait until something listens on 127.0.0.1:port (without connecting)"""
    want = ":%04X" % port
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("destination exited (rc %s) before listening" % proc.returncode)
        try:
            with open("/proc/net/tcp") as f:
                for ln in f.readlines()[1:]:
                    parts = ln.split()
                    if parts[1].endswith(want) and parts[3] == "0A":
                        return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("destination not listening on port %d" % port)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# console tailing: one thread polls both console files every millisecond and
# timestamps each complete line (time.monotonic()) when it shows up.

class ConsoleTail:
    def __init__(self, paths):
        self.paths = paths
        self.lines = {k: [] for k in paths}   # key -> [(t, line)]
        self.partial = {k: b"" for k in paths}
        self.fds = {k: None for k in paths}
        self.stop = False
        self.lock = threading.Lock()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def poll_once(self):
        for k, path in self.paths.items():
            if self.fds[k] is None:
                try:
                    self.fds[k] = os.open(path, os.O_RDONLY)
                except OSError:
                    continue
            while True:
                data = os.read(self.fds[k], 65536)
                if not data:
                    break
                t = time.monotonic()
                buf = self.partial[k] + data
                parts = buf.split(b"\n")
                self.partial[k] = parts.pop()
                if parts:
                    with self.lock:
                        for ln in parts:
                            self.lines[k].append((t, ln.decode("utf-8", "replace").rstrip("\r")))

    def run(self):
        while not self.stop:
            self.poll_once()
            time.sleep(0.001)
        self.poll_once()
        for fd in self.fds.values():
            if fd is not None:
                os.close(fd)

    def snapshot(self, k):
        with self.lock:
            return list(self.lines[k])

    def wait_for(self, k, pred, timeout, since=0.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, ln in self.snapshot(k):
                if t >= since and pred(ln):
                    return t, ln
            time.sleep(0.01)
        return None

    def close(self):
        self.stop = True
        self.th.join(timeout=2)


def is_hb(ln):
    return ln.startswith("HB ")


def hb_pages(lines):
    """pages written so far, from the last HB line (0 if none)"""
    for t, ln in reversed(lines):
        if is_hb(ln):
            try:
                return int(ln.split()[2])
            except (ValueError, IndexError):
                return 0
    return 0


def dirty_rate(lines, t_from, t_to):
    """MiB/s the guest wrote between the first and the last HB line that
    arrived in [t_from, t_to]: pages from the second HB field, time from
    the guest clock (third field, tern.hbclock) or else the arrival times."""
    pts = []
    for t, ln in lines:
        if not (is_hb(ln) and t_from <= t <= t_to):
            continue
        f = ln.split()
        try:
            pts.append((int(f[3]) / 1e6 if len(f) > 3 else t, int(f[2])))
        except (ValueError, IndexError):
            pass
    if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
        return None
    return round((pts[-1][1] - pts[0][1]) * 4096 / MIB / (pts[-1][0] - pts[0][0]), 1)


# --------------------------------------------------------------------------
# JSON-lines clients: tern control socket and QMP

class JsonLines:
    def __init__(self, path, timeout=10.0):
        end = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > end:
                    raise RuntimeError("cannot connect to %s" % path)
                time.sleep(0.01)
        self.buf = b""
        self.queue = []

    def send(self, obj):
        self.sock.sendall((json.dumps(obj) + "\n").encode())

    def read(self, timeout):
        """next JSON object, or None on timeout; raises EOFError on close"""
        if self.queue:
            return self.queue.pop(0)
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                data = b""
            if not data:
                raise EOFError
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.strip()
        if not line:
            return self.read(max(0.0, end - time.monotonic()))
        return json.loads(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class TernCtl(JsonLines):
    def cmd(self, obj, timeout=10.0):
        """send a command, return its reply; events seen meanwhile are queued"""
        self.send(obj)
        end = time.monotonic() + timeout
        held = []
        try:
            while time.monotonic() < end:
                m = self.read(end - time.monotonic())
                if m is None:
                    break
                if "event" in m:
                    held.append(m)
                    continue
                return m
        finally:
            self.queue = held + self.queue
        raise RuntimeError("no reply to %s" % obj.get("cmd"))


class Qmp(JsonLines):
    def __init__(self, path, timeout=10.0):
        super().__init__(path, timeout)
        greet = self.read(timeout)
        if not greet or "QMP" not in greet:
            raise RuntimeError("no QMP greeting")
        self.execute("qmp_capabilities")

    def execute(self, name, args=None, timeout=10.0):
        obj = {"execute": name}
        if args is not None:
            obj["arguments"] = args
        self.send(obj)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = self.read(end - time.monotonic())
            if m is None:
                break
            if "event" in m:
                continue
            if "error" in m:
                raise RuntimeError("QMP %s: %s" % (name, m["error"].get("desc")))
            return m.get("return")
        raise RuntimeError("QMP %s: no reply" % name)


# --------------------------------------------------------------------------
# one run

def tern_tls_dir(workdir):
    d = os.path.join(workdir, "tls")
    if os.path.exists(os.path.join(d, "key.pem")):
        return d
    os.makedirs(d, exist_ok=True)

    def ossl(*a):
        subprocess.run(["openssl"] + list(a), cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=tern bench CA", "-keyout", "ca-key.pem", "-out", "ca.pem",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", "key.pem", "-out", "req.pem")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth,clientAuth\n"
                "subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "req.pem", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
         "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "cert.pem")
    return d


def qemu_argv(sc, console, qmp_sock, incoming=False):
    argv = [QEMU, "-machine", "microvm,acpi=off", "-accel", "kvm",
            "-cpu", "host,-arch-capabilities", "-m", str(sc["mem_mib"]),
            "-smp", str(sc["cpus"]), "-nodefaults", "-no-user-config",
            "-display", "none", "-serial", "file:" + console,
            "-kernel", GUEST,
            "-append", guest_cmdline(sc),
            "-qmp", "unix:%s,server=on,wait=off" % qmp_sock]
    if incoming:
        argv += ["-incoming", "defer"]
    return argv


def run_once(sc, sysname, sysdef, rep, rundir, log):
    kind = sysdef["kind"]
    tag = "%s.%s.%d" % (sc["name"], sysname, rep)
    d = os.path.join(rundir, tag)
    os.makedirs(d, exist_ok=True)
    src_con, dst_con = os.path.join(d, "src.console"), os.path.join(d, "dst.console")
    src_sock, dst_sock = os.path.join(d, "src.sock"), os.path.join(d, "dst.sock")
    port = free_port()
    uri = "tcp:127.0.0.1:%d" % port
    rec = {"scenario": sc["name"], "system": sysname, "rep": rep,
           "mem_mib": sc["mem_mib"], "ws_mib": sc["ws"], "rate_mibps": sc["rate"],
           "touch": sc["touch"],
           "cpus": sc["cpus"], "params": {k: v for k, v in sysdef.items() if k != "kind"},
           "logdir": os.path.relpath(d, ROOT)}
    tail = ConsoleTail({"src": src_con, "dst": dst_con})
    ctl = dctl = None
    try:
        # --- start destination, then source
        if kind == "tern":
            dargv = [VMM, "--incoming", uri, "--control", dst_sock,
                     "--console", "file:" + dst_con]
            tls_dir = None
            if sysdef.get("tls"):
                tls_dir = tern_tls_dir(os.path.dirname(rundir))
                dargv += ["--tls-dir", tls_dir]
            dst = spawn(dargv, os.path.join(d, "dst.log"))
            wait_listen(port, dst)
            sargv = [VMM, "--name", "src", "--memory", "%dM" % sc["mem_mib"],
                     "--cpus", str(sc["cpus"]), "--kernel", GUEST,
                     "--cmdline", guest_cmdline(sc),
                     "--control", src_sock, "--console", "file:" + src_con]
            src = spawn(sargv, os.path.join(d, "src.log"))
            # the destination opens its control socket only once a source
            # has connected, so it is reached after the migration
            ctl = TernCtl(src_sock)
        else:
            dst = spawn(qemu_argv(sc, dst_con, dst_sock, incoming=True),
                        os.path.join(d, "dst.log"))
            src = spawn(qemu_argv(sc, src_con, src_sock), os.path.join(d, "src.log"))
            dctl = Qmp(dst_sock)
            dctl.execute("migrate-incoming", {"uri": uri})
            ctl = Qmp(src_sock)

        # --- let the guest boot and start dirtying
        if not tail.wait_for("src", is_hb, 20):
            raise RuntimeError("source guest printed no HB")
        t_hb = time.monotonic()
        if sc["ws"]:
            # migrate a guest whose working set is written and verified once:
            # wait for the source's first VERIFY ok (every vCPU's with smp)
            need = sc["cpus"] if sc["smp"] else 1
            end = time.monotonic() + 30
            while time.monotonic() < end:
                seen = {ln.split("cpu=")[1] if "cpu=" in ln else "0"
                        for t, ln in tail.snapshot("src") if ln.startswith("VERIFY ok")}
                if any("VERIFY FAIL" in ln for t, ln in tail.snapshot("src")):
                    raise RuntimeError("VERIFY FAIL on the source before migrating")
                if len(seen) >= need:
                    break
                time.sleep(0.02)
            else:
                raise RuntimeError("source guest printed no VERIFY ok in 30 s")
        if sc["ws"] and not sc["rate"]:
            # written once: migrate when every page of the working set is
            want = sc["ws"] * MIB // 4096
            t_w = time.monotonic()
            while hb_pages(tail.snapshot("src")) < want:
                if time.monotonic() - t_w > WRITE_ONCE_S:
                    raise RuntimeError("working set not written in %d s" % WRITE_ONCE_S)
                time.sleep(0.05)
        rest = WARMUP_S - (time.monotonic() - t_hb)
        if rest > 0:
            time.sleep(rest)
        rec["warmup_s"] = round(time.monotonic() - t_hb, 2)
        if src.poll() is not None or dst.poll() is not None:
            raise RuntimeError("a monitor exited before the migration")

        # --- migrate
        src_cpu0, dst_cpu0 = cpu_seconds(src.pid), cpu_seconds(dst.pid)
        t0 = time.monotonic()
        fig = None
        status = None
        cancelled = False
        t_done = None
        src_cpu1 = dst_cpu1 = None
        if kind == "tern":
            req = {"cmd": "migrate", "uri": uri,
                   "auto_converge": bool(sysdef.get("auto_converge")),
                   "downtime_limit_ms": 100}
            if sysdef.get("max_bandwidth"):
                req["max_bandwidth"] = sysdef["max_bandwidth"]
            if sysdef.get("channels"):
                req["channels"] = sysdef["channels"]
            if sysdef.get("tls"):
                req["tls"] = True
                req["tls_dir"] = tls_dir
            rep_ = ctl.cmd(req)
            if not rep_.get("ok"):
                raise RuntimeError("migrate refused: %s" % rep_)
            passes_seen = 0
            while True:
                left = t0 + MIGRATE_LIMIT_S - time.monotonic()
                if left <= 0 and not cancelled:
                    cancelled = True
                    try:
                        ctl.send({"cmd": "migrate_cancel"})
                    except OSError:
                        pass
                    left = 10
                if left <= 0:
                    status = "timeout"
                    break
                try:
                    m = ctl.read(min(left, 1.0))
                except EOFError:
                    status = status or "source-exited"
                    break
                if m is None:
                    if src.poll() is not None:
                        status = status or "source-exited"
                        break
                    continue
                if m.get("event") == "migration":
                    passes_seen = max(passes_seen, m.get("pass", 0))
                    if m.get("status") in ("completed", "failed", "cancelled"):
                        fig = m
                        status = m["status"]
                        t_done = time.monotonic()
                        dst_cpu1 = cpu_seconds(dst.pid)
                        if status == "completed":
                            try:
                                dctl = TernCtl(dst_sock, timeout=3)
                            except RuntimeError:
                                rec["dst_control"] = "no control socket after completion"
                        if status != "completed":
                            break
                elif m.get("event") == "shutdown":
                    break
            if status == "completed":
                try:
                    _, _, ru = os.wait4(src.pid, 0)
                    src.returncode = 0
                    src_cpu1 = ru.ru_utime + ru.ru_stime
                    rec["src_exit"] = "ok"
                except ChildProcessError:
                    src_cpu1 = None
                try:
                    src.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    rec["src_exit"] = "source did not exit after completed"
            else:
                src_cpu1 = cpu_seconds(src.pid)
            if fig:
                rec["total_s"] = fig.get("total_ms", 0) / 1000.0
                rec["downtime_ms"] = fig.get("downtime_ms")
                rec["setup_ms"] = fig.get("setup_ms")
                rec["bytes"] = fig.get("transferred")
                rec["passes"] = fig.get("pass")
                rec["downtime_split"] = fig.get("downtime")
                rec["monitor"] = fig
        else:
            caps = [{"capability": "auto-converge",
                     "state": bool(sysdef.get("auto_converge"))}]
            ctl.execute("migrate-set-capabilities", {"capabilities": caps})
            params = {"downtime-limit": 100}
            if sysdef.get("max_bandwidth"):
                params["max-bandwidth"] = sysdef["max_bandwidth"]
            ctl.execute("migrate-set-parameters", params)
            t0 = time.monotonic()
            ctl.execute("migrate", {"uri": uri})
            while True:
                q = ctl.execute("query-migrate")
                st = q.get("status")
                if st in ("completed", "failed", "cancelled"):
                    t_done = time.monotonic()
                    src_cpu1, dst_cpu1 = cpu_seconds(src.pid), cpu_seconds(dst.pid)
                    status = st
                    fig = q
                    break
                if time.monotonic() - t0 > MIGRATE_LIMIT_S and not cancelled:
                    cancelled = True
                    ctl.execute("migrate_cancel")
                if time.monotonic() - t0 > MIGRATE_LIMIT_S + 20:
                    status = "timeout"
                    break
                time.sleep(0.02)
            if fig:
                ram = fig.get("ram", {})
                rec["total_s"] = fig.get("total-time", 0) / 1000.0 if "total-time" in fig else None
                rec["downtime_ms"] = fig.get("downtime")
                rec["setup_ms"] = fig.get("setup-time")
                rec["bytes"] = ram.get("transferred")
                rec["passes"] = ram.get("dirty-sync-count")
                rec["monitor"] = fig
            if status == "cancelled" or status == "failed":
                pass
        if cancelled and status in ("cancelled", "failed", "timeout", None, "source-exited"):
            status = "not-converged" if status in ("cancelled", "timeout") else status
        rec["status"] = status
        rec["wall_s"] = round(time.monotonic() - t0, 3)
        if src_cpu0 is not None and src_cpu1 is not None:
            rec["src_cpu_s"] = round(src_cpu1 - src_cpu0, 3)
        if status == "completed":
            if dst_cpu0 is not None and dst_cpu1 is not None:
                rec["dst_cpu_s"] = round(dst_cpu1 - dst_cpu0, 3)
            # --- correctness on the destination
            ok_needed = sc["cpus"] if (sc["ws"] and sc["smp"]) else (1 if sc["ws"] else 0)
            end = t_done + VERIFY_WAIT_S
            end_all = t_done + VERIFY_ALL_S
            verdict = None
            late = False
            while True:
                dl = [(t, ln) for t, ln in tail.snapshot("dst")]
                fails = [ln for t, ln in dl if "VERIFY FAIL" in ln or "FATAL" in ln or "PANIC" in ln]
                if fails:
                    verdict = "FAIL"
                    rec["verify_fail"] = fails[:5]
                    break
                oks = [(t, ln) for t, ln in dl if ln.startswith("VERIFY ok")]
                cpus_ok = {}
                for t, ln in oks:
                    c = ln.split("cpu=")[1].split()[0] if "cpu=" in ln else "0"
                    cpus_ok.setdefault(c, round(t - t_done, 3))
                if cpus_ok:
                    rec["verify_first_s"] = min(cpus_ok.values())
                    rec["verify_by_cpu_s"] = cpus_ok
                hb_after = [t for t, ln in dl if is_hb(ln)]
                if ok_needed == 0 and hb_after:
                    verdict = "alive"
                    break
                if ok_needed and len(cpus_ok) >= ok_needed:
                    first, last = min(cpus_ok.values()), max(cpus_ok.values())
                    verdict = "ok" if first <= VERIFY_WAIT_S and last <= VERIFY_ALL_S else "late-ok"
                    break
                now = time.monotonic()
                if now > end and not cpus_ok and now < t_done + VERIFY_LATE_S:
                    # past the rule's deadline: keep looking only to tell late from never
                    late = True
                if (now > t_done + VERIFY_LATE_S and not cpus_ok) or now > end_all + VERIFY_LATE_S:
                    if not ok_needed:
                        verdict = "no-HB"
                    elif not cpus_ok:
                        verdict = "missing"
                    else:
                        verdict = "missing-cpu"
                    break
                time.sleep(0.05)
            if dst.poll() is not None:
                verdict = "dst-exited(%s)" % dst.returncode
            rec["verify"] = verdict
            # late-ok: the data verified fine but later than the rule's 3 s;
            # it is shown in its own column, not counted as corrupted
            rec["corrupted"] = verdict not in ("ok", "alive", "late-ok")
            rec["verify_late"] = verdict == "late-ok"
            # --- guest-visible pause from HB arrival times
            s_hb = [t for t, ln in tail.snapshot("src") if is_hb(ln) and t >= t0 - 0.05]
            d_hb = [t for t, ln in tail.snapshot("dst") if is_hb(ln)]
            if s_hb and d_hb:
                hb = sorted(s_hb + [t for t in d_hb if t <= d_hb[0] + 0.5])
                gaps = [b - a for a, b in zip(hb, hb[1:])]
                rec["pause_ms"] = round(max(gaps) * 1000, 2) if gaps else None
            # how fast the guest itself dirtied memory while the migration ran
            # (the achieved rate: the second HB field counts pages written,
            # the third is the guest clock), and in the second before it
            if sc["ws"]:
                src_lines = tail.snapshot("src")
                rec["guest_dirty_mibps"] = dirty_rate(src_lines, t0, t_done)
                rec["guest_dirty_before_mibps"] = dirty_rate(src_lines, t0 - 1.0, t0)
            if rec.get("bytes") and rec.get("total_s"):
                rec["throughput_MBps"] = round(rec["bytes"] / rec["total_s"] / 1e6, 1)
            # sequence continuity: the destination continues the source's HB count
            s_seq = [ln for t, ln in tail.snapshot("src") if is_hb(ln)]
            d_seq = [ln for t, ln in tail.snapshot("dst") if is_hb(ln)]
            if s_seq and d_seq:
                try:
                    rec["hb_seq_jump"] = int(d_seq[0].split()[1]) - int(s_seq[-1].split()[1])
                except (ValueError, IndexError):
                    pass
        return rec
    except Exception as exc:  # noqa: BLE001 - a broken run is recorded, not fatal
        rec["status"] = "error"
        rec["error"] = str(exc)
        return rec
    finally:
        # quit politely (so the destination's exit is clean), then kill leftovers
        for c, kindc in ((dctl, kind), (ctl, kind)):
            if c is None:
                continue
            try:
                if kindc == "tern":
                    c.send({"cmd": "quit"})
                else:
                    c.send({"execute": "quit"})
            except OSError:
                pass
            c.close()
        tail.close()
        deadline = time.monotonic() + 3
        for p in list(PROCS):
            while p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        if "src_exit" not in rec and kind == "tern" and rec.get("status") == "completed":
            rec["src_exit"] = "rc=%s" % src.returncode
        kill_all()
        for f in (src_sock, dst_sock):
            try:
                os.unlink(f)
            except OSError:
                pass


# --------------------------------------------------------------------------
# statistics, table, chart

def summary(runs, key):
    vals = [r[key] for r in runs if r.get("status") == "completed" and r.get(key) is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def fmt(s, unit):
    if s is None:
        return "-"
    scale = {"s": 1.0, "ms": 1.0}[unit]
    m, lo, hi = s["median"] * scale, s["min"] * scale, s["max"] * scale

    def g(v):
        if unit == "s":
            return "%.2f" % v if v < 100 else "%.0f" % v
        return "%.1f" % v if v < 100 else "%.0f" % v
    if s["n"] == 1:
        return g(m)
    return "%s [%s-%s]" % (g(m), g(lo), g(hi))


def ratio(a, b):
    if a is None or b is None or not b["median"]:
        return "-"
    return "%.2fx" % (a["median"] / b["median"])


def status_note(runs):
    n = len(runs)
    bad = [r for r in runs if r.get("status") != "completed"]
    cor = [r for r in runs if r.get("corrupted")]
    notes = []
    if bad:
        kinds = {}
        for r in bad:
            kinds[r.get("status")] = kinds.get(r.get("status"), 0) + 1
        notes.append(",".join("%d/%d %s" % (v, n, k) for k, v in kinds.items()))
    if cor:
        notes.append("%d/%d CORRUPTED" % (len(cor), n))
    return "; ".join(notes)


def bulk_table(by, limits):
    """throughput of the written-once scenario, against QEMU and the limits"""
    scn, ts, qu = BULK_ROW
    a = summary(by.get((scn, ts), []), "throughput_MBps")
    c = summary(by.get((scn, qu), []), "throughput_MBps")
    out = ["", "== bulk (2 GiB VM, 1.5 GiB written once): throughput = bytes sent / total time, "
           "MB/s, median [min-max]; HIGHER is better here"]
    out.append("%-28s %-20s %-20s %-8s %-s" % ("", "tern", "QEMU uncapped", "t/Qunc",
                                                "tern / min(loopback, fresh THP write)"))
    bound = min(limits.get("tcp_loopback_GBps") or 0, limits.get("fresh_thp_GBps") or 0) * 1000
    share = "%.0f%% of %.0f MB/s" % (100 * a["median"] / bound, bound) if a and bound else "-"
    out.append("%-28s %-20s %-20s %-8s %s" % ("throughput (MB/s)", fmt(a, "ms"), fmt(c, "ms"),
                                              ratio(a, c), share))
    # the same migration over several connections (tern "channels")
    for n in (2, 4):
        k = summary(by.get((scn, "%s-ch%d" % (ts, n)), []), "throughput_MBps")
        if k:
            out.append("%-28s %-20s %-20s %-8s %s" % (
                "  with %d channels" % n, fmt(k, "ms"), fmt(c, "ms"), ratio(k, c),
                "%.0f%% of %.0f MB/s" % (100 * k["median"] / bound, bound) if bound else "-"))
    return out


def print_tables(all_runs, scenarios, limits):
    by = {}
    for r in all_runs:
        by.setdefault((r["scenario"], r["system"]), []).append(r)
    names = {s["name"] for s in scenarios}
    rows = [row for row in ROWS if row[1] in names]
    out = []
    metrics = [("total time (s)", "total_s", "s"),
               ("downtime as reported by the monitor (ms)", "downtime_ms", "ms"),
               ("guest-visible pause, largest HB gap (ms)", "pause_ms", "ms")]
    hdr = ("%-28s %-20s %-20s %-20s %-8s %-8s" %
           ("scenario", "tern", "QEMU default", "QEMU uncapped", "t/Qdef", "t/Qunc"))
    for title, key, unit in metrics:
        out.append("")
        out.append("== %s: median [min-max]" % title)
        out.append(hdr)
        for label, scn, ts, qd, qu in rows:
            a = summary(by.get((scn, ts), []), key)
            b = summary(by.get((scn, qd), []), key) if qd else None
            c = summary(by.get((scn, qu), []), key) if qu else None
            out.append("%-28s %-20s %-20s %-20s %-8s %-8s" %
                       (label, fmt(a, unit), fmt(b, unit), fmt(c, unit),
                        ratio(a, b), ratio(a, c)))
    if TLS_ROW[0] in names:
        out.append("")
        out.append("== TLS (tern only, %s): median [min-max]" % next(
            s["title"] for s in scenarios if s["name"] == TLS_ROW[0]))
        out.append("%-28s %-20s %-20s %-8s" % ("figure", "tern insecure", "tern TLS", "TLS/ins"))
        for title, key, unit in [("total time (s)", "total_s", "s"), ("downtime (ms)", "downtime_ms", "ms"),
                                 ("guest-visible pause (ms)", "pause_ms", "ms"), ("MiB sent", "bytes", "s"),
                                 ("source CPU (s)", "src_cpu_s", "s"), ("destination CPU (s)", "dst_cpu_s", "s")]:
            a = summary(by.get((TLS_ROW[0], TLS_ROW[1]), []), key)
            b = summary(by.get((TLS_ROW[0], TLS_ROW[2]), []), key)
            if key == "bytes":
                a = a and {k: (v / MIB if k != "n" else v) for k, v in a.items()}
                b = b and {k: (v / MIB if k != "n" else v) for k, v in b.items()}
            out.append("%-28s %-20s %-20s %-8s" % (title, fmt(a, unit),
                                                   fmt(b, unit), ratio(b, a)))
    out.append("")
    out.append("== per system: runs, bytes sent, passes, CPU seconds during the migration, "
               "dirty rate the guest achieved during the migration, correctness")
    out.append("%-13s %-17s %-5s %-9s %-7s %-17s %-17s %-17s %-s" %
               ("scenario", "system", "runs", "MiB sent", "passes", "src CPU s", "dst CPU s",
                "dirty MiB/s", "verify / failures"))
    for s in scenarios:
        for sysname in s["systems"]:
            runs = by.get((s["name"], sysname), [])
            if not runs:
                continue
            b = summary(runs, "bytes")
            p = summary(runs, "passes")
            sc_ = summary(runs, "src_cpu_s")
            dc = summary(runs, "dst_cpu_s")
            dr = summary(runs, "guest_dirty_mibps")
            ver = {}
            for r in runs:
                if r.get("verify"):
                    ver[r["verify"]] = ver.get(r["verify"], 0) + 1
            vs = ",".join("%s:%d" % kv for kv in ver.items())
            note = status_note(runs)
            out.append("%-13s %-17s %-5d %-9s %-7s %-17s %-17s %-17s %s" % (
                s["name"], sysname, len(runs),
                "%.0f" % (b["median"] / MIB) if b else "-",
                "%g" % p["median"] if p else "-",
                fmt(sc_, "s"), fmt(dc, "s"), fmt(dr, "ms"),
                (vs + ("  " + note if note else "")) or "-"))
    if BULK_ROW[0] in names:
        out += bulk_table(by, limits)
    if limits:
        out.append("")
        out.append("== physical limits measured in this run: loopback TCP %.2f GB/s (one stream), "
                   "memcpy %.2f GB/s (one thread)," % (limits.get("tcp_loopback_GBps", 0),
                                                       limits.get("memcpy_GBps", 0)))
        out.append("   write fresh memory %.2f GB/s (4 KiB pages), %.2f GB/s (MADV_HUGEPAGE, %.0f%% huge; "
                   "THP %s), %.2f GB/s (memfd, %.0f%% huge; shmem THP %s)" % (
                       limits.get("fresh_4k_GBps", 0), limits.get("fresh_thp_GBps", 0),
                       100 * limits.get("fresh_thp_huge_share", 0), limits.get("thp_enabled", "?"),
                       limits.get("fresh_memfd_GBps", 0), 100 * limits.get("fresh_memfd_huge_share", 0),
                       limits.get("thp_shmem_enabled", "?")))
    out.append("ratios are tern / QEMU on medians: below 1.00x tern is faster or shorter.")
    text = "\n".join(out)
    print(text)
    return text


def make_chart(all_runs, scenarios, png):
    gp = shutil.which("gnuplot")
    if not gp:
        print("bench: gnuplot not found, no chart")
        return None
    by = {}
    for r in all_runs:
        by.setdefault((r["scenario"], r["system"]), []).append(r)
    names = {s["name"] for s in scenarios}
    rows = [row for row in ROWS if row[1] in names]
    tmp = tempfile.mkdtemp(prefix="tern-bench-gp-")
    dat = os.path.join(tmp, "data.dat")
    with open(dat, "w") as f:
        for key, div in (("total_s", 1.0), ("pause_ms", 1.0)):
            f.write("# %s\n" % key)
            for label, scn, ts, qd, qu in rows:
                cols = ['"%s"' % label.replace('"', "'")]
                for sysn in (ts, qd, qu):
                    s = summary(by.get((scn, sysn), []), key) if sysn else None
                    if s:
                        cols += ["%g" % (s["median"] / div), "%g" % (s["min"] / div),
                                 "%g" % (s["max"] / div)]
                    else:
                        cols += ["0.0001", "0.0001", "0.0001"]
                f.write(" ".join(cols) + "\n")
            f.write("\n\n")
    height = 900
    width = max(1100, 150 * len(rows) + 300)
    script = """
set terminal pngcairo size %d,%d font "sans,10" noenhanced
set output "%s"
set multiplot layout 2,1 title "tern vs QEMU live migration (median, bars = min-max; missing bar = no completed run)" font "sans,13"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left
set xtics rotate by -20 scale 0
set logscale y
set yrange [0.01:*]
set ylabel "total migration time (s, log)"
set title "total time"
plot "%s" index 0 using 2:3:4:xtic(1) title "tern" lc rgb "#1b9e77", \\
     "" index 0 using 5:6:7 title "QEMU default (128 MiB/s cap)" lc rgb "#d95f02", \\
     "" index 0 using 8:9:10 title "QEMU uncapped" lc rgb "#7570b3"
set yrange [1:*]
set ylabel "largest HB gap (ms, log)"
set title "guest-visible pause (heartbeat every %d ms)"
plot "%s" index 1 using 2:3:4:xtic(1) title "tern" lc rgb "#1b9e77", \\
     "" index 1 using 5:6:7 title "QEMU default (128 MiB/s cap)" lc rgb "#d95f02", \\
     "" index 1 using 8:9:10 title "QEMU uncapped" lc rgb "#7570b3"
unset multiplot
""" % (width, height, png, dat, HB_MS, dat)
    gpf = os.path.join(tmp, "chart.gp")
    with open(gpf, "w") as f:
        f.write(script)
    r = subprocess.run([gp, gpf], capture_output=True, text=True)
    shutil.rmtree(tmp, ignore_errors=True)
    if r.returncode != 0:
        print("bench: gnuplot failed: %s" % r.stderr.strip())
        return None
    return png


def measure_limits(workdir):
    src = os.path.join(ROOT, "bench", "tools", "limits.c")
    exe = os.path.join(workdir, "limits")
    try:
        subprocess.run(["cc", "-O2", "-o", exe, src], check=True)
        r = subprocess.run([exe], check=True, capture_output=True, text=True, timeout=120)
        return json.loads(r.stdout)
    except Exception as exc:  # noqa: BLE001
        print("bench: limits not measured: %s" % exc)
        return {}


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="a few scenarios, once each (under 3 minutes)")
    ap.add_argument("--repeat", type=int, help="runs per scenario and system (default 3, quick 1)")
    ap.add_argument("--only", help="comma separated scenario names (%s)" %
                    ",".join(s["name"] for s in SCENARIOS))
    ap.add_argument("--systems", help="comma separated system names to keep (e.g. tern,qemu-uncapped)")
    ap.add_argument("--replot", help="redraw table and chart from an existing results .jsonl")
    ap.add_argument("--no-limits", action="store_true",
                    help="skip measuring the physical limits (quick checks during development)")
    args = ap.parse_args()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    atexit.register(kill_all)

    os.makedirs(RESULTS, exist_ok=True)
    if args.replot:
        runs, limits = [], {}
        with open(args.replot) as f:
            for line in f:
                o = json.loads(line)
                if o.get("type") == "limits":
                    limits = o
                elif o.get("type") == "run":
                    runs.append(o)
        names = {r["scenario"] for r in runs}
        scs = [s for s in SCENARIOS if s["name"] in names]
        print_tables(runs, scs, limits)
        png = args.replot.replace(".jsonl", ".png").replace("run-", "chart-")
        print("chart: %s" % make_chart(runs, scs, png))
        return 0

    for f in (VMM, GUEST):
        if not os.path.exists(f):
            sys.exit("bench: %s missing; run `make all test-bins` first" % f)
    if not shutil.which(QEMU):
        sys.exit("bench: qemu-system-x86_64 missing (scripts/install-deps qemu-system-x86)")

    scenarios = SCENARIOS
    if args.quick:
        scenarios = [s for s in SCENARIOS if s["name"] in QUICK]
    if args.only:
        want = args.only.split(",")
        scenarios = [s for s in SCENARIOS if s["name"] in want]
    repeat = args.repeat or (1 if args.quick else 3)
    if args.systems:
        keep = set(args.systems.split(","))
        scenarios = [dict(s, systems={k: v for k, v in s["systems"].items() if k in keep})
                     for s in scenarios]

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    jsonl = os.path.join(RESULTS, "run-%s.jsonl" % stamp)
    rundir = os.path.join(RESULTS, "logs-%s" % stamp)
    os.makedirs(rundir, exist_ok=True)
    t_start = time.monotonic()
    out = open(jsonl, "w")

    limits = {} if args.no_limits else measure_limits(rundir)
    limits["type"] = "limits"
    out.write(json.dumps(limits) + "\n")
    out.flush()
    if limits.get("tcp_loopback_GBps"):
        print("bench: loopback TCP %.2f GB/s, memcpy %.2f GB/s, fresh memory %.2f GB/s (4 KiB), "
              "%.2f GB/s (THP), %.2f GB/s (memfd)" %
              (limits["tcp_loopback_GBps"], limits.get("memcpy_GBps", 0),
               limits.get("fresh_4k_GBps", 0), limits.get("fresh_thp_GBps", 0),
               limits.get("fresh_memfd_GBps", 0)))

    nruns = sum(len(s["systems"]) for s in scenarios) * repeat
    i = 0
    all_runs = []
    # interleave repetitions so slow drifts of the machine hit every system alike
    for s in scenarios:
        for rep in range(repeat):
            for sysname, sysdef in s["systems"].items():
                i += 1
                sys.stdout.write("[%d/%d] %-11s %-17s rep %d ... " % (i, nruns, s["name"], sysname, rep + 1))
                sys.stdout.flush()
                r = run_once(s, sysname, sysdef, rep, rundir, out)
                r["type"] = "run"
                all_runs.append(r)
                out.write(json.dumps(r) + "\n")
                out.flush()
                if r.get("status") == "completed":
                    extra = ""
                    if r.get("guest_dirty_mibps") is not None and s["rate"]:
                        extra += ", dirtied %s MiB/s (%s before)" % (
                            r["guest_dirty_mibps"], r.get("guest_dirty_before_mibps"))
                    if not s["rate"] and s["ws"]:
                        extra += ", %s MB/s" % r.get("throughput_MBps")
                    print("%s total %.2f s, downtime %.1f ms, pause %s ms, %.0f MiB, %s passes%s, verify %s" % (
                        r["status"], r.get("total_s") or 0, r.get("downtime_ms") or 0, r.get("pause_ms"),
                        (r.get("bytes") or 0) / MIB, r.get("passes"), extra, r.get("verify")))
                else:
                    print("%s %s (logs: %s)" % (r.get("status"), r.get("error", ""), r["logdir"]))
    out.close()

    text = print_tables(all_runs, scenarios, limits)
    with open(os.path.join(RESULTS, "table-%s.txt" % stamp), "w") as f:
        f.write(text + "\n")
    png = make_chart(all_runs, scenarios, os.path.join(RESULTS, "chart-%s.png" % stamp))
    print("")
    print("raw runs: %s" % os.path.relpath(jsonl, ROOT))
    if png:
        print("chart:    %s" % os.path.relpath(png, ROOT))
    print("bench took %.0f s" % (time.monotonic() - t_start))
    bad = [r for r in all_runs if r.get("corrupted") or r.get("status") in ("error", "failed")]
    tern_bad = [r for r in bad if r["system"].startswith("tern")]
    if tern_bad:
        print("bench: %d tern run(s) failed or corrupted, see the logs above" % len(tern_bad))
    return 0


if __name__ == "__main__":
    sys.exit(main())
