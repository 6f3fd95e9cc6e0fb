"""Shared fixtures for the interop tests: content and torrents, a libtorrent peer, and Playhead processes on loopback.

Every wait is bounded; every process is stopped at exit. Import with /usr/bin/python3 (Debian's libtorrent)."""
import atexit
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import libtorrent as lt

BIN = os.path.abspath(os.environ.get("PLAYHEAD_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin")))
_procs = []
_dirs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.time() + 8
    for p in _procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def tempdir(prefix="playhead-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _dirs.append(d)
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_content(root, files, seed=1):
    """files: list of (relative path, size). Returns {path: bytes}."""
    rnd = random.Random(seed)
    out = {}
    for rel, size in files:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = rnd.randbytes(size)
        with open(path, "wb") as f:
            f.write(data)
        out[rel] = data
    return out


def make_indexed_content(root, name, mib, seed_byte=1):
    """A file of `mib` distinct MiB (its index in the first 8 bytes of each, the rest one random MiB with
    `seed_byte` at offset 8) and its torrent with 1 MiB pieces: cheap to generate and to check. Returns a dict:
    path, torrent (bytes), tfile, ih, chunk (each MiB after its index), size, sha1 (hex, of the whole file)."""
    MIB = 1 << 20
    path = os.path.join(root, name)
    chunk = bytearray(os.urandom(MIB))
    chunk[8] = seed_byte
    whole = hashlib.sha1()
    with open(path, "wb") as f:
        for i in range(mib):
            chunk[:8] = i.to_bytes(8, "little")
            f.write(chunk)
            whole.update(chunk)
    torrent, ih = make_torrent(path, MIB)
    tfile = os.path.join(root, name + ".torrent")
    with open(tfile, "wb") as f:
        f.write(torrent)
    return {"path": path, "torrent": torrent, "tfile": tfile, "ih": ih, "chunk": bytes(chunk[8:]), "size": mib * MIB,
            "sha1": whole.hexdigest()}


def make_torrent(content_path, piece_length=256 * 1024, trackers=(), private=False):
    """Builds a .torrent with libtorrent; returns (torrent bytes, info-hash hex)."""
    fs = lt.file_storage()
    lt.add_files(fs, content_path)
    ct = lt.create_torrent(fs, piece_length, lt.create_torrent.v1_only)
    for i, tr in enumerate(trackers):
        ct.add_tracker(tr, i)
    if private:
        ct.set_priv(True)
    lt.set_piece_hashes(ct, os.path.dirname(content_path))
    data = lt.bencode(ct.generate())
    info = lt.torrent_info(lt.bdecode(data))
    return data, str(info.info_hash())


def lt_settings(port, **extra):
    s = {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "min_reconnect_time": 1,
        "alert_mask": 0,
    }
    s.update(extra)
    return s


class LtPeer:
    """A libtorrent session with one torrent (seeding from save_path, or downloading into it)."""

    def __init__(self, torrent_bytes, save_path, port=None, upload_limit=None, seed_mode=False, tick_ms=None):
        """tick_ms: libtorrent's tick_interval. Its rate limiter hands out quota once a tick (500 ms by default), so a
        limited seeder sends its handshake, unchoke and blocks in 500 ms bursts; a short tick makes it send smoothly,
        as a slow link would."""
        self.port = port or free_port()
        self.ses = lt.session(lt_settings(self.port, **({"tick_interval": tick_ms} if tick_ms else {})))
        if upload_limit:
            self.ses.set_peer_class(lt.session.local_peer_class_id,
                                    {"upload_limit": upload_limit, "download_limit": 0, "label": "local"})
        p = lt.add_torrent_params()
        p.ti = lt.torrent_info(lt.bdecode(torrent_bytes))
        p.save_path = save_path
        if seed_mode:
            p.flags |= lt.torrent_flags.seed_mode
        self.handle = self.ses.add_torrent(p)

    def wait_state(self, states, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.handle.status()
            if str(st.state) in states or st.state in states:
                return st
            time.sleep(0.1)
        fail("libtorrent did not reach %s (state %s)" % (states, self.handle.status().state))

    def wait_seeding(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.handle.status()
            if st.is_seeding:
                return st
            time.sleep(0.1)
        fail("libtorrent is not seeding after %ds (state %s, progress %.3f)" %
             (timeout, self.handle.status().state, self.handle.status().progress))

    def connect(self, port):
        self.handle.connect_peer(("127.0.0.1", port))


class Playhead:
    """A playhead server process on loopback with its own HTTP and peer ports and working folder."""

    def __init__(self, args=(), env=None, seed=None):
        self.http_port = free_port()
        self.peer_port = free_port()
        self.cwd = tempdir("playhead-run-")
        e = dict(os.environ)
        e.update({"HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(self.http_port), "TORRENT_PEER_PORT": str(self.peer_port),
                  "TORRENT_DHT": "false", "TORRENT_DHT_BOOTSTRAP": "127.0.0.1:1"})
        if env:
            e.update(env)
        cmd = [os.path.join(BIN, "playhead")]
        if seed:
            cmd += ["seed", seed[0], "--data", seed[1]]
        cmd += list(args)
        self.log_path = os.path.join(self.cwd, "playhead.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=e, stdout=self.log, stderr=subprocess.STDOUT)
        _procs.append(self.proc)
        self.base = "http://127.0.0.1:%d" % self.http_port
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail("playhead exited early:\n" + self.log_text())
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        fail("playhead did not start:\n" + self.log_text())

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-20000:]

    def request(self, method, path, body=None, headers=None, timeout=30):
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def get(self, path, headers=None, timeout=30):
        return self.request("GET", path, headers=headers, timeout=timeout)

    def api(self, method, path, payload=None, ctype="application/json"):
        body = None
        headers = {}
        if payload is not None:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            headers["Content-Type"] = ctype
        status, data, _ = self.request(method, "/api" + path, body, headers)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data

    def add_torrent(self, torrent_bytes):
        status, t = self.api("POST", "/torrents", torrent_bytes, "application/x-bittorrent")
        if status not in (200, 201):
            fail("adding the torrent: %s %s" % (status, t))
        return t

    def connect(self, info_hash, port, host="127.0.0.1"):
        status, r = self.api("POST", "/torrents/%s/peers" % info_hash, {"address": "%s:%d" % (host, port)})
        if status >= 300:
            fail("connect peer: %s %s" % (status, r))

    def detail(self, info_hash):
        return self.api("GET", "/torrents/" + info_hash)[1]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                fail("playhead did not exit within 10 s of SIGTERM")
        return self.proc.returncode


def sha1(b):
    return hashlib.sha1(b).hexdigest()


def free_tcp_udp_port():
    """A port free for both TCP and UDP on 127.0.0.1 (opentracker serves both on one port)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            t.close()
            continue
        t.close()
        u.close()
        return port
    fail("no free port")


class OpenTracker:
    """Debian's opentracker on 127.0.0.1 (HTTP and UDP on one port) with a whitelist of info-hashes."""

    def __init__(self, info_hashes):
        self.port = free_tcp_udp_port()
        self.dir = tempdir("opentracker-")
        os.chmod(self.dir, 0o755)  # as root it chroots here and drops to `nobody`
        with open(os.path.join(self.dir, "whitelist.txt"), "w") as f:
            f.write("".join(h + "\n" for h in info_hashes))
        os.chmod(os.path.join(self.dir, "whitelist.txt"), 0o644)
        whitelist = "/whitelist.txt" if os.geteuid() == 0 else os.path.join(self.dir, "whitelist.txt")
        self.proc = subprocess.Popen(["/usr/bin/opentracker", "-i", "127.0.0.1", "-p", str(self.port), "-P",
                                      str(self.port), "-d", self.dir, "-w", whitelist],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _procs.append(self.proc)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                time.sleep(0.3)  # let the whitelist load
                return
            except OSError:
                time.sleep(0.1)
        fail("opentracker did not start")

    def http_url(self):
        return "http://127.0.0.1:%d/announce" % self.port

    def udp_url(self):
        return "udp://127.0.0.1:%d/announce" % self.port


# --- End-to-end helpers (issue 8: streaming_test.py, browser_test.py) ---

def wait_until(pred, timeout, what, ph=None, interval=0.1):
    """Polls pred() every `interval` seconds until it is truthy (returns its value) or fails after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    fail("timed out after %ds waiting for %s%s" % (timeout, what, ("\n" + ph.log_text()) if ph else ""))


def make_video(path, seconds=12, size="480x270", faststart=True, bitrate="1000k"):
    """A small H.264/AAC mp4 (testsrc2 + sine). faststart=False remuxes it with -c copy so moov sits at the end."""
    if not shutil.which("ffmpeg"):
        fail("ffmpeg is required (tools/setup.sh installs it)")
    tmp = path + ".fast.mp4"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=%s:rate=25:duration=%d" % (size, seconds),
           "-f", "lavfi", "-i", "sine=frequency=440:duration=%d" % seconds, "-c:v", "libx264", "-preset", "ultrafast",
           "-b:v", bitrate, "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-shortest",
           "-movflags", "+faststart", tmp]
    if subprocess.run(cmd, timeout=180).returncode != 0:
        fail("ffmpeg could not make the test video")
    if faststart:
        os.replace(tmp, path)
    else:
        if subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", tmp, "-c", "copy", path], timeout=60).returncode != 0:
            fail("ffmpeg could not remux the test video")
        os.remove(tmp)
    with open(path, "rb") as f:
        data = f.read()
    moov, mdat = data.find(b"moov"), data.find(b"mdat")
    if faststart != (0 <= moov < mdat):
        fail("%s: moov at %d, mdat at %d, faststart wanted: %s" % (path, moov, mdat, faststart))
    return data


def proc_status_bytes(pid, field):
    """A size field of /proc/PID/status (VmRSS, VmHWM, ...), in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    fail("no %s for pid %d" % (field, pid))


def vm_hwm_bytes(pid):
    """Peak resident set size of a process, in bytes."""
    return proc_status_bytes(pid, "VmHWM")


def vm_rss_bytes(pid):
    """Resident set size of a process now, in bytes."""
    return proc_status_bytes(pid, "VmRSS")


_CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def _stat_cpu_seconds(stat_path):
    """User + system CPU seconds from a /proc stat file (fields 14 and 15; the name before them may hold spaces)."""
    fields = open(stat_path).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far."""
    return _stat_cpu_seconds("/proc/%d/stat" % pid)


def thread_cpu_seconds(pid):
    """User + system CPU seconds per thread, {"name/tid": seconds}: shows which thread (io, hash, disk) is the limit."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            name = open("/proc/%d/task/%s/comm" % (pid, tid)).read().strip()
            out["%s/%s" % (name, tid)] = _stat_cpu_seconds("/proc/%d/task/%s/stat" % (pid, tid))
        except OSError:
            continue  # the thread ended meanwhile
    return out


def raw_stream_get(port, path, want, extra_headers=b"", pace=0.0):
    """GET `path` over a raw socket (no client library buffering between the server and us) until `want` body bytes
    have arrived or the server closes; sleeps `pace` seconds between reads, like a player. Returns (head, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra_headers + b"\r\n")
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            _, sep, body = buf.partition(b"\r\n\r\n")
            if sep and len(body) >= want:
                break
            if pace:
                time.sleep(pace)
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    return head, body
