#!/usr/bin/python3
"""bt-announce against Debian's opentracker on loopback, over HTTP and over UDP.

Two bt-announce runs with different ports must see each other through the tracker (one torrent over HTTP, another
over UDP), and --scrape must report the numbers opentracker itself gives in its announce replies. Every wait is
bounded; a missing tool is a failure, never a silent skip.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swarm import free_tcp_udp_port  # noqa: E402

BIN_DIR = os.environ.get("PLAYHEAD_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
BT_ANNOUNCE = os.path.join(BIN_DIR, "bt-announce")
OPENTRACKER = shutil.which("opentracker") or "/usr/bin/opentracker"
MKTORRENT = shutil.which("mktorrent") or "/usr/bin/mktorrent"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg)


def bdecode(data, i=0):
    """Just enough bencode to find the info dictionary's bytes."""
    c = data[i:i + 1]
    if c == b"i":
        j = data.index(b"e", i)
        return int(data[i + 1:j]), j + 1
    if c in (b"l", b"d"):
        i += 1
        items = []
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            items.append(v)
        if c == b"l":
            return items, i + 1
        return dict(zip(items[::2], items[1::2])), i + 1
    colon = data.index(b":", i)
    n = int(data[i:colon])
    return data[colon + 1:colon + 1 + n], colon + 1 + n


def info_hash_of(torrent_path):
    import hashlib
    data = open(torrent_path, "rb").read()
    # Locate the raw info dict: decode the root keys one by one, remembering offsets.
    i = 1
    while data[i:i + 1] != b"e":
        key, i = bdecode(data, i)
        start = i
        _, i = bdecode(data, i)
        if key == b"info":
            return hashlib.sha1(data[start:i]).hexdigest()
    fail("no info dict in " + torrent_path)


def announce(url, target, *args, expect_ok=True):
    cmd = [BT_ANNOUNCE, url, target, "--json", "--timeout", "5000", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        fail("bt-announce printed no JSON: rc=%d stdout=%r stderr=%r" % (p.returncode, p.stdout, p.stderr))
    if expect_ok and p.returncode != 0:
        fail("bt-announce %s failed: %s" % (" ".join(cmd[1:]), out))
    return out


def peers(out):
    return set(out.get("peers", []))


def main():
    for tool in (BT_ANNOUNCE, OPENTRACKER, MKTORRENT):
        if not os.access(tool, os.X_OK):
            fail("missing executable " + tool)

    tmp = tempfile.mkdtemp(prefix="ph-tracker-")
    tracker = None
    try:
        os.chmod(tmp, 0o755)  # opentracker drops to `nobody` inside this chroot
        port = free_tcp_udp_port()
        http_url = "http://127.0.0.1:%d/announce" % port
        udp_url = "udp://127.0.0.1:%d/announce" % port

        torrents = {}
        for name in ("over-http", "over-udp", "unlisted"):
            data = os.path.join(tmp, name + ".bin")
            with open(data, "wb") as f:
                f.write(os.urandom(100000 + len(name)))
            tpath = os.path.join(tmp, name + ".torrent")
            subprocess.run([MKTORRENT, "-a", http_url, "-l", "15", "-o", tpath, data], check=True,
                           capture_output=True, timeout=30)
            torrents[name] = tpath
        hashes = {name: info_hash_of(path) for name, path in torrents.items()}

        with open(os.path.join(tmp, "whitelist.txt"), "w") as f:
            f.write(hashes["over-http"] + "\n" + hashes["over-udp"] + "\n")
        os.chmod(os.path.join(tmp, "whitelist.txt"), 0o644)
        whitelist = "/whitelist.txt" if os.geteuid() == 0 else os.path.join(tmp, "whitelist.txt")
        # -i must come before -p/-P, else the ports bind to every interface.
        tracker = subprocess.Popen([OPENTRACKER, "-i", "127.0.0.1", "-p", str(port), "-P", str(port), "-d", tmp,
                                    "-w", whitelist], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if tracker.poll() is not None:
                    fail("opentracker exited: " + tracker.stderr.read().decode(errors="replace"))
                if time.time() > deadline:
                    fail("opentracker did not listen within 10 s")
                time.sleep(0.1)
        time.sleep(0.3)  # the UDP socket comes up with the TCP one; give the whitelist load a moment

        # ---- HTTP: two runs with different ports see each other ----
        t = torrents["over-http"]
        a = announce(http_url, t, "--port", "7001")
        check(a["request"]["infoHash"] == hashes["over-http"], "bt-announce computed the .torrent's info-hash")
        check(a["request"]["wire"].startswith("GET " + http_url + "?info_hash="), "HTTP request printed")
        b = announce(http_url, t, "--port", "7002")
        check("127.0.0.1:7001" in peers(b), "HTTP: second run sees the first (%s)" % sorted(peers(b)))
        a2 = announce(http_url, t, "--port", "7001", "--event", "none")
        check("127.0.0.1:7002" in peers(a2), "HTTP: first run sees the second (%s)" % sorted(peers(a2)))
        check(a2["response"]["incomplete"] == 2 and a2["response"]["complete"] == 0,
              "HTTP announce reports 2 leechers, 0 seeders")

        # ---- UDP: the same on another torrent ----
        u = torrents["over-udp"]
        c = announce(udp_url, u, "--port", "7101")
        check(c["request"]["protocol"] == "udp", "UDP request")
        d = announce(udp_url, u, "--port", "7102")
        check("127.0.0.1:7101" in peers(d), "UDP: second run sees the first (%s)" % sorted(peers(d)))
        c2 = announce(udp_url, u, "--port", "7101", "--event", "none")
        check("127.0.0.1:7102" in peers(c2), "UDP: first run sees the second (%s)" % sorted(peers(c2)))
        check("127.0.0.1:7001" not in peers(c2), "UDP torrent's swarm is its own")

        # One UDP peer completes: 1 seeder, 1 leecher, 1 download.
        done = announce(udp_url, u, "--port", "7102", "--event", "completed", "--left", "0")
        check(done["response"]["complete"] == 1 and done["response"]["incomplete"] == 1,
              "UDP announce after completion reports 1 seeder, 1 leecher")

        # ---- Scrape over both protocols matches the announce replies ----
        for url in (http_url, udp_url):
            proto = url.split(":")[0]
            s = announce(url, t, "--scrape")["scrape"]
            check(len(s) == 1 and s[0]["infoHash"] == hashes["over-http"], proto + " scrape names the torrent")
            check((s[0]["complete"], s[0]["incomplete"]) == (a2["response"]["complete"], a2["response"]["incomplete"]),
                  "%s scrape of the HTTP torrent matches the announce: %s" % (proto, s[0]))
            s = announce(url, u, "--scrape")["scrape"]
            check((s[0]["complete"], s[0]["incomplete"], s[0]["downloaded"]) == (1, 1, 1),
                  "%s scrape of the UDP torrent: 1 seeder, 1 leecher, 1 completed (%s)" % (proto, s[0]))

        # ---- Stopped removes the peer ----
        announce(http_url, t, "--port", "7002", "--event", "stopped")
        s = announce(http_url, t, "--scrape")["scrape"]
        check(s[0]["incomplete"] == 1, "after `stopped` one leecher is left (%s)" % s[0])

        # ---- A torrent outside the whitelist: a clear error, not a crash ----
        x = announce(udp_url, torrents["unlisted"], expect_ok=False)
        check("error" in x and "truncated announce reply" in x["error"], "UDP unlisted torrent: " + x.get("error", ""))
        y = announce(http_url, torrents["unlisted"], expect_ok=False)
        check("error" in y, "HTTP unlisted torrent: " + y.get("error", ""))

        # Human-readable output shows request, response and peers.
        p = subprocess.run([BT_ANNOUNCE, http_url, t, "--port", "7003"], capture_output=True, text=True, timeout=30)
        check(p.returncode == 0 and "request:  GET " in p.stdout and "response: interval" in p.stdout and
              "peers (" in p.stdout, "human-readable output")
        print(p.stdout)
    finally:
        if tracker is not None:
            tracker.terminate()
            try:
                tracker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                tracker.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("tracker interop: all checks passed")


if __name__ == "__main__":
    main()
