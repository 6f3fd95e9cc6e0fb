"""A network of 20 Playhead DHT nodes on loopback (issue 6): a magnet link with no tracker and no x.pe is resolved to
peers through the DHT, then metadata (BEP 9) and data are downloaded, byte-identical. Every bootstrap is overridden
to loopback."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from swarm import Playhead, fail, make_content, make_torrent, tempdir  # noqa: E402

root = tempdir()
content = make_content(root, [("clip/video.webm", 1200000), ("clip/subs.vtt", 40000)])
torrent, ih = make_torrent(os.path.join(root, "clip"), 64 * 1024)
tfile = os.path.join(tempdir(), "clip.torrent")
open(tfile, "wb").write(torrent)

dht_env = {"TORRENT_DHT": "true"}
first = Playhead(env=dht_env)
boot = {"TORRENT_DHT": "true", "TORRENT_DHT_BOOTSTRAP": "127.0.0.1:%d" % first.peer_port}
nodes = [first] + [Playhead(env=boot) for _ in range(17)]
seeder = Playhead(env=boot, seed=(tfile, root))
nodes.append(seeder)
print("started %d DHT nodes (18 plain, 1 seeder) plus the leecher: 20 in all" % len(nodes), flush=True)

# The leecher bootstraps from a different node than the seeder's only contact, so the lookup has to travel.
leecher = Playhead(env={"TORRENT_DHT": "true", "TORRENT_DHT_BOOTSTRAP": "127.0.0.1:%d" % nodes[9].peer_port})
time.sleep(3)  # let routing tables fill and the seeder announce
status, t = leecher.api("POST", "/torrents", {"magnet": "magnet:?xt=urn:btih:" + ih})
if status not in (200, 201):
    fail("adding the magnet: %s %s" % (status, t))
deadline = time.time() + 60
while time.time() < deadline and not leecher.detail(ih).get("files"):
    time.sleep(0.2)
d = leecher.detail(ih)
if not d.get("files"):
    fail("no metadata through the DHT after 60 s\n" + leecher.log_text() + "\n--- seeder\n" + seeder.log_text())
print("PASS the magnet was resolved through the DHT and its metadata fetched", flush=True)
for f in d["files"]:
    status, body, _ = leecher.get("/stream/%s/%d" % (ih, f["index"]), timeout=60)
    if status != 200 or body != content[f["path"]]:
        fail("%s differs (status %d)" % (f["path"], status))
print("PASS data downloaded byte-identical from the peer found through the DHT", flush=True)
print("all DHT swarm checks passed")
