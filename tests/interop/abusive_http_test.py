"""Abusive HTTP clients against a real Playhead (issue 10): 1,000 idle connections held open while a stream keeps
playing (http/server.hpp ServerLimits::max_connections = 256: connections past it are answered 503 and closed, the
stream and later requests are unaffected); malformed requests (bad Range syntax, 1 MiB of headers, unknown methods,
Content-Length together with Transfer-Encoding, pipelined garbage) get their status and the server carries on; /api
without the token when one is set gets 401; path traversal attempts get 404."""
import os
import resource
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from swarm import LtPeer, Playhead, fail, make_content, make_torrent, raw_stream_get, tempdir, wait_until  # noqa: E402

MAX_CONNECTIONS = 256  # http/server.hpp ServerLimits default
root = tempdir()
content = make_content(root, [("clip/video.mp4", 12 * 1024 * 1024), ("clip/notes.txt", 3000)], seed=5)
torrent, ih = make_torrent(os.path.join(root, "clip"), 256 * 1024)
seeder = LtPeer(torrent, root)
seeder.wait_seeding(30)

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

ph = Playhead(env={"TORRENT_MEMORY_LIMIT": "64MiB"})
ph.add_torrent(torrent)
ph.connect(ih, seeder.port)
files = {f["path"]: f["index"] for f in wait_until(lambda: ph.detail(ih).get("files"), 15, "files", ph)}
video, notes = files["clip/video.mp4"], files["clip/notes.txt"]


def raw(req, read_timeout=10, send_all=True):
    """Sends raw bytes on a fresh connection, returns everything received until close or timeout."""
    s = socket.create_connection(("127.0.0.1", ph.http_port), timeout=5)
    try:
        try:
            s.sendall(req)
        except OSError:
            pass  # the server may answer and close before reading all of an oversized request
        s.settimeout(read_timeout)
        out = b""
        deadline = time.time() + read_timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def healthy(label):
    if ph.proc.poll() is not None:
        fail("%s: playhead died\n%s" % (label, ph.log_text()))
    st = ph.get("/healthz", timeout=10)[0]
    if st != 200:
        fail("%s: /healthz answered %s afterwards" % (label, st))


# 1. A stream plays (read slowly) while 1,000 idle connections are opened and held.
streamed = {"bytes": b"", "error": None}


def play():
    try:
        head, body = raw_stream_get(ph.http_port, "/stream/%s/%d" % (ih, video), len(content["clip/video.mp4"]),
                                    pace=0.01)  # a player reading at its own pace
        streamed["bytes"] = head + b"\r\n\r\n" + body
    except OSError as e:
        streamed["error"] = str(e)


player = threading.Thread(target=play, daemon=True)
player.start()
time.sleep(0.5)
idle = []
for _ in range(1000):
    try:
        idle.append(socket.create_connection(("127.0.0.1", ph.http_port), timeout=5))
    except OSError as e:
        fail("connect %d failed: %s" % (len(idle), e))
time.sleep(2)
rejected, open_ = 0, 0
for s in idle:
    s.setblocking(False)
    try:
        data = s.recv(4096)
        if data.startswith(b"HTTP/1.1 503"):
            rejected += 1
        elif data == b"":
            rejected += 1  # closed after the 503 was read by nobody / reset
        else:
            fail("an idle connection received %r" % data[:80])
    except BlockingIOError:
        open_ += 1
    except OSError:
        rejected += 1
if open_ > MAX_CONNECTIONS or open_ < MAX_CONNECTIONS - 10:
    fail("with 1,000 idle connections: %d held open, %d rejected (limit %d)" % (open_, rejected, MAX_CONNECTIONS))
player.join(120)
head, _, body = streamed["bytes"].partition(b"\r\n\r\n")
if player.is_alive() or streamed["error"] or body != content["clip/video.mp4"]:
    fail("the stream did not complete while connections were held: error %s, %d bytes" %
         (streamed["error"], len(body)))
print("PASS 1,000 idle connections: %d held (limit %d), %d answered 503; the stream of %d bytes completed intact" %
      (open_, MAX_CONNECTIONS, rejected, len(body)), flush=True)
for s in idle:
    s.close()
time.sleep(0.5)
healthy("after the idle connections")
print("PASS the server accepts requests again once they are gone", flush=True)

# 2. Malformed requests.
base = b"/stream/%s/%d" % (ih.encode(), notes)
r = raw(b"GET " + base + b" HTTP/1.1\r\nHost: x\r\nRange: bytes=abc-def\r\nConnection: close\r\n\r\n")
# RFC 9110 14.2: a Range that does not parse is ignored, so this is a full 200, not an error.
if status_of(r) != 200 or not r.endswith(content["clip/notes.txt"]):
    fail("bad Range syntax: %r" % r[:200])
r = raw(b"GET " + base + b" HTTP/1.1\r\nHost: x\r\nRange: bytes=999999-\r\nConnection: close\r\n\r\n")
if status_of(r) != 416:
    fail("unsatisfiable Range: %r" % r[:200])
print("PASS bad Range syntax served in full (200), unsatisfiable Range 416", flush=True)

big = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(1048)) + \
    b"\r\n"
r = raw(big)
if status_of(r) != 431:
    fail("1 MiB of headers: %r" % r[:200])
r = raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (1 << 20) + b"\r\n\r\n")
if status_of(r) != 431:
    fail("one 1 MiB header: %r" % r[:200])
print("PASS 1 MiB of headers: 431", flush=True)

for method in (b"BREW", b"FOO", b"PROPFIND", b"DELETE"):
    r = raw(method + b" /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    st = status_of(r)
    # RFC 9110 15.6.2: a method the server does not recognise is 501; a known one the resource lacks is 405.
    if st is None or not (400 <= st < 500 or st == 501):
        fail("method %s: %r" % (method, r[:200]))
    print("  %s -> %d" % (method.decode(), st))
healthy("after unknown methods")
print("PASS unknown methods 501, unsupported ones 4xx, the server carries on", flush=True)

r = raw(b"POST /api/torrents HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n")
if status_of(r) != 400 or r.count(b"HTTP/1.1 ") != 1:
    fail("Content-Length with Transfer-Encoding: %r" % r[:300])
print("PASS Content-Length together with Transfer-Encoding: 400 and the connection closed (no smuggled request)",
      flush=True)

r = raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01garbage\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n")
second = r.split(b"HTTP/1.1 ")[2][:3] if r.count(b"HTTP/1.1 ") == 2 else b""
if not r.startswith(b"HTTP/1.1 200") or second not in (b"400", b"501"):
    fail("pipelined garbage: %r" % r[:400])
r = raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200))
if status_of(r) is not None and not (400 <= status_of(r) < 500 or status_of(r) == 501):
    fail("a TLS hello: %r" % r[:200])
print("PASS pipelined garbage: the good request answered 200, then %s and close (the request after it is never"
      " read); a TLS hello gets %s" % (second.decode(), status_of(r)), flush=True)

# 3. Traversal attempts.
for path in (b"/../../../../etc/passwd", b"/%2e%2e/%2e%2e/etc/passwd", b"/stream/..%2f..%2fetc%2fpasswd/0",
             b"/stream/%s/0/..%%2f..%%2f..%%2fetc%%2fpasswd" % ih.encode(), b"/..%5c..%5cwindows",
             b"/index.html/../../etc/passwd", b"/.%2e/.%2e/etc/shadow"):
    r = raw(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    if status_of(r) != 404 or b"root:" in r:
        fail("traversal %s: %r" % (path, r[:200]))
print("PASS traversal attempts: 404", flush=True)
healthy("after the malformed requests")
ph.stop()

# 4. /api with a token set.
ph = Playhead(env={"API_TOKEN": "s3cret-token"})
for headers, want in (({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": "s3cret-token"}, 401),
                      ({"Authorization": "Bearer s3cret-token"}, 200)):
    st = ph.get("/api/torrents", headers=headers)[0]
    if st != want:
        fail("/api/torrents with %s: %d, expected %d" % (headers, st, want))
st = ph.request("POST", "/api/torrents", b'{"magnet": "magnet:?xt=urn:btih:%s"}' % ih.encode(),
                {"Content-Type": "application/json"})[0]
if st != 401:
    fail("POST /api/torrents without the token: %d" % st)
print("PASS /api without (or with a wrong) token: 401; with it: 200", flush=True)
ph.stop()
print("all abusive HTTP checks passed")
