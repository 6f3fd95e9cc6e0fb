#!/usr/bin/python3
"""One download on loopback, measured per process and per thread: the tool behind the throughput work.

    bench/swarm_probe.py [--mib 512] [--mode disk|memory] [--seeders ph,lt] [--perf seeder|downloader]

Seeders of the same content (Playhead seed-only instances "ph", libtorrent "lt", any mix), one Playhead downloader
in disk mode (downloads everything) or memory mode (a Python HTTP reader pulls the whole file, only counting bytes:
the e2e benchmark checks every byte, this probe leaves the CPU to the engines). Prints MiB/s and CPU seconds per GiB
for every process and the busiest threads, so it shows which process and which thread is the limit. --perf records
`perf record -g` of one process into perf.data in the working directory."""
import argparse
import http.client
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
ap.add_argument("--mib", type=int, default=512)
ap.add_argument("--mode", choices=("disk", "memory"), default="disk")
ap.add_argument("--seeders", default="ph")
ap.add_argument("--perf", choices=("seeder", "downloader"))
args = ap.parse_args()
os.environ["PLAYHEAD_BIN_DIR"] = os.path.abspath(args.bin)

import swarm  # noqa: E402
from swarm import LtPeer, Playhead, cpu_seconds, make_indexed_content, tempdir, thread_cpu_seconds  # noqa: E402

MIB = 1 << 20
root = tempdir("probe-")
content = make_indexed_content(root, "big.bin", args.mib)
torrent, ih, tfile = content["torrent"], content["ih"], content["tfile"]

seeders = []  # (label, pid or None, port)
for kind in args.seeders.split(","):
    if kind == "ph":
        s = Playhead(seed=(tfile, root))
        swarm.wait_until(lambda: (s.detail(ih) or {}).get("progress") == 1.0, 120, "Playhead seeder")
        seeders.append(("ph-seeder", s.proc.pid, s.peer_port))
    elif kind == "lt":
        s = LtPeer(torrent, root)
        s.wait_seeding(120)
        seeders.append(("lt-seeder", os.getpid(), s.port))  # in this process: its CPU is the probe's
    else:
        sys.exit("unknown seeder kind %r" % kind)

env = {"TORRENT_STORAGE_MODE": "disk"} if args.mode == "disk" else {"TORRENT_MEMORY_LIMIT": "%dMiB" % (args.mib + 64)}
ph = Playhead(env=env)
ph.add_torrent(torrent)
pids = [("downloader", ph.proc.pid)] + [(label, pid) for label, pid, _ in seeders]
perf = None
if args.perf:
    target = ph.proc.pid if args.perf == "downloader" else seeders[0][1]
    perf = subprocess.Popen(["perf", "record", "-g", "-o", "perf.data", "-p", str(target)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
cpu0 = {label: cpu_seconds(pid) for label, pid in pids}
thr0 = {label: thread_cpu_seconds(pid) for label, pid in pids}
t = time.monotonic()
for _, _, port in seeders:
    ph.connect(ih, port)
if args.mode == "disk":
    # 10 ms polls: 0.1 s would be a tenth of a 1 GiB download.
    swarm.wait_until(lambda: ph.detail(ih)["state"] == "seeding", 300, "the download", interval=0.01)
else:
    conn = http.client.HTTPConnection("127.0.0.1", ph.http_port, timeout=60)
    conn.request("GET", "/stream/%s/0" % ih)
    r = conn.getresponse()
    buf = bytearray(MIB)
    got = 0
    while True:
        n = r.readinto(buf)
        if not n:
            break
        got += n
    if got != args.mib * MIB:
        sys.exit("short read: %d" % got)
secs = time.monotonic() - t
hwm = swarm.vm_hwm_bytes(ph.proc.pid) / MIB
if perf:
    perf.send_signal(2)
    perf.wait(30)
gib = args.mib / 1024
print("%d MiB %s mode from %s: %.2f s, %.0f MiB/s, downloader peak RSS %.0f MiB" %
      (args.mib, args.mode, args.seeders, secs, args.mib / secs, hwm))
for label, pid in pids:
    used = cpu_seconds(pid) - cpu0[label]
    now = thread_cpu_seconds(pid)
    busy = sorted(((v - thr0[label].get(k, 0), k) for k, v in now.items()), reverse=True)[:4]
    print("  %-11s %.2f CPU s/GiB (%.0f%% of one core)   %s" %
          (label, used / gib, 100 * used / secs, "  ".join("%s %.2f" % (k, v) for v, k in busy if v > 0.005)))
