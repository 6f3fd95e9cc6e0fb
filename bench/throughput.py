#!/usr/bin/python3
"""Loopback throughput: Playhead downloading a whole torrent from a libtorrent seeder and from a Playhead seeder, and
libtorrent downloading from the libtorrent seeder for reference. Prints MiB/s and CPU seconds (user + sys of the
downloading process) per GiB, plus the machine's single-core SHA-1 speed.

    /usr/bin/python3 bench/throughput.py [--mib 1024] [--bin build/bin]
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))

ap = argparse.ArgumentParser()
ap.add_argument("--mib", type=int, default=1024)
ap.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "bin"))
args = ap.parse_args()
os.environ["PLAYHEAD_BIN_DIR"] = os.path.abspath(args.bin)

import swarm  # noqa: E402
from swarm import LtPeer, Playhead, make_torrent, tempdir  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def sha1_limit():
    out = subprocess.run(["openssl", "speed", "-evp", "sha1", "-bytes", "16384", "-seconds", "2"],
                         capture_output=True, text=True).stdout
    m = re.search(r"^sha1\s+([\d.]+)k", out, re.M)
    return float(m.group(1)) * 1000 / (1 << 20) if m else float("nan")


root = tempdir("playhead-bench-")
size = args.mib << 20
path = os.path.join(root, "big.bin")
with open(path, "wb") as f:
    chunk = os.urandom(1 << 20)
    for i in range(args.mib):
        f.write(i.to_bytes(8, "little") + chunk[8:])  # every MiB distinct, cheap to generate
torrent, ih = make_torrent(path, 1 << 20)
tfile = os.path.join(root, "big.torrent")
open(tfile, "wb").write(torrent)

lt_seed = LtPeer(torrent, root)
lt_seed.wait_seeding(600)
ph_seed = Playhead(seed=(tfile, root))
deadline = time.time() + 600
while time.time() < deadline and (ph_seed.detail(ih) or {}).get("progress") != 1.0:
    time.sleep(0.5)

results = []


def run_playhead(label, seeder_port, env):
    ph = Playhead(env=env)
    ph.add_torrent(torrent)
    cpu0 = cpu_seconds(ph.proc.pid)
    t0 = time.time()
    ph.connect(ih, seeder_port)
    if env.get("TORRENT_STORAGE_MODE") == "disk":
        while ph.detail(ih)["state"] != "seeding":
            if time.time() - t0 > 900:
                swarm.fail(label + ": did not finish")
            time.sleep(0.05)
    else:
        # Memory mode fetches what a reader asks for: read the whole file over HTTP.
        import urllib.request
        with urllib.request.urlopen(ph.base + "/stream/%s/0" % ih, timeout=900) as r:
            got = 0
            while True:
                b = r.read(1 << 20)
                if not b:
                    break
                got += len(b)
        if got != size:
            swarm.fail(label + ": short read")
    secs = time.time() - t0
    cpu = cpu_seconds(ph.proc.pid) - cpu0
    results.append((label, args.mib / secs, cpu / (args.mib / 1024)))
    ph.stop()


run_playhead("Playhead disk mode <- libtorrent seeder", lt_seed.port, {"TORRENT_STORAGE_MODE": "disk"})
run_playhead("Playhead disk mode <- Playhead seeder", ph_seed.peer_port, {"TORRENT_STORAGE_MODE": "disk"})
run_playhead("Playhead memory mode <- libtorrent seeder", lt_seed.port,
             {"TORRENT_MEMORY_LIMIT": "%dMiB" % (args.mib + 64)})
run_playhead("Playhead memory mode <- Playhead seeder", ph_seed.peer_port,
             {"TORRENT_MEMORY_LIMIT": "%dMiB" % (args.mib + 64)})

lt_dir = tempdir("playhead-bench-lt-")
t0 = time.time()
cpu0 = sum(os.times()[:2])
leech = LtPeer(torrent, lt_dir)
leech.connect(lt_seed.port)
leech.wait_seeding(900)
secs = time.time() - t0
# libtorrent runs inside this Python process: its CPU is ours (minus the seeder's share, which is also here, so
# this figure is an upper bound).
cpu = sum(os.times()[:2]) - cpu0
results.append(("libtorrent <- libtorrent seeder (CPU includes the seeder)", args.mib / secs, cpu / (args.mib / 1024)))

print("\n| %d MiB torrent, 1 MiB pieces, loopback | MiB/s | CPU s per GiB |" % args.mib)
print("| --- | ---: | ---: |")
for label, rate, cpu in results:
    print("| %s | %.0f | %.2f |" % (label, rate, cpu))
print("| single-core SHA-1 limit (openssl speed -evp sha1, 16 KiB) | %.0f | |" % sha1_limit())
