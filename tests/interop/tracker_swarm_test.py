"""Two Playhead instances that know only the .torrent find each other through Debian's opentracker and transfer the
torrent: once with an HTTP announce URL, once with a UDP one (issue 5)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from swarm import OpenTracker, Playhead, fail, make_content, make_torrent, tempdir  # noqa: E402

for scheme in ("http", "udp"):
    root = tempdir()
    content = make_content(root, [("show-%s/ep1.mkv" % scheme, 1500000), ("show-%s/ep2.mkv" % scheme, 900000)],
                           seed=len(scheme))
    # The info-hash is needed for the whitelist before the tracker URL is known: build once to learn it... the
    # announce URL is part of the torrent but not of the info dict, so the hash does not depend on it.
    _, ih = make_torrent(os.path.join(root, "show-%s" % scheme), 64 * 1024)
    tracker = OpenTracker([ih])
    url = tracker.http_url() if scheme == "http" else tracker.udp_url()
    torrent, ih2 = make_torrent(os.path.join(root, "show-%s" % scheme), 64 * 1024, trackers=[url])
    if ih2 != ih:
        fail("info-hash changed with the tracker URL")
    tfile = os.path.join(tempdir(), "show.torrent")
    open(tfile, "wb").write(torrent)

    seeder = Playhead(seed=(tfile, root))
    leecher = Playhead()
    leecher.add_torrent(torrent)
    deadline = time.time() + 30
    while time.time() < deadline and leecher.detail(ih)["peers"] < 1:
        time.sleep(0.2)
    if leecher.detail(ih)["peers"] < 1:
        fail("%s: the leecher found no peer through the tracker\n%s\n---\n%s" %
             (scheme, leecher.log_text(), seeder.log_text()))
    for f in leecher.detail(ih)["files"]:
        status, body, _ = leecher.get("/stream/%s/%d" % (ih, f["index"]), timeout=60)
        if status != 200 or body != content[f["path"]]:
            fail("%s: %s differs (status %d)" % (scheme, f["path"], status))
    print("PASS %s tracker: two Playhead instances found each other and transferred the torrent" % scheme, flush=True)
    leecher.stop()
    seeder.stop()
print("all tracker swarm checks passed")
