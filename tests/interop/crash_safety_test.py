"""Crash safety in disk mode (issue 10): Playhead is killed with SIGKILL in mid-download and restarted on the same
download folder. Verified pieces are recognised again from disk (progress > 0 right after the restart, before any peer
is connected, and a verified range streams with no peer at all), a piece damaged on disk while Playhead was down is
not trusted, and the file streamed at the end is byte-identical: nothing corrupt is ever served."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from swarm import LtPeer, Playhead, fail, make_content, make_torrent, tempdir, wait_until  # noqa: E402

PIECE = 64 * 1024
SIZE = 8 * 1024 * 1024 + 4321
root = tempdir()
content = make_content(root, [("show/episode.mkv", SIZE)], seed=77)
data = content["show/episode.mkv"]
torrent, ih = make_torrent(os.path.join(root, "show"), PIECE)
downloads = tempdir("playhead-crash-")
env = {"TORRENT_STORAGE_MODE": "disk", "TORRENT_DOWNLOAD_DIR": downloads}

seeder = LtPeer(torrent, root, upload_limit=1024 * 1024)
seeder.wait_seeding(30)

ph = Playhead(env=env)
ph.add_torrent(torrent)
ph.connect(ih, seeder.port)
wait_until(lambda: (ph.detail(ih) or {}).get("progress", 0) >= 0.35, 60, "35 % downloaded", ph)
before = ph.detail(ih)["progress"]
ph.proc.kill()  # SIGKILL: no shutdown path runs
ph.proc.wait(10)
print("killed with SIGKILL at progress %.2f" % before, flush=True)

# Damage the first piece on disk while Playhead is down: it must be re-verified, not trusted.
path = os.path.join(downloads, "show", "episode.mkv")
if not os.path.exists(path):
    fail("no file on disk after a disk-mode download: %s" % os.listdir(downloads))
with open(path, "r+b") as f:
    f.seek(100)
    f.write(b"\x00\xff" * 50)

ph2 = Playhead(env=env)
status, t = ph2.api("POST", "/torrents", torrent, "application/x-bittorrent")
if status not in (200, 201, 409):
    fail("re-adding after the restart: %s %s" % (status, t))
wait_until(lambda: (ph2.detail(ih) or {}).get("progress", 0) > 0, 30, "verified pieces to be recognised from disk", ph2)
# The re-check reports pieces as it verifies them: wait until it has settled (unchanged for a second).
settled = {"last": None, "since": time.time()}


def recheck_settled():
    p = ph2.detail(ih)["progress"]
    if p != settled["last"]:
        settled["last"], settled["since"] = p, time.time()
    return time.time() - settled["since"] >= 1.0 and p


after = wait_until(recheck_settled, 30, "the re-check to settle", ph2)
d = ph2.detail(ih)
if d.get("peers", 0) != 0:
    fail("a peer was connected before the progress check: %s" % d)
if after > before + 0.05:
    fail("progress after restart %.2f exceeds progress at the kill %.2f" % (after, before))
print("PASS after restart: progress %.2f recognised from disk with no peer (%.2f at the kill)" % (after, before),
      flush=True)

# With no peer at all, a range of verified pieces in the middle streams correctly from disk.
pieces = d.get("pieces") or ""
if not isinstance(pieces, str) or len(pieces) != (SIZE + PIECE - 1) // PIECE:
    fail("the detail's piece map is missing or has the wrong length: %r" % (pieces,))
mid = next((i for i in range(2, len(pieces)) if pieces[i] == "1"), None)
if mid is None:
    fail("no verified piece past piece 1 after the restart: %s" % pieces)
lo = mid * PIECE
status, body, _ = ph2.get("/stream/%s/0" % ih, headers={"Range": "bytes=%d-%d" % (lo, lo + PIECE - 1)},
                          timeout=20)
if status != 206 or body != data[lo:lo + PIECE]:
    fail("verified piece %d from disk: status %d, identical %s" % (mid, status, body == data[lo:lo + PIECE]))
print("PASS piece %d served from disk with no peer, byte-identical" % mid, flush=True)
if pieces[:1] == "1":
    fail("piece 0 was damaged on disk but is reported verified")

ph2.connect(ih, seeder.port)
status, body, _ = ph2.get("/stream/%s/0" % ih, timeout=180)
if status != 200 or body != data:
    fail("stream after restart: status %d, %d bytes, identical %s\n%s" % (status, len(body), body == data,
                                                                          ph2.log_text()))
wait_until(lambda: ph2.detail(ih)["state"] == "seeding", 60, "the download to complete", ph2)
if open(path, "rb").read() != data:
    fail("the file on disk differs after completion")
print("PASS stream after kill -9 and restart: %d bytes byte-identical; file on disk identical" % len(data), flush=True)
ph2.stop()
print("all crash safety checks passed")
