"""A scripted hostile BitTorrent peer for tests (issue 10). It listens on 127.0.0.1 (Playhead is told to connect to it
through the API) or dials Playhead's peer port, performs one misbehaviour, and records what Playhead did about it:
whether and when the connection was closed, and which messages came back. Pure Python, one thread per connection."""
import os
import socket
import struct
import threading
import time

import libtorrent as lt

PSTR = b"\x13BitTorrent protocol"


def reserved(fast=True, ext=True):
    r = bytearray(8)
    if ext:
        r[5] |= 0x10
    if fast:
        r[7] |= 0x04
    return bytes(r)


def handshake(info_hash, peer_id, fast=True, ext=True):
    return PSTR + reserved(fast, ext) + info_hash + peer_id


def msg(mid, payload=b""):
    return struct.pack(">IB", 1 + len(payload), mid) + payload


def extended(ext_id, payload):
    return msg(20, bytes([ext_id]) + payload)


class Outcome:
    """What Playhead did with one hostile connection."""

    def __init__(self):
        self.connected_at = None
        self.closed_at = None  # when Playhead closed (EOF or reset), None while open
        self.received = []  # (message id, payload) in order, after the handshake
        self.their_handshake = None
        self.their_ext = None  # Playhead's extension handshake dict (bdecoded)
        self.done = threading.Event()

    def closed_within(self):
        if self.closed_at is None:
            return None
        return self.closed_at - self.connected_at

    def ids(self):
        return [m for m, _ in self.received]


class Reader(threading.Thread):
    """Drains Playhead's side of a connection into an Outcome until EOF."""

    def __init__(self, sock, outcome, expect_handshake=True):
        super().__init__(daemon=True)
        self.sock, self.outcome, self.expect_handshake = sock, outcome, expect_handshake
        self.buf = b""

    def run(self):
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
                self._parse()
        except OSError:
            pass
        self.outcome.closed_at = time.time()
        self.outcome.done.set()

    def _parse(self):
        if self.expect_handshake:
            if len(self.buf) < 68:
                return
            self.outcome.their_handshake = self.buf[:68]
            self.buf = self.buf[68:]
            self.expect_handshake = False
        while len(self.buf) >= 4:
            n = struct.unpack(">I", self.buf[:4])[0]
            if len(self.buf) < 4 + n:
                return
            body = self.buf[4:4 + n]
            self.buf = self.buf[4 + n:]
            if n == 0:
                continue
            if body[0] == 20 and body[1] == 0:
                try:
                    self.outcome.their_ext = lt.bdecode(body[2:])
                except Exception:  # noqa: BLE001 - a bad dict is itself worth seeing as None
                    self.outcome.their_ext = None
            self.outcome.received.append((body[0], body[1:] if body[0] != 7 else body[1:9]))


def their_ext_id(outcome, name, timeout=5):
    """Playhead's extended-message id for `name`, from its extension handshake."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        e = outcome.their_ext
        if e:
            m = e.get(b"m") or e.get("m") or {}
            v = m.get(name.encode()) or m.get(name)
            if v:
                return v
        time.sleep(0.05)
    return None


class HostilePeer:
    """Listens on 127.0.0.1; each accepted connection runs `script(sock, outcome, peer)` after the handshake
    exchange (unless `raw` is set, in which case the script does everything). Outcomes are kept in order."""

    def __init__(self, info_hash_hex, piece_count, script, raw=False, peer_id=None,
                 handshake_hash=None):
        self.info_hash = bytes.fromhex(info_hash_hex)
        self.handshake_hash = handshake_hash or self.info_hash
        self.piece_count = piece_count
        self.script = script
        self.raw = raw
        # A fresh id per peer: Playhead rightly drops a second connection from a peer id it already has.
        self.peer_id = peer_id or b"-HO0001-" + os.urandom(6).hex().encode()
        self.outcomes = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            o = Outcome()
            o.connected_at = time.time()
            self.outcomes.append(o)
            threading.Thread(target=self._serve, args=(c, o), daemon=True).start()

    def _serve(self, c, o):
        try:
            if not self.raw:
                c.settimeout(10)
                hs = b""
                while len(hs) < 68:
                    chunk = c.recv(68 - len(hs))
                    if not chunk:
                        raise EOFError
                    hs += chunk
                o.their_handshake = hs
                c.sendall(handshake(self.handshake_hash, self.peer_id))
                c.settimeout(None)
                Reader(c, o, expect_handshake=False).start()
            else:
                Reader(c, o, expect_handshake=True).start()
            self.script(c, o, self)
        except (EOFError, OSError):
            if o.closed_at is None:
                o.closed_at = time.time()
            o.done.set()

    def wait_outcome(self, timeout, index=0):
        """The outcome of the index-th connection to this peer, or None if it does not come within timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.outcomes) <= index:
            time.sleep(0.05)
        return self.outcomes[index] if len(self.outcomes) > index else None

    def stop(self):
        self.sock.close()


def dial(port, timeout=5):
    """A raw connection to Playhead's peer port; returns (socket, Outcome) with a Reader running."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(None)
    o = Outcome()
    o.connected_at = time.time()
    Reader(s, o, expect_handshake=True).start()
    return s, o
