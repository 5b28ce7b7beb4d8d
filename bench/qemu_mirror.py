#!/usr/bin/env python3
"""QEMU's drive-mirror of a local raw image, for bench/disk_mirror.sh.

What Proxmox does for a migration with local disks, without the RAM part:
a destination QEMU (stopped, -S) exports a target raw image over NBD
(nbd-server-start + nbd-server-add writable); a source QEMU (stopped, -S,
like tern's paused VM) has the source image as a block node and runs
drive-mirror sync=full into nbd://127.0.0.1:PORT/disk0 (format raw, mode
existing). Timed from the drive-mirror command to BLOCK_JOB_READY; then
block-job-cancel (which, after READY, ends the job as BLOCK_JOB_COMPLETED
with the target consistent) and the time to that event. Python 3 standard library only.

usage: qemu_mirror.py GUEST SRC.IMG DST.IMG PORT WORKDIR
prints one line: ready_ms=N cancel_ms=N len=BYTES offset=BYTES
"""
import json
import os
import socket
import subprocess
import sys
import time

QEMU = "qemu-system-x86_64"
TIMEOUT = 300


class Qmp:
    def __init__(self, path):
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb")
        self.events = []
        self.read()  # greeting
        self.execute("qmp_capabilities")

    def read(self):
        line = self.file.readline()
        if not line:
            raise RuntimeError("qmp: connection closed")
        return json.loads(line)

    def execute(self, cmd, **args):
        self.file.write(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
        self.file.flush()
        while True:
            msg = self.read()
            if "event" in msg:
                self.events.append(msg)
            elif "error" in msg:
                raise RuntimeError("qmp %s: %s" % (cmd, msg["error"]["desc"]))
            elif "return" in msg:
                return msg["return"]

    def wait_event(self, names, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] in names:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("qmp: no %s in %d s" % ("/".join(names), timeout))
            self.sock.settimeout(left)
            msg = self.read()
            self.sock.settimeout(None)
            if "event" in msg:
                self.events.append(msg)


def qemu(guest, workdir, name, extra):
    sock = os.path.join(workdir, name + ".qmp")
    argv = [QEMU, "-machine", "microvm,acpi=off", "-accel", "kvm",
            "-cpu", "host,-arch-capabilities", "-m", "128", "-nodefaults",
            "-no-user-config", "-display", "none", "-S",
            "-serial", "file:" + os.path.join(workdir, name + ".console"),
            "-kernel", guest, "-qmp", "unix:%s,server=on,wait=off" % sock] + extra
    log = open(os.path.join(workdir, name + ".log"), "wb")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), sock


def blockdev(path, node):
    return ["-blockdev", "driver=file,filename=%s,node-name=%s-file,cache.direct=off" % (path, node),
            "-blockdev", "driver=raw,file=%s-file,node-name=%s" % (node, node)]


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    guest, src_img, dst_img, port, workdir = sys.argv[1:]
    procs = []
    try:
        dst, dst_sock = qemu(guest, workdir, "qdst", blockdev(dst_img, "disk0"))
        procs.append(dst)
        src, src_sock = qemu(guest, workdir, "qsrc", blockdev(src_img, "disk0"))
        procs.append(src)
        qd, qs = Qmp(dst_sock), Qmp(src_sock)
        qd.execute("nbd-server-start",
                   addr={"type": "inet", "data": {"host": "127.0.0.1", "port": port}})
        qd.execute("nbd-server-add", device="disk0", writable=True)
        t0 = time.monotonic()
        qs.execute("drive-mirror", device="disk0", sync="full",
                   target="nbd://127.0.0.1:%s/disk0" % port, format="raw", mode="existing",
                   **{"job-id": "mirror0"})
        qs.wait_event(("BLOCK_JOB_READY",))
        ready = time.monotonic()
        job = [j for j in qs.execute("query-block-jobs") if j["device"] == "mirror0"][0]
        qs.execute("block-job-cancel", device="mirror0")
        # after READY a cancel completes the job (the target stays consistent)
        ev = qs.wait_event(("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"))
        if ev["event"] != "BLOCK_JOB_COMPLETED" or ev["data"].get("error"):
            raise RuntimeError("mirror0 ended with %s" % json.dumps(ev["data"]))
        done = time.monotonic()
        qd.execute("nbd-server-stop")
        for q in (qs, qd):
            q.execute("quit")
        print("ready_ms=%.0f cancel_ms=%.0f len=%d offset=%d" %
              ((ready - t0) * 1000, (done - t0) * 1000, job["len"], job["offset"]))
    finally:
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, OSError) as e:
        sys.exit("qemu_mirror: %s" % e)
