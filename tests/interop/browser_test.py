"""Headless Chromium plays video from Playhead's web page (issue 8), driven over the Chrome DevTools Protocol.

1. A faststart H.264/AAC mp4 from a throttled libtorrent seeder: the page at / lists the torrent, its Play button
   starts the <video>, currentTime advances; pausing the <video> (whose pause event calls the API) stops the download
   (downloadedBytes grows <= 256 KiB in the second after pause, not at all in the next); play resumes it.
2. The same video remuxed without +faststart (moov at the end) starts playing before the whole file is downloaded.

The DevTools client is stdlib only: http.client for /json, a raw socket for the websocket handshake and framing.
"""
import base64
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from swarm import LtPeer, Playhead, _procs, fail, make_torrent, make_video, tempdir, wait_until  # noqa: E402

KIB, MIB = 1024, 1024 * 1024
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


T_START = time.time()


def stop_clean(ph):
    """SIGTERM must end the server with exit 0 (under ASan a leak or error report would make it non-zero)."""
    rc = ph.stop()
    if rc != 0:
        fail("playhead exited with %s\n%s" % (rc, ph.log_text()))


def passed(msg):
    print("PASS [%5.1f s] %s" % (time.time() - T_START, msg), flush=True)


class WebSocket:
    """A minimal RFC 6455 client: text frames out (masked, as a client must), frames in, ping answered."""

    def __init__(self, url, timeout=30):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                fail("websocket handshake: connection closed")
            head += chunk
        head, _, self.buf = head.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            fail("websocket handshake refused: %r" % head[:200])

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                fail("websocket closed by the browser")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text):
        self._send_frame(0x1, text.encode())

    def recv(self):
        """The next complete text message (fragments joined); control frames are handled here."""
        message = b""
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                fail("the browser closed the DevTools websocket")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if b0 & 0x80:
                    return message.decode()


class Browser:
    """Headless Debian Chromium with a fresh profile; one page target driven over DevTools."""

    def __init__(self):
        if not os.path.exists(CHROMIUM):
            fail("chromium is not installed (tools/setup.sh installs it)")
        self.profile = tempdir("chromium-")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--user-data-dir=" + self.profile,
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--remote-debugging-address=127.0.0.1",
                 "--remote-debugging-port=0",
                 "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
                 "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults", "about:blank"]
        self.log_path = os.path.join(self.profile, "chromium.log")
        self.proc = subprocess.Popen([CHROMIUM] + flags, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log_path, "wb"))
        _procs.append(self.proc)
        self.ws = None

    def connect(self):
        """Waits for the DevTools port (Chromium takes seconds to start here, so the test makes media meanwhile)."""
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        wait_until(lambda: os.path.exists(port_file) and open(port_file).read().count("\n") >= 1, 30,
                   "chromium's DevTools port")
        self.port = int(open(port_file).read().split()[0])
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/json")
        targets = json.loads(conn.getresponse().read())
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            fail("no page target in %s" % targets)
        self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 0
        self.console = []
        self.call("Runtime.enable")

    def call(self, method, params=None, timeout=30):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params or {}}))
        self.ws.sock.settimeout(timeout)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    fail("DevTools %s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if msg.get("method") == "Runtime.consoleAPICalled":
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in
                                             msg["params"].get("args", [])))

    def eval(self, expression, timeout=30):
        """Evaluates JavaScript in the page (promises awaited); returns its value."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                      timeout)
        if "exceptionDetails" in r:
            fail("page exception in %r: %s" % (expression[:80], r["exceptionDetails"]))
        return r.get("result", {}).get("value")

    def navigate(self, url):
        self.call("Page.navigate", {"url": url})
        wait_until(lambda: self.eval("document.readyState") == "complete", 20, "the page to load")

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:  # already gone: the process check below decides
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


VIDEO_STATE = ("(() => { const v = document.getElementById('player'); return {t: v.currentTime, paused: v.paused, "
               "rs: v.readyState, err: v.error && v.error.message, src: v.currentSrc, d: v.duration}; })()")


def start_playing(browser, ph, ih, what):
    """Opens the web page for this torrent and presses the file's Play button, as a user would."""
    browser.navigate(ph.base + "/#" + ih)
    wait_until(lambda: browser.eval("document.querySelectorAll('#files tbody button').length") == 1, 20,
               "the page's file list (%s)" % what, ph)
    browser.eval("document.querySelector('#files tbody button').click()")
    t0 = time.time()
    state = wait_until(lambda: (lambda s: s if s["t"] > 1.0 else None)(browser.eval(VIDEO_STATE)) or
                       check_error(browser, ph), 60, "currentTime to pass 1 s (%s)" % what, ph)
    return state, time.time() - t0


def check_error(browser, ph):
    s = browser.eval(VIDEO_STATE)
    if s["err"]:
        fail("the <video> failed: %s\n%s" % (s, ph.log_text()))
    return None


def downloaded(ph, ih):
    return ph.detail(ih)["downloadedBytes"]


# A 30 s 426x240 clip at ~4 Mbit/s (~15 MB), faststart, and the same streams remuxed with moov at the end.
browser = Browser()
media = tempdir()
os.makedirs(os.path.join(media, "fast"))
os.makedirs(os.path.join(media, "slow"))
video = make_video(os.path.join(media, "fast", "clip.mp4"), seconds=30, size="426x240", bitrate="4000k")
late_path = os.path.join(media, "slow", "late-moov.mp4")
if subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", os.path.join(media, "fast", "clip.mp4"), "-c", "copy",
                   late_path], timeout=60).returncode != 0:
    fail("ffmpeg could not remux the clip")
late = open(late_path, "rb").read()
if not 0 <= late.find(b"mdat") < late.find(b"moov"):
    fail("the remuxed clip does not have moov after mdat")
browser.connect()

parts = set(sys.argv[1:]) or {"play", "late"}  # browser_test.py [play|late] runs one part


def play_checks():
    """Play, pause, resume from the web page, with a seeder at 1 MiB/s (about 2x the video's bitrate)."""
    torrent, ih = make_torrent(os.path.join(media, "fast", "clip.mp4"), 64 * KIB)
    seeder = LtPeer(torrent, os.path.join(media, "fast"), upload_limit=1 * MIB)
    # A small send buffer, so what is "already on the wire" at pause is small (see streaming_test.py).
    seeder.ses.apply_settings({"send_buffer_watermark": 64 * KIB, "send_buffer_low_watermark": 16 * KIB})
    seeder.wait_seeding(30)
    ph = Playhead()
    ph.add_torrent(torrent)
    ph.connect(ih, seeder.port)
    state, took = start_playing(browser, ph, ih, "faststart mp4")
    if abs(state["d"] - 30) > 0.5:
        fail("the <video> reports duration %s" % state["d"])
    t1 = browser.eval(VIDEO_STATE)["t"]
    time.sleep(1.0)
    t2 = browser.eval(VIDEO_STATE)["t"]
    if t2 - t1 < 0.5:
        fail("currentTime did not advance: %.2f -> %.2f" % (t1, t2))
    d = ph.detail(ih)
    if d["progress"] >= 1.0:
        fail("the torrent was complete before the pause: nothing to measure")
    passed("Chromium plays the faststart mp4 from the web page: currentTime %.2f -> %.2f in 1 s, started in %.1f s, "
           "torrent at %.0f%%" % (t1, t2, took, d["progress"] * 100))

    before0 = downloaded(ph, ih)
    time.sleep(1.0)
    rate_before = downloaded(ph, ih) - before0
    browser.eval("document.getElementById('player').pause()")
    wait_until(lambda: ph.detail(ih)["state"] == "paused", 5, "the page's pause event to pause the torrent", ph)
    d0 = downloaded(ph, ih)
    time.sleep(1.0)
    d1 = downloaded(ph, ih)
    time.sleep(1.0)
    d2 = downloaded(ph, ih)
    if d1 - d0 > 256 * KIB or d2 != d1:
        fail("after pause downloadedBytes grew %d KiB, then %d KiB (rate before %d KiB/s)" %
             ((d1 - d0) // KIB, (d2 - d1) // KIB, rate_before // KIB))
    t_paused = browser.eval(VIDEO_STATE)["t"]
    passed("pause in the <video>: torrent paused by the page, downloadedBytes +%d KiB in the first second, +%d in the "
           "next (it grew %d KiB in the second before)" % ((d1 - d0) // KIB, (d2 - d1) // KIB, rate_before // KIB))

    browser.eval("document.getElementById('player').play()")
    wait_until(lambda: ph.detail(ih)["state"] == "downloading", 5, "the page's play event to resume the torrent", ph)
    r0 = downloaded(ph, ih)
    wait_until(lambda: browser.eval(VIDEO_STATE)["t"] > t_paused + 1.0, 20, "currentTime to advance after play", ph)
    r1 = downloaded(ph, ih)
    if r1 <= r0 and ph.detail(ih)["progress"] < 1.0:
        fail("the download did not resume after play")
    passed("play in the <video>: torrent resumed, currentTime advanced past %.1f s, download going on" % (t_paused + 1))
    stop_clean(ph)


def late_checks():
    """moov at the end: the player needs the tail first; a 512 KiB/s seeder shows it did not wait for the whole file."""
    torrent, ih = make_torrent(os.path.join(media, "slow", "late-moov.mp4"), 64 * KIB)
    seeder = LtPeer(torrent, os.path.join(media, "slow"), upload_limit=512 * KIB)
    seeder.wait_seeding(30)
    ph = Playhead()
    ph.add_torrent(torrent)
    ph.connect(ih, seeder.port)
    state, took = start_playing(browser, ph, ih, "mp4 with moov at the end")
    progress = ph.detail(ih)["progress"]
    if progress >= 0.9:
        fail("moov-at-end mp4 started only when %.0f%% was downloaded" % (progress * 100))
    passed("Chromium starts the moov-at-end mp4 after %.1f s with the torrent at %.0f%% (%d of %d bytes)" %
           (took, progress * 100, progress * len(late), len(late)))
    stop_clean(ph)


if "play" in parts:
    play_checks()
if "late" in parts:
    late_checks()
browser.close()
print("all browser checks passed")
