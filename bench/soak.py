#!/usr/bin/env python3
"""Soak test (issue 10): a stream with random seeks and pauses while other torrents are added and removed, for
30 minutes by default (--seconds N). Runs against the build of your choice (--bin-dir; build-asan/bin by default when
present, so ASan/LSan watch for leaks and memory errors). Samples the playhead process's VmRSS every few seconds and
prints start/end/max; asserts that every byte read is correct, that the torrents' memory never exceeds the configured
budget, that RSS is flat (the last quarter's mean within 20 % + 16 MiB of the second quarter's) and, under ASan, that
the process exits cleanly (no leak report).

Usage: /usr/bin/python3 bench/soak.py [--seconds 1800] [--bin-dir build-asan/bin] [--memory-mib 32]"""
import argparse
import json
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float, default=1800)
ap.add_argument("--bin-dir", default=None)
ap.add_argument("--memory-mib", type=int, default=32)
ap.add_argument("--sample", type=float, default=3.0)
ap.add_argument("--seed", type=int, default=1)
args = ap.parse_args()
if args.bin_dir is None:
    asan = os.path.join(SRC, "build-asan", "bin")
    args.bin_dir = os.environ.get("PLAYHEAD_BIN_DIR") or (asan if os.path.exists(os.path.join(asan, "playhead"))
                                                          else os.path.join(SRC, "build", "bin"))
os.environ["PLAYHEAD_BIN_DIR"] = os.path.abspath(args.bin_dir)
# Small ASan quarantine: the default 256 MiB would itself look like growth. Leak checking stays on.
os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:quarantine_size_mb=16:malloc_context_size=10")
sys.path.insert(0, os.path.join(SRC, "tests", "interop"))
from swarm import (LtPeer, Playhead, fail, make_content, make_torrent, raw_stream_get, tempdir,  # noqa: E402
                   vm_rss_bytes, wait_until)

rnd = random.Random(args.seed)
PIECE = 256 * 1024
root = tempdir("playhead-soak-")
main = make_content(root, [("main/film.mp4", 48 * 1024 * 1024)], seed=3)["main/film.mp4"]
main_torrent, main_ih = make_torrent(os.path.join(root, "main"), PIECE)
extras = []
for i in range(3):
    rel = "extra%d/clip.mkv" % i
    d = make_content(root, [(rel, 4 * 1024 * 1024 + i * 77777)], seed=20 + i)[rel]
    t, h = make_torrent(os.path.join(root, "extra%d" % i), 64 * 1024)
    extras.append((t, h, d))
seeders = [LtPeer(main_torrent, root)] + [LtPeer(t, root) for t, _, _ in extras]
for s in seeders:
    s.wait_seeding(30)
budget = args.memory_mib << 20
ph = Playhead(env={"TORRENT_MEMORY_LIMIT": "%dMiB" % args.memory_mib, "TORRENT_READAHEAD": "8MiB"})
ph.add_torrent(main_torrent)
ph.connect(main_ih, seeders[0].port)
wait_until(lambda: ph.detail(main_ih).get("files"), 20, "the main torrent's files", ph)

samples = []  # (t, rss bytes, torrents' memory bytes)
stop = threading.Event()
errors = []


def sampler():
    t0 = time.time()
    while not stop.is_set():
        try:
            st, body, _ = ph.get("/api/torrents", timeout=10)
            mem = sum(t.get("memoryBytes", 0) for t in json.loads(body)) if st == 200 else 0
            samples.append((time.time() - t0, vm_rss_bytes(ph.proc.pid), mem))
            if mem > budget:
                errors.append("torrents hold %d bytes, budget %d" % (mem, budget))
        except (OSError, ValueError) as e:
            errors.append("sampling: %s" % e)
        stop.wait(args.sample)


def read_range(ih, index, data, lo, n, pace=0.0):
    """Reads [lo, lo+n) like a player (optionally paced) and checks every byte."""
    head, body = raw_stream_get(ph.http_port, "/stream/%s/%d" % (ih, index), n,
                                b"Range: bytes=%d-%d\r\n" % (lo, lo + n - 1), pace)
    if not head.startswith(b"HTTP/1.1 206") or body[:n] != data[lo:lo + n]:
        errors.append("range %d+%d of %s: %r, identical %s" % (lo, n, ih[:8], head[:40], body[:n] == data[lo:lo + n]))


threading.Thread(target=sampler, daemon=True).start()
deadline = time.time() + args.seconds
counts = {"seek": 0, "pause": 0, "add_remove": 0, "bytes": 0}
pos = 0
while time.time() < deadline and not errors:
    action = rnd.random()
    if action < 0.6:  # play on from the playhead, or seek somewhere
        if rnd.random() < 0.4:
            pos = rnd.randrange(0, len(main) - 1)
            counts["seek"] += 1
        n = min(rnd.randrange(256 * 1024, 3 * 1024 * 1024), len(main) - pos)
        read_range(main_ih, 0, main, pos, n, pace=0.002)
        counts["bytes"] += n
        pos = (pos + n) % len(main)
    elif action < 0.75:  # the viewer pauses, then resumes
        ph.api("POST", "/torrents/%s/pause" % main_ih)
        time.sleep(rnd.uniform(0.2, 2.0))
        ph.api("POST", "/torrents/%s/play" % main_ih)
        counts["pause"] += 1
    else:  # another torrent comes and goes
        t, h, d = rnd.choice(extras)
        ph.add_torrent(t)
        ph.connect(h, seeders[1 + extras.index((t, h, d))].port)
        wait_until(lambda: (ph.detail(h) or {}).get("files"), 20, "an extra torrent's files", ph)
        lo = rnd.randrange(0, len(d) - 1)
        n = min(512 * 1024, len(d) - lo)
        read_range(h, 0, d, lo, n)
        counts["bytes"] += n
        st, _ = ph.api("DELETE", "/torrents/%s" % h)
        if st >= 300:
            errors.append("removing %s: %s" % (h, st))
        counts["add_remove"] += 1
    if ph.proc.poll() is not None:
        errors.append("playhead exited with %s" % ph.proc.returncode)
stop.set()
time.sleep(0.2)
code = ph.stop()
if errors:
    fail("; ".join(errors[:5]) + "\n" + ph.log_text()[-3000:])
if len(samples) < 4:
    fail("too few RSS samples (%d)" % len(samples))
rss = [r for _, r, _ in samples]
q = max(1, len(rss) // 4)
second, last = rss[q:2 * q], rss[-q:]
mean2, mean4 = sum(second) / len(second), sum(last) / len(last)
print("soak: %.0f s, %d seeks, %d pauses, %d torrents added and removed, %.0f MiB read and checked" %
      (args.seconds, counts["seek"], counts["pause"], counts["add_remove"], counts["bytes"] / 2 ** 20))
print("soak: VmRSS start %.1f MiB, end %.1f MiB, max %.1f MiB (%d samples); torrents' memory max %.1f of %d MiB" %
      (rss[0] / 2 ** 20, rss[-1] / 2 ** 20, max(rss) / 2 ** 20, len(rss), max(m for _, _, m in samples) / 2 ** 20,
       args.memory_mib))
print("soak: RSS curve (MiB): " + " ".join("%.0f" % (r / 2 ** 20) for r in rss[:: max(1, len(rss) // 20)]))
# Under ASan the allocator's quarantine holds freed memory back by design, so RSS climbs whatever the program does;
# there LeakSanitizer at exit (the clean-exit check below) is the leak check, and flat RSS is checked on plain builds.
sanitized = os.environ.get("PLAYHEAD_SANITIZED") == "1"
if sanitized:
    print("soak: sanitizer build: RSS flatness not asserted (ASan quarantine); leaks are checked at exit")
elif mean4 > mean2 * 1.2 + (16 << 20):
    fail("RSS grew: second quarter mean %.1f MiB, last quarter mean %.1f MiB" % (mean2 / 2 ** 20, mean4 / 2 ** 20))
if code != 0:
    fail("playhead exited with %s on SIGTERM (a sanitizer or leak report?)\n%s" % (code, ph.log_text()[-4000:]))
print("soak: PASS (budget respected, RSS flat, clean exit)")
