"""Peer wire interop (issue 4): Playhead against libtorrent-rasterbar and against itself, on loopback.

1. Playhead (memory mode) downloads a multi-file torrent from a libtorrent seeder: every file byte-identical over HTTP.
2. Playhead in disk mode: the files on disk are byte-identical.
3. libtorrent downloads the torrent from a Playhead seeder (`playhead seed`).
4. From a magnet link with only x.pe: metadata over BEP 9 from libtorrent, then the data.
5. Playhead <-> Playhead, and one Playhead from three seeders at once (one of them libtorrent).
6. A seeder serving one corrupted piece: the download completes correctly and that peer is banned.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from swarm import LtPeer, Playhead, fail, make_content, make_torrent, tempdir  # noqa: E402
from fake_peer import FakeSeeder  # noqa: E402

PIECE = 64 * 1024
root = tempdir()
content = make_content(root, [("movie/a.mp4", 2 * 1024 * 1024 + 12345), ("movie/extras/b.srt", 700000),
                              ("movie/c.txt", 5000), ("movie/empty.dat", 0)])
torrent, ih = make_torrent(os.path.join(root, "movie"), PIECE)


def stream_all(ph, label):
    d = ph.detail(ih)
    if not d or not d.get("files"):
        fail("%s: no file list in %s" % (label, d))
    for f in d["files"]:
        status, body, headers = ph.get("/stream/%s/%d" % (ih, f["index"]), timeout=60)
        want = content[f["path"]]
        if status != 200 or body != want:
            fail("%s: %s: status %d, %d bytes, identical=%s\n%s" %
                 (label, f["path"], status, len(body), body == want, ph.log_text()))
    print("PASS %s: %d files byte-identical" % (label, len(d["files"])), flush=True)


def wait_until(pred, timeout, what, ph=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    fail("timed out after %ds waiting for %s%s" % (timeout, what, ("\n" + ph.log_text()) if ph else ""))


seeder = LtPeer(torrent, root)
seeder.wait_seeding(30)

# 1. Memory mode from libtorrent.
ph = Playhead()
ph.add_torrent(torrent)
ph.connect(ih, seeder.port)
stream_all(ph, "memory mode from libtorrent")
if os.path.exists(os.path.join(ph.cwd, "downloads")) and os.listdir(os.path.join(ph.cwd, "downloads")):
    fail("memory mode wrote files")
ph.stop()

# 2. Disk mode from libtorrent: the whole torrent lands on disk.
ph = Playhead(env={"TORRENT_STORAGE_MODE": "disk"})
ph.add_torrent(torrent)
ph.connect(ih, seeder.port)
wait_until(lambda: ph.detail(ih)["state"] == "seeding", 60, "disk-mode download to complete", ph)
for rel, data in content.items():
    path = os.path.join(ph.cwd, "downloads", rel)
    if os.path.getsize(path) != len(data) or open(path, "rb").read() != data:
        fail("disk mode: %s differs" % rel)
print("PASS disk mode from libtorrent: files on disk byte-identical", flush=True)
ph.stop()

# 3. libtorrent downloads from a Playhead seeder.
tfile = os.path.join(tempdir(), "movie.torrent")
open(tfile, "wb").write(torrent)
seed = Playhead(seed=(tfile, root))
wait_until(lambda: (seed.detail(ih) or {}).get("progress") == 1.0, 30, "the Playhead seeder to verify its data", seed)
lt_dir = tempdir()
leecher = LtPeer(torrent, lt_dir)
leecher.connect(seed.peer_port)
leecher.wait_seeding(60)
for rel, data in content.items():
    if open(os.path.join(lt_dir, rel), "rb").read() != data:
        fail("libtorrent from Playhead: %s differs" % rel)
print("PASS libtorrent downloads from a Playhead seeder: byte-identical", flush=True)

# 4. Magnet with x.pe only: metadata from libtorrent (BEP 9), then data.
ph = Playhead()
status, t = ph.api("POST", "/torrents", {"magnet": "magnet:?xt=urn:btih:%s&x.pe=127.0.0.1:%d" % (ih, seeder.port)})
if status not in (200, 201):
    fail("magnet add: %s %s" % (status, t))
wait_until(lambda: ph.detail(ih).get("files"), 30, "metadata over BEP 9", ph)
stream_all(ph, "magnet with x.pe, metadata from libtorrent")
ph.stop()

# 5. Playhead <-> Playhead, then three seeders at once (Playhead, Playhead, libtorrent).
seed2 = Playhead(seed=(tfile, root))
wait_until(lambda: (seed2.detail(ih) or {}).get("progress") == 1.0, 30, "the second Playhead seeder", seed2)
ph = Playhead()
ph.add_torrent(torrent)
ph.connect(ih, seed.peer_port)
stream_all(ph, "Playhead from a Playhead seeder")
ph.stop()
ph = Playhead()
ph.add_torrent(torrent)
for port in (seed.peer_port, seed2.peer_port, seeder.port):
    ph.connect(ih, port)
wait_until(lambda: ph.detail(ih)["peers"] >= 3, 20, "three seeders connected", ph)
stream_all(ph, "Playhead from three seeders (two Playhead, one libtorrent)")
ph.stop()

# 6. A seeder that corrupts one piece, next to an honest one.
ph = Playhead()
ph.add_torrent(torrent)
files = ph.detail(ih)["files"]
data = b"".join(content[f["path"]] for f in sorted(files, key=lambda f: f["index"]))
bad = FakeSeeder(ih, PIECE, data, corrupt_pieces={1})
ph.connect(ih, bad.port)
# Alone, the corrupting seeder is the only source of piece 1: reading it makes Playhead fetch, fail and ban.
try:
    ph.get("/stream/%s/0" % ih, headers={"Range": "bytes=0-%d" % (2 * PIECE)}, timeout=3)
except OSError:
    pass  # the read cannot complete while the only peer serves bad data
wait_until(lambda: "banned 127.0.0.1:%d" % bad.port in ph.log_text(), 15, "the corrupting seeder to be banned", ph)
ph.connect(ih, seeder.port)
stream_all(ph, "download with a corrupting seeder")
ph.connect(ih, bad.port)  # a banned peer is not reconnected
time.sleep(1)
if bad.connections != 1:
    fail("the banned seeder was connected %d times" % bad.connections)
print("PASS the corrupting seeder was banned", flush=True)
ph.stop()
print("all peer wire interop checks passed")
